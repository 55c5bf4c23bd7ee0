"""Where a command meets pyarrow's lazy import of pandas: at its start, in plain Python, never inside
a job's first Parquet write. pyarrow imports pandas through a shim on its first conversion of Python
values; a Ctrl-C landing in that import, deep inside a job, could be swallowed by the shim (the job ran
on) or leave pandas half-imported (a traceback from the job's clean-up, exit 1).

The commands run in a real interpreter whose import system is watched (as tests/conftest.py's
``cli_without_ray`` does): a finder first in line sees the import of pandas begin and records where it
came from; nothing of mmdata, pyarrow or pandas is replaced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mmdata.testing.procs import sigint_as_from_a_terminal
from tests.procs_helpers import communicate_or_kill

ROOT = Path(__file__).parents[1]

# The import of pandas, watched: MMDATA_TEST_PANDAS_AT gets the functions on the stack (innermost last)
# when it begins; then the process ends (MMDATA_TEST_PANDAS_THEN=exit) or the import waits 30 s there
# for the test's Ctrl-C (=wait).
_WATCH_PANDAS = """import json, os, sys, time, traceback
class _WatchPandas:
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            sys.meta_path.remove(self)
            at = [f"{os.path.basename(f.filename)}:{f.name}" for f in traceback.extract_stack()]
            with open(os.environ["MMDATA_TEST_PANDAS_AT"], "w") as fh:
                json.dump(at, fh)
            if os.environ["MMDATA_TEST_PANDAS_THEN"] == "exit":
                os._exit(0)
            time.sleep(30)
        return None
sys.meta_path.insert(0, _WatchPandas())
from mmdata.cli.main import main
main(sys.argv[1:])
"""
PRELOAD = "common.py:load_pandas_for_arrow"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("av") / "av", limit=4, progress=False)


def _watched(args: list[str], at: Path, then: str, **popen: object) -> subprocess.Popen:
    env = {**os.environ, "MMDATA_TEST_PANDAS_AT": str(at), "MMDATA_TEST_PANDAS_THEN": then}
    return subprocess.Popen([sys.executable, "-c", _WATCH_PANDAS, *args], cwd=ROOT, env=env, **popen)  # type: ignore[call-overload]


def _commands(tmp: Path, tiny: Path) -> dict[str, list[str]]:
    """Every command that writes Parquet, with arguments that get it to its first Parquet write."""
    import mmdata
    from mmdata.ablate.testing import synthetic_recipe
    from mmdata.testing import make_sample_folder

    raw = make_sample_folder(tmp / "raw", n=6)
    cols = tmp / "cols"
    mmdata.shard(raw, cols, layout="columns", maxcount=4, progress=False)
    import numpy as np

    (tmp / "depth").mkdir()
    for k in (f"{i:06d}" for i in range(6)):
        np.save(tmp / "depth" / f"{k}.depth.npy", np.zeros((2, 2), np.float32))
    return {
        "shard": ["shard", str(raw), str(tmp / "o-shard"), "--maxcount", "2"],
        "augment": ["augment", str(tiny), str(tmp / "o-aug"), "--recipe", str(ROOT / "recipes" / "image_basic.yaml")],
        "add-modality": ["add-modality", str(cols), "depth", str(tmp / "depth")],
        "datasets build": ["datasets", "build", "avdigits", str(tmp / "o-build"), "--limit", "1"],
        "train": ["train", str(tiny), "--epochs", "1", "--out", str(tmp / "o-train")],
        "ablate": ["ablate", synthetic_recipe(tmp, tiny, seeds=2), "--out", str(tmp / "o-ablate"), "-j", "1"],
        "demo": ["demo", "--quick", "--out", str(tmp / "o-demo")],
    }


def test_every_parquet_writing_command_imports_pandas_at_its_start(tmp_path: Path, tiny: Path) -> None:
    """Each command is stopped where pandas is first imported; that must be the preload at its start."""
    late = {}
    for name, args in _commands(tmp_path, tiny).items():
        at = tmp_path / f"at-{name.replace(' ', '-')}.json"
        proc = _watched(args, at, "exit", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = communicate_or_kill(proc, 300)
        assert at.exists(), f"{name}: pandas was never imported (exit {proc.returncode}): {err.decode()[-1500:]}"
        stack = json.loads(at.read_text())
        if PRELOAD not in stack:
            late[name] = [f for f in stack if "importlib" not in f][-4:]
    assert not late, f"pandas first imported inside the job, not at its start: {late}"


@pytest.mark.sigint
def test_ctrl_c_in_the_import_of_pandas_ends_shard_before_it_writes(tmp_path: Path) -> None:
    """A real Ctrl-C while pandas is being imported: the command ends as on any Ctrl-C (exit 130, its
    "interrupted; rerun" line) and the import came before the job wrote a shard."""
    from mmdata.testing import make_sample_folder

    raw = make_sample_folder(tmp_path / "raw", n=6)
    out, at = tmp_path / "ds", tmp_path / "at.json"
    proc = _watched(["shard", str(raw), str(out), "--maxcount", "2"], at, "wait", stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, text=True, preexec_fn=sigint_as_from_a_terminal)
    deadline = time.time() + 120
    while time.time() < deadline and not at.exists():
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.01)
    time.sleep(0.05)  # the watcher is asleep inside the import now
    written = sorted(p.name for p in out.rglob("*.tar")) if out.exists() else []
    proc.send_signal(signal.SIGINT)
    _, err = communicate_or_kill(proc, 60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted; rerun the same command" in err and "Traceback" not in err, err[-2000:]
    assert written == [], f"the job had written {written} when pandas was imported"


#: a SIGTERM handled inside a callback that cannot raise (a __del__), under terminated_as_exit; PREAMBLE first
DROPPED_SIGTERM = """
import os, signal, threading, time
from mmdata.cli.common import terminated_as_exit
{preamble}
class Dropper:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # the handler runs here, inside __del__: its exception goes to the unraisable hook

