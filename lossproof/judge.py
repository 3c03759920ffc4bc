"""Judgement: what a measurement must reach, whether it does, and which documented behaviour explains it when it
does not. One judgement for the battery, the corpus, ``lossproof check`` and ``lossproof detect``."""

from __future__ import annotations

import math
from fractions import Fraction

import oracles
from oracles.codec import flat
from reports.reproducers import reproducer
from subjects import deviations, torch_subject
from subjects.torch_subject import upstream

from . import catalogue
from .cases import restrict
from .measure import exact_fraction, exact_gradient, measure
from .problems import finite_except_masks
from .regimes import regime_of
from .verdicts import RANK, passes

__all__ = ["required_rung", "meets", "explains", "judge", "failure_report", "overflow_call", "overflow_failure",
           "case_reproducer", "reference_of", "shared_with_reference", "SHARED"]

SHARED = deviations.SHARED


def reference_of(case) -> str | None:
    """The reference whose documented behaviours a subject may share: torch.nn.functional for a user's function
    (torch or NumPy, docs/NUMERICS.md); none for the libraries themselves, whose own deviations apply to them."""
    return "torch" if case.is_user else None


def shared_with_reference(case, kwargs):
    """(the reference's documented deviation that it shows on ``kwargs``, the reference's measurement) or None:
    torch's own function, run on the same call (CPU), misses the exact value there too and one of its documented
    deviations explains its output. None where torch is right (then the subject's failure is its own) or where no
    documented deviation of torch's matches the input."""
    ref = reference_of(case)
    if ref is None:
        return None
    devs = deviations.matching(ref, case.loss, kwargs, case.fmt)
    if not devs:
        return None
    try:
        values, grads = torch_subject.run(torch_subject.function(case.loss), case.loss, case.fmt, "cpu", kwargs)
    except Exception:  # torch refuses the call: nothing is shared
        return None
    m = measure(ref, case.loss, case.fmt, "cpu", kwargs, values, grads, upstream=upstream(len(values)))
    if not m.failures():
        return None
    for d in devs:
        ok, _ = explains(d, ref, m, kwargs, values)
        if ok:
            return d, m
    return None


def required_rung(case, kind: str = "value") -> str:
    """Our NumPy losses must be accurate, values and gradient components (a gradient component with its own
    condition number, lossproof.conditioning); everything else must be stable (NUMERICS' pass line)."""
    return "accurate" if case.subject == "numpy" else "stable"


def meets(case, m) -> bool:
    return all(RANK[e.verdict] >= RANK[required_rung(case, e.kind)] for e in m.elements)


def case_reproducer(case, kwargs: dict, element=None) -> str:
    """The reproducer of ``case`` on ``kwargs`` (reports.reproducers), at the measured element when given."""
    extra = {}
    if element is not None:
        extra = dict(kind=element.kind, index=element.index[0], y=repr(element.y), z=element.z,
                     z_rounded=repr(element.z_rounded))
    return reproducer(case.subject, case.loss, case.fmt, case.device, kwargs, framework=case.framework, **extra)


def explains(dev, case_or_subject, m, kwargs, values) -> tuple:
    """(True, None) when the documented deviation ``dev`` explains every failing element of measurement ``m``:
    the output meets the documented oracle (values), satisfies the documented output predicate, or stays within
    the documented error bound; else (False, the measurement to report)."""
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
        if isinstance(b, float) and math.isinf(b):  # the documented algorithm's result is unbounded there
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


#: "wrong result" (docs/NUMERICS.md, "Regimes"): off by more than this share of (|z| + 1) on a typical input is
#: almost never rounding, but a semantics or convention error
WRONG_SHARE = Fraction(1, 100)


def conventions(case, kwargs) -> str:
    """The conventions lossproof assumed for this call, as one line (printed beside a wrong result)."""
    loss = catalogue.get(case.loss)
    parts = []
    x = kwargs.get("input")
    shape = []
    while isinstance(x, list):
        shape.append(len(x))
        x = x[0] if x else None
    if loss.family in ("class", "row"):
        parts.append(f"input shape {tuple(shape)}, classes on axis {1 if len(shape) > 1 else 0}")
    if "target" in kwargs and loss.family == "class":
        parts.append("class-index targets" if catalogue.is_index_target(case.loss, kwargs) else
                     "probability targets")
    if case.loss == "kl_div":
        parts.append("input in log space" + (", target in log space" if kwargs.get("log_target") else ""))
    if case.loss in catalogue.REDUCING:
        red = kwargs.get("reduction")
        parts.append(f"reduction={red!r}" if red else "no reduction argument: taken to return the mean")
    return "; ".join(parts)


