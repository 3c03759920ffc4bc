"""Exact real expressions: a small DAG of exact binary constants and elementary operations, evaluated as
balls at any working precision (memoised per precision, so a result and its gradient share their terms).

Building an expression never rounds: constants are exact binary values, and the simplifications done at build
time are exact identities (x + 0 = x, x * 1 = x, 0 * x = 0, exp(0) = 1, log(1) = 0, exact sums and products of
constants). Special values (inf, nan) never enter an expression: the loss code resolves them first, in the
extended reals.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from typing import Any

from mpmath import libmp

from .balls import Ball, rational_ball
from .formats import Dyadic, to_mpf

__all__ = ["Node", "const", "rational", "ZERO", "ONE", "nsum", "exp", "log", "log1p", "absval", "as_node"]

fzero, fone = libmp.fzero, libmp.fone


class Node:
    __slots__ = ("op", "args", "value", "_memo")

    def __init__(self, op: str, args: tuple[Node, ...] = (), value: Any = None) -> None:
        self.op = op
        self.args = args
        self.value = value  # raw mpf for constants ("const"), a Fraction for "rat"
        self._memo: dict[int, Ball] | None = None

    # -------------------------------------------------------------- evaluation
    def ball(self, w: int) -> Ball:
        if self.op == "const":
            return Ball(self.value)
        if self.op == "rat":
            return rational_ball(self.value, w)
        memo = self._memo
        if memo is None:
            memo = self._memo = {}
        b = memo.get(w)
        if b is None:
            b = memo[w] = self._eval(w)
        return b

    def _eval(self, w: int) -> Ball:
        op, args = self.op, self.args
        if op == "sum":
            return Ball.fsum((a.ball(w) for a in args), w)
        if op == "neg":
            return -args[0].ball(w)
        if op == "sub":
            return args[0].ball(w).sub(args[1].ball(w), w)
        if op == "mul":
            return args[0].ball(w).mul(args[1].ball(w), w)
        if op == "div":
            return args[0].ball(w).div(args[1].ball(w), w)
        if op == "exp":
            return args[0].ball(w).exp(w)
        if op == "log":
            return args[0].ball(w).log(w)
        if op == "log1p":
            return args[0].ball(w).log1p(w)
        if op == "abs":
            return args[0].ball(w).abs()
        raise AssertionError(op)  # pragma: no cover

    def forget(self) -> None:
        """Drop memoised balls (of this node and below) to free memory."""
        stack = [self]
        while stack:
            n = stack.pop()
            if n._memo:
                n._memo = None
                stack.extend(n.args)

    # -------------------------------------------------------------- building
    @property
    def is_const(self) -> bool:
        """An exact binary (dyadic) constant, held as a raw mpf in ``value``."""
        return self.op == "const"

    @property
    def is_exact(self) -> bool:
        """An exact constant: dyadic ("const") or any other rational ("rat", a Fraction in ``value``)."""
        return self.op == "const" or self.op == "rat"

    @property
    def is_zero(self) -> bool:
        return self.op == "const" and not self.value[1]

    @property
    def is_one(self) -> bool:
        return self.op == "const" and self.value == fone

    def fraction(self) -> Fraction:
        """The exact rational value of an exact constant."""
        if self.op == "rat":
            return self.value
        return _mpf_fraction(self.value)

    def __add__(self, other):
        return nsum([self, as_node(other)])

    __radd__ = __add__

    def __sub__(self, other):
        other = as_node(other)
        if self is other:
            return ZERO
        return nsum([self, -other])

    def __rsub__(self, other):
        return as_node(other) - self

    def __neg__(self):
        if self.op == "const":
            return const(libmp.mpf_neg(self.value))
        if self.op == "rat":
            return rational(-self.value)
        if self.op == "neg":
            return self.args[0]
        if self.op == "sum":
            return nsum(-t for t in self.args)
        if self.op == "mul" and self.args[0].is_exact:
            return self.args[0].__neg__() * self.args[1]
        return Node("neg", (self,))

    def __mul__(self, other):
        other = as_node(other)
        if self.is_zero or other.is_zero:
            return ZERO
        if self.is_one:
            return other
        if other.is_one:
            return self
        if self.is_exact and other.is_exact:
            if self.op == "const" and other.op == "const":
                return const(libmp.mpf_mul(self.value, other.value))
            if _fraction_ok(self) and _fraction_ok(other):
                return rational(self.fraction() * other.fraction())
        if other.is_exact:
            self, other = other, self
        if self.is_exact:
            # an exact coefficient: distributed over sums, merged with another coefficient, kept first
            if other.op == "sum":
                return nsum(self * t for t in other.args)
            if other.op == "neg":
                return (-self) * other.args[0]
            if other.op == "mul" and other.args[0].is_exact:
                return (self * other.args[0]) * other.args[1]
        return Node("mul", (self, other))

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = as_node(other)
        if other.is_zero:
            raise ZeroDivisionError("exact division by zero reached an expression")
        if self.is_zero:
            return ZERO
        if other.is_one:
            return self
        if other.is_exact and _fraction_ok(other):
            return self * rational(1 / other.fraction())
        return Node("div", (self, other))

    def __rtruediv__(self, other):
        return as_node(other) / self


def _mpf_fraction(v: tuple) -> Fraction:
    sign, man, e, _ = v
    if not man:
        return Fraction(0)
    n = -int(man) if sign else int(man)
    return Fraction(n * 2**e) if e >= 0 else Fraction(n, 2**-e)


# Exact rational arithmetic is used for constants of moderate exponent only: a Fraction of 2**-10**12 (an
# input such as e**-1e12 handed over as an mpf) cannot be built, and such a constant cannot cancel a rational
# of modest denominator anyway, so it stays a dyadic constant evaluated as a ball.
_FRACTION_BITS = 1 << 16


def _fraction_ok(n: Node) -> bool:
    if n.op == "rat":
        return True
    v = n.value
    return abs(v[2]) + v[3] < _FRACTION_BITS


def _cheap_exact_sum(a: tuple, b: tuple) -> bool:
    if not a[1] or not b[1]:
        return True
    top = max(a[2] + a[3], b[2] + b[3])
    return top - min(a[2], b[2]) < _FRACTION_BITS


def const(v: tuple) -> Node:
    """An exact constant from a raw mpf."""
    return Node("const", (), v)


def rational(q: Fraction | int) -> Node:
    """An exact rational constant: a "const" node when q is dyadic, else a "rat" node."""
    q = Fraction(q)
    d = q.denominator
    if not d & (d - 1):
        return const(libmp.from_man_exp(q.numerator, -(d.bit_length() - 1)))
    return Node("rat", (), q)


#: an extended-real value (oracles.extended): a finite exact expression, or a Python float inf, -inf or nan
Value = Node | float

ZERO = const(fzero)
ONE = const(fone)
LOG2 = Node("log", (const(libmp.from_int(2)),))


def as_node(x: Node | Dyadic) -> Node:
    if isinstance(x, Node):
        return x
    if isinstance(x, Fraction):
        return rational(x)
    return const(to_mpf(x))


def _as_multiple(t: Node) -> tuple[Fraction, Node]:
    """(q, base) with t = q * base exactly: q an exact rational coefficient, base the node it multiplies (t
    itself, with q = 1, when t carries no exact coefficient). Equal bases are one node (the logarithm of a
    constant is canonical and shared, ``log``; a row's log1p is shared by its log_softmax values), so collecting
    coefficients by the base's identity cancels structurally opposite terms exactly."""
    if t.op == "mul":
        a, b = t.args
        if a.is_exact and _fraction_ok(a):
            return a.fraction(), b
    elif t.op == "neg":
        return Fraction(-1), t.args[0]
    return Fraction(1), t


def nsum(terms: Iterable[Node | Dyadic]) -> Node:
    """Exact-aware sum: exact constants are added exactly (dyadic ones as raw mpf, others as Fractions), zeros
    dropped, nested sums flattened, and multiples of the same node (q * base, -base, base) collected with exact
    coefficients, so that structurally cancelling terms cancel exactly: sum_c w_c t_c (L - d_c) over classes
    whose weighted targets sum to 0 is the exact constant -sum_c w_c t_c d_c, L gone."""
    multiples: dict[int, list] = {}  # id(base) -> [coefficient, base, the first term, how many terms]
    c = fzero
    q = Fraction(0)
    for t in terms:
        t = as_node(t)
        stack = t.args if t.op == "sum" else (t,)
        for s in stack:
            if s.op == "const":
                if _cheap_exact_sum(c, s.value):
                    c = libmp.mpf_add(c, s.value, 0)
                    continue
                # exponents too far apart for an exact sum of modest size: left to the balls (as a term)
            elif s.op == "rat":
                q += s.value
                continue
            k, base = _as_multiple(s) if s.op != "const" else (Fraction(1), s)
            m = multiples.get(id(base))
            if m is None:
                multiples[id(base)] = [k, base, s, 1]
            else:
                m[0] += k
                m[3] += 1
    flat = []
    for k, base, first, count in multiples.values():
        if count == 1:
            flat.append(first)  # a term met once stays the node it was
        elif k:
            flat.append(base if k == 1 else Node("mul", (rational(k), base)))
    if q and (not c[1] or _fraction_ok(const(c))):
        total = rational(q + _mpf_fraction(c))
        if not total.is_zero:
            flat.append(total)
    else:
        if q:
            flat.append(rational(q))
        if c[1]:
            flat.append(const(c))
    if not flat:
        return ZERO
    if len(flat) == 1:
        return flat[0]
    return Node("sum", tuple(flat))


def exp(x: Node | Dyadic) -> Node:
    x = as_node(x)
    if x.is_zero:
        return ONE
    return Node("exp", (x,))


def log(x: Node | Dyadic) -> Node:
    """log x. The log of a constant is put in a canonical form, so that equal logarithms are one node and
    sums of them cancel exactly: log(m 2**e) = log(m) + e log(2) with m odd (kept whole when x is in [1/2, 2],
    where the split would cancel), and the node for each log is shared."""
    x = as_node(x)
    if x.is_one:
        return ZERO
    if not x.is_const:
        return Node("log", (x,))
    v = x.value
    if v[0] or not v[1]:
        raise ValueError("log of a constant that is not positive reached an expression")
    man, e = int(v[1]), v[2]
    top = e + man.bit_length() - 1
    if top in (-1, 0) and man != 1:  # 1/2 <= x < 2, not a power of two
        return _log_const(v)
    parts = [_log_const(libmp.from_int(man))] if man != 1 else []
    if e:
        parts.append(const(libmp.from_int(e)) * LOG2)
    return nsum(parts)


_LOGS: dict = {}


def _log_const(v: tuple) -> Node:
    """The one shared node for log(v), v a positive constant (a bounded table)."""
    n = _LOGS.get(v)
    if n is None:
        if len(_LOGS) > 100_000:
            _LOGS.clear()
        n = _LOGS[v] = Node("log", (const(v),))
    return n


def log1p(x: Node | Dyadic) -> Node:
    x = as_node(x)
    if x.is_zero:
        return ZERO
    return Node("log1p", (x,))


def absval(x: Node | Dyadic) -> Node:
    x = as_node(x)
    if x.is_const:
        return const(libmp.mpf_abs(x.value))
    if x.op == "abs":
        return x
    return Node("abs", (x,))
