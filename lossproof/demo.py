"""``lossproof demo``: the oracle on the seed notebook's cases, beside what torch computes for them now.

The seed notebook printed six float32 results from torch; the demo recomputes each with the installed torch,
gives the exact value and its correctly rounded float32, and how many ULP torch is away. It ends with two
documented torch deviations (softplus's threshold shortcut, BCELoss's -100 clamp) measured against the oracle.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import oracles
from oracles import formats

SEED_CASES = [
    # (label, oracle name, kwargs, value the notebook printed)
    ("BCELoss, incorrect outputs", "binary_cross_entropy",
     {"input": [0.3, 0.7], "target": [1.0, 0.0]}, 1.2039728164672852),
    ("BCELoss, correct outputs", "binary_cross_entropy",
     {"input": [0.9, 0.1], "target": [1.0, 0.0]}, 0.10536053031682968),
    ("BCEWithLogitsLoss, incorrect", "binary_cross_entropy_with_logits",
     {"input": [-50.0, 50.0], "target": [1.0, 0.0]}, 50.0),
    ("BCEWithLogitsLoss, correct", "binary_cross_entropy_with_logits",
     {"input": [50.0, -50.0], "target": [1.0, 0.0]}, 9.643749466768692e-23),
    ("CrossEntropyLoss, incorrect", "cross_entropy",
     {"input": [[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]], "target": [2, 3]}, 1.5649813413619995),
    ("CrossEntropyLoss, correct", "cross_entropy",
     {"input": [[0.0, 0.0, 10.0, 0.0], [0.0, 0.0, 0.0, 10.0]], "target": [2, 3]}, 0.00013624693383462727),
]

DEVIATIONS = [
    ("softplus(25.0), float64: torch's threshold=20 shortcut returns x", "softplus", "torch:softplus",
     {"input": 25.0}, "float64"),
    ("BCELoss(p=1e-50, y=1), float64: torch clamps log(p) at -100", "binary_cross_entropy",
     "torch:binary_cross_entropy", {"input": [1e-50], "target": [1.0]}, "float64"),
]


def round_inputs(kwargs, fmt):
    """The exact values a framework holds after building float tensors in ``fmt`` (class indices kept)."""
    out = {}
    for k, v in kwargs.items():
        if k == "target" and isinstance(v, list) and all(isinstance(t, int) for t in v):
            out[k] = v
        else:
            out[k] = _map(v, lambda x: formats.round_to_format(float(x), fmt))
    return out


def _map(v, fn):
    return [_map(x, fn) for x in v] if isinstance(v, list) else fn(v)


def _torch_value(name, kwargs, fmt):
    dtype = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
             "bfloat16": torch.bfloat16}[fmt]
    t = {k: (torch.tensor(v) if k == "target" and name == "cross_entropy" else torch.tensor(v, dtype=dtype))
         for k, v in kwargs.items()}
    if name == "softplus":
        return F.softplus(t["input"]).item()
    return getattr(F, name)(**t).item()


def run() -> int:
    print("lossproof oracle demo: exact values, correctly rounded, against torch "
          "(ULP error = |y - z| / ulp(z), NUMERICS.md)\n")
    print("The seed notebook's six results (torch, float32):")
    for label, name, kwargs, printed in SEED_CASES:
        exact_in = round_inputs(kwargs, "float32")
        z = oracles.REGISTRY[name](**exact_in)
        zr = z.to("float32")
        y = _torch_value(name, kwargs, "float32")
        err = formats.ulp_error(printed, z.fraction(), "float32")
        same = "reproduced bit for bit" if y == printed else f"torch now gives {y!r}"
        print(f"  {label}")
        print(f"    exact        {z}")
        print(f"    RN float32   {zr!r} ({float.hex(zr)})")
        print(f"    notebook     {printed!r}  {formats.format_ulps(err)} ULP from exact; {same}")
    print("\nDocumented torch deviations, measured:")
    for label, exact_name, variant, kwargs, fmt in DEVIATIONS:
        z = oracles.REGISTRY[exact_name](**kwargs)
        zs = z if not isinstance(z, list) else z[0]
        documented = oracles.REGISTRY[variant](**kwargs)
        y = _torch_value(exact_name, kwargs, fmt)
        err = formats.ulp_error(y, zs.fraction(), fmt)
        print(f"  {label}")
        print(f"    exact {zs}, torch {y!r} ({formats.format_ulps(err)} ULP), "
              f"torch's documented behaviour {documented.to(fmt)!r}")
    return 0
