"""Resume with persistent DataLoader workers (QA: ``load_state_dict`` in the main process did not reach
workers started before the call — they kept their copy of the dataset without the positions, so the
resumed pass read the whole epoch again and repeated what had been consumed, silently).

The owning process publishes what it resumes through the dataset's epoch clock; a persistent worker whose
copy is older takes it when its next iteration starts. A resume with persistent workers reads what one with
workers started for the pass reads: the same keys, in the same order per worker, with the same losses.
"""

from __future__ import annotations

import copy
import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from torch.utils.data import DataLoader

import mmdata
from mmdata.shards.reader import ShardDataset
from mmdata.testing import shard_lossy

KW: dict[str, Any] = {"on_error": "skip", "required": ["audio"]}  # losses: skipped / errors travel too
Meta = tuple[str, int, int, int]
pytestmark = pytest.mark.filterwarnings("ignore:blend. '[ab]' has 3 classes without names:UserWarning")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    t = tmp_path_factory.mktemp("persistent_resume")
    # shards of 4: 8 and 4 of them, each of 2 workers gets several
    return {"a": shard_lossy(t, "a", 32, None, ("000006", "000017")), "b": shard_lossy(t, "b", 16, None, ("000002",))}


def _open(kind: str, folders: dict[str, str]) -> Any:
    if kind == "blend":
        return mmdata.blend({"a": folders["a"], "b": folders["b"]}, shuffle=True, seed=0, **KW)
    return mmdata.open_dataset(folders["a"], shuffle=True, seed=0, buffer_size=8, **KW)


def _meta(batch: list[Any]) -> list[Meta]:
    return [(s.key, int(s.meta["reader"]), int(s.meta["position"]), int(s.meta["epoch"])) for s in batch]


def _keys(items: list[Meta]) -> Counter[str]:
    return Counter(k for k, *_ in items)


def _per_reader(items: list[Meta]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for key, reader, _, _ in items:
        out.setdefault(reader, []).append(key)
    return out


def _whole(kind: str, folders: dict[str, str], epoch: int) -> Counter[str]:
    """An epoch's samples, read by this process (the set does not depend on the workers)."""
    ds = _open(kind, folders)
    ds.set_epoch(epoch)
    return Counter(s.key for s in ds)


def _midway(kind: str, folders: dict[str, str]) -> tuple[dict[str, Any], list[Meta], list[Meta]]:
    """A state after 3 batches of epoch 1 (built from the samples consumed, as the README says), those
    samples, and the whole epoch as that loop read it."""
    ds = _open(kind, folders)
    ds.set_epoch(1)
    batches = list(DataLoader(ds, batch_size=4, num_workers=2, collate_fn=_meta))
    head = [m for b in batches[:3] for m in b]
    positions: dict[int, int] = {}
    for _, reader, position, _ in head:
        positions[reader] = max(positions.get(reader, 0), position + 1)
    assert len(positions) == 2  # both workers had yielded some
    state = ShardDataset.state_from_positions(0, 1, positions, readers=2)
    if kind == "blend":
        state["blend"] = ds.signature
    return state, head, [m for b in batches for m in b]


def _resume(kind: str, folders: dict[str, str], state: dict[str, Any], persistent: bool,
            context: str | None) -> dict[str, Any]:
    """Epoch 0 (persistent workers start here), then ``load_state_dict`` and the resumed pass, then one more."""
    ds = _open(kind, folders)
    dl = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=_meta, persistent_workers=persistent,
                    multiprocessing_context=context)
    first = [m for b in dl for m in b]
    ds.load_state_dict(state)
    resumed = [m for b in dl for m in b]
    losses = (dict(ds.skipped), sorted(ds.errors))
    after = [m for b in dl for m in b]
    return {"first": first, "resumed": resumed, "losses": losses, "after": after}


_REFERENCE: dict[str, tuple[Any, ...]] = {}


def _reference(kind: str, folders: dict[str, str]) -> tuple[Any, ...]:
    """The state, what it consumed, the whole epoch 1 and the resume with workers started for each pass."""
    if kind not in _REFERENCE:
        state, head, whole = _midway(kind, folders)
        _REFERENCE[kind] = (state, head, whole, _resume(kind, folders, state, False, None))
    return _REFERENCE[kind]


