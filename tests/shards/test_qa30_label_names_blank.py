"""QA round 30 (extremes #1): a blank line in a text ``--labels`` file was dropped, so every later class id
shifted (id 1's samples became class ``two``); the JSON form kept ``""`` as a class name. Both are refused
naming the file, the line / entry and how to name a gap; repeated names (as labels are matched: stripped,
NFC) are refused naming both places."""

from __future__ import annotations

import csv
import json
import unicodedata
from pathlib import Path

import pytest
from PIL import Image

import mmdata
from mmdata.errors import MMDataError
from mmdata.shards.sources import parse_label_names


@pytest.fixture()
def manifest(tmp_path: Path) -> Path:
    rows = []
    for i in range(8):
        Image.new("RGB", (8, 8), (i * 30, 0, 0)).save(tmp_path / f"i{i}.png")
        rows.append({"image": f"i{i}.png", "label": [0, 2, 1, 2][i % 4]})
    with open(tmp_path / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "label"])
        w.writeheader()
        w.writerows(rows)
    return tmp_path / "m.csv"


def test_a_blank_line_in_a_text_names_file_is_refused_naming_its_line(manifest: Path, tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("zero\n\ntwo\n")
    with pytest.raises(MMDataError, match=r"names\.txt: line 2 is blank; expected one class name per line .*"
                                          r"placeholder name .*unused_1"):
        mmdata.shard(manifest, tmp_path / "ds", label_names=names, progress=False)
    assert not (tmp_path / "ds" / "dataset.json").exists()  # nothing published with shifted ids
    names.write_text("zero\nunused_1\ntwo\n\n\n")  # the named gap; blank lines at the end shift nothing
    mmdata.shard(manifest, tmp_path / "ds", label_names=names, progress=False)
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert card["label_names"] == ["zero", "unused_1", "two"]
    got = {s.key: int(s["label"]) for s in mmdata.open_dataset(tmp_path / "ds")}
    assert sorted(got.values()) == [0, 0, 1, 1, 2, 2, 2, 2]  # every row keeps its id


def test_an_empty_json_class_name_is_refused_naming_its_entry(manifest: Path, tmp_path: Path) -> None:
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"names": ["zero", "", "two"]}))
    with pytest.raises(MMDataError, match=r"names\.json: entry 1 \(class id 1\) is empty; .*placeholder"):
        mmdata.shard(manifest, tmp_path / "ds", label_names=names, progress=False)
    with pytest.raises(MMDataError, match=r"entry 2 \(class id 2\) is blank"):
        parse_label_names(json.dumps(["a", "b", " \t"]).encode(), "n.json")


def test_a_leading_blank_line_is_refused_too() -> None:
    with pytest.raises(MMDataError, match=r"n\.txt: line 1 is blank.*id 0"):
        parse_label_names(b"\r\ncat\r\ndog\r\n", "n.txt")
    assert parse_label_names(b"cat\r\ndog\r\n\r\n", "n.txt") == ["cat", "dog"]


def test_repeated_names_are_refused_as_labels_match_them() -> None:
    with pytest.raises(MMDataError, match=r"line 3 \(class id 2\) repeats line 1 \(class id 0\) \('cat'\)"):
        parse_label_names(b"cat\ndog\ncat\n", "n.txt")
    nfd = unicodedata.normalize("NFD", "caf\u00e9")
    with pytest.raises(MMDataError, match=r"line 2 \(class id 1\).* is line 1 \(class id 0\).*NFC"):
        parse_label_names(f"{nfd}\ncaf\u00e9\n".encode(), "n.txt")
    with pytest.raises(MMDataError, match=r"entry 1 \(class id 1\) \('a '\) is entry 0"):
        parse_label_names(json.dumps(["a", "a "]).encode(), "n.json")
    assert parse_label_names(b"Cat\ncat\n", "n.txt") == ["Cat", "cat"]  # case tells classes apart, as labels do


def test_a_python_list_of_names_is_checked_as_a_file_is(manifest: Path, tmp_path: Path) -> None:
    for names, said in ((["zero", "", "two"], r"label_names= \(--labels\): entry 1 \(class id 1\) is empty"),
                        (["zero", "zero", "two"], r"entry 1 \(class id 1\) repeats entry 0"),
                        (["zero", 1, "two"], r"entry 1 \(class id 1\) is int 1; expected class names as strings"),
                        ({"zero", "one", "two"}, r"expected a list of class names in id order.*got set")):
        with pytest.raises(MMDataError, match=said):
            mmdata.shard(manifest, tmp_path / "ds", label_names=names, progress=False)  # type: ignore[arg-type]
    mmdata.shard(manifest, tmp_path / "ds", label_names=("zero", "one", "two"), progress=False)
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["label_names"] == ["zero", "one", "two"]


@pytest.mark.parametrize("data", [b"a\r\r\nb\r\r\n", b"a\x0c\nb\n", b"a\rb\r", b"a\r\nb\r\n\r\n"])
def test_line_ends_an_editor_shows_as_one_are_one(data: bytes) -> None:
    """Review of QA30: "\\r\\r\\n" (CRLF written through a text-mode file) and a form feed at a line's end were
    read as a blank line between, refusing a file that gave the right ids before (and naming a line that holds b)."""
    assert parse_label_names(data, "n.txt") == ["a", "b"]
