"""The README's main job (`mmdata demo`), in its quick form: builds data, runs the LOO ablation, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmdata.cli.main import app


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--quick", "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    names = {a["name"] for a in s["arms"]}
    assert {"identity", "label_noise", "-image.cutout", "-sample.modality_dropout"} <= names
    assert s["aa_check"]["false_positive"] is False
    report = (tmp_path / "d" / "report.md").read_text()
    assert "What the demo traded" in report and (tmp_path / "d" / "forest.png").is_file()
