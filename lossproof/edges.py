"""Edge problems: a fixed, small catalogue of inputs at the formats' arithmetic boundaries, measured before every
search (lossproof/search.py runs them as Hypothesis's explicit examples).

A random search reaches most regimes of NUMERICS.md in a hundred examples, but not the ones that need a long row
*and* one particular index or value at once: a label just past the integers a format holds, a row long enough
for a low-precision running sum to stall, a batch whose terms add past the largest finite value while their mean
is finite. Each takes thousands of elements, so the search draws them rarely (long rows are a twentieth of its
draws) and its work budget ends after a few. Here each boundary is one problem, derived from the formats'
parameters (precision p, largest finite value), never from a particular implementation, and measured by the same
property as every drawn example, so what it catches is judged like anything else. The cost is fixed: at most
``MAX_TERMS`` terms (rows of at most that many classes, batches of at most that many rows of two), about a dozen
problems per loss.

The boundaries (``CATEGORIES``), for every low-precision format F in ``LOW_PRECISION`` (bfloat16 p = 8, float16
p = 11), whatever the format under test (a float32 loss may still pass labels or sums through half precision):

- ``label_past_integers``: class 2^p + 1, the first integer F does not hold (257 in bfloat16, 2,049 in float16),
  as the target of a row of 2^p + 2 classes whose target logit (1) differs from every other (-1): a label cast
  through F reads a neighbouring class (2^p + 1 rounds to 2^p), and a one-hot built in F matches several.
- ``running_sum_stalls``: a row of 2^(p+1) equal logits (512, 4,096): exp(x - max) = 1 each, and a running
  total kept in F stops at 2^p (256 in bfloat16, 2,048 in float16: 2^p + 1 rounds back to 2^p), so log-sum-exp
  reads log 2^p for log 2^(p+1), off by log 2 = 0.69 nat; for kl_div, a row of as many uniform targets under
  reduction sum.
- ``mean_of_many``: 4,096 equal terms t (log 2 or 1 each) under a mean: an accumulator S kept in F stops
  growing once t is below half its ulp, S 2^-p (float16: 2,048 t), so the mean of 4,096 is off by a factor near
  2 (a mean of 2,048 only by 5%, within the stable bound's pairwise-summation allowance: hence 4,096).
- ``sum_past_largest``: four terms of half the largest finite value H = max_finite / 2 (exact in every format)
  under a mean (or batchmean): their sum 2 max_finite overflows, their mean H is finite, so a mean taken as
  sum / N in the format gives inf for H.
- ``masked_zero_target`` (probability targets): a -inf logit under a zero target, whose term 0 * log 0 is 0 by
  the convention every loss uses; t * log_softmax(x) gives 0 * -inf = NaN.
- ``masked_zero_weight``: a -inf logit of a class of weight 0, read by the loss (a probability target, label
  smoothing, or nll_loss's target): a class of weight 0 contributes nothing, w * (t * log_softmax) gives
  0 * -inf = NaN.

``edge_problems(loss, fmt, probability_targets)`` lists ``(label, kwargs)`` for one loss: kwargs as
``lossproof/problems.py`` draws them (nested lists of exact values, metadata stripped), labels saying which boundary
and why, for the run's notes.
"""

from __future__ import annotations

import math

from oracles.formats import FORMATS

__all__ = ["CATEGORIES", "LOW_PRECISION", "MAX_TERMS", "edge_problems"]

#: the boundaries, each with the mistake it is there to expose (NUMERICS.md, "Mistakes the suite must catch")
CATEGORIES = {
    "label_past_integers": "integer labels cast to a low-precision float",
    "running_sum_stalls": "a row's running sum kept in a low-precision format",
    "mean_of_many": "a mean accumulated in a low-precision format",
    "sum_past_largest": "a mean taken as sum / N in the format, whose sum overflows",
    "masked_zero_target": "p log p without the 0 log 0 = 0 rule, on a masked logit",
    "masked_zero_weight": "a zero class weight times an infinite log-probability",
    "denominator": "a wrong reduction denominator (batchmean over the batch, a weighted mean over the weights of "
                   "the targets kept), on a typical input",
}

