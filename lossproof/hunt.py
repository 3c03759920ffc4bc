"""Worst-case hunt: the inputs on which an implementation is furthest from the exact value, as Zimmermann et al.
search libm worst cases.

    lossproof hunt LOSS TARGET [--framework torch|numpy] [--format F] [--budget SECONDS] [--top N]
                   [--seed S] [--record PATH]

TARGET is ``torch`` (torch's own function for LOSS) or a user function (``path/file.py:function`` or
``module:function``). Two searches share the budget:

1. Hypothesis' targeted search (``hypothesis.target`` on the bits of error of each drawn problem, from the
   battery's strategies, ``lossproof/problems.py``): it climbs toward inputs with more bits of error;
2. a local search over the input encodings: each floating-point input element of the best problems found is moved
   by +-2**k positions in the ordered list of the format's values (its integer bit pattern), k from the format's
   width down to 0, keeping any move that increases the error. For an error that grows across a threshold (an
   overflow, an underflow, a cancellation) the halving steps bisect toward the threshold's worst side.

Inputs under a documented deviation of the subject (subjects/deviations.py) are skipped: they are known. Every
evaluation is measured against the exact oracle (``lossproof.measure``: value and gradient components, ULP
error and bits of error as NUMERICS.md defines them). The worst inputs are printed with their errors and exact hex
inputs; ``--record PATH`` merges them into a worst-known table (JSON, written atomically), one entry per loss x
target x format. Exit 0 (a hunt reports, it does not judge), 2 on a usage error.

``--promote DIR`` adds the worst inputs that miss the pass line to a corpus of your own (DIR/promoted.json), so
every later run that reads it (``--lossproof-corpus DIR``) measures them.
"""

from __future__ import annotations

import json
import math
import os
import time

import torch
from hypothesis import HealthCheck, given, settings, target
from hypothesis import seed as hseed
from hypothesis import strategies as st

from oracles import OraclePrecisionError
from oracles.codec import float_tree, hex_tree, unhex_tree
from oracles.formats import from_ordinal, get_format, ordinal
from reports import atomic
from subjects import deviations
from subjects.torch_subject import upstream
from subjects.user import load

from . import catalogue, corpus
from .cases import NotSupported, restrict, torch_cases, user_cases
from .measure import measure
from .problems import finite_except_masks, problems
from .verdicts import RANK, passes

TREE_KEYS = ("input", "other", "weight", "pos_weight", "target")


