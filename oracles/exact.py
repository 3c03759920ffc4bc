"""Exact results and certified rounding (Ziv's strategy).

An ``Exact`` is a real number of the extended reals known exactly: either a special value (+-inf, NaN) or an
expression (``expr.Node``) that can be enclosed in balls of any width. ``Exact.to(fmt)`` evaluates the ball at
a working precision, and raises the precision until both ends of the ball round to the same value of the
format, or the ball is a single point (an exact value, ties included). Past the cap it raises
``OraclePrecisionError``: never a silent guess.

Precision control lives in a context variable (``precision_cap``), never in mpmath's global context.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import Any, Protocol, cast

from mpmath import libmp

from . import expr
from .balls import BallError
from .formats import Format, get_format, next_up, round_mpf, to_mpf
from .tensors import shape_and_flat

__all__ = ["Exact", "OraclePrecisionError", "precision_cap", "get_precision_cap", "START_GUARD", "decide_many",
           "enclose_many"]

DEFAULT_CAP = 1 << 15
START_GUARD = 40  # first working precision is p + START_GUARD bits: decides all but about 2**-40 of cases
_cap = contextvars.ContextVar("lossproof_precision_cap", default=DEFAULT_CAP)


class OraclePrecisionError(ArithmeticError):
    """The rounding could not be decided below the precision cap."""


@contextlib.contextmanager
def precision_cap(bits: int) -> Iterator[None]:
    """Temporarily set the highest working precision (bits) the oracle may use."""
    if not isinstance(bits, int) or bits < 64:
        raise ValueError("the precision cap must be an integer number of bits >= 64")
    token = _cap.set(bits)
    try:
        yield
    finally:
        _cap.reset(token)


def get_precision_cap() -> int:
    return _cap.get()


def sign_of(node: expr.Node) -> int | None:
    """-1, 0 or 1 for an expression, refining its ball up to the cap; None when undecidable there."""
    if node.op == "const":
        return 0 if not node.value[1] else (-1 if node.value[0] else 1)
    if node.op == "rat":
        q = node.value
        return (q > 0) - (q < 0)
    for _, b in _balls(node, 64):
        if b is not None:
            if b.exact:
                return 0 if not b.mid[1] else (-1 if b.mid[0] else 1)
            if not b.contains_zero():
                return -1 if b.mid[0] else 1
    return None


def _balls(node, w):
    """(w, ball) at working precisions w, 2w, 4w, ... up to the cap (ball None where too wide to evaluate):
    the one precision-raising loop that rounding, sign and enclosure share."""
    cap = _cap.get()
    while True:
        try:
            b = node.ball(w)
        except BallError:
            b = None
        yield w, b
        if w >= cap:
            return
        w = min(2 * w, cap)


def _same_float(a: float, b: float) -> bool:
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


#: what an oracle returns: an Exact for a 0-d output, else nested lists of Exact shaped like the output (typed
#: loosely: a caller knows the shape it asked for)
ExactTree = Any


class DeferredSource(Protocol):
    """What ``Exact.deferred`` defers to (``oracles.fast`` and the fast paths beside it): a certified rounding of
    output ``key`` into a format (None when it cannot certify one), and the full Exact of that output.

    A source may also answer, without building any expression (each optional; None: ask the full Exact):

    * ``enclose(key, rel_bits) -> (mid, rad) | None``: a ball of raw mpf values containing the exact value with
      rad <= |mid| 2**-rel_bits (or rad = 0), the contract of ``Exact.enclose``;
    * ``magnitude(key) -> float | None``: a finite binary64 upper bound of |value| (what a stability bound needs);
    * ``kappa_magnitude(key) -> float | None``: a finite binary64 upper bound of the condition number ``kappa``;
    * ``decide_many(keys, fmt) -> (values, ok)`` and ``enclose_many(keys, rel_bits) -> (hi, lo, ok)``, for a
      list of keys (arrays back): ``decide`` and ``enclose`` of many outputs at once (``decide_many``, ``enclose_many``
      below), exactly their answers where ok (for ``enclose``: the midpoint is the exact sum hi + lo of two
      binary64 values); a key not ok is asked one at a time.

    Each must be rigorous (an upper bound is never below the exact quantity): ``lossproof.measure`` takes them
    instead of the expression's balls, so a wrong one would change a verdict."""

    def decide(self, key: int, fmt: Format) -> float | None: ...

    def build(self, key: int) -> Exact: ...


