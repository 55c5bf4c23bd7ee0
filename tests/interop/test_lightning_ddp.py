"""The DataModule under real 2-process DDP (``ddp_spawn``, CPU, gloo): every rank runs the same number of
steps per epoch, also when the shards split unevenly over ranks and DataLoader workers.

Without that, the rank with fewer batches ends its epoch first and its gradient all-reduces pair with
the other rank's across the epoch boundary: the run dies (``Connection closed by peer``) or hangs.
Each fit runs in a subprocess (its own session, killed as a group on timeout, so no spawned rank or
DataLoader worker outlives the test); the ranks write what each step saw to JSON lines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_messy_folder
from tests.procs_helpers import communicate_or_kill

pytest.importorskip("lightning.pytorch")
from mmdata.lightning import DataModule  # noqa: E402

BATCH = 3  # shards of 8/8/8/6 train samples: 3 batches per 8-sample reader, 2 for the 6-sample one

from tests.interop.ddp_driver import RENDEZVOUS  # noqa: E402

DRIVER = textwrap.dedent(('''
    import json, os, sys
    from datetime import timedelta
    import lightning.pytorch as pl
    import torch
    from mmdata.lightning import DataModule

    DATA, OUT, WORKERS, EVEN, START = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    EXTRA = json.loads(sys.argv[6])  # more DataModule arguments

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 1)

        def _write(self, rec):
            with open(f"{OUT}/rank{self.global_rank}.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\\n")

        def training_step(self, batch, i):
            self._write({"stage": "train", "epoch": self.current_epoch, "keys": list(batch.keys)})
            return (self.lin(batch["label"].float()[:, None]) ** 2).mean()

        def validation_step(self, batch, i):
            self._write({"stage": "val", "epoch": self.current_epoch, "keys": list(batch.keys)})
            # a collective per step (like sync_dist on_step): uneven val counts would pair it wrongly
            self.trainer.strategy.reduce(torch.tensor(float(len(batch))), reduce_op="sum")

        def on_train_epoch_end(self):
            loader = self.trainer.train_dataloader
            self._write({"stage": "end", "epoch": self.current_epoch, "dropped": getattr(loader, "dropped", None)})

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

        def teardown(self, stage):
            # end the gloo group in every rank before its process exits: left to interpreter exit, a
            # spawned rank now and then aborted in gloo's teardown ("terminate called without an active
            # exception") on a loaded machine, after the fit had finished
            if stage == "fit" and torch.distributed.is_initialized():
                torch.distributed.barrier()
                torch.distributed.destroy_process_group()

    if __name__ == "__main__":
''' + RENDEZVOUS + '''        kw = {} if EVEN == "default" else {"even_batches": False if EVEN == "off" else EVEN}
        dm = DataModule(DATA, batch_size=%d, seed=0, num_workers=WORKERS, modalities=["label", "text"], **kw, **EXTRA)
        # "spawn": ddp_spawn (QA's setup); "popen": ddp, the script re-run per rank (DataLoader workers
        # fork there; under ddp_spawn they are spawned too, seconds each on a loaded machine)
        # a collective waits up to 120 s: with 30 s a rank still starting its validation workers on a
        # loaded 2-core machine (another test beside it) timed out now and then; a real hang is still
        # ended by the driver's timeout below
        strategy = pl.strategies.DDPStrategy(start_method=START, process_group_backend="gloo",
                                             timeout=timedelta(seconds=120))
        trainer = pl.Trainer(max_epochs=2, strategy=strategy, devices=2, accelerator="cpu", logger=False,
                             enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                             num_sanity_val_steps=0, default_root_dir=OUT)
        trainer.fit(Tiny(), dm)
        print("FIT DONE", flush=True)
''') % BATCH)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    make_messy_folder(root / "raw", n=40, sizes=((24, 32), (32, 24)), seconds=(0.2, 0.4))
    mmdata.shard(root / "raw", root / "ds", maxcount=8, split="train=0.75,val=0.25", progress=False)
    card = json.loads((root / "ds" / "dataset.json").read_text())
    assert card["splits"]["train"]["samples"] == 30 and len(card["splits"]["train"]["shards"]) == 4  # 8/8/8/6
    assert card["splits"]["val"]["samples"] == 10 and len(card["splits"]["val"]["shards"]) == 2  # 8/2
    return root / "ds"


def _fit(ds: Path, out: Path, num_workers: int, even: str, start: str, extra: dict | None = None,
         timeout: float = 300) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the driver; returns (process, {rank: [records]})."""
    out.mkdir()
    script = out / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(ds), str(out), str(num_workers), even, start,
                             json.dumps(extra or {})], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)
    try:
        # past the timeout: the driver, its spawned ranks and their DataLoader workers are killed (the group)
        stdout, _ = communicate_or_kill(proc, timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything of the group left behind
        except ProcessLookupError:
            pass
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, None)
    records = {int(p.stem[4:]): [json.loads(line) for line in p.read_text().splitlines()]
               for p in out.glob("rank*.jsonl")}
    return done, records


