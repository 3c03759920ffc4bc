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
    worst        {"kind": "value"|"grad", "index": [i], "y": hex, "z": digits, "z_rounded": hex, "ulp": float,
                  "bits": float, "verdict": str, "input": {keyword: exact hex floats (nested lists)} or null
                  when larger than ``MAX_INPUT_NUMBERS`` ("input_numbers" says how many)}
    oracle_precision   the largest working precision (bits) the oracle used for the compared numbers

``worst.z`` is the exact value as its error was measured: the digits of the midpoint the measurement took (the
format's precision + 24 bits: at least 17 digits, 20 or more for float64), not the 36 of ``lossproof exact``.

The document may also hold ``"sweeps": [row, ...]``, the exhaustive sweeps (lossproof/sweep.py, ``lossproof
sweep``): one row per function, subject and format over a range of the format's encodings (``lo`` .. ``hi`` - 1;
all of them for a full sweep), in the manner of Zimmermann et al.::

    function, subject, format, device, lo, hi, inputs, required, reason (why not supported, or null),
    verdict      the worst verdict of the elements no documented deviation explains ("not supported")
    oracle       {float64, extended, exact, nan, exact_comparisons}: how many roundings each oracle stage decided
                 (oracles/univariate.py) and how many comparisons the exact path made
    seconds      the time the chunks took (summed)
    quantities   {"value"|"grad": {elements, correctly_rounded, verdicts {verdict: count}, failures (below the
                 pass line, not explained), verdict, explained {deviation id: count}, max {ulp, input, y,
                 z_rounded (hex), verdict} or null, witnesses [{input, y, z_rounded, ulp, verdict}]}}

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
        # the digits the error was measured from where the measurement says them (lossproof.measure), else 36
        z = m.measured_z(w) if hasattr(m, "measured_z") else w.z
        rec["worst"] = {"kind": w.kind, "index": list(w.index), "y": hexf(w.y), "z": z,
                        "z_rounded": hexf(w.z_rounded), "ulp": w.ulp_error, "bits": w.bits, "verdict": w.verdict,
                        "input": inp, "input_numbers": n}
    return rec


def document(runs: list, records: list, sweeps: list | None = None) -> dict:
    doc = {"schema": SCHEMA_NAME, "version": SCHEMA_VERSION, "runs": runs, "records": records}
    if sweeps:
        doc["sweeps"] = sweeps
    return doc


def write_atomic(path: str, data, *, text: bool = False) -> None:
    """Write a results document (JSON) or text to ``path`` atomically (reports.atomic)."""
    if text:
        atomic.write_text(path, data)
    else:
        atomic.write_json(path, data)


#: a record's fields and their JSON types (bool is never a number here); ``REQUIRED`` must be present, the rest
#: may be absent (older writers, hand-made documents) but never of another type
RECORD_FIELDS = {
    "run": (str,), "source": (str,), "case_id": (str,), "property": (str,), "subject": (str,), "loss": (str,),
    "device": (str,), "format": (str,), "params": (dict,), "regime": (str, type(None)), "elements": (int,),
    "max_ulp": (int, float), "mean_bits": (int, float), "correctly_rounded": (int,), "verdicts": (dict,),
    "verdict": (str,), "reason": (str, type(None)), "gating": (bool,), "required": (str, type(None)),
    "deviation": (str, type(None)), "worst": (dict, type(None)), "oracle_precision": (int,),
}
REQUIRED = ("source", "subject", "loss", "device", "format", "verdict")
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", dict: "an object", bool: "true or false",
               type(None): "null"}


def _type_ok(v, kinds: tuple) -> bool:
    if isinstance(v, bool):
        return bool in kinds
    if isinstance(v, float) and float in kinds:
        return True
    if isinstance(v, float) and int in kinds:  # a count written as a float is malformed (NaN, 1e999, 2.5)
        return False
    return isinstance(v, kinds)


def check_record(rec, where: str) -> None:
    """ResultsError (one line naming ``where``, the record and the field) unless ``rec`` is a well-formed record:
    an object, the ``REQUIRED`` fields present, every field of ``RECORD_FIELDS`` of its type, counts non-negative
    integers and verdict counts integers."""
    if not isinstance(rec, dict):
        raise ResultsError(f"{where}: is {type(rec).__name__}, not an object")
    for f in REQUIRED:
        if f not in rec:
            raise ResultsError(f"{where}: has no {f!r}")
    for f, kinds in RECORD_FIELDS.items():
        if f in rec and not _type_ok(rec[f], kinds):
            want = "a number" if kinds == (int, float) else " or ".join(_TYPE_NAMES[k] for k in kinds)
            raise ResultsError(f"{where}: {f} is {json.dumps(rec[f])[:60]}, not {want}")
    for f in ("elements", "correctly_rounded", "oracle_precision"):
        if rec.get(f, 0) < 0:
            raise ResultsError(f"{where}: {f} is {rec[f]}, not a count")
    verdicts = rec.get("verdicts") or {}
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in verdicts.values()):
        raise ResultsError(f"{where}: verdicts must map each verdict to a count")


