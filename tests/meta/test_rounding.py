"""Meta-tests: prove ``oracles.formats`` right -- correct rounding into float64/float32/float16/bfloat16 and the
error measures of NUMERICS.md ("Formats", "Error measures").

Every expectation here comes from a reference that does not use ``oracles.formats``:

- numpy's float64 -> float16 / float32 conversions (one correct RNE rounding from float64, gradual underflow,
  overflow to inf), applied only to float64-representable points;
- torch's float32 -> bfloat16 conversion (RNE) and RNE done by integer arithmetic on float32 bit patterns;
- the bit patterns themselves (ties go to the neighbour whose bit pattern is even; ordinals are sign-magnitude
  bit patterns; the ulp comes from the exponent field);
- gmpy2 (MPFR) contexts with the formats' precision and exponent range and ``subnormalize=True``;
- Python's ``float(Fraction)`` (CPython's int/int true division rounds correctly, subnormals included);
- hand-derived expectations for exact values built with Fractions or mpmath raw tuples at prec 0 (exact),
  never with float arithmetic that could itself round.

Exact values reach ``round_mpf`` through ``_mpf`` below (``as_integer_ratio`` + ``libmp.from_man_exp``), not
through ``formats.to_mpf``; ``to_mpf`` is tested separately.
"""

from __future__ import annotations

import decimal
import math
import random
from fractions import Fraction

import gmpy2
import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from mpmath import libmp

from oracles import formats as F

INF = math.inf

# The formats as NUMERICS.md's table gives them (p incl. hidden bit, emin, emax, storage width) -- typed in here
# rather than read from formats.FORMATS, so that a wrong entry there is caught.
SPEC = {
    "float64": (53, -1022, 1023, 64),
    "float32": (24, -126, 127, 32),
    "float16": (11, -14, 15, 16),
    "bfloat16": (8, -126, 127, 16),
}
LARGEST = {  # NUMERICS.md's "largest finite" column
    "float64": 1.7976931348623157e308,
    "float32": 3.4028234663852886e38,
    "float16": 65504.0,
    "bfloat16": 3.3895313892515355e38,
}


# --------------------------------------------------------------------------------------------------
# independent helpers


def _mpf(x) -> tuple:
    """Exact raw mpf of a float / int / dyadic Fraction, without formats.to_mpf; -0.0 -> libmp.fnzero."""
    if isinstance(x, float):
        if x == 0:
            return libmp.fnzero if math.copysign(1.0, x) < 0 else libmp.fzero
        n, d = x.as_integer_ratio()
    else:
        q = Fraction(x)
        n, d = q.numerator, q.denominator
    assert d & (d - 1) == 0, "not dyadic"
    return libmp.from_man_exp(n, -(d.bit_length() - 1))


def _binade(v: tuple) -> int:
    """floor(log2 |v|) of a nonzero normalized raw mpf."""
    return v[2] + v[3] - 1


def _nudge(v: tuple, direction: int, rel: int = 80) -> tuple:
    """v + direction * 2**(floor(log2|v|) - rel), exactly (mpmath prec 0 = exact)."""
    d = libmp.from_man_exp(1, _binade(v) - rel)
    return libmp.mpf_add(v, d, 0) if direction > 0 else libmp.mpf_sub(v, d, 0)


def _same(a: float, b: float) -> bool:
    """Same value and, for zeros, the same sign (NaN equals NaN)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _assert_same_arrays(got, want, inputs, what: str) -> None:
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    bad = ~((got == want) & (np.signbit(got) == np.signbit(want)))
    if bad.any():
        idx = np.flatnonzero(bad)
        shown = "\n".join(
            f"  input {inputs[i]!r}: expected {float(want[i])!r}, got {float(got[i])!r}" for i in idx[:12]
        )
        raise AssertionError(f"{what}: {idx.size} of {got.size} wrong, e.g.\n{shown}")


def _mpfr_context(fmt: str):
    """An MPFR context that is exactly the IEEE format: MPFR's significands lie in [1/2, 1), so its emax is the
    IEEE emax + 1 and, with subnormalize, its emin is (exponent of the smallest subnormal) + 1."""
    p, emin, emax, _ = SPEC[fmt]
    return gmpy2.context(
        precision=p, emin=emin - p + 2, emax=emax + 1, subnormalize=True, round=gmpy2.RoundToNearest
    )


def _mpfr_round(zs, fmt: str) -> list[float]:
    """RN of each Fraction in zs by MPFR (gmpy2), as Python floats."""
    out = []
    with _mpfr_context(fmt):
        for z in zs:
            out.append(float(gmpy2.mpfr(gmpy2.mpq(z.numerator, z.denominator))))
    return out


def _python_round64(z: Fraction) -> float:
    """RN to float64 by CPython's correctly rounded int/int division; OverflowError means the rounded result is
    beyond the largest finite value, i.e. +-inf."""
    try:
        return float(z)
    except OverflowError:
        return INF if z > 0 else -INF


def _floor_log2(a: Fraction) -> int:
    """floor(log2 a) for a > 0, by exact comparisons."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    return e


def _ulp_ref(z: Fraction, fmt: str) -> Fraction:
    """NUMERICS.md: ulp(z) = 2**(max(floor(log2|z|), emin) - p + 1); ulp(0) = smallest subnormal."""
    p, emin, _, _ = SPEC[fmt]
    e = emin if z == 0 else max(_floor_log2(abs(z)), emin)
    return Fraction(2) ** (e - p + 1)


def test_mpfr_contexts_match_gmpy2_ieee():
    """The hand-made MPFR contexts are the ones gmpy2 ships for the IEEE formats (a check on the reference)."""
    for fmt, bits in (("float64", 64), ("float32", 32), ("float16", 16)):
        mine, theirs = _mpfr_context(fmt), gmpy2.ieee(bits)
        assert (mine.precision, mine.emin, mine.emax, mine.subnormalize) == (
            theirs.precision, theirs.emin, theirs.emax, theirs.subnormalize,
        ), fmt


# --------------------------------------------------------------------------------------------------
# the format constants


