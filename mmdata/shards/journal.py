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
import stat
import struct
import time
import zlib
from pathlib import Path
from types import TracebackType

from mmdata.errors import BusyError, SourceError

MAGIC = b"MMJ1"
_HEAD = struct.Struct("<4sII")  # magic, payload length, crc32 of the payload
NAME = ".mmdata-journal"
LOCK = ".mmdata-lock"


def open_own(path: Path, flags: int, what: str, mode: int = 0o666) -> int:
    """``os.open(path, flags)`` for a job's own file in a folder others may write to (a team's
    group-writable OUT): never through a symbolic link (``O_NOFOLLOW``) and only a regular file, so a
    link planted at ``OUT/.mmdata-lock`` cannot make a job write into the file it points to (QA: a
    victim's ``~/.bashrc`` was truncated and overwritten by the lock's note). It is opened without
    blocking, so a FIFO planted there is refused instead of waited on (QA28: ``shard`` hung on one at
    ``OUT/.mmdata-journal``); a regular file's descriptor is then made blocking again. ``what``: the file's
    name in errors. Other OSErrors (no such file, permissions) are raised as they are.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); (d / "target").write_text("keep")
        4
        >>> (d / ".mmdata-lock").symlink_to(d / "target")
        >>> try:
        ...     open_own(d / ".mmdata-lock", os.O_RDWR | os.O_CREAT, "lock file")
        ... except SourceError as exc:
        ...     print(str(exc).split(": ", 1)[1][:38])
        a symbolic link: refused (not followed
    """
    nonblock = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted there: refused below, not waited on (QA28)
    try:
        fd = os.open(path, flags | nonblock | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):  # EMLINK: FreeBSD's O_NOFOLLOW
            raise SourceError(f"{path}: a symbolic link: refused (not followed: the {what} of a job is its own "
                              f"file, and a link there would make the job write where it points); remove it "
                              f"(rm {path}) and rerun") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise SourceError(f"{path}: not a regular file (the {what} of a job is a regular file it writes); "
                          f"remove it and rerun")
    if nonblock and not flags & nonblock:
        os.set_blocking(fd, True)
    return fd


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
        records, _ = _records(_read(Path(out) / NAME))
    except FileNotFoundError:
        return []
    return records[1:] if records and records[0] != plan_id.encode() else []


def _read(path: Path) -> bytes:
    """The bytes of the journal file ``path``, never read through a symbolic link (:func:`open_own`)."""
    fd = open_own(path, os.O_RDONLY, "resume journal")
    try:
        return _read_fd(fd)
    finally:
        os.close(fd)


def _read_fd(fd: int) -> bytes:
    chunks = []
    pos = 0
    while True:
        chunk = os.pread(fd, 1 << 20, pos)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        pos += len(chunk)


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
        # one descriptor, never through a symbolic link: read, then cut or started over (open_own)
        try:
            self._fd = open_own(self.path, os.O_RDWR, "resume journal")
            self.existed = True
        except FileNotFoundError:
            self._fd = open_own(self.path, os.O_RDWR | os.O_CREAT, "resume journal")
            self.existed = False
        try:
            records, end = _records(_read_fd(self._fd))
            if records and records[0] == head:
                self.done = records[1:]
                os.ftruncate(self._fd, end)  # drop a torn tail
                os.lseek(self._fd, end, os.SEEK_SET)
            else:  # no journal, or one of another plan: start over
                self.done = []
                os.ftruncate(self._fd, 0)
                os.lseek(self._fd, 0, os.SEEK_SET)
                self.append(head)
        except BaseException:
            self.close()
            raise

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
        mmdata.errors.BusyError: ...
    """

    def __init__(self, out: str | Path, job: str) -> None:
        self.out = Path(out)
        self.path = self.out / LOCK
        self.job = job
        self._fd = -1

    def __enter__(self) -> JobLock:
        while True:
            try:  # never through a symbolic link, only a regular file (open_own: a planted link is refused)
                fd = open_own(self.path, os.O_RDWR | os.O_CREAT, "lock file")
            except OSError as exc:  # read-only OUT, a read-only file system
                raise SourceError(f"output folder {self.out}: cannot create its lock file {LOCK} "
                                  f"({exc.strerror}); write to a folder you can write to") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise BusyError(f"{self.out} is being written by another job ({holder}); wait for it to finish "
                                  f"or write to another folder") from None
            try:  # the holder before us may have removed the file after we opened it: lock the one there now
                same = os.path.samestat(os.fstat(fd), os.lstat(self.path))
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
