"""The cases lossproof measures: which subject runs which loss in which format on which device, and how to call
it with exact inputs.

A ``Case`` wraps one subject's function (torch's, our NumPy losses', SciPy's, a user's) for one loss, format and
device: ``call(kwargs)`` returns (flattened values, flattened gradient or None) as Python floats, and raises
``NotSupported`` for a capability the function lacks (a format, probability targets, a parameter): reported,
never passed. ``restrict`` gives a call only the parameters the function takes, and ``unsupported`` probes the
capabilities of the catalogue before a search, so that the search draws only what the function can take.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import oracles
from oracles.codec import flat
from oracles.formats import round_to_format
from subjects import array_subject, jax_subject, numpy_losses, torch_subject
from subjects.array_subject import FormatChanged
from subjects.user import UserSubject, adapt

from . import catalogue
from .catalogue import DEVICES, FORMATS

__all__ = ["Case", "NotSupported", "torch_cases", "numpy_cases", "scipy_cases", "jax_cases", "user_cases",
           "all_cases", "restrict", "unsupported", "format_changed", "LIBRARIES"]

#: the library subjects (the report orders its columns itself: reports/page.py SUBJECT_ORDER)
LIBRARIES = ("torch", "numpy", "scipy", "jax", "optax-safe")
#: the library subjects a run without a choice checks (``all_cases(None)``): every one; a library that is not
#: installed has each of its cases skipped with that reason (scipy, jax: optional outside the test extra)
DEFAULT_LIBRARIES = LIBRARIES

class NotSupported(Exception):
    """The subject lacks this capability (a format, probability targets, a parameter): reported, not passed."""


@dataclass(frozen=True)
class Case:
    subject: str  # "torch", "numpy", "scipy", "jax", "user:<target>"
    framework: str  # "torch", "numpy" or "jax"
    loss: str
    fmt: str
    device: str
    call: Callable  # (kwargs) -> (values, grads or None)
    accepts: Callable[[str], bool] = lambda key: True
    skip: str | None = None  # a reason to skip, shown and counted
    target: str | None = None  # a user subject's MODULE:FUNCTION or path/file.py:FUNCTION
    #: parameters the function takes at one value only, and why (SciPy's rel_entr: reduction "none", no log-space
    #: target): a call is made with that value (``restrict``), the others are reported as not supported
    #: (``unsupported``), so that every draw reaches the comparison instead of most raising
    only: tuple = ()
    only_why: str = ""
    class_axis: int = 1  # where the function takes the classes (a user's --class-axis; torch's 1 otherwise)
    #: {parameter: why} for the parameters a user's function takes through ``**kwargs`` and ignores (it returns the
    #: same with and without them where the exact result changes: ``ignored_parameters``), probed when first asked:
    #: they are not passed (the exact result keeps torch's default) and are reported as not supported
    ignored: Callable[[], dict] = dict

    @property
    def id(self) -> str:
        return f"{self.subject}-{self.loss}-{self.fmt}-{self.device}"

    @property
    def is_user(self) -> bool:
        return self.subject.startswith("user:")


#: case id -> the latest call's format change ("f returns float32 for float64 input"), for the search to report
_FORMAT_CHANGED: dict = {}


def format_changed(case) -> str | None:
    """The format change of the case's latest call (a user function returning another format than its input's),
    taken: None when it returned the input's format."""
    return _FORMAT_CHANGED.pop(case.id, None)


def _into(values, fmt):
    """Values returned in another format, cast into the input's (as the caller storing them would): judged there."""
    return [round_to_format(v, fmt) for v in values]


def _cuda_skip(device: str, cuda_available: bool) -> str | None:
    return None if device == "cpu" or cuda_available else "CUDA is not available on this machine"


