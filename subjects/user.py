"""A user's implementation, named from the command line: ``package.module:function`` or ``path/file.py:function``.

The suite calls it with only the keyword parameters it accepts, and finds the capabilities it lacks (probability
targets, say) by the function raising: those are reported as not supported, never as passes.

Its conventions, for any framework (torch, numpy, jax):
- the class axis (``class_axis``, ``--class-axis``): 1, torch's (N, C, d1, ...), by default; -1 for the classes
  last, JAX's and Keras's (N, d1, ..., C): the suite's inputs (drawn in torch's layout) are passed with the classes
  moved there, and a softmax-shaped output moved back;
- what it returns (``returns``, ``--returns``): ``reduction-arg`` (it takes torch's ``reduction``: the default
  when it does), ``mean`` (the default otherwise: torch's default reduction), ``sum``, or ``per-example`` (torch's
  reduction "none": optax's and Keras's losses); a function that returns one reduction only is checked with that
  one;
- the targets it takes (``targets``, ``--targets``), for a loss that takes class indices or probabilities
  (cross_entropy): both by default, as torch's; ``probability`` (timm's SoftTargetCrossEntropy, optax's
  softmax_cross_entropy, one-hot Keras losses) or ``index``: the other kind is reported as not supported, never
  drawn (a function of probability targets given class indices broadcasts them and computes something else);
- the parameters it has built in (``fixed``, ``--fixed NAME=VALUE``): a loss parameter the function computes with a
  value of its own instead of taking it (label smoothing 0.1 in a hand-written cross-entropy, a KL of log-space
  targets): the exact result is computed with that value, the function is called without it (or with it, where it
  takes it), and every other value is reported as not supported. Which parameters: ``FIXABLE``.

An instance of one of torch.nn's own loss classes (``nn.CrossEntropyLoss(label_smoothing=0.1)``) carries its
conventions: its reduction and its built-in parameters are read from it (``module_conventions``).
"""

from __future__ import annotations

import dis
import functools
import importlib
import importlib.util
import inspect
import numbers
import os
import sys
from dataclasses import dataclass

from lossproof import catalogue


class SubjectError(ValueError):
    """A subject that cannot be loaded (bad target, missing file or function, unknown loss or framework)."""


FRAMEWORKS = ("torch", "numpy", "jax")

#: what a user's reducing loss returns (``--returns``)
RETURNS = ("mean", "sum", "per-example", "batchmean", "reduction-arg")
#: the targets a user's function may take only, for a loss that takes both (``--targets``)
TARGETS = ("index", "probability")
#: the loss parameters a user's function may have built in (``--fixed NAME=VALUE``): name -> (the losses that take
#: it, the kind of value). Scalars only: a tensor (weight, pos_weight) has a shape the draws choose; ``reduction``
#: is ``--returns`` and the class axis ``--class-axis``
FIXABLE = {"label_smoothing": (("cross_entropy",), "a number in [0, 1]"),
           "ignore_index": (("cross_entropy", "nll_loss"), "a 64-bit integer"),
           "log_target": (("kl_div",), "true or false")}
#: the class axes a user's class or softmax-family function may take its classes on (``--class-axis``)
CLASS_AXES = (1, -1)
#: the reduction each fixed ``returns`` is checked with (torch's name)
_REDUCTION_OF = {"mean": "mean", "sum": "sum", "per-example": "none", "batchmean": "batchmean"}


