"""lossproof's pytest plugin, registered under the ``pytest11`` entry point: installing lossproof gives any test suite
its options, its markers, the results recorder, the summary table and the notices, and the battery's fixtures.

Run the battery on your own functions (subjects from the options or ``[tool.lossproof]``)::

    pytest --pyargs lossproof.battery --lossproof-subject cross_entropy=mypackage.losses:cross_entropy

or call the API from your own tests (``lossproof.check``, ``lossproof.assert_stable``). Loading the plugin changes
nothing else: no Hypothesis profile is loaded, no file is written unless a test measured something.

State lives in ``config.stash`` (the recorder, the options), not in module globals, so two pytest sessions in one
process (pytester) do not share it.
"""

from __future__ import annotations

import os

import mpmath
import pytest
from mpmath.libmp import BACKEND

from subjects.user import SubjectError, parse_class_axis, parse_fixed

from . import accept as accepting
from . import catalogue, profiles
from . import config as configuration
from .recorder import Recorder, summary_lines
from .specials import CASES as SPECIAL_VALUES

__all__ = ["Options", "RECORDER", "OPTIONS", "selected", "recorder_of"]

RECORDER = pytest.StashKey()
OPTIONS = pytest.StashKey()


class Options:
    """The plugin's options, resolved once: the command line over ``[tool.lossproof]`` over the defaults."""

    def __init__(self, config):
        opt = config.getoption
        try:
            cfg = configuration.load(search_from=str(config.rootpath))
        except configuration.ConfigError as e:
            raise pytest.UsageError(str(e)) from None
        self.config_file = cfg
        self.profile = opt("--lossproof-profile") or cfg.profile
        self.results = opt("--lossproof-results") or cfg.results or os.path.join("out", "results.json")
        self.framework = opt("--lossproof-framework") or cfg.framework  # None: each subject's own (inferred)
        self.class_axis = opt("--lossproof-class-axis")
        self.returns = opt("--lossproof-returns")
        self.targets = opt("--lossproof-targets")
        self.fixed = list(opt("--lossproof-fixed") or [])
        # lossproof check names its one function and skips the configured ones (they are not what it was asked)
        skip = opt("--lossproof-skip-configured-subjects")
        named = []
        for spec in opt("--lossproof-subject") or []:
            loss, sep, target = spec.partition("=")
            # a spec without "=" or a loss is kept whole: subjects.user.load refuses it quoting it as given
            named.append(configuration.Subject(loss, target) if sep and loss else configuration.Subject("", spec))
        self.subjects = named + ([] if skip else list(cfg.subjects))
        only = opt("--lossproof-only-subjects")
        # a suite that names its own subjects checks those (and not torch's whole battery) unless told otherwise;
        # with the configured ones skipped, the named ones only (none named: nothing, not every library subject)
        self.only_subjects = set(only.split(",")) if only else ({"user"} if self.subjects or skip else None)
        self.losses = _csv(opt("--lossproof-losses")) or cfg.losses
        self.formats = _csv(opt("--lossproof-formats")) or cfg.formats
        self.devices = _csv(opt("--lossproof-devices"))
        self.strict_specials = bool(opt("--lossproof-strict-specials"))
        self.strict = bool(opt("--lossproof-strict")) or cfg.strict
        self.accept_file = opt("--lossproof-accept")
        try:  # [tool.lossproof] accept, then the file's entries (lossproof.accept)
            self.accept = accepting.parse(cfg.accept, f"{cfg.path}: [tool.lossproof]") if cfg.accept else []
            if self.accept_file:
                self.accept += accepting.load_file(self.accept_file)
        except accepting.AcceptError as e:
            raise pytest.UsageError(str(e)) from None
        for name, values, allowed in (("--lossproof-losses", self.losses, catalogue.NAMES),
                                      ("--lossproof-formats", self.formats, catalogue.FORMATS),
                                      ("--lossproof-devices", self.devices, catalogue.DEVICES)):
            bad = [v for v in values if v not in allowed]
            if bad:
                raise pytest.UsageError(f"{name}: unknown {bad[0]!r}; expected one of {', '.join(allowed)}")
        if self.profile is not None:
            try:
                profiles.get(self.profile)
            except ValueError as e:
                raise pytest.UsageError(str(e)) from None


