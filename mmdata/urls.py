"""Paths given as URLs: ``file://`` anywhere a path goes, and fsspec URLs (object stores, HTTP).

What each command accepts (docs/scale.md):

* ``file:///abs/path`` is a local path everywhere (``mmdata shard`` / ``augment`` sources and output
  folders, ``open_dataset``, an ablation's ``dataset.path`` and ``--out``);
* an fsspec URL (``s3://``, ``gs://``, ``az://``, ...) as the **output folder** of ``mmdata shard`` /
  ``mmdata augment``: each shard is written to a local temp file and uploaded whole by the task that
  wrote it (one PUT: no partial shard is ever visible), the resume journal is one object per
  finished shard under ``OUT/.mmdata-journal/``, and the index, shards table and card are uploaded
  last (:mod:`mmdata.shards.output`);
* a dataset folder at such a URL is read by :func:`mmdata.open_dataset` (index and card fetched,
  shards streamed), ``mmdata inspect`` / ``verify``, ``mmdata augment`` (as its source) and an
  ablation's ``dataset.path`` and ``mmdata train`` / :func:`mmdata.train.train` — those stage the
  folder into a node-local cache (:func:`stage_dataset`: every shard checked against its sha256 in
  ``shards.parquet``, content-addressed by the dataset's fingerprint, downloaded once per node);
  :func:`mmdata.loader` streams it as ``open_dataset`` does;
* a ``mmdata shard`` **source** (a folder of raw files, or a CSV / JSONL / Parquet manifest) at such a
  URL is listed once on the driver (``fs.find``: names, sizes, ETags) and planned with the rules of
  a local folder; each shard's task fetches its own members (:mod:`mmdata.shards.remote_source`),
  so the output is byte for byte that of sharding a local copy (``http(s)://`` sources are refused:
  a web server has no listing of names and sizes);
* an ablation's ``--out`` at such a URL is worked on in a local copy made anew from the URL at
  start; ``runs.parquet`` is uploaded on every save and the report at the end
  (:mod:`mmdata.ablate.remote_out`), so a driver on any machine resumes from the URL.

Credentials and endpoints are fsspec's: the protocol package's own chain (environment variables such
as ``AWS_ACCESS_KEY_ID`` / ``AWS_ENDPOINT_URL``, ``~/.aws``, an instance role, fsspec's config) or the
API's ``storage_options``. fsspec and the package of a protocol (s3fs, gcsfs, adlfs, aiohttp for
http) are the user's to install (``pip install 'mmdata[s3]'`` for S3); a missing one is a clear error
naming it, and a failing request names the URL and what to check (:func:`redact` keeps a password
written into a URL out of messages; ``storage_options`` never appear in a message or a card).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from mmdata.errors import MMDataError


def protocol(path: str | Path) -> str | None:
    """The URL protocol of ``path`` (``"s3"``, ``"file"``, ``"simplecache::s3"``), None for a plain path.

    Example:
        >>> protocol("s3://bucket/ds"), protocol("/data/ds"), protocol("file:///data/ds"), protocol("file:/data/ds")
        ('s3', None, 'file', 'file')
    """
    s = str(path) if isinstance(path, (str, Path)) else ""
    if s.startswith("file:/"):  # file:///x, and file:/x (RFC 8089; what a pathlib.Path makes of file:///x)
        return "file"
    return s.split("://", 1)[0] if "://" in s else None


def local_path(path: str | Path, what: str = "path") -> Path:
    """``path`` as a local :class:`~pathlib.Path`: plain paths as they are, ``file://`` URLs
    stripped; any other URL is a clear error (``what`` names the argument), and so is a path no
    system call can take (:func:`check_path_length`: a name over 255 bytes, a path of 4096 or more).

    Example:
        >>> str(local_path("file:///data/ds")), str(local_path("file:/data/ds")), str(local_path("runs/x"))
        ('/data/ds', '/data/ds', 'runs/x')
    """
    proto = protocol(path)
    if proto is None:
        return check_path_length(Path(path), what)
    s = str(path)
    if proto == "file":
        if not s.startswith("file://"):  # file:/data/ds
            return check_path_length(Path(s[len("file:"):]), what)
        rest = s[len("file://"):]
        return check_path_length(Path(rest[len("localhost"):] if rest.startswith("localhost/") else rest), what)
    raise MMDataError(f"{what} {s}: {proto}:// URLs are not supported here; mount it at the same path on every node "
                      f"(s3fs, gcsfuse, Mountpoint, NFS) and pass that path, or a file:// URL")


#: the longest file name and path (with its NUL) Linux takes: every file system it mounts has NAME_MAX 255,
#: and the kernel copies a path of at most PATH_MAX 4096 bytes in
NAME_MAX, PATH_MAX = 255, 4096


def shown_path(path: str | Path) -> str:
    """``path`` for a message: as it is, or, when over 200 characters, its start and end around ``...``
    and its length (a 5,000-byte path in full would bury the message).

    Example:
        >>> shown_path("ds"), shown_path("/d/" + "a" * 300).endswith("aaa (303 characters)")
        ('ds', True)
    """
    s = str(path)
    return s if len(s) <= 200 else f"{s[:120]}...{s[-60:]} ({len(s)} characters)"


def path_too_long(path: str | Path) -> str | None:
    """Why no system call can take the local ``path`` (a name over :data:`NAME_MAX` bytes, a path of
    :data:`PATH_MAX` bytes or more: ``ENAMETOOLONG`` on every Linux file system), or None. Read from the
    string alone: no file system is touched.

    Example:
        >>> path_too_long("runs/x"), path_too_long("runs/" + "x" * 256)
        (None, 'a name of 256 bytes (xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...); a file or folder name takes at most 255')
    """
    if os.name != "posix":
        return None
    raw = os.fsencode(str(path))
    if len(raw) >= PATH_MAX:
        return f"a path of {len(raw)} bytes; a path takes at most {PATH_MAX - 1}"
    name = max(raw.split(b"/"), key=len)
    if len(name) > NAME_MAX:
        return (f"a name of {len(name)} bytes ({os.fsdecode(name[:30])}...); a file or folder name takes at most "
                f"{NAME_MAX}")
    return None


def check_path_length(path: Path, what: str = "path") -> Path:
    """``path``, or an MMDataError naming ``what``, the path and :func:`path_too_long`'s reason."""
    why = path_too_long(path)
    if why is not None:
        raise MMDataError(f"{what} {shown_path(path)}: too long ({why}); give a shorter path")
    return path


