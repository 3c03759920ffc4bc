"""The losses of torch.nn.functional, exactly, with torch's argument names, defaults and semantics.

cross_entropy, nll_loss, binary_cross_entropy, binary_cross_entropy_with_logits and kl_div. Every result is an
``Exact`` (or nested lists of them for ``reduction="none"``) with its exact gradient with respect to ``input`` and
its condition number kappa = sum_j |x_j df/dx_j| over ``input`` (targets, weights and pos_weight are exact data
of the problem: hard labels are exact, and the input is what the computation perturbs).

Special values follow NUMERICS.md: limits in the extended reals where they exist, NaN where none does, an
exact-zero probability or weight contributes nothing (0 * log 0 = 0, a masked class with zero target mass), a
mean over zero total weight is 0/0 = NaN, and so is a mean over an input of no element (torch's result too). Sums
are built with ``expr.nsum``, which collects multiples of one node with exact coefficients: terms of opposite
class weights cancel exactly (an exact zero is +0.0, NUMERICS.md "The sign of an exact zero") instead of raising.
binary_cross_entropy refuses a target outside [0, 1], as torch does. Gradients are structural, as autograd's are:
an input that does not enter the result (every target ignored) has derivative 0 even where the value is NaN; a NaN
result has a NaN condition number. The torch-only conventions (the -100 clamp of BCELoss's log, softplus's
threshold) live in ``oracles.torch_variants``.

Stability bounds (NUMERICS.md "stable" rung), derived from the reference stable algorithm with pairwise
summation, are in ``oracles.bounds``.
"""

from __future__ import annotations

import math

from mpmath import libmp

from . import expr
from . import extended as X
from .exact import Exact, ExactTree
from .expr import ONE, ZERO, Value
from .fast import attempt
from .functions import shared_rows, sigmoid_value, softplus_value
from .results import kappa_of
from .tensors import (
    REDUCTIONS,
    OracleInputError,
    TensorLike,
    broadcast_index,
    broadcast_shape,
    legacy_reduction,
    numel,
    read_indices,
    read_values,
    shape_and_flat,
    slices_along,
    unflatten,
    value_of,
)

INF, NINF, NAN = math.inf, -math.inf, math.nan

__all__ = ["cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
           ]

# --------------------------------------------------------------------------------------------------
# assembling results


class _Out:
    """One output element: its value and, lazily, (grad dict over input, target grad dict)."""

    __slots__ = ("value", "grad")

    def __init__(self, value, grad):
        self.value = value
        self.grad = grad  # () -> {flat input index: V}


def _finish(outs, out_shape, reduction, denom, in_shape, in_vals, total=None):
    """Reduce per-element outputs and wrap them as Exact results.

    ``denom``: for "mean", the divisor (a V); other reductions ignore it. ``total``: the sum of the values when
    the caller has it in a better-structured form (the same number)."""

    def wrap(value, grad):
        return _exact(value, in_shape, grad, in_vals, nan=X.is_nan(value))

    if reduction == "none":
        return unflatten(out_shape, [wrap(o.value, o.grad) for o in outs])
    if total is None:
        total = X.total([o.value for o in outs])
    scale = ONE
    undefined = False
    if reduction in ("mean", "batchmean"):
        # a mean over a total weight of exactly zero is undefined (NaN), whatever the numerator: label smoothing
        # can make it nonzero when every target's class weighs 0, but there is nothing to average over
        undefined = X.is_zero(denom)
        total = NAN if undefined else X.div(total, denom)
        scale = denom

    def merged():
        if undefined:
            # the gradient of an undefined value is undefined (NaN) in every component the loss reads, not the
            # numerator's gradient divided by 0 (which gave +-inf where label smoothing makes it nonzero); an
            # element it does not read (an ignored row) has no entry: its gradient is 0, as for any unread input
            # (torch: NaN and 0 there too)
            return {k: NAN for o in outs for k in o.grad()}
        acc = {}
        for o in outs:
            for k, g in o.grad().items():
                acc[k] = X.add(acc[k], g) if k in acc else g
        if scale is not ONE:
            acc = {k: X.div(g, scale) for k, g in acc.items()}
        return acc

    return wrap(total, merged)


