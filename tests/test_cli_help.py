"""``mmdata CMD --help`` is complete at any terminal width: typer's rich tables cut long option names
and values with "…" below ~110 columns, so narrower terminals get click's plain, wrapped help."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COMMANDS = ["shard", "augment", "train", "ablate"]


def _help(command: str, columns: int) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "dumb"}
    env.pop("TYPER_USE_RICH", None)
    out = subprocess.run([sys.executable, "-m", "mmdata.cli.main", command, "--help"], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout


@pytest.mark.parametrize("columns", [80, 160])
def test_help_cuts_nothing(columns: int) -> None:
    texts = {c: _help(c, columns) for c in COMMANDS}
    for command, text in texts.items():
        assert "…" not in text, f"mmdata {command} --help at {columns} columns"
    shard = " ".join(texts["shard"].split())  # wrapping aside
    for whole in ("--labels-from-folders", "--no-labels-from-folders", "train=0.8,val=0.1,test=0.1",
                  "PNG/JPEG/FLAC/WAV"):
        assert whole in shard, f"{whole!r} at {columns} columns"
    assert "--augment-split" in texts["augment"]
