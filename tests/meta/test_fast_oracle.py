"""The fast oracle path (oracles/fast.py) agrees with the mpmath path, bit for bit.

What is proved here, and how:
- ``round_array`` (vectorised RN into each format) equals ``formats.round_mpf`` on every kind of hard value:
  midpoints, one binary64 ulp either side of them, subnormal boundaries, the overflow threshold.
- ``certify`` never claims a rounding that some point of the enclosure does not have (checked with exact
  rationals at the enclosure's ends).
- NumPy's exp and log1p meet the error assumptions A1/A2 of the fast path's analysis on a sample of arguments
  (evidence for the assumptions, whose margins are about 4,000 ulps; the analysis itself is in the docstring).
- On thousands of rows (random logits in every regime of NUMERICS.md, and adversarial rows built so that the exact
  result lies at chosen distances from a rounding boundary of each format, down to 2**-60 relative, subnormal
  and overflow boundaries included), every rounding the fast path decides equals the mpmath path's, for
  log_softmax, softmax, logsumexp, cross_entropy and nll_loss in float64, float32, float16 and bfloat16. The
  fallback rate (share of roundings the fast path left to mpmath) is printed per format.
- The deferred results keep the mpmath path's gradient, condition number and digits; inputs the fast path
  does not take (ints, strings, bad shapes) get the mpmath path's results and errors; flush-to-zero disables it.

Row counts: 10,000 rows under the default profile (about 30 s on one core), 100,000 under LOSSPROOF_PROFILE=thorough.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import oracles
from lossproof import profiles
from oracles import fast
from oracles.formats import _round_fraction, from_ordinal, get_format, next_up, round_mpf, to_mpf

FMTS = ["float64", "float32", "float16", "bfloat16"]
LOW = ["float32", "float16", "bfloat16"]


def _hex(v):
    return float.hex(v) if math.isfinite(v) else repr(v)


def _flat(r):
    return [e for x in r for e in _flat(x)] if isinstance(r, list) else [r]


# --------------------------------------------------------------------------------------------------
# rounding and certification


def _hard_values(f, rng, n=3000):
    """Values of every kind at which rounding into f is hard, as binary64 floats."""
    out = []
    top = f.max_ordinal
    for _ in range(n):
        k = rng.choice([rng.randrange(1, top), rng.randrange(1, 2 ** (f.p + 1)), rng.randrange(top - 2 ** f.p, top)])
        a, b = from_ordinal(k, f), from_ordinal(k + 1, f)
        mid = a + (b - a) / 2 if f.p < 53 else a  # exact in binary64 for p <= 24
        for v in (a, mid, math.nextafter(mid, math.inf), math.nextafter(mid, -math.inf)):
            out += [v, -v]
    ovf = f.max_finite + (f.max_finite - from_ordinal(top - 1, f)) / 2  # the overflow midpoint
    out += [ovf, math.nextafter(ovf, 0), math.nextafter(ovf, math.inf), -ovf, 0.0, -0.0, 5e-324, -5e-324,
            f.min_subnormal / 2, math.nextafter(f.min_subnormal / 2, 1), 1.7976931348623157e308]
    return [v for v in out if math.isfinite(v)]  # float64's overflow midpoint is beyond binary64


@pytest.mark.parametrize("fmt", FMTS)
def test_round_array_equals_round_mpf(fmt):
    f = get_format(fmt)
    vals = _hard_values(f, random.Random(fmt))
    got = fast.round_array(np.array(vals), f).tolist()
    for v, g in zip(vals, got):
        want = round_mpf(to_mpf(v), f)
        assert _hex(g) == _hex(want), f"{fmt}: RN({v.hex()}) = {_hex(want)}, round_array gave {_hex(g)}"


@pytest.mark.parametrize("fmt", LOW)
def test_certify_claims_only_what_every_point_of_the_enclosure_rounds_to(fmt):
    f = get_format(fmt)
    rng = random.Random(7)
    centres = _hard_values(f, rng, 500)
    approx, bound = [], []
    for c in centres:
        for rel in (0.0, 2.0**-60, 2.0**-40, 2.0**-30, 2.0**-20, 2.0**-8):
            approx.append(c)
            bound.append(abs(c) * rel + (5e-324 if rel else 0.0))
    values, ok = fast.certify(np.array(approx), np.array(bound), f)
    assert ok.any() and not ok.all()
    for a, b, v, k in zip(approx, bound, values.tolist(), ok.tolist()):
        if not k or not math.isfinite(a):
            continue
        lo, hi = Fraction(a) - Fraction(b), Fraction(a) + Fraction(b)
        for end in (lo, hi):
            r = _round_fraction(end, f) if end else 0.0
            if end == 0:  # only an exact zero (bound 0) may be certified as a zero end point: +0.0
                assert b == 0 and v == 0 and math.copysign(1, v) == 1
                continue
            assert _hex(r) == _hex(v) or (r == 0 and v == 0 and math.copysign(1, r) == math.copysign(1, v)), (
                f"{fmt}: certified {_hex(v)} for [{a!r} +- {b!r}] but the end {float(end)!r} rounds to {_hex(r)}")


def test_libm_meets_the_assumed_error_bounds():
    """Evidence for A1/A2: sampled exp and log1p errors, against mpmath at 120 bits, stay below the assumed
    ETA * |f| + TAU_LIBM (a margin of ~4,000 ulps: the observed worst is a few ulps)."""
    rng = np.random.default_rng(11)
    xs = np.concatenate([rng.uniform(-750, 0, 4000), rng.uniform(-1, 0, 1000), -(10.0 ** rng.uniform(-300, 0, 1000)),
                         rng.uniform(-745.2, -708, 1000), np.array([0.0, -0.0, -745.13321910194122, -708.4])])
    ys = np.exp(xs)
    zs = np.concatenate([10.0 ** rng.uniform(-320, 8, 3000), rng.uniform(0, 10, 1000), np.array([0.0, 5e-324])])
    ls = np.log1p(zs)
    worst = 0.0
    with mpmath.workprec(120):
        for fn, args, got in ((mpmath.exp, xs, ys), (mpmath.log1p, zs, ls)):
            for x, y in zip(args.tolist(), got.tolist()):
                z = fn(mpmath.mpf(x))
                err = abs(mpmath.mpf(y) - z)
                assert err <= fast.ETA * z + fast.TAU_LIBM, f"{fn.__name__}({x!r}) = {y!r}, exact {z}"
                if z > 2.0**-1022:
                    worst = max(worst, float(err / (z * 2.0**-52)))
    assert worst < 16, f"worst observed error {worst:.2f} ulp: far beyond what the libraries claim"


# --------------------------------------------------------------------------------------------------
# rows


def _in_format(x, fmt):
    return fast.round_array(np.asarray(x, dtype=np.float64), fmt)


def _random_rows(rng, n, C, fmt):
    """n rows of C logits, exact in fmt, from one regime of NUMERICS.md (chosen at random)."""
    f = get_format(fmt)
    big = min(f.max_finite / 4, 1e30)
    kind = rng.choice(["normal", "scaled", "dominant", "ties", "offset", "spread", "mask", "tiny", "threshold"])
    x = rng.standard_normal((n, C))
    if kind == "scaled":
        x *= 10.0 ** rng.uniform(-3, 4)
    elif kind == "dominant":
        x[np.arange(n), rng.integers(0, C, n)] += rng.choice([10.0, 30.0, 88.0, 700.0]) * rng.choice([1, -1])
    elif kind == "ties":
        x = np.round(x * 2) / 2
    elif kind == "offset":
        x = 1e6 + x * 1e-2 if fmt != "float64" else 1e8 + x * 1e-6
    elif kind == "spread":
        x = x * big / 4
    elif kind == "mask":
        x[rng.random((n, C)) < 0.4] = -np.inf
        x[np.arange(n), rng.integers(0, C, n)] = rng.standard_normal(n)
    elif kind == "tiny":
        x = x * 10.0 ** rng.uniform(-300, -30)
    elif kind == "threshold":
        x = rng.choice([709.78, 88.72, 11.09, -745.13, -103.28, -17.33]) + x * 0.01
    x = _in_format(x, fmt)
    x[np.isnan(x)] = 0.0
    return x


def _solve(fn, target):
    """The binary64 nearest to the root a of fn(a) = target (fn increasing), by mpmath at 200 bits."""
    with mpmath.workprec(200):
        return float(fn(mpmath.mpf(target)))


def _adversarial(rng, fmt, offsets=(0, 2.0**-60, 2.0**-48, 2.0**-42, 2.0**-39, 2.0**-36, 2.0**-33, 2.0**-28)):
    """(name, kwargs) whose exact result lies at the given relative distances (either side) from a rounding
    boundary of fmt: midpoints of every magnitude, subnormal midpoints, the overflow threshold."""
    with mpmath.workprec(200):  # midpoints of float64 and the targets M (1 +- off) are exact at 200 bits
        return _adversarial_rows(rng, get_format(fmt), offsets)


def _adversarial_rows(rng, f, offsets):
    out = []

    def mid_near(v):
        a = abs(round_mpf(to_mpf(v), f))
        return (mpmath.mpf(a) + mpmath.mpf(next_up(a, f))) / 2

    for _ in range(6):
        mag = 10.0 ** rng.uniform(-6, 1.7)
        M = mid_near(mag)
        for off in offsets:
            for s in (1, -1):
                target = M * (1 + s * off)
                # log_softmax([0, a])[0] = -log1p(e**a): a = log(expm1(M'))
                a = _solve(lambda t: mpmath.log(mpmath.expm1(t)), target)
                out.append(("log_softmax", {"input": [[0.0, a]], "dim": 1}))
                out.append(("cross_entropy", {"input": [[0.0, a]], "target": [0]}))
                # logsumexp([b, b]) = b + log 2
                out.append(("logsumexp", {"input": [[_solve(lambda t: t - mpmath.log(2), target)] * 2], "dim": 1}))
    for _ in range(4):  # softmax([0, a])[1] = sigmoid(a), near midpoints in (0, 1) and the subnormal range
        M = mid_near(10.0 ** rng.uniform(-8, -0.01)) if rng.random() < 0.6 else \
            mpmath.mpf(f.min_subnormal) * rng.choice([0.5, 1.5, 2.5, 3.5])
        for off in offsets:
            for s in (1, -1):
                a = _solve(lambda t: mpmath.log(t / (1 - t)), M * (1 + s * off))
                out.append(("softmax", {"input": [[0.0, a]], "dim": 1}))
    ovf = mpmath.mpf(f.max_finite) + (mpmath.mpf(f.max_finite) - mpmath.mpf(from_ordinal(f.max_ordinal - 1, f))) / 2
    if f.name != "float64":
        for off in offsets:
            for s in (1, -1):
                b = _solve(lambda t: t - mpmath.log(2), ovf * (1 + s * off))
                out.append(("logsumexp", {"input": [[b, b]], "dim": 1}))
    return out


def _problems(rng, n_rows):
    """(name, kwargs, fmt, rows) batches totalling at least n_rows rows."""
    out, rows = [], 0
    names = ["log_softmax", "softmax", "logsumexp", "cross_entropy", "nll_loss"]
    i = 0
    while rows < n_rows:
        fmt = FMTS[i % 4]
        name = names[(i // 4) % len(names)]
        i += 1
        n = int(rng.integers(1, 48))
        u = rng.random()  # classes: mostly few (the mpmath reference costs ~50 us per output and format)
        C = (int(rng.integers(2, 9)) if u < 0.9 else int(rng.integers(9, 100)) if u < 0.99
             else int(rng.integers(100, 1500)))
        x = _random_rows(rng, n, C, fmt)
        if name in ("log_softmax", "softmax"):
            kw = {"input": x, "dim": 1} if rng.random() < 0.8 else {"input": np.ascontiguousarray(x.T), "dim": 0}
        elif name == "logsumexp":
            kw = {"input": x, "dim": 1}
        else:
            t = rng.integers(0, C, n)
            fin = np.isfinite(x[np.arange(n), t])
            t = np.where(fin, t, np.argmax(x, axis=1))
            if rng.random() < 0.2:
                t[rng.random(n) < 0.3] = -100
            kw = {"input": x, "target": t.tolist(), "reduction": str(rng.choice(["none", "mean", "sum"]))}
            if rng.random() < 0.3:
                kw["weight"] = _in_format(rng.uniform(0, 3, C), fmt)
            if (kw["reduction"] == "mean" and (t == -100).all()):
                t[0] = 0
                kw["target"] = t.tolist()
        out.append((name, kw, fmt, n))
        rows += n
    return out


def _compare(name, kw, fmts):
    """(decided, fallback) counts per format; asserts every fast rounding equals the mpmath path's."""
    res = _flat(oracles.REGISTRY[name](**kw))
    assert all(e._lazy is not None or e.special is not None for e in res), f"{name} did not take the fast path"
    with fast.disabled():
        ref = _flat(oracles.REGISTRY[name](**kw))
    counts = {}
    for fmt in fmts:
        with fast.counting() as c:
            got = [e.to(fmt) for e in res]
        want = [e.to(fmt) for e in ref]
        for k, (g, w) in enumerate(zip(got, want)):
            assert _hex(g) == _hex(w), (f"{name} {fmt} output {k}: fast {_hex(g)}, mpmath {_hex(w)}\n"
                                        f"  reproducer: oracles.{name}(**{_repr(kw)})")
        counts[fmt] = (c["decided"], c["fallback"])
    return counts


