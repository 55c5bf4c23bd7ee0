"""QA34 review rD F1: a string that is the text itself (a manifest ``text`` cell) reads back as given, final
line ends included (``encode_text`` is ``decode_text``'s inverse), while a text *file* still loses the one
final line end every editor writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mmdata
from mmdata.codecs import decode_text, encode_text

TEXTS = ["def f():\n    return 1\n", "poem line\n\n", "plain", "x\r", "win\r\n", "\ufeffbom first", "a\n\r"]


@pytest.mark.parametrize("text", TEXTS + ["", "\n", "\r\n\r\n", "\ufeff\n"])
def test_encode_text_is_the_inverse_of_decode_text(text: str) -> None:
    assert decode_text(encode_text(text)) == text


def test_a_manifest_text_cell_reads_back_as_written_and_a_text_file_loses_its_line_end(tmp_path: Path) -> None:
    rows = [{"key": f"k{i}", "text": t, "label": "x"} for i, t in enumerate(TEXTS)]
    (tmp_path / "cap.txt").write_bytes(b"from a file\n")
    rows.append({"key": "file", "text_file": "cap.txt", "label": "x"})
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    mmdata.shard(tmp_path / "m.jsonl", tmp_path / "ds", progress=False)
    got = {s.key: s["text"] for s in mmdata.open_dataset(tmp_path / "ds")}
    assert {k: got[k] for k in got if k != "file"} == {f"k{i}": t for i, t in enumerate(TEXTS)}
    assert got["file"] == "from a file"


@pytest.mark.parametrize("data", [b"hello\n", b"\n", b"", b"a\r\n", b"x\r", b"two\n\n", "\ufeffcaf\u00e9\n".encode(),
                                  "猫\r\n".encode(), b"\xef\xbb\xbf"])
def test_text_length_counts_the_text_as_read_back(data: bytes) -> None:
    from mmdata.codecs import text_length

    assert text_length(data) == len(decode_text(data))


def test_a_text_file_read_in_text_mode_loses_the_line_end_decode_text_drops(tmp_path: Path) -> None:
    from mmdata.codecs import drop_final_line_end

    for data in (b"hello world\n", b"win\r\n", b"two\n\n", b"none"):
        (tmp_path / "cap.txt").write_bytes(data)
        with open(tmp_path / "cap.txt", encoding="utf-8", newline="") as f:
            assert drop_final_line_end(f.read()) == decode_text(data)
