"""``lossproof check LOSS TARGET``: the battery for one loss against one function (agreement, no overflow, the
special-value table) in every requested format, measured to the end, then a findings table: property x format,
the outcome, what was measured, the regime of the minimal failing input (typical first), got against exact, and
the reproducer of the most ordinary finding. Exit 0 when every cell passed and measured enough, 1 when one failed,
2 on a usage error, 3 (inconclusive) when no cell failed but one measured too little. ``--verbose`` shows pytest's
own report; ``--json PATH`` writes the findings (schema ``FINDINGS_SCHEMA``)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from dataclasses import asdict, dataclass, field

from lossproof import accept as accepting
from lossproof import catalogue, profiles
from lossproof import config as configuration
from lossproof.regimes import REGIMES
from reports import atomic
from subjects import deviations
from subjects.user import FIXABLE, FRAMEWORKS, RETURNS, SubjectError, load, parse_class_axis, parse_fixed

from . import battery
from .errors import FAILED, INCONCLUSIVE, OK, UsageError

MODULES = ("test_agreement.py", "test_properties.py", "test_special_values.py")

#: the --json file's schema: {"schema", "loss", "target", "framework", "exit", "cells": [Cell]}
FINDINGS_SCHEMA = "lossproof-findings/1"
PROPERTIES = {"test_agreement": "agreement", "test_no_overflow": "no overflow", "test_special_value": "special values"}
#: the lines of a failure report the table shows (lossproof.judge's failure_report, overflow_failure)
#: a failure's first line: the case id, then what failed
_HEADLINE = re.compile(r"^\S+-(float64|float32|float16|bfloat16)-(cpu|cuda)(: | )")
_DETAIL = re.compile(r"^\s*(expected \(exact\)|got |error |edge problem|shared with torch|documented deviation)")


@dataclass
class Cell:
    prop: str
    fmt: str
    device: str
    outcome: str  # "passed", "failed", "inconclusive", "not supported", "reported" (xfail), "skipped"
    measured: int | None = None
    budget: int | None = None
    regime: str | None = None
    minimal: str | None = None
    headline: str | None = None
    detail: list = field(default_factory=list)
    reproducer: list = field(default_factory=list)
    rows: int = 0  # special values: rows of the table held
    not_supported: list = field(default_factory=list)  # capabilities the function lacks (probed), with why
    notes: list = field(default_factory=list)  # the search's notes: an edge problem failing beside it, other failures


class _Collector:
    """A pytest plugin that keeps each test's outcome and the properties the battery recorded."""

    def __init__(self):
        self.reports = []

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.reports.append(report)


#: the skip reasons of a device this machine lacks (torch's CUDA, JAX's GPU): not shown as cells
_NO_GPU = ("CUDA is not available", "JAX sees no GPU")


def _where(nodeid: str):
    """(property, format, device) of a battery test's node id."""
    name = nodeid.split("::")[-1]
    func = name.split("[")[0]
    fmt = next((f for f in catalogue.FORMATS if f"-{f}-" in name), "?")
    device = next((d for d in catalogue.DEVICES if f"-{fmt}-{d}" in name), "?")
    return PROPERTIES.get(func, func), fmt, device


def _message(report) -> list:
    """The failure's message lines: pytest's "E" lines where it has them (the exception and its notes), not the
    traceback around them, whose frames print their arguments cut short (``message = user:…: grad element (0,) is
    unstable…  expected (exact)...nput']))``, read before as the finding's first detail line)."""
    text = report.longreprtext if hasattr(report, "longreprtext") else str(report.longrepr)
    lines = text.splitlines()
    if any(line == "E" or line.startswith("E ") for line in lines):
        return [line[1:].strip() for line in lines if line == "E" or line.startswith("E ")]
    return lines


