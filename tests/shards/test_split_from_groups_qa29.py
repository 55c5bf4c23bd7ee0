"""QA29 splits #2: ``--group-by speaker --split-from OLD`` over an earlier version not split by speaker warned
that groups "span several splits by the source's own split column" (the manifest has none: --split-from gave
them), and the card recorded ``split_group_by: speaker`` as if the splits were speaker-disjoint. The warning
now names --split-from, and the card counts the groups crossing splits (``split_groups_crossing``)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.writer import ShardWarning

SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}


def _manifest(root: Path, n: int) -> Path:
    (root / "img").mkdir(parents=True)
    rows = []
    for i in range(n):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(root / "img" / f"{i}.png")
        rows.append({"key": f"k{i:03d}", "image": f"img/{i}.png", "label": "ab"[i % 2], "speaker": f"spk{i % 3}"})
    with open(root / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root / "m.csv"


def test_groups_crossing_splits_under_split_from_name_it_and_the_card_counts_them(tmp_path: Path) -> None:
    mmdata.shard(_manifest(tmp_path / "v1", 30), tmp_path / "d1", split=SPLIT, progress=False)  # not by speaker
    with pytest.warns(ShardWarning) as got:
        mmdata.shard(_manifest(tmp_path / "v2", 36), tmp_path / "d2", split=SPLIT, group_by="speaker",
                     split_from=tmp_path / "d1", progress=False)
    text = " | ".join(str(w.message) for w in got)
    assert "3 groups of samples span several splits by --split-from" in text
    assert "source's own split column" not in text
    card = idx.load_card(tmp_path / "d2")
    assert card["split_group_by"] == "speaker" and card["split_groups_crossing"] == 3


def test_a_grouped_split_records_no_crossing_group(tmp_path: Path) -> None:
    mmdata.shard(_manifest(tmp_path / "v1", 30), tmp_path / "d1", split=SPLIT, group_by="speaker", progress=False)
    assert idx.load_card(tmp_path / "d1")["split_groups_crossing"] == 0
