"""Long clips decode only what the normalize stage reads (QA: a one-hour 48 kHz stereo FLAC cost ~1.4 GB of
float32 and seconds of CPU per sample to keep 30 s): ``decode_audio(max_frames=)`` /
``open_dataset(audio_max_frames=)`` with the hint ``mmdata.augment.audio.decode_frames`` derives from the
recipe. The rule that matters: the normalized tensors are bit-identical with and without the hint."""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mmdata
from mmdata import codecs
from mmdata.augment.audio import DecodeFrames, decode_frames, resample, resample_inputs
from mmdata.augment.recipe import load_recipe
from mmdata.errors import ShardError
from mmdata.shards.reader import ShardDataset
from mmdata.testing import long_audio_bytes
from mmdata.train.config import RESAMPLE_MARGIN_SECONDS

SECONDS = 1.5  # the normalize length of these tests: clips of 7 s are "long"

#: normalize stages that trim (each gives a hint), as the trainer derives them and as users write them
STAGES: dict[str, list[dict[str, Any]]] = {
    "trainer, trim first": [{"op": "pad_trim", "seconds": SECONDS + RESAMPLE_MARGIN_SECONDS, "pad": False},
                            {"op": "to_mono"}, {"op": "resample", "rate": 16000}, {"op": "pad_trim", "seconds": SECONDS}],
    "mono, resample down, trim": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}, {"op": "pad_trim", "seconds": SECONDS}],
    "resample up, trim": [{"op": "resample", "rate": 44100}, {"op": "pad_trim", "seconds": SECONDS, "pad": False}],
    "odd ratio (direct kernel), trim, logmel": [{"op": "resample", "rate": 22254}, {"op": "pad_trim", "seconds": SECONDS},
                                                 {"op": "logmel"}],
    "trim only": [{"op": "pad_trim", "seconds": SECONDS}],
}


def _recipe(steps: list[dict[str, Any]]) -> Any:
    return load_recipe({"normalize": {"audio": steps}})


def _normalized(recipe: Any, audio: torch.Tensor, rate: int) -> mmdata.Sample:
    return recipe.normalize(mmdata.Sample("k", {"audio": audio}, rate))


def _same(a: mmdata.Sample, b: mmdata.Sample) -> bool:
    return a.sample_rate == b.sample_rate and a.fields.keys() == b.fields.keys() and all(
        torch.equal(a[f], b[f]) if isinstance(a[f], torch.Tensor) else a[f] == b[f] for f in a.fields)


@pytest.mark.parametrize("fmt", ["flac", "wav"])
@pytest.mark.parametrize("rate,channels", [(8000, 1), (22050, 2), (44100, 1), (48000, 2), (48000, 3)])
def test_a_hinted_decode_normalizes_to_the_same_tensors_bit_for_bit(fmt: str, rate: int, channels: int) -> None:
    data = long_audio_bytes(rate + channels, 7.0, rate, channels, fmt)
    whole, r = codecs.decode_audio(data)
    assert r == rate and whole.shape == (channels, 7 * rate)
    for name, steps in STAGES.items():
        recipe = _recipe(steps)
        hint = decode_frames(recipe)
        assert hint is not None, name
        head, r2 = codecs.decode_audio(data, max_frames=hint)
        # fewer frames decoded: what the stage reads (the resampler's reach included), not the clip
        assert r2 == rate and head.shape == (channels, hint(rate)) and hint(rate) < 7 * rate, name
        assert torch.equal(head, whole[:, :hint(rate)]), name  # the same samples: the same decoder, read in blocks
        assert hint(rate) <= math.ceil((SECONDS + RESAMPLE_MARGIN_SECONDS) * rate), name
        assert _same(_normalized(recipe, head, rate), _normalized(recipe, whole, rate)), (name, fmt, rate, channels)


