"""How a stopped ablation ends: ``mmdata ablate --executor ray`` stopped by SIGTERM exits 143 and names
SIGTERM, as the local executor does (tests/ablate/test_process.py), on a real local Ray cluster
(tests/conftest.py: ray_cluster)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmdata.ablate.testing import synthetic_recipe as _recipe
from tests.procs_helpers import wait_or_kill

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("ab") / "av", limit=4, progress=False)


@pytest.mark.ray
def test_sigterm_on_a_ray_driver_exits_143_and_names_sigterm(tmp_path: Path, tiny: Path, ray_cluster) -> None:
    """Ray's blocking calls check for signals themselves (``ray.wait`` waiting past ~1 s) and turn the
    exception a handler raises into a plain KeyboardInterrupt: a driver stopped by SIGTERM while its runs
    were long said "interrupted by SIGINT" and exited 130."""
    import ray

    recipe = _recipe(tmp_path, tiny, seeds=2, sleep=60)  # long runs: the driver sits in ray.wait
    proc = subprocess.Popen([sys.executable, "-c", "from mmdata.cli.main import main; main()", "ablate", str(recipe),
                             "--out", str(tmp_path / "out"), "--executor", "ray", "--address", ray_cluster.address,
                             "--json"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 90
    while time.time() < deadline and ray.available_resources().get("CPU", 0) > 0:  # both nodes run a 60 s run
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.1)
    time.sleep(2)  # well inside ray.wait's own signal checks
    proc.send_signal(signal.SIGTERM)
    rc = wait_or_kill(proc, 60)
    err = proc.stderr.read().decode()
    assert rc == 143, err
    assert "interrupted by SIGTERM" in err and "SIGINT" not in err
    t0 = time.time()  # the driver's job ended with it: its runs give their CPUs back to the next test
    while time.time() - t0 < 20 and ray.available_resources().get("CPU", 0) < 2:
        time.sleep(0.1)
    assert ray.available_resources().get("CPU", 0) == 2


_CONNECT_THEN_SIGTERM = """import os, signal, sys, time
from mmdata.ablate.ray_executor import RayExecutor
from mmdata.cli.common import terminated_as_exit
with terminated_as_exit():  # as `mmdata ablate` runs the runner
    ex = RayExecutor(sys.argv[1])  # ray.init: Ray's driver installs its own SIGTERM handler
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # outside the run loop: connecting, writing the report
        time.sleep(30)
    finally:
        ex.close()
"""


@pytest.mark.ray
def test_sigterm_outside_the_run_loop_of_a_ray_ablation_exits_143(ray_cluster) -> None:
    """``ray.init`` replaced the command's SIGTERM handler by Ray's (``sys.exit(15)``): a Ray ablation
    stopped while it connected or wrote its report exited 15, a local one 143."""
    proc = subprocess.run([sys.executable, "-c", _CONNECT_THEN_SIGTERM, ray_cluster.address], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143, proc.stderr[-2000:]