def _csv(v) -> tuple:
    return tuple(x for x in v.split(",") if x) if v else ()


def pytest_addoption(parser):
    g = parser.getgroup("lossproof", "lossproof: numerical stability of loss functions")
    g.addoption("--lossproof-profile", default=None, metavar="NAME",
                help="dev, ci (default: derandomized, bounded by counts) or thorough; or $LOSSPROOF_PROFILE")
    g.addoption("--lossproof-results", default=None, metavar="PATH",
                help="where the run's results (reports/schema.py) are written, atomically (default "
                     "out/results.json in the working directory)")
    g.addoption("--lossproof-subject", action="append", default=[], metavar="LOSS=TARGET",
                help="a function to check: package.module:function or path/to/file.py:function (repeatable)")
    g.addoption("--lossproof-skip-configured-subjects", action="store_true", default=False,
                help="check only the --lossproof-subject functions, not those of [tool.lossproof.subjects] (what "
                     "lossproof check runs)")
    g.addoption("--lossproof-framework", default=None, choices=["torch", "numpy", "jax"],
                help="the framework of the subjects' functions (default: inferred from each function's code, torch "
                     "where it names none); a subject's own in [tool.lossproof.subjects] wins, as for the "
                     "conventions below")
    g.addoption("--lossproof-class-axis", default="1", metavar="AXIS",
                help="where the subjects' functions take the classes: 1 (torch's (N, C, ...), the "
                     "default) or -1 (the classes last, as JAX and Keras)")
    g.addoption("--lossproof-returns", default=None, metavar="WHAT",
                help="what the subjects' functions return: mean, sum, per-example or reduction-arg "
                     "(default: reduction-arg when they take reduction, else mean)")
    g.addoption("--lossproof-targets", default=None, metavar="KIND",
                help="the one kind of target the subjects' functions take, for cross_entropy: probability "
                     "or index (default: both, as torch's)")
    g.addoption("--lossproof-fixed", action="append", default=[], metavar="NAME=VALUE",
                help="a loss parameter the subjects' functions have built in instead of taking it "
                     "(label_smoothing=0.1, ignore_index=0, log_target=true; repeatable): the exact result uses it")
    g.addoption("--lossproof-only-subjects", default=None, metavar="NAMES",
                help="comma-separated subjects to run (torch, numpy, scipy, jax, user); default all, or user when "
                     "subjects are named")
    g.addoption("--lossproof-losses", default=None, metavar="NAMES", help="comma-separated losses to run")
    g.addoption("--lossproof-formats", default=None, metavar="NAMES", help="comma-separated formats to run")
    g.addoption("--lossproof-devices", default=None, metavar="NAMES", help="comma-separated devices (cpu, cuda)")
    g.addoption("--lossproof-strict-specials", action="store_true", default=False,
                help="also gate on special values with infinite or NaN inputs (other than -inf masks)")
    g.addoption("--lossproof-strict", action="store_true", default=False,
                help="also gate on failures that the framework's reference shares (documented behaviours)")
    g.addoption("--lossproof-accept", default=None, metavar="FILE",
                help="a file of accepted findings, each with a reason (lossproof.accept)")


def pytest_configure(config):
    config.addinivalue_line("markers", "lossproof: a test of lossproof's battery (agreement, properties, special "
                                       "values, corpus)")
    options = Options(config)
    config.stash[OPTIONS] = options
    if options.profile is not None:
        profiles.set_default(options.profile)
    recorder = Recorder(options.results)
    winput = getattr(config, "workerinput", None)
    if winput and "lossproof_run" in winput:
        recorder.run_id = winput["lossproof_run"]
    config.stash[RECORDER] = recorder
    config.pluginmanager.register(ReachCounts(), "lossproof-reach")


