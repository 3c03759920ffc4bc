"""The condition number of each gradient component, kappa_g: the accurate rung of a gradient (NUMERICS.md).

A gradient component g_j is a function of the floating-point data v (the input and a floating-point target;
weights and pos_weight are exact constants, as in the oracle's kappa); its condition number is

    kappa_g_j = sum_v |v * d g_j / d v|,

the kappa of g_j itself, and a component is *accurate* when |y - g_j| <= K u (|g_j| + kappa_g_j) + s_min (the
values' rule with the gradient's own kappa). The second derivatives are exact and derived beside each loss
below; they are evaluated with softmax / sigmoid values in 200-bit mpmath and returned as mpf magnitudes: a
bound needs a few correct bits, not correct rounding, so this lives with the measurement, not in ``oracles/``.

The gradient is that of sum_i u_i * output_i (autograd's ``backward(upstream)``; u = ones by default). Where
each input element feeds one output element (elementwise functions, the per-row losses, logsumexp rows, any
reduced loss) the upstream scales kappa_g by |u_i|; log_softmax's g_c = u_c - U s_c has M = U = sum of the
row's u; softmax's g_c = s_c (u_c - ubar), ubar = sum u_i s_i, is bounded above (derivation at ``_softmax_kappa``).
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np

from oracles import fast

__all__ = ["grad_kappa"]

INF = math.inf


def mp(x):
    return mpmath.mpf(x)


def _smp(row):
    """softmax of a row in 200-bit mpmath, extended reals (-inf -> 0; one +inf -> one-hot)."""
    if any(x == INF for x in row):
        return [mp(1) if x == INF else mp(0) for x in row]
    fin = [x for x in row if math.isfinite(x)]
    m = max(fin)
    es = [mpmath.exp(mp(x) - m) if math.isfinite(x) else mp(0) for x in row]
    d = mpmath.fsum(es)
    return [e / d for e in es]


def _row_kappa(row, M):
    """g_c = M s_c - a_c (a constant), so dg_c/dx_k = M s_c (delta_ck - s_k) and
    kappa_c = M s_c (|x_c| (1 - s_c) + sum_{k != c} |x_k| s_k); terms with s = 0 vanish (as in the oracle)."""
    if any(math.isnan(v) for v in row) or sum(v == INF for v in row) > 1 or not any(v > -INF for v in row):
        return [mp(0)] * len(row)  # an undefined softmax: the gradient is NaN there
    if INF in row:  # one +inf: a one-hot softmax, whose derivatives s_c (delta_ck - s_k) all vanish
        return [mp(0)] * len(row)
    s = _smp(row)
    ax = [abs(mp(row[k])) * s[k] if s[k] != 0 else mp(0) for k in range(len(row))]
    S1, Sx = mpmath.fsum(s), mpmath.fsum(ax)

    def excl(total, terms, c):  # sum over k != c: total - terms[c], summed directly where that cancels
        r = total - terms[c]
        if r < total * mpmath.ldexp(1, -120):
            r = mpmath.fsum(t for k, t in enumerate(terms) if k != c)
        return r

    out = []
    for c, sc in enumerate(s):
        if sc == 0:
            out.append(mp(0))
            continue
        one_m = excl(S1, s, c)
        acc = (abs(mp(row[c])) * one_m if one_m else mp(0)) + excl(Sx, ax, c)
        out.append(abs(M) * sc * acc)
    return out


def _rows_of(x, dim):
    """(list of rows, list of flat-index lists) of an array along dim."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        return [[float(a)]], [[0]]
    idx = np.arange(a.size).reshape(a.shape)
    xm = np.moveaxis(a, dim, -1).reshape(-1, a.shape[dim])
    im = np.moveaxis(idx, dim, -1).reshape(-1, a.shape[dim])
    return xm.tolist(), im.tolist()


def _dsig(t):
    return mpmath.exp(-abs(t)) / (1 + mpmath.exp(-abs(t))) ** 2


def _sig(t):
    return 1 / (1 + mpmath.exp(-t))


