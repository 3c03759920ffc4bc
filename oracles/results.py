"""Assembling results: an ``Exact`` whose gradient and condition number are built lazily, the shared exact zero,
and the condition number kappa = sum |x * df/dx| over (argument, partial derivative) pairs. Used by the fast path
and by the elementary functions and losses above it."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from . import expr
from . import extended as X
from .exact import Exact
from .expr import ZERO, Value
from .tensors import numel, unflatten

INF, NAN = math.inf, math.nan

__all__ = ["exact_zero", "kappa_of", "make_result"]

_ZERO = None


def exact_zero() -> Exact:
    """The exact zero (shared: gradients are mostly zeros)."""
    global _ZERO
    if _ZERO is None:
        _ZERO = Exact(ZERO)
    return _ZERO


def kappa_of(pairs: Iterable[tuple[Value, Value]]) -> Exact:
    """kappa = sum |x * g| over (argument value, partial derivative) pairs, in the extended reals."""
    terms = []
    for x, g in pairs:
        if X.is_zero(x) or X.is_zero(g):
            continue
        if X.is_nan(x) or X.is_nan(g):
            return Exact(NAN)
        if isinstance(x, float) or isinstance(g, float):
            return Exact(INF)
        terms.append(expr.absval(x * g))
    return Exact(expr.nsum(terms))


def make_result(value: Value, shape: Sequence[int], grad_entries_fn: Callable[[], dict[int, Value]],
                kappa_pairs_fn: Callable[[], Iterable[tuple[Value, Value]]] | None = None,
                kappa_fn: Callable[[], Exact] | None = None) -> Exact:
    """An Exact for ``value`` whose gradient is built lazily from {flat input index: V} (the rest is 0); its
    kappa from (value, derivative) pairs, or from ``kappa_fn`` (an Exact) where a closed form is cheaper."""

    def grad():
        entries = grad_entries_fn()
        z = exact_zero()
        flat = [z] * numel(shape)
        for k, g in entries.items():
            flat[k] = Exact(g)
        return unflatten(shape, flat)

    def kappa():
        return kappa_of(kappa_pairs_fn())

    if kappa_fn is None and kappa_pairs_fn is not None:
        kappa_fn = kappa
    return Exact(value, grad_fn=grad, kappa_fn=kappa_fn, entries_fn=grad_entries_fn)
