"""Certified gradients of the softmax family and the class losses, without expressions (``oracles.fast.register``).

Why: the battery measures every gradient component (its rounding, its magnitude, a midpoint for the error); the
mpmath path builds an expression per component (the VJP of the oracle's tree) and runs Ziv's loop on it, a
quarter of a cross_entropy battery cell's time. Here each component is written in closed form as

    g = alpha s_j + beta r_j        (r_j = 1 - s_j, the softmax's complement, computed without cancellation)

with exact rational coefficients alpha, beta (Fractions of the upstream, the weights, the targets, the label
smoothing and the mean's denominator), or g = s_j (u_j - ubar) for softmax, or an exact rational (nll_loss), and
evaluated in ball arithmetic (``oracles.balls``) from enclosures of s_j and r_j of increasing precision
("levels"): fast64's quick double-double softmax (about 2**-62 relative), its accurate one (about 2**-95), then
the row's softmax in balls at 192, 640 and 2048 bits (``Ball.exp`` of the exact x_j - max). The first level whose
ball answers a request is used; when none does (the precision cap, a ball that cannot be formed) the component is
built by the mpmath path (``fallback()``, the whole call's mpmath gradient, computed once), exactly as before.

The coefficients (u upstream of the row's output or of the one reduced output, w weights, t targets, eps the
label smoothing, C the classes, W the mean's denominator; kappa = u / W under "mean", else u):

* cross_entropy, class index t (ignored row: 0): a_c = (1 - eps) w_t [c = t] + eps w_c / C, M = sum_c a_c;
  probability targets: a_c = w_c ((1 - eps) t_c + eps / C) (w_c t_c without smoothing), W = the number of rows.
  g_c = kappa (M s_c - a_c) = kappa (M - a_c) s_c - kappa a_c r_c (the mpmath path's own grouping: no
  cancellation of 1 - s_c when s_c -> 1). W = sum of the kept rows' weights (0: the mpmath path's NaN: not taken).
* log_softmax, upstream u over the row, U = sum of the row's u: g_c = u_c - U s_c = (u_c - U) s_c + u_c r_c.
* logsumexp: g_c = u s_c.  * softmax: g_c = s_c (u_c - ubar), ubar = sum_i u_i s_i.
* nll_loss: g = -kappa w_t at the target's entry, 0 elsewhere: an exact rational.

Exactness (what makes every component decidable). The softmax of a row is rational only when all its finite
entries are equal (s = 1/k, or 0 at -inf): otherwise s_j = e_j / sum_i e_i with e = exp of distinct rationals,
linearly independent over the rationals (Lindemann-Weierstrass), and s_j = q would be a nontrivial relation.
Such rows are computed in Fractions, exactly. In the other rows alpha s + beta r = (alpha - beta) s + beta is
rational only when alpha = beta (then it is beta, exactly, whatever s is), and s (u_c - ubar) only when u_c -
ubar is, i.e. when every group of equal logits has the same mean upstream mu (then u_c - ubar = u_c - mu,
exactly; ``functions._exact_zero_vjp``'s argument). Those cases are given as exact Fractions; every other
component is irrational, so a ball narrow enough decides its rounding and encloses it relatively: only the
precision cap or the last level can leave one open.

Error analysis (all enclosures are rigorous; nothing is assumed of a ball beyond ``oracles.balls``' contract)
----------------------------------------------------------------------------------------------------------
E1. s_j at the dd levels: (h_j, l_j, B_j) of ``fast64.softmax`` (its step 9, or steps Q1-Q2 and 9 for the quick
    evaluation): |s_j - (h_j + l_j)| <= B_j, taken as the ball (h_j + l_j exactly, B_j). An entry fast64 reports
    as an exact 0 (its argument below -745.2) has 0 < s_j < 2**-1075: the quick level takes the ball
    (2**-1076, 2**-1076); the accurate one computes it as exp(x_j - m) / (1 + R) in
    balls at 256 bits, R in the level's ball of E2 (so as tight relatively as R's: 1 + R >= 1), or taken as the
    ball (2**-1076, 2**-1076) where that ball is not finite. A -inf entry has s_j = 0 and r_j = 1 exactly.
E2. r_j at the dd levels: for j != jmax (the row maximum's index), s_j <= 1/2 (e_j <= e_jmax = 1), so
    r_j = 1 - s_j is the ball 1 - ball(s_j) without cancellation (relative error at most twice s_j's absolute
    one); for jmax, r = R / (1 + R) with R in the ball (Rh + Rl, err_R) of fast64's steps 6 / Q2, divided in
    balls (1 + R >= 1: the quotient's radius is that of ``Ball.div``).
E3. At a ball level of w bits: e_j = Ball(x_j - m).exp(w) (x_j - m exact, ``Ball.exp``'s charge), e_jmax = 1,
    rest = the ball sum of the others, D = 1 + rest, s_j = e_j / D, r_j = 1 - s_j (j != jmax), r_jmax = rest / D.
E4. The combination (alpha s + beta r, s (u - ubar) with ubar = sum u_i s_i) is ball arithmetic at 256 bits (dd
    levels) or w + 64 bits (ball levels); the rationals enter as ``rational_ball``s (exact when dyadic).
E4'. Softmax's u_c - ubar is also sum_{i != c} (u_c - u_i) s_i (the s_i sum to 1), with exact coefficients:
    no cancellation of u_c with ubar when s_c -> 1. Rows of at most PAIRWISE classes take it at every level,
    wider ones at the ball levels (O(C) a component).
E6. alpha s + beta r is also beta + (alpha - beta) s and alpha + (beta - alpha) r: where the ball of the sum (E4)
    cannot answer, an exact rational plus the (relatively tight) ball of the rest, the two ends added exactly as
    Fractions, can. That decides a component lying within far less than the sum's rounding of an exact
    rational that is a rounding boundary (-eps w_c / C a format's midpoint plus (alpha - beta) s_j with s_j below
    2**-1000; u - U, a sum of upstreams, plus U r with r = e**-(1e29)).
E6'. A rest below 2**-(bits(den q) + 1080) is replaced by that power of two with its sign before the exact sum:
    every rounding boundary B != q (a multiple of 2**-1075) lies at least 1 / (den(q) 2**1075) from q, so the
    rounding is the same; in an enclosure such a rest (below |q| 2**-(2 rel_bits)) goes into the radius.
E7. The vectorised first pass (before any level): every "lin" component with alpha != beta and a finite logit is
    evaluated at once in double-double from the accurate level's arrays, rational rows (s = 1/k) included: their
    components are exact rationals, which the dd ball decides and encloses unless one lies on a rounding boundary
    (an exact tie, or zero): those the ball cannot decide, and the exact Fractions of the levels do (a row of
    4,096 equal logits is 4,096 Fraction evaluations there, about 70 us each, otherwise):
    alpha, beta as dd (RN(q) and RN(q - RN(q)): within 2**-105 |q|); r = 1 - s by fast64's dd add off the maximum
    (error B_s + 2**-103 |r|), R / (1 + R) at it by its dd add and dd division (error err_R + 2**-97 |r|: the
    derivative of R / (1 + R) is at most 1; rows with R < 2**-900, where the division may underflow, are left to
    the levels); products dd x dd (TwoProd of the high parts, the cross terms in binary64, al bl dropped: at most
    6 u**2 |ab| plus 2**-1072 where a term underflows; charged 2**-99 |product|, which also covers the
    coefficients' 2**-105), the sum by the dd add (2**-103 |g|). Bound: |alpha| B_s + |beta| B_r (|q| <=
    |RN(q)| (1 + 2**-50)) + 2**-99 (|P| + |Q|) + 2**-103 |g| + 4 FLOOR64, times INFLATE, plus FLOOR64 (fast64's
    constants). Its roundings are ``fast64.certify64`` (float64) or ``fast.certify`` of hi within |lo| + B, its
    magnitude and enclosure the ball (hi + lo, B); what it leaves open goes to the levels. Coefficients above
    2**990 (the split's range) are left to the levels; an entry fast64 reports as 0 enters as s = 0 with
    B_s = 2**-1074 (E1: 2**-1075 rounded up to a binary64; 2.0**-1075 is 0.0). Softmax likewise, for rows
    that are irrational, without a common group mean and without such entries: t_i = u_i s_i by fast64's dd
    times double (2**-100 relative, plus |u_i| B_i), ubar their sum by C dd adds (each within 2**-104 of a
    partial sum, so C 2**-103 sum |t_i| in all), N = u_c - ubar by the dd add (2**-103 |N|), g = s_c N dd x dd:
    bound |N| B_s + (|s| + B_s) err_N + 2**-99 |g| + (C + 4) FLOOR64, inflated as above.
E5. Answers, per component and level (a component of E6: the sum's ball first, then the exact sums'): a
    rounding when both ends of the ball (rounded outward) round to the same value of the format with the same
    sign, the rounding of its point when exact (RN of the exact value, the same as the mpmath path's by the
    monotonicity of rounding); ``enclose(rel_bits)`` the ball when rad <= |mid| 2**-rel_bits (an exact value:
    its point, or a rational's ball at rel_bits + 8 bits); ``magnitude`` |mid| + rad rounded up to binary64 (None
    when that overflows). For a -inf-masked row entry every formula above holds with s_j = 0 (the mpmath path's:
    its gradient is finite there even where the loss is inf).

Not taken (the mpmath path answers, as before): NaN or +inf logits in a row that enters the gradient, a row with
no finite logit, a mean over zero total weight, targets that are not class indices or arrays of floats,
non-finite weights, targets or upstreams, and inputs that ``oracles.fast._read`` does not take.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from fractions import Fraction
from typing import Any

from mpmath import libmp

from . import fast, fast64
from .balls import Ball, BallError, rational_ball
from .exact import Exact, get_precision_cap
from .formats import Format, round_mpf, round_to_format
from .tensors import legacy_reduction, normalize_dim, read_indices, shape_and_flat, softmax_dim

__all__ = ["counting", "LEVELS", "gradient"]

np: Any = fast.np

#: the levels, in order: the dd evaluations (quick, accurate), then the row in balls at these precisions
BALL_BITS = (192, 640, 2048)
LEVELS = 2 + len(BALL_BITS)
DD_WORK = 256  # the combination's working precision at the dd levels
PAIRWISE = 64  # softmax rows up to this many classes take E4' at every level (O(C) a component), wider ones at the
# ball levels only (after u_c - ubar at the dd levels)

_ZERO = libmp.fzero
_ONE = Ball(libmp.fone)
_ZERO_BALL = Ball(libmp.fzero)
_UNDER = Ball(libmp.from_man_exp(1, -1076), libmp.from_man_exp(1, -1076))  # [0, 2**-1075] (E1)
_counters: list = []
_MISSING = object()


@contextlib.contextmanager
def counting() -> Iterator[dict[str, int]]:
    """Count while the block runs: calls served ("calls"), calls not taken ("ineligible"), requests answered here
    ("answered"; "vector" of them by the vectorised pass, E7) and left to the mpmath path ("open"), and calls
    whose mpmath gradient had to be built ("fallback")."""
    c = {"calls": 0, "ineligible": 0, "answered": 0, "vector": 0, "open": 0, "fallback": 0}
    _counters.append(c)
    try:
        yield c
    finally:
        _counters.remove(c)


def _count(key: str, n: int = 1) -> None:
    for c in _counters:
        c[key] += n


def _frac(v: float) -> Fraction:
    if not math.isfinite(v):
        raise fast.NotEligible
    return Fraction(v)


def _float_up(q: Fraction) -> float | None:
    """A binary64 >= |q| (None when none is finite)."""
    if not q:
        return 0.0
    q = abs(q)
    d = q.denominator
    if not d & (d - 1) and q.numerator < 1 << 53 and d <= 1 << 1000:
        return q.numerator / d  # exact: a 53-bit integer over a power of two within the range
    try:
        r = float(q)
    except OverflowError:
        return None
    if Fraction(r) < q:
        r = math.nextafter(r, math.inf)
    return r if math.isfinite(r) else None


# --------------------------------------------------------------------------------------------------
# the softmax of the rows at each level


class _DDLevel:
    """s_j and r_j of every row from fast64's double-double softmax (E1, E2)."""

    def __init__(self, rows: Any, quick: bool) -> None:
        with np.errstate(all="ignore"):  # -inf entries and underflow are expected (the bounds cover them)
            st = fast._Rows(rows)
            dd = fast64.DDRows(st, quick)
            sh, sl, B = fast64.softmax(dd)
        self.quick = quick
        self.arrays = (sh, sl, B, dd.Rh, dd.Rl, dd.err_R, st.jmax)
        self.sh, self.sl, self.B = sh.tolist(), sl.tolist(), B.tolist()
        self.jmax = st.jmax.tolist()
        self.m = st.m.tolist()
        self.rows = rows
        self.R = list(zip(dd.Rh.tolist(), dd.Rl.tolist(), dd.err_R.tolist()))
        self._r_top: dict[int, Ball | None] = {}
        self._D: dict[int, Ball | None] = {}
        self._tiny: dict[tuple[int, int], Ball] = {}

    def _R(self, r: int) -> Ball | None:
        rh, rl, err = self.R[r]
        if not (math.isfinite(rh) and math.isfinite(rl) and math.isfinite(err)):
            return None
        return Ball(libmp.mpf_add(libmp.from_float(rh), libmp.from_float(rl)), libmp.from_float(err))

    def s(self, r: int, j: int) -> Ball | None:
        h, lo, b = self.sh[r][j], self.sl[r][j], self.B[r][j]
        if not (math.isfinite(h) and math.isfinite(lo) and math.isfinite(b)):
            return None
        if h == 0 and lo == 0 and b == 0:  # the quick level's ball [0, 2**-1075] often answers already
            return _UNDER if self.quick else self._underflowed(r, j)
        return Ball(libmp.mpf_add(libmp.from_float(h), libmp.from_float(lo)), libmp.from_float(b))

    def _underflowed(self, r: int, j: int) -> Ball:
        """E1': an entry below 2**-1075 as exp(x_j - m) / (1 + R) in balls (x_j - m exact; R this level's ball),
        relatively as tight as R's ball (1 + R >= 1); the ball [0, 2**-1075] when R's is not finite."""
        got = self._tiny.get((r, j))
        if got is None:
            if r not in self._D:
                R = self._R(r)
                self._D[r] = None if R is None else _ONE.add(R, DD_WORK)
            D = self._D[r]
            if D is None:
                got = _UNDER
            else:
                d = libmp.mpf_sub(libmp.from_float(float(self.rows[r, j])), libmp.from_float(self.m[r]))
                got = Ball(d).exp(DD_WORK).div(D, DD_WORK)
            self._tiny[(r, j)] = got
        return got

    def r(self, r: int, j: int, w: int) -> Ball | None:
        if j != self.jmax[r]:
            s = self.s(r, j)
            return None if s is None else _ONE.sub(s, w)
        if r not in self._r_top:
            R = self._R(r)
            self._r_top[r] = None if R is None else R.div(_ONE.add(R, w), w)
        return self._r_top[r]


