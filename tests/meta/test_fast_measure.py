"""The fast path's answers to a measurement (oracles/fast.py, ``_Source``): what lossproof/measure.py asks of a value
without building its expression, checked against the mpmath path's exact quantities.

- ``magnitude``: a rigorous upper bound of |z|, never below it (checked against the exact value as a Fraction);
- ``kappa_magnitude``: a rigorous upper bound of the condition number, never below the exact kappa, and above it by
  at most the derived slack of steps K1-K3 (relative 2**-29 plus the absolute floor) so that the accurate rung's
  allowance is the same to 29 bits;
- ``enclose``: a ball that contains the exact value (the mpmath path's own narrow enclosure lies inside it) and is
  as narrow as asked;
- and the whole measurement: ``lossproof.measure.measure`` gives the same verdicts, roundings and bits with the
  fast path on as with it off (``fast.disabled``), on rows of every regime, for every function the fast path takes.

Sizes: the profile's ``meta_examples`` calls per function (100 under ci), a quarter of them measured in each
format: about 25 s on one core.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from mpmath import libmp

import oracles
from lossproof import profiles
from lossproof.measure import measure
from oracles import fast
from oracles.formats import round_to_format

FMTS = ["float64", "float32", "float16", "bfloat16"]
#: the slack of step K3 (2**-30 + 32 C u, C <= 64 here) with room for the absolute floor: relative 2**-29
KAPPA_SLACK = Fraction(1, 2**29)


def _flat(r):
    return [e for x in r for e in _flat(x)] if isinstance(r, list) else [r]


def _fr(mpf):
    """An mpf as a Fraction; magnitudes below 2**-1100 (e**-(1e300) and such) as 2**-1100 with their sign: every
    binary64 bound compared with them is 0 or at least 2**-1074, so the comparisons below keep their outcome."""
    sign, man, e, bc = mpf
    if not man:
        return Fraction(0)
    if e + bc < -1100:
        q = Fraction(1, 2**1100)
    else:
        q = Fraction(int(man) * 2**e) if e >= 0 else Fraction(int(man), 2**-e)
    return -q if sign else q


def _row(rng, C):
    kind = rng.choice(["normal", "wide", "huge", "tied", "dominant", "masked"])
    if kind == "normal":
        r = [rng.gauss(0, 3) for _ in range(C)]
    elif kind == "wide":
        r = [rng.uniform(-200, 200) for _ in range(C)]
    elif kind == "huge":
        r = [rng.choice([-1, 1]) * 10.0 ** rng.uniform(0, 300) for _ in range(C)]
    elif kind == "tied":
        v = rng.uniform(-50, 50)
        r = [v] * C
    elif kind == "dominant":
        r = [rng.uniform(-3, 3) for _ in range(C)]
        r[rng.randrange(C)] = 80.0
    else:
        r = [rng.gauss(0, 5) for _ in range(C)]
        for j in rng.sample(range(C), rng.randrange(0, C)):
            r[j] = -math.inf
    return r


def _calls(rng, n):
    """(oracle name, kwargs) of every kind the fast path takes, n of each (ones it leaves to mpmath among them)."""
    for i in range(n):
        C = rng.choice([1, 2, 3, 7, 64])
        M = rng.choice([1, 2, 4])
        x = [_row(rng, C) for _ in range(M)]
        finite_x = [[v if math.isfinite(v) else -30.0 for v in r] for r in x]
        yield "log_softmax", {"input": x, "dim": -1}
        yield "softmax", {"input": x, "dim": rng.choice([0, 1])}
        yield "logsumexp", {"input": x, "dim": -1}
        t = [rng.randrange(C) for _ in range(M)]
        w = [rng.choice([1.0, 0.5, 3.0, -2.0]) for _ in range(C)] if rng.random() < 0.5 else None
        red = rng.choice(["none", "sum", "mean"])
        if red == "mean" and w is not None and sum(w[c] for c in t) == 0:
            red = "sum"
        yield "cross_entropy", {"input": finite_x, "target": t, "weight": w, "reduction": red}
        yield "nll_loss", {"input": finite_x, "target": t, "weight": w, "reduction": red}
        # probability targets and label smoothing (fast.py step 12): one-hot, random and softmax-like targets
        eps = rng.choice([0.0, 0.1, 0.25, 1.0])
        if C > 1:
            yield "cross_entropy", {"input": finite_x, "target": t, "weight": w, "reduction": red,
                                    "label_smoothing": eps or 0.1}
        probs = []
        for _ in range(M):
            kind = rng.choice(["onehot", "random", "zeros"])
            row = [0.0] * C
            if kind == "onehot":
                row[rng.randrange(C)] = 1.0
            elif kind == "random":
                row = [rng.random() for _ in range(C)]
            probs.append(row)
        red_p = "sum" if red == "mean" and M == 0 else red
        yield "cross_entropy", {"input": finite_x, "target": probs, "weight": w, "reduction": red_p,
                                "label_smoothing": eps}


def _pairs(name, kw):
    fast_r = _flat(oracles.REGISTRY[name](**kw))
    with fast.disabled():
        exact_r = _flat(oracles.REGISTRY[name](**kw))
    return list(zip(fast_r, exact_r))


def test_magnitude_kappa_and_enclosure_bound_the_exact_quantities():
    rng = random.Random(20261203)
    asked = {"magnitude": 0, "kappa": 0, "enclose": 0}
    for name, kw in _calls(rng, profiles.current().meta_examples):
        for fz, ez in _pairs(name, kw):
            if ez.is_special:
                continue
            exact = _fr(ez.enclose(200)[0])  # within 2**-200 relative: far inside every slack below
            mag = fz.magnitude_bound()
            if mag is not None:
                asked["magnitude"] += 1
                assert Fraction(mag) >= abs(exact) * (1 - Fraction(1, 2**190)), (name, kw, mag, float(exact))
            kap = fz.kappa_bound()
            if kap is not None:
                asked["kappa"] += 1
                kz = ez.kappa
                k_exact = Fraction(0) if kz.is_special else _fr(kz.enclose(200)[0])
                assert Fraction(kap) >= k_exact * (1 - Fraction(1, 2**190)), (name, kw, kap, float(k_exact))
                assert Fraction(kap) <= k_exact * (1 + KAPPA_SLACK), \
                    (name, kw, kap, float(k_exact))
            for bits in (40, 77):
                ball = fz._ask_source("enclose", bits)
                if ball is None:
                    continue
                asked["enclose"] += 1
                mid, rad = _fr(ball[0]), _fr(ball[1])
                assert rad <= abs(mid) * Fraction(1, 2**bits) or rad == 0
                assert abs(exact - mid) <= rad + abs(exact) * Fraction(1, 2**190), (name, kw, bits)
    print(f"\nanswered without expressions: {asked}")
    assert min(asked.values()) > 1000, asked  # the sources answer nearly every finite output


@pytest.mark.parametrize("fmt", FMTS)
def test_measurements_are_the_same_with_the_fast_answers(fmt):
    rng = random.Random(fmt)
    compared = 0
    for name, kw in _calls(rng, profiles.current().meta_examples // 4):
        out = _flat(oracles.REGISTRY[name](**kw))
        with fast.disabled():  # the exact rounding, or a format value 2**-20 or 2**-8 away from it
            ys = [round_to_format(e.to(fmt) * (1 + rng.choice([0, 0, 2.0**-20, -(2.0**-8)])), fmt) for e in out]
        m_fast = measure("s", name, fmt, "cpu", kw, ys)
        with fast.disabled():
            m_slow = measure("s", name, fmt, "cpu", kw, ys)
        for a, b in zip(m_fast.elements, m_slow.elements):
            assert (a.verdict, a.z_rounded, a.bits, a.decided) == (b.verdict, b.z_rounded, b.bits, b.decided) or \
                (math.isnan(a.z_rounded) and math.isnan(b.z_rounded)), (name, kw, fmt, a, b)
            # the error in ULP is measured from a midpoint within 2**-(p + 24) relative of z: the same to 2**-20,
            # or twice or half of it beside a power of two, where the mpmath path's midpoint may sit in the other
            # binade (z = 1 - 2**-115 enclosed at 93 bits has the midpoint 1.0: an ULP of 2**-52, not 2**-53); the
            # fast ball lies within one binade (fast._one_binade), so its reading is the exact value's
            same = abs(a.ulp_error - b.ulp_error) <= 2.0**-20 * max(1.0, b.ulp_error)
            binade = math.frexp(abs(a.z_rounded))[0] == 0.5 and any(
                abs(a.ulp_error - r * b.ulp_error) <= 2.0**-20 * a.ulp_error for r in (2.0, 0.5))
            assert a.ulp_error == b.ulp_error or same or binade, (name, kw, fmt, a, b)
            compared += 1
    assert compared > 1000


def test_a_source_never_answers_for_a_special_value():
    r = oracles.log_softmax([[0.0, -math.inf]], dim=-1)
    masked = r[0][1]
    assert masked.is_special and masked.magnitude_bound() is None and masked.kappa_bound() is None
    assert r[0][0].enclose(60) == (libmp.fzero, libmp.fzero)  # the one finite entry: exactly 0


@pytest.mark.parametrize("fmt", FMTS)
def test_mixed_targets_round_as_the_mpmath_path(fmt):
    """fast.py step 12 (probability targets, label smoothing): every rounding it decides is the mpmath path's."""
    rng = random.Random(f"mixed-{fmt}")
    decided = total = 0
    for _ in range(profiles.current().meta_examples):
        C, M = rng.choice([2, 3, 10, 100]), rng.choice([1, 3])
        x = [_row(rng, C) for _ in range(M)]
        x = [[v if math.isfinite(v) else -30.0 for v in r] for r in x]
        eps = rng.choice([0.0, 0.05, 0.5, 1.0])
        w = [rng.choice([1.0, 0.25, 7.0]) for _ in range(C)] if rng.random() < 0.5 else None
        if rng.random() < 0.5:
            t = [[rng.random() * rng.choice([1, 0]) for _ in range(C)] for _ in range(M)]
        else:
            t = [rng.randrange(C) for _ in range(M)]
            eps = eps or 0.3
        kw = {"input": x, "target": t, "weight": w, "label_smoothing": eps,
              "reduction": rng.choice(["none", "sum", "mean"])}
        with fast.counting() as c:
            got = [e.to(fmt) for e in _flat(oracles.cross_entropy(**kw))]
        with fast.disabled():
            want = [e.to(fmt) for e in _flat(oracles.cross_entropy(**kw))]
        assert [v.hex() for v in got] == [v.hex() for v in want], (kw, fmt)
        decided += c["decided"]
        total += c["decided"] + c["fallback"]
    print(f"\n{fmt}: {decided} of {total} roundings decided by the binary64 bound")
    if fmt != "float64":  # float64 has no double-double evaluation here: most of it is left to mpmath, by design
        assert decided >= 0.9 * total, (decided, total)
