"""Nested sequences in, nested lists out: shapes, flattening, broadcasting, and the exact reading of inputs.

Inputs are nested lists/tuples of Python numbers (or anything with ``.tolist()``, such as a torch tensor or a
NumPy array). A float is taken as the exact binary64 value it is; an int as the exact integer; an mpmath mpf as
its exact binary value; a ``str`` holding a Python float literal ("-inf", "0x1.8p-3", "1e-3") as the binary64
value Python reads from it. Nothing is rounded here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

from mpmath import libmp

from . import expr
from .expr import Value
from .formats import to_mpf

__all__ = ["OracleInputError", "read_values", "read_indices", "unflatten", "broadcast_shape", "broadcast_index",
           "numel", "parse_float_literal"]


#: an oracle's tensor argument: a number, nested lists/tuples of numbers, or anything with ``.tolist()`` (a torch
#: tensor, a NumPy array); read and checked at run time (``read_values``, ``read_indices``)
TensorLike = Any


class OracleInputError(ValueError):
    """Bad input to an oracle: wrong shape, out-of-range class index, negative probability, ..."""


def parse_float_literal(s: str) -> float:
    t = s.strip()
    try:
        if "0x" in t.lower():
            return float.fromhex(t)
        return float(t)
    except ValueError:
        raise OracleInputError(f"{s!r} is not a Python float literal") from None


def _to_list(obj):
    if hasattr(obj, "tolist") and not isinstance(obj, (list, tuple)):
        return obj.tolist()
    return obj


def shape_and_flat(obj: TensorLike, name: str) -> tuple[tuple[int, ...], list[Any]]:
    obj = _to_list(obj)
    if not isinstance(obj, (list, tuple)):
        return (), [obj]
    if len(obj) == 0:
        return (0,), []
    subs = [shape_and_flat(o, name) for o in obj]
    s0 = subs[0][0]
    for s, _ in subs:
        if s != s0:
            raise OracleInputError(f"{name} is not rectangular (rows of shapes {s0} and {s})")
    flat = [x for _, f in subs for x in f]
    return (len(obj),) + s0, flat


def numel(shape: Iterable[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def value_of(x: object, name: str = "input") -> Value:
    """An extended-real value from one input element: expr.Node (finite, exact) or float inf/-inf/nan."""
    if isinstance(x, str):
        x = parse_float_literal(x)
    if isinstance(x, bool):
        raise OracleInputError(f"{name} holds a boolean; numbers are expected")
    if isinstance(x, float):
        if not math.isfinite(x):
            return x
        if x == 0:
            return expr.ZERO
        return expr.const(to_mpf(x))
    if isinstance(x, int):
        return expr.const(libmp.from_int(x)) if x else expr.ZERO
    if isinstance(x, Fraction):
        try:
            return expr.const(to_mpf(x))
        except ValueError as e:
            raise OracleInputError(f"{name}: {e}") from None
    if hasattr(x, "_mpf_"):
        v = x._mpf_
        if v == libmp.finf:
            return math.inf
        if v == libmp.fninf:
            return -math.inf
        if v == libmp.fnan:
            return math.nan
        return expr.const(v)
    if hasattr(x, "item"):  # numpy / torch scalars
        return value_of(x.item(), name)
    raise OracleInputError(f"{name} holds {type(x).__name__} {x!r}; numbers are expected")


def read_values(obj: TensorLike, name: str = "input") -> tuple[tuple[int, ...], list[Value]]:
    """(shape, flat list of values) of a nested sequence of numbers."""
    if obj is None:
        raise OracleInputError(f"{name} is missing")
    shape, flat = shape_and_flat(obj, name)
    return shape, [value_of(x, name) for x in flat]


def read_indices(obj: TensorLike, name: str = "target") -> tuple[tuple[int, ...], list[int]]:
    """(shape, flat list of ints) of a nested sequence of class indices."""
    shape, flat = shape_and_flat(obj, name)
    out = []
    for x in flat:
        if hasattr(x, "item") and not isinstance(x, (int, float, str)):
            x = x.item()
        if isinstance(x, bool) or not isinstance(x, int):
            if isinstance(x, float) and x.is_integer():
                raise OracleInputError(
                    f"{name} holds class indices and must hold integers, got {x!r} "
                    "(a float target must have the input's shape: probability targets)"
                )
            raise OracleInputError(f"{name} must hold integer class indices, got {x!r}")
        out.append(x)
    return shape, out


def unflatten(shape: Sequence[int], flat: Sequence[Any]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return list(flat)
    step = numel(shape[1:])
    return [unflatten(shape[1:], flat[i * step:(i + 1) * step]) for i in range(shape[0])]


def broadcast_shape(a: Sequence[int], b: Sequence[int], what: str = "shapes") -> tuple[int, ...]:
    out = []
    for i in range(max(len(a), len(b))):
        x = a[len(a) - 1 - i] if i < len(a) else 1
        y = b[len(b) - 1 - i] if i < len(b) else 1
        if x != y and x != 1 and y != 1:
            raise OracleInputError(f"{what} {tuple(a)} and {tuple(b)} do not broadcast")
        out.append(max(x, y) if x != 0 and y != 0 else 0)
    return tuple(reversed(out))


def broadcast_index(flat_index: int, out_shape: Sequence[int], in_shape: Sequence[int]) -> int:
    """Flat index into an input of ``in_shape`` broadcast to ``out_shape``."""
    idx = []
    rem = flat_index
    for s in reversed(out_shape):
        idx.append(rem % s)
        rem //= s
    idx.reverse()
    off = len(out_shape) - len(in_shape)
    k = 0
    for d, s in enumerate(in_shape):
        k = k * s + (0 if s == 1 else idx[off + d])
    return k


def strides(shape: Sequence[int]) -> list[int]:
    st = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        st[d] = st[d + 1] * shape[d + 1]
    return st


def normalize_dim(dim: int, ndim: int, name: str = "dim") -> int:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise OracleInputError(f"{name} must be an integer, got {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise OracleInputError(f"{name} {dim} is out of range for a tensor of {ndim} dimensions")
    return dim % n


def slices_along(shape: Sequence[int], dim: int) -> list[list[int]]:
    """Lists of flat indices: one list per slice along ``dim`` (each list ordered along dim)."""
    if not shape:
        return [[0]]
    st = strides(shape)
    size = shape[dim]
    outer = [s for d, s in enumerate(shape) if d != dim]
    out = []
    for k in range(numel(outer)):
        rem, base = k, 0
        for d in range(len(shape) - 1, -1, -1):
            if d == dim:
                continue
            base += (rem % shape[d]) * st[d]
            rem //= shape[d]
        out.append([base + j * st[dim] for j in range(size)])
    return out


def softmax_dim(ndim: int) -> int:
    """torch's implicit dim (``_get_softmax_dim``): 0 for 0-, 1- and 3-d inputs, else 1."""
    return 0 if ndim in (0, 1, 3) else 1


REDUCTIONS = ("none", "mean", "sum")


def legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str,
                     allowed: tuple[str, ...] = REDUCTIONS) -> str:
    """torch's _Reduction.legacy_get_string, then validation of the reduction name."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
    if reduction not in allowed:
        raise OracleInputError(f"reduction must be one of {', '.join(allowed)}, got {reduction!r}")
    return reduction
