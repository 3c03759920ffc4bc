"""The certified univariate oracle (oracles/univariate.py) against the exact oracle (mpmath): zero disagreements on
random inputs and on adversarial ones (inputs whose value lies within the binary64 stage's bound of a rounding
boundary of the format: exactly the ones the later stages decide), its assumptions sampled, and its fallback rate
reported and bounded."""

from __future__ import annotations

import math
import zlib

import mpmath
import numpy as np
import pytest

from lossproof import sweep
from oracles import univariate as U

NAMES = ("sigmoid", "logsigmoid", "softplus", "torch:softplus")
FORMATS = ("float16", "bfloat16", "float32")


def _same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def _random_inputs(fmt, n, seed):
    rng = np.random.default_rng(seed)
    hi = sweep.size(fmt)
    bits = rng.integers(0, hi, size=n, dtype=np.uint64)
    x = np.concatenate([sweep.inputs(fmt, int(b), int(b) + 1) for b in bits])
    # and the ordinary range, where most of the values are not 0, 1 or x itself
    ordinary = rng.uniform(-30, 30, size=n)
    from oracles.fast import round_array

    return np.concatenate([x, round_array(ordinary, fmt)])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", U.KINDS)
def test_random_inputs_agree_with_the_exact_oracle(name, kind, fmt):
    x = _random_inputs(fmt, 40, seed=zlib.crc32(f'{name} {kind} {fmt}'.encode()))
    c = U.certified(name, kind, x, fmt)
    want = U.exact_rounded(name, kind, x, fmt)
    bad = [(float(xi), float(g), w) for xi, g, w in zip(x, c.rounded, want) if not _same(float(g), w)]
    assert not bad, f"{len(bad)} disagreements, first {bad[:3]}"


def _adversarial(name, kind, fmt, n):
    """Inputs the binary64 stage leaves undecided: z within its bound of a rounding boundary of ``fmt``."""
    lo = {"float32": 0x3C000000, "bfloat16": 0, "float16": 0}[fmt]
    span = {"float32": 2**22, "bfloat16": 2**16, "float16": 2**16}[fmt]
    x = sweep.inputs(fmt, lo, lo + span)
    for sign in (1, -1):
        xs = sign * x[np.isfinite(x)]
        c = U.certified(name, kind, xs, fmt, extended=False, exact=False)
        yield from xs[c.exact][:n].tolist()


@pytest.mark.parametrize("name", NAMES[:3])
@pytest.mark.parametrize("kind", U.KINDS)
def test_adversarial_inputs_agree_with_the_exact_oracle(name, kind):
    """float32 inputs near rounding boundaries (and every such float16 and bfloat16 input): the extended stage
    and the exact oracle must give mpmath's rounding."""
    checked = 0
    for fmt in FORMATS:
        x = np.array(list(_adversarial(name, kind, fmt, 25)), dtype=np.float64)
        if not x.size:
            continue
        c = U.certified(name, kind, x, fmt)
        want = U.exact_rounded(name, kind, x, fmt)
        bad = [(float(xi), float(g), w) for xi, g, w in zip(x, c.rounded, want) if not _same(float(g), w)]
        assert not bad, f"{fmt}: {len(bad)} disagreements, first {bad[:3]}"
        checked += x.size
    assert checked >= 25  # float32 alone has hundreds of such inputs in the slice


def test_special_inputs():
    """NaN gives NaN without the exact oracle; the infinities take their limits from it."""
    x = np.array([math.nan, math.inf, -math.inf, 0.0, -0.0])
    for name in NAMES:
        for kind in U.KINDS:
            c = U.certified(name, kind, x, "float32")
            assert math.isnan(c.rounded[0]) and c.counts.nan == 1 and c.counts.exact == 2
            want = U.exact_rounded(name, kind, x[1:], "float32")
            assert all(_same(float(g), w) for g, w in zip(c.rounded[1:], want)), (name, kind, c.rounded, want)


