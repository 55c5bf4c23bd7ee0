"""QA29 splits #3: ``--group-by`` values were used raw, so ``'alice'``, ``'alice '`` and ``' alice'`` (and
``José`` typed in NFC and in NFD) were separate groups, one speaker in train and test, silently. They are now
read as split values and class names are — spaces around a value cut, the NFC form — with a warning naming
the spellings; values differing only in case (``Bob`` / ``bob``) stay groups of their own, warned."""

from __future__ import annotations

import csv
import unicodedata
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.sources import Record
from mmdata.shards.writer import ShardWarning, assign_splits

SPEAKERS = ["alice", "alice ", " alice", "Jos\u00e9", unicodedata.normalize("NFD", "Jos\u00e9"), "bob", "Bob",
            "carl", "dan", "eve", "fay", "gus"]


def test_group_values_differing_by_spaces_or_unicode_form_are_one_group(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(72):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(tmp_path / "img" / f"{i}.png")
        rows.append({"key": f"k{i:03d}", "image": f"img/{i}.png", "label": "ab"[i % 2],
                     "speaker": SPEAKERS[i % len(SPEAKERS)]})
    with open(tmp_path / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    split = {"train": 0.6, "val": 0.2, "test": 0.2}
    for seed, by in ((0, "label"), (1, "label"), (0, "key"), (3, "key")):
        with pytest.warns(ShardWarning) as got:
            mmdata.shard(tmp_path / "m.csv", tmp_path / f"ds{seed}{by}", split=split, group_by="speaker", seed=seed,
                         split_by=by, progress=False)
        t = pq.read_table(tmp_path / f"ds{seed}{by}" / idx.INDEX, columns=["key", "split"]).to_pydict()
        of = dict(zip(t["key"], t["split"]))
        splits: dict[str, set[str]] = {}
        for r in rows:
            splits.setdefault(unicodedata.normalize("NFC", r["speaker"].strip()), set()).add(of[r["key"]])
        assert all(len(s) == 1 for s in splits.values()), splits
        text = " | ".join(str(w.message) for w in got)
        assert "'alice '" in text and "' alice'" in text and "each is one group, 'Jos\u00e9', 'alice'" in text and "in NFD" in text
        assert "'Bob'" in text and "'bob'" in text and "differ only in case" in text


def test_group_values_written_one_way_give_no_warning() -> None:
    recs = [Record(f"k{i}", f"k{i}", {"txt": b"x"}, label=i % 2, group=f"spk{i % 4}") for i in range(20)]
    warnings = assign_splits(recs, {"train": 0.5, "test": 0.5}, seed=0)
    assert not any("--group-by" in w for w in warnings)