def _softmax_kappa(row, u):
    """Softmax with upstream u: g_c = s_c (u_c - ubar), ubar = sum_i u_i s_i. With ds_c/dx_k = s_c (delta_ck - s_k)
    and dubar/dx_k = s_k (u_k - ubar): dg_c/dx_k = s_c (delta_ck - s_k)(u_c - ubar) - s_c s_k (u_k - ubar), so
    kappa_c <= |u_c - ubar| r_c + s_c sum_k |x_k| s_k |u_k - ubar| with r_c = _row_kappa(row, 1)_c (an upper
    bound by the triangle inequality: it makes the accurate rung no stricter than the exact kappa would)."""
    if any(math.isnan(v) for v in row) or sum(v == INF for v in row) > 1 or not any(v > -INF for v in row) \
            or INF in row:
        return [mp(0)] * len(row)
    s = _smp(row)
    ubar = mpmath.fsum(mp(ui) * si for ui, si in zip(u, s))
    r = _row_kappa(row, 1)
    tail = mpmath.fsum(abs(mp(row[k])) * s[k] * abs(mp(u[k]) - ubar) for k in range(len(row)) if s[k] != 0)
    return [abs(mp(u[c]) - ubar) * r[c] + s[c] * tail for c in range(len(row))]


def grad_kappa(name, kw, upstream=None):
    """kappa_g per input element (flat), an upper bound (mpf), from exact second derivatives, for the gradient
    of sum_i upstream_i * output_i (ones when None) with respect to ``input``: the vectorised binary64 bound
    (``_fast_kappa``) where it takes the call, else 200-bit mpmath."""
    fast_bound = _fast_kappa(name, kw, upstream)
    if fast_bound is not None:
        return fast_bound
    x = np.asarray(kw["input"], dtype=np.float64)
    n = x.size
    kap = [mp(0)] * n
    red = kw.get("reduction", "mean")
    up = None if upstream is None or all(v == 1.0 for v in upstream) else list(upstream)

    def _u(i):  # |upstream| of output i (a reduced loss has the one output 0)
        if up is None:
            return 1
        return abs(mp(up[0] if len(up) == 1 else up[i]))
    with mpmath.workprec(200):
        if name in ("cross_entropy",):
            cd = 0 if x.ndim == 1 else 1
            C = x.shape[cd]
            rows, idxs = _rows_of(x, cd)
            w = kw.get("weight") or [1.0] * C
            eps = mp(kw.get("label_smoothing", 0.0))
            t = kw["target"]
            prob = np.asarray(t).shape == x.shape
            if prob:
                trows, _ = _rows_of(t, cd)
                scale = mp(1) / len(rows) if red == "mean" else mp(1)
                for row_no, (row, ix, tr) in enumerate(zip(rows, idxs, trows)):
                    # a_k = w_k ((1 - eps) t_k + eps / C): g_c = M s_c - a_c, plus the targets' perturbation:
                    # dg_c/dt_k = (1 - eps) w_k (s_c - [k == c])
                    a = [mp(w[k]) * ((1 - eps) * mp(tr[k]) + eps / C) for k in range(C)]
                    kx = _row_kappa(row, mpmath.fsum(a))
                    s = _smp(row)
                    # sum_j |t_j w_j (delta_jc - s_c)| = s_c (T - |t_c w_c|) + |t_c w_c| (1 - s_c), T = sum |t_j w_j|
                    tw = [abs(mp(tr[j]) * w[j]) for j in range(C)]
                    T = mpmath.fsum(tw)
                    for c, k in enumerate(ix):
                        kt = (1 - eps) * (s[c] * max(T - tw[c], 0) + tw[c] * (1 - s[c]))
                        kap[k] = scale * (kx[c] + kt) * _u(row_no)
            else:
                ign = kw.get("ignore_index", -100)
                tt = np.asarray(t).reshape(-1).tolist()
                act = [ti != ign for ti in tt]
                denom = mpmath.fsum(mp(w[ti]) for ti, ac in zip(tt, act) if ac)
                scale = (1 / abs(denom) if denom else mp(0)) if red == "mean" else mp(1)
                for row_no, (row, ix, ti, ac) in enumerate(zip(rows, idxs, tt, act)):
                    if not ac:
                        continue
                    # a_k = (1 - eps) w_t [k == t] + eps w_k / C, M = sum a_k
                    M = (1 - eps) * w[ti] + eps * mpmath.fsum(mp(v) for v in w) / C
                    for c, kc in zip(ix, _row_kappa(row, M)):
                        kap[c] = scale * kc * _u(row_no)
        elif name in ("log_softmax", "logsumexp"):
            if name == "log_softmax":
                dims = [kw["dim"] % max(x.ndim, 1)] if kw.get("dim") is not None else \
                    [0 if x.ndim in (0, 1, 3) else 1]
            else:
                d = kw.get("dim")
                dims = list(range(x.ndim)) if d is None else sorted({v % x.ndim for v in
                                                                    (d if isinstance(d, tuple) else (d,))})
            if x.ndim == 0:
                return [mp(0)]
            keep = [d for d in range(x.ndim) if d not in dims]
            idx = np.arange(n).reshape(x.shape)
            xm = np.transpose(x, keep + dims).reshape(-1, int(np.prod([x.shape[d] for d in dims])))
            im = np.transpose(idx, keep + dims).reshape(xm.shape)
            for row_no, (row, ix) in enumerate(zip(xm.tolist(), im.tolist())):
                if any(math.isnan(v) for v in row) or sum(v == INF for v in row) > 1 or \
                        not any(v > -INF for v in row):
                    continue  # NaN gradients there
                # log_softmax: g_c = sum_i u_i (delta_ic - s_c) = u_c - U s_c, i.e. M = U = sum of the row's
                # upstream (C for ones); logsumexp: g = u_row s_c, M = u_row
                M = (mpmath.fsum(mp(up[i]) for i in ix) if up is not None else len(row)) \
                    if name == "log_softmax" else _u(row_no)
                for k, kk in zip(ix, _row_kappa(row, M)):
                    kap[k] = kk
        elif name == "softmax":
            if up is None:
                return kap  # the gradient of sum(softmax) is the constant 0: kappa_g = 0
            dims = [kw["dim"] % max(x.ndim, 1)] if kw.get("dim") is not None else [0 if x.ndim in (0, 1, 3) else 1]
            if x.ndim == 0:
                return kap
            keep = [d for d in range(x.ndim) if d not in dims]
            idx = np.arange(n).reshape(x.shape)
            xm = np.transpose(x, keep + dims).reshape(-1, x.shape[dims[0]])
            im = np.transpose(idx, keep + dims).reshape(xm.shape)
            for row, ix in zip(xm.tolist(), im.tolist()):
                for k, kk in zip(ix, _softmax_kappa(row, [up[i] for i in ix])):
                    kap[k] = kk
        elif name == "nll_loss":
            pass  # the gradient is a constant (-w_t u / denominator, or 0): kappa_g = 0
        elif name in ("sigmoid", "logsigmoid", "softplus"):
            b = mp(kw.get("beta", 1.0))
            for k, v in enumerate(x.reshape(-1).tolist()):
                if not math.isfinite(v):
                    continue
                t = mp(v)
                if name == "sigmoid":  # g = s(x) s(-x), g' = g (s(-x) - s(x))
                    kap[k] = _u(k) * abs(t) * _dsig(t) * abs(_sig(-t) - _sig(t))
                elif name == "logsigmoid":  # g = s(-x), g' = -s(x) s(-x)
                    kap[k] = _u(k) * abs(t) * _dsig(t)
                else:  # g = s(b x), g' = b s'(b x)
                    kap[k] = _u(k) * abs(b * t) * _dsig(b * t)
        elif name == "xlogy":
            # g = sum over the broadcast copies of log(y_k); d g / d y_k = 1 / y_k: kappa = number of copies
            y = np.asarray(kw["other"], dtype=np.float64)
            shape = np.broadcast_shapes(x.shape, y.shape)
            copies = int(np.prod(shape)) // max(n, 1)
            kap = [mp(copies)] * n
        elif name == "binary_cross_entropy":
            # g = -w (y/p - (1-y)/(1-p)): dg/dp = w (y/p^2 + (1-y)/(1-p)^2), dg/dy = -w / (p (1-p))
            p = x.reshape(-1).tolist()
            y = np.asarray(kw["target"], dtype=np.float64).reshape(-1).tolist()
            w = np.broadcast_to(np.asarray(kw.get("weight", 1.0), dtype=np.float64), x.shape).reshape(-1).tolist()
            scale = mp(1) / n if red == "mean" else mp(1)
            for k in range(n):
                pk, yk, wk = p[k], y[k], w[k]
                if math.isnan(pk) or math.isnan(yk):
                    continue
                if pk in (0.0, 1.0):  # log 0: an infinite condition number, unless the weight removes the term
                    kap[k] = mpmath.inf if wk != 0 else mp(0)
                    continue
                P, Y = mp(pk), mp(yk)
                dp = (Y / P**2 if yk else 0) + ((1 - Y) / (1 - P) ** 2 if yk != 1 else 0)
                dy = 1 / (P * (1 - P))
                kap[k] = _u(k) * scale * abs(wk) * (P * abs(dp) + abs(Y) * dy)
        elif name == "binary_cross_entropy_with_logits":
            # g = w ((1-y) s(x) - pw y s(-x)): dg/dx = w ((1-y) + pw y) s'(x), dg/dy = -w (s(x) + pw s(-x))
            xs = x.reshape(-1).tolist()
            y = np.asarray(kw["target"], dtype=np.float64).reshape(-1).tolist()
            w = np.broadcast_to(np.asarray(kw.get("weight", 1.0), dtype=np.float64), x.shape).reshape(-1).tolist()
            pw = np.broadcast_to(np.asarray(kw.get("pos_weight", 1.0), dtype=np.float64),
                                 x.shape).reshape(-1).tolist()
            scale = mp(1) / n if red == "mean" else mp(1)
            for k in range(n):
                if math.isnan(xs[k]) or math.isnan(y[k]) or math.isinf(xs[k]):
                    continue
                t, Y = mp(xs[k]), mp(y[k])
                kap[k] = _u(k) * scale * abs(w[k]) * (abs(t) * abs((1 - Y) + pw[k] * Y) * _dsig(t)
                                              + abs(Y) * (_sig(t) + pw[k] * _sig(-t)))
        elif name == "kl_div":
            # g = -t (log_target: -e^t), independent of x: kappa = |t| (|t| e^t) times the mean's 1/count
            t = np.asarray(kw["target"], dtype=np.float64).reshape(-1).tolist()
            cnt = (x.shape[0] if x.ndim else 1) if red == "batchmean" else n
            scale = mp(1) / cnt if red in ("mean", "batchmean") else mp(1)
            for k in range(n):
                if not math.isfinite(t[k]):
                    continue
                kap[k] = _u(k) * scale * abs(mp(t[k])) * (mpmath.exp(t[k]) if kw.get("log_target") else 1)
        else:  # pragma: no cover
            raise AssertionError(name)
    return kap




