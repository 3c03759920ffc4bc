"""Exhaustive sweeps: every input of a format through a subject's univariate function, value and derivative,
against the certified oracle (oracles/univariate.py), summarised as one row in the manner of Zimmermann et al.'s
*Accuracy of Mathematical Functions*: the largest error in ULP with its input, the correctly rounded share and the
verdict counts of the ladder (docs/NUMERICS.md), per quantity.

Each input is measured as the one-element call ``f([x])`` of the battery (lossproof.measure), with its own
definitions: the ULP error |y - z| / ulp(z), "correctly rounded" y == RN(z) with the sign of a zero, the stable
allowance K u S (|z| + 1) (+ S s_min / 2) of oracles/bounds.py (S from ``bounds.steps``), the gradient's
K u (S + 2) (|g| + G) with G = max(|g|, 1) (the normwise scale of a one-element call), and the accurate allowance
K u (|z| + kappa) + s_min with the oracle's kappa = |x f'(x)| for values and lossproof.conditioning's kappa_g for
derivatives. The derivative is the gradient of sum(output) (upstream 1: a one-element call's).

Vectorised, with the exact path wherever a vectorised answer could differ from it: the roundings the fast stages
cannot decide, the infinite inputs, and every comparison within 2**-30 (relative) of its allowance are measured by
``lossproof.measure.measure`` itself, one input at a time; so is the input of each row's largest error, so the
reported maximum is the exact one. NaN inputs have NaN as their exact value: a NaN result is correctly rounded,
anything else broken (measure's rule for a special value).

Documented deviations (subjects/deviations.py) apply per element as in the battery (lossproof.judge): an element
below the pass line that a deviation of the subject covers and whose documented oracle it meets is counted under
the deviation's id (``explained``) and does not gate; its verdict against the exact value is counted as measured.

A subject joins by one entry in ``SUBJECTS``: a name, the formats it has, and a factory that returns, for a
function and a format, a vectorised callable from a binary64 array of format values to (values, derivatives or
None) as binary64 arrays: one call on the whole chunk, not one per input.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from oracles import bounds, univariate
from oracles.codec import hexf
from oracles.formats import get_format
from reports import atomic
from subjects import array_subject, deviations, numpy_losses

from .measure import measure
from .verdicts import PASS_LINE, RANK, VERDICTS, worst

__all__ = ["FUNCTIONS", "FORMATS", "SUBJECTS", "SweepSubject", "NotSupported", "inputs", "size", "sweep_range",
           "merge_rows", "run_local", "row_verdict"]

FUNCTIONS = ("sigmoid", "logsigmoid", "softplus")
FORMATS = ("float16", "bfloat16", "float32")
KINDS = ("value", "grad")
MARGIN = 2.0**-30  # a comparison this close (relative) to its allowance is made by the exact path
WITNESSES = 5  # the failing inputs a row keeps, per quantity


class NotSupported(Exception):
    """The subject has no such function or format: reported with the reason, never a pass."""


# --------------------------------------------------------------------------------------------------
# inputs


def size(fmt: str) -> int:
    """How many encodings the format has: 2**16 or 2**32."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return 2**32 if fmt == "float32" else 2**16


def inputs(fmt: str, lo: int, hi: int):
    """The format's values with the encodings lo .. hi - 1 (unsigned bit patterns), as binary64 (exact)."""
    n = size(fmt)
    if not 0 <= lo <= hi <= n:
        raise ValueError(f"range {lo}:{hi} is outside the {n} encodings of {fmt}")
    bits = np.arange(lo, hi, dtype=np.uint64)
    with np.errstate(invalid="ignore"):
        if fmt == "float16":
            return bits.astype(np.uint16).view(np.float16).astype(np.float64)
        if fmt == "bfloat16":
            return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
        return bits.astype(np.uint32).view(np.float32).astype(np.float64)


# --------------------------------------------------------------------------------------------------
# subjects


@dataclass(frozen=True)
class SweepSubject:
    name: str
    formats: tuple
    make: Callable  # (function, format) -> callable(x float64 array) -> (values, grads or None), float64 arrays
    required: str = PASS_LINE  # the rung it must reach (lossproof.judge.required_rung)
    why_not: tuple = ()  # (format, the reason it lacks it) pairs