def lookup(path: str | Path, what: str = "path") -> os.stat_result | None:
    """``os.stat`` of the local ``path`` (links followed); None when nothing is there (or a folder
    above it is a file). A path the system cannot look up is an MMDataError naming ``what``, the path
    and why: too long (:func:`check_path_length`), a symbolic link loop, a folder above it that cannot
    be searched (no permission).

    Example:
        >>> import tempfile
        >>> lookup(tempfile.mkdtemp()) is not None, lookup("/no/such/folder")
        (True, None)
    """
    check_path_length(Path(path), what)
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        why = {errno.ELOOP: "a symbolic link loop (a link that leads back to itself)",
               errno.ENAMETOOLONG: "too long (the path with its links followed)"}.get(exc.errno or 0, exc.strerror or str(exc))
        raise MMDataError(f"{what} {shown_path(path)}: cannot look it up: {why}; give another path") from None


def unless_file_url(path: Any) -> Any:
    """``path`` with a ``file://`` URL (or ``file:/...``) turned into its local :class:`~pathlib.Path`;
    anything else (a path, another URL, a list of shards) as it is.

    Example:
        >>> str(unless_file_url("file:///data/ds")), unless_file_url("s3://b/ds")
        ('/data/ds', 's3://b/ds')
    """
    return local_path(path) if isinstance(path, (str, Path)) and protocol(path) == "file" else path