@pytest.mark.parametrize("context", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("kind", ["dataset", "blend"])
def test_persistent_workers_resume_as_workers_started_for_the_pass(folders: dict[str, str], kind: str,
                                                                   context: str) -> None:
    state, head, whole, ref = _reference(kind, folders)
    assert _keys(head) + _keys(ref["resumed"]) == _keys(whole)  # the reference is exact: nothing repeated, nothing lost
    assert ref["losses"][0] and ref["losses"][1]  # the resumed pass lost samples
    got = _resume(kind, folders, state, True, context)
    assert _keys(got["resumed"]) == _keys(ref["resumed"])
    assert not set(_keys(head)) & set(_keys(got["resumed"]))  # nothing consumed is read again
    assert _per_reader(got["resumed"]) == _per_reader(ref["resumed"])  # the same order in each worker
    assert {e for *_, e in got["resumed"]} == {1}
    assert got["losses"] == ref["losses"]  # the same skipped counts and errors
    # the state was for one pass: the next is the whole of epoch 2
    assert _keys(got["after"]) == _keys(ref["after"]) == _whole(kind, folders, 2)
    assert {e for *_, e in got["after"]} == {2}


@pytest.mark.parametrize("kind", ["dataset", "blend"])
def test_set_epoch_and_load_state_dict_decide_the_next_pass_of_persistent_workers(folders: dict[str, str],
                                                                                   kind: str) -> None:
    state, head, _, ref = _reference(kind, folders)
    ds = _open(kind, folders)
    dl = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=_meta, persistent_workers=True)
    _ = list(dl)
    ds.load_state_dict(state)
    ds.set_epoch(3)  # the later call decides: the whole of epoch 3, no resume
    got = [m for b in dl for m in b]
    assert _keys(got) == _whole(kind, folders, 3) and {e for *_, e in got} == {3}
    ds.set_epoch(5)
    ds.load_state_dict(state)  # ... and here the resume
    got = [m for b in dl for m in b]
    assert _per_reader(got) == _per_reader(ref["resumed"])
    got = [m for b in dl for m in b]
    assert _keys(got) == _whole(kind, folders, 2) and {e for *_, e in got} == {2}


def test_a_resume_read_by_this_process_is_not_read_again_by_persistent_workers(folders: dict[str, str]) -> None:
    """The owning process's own pass takes the resume (as without workers); the workers' next pass is the
    next epoch, whole."""
    ds = _open("dataset", folders)
    dl = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=_meta, persistent_workers=True)
    _ = list(dl)
    whole = [s.key for s in ds]  # epoch 1, one reader here
    ds.load_state_dict(ShardDataset.state_from_positions(0, 1, {0: 5}, readers=1))
    own = [s.key for s in ds]
    assert Counter(own) == Counter(whole[len(whole) - len(own):]) and 0 < len(own) < len(whole)
    got = [m for b in dl for m in b]
    assert _keys(got) == _whole("dataset", folders, 2) and {e for *_, e in got} == {2}


@pytest.mark.parametrize("kind", ["dataset", "blend"])
def test_a_state_with_losses_resumes_the_same_with_persistent_workers(folders: dict[str, str], kind: str) -> None:
    """A state carrying the losses and their details before its positions (torchdata's StatefulDataLoader
    saves one per worker; merged here into the dataset's state): the resumed pass counts and lists them
    the same with persistent workers."""
    stateful = pytest.importorskip("torchdata.stateful_dataloader").StatefulDataLoader
    ds = _open(kind, folders)
    ds.set_epoch(1)
    dl = stateful(ds, batch_size=4, num_workers=2, collate_fn=_meta)
    it = iter(dl)
    head = [m for _ in range(3) for m in next(it)]
    saved = [w["dataset_state"] for w in dl.state_dict()["_snapshot"]["_worker_snapshots"].values()]
    del it
    state: dict[str, Any] = {"seed": 0, "epoch": 1, "readers": 2, "positions": {}, "skipped": {}, "errors": {}}
    for part in saved:
        for field in ("positions", "skipped", "errors"):
            state[field].update(part.get(field) or {})
        if "blend" in part:
            state["blend"] = part["blend"]
    assert state["skipped"] and state["errors"]  # the consumed part lost samples
    ref = _resume(kind, folders, state, False, None)
    got = _resume(kind, folders, state, True, "fork")
    assert _per_reader(got["resumed"]) == _per_reader(ref["resumed"])
    assert not set(_keys(head)) & set(_keys(got["resumed"]))
    assert got["losses"] == ref["losses"]
    whole = _open(kind, folders)
    whole.set_epoch(1)
    _ = list(whole)
    assert got["losses"] == (whole.skipped, sorted(whole.errors))  # the epoch's, the consumed part's included


