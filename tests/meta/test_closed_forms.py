"""The oracle's closed forms agree with the definitions they replace: the softmax family's kappa built from
exclusive sums (O(log C) nodes per class) equals the sum over the row's (value, derivative) pairs, and the
closed-form vector-Jacobian products equal the sum of every output's gradient row, correctly rounded and with
the sign of zeros, on rows with ties, zeros, -inf masks, +inf and NaN."""

from __future__ import annotations

import math
import random

import mpmath
import pytest

import oracles
from lossproof.measure import vector_jacobian
from oracles import extended as X
from oracles.functions import VJP, Row, exclusive_sums
from oracles.results import kappa_of
from oracles.tensors import read_values
from subjects.torch_subject import upstream

INF, NAN = math.inf, math.nan


def _rows():
    rnd = random.Random(3)
    rows = [[0.0, -1.0], [0.0, 0.0, 0.0], [0.0, -INF, 3.0], [1000.0, 0.0, -1000.0], [5.0], [0.0, -1e-300, 1e-300],
            [-INF, -INF, 2.0], [0.0, -745.0, 1.0], [INF, 0.0], [INF, INF, 1.0], [NAN, 1.0], [-INF, -INF]]
    rows += [[rnd.choice([0.0, rnd.uniform(-50, 50), -INF, rnd.uniform(-1e4, 1e4)])
              for _ in range(rnd.randint(1, 9))] for _ in range(30)]
    return rows


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_kappa_closed_form_equals_the_sum_over_pairs(name):
    for r in _rows():
        _, vals = read_values(r, "input")
        row = Row(vals)
        for i, e in enumerate(getattr(oracles, name)(r)):
            if name == "log_softmax":
                pairs = [(vals[j], row.delta_minus_softmax(i, j)) for j in range(len(r))]
            else:
                pairs = [(vals[j], X.mul(row.softmax(i), row.delta_minus_softmax(i, j))) for j in range(len(r))]
            assert _same(e.kappa.to("float64"), kappa_of(pairs).to("float64")), (name, r, i)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_vjp_closed_form_equals_the_sum_of_gradient_rows(name):
    for r in _rows():
        for x, dim in (([r], 1), ([r, [v / 2 for v in r]], 1), ([[v] for v in r], 0)):
            n = sum(len(q) for q in x)
            up = upstream(n)
            fast = VJP[name](x, up, dim)
            slow = vector_jacobian(getattr(oracles, name)(x, dim=dim), n, up)
            for k, (a, b) in enumerate(zip(fast, slow)):
                try:
                    want = b.to("float64")
                except oracles.OraclePrecisionError:
                    # an exact zero the term-by-term sum cannot show (ties with upstreams averaging out):
                    # the closed form says 0 exactly, and the sum is within 2**-8000 of 0
                    ball = b.node.ball(9000)
                    assert a.to("float64") == 0 and a.node.is_zero, (name, x, dim, k)
                    bound = abs(mpmath.mpf(ball.mid)) + mpmath.mpf(ball.rad)
                    assert bound < mpmath.ldexp(1, -8000), (name, x, dim, k)
                    continue
                assert _same(a.to("float64"), want), (name, x, dim, k, a, b)


def test_exclusive_sums():
    from oracles.expr import const
    from oracles.formats import to_mpf

    for n in (1, 2, 3, 5, 8, 13):
        vals = [float(2 ** k) for k in range(n)]
        terms = [None if k == 2 else const(to_mpf(v)) for k, v in enumerate(vals)]
        excl = exclusive_sums(terms)
        for i in range(n):
            want = sum(v for k, v in enumerate(vals) if k not in (i, 2))
            got = excl(i)
            assert (got is None and want == 0) or oracles.Exact(got).to("float64") == want
