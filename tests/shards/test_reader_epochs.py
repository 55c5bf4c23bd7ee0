"""Epochs that advance by themselves (issue #14.2) and rank resolution at iteration time (issue #11.2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

import mmdata
from mmdata.augment.loader import MemoryDataset
from mmdata.shards.reader import ShardDataset
from mmdata.testing import make_sample_folder
from mmdata.types import Sample
from tests.procs_helpers import rendezvous, spawn_ranks


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("epochs")
    mmdata.shard(make_sample_folder(root / "raw", n=16), root / "ds", maxcount=4, progress=False)
    return root / "ds"


def _keys(it: object) -> list[str]:
    return [s.key for s in it]  # type: ignore[attr-defined]


def _explicit(ds: Path, epoch: int, **kw: object) -> list[str]:
    d = mmdata.open_dataset(ds, shuffle=True, seed=3, decode=False, **kw)
    d.set_epoch(epoch)
    return _keys(d)


def test_plain_loop_advances_and_set_epoch_wins(ds: Path) -> None:
    d = mmdata.open_dataset(ds, shuffle=True, seed=3, decode=False)
    first = list(d)
    second = list(d)
    assert [s.meta["epoch"] for s in first[:1] + second[:1]] == [0, 1]
    assert _keys(first) == _explicit(ds, 0) and _keys(second) == _explicit(ds, 1) != _keys(first)
    d.set_epoch(7)
    assert _keys(d) == _explicit(ds, 7) and d.epoch == 8  # after the pass: the next one (QA40 notebook #1)
    assert _keys(d) == _explicit(ds, 8)  # and advancing resumes from the explicit epoch
    d.set_epoch(0)
    assert _keys(d) == _explicit(ds, 0)


@pytest.mark.parametrize("persistent", [False, True])
def test_dataloader_workers_advance_epochs(ds: Path, persistent: bool) -> None:
    def run(dataset: object) -> list[str]:
        return _keys(DataLoader(dataset, batch_size=None, num_workers=2, persistent_workers=persistent))  # type: ignore[arg-type]

    d = mmdata.open_dataset(ds, shuffle=True, seed=3, decode=False)
    loader = DataLoader(d, batch_size=None, num_workers=2, persistent_workers=persistent)
    passes = [_keys(loader) for _ in range(2)]
    ref = mmdata.open_dataset(ds, shuffle=True, seed=3, decode=False)
    expected = []
    for e in range(2):
        ref.set_epoch(e)
        expected.append(run(ref))
    assert passes == expected
    assert passes[0] != passes[1] and sorted(passes[0]) == sorted(passes[1])
    # an explicit set_epoch reaches the workers too (persistent ones included)
    d.set_epoch(1)
    assert _keys(loader) == expected[1]


def test_resume_mid_epoch_then_advance(ds: Path) -> None:
    d = mmdata.open_dataset(ds, shuffle=True, seed=3, decode=False)
    list(d)  # epoch 0
    it = iter(d)  # epoch 1
    head = [next(it).key for _ in range(5)]
    state = d.state_dict()
    assert state["epoch"] == 1 and state["positions"] == {0: 5}
    fresh = mmdata.open_dataset(ds, shuffle=True, seed=3, decode=False)
    fresh.load_state_dict(state)
    assert head + _keys(fresh) == _explicit(ds, 1)
    assert _keys(fresh) == _explicit(ds, 2)


def test_resume_mid_epoch_with_workers(ds: Path) -> None:
    def dl(d: ShardDataset) -> list[str]:
        return _keys(DataLoader(d, batch_size=None, num_workers=2))

    d = mmdata.open_dataset(ds, shuffle=True, seed=3, decode=False, epoch=4)
    full = list(DataLoader(d, batch_size=None, num_workers=2))
    seen = full[:7]
    positions: dict[int, int] = {}
    for s in seen:
        positions[s.meta["reader"]] = max(positions.get(s.meta["reader"], 0), s.meta["position"] + 1)
    fresh = mmdata.open_dataset(ds, shuffle=True, seed=3, decode=False)
    fresh.load_state_dict(ShardDataset.state_from_positions(3, seen[0].meta["epoch"], positions))
    fresh.rotation = 7 % 2  # DataLoader's round robin continues with the reader after the last one seen
    assert _keys(seen) + dl(fresh) == _keys(full)
    fresh.rotation = 0
    nxt = mmdata.open_dataset(ds, shuffle=True, seed=3, decode=False)
    nxt.set_epoch(5)
    assert dl(fresh) == dl(nxt)  # the resumed epoch was 4: the next pass is epoch 5


def test_memory_dataset_and_loader_advance(ds: Path) -> None:
    samples = [Sample(f"m{i}", {"label": i}) for i in range(12)]
    m = MemoryDataset(samples, shuffle=True, seed=1)
    a, b = _keys(m), _keys(m)
    assert a != b and sorted(a) == sorted(b)
    m.set_epoch(0)
    assert _keys(m) == a
    assert _keys(DataLoader(m, batch_size=None, num_workers=2)) != _keys(DataLoader(m, batch_size=None, num_workers=2))
    rec = {"text": [{"op": "token_mask", "p": 1.0, "p_token": 0.5}]}
    loader = mmdata.loader(ds, 4, recipe=rec, seed=2, modalities=["text", "label"])
    e0 = [k for b in loader for k in b.keys]
    e1 = [k for b in loader for k in b.keys]
    assert e0 != e1 and loader.epoch == 2  # after the pass: the next one (QA40 notebook #1)
    loader.set_epoch(0)
    texts0 = [t for b in loader for t in b["text"]]
    loader.set_epoch(0)
    assert [t for b in loader for t in b["text"]] == texts0  # explicit epochs repeat exactly
    e1_texts = [t for b in loader for t in b["text"]]  # auto-advanced to 1: new augmentation draws
    assert loader.epoch == 2 and e1_texts != texts0


# ---- issue #11.2: the dataset built before init_process_group, DataLoader workers ----------------------
def _rank_main(rank: int, path: str, init_method: str, out: str) -> None:
    dataset = mmdata.open_dataset(path, shuffle=True, seed=5, decode=False)  # before the process group
    torch.distributed.init_process_group("gloo", init_method=init_method, rank=rank, world_size=2)
    try:
        keys = [s.key for s in DataLoader(dataset, batch_size=None, num_workers=2)]
        Path(out, f"rank{rank}.txt").write_text("\n".join(keys))
    finally:
        torch.distributed.destroy_process_group()


def test_exactly_once_when_built_before_init_process_group(tmp_path: Path, ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    spawn_ranks(_rank_main, args=(str(ds), rendezvous(tmp_path), str(tmp_path)))
    r0 = Path(tmp_path, "rank0.txt").read_text().split()
    r1 = Path(tmp_path, "rank1.txt").read_text().split()
    assert len(r0) + len(r1) == 16 and len(set(r0) | set(r1)) == 16 and r0 and r1


# ---- QA round 2: skip counts are per epoch, the same with 0 or N workers -----------------------------
@pytest.fixture(scope="module")
def two_bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 samples in 4 shards; the images of 000002 and of 000007 (the very last sample a reader yields
    in order, so no later sample of that reader carries its count) are not images."""
    import tarfile

    root = tmp_path_factory.mktemp("two_bad")
    mmdata.shard(make_sample_folder(root / "raw", n=8), root / "ds", maxcount=2, progress=False)
    for shard in sorted((root / "ds").glob("train-*.tar")):
        data = bytearray(shard.read_bytes())
        with tarfile.open(shard) as tf:
            for m in tf.getmembers():
                if m.name.split(".")[0] in ("000002", "000007") and m.name.endswith((".png", ".jpg")):
                    data[m.offset_data : m.offset_data + 32] = bytes(32)
        shard.write_bytes(bytes(data))
    return root / "ds"


