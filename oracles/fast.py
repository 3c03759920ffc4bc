"""The certified fast path: vectorised binary64 evaluation with a rigorous error bound, mpmath when it cannot decide.

Why: the mpmath path builds an expression of O(C) nodes per row, about 2 seconds a row at an LLM vocabulary of
C = 128,256, thousands of times the cost of the computation it checks. Here the softmax family (logsumexp,
softmax, log_softmax) and cross_entropy / nll_loss (class-index targets; step 12 for the others) are evaluated in
NumPy binary64, each output with an absolute error bound B derived below. When both ends of the enclosure
[approx - B, approx + B] round to the same value of the target format (same sign of zero, overflow to inf
included), that value is the correctly rounded result, by the monotonicity of rounding; otherwise the caller
gets None and the mpmath path decides. Results are therefore the same as the mpmath path's, bit for bit
(``tests/meta/test_fast_oracle.py`` checks it on thousands of rows, adversarial ones included).

The bound is a few thousand times the unit roundoff u = 2**-53 of binary64 (times C for the sums), so it decides
float32, float16 and bfloat16 roundings except within about 2**-36 relative of a rounding boundary, and float64
ones only where the value is exact (as nll_loss's often are). A float64 rounding is asked of ``oracles.fast64``
instead (``_Source.decide``): a double-double evaluation of the same quantities, a quick one (bound about 2**-62
relative) and for what that leaves open an accurate one (about 2**-95), each computed once per call when first
needed; mpmath decides what they leave open.
The same evaluation also decides what the binary64 bound leaves open in a narrower format, where it costs less
than the mpmath rows it replaces (``_Source._dd_pays``: always for a reduced loss or an input the mpmath path
takes whole, and for a 128,256-class row with a few undecided outputs; not for three undecided rows of ten).

Probability targets and label smoothing of cross_entropy are evaluated in binary64 only (step 12). Everything
else (other losses, NaN or +inf inputs, -inf masks beside probability targets, inputs that are not arrays of
floats) returns None from ``attempt`` and takes the mpmath path unchanged (the elementwise losses have fast paths of
their own, oracles/fast_elementwise.py). The expressions, gradient and condition number of a fast result are built
only when asked for (``Exact.deferred``): per row for elementwise outputs, for the whole call for a reduced loss.
What a measurement asks besides the rounding is answered here too (``_Source.magnitude``, ``kappa_magnitude`` from
steps K1-K4, ``enclose``), so lossproof.measure builds no expression for a value the bounds decide; gradients come
from ``oracles.fast_grad`` (``register`` / ``attempt_gradient``: the registry of certified gradients).

Error analysis (all quantities nonnegative unless said; RN = binary64 round-to-nearest-even; u = 2**-53)
-------------------------------------------------------------------------------------------------------
Assumptions, each with a margin of about 4,000 ulps over what the libraries document (glibc and NumPy's SIMD
exp/log1p claim a few ulps; we do NOT assume correct rounding), and checked by sampling in the meta-tests:

(A1) for every binary64 a (including -inf, where exp(-inf) = 0 as C99 Annex F requires):
     |exp~(a) - exp(a)| <= ETA * exp(a) + TAU_LIBM,      ETA = 2**-40, TAU_LIBM = 2**-1062
(A2) for every binary64 a >= 0:
     |log1p~(a) - log1p(a)| <= ETA * log1p(a) + TAU_LIBM
(A3) binary64 +, -, *, / are IEEE round-to-nearest with gradual underflow: fl(a op b) = (a op b)(1 + d) + e,
     |d| <= u, |e| <= 2**-1075, e = 0 for + and - (their results are multiples of 2**-1074). This is checked
     at every call (``_fp_env_ok``): flush-to-zero or a directed rounding mode disables the fast path.

One row x_1..x_C, finite or -inf, at least one finite; m = max x_j (exact), d_j = x_j - m <= 0, e_j = exp(d_j),
R = sum_{j != jmax} e_j, L = log1p(R), so logsumexp = m + L, log_softmax_i = d_i - L, softmax_i = e_i / (1 + R).

1. d^_j = fl(x_j - m) = d_j (1 + a_j), |a_j| <= u (A3; an overflow to -inf only where d_j < -1.7e308).
2. e^_j = exp~(d^_j) (e^_jmax := 0 for R; := 1 for softmax, both exact). Per term |e^_j - e_j| <= THETA e_j + TAU
   with THETA = ETA + 2**-41, TAU = 2**-1060: if d^_j >= -746 then |d_j| < 2**10 and |d^_j - d_j| <= 2**-43, so
   exp(d^_j) = e_j exp(d^_j - d_j) is within e_j 2**-42 of e_j, and A1 adds ETA (1 + 2**-42) e_j + TAU_LIBM; if
   d^_j < -746 then e_j < 2**-1074 and e^_j <= 2**-1075 (1 + ETA) + TAU_LIBM, so |e^_j - e_j| < TAU.
3. R^ = the binary64 sum of the k = C - 1 terms e^_j in any order: |R^ - sum e^_j| <= gamma_{k} sum e^_j with
   gamma_k = k u / (1 - k u) (Higham, Accuracy and Stability, 4.2; no underflow error in additions). Hence
   |R^ - R| <= rho R + nu, rho = THETA + gamma_k (1 + THETA), nu = (1 + gamma_k) k TAU.
4. L^ = log1p~(R^). By the mean value theorem |log1p(R^) - L| <= |R^ - R| / (1 + min(R, R^)) and
   1 + min(R, R^) >= (1 - rho - nu)(1 + R), and R / (1 + R) <= log1p(R) = L, so
   |log1p(R^) - L| <= rho' L + nu', rho' = rho / (1 - rho - nu), nu' = nu / (1 - rho - nu); with A2
   |L^ - L| <= eps_L L + nu_L, eps_L = rho' + ETA (1 + rho'), nu_L = nu' (1 + ETA) + TAU, and since
   L <= (L^ + nu_L) / (1 - eps_L):  err_L = eps_L (L^ + nu_L) / (1 - eps_L) + nu_L  bounds |L^ - L|.
5. log_softmax: y^ = fl(d^_i - L^). d_i <= 0 <= L, so no cancellation; |y^ - y| <= u|d_i| + err_L + u|d^_i - L^|
   <= U1 (|d^_i| + |y^|) + err_L with U1 = 2**-52 >= u / (1 - u).
6. logsumexp: z^ = fl(m + L^), |z^ - z| <= err_L + U1 |z^| (cancellation of m and L shows as a wide bound).
7. softmax: D^ = fl(1 + R^), |D^ - (1 + R)| <= delta_D = U1 D^ + rho R_up + nu with R_up = (R^ + nu) / (1 - rho)
   >= R; D >= D_lo = max(1, (D^ - delta_D)(1 - 2**-50)). s^ = fl(e^_i / D^):
   |s^ - s| <= U1 s^ + 2**-1074 + (THETA e_up + TAU) / D^ + e_up delta_D / (D^ D_lo), e_up = (e^_i + TAU) / (1 - THETA)
   >= e_i (the first two terms: the division's rounding, the next the term's error, the last the denominator's;
   the term's error is 0 for jmax, whose e = 1 is exact; a -inf entry's softmax is exactly 0).
8. cross_entropy per row n with target t not ignored: v = w_t (L - d_t) (w_t = 1 unweighted).
   v^ = fl(w_t fl(L^ - d^_t)), |v^ - v| <= |w_t| err_y + U1 |v^| + 2**-1074 (err_y from 5; the product is exact
   when unweighted).
   nll_loss: v = -w_t x_t, v^ = fl(-w_t x_t), |v^ - v| <= U1 |v^| + 2**-1074, or 0 (exact) when unweighted.
   An ignored row is exactly 0.
9. sum: T^ = math.fsum(v^) (the correctly rounded sum of the v^, exact when subnormal):
   |T^ - T| <= sum |v^_n - v_n| + U1 |T^|.  mean: W^ = math.fsum of the kept weights (or their count, exact),
   |W^ - W| <= u |W|; q^ = fl(T^ / W^) and |q^ - T/W| <= (err_T + U1 (|T^| + err_T)) / |W^| + U1 |q^| + 2**-1074
   (from T^/W^ - T/W = (T^ - T)/W^ + T (W - W^)/(W^ W)).
10. Every bound is itself computed in binary64 from nonnegative terms in at most a few dozen operations
   (relative error below 2**-46), then multiplied by INFLATE = 1 + 2**-20 and increased by FLOOR = 2**-1050 (which
   covers the few absolute underflow terms of size 2**-1074 the formulas carry, and any underflow in computing
   the bound). Finally the enclosure ends are moved outward by one binary64 ulp (``nextafter``), which covers
   the rounding of approx -+ B. A bound of exactly 0 (every step exact: nll_loss without weights, ignored rows)
   stays 0 and approx is the exact value.
11. Exact values and known signs: a row with one finite entry has exact results (log_softmax 0, softmax 1,
   logsumexp m, cross_entropy 0), given with bound 0. The exact sign is passed to ``certify`` where it is known
   (softmax > 0; log_softmax < 0 when two entries are finite; cross_entropy has its weight's sign), so a value
   that underflows in the format rounds to the zero of the right sign instead of being left undecided.

12. cross_entropy with probability targets t or label smoothing eps (class-index targets then weigh eps / C on
   every class and 1 - eps more on the target), all logits finite: v = sum_c a_c y_c with y_c = -log_softmax_c
   >= 0 (within err_y_c, step 5) and a_c = w_c ((1 - eps) t_c + eps / C) (prob.) or w_c eps / C + [c = t] w_t
   (1 - eps): a^_c from at most five roundings of nonnegative terms times w_c, |a^_c - a_c| <= 5.01 u |a^_c|
   (t_c >= 0, 0 <= eps <= 1), plus underflow: each of the roundings t om, eps / C and the product with w_c loses
   at most 2**-1075 absolutely, the first two scaled by |w_c|, so |a^_c - a_c| <= 5.01 u |a^_c| + ua_c with
   ua_c = (2 |w_c| + 1) 2**-1074 (twice that), and ua_c = 0 where a_c is exactly 0 (w_c = 0, or eps = 0 and
   t_c = 0 / c not the target, or an ignored row): a^_c = 0 by underflow is not an exact 0 (w_c = 2**-1074 and
   t_c = 1/6 gave v^ = 0 with bound 0 where v = 1.79 * 2**-1074: the battery caught it, the mpmath path agreed).
   |a^ y^ - a y| <= |a^| err_y + (5.01 u |a^| + ua) (y^ + err_y); the products' roundings and the sum of C of
   them add u + gamma_C times sum |a^| (y^ + err_y), and underflow 2**-1075 per product:
   err_v = sum |a^| err_y (1 + 2 gamma_C) + (7u + 2 gamma_C) sum |a^| (y^ + err_y)
   + (1 + 2 gamma_C) sum ua (y^ + err_y) + C 2**-1073; exactly 0 only where every a_c is exactly 0. Nonnegative
   coefficients, one positive, and two or more classes give v > 0 (the sign). Reductions as in step 9, the mean
   over the rows (probability targets) or the kept targets' weights. No double-double evaluation here: float64
   roundings the binary64 bound leaves open take the mpmath path. Its kappa: sum_j |x_j| |A p_j - a_j| with
   A = sum_c a_c (dv/dx_j = A p_j - a_j); |A^ - A| <= (7u + gamma_C) sum |a^| + (1 + gamma_C) sum ua = e_A, and
   |g^_j - g_j| <= e_A (p^_j + e_p) + |A^| e_p + 6.1 u |a^_j| + ua_j + 2.1 u |g^_j| (e_p the softmax bound of
   step 7); the bound is
   (k^ + e_k)(1 + 2**-50), e_k = sum |x_j| e_g_j + 2 gamma_C k^ + C max|x| 2**-1073, given only where
   e_k <= k^ 2**-30 (K3's relative promise of 2**-29), else None.

Condition numbers (``_Source.kappa_magnitude``: upper bounds, which ``lossproof.measure`` takes for the accurate
rung's allowance K u (|z| + kappa) instead of building kappa's expression). kappa = sum_j |x_j df/dx_j| over the
input (oracles/results.py); a -inf entry has p_j = 0 and adds nothing. Per row, with p = softmax, m = jmax:

K1. S = sum_{j != m} |x_j| p_j (the finite j), computed as S^ = fl(fl(sum |x_j| e^_j) / D^), D^ = fl(1 + R^).
    logsumexp: kappa = |x_m| p_m + S, p_m = 1 / D.
    log_softmax_m: |x_m| (1 - p_m) + S = |x_m| R / D + S;
    log_softmax_i, i != m: |x_i| (1 - p_i) + sum_{j != i} |x_j| p_j = |x_i| (1 - 2 p_i) + S + |x_m| p_m, where
    p_i <= p_m gives p_i <= 1/2, so 1 - 2 p_i >= 0 and kappa_i >= |x_i| / 2 and kappa_i >= S.
    softmax_i: p_i times log_softmax_i's kappa.  cross_entropy (class t, weight w): |w| times log_softmax_t's;
    nll_loss: |w x_t|.  A sum over rows: the sum of the rows' kappas (rows share no input); a mean: that over |W|.
K2. Every piece is a sum or product of nonnegative binary64 quantities, each within a relative error
    r = THETA + rho + gamma_C + 6 u (steps 2-3 and the few roundings here) of its exact value, plus an absolute
    TAU per term times |x_j|; the one subtraction, 1 - 2 p^_i, errs by at most 2 p_i r + u <= 2 r in absolute terms,
    times |x_i| <= 2 kappa_i. So the computed kappa^ is within 4 r kappa + C max|x| TAU of kappa.
K3. The upper bound is kappa^ (1 + KREL) + F, F = (C max|x| + 1) 2**-1040 over the row, with KREL = 2**-30 + 32 C u
    > 8 r (r <= 2**-38 + 2 C u): at least kappa; and it is given only where F <= kappa^ 2**-40, so it is above
    kappa by a relative 2**-29 at most for C < 2**20 (the allowance loosens by that much, never tightens). Sums over
    rows (math.fsum, then / |W^|, W^ = fsum of the weights) take three more roundings: the factor (1 + 4 u).
K4. Anything that overflows or is NaN, and a row whose F is not negligible (terms underflowing beside a huge |x|,
    an exact kappa of 0), gives no bound (None): ``lossproof.measure`` then builds kappa exactly.

Where the fast path leaves the decision to mpmath: the exact value within about the bound (2**-36 to 2**-40
relative) of a rounding boundary. Random logits meet that about once in a few thousand roundings; structured
inputs more often (a log_softmax of format values with a dominant logit is a format midpoint minus a tiny L).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mpmath import libmp

from . import fast64
from .exact import Exact, ExactTree
from .formats import Format, get_format
from .results import make_result
from .tensors import (
    OracleInputError,
    legacy_reduction,
    normalize_dim,
    read_indices,
    shape_and_flat,
    softmax_dim,
    unflatten,
)

if TYPE_CHECKING:  # annotations only: NumPy stays optional at run time
    from numpy import bool_, float64
    from numpy.typing import ArrayLike, NDArray

np: Any  # the numpy module, or None without it (a type the checker has no name for)
try:  # the fast path is optional: without NumPy every call takes the mpmath path
    import numpy as np
except ImportError:  # pragma: no cover - numpy is a test dependency
    np = None

__all__ = ["attempt", "attempt_gradient", "register", "NotEligible", "disabled", "enabled", "counting", "round_array",
           "certify", "available", "ETA", "TAU"]

U = 2.0**-53
U1 = 2.0**-52  # >= u / (1 - u)
ETA = 2.0**-40  # assumed relative error bound of NumPy's exp and log1p (A1, A2)
TAU_LIBM = 2.0**-1062  # their assumed absolute error bound (subnormal results)
THETA = ETA + 2.0**-41
TAU = 2.0**-1060
FLOOR = 2.0**-1050
INFLATE = 1.0 + 2.0**-20
SUBNORMAL = 2.0**-1074
_CHUNK = 1 << 21  # elements per block of rows: bounded temporaries, cache-friendly passes

#: LOSSPROOF_FAST=0 in the environment turns the fast path off everywhere (to compare, or to rule it out)
_enabled = contextvars.ContextVar("lossproof_fast_path", default=os.environ.get("LOSSPROOF_FAST", "1") != "0")
_counters: list = []


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Take the mpmath path only (the reference the meta-tests compare the fast path with)."""
    token = _enabled.set(False)
    try:
        yield
    finally:
        _enabled.reset(token)