class _BallLevel:
    """s_j and r_j of a row in balls of ``bits`` bits (E3), row by row on demand."""

    def __init__(self, rows: list, bits: int) -> None:
        self.rows, self.bits = rows, bits
        self._done: dict[int, tuple | None] = {}

    def _row(self, r: int) -> tuple | None:
        got = self._done.get(r, 0)
        if got != 0:
            return got  # type: ignore[return-value]
        w = self.bits
        xs = self.rows[r]
        fin = [j for j, v in enumerate(xs) if v != -math.inf]
        jm = max(fin, key=lambda j: xs[j])
        m = libmp.from_float(xs[jm])
        e: dict[int, Ball] = {}
        try:
            for j in fin:
                e[j] = _ONE if j == jm else Ball(libmp.mpf_sub(libmp.from_float(xs[j]), m)).exp(w)
            rest = Ball.fsum((e[j] for j in fin if j != jm), w)
            D = _ONE.add(rest, w)
            s = {j: e[j].div(D, w) for j in fin}
            rr = {j: (rest.div(D, w) if j == jm else _ONE.sub(s[j], w)) for j in fin}
            res: tuple | None = (s, rr)
        except BallError:
            res = None
        self._done[r] = res
        return res

    def s(self, r: int, j: int) -> Ball | None:
        row = self._row(r)
        return None if row is None else row[0][j]

    def r(self, r: int, j: int, w: int) -> Ball | None:
        row = self._row(r)
        return None if row is None else row[1][j]