def _torch(function: str, fmt: str):
    import torch

    from subjects import torch_subject

    fn = torch_subject.function(function)
    dt = torch_subject.dtype_of(fmt)

    def run(x):
        t = torch.from_numpy(np.ascontiguousarray(x)).to(dt).requires_grad_(True)
        out = fn(t)
        out.backward(torch.ones_like(out))
        assert t.grad is not None
        return (out.detach().to(torch.float64).numpy(), t.grad.detach().to(torch.float64).numpy())

    return run


def _numpy(function: str, fmt: str):
    fn = getattr(numpy_losses, function)
    dt = np.dtype(fmt)

    def run(x):
        a = x.astype(dt)
        return (np.asarray(fn(a)).astype(np.float64), np.asarray(numpy_losses.grad(function, a)).astype(np.float64))

    return run


def _scipy(function: str, fmt: str):
    try:
        fns = array_subject.scipy_functions()
    except ImportError:
        raise NotSupported("SciPy is not installed (pip install scipy): its subject is not checked") from None
    if function not in fns:
        raise NotSupported(f"SciPy has no {function}")
    fn = fns[function][0]
    dt = np.dtype(fmt)

    def run(x):
        out = np.asarray(fn(input=x.astype(dt)))
        if out.dtype != dt:
            raise NotSupported(f"SciPy's {function} returns {out.dtype.name} for {fmt} input")
        return out.astype(np.float64), None

    return run


def _jax(function: str, fmt: str):
    """jax.nn's function, jitted, and its derivative, jit(vmap(grad)): one compiled call per chunk, each input
    built exactly in the format (a NumPy array of the format's dtype; no 64-bit types needed below float64)."""
    from subjects import jax_subject

    why = jax_subject.missing()
    if why:
        raise NotSupported(why)
    jax, jnp, dtypes = jax_subject.modules()
    fn = {"sigmoid": jax.nn.sigmoid, "logsigmoid": jax.nn.log_sigmoid, "softplus": jax.nn.softplus}[function]
    value, deriv = jax.jit(fn), jax.jit(jax.vmap(jax.grad(fn)))
    dt = dtypes[fmt]

    def run(x):
        a = jnp.asarray(np.asarray(x, dtype=dt))
        return np.asarray(value(a)).astype(np.float64), np.asarray(deriv(a)).astype(np.float64)

    return run


#: the subjects a sweep can run; a new one joins with one entry
SUBJECTS: dict = {
    "torch": SweepSubject("torch", ("float16", "bfloat16", "float32"), _torch),
    "jax": SweepSubject("jax", ("float16", "bfloat16", "float32"), _jax),
    "numpy": SweepSubject("numpy", ("float16", "float32"), _numpy, required="accurate",
                          why_not=(("bfloat16", "NumPy has no bfloat16"),)),
    "scipy": SweepSubject("scipy", ("float32",), _scipy,
                          why_not=(("float16", "SciPy computes float16 in float32"),
                                   ("bfloat16", "NumPy (and so SciPy) has no bfloat16"))),
}


def subject(name: str) -> SweepSubject:
    try:
        return SUBJECTS[name]
    except KeyError:
        raise ValueError(f"unknown subject {name!r}; expected one of {', '.join(SUBJECTS)}") from None


