"""The DataModule under DDP, QA round 24 (persona B).

* A dataset whose last train shard is short (``mmdata shard --maxcount N``'s normal result) had no train
  ``len()`` under DDP: shuffled shards of different sizes go to other ranks each epoch, so the per-rank
  sample counts change, and the loader gave up — though *K* (the batches every rank runs) was the same
  in every epoch, so ``Trainer(val_check_interval=0.5)`` / ``limit_train_batches=0.5`` refused to start.
  Now ``len()`` is *K* when every possible deal of the shards gives the same *K* (any epoch then does),
  and the loader stays unsized when *K* really changes.
* A mid-epoch DDP checkpoint resumed with other devices x num_workers was refused with advice a Lightning
  user could not follow (call ``load_state_dict``); the error now names the saved world size and
  ``num_workers`` and the epoch-end checkpoint remedy.

The fits run 2 ranks on CPU (gloo, ``strategy="ddp"``: Lightning re-runs the driver for rank 1) in their
own session, killed as a group past their timeout.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmdata
from mmdata.testing import make_messy_folder
from tests.procs_helpers import communicate_or_kill

pytest.importorskip("lightning.pytorch")
from mmdata.lightning import DataModule  # noqa: E402
from mmdata.interop.lightning import batch_sizes, even_plan, invariant_target  # noqa: E402

BATCH = 3  # 39 train samples in 9 shards of 4 and one of 3; 2 ranks: 20 or 19 samples, 7 batches either way


@pytest.fixture(scope="module")
def short_last(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qa24b")
    make_messy_folder(root / "raw", n=43, sizes=((24, 32),), seconds=(0.2, 0.2))
    mmdata.shard(root / "raw", root / "ds", maxcount=4, split="train=0.91,val=0.09", progress=False,
                 labels_from_folders=False)
    source = mmdata.open_dataset(root / "ds", split="train", shuffle=True)
    assert source.dealt_shard_sizes(2) == ([4] * 9 + [3], [5, 5])  # the per-reader counts change by epoch
    assert source.samples_per_reader(2) is None
    return root / "ds"


# ---- K over every deal of the shards ---------------------------------------------------------------
def _k_of_every_deal(sizes: list[int], readers: int, workers: int, batch: int, drop_last: bool, mode: str) -> set[int]:
    """K for every order of the shards, dealt as the reader deals them (reader r: places r, r + readers...)."""
    ks = set()
    for order in set(itertools.permutations(sizes)):
        counts = [sum(order[r::readers]) for r in range(readers)]
        per_rank = [len(batch_sizes(counts[r * workers:(r + 1) * workers], batch, drop_last))
                    for r in range(readers // workers)]
        ks.add(max(per_rank) if mode == "pad" else min(per_rank))
    return ks


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 9), min_size=2, max_size=6), world=st.integers(2, 3),
       workers=st.integers(1, 2), batch=st.integers(1, 5), drop_last=st.booleans(), mode=st.sampled_from(["pad", "drop"]))
def test_invariant_target_is_k_exactly_when_every_deal_gives_the_same(sizes: list[int], world: int, workers: int,
                                                                     batch: int, drop_last: bool, mode: str) -> None:
    readers = world * workers
    if len(sizes) < readers:  # fewer shards than readers: every reader strides over all samples (fixed counts)
        return
    slots = [len(range(r, len(sizes), readers)) for r in range(readers)]
    ks = _k_of_every_deal(sizes, readers, workers, batch, drop_last, mode)
    assert invariant_target(sizes, slots, workers, batch, drop_last, mode) == (ks.pop() if len(ks) == 1 else None)


def test_invariant_target_gives_up_past_its_budget() -> None:
    sizes = list(range(1, 41))  # 40 shards, all of different sizes: too many deals to tell
    assert invariant_target(sizes, [10] * 4, 1, 3, False, "pad", budget=1000) is None


# ---- per rank, without processes: RANK / WORLD_SIZE make the reader split as under DDP ----------------
@pytest.mark.parametrize("mode", ["pad", "drop"])
def test_len_is_k_when_a_short_last_shard_moves_between_ranks(short_last: Path, monkeypatch: pytest.MonkeyPatch,
                                                             mode: str) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    ran = {}
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        loader = DataModule(short_last, batch_size=BATCH, modalities=["label"], even_batches=mode).train_dataloader()
        assert len(loader) == 7
        ran[rank] = []
        for _ in range(3):
            ran[rank].append(len(list(loader)))
            assert len(loader) == 7  # asked again at the next epoch: the same
        counts = {tuple(loader.loader.source.samples_per_reader(2, epoch=e)) for e in range(3)}  # type: ignore[union-attr]
        assert counts == {(20, 19), (19, 20)}  # the short shard did move between the ranks in these epochs
    assert ran[0] == ran[1] == [7, 7, 7]


def test_stays_unsized_when_k_changes_between_epochs(short_last: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """2 ranks x 2 workers, batches of 11: rank 0's readers hold 3 shards each (12 or 11 samples: 2 or 1
    batches), rank 1's 2 (8 or 7: 1): K is 4, or 3 when the short shard is rank 0's."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        loader = DataModule(short_last, batch_size=11, num_workers=2, modalities=["label"]).train_dataloader()
        with pytest.raises(TypeError, match="change from epoch to epoch"):
            len(loader)
        assert {even_plan(loader.loader, e, "pad").target for e in range(12)} == {3, 4}  # type: ignore[union-attr]


# ---- real 2-process DDP ---------------------------------------------------------------------------
from tests.interop.ddp_driver import RENDEZVOUS  # noqa: E402

