"""Loss details (``errors``) across a resume, and loss counts of a plain DataLoader's workers.

A resumed pass passes over what the saved run consumed without reading it again, so it used to list in
``errors`` only what it met itself (the uninterrupted epoch listed every loss). States now carry the
details of the losses up to their position (the first 100), so a resumed pass lists the epoch's.
Order rule: ``errors`` lists losses by the position in the reader's stream of the item whose reading met
them (then as met) — the same for any ``decode_threads`` — and a loader with workers merges its readers'
lists by that position, then reader.
"""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

import mmdata
from mmdata.testing import make_sample_folder, shard_lossy






@pytest.fixture(scope="module")
def lossy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    t = tmp_path_factory.mktemp("lossy_errors")
    return {"a": shard_lossy(t, "a", 24, 2, ("000001", "000013", "000022")),
            "b": shard_lossy(t, "b", 12, None, ("000005",))}


KW: dict[str, Any] = {"on_error": "skip", "required": ["audio"]}


def _roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint gives back: JSON (int keys become strings)."""
    return json.loads(json.dumps(state))


# ---- datasets --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("threads,decode", [(1, True), (3, True), (1, False)])
def test_a_resumed_dataset_lists_the_errors_of_the_whole_epoch(lossy: dict[str, str], shuffle: bool, threads: int,
                                                               decode: bool) -> None:
    def mk() -> mmdata.ShardDataset:
        return mmdata.open_dataset(lossy["a"], shuffle=shuffle, seed=4, decode_threads=threads, decode=decode,
                                   buffer_size=6, **KW)

    whole = mk()
    keys = [s.key for s in whole]
    full = list(whole.errors)
    assert len(full) == sum(whole.skipped.values()) and len(full) > 5
    for cut in range(len(keys) + 1):
        d = mk()
        head = [s.key for s in islice(iter(d), cut)]
        state = _roundtrip(d.state_dict())
        assert all(len(e) == 4 for es in state.get("errors", {}).values() for e in es)
        again = mk()
        again.load_state_dict(state)
        assert head + [s.key for s in again] == keys, cut
        assert again.errors == full, cut
        assert again.skipped == whole.skipped, cut


def test_errors_are_in_stream_order_whatever_the_decode_threads(lossy: dict[str, str]) -> None:
    """The decode window meets a cut shard ahead of the samples it hands out; the order of ``errors``
    does not depend on how far ahead it reads."""
    lists = []
    for threads in (1, 2, 4):
        d = mmdata.open_dataset(lossy["a"], decode_threads=threads, **KW)
        _ = list(d)
        lists.append(d.errors)
    assert lists[0] == lists[1] == lists[2]


def test_a_state_without_errors_still_resumes(lossy: dict[str, str]) -> None:
    """States saved before they carried ``errors``: the resumed pass lists what it meets, as it did."""
    whole = mmdata.open_dataset(lossy["a"], **KW)
    _ = list(whole)
    d = mmdata.open_dataset(lossy["a"], **KW)
    _ = list(islice(iter(d), 10))
    state = d.state_dict()
    assert state["errors"]
    old = {k: v for k, v in state.items() if k != "errors"}
    again = mmdata.open_dataset(lossy["a"], **KW)
    again.load_state_dict(old)
    _ = list(again)
    assert again.skipped == whole.skipped
    assert again.errors == whole.errors[len(state["errors"][0]):]


def test_a_state_carries_at_most_the_first_100_errors(tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=480), tmp_path / "ds", maxcount=100, progress=False)
    d = mmdata.open_dataset(tmp_path / "ds", **KW)  # 120 samples lack audio
    _ = list(islice(iter(d), 340))
    state = d.state_dict()
    assert len(state["errors"][0]) == 100 and len(json.dumps(state)) < 20000
    again = mmdata.open_dataset(tmp_path / "ds", **KW)
    again.load_state_dict(_roundtrip(state))
    _ = list(again)
    whole = mmdata.open_dataset(tmp_path / "ds", **KW)
    _ = list(whole)
    assert again.errors == whole.errors and len(whole.errors) == 100


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_resumed_blend_lists_the_errors_of_the_whole_epoch(lossy: dict[str, str], shuffle: bool) -> None:
    def mk() -> mmdata.BlendDataset:
        return mmdata.blend(lossy, weights={"a": 0.5, "b": 1}, shuffle=shuffle, seed=2, **KW)

    whole = mk()
    keys = [s.key for s in whole]
    full = list(whole.errors)
    assert len(full) > 4 and {e[1] for e in full} & {"000005", "000013"}
    for cut in range(len(keys) + 1):
        d = mk()
        head = [s.key for s in islice(iter(d), cut)]
        again = mk()
        again.load_state_dict(_roundtrip(d.state_dict()))
        assert head + [s.key for s in again] == keys, cut
        assert again.errors == full, cut
        assert again.skipped == whole.skipped, cut


# ---- loaders ---------------------------------------------------------------------------------------
def _cut_at_every_batch(path: Any, **kw: Any) -> None:
    whole = mmdata.loader(path, 2, **kw)
    batches = [list(b.keys) for b in whole]
    full, counts = whole.errors, whole.skipped
    assert len(full) > 8 and sum(counts.values()) >= len(full)
    for cut in range(len(batches) + 1):
        first = mmdata.loader(path, 2, **kw)
        it = iter(first)
        head = [list(next(it).keys) for _ in range(cut)]
        state = _roundtrip(first.state_dict())
        del it
        again = mmdata.loader(path, 2, **kw)
        again.load_state_dict(state)
        assert head + [list(b.keys) for b in again] == batches, cut
        assert again.errors == full, cut
        assert again.skipped == counts, cut


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("shuffle", [False, True])
def test_a_resumed_loader_lists_the_errors_of_the_whole_epoch(lossy: dict[str, str], workers: int, shuffle: bool) -> None:
    _cut_at_every_batch(lossy["a"], num_workers=workers, shuffle=shuffle, seed=3, **KW)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_resumed_blend_loader_lists_the_errors_of_the_whole_epoch(lossy: dict[str, str], workers: int) -> None:
    _cut_at_every_batch(lossy, num_workers=workers, shuffle=True, seed=1, weights={"a": 1, "b": 0.5}, **KW)


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_errors_hold_what_the_epoch_lost(lossy: dict[str, str], workers: int) -> None:
    L = mmdata.loader(lossy["a"], 2, num_workers=workers, shuffle=False, **KW)
    _ = list(L)
    d = mmdata.open_dataset(lossy["a"], shuffle=False, **KW)
    _ = list(d)
    assert sorted(L.errors) == sorted(d.errors)


# ---- a plain DataLoader's workers ------------------------------------------------------------------
def _reference(path: str) -> mmdata.ShardDataset:
    ref = mmdata.open_dataset(path, **KW)
    _ = list(ref)
    return ref


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_a_plain_dataloader_with_workers_reports_their_losses_in_the_main_process(lossy: dict[str, str],
                                                                                  context: str) -> None:
    """README's plain-DataLoader snippet: the workers skipped samples, the main process's ``ds.skipped`` was
    empty after the epoch (the counts lived in the workers' copies)."""
    from torch.utils.data import DataLoader

    ref = _reference(lossy["a"])
    d = mmdata.open_dataset(lossy["a"], **KW)
    dl = DataLoader(d, batch_size=None, num_workers=2, multiprocessing_context=context)
    assert len(list(dl)) == 24 - sum(ref.skipped.values())
    assert d.skipped == ref.skipped
    assert sorted(d.errors) == sorted(ref.errors) and len(d.errors) == len(ref.errors)


def test_persistent_workers_report_each_epochs_losses_once(lossy: dict[str, str]) -> None:
    from torch.utils.data import DataLoader

    ref = _reference(lossy["a"])
    d = mmdata.open_dataset(lossy["a"], **KW)
    dl = DataLoader(d, batch_size=None, num_workers=2, persistent_workers=True)
    for epoch in range(2):
        _ = list(dl)
        assert d.skipped == ref.skipped, epoch  # per epoch, not 2x
        assert sorted(d.errors) == sorted(ref.errors), epoch
    d.set_epoch(5)
    _ = list(dl)
    assert d.skipped == ref.skipped
    # this process reading again: its own counts
    _ = list(d)
    assert d.skipped == ref.skipped and d.errors == ref.errors


def test_a_dataloader_without_workers_is_unchanged(lossy: dict[str, str]) -> None:
    from torch.utils.data import DataLoader

    ref = _reference(lossy["a"])
    d = mmdata.open_dataset(lossy["a"], **KW)
    _ = list(DataLoader(d, batch_size=None, num_workers=0))
    assert d.skipped == ref.skipped and d.errors == ref.errors


def test_a_plain_dataloader_over_a_blend_reports_its_workers_losses(lossy: dict[str, str]) -> None:
    from torch.utils.data import DataLoader

    ref = mmdata.blend(lossy, shuffle=True, seed=1, **KW)
    _ = list(ref)
    b = mmdata.blend(lossy, shuffle=True, seed=1, **KW)
    _ = list(DataLoader(b, batch_size=None, num_workers=2))
    assert b.skipped == ref.skipped
    assert sorted(b.errors) == sorted(ref.errors)


def test_a_dataset_pickled_outside_a_dataloader_carries_no_shared_memory(lossy: dict[str, str]) -> None:
    """A copy (pickle, Ray, deepcopy) gets a board of its own, empty: no shared memory in the pickle, and
    its counts are its own."""
    import copy
    import pickle

    d = mmdata.open_dataset(lossy["b"], **KW)
    raw = pickle.dumps(d)
    assert len(raw) < 64 << 10  # the board's 2.5 MiB are not in it
    for c in (pickle.loads(raw), copy.deepcopy(d)):
        assert c.skipped == {} and c.errors == []
        _ = list(c)
        assert sum(c.skipped.values()) == len(c.errors) > 0
    assert d.skipped == {}
