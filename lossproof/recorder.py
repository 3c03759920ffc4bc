"""The results recorder: every measurement a run makes, counted for the summary table and written to the run's
results file (reports/schema.py), with the environment that selects the kernels (reports/environment.py).

One ``Recorder`` per process (the pytest plugin keeps it in ``config.stash``; pytest-xdist workers write their
records to parts that the controller merges, atomically). ``Recorder.bind`` gives a test its ``record`` function,
which knows the test's id, module and property.
"""

from __future__ import annotations

import datetime
import glob
import math
import os
import platform
import sys
import uuid
from dataclasses import dataclass, field

from mpmath.libmp import BACKEND

from oracles.formats import format_ulps
from reports import atomic, schema

from . import profiles
from .verdicts import worse

__all__ = ["Recorder", "environment", "numpy_simd", "SOURCES"]

#: the results' "source" of a battery module (the report keeps the reproducible corpus apart from the search)
SOURCES = {"test_agreement": "hypothesis", "test_properties": "hypothesis", "test_special_values": "special",
           "test_corpus": "corpus", "test_known_cases": "fixed"}


def numpy_simd() -> list | None:
    """The SIMD targets NumPy dispatches its loops to on this CPU (its dispatch list that the CPU supports), which
    select NumPy's (and SciPy's) kernels; None where NumPy does not say."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # NumPy < 2 names the module otherwise
        try:
            from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
        except ImportError:
            return None
    return [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]


def environment() -> dict:
    """Versions, devices, the floating-point state and what selects the kernels (the report's header, the gate)."""
    import importlib.metadata as md

    env = {"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
           "processor": platform.processor() or platform.machine(), "mpmath_backend": BACKEND}
    for pkg in ("torch", "numpy", "scipy", "mpmath", "hypothesis", "gmpy2", "pytest", "jax", "jaxlib", "optax"):
        try:
            env[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            env[pkg] = None
    env["numpy_simd"] = numpy_simd()
    # XLA's flags select JAX's compiled kernels (reports/environment.py); recorded only where set
    env["xla_flags"] = os.environ.get("XLA_FLAGS", "").strip() or None
    if "torch" in sys.modules or env["torch"]:
        import torch

        env["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
            if torch.cuda.is_available() else []
        # flush-to-zero: does the smallest float32 subnormal survive an addition on the CPU?
        tiny = torch.tensor([1e-45], dtype=torch.float32)
        env["cpu_flush_to_zero"] = bool((tiny + 0.0).item() == 0.0)
        env["torch_threads"] = torch.get_num_threads()
        # what selects torch's CPU kernels (ATEN_CPU_CAPABILITY may lower it) and its CUDA build
        env["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        env["torch_cuda"] = torch.version.cuda if torch.cuda.is_available() else None
    return env


@dataclass
class Recorder:
    results_path: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"))
    # the summary table's cells: (loss, subject, format, device) -> (gating worst, reported worst, max ULP, cases,
    # deviations), folded in as each measurement is recorded. Not the measurements: each holds its exact values,
    # their sources and allowances, and keeping every one to the end grew a worker to 1.5 GB over 96 cells, slowed
    # every full collection and took seconds to free at exit (measured)
    cells: dict = field(default_factory=dict)
    accept_used: set = field(default_factory=set)  # labels of the accept entries that matched a finding
    records: list = field(default_factory=list)  # results records (reports/schema.py)
    notices: list = field(default_factory=list)  # lines for the run's summary: never silent

    def record(self, measurement, deviation=None, gating=True, *, source, prop, case_id, regime=None,
               required=None) -> None:
        """Count a measurement in the summary table and write it to the run's results."""
        self._count(measurement, deviation, gating)
        self.records.append(schema.record_of(
            measurement, kwargs=measurement.kwargs, deviation=deviation, gating=gating, source=source, prop=prop,
            case_id=case_id, run=self.run_id, regime=regime, required=required))

    def notice(self, line: str | None) -> None:
        """A line for the run's summary: examples that passed unmeasured, a capability a subject lacks."""
        if line:
            self.notices.append(line)

    def bind(self, nodeid: str, module: str, function: str):
        """The ``record`` function of one test: its source, property and case id filled in."""
        source = SOURCES.get(module, "other")
        prop = function[len("test_"):] if function.startswith("test_") else function or "other"

        def record(m, deviation=None, gating=True, *, case_id=None, regime=None, prop_=None, required=None):
            self.record(m, deviation, gating, source=source, prop=prop_ or prop, case_id=case_id or nodeid,
                        regime=regime, required=required)

        return record

    # -- writing

    def parts_dir(self) -> str:
        return self.results_path + ".parts"

    def write_part(self, worker: str) -> None:
        """An xdist worker's records, to a part the controller merges (atomically: a worker killed mid-write
        leaves no part, never half of one)."""
        if self.records:
            atomic.write_json(os.path.join(self.parts_dir(), f"{self.run_id}-{worker}.json"),
                              schema.document([], self.records))

    def write(self, command: str) -> str | None:
        """Merge this process's records and the workers' parts into one results file, atomically; its path, or
        None when the run measured nothing."""
        parts = sorted(glob.glob(os.path.join(self.parts_dir(), f"{self.run_id}-*.json")))
        docs = [schema.document([], self.records)]
        for p in parts:
            try:
                docs.append(schema.load(p))
            except schema.ResultsError as e:  # unreadable: say so, never merge half a part
                sys.stderr.write(f"lossproof: skipping a results part: {e}\n")
        merged = schema.merge(docs)
        if not merged["records"] and not merged.get("sweeps"):  # a run that only swept writes its rows too
            return None
        merged["runs"] = [{"id": self.run_id, "command": command, "profile": profiles.current().name,
                           "started": self.started, "environment": environment()}]
        schema.write_atomic(self.results_path, merged)
        for p in parts:
            os.unlink(p)
        try:
            os.rmdir(self.parts_dir())
        except OSError:
            pass
        return self.results_path

    # -- the summary table

    def _count(self, m, dev, gating) -> None:
        """Fold one measurement into its cell of the summary table (``summary_rows``)."""
        key = (m.loss, m.subject, m.fmt, m.device)
        verdict = m.verdict if m.elements else None
        g, ng, ulp, n, devs = self.cells.get(key, (None, None, 0.0, 0, set()))
        if verdict is not None:
            if gating and not dev:
                g = worse(g, verdict)
            else:
                ng = worse(ng, verdict)
        if dev:
            devs = devs | {dev}
        self.cells[key] = (g, ng, max(ulp, m.max_ulp if m.elements else 0.0), n + 1, devs)

    def summary_rows(self) -> list:
        """Per loss x subject x format x device: the worst verdict of the gating measurements, that of the others
        (special values of non-finite inputs, documented deviations: reported, not gating), max ULP, cases, and
        the documented deviations met."""
        return [(k, v[0], v[1], v[2], v[3], sorted(v[4])) for k, v in self.cells.items()]


def merge_summary_rows(rows) -> dict:
    """{key: (gating worst, reported worst, max ULP, cases, deviations)} over rows of several processes."""
    merged = {}
    for key, g, ng, ulp, n, devs in rows:
        key = tuple(key)
        if key in merged:
            g0, ng0, u0, n0, d0 = merged[key]
            merged[key] = (worse(g0, g), worse(ng0, ng), max(u0, ulp), n0 + n, sorted(set(d0) | set(devs)))
        else:
            merged[key] = (g, ng, ulp, n, list(devs))
    return merged


def summary_lines(rows) -> list:
    """The summary table as lines (subject names whole, never cut)."""
    merged = merge_summary_rows(rows)
    if not merged:
        return []
    width = max(16, *(len(k[1]) for k in merged))
    lines = ["gating: finite inputs and -inf masks (the pass line is stable); reported: non-finite inputs and "
             "documented deviations, which do not gate",
             f"{'loss':34} {'subject':{width}} {'format':9} {'device':6} {'cases':>6} {'gating worst':18} "
             f"{'reported worst':18} {'max ULP':>10}  documented deviations"]
    for (loss, subject, fmt, device), (g, ng, ulp, n, devs) in sorted(merged.items()):
        lines.append(f"{loss:34} {subject:{width}} {fmt:9} {device:6} {n:>6} {g or '-':18} {ng or '-':18} "
                     f"{format_ulps(ulp) if math.isfinite(ulp) else 'inf':>10}  {', '.join(devs)}")
    return lines
