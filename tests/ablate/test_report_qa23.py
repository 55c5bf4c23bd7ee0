"""QA round 23: one arm order in every table of report.md (D7), epoch numbers that read the same way in
one report (D6), and an ablation's worker processes stopped when Ctrl-C (or the CLI's SIGTERM) lands
while they shut down (notebook D2, the executor's part)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from mmdata.ablate import executor as ex_mod
from mmdata.ablate import run
from mmdata.ablate.executor import ProcessExecutor
from mmdata.ablate.report import arm_order

SYN = "mmdata.ablate.testing:synthetic_train"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("qa23") / "av", limit=4, progress=False)


def _table_arms(report: str, header: str) -> list[str]:
    """The arm names of the report.md table whose header line starts with ``header``, top to bottom."""
    lines = report.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(header))
    out = []
    for line in lines[i + 2:]:
        if not line.startswith("|"):
            break
        out.append(line.split("|")[1].strip())
    return out


# D7 ------------------------------------------------------------------------------------------------------------


def test_every_table_lists_the_arms_in_the_reports_one_order(tmp_path: Path, tiny: Path) -> None:
    """The exploratory and alignment tables listed the arms in design order, the confirmatory table, the
    forest and paired plots best mean Δ first: a reader matching rows by position matched the wrong arms."""
    arms = {"noise": {"audio": [{"op": "noise", "p": 1.0}]}, "plain": None,
            "cutout": {"image": [{"op": "cutout", "p": 1.0, "size": [0.6, 0.8]}]}}  # design order: worst first
    cfg = {"dataset": {"path": str(tiny)}, "alignment": {"epochs": 1},
           "trainer": {"entry": SYN, "fail": {"seeds": [3]}}, "seeds": 4,
           "design": {"mode": "explicit", "baseline": None, "arms": arms}, "controls": {"identity": False}}
    s = run(cfg, tmp_path / "out", workers=1, progress=False, plots=False)  # a dict: the arms in this order
    order = [a["name"] for a in arm_order(s["arms"], s["primary_metric"]["higher_is_better"])]
    design = [a["name"] for a in s["arms"]]
    assert order != design, (order, design)  # else the test shows nothing
    report = (tmp_path / "out" / "report.md").read_text()
    assert _table_arms(report, "| arm | seeds | mean Δ") == order  # the confirmatory table
    assert _table_arms(report, "| arm | macro-F1") == order  # Exploratory: other metrics
    assert _table_arms(report, "| arm | alignment Δ") == order  # Alignment Δ per arm
    per_seed = _table_arms(report, "| arm | seed 0")
    assert per_seed[1:] == order  # below the baseline's own row
    # every run of seed 3 failed: the baseline's first, then the arms' in the same order
    assert _table_arms(report, "| arm | seed | error") == [s["baseline"]["name"], *order]


# D6 ------------------------------------------------------------------------------------------------------------


def test_batchnorm_warning_counts_epochs_from_one_as_the_last_epoch_warning_does() -> None:
    import torch

    from mmdata.ablate.report import last_epoch_warning
    from mmdata.train.loop import batchnorm_warnings

    m = torch.nn.Sequential(torch.nn.BatchNorm1d(2))
    m(torch.randn(4, 2))
    assert batchnorm_warnings(m, 1, 2)[0].startswith("the reported model (best epoch 2 of 2) normalises")
    assert batchnorm_warnings(m, 0, 2)[0].startswith("the reported model (best epoch 1 of 2) normalises")
    # no epoch count: the index alone, as `mmdata train` prints it ("best epoch 0 (...)", "epoch 0: loss ...")
    assert batchnorm_warnings(m, 0, None)[0].startswith("the reported model (best epoch 0) normalises")
    assert last_epoch_warning([{"status": "ok", "best_epoch": 1}] * 2, 2)[0].startswith(
        "the best epoch was the last (2 of 2) in 2 of 2 runs")


def test_one_report_says_the_last_epoch_the_same_way_twice(tmp_path: Path, tiny: Path) -> None:
    """Repro D6: the bundled trainer, 2 epochs on a few samples. The BatchNorm warning said "best epoch 1 of 2"
    (0-based) right above "the best epoch was the last (2 of 2)" (1-based) about the same epoch."""
    cfg = {"dataset": {"path": str(tiny)}, "seeds": 2,
           "trainer": {"epochs": 2, "batch_size": 64, "fusion": "late"},
           "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": {"image": [{"op": "cutout", "p": 0.5}]}}},
           "controls": {"identity": False}}
    (tmp_path / "ab.yaml").write_text(yaml.safe_dump(cfg))
    run(tmp_path / "ab.yaml", tmp_path / "out", workers=1, progress=False, plots=False, robustness=False)
    rows = pq.read_table(tmp_path / "out" / "runs.parquet").to_pylist()
    assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    said = [w for r in rows for w in json.loads(r.get("warnings") or "[]") if "BatchNorm" in w]
    assert said, rows  # the tiny data gives 1 batch an epoch
    for r in rows:
        for w in json.loads(r.get("warnings") or "[]"):
            if "BatchNorm" in w:  # runs.parquet's best_epoch stays 0-based; the prose counts from 1
                assert f"(best epoch {r['best_epoch'] + 1} of 2)" in w, (r["best_epoch"], w)
    report = " ".join((tmp_path / "out" / "report.md").read_text().split())
    quoted = re.findall(r"best epoch (\d+) of (\d+)", report)
    assert quoted and all(1 <= int(x) <= int(n) for x, n in quoted), quoted
    if any(r["best_epoch"] == 1 for r in rows):  # the last epoch reads "2 of 2" wherever it is named
        assert "best epoch 0 of 2" not in report


# notebook D2: Executor.close() interrupted --------------------------------------------------------------------


def _ours(pid: int) -> bool:
    """Whether ``pid`` is still a child of this process (running, stopped or an unreaped zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return int(fields[1]) == os.getpid()


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The pids of every worker process started in the test; any left are killed and reaped afterwards."""
    pids: list[int] = []
    init = ex_mod._Worker.__init__

    def record(self: Any, *a: Any, **kw: Any) -> None:
        init(self, *a, **kw)
        pids.append(self.proc.pid)

    monkeypatch.setattr(ex_mod._Worker, "__init__", record)
    yield pids
    for pid in pids:
        if _ours(pid):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _interrupt_close(monkeypatch: pytest.MonkeyPatch, pids: list[int], exc: type[BaseException], times: int = 1) -> list[int]:
    """Make the first ``times`` waits for a worker inside ``close()`` raise ``exc`` (Ctrl-C, SIGTERM) — and,
    at the first, stop (SIGSTOP) the workers still there, as workers slow to exit are: nothing but a kill ends
    them then. Returns the list the calls are counted in."""
    calls: list[int] = []
    wait = subprocess.Popen.wait

    def interrupted(self: subprocess.Popen, *a: Any, **kw: Any) -> Any:
        frames = [f for f in _stack() if f.f_code.co_filename == ex_mod.__file__]
        if frames and any(f.f_code.co_name == "close" for f in frames) and len(calls) < times:
            if not calls:
                for pid in pids:
                    if _ours(pid):
                        os.kill(pid, signal.SIGSTOP)
            calls.append(self.pid)
            raise exc(signal.SIGTERM) if exc is SystemExit else exc()
        return wait(self, *a, **kw)

    monkeypatch.setattr(subprocess.Popen, "wait", interrupted)
    return calls


def _stack() -> Iterator[Any]:
    f = sys._getframe(1)
    while f is not None:
        yield f
        f = f.f_back


def _tasks(data: Path, n: int) -> list[dict[str, Any]]:
    return [{"arm": "a", "seed": s, "hash": "h", "fingerprint": "f", "data": str(data), "recipe": None,
             "label_noise": 0.0, "entry": SYN, "trainer": {}} for s in range(n)]


@pytest.mark.parametrize("exc,times", [(KeyboardInterrupt, 1), (KeyboardInterrupt, 3), (SystemExit, 1)],
                         ids=["ctrl-c", "ctrl-c-thrice", "sigterm"])
def test_an_interrupted_close_still_stops_every_worker_then_reraises(
        monkeypatch: pytest.MonkeyPatch, spawned: list[int], tiny: Path, exc: type[BaseException], times: int) -> None:
    ex = ProcessExecutor(2)
    rows: list[dict[str, Any]] = []
    ex.run(_tasks(tiny, 2), rows.append)
    assert len(rows) == 2 and len(spawned) == 2 and all(_ours(p) for p in spawned)
    calls = _interrupt_close(monkeypatch, spawned, exc, times)
    with pytest.raises(exc):
        ex.close()
    assert calls  # the interrupt did land inside close()
    assert [p for p in spawned if _ours(p)] == []  # killed and reaped: not even a zombie left
    ex.close()  # a second close has nothing left to stop


def test_an_ablation_interrupted_while_its_workers_shut_down_leaves_none(
        monkeypatch: pytest.MonkeyPatch, spawned: list[int], tmp_path: Path, tiny: Path) -> None:
    """Repro notebook D2: Ctrl-C after the last run, while run() stops the pool."""
    from mmdata.ablate.testing import synthetic_recipe

    recipe = synthetic_recipe(tmp_path, tiny, seeds=3)
    _interrupt_close(monkeypatch, spawned, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):  # the runner's own wording of it is its business
        run(recipe, tmp_path / "out", executor=ProcessExecutor(2), progress=False, plots=False)
    assert len(spawned) == 2
    assert [p for p in spawned if _ours(p)] == []
    assert len(pq.read_table(tmp_path / "out" / "runs.parquet")) == 9
