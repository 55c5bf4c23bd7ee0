"""runs.parquet read across folders and reruns (QA round 34), and the report a rerun replaces.

* An ablation whose runs all failed still writes the metric columns (all null, ``double``) and
  ``best_epoch`` / ``cpu_s`` / ``correct_on_test``: ``pyarrow.dataset`` over several folders takes the first
  file's schema, and a folder without ``test_accuracy`` first dropped every metric of the others, silently.
* ``analysed`` says which rows the folder's configuration analyses: after a rerun with another
  configuration the table holds two rows of one (arm, seed), and only one is in the report.
* ``split_train`` / ``split_val`` / ``split_test`` say which splits each run trained, selected and was
  tested on, so k-fold folders read together can be told apart.
* A rerun whose configuration (or code) changed keeps the previous report, summary and figures in
  ``previous/<hex>/`` with the configuration they were written with, and says so; a resume of the same
  configuration keeps them there only until its own report is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.parquet as pq
import pytest

from mmdata.ablate import run
from mmdata.ablate.design import CLASS_COLUMNS
from mmdata.testing import shard_folds

SYN = "mmdata.ablate.testing:synthetic_train"
CUT = {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]}


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shard_folds(tmp_path_factory.mktemp("qa34_folds"))


def _cfg(data: Path, seeds: int = 3, **trainer: Any) -> dict[str, Any]:
    return {"dataset": {"path": str(data)}, "trainer": {"entry": SYN, **trainer}, "seeds": seeds,
            "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": CUT}}, "controls": {"identity": False}}


def _quiet(**kw: Any) -> dict[str, Any]:
    return {"workers": 1, "progress": False, "plots": False, "on_warning": kw.pop("said", [].append), **kw}


def test_a_folder_whose_runs_all_failed_keeps_the_metric_columns(tmp_path: Path, folds: Path) -> None:
    bundled = {"dataset": {"path": str(folds)}, "trainer": {"epochs": 1, "batch_size": 16, "eval_robustness": False},
               "seeds": 2, "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": CUT}},
               "controls": {"identity": False}}
    s = run(bundled, tmp_path / "failed", run_timeout=0.001, val_split="3", test_split="4", **_quiet())
    assert s["runs"]["ok"] == 0 and len(s["failures"]) == 4
    schema = pq.read_schema(tmp_path / "failed" / "runs.parquet")
    for c in (*CLASS_COLUMNS, "wall_s", "cpu_s"):
        assert schema.field(c).type == pa.float64(), c
    assert schema.field("best_epoch").type == pa.int64() and schema.field("correct_on_test").type == pa.string()
    # the other folder: runs that succeeded (any trainer returning test_accuracy)
    run(_cfg(folds, seeds=2), tmp_path / "ok", **_quiet())
    t = pds.dataset([str(tmp_path / "failed" / "runs.parquet"), str(tmp_path / "ok" / "runs.parquet")]).to_table()
    ok = [r for r in t.to_pylist() if r["status"] == "ok"]
    assert len(ok) == 4 and all(r["test_accuracy"] is not None for r in ok)
    # the bundled trainer's split roles, also for a failed run
    failed = pq.read_table(tmp_path / "failed" / "runs.parquet").to_pylist()
    assert {(r["split_train"], r["split_val"], r["split_test"]) for r in failed} == {("1,2", "3", "4")}


def test_k_fold_folders_read_together_say_their_splits(tmp_path: Path, folds: Path) -> None:
    for val, test in (("3", "4"), ("4", "3")):
        run(_cfg(folds), tmp_path / f"fold{test}", val_split=val, test_split=test, **_quiet())
    t = pds.dataset([str(tmp_path / "fold4" / "runs.parquet"), str(tmp_path / "fold3" / "runs.parquet")]).to_table()
    rows = t.to_pylist()
    assert {(r["split_val"], r["split_test"]) for r in rows} == {("3", "4"), ("4", "3")}
    assert len({(r["arm"], r["seed"], r["split_test"]) for r in rows}) == len(rows) == 12
    # a trainer given no split options: null (the trainer's own choice)
    run(_cfg(folds, seeds=2), tmp_path / "plain", **_quiet())
    plain = pq.read_table(tmp_path / "plain" / "runs.parquet")
    assert plain.schema.field("split_test").type == pa.string()
    assert set(plain.column("split_test").to_pylist()) == {None}


def test_a_rerun_with_another_configuration_marks_the_analysed_rows_and_keeps_the_report(tmp_path: Path,
                                                                                          folds: Path) -> None:
    out = tmp_path / "abl"
    run(_cfg(folds), out, **_quiet())
    old = {n: (out / n).read_bytes() for n in ("report.md", "summary.json", "paired.csv", "config.resolved.yaml")}
    first = pq.read_table(out / "runs.parquet")
    assert first.schema.field("analysed").type == pa.bool_() and all(first.column("analysed").to_pylist())
    said: list[str] = []
    s = run(_cfg(folds, sleep=0.0), out, max_runs=2, **_quiet(said=said.append))  # a trainer option changed
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    analysed = [r for r in rows if r["analysed"]]
    assert len(rows) == 8 and len(analysed) == 2 and s["runs"]["stale_rows_not_analysed"] == 6
    assert len({(r["arm"], r["seed"]) for r in analysed}) == len(analysed)
    assert len({r["config_hash"] for r in rows if not r["analysed"]}) == 6
    # the verdicts of the first configuration are still there, with the configuration they were written with
    kept = [p for p in (out / "previous").iterdir()]
    assert len(kept) == 1
    for name, data in old.items():
        assert (kept[0] / name).read_bytes() == data, name
    assert any(f"previous/{kept[0].name}" in w and "report" in w for w in said)
    assert "Incomplete" in (out / "report.md").read_text(encoding="utf-8")
    # finishing the new configuration: its report in the folder, the old one still kept
    run(_cfg(folds, sleep=0.0), out, **_quiet())
    assert [p.name for p in (out / "previous").iterdir()] == [kept[0].name]
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert sum(r["analysed"] for r in rows) == 6 and len(rows) == 12


def test_a_resume_of_the_same_configuration_keeps_the_report_aside_only_until_its_own(tmp_path: Path,
                                                                                      folds: Path) -> None:
    out = tmp_path / "abl"
    run(_cfg(folds), out, max_runs=2, **_quiet())
    before = (out / "report.md").read_bytes()

    calls = {"n": 0}

    def stops(data: Any, **kw: Any) -> dict[str, Any]:  # Ctrl-C during the resume's second run
        from mmdata.ablate.testing import synthetic_train

        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return synthetic_train(data, **kw)

    with pytest.raises(KeyboardInterrupt):
        run(_cfg(folds), out, train_fn=stops, **_quiet())
    # interrupted: the last report is not in the folder (it would describe fewer runs as the latest state) but kept
    assert not (out / "report.md").exists()
    (kept,) = (out / "previous").iterdir()
    assert (kept / "report.md").read_bytes() == before
    run(_cfg(folds), out, **_quiet())
    assert (out / "report.md").is_file() and not (out / "previous").exists()


def test_a_folder_of_an_older_mmdata_keeps_its_report_when_its_runs_train_again(tmp_path: Path, folds: Path) -> None:
    out = tmp_path / "old"
    run(_cfg(folds, seeds=2), out, **_quiet())
    report = (out / "report.md").read_bytes()
    # as an mmdata before runs recorded their code (nor analysed / the split columns) wrote it: its hashes are others
    t = pq.read_table(out / "runs.parquet")
    t = t.drop([c for c in ("code", "analysed", "split_train", "split_val", "split_test") if c in t.schema.names])
    t = t.set_column(t.schema.get_field_index("config_hash"), "config_hash",
                     pa.array([f"{i:016x}" for i in range(t.num_rows)]))
    pq.write_table(t, out / "runs.parquet")
    said: list[str] = []
    run(_cfg(folds, seeds=2), out, max_runs=1, **_quiet(said=said.append))
    (kept,) = (out / "previous").iterdir()
    assert (kept / "report.md").read_bytes() == report
    assert any("previous report" in w and f"previous/{kept.name}/" in w for w in said)
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert sorted(r["analysed"] for r in rows) == [False] * 4 + [True]
