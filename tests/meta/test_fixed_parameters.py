"""A loss parameter a user's function has built in (``--fixed NAME=VALUE``, ``check(fixed=...)``): found by checking
a team's hand-written cross-entropy with label smoothing 0.1 inside, which lossproof could only call a wrong result
(the exact loss at torch's default, label_smoothing=0), with nothing the user could change but the function. Now the
exact result is computed with the built-in value, the function is called without it (with it where it takes it),
every other value is reported as not supported, and a wrong result names the option."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lossproof
from lossproof.cases import restrict, unsupported, user_cases
from lossproof.judge import conventions
from subjects.user import SubjectError, UserSubject, accepted_parameters, check_fixed, parse_fixed


def smoothed_ce(input, target, reduction="mean"):
    """Cross-entropy with label smoothing 0.1 written by hand, as a team writes it (classes on axis 1)."""
    logp = F.log_softmax(input, dim=1 if input.dim() > 1 else 0)
    nll = -logp.gather(1, target.unsqueeze(1)).squeeze(1) if input.dim() > 1 else -logp[target]
    loss = 0.9 * nll - 0.1 * logp.mean(dim=1 if input.dim() > 1 else 0)
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def _user(fn, loss, fixed=(), targets=None):
    return UserSubject(loss, f"t:{fn.__name__}", "torch", fn, accepted_parameters(fn), targets=targets, fixed=fixed)


def _case(user, fmt="float32"):
    return next(c for c in user_cases(user, False) if c.fmt == fmt and c.device == "cpu")


def test_label_smoothing_built_in_passes_with_fixed_and_is_a_wrong_result_naming_the_option_without():
    kw = dict(formats=["float32"], properties=["agreement"], targets="index")
    without = lossproof.check("cross_entropy", smoothed_ce, **kw)
    assert not without.ok
    message = without.findings[0].message
    assert "wrong result on a typical input" in message, without.table()
    assert "--fixed NAME=VALUE for one it has built in: ignore_index or label_smoothing" in message, message
    fixed = lossproof.check("cross_entropy", smoothed_ce, fixed={"label_smoothing": 0.1}, **kw)
    assert fixed.ok, fixed.table()
    (cell,) = fixed.cells
    assert cell.status == "passed" and cell.measured > 0, fixed.table()
    # the other values are reported, never passed
    assert "label_smoothing other than 0.1" in cell.not_supported, cell


def test_a_fixed_parameter_reaches_the_oracle_and_not_a_function_that_does_not_take_it():
    seen = []

    def ce(*args, **kwargs):  # what the call passes, recorded (adapt passes by keyword what it takes)
        seen.append(sorted(kwargs))
        return F.cross_entropy(kwargs["input"], kwargs["target"], reduction=kwargs["reduction"],
                               label_smoothing=0.25)

    ce.__signature__ = inspect.signature(lambda input, target, reduction="mean": None)  # type: ignore[attr-defined]

    case = _case(_user(ce, "cross_entropy", {"label_smoothing": 0.25}))
    drawn = {"input": [[0.0, 1.0]], "target": [1], "reduction": "sum", "label_smoothing": 0.5}
    kw = restrict(case, drawn)
    assert kw["label_smoothing"] == 0.25 and kw["reduction"] == "sum", kw  # the built-in value, for the oracle
    case.call(kw)  # the call passes on what the function takes only: it has no label_smoothing parameter
    assert seen == [["input", "reduction", "target"]]
    assert "label_smoothing=0.25 built in" in conventions(case, kw)
    assert unsupported(case)["label_smoothing other than 0.25"].endswith("has label_smoothing=0.25 built in "
                                                                        "(--fixed)")


def test_a_function_that_takes_the_parameter_is_given_the_fixed_value():
    got = {}

    def ce(input, target, reduction="mean", label_smoothing=0.0):
        got["label_smoothing"] = label_smoothing
        return F.cross_entropy(input, target, reduction=reduction, label_smoothing=label_smoothing)

    case = _case(_user(ce, "cross_entropy", {"label_smoothing": 0.125}))
    case.call(restrict(case, {"input": [[0.0, 1.0]], "target": [1], "label_smoothing": 0.5}))
    assert got == {"label_smoothing": 0.125}


def nll_pad1(input, target, reduction="mean"):
    """NLL with class 1 as padding, ignored: a built-in ignore_index."""
    return F.nll_loss(input, target, ignore_index=1, reduction=reduction)


def test_a_built_in_ignore_index_keeps_the_drawn_ignored_targets_ignored():
    case = _case(_user(nll_pad1, "nll_loss", {"ignore_index": 1}))
    kw = restrict(case, {"input": [[-1.0, -0.5, -2.0]] * 3, "target": [-100, 2, 0], "ignore_index": -100})
    assert kw["target"] == [1, 2, 0] and kw["ignore_index"] == 1, kw
    # without it a drawn ignore index becomes class 0 (a valid call the function cannot mean otherwise)
    plain = _case(_user(nll_pad1, "nll_loss"))
    assert restrict(plain, {"input": [[-1.0, -0.5, -2.0]], "target": [-100]})["target"] == [0]


def test_nan_on_a_typical_input_points_at_the_conventions_and_the_option():
    """The padding class ignored by the function and not by the exact loss: NaN (a mean over no target) where the
    exact loss is finite. It read "broken" with nothing else; the conventions and --fixed are named now, and with
    --fixed the function passes."""
    kw = dict(formats=["float32"], properties=["agreement"])
    without = lossproof.check("nll_loss", nll_pad1, **kw)
    assert not without.ok
    message = without.findings[0].message
    assert "NaN on a typical input, where the exact value is finite: check the conventions" in message, message
    assert "(--fixed ignore_index=VALUE for a value it has built in)" in message, message
    assert lossproof.check("nll_loss", nll_pad1, fixed={"ignore_index": 1}, **kw).ok


def test_a_built_in_log_target_takes_the_log_space_draws_only():
    def kl(input, target, reduction="mean"):
        return F.kl_div(input, target, reduction=reduction, log_target=True)

    case = _case(_user(kl, "kl_div", {"log_target": True}))
    log_space = {"input": [[-0.5, -1.0]], "target": [[-1.0, -0.5]], "log_target": True}
    assert restrict(case, log_space)["log_target"] is True
    assert restrict(case, {**log_space, "log_target": False}) is None  # a probability target cannot be made one
    assert restrict(case, {"input": [[-0.5, -1.0]], "target": [[0.25, 0.75]]}) is None


@pytest.mark.parametrize("loss,fixed,message", [
    ("softplus", {"label_smoothing": 0.1}, "softplus has no such parameter to fix"),
    ("nll_loss", {"label_smoothing": 0.1}, "nll_loss has no such parameter to fix (it takes ignore_index)"),
    ("cross_entropy", {"label_smoothing": 1.5}, "expected a number in [0, 1]"),
    ("cross_entropy", {"label_smoothing": float("nan")}, "expected a number in [0, 1]"),
    ("cross_entropy", {"label_smoothing": True}, "expected a number in [0, 1]"),
    ("cross_entropy", {"ignore_index": 0.5}, "expected a 64-bit integer"),
    # past int64 torch's own function raises, and the comparison with the reference was lost (a wrong verdict)
    ("cross_entropy", {"ignore_index": 2**63}, "expected a 64-bit integer"),
    ("nll_loss", {"ignore_index": -2**63 - 1}, "expected a 64-bit integer"),
    ("kl_div", {"log_target": 1}, "expected true or false"),
    ("cross_entropy", [("label_smoothing", 0.1), ("label_smoothing", 0.2)], "given twice"),
    ("cross_entropy", [("label_smoothing",)], "expected a name and a value"),
])
def test_a_parameter_that_cannot_be_fixed_is_one_line(loss, fixed, message):
    with pytest.raises(SubjectError, match="^[^\n]*$") as e:
        check_fixed(loss, fixed)
    assert message in str(e.value)


def test_the_command_line_values_are_read_as_their_kinds():
    assert parse_fixed(["label_smoothing=0.1", "ignore_index=-1", "log_target=True"]) == (
        ("label_smoothing", 0.1), ("ignore_index", -1), ("log_target", True))
    assert check_fixed("cross_entropy", parse_fixed(["label_smoothing=1"])) == (("label_smoothing", 1.0),)
    with pytest.raises(SubjectError, match="expected NAME=VALUE"):
        parse_fixed(["label_smoothing"])
    with pytest.raises(SubjectError, match="expected one of label_smoothing, ignore_index, log_target"):
        parse_fixed(["temperature=2"])


def test_torch_agrees_with_the_hand_written_loss_that_the_test_checks():
    """The test's own premise: the hand-written loss is torch's label_smoothing=0.1 cross-entropy."""
    x, t = torch.randn(4, 5, dtype=torch.float64), torch.tensor([0, 4, 2, 1])
    assert torch.allclose(smoothed_ce(x, t), F.cross_entropy(x, t, label_smoothing=0.1))


# ---- torch.nn's loss modules: the configuration a training script's criterion holds (module_conventions)

def test_a_torch_loss_module_is_checked_as_configured():
    """nn.CrossEntropyLoss(label_smoothing=0.1), nn.NLLLoss(ignore_index=0), nn.BCEWithLogitsLoss(reduction="sum")
    and nn.KLDivLoss(reduction="batchmean", log_target=True), held as a training script holds its loss: each was a
    wrong result at torch's defaults (their forward takes (input, target) only); each passes now."""
    import torch.nn as nn

    for loss, module in [("cross_entropy", nn.CrossEntropyLoss(label_smoothing=0.1)),
                         ("nll_loss", nn.NLLLoss(ignore_index=0)),
                         ("binary_cross_entropy_with_logits", nn.BCEWithLogitsLoss(reduction="sum")),
                         ("kl_div", nn.KLDivLoss(reduction="batchmean", log_target=True))]:
        findings = lossproof.check(loss, module, formats=["float32"], properties=["agreement"])
        assert findings.ok, findings.table()
        assert findings.cells[0].measured > 0, findings.table()


