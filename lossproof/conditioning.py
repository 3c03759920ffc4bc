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

import mpmath
import numpy as np

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
    of sum_i upstream_i * output_i (ones when None) with respect to ``input``."""
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
                scale = (1 / denom if denom else mp(0)) if red == "mean" else mp(1)
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


