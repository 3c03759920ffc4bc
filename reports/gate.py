"""The regression gate: a run's corpus cells against a committed baseline's, environment by environment.

Cells are ``reports.cells`` cells (subject, loss, parameter family, device, format) over the records whose source
is "corpus" (the reproducible regression corpus; Hypothesis's search is not repeatable run to run and never gates).

**Environments.** A subject's numbers depend on the kernels it runs, and those on more than its code: torch
dispatches other kernels on a CPU with AVX-512 than on one with AVX2 (``ATEN_CPU_CAPABILITY``), splits reductions
by its thread count, NumPy dispatches by the CPU's SIMD extensions (``reports.environment``). A baseline therefore
holds one set of cells per environment, and a run's records are grouped by the environment of the run that made
them. Against a baseline of the **same environment** everything below is compared. Against a baseline of **another
environment** only what does not depend on the kernels is: the verdict rungs of NUMERICS.md, which are decided by
the derived bounds (a case that falls below its subject's pass line where no baseline environment had it there,
a cell that compares nothing any more, a missing cell), never ULP counts or rates; the gate says so in one line.

A change is a **regression** when, in a cell:

- a case (corpus case id and property) fails (below the pass line: broken or unstable) and did not, or fails worse
  (unstable to broken);
- (same environment) the max ULP error of the gating numbers grew by more than max(1 ULP, 10%) (finite to inf
  counts);
- (same environment) the correctly rounded rate fell by more than 1 percentage point;
- the baseline compared numbers and the run compares none (the cell became not supported, skipped, unresolved);
- the baseline's cell is missing from the run (unless ``allow_missing``: another CI job measures it).

The same changes the other way are **improvements**; a cell the baseline lacks is **new**. Neither fails the gate.

A run's cell that compared numbers but **none that gate** (every record reported only: each case under a documented
deviation or with non-finite inputs) is a **corpus error**, not a result: the gate could not see a regression there
(torch's binary_cross_entropy was such a cell: every corpus case held p = 0 or 1, under the -100 clamp, and a
doubled gradient passed). ``gate`` and ``updated`` refuse such a run with ``CorpusError`` (one line; the command
exits 2), naming the cells; the corpus needs a case outside every deviation's condition there
(lossproof/corpus/build.py; tests/meta/test_corpus_build.py checks that every cell has one).

Baseline file (``BASELINE_SCHEMA`` version 2): a compact, reviewable summary of the cells, one JSON object::

    {"schema": "lossproof-baseline", "version": 2, "created": ISO-8601 UTC,
     "environments": [{"id": reports.environment.environment_id, "environment": the kernel fields,
                       "description": one line, "created": ISO-8601 UTC, "runs": [the results' runs],
                       "cells": [{"subject", "loss", "family", "device", "format",
                                  "records", "compared", "skipped", "not_supported", "unresolved",
                                  "elements", "correctly_rounded", "max_ulp", "worst", "verdicts": {verdict: records},
                                  "failing": {"case_id::property": verdict}, "reported", "reported_worst",
                                  "reported_max_ulp", "deviations": {id: records}}, ...]}, ...]}

``--update`` adds the run's environments to the baseline or replaces theirs, and keeps every other environment.
A version 1 baseline (one set of cells, no environment) is read as the cells of an unknown environment, and a
results document is accepted as a baseline too (its corpus cells, by environment). ``write_baseline`` writes
atomically, sorted, one cell per line, so a change to it reads well in a diff.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass, field

from lossproof.verdicts import RANK
from reports import cells as C
from reports import environment as E
from reports import schema

BASELINE_SCHEMA = "lossproof-baseline"
BASELINE_VERSION = 2

ULP_ABS = 1.0  # max ULP may grow by max(ULP_ABS, ULP_REL * baseline) before it regresses
ULP_REL = 0.10
CR_POINTS = 1.0  # percentage points of correctly rounded numbers


class CorpusError(schema.ResultsError):
    """A run's corpus cell with no gating numbers (module docstring): the gate cannot judge it."""


def blind_cells(cells: dict) -> list:
    """The keys of the cells that compared numbers but none that gate (every record reported only), sorted."""
    return sorted((k for k, c in cells.items() if c.get("compared", 0) > 0 and c.get("elements", 0) == 0),
                  key=lambda k: tuple(map(str, k)))


