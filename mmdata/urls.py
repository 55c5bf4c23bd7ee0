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
http) are the user's to install (``pip install -e '.[s3]'`` in a clone, or the wheel with ``[s3]``, for S3:
:func:`~mmdata.errors.install_hint`); a missing one is a clear error
naming it, and a failing request names the URL and what to check (:func:`redact_text`, applied to every
:class:`~mmdata.errors.MMDataError`, keeps a password written into a URL and the signature or token of its
query out of messages; ``storage_options`` never appear in a message or a card).

The cache (:func:`cache_dir`; docs/scale.md, "Cache") must be the user's own: another user's cache
folder, and a link or another user's folder or file in it, are refused by name (:func:`check_private`),
never followed; the folders mmdata makes there are private (:func:`cache_subdir`, mode 0700).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import urllib.parse
import uuid
import warnings
from pathlib import Path
from typing import Any

from mmdata.errors import CacheWarning, MMDataError, install_hint


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
        >>> str(local_path(Path("/data/my ds").as_uri())), str(local_path("file:///data/my ds"))
        ('/data/my ds', '/data/my ds')
    """
    proto = protocol(path)
    if proto is None:
        return check_path_length(Path(path), what)
    s = str(path)
    if proto == "file":
        from urllib.parse import unquote

        # percent-escapes decoded (RFC 8089; Path.as_uri() writes a space as %20: QA33), a raw space kept
        if not s.startswith("file://"):  # file:/data/ds
            return check_path_length(Path(unquote(s[len("file:"):])), what)
        rest = unquote(s[len("file://"):])
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


#: query (or fragment) parameters whose values are secrets (a presigned S3 / GCS URL, SigV2's
#: ``AWSAccessKeyId`` / ``Signature``, an Azure SAS's ``sig`` or ``sas_token``, a token or key handed in the
#: URL): masked by :func:`redact_text`, whatever their case or percent-encoding (``sv``, a SAS's version,
#: is not one)
SECRET_PARAMS = ("x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
                 "x-goog-credential", "awsaccesskeyid", "sig", "signature", "sas_token", "token", "access_token",
                 "refresh_token", "id_token", "api_key", "apikey", "key", "password", "passwd", "secret",
                 "client_secret")
_SECRET_NAMES = frozenset(SECRET_PARAMS)

#: a scheme and what follows it up to a blank or quote: the URL :func:`redact_text` looks for a user in
_URL_TOKEN = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s'\"<>]*)")
#: what follows ``host:`` when the colon is a port's (``:8080/``, ``:8080?``, ``:8080`` at the end)
_PORT = re.compile(r"\d{0,5}(?:[/?#]|$)")
_PARAM = re.compile(r"(?P<sep>[?&;#])(?P<name>[^=&;#?\s'\"()<>\[\],:/]+)=(?P<value>[^&;#\s'\"()<>\[\],:]*)")


def _mask_userinfo(m: re.Match[str]) -> str:
    """A URL with its user and password masked. The userinfo normally ends at the last ``@`` before the
    first ``/``, ``?`` or ``#``; a pasted, unencoded secret may hold ``/`` (AWS secret keys do:
    ``s3://AKIA...:wJal/K7MD/bPx@bucket/ds``), so a ``user:`` followed by something that is not a port
    takes everything up to the last ``@`` before the first ``/`` after an ``@`` — while a path's ``@``
    (``s3://bucket/path/a@b.txt``, ``http://h:8080/a@b``) has no ``user:`` before it and stays."""
    scheme, rest = m["scheme"], m["rest"]
    auth_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, auth_end)
    if at >= 0:
        return scheme + "***@" + rest[at + 1:]
    colon = rest.find(":", 0, auth_end)
    if colon <= 0 or rest.startswith("[") or _PORT.match(rest, colon + 1) or rest.startswith("/", colon + 1):
        return m[0]
    first_at = rest.find("@", colon)
    if first_at < 0:
        return m[0]
    slash = rest.find("/", first_at)
    at = rest.rfind("@", 0, slash if slash >= 0 else len(rest))
    return scheme + "***@" + rest[at + 1:]


def _mask_param(m: re.Match[str]) -> str:
    name = urllib.parse.unquote(m["name"]).strip().lower()
    return f"{m['sep']}{m['name']}=***" if name in _SECRET_NAMES else m[0]


