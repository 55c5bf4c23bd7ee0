"""Alignment Δ on a dataset whose splits are folds: the recipe's ``trainer.train_split`` / ``val_split`` /
``test_split`` (the names of ``mmdata train --train-split / --val-split / --test-split``) say which folds
play train, val and test, for the runs and for the alignment columns alike.

Before (2026-12-04, known limit "``mmdata ablate --alignment`` has no fold splits") the alignment ignored
them: after every run had finished, the reference model's pre-training failed with "index.parquet has no
training rows" (it read a split named train), and the columns read a split named test. Now the reference
model pre-trains on the training folds, the columns are measured on the fold playing ``alignment.split``,
and a split option that does not fit the dataset is refused before any run, with train's message."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml
from typer.testing import CliRunner

import mmdata
from mmdata.ablate import run
from mmdata.cli.main import app
from mmdata.errors import MMDataError
from mmdata.testing import shard_folds
from mmdata.train.alignment import alignment_columns, reference_model

SYN = "mmdata.ablate.testing:synthetic_train"
HEAVY = {"seed": 0, "image": [{"op": "cutout", "p": 1.0, "size": [0.6, 0.8]}], "text": [{"op": "token_mask", "p": 1.0}]}
FOLDS = {"val_split": "3", "test_split": "4"}


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 messy samples sharded into folds 1-4 as splits (as tests/train/test_audio_event_qa.py shards them)."""
    return shard_folds(tmp_path_factory.mktemp("align_folds"))


def _recipe(tmp_path: Path, data: Path, trainer: dict, alignment: dict | None = None) -> Path:
    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": SYN, "modalities": ["image", "text"], **trainer},
           "seeds": 2, "alignment": {"epochs": 1, **(alignment or {})},
           "design": {"mode": "explicit", "baseline": None, "arms": {"heavy": HEAVY}}, "controls": {"identity": False}}
    p = tmp_path / "ab.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_alignment_on_folds_from_the_cli(folds: Path, tmp_path: Path) -> None:
    recipe, out = _recipe(tmp_path, folds, FOLDS), tmp_path / "out"
    res = CliRunner().invoke(app, ["ablate", str(recipe), "--out", str(out), "-j", "1", "--alignment", "auto", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["arms"][0]["exploratory"]["align_cos_delta"]["n_seeds"] == 2
    ckpt = torch.load(out / "alignment" / "contrastive.pt", weights_only=True)
    assert ckpt["config"]["splits"] == {"train": ["1", "2"], "val": ["3"], "test": ["4"]}  # pre-trained on folds 1, 2
    rows = {(r["arm"], r["seed"]): r for r in pq.read_table(out / "runs.parquet").to_pylist()}
    for seed in (0, 1):  # measured on fold 4, the split playing test
        want = alignment_columns(folds, HEAVY, out / "alignment", seed=seed, split="4")
        assert rows[("heavy", seed)]["align_cos_delta"] == want["align_cos_delta"] != 0
        assert rows[("baseline", seed)]["align_cos_delta"] == 0.0


def test_alignment_split_names_a_role(folds: Path, tmp_path: Path) -> None:
    """``alignment.split: train`` reads the training folds, as one split."""
    recipe = _recipe(tmp_path, folds, {"train_split": ["1", "2"], **FOLDS}, {"split": "train"})
    run(recipe, tmp_path / "out", workers=1, progress=False, plots=False)
    rows = [r for r in pq.read_table(tmp_path / "out" / "runs.parquet").to_pylist() if r["arm"] == "heavy"]
    want = alignment_columns(folds, HEAVY, tmp_path / "out" / "alignment", seed=rows[0]["seed"], split=["1", "2"])
    assert rows[0]["align_cos_delta"] == want["align_cos_delta"]


@pytest.mark.parametrize(("trainer", "err"), [
    ({"val_split": "9", "test_split": "4"}, r"trainer\.val_split: \S+ has no split '9'; it has \['1', '2', '3', '4'\]"),
    ({"val_split": "3", "test_split": "3"}, r"split '3' plays two roles"),
    ({"train_split": "1,1", **FOLDS}, r"trainer\.train_split: a split is named twice"),
])
def test_split_options_that_do_not_fit_are_refused_before_any_run(folds: Path, tmp_path: Path, trainer: dict,
                                                                  err: str) -> None:
    with pytest.raises(MMDataError, match=err):
        run(_recipe(tmp_path, folds, trainer), tmp_path / "out", workers=1, progress=False, plots=False)
    assert not (tmp_path / "out" / "runs.parquet").exists()


def test_folds_without_split_options_say_which_to_give(folds: Path, tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match=r"has no split named 'train' or 'test' \(it has \['1', '2', '3', '4'\]\), which the "
                                          r"alignment reads .*trainer\.val_split and trainer\.test_split"):
        run(_recipe(tmp_path, folds, {}), tmp_path / "out", workers=1, progress=False, plots=False)
    assert not (tmp_path / "out" / "runs.parquet").exists()


def test_a_reference_model_is_reused_only_for_its_folds(folds: Path, tmp_path: Path) -> None:
    out = reference_model(folds, tmp_path / "ref", modalities=("image", "text"), epochs=1, **FOLDS)
    assert reference_model(folds, out, modalities=("image", "text"), epochs=1, **FOLDS) == out
    with pytest.raises(MMDataError, match=r"pre-trained with .*splits train \['1', '2'\], val \['3'\], test \['4'\] "
                                          r"\(asked for train \['2', '3'\], val \['1'\], test \['4'\]\)"):
        reference_model(folds, out, modalities=("image", "text"), epochs=1, val_split="1", test_split="4")
    with pytest.raises(MMDataError, match=r"val_split \(--val-split\): \S+ has no split '7'"):
        reference_model(folds, tmp_path / "other", modalities=("image", "text"), epochs=1, val_split="7")
