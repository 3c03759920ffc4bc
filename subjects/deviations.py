"""Known deviations of third-party libraries, as data: what, when, why, and where upstream says so.

A deviation does not hide a failure. When its condition holds, the subject is measured against the documented
behaviour instead of the exact value (``documented``: a torch-behaviour variant of the oracle, or a predicate
on the subject's output), and the run reports it as a documented deviation with its measured error against the
exact value. A subject that breaks even its documented behaviour still fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Deviation:
    id: str
    subject: str  # "torch"
    loss: str
    condition: str  # one line, human-readable
    reason: str
    link: str
    applies: Callable[[dict], bool]  # on the exact keyword arguments
    documented_oracle: str | None = None  # an oracle variant name: measured against it
    documented_output: Callable[[float], bool] | None = None  # else: a predicate every output element meets


def _flat(v):
    return [e for x in v for e in _flat(x)] if isinstance(v, list) else [v]


def _softplus_linear(kw):
    beta = kw.get("beta", 1.0)
    th = kw.get("threshold", 20.0)
    return any(math.isfinite(x) and x * beta > th for x in _flat(kw["input"]))


def _bce_clamped(kw):
    # log(p) < -100 or log(1 - p) < -100, i.e. p < e**-100 or 1 - p < e**-100 (p = 0 and p = 1 included)
    lim = math.exp(-100)
    return any(p < lim or (1 - p) < lim for p in _flat(kw["input"]) if not math.isnan(p))


def _prob_target_with_masked_logit(kw):
    x, t = kw.get("input"), kw.get("target")
    fx, ft = _flat(x), _flat(t) if isinstance(t, list) else []
    if len(fx) != len(ft):
        return False  # class-index targets
    return any(xi == -math.inf and ti == 0 for xi, ti in zip(fx, ft))


def _zero_weight_on_masked_target(kw):
    """A class-index target whose class weight is exactly 0 and whose logit / log-probability is -inf."""
    w, t, x = kw.get("weight"), kw.get("target"), kw.get("input")
    if w is None or not isinstance(x, list):
        return False
    ts = _flat(t) if isinstance(t, list) else [t]
    if not all(isinstance(c, int) for c in ts):
        return False
    rows = x if isinstance(x[0], list) else [x]
    if isinstance(x[0], list) and isinstance(x[0][0], list):  # (N, C, d1, ...): flatten the spatial dims
        return False
    ign = kw.get("ignore_index", -100)
    return any(c != ign and w[c] == 0 and row[c] == -math.inf for row, c in zip(rows, ts))


def _plus_inf_logit(kw):
    return any(v == math.inf for v in _flat(kw.get("input", [])))


DEVIATIONS = [
    Deviation(
        "torch-softplus-threshold", "torch", "softplus",
        "beta * x > threshold (default 20)",
        "torch returns x itself above the threshold: softplus(25) = 25 where the exact value is "
        "25.0000000000139 (3,900 ULP in float64)",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.softplus.html",
        _softplus_linear, documented_oracle="torch:softplus"),
    Deviation(
        "torch-bce-log-clamp", "torch", "binary_cross_entropy",
        "log(p) or log(1 - p) below -100 (p < e**-100 or 1 - p < e**-100)",
        "BCELoss clamps its log outputs at -100: p = 1e-50, y = 1 gives 100 where the exact loss is 115.13; "
        "the backward clamps p(1 - p) at 1e-12",
        "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html",
        _bce_clamped, documented_oracle="torch:binary_cross_entropy"),
    Deviation(
        "torch-ce-prob-target-masked-logit", "torch", "cross_entropy",
        "probability targets with a -inf logit where the target probability is 0",
        "torch computes -(target * log_softmax).sum(): 0 * (-inf) = NaN where the exact loss ignores the "
        "zero-mass class (0 log 0 = 0); class-index targets are not affected",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html "
        "(no upstream issue found; optax has the same defect: https://github.com/google-deepmind/optax/issues/896)",
        _prob_target_with_masked_logit, documented_output=math.isnan),
    Deviation(
        "torch-nll-zero-weight-masked", "torch", "nll_loss",
        "a target whose class weight is 0 has log-probability -inf",
        "torch computes -weight[t] * input[t] = -0 * (-inf) = NaN; a class of weight 0 contributes nothing "
        "to the exact loss (the 0 log 0 = 0 convention)",
        "https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html",
        _zero_weight_on_masked_target, documented_output=math.isnan),
    Deviation(
        "torch-ce-zero-weight-masked", "torch", "cross_entropy",
        "a target whose class weight is 0 has logit -inf",
        "as for nll_loss: weight 0 times an infinite log-probability is NaN in torch, 0 in the exact loss",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html",
        _zero_weight_on_masked_target, documented_output=math.isnan),
    Deviation(
        "torch-softmax-plus-inf", "torch", "softmax",
        "a +inf logit",
        "softmax with a single +inf logit is one-hot in the limit; torch returns NaN (a design decision: "
        "'true in the limit sense only')",
        "https://github.com/pytorch/pytorch/issues/6864",
        _plus_inf_logit, documented_output=math.isnan),
    Deviation(
        "torch-log_softmax-plus-inf", "torch", "log_softmax",
        "a +inf logit",
        "as for softmax: the limit exists (0 at the +inf logit, -inf elsewhere); torch returns NaN",
        "https://github.com/pytorch/pytorch/issues/6864",
        _plus_inf_logit, documented_output=math.isnan),
]


def matching(subject: str, loss: str, kwargs: dict):
    """The deviations that apply to this call (usually none)."""
    return [d for d in DEVIATIONS if d.subject == subject and d.loss == loss and d.applies(kwargs)]