@pytest.mark.parametrize("fmt", list(SPEC))
def test_format_constants_match_numerics(fmt):
    f = F.get_format(fmt)
    p, emin, emax, width = SPEC[fmt]
    assert (f.name, f.p, f.emin, f.emax, f.width) == (fmt, p, emin, emax, width)
    assert f.max_finite == LARGEST[fmt] == (2**p - 1) * 2.0 ** (emax - p + 1)
    assert f.min_normal == 2.0**emin
    assert f.min_subnormal == 2.0 ** (emin - p + 1)
    assert f.u == Fraction(1, 2**p)


@pytest.mark.parametrize(
    "fmt,finfo",
    [("float64", np.finfo(np.float64)), ("float32", np.finfo(np.float32)), ("float16", np.finfo(np.float16))],
    ids=["float64", "float32", "float16"],
)
def test_format_constants_match_numpy(fmt, finfo):
    f = F.get_format(fmt)
    assert f.max_finite == float(finfo.max)
    assert f.min_normal == float(finfo.smallest_normal)
    assert f.min_subnormal == float(finfo.smallest_subnormal)
    assert f.p == finfo.nmant + 1


def test_bfloat16_constants_match_torch():
    fi = torch.finfo(torch.bfloat16)
    f = F.get_format("bfloat16")
    assert (f.max_finite, f.min_normal) == (fi.max, fi.smallest_normal)
    assert f.min_subnormal == torch.tensor([0x0001], dtype=torch.int16).view(torch.bfloat16).item()


def test_max_ordinal_is_the_bit_pattern_of_max_finite():
    # positive values of a binary format are ordered like their bit patterns, +0 = pattern 0
    expect = {"float64": 0x7FEFFFFFFFFFFFFF, "float32": 0x7F7FFFFF, "float16": 0x7BFF, "bfloat16": 0x7F7F}
    for fmt, pattern in expect.items():
        assert F.get_format(fmt).max_ordinal == pattern, fmt


def test_get_format_rejects_unknown():
    with pytest.raises(ValueError):
        F.get_format("float8")
    assert F.get_format(F.FORMATS["float16"]) is F.FORMATS["float16"]


# --------------------------------------------------------------------------------------------------
# all values of the 16-bit formats


def _f16_finite():
    """(bit patterns, float64 values) of every finite float16 (both zeros included)."""
    bits = np.arange(2**16, dtype=np.uint32)
    vals = bits.astype(np.uint16).view(np.float16)
    keep = np.isfinite(vals)
    return bits[keep], vals[keep].astype(np.float64)


def _bf16_finite():
    bits = np.arange(2**16, dtype=np.uint32)
    vals = (bits << 16).view(np.float32)
    keep = np.isfinite(vals)
    return bits[keep], vals[keep].astype(np.float64)


_ALL16 = {"float16": _f16_finite, "bfloat16": _bf16_finite}


@pytest.mark.parametrize("fmt", list(_ALL16))
def test_every_value_is_a_fixed_point_of_round_mpf(fmt):
    """round_mpf(v) == v for every finite value of the format, sign of zero included (exact mpf built here)."""
    _, vals = _ALL16[fmt]()
    assert vals.size == 2**16 - 2 * 2 ** (SPEC[fmt][0] - 1)  # less the all-ones exponents: NaNs and +-inf
    got = [F.round_mpf(_mpf(float(v)), fmt) for v in vals]
    _assert_same_arrays(got, vals, vals.tolist(), f"{fmt}: round_mpf of its own values")


@pytest.mark.parametrize("fmt", list(_ALL16))
def test_every_value_round_trips_through_to_mpf(fmt):
    """round_mpf(to_mpf(float(v))) == v for every finite value, same sign of zero (the path the library uses)."""
    _, vals = _ALL16[fmt]()
    got = [F.round_mpf(F.to_mpf(float(v)), fmt) for v in vals]
    _assert_same_arrays(got, vals, vals.tolist(), f"{fmt}: round_mpf(to_mpf(v))")


@pytest.mark.parametrize("fmt", list(_ALL16))
def test_round_to_format_on_every_value(fmt):
    _, vals = _ALL16[fmt]()
    got = [F.round_to_format(float(v), fmt) for v in vals]
    _assert_same_arrays(got, vals, vals.tolist(), f"{fmt}: round_to_format(v)")


@pytest.mark.parametrize("fmt", list(_ALL16))
def test_is_representable_on_every_value_and_no_midpoint(fmt):
    _, vals = _ALL16[fmt]()
    not_repr = [float(v) for v in vals if not F.is_representable(float(v), fmt)]
    assert not_repr == [], f"{fmt}: is_representable is False for {not_repr[:10]}"
    lo, hi, *_ = _neighbour_pairs(fmt)
    mids = ((lo + hi) / 2).tolist()  # exact midpoints (see _midpoints)
    wrongly = [m for m in mids + [-m for m in mids] if F.is_representable(m, fmt)]
    assert wrongly == [], f"{fmt}: is_representable is True for midpoints {wrongly[:10]}"
    assert F.is_representable(INF, fmt) and F.is_representable(-INF, fmt) and F.is_representable(math.nan, fmt)


def test_to_mpf_is_exact_and_keeps_the_sign_of_zero():
    assert F.to_mpf(0.0) == libmp.fzero
    assert F.to_mpf(-0.0) == libmp.fnzero, "to_mpf(-0.0) drops the sign: RN(-0.0) comes out as +0.0"
    assert _same(F.round_to_format(-0.0, "float32"), -0.0)


def test_to_mpf_is_exact_on_random_float64_bit_patterns():
    rng = random.Random(1601)
    pats = [rng.getrandbits(64) for _ in range(3000)] + [1, 2, 0x000FFFFFFFFFFFFF, 0x0010000000000000]
    xs = [float(v) for v in np.array(pats, dtype=np.uint64).view(np.float64) if np.isfinite(v) and v != 0]
    for x in xs:
        v = F.to_mpf(x)
        assert libmp.mpf_eq(v, _mpf(x)), x
        assert F.round_mpf(v, "float64") == x
    assert F.to_mpf(Fraction(-3, 8)) == libmp.from_man_exp(-3, -3)
    assert F.to_mpf(7) == libmp.from_int(7)
    with pytest.raises(ValueError):
        F.to_mpf(Fraction(1, 3))
    with pytest.raises(ValueError):
        F.to_mpf(math.inf)


