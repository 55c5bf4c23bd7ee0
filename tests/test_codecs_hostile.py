"""Hostile members on the read side: what a member may decode to is bounded from its header (image
pixels, audio samples) before anything is allocated, a cut WAV is refused rather than read short,
label members follow the shard side's rules, and a ``.npy`` member cannot stand in for a standard
field. Each ends as a counted skip (``on_error="skip"``) or a ``ShardError`` naming shard and key.

The bombs are tiny real files built here byte by byte (a JPEG whose frame header says 30000x30000,
a FLAC of constant subframes declaring 8 x 67 M samples); decoding them runs in a subprocess limited
in address space, so a regression fails as ``member does not fit in memory`` instead of taking
gigabytes from the test run.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

import mmdata
from mmdata import codecs
from mmdata.errors import ShardError
from mmdata.shards.mediainfo import MAX_PIXELS, _crc8, _crc16, probe_audio_py
from mmdata.testing import audio_bytes
from mmdata.testing.hostile import tar_of


# ---- builders -------------------------------------------------------------------------------------


def _jpeg(size: tuple[int, int] = (16, 16), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128 if mode != "RGB" else (10, 200, 30)).save(buf, "JPEG")
    return buf.getvalue()


def jpeg_declaring(h: int, w: int, mode: str = "RGB") -> bytes:
    """A small real JPEG whose frame header (SOF0) claims ``h x w`` pixels."""
    d = bytearray(_jpeg(mode=mode))
    i = d.find(b"\xff\xc0")
    d[i + 5:i + 9] = struct.pack(">HH", h, w)
    return bytes(d)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(h: int, w: int) -> bytes:
    """A PNG whose IHDR claims ``h x w`` RGB pixels, with a few bytes of image data."""
    import zlib

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(bytes(64)))
            + _png_chunk(b"IEND", b""))


def bmp_declaring(h: int, w: int) -> bytes:
    """A 24-bit BMP whose header claims ``h x w`` pixels, holding 16 bytes of them."""
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 14 + 40) + info + bytes(16)


def _utf8_number(n: int) -> bytes:
    """FLAC's UTF-8-like coding of a frame number (up to 2^31 here)."""
    if n < 0x80:
        return bytes([n])
    out = []
    while True:
        out.append(0x80 | (n & 0x3F))
        n >>= 6
        lead_bits = 6 - len(out)  # payload bits the lead byte of a (len(out) + 1)-byte code holds
        if n < (1 << lead_bits):
            lead = (0xFF << (7 - len(out))) & 0xFF
            return bytes([lead | n, *reversed(out)])


def flac_constant(frames: int, block: int = 65535, channels: int = 8, rate: int = 192000,
                  declared: int | None = None) -> bytes:
    """A valid FLAC of ``frames`` frames of ``block`` samples per channel, every subframe CONSTANT
    (3 bytes: a 16-bit value), correct CRC-8 / CRC-16: a few dozen bytes per 65535 x 8 samples.
    ``declared`` (default: the true total) is what STREAMINFO says; 0 declares no length."""
    total = frames * block if declared is None else declared
    rate_code = {192000: 0b0011, 48000: 0b1010, 16000: 0b0101}[rate]
    frame_len = 0
    body = []
    for n in range(frames):
        head = bytearray(b"\xff\xf8")  # sync, fixed block size
        head.append((0b0111 << 4) | rate_code)  # block size: 16 bits (size - 1) at the end of the header
        head.append(((channels - 1) << 4) | (0b100 << 1))  # independent channels, 16-bit samples
        head += _utf8_number(n) + struct.pack(">H", block - 1)
        head.append(_crc8(bytes(head)))
        sub = b"".join(b"\x00" + struct.pack(">h", 1000 * (c + 1)) for c in range(channels))  # CONSTANT
        frame = bytes(head) + sub
        frame += struct.pack(">H", _crc16(frame))
        frame_len = max(frame_len, len(frame))
        body.append(frame)
    info = struct.pack(">HH", block, block) + (0).to_bytes(3, "big") + frame_len.to_bytes(3, "big")
    info += (rate << 44 | (channels - 1) << 41 | 15 << 36 | total).to_bytes(8, "big") + bytes(16)  # no MD5
    return b"fLaC" + b"\x80\x00\x00\x22" + info + b"".join(body)


