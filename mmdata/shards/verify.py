"""``mmdata verify``: every shard's sha256 and member count against ``shards.parquet``; ``deep=True``
also decodes every member (a corrupt media body with a correct checksum fails verify)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdata.io import file_sha256, stream_sha256
from mmdata.shards import index as idx
from mmdata.shards.tario import count_members, iter_samples
from mmdata.urls import call, filesystem, is_remote

#: the problem of a ``.tar`` file in the dataset folder that ``shards.parquet`` does not list
NOT_LISTED = "a shard file the index does not list (left from another job?)"


class _Remote:
    """A dataset folder at an fsspec URL: its files (one listing) and streamed digests."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None) -> None:
        self.url = url.rstrip("/")
        self.fs, root = filesystem(self.url, storage_options)
        self.root = root.rstrip("/")
        self.files = {p[len(self.root) + 1:] for p in call(self.url, "list it", self.fs.find, self.root)}

    def sha256(self, name: str) -> str:
        with call(f"{self.url}/{name}", "read it", self.fs.open, f"{self.root}/{name}", "rb") as f:
            return stream_sha256(f)


def _decode_problems(path: Path | str, shard: str, storage_options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Decode every member of one shard; one problem per member that does not decode."""
    from mmdata.codecs import DecodeError, decode_member

    problems: list[dict[str, Any]] = []
    for key, members, problem in iter_samples(str(path), max_member_bytes=1 << 62, storage_options=storage_options):
        if problem is not None:
            problems.append({"shard": shard, "problem": problem[0], "expected": None, "found": problem[1]})
            continue
        for ext, data in members.items():
            try:
                # pickle members are not decoded (that would run them); they fail verify like any undecodable member
                decode_member(ext, data, allow_pickle=False)
            except DecodeError as exc:
                problems.append({"shard": shard, "problem": "member does not decode", "expected": f"{key}.{ext}",
                                 "found": str(exc)})
    return problems


def verify(path: str | Path, *, deep: bool = False, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check a dataset folder's shards.

    Args:
        path: the dataset folder, or an fsspec URL of one (``s3://bucket/ds``: every shard is
            streamed once through sha256 and the tar parser; nothing is written to disk).
        deep: also decode every member of every shard (images, audio, text, labels, arrays).
        storage_options: options of the URL's fsspec filesystem (None: the protocol's defaults).

    Returns:
        ``{"ok": bool, "checked": n, "problems": [{"shard", "problem", "expected", "found"}]}``;
        problems are missing shards, sha256 mismatches, member-count mismatches, damaged or
        truncated tars, tar files on disk that the index does not list and, with ``deep``, members
        that do not decode (``expected`` names the member).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=4), t + "/ds", progress=False)
        >>> verify(t + "/ds", deep=True)["ok"]
        True
    """
    store = _Remote(str(path), storage_options) if is_remote(path) else None
    root = Path(path) if store is None else str(path).rstrip("/")
    idx.load_card(root, storage_options)
    table = idx.load_shards_table(root, storage_options).to_pydict()
    problems: list[dict[str, Any]] = []
    listed = set(table["shard"])
    for shard, sha, members in zip(table["shard"], table["sha256"], table["members"]):
        idx.check_shard_name(root, shard, where=idx.SHARDS)  # the names come from shards.parquet
        p = root / shard if store is None else f"{root}/{shard}"
        if not (p.is_file() if store is None else shard in store.files):  # type: ignore[union-attr]
            problems.append({"shard": shard, "problem": "missing", "expected": sha, "found": None})
            continue
        found = file_sha256(p) if store is None else store.sha256(shard)
        if found != sha:
            problems.append({"shard": shard, "problem": "sha256 mismatch", "expected": sha, "found": found})
        count, damage = count_members(str(p), storage_options)
        if damage:
            problems.append({"shard": shard, "problem": "unreadable", "expected": members, "found": "; ".join(damage)})
        elif count != members:
            problems.append({"shard": shard, "problem": "member count mismatch", "expected": members, "found": count})
        if deep and not damage:
            problems.extend(_decode_problems(p, shard, storage_options))
    on_disk = (p.relative_to(root).as_posix() for p in root.rglob("*.tar")) if store is None else iter(store.files)
    for extra in sorted(f for f in on_disk if f.endswith(".tar")):
        if extra not in listed:
            problems.append({"shard": extra, "problem": NOT_LISTED, "expected": None, "found": "file"})
    return {"ok": not problems, "checked": len(table["shard"]), "problems": problems}