def _neighbour_pairs(fmt):
    """For the format's non-negative finite values in increasing order: (lo, hi, hi_result, lo_bits, hi_bits),
    one row per pair of neighbours, the last pair being (max finite, 2**(emax+1)) whose upper end rounds to inf."""
    bits, vals = _ALL16[fmt]()
    pos = vals[bits < 0x8000]
    pbits = bits[bits < 0x8000].astype(np.int64)
    assert np.all(np.diff(pos) > 0) and pos[0] == 0 and not np.signbit(pos[0])
    _, _, emax, _ = SPEC[fmt]
    lo = pos
    hi = np.append(pos[1:], 2.0 ** (emax + 1))
    hi_result = np.append(pos[1:], INF)
    inf_bits = 0x7C00 if fmt == "float16" else 0x7F80
    return lo, hi, hi_result, pbits, np.append(pbits[1:], inf_bits)


def _midpoints(lo, hi):
    # (lo + hi) / 2 in float64 is the exact midpoint: both ends are multiples of ulp(lo) (>= 2**-24 for float16,
    # >= 2**-133 for bfloat16) and lo + hi = (2k + 1) * ulp(lo) with 2k + 1 < 2**(p+2) <= 2**13, so the sum fits
    # in float64's 53 bits, stays below 2**129 (no overflow), and the halving is an exact power-of-two scaling
    # far above float64's subnormal range. Checked exactly with Fractions below anyway.
    mid = (lo + hi) / 2
    for a, b, m in zip(lo.tolist(), hi.tolist(), mid.tolist()):
        assert 2 * Fraction(m) == Fraction(a) + Fraction(b)
    return mid


def _check_neighbours(fmt, numpy_like_ref):
    lo, hi, hi_result, lo_bits, hi_bits = _neighbour_pairs(fmt)
    mid = _midpoints(lo, hi)
    names = [f"mid({a!r}, {b!r})" for a, b in zip(lo.tolist(), hi.tolist())]

    # the references for the midpoints: a library conversion, and "the neighbour with the even bit pattern"
    ref_mid = numpy_like_ref(mid)
    ref_neg = numpy_like_ref(-mid)
    even = np.where(lo_bits % 2 == 0, lo, hi_result)
    assert np.all((lo_bits % 2) != (hi_bits % 2))  # neighbours differ by one in the last bit
    _assert_same_arrays(ref_mid, even, names, f"{fmt}: reference conversion vs ties-to-even bit rule")
    _assert_same_arrays(ref_neg, -even, names, f"{fmt}: reference conversion vs ties-to-even bit rule (negative)")

    got = {k: [] for k in ("mid", "up", "dn", "-mid", "-up", "-dn")}
    for m in mid.tolist():
        v = _mpf(m)
        up, dn = _nudge(v, +1), _nudge(v, -1)
        got["mid"].append(F.round_mpf(v, fmt))
        got["up"].append(F.round_mpf(up, fmt))
        got["dn"].append(F.round_mpf(dn, fmt))
        got["-mid"].append(F.round_mpf(libmp.mpf_neg(v), fmt))
        got["-up"].append(F.round_mpf(libmp.mpf_neg(up), fmt))
        got["-dn"].append(F.round_mpf(libmp.mpf_neg(dn), fmt))

    # exact ties: ties to even (matches the library conversion)
    _assert_same_arrays(got["mid"], ref_mid, names, f"{fmt}: positive midpoints")
    _assert_same_arrays(got["-mid"], ref_neg, names, f"{fmt}: negative midpoints")
    # midpoint +- a hair (2**-80 relative): the nearer neighbour, by hand. Zero results carry the sign of the
    # value: lo is +0.0 for the first pair, so -lo is -0.0 for the values just above -min_subnormal/2.
    _assert_same_arrays(got["up"], hi_result, names, f"{fmt}: midpoint + 2**-80 rel")
    _assert_same_arrays(got["dn"], lo, names, f"{fmt}: midpoint - 2**-80 rel")
    _assert_same_arrays(got["-up"], -hi_result, names, f"{fmt}: -(midpoint + 2**-80 rel)")
    _assert_same_arrays(got["-dn"], -lo, names, f"{fmt}: -(midpoint - 2**-80 rel)")


def _numpy_f16(x):
    with np.errstate(over="ignore"):
        return np.asarray(x, dtype=np.float64).astype(np.float16).astype(np.float64)


def _torch_bf16(x):
    x32 = np.asarray(x, dtype=np.float64).astype(np.float32)
    assert np.array_equal(x32.astype(np.float64), np.asarray(x)), "bfloat16 midpoints are float32 values"
    return torch.from_numpy(x32).to(torch.bfloat16).to(torch.float32).numpy().astype(np.float64)


def _bitwise_bf16(x):
    """RNE of float32 bit patterns to their upper 16 bits, by integer arithmetic."""
    x32 = np.asarray(x, dtype=np.float64).astype(np.float32)
    b = x32.view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint32)
    return (r << 16).view(np.float32).astype(np.float64)


def test_float16_all_midpoints_and_near_midpoints():
    """Every pair of neighbouring float16 values, both signs, across 0, through the subnormals and from 65504
    to the overflow threshold 65520: the tie goes to even (== numpy), a hair above/below goes to the nearer."""
    _check_neighbours("float16", _numpy_f16)


def test_bfloat16_all_midpoints_and_near_midpoints():
    lo, hi, *_ = _neighbour_pairs("bfloat16")
    mid = (lo + hi) / 2
    _assert_same_arrays(_torch_bf16(mid), _bitwise_bf16(mid), mid.tolist(), "torch vs bitwise RNE (the references)")
    _assert_same_arrays(_torch_bf16(-mid), _bitwise_bf16(-mid), mid.tolist(), "torch vs bitwise RNE, negative")
    _check_neighbours("bfloat16", _bitwise_bf16)


