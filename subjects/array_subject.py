"""Array-library subjects without autograd: our NumPy losses, SciPy's special functions, and a user's NumPy
function. Values only (SciPy, a user's NumPy function) or values and our analytical gradients (our NumPy losses).
NumPy has no bfloat16: those formats are reported as not supported."""

from __future__ import annotations

import numpy as np

from lossproof import catalogue
from oracles.tensors import softmax_dim

DTYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16}


def arrays(loss, fmt, kwargs):
    dt = DTYPES[fmt]
    out = {}
    floats = catalogue.get(loss).float_keys(kwargs)
    for k, v in kwargs.items():
        if k in floats:
            out[k] = np.asarray(v, dtype=dt)
        elif k == "target":
            out[k] = np.asarray(v, dtype=np.int64)
        else:
            out[k] = v
    return out


def values_of(out):
    a = np.asarray(out)
    return [float(v) for v in a.astype(np.float64).reshape(-1)]


class WiderOutput(NotImplementedError):
    """The function returned its result in a wider format than its input (SciPy computes float16 in float32):
    it has no result in the format under test, so that format is reported as not supported."""


class FormatChanged(Exception):
    """A user's function returned its result in another format than its input's: a finding in every framework
    ("computes float64 input in float32"), its values judged against the input's format. Carries them."""

    def __init__(self, message: str, values: list, grads: list | None):
        super().__init__(message)
        self.values, self.grads = values, grads


def run(fn, loss, fmt, kwargs, grad_fn=None, user=False):
    """(values, gradient) of an array function on exact inputs in ``fmt``. A library's wider output (SciPy computes
    float16 in float32) is WiderOutput (not supported); a user's output in another format is FormatChanged."""
    a = arrays(loss, fmt, kwargs)
    out = fn(**a)
    dt = np.asarray(out).dtype
    values = values_of(out)
    grads = values_of(grad_fn(**a)) if grad_fn is not None else None
    if dt.kind == "f" and dt != np.dtype(fmt):
        what = f"{getattr(fn, '__name__', loss)} returns {dt.name} for {fmt} input"
        if user:
            raise FormatChanged(f"returns {dt.name} for {fmt} input", values, grads)
        if dt.itemsize > np.dtype(fmt).itemsize:
            raise WiderOutput(what)
    return values, grads


def scipy_functions() -> dict:
    """{loss: (a callable taking torch's keyword arguments, the parameters it takes)} for the losses with a SciPy
    counterpart (the catalogue's ``scipy``). SciPy is imported here, when asked for: it is a test dependency."""
    from scipy import special

    def lse(input, dim=None, keepdim=False):
        return special.logsumexp(input, axis=dim if dim is not None else None, keepdims=keepdim)

    def softmax(input, dim=None):
        return special.softmax(input, axis=softmax_dim(np.ndim(input)) if dim is None else dim)

    def log_softmax(input, dim=None):
        return special.log_softmax(input, axis=softmax_dim(np.ndim(input)) if dim is None else dim)

    def xlogy(input, other):
        return special.xlogy(input, other)

    def kl_div(input, target, reduction="mean", log_target=False):
        # rel_entr(t, q) = t log(t / q) with q = exp(input): the pointwise KL of torch's kl_div
        if log_target or reduction != "none":
            raise NotImplementedError("SciPy's rel_entr is the pointwise, probability-target KL only")
        return special.rel_entr(target, np.exp(input))

    fns = {"logsumexp": lse, "softmax": softmax, "log_softmax": log_softmax,
           "sigmoid": lambda input: special.expit(input), "logsigmoid": lambda input: special.log_expit(input),
           "xlogy": xlogy, "kl_div": kl_div}
    # SciPy's rel_entr is the pointwise, probability-target KL: kl_div takes no other parameter values
    params = {"kl_div": ("input", "target", "reduction", "log_target")}
    out = {}
    for loss in catalogue.LOSSES:
        if loss.scipy:
            out[loss.name] = (fns[loss.name], params.get(loss.name, loss.params))
    return out
