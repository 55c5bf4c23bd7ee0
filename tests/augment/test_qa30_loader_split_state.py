"""Review of QA30: a loader state saved mid-epoch resumed into a loader of other splits (a DataModule's
``train_split`` list reordered, or another split) without a word, its positions counting other samples."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.testing import make_sample_folder

    root = tmp_path_factory.mktemp("qa30_split_state")
    with warnings.catch_warnings():  # the sample folder repeats media: its duplicates warning is no part of this
        warnings.simplefilter("ignore")
        mmdata.shard(make_sample_folder(root / "raw", n=24), root / "ds", split={"a": 0.5, "b": 0.5}, progress=False)
    return root / "ds"


def _mid(ds: Path, split: object) -> dict:
    it = iter(loader := mmdata.loader(ds, 2, split=split, seed=0))
    next(it)
    return loader.state_dict()


def test_a_mid_epoch_state_names_its_splits_and_refuses_others(ds: Path) -> None:
    state = _mid(ds, ["a", "b"])
    assert state["split"] == ["a", "b"]
    state = json.loads(json.dumps(state))  # as a checkpoint stores it
    for other in (["b", "a"], "a", ["a"]):
        with pytest.raises(MMDataError, match=r"saved mid-epoch 0 by a loader of split \['a', 'b'\]; this loader reads "
                                              r".*Resume with split=\['a', 'b'\], or start that epoch over"):
            mmdata.loader(ds, 2, split=other, seed=0).load_state_dict(state)
    same = mmdata.loader(ds, 2, split=["a", "b"], seed=0)
    same.load_state_dict(state)
    whole = [k for b in mmdata.loader(ds, 2, split=["a", "b"], seed=0) for k in b.keys]
    assert [k for b in same for k in b.keys] == whole[2:]  # the rest of the epoch, exactly


def test_an_epoch_start_or_an_older_state_resumes_any_split(ds: Path) -> None:
    start = mmdata.loader(ds, 2, split="a", seed=0).state_dict()
    mmdata.loader(ds, 2, split="b", seed=0).load_state_dict(start)  # nothing read yet: nothing to skip
    older = {k: v for k, v in _mid(ds, "a").items() if k != "split"}  # saved before states named the split
    mmdata.loader(ds, 2, split="a", seed=0).load_state_dict(older)


def test_one_name_listed_alone_is_that_name(ds: Path) -> None:
    """Review of QA30: a state of split="a" was refused by split=["a"] (the same samples, in the same order)."""
    for saved, now in (("a", ["a"]), (["a"], "a"), (("a",), ["a"])):
        mmdata.loader(ds, 2, split=now, seed=0).load_state_dict(_mid(ds, saved))
