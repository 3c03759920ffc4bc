"""Meta-tests for ``lossproof.strategies``: the inputs the suite generates are what NUMERICS.md asks for.

- every drawn value is exactly a value of its format (``oracles.formats.is_representable``, and torch's own
  conversion gives it back unchanged), in all four formats;
- bad arguments raise ``InvalidArgument`` when the strategy is built;
- every regime, structure and probability kind is reached, and so are the hard cases: class counts beyond 2,048,
  all targets ignored, probabilities exactly 0 and 1 and one ulp from each, values below the resolution, -inf
  masks, tiny and huge weights;
- the problems are well-formed: torch.nn.functional accepts them (float32 / float64) and returns the shape the
  reduction implies.

Coverage is checked on deterministic samples (``derandomize=True``, generation phase only), each drawn once per
session and shared by the tests that look at it.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument, NoSuchExample

from lossproof import strategies as S
from oracles import formats as OF

FMTS = S.FORMAT_NAMES
INF = math.inf
TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
                "bfloat16": torch.bfloat16}


# ------------------------------------------------------------------------------------------------------------
# helpers


def sample(strategy, n):
    """n examples of ``strategy``, the same ones every run."""
    out = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(x):
        out.append(x)

    collect()
    return out


def reaches(strategy, predicate, n=600):
    """Whether some example among the first ``n`` (deterministic) satisfies ``predicate``; stops at the first."""
    try:
        find(strategy, predicate, settings=settings(max_examples=n, derandomize=True, database=None,
                                                    deadline=None, phases=[Phase.generate]))
    except NoSuchExample:
        return False
    return True


class _Covered(Exception):
    pass


def uncovered(strategy, features, n=600):
    """Names of the ``features`` (name -> predicate) that none of the first ``n`` examples of ``strategy``
    satisfies (deterministic); generation stops as soon as every feature has been seen."""
    remaining = set(features)

    def seen(x):  # evaluated while generating, so the example Hypothesis replays and reprs is small
        return frozenset(name for name, pred in features.items() if name in remaining and pred(x))

    @settings(max_examples=n, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy.map(seen))
    def probe(names):
        remaining.difference_update(names)
        if not remaining:
            raise _Covered

    try:
        probe()
    except _Covered:
        pass
    return sorted(remaining)


def flat(x):
    if isinstance(x, (list, tuple)):
        return [e for v in x for e in flat(v)]
    return [x]


def shape_of(x):
    s = []
    while isinstance(x, list):
        s.append(len(x))
        x = x[0]
    return tuple(s)


def assert_exact(xs, fmt, what=""):
    """Every element is a value of ``fmt`` (checked once per distinct value and sign of zero)."""
    distinct = {(v, math.copysign(1, v)) if not math.isnan(v) else ("nan", 0) for v in xs}
    for key in distinct:
        v = key[0] if key[0] != "nan" else math.nan
        assert isinstance(v, float), (what, v)
        assert OF.is_representable(v, fmt), f"{what}: {v!r} is not a {fmt} value"


def assert_torch_roundtrip(nested, fmt):
    """torch holds the values exactly: building the tensor in ``fmt`` and reading it back changes nothing."""
    got = torch.tensor(nested, dtype=TORCH_DTYPES[fmt]).double().reshape(-1).tolist()
    want = flat(nested)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g == w and math.copysign(1, g) == math.copysign(1, w)) or (math.isnan(g) and math.isnan(w)), \
            (fmt, g, w)


def res(fmt):
    """The format's resolution at 1: values at or below it vanish beside 1 (2**-(p+1))."""
    return math.ldexp(1.0, -(OF.get_format(fmt).p + 1))


def ulp_below_one(fmt):
    return OF.next_down(1.0, fmt)


# ------------------------------------------------------------------------------------------------------------
# values


def has_value(fmt, lo, hi, sub):
    """Whether some finite value of ``fmt`` lies in [lo, hi] (None: unbounded), normal or zero unless ``sub``."""
    f = OF.get_format(fmt)
    if lo == 0 and hi == 0 and math.copysign(1, lo) > 0 > math.copysign(1, hi):
        return False
    a = -f.max_finite if lo is None else max(lo, -f.max_finite)
    b = f.max_finite if hi is None else min(hi, f.max_finite)
    if a > b:
        return False
    v = OF.round_to_format(a, fmt)
    if v < a:
        v = OF.next_up(v, fmt)
    if not sub and 0 < abs(v) < f.min_normal:
        v = f.min_normal if v > 0 else 0.0
    return v <= b


