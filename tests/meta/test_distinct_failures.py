"""A search that finds several distinct failures (Hypothesis's report_multiple_bugs raises them as an
ExceptionGroup) reports one, as for a single bug: the finding whose minimal input is in the most ordinary regime,
with its numbers and reproducer, its input the cell's minimal input, and a note naming the others. Before, ``lossproof
check`` showed "ExceptionGroup: Hypothesis found 2 distinct failures" as the first thing to fix, without numbers or
a reproducer (kornia's focal_loss at gamma = 0, a user's cross-entropy: its mean over N x C elements, and its
per-class output under reduction "none"), and the API paired the group's first message with the last input
replayed, which could belong to the other failure. And a function that returns another number of values than the
exact result holds is told with which call (input shape, parameters) it did."""

from __future__ import annotations

import torch

import lossproof
from lossproof import detect, search, zoo
from lossproof.regimes import regime_of


def _error(cls, text, kwargs):
    e = cls(text)
    e.lossproof_input = kwargs
    return e


TYPICAL = {"input": [[0.0, 1.0]], "target": [1], "reduction": "mean"}
EDGE = {"input": [[3.0e38, 0.0]], "target": [1], "reduction": "mean"}


def test_of_several_failures_the_most_ordinary_finding_is_raised_and_the_others_noted():
    case = detect.case_for(zoo.by_name("cross_entropy_no_shift"))
    assert regime_of(case.loss, TYPICAL, case.fmt) == "typical"
    assert regime_of(case.loss, EDGE, case.fmt) == "format edge"
    run = search.search("agreement", case, examples=5)
    edge = _error(AssertionError, "overflow at the format's edge", EDGE)
    typical = _error(AssertionError, "wrong result on a typical input", TYPICAL)
    raised = _error(ValueError, "2 values returned where the exact result has 1", {**TYPICAL, "reduction": "none"})
    group = ExceptionGroup("Hypothesis found 3 distinct failures.", [edge, ExceptionGroup("nested", [raised]), typical])
    chosen = run._most_ordinary(group)
    assert chosen is typical and run.state["last_fail"] is TYPICAL
    (note,) = chosen.__notes__
    assert note.startswith("(the search found 3 distinct failures; this one is in the most ordinary regime; the "
                           "others: overflow at the format's edge, on {input: [[3e+38"), note
    assert "ValueError: 2 values returned where the exact result has 1, on {" in note and 'reduction: "none"' in note
    # a group without a finding (errors only) is lossproof's own trouble or the function's: raised as it is
    only_errors = ExceptionGroup("two", [_error(ValueError, "a", TYPICAL), _error(TypeError, "b", EDGE)])
    assert run._most_ordinary(only_errors) is only_errors
    # one finding: nothing to note
    single = _error(AssertionError, "x", EDGE)
    assert run._most_ordinary(ExceptionGroup("one", [single])) is single and not getattr(single, "__notes__", [])


def mean_over_every_element(input, target, reduction="mean"):
    """kornia.losses.focal_loss at gamma = 0, as its users call it: a cross-entropy whose "mean" divides by N x C
    and whose "none" returns the per-class terms."""
    terms = -torch.nn.functional.one_hot(target, input.shape[1]) * torch.log_softmax(input, dim=1)
    if reduction == "none":
        return terms
    return terms.sum() if reduction == "sum" else terms.mean()


def test_a_function_with_two_distinct_bugs_is_reported_by_its_typical_wrong_result():
    findings = lossproof.check("cross_entropy", mean_over_every_element, formats=["float32"],
                               properties=["agreement"])
    (f,) = findings.findings
    assert f.message.splitlines()[0].endswith("wrong result on a typical input: value element (0,) is off by more "
                                              "than 1% of (|z| + 1), which is no rounding error: check the "
                                              "conventions (input shape (1, 2), classes on axis 1; class-index "
                                              "targets; reduction='mean'; it takes no weight, ignore_index, "
                                              "label_smoothing: torch's defaults assumed (--fixed NAME=VALUE for "
                                              "one it has built in: ignore_index or label_smoothing))"), f.message
    assert "reproducer" in f.message and "ExceptionGroup" not in f.message, f.message
    assert "distinct failures" in f.message and "values returned where the exact result has" in f.message, f.message
    # the minimal input the API reports is the reported failure's own
    assert f.minimal is not None and f.minimal.get("reduction", "mean") == "mean", f.minimal


def test_the_check_command_prints_the_notes_under_the_first_finding_and_keeps_them_out_of_its_reproducer():
    from types import SimpleNamespace

    from lossproof.cli import check as C

    note = "(the search found 2 distinct failures; this one is in the most ordinary regime; the other: ValueError: x)"
    # pytest prints the failing frame's arguments cut short above the exception: never read as the finding
    frame = ["message = user:f-cross_entropy-float32-cpu: grad element (0,) is unstable (required: stable)",
             "  expected (exact)...nput'])), v.reshape(-1).tolist())[0]", "    reproducer:", "        garbage"]
    message = ["E   AssertionError: user:f-cross_entropy-float32-cpu: wrong result on a typical input: ...",
               "E     expected (exact) -0.5", "E     got               -0.45",
               "E     reproducer:", "E       import torch", "E       print(1)", f"E   {note}"]
    text = "\n".join(frame + message)
    report = SimpleNamespace(nodeid="test_agreement[user-cross_entropy-float32-cpu]", outcome="failed",
                             longreprtext=text, longrepr=text,
                             user_properties=[("lossproof_measured", 3), ("lossproof_budget", 50),
                                              ("lossproof_regime", "typical"), ("lossproof_note", note)])
    cell = C._cell(report)
    assert cell.reproducer == ["import torch", "print(1)"] and cell.notes == [note]
    assert cell.detail == ["expected (exact) -0.5", "got               -0.45"], cell.detail
    lines = C.findings_table("cross_entropy", "f", [cell], 1)
    assert f"  {note}" in lines and lines.index(f"  {note}") > lines.index("    print(1)"), "\n".join(lines)


def test_a_count_of_values_other_than_the_exact_results_names_the_call_that_showed_it(tmp_path, monkeypatch):
    """The other failure of the function above (and of torchmetrics' kl_divergence given reduction="batchmean",
    which it does not know and answers per row): the message says with which input shape and parameters the
    function returned the wrong number of values, from a fresh measurement and from a cached one alike."""
    import pytest

    from lossproof.measure import measure

    monkeypatch.setenv("LOSSPROOF_CACHE", str(tmp_path))
    kw = {"input": [[0.0, 0.0], [1.0, 0.0]], "target": [0, 1], "reduction": "none"}
    want = ("4 values returned where the exact result has 2 (user:f, called with input shape (2, 2), "
            "reduction='none')")
    with pytest.raises(ValueError) as e:
        measure("user:f", "cross_entropy", "float32", "cpu", kw, [0.5] * 4, None)
    assert str(e.value) == want
    measure("user:f", "cross_entropy", "float32", "cpu", kw, [0.5] * 2, None, cache=True)  # cached now
    with pytest.raises(ValueError) as e:
        measure("user:f", "cross_entropy", "float32", "cpu", kw, [0.5] * 4, None, cache=True)
    assert str(e.value) == want
