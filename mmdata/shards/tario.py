"""Tar reading for untrusted shards: shard lists, members, samples — no hang, no stray exception.

Two readers share one contract (every problem becomes data, never a stray exception):

* :func:`iter_members` walks 512-byte headers sequentially (ustar, GNU long names, PAX ``path`` and
  ``size``) from any stream: local files, ``.tar.gz``, fsspec URLs. Like GNU tar and bsdtar it
  *resyncs* after a damaged header (scans forward to the next valid ustar header) instead of giving
  up on the rest of the shard, and like :mod:`tarfile`'s ``data`` filter it refuses unsafe names per
  member, not per archive.
* :func:`indexed_members` is the fast path for local uncompressed shards whose member names and
  sizes are known from ``index.parquet``: one ``mmap`` of the shard, every header checked at once
  with numpy (checksum, size and name against the index), members sliced out without a parse loop.
  Any disagreement falls back to :func:`iter_members`, so damage is handled in one place.

:func:`iter_samples` groups adjacent members by key (WebDataset rules) and yields
``(key, {ext: bytes}, problem)``; ``problem`` is ``None`` or ``(reason, message)`` naming the shard
and key, and ``key`` is ``None`` for damage that belongs to no identifiable sample. The reader turns
problems into a :class:`~mmdata.errors.ShardError` or a counted skip.

Limits: a member larger than ``max_member_bytes`` (default :data:`DEFAULT_MAX_MEMBER_BYTES`) is not
read (its sample is reported). A member is held once: from a local file it is read in one call of at
most what the file holds, from a stream in bounded chunks appended to one buffer, so a lying size
field or a gzip bomb costs at most what was actually decompressed, up to that limit. A member the
process cannot hold (``MemoryError``) reports its sample (:data:`NO_MEMORY`) and the shard goes on.
"""

from __future__ import annotations

import glob
import gzip
import io
import mmap
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

from braceexpand import braceexpand as _braceexpand

from mmdata.errors import ShardError
from mmdata.io import host_limit
from mmdata.shards.pointers import LFS_POINTER, is_lfs_pointer
from mmdata.urls import redact_text

BLOCK = 512
_ZERO = bytes(BLOCK)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
#: default per-member size limit (bytes): a member declaring more is not read and its sample is reported
DEFAULT_MAX_MEMBER_BYTES = 1 << 30
_CHUNK = 1 << 24  # large members are read 16 MiB at a time: memory follows bytes actually present
_SKIP_CHUNK = 1 << 20  # bytes passed over in a stream: small pieces, so skipping works when memory is short
_MAX_META = 1 << 20  # PAX / GNU long-name records larger than this are not names: treated as damage
_REGULAR = (b"0", b"\0", b"7")
_NO_DATA = (b"1", b"2", b"3", b"4", b"5", b"6")  # links, devices, directories, fifos: nothing to read
#: member types that hold no sample data and are passed over in silence: directories, a volume label
_SILENT = (b"5", b"V")
_KINDS = {b"1": "a hard link", b"2": "a symbolic link", b"3": "a character device", b"4": "a block device",
          b"6": "a FIFO", b"S": "a GNU sparse file", b"M": "a multi-volume continuation", b"D": "a GNU dump directory"}
#: reason of a member that belongs to no sample (``k1``, ``.txt``, ``k1.``): counted per member
NO_KEY = "member without a key or extension"
#: a member over max_member_bytes (also: one whose header declares more pixels or samples than decoding allows)
TOO_LARGE = "member too large"
#: a member that is not a regular file (a link, device, FIFO, sparse file, unknown type): its sample is reported
UNSUPPORTED = "unsupported member type"
#: key-less problems counted under their own reason (others are damage of an unreadable region)
MEMBER_REASONS = (NO_KEY, UNSUPPORTED)
#: reason of a member under ``max_member_bytes`` that the process could not hold (MemoryError)
NO_MEMORY = "member does not fit in memory"
#: reason of the end of a shard that a refused member claims (counted once; the reader calls it a region)
TAIL_LOST = "truncated shard after a refused member"