def test_the_binary64_bound_holds_on_samples():
    """|a - z| <= B (docstring, 9.) on random and extreme inputs, z from mpmath at 200 bits: the bound is what
    every decision rests on. Also samples A1/A2 for long double (ETA_L)."""
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-40, 40, 200), rng.uniform(-800, 800, 50), [0.0, 1e-300, -1e-300, 745.0]])
    mp = mpmath.mp.clone()
    mp.prec = 200
    fns = {("sigmoid", "value"): lambda t: 1 / (1 + mp.exp(-t)),
           ("sigmoid", "grad"): lambda t: mp.exp(-abs(t)) / (1 + mp.exp(-abs(t))) ** 2,
           ("logsigmoid", "value"): lambda t: -mp.log1p(mp.exp(-t)),
           ("softplus", "value"): lambda t: mp.log1p(mp.exp(t)),
           ("softplus", "grad"): lambda t: 1 / (1 + mp.exp(-t))}
    for (name, kind), fn in fns.items():
        for extended in (False, True):
            if extended and not U.extended_available():
                continue
            a, b = U.approximate(name, kind, x, extended=extended)
            for xi, ai, bi in zip(x, a, b):
                z = fn(mp.mpf(float(xi)))
                assert abs(mp.mpf(float(ai)) - z) <= bi, (name, kind, extended, xi, ai, bi)
    if U.extended_available():
        t = rng.uniform(-700, 0, 300).astype(np.longdouble)
        for v, w in zip(t, np.exp(t)):
            num, den = v.as_integer_ratio()  # the long double's value exactly
            z = mp.exp(mp.mpf(num) / den)
            num, den = w.as_integer_ratio()
            assert abs(mp.mpf(num) / den - z) <= U.ETA_L * z, float(v)


def test_fallback_rate_is_reported_and_small(capsys):
    """Over a float32 slice of 2**20 inputs, the exact oracle decides fewer than 1 in 10**5 (the extended stage
    takes what binary64 leaves, about 1 in 4,000); the rate is printed."""
    x = sweep.inputs("float32", 0x3F000000, 0x3F000000 + 2**20)
    total = U.Counts()
    for name in NAMES[:3]:
        for kind in U.KINDS:
            total.add(U.certified(name, kind, x, "float32", exact=False).counts)
    rate = U.fallback_rate(total)
    with capsys.disabled():
        print(f"\nunivariate oracle, float32 slice: {total.as_dict()}, fallback to mpmath {rate:.2e}")
    assert total.extended > 0  # the slice does reach the second stage
    assert rate < 1e-5


@pytest.mark.parametrize("fmt", FORMATS)
def test_rounding_and_certify_are_the_fast_paths(fmt):
    """``_round`` (NumPy's conversions) is ``fast.round_array`` on ties, their neighbours, subnormal boundaries and
    the overflow threshold; ``certify`` decides exactly what ``fast.certify`` decides, with the same values."""
    from oracles import fast

    rng = np.random.default_rng(11)
    x = sweep.inputs(fmt, 0, sweep.size(fmt)) if fmt != "float32" else np.concatenate(
        [sweep.inputs("float32", int(b), int(b) + 1) for b in rng.integers(0, 2**32, 4000, dtype=np.uint64)]
        + [sweep.inputs("float32", 0, 4096), sweep.inputs("float32", 0x7F7FF000, 0x7F800000)])
    x = np.abs(x[np.isfinite(x)])
    from oracles.formats import get_format

    mid = x + sweep._ulp(x, get_format(fmt)) / 2  # the midpoint above x: a tie (exact in binary64)
    assert not np.array_equal(fast.round_array(np.nextafter(mid, np.inf), fmt), x)  # next value: not x
    v = np.concatenate([x, mid, np.nextafter(mid, np.inf), np.nextafter(mid, -np.inf), -mid])
    a, b = U._round(v, fmt), fast.round_array(v, fmt)
    assert np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b))
    bound = np.abs(v) * rng.choice([0.0, 2.0**-40, 2.0**-20, 2.0**-9], v.size)
    for sign in (1, -1):
        got, ok = U.certify(v, bound, fmt, sign)
        want, ok2 = fast.certify(v, bound, fmt, np.full(v.size, sign))
        assert np.array_equal(ok, ok2)
        assert np.array_equal(got[ok], want[ok]) and np.array_equal(np.signbit(got[ok]), np.signbit(want[ok]))
