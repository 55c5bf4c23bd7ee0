"""QA: an ablation over a dataset holding one sample that does not decode (a float WAV of NaN, which the
default ``--check header`` lets through) failed every run, and the error's way out (``--on-error skip
(on_error='skip')``) did not exist for ``mmdata ablate``: ``trainer: {on_error: skip}`` was refused as
an unknown key. Now the recipe's ``trainer.on_error`` reaches every run alike (each run's skipped
samples are in its warnings), and the trainer's hint names that key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mmdata
from mmdata.ablate import run
from mmdata.errors import MMDataError
from mmdata.train import train


@pytest.fixture(scope="module")
def nan_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 short float WAV clips (two classes by pitch; train / train / val / test), clip 3 (test) holds
    NaN. Sharded with the default ``--check header``."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("nan_ablate")
    (root / "raw").mkdir()
    lines = ["filename,category,split"]
    for i in range(16):
        cls, split = ("dog" if i % 2 else "rain"), ("train", "train", "val", "test")[i % 4]
        t = np.arange(800) / 8000
        x = (0.3 * np.sin(2 * np.pi * (300 if cls == "dog" else 900) * t)).astype("float32")
        if i == 3:
            x[10:20] = np.nan
        sf.write(root / "raw" / f"c{i}.wav", x, 8000, subtype="FLOAT")
        lines.append(f"c{i}.wav,{cls},{split}")
    (root / "raw" / "m.csv").write_text("\n".join(lines) + "\n")
    mmdata.shard(root / "raw" / "m.csv", root / "ds", columns={"audio": "filename", "label": "category", "split": "split"},
                 progress=False)
    return root / "ds"


def _recipe(ds: Path, **trainer: object) -> dict:
    return {"dataset": {"path": str(ds)}, "seeds": 2, "controls": {"identity": False},
            "trainer": {"epochs": 1, "batch_size": 4, "eval_robustness": False, **trainer},
            "design": {"mode": "explicit", "baseline": None, "arms": {"gain": {"audio": [{"op": "gain", "p": 0.5}]}}}}


def test_trainer_on_error_skip_runs_every_arm_and_counts_the_skips(nan_ds: Path, tmp_path: Path) -> None:
    s = run(_recipe(nan_ds, on_error="skip"), tmp_path / "ab", workers=1, progress=False, plots=False,
                          on_warning=lambda msg: None)
    assert s["design"]["complete"]
    runs = pd.read_parquet(tmp_path / "ab" / "runs.parquet")
    assert (runs["status"] == "ok").all() and len(runs) == 4
    assert all("skipped" in str(w) and "test" in str(w) for w in runs["warnings"]), runs["warnings"].tolist()


def test_the_trainers_hint_names_the_ablation_key(nan_ds: Path) -> None:
    with pytest.raises(MMDataError) as err:
        train(nan_ds, epochs=1, threads=1, eval_robustness=False)
    msg = str(err.value)
    assert "--check decode" in msg and "--on-error skip" in msg and "trainer: {on_error: skip}" in msg


def test_a_bad_on_error_is_refused_naming_the_recipe_key(nan_ds: Path, tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match=r"trainer\.on_error: 'ignore' is not one of \['raise', 'skip'\]"):
        run(_recipe(nan_ds, on_error="ignore"), tmp_path / "ab", workers=1, progress=False, plots=False,
                          on_warning=lambda msg: None)