# --------------------------------------------------------------------------------------------------
# the source of one call's gradient components


class _Lin:
    """A component known several ways: ``full``, the ball of alpha s + beta r, and ``sums``, pairs (q, d) of an
    exact Fraction q plus the ball d of the rest (beta + (alpha - beta) s, alpha + (beta - alpha) r), added
    exactly when the full ball cannot answer (E6); each pair is computed when first needed."""

    __slots__ = ("full", "_make", "_sums")

    def __init__(self, full: Ball, sums: Callable[[], list]) -> None:
        self.full, self._make = full, sums
        self._sums: list | None = None

    @property
    def sums(self) -> list:
        if self._sums is None:
            self._sums = self._make()
        return self._sums

    def decide(self, f: Format) -> float | None:
        r = _decided(self.full, f)
        for q, d in self.sums if r is None else ():
            r = _decided_sum(q, d, f)
            if r is not None:
                break
        return r

    def enclose(self, rel_bits: int) -> tuple | None:
        r = _enclosed(self.full, rel_bits)
        for q, d in self.sums if r is None else ():
            r = _enclosed_sum(q, d, rel_bits)
            if r is not None:
                break
        return r


def _dd_mul(ah: Any, al: Any, bh: Any, bl: Any) -> tuple[Any, Any]:
    """dd times dd (E7): TwoProd of the high parts, the cross terms added in binary64, al bl dropped."""
    p, e = fast64.two_prod(ah, bh)
    return fast64.fast_two_sum(p, e + (ah * bl + al * bh))


def _mpf_fraction(v: tuple) -> Fraction:
    sign, man, e, _ = v
    q = Fraction(int(man) << e) if e >= 0 else Fraction(int(man), 1 << -e)
    return -q if sign else q


def _top(v: tuple) -> int:
    """An exponent e with |v| < 2**e (v a nonzero finite raw mpf)."""
    return v[2] + v[3]


def _shrunk(v: tuple, beta: Fraction) -> tuple:
    """v, or where 0 < |v| < 2**-(bits(den beta) + 1080), the value of v's sign 2**-(bits(den beta) + 1080):
    every rounding boundary B of a format (a multiple of 2**-1075) with B != beta lies at least
    1 / (den(beta) 2**1075) from beta, so RN(beta + v) is the same for both (E6'); the sum stays small."""
    lim = -(beta.denominator.bit_length() + 1080)
    if v[1] and _top(v) < lim:
        return libmp.from_man_exp(-1 if v[0] else 1, lim)
    return v


def _decided_sum(beta: Fraction, d: Ball, f: Format) -> float | None:
    """E6: RN(beta + delta) for every delta in the ball d, the sums formed exactly (None if they differ)."""
    if d.exact:
        return round_to_format(beta + _mpf_fraction(_shrunk(d.mid, beta)), f)
    w = f.p + 64
    lo = round_to_format(beta + _mpf_fraction(_shrunk(d.lower(w), beta)), f)
    hi = round_to_format(beta + _mpf_fraction(_shrunk(d.upper(w), beta)), f)
    return lo if lo == hi and math.copysign(1.0, lo) == math.copysign(1.0, hi) else None


def _enclosed(b: Ball, rel_bits: int) -> tuple | None:
    if not b.rad[1]:
        return b.mid, b.rad
    if b.mid[1] and libmp.mpf_cmp(libmp.mpf_shift(libmp.mpf_abs(b.mid), -rel_bits), b.rad) >= 0:
        return b.mid, b.rad
    return None


def _enclosed_sum(beta: Fraction, d: Ball, rel_bits: int) -> tuple | None:
    """E6: beta + mid(d) rounded to rel_bits + 32 bits, its radius d's plus that rounding's."""
    if beta and d.mid[1] and _top(d.mid) < beta.numerator.bit_length() - beta.denominator.bit_length() - 2 * rel_bits:
        q = beta  # d is below |beta| 2**-(2 rel_bits - 1): it goes into the radius whole
        d = Ball(_ZERO, libmp.mpf_add(libmp.mpf_abs(d.mid), d.rad, 64, libmp.round_up))
    else:
        q = beta + _mpf_fraction(d.mid)
    if not q:
        return None if d.rad[1] else (_ZERO, _ZERO)
    m = rational_ball(q, rel_bits + 32)
    return _enclosed(Ball(m.mid, libmp.mpf_add(m.rad, d.rad, 64, libmp.round_up)), rel_bits)


