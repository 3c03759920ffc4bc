"""Which cases a run holds: the subjects (torch, our NumPy losses, SciPy, a user's --subject) x loss x format x
device, narrowed by --only-subjects / --only-losses / --only-formats / --only-devices. One selection for every
battery file, so ``lossproof check`` (``--only-subjects user``) runs exactly the user's cases everywhere."""

from __future__ import annotations

import math

from lossproof import suite


def selected(config):
    """The suite's cases for this run's options, CUDA cases included (skipped with their reason without CUDA)."""
    import torch

    cuda = torch.cuda.is_available()
    only = config.getoption("--only-subjects")
    only = set(only.split(",")) if only else None
    cases = []
    if only is None or "torch" in only:
        cases += suite.torch_cases(cuda)
    if only is None or "numpy" in only:
        cases += suite.numpy_cases()
    if only is None or "scipy" in only:
        cases += suite.scipy_cases()
    if config.getoption("--subject"):
        from subjects.user import load

        for spec in config.getoption("--subject"):
            cases += suite.user_cases(load(spec, config.getoption("--subject-framework")), cuda)
    losses = config.getoption("--only-losses")
    formats = config.getoption("--only-formats")
    if losses:
        cases = [c for c in cases if c.loss in losses.split(",")]
    if formats:
        cases = [c for c in cases if c.fmt in formats.split(",")]
    devices = config.getoption("--only-devices")
    if devices:
        cases = [c for c in cases if c.device in devices.split(",")]
    return cases


def params(cases):
    """pytest params of cases, with readable IDs; a case that cannot run here is skipped with its reason."""
    import pytest

    return [pytest.param(c, id=c.id, marks=[pytest.mark.skip(reason=c.skip)] if c.skip else []) for c in cases]


def restrict(case, kwargs):
    """The call restricted to the parameters the subject takes: the others are dropped, so both the subject and
    the oracle see torch's defaults for them (a function without ``reduction`` is measured as "mean"). Targets
    at the default ignore index (-100) become class 0 for a function without ``ignore_index`` (it could not
    mean them). None when a drawn input needs a dropped parameter to mean what it says (a log-space target
    without log_target, an ignore index other than -100)."""
    out = {}
    for k, v in kwargs.items():
        if case.accepts(k):
            out[k] = v
        elif k == "log_target" and v:
            return None
        elif k == "ignore_index" and v != -100:
            return None
    if not case.accepts("ignore_index") and isinstance(out.get("target"), (int, list)):
        out["target"] = _unignore(out["target"])
    return out


def _unignore(t):
    if isinstance(t, list):
        return [_unignore(x) for x in t]
    return 0 if isinstance(t, int) and not isinstance(t, bool) and t == -100 else t


def explains(dev, case_or_subject, m, kwargs, values) -> tuple:
    """(True, None) when the documented deviation ``dev`` explains every failing element of measurement ``m``:
    the output meets the documented oracle (values), satisfies the documented output predicate, or stays within
    the documented error bound; else (False, the measurement to report)."""
    from fractions import Fraction

    from lossproof.measure import exact_fraction, measure, passes

    if dev.documented_oracle:
        md = measure(m.subject, m.loss, m.fmt, m.device, kwargs, values, None, oracle_name=dev.documented_oracle)
        return passes(md.verdict), md
    bad = m.failures()
    if dev.documented_output is not None:
        return all(dev.documented_output(e.y) for e in bad), m
    bounds = dev.documented_error(kwargs, m.fmt)  # one bound, or one per value element (flat index)
    for e in bad:
        if isinstance(bounds, list):
            if e.kind != "value":
                return False, m
            b = bounds[e.index[0]]
        else:
            b = bounds
        if isinstance(b, float) and math.isinf(b):  # the documented algorithm's result is unbounded there (any number, never NaN)
            if math.isnan(e.y):
                return False, m
            continue
        if not (math.isfinite(e.y) and math.isfinite(e.z_rounded)):
            return False, m
        if abs(Fraction(e.y) - exact_fraction(e.exact)) > Fraction(b):
            return False, m
    return True, m
