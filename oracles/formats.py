"""Binary floating-point formats, correct rounding into them, and the error measures of NUMERICS.md.

Everything here works on *exact* binary values: mpmath's raw ``mpf`` tuples ``(sign, man, exp, bc)``
(value ``(-1)**sign * man * 2**exp``), Python floats (exact binary64 values) and ints. No float arithmetic
touches a value on its way to the answer: rounding is integer arithmetic on the significand, so there is no
double rounding (``float(mpf)`` in mpmath <= 1.4 double-rounds subnormals and has no -0 or overflow).

Special values travel as Python floats: ``inf``, ``-inf``, ``nan`` and ``-0.0``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from mpmath import libmp

__all__ = [
    "Format",
    "FORMATS",
    "get_format",
    "to_mpf",
    "round_mpf",
    "round_to_format",
    "is_representable",
    "ulp",
    "ordinal",
    "from_ordinal",
    "next_up",
    "next_down",
    "ulp_error",
    "bits_of_error",
    "format_ulps",
]


@dataclass(frozen=True)
class Format:
    """An IEEE-754-style binary format: ``p`` significand bits (hidden bit included), exponents
    ``emin..emax`` for normal numbers, gradual underflow, +-inf and NaN. Its derived constants are computed once
    (``functools.cached_property``: the oracle and the measurement ask for them per number)."""

    name: str
    p: int
    emin: int
    emax: int
    width: int  # storage width in bits: the "full width" of a wrong NaN/inf in bits of error

    @functools.cached_property
    def u(self) -> Fraction:
        """Unit roundoff 2**-p."""
        return Fraction(1, 2**self.p)

    @functools.cached_property
    def max_finite(self) -> float:
        return math.ldexp(2**self.p - 1, self.emax - self.p + 1)

    @functools.cached_property
    def min_normal(self) -> float:
        return math.ldexp(1, self.emin)

    @functools.cached_property
    def min_subnormal(self) -> float:
        return math.ldexp(1, self.emin - self.p + 1)

    @functools.cached_property
    def quantum_min(self) -> int:
        """Exponent of the smallest subnormal: every value of the format is a multiple of 2**quantum_min."""
        return self.emin - self.p + 1

    @functools.cached_property
    def max_ordinal(self) -> int:
        """Ordinal of the largest finite value (``ordinal(max_finite)``)."""
        return (self.emax - self.emin + 1) * 2 ** (self.p - 1) + 2 ** (self.p - 1) - 1

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.name


FORMATS: dict[str, Format] = {
    "float64": Format("float64", 53, -1022, 1023, 64),
    "float32": Format("float32", 24, -126, 127, 32),
    "float16": Format("float16", 11, -14, 15, 16),
    "bfloat16": Format("bfloat16", 8, -126, 127, 16),
}


def get_format(fmt: "str | Format") -> Format:
    """The Format named ``fmt`` (one of float64, float32, float16, bfloat16); a Format passes through."""
    if isinstance(fmt, Format):
        return fmt
    try:
        return FORMATS[fmt]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}"
        ) from None


# --------------------------------------------------------------------------------------------------
# exact conversions


class HasMpf(Protocol):
    """An mpmath ``mpf`` (mpmath has no type hints): anything holding a raw mpf tuple in ``_mpf_``."""

    @property
    def _mpf_(self) -> tuple: ...


#: an exact binary value as ``to_mpf`` reads it: a Python float or int, a Fraction (with a power-of-two
#: denominator, else ValueError), an mpmath mpf or a raw mpf tuple ``(sign, man, exp, bc)``
Dyadic = float | int | Fraction | tuple | HasMpf


def to_mpf(x: Dyadic) -> tuple:
    """Exact raw mpf of a finite binary value: a Python float, int, Fraction with a power-of-two
    denominator, an mpmath mpf or a raw tuple. Raises ValueError for non-finite or non-dyadic values."""
    if isinstance(x, tuple):
        return x
    if hasattr(x, "_mpf_"):
        v = x._mpf_
        if v in (libmp.finf, libmp.fninf, libmp.fnan):
            raise ValueError(f"not a finite value: {x}")
        return v
    if isinstance(x, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(x, int):
        return libmp.from_int(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"not a finite value: {x}")
        if x == 0:
            return libmp.fnzero if math.copysign(1.0, x) < 0 else libmp.fzero
        m, e = math.frexp(x)
        # m * 2**53 is an exact integer for every binary64 value (subnormals included)
        return libmp.from_man_exp(int(m * 2**53), e - 53)
    if isinstance(x, Fraction):
        d = x.denominator
        if d & (d - 1):
            raise ValueError(f"{x} is not a binary (dyadic) value")
        return libmp.from_man_exp(x.numerator, -(d.bit_length() - 1))
    raise TypeError(f"cannot take {type(x).__name__} as an exact binary value")


def _mpf_to_fraction(v: tuple) -> Fraction:
    sign, man, exp, _ = v
    if not man:
        return Fraction(0)
    man = -int(man) if sign else int(man)
    return Fraction(man * 2**exp) if exp >= 0 else Fraction(man, 2**-exp)


# --------------------------------------------------------------------------------------------------
# rounding


def round_mpf(v: tuple, fmt: "str | Format") -> float:
    """RN(v): the value of format ``fmt`` nearest to the exact finite binary value ``v`` (a raw mpf),
    ties to even, with gradual underflow, -0.0 for a negative value that rounds to zero, and +-inf at
    and beyond the midpoint above the largest finite value. Returned as a Python float, which holds
    every value of every supported format exactly."""
    f = get_format(fmt)
    sign, man, exp, bc = v
    if not man:
        if exp or bc:  # inf / nan raw tuples have man == 0 and a nonzero exp
            return libmp.to_float(v)
        return -0.0 if sign else 0.0
    man = int(man)
    e = exp + man.bit_length() - 1  # floor(log2 |v|)
    # far outside the format (exponents such as e**(-1e10) carry): decide without building huge integers
    if e <= f.quantum_min - 2:  # |v| < 2**(qmin - 1), less than half the smallest subnormal
        return -0.0 if sign else 0.0
    if e > f.emax:  # |v| >= 2**(emax + 1), beyond the overflow midpoint
        return -math.inf if sign else math.inf
    q = max(e, f.emin) - f.p + 1  # exponent of the ulp at |v|
    if exp < q:
        shift = q - exp
        kept = man >> shift
        rem = man - (kept << shift)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and kept & 1):
            kept += 1
        man, exp = kept, q
    # now |value| = man * 2**exp exactly, man < 2**(p+1) after a carry
    if man == 0:
        return -0.0 if sign else 0.0
    if man.bit_length() + exp - 1 > f.emax:
        return -math.inf if sign else math.inf
    r = math.ldexp(man, exp)
    return -r if sign else r


def round_to_format(x: Dyadic, fmt: "str | Format") -> float:
    """RN(x) for a Python float/int/Fraction/mpf ``x`` (non-finite values pass through)."""
    if isinstance(x, float) and not math.isfinite(x):
        return x
    if hasattr(x, "_mpf_") and x._mpf_ in (libmp.finf, libmp.fninf, libmp.fnan):
        return libmp.to_float(x._mpf_)
    if isinstance(x, Fraction) and (x.denominator & (x.denominator - 1)):
        return _round_fraction(x, get_format(fmt))
    return round_mpf(to_mpf(x), fmt)


def _round_fraction(x: Fraction, f: Format) -> float:
    """RN of an arbitrary rational (used by tests as an independent path)."""
    if x == 0:
        return 0.0
    sign = x < 0
    a = -x if sign else x
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    q = max(e, f.emin) - f.p + 1
    scaled = a / Fraction(2) ** q
    kept = scaled.numerator // scaled.denominator
    rem = scaled - kept
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and kept & 1):
        kept += 1
    if kept == 0:
        return -0.0 if sign else 0.0
    if kept.bit_length() + q - 1 > f.emax:
        return -math.inf if sign else math.inf
    r = math.ldexp(kept, q)
    return -r if sign else r


def is_representable(x: float, fmt: "str | Format") -> bool:
    """Whether the Python float ``x`` is exactly a value of ``fmt`` (inf and nan are)."""
    if not math.isfinite(x):
        return True
    r = round_mpf(to_mpf(x), fmt)
    return r == x and math.copysign(1, r) == math.copysign(1, x)


# --------------------------------------------------------------------------------------------------
# measures


def _ulp_exponent(z: Dyadic, f: Format) -> int:
    """k such that ulp(z) = 2**k, for an exact finite z."""
    if isinstance(z, Fraction):
        if z == 0:
            return f.quantum_min
        a = abs(z)
        e = a.numerator.bit_length() - a.denominator.bit_length()
        if Fraction(2) ** e > a:
            e -= 1
    else:
        v = to_mpf(z)
        if not v[1]:
            return f.quantum_min
        e = v[2] + int(v[1]).bit_length() - 1
    return max(e, f.emin) - f.p + 1


def ulp(z: Dyadic, fmt: "str | Format") -> float | Fraction:
    """ulp(z) = 2**(max(floor(log2|z|), emin) - p + 1) (NUMERICS.md); ulp(0) is the smallest subnormal.
    ``z`` is any exact finite value (float, int, Fraction, mpf, raw mpf); the result is exact: a float, or a
    Fraction when it lies beyond binary64's range (an exact value far past the format's largest finite)."""
    k = _ulp_exponent(z, get_format(fmt))
    return math.ldexp(1.0, k) if k <= 1023 else Fraction(2) ** k


def ordinal(y: float, fmt: "str | Format") -> int:
    """Position of ``y`` (a value of ``fmt``) in the ordered list of the format's values: ord(+-0) = 0,
    ord(smallest subnormal) = 1, ..., ord(max_finite) = max_ordinal, ord(+inf) = max_ordinal + 1, and
    ord(-y) = -ord(y). Raises ValueError for NaN or a value not in the format."""
    f = get_format(fmt)
    if math.isnan(y):
        raise ValueError("NaN has no ordinal")
    if math.isinf(y):
        return (f.max_ordinal + 1) * (1 if y > 0 else -1)
    if y == 0:
        return 0
    if not is_representable(y, f):
        raise ValueError(f"{y!r} is not a {f.name} value")
    a = abs(y)
    m, e = math.frexp(a)  # a = m * 2**e, 0.5 <= m < 1
    e -= 1  # a = (2m) * 2**e
    if e < f.emin:  # subnormal: a multiple of the smallest subnormal
        n = int(a / f.min_subnormal)
    else:
        sig = int(math.ldexp(m, f.p))  # 2**(p-1) <= sig < 2**p
        n = (e - f.emin + 1) * 2 ** (f.p - 1) + (sig - 2 ** (f.p - 1))
    return n if y > 0 else -n


def from_ordinal(n: int, fmt: "str | Format") -> float:
    """Inverse of ``ordinal`` (+0.0 for n = 0)."""
    f = get_format(fmt)
    a = abs(n)
    if a > f.max_ordinal + 1:
        raise ValueError(f"ordinal {n} is outside {f.name}")
    if a == f.max_ordinal + 1:
        r = math.inf
    else:
        half = 2 ** (f.p - 1)
        if a < half:
            r = math.ldexp(a, f.quantum_min)
        else:
            block, sig = divmod(a - half, half)
            r = math.ldexp(half + sig, f.emin + block - f.p + 1)
    return -r if n < 0 else r


def next_up(y: float, fmt: "str | Format") -> float:
    o = ordinal(y, fmt)
    if y == 0:
        o = 0
    return from_ordinal(o + 1, fmt)


def next_down(y: float, fmt: "str | Format") -> float:
    return -next_up(-y, fmt)


def ulp_error(y: float, z: Dyadic, fmt: "str | Format") -> float:
    """e = |y - z| / ulp(z) (Zimmermann et al.), as a float (an upper bound when not exact: rounded up).
    ``z`` is the exact value as a Fraction, a finite dyadic value, or one of inf/-inf/nan; a NaN or a
    wrong infinity on either side gives inf, a right one 0."""
    zf = z if isinstance(z, float) else None
    if zf is not None and not math.isfinite(zf):
        if math.isnan(zf):
            return 0.0 if math.isnan(y) else math.inf
        return 0.0 if y == zf else math.inf
    if not math.isfinite(y):
        return math.inf
    zq = z if isinstance(z, Fraction) else _mpf_to_fraction(to_mpf(z))
    err = abs(Fraction(y) - zq) / Fraction(2) ** _ulp_exponent(zq, get_format(fmt))
    return _fraction_to_float_up(err)


def _fraction_to_float_up(q: Fraction) -> float:
    try:
        r = float(q)  # correctly rounded to nearest by Python
    except OverflowError:
        return math.inf
    if Fraction(r) < q:
        r = math.nextafter(r, math.inf)
    return r


def bits_of_error(y: float, z_rounded: float, fmt: "str | Format") -> float:
    """b = log2(1 + |ord(y) - ord(RN(z))|) (Herbie), with +-0 equal. A NaN, or an infinity where the
    correctly rounded value is finite (or the other way round), counts as the format's full width."""
    f = get_format(fmt)
    if math.isnan(z_rounded) or math.isnan(y):
        return 0.0 if (math.isnan(z_rounded) and math.isnan(y)) else float(f.width)
    if (math.isinf(y) or math.isinf(z_rounded)) and y != z_rounded:
        return float(f.width)
    if y == z_rounded:  # the same ordinal (+-0 both 0): no need to compute it
        return 0.0
    d = abs(ordinal(y, f) - ordinal(z_rounded, f))
    return math.log2(1 + d)


def format_ulps(e: float) -> str:
    """An ULP error with 3 significant digits, rounded up (as the accuracy tables print it)."""
    if math.isnan(e) or math.isinf(e):
        return str(e)
    if e == 0:
        return "0"
    k = math.floor(math.log10(e)) - 2
    scaled = Fraction(e) / Fraction(10) ** k
    if scaled < 100:  # the float log10 rounded up across a power of ten
        k -= 1
        scaled *= 10
    elif scaled >= 1000:
        k += 1
        scaled /= 10
    n = -((-scaled.numerator) // scaled.denominator)  # ceil
    if n >= 1000:  # 999.x rounded up to 1000
        n //= 10
        k += 1
    if -6 <= k + 2 < 6:  # fixed point, exactly the three digits (no binary float in between)
        if k >= 0:
            return str(n * 10**k)
        digits = str(n).rjust(-k + 1, "0")
        return f"{digits[:k]}.{digits[k:]}"
    d = str(n)
    return f"{d[0]}.{d[1:]}e{k + 2:+d}"
