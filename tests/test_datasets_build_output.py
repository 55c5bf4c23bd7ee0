"""``mmdata datasets build`` writes into OUT as ``mmdata shard`` does: a folder holding someone's files and no
mmdata dataset is refused, naming them, before anything is generated (QA round 22: it wrote its shards among
them, replacing a ``train-000000.tar`` of theirs); ``--force`` / ``force=True`` writes anyway; a dataset
folder is rebuilt as before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmdata.datasets.avdigits import build
from mmdata.errors import SourceError

REPO = Path(__file__).resolve().parents[1]


def test_a_foreign_folder_is_refused_and_kept(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train-000000.tar").write_bytes(b"theirs")
    with pytest.raises(SourceError, match="train-000000.tar"):
        build(tmp_path / "out", limit=2, progress=False)
    assert (tmp_path / "out" / "train-000000.tar").read_bytes() == b"theirs"
    build(tmp_path / "ds", limit=2, progress=False)
    build(tmp_path / "ds", limit=2, progress=False)  # its own dataset: rebuilt (up to date)


def test_the_cli_refuses_it_and_force_writes(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "mmdata.cli.main", "datasets", "build", "avdigits", str(tmp_path / "out"), "--limit", "2"]
    got = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert got.returncode == 2 and "notes.txt" in got.stderr and "--force" in got.stderr, got.stderr
    got = subprocess.run([*cmd, "--force"], capture_output=True, text=True, env=env, timeout=300)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out" / "dataset.json").is_file() and (tmp_path / "out" / "notes.txt").read_text() == "mine\n"
