"""``mmdata verify``: every shard's sha256 and member count against ``shards.parquet``; ``deep=True``
also decodes every member (a corrupt media body with a correct checksum fails verify)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdata.io import file_sha256
from mmdata.shards import index as idx
from mmdata.shards.tario import count_members, iter_samples


def _decode_problems(path: Path, shard: str) -> list[dict[str, Any]]:
    """Decode every member of one shard; one problem per member that does not decode."""
    from mmdata.codecs import DecodeError, decode_member

    problems: list[dict[str, Any]] = []
    for key, members, problem in iter_samples(str(path), max_member_bytes=1 << 62):
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


def verify(path: str | Path, *, deep: bool = False) -> dict[str, Any]:
    """Check a dataset folder's shards.

    Args:
        path: the dataset folder.
        deep: also decode every member of every shard (images, audio, text, labels, arrays).

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
        count, damage = count_members(str(p))
        if damage:
            problems.append({"shard": shard, "problem": "unreadable", "expected": members, "found": "; ".join(damage)})
        elif count != members:
            problems.append({"shard": shard, "problem": "member count mismatch", "expected": members, "found": count})
        if deep and not damage:
            problems.extend(_decode_problems(p, shard))
    for extra in sorted(p.relative_to(root).as_posix() for p in root.rglob("*.tar")):
        if extra not in listed:
            problems.append({"shard": extra, "problem": "not in index", "expected": None, "found": "file"})
    return {"ok": not problems, "checked": len(table["shard"]), "problems": problems}