def _steps(records: list[dict], stage: str, epoch: int) -> list[list[str]]:
    return [r["keys"] for r in records if r["stage"] == stage and r["epoch"] == epoch]


def _split_keys(ds: Path, split: str) -> Counter:
    return Counter(s.key for s in mmdata.open_dataset(ds, split=split, decode=False))


@pytest.mark.slow
@pytest.mark.parametrize(("num_workers", "start"), [(0, "spawn"), (2, "popen")])
def test_ddp_pad_every_rank_same_steps_and_every_sample(ds: Path, tmp_path: Path, num_workers: int,
                                                       start: str) -> None:
    proc, records = _fit(ds, tmp_path / "run", num_workers, "default", start)
    assert proc.returncode == 0 and "FIT DONE" in proc.stdout, proc.stdout[-4000:]
    assert sorted(records) == [0, 1]
    train, val = _split_keys(ds, "train"), _split_keys(ds, "val")
    for epoch in (0, 1):
        steps = {r: _steps(records[r], "train", epoch) for r in (0, 1)}
        assert len(steps[0]) == len(steps[1]) > 0, {r: len(s) for r, s in steps.items()}
        seen = Counter(k for r in (0, 1) for b in steps[r] for k in b)
        assert set(seen) == set(train)  # every train sample; the padding repeats a few of them
        assert sum(seen.values()) - sum(train.values()) < 2 * 2 * BATCH  # at most a batch or so per rank
        vsteps = {r: _steps(records[r], "val", epoch) for r in (0, 1)}
        assert len(vsteps[0]) == len(vsteps[1]) > 0
        assert set(k for r in (0, 1) for b in vsteps[r] for k in b) == set(val)


@pytest.mark.slow
def test_ddp_drop_every_rank_same_steps_and_dropped_counted(ds: Path, tmp_path: Path) -> None:
    proc, records = _fit(ds, tmp_path / "run", 2, "drop", "popen")
    assert proc.returncode == 0 and "FIT DONE" in proc.stdout, proc.stdout[-4000:]
    train = _split_keys(ds, "train")
    for epoch in (0, 1):
        steps = {r: _steps(records[r], "train", epoch) for r in (0, 1)}
        assert len(steps[0]) == len(steps[1]) > 0
        seen = Counter(k for r in (0, 1) for b in steps[r] for k in b)
        assert max(seen.values()) == 1 and set(seen) <= set(train)  # nothing twice
        ends = [r["dropped"] for rank in (0, 1) for r in records[rank] if r["stage"] == "end" and r["epoch"] == epoch]
        assert ends[0] == ends[1] == sum(train.values()) - sum(seen.values()) > 0  # counted, all ranks agree
        assert proc.stdout.count(f"epoch {epoch}: dropped") == 1  # logged once per epoch (rank 0)


