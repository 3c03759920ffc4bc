"""One search for the battery's two searched properties, agreement and no overflow, shared by the pytest battery
(lossproof/battery: ``lossproof verify``, this repository's tests), ``lossproof check`` and the API, and by
``lossproof detect`` and the zoo's meta-tests.

Sharing matters beyond tidiness: under the ci profile Hypothesis derandomizes each test from a digest of its
test function, so one function here means one sequence of examples, and a zoo member is caught (or not) by
exactly the inputs ``lossproof check`` would measure for it.

Before the search, the loss's edge problems (lossproof.edges: labels past a format's integers, rows long enough
for a low-precision running sum to stall, means whose sums overflow) are measured the same way, as Hypothesis's
explicit examples: a fixed cost outside the search's work budget, the same on every run and for every seed.

``search(prop, case, ...)`` returns a ``Search``: its ``test`` is the ``@given`` function, run under its budget
with ``Search.run()`` (failures propagate, with Hypothesis's report, as pytest wants them) or ``Search.outcome()``
(failures caught, as detect wants them); its ``state`` holds what detect reports (examples measured, time to the
first failure, the last, hence smallest, failing input, a capability found missing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, assume, example, given, note, settings, target
from hypothesis import seed as hseed
from hypothesis import strategies as st

from reports.reproducers import compact_input
from subjects import deviations
from subjects.torch_subject import upstream

from . import judge, profiles
from .budget import Budget, ExampleTooSlow, examples_dir, forget, save, saved
from .cases import NotSupported, format_changed, restrict, unsupported
from .edges import edge_problems
from .measure import measure
from .problems import finite_except_masks, problems
from .regimes import REGIMES, regime_of

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
#: the same list for other Hypothesis tests of the battery (lossproof/battery/test_properties.py). ``_HEALTH`` keeps
#: its name: it is written in the search's ``@settings`` decorator, whose text seeds every derandomized draw
SUPPRESSED_HEALTH_CHECKS = _HEALTH

#: Hypothesis's phases but its explain phase. From a test's first failure on, that phase runs every later example,
#: each step of the shrink included, under a line tracer (sys.settrace on Python 3.11) to print which lines only
#: failing examples ran; lossproof reports a failure as its own minimal input, numbers and reproducer, never those
#: lines. The examples drawn and the shrinker's steps are the same without it (a derandomized search draws the same
#: sequence); only the time per step changes.
SEARCH_PHASES = tuple(p for p in Phase if p is not Phase.explain)


@dataclass
class Search:
    prop: str
    test: object  # the @given function
    budget: Budget
    state: dict = field(default_factory=dict)
    edges: object = None  # the edge problems' test (explicit examples), run first; None where the loss has none
    examples: int = 0  # the search's example budget (the profile's, or the caller's)
    case: object = None

    def run_reporting(self, record_property, accept_used: set | None = None):
        """``run``, then (failing or not) what the cell measured as pytest test properties, which ``lossproof
        check`` reads to build its findings table: examples measured, the budget, the minimal failing input, the
        function's first refusal; and the labels of the accept entries used, into ``accept_used``."""
        try:
            self.run()
        finally:
            if accept_used is not None:
                accept_used.update(self.state.get("accepted", {}))
            record_property("lossproof_measured", self.state["measured"])
            record_property("lossproof_budget", self.examples)
            record_property("lossproof_raised", self.state.get("raised", 0))
            c = self.counts()
            record_property("lossproof_reach", (self.prop, self.case.id if self.case else "", c["drawn"],
                                                c["applied"], c["reached"], profiles.min_reached_share(self.prop)))
            failing = self.state["last_fail"]
            if failing is not None:
                record_property("lossproof_minimal", compact_input(failing))
                record_property("lossproof_regime", regime_of(self.case.loss, failing, self.case.fmt))
            if self.state["unsupported"]:
                record_property("lossproof_unsupported", self.state["unsupported"])
            for label, n in self.state.get("accepted", {}).items():
                record_property("lossproof_accepted", f"{n} x {label}")
            for dev, n in self.state.get("shared", {}).items():
                record_property("lossproof_shared", f"{n} x {dev}")
            for note in self.state.get("notes", []):  # the edge problems beside the search, other failures
                record_property("lossproof_note", note)

    def counts(self) -> dict:
        """Examples drawn (distinct draws, the edge problems included), applied (the property applies to the
        draw: the function was called, or the oracle's cap stopped it) and reached (the comparison with the exact
        result was made): what the summary prints per property and cell (issue 14: no vacuous property)."""
        measured, raised, slow = self.state["measured"], self.state.get("raised", 0), self.budget.too_slow
        return {"drawn": len(self.state.get("drawn_keys", ())), "applied": measured + raised + slow,
                "reached": measured}

    def under_reach(self) -> str | None:
        """Why too few of the drawn examples reached the comparison (``profiles.min_reached_share``), or None."""
        c, reach = self.counts(), profiles.min_reached_share(self.prop)
        if c["reached"] and c["reached"] >= reach * c["drawn"]:
            return None
        return (f"inconclusive: {c['reached']} of the {c['drawn']} examples drawn reached the comparison "
                f"(at least {reach:.0%} needed; {c['drawn'] - c['applied']} did not apply, the function raised on "
                f"{self.state.get('raised', 0)})")

    def inconclusive(self) -> str | None:
        """Why a passing run means too little, or None: of the examples where the property applied, the function
        raised on (or the oracle's cap left unmeasured) more than 1 - min_measured_share, or it measured none at
        all (docs/NUMERICS.md: a pass must mean something); or fewer of the drawn examples than the property's
        ``profiles.min_reached_share`` reached the comparison (the rest did not apply: non-finite inputs for no
        overflow, a parameter the function does not take)."""
        share = profiles.current().min_measured_share
        c = self.counts()
        measured, applied = c["reached"], c["applied"]
        raised, slow = self.state.get("raised", 0), self.budget.too_slow
        if measured and measured >= share * applied:
            return self.under_reach()
        why = (f"inconclusive: measured {measured} of the {applied} examples it applied to "
               f"(at least {share:.0%} needed)")
        if raised:
            why += f"; the function raised on {raised}, first: {self.state['unsupported']}"
            if self.case is not None and getattr(self.case, "is_user", False):
                # a function of another framework raises on every input: say which arrays it was given
                arrays = {"torch": "torch tensors", "numpy": "NumPy arrays", "jax": "JAX arrays"}
                why += (f" (it was called with {arrays.get(self.case.framework, self.case.framework)}: "
                        "--framework torch|numpy|jax chooses)")
        if slow:
            why += f"; {slow} over the per-example cap"
        return why


    def run(self):
        """Replay the failures an earlier run saved in the example database (lossproof.budget.saved), then run the
        edge problems, then the search, both to the end (a failing edge problem does not stop the search: the
        search may find a more ordinary input, the one a user should fix first); a failure then propagates (an
        AssertionError with its report and reproducer), the one whose minimal input is in the most ordinary regime
        (lossproof.regimes), naming the other, and its minimal input is saved for the next run to replay first.
        A replayed input that fails again is the test's failure when the run itself finds none (a failure found
        by an earlier, differently seeded run is not lost); when the run fails too, its own report stands, as it
        would without a database. One example's oracle work is capped by its prediction (lossproof.work,
        ``_admit``): no clock decides which inputs are measured."""
        self.state["t0"] = time.monotonic()
        if self.case is not None:
            self.budget.loss, self.budget.fmt = self.case.loss, self.case.fmt
        replay_error, replay_input = self._replay()
        self.state["t0"] = time.monotonic()  # the run's own time to a first failure, the replays' excluded
        try:
            self._run()
        except (AssertionError, BaseExceptionGroup):
            if self._database() and self.state["last_fail"] is not None:
                save(self.prop, self._cell(), self.state["last_fail"])
            raise
        if replay_error is not None:
            self.state["last_fail"] = replay_input
            raise replay_error

    def _database(self) -> bool:
        """Whether this run uses the example database: a case's derandomized or random run; not a run under an
        explicit seed (the zoo's controls: another sequence on purpose), nor one without a case."""
        return (self.case is not None and examples_dir() is not None
                and getattr(self.test, "_hypothesis_internal_use_seed", None) is None)

    def _cell(self) -> str:
        """The database's name for this search: property, case, examples, edge problems and profile (a search
        configured otherwise finds other failures, and must not replay them as its own)."""
        return f"{self.case.id} examples={self.examples} edges={self.edges is not None} {profiles.current().name}"

    def _replay(self):
        """Measure the failing inputs an earlier run saved for this search, first, as Hypothesis's explicit
        examples; returns (the failure, its input) when one fails again, else (None, None), having dropped the
        saved inputs (they pass now: the mistake was fixed). Then the search starts as on a clean machine (the
        budget restarted, the replays' inputs forgotten as seen, no first failure timed), so a saved example never
        changes which inputs the derandomized search measures."""
        one = self.state.get("one")
        if one is None or not self._database():
            return None, None
        inputs = saved(self.prop, self._cell())
        if not inputs:
            return None, None
        where = examples_dir()

        def replay(problem):
            try:
                one(problem)
            except AssertionError as e:
                raise AssertionError(f"{e}\n  replayed first: a failure an earlier run saved in {where}") from None

        for kwargs in reversed(inputs):  # decorators apply bottom-up: smallest first
            replay = example(problem=kwargs)(replay)
        test = settings(phases=[Phase.explicit], report_multiple_bugs=False, suppress_health_check=_HEALTH,
                        database=None, deadline=None)(given(problem=st.none())(replay))
        self.state["replayed"] = len(inputs)
        error = failing = None
        with self.budget.unmetered():
            try:
                self.budget.run(test)
            except (AssertionError, BaseExceptionGroup) as e:
                error, failing = e, self.state["last_fail"]
        if error is None:
            for kwargs in inputs:
                forget(self.prop, self._cell(), kwargs)
        self.budget.restart()
        self.state.update(seen=set(), first=None, last_fail=None)
        return error, failing

    def _run(self):
        edge_error = edge_input = None
        self.state.pop("failing_on", None)
        self.state.pop("edge_fail", None)
        self.state.update(searching=False, notes=[])  # the edge problems measure every gradient (_fail)
        if self.edges is not None:
            with self.budget.unmetered():  # a fixed cost: the search's budgets start after them
                try:
                    self.budget.run(self.edges)
                except (AssertionError, BaseExceptionGroup) as e:
                    edge_error, edge_input = e, self.state["last_fail"]
                    self.state["edge_fail"] = edge_input  # kept beside the search's own (last_fail)
                    self.budget.restart()
        self.state["searching"] = True
        try:
            try:
                self.budget.run(self.test)
            except BaseExceptionGroup as group:
                raise self._most_ordinary(group) from None
        except (AssertionError, BaseExceptionGroup) as e:
            # the search's failures are shrunk, and shrinking moves toward ordinary inputs (a format-edge failure of
            # naive_jax_ce shrinks to a typical one): the search's minimal input is what the run reports unless
            # the edge problem's is in a strictly more ordinary regime
            if edge_error is None or self._rank(self.state["last_fail"]) <= self._rank(edge_input):
                if edge_error is not None:
                    tie = self._rank(self.state["last_fail"]) == self._rank(edge_input)
                    self._note(e, "(an edge problem fails as well, in the same regime)" if tie else
                               "(an edge problem fails as well, in a less ordinary regime)")
                raise
            self.state["last_fail"] = edge_input
            self._note(edge_error, "(the search fails as well, in a less ordinary regime)")
            raise edge_error from None
        if edge_error is not None:
            self.state["last_fail"] = edge_input
            raise edge_error

    def _most_ordinary(self, group: BaseExceptionGroup) -> BaseException:
        """Of the distinct failures Hypothesis found in one search (its report_multiple_bugs), the one a user
        should fix first: a finding (an AssertionError, with its numbers and reproducer) whose minimal input is in
        the most ordinary regime, the first of those. It is noted with the others' first lines and inputs (an
        error the function raised, a finding in a less ordinary regime), and its input becomes the search's failing
        input (``last_fail``): a property reports one failure, as for a single bug. A group without a finding is
        returned as it is."""
        members: list = []

        def walk(g):
            for x in g.exceptions:
                walk(x) if isinstance(x, BaseExceptionGroup) else members.append(x)

        walk(group)
        findings = [x for x in members if isinstance(x, AssertionError)]
        if not findings or not all(isinstance(x, Exception) for x in members):
            return group
        chosen = min(findings, key=lambda x: self._rank(getattr(x, "lossproof_input", None)))
        if getattr(chosen, "lossproof_input", None) is not None:
            self.state["last_fail"] = chosen.lossproof_input
        others = [x for x in members if x is not chosen]
        if others:
            def line(x):
                where = getattr(x, "lossproof_input", None)
                text = _first_line(x if isinstance(x, AssertionError) else f"{type(x).__name__}: {x}")
                return text + ("" if where is None else f", on {_first_line(compact_input(where), 200)}")

            self._note(chosen, f"(the search found {len(members)} distinct failures; this one is in the most "
                               f"ordinary regime; the other{'s' if len(others) > 1 else ''}: "
                               + "; ".join(line(x) for x in others) + ")")
        return chosen

    def _note(self, error: BaseException, text: str):
        """A note on the run's failure: pytest prints it under the failure, ``outcome`` appends it to the message."""
        error.add_note(text)
        self.state.setdefault("notes", []).append(text)

    def _rank(self, kwargs) -> int:
        if kwargs is None or self.case is None:
            return len(REGIMES)
        return REGIMES.index(regime_of(self.case.loss, kwargs, self.case.fmt))

    def outcome(self):
        """Run the search and return (failure message or None); failures are caught, not raised. The message ends
        with the run's own notes (``_note``: the edge problems beside the search, the other distinct failures),
        not Hypothesis's. Several distinct failures arrive as one (``_most_ordinary``); a group without a finding
        propagates, as any error of the run does."""
        try:
            self.run()
        except AssertionError as e:
            return "\n".join([str(e), *self.state.get("notes", [])])
        return None


