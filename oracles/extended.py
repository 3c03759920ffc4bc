"""Extended-real values and arithmetic on them, with the conventions of NUMERICS.md.

A value ``V`` is either an ``expr.Node`` (a finite exact real, possibly only known as an expression) or a Python
float special: ``inf``, ``-inf`` or ``nan``. The arithmetic takes limits where they exist and gives NaN where
none does (inf - inf, 0/0). One convention goes beyond the limits: an *exact* zero coefficient annihilates
anything but NaN (0 * inf = 0), which is the 0 * log 0 = 0 rule of information theory extended to the terms a
loss multiplies by a probability or weight that is exactly zero ("contributes nothing").
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from mpmath import libmp

from . import expr
from .exact import OraclePrecisionError, sign_of
from .expr import Node, Value

INF, NINF, NAN = math.inf, -math.inf, math.nan

__all__ = ["is_nan", "is_inf", "is_finite", "sign", "add", "sub", "mul", "div", "neg", "total", "cmp_const"]


def is_nan(v: Value) -> bool:
    return isinstance(v, float) and math.isnan(v)


def is_inf(v: Value) -> bool:
    return isinstance(v, float) and math.isinf(v)


def is_finite(v: Value) -> bool:
    return isinstance(v, Node)


def is_zero(v: Value) -> bool:
    return isinstance(v, Node) and v.is_zero


def sign(v: Value) -> int:
    """-1, 0 or 1. For a finite expression the ball is refined until its sign is certain (a nonzero value
    is eventually separated from zero; an exact zero is recognised as a point ball)."""
    if isinstance(v, float):
        if math.isnan(v):
            raise ValueError("NaN has no sign")
        return 1 if v > 0 else -1

    s = sign_of(v)
    if s is None:
        raise OraclePrecisionError("could not decide the sign of an expression below the precision cap")
    return s


def cmp_const(a: Node, b: Node) -> int:
    return libmp.mpf_cmp(a.value, b.value)


def neg(a: Value) -> Value:
    if isinstance(a, float):
        return -a
    return -a


def add(a: Value, b: Value) -> Value:
    return total([a, b])


def sub(a: Value, b: Value) -> Value:
    return total([a, neg(b)])


def total(vals: Iterable[Value]) -> Value:
    """Sum in the extended reals: NaN if any NaN or both +inf and -inf appear."""
    nodes, pos, negv = [], False, False
    for v in vals:
        if isinstance(v, float):
            if math.isnan(v):
                return NAN
            if v > 0:
                pos = True
            else:
                negv = True
        else:
            nodes.append(v)
    if pos and negv:
        return NAN
    if pos:
        return INF
    if negv:
        return NINF
    return expr.nsum(nodes)


def mul(a: Value, b: Value) -> Value:
    if is_nan(a) or is_nan(b):
        return NAN
    if is_zero(a) or is_zero(b):
        return expr.ZERO
    if isinstance(a, float) or isinstance(b, float):
        s = sign(a) * sign(b)
        return INF if s > 0 else NINF
    return a * b


def div(a: Value, b: Value) -> Value:
    """a / b; x/0 is +-inf by the sign of x, 0/0 and inf/inf are NaN, finite/inf is 0."""
    if is_nan(a) or is_nan(b):
        return NAN
    if isinstance(b, float):
        if isinstance(a, float):
            return NAN
        return expr.ZERO
    sb = sign(b)
    if sb == 0:
        if is_zero(a):
            return NAN
        sa = sign(a)
        return INF if sa > 0 else NINF
    if isinstance(a, float):
        return a if sb > 0 else -a
    return a / b