def _mpfr_vs_oracle_on(fmt, zs):
    want = _mpfr_round(zs, fmt)
    got = [F.round_mpf(_mpf(z), fmt) for z in zs]
    _assert_same_arrays(got, want, [str(z) for z in zs], f"{fmt}: round_mpf vs MPFR")
    return want


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
def test_16bit_offsets_agree_with_mpfr_on_a_stride(fmt):
    """The hand expectations for midpoint +- 2**-80 relative, cross-checked against MPFR on every 7th pair."""
    lo, hi, hi_result, _, _ = _neighbour_pairs(fmt)
    mid = (lo + hi) / 2
    zs = []
    for m in mid[::7].tolist():
        e = _floor_log2(Fraction(m))
        d = Fraction(2) ** (e - 80)
        zs += [Fraction(m) + d, Fraction(m) - d, -Fraction(m) - d, -Fraction(m) + d]
    want = _mpfr_vs_oracle_on(fmt, zs)
    by_hand = []
    for a, b in zip(lo[::7].tolist(), hi_result[::7].tolist()):
        by_hand += [b, a, -b, -a]
    _assert_same_arrays(want, by_hand, [str(z) for z in zs], f"{fmt}: MPFR vs the hand expectations")


@pytest.mark.parametrize(
    "fmt,z,want",
    [
        ("float16", Fraction(65520), INF),
        ("float16", Fraction(65520) - Fraction(1, 2**60), 65504.0),
        ("float16", Fraction(65520) + Fraction(1, 2**60), INF),
        ("float16", Fraction(65519), 65504.0),
        ("float16", Fraction(65536), INF),
        ("float16", Fraction(-65520), -INF),
        ("float16", -Fraction(65520) + Fraction(1, 2**60), -65504.0),
        ("float16", Fraction(-65519), -65504.0),
        ("float16", Fraction(2) ** 100000, INF),
        ("float16", -(Fraction(2) ** 100000), -INF),
        ("float16", Fraction(-1, 2**25), -0.0),  # -min_subnormal/2: a tie, to the even zero
        ("float16", Fraction(-1, 2**26), -0.0),
        ("float16", -Fraction(1, 2**25) + Fraction(1, 2**100), -0.0),
        ("float16", -Fraction(1, 2**25) - Fraction(1, 2**100), -(2.0**-24)),
        ("float16", -(Fraction(2) ** -100000), -0.0),
        ("float16", Fraction(2) ** -100000, 0.0),
        ("bfloat16", Fraction(2**128 - 2**119), INF),
        ("bfloat16", Fraction(2**128 - 2**119) - Fraction(1, 2**40), 3.3895313892515355e38),
        ("bfloat16", Fraction(2**128 - 2**119) + Fraction(1, 2**40), INF),
        ("bfloat16", -Fraction(2**128 - 2**119), -INF),
        ("bfloat16", -Fraction(2**128 - 2**119) + Fraction(1, 2**40), -3.3895313892515355e38),
        ("bfloat16", Fraction(-1, 2**134), -0.0),
        ("bfloat16", -Fraction(1, 2**134) - Fraction(1, 2**300), -(2.0**-133)),
        ("bfloat16", Fraction(-1, 2**200), -0.0),
    ],
    ids=lambda v: str(v) if not isinstance(v, Fraction) else None,
)
def test_16bit_overflow_threshold_and_negative_underflow(fmt, z, want):
    got = F.round_mpf(_mpf(z), fmt)
    assert _same(got, want), (fmt, z, want, got)
    assert _same(_mpfr_round([z], fmt)[0], want)  # the expectation itself, by MPFR


# --------------------------------------------------------------------------------------------------
# float32 / float64 (and the 16-bit formats) hard cases


def _hard_cases():
    cases = []
    for fmt, (p, emin, emax, _) in SPEC.items():
        two = Fraction(2)
        S = two ** (emin - p + 1)  # smallest subnormal
        N = two**emin  # smallest normal
        MAX = (2**p - 1) * two ** (emax - p + 1)
        OVF = two ** (emax + 1) - two ** (emax - p)  # midpoint between MAX and 2**(emax+1)
        u = two**-p
        hair = lambda x: two ** (_floor_log2(abs(x)) - 70)  # noqa: E731 - tiny exact offset, 2**-70 relative

        def add(name, z, want):
            cases.append(pytest.param(fmt, z, want, id=f"{fmt}-{name}"))

        add("min_subnormal", S, S)
        add("neg_min_subnormal", -S, -S)
        add("half_min_subnormal_ties_to_zero", S / 2, 0.0)
        add("neg_half_min_subnormal_ties_to_neg_zero", -S / 2, -0.0)
        add("just_above_half_min_subnormal", S / 2 + hair(S), S)
        add("neg_just_above_half_min_subnormal", -S / 2 - hair(S), -S)
        add("just_below_half_min_subnormal", S / 2 - hair(S), 0.0)
        add("neg_just_below_half_min_subnormal", -S / 2 + hair(S), -0.0)
        add("quarter_min_subnormal", S / 4, 0.0)
        add("neg_quarter_min_subnormal", -S / 4, -0.0)
        add("far_underflow", two ** (emin - 3 * p - 500), 0.0)
        add("neg_far_underflow", -(two ** (emin - 3 * p - 500)), -0.0)
        add("1.5_min_subnormal_ties_to_even_2", 3 * S / 2, 2 * S)
        add("2.5_min_subnormal_ties_to_even_2", 5 * S / 2, 2 * S)
        add("3.5_min_subnormal_ties_to_even_4", 7 * S / 2, 4 * S)
        add("neg_1.5_min_subnormal", -3 * S / 2, -2 * S)
        add("largest_subnormal", N - S, N - S)
        add("min_normal", N, N)
        add("mid_largest_subnormal_min_normal_ties_up", N - S / 2, N)
        add("below_mid_largest_subnormal_min_normal", N - S / 2 - hair(N), N - S)
        add("above_mid_largest_subnormal_min_normal", N - S / 2 + hair(N), N)
        add("neg_mid_largest_subnormal_min_normal", -(N - S / 2), -N)
        add("mid_min_normal_next_ties_down", N + S / 2, N)
        add("mid_min_normal_plus_1_ties_up", N + 3 * S / 2, N + 2 * S)
        add("one", Fraction(1), Fraction(1))
        add("1+u_ties_to_1", 1 + u, Fraction(1))
        add("1+3u_ties_to_1+4u", 1 + 3 * u, 1 + 4 * u)
        add("1+u+hair", 1 + u + two ** (-p - 36), 1 + 2 * u)
        add("1+u-hair", 1 + u - two ** (-p - 36), Fraction(1))
        add("1-u/2_ties_to_1", 1 - u / 2, Fraction(1))
        add("1-u/2-hair", 1 - u / 2 - two ** (-p - 36), 1 - u)
        add("1-3u/2_ties_to_1-2u", 1 - 3 * u / 2, 1 - 2 * u)
        add("neg_1+u_ties_to_neg_1", -(1 + u), Fraction(-1))
        add("neg_1+3u", -(1 + 3 * u), -(1 + 4 * u))
        add("max_finite", MAX, MAX)
        add("overflow_midpoint_to_inf", OVF, INF)
        add("neg_overflow_midpoint_to_neg_inf", -OVF, -INF)
        add("just_below_overflow_midpoint_to_max", OVF - hair(OVF), MAX)
        add("neg_just_below_overflow_midpoint_to_neg_max", -OVF + hair(OVF), -MAX)
        add("just_above_overflow_midpoint_to_inf", OVF + hair(OVF), INF)
        add("mid_below_max_ties_to_even_max_minus_ulp", MAX - two ** (emax - p), MAX - two ** (emax - p + 1))
        add("2**(emax+1)", two ** (emax + 1), INF)
        add("far_overflow", two ** (emax + 3 * p + 500), INF)
        add("neg_far_overflow", -(two ** (emax + 3 * p + 500)), -INF)
    # double rounding: via float64 first, 1 + 2**-24 + 2**-60 becomes the float32 tie 1 + 2**-24 -> 1.0
    cases.append(pytest.param("float32", 1 + Fraction(1, 2**24) + Fraction(1, 2**60), 1 + Fraction(1, 2**23),
                              id="float32-double_rounding_1+2**-24+2**-60"))
    cases.append(pytest.param("float32", Fraction(1, 2**150) + Fraction(1, 2**220), Fraction(1, 2**149),
                              id="float32-double_rounding_subnormal"))
    # mpmath <= 1.4's float(mpf) double-rounds float64 subnormals: 2**-1075 + 2**-1200 must give 2**-1074
    cases.append(pytest.param("float64", Fraction(1, 2**1075) + Fraction(1, 2**1200), Fraction(1, 2**1074),
                              id="float64-subnormal_mpmath_double_rounding"))
    cases.append(pytest.param("float64", Fraction(3, 2**1076) + Fraction(1, 2**1300), Fraction(1, 2**1074),
                              id="float64-0.75_min_subnormal_plus_hair"))
    return cases