def _read(tmp_path: Path, samples: list[tuple[str, dict[str, bytes]]], **kw: object) -> mmdata.Dataset:
    shard = tmp_path / "a.tar"
    shard.write_bytes(tar_of(samples))
    return mmdata.open_dataset(str(shard), **kw)


# ---- the builders make real files -----------------------------------------------------------------


def test_constant_flac_builder_is_a_valid_flac() -> None:
    data = flac_constant(3, block=4096, channels=8)
    assert probe_audio_py(data) == (3 * 4096, 192000, 8)  # every CRC checked by the shard-side probe
    audio, rate = codecs.decode_audio(data)
    ref, ref_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    assert rate == ref_rate == 192000 and tuple(audio.shape) == (8, 3 * 4096)
    assert np.array_equal(audio.numpy(), ref.T)
    assert np.allclose(audio[:, 0].numpy(), [1000 * (c + 1) / 32768 for c in range(8)])
    big = flac_constant(1025)
    assert len(big) < 40_000 and probe_audio_py(big) == (1025 * 65535, 192000, 8)


# ---- 1, 2: decode bombs, in a subprocess with bounded address space ------------------------------


_BOMBS = textwrap.dedent('''
    import json, resource, sys
    import numpy, torch, soundfile, PIL.Image
    import mmdata
    from mmdata import codecs
    from mmdata.shards import mediainfo  # loaded before the limit: decoding is what is measured
    try:
        import simplejpeg, miniaudio
    except ImportError:
        pass

    def vm() -> int:
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
        return 0

    # everything the decode needs is loaded: 1 GiB more address space is all it may take
    limit = vm() + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = {}
    for name in sys.argv[1:-1]:
        ds = mmdata.open_dataset(sys.argv[-1] + "/" + name + ".tar", on_error="skip")
        out[name] = {"keys": [s.key for s in ds], "skipped": ds.skipped, "errors": [e[2] for e in ds.errors]}
    PIL.Image.MAX_IMAGE_PIXELS = None  # Pillow's own bomb check off: decode_image's must still hold
    for name in ("bmp", "png"):
        data = open(sys.argv[-1] + "/" + name + ".bin", "rb").read()
        try:
            codecs.decode_member(name, data)
            out["pil-" + name] = "decoded"
        except Exception as exc:
            out["pil-" + name] = f"{type(exc).__name__}: {exc} (cause {type(exc.__cause__).__name__})"
    print(json.dumps(out))
''')