class ReachCounts:
    """The ``lossproof_reach`` test properties of the run's reports (every property's examples drawn, applied and
    reached, per cell; lossproof.search, lossproof.battery), gathered for the terminal summary; on the xdist
    controller they arrive with the workers' reports."""

    def __init__(self):
        self.cells: dict = {}  # (property, cell) -> [drawn, applied, reached, share]

    def pytest_runtest_logreport(self, report):
        if report.when != "call":
            return
        for k, v in report.user_properties:
            if k == "lossproof_reach":
                prop, cell, drawn, applied, reached, share = v
                c = self.cells.setdefault((prop, cell), [0, 0, 0, share])
                c[0] += drawn
                c[1] += applied
                c[2] += reached

    def lines(self) -> list:
        """One line per property: its totals, then the cells under its share (reached / drawn)."""
        by: dict = {}
        for (prop, cell), c in sorted(self.cells.items()):
            by.setdefault(prop, []).append((cell, c))
        out = []
        for prop, cells in by.items():
            drawn, applied, reached = (sum(c[i] for _, c in cells) for i in range(3))
            under = [f"{cell} {c[2]}/{c[0]}" for cell, c in cells if c[2] < c[3] * c[0] or (c[0] and not c[2])]
            share = f"{reached / drawn:.0%}" if drawn else "-"
            line = (f"{prop}: reached {reached} of {drawn} drawn ({share}), applied {applied}, "
                    f"{len(cells)} cells")
            if under:
                line += f"; under {cells[0][1][3]:.0%}: " + ", ".join(under)
            out.append(line)
        return out


def recorder_of(config) -> Recorder:
    return config.stash[RECORDER]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):  # the controller hands its run id to each xdist worker
    node.workerinput["lossproof_run"] = node.config.stash[RECORDER].run_id


def selected(config) -> list:
    """The battery's cases for this run's options, CUDA cases included (skipped with their reason without CUDA)."""
    # the subjects import their frameworks (torch: a second or two): loaded when a battery test is collected, not
    # in every pytest session that has the plugin installed
    import torch

    from .cases import all_cases

    options = config.stash[OPTIONS]
    cuda = torch.cuda.is_available()
    only = options.only_subjects
    users = []
    for subject in options.subjects:
        try:
            users.append(subject.load(options.framework, parse_class_axis(options.class_axis), options.returns,
                                      options.targets, parse_fixed(options.fixed)))
        except SubjectError as e:
            # the test module's collection error, shown as this one line (pytest prints a CollectError's message
            # without its traceback), under pytest-xdist too: a UsageError here printed pytest's traceback
            raise pytest.Collector.CollectError(f"lossproof: {e}") from None
    library = None if only is None else {s for s in only if s != "user"}
    out = all_cases(library, users if only is None or "user" in only else [], cuda)
    if options.losses:
        out = [c for c in out if c.loss in options.losses]
    if options.formats:
        out = [c for c in out if c.fmt in options.formats]
    if options.devices:
        out = [c for c in out if c.device in options.devices]
    return out


def params(case_list) -> list:
    """pytest params of cases, with readable IDs; a case that cannot run here is skipped with its reason."""
    return [pytest.param(c, id=c.id, marks=[pytest.mark.skip(reason=c.skip)] if c.skip else []) for c in case_list]


_SELECTED = pytest.StashKey()


def _cases(config) -> list:
    if _SELECTED not in config.stash:
        config.stash[_SELECTED] = selected(config)
    return config.stash[_SELECTED]


def pytest_generate_tests(metafunc):
    names = metafunc.fixturenames
    if "lossproof_case" in names:
        metafunc.parametrize("lossproof_case", params(_cases(metafunc.config)))
    for fixture, losses in GROUPS.items():
        if fixture in names:
            metafunc.parametrize(fixture, groups(_cases(metafunc.config), losses))
    if "lossproof_special" in names:
        ps = []
        for case in _cases(metafunc.config):
            for row_id, name, kwargs, _want in SPECIAL_VALUES:
                if name == case.loss:
                    marks = [pytest.mark.skip(reason=case.skip)] if case.skip else []
                    ps.append(pytest.param((case, row_id, kwargs), id=f"{case.id}: {row_id}", marks=marks))
        metafunc.parametrize("lossproof_special", ps)


#: the battery's groups: fixtures whose tests need one subject's several losses in one format
GROUPS = {"lossproof_identity_group": ("cross_entropy", "nll_loss", "log_softmax"),
          "lossproof_kl_group": ("cross_entropy", "kl_div", "log_softmax")}


