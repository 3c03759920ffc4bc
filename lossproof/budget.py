"""Budgets for one property test: how many examples it measures, how much oracle work one example may take, and
how long it may shrink a failure. No clock decides which inputs a test measures.

The search: under the ``ci`` profile (the default) a property test measures examples in Hypothesis's derandomized
order until it has measured ``max_examples`` of them (50 for agreement and for no-overflow) or compared the
profile's ``work`` numbers with the oracle (ci: 6,000 values and gradient components), whichever comes first (chosen
by detection power: lossproof.profiles). Both are counts, not seconds, so a run measures the same inputs on any
machine under any load: its verdict does not depend on the clock (tests/meta/test_load_independence.py runs a search
beside a CPU hog and compares digests). Tests of small problems measure all their examples; tests of long rows stop
after a few dozen. The ``thorough`` profile searches longer, by the same counts: 2,000 examples or 500,000 numbers.

The example: one example can take seconds (an exact gradient of a row whose cancellation needs tens of thousands
of bits). Before the oracle starts, ``admit`` predicts its work in bit-terms (lossproof.work: the numbers in the
call times the working precision the oracle's escalation would need, capped by its precision cap) and an
example over the profile's ``example_work`` passes unmeasured: counted in ``too_slow``, its compact input listed
in ``skipped`` and in ``report``, the same examples on every machine.

Last resorts, in seconds, that never change the sequence silently: a search still running after
``search_seconds`` (ci 300 s: the slowest ci test, torch cross_entropy bfloat16, took 26-28 s on a loaded 2-core
machine, its search alone 8 s) and one example's measurement still running after ``example_seconds`` (ci 300 s:
30 times the slowest admitted example of the ci sequences, timed by benchmarks/work_model.py on a loaded
2-core machine) fail the test with ``TimeLimitHit``, naming the example, its prediction and the cap, and saying
that going on without the example would make the measured sequence depend on the machine. They catch a hung
oracle, an example the prediction misses by far, or a machine far slower than any the caps were sized on.

The shrink: Hypothesis shrinks a failure for up to 500 steps or 5 minutes, each step a full measurement (and a
whole new problem drawn). Once the shrink budget since the first failure is spent, the run stops (``Spent``) and
the test fails with the smallest failure found so far, its report and reproducer: the smallest found within the
budget, not necessarily a local minimum; whether the test fails does not depend on it (only which minimal input
is shown may).

Budgets per profile (per test; lossproof.profiles): work dev 4,000 / ci 6,000 / thorough 500,000 numbers;
example work dev 1e8 / ci 3e8 / thorough 1e9 bit-terms; last resorts (search, example) dev 120 s, 60 s / ci
300 s, 300 s / thorough 3,600 s, 1,800 s; shrink dev 5 / ci 10 / thorough 300 s.

The example database (``examples_dir``, ``saved``, ``save``, ``forget``): a failing search's minimal input is
saved in Hypothesis's DirectoryBasedExampleDatabase under ``.hypothesis/lossproof/`` of the working directory
(``LOSSPROOF_EXAMPLES_DIR`` elsewhere; empty or "off": none), one key per property and case, and the next run
measures it first (lossproof.search: ``Search.run``), before and apart from the derandomized search, so a
saved example never changes which inputs the search itself measures.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

from hypothesis.database import DirectoryBasedExampleDatabase

try:  # Hypothesis's draws: its local constants (search_constants_only), private and not in every version
    from hypothesis.internal.conjecture import providers as _providers
except ImportError:  # pragma: no cover - a Hypothesis without that module
    _providers = None

from oracles.codec import hex_tree, unhex_tree
from reports.reproducers import compact_input

from . import profiles
from .interpreter import fewer_collections, with_stack_room
from .work import predict

#: the example database's directory, relative to the working directory, and the variable that moves it
EXAMPLES_DIR = Path(".hypothesis") / "lossproof"
EXAMPLES_ENV = "LOSSPROOF_EXAMPLES_DIR"
#: how many skipped examples ``report`` lists in full (all are counted)
LISTED = 5


class ExampleTooSlow(Exception):
    """One example passes unmeasured: its predicted oracle work is over the cap (``admit``), or (a last resort,
    turned into ``TimeLimitHit`` by the budget) its oracle ran past ``example_seconds``."""


class TimeLimitHit(RuntimeError):
    """A wall-clock last resort was hit: the test fails rather than measure a machine-dependent sequence."""


class Spent(BaseException):
    """Raised through Hypothesis once a budget is spent: the work budget or the search's last resort with no
    failure seen, the shrink budget since the first failure, or an example's last resort (``overtime``).
    Letting Hypothesis run on with every further example passing unmeasured would reach the same verdict and the
    same smallest failure, but its shrinker and its target optimiser would go on drawing candidates (each a whole
    problem: most of a minute for 4,096-class rows), so the run stops at once. A BaseException, so that
    Hypothesis does not take it for a failure of the example; ``Budget.run`` turns it into the test's outcome."""


