"""QA round on `mmdata train`: a one-class dataset was told "the card has no classes (num_classes=1)",
and `--out` could be the dataset's own folder or the raw source folder (metrics.json, model.pt and
predictions.parquet written among their files without a word)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError
from mmdata.testing import make_class_folders
from mmdata.train import train
from mmdata.train.config import check_out_folder, too_few_classes

FAST = {"epochs": 1, "batch_size": 4, "threads": 1, "eval_robustness": False, "progress": False}


@pytest.fixture(scope="module")
def one_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("one_class")
    make_class_folders(root / "src", per_class=10, classes=("cat",))  # cat/*.png + *.txt
    mmdata.shard(root / "src", root / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    return root / "ds"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from mmdata.cli.main import main; main()", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "COLUMNS": "400"})


def test_one_class_is_named_not_called_no_classes(one_class: Path, tmp_path: Path) -> None:
    res = _cli("train", str(one_class), "--epochs", "1", "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and res.stdout == "", res
    msg = " ".join(res.stderr.split())
    assert msg.startswith(f"error: {one_class} has 1 class ('cat'): a classifier needs at least 2"), msg
    assert "no classes" not in msg and "unlabelled" not in msg
    assert "pre-train the encoders on its image-text pairs alone: --pretrain contrastive --epochs 0" in msg
    assert not (tmp_path / "r").exists()
    with pytest.raises(MMDataError, match=r"has 1 class \('cat'\): a classifier needs at least 2"):
        train(one_class, **FAST)


def test_one_class_pretrains_alone_as_the_hint_says(one_class: Path, tmp_path: Path) -> None:
    m = train(one_class, epochs=0, pretrain="contrastive", pretrain_epochs=1, threads=1, out=tmp_path / "o")
    assert "pretrain" in m and (tmp_path / "o" / "contrastive.pt").is_file()


def test_pretrain_hint_only_where_there_are_pairs() -> None:
    one = {"num_classes": 1, "label_names": ["cat"], "modalities": {"image": {}, "label": {}}}
    assert too_few_classes("ds", one) == ("ds has 1 class ('cat'): a classifier needs at least 2 (shard a source "
                                          "with samples of another class too)")
    none = {"num_classes": 0, "modalities": {"image": {}, "text": {}}}
    assert too_few_classes("ds", none) == ("ds: the card has no classes (num_classes=0); training needs labels (to "
                                           "pre-train the encoders on unlabelled pairs alone: --pretrain contrastive "
                                           "--epochs 0)")
    assert too_few_classes("ds", {**none, "modalities": {"audio": {}}}).endswith("training needs labels")


def test_ablation_of_a_one_class_dataset_names_the_class(one_class: Path, tmp_path: Path) -> None:
    from mmdata.ablate import run

    cfg = {"dataset": {"path": str(one_class)}, "trainer": {"epochs": 1}, "seeds": 2,
           "design": {"mode": "explicit", "arms": {"cutout": {"seed": 0, "image": [{"op": "cutout"}]}}}}
    with pytest.raises(MMDataError, match=r"dataset\.path: .* has 1 class \('cat'\): a classifier needs at least 2"):
        run(cfg, tmp_path / "o", progress=False, plots=False)


@pytest.mark.parametrize("where", ["dataset", "source"])
def test_out_into_the_dataset_or_its_source_is_refused(two_class: Path, where: str) -> None:
    out = two_class if where == "dataset" else two_class.parent / "src"
    before = sorted(p.name for p in out.iterdir())
    res = _cli("train", str(two_class), "--epochs", "1", "--out", str(out))
    assert res.returncode == 2 and res.stdout == "", res
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith(f"error: out (--out) {out}: "), res.stderr
    said = "a dataset folder (it holds dataset.json)" if where == "dataset" else "not empty and not an earlier run's output"
    assert said in res.stderr
    assert sorted(p.name for p in out.iterdir()) == before
    with pytest.raises(MMDataError, match="a dataset folder" if where == "dataset" else "not an earlier run's output"):
        train(two_class, out=out, **FAST)


def test_out_of_shards_alone_is_a_dataset_folder(tmp_path: Path) -> None:
    (tmp_path / "train-000000.tar").write_bytes(b"")
    with pytest.raises(MMDataError, match=r"a dataset folder \(it holds train-000000\.tar\)"):
        check_out_folder(tmp_path)


def test_rerun_into_the_same_out_still_replaces_its_files(two_class: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(two_class, out=out, **FAST)
    (out / "notes.md").write_text("mine")  # a note beside an earlier run's outputs: still that run's folder
    first = (out / "metrics.json").read_bytes()
    train(two_class, out=out, **FAST)
    assert {"metrics.json", "model.pt", "predictions.parquet", "notes.md"} <= {p.name for p in out.iterdir()}
    assert (out / "metrics.json").read_bytes() != b"" and first != b""


def test_empty_or_new_out_and_a_killed_runs_temps_are_fine(tmp_path: Path) -> None:
    check_out_folder(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_out_folder(tmp_path / "empty")
    (tmp_path / "killed").mkdir()
    (tmp_path / "killed" / ".metrics.json.mmdata-0123abcd-999999-x1.tmp").write_bytes(b"{")
    check_out_folder(tmp_path / "killed")
    (tmp_path / "finder").mkdir()
    (tmp_path / "finder" / ".DS_Store").write_bytes(b"\0")  # macOS puts one in a folder opened in Finder
    check_out_folder(tmp_path / "finder")
