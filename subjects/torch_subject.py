"""PyTorch's losses (torch.nn.functional and torch), in every format, on every available device, and the calling
convention of a torch function under test (a user's too): exact inputs in, flattened values and the gradient of
sum(upstream * output) out."""

from __future__ import annotations

import importlib

import torch

from lossproof import catalogue

from .array_subject import FormatChanged

DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def dtype_of(fmt):
    return DTYPES[fmt]


def devices():
    """["cpu"] plus "cuda" when torch sees a CUDA device."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def function(loss):
    """torch's function for ``loss`` (the catalogue's dotted name)."""
    module, _, name = catalogue.get(loss).torch.rpartition(".")
    return getattr(importlib.import_module(module), name)


def tensors(loss, fmt, device, kwargs):
    """torch keyword arguments: float tensors in the format (exact: the values are format values), class
    indices as int64, the rest as they are."""
    dt = dtype_of(fmt)
    out = {}
    floats = catalogue.get(loss).float_keys(kwargs)
    for k, v in kwargs.items():
        if k in floats:
            out[k] = torch.tensor(v, dtype=dt, device=device)
        elif k == "target":
            out[k] = torch.tensor(v, dtype=torch.int64, device=device)
        else:
            out[k] = v
    if loss == "logsumexp" and out.get("dim") is None:
        out["dim"] = tuple(range(out["input"].dim()))
    return out


def upstream(n: int) -> list:
    """The upstream gradient of a backward pass over n outputs: 1 for a scalar, else distinct values in [1, 2)
    with three fractional bits (exact in every format). Not all ones: the gradient of sum(softmax) is exactly
    zero, which tests nothing and which no enclosure can certify."""
    return [1.0] if n == 1 else [1.0 + ((5 * i) % 8) / 8 for i in range(n)]


def run(fn, loss, fmt, device, kwargs, grad=True, user=False):
    """Call ``fn`` (torch's or a user's torch function) on exact inputs: the flattened values and the gradient
    of sum(upstream * output) with respect to ``input`` (None when the output carries no gradient). A user's
    output in another floating format than the input's raises FormatChanged, with the values."""
    t = tensors(loss, fmt, device, kwargs)
    x = t["input"]
    if grad and x.is_floating_point():
        x.requires_grad_(True)
    out = fn(**t)
    if not isinstance(out, torch.Tensor):
        out = torch.as_tensor(out)
    values = out.detach().to(torch.float64).reshape(-1).cpu().tolist()
    grads = None
    if grad and x.requires_grad and out.requires_grad:
        v = torch.tensor(upstream(out.numel()), dtype=out.dtype, device=out.device).reshape(out.shape)
        out.backward(v)
        if x.grad is not None:
            grads = x.grad.detach().to(torch.float64).reshape(-1).cpu().tolist()
    if user and out.is_floating_point() and out.dtype != x.dtype:
        name = str(out.dtype).removeprefix("torch.")
        raise FormatChanged(f"returns {name} for {fmt} input", values, grads)
    return values, grads


def version() -> str:
    return torch.__version__
