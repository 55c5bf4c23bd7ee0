"""QA40 notebook #1: ``.epoch`` (dataset, blend, loader and their reprs) between passes is the epoch the next
pass reads — what ``state_dict()`` says — not the one just read; mid-pass it is the one being read."""
from __future__ import annotations

import warnings

import pytest
from torch.utils.data import DataLoader

import mmdata
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def ds_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    t = tmp_path_factory.mktemp("qa40_epoch")
    mmdata.shard(make_sample_folder(str(t / "raw"), n=6), str(t / "ds"), progress=False)
    return str(t / "ds")


def test_dataset_epoch_before_each_loop_is_the_epoch_it_reads(ds_path: str) -> None:
    ds = mmdata.open_dataset(ds_path, shuffle=True, seed=0)
    for k in range(3):
        before, shown = ds.epoch, repr(ds)
        read = {s.meta["epoch"] for s in ds}
        assert read == {k} and before == k, (k, before, read)
        assert f"epoch={k})" in shown
        assert ds.epoch == ds.state_dict()["epoch"] == k + 1
        assert repr(ds).endswith(f"epoch={k + 1})")


def test_dataset_epoch_mid_pass_and_after_break(ds_path: str) -> None:
    ds = mmdata.open_dataset(ds_path, seed=0)
    list(ds)  # epoch 0 read to its end
    it = iter(ds)
    first = next(it)
    assert first.meta["epoch"] == 1 and ds.epoch == 1 == ds.state_dict()["epoch"]
    it.close()  # dropped mid-pass: still its epoch, which state_dict resumes
    assert ds.epoch == 1 and ds.state_dict()["positions"]
    assert {s.meta["epoch"] for s in ds} == {2}  # a fresh iteration reads the next
    assert ds.epoch == 3


def test_dataset_set_epoch_and_load_state_after_a_pass(ds_path: str) -> None:
    ds = mmdata.open_dataset(ds_path, seed=0)
    list(ds)
    ds.set_epoch(5)
    assert ds.epoch == 5
    assert {s.meta["epoch"] for s in ds} == {5} and ds.epoch == 6
    ds.load_state_dict({"seed": 0, "epoch": 2, "positions": {}})
    assert ds.epoch == 2 and ds.state_dict()["epoch"] == 2
    ds.epoch = 4  # the setter is set_epoch
    assert [s.meta["epoch"] for s in ds][:1] == [4]


def test_dataset_epoch_when_dataloader_workers_read_after_a_pass(ds_path: str) -> None:
    """A pass in this process ended, then DataLoader workers sharing its clock started epoch 1: the
    main process's epoch is theirs, not 1 + theirs."""
    ds = mmdata.open_dataset(ds_path, seed=0)
    list(ds)
    assert ds.epoch == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dl = DataLoader(ds, batch_size=None, num_workers=1)
        it = iter(dl)
        s = next(it)
        assert s.meta["epoch"] == 1
        assert ds.epoch == 1
        del it


def test_dataset_epoch_between_plain_dataloader_worker_passes_is_the_newest_started(ds_path: str) -> None:
    """QA40 review reader #2, a documented limit (``epoch``'s docstring, docs/interop.md): with a plain
    DataLoader's workers the main process does not see a pass end, so between passes ``ds.epoch`` is the
    epoch last started; each new pass still reads the next epoch."""
    ds = mmdata.open_dataset(ds_path, shuffle=True, seed=0)
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dl = DataLoader(ds, batch_size=None, num_workers=2)
        for _ in range(3):
            before = ds.epoch
            seen.append((before, {s.meta["epoch"] for s in dl}, ds.epoch))
    assert seen == [(0, {0}, 0), (0, {1}, 1), (1, {2}, 2)], seen
    assert "newest started epoch" in (type(ds).epoch.__doc__ or "")


def test_blend_epoch_between_passes(ds_path: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = mmdata.blend({"a": ds_path, "b": ds_path}, seed=0)
    for k in range(2):
        assert b.epoch == k
        assert {s.meta["epoch"] for s in b} == {k}
        assert b.epoch == b.state_dict()["epoch"] == k + 1
        assert repr(b).endswith(f"epoch={k + 1})")


def _keys(batches: object) -> list[str]:
    return [k for b in batches for k in b.keys]  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def orders(ds_path: str) -> dict[int, list[str]]:
    """Each epoch's batch keys, from a fresh loader started at that epoch (epochs differ in order)."""
    got = {e: _keys(mmdata.loader(ds_path, 2, seed=0, epoch=e)) for e in range(9)}
    assert len({tuple(v) for v in got.values()}) > 5
    return got


def test_loader_epoch_before_each_loop_is_the_epoch_it_reads(ds_path: str, orders: dict[int, list[str]]) -> None:
    L = mmdata.loader(ds_path, 2, seed=0)
    for k in range(3):
        before, shown = L.epoch, repr(L)
        assert _keys(L) == orders[k] and before == k, (k, before)
        assert f"epoch={k}," in shown
        assert L.epoch == L.state_dict()["epoch"] == k + 1
        assert f"epoch={k + 1}," in repr(L)


def test_loader_epoch_mid_pass_break_set_epoch_and_resume(ds_path: str, orders: dict[int, list[str]]) -> None:
    L = mmdata.loader(ds_path, 2, seed=0)
    list(L)
    it = iter(L)
    b = next(it)
    assert b.keys == orders[1][:2] and L.epoch == 1 == L.state_dict()["epoch"]
    state = L.state_dict()
    it.close()
    assert L.epoch == 1
    L.set_epoch(7)
    assert L.epoch == 7
    assert _keys(L) == orders[7] and L.epoch == 8
    L.load_state_dict(state)  # mid-epoch 1, loaded after a finished pass
    assert L.epoch == 1
    assert _keys(L) == orders[1][2:]
    L.epoch = 3
    assert L.epoch == 3 and _keys(L) == orders[3]


def test_loader_sampler_set_epoch_after_a_pass(ds_path: str, orders: dict[int, list[str]]) -> None:
    """Lightning's hook after a finished pass asks for the next epoch: the pass reads it, once."""
    L = mmdata.loader(ds_path, 2, seed=0)
    list(L)
    L.sampler.set_epoch(1)
    assert _keys(L) == orders[1]
    L.sampler.set_epoch(2)
    assert _keys(L) == orders[2]
    L.sampler.set_epoch(2)  # the epoch it counted itself (as before QA40): the next pass is the next epoch
    assert _keys(L) == orders[3] and L.epoch == 4
