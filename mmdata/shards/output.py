"""Where a ``mmdata shard`` / ``mmdata augment`` job writes: a local folder, or a folder at an fsspec
URL of an object store (``s3://``, ``gs://``, ``az://``, ...).

Both give the writer the same few operations — hold the job's lock, open its resume journal, tell a
task where its shard goes, check a finished shard, write the index / shards table / card — so the
plan, the shard bytes and the metadata bytes do not depend on where they go.

An object store has no rename, no append and no lock, so a remote output works the way img2dataset
and webdataset's ``ShardWriter`` + upload do:

* each shard is written by its task (a thread here or a Ray task on any node) to a local temp file
  and uploaded as one object: an object PUT (or a multipart upload, at its completion) makes it
  visible whole, so no partial shard is ever seen at OUT;
* the journal is one object per finished shard, ``OUT/.mmdata-journal/<plan>/<n>.mmj`` (the record
  a local journal appends), written by the driver after the shard's upload returned; a killed driver
  (any machine) resumes from what is at OUT, keeping every journaled shard whose object is still
  there with its size (re-hashing would download the dataset: ``mmdata verify URL`` does that);
  ``OUT/.mmdata-journal/<plan>/started``, written before the first upload, marks the prefix as an
  mmdata job's, so a driver killed before its first record is resumed, not refused as foreign;
* ``index.parquet``, ``shards.parquet`` and, last, ``dataset.json`` are uploaded at the end, then the
  journal is deleted: a folder with a card is complete.

The job lock is a local one (``$MMDATA_CACHE/locks``): it stops a second job into the same URL from
this machine; two drivers on different machines writing one URL are not detected.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mmdata.errors import CacheWarning, MMDataError, SourceError
from mmdata.io import _pid_alive, atomic_write_bytes, can_write_in, file_sha256, remove_stale_temps
from mmdata.shards.journal import NAME, Journal, JobLock, _records, other_plan_records, record
from mmdata.urls import NoCacheError, UnsafeCacheError, cache_dir, call, filesystem, is_remote, local_path, lookup, shown_path

WRITE_CHECK = ".mmdata-write-check"


def output(out: str | Path, storage_options: dict[str, Any] | None = None, *,
           absolute: bool = False) -> LocalOutput | RemoteOutput:
    """The output of a job at ``out``: a path or ``file://`` URL, or another fsspec URL.

    ``absolute``: make a local path absolute (Ray tasks run in other working directories).

    Example:
        >>> output("/data/ds").remote, output("file:///data/ds").path
        (False, PosixPath('/data/ds'))
    """
    if is_remote(out):
        refuse_read_only(out)
        return RemoteOutput(str(out), storage_options)
    path = local_path(out, "output folder")
    return LocalOutput(path.resolve() if absolute else path)


#: URL protocols a job can read but never write (a web server takes no PUT of ours, and has no listing)
READ_ONLY_PROTOCOLS = ("http", "https")


def refuse_read_only(out: str | Path) -> None:
    """A SourceError for an output URL of a protocol mmdata only reads (``http(s)://``), before anything
    is read or planned (QA: the job read its source, then failed its write check with advice about
    credentials and buckets).

    Example:
        >>> try:
        ...     refuse_read_only("https://host/data/ds")
        ... except SourceError as exc:
        ...     print(str(exc).split(": write")[0])
        output https://host/data/ds: http(s):// is read-only here
    """
    from mmdata.urls import protocol, redact

    proto = (protocol(out) or "").split("::")[-1]
    if proto in READ_ONLY_PROTOCOLS:
        raise SourceError(f"output {redact(str(out))}: http(s):// is read-only here: write to s3:// / gs:// / "
                          f"az:// or a local or mounted path")


def check_local_output(path: Path, rerun: bool = False) -> None:
    """A SourceError when the local output folder ``path`` (or a folder above it) is a file: a job
    cannot make a folder there. Checked before a source is read (and again when the job takes its lock).
    A path the system cannot look up (a name over 255 bytes, a symbolic link loop) is an error naming it.

    ``rerun``: a folder that cannot be written but holds a finished job's record (:func:`done_path`) passes:
    the rerun may find it up to date and only read it (a read-only published folder); a job that must write
    there is stopped when it takes the lock (this check again, without ``rerun``).

    Example:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "notes.txt"; _ = f.write_text("mine")
        >>> try:
        ...     check_local_output(f)
        ... except SourceError as exc:
        ...     print(str(exc).split(": ", 1)[1])
        a file, expected a folder (or a path where one can be created); write to another path
    """
    for p in (path, *path.parents):
        try:
            st = lookup(p, "output folder" if p == path else f"output folder {shown_path(path)}: the folder")
        except MMDataError as exc:
            raise SourceError(str(exc)) from None
        if st is not None:
            if not stat.S_ISDIR(st.st_mode):
                where = "" if p == path else f" ({p} is a file)"
                raise SourceError(f"output folder {path}: {'a file' if p == path else 'under a file'}{where}, "
                                  f"expected a folder (or a path where one can be created); write to another path")
            if not can_write_in(p):  # a read-only OUT failed with a traceback after the source was read
                if rerun and p == path and _has_record(path):
                    return
                what = "is" if p == path else f"would be made in {p}, which is"
                tail = (_why_rewrite(path) if p == path else "") or "; write to another path"
                raise SourceError(f"output folder {path} {what} not writable (permissions or a read-only file "
                                  f"system){tail}")
            return


def _why_rewrite(folder: Path) -> str:
    """For a read-only output folder that holds a dataset: why the job would write it at all (QA: a group
    member rerunning a published dataset's exact command with their own cache was told only "not
    writable", while with the owner's cache the same command was up to date)."""
    from mmdata.shards.index import dataset_marks

    try:
        if not dataset_marks(folder):
            return ""
        where = f"this machine's cache ({cache_dir()}, MMDATA_CACHE)"
    except UnsafeCacheError as exc:  # the cache named is another user's: say so, not "none can be named"
        where = f"any cache of yours (none was used: {str(exc).split(': another user', 1)[0]})"
    except (NoCacheError, OSError):
        where = "this machine's cache (MMDATA_CACHE: none can be named here)"
    if _has_record(folder):
        cause = (f"; it holds a dataset whose record in {where} no longer matches this job (the sources, options "
                 f"or the folder's files changed), so the job would rewrite it")
    else:
        cause = (f"; it holds a dataset, but {where} has no record of this job writing that folder (a rerun is "
                 f"found up to date only with the cache of the job that wrote it), so the job would rewrite it")
    return (f"{cause}. `mmdata verify {folder}` checks a published dataset without writing; to rerun the job, "
            f"point MMDATA_CACHE at the cache of whoever wrote it, or write to another path")


def _has_record(folder: Path) -> bool:
    """Whether the cache holds a finished job's record of ``folder`` (no cache: no record)."""
    try:
        return done_path(folder).is_file()
    except (NoCacheError, OSError):
        return False


def done_path(folder: Path) -> Path:
    """Where the record of the job that finished writing the local ``folder`` is kept: its identity, every
    shard's size and change stamp and the sha256 of its card, index and shards table, so that a rerun of
    the same job over unchanged sources finds the folder up to date and writes nothing
    (``mmdata.shards.writer.up_to_date``). Kept out of the folder (``$MMDATA_CACHE/jobs``): a dataset
    folder holds the dataset's files only, byte for byte the same whoever wrote it."""
    from mmdata.urls import cache_subdir

    name = hashlib.sha256(str(folder.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32] + ".json"
    try:  # private, never through a link or another user's folder (QA round 22: a shared cache)
        return cache_subdir("jobs") / name
    except OSError:  # a read-only cache: its records can still be read
        return cache_dir() / "jobs" / name


# A rerun whose change stamps differ (a fresh `git checkout` of the sources, a CI cache restored with `tar x`:
# every mtime and ctime is new) is told up to date by content, as DVC or make with hashes would: each source
# file's sha256 against the record's, each shard's sha256 against the record's (the shards table's). The
# stamps stay the fast path; the content is read only when they differ, and the record then gets the stamps
# seen now, so the next rerun is fast again.

#: files up to this size are hashed inline (one read each); larger ones on a few threads (hashlib releases the GIL)
_INLINE_HASH = 1 << 20


#: the largest source file the job record's content check reads again after the job (one the writer did not
#: read whole: over --max-file-size, a long recording cut by --segment); a larger one leaves its shard with no
#: content record, so a rerun with moved stamps writes that shard again (QA26: a 100 GB sparse file skipped for
#: its size was hashed at the end of the job, for minutes)
CONTENT_READ_LIMIT = 2 << 30


def _sha256_of(path: Any, big: list[tuple[Any, int]]) -> bytes | None:
    """sha256 of the regular file ``path`` read in one call, or None (not a regular file, cannot be read, over
    :data:`CONTENT_READ_LIMIT`);
    a file over :data:`_INLINE_HASH` is added to ``big`` instead (returns b"")."""
    try:  # O_NONBLOCK: a source swapped for a FIFO does not hang the open; it is refused below
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > CONTENT_READ_LIMIT:
            return None  # a file too large to read again for the record (one over --max-file-size: 100 GB)
        if st.st_size > _INLINE_HASH:
            big.append((path, st.st_size))
            return b""
        data = os.read(fd, st.st_size + 1)
        while len(data) > st.st_size and (more := os.read(fd, 1 << 20)):  # grew since the fstat: all of it
            data += more
        return hashlib.sha256(data).digest()
    except OSError:
        return None
    finally:
        os.close(fd)


def _big_sha256(path: Any) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").digest()
    except OSError:
        return None


def content_digest(paths: list[Any], known: list[str | None] | None = None) -> str | None:
    """sha256 over each source file's path and the sha256 of its bytes, in plan order; None when one of them
    is not a regular file that can be read (it cannot be told unchanged by content). ``known``: the sha256
    (hex) of the files' bytes as the shard's writer read them, by position (None: not read whole); only the
    other files are read here: small ones in one call each (the per-file cost is what many small sources
    are made of), large ones hashed on threads.

    Example:
        >>> import tempfile
        >>> p = Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_text("hi")
        >>> content_digest([str(p)]) == content_digest([str(p)], [hashlib.sha256(b"hi").hexdigest()])
        True
        >>> content_digest([str(p) + ".gone"]) is None
        True
    """
    big: list[tuple[Any, int]] = []
    sums: dict[Any, bytes | None] = {}
    if known is not None and len(known) == len(paths):
        for p, hexdigest in zip(paths, known):
            if hexdigest is not None and p not in sums:
                sums[p] = bytes.fromhex(hexdigest)
    for p in paths:
        if p not in sums:
            sums[p] = digest = _sha256_of(p, big)
            if digest is None:
                return None
    if big:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(4, os.cpu_count() or 1, len(big))) as pool:
            for (p, _), digest in zip(big, pool.map(_big_sha256, [p for p, _ in big])):
                if digest is None:
                    return None
                sums[p] = digest
    h = hashlib.sha256()
    for p in paths:
        h.update(os.fsencode(p) + b"\0" + sums[p])  # type: ignore[operator]
    return h.hexdigest()


def stable_content(paths: list[Any], inputs: Any, seen: str | None,
                   known: str | list[str | None] | None = None) -> str | None:
    """:func:`content_digest` of ``paths`` whose stamps digest (``inputs()``, as a resume computes it) is
    ``seen`` — the stamps the shard's writer saw (fstat) before it read them — both before any file is
    read here and after: the content then belongs to those stamps (the ctime cannot be set back, so a file
    changed meanwhile moves it). ``known``: what the writer hashed of the bytes it read (the digest itself,
    or each file's sha256: :func:`content_digest`); the files it did not read whole are read here. None when
    the stamps moved or a file cannot be read."""
    if seen is None or inputs() != seen:
        return None
    if isinstance(known, str):  # every file was hashed as it was read: nothing to read here
        return known
    digest = content_digest(paths, known)
    return digest if digest is not None and inputs() == seen else None


def tar_state(path: Path, saved: Any) -> list[Any] | None:
    """A written tar checked against its record ``[size, change stamp, mtime (ns), sha256]``: ``saved`` when
    its size and change stamp are the same; when only the stamps moved (``chmod -R a-w`` to publish it, a hard
    link, a copy or a ``tar x`` of the folder restoring it in place) and its bytes still have the recorded
    sha256, the record with the stamps seen now; else None (the tar changed or is gone)."""
    from mmdata.shards.sources import file_stamp

    if not isinstance(saved, list) or len(saved) != 4 or not isinstance(saved[3], str):
        return None
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size != saved[0]:
            return None
        if file_stamp(st) == saved[1]:
            return saved
        digest = file_sha256(path)
        after = os.stat(path)
    except OSError:
        return None
    if digest != saved[3] or file_stamp(after) != file_stamp(st):
        return None
    return [st.st_size, file_stamp(st), st.st_mtime_ns, digest]


class LocalOutput:
    """A local folder (or one mounted at the same path on every node)."""

    remote = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = str(path)
        self._cache_warned = False

    @property
    def name(self) -> str:
        return Path(os.path.abspath(self.path)).name  # "." named by its folder; a symlinked OUT by the link's name

    def lock(self, job: str) -> JobLock:
        check_local_output(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. under /proc, a read-only mount, no permission: named, not a traceback
            raise SourceError(f"output folder {self.path}: cannot create it ({exc.strerror or exc}); "
                              f"expected a folder that exists or can be created") from None
        return JobLock(self.path, job)

    def journal(self, plan_id: str, fsync: bool) -> Journal:
        journal = Journal(self.path, plan_id, fsync=fsync)
        if journal.existed:
            for tmp in self.path.rglob("*.tar.tmp-*"):  # leftovers of a killed run (the lock says no job runs)
                tmp.unlink(missing_ok=True)
        from mmdata.shards.index import CARD, INDEX, SHARDS

        # a run killed while writing its card / index / shards table left a temp file no job would remove
        remove_stale_temps(self.path, (CARD, INDEX, SHARDS))
        return journal

    def task_fields(self) -> dict[str, Any]:
        return {"out": str(self.path)}

    def has_shard(self, shard: str, sha256: str, size: int) -> bool:
        p = self.path / shard
        return p.is_file() and file_sha256(p) == sha256

    def write(self, name: str, data: bytes, fsync: bool) -> None:
        atomic_write_bytes(self.path / name, data, fsync=fsync)

    def _done_path(self) -> Path | None:
        """:func:`done_path`, or None when there is no cache (:func:`mmdata.urls.cache_dir`): the record is
        optional, so the job goes on without it, and says so once."""
        try:
            return done_path(self.path)
        except NoCacheError as exc:
            self._cache_warning(f"{exc}. Without it {self.path} is written in full on every run (a rerun cannot "
                                f"tell that it is up to date)")
            return None

    def _cache_warning(self, message: str) -> None:
        """One warning per job about the cache (a job reads, removes and writes its record: one cause)."""
        if not self._cache_warned:
            self._cache_warned = True
            warnings.warn(message, CacheWarning, stacklevel=2)

    def read_done(self) -> dict[str, Any] | None:
        """The record of the job that finished writing here (:func:`done_path`), None when there is none
        (or it cannot be read, or it is another folder's, or there is no cache)."""
        path = self._done_path()
        if path is None:
            return None
        try:
            got = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        return got if isinstance(got, dict) and got.get("folder") == str(self.path.resolve()) else None

    def write_done(self, record: dict[str, Any], fsync: bool) -> None:
        """Keep the finished job's record; a cache that cannot be written only costs the next rerun its
        shortcut — said in a warning naming the cache and the error (QA: a full or read-only cache turned
        "up to date" off without a word)."""
        path = self._done_path()
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, json.dumps({**record, "folder": str(self.path.resolve())}, sort_keys=True,
                                                separators=(",", ":")).encode(), fsync=fsync)
        except OSError as exc:
            self._cache_warning(f"cannot write the record of this job into mmdata's cache ({exc.filename or path}: "
                                f"{exc.strerror or exc}): the dataset in {self.path} is complete, but the next "
                                f"rerun cannot tell that it is up to date and writes it all again; free space in "
                                f"the cache or point MMDATA_CACHE at a writable folder")

    def refresh_done(self, record: dict[str, Any]) -> None:
        """Keep the record of a rerun found up to date by content with the stamps seen now (the next rerun
        checks stamps only). Nothing is said when the cache cannot be written: the rerun was up to date, the
        next one reads the content again."""
        path = self._done_path()
        if path is None:
            return
        try:
            atomic_write_bytes(path, json.dumps({**record, "folder": str(self.path.resolve())}, sort_keys=True,
                                                separators=(",", ":")).encode(), fsync=False)
        except OSError:
            pass

    def forget_done(self) -> None:
        """A job is about to write here: the finished job's record goes first (it no longer describes the folder)."""
        path = self._done_path()
        if path is None:
            return
        try:
            path.unlink(missing_ok=True)
        except OSError:  # a record that stays is checked against the folder's files: it cannot pass for this job
            pass

    def remove_card(self) -> bool:
        """Delete the dataset card (if any) before a job writes over the dataset here: a folder with a
        card is complete, and the card is written again last. True when there was one."""
        from mmdata.shards.index import CARD

        try:
            (self.path / CARD).unlink()
        except FileNotFoundError:
            return False
        return True

    def listed_shards(self) -> set[str]:
        """The shard files the ``shards.parquet`` of an earlier job in this folder lists (none: {})."""
        return _listed_shards(self.path, None)

    def other_plan_shards(self, plan_id: str) -> list[bytes]:
        """Done markers of an unfinished job of another plan (see :func:`other_plan_records`)."""
        return other_plan_records(self.path, plan_id)

    def remove_shards(self, names: list[str]) -> list[str]:
        """Delete the shard files ``names`` that are there (and a series folder left empty); returns
        those deleted. Only names an earlier job of ours wrote are passed (:func:`is_shard_name`)."""
        removed = []
        for name in names:
            p = self.path / name
            if p.is_file() and not p.is_symlink():
                p.unlink()
                removed.append(name)
                if p.parent != self.path:
                    try:
                        p.parent.rmdir()  # only when empty
                    except OSError:
                        pass
        return removed


class RemoteOutput:
    """A folder at an fsspec URL of an object store."""

    remote = True

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, root = filesystem(self.url, self.storage_options)
        self.root = root.rstrip("/")
        self._sizes: dict[str, int] | None = None

    @property
    def name(self) -> str:
        return self.root.rsplit("/", 1)[-1]

    def lock(self, job: str) -> JobLock:
        """This machine's lock on the URL, after checking that OUT can be written at all (a clear
        error naming the URL before anything is planned or uploaded)."""
        self.write(WRITE_CHECK, b"", False)
        call(self.url, "delete its write check", self.fs.rm_file, f"{self.root}/{WRITE_CHECK}")
        from mmdata.urls import cache_subdir

        # private, never through a link or another user's folder (QA round 22: a shared cache)
        folder = cache_subdir("locks", hashlib.sha256(self.url.encode()).hexdigest()[:32])
        return JobLock(folder, f"{job} into {self.url}")

    def journal(self, plan_id: str, fsync: bool) -> ObjectJournal:
        sweep_staging(self.url)  # under the lock: what a killed run of a job into this URL left on this machine
        return ObjectJournal(self, plan_id)

    def task_fields(self) -> dict[str, Any]:
        return {"out": None, "upload": self.url, "storage_options": self.storage_options}

    def has_shard(self, shard: str, sha256: str, size: int) -> bool:
        if self._sizes is None:  # one listing for the whole resume check
            self.fs.invalidate_cache(self.root)
            found = call(self.url, "list it", self.fs.find, self.root, detail=True)
            self._sizes = {p[len(self.root) + 1:]: int(info.get("size") or 0) for p, info in found.items()}
        return self._sizes.get(shard) == size

    def write(self, name: str, data: bytes, fsync: bool) -> None:
        call(self.url, f"write {name} there", self.fs.pipe_file, f"{self.root}/{name}", data)

    def remove_card(self) -> bool:
        """Delete the dataset card object (if any) before a job writes over the dataset here (see
        :meth:`LocalOutput.remove_card`). True when there was one."""
        from mmdata.shards.index import CARD

        path = f"{self.root}/{CARD}"
        self.fs.invalidate_cache(self.root)
        if not call(self.url, f"look for {CARD} there", self.fs.isfile, path):
            return False
        call(self.url, f"delete {CARD} there", self.fs.rm_file, path)
        return True

    def listed_shards(self) -> set[str]:
        """The shard objects the ``shards.parquet`` of an earlier job at this URL lists (none: {})."""
        return _listed_shards(self.url, self.storage_options)

    def other_plan_shards(self, plan_id: str) -> list[bytes]:
        """Done markers of an unfinished job of another plan (the objects :class:`ObjectJournal`
        deletes when the new plan starts)."""
        prefix = f"{self.root}/{NAME}"
        mine = f"{prefix}/{quote(plan_id, safe='')}/"
        self.fs.invalidate_cache(prefix)
        names = sorted(p for p in call(self.url, "read its resume journal", self.fs.find, prefix)
                       if not p.startswith(mine) and p.endswith(".mmj"))
        datas = call(self.url, "read its resume journal", self.fs.cat, names) if names else {}
        return [r for p in names for r in _records(datas[p])[0][:1]]

    def remove_shards(self, names: list[str]) -> list[str]:
        """Delete the shard objects ``names`` that are there; returns those deleted."""
        self.fs.invalidate_cache(self.root)
        there = {p[len(self.root) + 1:] for p in call(self.url, "list it", self.fs.find, self.root)}
        removed = [n for n in names if n in there]
        if removed:
            call(self.url, "delete shards of an earlier job", self.fs.rm, [f"{self.root}/{n}" for n in removed])
        self._sizes = None
        return removed


STARTED = "started"  # the object under OUT/.mmdata-journal/<plan id>/ that marks a job's prefix at its start


class ObjectJournal:
    """The resume journal of a job writing to an object store: one object per record under
    ``OUT/.mmdata-journal/<plan id>/`` (an object store cannot append). The interface of
    :class:`~mmdata.shards.journal.Journal`."""

    def __init__(self, out: RemoteOutput, plan_id: str) -> None:
        self.out = out
        self.prefix = f"{out.root}/{NAME}"
        self.mine = f"{self.prefix}/{quote(plan_id, safe='')}/"
        out.fs.invalidate_cache(self.prefix)
        listing = call(out.url, "read its resume journal", out.fs.find, self.prefix)
        self.existed = bool(listing)
        stale = [p for p in listing if not p.startswith(self.mine)]
        if stale:  # another plan's journal: start over, as a local journal does
            call(out.url, "delete an old resume journal", out.fs.rm, stale)
        names = sorted(p for p in listing if p.startswith(self.mine) and p.endswith(".mmj"))
        datas = call(out.url, "read its resume journal", out.fs.cat, names) if names else {}
        self.done = [r for p in names for r in _records(datas[p])[0][:1]]
        self._next = int(names[-1][len(self.mine):-4]) + 1 if names else 0
        if not any(p.startswith(self.mine) for p in listing):
            # the prefix is an mmdata job's before its first upload, as a local journal is made at the
            # start: a job killed between a shard's upload and its record resumes rather than being
            # refused as a foreign folder (QA round 22). Not a record (.mmj): nothing is taken as done.
            out.write(f"{NAME}/{self.mine[len(self.prefix) + 1:]}{STARTED}", plan_id.encode(), False)

    def take_done(self) -> list[bytes]:
        """:attr:`done`, handed over: the journal keeps no copy."""
        done, self.done = self.done, []
        return done

    def append(self, payload: bytes) -> None:
        """Record one payload (one object, visible whole once this returns)."""
        self.out.write(f"{NAME}/{self.mine[len(self.prefix) + 1:]}{self._next:08d}.mmj", record(payload), False)
        self._next += 1

    def close(self) -> None:
        pass

    def remove(self) -> None:
        """The job is complete: delete the journal."""
        self.out.fs.invalidate_cache(self.prefix)
        left = call(self.out.url, "read its resume journal", self.out.fs.find, self.prefix)
        if left:
            call(self.out.url, "delete its resume journal", self.out.fs.rm, left)


_SHARD_NAME = re.compile(r"(?:[^/\\]+/)?[^/\\]+-\d{6}\.tar")


def is_shard_name(name: object) -> bool:
    """Whether ``name`` is a shard file name a job writes: ``<split>-NNNNNN.tar``, or
    ``<field>/<split>-NNNNNN.tar`` for the columns layout (never ``..``, an absolute path or a URL).

    Example:
        >>> is_shard_name("test-000000.tar"), is_shard_name("image/val-000012.tar"), is_shard_name("../x-000001.tar")
        (True, True, False)
    """
    return (isinstance(name, str) and _SHARD_NAME.fullmatch(name) is not None
            and not any(part in (".", "..") for part in name.split("/")))


def _listed_shards(path: str | Path, storage_options: dict[str, Any] | None) -> set[str]:
    """Shard names in the ``shards.parquet`` of the dataset folder ``path``: only names of our naming
    scheme; {} when there is none (or it cannot be read: then nothing is known to be ours)."""
    import pyarrow as pa

    from mmdata.shards import index as idx

    try:
        names = idx.load_shards_table(path, storage_options).column("shard").to_pylist()
    except (MMDataError, OSError, ValueError, KeyError, pa.ArrowException):
        return set()
    return {n for n in names if is_shard_name(n)}


def _staging_root(url: str) -> Path | None:
    """Where the tasks of a job into the output URL ``url`` on this machine write their shards before the
    upload: ``$MMDATA_CACHE/staging/<hash of the URL>`` (None without a cache)."""
    try:
        return cache_dir() / "staging" / hashlib.sha256(url.rstrip("/").encode("utf-8", "surrogateescape")).hexdigest()[:32]
    except NoCacheError:
        return None


def staging_dir(url: str) -> Path:
    """A new folder for one task's shards before their upload to the output URL ``url``: under
    :func:`_staging_root`, named by this process's id, so that the next job into ``url`` on this machine
    finds and removes what a killed run left (:func:`sweep_staging`; QA: a SIGKILLed ``shard`` into
    ``s3://`` left ``/tmp/mmdata-shard-XXXX/train-000069.tar`` that no run removed). Without a cache (or
    one that cannot be written): a ``mmdata-shard-`` folder in the system's temp folder.

    Example:
        >>> import os, tempfile
        >>> os.environ["MMDATA_CACHE"] = tempfile.mkdtemp()
        >>> d = staging_dir("s3://bucket/ds"); d.parent.parent.name, d.name.startswith(f"{os.getpid()}-")
        ('staging', True)
        >>> del os.environ["MMDATA_CACHE"]
    """
    import tempfile

    from mmdata.urls import cache_subdir

    root = _staging_root(url)
    if root is not None:
        try:  # private, never through a link another user planted (QA round 22: a shared cache)
            root = cache_subdir(root.parent.name, root.name)
            return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))
        except (OSError, NoCacheError):  # an unwritable or unsafe cache: a private temp folder instead
            pass
    return Path(tempfile.mkdtemp(prefix="mmdata-shard-"))


def sweep_staging(url: str) -> list[str]:
    """Remove the staging folders (:func:`staging_dir`) of jobs into ``url`` whose process is gone: called
    by the job holding this machine's lock on ``url``, so none of them is a running job's. Only this user's
    folders, never a symbolic link; returns the names removed."""
    from mmdata.urls import check_private

    root = _staging_root(url)
    removed: list[str] = []
    try:
        if root is not None:
            check_private(root, "staging folder")  # a link planted there would sweep another folder of yours
        entries = list(os.scandir(root)) if root is not None else []
    except OSError:
        return removed
    for entry in entries:
        pid_text = entry.name.split("-", 1)[0]
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid == os.getpid() or _pid_alive(pid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.name)
    return removed


def upload_shards(local_root: Path, shards: list[str], url: str, storage_options: dict[str, Any] | None) -> None:
    """Upload the shards a task wrote under ``local_root`` to the folder ``url``, then remove them."""
    from mmdata.urls import put_file

    try:
        for shard in shards:
            put_file(local_root / shard, f"{url}/{shard}", storage_options)
    finally:
        shutil.rmtree(local_root, ignore_errors=True)
