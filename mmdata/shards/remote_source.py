"""A ``mmdata shard`` source at an fsspec URL (``s3://bucket/raw``, ``gs://...``, a manifest there).

The driver lists the source once (``fs.find(..., detail=True)``: every object's path, size and
version) and plans from that listing with the rules of a local folder (:func:`mmdata.shards.sources.
walk_folder` over :class:`RemoteWalk`, or :func:`~mmdata.shards.sources.discover_manifest`): the same
files give the same records, class names, skip reports and order, so the shards, index, shards table
and card are byte for byte those of sharding a local copy. Nothing of the source is downloaded on
the driver but the label files, a class-names file and a manifest; each shard's task (a thread here,
a process, or a Ray task on any node) fetches its own members, a chunk of samples per batched request
(:meth:`RemoteSource.read_many`, the interface of :func:`mmdata.shards.sources.read_many`).

A listing has no modification time in nanoseconds and no inode: a file's *stamp* (what a local file's
``mtime_ns`` is to the resume journal) is a digest of its ETag and modification time, so a resumed job
rewrites a finished shard whose source objects were replaced since.

What a folder cannot hold is reported as skipped, never fetched: an object whose name has an empty,
``.`` or ``..`` path segment (``raw//x.png``, ``raw/../x.png``). Directory markers (``raw/empty/``)
are empty folders, as a local copy has them.
"""

from __future__ import annotations

import errno
import hashlib
from array import array
from collections.abc import Mapping
from typing import Any

from mmdata.errors import SourceError
from mmdata.shards.sources import (_SMALL_FILE, FOLDER_GROUP, MANIFEST_SUFFIXES, UNREAD, Discovered, _Walk,
                                   discover_manifest, folder_group_error, folder_meta_error, parse_label_names,
                                   printable, walk_folder)
from mmdata.urls import call, filesystem, protocol, redact, request_failed

#: per-file errors of a fetch that are a file's, like a local file's (reported as skipped members);
#: any other failure (endpoint, credentials, network) stops the job with an error naming the URL
_FILE_ERRORS = ((FileNotFoundError, errno.ENOENT), (PermissionError, errno.EACCES), (IsADirectoryError, errno.EISDIR))


def stamp(info: Mapping[str, Any]) -> int:
    """A signed 64-bit version stamp of an object from its listing entry: ETag (or checksum) and
    modification time, whichever the filesystem gives; 0 when it gives neither."""
    mtime = next((info[k] for k in ("LastModified", "last_modified", "mtime", "updated", "modified", "created")
                  if info.get(k) is not None), None)
    tag = next((info[k] for k in ("ETag", "etag", "md5Hash", "crc32c", "checksum") if info.get(k) is not None), None)
    if mtime is None and tag is None:
        return 0
    when = mtime.timestamp() if hasattr(mtime, "timestamp") else mtime
    return int.from_bytes(hashlib.sha256(f"{tag}|{when}".encode()).digest()[:8], "little", signed=True)


