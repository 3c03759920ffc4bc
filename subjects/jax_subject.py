"""JAX's losses (jax.nn, jax.scipy and optax), in every format, and the calling convention of a JAX function under
test (a user's too): exact inputs in as JAX arrays, flattened values and the gradient of sum(upstream * output)
out, through ``jax.vjp``.

The upstream: torch's (subjects.torch_subject.upstream: distinct values in [1, 2), exact in every format), so the
gradient is of sum(upstream * output), as a torch case's, and the engine hands the oracle the same upstream for
both frameworks; softmax's gradient is checked too (with ones it would be the gradient of sum(softmax),
identically zero, which certifies nothing).

Formats: float64 with 64-bit types enabled by lossproof for that call only (``jax.enable_x64``: JAX otherwise
computes float64 input in float32, silently); float16 and bfloat16 natively (ml_dtypes arrays, exact). Functions
JAX's own are compiled whole with ``jax.jit`` (``_compiled``: one compilation per new shape instead of one per
primitive); a user's function runs as written: eagerly (``jax.vjp`` traces it and runs the trace op by op), or
compiled where it is ``jax.jit``-wrapped, its compilation cached by JAX per shape and dtype across examples.

JAX is optional (lossproof's ``jax`` and ``test`` extras): this module imports it when first asked, and
``missing()`` says why its subjects are skipped where it is absent.

The built-in subject (``functions``) calls JAX's functions with torch's keyword semantics, the classes on axis 1
(optax's ``axis`` argument), and torch's reductions computed from optax's per-example output in the same format
(``jnp.mean`` / ``jnp.sum``, as a JAX user writes them): what a JAX user's loss is built from.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from typing import Any

import numpy as np

from lossproof import catalogue
from oracles.tensors import softmax_dim

from .array_subject import FormatChanged
from .torch_subject import upstream

_JAX: Any = None


def missing() -> str | None:
    """Why JAX's subjects cannot run here (None when jax and optax import)."""
    try:
        importlib.import_module("jax")
        importlib.import_module("optax")
    except ImportError as e:
        return f"JAX is not installed (pip install 'lossproof[jax]': jax, jaxlib, optax): {e}"
    return None


def _jax():
    global _JAX
    if _JAX is None:
        import jax
        import jax.numpy as jnp
        import ml_dtypes

        _JAX = (jax, jnp, {"float64": np.float64, "float32": np.float32, "float16": np.float16,
                           "bfloat16": ml_dtypes.bfloat16})
        _compilation_cache(jax)
    return _JAX


def modules() -> tuple:
    """(jax, jax.numpy, {format: its NumPy dtype, ml_dtypes' bfloat16 included}), imported on first use (the
    compilation cache set up): for callers that build their own JAX calls (lossproof.sweep)."""
    return _jax()


def _compilation_cache(jax) -> None:
    """JAX compiles every operation anew for each new shape (0.3 to 1.3 s per call of optax's cross-entropy with
    its gradient on this project's 2-core machine, measured): its persistent compilation cache, kept beside
    lossproof's own (lossproof.cache: $LOSSPROOF_CACHE or .lossproof-cache), makes a run that draws the same shapes
    as an earlier one (the derandomized profiles) load them instead (0.3 s per new shape, measured). Left alone
    where the user configured a cache of their own."""
    if jax.config.jax_compilation_cache_dir:
        return
    from lossproof.cache import cache_dir

    jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "jax"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def gpu_skip() -> str | None:
    """None when JAX sees a GPU, else why its "cuda" cells are skipped."""
    jax = _jax()[0]
    try:
        if jax.devices("gpu"):
            return None
    except RuntimeError:
        pass
    return "JAX sees no GPU on this machine (jax.devices('gpu') is empty)"


def version() -> str:
    import optax

    return f"jax {_jax()[0].__version__}, optax {optax.__version__}"


def _device(device):
    jax = _jax()[0]
    return jax.devices("gpu" if device == "cuda" else "cpu")[0]


