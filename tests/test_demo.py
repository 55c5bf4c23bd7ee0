"""The README's main job (`mmdata demo`), in its quick form: builds data, runs the adaptive LOO
ablation with controls on the real trainer, reports."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmdata.ablate.design import AblationWarning
from mmdata.cli.main import app


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--quick", "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    # its warnings are in the JSON, as `mmdata ablate --json` keeps them (they were raw Python warnings on stderr)
    assert s["warnings"] and json.loads(res.stdout)["warnings"] == s["warnings"]
    assert not [w for w in caught if isinstance(w.message, AblationWarning)]
    arms = {a["name"]: a for a in s["arms"]}
    assert {"identity", "label_noise", "-image.cutout", "-sample.modality_dropout"} <= set(arms)
    assert s["design"]["adaptive"] and s["design"]["looks"] == [6, 8, 10]
    # the controls: the A/A arm is never a discovery, the planted harmful arm is found
    assert arms["identity"]["decision"].split(" ")[0] not in ("helps", "hurts")
    assert arms["label_noise"]["decision"] == "hurts" and s["controls"]["verdict"] == "passed"
    report = (tmp_path / "d" / "report.md").read_text()
    assert "What the demo traded" in report and report.splitlines()[2].startswith("> Controls passed")
    for f in ("forest.png", "paired.png", "runs.parquet", "config.resolved.yaml"):
        assert (tmp_path / "d" / f).is_file(), f
    # the finite test split's part of the paired noise, from the bundled trainer's per-example correctness
    noise = s["eval_split_noise"]
    assert noise["n_test"] == 360 and noise["arms"] == 3 and noise["left_out"] == ["label_noise"]  # planted: not pooled
    assert all(a["primary"]["eval_split"]["n_test"] == 360 for a in s["arms"])  # per arm, label_noise too
    assert 0 < noise["sd_test"] < 10 and 0 < noise["share"] and 0 < noise["disagreement"] < 1
    assert "Where the noise comes from: the test split has" in report
    from mmdata.cli.ablate import _print_summary
    from mmdata.cli.common import console

    with console.capture() as cap:  # what `mmdata ablate` prints without --json
        _print_summary(s, tmp_path / "d")
    assert f"noise: {100 * noise['share']:.0f}% of the paired variance is the 360-example test split" in cap.get()
