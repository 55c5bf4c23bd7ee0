"""Paths given as URLs: ``file://`` anywhere a path goes, and datasets read from fsspec URLs.

What each command accepts (docs/scale.md):

* ``file:///abs/path`` is a local path everywhere (``mmdata shard`` / ``augment`` sources and output
  folders, ``open_dataset``, an ablation's ``dataset.path`` and ``--out``);
* any other fsspec URL (``s3://``, ``gs://``, ``az://``, ``http(s)://``, ``hdfs://``, chained
  ``simplecache::s3://``) works as an **ablation's** ``dataset.path``: each run — on whatever node
  Ray puts it — stages the dataset folder into a node-local cache (:func:`stage_dataset`: every shard
  checked against its sha256 in ``shards.parquet``, content-addressed by the dataset's fingerprint,
  so it is downloaded once per node and never mixed with another version), and the trainer reads
  the local copy. Bare shard URLs and patterns are read directly by :func:`mmdata.open_dataset`.
* an output folder or a ``mmdata shard`` source given as such a URL is refused with a clear error:
  the writer's resume journal, lock and atomic renames need a filesystem (mount the bucket at the
  same path on every node: s3fs, gcsfuse, Mountpoint).

fsspec and the package of a protocol (s3fs, gcsfs, adlfs, aiohttp for http) are the user's to
install; a missing one is a clear error naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from mmdata.errors import MMDataError


def protocol(path: str | Path) -> str | None:
    """The URL protocol of ``path`` (``"s3"``, ``"file"``, ``"simplecache::s3"``), None for a plain path.

    Example:
        >>> protocol("s3://bucket/ds"), protocol("/data/ds"), protocol("file:///data/ds")
        ('s3', None, 'file')
    """
    s = str(path) if isinstance(path, (str, Path)) else ""
    return s.split("://", 1)[0] if "://" in s else None


def local_path(path: str | Path, what: str = "path") -> Path:
    """``path`` as a local :class:`~pathlib.Path`: plain paths as they are, ``file://`` URLs
    stripped; any other URL is a clear error (``what`` names the argument).

    Example:
        >>> str(local_path("file:///data/ds")), str(local_path("runs/x"))
        ('/data/ds', 'runs/x')
    """
    proto = protocol(path)
    if proto is None:
        return Path(path)
    s = str(path)
    if proto == "file":
        rest = s[len("file://"):]
        return Path(rest[len("localhost"):] if rest.startswith("localhost/") else rest)
    raise MMDataError(f"{what} {s}: {proto}:// URLs are not supported here (resume journal, lock and atomic "
                      f"renames need a filesystem); mount it at the same path on every node (s3fs, gcsfuse, "
                      f"Mountpoint, NFS) and pass that path, or a file:// URL")


def is_remote(path: Any) -> bool:
    """True for a URL that is not ``file://`` (it needs fsspec to be read)."""
    proto = protocol(path)
    return proto is not None and proto != "file"


def filesystem(url: str) -> tuple[Any, str]:
    """``(fsspec filesystem, path within it)`` for ``url``, or a clear error naming what to install.

    Example:
        >>> fs, root = filesystem("memory://ds")  # doctest: +SKIP
    """
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:
        raise MMDataError(f"{url}: reading URLs needs fsspec: pip install fsspec") from None
    try:
        return url_to_fs(url)
    except ImportError as exc:  # fsspec knows the protocol, its package is missing (its message names it)
        raise MMDataError(f"{url}: fsspec cannot open {protocol(url)}:// URLs here: {exc}") from None
    except ValueError as exc:
        known = ", ".join(sorted(fsspec.available_protocols())[:12])
        raise MMDataError(f"{url}: unknown URL protocol {protocol(url)!r} ({exc}); fsspec knows {known}, ...") from None
    except Exception as exc:  # noqa: BLE001 — a filesystem that connects on creation (hdfs: a JVM, ...)
        raise MMDataError(f"{url}: cannot open its filesystem ({type(exc).__name__}: {str(exc)[:300]})") from None


