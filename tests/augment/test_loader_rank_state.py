"""A mid-epoch loader state is one rank's (distributed QA): each rank's state holds its own readers'
positions. A Lightning checkpoint (and a script saving on rank 0 only) holds rank 0's: loaded on every rank,
rank 1 started its readers at 0 — it replayed its batches and samples were lost, without a word; loaded
into a world of another size with as many readers in all, it was taken as it was. Both are refused now,
naming the remedy; each rank's own state still resumes exactly, and a rank's state at the end of its share
is the end of the epoch on every rank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.errors import MMDataError, ShardError
from mmdata.testing import make_sample_folder
from tests.procs_helpers import rendezvous, spawn_ranks


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> str:
    t = tmp_path_factory.mktemp("rankstate")
    mmdata.shard(make_sample_folder(t / "raw", n=24), t / "ds", split={"train": 1.0}, maxcount=4, progress=False)
    return str(t / "ds")


def _keys(batches) -> list[str]:  # noqa: ANN001
    return [k for b in batches for k in b.keys]


def _rank(rank: int, path: str, init_method: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=init_method, rank=rank, world_size=2)
    try:
        first = mmdata.loader(path, 4, seed=0)
        it = iter(first)
        seen = _keys([next(it), next(it)])
        Path(out, f"state{rank}.json").write_text(json.dumps(first.state_dict()))
        torch.distributed.barrier()
        own = mmdata.loader(path, 4, seed=0)
        own.load_state_dict(json.loads(Path(out, f"state{rank}.json").read_text()))
        rest = _keys(own)
        try:
            mmdata.loader(path, 4, seed=0).load_state_dict(json.loads(Path(out, "state0.json").read_text()))
            other = "taken"
        except MMDataError as exc:
            other = str(exc)
        ds = mmdata.open_dataset(path, seed=0)  # the dataset's own state (torchdata's StatefulDataLoader saves it)
        it = iter(ds)
        for _ in range(5):
            next(it)
        Path(out, f"ds{rank}.json").write_text(json.dumps(ds.state_dict()))
        torch.distributed.barrier()
        resumed = mmdata.open_dataset(path, seed=0)
        resumed.load_state_dict(json.loads(Path(out, "ds0.json").read_text()))
        try:
            ds_other = f"{len(list(resumed))} samples"
        except ShardError as exc:
            ds_other = str(exc)
        Path(out, f"rank{rank}.json").write_text(json.dumps({"seen": seen, "rest": rest, "other": other,
                                                             "ds_other": ds_other}))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_a_ranks_state_resumes_that_rank_only(tmp_path: Path, data: str) -> None:
    spawn_ranks(_rank, args=(data, rendezvous(tmp_path), str(tmp_path)))
    r = [json.loads(Path(tmp_path, f"rank{i}.json").read_text()) for i in (0, 1)]
    keys = [x["seen"] + x["rest"] for x in r]
    assert len(keys[0]) == len(keys[1]) == 12 and len(set(keys[0]) | set(keys[1])) == 24  # each its own, exactly
    assert r[0]["other"] == "taken"  # rank 0's own state
    assert "by another rank: it holds positions of readers [0], and rank 1's readers are [1]" in r[1]["other"]
    assert "mmdata.lightning.DataModule's checkpoints hold every rank's" in r[1]["other"]
    assert r[0]["ds_other"] == "7 samples" and "by another rank" in r[1]["ds_other"]  # the dataset's state: the same
    state = json.loads(Path(tmp_path, "state0.json").read_text())
    assert state["world"] == 2 and state["readers"] == 2
    with pytest.raises(MMDataError, match=r"saved mid-epoch 0 in a world of 2 processes and this is rank 0 of 1"):
        mmdata.loader(data, 4, seed=0, num_workers=2).load_state_dict(state)  # 2 readers here too: once taken as it was
    # a rank's state at the end of its share is not the end of one process's whole epoch
    with pytest.raises(MMDataError, match=r"in a world of 2 processes"):
        mmdata.loader(data, 4, seed=0, num_workers=2).load_state_dict({**state, "positions": {"0": 12}, "batches": 3})


def test_a_longer_rank_does_not_end_its_epoch_at_a_shorter_ranks_end(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """QA on the fix: rank 0 (4 batches) loading rank 1's state at the end of its 3 batches ended its own
    epoch there, dropping its last batch silently. The end is taken over only by a rank whose epoch is no
    longer than the batches the saving rank had yielded."""
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=20), tmp_path / "ds", split={"train": 1.0}, maxcount=4,
                 progress=False)  # shards of 4: rank 0 reads 3 (12 samples), rank 1 reads 2 (8)
    monkeypatch.setenv("WORLD_SIZE", "2")
    short_end = {"epoch": 0, "seed": 0, "batches": 3, "positions": {"1": 8}, "readers": 2, "world": 2}
    long_end = {"epoch": 0, "seed": 0, "batches": 4, "positions": {"0": 12}, "readers": 2, "world": 2}
    monkeypatch.setenv("RANK", "0")
    assert len(mmdata.loader(tmp_path / "ds", 3)) == 4
    with pytest.raises(MMDataError, match="by another rank"):
        mmdata.loader(tmp_path / "ds", 3).load_state_dict(short_end)
    monkeypatch.setenv("RANK", "1")
    shorter = mmdata.loader(tmp_path / "ds", 3)
    shorter.load_state_dict(long_end)  # its 3 batches are over when the other rank's 4 are
    assert _keys(shorter) == []