class Exact:
    """An exact real result. ``.to(fmt)`` is its correctly rounded value (a Python float), ``.grad`` the exact
    gradient with respect to the input (nested lists shaped like the input, of Exact), ``.kappa`` the
    condition number sum_j |x_j df/dx_j| (an Exact), ``str()`` at least 30 significant digits."""

    __slots__ = ("_node", "special", "_grad_fn", "_grad", "_kappa_fn", "_kappa", "_cache", "precision_used",
                 "_entries_fn", "_lazy")

    def __init__(self, value, grad_fn=None, kappa_fn=None, entries_fn=None):
        if isinstance(value, float):
            if math.isfinite(value) and value != 0:
                value = expr.as_node(value)
                self.special = None
            elif value == 0:
                self.special = None
                value = expr.ZERO
            else:
                self.special = value
                value = None
        elif isinstance(value, expr.Node):
            self.special = None
        else:
            value = expr.as_node(value)
            self.special = None
        self._node = value
        self._lazy = None
        self._grad_fn = grad_fn
        self._grad = None
        self._kappa_fn = kappa_fn
        self._kappa = None
        self._entries_fn = entries_fn
        self._cache = {}
        self.precision_used = 0

    @classmethod
    def deferred(cls, source: DeferredSource, key: int, special: float | None = None) -> "Exact":
        """A finite exact value whose expression is built only when needed (``oracles.fast``).

        ``source.decide(key, fmt)`` is a certified rounding into ``fmt`` or None when it cannot certify one, and
        ``source.build(key)`` the full Exact (expression, gradient, kappa) of the mpmath path: ``.to`` asks the
        first and falls back on the second, every other use (``node``, ``grad``, ``kappa``, ``str``) builds it.
        At LLM vocabulary sizes building the expressions costs seconds a row, which ``.to`` usually avoids.
        ``special`` (inf, -inf or nan) when the value is known to be one (a -inf mask's log_softmax)."""
        e = cls.__new__(cls)
        e._node = None
        e.special = special
        e._lazy = (source, key)
        e._grad_fn = e._grad = e._kappa_fn = e._kappa = e._entries_fn = None
        e._cache = {}
        e.precision_used = 0
        return e

    def _materialize(self) -> None:
        source, key = self._lazy
        full = source.build(key)
        self._node = full.node
        if full.special is not None:  # a fast path claims finite values only; the mpmath path has the last word
            self.special = full.special
        self._grad_fn, self._kappa_fn, self._entries_fn = full._grad_fn, full._kappa_fn, full._entries_fn
        self._grad, self._kappa = full._grad, full._kappa
        self._lazy = None

    @property
    def node(self) -> expr.Node | None:
        """The value's expression (None for a special value); a deferred value builds it here."""
        if self._lazy is not None:
            self._materialize()
        return self._node

    # -------------------------------------------------------------- the value
    @property
    def is_special(self) -> bool:
        return self.special is not None

    @property
    def is_nan(self) -> bool:
        return self.special is not None and math.isnan(self.special)

    @property
    def is_finite(self) -> bool:
        return self.special is None

    def to(self, fmt: str | Format) -> float:
        """RN of the exact value into ``fmt`` ("float64", "float32", "float16", "bfloat16"), certified."""
        f = get_format(fmt)
        if self.special is not None:
            return self.special
        r = self._cache.get(f.name)
        if r is None:
            if self._lazy is not None:
                source, key = self._lazy
                r = source.decide(key, f)
                if r is not None:  # decided by binary64 arithmetic with a rigorous error bound
                    return self._decided_by_source(f, r)
                self._materialize()
                if self.special is not None:  # the mpmath path found it special after all
                    return self.special
            r = self._round(f)
            self._cache[f.name] = r
        return r

    def _decided_by_source(self, f: Format, r: float) -> float:
        """Remember a rounding the deferred source certified (``to``, ``decide_many``): binary64 arithmetic with a
        rigorous bound decided it."""
        self.precision_used = max(self.precision_used, 53)
        self._cache[f.name] = r
        return r

    def known_rounding(self, fmt: str | Format) -> float | None:
        """The rounding into ``fmt`` already certified (``to``'s, or ``decide_many``'s), else None; computes nothing."""
        if self.special is not None:
            return self.special
        return self._cache.get(get_format(fmt).name)

    def _round(self, f: Format) -> float:
        node = cast(expr.Node, self.node)  # finite: ``to`` returned the special values
        if node.is_const:
            return round_mpf(node.value, f)
        w0 = f.p + START_GUARD
        for w, b in _balls(node, w0):
            r = self._decided_by(b, f, w) if b is not None else None
            if r is not None:
                self.precision_used = max(self.precision_used, w)
                return r
            if w >= 4 * w0:
                r = self._decide_by_boundary(f, w)
                if r is not None:
                    return r
        raise OraclePrecisionError(
            f"could not decide the {f.name} rounding within {_cap.get()} bits of working precision "
            "(the value may lie exactly on a rounding boundary that the expression does not show)"
        )

    def _decide_by_boundary(self, f, w):
        """When the ball keeps straddling one rounding boundary B (a midpoint between two neighbours, or zero),
        decide by the sign of value - B, evaluated as its own expression: the exact parts cancel exactly there
        (an exact midpoint plus a tail such as log1p(e**-1e6) leaves the tail alone, whose sign a ball shows at
        low precision), and an exact zero difference is an exact tie. None when the ball is not of that kind."""
        try:
            b = self.node.ball(w)
        except BallError:
            return None
        lo = round_mpf(b.lower(w + 4), f)
        hi = round_mpf(b.upper(w + 4), f)
        if lo == hi:  # -0.0 and +0.0: the boundary is zero itself
            return self._side_of_zero(lo)
        if not (math.isfinite(lo) or math.isfinite(hi)) or next_up(lo, f) != hi:
            return None
        if math.isinf(hi):  # the overflow boundary: the midpoint above the largest finite value
            mid = libmp.mpf_add(to_mpf(lo), libmp.from_man_exp(1, f.emax - f.p), 0)
        elif math.isinf(lo):
            mid = libmp.mpf_sub(to_mpf(hi), libmp.from_man_exp(1, f.emax - f.p), 0)
        else:
            mid = libmp.mpf_shift(libmp.mpf_add(to_mpf(lo), to_mpf(hi), 0), -1)
        s = sign_of(expr.nsum([self.node, expr.const(libmp.mpf_neg(mid))]))
        if s is None:
            return None
        r = hi if s > 0 else lo if s < 0 else round_mpf(mid, f)
        return self._side_of_zero(r) if r == 0 else r

    def _side_of_zero(self, r):
        s = sign_of(self.node)
        if s is None:
            return None
        return -0.0 if s < 0 else 0.0

    def decided_at(self, fmt: str | Format, w: int) -> float | None:
        """The rounding into ``fmt`` that the ball at working precision ``w`` decides, or None when the ball
        still straddles a rounding boundary (or is too wide to evaluate)."""
        f = get_format(fmt)
        if self.special is not None:
            return self.special
        try:
            b = cast(expr.Node, self.node).ball(w)  # finite: the special values returned above
        except BallError:
            return None
        return self._decided_by(b, f, w)

    @staticmethod
    def _decided_by(b, f, w):
        if b.exact:
            return round_mpf(b.mid, f)
        lo = round_mpf(b.lower(w + 4), f)
        hi = round_mpf(b.upper(w + 4), f)
        return lo if _same_float(lo, hi) else None

    def enclose(self, rel_bits: int = 120) -> tuple[tuple, tuple]:
        """A ball (raw mpf mid, rad) with rad <= |mid| * 2**-rel_bits (or an exact point). For finite values."""
        if self.special is not None:
            raise ValueError("a special value has no enclosure")
        ball = self.source_enclosure(rel_bits)
        if ball is not None:
            return ball
        node = cast(expr.Node, self.node)
        if node.is_const:
            return node.value, libmp.fzero
        for _, b in _balls(node, rel_bits + 16):
            if b is not None:
                if b.exact:
                    return b.mid, b.rad
                if b.mid[1] and libmp.mpf_cmp(
                    libmp.mpf_shift(libmp.mpf_abs(b.mid), -rel_bits), b.rad
                ) >= 0:
                    return b.mid, b.rad
        raise OraclePrecisionError(f"could not enclose the value within {_cap.get()} bits")

    def source_enclosure(self, rel_bits: int) -> tuple[tuple, tuple] | None:
        """The ball ``enclose(rel_bits)`` returns when a deferred value's source answers it (a fast path's binary64
        or double-double enclosure), else None: no expression is built and no precision cap is read, so a caller
        that measures many numbers asks this first and enters the mpmath path only for the rest."""
        return None if self.special is not None else self._ask_source("enclose", rel_bits)

    def _ask_source(self, what: str, *args: Any) -> Any:
        """A deferred value's source's answer to ``what`` (an optional DeferredSource method), or None."""
        if self._lazy is None:
            return None
        source, key = self._lazy
        method = getattr(source, what, None)
        return None if method is None else method(key, *args)

    def magnitude_bound(self) -> float | None:
        """A binary64 upper bound of |value| that a deferred value's source gives without building the expression
        (None: not known that way; a caller then bounds ``node``'s balls)."""
        return None if self.special is not None else self._ask_source("magnitude")

    def kappa_bound(self) -> float | None:
        """A binary64 upper bound of ``kappa`` from a deferred value's source, without building expressions (None:
        not known that way; ``kappa`` is the exact condition number)."""
        return None if self.special is not None else self._ask_source("kappa_magnitude")

    def fraction(self, rel_bits: int = 120) -> Fraction:
        """A rational within |z| * 2**-rel_bits of the exact value (the value itself when exact)."""
        mid, _ = self.enclose(rel_bits)
        sign, man, e, _ = mid
        if not man:
            return Fraction(0)
        n = -int(man) if sign else int(man)
        return Fraction(n * 2**e) if e >= 0 else Fraction(n, 2**-e)

    def __str__(self) -> str:
        if self.special is not None:
            return "nan" if math.isnan(self.special) else ("inf" if self.special > 0 else "-inf")
        mid, rad = self.enclose(130)
        if not mid[1]:
            return "0.0"
        digits = 36
        if not rad[1]:
            # exact: print every digit when it is short (0.5, 0.1015625), else 36 significant digits
            s = libmp.to_str(mid, 60)
            if len(s.replace("-", "").replace(".", "").split("e")[0].strip("0")) < 50:
                return s
        return libmp.to_str(mid, digits)

    def __repr__(self) -> str:
        return f"Exact({self})"

    def __float__(self) -> float:
        return self.to("float64")

    # -------------------------------------------------------------- derived quantities
    @property
    def grad(self) -> ExactTree:
        if self._lazy is not None:
            self._materialize()
        if self._grad is None:
            if self._grad_fn is None:
                raise AttributeError("this exact value carries no gradient")
            self._grad = self._grad_fn()
        return self._grad

    def grad_entries(self) -> dict:
        """The gradient's nonzero part: {flat input index: Exact} (cheaper than ``.grad`` for large inputs)."""
        if self._lazy is not None:
            self._materialize()
        if self._entries_fn is None:

            _, flat = shape_and_flat(self.grad, "grad")
            return {k: g for k, g in enumerate(flat) if not (g.node is not None and g.node.is_zero)}
        return {k: Exact(v) for k, v in self._entries_fn().items()}

    @property
    def kappa(self) -> "Exact":
        if self._lazy is not None:
            self._materialize()
        if self._kappa is None:
            if self._kappa_fn is None:
                raise AttributeError("this exact value carries no condition number")
            self._kappa = self._kappa_fn()
        return self._kappa


