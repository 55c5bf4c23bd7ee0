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
