"""pytest configuration for lossproof: Hypothesis profiles, the run profile, and the report header.

Profiles (select with ``--hypothesis-profile NAME``; the default is ``ci``):
- ``dev``: fast feedback while editing (few examples, small exhaustive samples).
- ``ci``: derandomized, no deadline, failure blobs printed; the README's test command, within 15 minutes on
  2 cores.
- ``thorough``: many examples and the 100,000-case cross-checks.
"""

from __future__ import annotations

import os
import platform

import mpmath
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("LOSSPROOF_PROFILE", "ci"))


def pytest_report_header(config):
    from mpmath.libmp import BACKEND

    import oracles

    return [
        f"lossproof: profile={settings.get_current_profile_name()} oracle v{oracles.ORACLE_VERSION} "
        f"mpmath {mpmath.__version__} (backend {BACKEND}) python {platform.python_version()}"
    ]


# --------------------------------------------------------------------------------------------------
# the suite's options, its subjects, and the summary table

import math  # noqa: E402

import pytest  # noqa: E402

_RESULTS = []  # measurements made in this process (a worker's, under xdist)


def pytest_addoption(parser):
    g = parser.getgroup("lossproof")
    g.addoption("--quick", action="store_true", default=False,
                help="a fast run while editing: leave out the Hypothesis verification battery "
                     "(tests/test_agreement.py, tests/test_properties.py) and hold only torch float32 and our NumPy "
                     "float64 to the special-value table (the default run, and CI, include everything)")
    g.addoption("--zoo", action="store_true", default=False,
                help="run the detection-power meta-tests on the zoo (tests/meta/test_zoo.py; tox -e zoo)")
    g.addoption("--strict-specials", action="store_true", default=False,
                help="also gate on special values with infinite or NaN inputs (other than -inf masks)")
    g.addoption("--subject", action="append", default=[], metavar="LOSS=TARGET",
                help="a user's implementation: package.module:function or path/to/file.py:function (repeatable)")
    g.addoption("--subject-framework", default="torch", choices=["torch", "numpy"],
                help="the framework of the --subject functions (default torch)")
    g.addoption("--only-subjects", default=None, metavar="NAMES",
                help="comma-separated subjects to run (torch, numpy, scipy, user); default all")
    g.addoption("--only-losses", default=None, metavar="NAMES", help="comma-separated losses to run")
    g.addoption("--only-formats", default=None, metavar="NAMES", help="comma-separated formats to run")
    g.addoption("--only-devices", default=None, metavar="NAMES", help="comma-separated devices to run")
    g.addoption("--results", default=os.path.join("out", "results.json"), metavar="PATH",
                help="where the run's results (reports/schema.py) are written, atomically (default out/results.json)")


BATTERY = ("test_agreement.py", "test_properties.py")


def pytest_ignore_collect(collection_path, config):
    """The plain test command runs everything but the zoo: the Hypothesis battery over every subject, the
    oracle's proofs, the regression corpus, the fixed cases, the special-value table and the machinery's
    meta-tests; ``--quick`` leaves the battery out; the zoo's detection meta-tests run with --zoo."""
    if collection_path.name in BATTERY and config.getoption("--quick"):
        return True
    if collection_path.name == "test_zoo.py" and not config.getoption("--zoo"):
        return True
    return None


_RECORDS = []  # this process's results records (reports/schema.py)
_NOTICES = []  # lines for the run's summary: examples passed unmeasured, capabilities a subject lacks


def notice(line):
    """A line for the run's summary, never silent: a property test's examples that passed unmeasured (over the
    per-example cap, past the search safety net; tests/budget.py), or a capability its subject lacks."""
    if line:
        _NOTICES.append(line)
_CURRENT = {"nodeid": "", "module": "", "function": ""}

#: the results' "source" of a test module (the report keeps the reproducible corpus apart from the search)
SOURCES = {"test_agreement": "hypothesis", "test_properties": "hypothesis", "test_special_values": "special",
           "test_corpus": "corpus", "test_known_cases": "fixed"}


def record(measurement, deviation=None, gating=True, *, source=None, prop=None, case_id=None, regime=None):
    """Count a measurement in the summary table and write it to the run's results."""
    from reports import schema

    _RESULTS.append((measurement, deviation, gating))
    fn = _CURRENT["function"]
    _RECORDS.append(schema.record_of(
        measurement, kwargs=measurement.kwargs, deviation=deviation, gating=gating,
        source=source or SOURCES.get(_CURRENT["module"], "other"),
        prop=prop or (fn[len("test_"):] if fn.startswith("test_") else fn or "other"),
        case_id=case_id or _CURRENT["nodeid"], run=_RUN["id"], regime=regime))


_RUN = {"id": ""}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _CURRENT.update(nodeid=item.nodeid, module=item.module.__name__.rsplit(".", 1)[-1] if item.module else "",
                    function=getattr(item, "originalname", item.name))


def pytest_configure(config):
    import datetime
    import uuid

    config._lossproof_results = _RESULTS
    winput = getattr(config, "workerinput", None)
    _RUN["id"] = winput["lossproof_run"] if winput else uuid.uuid4().hex[:12]
    config._lossproof_started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):  # the controller hands its run id to each xdist worker
    node.workerinput["lossproof_run"] = _RUN["id"]


def _parts_dir(config):
    return config.getoption("--results") + ".parts"


def pytest_sessionfinish(session, exitstatus):
    from reports import schema

    config = session.config
    if hasattr(config, "workeroutput"):  # an xdist worker: its summary rows to the controller, records to a part
        config.workeroutput["lossproof_rows"] = _summary_rows(_RESULTS)
        config.workeroutput["lossproof_notices"] = list(_NOTICES)
        if _RECORDS:
            wid = config.workerinput.get("workerid", "w")
            schema.write_atomic(os.path.join(_parts_dir(config), f"{_RUN['id']}-{wid}.json"),
                                schema.document([], _RECORDS))
        return
    _write_results(config)


