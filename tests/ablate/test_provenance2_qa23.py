"""QA round 23, repro D8 / D9 (a reproducer reading the folder alone): report.md and summary.json say what
produced the analysed runs (mmdata version and revision, code digest, torch / numpy, device, CPU, threads,
when the runs finished, in summary.json and runs.parquet); a rerun into the folder with another recipe keeps
the replaced config.resolved.yaml as ``configs/<sha256[:12]>.yaml``; the folds report lists failures in the
single report's arm order. Synthetic trainer throughout (no training)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import mmdata
from mmdata.ablate import run
from mmdata.ablate.folds import gather
from mmdata.ablate.report import arm_order

# the tiny dataset, the recipe and the quiet run of the first provenance tests (a module-scoped fixture of
# its own here: imported, it is built once for this module)
from tests.ablate.test_provenance_qa23 import CUT, N_RUNS, SYN, _cfg, _run, tiny  # noqa: E402,F401


def _rows(out: Path) -> list[dict[str, Any]]:
    return pq.read_table(out / "runs.parquet").to_pylist()


def _provenance_line(out: Path) -> str:
    return next(line for line in (out / "report.md").read_text().splitlines() if line.startswith("Provenance:"))


# D8 -----------------------------------------------------------------------------------------------
def test_report_and_summary_say_what_produced_the_runs(tmp_path: Path, tiny: Path) -> None:
    import numpy
    import torch

    out = tmp_path / "a"
    s = _run(_cfg(tiny), out)
    env = json.loads((out / "env.json").read_text())
    rows = _rows(out)
    assert pq.read_schema(out / "runs.parquet").field("finished_at").type == pa.string()
    stamps = [datetime.fromisoformat(r["finished_at"]) for r in rows]
    assert all(t.utcoffset() is not None and t.utcoffset().total_seconds() == 0 for t in stamps)  # UTC
    p = s["provenance"]
    assert p["mmdata"] == mmdata.__version__ and p["torch"] == torch.__version__ and p["numpy"] == numpy.__version__
    assert p["git_revision"] == env["git_revision"] and p["git_dirty"] == env["git_dirty"]
    assert p["code"] == env["code"] and p["codes"] == {env["code"]: N_RUNS}
    assert p["device"] == "cpu" and p["threads_per_run"] == env["threads_per_run"] and p["cpu"] == env["cpu"]
    assert p["cores"] == env["cores"] and p["environments"] == 1
    assert p["first_finished_at"] == min(r["finished_at"] for r in rows)
    assert p["last_finished_at"] == max(r["finished_at"] for r in rows) and p["runs_without_time"] == 0
    assert json.loads((out / "summary.json").read_text())["provenance"] == p
    line = _provenance_line(out)
    assert f"mmdata {mmdata.__version__}" in line and env["code"][:12] in line and f"torch {torch.__version__}" in line
    assert f"numpy {numpy.__version__}" in line and "cpu" in line and "thread" in line
    if env["git_revision"]:
        assert env["git_revision"][:7] in line
    # the dates are in summary.json and runs.parquet, not in report.md: reruns stay byte-identical
    assert p["first_finished_at"][:10] not in line


def test_the_report_is_the_same_for_two_runs_of_one_configuration(tmp_path: Path, tiny: Path) -> None:
    _run(_cfg(tiny), tmp_path / "a")
    _run(_cfg(tiny), tmp_path / "b", workers=2)
    # all but the mean wall / CPU seconds, the one line that measures time
    text = [re.sub(r"\(\d+\.\d s wall, \d+\.\d s CPU per run on average\)", "(time)", (tmp_path / f / "report.md").read_text())
            for f in ("a", "b")]
    assert "Provenance:" in text[0] and text[0] == text[1]


def test_a_re_render_keeps_the_provenance_of_the_runs(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "r"
    first = _run(_cfg(tiny), out)
    again = _run(out / "config.resolved.yaml", out)
    assert again["provenance"] == first["provenance"]


def test_runs_of_older_rows_and_several_codes_are_counted(tmp_path: Path, tiny: Path) -> None:
    """Rows without finished_at (an older mmdata) count as unknown; runs of more than one code digest say so."""
    from mmdata.ablate.runner import provenance

    rows = [{"code": "a" * 64, "finished_at": "2026-12-01T10:00:00+00:00", "status": "ok"},
            {"code": "a" * 64, "finished_at": None, "status": "ok"},
            {"code": "b" * 64, "finished_at": "2026-12-03T10:00:00+00:00", "status": "ok"}]
    env = {"mmdata": "0.1.0", "code": "b" * 64, "environments": [{"code": "a" * 64, "cpu": "A|B", "runs": 2},
                                                                 {"code": "b" * 64, "cpu": "C", "runs": 1}]}
    p = provenance(rows, env)
    assert p["codes"] == {"a" * 64: 2, "b" * 64: 1} and p["environments"] == 2
    assert p["first_finished_at"].startswith("2026-12-01") and p["last_finished_at"].startswith("2026-12-03")
    assert p["runs_without_time"] == 1


def test_the_provenance_line_escapes_what_the_machine_names(tmp_path: Path) -> None:
    from mmdata.ablate.report import provenance_text

    text = provenance_text({"mmdata": "0.1.0", "git_revision": "abcdef0123", "git_dirty": True, "code": "c" * 64,
                            "codes": {"c" * 64: 3, "d" * 64: 2}, "torch": "2.4", "numpy": "2.0", "device": "cpu",
                            "cpu": "[x](javascript:alert(1)) <b>", "cores": 4, "threads_per_run": 1, "environments": 2})
    assert not re.search(r"(?<!\\)\]\(javascript", text) and "\\<b>" in text
    assert "uncommitted" in text and "abcdef0" in text
    assert "cccccccccccc (3 runs)" in text and "dddddddddddd (2 runs)" in text and "2 environments" in text


# D9 -----------------------------------------------------------------------------------------------
def test_a_replaced_configuration_is_kept_under_configs(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "i"
    _run(_cfg(tiny), out)
    old = (out / "config.resolved.yaml").read_bytes()
    name = f"configs/{hashlib.sha256(old).hexdigest()[:12]}.yaml"
    other = {"seed": 0, "image": [{"op": "cutout", "p": 0.3}]}
    said: list[str] = []
    s = _run(_cfg(tiny, design={"mode": "explicit", "baseline": None, "arms": {"cutout": other}}), out, said)
    assert s["runs"]["stale_rows_not_analysed"] > 0
    assert (out / name).read_bytes() == old
    assert yaml.safe_load((out / "config.resolved.yaml").read_bytes()) != yaml.safe_load(old)
    msg = next(m for m in said if "come from another configuration" in m)
    assert name in msg
    # once: a rerun of the new configuration does not touch it, nor keeps the one it does not replace
    before = sorted(p.name for p in (out / "configs").iterdir())
    _run(out / "config.resolved.yaml", out)
    assert sorted(p.name for p in (out / "configs").iterdir()) == before
    assert not [p for p in (out / "configs").iterdir() if p.name.startswith(".")]  # no temporary left


def test_no_configs_folder_without_stale_rows(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "n"
    _run(_cfg(tiny), out)
    _run(_cfg(tiny), out)
    assert not (out / "configs").exists()


# folds: the Failures table in the single report's arm order ------------------------------------------
def test_folds_failures_follow_the_single_reports_arm_order(tiny: Path, tmp_path: Path) -> None:
    arms = {"a_cut": {"image": [{"op": "cutout", "p": 0.5}]}, "a_flip": {"image": [{"op": "hflip", "p": 0.5}]}}
    cfg = {"dataset": {"path": str(tiny)}, "seeds": 5, "controls": {"identity": False},
           "trainer": {"entry": SYN, "fail": {"seeds": [4]}},
           "design": {"mode": "explicit", "baseline": None, "arms": arms}}
    outs = [tmp_path / f"f{k}" for k in (1, 2)]
    for k, o in enumerate(outs, start=1):
        run(cfg, o, workers=1, progress=False, plots=False, test_split=str(k), on_warning=lambda m: None)
    s = gather(outs, tmp_path / "pooled", plots=False)
    names = [s["baseline"], *(a["name"] for a in arm_order(s["arms"], s["primary_metric"]["higher_is_better"]))]
    text = (tmp_path / "pooled" / "report.md").read_text()
    table = text.split("## Failures", 1)[1].split("\n\n")[1].splitlines()[2:]
    got = [tuple(c.strip() for c in re.split(r"(?<!\\)\|", line)[1:3]) for line in table]
    fold_keys = [f["fold"] for f in s["folds"]]
    want = [(k, n) for k in fold_keys for n in names]
    assert [(k, n.replace("\\_", "_")) for k, n in got] == want