def enabled() -> bool:
    return _enabled.get() and np is not None


@contextlib.contextmanager
def counting() -> Iterator[dict[str, int]]:
    """Count the fast path's decisions while the block runs: {"decided": n, "fallback": n} (fallback: the
    fast bound could not decide the rounding and the mpmath path was used)."""
    c = {"decided": 0, "fallback": 0}
    _counters.append(c)
    try:
        yield c
    finally:
        _counters.remove(c)


def _count(key, n=1):
    for c in _counters:
        c[key] += n


def available() -> bool:
    """NumPy is importable and binary64 arithmetic behaves as A3 requires (no flush-to-zero, round to nearest)."""
    return np is not None and _fp_env_ok()


def _fp_env_ok() -> bool:
    """A3 at run time: a library may have set flush-to-zero / denormals-are-zero (torch.set_flush_denormal) or
    a directed rounding mode, under which the error analysis does not hold."""
    # subnormals are built and inspected as bit patterns: under denormals-are-zero even a comparison with
    # 2**-1074 treats it as 0
    tiny = np.array([2, 1], dtype=np.int64).view(np.float64)  # 2**-1073, 2**-1074
    return bool(
        (tiny[:1] - tiny[1:]).view(np.int64)[0] == 1
        and (tiny[:1] * 0.5).view(np.int64)[0] == 1
        and _rounds_to_nearest()
    )