def search(prop: str, case, *, strict: bool = False, record=None, examples: int | None = None,
           seed: int | None = None, budget: Budget | None = None, edges: bool = True,
           strict_shared: bool = False, accept=()) -> Search:
    """The Hypothesis search of property ``prop`` ("agreement" or "no_overflow") for one case.

    ``record(measurement, deviation, gating)`` receives every agreement measurement (the results file);
    ``strict`` gates non-finite inputs too (--strict-specials); ``strict_shared`` gates a user's failures that
    torch shares (--strict); ``accept`` holds the user's accepted findings (lossproof.accept: measured, recorded
    as accepted, not gating); ``seed`` runs another, non-derandomized sequence
    (the zoo's controls); ``examples`` overrides the profile's count; ``edges=False`` leaves out the edge
    problems (lossproof.edges), which do not depend on the seed."""
    budget = budget or Budget()
    prof = profiles.current()
    state = {"measured": 0, "first": None, "last_fail": None, "unsupported": None, "t0": time.monotonic(),
             "missing": unsupported(case), "drawn_keys": set()}
    # drawn toward what the function takes: a draw that restricts to no call (a log-space target for a function
    # without one) would reach no comparison (the function's missing capabilities are reported, never passed)
    strategy = problems(case.loss, case.fmt, probability_targets="probability targets" not in state["missing"],
                        class_targets="class-index targets" not in state["missing"]
                        ).filter(lambda kw: restrict(case, kw) is not None)
    if prop == "agreement":
        body = _agreement_body(case, budget, state, strict, record, strict_shared, accept)
        n = examples or prof.agreement_examples
    elif prop == "no_overflow":
        body = _overflow_body(case, budget, state, strict_shared, accept)
        if case.accepts("input"):
            # no overflow is a property of finite inputs (-inf masks aside): the search draws only those (the
            # others are measured by agreement and the special-value table); half of xlogy's draws were not
            strategy = strategy.filter(lambda kw: finite_except_masks(case.loss, kw))
        n = examples or prof.overflow_examples
    else:
        raise ValueError(f"unknown searched property {prop!r}")

    # derandomized under ci, unless a seed asks for another sequence; thorough and dev search at random
    derandomize = seed is None and prof.derandomize
    # the phases here, not in the decorator below: a derandomized search's seed is a digest of the test's source,
    # its decorators included, and a new word there would change every sequence the battery draws
    extra = {"derandomize": derandomize, "phases": SEARCH_PHASES}

    def one(kwargs):
        state["current"] = state["key"] = None
        drawn = hash(repr(kwargs))  # counted once per distinct draw (Hypothesis replays and repeats some)
        new = drawn not in state["drawn_keys"]
        state["drawn_keys"].add(drawn)
        try:
            body(kwargs)
            if state["key"] is not None:
                state.setdefault("seen", set()).add(state["key"])
        except _Seen:  # a call measured already (another draw restricted to it): neither drawn again nor missed
            if new:
                state["drawn_keys"].discard(drawn)
            return
        except AssertionError as e:  # a failing example (new, or one seen to fail, replayed): the latest, smallest
            if state["first"] is None:
                state["first"] = time.monotonic() - state["t0"]
            state["last_fail"] = e.lossproof_input = state["current"]  # type: ignore[attr-defined]
            raise
        except Exception as e:  # an error the function raised (or its output's shape): its input, for the report
            try:
                e.lossproof_input = state["current"]  # type: ignore[attr-defined]
            except Exception:  # an exception type that takes no attributes: reported without its input
                pass
            raise

    state["one"] = one  # Search.run replays the example database's saved failures through it
    # database=None: derandomize=True implies it (Hypothesis refuses both), and Hypothesis's own database would
    # replay its saved pareto front between runs, changing the sequence; lossproof replays its saved failures
    # itself, first and apart from the search (Search._replay)
    @settings(max_examples=n, suppress_health_check=_HEALTH, database=None, deadline=None, **extra)
    @given(st.data())
    def check(data):
        one(data.draw(strategy, label="problem"))

    if seed is not None:
        check = hseed(seed)(check)
    return Search(prop, check, budget, state, _edges(case, state, one) if edges else None, n, case)


