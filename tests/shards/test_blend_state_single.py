"""A state saved from a blend given to a single dataset (QA: ``ShardDataset.load_state_dict`` took it, and
the pass skipped samples by the blend's places — other samples here — silently). ``mmdata.loader`` of one
dataset and a blend given a single dataset's state already refused; the dataset now does too."""

from __future__ import annotations

from typing import Any

import pytest

import mmdata
from mmdata.testing import shard_lossy

pytestmark = pytest.mark.filterwarnings("ignore:blend. '[ab]' has 3 classes without names:UserWarning")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    t = tmp_path_factory.mktemp("blend_state_single")
    return {"a": shard_lossy(t, "a", 32, None, ()), "b": shard_lossy(t, "b", 16, None, ())}


def _blend_state(folders: dict[str, str]) -> dict[str, Any]:
    loader = mmdata.loader(dict(folders), batch_size=4, num_workers=2, seed=3, shuffle=True)
    for i, _ in enumerate(loader):
        if i == 6:
            break
    state = loader.state_dict()
    assert state["blend"] and any(int(v) > 0 for v in state["positions"].values())  # saved mid-epoch
    return state


def test_a_blend_state_saved_mid_epoch_is_refused_by_a_single_dataset(folders: dict[str, str]) -> None:
    state = _blend_state(folders)
    ds = mmdata.open_dataset(folders["a"], seed=3, shuffle=True)
    with pytest.raises(mmdata.ShardError) as info:
        ds.load_state_dict(state)
    message = str(info.value)
    assert "a state of the blend [['a', 'train', 1.0], ['b', 'train', 1.0]] cannot resume a single dataset" in message
    assert folders["a"] in message  # the dataset it was given to
    assert "mmdata.blend(...)" in message and "mmdata.loader({...})" in message  # what resumes it
    # the dataset is as it was: its next pass is the whole of epoch 0
    assert sorted(s.key for s in ds) == sorted(s.key for s in mmdata.open_dataset(folders["a"], seed=3, shuffle=True))
    # the blend it came from takes it (and the loader of one dataset refuses it, as before)
    mmdata.blend(dict(folders), seed=3, shuffle=True).load_state_dict(state)
    with pytest.raises(mmdata.MMDataError, match="cannot resume a loader of one dataset"):
        mmdata.loader(folders["a"], batch_size=4, num_workers=2, seed=3, shuffle=True).load_state_dict(state)


def test_a_blend_state_at_the_start_of_an_epoch_only_says_the_epoch(folders: dict[str, str]) -> None:
    """As the blend and mmdata.loader take one: no positions, nothing to misread."""
    ds = mmdata.open_dataset(folders["a"], seed=3, shuffle=True)
    blend = mmdata.blend(dict(folders), seed=3, shuffle=True)
    ds.load_state_dict({"seed": 3, "epoch": 2, "positions": {}, "blend": blend.signature})
    assert ds.epoch == 2