def braceexpand(pattern: str) -> list[str]:
    """Expand ``{000..009}`` ranges (zero padding kept) and ``{a,b}`` lists (the ``braceexpand`` package,
    as webdataset uses).

    Example:
        >>> braceexpand("s-{00..02}.tar")
        ['s-00.tar', 's-01.tar', 's-02.tar']
        >>> braceexpand("{a,b}-{1..2}")
        ['a-1', 'a-2', 'b-1', 'b-2']
    """
    return list(_braceexpand(pattern))


def is_url(path: str) -> bool:
    return "://" in path


def expand_sources(source: str | Path | Sequence[Any], storage_options: dict[str, Any] | None = None) -> list[str]:
    """Shard paths/URLs from a list, a brace pattern, a glob, a folder of tars, a tar or a URL
    (a glob in a URL is listed with ``storage_options``)."""
    if isinstance(source, (list, tuple)):
        return [u for s in source for u in expand_sources(s, storage_options)]
    s = str(source)
    out: list[str] = []
    for item in braceexpand(s):
        if "://" in item:
            if any(c in item for c in "*?["):
                import fsspec

                fs, _, paths = fsspec.get_fs_token_paths(item, storage_options=storage_options)
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


def _local_path(url: str) -> str | None:
    if url.startswith("file://"):
        return url[7:]
    return None if "://" in url else url


def open_shard(url: str, storage_options: dict[str, Any] | None = None) -> IO[bytes]:
    """Open a shard for streaming (local path, ``file://`` or any fsspec URL, opened with
    ``storage_options``); gunzip ``.gz``/``.tgz``."""
    local = _local_path(url)
    try:
        if local is None:
            from mmdata.errors import MMDataError
            from mmdata.urls import CHECK, filesystem

            try:
                fs, path = filesystem(url, storage_options)
            except MMDataError as exc:  # no fsspec, or not the protocol's package: named
                raise ShardError(f"shard {exc}") from None
            try:
                f: IO[bytes] = fs.open(path, "rb")
            except OSError:
                raise
            except Exception as exc:  # noqa: BLE001 — botocore / aiohttp errors (credentials, endpoint)
                raise ShardError(f"shard {url}: cannot open ({type(exc).__name__}: {str(exc)[:300]}); {CHECK}") from None
        else:
            f = open(local, "rb", buffering=1 << 20)  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise ShardError(f"shard {url} not found") from None
    except OSError as exc:
        limit = host_limit(exc.errno)
        if limit is not None:  # too many open files, no memory: not a damaged shard (never counted as one)
            from mmdata.errors import MMDataError

            raise MMDataError(f"shard {url}: cannot open it: {limit}") from None
        raise ShardError(f"shard {url}: cannot open ({exc})") from exc
    if url.endswith((".gz", ".tgz")):
        return _GzipShard(f)  # type: ignore[return-value]
    return f


class _GzipShard(gzip.GzipFile):
    """A gunzipping view of an opened shard that closes the file under it too (``GzipFile(fileobj=)``
    leaves it open: every ``.tar.gz`` read left a ResourceWarning, and a file handle until collected)."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__(fileobj=raw, mode="rb")
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


class Member(NamedTuple):
    """One tar member as the reader sees it.

    ``name`` is decoded UTF-8 (invalid bytes kept as surrogate escapes, so a bad name is reported,
    not guessed); ``None`` when the damage cannot be tied to a name. ``data`` is ``None`` when the
    member was not read (unwanted, too large, damaged). ``problem`` is ``(reason, message)`` or None.
    """

    name: str | None
    data: bytes | None
    problem: tuple[str, str] | None = None


class _Broken(Exception):
    """The stream itself failed (bad gzip, I/O error): nothing after this point can be read."""


class _BadHeader(Exception):
    pass


class _NoMemory(Exception):
    """A member's bytes did not fit in memory; ``consumed`` of them were taken from the stream."""

    def __init__(self, consumed: int) -> None:
        super().__init__(consumed)
        self.consumed = consumed