@pytest.mark.parametrize("path", ["dr_flac", "libsndfile (multichannel)", "libsndfile (no miniaudio)"])
def test_every_flac_decoder_gives_the_whole_decodes_first_frames(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the hinted decode takes the decoder the whole clip would take (chosen by the declared length)
    if path == "libsndfile (multichannel)":
        monkeypatch.setattr(codecs, "_MINIAUDIO_MAX_SAMPLES", 1000)
    elif path == "libsndfile (no miniaudio)":
        monkeypatch.setattr(codecs, "_miniaudio", None)
    for channels, subtype in ((1, "PCM_16"), (2, "PCM_24")):
        x = np.random.default_rng(channels).uniform(-1, 1, (48000 * 3 + 7, channels)).astype(np.float32)
        buf = io.BytesIO()
        sf.write(buf, x, 48000, format="FLAC", subtype=subtype)
        whole, _ = codecs.decode_audio(buf.getvalue())
        for n in (1, 4095, 4096, 65536, 65537, 100000, 48000 * 3 + 7, 10**9):
            head, _ = codecs.decode_audio(buf.getvalue(), max_frames=n)
            assert torch.equal(head, whole[:, :n]) and head.is_contiguous(), (path, channels, n)


def _undeclared(flac: bytes) -> bytes:
    """``flac`` with STREAMINFO's total frames set to 0 (not declared, as a streaming encoder writes it)."""
    v = int.from_bytes(flac[18:26], "big") & ~((1 << 36) - 1)
    return flac[:18] + v.to_bytes(8, "big") + flac[26:]


def test_a_flac_that_declares_no_length_stops_at_the_hint_too() -> None:
    data = long_audio_bytes(3, 5.0, 16000, 2)
    blind = _undeclared(data)
    assert codecs.flac_frames(blind) is None and codecs.audio_frames(blind) is None
    whole, _ = codecs.decode_audio(blind)
    head, _ = codecs.decode_audio(blind, max_frames=20000)
    assert whole.shape == (2, 80000) and torch.equal(head, whole[:, :20000])
    # a hint past the limit of what a clip may hold: bounded by the limit while decoding, as before
    with pytest.raises(codecs.OversizeMediaError, match="decoded so far; its header does not declare its length"):
        codecs.decode_audio(blind, max_samples=100000, max_frames=10**9)


def _streaminfo_total(flac: bytes, total: int) -> bytes:
    v = (int.from_bytes(flac[18:26], "big") & ~((1 << 36) - 1)) | total
    return flac[:18] + v.to_bytes(8, "big") + flac[26:]


def test_hostile_headers_are_refused_with_a_hint_too(tmp_path: Path) -> None:
    data = long_audio_bytes(0, 2.0, 16000)  # 32000 frames
    # a header declaring more than a clip may hold: refused unread, hint or not (the same samples skipped)
    huge = _streaminfo_total(data, codecs.MAX_AUDIO_SAMPLES + 1)
    for hint in (None, 1000):
        with pytest.raises(codecs.OversizeMediaError, match="its header declares.*over the limit"):
            codecs.decode_audio(huge, max_frames=hint)
    wav = long_audio_bytes(0, 2.0, 16000, fmt="wav")
    cut = wav[:len(wav) // 2]  # a WAV whose data chunk declares more than the file holds
    for hint in (None, 1000):
        with pytest.raises(Exception, match="truncated WAV"):
            codecs.decode_audio(cut, max_frames=hint)
    # a header that says more frames than the stream holds: met within the frames decoded, as without the
    # hint (libsndfile's error: it seeks past the end) ...
    lying = _streaminfo_total(data, 64000)
    for hint in (None, 40000):
        with pytest.raises(Exception, match="psf_fseek"):
            codecs.decode_audio(lying, max_frames=hint)
    # ... and not past them (the hint's trade: the end of the clip is not read)
    assert codecs.decode_audio(lying, max_frames=16000)[0].shape == (1, 16000)
    # the reader names the shard and the sample
    from mmdata.testing.hostile import tar_of

    (tmp_path / "a.tar").write_bytes(tar_of([("k0", {"flac": huge, "cls": b"0"}), ("k1", {"flac": lying, "cls": b"1"}),
                                             ("k2", {"flac": data, "cls": b"0"})]))
    ds = mmdata.open_dataset(str(tmp_path / "a.tar"), on_error="skip", audio_max_frames=40000)
    assert [s.key for s in ds] == ["k2"]
    assert ds.skipped == {"member too large": 1, "corrupt audio": 1}, ds.skipped
    assert [e[1] for e in ds.errors] == ["k0", "k1"]
    assert ds.errors[1][2].startswith("k1.flac: cannot decode .flac member as audio")
    with pytest.raises(ShardError, match=r"a\.tar: sample 'k0': k0\.flac: .*its header declares"):
        list(mmdata.open_dataset(str(tmp_path / "a.tar"), audio_max_frames=40000))


def test_the_hint_follows_only_stages_that_trim_keeping_the_start() -> None:
    hint = decode_frames(_recipe([{"op": "to_mono"}, {"op": "resample", "rate": 16000}, {"op": "pad_trim", "seconds": 2.0}]))
    assert hint == DecodeFrames((("to_mono", 0), ("resample", 16000), ("pad_trim", 2.0)))
    assert hint(16000) == 32000 and hint(48000) == resample_inputs(32000, 48000, 16000)
    # the last trim of the chain sets the hint; an earlier, longer one does not lengthen it
    trainer = decode_frames(_recipe(STAGES["trainer, trim first"]))
    plain = decode_frames(_recipe(STAGES["mono, resample down, trim"]))
    assert trainer is not None and plain is not None
    assert trainer(48000) == plain(48000) == resample_inputs(round(SECONDS * 16000), 48000, 16000)
    assert trainer(48000) < round((SECONDS + RESAMPLE_MARGIN_SECONDS) * 48000)
    for steps in ([{"op": "to_mono"}, {"op": "resample", "rate": 16000}],  # no trim: whole clips
                  [{"op": "pad_trim", "seconds": 2.0, "align": "center"}],  # keeps the middle
                  [{"op": "pad_trim", "seconds": 2.0, "trim": False}]):  # pads only
        assert decode_frames(_recipe(steps)) is None, steps
    with pytest.warns(UserWarning, match="changes the waveform after logmel"):  # another op first
        assert decode_frames(_recipe([{"op": "logmel"}, {"op": "pad_trim", "seconds": 2.0}])) is None
    assert decode_frames(load_recipe({"audio": [{"op": "random_crop", "seconds": 1.0}]})) is None  # not normalize
    assert decode_frames(load_recipe(None)) is None


@settings(max_examples=60, deadline=None)
@given(orig=st.sampled_from([8000, 11025, 16000, 22050, 22254, 32000, 44100, 48000, 96000, 1000, 7919]),
       new=st.sampled_from([8000, 16000, 22050, 24000, 44100, 48000, 1000]),
       outputs=st.integers(1, 5000), extra=st.integers(0, 3000), seed=st.integers(0, 2**16))
def test_resample_inputs_are_enough_for_the_first_outputs(orig: int, new: int, outputs: int, extra: int, seed: int) -> None:
    need = resample_inputs(outputs, orig, new)
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((1, need + extra)).astype(np.float32))
    full = resample(x, orig, new)
    assert full.shape[-1] >= outputs and torch.equal(resample(x[..., :need], orig, new)[..., :outputs], full[..., :outputs])


def test_the_reader_decodes_the_start_and_says_the_whole_length(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    clips = {"a": (22050, 2, "flac", 7.0), "b": (48000, 1, "wav", 6.0), "c": (16000, 1, "flac", 0.5)}
    for i, (key, (rate, ch, fmt, sec)) in enumerate(clips.items()):
        (raw / f"{key}.{fmt}").write_bytes(long_audio_bytes(i, sec, rate, ch, fmt))
        (raw / f"{key}.cls").write_text("0")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    recipe = _recipe(STAGES["mono, resample down, trim"])
    hint = decode_frames(recipe)
    whole = {s.key: s for s in mmdata.open_dataset(tmp_path / "ds")}
    head = {s.key: s for s in mmdata.open_dataset(tmp_path / "ds", audio_max_frames=hint)}
    for key, (rate, ch, _, sec) in clips.items():
        w, h = whole[key], head[key]
        assert w["audio"].shape == (ch, round(sec * rate)) and "audio_seconds" not in w.meta
        if sec > SECONDS + 0.1:  # long: the start only, and the whole length from the header
            assert h["audio"].shape == (ch, hint(rate)) and h.meta["audio_seconds"] == sec, key
        else:  # short: whole, as without the hint
            assert torch.equal(h["audio"], w["audio"]) and "audio_seconds" not in h.meta, key
        assert _same(recipe.normalize(h), recipe.normalize(w)), key


@pytest.mark.parametrize("cache", [False, True])
def test_the_loader_passes_the_hint_and_its_batches_are_unchanged(tmp_path: Path, cache: bool) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, (rate, ch, sec) in enumerate([(48000, 2, 6.0), (44100, 1, 5.0), (22050, 2, 1.2), (8000, 1, 7.5)] * 2):
        (raw / f"{i:03d}.flac").write_bytes(long_audio_bytes(i, sec, rate, ch))
        (raw / f"{i:03d}.cls").write_text(str(i % 2))
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    recipe = {"normalize": {"audio": STAGES["trainer, trim first"]}}
    hinted = mmdata.loader(tmp_path / "ds", 3, recipe=recipe, stage="eval", cache=cache)
    whole = mmdata.loader(tmp_path / "ds", 3, recipe=recipe, stage="eval", cache=cache, audio_max_frames=None)
    assert isinstance(hinted.source, ShardDataset) is not cache
    if not cache:
        assert hinted.source.audio_max_frames == decode_frames(load_recipe(recipe)) and whole.source.audio_max_frames is None
    n = 0
    for a, b in zip(hinted, whole, strict=True):
        assert a.keys == b.keys and torch.equal(a["audio"], b["audio"]) and torch.equal(a.lengths["audio"], b.lengths["audio"])
        n += len(a)
    assert n == 8
    # no normalize trim, no hint: whole clips (stats, inspect and raw reads never pass one; the augment CLI passes the loader's)
    assert mmdata.loader(tmp_path / "ds", 3, recipe={"normalize": {"audio": [{"op": "to_mono"}]}}).source.audio_max_frames is None
    assert mmdata.open_dataset(tmp_path / "ds").audio_max_frames is None


def test_audio_max_frames_is_checked() -> None:
    for bad in ("5", 0, True, 2.5):
        with pytest.raises(ShardError, match="audio_max_frames: expected an integer >= 1"):
            mmdata.open_dataset([], audio_max_frames=bad)


def test_audio_frames_reads_the_header() -> None:
    for fmt in ("flac", "wav"):
        assert codecs.audio_frames(long_audio_bytes(0, 1.25, 16000, 2, fmt)) == 20000
    ogg = io.BytesIO()
    sf.write(ogg, np.zeros((8000, 1), np.float32), 8000, format="OGG")
    assert codecs.audio_frames(ogg.getvalue()) == 8000
    assert codecs.audio_frames(b"RIFF" + struct.pack("<I", 4) + b"WAVE") is None
