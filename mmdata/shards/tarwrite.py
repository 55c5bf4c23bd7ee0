"""Deterministic, atomic tar writing shared by every shard writer (shard, augment, add-modality).

Headers carry mtime 0, uid/gid 0, empty user/group names and mode 0o644, so the same members give
the same bytes on any machine. A shard is written to a new ``<name>.tmp-<pid>-<random>`` in the same folder and
renamed, so a reader never sees a half-written shard and a killed job leaves only temp files.

Durability: like ``tar`` and webdataset's ``ShardWriter``, shards are not fsynced by default — the
rename is atomic against a killed process; after a power loss, re-running ``mmdata shard`` into the
same folder keeps only shards whose sha256 still matches, and ``mmdata verify`` finds any damage.
``fsync=True`` (``mmdata shard --fsync``) flushes each file before its rename, at the disk's speed.

Speed: :class:`TarWriter` hashes on a helper thread (hashlib releases the GIL), so the sha256 of a
shard costs no time on the writing thread; with the optional C module ``_pack`` (see setup.py),
headers and copies of many small members are built in one call. ``MMDATA_PURE_PYTHON=1`` turns the C
module off; both paths write the same bytes (tests/shards/test_pack.py).
"""

from __future__ import annotations

import hashlib
import os
import signal
import tarfile
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from mmdata.io import published_mode


try:
    from mmdata.shards import _pack
except ImportError:  # no C compiler when installed: the pure-Python path writes the same bytes
    _pack = None
if os.environ.get("MMDATA_PURE_PYTHON") == "1":
    _pack = None
#: True when the C inner loops (``mmdata.shards._pack``) are in use
ACCELERATED = _pack is not None

BLOCK = 512
_ZEROS = bytes(BLOCK)
_FLUSH_BYTES = 1 << 18  # write + hand to the hash thread every 256 KiB: only the last batch is hashed at close
_BIG = 1 << 12  # members at least this large are hashed and written without a copy
_IOV_MAX = min(1024, os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024)


@dataclass(frozen=True)
class TarSummary:
    """What was written: sha256 of the whole file, member count and total bytes."""

    sha256: str
    members: int
    bytes: int


_FIXED_MID = b"0000644\x000000000\x000000000\x00"  # mode, uid, gid
_MTIME = b"00000000000\x00"
_TAIL = b"0" + b"\0" * 100 + b"ustar\x0000" + b"\0" * (64 + 16 + 167)
# checksum of everything but the name and the size digits: the checksum field counts as 8 spaces
_CONST_SUM = sum(_FIXED_MID) + sum(_MTIME) + sum(_TAIL) + 8 * 32 + 0  # + size's trailing NUL (0)


def member_header(name: str, size: int) -> bytes:
    """The tar header block(s) for a regular-file member (ustar; PAX when the name needs it).

    Short ASCII names take a hand-built ustar header, byte-identical to :mod:`tarfile`'s but ~10x
    faster (the per-member cost dominates sharding small files).
    """
    raw = name.encode("utf-8", "strict")
    if len(raw) < 100 and raw.isascii() and size < 0o77777777777:
        digits = b"%011o" % size
        chk = _CONST_SUM + sum(raw) + sum(digits)
        return b"".join((raw, bytes(100 - len(raw)), _FIXED_MID, digits, b"\x00", _MTIME, b"%06o\x00 " % chk, _TAIL))
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    try:
        return info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")
    except ValueError:  # long or non-ASCII name
        return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _writev_all(fd: int, parts: list[bytes]) -> None:
    """Write ``parts`` with one ``writev`` (no join copy), resubmitting after a short write."""
    view: list[bytes] | list[memoryview] = parts
    while view:
        n = os.writev(fd, view[:_IOV_MAX])
        for i, part in enumerate(view):
            if n < len(part):
                view = [memoryview(part)[n:], *view[i + 1:]]
                break
            n -= len(part)
        else:
            break


_HASH_POOL: tuple[int, ThreadPoolExecutor] | None = None


def _hash_pool() -> ThreadPoolExecutor:
    """One hashing thread per process, started on first use and kept (a thread start costs ~0.1 ms,
    per shard that adds up). A forked child gets its own: the parent's thread does not exist there."""
    global _HASH_POOL
    if _HASH_POOL is None or _HASH_POOL[0] != os.getpid():
        # The thread is started here with SIGINT / SIGTERM / SIGHUP (the CLI ends a job on each) held back: a signal's exception raised inside
        # submit() between starting the worker and registering it for the exit-time join left a worker
        # nobody wakes, and the interpreter waited for it forever (`mmdata augment` hung after SIGTERM,
        # its main thread in threading._shutdown). Held signals arrive once the mask is restored.
        held = {signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])}
        masked = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, held) if masked else None
        try:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmdata-sha256")
            pool.submit(int).result()  # starts the worker (and registers it) now
            _HASH_POOL = (os.getpid(), pool)
        finally:
            if masked:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return _HASH_POOL[1]


def _update_all(digest: Any, batch: list[bytes]) -> None:
    for part in batch:
        digest.update(part)