# --------------------------------------------------------------------------------------------------
# the vectorised bound: binary64 with a derived slack, for the softmax family and the class losses
#
# Upper bounds of the same formulas as above, from the certified binary64 softmax of ``oracles.fast`` (its step
# 7: |s^_j - s_j| <= b_j, an exact 0 at -inf, b_j >= 2**-52 s^_j), so that s_j <= S_j = s^_j + b_j and
# 1 - s_j <= R_j = min(1 - (s^_j - 2 b_j), sum_{k != j} S_k) (the sum of the others: no cancellation when
# s_j -> 1; the extra b_j covers the subtraction's rounding). Every further quantity is a sum or product of
# nonnegative binary64 terms (|x|, S, R, |u|, |a| rounded up), a row's "others" summed as prefix plus suffix
# sums (``_excl``, no subtraction), at most C + 16 roundings deep: each costs a factor (1 + u) on a normal
# result, and (1 + u)**(C + 16) <= 1 + REL, REL = (C + 16) 2**-52 (for (C + 16) u < 2**-20); a subnormal result
# costs at most 2**-1075 absolutely. Rows with an entry s^ < 2**-960 take the mpmath path (s^ + b is then b's
# absolute part, which times |x| up to 1e308 would be no bound of use), so every S is >= 2**-960 and the factors
# that may follow a subnormal product are S <= 1 + 2**-40, R <= 1 and the coefficients (multiplied last), bounded
# by ``scale``: kap (1 + REL) + ABS, ABS = (C + 16) 2**-1070 (1 + scale), is
# an upper bound; ABS is added only where kappa_g is not structurally 0 (the same formula on the indicators of
# the factors: a factor is exactly 0 only at a -inf logit, a zero logit, a row of one finite logit, a zero
# coefficient, or an exact u_c - ubar = 0), so an exact 0 stays 0 as in the mpmath path. The coefficients (|M|,
# the mean's 1/|W|, |u|, 1 - eps) are exact rationals rounded up to binary64 (``_up``). Softmax's |u_c - ubar|
# is bounded by the smaller of |u_c - sum u_i S_i| + sum |u_i| (2 b_i + (C + 2) 2**-52 S_i) and (rows of at
# most 256 classes) |sum_i (u_c - u_i) s'_i| + sum_i |u_c - u_i| (2 b_i + (C + 2) 2**-52 S_i) (s' = S - b is
# within 2 b_i of s_i; u_c - ubar = sum_i (u_c - u_i) s_i, no cancellation of u_c with ubar), and is exact where
# every group of equal logits has the same mean upstream mu (then u_c - ubar = u_c - mu). The bound is above
# the exact kappa_g by the softmax's relative bound (about C 2**-40) and REL: far less than a bit, all an
# allowance needs. Anything non-finite (NaN or +inf logits, a row with no finite logit, an overflow) returns
# None: the mpmath path above answers.

