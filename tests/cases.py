"""Which cases a run holds: the subjects (torch, our NumPy losses, SciPy, a user's --subject) x loss x format x
device, narrowed by --only-subjects / --only-losses / --only-formats / --only-devices. One selection for every
battery file, so ``lossproof check`` (``--only-subjects user``) runs exactly the user's cases everywhere."""

from __future__ import annotations

import math

from lossproof import suite
from lossproof.measure import RANK


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


#: capabilities a subject may lack, each probed once with a small exact call before a search
PROBES = {"cross_entropy": {"probability targets": {"input": [[0.0, 1.0], [0.5, -1.0]],
                                                     "target": [[0.25, 0.75], [1.0, 0.0]]}}}


def unsupported(case) -> dict:
    """{capability: why} for the capabilities of ``PROBES`` that the case's function lacks (its call raises),
    so that a search draws only what the function can take, and the run reports the rest as not supported:
    never as a pass, never silently dropped."""
    out = {}
    for capability, kwargs in PROBES.get(case.loss, {}).items():
        try:
            case.call(restrict(case, kwargs))
        except suite.NotSupported as e:
            out[capability] = str(e).splitlines()[0] if str(e) else type(e).__name__
    return out


def restrict(case, kwargs):
    """The call restricted to the parameters the subject takes: the others are dropped, so both the subject and
    the oracle see torch's defaults for them (a function without ``reduction`` is measured as "mean"). Targets
    at the default ignore index (-100) become class 0 for a function without ``ignore_index`` (it could not
    mean them), and so do targets at any negative ignore index (a drawn ignore index that is a class keeps
    its meaning: that class). None when a drawn input needs a dropped parameter to mean what it says (a
    log-space target without log_target)."""
    out = {}
    for k, v in kwargs.items():
        if case.accepts(k):
            out[k] = v
        elif k == "log_target" and v:
            return None
    if not case.accepts("ignore_index") and isinstance(out.get("target"), (int, list)):
        out["target"] = _unignore(out["target"])
    return out


def _unignore(t):
    """Class-index targets with the negative (ignore) indices made class 0: a function without ignore_index
    gets a valid call that still exercises everything else the draw holds."""
    if isinstance(t, list):
        return [_unignore(x) for x in t]
    return 0 if isinstance(t, int) and not isinstance(t, bool) and t < 0 else t


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
        # the documented algorithm's error is measured on the real line against the exact value, which may lie
        # beyond the format (a finite 596 for an exact 2.3e74 that rounds to inf is within a bound of 1e77)
        if not math.isfinite(e.y) or e.exact.is_special:
            return False, m
        if abs(Fraction(e.y) - exact_fraction(e.exact)) > Fraction(b):
            return False, m
    return True, m


def required_rung(case, kind: str = "value") -> str:
    """Our NumPy losses must be accurate, values and gradient components (a gradient component with its own
    condition number, lossproof.conditioning); everything else must be stable (NUMERICS' pass line)."""
    return "accurate" if case.subject == "numpy" else "stable"


def meets(case, m) -> bool:
    return all(RANK[e.verdict] >= RANK[required_rung(case, e.kind)] for e in m.elements)


def failure_report(case, kwargs, m, deviation=None) -> str:
    w = m.worst_element
    lines = [f"{case.id}: {w.kind} element {w.index} is {w.verdict} (required: {required_rung(case, w.kind)})",
             f"  expected (exact) {w.z}",
             f"  correctly rounded {w.z_rounded!r} ({float.hex(w.z_rounded) if math.isfinite(w.z_rounded) else w.z_rounded})",
             f"  got               {w.y!r}",
             f"  error             {w.ulp_error:.3g} ULP, {w.bits:.1f} bits; stable allows {w.stable_bound:.3g}, "
             f"accurate allows {w.accurate_bound:.3g} (absolute)",
             "  reproducer:"]
    lines += ["    " + line for line in suite.reproducer(case, kwargs).splitlines()]
    if deviation:
        lines.append(f"  documented deviation {deviation.id}: {deviation.reason} ({deviation.link})")
    return "\n".join(lines)


def judge(case, kwargs, m, values) -> tuple:
    """(the documented deviation that explains m, or None; the failure report, or None when m meets the
    requirement or a documented deviation explains it). One judgement for the battery, the corpus and detect."""
    from subjects import deviations

    if meets(case, m):
        return None, None
    devs = deviations.matching(case.subject, case.loss, kwargs, case.fmt)
    if not devs:
        return None, failure_report(case, kwargs, m)
    unexplained = []
    for d in devs:  # measured against the documented behaviour instead, shown as a documented deviation
        ok, md = explains(d, case, m, kwargs, values)
        if ok:
            return d.id, None
        unexplained.append(failure_report(case, kwargs, md, d))
    return None, "no documented deviation explains this:\n" + "\n".join(unexplained)



def overflow_call(case, kw):
    """The call the no-overflow property makes of a drawn problem, or None when the property does not apply:
    finite inputs only (-inf masks aside), restricted to the parameters the function takes (``restrict``), and
    not under a documented deviation (test_agreement measures those against the documented behaviour). One
    rule for tests/test_properties.py and lossproof detect."""
    from subjects import deviations
    from tests.problems import finite_except_masks

    if not finite_except_masks(case.loss, kw) or not case.accepts("input"):
        return None
    kw = restrict(case, kw)
    if kw is None or deviations.matching(case.subject, case.loss, kw, case.fmt):
        return None
    return kw


def overflow_failure(case, kw, values, grads):
    """The no-overflow property on one call: a message for the first non-finite value (else gradient component)
    whose correctly rounded exact counterpart is finite, or None. One check for tests/test_properties.py and
    lossproof detect."""
    import oracles
    from lossproof.measure import _flat, exact_gradient
    from subjects.torch_subject import upstream

    result = oracles.REGISTRY[case.loss](**kw)
    for y, z in zip(values, _flat(result)):
        if not math.isfinite(y) and math.isfinite(z.to(case.fmt)):
            return f"{case.id}: {y} where the exact result {z} is finite\n" + suite.reproducer(case, kw)
    if grads is not None and not all(math.isfinite(y) for y in grads):
        up = upstream(len(values)) if case.framework == "torch" else None
        for y, z in zip(grads, exact_gradient(case.loss, kw, result, len(grads), up)):
            if not math.isfinite(y) and math.isfinite(z.to(case.fmt)):
                return f"{case.id}: gradient {y} where the exact one {z} is finite\n" + suite.reproducer(case, kw)
    return None
