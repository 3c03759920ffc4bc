"""Judgement: what a measurement must reach, whether it does, and which documented behaviour explains it when it
does not. One judgement for the battery, the corpus, ``lossproof check`` and ``lossproof detect``."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

import oracles
from oracles.codec import flat
from oracles.tensors import softmax_dim
from reports.reproducers import reproducer
from subjects import deviations, jax_subject, torch_subject
from subjects.torch_subject import upstream
from subjects.torch_subject import upstream as upstream_of
from subjects.user import fixable_of, fixed_text

from . import catalogue
from .cases import restrict
from .measure import exact_fraction, exact_gradient, measure
from .problems import finite_except_masks
from .regimes import regime_of
from .verdicts import RANK, passes

__all__ = ["required_rung", "meets", "explains", "explained_together", "judge", "failure_report", "overflow_call",
           "overflow_failure", "case_reproducer", "reference_of", "shared_with_reference", "shared_prefix", "SHARED",
           "Report"]

SHARED = deviations.SHARED

#: the frameworks whose gradient is of sum(upstream * output) with torch's upstream (subjects.torch_subject.upstream;
#: subjects.jax_subject.run uses the same), so the oracle is handed that upstream; NumPy's is of sum(output)
UPSTREAM_FRAMEWORKS = ("torch", "jax")


class Report:
    """A failure report written when first read (``str``), once. While Hypothesis shrinks a failure, every failing
    candidate is judged but only the smallest one's report is shown; its exact value to 36 digits and its
    reproducer cost 10 to 250 ms a candidate (the mpmath expression of a 100-class row enclosed at 130 bits: 4.6 s
    of a 25 s float32 ``lossproof check`` of a naive cross-entropy, measured), so the search asks ``judge`` and
    ``overflow_failure`` for their reports ``lazy`` and only the one it shows is written. The text is the same
    as the eager report's: the parts (text, a Report, or a function returning text) joined in order. Concatenating
    with text (``+``) gives another Report; an AssertionError holding one prints its text (Hypothesis formats a
    failure's traceback only for the failure it reports)."""

    __slots__ = ("_parts", "_text")

    def __init__(self, *parts):
        self._parts, self._text = parts, None

    def __str__(self) -> str:
        if self._text is None:
            self._text = "".join(p if isinstance(p, str) else str(p) if isinstance(p, Report) else p()
                                 for p in self._parts)
            self._parts = ()
        return self._text

    __repr__ = __str__

    def __add__(self, other) -> Report:
        return Report(self, other)

    def __radd__(self, other) -> Report:
        return Report(other, self)


def _report(lazy: bool, write):
    """``write()``'s text now, or a Report that writes it when first read (``lazy``)."""
    return Report(write) if lazy else write()


def reference_of(case) -> str | None:
    """The reference whose documented behaviours a subject may share (docs/NUMERICS.md): for a user's JAX function,
    JAX's own (jax.nn, optax: the jax subject) where lossproof has JAX's function for that loss and JAX is
    installed; otherwise torch.nn.functional for a user's function (torch, NumPy, and JAX without a counterpart);
    none for the libraries themselves, whose own deviations apply to them."""
    if not case.is_user:
        return None
    if case.framework == "jax" and catalogue.get(case.loss).jax and jax_subject.missing() is None:
        return "jax"
    return "torch"


def shared_prefix(case) -> str:
    """How a failure the case's reference shares is recorded: "shared with torch: " or "shared with jax: "."""
    return deviations.shared_prefix(reference_of(case) or "torch")


_JAX_REFERENCE: dict = {}


def _reference_call(ref, case, kwargs):
    """(values, gradient, upstream) of the reference's own function on the call (CPU), or None where it refuses
    the call or cannot make it as given (JAX's function lacks a parameter the call uses)."""
    try:
        if ref == "torch":
            values, grads = torch_subject.run(torch_subject.function(case.loss), case.loss, case.fmt, "cpu", kwargs)
            return values, grads, upstream(len(values))
        from .cases import jax_cases

        if not _JAX_REFERENCE:
            _JAX_REFERENCE.update({(c.loss, c.fmt): c for c in jax_cases() if c.device == "cpu"})
        rc = _JAX_REFERENCE[(case.loss, case.fmt)]
        if restrict(rc, kwargs) != kwargs:
            return None
        values, grads = rc.call(kwargs)
        return values, grads, upstream(len(values))  # JAX's gradient: of sum(upstream * output), as torch's
    except Exception:  # the reference refuses the call: nothing is shared
        return None


def shared_with_reference(case, kwargs):
    """(the reference's documented deviation that it shows on ``kwargs``, the reference's measurement) or None:
    the reference's own function (``reference_of``: torch's, or JAX's for a JAX function), run on the same call
    (CPU), misses the exact value there too and one of its documented deviations explains its output. None where
    the reference is right (then the subject's failure is its own) or where no documented deviation of the
    reference's matches the input."""
    ref = reference_of(case)
    if ref is None:
        return None
    devs = deviations.matching(ref, case.loss, kwargs, case.fmt)
    if not devs:
        return None
    called = _reference_call(ref, case, kwargs)
    if called is None:
        return None
    values, grads, up = called
    m = measure(ref, case.loss, case.fmt, "cpu", kwargs, values, grads, upstream=up)
    if not m.failures():
        return None
    for d in devs:
        ok, _ = explains(d, ref, m, kwargs, values, upstream=up)
        if ok:
            return d, m
    together = explained_together(devs, m, kwargs, values, upstream=up) if len(devs) > 1 else None
    return (together, m) if together is not None else None


def required_rung(case, kind: str = "value") -> str:
    """Our NumPy losses must be accurate, values and gradient components (a gradient component with its own
    condition number, lossproof.conditioning); everything else must be stable (NUMERICS' pass line)."""
    return "accurate" if case.subject == "numpy" else "stable"


def meets(case, m) -> bool:
    return all(RANK[e.verdict] >= RANK[required_rung(case, e.kind)] for e in m.elements)


def classes_last_hint(case, kwargs: dict) -> str:
    """A note for a user's cross-entropy or NLL that failed on an input of three or more dimensions, where torch's
    classes are on axis 1: when the same function, given the classes on the last axis, meets its requirement on
    the values there, it takes them last (``dim=-1``, as timm's and many users' losses do) and ``--class-axis -1``
    checks it as written; otherwise "". A two-user trial (2026-12-07): both wrote ``dim=-1``, and the failure read
    as an overflow at the format's edge, not as a convention."""
    if not getattr(case, "is_user", False) or case.class_axis != 1 or catalogue.get(case.loss).family != "class":
        return ""
    try:
        x = np.asarray(kwargs["input"], dtype=np.float64)
        if x.ndim < 3 or x.shape[1] == x.shape[-1] == 1:
            return ""
        moved = dict(kwargs, input=np.moveaxis(x, 1, -1).tolist())
        target = kwargs.get("target")
        if target is not None and np.ndim(target) == x.ndim:  # probability targets, shaped as the input
            moved["target"] = np.moveaxis(np.asarray(target, dtype=np.float64), 1, -1).tolist()
        values, _ = case.call(moved)
        m = measure(case.subject, case.loss, case.fmt, case.device, kwargs, values, None)
    except Exception:  # the function refuses that layout, or returns another count: no hint
        return ""
    if not m.elements or not meets(case, m):
        return ""
    return (" (with the classes on the last axis this function meets its requirement on these values: it takes "
            "them last, as dim=-1 does; --class-axis -1 checks it that way)")


def case_reproducer(case, kwargs: dict, element=None) -> str:
    """The reproducer of ``case`` on ``kwargs`` (reports.reproducers), at the measured element when given."""
    extra = {}
    if element is not None:
        extra = dict(kind=element.kind, index=element.index[0], y=repr(element.y), z=element.z,
                     z_rounded=repr(element.z_rounded))
    return reproducer(case.subject, case.loss, case.fmt, case.device, kwargs, framework=case.framework,
                      class_axis=case.class_axis, takes=case.accepts if case.is_user else None, **extra)


def _covered(dev, kwargs, fmt, e) -> bool:
    s = deviations.scope_of(dev, kwargs, fmt).get(e.kind, set())
    return s is deviations.ALL or e.index[0] in s


def _meets_documented(dev, kwargs, fmt, e, z, upstream, variant) -> bool:
    """Whether element ``e`` (covered by ``dev``) meets the documented behaviour for that element: the documented
    formula's value within its radius, else its own error bound, else the documented oracle's element
    (``variant``), else the documented output predicate."""
    if dev.documented_formula is not None:
        f = dev.documented_formula(kwargs, fmt, e.kind, e.index[0], upstream)
        if f is not None:
            center, radius = f
            return math.isfinite(e.y) and abs(Fraction(e.y) - center) <= radius
    b = None
    if dev.documented_error is not None:
        b = dev.documented_error(kwargs, fmt, e.kind, e.index[0], z, upstream)
    if b is not None:
        if isinstance(b, float) and math.isinf(b):  # the documented algorithm's result is unbounded there
            return not math.isnan(e.y)
        # the documented algorithm's error is measured on the real line against the exact value, which may lie
        # beyond the format (a finite 596 for an exact 2.3e74 that rounds to inf is within a bound of 1e77)
        if z is None or not math.isfinite(e.y):
            return False
        return abs(Fraction(e.y) - z) <= Fraction(b)
    if variant is not None:
        return passes(variant.verdict)
    if dev.documented_output is not None:
        return dev.documented_output(e.y)
    return False


def _explained_elements(dev, m, kwargs, values, upstream) -> tuple:
    """(the set of (kind, index) of m's failing elements that ``dev`` explains, the measurement to report for the
    first it does not: the documented oracle's where it judged that element, else m)."""
    if upstream is None and m.subject in UPSTREAM_FRAMEWORKS:
        upstream = upstream_of(len(values))
    variants: dict = {}
    md = None
    if dev.documented_oracle:
        grads = sorted((e for e in m.elements if e.kind == "grad"), key=lambda e: e.index)
        md = measure(m.subject, m.loss, m.fmt, m.device, kwargs, values, [e.y for e in grads] or None,
                     oracle_name=dev.documented_oracle, upstream=upstream)
        variants = {(e.kind, e.index): e for e in md.elements}
    done, report = set(), None
    for e in m.failures():
        v = variants.get((e.kind, e.index))
        z = None if e.exact.is_special else exact_fraction(e.exact)
        if _covered(dev, kwargs, m.fmt, e) and _meets_documented(dev, kwargs, m.fmt, e, z, upstream, v):
            done.add((e.kind, e.index))
        elif report is None:
            report = md if v is not None and _covered(dev, kwargs, m.fmt, e) else m
    return done, report or m


def explains(dev, case_or_subject, m, kwargs, values, upstream=None) -> tuple:
    """(True, m) when the documented deviation ``dev`` explains every failing element of measurement ``m``;
    else (False, the measurement to report). A deviation excuses only what it describes: each failing element
    must lie in its scope (the quantity, value or gradient, and the flat index, subjects.deviations.scope_of)
    and meet the documented behaviour for that element: its documented formula or error bound, the documented
    oracle's element (a torch-behaviour variant, values and gradient components, measured with the same
    upstream), or the documented output predicate. Any other failing element is not explained. ``upstream``:
    the one ``m``'s gradient was measured with (default: torch's, subjects.torch_subject.upstream, for torch's and
    JAX's measurements)."""
    done, report = _explained_elements(dev, m, kwargs, values, upstream)
    return len(done) == len(m.failures()), (m if len(done) == len(m.failures()) else report)


def explained_together(devs, m, kwargs, values, upstream=None):
    """The deviation that explains the most failing elements of ``m`` when every failing element is explained
    by one of ``devs`` (each within its own scope: two documented behaviours on different elements of one
    call, as BCELoss's log clamp on one element and its backward's division by 0 on another in float16), else
    None."""
    per = [(d, _explained_elements(d, m, kwargs, values, upstream)[0]) for d in devs]
    union = set().union(*(done for _, done in per)) if per else set()
    if not per or len(union) != len(m.failures()):
        return None
    return max(per, key=lambda p: len(p[1]))[0]


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
    moved = f", passed on axis {case.class_axis}" if case.class_axis != 1 and len(shape) > 1 else ""
    if loss.family == "class":
        axis = 1 if len(shape) > 1 else 0
        parts.append(f"input shape {tuple(shape)}, classes on axis {axis}{moved}")
    elif loss.family == "row":
        # the axis the oracle reduced over: the call's dim, else what torch does without one (subjects.user moves
        # a function's classes from there to its --class-axis; a function that takes dim is told it)
        dim = kwargs.get("dim")
        if dim is not None:
            parts.append(f"input shape {tuple(shape)}, over dim {dim}")
        elif case.loss == "logsumexp":
            parts.append(f"input shape {tuple(shape)}, over every axis (no dim given)")
        else:
            parts.append(f"input shape {tuple(shape)}, over axis {softmax_dim(len(shape))}{moved}: torch's "
                         f"implicit dim for a {len(shape)}-d input, as no dim was passed (a function that takes "
                         "dim is told it)")
    if "target" in kwargs and loss.family == "class":
        parts.append("class-index targets" if catalogue.is_index_target(case.loss, kwargs) else
                     "probability targets")
    if case.loss == "kl_div":
        parts.append("input in log space" + (", target in log space" if kwargs.get("log_target") else ""))
    if case.loss in catalogue.REDUCING:
        red = kwargs.get("reduction")
        parts.append(f"reduction={red!r}" if red else "no reduction argument: taken to return the mean")
    # the parameters a user's function does not take are at torch's defaults in the exact result: a function that
    # smooths its labels on its own (timm's LabelSmoothingCrossEntropy) differs from label_smoothing=0 by design
    accepts = getattr(case, "accepts", None)
    only = dict(getattr(case, "only", ()))
    fixed = [(p, only[p]) for p in loss.params if p in only and p != "reduction"]
    if fixed and getattr(case, "is_user", False):
        parts.append(f"{fixed_text(fixed)} built in")
    untaken = [p for p in loss.params if p not in _SAID and p not in only and accepts is not None and not accepts(p)]
    if untaken:
        parts.append(f"it takes no {', '.join(untaken)}: torch's defaults assumed{_fixed_hint(case, untaken)}")
    ignored = [p for p in getattr(case, "ignored", dict)() if p != "reduction"]
    if ignored:
        parts.append(f"it ignores {', '.join(ignored)} (taken through **kwargs): torch's defaults assumed"
                     f"{_fixed_hint(case, ignored)}")
    return "; ".join(parts)


def _fixed_hint(case, params) -> str:
    """How a user's function says which of ``params`` it has built in (``--fixed``), or "" where none can be."""
    fixable = [p for p in params if p in fixable_of(case.loss)]
    if not fixable or not getattr(case, "is_user", False):
        return ""
    if len(fixable) == 1:
        return f" (--fixed {fixable[0]}=VALUE for a value it has built in)"
    return f" (--fixed NAME=VALUE for one it has built in: {' or '.join(fixable)})"


#: parameters ``conventions`` speaks of otherwise (input, targets, reduction, axis) or that change nothing
_SAID = frozenset({"input", "target", "other", "size_average", "reduce", "reduction", "dim", "keepdim"})


def _wrong_result(case, kwargs, w) -> bool:
    """Off by more than 1% of (|z| + 1) on a typical input: a value or a gradient component (NUMERICS measures both
    as output elements; a function whose values agree where its gradient does not, label smoothing of its own on
    two equal logits, is as wrong)."""
    if not math.isfinite(w.y) or w.exact.is_special:
        return False
    if regime_of(case.loss, kwargs, case.fmt) != "typical":
        return False
    z = exact_fraction(w.exact)
    return abs(Fraction(w.y) - z) > WRONG_SHARE * (abs(z) + 1)


def _non_finite_on_typical(case, kwargs, w) -> bool:
    """A user's function that returns NaN or an infinity on a typical input where the exact value is finite: no
    overflow (the input is typical), most likely a convention it does not share (a class it ignores as padding, a
    reduction over nothing)."""
    return (getattr(case, "is_user", False) and not math.isfinite(w.y) and not w.exact.is_special
            and math.isfinite(w.z_rounded) and regime_of(case.loss, kwargs, case.fmt) == "typical")


def failure_report(case, kwargs, m, deviation=None) -> str:
    w = m.worst_element
    zr = w.z_rounded
    what = f"{w.kind} element {w.index} is {w.verdict} (required: {required_rung(case, w.kind)})"
    if _wrong_result(case, kwargs, w):
        what = (f"wrong result on a typical input: {w.kind} element {w.index} is off by more than 1% of "
                f"(|z| + 1), which is no rounding error: check the conventions ({conventions(case, kwargs)})")
        if w.kind == "grad":  # a hand-written BCE's clamp(x, 0) and |x| at x = 0: gradient 1 where it is 1/2
            what += (", and the derivative at the input's ties and kinks (clamp, abs, max or where at a boundary "
                     "value give autograd one side's slope)")
    elif _non_finite_on_typical(case, kwargs, w):
        what += (f": {'NaN' if math.isnan(w.y) else 'an infinity'} on a typical input, where the exact value is "
                 f"finite: check the conventions ({conventions(case, kwargs)})")
    lines = [f"{case.id}: {what}{classes_last_hint(case, kwargs)}",
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


def judge(case, kwargs, m, values, strict: bool = False, lazy: bool = False) -> tuple:
    """(the documented deviation that explains m, or None; the failure report, or None when m meets the
    requirement or a documented deviation explains it; a ``Report`` written when first read where ``lazy``).

    A user's function whose failure its framework's reference shares (``shared_with_reference``) is reported as
    "shared with torch: <deviation>" and does not gate unless ``strict`` (--strict); where torch is right, the
    failure gates: that function is worse than the one its users would otherwise call."""
    if meets(case, m):
        return None, None
    devs = deviations.matching(case.subject, case.loss, kwargs, case.fmt)
    if not devs:
        shared = shared_with_reference(case, kwargs)
        if shared is None:
            return None, _report(lazy, lambda: failure_report(case, kwargs, m))
        d, mref = shared
        if not strict:
            return shared_prefix(case) + d.id, None
        w = mref.worst_element
        ref = reference_of(case)
        return None, _report(lazy, lambda: failure_report(case, kwargs, m, d)
                             + f"\n  shared with {ref} (gating under --strict): {ref} returns {w.y!r} there "
                               f"({w.kind} {w.index}, exact {w.z})")
    unexplained = []
    # the upstream m's gradient was measured with: by the case's framework (a JAX subject such as optax-safe is
    # not named "jax"), not by the subject's name
    up = upstream_of(len(values)) if case.framework in UPSTREAM_FRAMEWORKS else None
    for d in devs:  # measured against the documented behaviour instead, shown as a documented deviation
        ok, md = explains(d, case, m, kwargs, values, upstream=up)
        if ok:
            return d.id, None
        unexplained.append((md, d))
    together = explained_together(devs, m, kwargs, values, upstream=up) if len(devs) > 1 else None
    if together is not None:  # each failing element explained by one of them: shown as the main one
        return together.id, None
    return None, _report(lazy, lambda: "no documented deviation explains this:\n" + "\n".join(
        failure_report(case, kwargs, md, d) for md, d in unexplained))


def overflow_call(case, kw, strict: bool = False):
    """The call the no-overflow property makes of a drawn problem, or None when the property does not apply:
    finite inputs only (-inf masks aside), restricted to the parameters the function takes. An example under a
    documented deviation is measured against the documented behaviour (``overflow_failure``), not dropped;
    ``strict`` is kept for compatibility (``overflow_failure`` takes it)."""
    if not finite_except_masks(case.loss, kw) or not case.accepts("input"):
        return None
    return restrict(case, kw)


def _overflow_explained(case, kw, e, strict_shared, n_values, memo=None) -> bool:
    """Whether a matching documented deviation describes this non-finite element (its scope holds the element,
    and the element meets the documented behaviour there): one of the subject's own, or for a user's function
    (unless ``strict_shared``) one of torch's that torch itself shows on this call ("shared with torch", as in
    ``judge``). ``memo``: what the call's other elements already computed (the reference's shared deviation, which
    runs the reference and measures it: once per call, not once per element)."""
    devs = deviations.matching(case.subject, case.loss, kw, case.fmt)
    up = upstream_of(n_values) if case.framework in UPSTREAM_FRAMEWORKS else None
    for d in devs:
        if _covered(d, kw, case.fmt, e) and d.documented_oracle is None and _meets_documented(
                d, kw, case.fmt, e, None if e.exact.is_special else exact_fraction(e.exact), up, None):
            return True
    if strict_shared or reference_of(case) is None:
        return False
    memo = {} if memo is None else memo
    if "shared" not in memo:
        memo["shared"] = shared_with_reference(case, kw)
    shared = memo["shared"]
    z = None if e.exact.is_special else exact_fraction(e.exact)
    up = upstream_of(n_values) if reference_of(case) in UPSTREAM_FRAMEWORKS else None
    return shared is not None and _covered(shared[0], kw, case.fmt, e) and _meets_documented(
        shared[0], kw, case.fmt, e, z, up, None)


class _Out:
    """One output element as the deviation checks and the reproducer read it (kind, index, y, exact; z and its
    rounding to the format)."""

    def __init__(self, kind, index, y, exact, fmt=None):
        self.kind, self.index, self.y, self.exact = kind, (index,), y, exact
        self.z = exact
        self.z_rounded = exact.to(fmt) if fmt is not None else None


def overflow_failure(case, kw, values, grads, strict_shared: bool = False, lazy: bool = False):
    """The no-overflow property on one call: a message for the first non-finite value (else gradient component)
    whose correctly rounded exact counterpart is finite and that no matching documented deviation describes
    (per element, as ``explains``), or None; a ``Report`` written when first read where ``lazy``."""
    result = oracles.REGISTRY[case.loss](**kw)
    memo: dict = {}
    for i, (y, z) in enumerate(zip(values, flat(result))):
        if not math.isfinite(y) and math.isfinite(z.to(case.fmt)):
            out = _Out("value", i, y, z, case.fmt)
            if _overflow_explained(case, kw, out, strict_shared, len(values), memo):
                continue
            # the reproducer prints this element (of reduction "none"'s several), with y and RN(z) beside it
            return _report(lazy, lambda: f"{case.id}: {y} where the exact result {z} is finite"
                           + classes_last_hint(case, kw) + "\n" + case_reproducer(case, kw, out))
    if grads is not None and not all(math.isfinite(y) for y in grads):
        up = upstream(len(values)) if case.framework in UPSTREAM_FRAMEWORKS else None
        for j, (y, z) in enumerate(zip(grads, exact_gradient(case.loss, kw, result, len(grads), up))):
            if not math.isfinite(y) and math.isfinite(z.to(case.fmt)):
                out = _Out("grad", j, y, z, case.fmt)
                if _overflow_explained(case, kw, out, strict_shared, len(values), memo):
                    continue
                # the reproducer computes the gradient (a value's would print a finite number beside this NaN)
                return _report(lazy, lambda: f"{case.id}: gradient {y} where the exact one {z} is finite"
                               + classes_last_hint(case, kw) + "\n" + case_reproducer(case, kw, out))
    return None