def test_what_a_module_holds_becomes_its_conventions_and_a_contradiction_is_one_line():
    import torch.nn as nn

    from subjects.user import module_conventions

    assert module_conventions(nn.CrossEntropyLoss(label_smoothing=0.1, reduction="none"), "m:c", "cross_entropy",
                              None, ()) == ("per-example", (("label_smoothing", 0.1),),
                                            "read from CrossEntropyLoss: reduction 'none', label_smoothing=0.1")
    assert module_conventions(nn.NLLLoss(), "m:c", "nll_loss", None, ()) == (
        "mean", (), "read from NLLLoss: reduction 'mean'")
    assert module_conventions(smoothed_ce, "m:f", "cross_entropy", None, ()) == (None, (), "")  # not a module
    for module, loss, returns, fixed, message in [
            (nn.CrossEntropyLoss(weight=torch.ones(3)), "cross_entropy", None, (), "holds a weight of shape (3,)"),
            (nn.CrossEntropyLoss(), "cross_entropy", "sum", (), "--returns sum, but m:c (CrossEntropyLoss) holds "
                                                               "reduction='mean'"),
            (nn.CrossEntropyLoss(label_smoothing=0.1), "cross_entropy", None, {"label_smoothing": 0.2},
             "--fixed label_smoothing=0.2, but m:c (CrossEntropyLoss) holds label_smoothing=0.1")]:
        with pytest.raises(SubjectError, match="^[^\n]*$") as e:
            module_conventions(module, "m:c", loss, returns, fixed)
        assert message in str(e.value)


