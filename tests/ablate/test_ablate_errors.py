"""The ablation runner's output-folder errors and stops (a QA pass): a corrupt or unwritable runs.parquet,
config.resolved.yaml or env.json is one `error:` line with exit 2 (not a traceback with exit 1, the code
of a failed run); an interrupted resume leaves no report claiming the old, finished state; with --json a
Ctrl-C keeps stdout free of its message."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmdata.ablate import run
from mmdata.ablate import runner
from mmdata.ablate.runner import Interrupted
from mmdata.errors import MMDataError
from mmdata.plugins import trust_code

ROOT = Path(__file__).parents[2]
CLI = [sys.executable, "-m", "mmdata.cli.main"]
# the synthetic trainer, plus a Ctrl-C (KeyboardInterrupt, as SIGINT raises it) on seeds >= stop_at while
# `marker` exists, and an OSError on one seed (a run's own I/O failure: a failed run, not an error)
TRAINER = '''
import os
from mmdata.ablate.testing import synthetic_train
def train(data, *, seed=0, stop_at=-1, marker="", oserror_seed=-1, hang_seed=-1, deaf_seed=-1, fail_seed=-1,
          fail_marker="", **kw):
    if seed == fail_seed and os.path.exists(fail_marker):
        raise RuntimeError("failing while " + fail_marker + " exists")
    import signal, time
    if seed == deaf_seed:  # stuck where SIGALRM cannot reach it (as native code or a deadlock would be)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
    if seed in (hang_seed, deaf_seed):
        for _ in range(600):
            try:
                time.sleep(0.1)
            except Exception:  # a trainer's own broad except does not swallow the time limit
                pass
    if 0 <= stop_at <= seed and marker and os.path.exists(marker):
        raise KeyboardInterrupt
    if seed == oserror_seed:
        raise OSError(errno_nospc, "No space left on device")
    return synthetic_train(data, seed=seed, **kw)
errno_nospc = 28
'''
MODULE = "ab_errors_trainer"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("aberr") / "av", limit=4, progress=False)


@pytest.fixture
def trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The trainer module on sys.path (runs with -j 1 run in this process) and PYTHONPATH (the CLI)."""
    mod = tmp_path / "mods"
    mod.mkdir()
    (mod / f"{MODULE}.py").write_text(TRAINER)
    monkeypatch.syspath_prepend(str(mod))
    return {**os.environ, "PYTHONPATH": str(mod)}


