"""The oracle cache (lossproof/cache.py): exact keys, keys that change with the code that computes the entry,
values that round-trip bit for bit, entries that are never trusted when damaged, and concurrent writers
(pytest-xdist workers, separate processes) that cannot tear an entry."""

from __future__ import annotations

import json
import math
import multiprocessing
import os

import pytest

import oracles
from lossproof import cache

CE = {"input": [[0.0, 0.0, 10.0, 0.0]], "target": [2]}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV, str(tmp_path))
    return tmp_path


@pytest.fixture
def calls(monkeypatch):
    """Counts oracle evaluations (a cache hit makes none)."""
    n = {"calls": 0}
    real = dict(oracles.REGISTRY)

    def counting(name):
        def fn(**kw):
            n["calls"] += 1
            return real[name](**kw)
        return fn

    for name in real:
        monkeypatch.setitem(oracles.REGISTRY, name, counting(name))
    return n


def _entries(d):
    return sorted(p for p in d.rglob("*.json"))


def _hex(vs):
    return [float.hex(v) if math.isfinite(v) else repr(v) for v in vs]


def test_a_hit_returns_the_stored_values_without_evaluating(cache_dir, calls):
    first = cache.cached_value("cross_entropy", CE, "float32")
    assert first == [oracles.cross_entropy(**CE).to("float32")] and calls["calls"] == 1
    again = cache.cached_value("cross_entropy", CE, "float32")
    assert again == first and calls["calls"] == 1  # from disk
    assert len(_entries(cache_dir)) == 1


def test_keys_are_exact(cache_dir, calls, monkeypatch):
    cache.cached_value("cross_entropy", CE, "float32")
    near = {"input": [[0.0, 0.0, math.nextafter(10.0, 11.0), 0.0]], "target": [2]}
    for name, kw, fmt in (("cross_entropy", CE, "bfloat16"), ("cross_entropy", near, "float32"),
                          ("cross_entropy", {**CE, "reduction": "sum"}, "float32"),
                          ("log_softmax", {"input": [0.0, -0.0]}, "float32"),
                          ("log_softmax", {"input": [0.0, 0.0]}, "float32")):
        before = calls["calls"]
        cache.cached_value(name, kw, fmt)
        assert calls["calls"] == before + 1, (name, kw, fmt)  # a new key: evaluated
    monkeypatch.setattr(cache, "code_digest", lambda *modules: "changed-code")
    before = calls["calls"]
    cache.cached_value("cross_entropy", CE, "float32")
    assert calls["calls"] == before + 1  # a new oracle version retires old entries
    assert len(_entries(cache_dir)) == 7


def test_special_values_and_signed_zeros_round_trip(cache_dir):
    cases = [("log_softmax", {"input": [[0.0, -math.inf, 3.0]], "dim": 1}, "float32"),
             ("xlogy", {"input": [1.0, 0.0, math.nan], "other": [0.0, 2.0, 1.0]}, "float64"),
             ("log_softmax", {"input": [[0.0, -200.0]], "dim": 1}, "float16")]  # -1.4e-87 rounds to -0.0
    for name, kw, fmt in cases:
        fresh = cache.cached_value(name, kw, fmt)
        stored = cache.cached_value(name, kw, fmt)
        assert _hex(stored) == _hex(fresh)
    assert _hex(cache.cached_value(*cases[2][:2], "float16")) == ["-0x0.0p+0", "-0x1.9000000000000p+7"]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "value_flipped", "other_key", "empty"])
def test_a_damaged_entry_is_recomputed_never_trusted(cache_dir, calls, damage):
    good = cache.cached_value("cross_entropy", CE, "float32")
    (path,) = _entries(cache_dir)
    raw = path.read_text()
    entry = json.loads(raw)
    if damage == "garbage":
        path.write_bytes(os.urandom(64))
    elif damage == "truncated":
        path.write_text(raw[: len(raw) // 2])
    elif damage == "value_flipped":  # valid JSON, plausible value, but not what the checksum covers
        entry["values"] = [float.hex(good[0] * 2)]
        path.write_text(json.dumps(entry))
    elif damage == "other_key":  # a whole, sound entry of another problem under this file name
        entry["key"] = entry["key"].replace("float32", "float16")
        path.write_text(json.dumps(entry))
    else:
        path.write_text("")
    before = calls["calls"]
    assert cache.cached_value("cross_entropy", CE, "float32") == good
    assert calls["calls"] == before + 1  # recomputed
    assert json.loads(path.read_text()) == json.loads(raw)  # and repaired
    assert cache.cached_value("cross_entropy", CE, "float32") == good and calls["calls"] == before + 1


def _worker(args):
    directory, seed = args
    os.environ[cache.ENV] = directory
    out = []
    for k in range(12):  # every worker computes and writes the same twelve keys, in its own order
        i = (k * 5 + seed) % 12
        kw = {"input": [[float(i), 0.5, -1.0 * i]], "target": [i % 3]}
        out.append((i, cache.cached_value("cross_entropy", kw, "bfloat16")))
    return out


def test_concurrent_writers_never_tear_an_entry(cache_dir):
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, as xdist workers are
    with ctx.Pool(4) as pool:
        results = pool.map(_worker, [(str(cache_dir), s) for s in range(8)])
    expected = {}
    for res in results:
        for i, v in res:
            assert expected.setdefault(i, v) == v  # every process saw the same values
    for i, v in expected.items():
        kw = {"input": [[float(i), 0.5, -1.0 * i]], "target": [i % 3]}
        assert v == [oracles.cross_entropy(**kw).to("bfloat16")]
    assert len(_entries(cache_dir)) == 12
    assert not list(cache_dir.rglob("*.part"))  # no temporary file left behind
    for p in _entries(cache_dir):  # every entry whole and sound
        entry = json.loads(p.read_text())
        assert cache._read(p, entry["key"]) is not None


def test_bad_arguments_get_clear_errors(cache_dir):
    with pytest.raises(ValueError, match="unknown oracle"):
        cache.cached_value("cross_entropyy", CE, "float32")
    with pytest.raises(ValueError, match="unknown format"):
        cache.cached_value("cross_entropy", CE, "float8")
    with pytest.raises(TypeError, match="cannot key the cache"):
        cache.cached_value("cross_entropy", {"input": [[object()]], "target": [0]}, "float32")
    with pytest.raises(oracles.OracleInputError, match="out of bounds"):
        cache.cached_value("cross_entropy", {"input": [[0.0, 1.0]], "target": [5]}, "float32")
    assert not _entries(cache_dir)  # nothing stored for a failed evaluation


def test_the_default_location_is_in_the_working_directory_and_git_ignored(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert cache.cache_dir() == tmp_path / ".lossproof-cache"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert "/.lossproof-cache/" in open(os.path.join(root, ".gitignore")).read().splitlines()


def test_the_code_digest_follows_the_source_of_the_code_it_names(tmp_path, monkeypatch):
    """A change to the source of a module an entry depends on changes the key (no version number to bump): here a
    package of two files, one of them edited; and the oracle's and the measurement's digests differ."""
    pkg = tmp_path / "digestpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("A = 1\n")
    (pkg / "part.py").write_text("B = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = cache.code_digest("digestpkg")
    cache.code_digest.cache_clear()
    assert cache.code_digest("digestpkg") == first  # the same source, the same digest
    (pkg / "part.py").write_text("B = 3\n")
    cache.code_digest.cache_clear()
    assert cache.code_digest("digestpkg") != first
    cache.code_digest.cache_clear()
    from lossproof import measure

    assert cache.code_digest(*cache.ORACLE_CODE) != cache.code_digest(*measure.MEASURE_CODE)
