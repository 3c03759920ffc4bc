"""Certified fast path of the elementwise functions and losses: double-double evaluation with a rigorous bound.

Why: every call of sigmoid, logsigmoid, softplus, binary_cross_entropy, binary_cross_entropy_with_logits, kl_div
and xlogy took the mpmath path (an expression per element, Ziv's loop per rounding), values and gradients, in every
format: a large share of the battery's time. Here each output (and each gradient component) is evaluated for the
whole array at once in double-double arithmetic (``oracles.fast64``'s error-free transformations), as a value
z~ = hi + lo with an absolute bound B >= |z~ - z|. One evaluation serves every format: B is about 2**-95 of the
value, so it decides float64 roundings except within about 2**-40 relative of a rounding boundary, and float32,
float16, bfloat16 ones nearly always (a binary64-only pass, as oracles/fast.py has, would not pay here: the cost
of these arrays is NumPy's per-call overhead, not the arithmetic). Where the enclosure does not decide a rounding,
the mpmath path decides it (``Exact.deferred``: ``build`` runs the mpmath oracle on that element alone, or on the
whole call for a reduced loss). Inputs this module does not take (NaN or infinite entries, values whose result is
infinite or NaN, integers, 0-d or ragged inputs, beta outside the ranges below, broadcasting it does not do)
raise ``fast.NotEligible``: the mpmath path answers them, and reports bad input.

The same evaluation answers the measurement's other questions without expressions (``DeferredSource`` in
oracles/exact.py): ``enclose`` (the ball (hi + lo, B) when B <= |hi + lo| 2**-rel_bits), ``magnitude``
(|hi| + |lo| + B rounded up) and ``kappa_magnitude`` (an upper bound of the condition number, below).

Arithmetic with error bounds (u = 2**-53; A3 of oracles/fast.py: IEEE binary64, round to nearest, gradual
underflow, checked at every call by ``fast.attempt``)
--------------------------------------------------------------------------------------------------------------
Every intermediate is a triple V = (h, l, e): a dd value z~ = h + l (|l| <= u |h|, or l = 0) and an absolute
bound e >= |z~ - z| of its distance to the exact real z it stands for. Inputs are exact (e = 0). Each operation
returns the dd result of fast64's algorithm on (h, l) and a bound that is the propagated bound of the operands
plus the operation's own rounding (charges of oracles/fast64.py, over 16x the published bounds):

  E1. add:  z~ = a~ (+) b~ (JMP Alg. 6, relative <= 3u**2/(1 - 4u) of |a~ + b~| <= |z~| (1 + 2**-100)):
      e = ea + eb + DELTA_ADD |h_z| (1 + 2**-50) + F.
  E2. mul:  z~ = a~ (x) b~: (ch, cl1) = TwoProd(ah, bh), t = RN(RN(ah bl) + RN(al bh)), c = RN(cl1 + t),
      (h, l) = FastTwoSum(ch, c). Dropped al bl <= u**2 |ah bh|, the two products' roundings <= 2 u**2 |ah bh|,
      t's <= 2u**2 (1 + u) |ah bh|, c's <= 3u**2 (1 + 3u) |ah bh|: <= 8.01 u**2 |ah bh| <= 2**-102.9 |a~ b~|
      (charged DELTA_MUL = 2**-100 of |h_z|). Propagation: |a~ b~ - a b| <= |a~| eb + (|b~| + eb) ea:
      e = (|ah| eb + (|bh| + eb) ea)(1 + 2**-50) + DELTA_MUL |h_z| (1 + 2**-50) + F.
      Times a binary64 w (JMP Alg. 7): e = |w| ea + DELTA_MUL |h_z| (1 + 2**-50) + F.
  E3. div: z~ = a~ (/) b~ (JMP Alg. 17, DELTA_DIV = 2**-98): a~/b~ - a/b = (a~ - a)/b + (a~/b~)(b - b~)/b, so
      e = (ea + |h_z| (1 + 2**-50) eb) / (|bh| (1 - 2**-50) - eb) + DELTA_DIV |h_z| (1 + 2**-50) + F
      (infinite where the denominator's enclosure reaches 0).
  E4. exp of d = dh + dl <= 0 (fast64.exp_dd, steps 2-5 there): |E~ - e^d| <= e^d eps + TAU_E with
      eps = EPS_E + RHO_R (1 + |d|) and e^d <= (|E~| + TAU_E)/(1 - eps): e = eps |Eh| (1 + 2**-40) + 2 TAU_E.
      e^t for 0 < t <= 700 is 1 / e^-t (E3).
  F = FLOOR64 = 2**-1070 in every operation: the relative bounds above assume no underflow inside the algorithm
  (a product below 2**-969 has an error term that underflows); each underflowed partial result costs at most
  2**-1075, and an operation has fewer than 32 of them. Splits need |operands| <= 2**995 (fast64.BIG): a call
  with a larger operand where a product is taken is not eligible. A non-finite h, l or e makes the bound infinite
  (never certified).
  Every bound is computed in binary64 from nonnegative terms; a few dozen roundings per operation and a few
  hundred along a chain stay below 2**-40 relative, covered by the final INFLATE = 1 + 2**-20 (|a~| <= |ah| (1 +
  2**-52) is likewise covered by the (1 + 2**-50) factors). A bound of exactly 0 marks an exact value.

The logarithm (``_log1p_series``, ``_log_pos``, ``_log1m``): log1p(t) = 2 atanh(s), s = t / (2 + t), for t (a V)
in [-0.3, 0.42], so |s| <= 0.1765 and Q = s**2 <= 0.0312 (2**-5.004); 2 atanh(s) = 2 s P(Q),
P(Q) = sum_k Q**k / (2k + 1). P is evaluated by Horner's rule: the terms k = 10..20 in binary64 on Qh (positive
terms, 22 roundings: <= 23u of the tail, plus |Q - Qh| <= |Ql| + e_Q times dP/dQ <= 1 on the tail, plus the
omitted k >= 21: <= Q**11 / (43 (1 - Q)) <= 2**-60.3, all absolute on the tail value T), then k = 9..0 in dd with
E1, E2 (the constants 1/(2k + 1) as dd from mpmath, error <= u**2 of the constant, carried as their e). The tail
enters multiplied by Q**10 <= 2**-50, so the whole is within about 2**-95 of log1p(t). No assumption on any
library function: the atanh series is evaluated by the operations above, and s's bound by E1, E3.
log y for a binary64 y > 0: y = 2**k m with m in [0.7, 1.4) (frexp, exact), t = m - 1 exact (Sterbenz),
log y = k ln2 + log1p(t), with k ln2 = (LN2H, LN2L, 2**-107) times k (E2; |ln2 - LN2H - LN2L| <= u |LN2L| <=
2**-107) and the sum by E1 (|k ln2| >= 0.69 and |log1p t| <= 0.35 when k != 0: no cancellation).
log(1 - p) for 0 <= p < 1: log1p(-p) with t = -p exact when p <= 0.3; else 1 - p = qh + ql exactly (TwoSum),
reduced as above with both parts scaled by the same power of two (exact: the scale is >= 1).
log1p(E) for E in [0, 1] carried with an error (softplus): t = E when E <= 0.4, else log1p(E) = ln2 + log1p((E - 1)/2)
((E - 1)/2 in [-0.3, 0]: E1, then an exact halving).

The functions (x, p, y, t, w, pw exact binary64 inputs; every formula is the mpmath oracle's value, rearranged
exactly)
----------------------------------------------------------------------------------------------------------------
  sigmoid(x):  E = e^-|x| (E4), D = 1 + E (E1), sigma(|x|) = 1/D, sigma(-|x|) = E/D (E3); sigma(0) = 1/2 exact.
  softplus_beta(x): z = beta x (TwoProd: exact where |z| >= 2**-960; |beta|, |x| <= 2**995, else not eligible;
      below 2**-960 z = RN(beta x), within 2**-1075 of beta x, and 2**-1074 / |beta| is added to the bound, as
      softplus_beta moves by sigma(z) <= 1 times that over |beta|, and 2**-1074 to sigma(z)'s; z = x when
      beta = 1), E = e^-|z|, L = log1p(E); z <= 0: L / beta, z > 0: x + L / beta (E1, E3; beta = 1: no division).
      logsigmoid(x) = -softplus_1(-x) (exact negation).
  binary_cross_entropy: -w (y log p + (1 - y) log(1 - p)), each product by E2 with 1 - y = TwoSum(1, -y) exact;
      a term is an exact 0 where its coefficient is 0 or its log is log 1 (p = 1, resp. p = 0); both logs are <= 0
      and the coefficients >= 0: no cancellation, and a nonzero value has the sign of w.
  binary_cross_entropy_with_logits: w (pw y softplus(-x) + (1 - y) softplus(x)), pw y = TwoProd exact (|pw|, |y| <=
      2**995 and pw y = 0 or |pw y| >= 2**-960, else not eligible), 1 - y exact; the sign is known when pw y >= 0
      and 1 - y >= 0.
  kl_div: t (log t - x) (t = 0: exact 0; t = 1: -x exact); log_target: e^t (t - x) with t - x = TwoSum exact (0:
      an exact 0, else the value has the sign of t - x).
  xlogy: x log y (x = 0 or y = 1: exact 0; sign(x) sign(y - 1)).
  Reductions: sum and mean (numel; kl_div's batchmean: the first dimension) by fast64.reduce_dd (fast64 step 11:
  math.fsum of every hi and lo, the bounds summed, the mean's division by E3's analysis); the sign of the total is
  known when every nonzero term has the same known sign; a total of exact zeros is an exact 0.
  Tiny values: where the exponential's argument is <= -745.2, e^a < 2**-1075, and sigmoid(x) < e^x, softplus(x) <
  e^x (log1p(E) < E), sigma(-x) < e^-x: such a value lies strictly between 0 and 2**-1075 (of known sign), so it
  rounds to a zero of that sign in every format (``tiny``); its enclosure and magnitude come from the V (rigorous
  but absolute). With beta, softplus_beta(x) < e^z / |beta|: tiny where z <= -745.2 - max(0, 1 - e), |beta| =
  m 2**e (so ln(1/|beta|) < 1 - e). A gradient component u f'(x) / N is tiny where f' is and |u| <= N.
  Special values, as the mpmath path gives them: binary_cross_entropy's log 0 with a nonzero coefficient (p = 0 with
  y != 0, p = 1 with y != 1) is w * inf (not eligible at w = 0: NaN), xlogy's x log y is -sign(x) inf at y = 0 and
  NaN at y < 0 (x != 0); a reduced loss with infinite terms of one sign is that infinity (else not eligible). Their
  outputs are ``Exact.deferred`` with the special value set, and their gradient components are the mpmath path's
  (``gradient_of``: never deferred, so a special component is known before a magnitude is asked of it).
  What falls back by design: float64 results below about 2**-1000 (F, charged per operation, reaches a rounding
  boundary), exact rational results that are float64 ties (a bound > 0 cannot decide a tie; an exact
  derivative times the upstream over a power-of-two denominator is kept exact, bound 0), and a gradient above 2**995
  (1/p at a tiny p: the splits would overflow; bound infinite).

Condition numbers (``kappa_magnitude``): kappa = sum_j |x_j d f / d x_j| over the oracle's ``input`` (what
oracles/results.py ``kappa_of`` sums over the pairs each oracle gives; targets, weights and ``other`` are data):
sigmoid |x| sigma(x) sigma(-x); logsigmoid |x| sigma(-x); softplus |x| sigma(beta x); binary_cross_entropy
|w| |y - p| / (1 - p) (= |p| |w| |y/p - (1 - y)/(1 - p)|; |w| at p = 1), binary_cross_entropy_with_logits
|x| |w| |(1 - y) sigma(x) - pw y sigma(-x)|, kl_div |x| t (|x| e^t), xlogy |x log y| (= |value|); a reduced loss
sums them over the elements and divides by the mean's denominator. Each is evaluated as a V and bounded above by
(|h| + |l| + e)(1 + 2**-40) (the products and sums of such bounds in binary64 are multiplied by (1 + 2**-40) per
step: each rounding is <= u relative). Where e exceeds 2**-30 of the value (a cancellation), the element's
kappa_magnitude is None and the measurement takes the mpmath kappa.

Gradients (``register(..., gradient=...)``): component k of the gradient of sum(upstream * outputs) with respect to
the flattened input is u_k f'(x_k) (u: the upstream of output k, or of the single reduced output, divided by the
mean's denominator): the derivatives above as V (sigmoid' = sigma(x) sigma(-x), logsigmoid' = sigma(-x),
softplus' = sigma(beta x), BCE -w (y - p) / (p (1 - p)) with its one-sided cases, BCE-with-logits
w ((1 - y) sigma(x) - pw y sigma(-x)), kl_div -t or -e^t, xlogy log y), times u (E2) and divided by the
denominator (E3). An exact zero (u = 0, y = p, ...) is +0.0 as in the mpmath path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from mpmath import libmp

from . import fast, fast64
from .exact import Exact, ExactTree
from .formats import Format
from .tensors import REDUCTIONS, legacy_reduction, unflatten

np: Any
try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy is a test dependency
    np = None

__all__ = ["NAMES", "Source", "values_of", "gradient_of"]

U = 2.0**-53
DELTA_ADD = fast64.DELTA_ADD
DELTA_MUL = fast64.DELTA_MUL
DELTA_DIV = fast64.DELTA_DIV
F = fast64.FLOOR64
R50 = 1.0 + 2.0**-50
INFLATE = 1.0 + 2.0**-20
TINY_ARG = -745.2  # e^a < 2**-1075 for a <= this (ln 2**-1075 = -745.133)
BIG = fast64.BIG
SMALL_PROD = 2.0**-960
KAPPA_SLACK = 2.0**-30
NAMES = ("sigmoid", "logsigmoid", "softplus", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
         "xlogy")

_consts: dict[str, Any] = {}


def _constants():
    """LN2 (hi, lo) and the dd coefficients 1/(2k + 1), k = 0..20, from mpmath at 200 bits."""
    if not _consts:
        rn = libmp.round_nearest
        ln2 = libmp.mpf_ln2(200)
        h = libmp.to_float(ln2, rnd=rn)
        _consts["LN2"] = (h, libmp.to_float(libmp.mpf_sub(ln2, libmp.from_float(h), 200), rnd=rn))
        cs = []
        for k in range(21):
            c = libmp.mpf_div(libmp.fone, libmp.from_int(2 * k + 1), 200)
            ch = libmp.to_float(c, rnd=rn)
            cs.append((ch, libmp.to_float(libmp.mpf_sub(c, libmp.from_float(ch), 200), rnd=rn)))
        _consts["C"] = cs
    return _consts


# --------------------------------------------------------------------------------------------------
# V = (h, l, e): a dd value and an absolute error bound (E1-E4)


class V:
    __slots__ = ("h", "l", "e")

    def __init__(self, h: Any, l: Any, e: Any) -> None:  # noqa: E741
        self.h, self.l, self.e = h, l, e

    def where(self, mask: Any, other: "V") -> "V":
        return V(np.where(mask, self.h, other.h), np.where(mask, self.l, other.l), np.where(mask, self.e, other.e))

    def neg(self) -> "V":
        return V(-self.h, -self.l, self.e)

    def up(self) -> Any:
        """An upper bound of |z| (binary64)."""
        return (np.abs(self.h) + np.abs(self.l) + self.e) * (1 + 2.0**-40)


def exact(h: Any, l: Any = 0.0) -> V:  # noqa: E741
    h = np.asarray(h, dtype=np.float64)
    return V(h, np.zeros_like(h) + l, np.zeros_like(h))


def _clean(h, l, e):  # noqa: E741
    bad = ~(np.isfinite(h) & np.isfinite(l) & np.isfinite(e))
    if bad.any():
        e = np.where(bad, np.inf, e)
    return V(h, l, e)


def add(a: V, b: V) -> V:
    h, l = fast64.dd_add(a.h, a.l, b.h, b.l)  # noqa: E741
    return _clean(h, l, a.e + b.e + DELTA_ADD * np.abs(h) * R50 + F)


def _dd_mul(ah, al, bh, bl):
    ch, cl1 = fast64.two_prod(ah, bh)
    t = ah * bl + al * bh
    return fast64.fast_two_sum(ch, cl1 + t)


def mul(a: V, b: V) -> V:
    h, l = _dd_mul(a.h, a.l, b.h, b.l)  # noqa: E741
    e = (np.abs(a.h) * b.e + (np.abs(b.h) + b.e) * a.e) * R50 + DELTA_MUL * np.abs(h) * R50 + F
    return _clean(h, l, np.where((np.abs(a.h) > BIG) | (np.abs(b.h) > BIG), np.inf, e))


def mul_d(a: V, w: Any) -> V:
    h, l = fast64.dd_mul_d(a.h, a.l, w)  # noqa: E741
    e = np.abs(w) * a.e + DELTA_MUL * np.abs(h) * R50 + F
    return _clean(h, l, np.where((np.abs(a.h) > BIG) | (np.abs(w) > BIG), np.inf, e))


def div(a: V, b: V) -> V:
    h, l = fast64.dd_div(a.h, a.l, b.h, b.l)  # noqa: E741
    den = np.abs(b.h) * (1 - 2.0**-50) - b.e
    e = np.where(den > 0, (a.e + np.abs(h) * R50 * b.e) / np.where(den > 0, den, 1.0), np.inf)
    e = e + DELTA_DIV * np.abs(h) * R50 + F
    return _clean(h, l, np.where((np.abs(b.h) > BIG) | (np.abs(h) > BIG), np.inf, e))


def exp_nonpos(dh: Any, dl: Any = None) -> V:
    """E4: e^(dh + dl) for dh <= 0 (|dl| <= u |dh|)."""
    dh = np.asarray(dh, dtype=np.float64)
    dl = np.zeros_like(dh) if dl is None else dl
    Eh, El, d = fast64.exp_dd(dh, dl)
    eps = fast64.EPS_E + fast64.RHO_R * (1 + np.abs(d))
    return _clean(Eh, El, eps * np.abs(Eh) * (1 + 2.0**-40) + 2 * fast64.TAU_E)


def _ln2_times(k):
    c = _constants()
    return mul_d(V(np.full(k.shape, c["LN2"][0]), np.full(k.shape, c["LN2"][1]), np.full(k.shape, 2.0**-107)), k)


def log1p_series(t: V) -> V:
    """log1p(t) for t in [-0.3, 0.42] (the caller guarantees it, error included)."""
    cs = _constants()["C"]
    two = exact(np.full(t.h.shape, 2.0))
    s = div(t, add(two, t))
    Q = mul(s, s)
    qh = np.abs(Q.h)
    T = np.full(qh.shape, cs[20][0])
    for k in range(19, 9, -1):
        T = cs[k][0] + qh * T
    # 23u of the tail's roundings (and the dropped lo parts of its constants, < u each), |Q - Qh| through
    # dP/dQ <= 1, the omitted terms k >= 21
    eT = 23 * U * T + np.abs(Q.l) + Q.e + 2.0**-60.3
    P = V(T, np.zeros_like(T), eT)
    for k in range(9, -1, -1):
        c = cs[k]
        P = add(V(np.full(qh.shape, c[0]), np.full(qh.shape, c[1]), np.full(qh.shape, 2.0**-106 * c[0])), mul(Q, P))
    r = mul(s, P)
    return V(2 * r.h, 2 * r.l, 2 * r.e)


def _reduce_mantissa(xh, xl):
    """x = xh + xl > 0 (exact dd, |xl| <= u |xh|): (k, t) with x = 2**k (1 + t), t an exact dd in [-0.3, 0.4]."""
    m, k = np.frexp(xh)
    low = m < 0.7
    k = np.where(low, k - 1, k)
    mh = np.ldexp(xh, -k)
    ml = np.ldexp(xl, -k)
    th, tl = fast64.two_sum(mh - 1.0, ml)
    return k.astype(np.float64), V(th, tl, np.zeros_like(th))


def log_pos(x: Any) -> V:
    """log x for binary64 x > 0 (callers substitute 1 elsewhere)."""
    k, t = _reduce_mantissa(x, np.zeros_like(x))
    L = log1p_series(t)
    nz = k != 0
    if not nz.any():
        return L
    return add(_ln2_times(k), L).where(nz, L)


def log1m(p: Any) -> V:
    """log(1 - p) for binary64 0 <= p < 1 (callers substitute 0 elsewhere); an exact 0 at p = 0."""
    near = p <= 0.3
    L = log1p_series(exact(np.where(near, -p, 0.0)))
    if not near.all():
        qh, ql = fast64.two_sum(np.ones_like(p), -np.where(near, 0.5, p))
        k, t = _reduce_mantissa(qh, ql)
        L2 = add(_ln2_times(k), log1p_series(t))
        L = L.where(near, L2)
    zero = p == 0
    return V(np.where(zero, 0.0, L.h), np.where(zero, 0.0, L.l), np.where(zero, 0.0, L.e))


def log1p_unit(E: V) -> V:
    """log1p(E) for E in [0, 1] (a V whose enclosure lies in [-2**-60, 1 + 2**-60])."""
    small = E.h <= 0.4
    L = log1p_series(E.where(small, exact(np.zeros_like(E.h))))
    if not small.all():
        m1 = add(E, exact(np.full(E.h.shape, -1.0)))
        half = V(0.5 * m1.h, 0.5 * m1.l, 0.5 * m1.e)
        L2 = add(_ln2_times(np.ones_like(E.h)), log1p_series(half.where(~small, exact(np.zeros_like(E.h)))))
        L = L.where(small, L2)
    return L


def sigmoid_pair(x: Any, xl: Any = None) -> tuple[V, V, Any]:
    """(sigma(z), sigma(-z), E = e^-|z|) for z = x + xl (an exact dd); sigma(0) = 1/2 exactly."""
    a = np.abs(x)
    al = None if xl is None else np.where(x < 0, -xl, xl)
    E = exp_nonpos(-a, None if al is None else -al)
    one = exact(np.ones_like(a))
    D = add(one, E)
    big, small = div(one, D), div(E, D)
    pos = x >= 0
    sx, snx = big.where(pos, small), small.where(pos, big)
    zero = x == 0
    if zero.any():
        half = exact(np.full(a.shape, 0.5))
        sx, snx = half.where(zero, sx), half.where(zero, snx)
    return sx, snx, E


def softplus_v(z: Any, zl: Any = None, x: Any = None, beta: float = 1.0) -> V:
    """softplus_beta(x) from z = beta x = z + zl (exact dd): L = log1p(e^-|z|); z <= 0: L / beta, else x + L / beta."""
    a = np.abs(z)
    al = None if zl is None else np.where(z < 0, -zl, zl)
    E = exp_nonpos(-a, None if al is None else -al)
    L = log1p_unit(E)
    if beta != 1.0:
        L = div(L, exact(np.full(a.shape, beta)))
    xx = z if x is None else x
    pos = add(exact(xx), L)
    return pos.where(z > 0, L)


# --------------------------------------------------------------------------------------------------
# the deferred source


def _final(v: V) -> V:
    e = np.where(v.e > 0, v.e * INFLATE + F, v.e)
    return V(v.h, v.l, np.where(np.isfinite(e), e, np.inf))


class Source:
    """The ``Exact.deferred`` source of a batch of outputs: V arrays (bounds final), known signs, the tiny
    elements, kappa upper bounds (or None), and the mpmath builder of one output."""

    def __init__(self, v: V, sign: Any, builder: Callable[[int], Exact], tiny: Any = None,
                 kappa: Any = None) -> None:
        v = _final(v)
        self.h, self.l, self.e = v.h.ravel(), v.l.ravel(), v.e.ravel()
        self.sign = np.asarray(sign, dtype=np.int8).ravel() if sign is not None else np.zeros(self.h.size, np.int8)
        self.tiny = None if tiny is None else np.asarray(tiny, dtype=np.int8).ravel()
        self.kappa = None if kappa is None else np.asarray(kappa, dtype=np.float64).ravel()
        self.builder = builder
        self._certified: dict[str, tuple[list, list]] = {}
        self._lists: tuple | None = None

    def _decide_all(self, f: Format) -> tuple[list, list]:
        with np.errstate(all="ignore"):
            if f.name == "float64":
                values, ok = fast64.certify64(self.h, self.l, self.e, self.sign)
            else:
                wide = np.abs(self.l) + self.e
                values, ok = fast.certify(self.h, np.where(wide > 0, wide * R50 + 2.0**-1074, 0.0), f, self.sign)
            if self.tiny is not None:
                t = self.tiny != 0
                values = np.where(t, np.where(self.tiny < 0, -0.0, 0.0), values)
                ok = ok | t
        return values.tolist(), ok.tolist()

    def decide(self, key: int, f: Format) -> float | None:
        c = self._certified.get(f.name)
        if c is None:
            c = self._certified[f.name] = self._decide_all(f)
        if c[1][key]:
            fast._count("decided")
            return c[0][key]
        fast._count("fallback")
        return None

    def decide_many(self, keys: Any, f: Format) -> tuple[Any, Any]:
        """``decide`` of many keys (a list): (values, ok); a key not ok is left to ``decide``."""
        keys = np.asarray(keys, dtype=np.int64)
        c = self._certified.get(f.name)
        if c is None:
            c = self._certified[f.name] = self._decide_all(f)
        values, ok = np.asarray(c[0], dtype=np.float64)[keys], np.asarray(c[1], dtype=bool)[keys]
        fast._count("decided", int(np.count_nonzero(ok)))
        return values, ok

    def enclose_many(self, keys: Any, rel_bits: int) -> tuple[Any, Any, Any]:
        """``enclose`` of many keys: (hi, lo, ok), ok where its midpoint is exactly hi + lo (``fast.enclosed_many``
        judges the same test); a key not ok is left to ``enclose``."""
        keys = np.asarray(keys, dtype=np.int64)
        h, lo, e = self.h[keys], self.l[keys], self.e[keys]
        fin = np.isfinite(h) & np.isfinite(lo) & np.isfinite(e)
        yes, _ = fast.enclosed_many(np.where(fin, h, 0.0), np.where(fin, lo, 0.0), np.where(fin, e, 1.0), rel_bits)
        return h, lo, fin & yes

    def build(self, key: int) -> Exact:
        with fast.disabled():
            return self.builder(key)

    def _scalars(self, key):
        if self._lists is None:
            self._lists = (self.h.tolist(), self.l.tolist(), self.e.tolist())
        return self._lists[0][key], self._lists[1][key], self._lists[2][key]

    def enclose(self, key: int, rel_bits: int) -> tuple[tuple, tuple] | None:
        h, lo, e = self._scalars(key)
        if not (math.isfinite(h) and math.isfinite(lo) and math.isfinite(e)):
            return None
        mid = libmp.mpf_add(libmp.from_float(h), libmp.from_float(lo), 0)  # exact (precision 0: no rounding)
        if e == 0:
            return mid, libmp.fzero
        if not mid[1]:
            return None
        rad = libmp.from_float(e)
        if libmp.mpf_cmp(libmp.mpf_shift(libmp.mpf_abs(mid), -rel_bits), rad) < 0:
            return None
        return mid, rad

    def magnitude(self, key: int) -> float | None:
        h, lo, e = self._scalars(key)
        m = (abs(h) + abs(lo) + e) * (1 + 2.0**-50)
        return m if math.isfinite(m) else None

    def kappa_magnitude(self, key: int) -> float | None:
        if self.kappa is None:
            return None
        k = float(self.kappa[key])
        return k if math.isfinite(k) and k >= 0 else None


def _kappa_bound(v: V, scale: Any = 1.0) -> Any:
    """Upper bounds of |z| scale (scale >= 0 binary64), NaN where v's bound exceeds KAPPA_SLACK of |z|."""
    up = v.up() * scale * (1 + 2.0**-40) + 2.0**-1074  # the product's rounding, underflow included
    loose = v.e > KAPPA_SLACK * np.abs(v.h)
    return np.where(loose & (v.e > 0), np.nan, up)