def _edges(case, state, one):
    """The edge problems of the case's loss (lossproof.edges) as a Hypothesis test of explicit examples only,
    run before the search: the same property, note and failure report as a drawn example, a fixed cost outside
    the search's work budget. None when the loss has none."""
    edges = edge_problems(case.loss, case.fmt, "probability targets" not in state["missing"])
    if not edges:
        return None

    def edge(problem):
        label, kwargs = edges[problem]
        state["edge"] = label.split(":")[0]  # the edge problem's name (accept entries name it)
        try:
            one(kwargs)
        except AssertionError as e:  # the failure report, and which boundary the input is at
            raise AssertionError(f"{e}\n  edge problem ({label})") from None
        finally:
            state["edge"] = None

    # each example is the edge problem's index, not the problem: Hypothesis writes every explicit example's
    # arguments out (pretty-printed, kept for a failure report) before running it, and for edge problems of up to
    # thousands of numbers that took 1% to 2% of a battery cell's time (measured); ``one``'s failure report
    # carries the input itself
    for i in reversed(range(len(edges))):  # decorators apply bottom-up: the list's order is the run's
        edge = example(problem=i).via(edges[i][0])(edge)
    return settings(phases=[Phase.explicit], report_multiple_bugs=False, suppress_health_check=_HEALTH,
                    database=None, deadline=None)(
        given(problem=st.integers(0, len(edges) - 1))(edge))