def _rounds_to_nearest() -> bool:
    """1 + u and 1 - u/2 are ties that go to even; 1 + 3u and 1 - 3u/2 round to nearest."""
    one = np.array([1.0, 1.0])
    up = one + np.array([2.0**-53, 3 * 2.0**-53]) == np.array([1.0, 1.0 + 2.0**-51])
    down = one - np.array([2.0**-54, 3 * 2.0**-54]) == np.array([1.0, 1.0 - 2.0**-52])
    return bool(up.all() and down.all())


# --------------------------------------------------------------------------------------------------
# rounding enclosures


def round_array(v: ArrayLike, fmt: str | Format) -> NDArray[float64]:
    """RN (ties to even, gradual underflow, overflow to +-inf) of every binary64 value in ``v`` into ``fmt``.

    Exact by construction: v * 2**-q with q the exponent of the format's ulp at |v| is an exact power-of-two
    scaling to below 2**p, ``rint`` rounds it to an integer with ties to even, and scaling back is exact."""
    f = get_format(fmt)
    a = np.asarray(v, dtype=np.float64)
    if f.name == "float64":
        return a.copy()
    with np.errstate(all="ignore"):
        _, e = np.frexp(a)  # |v| = m 2**e, 1/2 <= m < 1, so floor(log2 |v|) = e - 1
        q = np.maximum(e - 1, f.emin) - (f.p - 1)
        r = np.ldexp(np.rint(np.ldexp(a, -q)), q)
        return np.where(np.abs(r) > f.max_finite, np.copysign(np.inf, a), r)


def ordinal_array(v: ArrayLike, fmt: str | Format) -> tuple[NDArray[Any], NDArray[bool_]]:
    """(ords, ok): ``formats.ordinal`` of every finite value of ``fmt`` in v (binary64), from its IEEE bit pattern in
    the format: the order of a format's finite values by magnitude is that of their magnitude bits (the subnormals,
    then each binade's significands), so those bits are the ordinal, negated for a negative value (+-0: 0). ok is
    False where v is not a finite value of fmt (``formats.ordinal`` answers or raises there)."""
    f = get_format(fmt)
    a = np.asarray(v, dtype=np.float64)
    with np.errstate(all="ignore"):
        ok = np.isfinite(a) & (round_array(a, f) == a)
        a = np.where(ok, a, 0.0)
        if f.name == "float64":
            m = a.view(np.int64) & 0x7FFF_FFFF_FFFF_FFFF
        elif f.name == "float32":
            m = a.astype(np.float32).view(np.int32).astype(np.int64) & 0x7FFF_FFFF
        elif f.name == "float16":
            m = a.astype(np.float16).view(np.int16).astype(np.int64) & 0x7FFF
        elif f.name == "bfloat16":  # the upper half of its binary32 pattern (the lower half is zero)
            m = (a.astype(np.float32).view(np.int32).astype(np.int64) & 0x7FFF_FFFF) >> 16
        else:
            return np.zeros(a.shape, dtype=np.int64), np.zeros(a.shape, dtype=bool)
        return np.where(np.signbit(a), -m, m), ok


def certify(approx: ArrayLike, bound: ArrayLike, fmt: str | Format,
            sign: ArrayLike | None = None) -> tuple[NDArray[float64], NDArray[bool_]]:
    """(values, ok): where ok, ``values`` is RN(z) into ``fmt`` for every real z with |z - approx| <= bound.

    A zero bound means approx is the exact value (an exact zero is +0.0, as in the mpmath path). Elsewhere both
    ends of the enclosure, moved outward by one binary64 ulp, must round to the same value with the same sign,
    and a zero result needs an enclosure that excludes zero (the sign of an exact zero differs). ``sign`` (+1,
    -1 or 0 per element) is what the caller knows of z's sign: +1 means z > 0 (a softmax), so the enclosure
    is cut at +0.0 and a value that underflows rounds to +0.0, not "undecided"."""
    f = get_format(fmt)
    approx_a = np.asarray(approx, dtype=np.float64)
    bound_a = np.asarray(bound, dtype=np.float64)
    with np.errstate(all="ignore"):
        lo = np.nextafter(approx_a - bound_a, -np.inf)
        hi = np.nextafter(approx_a + bound_a, np.inf)
        known = False
        if sign is not None:
            sign_a = np.broadcast_to(np.asarray(sign), approx_a.shape)
            lo = np.where((sign_a > 0) & (lo <= 0), 0.0, lo)
            hi = np.where((sign_a < 0) & (hi >= 0), -0.0, hi)
            known = sign_a != 0
        rlo, rhi = round_array(lo, f), round_array(hi, f)
        ok = (np.isfinite(lo) & np.isfinite(hi) & (rlo == rhi) & (np.signbit(rlo) == np.signbit(rhi))
              & ((rlo != 0) | (lo > 0) | (hi < 0) | known))
        exact = (bound_a == 0) & np.isfinite(approx_a)
        # an exact value rounds as itself, except that an exact zero is +0.0 (a tiny negative one rounds to -0.0)
        values = np.where(exact, np.where(approx_a == 0, 0.0, round_array(approx_a, f)), rlo)
    return values, ok | exact


