"""Progress of long jobs as CI logs, terminals and screen readers need it (QA 2026-12: a CI log saw
nothing of a 40-minute ``mmdata demo`` until its end; no switch turned the bars off; at 40 columns the
bar dropped its count and time). ``MMDATA_PROGRESS_INTERVAL=0``: every step prints, so the tests count
lines, never time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmdata.progress import PlainProgress, make_progress, progress_interval, progress_mode
from mmdata.testing import make_sample_folder
from tests.procs_helpers import on_a_terminal

CLI = [sys.executable, "-m", "mmdata.cli.main"]
WARNS = ["--split", "train=0.99,val=0.01"]  # a warning: split 'val' is empty


def _env(**extra: str) -> dict[str, str]:
    drop = ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "MMDATA_PROGRESS", "MMDATA_PROGRESS_INTERVAL")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def _mmdata(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=_env(**env),
                          stdin=subprocess.DEVNULL, timeout=300)


def _on_a_terminal(args: list[str], cwd: Path, **env: str) -> str:
    """What ``mmdata ARGS`` shows on a pseudo-terminal (stdout and stderr), escapes removed."""
    rc, shown = on_a_terminal([*CLI, *args], cwd, _env(TERM="xterm", NO_COLOR="1", **env))
    assert rc == 0, shown[-2000:]
    return shown


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_folder(tmp_path_factory.mktemp("progress") / "raw", n=12)


@pytest.fixture(scope="module")
def ds(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mmdata

    out = tmp_path_factory.mktemp("progress-ds") / "ds"
    mmdata.shard(raw, out, progress=False)
    return out


def _counts(stderr: str, what: str) -> list[tuple[int, int]]:
    line = rf"^{what}[^\n]*?: (\d+)/(\d+) \(\d+%\), \d+:\d\d:\d\d elapsed$"
    return [(int(m[1]), int(m[2])) for m in re.finditer(line, stderr, re.M)]


def test_shard_prints_plain_lines_off_a_terminal(raw: Path, tmp_path: Path) -> None:
    res = _mmdata("shard", str(raw), "ds", "--maxcount", "3", *WARNS, cwd=tmp_path, MMDATA_PROGRESS_INTERVAL="0")
    assert res.returncode == 0, res.stderr
    counts = _counts(res.stderr, "sharding samples")
    # a line at each finished shard, not only the last one (the CI log saw the bar once, at the end)
    assert [n for n, _ in counts] == [0, 3, 6, 9, 12] and {t for _, t in counts} == {12}, res.stderr
    assert "\x1b" not in res.stderr and "\r" not in res.stderr and "━" not in res.stderr
    assert "warning: split 'val' is empty" in res.stderr and "sharding samples" not in res.stdout


def test_the_default_interval_prints_only_the_last_line_of_a_short_job(raw: Path, tmp_path: Path) -> None:
    res = _mmdata("shard", str(raw), "ds", "--maxcount", "3", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert _counts(res.stderr, "sharding samples") == [(12, 12)], res.stderr


def test_ablate_prints_plain_lines_off_a_terminal(ds: Path, tmp_path: Path) -> None:
    from mmdata.ablate.testing import synthetic_recipe

    res = _mmdata("ablate", synthetic_recipe(tmp_path, ds, seeds=2), "--out", "abl", "-j", "1", cwd=tmp_path,
                  MMDATA_PROGRESS_INTERVAL="0")
    assert res.returncode == 0, res.stderr
    assert [n for n, _ in _counts(res.stderr, "ablation runs")] == list(range(7)), res.stderr
    assert "\x1b" not in res.stderr and "\r" not in res.stderr
    assert "vs baseline" in res.stdout and "ablation runs" not in res.stdout


def test_progress_off_keeps_warnings_and_results(raw: Path, tmp_path: Path) -> None:
    for value in ("off", "0", "false", "no"):
        res = _mmdata("shard", str(raw), f"ds-{value}", "--maxcount", "3", *WARNS, cwd=tmp_path, MMDATA_PROGRESS=value,
                      MMDATA_PROGRESS_INTERVAL="0")
        assert res.returncode == 0, res.stderr
        assert "sharding samples" not in res.stderr and "finding files" not in res.stderr, res.stderr
        assert "warning: split 'val' is empty" in res.stderr and "wrote 12 samples" in res.stdout


def test_progress_off_on_a_terminal(raw: Path, tmp_path: Path) -> None:
    shown = _on_a_terminal(["shard", str(raw), "ds", "--maxcount", "3"], tmp_path, MMDATA_PROGRESS="off")
    assert "sharding samples" not in shown and "━" not in shown and "wrote 12 samples" in shown


def test_a_huge_interval_means_the_last_line_only(raw: Path, tmp_path: Path) -> None:
    """Third QA pass: MMDATA_PROGRESS_INTERVAL=1e10 killed the keep-alive thread (OverflowError in its wait)."""
    res = _mmdata("shard", str(raw), "ds", "--maxcount", "3", cwd=tmp_path, MMDATA_PROGRESS_INTERVAL="1e10")
    assert res.returncode == 0 and "Traceback" not in res.stderr and "Error" not in res.stderr, res.stderr
    assert _counts(res.stderr, "sharding samples") == [(12, 12)], res.stderr


def test_an_unknown_value_is_a_warning_naming_the_choices(raw: Path, tmp_path: Path) -> None:
    res = _mmdata("shard", str(raw), "ds", cwd=tmp_path, MMDATA_PROGRESS="quiet", MMDATA_PROGRESS_INTERVAL="soon")
    assert res.returncode == 0, res.stderr
    assert "MMDATA_PROGRESS='quiet' is not one of auto, plain, off" in res.stderr
    assert "MMDATA_PROGRESS_INTERVAL='soon' is not a number of seconds" in res.stderr
    assert _counts(res.stderr, "sharding samples") == [(12, 12)]  # as with auto, on a pipe


def test_plain_on_a_terminal_prints_lines_not_redraws(raw: Path, tmp_path: Path) -> None:
    shown = _on_a_terminal(["shard", str(raw), "ds", "--maxcount", "3"], tmp_path, MMDATA_PROGRESS="plain",
                           MMDATA_PROGRESS_INTERVAL="0")
    assert "\r" not in shown.replace("\r\n", "\n") and "━" not in shown
    assert [n for n, _ in _counts(shown.replace("\r\n", "\n"), "sharding samples")] == [0, 3, 6, 9, 12], shown


@pytest.mark.parametrize("args", [["shard", "{raw}", "ds", "--maxcount", "3"],
                                  ["ablate", "{recipe}", "--out", "abl", "-j", "1"]], ids=["shard", "ablate"])
def test_a_narrow_terminal_keeps_the_count_and_the_time(args: list[str], raw: Path, ds: Path, tmp_path: Path) -> None:
    from mmdata.ablate.testing import synthetic_recipe

    recipe = synthetic_recipe(tmp_path, ds, seeds=2)
    shown = _on_a_terminal([a.format(raw=raw, recipe=recipe) for a in args], tmp_path, COLUMNS="40")
    n = "12/12" if args[0] == "shard" else "6/6"
    # the last frame of the bar: "sharding samples    12/12 0:00:00 0:00:00" (was "… ━━ 1… 0:…")
    assert re.search(rf"{n} \d+:\d\d:\d\d", shown), shown
    assert all(len(frame) <= 40 for line in shown.split("\n") for frame in line.split("\r")
               if "━" in frame or n in frame), shown


def test_a_wide_terminal_shows_the_bar_as_before(raw: Path, tmp_path: Path) -> None:
    shown = _on_a_terminal(["shard", str(raw), "ds", "--maxcount", "3"], tmp_path, COLUMNS="120")
    assert re.search(r"sharding samples ━+ 12/12 \d+:\d\d:\d\d", shown), shown


def test_json_keeps_progress_on_stderr(raw: Path, tmp_path: Path) -> None:
    """--json changes stdout only (QA26 F12: it turned progress off, and with it the lines a CI's no-output timeout
    needs): the progress stays on stderr as MMDATA_PROGRESS says, stdout is the JSON document alone."""
    import json

    res = _mmdata("shard", str(raw), "ds", "--json", cwd=tmp_path, MMDATA_PROGRESS="plain",
                  MMDATA_PROGRESS_INTERVAL="0")
    assert res.returncode == 0, res.stderr
    assert "sharding samples" in res.stderr and json.loads(res.stdout)["samples"] == 12


# the library side: the train loop's epoch bar, workers, the environment


def test_train_epoch_lines_do_not_read_as_epoch_results(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.train.loop import _progress

    monkeypatch.setenv("MMDATA_PROGRESS", "plain")
    monkeypatch.setenv("MMDATA_PROGRESS_INTERVAL", "0")
    run = SimpleNamespace(progress=True, rank=0, samples={"train": {"samples": 10}}, config={"batch_size": 2}, world=1)
    assert list(_progress(run, iter(range(5)), "epoch 3")) == list(range(5))  # type: ignore[arg-type]
    err = capsys.readouterr().err
    # "epoch 3: ..." is the epoch's result line that scripts wait for; a transient bar prints no last line
    assert err.splitlines() == [f"training epoch 3: {k}/5 batches ({k * 20}%), 0:00:00 elapsed" for k in range(1, 6)]
    run.rank = 1
    assert list(_progress(run, iter(range(5)), "epoch 3")) == list(range(5))  # type: ignore[arg-type]
    assert capsys.readouterr().err == ""


def test_a_forked_child_prints_nothing(tmp_path: Path) -> None:
    from rich.console import Console

    log = tmp_path / "log"
    with open(log, "w") as f:
        prog = PlainProgress(console=Console(file=f), interval=0)
        task = prog.add_task("work", total=4)
        prog.start()
        pid = os.fork()
        if pid == 0:  # a DataLoader worker made by fork holds a copy of the bar
            prog.advance(task, 2)
            f.flush()
            os._exit(0)
        os.waitpid(pid, 0)
        prog.advance(task, 1)
        prog.stop()
    assert log.read_text().splitlines() == ["work: 1/4 (25%), 0:00:00 elapsed"]


def _worker_has_no_bar(_: int) -> bool:
    return make_progress("{task.description}") is None


def test_a_dataloader_worker_gets_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("MMDATA_PROGRESS", "plain")

    class Probe(torch.utils.data.Dataset[bool]):
        def __len__(self) -> int:
            return 1

        def __getitem__(self, i: int) -> bool:
            return _worker_has_no_bar(i)

    assert make_progress("{task.description}") is not None
    assert list(torch.utils.data.DataLoader(Probe(), batch_size=None, num_workers=1)) == [True]


@pytest.mark.parametrize(("value", "mode"), [("", "auto"), ("auto", "auto"), ("plain", "plain"), ("PLAIN", "plain"),
                                             ("off", "off"), ("0", "off"), ("false", "off"), ("no", "off"),
                                             ("1", "auto")])
def test_modes(value: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMDATA_PROGRESS", value)
    assert progress_mode() == mode


def test_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    import mmdata.progress

    monkeypatch.setattr(mmdata.progress, "_warned", set())
    monkeypatch.delenv("MMDATA_PROGRESS_INTERVAL", raising=False)
    assert progress_interval() == 30.0
    monkeypatch.setenv("MMDATA_PROGRESS_INTERVAL", "2.5")
    assert progress_interval() == 2.5
    monkeypatch.setenv("MMDATA_PROGRESS_INTERVAL", "-1")
    with pytest.warns(UserWarning, match="MMDATA_PROGRESS_INTERVAL='-1' is not a number of seconds >= 0"):
        assert progress_interval() == 30.0


def test_plain_lines() -> None:
    p = PlainProgress(interval=0, unit="bytes")
    p.add_task("staging s3://b/ds", total=2_000_000, completed=500_000)
    assert p.line(p.tasks[0]).startswith("staging s3://b/ds: 500.0 kB/2.0 MB (25%), 0:00:00 elapsed")
    p = PlainProgress(interval=0)
    p.add_task("finding files: 12", total=None)
    assert p.line(p.tasks[0]) == "finding files: 12, 0:00:00 elapsed"
    p.update(0, total=3, completed=2.999)
    assert "(99%)" in p.line(p.tasks[0])  # never 100% before the end


def test_a_busy_job_without_a_step_still_prints_a_line_each_interval() -> None:
    """One ablation run of 20 minutes: no step, yet the CI log must see the job alive."""
    import io
    import time

    from rich.console import Console

    log = io.StringIO()
    prog = PlainProgress(console=Console(file=log), interval=0.01)
    prog.add_task("ablation runs", total=4)
    prog.start()
    waited = 0.0
    while log.getvalue().count("\n") < 2 and waited < 60:  # a bound for a loaded machine, not a timing
        time.sleep(0.05)
        waited += 0.05
    prog.stop()
    lines = log.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("ablation runs: 0/4 (0%), ") for line in lines), lines
