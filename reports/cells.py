"""Cells: the unit of the summary table and of the regression gate.

A cell is (subject, loss, parameter family, device, format). The summary table's rows are (loss, parameter family),
its columns (subject, format, device); the gate compares a baseline's cells with a run's, cell by cell. Both use
``cell_key`` and ``summarize`` from here, so a table cell and a gate cell are the same thing.

The parameter family (``family``) is read from a record's ``params`` (the call's non-tensor keyword arguments),
never from its inputs, so the same corpus case always lands in the same cell:

- ``reduction=...`` for the losses that reduce (torch's default ``mean`` when the call leaves it out);
- ``label_smoothing`` when it is not 0, ``log_target`` when true, ``beta`` when not 1, ``threshold`` when not 20
  (softplus), ``ignore_index`` when not -100;
- anything else (``dim``, ``keepdim``) does not make a family. A call with none of these is ``default``.

This module is pure Python (no torch, no numpy): the gate imports it on a CI runner in milliseconds.
"""

from __future__ import annotations

import math

from lossproof import catalogue
from lossproof.verdicts import VERDICTS, at_least, worse
from oracles.formats import format_ulps

from .schema import number

WORST_FIRST = VERDICTS  # the ladder, worst first

def _num(v):
    """A parameter value as a number (params hold floats as hex strings); a word stays as it is."""
    return number(v, v)


def family(rec: dict) -> str:
    """The parameter family of a record (module docstring)."""
    p = rec.get("params") or {}
    out = []
    if rec.get("loss") in catalogue.REDUCING or "reduction" in p:
        out.append(f"reduction={p.get('reduction', 'mean')}")
    ls = _num(p.get("label_smoothing", 0.0))
    if ls not in (0, 0.0, None):
        out.append("label_smoothing")
    if p.get("log_target"):
        out.append("log_target")
    beta = _num(p.get("beta", 1.0))
    if beta not in (1, 1.0, None):
        out.append("beta")
    th = _num(p.get("threshold", 20.0))
    if th not in (20, 20.0, None):
        out.append("threshold")
    ii = p.get("ignore_index", -100)
    if ii not in (-100, None):
        out.append("ignore_index")
    return " ".join(out) or "default"


def cell_key(rec: dict) -> tuple:
    """(subject, loss, family, device, format)."""
    return (rec.get("subject"), rec.get("loss"), family(rec), rec.get("device"), rec.get("format"))


KEY_FIELDS = ("subject", "loss", "family", "device", "format")


def key_text(key) -> str:
    """A cell as one readable line: ``torch cross_entropy [reduction=mean] cpu float32``."""
    s, loss, fam, dev, fmt = key
    return f"{s} {loss} [{fam}] {dev} {fmt}"


def anchor(key) -> str:
    """An HTML id for a cell's section (letters, digits, '-' and '_')."""
    raw = "cell-" + "-".join(str(k) for k in key)
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in raw)


def fmt_ulp(e) -> str:
    """An ULP error with 3 significant digits, rounded up (Zimmermann et al.; NUMERICS.md): 0.1234 -> 0.124,
    1234.5 -> 1240, 999.5 -> 1000, 1.5e30 -> 1.50e+30; oracles.formats.format_ulps, with "-" for no value."""
    if e is None:
        return "-"
    e = float(e)
    if math.isinf(e):
        return "inf" if e > 0 else "-inf"
    return format_ulps(e)


UNRESOLVED_WORDS = ("unresolved", "precision", "cannot decide", "undecid")


def status(rec: dict) -> str:
    """compared | not supported | unresolved | skipped: what became of a record (nothing drops out silently).
    ``unresolved`` is a record that compared nothing because the oracle could not decide (its verdict says
    "unresolved", or it was skipped for a reason that names the oracle's precision)."""
    if rec.get("elements"):
        return "compared"
    v = rec.get("verdict")
    if v == "not supported":
        return "not supported"
    reason = (rec.get("reason") or "").lower()
    if v == "unresolved" or any(w in reason for w in UNRESOLVED_WORDS):
        return "unresolved"
    return "skipped"


def new_cell(key) -> dict:
    return {**dict(zip(KEY_FIELDS, key)), "records": 0, "compared": 0, "skipped": 0, "not_supported": 0,
            "unresolved": 0, "elements": 0, "correctly_rounded": 0, "max_ulp": 0.0, "worst": None,
            "verdicts": {}, "failing": {}, "reported": 0, "reported_worst": None, "reported_max_ulp": 0.0,
            "deviations": {}}


def case_of(rec: dict) -> str:
    """A record's identity within its cell across runs: the case and the property."""
    return f"{rec.get('case_id')}::{rec.get('property')}"


def add(cell: dict, rec: dict) -> None:
    """Count one record in its cell. Gating records (finite inputs, no documented deviation) make the cell's
    verdict, max ULP and correctly rounded rate; the others are counted apart as reported-only."""
    cell["records"] += 1
    st = status(rec)
    cell[st.replace(" ", "_")] += 1
    dev = rec.get("deviation")
    if dev:
        cell["deviations"][dev] = cell["deviations"].get(dev, 0) + 1
    if st != "compared":
        return
    v = rec.get("verdict")
    ulp = float(rec.get("max_ulp") or 0.0)
    if rec.get("gating"):
        cell["elements"] += int(rec.get("elements") or 0)
        cell["correctly_rounded"] += int(rec.get("correctly_rounded") or 0)
        if not math.isnan(ulp):
            cell["max_ulp"] = max(cell["max_ulp"], ulp)
        cell["worst"] = worse(cell["worst"], v)
        cell["verdicts"][v] = cell["verdicts"].get(v, 0) + 1
        if not at_least(v, rec.get("required") or "stable"):  # below the subject's pass line
            c = case_of(rec)
            cell["failing"][c] = worse(cell["failing"].get(c), v)
    else:
        cell["reported"] += 1
        cell["reported_worst"] = worse(cell["reported_worst"], v)
        if not math.isnan(ulp):
            cell["reported_max_ulp"] = max(cell["reported_max_ulp"], ulp)


def cr_rate(cell: dict):
    """The correctly rounded percentage of the gating numbers compared (None when none were)."""
    return 100.0 * cell["correctly_rounded"] / cell["elements"] if cell["elements"] else None


def summarize(records) -> dict:
    """{cell key: cell} over ``records`` (all of them: filter by source before)."""
    cells = {}
    for r in records:
        k = cell_key(r)
        c = cells.get(k)
        if c is None:
            c = cells[k] = new_cell(k)
        add(c, r)
    return cells


def corpus_records(doc: dict) -> list:
    return [r for r in doc["records"] if r.get("source") == "corpus"]