class Budget:
    def __init__(self, search: float | None = None, shrink: float | None = None):
        prof = profiles.current()
        self.search = prof.search_seconds if search is None else search
        self.shrink = prof.shrink_seconds if shrink is None else shrink
        self.start = None
        self.first_failure = None
        self.failed = {}  # example key -> its failure message
        self.last_message = None  # the latest failure: Hypothesis only tries smaller candidates, so the smallest
        self.per_example = prof.example_seconds  # the last resort per example (seconds)
        self.example_work = prof.example_work  # the cap per example (predicted bit-terms, lossproof.work)
        self.loss: str | None = None  # the case's loss and format, for the prediction (set by Search.run)
        self.fmt: str | None = None
        self.costly = False  # the current example's predicted work is over the cap (``admit``)
        self.too_slow = 0  # examples that passed unmeasured, over the cap
        self.skipped: list = []  # their compact inputs, in the order met
        self.overtime: str | None = None  # the example that ran past the last resort
        self._kwargs: dict | None = None  # the example being measured (``current`` writes it for messages)
        self.examples = 0  # examples that reached ``check``
        self.max_work = prof.work
        self.work = 0  # numbers compared so far (``spend``)
        self.stopped = None  # "work", "search" or "shrink" when the run was stopped by a spent budget

    def admit(self, kwargs: dict) -> int:
        """Predict the oracle work of the example about to be measured (lossproof.work) and mark it over the cap
        or not: ``example`` then skips it (deterministically: the prediction reads only the input). Returns the
        prediction."""
        cost = predict(self.loss, self.fmt, kwargs)
        self.costly = cost > self.example_work
        self._kwargs = kwargs
        if self.costly:
            self.skipped.append(compact_input(kwargs))
        return cost

    @property
    def current(self) -> str | None:
        """The compact input of the example being measured, for a message: written only when one is (writing
        every admitted example's took 3% of the no-overflow searches' time, measured)."""
        return None if self._kwargs is None else compact_input(self._kwargs)

    @contextlib.contextmanager
    def example(self):
        """Run one example's measurement: an example ``admit`` found over the cap raises ExampleTooSlow at once
        (the caller lets it pass unmeasured and counts it in ``too_slow``); else it runs, under the wall-clock last
        resort (SIGALRM, main thread only), past which ExampleTooSlow is raised inside and the budget records
        ``overtime``: the next ``check``, or ``run`` at the end, fails the test with ``TimeLimitHit``."""
        if self.costly:
            self.costly = False
            raise ExampleTooSlow(f"predicted oracle work over {self.example_work:.3g} bit-terms")
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
            yield
            return

        def alarm(signum, frame):
            # the prediction missed this one by far: the test fails (``overtime``: the next ``check`` stops the
            # run, ``run`` raises TimeLimitHit), never passing it unmeasured, which would make the measured
            # sequence depend on the load (a skipped example calls no ``target``)
            self.overtime = (f"one example's measurement ran past the {self.per_example:g} s last resort "
                             f"(predicted {predict(self.loss, self.fmt, self._kwargs) if self._kwargs else 0:.3g} "
                             f"bit-terms, the cap {self.example_work:.3g}): {(self.current or '?')[:300]}")
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
        ``Spent`` once the work budget or the search's last resort (no failure seen), the shrink budget (since the
        first failure) is spent, or an example ran past its last resort; else returns, and the example is
        measured."""
        now = time.monotonic()
        if self.start is None:
            self.start = now
        if self.overtime is not None:
            raise Spent("overtime")
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
        """For the fixed edge problems and the replayed examples (lossproof/search.py): each is measured whatever
        the work budget and the search's last resort (neither stops them: they are the same on every run), and
        both start afresh after them, for the search. The per-example cap and its last resort still apply, and
        the examples count in ``examples`` and ``too_slow``."""
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
        budget ends it with the smallest failure found (an AssertionError with its report and reproducer); a spent
        work budget ends it as a pass; a last resort hit (the search's, or an example's) fails it with
        ``TimeLimitHit``, never a silent pass. Python's cyclic garbage collector runs less often meanwhile
        (``fewer_collections``), the search runs with room on the interpreter's frame stack
        (``with_stack_room``), and it draws without the constants of the process's local modules
        (``search_constants_only``)."""
        try:
            with fewer_collections(), search_constants_only():
                with_stack_room(test)
        except Spent:
            if self.overtime is not None:
                self._time_limit(self.overtime)
            if self.stopped == "search":
                self._time_limit(f"the search ran past its {self.search:g} s last resort after {self.examples} "
                                 "example(s)")
            if self.first_failure is not None:
                _raise(f"{self.last_message}\n(the smallest failing example found within the {self.shrink:g} s "
                       "shrink budget)")
        if self.overtime is not None:  # the last example ran past it: nothing after it to stop
            self._time_limit(self.overtime)

    def _time_limit(self, what: str):
        raise TimeLimitHit(f"time limit hit: {what}; the test fails rather than go on without it, which would "
                           "make the sequence of measured inputs depend on the machine's load (raise the "
                           "profile's search_seconds or example_seconds, or lower example_work, if this machine "
                           "is that slow)")

    def report(self, case_id: str) -> str | None:
        """One line on the examples that passed unmeasured (predicted over the per-example work cap, the first
        ``LISTED`` of them listed) and on a search stopped by its last resort, or None when every example drawn
        was measured."""
        parts = []
        if self.too_slow:
            listed = "; ".join(s if len(s) <= 200 else s[:197] + "..." for s in self.skipped[:LISTED])
            more = f" (and {len(self.skipped) - LISTED} more)" if len(self.skipped) > LISTED else ""
            parts.append(f"{self.too_slow} example(s) over the per-example cap of {self.example_work:.3g} "
                         f"predicted bit-terms passed unmeasured: {listed}{more}")
        if self.stopped == "search":
            parts.append(f"the search stopped at the {self.search:g} s safety net after {self.examples} example(s)")
        return f"{case_id}: " + "; ".join(parts) if parts else None


