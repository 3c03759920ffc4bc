"""Generate the regression corpus (``python -m lossproof.corpus.build`` rewrites lossproof/corpus/v1/*.json).

Deterministic: every case comes from ``random.Random("<loss>-<format>-<regime>")`` (string seeds are hashed
with SHA-512 by Python's random, the same on every platform and version) and from fixed grids, and every value
is rounded to the format with the oracle's own rounding. The grids mix linear and logarithmic spacing (as SciPy's
mpmath harness does) across the regimes of NUMERICS.md: moderate values, +-50, far beyond up to the largest
finite value, the exp overflow and underflow thresholds of the format, subnormals, dominant logits right and
wrong, near-ties, huge spreads, large common offsets, -inf masks, probabilities exactly 0 and 1 and one ULP away,
weights from tiny to huge. Class counts reach 257 and 2,049 (past the integers bfloat16 and float16 hold).
Every subject x loss x parameter family x format also gets cases outside every documented deviation's condition
(BCE at probabilities away from 0 and 1, moderate logits, softplus below its threshold), so that every cell has
numbers that gate (tests/meta/test_corpus_build.py checks it; the gate refuses a cell without).
"""

from __future__ import annotations

import json
import math
import os
import random

from lossproof.catalogue import FORMATS, NAMES
from oracles.formats import from_ordinal, get_format, ordinal, round_to_format
from reports import atomic

from . import GENERATED, VERSION, case_id, encode_kwargs

ELEMENTWISE = ("sigmoid", "logsigmoid", "softplus")
ROWS = ("softmax", "log_softmax", "logsumexp")


def _r(x, fmt):
    return round_to_format(x, fmt) if math.isfinite(x) else x


def _limits(fmt):
    f = get_format(fmt)
    return {"max": f.max_finite, "ovf": math.log(f.max_finite), "unf": math.log(f.min_subnormal),
            "smin": f.min_subnormal, "nmin": f.min_normal, "u": float(f.u)}


def _ulps_around(x, fmt, k=2):
    """x and its neighbours k ULPs either side, in the format."""
    f = get_format(fmt)
    o = ordinal(_r(x, fmt), f)
    return [from_ordinal(o + d, f) for d in range(-k, k + 1)]


def magnitude_grid(fmt, n_lin=9, n_log=12):
    """Linear spacing over [-60, 60] (the +-50 regime) and logarithmic spacing from the smallest subnormal to the
    largest finite value, both signs; the exp thresholds and their neighbours."""
    L = _limits(fmt)
    lin = [-60 + 120 * i / (n_lin - 1) for i in range(n_lin)]
    lo, hi = math.log10(L["smin"]), math.log10(L["max"])
    logs = [min(10 ** min(lo + (hi - lo) * i / (n_log - 1), 308.25), L["max"]) for i in range(n_log)]
    vals = lin + logs + [-v for v in logs] + [L["max"], -L["max"]]
    vals += _ulps_around(L["ovf"], fmt, 1) + _ulps_around(-L["ovf"], fmt, 1) + _ulps_around(L["unf"], fmt, 1)
    return sorted({_r(v, fmt) for v in vals})


def _elementwise(loss, fmt):
    g = magnitude_grid(fmt)
    out = []
    for i in range(0, len(g), 16):
        chunk = g[i:i + 16]
        out.append((f"grid {chunk[0]:.3g} .. {chunk[-1]:.3g}", {"input": chunk}))
    rng = random.Random(f"{loss}-{fmt}-moderate")
    out.append(("moderate", {"input": [_r(rng.uniform(-9, 9), fmt) for _ in range(16)]}))
    if loss == "softplus":
        out.append(("beta-threshold", {"input": [_r(v, fmt) for v in (-30.0, 0.5, 19.0, 21.0, 25.0, 40.0)],
                                       "beta": 2.0, "threshold": 20.0}))
        # beta x at most the threshold: torch's softplus, not its linear branch (torch-softplus-threshold)
        out.append(("beta-below-threshold", {"input": [_r(v, fmt) for v in (-30.0, -1.5, 0.5, 3.0, 9.5)],
                                             "beta": 2.0}))
    return out


