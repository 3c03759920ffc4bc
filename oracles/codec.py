"""One codec for the nested numbers every part of lossproof passes around: flattening (row-major), exact float
spellings (``float.hex``; "inf", "-inf", "nan") and their inverse, over nested lists.

Exactness is the point: ``hexf`` and ``unhex`` round-trip every binary64 value (-0.0 and NaN included), so an
input written to a results file, a corpus entry or a reproducer is the input that was measured.
"""

from __future__ import annotations

import math
from collections.abc import Container
from typing import Any, SupportsFloat

__all__ = ["flat", "count", "hexf", "unhex", "hex_tree", "unhex_tree", "float_tree"]

NONFINITE = ("inf", "-inf", "nan")


def flat(v: object) -> list:
    """Nested lists (or tuples) in row-major order; anything else is one leaf."""
    if not isinstance(v, (list, tuple)):
        return [v]
    out: list = []
    for x in v:  # leaves appended as they come: no one-element list per leaf (3x faster on a row of floats)
        if isinstance(x, (list, tuple)):
            out.extend(flat(x))
        else:
            out.append(x)
    return out


def count(v: object) -> int:
    """How many leaves ``flat(v)`` has, without building it."""
    return sum(count(x) for x in v) if isinstance(v, (list, tuple)) else 1


def hexf(x: SupportsFloat) -> str:
    """The exact spelling of a float: ``float.hex``, or "inf", "-inf", "nan"."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x.hex()


def unhex(s: object) -> float:
    """The float of ``hexf`` (a hex string, "inf", "-inf", "nan") or of a decimal literal; numbers as they are.
    ValueError for anything else."""
    if isinstance(s, str):
        if s in NONFINITE:
            return float(s)
        try:
            return float.fromhex(s)
        except ValueError:
            return float(s)
    if isinstance(s, bool) or not isinstance(s, (int, float)):
        raise ValueError(f"not a number: {s!r}")
    return float(s)


def hex_tree(v: Any) -> Any:
    """Nested lists with every float spelled by ``hexf``; ints, bools, strings and None kept as they are."""
    if isinstance(v, (list, tuple)):
        return [hex_tree(x) for x in v]
    if isinstance(v, dict):
        return {k: hex_tree(x) for k, x in v.items()}
    if isinstance(v, float):
        return hexf(v)
    return v


def unhex_tree(v: Any, keep: Container[str] = ()) -> Any:
    """The inverse of ``hex_tree``: strings that spell floats become floats, except the words in ``keep`` (such
    as reduction names); everything else is kept."""
    if isinstance(v, (list, tuple)):
        return [unhex_tree(x, keep) for x in v]
    if isinstance(v, dict):
        return {k: unhex_tree(x, keep) for k, x in v.items()}
    if isinstance(v, str) and v not in keep:
        try:
            return unhex(v)
        except ValueError:
            return v
    return v


def float_tree(v: Any) -> Any:
    """Nested lists as JSON-ready values: finite floats as numbers (Python's repr is exact), non-finite ones as
    the strings "inf", "-inf", "nan" (JSON has no spelling for them)."""
    if isinstance(v, (list, tuple)):
        return [float_tree(x) for x in v]
    if isinstance(v, dict):
        return {k: float_tree(x) for k, x in v.items()}
    if isinstance(v, float) and not math.isfinite(v):
        return hexf(v)
    return v
