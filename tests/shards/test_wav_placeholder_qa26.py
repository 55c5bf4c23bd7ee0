"""WAV headers a streaming recorder leaves unfinished (QA round 26, F9): the ``data`` chunk's size is a
placeholder (arecord 0x7FFFFFFF, sox 0x7FFFF000 rounded down to whole frames, ffmpeg / most writers
0xFFFFFFFF, a header never finalised 0) and the audio runs to the end of the file. ``mmdata shard``, the
reader and ``verify --deep`` read such a file as libsndfile does: to the end of the file, in whole frames;
a size that is no placeholder and runs past the end is a cut file, still refused. The files are real
ones written by soundfile and then patched; soundfile's own reading of them is the truth checked."""

from __future__ import annotations

import io
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.codecs import decode_audio
from mmdata.shards.mediainfo import CorruptMedia, probe_audio, probe_audio_py
from mmdata.shards.tarwrite import _pack

RATE = 8000


def _wav(frames: int = 8000, channels: int = 1, subtype: str = "PCM_16") -> bytes:
    x = 0.5 * np.sin(np.arange(frames) / 3)
    buf = io.BytesIO()
    sf.write(buf, np.stack([x * (c + 1) / channels for c in range(channels)], 1), RATE, format="WAV", subtype=subtype)
    return buf.getvalue()


def _patched(data: bytes, size: int, tail: bytes = b"") -> bytes:
    b = bytearray(data)
    i = b.find(b"data")
    b[i + 4:i + 8] = struct.pack("<I", size)
    return bytes(b) + tail


def _sox(block: int) -> int:
    return 0x7FFFF000 // block * block


# (channels, subtype) -> bytes per frame: 2, 6 (3 x 16-bit: the sox size differs from 0x7FFFF000), 12
LAYOUTS = [(1, "PCM_16"), (3, "PCM_16"), (3, "FLOAT")]
PLACEHOLDERS = ["ffff", "7fff", "sox", "7ffff000", "zero"]


def _size(name: str, block: int) -> int:
    return {"ffff": 0xFFFFFFFF, "7fff": 0x7FFFFFFF, "sox": _sox(block), "7ffff000": 0x7FFFF000, "zero": 0}[name]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", PLACEHOLDERS)
@pytest.mark.parametrize("tail", [b"", b"\x01"], ids=["whole", "part-frame"])
def test_placeholder_sizes_read_to_the_end_as_libsndfile_does(layout: tuple[int, str], name: str, tail: bytes) -> None:
    channels, subtype = layout
    good = _wav(8000, channels, subtype)
    block = channels * (4 if subtype == "FLOAT" else 2)
    data = _patched(good, _size(name, block), tail)
    truth, _ = sf.read(io.BytesIO(_patched(good, 0xFFFFFFFF, tail)), dtype="float32", always_2d=True)
    assert truth.shape == (8000, channels)
    if name != "zero":  # libsndfile itself reads these to the end (a 0 it reads as no audio: see below)
        assert sf.read(io.BytesIO(data), dtype="float32", always_2d=True)[0].shape == truth.shape
    assert probe_audio_py(data) == (8000, RATE, channels)
    assert probe_audio(data) == (8000, RATE, channels)
    if _pack is not None:
        assert _pack.probe_audio(data) == (8000, RATE, channels)
    audio, rate = decode_audio(data)
    assert rate == RATE and np.array_equal(audio.numpy(), truth.T)
    assert mmdata.codecs.audio_frames(data) == 8000


def test_libsndfile_reads_a_zero_size_as_no_audio_so_the_decoder_reads_the_frames_itself() -> None:
    """The truth this rests on: libsndfile 1.x reads a data chunk of size 0 as 0 frames, the audio after it
    unread; mmdata reads it to the end (the decoder and the header parser agree on 8000 frames)."""
    data = _patched(_wav(), 0)
    assert sf.info(io.BytesIO(data)).frames == 0
    assert decode_audio(data)[0].shape == (1, 8000)


def test_a_real_truncation_is_still_refused() -> None:
    good = _wav()
    cut = good[:-2000]
    with pytest.raises(CorruptMedia, match="truncated WAV: the data chunk declares 16000 bytes, the file holds 14000"):
        probe_audio(cut)
    with pytest.raises(CorruptMedia, match="truncated WAV"):
        decode_audio(cut)
    # sizes near the placeholders but no placeholder: a large file cut in a copy
    for size in (0x7FFFFFFE, 0x7FFFF002, 0x80000000, 0xFFFFFFFE, 0x10000000):
        with pytest.raises(CorruptMedia, match=f"truncated WAV: the data chunk declares {size} bytes"):
            probe_audio(_patched(good, size))
        if _pack is not None:
            assert _pack.probe_audio(_patched(good, size)) is None