def _rows(fmt, tag):
    """Named class rows (lists of logits), all exact in the format."""
    L = _limits(fmt)
    rng = random.Random(f"rows-{fmt}-{tag}")
    big = L["max"]
    off = 1e8 if fmt in ("float64", "float32") else (1e4 if fmt == "float16" else 1e30)
    rows = {
        "moderate": [rng.uniform(-5, 5) for _ in range(10)],
        "seed-row": [0.0, 0.0, 10.0, 0.0],
        "fifty": [rng.choice([-50.0, 50.0]) + rng.uniform(-1, 1) for _ in range(8)],
        "dominant-right": [30.0] + [rng.uniform(-3, 3) for _ in range(7)],
        "dominant-wrong": [rng.uniform(-3, 3) for _ in range(7)] + [-30.0],
        "near-ties": [_ulps_around(1.0, fmt, 3)[i % 7] for i in range(7)],
        "huge-spread": [big, -big, 0.0, big / 2],
        "exp-overflow": [L["ovf"] * 1.01, L["ovf"] * 0.99, 0.0, -L["ovf"]],
        "exp-underflow": [L["unf"], L["unf"] * 0.99, 0.0, L["unf"] * 1.5],
        "large-offset": [off + d for d in (0.0, 1.0, 2.0, -1.0, 0.5)],
        "subnormal": [L["smin"], -L["smin"], L["nmin"], 0.0, -0.0],
        "masked": [-math.inf, 1.0, -math.inf, 2.0, 0.5],
        "all-but-one-masked": [-math.inf, -math.inf, 3.0, -math.inf],
        "beyond": [rng.choice([-1, 1]) * 10 ** rng.uniform(2, math.log10(big) - 1) for _ in range(6)],
        "classes-257": [rng.uniform(-2, 2) for _ in range(257)],
    }
    if tag == "large":
        rows["classes-2049"] = [rng.uniform(-2, 2) for _ in range(2049)]
    return {k: [_r(v, fmt) for v in r] for k, r in rows.items()}


def _softmax_family(loss, fmt):
    out = []
    for name, row in _rows(fmt, "rows").items():
        twin = [v if not math.isfinite(v) else _r(v / 2, fmt) for v in row]
        kw = {"input": [row, twin]}
        kw["dim" if loss != "logsumexp" else "dim"] = 1
        out.append((name, kw))
    return out


def _log_probs(row):
    """log_softmax of a row in float64, as nll_loss / kl_div inputs (exact floats; not exactly normalized, which
    the losses do not need)."""
    fin = [v for v in row if math.isfinite(v)]
    if not fin:
        return row
    m = max(fin)
    if not math.isfinite(m) or m - min(fin) > 1e300:
        return [v - m if math.isfinite(v) else v for v in row]
    s = sum(math.exp(v - m) for v in fin)
    return [v - m - math.log(s) if math.isfinite(v) else v for v in row]


def _class_losses(loss, fmt):
    L = _limits(fmt)
    out = []
    rows = _rows(fmt, "large" if loss == "cross_entropy" else "rows")
    for name, row in rows.items():
        C = len(row)
        finite = [i for i, v in enumerate(row) if math.isfinite(v)]
        hi = max(finite, key=lambda i: row[i])
        lo = min(finite, key=lambda i: row[i])
        x = row if loss == "cross_entropy" else [_r(v, fmt) if math.isfinite(v) else v for v in _log_probs(row)]
        inp = [x, x, x]
        tgt = [hi, lo, C - 1 if C - 1 in finite else hi]
        out.append((name, {"input": inp, "target": tgt, "reduction": "none"}))
        if name == "classes-2049":  # past float16's integers: the target's index must survive; one mean case
            out[-1] = (name, {"input": [x], "target": [C - 1]})
        if name in ("moderate", "dominant-wrong", "huge-spread", "exp-overflow", "classes-257"):
            out.append((name + "+mean", {"input": inp, "target": tgt}))
            w = [_r(v, fmt) for v in ([L["nmin"], 1.0, L["max"] / 4] * C)[:C]]
            out.append((name + "+weights", {"input": inp, "target": tgt, "weight": w, "reduction": "sum"}))
            out.append((name + "+ignore", {"input": inp, "target": [tgt[0], -100, tgt[2]]}))
            if loss == "cross_entropy":
                out.append((name + "+smoothing", {"input": inp, "target": tgt, "label_smoothing": 0.1}))
                p = [0.0] * C
                p[hi], p[lo] = 0.75, 0.25
                u = [_r(1.0 / C, fmt)] * C
                onehot = [0.0] * C
                onehot[hi] = 1.0
                out.append((name + "+prob-targets", {"input": inp, "target": [p, u, onehot]}))
    # rows whose log-sum-exp lies within 1 of 0 (every row above has |lse| > 1), summed: outside the condition of
    # optax's integer-label offset (|lse| > 1, subjects/deviations.py), so the jax sum cell has numbers that gate
    small = [_r(v, fmt) for v in (-1.5, -2.0, -1.75, -2.25)]  # lse = -1.5 + log(1 + e^-.5 + e^-.25 + e^-.75) = -0.45
    x = small if loss == "cross_entropy" else [_r(v, fmt) for v in _log_probs(small)]
    out.append(("small-lse+sum", {"input": [x, x], "target": [0, 3], "reduction": "sum"}))
    return out


