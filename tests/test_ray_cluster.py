"""A local Ray instance that ``--executor ray`` starts for itself (no ``--address``) dies with its
driver: SIGKILLed, interrupted, or finished, the driver leaves no Ray process of its session behind
(Ray 2.60's ``ray::DashboardAgent`` / ``ray::RuntimeEnvAgent`` used to outlive a SIGKILLed driver for
good). Real driver processes, a real local Ray instance; the processes are identified by the psutil
process tree of the driver, never by name, so other Ray instances on the machine are not touched."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmdata.shards.journal import _records
from mmdata.testing import make_sample_folder
from mmdata.testing.procs import sigint_as_from_a_terminal
from tests.procs_helpers import wait_or_kill

psutil = pytest.importorskip("psutil")
pytest.importorskip("ray")

ROOT = Path(__file__).parents[1]
AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def _driver(raw: Path, out: Path, ray_tmp: Path) -> subprocess.Popen:
    """``mmdata shard --executor ray`` with no address: it starts its own local Ray instance (its Ray
    temp dir is private, so it finds no other cluster recorded on the machine to join)."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(ray_tmp)
    env["MMDATA_TEST_SHARD_DELAY"] = "0.5"  # the shard tasks are slow enough to stop the job midway
    return subprocess.Popen([sys.executable, "-c", "from mmdata.cli.main import main; main()", "shard", str(raw),
                             str(out), "--maxcount", "2", "--executor", "ray", "--json"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=sigint_as_from_a_terminal)


def _tree_once_running(proc: subprocess.Popen, out: Path) -> list:
    """The driver's descendants (psutil processes) once its local Ray runs the job: the agents are up
    and a shard is journaled."""
    deadline = time.time() + 120
    journal = out / ".mmdata-journal"
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        tree = psutil.Process(proc.pid).children(recursive=True)
        names = {_name(p) for p in tree}
        if all(any(a in n for n in names) for a in AGENTS) and journal.exists() and len(_records(journal.read_bytes())[0]) >= 2:
            return tree
        time.sleep(0.1)
    raise AssertionError("the driver's local Ray did not start the job within 120 s")


def _name(p) -> str:  # noqa: ANN001 — psutil.Process
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


@contextlib.contextmanager
def _running_driver(raw: Path, out: Path, ray_tmp: Path) -> Iterator[tuple[subprocess.Popen, list]]:
    """A ``mmdata shard --executor ray`` driver once its local Ray is up, with that process tree;
    the driver and the tree are killed on the way out, whatever the test did."""
    proc = _driver(raw, out, ray_tmp)
    tree: list = []
    try:
        tree = _tree_once_running(proc, out)
        yield proc, tree
    finally:
        proc.kill()
        _kill(tree)


def _survivors(tree: list, within: float) -> list[str]:
    """The processes of ``tree`` still alive (zombies count as gone) after waiting up to ``within`` s."""
    deadline = time.time() + within
    while True:
        alive = []
        for p in tree:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.Error:
                pass
        if not alive or time.time() > deadline:
            return [f"{p.pid} {_name(p)[:80]}" for p in alive]
        time.sleep(0.2)


def _kill(tree: list) -> None:
    for p in tree:  # a failed test must not leave its Ray behind either
        try:
            p.kill()
        except psutil.Error:
            pass


@pytest.fixture
def ray_tmp():  # noqa: ANN201
    """A short private Ray temp dir (Ray's socket paths must stay under ~107 bytes)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="mmray", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_folder(tmp_path_factory.mktemp("raw") / "raw", n=24)


@pytest.mark.ray
def test_a_sigkilled_driver_leaves_no_process_of_its_local_ray(tmp_path: Path, raw: Path, ray_tmp: Path) -> None:
    with _running_driver(raw, tmp_path / "ds", ray_tmp) as (proc, tree):
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone (not its process group), as the OOM killer does
        wait_or_kill(proc, 30)
        assert _survivors(tree, within=30) == []
    assert not (tmp_path / "ds" / "index.parquet").exists(), "the job finished before the kill"


@pytest.mark.sigint
@pytest.mark.ray
def test_an_interrupted_driver_stops_its_local_ray_and_exits_130(tmp_path: Path, raw: Path, ray_tmp: Path) -> None:
    with _running_driver(raw, tmp_path / "ds", ray_tmp) as (proc, tree):
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the driver's terminal: its whole process group
        assert wait_or_kill(proc, 60) == 130, proc.stderr.read().decode()
        assert _survivors(tree, within=1) == []  # gone by the time the command returned


@pytest.mark.ray
def test_a_driver_that_joined_a_recorded_cluster_leaves_it_running(tmp_path: Path, raw: Path, ray_tmp: Path,
                                                                    ray_cluster) -> None:
    import ray

    # no address, RAY_ADDRESS unset: ray.init() joins the cluster recorded in Ray's temp dir (as after
    # `ray start`); killing that driver must not end the cluster (it is not the driver's to end)
    (ray_tmp / "ray").mkdir()
    (ray_tmp / "ray" / "ray_current_cluster").write_text(ray_cluster.address)
    proc = _driver(raw, tmp_path / "ds", ray_tmp)
    journal = tmp_path / "ds" / ".mmdata-journal"
    deadline = time.time() + 120
    try:
        while time.time() < deadline and not (journal.exists() and len(_records(journal.read_bytes())[0]) >= 2):
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        assert not [c for c in psutil.Process(proc.pid).children(recursive=True) if "ray_reaper" in _name(c)]
        os.kill(proc.pid, signal.SIGKILL)
        wait_or_kill(proc, 30)
        time.sleep(8)  # longer than a watchdog's poll + grace
    finally:
        proc.kill()
    assert sum(n["Alive"] for n in ray.nodes()) == 2
    assert ray.get(ray.remote(lambda: 1).remote(), timeout=60) == 1