PAIRWISE_MAX = 256


def _up(q) -> float:
    """A binary64 >= |q| for a Fraction or float q (inf when none is finite)."""
    q = abs(Fraction(q))
    try:
        r = float(q)
    except OverflowError:
        return INF
    return math.nextafter(r, INF) if Fraction(r) < q else r


def _excl(a):
    """sum over k != c of a[:, k], as prefix plus suffix sums (nonnegative terms: no cancellation)."""
    pre = np.cumsum(a, axis=1)
    suf = np.cumsum(a[:, ::-1], axis=1)[:, ::-1]
    out = np.zeros_like(a)
    out[:, 1:] += pre[:, :-1]
    out[:, :-1] += suf[:, 1:]
    return out


def _ind(a):
    return (np.asarray(a) > 0).astype(np.float64)


class _SoftUp:
    """Upper bounds S of s, R of 1 - s and |x| of rows (M, C) of finite or -inf logits, each with a finite one."""

    def __init__(self, rows):
        st = fast._Rows(rows)
        s, b = st.softmax()
        fin = rows != -INF
        self.C = rows.shape[1]
        self.S = np.where(fin, s + b, 0.0)
        self.b = np.where(fin, b, 0.0)
        lo = np.where(fin, np.maximum(s - 2.0 * b, 0.0), 0.0)
        self.R = np.minimum(1.0 - lo, _excl(self.S))
        self.ax = np.where(fin, np.abs(rows), 0.0)
        # an entry below 2**-960 (s^ + b dominated by b's absolute terms) times a large |x| would loosen kappa_g
        # far beyond the few bits allowed: such rows take the mpmath path
        self.tiny = bool((fin & (s < 2.0**-960)).any())

    @staticmethod
    def row_kappa(absM, S, R, ax):
        """_row_kappa's kappa_c from bounds (or indicators) of its factors, |M| per row (multiplied last)."""
        return absM[:, None] * (S * (ax * R + _excl(ax * S)))

    def finish(self, kap, ind, scale):
        """kap (1 + REL) plus ABS where the indicator ``ind`` is positive, or None if not finite."""
        n = self.C + 16
        if n * 2.0**-53 >= 2.0**-20:
            return None
        rel = 1.0 + n * 2.0**-52
        out = kap * rel + np.where(ind > 0, n * 2.0**-1070 * (1.0 + scale) * rel, 0.0)
        return out if np.isfinite(out).all() else None


