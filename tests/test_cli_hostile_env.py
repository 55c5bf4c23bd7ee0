"""The CLI in a hostile environment (2026-12 QA, an ops engineer in containers): a full disk under
stdout, a closed stdout or stderr, a pipe closed early, an unwritable output path, SIGHUP, a newline in
a folder's name. Each gets one ``error:`` line and exit 2, or the README's exit status; never a
traceback, never a result cut short with exit 0. No root and no mounts: ``RLIMIT_FSIZE`` and
``/dev/full`` stand in for a full disk, a path under a file for an unwritable one."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import mmdata
from mmdata.testing import make_sample_folder
from mmdata.testing.procs import sigint_as_from_a_terminal
from tests.procs_helpers import communicate_or_kill, read_only_to_access

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from mmdata.cli.main import main; main()"]
RECIPE = REPO / "recipes" / "messy_folder.yaml"


def _run(args: list[str], cwd: Path, **kw: Any) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    kw.setdefault("capture_output", True)
    return subprocess.run([*CLI, *args], cwd=cwd, timeout=300, **kw)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_folder(tmp_path_factory.mktemp("hostile") / "raw", n=12)


@pytest.fixture(scope="module")
def ds(raw: Path) -> Path:
    out = raw.parent / "ds"
    mmdata.shard(raw, out, progress=False)
    return out


def _small_files(limit: int) -> Any:
    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return set_limit


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# a full disk under stdout

def test_a_stdout_cut_short_by_a_full_disk_is_an_error(ds: Path, tmp_path: Path) -> None:
    """`mmdata inspect DS --json > full/i.json`: the first write is taken in part (a disk with 1000 bytes
    left), and Python's buffered stdout dropped the rest without an error: exit 0, JSON cut short."""
    whole = _run(["inspect", str(ds), "--json"], tmp_path)
    assert whole.returncode == 0 and len(whole.stdout) > 1000
    target = tmp_path / "i.json"
    with open(target, "wb") as f:
        res = _run(["inspect", str(ds), "--json"], tmp_path, stdout=f, stderr=subprocess.PIPE,
                   capture_output=False, preexec_fn=_small_files(1000))
    err = _text(res.stderr)
    assert res.returncode == 2, err
    assert "Traceback" not in err and err.count("error:") == 1
    assert "error: cannot write the result to stdout: File too large" in err


def test_preview_to_a_full_stdout_is_an_error(ds: Path, tmp_path: Path) -> None:
    with open("/dev/full", "wb") as full:
        res = _run(["preview", str(ds), "-r", str(RECIPE), "--n", "2", "--variants", "1", "-o", "-"], tmp_path,
                   stdout=full, stderr=subprocess.PIPE, capture_output=False)
    err = _text(res.stderr)
    assert res.returncode == 2 and "Traceback" not in err, err
    assert "cannot write the result to stdout: No space left on device" in err


