"""An ablation's output folder at an object-store URL (``mmdata ablate ... --out s3://bucket/abl``).

The runner rewrites ``runs.parquet`` as runs finish and draws its report at the end, which an
object store cannot do in place; so, as Ray Tune does with ``storage_path="s3://..."``, the ablation
works in a local copy of the folder and the URL is the folder of record:

* at start the copy is made anew from the URL (every object but the built ``data/`` folder, which is
  rebuilt or reused locally), so a driver on any machine — a fresh pod included — resumes from what
  the URL holds, and nothing stale from an earlier run on this machine is mixed in;
* every time the runner saves ``runs.parquet`` (as runs finish, at most every ``save_interval()`` — 0.5 s,
  longer when a save takes long — and at a stop) it is uploaded as one object (an object is visible whole or not at all), so a killed driver
  loses at most the runs of that window, which a rerun trains again;
* at the end the report, summary, plots, resolved config and environment are uploaded.

The copy lives in ``$MMDATA_CACHE/ablations/<digest of the URL>`` (:func:`mmdata.urls.cache_dir`), a
private folder (mode 0700) that must be the user's own: a link there, or a folder of another user, is an
error naming it (:func:`mmdata.urls.cache_subdir`), never followed — a predictable path in a shared cache
is not allowed to make the ablation delete or write someone's files. Nothing is deleted through a link.
After the final upload the copy's files are removed (a rerun pulls anew from the URL); a built ``data/``
stays for the rerun to reuse (docs/scale.md, "Cache").
Two drivers writing one URL at once are not detected (an object store has no lock; the same holds for
Ray Tune's storage path).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mmdata.shards.journal import LOCK
from mmdata.urls import cache_subdir, call, check_private, filesystem, put_file, redact, remove_tree

#: what stays local: the dataset the runner builds when the recipe names an embedded one, and the lock
#: the running job holds on its local copy
LOCAL_ONLY = ("data", LOCK)


class RemoteRunDir:
    """The local working copy of an ablation folder at ``url`` (see the module docstring).

    Example:
        >>> d = RemoteRunDir("s3://bucket/abl")  # doctest: +SKIP
        >>> d.pull(); d.push(["runs.parquet"]); d.push()  # doctest: +SKIP
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, root = filesystem(self.url, self.storage_options)
        self.root = root.rstrip("/")
        self.digest = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        self.local = cache_subdir("ablations") / self.digest

    def pull(self) -> Path:
        """Make the local copy anew from the URL (keeping a built ``data/``); returns its path. A copy
        folder that is a link or another user's is an error naming it (never followed, never emptied)."""
        self.local = cache_subdir("ablations", self.digest)
        for p in self.local.iterdir():
            if p.name not in LOCAL_ONLY:
                remove_tree(p)  # a link is removed itself, never what it points to
            elif p.name == "data":
                check_private(p, "the ablation's built dataset")  # a planted link would be trained on
        self.fs.invalidate_cache(self.root)
        found = call(redact(self.url), "list it", self.fs.find, self.root)  # nothing there yet: []
        for obj in found:
            rel = obj[len(self.root) + 1:]
            parts = rel.split("/")
            if not rel or parts[0] in LOCAL_ONLY or any(p in ("", ".", "..") for p in parts):
                continue  # a name no folder can hold is not ours: left where it is
            dest = self.local / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            call(redact(f"{self.url}/{rel}"), "download it", self.fs.get_file, obj, str(dest))
        return self.local

    def remove(self, names: list[str]) -> None:
        """Delete the objects ``names`` (paths relative to the folder) where they exist."""
        for n in names:
            url = f"{self.url}/{n}"
            if call(redact(url), "check it", self.fs.exists, f"{self.root}/{n}"):
                call(redact(url), "remove it", self.fs.rm, f"{self.root}/{n}")

    def push(self, names: list[str] | None = None) -> None:
        """Upload ``names`` (paths relative to the folder), each as one object; None: the final upload,
        every file but ``data/``, after which the local copy's files are removed (the URL holds them all
        and a rerun pulls anew; a built ``data/`` and the running job's lock stay)."""
        files = ([self.local / n for n in names] if names is not None else
                 [p for p in sorted(self.local.rglob("*")) if p.is_file() and not p.is_symlink()
                  and p.relative_to(self.local).parts[0] not in LOCAL_ONLY])
        for p in files:
            if p.is_file():
                put_file(p, f"{self.url}/{p.relative_to(self.local).as_posix()}", self.storage_options)
        if names is None:
            for p in self.local.iterdir():
                if p.name not in LOCAL_ONLY:
                    remove_tree(p)
