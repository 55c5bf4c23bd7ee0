"""Review of QA27 on ``verify``'s class-folder check (``mmdata/shards/verify.py``): a class folder whose name is
not UTF-8 is a ``\\xe9`` escape in the index's source keys and U+FFFD in the card's ``label_names``; a freshly
sharded dataset of such folders verifies clean, and reordered names are still caught."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.shards import index as idx
from mmdata.testing import image_bytes


def _classes(root: Path) -> Path:
    src = root / "src"
    for name in (os.fsdecode(b"caf\xe9"), "dog"):
        try:
            (src / name).mkdir(parents=True)
        except (OSError, UnicodeEncodeError):
            pytest.skip("this file system refuses non-UTF-8 file names")
        for i in range(2):
            (src / name / f"{i}.png").write_bytes(image_bytes(i))
    return src


def test_non_utf8_class_folders_verify_clean_and_reordered_names_are_caught(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the non-UTF-8 names are warned of: not what this test checks
        mmdata.shard(_classes(tmp_path), tmp_path / "ds", progress=False)
    card = json.loads((tmp_path / "ds" / idx.CARD).read_text())
    assert card["label_names"] == ["caf\ufffd", "dog"]
    rep = mmdata.verify(tmp_path / "ds")
    assert rep["ok"], rep["problems"]

    card["label_names"] = card["label_names"][::-1]
    card.pop(idx.CARD_DIGESTS)  # an older card: the class folders alone say which name each id has
    (tmp_path / "ds" / idx.CARD).write_bytes(idx.card_bytes(card))
    rep = mmdata.verify(tmp_path / "ds")
    assert not rep["ok"]
    assert any(p["problem"].startswith("label_names disagree with the class folders") for p in rep["problems"])
