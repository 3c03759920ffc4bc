"""Hypothesis strategies for exact inputs of loss functions (NUMERICS.md, "Input regimes worth generating").

Every strategy here yields *exact values of a format*: Python floats (which hold every float64, float32,
float16 and bfloat16 value exactly) that the format under test represents without rounding, so a tensor built
from them with ``torch.tensor(..., dtype=...)`` holds exactly what the oracle sees. Values are built from the
format's own ordinals (``oracles.formats.from_ordinal``; for long rows, the equivalent bit patterns reinterpreted
with numpy, bfloat16 as the top half of a float32) or rounded once, exactly, by ``oracles.formats.round_to_format``
-- never through another format -- so bfloat16 needs no support from Hypothesis. Infinities and NaN appear only
where a strategy's arguments allow them.

The strategies are small composable public functions. Arguments are validated when the strategy is built (not
when it is drawn from) and bad ones raise ``hypothesis.errors.InvalidArgument``. Nothing is patched globally.

Scalars
    ``values``            any value of a format, biased toward its boundaries
    ``around``            values within a few ulps / a few units of a point
    ``logits``            one logit from a regime of ``REGIMES`` (``logits_with_regime`` also says which)
    ``probabilities``     values in [0, 1]: exactly 0 and 1, one ulp from each, below the format's resolution
    ``weights``           class / element weights: zero, tiny, one, huge
    ``class_counts``      numbers of classes, mostly small, sometimes beyond 2,048
Rows
    ``logit_rows``        one row of logits with a structure of ``STRUCTURES`` -> (row, info)
    ``probability_rows``  one row of target probabilities of a kind of ``PROBABILITY_KINDS`` -> (row, info)
Problems (dicts of the torch function's keyword arguments, as nested lists; metadata under keys "_...")
    ``class_problem``, ``prob_class_problem``  cross_entropy with class indices / probabilities
    ``binary_problem``    binary_cross_entropy_with_logits, or binary_cross_entropy with ``logits=False``
    ``kl_problem``        kl_div
    ``elementwise_problem``  sigmoid, logsigmoid, softplus, xlogy, logsumexp, softmax, log_softmax
Helpers
    ``split_meta``        (kwargs, metadata) of a problem
    ``to_torch``          the kwargs as torch tensors (class indices as int64)

Problem metadata: ``_function`` (the torch / oracle name), ``_format``, ``_regime`` (one line for reports),
``_target_kind`` ("indices", "probabilities" or absent) and, where rows are structured, ``_rows`` (each row's
info dict, in the C order of the non-class dimensions). Strip it with ``split_meta`` before calling.

Sizes: a problem holds at most ``MAX_ELEMENTS`` (20,000) input elements, so the exact oracle (~0.1 ms an
element) finishes one example in about two seconds at worst; most examples are a few dozen elements. Long rows
are built from a few drawn values spread by a drawn seed (and a few ulps of jitter), which keeps every example
within Hypothesis's size budget and lets it shrink rows to a constant. (The spreading uses numpy's PCG64, so a
failure blob replays the same example under the same numpy.)
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable
from fractions import Fraction
from numbers import Integral, Real
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from oracles.formats import FORMATS, Format, from_ordinal, ordinal, round_to_format

__all__ = [
    "FORMAT_NAMES",
    "REGIMES",
    "STRUCTURES",
    "PROBABILITY_KINDS",
    "ELEMENTWISE",
    "REDUCTIONS",
    "MAX_ELEMENTS",
    "exp_thresholds",
    "values",
    "around",
    "logits",
    "logits_with_regime",
    "probabilities",
    "weights",
    "class_counts",
    "logit_rows",
    "probability_rows",
    "class_problem",
    "prob_class_problem",
    "binary_problem",
    "kl_problem",
    "elementwise_problem",
    "split_meta",
    "to_torch",
]

FORMAT_NAMES = tuple(FORMATS)  # ("float64", "float32", "float16", "bfloat16")

#: Regimes of a single logit (NUMERICS.md). Simplest first: Hypothesis shrinks toward the front.
REGIMES = (
    "moderate",       # |x| <= 10
    "fifty",          # within a few units / ulps of +-50
    "beyond",         # 50 <= |x| <= 1e4
    "huge",           # 1e4 <= |x| <= largest finite
    "exp_overflow",   # around +-log(largest finite): 709.78 f64, 88.72 f32/bf16, 11.09 f16
    "exp_underflow",  # around the thresholds where exp underflows: -745.13 f64, -103.28 f32/bf16, -17.33 f16
    "subnormal",      # 0 < |x| < smallest normal
    "zero",           # +0.0 and -0.0
)

#: Structures of a row of logits (NUMERICS.md). "dominant_right"/"dominant_wrong" build the same kind of row;
#: the class-problem strategies make the dominant class the target, or not.
STRUCTURES = (
    "random",
    "dominant_right",
    "dominant_wrong",
    "near_ties",
    "equal",
    "huge_spread",
    "large_offset",
    "masked",
    "all_but_one_masked",
)
_NONFINITE_STRUCTURES = ("masked", "all_but_one_masked")

#: Kinds of a row of target probabilities.
PROBABILITY_KINDS = (
    "one_hot",        # exactly 1 and 0
    "near_one_hot",   # one ulp below 1, zeros and values one ulp above 0
    "soft",           # normalised random weights, each rounded to the format (sum ~ 1)
    "smoothed",       # 1 - eps and eps / (C - 1), rounded
    "uniform",        # RN(1 / C)
    "tiny",           # 1 (or one ulp below) and values below the format's resolution
    "arbitrary",      # independent probabilities, not normalised (zeros included)
)

#: Names ``elementwise_problem`` accepts (the oracle's and torch's names).
ELEMENTWISE = ("sigmoid", "logsigmoid", "softplus", "xlogy", "logsumexp", "softmax", "log_softmax")

REDUCTIONS = ("mean", "none", "sum")
MAX_ELEMENTS = 20_000

_EXPLICIT_MAX = 16   # rows up to this length are drawn element by element
_PALETTE_MAX = 8     # longer rows: this many drawn values, spread by a seed
_DRAWN_ROWS = 8      # further rows of a batch repeat drawn ones
_SEEDS = st.integers(0, 2**32 - 1)
_INF = math.inf


# ------------------------------------------------------------------------------------------------------------
# argument validation


def _fmt(fmt: object) -> Format:
    if isinstance(fmt, Format):
        return fmt
    if isinstance(fmt, str) and fmt in FORMATS:
        return FORMATS[fmt]
    raise InvalidArgument(f"fmt={fmt!r}: expected one of {', '.join(FORMAT_NAMES)} (or an oracles Format)")


def _check_bool(name, v):
    if not isinstance(v, bool):
        raise InvalidArgument(f"{name}={v!r} must be True or False")


def _check_int(name, v, lo, hi=None):
    if isinstance(v, bool) or not isinstance(v, Integral):
        raise InvalidArgument(f"{name}={v!r} must be an integer")
    if v < lo or (hi is not None and v > hi):
        raise InvalidArgument(f"{name}={v!r} must be >= {lo}" + (f" and <= {hi}" if hi is not None else ""))
    return int(v)


def _check_real(name, v):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, Real):
        raise InvalidArgument(f"{name}={v!r} must be a real number or None")
    if isinstance(v, float) and math.isnan(v):
        raise InvalidArgument(f"{name} must not be NaN")
    if not isinstance(v, (float, Fraction)):
        v = Fraction(v) if isinstance(v, Integral) else float(v)
    return v


def _choice(name, v, allowed, default):
    """None -> default tuple; a name -> (name,); a sequence of names -> tuple. Each must be in ``allowed``."""
    if v is None:
        return tuple(default)
    names = (v,) if isinstance(v, str) else v
    try:
        names = tuple(names)
    except TypeError:
        raise InvalidArgument(f"{name}={v!r}: expected a name or a sequence of names from {allowed}") from None
    if not names:
        raise InvalidArgument(f"{name}={v!r} is empty")
    for n in names:
        if n not in allowed:
            raise InvalidArgument(f"{name}: {n!r} is not one of {allowed}")
    return names


# ------------------------------------------------------------------------------------------------------------
# exact arithmetic helpers


def _rn(x: float | Fraction, f: Format) -> float:
    """RN(x) into ``f`` for an exact float/int/Fraction, clamped to the finite range."""
    r = round_to_format(x, f)
    if math.isinf(r):
        return math.copysign(f.max_finite, r)
    return r


def _from_ord(o: int, f: Format) -> float:
    m = f.max_ordinal
    return from_ordinal(max(-m, min(m, o)), f)


def exp_thresholds(fmt: str | Format) -> dict:
    """Where exp leaves the finite, normal range of ``fmt``, as float64 values (not exact in ``fmt``):
    ``overflow`` = log(largest finite); ``underflow`` = log(smallest subnormal / 2), below which exp rounds to 0;
    ``subnormal`` = log(smallest subnormal); ``normal`` = log(smallest normal)."""
    f = _fmt(fmt)
    ln2 = math.log(2)
    return {
        "overflow": math.log(f.max_finite),
        "underflow": (f.quantum_min - 1) * ln2,
        "subnormal": f.quantum_min * ln2,
        "normal": f.emin * ln2,
    }


# ------------------------------------------------------------------------------------------------------------
# values


def values(fmt: str | Format, min_value: float | Fraction | None = None, max_value: float | Fraction | None = None,
           allow_nan: bool = False, allow_infinity: bool = False,
           allow_subnormal: bool = True) -> st.SearchStrategy[float]:
    """Exact values of format ``fmt`` in [min_value, max_value] (bounds need not be values of the format).

    Draws an ordinal of the format, so every value is exact and the distribution is roughly uniform in the
    exponent; a quarter of draws are the boundaries inside the range (0, -0, +-1 and their neighbours, +-smallest
    subnormal, +-largest subnormal, +-smallest normal, +-largest finite, the range's ends) and a quarter are a few
    ordinals away from one. Shrinks toward the simplest boundary (0 where allowed). -0.0 is excluded by
    ``min_value=0.0`` (as in ``hypothesis.strategies.floats``). ``allow_nan`` needs no bounds; ``allow_infinity``
    needs an unbounded (or infinite) side.
    """
    f = _fmt(fmt)
    for name, v in (("allow_nan", allow_nan), ("allow_infinity", allow_infinity),
                    ("allow_subnormal", allow_subnormal)):
        _check_bool(name, v)
    lo_v, hi_v = _check_real("min_value", min_value), _check_real("max_value", max_value)
    if allow_nan and (lo_v is not None or hi_v is not None):
        raise InvalidArgument("allow_nan=True cannot be combined with min_value or max_value")
    # the cache key carries the sign of a zero bound (0.0 == -0.0 would share an entry)
    return _values(f, (lo_v, _is_neg_zero(lo_v)), (hi_v, _is_neg_zero(hi_v)), allow_nan, allow_infinity,
                   allow_subnormal)


def _is_neg_zero(v: object) -> bool:
    return isinstance(v, float) and v == 0 and math.copysign(1.0, v) < 0


@functools.lru_cache(maxsize=512)
def _values(f, lo_key, hi_key, allow_nan, allow_infinity, allow_subnormal):
    lo_v, hi_v = lo_key[0], hi_key[0]
    M, H = f.max_ordinal, 2 ** (f.p - 1)
    if lo_v is not None and hi_v is not None:
        if lo_v > hi_v or (lo_v == hi_v == 0 and _is_neg_zero(hi_v) and not _is_neg_zero(lo_v)):
            raise InvalidArgument(f"min_value={lo_v!r} is greater than max_value={hi_v!r}")

    # ordinal bounds of the finite values in range
    if lo_v is None:
        lo = -M
    else:
        r = round_to_format(lo_v, f)
        if r < lo_v:
            r = from_ordinal(ordinal(r, f) + 1, f)
        lo = ordinal(r, f) if r != 0 else 0
    if hi_v is None:
        hi = M
    else:
        r = round_to_format(hi_v, f)
        if r > hi_v:
            r = from_ordinal(ordinal(r, f) - 1, f)
        hi = ordinal(r, f) if r != 0 else 0
    lo, hi = max(lo, -M), min(hi, M)
    if not allow_subnormal:
        if 0 < lo < H:
            lo = H
        elif -H < lo < 0:
            lo = 0
        if 0 < hi < H:
            hi = 0
        elif -H < hi < 0:
            hi = -H
    zeros = []
    if lo <= 0 <= hi:
        if hi_v is None or hi_v > 0 or (hi_v == 0 and not _is_neg_zero(hi_v)):
            zeros.append(0.0)
        if lo_v is None or lo_v < 0 or _is_neg_zero(lo_v):
            zeros.append(-0.0)

    infs = []
    if allow_infinity:
        if hi_v is None or hi_v == _INF:
            infs.append(_INF)
        if lo_v is None or lo_v == -_INF:
            infs.append(-_INF)
        if not infs:
            raise InvalidArgument("allow_infinity=True, but both min_value and max_value are finite")

    # compressed ordinals: subnormals removed when they are not allowed
    def compress(o):
        if allow_subnormal or o == 0:
            return o
        return o - H + 1 if o > 0 else o + H - 1

    def expand(c):
        if allow_subnormal or c == 0:
            return c
        return c + H - 1 if c > 0 else c - H + 1

    branches = []
    if lo <= hi:
        clo, chi = compress(lo), compress(hi)

        def value_of(c):
            o = expand(c)
            return zeros[0] if o == 0 else from_ordinal(o, f)

        def ok(v):
            if not math.isfinite(v):
                return False
            if v == 0:
                return any(math.copysign(1, v) == math.copysign(1, z) for z in zeros)
            o = ordinal(v, f)
            return lo <= o <= hi and (allow_subnormal or abs(o) >= H)

        one = 1.0
        cands = [0.0, one, -0.0, -one, from_ordinal(ordinal(one, f) + 1, f), from_ordinal(ordinal(one, f) - 1, f),
                 2.0, 0.5, f.min_subnormal, f.min_normal, from_ordinal(H - 1, f), f.max_finite,
                 from_ordinal(M - 1, f)]
        cands += [-c for c in cands[4:]]
        cands += [value_of(clo), value_of(chi), value_of(min(clo + 1, chi)), value_of(max(chi - 1, clo))]
        bounds, seen = [], set()
        for v in cands:
            key = (v, math.copysign(1, v))
            if key not in seen and ok(v):
                seen.add(key)
                bounds.append(v)
        bound_cs = sorted({compress(ordinal(v, f)) for v in bounds}, key=abs)

        def near(t):
            c, k = t
            return value_of(max(clo, min(chi, c + k)))

        branches.append(st.sampled_from(bounds))
        branches.append(st.tuples(st.sampled_from(bound_cs), st.integers(-4, 4)).map(near))
        branches.append(st.integers(clo, chi).map(value_of))
    specials = infs + ([math.nan] if allow_nan else [])
    if specials:
        branches.append(st.sampled_from(specials))
    if not branches:
        raise InvalidArgument(f"no {f.name} value lies in [{lo_v!r}, {hi_v!r}] with these flags")
    return st.one_of(branches)


def around(fmt: str | Format, center: float | Fraction, max_ulps: int = 4,
           max_offset: float = 3.0) -> st.SearchStrategy[float]:
    """Exact finite values of ``fmt`` near the real ``center``: RN(center) moved by up to ``max_ulps`` ordinals,
    or RN(center + d) for an offset |d| <= ``max_offset`` (clamped to the largest finite value)."""
    f = _fmt(fmt)
    c = _check_real("center", center)
    if c is None or (isinstance(c, float) and not math.isfinite(c)):
        raise InvalidArgument(f"center={center!r} must be a finite real number")
    _check_int("max_ulps", max_ulps, 0)
    off = _check_real("max_offset", max_offset)
    if off is None or off < 0 or (isinstance(off, float) and not math.isfinite(off)):
        raise InvalidArgument(f"max_offset={max_offset!r} must be a finite number >= 0")
    return _around(f, c, int(max_ulps), float(off))


@functools.lru_cache(maxsize=256)
def _around(f, center, max_ulps, max_offset):
    c = _rn(center, f)
    oc = ordinal(c, f)
    exact = st.integers(-max_ulps, max_ulps).map(lambda k: _from_ord(oc + k, f))
    if max_offset == 0:
        return exact
    offs = st.one_of(
        st.integers(-int(max_offset), int(max_offset)).map(float),
        st.floats(-max_offset, max_offset, allow_nan=False, allow_infinity=False),
    )
    return st.one_of(exact, offs.map(lambda d: _rn(Fraction(c) + Fraction(d), f)))


def _signed(s, negative_first=False):
    """``s`` (nonnegative values) with a drawn sign; shrinks to positive (negative if ``negative_first``)."""
    def apply(t):
        flip, v = t
        return v if flip == negative_first else -v
    return st.tuples(st.booleans(), s).map(apply)


# ------------------------------------------------------------------------------------------------------------
# logits


@functools.lru_cache(maxsize=None)
def _regime(fname: str, regime: str) -> st.SearchStrategy[float]:
    f = FORMATS[fname]
    big = _rn(1e4, f)
    if regime == "moderate":
        return st.one_of(
            st.integers(-10, 10).map(float),
            _signed(values(f, 2.0**-10, 10.0)),
            values(f, -10.0, 10.0),
        )
    if regime == "fifty":
        return st.one_of(around(f, 50, 4, 5.0), around(f, -50, 4, 5.0))
    if regime == "beyond":
        return _signed(values(f, 50.0, big))
    if regime == "huge":
        return _signed(values(f, big, f.max_finite))
    t = exp_thresholds(f)
    if regime == "exp_overflow":
        return _signed(around(f, t["overflow"], 4, 3.0))
    if regime == "exp_underflow":
        centres = [t["underflow"], t["subnormal"], t["normal"]]
        if fname == "bfloat16":  # computed in float32 and rounded: float32's thresholds matter too
            t32 = exp_thresholds("float32")
            centres += [t32["underflow"], t32["subnormal"]]
        return _signed(st.one_of([around(f, -c, 4, 3.0) for c in centres]), negative_first=True)
    if regime == "subnormal":
        return _signed(values(f, f.min_subnormal, from_ordinal(2 ** (f.p - 1) - 1, f)))
    if regime == "zero":
        return st.sampled_from([0.0, -0.0])
    raise AssertionError(regime)  # pragma: no cover


def logits_with_regime(fmt: str | Format,
                       regime: str | Iterable[str] | None = None) -> st.SearchStrategy[tuple[str, float]]:
    """(regime, logit) pairs: the regime drawn from ``regime`` (None: all of ``REGIMES``; a name; a sequence of
    names), and one exact value of ``fmt`` from it."""
    f = _fmt(fmt)
    names = _choice("regime", regime, REGIMES, REGIMES)
    by = {r: _regime(f.name, r) for r in names}
    return st.sampled_from(names).flatmap(lambda r: by[r].map(lambda v: (r, v)))


def logits(fmt: str | Format, regime: str | Iterable[str] | None = None) -> st.SearchStrategy[float]:
    """One logit, an exact finite value of ``fmt``, from ``regime`` (a name of ``REGIMES``, a sequence of them,
    or None for any): see ``REGIMES`` for the ranges."""
    f = _fmt(fmt)
    return _logits(f.name, _choice("regime", regime, REGIMES, REGIMES))


@functools.lru_cache(maxsize=None)
def _logits(fname, names):
    if len(names) == 1:
        return _regime(fname, names[0])
    return st.one_of([_regime(fname, r) for r in names])


# ------------------------------------------------------------------------------------------------------------
# probabilities and weights


def _one_minus(f: Format, k: int) -> float:
    return from_ordinal(ordinal(1.0, f) - k, f)


def probabilities(fmt: str | Format, allow_zero: bool = True, allow_one: bool = True) -> st.SearchStrategy[float]:
    """Exact values of ``fmt`` in [0, 1]: exactly 0 and 1, one ulp from each (the smallest subnormal, the value
    below 1), the smallest normal, tiny values below the format's resolution (x <= 2**-(p+1), so 1 - x rounds
    to 1), values near 1 - tiny, and any value in [0, 1]. Never -0.0."""
    f = _fmt(fmt)
    _check_bool("allow_zero", allow_zero)
    _check_bool("allow_one", allow_one)
    return _probabilities(f, allow_zero, allow_one)


@functools.lru_cache(maxsize=None)
def _probabilities(f, allow_zero, allow_one):
    res = math.ldexp(1.0, -(f.p + 1))
    notable = [0.0, 1.0, 0.5, _one_minus(f, 1), f.min_subnormal, f.min_normal]
    notable += [_rn(x, f) for x in (1e-50, 1e-30, 1e-10, 1e-7, 1e-3, 0.1, 0.9, 0.999)]
    notable = [v for i, v in enumerate(notable) if v not in notable[:i]
               and (allow_zero or v != 0) and (allow_one or v != 1)]
    lo = f.min_subnormal if not allow_zero else 0.0
    hi = _one_minus(f, 1) if not allow_one else 1.0
    near_one = st.integers(1, 2 ** (f.p - 1)).map(lambda k: _one_minus(f, k))
    return st.one_of(
        st.sampled_from(notable),
        values(f, f.min_subnormal, res),   # below resolution
        near_one,
        values(f, lo, hi),
    )


def weights(fmt: str | Format) -> st.SearchStrategy[float]:
    """Nonnegative finite weights, exact in ``fmt``: 0, tiny (smallest subnormal, RN(1e-30)), 1, huge (RN(1e30)
    where finite, the largest finite and its neighbour) and anything from 0 to 10 or to the largest finite."""
    return _weights(_fmt(fmt))


@functools.lru_cache(maxsize=None)
def _weights(f):
    notable = [1.0, 0.0, f.min_subnormal, round_to_format(1e-30, f), round_to_format(1e30, f), f.max_finite,
               from_ordinal(f.max_ordinal - 1, f), 0.5, 2.0, f.min_normal]
    notable = [v for i, v in enumerate(notable) if math.isfinite(v) and v not in notable[:i]]
    return st.one_of(st.sampled_from(notable), values(f, 0.0, 10.0), values(f, 0.0, f.max_finite))


# ------------------------------------------------------------------------------------------------------------
# class counts


def class_counts(max_classes: int = 4096, min_classes: int = 2, large_share: float = 0.2) -> st.SearchStrategy[int]:
    """Numbers of classes in [min_classes, max_classes]. A share ``large_share`` of draws (default a fifth) is
    large: two in three a notable size from 1,024 up (2047-2050, 4095, 4096, 65536, ...), else anything beyond
    2,048 when the range reaches there; of the rest, five in eight are 2..16, two in eight up to 512 and one in
    eight a notable small size (2, 3, 10, 100, 256-258: past the integers bfloat16 holds, 1000). A lower share keeps
    a run's cost down (the exact oracle's cost grows with the classes) without taking the large sizes out of reach.
    Shrinks toward ``min_classes``."""
    hi = _check_int("max_classes", max_classes, 1)
    lo = _check_int("min_classes", min_classes, 1)
    if lo > hi:
        raise InvalidArgument(f"min_classes={lo} is greater than max_classes={hi}")
    if not isinstance(large_share, Real) or not 0 <= large_share <= 1:
        raise InvalidArgument(f"large_share={large_share!r} must be a number in [0, 1]")
    sizes = {x for x in (2, 3, 10, 100, 256, 257, 258, 1000, 1024, 2047, 2048, 2049, 2050, 4095, 4096, 65536, 65537,
                         131072, 262144, lo, hi) if lo <= x <= hi}
    small_notable = sorted(x for x in sizes if x < 1024)
    large_notable = sorted(x for x in sizes if x >= 1024)
    small = [st.integers(lo, min(hi, 16))] * 5 + [st.integers(lo, min(hi, 512))] * 2
    if small_notable:
        small.append(st.sampled_from(small_notable))
    large = [st.integers(max(lo, 2049), hi) if hi > 2048 else st.integers(lo, hi)]
    if large_notable:  # two in three large draws: the sizes where blocked kernels change path
        large += [st.sampled_from(large_notable)] * 2
    small_s = st.integers(0, len(small) - 1).flatmap(lambda i: small[i])
    large_s = st.integers(0, len(large) - 1).flatmap(lambda i: large[i])
    cut = round(1000 * (1 - large_share))  # draws below the cut are small: shrinking goes there
    return st.integers(0, 999).flatmap(lambda r: small_s if r < cut else large_s)


# ------------------------------------------------------------------------------------------------------------
# rows


_BITS = {"float64": (np.uint64, np.float64, 0), "float32": (np.uint32, np.float32, 0),
         "float16": (np.uint16, np.float16, 0), "bfloat16": (np.uint32, np.float32, 16)}


def _ords_to_floats(ords: np.ndarray, f: Format) -> list:
    """Python floats of the given ordinals (an int64 array within +-max_ordinal). A nonnegative value's
    ordinal is its IEEE bit pattern (bfloat16: the top half of a float32's), so this is a reinterpretation."""
    utype, ftype, shift = _BITS[f.name]
    mag = np.abs(ords).astype(utype) << utype(shift) if shift else np.abs(ords).astype(utype)
    vals = mag.view(ftype).astype(np.float64)
    return np.where(ords < 0, -vals, vals).tolist()


def _rng(draw):
    return np.random.Generator(np.random.PCG64(draw(_SEEDS)))


def _fill(draw, f, n, elem, jitter=True, lo=None, hi=None):
    """n values: drawn one by one for short rows; for long rows a palette of drawn values, placed by a drawn
    seed and (with ``jitter``) moved a few ordinals each, staying within [lo, hi] (values of ``f`` or None);
    non-finite values stay as they are."""
    if n <= _EXPLICIT_MAX:
        return [draw(elem) for _ in range(n)]
    k = draw(st.integers(1, _PALETTE_MAX))
    palette = [draw(elem) for _ in range(k)]
    rng = _rng(draw)
    spread = draw(st.sampled_from((0, 1, 4, 256))) if jitter else 0
    idx = rng.integers(0, k, n)
    out = [palette[i] for i in idx.tolist()]
    if spread:
        olo = -f.max_ordinal if lo is None else ordinal(lo, f)
        ohi = f.max_ordinal if hi is None else ordinal(hi, f)
        finite = np.array([math.isfinite(v) for v in palette])
        pal_ord = np.array([ordinal(v, f) if math.isfinite(v) else 0 for v in palette], dtype=np.int64)
        offs = rng.integers(-spread, spread + 1, n)
        moved = _ords_to_floats(np.clip(pal_ord[idx] + offs, olo, ohi), f)
        keep = (~finite[idx] | (offs == 0)).tolist()
        out = [a if kp else b for a, b, kp in zip(out, moved, keep)]
    return out


#: positions whose index a low-precision float cannot hold: 257 and 259 round to 256 and 260 in bfloat16 (8
#: significant bits), 2,049 and 2,051 to 2,048 and 2,052 in float16 (11 bits). An index (a class target, the
#: dominant logit) is drawn there as often as at the ends of the row, where the row is long enough: integer labels
#: cast to the input's format then name another class (NUMERICS.md, mistakes)
_CAST_SENSITIVE = (257, 259, 2049, 2051)


def _index(n):
    notable = sorted({0, n - 1} | {k for k in _CAST_SENSITIVE if k < n})
    return st.one_of(st.sampled_from(notable), st.integers(0, n - 1))


#: structures whose rounding error grows with the row's length (many comparable terms in one sum): a long row
#: (more than _LONG_ROW classes) is drawn in one of them every other time, where it tests what a short row cannot
#: (a sum accumulated one term at a time in float16 stalls at 2,048 when the terms are near 1)
_LONG_ROW_STRUCTURES = ("equal", "near_ties", "large_offset")
_LONG_ROW = 1024


def _structure(draw, structures, n):
    if n > _LONG_ROW:
        long_row = [s for s in structures if s in _LONG_ROW_STRUCTURES]
        if long_row and draw(st.booleans()):
            return draw(st.sampled_from(long_row))
    return draw(st.sampled_from(structures))


@functools.lru_cache(maxsize=None)
def _gap(f):
    big = _rn(1e4, f)
    return st.one_of(st.sampled_from([_rn(x, f) for x in (10.0, 20.0, 50.0, 100.0, 1000.0)]),
                     values(f, 10.0, 100.0), values(f, 100.0, big), values(f, big, f.max_finite))


def _offset_scale(f):
    """A common offset for "large_offset" rows: 1e8, or an eighth of the largest finite where that is smaller
    (float16: ~8,188), so the offset and its neighbours are finite values of the format."""
    return min(1e8, f.max_finite / 8)


@st.composite
def _row(draw, f, n, structures, allow_nonfinite):
    if not isinstance(n, int):
        n = draw(n)
    s = draw(st.sampled_from(structures))
    info = {"structure": s, "dominant": None}
    finite_any = logits(f)
    if s == "random":
        row = _fill(draw, f, n, finite_any)
    elif s in ("dominant_right", "dominant_wrong"):
        row = _fill(draw, f, n, logits(f, ("moderate", "zero", "subnormal", "fifty", "exp_underflow")))
        j = draw(_index(n))
        top = max(v for i, v in enumerate(row) if i != j) if n > 1 else row[0]
        d = _rn(Fraction(top) + Fraction(draw(_gap(f))), f)
        if d <= top:
            d = _from_ord(ordinal(top, f) + 1, f)
        row[j] = d
        info["dominant"] = j
    elif s == "near_ties":
        c = draw(finite_any)
        oc = ordinal(c, f)
        k = draw(st.sampled_from((1, 2, 4, 16)))
        if n <= _EXPLICIT_MAX:
            row = [_from_ord(oc + draw(st.integers(-k, k)), f) for _ in range(n)]
        else:
            offs = _rng(draw).integers(-k, k + 1, n)
            row = _ords_to_floats(np.clip(oc + offs, -f.max_ordinal, f.max_ordinal), f)
        info["ulps"] = k
    elif s == "equal":
        row = [draw(finite_any)] * n
    elif s == "huge_spread":
        row = _fill(draw, f, n, logits(f, ("huge", "moderate", "beyond", "subnormal", "zero")))
        mag = values(f, _rn(1e4, f), f.max_finite)
        i = draw(_index(n))
        row[i] = draw(mag)
        if n > 1:
            j = (i + 1 + draw(st.integers(0, n - 2))) % n
            row[j] = -draw(mag)
    elif s == "large_offset":
        scale = _offset_scale(f)
        sign = -1.0 if draw(st.booleans()) else 1.0
        o = sign * draw(values(f, scale / 4, scale * 4))
        diffs = st.one_of(logits(f, ("moderate", "zero")), st.integers(-1000, 1000).map(float))
        row = _fill(draw, f, n, diffs.map(lambda d: _rn(Fraction(o) + Fraction(d), f)))
        info["offset"] = o
    elif s == "masked":
        row = _fill(draw, f, n, logits(f, ("moderate", "fifty", "beyond", "zero", "exp_overflow")))
        if n > 1:
            if n <= _EXPLICIT_MAX:
                mask = [draw(st.booleans()) for _ in range(n)]
            else:
                q = draw(st.sampled_from((0.5, 0.1, 0.9, 0.999)))
                mask = (_rng(draw).random(n) < q).tolist()
            if not any(mask):
                mask[draw(_index(n))] = True
            if all(mask):
                mask[draw(_index(n))] = False
            row = [-_INF if m else v for v, m in zip(row, mask)]
        info["masked"] = sum(1 for v in row if v == -_INF)
    elif s == "all_but_one_masked":
        j = draw(_index(n))
        row = [-_INF] * n
        row[j] = draw(finite_any)
        info["dominant"] = j
        info["masked"] = n - 1
    else:  # pragma: no cover
        raise AssertionError(s)
    return row, info


def _n_arg(n_classes):
    if isinstance(n_classes, st.SearchStrategy):
        return n_classes
    return _check_int("n_classes", n_classes, 1)


def _structures_arg(structure, allow_nonfinite):
    default = STRUCTURES if allow_nonfinite else tuple(s for s in STRUCTURES if s not in _NONFINITE_STRUCTURES)
    names = _choice("structure", structure, STRUCTURES, default)
    if not allow_nonfinite and any(s in _NONFINITE_STRUCTURES for s in names):
        raise InvalidArgument(f"structure={structure!r} needs -inf, but allow_nonfinite=False")
    return names


def logit_rows(fmt: str | Format, n_classes: int | st.SearchStrategy[int], structure: str | Iterable[str] | None = None,
               allow_nonfinite: bool = True) -> st.SearchStrategy[tuple[list[float], dict[str, Any]]]:
    """One row of ``n_classes`` logits (an int, or a strategy of ints) with a structure from ``STRUCTURES``
    (None: any; with ``allow_nonfinite=False`` the masked structures are left out). Yields ``(row, info)``:
    ``info["structure"]``, ``info["dominant"]`` (the index of the dominant logit for "dominant_*" and of the one
    unmasked logit for "all_but_one_masked", else None) and, by structure, "ulps", "offset", "masked".

    - random: mixed regimes; dominant_*: one logit 10 to ~max above all others (which are moderate, subnormal,
      zero, near 50 or near the exp underflow threshold); near_ties: within 1-16 ordinals of one value;
      equal: one value repeated; huge_spread: both ~+huge and ~-huge present; large_offset: RN(O + d) for a
      common offset |O| ~ 1e8 (float16: ~8e3) and small d; masked: some -inf and some finite;
      all_but_one_masked: -inf except one finite.
    """
    f = _fmt(fmt)
    n = _n_arg(n_classes)
    _check_bool("allow_nonfinite", allow_nonfinite)
    return _row(f, n, _structures_arg(structure, allow_nonfinite), allow_nonfinite)


@st.composite
def _prob_row(draw, f, n, kinds):
    if not isinstance(n, int):
        n = draw(n)
    kind = draw(st.sampled_from(kinds))
    info = {"kind": kind, "hot": None}
    res = math.ldexp(1.0, -(f.p + 1))
    if kind in ("one_hot", "near_one_hot", "smoothed", "tiny"):
        j = draw(_index(n))
        info["hot"] = j
        if kind == "one_hot":
            row = [0.0] * n
            row[j] = 1.0
        elif kind == "near_one_hot":
            rest = st.sampled_from([0.0, f.min_subnormal, f.min_normal, _rn(1e-30, f)])
            row = _fill(draw, f, n, rest, jitter=False)
            row[j] = _one_minus(f, 1)
        elif kind == "smoothed":
            eps = draw(st.sampled_from([0.1, 0.01, 0.5, math.ldexp(1.0, -f.p)]))
            if n == 1:
                row = [1.0]
            else:
                row = [_rn(Fraction(eps) / (n - 1), f)] * n
                row[j] = _rn(1 - Fraction(eps), f)
        else:
            row = _fill(draw, f, n, st.one_of(st.just(0.0), values(f, f.min_subnormal, res)), lo=0.0, hi=res)
            row[j] = draw(st.sampled_from([1.0, _one_minus(f, 1)]))
    elif kind == "soft":
        w = _fill(draw, f, n, st.one_of(values(f, 0.0, 1.0), st.integers(0, 10).map(float)), lo=0.0, hi=10.0)
        total = math.fsum(w)
        if total == 0:
            w = [1.0] * n
            total = float(n)
        row = [_rn(x / total, f) for x in w]
    elif kind == "uniform":
        row = [_rn(Fraction(1, n), f)] * n
    elif kind == "arbitrary":
        row = _fill(draw, f, n, probabilities(f), lo=0.0, hi=1.0)
    else:  # pragma: no cover
        raise AssertionError(kind)
    return row, info


def probability_rows(fmt: str | Format, n_classes: int | st.SearchStrategy[int],
                     kind: str | Iterable[str] | None = None) -> st.SearchStrategy[tuple[list[float], dict[str, Any]]]:
    """One row of ``n_classes`` target probabilities (exact in ``fmt``, in [0, 1]) of a kind from
    ``PROBABILITY_KINDS`` (None: any). Yields ``(row, info)`` with ``info["kind"]`` and ``info["hot"]`` (the
    index of the (near-)one entry, or None)."""
    f = _fmt(fmt)
    return _prob_row(f, _n_arg(n_classes), _choice("kind", kind, PROBABILITY_KINDS, PROBABILITY_KINDS))


# ------------------------------------------------------------------------------------------------------------
# assembling tensors as nested lists


def _nest(flat, shape):
    if not shape:
        return flat[0]
    for d in reversed(shape[1:]):
        flat = [flat[i:i + d] for i in range(0, len(flat), d)]
    return flat


def _assemble(shape, axis, rows):
    """Nested lists of ``shape`` whose 1-D slices along ``axis`` are ``rows``, in C order of the other axes."""
    shape = tuple(shape)
    size = math.prod(shape)
    strides = [math.prod(shape[i + 1:]) for i in range(len(shape))]
    others = [range(s) for i, s in enumerate(shape) if i != axis]
    flat = [None] * size
    for r, idx in enumerate(itertools.product(*others)):
        idx = list(idx)
        base = sum(i * strides[a] for a, i in zip([a for a in range(len(shape)) if a != axis], idx))
        row = rows[r]
        for k in range(shape[axis]):
            flat[base + k * strides[axis]] = row[k]
    return _nest(flat, shape)


def _repeat_rows(draw, gen, count):
    """``count`` rows: up to _DRAWN_ROWS drawn from ``gen``, the rest repeat drawn ones (placed by a seed); one
    batch in eight repeats a single row throughout (the reduction over identical large terms: a mean whose sum
    overflows the format although each term and the mean do not)."""
    if count > 1 and draw(st.integers(0, 7)) == 7:
        return [draw(gen)] * count
    drawn = [draw(gen) for _ in range(min(count, _DRAWN_ROWS))]
    if count <= len(drawn):
        return drawn
    picks = _rng(draw).integers(0, len(drawn), count - len(drawn)).tolist()
    return drawn + [drawn[i] for i in picks]


def _layout(draw, C, max_batch, allow_spatial, max_elements, allow_1d=True):
    """(shape, rows) with classes along dim 1 (dim 0 for 1-D)."""
    kinds = (["1d"] if allow_1d else []) + ["batch"] + (["spatial"] if allow_spatial else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "1d":
        return (C,), 1
    N = draw(st.integers(1, max(1, min(max_batch, max_elements // C))))
    if kind == "batch":
        return (N, C), N
    D = draw(st.integers(1, max(1, min(3, max_elements // (N * C)))))
    return (N, C, D), N * D


def _input_from_rows(shape, rows):
    if len(shape) == 1:
        return list(rows[0])
    if len(shape) == 2:
        return [list(r) for r in rows]
    return _assemble(shape, 1, rows)


def _label_smoothing(f):
    return st.one_of(st.sampled_from([0.0, 0.1, 0.5, 1.0]), values(f, 0.0, 0.25))


def _weight_vector(draw, f, C):
    mode = draw(st.sampled_from(("none", "ones", "mixed", "uniform")))
    if mode == "none":
        return mode, None
    if mode == "ones":
        return mode, [1.0] * C
    if mode == "uniform":
        return mode, [draw(weights(f))] * C
    return mode, _fill(draw, f, C, weights(f), lo=0.0, hi=f.max_finite)


def _check_problem_args(fmt, max_classes, max_batch, allow_spatial, allow_nonfinite, max_elements):
    f = _fmt(fmt)
    _check_int("max_classes", max_classes, 2)
    _check_int("max_batch", max_batch, 1)
    _check_int("max_elements", max_elements, 2)
    _check_bool("allow_spatial", allow_spatial)
    _check_bool("allow_nonfinite", allow_nonfinite)
    return f


# ------------------------------------------------------------------------------------------------------------
# cross-entropy problems


def class_problem(fmt: str | Format, max_classes: int = 4096, max_batch: int = 4, allow_spatial: bool = True,
                  allow_nonfinite: bool = True, max_elements: int = MAX_ELEMENTS,
                  structure: str | Iterable[str] | None = None,
                  large_share: float = 0.2) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments of ``torch.nn.functional.cross_entropy`` with class-index targets.

    ``input``: shape (C,), (N, C) or (N, C, d1) (at most ``max_elements`` elements), rows from ``logit_rows``
    with one structure per problem (``structure`` restricts it); ``target``: a 0-d int for 1-D input, else
    nested lists of ints: the dominant class for "dominant_right" (and mostly for "all_but_one_masked"), another
    class for "dominant_wrong", mostly an unmasked class for "masked"; sometimes some or all targets set to the
    ignore index, which is the default -100 (not passed), -100 or -1 passed, or a valid class.
    ``weight`` (C,) sometimes: ones, one value, or mixed zero/tiny/1/huge; ``label_smoothing`` 0, 0.1, 0.5, 1 (as
    binary64 numbers: torch takes a double) or a small value exact in the format; ``reduction`` none/mean/sum.
    ``large_share``: the share of draws with 1,024 classes or more (``class_counts``).
    Metadata: ``_function`` = "cross_entropy", ``_format``, ``_target_kind`` = "indices", ``_regime``, ``_rows``.
    """
    f = _check_problem_args(fmt, max_classes, max_batch, allow_spatial, allow_nonfinite, max_elements)
    names = _structures_arg(structure, allow_nonfinite)
    return _class_problem(f, class_counts(max_classes, large_share=large_share), max_batch, allow_spatial,
                          allow_nonfinite, max_elements, names)


def _pick_target(draw, C, row, info):
    s, j = info["structure"], info["dominant"]
    if s == "dominant_right":
        return j
    if s == "dominant_wrong":
        return (j + 1 + draw(st.integers(0, C - 2))) % C
    if s == "all_but_one_masked":
        if draw(st.integers(0, 4)) or C == 1:
            return j
        return (j + 1 + draw(st.integers(0, C - 2))) % C
    if s == "masked" and draw(st.integers(0, 4)):
        live = [i for i, v in enumerate(row) if v != -_INF]
        return live[draw(_index(len(live)))]
    return draw(_index(C))


@st.composite
def _class_problem(draw, f, classes, max_batch, allow_spatial, allow_nonfinite, max_elements, structures):
    C = draw(classes)
    shape, R = _layout(draw, C, max_batch, allow_spatial, max_elements)
    s = _structure(draw, structures, C)
    pairs = _repeat_rows(draw, _row(f, C, (s,), allow_nonfinite), R)
    rows = [p[0] for p in pairs]
    infos = [p[1] for p in pairs]
    targets = [_pick_target(draw, C, r, i) for r, i in zip(rows, infos)]

    ignore = draw(st.sampled_from(("none", "some", "all")))
    ig_kind = draw(st.sampled_from(("default", "explicit", "class", "minus_one")))
    kwargs_ignore = {}
    ig_value = -100
    if ig_kind == "explicit":
        kwargs_ignore["ignore_index"] = -100
    elif ig_kind == "minus_one":
        ig_value = kwargs_ignore["ignore_index"] = -1
    elif ig_kind == "class":
        ig_value = kwargs_ignore["ignore_index"] = draw(_index(C))
    if ignore == "all":
        targets = [ig_value] * R
    elif ignore == "some":
        if R <= 16:
            flags = [draw(st.booleans()) for _ in range(R)]
        else:
            flags = (_rng(draw).random(R) < 0.5).tolist()
        targets = [ig_value if fl else t for t, fl in zip(targets, flags)]

    wmode, weight = _weight_vector(draw, f, C)
    ls = draw(_label_smoothing(f))
    reduction = draw(st.sampled_from(REDUCTIONS))

    if len(shape) == 1:
        target = targets[0]
    elif len(shape) == 2:
        target = targets
    else:
        N, _, D = shape
        target = [[targets[n * D + k] for k in range(D)] for n in range(N)]
    out = {"input": _input_from_rows(shape, rows), "target": target}
    if weight is not None:
        out["weight"] = weight
    out.update(kwargs_ignore)
    out["reduction"] = reduction
    out["label_smoothing"] = ls
    n_ignored = sum(1 for t in targets if t == ig_value)
    out.update({
        "_function": "cross_entropy",
        "_format": f.name,
        "_target_kind": "indices",
        "_regime": (f"{s} shape={list(shape)} ignore={ignore}@{ig_value}({n_ignored}/{R}) weight={wmode} "
                    f"label_smoothing={ls!r} reduction={reduction}"),
        "_rows": infos,
    })
    return out


def prob_class_problem(fmt: str | Format, max_classes: int = 4096, max_batch: int = 4, allow_spatial: bool = True,
                       allow_nonfinite: bool = True, max_elements: int = MAX_ELEMENTS,
                       structure: str | Iterable[str] | None = None, kind: str | Iterable[str] | None = None,
                       large_share: float = 0.2) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments of ``torch.nn.functional.cross_entropy`` with probability targets of the input's shape
    (rows from ``probability_rows``: one-hot, one ulp from 0 and 1, soft labels summing to ~1, smoothed, uniform,
    below the format's resolution, arbitrary). Input, ``weight``, ``label_smoothing`` and ``reduction`` as in
    ``class_problem``; no ignore_index (torch ignores it for probabilities). ``_target_kind`` = "probabilities";
    ``_rows`` holds (logit row info, probability row info) pairs."""
    f = _check_problem_args(fmt, max_classes, max_batch, allow_spatial, allow_nonfinite, max_elements)
    names = _structures_arg(structure, allow_nonfinite)
    kinds = _choice("kind", kind, PROBABILITY_KINDS, PROBABILITY_KINDS)
    return _prob_class_problem(f, class_counts(max_classes, large_share=large_share), max_batch, allow_spatial,
                               allow_nonfinite, max_elements, names,
                               kinds)


@st.composite
def _prob_class_problem(draw, f, classes, max_batch, allow_spatial, allow_nonfinite, max_elements,
                        structures, kinds):
    C = draw(classes)
    shape, R = _layout(draw, C, max_batch, allow_spatial, max_elements)
    s = _structure(draw, structures, C)
    k = draw(st.sampled_from(kinds))
    both = st.tuples(_row(f, C, (s,), allow_nonfinite), _prob_row(f, C, (k,)))
    pairs = _repeat_rows(draw, both, R)
    rows = [p[0][0] for p in pairs]
    trows = [p[1][0] for p in pairs]
    wmode, weight = _weight_vector(draw, f, C)
    ls = draw(_label_smoothing(f))
    reduction = draw(st.sampled_from(REDUCTIONS))
    out = {"input": _input_from_rows(shape, rows), "target": _input_from_rows(shape, trows)}
    if weight is not None:
        out["weight"] = weight
    out["reduction"] = reduction
    out["label_smoothing"] = ls
    out.update({
        "_function": "cross_entropy",
        "_format": f.name,
        "_target_kind": "probabilities",
        "_regime": (f"{s} target={k} shape={list(shape)} weight={wmode} label_smoothing={ls!r} "
                    f"reduction={reduction}"),
        "_rows": [(p[0][1], p[1][1]) for p in pairs],
    })
    return out


# ------------------------------------------------------------------------------------------------------------
# binary cross-entropy


def _small_shape(draw, max_n=16):
    if draw(st.booleans()):
        return (draw(st.integers(1, 4)), draw(st.integers(1, 8)))
    return (draw(st.integers(1, max_n)),)


def _elements(draw, shape, elem):
    """Elements of ``shape`` from ``elem``; one tensor in eight is a single drawn value repeated (identical large
    terms whose sum overflows in a naive mean)."""
    n = math.prod(shape)
    if n > 1 and draw(st.integers(0, 7)) == 7:
        flat = [draw(elem)] * n
    else:
        flat = [draw(elem) for _ in range(n)]
    return _nest(flat, list(shape))


def binary_problem(fmt: str | Format, logits: bool = True,
                   allow_nonfinite: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments of ``binary_cross_entropy_with_logits`` (``logits=True``) or ``binary_cross_entropy``.

    Shape (n,) with n <= 16 or (N, K) with N <= 4, K <= 8. With logits: ``input`` logits from every regime (and
    +-inf when ``allow_nonfinite``), ``pos_weight`` (K,) sometimes (broadcast along the last dim) from tiny to
    huge. Without: ``input`` probabilities (0, 1, one ulp from each, tiny such as RN(1e-50), near 1 - tiny).
    ``target`` from ``probabilities``; ``weight`` sometimes, of the input's shape or (K,); ``reduction``
    none/mean/sum. Metadata ``_function``, ``_format``, ``_regime``.
    """
    f = _fmt(fmt)
    _check_bool("logits", logits)
    _check_bool("allow_nonfinite", allow_nonfinite)
    return _binary_problem(f, logits, allow_nonfinite)


@st.composite
def _binary_problem(draw, f, use_logits, allow_nonfinite):
    shape = _small_shape(draw)
    if use_logits:
        elem = logits(f)
        if allow_nonfinite:
            elem = st.one_of(elem, st.sampled_from([_INF, -_INF]))
    else:
        elem = probabilities(f)
    out = {"input": _elements(draw, shape, elem), "target": _elements(draw, shape, probabilities(f))}
    wmode = draw(st.sampled_from(("none", "full", "last_dim")))
    if wmode == "full":
        out["weight"] = _elements(draw, shape, weights(f))
    elif wmode == "last_dim":
        out["weight"] = _elements(draw, shape[-1:], weights(f))
    pw = False
    if use_logits and draw(st.booleans()):
        out["pos_weight"] = _elements(draw, shape[-1:], weights(f))
        pw = True
    reduction = draw(st.sampled_from(REDUCTIONS))
    out["reduction"] = reduction
    name = "binary_cross_entropy_with_logits" if use_logits else "binary_cross_entropy"
    out.update({
        "_function": name,
        "_format": f.name,
        "_regime": f"shape={list(shape)} weight={wmode} pos_weight={pw} reduction={reduction}",
    })
    return out


# ------------------------------------------------------------------------------------------------------------
# KL divergence


def _log_rn(p, f):
    return -_INF if p == 0 else round_to_format(math.log(p), f)


def _log_softmax64(row):
    finite = [x for x in row if x != -_INF]
    m = max(finite)
    s = math.fsum(math.exp(x - m) for x in finite)
    ls = math.log(s)
    return [-_INF if x == -_INF else (x - m) - ls for x in row]


def kl_problem(fmt: str | Format, max_classes: int = 256, max_batch: int = 4, allow_spatial: bool = True,
               max_elements: int = MAX_ELEMENTS) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments of ``torch.nn.functional.kl_div``: ``input`` log-probabilities of shape (C,), (N, C) or
    (N, C, d1), rows either RN(log p) of a probability row (-inf where p = 0), RN(log_softmax) of a logit row
    (masks included), arbitrary values <= 0 (0, -inf, -smallest subnormal, moderate, extreme, -largest
    finite), or values within a factor 8 of -largest finite (pointwise terms whose sum overflows); ``target``
    probability rows, or with ``log_target=True`` their logarithms (-inf included) or arbitrary log-probabilities;
    ``reduction`` none/mean/sum/batchmean."""
    f = _fmt(fmt)
    _check_int("max_classes", max_classes, 1)
    _check_int("max_batch", max_batch, 1)
    _check_int("max_elements", max_elements, 2)
    _check_bool("allow_spatial", allow_spatial)
    return _kl_problem(f, max_classes, max_batch, allow_spatial, max_elements)


@functools.lru_cache(maxsize=None)
def _log_probs(f):
    return st.one_of(
        st.sampled_from([0.0, -_INF, -f.min_subnormal, -math.ldexp(1.0, -f.p), -f.max_finite, -1.0]),
        values(f, -50.0, 0.0),
        values(f, -f.max_finite, 0.0),
        logits(f, ("exp_underflow",)).map(lambda v: -abs(v)),
    )


@st.composite
def _log_row(draw, f, n, log_kind):
    if log_kind == "log_probabilities":
        p, _ = draw(_prob_row(f, n, PROBABILITY_KINDS))
        return [_log_rn(x, f) for x in p]
    if log_kind == "log_softmax":
        row, _ = draw(_row(f, n, STRUCTURES, True))
        return [round_to_format(v, f) for v in _log_softmax64(row)]
    if log_kind == "near_largest":  # terms t (log t - x) near the largest finite: their sums overflow, means do not
        return _fill(draw, f, n, values(f, -f.max_finite, -f.max_finite / 8))
    return _fill(draw, f, n, _log_probs(f), lo=-f.max_finite, hi=0.0)


@st.composite
def _kl_problem(draw, f, max_classes, max_batch, allow_spatial, max_elements):
    C = draw(class_counts(max_classes, min_classes=1))
    shape, R = _layout(draw, C, max_batch, allow_spatial, max_elements)
    in_kind = draw(st.sampled_from(("log_probabilities", "log_softmax", "arbitrary", "near_largest")))
    log_target = draw(st.booleans())
    t_kind = draw(st.sampled_from(("log_probabilities", "arbitrary") if log_target else ("probabilities",)))
    if t_kind == "probabilities":
        tgen = _prob_row(f, C, PROBABILITY_KINDS).map(lambda t: t[0])
    else:
        tgen = _log_row(f, C, t_kind)
    pairs = _repeat_rows(draw, st.tuples(_log_row(f, C, in_kind), tgen), R)
    reduction = draw(st.sampled_from(("mean", "none", "sum", "batchmean")))
    return {
        "input": _input_from_rows(shape, [p[0] for p in pairs]),
        "target": _input_from_rows(shape, [p[1] for p in pairs]),
        "reduction": reduction,
        "log_target": log_target,
        "_function": "kl_div",
        "_format": f.name,
        "_regime": f"input={in_kind} target={t_kind} shape={list(shape)} reduction={reduction}",
    }


# ------------------------------------------------------------------------------------------------------------
# elementwise functions and softmax family


def elementwise_problem(fmt: str | Format, name: str, allow_nonfinite: bool = True, max_classes: int = 4096,
                        max_elements: int = MAX_ELEMENTS,
                        large_share: float = 0.2) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for one of ``ELEMENTWISE``:

    - sigmoid, logsigmoid, softplus: ``input`` of shape (n,) or (N, K) (<= 32 elements), logits from every
      regime and +-inf when ``allow_nonfinite``; softplus adds ``beta`` from {1, 0.5, 2, 10}.
    - xlogy: ``input`` (zeros, logits, probabilities) and ``other`` >= 0 of the same shape (zeros, probabilities,
      anything up to the largest finite, +inf when ``allow_nonfinite``).
    - logsumexp, softmax, log_softmax: ``input`` of shape (C,), (N, C) or (N, C, d) with a ``dim`` (possibly
      negative); the slices along ``dim`` are ``logit_rows``.
    """
    f = _fmt(fmt)
    if name not in ELEMENTWISE:
        raise InvalidArgument(f"name={name!r}: expected one of {ELEMENTWISE}")
    _check_bool("allow_nonfinite", allow_nonfinite)
    _check_int("max_classes", max_classes, 1)
    _check_int("max_elements", max_elements, 2)
    return _elementwise_problem(f, name, allow_nonfinite, class_counts(max_classes, 1, large_share), max_elements)


@st.composite
def _elementwise_problem(draw, f, name, allow_nonfinite, classes, max_elements):
    out = {}
    if name in ("sigmoid", "logsigmoid", "softplus"):
        elem = logits(f)
        if allow_nonfinite:
            elem = st.one_of(elem, st.sampled_from([_INF, -_INF]))
        shape = _small_shape(draw)
        out["input"] = _elements(draw, shape, elem)
        if name == "softplus":
            out["beta"] = draw(st.sampled_from([1.0, 0.5, 2.0, 10.0]))
        regime = f"shape={list(shape)}" + (f" beta={out['beta']}" if name == "softplus" else "")
    elif name == "xlogy":
        shape = _small_shape(draw)
        xs = st.one_of(st.sampled_from([0.0, -0.0, 1.0]), logits(f), probabilities(f))
        ys = st.one_of(st.sampled_from([0.0, 1.0]), probabilities(f), values(f, 0.0, f.max_finite))
        if allow_nonfinite:
            xs = st.one_of(xs, st.sampled_from([_INF, -_INF]))
            ys = st.one_of(ys, st.just(_INF))
        out["input"] = _elements(draw, shape, xs)
        out["other"] = _elements(draw, shape, ys)
        regime = f"shape={list(shape)}"
    else:
        C = draw(classes)
        shape, R = _layout(draw, C, 4, True, max_elements)
        axis = 0 if len(shape) == 1 else 1
        if len(shape) > 1 and draw(st.booleans()):
            # reduce along another axis: slices along it are the rows
            axis = draw(st.sampled_from([a for a in range(len(shape)) if a != 1]))
        n = shape[axis]
        R = math.prod(shape) // n
        default = STRUCTURES if allow_nonfinite else tuple(
            s for s in STRUCTURES if s not in _NONFINITE_STRUCTURES)
        s = _structure(draw, default, n)
        pairs = _repeat_rows(draw, _row(f, n, (s,), allow_nonfinite), R)
        out["input"] = _assemble(shape, axis, [p[0] for p in pairs])
        dim = axis - len(shape) if draw(st.booleans()) else axis
        out["dim"] = dim
        out["_rows"] = [p[1] for p in pairs]
        regime = f"{s} shape={list(shape)} dim={dim}"
    out.update({"_function": name, "_format": f.name, "_regime": regime})
    return out


# ------------------------------------------------------------------------------------------------------------
# helpers for callers


def split_meta(problem: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(kwargs, metadata): the function's keyword arguments, and the entries whose keys start with "_"."""
    kwargs = {k: v for k, v in problem.items() if not k.startswith("_")}
    meta = {k: v for k, v in problem.items() if k.startswith("_")}
    return kwargs, meta


_TENSOR_KEYS = ("input", "target", "weight", "pos_weight", "other")


def to_torch(problem: dict[str, Any], dtype: Any = None) -> dict[str, Any]:
    """The problem's keyword arguments with its tensors built by torch (imported here, lazily): floating ones in
    ``dtype`` (default: the torch dtype of ``_format``), class-index targets as int64. Exact: every value is
    a value of the format."""
    import torch

    if dtype is None:
        dtype = getattr(torch, problem["_format"])
    kwargs, meta = split_meta(problem)
    for k in _TENSOR_KEYS:
        if k in kwargs:
            if k == "target" and meta.get("_target_kind") == "indices":
                kwargs[k] = torch.tensor(kwargs[k], dtype=torch.int64)
            else:
                kwargs[k] = torch.tensor(kwargs[k], dtype=dtype)
    return kwargs