def test_a_zero_size_data_chunk_followed_by_chunks_is_empty_and_one_without_a_frame_is_too() -> None:
    data = _patched(_wav(), 0)
    head = data[:data.find(b"data") + 8]
    # a real empty data chunk: the next bytes are a chunk (a LIST chunk that ends the file)
    with pytest.raises(CorruptMedia, match=r"WAV without audio frames \(its data chunk holds 0 bytes\)"):
        probe_audio(head + b"LIST\x04\x00\x00\x00INFO")
    # nothing (or less than a frame) after the header: no audio
    for rest in (b"", b"\x01"):
        with pytest.raises(CorruptMedia, match="WAV without audio frames"):
            probe_audio(head + rest)
    for size in (0xFFFFFFFF, 0x7FFFFFFF):
        with pytest.raises(CorruptMedia, match="WAV without audio frames"):
            probe_audio(_patched(head, size, b"\x01"))


def _folder(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    src = tmp_path / "src"
    src.mkdir()
    good = _wav(8000, 1)
    files = {f"{name}.wav": _patched(good, _size(name, 2)) for name in PLACEHOLDERS}
    for name, data in files.items():
        (src / name).write_bytes(data)
    return src, files


def test_shard_open_dataset_and_verify_deep_read_them(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app
    from mmdata.shards.verify import verify

    src, files = _folder(tmp_path)
    res = CliRunner().invoke(app, ["shard", str(src), str(tmp_path / "ds")])
    assert res.exit_code == 0, res.output
    assert "truncated" not in res.output and "without audio" not in res.output, res.output
    rows = mmdata.open_dataset(str(tmp_path / "ds"), shuffle=False)
    got = [s["audio"].shape for s in rows]
    assert got == [(1, 8000)] * len(files)
    assert verify(tmp_path / "ds", deep=True)["ok"]
    # a bare WebDataset tar of the same files (the bytes kept as they are)
    tar = tmp_path / "bare.tar"
    with tarfile.open(tar, "w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"k_{name[:-4]}.wav")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    samples = list(mmdata.open_dataset(str(tar), shuffle=False))
    assert [s["audio"].shape for s in samples] == [(1, 8000)] * len(files)
    rep = verify(str(tar), deep=True)
    assert rep["ok"], rep["problems"]


def test_a_cut_file_is_still_refused_by_shard_and_verify_deep(tmp_path: Path) -> None:
    from mmdata.shards.verify import verify

    tar = tmp_path / "bare.tar"
    data = _wav()[:-2000]
    with tarfile.open(tar, "w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo("cut.wav")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    rep = verify(str(tar), deep=True)
    assert not rep["ok"] and "truncated WAV" in str(rep["problems"])


@pytest.mark.skipif(_pack is None, reason="the C module is not built here")
def test_the_c_parser_agrees_with_python_around_the_placeholders() -> None:
    rng = np.random.default_rng(26)
    good = _wav(300, 3, "PCM_16")  # block 6: sox's size is not 0x7FFFF000
    head = good[:good.find(b"data") + 8]
    body = good[len(head):]
    sizes = [0, 1, 5, 6, 7, len(body), len(body) + 1, 0x7FFFF000, _sox(6), _sox(6) - 6, 0x7FFFFFFF, 0x7FFFFFFE,
             0xFFFFFFFF, 0xFFFFFFFE, 0x80000000]
    tails = [b"", b"\x01", body, body[:-1], b"LIST\x04\x00\x00\x00INFO", b"LIST\xff\x00\x00\x00INFO" + body,
             b"junk" + body, rng.integers(0, 256, 37, dtype=np.uint8).tobytes()]
    for size in sizes:
        for tail in tails:
            data = _patched(head, size, tail)
            try:
                py = probe_audio_py(data)
            except CorruptMedia:
                py = None
            c = _pack.probe_audio(data)
            assert c is None or c == py, (size, tail[:12], c, py)
            if py is not None:
                assert c == py, (size, tail[:12], c, py)  # every file Python accepts, C accepts too
