"""Time budgets for one property test: how long it searches, and how long it shrinks a failure.

The search: Hypothesis runs up to ``max_examples`` examples, but one example of ours measures a whole problem
against the oracle (a 4,096-class row takes seconds), so the test also stops *measuring* once its search
budget is spent: later examples pass unmeasured (they are not counted as cases in the summary). The
sequence of examples is Hypothesis's (derandomized under ci), so a slower machine sees a prefix of it.

The shrink: Hypothesis shrinks a failure for up to 500 steps or 5 minutes, each step a full measurement. Once
the shrink budget since the first failure is spent, every example not already seen to fail passes unmeasured,
so the shrinker stops quickly at the smallest failure found so far; an example seen to fail fails again with its
message (Hypothesis replays the final one). The reported example is then the smallest found within the budget,
not necessarily a local minimum.

Budgets per profile (seconds, per test): dev 2 / 5, ci 4 / 10, thorough 120 / 300 (Hypothesis's own limit).

The example: the search budget is only looked at between examples, and one example can take minutes (an exact
gradient of a bfloat16 row that needs tens of thousands of bits). ``Budget.example()`` caps the oracle work of
one example (ci 20 s, thorough 300 s; SIGALRM, main thread only): past it the example passes unmeasured, counted
in ``too_slow`` and shown by the test, like any other unmeasured example.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time

from tests import profile

SEARCH_SECONDS = {"dev": 2.0, "ci": 4.0, "default": 4.0, "thorough": 120.0}
SHRINK_SECONDS = {"dev": 5.0, "ci": 10.0, "default": 10.0, "thorough": 300.0}
EXAMPLE_SECONDS = {"dev": 10.0, "ci": 20.0, "default": 20.0, "thorough": 300.0}


class ExampleTooSlow(Exception):
    """One example's oracle work ran past ``EXAMPLE_SECONDS``."""


class Budget:
    def __init__(self, search: float | None = None, shrink: float | None = None):
        name = profile.name()
        self.search = SEARCH_SECONDS.get(name, 4.0) if search is None else search
        self.shrink = SHRINK_SECONDS.get(name, 10.0) if shrink is None else shrink
        self.start = None
        self.first_failure = None
        self.failed = {}  # example key -> its failure message
        self.per_example = EXAMPLE_SECONDS.get(name, 20.0)
        self.too_slow = 0  # examples that passed unmeasured, over the per-example cap

    @contextlib.contextmanager
    def example(self):
        """Run one example's measurement under the per-example cap; past it, ExampleTooSlow is raised inside
        and turned into a quiet return by ``Budget.capped`` callers (the example counts in ``too_slow``)."""
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

    def skip(self, key: str) -> bool:
        """Before measuring an example: True when it should pass unmeasured (the search budget is spent and no
        failure was seen, or the shrink budget is spent and this example is new); raises the recorded failure
        of an example already seen to fail."""
        now = time.monotonic()
        if self.start is None:
            self.start = now
        if key in self.failed:
            _raise(self.failed[key])
        if self.first_failure is None:
            return now - self.start > self.search
        return now - self.first_failure > self.shrink

    def fail(self, key: str, message: str):
        if self.first_failure is None:
            self.first_failure = time.monotonic()
        self.failed[key] = message
        _raise(message)


def _raise(message: str):
    """The one place a budgeted test fails, so Hypothesis sees one failure (it tells failures apart by where
    they are raised) whether the example was measured or replayed."""
    raise AssertionError(message)
