"""The project's own tests, using lossproof's public API and its strategies."""

import mylosses
import pytest
import torch
from hypothesis import given

import lossproof
import oracles
from lossproof import strategies


def test_softplus_is_stable_in_float32():
    # the whole battery for one function, in process; raises with the findings table if a property fails
    findings = lossproof.assert_stable("softplus", mylosses.softplus, formats=["float32"])
    assert findings.ok


def test_naive_softplus_is_caught():
    findings = lossproof.check("softplus", mylosses.naive_softplus, formats=["float32"])
    assert not findings.ok
    assert any(f.prop in ("agreement", "no_overflow") for f in findings.findings)


@given(strategies.values("float32", allow_infinity=True))
def test_sigmoid_is_between_0_and_1(x):
    # a property of our own, over lossproof's exact float32 inputs (huge, tiny, subnormal, +-inf)
    y = mylosses.sigmoid(torch.tensor([x], dtype=torch.float32)).item()
    assert 0.0 <= y <= 1.0


@pytest.mark.parametrize("x", [-1e30, -100.0, 0.0, 100.0, 1e30])
def test_softplus_matches_the_exact_oracle(x):
    got = mylosses.softplus(torch.tensor([x], dtype=torch.float32)).tolist()
    assert got == [e.to("float32") for e in oracles.softplus([x])]
