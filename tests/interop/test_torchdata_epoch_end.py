"""A state saved at the end of an epoch resumes into the next epoch (QA: torchdata's StatefulDataLoader with
num_workers=0, a dataset state_dict after a full pass and mmdata.loader's all gave an empty epoch first —
one epoch lost silently). As litdata's StreamingDataset does: once a pass has ended, its state is that of
the next epoch, nothing read yet."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder

StatefulDataLoader = pytest.importorskip("torchdata.stateful_dataloader").StatefulDataLoader

N = 32


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("epoch_end")
    mmdata.shard(make_sample_folder(root / "raw", n=N), root / "ds", maxcount=4, progress=False)
    return root / "ds"


def _open(ds: Path) -> mmdata.ShardDataset:
    return mmdata.open_dataset(ds, split="train", shuffle=True, seed=0, decode=False)


def _epoch_of(ds: Path, epoch: int) -> list[str]:
    d = _open(ds)
    d.set_epoch(epoch)
    return [s.key for s in d]


def _meta(batch: list) -> list[tuple[str, int]]:  # type: ignore[type-arg]
    return [(s.key, s.meta["epoch"]) for s in batch]


def _pass(dl: object) -> list[tuple[str, int]]:
    return [m for b in dl for m in b]  # type: ignore[attr-defined]


@pytest.mark.parametrize("workers", [0, 2])
def test_torchdata_state_after_a_full_epoch_resumes_the_next_epoch(ds: Path, workers: int) -> None:
    dl = StatefulDataLoader(_open(ds), batch_size=4, num_workers=workers, collate_fn=_meta)
    first = _pass(dl)
    assert {e for _, e in first} == {0} and len(first) == N
    st = dl.state_dict()
    again = StatefulDataLoader(_open(ds), batch_size=4, num_workers=workers, collate_fn=_meta)
    again.load_state_dict(st)
    passes = [_pass(again) for _ in range(2)]
    assert [sorted({e for _, e in p}) for p in passes] == [[1], [2]]
    assert [len(p) for p in passes] == [N, N]
    if workers == 0:  # one reader: the order is that epoch's own
        assert [k for k, _ in passes[0]] == _epoch_of(ds, 1)


def test_torchdata_mid_epoch_state_still_resumes_the_rest(ds: Path) -> None:
    dl = StatefulDataLoader(_open(ds), batch_size=4, num_workers=0, collate_fn=_meta)
    it = iter(dl)
    head = [m for _ in range(3) for m in next(it)]
    st = dl.state_dict()
    again = StatefulDataLoader(_open(ds), batch_size=4, num_workers=0, collate_fn=_meta)
    again.load_state_dict(st)
    assert [k for k, _ in head + _pass(again)] == _epoch_of(ds, 0)
    assert {e for _, e in _pass(again)} == {1}


def test_a_dataset_state_after_a_full_pass_is_the_next_epoch(ds: Path) -> None:
    d = _open(ds)
    assert [s.key for s in d] == _epoch_of(ds, 0)
    st = d.state_dict()
    assert st["epoch"] == 1 and not st["positions"]
    fresh = _open(ds)
    fresh.load_state_dict(st)
    assert [s.key for s in fresh] == _epoch_of(ds, 1)
    assert [s.key for s in fresh] == _epoch_of(ds, 2)
    # the pass at its last sample, not yet ended: the epoch's rest is empty, then the next epoch
    d = _open(ds)
    it = iter(d)
    for _ in range(N):
        next(it)
    st = d.state_dict()
    assert st["epoch"] == 0 and st["positions"] == {0: N}
    fresh = _open(ds)
    fresh.load_state_dict(st)
    assert list(fresh) == [] and [s.key for s in fresh] == _epoch_of(ds, 1)
    # an explicit set_epoch after the pass: its state is that epoch's start
    d = _open(ds)
    list(d)
    d.set_epoch(5)
    assert d.state_dict()["epoch"] == 5 and not d.state_dict()["positions"]


def test_an_mmdata_loader_state_after_a_full_pass_is_the_next_epoch(ds: Path) -> None:
    def keys(loader: object) -> list[str]:
        return [k for b in loader for k in b.keys]  # type: ignore[attr-defined]

    L = mmdata.loader(ds, 4, seed=0)
    ref = mmdata.loader(ds, 4, seed=0)
    epochs = [keys(ref) for _ in range(3)]
    assert keys(L) == epochs[0]
    st = L.state_dict()
    assert st["epoch"] == 1 and not st["positions"] and st["batches"] == 0
    fresh = mmdata.loader(ds, 4, seed=0)
    fresh.load_state_dict(st)
    assert [keys(fresh), keys(fresh)] == epochs[1:]
