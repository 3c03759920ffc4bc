"""Agreement with the oracle: one test per subject x loss x format x device, on Hypothesis-drawn extreme inputs.

The search is tests/runner.py's (shared with lossproof detect). Each example is measured once (lossproof.measure): the verdict decides the test (pass line: stable; our NumPy
losses must be accurate), ``hypothesis.target`` climbs toward more bits of error, and the summary table at the
end of the run shows the worst verdict and ULP error of every cell. A documented deviation of a third-party
library is measured against the documented behaviour and reported, never skipped.
"""

from __future__ import annotations

import pytest

import conftest
from tests import cases, runner


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", cases.params(cases.selected(metafunc.config)))


def test_agreement(case, request):
    run = runner.search("agreement", case, strict=request.config.getoption("--strict-specials"),
                        record=conftest.record)
    for capability, why in run.state["missing"].items():
        conftest.notice(f"{case.id}: not supported: {capability} ({why})")
    run.run()
    conftest.notice(run.budget.report(case.id))
    if run.state["measured"] == 0 and run.state["unsupported"]:
        pytest.skip(f"not supported: {run.state['unsupported']}")
