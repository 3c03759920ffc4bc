"""The certified fast paths agree with the mpmath path where binary64 itself underflows: weights, targets, label
smoothing and probabilities near and below the smallest subnormal, logits that put softmax entries below 2**-1075.

Two wrong certified roundings were found here (issue 17, by the battery at a smaller search budget, then by this
differential search), both now witnesses below:

- cross_entropy with probability targets (``oracles.fast`` step 12): a coefficient w_c t_c that underflows to 0 in
  binary64 was taken for an exact 0, so the call was "exactly 0" where it is 1.79 * 2**-1074 (w = 2**-1074,
  t = 1/6, equal logits);
- its gradient (``oracles.fast_grad`` E7): an entry below 2**-1075 was charged ``2.0**-1075``, which is 0.0 in
  binary64, so g_c = alpha s_c - a_c lost alpha s_c (alpha = 1e10, s_c = e**-746): a wrong float64 rounding.

Every value and every gradient component, rounded to float64 and float32, must equal the mpmath path's
(``oracles.fast.disabled``) bit for bit, sign of zero included, on the witnesses and on ``CASES`` drawn calls of
cross_entropy (class indices, probability targets, label smoothing, weights), nll_loss, binary cross-entropy with
and without logits (weight, pos_weight), kl_div (both target kinds, every reduction), xlogy, softplus (beta),
logsigmoid and sigmoid. The generator is a local ``random.Random`` per case number: the same calls every run.
"""

from __future__ import annotations

import math
import random

import pytest

import oracles
from lossproof import profiles
from lossproof.measure import exact_gradient
from oracles import fast
from oracles.codec import flat

pytestmark = pytest.mark.skipif(not fast.available(), reason="NumPy missing or binary64 not round-to-nearest here")

T = 2.0**-1074
SMALL = [0.0, T, 3 * T, 2.0**-1060, 1e-310, 2.0**-1022, 1e-300, 2.0**-149, 1e-45, 1e-30]
PLAIN = [0.5, 1 / 6, 1.0, 0.25, 2.0, 1e10]
LOGITS = [0.0, T, -T, 1.0, -1.0, 50.0, -50.0, 745.0, -745.0, 3e-300, 0.1, -0.1, 17.0, 1e5]
#: drawn calls per test run: the meta profile's examples times 30 (ci: 3,000, about 10 s on one core)
CASES = profiles.current().meta_examples * 30

WITNESSES = [
    ("cross_entropy", {"input": [[0.0] * 6] * 2, "target": [[0.16666666666666666] * 6] * 2, "weight": [T] * 6,
                       "reduction": "none", "label_smoothing": 0.0}),
    ("cross_entropy", {"input": [[1.0, -745.0, 745.0, -1.0, -T]], "target": [2], "reduction": "none",
                       "weight": [8.095e-320, 1e-300, 1e10, 0.16666666666666666, 8.095e-320],
                       "label_smoothing": 1e-300}),
]


def _prob(rng, C):
    k = rng.random()
    if k < 0.3:
        return [rng.choice(SMALL + [0.5]) for _ in range(C)]
    if k < 0.6:
        t = [0.0] * C
        t[rng.randrange(C)] = 1.0
        return t
    return [1.0 / C] * C


