"""The one way lossproof writes a file: atomically. Results, baselines, cache entries, corpus witnesses, detection
and worst-known tables and reports are written to a temporary file in the destination's folder, flushed to disk,
and moved into place with ``os.replace`` (atomic on POSIX and Windows): a reader, or a later run after a process
killed at any moment, sees the old file or the new one whole, never a part. (No fsync: the written pages outlive
the process that wrote them; an operating-system crash is not covered, and fsync on every cache entry would cost
more than the cache saves.)"""

from __future__ import annotations

import json
import os
import tempfile

__all__ = ["write_text", "write_json", "write_bytes"]


def write_bytes(path: str, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (the folder is created if missing)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)  # mkstemp's 0600 would keep the file from the rest of a CI job
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str, data, *, indent=None) -> None:
    """Write ``data`` as JSON to ``path`` atomically (compact unless ``indent``)."""
    text = json.dumps(data, indent=indent, separators=None if indent else (",", ":"), allow_nan=True)
    write_text(path, text + ("\n" if indent else ""))