def redact_text(text: str) -> str:
    """``text`` with every secret a URL in it may carry masked by ``***``: the user and password of each
    ``scheme://user[:password]@host`` (even a password holding ``/`` or ``@``) and the value of each query
    or fragment parameter named in :data:`SECRET_PARAMS` (``?X-Amz-Signature=...``, ``&token=...``,
    ``&sig=...``, ``?%73ig=...``, ``#access_token=...``; up to the next ``&``, ``;``, ``#``, blank, quote,
    bracket, comma or colon: a message's ``URL: what happened`` stays). Every
    :class:`~mmdata.errors.MMDataError` message goes through it.

    Example:
        >>> redact_text("cannot read http://al:pw@h:80/ds/a.tar?sig=abc&sv=2024 (see s3://b/k?X-Amz-Credential=AK)")
        'cannot read http://***@h:80/ds/a.tar?sig=***&sv=2024 (see s3://b/k?X-Amz-Credential=***)'
        >>> redact_text("s3://AKIA:wJal/K7MD/bPxEXAMPLE@bkt/ds and s3://bkt/path/a@b.txt#token=t0k")
        's3://***@bkt/ds and s3://bkt/path/a@b.txt#token=***'
    """
    text = str(text)
    if "://" in text:
        text = _URL_TOKEN.sub(_mask_userinfo, text)
    if "=" in text:
        text = _PARAM.sub(_mask_param, text)
    return text


def redact(url: str) -> str:
    """``url`` fit for a message or a card: a user and password in it (``https://user:pw@host/...``)
    and the values of secret query parameters (:func:`redact_text`) replaced by ``***``; storage options
    never appear in either.

    Example:
        >>> redact("https://me:secret@host/raw"), redact("s3://bucket/raw"), redact("https://h/x?token=t0k")
        ('https://***@host/raw', 's3://bucket/raw', 'https://h/x?token=***')
    """
    return redact_text(str(url))


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
        raise MMDataError(f"{url}: reading URLs needs fsspec: {install_hint('s3')} (fsspec and s3fs; another "
                          "store also needs its fsspec package: gcsfs, adlfs)") from None
    try:
        return url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:  # fsspec knows the protocol, its package is missing (its message names it)
        s3 = (protocol(url) or "").split("::")[-1] in ("s3", "s3a") or "s3fs" in str(exc)  # mmdata's extra for it
        hint = f" ({install_hint('s3')})" if s3 else ""
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
    call(redact(url), "upload it", fs.put_file, str(local), path)


class NoCacheError(MMDataError):
    """No cache folder can be named: ``$MMDATA_CACHE`` and ``$XDG_CACHE_HOME`` unset and no home directory."""


def cache_dir() -> Path:
    """mmdata's cache on this node (staged datasets, finished jobs' records, remote job locks): ``$MMDATA_CACHE``
    (give an absolute path: a relative one is taken from each command's working directory), else
    ``$XDG_CACHE_HOME/mmdata``, else ``~/.cache/mmdata``.

    A cache folder that exists and belongs to another user is an :class:`UnsafeCacheError` (what it
    holds decides what a job trains on and what it deletes; pip disables such a cache too); the folders
    mmdata makes in it are private (:func:`cache_subdir`).

    An empty ``HOME`` counts as unset. A user without a home directory (``HOME`` unset and a uid with no passwd entry: an arbitrary UID in an
    OpenShift-style container) and neither variable set has no cache: a :class:`NoCacheError` naming
    ``MMDATA_CACHE``. Its optional uses (a finished job's record) go on without it
    (:class:`mmdata.shards.output.LocalOutput`); those that need one (staging a dataset from a URL, the
    lock of a job writing to a URL) stop with that error.

    Example:
        >>> os.environ["MMDATA_CACHE"] = "/scratch/me/mmdata-cache"; str(cache_dir())  # doctest: +SKIP
        '/scratch/me/mmdata-cache'
    """
    if os.environ.get("MMDATA_CACHE"):
        try:
            return check_cache_root(_expand(os.environ["MMDATA_CACHE"]).absolute())
        except (RuntimeError, KeyError):  # "~/cache" or "~user/cache" without that home directory
            raise NoCacheError(f"MMDATA_CACHE={os.environ['MMDATA_CACHE']}: '~' names no home directory here; "
                               f"give an absolute path") from None
    try:
        return check_cache_root((_expand(os.environ.get("XDG_CACHE_HOME") or _home() / ".cache") / "mmdata").absolute())
    except (RuntimeError, KeyError):  # Path.home() / expanduser(): no HOME and no passwd entry
        uid = getattr(os, "getuid", lambda: "?")()
        raise NoCacheError(f"mmdata has no cache folder: MMDATA_CACHE and XDG_CACHE_HOME are not set and there is no "
                           f"home directory (HOME is {'empty' if os.environ.get('HOME') == '' else 'unset'} and uid "
                           f"{uid} has no passwd entry, as for an arbitrary "
                           f"UID in a container); set MMDATA_CACHE to a writable folder of your own, e.g. "
                           f"MMDATA_CACHE=/tmp/mmdata-cache-{uid} (mmdata makes it private: mode 0700)") from None