def _write_results(config):
    """The controller merges its own records and its workers' parts into one results file, atomically."""
    import glob
    import sys

    from reports import schema

    parts = sorted(glob.glob(os.path.join(_parts_dir(config), f"{_RUN['id']}-*.json")))
    docs = [schema.document([], _RECORDS)]
    for p in parts:
        try:
            docs.append(schema.load(p))
        except schema.ResultsError as e:  # a worker that died mid-write leaves no part (writes are atomic)
            sys.stderr.write(f"lossproof: skipping a results part: {e}\n")
    merged = schema.merge(docs)
    if not merged["records"]:
        return
    run = {"id": _RUN["id"], "command": " ".join(["pytest", *config.invocation_params.args]),
           "profile": os.environ.get("LOSSPROOF_PROFILE", "ci"), "started": config._lossproof_started,
           "environment": environment()}
    merged["runs"] = [run]
    path = config.getoption("--results")
    schema.write_atomic(path, merged)
    for p in parts:
        os.unlink(p)
    try:
        os.rmdir(_parts_dir(config))
    except OSError:
        pass
    config._lossproof_results_path = path


def environment() -> dict:
    """Versions, devices and the floating-point state the report's header shows."""
    import importlib.metadata as md

    from mpmath.libmp import BACKEND

    env = {"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
           "processor": platform.processor() or platform.machine(), "mpmath_backend": BACKEND}
    for pkg in ("torch", "numpy", "scipy", "mpmath", "hypothesis", "gmpy2", "pytest"):
        try:
            env[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            env[pkg] = None
    env["numpy_simd"] = numpy_simd()
    try:
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
    except Exception as e:  # pragma: no cover - torch is a dependency
        env["cuda"] = f"unknown ({type(e).__name__})"
    return env


def numpy_simd() -> list | None:
    """The SIMD targets NumPy dispatches its loops to on this CPU (its dispatch list that the CPU supports), which
    select NumPy's (and SciPy's) kernels; None where NumPy does not say."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # pragma: no cover - NumPy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
        except ImportError:
            return None
    return [t for t in __cpu_dispatch__ if __cpu_features__.get(t)]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    out = getattr(node, "workeroutput", {})
    node.config._lossproof_worker_rows = getattr(node.config, "_lossproof_worker_rows", []) + out.get(
        "lossproof_rows", [])
    node.config._lossproof_worker_notices = getattr(node.config, "_lossproof_worker_notices", []) + out.get(
        "lossproof_notices", [])


def _summary_rows(results):
    """Per loss x subject x format x device: the worst verdict of the gating measurements, that of the others
    (special values of non-finite inputs, documented deviations: reported, not gating), max ULP, cases, and the
    documented deviations met."""
    from lossproof.measure import RANK

    def worse(a, b):
        return min(a, b, key=lambda v: RANK.get(v, -1))

    cells = {}
    for m, dev, gating in results:
        key = (m.loss, m.subject, m.fmt, m.device)
        verdict = m.verdict if m.elements else ("not supported" if m.unsupported else "n/a")
        g, ng, ulp, n, devs = cells.get(key, ("-", "-", 0.0, 0, set()))
        if gating and not dev:
            g = verdict if g == "-" else worse(g, verdict)
        else:
            ng = verdict if ng == "-" else worse(ng, verdict)
        if dev:
            devs = devs | {dev}
        cells[key] = (g, ng, max(ulp, m.max_ulp if m.elements else 0.0), n + 1, devs)
    return [(k, v[0], v[1], v[2], v[3], sorted(v[4])) for k, v in cells.items()]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from lossproof.measure import RANK
    from oracles.formats import format_ulps

    rows = _summary_rows(_RESULTS) + getattr(config, "_lossproof_worker_rows", [])
    if getattr(config, "_lossproof_results_path", None):
        terminalreporter.write_line(f"lossproof results: {config._lossproof_results_path}")
    notices = _NOTICES + getattr(config, "_lossproof_worker_notices", [])
    if notices:
        terminalreporter.section(f"lossproof notices ({len(notices)}): examples passed unmeasured, capabilities "
                                 "not supported")
        for line in sorted(notices):
            terminalreporter.write_line(line)
    if not rows:
        return

    def worse(a, b):
        if a == "-":
            return b
        if b == "-":
            return a
        return min(a, b, key=lambda v: RANK.get(v, -1))

    merged = {}
    for key, g, ng, ulp, n, devs in rows:
        key = tuple(key)
        if key in merged:
            g0, ng0, u0, n0, d0 = merged[key]
            merged[key] = (worse(g0, g), worse(ng0, ng), max(u0, ulp), n0 + n, sorted(set(d0) | set(devs)))
        else:
            merged[key] = (g, ng, ulp, n, list(devs))
    tr = terminalreporter
    tr.section("lossproof summary: worst verdict and max ULP error per loss x subject x format x device")
    tr.write_line("gating: finite inputs and -inf masks (the pass line is stable); reported: non-finite inputs and "
                  "documented deviations, which do not gate")
    tr.write_line(f"{'loss':34} {'subject':16} {'format':9} {'device':6} {'cases':>6} {'gating worst':18} "
                  f"{'reported worst':18} {'max ULP':>10}  documented deviations")
    for (loss, subject, fmt, device), (g, ng, ulp, n, devs) in sorted(merged.items()):
        tr.write_line(f"{loss:34} {subject[:16]:16} {fmt:9} {device:6} {n:>6} {g:18} {ng:18} "
                      f"{format_ulps(ulp) if math.isfinite(ulp) else 'inf':>10}  {', '.join(devs)}")
