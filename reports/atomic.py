"""The one way lossproof writes a file: atomically. Results, baselines, cache entries, corpus witnesses, detection
and worst-known tables and reports are written to a temporary file in the destination's folder, flushed and
fsynced, and moved into place with ``os.replace`` (atomic on POSIX and Windows): a reader, or a later run after a
process killed at any moment (tests/meta/test_crash_safety.py kills writers mid-write), sees the old file or the
new one whole, never a part. A killed writer can leave its temporary file (``.tmp-*.part``) behind: no reader
opens such a name. Cache entries skip the fsync (``durable=False``): after an operating-system crash an entry can
be lost or empty, and the cache treats such an entry as missing (checksummed, lossproof.cache); an fsync per entry
would cost more than the cache saves.

A destination that cannot be written (a directory, a folder that is a file, no permission) is a ``WriteError``
(an OSError) whose message names the destination in one line, never the temporary file."""

from __future__ import annotations

import json
import os
import tempfile

__all__ = ["write_text", "write_json", "write_bytes", "WriteError"]


class WriteError(OSError):
    """A destination that cannot be written: one line naming it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "cannot write"


def write_bytes(path: str, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (the folder is created if missing); fsynced unless not ``durable``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise WriteError(f"cannot write {path}: it is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=folder)
    except OSError as e:
        raise WriteError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp's 0600 would keep the file from the rest of a CI job
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(f"cannot write {path}: {e.strerror or e}") from None
        raise


def write_text(path: str, text: str, *, durable: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"), durable=durable)


def write_json(path: str, data, *, indent=None) -> None:
    """Write ``data`` as JSON to ``path`` atomically (compact unless ``indent``)."""
    text = json.dumps(data, indent=indent, separators=None if indent else (",", ":"), allow_nan=True)
    write_text(path, text + ("\n" if indent else ""))
