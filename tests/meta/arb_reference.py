"""An independent oracle for the twelve losses in python-flint's Arb ball arithmetic, written from their definitions
-- torch.nn.functional's semantics and docs/NUMERICS.md's conventions -- and checked against the oracles
(``oracles/``) by ``test_arb_crosscheck.py``.

It shares no code with ``oracles/`` but the format layer ``oracles.formats``: ``round_mpf``, the rounding of an
*exact* binary value into a format, and ``round_to_format``/``next_up``/``next_down``/``get_format``/``FORMATS``
(the formats' parameters) to make the inputs; nothing of the oracles' implementation is used, and nothing of
``lossproof``, ``subjects`` or ``reports`` is imported.

Per loss (``LOSSES``: name -> the three): ``gen_*`` draws a random *extreme* ``Case`` with finite inputs exactly
representable in the format under test, ``arb_*`` gives every output element (row-major) as a ball at the working
precision (or a float for an exact NaN/inf) and ``grad_*`` one component of the gradient of the first output
element.

The Arb evaluation is repeated at 64, 128, ..., 4096 bits until both ends of every ball round to the same value
of the format (a Ziv loop of our own, ``arb_decide``). An Arb bound is an exact dyadic ``man * 2**exp``
(``arb.man_exp()``) and becomes a raw mpf without passing through a Python float. The differences and products
of inputs the formulas need (x_j - max, 1 - p, beta * x, t - x, the rational part of a cross-entropy) are formed
exactly in integers before they become balls; exp of any argument keeps its relative accuracy (``aexp``); and a
value "exact rational + log1p(tiny)" sitting on a rounding boundary is decided by the sign of its tail
(``decide_split``).
"""
from __future__ import annotations

import math

from flint import arb, ctx
from mpmath import libmp

from oracles import formats
from oracles.formats import round_mpf, round_to_format

PRECS = (64, 128, 256, 512, 1024, 2048, 4096)
INF, NAN = math.inf, math.nan


# ==================================================================================================
# exact dyadic values (man, exp): man * 2**exp, in Python integers


def dy(x):
    """The exact (man, exp) of a finite Python float or int."""
    if isinstance(x, int):
        return (x, 0)
    if not math.isfinite(x):
        raise ValueError(f"not finite: {x!r}")
    if x == 0:
        return (0, 0)
    m, e = math.frexp(x)
    return (int(m * (1 << 53)), e - 53)


def dsub(a, b):
    (ma, ea), (mb, eb) = a, b
    e = min(ea, eb)
    return ((ma << (ea - e)) - (mb << (eb - e)), e)


def dmul(a, b):
    return (a[0] * b[0], a[1] + b[1])


def dsum(ds):
    ds = [d for d in ds if d[0]]
    if not ds:
        return (0, 0)
    e = min(d[1] for d in ds)
    return (sum(m << (x - e) for m, x in ds), e)


def dsign(d):
    return (d[0] > 0) - (d[0] < 0)


def A(v):
    """An exact ball (radius 0) for a float, an int or a dyadic pair, at any working precision."""
    if isinstance(v, tuple):
        return arb(v)
    return arb(dy(v))


ZERO_D, ONE_D = (0, 0), (1, 0)


def asum(balls):
    acc = arb(0)
    for b in balls:
        acc = acc + b
    return acc


def aexp(d):
    """exp of an exact dyadic d, with a relative accuracy of about 2**-prec for every |d| (Arb's own exp gives
    up on arguments beyond ~2**64): exp(d) = 2**k exp(d - k log 2), the reduction done with |k|'s bits extra."""
    man, e = d
    if man == 0:
        return arb(1)
    mag = man.bit_length() + e  # |d| < 2**mag
    if mag <= 40:
        return A(d).exp()
    prec = ctx.prec
    try:
        ctx.prec = mag + 64
        q = A(d) / arb.const_log2()
        qm, qe = (int(t) for t in q.mid().man_exp())
        k = qm << qe if qe >= 0 else qm >> -qe  # floor(q mid): any integer near d / log 2 will do
        ctx.prec = prec + mag + 64
        r = A(d) - arb(k) * arb.const_log2()
    finally:
        ctx.prec = prec
    return arb((1, k)) * r.exp()


def softplus_d(z):
    """log(1 + e^z) for an exact dyadic z, without cancellation: max(z, 0) + log1p(e^-|z|)."""
    if dsign(z) > 0:
        return A(z) + aexp((-z[0], z[1])).log1p()
    return aexp(z).log1p()


def sigmoid_d(z):
    """1 / (1 + e^-z) for an exact dyadic z, by the sign of z."""
    if dsign(z) >= 0:
        return 1 / (1 + aexp((-z[0], z[1])))
    ez = aexp(z)
    return ez / (1 + ez)


class ARow:
    """One softmax slice: exact differences d_j = x_j - max, e_j = exp(d_j), S = sum e_j = 1 + rest."""

    def __init__(self, xs):
        m = max(xs)
        self.m = m
        self.jmax = xs.index(m)
        dm = dy(m)
        self.d = [dsub(dy(x), dm) for x in xs]
        self.e = [aexp(d) for d in self.d]
        self.S = asum(self.e)
        self.l1p = self.rest(self.jmax).log1p()

    def rest(self, i):
        """sum of e_j over j != i (S - e_i without the subtraction)."""
        return asum(e for j, e in enumerate(self.e) if j != i)

    def sm(self, i):
        return self.e[i] / self.S

    def one_minus_sm(self, i):
        return self.rest(i) / self.S


# ==================================================================================================
# deciding the rounding of a ball, and comparing


def _bound_mpf(b):
    man, exp = b.man_exp()
    return libmp.from_man_exp(int(man), int(exp))