def _decided(b: Ball, f: Format) -> float | None:
    if b.exact:
        return round_mpf(b.mid, f)
    w = f.p + 64
    lo = round_mpf(b.lower(w), f)
    hi = round_mpf(b.upper(w), f)
    return lo if lo == hi and math.copysign(1.0, lo) == math.copysign(1.0, hi) else None


class _GradSource:
    """The components of one call's gradient (``Exact.deferred``'s source). ``comps[key]`` is
    ("lin", r, j, alpha, beta) (alpha s + beta r), ("soft", r, j, u) (s (u - ubar)), or ("q", value) (an exact
    Fraction); ``rows`` the logit rows (binary64) that the first two read, ``ups`` each row's upstream as
    Fractions (softmax only)."""

    def __init__(self, rows: Any, comps: list, fallback: Callable[[], list], ups: list | None = None) -> None:
        self.rows = rows
        self.comps = comps
        self.fallback = fallback
        self.ups = ups
        self._rows_list: list | None = None
        self._exact_rows: dict[int, list | None] = {}
        self._levels: dict[int, Any] = {}
        self._values: dict[tuple[int, int], Any] = {}
        self._rb: dict[tuple[Fraction, int], Ball] = {}
        self._ubar: dict[tuple[int, int], Any] = {}
        self._mu: dict[int, Fraction | None] = {}
        self._built = False
        self._vec: Any = _MISSING  # E7: {key: position}, (hi, lo, bound) arrays, or None
        self._vec_certified: dict[str, Any] = {}

    # ---------------------------------------------------------------- rows
    def _row_list(self, r: int) -> list:
        if self._rows_list is None:
            self._rows_list = self.rows.tolist()
        return self._rows_list[r]

    def _exact_row(self, r: int) -> list | None:
        """The row's softmax as Fractions when it is rational (all finite entries equal), else None."""
        if r not in self._exact_rows:
            xs = self._row_list(r)
            fin = [v for v in xs if v != -math.inf]
            if len(set(fin)) == 1:
                k = Fraction(1, len(fin))
                self._exact_rows[r] = [Fraction(0) if v == -math.inf else k for v in xs]
            else:
                self._exact_rows[r] = None
        return self._exact_rows[r]

    def _level(self, level: int) -> Any:
        if level not in self._levels:
            try:
                if level < 2:
                    self._levels[level] = _DDLevel(self.rows, level == 0)
                else:
                    bits = BALL_BITS[level - 2]
                    self._levels[level] = _BallLevel(self.rows.tolist(), bits) if bits <= get_precision_cap() \
                        else None
            except (fast.NotEligible, ArithmeticError, ValueError):
                self._levels[level] = None
        return self._levels[level]

    def _ball(self, q: Fraction, w: int) -> Ball:
        b = self._rb.get((q, w))
        if b is None:
            b = self._rb[(q, w)] = rational_ball(q, w)
        return b

    # ---------------------------------------------------------------- values
    def _value(self, key: int, level: int) -> Any:
        """The component as a Fraction (exact: the same at every level), a Ball, or None (not at this level)."""
        c = self.comps[key]
        if c[0] == "q":
            return c[1]
        got = self._values.get((key, level), _MISSING)
        if got is not _MISSING:
            return got
        try:
            v = self._lin(level, *c[1:]) if c[0] == "lin" else self._soft(level, *c[1:])
        except BallError:
            v = None
        if isinstance(v, Fraction):
            for lv in range(LEVELS):
                self._values[(key, lv)] = v
        else:
            self._values[(key, level)] = v
        return v

    def _work(self, level: int) -> int:
        return DD_WORK if level < 2 else BALL_BITS[level - 2] + 64

    def _known(self, key: int) -> Fraction | None:
        """The component as a Fraction where it is rational by its form (what ``_value`` answers at every level,
        without evaluating one): a ("q", v) component, and the cases of ``_exact_lin`` and ``_exact_soft``."""
        c = self.comps[key]
        if c[0] == "q":
            return c[1]
        return self._exact_lin(*c[1:]) if c[0] == "lin" else self._exact_soft(*c[1:])

    def _exact_lin(self, r: int, j: int, alpha: Fraction, beta: Fraction) -> Fraction | None:
        if alpha == beta:  # (alpha - beta) s + beta: exactly beta, whatever s is
            return beta
        ex = self._exact_row(r)
        if ex is not None:
            return alpha * ex[j] + beta * (1 - ex[j])
        if self._row_list(r)[j] == -math.inf:
            return beta  # s = 0, r = 1 exactly
        return None

    def _lin(self, level: int, r: int, j: int, alpha: Fraction, beta: Fraction) -> Any:
        known = self._exact_lin(r, j, alpha, beta)
        if known is not None:
            return known
        lv = self._level(level)
        if lv is None:
            return None
        w = self._work(level)
        s = lv.s(r, j)
        rr = lv.r(r, j, w) if beta else _ZERO_BALL
        if s is None or rr is None:
            return None
        acc = _ZERO_BALL
        if alpha:
            acc = self._ball(alpha, w).mul(s, w)
        if beta:
            acc = acc.add(self._ball(beta, w).mul(rr, w), w)
        # E6: the same value as beta + (alpha - beta) s and alpha + (beta - alpha) r, the rationals exact

        def sums() -> list:
            out = [(beta, self._ball(alpha - beta, w).mul(s, w))]
            r2 = lv.r(r, j, w)
            if r2 is not None:
                out.append((alpha, self._ball(beta - alpha, w).mul(r2, w)))
            return out

        return _Lin(acc, sums)

    def _group_mean(self, r: int) -> Fraction | None:
        """mu when every group of equal finite logits of row r has the same mean upstream mu, else None."""
        if r not in self._mu:
            assert self.ups is not None
            xs, us = self._row_list(r), self.ups[r]
            groups: dict[float, list] = {}
            for v, u in zip(xs, us):
                if v != -math.inf:
                    g = groups.setdefault(v, [0, Fraction(0)])
                    g[0] += 1
                    g[1] += u
            means = {tot / cnt for cnt, tot in groups.values()}
            self._mu[r] = means.pop() if len(means) == 1 else None
        return self._mu[r]

    def _exact_soft(self, r: int, j: int, u: Fraction) -> Fraction | None:
        if self._row_list(r)[j] == -math.inf:
            return Fraction(0)
        ex = self._exact_row(r)
        assert self.ups is not None
        if ex is not None:  # s = 1/k on the k finite entries: ubar is their mean upstream, computed once a row
            ubar = self._ubar.get((-1, r))
            if ubar is None:
                fin = [ui for ui, si in zip(self.ups[r], ex) if si]
                ubar = self._ubar[(-1, r)] = _fraction_sum(fin) / len(fin)
            return ex[j] * (u - ubar)
        mu = self._group_mean(r)
        if mu is not None and u == mu:
            return Fraction(0)
        return None

    def _soft(self, level: int, r: int, j: int, u: Fraction) -> Any:
        known = self._exact_soft(r, j, u)
        if known is not None:
            return known
        assert self.ups is not None
        xs = self._row_list(r)
        mu = self._group_mean(r)
        lv = self._level(level)
        if lv is None:
            return None
        w = self._work(level)
        s = lv.s(r, j)
        if s is None:
            return None
        if mu is not None:
            return s.mul(self._ball(u - mu, w), w)
        if len(xs) <= PAIRWISE or level >= 2:
            # u_c - ubar = sum_{i != c} (u_c - u_i) s_i (E4'): no cancellation of u_c with ubar when s_c -> 1
            parts: list[Ball] = []
            for i, ui in enumerate(self.ups[r]):
                if i == j or xs[i] == -math.inf or ui == u:
                    continue
                si = lv.s(r, i)
                if si is None:
                    return None
                parts.append(self._ball(u - ui, w).mul(si, w))
            return s.mul(Ball.fsum(parts, w), w)
        ubar = self._ubar.get((level, r), _MISSING)
        if ubar is _MISSING:
            terms: list[Ball] | None = []
            for i, ui in enumerate(self.ups[r]):
                if xs[i] == -math.inf or not ui:
                    continue
                si = lv.s(r, i)
                if si is None or terms is None:
                    terms = None
                    break
                terms.append(self._ball(ui, w).mul(si, w))
            ubar = self._ubar[(level, r)] = None if terms is None else Ball.fsum(terms, w)
        if ubar is None:
            return None
        return s.mul(self._ball(u, w).sub(ubar, w), w)

    def _first(self, key: int, good: Callable[[Any], Any]) -> Any:
        for level in range(LEVELS):
            v = self._value(key, level)
            if v is None:
                continue
            res = good(v)
            if res is not None:
                _count("answered")
                return res
        _count("open")
        return None

    # ---------------------------------------------------------------- E7: the vectorised first pass
    def _vector(self) -> Any:
        """(where, hi, lo, bound): every "lin" component with alpha != beta and a finite logit, evaluated at once in
        double-double from the accurate dd softmax (E7); None if unavailable."""
        if self._vec is _MISSING:
            self._vec = None
            try:
                with np.errstate(all="ignore"):
                    self._vec = self._vector_eval()
            except (ArithmeticError, ValueError, IndexError):
                self._vec = None
        return self._vec

    def _vector_eval(self) -> Any:
        if self.ups is not None:
            return self._vector_soft()
        keys, rs, js, coef = [], [], [], []
        same: dict[tuple[int, int], bool] = {}  # alpha == beta, by the coefficients' objects (shared within a row)
        for key, c in enumerate(self.comps):
            if c[0] != "lin" or self._row_list(c[1])[c[2]] == -math.inf:
                continue
            ids = (id(c[3]), id(c[4]))
            eq = same.get(ids)
            if eq is None:
                eq = same[ids] = c[3] == c[4]
            if eq:
                continue
            keys.append(key)
            rs.append(c[1])
            js.append(c[2])
            coef.append((c[3], c[4]))
        if not keys:
            return None
        lv = self._level(1)
        if lv is None:
            return None
        sh_a, sl_a, B_a, Rh_a, Rl_a, eR_a, jm_a = lv.arrays
        r, j = np.array(rs), np.array(js)
        conv: dict[int, tuple[float, float]] = {}  # by the Fraction's object (alive in comps): no hashing of q

        def dd_of(q: Fraction) -> tuple[float, float]:
            got = conv.get(id(q))
            if got is None:
                got = conv[id(q)] = _dd_split(q)[:2]
            return got

        ah, al = np.array([dd_of(a) for a, _ in coef]).T
        bh, bl = np.array([dd_of(b) for _, b in coef]).T
        sh, sl, Bs = sh_a[r, j], sl_a[r, j], B_a[r, j]
        # E1: a finite entry fast64 reports as 0 lies in [0, 2**-1075]: charged 2**-1074, the smallest binary64
        # above it (2.0**-1075 itself is 0.0 in binary64: charging it left such entries' share out of the bound,
        # and alpha s_j with alpha = 1e10 was lost: the fast path certified -a_c where g = 1e10 s_j - a_c)
        Bs = np.where((sh == 0) & (sl == 0) & (Bs == 0), 2.0**-1074, Bs)
        top = j == jm_a[r]
        # r = 1 - s off the maximum (s <= 1/2: two_sum exact, then the dd add), R / (1 + R) at it (E2 in dd)
        rh1, rl1 = fast64.dd_add(np.ones_like(sh), np.zeros_like(sh), -sh, -sl)
        Rh, Rl, eR = Rh_a[r], Rl_a[r], eR_a[r]
        Dh, Dl = fast64.dd_add(np.ones_like(Rh), np.zeros_like(Rh), Rh, Rl)
        qh, ql = fast64.dd_div(Rh, Rl, Dh, Dl)
        rh, rl = np.where(top, qh, rh1), np.where(top, ql, rl1)
        Br = np.where(top, eR + np.abs(qh) * 2.0**-97, Bs + np.abs(rh1) * 2.0**-103)
        ph, pl = _dd_mul(ah, al, sh, sl)
        qh2, ql2 = _dd_mul(bh, bl, rh, rl)
        gh, gl = fast64.dd_add(ph, pl, qh2, ql2)
        c1 = 1 + 2.0**-50
        bound = ((np.abs(ah) * c1 * Bs + np.abs(bh) * c1 * Br + (np.abs(ph) + np.abs(qh2)) * c1 * 2.0**-99
                  + np.abs(gh) * c1 * 2.0**-103 + 4 * fast64.FLOOR64) * fast64.INFLATE + fast64.FLOOR64)
        ok = (np.isfinite(gh) & np.isfinite(gl) & np.isfinite(bound) & (np.abs(ah) <= 2.0**990)
              & (np.abs(bh) <= 2.0**990) & ~(top & (Rh < 2.0**-900)))
        where = {k: i for i, k in enumerate(keys) if ok[i]}
        return where, gh, gl, bound

    def _vector_soft(self) -> Any:
        """E7 for softmax: s_c (u_c - ubar) of every irrational row without a common group mean, ubar in dd."""
        assert self.ups is not None
        lv = self._level(1)
        if lv is None:
            return None
        sh_a, sl_a, B_a = lv.arrays[:3]
        M, C = sh_a.shape
        live = [r for r in range(M) if self._exact_row(r) is None and self._group_mean(r) is None]
        if not live:
            return None
        rows = np.array(live)
        U = np.array([[float(u) for u in self.ups[r]] for r in live])
        sh, sl, Bs = sh_a[rows], sl_a[rows], B_a[rows]
        fin = np.array([[v != -math.inf for v in self._row_list(r)] for r in live])
        under = fin & (sh == 0) & (sl == 0) & (Bs == 0)
        th, tl = fast64.dd_mul_d(sh, sl, U)  # u_i s_i: 2**-100 relative (fast64's DELTA_MUL), exact 0 at -inf
        bh, bl = th[:, 0], tl[:, 0]
        for i in range(1, C):
            bh, bl = fast64.dd_add(bh, bl, th[:, i], tl[:, i])
        absum = (np.abs(U) * (np.abs(sh) + Bs)).sum(axis=1) * (1 + 2.0**-40)
        err_ubar = (np.abs(U) * Bs).sum(axis=1) * (1 + 2.0**-40) + absum * (2.0**-99 + C * 2.0**-103)
        nh, nl = fast64.dd_add(U, np.zeros_like(U), -bh[:, None], -bl[:, None])
        err_n = err_ubar[:, None] + np.abs(nh) * 2.0**-103
        gh, gl = _dd_mul(sh, sl, nh, nl)
        c1 = 1 + 2.0**-50
        bound = ((np.abs(nh) * c1 * Bs + (np.abs(sh) + Bs) * c1 * err_n + np.abs(gh) * c1 * 2.0**-99
                  + (C + 4) * fast64.FLOOR64) * fast64.INFLATE + fast64.FLOOR64)
        ok = (fin & ~under & np.isfinite(gh) & np.isfinite(gl) & np.isfinite(bound) & (np.abs(U) <= 2.0**990)
              & ~under.any(axis=1)[:, None])
        where: dict[int, int] = {}
        pos = {r: i for i, r in enumerate(live)}
        okl = ok.tolist()
        for key, c in enumerate(self.comps):
            ri = pos.get(c[1], -1)
            if c[0] == "soft" and ri >= 0 and okl[ri][c[2]]:
                where[key] = ri * C + c[2]
        return where, gh.ravel(), gl.ravel(), bound.ravel()

    def _vec_roundings(self, f: Format) -> Any:
        """E7's certified roundings into f, (values, ok, the same as lists), computed once per format; None
        without E7."""
        vec = self._vector()
        if vec is None:
            return None
        c = self._vec_certified.get(f.name)
        if c is None:
            _, hi, lo, bound = vec
            with np.errstate(all="ignore"):
                if f.name == "float64":
                    values, ok = fast64.certify64(hi, lo, bound)
                else:
                    wide = (np.abs(lo) + bound) * (1 + 2.0**-50) + 5e-324
                    values, ok = fast.certify(hi, wide, f)
            c = self._vec_certified[f.name] = (values, ok, values.tolist(), ok.tolist())
        return c

    def _vec_decide(self, key: int, f: Format) -> float | None:
        vec = self._vector()
        if vec is None or key not in vec[0]:
            return None
        c = self._vec_roundings(f)
        i = vec[0][key]
        return c[2][i] if c[3][i] else None

    def _vec_positions(self, keys: Any) -> Any:
        """Each key's position in the E7 arrays, -1 where it has none (or None without them)."""
        vec = self._vector()
        if vec is None:
            return None
        return np.fromiter((vec[0].get(k, -1) for k in keys), dtype=np.int64, count=len(keys))

    def decide_many(self, keys: Any, f: Format) -> tuple[Any, Any]:
        """``decide`` of many keys (a list): (values, ok) by E7's certified roundings, then, for the keys E7 does not
        decide, the exact rounding of each one rational by its form (``_known``: the Fraction ``decide``'s first
        level rounds, and a correct rounding is one value whoever certifies it); a key not ok goes to ``decide``."""
        n = len(keys)
        values, ok = np.zeros(n), np.zeros(n, dtype=bool)
        pos = self._vec_positions(keys)
        if pos is not None:
            vals, good = self._vec_roundings(f)[:2]
            at = np.maximum(pos, 0)
            ok = (pos >= 0) & good[at]
            values = vals[at]
            k = int(np.count_nonzero(ok))
            _count("answered", k)
            _count("vector", k)
        for i in np.nonzero(~ok)[0].tolist():
            q = self._known(int(keys[i]))
            if q is not None:
                values[i], ok[i] = round_to_format(q, f), True
                _count("answered")
        return values, ok

    def enclose_many(self, keys: Any, rel_bits: int) -> tuple[Any, Any, Any]:
        """``enclose`` of many keys by E7's balls: (hi, lo, ok), ok where ``enclose`` returns E7's midpoint, exactly
        hi + lo (``_enclosed``'s test, judged by ``fast.enclosed_many``); a key not ok goes to ``enclose``."""
        n = len(keys)
        h, lo, ok = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
        refused = np.ones(n, dtype=bool)  # where ``enclose``'s E7 step answers None (no ball, or one too wide)
        pos = self._vec_positions(keys)
        if pos is not None:
            vec = self._vector()
            at = np.maximum(pos, 0)
            h, lo, b = (np.asarray(vec[i], dtype=np.float64)[at] for i in (1, 2, 3))
            yes, no = fast.enclosed_many(h, lo, b, rel_bits)
            ok = (pos >= 0) & yes
            refused = (pos < 0) | no
            k = int(np.count_nonzero(ok))
            _count("answered", k)
            _count("vector", k)
        # then ``enclose``'s first level: a component rational by its form whose denominator is a power of two is
        # its own exact midpoint, taken here where it is hi + lo exactly (any other is a rational ball's midpoint)
        for i in np.nonzero(refused & ~ok)[0].tolist():
            q = self._known(int(keys[i]))
            if q is None or q.denominator & (q.denominator - 1):
                continue
            try:
                hi, low, exact = _dd_split(q, check=True)
            except OverflowError:  # beyond binary64: left to ``enclose``
                continue
            if exact:
                h[i], lo[i], ok[i] = hi, low, True
                _count("answered")
        return h, lo, ok

    def _vec_ball(self, key: int) -> Ball | None:
        vec = self._vector()
        if vec is None or key not in vec[0]:
            return None
        i = vec[0][key]
        return Ball(libmp.mpf_add(libmp.from_float(float(vec[1][i])), libmp.from_float(float(vec[2][i]))),
                    libmp.from_float(float(vec[3][i])))

    # ---------------------------------------------------------------- the DeferredSource protocol
    def decide(self, key: int, f: Format) -> float | None:
        r = self._vec_decide(key, f)
        if r is not None:
            _count("answered")
            _count("vector")
            return r

        def good(v: Any) -> float | None:
            if isinstance(v, Fraction):
                return round_to_format(v, f)
            if isinstance(v, _Lin):
                return v.decide(f)
            return _decided(v, f)

        return self._first(key, good)

    def enclose(self, key: int, rel_bits: int) -> tuple | None:
        vb = self._vec_ball(key)
        if vb is not None:
            got = _enclosed(vb, rel_bits)
            if got is not None:
                _count("answered")
                _count("vector")
                return got

        def good(v: Any) -> tuple | None:
            if isinstance(v, Fraction):
                d = v.denominator
                if not d & (d - 1):
                    return libmp.from_man_exp(v.numerator, -(d.bit_length() - 1)), _ZERO
                b = rational_ball(v, rel_bits + 8)
                return b.mid, b.rad
            if isinstance(v, _Lin):
                return v.enclose(rel_bits)
            return _enclosed(v, rel_bits)

        return self._first(key, good)

    def magnitude(self, key: int) -> float | None:
        vb = self._vec_ball(key)
        if vb is not None:
            top = libmp.mpf_add(libmp.mpf_abs(vb.mid), vb.rad, 53, libmp.round_up)
            r = libmp.to_float(top, rnd=libmp.round_up)
            if math.isfinite(r) and (r > 0 or not top[1]):
                _count("answered")
                _count("vector")
                return r

        def good(v: Any) -> float | None:
            if isinstance(v, Fraction):
                return _float_up(v)
            if isinstance(v, _Lin):
                v = v.full
            top = libmp.mpf_add(libmp.mpf_abs(v.mid), v.rad, 53, libmp.round_up)
            r = libmp.to_float(top, rnd=libmp.round_up)
            if r == 0 and top[1]:
                return 5e-324  # to_float flushes what lies below the smallest subnormal to 0
            return r if math.isfinite(r) else None

        return self._first(key, good)

    def build(self, key: int) -> Exact:
        if not self._built:
            self._built = True
            _count("fallback")
        with fast.disabled():
            return self.fallback()[key]