def _framework_case(framework, runner, subject, fn, loss, fmt, device, accepts=lambda k: True, skip=None,
                    target=None, only=(), only_why="", class_axis=1, ignored=dict):
    """A Case that calls ``fn`` through a framework's runner (torch_subject.run, jax_subject.run). What a failing
    call means: a change of format is a finding, judged like any other output; a library's own refusal (torch's
    "not implemented for 'Half'", the JAX adapter's NotImplementedError for a reduction it has no counterpart of)
    and a user's function raising are capabilities it lacks, reported as not supported, never a pass; any other
    exception of a library function is an error of the run."""
    user = subject.startswith("user:")

    def call(kwargs):
        try:
            return runner(fn, loss, fmt, device, kwargs, user=user)
        except FormatChanged as e:  # a finding (the search reports it), its values judged like any others
            _FORMAT_CHANGED[f"{subject}-{loss}-{fmt}-{device}"] = str(e)
            return _into(e.values, fmt), e.grads
        except Exception as e:
            refused = (isinstance(e, NotImplementedError) if framework == "jax"
                       else "not implemented" in str(e).lower())
            if not (user or refused):
                raise
            first = str(e).splitlines()[0] if str(e) else ""
            raise NotSupported(f"{subject} {loss} in {fmt} on {device}: {type(e).__name__}: {first}") from None

    return Case(subject, framework, loss, fmt, device, call, accepts, skip, target, only, only_why, class_axis,
                ignored)


def _torch_case(subject, fn, loss, fmt, device, *args, **kwargs):
    return _framework_case("torch", torch_subject.run, subject, fn, loss, fmt, device, *args, **kwargs)


def _jax_case(subject, fn, loss, fmt, device, *args, **kwargs):
    return _framework_case("jax", jax_subject.run, subject, fn, loss, fmt, device, *args, **kwargs)


def torch_cases(cuda_available: bool) -> list:
    """torch's function of every loss in every format, on the CPU and on CUDA (skipped with the reason without)."""
    out = []
    for loss in catalogue.NAMES:
        fn = torch_subject.function(loss)
        for fmt in FORMATS:
            for device in DEVICES:
                out.append(_torch_case("torch", fn, loss, fmt, device, skip=_cuda_skip(device, cuda_available)))
    return out


def numpy_cases() -> list:
    """Our NumPy losses (subjects/numpy_losses.py) with their analytical gradients, in every NumPy format."""
    out = []
    for loss in catalogue.NAMES:
        fn = getattr(numpy_losses, loss)
        for fmt in FORMATS:
            skip = "NumPy has no bfloat16" if fmt == "bfloat16" else None
            # values only for softmax: our NumPy gradient is of sum(softmax), identically zero (see
            # torch_subject.upstream); torch's softmax gradient is checked with a non-uniform upstream
            grad_fn = None if loss == "softmax" else _numpy_grad(loss)

            def call(kwargs, fn=fn, loss=loss, fmt=fmt, grad_fn=grad_fn):
                return array_subject.run(fn, loss, fmt, kwargs, grad_fn=grad_fn)

            out.append(Case("numpy", "numpy", loss, fmt, "cpu", call, skip=skip))
    return out


def _numpy_grad(loss):
    def fn(**kw):
        return numpy_losses.grad(loss, **kw)

    return fn


def scipy_cases() -> list:
    """SciPy's counterparts (scipy.special) of the losses that have one, in every NumPy format; without SciPy (an
    optional dependency: lossproof's test extra) every one of them is skipped with that reason."""
    out = []
    try:
        functions = array_subject.scipy_functions()
        missing = None
    except ImportError:
        functions = {loss.name: (None, ()) for loss in catalogue.LOSSES if loss.scipy}
        missing = "SciPy is not installed (pip install scipy): its subject is not checked"
    for loss, (fn, params) in functions.items():
        for fmt in FORMATS:
            skip = missing or ("NumPy (and so SciPy) has no bfloat16" if fmt == "bfloat16" else None)

            def call(kwargs, fn=fn, loss=loss, fmt=fmt):
                try:
                    return array_subject.run(fn, loss, fmt, kwargs)
                except NotImplementedError as e:
                    raise NotSupported(str(e)) from None

            only = _SCIPY_ONLY.get(loss, ())
            out.append(Case("scipy", "numpy", loss, fmt, "cpu", call, params.__contains__, skip,
                            only=only, only_why=_SCIPY_ONLY_WHY if only else ""))
    return out