def _recipe(tmp_path: Path, data: Path, seeds: int = 4, **opts: Any) -> Path:
    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": f"{MODULE}:train", **opts}, "seeds": seeds,
           "design": {"mode": "explicit", "baseline": None,
                      "arms": {"cutout": {"image": [{"op": "cutout", "p": 0.5}]},
                               "noise": {"audio": [{"op": "noise", "p": 0.5}]}}},
           "controls": {"identity": False}}
    (tmp_path / "ab.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "ab.yaml"


def _run(recipe: Path, out: Path, **kw: Any) -> dict[str, Any]:
    with trust_code():  # the recipe names its trainer module
        return run(recipe, out, workers=1, progress=False, plots=False, on_warning=lambda msg: None, **kw)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    trust = ["--trust-code"] if args[:1] == ("ablate",) and "--help" not in args else []  # the recipe names code
    return subprocess.run([*CLI, *args, *trust], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    # the design's warnings are printed before it, with --json too (QA26 F12: --json changes stdout only)
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    return lines[0]


def test_a_corrupt_runs_parquet_is_an_error_naming_it_and_the_file_is_kept(tmp_path: Path, tiny: Path,
                                                                             trainer: dict[str, str]) -> None:
    recipe, out = _recipe(tmp_path, tiny), tmp_path / "out"
    assert _run(recipe, out)["design"]["complete"]
    (out / "runs.parquet").write_bytes(b"x\n")
    with pytest.raises(MMDataError, match=r"runs\.parquet") as e:
        _run(recipe, out)
    assert "move it away" in str(e.value)
    line = _one_error_line(_cli(trainer, "ablate", str(recipe), "--out", str(out), "--json", "-j", "1"))
    assert str(out / "runs.parquet") in line
    assert (out / "runs.parquet").read_bytes() == b"x\n"  # the user's file: never deleted or rewritten


@pytest.mark.parametrize("name", ["config.resolved.yaml", "env.json", "runs.parquet"])
def test_a_full_disk_while_writing_is_an_error_naming_the_file(tmp_path: Path, tiny: Path, trainer: dict[str, str],
                                                               monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    real = runner.atomic_write_bytes

    def full(path: Any, data: bytes, **kw: Any) -> None:
        if Path(path).name == name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"{path}.tmp")
        real(path, data, **kw)

    monkeypatch.setattr(runner, "atomic_write_bytes", full)
    with pytest.raises(MMDataError) as e:
        _run(_recipe(tmp_path, tiny), tmp_path / "out")
    assert name in str(e.value) and os.strerror(errno.ENOSPC) in str(e.value)


def test_an_unwritable_new_out_is_an_error_naming_it(tmp_path: Path, tiny: Path, trainer: dict[str, str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.mkdir

    def readonly(self: Path, *a: Any, **kw: Any) -> None:
        if self.name == "out":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        real(self, *a, **kw)

    monkeypatch.setattr(Path, "mkdir", readonly)
    with pytest.raises(MMDataError, match=os.strerror(errno.EACCES)):
        _run(_recipe(tmp_path, tiny), tmp_path / "out")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_one_error_line(tmp_path: Path, tiny: Path, trainer: dict[str, str]) -> None:
    recipe, out = _recipe(tmp_path, tiny, seeds=4), tmp_path / "out"
    _run(recipe, out)
    os.chmod(out, 0o555)
    try:
        _one_error_line(_cli(trainer, "ablate", str(recipe), "--out", str(out), "--seeds", "6", "--json", "-j", "1"))
    finally:
        os.chmod(out, 0o755)


def test_an_oserror_in_a_run_stays_a_failed_run(tmp_path: Path, tiny: Path, trainer: dict[str, str]) -> None:
    s = _run(_recipe(tmp_path, tiny, oserror_seed=1), tmp_path / "out")
    assert {f["seed"] for f in s["failures"]} == {1}
    assert all("No space left" in f["error"] for f in s["failures"])


def test_an_interrupted_resume_leaves_no_report_of_the_old_state(tmp_path: Path, tiny: Path, trainer: dict[str, str]) -> None:
    stop, fail = tmp_path / "stop", tmp_path / "fail"
    fail.touch()
    recipe, out = _recipe(tmp_path, tiny, stop_at=3, marker=str(stop), fail_seed=3, fail_marker=str(fail)), tmp_path / "out"
    first = _run(recipe, out)  # seed 3 fails: a report with failures, the retry is new work
    assert len(first["failures"]) == 3 and (out / "report.md").exists()
    fail.unlink()
    stop.touch()
    for name in ("forest.png", "paired.png", "robustness.png"):  # the first run's figures (plots=False here)
        (out / name).write_bytes(b"old figure")
    with pytest.raises(Interrupted):
        _run(recipe, out)
    if (out / "summary.json").exists():  # a report of what is there may stay; the old verdicts may not
        s = json.loads((out / "summary.json").read_text())
        assert s != first
    # the old figures and per-seed values went with the old report (third QA pass: the PNGs stayed, with no report)
    assert not [n for n in ("forest.png", "paired.png", "robustness.png", "paired.csv") if (out / n).exists()]
    stop.unlink()
    s = _run(recipe, out)
    assert s["design"]["complete"] and not s["failures"] and (out / "report.md").exists()


def test_ctrl_c_with_json_keeps_stdout_json(tmp_path: Path, tiny: Path, trainer: dict[str, str]) -> None:
    stop = tmp_path / "stop"
    stop.touch()
    recipe = _recipe(tmp_path, tiny, stop_at=0, marker=str(stop))
    proc = _cli(trainer, "ablate", str(recipe), "--out", str(tmp_path / "out"), "--json", "-j", "1")
    assert proc.returncode == 130, proc.stderr
    assert "interrupted by SIGINT" in proc.stderr
    # stdout is the error document every failure under --json prints (QA26 F12: it was empty)
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 130 and "interrupted by SIGINT" in doc["error"], doc


def test_help_lists_exit_code_2(trainer: dict[str, str]) -> None:
    proc = _cli({**trainer, "COLUMNS": "200"}, "ablate", "--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.replace("│", " ").split())
    assert "2 for a bad recipe" in text, text


@pytest.mark.parametrize("kind", ["entry", "attribute", "device", "cuda"])
def test_a_bad_trainer_or_device_stops_before_anything_is_written(tmp_path: Path, tiny: Path, trainer: dict[str, str],
                                                                  kind: str) -> None:
    """A trainer entry that does not import, or a device torch does not know, failed every run one by
    one (a failures.parquet of N identical tracebacks, exit 1); --device cuda without a GPU wrote
    config.resolved.yaml and env.json first. Each is now one error before OUT is created (QA 2026-12-03)."""
    import torch

    if kind == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    recipe, out = _recipe(tmp_path, tiny), tmp_path / "out"
    args = {"entry": ["--trainer", "no_such_pkg_x.mod:train"], "attribute": ["--trainer", f"{MODULE}:nope"],
            "device": ["--trainer", "mmdata.train:train", "--device", "tpu"], "cuda": ["--device", "cuda"]}[kind]
    proc = _cli(trainer, "ablate", str(recipe), "--out", str(out), "-j", "2", *args)
    line = _one_error_line(proc)
    assert {"entry": "no_such_pkg_x", "attribute": "'nope'", "device": "'tpu'", "cuda": "CUDA"}[kind] in line, line
    assert not out.exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_past_its_time_limit_is_a_failed_run_and_the_rest_finish(tmp_path: Path, tiny: Path, trainer: dict[str, str],
                                                                      monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """There was no per-run time limit: a trainer that hung held its worker (or, with -j 1, the whole
    ablation) until Ctrl-C. With --run-timeout the run fails with RunTimeout (in this process with -j 1,
    in a worker process otherwise) and a trainer that ignores the signal has its worker killed."""
    import signal

    from mmdata.ablate import executor

    monkeypatch.setattr(executor, "HARD_GRACE_S", 1.0)
    opts = {"hang_seed": 1} if workers == 1 else {"hang_seed": 1, "deaf_seed": 2}
    before = signal.getsignal(signal.SIGALRM)
    with trust_code():  # the recipe names its trainer module
        s = run(_recipe(tmp_path, tiny, **opts), tmp_path / "out", workers=workers, progress=False, plots=False,
                on_warning=lambda msg: None, run_timeout=1.5)
    assert signal.getsignal(signal.SIGALRM) is before  # the command's own handler is back
    failed = {(f["arm"], f["seed"]): f["error"] for f in s["failures"]}
    assert {seed for _, seed in failed} == set(opts.values()), failed
    for (_, seed), error in failed.items():
        assert error.startswith("RunTimeout:") and "1.5 s" in error, error
        assert ("worker process was ended" in error) == (seed == opts.get("deaf_seed")), error
    assert s["runs"]["ok"] == 3 * 4 - len(failed)  # baseline and two arms, 4 seeds


def test_run_timeout_is_checked(tmp_path: Path, tiny: Path, trainer: dict[str, str]) -> None:
    for bad in (0, -1, float("nan"), True):
        with pytest.raises(MMDataError, match="run-timeout"):
            _run(_recipe(tmp_path, tiny), tmp_path / "out", run_timeout=bad)
    assert not (tmp_path / "out").exists()
    proc = _cli({**trainer, "COLUMNS": "200"}, "ablate", "--help")
    assert "--run-timeout" in proc.stdout
