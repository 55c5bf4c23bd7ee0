"""``mmdata.open_dataset``: aligned multimodal samples from shards, exactly once per epoch.

Splitting. Readers are numbered ``rank * num_workers + worker_id`` over ``world_size * num_workers``
(torch.distributed rank/world size, DataLoader worker info), resolved when iteration starts — in the
worker — so a dataset built before ``init_process_group`` still splits by rank. With at least as many
shards as readers, reader *r* reads shards ``order[r::n]``. With fewer shards than readers, every
reader scans every shard and keeps the samples whose running index in the epoch's shard order
satisfies ``index % n == r`` — still exactly once, at the cost of reading bytes that are discarded
(decoding is skipped for them). Readers may get unequal sample counts; a DDP training loop that needs
equal step counts should pad or drop (see mmdata.train).

Order. Shard order and the bounded shuffle buffer are drawn from ``mmdata.rng.derive(seed, epoch, ...)``:
the stream is a pure function of (seed, epoch) for a fixed reader count.

Epochs. ``set_epoch(e)`` selects an epoch. Without it, every new iteration advances the epoch by one
(like litdata), also inside DataLoader workers — persistent or re-created each epoch: workers agree on
the epoch through a few bytes of shared memory. An explicit ``set_epoch`` / ``load_state_dict``
always wins for the next iteration. Each sample carries ``meta["epoch"]``.

Resume. Every yielded sample carries ``meta["reader"]`` and ``meta["position"]`` (its index in that
reader's stream this epoch). ``state_dict()`` holds ``positions`` (next position per reader);
``load_state_dict()`` makes the next iteration skip, per reader, what was already yielded — without
decoding it, and without counting again the losses the saved run counted before its checkpoint —
and continue exactly.

Bad input. With ``on_error="raise"`` anything wrong with a shard or sample raises
:class:`~mmdata.errors.ShardError` naming the shard and key; with ``"skip"`` / ``"warn"`` the sample
is dropped and counted in ``dataset.skipped`` (reason -> samples lost) and ``dataset.errors`` (first
100 (shard, key, message)). Counts are per sample lost: damage that cuts a shard short is counted for
every sample of that shard the index lists and the reader did not deliver; for bare shards (no index)
what follows a cut is unknowable and such a region counts once as ``"unreadable shard region"``. The
rules per kind of damage are in docs/bad-input-read.md. A local shard that is not a regular file (a
FIFO would block the open forever) or, in a dataset folder, a link leaving the folder is never opened:
it counts as a shard that cannot be opened. The counts are those of the iteration in
progress or the last one (they start empty at each iteration: one count per damaged sample per
epoch). Inside DataLoader workers they live in the worker, so each yielded sample also carries the
reader's counts so far in ``meta["skipped"]`` (when non-empty), and a worker posts them and its
errors to a :class:`SkipBoard` (a loss after its last sample has no sample to travel with): the one
:func:`mmdata.loader` gives it, which the loader sums identically for any number of workers, else the
dataset's own, so that under a plain ``DataLoader(ds, num_workers=N)`` the main process's ``ds.skipped``
/ ``ds.errors`` are the workers' (of their newest iteration; exact once it has ended). ``errors`` are in
the order of the reader's stream (the position of the item whose reading met the loss), and a
``state_dict`` carries those up to its position, so a resumed pass lists the uninterrupted epoch's.

Subsets. ``split`` may be a list of splits, read as one (their shards in the order given); ``keys=``
selects samples of the split by key (from a filter of ``index.parquet``). Both are planned from the
index: unselected samples are passed over in the raw stream (never decoded, not even copied out of a
mapped shard), a shard holding none is not opened, and positions, ``samples_per_reader`` and the
stride over samples count the selected samples only, so resume and ``len(loader)`` stay exact.

Arguments are checked against the dataset: ``modalities`` naming neither a stored field nor a
standard modality raises; a shard listed twice is read once, with a warning.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import gzip
import json
import logging
import mmap
import multiprocessing.util
import os
import re
import secrets
import shutil
import stat
import struct
import tempfile
import threading
import time
import warnings
import weakref
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not a POSIX system: only this process's threads are excluded (see _clock_lock)
    fcntl = None  # type: ignore[assignment]

import torch
from torch.utils.data import IterableDataset, get_worker_info

from mmdata.codecs import (
    AUDIO_EXTS,
    IMAGE_EXTS,
    LABEL_EXTS,
    PICKLE_EXTS,
    TEXT_EXTS,
    AudioFrames,
    DecodeError,
    OversizeMediaError,
    StandardFieldError,
    UnsafeMemberError,
    audio_frames,
    decode_member,
    field_of,
    frames_wanted,
    member_type,
    reset_large_image_warning,
)
from mmdata.checks import check_sources_exist, expect_bool, expect_int, expect_names, expect_size, expect_state, plural
from mmdata.errors import ShardError
from mmdata.rng import derive
from mmdata.shards import index as idx
from mmdata.shards import tario
from mmdata.shards.tario import (
    DEFAULT_MAX_MEMBER_BYTES,
    MEMBER_REASONS,
    NO_MEMORY,
    TAIL_LOST,
    TOO_LARGE,
    _local_path,
    expand_sources,
    group_samples,
    indexed_members,
    iter_members,
)
from mmdata.types import MASKED_MODALITIES, Sample, collate, new_sample, reset_shape_warnings, with_masks
from mmdata.urls import is_folder_url, is_remote, local_path, protocol, redact, redact_text, unless_file_url

log = logging.getLogger("mmdata.reader")
ON_ERROR = ("raise", "skip", "warn")
_MAX_ERRORS = 100
#: DataLoader workers whose counts a dataset's own board holds (a plain DataLoader; mmdata.loader has one per worker)
WORKER_SLOTS = 32
_REGION = "unreadable shard region"
#: reason of each listed sample a shard cut short, unreadable or missing did not deliver
_NOT_DELIVERED = "truncated or corrupt shard"
_UNLISTED = "sample not in the index"
_MISSING = "listed sample missing from its shard"  # a well-formed shard without a sample the index lists there
#: reason of each sample whose index row names no shard the card lists for its split (null, '', another's)
_NO_SHARD = "sample in no listed shard"
#: problems after which the parser yields nothing more from a shard (cut, unreadable, missing)
_SERIES_CUT = frozenset({"unreadable shard", "truncated shard", "corrupt compressed stream", TAIL_LOST})
#: a member whose size is not the index's (an old copy of a series or shard put back, another job's)
_SIZE = "member size mismatch"
#: (key, {ext: bytes}, problem): problem is (reason, message) or, from a column series, (reason, message,
#: the series shard as the dataset folder names it: ``depth/train-000000.tar``)
RawSample = tuple[str | None, dict[str, bytes], tuple[str, ...] | None]
#: exceptions (by class name, through the MRO: botocore and aiohttp are optional) that say the store could not
#: be reached: a network, endpoint or timeout failure is not bad data
_OUTAGE_NAMES = frozenset({"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
                           "ProxyConnectionError", "ClientConnectorError", "ClientConnectionError", "ClientOSError",
                           "ServerDisconnectedError", "ServerTimeoutError", "NoCredentialsError"})
#: HTTP statuses of a store refusing or failing a request (permission, throttling, its own failure), not of data
_OUTAGE_STATUS = frozenset({401, 403, 407, 408, 429})


def _http_status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)  # aiohttp's ClientResponseError (fsspec's http)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)  # botocore's ClientError (s3fs keeps it as the cause)
    if isinstance(response, Mapping):
        code = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return code if isinstance(code, int) else None
    return None


def _outage(exc: BaseException | None) -> BaseException | None:
    """The failure in ``exc`` or what it wraps (cause, context) that says the store could not be reached —
    a connection refused or cut, a timeout, DNS, a permission refused, HTTP 5xx, an ``OSError`` with an errno
    other than a missing file — or None: bad data, or a shard that is gone (``FileNotFoundError`` / 404),
    which skip mode counts as documented."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, FileNotFoundError):
            # fsspec's http reports a failed connection as FileNotFoundError from it: the cause tells
            exc = exc.__cause__
            continue
        status = _http_status(exc)
        if status == 404:
            return None
        if isinstance(exc, (ConnectionError, TimeoutError, PermissionError)) \
                or {t.__name__ for t in type(exc).__mro__} & _OUTAGE_NAMES \
                or (status is not None and (status >= 500 or status in _OUTAGE_STATUS)) \
                or (isinstance(exc, OSError) and exc.errno is not None and exc.errno != errno.ENOENT):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _outage_error(url: str, exc: BaseException) -> ShardError:
    return ShardError(
        f"shard {url}: the store could not be reached ({type(exc).__name__}: {str(exc)[:300]}); skip mode skips bad "
        f"data, not outages. Check the network, the endpoint and the credentials, then read again (resume from "
        f"the last state_dict() to go on where the loop stopped)")


class _Watched:
    """A remote shard's file object that keeps the first read failure that is an outage (:func:`_outage`):
    the tar parser reports any failed read as damage in-band, and only the failure itself says which it was."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.outage: BaseException | None = None

    def read(self, n: int = -1) -> bytes:
        try:
            return self.f.read(n)
        except BaseException as exc:
            if self.outage is None:
                self.outage = _outage(exc)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


def iter_samples(url: str, *, max_member_bytes: int, want: Callable[[str], bool] | None = None,
                   storage_options: dict[str, Any] | None = None) -> Iterator[RawSample]:
    """:func:`mmdata.shards.tario.iter_samples`, except that a store that cannot be reached — when the shard
    is opened or while it is read — raises ShardError (:func:`_outage_error`) in every ``on_error`` mode
    instead of yielding damage (QA: a store stopped mid-epoch was counted as 27 truncated or corrupt shards
    under skip, and the loop ended with exit status 0). A shard that is gone stays a problem to report."""
    try:
        f = tario.open_shard(url, storage_options)  # looked up when called, as tario.iter_samples does
    except ShardError as exc:
        outage = _outage(exc)
        if outage is not None:
            raise _outage_error(url, outage) from None
        yield None, {}, ("unreadable shard", str(exc))
        return
    watched = None
    inner = None
    if _local_path(url) is None:  # a remote file: watch its reads (a gzip one under its decompressor)
        if isinstance(f, gzip.GzipFile):
            inner = f.fileobj
            watched = _Watched(inner)
            f = gzip.GzipFile(fileobj=watched)  # type: ignore[arg-type]
        else:
            f = watched = _Watched(f)  # type: ignore[assignment]
    try:
        members = iter_members(f, url, max_member_bytes=max_member_bytes, want=want)  # type: ignore[arg-type]
        for item in group_samples(members, url):
            if item[2] is not None and watched is not None and watched.outage is not None:
                raise _outage_error(url, watched.outage) from None
            yield item
    except ShardError:
        raise
    except Exception as exc:  # noqa: BLE001 — a store's own error type out of a read (botocore, aiohttp)
        outage = _outage(exc)
        if outage is None:
            raise
        raise _outage_error(url, outage) from None
    finally:
        for opened in (f, inner):
            if opened is not None:
                with contextlib.suppress(Exception):
                    opened.close()


_END = object()


def dist_rank_world() -> tuple[int, int] | None:
    """(rank, world size) from an initialised process group, else torchrun's RANK / WORLD_SIZE env."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return None


def reader_id(dist: tuple[int, int] | None = None, rotation: int = 0) -> tuple[int, int]:
    """(reader id, number of readers) of the calling process/worker.

    Spawned DataLoader workers do not see the parent's process group, so the rank the dataset
    recorded when it was sent to the worker (``dist``) is used there. ``rotation`` shifts which
    worker plays which reader: a resumed loader uses it so DataLoader's in-order round robin
    continues with the right reader.
    """
    rank, world = dist_rank_world() or dist or (0, 1)
    info = get_worker_info()
    wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * nw + (wid + rotation) % nw, world * nw


_CLOCKS: weakref.WeakSet[EpochClock] = weakref.WeakSet()  # this process's clocks (see _resolve_before_fork)
_BOARDS: weakref.WeakSet[SkipBoard] = weakref.WeakSet()  # and its loss boards (the same rule, see SkipBoard)
# the decode generators not yet closed: a script that keeps `it = iter(loader)` after `next(it)` leaves one
# open to interpreter exit, where its `finally` (the decode pool's shutdown) would run after the modules it
# uses are torn down and print "Exception ignored in ..." — so they are closed first, at exit
_OPEN_DECODES: weakref.WeakSet[Generator[Any, None, None]] = weakref.WeakSet()


@atexit.register
def _close_open_decodes() -> None:
    for gen in list(_OPEN_DECODES):
        with contextlib.suppress(ValueError):  # running in another thread at exit: it closes itself
            gen.close()


def _resolve_before_fork() -> None:
    """A process about to fork (DataLoader workers) settles which memory its clocks use first, so the
    children share its own (a rank's copy of the parent's clock not yet used there, see EpochClock)."""
    pid = os.getpid()
    for clock in list(_CLOCKS):
        if clock._owner != pid:
            clock._resolve()
    for board in list(_BOARDS):
        if board._owner != pid:
            board._resolve()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_resolve_before_fork)


_CLOCK_LOCK = threading.Lock()  # begin() of this process's threads; _clock_lock adds the other processes'


def _new_clock_lock() -> None:
    """A forked child starts with a free lock (a parent thread may have held it while another forked)."""
    global _CLOCK_LOCK
    _CLOCK_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_clock_lock)


_FAMILY_LOCK: dict[int, str | None] = {}  # pid -> the lock file of the clocks that process owns
_ALIVE: dict[int, int] = {}  # pid -> descriptor of the "alive" file of its clock folder, locked while it lives
#: a clock folder whose owner holds no lock on it is removed by the next process making one once it is this old
#: (seconds); one of an mmdata from before the "alive" file (its owner's liveness unknown), once a day old
STALE_CLOCK_S = 60
STALE_LEGACY_CLOCK_S = 24 * 3600


def _held(path: str) -> bool | None:
    """Whether some process holds a record lock on the file ``path`` (tried without blocking, as
    :class:`_clock_lock` locks it); None when there is no such file. Unknown counts as held."""
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError:
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # releases the lock just taken
    return False


def _sweep_stale_clocks(tmp: str, keep: str) -> None:
    """Remove this user's clock folders in ``tmp`` that no process uses any more (QA: a process killed by
    SIGKILL, or by a SIGTERM a script does not handle, left its folder behind, and nothing removed them): a
    real folder (not a link) owned by this uid, whose owner's "alive" lock is free (the owner holds it while it
    lives; the system drops it when the process dies, however) and whose clock lock is free too, older than
    :data:`STALE_CLOCK_S`. Removed without following links; other users' folders are never touched."""
    if fcntl is None or not hasattr(os, "getuid"):
        return
    uid, now = os.getuid(), time.time()
    try:
        names = [n for n in os.listdir(tmp) if n.startswith("mmdata-clock-")]
    except OSError:
        return
    for name in names:
        folder = os.path.join(tmp, name)
        if folder == keep:
            continue
        try:
            st = os.lstat(folder)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:
            continue
        alive = _held(os.path.join(folder, "alive"))
        age = now - st.st_mtime
        if alive or age < (STALE_CLOCK_S if alive is False else STALE_LEGACY_CLOCK_S):
            continue
        if _held(os.path.join(folder, "lock")):
            continue
        # rmtree works through descriptors here (rmtree.avoids_symlink_attacks): a link in it is removed, not followed
        shutil.rmtree(folder, ignore_errors=True)


def _hold_alive(pid: int, folder: str) -> None:
    """Lock the folder's "alive" file for this process's lifetime (see :func:`_sweep_stale_clocks`)."""
    if fcntl is None:
        return
    try:
        fd = os.open(os.path.join(folder, "alive"), os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError:
        return
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return
    _ALIVE[pid] = fd


def _family_lock_path() -> str | None:
    """The lock file shared by this process and the DataLoader workers it starts (they get it with the
    clock): in a private folder (``mkdtemp``: mode 0700, a random name) removed when the process exits, or by
    a later process once it is left behind (:func:`_sweep_stale_clocks`). Not one file per user in the
    temporary folder (QA: any process holding that one stalled every reader of the user, and a link planted
    at its predictable name was followed). None where none can be made."""
    pid = os.getpid()
    if pid not in _FAMILY_LOCK:
        try:
            folder = tempfile.mkdtemp(prefix="mmdata-clock-")
        except OSError:  # a read-only or missing temporary folder: threads only
            _FAMILY_LOCK[pid] = None
        else:
            _FAMILY_LOCK[pid] = os.path.join(folder, "lock")
            _hold_alive(pid, folder)
            _sweep_stale_clocks(os.path.dirname(folder), folder)
            atexit.register(_remove_family_lock, pid, folder)
            # a multiprocessing child (a pool's worker: `ablate -j`, `shard -j`) ends in os._exit, past atexit;
            # its finalizers run (and only in this process: Finalize checks the pid)
            multiprocessing.util.Finalize(None, _remove_family_lock, args=(pid, folder), exitpriority=0)
    return _FAMILY_LOCK[pid]


def _remove_family_lock(pid: int, folder: str) -> None:
    if os.getpid() == pid:  # not a forked child's exit
        shutil.rmtree(folder, ignore_errors=True)
        fd = _ALIVE.pop(pid, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


class _clock_lock:
    """Held while a clock's table is read and written: this process's threads (a lock) and the processes
    sharing the clock — the owner and its DataLoader workers — through a POSIX record lock on the clock's
    family lock file (:func:`_family_lock_path`; held for microseconds and released by the system should its
    process die). Workers of two overlapping iterations racing to start the next generation otherwise both
    took it, or one overwrote the other's entry. Without such a file (a read-only temporary folder, a system
    without ``fcntl``) only the threads are excluded."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def __enter__(self) -> None:
        self._lock = _CLOCK_LOCK
        self._lock.acquire()
        self._fd: int | None = None
        if fcntl is None or self.path is None:
            return
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
        except OSError:
            if self._fd is not None:
                os.close(self._fd)
            self._fd = None

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                os.close(self._fd)  # closing releases the record lock
        finally:
            self._lock.release()


class EpochClock:
    """The epoch of each new iteration: explicit (``set``) or advanced by one per iteration.

    Int64 words in memory shared with DataLoader workers — ``[newest iteration, explicit epoch]`` then a
    table of the :attr:`ENTRIES` newest iterations — in an anonymous shared mapping (inherited by forked
    workers, no file descriptor held), switched to a torch shared-memory tensor the first time the clock is
    pickled for spawned workers. An iteration's word packs ``(iteration key << 32) | generation``; all
    workers of one DataLoader iteration share a key (the loader's base seed and how often this copy was
    iterated): the first to start takes the next generation and enters it in the table, the others find
    their key there and join it. Iterations may overlap — one DataLoader (or dataset) iterated from two
    threads at once — so each worker of a late iteration finds its own iteration's generation, not the
    newest one; the table is read and written under a lock (:class:`_clock_lock`).

    A DataLoader made anew each epoch with an identically seeded ``generator`` gives its workers the
    same base seed, and fresh workers start their copy's count at the same value: the key repeats.
    So each table entry also marks which worker ids (the first :attr:`SLOTS`, and the owning process
    reading itself) joined it: a worker whose id already joined the entry of its key belongs to a new
    iteration and starts the next generation (its siblings then find the new entry and join it).

    The memory is shared only between a process and its own DataLoader workers. A copy that reaches
    another process which is not a DataLoader worker — the ranks of ``torch.multiprocessing.spawn`` given
    a dataset built before ``init_process_group``, processes forked from the owner — takes its own memory
    (with the values it had) the first time it is used there, or before that process forks: otherwise
    one rank's workers took another rank's iteration for a new one and bumped the epoch under them. A
    copy that is not pickled for a process being started (``copy.deepcopy``, a pickle round trip, Ray) takes
    its own at once, and leaves the original's as it is (its forked workers share that one).

    A last word carries the resume generation (:meth:`publish`): ``load_state_dict`` / ``set_epoch`` in the
    owning process bump it and leave the state to resume in a JSON file of the clock's private folder (the
    family lock's), where persistent DataLoader workers — started before the call, with an older copy of
    the dataset — find it when their next iteration starts (:meth:`ResumableEpochs._catch_up`). The file
    is named by the memory's own token: a copy with memory of its own publishes apart (QA: two copies of
    one dataset shared the file, and one's workers resumed from the other's state).

    Example:
        >>> c = EpochClock(3)
        >>> c.begin()[0], c.begin()[0], c.begin()[0]
        (3, 4, 5)
        >>> c.set(0); c.begin()[0]
        0
    """

    #: worker ids marked per iteration; later ones rely on the key alone
    SLOTS = 256
    #: iterations remembered (overlapping ones: more than this many open at once share generations)
    ENTRIES = 8
    #: words of a table entry: the iteration's word, then SLOTS + 1 bits (the last: the owning process)
    _ENTRY = 1 + (SLOTS + 1 + 31) // 32
    #: the word of the resume generation: ``(generation << 1) | (1 if a state was published else 0)``
    _RESUME = 2 + ENTRIES * _ENTRY
    _WORDS = _RESUME + 1

    def __init__(self, epoch: int = 0) -> None:
        self._map: mmap.mmap | None = None
        self._tensor: torch.Tensor | None = None
        self.local = 0
        self._own([0, int(epoch)] + [0] * (self._WORDS - 2))
        _CLOCKS.add(self)

    def _own(self, values: list[int]) -> None:
        """Memory of this process (shared with the DataLoader workers it starts) holding ``values``, and a
        name of its own for the published state: a copy that takes its own memory is loaded on its own
        (QA: a deep copy's ``load_state_dict`` wrote the original's file, whose workers resumed from it)."""
        self._map = mmap.mmap(-1, 8 * self._WORDS)  # MAP_SHARED | MAP_ANONYMOUS
        self._tensor = None
        struct.pack_into(f"<{self._WORDS}q", self._map, 0, *values)
        self._owner = os.getpid()
        self._lock_path = _family_lock_path()
        self._token = secrets.token_hex(8)  # the name of this clock's published state (see publish)

    def _resolve(self) -> None:
        """First use of a copy in another process than the one it belongs to: a DataLoader worker (forked,
        spawned or from a forkserver) shares the memory it came with; any other process takes its own."""
        if get_worker_info() is None:
            self._own(self._values())
        else:
            self._owner = os.getpid()

    def _values(self) -> list[int]:
        if self._tensor is not None:
            return [int(v) for v in self._tensor.tolist()]
        return list(struct.unpack_from(f"<{self._WORDS}q", self._map, 0))  # type: ignore[arg-type]

    def _get(self, i: int) -> int:
        if self._owner != os.getpid():
            self._resolve()
        if self._tensor is not None:
            return int(self._tensor[i])
        return int(struct.unpack_from("<q", self._map, 8 * i)[0])  # type: ignore[arg-type]

    def _put(self, i: int, value: int) -> None:
        if self._owner != os.getpid():
            self._resolve()
        if self._tensor is not None:
            self._tensor[i] = value
        else:
            struct.pack_into("<q", self._map, 8 * i, value)  # type: ignore[arg-type]

    def __copy__(self) -> EpochClock:
        """A shallow copy: another view of this clock, sharing its memory and published state (a deep copy
        or a pickle round trip is a clock of its own, see __getstate__)."""
        if self._owner != os.getpid():
            self._resolve()  # a copy not yet used in this process: both views share what it takes here
        new = object.__new__(type(self))
        new.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_cleanup_pid"})
        _CLOCKS.add(new)
        return new

    def __getstate__(self) -> dict[str, Any]:
        from multiprocessing.context import get_spawning_popen

        if self._owner != os.getpid():
            self._resolve()  # a rank handing its copy to its spawned workers: they share the rank's own
        if get_spawning_popen() is None:
            # a copy (copy.deepcopy, pickle, Ray), not a process being started: the values, in memory of its own
            # where it lands (see __setstate__). This clock keeps its memory: forked workers share that one
            return {"_values": self._values(), "local": self.local}
        if self._tensor is None:  # pickled for a spawned worker: from now on share through torch
            self._tensor = torch.tensor(self._values(), dtype=torch.int64).share_memory_()
            self._map = None
        return {"_tensor": self._tensor, "local": self.local, "_map": None, "_owner": self._owner,
                "_lock_path": self._lock_path, "_token": self._token}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        values = state.pop("_values", None)
        self.__dict__.update(state)
        if values is not None:
            # a copy (see __getstate__): another dataset, iterated and loaded apart from the original — its own
            # memory and published state, from the values it had. A DataLoader worker's copy shares instead:
            # pickled while the worker starts (spawn, forkserver), or not pickled at all (fork)
            self._map = self._tensor = None
            self._own([int(v) for v in values])
        _CLOCKS.add(self)

    @property
    def explicit(self) -> int:
        return self._get(1)

    def set(self, epoch: int) -> None:
        with _clock_lock(self._lock_path):
            self._put(1, int(epoch))
            self._put(0, 0)
            if self._tensor is not None:  # the table; the resume word stays (see publish)
                self._tensor[2:self._RESUME] = 0
            else:
                self._map[16:8 * self._RESUME] = bytes(8 * (self._RESUME - 2))  # type: ignore[index]

    def current(self) -> int:
        """The epoch of the newest iteration started (or of the next one when none has started)."""
        return self.explicit + (self._get(0) & 0xFFFFFFFF)

    def newest(self) -> int:
        """The newest iteration's word (0 when none started since ``set``): it changes when any iteration
        sharing this clock starts, in this process or in its DataLoader workers."""
        return self._get(0)

    def begin(self) -> tuple[int, int]:
        """Start an iteration: returns (epoch, generation); generation 0 is the first since ``set``."""
        self.local += 1
        info = get_worker_info()
        ident = f"main:{self.local}" if info is None else f"{info.seed - info.id}:{self.local}"
        key = (zlib.crc32(ident.encode()) & 0x7FFFFFFF) | 1
        who = self.SLOTS if info is None else info.id  # the bit marking this reader in its iteration's entry
        if self._owner != os.getpid():
            self._resolve()
        with _clock_lock(self._lock_path):
            values = self._values()
            explicit = values[1]
            entries = [2 + e * self._ENTRY for e in range(self.ENTRIES)]
            mine = [at for at in entries if values[at] and values[at] >> 32 == key]
            at = max(mine, key=lambda a: values[a] & 0xFFFFFFFF) if mine else None
            word, mask = 1 + who // 32, 1 << (who % 32)  # where this reader's bit sits in an entry
            tracked = who <= self.SLOTS
            if at is not None and not (tracked and values[at + word] & mask):
                gen = values[at] & 0xFFFFFFFF  # a sibling of this iteration started it
            else:  # a new iteration (or the same key's again: this worker id already joined that one)
                gen = max((values[a] & 0xFFFFFFFF for a in entries if values[a]), default=-1) + 1
                at = next((a for a in entries if not values[a]), None)
                if at is None:  # the oldest iteration's entry makes room
                    at = min(entries, key=lambda a: values[a] & 0xFFFFFFFF)
                for i in range(at + 1, at + self._ENTRY):
                    self._put(i, 0)
                    values[i] = 0
                self._put(at, (key << 32) | gen)
                self._put(0, (key << 32) | gen)
            if tracked:
                self._put(at + word, values[at + word] | mask)
        return explicit + gen, gen

    # ---- the resume state for persistent workers -----------------------------------------------------
    def _resume_path(self) -> str | None:
        """The file of this clock's published state: in the private folder of its family lock (removed
        with it at exit), named by the clock's random token. None without such a folder."""
        token = getattr(self, "_token", "")
        if self._lock_path is None or not token.isalnum():
            return None
        return os.path.join(os.path.dirname(self._lock_path), f"resume-{token}.json")

    def resume_word(self) -> int:
        """The resume generation's word (see :meth:`publish`); 0 when nothing was ever published."""
        return self._get(self._RESUME)

    def publish(self, state: dict[str, Any] | None) -> int:
        """The owning process's ``load_state_dict`` (``state``: what it resumes, JSON) or ``set_epoch``
        (None: nothing to resume): the next resume generation, returned as its word. The file is written
        (atomically) before the word changes, so a worker that sees the word finds its state."""
        if self._owner != os.getpid():
            self._resolve()  # another process's copy takes its own memory (and folder) first
        path = self._resume_path()
        with _clock_lock(self._lock_path):
            word = (((self._get(self._RESUME) >> 1) + 1) << 1) | (state is not None)
            if path is not None:
                try:
                    if state is None:
                        if os.path.lexists(path):
                            os.unlink(path)
                    else:
                        body = json.dumps({"word": word, "state": state})  # no pickle: the worker reads plain data
                        tmp = f"{path}.{os.getpid()}.tmp"
                        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
                        try:
                            with os.fdopen(fd, "w", encoding="utf-8") as f:
                                f.write(body)
                            os.replace(tmp, path)
                        except OSError:
                            with contextlib.suppress(OSError):
                                os.unlink(tmp)
                            raise
                        if getattr(self, "_cleanup_pid", None) != os.getpid():  # a clock dropped before the exit
                            weakref.finalize(self, _remove_published, path, os.getpid())
                            self._cleanup_pid = os.getpid()
                except (OSError, TypeError, ValueError):  # the worker that needs it says so (see published)
                    pass
            self._put(self._RESUME, word)
        return word

    def published(self) -> tuple[int, dict[str, Any] | None]:
        """The resume word and the state published with it (None: that generation resumes nothing), read
        together. Raises ShardError when the state cannot be read (no private folder, a write that failed)."""
        if self._owner != os.getpid():
            self._resolve()
        path = self._resume_path()
        try:
            with _clock_lock(self._lock_path):
                word = self._get(self._RESUME)
                if not word & 1:
                    return word, None
                if path is None:
                    raise OSError("no private temporary folder for it")
                fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                with os.fdopen(fd, "r", encoding="utf-8") as f:
                    body = json.load(f)
            if not isinstance(body, dict) or body.get("word") != word or not isinstance(body.get("state"), dict):
                raise OSError(f"it holds another generation than {word >> 1}")
        except (OSError, ValueError) as exc:
            raise ShardError(
                f"a persistent DataLoader worker cannot read the state load_state_dict() loaded after the workers "
                f"started ({exc}): it would read the whole epoch again and repeat samples. Use mmdata.loader(...), "
                f"torchdata's StatefulDataLoader, or DataLoader(persistent_workers=False)") from exc
        # the checks load_state_dict made (QA: a file holding {"x": 1} resumed nothing, and the workers read the
        # whole epoch again without a word; one with readers 10**12 hung the share computation)
        return word, expect_state(body["state"], f"the resume state file {path}", error=ShardError)


