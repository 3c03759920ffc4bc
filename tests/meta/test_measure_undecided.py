"""A value whose rounding the oracle cannot decide within its precision cap (it lies within 2**-cap of a rounding
boundary) is still measured: its error is taken from the exact value's midpoint, the verdict stays on the ladder,
and no result is ever called correctly rounded on a guess (lossproof/measure.py, _verdict)."""

from __future__ import annotations

import pytest

import oracles
from lossproof import measure as M
from oracles.exact import Exact


@pytest.fixture
def undecidable(monkeypatch):
    """Exact.to raises for every value, as it does for a value on a rounding boundary the expression does not show."""
    def to(self, fmt):
        raise oracles.OraclePrecisionError("could not decide (simulated)")
    monkeypatch.setattr(Exact, "to", to)


def test_a_result_that_would_be_correctly_rounded_is_accurate_when_the_rounding_is_undecidable(undecidable):
    # logsumexp([1.00390625, -1e6]) = 1.00390625 + e**-1e6, just above the bfloat16 midpoint between 1 and 1.0078125
    kw = {"input": [1.00390625, -1e6]}
    for y in (1.0078125, 1.0):
        m = M.measure("user", "logsumexp", "bfloat16", "cpu", kw, [y], None)
        assert m.verdict == "accurate", (y, m.verdict)
        assert m.elements[0].ulp_error == pytest.approx(0.5, abs=1e-6)


def test_a_wrong_result_is_still_caught_when_the_rounding_is_undecidable(undecidable):
    kw = {"input": [1.00390625, -1e6]}
    assert M.measure("user", "logsumexp", "bfloat16", "cpu", kw, [2.0], None).verdict == "unstable"
    assert M.measure("user", "logsumexp", "bfloat16", "cpu", kw, [float("nan")], None).verdict == "broken"


def test_a_decidable_value_is_still_correctly_rounded():
    kw = {"input": [1.00390625, -1e6]}
    assert M.measure("user", "logsumexp", "bfloat16", "cpu", kw, [1.0078125], None).verdict == "correctly_rounded"