def _first_line(text: object, width: int = 160) -> str:
    """The first line of a text (or an exception's message), cut to ``width`` characters."""
    line = (str(text).strip().splitlines() or [type(text).__name__])[0]
    return line if len(line) <= width else line[: width - 3] + "..."


class _Seen(Exception):
    """An input already measured and passed: Hypothesis's generator often repeats one (a mutation of choices the
    problem does not read); measuring it again would spend the oracle's time and the work budget on nothing."""


def _fresh(state, key):
    """Raise _Seen for an input already measured and passed (the example then passes at once: rejecting it
    with ``assume`` would make Hypothesis's own replays of it inconsistent)."""
    if key in state.setdefault("seen", set()):
        raise _Seen()
    state["key"] = key  # marked seen once the example has passed (check, above)


def _admit(state, budget, kwargs) -> str:
    """The example's key, once the budget admits it (``Budget.check``) and it is not a repeat (``_fresh``); its
    oracle work predicted (``Budget.admit``, lossproof.work) before the oracle starts."""
    key = repr(kwargs)
    state["current"] = kwargs
    budget.check(key)
    _fresh(state, key)
    budget.admit(kwargs)  # over the predicted-work cap: ``budget.example()`` skips it, counted and listed
    return key


def _call(case, state, kwargs, unsupported):
    """(values, gradient) of the case's function, or None for a call it cannot take (noted in ``state``)."""
    try:
        out = case.call(kwargs)
        changed = format_changed(case)
        if changed:  # the values are judged against the input's format; the change itself is a finding
            state["format_changed"] = (f"{case.id}: {changed} (an output in another format than the input's is "
                                       f"a finding; its values, cast to {case.fmt}, are judged there)")
        return out
    except unsupported as e:
        state["raised"] = state.get("raised", 0) + 1
        state["unsupported"] = state["unsupported"] or str(e)  # the first refusal: the one to show
        return None