@pytest.mark.parametrize("num_workers", [0, 2])
def test_skip_counts_are_those_of_the_last_epoch_whatever_the_workers(two_bad: Path, num_workers: int) -> None:
    loader = mmdata.loader(two_bad, 2, split="train", shuffle=False, num_workers=num_workers, on_error="skip")
    for _ in range(2):
        assert sum(len(b) for b in loader) == 6
        assert loader.skipped == {"corrupt image": 2}
    d = mmdata.open_dataset(two_bad, on_error="skip")
    for _ in range(3):
        assert len(list(d)) == 6 and d.skipped == {"corrupt image": 2} and len(d.errors) == 2
    dl = DataLoader(d, batch_size=None, num_workers=2, persistent_workers=True)
    for _ in range(2):  # persistent worker copies start each epoch's counts afresh too
        metas = [s.meta for s in dl]
        last = {m["reader"]: m.get("skipped", {}) for m in metas}
        assert len(metas) == 6 and sum(c.get("corrupt image", 0) for c in last.values()) == 1  # 000007: last


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_a_new_dataloader_each_epoch_with_the_same_generator_seed_still_advances(ds: Path, context: str) -> None:
    """Fresh workers with the same base seed each epoch (a DataLoader made anew with
    generator=torch.Generator().manual_seed(0)) joined epoch 0 every time: the same order each epoch."""
    def run(d: ShardDataset) -> list[tuple[str, int]]:
        dl = DataLoader(d, batch_size=None, num_workers=2, multiprocessing_context=context,
                        generator=torch.Generator().manual_seed(0))
        return [(s.key, s.meta["epoch"]) for s in dl]

    d = mmdata.open_dataset(ds, shuffle=True, seed=0, decode=False)
    orders = [run(d) for _ in range(3)]
    assert [sorted({e for _, e in o}) for o in orders] == [[0], [1], [2]] and d.epoch == 2
    assert len({tuple(o) for o in orders}) == 3
    for e, o in enumerate(orders):  # each is the order of that epoch chosen explicitly
        pinned = mmdata.open_dataset(ds, shuffle=True, seed=0, decode=False)
        pinned.set_epoch(e)
        assert run(pinned) == o


