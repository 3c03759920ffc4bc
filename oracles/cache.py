"""An on-disk cache of correctly rounded oracle results, so that a regression corpus is not recomputed every run.

    >>> from oracles.cache import cached_value
    >>> cached_value("cross_entropy", {"input": [[0.0, 0.0, 10.0, 0.0]], "target": [2]}, "float32")
    [0.0001361905160592869]

``cached_value(name, kwargs, fmt)`` is ``[e.to(fmt) for e in flattened(oracles.REGISTRY[name](**kwargs))]``,
read from the cache when an entry for exactly these inputs exists and computed (then stored) otherwise.

Key: the SHA-256 of a canonical JSON text holding the oracle's name, the format, ``oracles.ORACLE_VERSION`` and
the keyword arguments with every float written as ``float.hex`` (exact: 0.1 and its neighbour are different
keys, -0.0 is not 0.0; inf and nan as "inf", "-inf", "nan"), ints as ints, nested sequences (lists, tuples,
anything with ``.tolist()``) as lists. Raising ORACLE_VERSION (when an oracle's semantics change) retires every
entry at once.

Where: the directory named by the environment variable LOSSPROOF_CACHE, else ``.lossproof-cache`` at the
repository root (git-ignored). One small JSON file per entry, ``<dir>/<key[:2]>/<key>.json``.

Safe under pytest-xdist and separate processes: an entry is written to a temporary file in its own directory and
moved into place with ``os.replace``, which is atomic on POSIX and Windows, so a reader sees a whole entry or none;
two writers of one key write the same content, and the last rename wins. Never trusted blindly: an entry whose
JSON does not parse, whose stored key text differs from the requested one, whose checksum does not match its
values or whose values are not floats is treated as missing, recomputed and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

__all__ = ["cached_value", "cache_dir", "key_text", "entry_path", "ENV"]

ENV = "LOSSPROOF_CACHE"
_DEFAULT = Path(__file__).resolve().parent.parent / ".lossproof-cache"


def cache_dir() -> Path:
    """The cache directory: $LOSSPROOF_CACHE, else .lossproof-cache at the repository root."""
    d = os.environ.get(ENV)
    return Path(d) if d else _DEFAULT


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


def key_text(name: str, kwargs: dict, fmt: str) -> str:
    """The canonical text an entry is keyed by (its SHA-256 names the file)."""
    from . import ORACLE_VERSION

    return json.dumps({"oracle": name, "format": fmt, "version": ORACLE_VERSION, "kwargs": _canonical(kwargs)},
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
        os.replace(tmp, path)  # atomic: readers see the old entry, or none, or this one whole
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _flat(r):
    return [e for x in r for e in _flat(x)] if isinstance(r, list) else [r]


def cached_value(name: str, kwargs: dict, fmt: str) -> list:
    """The oracle ``name``'s outputs on ``kwargs``, flattened in row-major order and correctly rounded to
    ``fmt``, as Python floats (inf, nan and -0.0 kept): from the cache when present and sound, else computed
    with the oracle and stored. Raises ValueError for an unknown oracle or format, TypeError for keyword
    arguments that cannot be keyed exactly, and whatever the oracle raises for bad input."""
    import oracles
    from .formats import get_format

    if name not in oracles.REGISTRY:
        raise ValueError(f"unknown oracle {name!r}: expected one of {', '.join(oracles.REGISTRY)}")
    if not isinstance(kwargs, dict):
        raise TypeError("kwargs must be a dict of the oracle's keyword arguments")
    f = get_format(fmt)
    text = key_text(name, kwargs, f.name)
    path = entry_path(text)
    values = _read(path, text)
    if values is None:
        values = [e.to(f) for e in _flat(oracles.REGISTRY[name](**kwargs))]
        _write(path, text, values)
    return values