# --------------------------------------------------------------------------------------------------
# reading the calls


def _read(obj, finite=True):
    a = fast._read(obj)
    if finite and not np.isfinite(a).all():
        raise fast.NotEligible
    return a


def _same_shape(obj, shape):
    a = _read(obj)
    if a.shape != shape:
        raise fast.NotEligible
    return a


def _broadcast(obj, shape):
    if obj is None:
        return None
    a = _read(obj)
    try:
        if np.broadcast_shapes(a.shape, shape) != shape:
            raise fast.NotEligible
    except ValueError:
        raise fast.NotEligible from None
    return np.ascontiguousarray(np.broadcast_to(a, shape))


def _per_element(fn: Callable[..., ExactTree], args: Callable[[int], dict], shape: tuple) -> Callable[[int], Exact]:
    """Output k's mpmath result, from a call on element k alone, its gradient moved to position k."""
    def build(key):
        res = fn(**args(key))
        return fast._remap(res[0], [key], shape)
    return build


def _whole(call: Callable[[], ExactTree]) -> Callable[[int], Exact]:
    memo: list = []

    def build(key):
        if not memo:
            res = call()
            memo.append(res if isinstance(res, Exact) else fast._flatten(res))
        return memo[0] if isinstance(memo[0], Exact) else memo[0][key]
    return build


