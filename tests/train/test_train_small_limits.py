"""Two known limits of `mmdata train` (2026-12-04): a dataset with fewer than 2 classes was refused without
a word about the metadata columns it could predict instead (``--target``), and ``--out`` inside a dataset
folder (``--out ds/runs``) was not refused, so the run's files landed among the dataset's (and travelled
with it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError
from mmdata.testing import image_bytes
from mmdata.train import train
from mmdata.train.config import check_out_folder, dataset_around, target_columns, too_few_classes

FAST = {"epochs": 1, "batch_size": 4, "threads": 1, "eval_robustness": False, "progress": False}


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from mmdata.cli.main import main; main()", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "COLUMNS": "400"}, cwd=cwd)


def _meta_dataset(root: Path, label: str | None) -> Path:
    """A JSONL manifest of 12 images sharded with ``--meta genres year notes`` (``notes`` null in every row),
    every row labelled ``label`` (None: no label column, an unlabelled dataset). Returns ``root/ds``."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(12):
        (root / f"{i}.png").write_bytes(image_bytes(i))
        rows.append({"key": f"s{i}", "image": f"{i}.png", "split": ["train", "val", "test"][i % 3],
                     "genres": [["drama"], ["comedy"], ["drama", "comedy"]][i % 3 if i < 6 else (i + 1) % 3],
                     "year": 1990 + i, "notes": None, **({"label": label} if label else {})})
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    mmdata.shard(root / "m.jsonl", root / "ds", meta=["genres", "year", "notes"], progress=False)
    return root / "ds"


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _meta_dataset(tmp_path_factory.mktemp("unlabelled"), None)


@pytest.fixture(scope="module")
def one_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _meta_dataset(tmp_path_factory.mktemp("one_class"), "cat")


# --- 1. too few classes: the metadata columns a --target could predict ---------------------------------------

HINT = "; or predict a metadata column: --target genres (columns: genres, year)"


def test_the_card_records_the_columns_and_the_all_null_one_is_not_offered(unlabelled: Path) -> None:
    card = mmdata.open_dataset(unlabelled, split="train", decode=False).card
    assert card["metadata_columns"] == ["genres", "year", "notes"] and card["metadata_kinds"]["notes"] == "null"
    assert int(card.get("num_classes") or 0) == 0
    assert target_columns(card) == ["genres", "year"]


@pytest.mark.parametrize("which", ["unlabelled", "one_class"])
def test_cli_names_the_metadata_columns_on_one_line(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    ds = request.getfixturevalue(which)
    res = _cli("train", str(ds), "--epochs", "1", "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and res.stdout == "", res
    first = (f"{ds}: the card has no classes (num_classes=0); training needs labels" if which == "unlabelled" else
             f"{ds} has 1 class ('cat'): a classifier needs at least 2 (shard a source with samples of another class too)")
    assert res.stderr == f"error: {first}{HINT}\n", res.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("which", ["unlabelled", "one_class"])
def test_api_names_them_too(which: str, request: pytest.FixtureRequest) -> None:
    ds = request.getfixturevalue(which)
    with pytest.raises(MMDataError) as exc:
        train(ds, **FAST)
    assert str(exc.value).endswith(HINT) and "\n" not in str(exc.value)


def test_the_suggested_target_trains(one_class: Path, tmp_path: Path) -> None:
    m = train(one_class, target="genres", out=tmp_path / "r", **FAST)
    assert m["target"]["key"] == "genres" and m["target"]["kind"] == "multilabel"


def test_no_metadata_columns_no_hint() -> None:
    one = {"num_classes": 1, "label_names": ["cat"], "modalities": {"image": {}, "text": {}}}
    plain = too_few_classes("ds", one)
    assert "--target" not in plain and plain.endswith("--pretrain contrastive --epochs 0)")
    assert too_few_classes("ds", {**one, "metadata_columns": []}) == plain
    assert too_few_classes("ds", {**one, "metadata_columns": ["notes"], "metadata_kinds": {"notes": "null"}}) == plain
    # the pre-train hint stays inside its parenthesis; the target hint follows it
    assert too_few_classes("ds", {**one, "metadata_columns": ["year"]}) == plain + (
        "; or predict a metadata column: --target year (columns: year)")


def test_many_columns_are_counted_not_all_listed() -> None:
    cols = [f"c{i}" for i in range(20)]
    msg = too_few_classes("ds", {"num_classes": 0, "metadata_columns": cols})
    assert msg.endswith("--target c0 (columns: c0, c1, c2, c3, c4, c5, c6, c7, ... (20 in all))"), msg


# --- 2. --out inside a dataset folder -----------------------------------------------------------------------

@pytest.mark.parametrize("out", ["ds/runs", "ds/runs/a"])
def test_out_inside_the_data_folder_is_refused(two_class: Path, out: str) -> None:
    before = sorted(p.relative_to(two_class).as_posix() for p in two_class.rglob("*"))
    res = _cli("train", "ds", "--epochs", "1", "--out", out, cwd=two_class.parent)
    assert res.returncode == 2 and res.stdout == "", res
    assert res.stderr == (f"error: out (--out) {out}: inside the dataset folder ds (it holds dataset.json); the run "
                          "would write metrics.json, predictions.parquet and model.pt among its files: give a folder "
                          "outside it, e.g. runs/ds\n"), res.stderr
    assert sorted(p.relative_to(two_class).as_posix() for p in two_class.rglob("*")) == before
    with pytest.raises(MMDataError, match=r"inside the dataset folder .*ds \(it holds dataset\.json\)"):
        train(two_class, out=two_class / "runs", **FAST)
    assert not (two_class / "runs").exists()


def test_out_inside_another_dataset_folder_is_refused(two_class: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "index.parquet").write_bytes(b"")  # the index alone makes it a dataset folder, as for out itself
    with pytest.raises(MMDataError, match=rf"out \(--out\) {other}/runs/x: inside the dataset folder {other} "
                                          r"\(it holds index\.parquet\)"):
        train(two_class, out=other / "runs" / "x", **FAST)
    assert not (other / "runs").exists()


def test_working_folder_or_a_link_inside_a_dataset_is_refused(two_class: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(two_class)
    assert dataset_around(link / "runs") == link  # as the user named it
    sub = two_class / "sub"
    sub.mkdir(exist_ok=True)
    try:
        res = _cli("train", str(two_class), "--epochs", "1", "--out", "runs", cwd=sub)
        assert res.returncode == 2 and f"inside the dataset folder {two_class} (it holds dataset.json)" in res.stderr
        assert res.stderr.count("\n") == 1 and not (sub / "runs").exists()
    finally:
        sub.rmdir()
    with pytest.raises(MMDataError, match="inside the dataset folder"):
        check_out_folder(tmp_path / "link" / "runs" / ".." / "runs")


def test_out_beside_the_dataset_is_fine(two_class: Path, tmp_path: Path) -> None:
    assert dataset_around(two_class.parent / "runs" / "a") is None
    assert dataset_around(two_class) is None  # out itself is check_out_folder's: "a dataset folder"
    m = train(two_class, out=tmp_path / "runs" / "a", **FAST)
    assert (tmp_path / "runs" / "a" / "metrics.json").is_file() and m
