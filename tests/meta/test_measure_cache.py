"""The measurement cache (lossproof.measure(cache=True)): a cached oracle side gives the same verdicts, errors and
digits as a fresh measurement, for any subject output; a damaged entry is recomputed, never trusted."""

from __future__ import annotations

import math

import pytest

from lossproof import cache, corpus
from lossproof.measure import measure


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _same(a, b):
    assert len(a.elements) == len(b.elements)
    for x, y in zip(a.elements, b.elements):
        assert (x.kind, x.index, x.verdict, float.hex(x.z_rounded) if math.isfinite(x.z_rounded) else x.z_rounded) \
            == (y.kind, y.index, y.verdict, float.hex(y.z_rounded) if math.isfinite(y.z_rounded) else y.z_rounded)
        # a cached value prints its midpoint's digits (the format's p + 24 bits: at least 32, bfloat16's), the
        # fresh one 36: the same number to 2**-30 relative
        a, b = float(x.z), float(y.z)
        assert a == b or abs(a - b) <= 2.0 ** -30 * abs(b) or (math.isnan(a) and math.isnan(b)), (x.z, y.z)
        assert x.ulp_error == y.ulp_error or (math.isnan(x.ulp_error) and math.isnan(y.ulp_error))
        assert x.bits == y.bits


CASES = [c for c in corpus.cases("cross_entropy", "float32")[:3] + corpus.cases("softplus", "bfloat16")[:2]
         + corpus.cases("binary_cross_entropy_with_logits", "float16")[:2]]


@pytest.mark.parametrize("entry", CASES, ids=lambda c: c["id"])
def test_a_cached_measurement_is_the_fresh_one_for_any_output(entry):
    loss, fmt, kw = entry["loss"], entry["format"], entry["kwargs"]
    zs = _rounded(loss, kw, fmt)
    # three subjects: the correctly rounded output, one a little off, one wildly off (NaN, inf)
    from oracles.formats import round_to_format

    off = [round_to_format(z * (1 + 2.0 ** -6), fmt) if math.isfinite(z) else z for z in zs]
    outputs = [zs, off, [math.nan] + zs[1:]]
    for ys in outputs:
        fresh = measure("x", loss, fmt, "cpu", kw, ys)
        first = measure("x", loss, fmt, "cpu", kw, ys, cache=True)  # computes and stores
        again = measure("x", loss, fmt, "cpu", kw, ys, cache=True)  # reads
        _same(fresh, first)
        _same(fresh, again)
        assert type(again.elements[0].exact).__name__ == "CachedExact"


def test_a_damaged_entry_is_recomputed(private_cache):
    entry = CASES[0]
    kw, fmt, loss = entry["kwargs"], entry["format"], entry["loss"]
    ys = _rounded(loss, kw, fmt)
    fresh = measure("x", loss, fmt, "cpu", kw, ys)
    measure("x", loss, fmt, "cpu", kw, ys, cache=True)
    files = list(private_cache.rglob("*.json"))
    assert files, "the measurement was not stored"
    for p in files:
        p.write_text(p.read_text().replace("|", "!", 3))  # damage every entry (its checksum no longer holds)
    again = measure("x", loss, fmt, "cpu", kw, ys, cache=True)
    _same(fresh, again)
    assert type(again.elements[0].exact).__name__ != "CachedExact", "a damaged entry was trusted"


def _rounded(loss, kw, fmt):
    import oracles

    r = oracles.REGISTRY[loss](**kw)
    flat = [e for x in r for e in (x if isinstance(x, list) else [x])] if isinstance(r, list) else [r]
    return [e.to(fmt) for e in flat]
