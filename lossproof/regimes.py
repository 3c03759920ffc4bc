"""The regime of an input, for ordering findings (docs/NUMERICS.md, "Regimes"): the most ordinary first, since that
is the one a user should fix first.

- typical: finite logits within +-50, probabilities and weights between 1e-30 and 1 (or exactly 0 or 1), class
  counts to 32k;
- format edge: within a factor 16 of the format's largest finite value, subnormals, infinities (-inf masks), NaN;
- extreme: everything between (beyond +-50 up to the exp thresholds and a few times past them, tiny probabilities
  and weights, huge offsets).
"""

from __future__ import annotations

import math

from oracles.codec import flat
from oracles.formats import get_format

__all__ = ["REGIMES", "regime_of"]

REGIMES = ("typical", "extreme", "format edge")

#: the keyword arguments that hold probabilities or weights rather than logits
_PROBABILITIES = ("target", "weight", "pos_weight")
_MAX_TYPICAL_CLASSES = 32_768


def _numbers(v: object) -> list[float]:
    if v is None or isinstance(v, (bool, str)):
        return []
    if isinstance(v, (int, float)):
        return [float(v)]
    return [float(x) for x in flat(v) if isinstance(x, (int, float)) and not isinstance(x, bool)]


def regime_of(loss: str, kwargs: dict, fmt: str) -> str:
    """"typical", "extreme" or "format edge" for one call (the worst of its inputs' regimes)."""
    f = get_format(fmt)
    edge = f.max_finite / 16
    worst = 0
    for key, value in kwargs.items():
        if key.startswith("_") or key in ("ignore_index", "dim", "reduction", "log_target", "keepdim"):
            continue
        values = flat(value) if isinstance(value, list) else [value]
        if key == "target" and all(isinstance(x, int) and not isinstance(x, bool) for x in values):  # indices
            continue
        for x in _numbers(value):
            if math.isnan(x) or math.isinf(x) or abs(x) >= edge or (x != 0 and abs(x) < f.min_normal):
                return "format edge"
            if key in _PROBABILITIES or (key == "input" and loss == "binary_cross_entropy"):
                typical = x == 0 or 1e-30 <= abs(x) <= 1
            else:
                typical = abs(x) <= 50
            worst = max(worst, 0 if typical else 1)
    rows = kwargs.get("input")
    if isinstance(rows, list) and rows and isinstance(rows[0], list) and len(rows[0]) > _MAX_TYPICAL_CLASSES:
        worst = max(worst, 1)
    return REGIMES[worst]