def evaluator(subject_name: str, function: str, fmt: str):
    """The subject's vectorised callable for ``function`` in ``fmt``, or NotSupported with the reason."""
    s = subject(subject_name)
    if function not in FUNCTIONS:
        raise ValueError(f"unknown function {function!r}; expected one of {', '.join(FUNCTIONS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt not in s.formats:
        raise NotSupported(dict(s.why_not).get(fmt, f"{s.name} has no {fmt}"))
    return s.make(function, fmt)


# --------------------------------------------------------------------------------------------------
# measuring


def _ulp(z, f):
    """ulp(z) = 2**(max(floor(log2 |z|), emin) - p + 1) per element (binary64 z: the approximation)."""
    with np.errstate(all="ignore"):
        _, e = np.frexp(z)
        return np.ldexp(1.0, np.maximum(e - 1, f.emin) - f.p + 1)


def _kappa(function: str, kind: str, x):
    """kappa (values: |x f'(x)|, the oracle's) or kappa_g (derivatives: lossproof.conditioning's) in binary64,
    within a few ulps (libm's exp and tanh): the comparisons with it keep a 2**-30 margin (``MARGIN``)."""
    with np.errstate(all="ignore"):
        t = np.exp(-np.abs(x))
        ds = t / ((1 + t) * (1 + t))  # sigma'(x)
        s_pos = np.where(x >= 0, 1 / (1 + t), t / (1 + t))  # sigma(x)
        s_neg = np.where(x >= 0, t / (1 + t), 1 / (1 + t))  # sigma(-x)
        ax = np.abs(x)
        if kind == "value":
            d = {"sigmoid": ds, "logsigmoid": s_neg, "softplus": s_pos}[function]
            k = ax * d
        elif function == "sigmoid":  # g' = g (s(-x) - s(x)) = -g tanh(x / 2)
            k = ax * ds * np.tanh(ax / 2)
        else:  # logsigmoid: g' = -s(x) s(-x); softplus: g' = s'(x)
            k = ax * ds
        return np.where(np.isfinite(k), k, 0.0)


def _allowances(function: str, kind: str, za, f):
    """(stable, accurate allowances without kappa's term) for |z| = za (binary64), oracles/bounds.py's formulas."""
    s = bounds.steps(function)
    smin = float(f.min_subnormal)
    u = float(f.u)
    K = bounds.K
    if kind == "value":
        return K * (u * s * (za + 1) + s * smin / 2)
    G = np.maximum(za, 1.0)
    return K * (u * (s + 2) * (za + G) + (s + 2) * smin / 2)


@dataclass
class _Kind:
    """The measurement of one quantity over a chunk, as arrays."""

    ulps: np.ndarray
    verdict: np.ndarray  # int ranks (verdicts.RANK)
    y: np.ndarray
    zr: np.ndarray


def _exact_measure(subject_name, function, fmt, x, y, g, oracle_name=None):
    """measure.measure on the one-element call at x (against ``oracle_name``, default the exact function):
    {kind: Element}."""
    m = measure(subject_name, function, fmt, "cpu", {"input": [float(x)]}, [float(y)],
                None if g is None else [float(g)], oracle_name=oracle_name)
    return {e.kind: e for e in m.elements}


def _measure_kind(subject_name, function, kind, fmt, x, y, yv, yg, counts, oracle_name=None):
    """Verdict ranks, ULP errors and RN(z) of the subject's ``y`` (one quantity) on the chunk ``x``."""
    f = get_format(fmt)
    name = oracle_name or function
    c = univariate.certified(name, kind, x, fmt, exact=False)
    counts.add(c.counts)
    n = x.size
    ulps = np.zeros(n)
    rank = np.full(n, RANK["correctly_rounded"], dtype=np.int8)
    zr = c.rounded.copy()
    nan_in = np.isnan(x)
    ok_nan = nan_in & np.isnan(y)
    rank[nan_in & ~ok_nan] = RANK["broken"]
    ulps[nan_in & ~ok_nan] = math.inf
    fast = ~nan_in & ~c.exact
    a, b = c.approx, c.bound
    with np.errstate(all="ignore"):
        zr_inf = np.isinf(zr)
        y_inf = np.isinf(y)
        same = (y == zr) & ((zr != 0) | (np.signbit(y) == np.signbit(zr)))
        broken = np.isnan(y) | (y_inf & ~zr_inf) | (y_inf & zr_inf & (y != zr))
        d = np.abs(y - a)
        ulps_f = np.where(broken, math.inf, d / _ulp(a, f))
    r = np.where(same, RANK["correctly_rounded"], RANK["broken"]).astype(np.int8)
    # the ladder's comparisons, on the elements neither correctly rounded nor broken (their allowances)
    rest = np.flatnonzero(fast & ~same & ~broken)
    undecided_cmp = np.zeros(n, dtype=bool)
    if rest.size:
        ar, br, dr = a[rest], b[rest], d[rest]
        with np.errstate(all="ignore"):
            e_lo = np.maximum(dr * (1 - 2.0**-52) - br, 0.0)
            e_hi = dr * (1 + 2.0**-52) + br
            za_lo = np.maximum(np.abs(ar) - br, 0.0)
            za_hi = np.abs(ar) + br
            st_lo = _allowances(function, kind, za_lo, f) * (1 - MARGIN)
            st_hi = _allowances(function, kind, za_hi, f) * (1 + MARGIN)
            kap = _kappa(function, kind, x[rest])
            K = bounds.K
            u = float(f.u)
            ac_lo = (K * u * (za_lo + kap) + float(f.min_subnormal)) * (1 - MARGIN)
            ac_hi = (K * u * (za_hi + kap * (1 + MARGIN)) + float(f.min_subnormal)) * (1 + MARGIN)
        stable = e_hi <= st_lo
        unstable = e_lo > st_hi
        accurate = e_hi <= ac_lo
        not_acc = e_lo > ac_hi
        r[rest] = np.where(unstable, RANK["unstable"], np.where(stable & accurate, RANK["accurate"], RANK["stable"]))
        undecided_cmp[rest] = ~((stable & (accurate | not_acc)) | unstable)
    rank[fast] = r[fast]
    ulps[fast] = ulps_f[fast]
    # the exact path: undecided roundings, infinite inputs, comparisons at their allowance
    slow = np.flatnonzero(c.exact | (fast & undecided_cmp))
    for i in slow:
        el = _exact_measure(subject_name, function, fmt, x[i], yv[i], None if yg is None else yg[i],
                            oracle_name)[kind]
        rank[i], ulps[i], zr[i] = RANK[el.verdict], el.ulp_error, el.z_rounded
    counts.exact_comparisons += int((fast & undecided_cmp).sum())
    return _Kind(ulps, rank, y, zr)


@dataclass
class _Oracle(univariate.Counts):
    exact_comparisons: int = 0

    def as_dict(self) -> dict:
        return {**super().as_dict(), "exact_comparisons": self.exact_comparisons}


def _deviations(subject_name, function):
    """The documented deviations of the subject's function that sweeps can apply (their documented oracle has a
    vectorised form); any other one is refused loudly rather than ignored."""
    out = []
    for d in deviations.DEVIATIONS:
        if d.subject == subject_name and d.loss == function:
            if d.documented_oracle not in univariate.FUNCTIONS:
                raise NotImplementedError(f"deviation {d.id} has no vectorised documented behaviour for sweeps")
            out.append(d)
    return out


def _summary(kind_m: _Kind, x, explained: dict) -> dict:
    n = x.size
    counts = {v: int((kind_m.verdict == RANK[v]).sum()) for v in VERDICTS}
    fails = np.flatnonzero(kind_m.verdict < RANK[PASS_LINE])
    excused = set()
    for ids in explained.values():
        excused.update(ids)
    gating = [i for i in fails.tolist() if i not in excused]
    keep = np.ones(n, dtype=bool)
    keep[sorted(excused)] = False
    gating_verdict = VERDICTS[int(kind_m.verdict[keep].min())] if keep.any() else "correctly_rounded"
    if n:
        i = int(np.argmax(np.where(np.isnan(kind_m.ulps), math.inf, kind_m.ulps)))
        mx = {"ulp": float(kind_m.ulps[i]), "input": hexf(float(x[i])), "y": hexf(float(kind_m.y[i])),
              "z_rounded": hexf(float(kind_m.zr[i]))}
    else:
        mx = None
    wit = [{"input": hexf(float(x[i])), "y": hexf(float(kind_m.y[i])), "z_rounded": hexf(float(kind_m.zr[i])),
            "ulp": float(kind_m.ulps[i]), "verdict": VERDICTS[int(kind_m.verdict[i])]}
           for i in gating[:WITNESSES]]
    return {"elements": int(n), "correctly_rounded": counts["correctly_rounded"], "verdicts": counts,
            "max": mx, "failures": len(gating), "witnesses": wit, "verdict": gating_verdict,
            "explained": {k: len(v) for k, v in explained.items()}}


def _explain(subject_name, function, kind, fmt, x, ym, devs, yv, yg):
    """{deviation id: chunk indices it explains}: failing elements in its scope meeting its documented oracle."""
    out: dict = {}
    fails = np.flatnonzero(ym.verdict < RANK[PASS_LINE])
    if not fails.size:
        return out
    for d in devs:
        # the scope of the call of the failing inputs (elementwise: the same elements as in their own calls)
        scope = deviations.scope_of(d, {"input": x[fails].tolist()}, get_format(fmt)) if d.scope else None
        part = deviations.ALL if scope is None else scope.get(kind, ())
        covered = fails if part is deviations.ALL else fails[sorted(part)]
        if not covered.size:
            continue
        dm = _measure_kind(subject_name, function, kind, fmt, x[covered], ym.y[covered], yv[covered],
                           None if yg is None else yg[covered], _Oracle(), oracle_name=d.documented_oracle)
        meets = covered[dm.verdict >= RANK[PASS_LINE]]
        if meets.size:
            out[d.id] = set(meets.tolist())
    return out


def _exact_max(subject_name, function, fmt, x, yv, yg, kind, mx):
    """The row's largest error measured exactly (measure.measure) at its input."""
    if mx is None or not math.isfinite(mx["ulp"]):
        return mx
    xi = float.fromhex(mx["input"])
    i = int(np.flatnonzero(np.asarray(x == xi) | (np.isnan(x) & math.isnan(xi)))[0])
    el = _exact_measure(subject_name, function, fmt, x[i], yv[i], None if yg is None else yg[i])[kind]
    return {**mx, "ulp": el.ulp_error, "z_rounded": hexf(el.z_rounded), "verdict": el.verdict}


def sweep_range(function: str, subject_name: str, fmt: str, lo: int, hi: int, threads: int | None = None) -> dict:
    """The row of ``subject_name``'s ``function`` on the encodings lo .. hi - 1 of ``fmt`` (one chunk of a
    sweep, or all of it): see ``merge_rows`` for its fields."""
    t0 = time.perf_counter()
    if threads is not None and subject_name == "torch":
        import torch

        torch.set_num_threads(threads)
    s = subject(subject_name)
    row = {"function": function, "subject": subject_name, "format": fmt, "device": "cpu", "lo": lo, "hi": hi,
           "inputs": hi - lo, "required": s.required, "reason": None, "quantities": {}, "oracle": {},
           "seconds": 0.0}
    try:
        run = evaluator(subject_name, function, fmt)
        x = inputs(fmt, lo, hi)
        with np.errstate(all="ignore"):
            yv, yg = run(x)
    except NotSupported as e:
        row["reason"] = str(e)
        row["verdict"] = "not supported"
        return row
    devs = _deviations(subject_name, function)
    counts = _Oracle()
    for kind, y in (("value", yv), ("grad", yg)):
        if y is None:
            continue
        ym = _measure_kind(subject_name, function, kind, fmt, x, y, yv, yg, counts)
        explained = _explain(subject_name, function, kind, fmt, x, ym, devs, yv, yg)
        q = _summary(ym, x, explained)
        q["max"] = _exact_max(subject_name, function, fmt, x, yv, yg, kind, q["max"])
        row["quantities"][kind] = q
    row["oracle"] = counts.as_dict()
    row["verdict"] = row_verdict(row)
    row["seconds"] = time.perf_counter() - t0
    return row


def row_verdict(row: dict) -> str:
    """The worst verdict over the quantities' elements not explained by a documented deviation (what gates), or
    "not supported"."""
    if row.get("reason"):
        return "not supported"
    return worst(q["verdict"] for q in row["quantities"].values())


def merge_rows(rows: list) -> dict:
    """Chunk rows of one sweep as one row: counts added, the largest error kept with its input, witnesses up to
    ``WITNESSES`` per quantity.

    A row: function, subject, format, device, lo, hi (the encodings covered: the chunks must be adjacent),
    inputs, required (the rung), reason (why not supported, or null), verdict (the worst gating one), oracle
    {float64, extended, exact, nan, exact_comparisons: how many roundings each stage decided, how many
    comparisons the exact path made}, seconds (summed over the chunks), and per quantity ("value", "grad"):
    elements, correctly_rounded, verdicts {verdict: count}, max {ulp, input, y, z_rounded (hex), verdict},
    failures (below the pass line, not explained), witnesses [...], explained {deviation id: count}."""
    if not rows:
        raise ValueError("no rows to merge")
    rows = sorted(rows, key=lambda r: r["lo"])
    for a, b in zip(rows, rows[1:]):
        if a["hi"] != b["lo"]:
            raise ValueError(f"the chunks are not adjacent: {a['hi']} then {b['lo']}")
    first = rows[0]
    out = {**first, "lo": first["lo"], "hi": rows[-1]["hi"], "inputs": sum(r["inputs"] for r in rows),
           "seconds": sum(r["seconds"] for r in rows), "quantities": {}, "oracle": {}}
    if any(r.get("reason") for r in rows):
        out["reason"] = next(r["reason"] for r in rows if r.get("reason"))
        out["verdict"] = "not supported"
        return out
    for r in rows:
        for k, v in r["oracle"].items():
            out["oracle"][k] = out["oracle"].get(k, 0) + v
    for kind in KINDS:
        qs = [r["quantities"][kind] for r in rows if kind in r["quantities"]]
        if not qs:
            continue
        q = {"elements": sum(x["elements"] for x in qs), "correctly_rounded": sum(x["correctly_rounded"] for x in qs),
             "verdicts": {v: sum(x["verdicts"].get(v, 0) for x in qs) for v in VERDICTS},
             "failures": sum(x["failures"] for x in qs), "verdict": worst(x["verdict"] for x in qs),
             "witnesses": [w for x in qs for w in x["witnesses"]][:WITNESSES], "explained": {}}
        for x in qs:
            for k, v in x["explained"].items():
                q["explained"][k] = q["explained"].get(k, 0) + v
        maxes = [x["max"] for x in qs if x["max"] is not None]
        q["max"] = max(maxes, key=lambda m: m["ulp"]) if maxes else None
        out["quantities"][kind] = q
    out["verdict"] = row_verdict(out)
    return out


def run_local(function: str, subject_name: str, fmt: str, lo: int = 0, hi: int | None = None,
              chunk: int = 2**16) -> dict:
    """A sweep in this process, chunk by chunk (float16 and bfloat16: one chunk)."""
    hi = size(fmt) if hi is None else hi
    rows = [sweep_range(function, subject_name, fmt, a, min(a + chunk, hi)) for a in range(lo, hi, chunk)]
    if not rows:
        raise ValueError(f"the range {lo}:{hi} is empty")
    return merge_rows(rows)


# --------------------------------------------------------------------------------------------------
# float32: chunks on Dask


def chunk_path(folder: str, function: str, subject_name: str, fmt: str, lo: int, hi: int) -> str:
    return os.path.join(folder, f"{function}-{subject_name}-{fmt}", f"{lo:09x}-{hi:09x}.json")


def _read_chunk(path: str, key: tuple):
    """A completed chunk's row, or None when the file is missing or is not that chunk's row (a stray or
    damaged file is recomputed, never trusted)."""
    try:
        with open(path, encoding="utf-8") as f:
            row = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict) or tuple(row.get(k) for k in ("function", "subject", "format", "lo", "hi")) != key:
        return None
    if not isinstance(row.get("quantities"), dict) or "verdict" not in row:
        return None
    return row