def _reduce(v: V, sign: Any, zero: Any, reduction: str, denom: int) -> tuple[V, int]:
    """(the sum or mean as a 1-element V, its known sign): fast64 step 11."""
    if zero.all():
        return exact(np.zeros(1)), 0
    v = _final(v)
    kept = np.ones(denom if reduction != "sum" else 1, dtype=bool)
    res = fast64.reduce_dd(v.h.ravel(), v.l.ravel(), v.e.ravel(), np.ones(kept.size), kept,
                           "sum" if reduction == "sum" else "mean", False)
    if res is None:
        raise fast.NotEligible
    live = ~zero.ravel()
    s = np.asarray(sign).ravel()[live]
    sg = int(s[0]) if s.size and (s == s[0]).all() else 0
    return V(np.array([res[0]]), np.array([res[1]]), np.array([res[2]])), sg


def _reduction_of(kw, allowed=REDUCTIONS):
    return legacy_reduction(kw.get("size_average"), kw.get("reduce"), kw.get("reduction", "mean"), allowed)


# --------------------------------------------------------------------------------------------------
# per oracle: (value V, sign, zero mask, tiny, kappa per element, derivative V with its sign and zero mask)


class _Eval:
    """One call's elementwise quantities: ``value`` (V per element), ``sign``, ``zero`` (exact zeros), ``tiny``,
    ``kappa`` (per element, NaN: unknown), ``shape``; ``deriv()`` -> (V, sign, zero, tiny) of d value_k / d x_k."""

    shape: tuple
    value: V
    sign: Any
    zero: Any
    tiny: Any = None
    kappa: Any = None
    special: Any = None  # +-inf or NaN where the value is that special value (0.0 elsewhere), or None
    gspecial: Any = None  # where the derivative is special (those components come from the mpmath gradient)

    def deriv(self):
        raise fast.NotEligible


