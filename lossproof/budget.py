"""Budgets for one property test: how many examples it measures, and how long it may shrink a failure.

The search: under the ``ci`` profile (the default) a property test measures examples in Hypothesis's
derandomized order until it has measured ``max_examples`` of them (100 for agreement and for no-overflow) or
compared the profile's ``work`` numbers with the oracle (ci: 12,000 values and gradient components), whichever
comes first. Both are counts, not seconds, so a run measures the same inputs on any machine under any load: its verdict
does not depend on the clock. Tests of small problems measure all their examples; tests of long rows stop after a
few dozen. ``SEARCH_SECONDS`` is only a safety net against a pathological run (ci: 60 s per test, far above the
slowest measured test of the battery); when it is hit the search stops and the run's summary says so
(``Budget.report``), so a truncated search is never silent. The ``thorough`` profile is the exception: it is a
long search by design, 2,000 examples or 120 s per test, whichever comes first.

The shrink: Hypothesis shrinks a failure for up to 500 steps or 5 minutes, each step a full measurement (and a
whole new problem drawn). Once the shrink budget since the first failure is spent, the run stops (``Spent``) and
the test fails with the smallest failure found so far, its report and reproducer: the smallest found within the
budget, not necessarily a local minimum; whether the test fails does not depend on it.

Budgets per profile (per test; lossproof.profiles): work dev 4,000 / ci 12,000 numbers / thorough unlimited;
search safety net dev 30 / ci 60 / thorough 120 s; shrink dev 5 / ci 10 / thorough 300 s.

The example: one example can take minutes (an exact gradient of a bfloat16 row that needs tens of thousands
of bits). ``Budget.example()`` caps the oracle work of one example (ci 20 s, thorough 300 s; SIGALRM, main
thread only): past it the example passes unmeasured, counted in ``too_slow`` and shown by the test, like any
other unmeasured example.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time

from . import profiles


class ExampleTooSlow(Exception):
    """One example's oracle work ran past ``EXAMPLE_SECONDS``."""


class Spent(BaseException):
    """Raised through Hypothesis once a budget is spent: the search safety net with no failure seen, or the shrink
    budget since the first failure. Letting Hypothesis run on with every further example passing unmeasured would
    reach the same verdict and the same smallest failure, but its shrinker and its target optimiser would go on
    drawing candidates (each a whole problem: most of a minute for 4,096-class rows), so the run stops at once.
    A BaseException, so that Hypothesis does not take it for a failure of the example; ``Budget.run`` turns it
    into the test's outcome."""


class Budget:
    def __init__(self, search: float | None = None, shrink: float | None = None):
        prof = profiles.current()
        self.search = prof.search_seconds if search is None else search
        self.shrink = prof.shrink_seconds if shrink is None else shrink
        self.start = None
        self.first_failure = None
        self.failed = {}  # example key -> its failure message
        self.last_message = None  # the latest failure: Hypothesis only tries smaller candidates, so the smallest
        self.per_example = prof.example_seconds
        self.too_slow = 0  # examples that passed unmeasured, over the per-example cap
        self.examples = 0  # examples that reached ``check``
        self.max_work = prof.work
        self.work = 0  # numbers compared so far (``spend``)
        self.stopped = None  # "search" or "shrink" when the run was stopped by a spent budget

    @contextlib.contextmanager
    def example(self):
        """Run one example's measurement under the per-example cap; past it, ExampleTooSlow is raised inside
        (the caller lets the example pass unmeasured and counts it in ``too_slow``)."""
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
            yield
            return

        def alarm(signum, frame):
            raise ExampleTooSlow(f"over {self.per_example:g} s")

        old = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, self.per_example)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)

    def check(self, key: str):
        """Before measuring an example: raises the recorded failure of an example already seen to fail, and
        ``Spent`` once the search safety net (no failure seen) or the shrink budget (since the first failure) is
        spent; else returns, and the example is measured."""
        now = time.monotonic()
        if self.start is None:
            self.start = now
        if key in self.failed:
            _raise(self.failed[key])
        if self.first_failure is None:
            if self.work >= self.max_work:
                self.stopped = "work"
                raise Spent("work")
            if now - self.start > self.search:
                self.stopped = "search"
                raise Spent("search")
        elif now - self.first_failure > self.shrink:
            self.stopped = "shrink"
            raise Spent("shrink")
        self.examples += 1

    @contextlib.contextmanager
    def unmetered(self):
        """For the fixed edge problems (lossproof/search.py): each is measured whatever the work budget and the search
        safety net (neither stops them: the catalogue is the same on every run), and both start afresh after them,
        for the search. The per-example cap still applies, and the examples count in ``examples`` and
        ``too_slow``."""
        max_work, search = self.max_work, self.search
        self.max_work = self.search = float("inf")
        try:
            yield
        finally:
            self.max_work, self.search = max_work, search
            self.work, self.start = 0, None

    def restart(self):
        """Forget a failure (its key stays known, so a replay still fails at once): the edge problems' failure
        must not start the search's shrink clock."""
        self.first_failure = None
        self.last_message = None
        self.stopped = None

    def spend(self, numbers: int):
        """Count an example's work: the numbers it compared (see ``WORK``)."""
        self.work += numbers

    def fail(self, key: str, message: str):
        if self.first_failure is None:
            self.first_failure = time.monotonic()
        self.failed[key] = message
        self.last_message = message
        _raise(message)

    def run(self, test):
        """Run a Hypothesis test (a ``@given`` function taking no arguments) under this budget. A spent shrink
        budget ends it with the smallest failure found (an AssertionError with its report and reproducer); a
        spent search safety net ends it as a pass, counted in ``report``."""
        try:
            test()
        except Spent:
            if self.first_failure is not None:
                _raise(f"{self.last_message}\n(the smallest failing example found within the {self.shrink:g} s "
                       "shrink budget)")

    def report(self, case_id: str) -> str | None:
        """One line on the examples that passed unmeasured (over the per-example cap) and on a search stopped by
        its safety net, or None when every example drawn was measured."""
        parts = []
        if self.too_slow:
            parts.append(f"{self.too_slow} example(s) over the {self.per_example:g} s per-example cap passed "
                         "unmeasured")
        if self.stopped == "search":
            parts.append(f"the search stopped at the {self.search:g} s safety net after {self.examples} example(s)")
        return f"{case_id}: " + "; ".join(parts) if parts else None


def _raise(message: str):
    """The one place a budgeted test fails, so Hypothesis sees one failure (it tells failures apart by where
    they are raised) whether the example was measured or replayed."""
    raise AssertionError(message)
