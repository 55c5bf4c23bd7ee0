"""Issue 10's acceptance, in one place: a user's messy folder (mmdata.testing.make_messy_folder: mixed
image sizes and modes, 16 / 22.05 kHz mono and stereo audio, multilingual, empty and missing captions,
unlabelled and imbalanced samples, nested folders and odd names) goes through every step a user takes —
shard, inspect, verify, preview, load in both ``augment_on`` modes, train, ablate with the bundled trainer
and with the ``--trainer`` example — from the CLI, with no file rewritten by hand."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.shards.index import load_index
from mmdata.testing import make_messy_folder

ROOT = Path(__file__).resolve().parents[1]
SIZES = ((28, 28), (40, 56), (64, 48), (90, 120))

# what a user writes: a normalize stage that makes every sample the same shape, then random ops
RECIPE = {
    "seed": 5,
    "normalize": {
        "image": [{"op": "to_rgb"}, {"op": "resize", "size": 32}, {"op": "center_crop", "size": [32, 32]}],
        "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}, {"op": "pad_trim", "seconds": 0.5}],
        "text": [{"op": "max_tokens", "n": 16}],
    },
    "image": [{"op": "hflip", "p": 0.5}, {"op": "random_crop", "p": 1.0, "size": [28, 28], "padding": 2}],
    "audio": [{"op": "gain", "p": 0.5, "min_db": -6.0, "max_db": 6.0}],
    "text": [{"op": "token_mask", "p": 0.5, "p_token": 0.2}],
}


def _cli(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, f"mmdata {' '.join(args)}\n{res.output[-3000:]}"
    return res.stdout if "--json" in args else res.output  # --json: stdout is the document, stderr the diagnostics


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    root = tmp_path_factory.mktemp("e2e")
    folder = make_messy_folder(root / "raw", n=48, seed=3, sizes=SIZES, seconds=(0.3, 1.2), unlabelled=0.1, stereo=0.2)
    _cli("shard", str(root / "raw"), str(root / "ds"), "--split", "train=0.6,val=0.2,test=0.2", "--seed", "0")
    (root / "recipe.yaml").write_text(yaml.safe_dump(RECIPE, sort_keys=False), encoding="utf-8")
    return root, root / "ds", folder


def test_shard_is_exact_and_inspect_shows_the_mess(messy: tuple[Path, Path, object]) -> None:
    root, ds, folder = messy
    index = load_index(ds).to_pydict()
    truth = folder.truth
    assert len(index["key"]) == len(truth)  # nothing lost, nothing invented
    card = json.loads((ds / "dataset.json").read_text(encoding="utf-8"))
    assert card["num_classes"] == len(folder.class_names) and card["label_names"] == list(folder.class_names)
    assert sum(label is None for label in index["label"]) == sum(t.label is None for t in truth)
    out = json.loads(_cli("inspect", str(ds), "--json"))
    text = json.dumps(out)
    for must in ("16000", "22050"):  # the mixed sample rates are visible before training (defect 10)
        assert must in text
    _cli("verify", str(ds))


def test_preview_draws_every_kind_of_sample(messy: tuple[Path, Path, object]) -> None:
    root, ds, _ = messy
    png = root / "preview.png"
    _cli("preview", str(ds), "--recipe", str(root / "recipe.yaml"), "--out", str(png), "--n", "12", "--variants", "2",
         "--seed", "1")
    with Image.open(png) as im:
        assert im.width > 200 and im.height > 200 and np.asarray(im.convert("L")).std() > 5


def test_both_augment_on_modes_load_the_same_batches(messy: tuple[Path, Path, object]) -> None:
    """Defects 1-2: mixed channel counts and sample rates load in both modes, and both give the same
    normalized shapes and the same keys in the same order (one seeded plan per sample)."""
    root, ds, _ = messy
    got = {}
    for mode in ("workers", "device"):
        batches = list(mmdata.loader(ds, 8, recipe=root / "recipe.yaml", seed=2, augment_on=mode))
        got[mode] = batches
        assert sum(len(b) for b in batches) == load_index(ds).to_pydict()["split"].count("train")
        for b in batches:
            assert b["image"].shape[1:] == (3, 28, 28)
            assert b["audio"].shape[1:] == (1, 8000)
    for a, b in zip(got["workers"], got["device"]):
        assert a.keys == b.keys
        assert a["image"].shape == b["image"].shape and a["audio"].shape == b["audio"].shape
        assert torch.equal(a.present["text"], b.present["text"])
    evaluated = list(mmdata.loader(ds, 16, recipe=root / "recipe.yaml", split="test", stage="eval"))
    assert all(b["image"].shape[1:] == (3, 32, 32) for b in evaluated)


def test_train_from_the_cli(messy: tuple[Path, Path, object]) -> None:
    root, ds, _ = messy
    _cli("train", str(ds), "--fusion", "concat", "--epochs", "1", "--batch-size", "8", "--recipe",
         str(root / "recipe.yaml"), "--out", str(root / "train"), "--threads", "1", "--json")
    m = json.loads((root / "train" / "metrics.json").read_text(encoding="utf-8"))
    assert 0 <= m["test"]["accuracy"] <= 1 and m["samples"]["train"]["unlabelled"] >= 0
    assert len(pq.read_table(root / "train" / "predictions.parquet")) == m["samples"]["test"]["samples"]


def _ablation(ds: Path, trainer: dict) -> dict:
    return {
        "dataset": {"path": str(ds)},
        "trainer": trainer,
        "seeds": 2,
        "design": {"mode": "explicit", "baseline": {"normalize": RECIPE["normalize"]},
                   "arms": {"flip": {"normalize": RECIPE["normalize"], "image": [{"op": "hflip", "p": 0.5}]}}},
        "controls": {"identity": False, "label_noise": 0.0},
    }


@pytest.mark.parametrize("which", ["bundled", "custom"])
def test_ablate_with_the_bundled_trainer_and_your_own(messy: tuple[Path, Path, object], which: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root, ds, _ = messy
    if which == "bundled":
        trainer = {"epochs": 1, "batch_size": 16, "modalities": ["image", "audio", "text"], "eval_robustness": False}
        extra: list[str] = []
    else:  # examples/custom_trainer.py, importable by the worker processes through PYTHONPATH
        trainer = {"epochs": 1, "batch_size": 16}
        extra = ["--trainer", "custom_trainer:train"]
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "examples"), os.environ.get("PYTHONPATH", "")]))
        monkeypatch.syspath_prepend(str(ROOT / "examples"))
    rec = root / f"ablate_{which}.yaml"
    rec.write_text(yaml.safe_dump(_ablation(ds, trainer), sort_keys=False), encoding="utf-8")
    out = root / f"ablate_{which}"
    _cli("ablate", str(rec), "--out", str(out), "--workers", "2", "--fixed", *extra)
    runs = pq.read_table(out / "runs.parquet").to_pydict()
    pairs = sorted(zip(runs["arm"], runs["seed"]))
    assert len(pairs) == len(set(pairs)) == 4  # 2 arms x 2 seeds, each exactly once
    assert set(runs["status"]) == {"ok"} and all(0 <= a <= 1 for a in runs["test_accuracy"])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert "flip" in json.dumps(summary) and (out / "report.md").exists()
    sys.modules.pop("custom_trainer", None)


def test_make_messy_folder_refuses_a_folder_that_holds_files(tmp_path: Path) -> None:
    """A second call with n=12 into a folder of 30 left a truth table of 12 beside 30 samples (QA 2026-12-03)."""
    make_messy_folder(tmp_path / "raw", n=6, sizes=((8, 8),), seconds=(0.05, 0.05))
    with pytest.raises(FileExistsError, match="is not empty"):
        make_messy_folder(tmp_path / "raw", n=6)
    (tmp_path / "empty").mkdir()
    assert len(make_messy_folder(tmp_path / "empty", n=6, sizes=((8, 8),), seconds=(0.05, 0.05)).truth) >= 6
