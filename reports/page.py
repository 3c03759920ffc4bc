"""The report's page data: everything the template shows, computed from a results document (reports/schema.py).

- a header: versions, devices, CPU, flush-to-zero, profile, date and the command of every run;
- the summary table (Zimmermann et al.'s accuracy tables): rows loss x parameter family, columns subject x format
  x device, each cell the max ULP error of the gating numbers (3 significant digits, rounded up) coloured by the
  worst verdict, with the correctly rounded percentage. Computed on the corpus records (source "corpus"); when a
  run has none, on all records, and the page says so;
- a section per cell: bits of error against log10 of the input's magnitude (reports/plots.py), the worst inputs
  with reproducers (reports/reproducers.py), what became of every record (compared, skipped, not supported,
  unresolved) and the property outcomes;
- Hypothesis findings, documented deviations (subjects/deviations.py, with measured counts), the seed notebook's
  cases, the impact margin against torch.testing.assert_close, and, when their files are present, the detection
  table of the zoo (``lossproof detect --json``) and the worst-known inputs (reports/worst_known.json).

The plot's x coordinate: log10 of the largest finite, non-zero magnitude among the values of the call's ``input``
tensor (the record's worst input, ``record["worst"]["input"]["input"]``), i.e. the scale of the logits,
probabilities or arguments; y: the bits of error (NUMERICS.md) of the record's worst element. A record without
a stored input (more than MAX_INPUT_NUMBERS numbers) or without a finite non-zero input value is not plotted,
and the caption counts it. Plots keep at most ``MAX_POINTS`` points.

No framework is imported here (subjects.deviations is data).
"""

from __future__ import annotations

import datetime
import json
import math
import os

from lossproof.verdicts import FAILING, RANK, VERDICTS
from oracles.codec import flat
from subjects.deviations import DEVIATIONS, shared_id

from . import cells as C
from . import reproducers, schema
from .plots import MAX_POINTS, POINT_COLOURS, VERDICT_SHORT, plot_svg

MAX_CELL_REPRODUCERS = 3  # worst records per cell shown with reproducers
BIG_REPRODUCER = 256  # numbers: beyond this only the worst record of a cell gets its reproducer
MAX_LISTED = 60  # rows in the Hypothesis findings and seed tables

#: torch.testing.assert_close's default (rtol, atol) per dtype (torch/testing/_comparison.py, _DTYPE_PRECISIONS)
ASSERT_CLOSE = {"float64": (1e-7, 1e-7), "float32": (1.3e-6, 1e-5), "float16": (1e-3, 1e-5),
                "bfloat16": (1.6e-2, 1e-5)}
ASSERT_CLOSE_DOC = "https://docs.pytorch.org/docs/stable/testing.html#torch.testing.assert_close"

SUBJECT_ORDER = {"torch": 0, "jax": 1, "optax-safe": 2, "numpy": 3, "scipy": 4}
FORMAT_ORDER = {"float64": 0, "float32": 1, "float16": 2, "bfloat16": 3}
DEVICE_ORDER = {"cpu": 0, "cuda": 1}

VERDICT_TEXT = {
    "correctly_rounded": "correctly rounded: y is the exact value rounded to the format",
    "accurate": "accurate: |y - z| <= K u (|z| + kappa), as good as the conditioning allows",
    "stable": "stable: |y - z| <= K B, the stability bound (the pass line)",
    "unstable": "unstable: sane, but beyond the stability bound",
    "broken": "broken: NaN or inf where the exact value is finite, or a wrong special value",
}


class ReportInputError(ValueError):
    """An optional input of the report (zoo or worst-known JSON) that exists but cannot be read."""


# ------------------------------------------------------------------------------------------------------------
# small helpers


def _as_float(v):
    return schema.number(v, math.nan)


def magnitude(rec: dict):
    """log10 of the largest finite non-zero |value| of the record's ``input`` tensor (None if there is none)."""
    w = rec.get("worst") or {}
    inp = w.get("input")
    if not isinstance(inp, dict) or not inp:
        return None
    t = inp["input"] if "input" in inp else next(iter(inp.values()))
    values = flat(t)
    try:
        vals = list(map(abs, map(float.fromhex, values)))
    except (TypeError, ValueError):  # numbers rather than hex strings
        vals = [abs(_as_float(v)) for v in values]
    m = max((v for v in vals if v < math.inf), default=0.0)  # NaN and inf fail the test
    return math.log10(m) if m > 0 else None


def _ulp_value(rec):
    u = rec.get("max_ulp")
    return float(u) if u is not None else 0.0