def _repr(kw):
    return repr({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in kw.items()})


def _report(title, totals, rows, capsys):
    with capsys.disabled():
        print(f"\n{title}: {rows} rows compared, zero disagreements; roundings decided by the fast path / left to "
              "mpmath (fallback rate):")
        for fmt, (d, fb) in totals.items():
            print(f"  {fmt:9s} {d:7d} / {fb:6d}  ({fb / max(d + fb, 1):.2%})")


def test_fast_agrees_with_mpmath_on_random_rows(capsys):
    n_rows = profiles.current().fast_rows
    rng = np.random.default_rng(20261201)
    totals = {f: [0, 0] for f in FMTS}
    rows = 0
    for name, kw, fmt, n in _problems(rng, n_rows):
        # every batch is compared in its own format and float32 (the suite's most common); float64 (decided by
        # the double-double path of oracles/fast64.py, tested on its own in test_fast64_oracle.py) in one of ten
        fmts = sorted({fmt, "float32"} | ({"float64"} if rng.random() < 0.1 else set()), key=FMTS.index)
        for f, (d, fb) in _compare(name, kw, fmts).items():
            totals[f][0] += d
            totals[f][1] += fb
        rows += n
    assert rows >= n_rows
    # The path must pay: a bound of ~2**-36 relative leaves to mpmath about 2**-11 of float32 roundings of random
    # values, but the regimes here are built to be hard (inputs exact in the format with a dominant logit put
    # log_softmax a hair, ~1e-16, from a format midpoint; 1e8 offsets in float64 make differences multiples of
    # 2**-26): 10% still shows that the path decides the bulk, and catches a bound gone loose or a broken branch.
    for f in LOW:
        assert totals[f][0] > 0 and totals[f][1] <= 0.1 * totals[f][0], (f, totals[f])
    _report("fast oracle vs mpmath, random rows", {f: tuple(v) for f, v in totals.items()}, rows, capsys)