def _deferred(src: _GradSource, n: int) -> list:
    _count("calls")
    return [Exact.deferred(src, k) for k in range(n)]


# --------------------------------------------------------------------------------------------------
# reading the calls


def _only(kwargs: dict, allowed: set) -> None:
    if set(kwargs) - allowed or "input" not in kwargs:
        raise fast.NotEligible


def _dd_split(q: Fraction, check: bool = False) -> tuple[float, float, bool]:
    """(h, l, exact): h = RN(q), l = RN(q - h), as float(q) and float(q - Fraction(h)) give them, without building
    that Fraction: n/d and (n hd - hn d)/(d hd) are Python's int true divisions, correctly rounded, of the same
    rationals (float(Fraction) is that division; q - h need not be in lowest terms for it). ``exact`` (computed
    where ``check``, else False): q = h + l exactly. OverflowError where q is beyond binary64, as float(q)."""
    n, d = q.numerator, q.denominator
    h = n / d
    hn, hd = h.as_integer_ratio()
    num, den = n * hd - hn * d, d * hd
    low = num / den
    if not check:
        return h, low, False
    ln, ld = low.as_integer_ratio()
    return h, low, ln * den == num * ld


def _fraction_sum(values: Iterable[Fraction]) -> Fraction:
    """sum(values, Fraction(0)), exactly: the numerators of each denominator added as Python integers first, then
    one Fraction addition (a gcd) per distinct denominator instead of one per term. A row's coefficients or
    upstream values are binary64 values (power-of-two denominators) or share one object: a few denominators for
    thousands of terms (a row of 4,096 zero coefficients took 6 ms as Fraction additions)."""
    by_den: dict[int, int] = {}
    for q in values:
        d = q.denominator
        by_den[d] = by_den.get(d, 0) + q.numerator
    return sum((Fraction(n, d) for d, n in by_den.items()), Fraction(0))