class UnsafeCacheError(NoCacheError):
    """A folder of mmdata's cache could be changed by another user (a symbolic link, another user's folder or
    file, one that others may write): mmdata does not use it. A :class:`NoCacheError`, so the cache's
    optional uses go on without it."""


def _uid() -> int:
    return os.geteuid() if hasattr(os, "geteuid") else -1


def _owner(uid: int) -> str:
    try:
        import pwd

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _own_cache_hint() -> str:
    return (f"use a cache of your own: set MMDATA_CACHE to a folder only you can write (e.g. "
            f"MMDATA_CACHE=$HOME/.cache/mmdata, or MMDATA_CACHE=/tmp/mmdata-cache-{_uid()} made with mkdir -m 700)")


def check_cache_root(root: Path) -> Path:
    """``root``, or an :class:`UnsafeCacheError` when it exists and belongs to another user (links
    followed: a cache that is a link to a folder of your own, on a scratch disk, is fine). A root that
    does not exist yet is made by :func:`cache_subdir`, private."""
    try:
        st = os.stat(root)
    except OSError:
        return root
    if os.name == "posix" and st.st_uid != _uid():
        raise UnsafeCacheError(f"mmdata's cache {shown_path(root)} belongs to {_owner(st.st_uid)}, not to you "
                               f"({_owner(_uid())}): another user decides what is in it (the datasets a job "
                               f"trains on, the folders it deletes), so mmdata does not use it; {_own_cache_hint()}")
    return root


def check_private(path: Path, what: str = "cache entry", folder: bool = True) -> os.stat_result:
    """``os.lstat`` of ``path``, a folder (``folder``) or file mmdata keeps in its cache, or an
    :class:`UnsafeCacheError` naming it: a symbolic link (never followed: another user could point it at
    your files), not a folder / regular file, or owned by another user. Whether others may write it is
    the caller's to judge (``st_mode & 0o022``)."""
    st = os.lstat(path)
    why = None
    if stat.S_ISLNK(st.st_mode):
        why = f"is a symbolic link (to {shown_path(os.readlink(path))})"
    elif folder and not stat.S_ISDIR(st.st_mode) or not folder and not stat.S_ISREG(st.st_mode):
        why = f"is not a {'folder' if folder else 'regular file'}"
    elif os.name == "posix" and st.st_uid != _uid():
        why = f"belongs to {_owner(st.st_uid)}, not to you ({_owner(_uid())})"
    if why is not None:
        raise UnsafeCacheError(f"{what} {shown_path(path)} {why}: mmdata uses (and deletes) only what you made "
                               f"in its cache, so it stops here; remove it if it is yours, or {_own_cache_hint()}")
    return st


def cache_subdir(*parts: str, base: str | Path | None = None) -> Path:
    """The folder ``<cache>/<parts...>`` (``base``, else :func:`cache_dir`), made where missing, each
    made private (mode 0700 whatever the umask: a staged dataset is no one else's to read) and each that
    exists checked by :func:`check_private` (a link, another user's folder: an :class:`UnsafeCacheError`;
    a folder of yours that others may read or write is made private again).

    Example:
        >>> import tempfile
        >>> d = cache_subdir("datasets", base=tempfile.mkdtemp()); oct(d.stat().st_mode & 0o777)
        '0o700'
    """
    root = check_cache_root(Path(base).absolute()) if base is not None else cache_dir()
    if not root.exists():
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(root, 0o700)  # the mode of mkdir is masked by the umask
    folder = root
    for part in parts:
        folder = folder / part
        try:
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)
            continue
        except FileExistsError:
            pass
        st = check_private(folder, "cache folder")
        if st.st_mode & 0o077:  # an older mmdata made it 0755, or a chmod: private again
            os.chmod(folder, 0o700)
    return folder


