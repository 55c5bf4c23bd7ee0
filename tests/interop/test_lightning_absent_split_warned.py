"""QA round 33 (onemodality #11): a DataModule whose dataset has no val (or test) split gave an empty loader
silently (Lightning then skips validation, and a checkpoint monitoring val_* fails later); now it warns, once
per split, naming the split and the remedy. A split given by name that the dataset lacks still raises."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.lightning import DataModule
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def train_only(tmp_path_factory: pytest.TempPathFactory) -> str:
    t = tmp_path_factory.mktemp("qa33dm")
    mmdata.shard(make_sample_folder(t / "raw", n=4), t / "ds", progress=False)
    return str(t / "ds")


def test_an_absent_default_split_warns_once(train_only: str) -> None:
    dm = DataModule(train_only, batch_size=2)
    with pytest.warns(UserWarning, match=r"no split 'val' \(val_split left at its default\); it has \['train'\]: its "
                                         r"loader is empty, so Lightning skips that stage .*val_split=None") as got:
        assert dm.val_dataloader() == []
    assert got[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dm.val_dataloader() == []  # once per split
    with pytest.warns(UserWarning, match=r"no split 'test' \(test_split left at its default\)"):
        assert dm.test_dataloader() == []


def test_none_says_there_is_none_and_a_named_split_still_raises(train_only: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm = DataModule(train_only, batch_size=2, val_split=None, test_split=None)
        assert dm.val_dataloader() == [] and dm.test_dataloader() == []
    with pytest.raises(ShardError, match=r"no split 'val'"):
        DataModule(train_only, batch_size=2, val_split="val")