class _Source:
    """Approximations with bounds for a batch of outputs (``Exact.deferred``'s source): ``decide`` certifies the
    rounding (vectorised once per format), ``build`` runs the mpmath path for one output."""

    def __init__(self, approx, bound, builder, sign=None, dd=None, work=None, kappa=None):
        self.approx = approx
        self.bound = bound
        self.builder = builder
        self.sign = sign
        self.dd = dd  # dd(quick): the double-double evaluation (hi, lo, bound[, second enclosure]), oracles.fast64
        self._dd_results = {}  # quick (bool) -> the dd evaluation
        self.work = work  # (the input array, its number of rows): the cost model of _dd_pays
        self._certified = {}
        self.kappa = kappa  # kappa(): upper bounds of every output's condition number (steps K1-K4), or None
        self._kappa_up = None
        self._mag = None

    def magnitude(self, key):
        """A binary64 upper bound of |value|: |approx| + bound, rounded up (the enclosure of step 10)."""
        if self._mag is None:
            with np.errstate(all="ignore"):
                self._mag = np.nextafter(np.abs(np.ravel(self.approx)) + np.ravel(self.bound), np.inf).tolist()
        m = self._mag[key]
        return m if math.isfinite(m) else None

    def kappa_magnitude(self, key):
        """A binary64 upper bound of the condition number (``kappa``: steps K1-K4), None where not finite."""
        if self.kappa is None:
            return None
        if self._kappa_up is None:
            try:
                with np.errstate(all="ignore"):
                    self._kappa_up = np.ravel(self.kappa()).tolist()
            except OverflowError:  # a sum of bounds past the largest double (math.fsum): no bound (K4)
                self._kappa_up = [math.inf] * np.size(self.approx)
        k = self._kappa_up[key]
        return k if math.isfinite(k) and k >= 0 else None

    def enclose(self, key, rel_bits):
        """A ball (mid, rad) of raw mpf values holding the exact value, rad <= |mid| 2**-rel_bits: the binary64
        enclosure (approx, bound) when it is that narrow, else the double-double one, hi + lo (an exact mpf sum)
        with its bound (the quick evaluation, then the accurate one); None when neither is narrow enough."""
        exact = float(np.ravel(self.bound)[key]) == 0
        for hi, lo, b in self._enclosures(key):
            if not (math.isfinite(hi) and math.isfinite(lo) and math.isfinite(b)) or (b == 0 and not exact):
                # a double-double bound of 0 where binary64's is not: a value below every binary64 (an underflowed
                # tail, e**-(1e184)) that the rounding decides by its known sign, not a point
                continue
            mid = libmp.mpf_add(libmp.from_float(hi), libmp.from_float(lo), 0)  # exact
            if b == 0:
                return mid, libmp.fzero
            rad = libmp.from_float(b)
            if mid[1] and libmp.mpf_cmp(libmp.mpf_shift(libmp.mpf_abs(mid), -rel_bits), rad) >= 0 \
                    and _one_binade(mid, rad):
                return mid, rad
        return None

    def _enclosures(self, key):
        """(hi, lo, bound) with |exact - (hi + lo)| <= bound: binary64's, then the quick and accurate dd's."""
        yield float(np.ravel(self.approx)[key]), 0.0, float(np.ravel(self.bound)[key])
        if self.dd is not None:
            for quick in (True, False):
                yield tuple(float(np.ravel(v)[key]) for v in self._dd(quick)[:3])

    def _dd(self, quick):
        res = self._dd_results.get(quick)
        if res is None:
            with np.errstate(all="ignore"):
                res = self._dd_results[quick] = self.dd(quick)
        return res

    def _decisions(self, f):
        """(values, ok, the same as lists) of every output's certified rounding into f, computed once per format."""
        c = self._certified.get(f.name)
        if c is None:
            values, ok = certify(self.approx, self.bound, f, self.sign)
            if self.dd is not None and (f.name == "float64" or (not ok.all() and self._dd_pays(ok))):
                # float64, or what the binary64 bound left open in a narrower format: the double-double
                # evaluation (computed once per call, on the first such request) decides nearly all of it
                v2, ok2 = self._decide_dd(f)
                values, ok = np.where(ok, values, v2), ok | ok2  # an exact value is already decided
            values, ok = np.ravel(values), np.ravel(ok)
            c = self._certified[f.name] = (values, ok, values.tolist(), ok.tolist())
        return c

    def decide(self, key, f):
        c = self._decisions(f)
        if c[3][key]:
            _count("decided")
            return c[2][key]
        _count("fallback")
        return None

    def decide_many(self, keys, f):
        """``decide`` of many keys (a list): (values, ok); a key not ok is left to ``decide``."""
        keys = np.asarray(keys, dtype=np.int64)
        values, ok = self._decisions(f)[:2]
        ok = ok[keys]
        _count("decided", int(np.count_nonzero(ok)))
        return values[keys], ok

    def enclose_many(self, keys, rel_bits):
        """``enclose`` of many keys (a list): (hi, lo, ok), where ok the midpoint ``enclose`` returns is
        exactly hi + lo (the same levels in the same order, each tested by ``enclosed_many``); a key not ok (no
        level narrow enough, or one binary64 could not judge) is left to ``enclose``."""
        keys = np.asarray(keys, dtype=np.int64)
        n = len(keys)
        hi, lo, ok = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
        exact = np.ravel(self.bound)[keys] == 0
        pending = np.ones(n, dtype=bool)
        levels = [lambda: (np.ravel(self.approx)[keys], np.zeros(n), np.ravel(self.bound)[keys])]
        if self.dd is not None:
            levels += [lambda q=q: tuple(np.ravel(v)[keys] for v in self._dd(q)[:3]) for q in (True, False)]
        for level in levels:
            if not pending.any():
                break
            h, low, b = level()
            with np.errstate(all="ignore"):
                skip = ~(np.isfinite(h) & np.isfinite(low) & np.isfinite(b)) | ((b == 0) & ~exact)
                yes, no = enclosed_many(np.where(skip, 0.0, h), np.where(skip, 0.0, low), np.where(skip, 1.0, b),
                                        rel_bits, one_binade=True)
            take = pending & ~skip & yes
            hi[take], lo[take], ok[take] = h[take], low[take], True
            pending &= skip | no  # the rest: taken, or a test binary64 could not judge (left to ``enclose``)
        return hi, lo, ok

    def _dd_pays(self, ok):
        """Whether the double-double evaluation is cheaper than the mpmath rows of the undecided outputs (the
        whole call when the builder takes it whole): about 60 ns an element and 30 us a row against about 20 us an
        element of the mpmath path (measured on the 2-core machine; a cost model, not a correctness matter)."""
        if not isinstance(self.builder, _RowBuilder) or self.work is None:
            return True
        x, rows = self.work
        undecided = int(ok.size - np.count_nonzero(ok))
        per_row = x.size / max(rows, 1)
        return undecided * per_row * 20e-6 > x.size * 60e-9 + rows * 30e-6

    def _decide_dd(self, f):
        """The double-double roundings: the quick evaluation first (bound ~2**-62, fast64 steps Q1-Q2), the
        accurate one (~2**-95) for what it leaves open; each is rigorous, so either's decision is the answer."""
        values, ok = self._certify_dd(f, True)
        if not ok.all():
            v2, ok2 = self._certify_dd(f, False)
            values, ok = np.where(ok, values, v2), ok | ok2
        return values, ok

    def _certify_dd(self, f, quick):
        with np.errstate(all="ignore"):
            res = self._dd(quick)
            sign = None if self.sign is None else np.ravel(self.sign)
            hi, lo, bound = (np.ravel(a) for a in res[:3])
            if f.name != "float64":  # [hi + lo - B, hi + lo + B] within hi +- (|lo| + B), rounded up
                wide = np.abs(lo) + bound
                return certify(hi, np.where(wide > 0, wide * (1 + 2.0**-50) + SUBNORMAL, 0.0), f, sign)
            values, ok = fast64.certify64(hi, lo, bound, sign)
            if len(res) > 3:  # a second enclosure: exact part plus an interval (fast64 step 13)
                hi2, lo2, off_lo, off_hi, open_lo, open_hi = (None if a is None else np.ravel(a) for a in res[3])
                v2, ok2 = fast64.certify64_offsets(hi2, lo2, off_lo, off_hi, sign, open_lo, open_hi)
                values, ok = np.where(ok, values, v2), ok | ok2
            return values, ok

    def build(self, key):
        with disabled():
            return self.builder(key)


#: binary64's relative rounding error, widened: a product or sum of two binary64 values in the normal range is within
#: 2**-53 of the exact one, so a comparison made with this margin on either side cannot be turned by that rounding
_WIDE = 2.0**-50
_LOW, _HIGH = 2.0**-900, 2.0**900  # where ``enclosed_many`` answers: every step below stays normal and finite


def enclosed_many(hi: Any, lo: Any, rad: Any, rel_bits: int, one_binade: bool = False) -> tuple[Any, Any]:
    """The test a source's ``enclose`` applies to one enclosure (mid = hi + lo exactly, radius rad), for arrays:
    (yes, no) where it certainly accepts (rad = 0: an exact point; or mid != 0 with rad <= |mid| 2**-rel_bits
    and, with ``one_binade``, the ball inside one binade, ``_one_binade``) or certainly refuses; where neither,
    binary64 cannot tell and the caller asks the scalar test. Hi, lo and rad finite, rel_bits <= 100.

    Derivation: (nh, nl) = two_sum(hi, lo) is exact, so |mid| = |nh| + s nl (s the sign of nh), |nl| <= ulp(nh)/2,
    and |mid| = |nh| (1 +- 2**-53). With |nh| in [2**-900, 2**900], t = |nh| 2**-rel_bits is exact and normal; a
    product t (1 -+ 2**-50), rounded, stays on its side of |mid| 2**-rel_bits. The binade of |mid| is [P, 2P) with
    P = 2**floor(log2 |nh|), halved when |nh| is a power of two and s nl < 0; |nh| - P and 2P - |nh| are exact
    (Sterbenz), and adding s nl rounds once (2**-53 relative while normal): dl and dh, the distances from |mid| to
    the binade's ends, each within 2**-53 of the exact one. The ball is in one binade iff rad <= dl and
    rad < dh (|mid| - rad >= P and |mid| + rad < 2P; rad < |mid| already)."""
    with np.errstate(all="ignore"):
        nh, nl = fast64.two_sum(hi, lo)
        a = np.abs(nh)
        zero = (nh == 0) & (nl == 0)
        inside = (a >= _LOW) & (a <= _HIGH) & (rad >= 0)
        t = np.ldexp(a, -rel_bits)
        yes = inside & (t * (1 - _WIDE) >= rad)
        no = inside & (t * (1 + _WIDE) < rad)
        if one_binade:
            m, e = np.frexp(a)
            ls = np.where(nh < 0, -nl, nl)
            P = np.ldexp(1.0, np.where((m == 0.5) & (ls < 0), e - 2, e - 1))
            dl = (a - P) + ls
            dh = (2 * P - a) - ls
            normal = (dl >= 2.0**-1000) & (dh >= 2.0**-1000)
            yes &= normal & (dl * (1 - _WIDE) >= rad) & (dh * (1 - _WIDE) > rad)
            no |= inside & normal & ((dl * (1 + _WIDE) < rad) | (dh * (1 + _WIDE) <= rad))
        point = rad == 0
        return point | (yes & ~zero), ~point & (zero | no)


def _one_binade(mid: tuple, rad: tuple) -> bool:
    """Whether the ball lies within one binade [2**k, 2**(k+1)) in magnitude: a measurement reads the ULP from the
    midpoint's exponent, which must then be the exact value's (a ball across a power of two is not answered)."""
    a = libmp.mpf_abs(mid)
    lo, hi = libmp.mpf_sub(a, rad, 0), libmp.mpf_add(a, rad, 0)
    return bool(lo[1]) and lo[2] + lo[3] == hi[2] + hi[3]