DRIVER = textwrap.dedent(('''
    import json, os, sys
    from datetime import timedelta
    import lightning.pytorch as pl
    import torch
    from mmdata.lightning import DataModule

    DATA, OUT, WORKERS, EPOCHS, RESUME = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    TRAINER = json.loads(sys.argv[6])

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 1)

        def _write(self, rec):
            with open(f"{OUT}/rank{self.global_rank}.jsonl", "a") as f:
                f.write(json.dumps({"epoch": self.current_epoch, **rec}) + "\\n")

        def on_train_epoch_start(self):
            self._write({"stage": "len", "len": len(self.trainer.train_dataloader),
                         "batches": self.trainer.num_training_batches})

        def training_step(self, batch, i):
            self._write({"stage": "train", "keys": list(batch.keys)})
            return (self.lin(batch["label"].float()[:, None]) ** 2).mean()

        def validation_step(self, batch, i):
            self._write({"stage": "val", "step": self.global_step})

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

        def teardown(self, stage):
            if stage == "fit" and torch.distributed.is_initialized():
                torch.distributed.barrier()
                torch.distributed.destroy_process_group()

    if __name__ == "__main__":
''' + RENDEZVOUS + '''        strategy = pl.strategies.DDPStrategy(start_method="popen", process_group_backend="gloo",
                                             timeout=timedelta(seconds=120))
        every = pl.callbacks.ModelCheckpoint(dirpath=f"{OUT}/ckpt", every_n_train_steps=1, save_top_k=-1)
        trainer = pl.Trainer(max_epochs=EPOCHS, strategy=strategy, devices=2, accelerator="cpu", logger=False,
                             enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                             callbacks=[every], default_root_dir=OUT, **TRAINER)
        dm = DataModule(DATA, batch_size=%d, seed=0, num_workers=WORKERS, modalities=["label"])
        trainer.fit(Tiny(), dm, ckpt_path=RESUME or None)
        print("FIT DONE", flush=True)
''') % BATCH)


def _fit(data: Path, out: Path, workers: int = 0, epochs: int = 3, resume: str = "",
         trainer: dict | None = None) -> tuple[subprocess.CompletedProcess, dict[int, list[dict]]]:
    out.mkdir()
    (out / "driver.py").write_text(DRIVER)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(out / "driver.py"), str(data), str(out), str(workers), str(epochs),
                             resume, json.dumps(trainer or {})], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)
    stdout, _ = communicate_or_kill(proc, 300)
    records = {int(p.stem[4:]): [json.loads(line) for line in p.read_text().splitlines()]
               for p in out.glob("rank*.jsonl")}
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, None), records


def _count(records: list[dict], stage: str, epoch: int) -> int:
    return sum(1 for r in records if r["stage"] == stage and r["epoch"] == epoch)


@pytest.mark.slow
@pytest.mark.parametrize("trainer", [{"val_check_interval": 0.5}, {"limit_train_batches": 0.5}])
def test_ddp_len_is_the_batches_every_rank_runs_each_epoch(short_last: Path, tmp_path: Path, trainer: dict) -> None:
    proc, records = _fit(short_last, tmp_path / "run", trainer=trainer)
    assert proc.returncode == 0 and "FIT DONE" in proc.stdout, proc.stdout[-4000:]
    assert sorted(records) == [0, 1]
    for epoch in range(3):
        for rank in (0, 1):
            (start,) = [r for r in records[rank] if r["stage"] == "len" and r["epoch"] == epoch]
            assert start["len"] == 7, (rank, epoch, start)
            steps = _count(records[rank], "train", epoch)
            if "limit_train_batches" in trainer:
                assert start["batches"] == steps == 3  # int(7 * 0.5)
            else:
                assert start["batches"] == steps == 7  # every batch the loader's len() promised, no more
                # validation at half the epoch (after 3 batches) and at its end (after 7)
                vals = sorted({r["step"] for r in records[rank] if r["stage"] == "val" and r["epoch"] == epoch})
                assert vals == [7 * epoch + 3, 7 * epoch + 6], vals


@pytest.mark.slow
def test_ddp_resume_with_other_num_workers_names_what_a_lightning_user_can_do(short_last: Path,
                                                                              tmp_path: Path) -> None:
    first, _ = _fit(short_last, tmp_path / "a", workers=2, epochs=1, trainer={"limit_val_batches": 0})
    assert first.returncode == 0, first.stdout[-4000:]
    ckpt = tmp_path / "a" / "ckpt" / "epoch=0-step=2.ckpt"  # mid-epoch 0
    refused, records = _fit(short_last, tmp_path / "b", workers=0, epochs=1, resume=str(ckpt),
                            trainer={"limit_val_batches": 0})
    assert refused.returncode != 0 and not any(r["stage"] == "train" for rs in records.values() for r in rs)
    out = refused.stdout
    for rank in (0, 1):
        # the loader's own facts, then what to do under Lightning: the saved numbers, or an epoch-end checkpoint
        lines = [ln for ln in out.splitlines() if ln.startswith(f"[rank{rank}]: mmdata.errors.MMDataError")]
        assert len(lines) == 1, out[-4000:]  # one error per rank, not the loader's and then a second
        line = lines[0]
        assert "saved mid-epoch 0 with 4 reader(s)" in line and "this loader has 2" in line, out[-4000:]
        assert "trainer.fit(ckpt_path=...)" in line and "this run: 2 process(es) x num_workers=0" in line, line
        assert "the world size it was saved with, 2 process(es)" in line and "num_workers=2" in line, line
        assert "checkpoint written at an epoch's end" in line, line
