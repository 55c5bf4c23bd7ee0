"""QA31 persona "pandas" D2: ``DataModule(..., keys=...)`` gives each loader the selected keys of its own split
(a selection spanning splits is filtered per split; keys of a split no loader reads are not read), and refuses at
construction a split the selection holds none of, or keys not in index.parquet, naming them."""

from __future__ import annotations

import typing
from pathlib import Path

import pandas as pd
import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.testing import make_sample_folder

pytest.importorskip("lightning.pytorch")
from mmdata.lightning import DataModule  # noqa: E402


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("folds")
    with pytest.warns(UserWarning, match="same image or audio bytes"):
        mmdata.shard(make_sample_folder(root / "raw", n=16), root / "ds", split="1=0.25,2=0.25,3=0.25,4=0.25",
                     progress=False)
    return root / "ds"


def _keys(batches: typing.Iterable[mmdata.Batch]) -> list[str]:
    return sorted(k for b in batches for k in b.keys)


def _index(ds: Path) -> pd.DataFrame:
    return pd.read_parquet(ds / "index.parquet")


def test_each_loader_reads_the_selected_keys_of_its_own_split(folds: Path) -> None:
    idx = _index(folds)
    sel = idx.groupby("split").head(2)  # two samples of every fold
    dm = DataModule(folds, 2, train_split=["1", "2"], val_split="3", test_split="4", keys=sel)
    dm.setup("fit")
    assert _keys(dm.train_dataloader()) == sorted(sel[sel.split.isin(["1", "2"])].key)
    assert _keys(dm.val_dataloader()) == sorted(sel[sel.split == "3"].key)
    assert _keys(dm.test_dataloader()) == sorted(sel[sel.split == "4"].key)


def test_a_split_without_selected_keys_is_refused_at_construction(folds: Path) -> None:
    idx = _index(folds)
    sel = idx[idx.split.isin(["1", "2"])].iloc[1:]  # a training subset only
    with pytest.raises(ShardError, match=r"val_split '3'") as exc:
        DataModule(folds, 2, train_split=["1", "2"], val_split="3", test_split="4", keys=sel)
    assert "val_split=None" in str(exc.value)
    dm = DataModule(folds, 2, train_split=["1", "2"], val_split=None, test_split=None, keys=sel)
    assert _keys(dm.train_dataloader()) == sorted(sel.key)


def test_keys_of_a_split_no_loader_reads_are_not_read_unknown_keys_are_refused(folds: Path) -> None:
    idx = _index(folds)
    sel = idx[idx.split.isin(["1", "4"])]  # a filter of the whole index: fold 4 is not read here
    dm = DataModule(folds, 2, train_split="1", val_split=None, test_split=None, keys=sel)
    assert _keys(dm.train_dataloader()) == sorted(sel[sel.split == "1"].key)
    with pytest.raises(ShardError, match=r"1 of the 5 keys= are not in its index.parquet: 'nope'"):
        DataModule(folds, 2, train_split="1", val_split=None, test_split=None, keys=["nope", *idx[idx.split == "1"].key])


def test_a_blend_selection_is_filtered_per_split(folds: Path) -> None:
    idx = _index(folds)
    sel = idx[idx.split.isin(["1", "2"])].groupby("split").head(1)
    dm = DataModule({"a": folds, "b": folds}, 2, train_split="1", val_split="2", test_split=None,
                    keys={"a": sel, "b": sel[sel.split == "2"]})
    assert _keys(dm.train_dataloader()) == sorted(f"a/{k}" for k in sel[sel.split == "1"].key)
    assert _keys(dm.val_dataloader()) == sorted(f"{n}/{k}" for n in "ab" for k in sel[sel.split == "2"].key)


@pytest.fixture(scope="module")
def tvt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tvt")
    with pytest.warns(UserWarning, match="same image or audio bytes"):
        mmdata.shard(make_sample_folder(root / "raw", n=24), root / "ds", split="train=0.5,val=0.25,test=0.25",
                     progress=False)
    return root / "ds"


def test_a_split_left_at_its_default_is_refused_only_when_its_loader_is_built(tvt: Path) -> None:
    """QA31 pandas review F1: a7f913e refused ``keys=`` of training rows with ``val_split=None`` because the
    default ``test_split`` found no selected key, though fit never builds a test loader."""
    idx = _index(tvt)
    train = idx[idx.split == "train"].iloc[1:]
    dm = DataModule(tvt, 2, keys=train, val_split=None)  # as before a7f913e: fit on the subset
    dm.setup("fit")
    assert _keys(dm.train_dataloader()) == sorted(train.key)
    with pytest.raises(ShardError, match=r"keys= selects no sample of test_split 'test'.*test_split=None"):
        dm.test_dataloader()
    both = idx[idx.split.isin(["train", "val"])].iloc[1:]
    dm = DataModule(tvt, 2, keys=both)  # the case D2 enables: fit with validation, the default test unread
    assert _keys(dm.train_dataloader()) == sorted(both[both.split == "train"].key)
    assert _keys(dm.val_dataloader()) == sorted(both[both.split == "val"].key)
    with pytest.raises(ShardError, match=r"test_split 'test'"):
        dm.test_dataloader()
    with pytest.raises(ShardError, match=r"val_split 'val'"):  # a split named by the user: refused at once
        DataModule(tvt, 2, keys=train, val_split="val")
