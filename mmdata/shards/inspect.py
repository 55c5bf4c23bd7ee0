"""``mmdata inspect``: what a dataset holds, from its index (fast: nothing is decoded)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from mmdata.codecs import field_of
from mmdata.shards import index as idx


def _dist(values: list[float]) -> dict[str, float] | None:
    vals = sorted(v for v in values if v is not None and v == v)
    if not vals:
        return None
    n = len(vals)
    median = vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2
    return {"count": n, "min": vals[0], "median": median, "max": vals[-1]}


def inspect(path: str | Path) -> dict[str, Any]:
    """Summarise a dataset folder.

    Returns:
        ``samples``, ``per_split``, ``per_class`` (by name when the card has names, per split),
        ``patterns`` (modality-presence pattern -> count), ``shards`` (count, total/min/max bytes),
        ``bytes_per_modality``, and ``image_size`` / ``audio_seconds`` / ``text_chars`` distributions
        (count, min, median, max), plus ``skipped`` from sharding.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=4), t + "/ds", progress=False)
        >>> inspect(t + "/ds")["per_split"]
        {'train': 4}
    """
    card = idx.load_card(path)
    rows = idx.load_index(path).to_pydict()
    shards = idx.load_shards_table(path).to_pydict()
    names = card.get("label_names")
    n = len(rows["key"])
    per_class: dict[str, dict[str, int]] = {}
    for split, label in zip(rows["split"], rows["label"]):
        name = "(none)" if label is None else (names[label] if names and 0 <= label < len(names) else str(label))
        per_class.setdefault(split, {})
        per_class[split][name] = per_class[split].get(name, 0) + 1
    bytes_mod: Counter[str] = Counter()
    for members, sizes in zip(rows["members"], rows["sizes"]):
        for m, s in zip(members, sizes):
            bytes_mod[field_of(m.split(".", 1)[1])] += s
    sizes = shards["bytes"]
    return {
        "path": str(path),
        "name": card.get("name"),
        "layout": card.get("layout"),
        "samples": n,
        "per_split": dict(sorted(Counter(rows["split"]).items())),
        "per_class": {k: dict(sorted(v.items())) for k, v in sorted(per_class.items())},
        "patterns": dict(Counter("+".join(m) for m in rows["modalities"]).most_common()),
        "shards": {"count": len(sizes), "total_bytes": int(sum(sizes)), "min_bytes": int(min(sizes, default=0)),
                   "max_bytes": int(max(sizes, default=0))},
        "bytes_per_modality": dict(sorted(bytes_mod.items())),
        "image_height": _dist(rows["image_height"]),
        "image_width": _dist(rows["image_width"]),
        "audio_seconds": _dist(rows["audio_seconds"]),
        "audio_sample_rate": dict(Counter(r for r in rows["audio_sample_rate"] if r is not None)),
        "text_chars": _dist(rows["text_chars"]),
        "skipped": card.get("skipped_count", 0),
    }
