"""The loader warns once when a batch pads images of mixed sizes to the largest (QA: portrait and
landscape photos were padded to squares without a word)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import image_bytes


def _folder(root: Path, sizes: list[tuple[int, int]]) -> Path:
    root.mkdir(parents=True)
    for i, hw in enumerate(sizes):
        (root / f"{i:03d}.png").write_bytes(image_bytes(i, hw))
        (root / f"{i:03d}.cls").write_text(str(i % 2))
    return root


def test_mixed_sizes_are_warned_about_once(tmp_path: Path) -> None:
    mmdata.shard(_folder(tmp_path / "raw", [(24, 32), (32, 24), (24, 32), (16, 16)] * 2), tmp_path / "ds", progress=False)
    ld = mmdata.loader(tmp_path / "ds", 4, shuffle=False)
    with pytest.warns(UserWarning, match=r"a batch holds images of 3 sizes \(16x16, 24x32, 32x24, height x width\), "
                                         r"zero-padded to 32x32 .*resize \+ center_crop") as rec:
        batches = list(ld)
        list(ld)  # the next epoch: said once per loader
    assert len(batches) == 2 and len([w for w in rec if "zero-padded" in str(w.message)]) == 1


def test_one_size_or_a_resizing_recipe_says_nothing(tmp_path: Path) -> None:
    mmdata.shard(_folder(tmp_path / "raw", [(24, 32), (32, 24), (16, 16)]), tmp_path / "ds", progress=False)
    norm = {"normalize": {"image": [{"op": "resize", "size": 16, "side": "shorter"}, {"op": "center_crop", "size": [16, 16]}]}}
    mmdata.shard(_folder(tmp_path / "raw2", [(24, 32)] * 3), tmp_path / "ds2", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(mmdata.loader(tmp_path / "ds", 3, recipe=norm))) == 1
        assert len(list(mmdata.loader(tmp_path / "ds2", 3))) == 1