def _same(a, b):
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def round_exact(v, fmt):
    """RN of the exact raw mpf ``v`` into ``fmt`` by ``formats.round_mpf``, after replacing a value far below half
    the smallest subnormal (or far beyond the overflow threshold) by a representative that rounds the same way:
    round_mpf shifts the significand by the whole exponent gap, and Arb's bounds on e^(-1e308) have exponents
    near -2**1024 (a shift no integer can hold)."""
    sign, man, exp, bc = v
    if man:
        F = formats.get_format(fmt)
        e = exp + bc - 1  # floor(log2 |v|)
        if e < F.quantum_min - 2:  # |v| < 2**(qmin - 1): rounds to a signed zero, as 2**(qmin - 2) does
            v = libmp.from_man_exp(-1 if sign else 1, F.quantum_min - 2)
        elif e > F.emax + 2:  # |v| >= 2**(emax + 3): beyond the overflow threshold, as 2**(emax + 2) is
            v = libmp.from_man_exp(-1 if sign else 1, F.emax + 2)
    return round_mpf(v, fmt)


def decide(v, fmt, last):
    """(kind, value) once both ends of the ball round alike, else None. kind: "value" (a decided rounding, sign
    of zero included), "zero" (rounds to zero, and the exact value may be 0: the sign is not compared)."""
    if not v.is_finite():
        return None
    if v.is_exact():
        mid = _bound_mpf(v)
        return ("zero" if not mid[1] else "value"), round_exact(mid, fmt)
    lo, hi = _bound_mpf(v.lower()), _bound_mpf(v.upper())
    rlo = 0.0 if not lo[1] else round_exact(lo, fmt)
    rhi = -0.0 if not hi[1] else round_exact(hi, fmt)
    if _same(rlo, rhi):
        return ("zero" if not lo[1] or not hi[1] else "value"), rlo
    if last and rlo == 0 and rhi == 0:  # straddles 0 within the smallest subnormal: an exact 0 Arb cannot see
        return "zero", 0.0
    return None


class Split:
    """The value P/D + tail: P and D > 0 exact dyadics, tail a ball. Losses built on log-sum-exp are an exact
    rational part (the max logit, x_j - max, weighted sums of them) plus log1p(sum of exponentials), and that
    tail can be far smaller than any working precision resolves (log1p(e^-9984) next to 2184): when P/D is a
    rounding boundary of the format, no ball around the sum ever decides. The tail's sign does."""

    __slots__ = ("P", "D", "tail")

    def __init__(self, P, D, tail):
        self.P, self.D, self.tail = P, D, tail

    def ball(self):
        main = A(self.P) if self.D == ONE_D else A(self.P) / A(self.D)
        return main + self.tail

    def __str__(self):
        return f"{self.P[0]}*2^{self.P[1]} / ({self.D[0]}*2^{self.D[1]}) + {self.tail}"


def decide_split(v, fmt, last):
    """decide() for P/D + tail. When the ball does not decide and the tail has a certain sign s and
    |tail| < 2**(g-1) / D, the value lies strictly between P/D and the nearest rounding boundary on the side s
    (every boundary b -- a midpoint, 0, the overflow threshold -- is a multiple of 2**(qmin-1), so b*D - P is a
    multiple of 2**g with g = min(qmin - 1 + lowbit(D), lowbit(P)): if nonzero, |b - P/D| >= 2**g / D). It then
    rounds like (P + s 2**(g-1)) / D, which is 2**(g-1) / D away from every boundary and decides at a
    precision fixed in advance."""
    d = decide(v.ball(), fmt, False)
    if d is not None:
        return d
    t = v.tail
    if t.contains(0):
        return decide(v.ball(), fmt, last)
    sgn = 1 if t > 0 else -1
    F = formats.get_format(fmt)
    (pm, pe), (dm, de) = v.P, v.D
    g = F.quantum_min - 1 + de
    if pm:
        g = min(g, pe)
    if not (t.abs_upper() * A(v.D) < arb((1, g - 1))):
        return decide(v.ball(), fmt, last)
    N = dsum([v.P, (sgn, g - 1)])
    prec = ctx.prec
    try:
        ctx.prec = max(prec, N[0].bit_length() + N[1] - g + dm.bit_length() + 64)
        return decide(A(N) / A(v.D), fmt, False)
    finally:
        ctx.prec = prec


def arb_decide(fn, fmt):
    """Evaluate fn() (a list of balls or float specials at ctx.prec) at rising precision until every element is
    decided. Returns a list of (kind, value, prec); kind "special" for an exact NaN/inf, "undecided" at the end."""
    out = {}
    vals = []
    for prec in PRECS:
        ctx.prec = prec
        vals = fn()
        for i, v in enumerate(vals):
            if i in out:
                continue
            if isinstance(v, float):
                out[i] = ("special", v, prec)
                continue
            d = (decide_split if isinstance(v, Split) else decide)(v, fmt, prec == PRECS[-1])
            if d is not None:
                out[i] = (d[0], d[1], prec)
        if len(out) == len(vals):
            break
    return [out.get(i, ("undecided", str(vals[i]), PRECS[-1])) for i in range(len(vals))]


def agree(o, kind, r):
    if kind == "special":
        return (math.isnan(o) and math.isnan(r)) or o == r
    if math.isnan(o):
        return False
    if kind == "zero":
        return o == 0
    if r == 0:
        return _same(o, r)
    return o == r


# ==================================================================================================
# shapes


def flat(v):
    if isinstance(v, list):
        return [y for x in v for y in flat(x)]
    return [v]


def shape(v):
    if isinstance(v, list):
        return (len(v),) + (shape(v[0]) if v else ())
    return ()


def bcast_last(obj, n, K):
    """A per-element list for ``obj`` broadcast to ``n`` elements whose last dimension is K (None -> 1.0)."""
    if obj is None:
        return [1.0] * n
    if not isinstance(obj, list):
        return [obj] * n
    f = flat(obj)
    if len(f) == n:
        return f
    assert len(f) == K
    return [f[k % K] for k in range(n)]


