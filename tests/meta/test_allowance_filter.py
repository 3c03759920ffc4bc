"""The verdict ladder's binary64 filter (lossproof/measure.py: ``_Quick``, ``_side``, ``Allowances``) gives the
answers of the exact rational comparisons it stands in for.

- ``_Quick``'s estimates are within 2**-44 of oracles/bounds.py's exact allowances (relative) wherever they lie in
  [2**-1000, 2**1000], in every format, for magnitudes from the subnormals to the overflow threshold;
- the accurate allowance's estimate with a condition number (``_Quick.accurate``, kappa rounded to binary64) is
  within 2**-44 of the exact one, and ``within_accurate`` equals the exact comparison beside it;
- the filtered comparisons (``exceeds_stable``, ``within_floor``) equal the exact ones for errors drawn at random
  and for errors placed at the exact allowance and one binary64 or a few 2**-44 steps beside it, where the filter
  must hand over to the Fractions (an error within 2**-40 of an allowance is decided exactly);
- a reduced value's estimate (``_Quick.reduced`` on ``_reduction_operands``: the fsum of the elements' binary64
  magnitude bounds, the weights and the denominator in binary64) is within 2**-44 of ``bounds.reduction_bound``
  on the exact Fractions, its filtered comparisons equal the exact ones, and whole measurements of reduced calls
  give the verdicts of the Fractions alone;
- and ``_side`` says nothing outside its range or for a missing estimate.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from mpmath import libmp

import oracles
from lossproof import measure as M
from oracles import bounds
from oracles.formats import get_format

FMTS = ["float64", "float32", "float16", "bfloat16"]


def _magnitudes(rng, n):
    out = [0.0, 5e-324, 2.0**-1022, 1e-300, 1.0, 2.0**1000, 1.7e308]
    out += [math.ldexp(rng.random() + 0.5, rng.randint(-1074, 1023)) for _ in range(n)]
    return [v for v in out if math.isfinite(v)]


def _exact(fmt, s, unit, kind, za, G=None):
    f = get_format(fmt)
    if kind == "element":
        return bounds.K * bounds.element_bound(f, s, Fraction(za), unit), bounds.accurate_bound(f, Fraction(za),
                                                                                                 Fraction(0))
    return bounds.K * bounds.gradient_bound(f, s, Fraction(za), Fraction(G)), bounds.accurate_bound(
        f, Fraction(za), Fraction(0))


@pytest.mark.parametrize("fmt", FMTS)
def test_estimates_are_within_2_44_of_the_exact_allowances(fmt):
    rng = random.Random(fmt)
    checked = 0
    for s in (1, 3, 5, 8, 17, 30):
        for unit in (Fraction(1), Fraction(1, 3), Fraction(10**6, 7), Fraction(1, 2**1070)):
            q = M._Quick(get_format(fmt), s, unit)
            for za in _magnitudes(rng, 40):
                for kind in ("element", "gradient"):
                    G = max(za, float(unit)) if kind == "gradient" else None
                    est = q.element(za) if kind == "element" else q.gradient(za, G)
                    for a, exact in zip(est, _exact(fmt, s, unit, kind, za, G)):
                        if M._TINY < a < M._HUGE:
                            assert abs(Fraction(a) - exact) <= exact / 2**44, (fmt, s, unit, za, kind, a)
                            checked += 1
    assert checked > 1000, checked


def _err_mpf(q: Fraction):
    """A raw mpf error at the rational q, rounded to 200 bits (the comparisons below are with its exact value)."""
    return libmp.from_rational(q.numerator, q.denominator, 200, "n")


def _errors_around(a: Fraction, rng):
    """Errors at the allowance, one binary64 beside it, a few 2**-44 beside it, and far away."""
    af = float(a) if a < 2**1020 else 2.0**1020
    out = [a, Fraction(af), Fraction(math.nextafter(af, 0)), Fraction(math.nextafter(af, math.inf)), a * 2, a / 2,
           Fraction(0)]
    for k in (-3, -1, 1, 3):
        out.append(a * (1 + Fraction(k, 2**44)))
        out.append(a * (1 + Fraction(k, 2**40)))
    out += [a * Fraction(rng.random() * 4) for _ in range(4)]
    return [e for e in out if e >= 0]


@pytest.mark.parametrize("fmt", FMTS)
def test_filtered_comparisons_equal_the_exact_ones(fmt):
    rng = random.Random(f"cmp-{fmt}")
    f = get_format(fmt)
    compared = filtered = 0
    for s in (3, 8, 22):
        for unit in (Fraction(1), Fraction(5, 3)):
            q = M._Quick(f, s, unit)
            for za in _magnitudes(rng, 25):
                G = max(za, float(unit))
                for kind in ("element", "gradient"):
                    za_q = Fraction(za)

                    def bound(m, kind=kind):
                        return (bounds.element_bound(f, s, m, unit) if kind == "element"
                                else bounds.gradient_bound(f, s, m, Fraction(G)))

                    def estimate(kind=kind):
                        return q.element(za) if kind == "element" else q.gradient(za, G)

                    exact = M.Allowances(f, lambda: za_q, bound, lambda: Fraction(0))
                    for target in (exact.stable, exact.accurate_floor):
                        for e0 in _errors_around(target, rng):
                            err = _err_mpf(e0)
                            e = M._fraction(err)
                            e_f = libmp.to_float(err, rnd="n")
                            a = M.Allowances(f, lambda: za_q, bound, lambda: Fraction(0), estimate)
                            assert a.exceeds_stable(err, e_f) == (e > exact.stable), (fmt, za, kind, e)
                            a2 = M.Allowances(f, lambda: za_q, bound, lambda: Fraction(0), estimate)
                            assert a2.within_floor(err, e_f) == (e <= exact.accurate_floor), (fmt, za, kind, e)
                            compared += 2
                            # the filter answered without the Fractions where it could
                            filtered += ("stable" not in a.__dict__) + ("accurate_floor" not in a2.__dict__)
    assert compared > 2000 and filtered > compared // 2, (compared, filtered)


def _kappas(rng, n):
    """Condition numbers as the measurement has them: binary64 values, and rationals that are not (kappa_g as mpf
    at 200 bits), from 0 to past the overflow threshold."""
    out = [Fraction(0), Fraction(1, 3), Fraction(10**400), Fraction(1, 10**330)]
    for _ in range(n):
        k = Fraction(math.ldexp(rng.random() + 0.5, rng.randint(-1074, 1023)))
        out.append(k * (1 + Fraction(rng.randint(1, 2**40), 2**100)) if rng.random() < 0.5 else k)
    return out


@pytest.mark.parametrize("fmt", FMTS)
def test_the_accurate_estimate_with_kappa_decides_as_the_exact_allowance(fmt):
    rng = random.Random(f"acc-{fmt}")
    f = get_format(fmt)
    q = M._Quick(f, 3, Fraction(1))
    checked = compared = filtered = 0
    for za in _magnitudes(rng, 30):
        for kappa in _kappas(rng, 6):
            try:
                kf = float(kappa)
            except OverflowError:
                continue
            exact = bounds.accurate_bound(f, Fraction(za), kappa)
            est = q.accurate(za, kf)
            if M._TINY < est < M._HUGE:
                assert abs(Fraction(est) - exact) <= exact / 2**44, (fmt, za, kappa, est)
                checked += 1
            for e0 in _errors_around(exact, rng):
                err = _err_mpf(e0)
                e_f = libmp.to_float(err, rnd="n")
                a = M.Allowances(f, lambda za=za: Fraction(za), None, lambda kappa=kappa: kappa, None,
                                 lambda za=za, kf=kf: q.accurate(za, kf))
                assert a.within_accurate(err, e_f) == (M._fraction(err) <= exact), (fmt, za, kappa, e0)
                compared += 1
                filtered += "accurate" not in a.__dict__
    # most errors here are placed within 2**-40 of the allowance on purpose (the Fractions decide those)
    assert checked > 300 and compared > 2000 and filtered > compared // 3, (checked, compared, filtered)


def test_side_says_nothing_outside_its_range():
    assert M._side(1.0, None) == 0
    assert M._side(1.0, 2.0**-1001) == 0 and M._side(1.0, 2.0**1001) == 0
    assert M._side(1.0, math.inf) == 0
    assert M._side(2.0, 1.0) == 1 and M._side(0.5, 1.0) == -1
    assert M._side(1.0, 1.0) == 0 and M._side(1.0 + 2.0**-45, 1.0) == 0
    assert M._side(math.inf, 1.0) == 1 and M._side(0.0, 1.0) == -1


def _reductions(rng, n_calls):
    """(mags, W, D, s): the magnitude bounds of n unreduced elements (the subnormals to near the overflow threshold,
    zeros, equal and spread values), |weights| sums and denominators as the structure gives them (counts, weight
    sums as Fractions, 0 read as 1), and the steps of the losses that reduce."""
    for _ in range(n_calls):
        n = rng.choice([1, 2, 3, 7, 64, 257, 1000])
        kind = rng.choice(["spread", "equal", "tiny", "huge", "zeros"])
        e = rng.randint(-1070, 1000)
        if kind == "equal":
            mags = [math.ldexp(rng.random() + 0.5, e)] * n
        elif kind == "tiny":
            mags = [math.ldexp(rng.random(), rng.randint(-1074, -1000)) for _ in range(n)]
        elif kind == "huge":
            mags = [math.ldexp(rng.random() + 0.5, rng.randint(1000, 1015)) for _ in range(n)]
        elif kind == "zeros":
            mags = [0.0] * (n - 1) + [math.ldexp(1.0, e)]
        else:
            mags = [math.ldexp(rng.random() + 0.5, rng.randint(e - 60, e)) for _ in range(n)]
        W = rng.choice([Fraction(n), Fraction(n * 5, 3), Fraction(10**300), Fraction(1, 2**1060), Fraction(0)])
        D = rng.choice([Fraction(1), Fraction(n), W, Fraction(0), Fraction(7, 2**1070)])
        yield mags, W, D, rng.choice([6, 8, 3, 22])


def _operands(mags, W, D, s, f):
    """(the estimate's operands or None, the exact sum V of the magnitudes, n, the binary64 estimator)"""
    return (M._reduction_operands(mags, W, D, s, f), sum((Fraction(m) for m in mags), Fraction(0)), len(mags),
            M._Quick(f, s, Fraction(1)))


@pytest.mark.parametrize("fmt", FMTS)
def test_the_reduced_estimate_is_within_2_44_of_the_exact_allowance(fmt):
    rng = random.Random(f"red-{fmt}")
    f = get_format(fmt)
    checked = none = 0
    for mags, W, D, s in _reductions(rng, 300):
        ops, V, _, q = _operands(mags, W, D, s, f)
        if ops is None:
            none += 1
            continue
        for za in _magnitudes(rng, 4):
            exact = (bounds.K * bounds.reduction_bound(f, s, Fraction(za), V, W, len(mags), D),
                     bounds.accurate_bound(f, Fraction(za), Fraction(0)))
            for a, ex in zip(q.reduced(za, *ops), exact):
                if M._TINY < a < M._HUGE:
                    assert abs(Fraction(a) - ex) <= ex / 2**44, (fmt, len(mags), W, D, s, za, a)
                    checked += 1
    assert checked > 1500 and none < 100, (checked, none)


@pytest.mark.parametrize("fmt", FMTS)
def test_filtered_comparisons_of_reduced_values_equal_the_exact_ones(fmt):
    rng = random.Random(f"redcmp-{fmt}")
    f = get_format(fmt)
    compared = filtered = 0
    for mags, W, D, s in _reductions(rng, 40):
        ops, V, n, q = _operands(mags, W, D, s, f)
        for za in _magnitudes(rng, 3):
            za_q = Fraction(za)

            def bound(m):
                return bounds.reduction_bound(f, s, m, V, W, n, D)

            def estimate(za=za):
                return None if ops is None else q.reduced(za, *ops)

            exact = M.Allowances(f, lambda za_q=za_q: za_q, bound, lambda: Fraction(0))
            for target in (exact.stable, exact.accurate_floor):
                for e0 in _errors_around(target, rng):
                    err = _err_mpf(e0)
                    e = M._fraction(err)
                    e_f = libmp.to_float(err, rnd="n")
                    a = M.Allowances(f, lambda za_q=za_q: za_q, bound, lambda: Fraction(0), estimate)
                    assert a.exceeds_stable(err, e_f) == (e > exact.stable), (fmt, n, W, D, za, e)
                    a2 = M.Allowances(f, lambda za_q=za_q: za_q, bound, lambda: Fraction(0), estimate)
                    assert a2.within_floor(err, e_f) == (e <= exact.accurate_floor), (fmt, n, W, D, za, e)
                    compared += 2
                    filtered += ("stable" not in a.__dict__) + ("accurate_floor" not in a2.__dict__)
    # most errors here are placed within 2**-40 of the allowance on purpose, and some sums lie outside the range
    assert compared > 2000 and filtered > compared // 3, (compared, filtered)


@pytest.mark.parametrize("fmt", FMTS)
def test_measurements_of_reduced_calls_are_those_of_the_fractions(fmt, monkeypatch):
    """Whole measurements of reduced calls (every loss that reduces, sums and means, the fast-measure meta-test's
    inputs; results at the exact rounding, beside it and far from it), with and without the reduced estimate: the
    same verdicts, and the estimate decides most comparisons without the Fractions where the reduced value's
    source bounds its magnitude (a value of the mpmath path has no estimate, reduced or not)."""
    from tests.meta.test_fast_measure import _calls, _flat
    from tests.meta.test_verdicts_in_bulk import _assert_same_elements, _ys

    rng = random.Random(f"redmeasure-{fmt}")
    compared = decided = reduced = 0
    for name, kw in _calls(rng, 120):
        if kw.get("reduction", "none") == "none" or name not in M.catalogue.REDUCING:
            continue
        ys = _ys(rng, _flat(oracles.REGISTRY[name](**kw)), fmt)
        fast_m = M.measure("s", name, fmt, "cpu", kw, ys)
        with monkeypatch.context() as mp:
            mp.setattr(M, "_reduction_operands", lambda *a: None)
            exact_m = M.measure("s", name, fmt, "cpu", kw, ys)
        compared += _assert_same_elements(fast_m, exact_m, (name, kw, fmt))
        for e in fast_m.elements:
            if e.verdict != "correctly_rounded" and math.isfinite(e.y) and e.exact.magnitude_bound() is not None:
                reduced += 1
                decided += "stable" not in e._allowances.__dict__
    assert compared >= 20 and reduced >= 5 and decided > reduced * 3 // 4, (compared, reduced, decided)
