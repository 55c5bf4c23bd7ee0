"""The job state of ``mmdata shard`` in its output folder: the journal of finished shards and the lock.

``OUT/.mmdata-lock`` is held (``flock``) by the one job writing to OUT; a second job into the same
folder stops with a message naming the holder. The kernel drops the lock when its holder dies, so a
lock file left by a killed job blocks nobody (a stale lock needs no clean-up).

``OUT/.mmdata-journal`` starts with the plan's identity; each finished shard appends one record (its
done marker: index rows, sha256, inputs digest). A record is ``MMJ1`` + length + crc32 + payload, so
a job killed in the middle of an append leaves a torn tail that the next run detects and cuts off.
One file opened once costs two metadata operations per job, where a marker file per shard cost
two per shard (create + rename); on small-file jobs those were a tenth of the run time.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import time
import zlib
from pathlib import Path
from types import TracebackType

from mmdata.errors import SourceError

MAGIC = b"MMJ1"
_HEAD = struct.Struct("<4sII")  # magic, payload length, crc32 of the payload
NAME = ".mmdata-journal"
LOCK = ".mmdata-lock"


def _records(data: bytes) -> tuple[list[bytes], int]:
    """The whole records at the start of ``data`` and the offset where they end."""
    out: list[bytes] = []
    pos = 0
    while pos + _HEAD.size <= len(data):
        magic, n, crc = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + n
        if magic != MAGIC or end > len(data) or zlib.crc32(data[pos + _HEAD.size:end]) != crc:
            break
        out.append(data[pos + _HEAD.size:end])
        pos = end
    return out, pos


def record(payload: bytes) -> bytes:
    """One journal record: ``MMJ1`` + length + crc32 + ``payload``."""
    return _HEAD.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def other_plan_records(out: str | Path, plan_id: str) -> list[bytes]:
    """The done markers in ``OUT/.mmdata-journal`` when it is the journal of an unfinished job of
    *another* plan (its shards are then no job's: the new plan starts over); [] otherwise. Reads only:
    the caller removes those shards before :class:`Journal` starts the new plan's journal, so a job
    killed in between finds them again.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> j = Journal(out, "plan-1"); j.append(b"shard 0"); j.close()
        >>> other_plan_records(out, "plan-2"), other_plan_records(out, "plan-1")
        ([b'shard 0'], [])
    """
    try:
        records, _ = _records((Path(out) / NAME).read_bytes())
    except FileNotFoundError:
        return []
    return records[1:] if records and records[0] != plan_id.encode() else []


class Journal:
    """Open (or start) the journal of a job whose plan is ``plan_id``.

    Attributes:
        done: payloads of the shards a previous run of the same plan finished, in order.
        existed: a journal was there (an earlier run of this or another plan did not finish).

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> j = Journal(out, "plan-1"); j.append(b"shard 0"); j.close()
        >>> Journal(out, "plan-1").done, Journal(out, "plan-2").done
        ([b'shard 0'], [])
    """

    def __init__(self, out: str | Path, plan_id: str, *, fsync: bool = False) -> None:
        self.path = Path(out) / NAME
        self._fsync = fsync
        head = plan_id.encode()
        try:
            records, end = _records(self.path.read_bytes())
            self.existed = True
        except FileNotFoundError:
            records, end = [], 0
            self.existed = False
        if records and records[0] == head:
            self.done = records[1:]
            self._fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
            os.ftruncate(self._fd, end)  # drop a torn tail
            os.lseek(self._fd, end, os.SEEK_SET)
        else:  # no journal, or one of another plan: start over
            self.done = []
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)
            self.append(head)

    def take_done(self) -> list[bytes]:
        """:attr:`done`, handed over: the journal keeps no copy (a resumed job of 20k shards held each
        ~5 KB marker twice)."""
        done, self.done = self.done, []
        return done

    def append(self, payload: bytes) -> None:
        """Record one payload (written whole before this returns; fsynced when asked)."""
        buf = memoryview(record(payload))
        while buf:
            buf = buf[os.write(self._fd, buf):]
        if self._fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def remove(self) -> None:
        """The job is complete: close and delete the journal."""
        self.close()
        self.path.unlink(missing_ok=True)


class JobLock:
    """Hold ``OUT/.mmdata-lock`` while a job writes to OUT; refuse a second job with a clear message.

    ``flock`` is released by the kernel when the holder exits or is killed, so a lock file left
    behind by a dead job is taken over silently. The file is removed when the job ends, unless it failed
    or was interrupted with its resume journal left: then its note names the command to rerun
    (:func:`mmdata.shards.index.unfinished_command`).

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp())
        >>> with JobLock(out, "mmdata shard"):
        ...     JobLock(out, "mmdata shard").__enter__()
        Traceback (most recent call last):
        ...
        mmdata.errors.SourceError: ...
    """

    def __init__(self, out: str | Path, job: str) -> None:
        self.out = Path(out)
        self.path = self.out / LOCK
        self.job = job
        self._fd = -1

    def __enter__(self) -> JobLock:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            except OSError as exc:  # read-only OUT, a read-only file system
                raise SourceError(f"output folder {self.out}: cannot create its lock file {LOCK} "
                                  f"({exc.strerror}); write to a folder you can write to") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise SourceError(f"{self.out} is being written by another job ({holder}); wait for it to finish "
                                  f"or write to another folder") from None
            try:  # the holder before us may have removed the file after we opened it: lock the one there now
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        note = f"pid {os.getpid()} on {socket.gethostname()}, {self.job}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        old = os.pread(fd, 4096, 0)  # the note of a job that did not finish may name the command to rerun
        data = note.encode()
        try:  # written over the old note, then cut to length
            if os.pwrite(fd, data, 0) != len(data):  # a short write: the disk filled up under it
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.ftruncate(fd, len(data))
        except OSError as exc:  # a full disk, a quota, a file-size limit: no job can run here
            try:
                if old:
                    os.pwrite(fd, old, 0)  # bytes it held already: they fit again
                    os.ftruncate(fd, len(old))
                else:  # an empty lock file says nothing: not left behind
                    self.path.unlink(missing_ok=True)  # while still held: nobody can have locked it meanwhile
            except OSError:
                pass
            finally:
                os.close(fd)
            raise SourceError(f"output folder {self.out}: cannot write its lock file {LOCK} ({exc.strerror or exc}); "
                              f"free space (or write to another folder) and rerun the same command") from None
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd >= 0:
            # a job that failed with its resume journal left keeps its note ("an `mmdata augment` job did not
            # finish"); one that succeeded, or rolled back (add-modality), removes it
            if exc_type is None or not (self.out / NAME).exists():
                self.path.unlink(missing_ok=True)  # while still held: nobody can have locked it meanwhile
            os.close(self._fd)
            self._fd = -1
