"""What :func:`mmdata.train.loop.setup` tells and plans from the index before training (QA with large
media, 2026-12-04): ``--cache auto`` sizes a split as the normalize stage leaves it (stored sizes kept
a split of 12000x9000 photos out of memory although it holds 128x128 images), and a scored split
without a modality the run uses is a warning in metrics.json (it was silent)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import mmdata
from mmdata.testing import make_messy_folder, write_manifest
from mmdata.train import train
from mmdata.train.config import IndexStats, decoded_bytes, derive_inputs

FAST = {"epochs": 1, "batch_size": 8, "threads": 1, "eval_robustness": False}


@pytest.fixture(scope="module")
def no_test_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest whose test rows lost their audio column cell (train and val keep it)."""
    root = tmp_path_factory.mktemp("no_test_audio")
    m = make_messy_folder(root / "raw", n=40, sizes=((96, 128), (120, 90)), seconds=(0.3, 0.6))
    write_manifest(m, "manifest.csv")
    df = pd.read_csv(m.root / "manifest.csv", dtype=str)
    df["split"] = ["train", "train", "train", "val", "test"] * (len(df) // 5) + ["train"] * (len(df) % 5)
    df.loc[df["split"] == "test", "audio"] = None
    df.to_csv(m.root / "manifest.csv", index=False)
    mmdata.shard(m.root / "manifest.csv", root / "ds", progress=False)
    return root / "ds"


def test_a_test_split_without_audio_is_warned_in_the_metrics(no_test_audio: Path) -> None:
    m = train(no_test_audio, **FAST)
    assert "audio" in m["config"]["modalities"]
    said = [w for w in m.get("warnings", []) if w.startswith("the test split has no audio")]
    assert len(said) == 1 and "--modalities" in said[0]


def test_cache_auto_counts_the_split_at_the_models_input_size(no_test_audio: Path) -> None:
    """A budget that the stored images exceed but the normalized ones fit: the split is decoded once."""
    st = IndexStats(no_test_audio)
    spec = derive_inputs(st, ["image"], image_size=16)
    stored = decoded_bytes(st, "train", ["image"])
    normalized = decoded_bytes(st, "train", ["image"], spec)
    assert normalized < stored / 2
    budget = (normalized + stored) / 2 / 2**20
    m = train(no_test_audio, modalities=["image"], image_size=16, cache="auto", cache_budget_mb=budget, **FAST)
    assert m["cache"]["train"] is True