def test_a_module_of_another_loss_or_a_contradicting_default_is_refused_and_a_subclass_is_read():
    import torch.nn as nn

    from subjects.user import module_conventions

    for module, loss, fixed, message in [
            (nn.CrossEntropyLoss(label_smoothing=0.1), "nll_loss", (), "computes cross_entropy, not nll_loss"),
            (nn.CrossEntropyLoss(ignore_index=-1), "nll_loss", (), "computes cross_entropy, not nll_loss"),
            (nn.KLDivLoss(reduction="batchmean"), "cross_entropy", (), "computes kl_div, not cross_entropy"),
            # torch's default is what the module computes with: a --fixed other value contradicts it too
            (nn.CrossEntropyLoss(), "cross_entropy", {"label_smoothing": 0.1},
             "--fixed label_smoothing=0.1, but m:c (CrossEntropyLoss) holds label_smoothing=0.0")]:
        with pytest.raises(SubjectError, match="^[^\n]*$") as e:
            module_conventions(module, "m:c", loss, None, fixed)
        assert message in str(e.value)

    class Smoothed(nn.CrossEntropyLoss):  # a subclass that keeps torch's forward: read as its base
        pass

    class Own(nn.CrossEntropyLoss):  # one with a forward of its own: not read (its forward decides)
        def forward(self, input, target):
            return super().forward(input, target)

    assert module_conventions(Smoothed(label_smoothing=0.1), "m:c", "cross_entropy", None, ())[1] == (
        ("label_smoothing", 0.1),)
    assert module_conventions(Own(label_smoothing=0.1), "m:c", "cross_entropy", None, ()) == (None, (), "")