def _raise(message: str):
    """The one place a budgeted test fails, so Hypothesis sees one failure (it tells failures apart by where
    they are raised) whether the example was measured or replayed."""
    raise AssertionError(message)


@contextlib.contextmanager
def search_constants_only():
    """Hypothesis (6.1xx) mixes into its draws, about one draw in twenty, literals it collects from the source of
    every "local" module in ``sys.modules``: any module outside site-packages and the standard library that is not
    a test file. Which modules those are depends on the environment, not on the search: lossproof's own modules
    where it is installed from a checkout (this repository's test command, an editable install), not where it is
    installed from the wheel, and every module of the user's project imported so far. So the same derandomized
    search measured other inputs from a checkout than from the installed wheel (a user's logsumexp: 12 and 38
    examples measured against 11 and 11, the same seed and strategy; excluding lossproof's own modules from the
    scan gave the wheel's sequence, 2026-12-07), and an edit of any literal anywhere in lossproof changed what the
    battery measured. For the block, Hypothesis's local constants are empty and its cache of permitted constants
    is one of lossproof's own (holding only what the empty pool and Hypothesis's global constants give), so a
    search's inputs depend on its seed and strategies alone; both are restored after it. A Hypothesis without
    that mechanism is left as it is. tests/meta/test_load_independence.py checks that a module of new literals,
    imported or not, leaves a search's inputs as they are."""
    providers = _providers
    try:
        get, cache, empty = providers._get_local_constants, providers.CONSTANTS_CACHE, providers.Constants()
    except AttributeError:  # no such module (None), or one without the mechanism
        yield
        return
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE = _SEARCH_CONSTANTS_CACHE
    try:
        yield
    finally:
        providers._get_local_constants, providers.CONSTANTS_CACHE = get, cache


#: Hypothesis's permitted constants per choice type and constraints, as ``search_constants_only`` computes them
#: (no local constants): kept across searches, since they depend on nothing else
_SEARCH_CONSTANTS_CACHE: dict = {}


def examples_dir() -> Path | None:
    """The example database's directory: $LOSSPROOF_EXAMPLES_DIR, else .hypothesis/lossproof/ under the working
    directory; None when the variable is set to "" or "off" (no database)."""
    env = os.environ.get(EXAMPLES_ENV)
    if env is None:
        return Path.cwd() / EXAMPLES_DIR
    return None if env.strip().lower() in ("", "off") else Path(env)


def _db() -> DirectoryBasedExampleDatabase | None:
    where = examples_dir()
    return None if where is None else DirectoryBasedExampleDatabase(str(where))


def _key(prop: str, case_id: str) -> bytes:
    return hashlib.sha256(f"lossproof/1 {prop} {case_id}".encode()).digest()


def saved(prop: str, case_id: str) -> list:
    """The inputs saved as failing for property ``prop`` of case ``case_id`` (exact: floats spelled in hex),
    smallest first; none without a database. An entry that does not decode is dropped from the database."""
    db = _db()
    if db is None:
        return []
    out = []
    for blob in db.fetch(_key(prop, case_id)):
        try:
            kwargs = unhex_tree(json.loads(blob.decode()), keep=("mean", "sum", "none", "batchmean"))
        except (ValueError, UnicodeDecodeError):
            db.delete(_key(prop, case_id), blob)
            continue
        if isinstance(kwargs, dict):
            out.append((len(blob), blob, kwargs))
    return [k for _, _, k in sorted(out, key=lambda t: (t[0], t[1]))]


def _blob(kwargs: dict) -> bytes:
    return json.dumps(hex_tree(kwargs)).encode()


def save(prop: str, case_id: str, kwargs: dict) -> None:
    """Save a failing input (the search's minimal one) for the next run to measure first."""
    db = _db()
    if db is not None:
        db.save(_key(prop, case_id), _blob(kwargs))


def forget(prop: str, case_id: str, kwargs: dict) -> None:
    """Drop a saved input that no longer fails (the mistake was fixed)."""
    db = _db()
    if db is not None:
        db.delete(_key(prop, case_id), _blob(kwargs))
