"""Measurements: a subject's result against the oracle, per output element and per gradient component, with the
verdict ladder of NUMERICS.md. A measurement is made once and used three times: to decide the test, to steer
Hypothesis (``bits`` of error), and for the summary and the results file.

Verdicts, best first: correctly_rounded > accurate > stable > unstable > broken. The pass line is "stable".
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from mpmath import isfinite as mpmath_isfinite
from mpmath import libmp

import oracles
from oracles import bounds
from oracles import extended as X
from oracles.balls import BallError
from oracles.codec import flat
from oracles.exact import START_GUARD, Exact, decide_many, enclose_many
from oracles.fast import attempt_gradient, ordinal_array
from oracles.fast64 import two_sum
from oracles.formats import bits_of_error, get_format, to_mpf
from oracles.functions import VJP
from oracles.tensors import softmax_dim

from . import cache as store
from . import catalogue
from .conditioning import grad_kappa
from .verdicts import RANK, passes, worst

__all__ = ["Element", "Measurement", "measure", "exact_gradient", "exact_fraction", "structure"]

_CLAMP = 1 << 12  # magnitudes beyond 2**+-4096 are clamped before becoming Fractions (no format reaches them)


def _fraction(v) -> Fraction:
    """Exact Fraction of a raw mpf, clamped to [2**-4096, 2**4096] in magnitude (zero stays zero)."""
    sign, man, e, bc = v
    if not man:
        return Fraction(0)
    top = e + bc
    if top < -_CLAMP:
        q = Fraction(1, 2**_CLAMP)
    elif top > _CLAMP:
        q = Fraction(2**_CLAMP)
    else:
        q = Fraction(int(man) * 2**e) if e >= 0 else Fraction(int(man), 2**-e)
    return -q if sign else q


def _float(q: Fraction) -> float:
    """A bound as a float for display: inf beyond the largest double."""
    try:
        return float(q)
    except OverflowError:
        return math.inf


def _mpf_fraction(v) -> Fraction:
    """An mpmath mpf magnitude (kappa_g, a bound) as a Fraction, clamped like ``_fraction`` (inf -> 2**4096)."""
    if isinstance(v, int):
        return Fraction(v)
    if not mpmath_isfinite(v):
        return Fraction(2**_CLAMP)
    return _fraction(v._mpf_)


_LOCAL_CAP = 1100  # relative enclosures for measuring stop here; past it, an absolute ball (below)


class CachedExact:
    """The oracle side of one compared number, as the measurement cache stores it: its rounding into the format
    and the midpoint the error was measured from (an mpf tuple, or None for a special value). It
    stands in for an ``Exact`` wherever a measurement reads one (``.to``, ``.is_special``, ``str``, the
    midpoint), so a cached measurement's verdicts are computed exactly as a fresh one's."""

    __slots__ = ("special", "rounded", "mid", "rel_bits", "precision_used")

    def __init__(self, special, rounded, mid, rel_bits: int):
        self.special, self.rounded, self.mid, self.rel_bits = special, rounded, mid, rel_bits
        self.precision_used = 0

    @property
    def is_special(self) -> bool:
        return self.special is not None

    def to(self, fmt) -> float:
        return self.rounded

    def __str__(self) -> str:
        """The midpoint's digits, as many as its enclosure holds (``_midpoint_digits``), not the fresh value's
        36: computing those for every cached number would cost a second enclosure each."""
        if self.special is not None:
            return repr(self.special)
        return _midpoint_digits(self.mid, self.rel_bits)


def _midpoint_digits(mid, rel_bits: int) -> str:
    """A midpoint within 2**-rel_bits (relative) of the exact value, to the digits that holds: floor(rel_bits
    log10 2) + 2 significant digits d (11 for bfloat16's measuring precision, 16 for float32's, 25 for
    float64's): d > rel_bits log10 2 + 1, so the decimal rounding, at most 10**(1 - d) / 2 relative, is under
    2**-rel_bits / 2 and the printed number within 1.5 * 2**-rel_bits of the exact one; trailing zeros dropped
    (an exact 0.1 in bfloat16, measured from a midpoint 6e-15 below it, shows as 0.1)."""
    return libmp.to_str(mid, int(rel_bits * 0.30103) + 2)


def _measuring_bits(f) -> int:
    """The relative precision (bits) of the midpoint an error in format f is measured from: the precision Ziv's
    loop starts at, minus 16 (``_verdict``)."""
    return f.p + START_GUARD - 16


def _midpoint(e: Exact, rel_bits: int, fmt=None):
    """A midpoint of e good for measuring an error in ``fmt``: e enclosed to rel_bits relative bits, or, for a
    value that needs more than _LOCAL_CAP bits to enclose relatively (a near-cancellation, or e**-(7e48), below
    every format's smallest subnormal by a googol of binades), the midpoint of an absolute ball whose radius is
    below 2**-(p + 20) of the format's quantum at that value (so below 2**-20 ULP): all a measurement needs. Raises
    OraclePrecisionError when even that cannot be had. A cached value gives the midpoint it was measured from."""
    if isinstance(e, CachedExact):
        return e.mid
    known = e.source_enclosure(rel_bits)  # what ``enclose`` answers first, without entering the cap's context
    if known is not None:
        return known[0]
    try:
        with oracles.precision_cap(max(_LOCAL_CAP, 4 * rel_bits)):
            return e.enclose(rel_bits)[0]
    except oracles.OraclePrecisionError:
        f = get_format(fmt or "float64")
        w = 1200 + rel_bits
        while w <= oracles.get_precision_cap():
            ball = e.node.ball(w)
            mag = libmp.mpf_add(libmp.mpf_abs(ball.mid), ball.rad, 64, "u")
            top = mag[2] + mag[3] if mag[1] else f.quantum_min
            quantum = max(top, f.emin + 1) - f.p  # the format's ulp exponent at that magnitude, at least
            if not ball.rad[1] or ball.rad[2] + ball.rad[3] <= quantum - 20:
                return ball.mid
            w *= 2
        raise


def _upper(e: Exact, bits: int = 64) -> Fraction:
    """An upper bound of |e| (bounds need magnitudes, not digits): |mid| + rad of a ball at ``bits`` (raised only
    while the ball cannot be formed), instead of a relative enclosure that near a cancellation escalates."""
    if e.is_special:
        return Fraction(0)
    known = e.magnitude_bound()  # a fast path's rigorous bound, without building the expression
    if known is not None:
        return Fraction(known)
    w = bits
    while True:
        try:
            ball = e.node.ball(w)
            return abs(_fraction(ball.mid)) + _fraction(ball.rad)
        except BallError:  # a log or quotient whose operand may touch zero at this precision
            w *= 2
            if w > oracles.get_precision_cap():
                raise oracles.OraclePrecisionError(f"could not bound the magnitude within {w // 2} bits") from None


def _kappa_upper(z: Exact, bits: int) -> Fraction:
    """An upper bound of z's condition number: a fast path's own (``Exact.kappa_bound``), else ``_upper`` of
    the exact kappa (0 for a special value or a special kappa, which no allowance can use)."""
    if z.is_special:
        return Fraction(0)
    known = z.kappa_bound()
    if known is not None:
        return Fraction(known)
    return Fraction(0) if z.kappa.is_special else _upper(z.kappa, bits)


def exact_fraction(e: Exact, rel_bits: int = 80) -> Fraction:
    return _fraction(_midpoint(e, rel_bits))


#: the float filter of ``Allowances``: its binary64 allowances are within 2**-44 of the exact ones (relative), so an
#: error more than 2**-40 away from one (relative) is on the same side of the exact allowance; the range keeps every
#: binary64 step of the estimate normal (no underflow, no overflow): elsewhere the exact comparison decides
_MARGIN = 2.0**-40
_TINY, _HUGE = 2.0**-1000, 2.0**1000


def _side(e_f: float, a: float | None) -> int:
    """1 when an error whose binary64 rounding is e_f lies above the exact allowance that ``a`` estimates (within
    2**-44 relative), -1 when below, 0 when the floats cannot tell (too close, or ``a`` outside the range where its
    estimate is that good). e_f = RN(err) is within 2**-52 of err (or 2**-1074 absolute, far below _TINY), so
    e_f < a (1 - 2**-40) gives err < a (1 - 2**-40)(1 + 2**-52) < a (1 - 2**-44) <= the exact allowance, and
    e_f > a (1 + 2**-40) gives err > a (1 + 2**-40)(1 - 2**-52) > a / (1 - 2**-44) >= it (e_f = inf: err >= 2**1024)."""
    if a is None or not _TINY < a < _HUGE:
        return 0
    if e_f > a * (1 + _MARGIN):
        return 1
    if e_f < a * (1 - _MARGIN):
        return -1
    return 0


class _Quick:
    """The binary64 estimates of ``Allowances.estimate`` for one call: oracles/bounds.py's element and gradient
    bounds (and the accurate floor K u |z| + s_min) from a binary64 magnitude. Each is a handful of binary64 steps on
    exact or once-rounded operands (u S and K powers of two times small integers: exact; the unit and G rounded
    once, s_min S / 2 once, possibly to a subnormal: 2**-1075 absolute), so within 2**-50 of the exact allowance,
    relative, wherever that lies in [2**-1000, 2**1000] (``_side`` checks the range; an overflow gives inf, outside
    it)."""

    def __init__(self, f, steps: int, unit: Fraction):
        self.K, self.u, self.smin, self.s = float(bounds.K), float(f.u), float(f.min_subnormal), steps
        self.us, self.under = float(f.u * steps), float(steps * Fraction(f.min_subnormal) / 2)
        self.ug, self.under_g = float(f.u * (steps + 2)), float((steps + 2) * Fraction(f.min_subnormal) / 2)
        try:
            self.unit = float(unit)
        except OverflowError:
            self.unit = math.inf

    def element(self, za: float) -> tuple[float, float]:
        """(K B, K u |z| + s_min) with B = u S (|z| + W) + S s_min / 2 (bounds.element_bound)."""
        return self.K * (self.us * (za + self.unit) + self.under), self.K * self.u * za + self.smin

    def accurate(self, za: float, kf: float) -> float:
        """K u (|z| + kappa) + s_min (bounds.accurate_bound) from kf, kappa's binary64 rounding or kappa itself
        (within 2**-53 of it, or 2**-1075 absolute): za + kf is within 2**-52 of |z| + kappa, the product by the
        powers of two K and u is exact while normal, the sum with s_min rounds once: within 2**-50 in the range
        ``_side`` reads (where a subnormal's absolute 2**-1075 is below 2**-75 of it)."""
        return self.K * self.u * (za + kf) + self.smin

    def gradient(self, ga: float, G: float) -> tuple[float, float]:
        """(K B_g, K u |g| + s_min) with B_g = u (S + 2)(|g| + G) + (S + 2) s_min / 2 (bounds.gradient_bound)."""
        return self.K * (self.ug * (ga + G) + self.under_g), self.K * self.u * ga + self.smin

    def reduced(self, za: float, V: float, W: float, n: int, D: float, under: float) -> tuple[float, float]:
        """(K B, K u |z| + s_min) for a sum or mean over n elements (bounds.reduction_bound): B = u (S (V + W) / D
        + L(n) V / D + (1 + L(n)) |z|) + under, from V = fsum of the elements' binary64 magnitude bounds (the exact
        sum's rounding: 2**-53), W and D rounded once, ``under`` the exact underflow term rounded once. Nine more
        roundings of nonnegative operands (S, L(n) and 1 + L(n) are small integers, u and K powers of two), each
        2**-53 relative; a sum of nonnegative terms keeps the largest relative error of its terms: within
        13 * 2**-53 < 2**-49 of the exact allowance in the range ``_side`` reads (an intermediate subnormal errs by
        2**-1075 absolute, below 2**-75 of a result of at least 2**-1000; an overflow gives inf, outside it)."""
        L = bounds.ceil_log2(n)
        return self.K * (self.u * (self.s * (V + W) / D + L * V / D + (1 + L) * za) + under), \
            self.K * self.u * za + self.smin


def _reduction_operands(mags: list, weights_abs_sum: Fraction, denominator_abs: Fraction, s: int, f):
    """``bounds.reduction_bound``'s operands for ``_Quick.reduced``: (V, W, n, |D|, the underflow term) with V the
    fsum of the n elements' binary64 magnitude bounds ``mags`` (the rounding of their exact sum), W and |D| (0 read
    as 1, as there) rounded to binary64 and the underflow term computed exactly and rounded once; None where one
    is not finite in binary64 (the Fractions decide). Summing the Fractions cost 30 ms a reduced call, measured."""
    n = len(mags)
    D = denominator_abs or Fraction(1)
    try:
        V, W, Df = math.fsum(mags), float(weights_abs_sum), float(D)
        under = float((n * s / D + bounds.ceil_log2(n) + 1) * Fraction(f.min_subnormal) / 2)
    except OverflowError:
        return None
    return (V, W, n, Df, under) if all(map(math.isfinite, (V, W, Df))) and Df > 0 else None


class Allowances:
    """The stable allowance K * B and the accurate one K u (|z| + kappa) + s_min of one compared number, exact
    (docs/NUMERICS.md), each computed when first asked: a correctly rounded number needs neither, and the
    condition number (the costliest part: 200-bit mpmath where the vectorised bound does not take the call) only
    decides between accurate and stable for an error over ``accurate_floor``, the accurate allowance at kappa = 0
    (kappa >= 0, so the allowance is never smaller: an error within the floor is within it). ``magnitude()``:
    an upper bound of |z|; ``bound(|z| bound)``: B; ``kappa()``: an upper bound of kappa.

    ``estimate()``, where given: (the stable allowance, the accurate floor) in binary64, each within 2**-44 of the
    exact one (relative) wherever it lies in [2**-1000, 2**1000], or None. The verdict's comparisons
    (``exceeds_stable``, ``within_floor``) take the floats' answer where an error is more than 2**-40 away from
    the allowance (``_side``) and compute the exact Fractions only for the rest: the same answers, without
    rational arithmetic (60 to 160 us a number) for nearly all numbers."""

    def __init__(self, f, magnitude, bound, kappa, estimate=None, accurate_estimate=None):
        self._f, self._magnitude, self._bound, self._kappa = f, magnitude, bound, kappa
        self._estimate, self._accurate_estimate = estimate, accurate_estimate

    @classmethod
    def known(cls, stable: Fraction, accurate: Fraction) -> Allowances:
        """Allowances already computed (a cached measurement's)."""
        a = cls(None, None, None, None)
        a.__dict__.update(stable=stable, accurate=accurate, accurate_floor=accurate)
        return a

    @functools.cached_property
    def _estimated(self) -> tuple[float | None, float | None]:
        got = self._estimate() if self._estimate is not None else None
        return got if got is not None else (None, None)

    def exceeds_stable(self, err, e_f: float) -> bool:
        """Whether the error (a raw mpf, e_f its binary64 rounding) exceeds the stable allowance."""
        side = _side(e_f, self._estimated[0])
        return side > 0 if side else _fraction(err) > self.stable

    def within_floor(self, err, e_f: float) -> bool:
        """Whether the error is within the accurate floor (the accurate allowance at kappa = 0)."""
        side = _side(e_f, self._estimated[1])
        return side < 0 if side else _fraction(err) <= self.accurate_floor

    def within_accurate(self, err, e_f: float) -> bool:
        """Whether the error is within the accurate allowance, kappa included: ``accurate_estimate()`` (``_Quick
        .accurate``, or None) decides where the error is more than 2**-40 from it, the exact fraction elsewhere."""
        est = self._accurate_estimate() if self._accurate_estimate is not None else None
        side = _side(e_f, est)
        return side < 0 if side else _fraction(err) <= self.accurate

    @functools.cached_property
    def magnitude(self) -> Fraction:
        return self._magnitude()

    @functools.cached_property
    def stable(self) -> Fraction:
        return bounds.K * self._bound(self.magnitude)

    @functools.cached_property
    def accurate_floor(self) -> Fraction:
        return bounds.accurate_bound(self._f, self.magnitude, Fraction(0))

    @functools.cached_property
    def accurate(self) -> Fraction:
        return bounds.accurate_bound(self._f, self.magnitude, self._kappa())


@dataclass
class Element:
    """One compared number: a loss value or one gradient component. Its stable and accurate allowances (absolute,
    exact) are computed when first read: a correctly rounded number's verdict needs neither, and its condition
    number and bounds cost more than the rest of its measurement (``measure``)."""

    kind: str  # "value" or "grad"
    index: tuple
    y: float
    exact: Exact = field(repr=False)
    z_rounded: float
    ulp_error: float
    bits: float
    verdict: str
    _allowances: Allowances | None = field(default=None, repr=False)
    decided: bool = True  # False: RN(z) lies beside a rounding boundary the oracle could not decide

    def allowances(self) -> tuple[Fraction, Fraction] | None:
        """(the stable allowance K * B, the accurate one), exactly; None for an element measured without."""
        a = self._allowances
        return None if a is None else (a.stable, a.accurate)

    @property
    def stable_bound(self) -> float:
        """The stable allowance in absolute terms (K * B), as a float (inf beyond the largest double)."""
        return math.nan if self._allowances is None else _float(self._allowances.stable)

    @property
    def accurate_bound(self) -> float:
        return math.nan if self._allowances is None else _float(self._allowances.accurate)

    @property
    def z(self) -> str:
        """The exact value, 36 significant digits (or inf / nan); computed when asked."""
        return str(self.exact)


@dataclass
class Measurement:
    subject: str
    loss: str
    fmt: str
    device: str
    params: dict
    elements: list = field(default_factory=list)
    unsupported: str | None = None
    skipped: str | None = None
    kwargs: dict | None = field(default=None, repr=False)  # the exact call, for the results' worst input

    @property
    def verdict(self) -> str:
        return worst(e.verdict for e in self.elements)

    @property
    def max_ulp(self) -> float:
        return max((e.ulp_error for e in self.elements), default=0.0)

    @property
    def max_bits(self) -> float:
        return max((e.bits for e in self.elements), default=0.0)

    @property
    def worst_element(self):
        if not self.elements:
            return None
        return min(self.elements, key=lambda e: (RANK[e.verdict], -e.ulp_error))

    def failures(self):
        return [e for e in self.elements if not passes(e.verdict)]

    def measured_z(self, e: Element) -> str:
        """Element e's exact value as its error was measured: the digits of the midpoint ``_verdict`` measured it
        from (the format's precision + 24 bits, ``_midpoint_digits``), as a cached measurement prints it
        (``CachedExact``), or inf / nan. Cheaper than ``e.z``'s 36 digits, which build a fast path's value as an
        expression and enclose it at 130 bits (6 to 10 ms a number: 13% of a torch battery cell's time when every
        results record printed them)."""
        if e.exact.is_special:
            return str(e.exact)
        f = get_format(self.fmt)
        bits = _measuring_bits(f)
        return _midpoint_digits(_midpoint(e.exact, bits, f), bits)


def _verdicts(ys: list, zs: list, f, allowances: list) -> list[tuple]:
    """``_verdict`` of every pair (ys[i], zs[i]) with allowances[i], the same answers, in bulk where it can: the
    roundings and the midpoints come from the fast paths' sources for all their numbers at once
    (``oracles.exact.decide_many``, ``enclose_many``), and a correctly rounded number's ULP error from binary64
    arithmetic (``_ulps_many``), without a Python step of mpmath per number; every other number (not correctly
    rounded, or one those cannot answer exactly) goes through ``_verdict``, given its midpoint when known."""
    decide_many(zs, f)
    need = [i for i, (y, z) in enumerate(zip(ys, zs)) if math.isfinite(y) and not z.is_special]
    mids = dict(zip(need, enclose_many([zs[i] for i in need], _measuring_bits(f))))
    known = {i: zs[i].known_rounding(f) for i in need}  # what decide_many certified (None: left to _verdict)
    cand = [i for i in need if mids[i] is not None and known[i] == ys[i]]
    quick = {}
    if cand:
        y_a = np.array([ys[i] for i in cand])
        h_a, l_a = (np.array(v) for v in zip(*(mids[i] for i in cand)))
        ulps, ok = _ulps_many(y_a, h_a, l_a, f)
        quick = {i: u for i, u, good in zip(cand, ulps.tolist(), ok.tolist()) if good}
    # the bits of error of the numbers _verdict measures whose rounding is known and finite, from their ordinals
    rest = [(i, r) for i, r in known.items() if i not in quick and r is not None and math.isfinite(r)]
    bits_of = {}
    if rest:
        oy, oky = ordinal_array([ys[i] for i, _ in rest], f)
        oz, okz = ordinal_array([r for _, r in rest], f)
        bits_of = {i: (0.0 if ys[i] == r else math.log2(1 + abs(a - b)))
                   for (i, r), a, b, good in zip(rest, oy.tolist(), oz.tolist(), (oky & okz).tolist()) if good}
    out = []
    for i, (y, z) in enumerate(zip(ys, zs)):
        u = quick.get(i)
        if u is not None:
            zr = known[i]  # == y, but +0.0 where y is -0.0 against an exact zero
            if y != 0 or mids[i] == (0.0, 0.0) or math.copysign(1, y) == math.copysign(1, zr):
                out.append(("correctly_rounded", u, 0.0, zr, True))  # y == RN(z) decided, the same zero sign
                continue
        hl = mids.get(i)
        mid = None if hl is None else libmp.mpf_add(libmp.from_float(hl[0]), libmp.from_float(hl[1]), 0)
        out.append(_verdict(y, z, f, allowances[i], mid, bits_of.get(i)))
    return out


def _ulps_many(y, hi, lo, f):
    """``_verdict``'s ULP error of y against mid = hi + lo (exactly), RU53(RN80(|y - mid|) 2**-k) with k the ULP
    exponent of mid in f (``_ulp_exp``), for arrays: (ulps, ok); where not ok binary64 cannot give it exactly and
    ``_verdict`` computes it.

    Derivation. Error-free two_sums give mid = nh + nl and x = y - mid = a + r1 + e3 exactly, a = RN(s2 + t),
    so |r1| <= half the spacing of binary64 at |a| (below |a| when x lies below it). With A = |a| in [2**E,
    2**(E+1)), h = 2**(E-80) (half the 80-bit spacing there; A's 80-bit significand ends in zeros, so a tie
    rounds to A) and R = |x| - A = sign(a)(r1 + e3), the fast path requires |e3| <= h (e3 = 0 in nearly every
    case: y - nh is exact once y is near mid) and A >= 2**-900, everything finite:
    R <= h gives RN80(|x|) in (prev53(A), A + h], so RU53 of it is A (R < 0: |R| <= spacing/2 + h keeps |x|
    more than an 80-bit spacing above prev53(A)); R > h gives RN80(|x|) in (A, next53(A)], and RU53 is
    next53(A). sign(a) r1 <= 0 gives R <= |e3| <= h; with e3 = 0, R = sign(a) r1 is compared with h exactly;
    with e3 != 0, sign(a) r1 >= 4h gives R > h, and in between binary64 does not decide. x = 0 gives 0. The
    exponent of mid is that of nh, less one where |nh| is a power of two and nl of the other sign; the shift
    by -k is exact while the result is normal."""
    with np.errstate(all="ignore"):
        nh, nl = two_sum(hi, lo)
        s1, e1 = two_sum(y, -nh)
        s2, e2 = two_sum(s1, -nl)
        t, e3 = two_sum(e2, e1)
        a, r1 = two_sum(s2, t)
        A = np.abs(a)
        m, e = np.frexp(A)
        E = e - 1
        h = np.ldexp(1.0, E - 80)
        r = np.where(a < 0, -r1, r1)
        above = np.where(e3 == 0, r > h, r >= 4 * h)
        clear = (e3 == 0) | (r <= 0) | (r >= 4 * h)
        v = np.where(above, np.nextafter(A, np.inf), A)
        mm, me = np.frexp(np.abs(nh))
        top = np.where((mm == 0.5) & (nl != 0) & (np.signbit(nl) != np.signbit(nh)), me - 2, me - 1)
        k = np.where(nh == 0, f.quantum_min, np.maximum(top, f.emin) - f.p + 1)
        ulps = np.ldexp(v, -k)
        big = 2.0**1000
        ok = (np.abs(y) <= big) & (np.abs(nh) <= big) & np.isfinite(nl) & np.isfinite(a) & np.isfinite(r1) \
            & np.isfinite(e3) & (A >= 2.0**-900) & (np.abs(e3) <= h) & clear & np.isfinite(ulps) & (ulps >= 2.0**-1022)
        zero = (a == 0) & (r1 == 0) & (e3 == 0) & np.isfinite(nh) & (np.abs(y) <= big) & (np.abs(nh) <= big)
        return np.where(zero, 0.0, ulps), ok | zero


def _verdict(y: float, z: Exact, fmt, allowances, mid=None, bits=None):
    """(verdict, ulp error, bits, RN(z), whether RN(z) is decided) of y against the exact z (undecided: RN(z) is
    one of the two values beside a rounding boundary that the oracle cannot decide). ``allowances``: the
    number's ``Allowances``, asked only what the verdict depends on (nothing for a correctly rounded y, a special
    z, a NaN or an infinity; the condition number only for an error within the stable allowance and over the
    accurate one at kappa = 0). ``mid``: z's midpoint for measuring (``_midpoint``), and ``bits``: the bits of
    error against RN(z), a finite value of z (``bits_of_error``), when the caller has them."""
    f = get_format(fmt)
    try:
        zr, decided = z.to(f), True
    except oracles.OraclePrecisionError:
        # z lies within 2**-cap (relative) of a rounding boundary of f: RN(z) is one of the two values beside it,
        # and which one the oracle cannot say. The error is measured from z's midpoint as always (it differs from
        # the error from z by far less than an ULP); y is never called correctly rounded
        zr, decided = oracles.formats.round_mpf(_midpoint(z, _measuring_bits(f), f), f), False
    if z.is_special:
        if math.isnan(zr):
            ok = math.isnan(y)
        else:
            ok = y == zr
        verdict = "correctly_rounded" if ok else "broken"
        return verdict, (0.0 if ok else math.inf), bits_of_error(y, zr, f), zr, decided
    if bits is None:
        bits = bits_of_error(y, zr, f)
    if math.isnan(y) or (math.isinf(y) and not math.isinf(zr)):
        return "broken", math.inf, bits, zr, decided
    if math.isinf(y):  # and zr is inf
        return ("correctly_rounded" if y == zr else "broken"), (0.0 if y == zr else math.inf), bits, zr, decided
    if mid is None:
        mid = _midpoint(z, _measuring_bits(f), f)  # already evaluated (Ziv's loop starts there)
    err = libmp.mpf_abs(libmp.mpf_sub(oracles.formats.to_mpf(y), mid, 80, "n"))
    ulp_exp = _ulp_exp(mid, f)
    try:
        ulps = libmp.to_float(libmp.mpf_shift(err, -ulp_exp), rnd="u")
    except OverflowError:  # pragma: no cover - to_float saturates; kept for safety
        ulps = math.inf
    same_zero_sign = zr != 0 or mid == libmp.fzero or math.copysign(1, y) == math.copysign(1, zr)
    if y == zr and same_zero_sign and decided:
        return "correctly_rounded", ulps, bits, zr, decided
    e_f = libmp.to_float(err, rnd="n")
    # the ladder is monotone (docs/NUMERICS.md, "Verdicts"): accurate requires stable. A large condition number
    # never lifts a result over the stable bound (3,521 equal float32 logits at 2**30: z = log 3521 = 8.17, and
    # u * kappa ~ 128 nats would call a result of 0 accurate)
    if allowances.exceeds_stable(err, e_f):
        return "unstable", ulps, bits, zr, decided
    if allowances.within_floor(err, e_f) or allowances.within_accurate(err, e_f):
        return "accurate", ulps, bits, zr, decided
    return "stable", ulps, bits, zr, decided


def _ulp_exp(mid, f):
    if not mid[1]:
        return f.quantum_min
    e = mid[2] + mid[3] - 1
    return max(e, f.emin) - f.p + 1


def vector_jacobian(results, n: int, upstream=None) -> list:
    """The exact gradient of sum_i upstream_i * output_i with respect to the n input elements, flattened
    (what autograd computes from ``backward(upstream)``; ones by default)."""
    acc = {}
    for i, o in enumerate(flat(results)):
        vi = None if upstream is None or upstream[i] == 1.0 else oracles.expr.const(to_mpf(upstream[i]))
        for k, g in o.grad_entries().items():
            v = g.special if g.is_special else g.node
            if vi is not None:
                v = X.mul(vi, v)
            acc.setdefault(k, []).append(v)
    zero = Exact(oracles.expr.ZERO)
    return [Exact(X.total(acc[k])) if k in acc else zero for k in range(n)]


def exact_gradient(name: str, kwargs: dict, result, n: int, upstream=None) -> list:
    """The exact gradient of sum(upstream * outputs) of oracle ``name`` (its ``result`` on ``kwargs``) with
    respect to the n input elements: the closed-form VJP where the oracle has one (softmax, log_softmax: O(C) per
    row, not O(C^2)), else ``vector_jacobian``; a certified fast path (``oracles.fast.attempt_gradient``) first,
    whose components build from the mpmath gradient only where they cannot certify what is asked of them."""
    memo: list = []

    def mpmath_gradient() -> list:
        if not memo:
            memo.append(_mpmath_gradient(name, kwargs, result, n, upstream))
        return memo[0]

    fast_gradient = attempt_gradient(name, kwargs, n, upstream, mpmath_gradient)
    return fast_gradient if fast_gradient is not None else mpmath_gradient()


def _mpmath_gradient(name: str, kwargs: dict, result, n: int, upstream=None) -> list:
    vjp = VJP.get(name)
    n_out = len(flat(result))
    if vjp is not None and n_out > 1:  # ones when no upstream is given (the gradient of the outputs' sum)
        return vjp(kwargs["input"], upstream if upstream is not None else [1.0] * n_out, kwargs.get("dim"))
    return vector_jacobian(result, n, upstream)


#: the code a cached oracle side depends on: the oracle, the bounds, the measurement and its verdicts
MEASURE_CODE = ("oracles", "lossproof.measure", "lossproof.conditioning", "lossproof.verdicts")


def _cache_key(name, kwargs, fmt, context, upstream, grads) -> str:
    return store.key_text(f"measure:{name}", {
        "kwargs": kwargs, "context": {k: (str(v) if isinstance(v, Fraction) else v) for k, v in context.items()},
        "upstream": upstream, "grads": grads}, fmt, MEASURE_CODE)


def _encode_side(m) -> list:
    out = []
    for e in m.elements:
        z = e.exact
        mid = None if z.is_special else _midpoint(z, _measuring_bits(get_format(m.fmt)), m.fmt)
        mid_s = "-" if mid is None else f"{mid[0]},{int(mid[1]):x},{mid[2]},{mid[3]}"
        out.append("|".join([e.kind, repr(z.special) if z.is_special else "-", float.hex(e.z_rounded)
                             if math.isfinite(e.z_rounded) else repr(e.z_rounded), mid_s,
                             *map(_frac_s, e.allowances())]))
    return out


def _frac_s(q: Fraction) -> str:
    return f"{q.numerator}/{q.denominator}"


def _decode_side(strings, rel_bits: int):
    """[(kind, CachedExact, stable allowance, accurate allowance)] from a cache entry, or None if malformed."""
    out = []
    try:
        for s in strings:
            kind, special, zr, mid, st, acc = s.split("|")
            sp = None if special == "-" else float(special)
            zr = float(zr) if zr in ("inf", "-inf", "nan") else float.fromhex(zr)
            if mid == "-":
                mv = None
            else:
                sg, man, ex, bc = mid.split(",")
                mv = (int(sg), libmp.MPZ(int(man, 16)), int(ex), int(bc))
            out.append((kind, CachedExact(sp, zr, mv, rel_bits), Fraction(st), Fraction(acc)))
    except (ValueError, TypeError):
        return None
    return out


def _count_mismatch(y_values, n_exact: int, subject, kwargs: dict, params: dict) -> str:
    """The message of a function that returned another number of values than the exact result holds, with the
    call that showed it (the input's shape and the parameters: a reduction the function ignores, or one it does not
    know and answers per row), so a user can tell which convention differs."""
    call = ", ".join([f"input shape {_shape(kwargs.get('input'))}"] + [f"{k}={v!r}" for k, v in params.items()])
    return f"{len(y_values)} values returned where the exact result has {n_exact} ({subject}, called with {call})"


def _measure_cached(subject, loss, f, device, kwargs, y_values, y_grads, side):
    params = {k: v for k, v in kwargs.items() if k not in ("input", "target", "other", "weight", "pos_weight")}
    m = Measurement(subject, loss, f.name, device, params, kwargs=kwargs)
    vals = [s for s in side if s[0] == "value"]
    grads = [s for s in side if s[0] == "grad"]
    if len(vals) != len(y_values) or (y_grads is not None and len(grads) != len(y_grads)):
        raise ValueError(_count_mismatch(y_values, len(vals), subject, kwargs, params))
    for kind, ys, zs in (("value", y_values, vals), ("grad", y_grads or [], grads)):
        for i, (y, (_, z, st, acc)) in enumerate(zip(ys, zs)):
            a = Allowances.known(st, acc)
            v, ulps, bits, _, _ = _verdict(float(y), z, f, a)
            m.elements.append(Element(kind, (i,), float(y), z, z.rounded, ulps, bits, v, a))
    return m


def measure(subject: str, loss: str, fmt: str, device: str, kwargs: dict, y_values, y_grads=None,
            oracle_name: str | None = None, context: dict | None = None, upstream=None,
            go_on=None, cache: bool = False) -> Measurement:
    """Compare a subject's flattened outputs (and its gradient of sum(upstream * outputs), flattened like
    ``input``; upstream defaults to ones) with the oracle ``oracle_name`` (default: ``loss``) on the same exact
    inputs. ``go_on(measurement of the values)``, when given, decides whether the gradient is measured too.

    ``cache``: take the oracle side (each number's rounding, the midpoint its error is measured from, and the
    stable and accurate allowances) from the disk cache (lossproof/cache.py) when it holds this exact call, else
    compute it and store it: the verdicts are the same, computed by the same code (the regression corpus is not
    recomputed every run). Not with ``go_on`` (what is measured would depend on the subject)."""
    f = get_format(fmt)
    if cache and go_on is None:
        ctx = {**structure(loss, kwargs), **(context or {})}
        key = _cache_key(oracle_name or loss, kwargs, f.name, ctx, upstream, y_grads is not None)
        hit = store.read_strings(key)
        side = _decode_side(hit, _measuring_bits(f)) if hit is not None else None
        if side is not None:
            return _measure_cached(subject, loss, f, device, kwargs, y_values, y_grads, side)
        m = measure(subject, loss, fmt, device, kwargs, y_values, y_grads, oracle_name, context, upstream)
        if all(e.decided for e in m.elements):  # an undecided rounding is never cached as if it were decided
            store.write_strings(key, _encode_side(m))
        return m
    context = {**structure(loss, kwargs), **(context or {})}
    params = {k: v for k, v in kwargs.items() if k not in ("input", "target", "other", "weight", "pos_weight")}
    m = Measurement(subject, loss, f.name, device, params, kwargs=kwargs)
    result = oracles.REGISTRY[oracle_name or loss](**kwargs)
    outs = flat(result)
    if len(outs) != len(y_values):
        raise ValueError(_count_mismatch(y_values, len(outs), subject, kwargs, params))
    s = bounds.steps(loss, context.get("n_classes", 1), context.get("label_smoothing", 0.0),
                     context.get("prob_targets", False))
    rb = _measuring_bits(f)  # magnitudes at the precision Ziv's loop starts at: evaluated once, shared
    reduced = kwargs.get("reduction", "none") != "none" and loss in catalogue.REDUCING
    unit = context.get("value_unit", Fraction(1))

    # what the allowances need is computed once, and only when a verdict (or a reader) asks for an allowance: a
    # correctly rounded number needs none (``Allowances``), and for most calls every value and most gradient
    # components are correctly rounded
    @functools.cache
    def unreduced() -> list:
        return flat(oracles.REGISTRY[oracle_name or loss](**{**kwargs, "reduction": "none"}))

    @functools.cache
    def reduction():
        """(sum of the unreduced values' magnitudes, of |weights|, the elements reduced, the denominator |D|)"""
        per = unreduced()
        return (sum((_upper(e, rb) for e in per), Fraction(0)), Fraction(context.get("weights_abs_sum", len(per))),
                len(per), Fraction(context.get("denominator_abs", 1)))

    @functools.cache
    def reduction_floats():
        """``_reduction_operands`` of the unreduced values' binary64 magnitude bounds (the very numbers ``_upper``
        takes as they are; 0 for a special value, as there), or None where one has none."""
        per = unreduced()
        mags = [0.0 if e.is_special else e.magnitude_bound() for e in per]
        if None in mags:
            return None
        return _reduction_operands(mags, Fraction(context.get("weights_abs_sum", len(per))),
                                   Fraction(context.get("denominator_abs", 1)), s, f)

    def value_bound(za):
        return bounds.reduction_bound(f, s, za, *reduction()) if reduced else bounds.element_bound(f, s, za, unit)

    quick = _Quick(f, s, unit)

    def value_estimate(z):
        za = z.magnitude_bound()
        if za is None:
            return None
        if not reduced:
            return quick.element(za)
        ops = reduction_floats()
        return None if ops is None else quick.reduced(za, *ops)

    def value_accurate_estimate(z):
        """The accurate allowance from the source's bounds of |z| and kappa, which ``_upper`` and ``_kappa_upper``
        take as they are (so the estimate's operands are the exact allowance's)."""
        za, kf = z.magnitude_bound(), z.kappa_bound()
        return None if za is None or kf is None else quick.accurate(za, kf)

    ys = [float(y) for y in y_values]
    al = [Allowances(f, functools.partial(_upper, z, rb), value_bound, functools.partial(_kappa_upper, z, rb),
                     functools.partial(value_estimate, z), functools.partial(value_accurate_estimate, z))
          for z in outs]
    for i, (y, z, a, (v, ulps, bits, zr, decided)) in enumerate(zip(ys, outs, al, _verdicts(ys, outs, f, al))):
        m.elements.append(Element("value", (i,), y, z, zr, ulps, bits, v, a, decided=decided))
    if y_grads is not None and (go_on is None or go_on(m)):
        gz = exact_gradient(oracle_name or loss, kwargs, result, len(y_grads), upstream)
        if len(gz) != len(y_grads):
            raise ValueError(f"{len(y_grads)} gradient components returned where the input has {len(gz)} ({subject})")

        @functools.cache
        def known():
            """Each component's binary64 magnitude bound from its source, or None (asked once, for both uses)."""
            return [g.magnitude_bound() for g in gz]

        @functools.cache
        def magnitudes():
            """(each component's magnitude, the normwise scale G): ``_upper``'s, which takes a source's bound as it
            is (``known``) and bounds the balls of the rest"""
            gabs = [_upper(g, rb) if v is None else Fraction(v) for g, v in zip(gz, known())]
            # the normwise scale: the largest component, and at least the loss's natural unit (a change of one
            # nat per unit of input, times the largest weight, over the mean's denominator): an absolute error of
            # u in that unit cannot change a training run, as for the values' "+ 1" floor
            return gabs, max(max(gabs, default=Fraction(0)), context.get("grad_unit", Fraction(1)))

        kappas = functools.cache(lambda: grad_kappa(loss, kwargs, upstream))  # each component's own kappa_g

        def grad_bound(g_abs):
            return bounds.gradient_bound(f, s, g_abs, magnitudes()[1])

        @functools.cache
        def float_magnitudes():
            """(each component's magnitude bound in binary64 where its source gives one, else None; G in binary64,
            within 2**-53 of the exact G): G is the exact magnitudes' largest (or the unit) where a source gives
            no bound (``_upper`` takes the fast bound as it is, so otherwise they are the same numbers)."""
            gf = known()
            try:
                unit_g = float(context.get("grad_unit", Fraction(1)))
                G = max(max((v for v in gf if v is not None), default=0.0), unit_g) if None not in gf \
                    else float(magnitudes()[1])
            except OverflowError:
                G = math.inf
            return gf, G

        def grad_estimate(j):
            gf, G = float_magnitudes()
            return None if gf[j] is None else quick.gradient(gf[j], G)

        def grad_accurate_estimate(j):
            """From the component's magnitude bound (the exact allowance's own, ``magnitudes``) and its kappa_g
            rounded to binary64 (None where it is not finite there)."""
            za = known()[j]
            k = kappas()[j]
            try:
                kf = float(k)
            except OverflowError:
                return None
            return None if za is None or not math.isfinite(kf) else quick.accurate(za, kf)

        gs = [float(y) for y in y_grads]
        al = [Allowances(f, lambda j=j: magnitudes()[0][j], grad_bound, lambda j=j: _mpf_fraction(kappas()[j]),
                         functools.partial(grad_estimate, j), functools.partial(grad_accurate_estimate, j))
              for j in range(len(gz))]
        for j, (y, z, a, (v, ulps, bits, zr, decided)) in enumerate(zip(gs, gz, al, _verdicts(gs, gz, f, al))):
            m.elements.append(Element("grad", (j,), y, z, zr, ulps, bits, v, a, decided=decided))
    return m


def _shape(obj):
    shape = []
    while isinstance(obj, (list, tuple)):
        shape.append(len(obj))
        obj = obj[0] if obj else None
    return tuple(shape)


def _grad_unit(out: dict, wmax: Fraction) -> dict:
    D = out.get("denominator_abs") or Fraction(1)
    out["grad_unit"] = wmax / D if D else wmax
    out["value_unit"] = wmax  # an unreduced element's unit: one nat times the largest weight
    return out


def _fr(x) -> Fraction:
    return Fraction(x) if isinstance(x, (int, float)) and math.isfinite(x) else Fraction(0)


def structure(loss: str, kwargs: dict) -> dict:
    """What the bound needs to know of a call: classes C, smoothing, probability targets, the sum of |weights|
    over the reduced elements and the reduction's denominator |D| (both exact, from the inputs)."""
    x = kwargs.get("input")
    shape = _shape(x)
    red = kwargs.get("reduction", "mean")
    out = {"n_classes": 1, "label_smoothing": float(kwargs.get("label_smoothing", 0.0) or 0.0),
           "prob_targets": False}
    family = catalogue.get(loss).family
    if family in ("row", "elementwise", "pairwise"):
        dim = kwargs.get("dim")
        if dim is None:
            dim = (-1 if loss == "logsumexp" else softmax_dim(len(shape)))
        if shape:
            out["n_classes"] = shape[dim] if isinstance(dim, int) else math.prod(shape)
        return out
    if family == "class":
        cd = 0 if len(shape) == 1 else 1
        C = shape[cd] if shape else 1
        out["n_classes"] = C
        t = kwargs.get("target")
        w = kwargs.get("weight")
        wc = (lambda c: abs(_fr(w[c]))) if w is not None else (lambda c: Fraction(1))
        if _shape(t) == shape:  # probability targets
            out["prob_targets"] = True
            rows = math.prod(shape) // C if C else 0
            out["weights_abs_sum"] = rows * max((wc(c) for c in range(C)), default=Fraction(1))
            out["denominator_abs"] = Fraction(rows) if red == "mean" else Fraction(1)
            return _grad_unit(out, max((wc(c) for c in range(C)), default=Fraction(1)))
        ts = flat(t) if isinstance(t, list) else [t]
        ign = kwargs.get("ignore_index", -100)
        kept = [c for c in ts if c != ign]
        out["weights_abs_sum"] = sum((wc(c) for c in kept), Fraction(0))
        if red == "mean":
            if w is None:
                out["denominator_abs"] = Fraction(len(kept))
            else:
                out["denominator_abs"] = abs(sum((_fr(w[c]) for c in kept), Fraction(0)))
        return _grad_unit(out, max((wc(c) for c in range(C)), default=Fraction(1)))
    n = math.prod(shape) if shape else 1
    w = kwargs.get("weight")
    out["weights_abs_sum"] = (sum((abs(_fr(v)) for v in flat(w)), Fraction(0)) * Fraction(n, max(len(flat(w)), 1))
                              if w is not None else Fraction(n))
    if red == "mean":
        out["denominator_abs"] = Fraction(n)
    elif red == "batchmean":
        out["denominator_abs"] = Fraction(shape[0] if shape else 1)
    wmax = max((abs(_fr(v)) for v in flat(w)), default=Fraction(1)) if w is not None else Fraction(1)
    pw = kwargs.get("pos_weight")
    if pw is not None:
        wmax *= max(Fraction(1), max((abs(_fr(v)) for v in flat(pw)), default=Fraction(1)))
    if loss == "kl_div":  # d/dx = -t (or -e^t): the target's scale
        t = kwargs.get("target")
        ts = [abs(_fr(v)) for v in flat(t)] if isinstance(t, list) else [Fraction(1)]
        wmax = max(ts, default=Fraction(1)) if not kwargs.get("log_target") else Fraction(1)
    return _grad_unit(out, wmax)

