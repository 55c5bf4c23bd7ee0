"""``EvenLoader(..., "pad")``: the rank that runs out first re-reads its own part of the epoch the pass
reads. After a pass dropped early (``break``, Lightning's sanity check, ``limit_val_batches``) the loader's
``.epoch`` still says the dropped pass's epoch while the next pass reads the one after; the pad re-read
took ``.epoch``, so rank 1 padded with the previous epoch's samples and its loader stayed on that epoch
while rank 0 advanced (QA40 review of 2f93715). Two ranks are simulated with ``RANK`` / ``WORLD_SIZE`` and no
process group: the plan comes from the index, nothing is exchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder

pytest.importorskip("lightning.pytorch")


def _keys(it, stop: int | None = None) -> list[str]:
    out = []
    for i, batch in enumerate(it):
        out.append(batch.keys[0])
        if stop is not None and i + 1 >= stop:
            break
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("even")
    mmdata.shard(make_sample_folder(tmp / "raw", n=9), tmp / "ds", progress=False)  # 5 + 4: rank 1 pads
    return tmp / "ds"


def _own(data: Path, epoch: int) -> list[str]:
    """The keys rank 1 reads of ``epoch`` in one pass of its own (the loader pinned to that epoch)."""
    return _keys(mmdata.loader(data, 1, shuffle=True, seed=0, epoch=epoch))


@pytest.mark.parametrize("rank", [0, 1])
def test_pad_rereads_the_epoch_the_pass_reads_after_a_full_pass_and_a_break(
        data: Path, rank: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.lightning import EvenLoader

    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", "2")
    loader = mmdata.loader(data, 1, shuffle=True, seed=0)
    even = EvenLoader(loader, "pad")
    own = {e: _own(data, e) for e in range(5)}
    assert len({tuple(o) for o in own.values()}) > 1  # shuffled: the epochs' orders differ
    target = 5  # 9 samples over 2 ranks: rank 0 reads 5, rank 1 reads 4 and pads one
    assert all(len(o) == (5 if rank == 0 else 4) for o in own.values()), own
    passes = {}
    for name, stop in (("A", None), ("B", 1), ("C", None), ("D", None), ("E", None)):
        passes[name] = _keys(even, stop)
    # epoch 0 full, epoch 1 dropped after a batch, then epochs 2, 3, 4: a pad repeats the pass's own epoch, and
    # the padding rank's loader goes on to the next epoch as the other rank's does
    for name, epoch in (("A", 0), ("C", 2), ("D", 3), ("E", 4)):
        got, mine = passes[name], own[epoch]
        assert len(got) == target, (name, got)
        assert got[:len(mine)] == mine, (name, epoch, got, own)
        assert got[len(mine):] == mine[:target - len(mine)], (name, epoch, got, own)  # the pad: from epoch's start
    assert passes["B"] == own[1][:1]
    assert even.padded == (1 if rank == 1 else 0)


def test_pad_after_break_uses_the_epoch_set_before_the_pass(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pinned epoch (set_epoch, as Lightning's sampler hook does) after a dropped pass is the one re-read."""
    from mmdata.lightning import EvenLoader

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    loader = mmdata.loader(data, 1, shuffle=True, seed=0)
    even = EvenLoader(loader, "pad")
    _keys(even, 1)
    loader.sampler.set_epoch(3)
    mine = _own(data, 3)
    got = _keys(even)
    assert got == mine + mine[:1]
    assert _keys(even)[:len(mine)] == _own(data, 4)  # and the next pass reads epoch 4