def remove_tree(path: Path) -> None:
    """Remove ``path``: a folder with what it holds, never following a link (a link, at the top or inside,
    is removed itself, not what it points to)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # removes links inside as links (rmtree never follows them)
    else:
        os.unlink(path)


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
    never a silent mix. The copy is private (mode 0700) and reused only while it is the user's own,
    writable by no one else and each shard of the size ``shards.parquet`` says (a link or another user's
    file there: an :class:`UnsafeCacheError` naming it; a copy that changed: staged anew, with a
    :class:`~mmdata.errors.CacheWarning`); temp folders of killed stagings are removed
    (:func:`remove_stale_staging`). Concurrent stagings on one node (several runs starting at once) each
    download into a temporary folder; the first to finish renames it into place, the others use it.

    Example:
        >>> local = stage_dataset("s3://bucket/avdigits")  # doctest: +SKIP
    """
    import pyarrow.parquet as pq

    from mmdata.io import _host_tag, file_sha256
    from mmdata.shards.index import CARD, INDEX, SHARDS, check_shard_name, read_card

    shown = redact(url)
    card_bytes, card = read_card(url, storage_options)
    fp = str(card.get("fingerprint") or "")
    if len(fp) != 64:
        raise MMDataError(f"{shown}/{CARD}: no dataset fingerprint (written by an older mmdata?): rewrite it with `mmdata shard`")
    datasets = cache_subdir("datasets", base=cache)
    remove_stale_staging(datasets)
    dest = datasets / fp
    if os.path.lexists(dest):
        why = _staged_unusable(dest, fp)
        if why is None:
            return dest
        warnings.warn(f"{dest}: the staged copy of {shown} {why}; it is removed and staged anew", CacheWarning,
                      stacklevel=2)
        aside = datasets / f".{fp}.stale-{_host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(dest, aside)
        remove_tree(aside)
    fs, root = filesystem(url, storage_options)
    root = root.rstrip("/")
    tmp = datasets / f".{fp}.tmp-{_host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(mode=0o700)
    os.chmod(tmp, 0o700)
    try:
        for name in (INDEX, SHARDS):
            _get(fs, f"{root}/{name}", tmp / name, shown)
        table = pq.read_table(tmp / SHARDS, columns=["shard", "sha256", "bytes"]).to_pylist()
        digests = []
        bar = _download_bar(f"staging {shown}", sum(int(r["bytes"] or 0) for r in table)) if progress else None
        with bar or contextlib.nullcontext():
            for row in table:
                target = tmp / check_shard_name(shown, row["shard"], where=SHARDS)
                target.parent.mkdir(parents=True, exist_ok=True)
                _get(fs, f"{root}/{row['shard']}", target, shown)
                found = file_sha256(target)
                if found != row["sha256"]:
                    raise MMDataError(f"{shown}/{row['shard']}: sha256 {found}, but {SHARDS} says {row['sha256']} "
                                      "(the remote dataset is being rewritten, or damaged)")
                digests.append(found)
                if bar is not None:
                    bar.advance(bar.task_ids[0], int(row["bytes"] or 0))
        if hashlib.sha256("".join(digests).encode()).hexdigest() != fp:
            raise MMDataError(f"{shown}: the shards listed in {SHARDS} do not match the card's fingerprint "
                              "(the remote dataset is being rewritten?)")
        (tmp / CARD).write_bytes(card_bytes)  # last: its presence marks the copy complete
        try:
            os.rename(tmp, dest)
        except OSError:  # another run on this node staged it meanwhile
            if not os.path.lexists(dest) or _staged_unusable(dest, fp) is not None:
                raise
    finally:
        remove_tree(tmp)
    return dest


#: a staging's temp folder in ``<cache>/datasets`` (``.<fingerprint>.tmp-<host>-<pid>-<8 hex>``; before
#: the host was in it, ``.<fingerprint>.tmp-<pid>-<8 hex>``)
STAGING_TEMP = re.compile(r"\.(?P<fp>[0-9a-f]{64})\.(?:tmp|stale)-(?:(?P<host>[0-9a-f]{8})-)?(?P<pid>\d+)-[0-9a-f]{8}")

