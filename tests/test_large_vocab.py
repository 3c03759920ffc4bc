"""torch's cross_entropy and log_softmax at LLM vocabulary sizes, against the exact oracle.

The default profile checks C = 32,000 (a Llama-2-sized vocabulary); LOSSPROOF_PROFILE=thorough adds
C = 128,256 (Llama 3), both in bfloat16 and float32, on seeded realistic logits (3 * N(0, 1): the spread of a
trained model's logits) and extreme rows: a confident right and a confident wrong prediction (a logit 30 above
the rest), most of the vocabulary masked with -inf, a large common offset, and all logits equal.

The exact values come from the oracle's certified fast path (oracles/fast.py; the mpmath path decides any
rounding it cannot). The verdict is NUMERICS.md's pass line, "stable": |y - z| <= K B with B the stability
bound of oracles/bounds.py for the loss at this C (element bound per row and per log-probability, reduction
bound for the mean). The error is bounded from above by |y - RN(z)| + ulp(RN(z)) / 2, so a pass is a proof.
lossproof.measure is not used here: it encloses every element through its mpmath expression, which at these
sizes is what the fast path exists to avoid; gradients are not checked here for the same reason.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import oracles
from lossproof import profiles
from oracles import bounds, fast
from oracles.formats import get_format, round_to_format, ulp

torch = pytest.importorskip("torch")

FORMATS = ("bfloat16", "float32")
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def vocab_sizes():
    return profiles.current().vocab_sizes


def logits(C: int, fmt: str, seed: int = 0):
    """(rows, targets): realistic rows and extreme ones, every value exact in ``fmt``."""
    rng = np.random.default_rng(seed)
    rows, targets = [], []
    x = rng.standard_normal((2, C)) * 3.0  # two realistic rows
    rows += list(x)
    targets += [int(rng.integers(C)), int(np.argmax(x[1]))]
    confident = rng.standard_normal(C) * 3.0
    j = int(rng.integers(C))
    confident[j] = confident.max() + 30.0
    rows += [confident, confident]
    targets += [j, (j + 1) % C]  # confident right, confident wrong
    masked = np.full(C, -np.inf)
    keep = rng.choice(C, size=64, replace=False)
    masked[keep] = rng.standard_normal(64) * 3.0
    rows.append(masked)
    targets.append(int(keep[0]))
    rows.append(rng.standard_normal(C) * 3.0 + 1e4)  # an offset the max-shift must remove
    targets.append(int(rng.integers(C)))
    rows.append(np.zeros(C))  # all equal: the loss is exactly log C
    targets.append(0)
    x = fast.round_array(np.array(rows), fmt)
    return x, targets


def error_upper(y: float, z_rounded: float, fmt) -> Fraction:
    """An upper bound of |y - z| from the certified RN(z): |y - RN(z)| + ulp(RN(z)) / 2."""
    return abs(Fraction(y) - Fraction(z_rounded)) + Fraction(ulp(z_rounded, fmt)) / 2


def z_upper(z_rounded: float, fmt) -> Fraction:
    """|z| <= |RN(z)| + ulp(RN(z)) / 2."""
    return abs(Fraction(z_rounded)) + Fraction(ulp(z_rounded, fmt)) / 2


def check_stable(what, y, z_rounded, bound, fmt, worst):
    """Assert |y - z| <= K B, B = bound(upper bound of |z|); keep the worst ULP error for the report. An infinite
    exact value (a masked class's log-probability) must be met exactly."""
    if math.isinf(z_rounded):
        assert y == z_rounded, f"{what}: got {y!r}, exact {z_rounded!r}"
        return
    assert math.isfinite(y), f"{what}: got {y!r} where the exact value {z_rounded!r} is finite"
    err = error_upper(y, z_rounded, fmt)
    allowed = bounds.K * bound(z_upper(z_rounded, fmt))
    ulps = float(err / Fraction(ulp(z_rounded, fmt)))
    worst[0] = max(worst[0], ulps)
    assert err <= allowed, (f"{what}: torch {y!r}, exact (rounded) {z_rounded!r}: error up to {float(err):.3g} "
                            f"({ulps:.3g} ULP) > K B = {float(allowed):.3g} (unstable)")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("C", vocab_sizes())
def test_torch_cross_entropy_is_stable_at_llm_vocabulary_sizes(C, fmt):
    f = get_format(fmt)
    x, t = logits(C, fmt)
    xt = torch.tensor(x, dtype=DTYPES[fmt])
    tt = torch.tensor(t)
    y_none = torch.nn.functional.cross_entropy(xt, tt, reduction="none").float().tolist()
    y_mean = torch.nn.functional.cross_entropy(xt, tt).float().item()
    per_row = oracles.cross_entropy(x, t, reduction="none")
    mean = oracles.cross_entropy(x, t)
    S = bounds.steps("cross_entropy", C)
    worst = [0.0]
    zs = [e.to(f) for e in per_row]
    for n, (y, z) in enumerate(zip(y_none, zs)):
        check_stable(f"cross_entropy row {n}", y, z, lambda za: bounds.element_bound(f, S, za), f, worst)
    vsum = sum((z_upper(z, f) for z in zs), Fraction(0))
    zm = mean.to(f)
    n = len(t)  # the mean of n unweighted rows: weights sum n, denominator n
    check_stable("cross_entropy mean", y_mean, zm,
                 lambda za: bounds.reduction_bound(f, S, za, vsum, Fraction(n), n, Fraction(n)), f, worst)
    # the all-equal row's exact loss is log C: the oracle must give RN(log C) (log C at 200 bits is 2**-170 or
    # more from any float32 midpoint, so rounding it is RN(log C)), an independent check of the oracle itself
    with mpmath.workprec(200):
        assert zs[-1] == round_to_format(mpmath.log(C), f)
    print(f"cross_entropy C={C} {fmt}: {len(t)} rows stable, worst {worst[0]:.3g} ULP")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("C", vocab_sizes())
def test_torch_log_softmax_is_stable_at_llm_vocabulary_sizes(C, fmt):
    f = get_format(fmt)
    x, _ = logits(C, fmt, seed=1)
    x = x[[0, 2, 4, 5]]  # realistic, confident, masked, offset
    y = torch.nn.functional.log_softmax(torch.tensor(x, dtype=DTYPES[fmt]), dim=1).float().numpy()
    exact = oracles.log_softmax(x, dim=1)
    S = bounds.steps("log_softmax", C)
    worst = [0.0]
    with fast.counting() as c:
        for n, row in enumerate(exact):
            for j, e in enumerate(row):
                z = e.to(f)
                check_stable(f"log_softmax[{n}][{j}]", float(y[n, j]), z,
                             lambda za: bounds.element_bound(f, S, za), f, worst)
    assert c["decided"] + c["fallback"] > 0
    print(f"log_softmax C={C} {fmt}: {x.size} values stable, worst {worst[0]:.3g} ULP, "
          f"{c['fallback']} roundings left to mpmath")


def test_the_check_catches_an_unstable_cross_entropy():
    """The verdict can fail: a cross_entropy without the max-shift, accumulated one term at a time in bfloat16
    (two mistakes of NUMERICS.md's list), overflows on the offset row and drifts on the realistic ones."""
    C, fmt = 32_000, "bfloat16"
    f = get_format(fmt)
    x, t = logits(C, fmt)
    S = bounds.steps("cross_entropy", C)
    naive = []
    for row, tgt in zip(torch.tensor(x, dtype=torch.bfloat16), t):
        acc = torch.zeros((), dtype=torch.bfloat16)
        for chunk in torch.exp(row).split(1024):  # blockwise, still bfloat16 accumulation
            acc = acc + chunk.sum()
        naive.append(float(torch.log(acc) - row[tgt]))
    exact = [e.to(f) for e in oracles.cross_entropy(x, t, reduction="none")]
    failures = 0
    for n, (y, z) in enumerate(zip(naive, exact)):
        try:
            check_stable(f"naive row {n}", y, z, lambda za: bounds.element_bound(f, S, za), f, [0.0])
        except AssertionError:
            failures += 1
    assert failures >= 1  # at least the offset row, whose exp overflows to inf
