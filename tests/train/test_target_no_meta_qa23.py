"""``--target KEY`` on a dataset sharded without ``--meta`` (QA23 notebook D1).

Before (QA round 23) ``mmdata train DATA --target genre``, ``train(DATA, target="genre")`` and an ablation with
``trainer: {target: genre}`` failed with ``unknown modalities ['json']; choose from [...]``: the target's values
were read by opening the dataset with the ``json`` field, and the reader refused a field the card lacks before
anything said why. Now each says the key, how it was given, that the dataset has no metadata and how to shard
some — the message a dataset with metadata but not that key gives, with the reason in place of the keys it has."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError
from mmdata.train import train
from mmdata.train.targets import read_values, resolve

FAST = {"epochs": 1, "batch_size": 4, "threads": 1, "eval_robustness": False}
NO_META = (r"no training sample has the metadata key 'genre' \(--target genre\); the dataset has no metadata "
           r"\(no \.json member\).*--meta genre.*meta=\[")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sample folder sharded with no ``meta``: image / audio / text / label, no ``.json`` member."""
    from mmdata.testing import make_sample_folder

    root = tmp_path_factory.mktemp("no_meta")
    mmdata.shard(make_sample_folder(root / "raw", n=24), root / "data", split="train=0.5,val=0.25,test=0.25",
                 progress=False)
    return root / "data"


def test_train_names_the_target_and_the_missing_metadata(plain: Path, tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match=NO_META) as info:
        train(plain, target="genre", out=tmp_path / "run", **FAST)
    assert "unknown modalities" not in str(info.value) and "'json'" not in str(info.value)
    assert not (tmp_path / "run").exists()


def test_the_cli_says_the_same_in_one_line(plain: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "mmdata.cli.main", "train", str(plain), "--target", "genre", "--epochs", "1",
           "--out", str(tmp_path / "run")]
    res = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=Path(__file__).parents[2],
                         capture_output=True, text=True, timeout=300)
    err = " ".join(res.stderr.split())
    assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert "unknown modalities" not in err
    assert __import__("re").search(NO_META, err), err
    assert not (tmp_path / "run").exists()


def test_read_values_and_resolve_name_how_the_key_was_given(plain: Path) -> None:
    splits = {"train": "train", "val": "val"}
    with pytest.raises(MMDataError, match=NO_META):
        read_values(str(plain), "genre", splits)
    with pytest.raises(MMDataError, match=r"metadata key 'genre' \(trainer\.target\); the dataset has no metadata"):
        resolve(str(plain), "genre", splits, option="trainer.target")


def test_an_ablation_names_the_recipe_key(plain: Path, tmp_path: Path) -> None:
    recipe = {"dataset": {"path": str(plain)}, "seeds": 2, "metric": "test.micro_f1",
              "trainer": {"target": "genre", "epochs": 1, "batch_size": 4, "eval_robustness": False},
              "design": {"mode": "explicit", "baseline": None,
                         "arms": {"cutout": {"seed": 1, "image": [{"op": "cutout", "p": 0.5}]}}},
              "controls": {"identity": False}}
    with pytest.raises(MMDataError, match=r"dataset.path: .*metadata key 'genre' \(trainer\.target\); the dataset "
                                          r"has no metadata \(no \.json member\)") as info:
        mmdata.ablate.run(recipe, tmp_path / "o", workers=1, progress=False)
    assert "unknown modalities" not in str(info.value)
    assert not (tmp_path / "o" / "runs.parquet").exists()