def _by_source(values: Sequence[Any], method: str) -> dict[int, tuple[Any, list[int], list[int]]]:
    """{id(source): (source, [positions], [keys])} of the deferred values (not special, not built) whose source has
    ``method``."""
    groups: dict[int, tuple[Any, list[int], list[int]]] = {}
    for i, v in enumerate(values):
        lazy = v._lazy if isinstance(v, Exact) else None
        if lazy is None or v.special is not None:
            continue
        source, key = lazy
        g = groups.get(id(source))
        if g is None:
            if getattr(source, method, None) is None:
                continue
            g = groups[id(source)] = (source, [], [])
        g[1].append(i)
        g[2].append(key)
    return groups


def decide_many(values: Sequence[Any], fmt: str | Format) -> None:
    """Certify the roundings into ``fmt`` of many values at once: each deferred value's source is asked for all its
    keys in one call (``decide_many``), and each rounding it decides is stored as ``Exact.to`` stores it (the same
    value, the same ``precision_used``); the rest are left to ``to``, one at a time, as before."""
    f = get_format(fmt)
    groups = _by_source(values, "decide_many")
    if not groups:
        return
    for source, pos, keys in groups.values():
        todo = [(i, k) for i, k in zip(pos, keys) if f.name not in values[i]._cache]
        if not todo:
            continue
        got, ok = source.decide_many([k for _, k in todo], f)
        for (i, _), r, good in zip(todo, got.tolist(), ok.tolist()):
            if good:
                values[i]._decided_by_source(f, r)


def enclose_many(values: Sequence[Any], rel_bits: int) -> list[tuple[float, float] | None]:
    """For each value, (hi, lo) with hi + lo (exactly) the midpoint ``source_enclosure(rel_bits)`` returns, where its
    source answers for many keys at once (``enclose_many``); None elsewhere (ask ``source_enclosure``)."""
    out: list[tuple[float, float] | None] = [None] * len(values)
    groups = _by_source(values, "enclose_many")
    if not groups:
        return out
    for source, pos, keys in groups.values():
        hi, lo, ok = source.enclose_many(keys, rel_bits)
        for i, h, low, good in zip(pos, hi.tolist(), lo.tolist(), ok.tolist()):
            if good:
                out[i] = (h, low)
    return out