HARD = _hard_cases()


@pytest.mark.parametrize("fmt,z,want", HARD)
def test_hard_case(fmt, z, want):
    if isinstance(want, Fraction):  # every expected finite value is a float64 value, so float() is exact
        assert Fraction(float(want)) == want
        want = float(want)
    got = F.round_mpf(_mpf(z), fmt)
    assert _same(got, want), f"{fmt} RN({z}) expected {want!r}, got {got!r}"
    # the same through the public entry points: a Fraction and an mpmath mpf
    assert _same(F.round_to_format(z, fmt), want)
    assert _same(F.round_to_format(mpmath.mp.make_mpf(_mpf(z)), fmt), want)  # make_mpf: no rounding (mpf() would)
    # and the hand-derived expectation agrees with MPFR (and with Python for float64)
    assert _same(_mpfr_round([z], fmt)[0], want)
    if fmt == "float64":
        assert _same(_python_round64(z), want)


def test_double_rounding_trap_is_real_and_avoided():
    """z = 1 + 2**-24 + 2**-60: RN32(RN64(z)) = RN32(1 + 2**-24) = 1.0 (a tie, to even), RN32(z) = 1 + 2**-23."""
    z = 1 + Fraction(1, 2**24) + Fraction(1, 2**60)
    via64 = float(np.float32(float(z)))  # numpy: float64 -> float32, after Python's float64 rounding
    assert float(z) == 1 + 2.0**-24 and via64 == 1.0
    direct = F.round_mpf(_mpf(z), "float32")
    assert direct == 1 + 2.0**-23 != via64
    # subnormal variant: 2**-150 + 2**-220 -> 2**-150 in float64, then a tie to 0 in float32; directly 2**-149
    z = Fraction(1, 2**150) + Fraction(1, 2**220)
    assert float(np.float32(float(z))) == 0.0
    assert F.round_mpf(_mpf(z), "float32") == 2.0**-149


# --------------------------------------------------------------------------------------------------
# random exact values across each whole range


def _random_dyadics(rng: random.Random, fmt: str, n: int) -> list[Fraction]:
    """Random dyadic rationals of random length whose binades cover the subnormals, the normals, and a few binades
    past both ends; a third of them are exact ties or ties +- a hair between neighbours of the format."""
    p, emin, emax, _ = SPEC[fmt]
    lo_e, hi_e = emin - p - 3, emax + 2
    out = []
    for _ in range(n):
        bits = rng.randint(1, p + 40)
        man = rng.getrandbits(bits) | (1 << (bits - 1))
        e = rng.randint(lo_e, hi_e)
        kind = rng.random()
        if kind < 0.33:
            # a tie: p+1 significant bits ending in 1 at binade e (in the subnormal range: at the quantum)
            q = max(e, emin) - p  # half an ulp at binade e
            k = rng.getrandbits(p) | (1 << (p - 1)) if e >= emin else rng.getrandbits(max(e - emin + p, 0) or 1)
            z = (2 * Fraction(k) + 1) * Fraction(2) ** q
            if rng.random() < 0.5:
                z += rng.choice((1, -1)) * Fraction(2) ** (q - rng.randint(1, 200))
        else:
            z = Fraction(man) * Fraction(2) ** (e - bits + 1)
        out.append(-z if rng.random() < 0.5 else z)
    return out


@pytest.mark.parametrize("fmt", list(SPEC))
def test_random_dyadics_agree_with_mpfr(fmt):
    rng = random.Random(20240601 + len(fmt))
    zs = _random_dyadics(rng, fmt, 4000)
    _mpfr_vs_oracle_on(fmt, zs)


