"""preview's audio panels as a speech researcher reads them (QA26): a clip past full scale was drawn as full scale
(the scale was fixed at ±1), anti-phase stereo drew flat (the channels' mean), clips of 0.3 s and 1 s looked alike
(no axes, no length), and no sample could be chosen by key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import mmdata
from mmdata.augment.preview import drawn_sample, preview, preview_figure, spectrogram_signal
from mmdata.errors import MMDataError
from mmdata.types import Sample

RATE = 16000


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("clips")
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)
    (t / "raw").mkdir()
    sf.write(t / "raw" / "anti.wav", np.stack([x, -x], 1), RATE, subtype="PCM_16")
    sf.write(t / "raw" / "hot.wav", (3.4 * x).astype(np.float32), RATE, subtype="FLOAT")  # peak 1.7
    sf.write(t / "raw" / "short.wav", x[: RATE * 3 // 10], RATE, subtype="PCM_16")
    mmdata.shard(t / "raw", t / "ds", progress=False)
    return t / "ds"


def _audio_axes(fig, row: int):  # noqa: ANN001, ANN202 - the waveform panel of a row's original
    waves = [ax for ax in fig.axes if any("s · 16 kHz" in t.get_text() for t in ax.texts)]
    return waves[row]


def test_each_channel_is_drawn_and_a_clip_past_full_scale_shows_its_peak(clips: Path) -> None:
    summary: list[dict] = []
    fig = preview_figure(clips, None, keys=["anti", "hot", "short"], variants=1, summary=summary)
    assert [r["key"] for r in summary] == ["anti", "hot", "short"]
    anti, hot, short = (_audio_axes(fig, 2 * i) for i in range(3))  # original, then the variant, per row
    lines = [line.get_ydata() for line in anti.lines if len(line.get_ydata()) > 2]
    assert len(lines) == 2 and max(np.max(np.abs(y)) for y in lines) > 0.45  # the mean of the two is 0
    assert any("2 ch" in t.get_text() for t in anti.texts)
    lo, hi = hot.get_ylim()
    assert hi > 1.7 and lo < -1.7 and any("peak 1.7x full scale" in t.get_text() for t in hot.texts)
    assert any(t.get_text().startswith("0.3 s · 16 kHz · mono") for t in short.texts)
    assert short.get_ylim() == (-1.0, 1.0)


def test_the_spectrogram_of_anti_phase_channels_is_not_silence() -> None:
    x = np.sin(np.arange(4000) / 3.0).astype(np.float32)
    assert np.allclose(spectrogram_signal(np.stack([x, -x])), x)
    both = np.stack([x, 0.9 * x])
    assert np.allclose(spectrogram_signal(both), both.mean(axis=0))


def test_a_long_clips_envelope_covers_every_channel() -> None:
    x = torch.sin(torch.arange(RATE * 31) / 3.0) * 0.5
    s, what = drawn_sample(Sample("k", {"audio": torch.stack([x, -x])}, sample_rate=RATE))
    _, lo, hi, seconds = s.meta["preview_envelope"]
    assert what == {"audio"} and seconds == 31 and hi.max() > 0.45 and lo.min() < -0.45


def test_keys_choose_the_rows_and_an_unknown_key_is_named(clips: Path, tmp_path: Path) -> None:
    summary: list[dict] = []
    preview(clips, None, tmp_path / "p.png", keys=["short", "anti"], variants=1, summary=summary)
    assert [r["key"] for r in summary] == ["short", "anti"]
    with pytest.raises(MMDataError, match="'nope'"):
        preview_figure(clips, None, keys=["nope"])
    with pytest.raises(MMDataError, match="keys"):
        preview_figure(clips, None, keys="anti")


def test_a_multichannel_clips_line_fits_its_cell_and_the_colours_are_said_once(tmp_path: Path) -> None:
    """QA42 segments #3 / clinical #11: '3.73 s · 16 kHz · 6 ch (blue: 1st, orange: the others)' was wider
    than its cell; the next cell's line was drawn over its tail, so 3.93 s read '13.93 s'."""
    from mmdata.augment.preview import WAVE_NOTE

    raw = tmp_path / "raw"
    raw.mkdir()
    x = 0.3 * np.sin(2 * np.pi * 300 * np.arange(int(3.73 * RATE)) / RATE)
    sf.write(raw / "six.wav", np.stack([x * (1 - c / 8) for c in range(6)], 1), RATE, subtype="PCM_16")
    sf.write(raw / "two.wav", np.stack([x, -x], 1), RATE, subtype="PCM_16")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    fig = preview_figure(tmp_path / "ds", None, keys=["six", "two"], variants=3)
    renderer = fig.canvas.get_renderer()
    lines = [(ax, t) for ax in fig.axes for t in ax.texts if " s · 16 kHz · " in t.get_text()]
    assert len(lines) == 2 * 4 and {t.get_text() for _, t in lines} == {"3.73 s · 16 kHz · 6 ch", "3.73 s · 16 kHz · 2 ch"}
    for ax, t in lines:  # inside its own panel, so it cannot reach the next cell's
        box, cell = t.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert cell.x0 - 1 <= box.x0 and box.x1 <= cell.x1 + 1, (t.get_text(), box, cell)
    notes = [t.get_text() for t in fig.texts]
    assert sum(WAVE_NOTE in n for n in notes) == 1  # the legend once, for the figure
    mono = preview_figure(tmp_path / "ds", None, keys=["six"], variants=1)
    assert WAVE_NOTE in "".join(t.get_text() for t in mono.texts)
