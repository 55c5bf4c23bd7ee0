"""QA38 media fixes, audio: a WAV header never finalised (bioacoustics #1), GUANO metadata (#3), digital
silence / clipping / DC offset under a full decode (#4), and `train --modalities iq` (signals #12).
Real WAVs written by soundfile in tmp_path, sharded through the API."""

from __future__ import annotations

import io
import json
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.errors import MMDataError
from mmdata.shards import mediainfo
from mmdata.train.config import check_options


def _wav(samples: np.ndarray, rate: int = 48000, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, subtype=subtype, format="WAV")
    return buf.getvalue()


def _noise(seed: int, n: int = 4800) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, n).astype(np.float32)


def _unfinished(data: bytes) -> bytes:
    b = bytearray(data)
    struct.pack_into("<I", b, 4, 0)
    j = b.find(b"data")
    struct.pack_into("<I", b, j + 4, 0)
    return bytes(b)


def _guano(data: bytes, text: bytes) -> bytes:
    b = bytearray(data) + b"guan" + struct.pack("<I", len(text)) + text + b"\x00" * (len(text) & 1)
    struct.pack_into("<I", b, 4, len(b) - 8)
    return bytes(b)


def _shard(tmp_path: Path, files: dict[str, bytes]) -> dict:
    for name, data in files.items():
        p = tmp_path / "src" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(tmp_path / "src", tmp_path / "ds", progress=False)
    return json.loads((tmp_path / "ds" / "dataset.json").read_text())


# ---- #1: data size 0, audio after it ---------------------------------------------------------------------------------


def test_unfinished_wav_is_found_and_the_fix_makes_soundfile_read_it(tmp_path: Path) -> None:
    good = _wav(_noise(0))
    bad = _unfinished(good)
    assert sf.info(io.BytesIO(bad)).frames == 0  # what every other reader sees
    assert mediainfo.probe_audio(bad)[0] == 4800  # what mmdata reads
    assert mediainfo.wav_unfinished(bad) and not mediainfo.wav_unfinished(good)
    streamed = bytearray(good)
    struct.pack_into("<I", streamed, streamed.find(b"data") + 4, 0xFFFFFFFF)  # libsndfile reads this one
    assert not mediainfo.wav_unfinished(bytes(streamed))
    text = mediainfo.wav_unfinished_warning(2, 5, ["MYOLUC_a.wav", "MYOLUC_b.wav", "c.wav", "d.wav"])
    assert text.startswith("2 WAV members (of 5 audio members) have a header never finalised")
    assert "MYOLUC_a.wav, MYOLUC_b.wav, c.wav)" in text and "d.wav" not in text
    assert "soundfile / torchaudio / HF datasets read none" in text and "wav_finalised" in text
    assert mediainfo.wav_unfinished_warning(0, 5, []) is None
    # the command the warning gives repairs the file in place for soundfile
    p = tmp_path / "x.wav"
    p.write_bytes(bad)
    p.open("r+b").write(mediainfo.wav_finalised(p.read_bytes()))
    assert sf.info(str(p)).frames == 4800 and p.stat().st_size == len(bad)


# ---- #3: GUANO -------------------------------------------------------------------------------------------------------


def test_guano_position_and_serial_are_counted_in_the_card(tmp_path: Path) -> None:
    text = b"GUANO|Version:1.0\nMake:Wildlife Acoustics\nSerial:SM4-A01\nLoc Position:42.3601 -71.0589\n"
    files = {f"MYOLUC/r{i}.wav": _guano(_wav(_noise(i)), text) for i in range(3)}
    files["EPTFUS/r9.wav"] = _guano(_wav(_noise(9)), b"GUANO|Version:1.0\nMake:Wildlife Acoustics\n")  # nothing personal
    card = _shard(tmp_path, files)
    meta = card["metadata"]
    assert meta["gps"] == 3 and meta["camera_serial"] == 3 and meta["audio_tags"] == 0
    assert len(meta["examples"]["gps"]) == 3
    warning = [w for w in card["warnings"] if w.startswith("identifying metadata")]
    assert len(warning) == 1 and "GUANO Loc Position" in warning[0], card["warnings"]
    assert mediainfo.guano_kinds(b"GUANO|Version:1.0\nLoc Position:\nNote: left the gate\n") == {"audio_tags"}
    assert mediainfo.metadata_members("gps", meta["examples"]["gps"]) == "audio"
    assert mediainfo.metadata_members("gps", ["a.jpg", "b.wav"]) == "image / audio"


# ---- #4: silence, clipping, DC offset under a full decode -----------------------------------------------------------