#: SciPy's counterparts that take a parameter at one value only (subjects/array_subject.scipy_functions): kl_div is
#: rel_entr, the pointwise probability-target KL (issue 14: 64 of 105 agreement examples raised inside a pass)
_SCIPY_ONLY = {"kl_div": (("reduction", "none"), ("log_target", False))}
_SCIPY_ONLY_WHY = "SciPy's rel_entr is the pointwise, probability-target KL only"


def _jax_skips(device: str):
    """(why JAX's cases on ``device`` cannot run here, or None)."""
    missing = jax_subject.missing()
    if missing:
        return missing
    return jax_subject.gpu_skip() if device == "cuda" else None


def jax_cases(subject: str = "jax") -> list:
    """JAX's functions (jax.nn, jax.scipy, optax: the catalogue's ``jax``; ``optax-safe``: optax's
    safe_softmax_cross_entropy, subjects/jax_subject.safe_functions) in every format, on the CPU and on a GPU
    (skipped with the reason where JAX sees none); without JAX (an optional dependency: lossproof's jax and test
    extras) every one of them is skipped with that reason."""
    skips = {d: _jax_skips(d) for d in DEVICES}
    if skips["cpu"] is None:
        functions = jax_subject.functions() if subject == "jax" else jax_subject.safe_functions()
    else:
        names = [loss.name for loss in catalogue.LOSSES if loss.jax] if subject == "jax" else ["cross_entropy"]
        functions = {name: (None, catalogue.get(name).params, ()) for name in names}
    out = []
    for loss, (fn, params, only) in functions.items():
        for fmt in FORMATS:
            for device in DEVICES:
                out.append(_jax_case(subject, fn, loss, fmt, device, params.__contains__, skips[device],
                                     only=only, only_why=_JAX_ONLY_WHY.get(loss, "") if only else ""))
    return out


#: why a JAX function is checked at one value of a parameter (subjects/jax_subject.functions)
_JAX_ONLY_WHY = {"kl_div": "optax's kl_divergence sums the pointwise terms (over the classes, or over every axis: "
                           "torch's 'sum'); torch's pointwise 'none' has no counterpart, and 'batchmean' is checked "
                           "by the KL = CE - H identity"}


#: for each loss, its parameters a function may take through ``**kwargs`` and ignore, with a value that changes the
#: exact result of the sample call (``_probe_sample``; kl_div's is "batchmean" over one row, so "mean"); "C" stands
#: for a class weight of the sample's class count
_IGNORE_PROBES = {
    "cross_entropy": {"reduction": "sum", "weight": "C", "ignore_index": 1, "label_smoothing": 0.25},
    "nll_loss": {"reduction": "sum", "weight": "C", "ignore_index": 1},
    "binary_cross_entropy": {"reduction": "sum", "weight": [0.5, 2.0, 1.0]},
    "binary_cross_entropy_with_logits": {"reduction": "sum", "weight": [0.5, 2.0, 1.0],
                                         "pos_weight": [2.0, 2.0, 2.0]},
    "kl_div": {"reduction": "mean", "log_target": True},
    "log_softmax": {"dim": 0}, "softmax": {"dim": 0}, "logsumexp": {"dim": 0},
}


def _probe_sample(user: UserSubject) -> dict:
    """The call ``ignored_parameters`` varies: the catalogue's sample, or its probability-target probe for a
    cross_entropy that takes those only (``--targets probability``: class indices are refused)."""
    row = catalogue.get(user.loss)
    return dict(row.probes["probability targets"] if user.targets == "probability" else row.sample)


