"""Certified, vectorised ground truth for the univariate functions: sigmoid, logsigmoid, softplus and torch's
documented softplus variant, values and derivatives, correctly rounded into float32, float16 or bfloat16 for a
whole array of inputs at once (the exhaustive sweeps, lossproof/sweep.py, round 2**16 to 2**32 of them).

Three stages, each deciding what the one before could not (the same enclosure argument as oracles/fast.py):

1. NumPy binary64: an approximation a and an absolute bound B with |a - z| <= B, derived below. Where both ends of
   [a - B, a + B] round to the same value of the target format (``certify``, fast.certify's rule: same sign of
   zero, overflow included), that value is RN(z), by the monotonicity of rounding.
2. The same formulas in the platform's extended precision (x86's 80-bit long double: NumPy's ``longdouble`` with a
   64-bit significand; glibc documents expl and log1pl within 1 and 2 ulps of it), on the inputs stage 1 left
   undecided: a bound about 2**-51 relative instead of 2**-37. Used only where ``np.finfo(np.longdouble)``
   has at least 64 significand bits; elsewhere stage 3 takes all of stage 1's undecided inputs.
3. The exact oracle (``oracles.REGISTRY``, mpmath, Ziv's loop) for what is still undecided, and for the infinite
   inputs (their limits, NUMERICS "Semantics of special values"). A NaN input gives NaN (no limit exists), as the
   exact oracle does, without asking it (float32 has 2**24 NaN encodings).

The stage-1 bound leaves a value undecided when it lies within about 2**-37 (relative) of a rounding boundary of
the target format: about one input in 2**12 for float32 (one in 2**25 for float16 and bfloat16); stage 2 shrinks
that to about one in 2**26 for float32. ``Counts`` reports how many each stage decided.

Error analysis (RN = round to nearest even; u the unit roundoff of the working format: 2**-53 in binary64,
2**-64 in long double)
-----------------------------------------------------------------------------------------------------------
Assumptions: A1, A2 and A3 of oracles/fast.py for binary64 (exp~ and log1p~ within ETA = 2**-40 relative plus
TAU_LIBM = 2**-1062 absolute; IEEE arithmetic with gradual underflow, checked at run time by ``fast.available``),
and exp~(a) >= 0 (C99 7.12.6.1: exp's range is nonnegative). For long double the same with ETA_L = 2**-56 (256
times glibc's documented 2 ulps of 2**-64) and the same absolute TAU_LIBM (long double's own subnormals are
below 2**-16000). Both are sampled against mpmath in tests/meta/test_univariate_oracle.py.

Inputs x are finite values of the target format, exact in the working format; a = |x| (exact), t = e^-a in
(0, 1]. Write d for any relative error of one operation (|d| <= u) and use that ETA >= 2**12 u in both formats.

1. t~ = exp~(-a): |t~ - t| <= ETA t + TAU_LIBM, t~ >= 0.
2. D~ = fl(1 + t~) = (1 + t)(1 + delta) with |delta| <= ETA + 2u =: dD (|t~ - t| <= (ETA + TAU_LIBM)(1 + t);
   the addition's rounding adds u (1 + ETA); TAU_LIBM < 2**-1000 u).
3. sigma(a) = 1 / (1 + t) >= 1/2: s~ = fl(1 / D~); |s~ - sigma(a)| <= sigma(a) (dD / (1 - dD) + u (1 + dD / (1 - dD)))
   <= (ETA + 4u) sigma(a). No underflow.
4. sigma(-a) = t / (1 + t): s~ = fl(t~ / D~) = (t (1 + alpha) + tau) / ((1 + t)(1 + delta)) (1 + d) + e with
   |alpha| <= ETA, |tau| <= TAU_LIBM, |e| <= 2**-1075 (underflow of the quotient); so
   |s~ - sigma(-a)| <= ((1 + ETA)(1 + u) / (1 - dD) - 1) sigma(-a) + TAU_LIBM (1 + u) + 2**-1075
   <= (2 ETA + 4u) sigma(-a) + 2**-1061.
5. sigma'(x) = t / (1 + t)**2 (even in x): g~ = fl(t~ / fl(D~ D~)); the denominator is (1 + t)**2 within
   2 dD + dD**2 + u (1 + dD)**2 <= 2 ETA + 6u relative, so |g~ - g| <= (3 ETA + 9u) g + 2**-1061.
6. L = log1p(t): |log1p(t~) - L| <= |t~ - t| / (1 + min(t, t~)) <= ETA t + TAU_LIBM (mean value theorem;
   min >= -TAU_LIBM), and t <= 2 log1p(t) on [0, 1] (log1p(t) >= t / (1 + t)), so that is <= 2 ETA L + TAU_LIBM;
   A2 adds ETA log1p(t~) + TAU_LIBM: |L~ - L| <= 3.01 ETA L + 3 TAU_LIBM.
7. softplus(x) = m + L with m = max(x, 0) (exact), both terms >= 0 (no cancellation): y~ = fl(m + L~),
   |y~ - y| <= u (y + |L~ - L|) + |L~ - L| <= (3.01 ETA + 2u) y + 4 TAU_LIBM, as L <= y.
8. logsigmoid(x) = -softplus(-x) (exact negation): the bound of 7. Derivatives: softplus' = sigma(x),
   logsigmoid' = sigma(-x): 3 and 4. torch's softplus variant (oracles/torch_variants.py): x and 1 where x > 20
   (exact: bound 0), else softplus.
9. Every case above reads |w~ - w| <= r w + A with r <= 3.01 ETA + 9u and A <= 4 TAU_LIBM; with r < 1/2,
   w <= (|w~| + A) / (1 - r), so |w~ - w| <= 2r |w~| + 2A. Binary64: 2r <= 2**-37, 2A <= 2**-1059.
   Long double: 2r <= 2**-53; rounding w~ to binary64 adds 2**-53 |w~| (1 + 2**-52) + 2**-1075, so the
   binary64 approximation has 2r <= 2**-51 (a margin of 2**-53 left). The bound REL |a| + ABS is computed
   in binary64 (a power-of-two scaling and one addition: relative error below 2**-52) and multiplied by
   INFLATE = 1 + 2**-20; ``fast.certify`` moves each end of the enclosure out by one binary64 ulp.
10. Signs known exactly (``fast.certify``'s ``sign``): sigmoid, its derivative, softplus and the derivatives are
   > 0 and logsigmoid < 0 for every finite x, so a value below the format's smallest subnormal rounds to the
   zero of its sign instead of being left undecided. No finite input has an exact value of 0 or a tie: except
   sigmoid(0) = 1/2 and sigma'(0) = 1/4 (format values, decided by stage 1), the values are transcendental
   (Lindemann-Weierstrass), never a midpoint of two format values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import REGISTRY, fast
from .codec import flat
from .formats import get_format

__all__ = ["FUNCTIONS", "KINDS", "Counts", "Certified", "certified", "approximate", "exact_rounded",
           "extended_available", "ETA_L", "REL64", "REL_L", "ABS"]

FUNCTIONS = ("sigmoid", "logsigmoid", "softplus", "torch:softplus")
KINDS = ("value", "grad")
ETA_L = 2.0**-56  # assumed relative error of long double expl / log1pl (A1, A2 for stage 2)
REL64 = 2.0**-37  # 9.: 2r of stage 1
REL_L = 2.0**-51  # 9.: 2r of stage 2, rounded to binary64
ABS = 2.0**-1058  # 9.: 2A, with a margin
INFLATE = 1.0 + 2.0**-20
TORCH_THRESHOLD = 20.0  # torch's softplus default threshold (oracles/torch_variants.py)


def extended_available() -> bool:
    """Stage 2 runs where long double has at least a 64-bit significand (x86's 80-bit format; quad elsewhere)."""
    return np.finfo(np.longdouble).nmant >= 63


def _sigma(x: Any, dt: Any) -> Any:
    """sigma(x) from t = exp(-|x|): 1 / (1 + t) for x >= 0, t / (1 + t) for x < 0 (steps 3 and 4)."""
    t = np.exp(-np.abs(x))
    d = dt(1) + t
    return np.where(x >= 0, dt(1) / d, t / d)


def _softplus(x: Any, dt: Any) -> Any:
    """max(x, 0) + log1p(exp(-|x|)) (step 7)."""
    return np.maximum(x, dt(0)) + np.log1p(np.exp(-np.abs(x)))


def _formula(name: str, kind: str, x: Any, dt: Any) -> Any:
    """The formulas of the docstring on finite ``x`` in the working type ``dt`` (float64 or longdouble)."""
    with np.errstate(all="ignore"):
        if name == "sigmoid":
            if kind == "value":
                return _sigma(x, dt)
            t = np.exp(-np.abs(x))
            d = dt(1) + t
            return t / (d * d)
        if name == "logsigmoid":
            return -_softplus(-x, dt) if kind == "value" else _sigma(-x, dt)
        if name in ("softplus", "torch:softplus"):
            v = _softplus(x, dt) if kind == "value" else _sigma(x, dt)
            if name == "torch:softplus":
                v = np.where(x > TORCH_THRESHOLD, x if kind == "value" else dt(1), v)
            return v
    raise ValueError(f"no vectorised oracle for {name!r}: expected one of {', '.join(FUNCTIONS)}")


def _exact_mask(name: str, kind: str, x: Any) -> Any:
    """Where the formula's result is exact (bound 0): torch's linear branch."""
    if name == "torch:softplus":
        return x > TORCH_THRESHOLD
    return np.zeros(x.shape, dtype=bool)


def _sign(name: str, kind: str) -> int:
    return -1 if (name == "logsigmoid" and kind == "value") else 1


def approximate(name: str, kind: str, x: Any, extended: bool = False) -> tuple[Any, Any]:
    """(a, B): binary64 approximations of f(x) (kind "value") or f'(x) ("grad") on finite binary64 ``x``, and
    absolute bounds with |a - z| <= B (docstring, 9.); from long double when ``extended``."""
    x = np.asarray(x, dtype=np.float64)
    if extended:
        a = _formula(name, kind, x.astype(np.longdouble), np.longdouble).astype(np.float64)
        rel = REL_L
    else:
        a = _formula(name, kind, x, np.float64)
        rel = REL64
    with np.errstate(all="ignore"):
        b = (rel * np.abs(a) + ABS) * INFLATE
    b = np.where(_exact_mask(name, kind, x), 0.0, b)
    return a, b


def _round(v: Any, fmt: str) -> Any:
    """RN into ``fmt`` of binary64 values: NumPy's float32 and float16 conversions (IEEE 754 convertFormat:
    round to nearest even, gradual underflow, overflow to inf beyond the midpoint above the largest finite
    value; checked against ``fast.round_array`` on ties, subnormal boundaries and the overflow threshold in
    tests/meta/test_univariate_oracle.py), 20 times faster than ``fast.round_array``, which bfloat16 takes."""
    if fmt in ("float32", "float16"):
        with np.errstate(all="ignore"):
            return v.astype(np.float32 if fmt == "float32" else np.float16).astype(np.float64)
    return fast.round_array(v, fmt)


def certify(approx: Any, bound: Any, fmt: str, sign: int) -> tuple[Any, Any]:
    """``fast.certify`` (its rule, line for line: the enclosure's ends moved out by one binary64 ulp, cut at the
    zero of the known sign, both rounding to the same value and sign of zero) with ``_round``'s rounding and a
    known sign (+1 or -1) for every element."""
    with np.errstate(all="ignore"):
        lo = np.nextafter(approx - bound, -np.inf)
        hi = np.nextafter(approx + bound, np.inf)
        if sign > 0:
            lo = np.where(lo <= 0, 0.0, lo)
        else:
            hi = np.where(hi >= 0, -0.0, hi)
        rlo, rhi = _round(lo, fmt), _round(hi, fmt)
        ok = np.isfinite(lo) & np.isfinite(hi) & (rlo == rhi) & (np.signbit(rlo) == np.signbit(rhi))
        exact = (bound == 0) & np.isfinite(approx)
        values = np.where(exact, np.where(approx == 0, 0.0, _round(approx, fmt)), rlo)
    return values, ok | exact


@dataclass
class Counts:
    """How many roundings each stage decided: binary64, extended precision, the exact (mpmath) oracle, and the
    NaN inputs (NaN without evaluation)."""

    float64: int = 0
    extended: int = 0
    exact: int = 0
    nan: int = 0

    def add(self, other: Counts) -> None:
        self.float64 += other.float64
        self.extended += other.extended
        self.exact += other.exact
        self.nan += other.nan

    @property
    def total(self) -> int:
        return self.float64 + self.extended + self.exact + self.nan

    def as_dict(self) -> dict:
        return {"float64": self.float64, "extended": self.extended, "exact": self.exact, "nan": self.nan}


@dataclass
class Certified:
    """RN(z) into the format for every input (``rounded``), with the binary64 approximation and bound of z where
    the fast stages decided it (``approx``, ``bound``; NaN and inf where the exact oracle did: ``exact`` marks
    those inputs, whose measurement needs the exact value)."""

    rounded: Any
    approx: Any
    bound: Any
    exact: Any  # bool mask: decided by the exact oracle (infinite inputs, undecided roundings)
    counts: Counts = field(default_factory=Counts)


def exact_rounded(name: str, kind: str, xs: Any, fmt: str) -> list[float]:
    """RN(z) into ``fmt`` from the exact oracle (mpmath), one input at a time (stage 3; the reference of the
    meta-tests). The derivative is the exact gradient of the one-element call."""
    out = []
    for x in xs:
        fn: Any = REGISTRY[name]
        res = fn(input=[float(x)])
        if kind == "value":
            out.append(flat(res)[0].to(fmt))
        else:
            out.append(_exact_derivative(res).to(fmt))
    return out


def _exact_derivative(res: Any) -> Any:
    """The exact derivative of the one-element call (the oracle's gradient entry of its one output)."""
    return flat(res)[0].grad_entries()[0]


def certified(name: str, kind: str, x: Any, fmt: str, *, extended: bool | None = None, exact: bool = True) -> Certified:
    """RN(f(x)) or RN(f'(x)) into ``fmt`` for every binary64 ``x`` (values of ``fmt``), by the three stages of the
    module docstring. ``extended``: use stage 2 (default: where available). ``exact=False`` leaves the roundings
    stages 1 and 2 cannot decide as NaN with ``exact`` set (the sweep measures them with the exact oracle
    itself). Raises RuntimeError where binary64 arithmetic is not IEEE round-to-nearest with subnormals (A3)."""
    if name not in FUNCTIONS or kind not in KINDS:
        raise ValueError(f"no vectorised oracle for {name!r} {kind!r}: expected one of {', '.join(FUNCTIONS)}")
    f = get_format(fmt)
    if f.name == "float64":
        raise ValueError("the univariate oracle certifies float32, float16 and bfloat16 roundings, not float64")
    if not fast.available():
        raise RuntimeError("binary64 arithmetic here flushes subnormals or does not round to nearest: the "
                           "certified fast oracle cannot run (oracles/fast.py, A3)")
    if extended is None:
        extended = extended_available()
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    n = x.size
    rounded = np.full(n, np.nan)
    approx = np.full(n, np.nan)
    bound = np.full(n, np.inf)
    counts = Counts()
    nan_in = np.isnan(x)
    counts.nan = int(nan_in.sum())
    finite = np.isfinite(x)
    sign = _sign(name, kind)
    a, b = approximate(name, kind, x[finite])
    v, ok = certify(a, b, f.name, sign)
    idx = np.flatnonzero(finite)
    rounded[idx[ok]], approx[idx], bound[idx] = v[ok], a, b
    counts.float64 = int(ok.sum())
    todo = idx[~ok]
    if extended and todo.size:
        a2, b2 = approximate(name, kind, x[todo], extended=True)
        v2, ok2 = certify(a2, b2, f.name, sign)
        rounded[todo[ok2]] = v2[ok2]
        approx[todo], bound[todo] = a2, b2
        counts.extended = int(ok2.sum())
        todo = todo[~ok2]
    infinite = np.flatnonzero(np.isinf(x))
    rest = np.concatenate([todo, infinite])
    mask = np.zeros(n, dtype=bool)
    mask[rest] = True
    if exact and rest.size:
        rounded[rest] = exact_rounded(name, kind, x[rest], f.name)
    counts.exact = int(rest.size)
    return Certified(rounded, approx, bound, mask, counts)


def fallback_rate(c: Counts) -> float:
    """The share of inputs the exact oracle decided (NaN inputs excluded)."""
    n = c.total - c.nan
    return c.exact / n if n else math.nan
