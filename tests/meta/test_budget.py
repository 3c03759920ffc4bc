"""The budgets of lossproof/budget.py: the search safety net and the shrink budget, and the per-example cap that
keeps one slow example (an exact gradient that needs tens of thousands of bits) from holding a whole test for
minutes.

No assertion here is on seconds: the budgets read lossproof.budget's clock, which these tests replace with a fake
one (``clock``) that moves only when told, so each test asserts on counts (examples measured, where the run
stopped) that are the same on any machine under any load. What the budgets cost in real time is measured by
benchmarks/budget_speed.py."""

from __future__ import annotations

import gc
import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossproof import budget as budget_module
from lossproof import interpreter
from lossproof.budget import Budget, ExampleTooSlow, Spent


class FakeClock:
    """``time`` for lossproof.budget: ``monotonic`` reads a time that only ``advance`` moves."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(budget_module, "time", c)
    return c


def test_an_example_over_the_cap_is_interrupted_and_the_alarm_restored():
    b = Budget(search=10, shrink=10)
    b.per_example = 0.2
    b.admit({"input": [1.5, -0.0, -0.0, -0.0], "reduction": "sum"})  # the example the message names
    before = signal.getsignal(signal.SIGALRM)
    rounds = 0
    with pytest.raises(ExampleTooSlow):
        with b.example():
            # pure-Python work, as the oracle's loops are, far longer than the cap: 10**9 rounds of about 10 us
            # each would take hours, so only the alarm ends it (a broken alarm fails the test, never hangs it)
            for rounds in range(1, 10**9):
                sum(range(1000))
    assert 0 < rounds < 10**9 - 1
    assert b.overtime is not None and "0.2 s last resort" in b.overtime  # the test then fails (TimeLimitHit)
    assert b.overtime.endswith('{input: [1.5, -0.0 x3], reduction: "sum"}'), b.overtime
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_an_example_within_the_cap_runs_to_the_end():
    b = Budget(search=10, shrink=10)
    b.per_example = 5.0
    with b.example():
        x = sum(range(10000))
    assert x == 49995000
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_search_safety_net_and_shrink_budget(clock):
    b = Budget(search=0.05, shrink=0.05)
    b.check("a")  # the first example is measured
    clock.advance(0.04)
    b.check("a2")  # within the safety net
    clock.advance(0.04)
    with pytest.raises(Spent):
        b.check("b")  # past the search safety net, the run stops
    assert b.stopped == "search" and "safety net after 2 example(s)" in b.report("case")
    b2 = Budget(search=10, shrink=0.05)
    b2.check("a")
    with pytest.raises(AssertionError):
        b2.fail("a", "boom")
    with pytest.raises(AssertionError, match="boom"):
        b2.check("a")  # a failing example fails again with its message
    clock.advance(0.04)
    b2.check("b")  # within the shrink budget
    clock.advance(0.04)
    with pytest.raises(Spent):
        b2.check("c")  # past the shrink budget, the run stops
    assert b2.stopped == "shrink"


def _hypothesis_run(budget, fail_at, pause=0.02, clock=None):
    """A Hypothesis test over integers under ``budget``: fails for n >= fail_at, each example takes ``pause`` s of
    the fake ``clock`` (no clock: no time passes)."""
    seen = []

    @settings(max_examples=200, derandomize=True, database=None, deadline=None)
    @given(st.integers(0, 10**6))
    def check(n):
        budget.check(str(n))
        seen.append(n)
        if clock is not None:
            clock.advance(pause)
        if n >= fail_at:
            budget.fail(str(n), f"too big: {n}")

    return seen, check


def test_a_spent_shrink_budget_fails_with_the_smallest_failure_found(clock):
    budget = Budget(search=60, shrink=0.25)
    seen, check = _hypothesis_run(budget, 1000, pause=1 / 64, clock=clock)
    with pytest.raises(AssertionError, match=r"too big: (\d+)") as info:
        budget.run(check)
    assert budget.stopped == "shrink", "the shrinker was not stopped by the budget"
    first = next(i for i, n in enumerate(seen) if n >= 1000)
    # the failure is recorded after its pause; the j-th example after it is checked (j - 1) / 64 s later and
    # measured while that is at most 0.25 s: j <= 17 (the pauses are exact binary fractions: no rounding)
    assert len(seen) - 1 - first == 17, (len(seen), first)
    failing = [n for n in seen if n >= 1000]
    assert f"too big: {min(failing)}" in str(info.value), "not the smallest failure found"


def test_a_passing_run_measures_a_fixed_number_of_examples():
    """Under a fixed max_examples and derandomize, two runs measure the same examples (the verdict does not
    depend on the clock)."""
    runs = []
    for _ in range(2):
        budget = Budget(search=60, shrink=10)
        seen, check = _hypothesis_run(budget, 10**7)
        budget.run(check)
        runs.append(seen)
        assert budget.report("case") is None
    assert runs[0] == runs[1] and len(runs[0]) > 50


def test_a_derived_profile_changes_only_the_search_budgets_and_the_search_obeys_it():
    """``lossproof detect --examples/--work`` (how the ci budgets are chosen): the derived profile's counts reach the
    search (its example count) and the work budget (its cap), everything else stays the base profile's; no change
    returns the base itself; a count that would search nothing is refused."""
    from lossproof import detect, profiles, search, zoo

    ci = profiles.get("ci")
    assert profiles.derived("ci") is ci
    small = profiles.derived("ci", examples=7, work=500)
    assert (small.agreement_examples, small.overflow_examples, small.work) == (7, 7, 500.0)
    assert (small.identity_examples, small.example_work, small.derandomize) == (ci.identity_examples,
                                                                               ci.example_work, ci.derandomize)
    assert small.name == "ci[examples=7,work=500]"
    with profiles.use(small):
        assert profiles.current() is small
        assert Budget().max_work == 500.0
        run = search.search("agreement", detect.case_for(zoo.by_name(zoo.CONTROLS[0].name)), edges=False)
        assert run.examples == 7
    assert profiles.current().name == "ci"
    for bad in ({"examples": 0}, {"examples": 2.5}, {"work": float("inf")}, {"work": -1.0}):
        with pytest.raises(ValueError):
            profiles.derived("ci", **bad)


def test_a_search_collects_garbage_less_often_and_restores_the_thresholds():
    seen = []

    @settings(max_examples=3, database=None)
    @given(st.integers())
    def probe(i):
        seen.append(gc.get_threshold())

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        Budget().run(probe)
        assert seen and all(t == (interpreter.SEARCH_GC_THRESHOLD, 11, 12) for t in seen), seen
        assert gc.get_threshold() == (700, 11, 12)
        gc.set_threshold(10 * interpreter.SEARCH_GC_THRESHOLD, 11, 12)  # never lowered
        seen.clear()
        Budget().run(probe)
        assert seen[0][0] == 10 * interpreter.SEARCH_GC_THRESHOLD
    finally:
        gc.set_threshold(*before)