def read_card(url: str) -> dict[str, Any]:
    """The ``dataset.json`` of a dataset folder at an fsspec URL."""
    return json.loads(_card_bytes(url))


def _card_bytes(url: str) -> bytes:
    from mmdata.shards.index import CARD, FORMAT

    fs, root = filesystem(url)
    where = f"{url.rstrip('/')}/{CARD}"
    try:
        data = fs.cat_file(f"{root.rstrip('/')}/{CARD}")
        card = json.loads(data)
    except FileNotFoundError:
        raise MMDataError(f"{where}: not found (not a dataset folder written by `mmdata shard`)") from None
    except (OSError, ValueError) as exc:
        raise MMDataError(f"{where}: cannot read it ({type(exc).__name__}: {exc})") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise MMDataError(f"{where}: not an mmdata dataset card (expected format {FORMAT!r})")
    return data


def cache_dir() -> Path:
    """Where :func:`stage_dataset` keeps datasets on this node: ``$MMDATA_CACHE``, else
    ``$XDG_CACHE_HOME/mmdata``, else ``~/.cache/mmdata``."""
    if os.environ.get("MMDATA_CACHE"):
        return Path(os.environ["MMDATA_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmdata"


def stage_dataset(url: str, cache: str | Path | None = None) -> Path:
    """A local copy of the dataset folder at ``url`` (card, index, shards table and every shard),
    checked and reused: ``<cache>/datasets/<fingerprint>``.

    Every shard is checked against its sha256 in ``shards.parquet`` and the card's fingerprint
    against those digests, so a half-written or changed remote dataset is an error naming the shard,
    never a silent mix. Concurrent stagings on one node (several runs starting at once) each
    download into a temporary folder; the first to finish renames it into place, the others use it.

    Example:
        >>> local = stage_dataset("s3://bucket/avdigits")  # doctest: +SKIP
    """
    import pyarrow.parquet as pq

    from mmdata.io import file_sha256
    from mmdata.shards.index import CARD, INDEX, SHARDS

    card_bytes = _card_bytes(url)
    fp = str(json.loads(card_bytes).get("fingerprint") or "")
    if len(fp) != 64:
        raise MMDataError(f"{url}/{CARD}: no dataset fingerprint (written by an older mmdata?): rewrite it with `mmdata shard`")
    base = Path(cache) if cache is not None else cache_dir()
    dest = base / "datasets" / fp
    if (dest / CARD).is_file():  # the card is written last: its presence means complete
        return dest
    fs, root = filesystem(url)
    root = root.rstrip("/")
    tmp = base / "datasets" / f".{fp}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        for name in (INDEX, SHARDS):
            _get(fs, f"{root}/{name}", tmp / name, url)
        table = pq.read_table(tmp / SHARDS, columns=["shard", "sha256"]).to_pylist()
        digests = []
        for row in table:
            rel = Path(row["shard"])
            if rel.is_absolute() or ".." in rel.parts:
                raise MMDataError(f"{url}/{SHARDS}: shard path {row['shard']!r} escapes the dataset folder")
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _get(fs, f"{root}/{row['shard']}", target, url)
            found = file_sha256(target)
            if found != row["sha256"]:
                raise MMDataError(f"{url}/{row['shard']}: sha256 {found}, but {SHARDS} says {row['sha256']} "
                                  "(the remote dataset is being rewritten, or damaged)")
            digests.append(found)
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


def _get(fs: Any, src: str, dest: Path, url: str) -> None:
    try:
        fs.get_file(src, str(dest))
    except FileNotFoundError:
        raise MMDataError(f"{url}: {src} not found (the dataset folder is incomplete)") from None
    except OSError as exc:
        raise MMDataError(f"{url}: cannot download {src} ({type(exc).__name__}: {exc})") from None