def _badness(rec):
    """Sort key: the worst verdict first, then the largest ULP error."""
    return (RANK.get(rec.get("verdict"), 9), -_ulp_value(rec) if not math.isnan(_ulp_value(rec)) else 0.0)


def _z_float(w):
    try:
        return float(w.get("z"))
    except (TypeError, ValueError):
        return math.nan


def assert_close_passes(rec: dict):
    """Whether torch.testing.assert_close with its default tolerances for the record's format would accept the
    record's worst element (y against the exact z); None when there is no worst element or format."""
    w = rec.get("worst")
    tol = ASSERT_CLOSE.get(rec.get("format"))
    if not w or not tol:
        return None
    y, z = _as_float(w.get("y")), _z_float(w)
    rtol, atol = tol
    if math.isnan(y) or math.isnan(z):
        return False  # equal_nan=False
    if math.isinf(y) or math.isinf(z):
        return y == z
    return abs(y - z) <= atol + rtol * abs(z)


def margin(rec: dict):
    """|y - z| / (atol + rtol |z|) for the worst element (NUMERICS.md's impact margin)."""
    w = rec.get("worst")
    tol = ASSERT_CLOSE.get(rec.get("format"))
    if not w or not tol:
        return None
    y, z = _as_float(w.get("y")), _z_float(w)
    if not (math.isfinite(y) and math.isfinite(z)):
        return math.inf if y != z else 0.0
    return abs(y - z) / (tol[1] + tol[0] * abs(z))


# ------------------------------------------------------------------------------------------------------------
# reproducers


def _reproducers(rec: dict) -> list:
    """[(label, code)] for a record: the subject's call (reports/reproducers.py) and ``lossproof exact``."""
    out = []
    w = rec.get("worst") or {}
    code = reproducers.from_record(rec)
    if code:
        out.append((f"{rec.get('subject')} ({rec.get('format')}, {rec.get('device')})", code))
    if w.get("input"):
        kw = {**w["input"], **(rec.get("params") or {})}
        out.append(("the exact value (lossproof exact)",
                    reproducers.exact_command(rec["loss"], rec["format"], kw, grad=w.get("kind") == "grad")))
    return out


def worst_row(rec: dict, with_code=True) -> dict:
    w = rec.get("worst") or {}
    return {
        "case_id": rec.get("case_id"), "property": rec.get("property"), "source": rec.get("source"),
        "subject": rec.get("subject"), "loss": rec.get("loss"), "format": rec.get("format"),
        "device": rec.get("device"), "family": C.family(rec),
        "verdict": rec.get("verdict"), "ulp": C.fmt_ulp(rec.get("max_ulp")),
        "bits": f"{w['bits']:.1f}" if isinstance(w.get("bits"), (int, float)) else "-",
        "kind": w.get("kind"), "index": w.get("index"), "y": w.get("y"), "z": w.get("z"),
        "z_rounded": w.get("z_rounded"), "deviation": rec.get("deviation"), "gating": rec.get("gating"),
        "reason": rec.get("reason"),
        "input_numbers": w.get("input_numbers"), "has_input": bool(w.get("input")),
        "code": _reproducers(rec) if with_code else [],
    }


# ------------------------------------------------------------------------------------------------------------
# the page's data


def _col_key(c):
    return (SUBJECT_ORDER.get(c[0], 5), str(c[0]), FORMAT_ORDER.get(c[1], 9), DEVICE_ORDER.get(c[2], 9), str(c[2]))


def _env_line(env):
    out = []
    for k in ("torch", "jax", "jaxlib", "optax", "numpy", "scipy", "mpmath", "hypothesis", "gmpy2", "pytest", "python"):
        if env.get(k):
            v = env[k] + (f" (backend {env['mpmath_backend']})" if k == "mpmath" and env.get("mpmath_backend") else "")
            out.append((k, v))
    if env.get("xla_flags"):  # they compile JAX's functions otherwise (reports/environment.py)
        out.append(("XLA_FLAGS", str(env["xla_flags"])))
    return out


def _runs(doc):
    out = []
    for r in doc.get("runs", []):
        env = r.get("environment") or {}
        cuda = env.get("cuda")
        out.append({
            "id": r.get("id"), "command": r.get("command"), "profile": r.get("profile"), "started": r.get("started"),
            "versions": _env_line(env),
            "devices": ["cpu"] + (list(cuda) if isinstance(cuda, list) else ([str(cuda)] if cuda else [])),
            "cpu": f"{env.get('processor') or env.get('machine') or '?'} ({env.get('platform') or '?'})",
            "ftz": env.get("cpu_flush_to_zero"), "threads": env.get("torch_threads"),
            "records": 0,
        })
    counts = {}
    for rec in doc["records"]:
        counts[rec.get("run")] = counts.get(rec.get("run"), 0) + 1
    for r in out:
        r["records"] = counts.get(r["id"], 0)
    return out


