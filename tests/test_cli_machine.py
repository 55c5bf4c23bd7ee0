"""The CLI as a machine interface (scripts, CI pipelines), from the 2026-12 QA pass: valid JSON (no NaN,
keys sorted, one error document for every command), one record per line on a pipe, tables that fold on a
narrow terminal, exit statuses (141 on a closed pipe; 130 / 143 with a message on Ctrl-C / SIGTERM),
``~`` in path options, ``preview -o -``, help texts and ``--version``.

Every command runs as the ``mmdata`` command does (a subprocess, real files); a terminal is a real
pseudo-terminal."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from mmdata.testing import make_sample_folder
from mmdata.testing.procs import sigint_as_from_a_terminal
from tests.procs_helpers import communicate_or_kill, on_a_terminal

ROOT = Path(__file__).parents[1]
CLI = [sys.executable, "-m", "mmdata.cli.main"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    return {**env, **extra}


def _mmdata(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # stdin too is not a terminal: rich would take its width from there
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env or _env(),
                          stdin=subprocess.DEVNULL, timeout=300)


def _strict_json(text: str) -> Any:
    """JSON as JSON.parse / jq read it: ``NaN`` and ``Infinity`` are errors (Python's json accepts them)."""
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _on_a_terminal(args: list[str], cwd: Path, **env: str) -> tuple[int, str]:
    """Run ``mmdata ARGS`` with stdout and stderr on a pseudo-terminal: (exit code, what it showed, escapes removed)."""
    return on_a_terminal([*CLI, *args], cwd, _env(TERM="xterm", NO_COLOR="1", **env))


@pytest.fixture(scope="module")
def unlabelled_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 image samples: 6 train, 3 val (labelled), 3 test without labels (a manifest with a split column)."""
    import mmdata

    root = tmp_path_factory.mktemp("machine")
    make_sample_folder(root / "raw", n=12, missing=False)
    with open(root / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "image", "label", "split"])
        for i in range(12):
            split = "train" if i < 6 else "val" if i < 9 else "test"
            w.writerow([f"k{i}", str(root / "raw" / f"{i:06d}.png"), "" if split == "test" else i % 3, split])
    mmdata.shard(root / "m.csv", root / "ds", progress=False)
    return root / "ds"


# 1, 8, 10: NaN, ~, sorted metrics.json ------------------------------------------------------------------

def test_train_json_without_labelled_test_samples_is_valid_json(unlabelled_test: Path, tmp_path: Path) -> None:
    """`--json` printed ``"accuracy": NaN`` (JSON.parse rejects it) and metrics.json held it too; `--out=~/run`
    (no shell expands ``~`` after ``=``) made a folder named ``~`` in the working directory."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    res = _mmdata("train", str(unlabelled_test), "--epochs", "1", "--no-robustness", "--out=~/run", "--json", cwd=work,
                  env=_env(HOME=str(home)))
    assert res.returncode == 0, res.stderr[-3000:]
    m = _strict_json(res.stdout)
    assert m["test"] == {"accuracy": None, "balanced_accuracy": None, "ece": None, "macro_f1": None, "nll": None,
                         "auroc": None, "auprc": None}
    assert isinstance(m["val"]["accuracy"], float)
    assert not (work / "~").exists() and list(work.iterdir()) == []
    text = (home / "run" / "metrics.json").read_text()
    on_disk = _strict_json(text)
    assert on_disk["test"]["accuracy"] is None
    assert text == json.dumps(on_disk, indent=2, sort_keys=True) + "\n"  # sorted as --json prints it