#: probabilities well inside (0, 1) in every format (bfloat16 rounds 0.99 to 0.98828125)
INTERIOR_P = (1e-3, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


def bce_terms(fmt):
    L = _limits(fmt)
    one_minus = _ulps_around(1.0, fmt, 1)[0]
    ps = [0.0, L["smin"], L["nmin"], 1e-30, 1e-12, 1e-6, 1e-3, 0.1, 0.5, 0.9, 0.999, one_minus, 1.0]
    ps = sorted({_r(p, fmt) for p in ps if p == 0 or _r(p, fmt) > 0})
    out = []
    for y in (0.0, 1.0, 0.5, 0.1):
        out.append((f"p-grid-y{y}", {"input": ps, "target": [_r(y, fmt)] * len(ps), "reduction": "none"}))
    w = [_r(v, fmt) for v in ([L["nmin"], 1.0, L["max"] / 1e3] * len(ps))[:len(ps)]]
    out.append(("p-grid-weights", {"input": ps, "target": [_r(0.3, fmt)] * len(ps), "weight": w,
                                   "reduction": "sum"}))
    out.append(("p-grid-mean", {"input": ps, "target": [1.0 if i % 2 else 0.0 for i in range(len(ps))]}))
    # probabilities away from 0 and 1, in every reduction: outside torch's documented -100 clamp (p and 1 - p
    # above 1e-12) and its overflow (|p - y| / (p (1 - p)) <= 1 / (0.001 * 0.99) ~ 1e3, far below float16's
    # 65504), so every torch cell has numbers that gate (a p-grid above holds 0 and 1 and is reported only)
    mid = [_r(p, fmt) for p in INTERIOR_P]
    out.append(("p-interior-y-soft", {"input": mid, "target": [_r(y, fmt) for y in (0.0, 1.0, 0.3, 0.7) * 2],
                                      "reduction": "none"}))
    out.append(("p-interior-mean", {"input": mid, "target": [1.0 if i % 2 else 0.0 for i in range(len(mid))]}))
    out.append(("p-interior-weights", {"input": mid, "target": [_r(0.3, fmt)] * len(mid),
                                       "weight": [_r(v, fmt) for v in (0.5, 1.0, 2.0, 0.125) * 2],
                                       "reduction": "sum"}))
    return out


def _bcel(fmt):
    g = [v for v in magnitude_grid(fmt, n_lin=9, n_log=8)]
    out = []
    for y in (0.0, 1.0, 0.5, 0.01):
        out.append((f"x-grid-y{y}", {"input": g, "target": [_r(y, fmt)] * len(g), "reduction": "none"}))
    pw = [_r(v, fmt) for v in ([3.0, 1e-3, 1.0] * len(g))[:len(g)]]
    out.append(("x-grid-pos-weight", {"input": g, "target": [_r(0.7, fmt)] * len(g), "pos_weight": pw,
                                      "reduction": "none"}))
    out.append(("x-grid-mean", {"input": g, "target": [1.0 if i % 2 else 0.0 for i in range(len(g))]}))
    # moderate logits outside torch's documented behaviours: no term near the largest finite value (|x| <= 60),
    # and no negative logit with a target other than 0 (the (1 - y) x + max(-x, 0) cancellation); positive
    # logits take soft targets, so every torch cell has numbers that gate
    neg = [_r(-v, fmt) for v in (60.0, 17.5, 3.0, 0.5)]
    pos = [_r(v, fmt) for v in (0.25, 2.0, 11.0, 60.0)]
    out.append(("x-moderate-y0", {"input": neg + pos, "target": [0.0] * 8, "reduction": "none"}))
    out.append(("x-positive-soft", {"input": pos * 2, "target": [_r(y, fmt) for y in (1.0, 0.5, 0.01, 0.9) * 2],
                                    "reduction": "none"}))
    out.append(("x-moderate-mean", {"input": neg + pos, "target": [0.0] * 4 + [_r(y, fmt) for y in
                                                                             (1.0, 0.5, 0.01, 0.9)]}))
    return out


def _kl(fmt):
    out = []
    for name, row in _rows(fmt, "rows").items():
        if len(row) > 300:
            continue
        x = [_r(v, fmt) if math.isfinite(v) else v for v in _log_probs(row)]
        C = len(x)
        t = [_r(1.0 / C, fmt)] * C
        t0 = [0.0] * C
        t0[0] = 1.0
        out.append((name, {"input": [x, x], "target": [t, t0], "reduction": "none"}))
        if name in ("moderate", "dominant-wrong", "huge-spread"):
            out.append((name + "+batchmean", {"input": [x, x], "target": [t, t0], "reduction": "batchmean"}))
            lt = [_r(math.log(1.0 / C), fmt)] * C
            out.append((name + "+log-target", {"input": [x], "target": [lt], "reduction": "sum",
                                               "log_target": True}))
    return out


def _xlogy(fmt):
    g = magnitude_grid(fmt, n_lin=5, n_log=8)
    pos = [v for v in g if v > 0] + [0.0]
    rng = random.Random(f"xlogy-{fmt}")
    out = [("zero-pairs", {"input": [0.0, 0.0, 1.0, -1.0], "other": [0.0, 1.0, 0.0, 2.0]})]
    for i in range(0, len(pos), 6):
        chunk = pos[i:i + 6]
        out.append((f"grid y {min(chunk):.3g} .. {max(chunk):.3g}",
                    {"input": [_r(rng.uniform(-3, 3), fmt) for _ in chunk], "other": chunk}))
    return out


def generate(loss: str, fmt: str) -> list:
    if loss in ELEMENTWISE:
        made = _elementwise(loss, fmt)
    elif loss in ROWS:
        made = _softmax_family(loss, fmt)
    elif loss in ("cross_entropy", "nll_loss"):
        made = _class_losses(loss, fmt)
    elif loss == "binary_cross_entropy":
        made = bce_terms(fmt)
    elif loss == "binary_cross_entropy_with_logits":
        made = _bcel(fmt)
    elif loss == "kl_div":
        made = _kl(fmt)
    elif loss == "xlogy":
        made = _xlogy(fmt)
    else:
        raise ValueError(f"no corpus generator for {loss!r}")
    out, seen = [], set()
    for regime, kw in made:
        cid = case_id(loss, fmt, kw)
        if cid in seen:  # the same exact call from two regimes (values that round together in the format)
            continue
        seen.add(cid)
        out.append({"id": cid, "loss": loss, "format": fmt, "regime": regime, "kwargs": encode_kwargs(kw),
                    "provenance": f"corpus.build v{VERSION}: {regime}"})
    return out


def documents() -> dict:
    """{file name: document} of the whole generated corpus."""
    return {f"{loss}.json": {"version": VERSION, "loss": loss,
                             "cases": [c for fmt in FORMATS for c in generate(loss, fmt)]}
            for loss in NAMES}


def dumps(doc) -> str:
    return json.dumps(doc, indent=None, separators=(",", ":")) + "\n"


def main() -> int:
    os.makedirs(GENERATED, exist_ok=True)
    total = 0
    for name, doc in documents().items():
        atomic.write_text(os.path.join(GENERATED, name), dumps(doc))
        total += len(doc["cases"])
    print(f"wrote {total} cases to {GENERATED}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
