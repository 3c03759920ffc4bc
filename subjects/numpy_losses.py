"""Our own NumPy losses: torch.nn.functional's names, signatures, defaults and semantics, written to be
*accurate* (NUMERICS.md: |y - z| <= K u (|z| + kappa) + the smallest subnormal, K <= 8), not merely stable.

Functions: cross_entropy, nll_loss, binary_cross_entropy, binary_cross_entropy_with_logits, kl_div,
log_softmax, softmax, logsumexp, sigmoid, logsigmoid, softplus, xlogy, and their analytical gradients
``<name>_grad`` (same arguments), also reachable as ``grad(name, **kwargs)``: d(output.sum())/d(input), an array
of the input's dtype and shape.

Inputs are NumPy arrays (float64, float32 or float16; integer arrays for class indices) or nested lists; the
output is a NumPy array of the input's dtype (0-d for a reduced result). Bad input (a class index out of range,
mismatched shapes, a negative probability, p outside [0, 1] for binary_cross_entropy, an unknown reduction)
raises ValueError.

How the results are accurate
----------------------------
* Working precision. Every computation runs in float64. A float32 or float16 input is converted exactly, the
  float64 algorithm below runs (its error is a few float64 ulps of |z| + kappa, some 2**29 times below a float32
  ulp), and the result is rounded once to the input's format at the end. For float64 the accuracy comes from
  the algorithms themselves; no wider type (no longdouble) is used.
* Softmax family. Per slice: the maximum m is shifted out; d_j = x_j - m is kept as an unevaluated sum
  dh_j + dl_j (TwoSum, so the subtraction is exact); e_j = exp(dh_j) (1 + dl_j); the non-maximal terms are summed
  as ``rest`` (compensated, see below) and log-sum-exp is m + log1p(rest), so a confident slice (rest << 1) loses
  nothing: cross-entropy with the target at the maximum is log1p(rest), not log(1 + rest). log_softmax_j is
  (dh_j - log1p(rest)) + dl_j: two non-positive terms, no cancellation. softmax_j = e_j / (1 + rest).
* Cross-entropy and its relatives are sums of non-negative terms w_c t_c (-log_softmax_c), each accurate; label
  smoothing is the exact (1 - eps) nll + (eps / C) sum_c w_c nll_c.
* Elementwise: softplus(x) = max(x, 0) + log1p(exp(-|x|)) (torch's ``threshold`` is accepted and ignored: the
  exact softplus); logsigmoid(x) = -softplus(-x); sigmoid from exp(-|x|) on the side where it cannot overflow;
  binary cross-entropy uses log1p(-p) for log(1 - p); xlogy and kl_div follow the 0 * log 0 = 0 rules.
* Reductions and every inner sum use a cascaded compensated sum (TwoSum at each level of a pairwise tree,
  the error terms added back): as accurate as summing in twice the working precision and rounding once; a
  1-d total whose pairwise partial sums overflow is summed exactly with fractions.
* Gradients. The cross-entropy family's gradient is G_c = sum_k a_k (s_c - [k = c]), a_k the weight of class k
  in the row's loss (w_t for a hard target, w_k t_k for probabilities, both smoothed; a = 1 gives -(1 - C s_c),
  the log_softmax gradient), i.e. (1/D) sum_{k != c} (a_k e_c - a_c e_k). Up to PAIRWISE_MAX_C classes it is
  summed pairwise, with e_c - e_k = e_k expm1(x_c - x_k) for equal weights and |x_c - x_k| <= 1: no cancellation
  of 1 - s_t for a confident target, nor of s_c - s_k for near ties. Longer slices use O(C) forms, per class the
  one with the smaller rounding-error estimate: e_c (M - a_c) - a_c (D - e_c) with cancellation-free exclusive
  sums (confident slices), or a form centred on the slice's median r, e^(r - m) (sum_k (a_k - a_c) + E_c M
  - a_c sum_k E_k) with E_k = expm1(x_k - r) (near-uniform slices); a class whose estimate still exceeds its
  |G| + kappa gets the pairwise sum (O(C) for that class). A class without weight of its own whose e_c
  underflows while a huge weight brings G_c back into range gets exp(log s_c + log M). Elementwise:
  sigmoid' = e / (1 + e)^2 with e = exp(-|x|) (never s (1 - s)); BCE' = w (p - y) / (p (1 - p));
  BCE-with-logits' = w ((1 - y) sigmoid(x) - pos_weight y sigmoid(-x)).
* Range. Weights far from 1 are used as w 2**-j and slices with logits beyond 2**960 as -log_softmax 2**-k
  (exact powers of two, undone at the end), and a reduction whose partial sums could overflow is taken on
  values scaled down: a mean of losses near the largest finite, or 2 * max times a tiny weight, is finite.

Known limits: float64 results are accurate, not always correctly rounded (mostly within an ulp or two; more
where kappa allows it, e.g. sigmoid(x) - y in the BCE-with-logits gradient is no better than the rounding of
sigmoid(x), which the target's own perturbation covers). With weights beyond 2**+-60 or logits beyond 2**960, a
float64 result below about 2**-900 may lose bits to the power-of-two scaling (two roundings in the subnormals).
The sign of a zero that is an underflowed nonzero value is right in the common cases (an underflowed
log-softmax, logsigmoid, a confident target's gradient), not everywhere.

Special values follow the oracle (oracles/losses.py, oracles/functions.py): limits in the extended reals, NaN
where none exists, an exact-zero probability, target or weight contributes nothing even against an infinity
(0 * inf = 0, but 0 * NaN = NaN), a mean over zero total weight is 0/0 = NaN, and a NaN loss has an all-NaN
gradient. Where torch documents a shortcut (BCELoss's log clamped at -100, softplus's threshold) we compute
the exact mathematics instead.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

__all__ = [
    "cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
    "log_softmax", "softmax", "logsumexp", "sigmoid", "logsigmoid", "softplus", "xlogy",
    "cross_entropy_grad", "nll_loss_grad", "binary_cross_entropy_grad", "binary_cross_entropy_with_logits_grad",
    "kl_div_grad", "log_softmax_grad", "softmax_grad", "logsumexp_grad", "sigmoid_grad", "logsigmoid_grad",
    "softplus_grad", "xlogy_grad", "grad", "PAIRWISE_MAX_C",
]

INF, NAN = math.inf, math.nan
_F64 = np.float64
_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))

#: rows with at most this many classes get the O(C^2) cancellation-free gradient
PAIRWISE_MAX_C = 32
_CHUNK_ELEMS = 1 << 18  # elements per chunk of the pairwise gradient
_RESCUE_ELEMS = 1 << 25  # at most this many pairwise terms to rescue classes of long slices


# --------------------------------------------------------------------------------------------------
# inputs and outputs


def _float_array(x, name):
    """(float64 array holding the exact values, the dtype of the result)."""
    if x is None:
        raise ValueError(f"{name} is missing")
    a = np.asarray(x)
    if a.dtype in _FLOAT_DTYPES:
        return a.astype(_F64), a.dtype
    if a.dtype.kind in "iu":
        return a.astype(_F64), np.dtype(_F64)
    raise ValueError(f"{name} must hold float16, float32 or float64 numbers, got dtype {a.dtype}")


def _opt_float(x, name):
    return None if x is None else _float_array(x, name)[0]


def _out(v, dtype):
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return np.asarray(v, dtype=_F64).astype(dtype)


def _reduction(size_average, reduce, reduction, allowed=("none", "mean", "sum")):
    """torch's _Reduction.legacy_get_string, then the check of the name."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {', '.join(allowed)}, got {reduction!r}")
    return reduction


def _check_target_nonneg(t):
    bad = (t < 0) & ~np.isnan(t)
    if bad.any():
        raise ValueError("target holds a negative probability")


def _broadcast_param(p, shape, name):
    if p is None:
        return None
    try:
        if np.broadcast_shapes(p.shape, shape) != tuple(shape):
            raise ValueError
        return np.broadcast_to(p, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {p.shape} does not broadcast to the input's {tuple(shape)}") from None


# --------------------------------------------------------------------------------------------------
# exact-ish building blocks


def _two_sum(a, b):
    """s + err == a + b exactly (Knuth); err is 0 where s is not finite."""
    s = a + b
    bp = s - a
    err = (a - (s - bp)) + (b - bp)
    return s, np.where(np.isfinite(s), err, 0.0)


def _split(a):
    c = 134217729.0 * a  # 2**27 + 1 (Dekker)
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a, b):
    """p + err == a * b exactly (Dekker, without fma; for products far from overflow and underflow)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, np.where(np.isfinite(p), err, 0.0)


def _xmul(a, b):
    """a * b in the oracle's extended reals: an exact zero annihilates anything but NaN (0 * inf = 0)."""
    a = np.asarray(a, _F64)
    b = np.asarray(b, _F64)
    r = a * b
    zero = ((a == 0) | (b == 0)) & ~np.isnan(a) & ~np.isnan(b)
    return np.where(zero, 0.0, r)


def _normalized(m, k):
    """(m, k) with m 2**k unchanged and m in [1/2, 1) (0 where m is 0): shares whose mantissa a division moved."""
    f, e = np.frexp(m)
    return f, np.asarray(k, np.int64) + e


