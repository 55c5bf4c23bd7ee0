"""QA37 preview / verify / reader defects: verify --deep on a float-TIFF named field holding NaN (a tensor, not an
array), a long stereo clip drawn per channel, a silent clip drawn as silence, a float target's NaN drawn as
nodata, and loader(blend(...)) pointing at the mapping it takes."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset


def _dem_folder(root: Path, n: int, size: int, nan: bool) -> Path:
    """n tiles (grey PNG) with a float DEM TIFF beside each, NaN at [0, 0] when ``nan``; labels a / b."""
    raw = root / "raw"
    raw.mkdir(parents=True)
    rows = []
    for i in range(n):
        Image.fromarray(np.full((size, size, 3), 20 + i * 20, np.uint8)).save(raw / f"t{i}.png")
        d = np.tile(np.linspace(0, 3000, size, dtype=np.float32), (size, 1)) + i
        if nan:
            d[0, 0] = np.nan
        Image.fromarray(d, "F").save(raw / f"t{i}_dem.tif")
        rows.append({"image": f"t{i}.png", "dem": f"t{i}_dem.tif", "label": "ab"[i % 2]})
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return raw / "m.csv"


def test_verify_deep_counts_nan_in_a_float_tiff_named_field(tmp_path: Path) -> None:
    """geo #2: the augmented dem.tif.npy decodes to a tensor (``.size`` is a method): deep verify warned by
    crashing with a TypeError instead of naming the field."""
    manifest = _dem_folder(tmp_path, 4, 16, nan=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(manifest, tmp_path / "d", columns={"dem": "dem"}, progress=False)
        augment_dataset(tmp_path / "d", tmp_path / "daug",
                        {"seed": 0, "targets": {"dem.tif": "mask"}, "image": [{"op": "hflip", "p": 0.5}]},
                        progress=False)
        report = mmdata.verify(tmp_path / "daug", deep=True)
    assert report["ok"], report["problems"]
    said = " ".join(str(w) for w in report.get("warnings", []))
    assert "dem.tif" in said and "4 of 4 arrays" in said and "1 of 256 values" in said, report.get("warnings")


def test_loader_of_a_blend_names_the_mapping_to_pass(tmp_path: Path) -> None:
    """fed #4: mmdata.loader(mmdata.blend(...)) said "or a list of those", and a list of dataset folders is
    refused: the error gives the mapping the loader takes, built from the blend."""
    from mmdata.testing import make_class_folders

    for name in ("s1", "s2"):
        make_class_folders(tmp_path / f"raw_{name}", per_class=2)
        mmdata.shard(tmp_path / f"raw_{name}", tmp_path / name, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = mmdata.blend({"s1": tmp_path / "s1", "s2": tmp_path / "s2"}, split="train", seed=3, weights={"s2": 2.0})
        with pytest.raises(mmdata.ShardError) as err:
            mmdata.loader(b, batch_size=2)
    msg = str(err.value)
    assert "got a BlendDataset" in msg and "list of those" not in msg, msg
    want = (f"mmdata.loader({{'s1': {str(tmp_path / 's1')!r}, 's2': {str(tmp_path / 's2')!r}}}, split='train', "
            "weights={'s1': 1.0, 's2': 2.0}, seed=3)")
    assert want in msg, msg
    # the mapping it names is one the loader takes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = next(iter(mmdata.loader({"s1": tmp_path / "s1", "s2": tmp_path / "s2"}, split="train",
                                        weights={"s1": 1.0, "s2": 2.0}, seed=3, batch_size=2)))
    assert batch is not None