def test_random_dyadics_float64_agree_with_python_float():
    rng = random.Random(7)
    zs = _random_dyadics(rng, "float64", 4000)
    got = [F.round_mpf(_mpf(z), "float64") for z in zs]
    want = [_python_round64(z) for z in zs]
    _assert_same_arrays(got, want, [str(z) for z in zs], "float64: round_mpf vs float(Fraction)")


def test_random_rationals_float64_agree_with_python_float():
    """Non-dyadic rationals (round_to_format's Fraction path), values from 2**-1100 to 2**1030."""
    rng = random.Random(11)
    zs = []
    for _ in range(3000):
        num = rng.getrandbits(rng.randint(1, 120)) | 1
        den = rng.getrandbits(rng.randint(1, 120)) | 1
        z = Fraction(num, den) * Fraction(2) ** rng.randint(-1100, 1030)
        zs.append(-z if rng.random() < 0.5 else z)
    got = [F.round_to_format(z, "float64") for z in zs]
    want = [_python_round64(z) for z in zs]
    _assert_same_arrays(got, want, [str(z) for z in zs], "float64: round_to_format(Fraction) vs float(Fraction)")


@pytest.mark.parametrize("fmt", ["float32", "float16", "bfloat16"])
def test_random_rationals_agree_with_mpfr(fmt):
    rng = random.Random(13)
    p, emin, emax, _ = SPEC[fmt]
    zs = []
    for _ in range(2000):
        num = rng.getrandbits(rng.randint(1, 80)) | 1
        den = rng.getrandbits(rng.randint(2, 80)) | 1
        z = Fraction(num, den) * Fraction(2) ** rng.randint(emin - p - 3 + den.bit_length() - num.bit_length(),
                                                            emax + 2 + den.bit_length() - num.bit_length())
        zs.append(-z if rng.random() < 0.5 else z)
    got = [F.round_to_format(z, fmt) for z in zs]
    want = _mpfr_round(zs, fmt)
    _assert_same_arrays(got, want, [str(z) for z in zs], f"{fmt}: round_to_format(Fraction) vs MPFR")


def test_random_float64_inputs_agree_with_numpy_and_torch():
    """float64 inputs (random bit patterns over the relevant ranges): float32/float16 against numpy's conversion,
    bfloat16 (from float32 inputs) against torch."""
    rng = np.random.default_rng(3)
    for fmt, dtype, lo_e, hi_e in (("float32", np.float32, -155, 130), ("float16", np.float16, -28, 18)):
        x = np.ldexp(rng.uniform(0.5, 1.0, 6000), rng.integers(lo_e, hi_e, 6000))
        x[::2] *= -1
        x[::3] = np.round(x[::3] * 2.0**12) / 2.0**12  # shorter significands: many exact ties
        x = x[x != 0]  # (signed zeros are covered elsewhere)
        with np.errstate(over="ignore"):
            want = x.astype(dtype).astype(np.float64)
        got = [F.round_to_format(float(v), fmt) for v in x]
        _assert_same_arrays(got, want, x.tolist(), f"{fmt}: round_to_format vs numpy")
    with np.errstate(over="ignore"):  # some overflow to +-inf in float32: they pass through as inf
        x = np.ldexp(rng.uniform(0.5, 1.0, 6000), rng.integers(-140, 130, 6000)).astype(np.float32)
    x[::2] *= -1
    want = torch.from_numpy(x).to(torch.bfloat16).to(torch.float32).numpy().astype(np.float64)
    got = [F.round_to_format(float(v), "bfloat16") for v in x]
    _assert_same_arrays(got, want, x.tolist(), "bfloat16: round_to_format vs torch")


def test_non_finite_inputs_pass_through():
    for fmt in SPEC:
        assert F.round_to_format(INF, fmt) == INF
        assert F.round_to_format(-INF, fmt) == -INF
        assert math.isnan(F.round_to_format(math.nan, fmt))
        assert F.round_mpf(libmp.finf, fmt) == INF
        assert F.round_mpf(libmp.fninf, fmt) == -INF
        assert math.isnan(F.round_mpf(libmp.fnan, fmt))
        assert _same(F.round_mpf(libmp.fnzero, fmt), -0.0)
        assert _same(F.round_mpf(libmp.fzero, fmt), 0.0)


# --------------------------------------------------------------------------------------------------
# measures: ordinal, ulp, ulp_error, bits_of_error, format_ulps


@pytest.mark.parametrize("fmt", list(_ALL16))
def test_ordinal_is_the_signed_bit_pattern_and_from_ordinal_inverts_it(fmt):
    bits, vals = _ALL16[fmt]()
    mag = (bits & 0x7FFF).astype(np.int64)
    want = np.where(bits & 0x8000, -mag, mag)
    got = np.array([F.ordinal(float(v), fmt) for v in vals], dtype=np.int64)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(vals[i], want[i], got[i]) for i in bad[:10]]
    # strictly increasing in value order (one zero), ord(+-0) = 0
    order = np.argsort(vals, kind="stable")
    sv, so = vals[order], got[order]
    one_zero = ~((sv == 0) & np.signbit(sv))
    assert np.all(np.diff(so[one_zero]) > 0)
    assert F.ordinal(0.0, fmt) == F.ordinal(-0.0, fmt) == 0
    f = F.get_format(fmt)
    assert F.ordinal(INF, fmt) == f.max_ordinal + 1 and F.ordinal(-INF, fmt) == -(f.max_ordinal + 1)
    assert F.ordinal(f.max_finite, fmt) == f.max_ordinal and F.ordinal(f.min_subnormal, fmt) == 1
    # from_ordinal: the inverse, on every ordinal including +-inf
    back = [F.from_ordinal(int(n), fmt) for n in want]
    _assert_same_arrays(back, np.where(vals == 0, 0.0, vals), want.tolist(), f"{fmt}: from_ordinal(ordinal(v))")
    assert F.from_ordinal(f.max_ordinal + 1, fmt) == INF and F.from_ordinal(-(f.max_ordinal + 1), fmt) == -INF
    with pytest.raises(ValueError):
        F.from_ordinal(f.max_ordinal + 2, fmt)


@pytest.mark.parametrize("fmt,dtype,itype", [("float32", np.float32, np.int32), ("float64", np.float64, np.int64)],
                         ids=["float32", "float64"])
