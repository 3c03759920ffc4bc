"""Agreement with the oracle: one test per subject x loss x format x device, on Hypothesis-drawn extreme inputs.

Each example is measured once (lossproof.measure): the verdict decides the test (pass line: stable; our NumPy
losses must be accurate), ``hypothesis.target`` climbs toward more bits of error, and the summary table at the
end of the run shows the worst verdict and ULP error of every cell. A documented deviation of a third-party
library is measured against the documented behaviour and reported, never skipped.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, note, settings, target
from hypothesis import strategies as st

import conftest
from lossproof import suite
from lossproof.measure import RANK, measure
from subjects import deviations
from subjects.torch_subject import upstream
from tests import cases, profile
from tests.problems import finite_except_masks, problems
from tests.budget import Budget

# at most this many examples; the search budget (tests/budget.py) stops measuring sooner on large problems
EXAMPLES = {"dev": 20, "ci": 100, "default": 100, "thorough": 2000}


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", cases.params(cases.selected(metafunc.config)))


def required_rung(case, kind: str = "value") -> str:
    """Our NumPy losses must be accurate, values and gradient components (a gradient component with its own
    condition number, lossproof.conditioning); everything else must be stable (NUMERICS' pass line)."""
    return "accurate" if case.subject == "numpy" else "stable"


def meets(case, m) -> bool:
    return all(RANK[e.verdict] >= RANK[required_rung(case, e.kind)] for e in m.elements)


def failure_report(case, kwargs, m, deviation=None) -> str:
    w = m.worst_element
    lines = [f"{case.id}: {w.kind} element {w.index} is {w.verdict} (required: {required_rung(case, w.kind)})",
             f"  expected (exact) {w.z}",
             f"  correctly rounded {w.z_rounded!r} ({float.hex(w.z_rounded) if math.isfinite(w.z_rounded) else w.z_rounded})",
             f"  got               {w.y!r}",
             f"  error             {w.ulp_error:.3g} ULP, {w.bits:.1f} bits; stable allows {w.stable_bound:.3g}, "
             f"accurate allows {w.accurate_bound:.3g} (absolute)",
             "  reproducer:"]
    lines += ["    " + line for line in suite.reproducer(case, kwargs).splitlines()]
    if deviation:
        lines.append(f"  documented deviation {deviation.id}: {deviation.reason} ({deviation.link})")
    return "\n".join(lines)


def test_agreement(case, request):
    strict = request.config.getoption("--strict-specials")
    n = EXAMPLES.get(profile.name(), 100)
    ran = {"n": 0, "unsupported": None}
    budget = Budget()

    @settings(max_examples=n, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.filter_too_much])
    @given(st.data())
    def check(data):
        kwargs = data.draw(problems(case.loss, case.fmt), label="problem")
        kwargs = cases.restrict(case, kwargs)
        assume(kwargs is not None)
        note("exact inputs: " + repr(kwargs))
        key = repr(kwargs)
        if budget.skip(key):
            return
        try:
            values, grads = case.call(kwargs)
        except suite.NotSupported as e:
            ran["unsupported"] = str(e)
            return
        up = upstream(len(values)) if case.framework == "torch" else None
        # the gradient is measured only when the values meet the requirement or a documented deviation may
        # explain them (a failing example fails on its values alone: half the cost while Hypothesis shrinks it)
        m = measure(case.subject, case.loss, case.fmt, case.device, kwargs, values, grads, upstream=up,
                    go_on=lambda mv: meets(case, mv) or bool(deviations.matching(case.subject, case.loss, kwargs,
                                                                                 case.fmt)))
        ran["n"] += 1
        target(m.max_bits, label="bits of error")
        gating = strict or finite_except_masks(case.loss, kwargs)
        if meets(case, m):
            conftest.record(m, None, gating)
            return
        devs = deviations.matching(case.subject, case.loss, kwargs, case.fmt)
        if devs:  # measured against the documented behaviour instead, and shown as a documented deviation
            unexplained = []
            for d in devs:
                ok, md = cases.explains(d, case, m, kwargs, values)
                if ok:
                    conftest.record(m, d.id, gating)
                    return
                unexplained.append(failure_report(case, kwargs, md, d))
            conftest.record(m, None, gating)
            if gating:
                budget.fail(key, "no documented deviation explains this:\n" + "\n".join(unexplained))
            return
        conftest.record(m, None, gating)
        if gating:
            budget.fail(key, failure_report(case, kwargs, m))

    check()
    if ran["n"] == 0 and ran["unsupported"]:
        pytest.skip(f"not supported: {ran['unsupported']}")
