"""The suite's cases: which subject runs which loss in which format on which device, how to call it, and how
to print a failure so that anyone can paste it and see it again."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from subjects import array_subject, torch_subject
from subjects.torch_subject import FORMATS, LOSSES


class NotSupported(Exception):
    """The subject lacks this capability (a format, probability targets, a parameter): reported, not passed."""


@dataclass(frozen=True)
class Case:
    subject: str  # "torch", "numpy", "scipy", "user:<target>"
    framework: str  # "torch" or "numpy"
    loss: str
    fmt: str
    device: str
    call: Callable  # (kwargs) -> (values, grads or None)
    accepts: Callable[[str], bool] = lambda key: True
    skip: str | None = None  # a reason to skip, shown and counted

    @property
    def id(self) -> str:
        return f"{self.subject}-{self.loss}-{self.fmt}-{self.device}"


def _torch_case(subject, fn, loss, fmt, device, accepts=lambda k: True, skip=None):
    def call(kwargs):
        try:
            return torch_subject.run(fn, loss, fmt, device, kwargs)
        except Exception as e:
            # torch's own "not implemented for 'Half'"; a user's function raising (probability targets, say)
            # is a capability it lacks: reported as not supported, never a pass
            if subject.startswith("user:") or "not implemented" in str(e).lower():
                raise NotSupported(f"{subject} {loss} in {fmt} on {device}: {type(e).__name__}: "
                                   f"{str(e).splitlines()[0] if str(e) else ''}") from None
            raise

    return Case(subject, "torch", loss, fmt, device, call, accepts, skip)


def torch_cases(cuda_available: bool):
    out = []
    for loss in LOSSES:
        for fmt in FORMATS:
            out.append(_torch_case("torch", torch_subject.function(loss), loss, fmt, "cpu"))
            out.append(_torch_case("torch", torch_subject.function(loss), loss, fmt, "cuda",
                                   skip=None if cuda_available else "CUDA is not available on this machine"))
    return out


def numpy_cases():
    from subjects import numpy_losses as N

    out = []
    for loss in LOSSES:
        fn = getattr(N, loss)
        for fmt in FORMATS:
            skip = "NumPy has no bfloat16" if fmt == "bfloat16" else None

            # values only for softmax: our NumPy gradient is of sum(softmax), identically zero (see
            # torch_subject.upstream); torch's softmax gradient is checked with a non-uniform upstream
            grad_fn = None if loss == "softmax" else _np_grad(N, loss)

            def call(kwargs, fn=fn, loss=loss, fmt=fmt, grad_fn=grad_fn):
                return array_subject.run(fn, loss, fmt, kwargs, grad_fn=grad_fn)

            out.append(Case("numpy", "numpy", loss, fmt, "cpu", call, skip=skip))
    return out


def _np_grad(N, loss):
    g = getattr(N, "grad", None)
    if g is None:
        return None

    def fn(**kw):
        return g(loss, **kw)

    return fn


def scipy_cases():
    out = []
    for loss, fn in array_subject.scipy_functions().items():
        for fmt in FORMATS:
            skip = "NumPy (and so SciPy) has no bfloat16" if fmt == "bfloat16" else None

            def call(kwargs, fn=fn, loss=loss, fmt=fmt):
                try:
                    return array_subject.run(fn, loss, fmt, kwargs)
                except NotImplementedError as e:
                    raise NotSupported(str(e)) from None

            accepts = (lambda k: k in ("input", "target", "reduction", "log_target")) if loss == "kl_div" else \
                (lambda k: True)
            out.append(Case("scipy", "numpy", loss, fmt, "cpu", call, accepts, skip))
    return out


def user_cases(user, cuda_available: bool):
    from subjects.user import adapt

    fn = adapt(user)
    out = []
    for fmt in FORMATS:
        if user.framework == "torch":
            for device in ("cpu", "cuda"):
                skip = None if device == "cpu" or cuda_available else "CUDA is not available on this machine"
                out.append(_torch_case(user.name, fn, user.loss, fmt, device, user.accepts, skip))
        else:
            skip = "NumPy has no bfloat16" if fmt == "bfloat16" else None

            def call(kwargs, fmt=fmt):
                try:
                    return array_subject.run(fn, user.loss, fmt, kwargs)
                except Exception as e:  # a capability the user's function lacks: not supported, never a pass
                    raise NotSupported(f"{user.name} {user.loss} in {fmt}: {type(e).__name__}: {e}") from None

            out.append(Case(user.name, "numpy", user.loss, fmt, "cpu", call, user.accepts, skip))
    return out


# --------------------------------------------------------------------------------------------------
# reproducers


def _hex(v):
    if isinstance(v, list):
        return "[" + ", ".join(_hex(x) for x in v) + "]"
    if isinstance(v, bool) or isinstance(v, int):
        return repr(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "float('nan')"
        if math.isinf(v):
            return "float('inf')" if v > 0 else "float('-inf')"
        return f"float.fromhex('{float.hex(v)}')"
    return repr(v)


def _load_user_line(case: Case) -> list:
    target = case.subject[len("user:"):]
    return ["from subjects.user import load_function  # run from the lossproof checkout",
            f"fn = load_function({target!r})"]


def reproducer(case: Case, kwargs: dict) -> str:
    """Copy-pasteable code that recomputes the case with the exact inputs (hex floats) and the exact value."""
    from subjects.torch_subject import FLOAT_ARGS, is_index_target

    lines = []
    if case.framework == "torch":
        fn = {"logsumexp": "torch.logsumexp", "sigmoid": "torch.sigmoid", "xlogy": "torch.xlogy"}.get(
            case.loss, f"F.{case.loss}") if case.subject == "torch" else "fn"
        lines += ["import torch, torch.nn.functional as F"]
        if case.subject.startswith("user:"):
            lines += _load_user_line(case)
        args = []
        for k, v in kwargs.items():
            if k in FLOAT_ARGS or (k == "target" and not is_index_target(case.loss, kwargs)):
                args.append(f"{k}=torch.tensor({_hex(v)}, dtype=torch.{case.fmt}, device='{case.device}')")
            elif k == "target":
                args.append(f"{k}=torch.tensor({_hex(v)}, device='{case.device}')")
            else:
                args.append(f"{k}={v!r}")
        if case.loss == "logsumexp" and kwargs.get("dim") is None:
            args.append("dim=tuple(range(input.dim()))  # every dimension")
        lines.append(f"print({fn}(" + ", ".join(args) + "))")
    else:
        mod = {"numpy": "subjects.numpy_losses", "scipy": "subjects.array_subject"}.get(case.subject, case.subject)
        lines += ["import numpy as np"]
        if case.subject.startswith("user:"):
            lines += _load_user_line(case)
        else:
            lines += [f"from {mod} import {case.loss} as fn"]
        args = []
        for k, v in kwargs.items():
            if k in FLOAT_ARGS or (k == "target" and not is_index_target(case.loss, kwargs)):
                args.append(f"{k}=np.array({_hex(v)}, dtype=np.{case.fmt})")
            elif k == "target":
                args.append(f"{k}=np.array({_hex(v)})")
            else:
                args.append(f"{k}={v!r}")
        lines.append("print(fn(" + ", ".join(args) + "))")
    exact_args = ", ".join(f"{k}={_hex(v)}" for k, v in kwargs.items())
    lines.append(f"import oracles; print(oracles.{case.loss}({exact_args}))  # the exact value")
    return "\n".join(lines)