def ignored_parameters(user: UserSubject, call64: Callable) -> dict:
    """{parameter: why} for the loss parameters a user's function that takes ``**kwargs`` ignores: called in float64
    on the catalogue's sample with and without each (``_IGNORE_PROBES``), it returns the same numbers where the exact
    result differs. Found checking Hugging Face's ``fixed_cross_entropy(source, target, num_items_in_batch=None,
    ignore_index=-100, **kwargs)``: label_smoothing, weight and reduction were passed, swallowed and ignored, and
    every difference read as the function's wrong result. A parameter the call refuses (it raises) is not ignored:
    the capability probes and the search count those. Empty for a function without ``**kwargs``."""
    if user.params is not None or user.loss not in _IGNORE_PROBES:
        return {}
    sample = _probe_sample(user)
    n_classes = len(sample["input"][0]) if isinstance(sample["input"][0], list) else len(sample["input"])

    def exact(kw):
        return [e.to("float64") for e in flat(oracles.REGISTRY[user.loss](**kw))]

    def got(kw):
        try:
            return call64(kw)[0]
        except FormatChanged as e:
            return e.values
        except Exception:  # a refusal: not ignored (reported by the capability probes and the search)
            return None

    def same(a, b):
        return len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b))

    out: dict = {}
    base = got(sample)
    if base is None or not all(math.isfinite(v) for v in base):  # a refusal, or NaN / inf: nothing to compare
        return out
    for param, value in _IGNORE_PROBES[user.loss].items():
        if value == "C":
            value = [(0.5, 2.0, 1.0)[i % 3] for i in range(n_classes)]
        if param == "reduction" and not user.accepts(param) or param in dict(user.fixed):
            continue  # --returns: the call carries no reduction; --fixed: the user said what it has built in
        varied = {**sample, param: value}
        y = got(varied)
        if y is not None and same(base, y) and not same(exact(sample), exact(varied)):
            out[param] = (f"{user.target} takes **kwargs and ignores {param} (the same result with "
                          f"{param}={value!r}, where the exact one changes): checked at torch's default")
    return out


def user_cases(user: UserSubject, cuda_available: bool) -> list:
    """A user's function for its loss in every format (torch and JAX: on every device), under its conventions
    (``UserSubject.class_axis``, ``UserSubject.returns``: a function that returns one reduction only is checked
    with that one, ``Case.only``; the parameters it ignores through ``**kwargs``: ``ignored_parameters``)."""
    fn = adapt(user)
    only, only_why = user.only(), user.only_why()
    if user.framework == "jax":
        def call64(kw):
            return jax_subject.run(fn, user.loss, "float64", "cpu", kw, grad=False, user=True)
    elif user.framework == "torch":
        def call64(kw):
            return torch_subject.run(fn, user.loss, "float64", "cpu", kw, grad=False, user=True)
    else:
        def call64(kw):
            return array_subject.run(fn, user.loss, "float64", kw, user=True)
    ignored = functools.cache(lambda: ignored_parameters(user, call64))  # once for all its cases, when first asked
    out = []
    for fmt in FORMATS:
        if user.framework == "jax":
            for device in DEVICES:
                out.append(_jax_case(user.name, fn, user.loss, fmt, device, user.accepts, _jax_skips(device),
                                     user.target, only, only_why, user.class_axis, ignored))
        elif user.framework == "torch":
            for device in DEVICES:
                out.append(_torch_case(user.name, fn, user.loss, fmt, device, user.accepts,
                                       _cuda_skip(device, cuda_available), user.target, only, only_why,
                                       user.class_axis, ignored))
        else:
            skip = "NumPy has no bfloat16" if fmt == "bfloat16" else None

            def call(kwargs, fmt=fmt):
                try:
                    return array_subject.run(fn, user.loss, fmt, kwargs, user=True)
                except FormatChanged as e:  # a finding (the search reports it), its values judged like any others
                    _FORMAT_CHANGED[f"{user.name}-{user.loss}-{fmt}-cpu"] = str(e)
                    return _into(e.values, fmt), e.grads
                except Exception as e:  # a capability the user's function lacks: not supported, never a pass
                    raise NotSupported(f"{user.name} {user.loss} in {fmt}: {type(e).__name__}: {e}") from None

            out.append(Case(user.name, "numpy", user.loss, fmt, "cpu", call, user.accepts, skip, user.target, only,
                            only_why, user.class_axis, ignored))
    return out