def _acc_sum(a, axis=-1):
    """Sum along ``axis`` as if in twice the precision, then rounded: a pairwise tree whose every addition is a
    TwoSum, the rounding errors summed on the side and added back. Non-finite rows get the IEEE sum (inf, or
    NaN for NaN or inf - inf, as in the extended reals); rows whose partial sums overflow are summed exactly."""
    a = np.moveaxis(np.asarray(a, _F64), axis, -1)
    out_shape = a.shape[:-1]
    n = a.shape[-1]
    if n == 0:
        return np.zeros(out_shape)
    plain = a.sum(axis=-1)
    s = a
    err = np.zeros(out_shape)
    while s.shape[-1] > 1:
        if s.shape[-1] % 2:
            s = np.concatenate([s, np.zeros(out_shape + (1,))], axis=-1)
        x, y = s[..., 0::2], s[..., 1::2]
        s, e = _two_sum(x, y)
        err = err + e.sum(axis=-1)
        if s.shape[-1] == 1:
            break
    res = s[..., 0] + err
    finite_in = np.isfinite(a).all(axis=-1)
    res = np.where(finite_in, res, plain)
    bad = finite_in & ~np.isfinite(res)
    if bad.any():  # intermediate overflow: exact rational sum, correctly rounded
        res = np.array(res)
        for idx in zip(*np.nonzero(bad)) if res.ndim else [()]:
            total = sum((Fraction(v) for v in a[idx].tolist()), Fraction(0))
            try:
                res[idx] = float(total)
            except OverflowError:
                res[idx] = INF if total > 0 else -INF
    return res


def _total(v):
    """The sum of all elements of ``v`` (a reduction): extended-real semantics, compensated."""
    v = np.asarray(v, _F64).reshape(-1)
    return float(_acc_sum(v))


_HUGE = 2.0 ** 960
_LN2_HI = 6.93147180369123816490e-01  # fdlibm: ln 2 = LN2_HI + LN2_LO, LN2_HI with 32 trailing zero bits
_LN2_LO = 1.90821492927058770002e-10


def _norm_exp(w):
    """0 for ordinary weights (max |w| in [2**-60, 2**60] over the finite nonzero ones), else j with
    max |w| 2**-j in [1, 2). Losses compute with the weights w 2**-j (exact) and scale back at the end, so that
    neither huge weights (a mean of w * loss whose numerator overflows) nor tiny ones (products that fall into
    the subnormals) cost accuracy."""
    a = np.abs(np.asarray(w, _F64))
    a = a[np.isfinite(a) & (a > 0)]
    if not a.size or 2.0**-60 <= a.max() <= 2.0**60:
        return 0
    return int(np.frexp(a.max())[1]) - 1


def _me(v):
    """v as (mantissa, exponent): v = m 2**e with |m| in [0.5, 1) (m = v for 0, inf, NaN)."""
    m, e = np.frexp(np.asarray(v, _F64))
    return m, e.astype(np.int64)


def _scaled_ratio(nums, dens=(), nums_me=()):
    """prod(nums) * prod(m 2**e for (m, e) in nums_me) / prod(dens), rounded once at the end: each factor is
    split into a mantissa in [0.5, 1) and a power of two, the mantissas multiplied and divided (k factors: k - 1
    roundings, relative error below k u; the quotient of mantissas stays within [2**-k, 2**k], far from overflow
    and underflow) and the exponents summed exactly; ldexp then rounds once, into the subnormals or to inf where
    the exact result does. So a tiny weight times a huge derivative, or a subnormal weight over a subnormal
    probability (w / p = 1), comes out right where the naive product overflows or flushes to zero."""
    m, e = _me_product(nums, dens, nums_me)
    e = np.clip(e, -1 << 20, 1 << 20)  # beyond any format: ldexp gives 0 or inf, as the exact value rounds
    return np.ldexp(m, e.astype(np.int32))


def _me_product(nums, dens=(), nums_me=()):
    """The unrounded-exponent form (m, e) of _scaled_ratio: the value is m 2**e, |m| in [2**-k, 2**k]."""
    m = np.float64(1.0)
    e = np.int64(0)
    zero = nan = np.False_
    for fm, fe in [_me(f) for f in nums] + [(np.asarray(fm, _F64), fe) for fm, fe in nums_me]:
        m, e = m * fm, e + np.asarray(fe, np.int64)
        zero, nan = zero | (fm == 0), nan | np.isnan(fm)
    m = np.where(zero & ~nan, 0.0, m)  # an exact zero annihilates (0 * inf = 0), as _xmul
    for f in dens:
        fm, fe = _me(f)
        m, e = m / fm, e - fe
    return m, np.asarray(e, np.int64)


def _me_add(am, ae, bm, be):
    """(am 2**ae) + (bm 2**be) as (m, E), taken at the common scale 2**E of the larger term: the smaller one, if
    it falls below 2**-1074 there, is below the rounding of the sum."""
    E = np.maximum(np.where(am == 0, be, ae), np.where(bm == 0, ae, be))
    m = (np.ldexp(am, np.clip(ae - E, -1 << 20, 0).astype(np.int32))
         + np.ldexp(bm, np.clip(be - E, -1 << 20, 0).astype(np.int32)))
    return m, E


def _reduce_me(m, e, reduction, n):
    """Reduce elements held as m 2**e (each its own exponent): "none" rounds each once; "sum" and "mean" sum
    them at the common scale 2**E of the largest (compensated; terms below 2**-1074 of the largest are below
    the sum's rounding) and round the total (divided by n) once more into the format's range."""
    m, e = np.broadcast_arrays(np.asarray(m, _F64), np.asarray(e, np.int64))
    if reduction == "none":
        return np.ldexp(m, np.clip(e, -1 << 20, 1 << 20).astype(np.int32))
    fin = np.isfinite(m)
    if not fin.all():  # an infinite or NaN element: the extended reals' sum of those alone
        return np.float64(_total(np.where(fin, 0.0, m)))
    live = m != 0
    if not live.any():
        tot, E = 0.0, 0
    else:
        E = int(e[live].max())
        tot = _total(np.ldexp(m, np.clip(e - E, -1 << 20, 0).astype(np.int32)))
    with np.errstate(all="ignore"):
        if reduction == "mean":
            tot = np.float64(tot) / np.float64(n)
        return np.ldexp(np.float64(tot), int(np.clip(E, -1 << 20, 1 << 20)))


def _exp_me(x):
    """e**x as (mantissa, exponent), for logits far below exp's underflow threshold: e**x = 2**k e**r with
    r = x - k ln 2 computed exactly (Cody-Waite: k LN2_HI is exact for |k| < 2**12) and |r| <= ln 2 / 2.
    Logits below -3000 are taken at -3000 (e**-3000 < 2**-4328: zero even times the largest finite weight)."""
    xs = np.maximum(np.asarray(x, _F64), -3000.0)
    k = np.rint(xs / np.log(2.0))
    r = (xs - k * _LN2_HI) - k * _LN2_LO
    m, e = _me(np.exp(r))
    return m, e + np.where(np.isfinite(k), k, 0).astype(np.int64)


def _tiny_me(x, plain):
    """``plain(x)`` (sigmoid or softplus) as (m, e), from e**x where x < -700: there both equal e**x to within
    e**-700 relative (sigmoid = e**x / (1 + e**x), softplus = log1p(e**x)), far below any format's u."""
    x = np.asarray(x, _F64)
    tiny = x < -700.0
    mt, et = _exp_me(np.where(tiny, x, 0.0))
    ms, es = _me(plain(x))
    return np.where(tiny & (x > -INF), mt, ms), np.where(tiny & (x > -INF), et, es)


def _sigmoid_me(x):
    return _tiny_me(x, _sigmoid64)


def _softplus_me(x):
    return _tiny_me(x, _softplus64)


def _reduce_scaled(vals, reduction, e_sum, denom=None, e_mean=0):
    """Reduce per-element values held as vals * 2**e: "none" gives vals * 2**e_sum, "sum" total * 2**e_sum,
    "mean" total / denom * 2**e_mean. The total is taken on vals * 2**-kk, kk large enough that no partial sum
    overflows (a mean of values near the largest finite is finite)."""
    vals = np.asarray(vals, _F64)
    if reduction == "none":
        return np.ldexp(vals, e_sum)
    fin = np.abs(vals[np.isfinite(vals)])
    kk = vals.size.bit_length() + 1 if fin.size and fin.max() > _HUGE else 0
    tot = _total(np.ldexp(vals, -kk))
    with np.errstate(all="ignore"):
        if reduction == "mean":
            return np.ldexp(np.float64(tot) / np.float64(denom), e_mean + kk)
        return np.ldexp(np.float64(tot), e_sum + kk)


# --------------------------------------------------------------------------------------------------
# the softmax family on rows