def test_a_plain_state_from_another_number_of_readers_is_refused_mid_epoch(tmp_path: Path) -> None:
    """``ShardDataset.state_dict`` (the plain-DataLoader path) now records its readers, as
    ``mmdata.loader`` does: a mid-epoch state resumed by another split repeated some samples and
    skipped others, silently (here: read in this process, resumed with 2 DataLoader workers)."""
    from mmdata.testing import make_sample_folder

    mmdata.shard(make_sample_folder(tmp_path / "raw", n=12), tmp_path / "ds", maxcount=3, progress=False)
    ds = mmdata.open_dataset(tmp_path / "ds", decode=False, seed=1)
    it = iter(ds)
    seen = [next(it).key for _ in range(5)]
    state = ds.state_dict()
    assert state["readers"] == 1 and state["positions"] == {0: 5}
    other = mmdata.open_dataset(tmp_path / "ds", decode=False, seed=1)
    other.load_state_dict(state)
    with pytest.raises(mmdata.MMDataError, match=r"mid-epoch 0 with 1 reader\(s\).*this iteration has 2"):
        list(DataLoader(other, batch_size=None, num_workers=2))
    same = mmdata.open_dataset(tmp_path / "ds", decode=False, seed=1)  # the same split resumes exactly
    same.load_state_dict(state)
    assert seen + _keys(list(same)) == _keys(list(mmdata.open_dataset(tmp_path / "ds", decode=False, seed=1)))
    # positions tracked outside, with the readers that read them
    # (a fresh dataset for each case: the DataLoader above that raised lives on in pytest's traceback, and
    # a straggling worker of it could still start its iteration on `other`'s shared epoch clock)
    told = ShardDataset.state_from_positions(1, 0, {0: 2, 1: 2}, readers=2)
    other = mmdata.open_dataset(tmp_path / "ds", decode=False, seed=1)
    other.load_state_dict(told)
    with pytest.raises(mmdata.MMDataError, match=r"with 2 reader\(s\).*this iteration has 1"):
        list(other)
    # a state from the end of the epoch (at its last sample) means the same with any split: nothing left of that epoch
    done = mmdata.open_dataset(tmp_path / "ds", decode=False, seed=1)
    for _ in done:
        end = done.state_dict()
    assert end["positions"] == {0: 12}
    assert done.state_dict() == {"seed": 1, "epoch": 1, "positions": {}}  # after the pass: the next epoch's start
    other = mmdata.open_dataset(tmp_path / "ds", decode=False, seed=1)
    other.load_state_dict(end)
    assert list(DataLoader(other, batch_size=None, num_workers=2)) == []