class _Hasher:
    """sha256 of a byte stream fed in order, computed on the hashing thread (or inline).

    The thread takes batches in submission order (one worker), and hashlib releases the GIL while it
    hashes, so the writing thread goes on meanwhile. At most ``backlog`` batches wait, so a slow
    hash bounds memory instead of buffering the whole shard.
    """

    def __init__(self, threaded: bool = True, backlog: int = 8) -> None:
        self._digest = hashlib.sha256()
        self._pending: deque[Future[None]] | None = deque() if threaded else None
        self._backlog = backlog

    def feed(self, batch: list[bytes]) -> None:
        if self._pending is None:
            _update_all(self._digest, batch)
            return
        if len(self._pending) >= self._backlog:
            self._pending.popleft().result()
        self._pending.append(_hash_pool().submit(_update_all, self._digest, batch))

    def hexdigest(self) -> str:
        while self._pending:
            self._pending.popleft().result()
        return self._digest.hexdigest()


def _make_tar_temp(path: Path) -> tuple[Path, int]:
    """Create a shard's temp file beside it: ``<name>.tmp-<pid>-<random>`` (the ``<name>.tmp-`` prefix is what
    the resume sweep and the foreign-output check know), made new by :func:`tempfile.mkstemp` (``O_EXCL |
    O_NOFOLLOW``, another random name on a clash) so that a file or link someone planted at a guessable name is
    never opened or written through (QA round 22: a link at ``train-000000.tar.tmp-<pid>`` had a job overwrite
    its target and publish the link as the shard). Mode :func:`mmdata.io.published_mode`, what the published
    shard keeps.
    """
    fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    os.fchmod(fd, published_mode())
    return Path(tmp), fd


class TarWriter:
    """Write a tar shard member by member: deterministic headers, atomic rename, sha256 on the side.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x.tar")
        >>> with TarWriter(p) as w:
        ...     w.add("a.txt", b"hi")
        ...     w.add_many(["b.txt", "c.txt"], [b"x", b"y"])
        >>> w.summary.members
        3
    """

    def __init__(self, path: str | Path, *, fsync: bool = False, threaded_hash: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._hasher = _Hasher(threaded_hash)  # before the file: starting its thread is where a signal lands
        self._tmp, self._fd = _make_tar_temp(self.path)
        self._parts: list[bytes] = []  # queued for one writev
        self._small: list[bytes] = []  # a run of small pieces, joined into one part at the next large one
        self._queued = 0
        self.count = 0
        self.total = 0  # archive bytes so far (written or queued)
        self.summary: TarSummary | None = None

    def _seal_small(self) -> None:
        if self._small:
            self._parts.append(b"".join(self._small))
            self._small.clear()

    def _flush(self) -> None:
        self._seal_small()
        if self._parts:
            batch = self._parts
            self._parts = []
            self._hasher.feed(batch)
            _writev_all(self._fd, batch)
        self._queued = 0

    def _queue(self, size: int) -> None:
        self.total += size
        self._queued += size
        if self._queued >= _FLUSH_BYTES or len(self._parts) >= _IOV_MAX - 2:
            self._flush()

    def add(self, name: str, data: bytes) -> None:
        """Append one member (ustar header; PAX for long or non-ASCII names)."""
        if name[:1] == "/" or (".." in name and ".." in name.split("/")):
            raise ValueError(f"refusing tar member name {name!r} (absolute or escaping path)")
        n = len(data)
        head = member_header(name, n)
        self._small.append(head)
        if n >= _BIG:  # large payloads go to writev and the hash as they are: no copy
            self._seal_small()
            self._parts.append(data)
        else:
            self._small.append(data)
        pad = -n % BLOCK
        if pad:
            self._small.append(_ZEROS[:pad])
        self.count += 1
        self._queue(len(head) + n + pad)

    def add_many(self, names: Sequence[str], datas: Sequence[bytes]) -> None:
        """Append members in order; many small ones are laid out by the C module in one call."""
        if _pack is not None and len(names) > 1:
            parts = _pack.tar_members(names, datas, _BIG)
            if parts is not None:
                self._seal_small()
                self._parts += parts
                self.count += len(names)
                self._queue(sum(map(len, parts)))
                return
        for name, data in zip(names, datas):
            self.add(name, data)

    def close(self) -> TarSummary:
        """End-of-archive marker, sha256, optional fsync, atomic rename; returns the summary."""
        tail = 2 * BLOCK  # end-of-archive marker, then round up to tar's default 10 KiB record like GNU tar
        tail += (-(self.total + tail)) % (20 * BLOCK)
        self._small.append(bytes(tail))
        self.total += tail
        self._flush()
        digest = self._hasher.hexdigest()
        if self._fsync:
            os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        os.replace(self._tmp, self.path)
        self.summary = TarSummary(digest, self.count, self.total)
        return self.summary

    def abort(self) -> None:
        """Drop the temp file (nothing is renamed)."""
        self._hasher.hexdigest()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> TarWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_tar(path: str | Path, members: Iterable[tuple[str, bytes]], *, fsync: bool = False) -> TarSummary:
    """Write ``members`` (name, bytes) to ``path`` atomically; returns its sha256 and counts.

    Args:
        path: the shard to write (its folder is created).
        members: (member name, bytes) in archive order.
        fsync: flush the file to disk before the rename (durable against power loss).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x.tar")
        >>> write_tar(p, [("a.txt", b"hi")]).members
        1
    """
    with TarWriter(path, fsync=fsync) as w:
        for name, data in members:
            w.add(name, data)
    assert w.summary is not None
    return w.summary