def _inflate(b):
    """Step 10. A bound of exactly 0 (every step exact) stays 0: each of its terms is 0 or at least 2**-1074."""
    b = np.asarray(b, dtype=np.float64)
    return np.where(b > 0, b * INFLATE + FLOOR, b)


# --------------------------------------------------------------------------------------------------
# reading inputs


class _NotEligible(Exception):
    """The call is not one the fast path handles: the mpmath path takes it (and reports any error)."""


_FLOAT_TYPES = None


def _all_floats(obj: Sequence[Any]) -> bool:
    global _FLOAT_TYPES
    if _FLOAT_TYPES is None:
        _FLOAT_TYPES = {float, np.float64, np.float32, np.float16}
    if obj and isinstance(obj[0], (list, tuple)):
        return all(isinstance(o, (list, tuple)) and _all_floats(o) for o in obj)
    return set(map(type, obj)) <= _FLOAT_TYPES


def _read(obj):
    """The input as a binary64 array holding exactly the same values, or _NotEligible: only arrays of floats
    (lists of Python floats, NumPy float arrays, tensors) are taken; ints, strings, mpf and anything ragged go to
    the mpmath path, which reads every kind exactly and reports bad input."""
    a = None
    if isinstance(obj, np.ndarray):
        a = obj
    elif not isinstance(obj, (list, tuple)):
        if hasattr(obj, "__array__"):
            try:
                a = np.asarray(obj)
            except Exception:  # a bfloat16 or CUDA tensor: read its values through tolist()
                a = None
        if a is None:
            if not hasattr(obj, "tolist"):
                raise _NotEligible
            obj = obj.tolist()
    if a is None:
        if not isinstance(obj, (list, tuple)) or not obj:
            raise _NotEligible
        try:
            a = np.array(obj)
        except (ValueError, TypeError):
            raise _NotEligible from None
        if a.dtype != np.float64 or not _all_floats(obj):
            raise _NotEligible
    if a.dtype not in (np.float64, np.float32, np.float16) or a.ndim == 0 or a.size == 0:
        raise _NotEligible
    return np.ascontiguousarray(a, dtype=np.float64)


def _class_rows(x, d):
    """(rows (M, C), positions (M, C) of each row's entries in the flat input) with dim ``d`` last."""
    C = x.shape[d]
    rows = np.moveaxis(x, d, -1).reshape(-1, C)
    if d == x.ndim - 1:
        pos = None  # row-major already: row r, class c is flat position r * C + c
    else:
        pos = np.moveaxis(np.arange(x.size).reshape(x.shape), d, -1).reshape(-1, C)
    return np.ascontiguousarray(rows), pos


def _regular(rows):
    """Every entry finite or -inf and every row with a finite entry (else: the mpmath path's special values), in
    one pass: a row's maximum is NaN where the row holds a NaN (np.max propagates NaN), +inf where it holds +inf
    (and no NaN), -inf where every entry is -inf, and finite exactly where the row is regular."""
    if not np.isfinite(rows.max(axis=1)).all():
        raise _NotEligible


# --------------------------------------------------------------------------------------------------
# the softmax family's row statistics (steps 1-4 of the error analysis)


