"""The oracle against the special-value table (lossproof/specials.py): the extended reals of NUMERICS.md, one
readable case per line, and the limits of gradients at special values."""

from __future__ import annotations

import math

import pytest

import oracles
from lossproof.specials import CASES
from oracles.codec import flat

INF, NAN = math.inf, math.nan


@pytest.mark.parametrize("name,kwargs,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_special_value(name, kwargs, want):
    got = [e.to("float64") for e in flat(oracles.REGISTRY[name](**kwargs))]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if math.isnan(w):
            assert math.isnan(g), (g, w)
        elif w == math.log(2):
            assert g == pytest.approx(w, rel=2**-52)  # math.log(2) is the correctly rounded log 2
        else:
            assert g == w, (g, w)


def test_gradient_of_a_masked_row_has_limits():
    """d/dx of cross_entropy with the target logit at -inf: -1 at the target, softmax elsewhere (limits)."""
    r = oracles.cross_entropy([[-INF, 0.0, 0.0]], [0], reduction="sum")
    assert [g.to("float64") for g in r.grad[0]] == [-1.0, 0.5, 0.5]


def test_gradient_where_every_target_is_ignored_is_zero():
    """The mean over no targets is 0/0 = NaN, but no input enters it: its gradient is 0 (autograd's answer)."""
    r = oracles.nll_loss([[0.0, 1.0]], [-100])
    assert math.isnan(r.to("float32"))
    assert [g.to("float32") for g in r.grad[0]] == [0.0, 0.0]
    assert r.kappa.is_nan


def test_gradient_through_a_nan_input_is_nan():
    r = oracles.cross_entropy([[math.nan, 1.0]], [1], reduction="sum")
    assert all(math.isnan(g.to("float32")) for g in r.grad[0])
