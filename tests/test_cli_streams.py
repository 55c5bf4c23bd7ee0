"""The CLI as scripts use it: stdout holds the command's result, stderr the progress and diagnostics
(`mmdata shard SRC OUT > log` kept the progress bar in the log)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmdata.testing import make_sample_folder


def _mmdata(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mmdata.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_folder(tmp_path_factory.mktemp("streams") / "raw", n=6)


def test_shard_and_augment_progress_goes_to_stderr(raw: Path, tmp_path: Path) -> None:
    res = _mmdata("shard", str(raw), "ds", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "sharding samples" in res.stderr and "sharding samples" not in res.stdout
    assert "wrote" in res.stdout  # the result stays on stdout
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - {op: hflip, p: 0.5}\n")
    res = _mmdata("augment", "ds", "aug", "--recipe", str(recipe), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "sharding samples" not in res.stdout and "━" not in res.stdout


def test_datasets_build_progress_goes_to_stderr(tmp_path: Path) -> None:
    res = _mmdata("datasets", "build", "avdigits", "av", "--limit", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "━" not in res.stdout and "━" in res.stderr