def reduce_(outs, red, denom):
    """sum / mean over outputs that may hold +inf (all losses here are >= 0 where they can be infinite)."""
    if red == "none":
        return outs
    if any(isinstance(o, float) for o in outs):
        specials = {o for o in outs if isinstance(o, float)}
        assert specials == {INF}, specials
        return [INF]
    s = asum(outs)
    if red == "sum":
        return [s]
    return [s / denom]


# ==================================================================================================
# the twelve definitions in Arb: values (all outputs, row-major) and d(first output)/d(input[j])


class Case:
    __slots__ = ("fmt", "args", "kw", "gj")

    def __init__(self, fmt, args, kw, gj=None):
        self.fmt, self.args, self.kw, self.gj = fmt, args, kw, gj

    def describe(self):
        args = ", ".join(_hexify(a) for a in self.args)
        kw = ", ".join(f"{k}={_hexify(v)}" for k, v in self.kw.items())
        return f"[{self.fmt}] ({args}{', ' if kw else ''}{kw})"


def _hexify(v):
    if isinstance(v, list):
        return "[" + ", ".join(_hexify(x) for x in v) + "]"
    if isinstance(v, float):
        return v.hex()
    return repr(v)


# ---------------------------------------------------------------- cross_entropy / nll_loss


def _class_setup(case):
    x, target = case.args
    one_d = not isinstance(x[0], list)
    rows = [x] if one_d else x
    C = len(rows[0])
    w = case.kw.get("weight") or [1.0] * C
    prob = isinstance(target, list) and (one_d or isinstance(target[0], list))  # else class indices
    tg = [target] if one_d else target
    return one_d, rows, C, w, prob, tg


def _split_reduce(items, D, red, denom):
    """Reduce (P, tail) pairs, each P/D + tail, to Splits; ``denom`` (a dyadic) divides the mean."""
    if red == "none":
        return [Split(P, D, t) for P, t in items]
    P, tail = dsum(P for P, _ in items), asum(t for _, t in items)
    if red == "sum":
        return [Split(P, D, tail)]
    return [Split(P, dmul(D, denom), tail / A(denom))]


def _lse_terms(r, coefs, C):
    """(1/C) sum_c coef_c * (-log_softmax_c) = (1/C) sum_c coef_c (log1p(rest) - d_c), as (P, tail) with the
    value P/C + tail, P exact."""
    P = dsum(dmul(k, (-d[0], d[1])) for k, d in zip(coefs, r.d))
    return P, r.l1p * A(dsum(coefs)) / C


def arb_cross_entropy(case):
    """Per row, with every coefficient scaled by C to stay dyadic: (1/C) sum_c k_c (-log_softmax_c), where
    k_c = C (1 - eps) w_t [c = t] + eps w_c (class targets) or w_c (C (1 - eps) t_c + eps) (probabilities)."""
    one_d, rows, C, w, prob, tg = _class_setup(case)
    red = case.kw.get("reduction", "mean")
    ii = case.kw.get("ignore_index", -100)
    eps = case.kw.get("label_smoothing", 0.0)
    R = [ARow(r) for r in rows]
    Cd, e = (C, 0), dy(eps)
    Come = dmul((C, 0), dsub(ONE_D, e))  # C (1 - eps)
    if prob:
        items = []
        for r, t in zip(R, tg):
            coefs = [dmul(dy(w[c]), dsum([dmul(Come, dy(t[c])), e])) for c in range(C)]
            items.append(_lse_terms(r, coefs, C))
        return _split_reduce(items, Cd, red, (len(rows), 0))
    items, wts = [], []
    for r, t in zip(R, tg):
        if t == ii:
            items.append((ZERO_D, arb(0)))
            continue
        wts.append(w[t])
        coefs = [dsum([dmul(e, dy(w[c])), dmul(Come, dy(w[t])) if c == t else ZERO_D]) for c in range(C)]
        items.append(_lse_terms(r, coefs, C))
    if red == "mean" and not any(wt != 0 for wt in wts):
        # a mean over a total weight of zero is undefined (the oracle's convention, as torch's), even where the
        # smoothing term carries mass
        return [NAN]
    return _split_reduce(items, Cd, red, dsum(dy(wt) for wt in wts))


def grad_cross_entropy(case, j):
    """d/dx_c of (1/C) sum_k k_k (-log_softmax_k) is (1/C)(s_c sum_k k_k - k_c), written over the common
    denominator C S as e_c sum_k k_k - k_c S = sum_{k != c} (e_c k_k - k_c e_k): exact whenever the e_k are
    (equal logits), so that an exact tie (w_0 / 6 = 2**-25 in float16) is seen as one."""
    one_d, rows, C, w, prob, tg = _class_setup(case)
    red = case.kw.get("reduction", "mean")
    ii = case.kw.get("ignore_index", -100)
    eps = case.kw.get("label_smoothing", 0.0)
    n, c = divmod(j, C)
    if red == "none" and n != 0:
        return arb(0)
    t = tg[n]
    if not prob and t == ii:
        return arb(0)
    r = ARow(rows[n])
    e = dy(eps)
    Come = dmul((C, 0), dsub(ONE_D, e))  # C (1 - eps)
    if prob:
        coefs = [dmul(dy(w[k]), dsum([dmul(Come, dy(t[k])), e])) for k in range(C)]
    else:
        coefs = [dsum([dmul(e, dy(w[k])), dmul(Come, dy(w[t])) if k == t else ZERO_D]) for k in range(C)]
    num = asum(r.e[c] * A(coefs[k]) - A(coefs[c]) * r.e[k] for k in range(C) if k != c)
    g = num / (C * r.S)
    if red == "mean":
        if prob:
            return g / len(rows)
        return g / A(dsum(dy(w[tt]) for tt in tg if tt != ii))
    return g