def _zeroed(v: V, zero: Any) -> V:
    if not zero.any():
        return v
    return V(np.where(zero, 0.0, v.h), np.where(zero, 0.0, v.l), np.where(zero, 0.0, v.e))


class _Sigmoid(_Eval):
    def __init__(self, input):
        x = self.x = _read(input)
        self.shape = x.shape
        self.sx, self.snx, _ = sigmoid_pair(x)
        self.value = self.sx
        self.sign = np.ones(x.shape, np.int8)
        self.zero = np.zeros(x.shape, bool)
        self.tiny = np.where(x <= TINY_ARG, 1, 0)
        self.kappa = _kappa_bound(mul(self.sx, self.snx), np.abs(x))

    def deriv(self):
        d = mul(self.sx, self.snx)
        if (self.x == 0).any():
            d = exact(np.full(self.shape, 0.25)).where(self.x == 0, d)
        return d, np.ones(self.shape, np.int8), np.zeros(self.shape, bool), np.abs(self.x) >= -TINY_ARG


class _Softplus(_Eval):
    def __init__(self, input, beta=1.0, threshold=20.0, negate=False):
        if isinstance(beta, bool) or not isinstance(beta, (int, float)):
            raise fast.NotEligible
        beta = float(beta)
        if not math.isfinite(beta) or beta == 0 or abs(beta) > BIG:
            raise fast.NotEligible
        x = self.x = _read(input)
        self.shape = x.shape
        if negate:  # logsigmoid(x) = -softplus(-x)
            x = -x
        if beta == 1.0:
            z, zl = x, None
        else:
            if np.abs(x).max() > BIG:
                raise fast.NotEligible
            z, zl = fast64.two_prod(x, np.full(x.shape, beta))
            # |beta x| < 2**-960: the TwoProd error term may underflow; z = RN(beta x) is within 2**-1075 of
            # beta x, and softplus_beta moves by at most sigma <= 1 times that over |beta| (sigma by 1/4 of it)
            zt = np.abs(z) < SMALL_PROD
            zl = np.where(zt, 0.0, zl)
            self._zt = np.where(zt, 2.0**-1074, 0.0)
        self.z, self.zl, self.beta, self.negate = z, zl, beta, negate
        v = softplus_v(z, zl, x, beta)
        if beta != 1.0:
            v = V(v.h, v.l, v.e + self._zt / abs(beta))
        sb = 1 if beta > 0 else -1
        self.value = v.neg() if negate else v
        self.sign = np.full(x.shape, -sb if negate else sb, np.int8)
        self.zero = np.zeros(x.shape, bool)
        # |L / beta| < e^z / |beta| < 2**-1075 where z <= TINY_ARG - ln(1/|beta|); 1/|beta| <= 2**(1 - e) with
        # |beta| = m 2**e (frexp), and ln(2**(1 - e)) < 1 - e
        shift = max(0, 1 - math.frexp(abs(beta))[1])
        self.tiny = np.where(z <= TINY_ARG - shift, -sb if negate else sb, 0)
        self._sig = sigmoid_pair(z, zl)
        if beta != 1.0:
            s0 = self._sig[0]
            self._sig = (V(s0.h, s0.l, s0.e + self._zt),) + self._sig[1:]
        self.kappa = _kappa_bound(self._sig[0], np.abs(self.x))

    def deriv(self):
        # softplus' = sigma(beta x); logsigmoid'(x) = sigma(-x) = sigma(z) with z = -x
        d = self._sig[0]
        return d, np.ones(self.shape, np.int8), np.zeros(self.shape, bool), self.z <= TINY_ARG


