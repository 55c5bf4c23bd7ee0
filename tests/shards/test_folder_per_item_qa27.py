"""QA27 C2: a folder per video clip (frames, audio, subtitles) was sharded as classes — every file a sample of
its own with one modality, labelled by its clip — without a word. Now warned, naming the fix (a manifest)."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
from PIL import Image

import mmdata


def _wav(path: Path) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<400h", *([0] * 400)))


def _clips(root: Path, n: int = 4) -> Path:
    for c in range(n):
        d = root / f"clip{c:03d}"
        d.mkdir(parents=True)
        for f in range(3):
            Image.fromarray(np.full((8, 8, 3), 40 * f + c, np.uint8)).save(d / f"frame_{f:03d}.jpg")
        _wav(d / "audio.wav")
        (d / "subtitles.txt").write_text(f"clip {c} says hello\n", encoding="utf-8")
    return root


def test_a_folder_per_clip_is_warned_of_naming_a_manifest(tmp_path: Path) -> None:
    rep = mmdata.shard(_clips(tmp_path / "clips"), tmp_path / "ds", progress=False)
    (w,) = [w for w in rep["warnings"] if "folder per item" in w]
    assert "clip000/" in w and "4 classes" in w and "audio, image, text" in w and "frame_000" in w
    assert "manifest" in w and "--column" in w


def test_class_folders_of_one_modality_or_paired_samples_are_quiet(tmp_path: Path) -> None:
    root = tmp_path / "cls"
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(root / c / f"{c}{i}.jpg")
            (root / c / f"{c}{i}.txt").write_text("a caption", encoding="utf-8")  # paired by name: samples of two
    rep = mmdata.shard(root, tmp_path / "ds", progress=False)
    assert not [w for w in rep["warnings"] if "folder per item" in w]