def test_fast_agrees_with_mpmath_near_rounding_boundaries(capsys):
    rng = random.Random(99)
    totals = {f: [0, 0] for f in FMTS}
    rows = 0
    for fmt in FMTS:
        for name, kw in _adversarial(rng, fmt):
            d, fb = _compare(name, kw, [fmt])[fmt]
            totals[fmt][0] += d
            totals[fmt][1] += fb
            rows += 1
    for f in LOW:  # both outcomes occur: decided at 2**-28 from a boundary, left to mpmath at 2**-60
        assert totals[f][0] > 0 and totals[f][1] > 0, (f, totals[f])
    _report("fast oracle vs mpmath, adversarial rows", {f: tuple(v) for f, v in totals.items()}, rows, capsys)


# --------------------------------------------------------------------------------------------------
# the deferred results and the routing


CASES = [
    ("log_softmax", {"input": [[0.0, -np.inf, 3.0, 1.5], [2.0, 2.0, -1.0, 0.25]], "dim": 1}),
    ("softmax", {"input": [[0.0, -np.inf, 3.0], [2.0, 2.0, -1.0]], "dim": 0}),
    ("logsumexp", {"input": [[0.0, -np.inf, 3.0], [2.0, 2.0, -1.0]], "dim": 1, "keepdim": True}),
    ("cross_entropy", {"input": [[[0.0, 1.0], [2.0, -3.0]], [[0.5, -np.inf], [1.0, 4.0]]], "target": [[1, 0], [1, 1]],
                       "reduction": "none"}),
    ("cross_entropy", {"input": [[0.0, 1.0, 10.0], [2.0, -3.0, 0.0]], "target": [2, -100],
                       "weight": [0.5, 2.0, 0.25], "reduction": "mean"}),
    ("nll_loss", {"input": [[0.0, 1.5], [2.0, -3.0]], "target": [1, 0], "weight": [0.5, 3.0], "reduction": "sum"}),
]