@pytest.mark.slow
def test_ddp_pad_when_the_index_cannot_fix_the_counts(ds: Path, tmp_path: Path) -> None:
    """on_error="skip": losses are found while reading, so the ranks agree batch by batch (all-reduce)."""
    proc, records = _fit(ds, tmp_path / "run", 0, "default", "popen", {"on_error": "skip"})
    assert proc.returncode == 0 and "FIT DONE" in proc.stdout, proc.stdout[-4000:]
    train = _split_keys(ds, "train")
    for epoch in (0, 1):
        steps = {r: _steps(records[r], "train", epoch) for r in (0, 1)}
        assert len(steps[0]) == len(steps[1]) > 0
        assert set(k for r in (0, 1) for b in steps[r] for k in b) == set(train)


# ---- the plan, per rank, without processes: RANK / WORLD_SIZE make the reader split as under DDP -------
def _rank_epochs(ds: Path, monkeypatch: pytest.MonkeyPatch, rank: int, epochs: int,
                 **kw: object) -> tuple[list[list[list[str]]], list[int], DataModule]:
    """(keys of each batch, samples dropped) per epoch as rank ``rank`` of 2 sees them, and the module."""
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", "2")
    dm = DataModule(ds, batch_size=BATCH, seed=0, modalities=["label"], **kw)  # type: ignore[arg-type]
    loader = dm.train_dataloader()
    batches, dropped = [], []
    for _ in range(epochs):
        batches.append([list(b.keys) for b in loader])
        dropped.append(loader.dropped)
    return batches, dropped, dm


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("mode", ["pad", "drop"])
def test_every_rank_gets_k_batches_each_epoch(ds: Path, monkeypatch: pytest.MonkeyPatch, num_workers: int,
                                              mode: str) -> None:
    train = _split_keys(ds, "train")
    even = [_rank_epochs(ds, monkeypatch, r, 4, num_workers=num_workers, even_batches=mode)[:2] for r in (0, 1)]
    raw = [_rank_epochs(ds, monkeypatch, r, 4, num_workers=num_workers, even_batches=False)[0] for r in (0, 1)]
    assert any(len(raw[0][e]) != len(raw[1][e]) for e in range(4))  # the shards do split unevenly
    for e in range(4):
        batches = [even[r][0][e] for r in (0, 1)]
        d0, d1 = (even[r][1][e] for r in (0, 1))
        k = (max if mode == "pad" else min)(len(raw[r][e]) for r in (0, 1))
        assert len(batches[0]) == len(batches[1]) == k
        seen = Counter(key for b in batches[0] + batches[1] for key in b)
        if mode == "pad":  # every sample; the short rank's first batches again (same keys, same order)
            assert set(seen) == set(train) and d0 == d1 == 0
            for r in (0, 1):
                extra = k - len(raw[r][e])
                assert batches[r][:len(raw[r][e])] == raw[r][e] and batches[r][k - extra :] == batches[r][:extra]
        else:  # each sample at most once; the left-out ones counted, the same on every rank
            assert max(seen.values()) == 1 and d0 == d1 == sum(train.values()) - sum(seen.values()) > 0


def test_len_is_k_when_the_counts_do_not_change_between_epochs(ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for rank in (0, 1):
        *_, dm = _rank_epochs(ds, monkeypatch, rank, 0)
        val = dm.val_dataloader()  # in order: shards of 8 and 2 samples -> 3 and 1 batches
        assert len(val) == 3 and [len(b) for b in val] == ([3, 3, 2] if rank == 0 else [2, 2, 2])  # rank 1 pads
        # shuffled shards of 8/8/8/6 over 2 ranks: 16 or 14 samples, but one rank always has 16 (6 batches)
        assert len(dm.train_dataloader()) == 6  # QA24: K is the same in every epoch (test_lightning_qa24.py)
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert len(DataModule(ds, batch_size=BATCH, even_batches="drop").val_dataloader()) == 4  # one process: as is


def test_even_batches_is_checked(ds: Path) -> None:
    with pytest.raises(mmdata.MMDataError, match="even_batches"):
        DataModule(ds, even_batches="repeat")  # type: ignore[arg-type]
