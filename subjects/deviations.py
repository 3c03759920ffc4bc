"""Known deviations of third-party libraries, as data: what, when, why, and where upstream says so.

A deviation does not hide a failure. When its condition holds, the subject is measured against the documented
behaviour instead of the exact value (``documented``: a torch-behaviour variant of the oracle, or a predicate
on the subject's output), and the run reports it as a documented deviation with its measured error against the
exact value. A subject that breaks even its documented behaviour still fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from oracles import bounds
from oracles.bounds import K
from oracles.formats import get_format, round_to_format


@dataclass(frozen=True)
class Deviation:
    """A documented behaviour. It excuses only what it describes: the quantities and the flat elements of its
    ``scope`` on a call, each against its documented behaviour for that element; every other element of the
    output is judged normally (lossproof.judge.explains)."""

    id: str
    subject: str  # "torch"
    loss: str
    condition: str  # one line, human-readable
    reason: str
    link: str
    applies: Callable  # (exact keyword arguments, Format or None) -> bool
    documented_oracle: str | None = None  # an oracle variant name: covered elements measured against it
    documented_output: Callable[[float], bool] | None = None  # else: a predicate every covered element meets
    witness: tuple | None = None  # (format, exact keyword arguments) on which the deviation shows: tested
    # an absolute error bound per covered element, (kwargs, Format, kind, flat index, exact z as a Fraction,
    # upstream or None) -> bound (float or Fraction), or None where it describes no bound for that element (then
    # the documented oracle or output judges it): the documented algorithm's own error, derived in its
    # docstring; inf where that error is unbounded (any number but NaN is the documented behaviour there)
    documented_error: Callable | None = None
    # (kwargs, Format or None) -> {"value": covered flat indices or ALL, "grad": ...}: what it describes
    scope: Callable | None = None
    # the documented algorithm's own result per covered element, (kwargs, Format, kind, flat index, upstream or
    # None) -> (value as a Fraction, radius) or None: the element must lie within the radius of that value (for
    # a documented formula whose result differs from the exact one, which may be infinite)
    documented_formula: Callable | None = None
    #: other subjects whose function shares the behaviour (optax-safe: the same XLA backend and jnp.mean); the
    #: witness runs on ``subject``'s function
    also: tuple = ()


#: how a user function's failure that torch shares is recorded: this prefix, then torch's deviation id
#: (docs/NUMERICS.md, "One standard for every subject"); a JAX function's, that jax/optax share: ``shared_prefix``
SHARED = "shared with torch: "
#: the references a user's function may share a documented behaviour with (lossproof.judge.reference_of)
REFERENCES = ("torch", "jax")


def shared_prefix(reference: str) -> str:
    """"shared with torch: " or "shared with jax: ": how a failure shared with ``reference`` is recorded."""
    return f"shared with {reference}: "


def shared_id(deviation_id: str | None) -> str | None:
    """The documented deviation a recorded id names, "shared with torch: " (or jax) stripped."""
    for ref in REFERENCES:
        if deviation_id and deviation_id.startswith(shared_prefix(ref)):
            return deviation_id[len(shared_prefix(ref)):]
    return deviation_id


def _flat(v):
    return [e for x in v for e in _flat(x)] if isinstance(v, list) else [v]


def _softplus_linear(kw, f=None):
    beta = kw.get("beta", 1.0)
    th = kw.get("threshold", 20.0)
    return any(math.isfinite(x) and x * beta > th for x in _flat(kw["input"]))


def _bce_clamped(kw, f=None):
    # log(p) < -100 or log(1 - p) < -100, i.e. p < e**-100 or 1 - p < e**-100 (p = 0 and p = 1 included); the
    # backward pass clamps p (1 - p) at 1e-12: p or 1 - p below 1e-12
    lim = 1e-12
    return any(p < lim or (1 - p) < lim for p in _flat(kw["input"]) if not math.isnan(p))


def _prob_target_with_masked_logit(kw, f=None):
    x, t = kw.get("input"), kw.get("target")
    fx, ft = _flat(x), _flat(t) if isinstance(t, list) else []
    if len(fx) != len(ft):
        return False  # class-index targets
    return any(xi == -math.inf and ti == 0 for xi, ti in zip(fx, ft))


def _prob_target_span_overflows(kw, f=None):
    """Probability targets (a float target shaped like the input) and a row whose finite logits span more than
    the largest finite value: lse - x_c overflows for its smallest logit."""
    x, t = kw.get("input"), kw.get("target")
    if len(_flat(x)) != len(_flat(t) if isinstance(t, list) else []):
        return False
    big = _max_finite(f)
    for r in _rows_of(x):
        fin = [v for v in r if math.isfinite(v)]
        if fin and max(fin) - min(fin) > big:
            return True
    return False

def _zero_weight_on_masked_target(kw, f=None):
    """A class whose weight is exactly 0 and whose logit / log-probability is -inf, where the loss reads it: the
    class-index target of a row, any class of a row with probability targets (torch multiplies the weight
    into every term of -(w * t * log_softmax).sum()), or any class of a row not ignored under label smoothing
    (its term -(eps / C) sum_c w_c log_softmax_c reads every class; ignored rows are masked out after it)."""
    w, t, x = kw.get("weight"), kw.get("target"), kw.get("input")
    if w is None or not isinstance(x, list):
        return False
    if isinstance(t, list) and len(_flat(t)) == len(_flat(x)):  # probability targets
        return any(row[c] == -math.inf and w[c] == 0 for row in _rows_of(x) for c in range(len(row)))
    ts = _flat(t) if isinstance(t, list) else [t]
    if not all(isinstance(c, int) for c in ts):
        return False
    rows = x if isinstance(x[0], list) else [x]
    if isinstance(x[0], list) and isinstance(x[0][0], list):  # (N, C, d1, ...): flatten the spatial dims
        return False
    ign = kw.get("ignore_index", -100)
    smoothing = bool(kw.get("label_smoothing"))
    return any(c != ign and (w[c] == 0 and row[c] == -math.inf or smoothing and any(
        wc == 0 and v == -math.inf for wc, v in zip(w, row))) for row, c in zip(rows, ts))


def _full_smoothing_on_infinite_target(kw, f=None):
    """label_smoothing exactly 1 and a row, not ignored, whose class-index target has logit -inf: torch forms
    (1 - label_smoothing) * nll + label_smoothing / C * smooth, and (1 - 1) * inf is NaN where the exact loss (the
    smoothing term alone, +inf: the row's -inf logit) is +inf. Any input rank: rows and targets in the same
    (sample, position) order."""
    if kw.get("label_smoothing") != 1.0:
        return False
    t = kw.get("target")
    ts = _flat(t) if isinstance(t, list) else [t]
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in ts):
        return False
    rows, ign = _rows_of(kw.get("input")), kw.get("ignore_index", -100)
    return len(rows) == len(ts) and any(c != ign and 0 <= c < len(r) and r[c] == -math.inf for r, c in zip(rows, ts))


def _plus_inf_logit(kw, f=None):
    return any(v == math.inf for v in _flat(kw.get("input", [])))


def _rows_of(x):
    """The class rows of a cross_entropy input (C,), (N, C) or (N, C, d...), as lists."""
    if not isinstance(x, list) or not x:
        return []
    if not isinstance(x[0], list):
        return [x]
    if not isinstance(x[0][0], list):
        return x
    out = []
    for sample in x:  # (C, d...): the class axis first
        flat = [_flat(c) for c in sample]
        out += [list(col) for col in zip(*flat)]
    return out


def _max_finite(f):
    return get_format(f or "bfloat16").max_finite


def _sum_past(total: float, n: int, big: float) -> bool:
    """Whether the reference sum in the format (pairwise, NUMERICS's stable algorithm) of n nonnegative terms whose
    running binary64 sum here is ``total`` can pass the format's largest finite value ``big``: it rounds at most
    L(n) = ceil(log2 n) times along any path and each term up to 3 times (a product, a logarithm, a sum), each by
    a factor of at most 1 + u (u = 2**-p: big = (1 - 2**-p) 2**e, so u = 1 - frexp(big)[0] exactly), and this
    running sum in binary64 errs by at most a factor (1 + 2**-53)**n below the exact one. So it can overflow when
    total (1 + 2**-53)**n (1 + u)**(L(n) + 3) > big, not only when total > big: torch's float64 kl_div of 102 terms
    t (log t - x), t = 1/102, x = -max, sums to inf where the binary64 sum is 1.7976931348623155e308 < big."""
    if total > big:
        return True
    u = 1.0 - math.frexp(big)[0]
    # the factor through its logarithm (1 + 2**-53 is 1 in binary64), rounded up: exp's and the product's own
    # roundings, a few 2**-53, are below the 2**-50 added (so no case inside the bound is missed)
    grow = math.exp(n * math.log1p(2.0**-53) + (max(0, (n - 1).bit_length()) + 3) * math.log1p(u)) * (1 + 2.0**-50)
    return total * grow > big


def _smoothing_underflows(kw, f=None):
    """label_smoothing / C rounds to 0 in the format (at most half its smallest subnormal) and a logit is -inf."""
    eps = kw.get("label_smoothing", 0.0) or 0.0
    rows = _rows_of(kw.get("input"))
    if not eps or not rows:
        return False
    smin = Fraction(get_format(f or "float16").min_subnormal)
    # eps / C rounds to 0 iff it is at most half the smallest subnormal (the tie rounds to even, 0); compared
    # exactly, since the float quotient itself underflows
    return Fraction(eps) / len(rows[0]) <= smin / 2 and any(v == -math.inf for r in rows for v in r)


def _smoothing_span_overflows(kw, f=None):
    """Label smoothing, and a row whose finite logits span more than the largest finite value (some class's
    -log_softmax = lse - x_c overflows), or whose sum over the classes of lse - x_c (<= max - x_c + log C) does:
    the smoothing term overflows before its eps / C weighting."""
    if not kw.get("label_smoothing"):
        return False
    big = _max_finite(f)
    rows = _rows_of(kw.get("input"))
    weight = kw.get("weight")
    target = kw.get("target")
    ignored = kw.get("ignore_index", -100)
    index_targets = (_flat(target) if isinstance(target, list) and len(_flat(target)) != len(_flat(kw.get("input")))
                     else None)  # class indices (probability targets: every row counts)
    total, summed = 0.0, 0
    for i, r in enumerate(rows):
        fin = [v for v in r if math.isfinite(v)]
        if not fin:
            continue
        m = max(fin)
        row = sum((abs(weight[c]) if weight is not None else 1.0) * (m - v + math.log(len(r)))
                  for c, v in enumerate(r) if math.isfinite(v))
        if m - min(fin) > big or row > big:
            return True
        if index_targets is None or i >= len(index_targets) or index_targets[i] != ignored:
            total += row
            summed += 1
    # under sum and mean, torch reduces the rows' smoothing terms over the batch before the eps / C weighting:
    # float16 [[0, 30000]] * 4, target 1, label_smoothing 1e-3 gives inf (exact 15.0)
    if kw.get("reduction", "mean") in ("sum", "mean") and _sum_past(total, summed, big):
        return True
    # a weighted mean divides that total by the targets' total weight W before the eps / C weighting: float32
    # [[0, -2e38, -2e38]], target 0, weights 1e-30, label_smoothing 0.5 gives inf (exact 6.67e37); float64
    # weights 5e-324 under logits up to 1.8e308, 16 classes: inf for 3.75
    if kw.get("reduction", "mean") == "mean" and weight is not None and index_targets is not None:
        W = sum(abs(weight[c]) for c in index_targets if isinstance(c, int) and c != ignored and 0 <= c < len(weight))
        return 0 < W and Fraction(total) > Fraction(big) * Fraction(W)
    return False


def _weight_sum_overflows(kw, f=None):
    """Class weights whose sum over the classes (the label-smoothing term) or over the targets (the weighted
    mean's denominator) exceeds the largest finite value."""
    w = kw.get("weight")
    if w is None:
        return False
    big = _max_finite(f)
    if sum(abs(v) for v in w if math.isfinite(v)) > big:
        return True
    t = kw.get("target")
    ts = _flat(t) if isinstance(t, list) else [t]
    ign = kw.get("ignore_index", -100)
    idx = [c for c in ts if isinstance(c, int) and c != ign and 0 <= c < len(w)]
    return sum(abs(w[c]) for c in idx) > big


def _weighted_term_overflows(kw, f=None):
    """Terms or sums that overflow the format: the weight sums of ``_weight_sum_overflows``, the label-smoothing
    term sum_c w_c (lse - x_c) of a row, one target's w_t times its -log-probability, or their sum over the
    targets (the mean's numerator) beyond the largest finite value
    (nll_loss: |w_t x_t|; cross_entropy: w_t (max - x_t + log C), an upper estimate of w_t |log_softmax_t|; w = 1
    without weights)."""
    if _weight_sum_overflows(kw, f):
        return True
    w, t = kw.get("weight"), kw.get("target")
    rows = _rows_of(kw.get("input"))
    if not rows:
        return False
    if kw.get("label_smoothing") and not kw.get("_nll"):
        # the smoothing term sum_c w_c (lse - x_c) <= sum_c w_c (max - x_c + log C), formed in the format
        big = _max_finite(f)
        for row in rows:
            fin = [v for v in row if math.isfinite(v)]
            if not fin:
                continue
            m = max(fin)
            if sum((abs(w[c]) if w is not None else 1.0) * (m - v + math.log(len(row)))
                   for c, v in enumerate(row) if math.isfinite(v)) > big:
                return True
    if isinstance(t, list) and len(_flat(t)) == len(_flat(kw.get("input"))):  # probability targets
        # a row's term sum_c w_c t_c (lse - x_c) <= sum_c w_c t_c (max - x_c + log C), and their sum over rows
        big, total, summed = _max_finite(f), 0.0, 0
        for row, tr in zip(rows, _rows_of(t)):
            fin = [v for v in row if math.isfinite(v)]
            if not fin:
                continue
            m = max(fin)
            term = sum((abs(w[c]) if w is not None else 1.0) * tc * (m - v + math.log(len(row)))
                       for c, (v, tc) in enumerate(zip(row, tr)) if math.isfinite(v) and tc)
            total += term
            summed += 1
            if term > big or _sum_past(total, summed, big):
                return True
        return False
    ts = _flat(t) if isinstance(t, list) else [t]
    if len(ts) != len(rows) or not all(isinstance(c, int) for c in ts):
        return False
    big = _max_finite(f)
    ign = kw.get("ignore_index", -100)
    total, summed = 0.0, 0
    for row, c in zip(rows, ts):
        if c == ign or not 0 <= c < len(row) or not math.isfinite(row[c]):
            continue
        fin = [v for v in row if math.isfinite(v)]
        mag = abs(row[c]) if kw.get("_nll") else max(fin) - row[c] + math.log(len(row))
        term = (abs(w[c]) if w is not None else 1.0) * mag
        total += term
        summed += 1
        if term > big or _sum_past(total, summed, big):
            return True
    return False


def _nll_weighted_term_overflows(kw, f=None):
    return _weighted_term_overflows({**kw, "_nll": True}, f)


def _tiny_total_weight(kw, f=None):
    """A weighted mean (class-index targets) whose total target weight W is positive but below 1 / (largest
    finite): the backward pass's 1 / W overflows."""
    w = kw.get("weight")
    if w is None or kw.get("reduction", "mean") != "mean":
        return False
    t = kw.get("target")
    ts = _flat(t) if isinstance(t, list) else [t]
    if not all(isinstance(c, int) for c in ts):
        return False
    ign = kw.get("ignore_index", -100)
    W = sum(w[c] for c in ts if c != ign and 0 <= c < len(w))
    return 0 < abs(W) < 1 / _max_finite(f)


def _not_finite(y):
    return not math.isfinite(y)


def _not_finite_or_zero(y):
    return not math.isfinite(y) or y == 0


def _kl_masked_at(x, t, kw) -> bool:
    """One kl_div term torch computes as NaN where the exact term is 0: an input of -inf where the target is 0;
    under log_target, a target of -inf, whatever the input (torch's exp(t) * (t - x) = 0 * (-inf - x): 0 * -inf
    for a finite input, 0 * NaN for x = -inf, 0 * -inf for x = +inf)."""
    if kw.get("log_target"):
        return t == -math.inf
    return x == -math.inf and t == 0


def _kl_masked(kw, f=None):
    """kl_div where a -inf log-probability input meets a zero target, or (log_target) a target is -inf."""
    x, t = _flat(kw.get("input", [])), _flat(kw.get("target", []))
    if len(x) != len(t):
        return False
    return any(_kl_masked_at(xi, ti, kw) for xi, ti in zip(x, t))


def _kl_terms_overflow(kw, f=None):
    """kl_div whose pointwise terms t (log t - x) (log_target: e**t (t - x)), or their sum (reductions), exceed the
    largest finite value."""
    x, t = _flat(kw.get("input", [])), _flat(kw.get("target", []))
    if len(x) != len(t):
        return False
    big = _max_finite(f)
    terms = []
    for xi, ti in zip(x, t):
        if not (math.isfinite(xi) and math.isfinite(ti)):
            continue
        if kw.get("log_target"):
            terms.append(math.exp(min(ti, 700.0)) * abs(ti - xi))
        elif ti > 0:
            terms.append(ti * abs(math.log(ti) - xi))
    return _terms_overflow(terms, kw, big)

def _xlogy_zero_x(kw, f=None):
    """x = 0 where y = 0 (any pair: broadcasting aside, flat positions line up)."""
    x, y = _flat(kw.get("input", [])), _flat(kw.get("other", []))
    if len(x) != len(y):
        return any(v == 0 for v in x) and any(v == 0 for v in y)
    return any(a == 0 and b == 0 for a, b in zip(x, y))


def _fmt(f):
    return get_format(f or "float16")


def _bcel_soft_target(kw, f=None):
    """A negative logit whose target is not 0: torch's (1 - y) x + max(-x, 0) cancels."""
    x, y = _flat(kw.get("input", [])), _flat(kw.get("target", []))
    return len(x) == len(y) and any(math.isfinite(a) and a < 0 and b != 0 for a, b in zip(x, y))




def _large_logits(kw, f=None):
    return any(math.isfinite(v) and abs(v) > 1 for v in _flat(kw.get("input", [])))




def _elementwise(kw, *names):
    """The flat elementwise arguments (broadcast by position; a missing weight or pos_weight is 1)."""
    xs = _flat(kw.get("input", []))
    out = [xs]
    for n in names:
        v = kw.get(n)
        vs = _flat(v) if isinstance(v, list) else ([1.0] if v is None else [v])
        out.append([vs[i % len(vs)] for i in range(len(xs))])
    return out


def _terms_overflow(terms, kw, big):
    """Some |term| beyond the largest finite value, or (reductions) their sum where it can pass it (``_sum_past``)."""
    total = 0.0
    for i, t in enumerate(terms):
        total += t
        if t > big or (kw.get("reduction", "mean") != "none" and _sum_past(total, i + 1, big)):
            return True
    return False


def _bce_overflows(kw, f=None):
    """BCELoss in the format: a weighted term w (-y max(log p, -100) - (1 - y) max(log(1 - p), -100)) or their
    sum beyond the largest finite value, or the backward's max(|w|, 1) |p - y| / max(p (1 - p), 1e-12) (1e-12
    rounded into the format: 0 in float16; torch multiplies the weight in before the mean's 1 / n) beyond it."""
    fm = _fmt(f)
    big = fm.max_finite
    eps = round_to_format(1e-12, fm.name)
    p, y, w = _elementwise(kw, "target", "weight")
    terms = []
    for pi, yi, wi in zip(p, y, w):
        if not (math.isfinite(pi) and math.isfinite(yi) and math.isfinite(wi)):
            continue
        lp = max(math.log(pi), -100.0) if pi > 0 else -100.0
        lq = max(math.log1p(-pi), -100.0) if pi < 1 else -100.0
        terms.append(abs(wi) * abs(yi * lp + (1 - yi) * lq))
        den = max(pi * (1 - pi), eps)
        if den < fm.min_subnormal / 2 or max(abs(wi), 1.0) * abs(pi - yi) > big * den:
            return True
    return _terms_overflow(terms, kw, big)


def _bcel_overflows(kw, f=None):
    """BCEWithLogitsLoss in the format: torch's w ((1 - y) x + ((pw - 1) y + 1) (max(-x, 0) + log1p(e**-|x|))):
    the log-weight times softplus(-x), a weighted term, or their sum beyond the largest finite value."""
    big = _fmt(f).max_finite
    x, y, w, pw = _elementwise(kw, "target", "weight", "pos_weight")
    terms = []
    for xi, yi, wi, pwi in zip(x, y, w, pw):
        if not all(math.isfinite(v) for v in (xi, yi, wi, pwi)):
            continue
        sp = max(-xi, 0.0) + math.log1p(math.exp(-abs(xi)))
        lw = abs((pwi - 1) * yi + 1) * sp
        if lw > big:
            return True
        terms.append(abs(wi) * (abs((1 - yi) * xi) + lw))
    return _terms_overflow(terms, kw, big)

def _bcel_infinite_logit(kw, f=None):
    return any(math.isinf(v) for v in _flat(kw.get("input", [])))



def _scipy_exp_not_normal(kw, f=None):
    """A target > 0 whose input log-probability x has exp(x) outside the format's normal range: below log of the
    smallest normal (subnormal, or 0 below log(s_min / 2)) or above log of the largest finite (inf)."""
    fm = get_format(f or "float16")
    lo, hi = math.log(fm.min_normal), math.log(fm.max_finite)
    xs, ts = _flat(kw.get("input", [])), _flat(kw.get("target", []))
    return any(math.isfinite(x) and t > 0 and not lo <= x <= hi for x, t in zip(xs, ts))


def _scipy_kl_error(kw, f):
    """Per element, the error of rel_entr(t, q~) with q~ = exp(x) rounded into the format: |q~ - q| <=
    max(u q, s_min / 2), so |log q~ - log q| <= -log(1 - r), r = max(u, s_min / (2 q)), an absolute error
    t (-log(1 - r)) of t (log t - log q~); rel_entr's own roundings add K u (|t log t| + t (|x| + 1)). Where q~ is
    0 or inf (r >= 1, or x above log(max)) rel_entr is +-inf by definition: unbounded. r from logarithms (q
    itself may be subnormal in Python's float)."""
    fm = get_format(f)
    u = float(fm.u)
    log_half_smin = math.log(fm.min_subnormal) - math.log(2)
    out = []
    for x, t in zip(_flat(kw.get("input", [])), _flat(kw.get("target", []))):
        if not (math.isfinite(x) and t > 0):
            out.append(0.0)  # no deviation there: the element must be right
            continue
        if x > math.log(fm.max_finite):
            out.append(math.inf)
            continue
        r = max(u, math.exp(min(log_half_smin - x, 1.0)))
        out.append(-t * math.log1p(-r) + K * u * (abs(t * math.log(t)) + t * (abs(x) + 1)) if r < 1 else math.inf)
    return out


# --------------------------------------------------------------------------------------------------
# scopes: which output elements a deviation covers (docs/NUMERICS.md, "One standard for every subject")

#: every element of a quantity
ALL = None


def _shape(v) -> list:
    shape = []
    while isinstance(v, list):
        shape.append(len(v))
        v = v[0] if v else None
    return shape


def _groups(x, dims) -> list:
    """The flat indices of ``x`` grouped by the slices that reduce over ``dims`` (an int, a tuple, or None: all
    dims), groups in C order of the kept coordinates: group k is output element k of a reduction over dims."""
    shape = _shape(x)
    nd = len(shape)
    if nd == 0:
        return [[0]]
    ds = range(nd) if dims is None else ([dims] if isinstance(dims, int) else list(dims))
    ds = {d % nd for d in ds}
    out: dict = {}
    n = 1
    for s in shape:
        n *= s
    for i in range(n):
        coords, r = [], i
        for s in reversed(shape):
            coords.append(r % s)
            r //= s
        coords.reverse()
        out.setdefault(tuple(c for d, c in enumerate(coords) if d not in ds), []).append(i)
    return [out[k] for k in sorted(out)]


def _class_groups(kw) -> list:
    """cross_entropy / nll_loss: the flat input indices of each row's classes (class axis 1, or 0 for (C,))."""
    x = kw.get("input")
    return _groups(x, 0 if len(_shape(x)) <= 1 else 1)


def _reduced(kw, default="mean") -> bool:
    return kw.get("reduction", default) != "none"


def _scope(values=(), grads=()):
    """A scope: the covered flat indices per quantity (ALL: every element; an empty collection: none)."""
    return {"value": values if values is ALL else set(values), "grad": grads if grads is ALL else set(grads)}


def _elements_where(pred):
    """An elementwise loss's scope: the elements where ``pred(i, kw, f)`` holds; a reduced output's one value
    element (when any holds). Values only."""
    def scope(kw, f=None):
        n = len(_flat(kw.get("input", [])))
        idx = [i for i in range(n) if pred(i, kw, f)]
        return _scope(([0] if idx else []) if _reduced(kw) else idx)
    return scope


def _rows_where(pred, grads=False, dim_of=None):
    """A row loss's scope (cross_entropy, nll_loss; softmax-like along ``dim_of(kw)``): the rows where
    ``pred(row values, flat row indices, kw, f)`` holds: their output element (reduced: the one value) and,
    with ``grads``, their gradient components."""
    def scope(kw, f=None):
        gs = _groups(kw.get("input"), dim_of(kw)) if dim_of else _class_groups(kw)
        fx = _flat(kw.get("input", []))
        hit = [k for k, g in enumerate(gs) if pred([fx[i] for i in g], g, kw, f)]
        red = _reduced(kw) and dim_of is None
        vals = ([0] if hit else []) if red else hit
        return _scope(vals, [i for k in hit for i in gs[k]] if grads else ())
    return scope


def _everything(kw, f=None):
    return _scope(ALL, ALL)


def _values_only(kw, f=None):
    return _scope(ALL, ())


def _grads_only(kw, f=None):
    return _scope((), ALL)


#: the call whose scopes and matching deviations were last computed, and them: judging one call asks for the same
#: scope once per failing element, and each scope reads the whole call (O(n)), so a 4,096-class row whose every
#: gradient component overflows cost O(n^2) condition evaluations (minutes in the no-overflow check). Keyed by
#: the call's identity and its values' identities (the call is held, so neither id can be reused while cached).
_MEMO: dict = {"key": None, "held": None, "scopes": {}, "matching": {}}


def _memo_for(kw, fmt) -> dict:
    key = (id(kw), tuple((k, id(v)) for k, v in kw.items()), fmt)
    if _MEMO["key"] != key:
        _MEMO.update(key=key, held=(kw, tuple(kw.values())), scopes={}, matching={})
    return _MEMO


def scope_of(dev, kw, fmt=None) -> dict:
    """{"value": covered flat indices or ALL, "grad": ...}: what ``dev`` describes on this call (computed once
    per call and deviation: ``_MEMO``)."""
    memo = _memo_for(kw, fmt)["scopes"]
    if dev.id not in memo:
        memo[dev.id] = dev.scope(kw, fmt)
    return memo[dev.id]


def covers(dev, kw, fmt, kind: str, index: int) -> bool:
    s = scope_of(dev, kw, fmt).get("value" if kind == "value" else "grad", set())
    return s is ALL or index in s


def _softplus_scope(kw, f=None):
    """The elements above the threshold, values and gradient components (softplus is elementwise)."""
    beta, th = kw.get("beta", 1.0), kw.get("threshold", 20.0)
    idx = [i for i, x in enumerate(_flat(kw["input"])) if math.isfinite(x) and x * beta > th]
    return _scope(idx, idx)


def _bce_den(p, fm):
    """torch's backward denominator max((1 - p) p, EPSILON), each step rounded into the format; its EPSILON is
    the float32 nearest 1e-12 (float64 p = 1e-50, y = 1: gradient -1.000000004e12 = -1 / 9.99999996e-13),
    rounded into the format (0 in float16)."""
    r = lambda v: round_to_format(v, fm.name)  # noqa: E731
    return max(r(r(1 - p) * p), _bce_eps(fm))


def _bce_eps(fm):
    return round_to_format(round_to_format(1e-12, "float32"), fm.name)


def _bce_clamp_scope(kw, f=None):
    """Values: the elements whose log(p) or log(1 - p) is below -100 (reduced: the one value); gradient
    components: those where the backward's denominator (1 - p) p is clamped at 1e-12 (in the format)."""
    fm = _fmt(f)
    lim = math.exp(-100)
    ps = _flat(kw["input"])
    vals = [i for i, p in enumerate(ps) if not math.isnan(p) and (p < lim or 1 - p < lim)]
    grads = [i for i, p in enumerate(ps) if math.isfinite(p) and
             round_to_format(round_to_format(1 - p, fm.name) * p, fm.name) < _bce_eps(fm)]
    return _scope(([0] if vals else []) if _reduced(kw) else vals, grads)


def _bce_clamp_grad_formula(kw, f, kind, index, upstream=None):
    """A gradient component where the backward clamps: torch computes T = up w (p - y) / max((1 - p) p, 1e-12)
    (up: the upstream, or 1 / n under the mean), not the derivative (which may be infinite: p = 0, y > 0); the
    documented behaviour is T, within K 6 u |T| + K s_min |w| / den + s_min (six roundings of T's steps, each
    relative u; an underflow of up (p - y) before the division, amplified by |w| / den; one of the result).
    (T, that radius), or None where it describes nothing (values; a denominator of 0, which torch-bce-overflow
    describes)."""
    if kind != "grad":
        return None
    fm = _fmt(f)
    p, y, w = (v[index] for v in _elementwise(kw, "target", "weight"))
    if not all(math.isfinite(v) for v in (p, y, w)):
        return None
    den = _bce_den(p, fm)
    if den == 0:
        return None  # torch divides by 0: torch-bce-overflow describes it
    red = kw.get("reduction", "mean")
    up = Fraction(1, len(_flat(kw["input"]))) if red == "mean" else (
        Fraction(1) if red == "sum" else Fraction(upstream[index] if upstream else 1.0))
    T = up * Fraction(w) * (Fraction(p) - Fraction(y)) / Fraction(den)
    smin = Fraction(fm.min_subnormal)
    # torch forms up (p - y) before dividing: each of those two roundings may underflow (an absolute s_min / 2),
    # which the division by den and the weight amplify: K s_min |w| / den on top of the relative K 6 u |T|
    return T, K * 6 * Fraction(fm.u) * abs(T) + K * smin * abs(Fraction(w)) / Fraction(den) + smin


def _bce_up_max(kw):
    """The largest upstream factor torch's BCELoss backward multiplies (p - y) by: the mean's 1 / n, the sum's 1,
    or (reduction none) lossproof's upstream, below 2 (subjects.torch_subject.upstream)."""
    red = kw.get("reduction", "mean")
    return 1.0 / max(len(_flat(kw.get("input", []))), 1) if red == "mean" else (1.0 if red == "sum" else 2.0)


def _bce_underflow_flags(kw, f=None):
    """Per gradient component: torch's up (p - y), formed first in the format, lies below the smallest normal
    (0 < up_max |p - y| < min_normal), where its rounding may lose most of its bits before the division by a
    positive p (1 - p) amplifies the loss to an O(1) error in the gradient."""
    fm = _fmt(f)
    up = _bce_up_max(kw)
    p, y, w = _elementwise(kw, "target", "weight")
    out = []
    for pi, yi, wi in zip(p, y, w):
        ok = all(math.isfinite(v) for v in (pi, yi, wi)) and pi != yi and _bce_den(pi, fm) > 0
        out.append(ok and up * abs(pi - yi) < fm.min_normal)
    return out


def _bce_backward_underflows(kw, f=None):
    return any(_bce_underflow_flags(kw, f))


def _bce_underflow_scope(kw, f=None):
    """The gradient components ``_bce_underflow_flags`` marks; no value."""
    return _scope((), [i for i, b in enumerate(_bce_underflow_flags(kw, f)) if b])


def _row_kwargs(kw, k, row):
    """A one-row call of a class loss: row ``k`` of the input, its target (index or probability row)."""
    t = kw.get("target")
    one = {key: v for key, v in kw.items() if key not in ("input", "target")}
    one["input"] = [row]
    if isinstance(t, list) and len(_flat(t)) == len(_flat(kw.get("input"))):
        one["target"] = [_rows_of(t)[k]]
    elif isinstance(t, list):
        one["target"] = [_flat(t)[k]]
    else:
        one["target"] = [t]
    return one


def _rows_by(applies, grads=False):
    """A class loss's scope: the rows on which the deviation's own condition holds, evaluated on the row alone:
    their output element (reduced: the one value) and, with ``grads``, their gradient components. An input of
    more than two dimensions: every element (its rows are not contiguous)."""
    def scope(kw, f=None):
        x = kw.get("input")
        if len(_shape(x)) > 2:
            return _scope(ALL, ALL if grads else ())
        gs = _class_groups(kw)
        rows = _rows_of(x)
        hit = [k for k, r in enumerate(rows) if applies(_row_kwargs(kw, k, r), f)]
        vals = ([0] if hit else []) if _reduced(kw) else hit
        return _scope(vals, [i for k in hit for i in gs[k]] if grads else ())
    return scope


def _smoothing_span_scope(kw, f=None):
    """Reduced: the one value (the batch total may overflow); reduction none: the rows that overflow alone."""
    if _reduced(kw):
        return _scope([0])
    return _rows_by(_smoothing_span_overflows)(kw, f)


def _plus_inf_slices(kw, f=None):
    """softmax / log_softmax along ``dim``: every value and gradient component of a slice holding +inf."""
    x = kw.get("input")
    fx = _flat(x)
    dim = kw.get("dim")
    if dim is None:  # torch's legacy implicit dim: 0 for 0-, 1- and 3-dimensional inputs, else 1
        dim = 0 if len(_shape(x)) in (0, 1, 3) else 1
    idx = [i for g in _groups(x, dim) if any(fx[i] == math.inf for i in g) for i in g]
    return _scope(idx, idx)


def _kl_masked_scope(kw, f=None):
    x, t = _flat(kw.get("input", [])), _flat(kw.get("target", []))
    return _elements_where(lambda i, kw, f: _kl_masked_at(x[i], t[i], kw))(kw, f)


def _per_element_flags(terms_of):
    """A scope from per-element flags ``terms_of(kw, f) -> (value flags, gradient flags)`` (reduced: the one
    value when any value flag is set)."""
    def scope(kw, f=None):
        vf, gf = terms_of(kw, f)
        vals = [i for i, b in enumerate(vf) if b]
        return _scope(([0] if vals else []) if _reduced(kw) else vals, [i for i, b in enumerate(gf) if b])
    return scope


def _bce_overflow_flags(kw, f=None):
    """Per element: its weighted term beyond the largest finite value (or, reduced, any term or the running sum:
    the one value), and its backward max(|w|, 1) |p - y| / max((1 - p) p, 1e-12) overflowing or dividing by 0."""
    fm = _fmt(f)
    big = fm.max_finite
    p, y, w = _elementwise(kw, "target", "weight")
    vf, gf = [], []
    total = 0.0
    for pi, yi, wi in zip(p, y, w):
        if not (math.isfinite(pi) and math.isfinite(yi) and math.isfinite(wi)):
            vf.append(False)
            gf.append(False)
            continue
        lp = max(math.log(pi), -100.0) if pi > 0 else -100.0
        lq = max(math.log1p(-pi), -100.0) if pi < 1 else -100.0
        t = abs(wi) * abs(yi * lp + (1 - yi) * lq)
        total += t
        vf.append(t > big or (_reduced(kw) and _sum_past(total, len(vf) + 1, big)))
        den = _bce_den(pi, fm)
        gf.append(den < fm.min_subnormal / 2 or max(abs(wi), 1.0) * abs(pi - yi) > big * den)
    return vf, gf


def _bcel_overflow_flags(kw, f=None):
    """Per element: the log-weight times softplus(-x), or the weighted term, beyond the largest finite value
    (reduced: also the running sum, for the one value); the gradient component of an element whose own
    log-weight or term overflows."""
    big = _fmt(f).max_finite
    x, y, w, pw = _elementwise(kw, "target", "weight", "pos_weight")
    vf, gf = [], []
    total = 0.0
    for xi, yi, wi, pwi in zip(x, y, w, pw):
        if not all(math.isfinite(v) for v in (xi, yi, wi, pwi)):
            vf.append(False)
            gf.append(False)
            continue
        sp = max(-xi, 0.0) + math.log1p(math.exp(-abs(xi)))
        lw = abs((pwi - 1) * yi + 1) * sp
        t = abs(wi) * (abs((1 - yi) * xi) + lw)
        total += t
        own = lw > big or t > big or abs(wi) * abs((pwi - 1) * yi + 1) > big
        vf.append(own or (_reduced(kw) and _sum_past(total, len(vf) + 1, big)))
        gf.append(own)
    return vf, gf


def _kl_overflow_flags(kw, f=None):
    """Per element: its pointwise term beyond the largest finite value (reduced: any term or the running sum)."""
    x, t = _flat(kw.get("input", [])), _flat(kw.get("target", []))
    big = _max_finite(f)
    vf = []
    total = 0.0
    for xi, ti in zip(x, t):
        term = 0.0
        if math.isfinite(xi) and math.isfinite(ti):
            if kw.get("log_target"):
                term = math.exp(min(ti, 700.0)) * abs(ti - xi)
            elif ti > 0:
                term = ti * abs(math.log(ti) - xi)
        total += term
        vf.append(term > big or (_reduced(kw) and _sum_past(total, len(vf) + 1, big)))
    return vf, [False] * len(vf)


def _infinite_logit_scope(kw, f=None):
    idx = [i for i, v in enumerate(_flat(kw.get("input", []))) if math.isinf(v)]
    return _scope(([0] if idx else []) if _reduced(kw) else idx, idx)


def _bcel_cancel_at(x, y):
    return math.isfinite(x) and x < 0 and y != 0


def _bcel_cancel_scope(kw, f=None):
    x, y = _elementwise(kw, "target")
    return _elements_where(lambda i, kw, f: _bcel_cancel_at(x[i], y[i]))(kw, f)


def _xlogy_scope(kw, f=None):
    x, y = _flat(kw.get("input", [])), _flat(kw.get("other", []))
    if len(x) != len(y):
        return _scope((), [i for i, v in enumerate(x) if v == 0])
    return _scope((), [i for i, (a, b) in enumerate(zip(x, y)) if a == 0 and b == 0])


def _scipy_kl_scope(kw, f=None):
    fm = get_format(f or "float16")
    lo, hi = math.log(fm.min_normal), math.log(fm.max_finite)
    xs, ts = _flat(kw.get("input", [])), _flat(kw.get("target", []))
    return _scope([i for i, (x, t) in enumerate(zip(xs, ts)) if math.isfinite(x) and t > 0 and not lo <= x <= hi])


def _bcel_cancellation_error(kw, f, kind, index, z, upstream=None):
    """A value element's bound: per element i with x_i < 0 and y_i != 0, K S u |w_i| (1 + |pw_i|) (|x_i| + 1):
    (1 - y) x rounded (and 1 - y rounded) carries u |x_i|, which the cancellation against max(-x, 0) leaves
    absolute, times the element's weights (K = 8, S = 8 as in oracles/bounds.py); a reduced value: the sum of
    those over the covered elements, over the mean's denominator D. Never one element's share applied to
    another, never a total applied to each. Gradients: not described (None)."""
    if kind != "value":
        return None
    u = _fmt(f).u
    x, y, w, pw = _elementwise(kw, "target", "weight", "pos_weight")
    F = Fraction
    c = bounds.K * bounds.steps("binary_cross_entropy_with_logits") * u

    def b(i):
        if not (_bcel_cancel_at(x[i], y[i]) and math.isfinite(w[i]) and math.isfinite(pw[i])):
            return F(0)
        return c * F(abs(w[i])) * (1 + F(abs(pw[i]))) * (F(abs(x[i])) + 1)  # exact: no overflow

    if not _reduced(kw):
        return b(index)
    D = len(x) if kw.get("reduction", "mean") == "mean" else 1
    return sum((b(i) for i in range(len(x))), F(0)) / D


def _lse_of(vals):
    fin = [v for v in vals if v != -math.inf]
    if not fin or not all(math.isfinite(v) for v in fin):
        return None
    m = max(fin)
    return m + math.log(sum(math.exp(v - m) for v in fin))


def _lse_grad_error(kw, f, kind, index, z, upstream=None):
    """Gradient component c of row k (values: not described, None). torch's backward is up_k exp(x_c - lse~):
    lse~ carries its own stable error K S u (|lse| + 1), the subtraction u |x_c - lse~|, exp and the product
    with the upstream u each, so the exponent is off by at most eps_c = K u (S (|lse| + 1) + |d| + 2), d = x_c -
    lse (plus float64's own error in d, 2**-51 (|x_c| + |lse| + 1), as d is computed here in float64), and
    |g~ - g| <= |up_k| e**(d + eps_c) - |g|, with |g| = |up_k| e**d the exact component z: relative to the
    component, so a component that is exactly tiny stays tiny (a swapped gradient is not within it). And since
    torch's lse~ = RN(max + log(sum exp(x - max))) >= max >= x_c, exp(x_c - lse~) lies in [0, 1]: the error is
    at most max(|g|, |up_k| - |g|), exactly, whatever eps (lse~ rounding to x_c at 1e8: g~ = up_k)."""
    if kind != "grad" or z is None:
        return None
    fm = _fmt(f)
    x = kw["input"]
    fx = _flat(x)
    gs = _groups(x, kw.get("dim"))
    (k,) = [k for k, g in enumerate(gs) if index in g]
    lse = _lse_of([fx[i] for i in gs[k]])
    xc = fx[index]
    if lse is None or not math.isfinite(xc):
        return None
    up = Fraction(abs(upstream[k]) if upstream and k < len(upstream) else 1.0)
    g = abs(z)
    cap = max(g, up - g)
    d = xc - lse
    eps = float(K * fm.u) * (bounds.steps("logsumexp") * (abs(lse) + 1) + abs(d) + 2) + 2.0 ** -51 * (
        abs(xc) + abs(lse) + 1)
    if d + eps >= 0:
        return cap + Fraction(fm.min_subnormal)
    return min(cap, max(up * Fraction(math.exp(d + eps)) - g, Fraction(0))) + Fraction(fm.min_subnormal)


def _scipy_kl_element_error(kw, f, kind, index, z, upstream=None):
    """The per-element bound of ``_scipy_kl_error`` for a covered value element (reduction none only)."""
    return _scipy_kl_error(kw, f)[index] if kind == "value" else None


# ----------------------------------------------------------------------------------------------------------
# JAX and optax (jax 0.10.2, optax 0.2.8): the jax subject (subjects/jax_subject.py)

def _index_rows(kw):
    """(row, class-index target) pairs of a cross_entropy call with class-index targets, else []."""
    x, t = kw.get("input"), kw.get("target")
    if not isinstance(x, list) or (isinstance(t, list) and len(_flat(t)) == len(_flat(x))):
        return []
    ts = _flat(t) if isinstance(t, list) else [t]
    rows = _rows_of(x)
    if len(ts) != len(rows) or not all(isinstance(c, int) for c in ts):
        return []
    return list(zip(rows, ts))


def _row_lse(row):
    """log sum exp of a row, in float64 (a bound's ingredient: None where a logit is NaN or +inf)."""
    return _lse_of(row)


def _optax_offset(kw, f=None):
    """Class-index targets and a row whose log-sum-exp is larger in magnitude than 1 (optax's rounded lse carries
    u |lse|, which the loss's own size need not: a large common offset)."""
    for row, c in _index_rows(kw):
        lse = _row_lse(row)
        if lse is not None and math.isfinite(lse) and abs(lse) > 1:
            return True
    return False


def _optax_offset_error(kw, f, kind, index, z, upstream=None):
    """The value element's bound. optax's softmax_cross_entropy_with_integer_labels returns RN(lse) - x_t with
    lse = jax.nn.logsumexp(x) = max + log(sum exp(x - max)) rounded in the format: the lse carries the stable error
    of logsumexp, K S u (|lse| + 1) (S = its steps, oracles.bounds), the subtraction u |z_row|, so a row's error is
    at most K u (S (|lse| + 1) + |z_row| + 1) (z_row = lse - x_t, here in float64: plus 2**-51 (|lse| + |x_t|)
    for its own rounding). A reduced value: the rows' bounds summed (sum) or averaged (mean, jnp.mean), plus the
    reduction's own K u L(N) (|z| + 1). Gradient components are not described (optax's gradient, softmax from
    the shifted exponent, is right there)."""
    if kind != "value":
        return None
    fm = _fmt(f)
    rows = _index_rows(kw)
    bounds_ = []
    for row, c in rows:
        lse = _row_lse(row)
        if lse is None or not 0 <= c < len(row) or not math.isfinite(row[c]):
            return None
        S = bounds.steps("logsumexp", len(row))
        L, xt = Fraction(lse), Fraction(row[c])  # exact arithmetic: float64's lse near its largest finite overflows
        zr = abs(L - xt)
        bounds_.append(Fraction(K * fm.u) * (S * (abs(L) + 1) + zr + 1) + Fraction(2) ** -51 * (abs(L) + abs(xt)))
    if not bounds_:
        return None
    red = kw.get("reduction", "mean")
    if red == "none":
        return bounds_[index] if index < len(bounds_) else None
    total = sum(bounds_, Fraction(0))
    if red == "mean":
        total /= len(bounds_)
    zz = abs(z) if z is not None else 0
    return total + Fraction(K * fm.u) * bounds.ceil_log2(len(bounds_)) * (zz + 1)


def _row_loss_magnitude(row, c):
    """An upper estimate of a row's |cross-entropy| lse - x_t <= max - x_t + log C, in float64 (inf where even
    that overflows: the term then exceeds any format's largest finite)."""
    fin = [v for v in row if math.isfinite(v)]
    if not fin or not 0 <= c < len(row) or not math.isfinite(row[c]):
        return 0.0
    return (max(fin) - row[c]) + math.log(len(row))


def _jnp_mean_overflows(kw, f=None):
    """A mean (the default reduction) whose per-example cross-entropies sum beyond the largest finite value:
    jnp.mean sums them in the format before dividing."""
    if kw.get("reduction", "mean") != "mean":
        return False
    big = _max_finite(f)
    rows = _index_rows(kw)
    if not rows:  # probability targets: sum_c t_c (lse - x_c) <= max - min + log C per row
        x, t = kw.get("input"), kw.get("target")
        if not isinstance(t, list) or len(_flat(t)) != len(_flat(x)):
            return False
        terms = []
        for r in _rows_of(x):
            fin = [v for v in r if math.isfinite(v)]
            terms.append(max(fin) - min(fin) + math.log(len(r)) if fin else 0.0)
    else:
        terms = [_row_loss_magnitude(r, c) for r, c in rows]
    return sum(terms) > big


def _bcel_jnp_mean_overflows(kw, f=None):
    """A mean whose elementwise terms -y log sigmoid(x) - (1 - y) log sigmoid(-x) (<= |x| + log 2) sum beyond the
    largest finite value: jnp.mean sums them in the format."""
    if kw.get("reduction", "mean") != "mean":
        return False
    return sum(abs(v) + math.log(2) for v in _flat(kw.get("input", [])) if math.isfinite(v)) > _max_finite(f)


#: the formats in which XLA's CPU backend flushes subnormals to zero (float16 is computed in float32 there, where
#: its subnormals are normal: verified on jax 0.10.2)
_XLA_FLUSHED = ("float32", "bfloat16", "float64")


def _flush_tiny(f) -> float | None:
    """The smallest normal value of a format whose subnormals XLA's CPU backend flushes (None for float16); without
    a format the widest of them (float32's and bfloat16's 2**-126)."""
    if f is None:
        return get_format("float32").min_normal
    name = getattr(f, "name", f)
    return get_format(name).min_normal if name in _XLA_FLUSHED else None


def _prob_target_layout(kw):
    """(rows, targets by row, classes C, spatial size D) of a cross_entropy call with probability targets, else
    None. Rows in the order of the "none" output (n, then the spatial position)."""
    x, t = kw.get("input"), kw.get("target")
    if not isinstance(x, list) or not isinstance(t, list) or len(_flat(x)) != len(_flat(t)) or not _flat(x):
        return None
    rows, trows = _rows_of(x), _rows_of(t)
    C = len(rows[0])
    D = len(rows) // (len(x) if isinstance(x[0], list) else 1)
    return rows, trows, C, D


def _subnormal_rows(kw, f):
    """The rows with a nonzero target that is subnormal in the format (XLA flushes it: None where it does not)."""
    tiny = _flush_tiny(f)
    lay = _prob_target_layout(kw)
    if tiny is None or lay is None:
        return set()
    return {r for r, ts in enumerate(lay[1]) if any(0 < abs(v) < tiny for v in ts)}


def _xla_flushes_target(kw, f=None):
    """Probability targets with a nonzero subnormal target in a format XLA's CPU backend flushes."""
    return bool(_subnormal_rows(kw, f))


def _xla_flush_scope(kw, f=None):
    """The value elements of the rows with a subnormal target (every value of a reduced call) and the gradient
    components of those rows."""
    rows = _subnormal_rows(kw, f)
    lay = _prob_target_layout(kw)
    if not rows or lay is None:
        return _scope()
    _, _, C, D = lay
    n_rows = len(lay[0])
    grads = {(r // D) * C * D + c * D + r % D for r in rows for c in range(C)}
    values = rows if kw.get("reduction", "mean") == "none" else ({0} if n_rows else set())
    return _scope(values, grads)


def _xla_flush_error(kw, f, kind, index, z, upstream=None):
    """The bound of an element under XLA's flushing. optax's softmax_cross_entropy is -sum_c t_c log_softmax(x)_c,
    so a row's value is sum_c t_c (lse - x_c); XLA's CPU backend reads a subnormal t_c as 0 (and writes a
    subnormal product as 0), so the row loses at most F = sum over its subnormal t_c of |t_c| |lse - x_c| (plus
    the smallest normal tiny per flushed product, C of them), on top of the stable computation's own K S u
    (sum_c |t_c| (|lse| + |x_c|) + 1). A reduced value: the rows' bounds summed (sum) or averaged (mean) plus the
    reduction's K u L(N) (|z| + 1). A gradient component of a row, up (sum_k t_k) softmax_c - up t_c: the flushed
    targets move it by at most |up| 2 T_sub (T_sub: the row's subnormal targets' sum, read as 0 both in t_c and in
    the sum) plus 3 tiny (flushed intermediate products), on top of K S u |up| 2 T (T = sum_k |t_k|); up is the
    row's upstream (divided by N under mean). Rows with a non-finite logit: not described (None)."""
    lay = _prob_target_layout(kw)
    tiny = _flush_tiny(f)
    if lay is None or tiny is None:
        return None
    rows, trows, C, D = lay
    fm = _fmt(f)
    S = bounds.steps("cross_entropy", C, prob_targets=True)
    F = Fraction
    red = kw.get("reduction", "mean")

    def sub(ts):
        return [abs(F(v)) for v in ts if 0 < abs(v) < tiny]

    if kind == "value":
        def row_bound(r):
            lse = _lse_of(rows[r])
            if lse is None or not all(math.isfinite(v) for v in rows[r]):
                return None
            L = F(lse)
            flushed = sum((abs(F(t)) * abs(L - F(x)) for x, t in zip(rows[r], trows[r]) if 0 < abs(t) < tiny), F(0))
            own = sum((abs(F(t)) * (abs(L) + abs(F(x))) for x, t in zip(rows[r], trows[r])), F(0))
            return flushed + C * F(tiny) + F(K * fm.u) * S * (own + 1)

        if red == "none":
            return row_bound(index) if index < len(rows) else None
        bs = [row_bound(r) for r in range(len(rows))]
        if any(b is None for b in bs):
            return None
        total = sum(bs, F(0)) / (len(rows) if red == "mean" else 1)
        zz = abs(z) if z is not None else 0
        return total + F(K * fm.u) * bounds.ceil_log2(len(rows)) * (zz + 1)
    n, rest = divmod(index, C * D)
    r = n * D + rest % D
    if r >= len(rows):
        return None
    if red == "none":
        up = abs(F(upstream[r])) if upstream is not None else F(1)
    else:
        up = (abs(F(upstream[0])) if upstream is not None else F(1)) / (len(rows) if red == "mean" else 1)
    T = sum((abs(F(v)) for v in trows[r]), F(0))
    return up * (2 * sum(sub(trows[r]), F(0)) + 3 * F(tiny) + F(K * fm.u) * S * 2 * T)



def _subnormal(v, tiny) -> bool:
    return 0 < abs(v) < tiny


def _kl_mass(t, log_target):
    """The probability mass e**t (log target) or t of a finite kl_div target, and its log (None at mass 0)."""
    if log_target:
        return math.exp(t) if t < 710 else math.inf, t
    return t, (math.log(t) if t > 0 else None)


def _kl_flushed(kw, f):
    """The flat indices of a kl_div call whose term XLA's CPU backend changes by flushing: a nonzero subnormal
    input or target, or a mass e**t (log target) below the smallest normal value (computed, then flushed)."""
    tiny = _flush_tiny(f)
    x, t = _flat(kw.get("input", [])), _flat(kw.get("target", []))
    if tiny is None or len(x) != len(t):
        return []
    lt = bool(kw.get("log_target"))
    out = []
    for i, (xi, ti) in enumerate(zip(x, t)):
        if not (math.isfinite(xi) and math.isfinite(ti)):
            continue
        mass = _kl_mass(ti, lt)[0]
        if _subnormal(xi, tiny) or _subnormal(ti, tiny) or (lt and mass < tiny):
            out.append(i)
    return out


def _xla_kl_flushes(kw, f=None):
    """kl_div with a subnormal input, target or (log target) mass in a format XLA's CPU backend flushes."""
    return bool(_kl_flushed(kw, f))


def _xla_kl_scope(kw, f=None):
    """The value (optax sums: every reduction reduces) and every gradient component (a component -m up, m the
    mass, is itself flushed where it is subnormal, whichever element it belongs to; the bound is the flush's)."""
    return _scope(ALL, ALL) if _kl_flushed(kw, f) else _scope()


def _xla_kl_error(kw, f, kind, index, z, upstream=None):
    """The bound of an element of optax's kl_divergence under XLA's flushing. A term m_i (l_i - x_i) (m the mass t
    or e**t, l its log) of a flushed element is dropped or changed by at most M_i = m_i (|l_i| + |x_i| + tiny)
    (reading a subnormal x as 0 moves the term by m_i |x_i| <= m_i tiny; a flushed mass drops the term, at most
    m_i (|l_i| + |x_i|)); every term's product is itself flushed when subnormal (<= tiny each, N of them). The
    value: (sum over flushed M_i + N tiny) / d (d = 1 for sum, the batch for batchmean), on top of the stable
    computation's own K (S + log2 N) u (sum_i m_i (|l_i| + |x_i|) / d + 1) (S: bounds.steps("kl_div")). A gradient
    component -m_i up (up = the upstream over d): a flushed mass reads as 0 (at most m_i |up| off, m_i < tiny),
    and the component is flushed when subnormal (tiny), plus K u 2 m_i |up|. The floats are rounded up by the
    factor (1 + 2**-40) (math.log and math.exp are within an ulp). Non-finite elements: not described (None)."""
    tiny = _flush_tiny(f)
    x, t = _flat(kw.get("input", [])), _flat(kw.get("target", []))
    if tiny is None or len(x) != len(t) or not all(math.isfinite(v) for v in x + t):
        return None
    fm = _fmt(f)
    F = Fraction
    lt = bool(kw.get("log_target"))
    flushed = set(_kl_flushed(kw, f))
    red = kw.get("reduction", "mean")
    shape = _shape(kw.get("input"))
    d = (shape[0] if shape else 1) if red == "batchmean" else 1
    up1 = F(abs(upstream[0])) if upstream else F(1)
    grow = F(1) + F(2) ** -40
    if kind == "value":
        own, lost = F(0), F(0)
        for i, (xi, ti) in enumerate(zip(x, t)):
            mass, log = _kl_mass(ti, lt)
            if mass == 0 or log is None:
                continue
            size = F(mass) * (F(abs(log)) + F(abs(xi))) * grow
            own += size
            if i in flushed:
                lost += size + F(mass) * F(tiny) * grow
        n = len(x)
        zz = abs(z) if z is not None else 0
        return ((lost + n * F(tiny)) / d
                + F(K * fm.u) * (bounds.steps("kl_div") + bounds.ceil_log2(max(n, 1))) * (own / d + zz + 1))
    if index >= len(x):
        return None
    mass = F(_kl_mass(t[index], lt)[0]) * grow
    up = up1 / d
    return (mass * up if index in flushed else F(0)) + F(tiny) + F(K * fm.u) * 2 * mass * up


def _xlogy_flushed(kw, f):
    """(value indices, gradient indices) of an xlogy call that XLA's CPU backend changes by flushing: a nonzero
    subnormal x or y changes the value (where x is not 0), a subnormal y the gradient log y."""
    tiny = _flush_tiny(f)
    x, y = _flat(kw.get("input", [])), _flat(kw.get("other", []))
    if tiny is None or len(x) != len(y):
        return [], []
    vals = [i for i, (a, b) in enumerate(zip(x, y))
            if math.isfinite(a) and math.isfinite(b) and a != 0 and (_subnormal(a, tiny) or _subnormal(b, tiny))]
    grads = [i for i, b in enumerate(y) if _subnormal(b, tiny)]
    return vals, grads


def _xla_xlogy_flushes(kw, f=None):
    """xlogy with a nonzero subnormal input or other in a format XLA's CPU backend flushes."""
    v, g = _xlogy_flushed(kw, f)
    return bool(v or g)


def _xla_xlogy_scope(kw, f=None):
    v, g = _xlogy_flushed(kw, f)
    return _scope(v, g)


def _xla_xlogy_error(kw, f, kind, index, z, upstream=None):
    """x log y with a subnormal y read as 0: x log 0 = -+inf and the gradient log 0 = -inf, an unbounded error
    (inf); so is a subnormal x read as 0 where y <= 0 (xlogy(0, y) = 0, the exact x log y -+inf or NaN). A
    subnormal x (y > 0 normal) read as 0: the value 0 where the exact one is x log y, off by at most
    |x| |log y| (1 + 2**-40) (math.log is within an ulp) plus the flushed product (tiny) and the stable
    computation's own K S u (|z| + 1) (S: bounds.steps("xlogy"))."""
    tiny = _flush_tiny(f)
    x, y = _flat(kw.get("input", [])), _flat(kw.get("other", []))
    if tiny is None or index >= len(x) or len(x) != len(y):
        return None
    if _subnormal(y[index], tiny):
        return math.inf
    if kind != "value":
        return None
    if not y[index] > 0:  # x read as 0: xlogy(0, y) = 0 where the exact x log y is -+inf (y = 0) or NaN (y < 0)
        return math.inf
    fm = _fmt(f)
    F = Fraction
    zz = abs(z) if z is not None else 0
    return (F(abs(x[index])) * F(abs(math.log(y[index]))) * (1 + F(2) ** -40) + F(tiny)
            + F(K * fm.u) * bounds.steps("xlogy") * (zz + 1))


DEVIATIONS = [
    # SciPy's rel_entr takes probabilities: the suite's adapter passes q = exp(input), rounded in the format
    Deviation(
        "scipy-kl_div-exp-not-normal", "scipy", "kl_div",
        "an input log-probability whose exp is not a normal number of the format (target > 0)",
        "scipy.special.rel_entr(t, q) is defined on probabilities, and q = exp(x) rounded in the format loses "
        "relative precision in the subnormals (float64 x = -744: q = 5e-324 for 1.4e-323), rounds to 0 below "
        "log(s_min / 2) (-745.13) where rel_entr(t, 0) = inf, and to inf above log(max) (709.78) where "
        "rel_entr(t, inf) = -inf, while the exact t (log t - x) is finite (x = -1.8e308, t = 5e-324: 8.9e-16); "
        "measured against that error, t (-log(1 - max(u, s_min / 2q))) + K u (|t log t| + t (|x| + 1)) per element",
        "https://docs.scipy.org/doc/scipy/reference/generated/scipy.special.rel_entr.html",
        _scipy_exp_not_normal, documented_error=_scipy_kl_element_error,
        scope=_scipy_kl_scope,
        witness=("float64", {"input": [-744.0, -1000.0, -1.0], "target": [1.0, 0.5, 0.25],
                             "reduction": "none"})),
    Deviation(
        "torch-softplus-threshold", "torch", "softplus",
        "beta * x > threshold (default 20)",
        "torch returns x itself above the threshold: softplus(25) = 25 where the exact value is "
        "25.0000000000139 (3,900 ULP in float64)",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.softplus.html",
        _softplus_linear, documented_oracle="torch:softplus",
        scope=_softplus_scope,
        witness=("float64", {"input": [25.0]})),
    Deviation(
        "torch-bce-log-clamp", "torch", "binary_cross_entropy",
        "log(p) or log(1 - p) below -100 (p < e**-100 or 1 - p < e**-100)",
        "BCELoss clamps its log outputs at -100: p = 1e-50, y = 1 gives 100 where the exact loss is 115.13; "
        "the backward clamps p(1 - p) at 1e-12: its gradient there is w (p - y) / 1e-12 (p = 1e-50: -1e12 where "
        "the exact one is -1e50), measured against that formula; values against the clamped oracle",
        "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html",
        _bce_clamped, documented_oracle="torch:binary_cross_entropy",
        documented_formula=_bce_clamp_grad_formula,
        scope=_bce_clamp_scope,
        witness=("float64", {"input": [1e-50], "target": [1.0]})),
    Deviation(
        "torch-bce-backward-underflow", "torch", "binary_cross_entropy",
        "a gradient component whose up (p - y) lies below the format's smallest normal (up: the mean's 1 / n, the "
        "sum's 1, or the upstream gradient)",
        "BCELoss's backward forms up (p - y) in the format before dividing by p (1 - p): a subnormal product keeps "
        "few bits, and the division by a tiny p amplifies the loss (float16 p = 2**-24, y = 0, upstream 1.625: "
        "1.625 * 2**-24 rounds to 2**-23, so the gradient is 2 where the exact one is 1.625); measured against "
        "torch's formula with its underflow radius (found by the battery once no example was skipped by the clock)",
        "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html",
        _bce_backward_underflows, documented_formula=_bce_clamp_grad_formula,
        scope=_bce_underflow_scope,
        witness=("float16", {"input": [0.5, 2.0 ** -24], "target": [0.5, 0.0], "reduction": "none"})),
    Deviation(
        "torch-ce-prob-target-masked-logit", "torch", "cross_entropy",
        "probability targets with a -inf logit where the target probability is 0",
        "torch computes -(target * log_softmax).sum(): 0 * (-inf) = NaN where the exact loss ignores the "
        "zero-mass class (0 log 0 = 0); class-index targets are not affected",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html "
        "(no upstream issue found; optax has the same defect: https://github.com/google-deepmind/optax/issues/896)",
        _prob_target_with_masked_logit, documented_output=math.isnan,
        scope=_rows_by(_prob_target_with_masked_logit),
        witness=("float32", {"input": [[0.0, -math.inf]], "target": [[1.0, 0.0]]})),
    Deviation(
        "torch-ce-prob-target-span-overflow", "torch", "cross_entropy",
        "probability targets and a row whose finite logits span more than the largest finite value",
        "torch computes -(target * log_softmax(x)).sum(); log_softmax = x_c - lse overflows to -inf for the "
        "smallest logit, so its term is inf (or 0 * inf = NaN where its target is 0) where the exact loss is "
        "finite (float32 [[3.4e38, -3.4e38, 0, 1.7e38]], target [[0.75, 0.25, 0, 0]]: NaN for 1.56e38)",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html",
        _prob_target_span_overflows, documented_output=_not_finite,
        scope=_rows_by(_prob_target_span_overflows),
        witness=("float32", {"input": [[3.4028234663852886e+38, -3.4028234663852886e+38, 0.0, 1.7014117331926443e+38]],
                             "target": [[0.75, 0.25, 0.0, 0.0]]})),
    Deviation(
        "torch-nll-zero-weight-masked", "torch", "nll_loss",
        "a target whose class weight is 0 has log-probability -inf",
        "torch computes -weight[t] * input[t] = -0 * (-inf) = NaN; a class of weight 0 contributes nothing "
        "to the exact loss (the 0 log 0 = 0 convention)",
        "https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html",
        _zero_weight_on_masked_target, documented_output=math.isnan,
        scope=_rows_by(_zero_weight_on_masked_target),
        witness=("float32", {"input": [[-math.inf, 0.0]], "target": [0], "weight": [0.0, 1.0], "reduction": "sum"})),
    Deviation(
        "torch-ce-zero-weight-masked", "torch", "cross_entropy",
        "a class of weight 0 with logit -inf: the target class, or any class under probability targets or label "
        "smoothing",
        "as for nll_loss: weight 0 times an infinite log-probability is NaN in torch, 0 in the exact loss",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html",
        _zero_weight_on_masked_target, documented_output=math.isnan,
        scope=_rows_by(_zero_weight_on_masked_target),
        witness=("float32", {"input": [[-math.inf, 0.0]], "target": [0], "weight": [0.0, 1.0], "reduction": "sum"})),
    Deviation(
        "torch-softmax-plus-inf", "torch", "softmax",
        "a +inf logit",
        "softmax with a single +inf logit is one-hot in the limit; torch returns NaN (a design decision: "
        "'true in the limit sense only')",
        "https://github.com/pytorch/pytorch/issues/6864",
        _plus_inf_logit, documented_output=math.isnan,
        scope=_plus_inf_slices,
        witness=("float32", {"input": [[math.inf, 0.0]], "dim": 1})),
    Deviation(
        "torch-log_softmax-plus-inf", "torch", "log_softmax",
        "a +inf logit",
        "as for softmax: the limit exists (0 at the +inf logit, -inf elsewhere); torch returns NaN",
        "https://github.com/pytorch/pytorch/issues/6864",
        _plus_inf_logit, documented_output=math.isnan,
        scope=_plus_inf_slices,
        witness=("float32", {"input": [[math.inf, 0.0]], "dim": 1})),
    # found by the battery in torch 2.13.0 (each verified with a one-line reproducer, see the reason)
    Deviation(
        "torch-ce-plus-inf", "torch", "cross_entropy",
        "a +inf logit",
        "as for log_softmax: cross_entropy([[inf, 0]], [0]) is 0 in the limit and cross_entropy([[inf, 0]], [1]) "
        "is +inf; torch returns NaN for both (gates only under --strict-specials: an infinite input)",
        "https://github.com/pytorch/pytorch/issues/6864",
        _plus_inf_logit, documented_output=math.isnan,
        scope=_rows_by(_plus_inf_logit, grads=True),
        witness=("float32", {"input": [[math.inf, 0.0]], "target": [1]})),
    Deviation(
        "torch-ce-smoothing-underflow", "torch", "cross_entropy",
        "label_smoothing / C rounds to 0 in the format and a logit is -inf",
        "torch weights the smoothing term by label_smoothing / C computed in the input's dtype: it underflows to 0 "
        "and 0 * inf = NaN where the exact loss is +inf (cross_entropy([[0, -inf]], [0], label_smoothing=1e-45) in "
        "float32; 5e-324 in float64)",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html",
        _smoothing_underflows, documented_output=math.isnan,
        scope=_rows_by(_smoothing_underflows),
        witness=("float32", {"input": [[0.0, -math.inf]], "target": [0], "label_smoothing": 1e-45})),
    Deviation(
        "torch-ce-full-smoothing-infinite-target", "torch", "cross_entropy",
        "label_smoothing = 1 and a target class (not ignored) whose logit is -inf",
        "torch returns (1 - label_smoothing) * nll_loss + label_smoothing / C * smoothing term: the first factor is "
        "exactly 0 and the target's nll is inf, so 0 * inf = NaN where the exact loss (the smoothing term alone) is "
        "+inf (torch 2.13: cross_entropy([0, -inf], 1, label_smoothing=1) is NaN)",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html",
        _full_smoothing_on_infinite_target, documented_output=math.isnan,
        scope=_rows_by(_full_smoothing_on_infinite_target),
        witness=("float32", {"input": [[0.0, -math.inf], [0.0, 1.0]], "target": [1, 0], "label_smoothing": 1.0,
                             "reduction": "none"})),
    Deviation(
        "torch-ce-smoothing-span-overflow", "torch", "cross_entropy",
        "label smoothing with a row whose finite logits span more than the largest finite value, or whose sum of "
        "-log_softmax over the classes exceeds it, or (sum and mean) whose total over the batch does (a weighted "
        "mean: that total over the targets' total weight)",
        "the smoothing term sums -log_softmax over the classes; lse - x_c overflows to inf for the smallest logit, "
        "or the sum does (bfloat16 [0, 0, 3.39e38], target 0, label_smoothing 0.1: inf where the exact loss is "
        "3.28e38), or its total over the batch does under sum and mean (float16 [[0, 30000]] x 4, target 1, "
        "label_smoothing 1e-3: inf where the exact loss is 15.0), or that total over the total target weight does "
        "under a weighted mean (float32 [[0, -2e38, -2e38]], target 0, weights 1e-30, label_smoothing 0.5: inf "
        "where the exact loss is 6.67e37), before the eps / C weighting, where the exact "
        "loss is finite (inf, or NaN times a zero weight)",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html",
        _smoothing_span_overflows, documented_output=_not_finite,
        scope=_smoothing_span_scope,
        witness=("float32", {"input": [[3e38, -3e38, 0.0]], "target": [0], "label_smoothing": 0.25})),
    Deviation(
        "torch-ce-sum-overflow", "torch", "cross_entropy",
        "class weights whose sum (over the classes, or over the targets), a weighted -log-probability, or the "
        "sum of those (class-index or probability targets), exceeds the largest finite value",
        "torch forms the weighted terms and sums (the smoothing term's sum of w_c, the mean's denominator sum of "
        "w_t) in the format; they overflow to inf and the loss becomes inf or NaN, its gradient inf, NaN or "
        "w / inf = 0, where the exact ones are finite and nonzero",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html",
        _weighted_term_overflows, documented_output=_not_finite_or_zero,
        scope=_everything,
        witness=("float32", {"input": [[0.0, 1.0], [2.0, 0.0]], "target": [0, 0], "weight": [3e38, 1.0]})),
    Deviation(
        "torch-ce-tiny-total-weight", "torch", "cross_entropy",
        "a weighted mean whose total target weight is below 1 / (largest finite value)",
        "the backward pass scales by 1 / total_weight, which overflows to inf: the gradient is inf or NaN where "
        "the exact one is finite (float32 weight [1e-39, 1], logits [[-10, 0]], target [0]: grad [nan, inf], "
        "exact [-1, 1]); the loss value itself is right",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html",
        _tiny_total_weight, documented_output=_not_finite,
        scope=_grads_only,
        witness=("float32", {"input": [[-10.0, 0.0]], "target": [0], "weight": [1e-39, 1.0]})),
    Deviation(
        "torch-nll-tiny-total-weight", "torch", "nll_loss",
        "a weighted mean whose total target weight is below 1 / (largest finite value)",
        "as for cross_entropy: nll_loss([[-10, 0]], [0], weight=[1e-39, 1]) in float32 has gradient [-inf, 0] "
        "where the exact one is [-1, 0]",
        "https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html",
        _tiny_total_weight, documented_output=_not_finite,
        scope=_grads_only,
        witness=("float32", {"input": [[-10.0, 0.0]], "target": [0], "weight": [1e-39, 1.0]})),
    Deviation(
        "torch-nll-sum-overflow", "torch", "nll_loss",
        "class weights whose sum over the targets, a product w_t x_t, or the sum of those, exceeds the largest "
        "finite value",
        "the weighted mean's denominator or a weighted term overflows to inf in the format: the loss is NaN "
        "(inf / inf) or +-inf (w_t = 3.4e38, x_t = -10 in float32: inf where the exact mean is 10; float16 "
        "log-probabilities near -2**15, unweighted: the sum of four overflows where the mean is -16885.75), the "
        "gradient w / inf = 0, where the exact ones are finite and nonzero",
        "https://pytorch.org/docs/stable/generated/torch.nn.NLLLoss.html",
        _nll_weighted_term_overflows, documented_output=_not_finite_or_zero,
        scope=_everything,
        witness=("float32", {"input": [[-1.0, 0.0], [-2.0, 0.0]], "target": [0, 0], "weight": [3e38, 1.0]})),
    Deviation(
        "torch-kl_div-masked", "torch", "kl_div",
        "an input log-probability of -inf where the target is 0; under log_target, a target of -inf (any input)",
        "torch computes target * (log(target) - input) = 0 * inf = NaN; under log_target exp(t) * (t - x) = "
        "0 * (-inf - x) = NaN for any input x (float32 log_target, input [-1, -1], target [-inf, log 0.5]: NaN "
        "where the exact sum is 0.153); a class of zero target mass contributes 0 to the exact divergence (0 log 0 "
        "= 0)",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.kl_div.html",
        _kl_masked, documented_output=math.isnan,
        scope=_kl_masked_scope,
        witness=("float32", {"input": [-math.inf, -1.0], "target": [0.0, 0.5], "reduction": "sum"})),
    Deviation(
        "torch-bce-overflow", "torch", "binary_cross_entropy",
        "a weighted term w l_i beyond the largest finite value, or their sum within rounding of it; or a backward "
        "max(|w|, 1) |p - y| / max(p (1 - p), 1e-12) beyond it (float16: 1e-12 rounds to 0)",
        "torch forms w * l_i and the reduction's sum in the format, which overflow to inf where the exact mean is "
        "finite (float32 w = 3.4e38, p = 0.9, y = 0.999: inf where the mean is 6.5e37); the backward's (p - y) / "
        "(p (1 - p)) overflows in float16 (p = 6e-8, y = 1: -inf, times a zero weight NaN where the exact "
        "derivative is 0), and torch multiplies the weight in before the mean's 1 / n (float32 p = [0.5, 0.25, "
        "0.25], y = 0, w = [3.4e38, 1, 1], mean: gradient inf where the exact one is 2.27e38; float16 p = 0.001, "
        "w = 65504: inf for 21856)",
        "https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html",
        _bce_overflows, documented_output=_not_finite_or_zero,
        scope=_per_element_flags(_bce_overflow_flags),
        witness=("float16", {"input": [5.960464477539063e-08, 0.5], "target": [1.0, 0.0], "weight": [0.0, 1.0]})),
    Deviation(
        "torch-bce-with-logits-overflow", "torch", "binary_cross_entropy_with_logits",
        "the log-weight ((pw - 1) y + 1) times softplus(-x) or a weighted term beyond the largest finite value, "
        "or their sum within rounding of it",
        "torch computes (1 - y) x + log_weight (max(-x, 0) + log1p(exp(-|x|))) and w times it in the format; "
        "these overflow to inf where the exact mean is finite (float32 pos_weight 3.4e38, x = -2, y = 1 - 2**-24, "
        "mean over 7: inf where the exact loss is 1.03e38)",
        "https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html",
        _bcel_overflows, documented_output=_not_finite_or_zero,
        scope=_per_element_flags(_bcel_overflow_flags),
        witness=("float32", {"input": [[0.0, 0.0, 0.0, 0.0, -2.0, 0.0, 0.0]],
                             "target": [[0.0, 0.0, 0.0, 0.0, 0.9999999403953552, 0.0, 0.0]],
                             "pos_weight": [1.0, 1.0, 1.0, 1.0, 3.4028232635611926e+38, 1.0, 1.0]})),
    Deviation(
        "torch-kl_div-sum-overflow", "torch", "kl_div",
        "pointwise terms beyond the largest finite value, or the reduction's sum of them within rounding of it",
        "torch sums the pointwise terms in the format before dividing: the sum overflows to inf where the exact "
        "mean (or batchmean) is finite (float32 inputs -3e38, targets 1, mean over 2: inf where the exact loss "
        "is 3e38)",
        "https://pytorch.org/docs/stable/generated/torch.nn.functional.kl_div.html",
        _kl_terms_overflow, documented_output=_not_finite_or_zero,
        scope=_per_element_flags(_kl_overflow_flags),
        witness=("float32", {"input": [-3e38, -3e38], "target": [1.0, 1.0], "reduction": "mean"})),
    Deviation(
        "torch-bce-with-logits-infinite", "torch", "binary_cross_entropy_with_logits",
        "an infinite logit",
        "torch's (1 - y) x + max(-x, 0) + log1p(exp(-|x|)) is 0 * inf or inf - inf = NaN at x = +inf, y = 1 and "
        "x = -inf, y = 0, where the limit (0) exists",
        "https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html",
        _bcel_infinite_logit, documented_output=math.isnan,
        scope=_infinite_logit_scope,
        witness=("float32", {"input": [math.inf], "target": [1.0]})),
    Deviation(
        "torch-bce-with-logits-cancellation", "torch", "binary_cross_entropy_with_logits",
        "a negative logit whose target is not 0 (soft labels)",
        "torch computes (1 - y) x + max(-x, 0) + log1p(exp(-|x|)); for x < 0 the first two cancel to -y x, leaving "
        "the rounding of (1 - y) x (u |x|) as an absolute error: float16 x = -60000, y = 6.1e-5 gives 0 where the "
        "exact loss is 3.66 (1 - y rounds to 1). Not stable in NUMERICS' sense (an accurate form is -y x + "
        "log1p(exp(x))); each such element measured against the formula's own bound K S u |w| (1 + |pw|)(|x| + 1) "
        "(a reduced value: their sum over D); values only",
        "https://pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html",
        _bcel_soft_target, documented_error=_bcel_cancellation_error,
        scope=_bcel_cancel_scope,
        witness=("float16", {"input": [-60000.0], "target": [6.097555160522461e-05], "reduction": "none"})),
    Deviation(
        "torch-logsumexp-grad-offset", "torch", "logsumexp",
        "logits of magnitude above 1",
        "torch's backward computes exp(x - logsumexp(x)): the subtraction of the rounded result carries u (|x| + "
        "|lse|), an error relative to the gradient that grows with the logits' magnitude (float64 logits near -700: "
        "392 ULP), where exp(x - max) / sum exp(x - max) has none; each gradient component measured against that "
        "bound, relative to the component; the value is judged normally",
        "https://github.com/pytorch/pytorch/blob/main/tools/autograd/derivatives.yaml (logsumexp: "
        "logsumexp_backward)",
        _large_logits, documented_error=_lse_grad_error,
        scope=_grads_only,
        witness=("float64", {"input": [[-698.3964185322643], [-708.3964185322643]], "dim": 0})),
    Deviation(
        "torch-xlogy-grad-at-zero", "torch", "xlogy",
        "x = 0 and y = 0",
        "torch's backward for x is grad * xlogy(x != 0, y), which at x = 0, y = 0 is xlogy(0, 0) = 0 by its own "
        "convention, while the derivative of x log(y) in x is log(0) = -inf there (log(y) elsewhere, as torch)",
        "https://github.com/pytorch/pytorch/blob/main/tools/autograd/derivatives.yaml (xlogy)",
        _xlogy_zero_x, documented_output=lambda y: y == 0,
        scope=_xlogy_scope,
        witness=("float32", {"input": [0.0], "other": [0.0]})),
    # JAX's and optax's (the jax subject; the reference of a user's JAX function), found by the battery and the
    # issue's bridge, verified on jax 0.10.2 and optax 0.2.8 (lossproof/battery/test_known_cases.py runs their
    # witnesses through the jax subject, skipped with the reason where JAX is absent)
    Deviation(
        "optax-ce-integer-labels-offset", "jax", "cross_entropy",
        "class-index targets and a row whose log-sum-exp exceeds 1 in magnitude (a large common offset)",
        "optax.softmax_cross_entropy_with_integer_labels returns logsumexp(x) - x_t, with jax.nn.logsumexp's "
        "max + log(sum exp(x - max)) rounded in the format before the target logit is subtracted: at a large "
        "common offset log C falls below half an ULP of the max and cancels (3,521 equal float32 logits at 2**30: "
        "0 where the exact loss is log 3521 = 8.1665, which torch's x_t - max - log(sum exp(x - max)) returns); "
        "each value measured against that formula's bound K u (S (|lse| + 1) + |z| + 1) per row; its gradient "
        "(softmax of the shifted logits) is right",
        "https://github.com/google-deepmind/optax/blob/v0.2.8/optax/losses/_classification.py "
        "(softmax_cross_entropy_with_integer_labels; no upstream issue found)",
        _optax_offset, documented_error=_optax_offset_error,
        scope=_values_only,
        witness=("float32", {"input": [[1073741824.0] * 3521], "target": [0]})),
    Deviation(
        "xla-cpu-subnormal-flush", "jax", "cross_entropy",
        "probability targets with a nonzero subnormal target (float32, bfloat16, float64: formats XLA's CPU backend "
        "flushes)",
        "XLA's CPU backend computes with subnormals flushed to zero (inputs read as 0, subnormal results written as "
        "0), so optax.softmax_cross_entropy's -sum_c t_c log_softmax(x)_c drops a subnormal target's term t_c (lse "
        "- x_c), which beside a logit near the largest finite value is of order 1 (float32 logits [0, 3.4e38], "
        "targets [2**-127, 0]: 0 where the exact loss is 2 - 2**-23); the gradient drops the same targets. Each "
        "value and gradient component of those rows measured against the flushed terms' bound (float16, computed "
        "in float32 there, is not flushed)",
        "https://github.com/openxla/xla/issues/22858 (XLA CPU flushes denormals to zero; no option to disable it)",
        _xla_flushes_target, documented_error=_xla_flush_error,
        scope=_xla_flush_scope, also=("optax-safe",),
        witness=("float32", {"input": [[0.0, 3.4028234663852886e+38]], "target": [[5.877471754111438e-39, 0.0]],
                             "reduction": "none"})),
    Deviation(
        "xla-cpu-subnormal-flush-kl_div", "jax", "kl_div",
        "a nonzero subnormal input or target, or (log targets) a mass e**t below the smallest normal value "
        "(float32, bfloat16, float64)",
        "XLA's CPU backend flushes subnormals to zero (openxla/xla#22858, as for cross_entropy): "
        "optax.kl_divergence's term t (log t - x) of a subnormal target t is dropped, which beside an input near "
        "-max is not small (float32 x = [-3.4e38, 0], t = [2**-142, 1]: the term 7.8e-5 is lost); the gradient's "
        "-t reads 0. The value and gradient measured against the flushed terms' bound",
        "https://github.com/openxla/xla/issues/22858 (XLA CPU flushes denormals to zero; no option to disable it)",
        _xla_kl_flushes, documented_error=_xla_kl_error, scope=_xla_kl_scope,
        witness=("float32", {"input": [-3.4028234663852886e+38, 0.0], "target": [2.0 ** -142, 1.0],
                             "reduction": "sum"})),
    Deviation(
        "xla-cpu-subnormal-flush-xlogy", "jax", "xlogy",
        "a nonzero subnormal x or y (float32, bfloat16, float64)",
        "XLA's CPU backend flushes subnormals to zero (openxla/xla#22858): jax.scipy.special.xlogy(x, y) reads a "
        "subnormal y as 0, so x log y is -+inf and the gradient in x, log y, is -inf (float32 x = 0, "
        "y = 2**-149: gradient -inf where the exact one is -103.28), and a subnormal x as 0 (x log y read 0)",
        "https://github.com/openxla/xla/issues/22858 (XLA CPU flushes denormals to zero; no option to disable it)",
        _xla_xlogy_flushes, documented_error=_xla_xlogy_error, scope=_xla_xlogy_scope,
        witness=("float32", {"input": [0.0, 1.0], "other": [2.0 ** -149, 2.0 ** -149]})),
    Deviation(
        "optax-ce-prob-target-masked-logit", "jax", "cross_entropy",
        "probability targets with a -inf logit where the target probability is 0",
        "optax.softmax_cross_entropy computes -(labels * log_softmax(logits)).sum(axis): 0 * (-inf) = NaN where the "
        "exact loss ignores the zero-mass class (0 log 0 = 0), as torch does (torch-ce-prob-target-masked-logit); "
        "optax's safe_softmax_cross_entropy is its documented alternative; class-index targets are not affected",
        "https://github.com/google-deepmind/optax/issues/896",
        _prob_target_with_masked_logit, documented_output=math.isnan,
        scope=_rows_by(_prob_target_with_masked_logit),
        witness=("float32", {"input": [[0.0, -math.inf]], "target": [[1.0, 0.0]]})),
    Deviation(
        "optax-ce-prob-target-span-overflow", "jax", "cross_entropy",
        "probability targets and a row whose finite logits span more than the largest finite value",
        "optax.softmax_cross_entropy and safe_softmax_cross_entropy compute -(labels * log_softmax(logits)).sum(axis) "
        "in the format; log_softmax = x_c - lse overflows to -inf for the smallest logit, so its term is inf (0 * inf "
        "= NaN where its label is 0, in softmax_cross_entropy) where the exact loss is finite (float16 logits "
        "[[10000, -60000]], labels [[0.5, 0.033]]: inf where the exact loss is 2324), as torch's does "
        "(torch-ce-prob-target-span-overflow)",
        "https://optax.readthedocs.io/en/latest/api/losses.html#optax.losses.softmax_cross_entropy (no upstream "
        "issue found)",
        _prob_target_span_overflows, documented_output=_not_finite,
        scope=_rows_by(_prob_target_span_overflows), also=("optax-safe",),
        witness=("float16", {"input": [[10000.0, -60000.0]], "target": [[0.5, 0.033203125]]})),
    Deviation(
        "jax-ce-mean-overflow", "jax", "cross_entropy",
        "reduction mean, and per-example losses whose sum exceeds the largest finite value",
        "jnp.mean sums the per-example losses in the format, then divides: the sum overflows to inf where the "
        "exact mean is finite (float32 logits [[0, 1.7e38]] x 4, targets 0: inf where the exact mean is 1.7e38); "
        "torch's mean does the same (torch-ce-sum-overflow)",
        "https://docs.jax.dev/en/latest/_autosummary/jax.numpy.mean.html",
        _jnp_mean_overflows, documented_output=_not_finite_or_zero,
        scope=_values_only, also=("optax-safe",),
        witness=("float32", {"input": [[0.0, 1.7014117331926443e+38]] * 4, "target": [0] * 4})),
    Deviation(
        "jax-bce-with-logits-mean-overflow", "jax", "binary_cross_entropy_with_logits",
        "reduction mean, and elementwise losses whose sum exceeds the largest finite value",
        "as for cross_entropy: jnp.mean of optax.sigmoid_binary_cross_entropy sums the terms in the format first "
        "(float32 logits [-3e38, -3e38], targets 1: inf where the exact mean is 3e38)",
        "https://docs.jax.dev/en/latest/_autosummary/jax.numpy.mean.html",
        _bcel_jnp_mean_overflows, documented_output=_not_finite_or_zero,
        scope=_values_only,
        witness=("float32", {"input": [-3e38, -3e38], "target": [1.0, 1.0]})),
    Deviation(
        "jax-kl_div-sum-overflow", "jax", "kl_div",
        "pointwise terms beyond the largest finite value, or their sum within rounding of it",
        "optax.kl_divergence sums the pointwise terms t (log t - x) in the format (over every axis: torch's sum; "
        "over the classes, then jnp.mean: batchmean), as torch does (torch-kl_div-sum-overflow): a sum within "
        "rounding of the largest finite value rounds past it (float32 inputs -max x 10, targets 0.9 and 0.1 / 9 "
        "x 9: inf where the exact sum is 3.4028233935e38, below the largest float32 3.4028235e38)",
        "https://docs.jax.dev/en/latest/_autosummary/jax.numpy.sum.html",
        _kl_terms_overflow, documented_output=_not_finite_or_zero,
        scope=_per_element_flags(_kl_overflow_flags),
        witness=("float32", {"input": [-3.4028234663852886e+38] * 10,
                             "target": [0.8999999761581421] + [0.011111111380159855] * 9, "reduction": "sum"})),
]


def matching(subject: str, loss: str, kwargs: dict, fmt=None):
    """The deviations that apply to this call in format ``fmt`` (usually none). Without a format the
    format-dependent conditions take the widest one (float16's subnormals, bfloat16's range)."""
    memo = _memo_for(kwargs, fmt)["matching"]
    if (subject, loss) not in memo:
        memo[(subject, loss)] = [d for d in DEVIATIONS
                                 if (d.subject == subject or subject in d.also) and d.loss == loss
                                 and d.applies(kwargs, fmt)]
    return list(memo[(subject, loss)])
