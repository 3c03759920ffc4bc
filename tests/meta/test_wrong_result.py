"""A result off by more than 1% of (|z| + 1) on a typical input is reported as a wrong result, with the conventions
lossproof assumed beside it (docs/NUMERICS.md, "Regimes"), not as rounding."""

from __future__ import annotations

import math

import torch

import lossproof


def softmax_over_the_batch_ce(input, target):
    """log_softmax over axis 0 (the batch) instead of the classes: a convention error, exact on no input."""
    return torch.nn.functional.nll_loss(torch.log_softmax(input, dim=0), target)


def test_a_convention_error_reads_as_a_wrong_result_with_the_conventions():
    findings = lossproof.check("cross_entropy", softmax_over_the_batch_ce, formats=["float64"], devices=["cpu"],
                               properties=("agreement",))
    assert not findings.ok
    message = findings.findings[0].message
    assert "wrong result on a typical input" in message, message
    assert "classes on axis 1" in message and "class-index targets" in message, message


def test_rounding_error_is_not_called_wrong():
    def float32_ce(input, target):  # computed in float32, returned in float64: rounding, not a convention error
        return torch.nn.functional.cross_entropy(input.float(), target).double()

    findings = lossproof.check("cross_entropy", float32_ce, formats=["float64"], devices=["cpu"],
                               properties=("agreement",))
    assert not findings.ok
    assert all("wrong result" not in f.message for f in findings.findings), findings.table()


def test_an_output_in_another_format_is_a_finding_in_every_framework():
    import numpy as np

    def torch_in_float32(input):
        return torch.nn.functional.softplus(input.float(), threshold=1e9)

    def numpy_in_float64(input):
        return np.logaddexp(np.asarray(input, dtype=np.float64), 0.0)

    for fn, framework, fmt, wider in ((torch_in_float32, "torch", "float16", "float32"),
                                      (numpy_in_float64, "numpy", "float32", "float64")):
        findings = lossproof.check("softplus", fn, framework=framework, formats=[fmt], devices=["cpu"],
                                   properties=("agreement",))
        assert not findings.ok, findings.table()
        assert f"returns {wider} for {fmt} input" in findings.findings[0].message, findings.table()


def test_a_softmax_family_wrong_result_names_the_axis_the_oracle_reduced_over():
    """Found as a user: SciPy's log_softmax wrapped with axis=1, checked on a (1, 2, 1) input without a dim, was told
    "classes on axis 1" while the oracle reduced over torch's implicit dim of a 3-d input, axis 0."""
    from types import SimpleNamespace

    from lossproof.judge import conventions

    def case(loss, class_axis=1):
        return SimpleNamespace(loss=loss, class_axis=class_axis)

    three_d = {"input": [[[0.0], [0.0]]]}
    line = conventions(case("log_softmax"), three_d)
    assert "input shape (1, 2, 1), over axis 0: torch's implicit dim for a 3-d input" in line, line
    assert "over axis 1: torch's implicit dim for a 2-d input" in conventions(case("softmax"), {"input": [[0.0, 1.0]]})
    assert "passed on axis -1" in conventions(case("softmax", -1), {"input": [[0.0, 1.0]]})
    assert conventions(case("log_softmax"), {**three_d, "dim": -2}) == "input shape (1, 2, 1), over dim -2"
    assert "over every axis" in conventions(case("logsumexp"), three_d)


class SmoothedByItself(torch.nn.Module):
    """timm's LabelSmoothingCrossEntropy as users copy it: an nn.Module whose forward(x, target) smooths the labels
    by 0.1 on its own and returns the mean."""

    def forward(self, x, target):
        logprobs = torch.log_softmax(x, dim=-1)
        nll = -logprobs.gather(dim=-1, index=target.unsqueeze(1)).squeeze(1)
        return (0.9 * nll + 0.1 * -logprobs.mean(dim=-1)).mean()