def _exact(value, in_shape, grad_fn, in_vals, nan=False):
    def grad():
        entries = grad_fn()
        z = Exact(ZERO)
        flat = [z] * numel(in_shape)
        for k, g in entries.items():
            flat[k] = Exact(g)
        return unflatten(in_shape, flat)

    def kappa():
        if nan:
            return Exact(NAN)
        return kappa_of([(in_vals[k], g) for k, g in grad_fn().items()])

    return Exact(value, grad_fn=grad, kappa_fn=kappa, entries_fn=grad_fn)


def _number(x, name):
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise OracleInputError(f"{name} must be a number, got {x!r}")
    return x


def _class_layout(input):
    in_shape, vals = read_values(input, "input")
    if len(in_shape) == 0:
        raise OracleInputError("input must have at least 1 dimension (the classes)")
    cd = 0 if len(in_shape) == 1 else 1
    C = in_shape[cd]
    out_shape = tuple(s for d, s in enumerate(in_shape) if d != cd)
    rows = slices_along(in_shape, cd)
    return in_shape, vals, cd, C, out_shape, rows


def _class_weights(weight, C):
    if weight is None:
        return None
    w_shape, w = read_values(weight, "weight")
    if w_shape != (C,):
        raise OracleInputError(f"weight must have shape ({C},) (one per class), got {w_shape}")
    return w


def _index_targets(target, out_shape, C, ignore_index):
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise OracleInputError(f"ignore_index must be an integer, got {ignore_index!r}")
    t_shape, ts = read_indices(target, "target")
    if t_shape != out_shape:
        raise OracleInputError(
            f"target shape {t_shape} does not match the input: expected {out_shape} for class indices "
            "or the input's own shape for probabilities"
        )
    for t in ts:
        if t != ignore_index and not 0 <= t < C:
            raise OracleInputError(f"target {t} is out of bounds for {C} classes")
    return ts


# --------------------------------------------------------------------------------------------------
# cross_entropy / nll_loss