def arrays(loss, fmt, kwargs):
    """JAX keyword arguments: float arrays in the format (exact: the values are format values, built as NumPy
    arrays of that dtype, ml_dtypes' bfloat16 included, so nothing rounds), class indices as integers, the rest
    as they are. Called with 64-bit types enabled for float64. Placed with ``jax.device_put``, which copies:
    ``jnp.asarray`` compiles a small XLA computation for each new shape and dtype (two of the three compilations
    of a new shape of JAX's cross-entropy, about 10 ms each of its 200 to 360 ms, measured)."""
    jax, jnp, dtypes = _jax()
    dt = dtypes[fmt]
    out = {}
    floats = catalogue.get(loss).float_keys(kwargs)
    for k, v in kwargs.items():
        if k in floats:
            out[k] = jax.device_put(np.asarray(v, dtype=dt))
        elif k == "target":
            out[k] = jax.device_put(np.asarray(v, dtype=np.int64 if fmt == "float64" else np.int32))
        else:
            out[k] = v
    return out


def _values(a) -> list:
    return np.asarray(a).astype(np.float64).reshape(-1).tolist()


def x64(fmt):
    """64-bit types enabled for a float64 call only (JAX computes float64 input in float32 otherwise)."""
    return _jax()[0].enable_x64(True) if fmt == "float64" else contextlib.nullcontext()


def run(fn, loss, fmt, device, kwargs, grad=True, user=False):
    """Call ``fn`` (JAX's or a user's JAX function, torch's keyword names) on exact inputs: the flattened values
    and the gradient of sum(upstream * output) with respect to ``input`` (jax.vjp, torch's upstream in the
    output's format). A user's output in another floating format than the input's raises FormatChanged, with the
    values."""
    jax, jnp, dtypes = _jax()
    with x64(fmt), jax.default_device(_device(device)):
        a = arrays(loss, fmt, kwargs)
        x = a["input"]
        rest = {k: v for k, v in a.items() if k != "input"}

        compiled = None if user else _compiled(fn, rest)
        wants_grad = grad and jnp.issubdtype(x.dtype, jnp.floating)
        if compiled is not None:
            jitted, vjp_jitted, arrs = compiled
            out_type = jax.eval_shape(jitted, x, arrs)
            if wants_grad and jnp.issubdtype(out_type.dtype, jnp.floating):
                u = np.asarray(upstream(math.prod(out_type.shape)), dtype=np.float64).astype(out_type.dtype)
                out, g = vjp_jitted(x, arrs, jax.device_put(u.reshape(out_type.shape)))
                return _values(out), _values(g)
            return _values(jitted(x, arrs)), None

        def f(xi):
            return jnp.asarray(fn(input=xi, **rest))

        if wants_grad:
            out, back = jax.vjp(f, x)
        else:
            out, back = f(x), None
        values = _values(out)
        grads = None
        if back is not None and jnp.issubdtype(out.dtype, jnp.floating):
            u = np.asarray(upstream(out.size), dtype=np.float64).astype(out.dtype).reshape(out.shape)
            (g,) = back(jax.device_put(u))
            grads = _values(g)
        if user and jnp.issubdtype(out.dtype, jnp.floating) and out.dtype != x.dtype:
            raise FormatChanged(f"returns {out.dtype.name} for {fmt} input", values, grads)
    return values, grads


#: JAX's own functions compiled whole (jax.jit), by (function, its non-array arguments)
_JIT: dict = {}


def _compiled(fn, rest):
    """(JAX's function compiled whole with jax.jit, the same with its gradient of sum(u * output), its array
    arguments), or None where a non-array argument is not hashable. Eagerly, jax.vjp compiles each primitive of
    the function for each new input shape (about 2 s a new shape of cross_entropy with its gradient on this
    project's loaded 2-core machine); compiled whole, forward and backward are one compilation (the forward and
    the backward pass of a jitted function, each compiled apart: 0.19 s a new shape of optax's integer-label
    cross-entropy on the idle machine; together, as a JAX training step compiles them: 0.15 s; the same bits, 40
    shapes, measured). A user's function runs as written (``user``), never compiled by lossproof."""
    jax, jnp, _ = _jax()
    arrs = {k: v for k, v in rest.items() if isinstance(v, jax.Array)}
    static = {k: v for k, v in rest.items() if k not in arrs}
    try:
        key = (fn, tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in static.items())))
        hash(key)
    except TypeError:
        return None
    if key not in _JIT:
        def forward(xi, a):
            return jnp.asarray(fn(input=xi, **a, **static))

        def with_gradient(xi, a, u):
            out, back = jax.vjp(lambda t: forward(t, a), xi)
            return out, back(u)[0]

        _JIT[key] = (jax.jit(forward), jax.jit(with_gradient))
    return (*_JIT[key], arrs)