class _BCE(_Eval):
    def __init__(self, input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
        self.reduction = _reduction_of(dict(size_average=size_average, reduce=reduce, reduction=reduction))
        p = self.p = _read(input)
        self.shape = p.shape
        y = self.y = _same_shape(target, p.shape)
        w = self.w = _broadcast(weight, p.shape)
        if not (((p >= 0) & (p <= 1)).all() and ((y >= 0) & (y <= 1)).all()):
            raise fast.NotEligible
        omh, oml = fast64.two_sum(np.ones_like(y), -y)
        self.omy = V(omh, oml, np.zeros_like(omh))
        a_live = (y != 0) & (p != 1)  # y log p, nonzero
        b_live = (y != 1) & (p != 0)  # (1 - y) log(1 - p), nonzero
        # log 0 with a nonzero coefficient: the loss is w * inf (the mpmath path's special value, a NaN at w = 0)
        inf_el = ((y != 0) & (p == 0)) | ((y != 1) & (p == 1))
        if inf_el.any():
            if w is not None and (w[inf_el] == 0).any():
                raise fast.NotEligible
            self.special = np.where(inf_el, (1.0 if w is None else np.sign(w)) * np.inf, 0.0)
            self.gspecial = inf_el
            p = self.p_safe = np.where(inf_el, 0.5, p)
            a_live, b_live = a_live & ~inf_el, b_live & ~inf_el
        A = mul(exact(y), log_pos(np.where(a_live, p, 1.0)))
        B = mul(self.omy, log1m(np.where(b_live, p, 0.0)))
        A, B = _zeroed(A, ~a_live), _zeroed(B, ~b_live)
        S = add(A, B)
        S = A.where(~b_live, B.where(~a_live, S))
        zero = ~a_live & ~b_live
        if self.special is not None:
            zero = zero | inf_el
        if w is not None:
            zero = zero | (w == 0)
            v = mul_d(S, -w)
            sign = np.sign(w).astype(np.int8)
        else:
            v = S.neg()
            sign = np.ones(p.shape, np.int8)
        self.zero = zero
        self.value = _zeroed(v, zero)
        self.sign = np.where(zero, 0, sign)
        # kappa: |w| |y - p| / (1 - p), |w| at p = 1
        nh, nl = fast64.two_sum(y, -p)
        qh, ql = fast64.two_sum(np.ones_like(p), -np.where(p == 1, 0.0, p))
        r = div(V(nh, nl, np.zeros_like(nh)), V(qh, ql, np.zeros_like(qh)))
        r = exact(np.ones_like(p)).where(p == 1, r)
        r = _zeroed(r, (y == p) & (p != 1))  # y = p = 1: g = -w, kappa |w|
        self.kappa = _kappa_bound(r, np.ones_like(p) if w is None else np.abs(w))

    def deriv(self):
        p, y = getattr(self, "p_safe", self.p), self.y
        both = (y != 0) & (y != 1)
        # coefficient * num / den: both terms: -(y - p) / (p (1 - p)); y = 0: 1 / (1 - p); y = 1: -1 / p
        nh, nl = fast64.two_sum(y, -p)
        qh, ql = fast64.two_sum(np.ones_like(p), -p)
        q = V(qh, ql, np.zeros_like(qh))
        one = exact(np.ones_like(p))
        pp = np.where(p == 0, 1.0, p)
        num = V(nh, nl, np.zeros_like(nh)).where(both, one)
        qs = V(np.where(p == 1, 1.0, q.h), np.where(p == 1, 0.0, q.l), q.e)
        den = mul(exact(pp), qs).where(both, exact(pp).where(y == 1, qs))
        g = div(num, den)
        sgn = np.where(both | (y == 1), -1.0, 1.0)
        g = V(sgn * g.h, sgn * g.l, g.e)
        exact_one = ((y == 0) & (p == 0)) | ((y == 1) & (p == 1))
        g = exact(sgn).where(exact_one, g)
        zero = both & (y == p)
        sign = np.where(both, np.sign(p - y), sgn).astype(np.int8)
        if self.w is not None:
            g = mul_d(g, self.w)
            sign = (sign * np.sign(self.w)).astype(np.int8)
            zero = zero | (self.w == 0)
        return _zeroed(g, zero), np.where(zero, 0, sign), zero, np.zeros(self.shape, bool)


class _BCELogits(_Eval):
    def __init__(self, input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        self.reduction = _reduction_of(dict(size_average=size_average, reduce=reduce, reduction=reduction))
        x = self.x = _read(input)
        self.shape = x.shape
        y = self.y = _same_shape(target, x.shape)
        if (y < 0).any():
            raise fast.NotEligible
        w = self.w = _broadcast(weight, x.shape)
        pw = self.pw = _broadcast(pos_weight, x.shape)
        if pw is None:
            a = exact(y)
        else:
            if max(np.abs(pw).max(), np.abs(y).max()) > BIG:
                raise fast.NotEligible
            ah, al = fast64.two_prod(pw, y)
            if ((ah != 0) & (np.abs(ah) < SMALL_PROD)).any():
                raise fast.NotEligible
            a = V(ah, al, np.zeros_like(ah))
        bh, bl = fast64.two_sum(np.ones_like(y), -y)
        b = V(bh, bl, np.zeros_like(bh))
        self.a, self.b = a, b
        a0, b0 = a.h == 0, b.h == 0
        T1 = _zeroed(mul(a, softplus_v(-x)), a0)
        T2 = _zeroed(mul(b, softplus_v(x)), b0)
        S = add(T1, T2)
        S = T1.where(b0, T2.where(a0, S))
        zero = a0 & b0
        known = (a.h >= 0) & (b.h >= 0)
        sign = np.where(known, 1, 0)
        if w is not None:
            zero = zero | (w == 0)
            S = mul_d(S, w)
            sign = sign * np.sign(w)
        self.zero = zero
        self.value = _zeroed(S, zero)
        self.sign = np.where(zero, 0, sign).astype(np.int8)
        self._g = None
        g, _, gz, _ = self.deriv()
        self.kappa = np.where(gz, 0.0, _kappa_bound(g, np.abs(x)))

    def deriv(self):
        if self._g is not None:
            return self._g
        x = self.x
        sx, snx, _ = sigmoid_pair(x)
        a, b = self.a, self.b
        a0, b0 = a.h == 0, b.h == 0
        T2 = _zeroed(mul(b, sx), b0)
        T1 = _zeroed(mul(a, snx), a0)
        g = add(T2, T1.neg())
        g = T2.where(a0, T1.neg().where(b0, g))
        # x = 0: (b - a) / 2, an exact 0 where a = b (both are RN + exact error: equal reals, equal pairs)
        zero = (a0 & b0) | ((x == 0) & (a.h == b.h) & (a.l == b.l))
        # one-sided: b sigma(x) has the sign of b, -a sigma(-x) the sign of -a; both: not known
        sign = np.where(a0 & ~b0, np.sign(b.h), np.where(b0 & ~a0, -np.sign(a.h), 0))
        if self.w is not None:
            g = mul_d(g, self.w)
            sign = sign * np.sign(self.w)
            zero = zero | (self.w == 0)
        self._g = (_zeroed(g, zero), np.where(zero, 0, sign).astype(np.int8), zero, np.zeros(self.shape, bool))
        return self._g


class _KLDiv(_Eval):
    def __init__(self, input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
        self.reduction = _reduction_of(dict(size_average=size_average, reduce=reduce, reduction=reduction),
                                       REDUCTIONS + ("batchmean",))
        if not isinstance(log_target, bool):
            raise fast.NotEligible
        x = self.x = _read(input)
        self.shape = x.shape
        t = self.t = _same_shape(target, x.shape)
        self.log_target = log_target
        if log_target:
            if (t > 700).any():
                raise fast.NotEligible
            dh, dl = fast64.two_sum(t, -x)
            if not np.isfinite(dh).all():
                raise fast.NotEligible
            E = exp_nonpos(np.minimum(t, 0.0))
            Einv = exp_nonpos(np.minimum(-t, 0.0))
            E = E.where(t <= 0, div(exact(np.ones_like(t)), Einv))
            self.E = E
            v = mul(E, V(dh, dl, np.zeros_like(dh)))
            zero = dh == 0
            self.sign = np.where(zero, 0, np.sign(dh)).astype(np.int8)
            self.kappa = _kappa_bound(E, np.abs(x))
        else:
            if (t < 0).any():
                raise fast.NotEligible
            live = t != 0
            L = log_pos(np.where(live, t, 1.0))
            D = add(L, exact(-x))
            one = t == 1
            D = exact(-x).where(one, D)
            v = mul_d(D, t)
            v = exact(-x).where(one, v)
            zero = ~live | (one & (x == 0))
            self.sign = np.where(zero, 0, np.where(one, np.sign(-x), 0)).astype(np.int8)
            self.kappa = np.abs(x) * t * (1 + 2.0**-50) + 2.0**-1074
        self.zero = zero
        self.value = _zeroed(v, zero)

    def deriv(self):
        if self.log_target:
            g = self.E.neg()
            zero = np.zeros(self.shape, bool)
            sign = -np.ones(self.shape, np.int8)
        else:
            g = exact(-self.t)
            zero = self.t == 0
            sign = np.where(zero, 0, -1).astype(np.int8)
        return _zeroed(g, zero), sign, zero, np.zeros(self.shape, bool)


class _Xlogy(_Eval):
    def __init__(self, input, other):
        x, y = _read(input), _read(other)
        try:
            shape = np.broadcast_shapes(x.shape, y.shape)
        except ValueError:
            raise fast.NotEligible from None
        self.xs_shape = x.shape
        self.x_own = x
        X = np.ascontiguousarray(np.broadcast_to(x, shape))
        Y = np.ascontiguousarray(np.broadcast_to(y, shape))
        self.shape, self.X, self.Y = shape, X, Y
        if np.abs(X).max() > BIG:
            raise fast.NotEligible
        # y = 0: x log 0 = -sign(x) inf; y < 0: NaN (the mpmath path's special values); their gradient log y is special
        bad = (Y <= 0) & (X != 0)
        if bad.any():
            self.special = np.where(bad, np.where(Y == 0, -np.sign(X) * np.inf, np.nan), 0.0)
        self.gspecial = Y <= 0
        live = (X != 0) & (Y != 1) & ~bad
        L = log_pos(np.where(live, Y, 2.0))
        self.L = L
        v = mul_d(L, X)
        zero = ~live
        self.zero = zero
        self.value = _zeroed(v, zero)
        self.sign = np.where(zero, 0, np.sign(X) * np.sign(Y - 1)).astype(np.int8)
        self.kappa = np.where(zero, 0.0, self.value.up() * (1 + 2.0**-40))

    def deriv(self):
        if self.X.shape != self.xs_shape:
            raise fast.NotEligible
        L = log_pos(np.where((self.Y != 1) & (self.Y > 0), self.Y, 2.0))
        zero = (self.Y == 1) | (self.Y <= 0)
        return _zeroed(L, zero), np.where(zero, 0, np.sign(self.Y - 1)).astype(np.int8), zero, \
            np.zeros(self.shape, bool)


_EVALS: dict[str, Callable[..., _Eval]] = {
    "sigmoid": lambda input: _Sigmoid(input),
    "logsigmoid": lambda input: _Softplus(input, negate=True),
    "softplus": lambda input, beta=1.0, threshold=20.0: _Softplus(input, beta, threshold),
    "binary_cross_entropy": _BCE,
    "binary_cross_entropy_with_logits": _BCELogits,
    "kl_div": _KLDiv,
    "xlogy": _Xlogy,
}


def _denominator(name, ev):
    red = getattr(ev, "reduction", "none")
    if red in ("none", "sum"):
        return red, 1
    if red == "batchmean":
        return red, ev.shape[0]
    return red, int(np.prod(ev.shape))


def _element_args(name: str, kw: dict, ev: Any) -> Callable[[int], dict]:
    """The mpmath call on element k alone (reduction none)."""
    if name in ("sigmoid", "logsigmoid"):
        xs = ev.x.ravel().tolist()
        return lambda k: {"input": [xs[k]]}
    if name == "softplus":
        xs = ev.x.ravel().tolist()
        return lambda k: {"input": [xs[k]], "beta": kw.get("beta", 1.0)}
    if name == "xlogy":
        X, Y = ev.X.ravel().tolist(), ev.Y.ravel().tolist()
        return lambda k: {"input": [X[k]], "other": [Y[k]]}
    first = ev.x if hasattr(ev, "x") else ev.p
    xs = first.ravel().tolist()
    if name == "kl_div":
        ts = ev.t.ravel().tolist()
        return lambda k: {"input": [xs[k]], "target": [ts[k]], "reduction": "none", "log_target": ev.log_target}
    ys = ev.y.ravel().tolist()
    ws = None if ev.w is None else ev.w.ravel().tolist()
    if name == "binary_cross_entropy":
        return lambda k: {"input": [xs[k]], "target": [ys[k]], "weight": None if ws is None else [ws[k]],
                          "reduction": "none"}
    pws = None if ev.pw is None else ev.pw.ravel().tolist()
    return lambda k: {"input": [xs[k]], "target": [ys[k]], "weight": None if ws is None else [ws[k]],
                      "pos_weight": None if pws is None else [pws[k]], "reduction": "none"}


def values_of(name: str, fn: Callable[..., ExactTree], **kw: Any) -> ExactTree:
    """The fast result of oracle ``name`` (the registered values handler)."""
    ev: Any = _EVALS[name](**kw)
    red, denom = _denominator(name, ev)
    sp = ev.special
    if red != "none":
        if sp is not None and (sp != 0).any():
            # a sum or mean with infinite terms of one sign (and finite others) is that infinity
            vals = sp[sp != 0]
            if np.isnan(vals).any() or not ((vals > 0).all() or (vals < 0).all()):
                raise fast.NotEligible
            src = Source(exact(np.zeros(1)), np.zeros(1), _whole(lambda: fn(**kw)))
            return Exact.deferred(src, 0, float(vals[0]))
        v, sg = _reduce(ev.value, ev.sign, ev.zero, red, denom)
        kap = None
        if ev.kappa is not None:
            k = np.asarray(ev.kappa, dtype=np.float64)
            if np.isfinite(k).all():
                kap = np.array([math.fsum(k.ravel().tolist()) * (1 + 2.0**-40) * (1 + k.size * 2.0**-52) / denom
                                * (1 + 2.0**-50)])
        src = Source(v, np.array([sg]), _whole(lambda: fn(**kw)), kappa=kap)
        return Exact.deferred(src, 0)
    build = _per_element(fn, _element_args(name, kw, ev), ev.shape if name != "xlogy" else ev.xs_shape)
    if name == "xlogy" and ev.shape != ev.xs_shape:
        build = _whole(lambda: fn(**kw))
    src = Source(ev.value, ev.sign, build, tiny=ev.tiny, kappa=ev.kappa)
    n = int(np.prod(ev.shape))
    if sp is not None:
        sps = [None if v == 0 else v for v in sp.ravel().tolist()]
        return unflatten(ev.shape, [Exact.deferred(src, k, sps[k]) for k in range(n)])
    return unflatten(ev.shape, [Exact.deferred(src, k) for k in range(n)])


def gradient_of(name: str, kwargs: dict, n: int, upstream: Sequence[float] | None,
                fallback: Callable[[], list]) -> list | None:
    """The fast gradient of sum(upstream * outputs) of oracle ``name`` (the registered gradient handler)."""
    ev = _EVALS[name](**kwargs)
    size = int(np.prod(ev.shape))
    if n != size:
        raise fast.NotEligible
    red, denom = _denominator(name, ev)
    d, sign, zero, tiny = ev.deriv()
    n_out = 1 if red != "none" else size
    if upstream is None:
        u = np.ones(n_out)
    else:
        u = np.asarray(list(upstream), dtype=np.float64)
        if u.shape != (n_out,) or not np.isfinite(u).all() or np.abs(u).max(initial=0.0) > BIG:
            raise fast.NotEligible
    uu = np.broadcast_to(u, (size,)) if n_out == 1 else u
    d = V(d.h.ravel(), d.l.ravel(), d.e.ravel())
    sign, zero, tiny = np.ravel(sign), np.ravel(zero), np.ravel(tiny)
    g = d if (uu == 1).all() else mul_d(d, uu)
    if denom != 1:
        g = div(g, exact(np.full(size, float(denom))))
    # an exact derivative (kl_div's -t) times u over a power-of-two denominator is exact: TwoProd (no underflow
    # or overflow of the parts), then an exact scaling (both parts stay normal); exact, it can decide a tie
    ph, pl = fast64.two_prod(d.h, uu)
    m, e = math.frexp(float(denom))
    ph, pl = ph / denom, pl / denom
    ex = ((d.e == 0) & (d.l == 0) & (m == 0.5) & (np.abs(d.h) <= BIG) & (np.abs(uu) <= BIG) & np.isfinite(ph)
          & (np.abs(ph) >= 2.0**-900) & ((pl == 0) | (np.abs(pl) >= 2.0**-1022)))
    if ex.any():
        g = V(np.where(ex, ph, g.h), np.where(ex, pl, g.l), np.where(ex, 0.0, g.e))
    zero = zero | (uu == 0)
    g = _zeroed(g, zero)
    sign = np.where(zero, 0, sign * np.sign(uu)).astype(np.int8)
    tiny_ok = tiny & ~zero & (np.abs(uu) <= denom)
    src = Source(g, sign, lambda key: fallback()[key], tiny=np.where(tiny_ok, sign, 0))
    out = [Exact.deferred(src, k) for k in range(n)]
    if ev.gspecial is not None and ev.gspecial.any():
        # a special component (log 0, a division by p = 0) is the mpmath path's: never deferred, so that its
        # special value is known before anything asks for a magnitude
        full = fallback()
        for k in np.nonzero(np.ravel(ev.gspecial))[0].tolist():
            out[k] = full[k]
    return out


def _register() -> None:
    for name in NAMES:
        fast.register(name, values=lambda fn, _name=name, **kw: values_of(_name, fn, **kw),
                      gradient=lambda kwargs, n, upstream, fallback, _name=name:
                      gradient_of(_name, kwargs, n, upstream, fallback))


_register()
