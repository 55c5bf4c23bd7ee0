"""``mmdata verify``: every shard's sha256 and member count against ``shards.parquet``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdata.shards import index as idx
from mmdata.shards.tario import iter_members, open_shard
from mmdata.io import file_sha256


def _count_members(path: Path) -> int:
    with open_shard(str(path)) as f:
        return sum(1 for _ in iter_members(f, str(path)))


def verify(path: str | Path) -> dict[str, Any]:
    """Check a dataset folder's shards.

    Returns:
        ``{"ok": bool, "checked": n, "problems": [{"shard", "problem", "expected", "found"}]}``;
        problems are missing shards, sha256 mismatches, member-count mismatches (incl. truncation)
        and tar files on disk that the index does not list.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=4), t + "/ds", progress=False)
        >>> verify(t + "/ds")["ok"]
        True
    """
    from mmdata.errors import ShardError

    root = Path(path)
    idx.load_card(root)
    table = idx.load_shards_table(root).to_pydict()
    problems: list[dict[str, Any]] = []
    listed = set(table["shard"])
    for shard, sha, members in zip(table["shard"], table["sha256"], table["members"]):
        p = root / shard
        if not p.is_file():
            problems.append({"shard": shard, "problem": "missing", "expected": sha, "found": None})
            continue
        found = file_sha256(p)
        if found != sha:
            problems.append({"shard": shard, "problem": "sha256 mismatch", "expected": sha, "found": found})
        try:
            count = _count_members(p)
        except ShardError as exc:
            problems.append({"shard": shard, "problem": "unreadable", "expected": members, "found": str(exc)})
            continue
        if count != members:
            problems.append({"shard": shard, "problem": "member count mismatch", "expected": members, "found": count})
    for extra in sorted(p.relative_to(root).as_posix() for p in root.rglob("*.tar")):
        if extra not in listed:
            problems.append({"shard": extra, "problem": "not in index", "expected": None, "found": "file"})
    return {"ok": not problems, "checked": len(table["shard"]), "problems": problems}