class _Deadline:
    """The end of a phase's share of the budget: ``over()`` reads the clock until the end has passed, then never
    again, so every loop of the phase that asks stops within one reading of its share (a loop over the remaining
    coordinates read the clock once each after the end: up to 64 readings past it)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.passed = False

    def over(self) -> bool:
        if not self.passed:
            self.passed = time.monotonic() > self.end
        return self.passed


class _Spent(BaseException):
    """The Hypothesis phase's share of the budget is over (a BaseException: Hypothesis does not take it for a
    failure)."""


def case_of(loss, target, framework, fmt, device="cpu", user=None):
    """The case hunted: torch's own function for ``loss`` (``target`` "torch") or a user's function (``user``: its
    subject, loaded under its conventions; default: loaded with torch's)."""
    if target == "torch":
        for c in torch_cases(False):
            if c.loss == loss and c.fmt == fmt and c.device == device:
                return c
        raise ValueError(f"torch has no case for {loss} in {fmt}")
    for c in user_cases(user if user is not None else load(f"{loss}={target}", framework), False):
        if c.fmt == fmt and c.device == device:
            if c.skip:
                raise ValueError(c.skip)
            return c
    raise ValueError(f"no case for {target} in {fmt}")


def _element_key(e):
    """How bad one element is: its verdict first (broken, unstable, ... as the suite ranks them), then its ULP
    error where the exact value is not zero (at an exact zero every nonzero result is ~2**149 ULP away, which says
    nothing the verdict does not), then its bits of error."""
    u = e.ulp_error if not math.isnan(e.ulp_error) else math.inf
    if e.z_rounded == 0 and math.isfinite(u):
        u = 0.0
    return (len(RANK) - RANK[e.verdict], u, e.bits)


def _score(m):
    """The key of the worst element of a measurement (and that element)."""
    w = max(m.elements, key=_element_key, default=None)
    if w is None:
        return (-1, -1.0, -1.0), None
    return _element_key(w), w


def _strategy(loss, fmt):
    """The battery's strategies at hunting sizes: up to 64 classes and 2 rows, so that each evaluation costs
    milliseconds and the budget buys thousands."""
    return problems(loss, fmt, max_classes=64, max_batch=2, allow_spatial=False, large_share=0.0)


class Hunter:
    """Evaluates candidate inputs for one case and keeps the worst distinct ones."""

    def __init__(self, case, top=10):
        self.case = case
        self.top = top
        self.board = {}  # repr(kwargs) -> entry
        self.evaluations = 0
        self.documented = 0

    def evaluate(self, kwargs):
        """Measure ``kwargs``; returns its score, or None when the subject or the oracle cannot take it."""
        key = repr(kwargs)
        if key in self.board:
            return self.board[key]["score"]
        if deviations.matching(self.case.subject, self.case.loss, kwargs, self.case.fmt):
            self.documented += 1  # a documented deviation (subjects/deviations.py): known, not a new worst case
            return None
        try:
            values, grads = self.case.call(kwargs)
            up = upstream(len(values)) if self.case.framework in ("torch", "jax") else None
            m = measure(self.case.subject, self.case.loss, self.case.fmt, self.case.device, kwargs, values, grads,
                        upstream=up)
        except (NotSupported, NotImplementedError, OraclePrecisionError, ValueError, RuntimeError,
                IndexError, TypeError):
            return None
        self.evaluations += 1
        score, w = _score(m)
        if w is None:
            return None
        entry = {"score": score, "kwargs": kwargs, "element": w, "verdict": m.verdict}
        self._keep(key, entry)
        return score

    def _keep(self, key, entry):
        self.board[key] = entry
        if len(self.board) > 20 * self.top:  # prune, keeping the best
            keep = sorted(self.board.items(), key=lambda kv: kv[1]["score"], reverse=True)[:5 * self.top]
            self.board = dict(keep)

    def worst(self, n=None):
        """The worst entries, one per distinct (element, result, exact value): moves of an input element that
        leave the worst element's error as it was are the same finding."""
        out, seen = [], set()
        for e in sorted(self.board.values(), key=lambda e: e["score"], reverse=True):
            w = e["element"]
            sig = (w.kind, w.index, w.y, w.z_rounded)
            if sig in seen:
                continue
            seen.add(sig)
            out.append(e)
            if len(out) == (n or self.top):
                break
        return out


def hypothesis_phase(hunter, seconds, seed=0):
    """Hypothesis' targeted search on bits of error, for ``seconds``."""
    case = hunter.case
    strategy = _strategy(case.loss, case.fmt)
    deadline = _Deadline(seconds)

    @hseed(seed)
    @settings(max_examples=10**6, deadline=None, database=None, derandomize=False, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def search(data):
        kw = data.draw(strategy, label="problem")
        if deadline.over():
            raise _Spent()
        kw = restrict(case, kw)
        if kw is None or not finite_except_masks(case.loss, kw):
            return
        s = hunter.evaluate(kw)
        if s is not None:
            target(s[2], label="bits of error")
            target(min(s[1], 1e300), label="ULP error")

    try:
        search()
    except _Spent:
        pass


def _leaves(kwargs, loss):
    """Paths (key, indices...) of the finite floating-point input elements that the local search moves."""
    out = []
    for k in TREE_KEYS:
        if k not in kwargs or kwargs[k] is None:
            continue
        if k == "target" and catalogue.is_index_target(loss, kwargs):
            continue

        def walk(v, path):
            if isinstance(v, list):
                for i, x in enumerate(v):
                    walk(x, path + (i,))
            elif isinstance(v, float) and math.isfinite(v):
                out.append(path)

        walk(kwargs[k], (k,))
    return out


def _get(kwargs, path):
    v = kwargs[path[0]]
    for i in path[1:]:
        v = v[i]
    return v


def _set(kwargs, path, value):
    out = dict(kwargs)
    out[path[0]] = _copy(out[path[0]])
    v = out[path[0]]
    for i in path[1:-1]:
        v = v[i]
    v[path[-1]] = value
    return out


def _copy(v):
    return [_copy(x) for x in v] if isinstance(v, list) else v


def _admissible(loss, key, value):
    """Values the input's meaning allows: probabilities in [0, 1], nonnegative weights and targets."""
    if key == "target" or (key == "input" and loss == "binary_cross_entropy"):
        return 0.0 <= value <= 1.0
    if key in ("weight", "pos_weight"):
        return value >= 0.0
    if key == "other":
        return value >= 0.0
    return True


def local_phase(hunter, seconds, starts=3, max_coords=64):
    """Pattern search over the encodings of the best problems' input elements: moves of +-2**k ordinals, k from the
    format's width down to 0, greedy (a move that raises the error is kept and tried again)."""
    f = get_format(hunter.case.fmt)
    width = f.max_ordinal.bit_length()
    deadline = _Deadline(seconds)
    for entry in hunter.worst(starts):
        if deadline.over():
            break
        best = entry["kwargs"]
        best_score = entry["score"]
        if best_score[0] == len(RANK) - RANK["broken"]:
            continue  # already broken: no worse to find
        coords = _leaves(best, hunter.case.loss)[:max_coords]
        improved = True
        while improved and not deadline.over():
            improved = False
            for path in coords:
                k = width
                while k >= 0 and not deadline.over():
                    moved = False
                    for sign in (1, -1):
                        x = _get(best, path)
                        o = ordinal(x, f) + sign * (1 << k)
                        if abs(o) > f.max_ordinal:
                            continue
                        v = from_ordinal(o, f)
                        if not _admissible(hunter.case.loss, path[0], v):
                            continue
                        cand = _set(best, path, v)
                        s = hunter.evaluate(cand)
                        if s is not None and s > best_score:
                            best, best_score, moved, improved = cand, s, True, True
                            break
                    if not moved:
                        k -= 1
                    if best_score[0] == len(RANK) - RANK["broken"]:
                        break


def hunt(case, budget=60.0, seed=0, top=10, log=None) -> dict:
    """Search ``budget`` seconds (half Hypothesis, half the encodings) and return the worst-known entries."""
    hunter = Hunter(case, top)
    t0 = time.monotonic()
    hypothesis_phase(hunter, budget / 2, seed)
    if log:
        log(f"hypothesis phase: {hunter.evaluations} evaluations in {time.monotonic() - t0:.1f} s")
    t1 = time.monotonic()
    local_phase(hunter, max(0.0, budget - (t1 - t0)))
    if log:
        log(f"encoding search: {hunter.evaluations} evaluations in all, {time.monotonic() - t0:.1f} s")
    return {"loss": case.loss, "subject": case.subject, "format": case.fmt, "device": case.device,
            "budget_seconds": budget, "seed": seed, "evaluations": hunter.evaluations,
            "skipped_documented_deviations": hunter.documented,
            "seconds": round(time.monotonic() - t0, 1),
            "worst": [_entry(case, e) for e in hunter.worst()]}


def _entry(case, e):
    w = e["element"]
    return {"ulp": w.ulp_error if math.isfinite(w.ulp_error) else "inf", "bits": round(w.bits, 2),
            "verdict": e["verdict"], "element_verdict": w.verdict, "kind": w.kind, "index": list(w.index),
            "y": float_tree(w.y), "y_hex": hex_tree(w.y), "exact": w.z, "input_hex": hex_tree(e["kwargs"]),
            "input": float_tree(e["kwargs"])}


def format_table(result) -> str:
    lines = [f"worst inputs of {result['subject']} {result['loss']} in {result['format']} on {result['device']} "
             f"({result['evaluations']} evaluations in {result['seconds']} s)",
             f"{'#':>3} {'ULP':>12} {'bits':>6} {'verdict':12} {'element':14} {'got':>24} exact / input (hex)"]
    for i, e in enumerate(result["worst"], 1):
        ulp = e["ulp"] if isinstance(e["ulp"], str) else f"{e['ulp']:.3g}"
        el = f"{e['kind']}{tuple(e['index'])}"
        lines.append(f"{i:>3} {ulp:>12} {e['bits']:>6} {e['element_verdict']:12} {el:14} {e['y']!s:>24} {e['exact']}")
        lines.append(f"{'':4}input {json.dumps(e['input_hex'])[:600]}")
    return "\n".join(lines)


def record(path, result):
    """Merge ``result`` into the worst-known table at ``path`` (one entry per loss x subject x format x device),
    keeping the worse of the old and new worst input, and write it atomically."""
    data = {"entries": []}
    if os.path.exists(path):
        with open(path) as fh:
            data = json.load(fh)
    key = (result["loss"], result["subject"], result["format"], result["device"])

    def rank(r):
        if not r["worst"]:
            return (-1, -1.0, -1.0)
        w = r["worst"][0]
        u = math.inf if w["ulp"] == "inf" else w["ulp"]
        return (len(RANK) - RANK[w["element_verdict"]], u, w["bits"])

    kept = []
    replaced = False
    for r in data.get("entries", []):
        if (r["loss"], r["subject"], r["format"], r["device"]) == key:
            replaced = True
            kept.append(result if rank(result) >= rank(r) else r)
        else:
            kept.append(r)
    if not replaced:
        kept.append(result)
    data = {"about": "worst-known inputs found by lossproof hunt (ULP and bits of error against the exact oracle, "
                     "NUMERICS.md); one entry per loss x subject x format x device",
            "torch": torch.__version__, "entries": kept}
    atomic.write_json(path, data, indent=1)


def promote(result, directory: str) -> list:
    """Put the result's failing worst inputs (verdict below stable) into the corpus at ``directory``:
    [(id, added)]."""
    out = []
    for e in result["worst"]:
        if passes(e["element_verdict"]):
            continue
        note = (f"lossproof hunt {result['loss']} {result['subject']} --format {result['format']}: "
                f"{e['element_verdict']}, {e['ulp']} ULP ({e['kind']} {e['index']})")
        kwargs = unhex_tree(e["input_hex"], keep=("none", "mean", "sum", "batchmean"))
        out.append(corpus.promote(result["loss"], result["format"], kwargs, note, directory))
    return out