def _upstream(upstream: Sequence[float] | None, n_out: int) -> list[Fraction]:
    if upstream is None:
        return [Fraction(1)] * n_out
    if len(upstream) != n_out:
        raise fast.NotEligible
    return [_frac(float(u)) for u in upstream]


def _regular_rows(rows: Any) -> None:
    """Every row finite or -inf with a finite entry (else the mpmath path's special values)."""
    if rows.size == 0:
        raise fast.NotEligible
    fast._regular(rows)


def _positions(pos: Any, M: int, C: int) -> list:
    return [range(r * C, (r + 1) * C) for r in range(M)] if pos is None else pos.tolist()


def _class_layout(kwargs: dict, n: int) -> tuple:
    x = fast._read(kwargs["input"])
    if x.size != n:
        raise fast.NotEligible
    cd = 0 if x.ndim == 1 else 1
    C = x.shape[cd]
    out_shape = tuple(s for k, s in enumerate(x.shape) if k != cd)
    rows, pos = fast._class_rows(x, cd)
    w = kwargs.get("weight")
    wf = None
    if w is not None:
        wa = fast._read(w)
        if wa.shape != (C,):
            raise fast.NotEligible
        wf = [_frac(v) for v in wa.tolist()]
    reduction = legacy_reduction(kwargs.get("size_average"), kwargs.get("reduce"), kwargs.get("reduction", "mean"))
    return x, cd, C, out_shape, rows, pos, wf, reduction