@pytest.mark.parametrize("fmt", FMTS)
@settings(max_examples=60)
@given(data=st.data())
def test_values_are_exact_and_in_bounds(fmt, data):
    bound = st.one_of(st.none(), st.floats(allow_nan=False), st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e-40]))
    lo = data.draw(bound, label="min_value")
    hi = data.draw(bound, label="max_value")
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    sub = data.draw(st.booleans(), label="allow_subnormal")
    inf = data.draw(st.booleans(), label="allow_infinity") and (
        lo is None or hi is None or math.isinf(lo) or math.isinf(hi))
    try:
        strat = S.values(fmt, lo, hi, allow_infinity=inf, allow_subnormal=sub)
        xs = [data.draw(strat, label=f"value {i}") for i in range(5)]
    except InvalidArgument:
        # only legitimate when the range holds no value of the format (or only subnormals when excluded)
        assert not inf and not has_value(fmt, lo, hi, sub), (lo, hi, sub)
        return
    f = OF.get_format(fmt)
    assert_exact(xs, fmt)
    for x in xs:
        assert not math.isnan(x)
        if math.isinf(x):
            assert inf
            continue
        if lo is not None:
            assert x >= lo and not (x == 0 and lo == 0 and math.copysign(1, lo) > 0 > math.copysign(1, x))
        if hi is not None:
            assert x <= hi and not (x == 0 and hi == 0 and math.copysign(1, hi) < 0 < math.copysign(1, x))
        if not sub:
            assert x == 0 or abs(x) >= f.min_normal


@functools.cache
def value_sample(fmt):
    return sample(S.values(fmt, allow_nan=True, allow_infinity=True), 300)


@pytest.mark.parametrize("fmt", FMTS)
def test_values_reach_the_boundaries(fmt):
    xs = value_sample(fmt)
    f = OF.get_format(fmt)
    assert_exact(xs, fmt)
    seen = {(x, math.copysign(1, x)) for x in xs if not math.isnan(x)}
    for b in [0.0, -0.0, 1.0, -1.0, OF.next_up(1.0, f), OF.next_down(1.0, f), f.min_subnormal, -f.min_subnormal,
              f.min_normal, -f.min_normal, f.max_finite, -f.max_finite, INF, -INF]:
        assert (b, math.copysign(1, b)) in seen, f"{fmt}: {b!r} never drawn"
    assert any(math.isnan(x) for x in xs)
    assert any(0 < abs(x) < f.min_normal and abs(x) not in (f.min_subnormal,) for x in xs), "no inner subnormal"
    exps = {math.frexp(x)[1] for x in xs if math.isfinite(x) and x}
    assert len(exps) > 20, f"{fmt}: only {len(exps)} binades"
    assert_torch_roundtrip([x for x in xs], fmt)


def test_values_shrink_and_flags():
    assert find(S.values("bfloat16"), lambda x: True) == 0.0
    assert find(S.values("float16", 1.5, 3.0), lambda x: True) in (1.5, 2.0)
    xs = sample(S.values("float32", 0.0, 1.0, allow_subnormal=False), 200)
    assert all(x == 0 or x >= 2.0**-126 for x in xs)
    assert all(math.copysign(1, x) > 0 for x in xs), "min_value=0.0 excludes -0.0"
    assert -0.0 in xs and any(math.copysign(1, x) < 0 for x in sample(S.values("float16", -0.0, 1.0), 200))
    # bounds that are not values of the format: RN(0.1) may lie outside [0.1, 0.2]
    xs = sample(S.values("bfloat16", 0.1, 0.2), 100)
    assert all(0.1 <= x <= 0.2 for x in xs) and len(set(xs)) > 10


