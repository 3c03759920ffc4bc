"""SciPy is optional (lossproof's test extra): without it, its subject's cases are skipped with the reason, and the
battery runs (found by running `lossproof verify` from the installed wheel without SciPy: it errored)."""

from __future__ import annotations

from lossproof import cases, catalogue
from subjects import array_subject


def test_without_scipy_every_scipy_case_is_skipped_with_the_reason(monkeypatch):
    def missing():
        raise ModuleNotFoundError("No module named 'scipy'")

    monkeypatch.setattr(array_subject, "scipy_functions", missing)
    out = cases.scipy_cases()
    assert {c.loss for c in out} == {loss.name for loss in catalogue.LOSSES if loss.scipy}
    assert out and all(c.skip and "SciPy is not installed" in c.skip for c in out)


def test_with_scipy_its_cases_run():
    out = cases.scipy_cases()
    assert [c for c in out if c.fmt == "float64" and not c.skip]