def _indices(kwargs: dict, out_shape: tuple, C: int) -> tuple[list[int], int]:
    ignore = kwargs.get("ignore_index", -100)
    if isinstance(ignore, bool) or not isinstance(ignore, int):
        raise fast.NotEligible
    t_shape, ts = read_indices(kwargs["target"], "target")
    if t_shape != out_shape or any(t != ignore and not 0 <= t < C for t in ts):
        raise fast.NotEligible
    return ts, ignore


def _scales(reduction: str, ups: list[Fraction], M: int, W: Fraction) -> list[Fraction]:
    """kappa per row: its output's upstream (reduction "none"), or the one output's (over W under "mean")."""
    if reduction == "none":
        return ups
    if reduction == "mean":
        if W == 0:
            raise fast.NotEligible  # 0/0: the mpmath path's NaN
        return [ups[0] / W] * M
    return [ups[0]] * M


def _cross_entropy(kwargs: dict, n: int, upstream: Sequence[float] | None, fallback: Callable[[], list]) -> list:
    _only(kwargs, {"input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction",
                   "label_smoothing"})
    eps_v = kwargs.get("label_smoothing", 0.0)
    if isinstance(eps_v, bool) or not isinstance(eps_v, (int, float)) or not 0 <= eps_v <= 1:
        raise fast.NotEligible
    eps = Fraction(eps_v)
    x, cd, C, out_shape, rows, pos, wf, reduction = _class_layout(kwargs, n)
    M = rows.shape[0]
    if M == 0 or C == 0:
        raise fast.NotEligible
    w = wf if wf is not None else [Fraction(1)] * C
    n_out = M if reduction == "none" else 1
    ups = _upstream(upstream, n_out)
    t_shape, _ = shape_and_flat(kwargs["target"], "target")
    coefs: list[list[Fraction] | None] = []  # a_c per row (None: an ignored row)
    if t_shape == x.shape and x.shape != out_shape:  # probability targets
        ta = fast._read(kwargs["target"])
        trows, _ = fast._class_rows(ta, cd)
        if not np.isfinite(trows).all() or (trows < 0).any():
            raise fast.NotEligible
        share = eps / C
        for tr in trows.tolist():
            coefs.append([w[c] * ((1 - eps) * Fraction(t) + share) if eps else w[c] * Fraction(t)
                          for c, t in enumerate(tr)])
        W = Fraction(M)
    else:
        ts, ignore = _indices(kwargs, out_shape, C)
        W = Fraction(0)
        base = [eps * wc / C for wc in w] if eps else [Fraction(0)] * C  # every row's, but at its target
        for t in ts:
            if t == ignore:
                coefs.append(None)
                continue
            W += w[t]
            a = list(base)
            a[t] += (1 - eps) * w[t]
            coefs.append(a)
    kappa = _scales(reduction, ups, M, W)
    kept = [r for r, a in enumerate(coefs) if a is not None]
    if kept:  # a kept row's gradient reads its softmax: NaN there (even times a zero weight) is the mpmath path's
        _regular_rows(rows[kept])
    live = [r for r in kept if kappa[r] and any(coefs[r] or [])]
    comps: list = [("q", Fraction(0))] * n
    positions = _positions(pos, M, C)
    sub = {r: i for i, r in enumerate(live)}
    for r in live:
        a = coefs[r] or []
        Mr = _fraction_sum(a)
        k = kappa[r]
        pair: dict[int, tuple[Fraction, Fraction]] = {}  # a row's coefficients by a_c (mostly one shared object)
        for j, p in enumerate(positions[r]):
            ab = pair.get(id(a[j]))
            if ab is None:
                ab = pair[id(a[j])] = (k * (Mr - a[j]), -k * a[j])
            comps[p] = ("lin", sub[r], j, *ab)
    src = _GradSource(rows[live], comps, fallback)
    return _deferred(src, n)