def chunks(lo: int, hi: int, chunk: int) -> list:
    if chunk <= 0:
        raise ValueError(f"the chunk size must be positive, got {chunk}")
    return [(a, min(a + chunk, hi)) for a in range(lo, hi, chunk)]


def dask_available() -> str | None:
    """None when dask.distributed imports, else why not (one line)."""
    try:
        import distributed  # noqa: F401
    except ImportError as e:
        return f"the float32 sweep runs on Dask, which is not installed ({e.name}): pip install 'lossproof[sweep]'"
    return None


def run_dask(function: str, subject_name: str, fmt: str, lo: int, hi: int, *, chunk: int, folder: str,
             scheduler: str | None = None, workers: int = 2, progress=None) -> dict:
    """The sweep of encodings lo .. hi - 1 as chunked tasks on Dask: a local cluster of ``workers`` processes
    (one thread each) by default, the scheduler at ``scheduler`` otherwise. Each completed chunk's row is
    written atomically (reports/atomic.py) under ``folder`` by this process as it arrives; a rerun reads the
    completed ones and submits only the rest (resumable after an interruption). ``progress(done, total,
    inputs_done, seconds)`` is called after each chunk."""
    from distributed import Client, LocalCluster, as_completed

    evaluator(subject_name, function, fmt)  # NotSupported / ValueError before any cluster starts
    parts = chunks(lo, hi, chunk)
    rows, todo = [], []
    for a, b in parts:
        row = _read_chunk(chunk_path(folder, function, subject_name, fmt, a, b), (function, subject_name, fmt, a, b))
        (rows.append(row) if row is not None else todo.append((a, b)))
    t0 = time.perf_counter()
    done_inputs = 0
    if progress:
        progress(len(rows), len(parts), 0, 0.0)
    if todo:
        cluster = None
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0", silence_logs=50)  # a free port: never a clash
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout="20s")
        try:
            futures = [client.submit(sweep_range, function, subject_name, fmt, a, b, 1, pure=False)
                       for a, b in todo]
            for fut in as_completed(futures):
                row = fut.result()
                atomic.write_json(chunk_path(folder, function, subject_name, fmt, row["lo"], row["hi"]), row)
                rows.append(row)
                done_inputs += row["inputs"]
                if progress:
                    progress(len(rows), len(parts), done_inputs, time.perf_counter() - t0)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    out = merge_rows(rows)
    out["wall_seconds"] = time.perf_counter() - t0
    out["computed_inputs"] = done_inputs
    return out
