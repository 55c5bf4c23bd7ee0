"""The DataModule under real 2-process DDP (CPU, gloo): defects a distributed QA pass found.

* ``even_batches="pad"`` where the index cannot fix the counts (``balance``): the ranks agreed batch by
  batch on "a rank still has a batch", which a padding rank always has, so an epoch ran for the least
  common multiple of the ranks' counts instead of the largest.
* ``trainer.predict``: Lightning read ``batch_sampler`` off the bare loader and crashed.
* ``even_batches="drop"`` with a sized loader: Lightning stops at ``len()`` and never resumed the
  generator past its last batch, where the dropped samples were counted and logged; a val split with
  fewer samples than ranks (``len()`` 0) was skipped without a word.

The fits reuse ``test_lightning_ddp``'s driver and runner (``_fit``: its own session, killed on timeout).
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_messy_folder
from tests.interop import test_lightning_ddp as base
from tests.interop.test_lightning_ddp import _fit, _rank_epochs, _split_keys, _steps, ds  # noqa: F401 — ds: fixture

pl = pytest.importorskip("lightning.pytorch")
from mmdata.lightning import DataModule  # noqa: E402

UNDER = {"by": "label", "mode": "under"}  # on ``ds``, batch 3: epoch 0 gives the ranks 4 / 4 batches, epoch 1 4 / 3


@pytest.fixture(scope="module")
def even_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train: 3 shards of 8 (2 ranks: 16 / 8 samples, the same every epoch, so the loader is sized); val: 1."""
    root = tmp_path_factory.mktemp("even")
    make_messy_folder(root / "raw", n=25, sizes=((24, 32),), seconds=(0.2, 0.2))
    mmdata.shard(root / "raw", root / "ds", maxcount=8, split="train=0.96,val=0.04", progress=False)
    card = json.loads((root / "ds" / "dataset.json").read_text())
    assert [card["splits"][s]["samples"] for s in ("train", "val")] == [24, 1]
    assert len(card["splits"]["train"]["shards"]) == 3
    return root / "ds"


@pytest.mark.slow
def test_ddp_pad_with_balance_runs_the_largest_ranks_count(ds: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """K is the largest rank's count, not the least common multiple (4 / 3 batches: 4 steps, not 12);
    the short rank repeats its own first batches."""
    raw = [_rank_epochs(ds, monkeypatch, r, 2, even_batches=False, balance=UNDER)[0] for r in (0, 1)]
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert [len(raw[0][e]) for e in (0, 1)] != [len(raw[1][e]) for e in (0, 1)]  # the counts do differ
    proc, records = _fit(ds, tmp_path / "run", 0, "pad", "popen", {"balance": UNDER})
    assert proc.returncode == 0 and "FIT DONE" in proc.stdout, proc.stdout[-4000:]
    for epoch in (0, 1):
        k = max(len(raw[r][epoch]) for r in (0, 1))
        for r in (0, 1):
            steps, own = _steps(records[r], "train", epoch), raw[r][epoch]
            assert len(steps) == k, (epoch, r, len(steps), [len(raw[q][epoch]) for q in (0, 1)])
            assert steps == own + own[: k - len(own)]  # its own batches, then its first ones again


@pytest.mark.slow
def test_ddp_drop_sized_loader_counts_and_logs_what_it_drops(even_ds: Path, tmp_path: Path) -> None:
    """A sized loader (equal shards): Lightning stops at ``len()``; the count and the log come anyway.
    The val split (1 sample, 2 ranks) has no batch for every rank: skipped, and said so."""
    proc, records = _fit(even_ds, tmp_path / "run", 0, "drop", "popen")
    assert proc.returncode == 0 and "FIT DONE" in proc.stdout, proc.stdout[-4000:]
    for epoch in (0, 1):
        steps = {r: _steps(records[r], "train", epoch) for r in (0, 1)}
        assert len(steps[0]) == len(steps[1]) == 3  # 16 and 8 samples in batches of 3: 6 and 3 batches
        ends = [r["dropped"] for rank in (0, 1) for r in records[rank] if r["stage"] == "end" and r["epoch"] == epoch]
        assert ends == [24 - sum(len(b) for r in (0, 1) for b in steps[r])] * 2 == [7] * 2  # on every rank
        assert proc.stdout.count(f"split 'train' epoch {epoch}: dropped 7 samples") == 1, proc.stdout[-4000:]
    assert not any(r["stage"] == "val" for rank in (0, 1) for r in records[rank])
    assert len(re.findall(r"split 'val' epoch \d+: dropped 1 samples", proc.stdout)) == 1, proc.stdout[-4000:]


PREDICT = textwrap.dedent('''
    import json, os, sys
    import lightning.pytorch as pl
    import torch
    from mmdata.lightning import DataModule

    DATA, OUT = sys.argv[1], sys.argv[2]

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 1)

        def predict_step(self, batch, i):
            with open(f"{OUT}/rank{self.global_rank}.jsonl", "a") as f:
                f.write(json.dumps({"stage": "predict", "epoch": 0, "keys": list(batch.keys)}) + "\\n")
            return len(batch)

    if __name__ == "__main__":
        torch.set_num_threads(1)
        if "MASTER_PORT" not in os.environ:  # as in test_lightning_ddp's driver: a store held from here
            store = torch.distributed.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
            os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(store.port),
                              TORCHELASTIC_USE_AGENT_STORE="True")
        dm = DataModule(DATA, batch_size=3, modalities=["label"], predict_split="val")
        strategy = pl.strategies.DDPStrategy(start_method="popen", process_group_backend="gloo")
        trainer = pl.Trainer(strategy=strategy, devices=2, accelerator="cpu", logger=False,
                             enable_progress_bar=False, enable_model_summary=False, default_root_dir=OUT)
        trainer.predict(Tiny(), dm, return_predictions=False)
        print("PREDICT DONE", flush=True)
''')


class _Predict(pl.LightningModule):
    def predict_step(self, batch: mmdata.Batch, batch_idx: int) -> list[str]:
        return list(batch.keys)


def test_predict_one_device_every_sample_once(ds: Path, tmp_path: Path) -> None:
    dm = DataModule(ds, batch_size=3, modalities=["label"], predict_split="val")
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    out = trainer.predict(_Predict(), dm)
    assert Counter(k for keys in out for k in keys) == _split_keys(ds, "val")


@pytest.mark.slow
def test_ddp_predict_every_sample_once(ds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "DRIVER", PREDICT)  # _fit's runner, this driver
    proc, records = _fit(ds, tmp_path / "run", 0, "pad", "popen")
    assert proc.returncode == 0 and "PREDICT DONE" in proc.stdout, proc.stdout[-4000:]
    seen = Counter(k for r in (0, 1) for b in _steps(records[r], "predict", 0) for k in b)
    assert seen == _split_keys(ds, "val")  # every sample once over both ranks, nothing padded
    assert all(_steps(records[r], "predict", 0) for r in (0, 1))  # both ranks predicted (val: shards of 8 and 2)