#: the formats whose integer and accumulation boundaries fall within MAX_TERMS
LOW_PRECISION = ("bfloat16", "float16")
#: terms of the largest edge problem: the default profile's longest drawn row (lossproof/problems.py)
MAX_TERMS = 4096

_SOFTMAX_ROWS = ("cross_entropy", "logsumexp", "softmax", "log_softmax")


def _p(name: str) -> int:
    return FORMATS[name].p


def _label_rows(loss: str):
    """(label, kwargs): target 2^p + 1 of a row of 2^p + 2 classes, target logit 1, every other -1."""
    out = []
    for name in LOW_PRECISION:
        t = 2 ** _p(name) + 1
        row = [-1.0] * (t + 1)
        row[t] = 1.0
        out.append((f"label_past_integers: target {t}, the first integer {name} does not hold, of {t + 1} classes",
                    {"input": [row], "target": [t], "reduction": "mean"}))
    return out


def _equal_rows(loss: str):
    """(label, kwargs): one row of 2^(p+1) equal logits (0), for each low-precision p."""
    out = []
    for name in LOW_PRECISION:
        n = 2 ** (_p(name) + 1)
        label = f"running_sum_stalls: {n} equal logits (a running sum in {name} stops at {n // 2})"
        if loss == "cross_entropy":
            out.append((label, {"input": [[0.0] * n], "target": [0], "reduction": "mean"}))
        elif loss == "kl_div":
            t = 1.0 / n  # a power of two: exact in every format
            out.append((label.replace("equal logits", "uniform targets"),
                        {"input": [[0.0] * n], "target": [[t] * n], "reduction": "sum", "log_target": False}))
        else:
            out.append((label, {"input": [[0.0] * n], "dim": 1}))
    return out


def _many_terms(loss: str):
    """(label, kwargs): MAX_TERMS equal terms t under a mean (a float16 accumulator stops near 2,048 t)."""
    n = MAX_TERMS
    label = f"mean_of_many: a mean of {n} equal terms (a float16 accumulator stops at 2048 of them)"
    if loss == "cross_entropy":  # two equal logits a row: log 2 each
        return [(label, {"input": [[0.0, 0.0]] * n, "target": [0] * n, "reduction": "mean"})]
    if loss == "nll_loss":  # -x_t = 1 each
        return [(label, {"input": [[-1.0]] * n, "target": [0] * n, "reduction": "mean"})]
    if loss == "binary_cross_entropy_with_logits":  # softplus(0) = log 2 each
        return [(label, {"input": [0.0] * n, "target": [0.0] * n, "reduction": "mean"})]
    if loss == "binary_cross_entropy":  # -log(1 - 1/2) = log 2 each
        return [(label, {"input": [0.5] * n, "target": [0.0] * n, "reduction": "mean"})]
    if loss == "kl_div":  # 1 (log 1 - (-1)) = 1 each
        return [(label, {"input": [[-1.0]] * n, "target": [[1.0]] * n, "reduction": "mean", "log_target": False})]
    return []