def groups(case_list, loss_names) -> list:
    """The cases grouped by subject x format x device, where a subject has every loss of ``loss_names`` (torch and
    our NumPy losses; a user's single function has no such group)."""
    by = {}
    for c in case_list:
        by.setdefault((c.subject, c.fmt, c.device, c.skip), {})[c.loss] = c
    out = [pytest.param(g, id=f"{s}-{f}-{d}", marks=[pytest.mark.skip(reason=k)] if k else [])
           for (s, f, d, k), g in by.items() if all(n in g for n in loss_names)]
    return out or [pytest.param(None, id="no-subject", marks=[pytest.mark.skip(
        reason=f"no selected subject has all of {', '.join(loss_names)} (a user subject supplies one function)")])]


@pytest.fixture
def lossproof_record(request):
    """The ``record(measurement, deviation=None, gating=True, ...)`` function of this test (the results file and the
    summary table)."""
    item = request.node
    fn = getattr(item, "function", None)  # where the test is defined (a thin module may import it)
    module = (fn.__module__ if fn is not None else item.module.__name__).rsplit(".", 1)[-1]
    return recorder_of(request.config).bind(item.nodeid, module, getattr(item, "originalname", item.name))


@pytest.fixture
def lossproof_notice(request):
    """A line for the run's summary (never silent): examples passed unmeasured, a capability not supported."""
    return recorder_of(request.config).notice


@pytest.fixture
def lossproof_accept_used(request):
    """The set of accept entries' labels that matched a finding in this run (the unused ones are reported)."""
    return recorder_of(request.config).accept_used


@pytest.fixture
def lossproof_options(request) -> Options:
    return request.config.stash[OPTIONS]


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    recorder = recorder_of(config)
    if hasattr(config, "workeroutput"):  # an xdist worker: its summary rows to the controller, records to a part
        config.workeroutput["lossproof_rows"] = recorder.summary_rows()
        config.workeroutput["lossproof_notices"] = list(recorder.notices)
        config.workeroutput["lossproof_accept_used"] = sorted(recorder.accept_used)
        recorder.write_part(config.workerinput.get("workerid", "w"))
        return
    command = " ".join(["pytest", *config.invocation_params.args])
    config.stash[_WRITTEN] = recorder.write(command)


_WRITTEN = pytest.StashKey()
_WORKER_ROWS = pytest.StashKey()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    out = getattr(node, "workeroutput", {})
    rows, notices = node.config.stash.get(_WORKER_ROWS, ([], []))
    node.config.stash[_WORKER_ROWS] = (rows + out.get("lossproof_rows", []),
                                       notices + out.get("lossproof_notices", []))
    recorder_of(node.config).accept_used.update(out.get("lossproof_accept_used", []))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    recorder = recorder_of(config)
    wrows, wnotices = config.stash.get(_WORKER_ROWS, ([], []))
    path = config.stash.get(_WRITTEN, None)
    if path:
        terminalreporter.write_line(f"lossproof results: {path}")
    notices = recorder.notices + wnotices
    if notices:
        terminalreporter.section(f"lossproof notices ({len(notices)}): examples passed unmeasured, capabilities "
                                 "not supported")
        for line in sorted(notices):
            terminalreporter.write_line(line)
    accept = config.stash[OPTIONS].accept
    if accept:
        unused = [e.label for e in accept if e.label not in recorder.accept_used]
        terminalreporter.section(f"lossproof accept: {len(accept) - len(unused)} of {len(accept)} entries used")
        for label in unused:
            terminalreporter.write_line(f"unused (matched nothing): {label}")
    reach = config.pluginmanager.get_plugin("lossproof-reach")
    reach_lines = reach.lines() if reach is not None else []
    if reach_lines:
        terminalreporter.section("lossproof property reach: examples drawn that reached the comparison with the "
                                 "exact result")
        for line in reach_lines:
            terminalreporter.write_line(line)
    lines = summary_lines(recorder.summary_rows() + wrows)
    if lines:
        terminalreporter.section("lossproof summary: worst verdict and max ULP error per loss x subject x format x "
                                 "device")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_report_header(config):
    return [f"lossproof: profile={profiles.current().name} mpmath {mpmath.__version__} (backend {BACKEND})"]
