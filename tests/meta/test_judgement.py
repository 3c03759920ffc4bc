"""The judgement code pinned: the worst element, the gate's "fails worse" rule, the summation bound's log2 n, the
element bound's width, the requirement on our NumPy losses. Each test here kills one mutation of
benchmarks/mutation.py that no other test noticed (an audit found all of them passing every test)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

import oracles
from lossproof import judge
from lossproof.cases import numpy_cases, torch_cases
from lossproof.measure import measure
from oracles import bounds
from oracles.formats import get_format
from reports import gate


def test_the_worst_element_is_the_worst():
    kw = {"input": [0.0, 1.0, 2.0]}
    exact = [e.to("float64") for e in oracles.softmax(**kw)]
    y = [exact[0], exact[1] * 1.5, exact[2] * (1 + 2 ** -50)]  # the second is far off, the third a few ULP
    m = measure("user", "softmax", "float64", "cpu", kw, y, None)
    assert m.worst_element.index == (1,) and m.worst_element.verdict == "unstable", m.worst_element


def test_a_case_that_fails_worse_is_a_regression():
    res = gate.GateResult()
    key = ("torch", "cross_entropy", "default", "cpu", "float32")
    gate._compare_failing(key, {"case-1": "unstable"}, {"case-1": "broken"}, res)
    assert [c.what for c in res.regressions] == ["new broken verdict: case-1"]
    res = gate.GateResult()
    gate._compare_failing(key, {"case-1": "unstable"}, {"case-1": "unstable"}, res)
    assert not res.regressions


def test_the_summation_bound_grows_with_log2_n():
    f = get_format("float32")
    n, s = 4096, 3
    b = bounds.reduction_bound("float32", s, Fraction(1), Fraction(n), Fraction(0), n, Fraction(n))
    L = 12  # ceil(log2 4096)
    want = f.u * (s * n / Fraction(n) + L * n / Fraction(n) + (1 + L) * 1) + (n * s / Fraction(n) + L + 1) * \
        Fraction(f.min_subnormal) / 2
    assert b == want


def test_an_error_twice_the_stable_bound_is_unstable():
    # softplus(1) in float32: B = u S (|z| + 1) + S s_min / 2 with S its steps; an error of 2 K B must fail
    f = get_format("float32")
    z = Fraction(oracles.softplus([1.0])[0].to("float64"))
    s = bounds.steps("softplus")
    allow = bounds.K * (f.u * s * (abs(z) + 1) + s * Fraction(f.min_subnormal) / 2)
    y = float(np.float32(float(z + 2 * allow)))
    assert abs(Fraction(y) - z) > allow
    m = measure("user", "softplus", "float32", "cpu", {"input": [1.0]}, [y], None)
    assert m.verdict == "unstable", (m.verdict, m.elements[0].stable_bound)


def test_our_numpy_losses_must_be_accurate_and_others_stable():
    np_case = next(c for c in numpy_cases() if c.loss == "softplus" and c.fmt == "float64")
    torch_case = next(c for c in torch_cases(False) if c.loss == "softplus" and c.fmt == "float64")
    assert judge.required_rung(np_case) == "accurate" and judge.required_rung(torch_case) == "stable"
    # a stable-but-not-accurate result: softplus(-40) = 4.25e-18, off by 1e-17 (far within u (|z| + 1))
    kw = {"input": [-40.0]}
    m = measure("numpy", "softplus", "float64", "cpu", kw, [4.248354255291589e-18 + 1e-17], None)
    assert m.verdict == "stable", m.verdict
    assert not judge.meets(np_case, m) and judge.meets(torch_case, m)
    assert math.isfinite(m.elements[0].ulp_error)
