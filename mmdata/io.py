"""Small file helpers shared by every writer: atomic writes and streamed hashes.

Every file mmdata writes (shards, index, card, metrics, reports) reaches its final name by a rename
from a temp file in the same folder, so a killed process leaves either the old file or the new one,
never a torn one. A SIGKILLed writer leaves its temp file behind; the name says whose it is
(``.NAME.mmdata-<host>-<pid>-XXXXXXXX.tmp``), so a later job can remove the ones of dead writers
(:func:`remove_stale_temps`) and never a live writer's, nor a file mmdata did not create.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import numbers
import os
import re
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


#: errno values of a limit of this machine, not a fault of one file: too many open files (this process's
#: limit, the system's table), no memory. A job that meets one while reading stops (a rerun resumes) instead of
#: counting the file as bad data — those files are fine, and the dataset would silently lack them.
HOST_LIMITS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


def host_limit(code: int | None) -> str | None:
    """What to do about a :data:`HOST_LIMITS` errno ``code`` (its message and a remedy); None for any other
    errno (a fault of the file: bad data).

    Example:
        >>> host_limit(errno.EMFILE).startswith("Too many open files"), host_limit(errno.ENOENT)
        (True, None)
    """
    if code not in HOST_LIMITS:
        return None
    remedy = {errno.EMFILE: "raise the open-file limit (ulimit -n) or use fewer workers (-j)",
              errno.ENFILE: "the system's table of open files is full (fs.file-max): close other programs' files"}
    return (f"{os.strerror(code)}: a limit of this machine, not a fault of the file; "
            f"{remedy.get(code, 'free memory or use fewer workers (-j)')}")


#: errno values of a write the disk refused: full, over a quota, over a file-size limit, read-only
NO_ROOM = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})


def _soft_limit(name: str) -> int | None:
    """This process's soft ``resource`` limit ``name`` (``"RLIMIT_AS"``), None when unlimited or unknown (Windows)."""
    try:
        import resource

        soft = resource.getrlimit(getattr(resource, name))[0]
    except (ImportError, AttributeError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _mb(n: int) -> str:
    return f"{n / 1e3:,.0f} kB" if n < 10**6 else f"{n / 1e6:,.1f} MB" if n < 10**10 else f"{n / 1e9:,.1f} GB"


def no_room_advice(exc: OSError, where: str | Path | None = None, need: int | None = None,
                   other: str = "write to another folder", retry: str = "rerun the same command to resume",
                   smaller: str | None = None) -> str:
    """What to do about a write the disk refused (:data:`NO_ROOM`): free space for a full disk or a quota —
    saying how much is free at ``where`` now and, when known, how much the write needed (``need`` bytes) —
    but not for a file-size limit (``EFBIG``: ``ulimit -f``, FAT32 / exFAT's 4 GiB per file), which no
    freeing fixes (``smaller``: how to write smaller files, e.g. ``--maxsize``), nor for a read-only file
    system (QA28 ops #4, #5: "free space and rerun" failed forever under ``ulimit -f``; after a full disk,
    nothing said how much room to make, and two reruns failed again).

    Example:
        >>> no_room_advice(OSError(errno.EFBIG, "File too large"), smaller="use smaller shards (--maxsize BYTES)")[:67]
        'File too large: the file is larger than this process or file system'
    """
    code = exc.errno
    if code == errno.EFBIG:
        fsize = _soft_limit("RLIMIT_FSIZE")
        cap = "" if fsize is None else f"this process may write files of {_mb(fsize)} (ulimit -f); "
        return (f"{os.strerror(code)}: the file is larger than this process or file system may write ({cap}FAT32 / "
                f"exFAT cap a file at 4 GiB), so freeing space would not help; {smaller or other}, then {retry}")
    if code == errno.EROFS:
        return f"{os.strerror(code)}: {other}, then {retry}"
    free = ""
    if where is not None:
        try:
            import shutil

            at = Path(where)
            while not at.exists() and at != at.parent:
                at = at.parent
            free = f"{_mb(shutil.disk_usage(at).free)} free there now"
        except OSError:
            pass
    needed = f"this write needs about {_mb(need)}" if need else ""
    said = "; ".join(x for x in (needed, free) if x)
    return f"{os.strerror(code or errno.ENOSPC)}: free space{f' ({said})' if said else ''} (or {other}) and {retry}"


#: what the dynamic loader says when it cannot map a library for want of memory (``ulimit -v``, a cgroup)
_NO_MAP = ("failed to map segment", "cannot allocate memory")


def out_of_memory(exc: BaseException) -> str | None:
    """One line for an exception that means this machine ran out of memory — a ``MemoryError``, torch's
    ``OutOfMemoryError``, OpenCV's "Insufficient memory" error, an ``ImportError`` of a library the loader could not map (``failed to map segment from shared object``), an
    ``OSError`` ENOMEM — or None for any other: not a fault of a sample or a recipe step (QA28: under
    ``ulimit -v`` `mmdata train` ended in a 70-line traceback that blamed ``normalize.image[2]`` on one sample).

    Example:
        >>> out_of_memory(MemoryError()).startswith("out of memory"), out_of_memory(ValueError("x"))
        (True, None)
    """
    if isinstance(exc, MemoryError):
        what = str(exc).strip()
    elif type(exc).__name__ == "OutOfMemoryError" or (type(exc).__module__.startswith("cv2") and "Insufficient memory"
                                                       in str(exc)):  # torch's (a GPU's), OpenCV's allocation error
        what = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    elif isinstance(exc, ImportError) and any(s in str(exc).lower() for s in _NO_MAP):
        what = f"a library could not be loaded ({str(exc).strip().rsplit('/', 1)[-1]})"
    elif isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
        what = str(exc).strip()
    else:
        return None
    soft = _soft_limit("RLIMIT_AS")
    limit = "" if soft is None else f"; this process may use {soft >> 20} MiB (ulimit -v)"
    return (f"out of memory{': ' + what if what else ''}{limit}: a limit of this machine, not a fault of the data; "
            "raise the memory limit, or use fewer workers (-j) or a smaller batch, and rerun")


def published_mode() -> int:
    """The mode of a file mmdata publishes: 0o666 less the process umask, what ``open()`` and the shell give
    a new file and what the shard tars get from ``os.open(..., 0o666)`` (a temp file from ``mkstemp`` is
    0o600 until it is given this mode). A team's umask 002 gives group-writable files (0o664), 022 gives
    0o644, 077 gives 0o600.

    Example:
        >>> old = os.umask(0o077); m = published_mode(); _ = os.umask(0o002); g = published_mode(); _ = os.umask(old)
        >>> oct(m), oct(g)
        ('0o600', '0o664')
    """
    try:  # Linux: read it without changing it (os.umask sets and returns, racing other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split(":", 1)[1].strip(), 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def can_write_in(folder: str | Path) -> bool:
    """Whether this process can make a file in the existing ``folder``: ``os.access`` first (cheap), then, where
    it says yes, a real probe file made and removed (QA26: ``os.access`` says yes to root for ``/proc``, ``/sys``
    and a read-only bind mount that is not a read-only file system, and the job then failed at its first write,
    after the work). The probe is a hidden ``.mmdata-probe-*`` name, removed at once.

    Example:
        >>> import tempfile
        >>> can_write_in(tempfile.mkdtemp()), can_write_in("/proc")
        (True, False)
    """
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        fd, name = tempfile.mkstemp(prefix=".mmdata-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:
        pass
    return True


def _host_tag() -> str:
    """This machine in a temp file's name: 8 hex digits of its host name (a pid means nothing on another
    machine writing to the same shared folder)."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


#: the name of a temp file :func:`make_temp` makes (``.NAME.mmdata-<host>-<pid>-XXXXXXXX.tmp``)
TEMP_NAME = re.compile(r"\.(?P<name>.+)\.mmdata-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[a-z0-9_]+\.tmp")


def make_temp(path: str | Path) -> tuple[int, str]:
    """Create the temp file a write of ``path`` goes through, beside it: ``(fd, temp path)`` as
    :func:`tempfile.mkstemp` returns them, named ``.NAME.mmdata-<host>-<pid>-XXXXXXXX.tmp`` so that
    :func:`remove_stale_temps` can tell whether its writer is still alive.

    Example:
        >>> import tempfile
        >>> fd, tmp = make_temp(os.path.join(tempfile.mkdtemp(), "x.json")); os.close(fd)
        >>> os.path.basename(tmp).startswith(f".x.json.mmdata-{_host_tag()}-{os.getpid()}-")
        True
    """
    path = Path(path)
    return tempfile.mkstemp(prefix=f".{temp_stem(path.name)}.mmdata-{_host_tag()}-{os.getpid()}-", suffix=".tmp",
                            dir=path.parent)


#: the bytes a temp file's name adds to its stem: ``.`` + ``.mmdata-`` + host + ``-`` + pid (up to 7 digits) +
#: ``-`` + 8 random characters + ``.tmp``
_TEMP_EXTRA = 1 + 8 + 8 + 1 + 7 + 1 + 8 + 4


def temp_stem(name: str) -> str:
    """The stem of the temp file a write of the file ``name`` goes through: ``name`` itself, or — when the
    temp name would pass the 255 bytes a file name takes while ``name`` fits — ``name``'s first bytes and
    a digest of it, so that every name that can be written can be written atomically (QA: a 254-byte
    name failed with ``File name too long`` on its temp file).

    Example:
        >>> temp_stem("dataset.json"), len(temp_stem("x" * 250).encode()) + _TEMP_EXTRA <= 255
        ('dataset.json', True)
    """
    raw = os.fsencode(name)
    if len(raw) + _TEMP_EXTRA <= 255:
        return name
    head = raw[:150].decode("utf-8", "ignore")  # whole characters only; the digest tells long names apart
    return f"{head}~{hashlib.sha256(raw).hexdigest()[:16]}"


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine may still write (a zombie never does); True when unsure."""
    if os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:  # Linux: killed but not yet reaped by its parent
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:][:1] not in ("Z", "X")
    except (OSError, ValueError):
        return True


def remove_stale_temps(folder: str | Path, names: Iterable[str]) -> list[Path]:
    """Remove the temp files that :func:`make_temp` made in ``folder`` for the files ``names`` and whose
    writer is dead (SIGKILLed mid-write); return them. A temp file of a live writer, or of one on
    another machine, is kept, and so is any file not named as :func:`make_temp` names them (a user's,
    another tool's, or one of an mmdata version that did not record its writer).

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp(); fd, tmp = make_temp(os.path.join(d, "m.json")); os.close(fd)
        >>> remove_stale_temps(d, ["m.json"]), os.path.exists(tmp)  # its writer (this process) is alive
        ([], True)
    """
    folder = Path(folder)
    host = _host_tag()
    pattern = TEMP_NAME
    wanted = {n for name in names for n in (name, temp_stem(name))}
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if (m is None or m["name"] not in wanted or m["host"] != host
                or _pid_alive(int(m["pid"])) or not entry.is_file(follow_symlinks=False)):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:  # another rerun removed it first
            continue
        removed.append(Path(entry.path))
    return removed


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
    fd, tmp = make_temp(path)
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


def finite(obj: Any) -> Any:
    """``obj`` with every NaN / infinite float replaced by None, recursively: JSON has no NaN (Python's
    ``json`` writes ``NaN``, which ``JSON.parse`` and ``jq`` reject); null says "no value" (a metric on
    a split without labelled samples). Used by ``metrics.json`` and the CLI's ``--json``.

    Example:
        >>> finite({"accuracy": float("nan"), "per_class": [1.0, float("inf")]})
        {'accuracy': None, 'per_class': [1.0, None]}
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, numbers.Real) and not isinstance(obj, numbers.Integral):  # numpy float32: not a float
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj
