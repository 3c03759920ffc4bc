"""Precision control: a certified rounding does not change when the working precision is doubled; the cap
raises instead of guessing; the boundary decision handles exact ties and tails below any fixed precision."""

from __future__ import annotations

import random

import pytest

import oracles
from oracles import OraclePrecisionError, precision_cap
from oracles.exact import Exact
from oracles.formats import FORMATS, round_to_format

FMTS = list(FORMATS)


def _cases():
    rng = random.Random(20261129)
    out = []
    for i in range(60):
        fmt = FMTS[i % 4]
        c = rng.randint(2, 6)
        x = [[round_to_format(rng.choice([-1, 1]) * 10 ** rng.uniform(-3, 3), fmt) for _ in range(c)]]
        out.append(("cross_entropy", fmt, {"input": x, "target": [rng.randrange(c)]}))
        p = round_to_format(rng.random(), fmt)
        out.append(("binary_cross_entropy_with_logits", fmt,
                    {"input": [x[0][0]], "target": [p], "pos_weight": [2.0]}))
        out.append(("softplus", fmt, {"input": x[0][0], "beta": 0.5}))
    return out


@pytest.mark.parametrize("name,fmt,kwargs", _cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_rounding_is_stable_under_doubled_precision(name, fmt, kwargs):
    r = oracles.REGISTRY[name](**kwargs)
    r = r[0] if isinstance(r, list) else r
    y = r.to(fmt)
    w = r.precision_used
    assert w > 0
    for k in (2, 4):
        fresh = oracles.REGISTRY[name](**kwargs)
        fresh = fresh[0] if isinstance(fresh, list) else fresh
        again = fresh.decided_at(fmt, k * w)
        assert again is not None and again == y, f"{name} {fmt}: {y!r} at {w} bits, {again!r} at {k * w}"


def test_the_cap_raises_instead_of_guessing():
    # log(3) - log(3) computed through different expressions: (log 3 + log 5) - log 15 is exactly 0, but the
    # expression does not show it (logs of different odd integers), so no ball ever decides the sign
    import oracles.expr as E

    three, five, fifteen = (E.log(E.as_node(float(v))) for v in (3, 5, 15))
    value = Exact(E.nsum([three, five, -fifteen]))
    with precision_cap(256):
        with pytest.raises(OraclePrecisionError, match="could not decide"):
            value.to("float32")


def test_the_cap_is_validated():
    with pytest.raises(ValueError):
        with precision_cap(10):
            pass
    assert oracles.get_precision_cap() == 1 << 15


def test_exact_tie_rounds_to_even():
    # nll_loss mean of -(1 + 2**-11) and -(1 + 3 * 2**-11)... built so the exact mean is a float16 midpoint
    x = [[1.0 + 2.0**-11], [1.0 + 2.0**-10 + 2.0**-11]]  # mean of the negatives: -(1 + 2**-10) exactly? no:
    r = oracles.nll_loss([[-(1.0 + 2.0**-11)]], [0])  # 1 + 2**-11 is the tie between 1 and 1 + 2**-10
    assert r.to("float16") == 1.0  # ties to even
    r = oracles.nll_loss([[-(1.0 + 3 * 2.0**-11)]], [0])
    assert r.to("float16") == 1.0 + 2.0**-9  # the even neighbour above
    del x


def test_midpoint_plus_a_tail_below_any_fixed_precision():
    """54656 is the bfloat16 midpoint between 54528 and 54784; the exact loss is 54656 + log1p(e**-999424),
    a hair above it, so RN is 54784 (found by the Arb cross-check; confirmed by mpmath at 1.5 million bits)."""
    x, y = float.fromhex("0x1.e8p19"), float.fromhex("0x1.e4p-1")
    r = oracles.binary_cross_entropy_with_logits([x], [y], reduction="none")[0]
    assert r.to("bfloat16") == 54784.0


def test_exact_zero_through_rationals():
    """Seven equal logits: softmax is exactly 1/7, and the smoothed gradient s W - w is exactly 0."""
    a = -float.fromhex("0x1.2a35476c252dfp+760")
    r = oracles.cross_entropy([[a] * 7], [2], label_smoothing=1.0)
    assert [g.to("float64") for g in r.grad[0]] == [0.0] * 7
