"""``python -m mmdata.train`` (the DDP entry point torchrun runs) prints the trainer's warnings as
``mmdata train`` does — one ``warning: ...`` line each — not as Python warnings naming
mmdata/train/__main__.py and its source line, which read like a crash site (QA29 docs #3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 samples, 6 in train: one training batch, so the run warns of its BatchNorm statistics."""
    root = tmp_path_factory.mktemp("main_warn")
    make_sample_folder(root / "raw", n=12)
    mmdata.shard(root / "raw", root / "ds", split="train=0.5,val=0.25,test=0.25", seed=0, progress=False)
    return root / "ds"


def _main(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-m", "mmdata.train", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, stdin=subprocess.DEVNULL, timeout=300)


def test_python_m_mmdata_train_prints_each_warning_as_a_line(tiny: Path, tmp_path: Path) -> None:
    res = _main(str(tiny), "--epochs", "1", "--threads", "1", "--no-robustness", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.splitlines() if "BatchNorm" in ln]
    assert len(lines) == 1 and lines[0].startswith("warning: the reported model"), res.stderr
    assert "TrainWarning" not in res.stderr and "__main__.py" not in res.stderr, res.stderr
    assert any("BatchNorm" in w for w in json.loads(res.stdout)["warnings"])  # stdout: the JSON alone


def test_warnings_made_errors_by_the_environment_stay_lines(tiny: Path, tmp_path: Path) -> None:
    """As `mmdata train` under PYTHONWARNINGS=error (common in CI): the run's own warnings are its output."""
    res = _main(str(tiny), "--epochs", "1", "--threads", "1", "--no-robustness", cwd=tmp_path,
                PYTHONWARNINGS="error::UserWarning")
    assert res.returncode == 0, res.stderr[-3000:]
    assert any(ln.startswith("warning: the reported model") for ln in res.stderr.splitlines()), res.stderr
    assert res.stdout.startswith("test accuracy"), res.stdout