def cross_entropy(input: TensorLike, target: TensorLike, weight: TensorLike | None = None,
                  size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> ExactTree:
    """torch.nn.functional.cross_entropy: class-index targets (with ``ignore_index``) or probability targets
    (same shape as ``input``), ``weight`` per class, ``label_smoothing`` in [0, 1], shapes (C), (N, C),
    (N, C, d1, ...)."""
    fast = attempt("cross_entropy", cross_entropy, input=input, target=target, weight=weight, size_average=size_average,
                 ignore_index=ignore_index, reduce=reduce, reduction=reduction, label_smoothing=label_smoothing)
    if fast is not None:
        return fast
    reduction = legacy_reduction(size_average, reduce, reduction)
    eps = _number(label_smoothing, "label_smoothing")
    if not 0.0 <= eps <= 1.0:
        raise OracleInputError(f"label_smoothing must be in [0, 1], got {eps!r}")
    in_shape, vals, cd, C, out_shape, rows = _class_layout(input)
    w = _class_weights(weight, C)
    t_shape, _ = shape_and_flat(target, "target")
    eps_n = value_of(float(eps))
    one_m_eps = ONE - eps_n
    eps_c = eps_n / expr.const(libmp.from_int(C)) if eps and C else ZERO
    wc = (lambda c: w[c]) if w is not None else (lambda c: ONE)
    rowobjs = shared_rows([[vals[k] for k in idx] for idx in rows])

    if t_shape == in_shape and in_shape != out_shape:
        return _ce_prob(in_shape, vals, rows, rowobjs, C, out_shape, target, wc, eps_n, one_m_eps, eps_c,
                        reduction)

    ts = _index_targets(target, out_shape, C, ignore_index)
    w_row = X.total([wc(c) for c in range(C)]) if eps else None
    outs, wsum = [], []
    for n, (idx, row) in enumerate(zip(rows, rowobjs)):
        t = ts[n]
        if t == ignore_index:
            outs.append(_Out(ZERO, dict))
            continue
        wt = wc(t)
        wsum.append(wt)
        nll = X.mul(wt, X.neg(row.log_softmax(t)))
        parts = [X.mul(one_m_eps, nll)]
        if eps:
            smooth = X.total([X.mul(wc(c), X.neg(row.log_softmax(c))) for c in range(C)])
            parts.append(X.mul(eps_c, smooth))
        value = X.total(parts)

        def grad(idx=idx, row=row, t=t, wt=wt):
            g = {}
            for c, k in enumerate(idx):
                s = row.softmax(c)
                gc = X.mul(X.mul(one_m_eps, wt), X.neg(row.delta_minus_softmax(t, c)))
                if eps:  # s W - w_c = s (W - w_c) - w_c (1 - s): no cancellation of 1 - s when s -> 1
                    gc = X.add(gc, X.mul(eps_c, X.sub(X.mul(s, X.sub(w_row, wc(c))),
                                                      X.mul(wc(c), row.one_minus_softmax(c)))))
                g[k] = gc
            return g

        outs.append(_Out(value, grad))
    denom = X.total(wsum)
    return _finish(outs, out_shape, reduction, denom, in_shape, vals)


def _ce_prob(in_shape, vals, rows, rowobjs, C, out_shape, target, wc, eps_n, one_m_eps, eps_c, reduction):
    _, tv = read_values(target, "target")
    for t in tv:
        if X.is_finite(t) and X.sign(t) < 0 or t == NINF:
            raise OracleInputError("target holds a negative probability")
    smoothing = not eps_n.is_zero
    tgt = [X.add(X.mul(t, one_m_eps), eps_c) if smoothing else t for t in tv]
    outs = []
    for idx, row in zip(rows, rowobjs):
        value = X.total([X.mul(X.mul(wc(c), tgt[k]), X.neg(row.log_softmax(c))) for c, k in enumerate(idx)])

        def grad(idx=idx, row=row):
            # sum_k w_k t_k (s_c - [k == c]) = s_c * (mass of the other classes) - w_c t_c (1 - s_c)
            wt = [X.mul(wc(c), tgt[k]) for c, k in enumerate(idx)]
            exact = all(isinstance(m, expr.Node) and m.is_exact for m in wt)
            mass = X.total(wt) if exact else None
            if exact and X.is_zero(mass):  # s_c * 0 - w_c t_c: exactly, however s_c is (opposite weights)
                return {k: X.neg(wt[c]) for c, k in enumerate(idx)}
            g = {}
            for c, k in enumerate(idx):
                # the other classes' mass: an exact difference of exact constants in O(1), else summed afresh
                others = X.sub(mass, wt[c]) if exact else X.total([m for j, m in enumerate(wt) if j != c])
                g[k] = X.sub(X.mul(row.softmax(c), others), X.mul(wt[c], row.one_minus_softmax(c)))
            return g


        outs.append(_Out(value, grad))
    # "mean" divides by the number of output elements; an input of no element at all (shape (0,), (2, 0), ...)
    # is a mean over nothing, NaN, as torch's sum / (numel / C) gives (0/0 there too)
    denom = _count(len(rows)) if numel(in_shape) else ZERO
    return _finish(outs, out_shape, reduction, denom, in_shape, vals)


def nll_loss(input: TensorLike, target: TensorLike, weight: TensorLike | None = None,
             size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None,
             reduction: str = "mean") -> ExactTree:
    """torch.nn.functional.nll_loss: -weight[t] * input[t] per element; "mean" divides by the total weight of
    the targets that are not ignored (0/0 = NaN when every target is ignored)."""
    fast = attempt("nll_loss", nll_loss, input=input, target=target, weight=weight, size_average=size_average,
                 ignore_index=ignore_index, reduce=reduce, reduction=reduction)
    if fast is not None:
        return fast
    reduction = legacy_reduction(size_average, reduce, reduction)
    in_shape, vals, cd, C, out_shape, rows = _class_layout(input)
    w = _class_weights(weight, C)
    ts = _index_targets(target, out_shape, C, ignore_index)
    outs, wsum = [], []
    for n, idx in enumerate(rows):
        t = ts[n]
        if t == ignore_index:
            outs.append(_Out(ZERO, dict))
            continue
        wt = w[t] if w is not None else ONE
        wsum.append(wt)
        k = idx[t]
        value = X.mul(wt, X.neg(vals[k]))
        outs.append(_Out(value, lambda k=k, wt=wt: {k: X.neg(wt)}))
    return _finish(outs, out_shape, reduction, X.total(wsum), in_shape, vals)


# --------------------------------------------------------------------------------------------------
# binary losses


def _same_shape_target(in_shape, target):
    t_shape, tv = read_values(target, "target")
    if t_shape != in_shape:
        raise OracleInputError(f"target shape {t_shape} does not match input shape {in_shape}")
    for t in tv:
        if (X.is_finite(t) and X.sign(t) < 0) or t == NINF:
            raise OracleInputError("target holds a negative probability")
    return tv


def _broadcast_to(obj, in_shape, name):
    if obj is None:
        return None
    shape, v = read_values(obj, name)
    if broadcast_shape(shape, in_shape, f"{name} and input shapes") != tuple(in_shape):
        raise OracleInputError(f"{name} of shape {shape} does not broadcast to the input's {in_shape}")
    return [v[broadcast_index(k, in_shape, shape)] for k in range(numel(in_shape))]


def _count(n):
    return expr.const(libmp.from_int(n)) if n else ZERO


def _log_nonneg(v):
    """log of a value >= 0 (a const, an expression or +inf): -inf at 0."""
    if X.is_nan(v):
        return NAN
    if v == INF:
        return INF
    if X.is_zero(v):
        return NINF
    return expr.log(v)


def binary_cross_entropy(input: TensorLike, target: TensorLike, weight: TensorLike | None = None,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> ExactTree:
    """torch.nn.functional.binary_cross_entropy, the mathematical loss -w (y log p + (1 - y) log(1 - p)),
    with 0 * log 0 = 0 (torch's clamp of the log at -100 is ``torch_variants.binary_cross_entropy``). Input and
    target must lie in [0, 1], as torch requires of both (a NaN input gives NaN; a NaN target is refused)."""
    fast = attempt("binary_cross_entropy", binary_cross_entropy, input=input, target=target, weight=weight,
                   size_average=size_average, reduce=reduce, reduction=reduction)
    if fast is not None:
        return fast
    return bce_terms(input, target, weight, size_average, reduce, reduction, clamp=None)


def bce_terms(input: TensorLike, target: TensorLike, weight: TensorLike | None, size_average: bool | None,
              reduce: bool | None, reduction: str, clamp: Value | None) -> ExactTree:
    reduction = legacy_reduction(size_average, reduce, reduction)
    in_shape, ps = read_values(input, "input")
    for p in ps:
        if X.is_nan(p):
            continue
        if isinstance(p, float) or X.sign(p) < 0 or X.sign(p - ONE) > 0:
            raise OracleInputError("all elements of input should be between 0 and 1")
    ys = _same_shape_target(in_shape, target)
    for y in ys:  # torch refuses these too (binary_cross_entropy's check; NaN is not in [0, 1] either)
        if X.is_nan(y) or y == INF or X.sign(X.sub(y, ONE)) > 0:
            raise OracleInputError("all elements of target should be between 0 and 1")
    ws = _broadcast_to(weight, in_shape, "weight")

    def logc(v):  # log, with torch's clamp when asked: max(log v, clamp)
        lv = _log_nonneg(v)
        if clamp is None or X.is_nan(lv):
            return lv, False
        if lv == NINF or X.sign(X.sub(lv, clamp)) < 0:
            return clamp, True
        return lv, False

    outs = []
    for k, (p, y) in enumerate(zip(ps, ys)):
        w = ws[k] if ws is not None else ONE
        if X.is_nan(p) or X.is_nan(y):
            outs.append(_Out(NAN, lambda k=k: {k: NAN}))
            continue
        q = ONE - p  # exact
        omy = X.sub(ONE, y)
        lp, cp = logc(p)
        lq, cq = logc(q)
        a = ZERO if X.is_zero(y) else X.mul(y, lp)
        b = ZERO if X.is_zero(omy) else X.mul(omy, lq)
        value = X.mul(w, X.neg(X.add(a, b)))

        def grad(k=k, p=p, q=q, y=y, omy=omy, w=w, cp=cp, cq=cq):
            da = ZERO if X.is_zero(y) or cp else X.div(y, p)
            db = ZERO if X.is_zero(omy) or cq else X.div(omy, q)
            return {k: X.mul(w, X.neg(X.sub(da, db)))}


        outs.append(_Out(value, grad))
    return _finish(outs, in_shape, reduction, _count(numel(in_shape)), in_shape, ps)


def binary_cross_entropy_with_logits(input: TensorLike, target: TensorLike, weight: TensorLike | None = None,
                                     size_average: bool | None = None, reduce: bool | None = None,
                                     reduction: str = "mean", pos_weight: TensorLike | None = None) -> ExactTree:
    """torch.nn.functional.binary_cross_entropy_with_logits:
    w (pos_weight * y * softplus(-x) + (1 - y) * softplus(x)), ``weight`` and ``pos_weight`` broadcast to the
    input (pos_weight along the last, class, dimension)."""
    fast = attempt("binary_cross_entropy_with_logits", binary_cross_entropy_with_logits, input=input, target=target,
                   weight=weight, size_average=size_average, reduce=reduce, reduction=reduction,
                   pos_weight=pos_weight)
    if fast is not None:
        return fast
    reduction = legacy_reduction(size_average, reduce, reduction)
    in_shape, xs = read_values(input, "input")
    ys = _same_shape_target(in_shape, target)
    ws = _broadcast_to(weight, in_shape, "weight")
    pws = _broadcast_to(pos_weight, in_shape, "pos_weight")
    outs = []
    for k, (x, y) in enumerate(zip(xs, ys)):
        w = ws[k] if ws is not None else ONE
        pw = pws[k] if pws is not None else ONE
        omy = X.sub(ONE, y)
        pos = ZERO if X.is_zero(y) else X.mul(X.mul(pw, y), softplus_value(X.neg(x)))
        negt = ZERO if X.is_zero(omy) else X.mul(omy, softplus_value(x))
        value = X.mul(w, X.add(pos, negt))

        def grad(k=k, x=x, y=y, omy=omy, w=w, pw=pw):
            # w ((1 - y) s(x) - pw y s(-x)) written as an exact part plus a tail, with the weight distributed:
            # x >= 0: w (1 - y) - w s(-x) (1 - y + pw y); x < 0: w s(x) (1 - y + pw y) - w pw y. The same
            # number, but where s(-+x) is far below the precision cap (x = 65504) and the exact part is a
            # rounding boundary, the boundary cancels exactly and the tail's sign decides (Exact's boundary rule)
            a = ZERO if X.is_zero(y) else X.mul(pw, y)
            b = ZERO if X.is_zero(omy) else omy
            if X.is_nan(x) or isinstance(x, float):  # +-inf, NaN: the extended reals as before
                sa = ZERO if X.is_zero(a) else X.mul(a, sigmoid_value(X.neg(x)))
                sb = ZERO if X.is_zero(b) else X.mul(b, sigmoid_value(x))
                return {k: X.mul(w, X.sub(sb, sa))}
            both = X.add(a, b)
            if X.sign(x) >= 0:
                exact, tail = X.mul(w, b), X.mul(X.mul(w, both), sigmoid_value(X.neg(x)))
                return {k: X.sub(exact, tail)}
            exact, tail = X.mul(w, a), X.mul(X.mul(w, both), sigmoid_value(x))
            return {k: X.sub(tail, exact)}


        outs.append(_Out(value, grad))
    return _finish(outs, in_shape, reduction, _count(numel(in_shape)), in_shape, xs)


# --------------------------------------------------------------------------------------------------
# kl_div


def kl_div(input: TensorLike, target: TensorLike, size_average: bool | None = None, reduce: bool | None = None,
           reduction: str = "mean", log_target: bool = False) -> ExactTree:
    """torch.nn.functional.kl_div: pointwise target * (log target - input) (``log_target``: exp(target) *
    (target - input)), input being log-probabilities; reductions none, sum, mean (over elements) and
    batchmean (over the first dimension)."""
    fast = attempt("kl_div", kl_div, input=input, target=target, size_average=size_average, reduce=reduce,
                   reduction=reduction, log_target=log_target)
    if fast is not None:
        return fast
    reduction = legacy_reduction(size_average, reduce, reduction, REDUCTIONS + ("batchmean",))
    in_shape, xs = read_values(input, "input")
    t_shape, ts = read_values(target, "target")
    if t_shape != in_shape:
        raise OracleInputError(f"target shape {t_shape} does not match input shape {in_shape}")
    if not log_target:
        for t in ts:
            if (X.is_finite(t) and X.sign(t) < 0) or t == NINF:
                raise OracleInputError("target holds a negative probability")
    outs = []
    for k, (x, t) in enumerate(zip(xs, ts)):
        if log_target:
            et = ZERO if t == NINF else (INF if t == INF else (NAN if X.is_nan(t) else expr.exp(t)))
            # a target of log-probability -inf has zero mass: it contributes nothing, whatever the input (the
            # limit of e**t (t - x) as t -> -inf is 0; torch computes 0 * -inf = NaN there, its deviation)
            value = NAN if X.is_nan(x) or X.is_nan(t) else (ZERO if t == NINF else X.mul(et, X.sub(t, x)))
            grad = lambda k=k, et=et: {k: X.neg(et)}  # noqa: E731
        else:
            lt = _log_nonneg(t)
            value = NAN if X.is_nan(x) else (ZERO if X.is_zero(t) else X.mul(t, X.sub(lt, x)))
            grad = lambda k=k, t=t: {k: X.neg(t)}  # noqa: E731
        outs.append(_Out(value, grad))
    if reduction == "batchmean":
        denom = _count(in_shape[0]) if in_shape else ONE
    else:
        denom = _count(numel(in_shape))
    total = None
    if log_target and reduction != "none":
        # sum_i e**t_i (t_i - x_i) grouped by equal targets, e**t sum_i (t - x_i): the inner sums of exact numbers
        # are exact, so a total that is exactly 0 is seen to be (groups with distinct t are e**t times nonzero
        # rationals, and sum_g c_g e**t_g != 0 for distinct algebraic t_g unless every c_g is: Lindemann-Weierstrass)
        groups: dict[object, tuple[expr.Node, list[Value]]]  # key: the exact target, or the node's identity
        groups, rest = {}, []
        for x, t, o in zip(xs, ts, outs):
            if isinstance(t, float) or isinstance(x, float) or X.is_nan(x) or X.is_nan(t):
                rest.append(o.value)  # special values: as before
            else:
                key = t.value if getattr(t, "is_const", False) else id(t)  # equal exact inputs, one group
                groups.setdefault(key, (t, []))[1].append(X.sub(t, x))
        parts = [X.mul(expr.exp(t), X.total(d)) for t, d in groups.values()]
        total = X.total(parts + rest)
    return _finish(outs, in_shape, reduction, denom, in_shape, xs, total=total)