def _call(rng):
    name = rng.choice(["cross_entropy", "cross_entropy", "nll_loss", "binary_cross_entropy",
                       "binary_cross_entropy_with_logits", "kl_div", "xlogy", "softplus", "logsigmoid", "sigmoid"])
    R, C = rng.randint(1, 3), rng.randint(2, 5)
    red = rng.choice(["none", "sum", "mean"])
    weights = [rng.choice(SMALL + PLAIN) for _ in range(C)]
    if name in ("cross_entropy", "nll_loss"):
        x = [[rng.choice(LOGITS) for _ in range(C)] for _ in range(R)]
        kw = {"input": x, "reduction": red}
        if name == "cross_entropy" and rng.random() < 0.5:
            kw["target"] = [_prob(rng, C) for _ in range(R)]
        else:
            kw["target"] = [rng.randrange(C) for _ in range(R)]
        if rng.random() < 0.7:
            kw["weight"] = weights
        if name == "cross_entropy" and rng.random() < 0.5:
            kw["label_smoothing"] = rng.choice([T, 1e-300, 0.1, 1.0, 2.0**-1060])
        if name == "nll_loss":
            kw["input"] = [[-abs(v) for v in r] for r in x]
    elif name == "binary_cross_entropy":
        kw = {"input": [rng.choice(SMALL + [0.5, 1.0, 1 - 2**-53]) for _ in range(C)],
              "target": [rng.choice(SMALL + [0.5, 1.0]) for _ in range(C)], "reduction": red}
        if rng.random() < 0.7:
            kw["weight"] = weights
    elif name == "binary_cross_entropy_with_logits":
        kw = {"input": [rng.choice(LOGITS) for _ in range(C)],
              "target": [rng.choice(SMALL + [0.5, 1.0]) for _ in range(C)], "reduction": red}
        if rng.random() < 0.6:
            kw["weight"] = weights
        if rng.random() < 0.5:
            kw["pos_weight"] = [rng.choice(SMALL + PLAIN) for _ in range(C)]
    elif name == "kl_div":
        lt = rng.random() < 0.4
        kw = {"input": [-abs(rng.choice(LOGITS)) for _ in range(C)], "log_target": lt,
              "reduction": rng.choice(["none", "sum", "mean", "batchmean"]),
              "target": ([-abs(rng.choice(LOGITS)) for _ in range(C)] if lt
                         else [rng.choice(SMALL + PLAIN) for _ in range(C)])}
    elif name == "xlogy":
        kw = {"input": [rng.choice(SMALL + PLAIN + [-1.0]) for _ in range(C)],
              "other": [rng.choice(SMALL + PLAIN) for _ in range(C)]}
    else:
        kw = {"input": [rng.choice(LOGITS) for _ in range(C)]}
        if name == "softplus" and rng.random() < 0.5:
            kw["beta"] = rng.choice([0.5, 2.0, 1e-300])
    return name, kw


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def _roundings(name, kw):
    """(values in float64 and float32, the gradient of the outputs' sum in float64), or None where the mpmath
    path itself refuses the call (then the fast path is not asked either)."""
    result = oracles.REGISTRY[name](**kw)
    values = [e.to(f) for f in ("float64", "float32") for e in flat(result)]
    n = len(flat(kw["input"])) if isinstance(kw["input"], list) else 1
    grads = [e.to("float64") for e in exact_gradient(name, kw, result, n)]
    return values, grads


def _disagreement(name, kw):
    try:
        with fast.disabled():
            want = _roundings(name, kw)
    except (ValueError, ZeroDivisionError, oracles.OraclePrecisionError):
        return None
    got = _roundings(name, kw)
    for what, w, g in (("value", want[0], got[0]), ("gradient", want[1], got[1])):
        bad = [i for i, (a, b) in enumerate(zip(w, g)) if not _same(a, b)]
        if bad or len(w) != len(g):
            return f"{name}({kw}): {what} {bad[:3]}: mpmath {[w[i] for i in bad[:3]]}, fast {[g[i] for i in bad[:3]]}"
    return None


@pytest.mark.parametrize("name, kw", WITNESSES, ids=["ce-underflowed-coefficient", "ce-grad-entry-below-2^-1075"])
def test_witness(name, kw):
    assert _disagreement(name, kw) is None


def test_fast_paths_agree_with_mpmath_under_binary64_underflow():
    compared, bad = 0, []
    for k in range(CASES):
        name, kw = _call(random.Random(k))
        try:
            why = _disagreement(name, kw)
        except (ValueError, ZeroDivisionError):
            continue
        compared += 1
        if why is not None:
            bad.append(why)
    print(f"{compared} calls compared, {len(bad)} disagreements")
    assert compared >= CASES // 2, f"only {compared} of {CASES} drawn calls could be compared"
    assert not bad, "\n".join(bad[:5])
