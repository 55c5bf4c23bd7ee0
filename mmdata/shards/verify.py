"""``mmdata verify``: every shard's sha256 and member count against ``shards.parquet``, and
``index.parquet`` against ``shards.parquet`` and the card (the readers trust the index: a missing,
unreadable or edited index fails verify); ``deep=True`` also decodes every member (a corrupt media body
with a correct checksum fails verify)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdata.codecs import field_of
from mmdata.errors import ShardError
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


def _index_problems(root: Path | str, card: dict[str, Any], table: dict[str, list[Any]], present: bool,
                    storage_options: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``index.parquet`` against ``shards.parquet`` (samples and members per shard; in the column layout
    per series ``<field>/<shard>``: the samples and members of that field) and the card (samples per
    split). Each problem names the index as its ``shard``."""
    def problem(what: str, expected: Any, found: Any) -> dict[str, Any]:
        return {"shard": idx.INDEX, "problem": what, "expected": expected, "found": found}

    if not present:
        return [problem("missing", "one row per sample", None)]
    try:
        rows = idx.load_index(root, columns=["split", "shard", "members"], storage_options=storage_options).to_pydict()
    except ShardError as exc:
        return [problem("unreadable", "a Parquet file with the index columns", str(exc))]
    columns = card.get("layout", "samples") == "columns"
    samples: dict[tuple[str, str], int] = {}
    members: dict[tuple[str, str], int] = {}
    per_split: dict[str, int] = {}
    for split, shard, names in zip(rows["split"], rows["shard"], rows["members"]):
        per_split[split] = per_split.get(split, 0) + 1
        if not columns:
            samples[(split, shard)] = samples.get((split, shard), 0) + 1
            members[(split, shard)] = members.get((split, shard), 0) + len(names or ())
            continue
        # a series shard holds this sample's members of its field (the index's modalities are the same fields)
        fields = [field_of(m.split(".", 1)[1]) if "." in m else "" for m in names or ()]
        for f in dict.fromkeys(fields):
            samples[(split, f"{f}/{shard}")] = samples.get((split, f"{f}/{shard}"), 0) + 1
        for f in fields:
            members[(split, f"{f}/{shard}")] = members.get((split, f"{f}/{shard}"), 0) + 1
    out: list[dict[str, Any]] = []
    listed = set()
    for shard, split, n, m in zip(table["shard"], table["split"], table.get("samples") or [None] * len(table["shard"]),
                                  table["members"]):
        listed.add((split, shard))
        for what, expected, found in (("samples", n, samples.get((split, shard), 0)),
                                      ("members", m, members.get((split, shard), 0))):
            if expected is not None and found != expected:
                out.append(problem(f"{what} of {split} shard {shard} disagree with {idx.SHARDS}", expected, found))
    for split, shard in sorted(set(samples) - listed, key=str):
        out.append(problem(f"rows name {split} shard {shard}, which {idx.SHARDS} does not list", None,
                           f"{samples[(split, shard)]} samples"))
    splits = card.get("splits") if isinstance(card.get("splits"), dict) else {}
    for split in sorted(set(splits) | set(per_split), key=str):
        found = per_split.get(split, 0)
        if split not in splits:
            out.append(problem(f"rows of split {split!r}, which {idx.CARD} does not list", None, f"{found} samples"))
            continue
        expected = splits[split].get("samples") if isinstance(splits[split], dict) else None
        if found != expected:
            out.append(problem(f"samples of split {split!r} disagree with {idx.CARD}", expected, found))
    return out


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
        truncated tars, tar files on disk that the index does not list, an ``index.parquet`` that
        is missing, unreadable, or whose rows disagree with ``shards.parquet`` (samples and members
        per shard, shards it does not list) or with the card (samples per split) — those name
        ``index.parquet`` as their ``shard`` — and, with ``deep``, members that do not decode
        (``expected`` names the member).

    Raises:
        ShardError: ``path`` is not a dataset folder (no card, a shard file), or its card or
            ``shards.parquet`` is missing or unreadable (nothing to check the shards against).

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
    card = idx.load_card(root, storage_options)
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
    present = (root / idx.INDEX).is_file() if store is None else idx.INDEX in store.files  # type: ignore[operator]
    problems.extend(_index_problems(root, card, table, present, storage_options))
    return {"ok": not problems, "checked": len(table["shard"]), "problems": problems}
