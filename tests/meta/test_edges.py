"""The edge problems of lossproof/edges.py: exact, within the size the oracle is budgeted for, gating, and each on the
boundary its label names (checked by simulating the low-precision arithmetic it is there to expose, with the
oracle's own correct rounding); and the runner measures them before its search and says which one failed."""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import pytest

import oracles
from lossproof import detect, edges, judge, search, zoo
from lossproof.budget import Budget
from lossproof.catalogue import NAMES as LOSSES
from lossproof.edges import LOW_PRECISION, MAX_TERMS, edge_problems
from lossproof.problems import finite_except_masks
from lossproof.regimes import REGIMES, regime_of
from oracles.codec import flat as _flat
from oracles.formats import FORMATS, round_to_format


def _floats(kwargs):
    return [x for k in ("input", "target", "weight") if k in kwargs for x in _flat(kwargs[k])
            if isinstance(x, float)]


def _running_sum(terms, fmt):
    """A running total kept in ``fmt``: every addition correctly rounded to the format (what a float16 accumulator
    does), exact otherwise."""
    acc = 0.0
    for t in terms:
        acc = round_to_format(Fraction(acc) + Fraction(t), fmt)
    return acc


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("loss", LOSSES)
def test_edge_problems_are_exact_small_and_gating(loss, fmt):
    for label, kw in edge_problems(loss, fmt):
        assert label.split(":")[0] in edges.CATEGORIES, label
        xs = _floats(kw)
        assert xs and all(round_to_format(x, fmt) == x or math.isinf(x) for x in xs), label  # exact in fmt
        assert len(_flat(kw["input"])) <= 2 * MAX_TERMS, label  # rows of MAX_TERMS, or MAX_TERMS rows of two
        assert finite_except_masks(loss, kw), label  # they gate the run, like any finite draw
        z = oracles.REGISTRY[loss](**kw)
        assert all(math.isfinite(e.to(fmt)) for e in _flat(z)), label


def test_every_softmax_family_and_reduced_loss_has_edges_and_elementwise_ones_none():
    for loss in ("cross_entropy", "nll_loss", "kl_div", "logsumexp", "softmax", "log_softmax",
                 "binary_cross_entropy", "binary_cross_entropy_with_logits"):
        assert edge_problems(loss, "float32"), loss
    for loss in ("sigmoid", "logsigmoid", "softplus", "xlogy"):
        assert edge_problems(loss, "float32") == [], loss
    with_probs = {lab for lab, _ in edge_problems("cross_entropy", "float16")}
    without = {lab for lab, _ in edge_problems("cross_entropy", "float16", probability_targets=False)}
    assert without < with_probs and not any("probability" in lab for lab in without)


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown format"):
        edge_problems("cross_entropy", "float8")


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_labels_are_the_first_integers_the_low_precision_formats_lose(loss):
    targets = sorted(kw["target"][0] for lab, kw in edge_problems(loss, "float32")
                     if lab.startswith("label_past_integers"))
    expected = []
    for name in LOW_PRECISION:
        t = next(n for n in range(1, 10**5) if round_to_format(n, name) != n)  # the first integer the format loses
        expected.append(t)
    assert targets == sorted(expected) == [257, 2049]
    for lab, kw in edge_problems(loss, "float32"):
        if lab.startswith("label_past_integers"):
            row, t = kw["input"][0], kw["target"][0]
            assert len(row) == t + 1 and row[t] != row[t - 1]  # a neighbouring class reads differently


@pytest.mark.parametrize("loss", ["cross_entropy", "logsumexp", "softmax", "log_softmax"])
def test_equal_rows_make_a_low_precision_running_sum_stall(loss):
    rows = [kw["input"][0] for lab, kw in edge_problems(loss, "float32") if lab.startswith("running_sum_stalls")]
    assert sorted(len(r) for r in rows) == [512, 4096]
    for name in LOW_PRECISION:
        n = 2 ** (FORMATS[name].p + 1)
        assert any(len(r) == n for r in rows)
        assert _running_sum([1.0] * n, name) == n / 2  # exp(x - max) = 1 each: the total stops at half


@pytest.mark.parametrize("fmt", FORMATS)
def test_sums_past_the_largest_finite_value_have_finite_means(fmt):
    found = 0
    for loss in LOSSES:
        for lab, kw in edge_problems(loss, fmt):
            if not lab.startswith("sum_past_largest"):
                continue
            found += 1
            z = oracles.REGISTRY[loss](**kw)
            assert math.isfinite(z.to(fmt))  # the mean is finite ...
            terms = oracles.REGISTRY[loss](**dict(kw, reduction="none"))
            assert math.isinf(round_to_format(sum(Fraction(t.to(fmt)) for t in _flat(terms)), fmt))  # ... the sum not
    assert found >= 5  # cross_entropy (class and probability targets), nll_loss, bce with logits, kl_div (2)


def test_a_float16_accumulator_loses_the_mean_of_many():
    for loss in ("cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"):
        (lab, kw), = [(lab, kw) for lab, kw in edge_problems(loss, "float32") if lab.startswith("mean_of_many")]
        terms = [t.to("float16") for t in _flat(oracles.REGISTRY[loss](**dict(kw, reduction="none")))]
        exact = math.fsum(terms)
        assert _running_sum(terms, "float16") < 0.8 * exact, lab


