"""QA35 review #1: a run cut by its ``--run-timeout`` in the middle of an import poisoned the process it ran in
for every later run with ``-j 1`` (the command's own process) and ``--executor ray`` (a Ray worker): only the local
worker pool replaced its process. Now an in-process executor hands the runs after a damaged one to a fresh worker
process, and a Ray run with a time limit runs in a Ray worker used for that run only (``max_calls=1``).

A real package whose ``__init__`` imports a submodule and then sleeps, the first time only (a marker file): a run
interrupted in that sleep leaves ``pk.sub`` in ``sys.modules`` and a re-imported ``pk`` without its ``sub``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from mmdata.ablate.executor import InlineExecutor

INIT = """import os, time
from .sub import VALUE
_m = os.path.join(os.path.dirname(__file__), "..", "{pkg}_marker")
if not os.path.exists(_m):
    open(_m, "w").close()
    time.sleep(6)
"""
TRAINER = '''
import os

def train(data, recipe=None, seed=0, label_noise=0.0, device="cpu", threads=1, pkg="pk", **kw):
    mod = __import__(pkg)
    return {"test": {"accuracy": float(mod.sub.VALUE), "pid": os.getpid()}}
'''


def _code(root: Path, pkg: str) -> Path:
    (root / pkg).mkdir(parents=True)
    (root / pkg / "__init__.py").write_text(INIT.format(pkg=pkg))
    (root / pkg / "sub.py").write_text("VALUE = 0.75\n")
    (root / "poisontrainer.py").write_text(TRAINER)
    return root


def _task(seed: int, pkg: str, timeout: float | None = 1.0) -> dict[str, Any]:
    # hard_grace_s 1: the limit waits at most 0.5 s for the import in progress (the 6 s sleep is cut)
    return {"arm": "a", "seed": seed, "hash": f"h{seed}", "fingerprint": "f", "data": "unused", "recipe": None,
            "label_noise": 0.0, "entry": "poisontrainer:train", "trainer": {"pkg": pkg}, "hard_grace_s": 1.0,
            **({"timeout_s": timeout} if timeout else {})}


def _forget(pkg: str) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] in (pkg, "poisontrainer")]:
        del sys.modules[name]


def test_inline_runs_after_one_cut_in_an_import_run_in_a_fresh_process(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root = _code(tmp_path / "code", "pk_inline")
    monkeypatch.syspath_prepend(str(root))  # a worker process gets this process's sys.path as PYTHONPATH
    ex, rows = InlineExecutor(), []
    try:
        ex.run([_task(s, "pk_inline") for s in range(3)], rows.append)
        ex.run([_task(3, "pk_inline")], rows.append)  # the runner's next round: still not in this process
    finally:
        ex.close()
        _forget("pk_inline")
    assert [r["status"] for r in rows] == ["failed", "ok", "ok", "ok"], [r.get("error") for r in rows]
    assert rows[0]["error"].startswith("RunTimeout:")
    # was: AttributeError: module 'pk_inline' has no attribute 'sub'
    assert all(r["test_accuracy"] == 0.75 for r in rows[1:])
    assert os.getpid() not in {r["test_pid"] for r in rows[1:]} and len({r["test_pid"] for r in rows[1:]}) == 1


def test_inline_with_a_callable_trainer_says_later_runs_may_be_affected(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A callable (a closure) can only run in this process: the failed row says what the cut may have left."""
    root = _code(tmp_path / "code", "pk_closure")
    monkeypatch.syspath_prepend(str(root))
    import poisontrainer

    def fn(data: Any, **kw: Any) -> dict[str, Any]:
        return poisontrainer.train(data, **kw)

    rows: list[dict[str, Any]] = []
    try:
        InlineExecutor(fn).run([_task(0, "pk_closure"), _task(1, "pk_closure", timeout=None)], rows.append)
    finally:
        _forget("pk_closure")
    assert rows[0]["error"].startswith("RunTimeout:") and "later runs in this process may fail" in rows[0]["error"]
    assert "later runs" not in (rows[1].get("error") or "")


@pytest.mark.ray
def test_a_ray_worker_whose_run_had_a_time_limit_serves_no_other_run(tmp_path: Path, ray_cluster: Any) -> None:
    from mmdata.ablate.ray_executor import RayExecutor

    root = _code(tmp_path / "code", "pk_ray")

    def fn(data: Any, **kw: Any) -> dict[str, Any]:  # shipped by Ray: finds the code where the test wrote it
        sys.path.insert(0, str(root))
        import poisontrainer

        return poisontrainer.train(data, **kw)

    ex, rows = RayExecutor(num_cpus=1, max_concurrent=1, train_fn=fn), []
    try:
        ex.run([_task(s, "pk_ray") for s in range(4)], rows.append)
    finally:
        ex.close()
    rows.sort(key=lambda r: r["seed"])
    assert [r["status"] for r in rows] == ["failed", "ok", "ok", "ok"], [r.get("error") for r in rows]
    assert rows[0]["error"].startswith("RunTimeout:")
    assert len({r["test_pid"] for r in rows[1:]}) == 3  # a fresh Ray worker per run with a time limit