def _accepted(accept, case, state, prop, kwargs):
    """The first accept entry that matches a failing example (noted in ``state``), or None."""
    for entry in accept:
        if entry.matches(subject=case.subject, loss=case.loss, fmt=case.fmt, prop=prop, kwargs=kwargs,
                         edge=state.get("edge"), reference=judge.reference_of(case)):
            state.setdefault("accepted", {}).setdefault(entry.label, 0)
            state["accepted"][entry.label] += 1
            return entry
    return None


def _fail(state, budget, key, problem, on=None):
    """Fail the example being measured; ``on``: what the search's first failure was found on ("values" or
    "gradient"), kept in ``state["failing_on"]`` for what the agreement body measures while Hypothesis shrinks it."""
    if on is not None and state.get("searching"):
        state.setdefault("failing_on", on)
    budget.fail(key, problem)


#: while Hypothesis shrinks a failure on values, a candidate's gradient is measured only up to this many components
_SHRINK_GRADIENT_MAX = 256


def _gradient_pays(state, grads) -> bool:
    """Whether a candidate's gradient is measured once the search has failed on values (``state["failing_on"]``):
    for a small input, whose gradient costs little (about 40 us a component, ``benchmarks/verdict_speed.py``: 10 ms
    at 256) and may fail where its values pass, a failure Hypothesis can shrink toward; not for a large one (the
    3 x 256 candidates of naive_cross_entropy's float32 failure cost 278 ms each, 94% of its shrinking time).
    Measured on naive_cross_entropy in four formats: never measuring them sent the float64 and bfloat16 shrinks
    through the whole 10 s budget (float64 ended on 36 logits of 2.5e7), always measuring them kept float32's at
    11 s; at 64 components float64 still ran 11 s, at 256 and 1,024 it ended in 4 s on [0.0, 10000.0], float32 in
    6 s at 256 and 10 s at 1,024. A trade-off of cost against the shrinker's paths: a large candidate is judged
    on its values alone, so its gradient failure is not seen; the search's own examples always are measured whole."""
    return state.get("failing_on") != "values" or (grads is not None and len(grads) <= _SHRINK_GRADIENT_MAX)


