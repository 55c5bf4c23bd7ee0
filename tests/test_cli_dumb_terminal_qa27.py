"""QA27 A10 (accessibility): under ``TERM=dumb`` (emacs' shell; emacspeak reads its output to blind users)
rich takes the terminal as 80x25 whatever its size: ``mmdata inspect`` printed 71-column tables in a
40-column window. The window's size (or ``COLUMNS``) is used now, and a dumb terminal gets each table row
as ``header: value`` lines, without box-drawing characters.
"""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder

BOX = set("┏┓┗┛┃━┡┩│─└┘┼╇┳┻")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dumb")
    make_sample_folder(root / "raw", n=6)
    mmdata.shard(root / "raw", root / "ds", progress=False)
    return root / "ds"


def _on_a_terminal(args: list[str], columns: int, env: dict[str, str]) -> str:
    """The output of ``python -m mmdata ARGS`` on a pseudo-terminal ``columns`` wide."""
    main, sub = pty.openpty()
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 25, columns, 0, 0))
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE",
                                                              "NO_COLOR", "TERM")}
    proc = subprocess.Popen([sys.executable, "-m", "mmdata", *args], stdin=sub, stdout=sub, stderr=sub,
                            env={**base, "NO_COLOR": "1", **env}, close_fds=True)
    os.close(sub)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert proc.wait(timeout=120) == 0, b"".join(chunks).decode()[-3000:]
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;]*m", "", text)  # bold (NO_COLOR keeps it): no width on the screen


def test_tables_fit_a_narrow_dumb_terminal(dataset: Path) -> None:
    """The QA run: ``TERM=dumb script -qc "stty cols 40; python -m mmdata inspect DS"``."""
    text = _on_a_terminal(["inspect", str(dataset)], 40, {"TERM": "dumb"})
    lines = text.splitlines()
    assert "modality pattern" in text and len(lines) > 10
    assert max(len(ln) for ln in lines) <= 40, text
    assert not BOX & set(text), text  # records, read in order, no borders
    assert "modality pattern: audio+image+label+text" in text


def _printed(term: str, monkeypatch: pytest.MonkeyPatch, columns: str | None = None) -> str:
    from cli.common import ResultConsole, table

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    buf = io.StringIO()
    con = ResultConsole(file=buf, force_terminal=True, no_color=True, _environ={"TERM": term})
    con.print("word " * 30)
    t = table("split", "samples", "a long header for this column")
    t.add_row("train", "12", "x")
    con.print(t)
    return re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue())


@pytest.mark.parametrize("columns", ["40", "200"])
def test_a_dumb_terminal_takes_columns_and_gets_records(monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    """COLUMNS is a dumb terminal's width too (rich said 80 whatever it was); a row reads as records."""
    text = _printed("dumb", monkeypatch, columns)
    assert not BOX & set(text), text
    assert "split: train" in text and "a long header for this column: x" in text
    width = max(len(ln) for ln in text.splitlines())
    assert width <= 40 if columns == "40" else width > 80, text


def test_a_smart_terminal_keeps_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    text = _printed("xterm", monkeypatch, "100")
    assert BOX & set(text) and "split: train" not in text, text