def _property_outcomes(records):
    """[(source, property, records, {status or verdict: count}, gating failures)] sorted."""
    t = {}
    for r in records:
        k = (r.get("source") or "?", r.get("property") or "?")
        e = t.setdefault(k, {"records": 0, "counts": {}, "failing": 0})
        e["records"] += 1
        st = C.status(r)
        lab = r.get("verdict") if st == "compared" else st
        e["counts"][lab] = e["counts"].get(lab, 0) + 1
        if st == "compared" and r.get("gating") and r.get("verdict") in FAILING:
            e["failing"] += 1
    order = list(C.WORST_FIRST) + ["not supported", "skipped", "unresolved"]
    return [{"source": k[0], "property": k[1], "records": e["records"], "failing": e["failing"],
             "counts": sorted(e["counts"].items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)}
            for k, e in sorted(t.items())]


def _deviation_rows(records):
    measured = {}
    for r in records:
        d = shared_id(r.get("deviation"))  # a user function's "shared with torch: <id>" counts under <id>
        if d and not d.startswith("accepted: "):  # a user's accepted findings are not deviations of a library
            m = measured.setdefault(d, {"records": 0, "worst": None, "max_ulp": 0.0, "formats": set()})
            m["records"] += 1
            if r.get("elements"):
                m["worst"] = C.worse(m["worst"], r.get("verdict"))
                u = _ulp_value(r)
                if not math.isnan(u):
                    m["max_ulp"] = max(m["max_ulp"], u)
            m["formats"].add(r.get("format"))
    rows = []
    for d in DEVIATIONS:
        m = measured.get(d.id)
        url, _, note = (d.link or "").strip().partition(" ")
        rows.append({"id": d.id, "subject": d.subject, "loss": d.loss, "condition": d.condition, "reason": d.reason,
                     "link": url if url.startswith(("http://", "https://")) else None,
                     "link_note": note.strip() if url.startswith(("http://", "https://")) else (d.link or ""),
                     "records": m["records"] if m else 0, "worst": m["worst"] if m else None,
                     "max_ulp": C.fmt_ulp(m["max_ulp"]) if m else "-",
                     "formats": ", ".join(sorted(f for f in m["formats"] if f)) if m else ""})
    known = {d.id for d in DEVIATIONS}
    unknown = sorted(set(measured) - known)
    return rows, (f"records name deviations that subjects/deviations.py does not list: {', '.join(unknown)}"
                  if unknown else None)


def _load_optional(path, what):
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportInputError(f"{path}: the {what} cannot be read ({type(e).__name__}: {e})") from None


def _zoo(data):
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        return None
    rows = []
    for r in data["records"]:
        lp, us = r.get("lossproof") or {}, r.get("usual") or {}
        rows.append({"kind": r.get("kind"), "name": r.get("name"), "loss": r.get("loss"),
                     "framework": r.get("framework"), "format": r.get("format"), "mistake": r.get("mistake"),
                     "category": r.get("category"), "gap": r.get("gap"),
                     "lp_caught": lp.get("caught"), "lp_property": lp.get("property"),
                     "lp_seconds": lp.get("seconds_to_failure"),
                     "minimal": lp.get("minimal_text") or (json.dumps(lp.get("minimal"), separators=(",", ":"))
                                                            if lp.get("minimal") else ""),
                     "us_caught": us.get("caught"), "us_seconds": us.get("seconds_to_failure"),
                     "us_samples": us.get("samples")})
    s = data.get("summary") or {}
    return {"rows": rows, "summary": s, "environment": data.get("environment") or {}}


def _worst_known(data):
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        return None
    rows = []
    for e in data["entries"]:
        ws = e.get("worst") or []
        w = ws[0] if ws else {}
        inp = w.get("input_hex") or w.get("input")
        js = json.dumps(inp, separators=(",", ":")) if inp is not None else ""
        rows.append({"loss": e.get("loss"), "subject": e.get("subject"), "format": e.get("format"),
                     "device": e.get("device"), "budget": e.get("budget_seconds"), "evaluations": e.get("evaluations"),
                     "ulp": w.get("ulp"), "bits": w.get("bits"), "verdict": w.get("verdict"), "y": w.get("y"),
                     "exact": w.get("exact"), "kind": w.get("kind"), "input": js, "more": max(0, len(ws) - 1)})
    return {"rows": rows, "about": data.get("about"), "torch": data.get("torch")}