def test_decode_bombs_are_refused_from_their_headers(tmp_path: Path) -> None:
    shards = {
        "jpeg": [("k0", {"jpg": jpeg_declaring(30000, 30000), "cls": b"0"}), ("k1", {"jpg": _jpeg(), "cls": b"1"})],
        "jpeg-cmyk": [("k0", {"jpg": jpeg_declaring(30000, 30000, "CMYK"), "cls": b"0"})],  # Pillow's path
        "flac": [("k0", {"flac": flac_constant(1025), "cls": b"0"}),
                 ("k1", {"flac": flac_constant(2, block=1024, channels=2, rate=16000), "cls": b"1"})],
    }
    for name, samples in shards.items():
        (tmp_path / f"{name}.tar").write_bytes(tar_of(samples))
    (tmp_path / "bmp.bin").write_bytes(bmp_declaring(20000, 20000))
    (tmp_path / "png.bin").write_bytes(png_declaring(20000, 20000))
    run = subprocess.run([sys.executable, "-c", _BOMBS, *shards, str(tmp_path)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    bombs = json.loads(run.stdout.strip().splitlines()[-1])

    # 1. a 633-byte JPEG declaring 30000x30000: refused before simplejpeg / Pillow allocate 2.7 GB
    for name in ("jpeg", "jpeg-cmyk"):
        got = bombs[name]
        assert got["skipped"] == {"member too large": 1}, got
        (msg,) = got["errors"]
        assert msg.startswith("k0.jpg: cannot decode .jpg member as an image") and "not decoded" in msg
        assert f"30000x30000 pixels (900000000 pixels) is over the limit of {MAX_PIXELS} pixels" in msg
    assert bombs["jpeg"]["keys"] == ["k1"]
    # ... and other formats with Pillow's own limit switched off
    for name, fmt in (("bmp", "BMP"), ("png", "PNG")):
        assert bombs[f"pil-{name}"].startswith(f"OversizeMediaError: cannot decode .{name} member as an image: "
                                               f"OversizeMediaError: "
                                               f"{fmt} of 20000x20000 pixels (400000000 pixels) is over the limit")

    # 2. a 37 KB FLAC of 8 x 67 M constant samples: refused from STREAMINFO, not decoded to 2.1 GB
    got = bombs["flac"]
    assert got["skipped"] == {"member too large": 1} and got["keys"] == ["k1"], got
    (msg,) = got["errors"]
    assert msg.startswith("k0.flac: cannot decode .flac member as audio")
    assert (f"audio of {1025 * 65535} frames x 8 channels ({1025 * 65535 * 8} samples, its header declares) is "
            f"over the limit of {codecs.MAX_AUDIO_SAMPLES} samples") in msg


def test_pixel_limit_is_the_shard_sides() -> None:
    codecs.check_pixels("JPEG", 1, MAX_PIXELS)  # at the limit: fine
    with pytest.raises(codecs.OversizeMediaError, match=r"JPEG of 30000x30000 pixels .* over the limit"):
        codecs.check_pixels("JPEG", 30000, 30000)
    assert codecs.jpeg_size(jpeg_declaring(30000, 123)) == (30000, 123)
    # through decode_member the limits keep their own type (a reader may count them apart from damage)
    for ext, data in (("jpg", jpeg_declaring(30000, 30000)), ("flac", flac_constant(1025))):
        with pytest.raises(codecs.OversizeMediaError, match=r"is over the limit of \d+ (pixels|samples)"):
            codecs.decode_member(ext, data)


def test_audio_without_declared_length_is_bounded_while_decoding() -> None:
    # STREAMINFO total 0 (a streamed encoder): dr_flac would grow its buffer without bound; the block
    # reads count as they go. A short one decodes as before (the same samples as a declared one).
    short = flac_constant(3, block=1024, channels=2, rate=16000)
    undeclared = flac_constant(3, block=1024, channels=2, rate=16000, declared=0)
    a, ra = codecs.decode_audio(short)
    b, rb = codecs.decode_audio(undeclared)
    assert ra == rb == 16000 and torch.equal(a, b) and tuple(b.shape) == (2, 3072) and b.is_contiguous()
    big = flac_constant(40, declared=0)  # 40 x 65535 x 8 samples: refused once past a limit of 2^20
    with pytest.raises(codecs.OversizeMediaError, match=r"frames x 8 channels \(\d+ samples, decoded so far; its header "
                                                 r"does not declare its length\) is over the limit of 1048576"):
        codecs.decode_audio(big, max_samples=1 << 20)
    assert codecs.decode_audio(flac_constant(2, declared=0), max_samples=1 << 20)[0].shape == (8, 2 * 65535)
    with pytest.raises(codecs.OversizeMediaError, match=r"audio of 131070 frames x 8 channels \(1048560 samples, its "
                                                 r"header declares\) is over the limit of 1048559 samples"):
        codecs.decode_audio(flac_constant(2), max_samples=(1 << 20) - 17)


def test_multichannel_audio_decodes_planar_as_libsndfile() -> None:
    x = (np.arange(3 * 5000, dtype=np.float32).reshape(5000, 3) % 200 - 100) / 128
    for fmt in ("WAV", "FLAC"):
        buf = io.BytesIO()
        sf.write(buf, x, 16000, format=fmt, subtype="PCM_16")
        audio, rate = codecs.decode_audio(buf.getvalue())
        ref, _ = sf.read(io.BytesIO(buf.getvalue()), dtype="float32", always_2d=True)
        assert rate == 16000 and audio.is_contiguous() and np.array_equal(audio.numpy(), ref.T)


# ---- 3: a cut WAV -----------------------------------------------------------------------------------


def test_truncated_wav_is_corrupt_audio_not_a_shorter_clip(tmp_path: Path) -> None:
    wav = audio_bytes(4, seconds=1.0, fmt="wav")
    ds = _read(tmp_path, [("k4", {"wav": wav[:len(wav) // 2], "cls": b"0"}), ("k5", {"wav": wav, "cls": b"1"})],
               on_error="skip")
    assert [(s.key, tuple(s["audio"].shape)) for s in ds] == [("k5", (1, 8000))]
    assert ds.skipped == {"corrupt audio": 1}
    (_, key, msg), = ds.errors
    assert key == "k4" and "truncated WAV: the data chunk declares 16000 bytes, the file holds 7978" in msg
    with pytest.raises(ShardError, match=r"a\.tar: sample 'k4': k4\.wav: .*truncated WAV: the data chunk declares "
                                         r"16000 bytes, the file holds 7978"):
        list(_read(tmp_path, [("k4", {"wav": wav[:len(wav) // 2]})]))


def test_wav_header_claiming_two_billion_frames_is_refused() -> None:
    wav = bytearray(audio_bytes(4, seconds=1.0, fmt="wav"))
    i = wav.find(b"data")
    wav[i + 4:i + 8] = struct.pack("<I", 1 << 31)  # 2^30 16-bit frames declared; 16000 bytes present
    with pytest.raises(codecs.DecodeError, match=r"truncated WAV: the data chunk declares 2147483648 bytes, "
                                                 r"the file holds 16000"):
        codecs.decode_member("wav", bytes(wav))


# ---- 4: labels ------------------------------------------------------------------------------------


BAD_LABELS = [b"-5", b"-1", b"1_0", "\u0663".encode(), b" +2", b"9" * 30, b"", b"1.0", b"0x1f", b"9" * 5000]


@pytest.mark.parametrize("raw", BAD_LABELS, ids=lambda r: repr(r[:12]))
def test_bad_label_is_counted_and_named(tmp_path: Path, raw: bytes) -> None:
    samples = [("k0", {"txt": b"a", "cls": b"1"}), ("k1", {"txt": b"b", "cls": raw})]
    ds = _read(tmp_path, samples, on_error="skip")
    assert [(s.key, s["label"]) for s in ds] == [("k0", 1)]
    assert ds.skipped == {"bad label": 1}
    with pytest.raises(ShardError, match=r"a\.tar: sample 'k1': k1\.cls: cannot decode \.cls member as an integer "
                                         r"label: ValueError: "):
        list(_read(tmp_path, samples))


def test_label_rules_and_messages() -> None:
    assert [codecs.decode_label(b) for b in (b"0", b"7\n", b" 12 ", "\ufeff3".encode(), b"007",
                                             str(codecs.MAX_LABEL).encode())] == [0, 7, 12, 3, 7, codecs.MAX_LABEL]
    with pytest.raises(ValueError, match=r"negative label -5"):
        codecs.decode_label(b"-5")
    with pytest.raises(ValueError, match=r"expected an integer class id, got '1_0'"):
        codecs.decode_label(b"1_0")
    with pytest.raises(ValueError, match=r"label 9{30} is out of range \(expected a class id 0\.\.9223372036854775807"):
        codecs.decode_label(b"9" * 30)
    with pytest.raises(ValueError, match=r"label 9223372036854775808 is out of range"):
        codecs.decode_label(str(1 << 63).encode())


def test_huge_label_no_longer_crashes_the_loader(tmp_path: Path) -> None:
    shard = tmp_path / "l.tar"
    shard.write_bytes(tar_of([("k0", {"txt": b"a", "cls": b"1"}), ("k1", {"txt": b"b", "cls": b"9" * 30}),
                              ("k2", {"txt": b"c", "cls": b"2"})]))
    loader = mmdata.loader(str(shard), batch_size=2, on_error="skip")
    batches = list(loader)
    assert len(batches) == 1 and dict(zip(batches[0].keys, batches[0]["label"].tolist())) == {"k0": 1, "k2": 2}
    assert loader.skipped == {"bad label": 1}


def test_collate_names_a_label_it_cannot_hold() -> None:
    from mmdata.types import Sample, collate

    with pytest.raises(ValueError, match=r"sample 'b' has label 10{30}, outside int64"):
        collate([Sample("a", {"label": 1}), Sample("b", {"label": 10**30})])
    with pytest.raises(ValueError, match=r"sample 'a' has a label np.float64\[3\], an array \(expected one integer class id\)"):
        collate([Sample("a", {"label": np.zeros(3)})])


# ---- 5: .npy members posing as standard fields -----------------------------------------------------


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize("field", ["label", "image", "text", "audio"])
def test_npy_member_cannot_supply_a_standard_field(tmp_path: Path, field: str) -> None:
    samples = [("k0", {"txt": b"a", "cls": b"1", "depth.npy": _npy(np.ones((2, 2), np.float32))}),
               ("k1", {"json": b"{}", f"{field}.npy": _npy(np.arange(6).reshape(2, 3))}),
               ("k2", {"txt": b"c", "cls": b"2"})]
    ds = _read(tmp_path, samples, on_error="skip")
    got = list(ds)
    assert [s.key for s in got] == ["k0", "k2"] and got[0]["depth"].shape == (2, 2)  # other arrays still read
    assert ds.skipped == {"member cannot supply a standard field": 1}  # was counted as its field's decode error
    (_, key, msg), = ds.errors
    assert key == "k1" and f"a .{field}.npy member cannot supply the standard field '{field}'" in msg
    with pytest.raises(ShardError, match=rf"a\.tar: sample 'k1': k1\.{field}\.npy: a \.{field}\.npy member cannot "
                                         rf"supply the standard field '{field}' \(expected a \."):
        list(_read(tmp_path, samples))


def test_unknown_extension_named_after_a_standard_field_is_refused() -> None:
    for ext in ("image", "audio", "IMAGE.NPY", "tokens.npy"):
        name = codecs.field_of(ext)
        if name in codecs.STANDARD_FIELD_EXTS:
            with pytest.raises(codecs.StandardFieldError, match=rf"cannot supply the standard field '{name}'"):
                codecs.decode_member(ext, _npy(np.zeros(2)))
        else:
            assert codecs.decode_member(ext, _npy(np.zeros(2)))[0] == name
    assert codecs.decode_member("cls", b"4") == ("label", 4, None)


def test_mmdata_shard_refuses_a_label_outside_int64_too() -> None:
    """`mmdata shard` read label files by the same rule but with no upper bound: 10**30 was sharded,
    then crashed collate and to_hf on read (QA 2026-12-03). One rule now serves both sides."""
    from mmdata.shards.sources import parse_label

    assert parse_label(b"9223372036854775807", None) == (1 << 63) - 1 and parse_label(b"0007", None) == 7
    for raw in (b"9223372036854775808", b"1" + b"0" * 30, b"9" * 5000):
        with pytest.raises(ValueError, match=r"out of range \(expected a class id 0\.\.9223372036854775807, an int64\)"):
            parse_label(raw, None)
