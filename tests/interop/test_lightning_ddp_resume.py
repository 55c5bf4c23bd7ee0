"""A Lightning DDP fit resumed from a checkpoint (distributed QA): a checkpoint held rank 0's loader state
only. Resumed mid-epoch, rank 1 started its readers at 0 — it replayed its batches and samples were lost,
silently. Then every rank refused it; now the checkpoint holds every rank's state (gathered when Lightning
makes it on every rank) and each rank resumes its own, exactly. A checkpoint of the older kind (rank 0's
state only) is still refused on every rank (rank 0 too: alone it waited in its first all-reduce until the
process group's timeout), naming the remedy; a checkpoint at the epoch's last batch resumes the next epoch
on every rank, each sample once (padding repeats aside)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder
from tests.procs_helpers import communicate_or_kill

pytest.importorskip("lightning.pytorch")

DRIVER = textwrap.dedent('''
    import json, sys
    import lightning.pytorch as pl
    import torch
    from mmdata.lightning import DataModule

    DATA, OUT, EPOCHS, RESUME = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] or None
    BATCH, EVERY = int(sys.argv[5]), int(sys.argv[6])

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 1)

        def training_step(self, batch, i):
            with open(f"{OUT}/rank{self.global_rank}.jsonl", "a") as f:
                f.write(json.dumps({"epoch": self.current_epoch, "keys": list(batch.keys)}) + "\\n")
            return (self.lin(batch["label"].float()[:, None]) ** 2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    if __name__ == "__main__":
        torch.set_num_threads(1)
        every = pl.callbacks.ModelCheckpoint(dirpath=f"{OUT}/ckpt", every_n_train_steps=EVERY, save_top_k=-1)
        trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=EPOCHS, callbacks=[every],
                             logger=False, enable_progress_bar=False, enable_model_summary=False,
                             num_sanity_val_steps=0, limit_val_batches=0)
        trainer.fit(Tiny(), DataModule(DATA, batch_size=BATCH, seed=0), ckpt_path=RESUME)
''')


def _fit(tmp: Path, data: Path, out: str, epochs: int, resume: str = "", batch: int = 3,
         every: int = 1) -> subprocess.CompletedProcess:
    """A 2-rank DDP fit (Lightning launches rank 1), killed as a group if it outlives its time."""
    (tmp / out).mkdir()
    (tmp / "driver.py").write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(tmp / "driver.py"), str(data), str(tmp / out), str(epochs), resume,
                             str(batch), str(every)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp, start_new_session=True)
    stdout, stderr = communicate_or_kill(proc, 240)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _batches(out: Path, rank: int) -> list[dict]:
    return [json.loads(line) for line in (out / f"rank{rank}.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_a_ddp_checkpoint_resumes_each_rank_exactly_mid_epoch_and_at_an_epochs_end(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=16, missing=False), data, split={"train": 1.0}, maxcount=4,
                 progress=False)  # 4 shards of 4: 8 samples per rank, 3 batches of 3 (3, 3, 2) per epoch
    first = _fit(tmp_path, data, "a", 1, batch=3, every=1)
    assert first.returncode == 0, first.stderr[-3000:]
    ckpts = sorted(p.name for p in (tmp_path / "a" / "ckpt").iterdir())
    assert ckpts == ["epoch=0-step=1.ckpt", "epoch=0-step=2.ckpt", "epoch=0-step=3.ckpt"], ckpts
    whole = {r: _batches(tmp_path / "a", r) for r in (0, 1)}
    assert len(whole[0]) == len(whole[1]) == 3 and set(k for b in whole[0] for k in b["keys"]).isdisjoint(
        k for b in whole[1] for k in b["keys"])
    # mid-epoch, after the first of 3 batches per rank: each rank goes on with its own last two batches
    resumed = _fit(tmp_path, data, "c", 1, str(tmp_path / "a" / "ckpt" / ckpts[0]), batch=3, every=1)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for r in (0, 1):
        assert _batches(tmp_path / "c", r) == whole[r][1:], r
    # written after the epoch's last batch: the next epoch, on every rank
    end = _fit(tmp_path, data, "b", 2, str(tmp_path / "a" / "ckpt" / ckpts[-1]), batch=3, every=1)
    assert end.returncode == 0, end.stderr[-3000:]
    seen = [b for r in (0, 1) for b in _batches(tmp_path / "b", r)]
    assert {s["epoch"] for s in seen} == {1} and sorted(k for s in seen for k in s["keys"]) == sorted(
        k for b in mmdata.loader(data, 4) for k in b.keys)
    # a checkpoint of the older kind, rank 0's state only: refused mid-epoch on every rank
    import torch
    ckpt = torch.load(tmp_path / "a" / "ckpt" / ckpts[0], weights_only=False)
    states = [ckpt["DataModule"]["train"], *ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]]
    assert all(len(s.pop("ranks")) == 2 for s in states)
    torch.save(ckpt, tmp_path / "old.ckpt")
    refused = _fit(tmp_path, data, "d", 1, str(tmp_path / "old.ckpt"), batch=3, every=1)
    assert refused.returncode != 0
    err = refused.stderr
    assert "[rank1]: mmdata.errors.MMDataError: loader state was saved mid-epoch 0 by another rank" in err, err[-3000:]
    assert "[rank0]: mmdata.errors.MMDataError: the checkpoint's loader state was refused on another rank" in err
