"""QA34: a transcript file's final line end is no part of the text a loader / tokenizer gets, while the shard
keeps the bytes (avspeech #9); the card's ``source_options.meta`` is the parsed column list whatever the
CLI's spelling (analyst D9); docs/interop.md's join rule for a manifest without a key column holds for
``./``-prefixed paths (analyst D4)."""

from __future__ import annotations

import json
import re
import tarfile
import wave
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

import mmdata
from mmdata.codecs import decode_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "interop.md"


def _wav(path: Path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(800, "<i2").tobytes())


def test_decode_text_drops_one_final_line_end_only() -> None:
    assert decode_text(b"hello world\n") == "hello world"
    assert decode_text(b"hello\r\n") == "hello"
    assert decode_text(b"two\n\n") == "two\n"
    assert decode_text(b"a\nb") == "a\nb"
    assert decode_text("\ufeffx\n".encode()) == "x"


def test_a_transcripts_newline_reaches_neither_text_nor_tokens_but_stays_in_the_shard(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    _wav(raw / "a.wav")
    (raw / "a.txt").write_bytes(b"hello world\n")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    with tarfile.open(next((tmp_path / "ds").glob("*.tar"))) as t:
        assert t.extractfile(next(m for m in t.getmembers() if m.name.endswith(".txt"))).read() == b"hello world\n"
    assert [s["text"] for s in mmdata.open_dataset(tmp_path / "ds")] == ["hello world"]
    loader = mmdata.loader(tmp_path / "ds", 1, tokenizer=lambda s: [ord(c) for c in s], num_workers=1,
                           recipe={"normalize": {"audio": [{"op": "to_mono"}]}})
    b = next(iter(loader))
    assert b["tokens"][0].tolist() == [ord(c) for c in "hello world"]


def _manifest(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    (raw / "Batch_B").mkdir(parents=True)
    rows = []
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(raw / "Batch_B" / f"{i:04d}.jpg")
        rows.append({"image": f"./Batch_B/{i:04d}.jpg", "audio": "", "speaker": f"s{i % 2}"})
    _wav(raw / "lone.wav")
    rows.append({"image": "", "audio": "lone.wav", "speaker": "s0"})
    pd.DataFrame(rows).to_csv(raw / "m.csv", index=False)
    return raw / "m.csv"


def test_the_card_keeps_meta_as_a_list_of_columns(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    pd.read_csv(m).assign(rating=1).to_csv(m, index=False)
    got = []
    for i, meta in enumerate((["speaker,rating"], ["speaker", "rating"], ["speaker, rating"])):
        mmdata.shard(m, tmp_path / f"dm{i}", meta=meta, progress=False)
        card = json.loads((tmp_path / f"dm{i}" / "dataset.json").read_text("utf-8"))
        got.append(card["source_options"]["meta"])
    assert got == [["speaker", "rating"]] * 3


def test_the_documented_join_without_a_key_column_finds_every_row(tmp_path: Path, monkeypatch) -> None:
    m = _manifest(tmp_path)
    mmdata.shard(m, tmp_path / "raw" / "data" / "mine", meta=["speaker"], progress=False)
    block = next(b for b in re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)
                 if "posixpath.normpath" in b)
    monkeypatch.chdir(tmp_path / "raw")
    (tmp_path / "raw" / "raw").mkdir()
    (tmp_path / "raw" / "raw" / "m.csv").write_bytes(m.read_bytes())
    scope: dict = {}
    exec(compile(block, "docs/interop.md join block", "exec"), scope)  # noqa: S102
    assert len(scope["i"]) == 5 and sorted(scope["i"].speaker) == ["s0", "s0", "s0", "s1", "s1"]