def arb_nll_loss(case):
    one_d, rows, C, w, _, tg = _class_setup(case)
    red = case.kw.get("reduction", "mean")
    ii = case.kw.get("ignore_index", -100)
    outs, wts = [], []
    for row, t in zip(rows, tg):
        if t == ii:
            outs.append(ZERO_D)
            continue
        wts.append(w[t])
        outs.append(dmul(dy(w[t]), dy(-row[t])))
    if red == "none":
        return [A(o) for o in outs]
    total = A(dsum(outs))  # exact: the sum of dyadics is formed in integers
    if red == "sum":
        return [total]
    if not any(wt != 0 for wt in wts):
        return [NAN]  # 0 / 0
    return [total / A(dsum(dy(wt) for wt in wts))]


def grad_nll_loss(case, j):
    one_d, rows, C, w, _, tg = _class_setup(case)
    red = case.kw.get("reduction", "mean")
    ii = case.kw.get("ignore_index", -100)
    n, c = divmod(j, C)
    if red == "none" and n != 0:
        return arb(0)
    t = tg[n]
    if t == ii or c != t:
        return arb(0)
    g = -A(w[t])
    if red == "mean":
        g = g / A(dsum(dy(w[tt]) for tt in tg if tt != ii))
    return g


# ---------------------------------------------------------------- binary losses


def _elem_setup(case):
    x = case.args[0]
    xs = flat(x)
    K = shape(x)[-1]
    return xs, K


def _bce_elem(p, y, w):
    a = b = None
    if y != 0:
        a = INF if p == 0 else -(A(y) * A(p).log())
    omy = dsub(ONE_D, dy(y))
    if omy[0]:
        b = INF if p == 1 else -(A(omy) * A(-p).log1p())
    if a is INF or b is INF:
        return arb(0) if w == 0 else INF  # an exact-zero weight annihilates (NUMERICS.md)
    return A(w) * asum(t for t in (a, b) if t is not None)


def arb_binary_cross_entropy(case):
    xs, K = _elem_setup(case)
    ys = flat(case.args[1])
    ws = bcast_last(case.kw.get("weight"), len(xs), K)
    outs = [_bce_elem(p, y, w) for p, y, w in zip(xs, ys, ws)]
    return reduce_(outs, case.kw.get("reduction", "mean"), arb(len(xs)))


def grad_binary_cross_entropy(case, j):
    xs, K = _elem_setup(case)
    ys = flat(case.args[1])
    ws = bcast_last(case.kw.get("weight"), len(xs), K)
    red = case.kw.get("reduction", "mean")
    if red == "none" and j != 0:
        return arb(0)
    p, y, w = xs[j], ys[j], ws[j]
    if p == 0 or p == 1:
        # d/dp of -w(y log p + (1 - y) log(1 - p)), a term with an exact-zero coefficient dropped
        if (p == 0 and y != 0) or (p == 1 and y != 1):
            g = (-INF if p == 0 else INF) if w != 0 else arb(0)
        else:
            g = A(w) if p == 0 else -A(w)
    else:
        # -w (y/p - (1-y)/(1-p)) = -w (y - p) / (p (1 - p)), with y - p and 1 - p exact
        g = -A(w) * A(dsub(dy(y), dy(p))) / (A(p) * A(dsub(ONE_D, dy(p))))
    if red == "mean" and not isinstance(g, float):
        g = g / len(xs)
    return g


def _bcel_setup(case):
    xs, K = _elem_setup(case)
    ys = flat(case.args[1])
    ws = bcast_last(case.kw.get("weight"), len(xs), K)
    pws = bcast_last(case.kw.get("pos_weight"), len(xs), K)
    return xs, ys, ws, pws


def arb_binary_cross_entropy_with_logits(case):
    """w (a softplus(-x) + b softplus(x)) with a = pos_weight y, b = 1 - y (a term with an exact-zero coefficient
    dropped) is w b x + w (a + b) L for x >= 0 and -w a x + w (a + b) L for x < 0, L = log1p(e^-|x|)."""
    xs, ys, ws, pws = _bcel_setup(case)
    items = []
    for x, y, w, pw in zip(xs, ys, ws, pws):
        a = dmul(dy(pw), dy(y)) if y != 0 else ZERO_D
        b = dsub(ONE_D, dy(y))
        dx, wd = dy(x), dy(w)
        P = dmul(wd, dmul(b, dx)) if x >= 0 else dmul(wd, dmul(a, (-dx[0], dx[1])))
        L = aexp((-abs(dx[0]), dx[1])).log1p()
        items.append((P, A(dmul(wd, dsum([a, b]))) * L))
    return _split_reduce(items, ONE_D, case.kw.get("reduction", "mean"), (len(xs), 0))


def grad_binary_cross_entropy_with_logits(case, j):
    xs, ys, ws, pws = _bcel_setup(case)
    red = case.kw.get("reduction", "mean")
    if red == "none" and j != 0:
        return arb(0)
    x, y, w, pw = xs[j], ys[j], ws[j], pws[j]
    terms = []
    omy = dsub(ONE_D, dy(y))
    if omy[0]:
        terms.append(A(omy) * sigmoid_d(dy(x)))
    if y != 0:
        terms.append(-(A(pw) * A(y) * sigmoid_d(dy(-x))))
    g = A(w) * asum(terms)
    return g / len(xs) if red == "mean" else g


