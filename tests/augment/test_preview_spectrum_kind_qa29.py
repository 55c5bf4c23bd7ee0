"""``mmdata preview`` with a recipe that runs ``logmel``: the augmented columns drew the recipe's log-mel and the
original / normalized ones a linear STFT spectrogram, unlabelled, so unchanged audio looked changed (QA29 augsem
#3). Every spectrogram panel now names its kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

import mmdata
from mmdata.augment.preview import LOGMEL_KIND, STFT_KIND, preview_figure

RATE = 16000


def test_each_spectrogram_panel_says_which_kind_it_draws(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE // 2) / RATE)
    sf.write(tmp_path / "raw" / "tone.wav", x, RATE, subtype="PCM_16")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    fig = preview_figure(tmp_path / "ds", {"seed": 0, "audio": [{"op": "logmel"}]}, keys=["tone"], variants=2)
    kinds = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text() in (LOGMEL_KIND, STFT_KIND)]
    assert kinds.count(LOGMEL_KIND) == 2 and kinds.count(STFT_KIND) >= 1, kinds


def test_on_a_long_clip_the_kind_and_the_span_never_overprint(tmp_path: Path, monkeypatch) -> None:
    """Review r3: "STFT (linear Hz)" (top left) and "first 30 s of 60 s" (top right) overprinted each other on
    every spectrogram panel of a 4-column figure; they are one label now, on two lines."""
    from mmdata.augment import preview

    monkeypatch.setattr(preview, "PREVIEW_SECONDS", 0.2)  # a 0.5 s clip is a long one: envelope + first 0.2 s
    (tmp_path / "raw").mkdir()
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE // 2) / RATE)
    sf.write(tmp_path / "raw" / "tone.wav", x, RATE, subtype="PCM_16")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    fig = preview_figure(tmp_path / "ds", {"seed": 0, "audio": [{"op": "logmel"}]}, keys=["tone"], variants=2)
    renderer = fig.canvas.get_renderer()
    labels = []
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_visible() and t.get_text().strip()]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), [t.get_text() for t in ax.texts]
        labels += [t.get_text() for t in ax.texts]
    assert f"{LOGMEL_KIND}\nthe whole 0.5 s" in labels and f"{STFT_KIND}\nfirst 0.2 s of 0.5 s" in labels, labels
