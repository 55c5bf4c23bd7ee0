"""QA28 security #2 and i18n #9: what reaches the terminal from downloaded data.

* security #2: ``mmdata preview`` and ``mmdata train`` printed class names (the card) and source keys (a tar
  member's name) raw: SGR colours, an ST-terminated OSC 8 hyperlink and OSC 52 clipboard write (rich drops only
  BEL), the C1 CSI ``\\x9b`` and U+202E reached the terminal. Now every command escapes them as inspect does.
* i18n #9: inspect / diff / verify printed ZWNJ / ZWJ as ``\\u200c`` / ``\\u200d``, mangling Persian words and
  emoji class names; between two visible characters they are now kept (the BiDi controls stay escaped, and
  RLM / LRM too: zero width, a class with a trailing RLM would print as the one without).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.shards import index as idx
from mmdata.terminal import terminal_lines, terminal_text
from mmdata.testing import make_class_folders

#: the QA's poison: colour, an OSC 8 link and an OSC 52 clipboard write ended by ST, a C1 CSI, a BiDi override
POISON = "\x1b[31mRED\x1b]8;;http://evil/\x1b\\LINK\x1b]8;;\x1b\\\x1b]52;c;cHduZWQ=\x1b\\\x9b2J\u202e"
RAW = ("\x1b", "\x9b", "\u202e")


def _forge(ds: Path, edit) -> None:
    """Edit the card as an attacker does: the digests recomputed (they detect edits, not forgery)."""
    card = json.loads((ds / idx.CARD).read_text())
    edit(card)
    card["card_digests"] = idx.card_digests(card)
    (ds / idx.CARD).write_text(json.dumps(card, ensure_ascii=False))


def _run(args: list[str]) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.stdout, res.stderr


def _clean(*texts: str) -> bool:
    return not any(c in t for t in texts for c in RAW)


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("poison")
    mmdata.shard(make_class_folders(t / "raw", per_class=6, classes=("cat", "dog")), t / "ds", progress=False,
                 split={"train": 0.5, "val": 0.25, "test": 0.25})
    _forge(t / "ds", lambda c: c.update(label_names=[n + POISON for n in c["label_names"]]))
    return t / "ds"


def test_preview_escapes_class_names(poisoned: Path, tmp_path: Path) -> None:
    code, out, err = _run(["preview", str(poisoned), "-r", "image_basic", "-o", str(tmp_path / "p.png"),
                           "--n", "2", "--variants", "1"])
    assert code == 0, out + err
    assert _clean(out, err), repr(out + err)
    assert "class cat\\x1b[31mRED\\x1b]8;;http://evil/" in out and "\\x9b2J\\u202e" in out


def test_preview_escapes_a_tar_members_source_key(tmp_path: Path) -> None:
    src = tmp_path / "evil.tar"
    with tarfile.open(src, "w") as tf:
        for name, data in [("\x1b]52;c;cHduZWQ=\x1b\\k.txt", b"hello"), ("ok.txt", b"hi")]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    mmdata.shard(src, tmp_path / "ds", progress=False)
    code, out, err = _run(["preview", str(tmp_path / "ds"), "-r", "image_basic", "-o", str(tmp_path / "p.png"),
                           "--n", "2", "--variants", "1"])
    assert code == 0, out + err
    assert _clean(out, err), repr(out + err)
    assert "(from \\x1b]52;c;cHduZWQ=\\x1b\\k)" in out


def test_preview_summary_lines_escape_from_python() -> None:
    from mmdata.augment.preview import summary_lines

    lines = summary_lines([{"row": 1, "key": "k", "source_key": "s\x1b]52;c;x\x1b\\", "class": "c\u202e",
                            "variants": [{"column": "epoch\x9b 0", "ops": [], "dropped": [], "text_marks": []}]}])
    assert _clean(*lines), lines
    assert lines == ["row 1: k (from s\\x1b]52;c;x\\x1b\\), class c\\u202e", "  epoch\\x9b 0: no op fired"]


def test_train_per_class_table_escapes_class_names(poisoned: Path, tmp_path: Path) -> None:
    """stdout (the per-class table) of the real command; its stderr lines come from mmdata/train/loop.py."""
    code, out, err = _run(["train", str(poisoned), "--epochs", "1", "--out", str(tmp_path / "run")])
    assert code == 0, out + err
    assert _clean(out), repr(out)
    assert "cat\\x1b[31mRED" in out.replace("\n", "").replace("│", "").replace(" ", "")


def test_consoles_escape_what_a_command_forgot() -> None:
    """The last guard: a raw string printed on the CLI's consoles still reaches the terminal escaped."""
    from rich.console import Console

    from mmdata.cli.common import terminal_safe

    buf = io.StringIO()
    con = terminal_safe(Console(file=buf, force_terminal=True, color_system="standard", width=200))
    con.print("[red]x[/] " + POISON, highlight=False)
    text = buf.getvalue()
    assert "\x1b[31m" in text  # rich's own colour for [red] is still written
    assert text.count("\x1b") == 2 and "\x9b" not in text and "\u202e" not in text, repr(text)
    assert "\\x1b]52;c;cHduZWQ=\\x1b\\" in text