def test_ordinal_on_random_wide_values(fmt, dtype, itype):
    rng = np.random.default_rng(5)
    nbits = np.dtype(dtype).itemsize * 8
    raw = rng.integers(0, 2 ** (nbits - 1) - 1, 5000, dtype=np.int64 if nbits == 64 else np.int32).astype(itype)
    raw = raw[:2500].tolist() + [-r for r in raw[2500:].tolist()] + [1, 2, -1]
    for r in raw:
        mag = abs(r)
        v = float(np.array([mag], dtype=itype).view(dtype)[0])
        if not math.isfinite(v):
            continue
        v = -v if r < 0 else v
        assert F.ordinal(v, fmt) == r, (fmt, v)
        assert F.from_ordinal(r, fmt) == v


def test_ordinal_rejects_nan_and_non_members():
    with pytest.raises(ValueError):
        F.ordinal(math.nan, "float32")
    with pytest.raises(ValueError):
        F.ordinal(1 + 2.0**-20, "float16")
    with pytest.raises(ValueError):
        F.ordinal(2.0**-140, "bfloat16")


def test_next_up_and_next_down_on_all_float16_values():
    _, vals = _f16_finite()
    with np.errstate(over="ignore"):  # nextafter(max) = inf
        want_up = np.nextafter(vals.astype(np.float16), np.float16(np.inf)).astype(np.float64)
        want_dn = np.nextafter(vals.astype(np.float16), np.float16(-np.inf)).astype(np.float64)
    up = np.array([F.next_up(float(v), "float16") for v in vals])
    dn = np.array([F.next_down(float(v), "float16") for v in vals])
    # values only: the sign of a zero result (nextUp(-min_subnormal)) is not specified here
    assert np.array_equal(up, want_up) and np.array_equal(dn, want_dn)


@pytest.mark.parametrize("fmt", list(_ALL16))
def test_ulp_of_every_value_from_its_exponent_field(fmt):
    p, emin, emax, _ = SPEC[fmt]
    bits, vals = _ALL16[fmt]()
    field = ((bits & 0x7FFF) >> (p - 1)).astype(np.int64)
    bias = -emin + 1
    want = np.ldexp(1.0, np.maximum(field, 1) - bias - (p - 1))  # field 0 (subnormal, zero): as field 1
    got = [F.ulp(float(v), fmt) for v in vals]
    _assert_same_arrays(got, want, vals.tolist(), f"{fmt}: ulp")
    if fmt == "float16":  # and the spacing numpy reports, for every finite non-negative value but the largest
        pos = vals[(vals >= 0) & (vals < 65504)].astype(np.float16)
        sp = np.spacing(pos).astype(np.float64)
        assert np.array_equal(np.array([F.ulp(float(v), fmt) for v in pos]), sp)


@pytest.mark.parametrize(
    "z,fmt,want",
    [
        (1.0, "float32", 2.0**-23),
        (0.0, "float32", 2.0**-149),
        (-0.0, "float64", 2.0**-1074),
        (0.0, "float16", 2.0**-24),
        (2.0**-130, "float32", 2.0**-149),
        (-(2.0**-1030), "float64", 2.0**-1074),
        (2.0**-126, "float32", 2.0**-149),
        (2.0**-126 - 2.0**-149, "float32", 2.0**-149),
        (Fraction(1) - Fraction(1, 2**60), "float32", 2.0**-24),
        (Fraction(3, 10), "float32", 2.0**-25),
        (Fraction(-1, 3), "float16", 2.0**-12),
        (Fraction(2**128 - 1), "float32", 2.0**104),
        (65520, "float16", 2.0**5),
        (1.0, "bfloat16", 2.0**-7),
        (1.0, "float64", 2.0**-52),
        (1.7976931348623157e308, "float64", 2.0**971),
    ],
    ids=lambda v: repr(v) if not isinstance(v, str) else v,
)
def test_ulp_samples(z, fmt, want):
    assert F.ulp(z, fmt) == want
    assert Fraction(want) == _ulp_ref(Fraction(z), fmt)


@pytest.mark.parametrize("fmt", list(SPEC))
def test_ulp_matches_the_definition_on_random_values(fmt):
    rng = random.Random(17)
    p, emin, emax, _ = SPEC[fmt]
    for z in _random_dyadics(rng, fmt, 1500):
        assert Fraction(F.ulp(z, fmt)) == _ulp_ref(z, fmt), (fmt, z)
        assert F.ulp(_mpf(z), fmt) == F.ulp(z, fmt)


def _ulp_error_ref(y: float, z: Fraction, fmt: str) -> Fraction:
    return abs(Fraction(y) - z) / _ulp_ref(z, fmt)


def _assert_rounded_up(r: float, exact: Fraction) -> None:
    """r is the least float >= exact."""
    assert Fraction(r) >= exact, (r, exact)
    if r > 0:
        assert Fraction(math.nextafter(r, -INF)) < exact, (r, exact)
    else:
        assert exact == 0


@pytest.mark.parametrize("fmt", list(SPEC))
def test_ulp_error_of_correctly_rounded_values_is_at_most_half(fmt):
    rng = random.Random(19)
    zs = [z for z in _random_dyadics(rng, fmt, 2000)]
    ys = _mpfr_round(zs, fmt)  # correctly rounded, by MPFR
    worst = 0.0
    for y, z in zip(ys, zs):
        if math.isinf(y):
            continue
        e = F.ulp_error(y, z, fmt)
        _assert_rounded_up(e, _ulp_error_ref(y, z, fmt))
        assert e <= 0.5, (fmt, z, y, e)
        worst = max(worst, e)
    assert worst == 0.5  # the ties are in the sample and give exactly half an ulp


@pytest.mark.parametrize("fmt", list(SPEC))
def test_ulp_error_of_wrong_values_is_exact_rounded_up(fmt):
    rng = random.Random(23)
    for z in _random_dyadics(rng, fmt, 500):
        y = _mpfr_round([z], fmt)[0]
        if math.isinf(y) or y == 0:
            continue
        for k in (1, 2, 7, 1000):
            try:
                w = F.from_ordinal(F.ordinal(y, fmt) + k * (1 if rng.random() < 0.5 else -1), fmt)
            except ValueError:
                continue
            if math.isinf(w):
                continue
            e = F.ulp_error(w, z, fmt)
            _assert_rounded_up(e, _ulp_error_ref(w, z, fmt))
    # a non-dyadic exact value
    z = Fraction(1, 3)
    e = F.ulp_error(float(np.float32(1 / 3)), z, "float32")
    _assert_rounded_up(e, _ulp_error_ref(float(np.float32(1 / 3)), z, "float32"))
    assert e < 0.5