def _cell(report) -> Cell:
    prop, fmt, device = _where(report.nodeid)
    props = dict(report.user_properties)
    cell = Cell(prop, fmt, device, report.outcome, props.get("lossproof_measured"), props.get("lossproof_budget"),
                props.get("lossproof_regime"), props.get("lossproof_minimal"))
    cell.not_supported = [v for k, v in report.user_properties if k == "lossproof_not_supported"]
    cell.notes = [v for k, v in report.user_properties if k == "lossproof_note"]
    if report.outcome == "skipped":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        if hasattr(report, "wasxfail"):
            cell.outcome, cell.headline = "reported", report.wasxfail
        elif reason.startswith("inconclusive"):
            cell.outcome, cell.headline = "inconclusive", reason
        elif reason.startswith("not supported"):
            cell.outcome, cell.headline = "not supported", reason
        else:
            cell.headline = reason
    elif report.outcome == "failed":
        lines = [ln.strip().removeprefix("AssertionError: ").removeprefix("Failed: ")
                 for ln in _message(report) if ln.strip()]
        # a finding's own headline; else what an unexpected exception says (pytest's crash line: "ValueError:
        # the function returned 1 values where ..."), not the file and line it was raised at
        crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
        at = next((i for i, ln in enumerate(lines) if _HEADLINE.match(ln)), None)
        head = lines[at] if at is not None else crash or (lines[-1] if lines else "failed")
        cell.headline = head
        cell.detail = [ln.strip() for ln in lines if _DETAIL.match(ln)][:5]
        if at is not None and at + 1 < len(lines) and _HEADLINE.match(lines[at + 1]):
            # a second finding on the same input, stated right after the first (a format change, then what its
            # values are: "wrong result on a typical input: ... check the conventions"), shown with it
            cell.detail.insert(0, "and: " + _HEADLINE.sub("", lines[at + 1], count=1))
        try:
            start = next(i for i, ln in enumerate(lines) if ln.strip() == "reproducer:" or ln.strip() == "import torch"
                         or ln.strip() == "import numpy as np")
            if lines[start].strip() == "reproducer:":
                start += 1
            stop = next((i for i in range(start, len(lines)) if lines[i].startswith(
                ("(the smallest", "edge problem", "Failing test case", "Explanation:", "You can reproduce",
                 "(the search", "(an edge problem"))
                or (".py:" in lines[i] and "Error" in lines[i])), len(lines))
            cell.reproducer = [ln.rstrip() for ln in lines[start:stop]]  # whole: a cut one does not run
        except StopIteration:
            pass
    return cell


def _merge_special(cells) -> list:
    """The special-value rows folded into one cell per format (failed wins, then reported)."""
    out, special = [], {}
    for c in cells:
        if c.prop != "special values":
            out.append(c)
            continue
        key = (c.fmt, c.device)
        m = special.setdefault(key, Cell("special values", c.fmt, c.device, "skipped", headline=c.headline))
        rank = {"failed": 3, "reported": 2, "passed": 1}
        if c.outcome in rank:
            m.rows += 1  # rows held (skipped ones are not: a cell of skipped rows says so)
        if rank.get(c.outcome, 0) > rank.get(m.outcome, 0):
            m.outcome, m.headline, m.detail, m.reproducer = c.outcome, c.headline, c.detail, c.reproducer
    return out + list(special.values())


def _order(c: Cell):
    """Failures first, the most ordinary regime first, then the format's order, then the shortest minimal input (of
    two failures alike so far, the one a user reads and runs first: a 2-logit row rather than a 3 x 256 batch),
    then the property's name (agreement, whose report gives the exact value and the allowances, before no overflow
    on the same input)."""
    outcome = {"failed": 0, "inconclusive": 1, "reported": 2, "not supported": 3}.get(c.outcome, 4)
    regime = REGIMES.index(c.regime) if c.regime in REGIMES else len(REGIMES)
    size = len(c.minimal or "")
    return outcome, regime, catalogue.FORMATS.index(c.fmt) if c.fmt in catalogue.FORMATS else 9, size, c.prop


def _short(text: str | None, width: int) -> str:
    text = text or ""
    return text if len(text) <= width else text[:width - 3] + "..."