def _wrong_result(case, kwargs, w) -> bool:
    if w.kind != "value" or not math.isfinite(w.y) or w.exact.is_special:
        return False
    if regime_of(case.loss, kwargs, case.fmt) != "typical":
        return False
    z = exact_fraction(w.exact)
    return abs(Fraction(w.y) - z) > WRONG_SHARE * (abs(z) + 1)


def failure_report(case, kwargs, m, deviation=None) -> str:
    w = m.worst_element
    zr = w.z_rounded
    what = f"{w.kind} element {w.index} is {w.verdict} (required: {required_rung(case, w.kind)})"
    if _wrong_result(case, kwargs, w):
        what = (f"wrong result on a typical input: {w.kind} element {w.index} is off by more than 1% of "
                f"(|z| + 1), which is no rounding error: check the conventions ({conventions(case, kwargs)})")
    lines = [f"{case.id}: {what}",
             f"  expected (exact) {w.z}",
             f"  correctly rounded {zr!r} ({float.hex(zr) if math.isfinite(zr) else zr})",
             f"  got               {w.y!r}",
             f"  error             {w.ulp_error:.3g} ULP, {w.bits:.1f} bits; stable allows {w.stable_bound:.3g}, "
             f"accurate allows {w.accurate_bound:.3g} (absolute)",
             "  reproducer:"]
    lines += ["    " + line for line in case_reproducer(case, kwargs, w).splitlines()]
    if deviation:
        lines.append(f"  documented deviation {deviation.id}: {deviation.reason} ({deviation.link})")
    return "\n".join(lines)


def judge(case, kwargs, m, values, strict: bool = False) -> tuple:
    """(the documented deviation that explains m, or None; the failure report, or None when m meets the
    requirement or a documented deviation explains it).

    A user's function whose failure its framework's reference shares (``shared_with_reference``) is reported as
    "shared with torch: <deviation>" and does not gate unless ``strict`` (--strict); where torch is right, the
    failure gates: that function is worse than the one its users would otherwise call."""
    if meets(case, m):
        return None, None
    devs = deviations.matching(case.subject, case.loss, kwargs, case.fmt)
    if not devs:
        shared = shared_with_reference(case, kwargs)
        if shared is None:
            return None, failure_report(case, kwargs, m)
        d, mref = shared
        if not strict:
            return SHARED + d.id, None
        w = mref.worst_element
        return None, (failure_report(case, kwargs, m, d)
                      + f"\n  shared with torch (gating under --strict): torch returns {w.y!r} there "
                        f"({w.kind} {w.index}, exact {w.z})")
    unexplained = []
    for d in devs:  # measured against the documented behaviour instead, shown as a documented deviation
        ok, md = explains(d, case, m, kwargs, values)
        if ok:
            return d.id, None
        unexplained.append(failure_report(case, kwargs, md, d))
    return None, "no documented deviation explains this:\n" + "\n".join(unexplained)


def overflow_call(case, kw, strict: bool = False):
    """The call the no-overflow property makes of a drawn problem, or None when the property does not apply:
    finite inputs only (-inf masks aside), restricted to the parameters the function takes, and not under a
    documented deviation of the subject or (unless ``strict``) of its reference (the agreement property measures
    those, against the documented behaviour, and a user's function where torch is right there still gates)."""
    if not finite_except_masks(case.loss, kw) or not case.accepts("input"):
        return None
    kw = restrict(case, kw)
    if kw is None or deviations.matching(case.subject, case.loss, kw, case.fmt):
        return None
    ref = reference_of(case)
    if ref is not None and not strict and deviations.matching(ref, case.loss, kw, case.fmt):
        return None
    return kw


def overflow_failure(case, kw, values, grads):
    """The no-overflow property on one call: a message for the first non-finite value (else gradient component)
    whose correctly rounded exact counterpart is finite, or None."""
    result = oracles.REGISTRY[case.loss](**kw)
    for y, z in zip(values, flat(result)):
        if not math.isfinite(y) and math.isfinite(z.to(case.fmt)):
            return f"{case.id}: {y} where the exact result {z} is finite\n" + case_reproducer(case, kw)
    if grads is not None and not all(math.isfinite(y) for y in grads):
        up = upstream(len(values)) if case.framework == "torch" else None
        for y, z in zip(grads, exact_gradient(case.loss, kw, result, len(grads), up)):
            if not math.isfinite(y) and math.isfinite(z.to(case.fmt)):
                return (f"{case.id}: gradient {y} where the exact one {z} is finite\n"
                        + case_reproducer(case, kw))
    return None
