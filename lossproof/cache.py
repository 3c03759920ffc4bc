"""An on-disk cache of oracle results, so that a regression corpus is not recomputed every run.

    >>> from lossproof.cache import cached_value
    >>> cached_value("cross_entropy", {"input": [[0.0, 0.0, 10.0, 0.0]], "target": [2]}, "float32")
    [0.0001361905160592869]

``cached_value(name, kwargs, fmt)`` is ``[e.to(fmt) for e in flat(oracles.REGISTRY[name](**kwargs))]``, read
from the cache when an entry for exactly these inputs exists and computed (then stored) otherwise. The
measurement cache (``lossproof.measure(..., cache=True)``) keeps a measurement's oracle side in the same store.

Key: the SHA-256 of a canonical JSON text holding what is computed (the oracle's name, or the measurement's), the
format, the **digest of the code that computes it** and the keyword arguments with every float written as
``float.hex`` (exact: 0.1 and its neighbour are different keys, -0.0 is not 0.0; inf and nan as "inf", "-inf",
"nan"), ints as ints, nested sequences (lists, tuples, anything with ``.tolist()``) as lists. The code digest
(``code_digest``) is the SHA-256 of the source files of the modules the cached thing depends on: the whole
``oracles`` package for a value, and also ``lossproof.measure``, ``lossproof.conditioning`` and
``lossproof.verdicts`` for a measurement. Any change to that code retires every entry it could have produced,
with no version number to remember to bump.

Where: the directory named by the environment variable LOSSPROOF_CACHE, else ``.lossproof-cache`` in the current
working directory (git-ignored in this repository). One small JSON file per entry, ``<dir>/<key[:2]>/<key>.json``.

Safe under pytest-xdist and separate processes: an entry is written atomically (reports.atomic), so a reader sees
a whole entry or none; two writers of one key write the same content, and the last rename wins. Never trusted
blindly: an entry whose JSON does not parse, whose stored key text differs from the requested one, whose checksum
does not match its values or whose values are not floats is treated as missing, recomputed and rewritten.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import oracles
from oracles.codec import flat
from oracles.formats import get_format
from reports import atomic

__all__ = ["cached_value", "cache_dir", "key_text", "entry_path", "ENV", "code_digest", "read_strings",
           "write_strings"]

ENV = "LOSSPROOF_CACHE"
DEFAULT = ".lossproof-cache"


def cache_dir() -> Path:
    """The cache directory: $LOSSPROOF_CACHE, else .lossproof-cache in the current working directory."""
    d = os.environ.get(ENV)
    return Path(d) if d else Path.cwd() / DEFAULT


@functools.lru_cache(maxsize=None)
def code_digest(*modules: str) -> str:
    """The SHA-256 (hex, 16 digits) of the source of the named modules (a package: every .py file in its folder,
    sorted by name), in order: the code a cached entry depends on."""
    h = hashlib.sha256()
    for name in modules:
        module = sys.modules.get(name)
        if module is None:
            module = __import__(name, fromlist=["_"])
        path = Path(module.__file__)
        files = sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]
        for f in files:
            h.update(f"{name}/{f.name}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


#: the code an oracle value depends on
ORACLE_CODE = ("oracles",)


def _canonical(v, where="kwargs"):
    """A JSON-ready value that identifies v exactly (floats as hex)."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return {"f": float.hex(v) if math.isfinite(v) else repr(v)}
    if isinstance(v, dict):
        return {str(k): _canonical(x, f"{where}[{k!r}]") for k, x in sorted(v.items(), key=lambda kv: str(kv[0]))}
    if isinstance(v, (list, tuple)):
        return [_canonical(x, where) for x in v]
    if hasattr(v, "tolist"):  # arrays, tensors, NumPy scalars
        return _canonical(v.tolist(), where)
    if hasattr(v, "_mpf_"):  # an mpmath number: its exact binary value (sign, mantissa, exponent)
        sign, man, exp, _ = v._mpf_
        return {"mpf": [sign, int(man), exp]}
    raise TypeError(f"cannot key the cache on {where} of type {type(v).__name__}: use numbers, strings, "
                    "nested lists or arrays")


def key_text(name: str, kwargs: dict, fmt: str, code: tuple = ORACLE_CODE) -> str:
    """The canonical text an entry is keyed by (its SHA-256 names the file): what is computed, the format, the
    digest of the code that computes it (``code``: module names) and the exact arguments."""
    return json.dumps({"oracle": name, "format": fmt, "code": code_digest(*code), "kwargs": _canonical(kwargs)},
                      sort_keys=True, separators=(",", ":"))


def entry_path(text: str) -> Path:
    h = hashlib.sha256(text.encode()).hexdigest()
    return cache_dir() / h[:2] / f"{h}.json"


def _encode(v: float) -> str:
    return float.hex(v) if math.isfinite(v) else repr(v)


def _decode(s: str) -> float:
    if s in ("inf", "-inf", "nan"):
        return float(s)
    return float.fromhex(s)


def _checksum(text: str, values) -> str:
    return hashlib.sha256(json.dumps([text, values], separators=(",", ":")).encode()).hexdigest()


def read_strings(text: str):
    """The strings stored under the canonical key ``text`` (any cache user's own encoding: the measurement's
    oracle side, lossproof.measure), or None when missing or not to be trusted (checksum, key)."""
    return _read(entry_path(text), text, decode=False)


def write_strings(text: str, strings: list) -> None:
    """Store strings under the canonical key ``text``, atomically (os.replace)."""
    _write(entry_path(text), text, strings, encode=False)


def _read(path: Path, text: str, decode: bool = True):
    """The stored values, or None when the entry is missing or not to be trusted."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        entry = json.loads(raw.decode("utf-8"))
        values = entry["values"]
        if entry["key"] != text or entry["checksum"] != _checksum(text, values):
            return None
        if not isinstance(values, list) or not all(isinstance(s, str) for s in values):
            return None
        return [_decode(s) for s in values] if decode else values
    except (ValueError, KeyError, TypeError):
        return None


def _write(path: Path, text: str, values, encode: bool = True) -> None:
    enc = [_encode(v) for v in values] if encode else list(values)
    body = json.dumps({"key": text, "values": enc, "checksum": _checksum(text, enc)}, separators=(",", ":"))
    atomic.write_text(str(path), body, durable=False)  # readers see the old entry, or none, or this one whole


def cached_value(name: str, kwargs: dict, fmt: str) -> list:
    """The oracle ``name``'s outputs on ``kwargs``, flattened in row-major order and correctly rounded to
    ``fmt``, as Python floats (inf, nan and -0.0 kept): from the cache when present and sound, else computed
    with the oracle and stored. Raises ValueError for an unknown oracle or format, TypeError for keyword
    arguments that cannot be keyed exactly, and whatever the oracle raises for bad input."""
    if name not in oracles.REGISTRY:
        raise ValueError(f"unknown oracle {name!r}: expected one of {', '.join(oracles.REGISTRY)}")
    if not isinstance(kwargs, dict):
        raise TypeError("kwargs must be a dict of the oracle's keyword arguments")
    f = get_format(fmt)
    text = key_text(name, kwargs, f.name)
    path = entry_path(text)
    values = _read(path, text)
    if values is None:
        values = [e.to(f) for e in flat(oracles.REGISTRY[name](**kwargs))]
        _write(path, text, values)
    return values
