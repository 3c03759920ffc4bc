"""The regression gate: a run's corpus cells against a committed baseline's.

Cells are ``reports.cells`` cells (subject, loss, parameter family, device, format) over the records whose source
is "corpus" (the reproducible regression corpus; Hypothesis's search is not repeatable run to run and never gates).
A change is a **regression** when, in a cell:

- a case (corpus case id and property) is broken or unstable (gating: finite inputs, no documented deviation)
  and was not, or was only unstable and is now broken;
- the max ULP error of the gating numbers grew by more than max(1 ULP, 10%) (finite to inf counts);
- the correctly rounded rate fell by more than 1 percentage point;
- the baseline compared numbers and the run compares none (the cell became not supported, skipped, unresolved);
- the baseline's cell is missing from the run (unless ``allow_missing``: another CI job measures it).

The same changes the other way are **improvements** (a failing case now passing, max ULP down by more than
max(1 ULP, 10%), the rate up by more than 1 point); a cell the baseline lacks is **new**. Neither fails the gate.

Baseline file (``BASELINE_SCHEMA`` version 1): a compact, reviewable summary of the cells, one JSON object::

    {"schema": "lossproof-baseline", "version": 1, "created": ISO-8601 UTC,
     "runs": [the results' runs: command, profile, environment (torch version...)],
     "cells": [{"subject", "loss", "family", "device", "format",
                "records", "compared", "skipped", "not_supported", "unresolved",
                "elements", "correctly_rounded", "max_ulp", "worst", "verdicts": {verdict: records},
                "failing": {"case_id::property": verdict}, "reported", "reported_worst", "reported_max_ulp",
                "deviations": {id: records}}, ...]}

A results document (reports/schema.py) is accepted as a baseline too (its corpus cells are used).
``write_baseline`` writes it atomically, sorted, one cell per line, so a change to it reads well in a diff.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field

from reports import cells as C
from reports import schema

BASELINE_SCHEMA = "lossproof-baseline"
BASELINE_VERSION = 1

ULP_ABS = 1.0  # max ULP may grow by max(ULP_ABS, ULP_REL * baseline) before it regresses
ULP_REL = 0.10
CR_POINTS = 1.0  # percentage points of correctly rounded numbers


@dataclass
class Change:
    kind: str  # "regression", "improvement", "new"
    key: tuple
    what: str
    before: str = ""
    after: str = ""


@dataclass
class GateResult:
    regressions: list = field(default_factory=list)
    improvements: list = field(default_factory=list)
    new: list = field(default_factory=list)
    compared: int = 0  # cells present in both

    @property
    def ok(self) -> bool:
        return not self.regressions


# ------------------------------------------------------------------------------------------------------------
# reading and writing baselines


def cells_of(doc: dict) -> dict:
    """{key: cell} of a baseline document or of a results document's corpus records."""
    if doc.get("schema") == BASELINE_SCHEMA:
        out = {}
        for c in doc["cells"]:
            key = tuple(c[f] for f in C.KEY_FIELDS)
            out[key] = {**C.new_cell(key), **c}
        return out
    return C.summarize(C.corpus_records(doc))


