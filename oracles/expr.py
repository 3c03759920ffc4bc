"""Exact real expressions: a small DAG of exact binary constants and elementary operations, evaluated as
balls at any working precision (memoised per precision, so a result and its gradient share their terms).

Building an expression never rounds: constants are exact binary values, and the simplifications done at build
time are exact identities (x + 0 = x, x * 1 = x, 0 * x = 0, exp(0) = 1, log(1) = 0, exact sums and products of
constants). Special values (inf, nan) never enter an expression: the loss code resolves them first, in the
extended reals.
"""

from __future__ import annotations

from mpmath import libmp

from .balls import Ball

__all__ = ["Node", "const", "ZERO", "ONE", "nsum", "exp", "log", "log1p", "absval", "as_node"]

fzero, fone = libmp.fzero, libmp.fone


class Node:
    __slots__ = ("op", "args", "value", "_memo")

    def __init__(self, op: str, args=(), value=None):
        self.op = op
        self.args = args
        self.value = value  # raw mpf for constants
        self._memo = None

    # -------------------------------------------------------------- evaluation
    def ball(self, w: int) -> Ball:
        if self.op == "const":
            return Ball(self.value)
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
        return self.op == "const"

    @property
    def is_zero(self) -> bool:
        return self.op == "const" and not self.value[1]

    @property
    def is_one(self) -> bool:
        return self.op == "const" and self.value == fone

    def __add__(self, other):
        return nsum([self, as_node(other)])

    __radd__ = __add__

    def __sub__(self, other):
        other = as_node(other)
        if other.is_zero:
            return self
        if self.is_const and other.is_const:
            return const(libmp.mpf_sub(self.value, other.value, 0))
        if self is other:
            return ZERO
        return Node("sub", (self, other))

    def __rsub__(self, other):
        return as_node(other) - self

    def __neg__(self):
        if self.is_const:
            return const(libmp.mpf_neg(self.value))
        if self.op == "neg":
            return self.args[0]
        if self.op in ("sum", "mul", "log") and _log_terms(self) is not None:
            return nsum(_scaled_log(libmp.mpf_neg(k), L) for k, L in _log_terms(self))
        return Node("neg", (self,))

    def __mul__(self, other):
        other = as_node(other)
        if self.is_zero or other.is_zero:
            return ZERO
        if self.is_one:
            return other
        if other.is_one:
            return self
        if self.is_const and other.is_const:
            return const(libmp.mpf_mul(self.value, other.value))
        # a constant times a linear combination of canonical logs stays one (so that sums can cancel exactly)
        for c, s in ((self, other), (other, self)):
            if c.is_const and s.op in ("sum", "neg", "mul"):
                terms = _log_terms(s)
                if terms is not None:
                    return nsum(_scaled_log(libmp.mpf_mul(c.value, k), L) for k, L in terms)
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
        return Node("div", (self, other))

    def __rtruediv__(self, other):
        return as_node(other) / self


def const(v) -> Node:
    """An exact constant from a raw mpf."""
    return Node("const", (), v)


ZERO = const(fzero)
ONE = const(fone)
LOG2 = Node("log", (const(libmp.from_int(2)),))


def as_node(x) -> Node:
    if isinstance(x, Node):
        return x
    from .formats import to_mpf

    return const(to_mpf(x))


def _as_log_term(t):
    """(coefficient raw mpf, canonical log node) when t is c * log(const), else None."""
    if t.op == "log" and t.args[0].is_const:
        return fone, t
    if t.op == "neg":
        r = _as_log_term(t.args[0])
        return (libmp.mpf_neg(r[0]), r[1]) if r else None
    if t.op == "mul":
        a, b = t.args
        if a.is_const and b.op == "log" and b.args[0].is_const:
            return a.value, b
        if b.is_const and a.op == "log" and a.args[0].is_const:
            return b.value, a
    return None


def _scaled_log(k, L):
    """k * L for a raw mpf k and a canonical log node L (or the constant k when L is None)."""
    if L is None or not k[1]:
        return const(k)
    return L if k == fone else Node("mul", (const(k), L))


def _log_terms(t):
    """[(coefficient, log node or None for a constant)] when t is a linear combination of canonical logs."""
    terms = t.args if t.op == "sum" else (t,)
    out = []
    for s in terms:
        if s.is_const:
            out.append((s.value, None))
            continue
        r = _as_log_term(s)
        if r is None:
            return None
        out.append(r)
    return out


def nsum(terms) -> Node:
    """Exact-aware sum: constants are added exactly, zeros dropped, nested sums flattened, and multiples of
    the same canonical logarithm collected with exact coefficients (so that log terms cancel exactly)."""
    flat = []
    logs: dict = {}
    c = fzero
    for t in terms:
        t = as_node(t)
        if t.op == "sum":
            stack = list(t.args)
        else:
            stack = [t]
        for s in stack:
            if s.is_const:
                c = libmp.mpf_add(c, s.value, 0)
                continue
            r = _as_log_term(s)
            if r is not None:
                k, L = r
                logs[id(L)] = (libmp.mpf_add(logs[id(L)][0], k, 0), L) if id(L) in logs else (k, L)
            else:
                flat.append(s)
    for k, L in logs.values():
        if k[1]:
            flat.append(_scaled_log(k, L))
    if c[1]:
        flat.append(const(c))
    if not flat:
        return ZERO
    if len(flat) == 1:
        return flat[0]
    return Node("sum", tuple(flat))


def exp(x) -> Node:
    x = as_node(x)
    if x.is_zero:
        return ONE
    return Node("exp", (x,))


def log(x) -> Node:
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


def _log_const(v) -> Node:
    """The one shared node for log(v), v a positive constant (a bounded table)."""
    n = _LOGS.get(v)
    if n is None:
        if len(_LOGS) > 100_000:
            _LOGS.clear()
        n = _LOGS[v] = Node("log", (const(v),))
    return n


def log1p(x) -> Node:
    x = as_node(x)
    if x.is_zero:
        return ZERO
    return Node("log1p", (x,))


def absval(x) -> Node:
    x = as_node(x)
    if x.is_const:
        return const(libmp.mpf_abs(x.value))
    if x.op == "abs":
        return x
    return Node("abs", (x,))
