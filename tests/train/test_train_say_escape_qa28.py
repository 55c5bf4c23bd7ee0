"""QA28 security #2, train's part: ``mmdata train`` printed the card's class names raw on stderr
(``pb: 2 classes (cat ESC[31mRED ESC]52;c;... \\x9b2J U+202E, ...)``, from mmdata/train/loop.py's ``Run.say``).
Now they are escaped as inspect prints them (mmdata.terminal), and read as text, not rich markup."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.shards import index as idx
from mmdata.testing import make_class_folders

POISON = "\x1b[31mRED\x1b]8;;http://evil/\x1b\\LINK\x1b]8;;\x1b\\\x1b]52;c;cHduZWQ=\x1b\\\x9b2J\u202e[bold]"


def test_train_escapes_class_names_on_stderr(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    mmdata.shard(make_class_folders(tmp_path / "raw", per_class=6, classes=("cat", "dog")), ds, progress=False,
                 split={"train": 0.5, "val": 0.25, "test": 0.25})
    card = json.loads((ds / idx.CARD).read_text())
    card["label_names"] = [n + POISON for n in card["label_names"]]
    card["card_digests"] = idx.card_digests(card)  # forged, as anyone can
    (ds / idx.CARD).write_text(json.dumps(card, ensure_ascii=False))
    res = CliRunner().invoke(app, ["train", str(ds), "--epochs", "1", "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    both = res.stdout + res.stderr
    assert not any(c in both for c in ("\x1b", "\x9b", "\u202e")), repr(both)
    assert "cat\\x1b[31mRED\\x1b]8;;http://evil/\\x1b\\LINK" in res.stderr
    assert "\\u202e[bold]" in res.stderr  # markup in a name is text
