"""Agreement with the oracle: one test per subject x loss x format x device, on Hypothesis-drawn extreme inputs.

Each example is measured once (lossproof.measure): the verdict decides the test (pass line: stable; our NumPy
losses must be accurate), ``hypothesis.target`` climbs toward more bits of error, and the summary table at the
end of the run shows the worst verdict and ULP error of every cell. A documented deviation of a third-party
library is measured against the documented behaviour and reported, never skipped.
"""

from __future__ import annotations


import pytest
from hypothesis import HealthCheck, assume, given, note, settings, target
from hypothesis import strategies as st

import conftest
from lossproof import suite
from lossproof.measure import measure
from subjects import deviations
from subjects.torch_subject import upstream
from tests import cases, profile
from tests.cases import meets
from tests.problems import finite_except_masks, problems
from tests.budget import Budget, ExampleTooSlow

# examples measured per test (ci: a fixed number, the same inputs on every machine; tests/budget.py)
EXAMPLES = {"dev": 20, "ci": 100, "default": 100, "thorough": 2000}


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", cases.params(cases.selected(metafunc.config)))


def test_agreement(case, request):
    strict = request.config.getoption("--strict-specials")
    n = EXAMPLES.get(profile.name(), 100)
    ran = {"n": 0, "unsupported": None}
    budget = Budget()
    missing = cases.unsupported(case)
    for capability, why in missing.items():
        conftest.notice(f"{case.id}: not supported: {capability} ({why})")
    strategy = problems(case.loss, case.fmt, probability_targets="probability targets" not in missing)

    @settings(max_examples=n, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.filter_too_much])
    @given(st.data())
    def check(data):
        kwargs = data.draw(strategy, label="problem")
        kwargs = cases.restrict(case, kwargs)
        assume(kwargs is not None)
        note("exact inputs: " + repr(kwargs))
        key = repr(kwargs)
        budget.check(key)
        try:
            values, grads = case.call(kwargs)
        except suite.NotSupported as e:
            ran["unsupported"] = str(e)
            return
        up = upstream(len(values)) if case.framework == "torch" else None
        # the gradient is measured only when the values meet the requirement or a documented deviation may
        # explain them (a failing example fails on its values alone: half the cost while Hypothesis shrinks it)
        try:
            with budget.example():
                m = measure(case.subject, case.loss, case.fmt, case.device, kwargs, values, grads, upstream=up,
                            go_on=lambda mv: meets(case, mv) or bool(deviations.matching(
                                case.subject, case.loss, kwargs, case.fmt)))
        except ExampleTooSlow:
            budget.too_slow += 1
            return
        ran["n"] += 1
        budget.spend(len(m.elements))
        target(m.max_bits, label="bits of error")
        gating = strict or finite_except_masks(case.loss, kwargs)
        deviation, problem = cases.judge(case, kwargs, m, values)
        conftest.record(m, deviation, gating)
        if problem and gating:
            budget.fail(key, problem)

    budget.run(check)
    conftest.notice(budget.report(case.id))
    if ran["n"] == 0 and ran["unsupported"]:
        pytest.skip(f"not supported: {ran['unsupported']}")
