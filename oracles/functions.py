"""The building blocks, exactly: logsumexp, softmax, log_softmax, sigmoid, logsigmoid, softplus, xlogy.

Each takes torch's arguments and returns an ``Exact`` (0-d output) or nested lists of them, each carrying its
exact gradient with respect to ``input`` (shaped like ``input``) and its condition number
kappa = sum_j |x_j * d f / d x_j| over ``input``.

The formulations keep every subtraction exact (x_j - max is a difference of binary constants) and use log1p for
the sum of the non-maximal terms, so the balls stay tight for the confident and the extreme regimes alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction

from . import (
    expr,
    fast_elementwise,  # noqa: F401  (registers the elementwise fast paths with oracles.fast)
)
from . import extended as X
from .exact import Exact, ExactTree
from .expr import ONE, ZERO, Node, Value
from .fast import attempt
from .formats import to_mpf
from .results import kappa_of, make_result
from .tensors import (
    OracleInputError,
    TensorLike,
    broadcast_index,
    broadcast_shape,
    normalize_dim,
    numel,
    read_values,
    slices_along,
    softmax_dim,
    unflatten,
    value_of,
)

INF, NINF, NAN = math.inf, -math.inf, math.nan

__all__ = ["logsumexp", "softmax", "log_softmax", "sigmoid", "logsigmoid", "softplus", "xlogy", "Row", "VJP",
           "shared_rows", "exclusive_sums", "softmax_vjp", "log_softmax_vjp"]

# --------------------------------------------------------------------------------------------------
# the softmax family: one slice along the class dimension


class Row:
    """log-sum-exp of one slice, in the extended reals, with the pieces shared by its relatives."""

    def __init__(self, xs):
        self.xs = xs
        self.nan = any(X.is_nan(x) for x in xs)
        self.pinf = [j for j, x in enumerate(xs) if x == INF]
        self.fin = [j for j, x in enumerate(xs) if X.is_finite(x)]
        self.regular = not self.nan and not self.pinf and bool(self.fin)
        if not self.regular:
            return
        jmax = self.fin[0]
        for j in self.fin[1:]:
            if X.cmp_const(xs[j], xs[jmax]) > 0:
                jmax = j
        self.jmax = jmax
        m = xs[jmax]
        self.m = m
        self.d = {j: xs[j] - m for j in self.fin}  # exact constants <= 0
        self.e = {j: expr.exp(self.d[j]) for j in self.fin}
        rest = expr.nsum(self.e[j] for j in self.fin if j != jmax)
        self.rest = rest
        self.denom = expr.nsum([ONE, rest])
        self.l1p = expr.log1p(rest)

    def one_minus_softmax(self, i: int) -> Value:
        """1 - softmax_i, without the cancellation of 1 - s when s is close to 1: the sum of the other
        terms over the denominator."""
        if not self.regular:
            return X.sub(ONE, self.softmax(i))
        if i not in self.e:
            return ONE
        if i == self.jmax:
            others = self.rest
        else:
            # denom - e_i >= 1 (e_i <= 1 = e_max): no cancellation to fear; built unflattened, O(1) per class
            others = expr.Node("sum", (self.denom, -self.e[i]))
        return others / self.denom

    def _abs_x_e(self):
        """excl(i) = sum over the finite classes j != i of |x_j| e_j (kappa's shared part), built once."""
        if getattr(self, "_axe", None) is None:
            pos = {j: n for n, j in enumerate(self.fin)}
            terms = [None if X.is_zero(self.xs[j]) else expr.absval(self.xs[j]) * self.e[j] for j in self.fin]
            excl = exclusive_sums(terms)
            self._axe = lambda i: excl(pos[i])
        return self._axe

    def log_softmax_kappa(self, i: int) -> Value | None:
        """kappa of log_softmax_i = sum_j |x_j (delta_ij - s_j)| = |x_i| (1 - s_i) + sum_{j != i} |x_j| s_j,
        O(log C) nodes per class (``exclusive_sums``) instead of a sum over the row; None for an irregular
        row (the caller sums the pairs)."""
        if not self.regular:
            return None
        if i not in self.e:  # x_i = -inf: its own derivative 1 - s_i = 1 meets |x_i| = inf
            return INF
        others = self._abs_x_e()(i)
        k = others / self.denom if others is not None else ZERO
        if not X.is_zero(self.xs[i]):
            k = X.add(expr.absval(self.xs[i]) * self.one_minus_softmax(i), k)
        return k

    def delta_minus_softmax(self, i: int, j: int) -> Value:
        """[i == j] - softmax_j."""
        return self.one_minus_softmax(j) if i == j else X.neg(self.softmax(j))

    def lse(self) -> Value:
        if self.nan:
            return NAN
        if self.pinf:
            return INF
        if not self.fin:
            return NINF
        return self.m + self.l1p

    def log_softmax(self, i: int) -> Value:
        if self.nan:
            return NAN
        if self.pinf:
            if i in self.pinf:
                return ZERO if len(self.pinf) == 1 else NAN
            return NINF
        if not self.fin:
            return NAN
        if i not in self.d:
            return NINF
        return self.d[i] - self.l1p

    def softmax(self, i: int) -> Value:
        if self.nan:
            return NAN
        if self.pinf:
            if i in self.pinf:
                return ONE if len(self.pinf) == 1 else NAN
            return ZERO
        if not self.fin:
            return NAN
        if i not in self.e:
            return ZERO
        return self.e[i] / self.denom


def shared_rows(rows: Sequence[Sequence[Value]]) -> list[Row]:
    """One ``Row`` per slice, where slices with the same differences d_j = x_j - max (a common shift apart, or
    equal) share their exp, sum and log1p nodes: their log_softmax values are then the same expressions, so
    terms of opposite weight from different slices cancel exactly in a sum (``expr.nsum`` collects multiples of
    one node), instead of leaving two equal balls to straddle zero forever."""
    out: list[Row] = []
    seen: dict[tuple, Row] = {}
    for xs in rows:
        row = Row(list(xs))
        if row.regular:
            key = tuple(row.d[j].value if j in row.d else "-inf" for j in range(len(row.xs)))
            first = seen.setdefault(key, row)
            if first is not row:
                row.e, row.rest, row.denom, row.l1p = first.e, first.rest, first.denom, first.l1p
        out.append(row)
    return out


def exclusive_sums(terms: Sequence[Node | None]) -> Callable[[int], Node | None]:
    """For nonnegative nodes t_0 .. t_{n-1} (None for an exact zero): a function i -> sum_{j != i} t_j (a node,
    or None when empty), each a sum of O(log n) shared partial sums of a balanced tree: no cancellation (as
    total - t_i would have) and O(n log n) nodes for all i instead of O(n^2)."""
    size = 1
    while size < len(terms):
        size *= 2
    tree: list[Node | None] = [None] * (2 * size)
    tree[size:size + len(terms)] = terms
    for p in range(size - 1, 0, -1):
        a, b = tree[2 * p], tree[2 * p + 1]
        tree[p] = a if b is None else b if a is None else expr.Node("sum", (a, b))

    def excl(i):
        parts, p = [], size + i
        while p > 1:
            if tree[p ^ 1] is not None:
                parts.append(tree[p ^ 1])
            p //= 2
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else expr.Node("sum", tuple(parts))

    return excl


def _rows(input, dim, name):
    shape, vals = read_values(input, "input")
    if dim is None:
        dim = softmax_dim(len(shape))
    d = normalize_dim(dim, len(shape))
    groups = slices_along(shape, d) if shape else [[0]]
    rows = [(idx, Row([vals[k] for k in idx])) for idx in groups]
    return shape, vals, d, rows


def logsumexp(input: TensorLike, dim: int | list[int] | tuple[int, ...] | None = None,
              keepdim: bool = False) -> ExactTree:
    """log(sum(exp(input))) over ``dim`` (an int, a tuple of ints, or None for every dimension)."""
    fast = attempt("logsumexp", logsumexp, input=input, dim=dim, keepdim=keepdim)
    if fast is not None:
        return fast
    shape, vals = read_values(input, "input")
    if dim is None or dim == () or dim == []:
        dims = list(range(len(shape)))
    elif isinstance(dim, (list, tuple)):
        dims = sorted({normalize_dim(d, len(shape)) for d in dim})
    else:
        dims = [normalize_dim(dim, len(shape))]
    if not shape:
        dims = []
    # group flat indices by the coordinates outside ``dims``
    groups: dict[tuple[int, ...], list[int]] = {}
    for k in range(numel(shape)):
        rem, coord = k, []
        for s in reversed(shape):
            coord.append(rem % s)
            rem //= s
        coord.reverse()
        key = tuple(c for d, c in enumerate(coord) if d not in dims)
        groups.setdefault(key, []).append(k)
    if keepdim:
        out_shape = tuple(1 if d in dims else s for d, s in enumerate(shape))
    else:
        out_shape = tuple(s for d, s in enumerate(shape) if d not in dims)
    outs = []
    for key in sorted(groups) if groups else []:
        idx = groups[key]
        row = Row([vals[k] for k in idx])

        def grad(idx=idx, row=row):
            return {k: row.softmax(j) for j, k in enumerate(idx)}

        def kpairs(idx=idx, row=row):
            return [(vals[k], row.softmax(j)) for j, k in enumerate(idx)]

        outs.append(make_result(row.lse(), shape, grad, kpairs))
    if not groups:  # an empty reduction: log(0)
        outs = [Exact(NINF)] * max(numel(out_shape), 1)
    return unflatten(out_shape, outs)


def softmax(input: TensorLike, dim: int | None = None) -> ExactTree:
    """exp(x_i) / sum_j exp(x_j) along ``dim`` (torch's implicit dim when None)."""
    fast = attempt("softmax", softmax, input=input, dim=dim)
    if fast is not None:
        return fast
    shape, vals, _, rows = _rows(input, dim, "softmax")
    flat: list[Exact | None] = [None] * numel(shape)
    for idx, row in rows:
        for i, k in enumerate(idx):
            def grad(i=i, idx=idx, row=row):
                si = row.softmax(i)
                return {kk: X.mul(si, row.delta_minus_softmax(i, j)) for j, kk in enumerate(idx)}

            def kpairs(i=i, idx=idx, row=row):
                si = row.softmax(i)
                return [(vals[kk], X.mul(si, row.delta_minus_softmax(i, j))) for j, kk in enumerate(idx)]

            def kappa(i=i, row=row, kpairs=kpairs):  # s_i times log_softmax_i's kappa (0 where s_i = 0)
                kl = row.log_softmax_kappa(i)
                if kl is None:
                    return kappa_of(kpairs())
                return Exact(ZERO) if i not in row.e else Exact(X.mul(row.softmax(i), kl))

            flat[k] = make_result(row.softmax(i), shape, grad, kappa_fn=kappa)
    return unflatten(shape, flat) if shape else flat[0]


def log_softmax(input: TensorLike, dim: int | None = None) -> ExactTree:
    """x_i - logsumexp(x) along ``dim`` (torch's implicit dim when None)."""
    fast = attempt("log_softmax", log_softmax, input=input, dim=dim)
    if fast is not None:
        return fast
    shape, vals, _, rows = _rows(input, dim, "log_softmax")
    flat: list[Exact | None] = [None] * numel(shape)
    for idx, row in rows:
        for i, k in enumerate(idx):
            def grad(i=i, idx=idx, row=row):
                return {kk: row.delta_minus_softmax(i, j) for j, kk in enumerate(idx)}

            def kpairs(i=i, idx=idx, row=row):
                return [(vals[kk], row.delta_minus_softmax(i, j)) for j, kk in enumerate(idx)]

            def kappa(i=i, row=row, kpairs=kpairs):
                kl = row.log_softmax_kappa(i)
                return kappa_of(kpairs()) if kl is None else Exact(kl)

            flat[k] = make_result(row.log_softmax(i), shape, grad, kappa_fn=kappa)
    return unflatten(shape, flat) if shape else flat[0]


# --------------------------------------------------------------------------------------------------
# elementwise


def sigmoid_value(x: Value) -> Value:
    """sigma(x) = 1 / (1 + e^-x), as an extended-real value, without cancellation for either sign."""
    if X.is_nan(x):
        return NAN
    if x == INF:
        return ONE
    if x == NINF:
        return ZERO
    if X.is_zero(x):  # exactly 1/2: a difference of sigmoids at 0 (BCE-with-logits' gradient) can be exactly 0
        return ONE / expr.nsum([ONE, ONE])
    if X.sign(x) >= 0:
        return ONE / expr.nsum([ONE, expr.exp(-x)])
    ex = expr.exp(x)
    return ex / expr.nsum([ONE, ex])


def softplus_value(x: Value, beta: Value = ONE, inv_beta: Value = ONE) -> Value:
    """(1/beta) log(1 + e^(beta x)) in the extended reals."""
    if X.is_nan(x):
        return NAN
    bx = X.mul(beta, x)
    if bx == INF:
        return X.mul(inv_beta, INF)
    if bx == NINF:
        return ZERO
    if X.sign(bx) <= 0:
        return inv_beta * expr.log1p(expr.exp(bx))
    return x + inv_beta * expr.log1p(expr.exp(-bx))


def _elementwise(input, value_fn, deriv_fn):
    shape, vals = read_values(input, "input")
    flat = []
    for k, x in enumerate(vals):
        def grad(k=k, x=x):
            return {k: deriv_fn(x)}

        def kpairs(x=x):
            return [(x, deriv_fn(x))]

        flat.append(make_result(value_fn(x), shape, grad, kpairs))
    return unflatten(shape, flat)


def sigmoid(input: TensorLike) -> ExactTree:
    """1 / (1 + exp(-x)) elementwise; derivative sigma(x) sigma(-x)."""
    fast = attempt("sigmoid", sigmoid, input=input)
    if fast is not None:
        return fast
    return _elementwise(input, sigmoid_value, lambda x: X.mul(sigmoid_value(x), sigmoid_value(X.neg(x))))


def logsigmoid(input: TensorLike) -> ExactTree:
    """log(sigma(x)) = -softplus(-x) elementwise; derivative sigma(-x)."""
    fast = attempt("logsigmoid", logsigmoid, input=input)
    if fast is not None:
        return fast
    return _elementwise(input, lambda x: X.neg(softplus_value(X.neg(x))), lambda x: sigmoid_value(X.neg(x)))


def _beta_nodes(beta):
    if isinstance(beta, bool) or not isinstance(beta, (int, float, str)) and not hasattr(beta, "_mpf_"):
        raise OracleInputError(f"beta must be a number, got {beta!r}")
    b = value_of(beta, "beta")
    if not X.is_finite(b) or X.is_zero(b):
        raise OracleInputError(f"beta must be finite and nonzero, got {beta!r}")
    return b, ONE / b


def softplus(input: TensorLike, beta: float = 1.0, threshold: float = 20.0) -> ExactTree:
    """The exact softplus (1/beta) log(1 + exp(beta x)) elementwise; derivative sigma(beta x).

    ``threshold`` is accepted for torch's signature and ignored: torch's linear shortcut above it is the
    named variant ``oracles.torch_variants.softplus``."""
    fast = attempt("softplus", softplus, input=input, beta=beta, threshold=threshold)
    if fast is not None:
        return fast
    b, ib = _beta_nodes(beta)
    return _elementwise(input, lambda x: softplus_value(x, b, ib), lambda x: sigmoid_value(X.mul(b, x)))


def xlogy(input: TensorLike, other: TensorLike) -> ExactTree:
    """input * log(other), with 0 * log(y) = 0 for every y but NaN (torch.xlogy); log of a negative is NaN.
    The gradient is with respect to ``input``: log(other)."""
    fast = attempt("xlogy", xlogy, input=input, other=other)
    if fast is not None:
        return fast
    xs_shape, xs = read_values(input, "input")
    ys_shape, ys = read_values(other, "other")
    shape = broadcast_shape(xs_shape, ys_shape, "input and other shapes")
    n = numel(shape)

    def logy(y):
        if X.is_nan(y):
            return NAN
        if y == INF:
            return INF
        if y == NINF:
            return NAN
        s = X.sign(y)
        if s < 0:
            return NAN
        if s == 0:
            return NINF
        return expr.log(y)

    flat = []
    for k in range(n):
        x = xs[broadcast_index(k, shape, xs_shape)]
        y = ys[broadcast_index(k, shape, ys_shape)]
        if X.is_nan(y):
            val: Value = NAN
        elif X.is_zero(x):
            val = ZERO
        else:
            val = X.mul(x, logy(y))
        kx = broadcast_index(k, shape, xs_shape)

        def grad(kx=kx, y=y):
            return {kx: logy(y)}

        def kpairs(x=x, y=y):
            return [(x, logy(y))]

        flat.append(make_result(val, xs_shape, grad, kpairs))
    return unflatten(shape, flat)


# --------------------------------------------------------------------------------------------------
# vector-Jacobian products of the softmax family: closed forms, O(C) per row instead of the O(C^2) sum of
# every output's dense gradient row


def _upstream_node(u):
    return expr.const(to_mpf(u))


def _row_vjp_generic(row, idx, upstream, entries):
    """sum_i u_i d out_i / d x over one row, term by term (rows with NaN, +inf or no finite logit)."""
    acc = {kk: [] for kk in idx}
    for i, k in enumerate(idx):
        ui = _upstream_node(upstream[k])
        for j, kk in enumerate(idx):
            acc[kk].append(X.mul(ui, entries(row, i, j)))
    return {kk: X.total(v) for kk, v in acc.items()}


def _exact_zero_vjp(row, idx, upstream):
    """The classes j whose softmax VJP s_j (u_j - ubar) is exactly 0 although no expression shows it: u_j - ubar
    = sum over the distinct finite logits v of (u_j N_v - W_v) e_v / D (N_v classes with upstream sum W_v), and
    the e_v = exp(v - max) of distinct rationals v are linearly independent over the rationals
    (Lindemann-Weierstrass), so it vanishes iff every group's mean upstream W_v / N_v equals u_j."""

    groups = {}
    for j in row.fin:
        n, w = groups.get(row.xs[j].value, (0, Fraction(0)))
        groups[row.xs[j].value] = (n + 1, w + Fraction(upstream[idx[j]]))
    means = {w / n for n, w in groups.values()}
    if len(means) != 1:
        return set()
    (m,) = means
    return {j for j in row.fin if Fraction(upstream[idx[j]]) == m}


def log_softmax_vjp(input: TensorLike, upstream: Sequence[float], dim: int | None = None) -> list[Exact | None]:
    """The exact gradient of sum_i u_i log_softmax(x)_i with respect to x (flat, one Exact per element, u flat
    like the output): g_k = u_k - s_k U per row, U the row's sum of u (exact)."""
    shape, vals, _, rows = _rows(input, dim, "log_softmax")
    out: list[Exact | None] = [None] * max(numel(shape), 1)
    for idx, row in rows:
        if not row.regular:
            g = _row_vjp_generic(row, idx, upstream, lambda r, i, j: r.delta_minus_softmax(i, j))
        else:
            U = expr.nsum(_upstream_node(upstream[k]) for k in idx)
            g = {k: X.sub(_upstream_node(upstream[k]), X.mul(row.softmax(j), U)) for j, k in enumerate(idx)}
            # the largest class: s = 1 - rest / D, so g = (u - U) + U rest / D, an exact rational plus a tail
            # whose sign shows; as u - s U, a tail like e**-(3e38) on a rational that is a rounding boundary
            # (u - U is a sum of upstream values) could not be decided at any precision
            jm = row.jmax
            g[idx[jm]] = X.add(X.sub(_upstream_node(upstream[idx[jm]]), U), X.div(X.mul(U, row.rest), row.denom))
        for k, v in g.items():
            out[k] = Exact(v)
    return out


def softmax_vjp(input: TensorLike, upstream: Sequence[float], dim: int | None = None) -> list[Exact | None]:
    """The exact gradient of sum_i u_i softmax(x)_i with respect to x (flat): g_k = s_k (u_k - ubar) per row,
    ubar = sum_i u_i s_i (0 where s_k = 0)."""
    shape, vals, _, rows = _rows(input, dim, "softmax")
    out: list[Exact | None] = [None] * max(numel(shape), 1)
    for idx, row in rows:
        if not row.regular:
            g = _row_vjp_generic(row, idx, upstream,
                                 lambda r, i, j: X.mul(r.softmax(i), r.delta_minus_softmax(i, j)))
        else:
            # u_k - ubar = sum_i (u_k - u_i) e_i / D without the cancellation of u_k - ubar when one class
            # dominates (ubar within e**-(1e48) of u_jmax, say): for the largest class the sum over the others
            # with exact coefficients; for the others (u_k - u_jmax) + (u_k rest - A), A = sum_{i != jmax} u_i e_i
            jm = row.jmax
            u = {j: _upstream_node(upstream[idx[j]]) for j in range(len(idx))}
            others = [j for j in row.fin if j != jm]
            A = expr.nsum(X.mul(u[j], row.e[j]) for j in others)
            top = expr.nsum(X.mul(X.sub(u[jm], u[j]), row.e[j]) for j in others)
            zero = _exact_zero_vjp(row, idx, upstream)
            minus_A = _opaque_neg(A)
            g = {}
            for j, k in enumerate(idx):
                if j in zero or j not in row.e:
                    g[k] = ZERO
                    continue
                num = top if j == jm else X.add(X.sub(u[j], u[jm]), X.add(_scaled(u[j], row.rest), minus_A))
                g[k] = X.mul(row.softmax(j), X.div(num, row.denom))
        for k, v in g.items():
            out[k] = Exact(v)
    return out


def _opaque_neg(total):
    """-total for the row's shared sum, kept as one node (negating a sum negates each term, and a sum holding it
    is flattened: C terms copied into every class's expression, O(C**2) for a row)."""
    if total.op == "sum" and len(total.args) > 8:
        return expr.Node("neg", (total,))
    return X.neg(total)


def _scaled(c, total):
    """c * total for an exact constant c and the row's shared sum ``total``, kept as one product: multiplying
    a sum by a constant distributes it over the terms (expr.Node.__mul__), which for every class of a row would
    build and evaluate C new sums of C terms (O(C**2): 8 to 16 s for one 432-class float64 row)."""
    if total.op == "sum" and len(total.args) > 8:
        return expr.Node("mul", (c, total))
    return X.mul(c, total)


#: closed-form vector-Jacobian products, by oracle name (measure uses them for a non-uniform upstream)
VJP = {"log_softmax": log_softmax_vjp, "softmax": softmax_vjp}