def _fast_kappa(name, kw, upstream):
    """The vectorised upper bound of every kappa_g (a list of mpf, exact images of binary64 bounds), or None for a
    call it does not take (the mpmath path then answers)."""
    if name not in ("cross_entropy", "log_softmax", "logsumexp", "softmax", "sigmoid", "logsigmoid", "softplus"):
        return None
    if not fast.available() or not fast.enabled():
        return None
    try:
        with np.errstate(all="ignore"):
            if name in ("sigmoid", "logsigmoid", "softplus"):
                return _sigmoid_family_kappa(name, kw, upstream)
            out = _fast_kappa_rows(name, kw, upstream)
    except (fast.NotEligible, ValueError, TypeError, KeyError, IndexError, OverflowError, ZeroDivisionError):
        return None
    if out is None:
        return None
    return [mp(v) for v in out.tolist()]


def _fast_kappa_rows(name, kw, upstream):
    x = np.asarray(kw["input"], dtype=np.float64)
    if x.ndim == 0 or x.size == 0 or np.isnan(x).any() or (x == INF).any():
        return None
    n = x.size
    up = None if upstream is None or all(v == 1.0 for v in upstream) else [float(v) for v in upstream]
    if up is not None and not all(math.isfinite(v) for v in up):
        return None
    if name == "softmax" and up is None:
        return np.zeros(n)  # the gradient of sum(softmax) is the constant 0
    if name == "cross_entropy":
        dims = [0 if x.ndim == 1 else 1]
    elif name == "logsumexp":
        d = kw.get("dim")
        dims = list(range(x.ndim)) if d is None else sorted({v % x.ndim for v in
                                                            (d if isinstance(d, (tuple, list)) else (d,))})
    else:
        dims = [kw["dim"] % x.ndim] if kw.get("dim") is not None else [0 if x.ndim in (0, 1, 3) else 1]
    keep = [d for d in range(x.ndim) if d not in dims]
    C = int(np.prod([x.shape[d] for d in dims]))
    rows = np.ascontiguousarray(np.transpose(x, keep + dims).reshape(-1, C))
    im = np.transpose(np.arange(n).reshape(x.shape), keep + dims).reshape(rows.shape)
    if rows.size == 0 or not (rows != -INF).any(axis=1).all():
        return None
    fast._regular(rows)
    sm = _SoftUp(rows)
    if sm.tiny:
        return None
    Mr = rows.shape[0]
    iS, iR, iax = _ind(sm.S), _ind(sm.R), _ind(sm.ax)

    def uabs(i):  # |upstream| of output i (a reduced loss: its one output)
        return 1.0 if up is None else abs(up[0] if len(up) == 1 else up[i])

    if name in ("log_softmax", "logsumexp"):
        if name != "log_softmax":
            absM = np.array([uabs(r) for r in range(Mr)])
        elif up is None:
            absM = np.full(Mr, float(C))
        else:
            ua = np.asarray(up, dtype=np.float64)
            if ua.size != n:
                return None
            # fsum is correctly rounded: one binary64 step up bounds |U|
            absM = np.array([math.nextafter(abs(math.fsum(ua[im[r]].tolist())), INF) for r in range(Mr)])
        kap = sm.finish(sm.row_kappa(absM, sm.S, sm.R, sm.ax), sm.row_kappa(_ind(absM), iS, iR, iax),
                        absM[:, None])
    elif name == "softmax":
        kap = _softmax_kappa_up(rows, sm, np.asarray(up, dtype=np.float64), im, n, (iS, iR, iax))
    else:
        kap = _ce_kappa(kw, x, rows, sm, uabs, (iS, iR, iax))
    if kap is None:
        return None
    out = np.zeros(n)
    out[im.reshape(-1)] = kap.reshape(-1)
    return out


