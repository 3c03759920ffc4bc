"""lossproof's public API for a user's own tests: the battery for one loss against one callable, in process.

    import lossproof

    def test_my_cross_entropy_is_stable():
        lossproof.assert_stable("cross_entropy", my_cross_entropy, formats=["float32", "bfloat16"])

    findings = lossproof.check("softplus", my_softplus)   # a Findings: .ok, .table(), .cells, .findings

``check`` runs what ``lossproof check`` runs (agreement with the exact oracle on the edge problems and a
Hypothesis search, no overflow, the special-value table) in every requested format and device, and returns its
findings instead of printing them; ``assert_stable`` raises an AssertionError holding the findings table when a
gating property fails, or when the check measured too little to mean anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from subjects.user import (
    FRAMEWORKS,
    UserSubject,
    accepted_parameters,
    infer_framework,
    load_function,
    module_conventions,
)

from . import catalogue, judge, profiles
from . import search as searches
from .cases import NotSupported, restrict, user_cases
from .judge import case_reproducer
from .measure import measure
from .problems import finite_except_masks
from .specials import CASES as SPECIAL_VALUES
from .verdicts import passes

__all__ = ["check", "assert_stable", "Findings", "Finding", "load_function", "PROPERTIES"]

PROPERTIES = ("agreement", "no_overflow", "special_values")


@dataclass
class Finding:
    """One failing (property, format, device) cell: what failed, on which minimal input, and how to see it again."""

    prop: str
    fmt: str
    device: str
    message: str
    minimal: dict | None = None
    reproducer: str | None = None


@dataclass
class Cell:
    """One (property, format, device) of a check: what it measured and how it ended."""

    prop: str
    fmt: str
    device: str
    status: str  # "passed", "failed", "inconclusive" (measured too little: never a pass), "skipped"
    measured: int = 0
    seconds: float = 0.0
    note: str | None = None
    #: the capabilities the function lacks ({capability: why}: probability targets, a reduction), reported as not
    #: supported, never passed: the cell measured the rest
    not_supported: dict = field(default_factory=dict)


@dataclass
class Findings:
    loss: str
    subject: str
    cells: list = field(default_factory=list)
    findings: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No failure, and every cell measured enough: an inconclusive cell is no pass (docs/NUMERICS.md)."""
        return not self.findings and not self.inconclusive

    @property
    def inconclusive(self) -> list:
        """The cells that measured too little to mean anything (``Cell.note`` says why)."""
        return [c for c in self.cells if c.status == "inconclusive"]

    def table(self) -> str:
        lines = [f"lossproof check {self.loss} {self.subject}"]
        for c in self.cells:
            lines.append(f"  {c.prop:15} {c.fmt:9} {c.device:5} {c.status:14} {c.measured:>5} measured"
                         + (f"  ({c.note})" if c.note else "")
                         + (f"  (not supported: {', '.join(c.not_supported)})" if c.not_supported else ""))
        for f in self.findings:
            lines.append("")
            lines.append(f"{f.prop} {f.fmt} {f.device}:")
            lines += ["  " + ln for ln in f.message.splitlines()[:12]]
        return "\n".join(lines)


def _choices(what: str, given: Iterable[str] | None, known: Iterable[str]) -> tuple[str, ...] | None:
    """``given`` as a tuple, or ValueError naming the first unknown value (an unknown format or device would
    otherwise select no cell at all: an empty check, a silent pass)."""
    if given is None:
        return None
    if isinstance(given, str):  # formats="float32": one value, not its characters
        given = (given,)
    out = tuple(given)
    known = tuple(known)
    for v in out:
        if v not in known:
            raise ValueError(f"unknown {what} {v!r}; expected one of {', '.join(known)}")
    if not out:
        raise ValueError(f"no {what} given; expected some of {', '.join(known)}")
    return out


def _subject(loss: str, fn: Callable[..., Any] | str, framework: str | None, target: str | None, class_axis: int = 1,
             returns: str | None = None, targets: str | None = None, fixed: Any = ()) -> UserSubject:
    if loss not in catalogue.NAMES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {', '.join(catalogue.NAMES)}")
    if framework is not None and framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; expected one of {', '.join(FRAMEWORKS)}")
    if isinstance(fn, str):
        target, fn = fn, load_function(fn)
    if not callable(fn):
        raise TypeError(f"{fn!r} is not callable")
    name = target or f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
    framework, why = (framework, "") if framework is not None else infer_framework(fn)
    returns, fixed, read_from = module_conventions(fn, name, loss, returns, fixed)
    return UserSubject(loss, name, framework, fn, accepted_parameters(fn), class_axis, returns, why, targets,
                       fixed, read_from)