def test_a_resume_the_workers_cannot_read_is_refused_not_repeated(folders: dict[str, str]) -> None:
    """The published state gone (a temporary folder emptied under the job): the worker raises, naming
    what resumes instead, rather than reading the epoch again."""
    state, _, _, _ = _reference("dataset", folders)
    ds = _open("dataset", folders)
    dl = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=_meta, persistent_workers=True)
    _ = list(dl)
    ds.load_state_dict(state)
    path = ds._clock._resume_path()
    assert path is not None and Path(path).is_file()
    Path(path).unlink()
    with pytest.raises(mmdata.ShardError, match="persistent_workers=False"):
        _ = list(dl)


def _copy(ds: Any, how: str) -> Any:
    return copy.deepcopy(ds) if how == "deepcopy" else pickle.loads(pickle.dumps(ds))


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("context", ["fork", "spawn"])
@pytest.mark.parametrize("kind", ["dataset", "blend"])
def test_copies_of_one_dataset_resume_each_from_its_own_state(folders: dict[str, str], kind: str, context: str,
                                                             how: str) -> None:
    """Two copies made in this process (a deep copy, a pickle round trip) are loaded apart: the persistent
    workers of each resume from its own state, as workers started for the pass do (QA: the copies shared
    the published file, and one's workers resumed from the other's state, silently)."""
    state, head, _, ref = _reference(kind, folders)
    other = {**state, "positions": {k: 1 for k in state["positions"]}}  # another point: one sample a reader
    ref_other = _resume(kind, folders, other, False, None)
    assert _keys(ref_other["resumed"]) != _keys(ref["resumed"])
    original = _open(kind, folders)
    loaders = {}
    loaders["original"] = DataLoader(original, batch_size=4, num_workers=2, collate_fn=_meta,
                                     persistent_workers=True, multiprocessing_context=context)
    _ = list(loaders["original"])  # the original's workers start (spawn: its clock is pickled for them) ...
    twin = _copy(original, how)  # ... before the copy is made
    loaders["twin"] = DataLoader(twin, batch_size=4, num_workers=2, collate_fn=_meta,
                                 persistent_workers=True, multiprocessing_context=context)
    _ = list(loaders["twin"])
    original.load_state_dict(state)
    twin.load_state_dict(other)
    got = {name: [m for b in dl for m in b] for name, dl in loaders.items()}
    assert _per_reader(got["original"]) == _per_reader(ref["resumed"])
    assert not set(_keys(head)) & set(_keys(got["original"]))
    assert _per_reader(got["twin"]) == _per_reader(ref_other["resumed"])
    assert (dict(original.skipped), sorted(original.errors)) == ref["losses"]
    assert (dict(twin.skipped), sorted(twin.errors)) == ref_other["losses"]
    for dl in loaders.values():  # each state was for one pass: the next is the whole of epoch 2
        after = [m for b in dl for m in b]
        assert _keys(after) == _whole(kind, folders, 2) and {e for *_, e in after} == {2}


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copy_loaded_apart_leaves_the_original_and_its_workers_alone(folders: dict[str, str], how: str) -> None:
    """Only the copy is loaded: the original's persistent workers read the next epoch whole, and the
    copy's resume as without persistent workers."""
    state, head, _, ref = _reference("dataset", folders)
    original = _open("dataset", folders)
    twin = _copy(original, how)
    dl = DataLoader(original, batch_size=4, num_workers=2, collate_fn=_meta, persistent_workers=True)
    dl_twin = DataLoader(twin, batch_size=4, num_workers=2, collate_fn=_meta, persistent_workers=True)
    _, _ = list(dl), list(dl_twin)
    twin.load_state_dict(state)
    got = [m for b in dl for m in b]
    assert _keys(got) == _whole("dataset", folders, 1) and {e for *_, e in got} == {1}
    got = [m for b in dl_twin for m in b]
    assert _per_reader(got) == _per_reader(ref["resumed"])