class RemoteSource:
    """The files of a source at an fsspec URL: its filesystem, and ``meta`` (path -> (size, stamp))
    from the listing the plan was made from. Built on the driver (:func:`discover_remote`) and, from
    :meth:`task_fields`, in each writer task (a plain dict: it travels to processes and Ray nodes).

    Example:
        >>> src = RemoteSource("s3://bucket/raw", {"endpoint_url": "http://127.0.0.1:9000"})  # doctest: +SKIP
        >>> items, meta = src.read_many(["bucket/raw/a.png", "bucket/raw/a.txt"])  # doctest: +SKIP
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None,
                 meta: Mapping[str, tuple[int, int]] | None = None) -> None:
        self.url = url.rstrip("/")
        self.shown = redact(self.url)  # for messages: never a password of the URL, never storage_options
        self.storage_options = dict(storage_options or {})
        self.fs, root = filesystem(self.url, self.storage_options)
        self.root = root.rstrip("/")
        self.meta: dict[str, tuple[int, int]] = dict(meta or {})

    def find(self, path: str, withdirs: bool = False) -> dict[str, dict[str, Any]]:
        """Every object under ``path`` (the path itself when it is one), with its listing entry."""
        self.fs.invalidate_cache(path)
        try:
            return self.fs.find(path, detail=True, withdirs=withdirs)
        except FileNotFoundError as exc:  # s3fs: no such bucket
            raise SourceError(f"source {self.shown}: does not exist ({exc}); check the URL") from None
        except Exception as exc:  # noqa: BLE001 — the store's own errors: named with what to check
            raise request_failed(self.shown, "list the source", exc) from None

    def meta_under(self, folder: str) -> dict[str, tuple[int, int]]:
        """(size, stamp) of every file under ``folder``, now also in :attr:`meta`."""
        found = {p: (int(info.get("size") or 0), stamp(info)) for p, info in self.find(folder).items()
                 if info.get("type", "file") == "file" and p.startswith(folder + "/") and not p.endswith("/")}
        self.meta.update(found)
        return found

    def fetch_one(self, path: str) -> bytes:
        """The bytes of one file the plan needs (a manifest, a class-names file)."""
        try:
            return self.fs.cat_file(path)
        except FileNotFoundError:
            raise SourceError(f"source {self.shown}: {self._rel(path)} not found (deleted while listed?)") from None
        except Exception as exc:  # noqa: BLE001
            raise request_failed(self.shown, f"fetch {self._rel(path)}", exc) from None

    def _rel(self, path: str) -> str:
        return printable(path[len(self.root) + 1:]) if path.startswith(self.root + "/") else printable(path)

    def read_many(self, paths: list[str], max_size: int | None = None,
                  max_total: int | None = None) -> tuple[list[bytes | int], array]:
        """:func:`mmdata.shards.sources.read_many` for files of this source: the same items (bytes,
        an errno, or :data:`~mmdata.shards.sources.UNREAD`) and meta ((size, stamp) from the listing,
        or (-1, errno)), by the same rules (files over ``max_size`` not fetched, small files first,
        large ones up to ``max_total``), fetched in one batched request (concurrent on async stores)."""
        n = len(paths)
        items: list[Any] = [None] * n
        meta = array("q", bytes(16 * n))
        small: list[int] = []
        large: list[int] = []
        for i, p in enumerate(paths):
            size, version = self.meta.get(p, (0, 0))
            meta[2 * i], meta[2 * i + 1] = size, version
            if max_size is not None and size > max_size:
                items[i] = errno.EFBIG
            else:
                (small if size < _SMALL_FILE else large).append(i)
        total = sum(meta[2 * i] for i in small)
        fetch = small
        for k, i in enumerate(large):
            if max_total is not None and k > 0 and total + meta[2 * i] > max_total:
                for j in large[k:]:
                    items[j] = UNREAD
                break
            fetch.append(i)
            total += meta[2 * i]
        fetch.sort()
        got = self._fetch([paths[i] for i in fetch]) if fetch else []
        for i, data in zip(fetch, got):
            if data.__class__ is bytes:
                if max_size is not None and len(data) > max_size:  # replaced by a larger one since listed
                    items[i], meta[2 * i] = errno.EFBIG, len(data)
                else:
                    items[i] = data
                continue
            code = next((c for t, c in _FILE_ERRORS if isinstance(data, t)), None)
            if code is None:
                raise request_failed(self.shown, f"fetch {self._rel(paths[i])}", data)
            items[i] = code
            meta[2 * i], meta[2 * i + 1] = -1, code
        return items, meta

    def _fetch(self, paths: list[str]) -> list[Any]:
        """The bytes of each path, or its exception; ``cat_ranges`` takes the paths as they are (``cat``
        would expand ``[`` / ``*`` in names as patterns)."""
        return call(self.shown, "fetch source files", self.fs.cat_ranges, paths, None, None, on_error="return")

    def current_meta(self, paths: list[str]) -> array:
        """(size, stamp) per path as listed now, (-1, ENOENT) for one not listed: what a task's
        :meth:`read_many` records, for the resume check of a finished shard."""
        meta = array("q")
        for p in paths:
            meta += array("q", self.meta.get(p, (-1, errno.ENOENT)))
        return meta

    def task_fields(self, paths: list[str]) -> dict[str, Any]:
        """What a writer task needs to fetch ``paths``: plain data (URL, storage options, their meta)."""
        return {"source": {"url": self.url, "storage_options": self.storage_options,
                           "meta": {p: self.meta[p] for p in paths if p in self.meta}}}

    @classmethod
    def from_task(cls, fields: Mapping[str, Any]) -> RemoteSource:
        """The source of a writer task (:meth:`task_fields`)."""
        return cls(fields["url"], fields.get("storage_options"), fields.get("meta"))


class RemoteWalk(_Walk):
    """The walk of a folder at a URL, from one listing: :class:`~mmdata.shards.sources._Walk`'s interface
    (sorted files and folders per folder, what is left out), so :func:`walk_folder` applies the rules
    of a local folder unchanged."""

    sep = "/"

    def __init__(self, source: RemoteSource, listing: Mapping[str, Mapping[str, Any]], on_error: str,
                 exclude: str | None) -> None:
        self.source = source
        self.root = source.root
        self.shown = source.shown  # messages name the URL (memory://pat), not the path inside the store
        self.on_error = on_error
        self.exclude = exclude
        self.skipped: list[dict[str, Any]] = []
        self.tree: dict[str, tuple[list[str], set[str]]] = {"": ([], set())}
        cut = len(self.root) + 1
        for path in sorted(listing):
            info = listing[path]
            if not path.startswith(self.root + "/"):
                continue
            rel = path[cut:]
            is_dir = info.get("type") == "directory" or rel.endswith("/")
            parts = rel.rstrip("/").split("/") if is_dir else rel.split("/")
            if any(p in ("", ".", "..") for p in parts):
                if not is_dir:
                    self.bad(printable(rel), "file", "an object name with an empty, '.' or '..' path segment (no "
                                                     "folder can hold it as a file)", data=False)
                continue
            for depth in range(len(parts) - (0 if is_dir else 1)):
                parent, name = "/".join(parts[:depth]), parts[depth]
                self.tree.setdefault(parent, ([], set()))[1].add(name)
                self.tree.setdefault("/".join(parts[:depth + 1]), ([], set()))
            if not is_dir:
                self.tree["/".join(parts[:-1])][0].append(parts[-1])
                source.meta[path] = (int(info.get("size") or 0), stamp(info))

    def list(self, folder: str, rel: str) -> tuple[list[str], list[str]]:
        files, dirs = self.tree.get(rel.rstrip("/"), ([], set()))
        walkable = []
        for d in sorted(dirs):
            if self.exclude is not None and f"{folder}/{d}" == self.exclude:
                self.skipped.append({"source": printable(rel + d), "sample": None, "what": "folder",
                                     "reason": "the output folder of this job"})
            else:
                walkable.append(d)
        return sorted(files), walkable

    def read(self, paths: list[str]) -> tuple[list[bytes | int], array]:
        return self.source.read_many(paths)

    def read_names(self, name: str) -> list[str]:
        return parse_label_names(self.source.fetch_one(f"{self.root}/{name}"), f"{self.source.shown}/{name}")


def discover_remote(url: str, storage_options: dict[str, Any] | None = None, *,
                    columns: Mapping[str, str] | None = None, labels_from_folders: bool | None = None,
                    label_names: list[str] | None = None, label_names_from: str | None = None,
                    on_error: str = "skip", exclude: Any = None, meta: Any = None,
                    group_by: str | None = None) -> Discovered:
    """Records from a folder or a manifest at an fsspec URL, planned from one listing; the
    :class:`Discovered` carries the :class:`RemoteSource` the writer's tasks fetch from.

    Example:
        >>> found = discover_remote("s3://bucket/raw", {"endpoint_url": "http://127.0.0.1:9000"})  # doctest: +SKIP
    """
    if str(protocol(url)).rpartition("::")[2] in ("http", "https"):
        # fsspec's HTTP "listing" scrapes a page's links: names percent-escaped, no sizes, no versions
        raise SourceError(f"source {redact(url)}: an HTTP server has no listing of names and sizes to plan from "
                          "(a directory page is HTML); copy the folder to an object store (s3://, gs://, az://) "
                          "or a filesystem every node mounts, and shard it from there")
    source = RemoteSource(url, storage_options)
    listing = source.find(source.root, withdirs=True)
    entry = listing.get(source.root)
    under = any(p.startswith(source.root + "/") and info.get("type", "file") == "file" for p, info in listing.items())
    if entry is not None and entry.get("type") == "file" and not under:
        # a .txt is a manifest when it is tab-separated (Excel's 'Unicode text'), as a local one: read_manifest says
        if not source.root.lower().endswith((*MANIFEST_SUFFIXES, ".txt", *(m + ".gz" for m in MANIFEST_SUFFIXES))):
            raise SourceError(f"source {source.shown} is not a folder or a manifest ({', '.join(MANIFEST_SUFFIXES)})")
        found = discover_manifest(source.root, columns, label_names, label_names_from=label_names_from,
                                  on_error=on_error, remote=source, meta=meta, group_by=group_by)
    elif not under:
        raise SourceError(f"source {source.shown} does not exist: no object under it; check the URL (and that "
                          f"these credentials may list it: an empty listing can also mean no permission)")
    else:
        if meta:
            raise SourceError(folder_meta_error(source.shown))
        if group_by is not None and group_by != FOLDER_GROUP:
            raise SourceError(folder_group_error(source.shown))
        ex = None
        if exclude is not None and protocol(exclude) == protocol(url):
            ex = source.fs._strip_protocol(str(exclude)).rstrip("/")  # noqa: SLF001 — fsspec's own path rule
        found = walk_folder(RemoteWalk(source, listing, on_error, ex), labels_from_folders, label_names,
                            label_names_from=label_names_from, on_error=on_error, columns=columns,
                            group_by_folder=group_by == FOLDER_GROUP)
    for r in found.records:  # sizes for --maxsize plans, from the listing (no stat per file)
        r.stats = {e: source.meta[v] for e, v in r.members.items() if v.__class__ is str and v in source.meta}
    found.source = source
    return found