@pytest.mark.parametrize("builder", ["whole", "per_row"])
@pytest.mark.parametrize("name,kw", CASES, ids=[c[0] for c in CASES])
def test_deferred_results_keep_value_gradient_and_kappa(name, kw, builder, monkeypatch):
    """Expressions come from the whole call (small inputs) or row by row, the gradient moved to the row's place
    in the input (large inputs, forced here): both must be the mpmath path's own."""
    if builder == "per_row":
        monkeypatch.setattr(fast, "WHOLE_ELEMENTS", 0)
    res = _flat(oracles.REGISTRY[name](**kw))
    with fast.disabled():
        ref = _flat(oracles.REGISTRY[name](**kw))
    assert any(e._lazy is not None for e in res)
    for e, r in zip(res, ref):
        assert [e.to(f) for f in FMTS] == [r.to(f) for f in FMTS]
        assert str(e) == str(r) and str(e.kappa) == str(r.kappa)
        assert [str(g) for g in _flat(e.grad)] == [str(g) for g in _flat(r.grad)]


@pytest.mark.parametrize("name,kw,error", [
    ("cross_entropy", {"input": [[0.0, 1.0]], "target": [2]}, "out of bounds"),
    ("cross_entropy", {"input": [[0.0, 1.0]], "target": [0], "reduction": "avg"}, "reduction must be"),
    ("log_softmax", {"input": [[0.0, 1.0], [1.0]], "dim": 1}, "rectangular"),
    ("log_softmax", {"input": [[0.0, 1.0]], "dim": 2}, "out of range"),
    ("nll_loss", {"input": [[0.0, 1.0]], "target": [0], "weight": [1.0]}, "weight must have shape"),
])
def test_bad_input_gets_the_mpmath_paths_error(name, kw, error):
    with pytest.raises(oracles.OracleInputError, match=error):
        oracles.REGISTRY[name](**kw)