def test_what_a_module_holds_is_credited_to_the_module_not_to_options_never_given():
    import torch.nn as nn

    from subjects.user import module_conventions

    returns, fixed, read_from = module_conventions(nn.NLLLoss(ignore_index=0, reduction="sum"), "m:c", "nll_loss",
                                                   None, ())
    user = UserSubject("nll_loss", "m:c", "torch", nn.NLLLoss(ignore_index=0, reduction="sum"),
                       frozenset({"input", "target"}), returns=returns, fixed=fixed, read_from=read_from)
    assert user.only_why() == ("m:c returns the sum and has ignore_index=0 built in (read from NLLLoss: reduction "
                               "'sum', ignore_index=0)"), user.only_why()
    assert "--returns" not in user.only_why() and "--fixed" not in user.only_why()


def test_the_api_takes_numpy_scalars_and_refuses_a_string_in_one_line():
    assert check_fixed("nll_loss", {"ignore_index": np.int64(0)}) == (("ignore_index", 0),)
    assert check_fixed("cross_entropy", {"label_smoothing": np.float32(0.5)}) == (("label_smoothing", 0.5),)
    with pytest.raises(SubjectError, match="expected the parameters as a dict"):
        check_fixed("cross_entropy", "label_smoothing=0.1")


def test_batchmean_is_a_return_of_kl_div_only():
    with pytest.raises(SubjectError, match="applies to kl_div"):
        UserSubject("cross_entropy", "m:f", "torch", smoothed_ce, None, returns="batchmean")
    kl = UserSubject("kl_div", "m:f", "torch", lambda input, target: input, frozenset({"input", "target"}),
                     returns="batchmean")
    assert kl.only() == (("reduction", "batchmean"),) and not kl.accepts("reduction")
    assert kl.returns_what() == "sum divided by the batch size (torch's reduction 'batchmean')"


def test_hunt_takes_the_same_conventions(tmp_path):
    """``lossproof hunt`` searched a user's function under torch's conventions only: a smoothed cross-entropy's worst
    inputs were all its label smoothing. It takes --class-axis, --returns, --targets and --fixed now, as check."""
    from lossproof import hunt
    from lossproof.cli import main

    src = tmp_path / "smooth.py"
    src.write_text("import torch.nn.functional as F\n\n"
                   "def ce(input, target):\n    return F.cross_entropy(input, target, label_smoothing=0.1)\n")
    from subjects.user import load

    user = load(f"cross_entropy={src}:ce", None, 1, None, None, parse_fixed(["label_smoothing=0.1"]))
    case = hunt.case_of("cross_entropy", f"{src}:ce", None, "float32", user=user)
    assert ("label_smoothing", 0.1) in case.only
    assert restrict(case, {"input": [[0.0, 1.0]], "target": [1]})["label_smoothing"] == 0.1
    assert main(["hunt", "cross_entropy", f"{src}:ce", "--fixed", "label_smoothing=2", "--budget", "1"]) == 2