def _octal(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for large values
        if field[0] == 0xFF:
            raise _BadHeader("negative base-256 number")
        return int.from_bytes(field[1:], "big")
    s = field.split(b"\0", 1)[0].strip(b" ")
    if not s:
        return 0
    try:
        return int(s, 8)
    except ValueError:
        raise _BadHeader(f"field {bytes(field)!r} is not an octal number") from None


def _checksum_ok(header: bytes) -> bool:
    stored = _octal(header[148:156])
    unsigned = sum(header[:148]) + 256 + sum(header[156:])
    if stored == unsigned:
        return True
    # some old writers summed signed chars (tarfile accepts both)
    signed = sum(b - 256 if b > 127 else b for b in header[:148] + header[156:]) + 256
    return stored == signed


def _parse_header(header: bytes) -> tuple[int, bytes]:
    """(size, type flag) of a header block; raises _BadHeader when it is not a valid header."""
    if not _checksum_ok(header):
        raise _BadHeader("checksum mismatch")
    return _octal(header[124:136]), header[156:157]


def _header_name(header: bytes) -> str:
    name = header[:100].split(b"\0", 1)[0]
    if header[257:263] == b"ustar\x00" and header[345] != 0:  # POSIX prefix (GNU puts times there)
        name = header[345:500].split(b"\0", 1)[0] + b"/" + name
    return name.decode("utf-8", "surrogateescape")


def _guess_name(header: bytes) -> str | None:
    """The name field of a damaged header when it still reads as a plausible member name."""
    raw = header[:100].split(b"\0", 1)[0]
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return name if name and name.isprintable() else None


def _pax(data: bytes) -> dict[bytes, bytes]:
    """PAX extended-header records ``"%d %s=%s\\n"``; raises _BadHeader on any malformed record
    (a zero or non-numeric length used to loop forever)."""
    out: dict[bytes, bytes] = {}
    i, n = 0, len(data)
    while i < n:
        if data[i] == 0:  # NUL padding after the last record
            break
        sp = data.find(b" ", i, i + 21)
        digits = data[i:sp] if sp > i else b""
        if not digits.isdigit():
            raise _BadHeader(f"PAX record at byte {i} has no decimal length")
        length = int(digits)
        if length <= sp - i + 1 or i + length > n or data[i + length - 1] != 0x0A:
            raise _BadHeader(f"PAX record at byte {i} has an impossible length {length}")
        k, eq, v = data[sp + 1 : i + length - 1].partition(b"=")
        if not eq:
            raise _BadHeader(f"PAX record at byte {i} has no '='")
        out[k] = v
        i += length
    return out


def _gzip_of_pointer(f: IO[bytes]) -> bool:
    """Whether ``f`` is a gzip stream over a Git LFS pointer (read from the file's start; False when that
    cannot be read)."""
    raw = getattr(f, "fileobj", None) if isinstance(f, gzip.GzipFile) else None
    try:
        if raw is None or not raw.seekable():
            return False
        raw.seek(0)
        return is_lfs_pointer(raw.read(1024))
    except (OSError, ValueError, AttributeError):
        return False


class _Reader:
    """Sequential reads with bounded chunks; stream errors become _Broken."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.end: int | None = None
        self.seekable = False
        try:
            self.seekable = bool(f.seekable()) and not isinstance(f, gzip.GzipFile)
        except (AttributeError, OSError, ValueError):
            pass

    def read(self, n: int) -> bytes:
        try:
            if n <= _CHUNK:
                return self.f.read(n)
            return self._read_large(n)
        except (OSError, EOFError, zlib.error, ValueError) as exc:  # BadGzipFile is an OSError
            raise _Broken(f"{type(exc).__name__}: {exc}") from exc
        except MemoryError:  # buffered reads allocate the result before taking bytes from the stream
            raise _NoMemory(0) from None

    def _left(self) -> int:
        """Bytes between the position and the end of a seekable file."""
        if self.end is None:
            here = self.f.tell()
            self.end = self.f.seek(0, os.SEEK_END)
            self.f.seek(here)
        return max(0, self.end - self.f.tell())

    def _read_large(self, n: int) -> bytes:
        """Up to ``n`` bytes held once: the peak is about the bytes present, not twice that.

        A local file is read in one call of at most what it holds after the position (a lying size
        field reserves nothing more); a stream (gzip, a remote file) is read in chunks appended to one
        growing buffer whose bytes are returned without a copy (``BytesIO.getvalue``), so memory
        follows what was actually decompressed. A MemoryError becomes :class:`_NoMemory` carrying
        how many bytes were consumed, so the caller can pass over the rest of the member.
        """
        if self.seekable and isinstance(self.f, (io.BufferedReader, io.FileIO)):
            start = self.f.tell()
            try:
                return self.f.read(min(n, self._left()))  # preallocates what it reads, reads into it
            except MemoryError:
                raise _NoMemory(self.f.tell() - start) from None
        out: io.BytesIO | None = io.BytesIO()
        done = 0
        try:
            while done < n:
                part = self.f.read(min(n - done, _CHUNK))
                if not part:
                    break
                out.write(part)  # type: ignore[union-attr]
                done += len(part)
                del part
            return out.getvalue()  # type: ignore[union-attr]  # the buffer itself, no copy
        except MemoryError:
            out = None  # the partial member is released before the caller goes on
            raise _NoMemory(done) from None

    def skip(self, n: int) -> int:
        """Skip n bytes; returns how many were there."""
        if self.seekable:
            try:
                if self.end is None:
                    here = self.f.tell()
                    self.end = self.f.seek(0, os.SEEK_END)
                    self.f.seek(here)
                here = self.f.tell()
                self.f.seek(min(here + n, self.end))
                return min(n, self.end - here)
            except (OSError, ValueError) as exc:
                raise _Broken(f"{type(exc).__name__}: {exc}") from exc
        done = 0
        while done < n:
            part = self.read(min(n - done, _SKIP_CHUNK))
            if not part:
                break
            done += len(part)
        return done


def _resync(r: _Reader) -> tuple[bytes | None, int]:
    """Scan forward for the next valid ustar header (GNU tar / bsdtar behaviour after damage).

    Returns the header (or None at end of file) and the number of blocks skipped.
    """
    skipped = 0
    while True:
        block = r.read(BLOCK)
        if len(block) < BLOCK:
            return None, skipped
        if block[257:262] == b"ustar":
            try:
                _parse_header(block)
                return block, skipped
            except _BadHeader:
                pass
        skipped += 1


def iter_members(f: IO[bytes], shard: str, *, max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
                 want: Callable[[str], bool] | None = None) -> Iterator[Member]:
    """Regular-file members of a tar stream, with damage reported in-band (never raised).

    Args:
        f: the (decompressed) stream.
        shard: the shard's name for messages.
        max_member_bytes: members declaring more are skipped and reported ("member too large").
        want: ``want(name)`` False skips the member's bytes (yielded with ``data=None``).
    """
    shard = redact_text(shard)  # a URL's password or signature never reaches a message (QA round 22)
    r = _Reader(f)
    last = "<start>"
    pending: bytes | None = None
    long_name: str | None = None
    meta_size: int | None = None
    meta_bad: str | None = None
    first = True
    while True:
        try:
            header = pending if pending is not None else r.read(BLOCK)
            pending = None
            if not header:
                what = "is empty (no tar header)" if first else f"truncated after member {last!r} (no end-of-archive marker)"
                yield Member(None, None, ("truncated shard", f"shard {shard}: {what}"))
                return
            if first and is_lfs_pointer(header) and header[257:262] != b"ustar":  # a checkout without `git lfs pull`
                yield Member(None, None, ("truncated shard", f"shard {shard}: is not a tar file but {LFS_POINTER}"))
                return
            if len(header) < BLOCK:
                what = (f"is not a tar file ({len(header)} bytes, less than one 512-byte tar header)" if first
                        else f"truncated after member {last!r} (partial header)")
                yield Member(None, None, ("truncated shard", f"shard {shard}: {what}"))
                return
            if header == _ZERO:
                return
            try:
                size, kind = _parse_header(header)
            except _BadHeader as exc:
                where = "is not a tar file (first header invalid: " if first else f"corrupt tar header after member {last!r} ("
                yield Member(_guess_name(header), None, ("corrupt tar header", f"shard {shard}: {where}{exc})"))
                long_name = meta_size = meta_bad = None
                pending, skipped = _resync(r)
                if pending is None:
                    return
                continue
            first = False
            if meta_size is not None:
                size, meta_size = meta_size, None
            if kind in (b"x", b"L", b"g", b"K"):
                if size > _MAX_META:
                    r.skip(size + (-size) % BLOCK)
                    meta_bad = f"extended header of {size} bytes (limit {_MAX_META})"
                    continue
                data = r.read(size)
                if len(data) < size or len(r.read((-size) % BLOCK)) < (-size) % BLOCK:
                    yield Member(None, None, ("truncated shard", f"shard {shard}: truncated in an extended header "
                                              f"after member {last!r}"))
                    return
                if kind == b"x":
                    try:
                        rec = _pax(data)
                        if b"path" in rec:
                            long_name = rec[b"path"].decode("utf-8", "surrogateescape")
                        if b"size" in rec:
                            if not rec[b"size"].isdigit():
                                raise _BadHeader(f"PAX size {rec[b'size'][:20]!r} is not a number")
                            meta_size = int(rec[b"size"])
                    except _BadHeader as exc:
                        meta_bad = f"malformed PAX header ({exc})"
                elif kind == b"L":
                    long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                continue
            pad = (-size) % BLOCK
            if kind not in _REGULAR:
                name = long_name if long_name is not None else _header_name(header)
                long_name = meta_bad = None
                if kind not in _NO_DATA and size and r.skip(size + pad) < size + pad:
                    yield Member(None, None, ("truncated shard", f"shard {shard}: truncated after member {last!r}"))
                    return
                last = name
                if kind in _SILENT:
                    continue
                # webdataset passes these over in silence: a sample then lacks a member with no word
                what = _KINDS.get(kind, f"of tar type {kind.decode('latin-1')!r}")
                target = header[157:257].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                how = {b"1": f" to {target!r} (GNU tar writes one for a file seen twice: re-create the shard with "
                             "--hard-dereference, or with mmdata shard)",
                       b"2": f" to {target!r} (re-create the shard with tar --dereference, or with mmdata shard)"}
                yield Member(name, None, (UNSUPPORTED, f"shard {shard}: member {name!r} is {what}{how.get(kind, '')}; "
                                          "mmdata reads regular files only"))
                continue
            name = long_name if long_name is not None else _header_name(header)
            long_name = None
            problem = None
            if meta_bad is not None:
                problem, meta_bad = ("corrupt tar header", f"shard {shard}: member {name!r}: {meta_bad}"), None
            elif size > max_member_bytes:
                problem = (TOO_LARGE, f"shard {shard}: member {name!r} declares {size} bytes, more than "
                           f"max_member_bytes={max_member_bytes}")
            consumed = 0
            if problem is None and (want is None or want(name)):
                try:
                    data = r.read(size)
                except _NoMemory as exc:
                    # a member under the limit that this process cannot hold: its sample is reported
                    # and the rest of the member passed over, as for a member over the limit
                    consumed = exc.consumed
                    problem = (NO_MEMORY, f"shard {shard}: member {name!r} declares {size} bytes, which do not fit "
                               f"in memory (MemoryError); lower max_member_bytes={max_member_bytes} or give the "
                               "process more memory")
                else:
                    last = name
                    if len(data) < size:
                        yield Member(name, None, ("truncated shard", f"shard {shard}: truncated in member {name!r} "
                                                  f"({len(data)} of {size} bytes)"))
                        return
                    if pad and len(r.read(pad)) < pad:
                        yield Member(name, None, ("truncated shard", f"shard {shard}: truncated in the padding of "
                                                  f"member {name!r}"))
                        return
                    yield Member(name, data)
                    continue
            got = consumed + r.skip(size + pad - consumed)
            last = name
            if got < size:
                if problem is None:
                    yield Member(name, None, ("truncated shard", f"shard {shard}: truncated in member {name!r} "
                                              f"({got} of {size} bytes)"))
                    return
                # a refused member that claims more than the file holds: whatever the file holds
                # after its header (other samples, maybe) is unreachable; reported apart from the
                # member's own sample, so that loss is not silent
                yield Member(name, None, problem)
                yield Member(None, None, (TAIL_LOST, f"shard {shard}: truncated: member {name!r} declares {size} "
                                          f"bytes but the file ends {got} bytes after its header; the rest of "
                                          "the shard cannot be read"))
                return
            yield Member(name, None, problem)
        except _Broken as exc:
            if first and _gzip_of_pointer(f):  # train-000000.tar.gz as a checkout without `git lfs pull` left it
                yield Member(None, None, ("corrupt compressed stream", f"shard {shard}: is not a gzip file but "
                                          f"{LFS_POINTER}"))
                return
            yield Member(None, None, ("corrupt compressed stream", f"shard {shard}: unreadable after member {last!r} ({exc})"))
            return
        except _NoMemory:  # not even a header or a skip fits: where the stream stands is unknown
            yield Member(None, None, (NO_MEMORY, f"shard {shard}: out of memory (MemoryError) after member {last!r}; "
                                      "the rest of the shard is not read"))
            return


def split_member(name: str) -> tuple[str, str] | None:
    """WebDataset grouping: key = path up to the first dot of the basename; None if no extension.

    Example:
        >>> split_member("a/b/0001.depth.npy")
        ('a/b/0001', 'depth.npy')
    """
    slash = name.rfind("/")
    dot = name.find(".", slash + 1)
    if dot <= slash + 1 or dot == len(name) - 1:  # no dot, no key (".txt") or no extension ("k1.")
        return None
    return name[:dot], name[dot + 1 :]


def unsafe_member_path(name: str) -> bool:
    """A member name readers refuse: absolute, or with a ``..`` component (tarfile's ``data`` filter)."""
    return name.startswith("/") or ".." in name.split("/")


def _name_problem(name: str) -> tuple[str, str] | None:
    if unsafe_member_path(name):
        return "unsafe member path", f"member {name!r} has an absolute or escaping path; refusing it"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "non-UTF-8 member name", f"member name {name.encode('utf-8', 'surrogateescape')!r} is not UTF-8"
    return None


Problem = tuple[str, str]
RawSample = tuple[str | None, dict[str, bytes], Problem | None]


def group_samples(members: Iterator[Member], shard: str) -> Iterator[RawSample]:
    """Group adjacent members by key; report damage on the sample it belongs to.

    Rules (webdataset's grouping, never silent): a key that reappears after other keys is reported
    ("repeated key"), a member extension repeated inside one sample is reported ("repeated member"),
    an unsafe or non-UTF-8 name reports its sample; damage that cannot be tied to a name reports
    the sample being read at that point (it may be incomplete), or a key-less problem. A member
    whose name is not ``<key>.<ext>`` (``k1``, ``.txt``, ``k1.``) belongs to no sample: it is a
    key-less :data:`NO_KEY` problem and the sample in progress goes on (webdataset drops it silently).
    """
    shard = redact_text(shard)
    key: str | None = None
    group: dict[str, bytes] = {}
    problem: Problem | None = None
    seen: set[str] = set()
    for m in members:
        name = m.name
        parts = split_member(name) if name is not None else None
        if name is not None and parts is None and m.problem is not None and m.problem[0] == UNSUPPORTED:
            yield None, {}, m.problem  # a link or device named like no sample: reported, no sample touched
            continue
        if name is not None and parts is None and m.problem is None:
            # not <key>.<ext>: no sample to put it in. webdataset drops it silently; we count it (the
            # sample in progress goes on: the member is not part of it)
            yield None, {}, (NO_KEY, f"shard {shard}: member {name!r} has no key or extension (not "
                                     "<key>.<ext>); it belongs to no sample")
            continue
        if parts is None:
            # damage with no usable name: the sample in progress may be incomplete
            if key is not None and problem is not None and m.problem is not None and m.problem[0] == TAIL_LOST:
                yield key, group, problem  # already counted for its own member; the lost tail is more
                key, group, problem = None, {}, None
                yield None, {}, m.problem
            elif key is not None:
                yield key, group, problem or m.problem
                key, group, problem = None, {}, None
            else:
                yield None, {}, m.problem
            continue
        k, ext = parts
        if k != key:
            if key is not None:
                yield key, group, problem
            key, group, problem = k, {}, None
            if k in seen:
                problem = ("repeated key", f"shard {shard}: key {k!r} appears again after other samples (its members "
                           "are not adjacent); webdataset would yield it twice")
            seen.add(k)
        if problem is None:
            bad = m.problem or _name_problem(name)  # type: ignore[arg-type]
            if bad is not None:
                problem = bad if bad[1].startswith("shard ") else (bad[0], f"shard {shard}: {bad[1]}")
            elif ext in group:
                problem = ("repeated member", f"shard {shard}: sample {k!r} has member .{ext} twice")
            elif m.data is not None:
                group[ext] = m.data
            else:
                group.setdefault(ext, b"")  # present but not read (unwanted): keeps presence checks honest
    if key is not None:
        yield key, group, problem


def iter_samples(url: str, *, max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
                 want: Callable[[str], bool] | None = None,
                 storage_options: dict[str, Any] | None = None) -> Iterator[RawSample]:
    """Samples of one shard: ``(key, {ext: bytes}, problem)`` (see :func:`group_samples`).

    A shard that cannot be opened yields one key-less problem; nothing is raised.
    """
    try:
        f = open_shard(url, storage_options)
    except ShardError as exc:
        yield None, {}, ("unreadable shard", str(exc))
        return
    with f:
        yield from group_samples(iter_members(f, url, max_member_bytes=max_member_bytes, want=want), url)


def count_members(url: str, storage_options: dict[str, Any] | None = None) -> tuple[int, list[str]]:
    """(regular members, problems) of one shard — what ``mmdata verify`` checks."""
    problems: list[str] = []
    n = 0
    try:
        f = open_shard(url, storage_options)
    except ShardError as exc:
        return 0, [str(exc)]
    with f:
        for m in iter_members(f, url, max_member_bytes=1 << 62, want=lambda _: False):
            if m.problem is not None:
                problems.append(m.problem[1])
            if m.name is not None:
                n += 1
    return n, problems


# ---- index-guided fast path ------------------------------------------------------------------------
# MAP_POPULATE faults the whole (cached) shard in with one call instead of a fault per page: part of the
# raw read's ~1.3x gain on shards of many small files (5118a8b, benchmarks/read.py). It also maps the
# whole shard into the process before the first member is read: a 1.5 GB shard of 160 WAVs held 1.58 GB
# of RssFile to its end (QA). Shards up to this size are populated; larger ones are mapped page by page,
# read front to back (MADV_SEQUENTIAL), and the pages behind the read dropped (:class:`_DroppingMap`).
POPULATE_MAX = 64 << 20
_DROP_STEP = 16 << 20  # a big shard's pages behind the read are dropped each time it moved this far


def map_flags(length: int) -> int:
    """The ``mmap`` flags for a local shard of ``length`` bytes: ``MAP_POPULATE`` only up to
    :data:`POPULATE_MAX` (where the platform has it).

    Example:
        >>> map_flags(1 << 20) & mmap.MAP_SHARED and not map_flags(1 << 30) & getattr(mmap, "MAP_POPULATE", 0)
        True
    """
    return mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if length <= POPULATE_MAX else 0)


class _DroppingMap:
    """A big shard's mapping as :func:`indexed_members` hands it out: a slice copies the member out,
    as the mapping's own does, and once the read has moved :data:`_DROP_STEP` past the pages last
    dropped, the pages before the member's end leave the process (``MADV_DONTNEED``; the file's pages
    stay in the page cache, a later slice there faults them in again). The process so maps about one
    step plus one member of the shard, not all of it.

    Example:
        >>> m = mmap.mmap(-1, 3 * _DROP_STEP)
        >>> d = _DroppingMap(m); len(d[_DROP_STEP + 1 : 2 * _DROP_STEP + 1]), d.dropped
        (16777216, 33554432)
        >>> d.close(); m.closed
        True
    """

    __slots__ = ("_map", "dropped")

    def __init__(self, buf: mmap.mmap) -> None:
        self._map = buf
        self.dropped = 0  # bytes from the start no longer mapped in (a multiple of the page size)

    def __len__(self) -> int:
        return len(self._map)

    def __getitem__(self, span: slice) -> bytes:
        data = self._map[span]
        stop = span.stop
        if stop - self.dropped >= _DROP_STEP:
            end = stop - stop % mmap.PAGESIZE
            self._map.madvise(mmap.MADV_DONTNEED, self.dropped, end - self.dropped)
            self.dropped = end
        return data

    def close(self) -> None:
        self._map.close()


def _sequential(buf: mmap.mmap) -> Any:
    """``buf`` as read front to back: a big shard's mapping wrapped to drop the pages behind the read."""
    if len(buf) <= POPULATE_MAX or not hasattr(mmap, "MADV_DONTNEED"):
        return buf
    # the header check faulted in a page (a whole large folio: up to 2 MiB) at every member: out again
    buf.madvise(mmap.MADV_DONTNEED)
    if hasattr(mmap, "MADV_SEQUENTIAL"):
        buf.madvise(mmap.MADV_SEQUENTIAL)
    return _DroppingMap(buf)


def indexed_members(path: str, names: Any, sizes: Any, offsets: Any, size_fields: Any = None,
                    memo: dict[str, Any] | None = None) -> tuple[Any, list[int], list[int]] | None:
    """Map a local uncompressed shard and check it against the index in one vectorised pass.

    Args:
        path: the shard file.
        names: (n, m) uint8 array of member names, NUL padded to m <= 100 bytes, in index order (the
            header's name bytes after the first m must be NUL).
        sizes: (n,) int64 array of member sizes.
        offsets: (n + 1,) int64 header offsets of the members as plain ustar lays them out, then
            the end-of-archive block's.
        size_fields: optional (n, 12) uint8 array of the size fields as ``%011o\\0`` (tarfile's and
            mmdata's layout): compared byte for byte instead of parsing the digits.
        memo: optional dict the caller keeps with these arrays (one per shard plan). It remembers the
            identity of the file last verified (device, inode, size, modification and change times of
            the opened file): while the file keeps it, the header checks are not repeated (any write
            to the file changes its change time). It also keeps the member spans.

    Returns ``(buffer, starts, ends)`` — the data of member ``i`` is ``buffer[starts[i]:ends[i]]``, to be
    sliced in that order (a shard over :data:`POPULATE_MAX` drops the pages behind the read) —
    when every header sits where plain ustar headers put it, with that size, that name and a
    regular-file type, followed by the end-of-archive block. Returns None otherwise (long names, a
    foreign writer, any damage): the caller then uses :func:`iter_members`.
    """
    import numpy as np

    n = len(sizes)
    if n == 0:
        return None
    try:
        with open(path, "rb", buffering=0) as fh:
            st = os.fstat(fh.fileno())
            length = st.st_size
            if length < BLOCK or length % BLOCK or int(offsets[-1]) + BLOCK > length:
                return None
            buf: Any = mmap.mmap(fh.fileno(), 0, flags=map_flags(length), prot=mmap.PROT_READ)
    except (OSError, ValueError):
        return None
    if len(buf) != length:
        buf.close()
        return None
    ident = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if memo is not None and memo.get("verified") == ident:
        return (_sequential(buf), *memo["spans"])
    blocks = np.frombuffer(buf, dtype=np.uint8).reshape(-1, BLOCK)  # a view: nothing is read yet
    rows = offsets[:-1] // BLOCK
    # Every field the read depends on — name, size, type, no ustar prefix — must equal what the
    # index says; that is a stronger check than the header checksums (which cover the same bytes
    # plus ones that do not matter here), so they are not summed on this path. Only those columns
    # of the header blocks are gathered.
    head = blocks[rows, :157]
    kind = head[:, 156]
    ok = (not blocks[offsets[-1] // BLOCK].any() and bool(((kind == 48) | (kind == 0)).all())
          and np.array_equal(head[:, : names.shape[1]], names) and not head[:, names.shape[1] : 100].any())
    if ok:
        prefixed = blocks[rows, 345] != 0
        if prefixed.any():  # a POSIX prefix field (GNU tar puts times there instead)
            posix = (blocks[rows, 257:263] == np.frombuffer(b"ustar\x00", dtype=np.uint8)).all(axis=1)
            ok = not (posix & prefixed).any()
    if ok and not (size_fields is not None and np.array_equal(head[:, 124:136], size_fields)):
        parsed = _octal_columns(head[:, 124:136])  # a writer with another digit layout
        ok = parsed is not None and np.array_equal(parsed, sizes)
    del blocks, head
    if not ok:
        buf.close()
        return None
    starts = offsets[:-1] + BLOCK
    spans = starts.tolist(), (starts + sizes).tolist()
    if memo is not None:
        memo["spans"] = spans
        memo["verified"] = ident
    return (_sequential(buf), *spans)


def _octal_columns(fields: Any) -> Any:
    """Octal digit fields (digits first, then NUL/space padding) of many headers at once; None when
    any field looks different (the streaming parser then reads that shard)."""
    import numpy as np

    f = fields.astype(np.int64)
    width = f.shape[1]
    digit = (f >= 48) & (f <= 55)
    k = digit.sum(axis=1)
    col = np.arange(width)
    if not (digit == (col < k[:, None])).all() or not ((f == 0) | (f == 32) | digit).all():
        return None
    weights = np.where(col < k[:, None], 8 ** np.clip(k[:, None] - 1 - col, 0, None), 0)
    return ((f - 48) * weights).sum(axis=1)
