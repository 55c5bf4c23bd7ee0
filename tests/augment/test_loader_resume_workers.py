"""Resume with DataLoader workers once a worker has run out.

The DataLoader takes its workers' batches in turn and passes over a worker that has run out; a resumed
loader inferred the worker to start with from ``batches % num_workers``, which names the wrong one after
that point (5 shards over 3 workers: 8, 8 and 4 samples; from batch 13 on the order differed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def uneven(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("uneven")
    mmdata.shard(make_sample_folder(root / "raw", n=20), root / "ds", maxcount=4, progress=False)  # 5 shards of 4
    return root / "ds"


def _run(ds: Path, state: dict | None = None, **kw: object) -> tuple[list[list[str]], list[dict]]:
    loader = mmdata.loader(ds, kw.pop("batch_size", 1), num_workers=3, **kw)  # type: ignore[arg-type]
    if state is not None:
        loader.load_state_dict(state)
    keys, states = [], []
    for b in loader:
        keys.append(list(b.keys))
        states.append(loader.state_dict())
    return keys, states


@pytest.mark.parametrize("kw", [{"shuffle": False}, {"shuffle": True, "batch_size": 2, "seed": 3}])
def test_resume_after_a_worker_ran_out_gives_the_rest_in_order(uneven: Path, kw: dict) -> None:
    full, states = _run(uneven, **kw)
    assert sorted(k for b in full for k in b) == [f"{i:06d}" for i in range(20)]
    points = range(1, len(full)) if not kw["shuffle"] else range(len(full) - 4, len(full))
    for k in points:
        rest, _ = _run(uneven, states[k - 1], **kw)
        assert rest == full[k:], (k, states[k - 1])


def test_a_state_without_next_worker_still_resumes_while_no_worker_ran_out(uneven: Path) -> None:
    full, states = _run(uneven)
    old = {k: v for k, v in states[5].items() if k != "next_worker"}  # saved by an older mmdata
    assert _run(uneven, old)[0] == full[6:]


@pytest.mark.parametrize("saved,resumed", [(2, 0), (0, 2), (2, 3)])
def test_a_state_from_another_number_of_readers_is_refused_mid_epoch(uneven: Path, saved: int, resumed: int) -> None:
    """Positions count samples along each reader's share of the epoch. Resumed with another worker count
    they named other samples: 27 samples of 24 came out, 8 twice and 5 never, with no word."""
    loader = mmdata.loader(uneven, 2, num_workers=saved, seed=5)
    it = iter(loader)
    seen = [k for _ in range(3) for k in next(it).keys]
    state = loader.state_dict()
    del it
    assert state["readers"] == max(1, saved)
    other = mmdata.loader(uneven, 2, num_workers=resumed, seed=5)
    with pytest.raises(mmdata.MMDataError, match=rf"with {max(1, saved)} reader\(s\).*this loader has {max(1, resumed)}"):
        other.load_state_dict(state)
    # the way out the message gives: the epoch from its start, every sample once
    other.load_state_dict({"epoch": state["epoch"], "seed": 5})
    assert sorted(k for b in other for k in b.keys) == [f"{i:06d}" for i in range(20)] and len(seen) == 6
    # the same worker count resumes exactly (the rest, each sample once)
    same = mmdata.loader(uneven, 2, num_workers=saved, seed=5)
    same.load_state_dict(state)
    assert sorted(seen + [k for b in same for k in b.keys]) == [f"{i:06d}" for i in range(20)]


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_state_from_the_end_of_an_epoch_resumes_with_any_number_of_readers(uneven: Path, shuffle: bool) -> None:
    """A checkpoint at an epoch's end (all positions at their share's end) means the same with any split:
    the rest of that epoch is empty and the next pass is the next epoch, as with the same workers."""
    loader = mmdata.loader(uneven, 2, num_workers=2, seed=5, shuffle=shuffle)
    for _ in loader:
        state = loader.state_dict()  # at the last batch (after the pass: the next epoch's start)
    for workers in (2, 0, 3):
        other = mmdata.loader(uneven, 2, num_workers=workers, seed=5, shuffle=shuffle)
        other.load_state_dict(state)
        assert [b for b in other] == []
        assert sorted(k for b in other for k in b.keys) == [f"{i:06d}" for i in range(20)]
        assert other.epoch == 2  # epoch 1 read to its end: the next pass reads 2 (QA40 notebook #1)


def test_a_state_saved_by_an_older_mmdata_without_its_readers_is_checked(uneven: Path) -> None:
    """Upgrade QA 2026-12-03: a mid-epoch state saved before states recorded ``readers`` (mmdata of
    2026-12-01 / 02) resumed with another worker count repeated 19 samples and skipped 11, silently. It is
    now refused where its positions name readers this loader lacks, and warned of otherwise."""
    full, states = _run(uneven, batch_size=2, shuffle=False)
    old = {k: v for k, v in states[4].items() if k not in ("readers", "next_worker", "copies")}
    assert max(old["positions"]) == 2  # three workers read
    one = mmdata.loader(uneven, 2, num_workers=0, shuffle=False)
    with pytest.raises(mmdata.MMDataError, match=r"saved mid-epoch 0 by an older mmdata with positions for 3\+ readers"):
        one.load_state_dict(old)
    with pytest.warns(UserWarning, match=r"by an older mmdata, which did not record its number of readers"):
        rest, _ = _run(uneven, old, batch_size=2, shuffle=False)
    assert sorted(k for b in full[5:] for k in b) == sorted(k for b in rest for k in b)  # the same workers: exact
    ds = mmdata.open_dataset(uneven, split="train", shuffle=False)
    ds.load_state_dict({"seed": 0, "epoch": 0, "positions": {0: 1, 1: 1, 2: 1}})
    with pytest.raises(mmdata.ShardError, match=r"older mmdata with positions for 3\+ readers"):
        list(ds)  # one reader here


@pytest.mark.parametrize("workers", [0, 2])
def test_a_resume_keeps_the_counts_of_samples_skipped_before_it(uneven: Path, workers: int) -> None:
    """Every 4th sample lacks audio and is skipped (``required=["audio"]``). A resumed pass passes over
    what the saved loader had read unread, so its losses went uncounted: the samples after the resume
    point carried no ``skipped`` record (the uninterrupted run's said 1, 2, ...) and ``loader.skipped``
    came out short of the epoch's losses."""
    kw = {"num_workers": workers, "required": ["audio"], "on_error": "skip", "seed": 2}

    def records(loader: mmdata.Loader) -> list[tuple[str, dict]]:
        return [(k, m.get("skipped", {})) for b in loader for k, m in zip(b.keys, b.meta["samples"])]

    whole = mmdata.loader(uneven, 2, **kw)
    full = records(whole)
    assert whole.skipped == {"missing required modality": 5} and len(full) == 15
    assert any(counts for _, counts in full)
    for cut in range(1, 8):
        first = mmdata.loader(uneven, 2, **kw)
        it = iter(first)
        head = [(k, m.get("skipped", {})) for _ in range(cut) for b in [next(it)]
                for k, m in zip(b.keys, b.meta["samples"])]
        state = first.state_dict()
        del it
        again = mmdata.loader(uneven, 2, **kw)
        again.load_state_dict(state)
        assert head + records(again) == full, cut
        assert again.skipped == whole.skipped, cut
