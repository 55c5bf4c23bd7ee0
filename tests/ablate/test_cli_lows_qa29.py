"""QA29 stats #6: the terminal's controls headline printed raw Markdown, --fail-on's help read as if `both` were a
value, and an interrupt said "13 finished runs kept" beside 16 rows (3 failed) in runs.parquet."""

from __future__ import annotations

import io
import signal
from pathlib import Path

import pytest

from mmdata.ablate import run
from mmdata.ablate.report import plain_text
from mmdata.ablate.runner import Interrupted


def test_the_terminal_headline_has_no_markdown_emphasis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from mmdata.cli.ablate import _print_summary, tripped
    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=4, progress=False)
    cfg = {"dataset": {"path": str(data)}, "trainer": {}, "seeds": 2,
           "design": {"mode": "explicit", "baseline": None, "arms": {}}, "controls": {"identity": False, "label_noise": 0.3}}
    s = run(cfg, tmp_path / "o", workers=1, progress=False, plots=False)
    s["controls"]["headline"] = ("The sensitivity control failed: `label_noise` (a planted harmful arm) came out "
                                 "**inconclusive**, not hurts.")
    s["controls"]["verdict"] = "insensitive"
    piped = Console(file=io.StringIO(), width=300)
    monkeypatch.setattr("mmdata.cli.ablate.console", piped)
    _print_summary(s, tmp_path / "o")
    shown = piped.file.getvalue()  # type: ignore[attr-defined]
    assert "came out inconclusive, not hurts" in shown and "**" not in shown
    assert tripped(s, ["controls"]) == ["controls insensitive: " + plain_text(s["controls"]["headline"])]
    assert "**" not in tripped(s, ["controls"])[0] and "`label_noise`" in tripped(s, ["controls"])[0]


def test_fail_on_help_names_the_value_for_both() -> None:
    import typer.main

    from mmdata.cli.main import app

    cmd = typer.main.get_command(app).commands["ablate"]  # type: ignore[attr-defined]
    text = next(p.help for p in cmd.params if p.name == "fail_on")
    assert "both: hurts,controls" not in text and "for both, pass --fail-on hurts,controls" in text


def test_the_interrupt_message_counts_the_failed_runs_saved_too() -> None:
    msg = str(Interrupted(signal.SIGINT, 13, 3))
    assert msg == ("interrupted by SIGINT; 13 finished runs kept and 3 failed runs recorded (retried on resume) — rerun "
                   "to resume")
    assert str(Interrupted(signal.SIGTERM, 4)) == "interrupted by SIGTERM; 4 finished runs kept — rerun to resume"
