"""A pattern of bare tars is read as given (split does not apply, as webdataset reads one); when its tars
are named for several splits (train-*.tar and val-*.tar under *.tar) that is warned of, naming the splits
(a known limit of the twenty-fifth round: silent — validation on training data)."""

from __future__ import annotations

import io
import tarfile
import warnings
from pathlib import Path

import pytest

import mmdata


def _tar(path: Path, keys: list[str]) -> None:
    with tarfile.open(path, "w") as tf:
        for k in keys:
            data = f"text of {k}".encode()
            info = tarfile.TarInfo(f"{k}.txt")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


@pytest.fixture()
def mixed(tmp_path: Path) -> Path:
    _tar(tmp_path / "train-000.tar", ["a", "b"])
    _tar(tmp_path / "train-001.tar", ["c"])
    _tar(tmp_path / "val-000.tar", ["d"])
    return tmp_path


def test_a_pattern_over_several_splits_is_warned_of_and_read_as_given(mixed: Path) -> None:
    with pytest.warns(UserWarning, match=r"named for 2 splits \(2 train, 1 val\).*'train-\*\.tar'"):
        ds = mmdata.open_dataset(str(mixed / "*.tar"), split="val")
    assert sorted(s.key for s in ds) == ["a", "b", "c", "d"]  # read as given: the documented semantics


def test_one_split_pattern_and_the_folder_are_quiet(mixed: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sorted(s.key for s in mmdata.open_dataset(str(mixed / "train-*.tar"))) == ["a", "b", "c"]
        assert sorted(s.key for s in mmdata.open_dataset(str(mixed / "{train-000,train-001}.tar"))) == ["a", "b", "c"]
        assert [s.key for s in mmdata.open_dataset(str(mixed), split="val")] == ["d"]  # the folder rule
