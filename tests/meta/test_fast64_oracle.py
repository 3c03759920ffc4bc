"""The float64 fast path (oracles/fast64.py, double-double) agrees with the mpmath path, bit for bit.

What is proved here, and how:
- the dd exp (steps 2-5 of the analysis in oracles/fast64.py) stays within its bound EPS_E + RHO_R (1 + |d|)
  relative (+ TAU_E), and the quick exp (step Q1) within EPS_Q + RHO_Q0 + RHO_Q1 |d|, on a sample of arguments,
  against mpmath at 200 bits; the worst observed errors are printed (evidence: the derivation is in the
  docstring); each of the two evaluations alone agrees with mpmath and decides nearly all random rows;
- the dd add, dd times double and dd division stay within the charges DELTA_ADD / DELTA_MUL / DELTA_DIV, checked
  with exact rationals;
- ``certify64`` never claims a rounding that an end of the enclosure does not have (exact rationals), and
  decides the easy cases (so it is not vacuous); ``certify64_offsets`` likewise with ties and open ends, and
  rows whose x - m is exactly a binary64 midpoint are decided by L's side (step 13), which a check without it
  does not do;
- on random float64 rows (normal, scaled, masked with -inf, tiny, huge logits; C from 2 to a few thousand) and on
  the regimes of tests/meta/test_fast_oracle.py, every float64 rounding of log_softmax, softmax, logsumexp,
  cross_entropy and nll_loss (reductions none / sum / mean, weighted or not) that the fast path decides equals
  the mpmath path's (``fast.disabled()``); the fallback rate is printed, and asserted below 1% on random rows;
- adversarial rows whose exact result lies at chosen distances (down to 2**-60 relative) from a float64
  rounding boundary, subnormal softmax results and huge logits: zero disagreements.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import oracles
from oracles import fast, fast64
from oracles.formats import _round_fraction, get_format
from tests.meta.test_fast_oracle import _adversarial, _compare, _hex, _problems, _repr

F64 = get_format("float64")


def _ddq(h, lo):
    return Fraction(float(h)) + Fraction(float(lo))


# --------------------------------------------------------------------------------------------------
# building blocks


def test_exp_dd_meets_its_bound(capsys):
    rng = np.random.default_rng(3)
    d = np.concatenate([-rng.exponential(3.0, 1500), rng.uniform(-745.2, 0, 600), -(10.0 ** rng.uniform(-300, 0, 300)),
                        rng.uniform(-745.3, -700, 200), np.array([0.0, -0.0, -745.13321910194122, -708.4, -1e-300])])
    d = np.minimum(d, 0.0)
    dl = np.zeros_like(d)
    Eh, El, _ = fast64.exp_dd(d, dl)
    worst = 0.0
    with mpmath.workprec(200):
        for x, h, lo in zip(d.tolist(), Eh.tolist(), El.tolist()):
            z = mpmath.exp(mpmath.mpf(x))
            err = abs(mpmath.mpf(h) + mpmath.mpf(lo) - z)
            allowed = z * (fast64.EPS_E + fast64.RHO_R * (1 + abs(x))) + fast64.TAU_E
            assert err <= allowed, f"exp_dd({x!r}) = {h!r} + {lo!r}, exact {z}"
            if z > 2.0**-900:
                worst = max(worst, float(err / z / 2.0**-100))
    with capsys.disabled():
        print(f"\nexp_dd: worst observed relative error {worst:.3f} * 2**-100 (bound {2.0**-96.3 / 2.0**-100:.1f})")
    assert worst < 2.0**3.7


def test_exp_quick_meets_its_bound(capsys):
    rng = np.random.default_rng(4)
    d = np.concatenate([-rng.exponential(3.0, 1500), rng.uniform(-745.2, 0, 600), -(10.0 ** rng.uniform(-300, 0, 300)),
                        rng.uniform(-745.3, -690, 200), np.array([0.0, -0.0, -745.13321910194122, -708.4])])
    d = np.minimum(d, 0.0)
    A, B, _ = fast64.exp_quick(d, np.zeros_like(d))
    worst = 0.0
    with mpmath.workprec(200):
        for x, a, b in zip(d.tolist(), A.tolist(), B.tolist()):
            z = mpmath.exp(mpmath.mpf(x))
            err = abs(mpmath.mpf(a) + mpmath.mpf(b) - z)
            allowed = z * (fast64.EPS_Q + fast64.RHO_Q0 + fast64.RHO_Q1 * abs(x)) + fast64.TAU_E
            assert err <= allowed, f"exp_quick({x!r}) = {a!r} + {b!r}, exact {z}"
            if z > 2.0**-900:
                worst = max(worst, float(err / z / 2.0**-64.5))
    with capsys.disabled():
        print(f"\nexp_quick: worst observed relative error {worst:.3f} * 2**-64.5 (the bound's EPS_Q)")


@pytest.mark.parametrize("tier", ["quick", "accurate"])
def test_each_dd_tier_alone_agrees_with_mpmath(tier, monkeypatch, capsys):
    """Each evaluation on its own (the other made to decide nothing): zero disagreements, and each decides
    nearly all random rows, so neither is a dead branch behind the other."""
    real = fast._Source._certify_dd

    def only(self, f, quick):
        values, ok = real(self, f, quick)
        return values, ok & ((tier == "quick") == quick)

    monkeypatch.setattr(fast._Source, "_certify_dd", only)
    rng = np.random.default_rng(99 if tier == "quick" else 98)
    d = fb = rows = 0
    for i in range(150):
        name = NAMES[i % len(NAMES)]
        n = int(rng.integers(1, 8))
        C = int(rng.integers(2, 9)) if rng.random() < 0.8 else int(rng.integers(9, 400))
        got = _compare(name, _kwargs(rng, name, _random64(rng, n, C)), ["float64"])["float64"]
        d, fb, rows = d + got[0], fb + got[1], rows + n
    _report(f"fast64 ({tier} evaluation only) vs mpmath, random rows", d, fb, rows, capsys)
    assert d > 1000 and fb <= 0.02 * (d + fb), (d, fb)


def test_dd_operations_stay_within_their_charges():
    rng = random.Random(5)

    def dd(x):
        h = float(x)
        return h, float(x - Fraction(h))

    for _ in range(3000):
        a = Fraction(rng.uniform(-1, 1)) * Fraction(2) ** rng.randint(-60, 60) * (1 + Fraction(rng.random()) / 2**60)
        b = Fraction(rng.uniform(-1, 1)) * Fraction(2) ** rng.randint(-60, 60) * (1 + Fraction(rng.random()) / 2**60)
        (ah, al), (bh, bl) = dd(a), dd(b)
        A, B = _ddq(ah, al), _ddq(bh, bl)
        arr = [np.array([v]) for v in (ah, al, bh, bl)]
        zh, zl = fast64.dd_add(*arr)
        assert abs(_ddq(zh[0], zl[0]) - (A + B)) <= Fraction(fast64.DELTA_ADD) * abs(A + B)
        zh, zl = fast64.dd_mul_d(arr[0], arr[1], arr[2])
        assert abs(_ddq(zh[0], zl[0]) - A * Fraction(bh)) <= Fraction(fast64.DELTA_MUL) * abs(A * Fraction(bh))
        if B != 0:
            zh, zl = fast64.dd_div(*arr)
            assert abs(_ddq(zh[0], zl[0]) - A / B) <= Fraction(fast64.DELTA_DIV) * abs(A / B)


def _hard64(rng, n):
    """float64 values of every kind: normal, tiny, subnormal, near the overflow threshold; and the midpoint
    offsets that make a dd enclosure hard."""
    vals = []
    for _ in range(n):
        e = rng.choice([rng.randint(-1074, -1020), rng.randint(-1000, 1000), rng.randint(1000, 1023)])
        v = math.ldexp(1 + rng.random(), e) if e > -1074 else 5e-324 * rng.randint(1, 8)
        vals += [v, -v]
    return vals + [0.0, 5e-324, -5e-324, 1.7976931348623157e308, 2.0**-1022]


def test_certify64_claims_only_what_every_point_of_the_enclosure_rounds_to():
    rng = random.Random(17)
    his, los, bounds, signs = [], [], [], []
    for c in _hard64(rng, 400):
        ulp = math.ulp(c)
        for lo_rel in (0.0, 0.25, 0.49, 0.5, -0.5, -0.25, 0.499999):
            for b_rel in (0.0, 2.0**-40, 2.0**-10, 0.01, 0.3, 0.5, 2.0):
                lo = ulp * lo_rel
                his.append(c)
                los.append(lo)
                bounds.append(ulp * b_rel)
                signs.append(rng.choice([0, 1, -1]) if c == 0 else (1 if c > 0 else -1))
    values, ok = fast64.certify64(np.array(his), np.array(los), np.array(bounds), np.array(signs))
    assert ok.sum() > len(his) // 4 and not ok.all()
    for h, lo, b, s, v, k in zip(his, los, bounds, signs, values.tolist(), ok.tolist()):
        if not k:
            continue
        mid = Fraction(h) + Fraction(lo)
        if b == 0:  # exact; an exact zero is +0.0 unless the caller knows the value is negative (step 7b)
            want = _round_fraction(mid, F64) if mid else (-0.0 if s < 0 else 0.0)
            assert _hex(v) == _hex(want), (h, lo, b)
            continue
        for end in (mid - Fraction(b), mid + Fraction(b)):
            if end == 0 or (s > 0 and end < 0) or (s < 0 and end > 0):
                assert s != 0 and v == 0 and math.copysign(1, v) == s, (h, lo, b, s, v)
                continue
            r = _round_fraction(end, F64)
            assert _hex(r) == _hex(v), f"certified {_hex(v)} for {h!r} + {lo!r} +- {b!r}: {float(end)!r} -> {_hex(r)}"


def test_certify64_offsets_breaks_ties_by_the_side_of_the_offset():
    """hi + lo exactly a binary64 midpoint (or a value), offsets on one side of it (closed or open ends, down to
    0 and 5e-324): every decided rounding is checked at both ends (an open end just inside) with rationals."""
    rng = random.Random(23)
    rows = []
    for c in _hard64(rng, 300):
        if c == 0 or abs(c) >= 1.7e308:
            continue
        ulp = math.ulp(c)
        for lo in (ulp / 2, -ulp / 2, ulp / 4, 0.0):
            if lo and abs(lo) < 5e-324:
                continue
            for a, b, o_lo, o_hi in ((-ulp * 0.1, -5e-324, False, False), (-ulp * 0.1, 0.0, False, True),
                                     (0.0, ulp * 0.1, True, False), (5e-324, ulp * 0.3, False, False),
                                     (0.0, 0.0, True, True), (-ulp, ulp, False, False), (0.0, 5e-324, True, False)):
                rows.append((c, lo, a, b, o_lo, o_hi))
    cols = [np.array(v) for v in zip(*rows)]
    sign = np.where(cols[0] > 0, 1, -1)
    values, ok = fast64.certify64_offsets(cols[0], cols[1], cols[2], cols[3], sign, cols[4], cols[5])
    assert ok.sum() > len(rows) // 4 and not ok.all()
    eps = Fraction(1, 2**2000)
    for (c, lo, a, b, o_lo, o_hi), v, k in zip(rows, values.tolist(), ok.tolist()):
        if not k:
            continue
        mid = Fraction(c) + Fraction(lo)
        lo_end = mid + Fraction(a) + (eps if o_lo else 0)
        hi_end = mid + Fraction(b) - (eps if o_hi else 0)
        if lo_end > hi_end:
            continue  # an empty interval: nothing to check
        for end in (lo_end, hi_end):
            r = _round_fraction(end, F64)
            assert _hex(r) == _hex(v), (f"certified {_hex(v)} for {c!r} + {lo!r} + [{a!r}, {b!r}] "
                                        f"(open {o_lo}, {o_hi}): {float(end)!r} -> {_hex(r)}")


# --------------------------------------------------------------------------------------------------
# rows


def _random64(rng, n, C):
    """n rows of C random float64 logits (not exact in a lower format), of a random kind."""
    kind = rng.choice(["normal", "scaled", "mask", "tiny", "huge", "wide"])
    x = rng.standard_normal((n, C))
    if kind == "scaled":
        x *= 10.0 ** rng.uniform(-3, 3)
    elif kind == "mask":
        x[rng.random((n, C)) < 0.4] = -np.inf
        x[np.arange(n), rng.integers(0, C, n)] = rng.standard_normal(n)
    elif kind == "tiny":
        x *= 10.0 ** rng.uniform(-300, -20)
    elif kind == "huge":
        x = x * 10.0 ** rng.uniform(100, 300)
    elif kind == "wide":
        x = x * rng.uniform(100, 400)  # entries far below the max: terms down to underflow
    return x


def _kwargs(rng, name, x):
    n, C = x.shape
    if name in ("log_softmax", "softmax"):
        return {"input": x, "dim": 1}
    if name == "logsumexp":
        return {"input": x, "dim": 1}
    t = rng.integers(0, C, n)
    fin = np.isfinite(x[np.arange(n), t])
    t = np.where(fin, t, np.argmax(x, axis=1))
    if rng.random() < 0.2:
        t[rng.random(n) < 0.3] = -100
        if (t == -100).all():
            t[0] = 0
    kw = {"input": x, "target": t.tolist(), "reduction": str(rng.choice(["none", "mean", "sum"]))}
    if rng.random() < 0.3:
        kw["weight"] = rng.uniform(0, 3, C)
    return kw


NAMES = ["log_softmax", "softmax", "logsumexp", "cross_entropy", "nll_loss"]


def _report(title, d, fb, rows, capsys):
    with capsys.disabled():
        print(f"\n{title}: {rows} rows, zero disagreements; float64 roundings decided by the dd path / left to "
              f"mpmath: {d} / {fb} ({fb / max(d + fb, 1):.3%})")


def test_fast64_agrees_with_mpmath_on_random_rows(capsys):
    rng = np.random.default_rng(20261203)
    d = fb = rows = 0
    for i in range(600):
        name = NAMES[i % len(NAMES)]
        n = int(rng.integers(1, 12))
        u = rng.random()
        C = int(rng.integers(2, 9)) if u < 0.8 else int(rng.integers(9, 200)) if u < 0.97 else int(
            rng.integers(200, 3000))
        kw = _kwargs(rng, name, _random64(rng, n, C))
        got = _compare(name, kw, ["float64"])["float64"]
        d, fb, rows = d + got[0], fb + got[1], rows + n
    _report("fast64 vs mpmath, random rows", d, fb, rows, capsys)
    # random values lie within the bound (~2**-95 relative) of a float64 rounding boundary about 2**-41 of
    # the time, so nearly every rounding is decided; 1% catches a bound gone loose or a branch that gives up
    assert d > 1000 and fb <= 0.01 * (d + fb), (d, fb)


def test_fast64_agrees_with_mpmath_on_the_regimes_of_the_fast_path(capsys):
    """The structured regimes of test_fast_oracle.py (inputs exact in a format, dominant logits, ties,
    offsets, thresholds) compared in float64: they sit near float64 boundaries far more often than random
    rows, so only agreement is asserted and the fallback rate is reported."""
    rng = np.random.default_rng(7)
    d = fb = rows = 0
    for name, kw, _, n in _problems(rng, 1500):
        got = _compare(name, kw, ["float64"])["float64"]
        d, fb, rows = d + got[0], fb + got[1], rows + n
    _report("fast64 vs mpmath, structured regimes", d, fb, rows, capsys)
    assert d > 0


def test_fast64_agrees_with_mpmath_near_float64_rounding_boundaries(capsys):
    rng = random.Random(41)
    d = fb = rows = 0
    for name, kw in _adversarial(rng, "float64", offsets=(0, 2.0**-60, 2.0**-52, 2.0**-48, 2.0**-44,
                                                          2.0**-40, 2.0**-36)):
        got = _compare(name, kw, ["float64"])["float64"]
        d, fb, rows = d + got[0], fb + got[1], rows + 1
    # a dominant logit: log_softmax of the rest is a format value minus a tiny L (a hair below a midpoint)
    for e in (40.0, 200.0, 700.0, 740.0, 745.0, 800.0):
        for C in (2, 5, 64):
            x = np.zeros((1, C))
            x[0, 0] = e
            x[0, 1:] = np.linspace(0, 1, C - 1) * 2.0**-30
            for name in ("log_softmax", "softmax", "cross_entropy", "logsumexp"):
                kw = {"input": x, "dim": 1} if name != "cross_entropy" else {"input": x, "target": [C - 1]}
                got = _compare(name, kw, ["float64"])["float64"]
                d, fb, rows = d + got[0], fb + got[1], rows + 1
    # huge and tiny logits, -inf entries, results at the bottom of the subnormal range
    specials = [
        [[1e308, -1e308, 0.0]], [[5e-324, -5e-324, 0.0]], [[-np.inf, 0.0, -745.0, -744.5, -740.0]],
        [[0.0, -708.0, -720.0, -745.1, -np.inf]], [[1e-300, 2e-300, -1e-300]], [[3.0, 3.0, 3.0, 3.0]],
        [[0.5, 0.5 + 2.0**-52, 0.5 - 2.0**-53]],
    ]
    for x in specials:
        for name in NAMES:
            arr = np.array(x)
            kw = {"input": arr, "dim": 1} if name in ("log_softmax", "softmax", "logsumexp") else \
                {"input": arr, "target": [int(np.argmax(arr[0]))], "reduction": "none"}
            got = _compare(name, kw, ["float64"])["float64"]
            d, fb, rows = d + got[0], fb + got[1], rows + 1
    _report("fast64 vs mpmath, near float64 rounding boundaries", d, fb, rows, capsys)
    assert d > 0


def test_ties_of_x_minus_m_shifted_by_a_tiny_L_are_decided(capsys):
    """float64 logits whose difference from the max is exactly a binary64 midpoint: m in [330, 440) (ulp 2**-44)
    and x an odd multiple of 2**-45 in [-64, 64], so x - m in (-512, -256) lies halfway between two binary64
    values; L (about e**-200) is far below the dd bound, and step 13 decides the rounding by L's side."""
    rng = np.random.default_rng(13)
    d = fb = ties = 0
    for _ in range(60):
        m = float(rng.uniform(330, 440))
        x = [m] + [(2 * int(rng.integers(-(2**50), 2**50)) + 1) * 2.0**-45 for _ in range(3)]
        for v in x[1:]:
            dh, dl = fast64.two_sum(np.array(v), np.array(-m))
            ties += abs(float(dl)) == math.ulp(float(dh)) / 2
        arr = np.array([x])
        for name, kw in (("log_softmax", {"input": arr, "dim": 1}),
                         ("cross_entropy", {"input": arr, "target": [int(rng.integers(1, 4))], "reduction": "none"}),
                         ("logsumexp", {"input": arr, "dim": 1})):
            got = _compare(name, kw, ["float64"])["float64"]
            d, fb = d + got[0], fb + got[1]
    with capsys.disabled():
        print(f"\nties shifted by a tiny L: {ties} of 180 differences are midpoints; {d} roundings decided / {fb} "
              "left to mpmath")
    assert ties == 180 and fb == 0, (ties, d, fb)


def test_a_large_row_is_decided_in_float64_without_building_expressions():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4096)) * 3
    with fast.counting() as c:
        v = oracles.cross_entropy(x, [5, 7])
        got = v.to("float64")
    assert c == {"decided": 1, "fallback": 0} and v._lazy is not None
    with fast.disabled():
        want = oracles.cross_entropy(x.tolist(), [5, 7]).to("float64")
    assert _hex(got) == _hex(want), f"reproducer: oracles.cross_entropy(**{_repr({'input': x, 'target': [5, 7]})})"


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_float64_results_of_the_deferred_path_keep_the_mpmath_gradient(name):
    """A float64 rounding decided by the dd path leaves the rest of the Exact to the mpmath path."""
    x = [[0.1, 0.2, -0.3]]
    r = oracles.REGISTRY[name](input=x, dim=1)[0][0]
    r.to("float64")
    assert r._lazy is not None
    with fast.disabled():
        ref = oracles.REGISTRY[name](input=x, dim=1)[0][0]
    assert [g.to("float64") for g in r.grad[0]] == [g.to("float64") for g in ref.grad[0]]
