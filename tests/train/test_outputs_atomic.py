"""The trainer's outputs in a hostile environment (2026-12 QA): a full disk on the way out left a failed
run's metrics.json and predictions.parquet beside the earlier run's model.pt (a traceback, exit 1); an
unwritable --out was found after the last epoch; DataLoader workers that failed (an open-file limit)
trained on nothing and then crashed with a TypeError. ``RLIMIT_FSIZE`` stands in for a full disk."""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.procs_helpers import read_only_to_access

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from mmdata.cli.main import main; main()"]
TRAIN = ["train", "--epochs", "1", "--no-robustness", "--batch-size", "8"]


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _small_files() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))  # model.pt is larger


def test_a_full_disk_leaves_the_earlier_run_whole(avdigits4: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = subprocess.run([*CLI, *TRAIN, str(avdigits4), "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr
    before = _files(out)
    assert set(before) == {"metrics.json", "model.pt", "predictions.parquet"}
    res = subprocess.run([*CLI, *TRAIN, str(avdigits4), "--seed", "1", "--out", str(out), "--json"], cwd=REPO,
                         capture_output=True, text=True, timeout=600, preexec_fn=_small_files)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert "error: cannot write the outputs into" in res.stderr and "File too large" in res.stderr
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2 and "File too large" in doc["error"]
    assert _files(out) == before  # no file of the failed run, no temp file


def test_a_full_disk_writes_no_output_into_a_new_folder(avdigits4: Path, tmp_path: Path) -> None:
    out = tmp_path / "new"
    res = subprocess.run([*CLI, *TRAIN, str(avdigits4), "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                         timeout=600, preexec_fn=_small_files)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert not out.exists() or not list(out.iterdir())


def test_publish_replaces_all_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.errors import MMDataError
    from mmdata.train import outputs

    outputs.publish(tmp_path, {"metrics.json": b"old\n", "model.pt": b"old"})
    real = outputs._write_temp

    def full(path: Path, data: bytes) -> str:
        if path.name == "model.pt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, data)

    monkeypatch.setattr(outputs, "_write_temp", full)
    fd, preds = outputs.make_temp(tmp_path / "predictions.parquet")
    os.close(fd)
    with pytest.raises(MMDataError, match=r"\(model\.pt\): No space left on device"):
        outputs.publish(tmp_path, {"metrics.json": b"new\n", "model.pt": b"new"}, {"predictions.parquet": preds})
    assert _files(tmp_path) == {"metrics.json": b"old\n", "model.pt": b"old"}


def test_an_unwritable_out_is_refused_before_training(avdigits4: Path, tmp_path: Path, mmdata_cli: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only --out failed with `OSError: [Errno 30] Read-only file system` after every epoch."""
    import mmdata.train.loop as loop

    def trained(*a: Any, **k: Any) -> None:
        raise AssertionError("trained before --out was checked")

    monkeypatch.setattr(loop, "setup", trained)
    ro = tmp_path / "ro"
    ro.mkdir()
    read_only_to_access(monkeypatch, ro)
    for out in (ro, ro / "run"):
        code, text = mmdata_cli([*TRAIN, str(avdigits4), "--out", str(out)])
        assert code == 2 and "not writable" in text and str(ro) in text, text


def test_an_epoch_without_a_batch_is_an_error(avdigits4: Path, mmdata_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """DataLoader workers that cannot open their shared memory (`ulimit -n 32`) deliver nothing: the run
    said `epoch 0: loss 0.000  val acc nan` and crashed with `TypeError: Expected state_dict to be dict-like`."""
    import mmdata.train.loop as loop

    monkeypatch.setattr(loop, "_progress", lambda run, batches, what: iter(()))
    code, text = mmdata_cli([*TRAIN, str(avdigits4), "-j", "2", "--cache", "false"])
    assert code == 2 and "TypeError" not in text, text
    assert "epoch 0: the train split has 20 samples but its 2 DataLoader workers (--workers 2) delivered no batch" in text
    assert "Too many open files" in text and "ulimit -n" in text


def test_a_kill_between_the_renames_leaves_no_metrics_beside_mixed_files(tmp_path: Path) -> None:
    """QA on the fix: the renames ran one at a time, metrics.json last, so a run killed between them left the
    new predictions beside the old metrics.json and model.pt, nothing marking the mix. metrics.json is now
    the set's seal: removed before the first rename, so such a folder has none (a rerun writes the set)."""
    from mmdata.train import outputs

    outputs.publish(tmp_path, {"metrics.json": b"old\n", "model.pt": b"old", "predictions.parquet": b"old"})
    script = (f"import os, pathlib; from mmdata.train import outputs\n"
              f"real = os.replace\n"
              f"def dies(a, b):\n"
              f"    real(a, b)\n"
              f"    os._exit(137)  # killed right after the first rename\n"
              f"outputs.os.replace = dies\n"
              f"outputs.publish(pathlib.Path({str(tmp_path)!r}), {{'metrics.json': b'new', 'model.pt': b'new', "
              f"'predictions.parquet': b'new'}})\n")
    assert subprocess.run([sys.executable, "-c", script], cwd=REPO).returncode == 137
    left = {n: b for n, b in _files(tmp_path).items() if n in outputs.OUTPUT_FILES}
    assert "metrics.json" not in left and b"new" in left.values() and b"old" in left.values()
    assert outputs.remove_leftovers(tmp_path)  # the killed run's other temp file: the next run removes it


def test_an_earlier_runs_outputs_this_run_does_not_write_are_removed(tmp_path: Path) -> None:
    """QA on the fix: `train --epochs 0 --pretrain ...` into a folder of a full run left its model.pt and
    predictions.parquet beside the new metrics.json and contrastive.pt."""
    from mmdata.train import outputs

    outputs.publish(tmp_path, {"metrics.json": b"old\n", "model.pt": b"old", "predictions.parquet": b"old"})
    outputs.publish(tmp_path, {"metrics.json": b"new\n", "contrastive.pt": b"new"})
    assert _files(tmp_path) == {"contrastive.pt": b"new", "metrics.json": b"new\n"}
