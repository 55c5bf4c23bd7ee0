"""``mmdata train`` on a SLURM cluster (QA round 22, docs/slurm.md): a signal ends it with its status and one
line also while it is blocked in native code (a DDP rendezvous) and when the whole process group is signalled
(DataLoader workers included); a second job into one ``--out`` is refused; ``srun -n 2`` without torch's
variables is warned of; a remote dataset is named by its URL. Real processes, real signals, a real S3
protocol server (tests/conftest.py: ``s3``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder
from tests.procs_helpers import dump_stacks, signal_state

ROOT = Path(__file__).parents[2]
LINE = "mmdata train interrupted by SIGTERM"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("slurm")
    make_sample_folder(root / "raw", n=60)
    mmdata.shard(root / "raw", root / "ds", split="train=0.6,val=0.2,test=0.2", maxcount=8, seed=0, progress=False)
    return root / "ds"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") and not k.startswith("SLURM_")}
    return {**env, "PYTHONFAULTHANDLER": "1", **extra}  # a hang's stacks: tests/procs_helpers.dump_stacks


def _train(args: list[str], err: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mmdata.cli.main", "train", *args], cwd=ROOT, env=_env(**env),
                            stdout=subprocess.DEVNULL, stderr=err.open("wb"), start_new_session=True)


def _wait_for(proc: subprocess.Popen, err: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in err.read_text(errors="replace"):
        assert proc.poll() is None, err.read_text(errors="replace")
        assert time.monotonic() < deadline, f"no {text!r} in {timeout} s: {err.read_text(errors='replace')}"
        time.sleep(0.05)


def test_sigterm_ends_a_rank_blocked_in_its_rendezvous(data: Path, tmp_path: Path) -> None:
    # rank 1 of 2 whose rank 0 never answers: a store that accepts the connection and says nothing
    store = socket.socket()
    store.bind(("127.0.0.1", 0))
    store.listen(4)
    store.settimeout(120)
    err = tmp_path / "err"
    proc = _train([str(data), "--epochs", "1", "--out", str(tmp_path / "o"), "--no-robustness"], err, RANK="1",
                  WORLD_SIZE="2", LOCAL_RANK="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(store.getsockname()[1]))
    try:
        conn, _ = store.accept()  # it is in init_process_group now, blocked in C++
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
        assert time.monotonic() - t0 < 15
        assert LINE in err.read_text(errors="replace")
        conn.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        store.close()


def _group_sigterm_is_143(proc: subprocess.Popen, err: Path, wait: Path, text: str, pause: float = 0.0) -> None:
    """Once ``text`` is in ``wait``, SIGTERM the job's whole process group (as SLURM signals every process of
    the step): status 143 and the one line, no traceback."""
    try:
        _wait_for(proc, wait, text)
        time.sleep(pause)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # what it was doing: its signal state, every thread's stack
            state = signal_state(proc.pid)
            dump_stacks(proc)
            pytest.fail(f"still running 60 s after the group's SIGTERM; its signals: {state}\n"
                        f"{err.read_text(errors='replace')[-6000:]}")
        assert rc == 143, err.read_text(errors="replace")
        said = err.read_text(errors="replace")
        assert LINE in said and "Traceback" not in said, said
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_sigterm_to_the_group_of_train_with_workers_is_always_143(data: Path, tmp_path: Path) -> None:
    for attempt in range(3):
        err = tmp_path / f"err{attempt}"
        proc = _train([str(data), "--epochs", "300", "--out", str(tmp_path / "t"), "--no-robustness", "-j", "2",
                       "--cache", "false", "--batch-size", "8"], err)
        # training, its workers started and ended every epoch
        _group_sigterm_is_143(proc, err, err, f"epoch {attempt}:", pause=0.1 * attempt)


def test_sigterm_to_the_group_during_contrastive_pretraining_is_143(data: Path, tmp_path: Path) -> None:
    """The pre-training loader's workers end quietly on the group's signal too (they had no such handler)."""
    for attempt in range(2):
        err, out = tmp_path / f"perr{attempt}", tmp_path / f"pout{attempt}"
        proc = subprocess.Popen([sys.executable, "-m", "mmdata.cli.main", "train", str(data), "--pretrain", "contrastive",
                                 "--pretrain-epochs", "100000", "--epochs", "1", "--out", str(tmp_path / "p"),
                                 "--no-robustness", "-j", "2", "--cache", "false", "--batch-size", "8"], cwd=ROOT,
                                env=_env(), stdout=out.open("wb"), stderr=err.open("wb"), start_new_session=True)
        _group_sigterm_is_143(proc, err, err, f"pretrain epoch {attempt + 2}:")  # its workers up each epoch (stderr)


def test_a_worker_killed_error_after_the_signal_is_the_signals_status() -> None:
    from mmdata.cli.common import Terminated, stopped_as_exit

    # torch's SIGCHLD handler raised this over the Terminated of the group's SIGTERM (QA: exit 1, a traceback)
    with pytest.raises(SystemExit) as stopped:
        with stopped_as_exit("mmdata train", "rerun it"):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            except Terminated:
                raise RuntimeError("DataLoader worker (pid 12) is killed by signal: Terminated. ") from None
    assert stopped.value.code == 143
    with pytest.raises(RuntimeError, match="killed by signal"):  # no signal here: a worker that died alone
        with stopped_as_exit("mmdata train", "rerun it"):
            raise RuntimeError("DataLoader worker (pid 12) is killed by signal: Terminated. ")


def test_a_second_train_into_one_out_is_refused(data: Path, tmp_path: Path, mmdata_cli) -> None:  # noqa: ANN001
    out = tmp_path / "t_mix"
    err = tmp_path / "err"
    first = _train([str(data), "--epochs", "300", "--out", str(out), "--no-robustness"], err)
    try:
        _wait_for(first, err, "epoch 0:")
        code, text = mmdata_cli(["train", str(data), "--epochs", "1", "--out", str(out), "--no-robustness", "--seed", "1"])
        assert code == 75 and f"{out} is being written by another job (pid {first.pid} on " in text, text  # busy (QA26 F12)
        assert "mmdata train" in text and "write to another folder" in text
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=60)
    assert not (out / ".mmdata-lock").exists()
    code, text = mmdata_cli(["train", str(data), "--epochs", "1", "--out", str(out), "--no-robustness"])
    assert code == 0 and (out / "metrics.json").exists() and not (out / ".mmdata-lock").exists(), text


def test_a_refused_run_into_a_new_folder_leaves_none(data: Path, tmp_path: Path) -> None:
    from mmdata.errors import MMDataError
    from mmdata.train.outputs import out_lock

    out = tmp_path / "new"
    with out_lock(out):
        with pytest.raises(MMDataError, match="is being written by another job"):
            mmdata.train.train(data, epochs=1, out=out, eval_robustness=False)
    assert not out.exists()


def test_srun_tasks_without_world_size_are_warned_of(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.train.loop import slurm_alone

    for k in ("WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"):
        monkeypatch.delenv(k, raising=False)
    assert slurm_alone() is None
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert slurm_alone() is None
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_PROCID", "1")
    line = slurm_alone()
    assert line is not None and line.startswith("SLURM_NTASKS=2 but WORLD_SIZE is not set")
    assert "srun torchrun" in line and "docs/slurm.md" in line and "SLURM_PROCID=1" in line
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert slurm_alone() is None


def test_srun_tasks_warning_in_the_cli(data: Path, tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "train", str(data), "--epochs", "1", "--no-robustness"],
                       cwd=ROOT, env=_env(SLURM_NTASKS="2", SLURM_PROCID="0"), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "warning: SLURM_NTASKS=2 but WORLD_SIZE is not set" in " ".join(p.stderr.split()), p.stderr


def test_a_remote_dataset_is_named_by_its_url(data: Path, s3, mmdata_cli, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
                                              tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    s3.fs.put(str(data), f"{s3.url[5:]}/huge", recursive=True)
    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "cache"))
    code, text = mmdata_cli(["train", f"{s3.url}/huge", "--epochs", "1", "--no-robustness"])
    assert code == 0, text
    assert f"{s3.url}/huge: 3 classes" in text and str(tmp_path / "cache") not in text, text


_PEER_GONE = """
import os, sys, time
from multiprocessing import process, resource_sharer
from multiprocessing.connection import Client
if sys.argv[1] == "worker":
    from mmdata.train.loop import quiet_stop_signals
    quiet_stop_signals(0)
fd = os.open(os.devnull, os.O_RDONLY)
resource_sharer.DupFd(fd)  # a tensor put on the worker's queue: its fd waits in the sharer's thread
# the job's main process connects for it and dies of the group's SIGTERM before it asks
Client(resource_sharer._resource_sharer._address, authkey=process.current_process().authkey).close()
time.sleep(0.5)
print("ran on")
"""


@pytest.mark.parametrize("role", ["worker", "plain"])
def test_a_workers_fd_sharer_is_quiet_when_the_job_dies_mid_handover(role: str) -> None:
    """CI (AMD EPYC, loaded): the group's SIGTERM printed a worker's ``resource_sharer`` traceback (the main
    process gone while the worker's thread handed it a tensor's fd) after the one line. A training worker's
    sharer thread stays quiet; a process that is not one still prints it (the check can see the traceback)."""
    done = subprocess.run([sys.executable, "-c", _PEER_GONE, role], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "ran on" in done.stdout, done.stderr
    if role == "worker":
        assert done.stderr == "", done.stderr
    else:
        assert "Traceback" in done.stderr and "resource_sharer" in done.stderr, done.stderr