def test_preview_into_a_pipe_closed_early_exits_141(ds: Path, tmp_path: Path) -> None:
    """`mmdata preview ... -o - | head -c 10`: the PNG's write was taken in part and the command exited 0."""
    proc = subprocess.Popen([*CLI, "preview", str(ds), "-r", str(RECIPE), "-o", "-"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    head = proc.stdout.read(10)
    proc.stdout.close()  # as head -c 10 does: the PNG (~300 kB) is larger than the pipe's buffer
    _, err = communicate_or_kill(proc, 300)
    assert head.startswith(b"\x89PNG")
    assert proc.returncode == 141 and b"Traceback" not in err, _text(err)


# closed streams

def _close(*fds: int) -> Any:
    def close() -> None:
        for fd in fds:
            os.close(fd)
    return close


def test_a_closed_stdout_exits_141_without_a_traceback(ds: Path, raw: Path, tmp_path: Path) -> None:
    """`mmdata inspect DS >&-` ended `AttributeError: 'NoneType' object has no attribute 'flush'`;
    `mmdata shard RAW OUT >&-` the same after the job had finished."""
    res = _run(["inspect", str(ds)], tmp_path, preexec_fn=_close(1))
    assert res.returncode == 141 and b"Traceback" not in res.stderr, _text(res.stderr)
    res = _run(["shard", str(raw), "o2", "--maxcount", "8"], tmp_path, preexec_fn=_close(1))
    assert res.returncode == 141 and b"Traceback" not in res.stderr, _text(res.stderr)
    assert mmdata.inspect(tmp_path / "o2")["samples"] == 12  # the job itself finished


def test_a_closed_stderr_keeps_the_result_and_the_status(ds: Path, tmp_path: Path) -> None:
    res = _run(["inspect", str(ds)], tmp_path, preexec_fn=_close(2))
    assert res.returncode == 0 and b"samples" in res.stdout
    res = _run(["inspect", str(tmp_path / "nothing")], tmp_path, preexec_fn=_close(2))
    assert res.returncode == 2  # bad input stays 2; its error line goes nowhere, as with 2>/dev/null


def test_a_stderr_pipe_closed_early_exits_141(raw: Path, tmp_path: Path) -> None:
    """The shard writer's progress bar (a library console) met the closed pipe: rich's SystemExit(1)."""
    proc = subprocess.Popen([*CLI, "shard", str(raw), "o3", "--maxcount", "2"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    proc.stderr.close()
    communicate_or_kill(proc, 300)
    assert proc.returncode == 141


# output paths checked before the work

def test_preview_checks_its_output_path_before_drawing(ds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.augment import preview as preview_module
    from mmdata.cli.main import main

    def drawn(*a: Any, **k: Any) -> None:
        raise AssertionError("the grid was drawn before the output path was checked")

    monkeypatch.setattr(preview_module, "preview_figure", drawn)
    (tmp_path / "afile").write_text("mine")
    ro = tmp_path / "ro"
    ro.mkdir()
    read_only_to_access(monkeypatch, ro)
    for out, said in ((tmp_path / "afile" / "p.png", "a file"), (ro / "p.png", "not writable"),
                      (tmp_path, "a folder")):
        with pytest.raises(SystemExit) as exc:
            main(["preview", str(ds), "-r", str(RECIPE), "-o", str(out)])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and said in err and "Traceback" not in err, err


# a newline in a folder's name

def test_a_newline_in_out_is_escaped_in_the_result_line(raw: Path, tmp_path: Path) -> None:
    res = _run(["shard", str(raw), "a\nb/ds"], tmp_path, text=True)
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) == 1 and "a\\nb/ds" in res.stdout, res.stdout


# SIGHUP

def test_sighup_stops_shard_like_sigterm(raw: Path, tmp_path: Path) -> None:
    """SIGHUP (the terminal closed) killed the job at once: exit 129 with `*.tar.tmp-PID` files left."""
    out = tmp_path / "hup"
    env = {**os.environ, "MMDATA_TEST_SHARD_DELAY": "1"}
    proc = subprocess.Popen([*CLI, "shard", str(raw), str(out), "--maxcount", "2"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_from_a_terminal)  # SIGHUP not ignored (a suite under nohup)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("*.tar*")):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGHUP)
    _, err = communicate_or_kill(proc, 120)
    assert proc.returncode == 129, err
    assert "interrupted by SIGHUP" in err and "Traceback" not in err
    left = [p.name for p in out.iterdir() if "tmp" in p.name]
    assert not left, left


def test_json_errors_stay_json(ds: Path, tmp_path: Path) -> None:
    """Not a regression of the --json error document through the new stdout."""
    res = _run(["inspect", str(tmp_path / "nothing"), "--json"], tmp_path, text=True)
    assert res.returncode == 2 and json.loads(res.stdout)["ok"] is False


def test_main_called_from_python_leaves_the_callers_stdout(ds: Path, tmp_path: Path) -> None:
    """QA on the fix: `main([...])` from Python replaced sys.stdout for the rest of the caller's process (its own
    writes through sys.__stdout__ then came out ahead of what it had printed before)."""
    script = (f"import sys\nfrom mmdata.cli.main import main\nbefore, hook = sys.stdout, sys.excepthook\n"
              f"print('first', flush=False)\n"
              f"try:\n    main(['verify', {str(ds)!r}])\nexcept SystemExit:\n    pass\n"
              f"assert sys.stdout is before, sys.stdout\n"
              f"assert sys.excepthook is hook, sys.excepthook  # not typer's, for the rest of a notebook\n"
              f"sys.stdout.flush()\nsys.__stdout__.write('last\\n')\n")
    res = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "first" and lines[-1] == "last", lines


def test_warnings_as_errors_in_the_environment_keep_the_commands_warning_lines(raw: Path, tmp_path: Path) -> None:
    """QA on the fix: `PYTHONWARNINGS=error` (common in CI) turned the new cache warning into a traceback (exit 1,
    the lock and journal left in OUT); the command's own warnings stay `warning:` lines."""
    (tmp_path / "afile").write_text("not a folder")
    env = {**os.environ, "PYTHONWARNINGS": "error", "MMDATA_CACHE": str(tmp_path / "afile" / "cache")}
    res = subprocess.run([*CLI, "shard", str(raw), str(tmp_path / "ds")], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert "warning: cannot write the record of this job" in res.stderr, res.stderr
    assert not [p.name for p in (tmp_path / "ds").iterdir() if p.name.startswith(".mmdata-")]


def test_the_command_raises_its_soft_open_file_limit_within_the_hard_one(tmp_path: Path) -> None:
    """A container's default soft limit (the hard one far above) ran `train -j 2` out of file descriptors;
    the command raises the soft limit toward the hard one, and leaves a hard limit the user set low."""
    script = ("import resource, sys\nfrom mmdata.cli import main as m\n"
              "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))\n"
              "m._more_open_files()\nprint(*resource.getrlimit(resource.RLIMIT_NOFILE))\n")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    top = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    for soft, cap, want in ((64, top, f"{top} {top}"), (36, 36, "36 36")):
        res = subprocess.run([sys.executable, "-c", script, str(soft), str(cap)], cwd=REPO, capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 0 and res.stdout.split() == want.split(), (res.stdout, res.stderr)


@pytest.mark.parametrize("cache", ["own", "unusable"])
def test_a_home_that_cannot_hold_matplotlibs_folder_gets_no_matplotlib_warning(ds: Path, tmp_path: Path,
                                                                               cache: str) -> None:
    """QA25 C-5 (a class on a shared machine with read-only homes): every command that drew a figure printed
    matplotlib's two-line "created a temporary cache directory ... set the MPLCONFIGDIR environment
    variable". The CLI now gives matplotlib mmdata's cache (or a private temporary folder, removed at exit)."""
    (tmp_path / "file").write_text("")
    home = tmp_path / "file" / "home"  # under a file: no folder can be made there, even by root
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), TMPDIR=str(tmp_path / "tmp"),
               MMDATA_CACHE=str(tmp_path / "cache" if cache == "own" else tmp_path / "file" / "cache"))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "r.yaml").write_text("seed: 0\n")
    proc = _run(["preview", str(ds), "-r", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "p.png"), "--n", "2"],
                cwd=tmp_path, env=env, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MPLCONFIGDIR" not in proc.stderr and "Matplotlib created" not in proc.stderr, proc.stderr[-2000:]
    assert (tmp_path / "p.png").is_file()
    if cache == "own":
        assert (tmp_path / "cache" / "matplotlib").is_dir()
    assert not [p for p in (tmp_path / "tmp").iterdir() if "matplotlib" in p.name]  # removed at exit
