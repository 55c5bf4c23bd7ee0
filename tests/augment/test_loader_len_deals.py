"""A plain ``mmdata.loader`` with DataLoader workers over shuffled shards of one size and a short last
one had no ``len()`` (TypeError: "per-worker sample counts that do not change between epochs"), though
every epoch gives the same number of batches: a plain training loop's ``OneCycleLR(total_steps=epochs *
len(loader))`` or progress bar failed on nearly every real dataset (``maxcount`` rarely divides it). The
length now comes from every possible deal of the shards to the workers (the DataModule's rule under DDP,
:func:`mmdata.shards.deals.invariant_target` with ``rank``), and is checked here against the epochs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import mmdata
from mmdata.shards.deals import invariant_target
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deals")
    mmdata.shard(make_sample_folder(root / "raw", n=50), root / "ds", maxcount=8, progress=False)  # 6 x 8 + 2
    return root / "ds"


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize(("batch", "drop_last"), [(4, False), (3, False), (3, True), (5, True)])
def test_the_length_is_what_every_shuffled_epoch_yields(ds: Path, workers: int, batch: int, drop_last: bool) -> None:
    loader = mmdata.loader(ds, batch, num_workers=workers, shuffle=True, drop_last=drop_last, modalities=["label"])
    length = len(loader)  # raised TypeError before with 2 workers
    for epoch in range(3):
        loader.set_epoch(epoch)
        assert sum(1 for _ in loader) == length, epoch


def _rank_batches_of_every_deal(sizes: list[int], world: int, workers: int, batch: int, drop_last: bool,
                                rank: int) -> set[int]:
    """Brute force: every shard order, reader r taking places r, r + readers, ... (the reader's deal)."""
    readers = world * workers
    out = set()
    for order in itertools.permutations(sizes):
        counts = [sum(order[r::readers]) for r in range(readers)]
        mine = counts[rank * workers:(rank + 1) * workers]
        out.add(sum(c // batch if drop_last else -(-c // batch) for c in mine))
    return out


@pytest.mark.parametrize("sizes", [[7, 7, 7, 2], [8, 8, 8, 8, 3], [5, 5, 5, 1], [6, 6, 6, 6, 6, 4]])
@pytest.mark.parametrize(("world", "workers"), [(1, 2), (1, 3), (2, 1), (2, 2)])
@pytest.mark.parametrize(("batch", "drop_last"), [(3, False), (4, True), (5, False)])
def test_a_length_exactly_when_every_deal_gives_this_rank_the_same(sizes: list[int], world: int, workers: int,
                                                                  batch: int, drop_last: bool) -> None:
    readers = world * workers
    if len(sizes) < readers:
        return
    slots = [len(range(r, len(sizes), readers)) for r in range(readers)]
    for rank in range(world):
        every = _rank_batches_of_every_deal(sizes, world, workers, batch, drop_last, rank)
        assert invariant_target(sizes, slots, workers, batch, drop_last, rank=rank) == (
            every.pop() if len(every) == 1 else None), rank


def test_each_ranks_own_count_under_ddp_ranks() -> None:
    # 2 ranks x 1 worker, shards 10, 10, 4: a rank holds 2 shards (20 or 14 samples) or 1 (10 or 4)
    assert invariant_target([10, 10, 4], [2, 1], 1, 5, False, rank=0) is None   # 4 or 3 batches
    assert invariant_target([10, 10, 4], [2, 1], 1, 10, False, rank=0) == 2     # 2 either way
    assert invariant_target([10, 10, 4], [2, 1], 1, 10, False, rank=1) == 1
