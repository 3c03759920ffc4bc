"""The budgets of lossproof/budget.py: the search safety net and the shrink budget, and the per-example cap that
keeps one slow example (an exact gradient that needs tens of thousands of bits) from holding a whole test for
minutes."""

from __future__ import annotations

import signal
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossproof.budget import Budget, ExampleTooSlow, Spent


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


def test_search_safety_net_and_shrink_budget():
    b = Budget(search=0.05, shrink=0.05)
    b.check("a")  # the first example is measured
    time.sleep(0.08)
    with pytest.raises(Spent):
        b.check("b")  # past the search safety net, the run stops
    assert b.stopped == "search" and "safety net after 1 example" in b.report("case")
    b2 = Budget(search=10, shrink=0.05)
    b2.check("a")
    with pytest.raises(AssertionError):
        b2.fail("a", "boom")
    with pytest.raises(AssertionError, match="boom"):
        b2.check("a")  # a failing example fails again with its message
    time.sleep(0.08)
    with pytest.raises(Spent):
        b2.check("c")  # past the shrink budget, the run stops
    assert b2.stopped == "shrink"


def _hypothesis_run(budget, fail_at, pause=0.02):
    """A Hypothesis test over integers under ``budget``: fails for n >= fail_at, each example ``pause`` s."""
    seen = []

    @settings(max_examples=200, derandomize=True, database=None, deadline=None)
    @given(st.integers(0, 10**6))
    def check(n):
        budget.check(str(n))
        seen.append(n)
        time.sleep(pause)
        if n >= fail_at:
            budget.fail(str(n), f"too big: {n}")

    return seen, check


def test_a_spent_shrink_budget_fails_with_the_smallest_failure_found():
    budget = Budget(search=60, shrink=0.3)
    seen, check = _hypothesis_run(budget, 1000)
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match=r"too big: (\d+)") as info:
        budget.run(check)
    assert time.monotonic() - t0 < 5.0, "the shrinker went on after the budget"
    failing = [n for n in seen if n >= 1000]
    assert f"too big: {min(failing)}" in str(info.value), "not the smallest failure found"


def test_a_passing_run_measures_a_fixed_number_of_examples():
    """Under a fixed max_examples and derandomize, two runs measure the same examples (the verdict does not
    depend on the clock)."""
    runs = []
    for _ in range(2):
        budget = Budget(search=60, shrink=10)
        seen, check = _hypothesis_run(budget, 10**7, pause=0.001)
        budget.run(check)
        runs.append(seen)
        assert budget.report("case") is None
    assert runs[0] == runs[1] and len(runs[0]) > 50
