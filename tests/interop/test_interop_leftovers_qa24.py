"""Two interop leftovers of QA round 24.

* A Hugging Face ``label`` column of bools (or a ``text`` column of ints) lost its conventional role in
  silence: the values went to the ``.json`` member, ``inspect`` showed no labels and a loader batch had no
  ``label`` field, with no warning. Now the report warns, naming the column, its feature and how to give
  it the role; the values stay metadata (as a JSON / Parquet manifest's bool label is no class either).
* Under DDP with ``even_batches="drop"`` and Lightning's ``limit_train_batches`` the DataModule logged
  ``every rank stops at 10 batches`` while each rank ran 5: the log now says the drop is counted against
  the whole epoch and that Lightning's limit stopped it earlier.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mmdata
from mmdata import ShardWarning
from mmdata.testing import make_messy_folder
from tests.procs_helpers import communicate_or_kill

datasets = pytest.importorskip("datasets")
from datasets import ClassLabel, Dataset, Value  # noqa: E402


# ---- 1: conventionally named columns of another type ---------------------------------------------
def test_bool_label_column_is_kept_as_metadata_with_a_warning(tmp_path: Path) -> None:
    ds = Dataset.from_dict({"id": [1, 2, 3, 4], "text": ["a b", "c d", "e", "f g"],
                            "label": [True, False, True, False]})
    with pytest.warns(ShardWarning, match="label") as caught:
        report = mmdata.shard(ds, tmp_path / "out", progress=False)
    said = [w for w in report["warnings"] if "'label'" in w]
    assert len(said) == 1, report["warnings"]
    assert "bool" in said[0] and "ClassLabel" in said[0] and "cast_column" in said[0] and "metadata" in said[0]
    assert any("'label'" in str(w.message) for w in caught)
    # kept, as before: the values are in the .json member, and the text still is text
    loader = mmdata.loader(tmp_path / "out", split="train", batch_size=4, shuffle=False)
    batch = next(iter(loader))
    assert "text" in batch and "label" not in batch
    assert sorted(m["label"] for m in batch["json"]) == [False, False, True, True]


def test_int_text_column_is_kept_as_metadata_with_a_warning(tmp_path: Path) -> None:
    ds = Dataset.from_dict({"text": [10, 20, 30, 40], "label": [0, 1, 0, 1]})
    with pytest.warns(ShardWarning, match="text"):
        report = mmdata.shard(ds, tmp_path / "out", progress=False)
    said = [w for w in report["warnings"] if "'text'" in w]
    assert len(said) == 1, report["warnings"]
    assert "int64" in said[0] and "cast_column" in said[0] and "Value('string')" in said[0]
    assert report["splits"] == {"train": 4}


def test_a_label_column_cast_to_classlabel_is_the_label_without_a_warning(tmp_path: Path) -> None:
    ds = Dataset.from_dict({"text": ["a b", "c d", "e", "f g"], "label": [True, False, True, False]})
    ds = ds.cast_column("label", ClassLabel(names=["False", "True"]))
    report = mmdata.shard(ds, tmp_path / "out", progress=False)
    assert report["warnings"] == []
    batch = next(iter(mmdata.loader(tmp_path / "out", split="train", batch_size=4, shuffle=False)))
    assert sorted(batch["label"].tolist()) == [0, 0, 1, 1]


def test_no_warning_for_ordinary_metadata_or_a_column_mapped_elsewhere(tmp_path: Path) -> None:
    ds = Dataset.from_dict({"caption": ["a b", "c d"], "flag": [True, False], "score": [1, 2]})
    report = mmdata.shard(ds, tmp_path / "a", progress=False)
    assert report["warnings"] == []
    # `text` mapped away from the role on purpose: a second string column chosen as the text
    ds = Dataset.from_dict({"text": [1, 2], "caption": ["a b", "c d"]}).cast_column("text", Value("int32"))
    report = mmdata.shard(ds, tmp_path / "b", progress=False, columns={"text": "caption"})
    assert report["warnings"] == []


# ---- 2: even_batches="drop" under Lightning's limit_train_batches ---------------------------------
from tests.interop.ddp_driver import RENDEZVOUS  # noqa: E402

DRIVER = textwrap.dedent('''
    import json, os, sys
    from datetime import timedelta
    import lightning.pytorch as pl
    import torch
    from mmdata.lightning import DataModule

    DATA, OUT, TRAINER = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(1, 1)

        def _write(self, stage, batch):
            with open(f"{OUT}/rank{self.global_rank}.jsonl", "a") as f:
                f.write(json.dumps({"stage": stage, "epoch": self.current_epoch, "keys": list(batch.keys)}) + "\\n")

        def training_step(self, batch, i):
            self._write("train", batch)
            return (self.lin(batch["label"].float()[:, None]) ** 2).mean()

        def validation_step(self, batch, i):
            self._write("val", batch)

        def test_step(self, batch, i):
            self._write("test", batch)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

        def teardown(self, stage):
            if stage == LAST and torch.distributed.is_initialized():  # after the driver's last stage
                torch.distributed.barrier()
                torch.distributed.destroy_process_group()

    if __name__ == "__main__":
''' + RENDEZVOUS + '''        strategy = pl.strategies.DDPStrategy(start_method="popen", process_group_backend="gloo",
                                             timeout=timedelta(seconds=120))
        trainer = pl.Trainer(max_epochs=2, strategy=strategy, devices=2, accelerator="cpu", logger=False,
                             enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                             default_root_dir=OUT, **{"limit_val_batches": 0, "num_sanity_val_steps": 0, **TRAINER})
        # val / test read the train split again (3 shards of 8 dealt to 2 ranks in order: 16 / 8 samples)
        evals = {"val_split": "train", "test_split": "train"} if TRAINER.get("limit_val_batches") else {}
        LAST = "test" if evals else "fit"
        dm = DataModule(DATA, batch_size=2, seed=0, num_workers=0, modalities=["label"], even_batches="drop",
                        **evals)
        model = Tiny()
        trainer.fit(model, dm)
        print("FIT DONE", flush=True)
        if evals:
            trainer.test(model, dm, verbose=False)
            print("TEST DONE", flush=True)
''')


@pytest.fixture(scope="module")
def three_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train: 3 shards of 8 (2 ranks: 16 / 8 samples every epoch, so the loader is sized: batches of 2 give
    8 / 4 batches, every rank stops at 4 and 8 samples of the 24 are dropped)."""
    root = tmp_path_factory.mktemp("drop")
    make_messy_folder(root / "raw", n=24, sizes=((24, 32),), seconds=(0.2, 0.2))
    mmdata.shard(root / "raw", root / "ds", maxcount=8, progress=False, labels_from_folders=False)
    return root / "ds"