def arb_kl_div(case):
    """Pointwise t (log t - x) = -t x + t log t (0 at t = 0), or with log_target e^t (t - x); as Splits whose
    exact part gathers -t x (and t - x where e^t = 1 exactly, t = 0) and whose tail holds the logarithms and
    exponentials: e^t (t - x) for t = -1e308 next to an exact -x/2 on a rounding boundary is decided by its sign."""
    x, t = case.args
    xs, ts = flat(x), flat(t)
    log_target = case.kw.get("log_target", False)
    items = []
    for xi, ti in zip(xs, ts):
        dx, dt = dy(xi), dy(ti)
        if log_target:
            if ti == 0:
                items.append((dsub(dt, dx), arb(0)))
            else:
                items.append((ZERO_D, aexp(dt) * A(dsub(dt, dx))))
        elif ti == 0:
            items.append((ZERO_D, arb(0)))
        else:
            items.append((dmul(dt, (-dx[0], dx[1])), A(ti) * A(ti).log()))
    red = case.kw.get("reduction", "mean")
    denom = len(x) if red == "batchmean" else len(xs)
    return _split_reduce(items, ONE_D, "mean" if red == "batchmean" else red, (denom, 0))


def grad_kl_div(case, j):
    x, t = case.args
    xs, ts = flat(x), flat(t)
    red = case.kw.get("reduction", "mean")
    if red == "none" and j != 0:
        return arb(0)
    g = -aexp(dy(ts[j])) if case.kw.get("log_target", False) else -A(ts[j])
    if red == "mean":
        g = g / len(xs)
    elif red == "batchmean":
        g = g / len(x)
    return g


# ---------------------------------------------------------------- the softmax family


def _groups(x, dim):
    """Lists of flat indices, one per slice reduced over ``dim`` (an int, a tuple, or "all"), in the order of
    the output (row-major over the remaining coordinates)."""
    shp = shape(x)
    n = len(flat(x))
    if dim == "all" or len(shp) == 1:
        return [list(range(n))]
    N, C = shp
    d = dim % 2
    if d == 1:
        return [[r * C + c for c in range(C)] for r in range(N)]
    return [[r * C + c for r in range(N)] for c in range(C)]


def _lse_dim(case):
    dim = case.kw.get("dim")
    if dim is None or isinstance(dim, tuple):
        return "all"
    return dim


def _sm_dim(case):
    dim = case.kw.get("dim")
    return 1 if dim is None else dim  # torch's implicit dim: 0 for 1-d, 1 for 2-d (1-d has one slice anyway)


def arb_logsumexp(case):
    xs = flat(case.args[0])
    rows = [ARow([xs[k] for k in g]) for g in _groups(case.args[0], _lse_dim(case))]
    return [Split(dy(r.m), ONE_D, r.l1p) for r in rows]


def grad_logsumexp(case, j):
    g0 = _groups(case.args[0], _lse_dim(case))[0]
    if j not in g0:
        return arb(0)
    xs = flat(case.args[0])
    return ARow([xs[k] for k in g0]).sm(g0.index(j))


def _softmax_like(case, fn):
    xs = flat(case.args[0])
    out = [None] * len(xs)
    for g in _groups(case.args[0], _sm_dim(case)):
        r = ARow([xs[k] for k in g])
        for i, k in enumerate(g):
            out[k] = fn(r, i)
    return out


def arb_softmax(case):
    return _softmax_like(case, lambda r, i: r.sm(i))


def arb_log_softmax(case):
    return _softmax_like(case, lambda r, i: Split(r.d[i], ONE_D, -r.l1p))


def _first_group(case):
    xs = flat(case.args[0])
    g0 = next(g for g in _groups(case.args[0], _sm_dim(case)) if 0 in g)
    return g0, ARow([xs[k] for k in g0]), g0.index(0)


def grad_softmax(case, j):
    g0, r, i0 = _first_group(case)
    if j not in g0:
        return arb(0)
    jj = g0.index(j)
    s0 = r.sm(i0)
    return s0 * r.one_minus_sm(i0) if jj == i0 else -(s0 * r.sm(jj))


def grad_log_softmax(case, j):
    g0, r, i0 = _first_group(case)
    if j not in g0:
        return arb(0)
    jj = g0.index(j)
    return r.one_minus_sm(i0) if jj == i0 else -r.sm(jj)


# ---------------------------------------------------------------- elementwise


def arb_sigmoid(case):
    return [sigmoid_d(dy(x)) for x in flat(case.args[0])]


def grad_sigmoid(case, j):
    if j != 0:
        return arb(0)
    x = flat(case.args[0])[0]
    return sigmoid_d(dy(x)) * sigmoid_d(dy(-x))


def arb_logsigmoid(case):
    return [-softplus_d(dy(-x)) for x in flat(case.args[0])]


def grad_logsigmoid(case, j):
    if j != 0:
        return arb(0)
    return sigmoid_d(dy(-flat(case.args[0])[0]))


def arb_softplus(case):
    beta = case.kw.get("beta", 1.0)
    return [softplus_d(dmul(dy(beta), dy(x))) / A(beta) for x in flat(case.args[0])]


def grad_softplus(case, j):
    if j != 0:
        return arb(0)
    beta = case.kw.get("beta", 1.0)
    return sigmoid_d(dmul(dy(beta), dy(flat(case.args[0])[0])))


def _xlogy_pairs(case):
    x, y = case.args
    xs = flat(x)
    ys = bcast_last(y, len(xs), shape(x)[-1])
    return xs, ys


def _log_or_special(y):
    if y < 0:
        return NAN
    if y == 0:
        return -INF
    return A(y).log()


def arb_xlogy(case):
    out = []
    for x, y in zip(*_xlogy_pairs(case)):
        if x == 0:
            out.append(arb(0))  # 0 * log y = 0 for every y but NaN (torch.xlogy)
            continue
        ly = _log_or_special(y)
        if isinstance(ly, float):
            out.append(NAN if math.isnan(ly) else (-INF if x > 0 else INF))
        else:
            out.append(A(x) * ly)
    return out


def grad_xlogy(case, j):
    if j != 0:
        return arb(0)
    _, ys = _xlogy_pairs(case)
    return _log_or_special(ys[0])


