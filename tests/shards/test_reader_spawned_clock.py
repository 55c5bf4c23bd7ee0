"""A dataset built before ``init_process_group`` and handed to ``torch.multiprocessing.spawn``: each rank
gets its own epoch clock (QA: both ranks' DataLoader workers shared the parent's one counter and bumped it
for each other's iterations — epochs mixed, samples repeated and skipped, silently)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

import mmdata
from mmdata.shards.reader import EpochClock, ShardDataset
from mmdata.testing import make_sample_folder
from tests.procs_helpers import rendezvous, spawn_ranks


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spawned_clock")
    mmdata.shard(make_sample_folder(root / "raw", n=40), root / "ds", maxcount=5, progress=False)
    return root / "ds"


def _meta(batch: list) -> list[tuple[str, int]]:  # type: ignore[type-arg]
    return [(s.key, s.meta["epoch"]) for s in batch]


def _rank(rank: int, dataset: ShardDataset, init_method: str, out: str, persistent: bool, context: str | None) -> None:
    torch.distributed.init_process_group("gloo", init_method=init_method, rank=rank, world_size=2)
    try:
        dl = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=_meta, persistent_workers=persistent,
                        multiprocessing_context=context)
        epochs = [[m for b in dl for m in b] for _ in range(2)]
        Path(out, f"r{rank}.json").write_text(json.dumps(epochs))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize(("persistent", "context"), [(False, None), (True, "spawn")])
def test_a_dataset_built_before_the_process_group_reads_each_epoch_once_across_ranks(
        tmp_path: Path, ds: Path, monkeypatch: pytest.MonkeyPatch, persistent: bool, context: str | None) -> None:
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    dataset = mmdata.open_dataset(ds, split="train", shuffle=True, seed=0)
    spawn_ranks(_rank, args=(dataset, rendezvous(tmp_path), str(tmp_path), persistent, context))
    got = [json.loads(Path(tmp_path, f"r{r}.json").read_text()) for r in range(2)]
    orders = []
    for e in range(2):
        both = got[0][e] + got[1][e]
        assert got[0][e] and got[1][e]
        assert Counter(ep for _, ep in both) == {e: 40}, (e, Counter(ep for _, ep in both))
        assert len({k for k, _ in both}) == 40  # each sample once per epoch across the ranks
        orders.append([k for k, _ in got[0][e]])
    assert orders[0] != orders[1]  # the epochs differ
    assert dataset.epoch == 0  # the parent's clock is its own: the ranks' epochs did not move it


def test_the_parent_keeps_its_clock_after_spawning(tmp_path: Path) -> None:
    """What a rank does to its copy stays there; the parent goes on from its own state."""
    clock = EpochClock(3)
    assert clock.begin()[0] == 3
    spawn_ranks(_advance_twice, args=(clock, str(tmp_path)), nprocs=2)
    assert sorted(json.loads(Path(tmp_path, f"c{r}.json").read_text()) for r in range(2)) == [[4, 5], [4, 5]]
    assert clock.current() == 3 and clock.begin()[0] == 4


def _advance_twice(rank: int, clock: EpochClock, out: str) -> None:
    Path(out, f"c{rank}.json").write_text(json.dumps([clock.begin()[0], clock.begin()[0]]))


def _rank_losses(rank: int, dataset: ShardDataset, init_method: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=init_method, rank=rank, world_size=2)
    try:
        keys = [s.key for s in DataLoader(dataset, batch_size=None, num_workers=2)]
        Path(out, f"l{rank}.json").write_text(json.dumps([keys, dataset.skipped]))
    finally:
        torch.distributed.destroy_process_group()


def test_each_ranks_loss_counts_are_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dataset's own loss board (a plain DataLoader's workers post there) went to both ranks as one
    shared memory: worker k of each rank wrote slot k, so a rank's ``ds.skipped`` showed the other's."""
    from mmdata.testing import shard_lossy

    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    lossy = shard_lossy(tmp_path / "data", "a", 32, None, ("000001", "000013", "000022"))
    whole = mmdata.open_dataset(lossy, on_error="skip", required=["audio"])
    n = len(list(whole))
    dataset = mmdata.open_dataset(lossy, on_error="skip", required=["audio"])
    spawn_ranks(_rank_losses, args=(dataset, rendezvous(tmp_path), str(tmp_path)))
    got = [json.loads(Path(tmp_path, f"l{r}.json").read_text()) for r in range(2)]
    assert sorted(got[0][0] + got[1][0]) == sorted(s.key for s in whole) and len(got[0][0] + got[1][0]) == n
    summed = Counter(got[0][1]) + Counter(got[1][1])
    assert dict(summed) == whole.skipped, (got[0][1], got[1][1], whole.skipped)
    assert dataset.skipped == {}  # the parent read nothing: the ranks' counts are theirs
