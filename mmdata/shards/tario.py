"""Streaming tar reading: shard lists from patterns / folders / URLs, members, and samples.

The tar parser reads 512-byte headers directly (ustar, GNU long names, PAX ``path``), which is several
times faster per member than :mod:`tarfile`, verifies each header checksum, and raises a
:class:`~mmdata.errors.ShardError` naming the shard and last key on a truncated or corrupt file.
"""

from __future__ import annotations

import glob
import gzip
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from mmdata.errors import ShardError

BLOCK = 512
_ZERO = b"\0" * BLOCK
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def braceexpand(pattern: str) -> list[str]:
    """Expand ``{000..009}`` ranges (zero padding kept) and ``{a,b}`` lists, left to right.

    Example:
        >>> braceexpand("s-{00..02}.tar")
        ['s-00.tar', 's-01.tar', 's-02.tar']
        >>> braceexpand("{a,b}-{1..2}")
        ['a-1', 'a-2', 'b-1', 'b-2']
    """
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    head, body, tail = pattern[: m.start()], m.group(1), pattern[m.end() :]
    rng = re.fullmatch(r"(-?\d+)\.\.(-?\d+)", body)
    if rng:
        a, b = rng.group(1), rng.group(2)
        width = len(a) if a.startswith("0") or len(a) == len(b) else 0
        step = 1 if int(b) >= int(a) else -1
        items = [str(i).zfill(width) for i in range(int(a), int(b) + step, step)]
    else:
        items = body.split(",")
    return [x for item in items for x in braceexpand(head + item + tail)]


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://") or path.startswith("file://")


def expand_sources(source: str | Path | list[Any]) -> list[str]:
    """Shard paths/URLs from a list, a brace pattern, a glob, a folder of tars, a tar or a URL."""
    if isinstance(source, (list, tuple)):
        return [u for s in source for u in expand_sources(s)]
    s = str(source)
    out: list[str] = []
    for item in braceexpand(s):
        if "://" in item:
            if any(c in item for c in "*?["):
                import fsspec

                fs, _, paths = fsspec.get_fs_token_paths(item)
                proto = item.split("://", 1)[0]
                out.extend(sorted(f"{proto}://{p}" if "://" not in p else p for p in paths))
            else:
                out.append(item)
        elif os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).rglob("*") if p.name.endswith(TAR_SUFFIXES) and p.is_file())
            if not found:
                raise ShardError(f"{item}: folder has no dataset.json and no .tar/.tar.gz shards")
            out.extend(found)
        elif any(c in item for c in "*?["):
            found = sorted(glob.glob(item))
            if not found:
                raise ShardError(f"pattern {item!r} matches no shard")
            out.extend(found)
        else:
            out.append(item)
    return out


def open_shard(url: str) -> IO[bytes]:
    """Open a shard for streaming (local path, ``file://`` or any fsspec URL); gunzip ``.gz``/``.tgz``."""
    try:
        if "://" in url and not url.startswith("file://"):
            try:
                import fsspec
            except ImportError:
                raise ShardError(f"{url}: reading URLs needs fsspec (pip install fsspec)") from None
            f: IO[bytes] = fsspec.open(url, "rb").open()
        else:
            f = open(url[7:] if url.startswith("file://") else url, "rb", buffering=1 << 20)  # noqa: SIM115
    except FileNotFoundError:
        raise ShardError(f"shard {url} not found") from None
    except OSError as exc:
        raise ShardError(f"shard {url}: cannot open ({exc})") from exc
    if url.endswith((".gz", ".tgz")):
        return gzip.GzipFile(fileobj=f)  # type: ignore[return-value]
    return f


def _octal(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for large sizes
        return int.from_bytes(field[1:], "big")
    s = field.rstrip(b"\0 ").lstrip(b" ")
    return int(s, 8) if s else 0


def _pax_path(data: bytes) -> str | None:
    path = None
    i = 0
    while i < len(data):
        sp = data.index(b" ", i)
        length = int(data[i:sp])
        k, _, v = data[sp + 1 : i + length - 1].partition(b"=")
        if k == b"path":
            path = v.decode("utf-8")
        i += length
    return path


def iter_members(f: IO[bytes], shard: str) -> Iterator[tuple[str, bytes]]:
    """Yield (name, data) for each regular file member; raise ShardError on truncation/corruption."""
    read = f.read
    long_name: str | None = None
    last = "<start>"
    while True:
        header = read(BLOCK)
        if not header:
            # tar writers end with zero blocks; a clean EOF at a member boundary means a cut file
            raise ShardError(f"shard {shard}: truncated after member {last!r} (no end-of-archive marker)")
        if len(header) < BLOCK:
            raise ShardError(f"shard {shard}: truncated after member {last!r} (partial header)")
        if header == _ZERO:
            return
        chk = _octal(header[148:156])
        if chk != sum(header[:148]) + 256 + sum(header[156:]):
            raise ShardError(f"shard {shard}: corrupt tar header after member {last!r} (checksum mismatch)")
        size = _octal(header[124:136])
        kind = header[156:157]
        data = read(size)
        if len(data) < size:
            raise ShardError(f"shard {shard}: truncated in member after {last!r} ({len(data)} of {size} bytes)")
        pad = (-size) % BLOCK
        if pad and len(read(pad)) < pad:
            raise ShardError(f"shard {shard}: truncated in padding of member after {last!r}")
        if kind == b"x":
            long_name = _pax_path(data)
            continue
        if kind == b"L":
            long_name = data.rstrip(b"\0").decode("utf-8")
            continue
        if kind not in (b"0", b"\0", b"7"):
            long_name = None  # directories, links, global headers: not sample data
            continue
        if long_name is not None:
            name, long_name = long_name, None
        else:
            name = header[:100].split(b"\0", 1)[0].decode("utf-8")
            if header[257:262] == b"ustar" and header[345] != 0:
                name = header[345:500].split(b"\0", 1)[0].decode("utf-8") + "/" + name
        last = name
        yield name, data


def split_member(name: str) -> tuple[str, str] | None:
    """WebDataset grouping: key = path up to the first dot of the basename; None if no extension.

    Example:
        >>> split_member("a/b/0001.depth.npy")
        ('a/b/0001', 'depth.npy')
    """
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    if dot <= slash + 1:
        return None
    return name[:dot], name[dot + 1 :]


def iter_samples(url: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Group consecutive members sharing a key into samples: yields (key, {ext: bytes})."""
    with open_shard(url) as f:
        key: str | None = None
        group: dict[str, bytes] = {}
        for name, data in iter_members(f, url):
            if name.startswith("/") or ".." in name.split("/"):
                raise ShardError(f"shard {url}: member {name!r} has an absolute or escaping path; refusing it")
            parts = split_member(name)
            if parts is None:
                continue
            k, ext = parts
            if k != key:
                if key is not None:
                    yield key, group
                key, group = k, {}
            group[ext] = data
        if key is not None:
            yield key, group


def read_all_bytes(url: str) -> bytes:
    """The whole (decompressed) shard as bytes (used by verify-like checks)."""
    with open_shard(url) as f:
        return f.read() if not isinstance(f, io.TextIOBase) else b""
