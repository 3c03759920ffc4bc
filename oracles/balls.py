"""Midpoint-radius ("ball") arithmetic on mpmath's raw binary floats, the engine of certified rounding.

A Ball ``(mid, rad)`` stands for every real in ``[mid - rad, mid + rad]``; every operation returns a ball that
contains the exact result of the operation applied to every point of its operands (as Arb does). ``rad == 0``
means the value is known exactly, which is how exact results (ties included) are rounded correctly.

Error accounting (the one assumption, documented): mpmath's ``mpf_exp``/``mpf_log`` evaluated at ``w + GUARD``
bits are within 2 ulp at that precision (mpmath aims at < 1 ulp), i.e. within ``2**(1 - w - GUARD)`` relative;
we charge ``2**(1 - w)`` relative, a 256-fold margin. Additions, products and quotients are correctly rounded by
libmp, so their charge is the half-ulp bound ``|result| * 2**-w``, charged as ``2**(1 - w)``. The independent
check of this file is ``tests/meta/test_arb_crosscheck.py`` (python-flint's Arb balls).

Radii are held at RAD_PREC bits and always rounded up, so they only ever over-estimate.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from mpmath import libmp

__all__ = ["Ball", "BallError", "GUARD"]

GUARD = 8
RAD_PREC = 30
_U, _N, _F, _C = libmp.round_up, libmp.round_nearest, libmp.round_floor, libmp.round_ceiling
fzero, fone = libmp.fzero, libmp.fone
_add, _sub, _mul, _div = libmp.mpf_add, libmp.mpf_sub, libmp.mpf_mul, libmp.mpf_div
_abs, _neg, _shift, _cmp, _pos = libmp.mpf_abs, libmp.mpf_neg, libmp.mpf_shift, libmp.mpf_cmp, libmp.mpf_pos
# e**r - 1 <= r * e**r <= 1.07 r for 0 <= r <= 1/16: charged as 2 r
_SIXTEENTH = libmp.from_man_exp(1, -4)


class BallError(ArithmeticError):
    """The ball is too wide for the operation (a log or quotient whose operand may touch zero).
    The caller raises the working precision; at the cap it becomes an OraclePrecisionError."""


def _top(v: tuple) -> int:
    """floor(log2|v|) for a nonzero finite raw mpf."""
    return v[2] + v[3] - 1


def _rel(v, w):
    """|v| * 2**(1 - w), rounded up: the charge for one rounding at working precision w."""
    if not v[1]:
        return fzero
    return _shift(_abs(_pos(v, RAD_PREC, _C)), 1 - w)


def _radd(*rs):
    acc = fzero
    for r in rs:
        acc = _add(acc, r, RAD_PREC, _C)
    return acc


def _rmul(a, b):
    return _mul(a, b, RAD_PREC, _C)


class Ball:
    __slots__ = ("mid", "rad")

    def __init__(self, mid, rad=fzero):
        self.mid = mid
        self.rad = rad

    # ---------------------------------------------------------------- inspection
    @property
    def exact(self) -> bool:
        return not self.rad[1]

    def lower(self, w: int) -> tuple:
        return _sub(self.mid, self.rad, w, _F) if self.rad[1] else self.mid

    def upper(self, w: int) -> tuple:
        return _add(self.mid, self.rad, w, _C) if self.rad[1] else self.mid

    def contains_zero(self) -> bool:
        return _cmp(_abs(self.mid), self.rad) <= 0

    def positive(self) -> bool:
        """Certainly > 0."""
        return self.mid[0] == 0 and self.mid[1] and _cmp(self.mid, self.rad) > 0

    def __repr__(self):  # pragma: no cover - debugging aid
        return f"Ball({libmp.to_str(self.mid, 20)} +/- {libmp.to_str(self.rad, 3)})"

    # ---------------------------------------------------------------- arithmetic
    def __neg__(self):
        return Ball(_neg(self.mid), self.rad)

    def add(self, other: "Ball", w: int) -> "Ball":
        return Ball._sum2(self.mid, other.mid, w, _radd(self.rad, other.rad))

    def sub(self, other: "Ball", w: int) -> "Ball":
        return Ball._sum2(self.mid, _neg(other.mid), w, _radd(self.rad, other.rad))

    @staticmethod
    def _sum2(a, b, w, rad):
        if not a[1]:
            return Ball(_pos(b, w, _N), _radd(rad, _rounding_charge(b, w)))
        if not b[1]:
            return Ball(_pos(a, w, _N), _radd(rad, _rounding_charge(a, w)))
        span = max(_top(a), _top(b)) - min(a[2], b[2]) + 2
        if span <= 4 * w + 64:  # cheap to add exactly, so exactness (cancellation) is detected
            s = _add(a, b, 0)
            m = _pos(s, w, _N)
            return Ball(m, rad if m == s else _radd(rad, _rel(m, w)))
        m = _add(a, b, w, _N)
        return Ball(m, _radd(rad, _rel(m, w)))

    @staticmethod
    def fsum(balls: Iterable[Ball], w: int) -> "Ball":
        """Sum of many balls: exact partial sums where cheap, one rounding charge per step otherwise."""
        acc = Ball(fzero)
        for b in balls:
            acc = acc.add(b, w)
        return acc

    def mul(self, other: "Ball", w: int) -> "Ball":
        a, b = self.mid, other.mid
        p = _mul(a, b)  # exact: at most bc(a) + bc(b) bits
        m = _pos(p, w, _N)
        rad = _radd(
            _rmul(_abs(a), other.rad), _rmul(_abs(b), self.rad), _rmul(self.rad, other.rad)
        )
        return Ball(m, rad if m == p else _radd(rad, _rel(m, w)))

    def div(self, other: "Ball", w: int) -> "Ball":
        a, b = self.mid, other.mid
        if other.contains_zero():
            raise BallError("divisor ball contains zero")
        q = _div(a, b, w, _N)
        exact_q = _mul(q, b) == a
        rad = fzero
        if self.rad[1] or other.rad[1]:
            # |a/b - ma/mb| <= (|ma| rb + |mb| ra) / (|mb| (|mb| - rb))
            mb = _abs(b)
            num = _radd(_rmul(_abs(a), other.rad), _rmul(mb, self.rad))
            den = _mul(mb, _sub(mb, other.rad, RAD_PREC, _F), RAD_PREC, _F)
            rad = _div(num, den, RAD_PREC, _C)
        if not exact_q:
            rad = _radd(rad, _rel(q, w))
        return Ball(q, rad)

    # ---------------------------------------------------------------- elementary functions
    def exp(self, w: int) -> "Ball":
        a = self.mid
        if not a[1] and not self.rad[1]:
            return Ball(fone)
        m = libmp.mpf_exp(a, w + GUARD, _N)
        m = _pos(m, w + GUARD, _N)
        # |e^x - m| <= |m| (1 + 2^(2-w)) (2^(1-w) + (e^r - 1)) with r = rad: charged with a factor 2 margin
        r = self.rad
        if not r[1]:
            growth = fzero
        elif _cmp(r, _SIXTEENTH) <= 0:
            growth = _shift(r, 1)
        else:
            growth = _sub(libmp.mpf_exp(r, RAD_PREC, _C), fone, RAD_PREC, _C)
            growth = _shift(growth, 1)
        rad = _rmul(_shift(_abs(_pos(m, RAD_PREC, _C)), 1), _radd(_shift(fone, 1 - w), growth))
        return Ball(m, rad)

    def log(self, w: int) -> "Ball":
        a = self.mid
        if not self.positive():
            raise BallError("log of a ball that is not certainly positive")
        if a == fone and not self.rad[1]:
            return Ball(fzero)
        m = libmp.mpf_log(a, w + GUARD, _N)
        rad = _rel(m, w)
        if self.rad[1]:
            # |log x - log ma| <= -log(1 - t) <= t / (1 - t), t = r / ma < 1
            t = _div(self.rad, _pos(a, RAD_PREC, _F), RAD_PREC, _C)
            if _cmp(t, fone) >= 0:
                raise BallError("log of a ball that touches zero")
            rad = _radd(rad, _div(t, _sub(fone, t, RAD_PREC, _F), RAD_PREC, _C))
        return Ball(m, rad)

    def log1p(self, w: int) -> "Ball":
        """log(1 + x), accurate in relative terms for tiny x."""
        a = self.mid
        if not a[1] and not self.rad[1]:
            return Ball(fzero)
        one_plus_lo = _add(fone, _sub(a, self.rad, RAD_PREC + 8, _F), RAD_PREC + 8, _F)
        if one_plus_lo[0] or not one_plus_lo[1]:
            raise BallError("log1p of a ball that reaches -1")
        if a[1] and _top(a) < -(w + GUARD + 2):
            # log1p(a) = a (1 - a/2 + ...): |log1p(a) - a| <= a^2 <= |a| 2^(-w-GUARD-2)
            m = _pos(a, w + GUARD, _N)
            rad = _rel(m, w)
        elif a[1]:
            one_plus = _add(fone, a, 0)  # exact: a has >= -(w + GUARD + 2) top exponent, so few bits
            m = libmp.mpf_log(one_plus, w + GUARD, _N)
            rad = _rel(m, w)
        else:
            m, rad = fzero, fzero
        if self.rad[1]:
            # |log1p(x) - log1p(a)| <= r / (1 + a - r)
            rad = _radd(rad, _div(self.rad, one_plus_lo, RAD_PREC, _C))
        return Ball(m, rad)

    def abs(self) -> "Ball":
        if self.mid[0] == 0 or not self.mid[1]:
            return self
        if not self.contains_zero():
            return Ball(_neg(self.mid), self.rad)
        # a ball around zero: [0, |m| + r] as a ball
        hi = _add(_abs(self.mid), self.rad, RAD_PREC, _C)
        half = _shift(hi, -1)
        return Ball(half, half)


def _rounding_charge(v, w):
    """Charge for rounding the exact value v to w bits (zero when it already fits)."""
    if not v[1] or v[3] <= w:
        return fzero
    return _rel(v, w)


def rational_ball(q: Fraction, w: int) -> Ball:
    """A ball around the rational q (a Fraction), its midpoint rounded to w bits."""
    m = libmp.from_rational(q.numerator, q.denominator, w, _N)
    exact = libmp.mpf_mul(m, libmp.from_int(q.denominator)) == libmp.from_int(q.numerator)
    return Ball(m, fzero if exact else _rel(m, w))