def redact(url: str) -> str:
    """``url`` fit for a message or a card: a user and password in it (``https://user:pw@host/...``)
    replaced by ``***``; storage options never appear in either.

    Example:
        >>> redact("https://me:secret@host/raw"), redact("s3://bucket/raw")
        ('https://***@host/raw', 's3://bucket/raw')
    """
    head, sep, rest = str(url).partition("://")
    if not sep:
        return str(url)
    netloc, slash, tail = rest.partition("/")
    return f"{head}://***@{netloc.rpartition('@')[2]}{slash}{tail}" if "@" in netloc else str(url)


def is_remote(path: Any) -> bool:
    """True for a URL that is not ``file://`` (it needs fsspec to be read)."""
    proto = protocol(path)
    return proto is not None and proto != "file"


def is_folder_url(path: Any) -> bool:
    """True for an fsspec URL of a dataset *folder*: a non-``file://`` URL that names no shard file
    and is no pattern (those are bare shards, streamed as they are).

    Example:
        >>> is_folder_url("s3://b/ds"), is_folder_url("s3://b/ds/train-{000000..000003}.tar"), is_folder_url("/ds")
        (True, False, False)
    """
    if not isinstance(path, (str, Path)) or not is_remote(path):
        return False
    s = str(path).rstrip("/")
    return not s.endswith((".tar", ".tar.gz", ".tgz")) and not any(c in s for c in "{}*?[")


def filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """``(fsspec filesystem, path within it)`` for ``url``, or a clear error naming what to install.

    ``storage_options``: keyword arguments of the protocol's filesystem (``{"endpoint_url": ...,
    "key": ..., "secret": ...}`` for s3fs); None: its defaults (environment, config files).

    Example:
        >>> fs, root = filesystem("memory://ds")  # doctest: +SKIP
    """
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:
        raise MMDataError(f"{url}: reading URLs needs fsspec: pip install 'mmdata[s3]' (fsspec and s3fs; another "
                          "store also needs its fsspec package: gcsfs, adlfs)") from None
    try:
        return url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:  # fsspec knows the protocol, its package is missing (its message names it)
        s3 = (protocol(url) or "").split("::")[-1] in ("s3", "s3a") or "s3fs" in str(exc)  # mmdata's extra for it
        hint = " (pip install 'mmdata[s3]')" if s3 else ""
        raise MMDataError(f"{url}: fsspec cannot open {protocol(url)}:// URLs here: {exc}{hint}") from None
    except ValueError as exc:
        known = ", ".join(sorted(fsspec.available_protocols())[:12])
        raise MMDataError(f"{url}: unknown URL protocol {protocol(url)!r} ({exc}); fsspec knows {known}, ...") from None
    except Exception as exc:  # noqa: BLE001 — a filesystem that connects on creation (hdfs: a JVM, ...)
        raise MMDataError(f"{url}: cannot open its filesystem ({type(exc).__name__}: {str(exc)[:300]})") from None


#: what to check when a request to an object store fails (named in the error)
CHECK = ("check the credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS, ...), the "
          "endpoint (AWS_ENDPOINT_URL, or storage_options={'endpoint_url': ...}) and that the bucket exists")


