"""The DataModule with ``max_duration=`` (batches by duration) under DDP (QA27 C1).

55 FLAC clips of 0.5-2 s sharded with ``maxcount=7`` (7 shards of 7 and one of 6: the usual ``--maxcount``
output) made every deal of the shards give the same batches-per-rank *for a fixed batch_size*, so the train
loader claimed a length from ``batch_size`` while its batches follow the clips' durations: a bare
AssertionError in ``len()`` before the first batch. A duration-batching loader is unsized under DDP (len()
raises TypeError, which Lightning reads as unsized) and the ranks agree batch by batch.
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
from mmdata.testing.media import audio_bytes
from tests.procs_helpers import communicate_or_kill

pytest.importorskip("lightning.pytorch")
from mmdata.lightning import DataModule  # noqa: E402
from tests.interop.ddp_driver import RENDEZVOUS  # noqa: E402

RATE = 8000
BUDGET = 6.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dur")
    raw = root / "raw"
    raw.mkdir()
    for i in range(55):
        (raw / f"{i:06d}.flac").write_bytes(audio_bytes(i, 0.5 + (i % 4) * 0.5, RATE))
        (raw / f"{i:06d}.cls").write_text(str(i % 2), encoding="utf-8")
    mmdata.shard(raw, root / "ds", maxcount=7, split={"train": 1.0}, progress=False)
    card = json.loads((root / "ds" / "dataset.json").read_text())
    assert len(card["splits"]["train"]["shards"]) == 8  # 7 x 7 + 6
    return root / "ds"


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("mode", ["pad", "drop"])
def test_a_duration_batching_loader_is_unsized_under_ddp(clips: Path, monkeypatch: pytest.MonkeyPatch,
                                                          num_workers: int, mode: str) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    dm = DataModule(clips, batch_size=4, seed=0, num_workers=num_workers, max_duration=BUDGET, buckets=3,
                    even_batches=mode)
    train = dm.train_dataloader()
    with pytest.raises(TypeError, match="max_duration"):
        len(train)  # was: AssertionError (a K from batch_size=4)


DRIVER = textwrap.dedent('''
    import json, os, sys
    from datetime import timedelta
    import lightning.pytorch as pl
    import torch
    from mmdata.lightning import DataModule

    DATA, OUT, WORKERS, EVEN = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 1)

        def training_step(self, batch, i):
            with open(f"{OUT}/rank{self.global_rank}.jsonl", "a") as f:
                f.write(json.dumps({"epoch": self.current_epoch, "keys": list(batch.keys)}) + "\\n")
            # a collective per step: ranks with unequal step counts would pair it wrongly (or hang)
            self.trainer.strategy.reduce(torch.tensor(1.0), reduce_op="sum")
            return (self.lin(torch.ones(len(batch.keys), 1)) ** 2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

        def teardown(self, stage):
            if stage == "fit" and torch.distributed.is_initialized():
                torch.distributed.barrier()
                torch.distributed.destroy_process_group()

    if __name__ == "__main__":
''' + RENDEZVOUS + '''        dm = DataModule(DATA, batch_size=4, seed=0, num_workers=WORKERS, max_duration=6.0, buckets=3,
                        even_batches=EVEN)
        strategy = pl.strategies.DDPStrategy(start_method="popen", process_group_backend="gloo",
                                             timeout=timedelta(seconds=120))
        trainer = pl.Trainer(max_epochs=1, strategy=strategy, devices=2, accelerator="cpu", logger=False,
                             enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                             num_sanity_val_steps=0, default_root_dir=OUT)
        trainer.fit(Tiny(), dm)
        print("FIT DONE", flush=True)
''')


@pytest.mark.slow
@pytest.mark.parametrize(("num_workers", "mode"), [(0, "pad")])  # one fit (~40 s): len() is covered per mode above
def test_ddp_fit_with_max_duration_runs_equal_steps(clips: Path, tmp_path: Path, num_workers: int,
                                                    mode: str) -> None:
    out = tmp_path / "run"
    out.mkdir()
    script = out / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(clips), str(out), str(num_workers), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    try:
        stdout, _ = communicate_or_kill(proc, 300)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert proc.returncode == 0 and "FIT DONE" in stdout, stdout[-4000:]
    steps = {r: [json.loads(x)["keys"] for x in (out / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)}
    assert len(steps[0]) == len(steps[1]) > 0
    seen = Counter(k for r in (0, 1) for b in steps[r] for k in b)
    every = {s.key for s in mmdata.open_dataset(clips, split="train", decode=False)}
    if mode == "pad":
        assert set(seen) == every  # every clip; the short rank repeats its first batches
    else:
        assert max(seen.values()) == 1 and set(seen) <= every
