"""A damaged or hand-edited loader state (fuzz QA): ``load_state_dict`` checks it before taking it.

A fuzzed state raised ``KeyError: 'epoch'`` / ``AttributeError`` / ``ValueError: invalid literal`` from
inside the loader, took ``1.5`` as a position, failed in ``islice`` only once iteration began (a negative
position), resumed an empty epoch from a position past the split's end (losing the rest of it without a
word) and, without ``positions``, started the epoch over (repeating the batches it had yielded). Each is now
an MMDataError naming the state key, what was expected and what was given; a whole state still resumes
exactly, through JSON too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mmdata
from mmdata.errors import MMDataError
from mmdata.testing import make_sample_folder

GOOD: dict[str, Any] = {"epoch": 0, "seed": 0, "batches": 3, "positions": {"0": 12}, "copies": {}, "readers": 1}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> str:
    t = tmp_path_factory.mktemp("state")
    mmdata.shard(make_sample_folder(t / "raw", n=20), t / "ds", split={"train": 1.0}, progress=False)
    return str(t / "ds")


def _keys(loader: Any) -> list[str]:
    return [k for b in loader for k in b.keys]


@pytest.mark.parametrize("edit, message", [
    (1, r"loader state: expected a dict .*got int"),
    ({"epoch": None}, r"loader state: has no 'epoch'"),
    ({"epoch": -1}, r"loader state\['epoch'\]: expected an integer >= 0, got -1"),
    ({"epoch": "0"}, r"loader state\['epoch'\]: expected an integer >= 0, got '0' \(a number, not quoted text\)"),
    ({"seed": "x"}, r"loader state\['seed'\]: expected an integer, got 'x'"),
    ({"positions": 1}, r"loader state\['positions'\]: expected a dict of reader -> value, got int"),
    ({"positions": {"x": 3}}, r"loader state\['positions'\] key: expected an integer >= 0, got 'x'"),
    ({"positions": {"0": -5}}, r"loader state\['positions'\]\[0\]: expected an integer >= 0, got -5"),
    ({"positions": {"0": 1.5}}, r"loader state\['positions'\]\[0\]: expected an integer >= 0, got 1.5"),
    ({"positions": {"0": [1]}}, r"loader state\['positions'\]\[0\]: expected an integer >= 0, got \[1\]"),
    ({"readers": {"0": 1}}, r"loader state\['readers'\]: expected an integer >= 1"),
    ({"positions": {"0": 10**6}}, r"position 1000000 of reader 0 in epoch 0 does not fit .*its share is 20 samples"),
    ({"positions": {"3": 2}}, r"position 2 of reader 3 in epoch 0 does not fit .*the epoch is read by 1 reader\)"),
    ({"positions": None}, r"3 batches yielded but no 'positions': it would start epoch 0 over"),
    ({"skipped": {"0": 4}}, r"loader state\['skipped'\]\[0\]: expected a dict of reason -> count"),
    ({"errors": {"0": "boom"}}, r"loader state\['errors'\]\[0\]: expected a list of \[position, shard, key, message\]"),
])
def test_a_damaged_state_is_refused_naming_the_key(data: str, edit: Any, message: str) -> None:
    state = edit if not isinstance(edit, dict) else {k: v for k, v in {**GOOD, **edit}.items() if v is not None}
    loader = mmdata.loader(data, batch_size=4)
    with pytest.raises(MMDataError, match=message):
        loader.load_state_dict(state)


def test_a_whole_state_still_resumes_exactly_through_json(data: str) -> None:
    whole = _keys(mmdata.loader(data, batch_size=4))
    first = mmdata.loader(data, batch_size=4)
    it = iter(first)
    seen = [k for _ in range(3) for k in next(it).keys]
    state = json.loads(json.dumps(first.state_dict()))  # reader keys become text
    resumed = mmdata.loader(data, batch_size=4)
    resumed.load_state_dict(state)
    assert seen + _keys(resumed) == whole
    # the end of a share and "start epoch 1 over" are states too
    ended = mmdata.loader(data, batch_size=4)
    ended.load_state_dict({**GOOD, "positions": {"0": 20}, "batches": 5})
    assert _keys(ended) == []
    again = mmdata.loader(data, batch_size=4)
    again.load_state_dict({"epoch": 1})
    assert len(_keys(again)) == 20


def test_a_loader_on_skip_checks_positions_against_the_listed_samples(data: str) -> None:
    """With on_error="skip" the shares are not known exactly (losses are found while reading), but no
    position can pass the samples the index lists (the fuzz case: 10**6 with skip resumed an empty epoch)."""
    loader = mmdata.loader(data, batch_size=4, on_error="skip")
    with pytest.raises(MMDataError, match=r"position 1000000 of reader 0 in epoch 0 does not fit"):
        loader.load_state_dict({**GOOD, "positions": {"0": 10**6}})


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_a_dataset_state_is_checked_too(data: str, on_error: str) -> None:
    """``ShardDataset.load_state_dict`` (and a blend's) take the same checks, as ShardErrors."""
    from mmdata.errors import ShardError

    ds = mmdata.open_dataset(data, on_error=on_error)
    with pytest.raises(ShardError, match=r"state\['positions'\]\[0\]: expected an integer >= 0, got -5"):
        ds.load_state_dict({"epoch": 0, "positions": {0: -5}})
    with pytest.raises(ShardError, match=r"state: has no 'epoch'"):
        ds.load_state_dict({"positions": {0: 3}})
    ds.load_state_dict({"epoch": 0, "seed": 0, "positions": {0: 10**6}, "readers": 1})
    with pytest.raises(ShardError, match=r"position 1000000 of reader 0 in epoch 0 does not fit .*its share is 20"):
        list(ds)
    blend = mmdata.blend({"a": data, "b": data})
    with pytest.raises(ShardError, match=r"state\['epoch'\]: expected an integer >= 0, got 'x'"):
        blend.load_state_dict({"epoch": "x"})
    ds = mmdata.open_dataset(data, on_error=on_error)
    ds.load_state_dict(json.loads(json.dumps({"epoch": 0, "seed": 0, "positions": {0: 12}, "readers": 1})))
    assert len(list(ds)) == 8