def check_gating(results_doc: dict) -> None:
    """CorpusError (one line) when a corpus cell of ``results_doc`` compared numbers but none that gate."""
    blind = [(k, env.cells[k]) for env in environments_of(results_doc) for k in blind_cells(env.cells)]
    if not blind:
        return
    shown = "; ".join(f"{C.key_text(k)} ({c['compared']} records, all reported only"
                      + (f": {', '.join(sorted(c['deviations']))}" if c.get("deviations") else "") + ")"
                      for k, c in blind[:4])
    more = f"; and {len(blind) - 4} more" if len(blind) > 4 else ""
    raise CorpusError(f"corpus error: {len(blind)} cell{'s' if len(blind) > 1 else ''} with no gating numbers, "
                      f"where the gate cannot see a regression: {shown}{more}; the corpus needs cases outside "
                      f"every documented deviation's condition there (lossproof/corpus/build.py)")


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
    notes: list = field(default_factory=list)  # one line per environment compared by rungs only

    @property
    def ok(self) -> bool:
        return not self.regressions

    def extend(self, other: "GateResult") -> None:
        self.regressions += other.regressions
        self.improvements += other.improvements
        self.new += other.new
        self.compared += other.compared
        self.notes += other.notes


@dataclass
class Environment:
    """One environment's cells: a baseline's, or a run's corpus records grouped by their run's environment."""

    id: str
    environment: dict
    cells: dict  # {cell key: cell}
    runs: list = field(default_factory=list)
    created: str | None = None

    @property
    def description(self) -> str:
        return E.describe(self.environment)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------------------------
# reading and writing baselines


def _cells_of_list(cells: list) -> dict:
    out = {}
    for c in cells:
        key = tuple(c[f] for f in C.KEY_FIELDS)
        out[key] = {**C.new_cell(key), **c}
    return out


def environments_of(doc: dict) -> list:
    """[Environment] of a baseline document (either version) or of a results document's corpus records."""
    if doc.get("schema") == BASELINE_SCHEMA:
        if doc.get("version") == 1:
            return [Environment("unknown", {}, _cells_of_list(doc["cells"]), doc.get("runs") or [], doc.get("created"))]
        return [Environment(e["id"], e.get("environment") or {}, _cells_of_list(e["cells"]), e.get("runs") or [],
                            e.get("created")) for e in doc["environments"]]
    runs = {r.get("id"): r for r in doc.get("runs") or []}
    groups = {}
    for rec in C.corpus_records(doc):
        env = (runs.get(rec.get("run")) or {}).get("environment") or {}
        eid = E.environment_id(env)
        g = groups.get(eid)
        if g is None:
            g = groups[eid] = Environment(eid, E.kernel_fields(env), {}, [])
        run = runs.get(rec.get("run"))
        if run is not None and run not in g.runs:
            g.runs.append(run)
        k = C.cell_key(rec)
        c = g.cells.get(k)
        if c is None:
            c = g.cells[k] = C.new_cell(k)
        C.add(c, rec)
    return list(groups.values())


def cells_of(doc: dict) -> dict:
    """{key: cell} of a document with one environment (tests and single-machine tools); several are merged with
    the first environment's cells winning."""
    out = {}
    for env in environments_of(doc):
        for k, c in env.cells.items():
            out.setdefault(k, c)
    return out


def _malformed(path, what):
    return schema.ResultsError(f"{path}: malformed baseline ({what})")


def load_baseline(path: str) -> dict:
    """A baseline (or results) document, or ResultsError with one clear line."""
    doc = schema.read_json(path, "baseline file")  # one line for every way a file can be unreadable
    if not isinstance(doc, dict):
        raise schema.ResultsError(f"{path}: not a lossproof baseline or results file")
    if doc.get("schema") == schema.SCHEMA_NAME:
        return schema.load(path)  # its own checks and messages
    if doc.get("schema") != BASELINE_SCHEMA:
        raise schema.ResultsError(f"{path}: not a lossproof baseline or results file")
    version = doc.get("version")
    if version not in (1, BASELINE_VERSION):
        raise schema.ResultsError(f"{path}: baseline schema version {version!r}, this lossproof reads versions 1 "
                                  f"and {BASELINE_VERSION}")

    def check_cells(cells):
        if not isinstance(cells, list) or not all(isinstance(c, dict) and all(f in c for f in C.KEY_FIELDS)
                                                  for c in cells):
            raise _malformed(path, f"cells must be a list of objects with {', '.join(C.KEY_FIELDS)}")
        for c in cells:
            for f, kind in (("records", int), ("elements", int), ("correctly_rounded", int), ("max_ulp", (int, float)),
                            ("failing", dict)):
                if f in c and (not isinstance(c[f], kind) or isinstance(c[f], bool)):
                    raise _malformed(path, f"cell {C.key_text(tuple(c[k] for k in C.KEY_FIELDS))}: {f} is "
                                           f"{type(c[f]).__name__}")

    if version == 1:
        check_cells(doc.get("cells"))
    else:
        envs = doc.get("environments")
        if not isinstance(envs, list) or not all(isinstance(e, dict) and isinstance(e.get("id"), str) for e in envs):
            raise _malformed(path, "environments must be a list of objects with an id")
        for e in envs:
            check_cells(e.get("cells"))
    return doc