@dataclass
class UserSubject:
    loss: str
    target: str
    framework: str
    fn: object
    params: frozenset | None  # keyword parameters it accepts (or None: it accepts **kwargs)
    class_axis: int = 1  # where it takes the classes (CLASS_AXES)
    returns: str | None = None  # RETURNS; None: "reduction-arg" when it takes reduction, else "mean"
    framework_why: str = ""  # how the framework was decided, where it was not chosen (``infer_framework``)
    targets: str | None = None  # TARGETS: the one kind of target it takes; None: what the loss takes
    fixed: tuple = ()  # ((name, value), ...): the parameters it has built in (``FIXABLE``), sorted by name
    read_from: str = ""  # the conventions read from a torch.nn loss module it is (``module_conventions``)

    def __post_init__(self):
        check_conventions(self.loss, self.target, self.params, self.class_axis, self.returns, self.targets)
        self.fixed = check_fixed(self.loss, self.fixed)
        if self.returns is None and catalogue.get(self.loss).reduces:
            self.returns = "reduction-arg" if self._takes("reduction") else "mean"

    @property
    def name(self) -> str:
        return f"user:{self.target}"

    def _takes(self, key: str) -> bool:
        return self.params is None or key in self.params

    def accepts(self, key: str) -> bool:
        if key == "reduction" and self.returns not in (None, "reduction-arg"):
            return False  # it returns one reduction: the call carries none (``only`` says which)
        return self._takes(key)

    def only(self) -> tuple:
        """The parameters it takes at one value only (lossproof.cases.Case.only): the reduction it returns and the
        parameters it has built in."""
        r = _REDUCTION_OF.get(self.returns or "")
        return ((("reduction", r),) if r and r != "mean" else ()) + self.fixed

    def only_why(self) -> str:
        """Why it is checked at those values only (``Case.only_why``), or ""."""
        parts = []
        if _REDUCTION_OF.get(self.returns or "", "mean") != "mean":
            parts.append(f"returns the {self.returns_what()}" + ("" if self.read_from else
                                                                 f" (--returns {self.returns})"))
        if self.fixed:
            parts.append(f"has {fixed_text(self.fixed)} built in" + ("" if self.read_from else " (--fixed)"))
        if not parts:
            return ""
        return f"{self.target} " + " and ".join(parts) + (f" ({self.read_from})" if self.read_from else "")

    def returns_what(self) -> str:
        return {"sum": "sum", "per-example": "per-example losses (torch's reduction 'none')",
                "batchmean": "sum divided by the batch size (torch's reduction 'batchmean')"}.get(
            self.returns or "", "mean")

    def call_kwargs(self, kwargs: dict) -> dict:
        """The subset of ``kwargs`` the function takes; positional-only names are passed by keyword too."""
        return {k: v for k, v in kwargs.items() if self.accepts(k)}


def _one_line(e: BaseException) -> str:
    """An exception raised by a user's module as one line: its type and the first line of its message (a
    SyntaxError with its file and line; SystemExit as the status it exited with)."""
    if isinstance(e, SystemExit):
        return f"it called sys.exit({e.code!r}) while being imported"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def load_function(target: str):
    """The callable named by ``package.module:function`` or ``path/file.py:function``."""
    if ":" not in target:
        raise SubjectError(f"subject {target!r} must be MODULE:FUNCTION or path/to/file.py:FUNCTION")
    where, _, attr = target.rpartition(":")
    if not where or not attr:
        raise SubjectError(f"subject {target!r} must be MODULE:FUNCTION or path/to/file.py:FUNCTION")
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = os.path.abspath(where)
        if not os.path.isfile(path):
            raise SubjectError(f"no such file: {where}")
        name = "lossproof_user_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(path))
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as e:  # the user's module failed to import (or exited): one line
            raise SubjectError(f"{where} failed to import: {_one_line(e)}") from None
        finally:
            sys.path.pop(0)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as e:
            raise SubjectError(f"cannot import module {where!r}: {e}") from None
        except (Exception, SystemExit) as e:  # it exists but raised (or exited) while importing
            raise SubjectError(f"cannot import module {where!r}: {_one_line(e)}") from None
    try:
        fn = getattr(module, attr, None)
    except Exception as e:  # a module __getattr__ that raises
        raise SubjectError(f"{where} has no function {attr!r} ({_one_line(e)})") from None
    if fn is None:
        raise SubjectError(f"{where} has no function {attr!r}")
    if not callable(fn):
        raise SubjectError(f"{where}:{attr} is not callable")
    return fn


def parameters_of(fn):
    """The callable whose parameters a call of ``fn`` reaches: ``fn`` itself, or, for an object whose ``__call__``
    passes everything on (``*args, **kwargs``) to its ``forward`` (a torch ``nn.Module``: timm's and kornia's loss
    classes, a user's own), that method. Without it such an object seemed to take every keyword (``weight``,
    ``ignore_index``) and raised on each call."""
    forward = getattr(fn, "forward", None)
    if inspect.isroutine(fn) or not callable(forward):
        return fn
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return forward
    passing = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return forward if all(p.kind in passing for p in params) else fn


