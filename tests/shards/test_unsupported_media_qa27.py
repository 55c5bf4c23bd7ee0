"""QA27 A12 / minor: an iPhone's HEIC photo or a Mac's M4A memo is named with how to convert it (it was an
"unknown file type"), in a folder and in a manifest; a manifest's file:///C:/... is a Windows path."""

from __future__ import annotations

import json
import struct
import wave
from pathlib import Path

import mmdata


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<800h", *([0] * 800)))


def test_heic_and_m4a_in_a_folder_say_how_to_convert(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _wav(raw / "cat" / "a.wav")
    (raw / "cat" / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    (raw / "cat" / "memo.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(64))
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    reasons = {Path(s["source"]).name: s["reason"] for s in rep["skipped"]}
    assert "HEIC" in reasons["IMG_0001.HEIC"] and "JPEG" in reasons["IMG_0001.HEIC"]
    assert "M4A" in reasons["memo.m4a"] and "ffmpeg" in reasons["memo.m4a"]


def test_heic_named_in_a_manifest_says_how_to_convert(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _wav(raw / "a.wav")
    (raw / "b.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    (raw / "m.jsonl").write_text(json.dumps({"audio": "a.wav", "label": "x"}) + "\n"
                                 + json.dumps({"image": "b.heic", "label": "x"}) + "\n")
    rep = mmdata.shard(raw / "m.jsonl", tmp_path / "ds", progress=False)
    assert any("HEIC" in s["reason"] and "JPEG" in s["reason"] for s in rep["skipped"]), rep["skipped"]


def test_a_file_url_of_a_windows_drive_is_named_a_windows_path(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _wav(raw / "a.wav")
    (raw / "m.jsonl").write_text(json.dumps({"audio": "a.wav", "label": "x"}) + "\n"
                                 + json.dumps({"audio": "file:///C:/data/b.wav", "label": "x"}) + "\n")
    rep = mmdata.shard(raw / "m.jsonl", tmp_path / "ds", progress=False)
    (bad,) = [s for s in rep["skipped"] if "C:" in s["source"]]
    assert "Windows" in bad["reason"] and "escapes" not in bad["reason"], bad
