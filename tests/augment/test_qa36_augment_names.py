"""QA36 (a video user): `mmdata augment --on-error raise` stopped at a copy the recipe refused with "sample
'cat03_aug0': image target ... is 60x80": the output key only, no shard and no source key, though --help
promises "naming shard and key"."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.errors import ShardError


def _clips(root: Path) -> Path:
    root.mkdir(parents=True)
    rows = []
    for i in range(4):
        a = np.random.default_rng(i).integers(0, 255, (48, 64, 3)).astype(np.uint8)
        Image.fromarray(a).save(root / f"c{i}.png")
        # the third clip's second frame is another size: the recipe refuses that copy
        Image.fromarray(a if i != 2 else a[:40, :50]).save(root / f"c{i}_f1.png")
        rows.append({"key": f"c{i}", "label": "x", "image": f"c{i}.png", "frame1": f"c{i}_f1.png"})
    with open(root / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root / "m.csv"


def test_a_refused_copy_names_the_shard_and_the_source_sample(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    mmdata.shard(str(_clips(tmp_path / "raw")), str(ds), columns={"frame1": "frame1"}, progress=False)
    recipe = {"seed": 0, "targets": {"frame1.png": "image"}, "image": [{"op": "hflip", "p": 1.0}]}
    with pytest.raises(ShardError) as e:
        augment_dataset(str(ds), str(tmp_path / "out"), recipe, progress=False)
    msg = str(e.value)
    import pandas as pd

    shard = pd.read_parquet(ds / "index.parquet").set_index("key").loc["c2", "shard"]
    assert f"shard {shard}" in msg, msg
    assert "source sample 'c2'" in msg and "c2_aug0" in msg and "frame1.png" in msg, msg
    # skip: the copy is left out and listed, the others written (unchanged behaviour)
    rep = augment_dataset(str(ds), str(tmp_path / "out2"), recipe, on_error="skip", progress=False)
    assert rep["samples"] == 3, rep


def test_a_repeated_augment_call_from_one_line_says_its_warnings_again(tmp_path: Path) -> None:
    """QA36 notebook #2 (augment's side): Python's once-per-line registry hid the second call's warning."""
    import warnings

    from mmdata.testing import make_sample_folder

    ds = tmp_path / "ds"
    mmdata.shard(make_sample_folder(str(tmp_path / "raw"), n=6), str(ds), progress=False)
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # the interpreter's own filter: once per line
        for i in range(2):
            augment_dataset(str(ds), str(tmp_path / f"out{i}"), {"seed": 0}, copies=1, progress=False)
            seen.append(sum("has no random ops" in str(w.message) for w in caught))
    assert seen == [1, 2], seen
    assert all(w.filename == __file__ for w in caught if "has no random ops" in str(w.message))