def accepted_parameters(fn):
    try:
        sig = inspect.signature(parameters_of(fn))
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    named = [p for p in sig.parameters.values()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY,
                           inspect.Parameter.POSITIONAL_ONLY)]
    out = {p.name for p in named if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    # ``adapt`` passes the input as the first argument of a function whose parameters are named otherwise
    # (scipy.special.log_softmax(x, axis)), and the target (or other) as the second when it is required
    if named and "input" not in out:
        out.add("input")
        if len(named) > 1 and named[1].default is inspect.Parameter.empty and not ({"target", "other"} & out):
            out |= {"target", "other"}
    return frozenset(out)


def check_conventions(loss: str, target: str, params, class_axis, returns, targets=None) -> None:
    """SubjectError (one line) for conventions that cannot hold: an unknown class axis, return or target kind, a
    class axis for a loss without classes, a return for a loss that does not reduce, reduction-arg for a function
    without ``reduction``, a target kind for a loss that takes one kind only."""
    row = catalogue.get(loss)
    if targets is not None:
        if targets not in TARGETS:
            raise SubjectError(f"targets {targets!r}: expected one of {', '.join(TARGETS)}")
        if row.target != "index or probability":
            raise SubjectError(f"--targets applies to a loss that takes class indices or probabilities "
                               f"(cross_entropy); {loss} takes {row.target or 'no'} targets")
    if isinstance(class_axis, bool) or class_axis not in CLASS_AXES:
        raise SubjectError(f"class axis {class_axis!r}: expected 1 (torch's (N, C, ...)) or -1 (the classes last, "
                           "as JAX and Keras)")
    if class_axis != 1 and row.family not in ("class", "row"):
        raise SubjectError(f"{loss} has no class axis (class axis {class_axis} applies to the class and softmax "
                           "losses)")
    if returns is None:
        return
    if returns not in RETURNS:
        raise SubjectError(f"returns {returns!r}: expected one of {', '.join(RETURNS)}")
    if not row.reduces:
        raise SubjectError(f"{loss} does not reduce: returns {returns!r} applies to the reducing losses "
                           f"({', '.join(catalogue.REDUCING)})")
    if returns == "reduction-arg" and params is not None and "reduction" not in params:
        raise SubjectError(f"returns 'reduction-arg', but {target} takes no reduction argument")
    if returns == "batchmean" and loss != "kl_div":
        raise SubjectError(f"returns 'batchmean' applies to kl_div (torch's only loss with that reduction), not {loss}")


#: what a torch.nn loss module's reduction returns (``--returns``): ``_REDUCTION_OF`` read backwards
_MODULE_RETURNS = {reduction: returns for returns, reduction in _REDUCTION_OF.items()}


#: torch.nn's loss classes whose configuration lossproof reads (``module_conventions``): class name -> loss
_MODULE_LOSS = {"CrossEntropyLoss": "cross_entropy", "NLLLoss": "nll_loss", "BCELoss": "binary_cross_entropy",
                "BCEWithLogitsLoss": "binary_cross_entropy_with_logits", "KLDivLoss": "kl_div"}
#: the attributes of those classes that hold a built-in parameter, with torch's default
_MODULE_FIXED = (("label_smoothing", 0.0), ("ignore_index", -100), ("log_target", False))


def _torch_loss_class(fn):
    """The torch.nn loss class (one of ``_MODULE_LOSS``) whose forward ``fn`` runs: its own class, or the one a
    subclass derives from without a forward of its own; else None."""
    for c in type(fn).__mro__:
        if c.__module__ == "torch.nn.modules.loss" and c.__name__ in _MODULE_LOSS:
            return c if getattr(type(fn), "forward", None) is getattr(c, "forward", None) else None
    return None


def module_conventions(fn, target: str, loss: str, returns, fixed) -> tuple:
    """(returns, fixed, read_from) for an instance of one of torch.nn's loss classes (``_MODULE_LOSS``:
    ``torch.nn.CrossEntropyLoss(label_smoothing=0.1)``, the way a training script holds its loss; a subclass that
    keeps its forward too): the reduction it holds as what it returns, its label_smoothing, ignore_index and
    log_target where not torch's defaults as built in (``FIXABLE``), with what the user said where it agrees. A
    SubjectError (one line) for a module of another loss, a contradiction with what it holds, or a weight it holds
    (lossproof draws the number of classes). Anything else: the arguments as they are, "". Its forward takes (input,
    target) only, so without this every such module was checked at torch's defaults and its own configuration read
    as a wrong result."""
    cls = _torch_loss_class(fn)
    if cls is None:
        return returns, fixed, ""
    name = f"{target} ({cls.__name__})"
    if _MODULE_LOSS[cls.__name__] != loss:
        raise SubjectError(f"{name} computes {_MODULE_LOSS[cls.__name__]}, not {loss}: check it as "
                           f"{_MODULE_LOSS[cls.__name__]}")
    for attr in ("weight", "pos_weight"):
        held = getattr(fn, attr, None)
        if held is not None:
            raise SubjectError(f"{name} holds a {attr} of shape {tuple(held.shape)}: lossproof draws the number of "
                               f"classes and the {attr}; check a function that takes {attr} "
                               f"(torch.nn.functional.{loss}) instead")
    reduction = getattr(fn, "reduction", "mean")
    mine = _MODULE_RETURNS.get(reduction)
    if mine is None:
        raise SubjectError(f"{name} holds reduction={reduction!r}, which lossproof does not know")
    if returns is not None and returns != mine:
        raise SubjectError(f"--returns {returns}, but {name} holds reduction={reduction!r}")
    given = dict(check_fixed(loss, fixed))
    held = {}
    for attr, default in _MODULE_FIXED:
        if hasattr(fn, attr):
            value = getattr(fn, attr)
            value = float(value) if attr == "label_smoothing" else bool(value) if attr == "log_target" else int(value)
            if attr in given and given[attr] != value:  # torch's default included: the module computes with it
                raise SubjectError(f"--fixed {attr}={given[attr]!r}, but {name} holds {attr}={value!r}")
            if value != default:
                held[attr] = value
    read_from = f"read from {cls.__name__}: reduction {reduction!r}" + "".join(f", {k}={v!r}" for k, v in
                                                                            sorted(held.items()))
    return mine, tuple(sorted({**given, **held}.items())), read_from


def fixable_of(loss: str) -> tuple:
    """The parameters of ``loss`` that ``--fixed`` takes (``FIXABLE``)."""
    return tuple(name for name, (losses, _) in FIXABLE.items() if loss in losses)


def check_fixed(loss: str, fixed) -> tuple:
    """The built-in parameters (a dict or (name, value) pairs) as sorted pairs, each one the loss takes (``FIXABLE``)
    with a value of its kind; SubjectError (one line) otherwise."""
    if isinstance(fixed, str):
        raise SubjectError(f"fixed {fixed!r}: expected the parameters as a dict, e.g. {{'label_smoothing': 0.1}}")
    items = list(fixed.items()) if isinstance(fixed, dict) else list(fixed or ())
    out: dict = {}
    for item in items:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            raise SubjectError(f"fixed parameter {item!r}: expected a name and a value")
        name, value = item
        known = fixable_of(loss)
        if name not in known:
            raise SubjectError(f"--fixed {name}: {loss} has no such parameter to fix"
                               + (f" (it takes {', '.join(known)})" if known
                                  else " (--fixed applies to none of its parameters)"))
        if name in out:
            raise SubjectError(f"--fixed {name} given twice")
        kind = FIXABLE[name][1]
        if name == "label_smoothing":  # NumPy's scalars too (numbers.Real); a bool is no number here
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value <= 1
            value = float(value) if ok else value
        elif name == "ignore_index":  # a 64-bit integer: the index type of torch, NumPy and JAX (a larger one
            # made torch's own function raise, so the comparison with it was lost)
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and -2**63 <= value < 2**63
            value = int(value) if ok else value
        else:
            ok = isinstance(value, bool)
        if not ok:
            raise SubjectError(f"--fixed {name}={value!r}: expected {kind}")
        out[name] = value
    return tuple(sorted(out.items()))


def parse_fixed(items) -> tuple:
    """``--fixed NAME=VALUE`` arguments as (name, value) pairs of the kinds ``check_fixed`` takes (its loss is checked
    there): label_smoothing a number, ignore_index an integer, log_target true or false; SubjectError otherwise."""
    out = []
    for item in items or ():
        name, sep, text = str(item).partition("=")
        name, text = name.strip(), text.strip()
        if not sep or not name or not text:
            raise SubjectError(f"--fixed {item!r}: expected NAME=VALUE, e.g. label_smoothing=0.1")
        if name not in FIXABLE:
            raise SubjectError(f"--fixed {name}: expected one of {', '.join(FIXABLE)}")
        value: object = text
        if name == "label_smoothing":
            try:
                value = float(text)
            except ValueError:
                pass
        elif name == "ignore_index":
            try:
                value = int(text)
            except ValueError:
                pass
        elif text.lower() in ("true", "false"):
            value = text.lower() == "true"
        out.append((name, value))
    return tuple(out)


def fixed_text(fixed) -> str:
    """``label_smoothing=0.1, log_target=True``: the built-in parameters as a user wrote them."""
    return ", ".join(f"{k}={v!r}" for k, v in fixed)


def parse_class_axis(value) -> int:
    """``--class-axis`` as an int (SubjectError, one line, otherwise)."""
    try:
        axis = int(value)
    except (TypeError, ValueError):
        raise SubjectError(f"class axis {value!r}: expected 1 (torch's (N, C, ...)) or -1 (the classes last, "
                           "as JAX and Keras)") from None
    if axis not in CLASS_AXES:
        raise SubjectError(f"class axis {value!r}: expected 1 (torch's (N, C, ...)) or -1 (the classes last, "
                           "as JAX and Keras)")
    return axis


def load(spec: str, framework: str | None = None, class_axis: int = 1, returns: str | None = None,
         targets: str | None = None, fixed=()) -> UserSubject:
    """``LOSS=TARGET`` with ``framework`` torch, numpy or jax (None: ``infer_framework`` from the function), and its
    conventions (``check_conventions``)."""
    if framework is not None and framework not in FRAMEWORKS:
        raise SubjectError(f"unknown framework {framework!r}: expected one of {', '.join(FRAMEWORKS)}")
    loss, sep, target = spec.partition("=")
    if not sep:
        raise SubjectError(f"--subject {spec!r} must be LOSS=TARGET")
    if loss not in catalogue.NAMES:
        raise SubjectError(f"unknown loss {loss!r}: expected one of {', '.join(catalogue.NAMES)}")
    fn = load_function(target)
    params = accepted_parameters(fn)
    if params is not None and "input" not in params and len(params) < 1:
        raise SubjectError(f"{target} takes no arguments")
    framework, why = (framework, "") if framework is not None else infer_framework(fn)
    returns, fixed, read_from = module_conventions(fn, target, loss, returns, fixed)
    return UserSubject(loss, target, framework, fn, params, class_axis, returns, why, targets, fixed, read_from)


#: the framework whose arrays a function of each top-level package takes (SciPy's take NumPy's; optax's and
#: flax's take JAX's)
_PACKAGE_FRAMEWORK = {"torch": "torch", "numpy": "numpy", "scipy": "numpy", "jax": "jax", "jaxlib": "jax",
                      "optax": "jax", "flax": "jax"}


def infer_framework(fn) -> tuple[str, str]:
    """(framework, why): how to call ``fn`` when the user did not say. A function of a framework's own package
    (torch.nn.functional.softplus, scipy.special.expit, jax.nn.softplus) takes that framework's arrays; a function
    of the user's takes those of the frameworks its code names (``np.log1p``, ``torch.logsumexp``, ``jnp.exp``,
    in its body, its nested functions and lambdas, what its body imports, the functions of its own module it
    calls and a library's functions it reads through the library's modules (``kornia.losses.focal_loss``), three
    calls deep; the title line names the library's function where only it named the framework): torch where torch
    is among them (a torch loss may use NumPy for a constant), else
    JAX (a JAX loss may use NumPy), else NumPy; torch, the default, where its code names none
    (``input.exp().sum()``). A NumPy function called with torch tensors raises on every input ("Can't call
    numpy() on Tensor that requires grad"), which reads as the function's own failure: lossproof inferred nothing
    before, and said torch."""
    found: set[str] = set()
    seen: set[int] = set()
    home: list[str] = []
    direct: set[str] = set()  # found in the user's own code (the function and the helpers of its package)
    via: dict[str, str] = {}  # found in a function of another package it calls: that function's name
    user_package = str(getattr(fn, "__module__", None) or "").partition(".")[0]

    def package(obj) -> str | None:
        mod = obj.__name__ if inspect.ismodule(obj) else getattr(obj, "__module__", None)
        if not isinstance(mod, str):
            mod = getattr(type(obj), "__module__", None)
        return _PACKAGE_FRAMEWORK.get(mod.partition(".")[0]) if isinstance(mod, str) else None

    def names(code) -> set:
        out = set(code.co_names)
        for c in code.co_consts:
            if inspect.iscode(c):
                out |= names(c)
        return out

    def imported(code) -> set:  # the packages its body imports (``import torch`` inside the function)
        out = {str(i.argval).partition(".")[0] for i in dis.get_instructions(code) if i.opname == "IMPORT_NAME"}
        for c in code.co_consts:
            if inspect.iscode(c):
                out |= imported(c)
        return out

    def chains(code) -> list:
        """The dotted names its code reads (``kornia.losses.focal_loss``, ``tmf.kl_divergence``): a global or
        free variable followed by attribute loads, nested code included."""
        out, chain = [], None
        for i in dis.get_instructions(code):
            if i.opname in ("LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF"):
                chain = [str(i.argval)]
                out.append(chain)
            elif i.opname in ("LOAD_ATTR", "LOAD_METHOD") and chain is not None:
                chain.append(str(i.argval))
            else:
                chain = None
        for c in code.co_consts:
            if inspect.iscode(c):
                out += chains(c)
        return [c for c in out if len(c) > 1]

    def resolve(env, chain):
        """The object a dotted name reads through modules (a module's attribute, never an arbitrary object's)."""
        obj = env.get(chain[0])
        for attr in chain[1:]:
            if not inspect.ismodule(obj):
                return None
            obj = getattr(obj, attr, None)
        return obj

    def visit(obj, depth: int, where: str | None = None) -> None:
        while isinstance(obj, functools.partial):
            obj = obj.func
        obj = getattr(obj, "__func__", obj)  # a bound method's function
        try:
            obj = inspect.unwrap(obj)
        except ValueError:  # a cycle of __wrapped__
            pass
        if id(obj) in seen or depth > 3:
            return
        seen.add(id(obj))
        own = package(obj)
        if own is not None:
            found.add(own)
            if depth == 0:  # the function itself is the framework's (or SciPy's, optax's)
                mod = getattr(obj, "__module__", None) or getattr(type(obj), "__module__", "")
                home.append(str(mod).partition(".")[0])
            return
        code = getattr(obj, "__code__", None)
        if code is None:
            call = getattr(type(obj), "__call__", None)  # a callable object: its class's __call__
            if inspect.isfunction(call):
                visit(call, depth)
            return
        mod = str(getattr(obj, "__module__", None) or "")
        if where is None and depth and mod.partition(".")[0] not in ("", user_package):
            where = f"{mod}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"  # another package's

        def add(fw):
            found.add(fw)
            if where is None:
                direct.add(fw)
            else:
                via.setdefault(fw, where)

        for p in imported(code):
            if p in _PACKAGE_FRAMEWORK:
                add(_PACKAGE_FRAMEWORK[p])
        env = dict(getattr(obj, "__globals__", {}))
        for cell_name, cell in zip(code.co_freevars, getattr(obj, "__closure__", None) or ()):
            try:
                env[cell_name] = cell.cell_contents
            except ValueError:  # an empty cell
                pass
        values = [env[name] for name in names(code) | set(code.co_freevars) if name in env]
        # a library's function read through its modules (kornia.losses.focal_loss): followed like a helper
        values += [v for v in (resolve(env, c) for c in chains(code)) if inspect.isfunction(v)]
        for value in values:
            fw = package(value)
            if fw is not None:
                add(fw)
            elif inspect.isfunction(value) or isinstance(value, functools.partial):
                visit(value, depth + 1, where)

    try:
        visit(parameters_of(fn), 0)  # an nn.Module's forward, not torch's Module.__call__
    except Exception:  # an object that resists introspection: the default, said so
        return "torch", "the default (its code could not be read)"
    if home:
        fw = _PACKAGE_FRAMEWORK[home[0]]
        return fw, f"inferred: a function of {home[0]}" + (f" ({fw} arrays)" if fw != home[0] else "")
    for fw in ("torch", "jax", "numpy"):
        if fw in found:
            others = sorted(found - {fw})
            also = f" (and {', '.join(others)})" if others else ""
            if fw not in direct and fw in via:  # found only in another package's function it calls
                return fw, f"inferred: it calls {via[fw]}, which uses {fw}{also}"
            return fw, f"inferred: its code uses {fw}{also}"
    return "torch", "the default: its code names no framework"


def _moveaxis(framework: str):
    if framework == "torch":
        import torch

        return torch.movedim
    if framework == "jax":
        from . import jax_subject

        return jax_subject.moveaxis
    import numpy as np

    return np.moveaxis


def adapt(subject: UserSubject):
    """A callable with keyword arguments named as torch's, calling the user's function (positionally for the
    first two when its parameters are named differently), the classes moved to its class axis."""
    fn = _classes_moved(subject, subject.fn) if subject.class_axis != 1 else subject.fn
    try:
        names = list(inspect.signature(parameters_of(subject.fn)).parameters)
    except (TypeError, ValueError):
        names = []

    def call(**kw):
        if subject.targets is not None and "target" in kw and _index_targets(kw["target"]) != (
                subject.targets == "index"):
            other = "class-index" if subject.targets == "probability" else "probability"
            raise NotImplementedError(f"{subject.target} takes {subject.targets} targets only (--targets "
                                      f"{subject.targets}): {other} targets are not supported")
        args, rest = [], dict(kw)
        if names and "input" not in names and "input" in rest:
            args.append(rest.pop("input"))
            for second in ("target", "other"):
                if second in rest and second not in names:
                    args.append(rest.pop(second))
                    break
        rest = {k: v for k, v in rest.items() if subject.accepts(k)}
        return fn(*args, **rest)

    return call


def _index_targets(t) -> bool:
    """Whether a call's target (a torch tensor, a NumPy or JAX array, a number) holds class indices (integers)."""
    floating = getattr(t, "is_floating_point", None)
    if callable(floating):
        return not floating()
    dtype = getattr(t, "dtype", None)
    if dtype is None:
        return isinstance(t, int) and not isinstance(t, bool)
    import numpy as np
    return bool(np.issubdtype(np.dtype(dtype), np.integer))


def _classes_moved(subject: UserSubject, fn):
    """``fn`` called with the classes moved from torch's axis (1 for (N, C, ...); 0 for (C); a softmax-family
    function without ``dim``: torch's implicit dim) to ``subject.class_axis``, probability targets with them, and
    a softmax-shaped output moved back. A softmax-family function that takes ``dim`` is told its axis instead."""
    move = _moveaxis(subject.framework)
    family = catalogue.get(subject.loss).family
    if family == "row" and subject._takes("dim"):
        return fn
    from oracles.tensors import softmax_dim

    @functools.wraps(fn)
    def call(*args, **kw):
        args, kw = list(args), dict(kw)
        x = kw["input"] if "input" in kw else args[0]
        nd = x.ndim
        if subject.loss == "logsumexp" or nd < 2 and family == "row":  # nothing to move
            return fn(*args, **kw)
        src = (0 if nd <= 1 else 1) if family == "class" else softmax_dim(nd)
        if "input" in kw:
            kw["input"] = move(x, src, subject.class_axis)
        else:
            args[0] = move(x, src, subject.class_axis)
        if family == "class":  # probability targets (shaped as the input) move with the classes
            if "target" in kw and getattr(kw["target"], "ndim", 0) == nd:
                kw["target"] = move(kw["target"], src, subject.class_axis)
            elif len(args) > 1 and getattr(args[1], "ndim", 0) == nd:
                args[1] = move(args[1], src, subject.class_axis)
        out = fn(*args, **kw)
        if family == "row":  # softmax and log_softmax: the output is shaped as the input
            out = move(out, subject.class_axis, src)
        return out

    return call
