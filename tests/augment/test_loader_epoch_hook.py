"""``loader.sampler.set_epoch(e)`` (what Lightning calls at each epoch's start) while a pass is under way:
the pass keeps its epoch; a pass that hands out no further batch leaves the next one to epoch ``e``; one
that goes on says so (EpochWarning)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.augment.loader import EpochWarning
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hook")
    mmdata.shard(make_sample_folder(root / "raw", n=12), root / "ds", maxcount=4, progress=False)
    return root / "ds"


def _keys(batches: object) -> list[str]:
    return [k for b in batches for k in b.keys]  # type: ignore[attr-defined]


def _epoch(ds: Path, epoch: int) -> list[str]:
    ref = mmdata.loader(ds, 4, seed=0)
    ref.set_epoch(epoch)
    return _keys(ref)


def test_between_passes_the_next_pass_is_that_epoch(ds: Path) -> None:
    loader = mmdata.loader(ds, 4, seed=0)
    loader.sampler.set_epoch(3)
    assert _keys(loader) == _epoch(ds, 3)
    loader.sampler.set_epoch(3)  # the epoch it counted itself: the next pass is the next epoch, as without the call
    assert _keys(loader) == _epoch(ds, 4)


@pytest.mark.parametrize("ends", ["dropped", "ran_out"])
def test_a_pass_that_hands_out_no_further_batch_leaves_the_next_to_that_epoch(ds: Path, ends: str) -> None:
    """Lightning's epoch loop drops the pass it fetched ahead from and starts a new iteration (a sized loader
    at each epoch's start, any loader with ``reload_dataloaders_every_n_epochs``)."""
    loader = mmdata.loader(ds, 4, seed=0)
    it = iter(loader)
    first = next(it)
    if ends == "ran_out":
        rest = [next(it), next(it)]  # 12 samples: 3 batches, all handed out; the pass has not seen its end
        assert _keys([first, *rest]) == _epoch(ds, 0)
    loader.sampler.set_epoch(5)
    assert loader.epoch == 0  # not changed under the running pass
    with warnings.catch_warnings():
        warnings.simplefilter("error", EpochWarning)
        if ends == "dropped":
            it.close()
        else:
            assert next(it, None) is None
        assert loader.state_dict()["epoch"] == 5 and loader.state_dict()["batches"] == 0
        assert _keys(loader) == _epoch(ds, 5)


def test_a_pass_that_goes_on_keeps_its_epoch_and_warns_once(ds: Path) -> None:
    """What Lightning does to a loader without len() in a fit resumed from an epoch-end checkpoint: it fetched
    the first batch before it set the epoch and goes on with that pass."""
    loader = mmdata.loader(ds, 4, seed=0)
    it = iter(loader)
    first = next(it)
    loader.sampler.set_epoch(1)
    said = r"set_epoch\(1\).*epoch 0.*mmdata\.lightning\.DataModule.*len\(\).*train_epoch\(self\.trainer\)"
    with pytest.warns(EpochWarning, match=said) as got:
        rest = list(it)
    assert len([w for w in got if issubclass(w.category, EpochWarning)]) == 1
    assert _keys([first, *rest]) == _epoch(ds, 0)  # the pass's own epoch, whole
    assert loader.state_dict()["epoch"] == 1  # the pass ran to its end: the next epoch's start
    with warnings.catch_warnings():
        warnings.simplefilter("error", EpochWarning)
        assert _keys(loader) == _epoch(ds, 1)


def test_an_earlier_pass_collected_late_does_not_disturb_the_new_one(ds: Path) -> None:
    loader = mmdata.loader(ds, 4, seed=0)
    old = iter(loader)
    next(old)
    loader.sampler.set_epoch(2)
    new = iter(loader)  # the old pass is still open (not yet collected)
    first = next(new)
    assert loader.epoch == 2
    old.close()  # must not set the epoch again under the new pass, nor mark it ended
    assert loader._active
    with warnings.catch_warnings():
        warnings.simplefilter("error", EpochWarning)
        assert _keys([first, *new]) == _epoch(ds, 2)
