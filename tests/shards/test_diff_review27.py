"""QA27 G2 review findings in diff: output folders inside the source are no card change (G2-5), the left-out
entries are listed up to ``--limit`` (G2-5), ``card_text`` lives beside ``one_line_path`` and skipped paths print
on one line (G2-6)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.shards.diff import diff
from mmdata.testing import make_class_folders
from tests.shards.test_verify_qa import _edit_card


def _cli(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.output


def test_output_folders_inside_the_source_are_no_card_change(tmp_path: Path) -> None:
    """``data`` -> ``data/out`` against ``data/out2``: the second job leaves out ``out2`` (its own) and ``out``
    (an earlier output); neither is data, so ``--fail-on card`` passes."""
    src = make_class_folders(tmp_path / "data", per_class=2)
    mmdata.shard(src, src / "out", progress=False)
    mmdata.shard(src, src / "out2", progress=False)
    d = diff(src / "out", src / "out2")
    assert d["card"]["skipped"] == {"a": 1, "b": 2, "added": [], "removed": []}
    assert d["card"]["changed"] is False and d["same"] is True
    code, out = _cli(["diff", str(src / "out"), str(src / "out2"), "--fail-on", "card"])
    assert code == 0, out


@pytest.fixture(scope="module")
def v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("diff_review")
    mmdata.shard(make_class_folders(t / "raw", per_class=2), t / "v1", progress=False)
    return t / "v1"


def test_left_out_entries_are_listed_up_to_the_limit(v1: Path, tmp_path: Path) -> None:
    v2 = Path(shutil.copytree(v1, tmp_path / "v2"))
    many = [{"what": "file", "source": f"cat/{i:04d}.png", "reason": "truncated PNG", "sample": None} for i in range(300)]
    _edit_card(v2, lambda c: c.update(skipped=many))
    d = diff(v1, v2, limit=5)
    sk = d["card"]["skipped"]
    assert sk["a"] == 0 and sk["b"] == 300 and len(sk["added"]) == 5 and sk["removed"] == []
    assert sk["not_listed"] == {"added": 295, "removed": 0} and d["card"]["changed"] is True
    assert diff(v1, v2, limit=0)["card"]["changed"] is True  # nothing listed, still a change
    assert len(diff(v1, v2, limit=None)["card"]["skipped"]["added"]) == 300
    code, out = _cli(["diff", str(v1), str(v2), "--json", "--limit", "3"])
    rep, _ = json.JSONDecoder().raw_decode(out[out.index("{"):])
    assert len(rep["card"]["skipped"]["added"]) == 3 and rep["card"]["skipped"]["not_listed"]["added"] == 297
    code, out = _cli(["diff", str(v1), str(v2), "--limit", "0"])
    assert "left out by the jobs: 0 -> 300 entries (300 added)" in " ".join(out.split()), out


def test_card_text_lives_beside_one_line_path() -> None:
    from mmdata.cli import common, shards

    assert shards.card_text is common.card_text
    assert common.card_text("Icon\r" + "x" * 300, limit=8) == "Icon\\rxx... (306 characters)"  # as before the move


def test_left_out_paths_print_on_one_line() -> None:
    """macOS's ``Icon\\r`` (a folder's custom icon) lost its ``\\r`` in the left-out lines: the terminal returned to
    the line's start."""
    from mmdata.cli.common import err_console
    from mmdata.cli.shards import _left_out

    with err_console.capture() as cap:
        _left_out([{"what": "file", "source": "cat/Icon\r", "reason": "not data", "sample": None}])
    assert "cat/Icon\\r: not data" in cap.get() and "\r" not in cap.get()