class _Rows:
    """log-sum-exp of each row of a 2-d float64 array, in the extended reals, with the oracle's semantics:
    a NaN row is NaN; one +inf makes a one-hot softmax; two or more +inf make NaN at them; a row without finite
    values and without +inf (all -inf, or empty) has log-sum-exp -inf and a NaN softmax."""

    def __init__(self, X):
        X = np.asarray(X, _F64)
        self.X = X
        R, C = X.shape
        self.R, self.C = R, C
        self.nan = np.isnan(X).any(axis=1)
        pinf = X == INF
        self.pinf = pinf
        npinf = pinf.sum(axis=1)
        nfin = np.isfinite(X).sum(axis=1)
        self.regular = ~self.nan & (npinf == 0) & (nfin > 0)
        self.single = ~self.nan & (npinf == 1)
        self.multi = ~self.nan & (npinf > 1)
        self.empty = ~self.nan & (npinf == 0) & (nfin == 0)
        self.good = self.regular | self.single
        # the rows we compute with: one +inf becomes the row [0 there, -inf elsewhere] (same softmax)
        Xp = X.copy()
        if self.single.any():
            Xp[self.single] = np.where(pinf[self.single], 0.0, -INF)
        Xp[~self.good] = 0.0
        self.Xp = Xp
        with np.errstate(all="ignore"):
            if C:
                self.jmax = np.argmax(Xp, axis=1)
                self.m = Xp[np.arange(R), self.jmax]
            else:
                self.jmax = np.zeros(R, dtype=np.intp)
                self.m = np.zeros(R)
            dh, dl = _two_sum(Xp, -self.m[:, None])
            self.dh, self.dl = dh, dl
            ex = np.exp(dh)
            e = ex + ex * dl
            self.e = e
            erest = e.copy()
            if C:
                erest[np.arange(R), self.jmax] = 0.0
            self.rest = _acc_sum(erest, axis=1)
            self.l1p = np.log1p(self.rest)
            self.denom = 1.0 + self.rest

    # values -----------------------------------------------------------------------------------
    def lse(self):
        with np.errstate(all="ignore"):
            v = self.m + self.l1p
        v = np.where(self.nan, NAN, v)
        v = np.where(~self.nan & self.pinf.any(axis=1), INF, v)
        v = np.where(self.empty, -INF, v)
        return v

    def log_softmax(self):
        with np.errstate(all="ignore"):
            v = (self.dh - self.l1p[:, None]) + self.dl
        if self.C:  # at the maximum: -log1p(rest), -0.0 when rest underflows; exactly 0 when it is alone
            alone = np.isfinite(self.Xp).sum(axis=1) == 1
            r = np.arange(self.R)
            v[r, self.jmax] = np.where(alone, 0.0, -self.l1p)
        bad = ~self.good
        if bad.any():
            v = np.where((self.nan | self.empty)[:, None], NAN, v)
            v = np.where(self.multi[:, None], np.where(self.pinf, NAN, -INF), v)
        return v

    def neg_log_softmax(self, k=0):
        """-log_softmax * 2**-k (k > 0 for slices near the largest finite, whose x_j - m overflows)."""
        if k == 0:
            return 0.0 - self.log_softmax()  # and +0.0, never -0.0
        with np.errstate(all="ignore"):
            dh, dl = _two_sum(np.ldexp(self.Xp, -k), -np.ldexp(self.m, -k)[:, None])
            v = (np.ldexp(self.l1p, -k)[:, None] - dh) - dl
        ls = self.log_softmax()
        return np.where(self.good[:, None] & np.isfinite(self.Xp), v, 0.0 - ls)

    def softmax(self):
        with np.errstate(all="ignore"):
            v = self.e / self.denom[:, None]
        bad = ~self.good
        if bad.any():
            v = np.where((self.nan | self.empty)[:, None], NAN, v)
            v = np.where(self.multi[:, None], np.where(self.pinf, NAN, 0.0), v)
        return v

    # sum_k a_k (s_c - [k == c]) for each (row, c), rows where good --------------------------------
    def weighted_grad(self, a):
        """G[r, c] = sum_k a[r, k] (s[r, c] - [k == c]), accurately; a >= 0 finite constants.

        Slices of at most PAIRWISE_MAX_C classes: the pairwise form for every class. Longer slices: the O(C)
        forms, then the pairwise form (O(C) per class) for the classes whose rounding-error estimate exceeds
        |G| + kappa_G (kappa_G = M s_c (|x_c| (1 - s_c) + sum_{k != c} |x_k| s_k), the condition number)."""
        a = np.asarray(a, _F64)
        R, C = self.R, self.C
        if R == 0 or C == 0:
            return np.zeros((R, C))
        if C <= PAIRWISE_MAX_C:
            rr, cc = np.divmod(np.arange(R * C), C)
            return self._pairwise(rr, cc, a).reshape(R, C)
        G, err = self._two_forms(a)
        with np.errstate(all="ignore"):
            s = self.e / self.denom[:, None]
            ax = _xmul(np.abs(self.Xp), s)
            sx = _acc_sum(ax, axis=1)[:, None]
            M = _acc_sum(a, axis=1)[:, None]
            one_m = self._others() / self.denom[:, None]
            kap = M * s * (_xmul(np.abs(self.Xp), one_m) + np.maximum(sx - ax, 0.0))
            ratio = err / (np.abs(G) + kap)
            flag = (ratio > 2.0) & self.good[:, None]
        if flag.any():
            rr, cc = np.nonzero(flag)
            if len(rr) * C > _RESCUE_ELEMS:  # keep the worst within the budget
                keep = np.argsort(-ratio[rr, cc], kind="stable")[:max(1, _RESCUE_ELEMS // C)]
                rr, cc = rr[keep], cc[keep]
            G = G.copy()
            G[rr, cc] = self._pairwise(rr, cc, a)
        return G

    def _others(self):
        """D - e_c = sum_{k != c} e_k, as rest - expm1(d_c) (rest at the maximum): no cancellation."""
        with np.errstate(all="ignore"):
            E = np.expm1(self.dh)
            E = E + self.dl * (1.0 + E)
            others = self.rest[:, None] - E
            others[np.arange(self.R), self.jmax] = self.rest
        return others

    def _pairwise(self, rr, cc, a):
        """sum_{k != c} (a_k e_c - a_c e_k) / D for the entries (rr[i], cc[i]), where for equal weights
        e_c - e_k = e_k expm1(x_c - x_k) when |x_c - x_k| <= 1 (no cancellation for near ties)."""
        C = self.C
        out = np.empty(len(rr))
        step = max(1, _CHUNK_ELEMS // C)
        with np.errstate(all="ignore"):
            for i0 in range(0, len(rr), step):
                r, c = rr[i0:i0 + step], cc[i0:i0 + step]
                xk, ek, ak = self.Xp[r], self.e[r], a[r]
                xc, ec, ac = self.Xp[r, c][:, None], self.e[r, c][:, None], a[r, c][:, None]
                hd, ld = _two_sum(xc, -xk)
                close = np.abs(hd) <= 1.0
                em = np.expm1(np.where(close, hd, 0.0))
                em = em + ld * (1.0 + em)
                diff = np.where(close, ek * em, ec - ek)  # e_c - e_k without cancellation
                T = np.where(ac == ak, _xmul(ac, diff), _xmul(ak, ec) - _xmul(ac, ek))
                out[i0:i0 + step] = _acc_sum(T, axis=-1) / self.denom[r]
        return out

    def _two_forms(self, a):
        """(G, error estimate) for sum_{k != c} (a_k e_c - a_c e_k) / D in O(C), per class by the better of two
        forms (the smaller rounding-error estimate, a sum of the magnitudes that get rounded):
        - exclusive: e_c (M - a_c) - a_c (D - e_c), the exclusive sums M - a_c = sum_{k != c} a_k and
          D - e_c = rest - expm1(d_c) free of cancellation (exact when the target is confident);
        - centred: with a reference r (the slice's median) and e_k = e^(r - m) (1 + E_k), E_k = expm1(x_k - r),
          e^(r - m) (sum_k (a_k - a_c) + E_c M - a_c sum_k E_k): no cancellation of the common part of
          near-uniform slices, whose E_k are as small as their spread."""
        e, D = self.e, self.denom[:, None]
        C = self.C
        with np.errstate(all="ignore"):
            M = _acc_sum(a, axis=1)[:, None]
            m_lo = _acc_sum(np.concatenate([a, -M], axis=1), axis=1)[:, None]  # M's rounding error
            # exclusive sums
            xh, xl = _two_sum(np.broadcast_to(M, a.shape), -a)
            m_ex = xh + (xl + m_lo)
            others = self._others()
            excl = _xmul(e, m_ex) - _xmul(a, others)
            err_excl = e * m_ex + a * others
            # centred: sum_k (a_k - a_c) = M - C a_c from the exact pairs M_hi + M_lo and C a_c = p + p_lo
            fin = np.isfinite(self.Xp)
            r = np.nanquantile(np.where(fin, self.Xp, NAN), 0.5, axis=1, method="lower") if C else np.zeros(0)
            r = np.where(self.good, r, 0.0)[:, None]
            h, lo = _two_sum(self.Xp, -r)
            E = np.expm1(h)
            E = E + lo * (1.0 + E)
            h, lo = _two_sum(r, -self.m[:, None])
            f = np.exp(h)
            f = f + f * lo
            Q = _acc_sum(E, axis=1)[:, None]
            Qabs = _acc_sum(np.abs(E), axis=1)[:, None]
            p, p_lo = _two_prod(np.full_like(a, float(C)), a)
            sh, sl = _two_sum(np.broadcast_to(M, a.shape), -p)
            const = sh + ((sl + m_lo) - p_lo)
            eform = f * (const + (_xmul(E, M) - _xmul(a, Q)))
            err_e = f * (np.abs(const) + np.abs(E) * M + a * Qabs)
            use_e = err_e < err_excl
            return np.where(use_e, eform, excl) / D, np.where(use_e, err_e, err_excl) / D


def _softmax_dim(ndim):
    """torch's implicit dim (``_get_softmax_dim``): 0 for 0-, 1- and 3-d inputs, else 1."""
    return 0 if ndim in (0, 1, 3) else 1


def _norm_dim(dim, ndim, name="dim"):
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ValueError(f"{name} {dim} is out of range for an array of {ndim} dimensions")
    return int(dim) % n


def _to_rows(x, dim):
    """(rows 2-d array, a function mapping a rows-shaped result back to x's shape)."""
    if x.ndim == 0:
        return x.reshape(1, 1), lambda r: r.reshape(())
    moved = np.moveaxis(x, dim, -1)
    shp = moved.shape
    rows = moved.reshape(int(np.prod(shp[:-1], dtype=np.int64)), shp[-1])
    return rows, lambda r: np.moveaxis(r.reshape(shp), -1, dim)


def _row_setup(input, dim, dtype):
    x, dt = _float_array(input, "input")
    if dtype is not None:
        dt = np.dtype(dtype)
        x = x.astype(dt).astype(_F64)
    d = _softmax_dim(x.ndim) if dim is None else _norm_dim(dim, x.ndim)
    rows, back = _to_rows(x, d)
    return _Rows(rows), back, dt


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """x - logsumexp(x) along ``dim`` (torch's implicit dim when None)."""
    with np.errstate(all="ignore"):
        rw, back, dt = _row_setup(input, dim, dtype)
        return _out(back(rw.log_softmax()), dt)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x_i) / sum_j exp(x_j) along ``dim`` (torch's implicit dim when None)."""
    with np.errstate(all="ignore"):
        rw, back, dt = _row_setup(input, dim, dtype)
        return _out(back(rw.softmax()), dt)


def log_softmax_grad(input, dim=None, _stacklevel=3, dtype=None):
    """d sum(log_softmax(x)) / dx = 1 - n s_j along the slice (n its length), without cancellation."""
    with np.errstate(all="ignore"):
        rw, back, dt = _row_setup(input, dim, dtype)
        g = 0.0 - rw.weighted_grad(np.ones((rw.R, rw.C)))
        s = rw.softmax()
        g = np.where(rw.good[:, None], g, 1.0 - rw.C * s)
        return _out(back(g), dt)


def softmax_grad(input, dim=None, _stacklevel=3, dtype=None):
    """d sum(softmax(x)) / dx: exactly 0 (each slice sums to 1), NaN in slices whose softmax is undefined."""
    with np.errstate(all="ignore"):
        rw, back, dt = _row_setup(input, dim, dtype)
        g = np.where(rw.good[:, None], 0.0, NAN) * np.ones((rw.R, rw.C))
        return _out(back(g), dt)


def _lse_dims(x, dim):
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return list(range(x.ndim))
    if isinstance(dim, (tuple, list)):
        return sorted({_norm_dim(d, x.ndim) for d in dim})
    return [_norm_dim(dim, x.ndim)]


def _lse_setup(input, dim):
    x, dt = _float_array(input, "input")
    dims = _lse_dims(x, dim) if x.ndim else []
    keep = [d for d in range(x.ndim) if d not in dims]
    perm = keep + dims
    moved = np.transpose(x, perm)
    kshape = tuple(x.shape[d] for d in keep)
    rows = moved.reshape(int(np.prod(kshape, dtype=np.int64)), -1) if x.size or not dims else \
        np.zeros((int(np.prod(kshape, dtype=np.int64)), 0))
    return x, dt, dims, keep, perm, kshape, rows


def logsumexp(input, dim=None, keepdim=False):
    """log(sum(exp(input))) over ``dim`` (an int, a tuple of ints, or None for every dimension)."""
    with np.errstate(all="ignore"):
        x, dt, dims, keep, perm, kshape, rows = _lse_setup(input, dim)
        v = _Rows(rows).lse().reshape(kshape)
        if keepdim:
            v = v.reshape(tuple(1 if d in dims else s for d, s in enumerate(x.shape)))
        return _out(v, dt)


def logsumexp_grad(input, dim=None, keepdim=False):
    """d sum(logsumexp(x)) / dx = softmax over the reduced dimensions."""
    with np.errstate(all="ignore"):
        x, dt, dims, keep, perm, kshape, rows = _lse_setup(input, dim)
        s = _Rows(rows).softmax()
        g = s.reshape(tuple(x.shape[d] for d in perm))
        g = np.transpose(g, np.argsort(perm))
        return _out(g, dt)


# --------------------------------------------------------------------------------------------------
# cross_entropy / nll_loss


def _class_layout(input):
    x, dt = _float_array(input, "input")
    if x.ndim == 0:
        raise ValueError("input must have at least 1 dimension (the classes)")
    cd = 0 if x.ndim == 1 else 1
    C = x.shape[cd]
    out_shape = tuple(s for d, s in enumerate(x.shape) if d != cd)
    rows, back = _to_rows(x, cd)
    return x, dt, cd, C, out_shape, rows, back


def _class_weights(weight, C):
    if weight is None:
        return None
    w = _float_array(weight, "weight")[0]
    if w.shape != (C,):
        raise ValueError(f"weight must have shape ({C},) (one per class), got {w.shape}")
    return w


def _is_prob_target(target, x_shape, out_shape):
    t = np.asarray(target)
    return t.shape == tuple(x_shape) and tuple(x_shape) != tuple(out_shape)


def _index_targets(target, out_shape, C, ignore_index):
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise ValueError(f"ignore_index must be an integer, got {ignore_index!r}")
    t = np.asarray(target)
    if t.shape != tuple(out_shape):
        raise ValueError(
            f"target shape {t.shape} does not match the input: expected {tuple(out_shape)} for class indices "
            "or the input's own shape for probabilities")
    if t.dtype.kind not in "iu":
        if t.size == 0 and t.dtype.kind == "f":
            t = t.astype(np.int64)
        else:
            raise ValueError(f"target holds class indices and must be an integer array, got dtype {t.dtype}")
    t = t.astype(np.int64).reshape(-1)
    bad = (t != ignore_index) & ((t < 0) | (t >= C))
    if bad.any():
        raise ValueError(f"target {int(t[bad][0])} is out of bounds for {C} classes")
    return t


class _CE:
    """The per-row pieces of cross_entropy: losses (scaled by powers of two), denominator, row weights a[r, k].

    Each row r computes with its weights scaled by 2**-J[r] (class-index targets: J[r] from the row's own target
    weight, so a subnormal and a huge class weight in one call are each exact at their row's scale; probability
    targets: one J, ``_norm_exp`` of the weights); the reductions combine rows at their own scales. Slices with
    logits beyond 2**960 compute -log_softmax 2**-k, since x_t - m can exceed the largest finite (the loss
    2 * max times a tiny weight is finite)."""

    def __init__(self, input, target, weight, ignore_index, reduction, label_smoothing):
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float, np.floating)):
            raise ValueError(f"label_smoothing must be a number, got {label_smoothing!r}")
        eps = float(label_smoothing)
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        x, dt, cd, C, out_shape, rows, back = _class_layout(input)
        self.x, self.dt, self.C, self.out_shape, self.back = x, dt, C, out_shape, back
        w = _class_weights(weight, C)
        wv = np.ones(C) if w is None else w
        j = _norm_exp(wv)
        rw = _Rows(rows)
        self.rw = rw
        R = rows.shape[0]
        fx = np.abs(rows[np.isfinite(rows)])
        k = 2 + C.bit_length() + R.bit_length() if fx.size and fx.max() > _HUGE else 0
        nll_c = rw.neg_log_softmax(k)  # -log_softmax 2**-k, >= 0
        ome = 1.0 - eps  # exact or one rounding
        eps_c = eps / C if C else 0.0
        prob = _is_prob_target(target, x.shape, out_shape)
        if prob:
            J = np.full(R, j, dtype=np.int64)
        else:
            t = _index_targets(target, out_shape, C, ignore_index)
            active = t != ignore_index
            ti = np.where(active, t, 0)
            wt_raw = np.where(active, wv[ti] if C else np.zeros(R), 0.0)
            # the row's scale: its target weight's (or, with smoothing, the largest weight's, which eps / C <= 1
            # multiplies), ``_norm_exp``'s rule for each row
            top = np.maximum(np.abs(wt_raw), np.abs(wv).max() if (eps and C) else 0.0)
            J = np.array([_norm_exp(np.array([v])) for v in top], dtype=np.int64)
        wn = np.ldexp(np.broadcast_to(wv[None, :], (R, C)), -J[:, None].astype(np.int32))  # row r: w 2**-J[r]
        # where eps / C underflows (below 2**-960), the smoothing's share of the row weights, eps / C w_c, is
        # kept apart at scale 2**S: its gradient, -eps / C w_c / D for a class of softmax 0, is often all there is
        self.S = 0 if not eps or eps_c >= 2.0 ** -960 else 200
        a_smooth = (np.ldexp(eps, self.S) / C) * wn if self.S else None
        self.reduction = reduction
        self.J, self.k = J, k
        self.wv, self.eps, self.ome = wv, eps, ome  # unscaled, for the shares at their own scale (_own_shares)
        self.jt = 0  # the gradient's target share is held at 2**-jt (probability targets with smoothing)
        if prob:
            t, _ = _float_array(target, "target")
            _check_target_nonneg(t)
            trows = _to_rows(t, cd)[0]
            self.targets = trows
            tt = _xmul(trows, ome) + eps_c if eps else trows
            a = _xmul(wn, tt)
            if eps and self.S and C:
                # eps / C below 2**-960 is subnormal or nearly so (it keeps as few as 0 of its 53 bits), and on a
                # row where the target share's terms are small it is the whole loss: the smoothing share is then
                # summed apart, eps / C scaled up by 2**S, sum_c w_c nll_c at unit scale (it is finite wherever
                # the loss is), and scaled back with one rounding, as for class targets below
                per_t = _xmul(_xmul(wn, _xmul(trows, ome)), nll_c)
                smooth = _acc_sum(_xmul(wn, nll_c), axis=1)
                self.values = _acc_sum(per_t, axis=1) + np.ldexp(_xmul(np.ldexp(eps, self.S) / C, smooth),
                                                                 -self.S)
            else:
                per = _xmul(a, nll_c)
                if eps:  # (1 - eps) t + eps / C is positive even where eps / C underflows: no 0 * inf there
                    per = np.where(np.isinf(nll_c) & (a == 0) & (wn != 0), nll_c, per)
                self.values = _acc_sum(per, axis=1) if C else np.zeros(R)
            self.active = np.ones(R, dtype=bool)
            self.denom, self.Ew = float(R), 0
            self.a = a
            # the gradient's weights: with smoothing, the target share (1 - eps) w t and the smoothing share
            # eps / C w are kept apart, each at its own scale (G is linear in the weights): a target share far
            # below eps / C (subnormal targets) would vanish in their sum, yet the smoothing share's gradient
            # cancels exactly on a uniform row and the target share's is then all there is
            if eps:
                self.jt = _norm_exp(trows)
                self.a_grad = _xmul(wn, _xmul(np.ldexp(trows, -self.jt), ome))  # 2**-jt: exact, then one rounding
                if a_smooth is None:
                    a_smooth = (eps / C) * wn
                self.a_smooth = np.broadcast_to(a_smooth, a.shape)
            else:
                self.a_grad, self.a_smooth = a, None
            self.prob = True
        else:
            self.targets = (ti, active)
            ridx = np.arange(R)
            wt = wn[ridx, ti] if C else np.zeros(R)
            nll = _xmul(wt, nll_c[ridx, ti]) if C else np.zeros(R)
            vals = _xmul(ome, nll)
            a = np.zeros((R, C))
            if C:
                a[ridx, ti] = _xmul(ome, wt)
            a_hard = np.where(active[:, None], a, 0.0)
            if eps:
                smooth = _acc_sum(_xmul(wn, nll_c), axis=1)
                # eps / C scaled up by 2**S where it would underflow, so it never becomes an exact zero (0 * inf)
                # nor loses its digits; the product is scaled back with one rounding
                S = 0 if eps_c >= 2.0 ** -960 else 200
                vals = vals + np.ldexp(_xmul(np.ldexp(eps, S) / C, smooth), -S)
                a = a + _xmul(eps_c, wn)
            self.values = np.where(active, vals, 0.0)
            self.active = active
            self.a = np.where(active[:, None], a, 0.0)
            self.a_grad = a_hard if self.S else self.a
            self.a_smooth = None if a_smooth is None else np.where(active[:, None], a_smooth, 0.0)
            self.denom, self.Ew = _weight_total(wt_raw)  # the total target weight, denom 2**Ew
            self.prob = False

    def value(self):
        red = self.reduction
        e = self.J + self.k
        if red == "mean":
            v = _mean_me(self.values, e, self.denom, self.Ew)
        else:
            v = _reduce_me(self.values, e, red, 1)
        return v.reshape(self.out_shape) if red == "none" else v

    def grad(self):
        rw = self.rw
        a = self.a_grad
        g = rw.weighted_grad(a)  # in the scale of the weights, 2**-j
        if rw.C:  # several +inf logits: the finite classes have softmax 0, so g_c = -a_c (limits)
            g = np.where(rw.multi[:, None] & ~rw.pinf, 0.0 - a, g)
        with np.errstate(all="ignore"):
            # row r's gradient is G_r 2**J[r] / (denom 2**Ew) for "mean", G_r 2**J[r] otherwise: F_r 2**e_r
            D = self.denom if self.reduction == "mean" else 1.0
            e = (self.J - (self.Ew if self.reduction == "mean" else 0)).astype(np.int64)
            e_s = e  # the smoothing share's scale (below); the target share's weights are a 2**-jt
            e = e + self.jt
            F = _acc_sum(a, axis=1) / D
            g = np.ldexp(g / D, e[:, None].astype(np.int32))
            # a class without weight of its own has g_c = F s_c; where e_c underflows (x_c - m < -620) but the
            # factor F (a huge weight) brings F s_c back into range, take it as exp(log s_c + log f) 2**ee
            if rw.C:
                tiny = rw.good[:, None] & (a == 0) & (rw.dh < -620.0) & (F > 0)[:, None]
                if tiny.any():
                    f, ee = np.frexp(F)
                    n = (ee + e).astype(_F64)[:, None]  # n * LN2_HI is exact (Cody and Waite)
                    t = (rw.log_softmax() + n * _LN2_HI) + (np.log(f)[:, None] + n * _LN2_LO)
                    g = np.where(tiny, np.exp(t), g)
            # the sign of an underflowed zero: g_c = e_c (M - a_c) - a_c (D - e_c) is negative when only
            # class c has weight (M = a_c) and another class has a finite logit (D > e_c exactly)
            if rw.C:
                alone_w = (F[:, None] > 0) & (a > 0) & (_acc_sum(a, axis=1)[:, None] == a)
                others = (np.isfinite(rw.Xp).sum(axis=1) > 1)[:, None]
                g = np.where((g == 0) & alone_w & others & rw.good[:, None], -0.0, g)
            if self.a_smooth is not None and rw.C:  # the smoothing's share (linear in the weights), at its own scale
                gs = np.ldexp(rw.weighted_grad(self.a_smooth) / D, (e_s - self.S)[:, None].astype(np.int32))
                g = np.where(gs == 0, g, g + gs)
            if rw.C:
                g = self._rescue_lost_shares(g)
        # the extended reals, as the oracle's Row: a NaN or all -inf row has no softmax (NaN), nor do the +inf
        # entries of a row with several +inf
        if rw.C:
            g = np.where((rw.nan | rw.empty)[:, None] | (rw.multi[:, None] & rw.pinf), NAN, g)
        g = np.where(self.active[:, None], g, 0.0)
        return self.back(g)

    def _own_shares(self):
        """(m, k) with m 2**k the class weights' shares w_c t'_c of each row divided by the mean's denominator
        (denom 2**Ew; 1 for "sum" and "none"), computed from the factors' mantissas and exponents (two or three
        roundings), never through a common scale: the target share (1 - eps) w_c t_c (probability targets) or
        (1 - eps) w_t at the target, and the smoothing share eps / C w_c, each as (m, k); zero shares have m = 0."""
        R, C = self.rw.R, self.rw.C
        mw, ew = np.frexp(np.broadcast_to(self.wv[None, :], (R, C)))
        D, Ew = (self.denom, self.Ew) if self.reduction == "mean" else (1.0, 0)
        if self.prob:
            mt, et = np.frexp(self.targets)
        else:
            ti, active = self.targets
            mt = np.zeros((R, C))
            mt[np.arange(R), ti] = np.where(active, 0.5, 0.0)  # 1 = 0.5 2**1 at the target of an active row
            et = np.ones((R, C), dtype=np.int64)
        with np.errstate(all="ignore"):
            m_t, k_t = (mw * mt) * self.ome / D, ew + et - Ew
            if self.eps and C:
                me, ee = np.frexp(self.eps)
                act = 1.0 if self.prob else np.asarray(self.targets[1], _F64)[:, None]
                m_s, k_s = (mw * (me / C)) * act / D, ew + ee - Ew
            else:
                m_s, k_s = np.zeros((R, C)), np.zeros((R, C), dtype=np.int64)
        return (m_t, k_t), (m_s, k_s)

    def _rescue_lost_shares(self, g):
        """Gradient components whose weight share fell into the subnormals at its row's common scale (a huge class
        weight times a subnormal target, a tiny weight beside a huge one: the share has lost its digits, or is 0,
        where its own value w_c t'_c / D is an ordinary number): g_c = s_c A - w_c t'_c / D with both terms at
        their own scale, A = sum_k w_k t'_k / D from the shares' mantissas and exponents. Found by the battery:
        float64, weights from 1.8e308 to 1.9e-319 with targets 5e-324, a component 35% off."""
        rw = self.rw
        tiny = 2.0 ** -1022
        (m_t, k_t), (m_s, k_s) = self._own_shares()
        if self.a_smooth is None:
            lost = ((m_t != 0) | (m_s != 0)) & (np.abs(self.a_grad) < tiny)
        else:
            lost = ((m_t != 0) & (np.abs(self.a_grad) < tiny)) | ((m_s != 0) & (np.abs(self.a_smooth) < tiny))
        lost &= rw.good[:, None] & self.active[:, None]
        # a lost share also takes the digits of every other component of its row that sums it: g_c = (A - a_c)
        # s_c - a_c (1 - s_c), and at the row's common scale A - a_c is the lost shares' sum (a class weight of
        # 1e308 under label smoothing beside weights of 0.5: its g_c came out 0 where it is 0.229; found by the
        # battery at the 25-example budget). With nonnegative shares, every component of such a row is taken as
        # (sum_{k != c} a_k) s_c - a_c (1 - s_c): the first sum without cancellation (prefix and suffix sums of
        # nonnegative terms), 1 - s_c as sum_{k != c} e_k / D (no cancellation either)
        if not lost.any():
            return g
        whole = lost.any(axis=1) & ((m_t >= 0) & (m_s >= 0)).all(axis=1) & rw.good & self.active
        with np.errstate(all="ignore"):
            kk = np.concatenate([np.where(m_t != 0, k_t, np.iinfo(np.int64).min),
                                 np.where(m_s != 0, k_s, np.iinfo(np.int64).min)], axis=1)
            K = kk.max(axis=1)  # the row's largest share exponent (rows without shares are not lost)
            K = np.where(K == np.iinfo(np.int64).min, 0, K)
            def at_row_scale(m, k):  # m 2**(k - K): the shares relative to the row's largest
                return np.ldexp(m, np.clip(k - K[:, None], -2000, 0).astype(np.int32))

            A = _acc_sum(at_row_scale(m_t, k_t) + at_row_scale(m_s, k_s), axis=1)  # A 2**-K, in [2**-2, C]
            ls = rw.log_softmax()
            p = np.exp(ls)
            # s_c A at the final scale: s_c (A 2**-K) 2**K, or through the logarithm where s_c underflows
            ordinary = ls > -700.0
            pa = np.where(ordinary, np.ldexp(p * A[:, None], np.broadcast_to(K[:, None], p.shape).astype(np.int32)),
                          np.exp(ls + (np.log(A) + K * _LN2_HI + K * _LN2_LO)[:, None]))
            pa = np.where(np.isfinite(ls) & (A > 0)[:, None], pa, 0.0)
            own = (np.ldexp(m_t, np.clip(k_t, -2200, 2200).astype(np.int32))
                   + np.ldexp(m_s, np.clip(k_s, -2200, 2200).astype(np.int32)))
            g = np.where(lost, pa - own, g)
            if whole.any():
                def others(sh):
                    """sum_{k != c} sh_k of nonnegative terms, accurately: the row's sum M = RN(S) and its rounding
                    error lo = RN(S - M) (``_acc_sum``), M - sh_c exactly as xh + xl (TwoSum), then xh + (xl + lo):
                    two roundings of nonnegative parts of the result, within 2u of it, whatever share sh_c has.
                    Prefix plus suffix sums (np.cumsum, one term at a time) erred by up to C u: 8 ULP on a row of
                    257 probability targets with subnormal ones beside a dominant logit, where the battery asks our
                    losses to be accurate (witness: tests/meta/test_numpy_losses.py)."""
                    M = _acc_sum(sh, axis=1)[:, None]
                    lo = _acc_sum(np.concatenate([sh, -M], axis=1), axis=1)[:, None]
                    xh, xl = _two_sum(np.broadcast_to(M, sh.shape), -sh)
                    return xh + (xl + lo)

                # sum_{k != c} of the shares at a scale of its own per component, Kc: the largest exponent among
                # the other shares of its row (the row's largest, or the second largest for the component holding
                # it), so the sum is in [1/2, C) there and every share it lost is below 2**-1074 of it; then
                # scaled to the final scale with one rounding. At the final scale itself (each share at its own)
                # shares below the subnormals vanish although their sum does not: label smoothing 3 * 2**-1074
                # over 9 classes makes every share eps / C w_c round to 0 where the target's component,
                # eps / C sum_{c != t} w_c = 1.67 * 2**-1074, rounds to 2**-1073 (found by the battery)
                n_t, n_s = _normalized(m_t, k_t), _normalized(m_s, k_s)
                none = np.iinfo(np.int64).min
                E = np.maximum(np.where(n_t[0] != 0, n_t[1], none), np.where(n_s[0] != 0, n_s[1], none))
                ridx = np.arange(E.shape[0])
                top = E.argmax(axis=1)  # the column holding the row's largest share
                K1 = E[ridx, top]
                E2 = E.copy()
                E2[ridx, top] = none
                K2 = E2.max(axis=1)
                K1 = np.where(K1 == none, 0, K1)
                K2 = np.where(K2 == none, K1, K2)

                def at(n, K):  # a share m 2**k as m 2**(k - K) (at most 1: the row's shares are at most 2**K)
                    return np.ldexp(n[0], np.clip(n[1] - K[:, None], -2200, 0).astype(np.int32))

                oth = others(at(n_t, K1) + at(n_s, K1))
                rest = at(n_t, K2) + at(n_s, K2)
                rest[ridx, top] = 0.0  # its own share, out of the sum (clipped above, not inf)
                oth[ridx, top] = _acc_sum(rest, axis=1)
                Kc = np.broadcast_to(K1[:, None], p.shape).copy()
                Kc[ridx, top] = K2
                first = np.where(ordinary, np.ldexp(p * oth, np.clip(Kc, -2200, 2200).astype(np.int32)),
                                 np.exp(ls + np.log(oth) + Kc * _LN2_HI + Kc * _LN2_LO))
                first = np.where(np.isfinite(ls) & (oth > 0), first, 0.0)
                one_m = rw._others() / rw.denom[:, None]  # 1 - s_c
                g = np.where(whole[:, None], first - own * one_m, g)
            return g


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """torch.nn.functional.cross_entropy: class-index targets (with ``ignore_index``) or probability targets
    (the input's shape), ``weight`` per class, ``label_smoothing`` in [0, 1]; shapes (C), (N, C),
    (N, C, d1, ...)."""
    reduction = _reduction(size_average, reduce, reduction)
    with np.errstate(all="ignore"):
        ce = _CE(input, target, weight, ignore_index, reduction, label_smoothing)
        return _out(ce.value(), ce.dt)


def cross_entropy_grad(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                       reduction="mean", label_smoothing=0.0):
    """d sum(cross_entropy(...)) / d input: sum_k a_k (softmax_c - [k == c]) per row, scaled for the mean."""
    reduction = _reduction(size_average, reduce, reduction)
    with np.errstate(all="ignore"):
        ce = _CE(input, target, weight, ignore_index, reduction, label_smoothing)
        return _out(ce.grad(), ce.dt)


def _nll_setup(input, target, weight, ignore_index):
    """The weighted terms w_t (-x_t) as (mantissa, exponent) per target (subnormal and huge weights together in one
    call cost nothing: no common scale flushes the small ones), the target weights w_t (0 where ignored)."""
    x, dt, cd, C, out_shape, rows, back = _class_layout(input)
    w = _class_weights(weight, C)
    t = _index_targets(target, out_shape, C, ignore_index)
    active = t != ignore_index
    ti = np.where(active, t, 0)
    R = rows.shape[0]
    wt = (w[ti] if w is not None else np.ones(R)) if C else np.zeros(R)
    wt = np.where(active, wt, 0.0)
    xt = rows[np.arange(R), ti] if C else np.zeros(R)
    m, e = _me_product([wt, 0.0 - xt])
    m = np.where(active, m, 0.0)
    return dt, out_shape, rows, back, active, ti, wt, m, e


def _weight_total(wt):
    """The total target weight as (W 2**-E, E): summed at the scale of the largest, so it never overflows."""
    live = wt[(wt != 0) & np.isfinite(wt)]
    E = int(_me(np.abs(live).max())[1]) if live.size else 0
    return _total(np.ldexp(wt, -E)) + 0.0, E


def _mean_me(m, e, W, Ew):
    """sum(m 2**e) / (W 2**Ew): the numerator at the scale of its largest term, one division, one ldexp (an
    infinite or NaN term gives the extended reals' sum over W)."""
    m, e = np.broadcast_arrays(np.asarray(m, _F64), np.asarray(e, np.int64))
    if not np.isfinite(m).all():
        return np.float64(_reduce_me(m, e, "sum", 1)) / np.float64(W)
    live = m != 0
    En = int(e[live].max()) if live.any() else 0
    tot = _total(np.ldexp(m, np.clip(e - En, -1 << 20, 0).astype(np.int32)))
    return np.ldexp(np.float64(tot) / np.float64(W), int(np.clip(En - Ew, -1 << 20, 1 << 20)))


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """torch.nn.functional.nll_loss: -weight[t] * input[t]; "mean" divides by the total weight of the targets
    that are not ignored (0/0 = NaN when every target is ignored)."""
    reduction = _reduction(size_average, reduce, reduction)
    with np.errstate(all="ignore"):
        dt, out_shape, rows, back, active, ti, wt, m, e = _nll_setup(input, target, weight, ignore_index)
        if reduction != "mean":
            v = _reduce_me(m, e, reduction, 1)
            return _out(v.reshape(out_shape) if reduction == "none" else v, dt)
        W, Ew = _weight_total(wt)
        return _out(_mean_me(m, e, W, Ew), dt)


def nll_loss_grad(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean"):
    """-weight[t] at the target (divided by the total weight for "mean"), 0 elsewhere."""
    reduction = _reduction(size_average, reduce, reduction)
    with np.errstate(all="ignore"):
        dt, out_shape, rows, back, active, ti, wt, m, e = _nll_setup(input, target, weight, ignore_index)
        R, C = rows.shape
        g = np.zeros((R, C))
        if C:
            if reduction == "mean":  # -w_t / (W 2**Ew) as one scaled ratio: a subnormal w_t over a huge W
                W, Ew = _weight_total(wt)
                gt = 0.0 - _scaled_ratio([wt], [np.float64(W)], nums_me=[(1.0, -Ew)])
            else:
                gt = 0.0 - wt
            # structural: only the (non-ignored) target's log-probability enters the loss, so every other input's
            # derivative is exactly 0, even where the target's is 0/0 = NaN (a mean over zero total weight)
            g[np.arange(R), ti] = np.where(active, gt, 0.0)
        return _out(back(g), dt)


# --------------------------------------------------------------------------------------------------
# elementwise pieces


def _softplus64(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|)."""
    with np.errstate(all="ignore"):
        return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid64(x):
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _dsigmoid64(x):
    """sigmoid(x) sigmoid(-x) = e / (1 + e)^2, e = exp(-|x|)."""
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(x))
        d = 1.0 + e
        return e / d / d


def sigmoid(input):
    """1 / (1 + exp(-x)), from exp(-|x|) on each side."""
    x, dt = _float_array(input, "input")
    return _out(_sigmoid64(x), dt)


def sigmoid_grad(input):
    """sigmoid(x) sigmoid(-x), as e / (1 + e)^2 (never s (1 - s))."""
    x, dt = _float_array(input, "input")
    return _out(_dsigmoid64(x), dt)


def logsigmoid(input):
    """log(sigmoid(x)) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|))."""
    x, dt = _float_array(input, "input")
    with np.errstate(all="ignore"):
        v = -(np.maximum(-x, 0.0) + np.log1p(np.exp(-np.abs(x))))  # -0.0 where -tiny underflows
        return _out(np.where(x == INF, 0.0, v), dt)


def logsigmoid_grad(input):
    """sigmoid(-x)."""
    x, dt = _float_array(input, "input")
    return _out(_sigmoid64(-x), dt)


def _beta(beta):
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
        raise ValueError(f"beta must be a number, got {beta!r}")
    b = float(beta)
    if not math.isfinite(b) or b == 0:
        raise ValueError(f"beta must be finite and nonzero, got {beta!r}")
    return b


def softplus(input, beta=1.0, threshold=20.0):
    """The exact softplus (1/beta) log(1 + exp(beta x)): ``threshold`` is accepted and ignored (torch's linear
    shortcut above it is not the mathematics)."""
    b = _beta(beta)
    x, dt = _float_array(input, "input")
    with np.errstate(all="ignore"):
        bx = b * x
        l1 = np.log1p(np.exp(-np.abs(bx)))
        v = np.where(bx > 0, x + l1 / b, l1 / b)
        # beta * x overflowed although x is finite: the exact value is x (bx > 0) or below every subnormal
        ovf = np.isinf(bx) & np.isfinite(x)
        v = np.where(ovf & (bx > 0), x, v)
        v = np.where(ovf & (bx < 0), 0.0 if b > 0 else -0.0, v)
        v = np.where(np.isinf(x) & (bx > 0), x, v)
        v = np.where(np.isinf(x) & (bx < 0), 0.0, v)
        return _out(v, dt)


def softplus_grad(input, beta=1.0, threshold=20.0):
    """sigmoid(beta x)."""
    b = _beta(beta)
    x, dt = _float_array(input, "input")
    with np.errstate(all="ignore"):
        return _out(_sigmoid64(b * x), dt)


def _xlogy_setup(input, other):
    x, dtx = _float_array(input, "input")
    y, dty = _float_array(other, "other")
    try:
        shape = np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ValueError(f"input and other shapes {x.shape} and {y.shape} do not broadcast") from None
    return x, y, shape, np.result_type(dtx, dty), dtx


def _log_ext(y):
    with np.errstate(all="ignore"):
        return np.log(y)  # log 0 = -inf, log(negative or -inf) = NaN, log inf = inf


def xlogy(input, other):
    """input * log(other), with 0 * log(y) = 0 for every y but NaN (torch.xlogy)."""
    x, y, shape, dt, _ = _xlogy_setup(input, other)
    xb, yb = np.broadcast_to(x, shape), np.broadcast_to(y, shape)
    with np.errstate(all="ignore"):
        v = _xmul(xb, _log_ext(yb))  # inf * log(1) = 0: log 1 is an exact zero
        v = np.where((xb == 0) & ~np.isnan(yb), 0.0, v)
        v = np.where(np.isnan(yb), NAN, v)
        return _out(v, dt)


def xlogy_grad(input, other):
    """d sum(xlogy(input, other)) / d input: log(other), summed over the dimensions input is broadcast along."""
    x, y, shape, _, dtx = _xlogy_setup(input, other)
    ly = np.broadcast_to(_log_ext(y), shape)
    lead = len(shape) - x.ndim
    axes = list(range(lead)) + [lead + i for i, s in enumerate(x.shape) if s == 1 and shape[lead + i] != 1]
    g = ly
    if axes:
        moved = np.moveaxis(ly, axes, list(range(-len(axes), 0)))
        g = _acc_sum(moved.reshape(moved.shape[:len(shape) - len(axes)] + (-1,)), axis=-1)
        g = g.reshape(x.shape)
    return _out(np.asarray(g).reshape(x.shape), dtx)


# --------------------------------------------------------------------------------------------------
# binary losses


def _same_shape_target(x, target, name="target"):
    t, _ = _float_array(target, name)
    if t.shape != x.shape:
        raise ValueError(f"{name} shape {t.shape} does not match input shape {x.shape}")
    _check_target_nonneg(t)
    return t


def _reduce_elems(v, reduction, n, j=0):
    """Reduction of elementwise losses held as v * 2**-j (weights w 2**-j), the mean over n elements."""
    return _reduce_scaled(v, reduction, j, n, j)


def _elem_grad(g, value, reduction, n):
    """Gradient of the reduced elementwise loss; structural (as the oracle's): NaN only where an element is."""
    if reduction == "mean":
        with np.errstate(all="ignore"):
            g = g / np.float64(n)
    return g


def _bce_setup(input, target, weight):
    p, dt = _float_array(input, "input")
    if (np.isinf(p) | (p < 0) | (p > 1)).any():
        raise ValueError("all elements of input should be between 0 and 1")
    y = _same_shape_target(p, target)
    w = _broadcast_param(_opt_float(weight, "weight"), p.shape, "weight")
    return p, dt, y, (np.ones(p.shape) if w is None else w)


def _bce_me(p, y, w):
    """The elementwise BCE -w (y log p + (1 - y) log1p(-p)) as (m, e): both terms are <= 0 (no cancellation),
    and each product is taken in scaled form, so a subnormal target or weight times a huge log, or a tiny weight
    times a large loss, is not flushed to zero or inf before the reduction."""
    with np.errstate(all="ignore"):
        am, ae = _me_product([y, -np.log(p)])
        bm, be = _me_product([1.0 - y, -np.log1p(-p)])
        lm, le = _me_add(am, ae, bm, be)
        return _me_product([w], nums_me=[(lm, le)])


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-w (y log p + (1 - y) log(1 - p)), log(1 - p) as log1p(-p), 0 * log 0 = 0; no clamp of the log at -100
    (torch's documented deviation): the exact loss, +inf at p = 0 with y > 0."""
    reduction = _reduction(size_average, reduce, reduction)
    p, dt, y, w = _bce_setup(input, target, weight)
    return _out(_reduce_me(*_bce_me(p, y, w), reduction, p.size), dt)


def binary_cross_entropy_grad(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """w (p - y) / (p (1 - p)); w / (1 - p) when y = 0 and -w / p when y = 1 (a zero target term has no
    derivative, even at p = 0 or 1)."""
    reduction = _reduction(size_average, reduce, reduction)
    p, dt, y, w = _bce_setup(input, target, weight)
    with np.errstate(all="ignore"):
        q = 1.0 - p
        # w (p - y) / (p q), its y = 0 and y = 1 forms w / q and -w / p, and the mean's 1 / n, as one scaled
        # product: a subnormal weight over a subnormal p is 1, not inf * 0
        num = np.where(y == 0, 1.0, np.where(y == 1, -1.0, p - y))
        n = np.float64(p.size if reduction == "mean" else 1)
        g = _scaled_ratio([w, num], [np.where(y == 0, 1.0, p), np.where(y == 1, 1.0, q), n])
        g = np.where((w == 0) & ~np.isnan(p) & ~np.isnan(y), 0.0, g)  # a zero weight annihilates, even inf or 0/0
        g = np.where(np.isnan(p) | np.isnan(y) | np.isnan(w), NAN, g)
    return _out(g, dt)


def _bcel_setup(input, target, weight, pos_weight):
    x, dt = _float_array(input, "input")
    y = _same_shape_target(x, target)
    w = _broadcast_param(_opt_float(weight, "weight"), x.shape, "weight")
    pw = _broadcast_param(_opt_float(pos_weight, "pos_weight"), x.shape, "pos_weight")
    return x, dt, y, (np.ones(x.shape) if w is None else w), (np.ones(x.shape) if pw is None else pw)


def _bcel_me(x, y, w, pw):
    """The elementwise w (pw y softplus(-x) + (1 - y) softplus(x)) as (m, e): two nonnegative terms, each a
    scaled product (pw y can be subnormal, softplus(-x) near the largest finite, w either)."""
    with np.errstate(all="ignore"):
        am, ae = _me_product([pw, y], nums_me=[_softplus_me(-x)])
        bm, be = _me_product([1.0 - y], nums_me=[_softplus_me(x)])
        am = np.where(y == 0, 0.0, am)
        bm = np.where(y == 1, 0.0, bm)
        lm, le = _me_add(am, ae, bm, be)
        m, e = _me_product([w], nums_me=[(lm, le)])
        return np.where(np.isnan(x) | np.isnan(y), NAN, m), e


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """w (pos_weight y softplus(-x) + (1 - y) softplus(x)), softplus in its stable, accurate form."""
    reduction = _reduction(size_average, reduce, reduction)
    x, dt, y, w, pw = _bcel_setup(input, target, weight, pos_weight)
    return _out(_reduce_me(*_bcel_me(x, y, w, pw), reduction, x.size), dt)


def binary_cross_entropy_with_logits_grad(input, target, weight=None, size_average=None, reduce=None,
                                          reduction="mean", pos_weight=None):
    """w ((1 - y) sigmoid(x) - pos_weight y sigmoid(-x))."""
    reduction = _reduction(size_average, reduce, reduction)
    x, dt, y, w, pw = _bcel_setup(input, target, weight, pos_weight)
    with np.errstate(all="ignore"):
        omy = 1.0 - y
        # a = pw y sigmoid(-x) and b = (1 - y) sigmoid(x) as mantissa and exponent (a sigmoid far below the
        # smallest float times a huge weight is a normal number), b - a taken at their common scale 2**E, then
        # w (b - a) / n as one scaled product
        ma, ea = _sigmoid_me(-x)
        mb, eb = _sigmoid_me(x)
        am, ae = _me_product([pw, y], nums_me=[(ma, ea)])
        bm, be = _me_product([omy], nums_me=[(mb, eb)])
        am = np.where((y == 0) | (pw == 0), 0.0, am)
        bm = np.where(omy == 0, 0.0, bm)
        # b - a at the common scale 2**E of the larger (the smaller term, if it falls below 2**-1074 there, is
        # below the rounding of the difference)
        E = np.maximum(np.where(am == 0, be, ae), np.where(bm == 0, ae, be))
        d = np.ldexp(bm, np.clip(be - E, -1 << 20, 0).astype(np.int32)) - np.ldexp(
            am, np.clip(ae - E, -1 << 20, 0).astype(np.int32))
        n = np.float64(x.size if reduction == "mean" else 1)
        g = _scaled_ratio([w, d], [n], nums_me=[(np.ones_like(d), E)])
        g = np.where(w == 0, 0.0, g)
        # the sign of a zero: -0.0 where the exact b - a is a negative number that underflowed (a > b, compared
        # through their logarithms log(pw y) - softplus(x) and log(1 - y) - softplus(-x))
        la = np.log(_xmul(pw, y)) - _softplus64(x)
        lb = np.log(omy) - _softplus64(-x)
        g = np.where(g == 0, np.where((la > lb) & (w > 0), -0.0, 0.0), g)
        g = np.where(np.isnan(x) | np.isnan(y) | np.isnan(w) | np.isnan(pw), NAN, g)
    return _out(g, dt)


# --------------------------------------------------------------------------------------------------
# kl_div


def _kl_setup(input, target, reduction, log_target):
    x, dt = _float_array(input, "input")
    t, _ = _float_array(target, "target")
    if t.shape != x.shape:
        raise ValueError(f"target shape {t.shape} does not match input shape {x.shape}")
    if not log_target:
        _check_target_nonneg(t)
    n = (x.shape[0] if x.ndim else 1) if reduction == "batchmean" else x.size
    return x, dt, t, n


def _kl_values(x, t, log_target):
    with np.errstate(all="ignore"):
        if log_target:
            d = t - x
            big = t > 700  # e^t overflows although e^t (t - x) may not: e^(t/2) (t - x) e^(t/2)
            h = np.exp(np.where(big, t / 2, 0.0))
            v = np.where(big, (h * d) * h, np.exp(t) * d)
            # e^t below the normal range (t < -700) keeps too few bits, yet times a huge t - x the product is
            # back in range: (mantissa, exponent) of e^t (Cody-Waite) times d, rounded once
            tiny = (t < -700.0) & np.isfinite(d) & (d != 0)
            if tiny.any():
                mt, et = _exp_me(np.where(tiny, t, 0.0))
                md, ed = _me(np.where(tiny, d, 1.0))
                e = np.clip(et + ed, -1 << 20, 1 << 20).astype(np.int32)
                v = np.where(tiny, np.ldexp(mt * md, e), v)
            v = np.where(d == 0, 0.0, v)  # t == x exactly (both finite)
            v = np.where(t == -INF, 0.0, v)  # zero mass contributes nothing
            v = np.where(np.isnan(t) | np.isnan(x), NAN, v)
            return v
        v = t * (np.log(t) - x)
        return np.where(np.isnan(x), NAN, np.where(t == 0, 0.0, v))


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Pointwise target (log target - input) (``log_target``: exp(target) (target - input)); input holds
    log-probabilities; reductions none, sum, mean (over elements) and batchmean (over the first dimension)."""
    reduction = _reduction(size_average, reduce, reduction, ("none", "mean", "sum", "batchmean"))
    x, dt, t, n = _kl_setup(input, target, reduction, log_target)
    v = _kl_values(x, t, log_target)
    red = "mean" if reduction == "batchmean" else reduction
    return _out(_reduce_elems(v, red, n), dt)


def kl_div_grad(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """-target (``log_target``: -exp(target)), divided by the mean's count."""
    reduction = _reduction(size_average, reduce, reduction, ("none", "mean", "sum", "batchmean"))
    x, dt, t, n = _kl_setup(input, target, reduction, log_target)
    red = "mean" if reduction == "batchmean" else reduction
    v = _reduce_elems(_kl_values(x, t, log_target), red, n)
    with np.errstate(all="ignore"):
        g = np.where(t == -INF, 0.0, -np.exp(t)) if log_target else 0.0 - t
    return _out(_elem_grad(g, v, red, n), dt)


# --------------------------------------------------------------------------------------------------

def _quiet(fn):
    """NumPy's warnings off: the overflows, underflows and invalid operations inside are all intended."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(all="ignore"):
            return fn(*args, **kwargs)

    return wrapper


for _name in __all__:
    if _name not in ("grad", "PAIRWISE_MAX_C"):
        globals()[_name] = _quiet(globals()[_name])

_GRADS = {
    "cross_entropy": cross_entropy_grad,
    "nll_loss": nll_loss_grad,
    "binary_cross_entropy": binary_cross_entropy_grad,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits_grad,
    "kl_div": kl_div_grad,
    "log_softmax": log_softmax_grad,
    "softmax": softmax_grad,
    "logsumexp": logsumexp_grad,
    "sigmoid": sigmoid_grad,
    "logsigmoid": logsigmoid_grad,
    "softplus": softplus_grad,
    "xlogy": xlogy_grad,
}


def grad(name, *args, **kwargs):
    """d(output.sum()) / d(input) of the function ``name`` called with these arguments: an array of the input's
    dtype and shape (NaN everywhere when a loss is NaN, as the oracle defines it)."""
    try:
        fn = _GRADS[name]
    except KeyError:
        raise ValueError(f"unknown function {name!r}: expected one of {', '.join(_GRADS)}") from None
    return fn(*args, **kwargs)