def _env_entry(env: Environment) -> dict:
    out = []
    for key in sorted(env.cells, key=lambda k: tuple(str(x) for x in k)):
        c = dict(env.cells[key])
        c["failing"] = dict(sorted(c["failing"].items()))
        out.append(c)
    return {"id": env.id, "environment": env.environment, "description": env.description,
            "created": env.created or _now(),
            "runs": [{k: r.get(k) for k in ("id", "command", "profile", "started", "environment")} for r in env.runs],
            "cells": out}


def baseline_document(envs: list) -> dict:
    """A baseline document of ``envs`` (Environment), sorted by id."""
    return {"schema": BASELINE_SCHEMA, "version": BASELINE_VERSION, "created": _now(),
            "environments": [_env_entry(e) for e in sorted(envs, key=lambda e: e.id)]}


def updated(baseline_doc: dict | None, results_doc: dict, allow_missing: bool = False) -> tuple:
    """(the baseline with the results' environments added or replaced, every other environment kept; a line per
    environment saying what was done). ``allow_missing`` keeps a replaced environment's cells that the results
    lack (another job measures them). CorpusError when a results cell has no gating numbers."""
    check_gating(results_doc)
    old = {e.id: e for e in environments_of(baseline_doc)} if baseline_doc is not None else {}
    lines = []
    for env in environments_of(results_doc):
        env.created = _now()
        prev = old.get(env.id)
        if prev is not None and allow_missing:
            for k, c in prev.cells.items():
                env.cells.setdefault(k, c)
        lines.append(f"{'replaced' if prev else 'added'} the baseline of {env.description} ({env.id}, "
                     f"{len(env.cells)} cells)")
        old[env.id] = env
    return baseline_document(list(old.values())), lines


def dumps_baseline(doc: dict) -> str:
    """JSON with one cell per line (diffs stay readable)."""
    head = {k: v for k, v in doc.items() if k != "environments"}
    parts = []
    for e in doc["environments"]:
        ehead = {k: v for k, v in e.items() if k != "cells"}
        body = ",\n".join("    " + json.dumps(c, sort_keys=True) for c in e["cells"])
        eh = json.dumps(ehead, sort_keys=True)[:-1]  # drop the closing brace
        parts.append(f'  {eh}, "cells": [\n{body}\n  ]}}')
    text = json.dumps(head, indent=1, sort_keys=True)[:-2]  # drop the closing "\n}"
    return f'{text},\n "environments": [\n' + ",\n".join(parts) + "\n ]\n}\n"


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
    """Same-environment comparison of two {key: cell} maps: verdicts, ULP counts and rates."""
    res = GateResult()
    for key, b in base.items():
        n = new.get(key)
        if n is None:
            if not allow_missing:
                res.regressions.append(Change("regression", key, "cell missing from the results",
                                              f"{b['records']} records", "-"))
            continue
        res.compared += 1
        _compare_failing(key, b.get("failing") or {}, n.get("failing") or {}, res)
        if _compared_nothing(key, b.get("elements", 0), n, res):
            continue
        _compare_numbers(key, b, n, res)
    _list_new(base, new, res)
    return res


def compare_rungs(bases: list, new: dict, allow_missing: bool = False) -> GateResult:
    """Cross-environment comparison of a run's cells with the cells of every baseline environment in ``bases``:
    only verdict rungs (decided by the derived bounds), never ULP counts or rates. A case fails worse than it did
    in every baseline environment, a cell every environment compared compares nothing, or a cell every environment
    has is missing."""
    res = GateResult()
    keys = set().union(*(b.keys() for b in bases)) if bases else set()
    common = set.intersection(*(set(b) for b in bases)) if bases else set()
    for key in sorted(keys, key=lambda k: tuple(map(str, k))):
        n = new.get(key)
        if n is None:
            if key in common and not allow_missing:
                res.regressions.append(Change("regression", key, "cell missing from the results",
                                              "in every baseline environment", "-"))
            continue
        res.compared += 1
        known = {}  # the worst verdict each case had in any baseline environment (a case absent passed there)
        for b in bases:
            for case, v in ((b.get(key) or {}).get("failing") or {}).items():
                known[case] = C.worse(known.get(case), v)
        _compare_failing(key, known, n.get("failing") or {}, res, improvements=False)
        elements = min((b[key].get("elements", 0) for b in bases if key in b), default=0)
        _compared_nothing(key, elements, n, res)
    _list_new({k: None for k in keys}, new, res)
    return res