def test_train_table_says_why_a_metric_is_missing(unlabelled_test: Path, tmp_path: Path) -> None:
    res = _mmdata("train", str(unlabelled_test), "--epochs", "1", "--no-robustness", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "nan" not in res.stdout.lower()
    test_row = next(ln for ln in res.stdout.splitlines() if ln.strip("│┃ ").startswith("test "))
    assert "n/a" in test_row
    assert "n/a: no labelled test sample" in res.stdout
    # the run's warning (BatchNorm statistics of 1 batch) is a diagnostic: stderr, as the progress
    assert "warning:" in res.stderr and "warning" not in res.stdout


# 3: one error document under --json ---------------------------------------------------------------------

ERRORS = {
    "inspect": ["inspect", "nope"],
    "verify": ["verify", "nope"],
    "shard": ["shard", "nope", "out"],
    "augment": ["augment", "nope", "out", "--recipe", "nope.yaml"],
    "add-modality": ["add-modality", "nope", "depth", "nope"],
    "train": ["train", "nope", "--epochs", "1"],
    "match": ["match", "nope", "--model", "nope"],
    "evaluate": ["evaluate", "nope", "nope"],
    "audit-alignment": ["audit-alignment", "nope", "--recipe", "nope.yaml", "--model", "nope"],
    "ablate": ["ablate", "nope.yaml", "--out", "out"],
    "usage": ["train", "nope", "--epochs", "0"],  # a bad option value: typer's usage error
    "bad-value": ["shard", "nope", "out", "--max-file-size", "huge"],  # typer.BadParameter from the command
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_every_json_error_is_one_document_on_stdout_and_a_line_on_stderr(name: str, tmp_path: Path) -> None:
    """`inspect` / `verify` printed ``{"error", "ok"}`` on stdout, `shard`, `augment`, `add-modality` and
    `train` nothing: ``out=$(mmdata X --json); jq .ok <<<"$out"`` worked for some commands only."""
    res = _mmdata(*ERRORS[name], "--json", cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    doc = _strict_json(res.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["error"], doc
    assert set(doc) == {"ok", "error", "exit_code"}
    assert "Error" in res.stderr or "error:" in res.stderr  # the usual message, for the humans reading the log
    assert "Traceback" not in res.stderr


def test_a_command_without_json_gets_no_error_document(tmp_path: Path) -> None:
    """Every command takes --json now (datasets list / build too); a command group does not."""
    res = _mmdata("datasets", "--json", cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == "" and "No such option: --json" in res.stderr


# 4: one record per line on a pipe; fold, never cut, on a narrow terminal ---------------------------------

def test_verify_prints_one_line_per_problem_on_a_pipe(unlabelled_test: Path, tmp_path: Path) -> None:
    """``mmdata verify DS | wc -l`` gave 3 lines for one problem: rich wrapped at 80 columns."""
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(unlabelled_test, ds)
    for tar in ds.glob("*.tar"):
        tar.unlink()
    problems = _strict_json(_mmdata("verify", str(ds), "--json", cwd=tmp_path).stdout)["problems"]
    res = _mmdata("verify", str(ds), cwd=tmp_path)
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert len(lines) == len(problems) == 3 and all(len(ln) > 80 for ln in lines), lines
    assert all(p["problem"] in ln for p, ln in zip(problems, lines))


def test_shard_left_out_list_is_one_line_per_file(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4)
    for i in range(3):
        (raw / f"{'a-rather-long-file-name-' * 3}{i}.png").symlink_to("nowhere")
    res = _mmdata("shard", str(raw), "ds", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    listed = [ln for ln in res.stderr.splitlines() if "a-rather-long-file-name-" in ln]
    assert len(listed) == 3 and all(ln.endswith("broken symbolic link (to 'nowhere')") for ln in listed), res.stderr


def test_inspect_tables_fold_values_on_a_narrow_terminal(unlabelled_test: Path, tmp_path: Path) -> None:
    """With ``COLUMNS=40`` the tables cut values to ``imag…`` / ``0.48…``: a value was hidden."""
    rc, shown = _on_a_terminal(["inspect", str(unlabelled_test)], tmp_path, COLUMNS="40")
    assert rc == 0, shown
    assert "…" not in shown
    # a folded value continues on the next line of its cell: the first column, read down, holds every name whole;
    # a table too narrow for a word (the distribution table here) is printed as `header: value` records
    first_column = "".join(ln.split("│")[1].strip() for ln in shown.splitlines() if ln.startswith("│"))
    assert "image+label" in first_column, shown
    for name in ("image_height", "image_width"):
        assert f"distribution: {name}" in shown.splitlines(), shown


# 9: a closed pipe ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["inspect"], ["inspect", "--json"], ["verify"]], ids=" ".join)
def test_a_closed_stdout_pipe_exits_141_quietly(args: list[str], unlabelled_test: Path, tmp_path: Path) -> None:
    """``mmdata inspect DS | head -1`` exited 1 (a failure under ``set -o pipefail``). The pipe's reading end
    is closed before the command starts, as by a ``head`` that has finished: every write meets it."""
    read, write = os.pipe()
    os.close(read)
    try:
        res = subprocess.run([*CLI, args[0], str(unlabelled_test), *args[1:]], stdout=write, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True, cwd=tmp_path, timeout=300)
    finally:
        os.close(write)
    assert res.returncode == 141, res.stderr
    assert res.stderr == ""  # no traceback, no "Exception ignored ... BrokenPipeError"


# 6: signals ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slow_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 samples of one 2048x2048 PNG (hard links: 17 KB on disk) that takes ~40 ms to decode: a shard of
    30 is written for about a second with `--check decode`, its temp file open all that time."""
    import numpy as np
    from PIL import Image

    raw = tmp_path_factory.mktemp("slow") / "raw"
    raw.mkdir()
    a = (np.add.outer(np.arange(2048), np.arange(2048)) % 256).astype(np.uint8)
    Image.fromarray(np.stack([a, a.T, a], -1)).save(raw / "000000.png")
    for i in range(60):
        if i:
            os.link(raw / "000000.png", raw / f"{i:06d}.png")
        (raw / f"{i:06d}.cls").write_text(str(i % 2))
    return raw


def _temps(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if ".tmp" in p.name] if out.exists() else []


def _sigterm_while_writing(args: list[str], out: Path, cwd: Path, *, started: bool = False,
                           **env: str) -> tuple[int, str, list[str]]:
    """Start ``mmdata ARGS``, SIGTERM it while a shard's temp file is open in ``out`` (``started``: once the
    job has recorded a finished shard, for jobs whose temp file is open only a moment); (exit code, stderr,
    the temp files seen). ``env``: more environment for the job."""
    from mmdata.shards.journal import _records

    proc = subprocess.Popen([*CLI, *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=_env(**env))
    deadline = time.time() + 240
    seen: list[Path] = []
    journal = out / ".mmdata-journal"
    while time.time() < deadline and not seen:
        assert proc.poll() is None, proc.stderr.read()
        seen = _temps(out)
        if started and journal.exists() and _records(journal.read_bytes())[0]:
            seen = seen or [journal]
        time.sleep(0.005)
    assert seen, "no shard was being written"
    proc.send_signal(signal.SIGTERM)
    _, err = communicate_or_kill(proc, 120)  # a hung job must not outlive the test (one did, for 40 minutes)
    return proc.returncode, err, [p.name for p in seen]


def test_sigterm_ends_shard_with_143_a_message_and_no_temp_file(slow_raw: Path, tmp_path: Path) -> None:
    """`mmdata shard` died from SIGTERM (no message) and left ``train-000000.tar.tmp-PID`` until the next run."""
    out = tmp_path / "ds"
    rc, err, seen = _sigterm_while_writing(["shard", str(slow_raw), str(out), "--maxcount", "30", "--check", "decode"],
                                           out, tmp_path)
    assert rc == 143, err[-2000:]
    assert f"mmdata shard into {out} interrupted by SIGTERM; rerun the same command to resume it" in err
    assert "Traceback" not in err
    assert _temps(out) == [], f"left {_temps(out)} (saw {seen})"


def test_sigterm_ends_augment_with_143_a_message_and_no_temp_file(slow_raw: Path, tmp_path: Path) -> None:
    import mmdata

    src = tmp_path / "src"
    mmdata.shard(slow_raw, src, maxcount=30, progress=False)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - {op: hflip, p: 1.0}\n")
    out = tmp_path / "aug"
    # augment makes and writes a shard in a moment: signal once it has finished one (of 60 x 4); each shard's
    # task waits a little first (test-only), or the streamed job could finish between that and the signal
    rc, err, seen = _sigterm_while_writing(["augment", str(src), str(out), "--recipe", str(recipe), "--maxcount", "10",
                                            "--copies", "4"], out, tmp_path, started=True,
                                           MMDATA_TEST_SHARD_DELAY="0.3")
    assert rc == 143, (seen, err[-2000:])
    assert f"mmdata augment into {out} interrupted by SIGTERM; rerun the same command to resume it" in err
    assert "Traceback" not in err
    assert _temps(out) == [], f"left {_temps(out)} (saw {seen})"


def _stop_training(unlabelled_test: Path, tmp_path: Path, signum: int,
                   preexec_fn: Callable[[], None] = sigint_as_from_a_terminal) -> tuple[int, str]:
    """``mmdata train`` stopped by ``signum`` once its first epoch is done: (exit code, stderr). On a hang its
    threads' stacks are in the failure (``PYTHONFAULTHANDLER``, tests/procs_helpers.py)."""
    proc = subprocess.Popen([*CLI, "train", str(unlabelled_test), "--epochs", "100000", "--no-robustness",
                             "--out", str(tmp_path / "run")], cwd=tmp_path, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=_env(PYTHONFAULTHANDLER="1"), preexec_fn=preexec_fn)
    lines = []
    for line in proc.stderr:  # the progress lines: "epoch 0: loss ..."
        lines.append(line)
        if line.startswith("epoch "):
            break
    else:
        pytest.fail(f"no epoch finished (exit {proc.wait()}): {''.join(lines)[-2000:]}")
    proc.send_signal(signum)
    _, rest = communicate_or_kill(proc, 120)  # the rest of stderr, and the exit
    return proc.returncode, rest


@pytest.mark.sigint
def test_ctrl_c_ends_train_with_130_and_a_message(unlabelled_test: Path, tmp_path: Path) -> None:
    """`mmdata train` on Ctrl-C exited 130 saying nothing, unlike shard, augment and ablate."""
    rc, err = _stop_training(unlabelled_test, tmp_path, signal.SIGINT)
    assert rc == 130, err[-2000:]
    assert "mmdata train interrupted; its outputs in" in err and "rerun the same command" in err
    assert "Traceback" not in err


def test_sigterm_ends_train_with_143_and_a_message(unlabelled_test: Path, tmp_path: Path) -> None:
    rc, err = _stop_training(unlabelled_test, tmp_path, signal.SIGTERM)
    assert rc == 143, err[-2000:]
    assert "mmdata train interrupted by SIGTERM; its outputs in" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "metrics.json").exists()


def _sigterm_held_back() -> None:
    """``preexec_fn``: the child starts with SIGTERM blocked, as one forked while its parent held it back."""
    sigint_as_from_a_terminal()
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])


def test_sigterm_ends_train_started_with_sigterm_blocked(unlabelled_test: Path, tmp_path: Path) -> None:
    """A job whose parent forked it while holding SIGTERM back inherited the blocked signal: the scheduler's
    SIGTERM stayed pending and training went on (CI: 13,000 more epochs in 120 s, until SIGKILL)."""
    rc, err = _stop_training(unlabelled_test, tmp_path, signal.SIGTERM, preexec_fn=_sigterm_held_back)
    assert rc == 143, err[-2000:]
    assert "mmdata train interrupted by SIGTERM; its outputs in" in err and "Traceback" not in err


_CONNECT_THEN_SIGTERM = """import os, signal, sys, time
from mmdata.cli.common import terminated_as_exit
from mmdata.ray_cluster import connect, disconnect
with terminated_as_exit():  # as `mmdata shard --executor ray` runs the writer
    owned = connect(sys.argv[1])  # ray.init: Ray's driver installs its own SIGTERM handler
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    finally:
        disconnect(owned)
"""


@pytest.mark.ray
def test_connecting_to_ray_keeps_the_commands_sigterm_handler(ray_cluster) -> None:
    """``ray.init`` replaced the command's SIGTERM handler by Ray's (``sys.exit(15)``): `mmdata shard
    --executor ray` stopped by SIGTERM exited 15 with no message."""
    proc = subprocess.run([sys.executable, "-c", _CONNECT_THEN_SIGTERM, ray_cluster.address], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143, proc.stderr[-2000:]


@pytest.mark.ray
def test_sigterm_on_a_ray_shard_driver_exits_143_and_names_sigterm(tmp_path: Path, ray_cluster) -> None:
    """The driver waits in ``ray.wait``, which turns the handler's exception into a KeyboardInterrupt:
    still SIGTERM's exit code and message."""
    from mmdata.shards.journal import _records

    raw = make_sample_folder(tmp_path / "raw", n=40)
    out = tmp_path / "ds"
    proc = subprocess.Popen([*CLI, "shard", str(raw), str(out), "--maxcount", "1", "--executor", "ray", "--address",
                             ray_cluster.address], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    journal = out / ".mmdata-journal"
    deadline = time.time() + 120
    while time.time() < deadline and len(_records(journal.read_bytes() if journal.exists() else b"")[0]) < 2:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = communicate_or_kill(proc, 120)
    assert proc.returncode == 143, err[-2000:]
    assert "interrupted by SIGTERM; rerun the same command to resume it" in err and "Traceback" not in err


# 7, 8: help, --version, preview -o - --------------------------------------------------------------------

def _help(*args: str, columns: int) -> str:
    env = _env(COLUMNS=str(columns), TERM="dumb")
    env.pop("TYPER_USE_RICH", None)
    res = subprocess.run([*CLI, *args, "--help"], env=env, capture_output=True, text=True, timeout=120, check=True)
    return " ".join(res.stdout.replace("│", " ").split())


@pytest.mark.parametrize("columns", [80, 200])  # plain (click) help below 110 columns, rich above
def test_help_shows_the_ray_extra_as_it_is_typed(columns: int) -> None:
    """Plain help showed ``pip install 'mmdata\\[ray]'`` (rich's escape): pasted, a literal backslash; and that
    PyPI form installs another project (QA35 docs #1): the clone / wheel forms of README's Install."""
    text = _help("shard", columns=columns)
    assert "pip install -e '.[ray]' in a clone of mmdata, or pip install \"<wheel>[ray]\"" in text and "\\[" not in text
    assert "'mmdata[" not in text


def test_every_option_has_help_and_arguments_say_what_they_accept() -> None:
    train = _help("train", columns=80)
    for option, words in (("--epochs", "Training epochs"), ("--batch-size", "Samples per training batch"),
                          ("--lr", "Learning rate"), ("--weight-decay", "Weight decay")):
        assert re.search(f"{option} <[^>]+> {words}", train), option  # "--lr <float> Learning rate ..."
    assert re.search("-j, --workers <[^>]+> Parallel shard writers", _help("datasets", "build", columns=80))
    assert "shard pattern" not in _help("add-modality", columns=80)  # it refuses one
    assert "(or a shard pattern)" in _help("preview", columns=80)
    top = _help(columns=80)
    assert "Exit status: 0 done" in top and "--version" in top
    assert "Exit status:" in _help("inspect", columns=80)


def test_version(tmp_path: Path) -> None:
    import mmdata

    res = _mmdata("--version", cwd=tmp_path)
    assert res.returncode == 0 and res.stdout == f"mmdata {mmdata.__version__}\n"


def test_preview_to_stdout(unlabelled_test: Path, tmp_path: Path) -> None:
    """``preview -o -`` wrote a file named ``-``: now the PNG goes to stdout, and only when it is not a terminal."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - {op: hflip, p: 0.5}\n")
    args = ["preview", str(unlabelled_test), "--recipe", str(recipe), "-o", "-", "--n", "2", "--variants", "1"]
    res = subprocess.run([*CLI, *args], capture_output=True, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=300)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert res.stdout.startswith(b"\x89PNG\r\n\x1a\n") and res.stdout.endswith(b"IEND\xaeB`\x82")
    assert list(tmp_path.iterdir()) == [recipe]  # no file named "-"
    rc, shown = _on_a_terminal(args, tmp_path)
    assert rc == 2 and "stdout is a terminal" in shown and "PNG" not in shown.split("error:")[0]


def test_an_option_of_one_value_given_twice_is_refused(tmp_path: Path) -> None:
    """QA33: ``--split-from dsA --split-from dsB`` kept dsB silently (click's last-wins); a multi-site user
    lost one site's earlier splits. Options taking a list (``--column``, ``--meta``) still repeat."""
    r = _mmdata("shard", "raw", "out", "--split-from", "dsA", "--split-from=dsB", cwd=tmp_path)
    assert r.returncode == 2 and "--split-from is given 2 times" in r.stderr and "'dsA'" in r.stderr, r.stderr
    r = _mmdata("shard", "raw", "out", "--seed", "0", "--seed", "1", "--json", cwd=tmp_path)
    assert r.returncode == 2 and "--seed is given 2 times" in json.loads(r.stdout)["error"]
    # an option taking a list repeats as before (the run then fails on the missing source, not on the options)
    r = _mmdata("shard", "raw", "out", "--column", "image=img", "--column", "label=cls", cwd=tmp_path)
    assert "given 2 times" not in r.stderr and r.returncode == 2 and "does not exist" in r.stderr, r.stderr