# ==================================================================================================
# random extreme inputs, exactly representable in the format under test


def rnd(x, fmt):
    """x rounded into fmt; an overflow becomes the largest finite value (finite inputs only here)."""
    r = round_to_format(float(x), fmt)
    if math.isinf(r):
        r = math.copysign(formats.get_format(fmt).max_finite, r)
    return r


def nudge(x, fmt, k):
    """x moved k ULPs in the format (up for k > 0), kept finite."""
    F = formats.get_format(fmt)
    for _ in range(abs(k)):
        y = formats.next_up(x, fmt) if k > 0 else formats.next_down(x, fmt)
        if math.isinf(y):
            break
        x = y
    return x if abs(x) <= F.max_finite else math.copysign(F.max_finite, x)


def _thresholds():
    ts = {709.78, 88.72, 11.09, -745.0, -103.3, -17.3}
    for f in formats.FORMATS.values():
        ts.add(math.log(f.max_finite))  # exp overflow
        ts.add(math.log(f.min_subnormal))  # exp underflow (to the smallest subnormal ...)
        ts.add(math.log(f.min_subnormal) - math.log(2.0))  # (... and to 0, below the half-way point)
        ts.add(math.log(f.min_normal))
        ts.add(f.p * math.log(2.0))  # 1 + e^-x == 1 in the format beyond this: log1p / sigmoid saturation
    return sorted(ts)


THRESHOLDS = _thresholds()


def log_uniform(rng, fmt, lo_exp=None, hi_exp=None):
    """A positive value log-uniform between 2**lo_exp and 2**hi_exp (default: the format's whole range,
    smallest subnormal to largest finite)."""
    F = formats.get_format(fmt)
    lo = F.quantum_min if lo_exp is None else lo_exp
    hi = F.emax + 1 if hi_exp is None else hi_exp
    e = rng.uniform(lo, hi)
    return rnd(math.ldexp(1.0 + rng.random(), min(math.floor(e), 1023)), fmt)


def draw_logit(rng, fmt):
    F = formats.get_format(fmt)
    r = rng.random()
    if r < 0.30:  # log-uniform magnitude over the format's range, subnormals to the largest finite value
        return math.copysign(log_uniform(rng, fmt), rng.choice((-1.0, 1.0)))
    if r < 0.40:  # log-uniform over float64's range, rounded (and clamped) into the format
        return rnd(math.copysign(log_uniform(rng, "float64"), rng.choice((-1.0, 1.0))), fmt)
    if r < 0.65:  # near an exp overflow/underflow/saturation threshold, on either side, a few ULPs away
        t = rng.choice(THRESHOLDS) * (1.0 if rng.random() < 0.75 else -1.0)
        how = rng.random()
        if how < 0.3:
            t = t * (1.0 + rng.uniform(-1e-6, 1e-6))
        elif how < 0.6:
            t = t + rng.uniform(-0.5, 0.5)
        return nudge(rnd(t, fmt), fmt, rng.randint(-3, 3))
    if r < 0.80:
        return rnd(rng.uniform(-40.0, 40.0), fmt)
    if r < 0.90:
        return rng.choice((0.0, -0.0, F.min_subnormal, -F.min_subnormal, F.max_finite, -F.max_finite,
                           F.min_normal, -F.min_normal, 1.0, -1.0, nudge(F.max_finite, fmt, -1)))
    return rnd(math.copysign(rng.uniform(0.5, 1.0) * F.max_finite, rng.choice((-1.0, 1.0))), fmt)


def draw_row(rng, fmt, C):
    F = formats.get_format(fmt)
    mode = rng.choice(("indep", "indep", "dominant", "dominant", "ties", "offset", "thresh", "spread",
                       "tiny", "equal"))
    if mode == "indep":
        return [draw_logit(rng, fmt) for _ in range(C)]
    if mode == "dominant":  # one logit far above (or below) the rest
        base = [rnd(rng.uniform(-3.0, 3.0), fmt) for _ in range(C)]
        k = rng.randrange(C)
        big = rng.choice((5.0, 10.0, 20.0, 40.0, 100.0, 700.0, 1e3, 1e4, 1e6, 1e20, 1e38, 1e300))
        base[k] = rnd(base[k] + big * rng.choice((1.0, 1.0, -1.0)), fmt)
        return base
    if mode == "ties":  # x and its format neighbours
        x = draw_logit(rng, fmt)
        near = [x, nudge(x, fmt, 1), nudge(x, fmt, -1), nudge(x, fmt, 2)]
        return [rng.choice(near) for _ in range(C)]
    if mode == "offset":  # a large common offset plus small differences
        off = rng.choice((1e8, -1e8, 1e4, -3e4, 1e6, 1e15, -1e15, 1e30, 1e300))
        off = math.copysign(min(abs(off), F.max_finite / 2), off)
        return [rnd(off + rng.uniform(-20.0, 20.0), fmt) for _ in range(C)]
    if mode == "thresh":
        return [rnd(rng.choice(THRESHOLDS), fmt) if rng.random() < 0.7 else 0.0 for _ in range(C)]
    if mode == "spread":
        pick = (lambda: rnd(math.copysign(rng.uniform(0.1, 1.0) * F.max_finite, rng.choice((-1.0, 1.0))), fmt),
                lambda: math.copysign(F.min_subnormal * rng.randint(1, 4), rng.choice((-1.0, 1.0))),
                lambda: 0.0,
                lambda: rnd(rng.uniform(-30.0, 30.0), fmt))
        return [rng.choice(pick)() for _ in range(C)]
    if mode == "tiny":
        return [rnd(math.copysign(F.min_subnormal * rng.randint(0, 8), rng.choice((-1.0, 1.0))), fmt)
                for _ in range(C)]
    x = draw_logit(rng, fmt)
    return [x] * C