@pytest.mark.parametrize("fmt", FMTS)
def test_long_rows_bit_patterns_are_ordinals(fmt):
    """Long rows reinterpret ordinals as bit patterns (bfloat16: the top half of a float32): the same values as
    ``oracles.formats.from_ordinal``, at every binade edge."""
    f = OF.get_format(fmt)
    half = 2 ** (f.p - 1)
    ords = [0, 1, -1, half - 1, half, half + 1, -half, 2 * half, 3 * half - 1, f.max_ordinal, -f.max_ordinal,
            OF.ordinal(1.0, f), -OF.ordinal(1.0, f) - 1, f.max_ordinal // 3]
    got = S._ords_to_floats(np.array(ords, dtype=np.int64), f)
    assert got == [OF.from_ordinal(o, f) for o in ords]


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
def test_values_are_not_squeezed_through_float32(fmt):
    """bfloat16 / float16 values come from their own ordinals: the count of distinct values in [1, 2] is the
    format's 2**(p-1), not float32's."""
    xs = set(sample(S.values(fmt, 1.0, 2.0), 400))
    assert len(xs) > 40
    assert all(OF.is_representable(x, fmt) for x in xs)


# ------------------------------------------------------------------------------------------------------------
# argument validation


BAD = [
    lambda: S.values("float8"),
    lambda: S.values(32),
    lambda: S.values("float32", 2.0, 1.0),
    lambda: S.values("float32", math.nan),
    lambda: S.values("float32", "0"),
    lambda: S.values("float32", 0.0, 1.0, allow_nan=True),
    lambda: S.values("float32", 0.0, 1.0, allow_infinity=True),
    lambda: S.values("float32", allow_subnormal=1),
    lambda: S.values("float16", 1.0001, 1.0002),          # no float16 value in between
    lambda: S.values("float16", 1e-8, 5e-8, allow_subnormal=False),
    lambda: S.values("float16", 1e6, 1e7),                # beyond the largest finite
    lambda: S.values("float32", 0.0, -0.0),
    lambda: S.around("float32", math.inf),
    lambda: S.around("float32", 1.0, max_ulps=-1),
    lambda: S.around("float32", 1.0, max_offset=-2.0),
    lambda: S.logits("float32", "enormous"),
    lambda: S.logits("float32", []),
    lambda: S.logits_with_regime("float32", ("zero", "tiny")),
    lambda: S.probabilities("float32", allow_zero="yes"),
    lambda: S.class_counts(max_classes=0),
    lambda: S.class_counts(max_classes=4.5),
    lambda: S.class_counts(max_classes=10, min_classes=20),
    lambda: S.logit_rows("float32", 0),
    lambda: S.logit_rows("float32", 4, "spiky"),
    lambda: S.logit_rows("float32", 4, "masked", allow_nonfinite=False),
    lambda: S.probability_rows("float32", 4, "peaked"),
    lambda: S.class_problem("float32", max_classes=1),
    lambda: S.class_problem("float32", max_batch=0),
    lambda: S.class_problem("float32", allow_spatial=None),
    lambda: S.class_problem("float32", structure="masked", allow_nonfinite=False),
    lambda: S.class_problem("half"),
    lambda: S.prob_class_problem("float32", kind="hard"),
    lambda: S.binary_problem("float32", logits="yes"),
    lambda: S.kl_problem("float32", max_batch=-1),
    lambda: S.elementwise_problem("float32", "tanh"),
    lambda: S.elementwise_problem("float32", "softmax", max_classes=0),
]


@pytest.mark.parametrize("make", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_arguments_raise_when_built(make):
    with pytest.raises(InvalidArgument):
        make()


# ------------------------------------------------------------------------------------------------------------
# logits and regimes


def in_regime(x, fmt, regime):
    f = OF.get_format(fmt)
    t = S.exp_thresholds(fmt)
    a = abs(x)
    if regime == "moderate":
        return a <= 10
    if regime == "fifty":
        return 44 <= a <= 56
    if regime == "beyond":
        return OF.round_to_format(50, fmt) <= a <= OF.round_to_format(1e4, fmt)
    if regime == "huge":
        return OF.round_to_format(1e4, fmt) <= a <= f.max_finite
    # within 3 units and the rounding of the centre and of the offset (S.around's max_offset = 3)
    if regime == "exp_overflow":
        return abs(a - t["overflow"]) <= 3 + 2 * OF.ulp(t["overflow"], fmt)
    if regime == "exp_underflow":
        centres = [t["underflow"], t["subnormal"], t["normal"]]
        if fmt == "bfloat16":
            centres += [S.exp_thresholds("float32")["underflow"], S.exp_thresholds("float32")["subnormal"]]
        return any(abs(a + c) <= 3 + 2 * OF.ulp(c, fmt) for c in centres)
    if regime == "subnormal":
        return 0 < a < f.min_normal
    if regime == "zero":
        return x == 0
    raise AssertionError(regime)


@pytest.mark.parametrize("fmt", FMTS)
def test_every_regime_is_reached_and_in_range(fmt):
    pairs = sample(S.logits_with_regime(fmt), 150)
    assert_exact([x for _, x in pairs], fmt)
    for r, x in pairs:
        assert math.isfinite(x) and in_regime(x, fmt, r), (fmt, r, x)
    # every regime, and the thresholds of NUMERICS.md themselves (to the format's ulp)
    over, under = {"float64": (709.78, -745.13), "float32": (88.72, -103.28), "bfloat16": (88.72, -103.28),
                   "float16": (11.09, -17.33)}[fmt]
    feats = {f"regime {r}": (lambda r: lambda t: t[0] == r)(r) for r in S.REGIMES}
    feats.update({
        "log(max)": lambda t: t[0] == "exp_overflow" and abs(t[1] - over) <= max(0.01, OF.ulp(over, fmt)),
        "-log(max)": lambda t: t[0] == "exp_overflow" and abs(t[1] + over) <= max(0.01, OF.ulp(over, fmt)),
        "underflow threshold": lambda t: t[0] == "exp_underflow" and abs(t[1] - under) <= max(0.01,
                                                                                               OF.ulp(under, fmt)),
    })
    missing = uncovered(S.logits_with_regime(fmt), feats)
    assert not missing, f"{fmt}: never drawn: {missing}"


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("regime", S.REGIMES)
def test_logits_of_one_regime(fmt, regime):
    xs = sample(S.logits(fmt, regime), 25)
    assert_exact(xs, fmt)
    assert all(in_regime(x, fmt, regime) for x in xs), (fmt, regime, xs)


# ------------------------------------------------------------------------------------------------------------
# rows


def check_row(row, info, fmt, n):
    f = OF.get_format(fmt)
    s = info["structure"]
    assert len(row) == n
    assert_exact(row, fmt, s)
    assert not any(math.isnan(v) or v == INF for v in row)
    finite = [v for v in row if math.isfinite(v)]
    if s not in ("masked", "all_but_one_masked"):
        assert len(finite) == n, s
    if s in ("dominant_right", "dominant_wrong", "all_but_one_masked"):
        j = info["dominant"]
        assert 0 <= j < n
        assert all(row[j] > v for i, v in enumerate(row) if i != j), (s, row)
    else:
        assert info["dominant"] is None
    if s in ("dominant_right", "dominant_wrong") and n > 1:
        j = info["dominant"]
        assert row[j] - max(v for i, v in enumerate(row) if i != j) >= 9.5
    if s == "near_ties":
        ords = [OF.ordinal(v, fmt) for v in row]
        assert max(ords) - min(ords) <= 2 * info["ulps"]
    if s == "equal":
        assert len(set(row)) == 1
    if s == "huge_spread" and n > 1:
        big = OF.round_to_format(1e4, fmt)
        assert max(row) >= big and min(row) <= -big
    if s == "large_offset":
        o = info["offset"]
        assert all(abs(v - o) <= 1100 + 2 * OF.ulp(o, fmt) * 300 for v in row)
        assert abs(o) >= min(1e8, f.max_finite / 8) / 4 - OF.ulp(o, fmt)
    if s == "masked" and n > 1:
        assert finite and len(finite) < n
    if s == "all_but_one_masked":
        assert len(finite) == 1 and row.count(-INF) == n - 1


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("structure", S.STRUCTURES)
def test_rows_have_their_structure(fmt, structure):
    rows = sample(st.tuples(st.sampled_from([1, 2, 5, 16, 17, 300]), st.data()).map(
        lambda t: (t[0], t[1].draw(S.logit_rows(fmt, t[0], structure), label="row"))), 12)
    for n, (row, info) in rows:
        assert info["structure"] == structure
        check_row(row, info, fmt, n)


@pytest.mark.parametrize("fmt", FMTS)
def test_every_structure_is_reached(fmt):
    feats = {s: (lambda s: lambda t: t[1]["structure"] == s)(s) for s in S.STRUCTURES}
    feats["-inf"] = lambda t: -INF in t[0]
    missing = uncovered(S.logit_rows(fmt, st.integers(1, 40)), feats)
    assert not missing, f"{fmt}: never drawn: {missing}"
    finite = sample(S.logit_rows(fmt, 6, allow_nonfinite=False), 40)
    assert all(math.isfinite(v) for r, _ in finite for v in r)


def test_large_offset_fits_float16():
    rows = sample(S.logit_rows("float16", st.integers(2, 30), "large_offset"), 40)
    for row, info in rows:
        assert all(math.isfinite(v) for v in row)
        assert 1000 <= abs(info["offset"]) <= 65504


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("kind", S.PROBABILITY_KINDS)
def test_probability_rows(fmt, kind):
    rows = sample(st.tuples(st.sampled_from([1, 2, 7, 16, 40]), st.data()).map(
        lambda t: (t[0], t[1].draw(S.probability_rows(fmt, t[0], kind), label="row"))), 15)
    for n, (row, info) in rows:
        assert info["kind"] == kind and len(row) == n
        assert_exact(row, fmt, kind)
        assert all(0 <= p <= 1 and math.copysign(1, p) > 0 for p in row)
        f = OF.get_format(fmt)
        if kind in ("soft", "uniform", "smoothed", "one_hot"):
            # each entry is RN of an exact share (relative error 2**-p, or half a subnormal), float64 slop aside
            assert abs(math.fsum(row) - 1) <= 2 * 2.0**-f.p + n * (f.min_subnormal + 2.0**-52), row
        if kind == "near_one_hot":
            assert abs(math.fsum(row) - 1) <= 2.0**-f.p + n * f.min_normal, row
        if kind == "one_hot":
            assert sorted(row)[-1] == 1.0 and row.count(1.0) == 1 and row.count(0.0) == n - 1
        if kind == "near_one_hot":
            assert row[info["hot"]] == ulp_below_one(fmt)
        if kind == "tiny":
            assert all(p <= res(fmt) for i, p in enumerate(row) if i != info["hot"])


# ------------------------------------------------------------------------------------------------------------
# class counts


def test_class_counts():
    cs = sample(S.class_counts(), 1000)
    assert all(2 <= c <= 4096 for c in cs)
    # Hypothesis's integers favour small values, so the realised share of large draws is below large_share (4.3%
    # beyond 2,048 over 2,000 derandomized draws, where the design's uniform arithmetic says 13%): at least 3%
    assert sum(c > 2048 for c in cs) >= 30, "beyond 2,048 too rare"
    assert sum(c <= 16 for c in cs) >= 300, "small counts should dominate"
    assert 256 <= find(S.class_counts(), lambda c: 256 <= c <= 258) <= 258, "sizes past bfloat16's integers"
    assert 2 in cs and find(S.class_counts(), lambda c: c == 4096) == 4096
    lean = sample(S.class_counts(large_share=0.05), 300)
    assert 1 <= sum(c >= 1024 for c in lean) <= 45, "large_share=0.05 should keep large counts rare, not absent"
    assert sum(c >= 1024 for c in sample(S.class_counts(large_share=0.0), 200)) == 0
    assert all(c >= 1024 for c in sample(S.class_counts(large_share=1.0), 50))
    for bad in (-0.1, 1.5, "x"):
        with pytest.raises(InvalidArgument):
            S.class_counts(large_share=bad)
    assert find(S.class_counts(), lambda c: True) == 2
    assert find(S.class_counts(), lambda c: c > 2048) == 2049
    assert all(2 <= c <= 8 for c in sample(S.class_counts(8), 50))
    assert any(c > 65536 for c in sample(S.class_counts(262144), 400))


# ------------------------------------------------------------------------------------------------------------
# problems


def shape_ok_for_reduction(out, kwargs, target_shape):
    if kwargs["reduction"] == "none":
        assert tuple(out.shape) == target_shape
    else:
        assert out.dim() == 0


@functools.cache
def class_sample(fmt):
    return sample(S.class_problem(fmt), 30)


@pytest.mark.parametrize("fmt", FMTS)
def test_class_problem_well_formed(fmt):
    problems = class_sample(fmt)
    for p in problems:
        kwargs, meta = S.split_meta(p)
        assert meta["_function"] == "cross_entropy" and meta["_format"] == fmt and meta["_target_kind"] == "indices"
        assert isinstance(meta["_regime"], str)
        x = kwargs["input"]
        shape = shape_of(x)
        assert len(shape) in (1, 2, 3)
        assert math.prod(shape) <= S.MAX_ELEMENTS or math.prod(shape) == max(shape)  # one row may be longer
        C = shape[0] if len(shape) == 1 else shape[1]
        xs = flat(x)
        assert_exact(xs, fmt, "input")
        assert not any(math.isnan(v) or v == INF for v in xs)
        t = kwargs["target"]
        want_t_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
        assert shape_of(t) == want_t_shape
        ig = kwargs.get("ignore_index", -100)
        for ti in flat(t):
            assert isinstance(ti, int) and not isinstance(ti, bool)
            assert 0 <= ti < C or ti == ig
        if "weight" in kwargs:
            assert len(kwargs["weight"]) == C
            assert_exact(kwargs["weight"], fmt, "weight")
            assert all(math.isfinite(w) and w >= 0 for w in kwargs["weight"])
        assert kwargs["reduction"] in ("none", "mean", "sum")
        assert 0 <= kwargs["label_smoothing"] <= 1
        # the structure decides the target
        rows_info = meta["_rows"]
        if len(shape) == 1 and ti != ig:
            info = rows_info[0]
            if info["structure"] == "dominant_right":
                assert ti == info["dominant"]
            if info["structure"] == "dominant_wrong":
                assert ti != info["dominant"]


def ignored(p):
    ig = p.get("ignore_index", -100)
    return [t == ig for t in flat(p["target"])]


@pytest.mark.parametrize("fmt", FMTS)
def test_class_problem_coverage(fmt):
    def classes(p):
        s = shape_of(p["input"])
        return s[0] if len(s) == 1 else s[1]

    feats = {
        **{f"{n}-D input": (lambda n: lambda p: len(shape_of(p["input"])) == n)(n) for n in (1, 2, 3)},
        "more than 2,048 classes": lambda p: classes(p) > 2048,
        "more than 2,048 classes in a batch": lambda p: classes(p) > 2048 and len(shape_of(p["input"])) > 1,
        "-inf mask": lambda p: -INF in flat(p["input"]),
    }
    missing = uncovered(S.class_problem(fmt), feats)
    assert not missing, f"{fmt}: never drawn: {missing}"


SMALL_CLASS_FEATURES = {
    "every target of a batch ignored": lambda p: all(ignored(p)) and len(ignored(p)) > 1,
    "the one target of a 1-D input ignored": lambda p: not isinstance(p["target"], list) and all(ignored(p)),
    "default ignore_index (-100, not passed) used": lambda p: "ignore_index" not in p and any(ignored(p)),
    "ignore_index=-100 passed": lambda p: p.get("ignore_index") == -100,
    "ignore_index=-1 passed and used": lambda p: p.get("ignore_index") == -1 and any(ignored(p)),
    "a valid class as ignore_index, used": lambda p: p.get("ignore_index", -1) >= 0 and any(ignored(p)),
    "zero weight": lambda p: 0.0 in p.get("weight", []),
    "tiny weight": lambda p: any(0 < w <= max(1e-30, OF.get_format(p["_format"]).min_subnormal)
                                 for w in p.get("weight", [])),
    "huge weight": lambda p: any(w >= min(1e30, OF.get_format(p["_format"]).max_finite / 2)
                                 for w in p.get("weight", [])),
    "no weight": lambda p: "weight" not in p,
    "spatial (N, C, d1) input": lambda p: len(shape_of(p["input"])) == 3,
    **{f"label_smoothing={v}": (lambda v: lambda p: p["label_smoothing"] == v)(v) for v in (0.0, 0.1, 0.5, 1.0)},
    "small random label_smoothing": lambda p: 0 < p["label_smoothing"] < 0.25 and p["label_smoothing"] != 0.1,
    **{f"reduction={r}": (lambda r: lambda p: p["reduction"] == r)(r) for r in S.REDUCTIONS},
    **{f"structure {s}": (lambda s: lambda p: p["_rows"][0]["structure"] == s)(s) for s in S.STRUCTURES},
    "confident wrong target": lambda p: any(i["structure"] == "dominant_wrong" for i in p["_rows"])
                                        and not all(ignored(p)),
    "masked target (infinite loss)": lambda p: any(
        i["structure"] == "all_but_one_masked" and not ig and t != i["dominant"]
        for t, ig, i in zip(flat(p["target"]), ignored(p), p["_rows"])),
}


WEIGHT_FEATURES = ("zero weight", "tiny weight", "huge weight", "no weight")


@pytest.mark.parametrize("fmt", FMTS)
def test_class_problem_reaches_every_feature(fmt):
    # the format-independent features once (float32); the weights, which depend on the format, in every format
    feats = {k: v for k, v in SMALL_CLASS_FEATURES.items() if fmt == "float32" or k in WEIGHT_FEATURES}
    missing = uncovered(S.class_problem(fmt, max_classes=6, max_batch=3), feats)
    assert not missing, f"{fmt}: never drawn: {missing}"


@pytest.mark.parametrize("fmt", ["float32", "float64"])
def test_torch_accepts_class_problems(fmt):
    for p in class_sample(fmt)[:30]:
        kwargs = S.to_torch(p)
        assert kwargs["target"].dtype == torch.int64 and kwargs["input"].dtype == TORCH_DTYPES[fmt]
        out = F.cross_entropy(**kwargs)
        shape_ok_for_reduction(out, kwargs, tuple(kwargs["target"].shape))


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
def test_to_torch_is_exact(fmt):
    for p in class_sample(fmt)[:15]:
        kwargs = S.to_torch(p)
        assert kwargs["input"].double().reshape(-1).tolist() == flat(p["input"])
        if "weight" in p:
            assert kwargs["weight"].double().tolist() == p["weight"]


def test_structure_and_limits_of_class_problem():
    for p in sample(S.class_problem("float32", max_classes=64, max_batch=2, allow_spatial=False,
                                    allow_nonfinite=False, structure=("dominant_right", "dominant_wrong")), 40):
        shape = shape_of(p["input"])
        assert len(shape) in (1, 2) and (len(shape) == 1 or shape[0] <= 2) and shape[-1] <= 64
        assert all(math.isfinite(v) for v in flat(p["input"]))
        ig = p.get("ignore_index", -100)
        targets = [p["target"]] if len(shape) == 1 else p["target"]
        for t, info in zip(targets, p["_rows"]):
            if t != ig:
                assert (t == info["dominant"]) == (info["structure"] == "dominant_right")


@pytest.mark.parametrize("fmt", FMTS)
def test_prob_class_problem(fmt):
    f = OF.get_format(fmt)
    for p in sample(S.prob_class_problem(fmt), 15):
        assert p["_target_kind"] == "probabilities"
        assert shape_of(p["target"]) == shape_of(p["input"])
        assert_exact(flat(p["input"]), fmt, "input")
        ts = flat(p["target"])
        assert_exact(ts, fmt, "target")
        assert all(0 <= t <= 1 for t in ts)
        if fmt in ("float32", "float64"):
            kwargs = S.to_torch(p)
            out = F.cross_entropy(**kwargs)
            C_dim = 0 if kwargs["input"].dim() == 1 else 1
            want = tuple(s for i, s in enumerate(kwargs["input"].shape) if i != C_dim)
            shape_ok_for_reduction(out, kwargs, want)
    feats = {f"target {v!r}": (lambda v: lambda p: v in flat(p["target"]))(v)
             for v in (0.0, 1.0, ulp_below_one(fmt), f.min_subnormal)}
    feats["target below the resolution"] = lambda p: any(0 < t <= res(fmt) and t != f.min_subnormal
                                                         for t in flat(p["target"]))
    feats.update({f"kind {k}": (lambda k: lambda p: p["_rows"][0][1]["kind"] == k)(k) for k in S.PROBABILITY_KINDS})
    missing = uncovered(S.prob_class_problem(fmt, max_classes=12), feats)
    assert not missing, f"{fmt}: never drawn: {missing}"


def binary_features(fmt, with_logits):
    f = OF.get_format(fmt)
    one_ulp = {"exactly 0": 0.0, "exactly 1": 1.0, "one ulp below 1": ulp_below_one(fmt),
               "one ulp above 0": f.min_subnormal}
    huge = min(f.max_finite / 4, 1e30)
    feats = {f"target {k}": (lambda v: lambda p: v in flat(p["target"]))(v) for k, v in one_ulp.items()}
    feats["target below the resolution"] = lambda p: any(0 < v <= res(fmt) and v != f.min_subnormal
                                                         for v in flat(p["target"]))
    feats["zero weight"] = lambda p: 0.0 in flat(p.get("weight", []))
    feats["huge weight"] = lambda p: any(w >= huge for w in flat(p.get("weight", [])))
    feats["weight along the last dim"] = lambda p: "weight" in p and len(shape_of(p["input"])) == 2 \
        and shape_of(p["weight"]) == shape_of(p["input"])[-1:]
    feats.update({f"reduction={r}": (lambda r: lambda p: p["reduction"] == r)(r) for r in S.REDUCTIONS})
    if with_logits:
        feats["logit >= 1e4"] = lambda p: max(flat(p["input"])) >= OF.round_to_format(1e4, fmt)
        feats["logit <= -1e4"] = lambda p: min(flat(p["input"])) <= -OF.round_to_format(1e4, fmt)
        feats["logit near the exp overflow threshold"] = lambda p: any(
            abs(abs(x) - S.exp_thresholds(fmt)["overflow"]) < 3.5 for x in flat(p["input"]))
        feats["tiny pos_weight"] = lambda p: any(0 < w <= f.min_normal for w in p.get("pos_weight", []))
        feats["huge pos_weight"] = lambda p: any(w >= huge for w in p.get("pos_weight", []))
    else:
        feats.update({f"input {k}": (lambda v: lambda p: v in flat(p["input"]))(v) for k, v in one_ulp.items()})
        near = 1 - 64 * math.ldexp(1.0, -f.p)  # 64 ulps below 1
        feats["input a few ulps below 1"] = lambda p: any(near <= v < ulp_below_one(fmt) for v in flat(p["input"]))
        if fmt == "float64":
            feats["input 1e-50"] = lambda p: 1e-50 in flat(p["input"])
    return feats


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("with_logits", [True, False])
def test_binary_problem(fmt, with_logits):
    fn = F.binary_cross_entropy_with_logits if with_logits else F.binary_cross_entropy
    for p in sample(S.binary_problem(fmt, logits=with_logits), 10):
        assert p["_function"] == fn.__name__
        shape = shape_of(p["input"])
        assert shape_of(p["target"]) == shape and math.prod(shape) <= 32
        x, t = flat(p["input"]), flat(p["target"])
        assert_exact(x + t, fmt)
        assert all(0 <= v <= 1 for v in t)
        if with_logits:
            assert all(math.isfinite(v) for v in x)
        else:
            assert all(0 <= v <= 1 for v in x) and "pos_weight" not in p
        if "weight" in p:
            assert shape_of(p["weight"]) in (shape, shape[-1:])
            assert_exact(flat(p["weight"]), fmt)
            assert all(0 <= w < INF for w in flat(p["weight"]))
        if "pos_weight" in p:
            assert shape_of(p["pos_weight"]) == shape[-1:]
            assert_exact(p["pos_weight"], fmt)
        if fmt in ("float32", "float64"):
            kwargs = S.to_torch(p)
            shape_ok_for_reduction(fn(**kwargs), kwargs, shape)
    missing = uncovered(S.binary_problem(fmt, logits=with_logits), binary_features(fmt, with_logits))
    assert not missing, f"{fmt}: never drawn: {missing}"


def test_binary_problem_nonfinite_logits():
    feats = {"+inf": lambda p: INF in flat(p["input"]), "-inf": lambda p: -INF in flat(p["input"])}
    assert not uncovered(S.binary_problem("float32", allow_nonfinite=True), feats)


@pytest.mark.parametrize("fmt", FMTS)
def test_kl_problem(fmt):
    for p in sample(S.kl_problem(fmt), 15):
        shape = shape_of(p["input"])
        assert shape_of(p["target"]) == shape
        x, t = flat(p["input"]), flat(p["target"])
        assert_exact(x + t, fmt)
        assert all(v <= 0 for v in x)
        if p["log_target"]:
            assert all(v <= 0 for v in t)
        else:
            assert all(0 <= v <= 1 for v in t)
        if fmt in ("float32", "float64"):
            kwargs = S.to_torch(p)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # torch's note on reduction="mean"
                out = F.kl_div(**kwargs)
            shape_ok_for_reduction(out, kwargs, shape)
    f = OF.get_format(fmt)
    feats = {
        "-inf in input": lambda p: -INF in flat(p["input"]),
        "-inf in a log target": lambda p: p["log_target"] and -INF in flat(p["target"]),
        "zero probability target": lambda p: not p["log_target"] and 0.0 in flat(p["target"]),
        "extreme input": lambda p: min(flat(p["input"]), default=0) <= -f.max_finite / 4,
        "-smallest subnormal input": lambda p: -f.min_subnormal in flat(p["input"]),
        **{f"reduction={r}": (lambda r: lambda p: p["reduction"] == r)(r)
           for r in ("none", "mean", "sum", "batchmean")},
        "log_target=True": lambda p: p["log_target"],
        "log_target=False": lambda p: not p["log_target"],
    }
    missing = uncovered(S.kl_problem(fmt, max_classes=16), feats)
    assert not missing, f"{fmt}: never drawn: {missing}"


def call_elementwise(p):
    kwargs = S.to_torch(p)
    name = p["_function"]
    fn = {"sigmoid": torch.sigmoid, "logsigmoid": F.logsigmoid, "softplus": F.softplus,
          "xlogy": torch.special.xlogy, "logsumexp": torch.logsumexp, "softmax": F.softmax,
          "log_softmax": F.log_softmax}[name]
    return kwargs, fn(**kwargs)


@pytest.mark.parametrize("fmt", FMTS)
@pytest.mark.parametrize("name", S.ELEMENTWISE)
def test_elementwise_problem(fmt, name):
    for p in sample(S.elementwise_problem(fmt, name), 6):
        assert p["_function"] == name
        x = flat(p["input"])
        assert_exact(x, fmt)
        assert not any(math.isnan(v) for v in x)
        if name == "xlogy":
            y = flat(p["other"])
            assert shape_of(p["other"]) == shape_of(p["input"])
            assert_exact(y, fmt)
            assert all(v >= 0 for v in y)
        if name in ("logsumexp", "softmax", "log_softmax"):
            nd = len(shape_of(p["input"]))
            assert -nd <= p["dim"] < nd
        if name == "softplus":
            assert p["beta"] in (1.0, 0.5, 2.0, 10.0)
        if fmt in ("float32", "float64"):
            kwargs, out = call_elementwise(p)
            want = list(kwargs["input"].shape)
            if name == "logsumexp":
                del want[kwargs["dim"]]
            assert list(out.shape) == want


ELEMENTWISE_FEATURES = {
    "sigmoid": {"+inf": lambda p: INF in flat(p["input"]), "-inf": lambda p: -INF in flat(p["input"]),
                "2-D": lambda p: len(shape_of(p["input"])) == 2},
    "xlogy": {"x = 0, y = 0": lambda p: any(a == 0 and b == 0 for a, b in zip(flat(p["input"]), flat(p["other"]))),
              "y = +inf": lambda p: INF in flat(p["other"]),
              "x = -0.0": lambda p: any(v == 0 and math.copysign(1, v) < 0 for v in flat(p["input"]))},
    "log_softmax": {
        **{f"{n}-D input": (lambda n: lambda p: len(shape_of(p["input"])) == n)(n) for n in (1, 2, 3)},
        "negative dim": lambda p: p["dim"] < 0,
        "dim other than the class dim": lambda p: len(shape_of(p["input"])) > 1 and p["dim"] % 2 == 0,
        "-inf masks": lambda p: -INF in flat(p["input"]),
        "long rows": lambda p: max(shape_of(p["input"])) > 2048,
    },
}


@pytest.mark.parametrize("name", list(ELEMENTWISE_FEATURES))
def test_elementwise_features(name):
    missing = uncovered(S.elementwise_problem("bfloat16", name), ELEMENTWISE_FEATURES[name])
    assert not missing, f"{name}: never drawn: {missing}"


def test_softplus_betas():
    betas = {p["beta"] for fmt in FMTS for p in sample(S.elementwise_problem(fmt, "softplus"), 30)}
    assert betas == {1.0, 0.5, 2.0, 10.0}
