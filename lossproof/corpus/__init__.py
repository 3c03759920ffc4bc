"""The regression corpus: a deterministic, versioned set of exact inputs per loss and format, on which the report's
tables and the CI gate are computed (Hypothesis searches; the corpus is what makes numbers comparable run after
run). See lossproof/corpus/README.md for its provenance.

    from lossproof import corpus
    corpus.cases("cross_entropy", "float32")   # [{"id", "loss", "format", "regime", "kwargs", "provenance"}]

``kwargs`` are torch's keyword arguments with exact values of the format (JSON numbers are exact binary64
literals; the strings "inf", "-inf", "nan" are read back as floats). Generated cases live in ``v1/`` (written by
``python -m lossproof.corpus.build``, checked to be reproducible by tests/meta/test_corpus_build.py); promoted
witnesses in ``promoted.json``. The corpus ships with lossproof (``lossproof report`` measures it) and is read-only
there: ``lossproof promote --corpus DIR`` adds a witness to ``DIR/promoted.json``, a corpus of the user's own,
which the battery reads beside the shipped one (``--lossproof-corpus DIR``).
"""

from __future__ import annotations

import hashlib
import json
import os

import oracles
from oracles.codec import float_tree
from reports import atomic

VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))
GENERATED = os.path.join(HERE, f"v{VERSION}")
PROMOTED = os.path.join(HERE, "promoted.json")


class CorpusError(ValueError):
    """A corpus file that cannot be read, or a witness that cannot be promoted."""


def _decode(v):
    if isinstance(v, list):
        return [_decode(e) for e in v]
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    return v


def encode(v):
    """JSON-safe exact spelling: finite floats as JSON numbers (repr round-trips exactly), specials as strings."""
    return float_tree(v)


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return []
    except IsADirectoryError:
        raise CorpusError(f"{path}: is a directory, not a corpus file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CorpusError(f"{path}: cannot read the corpus file ({type(e).__name__})") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("cases"), list):
        raise CorpusError(f"{path}: not a version-{VERSION} corpus file")
    return doc["cases"]


#: each corpus file's cases as last read, by path, with the (mtime, size, inode) they were read at
_READ: dict = {}


def _read_unchanged(path):
    """``_read``, parsed once per process while the file is unchanged (the same modification time, size and inode:
    ``promote`` replaces a file atomically, a new inode): the battery asks for the corpus of each of its cells, and
    parsing all of it (1.1 MB of JSON) took 25 ms a call. The lists are shared: callers must not change them
    (``cases`` builds new dicts; ``promote`` reads with ``_read``)."""
    try:
        s = os.stat(path)
    except OSError:
        return _read(path)  # _read says what is wrong (or [] for a missing file)
    stamp = (s.st_mtime_ns, s.st_size, s.st_ino)
    got = _READ.get(path)
    if got is None or got[0] != stamp:
        got = _READ[path] = (stamp, _read(path))
    return got[1]


def cases(loss: str | None = None, fmt: str | None = None, dirs=()) -> list:
    """The corpus cases (generated, then promoted, then the promoted witnesses of each of ``dirs``: a user's own
    corpus folders), optionally for one loss and format."""
    out = []
    names = sorted(os.listdir(GENERATED)) if os.path.isdir(GENERATED) else []
    for name in names:
        if name.endswith(".json"):
            out += _read_unchanged(os.path.join(GENERATED, name))
    out += _read_unchanged(PROMOTED)
    for d in dirs:
        out += _read_unchanged(os.path.join(d, "promoted.json"))
    res = []
    for c in out:
        if (loss is None or c["loss"] == loss) and (fmt is None or c["format"] == fmt):
            res.append({**c, "kwargs": {k: _decode(v) for k, v in c["kwargs"].items()}})
    return res


def case_id(loss: str, fmt: str, kwargs: dict) -> str:
    """A stable id from the exact call: the same input always gets the same id."""
    blob = json.dumps({"loss": loss, "format": fmt, "kwargs": encode_kwargs(kwargs)}, sort_keys=True)
    return f"{loss}-{fmt}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def encode_kwargs(kwargs: dict) -> dict:
    return {k: encode(v) for k, v in kwargs.items() if not k.startswith("_")}


def promote(loss: str, fmt: str, kwargs: dict, note: str, directory: str) -> tuple:
    """Add a witness (a Hypothesis or hunt finding) to ``directory``/promoted.json, atomically; (id, added?)."""
    if not os.path.isdir(directory):
        raise CorpusError(f"no such corpus folder: {directory}")
    path = os.path.join(directory, "promoted.json")
    if loss not in oracles.REGISTRY or ":" in loss:
        raise CorpusError(f"unknown loss {loss!r}")
    oracles.get_format(fmt)  # raises on an unknown format
    try:
        oracles.REGISTRY[loss](**{k: v for k, v in kwargs.items() if not k.startswith("_")})
    except (oracles.OracleInputError, TypeError) as e:
        raise CorpusError(f"the witness is not a valid {loss} call: {e}") from None
    cid = case_id(loss, fmt, kwargs)
    existing = _read(path)
    if any(c["id"] == cid for c in existing):
        return cid, False
    existing.append({"id": cid, "loss": loss, "format": fmt, "regime": kwargs.get("_regime", "promoted"),
                     "kwargs": encode_kwargs(kwargs), "provenance": note})
    atomic.write_json(path, {"version": VERSION, "cases": existing})
    return cid, True
