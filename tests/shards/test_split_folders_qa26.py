"""Top folders named for splits (``train/``, ``test/``, ``Validation/``, TIMIT's ``TRAIN/`` / ``TEST/``) give
the split, and the class folders below them the labels, as Hugging Face's audiofolder / imagefolder read them
(QA round 26, F8: the test set became a class and was trained on)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.shards.sources import discover_folder
from mmdata.testing import audio_bytes


def _put(root: Path, rels: list[str]) -> Path:
    for i, rel in enumerate(rels):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix == ".cls":
            p.write_text(rel.rsplit("/", 2)[-2] if "/" in rel else "0")
        else:
            p.write_bytes(audio_bytes(i, seconds=0.05))
    return root


def _rows(out: Path) -> dict[str, tuple[str, int | None]]:
    t = pq.read_table(out / "index.parquet").select(["source_key", "split", "label"]).to_pylist()
    return {r["source_key"]: (r["split"], r["label"]) for r in t}


def _shard(src: Path, out: Path, **kw: object) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mmdata.shard(src, out, progress=False, **kw)


def test_split_folders_give_split_and_class_folders_below_give_labels(tmp_path: Path) -> None:
    src = _put(tmp_path / "af", [f"{s}/{c}/a.flac" for s in ("train", "test") for c in ("cat", "dog")])
    rep = _shard(src, tmp_path / "ds")
    assert rep["splits"] == {"test": 2, "train": 2}
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["label_names"] == ["cat", "dog"]
    assert _rows(tmp_path / "ds") == {"train/cat/a": ("train", 0), "train/dog/a": ("train", 1),
                                      "test/cat/a": ("test", 0), "test/dog/a": ("test", 1)}


def test_split_words_any_case_and_aliases_timit(tmp_path: Path) -> None:
    # TIMIT: TRAIN/DR1/FCJF0/SA1.WAV, TEST/...; Validation / dev / TRAINING as split_word reads them
    src = _put(tmp_path / "timit", ["TRAIN/DR1/FCJF0/SA1.flac", "TRAIN/DR2/MABC0/SA1.flac",
                                    "TEST/DR1/FDAC1/SA1.flac", "Validation/DR2/MXYZ0/SA2.flac"])
    found = discover_folder(src)
    assert {r.source_key: (r.split, r.label) for r in found.records} == {
        "TRAIN/DR1/FCJF0/SA1": ("train", 0), "TRAIN/DR2/MABC0/SA1": ("train", 1),
        "TEST/DR1/FDAC1/SA1": ("test", 0), "Validation/DR2/MXYZ0/SA2": ("val", 1)}
    assert found.label_names == ["DR1", "DR2"]


def test_class_only_in_test_is_warned(tmp_path: Path) -> None:
    src = _put(tmp_path / "s", ["train/cat/a.flac", "train/cat/b.flac", "test/cat/c.flac", "test/bird/d.flac"])
    found = discover_folder(src)
    assert found.label_names == ["bird", "cat"]
    assert any("bird" in w and "train" in w for w in found.warnings), found.warnings


def test_split_fractions_with_split_folders_are_refused(tmp_path: Path) -> None:
    src = _put(tmp_path / "s", [f"{s}/{c}/a.flac" for s in ("train", "test") for c in ("cat", "dog")])
    with pytest.raises(SourceError, match=r"train/.*test/.*--split"):
        _shard(src, tmp_path / "ds", split="train=0.8,val=0.2")
    assert not (tmp_path / "ds" / "index.parquet").exists()


def test_split_from_keeps_working(tmp_path: Path) -> None:
    src = _put(tmp_path / "s", [f"{s}/{c}/a.flac" for s in ("train", "test") for c in ("cat", "dog")])
    _shard(src, tmp_path / "v1")
    _put(src, ["train/cat/new.flac"])
    rep = _shard(src, tmp_path / "v2", split_from=tmp_path / "v1")
    assert rep["splits"] == {"test": 2, "train": 3}
    assert _rows(tmp_path / "v2")["test/dog/a"] == ("test", 1)


def test_some_top_folders_split_words_is_class_folders_with_warning(tmp_path: Path) -> None:
    src = _put(tmp_path / "s", ["train/a.flac", "cats/b.flac"])
    found = discover_folder(src)
    assert {r.source_key: (r.split, r.label) for r in found.records} == {"cats/b": (None, 0), "train/a": (None, 1)}
    assert any("train/" in w and "split" in w for w in found.warnings), found.warnings


def test_labels_file_and_flags(tmp_path: Path) -> None:
    src = _put(tmp_path / "s", [f"{s}/{c}/a.flac" for s in ("train", "test") for c in ("cat", "dog")])
    names = tmp_path / "names.txt"
    names.write_text("dog\ncat\n")
    found = discover_folder(src, label_names=["dog", "cat"], label_names_from=str(names))
    assert {r.source_key: (r.split, r.label) for r in found.records}["test/cat/a"] == ("test", 1)
    found = discover_folder(src, labels_from_folders=True)
    assert {r.source_key: r.label for r in found.records}["train/dog/a"] == 1
    found = discover_folder(src, labels_from_folders=False)
    assert {r.source_key: (r.split, r.label) for r in found.records}["test/dog/a"] == ("test", None)
    # classes really named like splits: declared names that name the top folders keep them classes
    found = discover_folder(src, label_names=["test", "train"], label_names_from="--labels")
    assert {r.source_key: (r.split, r.label) for r in found.records}["test/dog/a"] == (None, 0)


def test_raw_files_directly_in_split_folders(tmp_path: Path) -> None:
    src = _put(tmp_path / "s", ["train/a.flac", "train/a.cls", "train/b.flac", "test/c.flac"])
    (src / "train" / "a.cls").write_text("1")
    found = discover_folder(src)
    assert {r.source_key: (r.split, r.label) for r in found.records} == {
        "train/a": ("train", 1), "train/b": ("train", None), "test/c": ("test", None)}
    with pytest.raises(SourceError, match="class folder"):
        discover_folder(_put(tmp_path / "t", ["train/a.flac", "test/c.flac"]), labels_from_folders=True)


def test_cli_repro(tmp_path: Path) -> None:
    src = _put(tmp_path / "af", [f"{s}/{c}/a.flac" for s in ("train", "test") for c in ("cat", "dog")])
    cmd = [sys.executable, "-m", "mmdata.cli.main"]
    done = subprocess.run([*cmd, "shard", str(src), str(tmp_path / "ds")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "test: 2" in done.stdout and "train: 2" in done.stdout, done.stdout
    done = subprocess.run([*cmd, "shard", str(src), str(tmp_path / "ds2"), "--split", "train=0.8,test=0.2"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "split" in done.stderr, done.stderr


def test_files_beside_the_split_folders_can_be_split_as_the_warning_says(tmp_path: Path) -> None:
    """QA26 review: a file at the root beside train/ and test/ went to train with a warning to pass --split, and
    --split was then refused ("has nothing to split"). The fractions now split the files that have no split."""
    import numpy as np
    import soundfile as sf

    for s in ("train", "test"):
        for c in ("cat", "dog"):
            (tmp_path / "raw" / s / c).mkdir(parents=True)
            sf.write(tmp_path / "raw" / s / c / "a.wav", 0.1 * np.ones(800), 16000)
    for i in range(4):
        sf.write(tmp_path / "raw" / f"loose{i}.wav", 0.1 * np.ones(800), 16000)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        mmdata.shard(tmp_path / "raw", tmp_path / "ds0", progress=False)
    said = " ".join(str(w.message) for w in seen)
    assert "4 samples of 8 have no split of their own" in said and "split folders" in said and "--split" in said
    rep = mmdata.shard(tmp_path / "raw", tmp_path / "ds", split={"train": 0.5, "val": 0.5}, progress=False)
    assert rep["splits"]["test"] == 2 and rep["splits"]["train"] + rep["splits"].get("val", 0) == 6