def load_baseline(path: str) -> dict:
    """A baseline (or results) document, or ResultsError with one clear line."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise schema.ResultsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise schema.ResultsError(f"{path}: cannot read it ({e})") from None
    except json.JSONDecodeError as e:
        raise schema.ResultsError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(doc, dict):
        raise schema.ResultsError(f"{path}: not a lossproof baseline or results file")
    if doc.get("schema") == schema.SCHEMA_NAME:
        return schema.load(path)  # its own checks and messages
    if doc.get("schema") != BASELINE_SCHEMA:
        raise schema.ResultsError(f"{path}: not a lossproof baseline or results file")
    if doc.get("version") != BASELINE_VERSION:
        raise schema.ResultsError(f"{path}: baseline schema version {doc.get('version')!r}, this lossproof reads "
                                  f"version {BASELINE_VERSION}")
    cells = doc.get("cells")
    if not isinstance(cells, list) or not all(isinstance(c, dict) and all(f in c for f in C.KEY_FIELDS)
                                              for c in cells):
        raise schema.ResultsError(f"{path}: malformed baseline (cells must be a list of objects with "
                                  f"{', '.join(C.KEY_FIELDS)})")
    return doc


def baseline_document(cells: dict, runs: list) -> dict:
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    out = []
    for key in sorted(cells, key=lambda k: tuple(str(x) for x in k)):
        c = dict(cells[key])
        c["failing"] = dict(sorted(c["failing"].items()))
        out.append(c)
    return {"schema": BASELINE_SCHEMA, "version": BASELINE_VERSION, "created": now,
            "runs": [{k: r.get(k) for k in ("id", "command", "profile", "started", "environment")} for r in runs],
            "cells": out}


def dumps_baseline(doc: dict) -> str:
    """JSON with one cell per line (diffs stay readable)."""
    head = {k: v for k, v in doc.items() if k != "cells"}
    lines = json.dumps(head, indent=1, sort_keys=True)[:-2]  # drop the closing "\n}"
    body = ",\n".join("  " + json.dumps(c, sort_keys=True) for c in doc["cells"])
    return f'{lines},\n "cells": [\n{body}\n ]\n}}\n'


def write_baseline(path: str, doc: dict) -> None:
    schema.write_atomic(path, dumps_baseline(doc), text=True)


# ------------------------------------------------------------------------------------------------------------
# comparing


def _ulp_margin(old: float) -> float:
    return max(ULP_ABS, ULP_REL * old)


def _rate(c):
    r = C.cr_rate(c)
    return "-" if r is None else f"{r:.2f}%"


def compare_cells(base: dict, new: dict, allow_missing: bool = False) -> GateResult:
    res = GateResult()
    for key, b in base.items():
        n = new.get(key)
        if n is None:
            if not allow_missing:
                res.regressions.append(Change("regression", key, "cell missing from the results",
                                              f"{b['records']} records", "-"))
            continue
        res.compared += 1
        _compare(key, b, n, res)
    for key, n in new.items():
        if key not in base:
            res.new.append(Change("new", key, "cell not in the baseline", "-",
                                  f"max {C.fmt_ulp(n['max_ulp'])} ULP, {_rate(n)} CR, worst {n['worst'] or '-'}"))
    return res


def _compare(key, b, n, res: GateResult) -> None:
    reg, imp = res.regressions.append, res.improvements.append
    # failing cases
    bf, nf = b.get("failing") or {}, n.get("failing") or {}
    for case, v in sorted(nf.items()):
        old = bf.get(case)
        if old is None or C.RANK[v] < C.RANK.get(old, 99):
            reg(Change("regression", key, f"new {v} verdict: {case}", old or "passing", v))
    for case, old in sorted(bf.items()):
        v = nf.get(case)
        if v is None:
            imp(Change("improvement", key, f"no longer {old}: {case}", old, "passing (or not measured)"))
        elif C.RANK[v] > C.RANK.get(old, -1):
            imp(Change("improvement", key, f"{old} -> {v}: {case}", old, v))
    # nothing compared any more
    if b.get("elements", 0) > 0 and n.get("elements", 0) == 0:
        reg(Change("regression", key, "no gating numbers compared any more (not supported, skipped, unresolved "
                   "or all reported-only)", f"{b['elements']} numbers", "0"))
        return
    if not b.get("elements") or not n.get("elements"):
        return
    # max ULP
    bu, nu = float(b["max_ulp"]), float(n["max_ulp"])
    if not (math.isinf(bu) and math.isinf(nu)):
        if nu > bu + _ulp_margin(bu):
            reg(Change("regression", key, f"max ULP grew by more than max(1, 10%) (limit "
                       f"{C.fmt_ulp(bu + _ulp_margin(bu))})", C.fmt_ulp(bu), C.fmt_ulp(nu)))
        elif nu < bu - _ulp_margin(bu):
            imp(Change("improvement", key, "max ULP fell by more than max(1, 10%)", C.fmt_ulp(bu), C.fmt_ulp(nu)))
    # correctly rounded rate
    br, nr = C.cr_rate(b), C.cr_rate(n)
    if nr < br - CR_POINTS:
        reg(Change("regression", key, "correctly rounded rate fell by more than 1 point", f"{br:.2f}%", f"{nr:.2f}%"))
    elif nr > br + CR_POINTS:
        imp(Change("improvement", key, "correctly rounded rate rose by more than 1 point", f"{br:.2f}%",
                   f"{nr:.2f}%"))


def gate(baseline_doc: dict, results_doc: dict, allow_missing: bool = False) -> GateResult:
    """Regressions and improvements of ``results_doc``'s corpus cells against ``baseline_doc`` (a baseline or a
    results document)."""
    return compare_cells(cells_of(baseline_doc), cells_of(results_doc), allow_missing)


def format_table(res: GateResult) -> str:
    rows = res.regressions + res.improvements + res.new
    if not rows:
        return ""
    heads = ("change", "cell (subject loss [family] device format)", "what", "baseline", "results")
    data = [(c.kind.upper() if c.kind == "regression" else c.kind, C.key_text(c.key), c.what, c.before, c.after)
            for c in rows]
    widths = [min(max(len(r[i]) for r in [heads, *data]), cap) for i, cap in enumerate((11, 200, 400, 24, 60))]

    def line(r):
        return "  ".join((s if len(s) <= w else s[:w - 1] + "…").ljust(w) for s, w in zip(r, widths)).rstrip()

    return "\n".join([line(heads), line(tuple("-" * w for w in widths)), *map(line, data)])