def test_decode_check_reports_silence_clipping_and_offset() -> None:
    n = 19200
    silent = mediainfo.decode_check("audio", _wav(np.zeros(n, np.float32)))
    clipped = mediainfo.decode_check("audio", _wav(np.clip(10 * np.sin(np.arange(n) * 0.9), -1, 1)))
    offset = mediainfo.decode_check("audio", _wav(0.4 + 0.05 * np.random.default_rng(0).standard_normal(n)))
    fine = mediainfo.decode_check("audio", _wav(_noise(1, n)))
    tone = mediainfo.decode_check("audio", _wav(np.sin(np.arange(n) * 0.05), subtype="PCM_24"))  # full scale, unclipped
    assert mediainfo.audio_level_kinds(silent) == ["silent"] and silent.samples == n
    assert mediainfo.audio_level_kinds(clipped) == ["clipped"] and clipped.full_scale > n // 2
    assert mediainfo.audio_level_kinds(offset) == ["dc_offset"] and abs(offset.mean - 0.4) < 0.01
    assert mediainfo.audio_level_kinds(fine) == [] and mediainfo.audio_level_kinds(tone) == []
    assert mediainfo.decode_check("image", __import__("mmdata.testing", fromlist=["x"]).image_bytes(0)) is None
    acc = None
    for key, levels in (("MYOLUC_s", silent), ("MYOLUC_c", clipped), ("EPTFUS_d", offset), ("EPTFUS_f", fine)):
        acc = mediainfo.note_audio_levels(acc, levels, key)
    acc = mediainfo.combine_audio_levels([acc, None, {"silent": [1, ["Noise_z"]]}])
    assert acc == {"silent": [2, ["MYOLUC_s", "Noise_z"]], "clipped": [1, ["MYOLUC_c"]], "dc_offset": [1, ["EPTFUS_d"]]}
    got = mediainfo.audio_level_warnings(acc, 88)
    assert len(got) == 3
    assert got[0].startswith("2 audio members (of 88) are digital silence (every sample 0: e.g. 'MYOLUC_s', 'Noise_z')")
    assert "1 audio member (of 88) is clipped" in got[1] and "'MYOLUC_c'" in got[1]
    assert "DC offset" in got[2] and "'EPTFUS_d'" in got[2]
    assert mediainfo.audio_level_warnings(None, 3) == []


# ---- signals #12: --modalities iq ------------------------------------------------------------------------------------


def test_modalities_naming_a_stored_field_points_at_your_own_trainer() -> None:
    with pytest.raises(MMDataError) as err:
        check_options(modalities=["iq"])
    text = str(err.value)
    assert "'iq' is not one of ['image', 'audio', 'text']" in text
    assert ".npy array field needs your own model" in text and "Your own trainer" in text


# ---- documents #6: bilevel and grey + alpha decode to 1 channel ----------------------------------------------------


def test_bilevel_and_grey_alpha_decode_to_one_channel_as_the_index_facts_say(tmp_path: Path) -> None:
    from PIL import Image

    from mmdata.codecs import decode_image, image_array
    from mmdata.shards.inspect import reader_channels

    rng = np.random.default_rng(0)
    page = Image.fromarray(rng.integers(0, 2, (40, 30), dtype=np.uint8) * 255).convert("1")
    buf = io.BytesIO()
    page.save(buf, "TIFF", compression="group4")
    la = Image.fromarray(np.stack([np.full((8, 8), 90, np.uint8), np.full((8, 8), 7, np.uint8)], -1), "LA")
    lbuf = io.BytesIO()
    la.save(lbuf, "PNG")
    got = decode_image(buf.getvalue())
    assert tuple(got.shape) == (1, 40, 30) and set(np.unique(got.numpy())) <= {0, 255}
    assert (got.numpy()[0] == np.array(page.convert("L"))).all()
    assert tuple(decode_image(lbuf.getvalue()).shape) == (1, 8, 8) and int(decode_image(lbuf.getvalue()).max()) == 90
    assert tuple(decode_image(lbuf.getvalue(), keep_alpha=True).shape) == (2, 8, 8)  # alpha kept when asked
    assert image_array(Image.new("RGBA", (2, 2))).shape == (2, 2, 3)  # colour modes unchanged
    reader_channels.cache_clear()
    assert (reader_channels("1"), reader_channels("LA"), reader_channels("P")) == (1, 1, 3)


# ---- bioacoustics #7: the sample format from the header ---------------------------------------------------------------


@pytest.mark.parametrize(("subtype", "fmt"), [("PCM_16", "WAV"), ("PCM_24", "WAV"), ("PCM_32", "WAV"), ("FLOAT", "WAV"),
                                              ("DOUBLE", "WAV"), ("PCM_U8", "WAV"), ("ULAW", "WAV"), ("PCM_24", "FLAC"),
                                              ("PCM_16", "FLAC")])
def test_audio_subtype_is_read_from_the_header_as_soundfile_names_it(subtype: str, fmt: str) -> None:
    buf = io.BytesIO()
    sf.write(buf, _noise(3, 800), 8000, subtype=subtype, format=fmt)
    data = buf.getvalue()
    assert sf.info(io.BytesIO(data)).subtype == subtype
    assert mediainfo.audio_subtype(data) == subtype
    buf = io.BytesIO()
    sf.write(buf, np.zeros((800, 4), np.float32), 8000, subtype="PCM_24", format="WAV")  # 4 channels: EXTENSIBLE
    assert mediainfo.audio_subtype(buf.getvalue()) == "PCM_24"
    assert mediainfo.audio_subtype(b"OggS" + bytes(40)) is None


def test_audio_levels_of_decoded_audio_match_the_shard_time_decode() -> None:
    from mmdata.codecs import decode_audio

    for samples in (np.zeros(4800, np.float32), np.clip(10 * np.sin(np.arange(4800) * 0.9), -1, 1), _noise(2) + 0.4):
        data = _wav(samples)
        decoded, _ = decode_audio(data)
        assert mediainfo.audio_level_kinds(mediainfo.audio_levels(decoded)) == \
            mediainfo.audio_level_kinds(mediainfo.decode_check("audio", data))
        assert mediainfo.audio_level_kinds(mediainfo.audio_levels(decoded)) != []