def findings_table(loss: str, target: str, cells: list, code: int, profile: str | None = None,
                   framework: str | None = None) -> list:
    """The check's output: the title (with what a cell measures under ``profile``), the table, then the most ordinary
    finding in full, then one line on the outcome. A cell's "measured" is the examples compared with the exact
    result: the fixed edge problems, then the search's, which stops at the profile's examples or compared numbers
    (so 11 examples of long rows can be a whole search, and 259 a search after many edge problems): the count
    alone, not a fraction of an example budget it is not a fraction of."""
    cells = sorted(cells, key=_order)
    title = f"lossproof check {loss} {target}"
    if framework:
        title += f"  [{framework}]"
    if profile is not None:
        p = profiles.get(profile)
        title += (f"  (profile {p.name}: each cell measures its edge problems, then searches up to "
                  f"{p.agreement_examples:,} examples or {p.work:,.0f} compared numbers)")
    lines = [title, "",
             f"{'property':15} {'format':9} {'outcome':14} {'measured':>9}  {'regime':12} finding"]
    for c in cells:
        rows = f"{c.rows} row" + ("s" if c.rows != 1 else "")
        measured = f"{c.measured}" if c.measured is not None else (rows if c.rows else "-")
        # the finding without the case's id, which the row already says (a special-value row: its name and values)
        finding = c.minimal and f"on {c.minimal}" or re.sub(r"^.*?-(?:cpu|cuda):? ", "", c.headline or "", count=1)
        if c.outcome == "passed":
            finding = ""
        lines.append(f"{c.prop:15} {c.fmt:9} {c.outcome:14} {measured:>9}  {c.regime or '-':12} "
                     f"{_short(finding, 70)}")
    first = next((c for c in cells if c.outcome == "failed"), None)
    if first is not None:
        lines += ["", f"first to fix: {first.prop}, {first.fmt} ({first.regime or 'regime unknown'})",
                  f"  {_short(first.headline, 800)}"]
        lines += [f"  {d}" for d in first.detail]
        if first.minimal:
            lines.append(f"  minimal input: {_short(first.minimal, 200)}")
        if first.reproducer:
            lines.append("  reproducer:")
            lines += [f"    {r}" for r in first.reproducer]  # never cut: it is code to run
        lines += [f"  {_short(n, 600)}" for n in first.notes]
    lacking: dict = {}  # one line per missing capability and message, naming the formats it was seen in
    for c in cells:
        for n in c.not_supported:
            # the format named once for all ("in float64/float32 on cpu"; NumPy's cells name no device)
            key = re.sub(r" in (?:float64|float32|float16|bfloat16)( on \w+)?:",
                         lambda m: f" in {{}}{m.group(1) or ''}:", n, count=1)
            lacking.setdefault(key, []).append(c.fmt)
    for n, fmts in sorted(lacking.items()):
        fmts = [f for f in catalogue.FORMATS if f in fmts]
        n = n.replace("{}", "/".join(fmts), 1) if "{}" in n else n
        lines.append(f"not supported (reported, never passed): {_short(n, 140)}")
    inconclusive = [c for c in cells if c.outcome == "inconclusive"]
    for c in inconclusive[:3]:
        lines.append(f"{c.prop}, {c.fmt}: {_short(c.headline, 400)}")
    failed = sum(c.outcome == "failed" for c in cells)
    verdict = {OK: "every property held and measured enough",
               FAILED: f"{failed} of {len(cells)} cells failed",
               INCONCLUSIVE: f"inconclusive: {len(inconclusive)} cell(s) measured too little"}.get(code, "")
    lines += ["", f"exit {code}: {verdict}. --verbose for pytest's detail, --json PATH for the findings."]
    return lines


def _shared_notes(reports) -> list:
    """One line per documented behaviour of the reference that the function shares (agreement examples judged
    "shared with torch/jax: <id>"): not gating (--strict gates them), but a finding the user should see, with its
    count and the formats it showed in, and where the behaviour is described."""
    seen: dict = {}
    for r in reports:
        fmt = _where(r.nodeid)[1]
        for k, v in r.user_properties:
            if k == "lossproof_shared":
                n, _, dev = v.partition(" x ")
                count, fmts = seen.get(dev, (0, []))
                seen[dev] = (count + int(n), fmts + [fmt])
    lines = []
    for dev, (n, fmts) in sorted(seen.items()):
        d = next((x for x in deviations.DEVIATIONS if x.id == deviations.shared_id(dev)), None)
        what = f": {d.condition}" if d is not None else ""
        order = [f for f in catalogue.FORMATS if f in fmts]
        lines.append(f"{dev} (not gating; --strict gates it): {n} example(s) in {'/'.join(order)}"
                     f"{_short(what, 160)}")
    return lines


def _formats(value):
    out = value.split(",") if value else []
    for f in out:
        if f not in catalogue.FORMATS:
            raise UsageError(f"unknown dtype {f!r}; expected one of {', '.join(catalogue.FORMATS)}")
    return out


