"""The README's main job (`mmdata demo`) runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app


def test_demo_end_to_end(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--workers", "2", "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert s["verify_ok"] and s["train_samples_read"] == s["inspect"]["per_split"]["train"]
    assert s["first_batch"]["image"][1:] == [3, 24, 32] and len(s["first_batch"]["present"]["audio"]) == 8