def test_inputs_the_fast_path_does_not_take_go_to_mpmath():
    for kw in ({"input": [[0, 1, 2]], "dim": 1}, {"input": [["0x1p-3", "1.0"]], "dim": 1},
               {"input": [[mpmath.mpf(1), 2.0]], "dim": 1}, {"input": [[math.nan, 1.0]], "dim": 1},
               {"input": [[math.inf, 1.0]], "dim": 1}):
        res = _flat(oracles.log_softmax(**kw))
        assert all(e._lazy is None for e in res)
    # probability targets beside a -inf mask: 0 * inf is the mpmath path's to define (fast.py step 12)
    masked = oracles.cross_entropy([[0.0, -math.inf, 2.0]], [[0.5, 0.0, 0.5]])
    assert masked._lazy is None


NAN, INF = math.nan, math.inf
#: batches with one row the fast path must not take, wherever it sits: its checks read the row maxima and sums
#: (fast._Rows), so a NaN must be found first, last, beside +inf and in a later row
IRREGULAR = ([[1.0, 2.0, NAN]], [[NAN, 1.0, 2.0]], [[1.0, INF, NAN]], [[NAN, INF, 0.0]], [[0.0, 1.0], [2.0, NAN]],
             [[0.0, 1.0], [-INF, -INF]], [[0.0, INF], [1.0, 2.0]], [[-INF]])


