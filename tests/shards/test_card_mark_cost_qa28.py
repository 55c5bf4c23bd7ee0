"""What ``dataset_marks`` costs, and what it says of links to missing files (review of QA28, #7 and #8).

#8: ``dataset_marks`` parsed the whole card on every call (the reader, inspect and shard call it on each
open): a 37 MB card cost 0.44 s a call. A card ``mmdata shard`` writes (sorted keys, indent 2) is now
recognised by its top-level ``"format"`` line, read from its first KBs; any other layout is parsed once
per version of the file (device, inode, size, mtime).
#7: a git-annex / DVC dataset whose content is not fetched (links to missing files) was refused as "not
an mmdata dataset"; :func:`index.dangling_note` names the links, for the writer's refusal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import mmdata
from mmdata.shards import index as idx
from mmdata.testing import make_class_folders


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("markcost")
    make_class_folders(root / "raw", classes=("cat", "dog"), per_class=2)
    mmdata.shard(root / "raw", root / "ds", progress=False)
    return root / "ds"


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = json.loads

    def counted(s, *a, **k):  # type: ignore[no-untyped-def]
        sizes.append(len(s))
        return real(s, *a, **k)

    monkeypatch.setattr(idx.json, "loads", counted)
    return sizes


def _big_card(ds: Path, folder: Path, entries: int) -> int:
    card = json.loads((ds / idx.CARD).read_text(encoding="utf-8"))
    card["skipped"] = [{"source": f"raw/junk/{i:07d}.bin", "reason": "not a known modality"} for i in range(entries)]
    folder.mkdir()
    (folder / idx.CARD).write_bytes(idx.card_bytes(card))
    return (folder / idx.CARD).stat().st_size


def test_a_big_card_of_ours_is_not_parsed_to_mark_its_folder(ds: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    size = _big_card(ds, tmp_path / "big", 20_000)
    assert size > 1_000_000
    sizes = _parses(monkeypatch)
    for _ in range(3):
        assert idx.dataset_marks(tmp_path / "big")
    assert max(sizes, default=0) < 4096, f"parsed {sizes} characters of a {size}-byte card"


def test_a_card_of_ours_behind_a_link_is_not_parsed_either(ds: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _big_card(ds, tmp_path / "store", 5_000)
    (tmp_path / "linked").mkdir()
    os.symlink(tmp_path / "store" / idx.CARD, tmp_path / "linked" / idx.CARD)
    sizes = _parses(monkeypatch)
    assert idx.dataset_marks(tmp_path / "linked")
    assert max(sizes, default=0) < 4096


def test_the_format_line_is_found_after_many_classes(ds: Path, tmp_path: Path) -> None:
    """Keys sorted before ``format`` (counts.per_class, description) may be long: the search reads on."""
    card = json.loads((ds / idx.CARD).read_text(encoding="utf-8"))
    card["counts"]["per_class"] = {str(i): 1 for i in range(50_000)}
    card["description"] = "x" * 200_000
    (tmp_path / idx.CARD).write_bytes(idx.card_bytes(card))
    assert (tmp_path / idx.CARD).read_bytes().index(b'\n  "format"') > 500_000
    assert idx.dataset_marks(tmp_path)


@pytest.mark.parametrize("text, mark", [
    # the card_digests entry named "format" (indent 4) is no top-level format
    ('{\n  "card_digests": {\n    "format": "mmdata/1"\n  },\n  "name": "x"\n}\n', False),
    ('{\n  "format": "nnunet/2",\n  "name": "x"\n}\n', False),
    ('{\n  "format": null\n}\n', False),
    ('{\n  "format": {\n    "name": "mmdata/1"\n  }\n}\n', False),
    ('{\n  "format": "mmdata/1"\n}\n', True),
    ('{"name": "x", "format": "mmdata/1"}', True),          # another layout: parsed
    ('{"format": "mmdata/1", "name": ', True),              # a damaged card of ours
    ('{"name": "Task01", "format": "nifti"}', False),
    ('[1, 2]', False),
])
def test_what_a_card_says_of_its_format(tmp_path: Path, text: str, mark: bool) -> None:
    (tmp_path / idx.CARD).write_text(text, encoding="utf-8")
    assert idx.dataset_marks(tmp_path) is mark


def test_a_card_in_another_layout_is_parsed_once_per_version(ds: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    card = json.loads((ds / idx.CARD).read_text(encoding="utf-8"))
    (tmp_path / idx.CARD).write_text(json.dumps(card), encoding="utf-8")  # one line, unsorted: not the writer's
    sizes = _parses(monkeypatch)
    for _ in range(3):
        assert idx.dataset_marks(tmp_path)
    assert len([s for s in sizes if s > 1000]) == 1
    card["format"] = "other/1"
    (tmp_path / idx.CARD).write_text(json.dumps(card) + " ", encoding="utf-8")  # a new version: read again
    assert not idx.dataset_marks(tmp_path)


# ---- #7 ---------------------------------------------------------------------------------------------


def test_links_to_missing_files_are_named(tmp_path: Path) -> None:
    out = tmp_path / "annex"
    out.mkdir()
    os.symlink("../.git/annex/objects/XX/SHA256E-s1--aa.json", out / idx.CARD)
    os.symlink("../.git/annex/objects/XX/SHA256E-s1--bb.parquet", out / idx.INDEX)
    (out / "train-000000.tar").write_bytes(b"x")
    assert not idx.dataset_marks(out)
    note = idx.dangling_note(out)
    assert note is not None
    assert "dataset.json, index.parquet are links to missing files" in note
    assert "../.git/annex/objects/XX/SHA256E-s1--aa.json" in note
    assert "git annex get" in note and "dvc pull" in note and "--force" in note


def test_no_note_without_a_dangling_link(ds: Path, tmp_path: Path) -> None:
    assert idx.dangling_note(ds) is None
    os.symlink(ds / idx.CARD, tmp_path / idx.CARD)  # a link that leads to a card
    os.symlink(tmp_path / "nowhere", tmp_path / "notes.txt")  # a dangling link of another name
    assert idx.dangling_note(tmp_path) is None
    assert idx.dangling_note(tmp_path / "missing") is None
