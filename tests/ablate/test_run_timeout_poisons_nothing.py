"""A run that hit its ``--run-timeout`` poisons nothing (QA35 grader #7): the SIGALRM-raised RunTimeout
used to land in the middle of torch's lazy ``import torch._dynamo`` / sympy, leaving a half-imported
package in the worker's ``sys.modules``; every later run in that worker failed with a bogus
``AttributeError: module 'sympy' has no attribute 'core'``. Now the limit waits for an import in progress
to finish (briefly), and a worker whose run ended with a RunTimeout (any BaseException) is replaced.

Real worker processes and a real slow import: a package written here whose ``__init__`` imports names from
a submodule (``from .sub import VALUE``, as sympy does) and then sleeps. Interrupted in that sleep, the
package leaves ``slowpkg.sub`` in ``sys.modules`` but a re-import of ``slowpkg`` lacks the ``sub`` attribute.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mmdata.ablate.executor import ProcessExecutor, run_task

TRAINER = '''
import os, time

def train(data, recipe=None, seed=0, label_noise=0.0, device="cpu", threads=1, pkg="slowpkg", hang=0.0, **kw):
    if hang:  # plain Python time, no import: the limit interrupts it right away
        time.sleep(hang)
    mod = __import__(pkg)
    return {"test": {"accuracy": float(mod.sub.VALUE), "pid": os.getpid()}}
'''


def _write(root: Path, pkg: str, sleep: float) -> None:
    (root / pkg).mkdir(parents=True)
    (root / pkg / "__init__.py").write_text(f"import time\nfrom .sub import VALUE\ntime.sleep({sleep})\n")
    (root / pkg / "sub.py").write_text("VALUE = 0.75\n")


@pytest.fixture
def code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "code"
    root.mkdir()
    (root / "slowtrainer.py").write_text(TRAINER)
    monkeypatch.syspath_prepend(str(root))  # the workers get this process's sys.path as PYTHONPATH
    return root


def _task(seed: int, **kw: object) -> dict:
    timeout = kw.pop("timeout_s", None)
    return {"arm": "a", "seed": seed, "hash": f"h{seed}", "fingerprint": "f", "data": "unused", "recipe": None,
            "label_noise": 0.0, "entry": "slowtrainer:train", "trainer": kw,
            **({"timeout_s": timeout} if timeout else {})}


def _run_pool(tasks: list[dict]) -> list[dict]:
    ex = ProcessExecutor(1)  # one worker: every run goes to the same process unless it is replaced
    rows: list[dict] = []
    try:
        ex.run(tasks, rows.append)
    finally:
        ex.close()
    return sorted(rows, key=lambda r: r["seed"])


def test_a_timeout_inside_an_import_does_not_break_the_next_run_in_that_worker(code: Path) -> None:
    _write(code, "slowpkg", 2.5)
    rows = _run_pool([_task(0, timeout_s=1.0), _task(1)])
    assert rows[0]["status"] == "failed" and rows[0]["error"].startswith("RunTimeout:"), rows[0]
    assert "1 s (--run-timeout)" in rows[0]["error"]
    # was: AttributeError: module 'slowpkg' has no attribute 'sub'
    assert rows[1]["status"] == "ok" and rows[1]["test_accuracy"] == 0.75, rows[1].get("error")


def test_a_worker_whose_run_timed_out_is_replaced(code: Path) -> None:
    _write(code, "slowpkg", 0.0)
    rows = _run_pool([_task(0), _task(1, hang=30.0, timeout_s=1.0), _task(2), _task(3)])
    assert [r["status"] for r in rows] == ["ok", "failed", "ok", "ok"], [r.get("error") for r in rows]
    assert rows[1]["error"].startswith("RunTimeout:") and "did not stop" not in rows[1]["error"], rows[1]["error"]
    pids = [r.get("test_pid") for r in rows]
    assert pids[0] != pids[2] == pids[3], pids  # a fresh process after the timeout, then kept as usual


def test_in_this_process_the_limit_waits_for_the_import_in_progress(code: Path) -> None:
    """-j 1 runs in the command's own process (no worker to replace): the import must not be cut in half."""
    _write(code, "slowpkg_inline", 2.0)
    try:
        row = run_task(_task(0, pkg="slowpkg_inline", timeout_s=0.5))
        assert row["status"] == "failed" and row["error"].startswith("RunTimeout:"), row
        assert row["wall_s"] < 10
        again = run_task(_task(1, pkg="slowpkg_inline"))
        assert again["status"] == "ok" and again["test_accuracy"] == 0.75, again.get("error")
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] in ("slowpkg_inline", "slowtrainer")]:
            del sys.modules[name]


def test_an_import_that_never_ends_is_still_cut_off(code: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait for an import is bounded: a module stuck at import time still fails the run, soon after the limit."""
    from mmdata.ablate import executor

    monkeypatch.setattr(executor, "IMPORT_GRACE_S", 0.5)
    _write(code, "slowpkg_stuck", 60.0)
    try:
        row = run_task(_task(0, pkg="slowpkg_stuck", timeout_s=0.5))
        assert row["status"] == "failed" and row["error"].startswith("RunTimeout:"), row
        assert row["wall_s"] < 10, row["wall_s"]
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] in ("slowpkg_stuck", "slowtrainer")]:
            del sys.modules[name]
