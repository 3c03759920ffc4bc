"""Which cases a run holds: the subjects (torch, our NumPy losses, SciPy, a user's --subject) x loss x format x
device, narrowed by --only-subjects / --only-losses / --only-formats / --only-devices. One selection for every
battery file, so ``lossproof check`` (``--only-subjects user``) runs exactly the user's cases everywhere."""

from __future__ import annotations

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
    the oracle see torch's defaults for them (a function without ``reduction`` is measured as "mean"). None
    when a drawn input needs a dropped parameter to mean what it says (a -100 target without ignore_index, a
    log-space target without log_target)."""
    out = {}
    for k, v in kwargs.items():
        if case.accepts(k):
            out[k] = v
        elif k == "log_target" and v:
            return None
    if not case.accepts("ignore_index") and "target" in out:
        t = out["target"]
        flat = t if isinstance(t, list) else [t]
        while flat and isinstance(flat[0], list):
            flat = [x for row in flat for x in row]
        if any(isinstance(x, int) and x == -100 for x in flat):
            return None
    return out