def call(url: str, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` — a request to the store at ``url`` — with its failure turned into an
    error naming the URL, what was being done and what to check (credentials, endpoint, bucket).

    Example:
        >>> fs, root = filesystem("s3://bucket/ds")  # doctest: +SKIP
        >>> call("s3://bucket/ds", "list it", fs.ls, root)  # doctest: +SKIP
    """
    try:
        return fn(*args, **kwargs)
    except MMDataError:
        raise
    except Exception as exc:  # noqa: BLE001 — botocore / aiohttp / google errors have no common base
        raise request_failed(url, doing, exc) from None


def request_failed(url: str, doing: str, exc: BaseException) -> MMDataError:
    """The error of a failed request to the store at ``url``: the URL, what was being done, the
    store's own error and what to check (the wording of every such error; :func:`call` raises it)."""
    return MMDataError(f"{url}: cannot {doing} ({type(exc).__name__}: {str(exc)[:300]}); {CHECK}")


def read_bytes(url: str, storage_options: dict[str, Any] | None = None, doing: str = "read it") -> bytes:
    """The object at ``url`` in one request; a failure is :func:`request_failed`'s error, naming the
    URL (credentials redacted) and ``doing``."""
    fs, path = filesystem(url, storage_options)
    return call(redact(url), doing, fs.cat_file, path)


def put_file(local: str | Path, url: str, storage_options: dict[str, Any] | None = None) -> None:
    """Upload the file ``local`` as the object ``url`` in one request (an object store makes it
    visible whole or not at all; a multipart upload only when it completes)."""
    fs, path = filesystem(url, storage_options)
    call(url, "upload it", fs.put_file, str(local), path)


class NoCacheError(MMDataError):
    """No cache folder can be named: ``$MMDATA_CACHE`` and ``$XDG_CACHE_HOME`` unset and no home directory."""


def cache_dir() -> Path:
    """mmdata's cache on this node (staged datasets, finished jobs' records, remote job locks): ``$MMDATA_CACHE``
    (give an absolute path: a relative one is taken from each command's working directory), else
    ``$XDG_CACHE_HOME/mmdata``, else ``~/.cache/mmdata``.

    An empty ``HOME`` counts as unset. A user without a home directory (``HOME`` unset and a uid with no passwd entry: an arbitrary UID in an
    OpenShift-style container) and neither variable set has no cache: a :class:`NoCacheError` naming
    ``MMDATA_CACHE``. Its optional uses (a finished job's record) go on without it
    (:class:`mmdata.shards.output.LocalOutput`); those that need one (staging a dataset from a URL, the
    lock of a job writing to a URL) stop with that error.

    Example:
        >>> os.environ["MMDATA_CACHE"] = "/tmp/mmdata-cache"; str(cache_dir())  # doctest: +SKIP
        '/tmp/mmdata-cache'
    """
    if os.environ.get("MMDATA_CACHE"):
        try:
            return _expand(os.environ["MMDATA_CACHE"]).absolute()
        except (RuntimeError, KeyError):  # "~/cache" or "~user/cache" without that home directory
            raise NoCacheError(f"MMDATA_CACHE={os.environ['MMDATA_CACHE']}: '~' names no home directory here; "
                               f"give an absolute path") from None
    try:
        return (_expand(os.environ.get("XDG_CACHE_HOME") or _home() / ".cache") / "mmdata").absolute()
    except (RuntimeError, KeyError):  # Path.home() / expanduser(): no HOME and no passwd entry
        uid = getattr(os, "getuid", lambda: "?")()
        raise NoCacheError(f"mmdata has no cache folder: MMDATA_CACHE and XDG_CACHE_HOME are not set and there is no "
                           f"home directory (HOME is {'empty' if os.environ.get('HOME') == '' else 'unset'} and uid "
                           f"{uid} has no passwd entry, as for an arbitrary "
                           f"UID in a container); set MMDATA_CACHE to a writable folder, e.g. "
                           f"MMDATA_CACHE=/tmp/mmdata-cache") from None


def _home() -> Path:
    """The user's home directory; an empty ``HOME`` (``HOME= cmd``) counts as unset — Python would take it as
    ``/`` and put the cache in ``/.cache`` — so the passwd entry names it (a KeyError without one)."""
    if os.environ.get("HOME", None) == "":
        try:
            import pwd
        except ImportError:  # Windows: no passwd database
            raise KeyError("HOME") from None
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    return Path.home()


def _expand(path: str | Path) -> Path:
    """``path`` with a leading ``~`` expanded as :func:`_home` names the home (an empty HOME is no home:
    ``~/cache`` was ``/cache``); ``~user`` as Python expands it."""
    text = str(path)
    if text == "~" or text.startswith("~/"):
        return _home() / text[2:]
    return Path(text).expanduser()


def stage_dataset(url: str, cache: str | Path | None = None, storage_options: dict[str, Any] | None = None,
                  progress: bool = False) -> Path:
    """A local copy of the dataset folder at ``url`` (card, index, shards table and every shard),
    checked and reused: ``<cache>/datasets/<fingerprint>``.

    ``storage_options`` are the fsspec filesystem's options (``{"endpoint_url": ...}`` for s3fs;
    None: the protocol's defaults — environment variables, config files, instance roles).
    ``progress``: a download bar (bytes, rate) on stderr while shards are fetched.

    Every shard is checked against its sha256 in ``shards.parquet`` and the card's fingerprint
    against those digests, so a half-written or changed remote dataset is an error naming the shard,
    never a silent mix. Concurrent stagings on one node (several runs starting at once) each
    download into a temporary folder; the first to finish renames it into place, the others use it.

    Example:
        >>> local = stage_dataset("s3://bucket/avdigits")  # doctest: +SKIP
    """
    import pyarrow.parquet as pq

    from mmdata.io import file_sha256
    from mmdata.shards.index import CARD, INDEX, SHARDS, check_shard_name, read_card

    card_bytes, card = read_card(url, storage_options)
    fp = str(card.get("fingerprint") or "")
    if len(fp) != 64:
        raise MMDataError(f"{url}/{CARD}: no dataset fingerprint (written by an older mmdata?): rewrite it with `mmdata shard`")
    base = Path(cache) if cache is not None else cache_dir()
    dest = base / "datasets" / fp
    if (dest / CARD).is_file():  # the card is written last: its presence means complete
        return dest
    fs, root = filesystem(url, storage_options)
    root = root.rstrip("/")
    tmp = base / "datasets" / f".{fp}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        for name in (INDEX, SHARDS):
            _get(fs, f"{root}/{name}", tmp / name, url)
        table = pq.read_table(tmp / SHARDS, columns=["shard", "sha256", "bytes"]).to_pylist()
        digests = []
        bar = _download_bar(f"staging {url}", sum(int(r["bytes"] or 0) for r in table)) if progress else None
        with bar or contextlib.nullcontext():
            for row in table:
                target = tmp / check_shard_name(url, row["shard"], where=SHARDS)
                target.parent.mkdir(parents=True, exist_ok=True)
                _get(fs, f"{root}/{row['shard']}", target, url)
                found = file_sha256(target)
                if found != row["sha256"]:
                    raise MMDataError(f"{url}/{row['shard']}: sha256 {found}, but {SHARDS} says {row['sha256']} "
                                      "(the remote dataset is being rewritten, or damaged)")
                digests.append(found)
                if bar is not None:
                    bar.advance(bar.task_ids[0], int(row["bytes"] or 0))
        if hashlib.sha256("".join(digests).encode()).hexdigest() != fp:
            raise MMDataError(f"{url}: the shards listed in {SHARDS} do not match the card's fingerprint "
                              "(the remote dataset is being rewritten?)")
        (tmp / CARD).write_bytes(card_bytes)  # last: its presence marks the copy complete
        try:
            os.rename(tmp, dest)
        except OSError:  # another run on this node staged it meanwhile
            if not (dest / CARD).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _download_bar(what: str, total: int) -> Any:
    """A progress bar of ``total`` bytes on stderr (a context manager: shown while inside it; plain lines
    off a terminal), or None with ``MMDATA_PROGRESS=off`` (see :mod:`mmdata.progress`)."""
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TransferSpeedColumn

    from mmdata.progress import make_progress

    bar = make_progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        transient=True, unit="bytes")
    if bar is not None:
        bar.add_task(what, total=total)
    return bar


def _get(fs: Any, src: str, dest: Path, url: str) -> None:
    try:
        fs.get_file(src, str(dest))
    except FileNotFoundError:
        raise MMDataError(f"{url}: {src} not found (the dataset folder is incomplete)") from None
    except OSError as exc:
        raise MMDataError(f"{url}: cannot download {src} ({type(exc).__name__}: {exc})") from None
