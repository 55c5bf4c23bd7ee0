"""QA30 (fix-api, apidocs D5 / D6): the DataModule takes a list of training splits (the k-fold set-up
``train(train_split=[...])`` and ``mmdata.loader(split=[...])`` take), and its hints say what it accepts."""

from __future__ import annotations

import typing
import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError, ShardError
from mmdata.testing import make_sample_folder

pytest.importorskip("lightning.pytorch")
from mmdata.lightning import DataModule  # noqa: E402


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("folds")
    with pytest.warns(UserWarning, match="same image or audio bytes"):  # the folder's repeated media: not at issue
        mmdata.shard(make_sample_folder(root / "raw", n=16), root / "ds", split="1=0.25,2=0.25,3=0.25,4=0.25",
                     progress=False)
    return root / "ds"


def _keys(batches: typing.Iterable[mmdata.Batch]) -> list[str]:
    return sorted(k for b in batches for k in b.keys)


@pytest.mark.parametrize("given", [["1", "2", "3"], ("1", "2", "3")], ids=["list", "tuple"])
def test_a_list_of_training_splits_is_read_as_one(folds: Path, given: typing.Sequence[str]) -> None:
    dm = DataModule(folds, 4, train_split=given, val_split="4", test_split=None)
    dm.setup("fit")
    train_keys = _keys(dm.train_dataloader())
    assert train_keys == _keys(mmdata.loader(folds, 4, split=["1", "2", "3"]))
    assert len(train_keys) == 12 and len(set(train_keys)) == 12
    held_out = _keys(dm.val_dataloader())
    assert held_out == _keys(mmdata.loader(folds, 4, split="4", stage="eval")) and not set(held_out) & set(train_keys)
    assert dm.train_split == ["1", "2", "3"]  # a plain list: what a checkpoint's hyper-parameters hold


def test_a_list_of_training_splits_resumes_mid_epoch(folds: Path) -> None:
    dm = DataModule(folds, 2, train_split=["1", "2"], val_split=None, test_split=None)
    whole = [b.keys for b in dm.train_dataloader()]
    again = DataModule(folds, 2, train_split=["1", "2"], val_split=None, test_split=None)
    loader = again.train_dataloader()
    it = iter(loader)
    first = [next(it).keys for _ in range(2)]
    state = loader.state_dict()
    it.close()
    resumed = DataModule(folds, 2, train_split=["1", "2"], val_split=None, test_split=None)
    loader = resumed.train_dataloader()
    loader.load_state_dict(state)
    rest = [b.keys for b in loader]
    assert len(first) == 2 and rest and first + rest == whole


@pytest.mark.parametrize(("given", "error", "said"), [
    (["1", "nope"], ShardError, r"no split 'nope' \(train_split\); it has \['1', '2', '3', '4'\]"),
    ([], MMDataError, r"train_split: expected a split name or a non-empty list of them, got \[\]"),
    (["1", 2], MMDataError, r"train_split: expected a split name or a non-empty list of them, got \['1', 2\]"),
    (3, MMDataError, r"train_split: expected a split name, a list of them or None, got 3"),
    # review of QA30b: refused here, not inside trainer.fit
    (["1", "1"], MMDataError, r"train_split: '1' named twice in \['1', '1'\]; each split is read once an epoch"),
])
def test_a_bad_list_of_training_splits_is_named(folds: Path, given: object, error: type, said: str) -> None:
    with pytest.raises(error, match=said):
        DataModule(folds, 4, train_split=given)


def test_val_split_stays_one_name(folds: Path) -> None:
    with pytest.raises(MMDataError, match=r"val_split: expected a split name or None, got \['3', '4'\]"):
        DataModule(folds, 4, train_split="1", val_split=["3", "4"])


def test_hints_name_every_accepted_form() -> None:
    hints = typing.get_type_hints(DataModule.__init__)
    assert "Mapping" in str(hints["path"]) and "Sequence" in str(hints["path"])
    assert "Sequence[str]" in str(hints["train_split"])


@pytest.mark.parametrize("train", [["1", "2"], "2"])
def test_a_split_in_two_roles_is_warned_of(folds: Path, train: object) -> None:
    """Review of QA30b: train_split holding val_split trained on every validation sample without a word. Said at
    the caller's line (not refused: scoring the training split is also a deliberate Lightning set-up)."""
    with pytest.warns(UserWarning, match=r"val_split '2' is also a training split.*or pass val_split=None") as got:
        DataModule(folds, 4, train_split=train, val_split="2", test_split=None)
    assert got[0].filename == __file__
    with pytest.warns(UserWarning, match=r"test_split '2' is also a training split"):
        DataModule(folds, 4, train_split=train, val_split=None, test_split="2")


def test_a_blend_whose_dataset_lacks_a_training_split_is_refused_when_built(folds: Path, tmp_path: Path) -> None:
    """Review of QA30b: the union of the blend's splits let a training split one dataset lacks pass, to fail
    inside trainer.fit."""
    with warnings.catch_warnings():  # the sample folder's repeated media, if any: not at issue
        warnings.simplefilter("ignore")
        mmdata.shard(make_sample_folder(tmp_path / "raw", n=8), tmp_path / "other", split="train=0.5,val=0.5",
                     progress=False)
    with pytest.raises(ShardError, match=r"no split '1' \(train_split; blended dataset 'o'\); it has \['train', 'val'\]"):
        DataModule({"f": folds, "o": tmp_path / "other"}, 4, train_split=["1", "2"], val_split=None, test_split=None)


def test_train_split_none_is_a_module_for_test_only(folds: Path) -> None:
    """Review of the mends: refusing train_split=None broke a DataModule built for trainer.test / predict only;
    it builds, evaluates, and says what is missing when asked for a training loader."""
    dm = DataModule(folds, 4, train_split=None, val_split=None, test_split="4")
    assert len(_keys(dm.test_dataloader())) == 4
    with pytest.raises(MMDataError, match=r"train_split is None: this DataModule has no training split \(trainer.fit"):
        dm.train_dataloader()