#: a sweep row's fields and their JSON types (all required), and those of each quantity
SWEEP_FIELDS = {
    "function": (str,), "subject": (str,), "format": (str,), "device": (str,), "lo": (int,), "hi": (int,),
    "inputs": (int,), "required": (str,), "reason": (str, type(None)), "verdict": (str,), "oracle": (dict,),
    "seconds": (int, float), "quantities": (dict,),
}
QUANTITY_FIELDS = {
    "elements": (int,), "correctly_rounded": (int,), "verdicts": (dict,), "failures": (int,), "verdict": (str,),
    "explained": (dict,), "max": (dict, type(None)), "witnesses": (list,),
}


def check_sweep(row, where: str) -> None:
    """ResultsError (one line) unless ``row`` is a well-formed sweep row: the fields of ``SWEEP_FIELDS`` of their
    types, counts non-negative integers, quantities "value" or "grad" with the fields of ``QUANTITY_FIELDS``."""
    if not isinstance(row, dict):
        raise ResultsError(f"{where}: is {type(row).__name__}, not an object")
    for fields, obj, what in ((SWEEP_FIELDS, row, ""),
                              *((QUANTITY_FIELDS, q, f"{k} ") for k, q in (row.get("quantities") or {}).items())):
        if not isinstance(obj, dict):
            raise ResultsError(f"{where}: quantity {what.strip()} is not an object")
        for f, kinds in fields.items():
            if f not in obj:
                raise ResultsError(f"{where}: {what}has no {f!r}")
            if not _type_ok(obj[f], kinds):
                want = "a number" if kinds == (int, float) else " or ".join(_TYPE_NAMES[k] for k in kinds)
                raise ResultsError(f"{where}: {what}{f} is {json.dumps(obj[f])[:60]}, not {want}")
        counts = [obj.get(f) for f in ("lo", "hi", "inputs", "elements", "correctly_rounded", "failures") if f in obj]
        counts += list((obj.get("verdicts") or {}).values()) + list((obj.get("explained") or {}).values())
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
            raise ResultsError(f"{where}: {what}counts must be non-negative integers")
    if set(row["quantities"]) - {"value", "grad"}:
        raise ResultsError(f"{where}: quantities must be 'value' or 'grad'")
    if row["lo"] > row["hi"]:
        raise ResultsError(f"{where}: lo {row['lo']} is above hi {row['hi']}")


def check_document(doc, path: str) -> dict:
    """``doc`` if it is a results document of this version with well-formed runs and records, else ResultsError
    (one line naming ``path``): the checks of ``load`` on a document already parsed."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_NAME:
        raise ResultsError(f"{path}: not a lossproof results file")
    if doc.get("version") != SCHEMA_VERSION:
        raise ResultsError(f"{path}: results schema version {json.dumps(doc.get('version'))[:40]}, this lossproof "
                           f"reads version {SCHEMA_VERSION}")
    if not isinstance(doc.get("records"), list) or not isinstance(doc.get("runs"), list):
        raise ResultsError(f"{path}: malformed results (records and runs must be lists)")
    for i, run in enumerate(doc["runs"], 1):
        if not isinstance(run, dict) or not isinstance(run.get("id", ""), str):
            raise ResultsError(f"{path}: malformed results (run {i} must be an object with a string id)")
    for i, rec in enumerate(doc["records"], 1):
        check_record(rec, f"{path}: malformed results, record {i}")
    if "sweeps" in doc:
        if not isinstance(doc["sweeps"], list):
            raise ResultsError(f"{path}: malformed results (sweeps must be a list)")
        for i, row in enumerate(doc["sweeps"], 1):
            check_sweep(row, f"{path}: malformed results, sweep {i}")
    return doc


def read_json(path: str, what: str = "results file"):
    """The JSON document at ``path``, or ResultsError with one line naming it: missing, a directory, unreadable,
    not UTF-8, not JSON, nested past the parser's recursion limit, or holding a number of more digits than Python
    converts (the readers of results and baseline files: ``load``, reports.gate)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ResultsError(f"{path}: is a directory, not a {what}") from None
    except UnicodeDecodeError as e:
        raise ResultsError(f"{path}: not a {what} (not UTF-8 text: {e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ResultsError(f"{path}: cannot read it ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise ResultsError(f"{path}: not a {what} (JSON nested too deep to read)") from None
    except ValueError as e:  # a number past int's digit limit: Python's message is three sentences
        raise ResultsError(f"{path}: not a {what} ({str(e).split(';')[0]})") from None


def load(path: str) -> dict:
    """Read a results document, or raise ResultsError with one clear line (the file unreadable or not JSON, of
    another schema or version, or a run or record malformed: ``check_document``)."""
    return check_document(read_json(path), path)


def merge(docs: list) -> dict:
    """Several results documents (xdist workers, CI jobs, machines) as one: runs and records concatenated, a run
    listed once however many documents carry it."""
    runs, seen, records, sweeps = [], set(), [], []
    for d in docs:
        for r in d["runs"]:
            if r.get("id") not in seen:
                seen.add(r.get("id"))
                runs.append(r)
        records.extend(d["records"])
        sweeps.extend(d.get("sweeps", []))
    return document(runs, records, sweeps)
