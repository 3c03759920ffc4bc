"""Identities the exact functions must satisfy, checked at high precision on Hypothesis-drawn inputs.

Each side is computed by a different path through the oracle (e.g. cross_entropy through its own log-sum-exp
rows, nll_loss on the log-softmax values handed back as numbers), and both are enclosed to 200 bits. The
allowed gap, 2**-190 * (|a| + |b| + 1), is the sum of the two enclosure radii (each <= 2**-200 relative) plus
the error of handing log-softmax values to nll_loss as 200-bit binary numbers (<= C * 2**-200 * max|x|, with C <= 8
and |x| <= 2**40 here, so well inside 2**-190 * (|a| + |b| + 1)): any real discrepancy is far larger.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from mpmath import libmp

import oracles
from oracles.formats import round_to_format, to_mpf

BITS = 200
SLACK_EXP = -190  # allowed gap: 2**-190 * (|a| + |b| + 1)

_add, _sub, _abs, _cmp, _shift = libmp.mpf_add, libmp.mpf_sub, libmp.mpf_abs, libmp.mpf_cmp, libmp.mpf_shift


def enc(e):
    """A 200-bit enclosure midpoint of an Exact, as a raw mpf (no Fractions: exponents here reach 2**40)."""
    return e.enclose(BITS)[0]


def assert_close(a, b, what: str):
    """|a - b| <= 2**SLACK_EXP (|a| + |b| + 1), for raw mpfs a and b, computed exactly."""
    gap = _abs(_sub(a, b, 64, "u"))  # rounded away from zero: an upper bound of the exact gap
    allowed = _shift(_add(_add(_abs(a), _abs(b), 64, "d"), libmp.fone, 64, "d"), SLACK_EXP)  # a lower bound
    assert _cmp(gap, allowed) <= 0, (
        f"{what}: {libmp.to_str(a, 20)} vs {libmp.to_str(b, 20)} (gap {libmp.to_str(gap, 3)})")


def as_number(raw):
    """An mpmath number holding the exact binary value ``raw`` (the oracles take it as exact input)."""
    return mpmath.mp.make_mpf(raw)


logit = st.floats(min_value=-(2.0**40), max_value=2.0**40, allow_nan=False, width=64) | st.sampled_from(
    [0.0, -0.0, 50.0, -50.0, 88.72, -103.3, 709.78, -745.1, 1e-300, 5e-324])


@st.composite
def logits(draw, max_c=8, max_n=3):
    c = draw(st.integers(2, max_c), label="C")
    n = draw(st.integers(1, max_n), label="N")
    fmt = draw(st.sampled_from(["float64", "float32", "float16", "bfloat16"]), label="format")
    rows = [[round_to_format(draw(logit), fmt) for _ in range(c)] for _ in range(n)]
    rows = [[v if abs(v) != float("inf") else 0.0 for v in r] for r in rows]
    return rows


@st.composite
def class_case(draw):
    x = draw(logits(), label="logits")
    n, c = len(x), len(x[0])
    t = [draw(st.integers(0, c - 1), label="target") for _ in range(n)]
    kw = {}
    if draw(st.booleans(), label="weighted"):
        kw["weight"] = [draw(st.sampled_from([0.5, 1.0, 2.0, 1e-30, 1e30, 3.0])) for _ in range(c)]
    if draw(st.booleans(), label="ignore"):
        kw["ignore_index"] = t[0]
    kw["reduction"] = draw(st.sampled_from(["none", "mean", "sum"]), label="reduction")
    return x, t, kw


@given(class_case())
def test_cross_entropy_is_nll_of_log_softmax(case):
    x, t, kw = case
    note(f"x={x!r} t={t!r} kw={kw!r}")
    ce = oracles.cross_entropy(x, t, **kw)
    ls = [[as_number(enc(e)) for e in row] for row in oracles.log_softmax(x, dim=1)]
    nll = oracles.nll_loss(ls, t, **kw)
    if kw["reduction"] == "none":
        pairs = list(zip(ce, nll))
    else:
        pairs = [(ce, nll)]
    for a, b in pairs:
        if a.is_special or b.is_special:  # all targets ignored under "mean": 0/0 on both sides
            assert a.is_nan and b.is_nan
            continue
        assert_close(enc(a), enc(b), "cross_entropy vs nll_loss(log_softmax)")


@st.composite
def prob_case(draw):
    x = draw(logits(), label="logits")
    c = len(x[0])
    p = []
    for _ in x:
        raw = [draw(st.sampled_from([0, 1, 2, 3, 7, 100])) for _ in range(c)]
        if not any(raw):
            raw[0] = 1
        p.append([r / 256 if sum(raw) <= 256 else r / 1024 for r in raw])  # exact dyadic probabilities
    return x, p


@given(prob_case())
def test_kl_is_cross_entropy_minus_entropy(case):
    """KL(P || Q) = H(P, Q) - H(P), with Q = softmax(x), batchmean on both sides."""
    x, p = case
    note(f"x={x!r} p={p!r}")
    n = len(x)
    ls = [[as_number(enc(e)) for e in row] for row in oracles.log_softmax(x, dim=1)]
    kl = enc(oracles.kl_div(ls, p, reduction="batchmean"))
    ce = enc(oracles.cross_entropy(x, p))
    ent = libmp.fzero
    for row in oracles.xlogy(p, p):
        for e in row:
            ent = _sub(ent, enc(e), 400, "n")
    rhs = _sub(ce, libmp.mpf_div(ent, libmp.from_int(n), 400, "n"), 400, "n")
    assert_close(kl, rhs, "kl_div vs cross_entropy - entropy")


@given(logits(max_c=6, max_n=1))
def test_kl_equals_cross_entropy_for_one_hot(x):
    c = len(x[0])
    p = [[1.0 if j == 1 else 0.0 for j in range(c)]]
    ls = [[as_number(enc(e)) for e in row] for row in oracles.log_softmax(x, dim=1)]
    assert_close(enc(oracles.kl_div(ls, p, reduction="batchmean")), enc(oracles.cross_entropy(x, p)),
                 "kl_div vs cross_entropy for one-hot P")


@given(logit)
def test_softplus_odd_part_is_identity(v):
    a, b = oracles.softplus(v), oracles.softplus(-v)
    assert_close(_sub(enc(a), enc(b), 400, "n"), to_mpf(v), "softplus(x) - softplus(-x) vs x")


@given(logit)
def test_sigmoids_of_opposites_sum_to_one(v):
    assert_close(_add(enc(oracles.sigmoid(v)), enc(oracles.sigmoid(-v)), 400, "n"), libmp.fone,
                 "sigmoid(x) + sigmoid(-x)")


@given(logits(max_c=6, max_n=1), st.sampled_from([1.0, -3.5, 1024.0, 2.0**30, -(2.0**-20)]))
def test_log_softmax_is_shift_invariant(x, c):
    shifted = [[float(Fraction(v) + Fraction(c)) for v in row] for row in x]
    # only rows where the shift is exact in binary64 are a fair test of the identity
    exact = all(Fraction(s) == Fraction(v) + Fraction(c) for s, v in zip(shifted[0], x[0]))
    if not exact:
        return
    for a, b in zip(oracles.log_softmax(x, dim=1)[0], oracles.log_softmax(shifted, dim=1)[0]):
        assert_close(enc(a), enc(b), "log_softmax(x + c) vs log_softmax(x)")


@pytest.mark.parametrize("C", [2, 3, 10, 1000])
@pytest.mark.parametrize("a", [0.0, 0.25, -1e300, 1e300])
def test_uniform_logits_give_log_c(C, a):
    """Closed form: cross-entropy of equal logits is log C, whatever the target and the common value."""
    want = libmp.mpf_log(libmp.from_int(C), 400, "n")
    got = enc(oracles.cross_entropy([[a] * C], [C // 2]))
    assert_close(got, want, f"cross_entropy(uniform {C}) vs log {C}")
