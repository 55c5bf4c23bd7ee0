"""QA round 30 (apidocs D3): a list of tars, or a ``::``-joined string of them, named for several splits
(train-*.tar, val-*.tar, test-*.tar) was read as one stream with ``split="train"`` silently, where a glob or
brace pattern of the same tars warns. Now they warn alike, once, naming the splits; a list of one split's
tars, or of split folders, stays quiet."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.testing.hostile import tar_of


def _tar(path: Path, keys: list[str]) -> None:
    path.write_bytes(tar_of((k, {"txt": f"text of {k}".encode()}) for k in keys))


@pytest.fixture()
def tars(tmp_path: Path) -> list[str]:
    (tmp_path / "ds").mkdir()
    _tar(tmp_path / "ds" / "test-000000.tar", ["t0", "t1"])
    _tar(tmp_path / "ds" / "train-000000.tar", ["a", "b"])
    _tar(tmp_path / "ds" / "train-000001.tar", ["c"])
    _tar(tmp_path / "ds" / "val-000000.tar", ["v0"])
    return sorted(str(p) for p in (tmp_path / "ds").glob("*.tar"))


def test_a_list_of_tars_of_several_splits_warns_as_a_pattern_does(tars: list[str]) -> None:
    with pytest.warns(UserWarning, match=r"a list of shards \(.*test-000000\.tar.*\) is read as given \(split does "
                                         r"not apply\), and its 4 tars are named for 3 splits \(1 test, 2 train, 1 val\)"
                                         r".*only the train tars") as got:
        ds = mmdata.open_dataset(tars, split="train")
    assert len([w for w in got if "named for" in str(w.message)]) == 1
    assert got[0].filename == __file__  # pointed at the caller, as the pattern's warning is
    assert sorted(s.key for s in ds) == ["a", "b", "c", "t0", "t1", "v0"]  # read as given: documented


def test_a_joined_string_warns_too(tars: list[str]) -> None:
    with pytest.warns(UserWarning, match=r"named for 3 splits \(1 test, 2 train, 1 val\)"):
        ds = mmdata.open_dataset("::".join(tars), split="train")
    assert len(list(ds)) == 6


def test_a_list_holding_a_mixed_pattern_warns_once(tars: list[str]) -> None:
    folder = str(Path(tars[0]).parent)
    with pytest.warns(UserWarning) as got:
        mmdata.open_dataset([f"{folder}/{{test,val}}-*.tar", tars[1]])
    assert len([w for w in got if "named for" in str(w.message)]) == 1


def test_the_loader_warns_for_a_list(tars: list[str]) -> None:
    with pytest.warns(UserWarning, match=r"named for 3 splits"):
        sizes = [len(b) for b in mmdata.loader(tars, 4, split="train", shuffle=False)]
    assert sizes == [4, 2]


def test_one_split_lists_and_split_folders_stay_quiet(tars: list[str], tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    _tar(other / "val-000000.tar", ["w0"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sorted(s.key for s in mmdata.open_dataset(tars[1:3])) == ["a", "b", "c"]
        assert sorted(s.key for s in mmdata.open_dataset("::".join(tars[1:3]))) == ["a", "b", "c"]
        # two folders: each gives its own split's tars (the folder rule), nothing mixed
        assert sorted(s.key for s in mmdata.open_dataset([str(tmp_path / "ds"), str(other)], split="val")) == ["v0", "w0"]