def _agreement_body(case, budget, state, strict, record, strict_shared=False, accept=()):
    def body(kwargs):
        kwargs = restrict(case, kwargs)
        assume(kwargs is not None)
        note("exact inputs: " + repr(kwargs))
        key = _admit(state, budget, kwargs)
        called = _call(case, state, kwargs, (NotSupported,))
        if called is None:
            return
        values, grads = called
        up = upstream(len(values)) if case.framework in ("torch", "jax") else None
        # the gradient is measured only when the values meet the requirement or a documented deviation may
        # explain them (a failing example fails on its values alone: half the cost while Hypothesis shrinks it),
        # and, once the search has failed on values, only for small candidates (``_gradient_pays``)
        try:
            with budget.example():
                m = measure(case.subject, case.loss, case.fmt, case.device, kwargs, values, grads, upstream=up,
                            go_on=lambda mv: _gradient_pays(state, grads) and (
                                judge.meets(case, mv) or bool(deviations.matching(
                                    judge.reference_of(case) or case.subject, case.loss, kwargs, case.fmt))))
        except ExampleTooSlow:
            budget.too_slow += 1
            return
        state["measured"] += 1
        budget.spend(len(m.elements))
        gating = strict or finite_except_masks(case.loss, kwargs)
        deviation, problem = judge.judge(case, kwargs, m, values, strict_shared, lazy=True)
        changed = state.pop("format_changed", None)
        if changed is not None:
            problem = changed + "\n" + (problem or judge.case_reproducer(case, kwargs))
        entry = _accepted(accept, case, state, "agreement", kwargs) if problem and gating else None
        if entry is not None:  # measured and recorded as accepted, never dropped
            deviation, problem = f"accepted: {entry.where}", None
        # climb toward more bits of error, but not into what a user's function shares with torch or accepted:
        # those regions would draw the whole search away from the function's own mistakes
        excused = case.is_user and deviation is not None
        if excused and problem is None and deviation.startswith(judge.shared_prefix(case)):
            # a failure the reference shares: not gating (--strict gates it), but counted for the check's table
            shared = state.setdefault("shared", {})
            shared[deviation] = shared.get(deviation, 0) + 1
        target(0.0 if excused else m.max_bits, label="bits of error")
        if record is not None:
            record(m, deviation, gating)
        if problem and gating:
            _fail(state, budget, key, problem,
                  "gradient" if any(e.kind == "grad" for e in m.elements) else "values")

    return body


def _overflow_body(case, budget, state, strict_shared=False, accept=()):
    def body(kwargs):
        kw = judge.overflow_call(case, kwargs, strict_shared)
        if kw is None:
            return
        key = _admit(state, budget, kw)
        called = _call(case, state, kw, (NotSupported, NotImplementedError))
        if called is None:
            return
        values, grads = called
        budget.spend(len(values) + len(grads or ()))
        try:
            with budget.example():
                problem = judge.overflow_failure(case, kw, values, grads, strict_shared=strict_shared, lazy=True)
        except ExampleTooSlow:
            budget.too_slow += 1
            return
        state["measured"] += 1
        if problem and _accepted(accept, case, state, "no overflow", kw) is None:
            _fail(state, budget, key, problem)

    return body
