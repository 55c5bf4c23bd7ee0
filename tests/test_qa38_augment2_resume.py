"""QA38 review 4 #1: a resumed augment job counts what the copies showed over every shard, as a fresh run does
(the finished shards' tallies are journalled with them), not only over the shards the resumed run wrote."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import mmdata
from mmdata.augment.image import ImageOp
from mmdata.augment.offline import augment_dataset
from mmdata.testing import restored_registry

STOP = {"after": None, "calls": 0}


def _stop_op() -> type:
    """The test op, registered only while a test runs (:func:`mmdata.testing.restored_registry`): defined at import,
    it stayed in the registry of the xdist worker and every later ablation there recorded this module as a plugin
    import (a resolved config then asked for --trust-code)."""

    class Qa38Stop(ImageOp):
        """Leaves the image as it is; stops the job (as a Ctrl-C would) after ``STOP["after"]`` images when set."""

        section, name = "image", "qa38_stop"

        def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
            STOP["calls"] += 1
            if STOP["after"] is not None and STOP["calls"] > STOP["after"]:
                raise KeyboardInterrupt
            return arr

    return Qa38Stop


@pytest.fixture(autouse=True)
def _stop_registered() -> Any:
    with restored_registry():
        _stop_op()
        yield


def _data(tmp_path: Path) -> Path:
    raw = tmp_path / "raw" / "a"
    raw.mkdir(parents=True)
    for i in range(12):  # white pages with a dark block top-left: a 12 x 12 crop is mostly white
        a = np.full((40, 40), 255, np.uint8)
        a[1:9, 1:12] = np.random.default_rng(i).integers(0, 80, (8, 11), dtype=np.uint8)
        Image.fromarray(a).save(raw / f"img{i:02d}.png")
    for i in range(6):  # text only: no field the image ops act on
        (raw / f"txt{i}.txt").write_text(f"caption {i}", encoding="utf-8")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    return tmp_path / "ds"


RECIPE = {"seed": 3, "image": [{"op": "random_crop", "p": 1.0, "size": [12, 12]}, {"op": "qa38_stop", "p": 1.0}]}


def _counts(out: Path) -> list[str]:
    return [w for w in json.loads((out / "dataset.json").read_text())["warnings"] if "augmented copies" in w]


def test_a_resumed_job_counts_the_findings_of_every_shard(tmp_path: Path) -> None:
    ds = _data(tmp_path)
    fresh = tmp_path / "fresh" / "aug"
    STOP.update(after=None, calls=0)
    with pytest.warns(UserWarning):
        rep_fresh = augment_dataset(ds, fresh, RECIPE, maxcount=3, progress=False)
    assert any("of the 18 augmented copies" in w for w in _counts(fresh)), _counts(fresh)
    out = tmp_path / "resumed" / "aug"
    STOP.update(after=7, calls=0)  # stopped in the third shard of images: two finished and journalled
    with pytest.raises(KeyboardInterrupt), pytest.warns(UserWarning):
        augment_dataset(ds, out, RECIPE, maxcount=3, progress=False)
    assert (out / ".mmdata-journal").exists() and not (out / "dataset.json").exists()
    STOP.update(after=None, calls=0)
    with pytest.warns(UserWarning) as said:
        rep = augment_dataset(ds, out, RECIPE, maxcount=3, progress=False)
    assert rep["resumed_shards"] >= 2
    assert _counts(out) == _counts(fresh)
    assert rep.get("unchanged_copies") == rep_fresh.get("unchanged_copies") == {"train": 6}
    console = [str(w.message) for w in said if "augmented copies" in str(w.message)]
    assert console == [f"recipe: {w.removeprefix('recipe: ')}" for w in _counts(fresh)]
    # the resumed job's record is a fresh run's: a rerun finds the folder up to date (nothing rewritten)
    stamps = {p.name: p.stat().st_mtime_ns for p in [*out.glob("*.tar"), out / "dataset.json"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        augment_dataset(ds, out, RECIPE, maxcount=3, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in [*out.glob("*.tar"), out / "dataset.json"]} == stamps