def _softmax_kappa_up(rows, sm, ua, im, n, inds):
    """_softmax_kappa's bound, bounded above: |u_c - ubar| r_c + s_c sum_k |x_k| s_k |u_k - ubar|."""
    if ua.size != n:
        return None
    Mr, C = rows.shape
    U = ua[im]
    ubar = (U * sm.S).sum(axis=1)
    err = (np.abs(U) * (2.0 * sm.b + (C + 2) * 2.0**-52 * sm.S)).sum(axis=1) * (1 + 2.0**-30)
    dev = np.abs(U - ubar[:, None]) + err[:, None]
    if C <= PAIRWISE_MAX:  # u_c - ubar = sum_i (u_c - u_i) s_i, evaluated with s^ and bounded like ubar
        diff = U[:, :, None] - U[:, None, :]
        s_hat = sm.S - sm.b  # s^ (S = s^ + b up to one rounding, charged below with the b term)
        pair = np.abs((diff * s_hat[:, None, :]).sum(axis=2)) + (
            np.abs(diff) * (2.0 * sm.b + (C + 2) * 2.0**-52 * sm.S)[:, None, :]).sum(axis=2) * (1 + 2.0**-30)
        dev = np.minimum(dev, pair)
    for r in range(Mr):  # every group of equal logits with the same mean upstream mu: u_c - ubar = u_c - mu
        groups: dict = {}
        for v, u in zip(rows[r].tolist(), U[r].tolist()):
            if v != -INF:
                g = groups.setdefault(v, [0, Fraction(0)])
                g[0] += 1
                g[1] += Fraction(u)
        means = {tot / cnt for cnt, tot in groups.values()}
        if len(means) == 1:
            mu = means.pop()
            dev[r] = [_up(Fraction(u) - mu) for u in U[r].tolist()]
    iS, iR, iax = inds
    r1 = sm.row_kappa(np.ones(Mr), sm.S, sm.R, sm.ax)
    tail = (sm.ax * sm.S * dev).sum(axis=1)
    kap = dev * r1 + sm.S * tail[:, None]
    idev = _ind(dev)
    ind = idev * sm.row_kappa(np.ones(Mr), iS, iR, iax) + iS * (iax * iS * idev).sum(axis=1)[:, None]
    return sm.finish(kap, ind, np.max(np.abs(U), axis=1, initial=1.0)[:, None] * 2.0 + 1.0)


