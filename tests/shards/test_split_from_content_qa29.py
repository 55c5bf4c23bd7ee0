"""QA29 splits #5: ``--split-from`` matched samples by key alone, so a manifest whose export renumbers its ids
(rows deleted, ``00000``, ``00001``, ... given anew) kept each *key*'s split for another image: v1 test images
trained v2, and the card said ``kept: 57``. The kept samples' files are now compared with the earlier index's
sizes and CRC-32s: a warning says how many kept keys hold other content (with examples), and the card counts
them (``split_from.other_content``)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.writer import ShardWarning

SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}


def _version(root: Path, images: list[int], renumber: bool) -> Path:
    (root / "img").mkdir(parents=True)
    rows = []
    for n, i in enumerate(images):
        Image.new("RGB", (4 + i, 4), (i, 0, 0)).save(root / "img" / f"i{i:02d}.png")  # sizes differ by image
        rows.append({"key": f"{n if renumber else i:05d}", "image": f"img/i{i:02d}.png", "text": f"image {i}"})
    with open(root / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root / "m.csv"


@pytest.mark.parametrize("renumber", [True, False])
def test_kept_keys_naming_other_files_are_warned_and_counted(tmp_path: Path, renumber: bool) -> None:
    mmdata.shard(_version(tmp_path / "v1", list(range(20)), renumber), tmp_path / "d1", split=SPLIT, progress=False)
    m2 = _version(tmp_path / "v2", list(range(3, 20)), renumber)  # three images deleted
    with pytest.warns(ShardWarning) as got:
        mmdata.shard(m2, tmp_path / "d2", split=SPLIT, split_from=tmp_path / "d1", progress=False)
    text = " | ".join(str(w.message) for w in got)
    about = idx.load_card(tmp_path / "d2")["split_from"]
    if renumber:
        assert about["kept"] == 17 and about["other_content"] == 17
        assert "17 of 17 samples kept by key hold other content" in text and "'00000'" in text
        assert "mmdata diff" in text
    else:
        assert about["kept"] == 17 and "other_content" not in about
        assert "other content" not in text
