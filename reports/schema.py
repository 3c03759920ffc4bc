"""The results format: one JSON document per run, one record per measured case. Every run writes it; reports,
merging and the gate read it (this package never imports torch).

Document (``SCHEMA_VERSION`` 1)::

    {"schema": "lossproof-results", "version": 1,
     "runs": [{"id": str, "command": str, "profile": str, "started": ISO-8601 UTC, "environment": {...}}],
     "records": [record, ...]}

A record (one measured call of one subject on one input)::

    run          the id of the run in "runs" that made it
    source       "corpus" (the regression corpus: reproducible, what tables and the gate use), "hypothesis"
                 (the battery's search), "fixed" (pinned cases, deviation witnesses), "special" (special values)
    case_id      the corpus case's id (source "corpus"), else the test's id
    property     "agreement", "identity", "no_overflow", "special_values", "witness", "seed", ...
    subject      "torch", "numpy", "scipy", "user:<target>"
    loss, device, format, params (the call's non-tensor keyword arguments), regime (or null)
    elements     how many numbers were compared (values and gradient components)
    max_ulp      the largest error in ULP of the format (inf for a wrong special value)
    mean_bits    mean bits of error over the compared numbers
    correctly_rounded   how many were correctly rounded
    verdicts     {verdict: count} over the ladder of NUMERICS.md
    verdict      the worst of them ("not supported" / "skipped" with ``reason`` when nothing was compared)
    gating       whether the verdict gates (finite inputs; not a documented deviation)
    required     the rung the subject must reach (NUMERICS: "stable", "accurate" for our NumPy losses)
    deviation    the documented deviation's id, or null
    worst        {"kind": "value"|"grad", "index": [i], "y": hex, "z": 36 digits, "z_rounded": hex, "ulp": float,
                  "bits": float, "verdict": str, "input": {keyword: exact hex floats (nested lists)} or null
                  when larger than ``MAX_INPUT_NUMBERS`` ("input_numbers" says how many)}
    oracle_precision   the largest working precision (bits) the oracle used for the compared numbers

Floats are written as ``float.hex`` strings where exactness matters (inputs, y, z_rounded), as JSON numbers
elsewhere (``Infinity`` for max_ulp = inf: Python's json reads and writes it).
"""

from __future__ import annotations

import json

from oracles.codec import count, hex_tree, hexf

from . import atomic

SCHEMA_NAME = "lossproof-results"
SCHEMA_VERSION = 1
MAX_INPUT_NUMBERS = 1024  # the worst input is stored in full up to this many numbers



class ResultsError(ValueError):
    """A results or baseline file that cannot be used: missing, corrupt, or of another schema version."""


def number(v, default):
    """A record's number as a float: hex strings (``hexf``), decimal strings, JSON numbers; ``default`` for
    anything else (a word, None, a bool)."""
    if isinstance(v, str):
        for parse in (float.fromhex, float):
            try:
                return parse(v)
            except ValueError:
                pass
        return default
    if isinstance(v, bool) or v is None:
        return default
    return float(v)


def exact_input(kwargs: dict) -> tuple:
    """(the call's tensors as exact hex trees, or None when larger than MAX_INPUT_NUMBERS; their number count)."""
    tensors = {k: v for k, v in kwargs.items() if isinstance(v, list) or (k in ("input", "target", "other", "weight",
                                                                                  "pos_weight") and v is not None)}
    n = sum(count(v) for v in tensors.values())
    if n > MAX_INPUT_NUMBERS:
        return None, n
    return {k: hex_tree(v) for k, v in tensors.items()}, n


def record_of(m, *, kwargs: dict | None, deviation: str | None, gating: bool, source: str, prop: str,
              case_id: str, run: str = "", regime: str | None = None, required: str | None = None) -> dict:
    """The record of a ``lossproof.measure.Measurement`` (duck-typed: this module never imports the suite)."""
    params = {k: (hexf(v) if isinstance(v, float) else v) for k, v in (m.params or {}).items()
              if not k.startswith("_")}
    els = list(m.elements)
    verdicts = {}
    for e in els:
        verdicts[e.verdict] = verdicts.get(e.verdict, 0) + 1
    rec = {
        "run": run, "source": source, "case_id": case_id, "property": prop,
        "subject": m.subject, "loss": m.loss, "device": m.device, "format": m.fmt, "params": params,
        "regime": regime or (kwargs or {}).get("_regime"),
        "elements": len(els),
        "max_ulp": max((e.ulp_error for e in els), default=0.0),
        "mean_bits": (sum(e.bits for e in els) / len(els)) if els else 0.0,
        "correctly_rounded": verdicts.get("correctly_rounded", 0),
        "verdicts": verdicts,
        "verdict": m.verdict if els else ("not supported" if m.unsupported else "skipped"),
        "reason": m.unsupported or m.skipped,
        "gating": bool(gating) and not deviation,
        "required": required or "stable",
        "deviation": deviation,
        "worst": None,
        "oracle_precision": max((getattr(e.exact, "precision_used", 0) or 0 for e in els), default=0),
    }
    w = m.worst_element
    if w is not None:
        inp, n = exact_input({k: v for k, v in (kwargs or {}).items() if not k.startswith("_")})
        rec["worst"] = {"kind": w.kind, "index": list(w.index), "y": hexf(w.y), "z": w.z,
                        "z_rounded": hexf(w.z_rounded), "ulp": w.ulp_error, "bits": w.bits, "verdict": w.verdict,
                        "input": inp, "input_numbers": n}
    return rec


def document(runs: list, records: list) -> dict:
    return {"schema": SCHEMA_NAME, "version": SCHEMA_VERSION, "runs": runs, "records": records}


def write_atomic(path: str, data, *, text: bool = False) -> None:
    """Write a results document (JSON) or text to ``path`` atomically (reports.atomic)."""
    if text:
        atomic.write_text(path, data)
    else:
        atomic.write_json(path, data)


def load(path: str) -> dict:
    """Read a results document, or raise ResultsError with one clear line."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ResultsError(f"{path}: cannot read it ({e})") from None
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_NAME:
        raise ResultsError(f"{path}: not a lossproof results file")
    if doc.get("version") != SCHEMA_VERSION:
        raise ResultsError(f"{path}: results schema version {doc.get('version')!r}, this lossproof reads version "
                           f"{SCHEMA_VERSION}")
    if not isinstance(doc.get("records"), list) or not isinstance(doc.get("runs"), list):
        raise ResultsError(f"{path}: malformed results (records and runs must be lists)")
    return doc


def merge(docs: list) -> dict:
    """Several results documents (xdist workers, CI jobs, machines) as one: runs and records concatenated, a run
    listed once however many documents carry it."""
    runs, seen, records = [], set(), []
    for d in docs:
        for r in d["runs"]:
            if r.get("id") not in seen:
                seen.add(r.get("id"))
                runs.append(r)
        records.extend(d["records"])
    return document(runs, records)
