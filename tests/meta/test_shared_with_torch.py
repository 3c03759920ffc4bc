"""One standard for every subject (docs/NUMERICS.md): a user's one-line wrapper of torch's own function fails only
where torch does, on torch's documented behaviours; those failures are listed as "shared with torch: <deviation>"
and gate only under strict. The wrappers are examples/torch_wrappers.py, as users write them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import lossproof
from lossproof import judge
from lossproof.cases import user_cases
from subjects.user import UserSubject, accepted_parameters

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import torch_wrappers  # noqa: E402

WRAPPERS = ["cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "log_softmax"]


@pytest.mark.parametrize("loss", WRAPPERS)
def test_a_wrapper_of_torch_passes_in_every_format(loss):
    findings = lossproof.check(loss, getattr(torch_wrappers, loss), devices=["cpu"])
    assert findings.ok, findings.table()
    measured = {(c.prop, c.fmt) for c in findings.cells if c.status == "passed" and c.measured}
    assert {("agreement", f) for f in ("float64", "float32", "float16", "bfloat16")} <= measured, findings.table()


def test_under_strict_a_wrapper_fails_on_torchs_documented_behaviours():
    loss = "binary_cross_entropy_with_logits"
    findings = lossproof.check(loss, getattr(torch_wrappers, loss), devices=["cpu"], formats=["float16"],
                               strict=True)
    assert not findings.ok
    assert any("shared with torch" in f.message for f in findings.findings), findings.table()


def _case(fn, loss, fmt="float32"):
    user = UserSubject(loss, f"test:{fn.__name__}", "torch", fn, accepted_parameters(fn))
    (case,) = [c for c in user_cases(user, False) if c.fmt == fmt and c.device == "cpu"]
    return case


def test_a_failure_where_torch_is_right_is_not_shared():
    # a mean of four terms of half the largest finite float32: torch's sum overflows (documented), and so does
    # the wrapper's; a function that returns 0 there fails where torch also fails, but on another input where
    # torch is right, the same function's failure is its own
    import torch

    def zero_ce(input, target, reduction="mean"):
        return torch.zeros((), dtype=input.dtype, requires_grad=True) * input.sum()

    case = _case(zero_ce, "cross_entropy")
    assert judge.shared_with_reference(case, {"input": [[0.0, 1.0]], "target": [1], "reduction": "mean"}) is None
    big = 1.7014118346046923e38
    overflow = {"input": [[big, 0.0]] * 4, "target": [1] * 4, "reduction": "mean"}  # exact: big; torch: inf
    shared = judge.shared_with_reference(case, overflow)
    assert shared is not None and shared[0].id.startswith("torch-ce"), shared


def test_the_libraries_themselves_have_no_reference():
    from lossproof.cases import torch_cases
    case = next(c for c in torch_cases(False) if c.loss == "cross_entropy")
    assert judge.reference_of(case) is None


def test_where_torch_meets_the_exact_value_under_a_deviation_condition_nothing_is_shared(monkeypatch):
    # the deviation's condition holds on the input, but torch (here: a torch that returns the exact value) is right
    import oracles
    from oracles.codec import flat

    big = 1.7014118346046923e38
    kw = {"input": [[big, 0.0]] * 4, "target": [1] * 4, "reduction": "mean"}
    exact = [e.to("float32") for e in flat(oracles.cross_entropy(**kw))]
    monkeypatch.setattr(judge.torch_subject, "run", lambda *a, **k: (exact, None))
    case = _case(lambda input, target, reduction="mean": input.sum(), "cross_entropy")
    assert judge.shared_with_reference(case, kw) is None