@pytest.mark.parametrize("text", [
    "می\u200cخواهم",  # Persian: ZWNJ inside a word
    "👩\u200d👩\u200d👧",  # an emoji family (ZWJ sequence)
    "क्\u200dष",  # Devanagari half-form: virama + ZWJ
    "café", "猫", "a b",
])
def test_joiners_inside_a_word_are_kept(text: str) -> None:
    assert terminal_text(text) == text


@pytest.mark.parametrize("text, shown", [
    ("a\u202eb", "a\\u202eb"), ("a\u2066b\u2069", "a\\u2066b\\u2069"), ("كلب\u200f", "كلب\\u200f"),
    ("\u200eCat", "\\u200eCat"), ("\u200dx", "\\u200dx"), ("x\u200c", "x\\u200c"), ("a \u200db", "a \\u200db"),
    ("a\u200d\u200db", "a\\u200d\\u200db"), ("\ufeffa", "\\ufeffa"), ("a\nb", "a\\nb"), ("c\x9b2J", "c\\x9b2J"),
    ("\U000e0041", "\\U000e0041"),
])
def test_controls_and_invisible_marks_are_escaped(text: str, shown: str) -> None:
    assert terminal_text(text) == shown


def test_terminal_lines_keeps_line_breaks() -> None:
    assert terminal_lines("a\x1b[2J\nb\u202e") == "a\\x1b[2J\nb\\u202e"


def test_inspect_and_diff_keep_persian_and_emoji_class_names(tmp_path: Path) -> None:
    """i18n #9's case: one spelling in inspect, diff and train (a ZWNJ word and a ZWJ emoji printed as written)."""
    from mmdata.cli.common import card_text, one_line_path

    names = ("می\u200cخواهم", "👩\u200d👩\u200d👧")
    ds = tmp_path / "ds"
    mmdata.shard(make_class_folders(tmp_path / "raw", per_class=2, classes=names), ds, progress=False,
                 description="قطط\u200cها")
    code, out, err = _run(["inspect", str(ds)])
    assert code == 0, out + err
    assert all(n in out for n in names) and "\\u200" not in out, out
    assert "description: قطط\u200cها" in out
    assert card_text(names[0]) == names[0] and one_line_path(names[1]) == names[1]


def test_typographic_spaces_and_soft_breaks_are_kept() -> None:
    """The review of QA28: no-break / ideographic spaces, the soft hyphen and the zero-width space are typography
    (French, CJK, Thai), not control: `chat noir` (NBSP) printed `chat\\xa0noir` in train's class list."""
    from mmdata.terminal import terminal_text

    for text in ("chat\u00a0noir", "猫\u3000ねこ", "10\u202f000"):
        assert terminal_text(text) == text
    assert terminal_text("a\u2028b\u202ec") == "a\\u2028b\\u202ec"  # separators and BiDi controls still escaped
    # invisible ones stay escaped: 'cat' and 'cat' + ZWSP would print alike (tests/shards/test_relabel_versions.py)
    assert terminal_text("cat\u200b") == "cat\\u200b" and terminal_text("a\u00adb") == "a\\xadb"