def _ce_kappa(kw, x, rows, sm, uabs, inds):
    iS, iR, iax = inds
    Mr, C = rows.shape
    red = kw.get("reduction", "mean")
    if kw.get("size_average") is not None or kw.get("reduce") is not None:
        return None
    w = kw.get("weight")
    w = [1.0] * C if w is None else [float(v) for v in np.asarray(w, dtype=np.float64).reshape(-1).tolist()]
    if len(w) != C or not all(math.isfinite(v) for v in w):
        return None
    eps = Fraction(float(kw.get("label_smoothing", 0.0)))
    ta = np.asarray(kw["target"])
    wf = [Fraction(v) for v in w]
    if ta.shape == x.shape:
        tr = np.ascontiguousarray(np.moveaxis(ta.astype(np.float64), 0 if x.ndim == 1 else 1, -1).reshape(-1, C))
        if not np.isfinite(tr).all():
            return None
        a = [[wf[k] * ((1 - eps) * Fraction(v) + eps / C) for k, v in enumerate(row)] for row in tr.tolist()]
        absM = np.array([_up(sum(ar, Fraction(0))) for ar in a])
        tw = np.abs(tr) * np.abs(np.asarray(w))[None, :]  # |t_j w_j|: one rounding each, within REL
        e1 = _up(1 - eps)
        kt = e1 * (sm.S * _excl(tw) + tw * sm.R)
        itw = _ind(tw)
        ikt = _ind(e1) * (iS * _excl(itw) + itw * iR)
        scale = _up(Fraction(1, Mr)) if red == "mean" else 1.0
        ups = np.array([uabs(r) for r in range(Mr)])
        f = (scale * ups)[:, None]
        kap = (sm.row_kappa(absM, sm.S, sm.R, sm.ax) + kt) * f
        ind = (sm.row_kappa(_ind(absM), iS, iR, iax) + ikt) * _ind(f)
        return sm.finish(kap, ind, ((absM + tw.sum(axis=1) + 1.0) * scale * ups)[:, None])
    ign = kw.get("ignore_index", -100)
    tt = ta.reshape(-1).tolist()
    if len(tt) != Mr:
        return None
    act = [ti != ign for ti in tt]
    denom = sum((wf[ti] for ti, ac in zip(tt, act) if ac), Fraction(0))
    scale = (_up(1 / denom) if denom else 0.0) if red == "mean" else 1.0
    wsum = sum(wf, Fraction(0))
    absM = np.array([_up((1 - eps) * wf[ti] + eps * wsum / C) if ac else 0.0 for ti, ac in zip(tt, act)])
    ups = np.array([uabs(r) if act[r] else 0.0 for r in range(Mr)])
    f = (scale * ups)[:, None]
    kap = sm.row_kappa(absM, sm.S, sm.R, sm.ax) * f
    ind = sm.row_kappa(_ind(absM), iS, iR, iax) * _ind(f)
    return sm.finish(kap, ind, (absM * scale * ups)[:, None])


