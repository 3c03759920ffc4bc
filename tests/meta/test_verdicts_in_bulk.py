"""The verdicts in bulk (lossproof/measure.py ``_verdicts``): the fast paths' roundings and midpoints asked for all
numbers at once (``oracles.exact.decide_many`` / ``enclose_many``, the sources' ``decide_many`` / ``enclose_many``)
and a correctly rounded number's ULP error in binary64 (``_ulps_many``) must give exactly what the per-number
``_verdict`` gives: the same verdict, ULP error (bit for bit), bits, rounding and decidedness.

- ``_ulps_many`` against mpmath's RU53(RN80(|y - mid|) 2**-k) on adversarial triples: remainders beside half an
  80-bit spacing, midpoints at powers of two with a tail of the other sign, zero errors, extreme magnitudes;
- ``fast.enclosed_many`` against the scalar acceptance test (relative width, one binade) at its limits;
- ``fast.ordinal_array`` (the bits of error of the rest) against ``formats.ordinal``, every kind of value;
- whole measurements, bulk against per number, on the fast-measure meta-test's calls (every regime, every format,
  roundings, neighbours and far values of the exact result), values and gradients.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from mpmath import libmp

import oracles
from lossproof import measure as M
from lossproof import profiles
from oracles import fast
from oracles.formats import get_format, ordinal, round_to_format
from tests.meta.test_fast_measure import FMTS, _calls, _flat

R80 = 80


def _scalar_ulps(y, hi, lo, f):
    mid = libmp.mpf_add(libmp.from_float(hi), libmp.from_float(lo), 0)
    err = libmp.mpf_abs(libmp.mpf_sub(libmp.from_float(y), mid, R80, "n"))
    try:
        return libmp.to_float(libmp.mpf_shift(err, -M._ulp_exp(mid, f)), rnd="u")
    except OverflowError:
        return math.inf


def _triples(rng, n):
    """(y, hi, lo): y a binary64 near hi + lo, at the places where RN80 and RU53 can disagree with a naive answer."""
    for _ in range(n):
        e = rng.choice([0, 1, -1, 10, -30, 300, -300, -1000, 1000, rng.randint(-1020, 1020)])
        kind = rng.choice(["random", "pow2", "pow2-below", "tie80", "near80", "equal", "far", "zero-mid"])
        hi = math.ldexp(rng.uniform(1, 2), e) * rng.choice([1, -1])
        if kind in ("pow2", "pow2-below"):
            hi = math.copysign(math.ldexp(1.0, e), hi)
        ulp = math.ulp(hi)
        lo = rng.choice([0.0, rng.uniform(-0.5, 0.5) * ulp, ulp / 4, -ulp / 4, math.ldexp(ulp, -30)])
        if kind == "pow2-below":
            lo = -math.copysign(abs(lo) or ulp / 8, hi)
        if kind == "zero-mid":
            hi, lo = 0.0, 0.0
        y = hi + rng.choice([0, 1, -1, 2, -3, 100]) * ulp
        if kind == "equal":
            y = hi
        elif kind == "far":
            y = rng.choice([0.0, -hi, hi * 3, math.ldexp(hi, -40)])
        elif kind in ("tie80", "near80"):
            # |y - mid| = A + R with R at (tie80) or beside (near80) half an 80-bit spacing at A
            A = math.ldexp(1.0, e - 20) * rng.choice([1.0, 1.5, 1.75])
            h = math.ldexp(1.0, math.frexp(A)[1] - 1 - 80)
            y = hi + A
            lo = -(rng.choice([h, 2 * h, 4 * h, h / 2, 3 * h, -h, -3 * h]) if kind == "tie80" else
                   rng.choice([1, -1]) * rng.uniform(0, 8) * h)
            if not math.isfinite(y):
                continue
            if abs(lo) >= math.ulp(hi) / 2:
                continue  # not a normalised tail: still exact, but not what the sources give
        if math.isfinite(y) and math.isfinite(hi) and math.isfinite(lo):
            yield y, hi, lo


@pytest.mark.parametrize("fmt", FMTS)
def test_ulps_in_binary64_are_mpmaths_to_the_bit(fmt):
    f = get_format(fmt)
    rng = random.Random(f"ulps-{fmt}")
    trip = list(_triples(rng, 20 * profiles.current().meta_examples))
    y, hi, lo = (np.array(v) for v in zip(*trip))
    ulps, ok = M._ulps_many(y, hi, lo, f)
    answered = 0
    for (yi, hi_i, lo_i), u, good in zip(trip, ulps.tolist(), ok.tolist()):
        if good:
            answered += 1
            want = _scalar_ulps(yi, hi_i, lo_i, f)
            assert u == want, (yi.hex(), hi_i.hex(), lo_i.hex(), u, want)
    # the adversarial share is large on purpose; most still answer (a pass must have compared something)
    assert answered >= 0.6 * len(trip), (answered, len(trip))


def _scalar_enclosed(hi, lo, rad, rel_bits, one_binade):
    mid = libmp.mpf_add(libmp.from_float(hi), libmp.from_float(lo), 0)
    if rad == 0:
        return True
    r = libmp.from_float(rad)
    if not mid[1] or libmp.mpf_cmp(libmp.mpf_shift(libmp.mpf_abs(mid), -rel_bits), r) < 0:
        return False
    return fast._one_binade(mid, r) if one_binade else True


@pytest.mark.parametrize("one_binade", [False, True])
def test_the_bulk_enclosure_test_never_contradicts_the_scalar_one(one_binade):
    rng = random.Random(f"enclosed-{one_binade}")
    rows = []
    for _ in range(20 * profiles.current().meta_examples):
        e = rng.choice([0, 5, -60, 700, -700, rng.randint(-1000, 1000)])
        hi = math.ldexp(rng.choice([1.0, rng.uniform(1, 2), math.nextafter(2.0, 0)]), e) * rng.choice([1, -1])
        lo = rng.choice([0.0, math.ulp(hi) / 4, -math.ulp(hi) / 4, -math.ulp(hi) / 2 * 0.999])
        rel = rng.choice([24 + 24, 53 + 24, 64])
        width = abs(hi) * 2.0**-rel
        rad = rng.choice([0.0, width, width * (1 + 2.0**-52), width * (1 - 2.0**-52), width / 3, width * 3])
        if rng.random() < 0.3:  # the distance to the binade's edge, exactly or beside it
            P = math.ldexp(1.0, math.frexp(abs(hi))[1] - 1)
            d = abs(hi) - P + math.copysign(1, hi) * lo
            if d > 0:
                rad = rng.choice([d, math.nextafter(d, 0), math.nextafter(d, math.inf)])
        rows.append((hi, lo, rad, rel))
    yes_n = no_n = 0
    for rel in {r[3] for r in rows}:
        part = [r for r in rows if r[3] == rel]
        hi, lo, rad = (np.array(v) for v in list(zip(*part))[:3])
        yes, no = fast.enclosed_many(hi, lo, rad, rel, one_binade)
        for (h, low, r, _), y_, n_ in zip(part, yes.tolist(), no.tolist()):
            assert not (y_ and n_)
            if y_ or n_:
                assert _scalar_enclosed(h, low, r, rel, one_binade) == y_, (h.hex(), low.hex(), r.hex(), rel)
            yes_n += y_
            no_n += n_
    assert yes_n > 100 and no_n > 100, (yes_n, no_n)


@pytest.mark.parametrize("fmt", FMTS)
def test_ordinals_from_bit_patterns_are_the_formats_ordinals(fmt):
    f = get_format(fmt)
    rng = random.Random(f"ordinals-{fmt}")
    special = [0.0, -0.0, f.min_subnormal, -f.min_subnormal, f.min_normal, math.nextafter(f.min_normal, 0),
               f.max_finite, -f.max_finite, 1.0, -1.0]
    xs = special + [round_to_format(rng.choice([1, -1]) * math.ldexp(rng.random(), rng.randint(-1100, 1023)), fmt)
                    for _ in range(20 * profiles.current().meta_examples)]
    xs += [math.inf, math.nan, 0.1 if fmt != "float64" else math.inf]  # not finite values of the format
    ords, ok = fast.ordinal_array(xs, fmt)
    for x, o, good in zip(xs, ords.tolist(), ok.tolist()):
        finite_member = math.isfinite(x) and round_to_format(x, fmt) == x
        assert good == finite_member, (fmt, x)
        if good:
            assert o == ordinal(x, fmt), (fmt, x.hex(), o, ordinal(x, fmt))


def _per_number(ys, zs, f, allowances):
    return [M._verdict(y, z, f, a) for y, z, a in zip(ys, zs, allowances)]


def _ys(rng, out, fmt):
    """A subject's results: mostly the exact rounding, else a neighbour, a far value, a zero of either sign."""
    ys = []
    for e in out:
        try:
            r = e.to(fmt)
        except oracles.OraclePrecisionError:
            r = 0.0
        pick = rng.random()
        if pick < 0.6 or not math.isfinite(r):
            ys.append(r)
        elif pick < 0.8:
            ys.append(round_to_format(r * (1 + rng.choice([2.0**-20, -(2.0**-8), 2.0**-60])), fmt))
        else:
            ys.append(rng.choice([0.0, -0.0, -r, round_to_format(r * 3, fmt), math.nan, math.inf]))
    return ys