try:
    with terminated_as_exit():
        d = Dropper()
        del d
        time.sleep(3)
        print("ran on")
except SystemExit as exc:
    print("exit", exc.code)
"""


def _dropped_sigterm(preamble: str = "") -> subprocess.CompletedProcess[str]:
    code = DROPPED_SIGTERM.format(preamble=textwrap.dedent(preamble))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_a_sigterm_raised_where_python_drops_exceptions_still_ends_the_command(tmp_path: Path) -> None:
    """A SIGTERM handled inside a callback that cannot raise (here a __del__; in `mmdata train` the at-fork
    handler run while a DataLoader forks its workers) was printed as "Exception ignored" and dropped: the
    job trained on. It is delivered again and ends the command with 143."""
    res = _dropped_sigterm()
    assert res.stdout.split() == ["exit", "143"], (res.stdout, res.stderr[-2000:])
    assert "Exception ignored" not in res.stderr


def test_a_signal_landing_inside_the_redelivery_hook_is_not_printed(tmp_path: Path) -> None:
    """CI-like run of QA30: a SIGTERM handled while the unraisable hook started its redelivery timer raised inside
    the hook, and Python printed "Exception ignored in sys.unraisablehook" with a traceback (the job still ended
    143). A signal landing there is left to the redelivery the hook schedules."""
    res = _dropped_sigterm("""
        class Timer(threading.Timer):  # the hook's timer: a second signal lands while it starts
            def start(self):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.2)  # the handler runs here, inside the hook
                super().start()

        threading.Timer = Timer
    """)
    assert res.stdout.split() == ["exit", "143"], (res.stdout, res.stderr[-2000:])
    assert "Exception ignored" not in res.stderr and "Traceback" not in res.stderr, res.stderr[-2000:]