@pytest.mark.parametrize("name", ["log_softmax", "softmax", "logsumexp", "cross_entropy"])
@pytest.mark.parametrize("rows", IRREGULAR, ids=repr)
def test_a_row_with_nan_inf_or_no_finite_entry_sends_the_call_to_mpmath(name, rows):
    kw = {"input": rows, "target": [0] * len(rows)} if name == "cross_entropy" else {"input": rows, "dim": 1}
    res = _flat(oracles.REGISTRY[name](**kw))
    assert all(e._lazy is None for e in res), rows


@pytest.mark.parametrize("name", ["log_softmax", "softmax", "logsumexp", "cross_entropy"])
def test_a_row_with_one_finite_entry_is_told_from_one_whose_other_terms_underflow(name):
    """A row with one finite entry has exact results (log_softmax 0, softmax 1, logsumexp m), and binary64 R = 0;
    R is 0 too where the other terms underflow (exp(-800)), whose results are not exact: -exp(-800) rounds to
    -0.0, an exact 0 would give +0.0. Every rounding, its sign included, equals the mpmath path's."""
    rows = [[0.0, -INF, -INF], [0.0, -800.0, -INF], [-INF, 3.5, -INF], [-900.0, 0.0, -1000.0], [1.0, 2.0, 3.0]]
    kw = {"input": rows, "target": [0, 0, 1, 0, 2], "reduction": "none"} if name == "cross_entropy" else \
        {"input": rows, "dim": 1}
    fast_res = _flat(oracles.REGISTRY[name](**kw))
    assert all(e._lazy is not None for e in fast_res)  # the fast path took the batch
    with fast.disabled():
        slow = _flat(oracles.REGISTRY[name](**kw))
    for fmt in ("float64", "float32", "float16", "bfloat16"):
        got = [e.to(fmt) for e in fast_res]
        want = [e.to(fmt) for e in slow]
        assert [(v, math.copysign(1, v)) for v in got] == [(v, math.copysign(1, v)) for v in want], (fmt, got)

def test_flush_to_zero_disables_the_fast_path():
    torch = pytest.importorskip("torch")
    assert fast.available()
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        assert not fast.available()
        r = oracles.log_softmax([[0.0, 1.0]], dim=1)[0][0]
        assert r._lazy is None
    finally:
        torch.set_flush_denormal(False)
    assert fast.available()


def test_large_rows_are_decided_without_building_expressions():
    """The point of the path: a 128,256-class bfloat16/float32 batch costs binary64 passes, not expressions."""
    rng = np.random.default_rng(5)
    x = _in_format(rng.standard_normal((4, 128_256)) * 4, "bfloat16")
    with fast.counting() as c:
        r = oracles.cross_entropy(x, [0, 1, 2, 3], reduction="none")
        vals = [e.to("bfloat16") for e in r] + [e.to("float32") for e in r]
    assert c == {"decided": 8, "fallback": 0} and all(e._lazy is not None for e in r)
    assert all(0 < v < 40 for v in vals)


@pytest.mark.parametrize("row", [[1.5] * 2, [-3.0] * 512, [0.25, -INF, 0.25, 0.25, 0.25, -INF], [2.0] * 3,
                                 [1e300, 1e300, -INF, 1e300, 1e300],
                                 [1e-20, 1e-20, 1e-20, 0.0]])  # R = 3 exactly (exp(-1e-20) = 1.0), yet unequal
def test_softmax_of_equal_logits_is_exactly_one_over_k_where_binary64_holds_it(row):
    """A row of k equal finite logits has softmax 1/k at each: the fast path gives it with a zero bound where k
    is a power of two (fast._Rows._equal_rows), and only there; the mpmath path's value is the same point."""
    res = _flat(oracles.softmax([row], dim=1))
    with fast.disabled():
        slow = _flat(oracles.softmax([row], dim=1))
    fin = [v for v in row if v != -INF]
    k = len(fin)
    exact = len(set(fin)) == 1 and k & (k - 1) == 0
    for e, s, v in zip(res, slow, row):
        src, key = e._lazy
        assert (src.bound[key] == 0) == (exact or v == -INF), (row, key)
        if exact and v != -INF:
            assert mpmath.mpf(e.enclose(64)[0]) == mpmath.mpf(1) / k == mpmath.mpf(s.enclose(64)[0])
        for fmt in ("float64", "float32", "bfloat16"):
            assert e.to(fmt) == s.to(fmt)