def test_ulp_error_special_values():
    assert F.ulp_error(math.nan, math.nan, "float32") == 0.0
    assert F.ulp_error(1.0, math.nan, "float32") == INF
    assert F.ulp_error(math.nan, Fraction(1), "float32") == INF
    assert F.ulp_error(INF, INF, "float32") == 0.0
    assert F.ulp_error(-INF, INF, "float32") == INF
    assert F.ulp_error(INF, Fraction(1), "float32") == INF
    assert F.ulp_error(3.4028234663852886e38, INF, "float32") == INF
    assert F.ulp_error(1.0, Fraction(1), "float16") == 0.0
    assert F.ulp_error(1.0 + 2.0**-10, 1.0, "float16") == 1.0
    assert F.ulp_error(1.0, Fraction(1) + Fraction(1, 2**11), "float16") == 0.5
    assert F.ulp_error(0.0, Fraction(1, 2**25), "float16") == 0.5


def test_ulp_error_when_the_exact_value_is_past_float64s_range():
    """z = 2**1100 is a finite real; NUMERICS's e = |y - z| / ulp(z) with ulp(z) = 2**1048 is about 2**52.
    (A subject's max finite against an overflowing oracle value is a case the suite meets.)"""
    y = 1.7976931348623157e308
    z = Fraction(2) ** 1100
    exact = _ulp_error_ref(y, z, "float64")
    e = F.ulp_error(y, z, "float64")
    _assert_rounded_up(e, exact)


@pytest.mark.parametrize("fmt", list(SPEC))
def test_bits_of_error(fmt):
    f = F.get_format(fmt)
    width = SPEC[fmt][3]
    for y in (0.0, 1.0, -1.0, f.min_subnormal, -f.max_finite, f.min_normal, INF, -INF):
        assert F.bits_of_error(y, y, fmt) == 0.0
    assert F.bits_of_error(0.0, -0.0, fmt) == 0.0 and F.bits_of_error(-0.0, 0.0, fmt) == 0.0
    for y in (1.0, -1.0, f.min_normal, f.max_finite, -f.min_subnormal, 0.0):
        nxt = F.from_ordinal(F.ordinal(y, fmt) + 1, fmt)
        if math.isinf(nxt):
            continue
        assert F.bits_of_error(y, nxt, fmt) == 1.0 and F.bits_of_error(nxt, y, fmt) == 1.0
    assert F.bits_of_error(f.min_subnormal, -f.min_subnormal, fmt) == math.log2(3)
    four = F.from_ordinal(F.ordinal(1.0, fmt) + 4, fmt)
    assert F.bits_of_error(four, 1.0, fmt) == math.log2(5)
    hundred = F.from_ordinal(F.ordinal(1.0, fmt) - 100, fmt)
    assert F.bits_of_error(hundred, 1.0, fmt) == math.log2(101)
    for bad, good in ((math.nan, 1.0), (1.0, math.nan), (math.nan, 0.0), (INF, f.max_finite),
                      (-INF, 0.0), (f.max_finite, INF), (0.0, -INF)):
        assert F.bits_of_error(bad, good, fmt) == float(width), (bad, good)
    assert F.bits_of_error(math.nan, math.nan, fmt) == 0.0


_UP3 = decimal.Context(prec=3, rounding=decimal.ROUND_CEILING, Emin=-10**6, Emax=10**6)


def _significant_digits(s: str) -> int:
    """Significant digits shown by a plain decimal string ('0.00501' -> 3, '1.00' -> 3, '3880' -> 3)."""
    digits = s.replace(".", "").lstrip("0")
    return len(digits if "." in s else digits.rstrip("0"))


def _ceil3(e: float) -> decimal.Decimal:
    """e rounded up to 3 significant digits, by the decimal module (Decimal(float) is exact)."""
    return _UP3.plus(decimal.Decimal(e))


@pytest.mark.parametrize(
    "e,want",
    [(3876.2, "3880"), (0.50001, "0.501"), (0.5, "0.500"), (1.0, "1.00"), (999.5, "1000"), (100.0, "100"),
     (12345.0, "12400"), (0.0, "0"), (2.0**-10, "0.000977"), (1.5, "1.50"), (3877.0, "3880"), (9.99, "10.0"),
     (99.91, "100"), (0.1, "0.101")],
    ids=lambda v: repr(v),
)
def test_format_ulps_samples(e, want):
    # 0.1 is the float 0.1000000000000000055... and 9.99 the float 9.9900000000000002..., so rounded up they are
    # 0.101 and 10.0: the exact value of the float is what gets rounded up
    s = F.format_ulps(e)
    assert decimal.Decimal(s) == decimal.Decimal(want), (e, s)
    assert _significant_digits(s) <= 3, s
    assert decimal.Decimal(s) == _ceil3(e) or e == 0


def test_format_ulps_non_finite():
    assert F.format_ulps(INF) == "inf"
    assert F.format_ulps(math.nan) == "nan"


@given(st.floats(min_value=2.2250738585072014e-308, max_value=1e300, allow_nan=False, allow_infinity=False))
def test_format_ulps_is_three_significant_digits_rounded_up(e):
    s = F.format_ulps(e)
    assert decimal.Decimal(s) == _ceil3(e), (e, s)
    assert _significant_digits(s.lower().split("e")[0]) <= 3, s


@pytest.mark.parametrize("e", [5e-324, 1e-323, 2.5e-323, 1.5e-322, 1e-320, 2.2250738585072e-308],
                         ids=lambda v: repr(v))
def test_format_ulps_subnormal_errors(e):
    """NUMERICS: 3 significant digits rounded up -- for every float, a tiny ULP error included."""
    s = F.format_ulps(e)
    assert decimal.Decimal(s) == _ceil3(e), (e, s, str(_ceil3(e)))
