"""The time budgets of tests/budget.py: the search and shrink budgets, and the per-example cap that keeps one slow
example (an exact gradient that needs tens of thousands of bits) from holding a whole test for minutes."""

from __future__ import annotations

import signal
import time

import pytest

from tests.budget import Budget, ExampleTooSlow


def test_an_example_over_the_cap_is_interrupted_and_the_alarm_restored():
    b = Budget(search=10, shrink=10)
    b.per_example = 0.2
    before = signal.getsignal(signal.SIGALRM)
    t0 = time.monotonic()
    with pytest.raises(ExampleTooSlow):
        with b.example():
            while True:  # pure-Python work, as the oracle's loops are
                sum(range(1000))
    assert time.monotonic() - t0 < 2.0
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_an_example_within_the_cap_runs_to_the_end():
    b = Budget(search=10, shrink=10)
    b.per_example = 5.0
    with b.example():
        x = sum(range(10000))
    assert x == 49995000
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_search_and_shrink_budgets():
    b = Budget(search=0.05, shrink=0.05)
    assert not b.skip("a")  # the first example is measured
    time.sleep(0.08)
    assert b.skip("b"), "past the search budget, new examples pass unmeasured"
    b2 = Budget(search=10, shrink=0.05)
    b2.skip("a")
    with pytest.raises(AssertionError):
        b2.fail("a", "boom")
    with pytest.raises(AssertionError, match="boom"):
        b2.skip("a")  # a failing example fails again with its message
    time.sleep(0.08)
    assert b2.skip("c"), "past the shrink budget, new examples pass unmeasured"
