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


def _run_reproducer(message: str) -> list:
    """The printed lines of the reproducer in a no-overflow failure's message, run here."""
    import contextlib
    import io

    code = message[message.index("\n") + 1:]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<reproducer>", "exec"), {})
    return out.getvalue().splitlines()


def _clamped_bce(input, target, reduction="mean"):  # torch.clamp(log 0) is finite; its gradient 0 * inf is NaN
    import torch
    loss = -(target * torch.clamp(torch.log(input), min=-100.0)
             + (1 - target) * torch.clamp(torch.log1p(-input), min=-100.0))
    return loss.sum() if reduction == "sum" else loss if reduction == "none" else loss.mean()


def _inf_at_one(input):  # inf at x = 1 only, where softplus is 1.3133
    import torch
    return torch.where(input == 1.0, torch.full_like(input, math.inf), torch.nn.functional.softplus(input))


def test_a_no_overflow_failure_reproduces_the_element_that_failed():
    """A NaN gradient's reproducer computes the gradient, and an element of reduction "none" is printed at its own
    index: both printed the value's first element, a finite number beside the reported NaN (a user's BCE with
    clamped logs, gradient NaN at p = 0, 2026-12-07)."""
    from lossproof.cases import user_cases
    from subjects.user import UserSubject, accepted_parameters

    def case_of(loss, fn):  # the reproducer loads the function by its module and name, as a user's
        user = UserSubject(loss, f"{__name__}:{fn.__name__}", "torch", fn, accepted_parameters(fn))
        return next(c for c in user_cases(user, False) if c.fmt == "float32" and c.device == "cpu")

    case = case_of("binary_cross_entropy", _clamped_bce)
    kw = {"input": [0.5, 0.0], "target": [0.5, 0.0], "reduction": "none"}
    values, grads = case.call(kw)
    msg = judge.overflow_failure(case, kw, values, grads)
    assert msg is not None and "gradient nan" in msg, msg
    printed = _run_reproducer(str(msg))
    # component 1 (not 0, whose gradient is finite), under the upstream gradient [1, 1.625]: d/dp = 1 there
    assert printed[0] == "nan" and printed[1].startswith("exact 1.625 "), printed
    case = case_of("softplus", _inf_at_one)
    kw = {"input": [0.0, 1.0]}
    values, grads = case.call(kw)
    msg = judge.overflow_failure(case, kw, values, None)
    printed = _run_reproducer(str(msg))
    assert printed[0] == "inf" and printed[1].startswith("exact 1.3132616"), printed
