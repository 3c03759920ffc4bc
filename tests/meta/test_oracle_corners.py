"""The oracle's last corners (issue 18, item 4): exact cancellations through opposite class weights are decided
(not raised), a mean over an input of no element is NaN, binary_cross_entropy refuses targets outside [0, 1],
kl_div(log_target=True) with a -inf target is exactly 0 (torch's NaN there is torch's deviation), and an exact zero
is +0.0 whose sign the verdict does not judge (docs/NUMERICS.md, "Semantics of special values").

Every expected value here is a closed form computed in exact rationals beside the oracle, never by it: with
probability targets the per-row loss is -sum_c w_c t_c (x_c - LSE(x)) = -sum_c w_c t_c x_c + LSE(x) sum_c w_c t_c,
so where the weighted target mass sum_c w_c t_c is exactly 0 the loss is the rational -sum_c w_c t_c x_c, and its
gradient with respect to x_c is s_c * 0 - w_c t_c = -w_c t_c, whatever the logits are.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

import oracles
from lossproof.measure import measure
from oracles.formats import get_format, round_to_format
from oracles.tensors import OracleInputError

FORMATS = ("float64", "float32", "float16", "bfloat16")
INF, NAN = math.inf, math.nan
LOG2 = float.fromhex("0x1.62e42fefa39efp-1")  # RN(log 2) in float64


def _flat(r):
    return [e for x in r for e in _flat(x)] if isinstance(r, list) else [r]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


# --------------------------------------------------------------------------------------------------
# the two examples


def test_opposite_weights_cancel_to_an_exact_zero():
    r = oracles.cross_entropy([[0, 0]], [[1, 1]], weight=[1, -1])
    for fmt in FORMATS:
        assert _same(r.to(fmt), 0.0)
    assert [g.to("float64") for g in r.grad[0]] == [-1.0, 1.0]  # -w_c t_c


def test_opposite_weights_leave_an_exact_tie_rounded_to_even():
    # (L - (-16777217)) * 1 - (L - 0) * 1 = 16777217 exactly: a float32 tie between 16777216 and 16777218
    r = oracles.cross_entropy([[0, 16777217.0]], [[1, 1]], weight=[1, -1])
    assert r.to("float64") == 16777217.0
    assert r.to("float32") == 16777216.0  # ties to even
    assert r.to("bfloat16") == 16777216.0
    assert r.to("float16") == INF  # past 65520, the float16 overflow midpoint


# --------------------------------------------------------------------------------------------------
# the family: several shapes, weights, reductions and formats, exact answers in closed form

_W = (Fraction(1), Fraction(1, 2), Fraction(3), Fraction(1, 4), Fraction(5, 8))
_T = (Fraction(0), Fraction(1, 4), Fraction(1, 2), Fraction(3, 4), Fraction(1))


def _logit(rng, fmt):
    """An exact value of ``fmt``: at most 7 significant bits (exact in bfloat16), modest or huge exponents
    (huge ones only where the format holds them), or +0."""
    f = get_format(fmt)
    m = rng.randint(-127, 127)
    top = min(f.emax - 8, 40)
    return float(Fraction(m) * Fraction(2) ** rng.randint(-6, top))


def _mass_zero_problem(rng, fmt):
    """Rows of C classes with weights paired as (a, -a) and each pair's targets equal: sum_c w_c t_c = 0 in every
    row, classes shuffled. Some rows repeat an earlier row shifted by a constant (shared log terms), some hold
    equal logits within each pair (an exact 0 loss: the cases an undecided sign of zero would raise on)."""
    pairs = rng.randint(1, 3)
    w, perm = [], list(range(2 * pairs))
    for _ in range(pairs):
        a = rng.choice(_W)
        w += [a, -a]
    rng.shuffle(perm)
    w = [w[p] for p in perm]
    n = rng.choice((1, 2, 4))  # a power of two: the mean stays a dyadic rational, exact to round
    rows, targets = [], []
    for _ in range(n):
        if rows and rng.random() < 0.3:
            shift = float(rng.randint(-64, 64))
            rows.append([x + shift for x in rows[rng.randrange(len(rows))]])
        elif rng.random() < 0.4:  # each pair's two logits equal: the row's loss is exactly 0
            xs = [_logit(rng, fmt) for _ in range(pairs) for _ in range(2)]
            xs = [xs[2 * (k // 2)] for k in range(2 * pairs)]
            rows.append([xs[p] for p in perm])
        else:
            rows.append([_logit(rng, fmt) for _ in w])
        t = []
        for _ in range(pairs):
            v = rng.choice(_T)
            t += [v, v]
        targets.append([t[p] for p in perm])
    return rows, targets, w


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("seed", range(12))
def test_mass_zero_rows_are_exact_rationals(fmt, seed):
    rng = random.Random(f"{fmt}-{seed}")
    rows, targets, w = _mass_zero_problem(rng, fmt)
    per_row = [-sum((wc * tc * Fraction(x) for wc, tc, x in zip(w, t, r)), Fraction(0))
               for r, t in zip(rows, targets)]
    kw = dict(input=rows, target=[[float(v) for v in t] for t in targets], weight=[float(v) for v in w])
    none = _flat(oracles.cross_entropy(**kw, reduction="none"))
    assert [e.to(fmt) for e in none] == [round_to_format(q, fmt) for q in per_row]
    total = sum(per_row, Fraction(0))
    s = oracles.cross_entropy(**kw, reduction="sum")
    assert _same(s.to(fmt), round_to_format(total, fmt) if total else 0.0)
    m = oracles.cross_entropy(**kw, reduction="mean")
    assert _same(m.to(fmt), round_to_format(total / len(rows), fmt) if total else 0.0)
    # the gradient of the sum: -w_c t_c at every element, exactly
    want = [[float(-wc * tc) for wc, tc in zip(w, t)] for t in targets]
    assert [[g.to("float64") for g in row] for row in s.grad] == want


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("seed", range(6))
def test_class_index_targets_cancel_across_shifted_rows(fmt, seed):
    """Row 2 = row 1 + s with targets a, b and weights w_a = -w_b: w_a (LSE - x_a) - w_a (LSE + s - x_b - s)
    = w_a (x_b - x_a), under "sum", whatever the row; label smoothing 0."""
    rng = random.Random(f"idx-{fmt}-{seed}")
    C = rng.randint(2, 5)
    row = [_logit(rng, fmt) for _ in range(C)]
    a, b = rng.sample(range(C), 2)
    wa = rng.choice(_W)
    w = [float(rng.choice(_W)) for _ in range(C)]
    w[a], w[b] = float(wa), float(-wa)
    shift = float(rng.randint(-64, 64))
    r = oracles.cross_entropy([row, [x + shift for x in row]], [a, b], weight=w, reduction="sum")
    want = wa * (Fraction(row[b]) - Fraction(row[a]))
    assert _same(r.to(fmt), round_to_format(want, fmt) if want else 0.0)


def test_cancellation_agrees_with_torch_in_float64():
    rng = random.Random(7)
    for _ in range(20):
        rows, targets, w = _mass_zero_problem(rng, "float64")
        kw = dict(weight=[float(v) for v in w], reduction="sum")
        z = oracles.cross_entropy(rows, [[float(v) for v in t] for t in targets], **kw).to("float64")
        T = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
        y = F.cross_entropy(T(rows), T([[float(v) for v in t] for t in targets]), weight=T(kw["weight"]),
                            reduction="sum").item()
        # torch sums log-terms of size up to |x| + log C: its error is a few ulps of the largest, not of z
        scale = max(abs(x) for r in rows for x in r) + 3
        assert abs(y - z) <= 64 * 2.0**-52 * scale * len(rows) * len(w), (rows, targets, w, y, z)


# --------------------------------------------------------------------------------------------------
# a mean over nothing


_EMPTY = [
    ("cross_entropy", dict(input=[], target=[])),  # probability targets over a (0,) input
    ("cross_entropy", dict(input=[[], []], target=[[], []])),  # (2, 0): torch's sum / (numel / C) = 0/0
    ("cross_entropy", dict(input=[[], []], target=[[], []], label_smoothing=0.25)),
    ("cross_entropy", dict(input=[[[], []]], target=[[[], []]])),  # (1, 2, 0)
    ("cross_entropy", dict(input=[[], []], target=[-100, -100])),  # class indices, all ignored
    ("nll_loss", dict(input=[[], []], target=[-100, -100])),
    ("binary_cross_entropy", dict(input=[], target=[])),
    ("binary_cross_entropy_with_logits", dict(input=[], target=[])),
    ("kl_div", dict(input=[], target=[])),
    ("kl_div", dict(input=[[], []], target=[[], []])),
]


def _torch_call(name, kw):
    kw = dict(kw)
    x = torch.tensor(kw.pop("input"), dtype=torch.float64)
    t = kw.pop("target")
    t = torch.tensor(t, dtype=torch.int64 if any(isinstance(v, int) for v in _flat(t)) else torch.float64)
    return getattr(F, name)(x, t, **kw)


@pytest.mark.parametrize("name,kw", _EMPTY, ids=[f"{n}-{i}" for i, (n, _) in enumerate(_EMPTY)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_empty_inputs_follow_torch(name, kw, reduction):
    """mean: NaN (torch's documented 0/0); sum: an empty sum, 0; none: as many zeros as torch has outputs (the
    sign of those exact zeros is not judged: +0.0 here, torch's -0.0 for probability targets)."""
    kw = {**kw, "reduction": reduction}
    z = [e.to("float64") for e in _flat(oracles.REGISTRY[name](**kw))]
    y = _torch_call(name, kw).reshape(-1).tolist()
    assert len(z) == len(y)
    if reduction == "mean":
        assert math.isnan(z[0]) and math.isnan(y[0])
    else:
        assert all(_same(v, 0.0) for v in z) and all(v == 0 for v in y)


@pytest.mark.parametrize("smoothing", [0.0, 2.0 ** -126, 0.1])
@pytest.mark.parametrize("target", [0, 2])
def test_a_mean_over_zero_total_weight_has_an_undefined_gradient(smoothing, target):
    """Every target's class weighs 0: the weighted mean is 0/0 or (under label smoothing, whose term reads the
    weight-1 class of logit -inf) inf/0, undefined, NaN; so is every component of its gradient, as in torch.
    The oracle used to divide the numerator's gradient by the zero denominator: -inf and +inf where smoothing
    makes it nonzero (found by the ci battery in a 460-class float32 row, torch's NaN gradient judged broken)."""
    kw = dict(input=[[-INF, -INF, -54.0]], target=[target], weight=[0.0, 1.0, 0.0], label_smoothing=smoothing,
              reduction="mean")
    r = oracles.cross_entropy(**kw)
    assert math.isnan(r.to("float32"))
    grads = [g.to("float32") for g in _flat(r.grad)]
    x = torch.tensor(kw["input"], dtype=torch.float32, requires_grad=True)
    F.cross_entropy(x, torch.tensor([target]), weight=torch.tensor(kw["weight"]), label_smoothing=smoothing,
                    reduction="mean").backward()
    assert len(grads) == 3 and all(math.isnan(g) for g in grads)
    assert all(math.isnan(g) for g in x.grad.reshape(-1).tolist())


@pytest.mark.parametrize("kw", [
    dict(input=[[[1.0], [2.0], [0.5]]], target=[[-100]], label_smoothing=0.5),  # every row ignored
    dict(input=[[1.0, 2.0, 0.5], [0.0, 1.0, 3.0]], target=[-100, 1], weight=[1.0, 0.0, 1.0], label_smoothing=0.5),
], ids=["all-ignored", "ignored-and-zero-weight"])
def test_an_undefined_mean_leaves_the_inputs_it_does_not_read_at_gradient_zero(kw):
    """The mean over zero total weight is NaN, and so is its gradient where the loss reads the input; an ignored
    row is not read, its gradient 0 (as torch's: the CI battery's float64 search found torch's 0 there, which a
    NaN in every component called broken)."""
    kw = {**kw, "reduction": "mean"}
    r = oracles.cross_entropy(**kw)
    grads = [g.to("float64") for g in _flat(r.grad)]
    x = torch.tensor(kw["input"], dtype=torch.float64, requires_grad=True)
    w = kw.get("weight")
    F.cross_entropy(x, torch.tensor(kw["target"]), weight=None if w is None else torch.tensor(w, dtype=torch.float64),
                    label_smoothing=kw["label_smoothing"], reduction="mean").backward()
    assert math.isnan(r.to("float64"))
    assert all(_same(a, b) for a, b in zip(grads, x.grad.reshape(-1).tolist(), strict=True)), grads


def test_kl_div_batchmean_over_rows_of_no_element_is_zero():
    # batchmean divides by the batch (2 rows), not by the elements: 0 / 2 = 0, as torch gives
    z = oracles.kl_div([[], []], [[], []], reduction="batchmean").to("float64")
    assert _same(z, 0.0) and F.kl_div(torch.empty(2, 0), torch.empty(2, 0), reduction="batchmean").item() == 0


# --------------------------------------------------------------------------------------------------
# binary_cross_entropy's target range


@pytest.mark.parametrize("y", [1.5, 1.0000000000000002, INF, NAN, "nan", -0.5])
@pytest.mark.parametrize("name", ["binary_cross_entropy", "torch:binary_cross_entropy"])
def test_bce_refuses_targets_outside_0_1_as_torch_does(name, y):
    with pytest.raises(OracleInputError, match="between 0 and 1|negative probability"):
        oracles.REGISTRY[name](input=[0.5, 0.5], target=[0.5, y])
    yf = float(y)
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(torch.tensor([0.5, 0.5], dtype=torch.float64),
                               torch.tensor([0.5, yf], dtype=torch.float64))


@pytest.mark.parametrize("y", [0.0, 1.0, 2.0**-1074, 1 - 2.0**-53])
def test_bce_accepts_the_ends_of_0_1(y):
    # -(y log 1/2 + (1 - y) log 1/2) = log 2 for every y: RN(log 2) = 0x1.62e42fefa39efp-1
    z = oracles.binary_cross_entropy(input=[0.5], target=[y], reduction="sum").to("float64")
    assert z == LOG2


def test_bce_with_logits_takes_any_target_as_torch_does():
    z = oracles.binary_cross_entropy_with_logits(input=[0.0], target=[1.5], reduction="sum").to("float64")
    # 1.5 softplus(0) - 0.5 softplus(0) = log 2
    assert z == LOG2 == F.binary_cross_entropy_with_logits(torch.tensor([0.0], dtype=torch.float64),
                                                           torch.tensor([1.5], dtype=torch.float64)).item()


# --------------------------------------------------------------------------------------------------
# kl_div(log_target=True) with a -inf target


@pytest.mark.parametrize("x", [0.5, -3.0, 0.0, -INF, 1e300])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
def test_kl_div_log_target_minus_inf_is_exactly_zero_where_torch_says_nan(x, reduction):
    """e**t (t - x) -> 0 as t -> -inf for every finite x (and a -inf target carries no mass even at x = -inf):
    the exact value is 0. torch computes exp(t) * (t - x) = 0 * (-inf) = NaN: its deviation (a witness for the
    deviations file; this assertion tells when torch changes)."""
    kw = dict(input=[x, 0.25], target=[-INF, 0.25], log_target=True, reduction=reduction)
    z = [e.to("float64") for e in _flat(oracles.kl_div(**kw))]
    assert all(_same(v, 0.0) for v in z)
    y = F.kl_div(torch.tensor([x, 0.25], dtype=torch.float64), torch.tensor([-INF, 0.25], dtype=torch.float64),
                 log_target=True, reduction=reduction).reshape(-1).tolist()
    assert math.isnan(y[0])
    g = oracles.kl_div(**{**kw, "reduction": "sum"}).grad
    assert _same(g[0].to("float64"), 0.0)  # -e**t = -0: the input does not enter


# --------------------------------------------------------------------------------------------------
# the sign of an exact zero


@pytest.mark.parametrize("kw", [
    dict(input=[[0.0, 1.0]], target=[[0.0, 0.0]]),  # every target 0: an empty mass
    dict(input=[[0.0, 0.0]], target=[[1.0, 1.0]], weight=[1.0, -1.0]),  # a cancellation
    dict(input=[[3.0, 3.0], [-7.0, -7.0]], target=[[0.5, 0.5], [0.25, 0.25]], weight=[2.0, -2.0]),
])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_an_exact_zero_is_plus_zero_and_either_sign_is_correctly_rounded(kw, reduction):
    """The rule (NUMERICS.md): an exact zero has no sign; the oracle prints +0.0 (IEEE 754's exact sum under
    round to nearest) and the verdict accepts +0.0 and -0.0 alike, which torch's -0.0 there is."""
    kw = {**kw, "reduction": reduction}
    z = _flat(oracles.cross_entropy(**kw))
    for e in z:
        assert _same(e.to("float32"), 0.0)
    T = lambda v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    y = F.cross_entropy(T(kw["input"]), T(kw["target"]), weight=T(kw["weight"]) if "weight" in kw else None,
                        reduction=reduction).reshape(-1).tolist()
    for ys in ([-0.0] * len(z), [0.0] * len(z), y):
        m = measure("torch", "cross_entropy", "float32", "cpu", kw, ys)
        assert m.verdict == "correctly_rounded", (ys, m.elements)


def test_the_sign_of_a_nonzero_value_that_rounds_to_zero_is_judged():
    # nll_loss of x = 2**-200 is -2**-200: float32 rounds it to -0.0, and +0.0 is not correctly rounded
    kw = dict(input=[[2.0**-200]], target=[0], reduction="sum")
    assert _same(oracles.nll_loss(**kw).to("float32"), -0.0)
    assert measure("torch", "nll_loss", "float32", "cpu", kw, [-0.0]).verdict == "correctly_rounded"
    assert measure("torch", "nll_loss", "float32", "cpu", kw, [0.0]).verdict == "accurate"