def _remove_published(path: str, pid: int) -> None:
    if os.getpid() == pid:  # not a forked child's copy of the clock
        with contextlib.suppress(OSError):
            os.unlink(path)


class SkipBoard:
    """Skip counts and error details of DataLoader workers, in memory shared with the process that reads them.

    A worker's counts also travel in ``meta["skipped"]`` of each sample it yields, but a sample lost
    after that worker's last yielded sample has nothing to travel with, and the details
    (``dataset.errors``) travel with none; the board has one slot per worker where the reader posts
    its counts (JSON) each time it counts, and its errors, each with the reader position from which
    on it is part of the record a ``state_dict`` carries (see :meth:`post_errors`), so the loader reads
    them all once the epoch's workers are done.

    ``shared=True`` (:func:`mmdata.loader`'s): a torch shared-memory tensor, inherited by forked workers
    and passed by handle to spawned ones. ``shared=False`` (each dataset's own, for a plain DataLoader's
    workers): an anonymous shared mapping, whose pages cost nothing until a worker posts — switched to a
    torch shared-memory tensor when pickled for a spawned worker; pickled otherwise (a copy, Ray) it
    arrives empty and unshared. Each post carries the board's ``stamp`` (the poster's iteration, see
    :meth:`latest`). As with :class:`EpochClock`, the memory is shared only between a process and its own
    DataLoader workers: a copy that reaches another process which is not a DataLoader worker (the ranks
    of ``torch.multiprocessing.spawn``) takes an empty board of its own when first used there, or before
    that process forks (both ranks' workers wrote the same slots, and each rank read the other's losses).

    Example:
        >>> b = SkipBoard(2)
        >>> b.post(1, {"corrupt image": 2})
        >>> b.total()
        {'corrupt image': 2}
        >>> b.post_errors(1, 3, [(2, ("a.tar", "k1", "corrupt"))])
        >>> b.read_errors()
        [None, (3, [(2, ('a.tar', 'k1', 'corrupt'))])]
    """

    SLOT = 1 << 14
    #: bytes of a slot's errors (JSON: 100 entries of a few hundred bytes)
    DETAILS = 1 << 16
    #: header: [0:8] something was posted since the last clear, [8:16] epochs set by the reading process
    HEAD = 64

    def __init__(self, slots: int, shared: bool = True) -> None:
        self.slots = max(1, int(slots))
        self.stamp = 0  # written with each post by this copy (a worker's iteration); 0: none
        self.shared = shared
        size = self.HEAD + self.slots * (self.SLOT + self.DETAILS)
        self._map: mmap.mmap | None = None if shared else mmap.mmap(-1, size)  # MAP_SHARED | MAP_ANONYMOUS
        self.tensor: torch.Tensor | None = torch.zeros(size, dtype=torch.uint8).share_memory_() if shared else None
        self._owner = os.getpid()
        _BOARDS.add(self)

    def _resolve(self) -> None:
        """First use of a copy in another process than the one it belongs to: a DataLoader worker shares
        the memory it came with; any other process takes an empty board of its own."""
        if get_worker_info() is None:
            size = self.HEAD + self.slots * (self.SLOT + self.DETAILS)
            if self.shared:
                self.tensor, self._map = torch.zeros(size, dtype=torch.uint8).share_memory_(), None
            else:
                self.tensor, self._map = None, mmap.mmap(-1, size)
        self._owner = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        from multiprocessing.context import get_spawning_popen

        if self._owner != os.getpid():
            self._resolve()  # a rank handing its copy to its spawned workers: they share the rank's own
        state = dict(self.__dict__)
        if not self.shared:
            if get_spawning_popen() is None:  # a copy (pickle, Ray): a board of its own, empty
                return {"slots": self.slots, "stamp": 0, "shared": False, "_map": None, "tensor": None}
            if self.tensor is None:  # a spawned DataLoader worker: from now on share through torch
                self.tensor = torch.from_numpy(self._flat().copy()).share_memory_()
                self._map = None
            state.update(tensor=self.tensor, _map=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.tensor is None and self._map is None:  # a copy: a board of this process, empty
            self._map = mmap.mmap(-1, self.HEAD + self.slots * (self.SLOT + self.DETAILS))
            self._owner = os.getpid()
        _BOARDS.add(self)

    def _flat(self) -> Any:
        import numpy as np

        if self._owner != os.getpid():
            self._resolve()
        return self.tensor.numpy() if self.tensor is not None else np.frombuffer(self._map, dtype=np.uint8)  # type: ignore[arg-type]

    def _rows(self) -> Any:
        return self._flat()[self.HEAD :].reshape(self.slots, self.SLOT + self.DETAILS)

    def clear(self) -> None:
        SkipBoard._stuck.clear()  # numbers start over: one a read waited out may be a live post's again
        flat = self._flat()
        if flat[0]:  # only the slots' lengths and stamps: a board never posted to is never touched
            rows = self._rows()
            rows[:, :24] = 0  # the counts' stamp, sequence and length
            rows[:, self.SLOT : self.SLOT + 16] = 0  # the errors' sequence and length
            flat[0] = 0

    def bump(self) -> None:
        """The reading process set the epoch (``set_epoch``, ``load_state_dict``): later stamps are newer."""
        flat = self._flat()
        flat[8:16] = memoryview(struct.pack("<q", self.sets() + 1))

    def sets(self) -> int:
        return int(struct.unpack("<q", self._flat()[8:16].tobytes())[0])

    def workers_newer(self) -> bool:
        """Whether DataLoader workers started an iteration after the owner last read itself (:meth:`clear`)
        or set the epoch (:meth:`bump`): the owner's own positions are not that iteration's."""
        if not self._flat()[0]:
            return False
        top = max(int(struct.unpack("<q", row[:8].tobytes())[0]) for row in self._rows())
        return top > 0 and top >> 32 >= self.sets()

    @staticmethod
    def _write(row: Any, body: bytes) -> None:
        """Post ``body`` in ``row``: ``[0:8]`` a sequence number, odd while a post is under way (a seqlock:
        one writer per row, its worker), ``[8:16]`` the body's length, then the body. The number is made odd
        whatever it was: a row left odd (a worker killed in the middle of a post, two iterations of one
        dataset posting to one slot at once) is whole again after its next post."""
        seq = struct.unpack("<q", row[:8].tobytes())[0]
        odd = seq + 1 if seq % 2 == 0 else seq + 2
        row[:8] = memoryview(struct.pack("<q", odd))
        row[8:16] = memoryview(struct.pack("<q", len(body)))
        row[16 : 16 + len(body)] = memoryview(body)
        row[:8] = memoryview(struct.pack("<q", odd + 1))

    #: how long a read waits for a post under way to end (a worker killed in the middle never ends it)
    READ_WAIT = 2.0
    #: per row (its address), the odd sequence number a read waited out: not waited for again
    _stuck: dict[int, bytes] = {}

    @classmethod
    def _load(cls, row: Any, empty: Any = None) -> Any:
        """The JSON a row holds, ``empty`` when nothing was posted. Read while its worker may be posting
        again: the read is taken when the sequence number was even and the same before and after it —
        one whole post, never a torn one, nor "nothing" because a post was under way. A post that does not
        end within :data:`READ_WAIT` (its worker was killed) reads as nothing, at once from then on, until
        the row is posted to again."""
        import json
        import time

        where = row.__array_interface__["data"][0]
        deadline = None
        while True:
            seq = row[:8].tobytes()
            if not struct.unpack("<q", seq)[0] % 2:
                n = struct.unpack("<q", row[8:16].tobytes())[0]
                body = row[16 : 16 + n].tobytes() if 0 < n <= len(row) - 16 else b""
                if row[:8].tobytes() == seq:
                    if not n:
                        return empty
                    try:
                        return json.loads(body)
                    except ValueError:
                        return empty  # not written by this class (a board of another version)
            elif cls._stuck.get(where) == seq:
                return empty
            deadline = deadline or time.monotonic() + cls.READ_WAIT
            if time.monotonic() > deadline:
                cls._stuck[where] = seq
                return empty
            time.sleep(0)  # let the worker finish its post

    def post(self, slot: int, counts: dict[str, int]) -> None:
        import json

        if not 0 <= slot < self.slots:
            return  # more workers than slots: the counts carried by samples are used
        body = json.dumps(counts).encode()
        if len(body) > self.SLOT - 24:
            body = b"null"  # does not fit (hundreds of reasons): the counts carried by samples are used
        row = self._rows()[slot]
        self._flat()[0] = 1  # first: a post cut short (a killed worker) is cleared by the next clear()
        row[:8] = memoryview(struct.pack("<q", self.stamp))
        self._write(row[8 : self.SLOT], body)

    def read(self) -> list[dict[str, int] | None]:
        """Per slot: the counts posted, ``{}`` when none, None when they did not fit."""
        out: list[dict[str, int] | None] = []
        for row in self._rows():
            out.append(self._load(row[8 : self.SLOT], empty={}))
        return out

    def total(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for counts in self.read():
            for k, v in (counts or {}).items():
                out[k] = out.get(k, 0) + v
        return out

    def post_errors(self, slot: int, reader: int, errors: Sequence[tuple[int | None, tuple[str, ...]]]) -> None:
        """Post reader ``reader``'s errors, each ``(place, entry)``: ``place`` is the first position of the
        reader's stream (``meta["position"] + 1`` of a sample handed out) whose record holds it, None
        while no sample's does yet; the last entries are left out when they do not fit."""
        import json

        if not 0 <= slot < self.slots:
            return
        items = [[p, *e] for p, e in errors]
        body = json.dumps([reader, items]).encode()
        while len(body) > self.DETAILS - 16 and items:
            items = items[: len(items) * 3 // 4]
            body = json.dumps([reader, items]).encode()
        self._flat()[0] = 1
        self._write(self._rows()[slot, self.SLOT :], body)

    def read_errors(self) -> list[tuple[int, list[tuple[int | None, tuple[str, ...]]]] | None]:
        """Per slot: ``(reader, [(place, entry), ...])`` as posted, None when nothing was."""
        out: list[tuple[int, list[tuple[int | None, tuple[str, ...]]]] | None] = []
        for row in self._rows():
            got = self._load(row[self.SLOT :])
            out.append(None if got is None else (int(got[0]), [(p, tuple(e)) for p, *e in got[1]]))
        return out

    def latest(self) -> tuple[dict[str, int], list[tuple[int, list[tuple[int | None, tuple[str, ...]]]]]] | None:
        """The counts (summed) and the errors (per reader) of the newest iteration whose workers posted
        here — the slots of the highest stamp; a slot of an older iteration (a persistent worker whose
        next iteration has not started yet) is left out. None when nothing was posted since :meth:`clear`."""
        if not self._flat()[0]:
            return None
        rows = self._rows()
        stamps = [int(struct.unpack("<q", row[:8].tobytes())[0]) for row in rows]
        top = max(stamps)
        if top <= 0:
            return None
        counts: dict[str, int] = {}
        errors = []
        for stamp, row in zip(stamps, rows):
            if stamp != top:
                continue
            for k, v in (self._load(row[8 : self.SLOT]) or {}).items():
                counts[k] = counts.get(k, 0) + int(v)
            got = self._load(row[self.SLOT :])
            if got is not None:
                errors.append((int(got[0]), [(p, tuple(e)) for p, *e in got[1]]))
        return counts, errors


def merge_errors(posted: Iterable[tuple[int, list[tuple[int | None, tuple[str, ...]]]]],
                 datasets: Sequence[str] | None = None,
                 upto: Mapping[int, int] | None = None) -> list[tuple[str, ...]]:
    """Readers' errors as one list: by place in their streams, then reader, the first 100 — for a blend's
    (entries ``(dataset, shard, key, message)``, ``datasets`` its names) dataset after dataset, the first
    100 of each, as ``BlendDataset.errors``. ``upto``: per reader, only those a record up to that
    position holds (what the samples handed out so far carried)."""
    group = {n: i for i, n in enumerate(datasets)} if datasets is not None else None
    rows = []
    for r, items in posted:
        for p, e in items:
            if upto is not None and (p is None or p > upto.get(r, 0)):
                continue
            g = group.get(e[0], len(group)) if group is not None else 0
            rows.append((g, p if p is not None else float("inf"), r, e[1:] if group is not None else e))
    rows.sort(key=lambda row: row[:3])
    out: list[tuple[str, ...]] = []
    taken: dict[int, int] = {}
    for g, _, _, e in rows:
        if taken.get(g, 0) < _MAX_ERRORS:
            taken[g] = taken.get(g, 0) + 1
            out.append(tuple(e))
    return out


class _Skip(Exception):
    def __init__(self, reason: str, message: str, ext: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.ext = ext  # the member refused, when one is (a column dataset names the series shard holding it)


#: ``Sample.meta`` key of a clip's whole length in seconds when ``audio_max_frames`` decoded only its start
AUDIO_SECONDS = "audio_seconds"


def _expect_frames(value: Any) -> AudioFrames | None:
    """``open_dataset(audio_max_frames=)`` as given, else a ShardError saying what it takes."""
    if value is None or callable(value):
        return value
    return expect_int(value, "audio_max_frames", minimum=1, error=ShardError,
                      unit="frames, or a function of the sample rate giving them")


def _reason(exc: Exception, ext: str) -> str:
    if isinstance(exc, UnsafeMemberError):
        return "pickle member refused"
    if isinstance(exc, OversizeMediaError):  # pixels or samples over the decode limit, from the header
        return TOO_LARGE
    if isinstance(exc, StandardFieldError):  # k.label.npy: not the label's codec
        return "member cannot supply a standard field"
    name = field_of(ext)
    return {"image": "corrupt image", "audio": "corrupt audio", "text": "non-UTF-8 text",
            "label": "bad label"}.get(name, f"corrupt .{ext}")


_STANDARD_FIELDS = frozenset(field_of(e) for e in (*IMAGE_EXTS, *AUDIO_EXTS, *TEXT_EXTS, *LABEL_EXTS))


#: the split file of a Megatron-Energon dataset folder (``energon prepare``): ``split_parts`` and ``exclude``
ENERGON_SPLITS = os.path.join(".nv-meta", "split.yaml")
#: the remedy of a key whose members are not adjacent in a bare tar (tario's ``repeated key``)
_ADJACENT_REMEDY = ("; write the tar with each sample's members together: `tar --sort=name -cf x.tar ...` (GNU tar), "
                    "or list the files sorted: `tar cf x.tar $(ls | sort)`")
#: cross-shard repeated keys of a bare folder read are looked for among the first this many samples of each
#: reader's pass (a dict of their hashes: ~100 MB at this count, measured), so a huge folder costs no more
DUPLICATE_KEY_CHECK = 1 << 20


def _split_url_list(path: Any) -> Any:
    """webdataset's ``::``-joined URL list (``a-{0..3}.tar::b-{0..1}.tar``) as a list of its parts."""
    if not isinstance(path, str) or "::" not in path or "://[" in path:  # an IPv6 host: http://[::1]/x.tar
        return path
    parts = path.split("::")
    if not all(parts):
        raise ShardError(f"{redact(path)}: an empty entry in a '::'-joined shard list (webdataset's syntax: "
                         f"'a-{{0..3}}.tar::b-{{0..1}}.tar'); or pass a Python list of paths / patterns")
    return parts


def _folder_tars(folder: str) -> tuple[list[str], list[str]]:
    """The tars under a bare ``folder`` (sorted paths), and the hidden folders and files holding tars that are
    left out: ``.Trash/``, ``.nv-meta/``, macOS' ``._x.tar`` (as ``mmdata shard`` leaves hidden entries of a raw
    folder out)."""
    found: list[str] = []
    hidden: set[str] = set()
    for t in expand_sources(folder):  # every tar under it, sorted
        parts = Path(os.path.relpath(t, folder)).parts
        dot = next((i for i, part in enumerate(parts) if part.startswith(".")), None)
        if dot is None:
            found.append(t)
        else:
            hidden.add(os.path.join(*parts[: dot + 1]) + ("/" if dot < len(parts) - 1 else ""))
    return found, sorted(hidden)


def _tar_split(folder: str, tar: str) -> str | None:
    """The split a tar of a bare ``folder`` is named for (its subfolder or file name, any case or common
    spelling), as ``mmdata shard`` reads it: :func:`mmdata.shards.sources.tar_split`."""
    from mmdata.shards.sources import tar_split

    return tar_split(tar, folder)


def _named_for(folder: str, tars: list[str], split: str) -> list[str]:
    from mmdata.shards.sources import split_word

    want = split_word(split) or split
    return [t for t in tars if _tar_split(folder, t) == want]


def _carried(folder: str, tars: list[str]) -> list[str]:
    """The splits the tars are named for (:func:`_tar_split`: ``val-000.tar`` or ``val/000.tar``: ``val``)."""
    return sorted({s for s in (_tar_split(folder, t) for t in tars) if s is not None})


def _shown_tars(folder: str, tars: list[str], n: int = 6) -> str:
    rel = [os.path.relpath(t, folder) for t in tars]
    return ", ".join(rel[:n]) + (f", ... ({len(rel)} in all)" if len(rel) > n else "")


def _energon_parts(folder: str) -> tuple[dict[str, list[str]], list[str]]:
    """``split_parts`` and ``exclude`` of an Energon folder's ``.nv-meta/split.yaml`` (``yaml.safe_load`` rules:
    no Python objects; a duplicate key refused)."""
    from mmdata import safe_yaml

    meta = os.path.join(folder, ENERGON_SPLITS)
    raw = safe_yaml.read_bytes(meta, "Energon split file", ShardError)
    doc = safe_yaml.parse(safe_yaml.decode(raw, f"{meta} is not UTF-8 text", ShardError), meta, ShardError)
    parts = doc.get("split_parts") if isinstance(doc, dict) else None
    exclude = (doc.get("exclude") if isinstance(doc, dict) else None) or []
    if not isinstance(parts, dict) or not all(isinstance(k, str) and (v is None or (isinstance(v, list) and all(
            isinstance(e, str) for e in v))) for k, v in parts.items()) or not isinstance(exclude, list) \
            or not all(isinstance(e, str) for e in exclude):
        raise ShardError(f"{meta}: expected 'split_parts:' mapping split names to lists of shard paths (relative to "
                         f"{folder}) and 'exclude:' a list of shard paths, as energon prepare writes them")
    return {k: list(v or []) for k, v in parts.items()}, list(exclude)


def _inside(folder: str, rel: str, meta: str) -> str:
    """``rel`` (a path of ``meta``) joined to ``folder``; refused when absolute or outside the folder."""
    full = os.path.normpath(os.path.join(folder, rel))
    root = os.path.realpath(folder)
    real = os.path.realpath(full)
    if os.path.isabs(rel) or (real != root and not real.startswith(root.rstrip(os.sep) + os.sep)):
        raise ShardError(f"{meta}: shard path {rel!r} is outside the dataset folder {folder} (paths there are "
                         f"relative to the folder and stay inside it)")
    return full


def _energon_shards(folder: str, splits: tuple[str, ...]) -> list[str]:
    """The shards of ``splits`` by an Energon folder's ``split_parts``, less those ``exclude`` names."""
    meta = os.path.join(folder, ENERGON_SPLITS)
    parts, exclude = _energon_parts(folder)
    out_of = [s for s in splits if s not in parts]
    if out_of:
        raise ShardError(f"{folder}: an Energon dataset (.nv-meta/split.yaml) without split {out_of[0]!r}; its "
                         f"split_parts are {sorted(parts)}")
    dropped: set[str] = set()
    for e in exclude:
        if re.search(r"\.(tar|tgz|tar\.gz)/", e):  # "parts/data-0.tar/000123": one sample
            raise ShardError(f"{meta}: exclude entry {e!r} names a sample; mmdata honours excluded shards only: remove "
                             f"the sample from its shard, or pass the split's shards yourself (a list of paths)")
        dropped.update(os.path.realpath(_inside(folder, p, meta)) for p in tario.braceexpand(e))
    out: list[str] = []
    for s in splits:
        for entry in parts[s]:
            for rel in tario.braceexpand(entry):
                full = _inside(folder, rel, meta)
                if os.path.realpath(full) in dropped:
                    continue
                if not os.path.lexists(full):
                    raise ShardError(f"{meta}: split {s!r} lists {rel!r}, which {folder} does not hold")
                out.append(full)
    if not out:
        raise ShardError(f"{folder}: split {list(splits) if len(splits) > 1 else splits[0]!r} of its .nv-meta/split.yaml "
                         f"lists no shard (after exclude)")
    return out


def bare_folder_splits(path: Any) -> list[str] | None:
    """The split names ``open_dataset(path, split=...)`` takes for a local folder of bare shards (no
    ``dataset.json``), or None for anything else (a dataset folder, a tar, a pattern, a URL).

    An Energon folder's are its ``.nv-meta/split.yaml`` ``split_parts``; a folder whose tars are named by
    split (``train-000.tar``, ``val-000.tar``) has those names; one whose tars carry none
    (``shard-000.tar``) has only the default, ``train`` (every tar).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for n in ("train-000.tar", "train-001.tar", "val-000.tar"): _ = (d / n).write_bytes(b"")
        >>> bare_folder_splits(d)
        ['train', 'val']
    """
    if not isinstance(path, (str, Path)) or is_remote(path) or not os.path.isdir(path) or idx.dataset_marks(path):
        return None
    folder = str(path)
    if os.path.isfile(os.path.join(folder, ENERGON_SPLITS)):
        return sorted(_energon_parts(folder)[0])
    return _carried(folder, _folder_tars(folder)[0]) or ["train"]


def _bare_folder(folder: str, splits: tuple[str, ...]) -> list[str]:
    """The tars of ``splits`` in a local folder of bare shards (see :func:`open_dataset`'s ``split``)."""
    if os.path.isfile(os.path.join(folder, ENERGON_SPLITS)):
        return _energon_shards(folder, splits)
    tars, hidden = _folder_tars(folder)
    if not tars:
        left = f" (hidden ones are not read: {', '.join(hidden[:5])})" if hidden else ""
        raise ShardError(f"{folder}: folder has no dataset.json and no .tar/.tar.gz shards{left}")
    named = {s: _named_for(folder, tars, s) for s in splits}
    carried = _carried(folder, tars)
    if all(named.values()):
        chosen = [t for s in splits for t in named[s]]
        rest = [t for t in tars if t not in set(chosen) and _tar_split(folder, t) is None]
        if rest:
            warnings.warn(f"{folder}: {len(rest)} tar(s) named for no split are not read for split "
                          f"{splits[0] if len(splits) == 1 else list(splits)!r}: {_shown_tars(folder, rest)} (pass a "
                          f"list of paths or a pattern to read them)", UserWarning, stacklevel=4)
        return chosen
    if splits == ("train",) and not carried:
        return tars  # tars named for no split (shard-000.tar): all of them are the default split
    missing = next(s for s in splits if not named[s])
    which = (f"its tars are named for the splits {carried}: pass one of those" if carried else
             "its tars carry no split name: the default split='train' reads all of them")
    raise ShardError(f"{folder}: bare shards (no dataset.json), and no tar is named for split {missing!r} "
                     f"({missing}-*.tar); {which}, or pass the split's tars yourself as a pattern or a list "
                     f"(open_dataset('{os.path.join(folder, missing)}-*.tar')). Tars: {_shown_tars(folder, tars)}")


def _bare_sources(path: Any, splits: tuple[str, ...], storage_options: dict[str, Any] | None,
                  warn: bool = True) -> tuple[list[str], bool]:
    """The shards of bare ``path``, and whether a local folder was listed (its keys are checked across shards).
    A list's (or a ``::``-joined string's) tars named for several splits are warned of once, for the whole
    list (QA30 D3: each entry alone named one split, so a list of train, val and test tars was silent)."""
    if isinstance(path, (list, tuple)):
        _refuse_folder_list(path, splits)
        found = [_bare_sources(p, splits, storage_options, warn=False) for p in path]
        if warn:  # a folder's tars are its split's already: only the tars given as tars and patterns count
            _warn_mixed_splits(path, [u for f in found if not f[1] for u in f[0]])
        return [u for f in found for u in f[0]], any(f[1] for f in found)
    if isinstance(path, (str, Path)) and not is_remote(path) and os.path.isdir(path) and not idx.dataset_marks(path):
        return _bare_folder(str(path), splits), True
    tars = expand_sources(path, storage_options)
    if warn:
        _warn_mixed_splits(path, tars)
    return tars, False


def _collate_masked(samples: Sequence[Sample], fields: Sequence[str], masks: Sequence[str],
                    dtypes: Any = None) -> Any:
    """A dataset's ``collate_fn`` (module level: DataLoader workers pickle it): :func:`mmdata.collate` with its
    fields, the one dtype of each ``.npy`` field whose files mix dtypes (``dtypes``:
    :func:`mmdata.types.field_dtypes` of the card), and the ``masks`` of the standard modalities
    (:func:`mmdata.types.with_masks`), as mmdata.loader's."""
    return with_masks(collate(samples, fields=fields, dtypes=dtypes), masks)


def _refuse_folder_list(path: Sequence[Any], splits: tuple[str, ...]) -> None:
    """Refuse a list (or ``::``-joined string) holding a dataset folder: a list is read as given, so each
    folder's tars of every split would be one stream — ``split`` ignored, its test samples trained on — and
    each folder's class ids its own (QA33 multisite #2: only the mixed-splits warning said anything). Several
    datasets read as one are a blend (one split of each, classes matched by name); one folder is read alone.
    Bare folders (no dataset.json) stay: each gives its own split's tars. A folder URL (``s3://b/ds``) is
    refused too: a list cannot read one (it is no shard), and reading it as given would reopen the same hole.
    Beside tars or patterns (a mixed list), the remedy keeps them: the folder's split tars in its place."""
    folders = [p for p in path if isinstance(p, (str, Path)) and (
        is_folder_url(p) or (not is_remote(p) and os.path.isdir(p) and idx.dataset_marks(p)))]
    if not folders:
        return
    split = splits[0] if len(splits) == 1 else list(splits)
    shown = ", ".join(repr(redact(str(p))) for p in folders[:3]) + (", ..." if len(folders) > 3 else "")
    names = [re.sub(r"[^\w.-]", "_", str(p).rstrip("/").rsplit("/", 1)[-1]) or f"d{i}" for i, p in enumerate(folders[:2])]
    if len(set(names)) < len(names):
        names = ["a", "b"]
    example = ", ".join(f"{n!r}: {redact(str(p))!r}" for n, p in zip(names, folders[:2]))
    others = [p for p in path if p not in folders]
    if others:  # a mixed list: a blend or the folder alone would drop the tars listed beside it
        kept = [f"{redact(str(p)).rstrip('/')}/{s}-*.tar" for p in folders[:2] for s in splits] + [
            redact(str(p)) for p in others[:2]]
        remedy = (f"to read the listed tars with {'those folders' if len(folders) > 1 else 'that folder'}'s split "
                  f"{split!r}, list {'their' if len(folders) > 1 else 'its'} split's tars in place of "
                  f"{'them' if len(folders) > 1 else 'it'} (read as given, class ids as each tar has them): "
                  f"open_dataset({kept!r}{'...' if len(folders) > 2 or len(others) > 2 else ''}); to read several "
                  f"datasets' split as one, with classes matched by name, use a blend: mmdata.blend({{{example}"
                  f"{', ...' if len(folders) > 2 else ''}}}, split={split!r})")
    else:
        alone = (f"; one dataset: pass its folder alone (open_dataset({redact(str(folders[0]))!r}, split={split!r}))"
                 if len(folders) == 1 else "")
        remedy = (f"read the split of several datasets as one, with classes matched by name, as a blend: "
                  f"mmdata.blend({{{example}{', ...' if len(folders) > 2 else ''}}}, split={split!r}) (mmdata.loader "
                  f"and the Lightning DataModule take the same mapping){alone}; or list the tars to read yourself")
    raise ShardError(f"a list holding the dataset folder{'s' if len(folders) > 1 else ''} {shown} is not read as one "
                     f"dataset: a list is read as given (split {split!r} would not apply: every split of each folder, "
                     f"test samples included, would be one stream, and each folder's class ids its own); {remedy}")


def _warn_mixed_splits(path: Any, tars: list[str]) -> None:
    """A pattern (glob, braces, a folder inside a URL's glob) is read as given, as webdataset reads one:
    ``split`` does not apply. When its tars are named for several splits (``train-*.tar`` and ``val-*.tar``
    under ``*.tar``), reading them as one split is almost surely a mistake (validation on training data):
    warn, naming the splits and the pattern to pass instead (a known limit: it was silent). So for a list of
    tars and patterns, or a ``::``-joined string of them (``path`` a list): it is read as given too."""
    if len(tars) < 2:
        return
    from mmdata.shards.sources import shard_split

    named: dict[str, int] = {}
    for t in tars:
        s = shard_split(t)
        if s is not None:
            named[s] = named.get(s, 0) + 1
    if len(named) < 2:
        return
    counts = ", ".join(f"{n} {s}" for s, n in sorted(named.items()))
    first = "train" if "train" in named else sorted(named)[0]
    if isinstance(path, (list, tuple)):
        shown = ", ".join(repr(redact(str(p))) for p in path[:3]) + (", ..." if len(path) > 3 else "")
        what, one = f"a list of shards ({shown}; or '::'-joined) is", f"only the {first} tars"
    else:
        what, one = f"{redact(str(path))}: a pattern is", f"e.g. '{first}-*.tar' in that folder"
    warnings.warn(f"{what} read as given (split does not apply), and its {len(tars)} tars "
                  f"are named for {len(named)} splits ({counts}): they are read as one stream; pass one split's tars "
                  f"({one}), or the folder itself with split=... (several dataset folders: mmdata.blend({{name: "
                  f"folder, ...}}, split=...))", UserWarning,
                  stacklevel=5)  # open_dataset's caller


#: member types whose decoders release the GIL (Pillow, libjpeg-turbo, libsndfile, dr_flac): worth a decode thread
_GIL_FREE = frozenset((*IMAGE_EXTS, *AUDIO_EXTS))


def _releases_gil(raw: dict[str, bytes]) -> bool:
    """Whether decoding a sample's members runs mostly outside the GIL (an image or audio member read)."""
    return any(v and member_type(e) in _GIL_FREE for e, v in raw.items())


def _address_limit() -> int | None:
    """This process's address-space limit (``ulimit -v``, RLIMIT_AS) in bytes; None where unlimited or unknown."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, AttributeError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _no_memory(member: str, size: int) -> str:
    """Why decoding ``member`` (``key.ext``, ``size`` bytes) raised MemoryError. Under an address-space limit
    (``ulimit -v``) the limit is named, as the CLI's out-of-memory line does, not the member: a 1-byte
    ``.cls`` failed there at 1900 MiB and read at 1600 and 2100 (QA35 lowmem #2: the failures follow the
    thread stacks and malloc arenas reserved, not the data). Without one, the member's size is the lead.

    Example:
        >>> _no_memory("k.jpg", 18107554) if _address_limit() is None else "k.jpg: decoding its 18107554 bytes ..."
        'k.jpg: decoding its 18107554 bytes does not fit in memory (MemoryError)'
    """
    limit = _address_limit()
    if limit is None:
        return f"{member}: decoding its {size} bytes does not fit in memory (MemoryError)"
    return (f"{member}: out of memory decoding its {size} bytes (MemoryError); this process may use {limit >> 20} "
            "MiB (ulimit -v): a limit of this machine, not a fault of the data; raise the memory limit, or use "
            "fewer DataLoader workers or decode threads, and rerun")


_warned_no_threads: list[bool] = []


def _warn_no_threads(exc: BaseException) -> None:
    """Once per process: the decode threads could not start, samples are decoded in the reading thread."""
    if _warned_no_threads:
        return
    _warned_no_threads.append(True)
    limit = _address_limit()
    cap = f"; this process may use {limit >> 20} MiB (ulimit -v)" if limit is not None else ""
    warnings.warn(f"decode threads could not start ({exc}{cap}): samples are decoded in the reading thread, "
                  "as with decode_threads=1 (slower, the same samples in the same order)", UserWarning, stacklevel=2)


class _Ready:
    """A decode done in place, with a Future's ``result()``: its value, or its exception raised only when its
    turn in the window comes (as the pool's would be)."""

    __slots__ = ("_exc", "_value")

    def __init__(self, fn: Callable[[Any], Any], item: Any) -> None:
        self._exc: BaseException | None = None
        try:
            self._value = fn(item)
        except Exception as exc:  # noqa: BLE001 - raised at result(), in stream order
            self._exc, self._value = exc, None

    def result(self) -> Any:
        if self._exc is not None:
            raise self._exc
        return self._value


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask (``taskset``, SLURM, cgroup cpusets), as torch's
    DataLoader counts them, else ``os.cpu_count()``.

    Example:
        >>> 1 <= usable_cpus() <= (os.cpu_count() or 1)
        True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def _once(shards: list[str], source: Any) -> list[str]:
    """``shards`` without repeats (first place kept), with a warning naming them: a shard listed twice
    (``[s, s]``, a path and a glob that matches it) would yield each of its samples twice, and the
    reader promises each sample exactly once per epoch."""
    seen: dict[str, str] = {}
    out: list[str] = []
    twice: list[str] = []
    for sh in shards:
        local = _local_path(sh)
        ident = os.path.realpath(local) if local is not None else sh
        if ident in seen:
            twice.append(sh)
            continue
        seen[ident] = sh
        out.append(sh)
    if twice:
        warnings.warn(f"{source}: shards listed more than once are read once: {sorted(set(twice))}", UserWarning,
                      stacklevel=4)
    return out


def _same_field(exts: Sequence[str]) -> tuple[str, str] | None:
    """A ``repeated member`` problem when two of a sample's extensions give one field (``png`` and
    ``jpg``, ``cls`` and ``label``, ``txt`` and ``TXT``): which one is the sample's image is not ours
    to guess, and keeping the last would lose the other silently."""
    seen: dict[str, str] = {}
    for e in exts:
        f = field_of(e)
        if f in seen:
            return ("repeated member", f"members .{seen[f]} and .{e} both give field {f!r}")
        seen[f] = e
    return None


def _np(arr: Any) -> Any:
    """A numpy view of a primitive Arrow array without nulls, straight from its data buffer
    (``Array.to_numpy`` imports pandas — seconds in every freshly forked DataLoader worker)."""
    import numpy as np

    dtype = np.dtype(arr.type.to_pandas_dtype())
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def _dictionary(arr: Any) -> Any:
    """``arr`` dictionary-encoded, without nulls (a null shard or split name is not a usable row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if arr.null_count:
        arr = pc.fill_null(arr.cast(pa.string()) if pa.types.is_dictionary(arr.type) else arr, "\0")
    return arr if pa.types.is_dictionary(arr.type) else arr.dictionary_encode()


def _take(table: Any, rows: Any) -> Any:
    """``table.take(rows)`` for a numpy index array, handed to Arrow as a buffer (no conversion)."""
    import numpy as np
    import pyarrow as pa

    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return table.take(pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)]))


def _split_codes(names: list[str], split: str | tuple[str, ...]) -> list[int]:
    """The dictionary codes of ``split`` (one name or several) among the index's split ``names``."""
    wanted = (split,) if isinstance(split, str) else split
    return [i for i, name in enumerate(names) if name in wanted]


def split_names(split: Any, error: type[Exception] = ShardError) -> tuple[str, ...]:
    """``split`` as a tuple of split names: one name (``"train"``) or a list / tuple of names read as one
    split (``["1", "2", "3"]``: k-fold training on folds sharded as splits), each once.

    Example:
        >>> split_names("train"), split_names(["1", "2"])
        (('train',), ('1', '2'))
    """
    if isinstance(split, str):
        return (split,)
    if isinstance(split, (list, tuple)) and split and all(isinstance(s, str) for s in split):
        twice = sorted({s for s in split if split.count(s) > 1})
        if twice:
            raise error(f"split: {twice} listed more than once in {list(split)}; each split is read once (a sample "
                        f"is read once per epoch)")
        return tuple(split)
    raise error(f"split: expected a split name such as 'train', or a list of split names read as one "
                f"(['1', '2', '3']), got {split!r}")


def expect_keys(value: Any, error: type[Exception] = ShardError) -> frozenset[str] | None:
    """``keys=`` as a set of sample keys: any iterable of strings (a list, a set, a numpy array, a pandas
    Series, a pyarrow array), a table with a ``key`` column (a pandas / polars DataFrame or a pyarrow
    Table filtered from ``index.parquet``: its ``key`` column; a ``pyarrow.RecordBatchReader`` as DuckDB's
    ``rel.arrow()`` gives, or a DuckDB relation itself, read whole), or one key; None stays None.

    Example:
        >>> sorted(expect_keys(["000003", "000001", "000003"]))
        ['000001', '000003']
    """
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset((value,))
    value = _as_arrow(value)
    columns = getattr(value, "column_names", None)
    if columns is None and not isinstance(value, Mapping):
        columns = getattr(value, "columns", None)
    if columns is not None and not callable(columns):
        if "key" not in list(columns):
            raise error(f"keys: a table without a 'key' column (it has {list(columns)[:10]}); pass the sample keys, "
                        f"e.g. keys=df['key'] of a filter of index.parquet")
        value = value["key"]
    if hasattr(value, "to_pylist"):  # pyarrow: no numpy / pandas round trip
        value = value.to_pylist()
    elif hasattr(value, "tolist"):  # numpy, pandas
        value = value.tolist()
    if isinstance(value, (bytes, Mapping)) or not isinstance(value, Iterable):
        raise error(f"keys: expected sample keys (a list of strings, a pandas Series, a table with a 'key' column), "
                    f"got {type(value).__name__} {_short_repr(value)}")
    keys = list(value)
    for k in keys:
        if not isinstance(k, str):
            table = hasattr(k, "column_names") or hasattr(k, "columns")
            hint = (f"; keys= was iterated into {type(k).__name__}s (tables, not keys): pass a table with a 'key' "
                    f"column (a pyarrow Table: reader.read_all()) or the key column itself") if table else ""
            raise error(f"keys: expected sample keys (strings, as index.parquet's 'key' column holds them), found "
                        f"{type(k).__name__} {_short_repr(k)}{hint}")
    return frozenset(keys)


def _short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` on one line, cut at ``limit`` characters: a message names a value, never prints a table."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _as_arrow(value: Any) -> Any:
    """``keys=`` given as a stream of Arrow batches (a ``pyarrow.RecordBatchReader``: DuckDB 2's ``rel.arrow()``,
    an IPC stream) or a DuckDB relation (``duckdb.sql(...)``), read into a pyarrow Table; anything else as it is.
    Iterated as it was, a reader gave its batches as keys (QA31 pandas D7)."""
    import pyarrow as pa

    if isinstance(value, pa.RecordBatchReader):
        return value.read_all()
    if type(value).__module__.split(".")[0] == "duckdb":  # a relation: its query's result as Arrow
        for name in ("to_arrow_table", "fetch_arrow_table", "arrow"):
            method = getattr(value, name, None)
            if callable(method):
                return _as_arrow(method())
    return value


_FOLDER_FILES = {idx.CARD: "card", idx.INDEX: "index", idx.SHARDS: "shards table"}


def absolute_sources(path: Any) -> Any:
    """``path`` with its local names made absolute (a folder, a tar, a glob or brace pattern, each entry of a list
    or of a ``::``-joined string), so that what was opened is what every later pass reads, whatever the working
    directory is then (a notebook's ``%cd``, ``os.chdir``): a relative name re-resolved at each pass read another
    folder, or none, and was taken for a re-shard. Only a name that names something now is made absolute (a glob
    that matches, a brace pattern one of whose shards exists): one that does not stays as typed, for the error that
    says so (``nope/: does not exist``, ``~/ds``). URLs, ``pipe:`` names and anything that is not a path are
    returned as they are; a :class:`~pathlib.Path` stays a Path.

    Example:
        >>> import os
        >>> absolute_sources(".") == os.getcwd(), absolute_sources("no/such/ds/"), absolute_sources("s3://b/ds")
        (True, 'no/such/ds/', 's3://b/ds')
    """
    if isinstance(path, (list, tuple)):
        return type(path)(absolute_sources(p) for p in path)
    if not isinstance(path, (str, Path)) or protocol(path) is not None or str(path).startswith("pipe:"):
        return path
    if isinstance(path, str) and "::" in path:  # webdataset's list of tars and patterns (see _split_url_list)
        return "::".join(absolute_sources(p) if p else p for p in path.split("::"))
    if not _names_something(str(path)):
        return path
    absolute = os.path.abspath(path)
    return Path(absolute) if isinstance(path, Path) else absolute


def _names_something(name: str) -> bool:
    """Whether the local name ``name`` (a path, a glob, a brace pattern) names a file or folder that is there now."""
    import glob

    names = tario.braceexpand(name) if "{" in name else (name,)
    return any(next(glob.iglob(n, recursive=True), None) is not None if glob.has_magic(n) else os.path.lexists(n)
               for n in names)


def _not_a_path_hint(path: Any) -> str:
    """What to pass instead of ``path``, an object open_dataset / mmdata.loader cannot read as a path: a blend
    (the loader builds it from its ``{name: folder}`` mapping), an opened dataset (its folder), a table (a
    filter of ``index.parquet``: the folder and ``keys=``); "" for anything else (QA37 fed #4)."""
    datasets = getattr(path, "datasets", None)
    if type(path).__name__ == "BlendDataset" and isinstance(datasets, dict):
        folders = {n: str(getattr(d, "root", None) or "FOLDER") for n, d in datasets.items()}
        splits = getattr(path, "split", None)
        # one split for all: its name; per-dataset splits: the {name: split} mapping (QA37 fix2 #4: a blend of
        # s1's train and s2's test was told split='train', which reads s2's train samples)
        split: Any = "train" if not isinstance(splits, dict) or not splits else \
            next(iter(splits.values())) if len(set(splits.values())) == 1 else dict(splits)
        return (f" (a blend is read by iterating it; the loader builds its own): pass the blend's {{name: dataset "
                f"folder}} mapping, mmdata.loader({folders!r}, split={split!r}, weights={dict(path.weights)!r}, "
                f"seed={getattr(path, 'seed', 0)!r}), with blend's other options (modalities=, label_map=, ...) as "
                "keywords; a list of dataset folders is not a blend")
    root = getattr(path, "root", None)
    if type(path).__name__ == "ShardDataset" and root is not None:
        return f" (an opened dataset): pass its folder, {str(root)!r}"
    if hasattr(path, "columns") or hasattr(path, "column_names"):
        return "; to read the rows of a filter of index.parquet, pass the dataset folder and keys=df['key']"
    return ""


def _check_path(path: Any) -> None:
    """``path`` is something open_dataset reads: not a table (a filter of ``index.parquet`` selects with
    ``keys=``), and not a dataset folder's card, index or shards table given for the folder (they would be
    read as a tar: "is not a tar file")."""
    if isinstance(path, (list, tuple)):
        for p in path:
            _check_path(p)
        return
    if not isinstance(path, (str, os.PathLike)):
        raise ShardError(f"path: expected a dataset folder, a shard, a brace pattern, a glob, a URL or a list of "
                         f"shards, got a {type(path).__name__}{_not_a_path_hint(path)}")
    if is_remote(path) and protocol(path) != "file":
        return
    local = Path(local_path(path)) if protocol(path) == "file" else Path(path)
    what = _FOLDER_FILES.get(local.name)
    if what is not None and os.path.isfile(local):
        folder = local.parent
        raise ShardError(f"{redact(str(path))}: the {what} of a dataset folder, not a shard; pass the dataset folder {folder}: "
                         f"mmdata.open_dataset({str(folder)!r})")


#: what a sample that does not decode (a float WAV holding NaN passes ``--check header``) asks of the user
UNDECODABLE_HINT = ("the index cannot show a sample that does not decode (a float WAV holding NaN passes the default "
                    "--check header, mmdata inspect and a plain mmdata verify): `mmdata verify {data} --deep` lists every such "
                    "sample; re-shard with `mmdata shard SRC {data} --check decode`, which leaves them out "
                    "(docs/bad-input-shard.md){skip}")

def undecodable(exc: BaseException, data: str | Path, skip: str = "") -> ShardError | None:
    """``exc`` (a sample that does not decode, read through a loader) as one error naming the shard and the
    sample and saying how to find and fix such samples (:data:`UNDECODABLE_HINT`); ``skip``: how the
    caller can leave them out instead. None for any other error.

    Example:
        >>> e = ShardError("shard d/test-000000.tar: sample 'c5': c5.wav: cannot decode .wav member as audio: NaN")
        >>> str(undecodable(e, "d"))[:68]
        "shard d/test-000000.tar: sample 'c5': c5.wav: cannot decode .wav mem"
    """
    msg = str(exc)
    if not isinstance(exc, ShardError) or "cannot decode" not in msg or "mmdata verify" in msg and "--deep" in msg:
        return None
    # a DataLoader worker's error carries its traceback: its last line is the reader's message
    line = next((ln for ln in reversed(msg.splitlines()) if "cannot decode" in ln), msg).strip()
    line = line.split("ShardError: ", 1)[-1]
    return ShardError(f"{line}; {UNDECODABLE_HINT.format(data=data, skip=skip)}")


def _row_count(rows: slice | Any | None) -> int:
    """How many index rows a shard has (:attr:`_ShardIndex.rows` value: a slice, an array, None)."""
    if rows is None:
        return 0
    return rows.stop - rows.start if isinstance(rows, slice) else len(rows)


def identity_consequence(diff: tuple[str, bool], epoch: Any, whose: str = "its") -> str:
    """The middle of a "folder changed since this state was saved (...)" refusal: what changed and what it does
    to the resumed epoch (``diff`` from ``ShardDataset._identity_diff``: its words, and whether the positions
    surely mean other samples)."""
    text, sure = diff
    if sure:
        return (f"{text}: re-sharded, samples of the split added, removed, replaced or reordered): {whose} positions "
                f"mean other samples now, so the rest of epoch {epoch} would repeat some samples and skip others")
    return (f"{text}): {whose} positions may mean other samples now, so the rest of epoch {epoch} might repeat some "
            f"samples and skip others; if only a modality was added or another split changed, they still mean the "
            f"same samples: load the state without its 'dataset' / 'datasets' entry")


class _ShardIndex:
    """What ``index.parquet`` says about each shard of a split: keys and, per key, members and sizes.

    Kept as Arrow columns (only the five the reader needs are read); a shard's rows become Python
    objects only when that shard is read. Writers put a shard's rows together, so a shard is usually
    a zero-copy slice of the table.
    """

    def __init__(self, root: Path | str, split: str | tuple[str, ...], storage_options: dict[str, Any] | None = None,
                 card: dict[str, Any] | None = None) -> None:
        import numpy as np

        # split and shard come dictionary-encoded from Parquet (half the read time of plain strings);
        # rows are selected in numpy: pyarrow's conversions from Python / numpy import pandas, which
        # costs seconds in every DataLoader worker forked for an epoch
        table = idx.load_index(root, columns=["key", "split", "shard", "members", "sizes"],
                               read_dictionary=["split", "shard"], storage_options=storage_options,
                               card=card).combine_chunks()
        self.table = table
        self.rows: dict[str, Any] = {}
        self._cache: dict[str, tuple[list[str], Any, Any, Any]] = {}
        self._plans: dict[str, IndexPlan | None] = {}
        self._column_plans: dict[tuple[str, tuple[str, ...]], ColumnPlan | None] = {}
        if not table.num_rows:
            return
        splits, shard = (_dictionary(table[c].chunk(0)) for c in ("split", "shard"))
        codes_wanted = _split_codes(splits.dictionary.to_pylist(), split)
        if not codes_wanted:
            return
        sel = np.flatnonzero(np.isin(_np(splits.indices), codes_wanted))  # this split's (these splits') rows
        codes = _np(shard.indices)[sel]
        shards = shard.dictionary.to_pylist()
        change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        first, last = np.concatenate([[0], change]), np.concatenate([change, [len(codes)]]) - 1
        if len(first) == len(set(codes[first].tolist())) and (sel[last] - sel[first] == last - first).all():
            # each shard's rows are contiguous (as writers put them): zero-copy slices, no gather
            for c, a, b in zip(codes[first].tolist(), sel[first].tolist(), sel[last].tolist()):
                self.rows[shards[c]] = slice(a, b + 1)
        else:
            order = np.argsort(codes, kind="stable")  # rows of one shard, in index order
            bounds = np.searchsorted(codes[order], np.arange(len(shards) + 1))
            for i, name in enumerate(shards):
                if bounds[i + 1] > bounds[i]:
                    self.rows[name] = sel[order[bounds[i] : bounds[i + 1]]]

    def _entries(self, shard: str) -> tuple[list[str], Any, Any, Any]:
        """(keys, keys Arrow array, members ListArray, sizes ListArray) of one shard, in index order."""
        if shard not in self._cache:
            rows = self.rows[shard]
            part = self.table.slice(rows.start, rows.stop - rows.start) if isinstance(rows, slice) else _take(self.table, rows)
            keys = part["key"].combine_chunks()
            self._cache[shard] = (keys.to_pylist(), keys, part["members"].combine_chunks(), part["sizes"].combine_chunks())
        return self._cache[shard]

    def keys(self, shard: str) -> list[str]:
        return self._entries(shard)[0] if shard in self.rows else []

    def row_keys(self, shard: str) -> list[str]:
        """The shard's keys in index order, without keeping them (:meth:`keys` caches them with the
        members and sizes, which a key selection at open does not need)."""
        if shard in self._cache:
            return self._cache[shard][0]
        rows = self.rows.get(shard)
        if rows is None:
            return []
        col = self.table["key"]
        part = col.slice(rows.start, rows.stop - rows.start) if isinstance(rows, slice) else _take(self.table.select(["key"]), rows)["key"]
        return part.to_pylist()

    def fields(self, shard: str) -> list[str]:
        """The fields whose members the index lists in the shard (one vectorised pass over its member names).

        Example:
            >>> import pyarrow as pa
            >>> index = _ShardIndex.__new__(_ShardIndex)
            >>> index.rows, index._cache = {"s": slice(0, 2)}, {"s": ([], None, pa.array([["a.png", "a.cls"], ["b.png"]]), None)}
            >>> index.fields("s")
            ['image', 'label']
        """
        import pyarrow.compute as pc

        if shard not in self.rows:
            return []
        names = pc.list_flatten(self._entries(shard)[2])
        exts = pc.unique(pc.replace_substring_regex(names, r"^[^.]*\.?", "")).to_pylist()
        return sorted({field_of(e) for e in exts if e})

    def members(self, shard: str) -> dict[str, list[str]]:
        if shard not in self.rows:
            return {}
        keys, _, members, _ = self._entries(shard)
        return dict(zip(keys, [m or [] for m in members.to_pylist()]))

    def sizes(self, shard: str) -> dict[str, list[int]]:
        """Per key, the sizes of the members :meth:`members` lists, in its order."""
        if shard not in self.rows:
            return {}
        keys, _, _, sizes = self._entries(shard)
        return dict(zip(keys, [z or [] for z in sizes.to_pylist()]))

    def prepare(self, shards: Sequence[str]) -> None:
        """Build the plans of the shards a reader is about to read in one vectorised pass (the
        numpy and Arrow calls are paid once, not once per shard). If the shards together are unusual
        (keys of several lengths, ...), nothing is built here and :meth:`plan` builds each alone."""
        import numpy as np

        todo = [sh for sh in dict.fromkeys(shards) if sh in self.rows and sh not in self._plans]
        if len(todo) < 2:
            return
        rows = [self.rows[sh] for sh in todo]
        if all(isinstance(r, slice) for r in rows) and all(a.stop == b.start for a, b in zip(rows, rows[1:])):
            part = self.table.slice(rows[0].start, rows[-1].stop - rows[0].start)  # in index order: no copy
        else:
            part = _take(self.table, np.concatenate([np.arange(r.start, r.stop) if isinstance(r, slice) else r for r in rows]))
        keys = part["key"].combine_chunks()
        members = part["members"].combine_chunks()
        whole = IndexPlan.build(keys.to_pylist(), keys, members, part["sizes"].combine_chunks())
        if whole is None:
            return
        samples = np.cumsum([0] + [_row_count(r) for r in rows])
        first = _np(members.offsets)[samples] - members.offsets[0].as_py()  # first member of each shard
        for i, sh in enumerate(todo):
            self._plans[sh] = whole.part(int(samples[i]), int(samples[i + 1]), int(first[i]), int(first[i + 1]))

    def plan(self, shard: str) -> IndexPlan | None:
        """The shard's members as the fast path needs them (built once), or None when the index
        entry is unusual (folders in keys, long names, duplicate keys, names not ``<key>.<ext>``)."""
        if shard not in self._plans:
            self._plans[shard] = IndexPlan.build(*self._entries(shard)) if shard in self.rows else None
        return self._plans[shard]

    def column_plan(self, shard: str, series: tuple[str, ...]) -> ColumnPlan | None:
        """The column-layout shard's :class:`ColumnPlan` for reading ``series`` (built once), or None
        where :meth:`plan` is None."""
        key = (shard, series)
        if key not in self._column_plans:
            plan = self.plan(shard)
            self._column_plans[key] = None if plan is None else ColumnPlan.build(plan, series)
        return self._column_plans[key]


_INDEXES: OrderedDict[tuple[Any, ...], _ShardIndex] = OrderedDict()
_INDEXES_KEPT = 8
#: open_dataset builds every shard's plan up front up to this many index rows (~25 ms and ~2 MB per
#: 20,000 samples of 4 members); larger splits build each reader's plans when it starts
_EAGER_PLAN_ROWS = 200_000
_INDEXES_LOCK = threading.Lock()


def shard_index(root: Path | str, split: str | tuple[str, ...], storage_options: dict[str, Any] | None = None,
                card: dict[str, Any] | None = None) -> _ShardIndex:
    """The split's :class:`_ShardIndex`, shared by every reader of the same ``index.parquet`` in this
    process (and by DataLoader workers forked from it).

    Keyed by the file's identity (device, inode, size, modification time): a dataset rewritten in
    place gets a new ``index.parquet`` (writes are atomic renames), hence a new entry. Reading the
    index and building the shard plans is ~40 ms per 20,000 samples, paid by every fresh reader and
    by every worker of every epoch before; litdata and webdataset readers start without it.
    A remote folder (``root`` a URL string) is read afresh each time: no cheap identity to key on;
    ``card``, its card as read already, saves a second fetch for the index's row-count check.
    """
    if isinstance(root, str):
        return _ShardIndex(root, split, storage_options, card)  # the card read already: one fetch less
    try:
        st = os.stat(Path(root) / idx.INDEX)
    except OSError:
        return _ShardIndex(Path(root), split)  # raises the reader's error naming the missing file
    key = (os.path.realpath(root), split, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    with _INDEXES_LOCK:
        found = _INDEXES.get(key)
        if found is not None:
            _INDEXES.move_to_end(key)
            return found
    made = _ShardIndex(Path(root), split)  # outside the lock: readers of other datasets go on
    with _INDEXES_LOCK:
        found = _INDEXES.setdefault(key, made)
        _INDEXES.move_to_end(key)
        while len(_INDEXES) > _INDEXES_KEPT:
            _INDEXES.popitem(last=False)
    return found


class IndexPlan:
    """One shard as the index describes it, for :func:`~mmdata.shards.tario.indexed_members`.

    ``keys`` (one per sample), ``layouts`` (the distinct extension tuples) and ``layout`` (per sample,
    an index into ``layouts``), flat member ``sizes``, the NUL-padded ``names`` block (members, longest name),
    the ``%011o\\0`` ``size_fields`` block (members, 12) when every size fits, and ``offsets``: the
    header offset of member i, plus the end-of-archive offset last.
    """

    def __init__(self, keys: list[str], layouts: list[tuple[str, ...]], layout: list[int], sizes: Any,
                 names: Any, size_fields: Any = None, offsets: Any = None) -> None:
        import numpy as np

        self.keys = keys
        self.layouts = layouts
        self.layout = layout
        self.sizes = sizes
        self.names = names
        self.max_size = int(sizes.max()) if len(sizes) else 0
        if size_fields is None and self.max_size < 8**11:
            # the "%011o\0" fields tarfile and mmdata write, built without a loop
            shifts = np.arange(30, -1, -3, dtype=np.int64)
            digits = ((sizes[:, None] >> shifts) & 7).astype(np.uint8)
            size_fields = np.zeros((len(sizes), 12), dtype=np.uint8)
            np.add(digits, 48, out=size_fields[:, :11])
        self.size_fields = size_fields
        if offsets is None:
            offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
            np.cumsum(512 + ((sizes + 511) // 512) * 512, out=offsets[1:])
        self.offsets = offsets
        self.memo: dict[str, Any] = {}  # indexed_members': the shard file last verified, member spans

    def part(self, a: int, b: int, ma: int, mb: int) -> IndexPlan:
        """Samples ``a:b`` (members ``ma:mb``) as a shard of their own: views, offsets from 0."""
        return IndexPlan(self.keys[a:b], self.layouts, self.layout[a:b], self.sizes[ma:mb], self.names[ma:mb],
                         None if self.size_fields is None else self.size_fields[ma:mb],
                         self.offsets[ma : mb + 1] - self.offsets[ma])

    @property
    def exts(self) -> list[tuple[str, ...]]:
        """The extension tuple of each sample."""
        return [self.layouts[i] for i in self.layout]

    @classmethod
    def build(cls, keys: list[str], key_array: Any, members: Any, sizes: Any) -> IndexPlan | None:
        """From Arrow columns, vectorised: checks that every member is ``<key>.<ext>`` of its row."""
        import numpy as np
        import pyarrow as pa

        if members.null_count or sizes.null_count or len(set(keys)) != len(keys):
            return None
        names = members.flatten()
        flat_sizes = sizes.flatten()
        if not len(names) or len(names) != len(flat_sizes) or flat_sizes.null_count or not pa.types.is_string(names.type):
            return None
        n = len(names)
        offs = np.frombuffer(names.buffers()[1], dtype=np.int32)[names.offset : names.offset + n + 1]
        data = np.frombuffer(names.buffers()[2], dtype=np.uint8)[offs[0] : offs[-1]]
        lengths = np.diff(offs)
        if lengths.max() >= 100 or (data == 47).any() or not data.all():
            return None  # long names (GNU / PAX records), folders, NULs: the streaming parser reads those
        # the (n, m) NUL-padded name block, m the longest name (the header's other 100 - m name bytes
        # must be NUL): one gather of m bytes per name from the string buffer, then the tails zeroed
        m = int(lengths.max())
        idx = (offs[:-1] - offs[0])[:, None] + np.arange(m, dtype=offs.dtype)
        block = np.empty((n, m), dtype=np.uint8)
        np.multiply(np.take(np.concatenate([data, np.zeros(m, np.uint8)]), idx), np.arange(m) < lengths[:, None],
                    out=block, casting="unsafe")
        counts = np.diff(_np(members.offsets))
        found = _layouts_fixed(block, lengths, key_array, counts)
        if found is None:
            found = _layouts_arrow(key_array, members, names)
        if found is None:
            return None
        return cls(keys, found[0], found[1], _np(flat_sizes).astype(np.int64, copy=False), block)


def _layouts_fixed(block: Any, lengths: Any, key_array: Any, counts: Any) -> tuple[list[tuple[str, ...]], list[int]] | None:
    """Layouts (distinct extension tuples) and each sample's layout when every key has the same length
    and every sample the same member count (the usual shard), checked and grouped in numpy.

    None when the shard is not like that (:func:`_layouts_arrow` decides) or a name is not
    ``<key>.<ext>`` of its row.
    """
    import numpy as np

    nk = len(key_array)
    koffs = np.frombuffer(key_array.buffers()[1], dtype=np.int32)[key_array.offset : key_array.offset + nk + 1]
    klen = np.diff(koffs)
    width, c = int(klen[0]), int(counts[0])
    if not 0 < width < 98 or c < 1 or not (klen == width).all() or not (counts == c).all():
        return None
    kb = np.frombuffer(key_array.buffers()[2], dtype=np.uint8)[koffs[0] : koffs[-1]].reshape(nk, width)
    rows = block.reshape(nk, c, block.shape[1])
    # the key, a dot (the key's first: WebDataset cuts the key there), then a non-empty extension
    if ((kb == 46).any() or not (rows[:, :, width] == 46).all() or not (lengths > width + 1).all()
            or not np.array_equal(rows[:, :, :width], np.broadcast_to(kb[:, None, :], (nk, c, width)))):
        return None
    w = int(lengths.max()) - width - 1
    exts = np.ascontiguousarray(rows[:, :, width + 1 : width + 1 + w]).reshape(nk, c * w)
    uniq, inverse = np.unique(exts.view(f"V{c * w}").ravel(), return_inverse=True)
    tuples = []
    for u in uniq:
        e = tuple(x.rstrip(b"\0").decode("utf-8") for x in np.frombuffer(u.tobytes(), dtype=f"S{w}"))
        if len(set(e)) != len(e):
            return None  # one extension twice in a sample
        tuples.append(e)
    return tuples, inverse.ravel().tolist()


def _layouts_arrow(key_array: Any, members: Any, names: Any) -> tuple[list[tuple[str, ...]], list[int]] | None:
    """:func:`_layouts_fixed` for any shard (keys of several lengths, samples with several member
    counts), with Arrow string kernels (no Python scalars handed to Arrow: see :class:`_ShardIndex`)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = pc.split_pattern(names, ".", max_splits=1)
    if not (np.diff(_np(parts.offsets)) == 2).all():
        return None  # a member without an extension
    flat = parts.flatten()
    even = np.arange(0, 2 * len(names), 2, dtype=np.int64)
    stems, exts = (flat.take(pa.Array.from_buffers(pa.int64(), len(even), [None, pa.py_buffer(even + i)])) for i in (0, 1))
    owner = key_array.take(pc.list_parent_indices(members))
    if not pc.all(pc.equal(stems, owner)).as_py() or not _np(pc.binary_length(exts)).all():
        return None
    # samples share a handful of member layouts ("cls,flac,jpg,txt"): one tuple per layout
    ext_list = exts.to_pylist()
    offs = (_np(members.offsets) - _np(members.offsets)[0]).tolist()
    seen: dict[tuple[str, ...], int] = {}
    layout = [seen.setdefault(tuple(ext_list[a:b]), len(seen)) for a, b in zip(offs, offs[1:])]
    tuples = list(seen)
    if any(len(set(e)) != len(e) for e in tuples):
        return None  # one extension twice in a sample
    return tuples, layout


class ColumnPlan:
    """One shard of a column-layout dataset as the index describes it, for reading its series' shards
    with :func:`~mmdata.shards.tario.indexed_members` (as a samples-layout shard is read) and zipping
    them by key without a Python step per member.

    ``keys`` and ``layout`` are the shard's :class:`IndexPlan`'s; ``layouts`` hold, per layout, the
    extensions of the series read, series by series in ``series`` order, each series' in the order its
    shard holds them (the order the streaming zip delivers them in); ``pick`` gives, per layout, the
    series (an index into ``series``) of each of those extensions; ``parts`` is one :class:`IndexPlan`
    per series (its members, in index order: names, sizes, header offsets in its own shard; ``memo``
    keeps the shard verified last); ``fields`` are the fields whose members the index lists here.
    """

    def __init__(self, keys: list[str], layouts: list[tuple[str, ...]], layout: list[int],
                 pick: list[tuple[int, ...]], parts: list[IndexPlan], fields: frozenset[str]) -> None:
        self.keys = keys
        self.layouts = layouts
        self.layout = layout
        self.pick = pick
        self.parts = parts
        self.fields = fields

    @classmethod
    def build(cls, plan: IndexPlan, series: Sequence[str]) -> ColumnPlan:
        """Split ``plan``'s members by series (vectorised; a loop over the few layouts only). Members of
        fields not in ``series`` are left out."""
        import numpy as np

        order = {s: i for i, s in enumerate(series)}
        codes: list[list[int]] = []  # per layout: the series of each member, -1 for a field not read
        layouts: list[tuple[str, ...]] = []
        pick: list[tuple[int, ...]] = []
        fields: set[str] = set()
        for exts in plan.layouts:
            c = [order.get(field_of(e), -1) for e in exts]
            fields.update(field_of(e) for e in exts)
            codes.append(c)
            # series by series; within a series the index order (a stable sort), which its shard keeps
            read = sorted((ci, j) for j, ci in enumerate(c) if ci >= 0)
            layouts.append(tuple(exts[j] for _, j in read))
            pick.append(tuple(ci for ci, _ in read))
        lengths = np.array([len(c) for c in codes], dtype=np.int64)
        table = np.array([ci for c in codes for ci in c], dtype=np.int64)
        first = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        which = np.asarray(plan.layout, dtype=np.int64)
        counts = lengths[which]
        # member m of sample i is position m - (first member of i) of layout[i]: its series from the table
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        member_series = table[np.repeat(first[which], counts) + np.arange(int(counts.sum())) - starts]
        parts = []
        for i in range(len(series)):
            sel = np.flatnonzero(member_series == i)
            parts.append(IndexPlan([], [], [], plan.sizes[sel], plan.names[sel],
                                   None if plan.size_fields is None else plan.size_fields[sel]))
        return cls(plan.keys, layouts, plan.layout, pick, parts, frozenset(fields))


def _empty_tar(path: str) -> bool:
    """Whether the local file starts with the end-of-archive block (a series shard without members: the
    streaming parser stops there and yields nothing)."""
    try:
        with open(path, "rb", buffering=0) as fh:
            return fh.read(tario.BLOCK) == bytes(tario.BLOCK)
    except OSError:
        return False


def check_unsized_state(positions: dict[int, int], readers: int, epoch: int, error: type[Exception],
                        warn: bool = True) -> None:
    """A mid-epoch state saved before mmdata recorded its number of readers (world size x DataLoader workers):
    refused with ``error`` when it holds positions of a reader this iteration does not have (another split
    of the epoch: the rest would repeat some samples and skip others); else a warning that it resumes
    exactly only with the number of readers it was saved with, which it does not say."""
    if max(positions, default=-1) >= readers:
        raise error(f"state was saved mid-epoch {epoch} by an older mmdata with positions for {max(positions) + 1}+ readers "
                    f"(world size x DataLoader workers) and this iteration has {readers}: the rest of the epoch would "
                    "repeat some samples and skip others. Resume with the num_workers and world size it was saved with, "
                    f"or start that epoch over ({{'epoch': {epoch}}})")
    if warn:
        warnings.warn(f"state saved mid-epoch {epoch} by an older mmdata, which did not record its number of readers "
                      f"(world size x DataLoader workers): it resumes exactly only with the number it was saved with "
                      f"(this iteration has {readers}); with another, samples repeat or are skipped", UserWarning,
                      stacklevel=4)


class ResumableEpochs:
    """Epochs and exact resume of a reader whose iterations split an epoch over readers (world size x
    DataLoader workers): an :class:`EpochClock` and, per reader, the positions consumed; and the
    ``collate_fn`` of the dataset's fields (``card``, ``modalities``). Its users
    (:class:`ShardDataset`, :class:`mmdata.shards.blend.BlendDataset`) set ``seed``, ``_clock``,
    ``_skip``, ``_skip_counts``, ``_skip_errors``, ``_skip_readers``, ``_skip_world``, ``_positions``, ``_readers``, ``_dist``
    and ``skipped`` and define ``samples_per_reader`` and ``_error_items``."""

    seed: int
    card: dict[str, Any] | None
    modalities: tuple[str, ...] | None
    _clock: EpochClock
    _skip: dict[int, int]
    _skip_counts: dict[int, dict[str, int]]  # per reader, the losses a loaded state had counted (load_state_dict)
    _skip_errors: dict[int, list[tuple[int, tuple[str, ...]]]]  # per reader, a loaded state's errors (place, entry)
    skipped: dict[str, int]  # losses of the iteration in progress or the last one (reason -> count)
    _skip_readers: int | None
    _skip_world: int | None
    _positions: dict[int, int]
    _readers: int | None
    board: Any  # the board of mmdata.loader's workers (set by it), else None
    _worker_board: SkipBoard | None  # its own, for a plain DataLoader's workers (see _posting)

    _dist: tuple[int, int] | None
    #: the clock's newest iteration word when this process's last iteration (not a DataLoader worker's share)
    #: ran to its end (its user asked past the last sample), else None: see :attr:`_pass_ended`
    _ended_word: int | None = None
    #: the clock's resume word (see EpochClock.publish) whose state this copy's resume fields hold (see _catch_up)
    _resume_word: int = 0

    @property
    def collate_fn(self) -> Callable[[Sequence[Sample]], Any]:
        """:func:`mmdata.collate` with this dataset's fields: every batch has a presence mask for each
        modality the dataset has — all False in a batch none of whose samples has it (a shard of clips
        without audio, one rank's batch under DDP), where plain ``collate_fn=mmdata.collate`` has no
        ``present["audio"]`` at all (distributed QA: ``KeyError: 'audio'``); ``label`` -1 and ``text`` empty
        there — and for image, audio and text (:data:`mmdata.types.MASKED_MODALITIES`; those ``modalities`` keeps)
        also where the dataset lacks them (a mask only, all False: no data). What :func:`mmdata.loader` does; for
        ``DataLoader(ds, collate_fn=ds.collate_fn)``. A blend's is the union of its datasets' fields.

        Example:
            >>> import tempfile, mmdata
            >>> from mmdata.testing import make_sample_folder
            >>> t = tempfile.mkdtemp()
            >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=4), t + "/ds", progress=False)
            >>> ds = mmdata.open_dataset(t + "/ds", modalities=["image", "audio"])
            >>> batch = ds.collate_fn([s.without("audio") for s in ds])
            >>> batch.present["audio"].tolist()
            [False, False, False, False]
        """
        import functools

        from mmdata.types import field_dtypes

        masks = tuple(m for m in MASKED_MODALITIES if self.modalities is None or m in self.modalities)
        return functools.partial(_collate_masked, fields=idx.dataset_fields(self.card, self.modalities), masks=masks,
                                 dtypes=field_dtypes(self.card, self.modalities) or None)

    def samples_per_reader(self, readers: int, epoch: int | None = None) -> list[int] | None:
        raise NotImplementedError

    def _error_items(self) -> list[tuple[int | None, tuple[str, ...]]]:
        """This iteration's errors in order, each ``(place, entry)``: the first position of the reader's
        stream whose record holds it (None: none yet) — what a state saved at a position carries."""
        raise NotImplementedError

    def _set_clock(self, epoch: int) -> None:
        self._clock.set(epoch)
        board = getattr(self, "_worker_board", None)
        if board is not None and get_worker_info() is None:
            board.bump()  # the workers' next posts are newer than any before, whatever their generation

    def _posting(self, gen: int) -> Any:
        """Where the iteration starting now (generation ``gen`` of the clock) posts its counts: the board
        of mmdata.loader's workers, else in a DataLoader worker this dataset's own board (read by
        ``skipped`` / ``errors`` in the main process), else nowhere — and this process's own iteration is
        then the newest: what workers posted before is cleared."""
        if self.board is not None:
            return self.board
        board = getattr(self, "_worker_board", None)
        if board is None:
            return None
        info = get_worker_info()
        if info is None:
            board.clear()
            return None
        if info.id >= board.slots and gen == 0:
            warnings.warn(f"DataLoader worker {info.id}: a dataset's own board holds the losses of {board.slots} workers; "
                          f"this one's are missing from skipped / errors in the main process (its samples' "
                          f"meta['skipped'] carry those before each of them, and none after its last sample; "
                          f"mmdata.loader counts any number of workers)", UserWarning, stacklevel=3)
        board.stamp = (board.sets() << 32) | (gen + 1)  # the workers of one iteration share the generation
        return board

    def _from_workers(self) -> tuple[dict[str, int], list[Any]] | None:
        """In the main process of a plain DataLoader with workers: what they posted of their newest
        iteration (counts, per reader errors); None elsewhere, or when this process read last."""
        board = getattr(self, "_worker_board", None)
        if board is None or self.board is not None or get_worker_info() is not None:
            return None
        return board.latest()

    def _errors_upto(self, positions: Mapping[int, int]) -> dict[int, list[list[Any]]]:
        """The errors (``[place, *entry]``) of this process's reader in the record of ``positions``."""
        rid = next(iter(self._positions), None)
        if rid is None or len(self._positions) != 1:
            return {}
        upto = positions.get(rid, 0)
        kept = [[p, *e] for p, e in self._error_items() if p is not None and p <= upto]
        return {rid: kept} if kept else {}

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader pickles the dataset for spawned workers when iteration starts: the rank known
        # now (after init_process_group) is what the worker must use
        state = dict(self.__dict__)
        state["_dist"] = dist_rank_world() or self._dist
        return state

    @property
    def _pass_ended(self) -> bool:
        """This process's last iteration (not a DataLoader worker's share) ran to its end (its user asked past
        the last sample), and no iteration of this dataset started since (in this process or in DataLoader
        workers sharing its clock): its state is the next epoch's start, as litdata's. False again when an
        iteration starts, and on set_epoch / load_state_dict."""
        return self._ended_word is not None and self._clock.newest() == self._ended_word

    @_pass_ended.setter
    def _pass_ended(self, ended: bool) -> None:
        self._ended_word = self._clock.newest() if ended else None

    @property
    def epoch(self) -> int:
        """The epoch the iteration in progress reads; once an iteration ran to its end, the epoch the next one
        reads (what :meth:`state_dict` holds then) — in a loop, ``ds.epoch`` before ``for s in ds`` is the
        epoch that loop reads. An iteration dropped early (``break``) still says its own epoch, which
        ``state_dict`` resumes (a fresh iteration without ``load_state_dict`` reads the next). See ``set_epoch``.

        Read through a plain ``torch.utils.data.DataLoader(ds, num_workers=N)`` with N > 0, the main process
        does not see a pass end (the workers run their shares out, not knowing whether the last batch was
        consumed): between passes ``ds.epoch`` is then the newest started epoch, one under the next pass's.
        :func:`mmdata.loader` with workers tracks its passes and says the next one.

        Example:
            >>> import tempfile, mmdata
            >>> from mmdata.testing import make_sample_folder
            >>> t = tempfile.mkdtemp()
            >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=4), t + "/ds", progress=False)
            >>> ds = mmdata.open_dataset(t + "/ds")
            >>> read = []
            >>> for _ in range(3):
            ...     before = ds.epoch
            ...     read.append((before, {s.meta["epoch"] for s in ds}))
            >>> read
            [(0, {0}), (1, {1}), (2, {2})]
        """
        return self._clock.current() + (1 if self._pass_ended else 0)

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.set_epoch(value)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch of the next iteration (new shard order / shuffle); clears a pending resume.

        Without calls to ``set_epoch`` each new iteration advances the epoch by one.
        """
        self._set_clock(epoch)
        self._pass_ended = False
        self._skip = {}
        self._skip_counts = {}
        self._skip_errors = {}
        self._skip_readers = None
        self._skip_world = None
        self._positions = {}
        self._publish_resume()

    def _publish_resume(self) -> None:
        """After ``set_epoch`` / ``load_state_dict``: in the owning process, publish what the next iteration
        resumes through the clock, for persistent DataLoader workers whose copies were made before (see
        :meth:`_catch_up`). A DataLoader worker's own call (torchdata's StatefulDataLoader hands each worker its
        state) decides its copy's next iteration alone: its copy is then up to date with what was published."""
        if get_worker_info() is not None:
            self._resume_word = self._clock.resume_word()
            return
        state = None
        if self._skip or self._skip_counts or self._skip_errors:
            state = {"epoch": self._clock.explicit, "positions": {str(k): v for k, v in self._skip.items()},
                     "skipped": {str(r): c for r, c in self._skip_counts.items()},
                     "errors": {str(r): [[p, *e] for p, e in c] for r, c in self._skip_errors.items()},
                     "readers": self._skip_readers, "world": self._skip_world}
        self._resume_word = self._clock.publish(state)

    def _catch_up(self) -> None:
        """An iteration starting in a DataLoader worker whose copy of the dataset predates the owning
        process's last ``load_state_dict`` / ``set_epoch`` (a persistent worker: QA, the saved positions
        stayed in the main process and the resumed pass read the whole epoch again): take what that call
        published, as it set it there — the clock's epoch is shared already. A worker started after the
        call inherited it (same word: nothing to do); so did the owning process's own iterations."""
        if get_worker_info() is None:
            return
        if self._clock.resume_word() == self._resume_word:
            return
        word, state = self._clock.published()
        self._pass_ended = False
        self._take_resume(state or {})
        self._resume_word = word

    def _take_resume(self, state: Mapping[str, Any]) -> None:
        """The positions, losses, errors and readers of a (checked) state: what the next iteration resumes."""
        self._skip = {int(k): int(v) for k, v in state.get("positions", {}).items()}
        self._skip_counts = {int(r): {str(k): int(v) for k, v in c.items()} for r, c in (state.get("skipped") or {}).items()}
        self._skip_errors = {int(r): [(int(e[0]), tuple(str(x) for x in e[1:])) for e in c]
                             for r, c in (state.get("errors") or {}).items()}  # absent from states of older versions
        self._positions = dict(self._skip)
        saved = state.get("readers")
        self._skip_readers = int(saved) if saved is not None else None
        self._skip_world = state.get("world")  # the saving process's world size (other_ranks_state)

    def state_dict(self) -> dict[str, Any]:
        """Position of the stream: ``{"seed", "epoch", "positions": {reader: next_position}, "readers"}``
        (``readers``: world size x DataLoader workers of the iteration, once one has started here) and,
        when this process's reader lost samples so far (``on_error="skip"``), ``skipped``: ``{reader:
        {reason: count}}`` and ``errors``: ``{reader: [[place, shard, key, message], ...]}`` (the first 100
        of ``errors`` up to the position; ``place``: the position from which on a record holds it) — a
        resume passes over what was read uncounted and starts from these.

        Once an iteration in this process (not in a DataLoader worker, whose share is only part of the
        epoch) has ended — its consumer asked past the last sample: a ``for`` loop, torchdata's
        StatefulDataLoader with ``num_workers=0`` — the state is the next epoch's start,
        ``{"seed", "epoch": epoch + 1, "positions": {}}``: a loop that saves after its epoch resumes with the
        next one, as litdata's StreamingDataset does. A state saved at the last sample, before the
        iteration ended, still resumes that epoch (its rest is empty; see :meth:`load_state_dict`).

        In the main process of a plain DataLoader with workers the positions are the workers' (in their
        copies of the dataset, read ahead of the loop): this object holds none of them, and a
        ``UserWarning`` says what resumes instead (:func:`mmdata.loader`, torchdata's StatefulDataLoader,
        or :meth:`ShardDataset.state_from_positions` from the samples consumed)."""
        self._warn_workers_state()
        if self._pass_ended:
            return {"seed": self.seed, "epoch": self.epoch, "positions": {}}  # the next epoch (see epoch)
        state: dict[str, Any] = {"seed": self.seed, "epoch": self.epoch, "positions": dict(self._positions)}
        if self._readers is not None:
            state["readers"] = self._readers
        world = (dist_rank_world() or self._dist or (0, 1))[1]
        if world > 1 and self._positions:  # whose positions these are: this rank's readers' (other_ranks_state)
            state["world"] = world
        counts = self._state_counts()
        if counts and len(self._positions) == 1:
            state["skipped"] = {next(iter(self._positions)): counts}
        errors = self._errors_upto(self._positions)
        if errors:
            state["errors"] = errors
        return state

    def _warn_workers_state(self) -> None:
        board = getattr(self, "_worker_board", None)
        if board is None or self.board is not None or get_worker_info() is not None or not board.workers_newer():
            return
        warnings.warn(
            f"state_dict() in the main process of a plain DataLoader with workers: the positions are the workers' "
            f"(in their copies of the dataset, read ahead of the loop); this object has none of that iteration, so "
            f"its state would start epoch {self.epoch} over (or resume where this process last read) and repeat "
            f"samples. For an exact resume with workers use mmdata.loader(...) or torchdata's StatefulDataLoader "
            f"(their state_dict()), or build the state from the samples the loop consumed: "
            f"ShardDataset.state_from_positions(seed, epoch, {{meta['reader']: meta['position'] + 1}}, "
            f"readers=num_workers x world size)", UserWarning, stacklevel=3)

    def _state_counts(self) -> dict[str, int]:
        """The losses before the stream's position (``skipped`` unless a read-ahead counted later ones)."""
        return dict(self.skipped)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration is epoch ``state["epoch"]`` and skips what each reader already yielded.

        A state saved mid-epoch by another number of readers (``readers``: world size x DataLoader
        workers) is refused when the iteration starts (ShardError): its positions count along other
        shares of the epoch, so it would repeat some samples and skip others. One saved at the end of
        the epoch resumes with any number (the rest of that epoch is empty). A state without ``readers``
        (saved before mmdata recorded them) is refused when it holds positions of more readers than the
        iteration has, and otherwise taken as it is with a warning (:func:`check_unsized_state`).
        """
        state = expect_state(state, "state", error=ShardError)  # fuzz QA: KeyError / islice errors from inside
        if state.get("seed", self.seed) != self.seed:
            raise ShardError(f"state was saved with seed {state.get('seed')}, this dataset has seed {self.seed}")
        self._set_clock(int(state["epoch"]))
        self._pass_ended = False
        self._take_resume(state)
        # persistent DataLoader workers hold copies made before this call: they take it from the clock
        self._publish_resume()

    def _resumed_counts(self, rid: int, skip: int) -> dict[str, int]:
        """The losses reader ``rid`` had counted before a resume point ``skip`` (what it passes over uncounted)."""
        counts = self._skip_counts.pop(rid, {})
        return dict(counts) if skip else {}

    def _resumed_errors(self, rid: int, skip: int) -> list[tuple[int, tuple[str, ...]]]:
        """The errors (place, entry) reader ``rid`` had met before a resume point ``skip`` (see :meth:`state_dict`)."""
        errors = self._skip_errors.pop(rid, [])
        return list(errors) if skip else []

    def _resume_skip(self, rid: int, n: int, epoch: int) -> int:
        """What reader ``rid`` of ``n`` passes over on a resume (see :meth:`load_state_dict`)."""
        saved = self._skip_readers
        if saved is None and any(v > 0 for v in self._skip.values()):
            check_unsized_state(self._skip, n, epoch, ShardError, warn=rid == 0)
        if saved is None or saved == n or not any(v > 0 for v in self._skip.values()):
            if isinstance(self, ShardDataset) and any(v > 0 for v in self._skip.values()):  # every reader: all raise
                rank, world = dist_rank_world() or self._dist or (0, 1)
                other = other_ranks_state(self._skip, self._skip_world or 1, rank, world, max(1, n // world), epoch)
                if other is not None:  # ranks of a plain dataset do not step together: no end to infer
                    raise ShardError(other)
                check_positions(self._skip, self.listed_per_reader(n, epoch), epoch, redact(str(self.root)), ShardError)
            return self._skip.get(rid, 0)
        try:
            ends = self.samples_per_reader(saved, epoch)
        except (TypeError, ValueError):
            ends = None
        if ends is not None and all(self._skip.get(r, 0) >= e for r, e in enumerate(ends)):
            return (self.samples_per_reader(n, epoch) or [0] * n)[rid]  # the epoch was over: so it is here
        raise ShardError(
            f"state was saved mid-epoch {epoch} with {saved} reader(s) (world size x DataLoader workers) and this "
            f"iteration has {n}: its positions mean other samples here, so the rest of the epoch would repeat some "
            f"samples and skip others. Resume with the same num_workers and world size, or start that epoch over: "
            f"load_state_dict({{'seed': {self.seed}, 'epoch': {epoch}}})")


def other_ranks_state(positions: dict[int, int], saved_world: int, rank: int, world: int, workers: int,
                      epoch: int) -> str | None:
    """Why a mid-epoch state cannot resume this rank, or None: a state holds the positions of the readers
    of the process that saved it (rank ``r``'s readers are ``r * workers ... (r + 1) * workers - 1``), so
    one saved in a world of another size, or holding another rank's readers, would start this rank's readers
    at 0 (distributed QA: a Lightning checkpoint holds rank 0's loader state; loaded on every rank, rank 1
    replayed its batches and samples were lost, without a word)."""
    mine = range(rank * workers, (rank + 1) * workers)
    others = sorted(r for r, p in positions.items() if p > 0 and r not in mine)
    # one process: a reader beyond it is check_positions'; every reader's positions (a whole epoch's, as a
    # loader rewrites an epoch that was over) include this rank's
    if saved_world == world and (world == 1 or not others or any(r in mine for r in positions)):
        return None
    why = (f"in a world of {plural(saved_world, 'process', 'processes')} and this is rank {rank} of {world}"
           if saved_world != world else
           f"by another rank: it holds positions of readers {others}, and rank {rank}'s readers are {list(mine)}")
    return (f"state was saved mid-epoch {epoch} {why}; each rank's state holds only its own readers' positions, so "
            f"the rest of the epoch would repeat some samples and skip others here. Save and load each rank's own "
            f"state_dict() (one saved after the epoch's loop ended holds no positions and resumes anywhere; a "
            f"Lightning checkpoint of a plain loader, or of an older mmdata's DataModule, holds rank 0's only: "
            f"mmdata.lightning.DataModule's checkpoints hold every rank's), or start that "
            f"epoch over: load_state_dict({{'epoch': {epoch}}})")


def check_positions(positions: dict[int, int], ends: list[int] | None, epoch: int, where: str,
                    error: type[Exception]) -> None:
    """A resume state's positions against the epoch's shares ``ends`` (the samples the index lists per
    reader; None: not known): each reader's position at most its share (fuzz QA: a position past it resumed
    an empty epoch, losing the rest of it without a word), and no reader beyond them."""
    if ends is None:
        return
    for r, p in sorted(positions.items()):
        if r >= len(ends) or p > ends[r]:
            share = f"its share is {ends[r]} samples" if r < len(ends) else f"the epoch is read by {plural(len(ends), 'reader')}"
            raise error(f"state: position {p} of reader {r} in epoch {epoch} does not fit {where} ({share}): a state "
                        f"of another dataset, split or filter? Resume with the reader it was saved from, or start that "
                        f"epoch over: load_state_dict({{'epoch': {epoch}}})")


def summed_counts(*counts: dict[str, int]) -> dict[str, int]:
    """Loss counts (reason -> samples) added up."""
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + int(v)
    return total


class ShardDataset(ResumableEpochs, IterableDataset):  # type: ignore[type-arg]
    """An IterableDataset of :class:`~mmdata.Sample` over shards (see the module docstring).

    Use :func:`open_dataset` to create one.
    """

    def __init__(self, path: str | Path | Sequence[Any], *, split: str | Sequence[str] = "train", modalities: Sequence[str] | None = None,
                 shuffle: bool = False, seed: int = 0, epoch: int = 0, on_error: str = "raise",
                 allow_pickle: bool = False, required: Sequence[str] | None = None, decode: bool = True,
                 buffer_size: int = 512, partition: bool = True, max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
                 image_max_size: tuple[int, int] | None = None, image_alpha: bool = False, decode_threads: int = 0,
                 storage_options: dict[str, Any] | None = None, keys: Iterable[str] | None = None,
                 audio_max_frames: AudioFrames | None = None,
                 photo_fields: Iterable[str] = ()) -> None:
        # every argument checked here, before anything is read: a wrong one names itself now, not as
        # "'<' not supported" or "high <= 0" once iteration starts (in a DataLoader worker)
        if on_error not in ON_ERROR:
            raise ShardError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        splits = split_names(split)
        if storage_options is not None and not isinstance(storage_options, Mapping):
            raise ShardError(f"storage_options: expected a dict of fsspec options or None, got {storage_options!r}")
        reset_large_image_warning()  # a large image is said once per dataset, not once a process (QA36 notebook #3)
        reset_shape_warnings()  # likewise the arrays' shape-mix warning (QA36 review)
        self.split: str | tuple[str, ...] = split if isinstance(split, str) else splits  # as given (a list: a tuple)
        self.splits = splits  # the split names read, in order
        self.modalities = expect_names(modalities, "modalities", error=ShardError)  # "image": one name, not letters
        if self.modalities is not None and "label" not in self.modalities:
            # the label is the target, not an input to choose, as mmdata.loader keeps it: modalities=["iq"] gave
            # collate_fn batches without labels, unsaid (QA38 C #8, rv1 #6)
            self.modalities = (*self.modalities, "label")
        self.shuffle = expect_bool(shuffle, "shuffle", error=ShardError)  # "no" is truthy: refused
        self.seed = expect_int(seed, "seed", error=ShardError)
        self.on_error = on_error
        self.allow_pickle = expect_bool(allow_pickle, "allow_pickle", error=ShardError)
        self.required = expect_names(required, "required", error=ShardError) or ()
        self.decode = expect_bool(decode, "decode", error=ShardError)
        self.buffer_size = expect_int(buffer_size, "buffer_size", minimum=1, error=ShardError, unit="samples")
        self.partition = expect_bool(partition, "partition", error=ShardError)
        self.max_member_bytes = expect_int(max_member_bytes, "max_member_bytes", minimum=1, error=ShardError,
                                           unit="bytes")
        self.image_max_size = expect_size(image_max_size, "image_max_size", error=ShardError)
        self.image_alpha = expect_bool(image_alpha, "image_alpha", error=ShardError)
        self.audio_max_frames = _expect_frames(audio_max_frames)
        # named image fields decoded as photos (a recipe's image targets), not map values (QA39 ecommerce #1)
        # a string is one name, not its letters (QA39 review codecs #3); checked against the fields in _check_modalities
        self.photo_fields = frozenset(expect_names(photo_fields, "photo_fields", error=ShardError) or ())
        self.decode_threads = expect_int(decode_threads, "decode_threads", minimum=0, error=ShardError)
        expect_int(epoch, "epoch", minimum=0, error=ShardError)
        self.storage_options = dict(storage_options) if storage_options else None
        self.card: dict[str, Any] | None = None
        self._classes: int | None = None
        self.root: Path | str | None = None  # a local folder, or the URL of a remote one
        self.layout = "samples"
        self.series: list[str] = []
        self._index: _ShardIndex | None = None
        self._listed: frozenset[str] = frozenset()  # the shards the card lists for the split(s)
        # (shard cell, keys) of the index rows of the split in no shard the card lists (see _index_rows_unlisted)
        self._unlisted: list[tuple[str, list[str]]] = []
        self._shard_sizes: list[int] | None = None  # samples per shard from the index (samples_per_reader)
        self._raw_plans: dict[tuple[str, ...], tuple[tuple[str, ...] | None, tuple[str, str] | None]] = {}
        _check_path(path)
        if isinstance(path, (str, Path)) and protocol(path) == "file" and idx.dataset_marks(local_path(path)):
            path = unless_file_url(path)  # a dataset folder given as a file:// URL (or file:/..., as a Path makes it)
        if isinstance(path, (str, Path)) and str(path).startswith("pipe:"):  # "pipe:aws s3 cp s3://b/x -": no folder
            check_sources_exist(path, ShardError)
        # the folder (shards) opened now, not what the relative name names after a later chdir
        path = absolute_sources(path)
        remote_folder = is_folder_url(path)
        local_folder = isinstance(path, (str, Path)) and not is_remote(path) and os.path.isdir(path)
        # a dataset folder by what is there: its card, index or shards table, or a job's journal — never
        # read as bare shards, whatever a job writing it is doing meanwhile (see idx.dataset_marks)
        as_folder = remote_folder or (local_folder and idx.dataset_marks(path))
        self._folder_read = False  # bare shards listed from a local folder: keys are checked across shards
        if not as_folder:
            path = _split_url_list(path)
            check_sources_exist(path, ShardError)  # a local name that does not exist: now, not when read
            self.shards, self._folder_read = _bare_sources(path, splits, self.storage_options)
            # a job started (or finished) writing the folder while its tars were listed: its folder after all
            as_folder = local_folder and idx.dataset_marks(path)
        self._stamp: tuple[Any, ...] | None = None  # dataset.json + index.parquet as opened (idx.folder_stamp)
        if as_folder:
            for _ in range(3):
                before = None if remote_folder else idx.folder_stamp(path)
                self._open_folder(path, remote_folder)
                self._stamp = None if remote_folder else idx.folder_stamp(path)
                if self._stamp == before:
                    break
            else:
                raise ShardError(f"{redact(str(path))}: dataset.json / index.parquet changed each time it was opened: a job is "
                                 f"writing this folder; open it once that job has finished")
        self.shards = _once(self.shards, path)
        self.keys = expect_keys(keys)  # the selection (None: every sample of the split)
        if self.keys is not None:
            self._select(path)
        self._skipped: dict[str, int] = {}  # of the iteration in progress or the last one (see __iter__)
        self._errors: list[tuple[str, str, str]] = []
        # per entry of errors, where the stream met it: (share, position of the item), see _note_error
        self._error_tags: list[tuple[int, int]] = []
        self._share = 0  # iter_share calls so far: the first part of a tag
        self._at = 0  # the position of the item the stream is pulling (its losses are tagged with it)
        self._rid = 0  # the reader of the share in progress
        self._noted = 0  # entries added to errors so far (a blend places those it has not seen)
        self.board: SkipBoard | None = None  # set by mmdata.loader: worker counts reach the main process
        # a plain DataLoader's workers post here (skipped / errors read it in the main process); its pages
        # cost nothing until a worker posts
        self._worker_board: SkipBoard | None = SkipBoard(WORKER_SLOTS, shared=False)
        self._post_to: Any = None  # the board of the iteration in progress (see _posting)
        self._skip: dict[int, int] = {}
        self._skip_counts: dict[int, dict[str, int]] = {}
        self._skip_errors: dict[int, list[tuple[int, tuple[str, ...]]]] = {}
        self._streamed: dict[str, int] = {}  # the losses the stream met (not decode losses), see _iter_decoded
        self._after: dict[str, int] = {}  # the losses of samples yielded (the recipe refused them), see _count
        self._record: dict[str, int] | None = None  # meta["skipped"] of the last decoded sample yielded
        self._skip_readers: int | None = None  # readers of a loaded state (load_state_dict)
        self._skip_world: int | None = None  # the world size of a loaded state
        self._readers: int | None = None  # readers of the iteration in progress or the last one
        self._positions: dict[int, int] = {}
        self._quiet = False  # True while a resume passes over what the saved run read (and counted)
        self._fields_twice: dict[tuple[str, ...], tuple[str, str] | None] = {}
        self._clock = EpochClock(epoch)
        self._dist: tuple[int, int] | None = None  # recorded when sent to a worker (see __getstate__)
        self.rotation = 0

    def _open_folder(self, path: Any, remote_folder: bool) -> None:
        """Read a dataset folder's card and index (the split's shards, the plans)."""
        # the index is read with pyarrow in every reader process: import it here, so that DataLoader
        # workers forked each epoch find it imported instead of importing it (~360 modules) again
        import pyarrow.compute  # noqa: F401
        import pyarrow.parquet  # noqa: F401

        self.root = str(path).rstrip("/") if remote_folder else Path(path)
        self.card = idx.load_card(self.root, self.storage_options)
        # decoded labels are checked against the card's classes: a shard edited apart from its
        # index would otherwise hand the model a target it has no output for
        self._classes = self.card.get("num_classes")
        self.layout = self.card.get("layout", "samples")
        have = self.card.get("splits", {})
        for name in self.splits:
            if name not in have:
                raise ShardError(f"{redact(str(path))}: no split {name!r}; it has {sorted(have)}")
        # a list of splits is one split: the shards of each, in the order given
        self.shards = [idx.check_shard_name(path, sh) for name in self.splits for sh in have[name].get("shards") or []]
        self._listed = frozenset(self.shards)
        self._check_modalities(path)
        if self.layout == "samples":
            # read here, once per process (shard_index caches it): DataLoader workers forked for
            # each epoch then start with the index and the plans instead of reading them again
            self._index = self._shard_index()
            assert self._index is not None
            if self._index.table.num_rows <= _EAGER_PLAN_ROWS:
                self._index.prepare(self.shards)
        if self.layout == "columns":
            fields = [idx.check_shard_name(path, f, "column series") for f in self.card.get("fields") or []]
            self.series = [f for f in fields if self.modalities is None or f in self.modalities]
            if not self.series:
                raise ShardError(f"{redact(str(path))}: none of the requested modalities {self.modalities} is stored; "
                                 f"it has {fields}")

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_index"] = None  # a spawned worker reads the index itself (not a copy of every plan in the pickle)
        return state

    def _select(self, path: Any) -> None:
        """``keys=``: count the selected samples of each shard (what ``samples_per_reader`` and the stride over
        samples count), drop the shards holding none, and raise naming a few keys the split lacks."""
        assert self.keys is not None
        if self.root is None:
            raise ShardError(f"{redact(str(path))}: keys= selects samples by the index of a dataset folder (dataset.json + "
                             f"index.parquet); bare shards have none (filter the samples as they come, or shard "
                             f"them into a dataset folder first: mmdata shard SHARDS OUT)")
        index = self._shard_index()
        assert index is not None
        counts: dict[str, int] = {}
        found: set[str] = set()
        for sh in self.shards:
            mine = [k for k in index.row_keys(sh) if k in self.keys]
            counts[sh] = len(mine)
            found.update(mine)
        missing = sorted(self.keys - found)
        if missing:
            where = self._where(missing[:5])
            shown = ", ".join(f"{k!r}{self._place(*where[k]) if k in where else ''}" for k in missing[:5])
            names = self.splits[0] if len(self.splits) == 1 else list(self.splits)
            # a sample's own (source) key where the index rewrote it (non-ASCII, too long): name the key to pass
            # instead of "not in split" (QA38 F #1)
            source = self._source_keys([k for k in missing if k not in where][:5])
            said = "; ".join(f"{k!r} is the source_key of {', '.join(f'{key!r} (split {sp!r})' for key, sp in rows[:3])}"
                             + (f" and {len(rows) - 3} more" if len(rows) > 3 else "") for k, rows in source.items())
            hint = (f". {said}: keys= takes index.parquet's 'key' column, which rewrote these; pass those keys "
                    f"(map yours with index.parquet's source_key column)") if source else ""
            raise ShardError(f"{redact(str(path))}: {len(missing)} of the {len(self.keys)} keys= are not in split {names!r}: "
                             f"{shown}{', ...' if len(missing) > 5 else ''} (keys are index.parquet's 'key' column "
                             f"of {'that split' if len(self.splits) == 1 else 'those splits'}){hint}")
        self.shards = [sh for sh in self.shards if counts[sh]]  # a shard with nothing selected is not opened
        self._shard_sizes = [counts[sh] for sh in self.shards]

    def _where(self, keys: list[str]) -> dict[str, tuple[str, Any]]:
        """The split and shard index.parquet puts each of ``keys`` in, for those it lists (for a message)."""
        index = self._shard_index()
        if index is None or not index.table.num_rows:
            return {}
        want = set(keys)
        table = index.table
        col, splits = table["key"].to_pylist(), table["split"].to_pylist()
        shards = table["shard"].to_pylist() if "shard" in table.column_names else [None] * len(col)
        return {k: (str(sp), sh) for k, sp, sh in zip(col, splits, shards) if k in want}

    def _source_keys(self, keys: list[str]) -> dict[str, list[tuple[str, str]]]:
        """The rows whose ``source_key`` is one of ``keys`` (source key -> [(key, split)]), for a message."""
        if not keys or self.root is None:
            return {}
        import pyarrow as pa
        import pyarrow.compute as pc

        try:  # the error path only: the reader's index holds no source_key
            table = idx.load_index(self.root, storage_options=self.storage_options, card=self.card)
        except (OSError, ShardError):
            return {}
        if "source_key" not in table.column_names:
            return {}
        hit = table.filter(pc.is_in(table["source_key"], value_set=pa.array(keys, pa.string())))
        out: dict[str, list[tuple[str, str]]] = {}
        for src, key, sp in zip(*(hit[c].to_pylist() for c in ("source_key", "key", "split"))):
            if key != src:
                out.setdefault(src, []).append((key, str(sp)))
        return out

    def _place(self, split: str, shard: Any) -> str:
        """Where index.parquet puts a ``keys=`` key this split lacks: another split, or (its row damaged or
        the card's shard list short) a shard the card does not list for this split."""
        if split not in self.splits:
            return f" (in split {split!r})"
        return (f" (index.parquet puts it in split {split!r}, shard {shard!r}, which the card does not list for "
                f"that split: run mmdata verify)")

    def _check_fresh(self) -> None:
        """Raise when the dataset folder changed since this object opened it (re-sharded, a modality added
        or replaced: a new card and index): the shards would disagree with the index it holds (one stat of
        dataset.json and index.parquet; a remote folder is not checked)."""
        if self._stamp is None or self.root is None:
            return
        now = idx.folder_stamp(self.root)
        # an index gone since the open is no new job's (a job replaces it, never removes it): this object
        # reads from the index it holds, as DataLoader workers forked from it do
        if now is not None and (now[0] != self._stamp[0] or (now[1] is not None and now[1] != self._stamp[1])):
            # the stamps cannot tell a re-shard from add_modality: the message names both
            state = ("a job is writing it now: dataset.json is missing" if now[0] is None else
                     "re-sharded, or a modality added or replaced: dataset.json / index.parquet changed")
            blended = getattr(self, "_blend_name", None)  # set by mmdata.blend: the blend is what to open again
            remedy = (f"open the blend again (mmdata.blend(...) / mmdata.loader({{...}}) / a new DataModule); this blend "
                      f"holds dataset {blended!r}'s old index" if blended is not None else
                      "open it again (mmdata.open_dataset / mmdata.loader); this object holds the old index")
            of = f" (dataset {blended!r} of a blend)" if blended is not None else ""
            raise ShardError(f"{redact(str(self.root))}{of}: the dataset folder changed since it was opened ({state}): "
                             f"{remedy}")

    def _check_modalities(self, path: Any) -> None:
        """A requested name that is neither a field the dataset stores nor a standard modality
        (``image``, ``audio``, ``text``, ``label``: absent ones are data, all-missing presence masks) is a
        typo: raise naming the fields it has (from the card, else the index). Bare shards have no list
        to check against. The same for ``required`` — a typo there would drop (or fail on) every sample —
        and a required name that ``modalities`` leaves out (no sample could have it)."""
        if self.modalities is not None and self.required:
            out = [r for r in self.required if r not in self.modalities]
            if out:
                raise ShardError(f"{redact(str(path))}: required modalities {out} are not among modalities "
                                 f"{list(self.modalities)}: "
                                 f"no sample would have them; add them to modalities")
        if (self.modalities is None and not self.required and not self.photo_fields) or self.card is None:
            return
        have = set(idx.dataset_fields(self.card))
        if not have and self.layout == "samples":
            import pyarrow.compute as pc

            members = idx.load_index(self.root, columns=["members"], storage_options=self.storage_options)["members"]
            names = pc.unique(pc.list_flatten(members.combine_chunks())).to_pylist() if members.length() else []
            have = {field_of(n.split(".", 1)[1]) for n in names if n and "." in n}
        for what, names in (("modalities", self.modalities or ()), ("required modalities", self.required)):
            unknown = [m for m in names if m not in have and m not in _STANDARD_FIELDS]
            if unknown and have:
                raise ShardError(f"{redact(str(path))}: unknown {what} {unknown}; choose from {sorted(have)}")
        # a photo field's name is the field's whole name, extension included ('image2.gif'): 'image2' matched
        # nothing and the view stayed palette indices, unsaid (QA39 review codecs #3). A name that is a field's
        # name less its extension is a mistake: refused. Another unknown name is warned of, not refused: the
        # loader, preview and augment pass a recipe's image targets, and one recipe may serve datasets of which
        # only some hold that view ({name: folder} blends)
        unknown = sorted(m for m in self.photo_fields if m not in have and m not in _STANDARD_FIELDS)
        if unknown and have:
            stems = {f.split(".", 1)[0]: f for f in have if "." in f}
            meant = {m: stems[m] for m in unknown if m in stems}
            if meant:
                raise ShardError(f"{redact(str(path))}: photo_fields {sorted(meant)} are not fields of the dataset: a "
                                 f"field's name includes its extension ({', '.join(map(repr, meant.values()))}); its "
                                 f"fields: {sorted(have)}")
            # said only when none of the names is a field while the dataset has named image fields (a likely
            # misspelling): a recipe listing a view in several formats, or a blended dataset without the view, is
            # not warned of for a parameter its user never set (QA39 review 2 a #2)
            named = sorted(f for f in have if "." in f and f.rsplit(".", 1)[-1].lower() in IMAGE_EXTS)
            if named and not self.photo_fields & set(have):
                warnings.warn(f"{redact(str(path))}: photo_fields {unknown} are not fields of this dataset (decoded "
                              f"as photos: none); its named image fields: {named}", UserWarning, stacklevel=3)

    def __repr__(self) -> str:
        """One line: what it reads and how, e.g. ``ShardDataset('data', split='train', samples=56,
        shuffle=True, seed=0, epoch=0)``."""
        if self.root is not None:
            what = repr(redact(str(self.root)))
            split = self.split if isinstance(self.split, str) else list(self.split)
            what += f", split={split!r}"
            samples = f"{self.num_samples}"
            if self.keys is not None and self.card is not None:
                samples += f" of {sum(self.card['splits'][s]['samples'] for s in self.splits)} (keys=)"
        else:
            names = [os.path.basename(redact(sh)) for sh in self.shards[:2]]
            what = f"{len(self.shards)} shard{'s' if len(self.shards) != 1 else ''}: {', '.join(names)}"
            what += ", ..." if len(self.shards) > 2 else ""
            samples = "?"
        return (f"{type(self).__name__}({what}, samples={samples}, shuffle={self.shuffle}, seed={self.seed}, "
                f"epoch={self.epoch})")

    # ---- public metadata -------------------------------------------------------------------------
    @property
    def label_names(self) -> list[str] | None:
        """Class names from the dataset card (None for foreign shards)."""
        return self.card.get("label_names") if self.card else None

    @property
    def _split_key(self) -> str | tuple[str, ...]:
        """The split(s) as :func:`shard_index` keys them: one name, or the tuple of names."""
        return self.splits[0] if len(self.splits) == 1 else self.splits

    @property
    def num_samples(self) -> int | None:
        """Samples an epoch reads: in this split (the sum over a list of splits) per the card, or those of
        the split ``keys=`` selects (None for foreign shards)."""
        if self.keys is not None and self._shard_sizes is not None:
            return sum(self._shard_sizes)
        return sum(self.card["splits"][s]["samples"] for s in self.splits) if self.card else None

    def samples_per_reader(self, readers: int, epoch: int | None = None) -> list[int] | None:
        """Samples each of ``readers`` readers (``world_size * num_workers``) yields in an epoch —
        the same in every epoch — or None when that is not known exactly.

        Known exactly from ``index.parquet`` with ``on_error="raise"`` (a sample is delivered or the
        read fails): None for bare shards, for ``"skip"`` / ``"warn"`` (losses are found while
        reading), and — unless ``epoch`` is given — for a shuffled shard order over shards of
        different sizes, where a reader's count changes from epoch to epoch; with ``epoch`` those are
        that epoch's counts (this reader's own assignment of shards to readers). What
        :meth:`mmdata.augment.loader.Loader.__len__` and the Lightning DataModule's equal batch
        counts under DDP need.

        Example:
            >>> import tempfile, mmdata
            >>> from mmdata.testing import make_sample_folder
            >>> t = tempfile.mkdtemp()
            >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=10), t + "/ds", maxcount=4, progress=False)
            >>> mmdata.open_dataset(t + "/ds").samples_per_reader(2)   # shards of 4, 4, 2 samples
            [6, 4]
        """
        if self.on_error != "raise":
            return None
        return self.listed_per_reader(readers, epoch)

    def listed_per_reader(self, readers: int, epoch: int | None = None) -> list[int] | None:
        """What :meth:`samples_per_reader` gives with ``on_error="raise"``: the samples the index lists
        for each reader, which it yields unless some are lost (None for bare shards, and for a shuffled
        order over shards of different sizes without ``epoch``)."""
        if self.root is None or readers < 1:
            return None
        if self._shard_sizes is None and self.layout == "samples":
            rows = self._shard_index().rows  # type: ignore[union-attr]
            self._shard_sizes = [_row_count(rows.get(sh)) for sh in self.shards]
        if self._shard_sizes is None:
            import numpy as np

            table = idx.load_index(self.root, columns=["split", "shard"], read_dictionary=["split", "shard"],
                                   storage_options=self.storage_options)
            table = table.combine_chunks()
            per: dict[str, int] = {}
            if table.num_rows:
                splits, shard = (_dictionary(table[c].chunk(0)) for c in ("split", "shard"))
                wanted = _split_codes(splits.dictionary.to_pylist(), self.splits)
                if wanted:
                    codes = _np(shard.indices)[np.isin(_np(splits.indices), wanted)]
                    counts = np.bincount(codes, minlength=len(shard.dictionary)).tolist()
                    per = dict(zip(shard.dictionary.to_pylist(), counts))
            self._shard_sizes = [int(per.get(sh, 0)) for sh in self.shards]
        sizes = self._shard_sizes
        total = sum(sizes)
        if not self.partition:
            return [total] * readers
        if len(sizes) < readers:  # every reader strides over all samples
            return [len(range(r, total, readers)) for r in range(readers)]
        if self.shuffle and readers > 1 and len(set(sizes)) > 1:
            if epoch is None:
                return None
            size = dict(zip(self.shards, sizes))
            # the assignment only (counting every reader's share must not build every reader's plans)
            return [sum(size[sh] for sh in self._assigned(r, readers, epoch)[0]) for r in range(readers)]
        return [sum(sizes[r::readers]) for r in range(readers)]

    def dealt_shard_sizes(self, readers: int) -> tuple[list[int], list[int]] | None:
        """How a shuffled epoch deals shards of different sizes out to ``readers`` readers, when that is
        all that keeps :meth:`samples_per_reader` (without ``epoch``) from being fixed: the samples the
        index lists per shard, and how many shards each reader gets (reader ``r`` takes places ``r``,
        ``r + readers``, ... of the epoch's shard order: the same numbers every epoch, other shards).
        None otherwise (counts fixed, or not known exactly). What the Lightning DataModule needs to
        tell whether the batches per DDP rank are the same in every epoch, whichever shards they read.

        Example:
            >>> import tempfile, mmdata
            >>> from mmdata.testing import make_sample_folder
            >>> t = tempfile.mkdtemp()
            >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=10), t + "/ds", maxcount=4, progress=False)
            >>> mmdata.open_dataset(t + "/ds", shuffle=True).dealt_shard_sizes(2)   # 2 shards, then 1
            ([4, 4, 2], [2, 1])
        """
        if self.on_error != "raise" or self.listed_per_reader(readers) is not None \
                or self.listed_per_reader(readers, 0) is None:
            return None
        return list(self._shard_sizes or []), [len(range(r, len(self.shards), readers)) for r in range(readers)]

    # ---- resume ----------------------------------------------------------------------------------
    @staticmethod
    def state_from_positions(seed: int, epoch: int, positions: dict[int, int], readers: int | None = None) -> dict[str, Any]:
        """Build a state from positions tracked outside (e.g. by a DataLoader-level loader from
        ``batch.meta["samples"][i]["reader"/"position"]``: next position = max position + 1).
        ``readers`` (world size x DataLoader workers that read them) lets the resume refuse another split."""
        state = {"seed": seed, "epoch": epoch, "positions": {int(k): int(v) for k, v in positions.items()}}
        if readers is not None:
            state["readers"] = int(readers)
        return state

    # ---- bookkeeping -----------------------------------------------------------------------------
    def _shard_url(self, name: str, series: str | None = None) -> str:
        if self.root is None:
            return name
        if isinstance(self.root, str):  # a remote folder
            return f"{self.root}/{series}/{name}" if series else f"{self.root}/{name}"
        return str(self.root / series / name) if series else str(self.root / name)

    def _shown(self, name: str, series: str | None = None) -> str:
        """:meth:`_shard_url` as a message shows it (redacted: no password)."""
        return redact(self._shard_url(name, series))

    def _refuse_planned(self, shard: str, key: str, problem: tuple[str, str], at: int) -> None:
        """A sample the index-guided plan refused (``problem``: its reason and message), at position ``at``:
        raised under ``on_error="raise"``, else counted; the row and the columns layouts' fast paths both."""
        if self.on_error == "raise":
            raise ShardError(f"shard {self._shown(shard)}: sample {key!r}: {problem[1]}")
        self._count(problem[0], shard, key, problem[1], at=at)

    def _count(self, reason: str, shard: str, key: str, message: str, decoded: bool = False,
               at: int | None = None, after: bool = False) -> tuple[str, str, str] | None:
        """Count a loss: ``decoded`` when its item did not decode, ``after`` when it is a sample already
        yielded (the recipe refused it: in the records of the samples after it, however far ahead the
        decode window has read), else one the stream met (the decode window reads the stream ahead of
        the samples it yields: see :meth:`_iter_decoded`). ``at``: the position of the item lost, when it
        is not the one the stream is pulling. Returns the entry added to ``errors`` (None: none)."""
        if self._quiet:  # a resume passing over what the saved run read: that run counted it
            return None
        self._skipped[reason] = self._skipped.get(reason, 0) + 1
        if after:
            self._after[reason] = self._after.get(reason, 0) + 1
        elif not decoded:
            self._streamed[reason] = self._streamed.get(reason, 0) + 1
        entry = self._note_error(shard, key, message, at)
        if self._post_to is not None:
            info = get_worker_info()
            self._post_to.post(info.id if info is not None else 0, self._skipped)
        if self.on_error == "warn":
            log.warning("skipping sample %r in %s: %s", key, redact_text(shard), redact_text(message))
        return entry

    def _note_error(self, shard: str, key: str, message: str, at: int | None = None) -> tuple[str, str, str] | None:
        """Add a detail to ``errors``, in stream order: by the position of the item whose pull met it (or
        that was lost, ``at``), then as met. The decode window and the shuffle buffer meet losses ahead of
        the samples they hand out, so this order is the same for any ``decode_threads`` and for a resumed
        pass (which meets later what the saved run met ahead); the first 100 in that order are kept."""
        errors, tags = self._errors, self._error_tags
        if len(tags) != len(errors):  # errors set from outside: what it holds comes first
            tags[:] = [(-1, -1)] * len(errors)
        tag = (self._share, self._at if at is None else at)
        i = len(tags)
        while i and tags[i - 1] > tag:
            i -= 1
        if i >= _MAX_ERRORS:
            return None
        entry = (redact_text(shard), key, redact_text(message))
        errors.insert(i, entry)
        tags.insert(i, tag)
        self._noted += 1
        if len(errors) > _MAX_ERRORS:
            errors.pop()
            tags.pop()
        if self._post_to is not None:
            info = get_worker_info()
            self._post_errors(info.id if info is not None else 0)
        return entry

    def _post_errors(self, slot: int) -> None:
        post = getattr(self._post_to, "post_errors", None)
        if post is not None:
            post(slot, self._rid, self._error_items())

    @property
    def skipped(self) -> dict[str, int]:
        """Samples skipped (reason -> count) by the iteration in progress or the last one. In the main
        process of a plain ``DataLoader`` with workers, theirs summed (their newest iteration, posted to
        shared memory as they count; exact once the DataLoader's iteration has ended)."""
        posted = self._from_workers()
        return posted[0] if posted is not None else self._skipped

    @skipped.setter
    def skipped(self, value: dict[str, int]) -> None:
        self._skipped = value

    @property
    def errors(self) -> list[tuple[str, str, str]]:
        """The first 100 details ``(shard, key, message)`` of the losses in ``skipped``, in the order of the
        reader's stream. In the main process of a plain ``DataLoader`` with workers, theirs merged (by
        position in their streams, then worker), as ``skipped``."""
        posted = self._from_workers()
        return merge_errors(posted[1]) if posted is not None else self._errors  # type: ignore[return-value]

    @errors.setter
    def errors(self, value: list[tuple[str, str, str]]) -> None:
        self._errors = value

    def _error_items(self) -> list[tuple[int | None, tuple[str, ...]]]:
        # an entry met with the item at position p is in the records of the samples after p (tags of a
        # loaded state's entries hold their saved place - 1)
        if len(self._error_tags) != len(self._errors):
            self._error_tags[:] = [(-1, -1)] * len(self._errors)
        return [(t[1] + 1, e) for t, e in zip(self._error_tags, self._errors)]

    def _shard_index(self) -> _ShardIndex | None:
        if self.root is None:
            return None
        if self._index is None:
            self._index = shard_index(self.root, self._split_key, self.storage_options, self.card)
            self._index_rows_unlisted(self._index)
        return self._index

    def _index_rows_unlisted(self, index: _ShardIndex) -> None:
        """The split's index rows whose shard cell names no shard the card lists for the split (null, ``''``,
        a shard the card's list lost or another split's): with ``"raise"`` a ShardError naming the index,
        the card, the split, the shard cells and keys; otherwise kept for reader 0 to count (see
        :meth:`_count_unlisted`) — never read fewer samples than ``num_samples`` without a word. Each
        shard's rows are grouped already: one set lookup per shard of the index, no pass over rows."""
        self._unlisted = [(name, index.row_keys(name)) for name in index.rows if name not in self._listed]
        if not self._unlisted or self.on_error != "raise":
            return
        rows = sum(len(keys) for _, keys in self._unlisted)
        split = self.splits[0] if len(self.splits) == 1 else list(self.splits)
        where = "; ".join(f"{len(keys)} in {self._unlisted_cell(name)} (key{'s' if len(keys) > 1 else ''} "
                          f"{', '.join(map(repr, keys[:3]))}{', ...' if len(keys) > 3 else ''})"
                          for name, keys in self._unlisted[:3])
        raise ShardError(f"{self._shown(idx.INDEX)}: {rows} row{'s' if rows > 1 else ''} of split {split!r} "
                         f"{'are' if rows > 1 else 'is'} in no shard {self._shown(idx.CARD)} lists for that "
                         f"split: {where}{'; ...' if len(self._unlisted) > 3 else ''}. The card and the index "
                         f"disagree (one was edited, or they are from different jobs), so those samples would not "
                         f"be read; run `mmdata verify {redact(str(self.root))}`")

    @staticmethod
    def _unlisted_cell(name: str) -> str:
        """An index shard cell of :meth:`_index_rows_unlisted` as a message names it (null is read as ``\\0``)."""
        if name == "\0":
            return "a null shard cell"
        return "an empty shard cell ('')" if not name else f"shard {name!r}"

    def _count_unlisted(self, rid: int) -> None:
        """Reader 0 counts each sample of :meth:`_index_rows_unlisted` (not read) once per pass, as the
        first losses of its stream (a resume passes over them quietly: the saved run counted them)."""
        if rid != 0 or self._shard_index() is None:
            return
        for name, keys in self._unlisted:
            what = self._unlisted_cell(name)
            for key in keys:
                if self.keys is None or key in self.keys:
                    self._report(idx.INDEX, key, (_NO_SHARD, f"sample {key!r}: {idx.INDEX} puts it in {what}, which "
                                 f"{idx.CARD} does not list for its split: not read (run mmdata verify)", idx.INDEX))

    def _wanted(self, ext: str) -> bool:
        return self.modalities is None or field_of(ext) in self.modalities

    def _want_member(self, name: str) -> bool:
        dot = name.find(".", name.rfind("/") + 1)
        return dot < 0 or self._wanted(name[dot + 1 :])

    # ---- raw samples of one shard ------------------------------------------------------------------
    def _refused(self, shard: str, series: str | None = None) -> str | None:
        """Why the local shard file (a column ``series``' one) is not opened, or None: it is not a regular
        file (a FIFO blocks the open until a writer comes, a device reads forever), or it is a link that
        leaves the dataset folder (its samples are not the dataset's; see docs/bad-input-read.md)."""
        local = _local_path(self._shard_url(shard, series))
        if local is None:
            return None
        if isinstance(self.root, Path):
            return idx.refused_shard(local, self.root, f"{series}/{shard}" if series else shard)
        return idx.refused_shard(local)

    def _raw_samples(self, shard: str, try_fast: bool = True) -> tuple[Iterator[RawSample], bool | None]:
        """The shard's raw samples and whether they were checked against the index (None: checked
        up front, no problem can follow)."""
        if self.layout == "columns":
            mapped = self._mapped_columns(shard) if try_fast else None
            if mapped is not None:
                return self._slice_columns(*mapped), None  # None: verified up front, yields no problems
            return self._zip_series(shard), True
        refused = self._refused(shard)
        if refused is not None:  # as a shard that cannot be opened: its listed samples count as not delivered
            return iter([(None, {}, ("unreadable shard", refused))]), False
        fast = self._mapped(shard) if try_fast else None
        if fast is not None:
            return self._slice_samples(*fast), None  # None: verified up front, yields no problems
        want = None if self.modalities is None else self._want_member
        return iter_samples(self._shard_url(shard), max_member_bytes=self.max_member_bytes, want=want,
                            storage_options=self.storage_options), False

    def _mapped(self, shard: str) -> tuple[IndexPlan, Any, list[int], list[int]] | None:
        """Index-guided whole-shard read of a local uncompressed shard: (plan, buffer, member starts,
        member ends), or None: use the streaming parser."""
        if self.root is None or self.layout == "columns":
            return None
        local = _local_path(self._shard_url(shard))
        index = self._shard_index()
        if local is None or local.endswith((".gz", ".tgz")) or index is None or self._refused(shard) is not None:
            return None
        plan = index.plan(shard)
        if plan is None or plan.max_size > self.max_member_bytes:
            return None
        mapped = indexed_members(local, plan.names, plan.sizes, plan.offsets, plan.size_fields, plan.memo)
        return None if mapped is None else (plan, *mapped)

    def _kept(self, plan: IndexPlan) -> list[tuple[tuple[int, str], ...] | None]:
        """Per layout of the plan: None when every member is wanted, else (position, ext) of those wanted."""
        out: list[tuple[tuple[int, str], ...] | None] = []
        for exts in plan.layouts:
            keep = tuple((j, e) for j, e in enumerate(exts) if self._wanted(e))
            out.append(None if len(keep) == len(exts) else keep)
        return out

    def _slice_samples(self, plan: IndexPlan, buf: Any, starts: list[int],
                       ends: list[int]) -> Iterator[tuple[str, dict[str, bytes] | None, None]]:
        """(key, {ext: bytes}, None) of a mapped shard; members not wanted are left out, not copied. A
        sample ``keys=`` does not select is (key, None, None): passed over, nothing copied."""
        kept = self._kept(plan)
        layouts = plan.layouts
        spans = map(slice, starts, ends)
        chosen = self.keys
        try:
            if chosen is not None:
                for key, li in zip(plan.keys, plan.layout):
                    mine = tuple(islice(spans, len(layouts[li])))
                    if key not in chosen:
                        yield key, None, None
                        continue
                    keep = kept[li]
                    yield key, {e: buf[mine[j]] for j, e in (enumerate(layouts[li]) if keep is None else keep)}, None
                return
            if all(k is None for k in kept):
                members = map(buf.__getitem__, spans)
                for key, li in zip(plan.keys, plan.layout):
                    yield key, dict(zip(layouts[li], members)), None  # zip takes len(exts) members
                return
            for key, li in zip(plan.keys, plan.layout):
                mine = tuple(islice(spans, len(layouts[li])))
                keep = kept[li]
                yield key, {e: buf[mine[j]] for j, e in (enumerate(layouts[li]) if keep is None else keep)}, None
        finally:
            buf.close()

    def _fast_raw(self, shard: str, plan: IndexPlan, buf: Any, starts: list[int], ends: list[int], rid: int,
                  epoch: int, position: int, skip: int) -> Generator[Sample, None, tuple[int, bool]]:
        """decode=False in order, for a mapped shard: Samples straight from the mapping, one dict of
        member bytes and one meta dict each. ``position`` counts this reader's samples so far; the
        first ``skip`` (resume) are passed over unread. Returns the position after the shard, or —
        with True — the position of a sample whose members did not fit in memory (the caller reads
        the rest of the shard with the streaming parser, which reports that member)."""
        kept = self._kept(plan)
        refused = [self._raw_plan(exts)[1] for exts in plan.layouts]
        layouts = plan.layouts
        positions = self._positions
        spans = map(slice, starts, ends)
        members = map(buf.__getitem__, spans)  # pulls from spans: next(spans) passes a member over
        new = object.__new__
        try:
            chosen = self.keys
            if position >= skip and not self._skipped and all(k is None for k in kept) \
                    and all(r is None for r in refused) and chosen is None:
                # the common case, nothing to leave out: the loop does only what every sample needs
                for key, li in zip(plan.keys, plan.layout):
                    s = new(Sample)
                    d = s.__dict__
                    d["key"] = key
                    d["fields"] = dict(zip(layouts[li], members))  # zip takes len(exts) members
                    d["sample_rate"] = None
                    d["meta"] = {"shard": shard, "reader": rid, "position": position, "epoch": epoch}
                    position += 1
                    positions[rid] = position
                    yield s
                return position, False
            for key, li in zip(plan.keys, plan.layout):
                exts = layouts[li]
                if chosen is not None and key not in chosen:  # not selected: not a position of this reader
                    for _ in exts:
                        next(spans)
                    continue
                problem = refused[li]
                if position < skip or problem is not None:
                    for _ in exts:
                        next(spans)
                    position += 1
                    if position > skip:
                        positions[rid] = position
                        self._refuse_planned(shard, key, problem, position - 1)  # type: ignore[arg-type]
                    continue
                keep = kept[li]
                if keep is None:
                    fields = dict(zip(exts, members))
                else:
                    mine = tuple(islice(spans, len(exts)))
                    fields = {e: buf[mine[j]] for j, e in keep}
                meta = {"shard": shard, "reader": rid, "position": position, "epoch": epoch}
                if self._skipped:
                    meta["skipped"] = dict(self._skipped)
                position += 1
                positions[rid] = position
                yield new_sample(key, fields, None, meta)
        except MemoryError:
            return position, True
        finally:
            buf.close()
        return position, False

    def _mapped_columns(self, shard: str) -> tuple[ColumnPlan, list[tuple[Any, list[int], list[int]]]] | None:
        """Column layout: the index-guided read of each series' shard (local, uncompressed, every header where
        the index puts it, as :meth:`_mapped` reads a samples-layout shard): (plan, per series (buffer, member
        starts, member ends)), or None: :meth:`_zip_series` streams the series and reports what it meets."""
        if self.root is None or self.layout != "columns":
            return None
        index = self._shard_index()
        plan = None if index is None else index.column_plan(shard, tuple(self.series))
        if plan is None:
            return None
        card = set(self.card.get("fields") or []) if self.card is not None else set()
        if any(f not in card and (self.modalities is None or f in self.modalities) for f in plan.fields):
            self._check_fields(shard, index)  # type: ignore[arg-type]  # raises, naming the field
        opened: list[tuple[Any, list[int], list[int]]] = []
        try:
            for s, part in zip(self.series, plan.parts):
                local = _local_path(self._shard_url(shard, s))
                if local is None or local.endswith((".gz", ".tgz")) or part.max_size > self.max_member_bytes \
                        or self._refused(shard, s) is not None:
                    return None
                if not len(part.sizes):  # the index lists no member of this series here
                    if not _empty_tar(local):
                        return None
                    opened.append((None, [], []))
                    continue
                mapped = indexed_members(local, part.names, part.sizes, part.offsets, part.size_fields, part.memo)
                if mapped is None:
                    return None
                opened.append(mapped)
            done, opened = opened, []
            return plan, done
        finally:
            for buf, _, _ in opened:  # a series that did not map: the others are not read here
                if buf is not None:
                    buf.close()

    @staticmethod
    def _column_iters(mapped: list[tuple[Any, list[int], list[int]]],
                      plan: ColumnPlan) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Per layout of ``plan``: the member iterators (bytes) and the span iterators (to pass a member over
        unread) of the series of each of its extensions — ``dict(zip(exts, map(next, members)))`` is a
        sample, with no Python step per member. A member iterator pulls from its series' span iterator."""
        spans = [map(slice, starts, ends) for _, starts, ends in mapped]
        members = [iter(()) if buf is None else map(buf.__getitem__, sp) for (buf, _, _), sp in zip(mapped, spans)]
        return ([tuple(members[i] for i in p) for p in plan.pick], [tuple(spans[i] for i in p) for p in plan.pick])

    def _slice_columns(self, plan: ColumnPlan, mapped: list[tuple[Any, list[int], list[int]]]
                       ) -> Iterator[tuple[str, dict[str, bytes] | None, None]]:
        """:meth:`_slice_samples` for a column-layout shard whose series mapped: (key, {ext: bytes}, None), the
        series' members zipped by the index's key order; (key, None, None) for a sample ``keys=`` does not select."""
        take, passing = self._column_iters(mapped, plan)
        layouts = plan.layouts
        chosen = self.keys
        try:
            for key, li in zip(plan.keys, plan.layout):
                if chosen is not None and key not in chosen:
                    for sp in passing[li]:
                        next(sp)
                    yield key, None, None
                    continue
                yield key, dict(zip(layouts[li], map(next, take[li]))), None
        finally:
            for buf, _, _ in mapped:
                if buf is not None:
                    buf.close()

    def _fast_columns(self, shard: str, plan: ColumnPlan, mapped: list[tuple[Any, list[int], list[int]]], rid: int,
                      epoch: int, position: int, skip: int) -> Generator[Sample, None, tuple[int, bool]]:
        """:meth:`_fast_raw` for a column-layout shard whose series mapped (decode=False, in order): Samples
        straight from the series' mappings. Returns the position after the shard, or — with True — the position
        of a sample whose members did not fit in memory (the caller streams the rest of the shard)."""
        refused = [self._raw_plan(exts)[1] for exts in plan.layouts]
        take, passing = self._column_iters(mapped, plan)
        layouts = plan.layouts
        positions = self._positions
        new = object.__new__
        try:
            chosen = self.keys
            if position >= skip and not self._skipped and all(r is None for r in refused) and chosen is None:
                # the common case, nothing to leave out: the loop does only what every sample needs
                for key, li in zip(plan.keys, plan.layout):
                    s = new(Sample)
                    d = s.__dict__
                    d["key"] = key
                    d["fields"] = dict(zip(layouts[li], map(next, take[li])))
                    d["sample_rate"] = None
                    d["meta"] = {"shard": shard, "reader": rid, "position": position, "epoch": epoch}
                    position += 1
                    positions[rid] = position
                    yield s
                return position, False
            for key, li in zip(plan.keys, plan.layout):
                if chosen is not None and key not in chosen:  # not selected: not a position of this reader
                    for sp in passing[li]:
                        next(sp)
                    continue
                problem = refused[li]
                if position < skip or problem is not None:
                    for sp in passing[li]:
                        next(sp)
                    position += 1
                    if position > skip:
                        positions[rid] = position
                        self._refuse_planned(shard, key, problem, position - 1)  # type: ignore[arg-type]
                    continue
                fields = dict(zip(layouts[li], map(next, take[li])))
                meta = {"shard": shard, "reader": rid, "position": position, "epoch": epoch}
                if self._skipped:
                    meta["skipped"] = dict(self._skipped)
                position += 1
                positions[rid] = position
                yield new_sample(key, fields, None, meta)
        except MemoryError:
            return position, True
        finally:
            for buf, _, _ in mapped:
                if buf is not None:
                    buf.close()
        return position, False

    def _zip_series(self, shard: str) -> Iterator[RawSample]:
        """Column layout: merge the series of one shard by the index's key order.

        A sample is delivered when every series the index says holds one of its members delivered it
        in order; otherwise it is reported — one per sample lost: ``truncated or corrupt shard`` when
        the series' shard is missing or was cut short before it (as in the samples layout), else
        ``column series misaligned`` naming the key found in its place. Keys this shard's index does not list (a series
        shard from another shard or dataset) are passed over when the expected key follows them;
        otherwise each takes the place of one expected sample, so the message names it.
        """
        index = self._shard_index()
        assert index is not None
        self._check_fields(shard, index)
        expected = index.keys(shard)
        want_members = index.members(shard)
        want_sizes = index.sizes(shard)
        position = {k: i for i, k in enumerate(expected)}

        def series_samples(s: str) -> Iterator[RawSample]:
            refused = self._refused(shard, s)
            if refused is not None:
                return iter([(None, {}, ("unreadable shard", refused))])
            return iter_samples(self._shard_url(shard, s), max_member_bytes=self.max_member_bytes,
                                storage_options=self.storage_options)

        its = {s: series_samples(s) for s in self.series}
        strays: dict[str, deque[str]] = {s: deque() for s in self.series}  # unlisted keys in front of the head
        ended: dict[str, str] = {}  # series whose shard is missing or cut short -> why

        def advance(s: str) -> RawSample | None:
            """The series' next item that is damage or a listed key; unlisted keys go to ``strays``."""
            for item in its[s]:
                if item[2] is not None and item[2][0] in _SERIES_CUT:
                    ended[s] = item[2][1]  # the parser stops after this: what the series lacks is not delivered
                if item[0] is not None and item[0] not in position:
                    strays[s].append(item[0])
                    continue
                return item
            return None

        heads: dict[str, RawSample | None] = {}
        for s in self.series:
            head = heads[s] = advance(s)
            if head is not None and head[0] is None and head[2] is not None and head[2][0] == "unreadable shard":
                heads[s] = None  # the only item of a shard that cannot be opened (missing): counted per sample
        for i, key in enumerate(expected):
            group: dict[str, bytes] = {}
            problem: tuple[str, ...] | None = None
            for s in self.series:
                named = f"{s}/{shard}"  # where a loss of this series is recorded (as the folder names the shard)
                expects = [m for m in want_members.get(key, []) if field_of(m.split(".", 1)[1]) == s]
                head = heads[s]
                found: str | None = None  # an unlisted key standing where this sample's member should be
                while True:
                    if strays[s]:
                        if head is not None and head[0] == key:
                            strays[s].clear()  # strays in front of the right key: passed over
                        elif expects:
                            found = strays[s].popleft()
                        break
                    # members of keys this series should already have passed: out of order, drop them
                    if head is None or (head[0] is not None and position[head[0]] >= i):
                        break
                    if head[0] is None and head[2] is not None and head[2][0] in MEMBER_REASONS:
                        yield None, {}, (*head[2][:2], named)  # a member of no sample: counted, costs no sample
                    elif head[0] is None and head[2] is not None and problem is None:
                        problem = (*head[2][:2], named)
                    head = heads[s] = advance(s)
                taken = found is None and head is not None and head[0] == key
                if taken:
                    if problem is None:
                        # a member of another size than the index's is another member (an older copy of
                        # the series put back): damage, even where the parser met a cut right after it
                        bad = self._missized(key, head[1], want_members.get(key), want_sizes.get(key))  # type: ignore[index]
                        if bad is not None:
                            problem = (bad[0], f"column series {s!r} shard {self._shown(shard, s)}: {bad[1]}", named)
                        elif head[2] is not None:  # type: ignore[index]
                            problem = (*head[2][:2], named)  # type: ignore[index]
                    group.update(head[1])  # type: ignore[index]
                    heads[s] = advance(s)
                missing = [m for m in expects if m.split(".", 1)[1] not in group]
                if problem is None and missing:
                    url = self._shown(shard, s)
                    if not taken and found is None and heads[s] is None and s in ended:
                        problem = (_NOT_DELIVERED, f"sample {key!r} listed in the index was not delivered: {ended[s]}")
                    elif taken:
                        problem = ("column series misaligned", f"column series {s!r} shard {url}: sample {key!r} "
                                   f"lacks {missing}, which the index lists")
                    else:
                        what = found if found is not None else head[0] if head is not None else None
                        where = "the end of the series" if what is None else what
                        problem = ("column series misaligned", f"column series {s!r} shard {url}: found {where!r} "
                                   f"where {key!r} was expected (series out of order, cut short or from another "
                                   "shard or dataset)")
                if problem is not None and len(problem) == 2:
                    problem = (*problem, named)
            yield key, group, problem
        for s, head in heads.items():
            left = strays[s][0] if strays[s] else head[0] if head is not None else None
            if left is not None:
                yield None, {}, ("column series misaligned", f"column series {s!r} shard {self._shown(shard, s)}: "
                                 f"key {left!r} is not in the index for this shard (series disagree)", f"{s}/{shard}")

    def _check_fields(self, shard: str, index: _ShardIndex) -> None:
        """Column layout: raise (in every ``on_error`` mode: the card is damaged metadata, not a shard) when the
        index lists members of a field read (``modalities``) that the card's ``fields`` lack — no series of
        it would be opened, and every sample would come without it, uncounted."""
        card = set(self.card.get("fields") or []) if self.card is not None else set()
        unread = [f for f in index.fields(shard) if f not in card and (self.modalities is None or f in self.modalities)]
        if not unread:
            return
        key = next(k for k, names in index.members(shard).items()
                   if any(field_of(m.split(".", 1)[1]) in unread for m in names if "." in m))
        raise ShardError(f"{self._shown(idx.CARD)}: 'fields' {sorted(card)} lacks {unread}, whose members "
                         f"{idx.INDEX} lists in shard {shard} (key {key!r}): the card and the index disagree (one was "
                         f"edited, or they are from different jobs), so those members would not be read; run "
                         f"`mmdata verify {redact(str(self.root))}`")

    # ---- decoding --------------------------------------------------------------------------------
    def _raw_plan(self, exts: tuple[str, ...]) -> tuple[tuple[str, ...] | None, tuple[str, str] | None]:
        """decode=False: which members to keep and whether the sample is refused, per set of extensions."""
        keep = tuple(e for e in exts if self._wanted(e))
        twice = _same_field(keep)
        if twice is not None:
            return None, twice
        for e in keep:
            if member_type(e) in PICKLE_EXTS and not self.allow_pickle:
                return None, ("pickle member refused", f".{e} member is a pickle; refusing it (allow_pickle=False)")
        have = {field_of(e) for e in keep}
        for req in self.required:
            if req not in have:
                return None, ("missing required modality", f"required modality {req!r} is missing (has {sorted(keep)})")
        return (None if keep == exts else keep), None

    def _build(self, key: str, raw: dict[str, bytes]) -> tuple[dict[str, Any], int | None, float | None]:
        """The sample's decoded fields, its sample rate and, when ``audio_max_frames`` left the end of its
        clip undecoded, the clip's whole length in seconds (its header's; None otherwise)."""
        if not self.decode:
            sig = tuple(raw)
            plan = self._raw_plans.get(sig)
            if plan is None:
                plan = self._raw_plans[sig] = self._raw_plan(sig)
            keep, refused = plan
            if refused is not None:
                raise _Skip(*refused)
            return (raw if keep is None else {e: raw[e] for e in keep}), None, None
        sig = tuple(raw)
        if sig not in self._fields_twice:  # decided once per set of extensions
            self._fields_twice[sig] = _same_field(tuple(e for e in sig if self._wanted(e)))
        twice = self._fields_twice[sig]
        if twice is not None:  # k.png + k.jpg: which one is the image? (webdataset raises) — before decoding,
            raise _Skip(*twice)  # so a broken k.png is the same `repeated member` as with decode=False
        fields: dict[str, Any] = {}
        rate = None
        whole = None
        for ext, data in raw.items():
            if not self._wanted(ext):
                continue
            try:
                name, value, sr = decode_member(ext, data, allow_pickle=self.allow_pickle,
                                                image_max_size=self.image_max_size, image_alpha=self.image_alpha,
                                                audio_max_frames=self.audio_max_frames,
                                                photo_fields=self.photo_fields)
            except (DecodeError, MemoryError) as exc:
                if not isinstance(exc, MemoryError) and not isinstance(exc.__cause__, MemoryError):
                    raise _Skip(_reason(exc, ext), f"{key}.{ext}: {exc}", ext) from exc
                raise _Skip(NO_MEMORY, _no_memory(f"{key}.{ext}", len(data)), ext) from None
            if name == "label" and self._classes is not None and not 0 <= value < self._classes:
                raise _Skip("bad label", f"{key}.{ext}: label {value} is outside the card's {self._classes} classes "
                                         f"0..{self._classes - 1}", ext)
            fields[name] = value
            if sr is not None:
                rate = sr
                if self.audio_max_frames is not None and name == "audio" and sr > 0 \
                        and value.shape[-1] >= (frames_wanted(self.audio_max_frames, sr) or 0):
                    total = audio_frames(data)  # the header's length: the clip may go on past what was decoded
                    whole = round(total / sr, 6) if total is not None and total > value.shape[-1] else None
        for req in self.required:
            if req not in fields:
                raise _Skip("missing required modality", f"required modality {req!r} is missing (has {sorted(fields)})")
        return fields, rate, whole

    def _try_build(self, item: tuple[str, str, dict[str, bytes]]) -> tuple[dict[str, Any], int | None, float | None] | _Skip:
        try:
            return self._build(item[1], item[2])
        except _Skip as exc:
            return exc

    def _iter_raw(self, stream: Iterator[tuple[str, str, dict[str, bytes]]], rid: int, position: int,
                  epoch: int, skip: int = 0) -> Generator[Sample, None, int]:
        """decode=False: the members kept per set of extensions are decided once per set; one loop.
        ``position`` counts the samples consumed so far, the first ``skip`` are passed over; returns
        the position after the stream."""
        plans = self._raw_plans
        positions = self._positions
        stream = iter(stream)
        while True:
            # losses met while passing over what the saved run consumed were counted by that run
            self._quiet = position < skip
            self._at = position
            item = next(stream, None)
            if item is None:
                break
            shard, key, raw = item
            if position < skip:
                position += 1
                continue
            sig = tuple(raw)
            plan = plans.get(sig)
            if plan is None:
                plan = plans[sig] = self._raw_plan(sig)
            keep, refused = plan
            meta = {"shard": shard, "reader": rid, "position": position, "epoch": epoch}
            position += 1
            positions[rid] = position
            if refused is not None:
                if self.on_error == "raise":
                    raise ShardError(f"shard {self._shown(shard)}: sample {key!r}: {refused[1]}")
                self._count(refused[0], shard, key, refused[1], at=position - 1)
                continue
            if self._skipped:
                meta["skipped"] = dict(self._skipped)
            yield new_sample(key, raw if keep is None else {e: raw[e] for e in keep}, None, meta)
        self._quiet = False
        return position

    def _iter_in_order(self, rid: int, n: int, epoch: int, skip: int) -> Iterator[Sample]:
        """decode=False without shuffle: mapped shards go straight to Samples (:meth:`_fast_raw`)."""
        shards, stride = self._mine(rid, n, epoch)
        quiet, self._quiet = self._quiet, self._quiet or skip > 0  # a resume: the saved run counted them
        self._count_unlisted(rid)
        self._quiet = quiet
        counter = [0]
        position = 0
        for shard in shards:
            fast = None if stride else self._mapped(shard)
            columns = None if stride or fast is not None else self._mapped_columns(shard)
            done = 0
            if fast is not None or columns is not None:
                start = position
                position, short = yield from (self._fast_raw(shard, *fast, rid, epoch, position, skip) if fast is not None
                                              else self._fast_columns(shard, *columns, rid, epoch, position, skip))  # type: ignore[misc]
                if not short:
                    continue
                done = position - start  # a member did not fit in memory: the streaming parser goes on
            items = self._shard_items(shard, rid, n, stride, counter, try_fast=False)
            position = yield from self._iter_raw(islice(items, done, None), rid, position, epoch, skip)

    def _iter_decoded(self, stream: Iterator[tuple[str, str, dict[str, bytes]]], rid: int, position: int,
                      epoch: int, read_ahead: bool = True) -> Iterator[Sample]:
        # a sample's meta["skipped"] is the losses before it in the stream: what was counted before this
        # share, the stream's losses met up to pulling it (the decode window reads ahead: later ones are
        # not its), the decode losses of the items before it and the samples before it the recipe refused
        # — the same for any decode_threads, and what a resume from it starts from (state_dict)
        base, lost = dict(self._skipped), {}
        self._streamed, self._after = {}, {}
        decoded = self._decoded(stream, self._threads() if read_ahead else 1, position)
        _OPEN_DECODES.add(decoded)
        for (shard, key, _raw), built, streamed in decoded:
            meta = {"shard": shard, "reader": rid, "position": position, "epoch": epoch}
            position += 1
            self._positions[rid] = position
            if isinstance(built, _Skip):
                # a member of a column dataset is in its field's series shard
                series = field_of(built.ext) if built.ext is not None and self.layout == "columns" else None
                if self.on_error == "raise":
                    raise ShardError(f"shard {self._shown(shard, series)}: sample {key!r}: {built}") from built
                self._count(built.reason, f"{series}/{shard}" if series else shard, key, str(built), decoded=True,
                            at=position - 1)
                if not self._quiet:  # a blend's resume passes over decoded samples: their losses were counted
                    lost[built.reason] = lost.get(built.reason, 0) + 1
                continue
            fields, rate, whole = built
            if whole is not None:  # audio_max_frames decoded the start of a longer clip: its length
                meta[AUDIO_SECONDS] = whole
            after = self._after
            record = summed_counts(base, streamed or {}, lost, after) if base or streamed or lost or after else {}
            if record:
                meta["skipped"] = record
            self._record = record
            yield new_sample(key, fields, rate, meta)

    def _decoded(self, stream: Iterator[tuple[str, str, dict[str, bytes]]], threads: int,
                 start: int = 0) -> Iterator[tuple[tuple[str, str, dict[str, bytes]], Any, dict[str, int] | None]]:
        # with each item, the stream's losses counted up to pulling it (a copy: the window reads on);
        # what the stream meets pulling the item at position p is tagged p (_note_error)
        stream = self._tagging(stream, start)
        if threads <= 1:
            for item in stream:
                yield item, self._try_build(item), dict(self._streamed) if self._streamed else None
            return
        # decoders of images and audio (PIL, libsndfile) release the GIL: a few in flight keep a worker's cores
        # busy. The others (text, labels, json, npy) hold it: a thread hand-off per sample only costs (2x the CPU
        # of a text corpus), so those samples are decoded here, in their place in the window. Results come back
        # in stream order, so order, positions and errors do not depend on threads
        pool: ThreadPoolExecutor | None = None
        in_place = False  # decode threads could not start: every sample decoded here from then on
        try:
            window: deque[Any] = deque()
            for item in stream:
                heavy = _releases_gil(item[2])
                if not heavy and not window:  # nothing in flight to keep order with: as decode_threads=1
                    yield item, self._try_build(item), dict(self._streamed) if self._streamed else None
                    continue
                if heavy and not in_place:
                    if pool is None:  # a text-only read never starts the threads
                        pool = ThreadPoolExecutor(threads, thread_name_prefix="mmdata-decode")
                    try:
                        fut: Any = pool.submit(self._try_build, item)
                    except RuntimeError as exc:
                        if "can't start new thread" not in str(exc):
                            raise
                        # a thread's stack does not fit under this process's address-space limit (ulimit -v)
                        # or its thread limit (QA35 lowmem #2): the threads already running finish what they
                        # took, the rest is decoded here, as decode_threads=1 does, instead of failing the read
                        # (the item this submit queued is cancelled at shutdown, or decoded twice: no effect)
                        in_place = True
                        _warn_no_threads(exc)
                        fut = _Ready(self._try_build, item)
                else:
                    fut = _Ready(self._try_build, item)
                window.append((item, fut, dict(self._streamed) if self._streamed else None))
                if len(window) >= 4 * threads:
                    head, fut, streamed = window.popleft()
                    yield head, fut.result(), streamed
            while window:
                head, fut, streamed = window.popleft()
                yield head, fut.result(), streamed
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _tagging(self, stream: Iterator[Any], start: int) -> Iterator[Any]:
        """``stream``, with ``_at`` the position of each item while it is pulled."""
        at = start
        stream = iter(stream)
        while True:
            self._at = at
            item = next(stream, _END)
            if item is _END:
                return
            at += 1
            yield item

    def _threads(self) -> int:
        if not self.decode or self.decode_threads == 1:
            return 1
        if self.decode_threads > 1:
            return self.decode_threads
        info = get_worker_info()
        workers = info.num_workers if info is not None else 1
        return max(1, min(4, usable_cpus() // workers))

    # ---- iteration -------------------------------------------------------------------------------
    def _report(self, shard: str, key: str | None, problem: tuple[str, ...]) -> None:
        """Raise or count ``problem`` (``(reason, message)``, or with a column series' shard third: the
        record names that shard, ``depth/train-000000.tar``, as the samples layout's names its shard)."""
        self._check_fresh()  # damage met in a folder re-sharded mid-pass: not the shard's fault
        if self.on_error == "raise":
            raise ShardError(problem[1] if shard in problem[1] else f"shard {self._shown(shard)}: {problem[1]}")
        # key-less damage is a region of the shard, except a member that belongs to no sample (counted
        # per member under its own reason)
        reason = problem[0] if key is not None or problem[0] in MEMBER_REASONS else _REGION
        self._count(reason, problem[2] if len(problem) > 2 else shard, key or "<unknown>", problem[1])

    def _assigned(self, rid: int, n: int, epoch: int) -> tuple[list[str], bool]:
        """This reader's shards in this epoch's order, and whether readers stride over every shard."""
        order = list(range(len(self.shards)))
        if self.shuffle:
            order = [int(i) for i in derive(self.seed, epoch, "shard-order", 0).permutation(len(self.shards))]
        stride = len(self.shards) < n
        return [self.shards[i] for i in (order if stride else order[rid::n])], stride

    def _mine(self, rid: int, n: int, epoch: int) -> tuple[list[str], bool]:
        """:meth:`_assigned`, with the index plans of those shards made ready to read them."""
        mine, stride = self._assigned(rid, n, epoch)
        if not stride and self.root is not None and self.layout in ("samples", "columns"):
            local = [sh for sh in mine if (_local_path(self._shard_url(sh)) or ".gz").endswith(".tar")]
            if len(local) > 1:
                self._shard_index().prepare(local)  # type: ignore[union-attr]
        return mine, stride

    def _stream(self, rid: int, n: int, epoch: int) -> Iterator[tuple[str, str, dict[str, bytes]]]:
        shards, stride = self._mine(rid, n, epoch)
        self._count_unlisted(rid)  # at the first pull: inside a resume's quiet pass-over
        counter = [0]  # stride mode: the running sample index over the epoch's shards
        # bare shards read for a selection (``keys`` set by ``mmdata augment``'s tasks; no index to say where its
        # samples are): done once each selected sample came — the rest of the shards is not read (QA: a single
        # 50 GB shard was read whole by the task of each output shard it feeds)
        left = set(self.keys) if self.keys is not None and self.root is None else None
        # a folder of bare shards may hold a copy of a shard (``shard-000 (1).tar`` after a re-download, a
        # ``backup/``): a key read from two shards is the same sample twice in the epoch; said once per pass,
        # naming both shards (keys restarting in every shard are legal in webdataset: not refused)
        first: dict[int, int] | None = {} if self._folder_read and self.root is None else None
        for at, shard in enumerate(shards):
            for item in self._shard_items(shard, rid, n, stride, counter):
                if first is not None:
                    was = first.setdefault(hash(item[1]), at)
                    if was != at:
                        self._warn_repeated(item[1], shards[was], shard)
                        first = None
                    elif len(first) >= DUPLICATE_KEY_CHECK:
                        first = None
                yield item
                if left is not None:
                    left.discard(item[1])
                    if not left:
                        return

    def _warn_repeated(self, key: str, was: str, shard: str) -> None:
        if self._quiet:  # a resume passing over what the saved run read: that run said it
            return
        warnings.warn(f"{self._shown(shard)}: sample key {key!r} was already read from {self._shown(was)} in this pass: "
                      f"the same sample twice in an epoch? (a copy of a shard in the folder: remove it, or pass the tars "
                      f"to read as a list or pattern; keys that restart in every shard are not copies, ignore this); "
                      f"further repeats of this pass are not reported", UserWarning, stacklevel=2)

    def _shard_items(self, shard: str, rid: int, n: int, stride: bool, counter: list[int],
                     try_fast: bool = True) -> Iterator[tuple[str, str, dict[str, bytes]]]:
        """(shard, key, raw) of this reader's good samples of one shard; problems reported or counted."""
        items, checked = self._raw_samples(shard, try_fast)
        seen: set[str] = set()
        if checked is None and not stride:  # index-verified shard: no problem can come out of it
            done = 0
            try:
                for key, raw, _ in items:
                    if raw is not None:  # None: not selected by keys=
                        yield shard, key, raw  # type: ignore[misc]
                    done += 1
                return
            except MemoryError:
                # a member copied out of the mapping does not fit: the streaming parser reads the rest
                # of the shard and reports that member (passing over it) like any other
                items, checked = self._raw_samples(shard, try_fast=False)
                seen.update(key for key, _, _ in islice(items, done) if key is not None)  # delivered above
        index = self._shard_index()
        # with an index, loss is counted per listed sample: damage on keys the index does not
        # list is kept as a message, and listed samples that never came are counted at the end
        # a shard the card lists that has no row of the split (another split's put in the list): none of
        # its samples is one of this split's
        listed = index.members(shard) if index is not None else None
        # the streaming parser's samples are checked against the index's sizes too (a column series is, as
        # it is zipped; a mapped shard was, up front)
        sized = index.sizes(shard) if listed is not None and checked is False else None  # type: ignore[union-attr]
        last_problem: tuple[str, ...] | None = None
        chosen = self.keys
        for key, raw, problem in items:
            if chosen is not None and key is not None and key not in chosen:
                seen.add(key)  # not selected (keys=): not read on, counted, nor a place in the stride
                continue
            if listed is not None and key is not None:
                if problem is None and key not in listed:
                    # a sample the index does not list here (a shard rewritten by another job, an edited
                    # index): never delivered, or an epoch could hold it twice or a key the index lacks
                    problem = (_UNLISTED, f"sample {key!r} is in the shard but the index does not list it there "
                                          "(the shard and index.parquet are from different jobs? run mmdata verify)")
                elif problem is None and checked is False:
                    problem = self._incomplete(key, raw, listed.get(key)) or self._missized(
                        key, raw, listed.get(key), sized.get(key))  # type: ignore[union-attr]
                elif problem is not None and problem[0] == "truncated shard" and key in listed \
                        and self._incomplete(key, raw, self._read_members(key, listed[key])) is None \
                        and (sized is None or self._missized(key, raw, listed[key], sized.get(key)) is None):
                    last_problem, problem = problem, None  # cut right after its last member: nothing missing
            own = True
            if stride:
                counter[0] += 1
                own = (counter[0] - 1) % n == rid
            if problem is None:
                if key is not None:
                    seen.add(key)
                if own:
                    yield shard, key, raw  # type: ignore[misc]
                continue
            member_only = key is None and problem[0] in MEMBER_REASONS  # costs no sample: not a cut
            if not member_only:
                last_problem = problem
            counts = listed is None or member_only or (key is not None and key in listed and key not in seen)
            if key is not None:
                seen.add(key)
            if not own:
                continue
            if problem[0] == "repeated key" and listed is None:  # a bare tar made by hand: say how to fix it
                problem = (problem[0], problem[1] + _ADJACENT_REMEDY, *problem[2:])
            if counts or self.on_error == "raise":
                self._report(shard, key, problem)
            elif not self._quiet:
                self._note_error(problem[2] if len(problem) > 2 else shard, key or "<unknown>", problem[1])
        if listed is not None:  # listed samples that never came: after damage, or a shard that lacks them
            reason, why = (_NOT_DELIVERED, last_problem[1]) if last_problem is not None else (
                _MISSING, "the shard does not hold it (the shard and index.parquet are from different jobs? run mmdata verify)")
            where = last_problem[2:] if last_problem is not None else ()  # a column series' shard
            for k in listed:
                if k in seen or (chosen is not None and k not in chosen):
                    continue
                own = True
                if stride:
                    counter[0] += 1
                    own = (counter[0] - 1) % n == rid
                if own:
                    self._report(shard, k, (reason, f"sample {k!r} listed in the index was not delivered: {why}", *where))

    def _read_members(self, key: str, names: list[str]) -> list[str]:
        """The members of ``names`` (the index's for ``key``) that the read delivers: a column dataset
        read with a ``modalities`` subset opens only those series (the samples layout's parser yields an
        unwanted member as present, unread)."""
        if self.layout != "columns" or self.modalities is None:
            return names
        return [m for m in names if self._wanted(m[len(key) + 1 :])]

    def _missized(self, key: str, raw: dict[str, bytes], names: list[str] | None,
                  sizes: list[int] | None) -> tuple[str, str] | None:
        """A problem when a member read has another size than the index gives it (a member unread, of a
        field not selected, is no problem). Only sizes, as the mapped read checks: other bytes of the same
        size are ``mmdata verify``'s to find (each shard's sha256; member CRC-32s with ``--deep``)."""
        if names is None or sizes is None:
            return None
        cut = len(key) + 1
        for name, size in zip(names, sizes):
            data = raw.get(name[cut:])
            if data is not None and len(data) != size and (data or self._wanted(name[cut:])):
                return (_SIZE, f"sample {key!r}: member {name!r} is {len(data)} bytes, {idx.INDEX} lists {size} "
                               "(an older copy of the shard put back, or the shard and the index are from different "
                               "jobs? run mmdata verify)")
        return None

    @staticmethod
    def _incomplete(key: str, raw: dict[str, bytes], names: list[str] | None) -> tuple[str, str] | None:
        """A problem when the index lists other members for ``key`` than the shard delivered."""
        if names is None:
            return None
        want = {m[len(key) + 1 :] for m in names}
        if want == set(raw):
            return None
        return ("incomplete sample", f"sample {key!r} has members {sorted(raw)}, the index lists {sorted(want)}")

    def _state_counts(self) -> dict[str, int]:
        # decoding, the window's read-ahead may have counted losses past the last sample yielded
        return dict(self._record) if self._record is not None else dict(self._skipped)

    @property
    def identity(self) -> dict[str, Any] | None:
        """Which version of the dataset a saved position counts along: ``{"fingerprint": the card's (sha256 of
        the shards' sha256), "samples": samples an epoch reads (the split(s), keys= applied), "order": a digest of
        what the positions count along (the split's shards, in the card's order, each with its keys in index order,
        keys= applied)}``; None for bare shards (no card). A state records it (``state_dict()["dataset"]``) and a
        mid-epoch one is refused when ``order`` or ``samples`` differ (:meth:`identity_changes`): a re-shard that
        adds, removes, replaces or reorders the split's samples. The fingerprint is kept as a record only: a
        modality added in place or another split re-sharded changes it, not what the positions mean (QA36 state #1).

        Example:
            >>> mmdata.open_dataset("data/av").identity  # doctest: +SKIP
            {'fingerprint': '3f1c...', 'samples': 56, 'order': '9a0e...'}
        """
        if self.card is None:
            return None
        return {"fingerprint": self.card.get("fingerprint"), "samples": self.num_samples, "order": self._order_digest()}

    def _order_digest(self) -> str | None:
        """sha256 (first 32 hex digits) of the split's shard names in the card's order, each with its keys in
        index order (those ``keys=`` selects): the sequence an epoch's positions count along, whatever the
        shuffle (it is derived from it and the seed). Computed once per object (an opened index does not change:
        a folder changed under it is refused as it is read); None without an index."""
        cached = getattr(self, "_order_cache", None)
        if cached is not None:
            return cached
        index = self._shard_index()
        if index is None:
            return None
        import hashlib

        h = hashlib.sha256()
        for sh in self.shards:
            keys = index.row_keys(sh)
            if self.keys is not None:
                keys = [k for k in keys if k in self.keys]
            h.update(str(sh).encode() + b"\0" + "\n".join(keys).encode() + b"\1")
        self._order_cache: str | None = h.hexdigest()[:32]
        return self._order_cache

    def _identity_diff(self, saved: Any) -> tuple[str, bool] | None:
        """What differs between a recorded identity and this dataset's, in words, and whether the positions
        surely mean other samples now (False: a state of d62493a, which recorded the fingerprint only, whose
        change may be a modality added); None when nothing to compare or nothing that matters differs."""
        if not isinstance(saved, Mapping) or self.card is None:
            return None
        out = []
        split = self.splits[0] if len(self.splits) == 1 else list(self.splits)
        n_a, n_b = saved.get("samples"), self.num_samples
        if n_a is not None and n_b is not None and n_a != n_b:
            out.append(f"{n_a} -> {n_b} samples in split {split!r}")
        fp_a, fp_b = saved.get("fingerprint"), self.card.get("fingerprint")
        fp = (f"folder fingerprint {str(fp_a)[:12]}... -> {str(fp_b)[:12]}..."
              if fp_a is not None and fp_b is not None and fp_a != fp_b else None)
        if saved.get("order") is not None:  # what the positions count along, recorded: compared exactly
            now = self._order_digest()
            if now is not None and now != saved["order"] and not out:
                out.append(f"the keys of split {split!r} or their order")
            if not out:
                return None
            return ", ".join(out + ([fp] if fp else [])), True
        if out:
            return ", ".join(out + ([fp] if fp else [])), True
        if fp is None:
            return None
        return (f"{fp}; this state, of an older mmdata, recorded only the folder's fingerprint, which a modality added "
                f"in place (add-modality) or another split re-sharded changes too"), False

    def identity_changes(self, saved: Any) -> str | None:
        """What differs between the identity a state recorded (``saved``) and this dataset's, in words, or None
        (the same samples in the same order, or nothing to compare: a state of an older mmdata has no identity,
        bare shards none). QA36 sites #1: a state saved before the folder was re-sharded (one sample added)
        resumed silently and the rest of the epoch read 4 samples twice and 4 never."""
        diff = self._identity_diff(saved)
        return None if diff is None else diff[0]

    def check_identity(self, state: Mapping[str, Any], started: bool, error: type[Exception] = ShardError,
                       seed: int | None = None) -> None:
        """Refuse a mid-epoch ``state`` whose positions count along other samples (the folder re-sharded: samples
        of the split added, removed, replaced or reordered): they would repeat some samples and skip others. A
        state at an epoch's start (no positions) resumes any version, as does one without ``dataset`` (saved
        before mmdata recorded it: taken as before) and one after a modality was added or another split
        changed. The error's ``resume_refusal`` is ``"data"`` (what Lightning's remedy keys on)."""
        if not started:
            return
        diff = self._identity_diff(state.get("dataset"))
        if diff is None:
            return
        epoch = state.get("epoch", 0)
        exc = error(f"{redact(str(self.root))}: the dataset folder changed since this state was saved "
                    f"({identity_consequence(diff, epoch)}. Resume with the version the state was saved from, or start "
                    f"that epoch over: load_state_dict({{'epoch': {epoch}, 'seed': {self.seed if seed is None else seed}}})")
        exc.resume_refusal = "data"  # type: ignore[attr-defined]
        raise exc

    def state_dict(self) -> dict[str, Any]:
        """See :meth:`ResumableEpochs.state_dict`; a mid-epoch state (with positions) of a dataset folder also has
        ``dataset``: the folder's :attr:`identity` (which version of the dataset the positions count along; another
        version refuses it)."""
        state = super().state_dict()
        ident = self.identity
        if ident is not None and state.get("positions"):  # an epoch's start resumes any version: nothing to check
            state["dataset"] = ident
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume (see :meth:`ResumableEpochs.load_state_dict`). A state a blend saved mid-epoch (it carries
        ``blend``) is refused with ShardError: its positions count places in the blend's plans, which mean
        other samples here (QA: taken silently, the pass skipped the wrong samples). One saved at the start
        of an epoch says only the epoch, and resumes as it does in the blend and in ``mmdata.loader``. A
        mid-epoch state of another version of the folder (its ``dataset``: re-sharded) is refused too
        (:meth:`check_identity`).

        Example:
            >>> loader = mmdata.loader({"a": "data/av", "b": "data/b"}, batch_size=4, seed=3)  # doctest: +SKIP
            >>> batch = next(iter(loader)); state = loader.state_dict()  # mid-epoch  # doctest: +SKIP
            >>> mmdata.open_dataset("data/av", seed=3).load_state_dict(state)  # doctest: +SKIP
            Traceback (most recent call last):
            mmdata.errors.ShardError: a state of the blend [['a', 'train', 1.0], ['b', 'train', 1.0]] cannot resume ...
        """
        state = expect_state(state, "state", error=ShardError)
        saved = state.get("blend")
        if saved is not None and any(int(v) > 0 for v in (state.get("positions") or {}).values()):
            where = self.root if self.root is not None else ", ".join(map(str, self.shards[:2])) or "no shards"
            raise ShardError(
                f"a state of the blend {saved} cannot resume a single dataset ({where}): its "
                f"positions are places in the blend's plans and mean other samples here; resume it with the blend "
                f"it was saved from, mmdata.blend(...) or mmdata.loader({{...}}) with the same datasets, names, "
                f"splits and weights, or start the epoch over: load_state_dict({{'epoch': {state.get('epoch', 0)}, "
                f"'seed': {self.seed}}})")
        self.check_identity(state, any(int(v) > 0 for v in (state.get("positions") or {}).values()))
        super().load_state_dict(state)

    def __iter__(self) -> Iterator[Sample]:
        self._catch_up()  # a persistent worker: the owning process's load_state_dict / set_epoch since its last pass
        epoch, gen = self._clock.begin()
        self._pass_ended = False
        # counts are per iteration (one epoch): the same whether this process or DataLoader workers
        # (fresh or persistent copies) read, and a damaged sample read every epoch counts once an epoch
        self._skipped = {}
        self._errors, self._error_tags = [], []
        self._quiet = False
        dist = dist_rank_world() or self._dist
        rid, n = reader_id(dist, self.rotation) if self.partition else (0, 1)
        # positions count every sample the reader consumed, skipped ones included, so a resume
        # passes over exactly what the saved reader had consumed
        skip = self._resume_skip(rid, n, epoch) if gen == 0 else 0
        self._skipped = self._resumed_counts(rid, skip)  # the saved run counted what the resume passes over
        resumed = self._resumed_errors(rid, skip)[:_MAX_ERRORS]  # ... and met these: kept in their places, first
        self._errors = [e for _, e in resumed]  # type: ignore[misc]
        self._error_tags = [(-1, p - 1) for p, _ in resumed]
        self._record = None
        self._post_to = self._posting(gen)
        if self._post_to is not None:  # this iteration's counts in this worker's slot (none of an earlier epoch's)
            info = get_worker_info()
            self._post_to.post(info.id if info is not None else 0, self._skipped)
            self._rid = rid
            self._post_errors(info.id if info is not None else 0)
        yield from self.iter_share(rid, n, epoch, skip)
        self._skip.pop(rid, None)
        # in a DataLoader worker only its share ended: torchdata resumes the others from the same epoch
        self._pass_ended = get_worker_info() is None

    def iter_share(self, rid: int, n: int, epoch: int, skip: int = 0, read_ahead: bool = True) -> Iterator[Sample]:
        """The samples reader ``rid`` of ``n`` gets in ``epoch``, after the first ``skip`` it consumed —
        one iteration's work without the epoch clock and the resume state (:func:`mmdata.blend` reads
        its datasets' shares with it, several epochs of one dataset in one of its own). ``read_ahead=False``:
        decoded one at a time (no decode window meeting losses ahead of the sample yielded)."""
        self._check_fresh()
        self._readers = n
        self._share += 1
        self._rid = rid
        self._at = skip
        self._positions = {rid: skip} if skip else {}
        samples: Iterator[Sample]
        if not self.decode and not self.shuffle:
            samples = self._iter_in_order(rid, n, epoch, skip)
        else:
            stream: Iterator[Any] = self._stream(rid, n, epoch)
            if self.shuffle:
                stream = self._buffered(stream, rid, epoch)
            if not self.decode:
                samples = self._iter_raw(stream, rid, 0, epoch, skip)
            else:
                if skip:
                    stream = self._skipping(stream, skip)
                samples = self._iter_decoded(stream, rid, skip, epoch, read_ahead)
        watch = [m for m in self.modalities or () if m not in _STANDARD_FIELDS] if self.card is None else []
        yield from (self._watch_fields(samples, watch) if watch else samples)

    def _watch_fields(self, samples: Iterator[Sample], wanted: list[str]) -> Iterator[Sample]:
        """Bare shards have no field list to check ``modalities`` against (a dataset folder raises on an
        unknown name): when a whole pass gave samples and none had a requested extra field, say so once
        — a typo, or a named member's field is its whole extension (``k.depth.png`` -> ``depth.png``)."""
        n = 0
        found = False
        for s in samples:
            n += 1
            if not found:
                have = set(s.fields) if self.decode else {field_of(e) for e in s.fields}
                found = any(m in have for m in wanted)
            yield s
        if n and not found:
            warnings.warn(f"modalities {wanted}: none of the {n} samples read has {'it' if len(wanted) == 1 else 'them'} "
                          f"(a typo? a named member is the field of its whole extension: k.depth.png -> 'depth.png', "
                          f"k.depth.npy -> 'depth')", UserWarning, stacklevel=2)

    def _skipping(self, stream: Iterator[Any], skip: int) -> Iterator[Any]:
        """Resume: pass over the first ``skip`` items (consumed before the checkpoint) undecoded and
        uncounted — the saved run counted the losses it met up to its last item; from the next
        pull on, what the stream reports is this run's (or, inside a blend's resume passing over samples
        uncounted, still not: the quiet of the caller is restored)."""
        quiet, self._quiet = self._quiet, True
        try:
            for _ in islice(stream, skip):
                pass
        finally:
            self._quiet = quiet
        yield from stream

    def _buffered(self, stream: Iterator[Any], rid: int, epoch: int) -> Iterator[Any]:
        rng = derive(self.seed, epoch, f"buffer:{rid}", 0)
        buf: list[Any] = []
        for item in stream:
            if len(buf) < self.buffer_size:
                buf.append(item)
                continue
            j = int(rng.integers(len(buf)))
            buf[j], item = item, buf[j]
            yield item
        while buf:
            j = int(rng.integers(len(buf)))
            buf[j], buf[-1] = buf[-1], buf[j]
            yield buf.pop()


def open_dataset(path: str | Path | Sequence[Any], split: str | Sequence[str] = "train", modalities: Sequence[str] | None = None,
                 shuffle: bool = False, seed: int = 0, epoch: int = 0, on_error: str = "raise",
                 allow_pickle: bool = False, required: Sequence[str] | None = None, decode: bool = True,
                 buffer_size: int = 512, partition: bool = True, max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
                 image_max_size: tuple[int, int] | None = None, image_alpha: bool = False, decode_threads: int = 0,
                 storage_options: dict[str, Any] | None = None, keys: Iterable[str] | None = None,
                 audio_max_frames: AudioFrames | None = None,
                 photo_fields: Iterable[str] = ()) -> ShardDataset:
    """Open shards as a torch IterableDataset of aligned :class:`~mmdata.Sample`.

    Args:
        path: a dataset folder (``dataset.json`` + index), a tar / tar.gz, a brace pattern
            (``train-{000000..000009}.tar``), a glob, a list of those, or fsspec URLs of those — a
            URL that names no tar and no pattern is a remote dataset folder (``s3://bucket/ds``): its
            card and index are fetched, its shards streamed (nothing is staged on disk; for many
            epochs, :func:`mmdata.urls.stage_dataset` makes a checked local copy once). A shard
            listed more than once is read once (UserWarning). A local folder, shard or brace pattern
            that does not exist raises ShardError here (URLs are checked when read).
        split: split to read from a dataset folder, or a list of splits read
            as one (``["1", "2", "3"]``: the training folds of a k-fold cross-validation sharded as splits):
            the shards of each in the order given, with everything one split has (``num_samples``,
            ``samples_per_reader``, resume, ``keys``). A name listed twice raises; ``None`` is refused
            (the default is ``"train"``). A local folder of bare shards: an Energon folder's
            ``.nv-meta/split.yaml`` ``split_parts`` (less ``exclude``); else the tars named for the split
            (``val-000.tar``, ``Validation_01.tar``, ``val/000.tar``: :func:`_tar_split`); a folder whose tars carry no split name (``shard-000.tar``) is all
            ``"train"`` (the default reads every tar); a split no tar is named for raises naming the tars
            (:func:`bare_folder_splits` lists a folder's splits). Hidden folders and files (``.Trash/``) are
            not read, and a key read from two of the folder's shards in a pass is warned of, naming both.
            A tar, pattern, glob or list (``::``-joined too, as webdataset writes one) is read as given:
            ``split`` does not apply (a pattern or list whose tars are named for several splits is warned of).
            A list holding a dataset folder raises ShardError: several datasets' split read as one, classes
            matched by name, is :func:`mmdata.blend` (``{name: folder}``).
        modalities: fields to keep (others are not decoded; in the column layout not even read): a
            list of names, or one name (``"image"``). The label, the target, is kept either way (as
            :func:`mmdata.loader` keeps it; ``ds.modalities`` lists it); metadata ``json`` only when named. For a dataset folder, a name that is neither a
            stored field nor a standard modality (image, audio, text, label) raises ShardError naming
            the fields (bare shards: a UserWarning when a whole pass found none of the extra names).
        shuffle: shuffle shard order and samples (bounded buffer), seeded by (seed, epoch). The order
            is a function of (seed, epoch) and the number of readers (DataLoader workers x ranks): the
            same samples come in another order with another worker count.
        seed: shuffle seed. epoch: the first epoch (later iterations advance it unless ``set_epoch``).
        on_error: ``"raise"`` (ShardError naming shard and key), ``"skip"`` or ``"warn"`` (counted in
            ``.skipped`` / ``.errors``, one count per sample lost, per iteration).
        allow_pickle: decode pickle members (``.pyd/.pickle/.pth``, any case) — only for shards you trust.
        required: modalities a sample must have (else error / skip): a list of names, or one name.
        decode: False yields raw member bytes keyed by extension (the same samples are refused as when
            decoding: two members giving one field, pickles, missing required modalities).
        buffer_size: shuffle buffer size in samples (>= 1).
        partition: split the data over DataLoader workers and distributed ranks (exactly once per
            epoch); False gives every process the whole split (e.g. to build an in-memory cache).
        max_member_bytes: a member declaring more bytes is not read: ShardError naming shard, member
            and size, or a counted skip of its sample (default 1 GiB).
        image_max_size: ``(height, width)`` (or N: N x N) decode hint: JPEGs are decoded DCT-scaled to the smallest
            size at least this large (PIL draft mode); other formats decode at full size. Use it when
            the first geometric op resizes down anyway.
        image_alpha: keep the alpha channel of RGBA / LA / transparent-palette images (4 / 2 channels)
            instead of dropping it (PIL's ``convert("RGB")``); :func:`mmdata.loader` sets it when the
            recipe's normalize stage blends alpha (``to_rgb`` / ``to_gray`` with ``alpha: blend``).
        decode_threads: decoding threads per reader process (0: the CPUs the process may use — its
            affinity, ``taskset`` / a cgroup cpuset — ``// workers``, at most 4; 1: decode inline). Only
            samples with an image or audio member go to the threads (those decoders release the GIL);
            text, labels, json and arrays are decoded inline. Order and output do not depend on it.
        storage_options: options of the fsspec filesystem of URL paths (``{"endpoint_url": ...}``
            for s3fs); None: the protocol's defaults (environment variables, config files).
        keys: read only these samples of the split (a dataset folder's): sample keys — a list, a set, a
            pandas Series, or a table with a ``key`` column (a pandas / duckdb / pyarrow filter of
            ``index.parquet``). Each selected sample is read once per epoch, in the split's order (a
            filter, like webdataset's ``select``: the order given does not count, repeats count once),
            split over workers and ranks; the others are passed over undecoded (a shard holding none is
            not opened). ``num_samples``, ``samples_per_reader`` (so ``len(mmdata.loader(...))``) and
            resume count the selected samples only; damage to samples not selected is not reported. A
            key the split does not hold raises ShardError naming a few (and the split holding them).
        audio_max_frames: decode hint for the ``audio`` field: the frames from the start of each clip that
            are used — an int, or a function of the clip's sample rate
            (``mmdata.augment.audio.DecodeFrames``, what :func:`mmdata.loader` passes when the
            recipe's normalize stage trims clips); the rest of a longer clip is not decoded, and
            ``meta["audio_seconds"]`` gives its whole length (from its header). The header's size checks
            stay; damage past those frames is not met. None (default): whole clips.
        photo_fields: named image fields (``image2.gif``: a second view of the product) decoded as the
            ``image`` field is — a palette image to its colours, 16-bit to 8-bit, EXIF orientation applied,
            alpha as ``image_alpha`` says — not as stored values (a palette mask's class indices).
            :func:`mmdata.loader` passes the fields its recipe declares ``image`` under ``targets:``.
            A list of names, or one name; a name is the field's whole name, extension included (``image2``
            for ``image2.gif`` raises ShardError naming the fields; names of which none is a field are warned of
            when the dataset has other named image fields: a likely misspelling).
            Default: none (QA39 ecommerce #1, review codecs #3).

    Example:
        >>> import tempfile
        >>> import mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> tmp = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(tmp + "/raw", n=3), tmp + "/ds", progress=False)
        >>> [s.key for s in open_dataset(tmp + "/ds")]
        ['000000', '000001', '000002']
    """
    return ShardDataset(path, split=split, modalities=modalities, shuffle=shuffle, seed=seed, epoch=epoch,
                        on_error=on_error, allow_pickle=allow_pickle, required=required, decode=decode,
                        buffer_size=buffer_size, partition=partition, max_member_bytes=max_member_bytes,
                        image_max_size=image_max_size, image_alpha=image_alpha, decode_threads=decode_threads,
                        storage_options=storage_options, keys=keys, audio_max_frames=audio_max_frames,
                        photo_fields=photo_fields)
