"""QA round 34, review E2 #8: ``mmdata augment`` rerun with only another ``--seed`` said "the recipe or options
differ (recipe, seed)": the card's recipe carries the seed derived from ``--seed``. Real PNGs, real shards."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset

RECIPE = {"image": [{"op": "hflip", "p": 0.5}]}


def test_another_seed_is_named_as_the_seed_not_the_recipe(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "a"
    raw.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 30 * i, np.uint8)).save(raw / f"s{i}.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(tmp_path / "raw", tmp_path / "src", split="train=1.0", progress=False)
        augment_dataset(tmp_path / "src", tmp_path / "aug", RECIPE, progress=False, seed=4)
        rep = augment_dataset(tmp_path / "src", tmp_path / "aug", RECIPE, progress=False, seed=5)
    assert rep["rewrote"].endswith("the recipe or options differ (seed)"), rep["rewrote"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = augment_dataset(tmp_path / "src", tmp_path / "aug", {"image": [{"op": "hflip", "p": 1.0}]},
                              progress=False, seed=5)
    assert "(recipe)" in rep["rewrote"], rep["rewrote"]
