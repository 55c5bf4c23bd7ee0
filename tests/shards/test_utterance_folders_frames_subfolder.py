"""QA34 review rD F11: an utterance folder keeping its frames in a subfolder (``utt01/audio.wav``,
``utt01/transcript.txt``, ``utt01/frames/000.png``: a common AV-HuBERT / LRS preprocessing layout) is warned
of as a folder per utterance, as the flat layout is; a class folder of images with an image subfolder stays
quiet."""

from __future__ import annotations

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
        w.writeframes(np.zeros(400, "<i2").tobytes())


def _png(path: Path, v: int) -> None:
    Image.fromarray(np.full((8, 8, 3), v, np.uint8)).save(path)


def test_frames_in_a_subfolder_of_each_utterance_folder_are_warned_of(tmp_path: Path) -> None:
    for spk in ("spk0", "spk1"):
        for u in ("utt01", "utt02", "utt03"):
            d = tmp_path / "raw" / spk / u
            (d / "frames").mkdir(parents=True)
            for f in range(3):
                _png(d / "frames" / f"{f:03d}.png", f)
            _wav(d / "audio.wav")
            (d / "transcript.txt").write_text(f"{spk} {u}\n", encoding="utf-8")
    rep = mmdata.shard(tmp_path / "raw", tmp_path / "ds", labels_from_folders=False, progress=False)
    (w,) = [w for w in rep["warnings"] if "folder per utterance" in w]
    assert "6 folders" in w and "spk0/utt01/" in w and "audio, image, text" in w and "(30 samples" in w


def test_image_class_folders_with_an_image_subfolder_stay_quiet(tmp_path: Path) -> None:
    for c in ("cat", "dog", "owl"):
        d = tmp_path / "raw" / c
        (d / "extra").mkdir(parents=True)
        for i in range(3):
            _png(d / f"{c}{i}.png", i)
        _png(d / "extra" / f"{c}_x.png", 9)
    rep = mmdata.shard(tmp_path / "raw", tmp_path / "ds", labels_from_folders=False, progress=False)
    assert not [w for w in rep["warnings"] if "folder per utterance" in w]