def _sum_past_largest(loss: str, fmt: str, probability_targets: bool):
    """(label, kwargs): four terms of H = max_finite / 2 under a mean: the sum 2 max_finite overflows."""
    h = FORMATS[fmt].max_finite / 2  # exact: a power-of-two scaling of a finite value
    label = f"sum_past_largest: a mean of 4 terms of {h:.4g} (half the largest finite {fmt}; their sum overflows)"
    if loss == "cross_entropy":
        out = [(label, {"input": [[0.0, h]] * 4, "target": [0] * 4, "reduction": "mean"})]
        if probability_targets:
            out.append((label + ", probability targets",
                        {"input": [[0.0, h]] * 4, "target": [[1.0, 0.0]] * 4, "reduction": "mean"}))
        return out
    if loss == "nll_loss":
        return [(label, {"input": [[-h, 0.0]] * 4, "target": [0] * 4, "reduction": "mean"})]
    if loss == "binary_cross_entropy_with_logits":  # softplus(h) = h
        return [(label, {"input": [-h] * 4, "target": [1.0] * 4, "reduction": "mean"})]
    if loss == "kl_div":  # 1 (log 1 - (-h)) = h
        return [(label + f", reduction {r}", {"input": [[-h]] * 4, "target": [[1.0]] * 4, "reduction": r,
                                               "log_target": False}) for r in ("mean", "batchmean")]
    return []


def _denominators(loss: str):
    """(label, kwargs): a small typical input whose mean divides by something other than the element count: kl_div's
    batchmean divides by the batch size (2, not 4), a weighted mean by the weights of the targets not ignored
    (1 + 3 = 4, not 3 targets). Exact in every format (halves and quarters)."""
    if loss == "kl_div":
        return [("denominator: batchmean of a 2 x 2 input divides by the batch size, 2",
                 {"input": [[-1.0, -2.0], [-0.5, -1.5]], "target": [[0.25, 0.75], [0.5, 0.5]],
                  "reduction": "batchmean", "log_target": False})]
    if loss in ("cross_entropy", "nll_loss"):
        x = [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]] if loss == "cross_entropy" else [[-0.5, -1.5], [-1.0, -0.25],
                                                                                   [-2.0, -0.5]]
        return [("denominator: a weighted mean divides by the weights of the targets kept, 1 + 3",
                 {"input": x, "target": [0, 1, -100], "weight": [1.0, 3.0], "ignore_index": -100,
                  "reduction": "mean"})]
    return []


def _masked_zero_target(loss: str, probability_targets: bool):
    if loss != "cross_entropy" or not probability_targets:
        return []
    return [("masked_zero_target: a -inf logit under a zero probability target (0 log 0 = 0)",
             {"input": [[0.0, -math.inf]], "target": [[1.0, 0.0]], "reduction": "mean"})]


def _masked_zero_weight(loss: str, probability_targets: bool):
    """(label, kwargs): class 1 has weight 0 and logit (log-probability) -inf, and the loss reads it."""
    row, w = [[0.0, -math.inf]], [1.0, 0.0]
    label = "masked_zero_weight: a -inf logit of a class of weight 0 (it contributes nothing), "
    if loss == "nll_loss":
        return [(label + "the target", {"input": row, "target": [1], "weight": w, "reduction": "sum"})]
    if loss != "cross_entropy":
        return []
    out = [(label + "under label smoothing", {"input": row, "target": [0], "weight": w, "reduction": "sum",
                                               "label_smoothing": 0.25})]
    if probability_targets:
        out.append((label + "under a nonzero probability target",
                    {"input": row, "target": [[0.5, 0.5]], "weight": w, "reduction": "sum"}))
    return out


def edge_problems(loss: str, fmt: str, probability_targets: bool = True) -> list:
    """The edge problems of ``loss`` in format ``fmt``: a list of (label, kwargs), the cheapest first. Empty for the
    elementwise functions (sigmoid, logsigmoid, softplus, xlogy), whose boundaries one element reaches and the
    search draws. ``probability_targets=False`` leaves out cross_entropy's probability-target problems (a
    subject that lacks them)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    out = []
    out += _denominators(loss)
    out += _masked_zero_target(loss, probability_targets)
    out += _masked_zero_weight(loss, probability_targets)
    out += _sum_past_largest(loss, fmt, probability_targets)
    if loss in ("cross_entropy", "nll_loss"):
        out += _label_rows(loss)
    if loss in _SOFTMAX_ROWS or loss == "kl_div":
        out += _equal_rows(loss)
    out += _many_terms(loss)
    return out