def _assert_same_elements(bulk, one, context) -> int:
    """Every element of two measurements of one call has the same verdict, ULP error, bits, rounding (its sign too:
    -0.0 == 0.0 in Python, and a zero's sign is part of RN(z)) and decidedness; a NaN rounding equals a NaN one.
    Returns how many elements were compared."""
    n = 0
    for a, b in zip(bulk.elements, one.elements, strict=True):
        got = (a.verdict, a.ulp_error, a.bits, a.z_rounded, math.copysign(1, a.z_rounded), a.decided)
        want = (b.verdict, b.ulp_error, b.bits, b.z_rounded, math.copysign(1, b.z_rounded), b.decided)
        assert got == want or (math.isnan(a.z_rounded) and math.isnan(b.z_rounded) and got[:3] == want[:3]
                               and got[5] == want[5]), (*context, a.kind, a.index, got, want)
        n += 1
    return n


@pytest.mark.parametrize("fmt", FMTS)
def test_measurements_in_bulk_are_the_per_number_measurements(fmt, monkeypatch):
    rng = random.Random(f"bulk-{fmt}")
    compared = quick = 0
    for name, kw in _calls(rng, profiles.current().meta_examples // 4):
        with fast.disabled():
            ys = _ys(rng, _flat(oracles.REGISTRY[name](**kw)), fmt)
        n_in = len(_flat(kw["input"]))
        grads = _ys(rng, M.exact_gradient(name, kw, oracles.REGISTRY[name](**kw), n_in), fmt)
        bulk = M.measure("s", name, fmt, "cpu", kw, ys, grads)
        with monkeypatch.context() as mp:
            mp.setattr(M, "_verdicts", _per_number)
            one = M.measure("s", name, fmt, "cpu", kw, ys, grads)
        compared += _assert_same_elements(bulk, one, (name, kw, fmt))
        quick += sum(a.verdict == "correctly_rounded" for a in bulk.elements)
    assert compared > 1000 and quick > 300, (compared, quick)


#: rows whose finite logits are all equal (the battery's edge problems hold such rows at every size): softmax
#: 1/k and rational gradients, 2 <= k a power of two among them
EQUAL_ROWS = ([[1.5] * 8, [0.25, -math.inf, 0.25, 0.25, 0.25, -math.inf, 0.25, -math.inf]],
              [[-3.0] * 512], [[7.0, 7.0], [7.0, 7.0]], [[2.0, 2.0, 2.0], [0.0, 1.0, 2.0]])


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("rows", EQUAL_ROWS, ids=lambda r: f"{len(r)}x{len(r[0])}")
def test_numbers_exact_by_their_form_are_measured_in_bulk(fmt, rows, monkeypatch):
    """Softmax's 1/k on a row of k equal logits (k a power of two) and a gradient component that is rational by
    its form (an exact row's, a masked entry's, an exact Fraction) used to reach ``_verdict`` one at a time:
    their enclosures straddle a power of two, or their source has no vectorised level, so no midpoint came in
    bulk, and each went to mpmath or to Fraction arithmetic (300 us and 90 us each, 13% of a torch battery cell's
    time). Now every correctly rounded one is measured in bulk, and every number as the per-number path does."""
    C = len(rows[0])
    calls = [("softmax", {"input": rows, "dim": 1}), ("log_softmax", {"input": rows, "dim": 1}),
             ("cross_entropy", {"input": rows, "target": [0] * len(rows), "reduction": "sum"}),
             ("cross_entropy", {"input": rows, "target": [(C - 1) // 2] * len(rows), "reduction": "none"})]
    one_at_a_time = []
    real = M._verdict

    def counted(y, z, f, allowances, mid=None, bits=None):
        got = real(y, z, f, allowances, mid, bits)
        if not z.is_special:  # a special value (-inf at a masked logit) is cheap, and always taken one at a time
            one_at_a_time.append((got[0], z))
        return got

    measured = 0
    for name, kw in calls:
        out = oracles.REGISTRY[name](**kw)
        ys = [e.to(fmt) for e in _flat(out)]  # correctly rounded outputs, and gradients
        grads = [g.to(fmt) for g in M.exact_gradient(name, kw, out, len(_flat(kw["input"])))]
        with monkeypatch.context() as mp:
            mp.setattr(M, "_verdict", counted)
            bulk = M.measure("s", name, fmt, "cpu", kw, ys, grads)
        with monkeypatch.context() as mp:
            mp.setattr(M, "_verdicts", _per_number)
            one = M.measure("s", name, fmt, "cpu", kw, ys, grads)
        measured += _assert_same_elements(bulk, one, (name, fmt))
    assert measured >= 4 * len(rows) * C
    # the values and gradients of the rows that are not all equal may still go one at a time (a wide enclosure)
    exact_rows = all(len({v for v in r if v != -math.inf}) == 1 for r in rows)
    if exact_rows:
        assert one_at_a_time == [], one_at_a_time[:5]