def _fit(data: Path, out: Path, trainer: dict) -> tuple[subprocess.CompletedProcess, dict[int, list[dict]]]:
    out.mkdir()
    (out / "driver.py").write_text(DRIVER)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(out / "driver.py"), str(data), str(out), json.dumps(trainer)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    stdout, _ = communicate_or_kill(proc, 300)  # past it: the driver and its ranks are killed as a group
    records = {int(p.stem[4:]): [json.loads(line) for line in p.read_text().splitlines()]
               for p in out.glob("rank*.jsonl")}
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, None), records


@pytest.mark.slow
def test_ddp_drop_log_says_what_ran_under_limit_train_batches(three_shards: Path, tmp_path: Path) -> None:
    pytest.importorskip("lightning.pytorch")
    proc, records = _fit(three_shards, tmp_path / "limited", {"limit_train_batches": 2})
    assert proc.returncode == 0 and "FIT DONE" in proc.stdout, proc.stdout[-4000:]
    for epoch in (0, 1):
        assert [sum(r["epoch"] == epoch and r["stage"] == "train" for r in records[rank]) for rank in (0, 1)] == [2, 2]
        lines = [ln for ln in proc.stdout.splitlines() if f"split 'train' epoch {epoch}: dropped" in ln]
        assert len(lines) == 1, proc.stdout[-4000:]
        # the count is the whole epoch's; the log says so, and that the trainer's limit stopped every rank sooner
        assert "dropped 8 samples" in lines[0] and "every rank stops at 4 batches" in lines[0], lines[0]
        assert "limit_train_batches" in lines[0] and "2 batches per rank" in lines[0], lines[0]
    # without a limit the log stays as it was: every rank ran the 4 batches it names
    proc, records = _fit(three_shards, tmp_path / "full", {})
    assert proc.returncode == 0 and "FIT DONE" in proc.stdout, proc.stdout[-4000:]
    assert [sum(r["epoch"] == 0 and r["stage"] == "train" for r in records[rank]) for rank in (0, 1)] == [4, 4]
    (line,) = [ln for ln in proc.stdout.splitlines() if "split 'train' epoch 0: dropped" in ln]
    assert "dropped 8 samples" in line and "every rank stops at 4 batches" in line and "limit" not in line, line


@pytest.mark.slow
def test_ddp_drop_log_of_val_and_test_says_what_the_trainers_limits_ran(three_shards: Path, tmp_path: Path) -> None:
    """The known limit of the twenty-fourth round: val / test under ``limit_val_batches`` /
    ``limit_test_batches`` (and the sanity check's ``num_sanity_val_steps``) logged "every rank stops at 4
    batches" while each rank ran fewer."""
    pytest.importorskip("lightning.pytorch")
    trainer = {"limit_train_batches": 1, "limit_val_batches": 3, "limit_test_batches": 2, "num_sanity_val_steps": 1}
    proc, records = _fit(three_shards, tmp_path / "evals", trainer)
    assert proc.returncode == 0 and "TEST DONE" in proc.stdout, proc.stdout[-4000:]
    # per rank: val = the sanity batch + 2 epochs x 3, test = 2 (of the 4 batches each rank would have)
    for stage, ran in (("val", 1 + 2 * 3), ("test", 2), ("train", 2 * 1)):
        assert [sum(r["stage"] == stage for r in records[rank]) for rank in (0, 1)] == [ran, ran], stage
    lines = [ln for ln in proc.stdout.splitlines() if "split 'train' epoch" in ln and "dropped 8 samples" in ln]
    # 2 train epochs, the sanity pass, 2 val passes, 1 test pass: each says the trainer's own cap
    said = sorted(ln.split("the trainer's ")[1].split(" batches per rank")[0] for ln in lines)
    assert said == ["limit_test_batches ends it at 2", "limit_train_batches ends it at 1",
                    "limit_train_batches ends it at 1", "limit_val_batches ends it at 3",
                    "limit_val_batches ends it at 3", "num_sanity_val_steps ends it at 1"], lines