def cmd_check(args) -> int:
    # the flags first, then the user's module: its import (torch's, JAX's: 1 to 2 s) is not paid for a typo
    formats_ = _formats(args.dtype)
    if args.device not in (None, "cpu", "cuda"):
        raise UsageError(f"unknown device {args.device!r}; expected cpu or cuda")
    try:
        profiles.get(args.profile)
    except ValueError as e:
        raise UsageError(str(e)) from None
    user = load_conventions(args.loss, args.target, args)
    extra = ["--lossproof-subject", f"{args.loss}={args.target}", "--lossproof-framework", user.framework,
             "--lossproof-only-subjects", "user", "--lossproof-losses", args.loss,
             "--lossproof-class-axis", str(1 if args.class_axis is None else args.class_axis),
             # the function it names, not a project's [tool.lossproof.subjects] (whose failures it would report)
             "--lossproof-skip-configured-subjects"]
    if args.returns:
        extra += ["--lossproof-returns", args.returns]
    if args.targets:
        extra += ["--lossproof-targets", args.targets]
    for item in args.fixed or ():
        extra += ["--lossproof-fixed", item]
    if formats_:
        extra += ["--lossproof-formats", ",".join(formats_)]
    if args.device:
        extra += ["--lossproof-devices", args.device]
    if args.strict:
        extra.append("--lossproof-strict")
    if args.strict_specials:
        extra.append("--lossproof-strict-specials")
    if args.results:
        extra += ["--lossproof-results", args.results]
    entries = []
    if args.accept:
        try:
            entries = accepting.load_file(args.accept)
        except accepting.AcceptError as e:
            raise UsageError(str(e)) from None
        extra += ["--lossproof-accept", args.accept]
    collector = _Collector()
    if args.verbose:
        code = battery.run(MODULES, args.profile, extra, plugins=[collector])
    else:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = battery.run(MODULES, args.profile, extra + ["-p", "no:warnings"], plugins=[collector])
    reports = [r for r in collector.reports if not any(m in str(r.longrepr) for m in _NO_GPU)]
    # the identities need a subject's several losses: they do not apply to one function (counted, not shown)
    cells = _merge_special([_cell(r) for r in reports if r.nodeid.split("::")[-1].split("[")[0] in PROPERTIES])
    if code == OK and any(c.outcome == "inconclusive" for c in cells):
        code = INCONCLUSIVE
    lines = findings_table(args.loss, args.target, cells, code, args.profile,
                           framework=user.framework + (f", {user.framework_why}; --framework to choose"
                                                       if user.framework_why else "")
                           + (f"; {user.read_from}" if user.read_from else "")
                           + (f"; {args.conventions_from}" if args.conventions_from else ""))
    accepted = {}
    for r in reports:
        for k, v in r.user_properties:
            if k == "lossproof_accepted":
                n, _, label = v.partition(" x ")
                accepted[label] = accepted.get(label, 0) + int(n)
    used = set(accepted)
    notes = [f"accepted (measured, not gating): {n} finding(s) by {label}" for label, n in accepted.items()]
    notes += _shared_notes(reports)
    notes += [f"unused accept entry (matched nothing): {e.label}" for e in entries if e.label not in used]
    print("\n".join(lines[:-1] + notes + lines[-1:]))
    if args.json:
        atomic.write_json(args.json, {"schema": FINDINGS_SCHEMA, "loss": args.loss, "target": args.target,
                                      "framework": user.framework, "exit": code,
                                      "cells": [asdict(c) for c in sorted(cells, key=_order)]})
        print(f"findings: {args.json}", file=sys.stderr)
    return code


def add_conventions(parser) -> None:
    """The options that say how a user's function is called (``check`` and ``hunt``): its class axis, what it
    returns, the one kind of target it takes, the parameters it has built in (subjects.user)."""
    parser.add_argument("--class-axis", default=None, metavar="AXIS",
                   help="where your function takes the classes: 1 (torch's (N, C, ...), the default) or -1 (the "
                        "classes last, as JAX and Keras)")
    parser.add_argument("--returns", default=None, metavar="WHAT",
                   help=f"what your function returns: {', '.join(RETURNS)} (default: reduction-arg when it takes "
                        "reduction, else mean); per-example is torch's reduction 'none' (optax, Keras)")
    parser.add_argument("--targets", default=None, metavar="KIND",
                   help="the one kind of target your cross_entropy takes: probability (soft or one-hot labels) or "
                        "index (default: both, as torch's); the other is reported as not supported")
    parser.add_argument("--fixed", action="append", default=None, metavar="NAME=VALUE",
                   help=f"a loss parameter your function has built in instead of taking it (one of "
                        f"{', '.join(FIXABLE)}; label_smoothing=0.1, ignore_index=0, log_target=true): the exact "
                        "result uses that value, every other is reported as not supported; repeatable")


