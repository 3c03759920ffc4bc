"""The verdict ladder of NUMERICS.md, declared once: every measurement gets the highest rung it reaches, and every
rung includes the ones below (monotone: accurate requires stable).

    broken < unstable < stable < accurate < correctly_rounded

The pass line is "stable" for every subject; "accurate" is reported for all and required of our own NumPy losses.
This module is pure Python (the reports and the gate import it).
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["VERDICTS", "RANK", "PASS_LINE", "FAILING", "worst", "worse", "passes", "at_least"]

#: worst first
VERDICTS = ("broken", "unstable", "stable", "accurate", "correctly_rounded")
RANK = {v: i for i, v in enumerate(VERDICTS)}  # 0 = the worst
PASS_LINE = "stable"
FAILING = tuple(v for v in VERDICTS if RANK[v] < RANK[PASS_LINE])  # below the pass line


def worst(verdicts: Iterable[str]) -> str:
    """The lowest rung of ``verdicts`` ("correctly_rounded" for none)."""
    vs = list(verdicts)
    return min(vs, key=RANK.__getitem__) if vs else "correctly_rounded"


def worse(a: str | None, b: str | None) -> str | None:
    """The worse of two verdicts; None stands for "no verdict yet"."""
    if a is None:
        return b
    if b is None:
        return a
    return a if RANK[a] <= RANK[b] else b


def at_least(verdict: str, rung: str) -> bool:
    """Whether ``verdict`` reaches ``rung``."""
    return RANK[verdict] >= RANK[rung]


def passes(verdict: str) -> bool:
    """Whether ``verdict`` reaches the pass line (stable)."""
    return RANK[verdict] >= RANK[PASS_LINE]