def _compare_failing(key, bf: dict, nf: dict, res: GateResult, improvements: bool = True) -> None:
    for case, v in sorted(nf.items()):
        old = bf.get(case)
        if old is None or RANK[v] < RANK.get(old, 99):
            res.regressions.append(Change("regression", key, f"new {v} verdict: {case}", old or "passing", v))
    if not improvements:
        return
    for case, old in sorted(bf.items()):
        v = nf.get(case)
        if v is None:
            res.improvements.append(Change("improvement", key, f"no longer {old}: {case}", old,
                                           "passing (or not measured)"))
        elif RANK[v] > RANK.get(old, -1):
            res.improvements.append(Change("improvement", key, f"{old} -> {v}: {case}", old, v))


def _compared_nothing(key, base_elements: int, n: dict, res: GateResult) -> bool:
    """True (a regression recorded) when the baseline compared numbers in the cell and the run compares none."""
    if base_elements > 0 and n.get("elements", 0) == 0:
        res.regressions.append(Change("regression", key, "no gating numbers compared any more (not supported, "
                                      "skipped, unresolved or all reported-only)", f"{base_elements} numbers", "0"))
        return True
    return False


def _compare_numbers(key, b, n, res: GateResult) -> None:
    reg, imp = res.regressions.append, res.improvements.append
    if not b.get("elements") or not n.get("elements"):
        return
    bu, nu = float(b["max_ulp"]), float(n["max_ulp"])
    if not (math.isinf(bu) and math.isinf(nu)):
        if nu > bu + _ulp_margin(bu):
            reg(Change("regression", key, f"max ULP grew by more than max(1, 10%) (limit "
                       f"{C.fmt_ulp(bu + _ulp_margin(bu))})", C.fmt_ulp(bu), C.fmt_ulp(nu)))
        elif nu < bu - _ulp_margin(bu):
            imp(Change("improvement", key, "max ULP fell by more than max(1, 10%)", C.fmt_ulp(bu), C.fmt_ulp(nu)))
    br, nr = C.cr_rate(b), C.cr_rate(n)
    if nr < br - CR_POINTS:
        reg(Change("regression", key, "correctly rounded rate fell by more than 1 point", f"{br:.2f}%", f"{nr:.2f}%"))
    elif nr > br + CR_POINTS:
        imp(Change("improvement", key, "correctly rounded rate rose by more than 1 point", f"{br:.2f}%",
                   f"{nr:.2f}%"))


def _list_new(base: dict, new: dict, res: GateResult) -> None:
    for key, n in new.items():
        if key not in base:
            res.new.append(Change("new", key, "cell not in the baseline", "-",
                                  f"max {C.fmt_ulp(n['max_ulp'])} ULP, {_rate(n)} CR, worst {n['worst'] or '-'}"))


def gate(baseline_doc: dict, results_doc: dict, allow_missing: bool = False) -> GateResult:
    """Regressions and improvements of ``results_doc``'s corpus cells against ``baseline_doc`` (a baseline or a
    results document), environment by environment: numbers against a baseline of the same environment, verdict
    rungs only against the others (a note says so). CorpusError (one line) when a corpus cell of the results
    compared numbers but none that gate (module docstring)."""
    check_gating(results_doc)
    bases = environments_of(baseline_doc)
    by_id = {b.id: b for b in bases}
    res = GateResult()
    for env in environments_of(results_doc):
        same = by_id.get(env.id)
        if same is not None:
            res.extend(compare_cells(same.cells, env.cells, allow_missing))
            continue
        res.extend(compare_rungs([b.cells for b in bases], env.cells, allow_missing))
        others = "; ".join(f"{b.description} ({b.id})" for b in bases) or "none"
        res.notes.append(f"no baseline for this environment, {env.description} ({env.id}): compared verdict rungs "
                         f"and derived bounds only, not ULP counts or rates (baseline environments: {others}); "
                         f"`lossproof gate --update` adds it")
    return res


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