def _ulp_text(cell):
    return C.fmt_ulp(cell["max_ulp"]) if cell["elements"] else "-"


def _sweep_rows(doc: dict) -> list:
    """The exhaustive sweeps (reports/schema.py ``sweeps``), one line per row and quantity, ordered by function,
    subject and format: the largest error in ULP with its input, the correctly rounded share, the verdict counts
    and the documented deviations' elements, counted apart."""
    out = []
    for r in sorted(doc.get("sweeps", []), key=lambda r: (r["function"], r["subject"], r["format"], r["lo"])):
        full = r["lo"] == 0 and r["hi"] == (2**32 if r["format"] == "float32" else 2**16)
        base = {"function": r["function"], "subject": r["subject"], "format": r["format"], "verdict": r["verdict"],
                "required": r["required"], "range": "all" if full else f"{r['lo']:#x}:{r['hi']:#x}",
                "inputs": f"{r['inputs']:,}", "reason": r.get("reason"), "oracle": r.get("oracle") or {},
                "seconds": r.get("seconds")}
        if r.get("reason"):
            out.append({**base, "kind": "-", "max_ulp": "-", "max_input": "", "rate": "-", "counts": [],
                        "explained": [], "failures": 0})
            continue
        for kind, q in r["quantities"].items():
            mx = q.get("max") or {}
            x = mx.get("input")
            out.append({**base, "kind": kind, "max_ulp": C.fmt_ulp(mx.get("ulp")),
                        "max_input": f"{float.fromhex(x)!r} ({x})" if x else "",
                        "rate": f"{q['correctly_rounded'] / q['elements']:.3%}" if q["elements"] else "-",
                        "counts": [(v, f"{n:,}") for v, n in q["verdicts"].items() if n],
                        "explained": sorted(q["explained"].items()), "failures": q["failures"]})
    return out


