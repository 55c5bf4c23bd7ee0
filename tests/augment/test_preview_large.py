"""preview draws large media at the figure's scale (QA: two 6000x4000 photos with ten-minute 48 kHz clips
took 484 s and 14 GB): images downscaled, long clips as an envelope over the spectrogram of their start,
and the figure says so. The limits are patched small here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.augment import preview
from mmdata.testing import make_sample_folder
from mmdata.types import Sample


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("large")
    mmdata.shard(make_sample_folder(root / "raw", n=3, missing=False, audio_seconds=0.5), root / "ds", progress=False)
    return root / "ds"


def _texts(fig) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(t.get_text() for t in fig.texts) + "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_small_media_are_drawn_as_they_are(ds: Path) -> None:
    s = Sample("a", {"image": torch.zeros(3, 24, 32, dtype=torch.uint8), "audio": torch.zeros(1, 4000)}, 8000)
    assert preview.drawn_sample(s) == (s, set())
    fig = preview.preview_figure(ds, {"image": [{"op": "hflip", "p": 1.0}]}, n=2, variants=1)
    assert "downscaled" not in _texts(fig) and "envelope" not in _texts(fig)
    assert {tuple(im.get_array().shape[:2]) for ax in fig.axes for im in ax.images if im.get_array().ndim == 3} == {(24, 32)}


def test_large_media_are_shrunk_and_the_figure_says_so(ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preview, "PREVIEW_IMAGE_SIDE", 10)  # 24x32 -> every 4th: 6x8
    monkeypatch.setattr(preview, "PREVIEW_SECONDS", 0.2)  # 0.5 s clips: envelope + the first 0.2 s
    monkeypatch.setattr(preview, "ENVELOPE_POINTS", 50)
    img = torch.arange(24 * 32, dtype=torch.int64).reshape(1, 24, 32).remainder(256).to(torch.uint8).repeat(3, 1, 1)
    s = Sample("a", {"image": img, "seg": torch.ones(1, 24, 32, dtype=torch.int64), "audio": torch.ones(2, 4000)}, 8000)
    d, what = preview.drawn_sample(s)
    assert what == {"image", "audio"} and tuple(d["image"].shape) == (3, 6, 8) and tuple(d["seg"].shape) == (1, 6, 8)
    assert d["image"][0, 0, 0] == img[0, :4, :4].float().mean().round().to(torch.uint8)  # a box average
    t, lo, hi, seconds = d.meta["preview_envelope"]
    assert len(t) == 50 and seconds == 0.5 and (lo == 1).all() and (hi == 1).all() and d["audio"].shape == (2, 1600)
    fig = preview.preview_figure(ds, {"image": [{"op": "hflip", "p": 1.0}], "audio": [{"op": "gain", "p": 1.0}]},
                                 n=2, variants=1)
    text = _texts(fig)
    assert "images with a side over 10 px drawn downscaled" in text and "audio over 0.2 s: the waveform's min / max " \
        "envelope, the spectrogram of the first 0.2 s" in text and "first 0.2 s of 0.5 s" in text
    assert {tuple(im.get_array().shape[:2]) for ax in fig.axes for im in ax.images if im.get_array().ndim == 3} == {(6, 8)}