def draw_prob(rng, fmt):
    F = formats.get_format(fmt)
    r = rng.random()
    one_minus_ulp = nudge(1.0, fmt, -1)
    if r < 0.08:
        return 0.0
    if r < 0.16:
        return 1.0
    if r < 0.21:
        return F.min_subnormal  # one ULP above 0
    if r < 0.26:
        return one_minus_ulp  # one ULP below 1
    if r < 0.30:
        return rng.choice((0.5, nudge(F.min_subnormal, fmt, 1), nudge(one_minus_ulp, fmt, -1), F.min_normal))
    if r < 0.55:
        return rnd(rng.random(), fmt)
    if r < 0.80:  # log-uniform down to the smallest subnormal
        return log_uniform(rng, fmt, hi_exp=0)
    # close to 1: 1 - a log-uniform small amount, down to below the format's resolution
    return rnd(1.0 - math.ldexp(1.0 + rng.random(), -rng.randint(2, F.p + 6)), fmt)


def draw_weight(rng, fmt):
    F = formats.get_format(fmt)
    r = rng.random()
    if r < 0.20:
        return 1.0
    if r < 0.25:
        return 0.0
    if r < 0.60:
        return log_uniform(rng, fmt)
    if r < 0.75:
        return rnd(rng.uniform(0.0, 10.0), fmt)
    if r < 0.88:
        return rnd(rng.uniform(0.5, 1.0) * F.max_finite, fmt)
    return F.min_subnormal * rng.randint(1, 3)


def _dims(rng):
    """(one_d, N, C): batch 1..3, classes 2..8."""
    return rng.random() < 0.2, rng.randint(1, 3), rng.randint(2, 8)


def _matrix(rng, one_d, N, C, draw):
    if one_d:
        return [draw() for _ in range(C)]
    return [[draw() for _ in range(C)] for _ in range(N)]


def _logit_matrix(rng, fmt, one_d, N, C):
    if one_d:
        return draw_row(rng, fmt, C)
    return [draw_row(rng, fmt, C) for _ in range(N)]


def _eps(rng, fmt):
    r = rng.random()
    if r < 0.4:
        return 0.0
    return rnd(rng.choice((0.1, 0.5, 1.0, rng.random(), math.ldexp(1.0, -rng.randint(5, 60)),
                           1.0 - math.ldexp(1.0, -rng.randint(1, 12)))), fmt)


def _class_targets(rng, one_d, N, C, kw):
    if rng.random() < 0.3:
        kw["ignore_index"] = rng.randrange(C)
    ii = kw.get("ignore_index", -100)
    draw = lambda: ii if rng.random() < 0.15 else rng.randrange(C)  # noqa: E731
    return draw() if one_d else [draw() for _ in range(N)]


def _grad_index(rng, one_d, N, C, red):
    """A component of the input the first output element depends on (mostly)."""
    if one_d or red != "none":
        return rng.randrange(C if one_d else N * C)
    return rng.randrange(C) if rng.random() < 0.9 else rng.randrange(N * C)


def gen_cross_entropy(rng, fmt):
    one_d, N, C = _dims(rng)
    x = _logit_matrix(rng, fmt, one_d, N, C)
    kw = {"reduction": rng.choice(("none", "sum", "mean"))}
    if rng.random() < 0.5:
        kw["weight"] = [draw_weight(rng, fmt) for _ in range(C)]
    eps = _eps(rng, fmt)
    if eps:
        kw["label_smoothing"] = eps
    if rng.random() < 0.3:  # probability targets: one-hot, a rounded distribution, or raw soft labels
        mode = rng.choice(("onehot", "dist", "raw"))
        def row():
            if mode == "onehot":
                k = rng.randrange(C)
                return [1.0 if c == k else 0.0 for c in range(C)]
            if mode == "dist":
                u = [rng.random() ** 4 for _ in range(C)]
                s = sum(u) or 1.0
                return [rnd(v / s, fmt) for v in u]
            return [draw_prob(rng, fmt) for _ in range(C)]
        target = row() if one_d else [row() for _ in range(N)]
    else:
        target = _class_targets(rng, one_d, N, C, kw)
    return Case(fmt, (x, target), kw, _grad_index(rng, one_d, N, C, kw["reduction"]))


def gen_nll_loss(rng, fmt):
    one_d, N, C = _dims(rng)
    x = _logit_matrix(rng, fmt, one_d, N, C)
    kw = {"reduction": rng.choice(("none", "sum", "mean"))}
    if rng.random() < 0.6:
        kw["weight"] = [draw_weight(rng, fmt) for _ in range(C)]
    target = _class_targets(rng, one_d, N, C, kw)
    j = _grad_index(rng, one_d, N, C, kw["reduction"])
    t0 = target if one_d else target[0]
    if rng.random() < 0.6 and 0 <= t0 < C:
        j = t0  # the one nonzero component of row 0
    return Case(fmt, (x, target), kw, j)


def _elem_dims(rng):
    one_d, N, K = rng.random() < 0.3, rng.randint(1, 3), rng.randint(1, 8)
    return one_d, N, K


def _elem_grad_index(rng, n, red):
    if red == "none":
        return 0 if rng.random() < 0.9 else rng.randrange(n)
    return rng.randrange(n)


def _weights_like(rng, fmt, one_d, N, K):
    r = rng.random()
    if r < 0.4:
        return None
    if r < 0.7 and not one_d:
        return [draw_weight(rng, fmt) for _ in range(K)]  # broadcast along the last dimension
    return _matrix(rng, one_d, N, K, lambda: draw_weight(rng, fmt))