# The sigmoid family, elementwise: kappa_g = |u| |y| dsig(y) |s(-y) - s(y)| (sigmoid), |u| |y| dsig(y) (logsigmoid,
# softplus with y = beta x), dsig(y) = e / (1 + e)**2 and |s(-y) - s(y)| = (1 - e) / (1 + e), e = exp(-|y|).
# Bounds: y^ = fl(beta x) within u |y| of y; where |y^| >= 800 (|y| >= 799), |y| dsig(y) <= |y| e**-|y| <=
# 2**-1100, returned as that mpf (below binary64's range; an upper bound, and far below what an allowance
# K u kappa + 2**-1074 can see); elsewhere e^ = exp~(-|y^|) with A1 of ``oracles.fast`` (|e^ - exp(-|y^|)| <=
# ETA exp(-|y^|) + TAU_LIBM), and exp(-|y|) = exp(-|y^|) exp(|y^| - |y|) within a factor exp(800 u) < 1 + 2**-42,
# so e_lo = (e^ - TAU_LIBM) / (1 + ETA) / (1 + 2**-42) - 2**-1074 <= e <= e_up = ((e^ + TAU_LIBM) / (1 - ETA))
# (1 + 2**-42) + 2**-1074; then dsig <= e_up / (1 + e_lo)**2, (1 - e) / (1 + e) <= min(|y|, 1 - e_lo) / (1 + e_lo)
# (1 - e <= |y|), |y| <= |y^| (1 + u). About twenty roundings of nonnegative terms: times 1 + 2**-45, plus
# 2**-1070 (a subnormal product's 2**-1075, times factors <= max(1, |u|)) where the value is not structurally 0.
# Non-finite x: 0, as in the mpmath path.

_FAR = mpmath.ldexp(mpmath.mpf(1), -1100)


def _sigmoid_family_kappa(name, kw, upstream):
    x = np.asarray(kw["input"], dtype=np.float64).reshape(-1)
    n = x.size
    if upstream is None or all(v == 1.0 for v in upstream):
        ua = np.ones(n)
    else:
        ua = np.abs(np.asarray([float(v) for v in upstream], dtype=np.float64)).reshape(-1)
        if ua.size == 1:
            ua = np.full(n, ua[0])
        if ua.size != n or not np.isfinite(ua).all():
            return None
    b = float(kw.get("beta", 1.0)) if name == "softplus" else 1.0
    if not math.isfinite(b):
        return None
    fin = np.isfinite(x)
    y = np.abs(np.where(fin, b * x, 0.0))
    far = fin & (y >= 800.0)
    near = fin & ~far
    yc = np.where(near, y, 0.0)
    e_hat = np.exp(-yc)
    e_up = ((e_hat + fast.TAU_LIBM) / (1 - fast.ETA)) * (1 + 2.0**-42) + 2.0**-1074
    e_lo = np.maximum((e_hat - fast.TAU_LIBM) / (1 + fast.ETA) / (1 + 2.0**-42) - 2.0**-1074, 0.0)
    yu = yc * (1 + 2.0**-52)
    k = ua * (yu * (e_up / ((1 + e_lo) * (1 + e_lo))))
    if name == "sigmoid":
        k = k * (np.minimum(yu, 1.0 - e_lo) / (1.0 + e_lo))
    positive = near & (yc > 0) & (ua > 0)
    k = np.where(positive, k * (1 + 2.0**-45) + 2.0**-1070 * np.maximum(1.0, ua), 0.0)
    if not np.isfinite(k).all():
        return None
    return [_FAR * mp(float(ua[i])) if far[i] and ua[i] > 0 else mp(v) for i, v in enumerate(k.tolist())]
