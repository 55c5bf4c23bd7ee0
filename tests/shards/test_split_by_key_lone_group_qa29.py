"""Review r2 of QA29 splits #1: under ``--split-by key`` a lone row hashed on its own key before its
``--group-by`` value was looked at, so a group of one row (a speaker with one clip, an image with one caption)
hashed otherwise than the same group with two rows: its row moved (test -> train) when a second row joined,
and a first version split otherwise than before QA29 (which hashed every group as ``group:<value>``). A group
now always hashes as ``group:<value>``."""

from __future__ import annotations

from pathlib import Path

import mmdata
from mmdata.shards.writer import key_split
from tests.shards.test_split_by_key_shared_file_qa29 import SPLIT, _images, _manifest, _splits


def _version(root: Path, rows: list[dict[str, str]]) -> Path:
    _images(root, 30)
    return _manifest(root, rows)


def _row(i: int, c: int) -> dict[str, str]:
    return {"key": f"r{i:02d}_{c}", "image": f"img/i{i:03d}.png", "image_id": f"im{i:02d}", "text": f"{c} of {i}"}


def test_a_second_row_of_a_one_row_group_moves_nothing_and_groups_hash_as_before(tmp_path: Path) -> None:
    v1 = [_row(i, c) for i in range(30) for c in range(1 + i % 2)]  # 15 images of one caption row, 15 of two
    v2 = [*v1, *(_row(i, 9) for i in range(0, 30, 2))]  # a second caption for every one-row image
    got = {}
    for name, rows in {"v1": v1, "v2": v2}.items():
        mmdata.shard(_version(tmp_path / name, rows), tmp_path / f"d_{name}", split=SPLIT, split_by="key",
                     group_by="image_id", progress=False)
        got[name] = _splits(tmp_path / f"d_{name}")
    assert len(got["v1"]) == 45 and len(got["v2"]) == 60
    assert {k: got["v2"][k] for k in got["v1"]} == got["v1"]
    # every row, lone or not, takes its group's hash, as before QA29 (b6a69cd)
    assert got["v1"] == {r["key"]: key_split(f"group:{r['image_id']}", SPLIT, 0) for r in v1}
    assert len(set(got["v1"].values())) == 3
