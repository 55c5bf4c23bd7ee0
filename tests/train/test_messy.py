"""The trainer on a user's messy folder (mmdata.testing.make_messy_folder): unlabelled samples, derived
input defaults, classes from the card — sharded with train/val/test splits, no file rewritten by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.shards.index import load_index
from mmdata.testing import make_messy_folder
from mmdata.train import train

SIZES = ((32, 32), (48, 64), (60, 40), (120, 90))


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("messy")
    make_messy_folder(root / "raw", n=60, sizes=SIZES, seconds=(0.3, 1.5), unlabelled=0.1)
    mmdata.shard(root / "raw", root / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    return root / "ds"


def _unlabelled(ds: Path) -> dict[str, int]:
    t = load_index(ds).to_pydict()
    out = {"train": 0, "val": 0, "test": 0}
    for split, label in zip(t["split"], t["label"]):
        out[split] += label is None
    return out


def test_unlabelled_samples_are_left_out_and_counted(tmp_path: Path, messy: Path) -> None:
    """Defect 3 of issue 10: `IndexError: Target -1 is out of bounds` on a dataset with unlabelled samples."""
    expected = _unlabelled(messy)
    assert all(expected.values())  # the fixture has unlabelled samples in every split
    m = train(messy, modalities=["text"], epochs=2, seed=0, out=tmp_path / "o", threads=1, batch_size=8)
    assert {s: c["unlabelled"] for s, c in m["samples"].items()} == expected
    labelled_test = m["samples"]["test"]["labelled"]
    assert sum(c["support"] for c in m["per_class"]["test"].values()) == labelled_test
    assert all(0 <= m[s]["accuracy"] <= 1 for s in ("val", "test"))
    assert all(h["train_unlabelled"] == expected["train"] for h in m["history"])
    preds = pq.read_table(tmp_path / "o" / "predictions.parquet").to_pydict()
    assert len(preds["key"]) == m["samples"]["test"]["samples"]
    unl = [i for i, y in enumerate(preds["label"]) if y == -1]
    assert len(unl) == expected["test"] and all(preds["prob_label"][i] is None for i in unl)
    saved = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert saved["samples"] == m["samples"] and saved["classes"]["num_classes"] == 3