def _special_values(case: Any, strict: bool = False) -> tuple[int, str | None, dict | None]:
    """The gating rows of the special-value table for one case: (measured, failure message or None, input); a
    user function's output that torch shares there (a documented behaviour of torch's) gates only if ``strict``."""
    measured = 0
    for row_id, name, kwargs, _want in SPECIAL_VALUES:
        if name != case.loss:
            continue
        kw = restrict(case, kwargs)
        if kw is None or not finite_except_masks(case.loss, kw):
            continue
        try:
            values, _ = case.call(kw)
        except NotSupported:
            continue
        measured += 1
        m = measure(case.subject, case.loss, case.fmt, case.device, kw, values, None)
        if not passes(m.verdict) and (strict or judge.shared_with_reference(case, kw) is None):
            w = m.worst_element
            return measured, f"{row_id}: got {w.y!r}, exact {w.z} ({w.verdict})", kw
    return measured, None, None


def check(loss: str, fn: Callable[..., Any] | str, *, framework: str | None = None,
          formats: Iterable[str] | None = None, devices: Iterable[str] | None = None, profile: str | None = None,
          properties: Iterable[str] = PROPERTIES, target: str | None = None, strict: bool = False,
          class_axis: int = 1, returns: str | None = None, targets: str | None = None,
          fixed: dict | None = None) -> Findings:
    """The battery for ``loss`` against ``fn`` (a callable, or "module:function" / "path/file.py:function"; a
    torch, numpy or jax function), in every format of ``formats`` (default all) and device of ``devices``
    (default every available one), under its conventions: ``class_axis`` 1 (torch's) or -1 (the classes last),
    ``returns`` "mean", "sum", "per-example" or "reduction-arg" (default: reduction-arg when it takes
    ``reduction``, else mean), ``targets`` "probability" or "index" for a cross_entropy that takes one kind only
    (default: both, as torch's), ``fixed`` the loss parameters the function has built in instead of taking them
    ({"label_smoothing": 0.1}: ``subjects.user.FIXABLE``; the exact result uses them, other values are not
    supported); ``framework`` None infers it from the function's code (torch where it names
    none: ``subjects.user.infer_framework``). Failures that its framework's reference shares (torch's, or JAX's
    for a JAX function: their documented behaviours) are listed, not gating, unless ``strict``."""
    import torch

    user = _subject(loss, fn, framework, target, class_axis, returns, targets, fixed or ())
    formats = _choices("format", formats, catalogue.FORMATS) or catalogue.FORMATS
    devices = _choices("device", devices, catalogue.DEVICES)
    properties = _choices("property", properties, PROPERTIES) or PROPERTIES
    out = Findings(loss, user.name)
    with profiles.use(profile):
        for case in user_cases(user, torch.cuda.is_available()):
            if case.fmt not in formats or (devices and case.device not in devices):
                continue
            if case.skip:
                if case.device == "cpu":
                    out.cells.append(Cell("all", case.fmt, case.device, "skipped", note=case.skip))
                continue
            for prop in properties:
                t0 = time.monotonic()
                why = None  # a passing cell that measured too little is inconclusive, never passed
                lacking: dict = {}  # the capabilities the function lacks (a search finds them)
                if prop == "special_values":
                    measured, message, kw = _special_values(case, strict)
                    minimal = kw
                else:
                    run = searches.search(prop, case, strict_shared=strict)
                    message = run.outcome()
                    measured, minimal = run.state["measured"], run.state["last_fail"]
                    why = None if message else run.inconclusive()
                    lacking = dict(run.state["missing"])
                status = "failed" if message else "inconclusive" if why else "passed"
                cell = Cell(prop, case.fmt, case.device, status, measured, time.monotonic() - t0, why, lacking)
                out.cells.append(cell)
                if message:
                    out.findings.append(Finding(prop, case.fmt, case.device, message, minimal,
                                                case_reproducer(case, minimal) if minimal else None))
    return out


def assert_stable(loss: str, fn: Callable[..., Any] | str, **kwargs: Any) -> Findings:
    """``check``, raising an AssertionError with the findings table when a gating property fails."""
    findings = check(loss, fn, **kwargs)
    if not findings.ok:
        raise AssertionError(findings.table())
    return findings
