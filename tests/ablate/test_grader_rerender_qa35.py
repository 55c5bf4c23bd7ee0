"""QA35 grader: re-rendering a hand-in with ``mmdata ablate DIR/config.resolved.yaml --out DIR``.

#1 a hand-edited ``test_accuracy`` that the row's own ``correct_on_test`` contradicts is refused, naming the rows;
#3 the primary metric / δ / seeds fixed when the folder reported cannot be switched by editing config.resolved.yaml;
#5 a folder trained with ``--threads 2`` re-renders without ``--threads`` (no retraining), and a real change of the
   thread count names the old and new values;
#2 an arm renamed in config.resolved.yaml reuses its runs (same config_hash) and says "arm renamed crop -> rotate".

Real bundled-trainer runs on a tiny avdigits, real runs.parquet / summary.json, the CLI where the default matters.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from mmdata.ablate import run
from mmdata.errors import MMDataError

REPORT = ("report.md", "summary.json", "config.resolved.yaml", "runs.parquet")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("qa35grader") / "av", limit=4, progress=False)


def _cfg(data: Path) -> dict[str, Any]:
    return {"dataset": {"path": str(data)},
            "trainer": {"fusion": "concat", "epochs": 1, "batch_size": 16, "eval_robustness": False}, "seeds": 4,
            "design": {"mode": "explicit", "baseline": None,
                       "arms": {"crop": {"image": [{"op": "random_crop", "p": 0.7, "size": [16, 16], "padding": 2,
                                                    "fill": 0}]}}},
            "controls": {"identity": False}}


@pytest.fixture(scope="module")
def handin(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("handin") / "out"
    run(_cfg(tiny), out, workers=1, progress=False, plots=False, on_warning=lambda w: None)
    return out


@pytest.fixture(scope="module")
def handin_threads2(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("handin2") / "th2"
    run(_cfg(tiny), out, workers=1, threads=2, progress=False, plots=False, on_warning=lambda w: None)
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _files(out: Path) -> dict[str, bytes]:
    return {n: (out / n).read_bytes() for n in REPORT}


def _rerender(out: Path, **kw: Any) -> tuple[dict[str, Any], list[str]]:
    said: list[str] = []
    s = run(out / "config.resolved.yaml", out, workers=1, progress=False, plots=False, on_warning=said.append, **kw)
    return s, said


def _finished(out: Path) -> dict[tuple[str, int], str]:
    return {(r["arm"], r["seed"]): r["finished_at"] for r in pq.read_table(out / "runs.parquet").to_pylist()}


def test_a_hand_edited_accuracy_the_row_bits_contradict_is_refused(handin: Path, tmp_path: Path) -> None:
    out = _copy(handin, tmp_path / "tamp1")
    t = pq.read_table(out / "runs.parquet").to_pandas()
    genuine = t.set_index(["arm", "seed"])["test_accuracy"].to_dict()
    t.loc[t.arm == "crop", "test_accuracy"] += 0.2
    t.to_parquet(out / "runs.parquet")
    before = _files(out)
    with pytest.raises(MMDataError) as err:
        _rerender(out)
    msg = str(err.value)
    assert msg.startswith(f"{out}/runs.parquet row crop/0: test_accuracy {genuine[('crop', 0)] + 0.2:.6g} but "
                          f"correct_on_test says {genuine[('crop', 0)]:.6g} (")
    assert "— edited?" in msg and "row crop/1" in msg and "row crop/2" in msg and "baseline/" not in msg
    assert "nothing was analysed or written" in msg and "Restore runs.parquet" in msg
    assert _files(out) == before and not (out / "previous").exists()  # the student's report stays as it was
    # the CLI: one error line, exit 2
    proc = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "ablate", str(out / "config.resolved.yaml"), "--out",
                           str(out), "-j", "1"], capture_output=True, text=True, timeout=300, env=os.environ.copy())
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("warning:") and not ln.startswith("  ")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: ") and "row crop/0: test_accuracy" in proc.stderr, proc.stderr
    assert _files(out) == before


def test_the_untouched_folder_re_renders_without_training(handin: Path, tmp_path: Path) -> None:
    out = _copy(handin, tmp_path / "same")
    before = _finished(out)
    s, said = _rerender(out)
    assert _finished(out) == before and s["runs"]["ok"] == 8
    assert not any("another configuration" in w or "edited" in w for w in said), said


@pytest.mark.parametrize("edit, refused", [
    (lambda c: c.update(metric={"name": "test.macro_f1", "higher_is_better": True, "scale": 100.0,
                                "label": "macro-F1 (points)"}),
     r"^metric: .*primary metric 'test.accuracy' fixed in advance.*config.resolved.yaml was edited after the report: "
     r"it gives metric: test.macro_f1 \(summary.json reported test.accuracy\)"),
    (lambda c: c.update(delta=20.0),
     r"^delta: .*with delta = the default .*fixed in advance.*changing it to 20 .*edited after the report: it gives "
     r"delta: 20 \(summary.json reported the default\)"),
    (lambda c: c.update(alpha=0.2), r"^alpha: .*alpha = 0.05 fixed in advance.*alpha: 0.2 \(summary.json reported 0.05\)"),
    (lambda c: c.update(seeds=3), r"already looked at its results under the fixed design \(4 seeds\).*switching to the "
                                  r"fixed design \(3 seeds\).*edited after the report"),
], ids=["metric", "delta", "alpha", "seeds"])
def test_editing_config_resolved_cannot_change_the_plan_the_folder_reported(handin: Path, tmp_path: Path, edit: Any,
                                                                           refused: str) -> None:
    out = _copy(handin, tmp_path / "dave")
    p = out / "config.resolved.yaml"
    c = yaml.safe_load(p.read_text())
    edit(c)
    p.write_text(yaml.safe_dump(c, sort_keys=False))
    before = _files(out)
    with pytest.raises(MMDataError, match=refused):
        _rerender(out)
    assert _files(out) == before and not (out / "previous").exists()


def test_the_original_recipe_still_re_analyses_a_folder_whose_config_was_edited(handin: Path, tiny: Path,
                                                                                tmp_path: Path) -> None:
    """The reported plan is the folder's: the recipe that made it is no change, whatever the edited file says."""
    out = _copy(handin, tmp_path / "edited")
    p = out / "config.resolved.yaml"
    c = yaml.safe_load(p.read_text())
    c["delta"] = 20.0
    p.write_text(yaml.safe_dump(c, sort_keys=False))
    before = _finished(out)
    s = run(_cfg(tiny), out, workers=1, progress=False, plots=False)
    assert _finished(out) == before and s["delta"]["source"].startswith("default") and s["primary_metric"]["name"] == "test.accuracy"


