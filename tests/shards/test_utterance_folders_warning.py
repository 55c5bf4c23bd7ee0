"""QA34 avspeech #3: an utterance-per-folder layout (``spk0/utt01/frame_000.png``, ``audio.wav``,
``transcript.txt``: LRS2 / LRS3, GRID, AV-HuBERT) was sharded as single-modality samples without a word. Now
warned at any depth, naming the remedy; docs/bad-input-shard.md's manifest snippet pairs them."""

from __future__ import annotations

import os
import re
import wave
from pathlib import Path

import numpy as np
from PIL import Image

import mmdata

DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-input-shard.md"


def _wav(path: Path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(400, "<i2").tobytes())


def _utts(root: Path) -> Path:
    for spk in ("spk0", "spk1"):
        for u in ("utt01", "utt02"):
            d = root / spk / u
            d.mkdir(parents=True)
            for f in range(3):
                Image.fromarray(np.full((8, 8, 3), f, np.uint8)).save(d / f"frame_{f:03d}.png")
            _wav(d / "audio.wav")
            (d / "transcript.txt").write_text(f"{spk} {u} says hello\n", encoding="utf-8")
    return root


def test_folders_per_utterance_are_warned_of_naming_a_manifest(tmp_path: Path) -> None:
    rep = mmdata.shard(_utts(tmp_path / "raw"), tmp_path / "ds", labels_from_folders=False, progress=False)
    (w,) = [w for w in rep["warnings"] if "folder per utterance" in w]
    assert "spk0/utt01/" in w and "audio, image, text" in w and "transcript" in w and "frame_000" in w
    assert "manifest" in w and "none multimodal" in w and "(20 samples" in w
    # one speaker's folder read as a class (the report's layout): the same warning
    root = tmp_path / "one"
    _utts(root)
    __import__("shutil").rmtree(root / "spk1")
    rep = mmdata.shard(root, tmp_path / "ds1", progress=False)
    assert [w for w in rep["warnings"] if "folder per utterance" in w]


def test_paired_files_in_folders_stay_quiet(tmp_path: Path) -> None:
    for u in ("utt01", "utt02", "utt03"):
        d = tmp_path / "raw" / u
        d.mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "a.png")
        _wav(d / "a.wav")
        (d / "a.txt").write_text("hi", encoding="utf-8")
    rep = mmdata.shard(tmp_path / "raw", tmp_path / "ds", labels_from_folders=False, progress=False)
    assert not [w for w in rep["warnings"] if "folder per utterance" in w]


def test_the_docs_manifest_pairs_each_folder(tmp_path: Path, monkeypatch) -> None:
    raw = _utts(tmp_path / "raw")
    block = next(b for b in re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), flags=re.S) if "utts.csv" in b)
    monkeypatch.chdir(raw)
    exec(compile(block, "docs/bad-input-shard.md", "exec"), {})  # noqa: S102
    rep = mmdata.shard(raw / "utts.csv", tmp_path / "ds", meta=["speaker"], progress=False)
    assert rep["samples"] == 4
    s = next(iter(mmdata.open_dataset(tmp_path / "ds")))
    assert {"image", "audio", "text"} <= set(s.keys()) and s["text"].startswith("spk")
    assert os.path.isfile(raw / "utts.csv")