def all_cases(subjects=None, users=(), cuda_available: bool = False) -> list:
    """The cases of the named library subjects (``LIBRARIES``: torch, numpy, scipy, jax, optax-safe; None: those of
    ``DEFAULT_LIBRARIES``) and of the user subjects."""
    if subjects is None:
        subjects = DEFAULT_LIBRARIES
    out = []
    if "torch" in subjects:
        out += torch_cases(cuda_available)
    if "numpy" in subjects:
        out += numpy_cases()
    if "scipy" in subjects:
        out += scipy_cases()
    if "jax" in subjects:
        out += jax_cases()
    if "optax-safe" in subjects:
        out += jax_cases("optax-safe")
    for u in users:
        out += user_cases(u, cuda_available)
    return out


def unsupported(case) -> dict:
    """{capability: why} for the catalogue's capabilities (its ``probes``) that the case's function lacks (its call
    raises), so that a search draws only what the function can take, and the run reports the rest as not
    supported: never as a pass, never silently dropped."""
    out = {}
    for capability, kwargs in catalogue.get(case.loss).probes.items():
        first = None
        for variant in _variants(case, kwargs):  # the probe, then with the other reductions the function takes
            try:
                case.call(restrict(case, variant))
                first = None
                break
            except NotSupported as e:
                first = first or (str(e).splitlines()[0] if str(e) else type(e).__name__)
        if first is not None:
            out[capability] = first
    for param, value in case.only:
        out[f"{param} other than {value!r}"] = f"{case.subject} {case.loss}: {case.only_why}"
    for param, why in case.ignored().items():
        out[f"{param} (ignored)"] = why
    return out


def _variants(case, kwargs):
    """The probe's call, then (a function that takes ``reduction``) the same call under each other reduction of
    the loss: a function that refuses probability targets only under "mean" does take them (the search then
    counts the calls it refuses)."""
    yield kwargs
    if case.accepts("reduction"):
        for r in catalogue.get(case.loss).reductions:
            if r != kwargs.get("reduction", "mean"):
                yield {**kwargs, "reduction": r}


def restrict(case, kwargs):
    """The call restricted to the parameters the subject takes: the others are dropped, so both the subject and
    the oracle see torch's defaults for them (a function without ``reduction`` is measured as "mean"). Targets
    at the default ignore index (-100) become class 0 for a function without ``ignore_index`` (it could not
    mean them), and so do targets at any negative ignore index (a drawn ignore index that is a class keeps
    its meaning: that class). A parameter the function takes at one value only (``Case.only``) is given that
    value, and so is one a user's function has built in (``--fixed``): for the oracle, and for the function where it
    takes it; targets at the drawn ignore index move to a built-in one (still ignored). None when a drawn input
    needs a dropped parameter to mean what it says (a log-space target without log_target, or with a function that
    takes no log-space target or another one built in)."""
    only = dict(case.only)
    ignored = case.ignored()
    out = {}
    for k, v in kwargs.items():
        if case.accepts(k) and k not in ignored:
            out[k] = v
        elif k == "log_target" and v and k not in only:
            return None
    for k, v in case.only:  # the one value the function takes: a log-space target cannot be made another one
        if k == "log_target" and kwargs.get(k, False) != v:
            return None
        if k in out or k == "reduction" or case.is_user:  # a user's call passes on only what it takes (adapt)
            out[k] = v
    if "ignore_index" in only and isinstance(out.get("target"), (int, list)):
        out["target"] = _reignore(out["target"], kwargs.get("ignore_index", -100), only["ignore_index"])
    elif (not case.accepts("ignore_index") or "ignore_index" in ignored) and isinstance(out.get("target"),
                                                                                       (int, list)):
        out["target"] = _unignore(out["target"])
    return out


def _reignore(t, drawn: int, fixed: int):
    """Class-index targets with the drawn ignore index moved to a function's built-in one: ignored as drawn."""
    if isinstance(t, list):
        return [_reignore(x, drawn, fixed) for x in t]
    return fixed if isinstance(t, int) and not isinstance(t, bool) and t == drawn else t


def _unignore(t):
    """Class-index targets with the negative (ignore) indices made class 0: a function without ignore_index
    gets a valid call that still exercises everything else the draw holds."""
    if isinstance(t, list):
        return [_unignore(x) for x in t]
    return 0 if isinstance(t, int) and not isinstance(t, bool) and t < 0 else t
