"""QA27 B9 / B10 / B16 (display): strings from a downloaded card reach the terminal escaped and bounded.

* B9: ``inspect`` printed a card ``name`` ``n\\x1b[2J`` and ``warnings`` ``w\\x1b[1A\\x1b[2K`` raw (a live ESC
  clears the screen, cursor-up + erase hides the warning above); ``diff`` printed ``relabelled: cat -> c\\x1b[2Jat``.
* B10: ``inspect`` (text and ``--json``) never showed the card's ``license`` / ``description`` / ``command``.
* B16: ``inspect`` printed a 100,000-character class name whole; it is cut, with its length.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_class_folders
from tests.shards.test_verify_qa import _cli, _edit_card

ESC = "\x1b"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("card_display")
    mmdata.shard(make_class_folders(t / "raw", per_class=2), t / "ds", progress=False, license="CC-BY-4.0",
                 description="Three classes, two images each.")
    return t / "ds"


@pytest.fixture
def ds(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "ds"))


def test_inspect_escapes_the_card_name_and_warnings(ds: Path) -> None:
    _edit_card(ds, lambda c: c.update(name=f"n{ESC}[2J", warnings=[f"w{ESC}[1A{ESC}[2K"]))
    for args in (["inspect", str(ds)], ["inspect", str(ds), "--json"]):
        code, out = _cli(args)
        assert code == 0 and ESC not in out, repr(out[:300])
        assert "w\\x1b[1A\\x1b[2K" in out  # the warning is still said, readable
    code, out = _cli(["inspect", str(ds)])
    assert out.startswith("n\\x1b[2J (samples layout)")


def test_diff_escapes_class_names(ds: Path, built: Path) -> None:
    """The QA case: v2's card renames class cat to ``c ESC[2J at``: every sample of cat is relabelled."""
    _edit_card(ds, lambda c: c.update(label_names=[n if n != "cat" else f"c{ESC}[2Jat" for n in c["label_names"]]))
    code, out = _cli(["diff", str(built), str(ds)])
    assert code == 0 and ESC not in out, repr(out)
    assert "relabelled: cat -> c\\x1b[2Jat: 2" in out and "id 1 cat -> c\\x1b[2Jat" in out


def test_inspect_shows_license_description_and_command(ds: Path) -> None:
    code, out = _cli(["inspect", str(ds)])
    assert code == 0 and "license: CC-BY-4.0" in out and "description: Three classes, two images each." in out
    assert "command: mmdata shard SRC OUT --license CC-BY-4.0" in out
    code, out = _cli(["inspect", str(ds), "--json"])
    rep, _ = json.JSONDecoder().raw_decode(out)
    assert rep["license"] == "CC-BY-4.0" and rep["description"] == "Three classes, two images each."
    assert rep["command"].startswith("mmdata shard SRC OUT")


def test_inspect_cuts_a_huge_class_name(ds: Path) -> None:
    long = "x" * 100_000
    _edit_card(ds, lambda c: c.update(label_names=[long, *c["label_names"][1:]]))
    code, out = _cli(["inspect", str(ds)])
    assert code == 0 and "x" * 201 not in out.replace(" ", "").replace("│", "") and len(out) < 20_000
    assert "characters)" in out
    code, out = _cli(["inspect", str(ds), "--json"])
    assert long in out  # --json keeps it whole


def test_verify_escapes_what_its_problems_quote(ds: Path) -> None:
    """A problem quotes names from the folder, the card and the index: a tar named with an ESC in the dataset
    folder is named escaped."""
    (ds / f"x{ESC}[2J.tar").write_bytes(b"")
    code, out = _cli(["verify", str(ds)])
    assert code == 1 and ESC not in out and "x\\x1b[2J.tar" in out, repr(out)
