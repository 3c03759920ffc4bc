"""Load-independent searches (issue 18 item 1): no clock decides which inputs a battery test measures.

- A search run beside a CPU hog of its own measures the same inputs (a digest of the sequence of measured inputs
  and their verdicts) and reaches the same verdict as alone. Before the change (a 0.4 s per-example wall-clock cap,
  torch-cross_entropy-bfloat16-cpu, 100 examples) the digests differed: alone c24700930f67d364 (81 measured, 1 over
  the cap), beside the hog 89f1702a4aa08f33 (86 measured, 3 over), alone again 5d38cf68a2a55706 (88, 0).
- The per-example cap is a predicted oracle work (lossproof.work): skipped the same way every time, counted and
  listed; the wall-clock last resorts fail loudly (TimeLimitHit).
- A failure saved in the example database is replayed first by the next run, and a saved input that passes is
  dropped without changing the search's sequence.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossproof import budget as budget_mod
from lossproof import profiles
from lossproof import search as search_mod
from lossproof.budget import Budget, ExampleTooSlow, TimeLimitHit
from lossproof.cases import all_cases
from lossproof.work import predict
from oracles.codec import hex_tree


def _case(case_id):
    return next(c for c in all_cases() if c.id == case_id)


@pytest.fixture
def no_database(monkeypatch):
    monkeypatch.setenv(budget_mod.EXAMPLES_ENV, "off")


def _digest(case, profile, examples, **kw):
    """(digest of the measured inputs and verdicts in order, measured, skipped over the cap, verdict)."""
    seq = []
    with profiles.use(profile):
        run = search_mod.search("agreement", case, edges=False, examples=examples,
                                record=lambda m, d, g: seq.append([hex_tree(m.kwargs), m.verdict]), **kw)
        try:
            run.run()
            verdict = "pass"
        except AssertionError as e:
            verdict = "fail: " + str(e).splitlines()[0]
    digest = hashlib.sha256(json.dumps(seq).encode()).hexdigest()[:16]
    return digest, len(seq), run.budget.too_slow, verdict


def test_a_search_beside_a_cpu_hog_measures_the_same_inputs(no_database):
    """The bfloat16 cross_entropy search with a per-example work cap low enough that some examples are skipped
    (1e6 bit-terms: under a second of oracle work at the measured 0.2-1.3 us per bit-term, where the old wall-clock
    cap of 0.4 s gave different digests alone and under load), alone and beside two busy-looping processes (the
    machine's 2 cores taken): the same digest, the same skipped count, the same verdict."""
    profiles.PROFILES["loadtest"] = dataclasses.replace(profiles.PROFILES["ci"], name="loadtest", example_work=1e6)
    case = _case("torch-cross_entropy-bfloat16-cpu")
    try:
        alone = _digest(case, "loadtest", 100)
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        try:
            time.sleep(0.2)  # the hogs running before the search starts
            loaded = _digest(case, "loadtest", 100)
        finally:
            for h in hogs:
                h.kill()
                h.wait()
    finally:
        del profiles.PROFILES["loadtest"]
    assert alone[2] > 0, "the cap skipped nothing: the test would not show that skipping is load-independent"
    assert loaded == alone, f"alone {alone} vs beside the hog {loaded}"


def test_the_work_cap_skips_deterministically_and_lists_what_it_skipped():
    """An example over the predicted-work cap raises ExampleTooSlow before the oracle starts (no clock), every
    time; it is counted and its compact input listed in the report; one under the cap runs."""
    small = {"input": [[1.0, 2.0, 3.0]], "target": [0], "reduction": "mean"}
    big = {"input": [[-1.0e4] * 300 + [1.0e4]], "target": [0], "reduction": "mean"}
    # the spread 2e4 cancels about 2e4 * log2(e) = 28,854 bits in the gradient: 302 numbers at ~29,900 bit-terms
    # each, about 9e6, far over the 1e6 cap; the small one is 4 numbers at ~1,100
    assert predict("cross_entropy", "float32", small) < 10_000 < 1e6 < predict("cross_entropy", "float32", big)
    b = Budget(search=60, shrink=10)
    b.example_work, b.loss, b.fmt = 1e6, "cross_entropy", "float32"
    for _ in range(2):
        b.admit(big)
        with pytest.raises(ExampleTooSlow, match="predicted oracle work"):
            with b.example():
                raise AssertionError("the oracle ran on an example over the cap")
        b.too_slow += 1  # as the search's bodies count it
    b.admit(small)
    with b.example():
        ran = True
    assert ran and b.too_slow == 2 and len(b.skipped) == 2
    line = b.report("case")
    assert line is not None and "2 example(s) over the per-example cap" in line and "-10000.0 x300" in line


def test_the_wall_clock_last_resorts_are_loud():
    """An example past ``example_seconds`` fails the test with TimeLimitHit, naming the example, its predicted work
    and the cap (never passing unmeasured: which examples a loaded machine would skip depends on the load, and a
    skipped example changes the search's sequence); so does a search past ``search_seconds`` (never a silent
    pass)."""
    b = Budget(search=60, shrink=10)
    b.per_example = 0.05
    calls = []

    @settings(max_examples=5, derandomize=True, database=None, deadline=None)
    @given(st.integers(0, 10))
    def slow(n):
        b.check(str(n))
        b.admit({"input": [float(n)]})
        calls.append(n)
        try:
            with b.example():
                time.sleep(0.5)
        except ExampleTooSlow:
            b.too_slow += 1  # what the search's bodies do

    with pytest.raises(TimeLimitHit, match=r"ran past the 0.05 s last resort \(predicted [0-9.e+]+ bit-terms"):
        b.run(slow)
    assert len(calls) == 1, "the run went on after the last resort was hit"

    b2 = Budget(search=0.0, shrink=10)

    @settings(max_examples=5, derandomize=True, database=None, deadline=None)
    @given(st.integers(0, 10))
    def many(n):
        b2.check(str(n))
        time.sleep(0.01)

    with pytest.raises(TimeLimitHit, match="search ran past its 0 s last resort"):
        b2.run(many)


def _wrong(case, where=lambda kwargs: True):
    """The case with a function 1.5 times the right value plus 1 on the inputs ``where`` picks: fails the
    agreement there."""
    def call(kwargs):
        values, grads = case.call(kwargs)
        return ([1.5 * v + 1.0 for v in values] if where(kwargs) else values), grads
    return dataclasses.replace(case, call=call)


def _once(case):
    seq: list = []
    run = search_mod.search("agreement", case, edges=False, examples=30, budget=Budget(shrink=1.0),
                            record=lambda m, d, g: seq.append(hex_tree(m.kwargs)))
    return seq, run.outcome(), run


def test_a_failing_search_saves_its_minimal_input_and_the_next_run_measures_it_first(tmp_path, monkeypatch):
    monkeypatch.setenv(budget_mod.EXAMPLES_ENV, str(tmp_path / "examples"))
    wrong = _wrong(_case("torch-sigmoid-float64-cpu"))
    _, err1, run1 = _once(wrong)
    minimal = run1.state["last_fail"]
    assert err1 is not None and minimal is not None
    assert budget_mod.saved("agreement", run1._cell()) == [minimal]
    second, err2, _ = _once(wrong)
    assert second[0] == hex_tree(minimal), "the saved failure was not the first input measured"
    # the run's own report stands, as it would without a database (which minimal input it shows depends on the
    # shrink budget, in seconds: not compared)
    assert err2 is not None and "replayed first" not in err2


def test_a_saved_failure_the_search_misses_fails_the_next_run_and_a_fixed_one_is_dropped(tmp_path, monkeypatch):
    """A failure an earlier (say, randomly seeded) run found at an input the derandomized search never draws: the
    next run replays it first and fails on it; once fixed, the replay passes, the input is dropped, and the search
    measures exactly what a run without a database measures."""
    monkeypatch.setenv(budget_mod.EXAMPLES_ENV, str(tmp_path / "examples"))
    case = _case("torch-sigmoid-float64-cpu")
    rare = {"input": [0.1234567, -3.0]}
    wrong = _wrong(case, lambda kwargs: kwargs.get("input") == rare["input"])
    _, clean_err, run0 = _once(wrong)
    assert clean_err is None, "the search draws the rare input itself: pick another"
    budget_mod.save("agreement", run0._cell(), rare)
    replayed, err, run = _once(wrong)
    assert replayed[0] == hex_tree(rare) and err is not None and "replayed first" in err
    assert run.state["last_fail"] == rare and budget_mod.saved("agreement", run0._cell()) == [rare]
    fixed, err_fixed, _ = _once(case)
    assert err_fixed is None and budget_mod.saved("agreement", run0._cell()) == []
    monkeypatch.setenv(budget_mod.EXAMPLES_ENV, "off")
    clean, err_off, _ = _once(case)
    assert err_off is None and fixed[0] == hex_tree(rare) and fixed[1:] == clean


def test_the_literals_of_local_modules_never_change_what_a_search_measures(no_database, tmp_path, monkeypatch):
    """Hypothesis mixes literals of the process's local modules (outside site-packages) into its draws; a search
    runs without them (lossproof.budget.search_constants_only), so the local constants of another environment (a
    checkout's own modules, a user's project: here a module of new literals, added to the pool as Hypothesis adds
    an imported module's) leave its inputs as they were: the same digest. Without that, these literals moved the
    sequence of torch's float32 log_softmax search (the digests differed). Which modules Hypothesis has scanned
    is itself not reliable (it tracks them by id(), which a new module can reuse), so the pool is set here, not
    left to an import."""
    from hypothesis.internal.conjecture import providers

    if not hasattr(providers, "_get_local_constants") or not hasattr(providers, "CONSTANTS_CACHE"):
        pytest.skip("this Hypothesis mixes no local constants into its draws: nothing to isolate")
    from hypothesis.internal.constants_ast import constants_from_module

    case = _case("torch-log_softmax-float32-cpu")
    before = _digest(case, "ci", 30)
    # under Hypothesis's own limit of constants per module (it skips a module of more)
    ints = ", ".join(str(v) for v in [*range(-100, 100), *(2**k for k in range(3, 64)),
                                      *(2**k - 1 for k in range(3, 64)), *range(1000, 3000, 13)])
    floats = ", ".join(repr(v) for v in (1e-45, 1e-38, 65504.0, 3.4e38, 88.72283935546875, -103.97, 1e-7, 0.1, 2.5))
    (tmp_path / "lossproof_local_literals.py").write_text(f"INTS = ({ints},)\nFLOATS = ({floats},)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lossproof_local_literals

    try:
        pool = providers._get_local_constants() | constants_from_module(lossproof_local_literals)
        assert len(pool.integers) > 200, len(pool.integers)  # the literals are in it
        monkeypatch.setattr(providers, "_get_local_constants", lambda: pool)
        monkeypatch.setattr(providers, "CONSTANTS_CACHE", {})
        after = _digest(case, "ci", 30)
    finally:
        sys.modules.pop("lossproof_local_literals", None)
    assert after == before, f"without the module's literals {before}, with them {after}"