def test_the_runner_measures_edges_first_and_names_the_one_that_fails():
    """A zoo member the random search reaches only rarely (a float16 running sum in logsumexp) is caught by its edge
    problem, measured before the search; the search still runs to the end (it might find a more ordinary input),
    and the report says which boundary; the edge problems are outside the search's work budget."""
    member = zoo.by_name("logsumexp_running_sum")
    run = search.search("agreement", detect.case_for(member))
    message = run.outcome()
    assert message is not None and "edge problem (running_sum_stalls: 4096 equal logits" in message
    assert run.state["measured"] > len(edge_problems("logsumexp", "float16"))  # the edges, then the search
    careful = zoo.by_name("numpy_logsumexp")
    run = search.search("agreement", detect.case_for(careful), examples=3)
    assert run.outcome() is None
    n_edges = len(edge_problems("logsumexp", careful.fmt))
    assert run.state["measured"] > n_edges  # the edges, then the search
    assert run.budget.work < sum(len(_flat(kw["input"])) for _, kw in edge_problems("logsumexp", careful.fmt))


def test_edges_are_measured_whatever_the_work_budget_and_the_search_gets_its_own():
    """A work budget smaller than one edge problem stops neither the edges (a fixed catalogue, never cut short
    silently) nor the search's first example; the budget is restored for the search."""
    careful = zoo.by_name("numpy_log_softmax")
    budget = Budget()
    budget.max_work = 10
    run = search.search("agreement", detect.case_for(careful), examples=20, budget=budget)
    assert run.outcome() is None
    edges = edge_problems("log_softmax", careful.fmt)
    assert all(repr(kw) in run.state["seen"] for _, kw in edges)  # every edge measured (and passed)
    assert run.state["measured"] > len(edges)  # then the search, until its own budget stops it
    assert budget.max_work == 10 and budget.stopped == "work"


def test_of_a_failing_edge_and_a_failing_search_the_more_ordinary_minimal_input_is_reported_and_the_other_named():
    """The search's failure is shrunk (toward ordinary inputs) and reported unless the failing edge problem's input
    is in a strictly more ordinary regime; the message (``outcome``, as ``lossproof check`` shows it) ends with a
    note naming the other failure and its regime, truthfully: the same regime is not called less ordinary. (Which
    side wins depends on how far the time-bounded shrink gets, so the note is checked against the two regimes.)"""
    for name in ("focal_cross_entropy", "bce_with_logits_clip_sigmoid"):
        case = detect.case_for(zoo.by_name(name))
        run = search.search("agreement", case, examples=20)
        message = run.outcome()
        edge = run.state["edge_fail"]
        assert message is not None and edge is not None, (name, message)
        reported = REGIMES.index(regime_of(case.loss, run.state["last_fail"], case.fmt))
        edge_rank = REGIMES.index(regime_of(case.loss, edge, case.fmt))
        if run.state["last_fail"] is edge:  # the edge problem reported: the search's failure less ordinary
            assert message.endswith("\n(the search fails as well, in a less ordinary regime)"), (name, message)
        elif reported == edge_rank:
            assert message.endswith("\n(an edge problem fails as well, in the same regime)"), (name, message)
        else:
            assert reported < edge_rank, (name, message)
            assert message.endswith("\n(an edge problem fails as well, in a less ordinary regime)"), (name, message)


def test_while_a_value_failure_shrinks_only_small_gradients_are_measured():
    """Once the search fails on values, Hypothesis shrinks that failure, and each candidate's values decide it, but
    for a small candidate: a candidate of more than search._SHRINK_GRADIENT_MAX input elements is measured without
    its gradient (measuring them was 94% of the shrinking time of a 3 x 256 cross-entropy), a smaller one with it
    (cheap, and a gradient failure there gives the shrinker a way on: without it naive_cross_entropy's float64
    failure shrank for the whole 10 s budget to 36 logits of 2.5e7, with it in 4 s to [0.0, 10000.0]). Before the
    first failure, examples whose values pass have their gradients measured whatever their size.

    And the shrink runs without a line tracer: Hypothesis's explain phase (left out, search.SEARCH_PHASES) would
    trace every candidate after the first failure (sys.settrace), which made naive_cross_entropy's float32 check
    take 21 s to 28 s against 7 s to 8 s without it, for the same minimal inputs."""
    case = detect.case_for(zoo.by_name("cross_entropy_no_shift"))
    recorded = []  # (measurement, what the search had failed on when it was measured)
    tracers, outer = [], sys.gettrace()  # the tracer at each measurement while shrinking; a coverage tool's

    def record(m, dev, gating):
        recorded.append((m, run.state.get("failing_on")))
        if run.state.get("failing_on"):
            tracers.append(sys.gettrace())

    run = search.search("agreement", case, examples=20, record=record)
    assert run.outcome() is not None and run.state["failing_on"] == "values"
    traced = sum(t is not outer for t in tracers)
    assert tracers and not traced, f"{traced} of {len(tracers)} shrink candidates measured under a line tracer"
    before = [m for m, on in recorded if on is None]
    shrinking = [m for m, on in recorded if on == "values"]
    limit = search._SHRINK_GRADIENT_MAX

    assert any(e.kind == "grad" for m in before for e in m.elements), "no gradient measured before the failure"
    large = [m for m in shrinking if judge.meets(case, m) and len(_flat(m.kwargs["input"])) > limit]
    small = [m for m in shrinking if judge.meets(case, m) and len(_flat(m.kwargs["input"])) <= limit]
    assert large and small, (f"the shrink measured {len(large)} large and {len(small)} small candidates whose values "
                             "passed: the rule had nothing to decide on one side")
    assert not any(e.kind == "grad" for m in large for e in m.elements), \
        f"a gradient of more than {limit} components was measured while Hypothesis shrank a value failure"
    assert all(any(e.kind == "grad" for e in m.elements) for m in small), \
        "a small candidate whose values passed was not measured on its gradient"