class _Rows:
    """m, jmax, R^, L^ and err_L for every row of ``rows`` (M, C), in blocks of rows; rows that are not regular
    (``_regular``: a NaN or +inf entry, or no finite entry) raise _NotEligible, found from the row maxima and sums
    this computes anyway, not from passes of their own."""

    def __init__(self, rows):
        M, C = rows.shape
        if C >= 1 << 40 or M == 0 or C == 0:
            raise _NotEligible
        self.rows, self.M, self.C = rows, M, C
        self.jmax = np.argmax(rows, axis=1)
        self.m = rows[np.arange(M), self.jmax]
        # m is +inf where a row holds +inf, -inf where it holds no finite entry, NaN where argmax chose a NaN
        if not np.isfinite(self.m).all():
            raise _NotEligible
        R = np.empty(M)
        for a, b, d in self._blocks():
            np.exp(d, out=d)
            d[np.arange(b - a), self.jmax[a:b]] = 0.0
            R[a:b] = d.sum(axis=1)
        if np.isnan(R).any():  # a NaN entry beside a finite maximum: exp(NaN - m) is NaN, and so is the sum
            raise _NotEligible
        self.R = R
        # rows with one finite entry have exact results: log_softmax 0, softmax 1, logsumexp m. Their R is an
        # exact 0 (every other term exp(-inf) = 0), so only the rows with R = 0 are counted (in every other row
        # a second entry is finite)
        self.single = np.zeros(M, dtype=bool)
        zero = np.nonzero(R == 0)[0]
        if zero.size:
            self.single[zero] = np.count_nonzero(rows[zero] != -np.inf, axis=1) == 1
        with np.errstate(all="ignore"):
            self.L = np.log1p(R)
        k = C - 1
        gamma = k * U / (1 - k * U)
        self.rho = THETA + gamma * (1 + THETA)
        self.nu = (1 + gamma) * k * TAU
        den = 1 - self.rho - self.nu
        rho1, nu1 = self.rho / den, self.nu / den
        eps_l = rho1 + ETA * (1 + rho1)
        nu_l = nu1 * (1 + ETA) + TAU
        self.err_l = eps_l * (self.L + nu_l) / (1 - eps_l) + nu_l

    def _blocks(self):
        """(a, b, d^) for blocks of rows: d^ = fl(x - m), a fresh array the caller may overwrite."""
        step = max(1, _CHUNK // max(self.C, 1))
        for a in range(0, self.M, step):
            b = min(self.M, a + step)
            with np.errstate(all="ignore"):
                yield a, b, self.rows[a:b] - self.m[a:b, None]

    def log_softmax(self):
        """(approx, bound) of every log_softmax output, shaped like the rows (step 5)."""
        y = np.empty((self.M, self.C))
        bnd = np.empty((self.M, self.C))
        for a, b, d in self._blocks():
            with np.errstate(all="ignore"):
                np.subtract(d, self.L[a:b, None], out=y[a:b])
                bnd[a:b] = _inflate(U1 * (np.abs(d) + np.abs(y[a:b])) + self.err_l[a:b, None])
        self._exact_singles(y, bnd, 0.0)
        return y, bnd

    def _exact_singles(self, approx, bound, value):
        r = np.nonzero(self.single)[0]
        approx[r, self.jmax[r]] = value
        bound[r, self.jmax[r]] = 0.0

    def logsumexp(self):
        """(approx, bound) per row (step 6)."""
        z = self.m + self.L
        bound = _inflate(self.err_l + U1 * np.abs(z))
        z[self.single] = self.m[self.single]
        bound[self.single] = 0.0
        return z, bound

    def softmax(self):
        """(approx, bound) of every softmax output (step 7); a -inf entry is an exact 0."""
        D = 1.0 + self.R
        R_up = (self.R + self.nu) / (1 - self.rho)
        delta = U1 * D + self.rho * R_up + self.nu
        D_lo = np.maximum(1.0, (D - delta) * (1 - 2.0**-50))
        s = np.empty((self.M, self.C))
        bnd = np.empty((self.M, self.C))
        for a, b, d in self._blocks():
            masked = d == -np.inf
            idx = (np.arange(b - a), self.jmax[a:b])
            np.exp(d, out=d)
            d[idx] = 1.0
            e_up = (d + TAU) / (1 - THETA)
            e_up[idx] = 1.0
            term = THETA * e_up + TAU
            term[idx] = 0.0
            Dc, dc, lo = D[a:b, None], delta[a:b, None], D_lo[a:b, None]
            np.divide(d, Dc, out=s[a:b])
            bb = _inflate(U1 * s[a:b] + SUBNORMAL + term / Dc + e_up * dc / (Dc * lo))
            bb[masked] = 0.0
            s[a:b][masked] = 0.0
            bnd[a:b] = bb
        self._exact_singles(s, bnd, 1.0)
        eq, k = self._equal_rows()
        if eq.size:  # 1/k exactly, for k a power of two (2**-40 or more: a normal binary64)
            fin = self.rows[eq] != -np.inf
            s[eq] = np.where(fin, 1.0 / k[:, None], 0.0)
            bnd[eq] = 0.0
        return s, bnd

    def _equal_rows(self):
        """(rows, k): the rows whose finite entries are all equal, k >= 2 of them with k a power of two. Every
        finite entry's softmax is then exactly 1/k, a binary64 value, whose bound is 0: an enclosure of 1/k
        straddles the power of two, so it could never tell the binade a measurement's ULP is read in, and each
        such number would go to mpmath (4,600 of them in one float32 softmax cell: the edge problem of 512 equal
        logits). Such a row has R^ = k - 1 exactly (exp(0) = 1 k - 1 times, an exact integer sum), so only the
        rows with R^ + 1 a power of two are read, and each is checked entry by entry."""
        with np.errstate(all="ignore"):
            cand = np.nonzero((self.R >= 1) & (np.frexp(self.R + 1.0)[0] == 0.5))[0]
        if cand.size == 0:
            return cand, np.empty(0)
        sub, top = self.rows[cand], self.m[cand, None]
        k = np.count_nonzero(sub == top, axis=1)
        ok = ((sub == top) | (sub == -np.inf)).all(axis=1) & (k == self.R[cand] + 1.0)
        return cand[ok], k[ok].astype(np.float64)

    def kappa_rows(self):
        """(S^, D^, |x_m| / D^, R^ / D^ times |x_m|) per row (step K1), and each row's max |x| over its finite
        entries."""
        S = np.empty(self.M)
        xmax = np.empty(self.M)
        for a, b, d in self._blocks():
            finite = d != -np.inf
            ax = np.where(finite, np.abs(self.rows[a:b]), 0.0)
            xmax[a:b] = ax.max(axis=1, initial=0.0)
            np.exp(d, out=d)
            d[np.arange(b - a), self.jmax[a:b]] = 0.0
            S[a:b] = np.einsum("ij,ij->i", ax, d)
        D = 1.0 + self.R
        axm = np.abs(self.m)
        return S / D, D, axm / D, axm * (self.R / D), xmax

    def kappa_log_softmax(self):
        """Upper bounds of every log_softmax output's kappa, shaped like the rows (K1-K3)."""
        S, D, pm_x, top, xmax = self.kappa_rows()
        k = np.empty((self.M, self.C))
        for a, b, d in self._blocks():
            ax = np.where(d != -np.inf, np.abs(self.rows[a:b]), 0.0)
            p = np.exp(d) / D[a:b, None]
            k[a:b] = ax * (1.0 - 2.0 * p) + S[a:b, None] + pm_x[a:b, None]
        r = np.arange(self.M)
        k[r, self.jmax] = top + S
        return self._kappa_up(k, xmax)

    def kappa_logsumexp(self):
        S, _, pm_x, _, xmax = self.kappa_rows()
        return self._kappa_up(pm_x + S, xmax)

    def _kappa_up(self, k, xmax):
        """Step K3 (k per row, or rows x classes; xmax per row); inf (no bound: K4) where the absolute floor is
        not negligible beside k (above k 2**-40: a row whose terms underflow beside huge |x|, or an exact 0)."""
        krel = 2.0**-30 + 32 * self.C * U
        floor = (self.C * xmax + 1.0) * 2.0**-1040
        if k.ndim == 2:
            floor = floor[:, None]
        return np.where(floor <= k * 2.0**-40, k * (1 + krel) + floor, np.inf)

    def target_log_prob(self, t):
        """(approx, bound) of -log_softmax at class t[r] of every row r (steps 5 and 8)."""
        r = np.arange(self.M)
        with np.errstate(all="ignore"):
            d = self.rows[r, t] - self.m  # d^_t
            v = self.L - d
        err = U1 * (np.abs(d) + np.abs(v)) + self.err_l
        return np.where(self.single, 0.0, v), np.where(self.single, 0.0, err)


# --------------------------------------------------------------------------------------------------
# mpmath fallbacks with the gradient laid out over the whole input


def _remap(ex, positions, shape):
    """The Exact of one row's mpmath result, its gradient moved from the row's positions 0..C-1 to the given
    positions of an input of ``shape``."""
    value = ex.special if ex.special is not None else ex.node

    def entries():
        return {int(positions[k]): g for k, g in ex._entries_fn().items()}

    return make_result(value, shape, entries, kappa_fn=lambda: ex.kappa)


def _row_positions(r, C, pos):
    return range(r * C, (r + 1) * C) if pos is None else pos[r]


#: inputs up to this many elements are handed to the mpmath path whole when something needs expressions (one
#: call, no per-row remapping: as cheap as the mpmath path alone, which the battery's measurements rely on)
WHOLE_ELEMENTS = 1 << 16


class _WholeBuilder:
    """The mpmath result of the whole call, computed once on demand; output ``key`` is its flat element
    ``order[key]`` (the fast path's row-major position mapped back to the output's layout)."""

    def __init__(self, call, order=None):
        self.call, self.order, self._flat = call, order, None

    def __call__(self, key):
        if self._flat is None:
            res = self.call()
            self._flat = _flatten(res)
        return self._flat[key if self.order is None else self.order[key]]


def _flatten(r):
    return [e for x in r for e in _flatten(x)] if isinstance(r, list) else [r]


def _builder(x, whole_call, row_call, rows, pos, per_row, order=None):
    if x.size <= WHOLE_ELEMENTS:
        return _WholeBuilder(whole_call, order)
    return _RowBuilder(row_call, rows, pos, x.shape, per_row)


class _RowBuilder:
    """The mpmath result of one output of a row-wise function, computed row by row on demand (a row of the
    softmax family depends on that row alone, so an undecided element costs one row, not the whole input)."""

    def __init__(self, fn, rows, pos, shape, per_row):
        self.fn, self.rows, self.pos, self.shape, self.per_row = fn, rows, pos, shape, per_row
        self._done = {}

    def __call__(self, key):
        r, c = divmod(key, self.per_row)
        res = self._done.get(r)
        if res is None:
            res = self._done[r] = self.fn(r)
        return _remap(res[c], _row_positions(r, self.rows.shape[1], self.pos), self.shape)


# --------------------------------------------------------------------------------------------------
# the functions


def _softmax_family(name, fn, input, dim):
    x = _read(input)
    if dim is None:
        dim = softmax_dim(x.ndim)
    d = normalize_dim(dim, x.ndim)
    rows, pos = _class_rows(x, d)
    st = _Rows(rows)
    approx, bound = st.log_softmax() if name == "log_softmax" else st.softmax()
    order = None if pos is None else pos.ravel().tolist()
    builder = _builder(x, lambda: fn(input, dim=dim), lambda r: fn(rows[r].tolist(), dim=0), rows, pos, st.C,
                       order)
    # the exact sign: a finite entry's softmax is > 0; its log_softmax < 0 when another entry is finite (else 0)
    finite = rows != -np.inf
    if name == "softmax":
        sign = finite.astype(np.int8)
    else:
        sign = -(finite & (finite.sum(axis=1) > 1)[:, None]).astype(np.int8)
    def dd(quick):
        rows64 = fast64.DDRows(st, quick)
        return fast64.log_softmax(rows64) if name == "log_softmax" else fast64.softmax(rows64)

    def kappa():  # steps K1-K3; softmax's is p_i (at most approx + bound) times log_softmax_i's
        k = st.kappa_log_softmax()
        if name == "log_softmax":
            return k
        # an exact 0 (a -inf entry) has kappa 0; p_i's bound must be relative (below p_i 2**-34: with K3's
        # 2**-30 the product stays within 2**-29 of the exact kappa)
        p_up = approx + bound
        k = np.where(bound <= approx * 2.0**-34, np.nextafter(p_up * k, np.inf), np.inf)
        return np.where(p_up == 0, 0.0, k)

    src = _Source(approx.ravel(), bound.ravel(), builder, sign.ravel(), dd, (x, st.M), kappa)
    n = x.size
    masked = (~finite).ravel().tolist()
    special = -math.inf if name == "log_softmax" else None
    out = [Exact.deferred(src, p, special if masked[p] and special is not None else None) for p in range(n)]
    if pos is not None:
        flat = [None] * n
        for p, g in enumerate(pos.ravel().tolist()):
            flat[g] = out[p]
        out = flat
    return unflatten(x.shape, out)


def _logsumexp(fn, input, dim=None, keepdim=False):
    x = _read(input)
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) in (0, x.ndim)):
        if isinstance(dim, (list, tuple)) and len({normalize_dim(k, x.ndim) for k in dim}) != len(dim):
            raise _NotEligible
        dims = list(range(x.ndim))
    elif isinstance(dim, (list, tuple)):
        if len(dim) != 1:
            raise _NotEligible
        dims = [normalize_dim(dim[0], x.ndim)]
    else:
        dims = [normalize_dim(dim, x.ndim)]
    if len(dims) == 1:
        d = dims[0]
        rows, pos = _class_rows(x, d)
        out_shape = tuple(1 if k == d else s for k, s in enumerate(x.shape)) if keepdim else \
            tuple(s for k, s in enumerate(x.shape) if k != d)
    else:
        rows, pos = x.reshape(1, -1), None
        out_shape = tuple(1 for _ in x.shape) if keepdim else ()
    st = _Rows(rows)
    approx, bound = st.logsumexp()
    builder = _builder(x, lambda: fn(input, dim=dim, keepdim=keepdim), lambda r: [fn(rows[r].tolist(), dim=0)],
                       rows, pos, 1)
    src = _Source(approx, bound, builder, dd=lambda quick: fast64.logsumexp(fast64.DDRows(st, quick)), work=(x, st.M),
                  kappa=st.kappa_logsumexp)
    return unflatten(out_shape, [Exact.deferred(src, r) for r in range(st.M)])


