"""The oracle's parameter semantics are torch's: on benign inputs (|x| <= 8, a few classes) torch's float64
result must agree with the oracle to within its rounding error, for every parameter combination.

Bound: torch's float64 algorithms here are backward stable sums of at most n = N * C * D terms, each of
magnitude at most S = max|w| * (max|x| + log C + 1); their error is at most n * 2**-52 * (|z| + n * S)
(a generous Higham-style bound for recursive summation). A wrong denominator, weight or smoothing term is
off by O(|z|), some 10**12 times more.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, note
from hypothesis import strategies as st

import oracles

small = st.floats(min_value=-8, max_value=8, allow_nan=False, width=64)
prob = st.sampled_from([0.0, 0.125, 0.25, 0.5, 0.75, 1.0, 0.3])
wgt = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])


def _flat(r):
    return [e for x in r for e in _flat(x)] if isinstance(r, list) else [r]


def check(oracle_result, torch_result, n, S, what):
    ys = torch_result.detach().reshape(-1).tolist()
    zs = [e.to("float64") for e in _flat(oracle_result)]
    assert len(ys) == len(zs), what
    for y, z in zip(ys, zs):
        if math.isnan(z):
            assert math.isnan(y), (what, y, z)
            continue
        assert abs(y - z) <= n * 2**-52 * (abs(z) + n * S), (what, y, z)


@st.composite
def class_problem(draw):
    n = draw(st.integers(1, 3), label="N")
    c = draw(st.integers(2, 5), label="C")
    d = draw(st.sampled_from([None, 2]), label="d1")
    shape = (n, c) if d is None else (n, c, d)
    x = torch.tensor(draw(st.lists(small, min_size=math.prod(shape), max_size=math.prod(shape))),
                     dtype=torch.float64).reshape(shape)
    return x


@given(class_problem(), st.data())
def test_cross_entropy_class_targets(x, data):
    n, c = x.shape[0], x.shape[1]
    tshape = (n,) + tuple(x.shape[2:])
    ignore = data.draw(st.sampled_from([-100, 0, 1]), label="ignore_index")
    t = torch.tensor(data.draw(st.lists(st.integers(0, c - 1), min_size=math.prod(tshape),
                                        max_size=math.prod(tshape)), label="target")).reshape(tshape)
    w = data.draw(st.none() | st.lists(wgt, min_size=c, max_size=c), label="weight")
    eps = data.draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]), label="label_smoothing")
    red = data.draw(st.sampled_from(["none", "mean", "sum"]), label="reduction")
    wt = None if w is None else torch.tensor(w, dtype=torch.float64)
    note(f"x={x.tolist()} t={t.tolist()} w={w} eps={eps} red={red} ignore={ignore}")
    got = F.cross_entropy(x, t, weight=wt, ignore_index=ignore, reduction=red, label_smoothing=eps)
    z = oracles.cross_entropy(x.tolist(), t.tolist(), weight=w, ignore_index=ignore, reduction=red,
                              label_smoothing=eps)
    check(z, got, x.numel(), 3 * (8 + math.log(c) + 1), "cross_entropy")
    if red != "none" and eps == 0.0:
        nl = F.nll_loss(x, t, weight=wt, ignore_index=ignore, reduction=red)
        check(oracles.nll_loss(x.tolist(), t.tolist(), weight=w, ignore_index=ignore, reduction=red), nl,
              x.numel(), 3 * 8, "nll_loss")


@given(class_problem(), st.data())
def test_cross_entropy_probability_targets(x, data):
    p = torch.tensor(data.draw(st.lists(prob, min_size=x.numel(), max_size=x.numel()), label="p"),
                     dtype=torch.float64).reshape(x.shape)
    c = x.shape[1]
    w = data.draw(st.none() | st.lists(wgt, min_size=c, max_size=c), label="weight")
    eps = data.draw(st.sampled_from([0.0, 0.2]), label="label_smoothing")
    red = data.draw(st.sampled_from(["none", "mean", "sum"]), label="reduction")
    wt = None if w is None else torch.tensor(w, dtype=torch.float64)
    got = F.cross_entropy(x, p, weight=wt, reduction=red, label_smoothing=eps)
    z = oracles.cross_entropy(x.tolist(), p.tolist(), weight=w, reduction=red, label_smoothing=eps)
    check(z, got, x.numel(), 3 * (8 + math.log(c) + 1), "cross_entropy(prob)")


@given(st.lists(small, min_size=1, max_size=6), st.data())
def test_binary_losses(xs, data):
    n = len(xs)
    y = data.draw(st.lists(prob, min_size=n, max_size=n), label="y")
    w = data.draw(st.none() | st.lists(wgt, min_size=n, max_size=n), label="weight")
    pw = data.draw(st.none() | st.lists(wgt, min_size=1, max_size=1), label="pos_weight")
    red = data.draw(st.sampled_from(["none", "mean", "sum"]), label="reduction")
    T = lambda v: None if v is None else torch.tensor(v, dtype=torch.float64)  # noqa: E731
    got = F.binary_cross_entropy_with_logits(T(xs), T(y), weight=T(w), pos_weight=T(pw), reduction=red)
    z = oracles.binary_cross_entropy_with_logits(xs, y, weight=w, pos_weight=pw, reduction=red)
    check(z, got, n, 3 * 3 * 10, "binary_cross_entropy_with_logits")
    p = [min(max(abs(v) / 8, 1e-3), 1 - 1e-3) for v in xs]  # away from 0 and 1: no -100 clamp
    got = F.binary_cross_entropy(T(p), T(y), weight=T(w), reduction=red)
    check(oracles.binary_cross_entropy(p, y, weight=w, reduction=red), got, n, 3 * 10, "binary_cross_entropy")


@given(class_problem(), st.data())
def test_kl_div(x, data):
    t = data.draw(st.lists(prob, min_size=x.numel(), max_size=x.numel()), label="target")
    log_target = data.draw(st.booleans(), label="log_target")
    red = data.draw(st.sampled_from(["none", "mean", "sum", "batchmean"]), label="reduction")
    tt = torch.tensor(t, dtype=torch.float64).reshape(x.shape)
    if log_target:
        tt = torch.log(tt.clamp_min(1e-3))
    got = F.kl_div(x, tt, reduction=red, log_target=log_target)
    check(oracles.kl_div(x.tolist(), tt.tolist(), reduction=red, log_target=log_target), got, x.numel(),
          3 * 20, "kl_div")


@given(class_problem(), st.integers(-3, 2))
def test_softmax_family_dims(x, dim):
    if dim >= x.dim() or dim < -x.dim():
        dim = 1
    n = x.numel()
    check(oracles.softmax(x.tolist(), dim=dim), F.softmax(x, dim=dim), n, 2, "softmax")
    check(oracles.log_softmax(x.tolist(), dim=dim), F.log_softmax(x, dim=dim), n, 20, "log_softmax")
    check(oracles.logsumexp(x.tolist(), dim=dim), torch.logsumexp(x, dim=dim), n, 20, "logsumexp")


@given(st.lists(small, min_size=1, max_size=5), st.sampled_from([0.5, 1.0, 2.0, -1.0]))
def test_elementwise(xs, beta):
    t = torch.tensor(xs, dtype=torch.float64)
    check(oracles.sigmoid(xs), torch.sigmoid(t), 1, 1, "sigmoid")
    check(oracles.logsigmoid(xs), F.logsigmoid(t), 1, 10, "logsigmoid")
    check(oracles.torch_variants.softplus(xs, beta=beta), F.softplus(t, beta=beta), 1, 20, "softplus")
    y = [abs(v) for v in xs]
    check(oracles.xlogy(xs, y), torch.xlogy(t, torch.tensor(y, dtype=torch.float64)), 1, 20, "xlogy")


def test_implicit_softmax_dim_is_torchs():
    x = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4) / 7
    with pytest.warns(UserWarning):
        want = F.softmax(x)  # implicit dim: 0 for 3-d input
    check(oracles.softmax(x.tolist()), want, 24, 2, "softmax(dim=None)")
