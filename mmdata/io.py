"""Small file helpers shared by every writer: atomic writes and streamed hashes.

Every file mmdata writes (shards, index, card, metrics, reports) reaches its final name by a rename
from a temp file in the same folder, so a killed process leaves either the old file or the new one,
never a torn one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def published_mode() -> int:
    """The mode of a file mmdata publishes: 0o644 less the process umask, as the shard tars get it
    from ``os.open(..., 0o644)`` (a temp file from ``mkstemp`` is 0o600 until it is given this mode).

    Example:
        >>> old = os.umask(0o077); m = published_mode(); _ = os.umask(old)
        >>> oct(m)
        '0o600'
    """
    try:  # Linux: read it without changing it (os.umask sets and returns, racing other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o644 & ~int(line.split(":", 1)[1].strip(), 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o644 & ~mask


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = True) -> None:
    """Write a file atomically: a unique temp file in the same folder, fsync unless told not to, rename.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "a", "x.bin")
        >>> atomic_write_bytes(p, b"hi"); open(p, "rb").read()
        b'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, published_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = True) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(path: str | Path, obj: Any, *, fsync: bool = True, **dump_kw: Any) -> None:
    """:func:`atomic_write_bytes` of ``json.dumps(obj, indent=2) + "\\n"`` (extra ``json.dumps`` keywords pass through)."""
    dump_kw.setdefault("indent", 2)
    atomic_write_text(path, json.dumps(obj, **dump_kw) + "\n", fsync=fsync)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, streamed.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x"); _ = open(p, "wb").write(b"")
        >>> file_sha256(p)[:8]
        'e3b0c442'
    """
    with open(path, "rb") as f:
        return stream_sha256(f, chunk)


def stream_sha256(f: Any, chunk: int = 1 << 20) -> str:
    """sha256 of what is left in the binary file object ``f`` (a local file, an fsspec stream),
    read ``chunk`` bytes at a time.

    Example:
        >>> import io
        >>> stream_sha256(io.BytesIO(b""))[:8]
        'e3b0c442'
    """
    h = hashlib.sha256()
    while block := f.read(chunk):
        h.update(block)
    return h.hexdigest()
