"""QA27 B8: ``mmdata diff A B --fail-on any`` ignored the card's ``license``, ``description``, ``name``, ``skipped``
and ``command`` (CC-BY-4.0 -> proprietary: "no sample differs", ``"card": {"changed": false}``). They are compared
under ``card``; a license, description or left-out change makes ``card.changed`` (a release gate sees it), a name or
command change is reported only (two shardings of one folder differ in both)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.diff import diff
from mmdata.testing import make_class_folders
from tests.shards.test_verify_qa import _cli, _edit_card


@pytest.fixture(scope="module")
def v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("diff_card")
    mmdata.shard(make_class_folders(t / "raw", per_class=2), t / "v1", progress=False, license="CC-BY-4.0",
                 description="Three classes.")
    return t / "v1"


def _v2(v1: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    v2 = Path(shutil.copytree(v1, tmp_path / "v2"))
    _edit_card(v2, edit)
    return v2


def test_a_license_change_fails_the_gate(v1: Path, tmp_path: Path) -> None:
    """The QA case."""
    v2 = _v2(v1, tmp_path, lambda c: c.update(license="proprietary"))
    d = diff(v1, v2)
    assert d["card"]["license"] == {"a": "CC-BY-4.0", "b": "proprietary", "same": False}
    assert d["card"]["changed"] is True and d["same"] is False and d["counts"]["unchanged"] == 6
    for gate in ("any", "card"):
        code, out = _cli(["diff", str(v1), str(v2), "--fail-on", gate])
        assert code == 1 and "license: CC-BY-4.0 -> proprietary" in out and "--fail-on" in out, out
    code, out = _cli(["diff", str(v1), str(v2), "--fail-on", "any", "--json"])
    rep, _ = json.JSONDecoder().raw_decode(out[out.index("{"):])  # then the error line (stderr)
    assert rep["failed_on"] == ["card"] and rep["card"]["license"]["b"] == "proprietary"


@pytest.mark.parametrize(("edit", "entry"), [
    (lambda c: c.update(description="Two classes."), "description"),
    (lambda c: c.update(skipped=[{"what": "file", "source": "cat/009.png", "reason": "truncated PNG"}]), "skipped"),
])
def test_a_description_or_left_out_change_is_a_card_change(v1: Path, tmp_path: Path,
                                                            edit: Callable[[dict[str, Any]], None], entry: str) -> None:
    d = diff(v1, _v2(v1, tmp_path, edit))
    assert d["card"]["changed"] is True
    if entry == "skipped":
        assert d["card"]["skipped"] == {"a": 0, "b": 1, "added": ["file cat/009.png: truncated PNG"], "removed": []}
    else:
        assert d["card"]["description"]["same"] is False


def test_name_and_command_are_reported_not_gated(v1: Path, tmp_path: Path) -> None:
    """``name`` defaults to the output folder's name and ``command`` holds the packing options: reported, but a
    gate between two folders of one dataset must not fail on them."""
    v2 = _v2(v1, tmp_path, lambda c: c.update(name="birds-v2", command="mmdata shard SRC OUT --maxcount 2"))
    d = diff(v1, v2)
    assert d["card"]["name"] == {"a": "v1", "b": "birds-v2", "same": False}
    assert d["card"]["command"]["same"] is False and d["card"]["changed"] is False and d["same"] is True
    code, out = _cli(["diff", str(v1), str(v2), "--fail-on", "any"])
    assert code == 0 and "name: v1 -> birds-v2" in out and "-> mmdata shard SRC OUT --maxcount 2" in out, out


def test_the_same_card_is_no_change(v1: Path) -> None:
    card = diff(v1, v1)["card"]
    assert card["changed"] is False
    assert all(card[k]["same"] for k in ("license", "description", "name", "command"))
    assert (v1 / idx.CARD).is_file()