def _reduce(per, reduction):
    jnp = _jax()[1]
    if reduction == "none":
        return per
    if reduction == "sum":
        return jnp.sum(per)
    if reduction == "mean":
        return jnp.mean(per)
    raise NotImplementedError(f"reduction {reduction!r}")


def _class_axis(x) -> int:
    """torch's class axis: 0 for an input of shape (C), else 1."""
    return 0 if x.ndim == 1 else 1


def functions() -> dict:
    """{loss: (a callable taking torch's keyword arguments, the parameters it takes, its one-value parameters)}
    for the losses with a JAX counterpart (the catalogue's ``jax``)."""
    jax, jnp, _ = _jax()
    import optax

    def cross_entropy(input, target, reduction="mean"):
        ax = _class_axis(input)
        if jnp.issubdtype(target.dtype, jnp.integer):  # class indices (probability targets: floats)
            per = optax.losses.softmax_cross_entropy_with_integer_labels(input, target, axis=ax)
        else:
            per = optax.losses.softmax_cross_entropy(input, target, axis=ax)
        return _reduce(per, reduction)

    def log_softmax(input, dim=None):
        return jax.nn.log_softmax(input, axis=softmax_dim(input.ndim) if dim is None else dim)

    def softmax(input, dim=None):
        return jax.nn.softmax(input, axis=softmax_dim(input.ndim) if dim is None else dim)

    def logsumexp(input, dim=None, keepdim=False):
        return jax.nn.logsumexp(input, axis=dim, keepdims=keepdim)

    def bce_with_logits(input, target, reduction="mean"):
        return _reduce(optax.losses.sigmoid_binary_cross_entropy(input, target), reduction)

    def kl_div(input, target, reduction="sum", log_target=False):
        # optax sums the pointwise terms over an axis: over every axis (axis=None) it is torch's "sum"; over the
        # classes, per example, and their mean is torch's "batchmean" (2-d input); torch's pointwise "none" and
        # element mean it has no counterpart of
        f = optax.losses.kl_divergence_with_log_targets if log_target else optax.losses.kl_divergence
        if reduction == "sum":
            return f(input, target, axis=None)
        if reduction == "batchmean" and input.ndim == 2:
            return jnp.mean(f(input, target, axis=-1))
        raise NotImplementedError(f"optax's KL divergence has no counterpart of torch's reduction {reduction!r} "
                                  f"for a {input.ndim}-d input (it sums over the classes)")

    fns = {
        "cross_entropy": (cross_entropy, ("input", "target", "reduction"), ()),
        "log_softmax": (log_softmax, ("input", "dim"), ()),
        "softmax": (softmax, ("input", "dim"), ()),
        "logsumexp": (logsumexp, ("input", "dim", "keepdim"), ()),
        "binary_cross_entropy_with_logits": (bce_with_logits, ("input", "target", "reduction"), ()),
        "kl_div": (kl_div, ("input", "target", "reduction", "log_target"), (("reduction", "sum"),)),
        "sigmoid": (lambda input: jax.nn.sigmoid(input), ("input",), ()),
        "logsigmoid": (lambda input: jax.nn.log_sigmoid(input), ("input",), ()),
        "softplus": (lambda input: jax.nn.softplus(input), ("input",), ()),
        "xlogy": (lambda input, other: jax.scipy.special.xlogy(input, other), ("input", "other"), ()),
    }
    return {loss.name: fns[loss.name] for loss in catalogue.LOSSES if loss.jax}


def safe_functions() -> dict:
    """optax's safe_softmax_cross_entropy (the ``optax-safe`` subject): the masked-logit-safe probability-target
    cross-entropy (0 log 0 = 0 where a logit is -inf and its label 0), classes last only (it takes no axis: the
    class axis is moved there), probability targets only (class indices: not supported, reported)."""
    jax, jnp, _ = _jax()
    import optax

    def cross_entropy(input, target, reduction="mean"):
        if jnp.issubdtype(target.dtype, jnp.integer):
            raise NotImplementedError("optax.safe_softmax_cross_entropy takes probability targets only")
        ax = _class_axis(input)
        per = optax.losses.safe_softmax_cross_entropy(jnp.moveaxis(input, ax, -1), jnp.moveaxis(target, ax, -1))
        return _reduce(per, reduction)

    return {"cross_entropy": (cross_entropy, ("input", "target", "reduction"), ())}


def moveaxis(x, source, dest):
    return _jax()[1].moveaxis(x, source, dest)
