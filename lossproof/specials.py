"""The special-value table: the extended reals of NUMERICS.md (limits where they exist, NaN where none does, an
exact-zero probability or weight contributes nothing), one readable row per case, each with the exact float64
values the oracle must give (tests/meta/test_special_values.py checks the oracle against it) and every subject is
held to (the battery's special-value test and ``lossproof check``).

Rows with finite inputs and -inf masks in the softmax family gate a run; rows with other infinities or NaN are
checked and reported, and gate only under --strict-specials.
"""

from __future__ import annotations

import math

__all__ = ["CASES", "rows_for"]

INF, NAN = math.inf, math.nan

CASES = [
    # (id, oracle, kwargs, expected float64 values (flattened))
    ("cross_entropy(target logit = -inf) -> inf", "cross_entropy", dict(input=[[-INF, 0.0]], target=[0]), [INF]),
    ("cross_entropy(non-target logit = -inf) -> the loss without that class", "cross_entropy",
     dict(input=[[0.0, -INF, 0.0]], target=[0]), [math.log(2)]),
    # finite, exact in every format and past every format's exp range (e**-8192 underflows even in float64):
    # 8192 + log1p(e**-8192) rounds to 8192; a naive -log(softmax) gives inf
    ("cross_entropy(logit gap 8192, wrong class) -> 8192", "cross_entropy",
     dict(input=[[0.0, 8192.0]], target=[0]), [8192.0]),
    ("cross_entropy(single +inf at the target) -> 0", "cross_entropy", dict(input=[[INF, 5.0]], target=[0]), [0.0]),
    ("cross_entropy(+inf off the target) -> inf", "cross_entropy", dict(input=[[INF, 5.0]], target=[1]), [INF]),
    ("cross_entropy(two +inf logits, one the target) -> nan", "cross_entropy",
     dict(input=[[INF, INF, 0.0]], target=[0]), [NAN]),
    ("cross_entropy(nan logit) -> nan", "cross_entropy", dict(input=[[NAN, 0.0]], target=[1]), [NAN]),
    ("cross_entropy(all logits -inf) -> nan", "cross_entropy", dict(input=[[-INF, -INF]], target=[1]), [NAN]),
    ("cross_entropy(probability 0 on a -inf logit) -> 0", "cross_entropy",
     dict(input=[[0.0, -INF]], target=[[1.0, 0.0]]), [0.0]),
    ("cross_entropy(probability > 0 on a -inf logit) -> inf", "cross_entropy",
     dict(input=[[0.0, -INF]], target=[[0.5, 0.5]]), [INF]),
    ("cross_entropy(label smoothing with a -inf logit) -> inf", "cross_entropy",
     dict(input=[[0.0, -INF]], target=[0], label_smoothing=0.1), [INF]),
    ("cross_entropy(every target ignored, mean) -> nan", "cross_entropy",
     dict(input=[[0.0, 1.0]], target=[-100]), [NAN]),
    ("cross_entropy(every target ignored, sum) -> 0", "cross_entropy",
     dict(input=[[0.0, 1.0]], target=[-100], reduction="sum"), [0.0]),
    ("nll_loss(every target ignored, mean) -> nan", "nll_loss", dict(input=[[0.0, 1.0]], target=[-100]), [NAN]),
    ("nll_loss(zero weight on a -inf log-probability) -> 0", "nll_loss",
     dict(input=[[-INF, 0.0]], target=[0], weight=[0.0, 1.0], reduction="sum"), [0.0]),
    ("logsumexp(all -inf) -> -inf", "logsumexp", dict(input=[-INF, -INF]), [-INF]),
    ("logsumexp(+inf) -> inf", "logsumexp", dict(input=[INF, 0.0]), [INF]),
    ("logsumexp(+inf, +inf) -> inf", "logsumexp", dict(input=[INF, INF]), [INF]),
    ("logsumexp(nan) -> nan", "logsumexp", dict(input=[NAN, INF]), [NAN]),
    ("softmax(-inf mask) -> 0 there", "softmax", dict(input=[-INF, 0.0]), [0.0, 1.0]),
    ("softmax(all -inf) -> nan", "softmax", dict(input=[-INF, -INF]), [NAN, NAN]),
    ("softmax(single +inf) -> one-hot", "softmax", dict(input=[INF, 3.0]), [1.0, 0.0]),
    ("log_softmax(-inf mask) -> -inf there", "log_softmax", dict(input=[-INF, 0.0]), [-INF, 0.0]),
    ("sigmoid(+-inf) -> 1, 0", "sigmoid", dict(input=[INF, -INF]), [1.0, 0.0]),
    ("sigmoid(nan) -> nan", "sigmoid", dict(input=[NAN]), [NAN]),
    ("logsigmoid(-inf, +inf) -> -inf, 0", "logsigmoid", dict(input=[-INF, INF]), [-INF, 0.0]),
    ("softplus(+inf, -inf) -> inf, 0", "softplus", dict(input=[INF, -INF]), [INF, 0.0]),
    ("binary_cross_entropy(p = 0, y = 0) -> 0", "binary_cross_entropy", dict(input=[0.0], target=[0.0]), [0.0]),
    ("binary_cross_entropy(p = 0, y = 1) -> inf", "binary_cross_entropy", dict(input=[0.0], target=[1.0]), [INF]),
    ("binary_cross_entropy(p = 1, y = 1) -> 0", "binary_cross_entropy", dict(input=[1.0], target=[1.0]), [0.0]),
    ("binary_cross_entropy(p = 1, y = 0.5) -> inf", "binary_cross_entropy",
     dict(input=[1.0], target=[0.5]), [INF]),
    ("torch:binary_cross_entropy(p = 0, y = 1) -> 100 (documented clamp)", "torch:binary_cross_entropy",
     dict(input=[0.0], target=[1.0]), [100.0]),
    ("binary_cross_entropy_with_logits(x = +inf, y = 1) -> 0", "binary_cross_entropy_with_logits",
     dict(input=[INF], target=[1.0]), [0.0]),
    ("binary_cross_entropy_with_logits(x = +inf, y = 0) -> inf", "binary_cross_entropy_with_logits",
     dict(input=[INF], target=[0.0]), [INF]),
    ("binary_cross_entropy_with_logits(x = -inf, y = 0) -> 0", "binary_cross_entropy_with_logits",
     dict(input=[-INF], target=[0.0]), [0.0]),
    ("binary_cross_entropy_with_logits(x = nan) -> nan", "binary_cross_entropy_with_logits",
     dict(input=[NAN], target=[0.0]), [NAN]),
    ("kl_div(target 0, input -inf) -> 0", "kl_div", dict(input=[-INF], target=[0.0], reduction="sum"), [0.0]),
    ("kl_div(target > 0, input -inf) -> inf", "kl_div", dict(input=[-INF], target=[0.5], reduction="sum"), [INF]),
    ("kl_div(log_target -inf, input -inf) -> 0", "kl_div",
     dict(input=[-INF], target=[-INF], log_target=True, reduction="sum"), [0.0]),
    ("kl_div(empty, mean) -> nan", "kl_div", dict(input=[], target=[], reduction="mean"), [NAN]),
    ("xlogy(0, 0) -> 0", "xlogy", dict(input=[0.0], other=[0.0]), [0.0]),
    ("xlogy(0, inf) -> 0", "xlogy", dict(input=[0.0], other=[INF]), [0.0]),
    ("xlogy(0, nan) -> nan", "xlogy", dict(input=[0.0], other=[NAN]), [NAN]),
    ("xlogy(1, 0) -> -inf", "xlogy", dict(input=[1.0], other=[0.0]), [-INF]),
    ("xlogy(1, -1) -> nan", "xlogy", dict(input=[1.0], other=[-1.0]), [NAN]),
]


def rows_for(loss: str) -> list:
    """The table's rows (id, oracle, kwargs, expected) of ``loss``."""
    return [row for row in CASES if row[1] == loss]