def _class_call(input, target, weight, ignore_index, reduction, size_average, reduce):
    """The shared reading of cross_entropy and nll_loss: rows, targets (class indices), weights."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise _NotEligible
    x = _read(input)
    cd = 0 if x.ndim == 1 else 1
    C = x.shape[cd]
    out_shape = tuple(s for k, s in enumerate(x.shape) if k != cd)
    t_shape, _ = shape_and_flat(target, "target")
    if t_shape == x.shape and x.shape != out_shape:
        raise _NotEligible  # probability targets
    t_shape, ts = read_indices(target, "target")
    if t_shape != out_shape or any(t != ignore_index and not 0 <= t < C for t in ts):
        raise _NotEligible
    w = None
    if weight is not None:
        w = _read(weight)
        if w.shape != (C,) or not np.isfinite(w).all():
            raise _NotEligible
    rows, pos = _class_rows(x, cd)
    t = np.array(ts, dtype=np.int64)
    kept = t != ignore_index
    tk = np.where(kept, t, 0)
    wt = np.where(kept, w[tk] if w is not None else 1.0, 0.0)
    return reduction, x, rows, pos, out_shape, t, kept, tk, wt, w


def _weighted(v, err_v, wt, weighted):
    """Step 8: a^ = fl(w_t v^) with its bound (exact when unweighted); an ignored row or a zero weight gives an
    exact 0, whatever the row holds (the mpmath path's 0 * anything = 0)."""
    live = wt != 0
    with np.errstate(all="ignore"):
        v = np.where(live, v, 0.0)
        err_v = np.where(live, err_v, 0.0)
        if not weighted:
            return v, err_v
        a = wt * v
        # the product is exact when v is an exact 0, and can only underflow when |a| < 2**-1022
        err = np.abs(wt) * err_v + U1 * np.abs(a) + np.where(np.abs(a) < 2.0**-1022, SUBNORMAL, 0.0)
        return a, np.where(live & ((v != 0) | (err_v != 0)), err, 0.0)


def _reduce(a, err, wt, kept, reduction):
    """Step 9: (approx, bound) of the sum or mean; None where the mean's denominator is 0 (the mpmath path's
    NaN) or something overflowed."""
    if not (np.isfinite(a).all() and np.isfinite(err).all()):
        raise _NotEligible
    try:
        T = math.fsum(a.tolist())
        err_t = float(err.sum()) + U1 * abs(T)
        if reduction == "sum":
            return T, float(_inflate(err_t))
        W = math.fsum(wt[kept].tolist())
    except OverflowError:
        raise _NotEligible from None
    if W == 0:
        raise _NotEligible
    q = T / W
    return q, float(_inflate((err_t + U1 * (abs(T) + err_t)) / abs(W) + U1 * abs(q) + SUBNORMAL))


def _leading_shape(obj: Any) -> tuple:
    """The shape of an array, or of nested lists read along their first elements (a ragged input is the reader's
    to refuse later): what tells probability targets (the input's shape) from class indices, in O(depth)."""
    if hasattr(obj, "shape"):
        return tuple(obj.shape)
    shape = []
    while isinstance(obj, (list, tuple)):
        shape.append(len(obj))
        if not obj:
            break
        obj = obj[0]
    return tuple(shape)


def _mixed_cross_entropy(fn, input, target, weight, ignore_index, reduction, size_average, reduce, eps):
    """cross_entropy with probability targets or label smoothing (step 12): binary64 values, magnitudes and
    condition numbers; no double-double evaluation (a float64 rounding, and a float32 midpoint of a long row,
    take the mpmath path)."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or not 0.0 <= eps <= 1.0:
        raise _NotEligible
    x = _read(input)
    cd = 0 if x.ndim == 1 else 1
    C = x.shape[cd]
    out_shape = tuple(s for k, s in enumerate(x.shape) if k != cd)
    rows, pos = _class_rows(x, cd)
    if not np.isfinite(rows).all() or C == 0:
        raise _NotEligible  # -inf masks: 0 * inf is the mpmath path's to define
    w = None
    if weight is not None:
        w = _read(weight)
        if w.shape != (C,) or not np.isfinite(w).all():
            raise _NotEligible
    wv = np.ones(C) if w is None else w
    om, ec = 1.0 - eps, eps / C  # fl(1 - eps), fl(eps / C): each within u (relative) of the exact one
    if _leading_shape(target) == x.shape and x.shape != out_shape:  # probability targets (read whole below)
        tr, _ = _class_rows(_read(target), cd)
        if not np.isfinite(tr).all() or (tr < 0).any():
            raise _NotEligible  # a negative probability is the mpmath path's error
        a = wv * (tr * om + ec) if eps else wv * tr
        # the exact a_c is 0 only where w_c = 0 or (eps = 0 and t_c = 0); a^_c may be 0 by underflow elsewhere
        zero = (wv == 0) | ((tr == 0) & (eps == 0))
        kept = np.ones(rows.shape[0], dtype=bool)
        den = np.ones(rows.shape[0])  # "mean" divides by the number of rows
        builder_kw = {}
    else:
        t_shape, ts = read_indices(target, "target")
        if t_shape != out_shape or any(t != ignore_index and not 0 <= t < C for t in ts):
            raise _NotEligible
        t = np.array(ts, dtype=np.int64)
        kept = t != ignore_index
        tk = np.where(kept, t, 0)
        onehot = np.zeros(rows.shape)
        onehot[np.arange(rows.shape[0]), tk] = om
        a = np.where(kept[:, None], wv * (onehot + ec), 0.0)
        # exactly 0: an ignored row, a zero weight, or (eps = 0) a class other than the target
        zero = ~kept[:, None] | (wv == 0) | ((onehot == 0) & (eps == 0))
        den = np.where(kept, wv[tk], 0.0)  # "mean" divides by the kept rows' target weights
        builder_kw = {"ignore_index": ignore_index}
    st = _Rows(rows)
    with np.errstate(all="ignore"):
        d = rows - st.m[:, None]  # d^ = fl(x - m), step 1
        y = st.L[:, None] - d  # -log_softmax >= 0, within err_y (step 5)
        err_y = U1 * (np.abs(d) + np.abs(y)) + st.err_l[:, None]
        y[st.single] = 0.0  # the one finite entry of a row: exactly 0
        err_y[st.single] = 0.0
        aa = np.abs(a)
        # underflow in a^_c's roundings (t om, eps / C, the product with w): 2**-1075 each, the first two times
        # |w_c|; counted double, and 0 where a_c is exactly 0 (whatever a^_c shows, it is then exact)
        ua = np.where(zero, 0.0, (2 * np.abs(wv) + 1) * 2.0**-1074)
        gam = C * U / (1 - C * U)
        v = np.einsum("ij,ij->i", a, y)
        err = ((aa * err_y).sum(axis=1) * (1 + 2 * gam) + (7 * U + 2 * gam) * (aa * (y + err_y)).sum(axis=1)
               + (ua * (y + err_y)).sum(axis=1) * (1 + 2 * gam) + C * 2.0**-1073)
        none = zero.all(axis=1)  # every coefficient exactly 0: v = 0 exactly (not a^ = 0 by underflow)
        err = np.where(none, 0.0, err)
    nonneg = (a >= 0).all(axis=1)
    sign = np.where(nonneg & ~st.single & (a > 0).any(axis=1), 1, 0).astype(np.int8)

    def kappa_rows():  # step 12: sum_j |x_j| |A p_j - a_j| per row, A = sum a
        s, s_err = st.softmax()
        A = a.sum(axis=1)
        e_a = (7 * U + gam) * aa.sum(axis=1) + ua.sum(axis=1) * (1 + gam)  # |A^ - A|, underflow included
        g = A[:, None] * s - a
        e_g = (e_a[:, None] * (s + s_err) + np.abs(A)[:, None] * s_err + 6.1 * U * aa + ua
               + 2.1 * U * np.abs(g))
        ax = np.abs(rows)
        k = np.einsum("ij,ij->i", ax, np.abs(g))
        ek = np.einsum("ij,ij->i", ax, e_g) + gam * 2 * k + C * ax.max(axis=1) * 2.0**-1073
        k_up = np.where(ek <= k * 2.0**-30, (k + ek) * (1 + 2.0**-50), np.inf)
        return np.where(none, 0.0, k_up)  # every coefficient exactly 0: v = 0 whatever x, kappa 0

    if reduction != "none":
        approx, bound = _reduce(v, err, den, kept, reduction)
        kwargs = dict(input=input, target=target, weight=weight, reduction=reduction, label_smoothing=eps,
                      **builder_kw)
        positive = bool((sign[kept] > 0).all()) and bool(kept.any())

        def kappa_reduced():
            total = math.fsum(kappa_rows()[kept].tolist()) * (1 + 4 * U)
            if reduction == "mean":
                total = total / abs(math.fsum(den[kept].tolist())) * (1 + 4 * U)
            return np.array([total])

        src = _Source(np.array([approx]), np.array([bound]), lambda key: fn(**kwargs), 1 if positive else None,
                      None, (x, rows.shape[0]), kappa_reduced)
        return Exact.deferred(src, 0)
    whole = dict(target=target, weight=weight, reduction="none", label_smoothing=eps, **builder_kw)
    builder = _WholeBuilder(lambda: fn(input, **whole))  # output r is row r (the rows follow the output's order)
    src = _Source(v, _inflate(err), builder, sign, None, (x, rows.shape[0]), kappa_rows)
    return unflatten(out_shape, [Exact.deferred(src, r) for r in range(rows.shape[0])])


def _class_loss(name, fn, input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                reduction="mean", label_smoothing=0.0):
    if name == "cross_entropy":
        if type(label_smoothing) not in (int, float):
            raise _NotEligible
        x_shape, t_shape = _leading_shape(input), _leading_shape(target)  # O(depth): never a walk over the input
        if label_smoothing != 0 or (t_shape == x_shape and len(x_shape) > 1):
            return _mixed_cross_entropy(fn, input, target, weight, ignore_index, reduction, size_average, reduce,
                                        float(label_smoothing))
    reduction, x, rows, pos, out_shape, t, kept, tk, wt, w = _class_call(
        input, target, weight, ignore_index, reduction, size_average, reduce)
    if name == "cross_entropy":
        if (rows[np.arange(rows.shape[0]), tk][kept] == -np.inf).any():
            raise _NotEligible  # an infinite loss: the mpmath path's special value
        st = _Rows(rows)
        v, err_v = st.target_log_prob(tk)
        multi = ~st.single  # -log_softmax > 0 exactly: the value has the weight's sign
    else:
        v = -rows[np.arange(rows.shape[0]), tk]
        if not np.isfinite(v[kept]).all():
            raise _NotEligible
        err_v = np.zeros_like(v)
        multi = np.zeros(len(v), dtype=bool)  # no sign known
        st = None
    weighted = w is not None

    def dd_rows(quick):
        return fast64.class_values(None if st is None else fast64.DDRows(st, quick), rows, tk, wt, weighted, name,
                                   alt=True)

    a, err = _weighted(v, err_v, wt, weighted)
    sign = (np.sign(wt) * multi).astype(np.int8)

    def kappa_rows():  # steps K1-K3 per row: |w| times log_softmax_t's kappa, or |w x_t|; 0 for an ignored row
        if st is None:
            return np.where(wt != 0, np.abs(wt * rows[np.arange(rows.shape[0]), tk]) * (1 + 4 * U), 0.0)
        S, D, pm_x, top, xmax = st.kappa_rows()
        r = np.arange(st.M)
        xt = np.abs(rows[r, tk])
        pt = np.exp(rows[r, tk] - st.m) / D
        k = np.where(tk == st.jmax, top + S, xt * (1.0 - 2.0 * pt) + S + pm_x)
        return np.where(wt != 0, np.abs(wt) * st._kappa_up(k, xmax) * (1 + 4 * U), 0.0)
    if reduction != "none":
        approx, bound = _reduce(a, err, wt, kept, reduction)
        kwargs = dict(input=input, target=target, weight=weight, ignore_index=ignore_index, reduction=reduction)
        live = wt != 0
        positive = live.any() and (sign[live] > 0).all()  # a sum (or mean) of positive terms
        def dd_reduced(quick):
            terms = fast64.class_values(None if st is None else fast64.DDRows(st, quick), rows, tk, wt, weighted,
                                        name, reduced=True)
            res = fast64.reduce_dd(*terms, wt, kept, reduction, weighted)
            return ([math.nan], [math.nan], [math.inf]) if res is None else ([res[0]], [res[1]], [res[2]])

        def kappa_reduced():  # step K3: a sum of the rows' bounds, over |W| for a mean
            total = math.fsum(kappa_rows().tolist()) * (1 + 4 * U)
            if reduction == "mean":
                total = total / abs(math.fsum(wt[kept].tolist())) * (1 + 4 * U)
            return np.array([total])

        src = _Source(np.array([approx]), np.array([bound]), lambda key: fn(**kwargs), 1 if positive else None,
                      dd_reduced, (x, rows.shape[0]), kappa_reduced)
        return Exact.deferred(src, 0)
    wl = None if w is None else w.tolist()
    tl = t.tolist()

    def row_result(r):
        return fn([rows[r].tolist()], [tl[r]], weight=wl, ignore_index=ignore_index, reduction="none")

    builder = _builder(x, lambda: fn(input, target, weight=weight, ignore_index=ignore_index, reduction="none"),
                       row_result, rows, pos, 1)
    src = _Source(a, _inflate(err), builder, sign, dd_rows, (x, rows.shape[0]), kappa_rows)
    return unflatten(out_shape, [Exact.deferred(src, r) for r in range(rows.shape[0])])


_HANDLERS: dict[str, Callable[..., ExactTree]] = {
    "log_softmax": lambda fn, input, dim=None: _softmax_family("log_softmax", fn, input, dim),
    "softmax": lambda fn, input, dim=None: _softmax_family("softmax", fn, input, dim),
    "logsumexp": _logsumexp,
    "cross_entropy": lambda fn, **kw: _class_loss("cross_entropy", fn, **kw),
    "nll_loss": lambda fn, **kw: _class_loss("nll_loss", fn, **kw),
}


#: the fast gradients: oracle name -> handler(kwargs, n, upstream, fallback) returning the n exact components of
#: the gradient of sum(upstream * outputs) with respect to the flattened input (usually ``Exact.deferred``, whose
#: ``build`` takes the component from ``fallback()``, the mpmath gradient, computed once), or None, or raising
#: ``NotEligible``, for a call it does not handle. Modules beside this one register theirs (``register``).
_GRADIENTS: dict[str, Callable[..., list | None]] = {}

#: what a handler raises for a call it does not take (the mpmath path then answers it, and reports bad input)
NotEligible = _NotEligible


def register(name: str, values: Callable[..., ExactTree] | None = None,
             gradient: Callable[..., list | None] | None = None) -> None:
    """Add a fast path for oracle ``name``: ``values(mpmath_fn, **kwargs)`` as in ``attempt``, ``gradient`` as
    in ``attempt_gradient`` (each optional). Used by the fast-path modules beside this one at import time."""
    if values is not None:
        _HANDLERS[name] = values
    if gradient is not None:
        _GRADIENTS[name] = gradient


def attempt_gradient(name: str, kwargs: dict, n: int, upstream: Sequence[float] | None,
                     fallback: Callable[[], list]) -> list | None:
    """The fast path's exact gradient of sum(upstream * outputs) of oracle ``name`` on ``kwargs`` with respect to
    the n flattened input elements (upstream None: ones), or None when no fast path takes the call: the caller
    then uses ``fallback()``, the mpmath gradient, which a fast component also builds from when it cannot
    certify what is asked of it."""
    handler = _GRADIENTS.get(name)
    if handler is None or not _enabled.get() or np is None or not _fp_env_ok():
        return None
    try:
        with np.errstate(all="ignore"):
            return handler(kwargs, n, upstream, fallback)
    except (_NotEligible, OracleInputError, OverflowError):  # an overflow in a bound's sum: not certifiable here
        return None


def attempt(name: str, mpmath_fn: Callable[..., ExactTree], **kwargs: Any) -> ExactTree | None:
    """The fast path's result for oracle ``name`` on torch-style ``kwargs`` (the same nested Exact values the
    mpmath path returns, deferred), or None when the call is not one it handles: the caller then takes the
    mpmath path, which also reports any bad input. ``mpmath_fn`` is the oracle itself (oracles/functions.py,
    oracles/losses.py, which import this module): it builds an output's expressions, gradient and condition
    number when they are asked for, or decides a rounding the fast bound leaves open (with the fast path off)."""
    if not _enabled.get() or np is None or not _fp_env_ok():
        return None
    if name not in _HANDLERS:
        return None
    try:
        # overflow to inf and inf - inf are expected here (the enclosures certify or give up): never a warning on
        # the caller's stderr, whatever the handler's own errstate blocks cover
        with np.errstate(all="ignore"):
            return _HANDLERS[name](mpmath_fn, **kwargs)
    except (_NotEligible, OracleInputError, OverflowError):  # an overflow in a bound's sum: not certifiable here
        return None