def test_a_threads_2_folder_re_renders_without_threads(handin_threads2: Path, tmp_path: Path) -> None:
    out = _copy(handin_threads2, tmp_path / "th2b")
    assert yaml.safe_load((out / "config.resolved.yaml").read_text())  # re-run as the docs say: the file alone
    before, summary = _finished(out), json.loads((out / "summary.json").read_text())
    from mmdata.cli.main import app

    res = CliRunner().invoke(app, ["ablate", str(out / "config.resolved.yaml"), "--out", str(out), "-j", "1"])
    assert res.exit_code == 0, res.output
    assert "another configuration" not in res.output and "previous" not in res.output, res.output
    assert _finished(out) == before and not (out / "previous").exists()
    again = json.loads((out / "summary.json").read_text())
    assert again["arms"] == summary["arms"] and again["provenance"]["threads_per_run"] == 2


def test_another_thread_count_names_the_old_and_new_values(handin_threads2: Path, tmp_path: Path) -> None:
    out = _copy(handin_threads2, tmp_path / "th1")
    s, said = _rerender(out, threads=1, max_runs=1)
    stale = [w for w in said if "come from another configuration" in w]
    assert stale and "(changed: --threads); --threads 2 -> 1: rerun with --threads 2 to re-analyse them; they are kept" in stale[0], said


def test_a_renamed_arm_reuses_its_runs_and_says_so(handin: Path, tmp_path: Path) -> None:
    out = _copy(handin, tmp_path / "carol")
    p = out / "config.resolved.yaml"
    p.write_text(p.read_text().replace("- name: crop", "- name: rotate"))
    before = _finished(out)
    s, said = _rerender(out)
    after = _finished(out)
    assert {a for a, _ in after} == {"baseline", "rotate"}  # moved, not duplicated
    assert after == {((("rotate" if a == "crop" else a), seed)): t for (a, seed), t in before.items()}  # none trained
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert all(r["analysed"] for r in rows) and len({r["config_hash"] for r in rows}) == len(rows)
    assert [a["name"] for a in s["arms"]] == ["rotate"] and s["runs"]["ok"] == 8
    assert any(w.startswith(f"arm renamed crop -> rotate: its 4 runs in {out}/runs.parquet have this configuration's "
                            "identity (same config_hash") for w in said), said
    assert not any("another configuration (different" in w or "come from another configuration" in w for w in said)
    kept = list((out / "previous").iterdir())  # the report naming 'crop' is kept aside
    assert len(kept) == 1 and b"crop" in (kept[0] / "report.md").read_bytes()
    assert "arm renamed crop -> rotate" in (out / "report.md").read_text()
