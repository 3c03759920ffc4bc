"""The measurement cache (lossproof.measure(cache=True)): a cached oracle side gives the same verdicts, errors and
digits as a fresh measurement, for any subject output; a damaged entry is recomputed, never trusted."""

from __future__ import annotations

import math
import os

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
        # a cached value prints its midpoint's digits (within 1.5 * 2**-(p + 24) of the exact value: 2**-31.4
        # for bfloat16's p = 8, lossproof.measure._midpoint_digits), the fresh one 36: the same number to 2**-30
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


# ------------------------------------------------------------------------------------------------------------
# issue 14 item 6: a warm cache cannot hide a change to the oracle


def _kl_div_corpus(tmp_cache, monkeypatch):
    """The battery's corpus test (lossproof/battery/test_corpus.py) on torch's kl_div in float32, measuring with the
    cache in ``tmp_cache``: the number of failing corpus cases (0 when it passes) and of cases measured."""
    from types import SimpleNamespace

    from lossproof import cases
    from lossproof.battery.test_corpus import test_corpus

    monkeypatch.setenv(cache.ENV, str(tmp_cache))
    (case,) = [c for c in cases.torch_cases(False) if c.loss == "kl_div" and c.fmt == "float32" and c.device == "cpu"]
    measured = []
    try:
        test_corpus(case, lambda m, *a, **k: measured.append(m), SimpleNamespace(strict_specials=False))
    except AssertionError as e:
        head = str(e).split(" of ", 1)[0]
        assert head.isdigit(), str(e)[:300]
        return int(head), len(measured)
    return 0, len(measured)


def _batchmean_over_numel(monkeypatch, tmp_path, edit_source: bool):
    """kl_div's batchmean divided by the number of elements (the mean), as a mistake in oracles/losses.py would
    make it: the oracle the measurement calls is swapped; with ``edit_source`` the package's source, as the cache
    key's code digest reads it (``oracles.__file__``), is a copy of oracles/ with that line changed."""
    import shutil

    import oracles

    real = oracles.REGISTRY["kl_div"]

    def mutated(*args, reduction="mean", **kwargs):
        return real(*args, reduction="mean" if reduction == "batchmean" else reduction, **kwargs)

    monkeypatch.setitem(oracles.REGISTRY, "kl_div", mutated)
    if edit_source:
        copy = tmp_path / "oracles"
        shutil.copytree(os.path.dirname(oracles.__file__), copy, ignore=shutil.ignore_patterns("__pycache__"))
        losses = copy / "losses.py"
        line = "denom = _count(in_shape[0]) if in_shape else ONE"
        text = losses.read_text()
        assert text.count(line) == 1, "oracles/losses.py changed: update this test's mutation"
        losses.write_text(text.replace(line, "denom = _count(numel(in_shape))"))
        monkeypatch.setattr(oracles, "__file__", str(copy / "__init__.py"))
    cache.code_digest.cache_clear()


@pytest.fixture
def fresh_digests():
    cache.code_digest.cache_clear()
    yield
    cache.code_digest.cache_clear()  # the digest of the real sources again for the tests that follow


def test_a_warm_cache_misses_after_the_oracle_changes(tmp_path, monkeypatch, fresh_digests):
    """The issue's scenario: with kl_div's batchmean mutated, the corpus passed on a warm cache and failed on an
    empty one. The cache key holds the digest of the oracle's source, so the mutated source misses every warm
    entry and the corpus fails exactly as on an empty cache. The control shows what the digest prevents: the same
    mutation with the digest of the unchanged source is hidden by the warm entries."""
    import oracles

    warm = tmp_path / "warm"
    assert _kl_div_corpus(warm, monkeypatch) == (0, _kl_div_corpus(warm, monkeypatch)[1])  # the real oracle passes
    n_entries = len(list(warm.rglob("*.json")))
    assert n_entries > 0

    with monkeypatch.context() as m:  # control: the behaviour mutated, its source (the key) not
        _batchmean_over_numel(m, tmp_path / "control", edit_source=False)
        hidden, measured = _kl_div_corpus(warm, m)
        assert hidden == 0 and len(list(warm.rglob("*.json"))) == n_entries, "the warm cache did not hide it"
        on_empty, _ = _kl_div_corpus(tmp_path / "empty-control", m)
        assert on_empty > 0  # the mutation is one the corpus catches when the oracle is computed
    cache.code_digest.cache_clear()

    with monkeypatch.context() as m:
        _batchmean_over_numel(m, tmp_path / "mutant", edit_source=True)
        assert oracles.__file__.startswith(str(tmp_path))
        failing, measured = _kl_div_corpus(warm, m)
        assert failing == on_empty, (failing, on_empty)  # as on an empty cache
        assert len(list(warm.rglob("*.json"))) == 2 * n_entries  # every measurement missed and stored anew
        assert _kl_div_corpus(tmp_path / "empty", m)[0] == on_empty
    cache.code_digest.cache_clear()
    assert _kl_div_corpus(warm, monkeypatch)[0] == 0  # the real source again: the first entries still serve