#: a staging temp folder older than this (seconds) is removed even if its pid is alive (a pid reused)
STALE_AFTER_S = 24 * 3600


def remove_stale_staging(datasets: Path) -> list[Path]:
    """Remove the temp folders that killed stagings left in ``datasets`` (``<cache>/datasets``): those
    of a process of this machine that is gone, and any older than a day (one line says so); return them.
    A live staging's folder, another user's, and any name mmdata does not make are kept.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); (d / f".{'0' * 64}.tmp-999999999-0123abcd").mkdir()
        >>> [p.name[-14:] for p in remove_stale_staging(d)]  # doctest: +ELLIPSIS
        ['...-0123abcd']
    """
    import time

    from mmdata.io import _host_tag, _pid_alive

    removed = []
    for entry in os.scandir(datasets):
        m = STAGING_TEMP.fullmatch(entry.name)
        if m is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if st.st_uid != _uid() and os.name == "posix":
            continue
        old = time.time() - st.st_mtime > STALE_AFTER_S
        gone = m["host"] in (None, _host_tag()) and not _pid_alive(int(m["pid"]))
        if old or gone:
            remove_tree(Path(entry.path))
            removed.append(Path(entry.path))
    if removed:
        warnings.warn(f"{datasets}: removed {len(removed)} partial staging folder(s) left by killed runs "
                      f"({', '.join(p.name for p in removed[:3])}{', ...' if len(removed) > 3 else ''})",
                      CacheWarning, stacklevel=3)
    return removed


def _staged_unusable(dest: Path, fp: str) -> str | None:
    """Why the staged copy ``dest`` cannot be used as it is (None: it can): a part of it that others may
    write, a file missing, of another size than ``shards.parquet`` says, or a card or shards table of
    another dataset. A link, or a file of another user, is an :class:`UnsafeCacheError`: another user put
    it there, and it is not mmdata's to delete. (Each shard's sha256 was checked when it was staged.)"""
    import pyarrow.parquet as pq

    from mmdata.shards.index import CARD, SHARDS

    st = check_private(dest, "staged dataset")  # first: os.walk would follow a link at the top
    if st.st_mode & 0o022:
        return "is a folder others may write"
    if st.st_mode & 0o077:  # staged by an older mmdata under umask 022: private again
        os.chmod(dest, 0o700)
    sizes = {}
    for top, dirs, files in os.walk(dest):  # never follows a link below the top
        for name in [*dirs, *files]:
            p = Path(top) / name
            st = check_private(p, "staged file", folder=name in dirs)
            if st.st_mode & 0o022:
                return f"has {p.relative_to(dest)}, which others may write"
            sizes[p.relative_to(dest).as_posix()] = st.st_size
    if CARD not in sizes:  # the card is written last: without it the copy is incomplete
        return f"has no {CARD}"
    try:
        staged_fp = json.loads((dest / CARD).read_bytes()).get("fingerprint")
    except (ValueError, AttributeError):
        staged_fp = None
    if staged_fp != fp:
        return f"has a {CARD} of another dataset than {fp[:12]}..."
    try:
        table = pq.read_table(dest / SHARDS, columns=["shard", "sha256", "bytes"]).to_pylist()
    except Exception:  # noqa: BLE001 — a missing or damaged table: any pyarrow error
        return f"has no readable {SHARDS}"
    if hashlib.sha256("".join(str(r["sha256"]) for r in table).encode()).hexdigest() != fp:
        return f"has a {SHARDS} whose digests are not the dataset's fingerprint"
    for row in table:
        if sizes.get(row["shard"]) != int(row["bytes"] or 0):
            found = sizes.get(row["shard"])
            return (f"has {row['shard']} of {found} bytes, but {SHARDS} says {row['bytes']}" if found is not None
                    else f"lacks {row['shard']}")
    return None


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
        raise MMDataError(f"{redact(url)}: {redact(src)} not found (the dataset folder is incomplete)") from None
    except OSError as exc:
        raise MMDataError(f"{redact(url)}: cannot download {redact(src)} ({type(exc).__name__}: {redact_text(str(exc))})") from None