def build_context(doc: dict, zoo_path=None, worst_known_path=None) -> dict:
    records = doc["records"]
    corpus = [r for r in records if r.get("source") == "corpus"]
    basis = corpus if corpus else records
    cells, by_cell = {}, {}
    for r in basis:  # C.summarize, keeping each cell's records
        k = C.cell_key(r)
        lst = by_cell.get(k)
        if lst is None:
            lst = by_cell[k] = []
            cells[k] = C.new_cell(k)
        lst.append(r)
        C.add(cells[k], r)

    # the summary table
    rows_keys = sorted({(k[1], k[2]) for k in cells})
    cols = sorted({(k[0], k[4], k[3]) for k in cells}, key=_col_key)
    table = []
    for loss, fam in rows_keys:
        row = {"loss": loss, "family": fam, "cells": []}
        for subj, fmt, dev in cols:
            key = (subj, loss, fam, dev, fmt)
            c = cells.get(key)
            if c is None:
                row["cells"].append(None)
                continue
            rate = C.cr_rate(c)
            if c["elements"]:
                cls, label = c["worst"], _ulp_text(c)
            elif c["reported"]:
                cls, label = "reported", "dev"
            elif c["not_supported"]:
                cls, label = "none", "n/s"
            else:
                cls, label = "none", "-"
            row["cells"].append({"anchor": C.anchor(key), "cls": cls, "label": label,
                                 "rate": f"{rate:.1f}%" if rate is not None else "",
                                 "title": f"{C.key_text(key)}: worst {c['worst'] or '-'}, {c['records']} records, "
                                          f"{c['elements']} gating numbers compared"
                                          + (f", {c['reported']} reported-only" if c["reported"] else ""),
                                 "reported": c["reported"], "reported_worst": c["reported_worst"]})
        table.append(row)

    # a section per cell
    sections = []
    n_plot_points = 0
    for key in sorted(cells, key=lambda k: (k[1], k[2], _col_key((k[0], k[4], k[3])))):
        c = cells[key]
        recs = by_cell[key]
        pts, unplotted = [], 0
        for r in recs:
            w = r.get("worst")
            x = magnitude(r) if w else None
            if x is None or not isinstance(w.get("bits"), (int, float)) or math.isnan(w["bits"]):
                unplotted += 1 if w else 0
                continue
            pts.append((x, float(w["bits"]), r.get("verdict")))
        svg = plot_svg(pts, f"p{len(sections)}-") if pts else None
        n_plot_points += len(pts)
        failing = sorted((r for r in recs if r.get("elements")), key=_badness)[:MAX_CELL_REPRODUCERS]
        worst = []
        for i, r in enumerate(failing):
            big = ((r.get("worst") or {}).get("input_numbers") or 0) > BIG_REPRODUCER
            worst.append(worst_row(r, with_code=(i == 0 or not big)))
        rate = C.cr_rate(c)
        sections.append({
            "key": key, "anchor": C.anchor(key), "title": C.key_text(key), "cell": c,
            "subject": key[0], "loss": key[1], "family": key[2], "device": key[3], "format": key[4],
            "ulp": _ulp_text(c), "rate": f"{rate:.2f}%" if rate is not None else "-",
            "reported_ulp": C.fmt_ulp(c["reported_max_ulp"]) if c["reported"] else "-",
            "svg": svg, "plotted": len(pts), "unplotted": unplotted, "worst": worst,
            "properties": _property_outcomes(recs),
            "deviations": sorted(c["deviations"].items()),
        })

    # impact margin: every record, any source, per cell
    impact = {}
    for r in records:
        if not r.get("elements") or r.get("verdict") not in FAILING:
            continue
        k = C.cell_key(r)
        e = impact.setdefault(k, {"failing": 0, "missed": 0, "gating": 0, "gating_missed": 0, "max_missed": 0.0})
        e["failing"] += 1
        ok = assert_close_passes(r)
        if r.get("gating"):
            e["gating"] += 1
        if ok:
            e["missed"] += 1
            if r.get("gating"):
                e["gating_missed"] += 1
            e["max_missed"] = max(e["max_missed"], _ulp_value(r))
    impact_rows = [{"title": C.key_text(k), "anchor": C.anchor(k) if k in cells else None, "format": k[4],
                    "rtol": ASSERT_CLOSE.get(k[4], (None, None))[0], "atol": ASSERT_CLOSE.get(k[4], (None, None))[1],
                    **e, "max_missed": C.fmt_ulp(e["max_missed"]) if e["missed"] else "-"}
                   for k, e in sorted(impact.items(), key=lambda kv: (-kv[1]["missed"], kv[0]))]

    # Hypothesis findings, seed cases
    hyp = [r for r in records if r.get("source") == "hypothesis"]
    hyp_fail = sorted((r for r in hyp if r.get("elements") and r.get("verdict") in FAILING), key=_badness)
    hyp_cells = C.summarize(hyp)
    hyp_summary = [{"title": C.key_text(k), "records": c["records"], "worst": c["worst"],
                    "ulp": _ulp_text(c), "reported": c["reported"], "reported_worst": c["reported_worst"],
                    "failing": len(c["failing"])}
                   for k, c in sorted(hyp_cells.items(), key=lambda kv: tuple(map(str, kv[0])))]
    seeds = [worst_row(r) for r in records if str(r.get("property") or "").startswith("seed")]

    dev_rows, dev_note = _deviation_rows(records)
    zoo = _zoo(_load_optional(zoo_path, "detection table (lossproof detect --json)"))
    wk = _worst_known(_load_optional(worst_known_path, "worst-known table"))

    sources = {}
    for r in records:
        sources[r.get("source")] = sources.get(r.get("source"), 0) + 1
    return {
        "title": "lossproof accuracy report",
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "runs": _runs(doc), "n_records": len(records), "sources": sorted(sources.items(), key=lambda kv: str(kv[0])),
        "basis_is_corpus": bool(corpus), "n_basis": len(basis),
        "cols": [{"subject": s, "format": f, "device": d} for s, f, d in cols], "table": table,
        "sections": sections, "n_plot_points": n_plot_points,
        "properties": _property_outcomes(records),
        "hyp_count": len(hyp), "hyp_summary": hyp_summary,
        "hyp_fail": [worst_row(r) for r in hyp_fail[:MAX_LISTED]], "hyp_fail_total": len(hyp_fail),
        "deviations": dev_rows, "deviation_note": dev_note,
        "seeds": seeds[:MAX_LISTED], "seed_total": len(seeds),
        "impact": impact_rows, "assert_close": ASSERT_CLOSE, "assert_close_doc": ASSERT_CLOSE_DOC,
        "zoo": zoo, "worst_known": wk, "sweeps": _sweep_rows(doc),
        "verdicts": [(v, VERDICT_SHORT[v], VERDICT_TEXT[v]) for v in VERDICTS],
        "max_points": MAX_POINTS,
        "point_colours": [(VERDICT_SHORT[v], c) for v, c in POINT_COLOURS.items()],
    }
