"""Long audio in the trainer's derived inputs (QA with hour-long 48 kHz recordings): the derived
``max_seconds`` is capped (the 95th percentile, 3600 s, ran the trainer out of memory), and the normalize
stage trims a long clip before resampling it, with the same output as resampling the whole clip."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch

import mmdata
from mmdata.augment.audio import resample
from mmdata.augment.recipe import load_recipe
from mmdata.train import config
from mmdata.train.config import RESAMPLE_MARGIN_SECONDS, derive_inputs, normalize_section


def _index(tmp_path: Path, seconds: list[float], rate: int = 48000) -> Path:
    rows = [{"key": f"k{i}", "split": "train", "label": 0, "modalities": ["audio"], "audio_seconds": s,
             "audio_sample_rate": rate, "audio_channels": 2} for i, s in enumerate(seconds)]
    pq.write_table(pa.table({c: [r[c] for r in rows] for c in rows[0]}), tmp_path / "index.parquet")
    return tmp_path


def test_the_derived_length_is_capped_and_says_how_to_ask_for_more(tmp_path: Path) -> None:
    data = _index(tmp_path, [180, 300, 600, 3600] * 5)
    spec = derive_inputs(data, ["audio"])
    assert spec.max_seconds == config.MAX_AUDIO_SECONDS == 30.0
    why = spec.sources["max_seconds"]
    assert "is 3600 s, capped at 30 s" in why and "max_seconds (--max-seconds)" in why, why
    assert "30 s" in spec.describe()
    assert derive_inputs(data, ["audio"], max_seconds=3600).max_seconds == 3600  # a given value wins


def test_short_clips_keep_the_stage_they_had(tmp_path: Path) -> None:
    spec = derive_inputs(_index(tmp_path, [0.5, 0.8, 1.0, 2.0]), ["audio"], sample_rate=16000)
    assert spec.max_seconds == 2.0 and "capped" not in spec.sources["max_seconds"] and "trim_first" not in spec.needs
    assert [s["op"] for s in normalize_section(spec)["audio"]] == ["to_mono", "resample", "pad_trim"]


@pytest.mark.parametrize("orig,new", [(48000, 16000), (44100, 16000), (22254, 16000), (16000, 48000), (8000, 44100),
                                      (96000, 8000), (1000, 384000), (384000, 1000), (44100, 48000)])
def test_the_margin_covers_the_resampling_filter(orig: int, new: int) -> None:
    x = torch.from_numpy(np.random.default_rng(orig + new).standard_normal((2, int(orig * 4.3))).astype(np.float32))
    keep, d = round((2.0 + RESAMPLE_MARGIN_SECONDS) * orig), round(2.0 * new)
    assert torch.equal(resample(x, orig, new)[..., :d], resample(x[..., :keep], orig, new)[..., :d])


def _flac(seconds: float, rate: int, seed: int) -> bytes:
    x = np.random.default_rng(seed).uniform(-0.5, 0.5, (int(seconds * rate), 2)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def test_trimming_first_gives_the_same_clips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, (sec, rate) in enumerate([(0.4, 16000), (4.0, 22050), (4.5, 16000), (3.9, 22050), (0.7, 22050), (5.0, 16000)]):
        (raw / f"{i:03d}.flac").write_bytes(_flac(sec, rate, i))
        (raw / f"{i:03d}.cls").write_text(str(i % 2))
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    monkeypatch.setattr(config, "MAX_AUDIO_SECONDS", 1.0)  # the cap, small: test clips stay small
    spec = derive_inputs(tmp_path / "ds", ["audio"])
    assert spec.max_seconds == 1.0 and spec.sample_rate == 22050 and spec.needs["trim_first"]
    steps = normalize_section(spec)["audio"]
    assert steps[0] == {"op": "pad_trim", "seconds": 1.0 + RESAMPLE_MARGIN_SECONDS, "pad": False}
    first = load_recipe({"normalize": {"audio": steps}})
    whole = load_recipe({"normalize": {"audio": steps[1:]}})  # the stage before: resample the whole clip
    n = 0
    for s in mmdata.open_dataset(tmp_path / "ds", shuffle=False):
        a, b = first.normalize(s), whole.normalize(s)
        assert a["audio"].shape == (1, 22050) and torch.equal(a["audio"], b["audio"]), s.key
        n += 1
    assert n == 6


def test_a_long_stereo_clip_at_the_models_rate_is_trimmed_before_the_mixdown(tmp_path: Path) -> None:
    spec = derive_inputs(_index(tmp_path, [180, 300, 600, 3600] * 5), ["audio"])
    assert spec.needs["mono"] and not spec.needs["resample"] and spec.needs["trim_first"]
    assert normalize_section(spec)["audio"] == [{"op": "pad_trim", "seconds": 30 + RESAMPLE_MARGIN_SECONDS, "pad": False},
                                                {"op": "to_mono"}, {"op": "pad_trim", "seconds": 30.0, "pad": True}]
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, 48000 * 40)).astype(np.float32))
    s = mmdata.Sample("k", {"audio": x}, 48000)
    steps = normalize_section(spec)["audio"]
    a = load_recipe({"normalize": {"audio": steps}}).normalize(s)["audio"]
    assert torch.equal(a, load_recipe({"normalize": {"audio": steps[1:]}}).normalize(s)["audio"])