def gen_binary_cross_entropy(rng, fmt):
    one_d, N, K = _elem_dims(rng)
    p = _matrix(rng, one_d, N, K, lambda: draw_prob(rng, fmt))
    y = _matrix(rng, one_d, N, K, lambda: draw_prob(rng, fmt))
    kw = {"reduction": rng.choice(("none", "sum", "mean"))}
    w = _weights_like(rng, fmt, one_d, N, K)
    if w is not None:
        kw["weight"] = w
    return Case(fmt, (p, y), kw, _elem_grad_index(rng, len(flat(p)), kw["reduction"]))


def gen_binary_cross_entropy_with_logits(rng, fmt):
    one_d, N, K = _elem_dims(rng)
    x = draw_row(rng, fmt, K) if one_d else [draw_row(rng, fmt, K) for _ in range(N)]
    y = _matrix(rng, one_d, N, K, lambda: draw_prob(rng, fmt))
    kw = {"reduction": rng.choice(("none", "sum", "mean"))}
    w = _weights_like(rng, fmt, one_d, N, K)
    if w is not None:
        kw["weight"] = w
    if rng.random() < 0.5:
        kw["pos_weight"] = [draw_weight(rng, fmt) for _ in range(K)]
    return Case(fmt, (x, y), kw, _elem_grad_index(rng, len(flat(x)), kw["reduction"]))


def gen_kl_div(rng, fmt):
    one_d, N, K = _elem_dims(rng)
    x = draw_row(rng, fmt, K) if one_d else [draw_row(rng, fmt, K) for _ in range(N)]
    kw = {"reduction": rng.choice(("none", "sum", "mean", "batchmean"))}
    if rng.random() < 0.35:
        kw["log_target"] = True
        t = draw_row(rng, fmt, K) if one_d else [draw_row(rng, fmt, K) for _ in range(N)]
    else:
        draw = (lambda: draw_prob(rng, fmt)) if rng.random() < 0.8 else (lambda: draw_weight(rng, fmt))
        t = _matrix(rng, one_d, N, K, draw)
    return Case(fmt, (x, t), kw, _elem_grad_index(rng, len(flat(x)), kw["reduction"]))


def gen_logsumexp(rng, fmt):
    one_d, N, C = _dims(rng)
    x = _logit_matrix(rng, fmt, one_d, N, C)
    dims = (None, 0, -1) if one_d else (None, 0, 1, -1, (0, 1))
    kw = {"dim": rng.choice(dims)}
    return Case(fmt, (x,), kw, rng.randrange(len(flat(x))))


def _gen_softmax_like(rng, fmt):
    one_d, N, C = _dims(rng)
    x = _logit_matrix(rng, fmt, one_d, N, C)
    dims = (None, 0, -1) if one_d else (None, 0, 1, -1)
    kw = {"dim": rng.choice(dims)}
    if kw["dim"] is None:
        del kw["dim"]
    return Case(fmt, (x,), kw, rng.randrange(len(flat(x))))


def _gen_elementwise(rng, fmt):
    one_d, N, K = _elem_dims(rng)
    x = draw_row(rng, fmt, K) if one_d else [draw_row(rng, fmt, K) for _ in range(N)]
    return Case(fmt, (x,), {}, 0 if rng.random() < 0.9 else rng.randrange(len(flat(x))))


def gen_softplus(rng, fmt):
    case = _gen_elementwise(rng, fmt)
    r = rng.random()
    if r < 0.4:
        return case
    if r < 0.9:
        beta = rng.choice((2.0, 0.5, 10.0, 100.0, 1e-3, math.ldexp(1.0 + rng.random(), rng.randint(-20, 20))))
    else:
        beta = rng.choice((-1.0, -0.5, -3.0))  # torch computes the same formula for a negative beta
    case.kw["beta"] = rnd(beta, fmt)
    return case


def gen_xlogy(rng, fmt):
    F = formats.get_format(fmt)
    one_d, N, K = _elem_dims(rng)
    x = draw_row(rng, fmt, K) if one_d else [draw_row(rng, fmt, K) for _ in range(N)]

    def yv():
        r = rng.random()
        if r < 0.05:
            return 0.0
        if r < 0.08:
            return -draw_weight(rng, fmt) or -1.0  # log of a negative: NaN (unless x == 0)
        if r < 0.12:
            return 1.0
        return draw_weight(rng, fmt) if rng.random() < 0.5 else draw_prob(rng, fmt) or F.min_subnormal

    r = rng.random()
    if r < 0.15:
        y = yv()  # a scalar
    elif r < 0.4 and not one_d:
        y = [yv() for _ in range(K)]  # broadcast along the rows
    else:
        y = _matrix(rng, one_d, N, K, yv)
    return Case(fmt, (x, y), {}, 0 if rng.random() < 0.9 else rng.randrange(len(flat(x))))


LOSSES = {
    "cross_entropy": (gen_cross_entropy, arb_cross_entropy, grad_cross_entropy),
    "nll_loss": (gen_nll_loss, arb_nll_loss, grad_nll_loss),
    "binary_cross_entropy": (gen_binary_cross_entropy, arb_binary_cross_entropy, grad_binary_cross_entropy),
    "binary_cross_entropy_with_logits": (gen_binary_cross_entropy_with_logits,
                                         arb_binary_cross_entropy_with_logits,
                                         grad_binary_cross_entropy_with_logits),
    "kl_div": (gen_kl_div, arb_kl_div, grad_kl_div),
    "logsumexp": (gen_logsumexp, arb_logsumexp, grad_logsumexp),
    "softmax": (_gen_softmax_like, arb_softmax, grad_softmax),
    "log_softmax": (_gen_softmax_like, arb_log_softmax, grad_log_softmax),
    "sigmoid": (_gen_elementwise, arb_sigmoid, grad_sigmoid),
    "logsigmoid": (_gen_elementwise, arb_logsigmoid, grad_logsigmoid),
    "softplus": (gen_softplus, arb_softplus, grad_softplus),
    "xlogy": (gen_xlogy, arb_xlogy, grad_xlogy),
}
