"""A user's implementation, named from the command line: ``package.module:function`` or ``path/file.py:function``.

The suite calls it with only the keyword parameters it accepts (a function without ``reduction`` is taken to
return torch's default reduction, "mean", and is only exercised with it), and finds the capabilities it lacks
(probability targets, say) by the function raising: those are reported as not supported, never as passes.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass

from lossproof import catalogue


class SubjectError(ValueError):
    """A subject that cannot be loaded (bad target, missing file or function, unknown loss or framework)."""


FRAMEWORKS = ("torch", "numpy")


@dataclass
class UserSubject:
    loss: str
    target: str
    framework: str
    fn: object
    params: frozenset  # keyword parameters it accepts (or None: it accepts **kwargs)

    @property
    def name(self) -> str:
        return f"user:{self.target}"

    def accepts(self, key: str) -> bool:
        return self.params is None or key in self.params

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


def accepted_parameters(fn):
    try:
        sig = inspect.signature(fn)
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


def load(spec: str, framework: str) -> UserSubject:
    """``LOSS=TARGET`` with ``framework`` torch or numpy."""
    if framework not in FRAMEWORKS:
        raise SubjectError(f"unknown framework {framework!r}: expected torch or numpy")
    loss, sep, target = spec.partition("=")
    if not sep:
        raise SubjectError(f"--subject {spec!r} must be LOSS=TARGET")
    if loss not in catalogue.NAMES:
        raise SubjectError(f"unknown loss {loss!r}: expected one of {', '.join(catalogue.NAMES)}")
    fn = load_function(target)
    params = accepted_parameters(fn)
    if params is not None and "input" not in params and len(params) < 1:
        raise SubjectError(f"{target} takes no arguments")
    return UserSubject(loss, target, framework, fn, params)


def adapt(subject: UserSubject):
    """A callable with keyword arguments named as torch's, calling the user's function (positionally for the
    first two when its parameters are named differently)."""
    fn = subject.fn
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = []

    def call(**kw):
        args, rest = [], dict(kw)
        if names and "input" not in names and "input" in rest:
            args.append(rest.pop("input"))
            for second in ("target", "other"):
                if second in rest and second not in names:
                    args.append(rest.pop(second))
                    break
        rest = {k: v for k, v in rest.items() if subject.params is None or k in subject.params}
        return fn(*args, **rest)

    return call