def project_conventions(loss: str, target: str, args) -> str | None:
    """The conventions the project's pyproject.toml sets for this very function (a ``[tool.lossproof.subjects]``
    table of the same loss and target, lossproof.config.Subject; its framework, else the table's ``framework``),
    taken into ``args`` where the command line gave none of its own (``fixed`` per parameter: a ``--fixed`` of one
    keeps the table's others): where they came from, or None when the project sets none for it."""
    try:
        cfg = configuration.load(search_from=os.getcwd())
    except configuration.ConfigError as e:
        raise UsageError(str(e)) from None
    same = [s for s in cfg.subjects if s.loss == loss and s.target == target]
    own = next((s for s in same if s.own()), same[0] if same else None)
    notes = []
    if own is not None:
        taken = []
        for key, value in own.own().items():
            if key == "fixed":  # per parameter: a --fixed of one keeps the table's others
                given = {str(item).partition("=")[0].strip() for item in args.fixed or ()}
                more = [f"{k}={v}" for k, v in value if k not in given]
                if args.fixed is None or more:
                    args.fixed = list(args.fixed or ()) + more
                    taken.append(key)
            elif getattr(args, key) is None:
                setattr(args, key, value)
                taken.append(key)
        if taken:
            notes.append(f"{', '.join(taken)} from {own.where}")
    if args.framework is None and cfg.framework is not None:  # the project's framework, as its pytest run has it
        args.framework = cfg.framework
        notes.append(f"framework from {cfg.path}: [tool.lossproof]")
    return "; ".join(notes) or None


def load_conventions(loss: str, target: str, args):
    """The user's subject under the convention options (``add_conventions``), those the command line leaves out
    taken from the project's table for the function (``project_conventions``, noted in ``args.conventions_from``);
    UsageError (one line) otherwise."""
    args.conventions_from = project_conventions(loss, target, args)
    try:
        return load(f"{loss}={target}", args.framework, parse_class_axis(1 if args.class_axis is None
                                                                         else args.class_axis),
                    args.returns, args.targets, parse_fixed(args.fixed))
    except SubjectError as e:  # a convention the table gave is named as such, not as an option never given
        raise UsageError(f"{e} (with {args.conventions_from})" if args.conventions_from else str(e)) from None


def add_parser(sub):
    c = sub.add_parser("check", help="the whole battery for one loss against your function")
    c.add_argument("loss", help="the loss it implements: cross_entropy, nll_loss, softplus, ...")
    c.add_argument("target", help="package.module:function or path/to/file.py:function")
    c.add_argument("--framework", default=None,
                   help=f"{', '.join(FRAMEWORKS)} (default: inferred from the function's code, torch where it names "
                        "none)")
    add_conventions(c)
    c.add_argument("--dtype", default=None, help="formats to check, comma-separated (default: all)")
    c.add_argument("--device", default=None, help="cpu or cuda (default: every available device)")
    c.add_argument("--profile", default="ci", help="dev, ci (default) or thorough")
    c.add_argument("--results", default=None, metavar="PATH", help="the results file (default out/results.json)")
    c.add_argument("--json", default=None, metavar="PATH", help=f"also write the findings as JSON ({FINDINGS_SCHEMA})")
    c.add_argument("--verbose", action="store_true", help="show pytest's own report as well")
    c.add_argument("--accept", default=None, metavar="FILE",
                   help="findings you accept, each with a reason (TOML [[accept]] entries: lossproof.accept)")
    c.add_argument("--strict", action="store_true",
                   help="also gate on failures that torch shares (its documented behaviours), listed otherwise")
    c.add_argument("--strict-specials", action="store_true",
                   help="also gate on special values of non-finite inputs")
    c.set_defaults(fn=cmd_check)
