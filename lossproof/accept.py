"""Findings a user accepts, with a reason (docs/NUMERICS.md, "One standard for every subject"): accepted findings are
still measured and shown as accepted, never dropped, and an entry that matches nothing is reported as unused.

An accept file (``lossproof check --accept FILE``, ``pytest --lossproof-accept FILE``) is TOML with one table per
entry; ``[[tool.lossproof.accept]]`` in a project's pyproject.toml takes the same entries::

    [[accept]]
    behaviour = "torch-ce-sum-overflow"      # a documented behaviour (subjects/deviations.py), shared or not
    reason = "our batches never sum past 3e38"

    [[accept]]
    regime = "format edge"                   # typical, extreme or format edge (lossproof.regimes)
    format = "float16"
    reason = "we never feed float16 values near 65504"

Every entry needs a ``reason`` and at least one condition; all its conditions must hold for it to match:
``behaviour`` (a documented deviation whose condition holds on the input), ``regime``, ``edge`` (an edge problem's
label, lossproof.edges), ``property`` (agreement, no overflow), ``format``, ``loss``, ``parameter`` (a parameter
the call sets: ``"label_smoothing"``, or ``"reduction=sum"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from subjects import deviations

from . import catalogue
from .config import read_toml
from .regimes import REGIMES, regime_of

__all__ = ["AcceptError", "Entry", "parse", "load_file", "CONDITIONS", "PROPERTIES"]

CONDITIONS = ("behaviour", "regime", "edge", "property", "format", "loss", "parameter")
PROPERTIES = ("agreement", "no overflow")


class AcceptError(ValueError):
    """An accept entry that cannot be used: one line, naming where it is."""


@dataclass
class Entry:
    where: str
    reason: str
    behaviour: str | None = None
    regime: str | None = None
    edge: str | None = None
    prop: str | None = None
    fmt: str | None = None
    loss: str | None = None
    parameter: str | None = None

    @property
    def label(self) -> str:
        conds = [f"{k}={v!r}" for k, v in (("behaviour", self.behaviour), ("regime", self.regime),
                                            ("edge", self.edge), ("property", self.prop), ("format", self.fmt),
                                            ("loss", self.loss), ("parameter", self.parameter)) if v]
        return f"{self.where} ({', '.join(conds)}): {self.reason}"

    def matches(self, *, subject: str, loss: str, fmt: str, prop: str, kwargs: dict, edge: str | None = None,
                reference: str | None = None) -> bool:
        if self.loss and self.loss != loss or self.fmt and self.fmt != fmt or self.prop and self.prop != prop:
            return False
        if self.edge and self.edge != edge:
            return False
        if self.regime and regime_of(loss, kwargs, fmt) != self.regime:
            return False
        if self.parameter:
            name, _, value = self.parameter.partition("=")
            if name not in kwargs or (value and str(kwargs[name]) != value) or (not value and not kwargs[name]):
                return False
        if self.behaviour:
            ids = {d.id for s in {subject, reference} if s for d in deviations.matching(s, loss, kwargs, fmt)}
            if self.behaviour not in ids:
                return False
        return True


def parse(entries: object, where: str) -> list[Entry]:
    """Entries (a list of tables) as ``Entry``s; an unknown key or name, or a missing reason or condition, is an
    AcceptError naming the entry."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise AcceptError(f"{where}: accept must be an array of tables ([[accept]])")
    known_ids = {d.id for d in deviations.DEVIATIONS}
    out = []
    for i, e in enumerate(entries, 1):
        at = f"{where} accept entry {i}"
        unknown = [k for k in e if k not in (*CONDITIONS, "reason")]
        if unknown:
            raise AcceptError(f"{at}: unknown key {unknown[0]!r}; expected reason and any of {', '.join(CONDITIONS)}")
        if not isinstance(e.get("reason"), str) or not e["reason"].strip():
            raise AcceptError(f"{at}: needs a reason (why this finding is acceptable)")
        if not any(k in e for k in CONDITIONS):
            raise AcceptError(f"{at}: needs at least one condition ({', '.join(CONDITIONS)})")
        for k in CONDITIONS:
            if k in e and not isinstance(e[k], str):
                raise AcceptError(f"{at}: {k} must be a string")
        checks = (("behaviour", known_ids, "documented behaviour"), ("regime", REGIMES, "regime"),
                  ("property", PROPERTIES, "property"), ("format", catalogue.FORMATS, "format"),
                  ("loss", catalogue.NAMES, "loss"))
        for key, allowed, what in checks:
            if key in e and e[key] not in allowed:
                raise AcceptError(f"{at}: unknown {what} {e[key]!r}")
        out.append(Entry(at, e["reason"].strip(), e.get("behaviour"), e.get("regime"), e.get("edge"),
                         e.get("property"), e.get("format"), e.get("loss"), e.get("parameter")))
    return out


def load_file(path: str) -> list[Entry]:
    """The entries of an accept file (TOML, ``[[accept]]`` tables)."""
    doc = read_toml(path, AcceptError, "accept file")
    unknown = [k for k in doc if k != "accept"]
    if unknown:
        raise AcceptError(f"{path}: unknown table {unknown[0]!r}; an accept file holds [[accept]] entries")
    return parse(doc.get("accept", []), path)
