"""Column layout: add or replace one modality's shard series without rewriting the others.

In ``--layout columns`` every field has its own series ``OUT/<field>/<split>-NNNNNN.tar`` with the same
shard boundaries and sample order (Lhotse-Shar style). :func:`add_modality` writes a new series with
those boundaries, from a folder of ``<key or source_key>.<ext>`` files or a manifest, then updates the
index, shards table and card atomically.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mmdata.codecs import field_of
from mmdata.errors import SourceError
from mmdata.shards import index as idx
from mmdata.shards.mediainfo import CorruptMedia, member_stats
from mmdata.shards.journal import JobLock
from mmdata.shards.sources import discover
from mmdata.shards.tarwrite import write_tar


def add_modality(out: str | Path, name: str, src: str | Path, *, replace: bool = False,
                 on_missing: str = "skip") -> dict[str, Any]:
    """Write field ``name`` as a new series of a column-layout dataset.

    Args:
        out: dataset folder written with ``layout="columns"``.
        name: field name (``image``, ``audio``, ``text``, or an extra such as ``depth``).
        src: folder of files named by sample key or source key (``0001.png``, ``0001.depth.npy``) or
            a manifest with ``key`` and a path column.
        replace: allow replacing an existing series of that name.
        on_missing: ``"skip"`` (samples without a file lack the field) or ``"raise"``.

    Returns:
        ``{"field", "added", "missing", "shards"}``.

    Example:
        >>> import tempfile, mmdata, numpy as np
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=2), t + "/ds", layout="columns", progress=False)
        >>> import os; os.makedirs(t + "/d")
        >>> for k in ("000000", "000001"): np.save(f"{t}/d/{k}.depth.npy", np.zeros(2))
        >>> add_modality(t + "/ds", "depth", t + "/d")["added"]
        2
    """
    root = Path(out)
    card = idx.load_card(root)
    if card.get("layout") != "columns":
        raise SourceError(f"{root}: add-modality needs a dataset sharded with --layout columns (this one is "
                          f"{card.get('layout')!r}); re-shard with --layout columns")
    fields = list(card.get("fields") or [])
    if name in fields and not replace:
        raise SourceError(f"{root}: field {name!r} already exists; pass replace=True (--replace) to rewrite it")
    records = discover(src).records
    by_key: dict[str, dict[str, Any]] = {}
    for r in records:
        wanted = {e: v for e, v in r.members.items() if field_of(e) == name}
        if wanted:
            by_key[r.source_key] = wanted
            by_key.setdefault(r.key, wanted)
    if not by_key:
        raise SourceError(f"{src}: no files for field {name!r} (expected e.g. <key>.png for image, <key>.{name}.npy for extras)")
    with JobLock(root, "mmdata add-modality"):
        return _add_series(root, card, fields, name, src, by_key, on_missing)


def _add_series(root: Path, card: dict[str, Any], fields: list[str], name: str, src: str | Path,
                by_key: dict[str, dict[str, Any]], on_missing: str) -> dict[str, Any]:
    rows = idx.load_index(root).to_pylist()
    shard_rows = [r for r in idx.load_shards_table(root).to_pylist() if r["modality"] != name]
    added = missing = 0
    for split, info in card["splits"].items():
        for shard in info["shards"]:
            members: list[tuple[str, bytes]] = []
            for row in (r for r in rows if r["split"] == split and r["shard"] == shard):
                kept = [(m, z) for m, z in zip(row["members"], row["sizes"]) if field_of(m.split(".", 1)[1]) != name]
                files = by_key.get(row["key"]) or by_key.get(row["source_key"])
                if not files:
                    missing += 1
                    if on_missing == "raise":
                        raise SourceError(f"{src}: no {name!r} file for sample {row['source_key']!r} (key {row['key']!r})")
                    files = {}
                else:
                    added += 1
                for ext, value in sorted(files.items()):
                    data = value if isinstance(value, bytes) else Path(value).read_bytes()
                    try:
                        row.update(member_stats(ext, data))
                    except CorruptMedia as exc:
                        raise SourceError(f"{src}: {name!r} file for {row['source_key']!r}: {exc}") from exc
                    members.append((f"{row['key']}.{ext}", data))
                    kept.append((f"{row['key']}.{ext}", len(data)))
                kept.sort()
                row["members"] = [m for m, _ in kept]
                row["sizes"] = [z for _, z in kept]
                row["modalities"] = sorted({field_of(m.split(".", 1)[1]) for m in row["members"]})
            s = write_tar(root / name / shard, members)
            shard_rows.append({"shard": f"{name}/{shard}", "split": split, "modality": name, "sha256": s.sha256,
                               "members": s.members, "samples": len({m.split('.', 1)[0] for m, _ in members}),
                               "bytes": s.bytes})
    if name not in fields:
        fields.append(name)
    card["fields"] = sorted(fields)
    card.setdefault("modalities", {})[name] = {"codecs": sorted({m.split(".", 1)[1] for r in rows for m in r["members"]
                                                                 if field_of(m.split(".", 1)[1]) == name}), "count": added}
    shard_rows.sort(key=lambda r: (r["modality"] or "", r["shard"]))
    card["fingerprint"] = hashlib.sha256("".join(r["sha256"] for r in shard_rows).encode()).hexdigest()
    idx.write_index(root, rows)
    idx.write_shards_table(root, shard_rows)
    idx.write_card(root, card)
    return {"field": name, "added": added, "missing": missing, "shards": sum(len(i["shards"]) for i in card["splits"].values())}