def _nll_loss(kwargs: dict, n: int, upstream: Sequence[float] | None, fallback: Callable[[], list]) -> list:
    _only(kwargs, {"input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction"})
    x, cd, C, out_shape, rows, pos, wf, reduction = _class_layout(kwargs, n)
    M = rows.shape[0]
    if M == 0 or C == 0:
        raise fast.NotEligible
    w = wf if wf is not None else [Fraction(1)] * C
    ts, ignore = _indices(kwargs, out_shape, C)
    ups = _upstream(upstream, M if reduction == "none" else 1)
    W = sum((w[t] for t in ts if t != ignore), Fraction(0))
    kappa = _scales(reduction, ups, M, W)
    comps: list = [("q", Fraction(0))] * n
    positions = _positions(pos, M, C)
    for r, t in enumerate(ts):
        if t != ignore:
            comps[positions[r][t]] = ("q", -kappa[r] * w[t])
    return _deferred(_GradSource(rows[:0], comps, fallback), n)


def _row_layout(kwargs: dict, n: int) -> tuple:
    """(rows, positions) of a softmax / log_softmax call along its dim."""
    _only(kwargs, {"input", "dim"})
    x = fast._read(kwargs["input"])
    if x.size != n:
        raise fast.NotEligible
    dim = kwargs.get("dim")
    d = normalize_dim(softmax_dim(x.ndim) if dim is None else dim, x.ndim)
    rows, pos = fast._class_rows(x, d)
    _regular_rows(rows)
    M, C = rows.shape
    return rows, _positions(pos, M, C), M, C


def _log_softmax(kwargs: dict, n: int, upstream: Sequence[float] | None, fallback: Callable[[], list]) -> list:
    rows, positions, M, C = _row_layout(kwargs, n)
    ups = _upstream(upstream, n)
    comps: list = [None] * n
    for r in range(M):
        u = [ups[p] for p in positions[r]]
        U = _fraction_sum(u)
        for j, p in enumerate(positions[r]):
            comps[p] = ("lin", r, j, u[j] - U, u[j])
    return _deferred(_GradSource(rows, comps, fallback), n)


def _softmax(kwargs: dict, n: int, upstream: Sequence[float] | None, fallback: Callable[[], list]) -> list:
    rows, positions, M, C = _row_layout(kwargs, n)
    ups = _upstream(upstream, n)
    comps: list = [None] * n
    row_ups = []
    for r in range(M):
        u = [ups[p] for p in positions[r]]
        row_ups.append(u)
        for j, p in enumerate(positions[r]):
            comps[p] = ("soft", r, j, u[j])
    return _deferred(_GradSource(rows, comps, fallback, row_ups), n)


def _logsumexp(kwargs: dict, n: int, upstream: Sequence[float] | None, fallback: Callable[[], list]) -> list:
    _only(kwargs, {"input", "dim", "keepdim"})
    x = fast._read(kwargs["input"])
    if x.size != n:
        raise fast.NotEligible
    dim = kwargs.get("dim")
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) in (0, x.ndim)):
        if isinstance(dim, (list, tuple)) and len({normalize_dim(k, x.ndim) for k in dim}) != len(dim):
            raise fast.NotEligible
        rows, pos = x.reshape(1, -1), None
    else:
        if isinstance(dim, (list, tuple)):
            if len(dim) != 1:
                raise fast.NotEligible
            dim = dim[0]
        rows, pos = fast._class_rows(x, normalize_dim(dim, x.ndim))
    rows = np.ascontiguousarray(rows)
    _regular_rows(rows)
    M, C = rows.shape
    ups = _upstream(upstream, M)
    comps: list = [None] * n
    for r, places in enumerate(_positions(pos, M, C)):
        for j, p in enumerate(places):
            comps[p] = ("lin", r, j, ups[r], Fraction(0))
    return _deferred(_GradSource(rows, comps, fallback), n)


def gradient(name: str, kwargs: dict, n: int, upstream: Sequence[float] | None,
             fallback: Callable[[], list]) -> list | None:
    """The handler registered for ``name`` (what ``oracles.fast.attempt_gradient`` calls), counting the calls it
    does not take; raises ``fast.NotEligible`` for those."""
    try:
        return _HANDLERS[name](kwargs, n, upstream, fallback)
    except (fast.NotEligible, KeyError, TypeError, ValueError, IndexError):
        _count("ineligible")
        raise fast.NotEligible from None
    except Exception:
        _count("ineligible")
        raise


_HANDLERS: dict[str, Callable[..., list]] = {
    "cross_entropy": _cross_entropy,
    "nll_loss": _nll_loss,
    "log_softmax": _log_softmax,
    "softmax": _softmax,
    "logsumexp": _logsumexp,
}

for _name in _HANDLERS:
    fast.register(_name, gradient=lambda kwargs, n, upstream, fallback, _name=_name:
                  gradient(_name, kwargs, n, upstream, fallback))