def test_a_gradient_off_on_a_typical_input_is_a_wrong_result_naming_the_parameters_the_function_lacks():
    """Tried as a user on timm's label-smoothing loss: its shrunk failure is two equal logits, where the value
    agrees (log 2 either way) and the gradient is -0.45 against -0.5; it read "grad element (0,) is unstable",
    with no hint that the function smooths labels where lossproof assumed label_smoothing = 0. A gradient off by
    more than 1% of (|z| + 1) on a typical input is now a wrong result too, and the conventions line names the
    loss's parameters the function does not take (torch's defaults in the exact result)."""
    from lossproof.cases import user_cases
    from lossproof.judge import failure_report
    from lossproof.measure import measure
    from subjects.user import UserSubject, accepted_parameters

    fn = SmoothedByItself()
    user = UserSubject("cross_entropy", "test:smoothed", "torch", fn, accepted_parameters(fn))
    (case,) = [c for c in user_cases(user, False) if c.fmt == "float32" and c.device == "cpu"]
    kw = {"input": [[0.0, 0.0]], "target": [0]}
    values, grads = case.call(kw)
    assert grads == [-0.44999998807907104, 0.44999998807907104]  # the function's own, by torch's autograd
    report = failure_report(case, kw, measure(case.subject, "cross_entropy", "float32", "cpu", kw, values, grads))
    head = report.splitlines()[0]
    assert "wrong result on a typical input: grad element (0,) is off by more than 1% of (|z| + 1)" in head, head
    assert ("no reduction argument: taken to return the mean; it takes no weight, ignore_index, label_smoothing: "
            "torch's defaults assumed (--fixed NAME=VALUE for one it has built in: ignore_index or "
            "label_smoothing)), and the derivative at the input's ties and kinks") in head, head
    # the whole check says so too, first
    findings = lossproof.check("cross_entropy", fn, formats=["float32"], properties=("agreement",))
    assert "wrong result on a typical input" in findings.findings[0].message, findings.table()


def hand_written_bce(input, target, reduction="mean"):
    """The stable BCE-with-logits formula as a helper wrote it for a user trial (2026-12-07): right values, but
    autograd takes clamp's slope 1 and abs's 0 at x = 0, so the gradient there is 1 - y where it is 1/2 - y."""
    loss = input.clamp(min=0) - input * target + torch.log1p(torch.exp(-input.abs()))
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def test_a_gradient_through_a_kink_is_a_wrong_result_that_names_the_kink():
    from lossproof.cases import user_cases
    from lossproof.judge import failure_report
    from lossproof.measure import measure
    from subjects.user import UserSubject, accepted_parameters

    user = UserSubject("binary_cross_entropy_with_logits", "test:bce", "torch", hand_written_bce,
                       accepted_parameters(hand_written_bce))
    (case,) = [c for c in user_cases(user, False) if c.fmt == "float64" and c.device == "cpu"]
    kw = {"input": [0.0], "target": [0.0], "reduction": "mean"}
    values, grads = case.call(kw)
    assert values == [math.log(2)] and grads == [1.0]  # exact: log 2 and 1/2
    m = measure(case.subject, case.loss, "float64", "cpu", kw, values, grads)
    head = failure_report(case, kw, m).splitlines()[0]
    assert "wrong result on a typical input: grad element (0,)" in head and "clamp, abs, max or where" in head, head


def classes_last_ce(input, target, reduction="mean"):
    """A cross-entropy over dim=-1, as timm's and two trial users' losses: right for (N, C), not for torch's
    (N, C, d) layout."""
    nll = -torch.log_softmax(input, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return nll.mean() if reduction == "mean" else nll.sum() if reduction == "sum" else nll


def test_a_failure_on_a_three_dimensional_input_says_when_the_function_takes_the_classes_last():
    """Found on a user trial (2026-12-07): a focal loss over dim=-1 failed no-overflow on a (2, 2, 2) input with
    -max logits, which read as an overflow at the format's edge; with the classes moved last it is exact there.
    The message now says so, and names --class-axis -1; a function wrong in any layout gets no such note."""
    from lossproof.cases import user_cases
    from lossproof.judge import classes_last_hint, failure_report, overflow_failure
    from lossproof.measure import measure
    from subjects.user import UserSubject, accepted_parameters

    def case_of(fn):
        user = UserSubject("cross_entropy", "test:ce", "torch", fn, accepted_parameters(fn))
        return next(c for c in user_cases(user, False) if c.fmt == "float32" and c.device == "cpu")

    case = case_of(classes_last_ce)
    big = -3.4028234663852886e38
    edge = {"input": [[[0.0, 0.0], [0.0, 0.0]], [[big, 0.0], [big, 0.0]]], "target": [[0, 0], [0, 0]]}
    values, grads = case.call(edge)
    message = str(overflow_failure(case, edge, values, grads))
    assert message.splitlines()[0].endswith("is finite (with the classes on the last axis this function meets its "
                                            "requirement on these values: it takes them last, as dim=-1 does; "
                                            "--class-axis -1 checks it that way)"), message
    typical = {"input": [[[0.0, 1.0], [0.5, -1.0]]], "target": [[1, 0]], "reduction": "none"}
    values, grads = case.call(typical)
    head = failure_report(case, typical, measure(case.subject, case.loss, "float32", "cpu", typical, values,
                                                 grads)).splitlines()[0]
    assert "wrong result on a typical input" in head and "--class-axis -1 checks it that way" in head, head
    # a function wrong in either layout, and a two-dimensional input (axis 1 is the last): no note
    zero = case_of(lambda input, target, reduction="mean": (input * 0).sum(dim=-1).mean())
    assert classes_last_hint(zero, typical) == ""
    assert classes_last_hint(case, {"input": [[0.0, 1.0]], "target": [1]}) == ""
