"""What a person reads from ``mmdata``: counts of one in the singular ("1 shard", not "1 shards"), measured
values rounded (not ``0.33325`` seconds), no ``<bool>`` beside a flag in ``--help``, one minus sign in the
ablation report. ``--json`` keeps the bare counts and every digit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmdata.ablate.report import interval_text, num
from mmdata.testing import make_sample_folder

CLI = [sys.executable, "-m", "mmdata.cli.main"]


def _mmdata(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env={**base, **env},
                          stdin=subprocess.DEVNULL, timeout=300)


@pytest.fixture(scope="module")
def one_shard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 samples in 1 shard, one image size, audio of 1/3 s (2666 frames at 8 kHz: 0.33325 s)."""
    root = tmp_path_factory.mktemp("polish")
    make_sample_folder(root / "raw", n=3, missing=False, audio_seconds=1 / 3)
    res = _mmdata("shard", str(root / "raw"), str(root / "ds"), "--split", "train=1", cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "wrote 3 samples in 1 shard to " in res.stdout, res.stdout
    return root / "ds"


def test_a_count_of_one_is_singular(one_shard: Path, tmp_path: Path) -> None:
    """"1 shards" in shard, inspect and verify ("1 shards match the index") and "1 distinct sizes"."""
    inspect = _mmdata("inspect", str(one_shard), cwd=tmp_path)
    assert inspect.returncode == 0, inspect.stderr[-3000:]
    assert "3 samples, 1 shard, " in inspect.stdout and "1 shards" not in inspect.stdout, inspect.stdout
    assert "1 distinct size" in inspect.stdout and "1 distinct sizes" not in inspect.stdout, inspect.stdout
    verify = _mmdata("verify", str(one_shard), cwd=tmp_path)
    assert verify.returncode == 0 and verify.stdout.strip() == "ok: 1 shard matches the index", verify.stdout


def test_json_keeps_the_bare_counts(one_shard: Path, tmp_path: Path) -> None:
    rep = json.loads(_mmdata("inspect", str(one_shard), "--json", cwd=tmp_path).stdout)
    assert rep["shards"]["count"] == 1 and rep["samples"] == 3 and rep["image"]["sizes"] == 1
    assert json.loads(_mmdata("verify", str(one_shard), "--json", cwd=tmp_path).stdout)["checked"] == 1


def test_inspect_rounds_measured_values_and_json_keeps_every_digit(one_shard: Path, tmp_path: Path) -> None:
    text = _mmdata("inspect", str(one_shard), cwd=tmp_path).stdout
    row = next(ln for ln in text.splitlines() if "audio_seconds" in ln)
    assert [c.strip() for c in row.split("│")[3:6]] == ["0.33"] * 3, row  # min, median, max (was 0.33325)
    rep = json.loads(_mmdata("inspect", str(one_shard), "--json", cwd=tmp_path).stdout)
    assert rep["audio_seconds"]["median"] == pytest.approx(2666 / 8000)


COMMANDS = [["shard"], ["inspect"], ["verify"], ["add-modality"], ["augment"], ["preview"], ["train"], ["evaluate"], ["match"],
            ["audit-alignment"], ["ablate"], ["demo"], ["datasets"], ["datasets", "build"], ["datasets", "list"], []]


#: every command's ``--help`` through the CLI's ``main``, in one process (a process per command took ~1 s each)
HELPS = """
import contextlib, io, json, sys
from mmdata.cli.main import main
out = []
for command in json.loads(sys.argv[1]):
    buf, code = io.StringIO(), None
    with contextlib.redirect_stdout(buf):
        try:
            main([*command, "--help"])
        except SystemExit as exc:
            code = exc.code
    out.append([code, buf.getvalue()])
print(json.dumps(out))
"""


@pytest.mark.parametrize("columns", ["80", "160"])
def test_help_shows_no_type_beside_a_flag(columns: str, tmp_path: Path) -> None:
    """typer's rich help (110 columns and more) printed ``<bool>`` beside every flag (``--json``, ``--deep /
    --no-deep``, ``--help``, ``--version``), a value none of them takes."""
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    res = subprocess.run([sys.executable, "-c", HELPS, json.dumps(COMMANDS)], capture_output=True, text=True, cwd=tmp_path,
                         env={**base, "COLUMNS": columns, "NO_COLOR": "1", "TERM": "dumb"}, stdin=subprocess.DEVNULL,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    helps = json.loads(res.stdout)
    assert len(helps) == len(COMMANDS)
    for command, (code, text) in zip(COMMANDS, helps):
        assert code == 0 and "--help" in text, (command, code, text)
        assert "<bool>" not in text, (command, columns, text)
    rich = any("╭" in text for _, text in helps)  # typer's rich panels from 110 columns, click's plain help below
    assert rich == (int(columns) >= 110), helps[0][1]


def test_ablation_numbers_use_one_minus_sign() -> None:
    """The intervals' open ends read ``[−∞, ...]`` (U+2212) beside ``-1.50`` (ASCII) in the same table."""
    texts = [interval_text([None, -1.5]), interval_text([-2.0, None]), interval_text([-154.98, 58.21], limits=(-100.0, 100.0)),
             num(-0.00203), num(-3.0, 1)]
    assert texts[0] == "[-∞, -1.50]" and texts[2] == "[-100.00†, +58.21]"
    assert not any("\u2212" in t for t in texts), texts


@pytest.mark.parametrize("width", [40, 200])
def test_a_narrow_terminal_never_splits_a_value(width: int) -> None:
    """QA at 40 columns: the ablation table read `+3.` over `06` and `1.0` over `0`. Too narrow for every
    column's longest word, each row is `header: value` lines; wide enough, the table as before."""
    import io

    from rich.console import Console
    from rich.markup import escape

    from mmdata.cli.common import table

    t = table("arm", "seeds", "Δ accuracy (points)", "95% CI", "p (Holm)", "decision", title="arms")
    t.add_row(escape("-image.random_crop[2]"), "2", "+3.06", "[-∞, +∞]", "1.00", "inconclusive")
    t.add_row("-audio.noise", "2", "-12.50", "[-40.12, +15.3]", "0.50", "hurts")
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False, color_system=None).print(t)
    text = out.getvalue()
    for value in ("+3.06", "-12.50", "1.00", "inconclusive", "-image.random_crop[2]", "[-40.12,"):
        assert value in text, text
    assert ("Δ accuracy (points): +3.06" in text) == (width == 40), text


def _printed(t: object, width: int, encoding: str = "utf-8") -> str:
    import io

    from rich.console import Console

    buf = io.BytesIO()
    f = io.TextIOWrapper(buf, encoding=encoding, errors="backslashreplace")
    Console(file=f, width=width, force_terminal=False, color_system=None).print(t)
    f.flush()
    return buf.getvalue().decode(encoding)


def test_records_come_before_a_header_word_or_a_wide_character_is_split() -> None:
    """Second QA pass: the width check counted only the cells' words in characters, so headers were still split
    (`preci` over `sion`) and CJK names (two cells a character) folded mid-word; a header already escaped was
    escaped again in the records (`\\[bold]`), and the caption was lost."""
    from rich.markup import escape

    from mmdata.cli.common import table

    t = table("class", "precision", "recall", "support", escape("acc [bold]pct[/bold]"), caption="n: samples")
    t.add_row("漢字漢字漢字漢字漢字", "0.50", "1.00", "12", "+1.25")
    text = _printed(t, 40)
    assert "class: 漢字漢字漢字漢字漢字" in text and "precision: 0.50" in text, text
    assert "acc [bold]pct[/bold]: +1.25" in text and "\\[" not in text and "n: samples" in text


def test_an_ascii_terminal_gets_aligned_tables() -> None:
    """Second QA pass: under an ASCII locale the stream escaped `café` / `∞` after rich had measured the cells,
    so rows overflowed their borders. The cells are escaped first now, and the rows line up."""
    from rich.markup import escape

    from mmdata.cli.common import table

    t = table("arm", "95% CI", "Δ accuracy")
    t.add_row(escape("café[2]"), "[-∞, +∞]", "+3.06")
    t.add_row("漢字", "[-40.12, +15.3]", "-12.50")
    text = _printed(t, 200, "ascii")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert text.isascii() and "caf\\xe9[2]" in text and "\\u221e" in text, text
    assert len({len(ln) for ln in lines}) == 1, text  # every row as wide as the borders


def test_inspect_shows_class_names_that_look_like_markup(tmp_path: Path) -> None:
    """Second QA pass: a class named `[/b]` crashed `mmdata inspect` (rich MarkupError); `[red]x[` read `x[`."""
    raw = make_sample_folder(tmp_path / "raw", n=3)
    (raw / "labels.txt").write_text("[/b]\n[red]x[\nok\n", encoding="utf-8")
    for i, p in enumerate(sorted(raw.glob("*.cls"))):
        p.write_text(str(i % 3))
    ds = tmp_path / "ds"
    r = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "shard", str(raw), str(ds)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "inspect", str(ds)], capture_output=True, text=True)
    assert r.returncode == 0 and "[/b]: " in r.stdout and "[red]x[: " in r.stdout, r.stdout + r.stderr


def test_no_width_splits_a_word() -> None:
    """Third QA pass: rich narrows the widest columns first, below their longest word, so at 74-85 columns the
    ablation table read `inconclusiv` over `e` and `-image.cut` over `out`. Every width from 30 to 130 now
    shows each word whole, in the table or as records."""
    from mmdata.cli.common import table

    for width in range(30, 131):
        t = table("arm", "seeds", "Δ accuracy (points)", "95% CI (97.5%, Holm)", "p (Holm)", "decision")
        t.add_row("-image.cutout", "3", "+4.17", "[-∞, +∞]", "0.67", "inconclusive")
        t.add_row("漢字漢字漢字", "3", "-12.50", "[-40.12, +15.3]", "0.50", "hurts")
        text = _printed(t, width)
        for word in ("-image.cutout", "inconclusive", "accuracy", "(points)", "(97.5%,", "漢字漢字漢字", "[-40.12,"):
            assert word in text, (width, word, text)
        assert max(len(ln) for ln in text.splitlines()) <= width, (width, text)
