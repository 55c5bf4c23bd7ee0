"""Header walks over crafted files do bounded work (QA28 security #1, #9).

A FLAC whose STREAMINFO says max_frame = 0 followed by 400 KB of ``FF F8`` pairs made the Python probe's
backward search for the last frame quadratic (50 s for one file); a JPEG with 100 MB of junk between
two segments was stepped over one byte at a time in Python, by every walk of the header. No timing here:
the work is counted through a ``bytes`` subclass (its ``rfind`` spans and its per-byte indexing) and a
counting wrapper around the frame-header parser.
"""

from __future__ import annotations

import pytest

from mmdata import codecs
from mmdata.shards import mediainfo
from mmdata.shards.mediainfo import CorruptMedia
from mmdata.testing import audio_bytes, image_bytes


class CountingBytes(bytes):
    """bytes that count the bytes their ``rfind`` / ``find`` calls may scan and their single-byte reads."""

    scanned = 0
    indexed = 0

    def rfind(self, sub, start=None, end=None):  # type: ignore[override]
        lo = 0 if start is None else start
        hi = len(self) if end is None else end
        got = bytes.rfind(self, sub, lo, hi)
        CountingBytes.scanned += max(hi - (got if got >= 0 else lo), 0)
        return got

    def find(self, sub, start=None, end=None):  # type: ignore[override]
        lo = 0 if start is None else start
        hi = len(self) if end is None else end
        got = bytes.find(self, sub, lo, hi)
        CountingBytes.scanned += max((got if got >= 0 else hi) - lo, 0)
        return got

    def __getitem__(self, k):  # type: ignore[override]
        if isinstance(k, int):
            CountingBytes.indexed += 1
        return bytes.__getitem__(self, k)


@pytest.fixture(autouse=True)
def _reset_counts() -> None:
    CountingBytes.scanned = CountingBytes.indexed = 0


def crafted_flac(pairs: int) -> bytes:
    """A real FLAC's metadata with max_frame = 0 (search the whole file), then ``pairs`` x ``FF F8``."""
    f = audio_bytes(0, fmt="flac")
    pos = 4
    while True:
        last = f[pos] & 0x80
        pos += 4 + int.from_bytes(f[pos + 1:pos + 4], "big")
        if last:
            break
    head = bytearray(f[:pos])
    head[15:18] = b"\0\0\0"
    return bytes(head) + b"\xff\xf8" * pairs


def test_flac_last_frame_search_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = mediainfo._flac_frame_header

    def counted(*args):  # type: ignore[no-untyped-def]
        calls.append(args[1])
        return real(*args)

    monkeypatch.setattr(mediainfo, "_flac_frame_header", counted)
    data = CountingBytes(crafted_flac(20_000))  # 40 KB: 20000 candidate sync codes
    with pytest.raises(CorruptMedia, match="truncated or corrupt FLAC"):
        mediainfo._flac(data)
    assert len(calls) <= 64, f"{len(calls)} candidate frame headers tried (the C probe stops at 64)"
    # each byte searched a bounded number of times: linear, not one rfind back to the start per candidate
    assert CountingBytes.scanned <= 4 * len(data), f"{CountingBytes.scanned} bytes scanned for {len(data)}"


def test_flac_probe_of_the_reported_file_does_bounded_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reported 400 KB file through the public probe: the C probe declines it (None), the Python search
    refuses it; 50 s before the fix. The work is counted, and stopped at the first candidate over the bound
    (the unbounded search would try 200,000)."""
    calls = []
    real = mediainfo._flac_frame_header

    def counted(*args):  # type: ignore[no-untyped-def]
        calls.append(args[1])
        assert len(calls) <= 64, "more candidate frame headers tried than the C probe's 64"
        return real(*args)

    monkeypatch.setattr(mediainfo, "_flac_frame_header", counted)
    data = CountingBytes(crafted_flac(200_000))
    with pytest.raises(CorruptMedia, match="truncated or corrupt FLAC"):
        mediainfo.probe_audio(data)
    assert calls, "the Python search was not reached (the C probe refused it itself)"
    assert CountingBytes.scanned <= 4 * len(data), f"{CountingBytes.scanned} bytes scanned for {len(data)}"


def test_flac_search_still_finds_the_last_frame() -> None:
    for fmt_seconds in (0.25, 1.0, 3.0):
        data = audio_bytes(0, fmt="flac", seconds=fmt_seconds, sample_rate=16000)
        frames, rate, _ = mediainfo._flac(CountingBytes(data))
        assert (frames, rate) == (int(fmt_seconds * 16000), 16000)
        assert mediainfo._flac(data) == mediainfo.probe_audio(data)


def junk_jpeg(junk: int) -> bytes:
    j = image_bytes(0, fmt="jpg")
    exif = b"Exif\0\0MM\0*\0\0\0\x08\0\0"
    app1 = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    return j[:2] + app1 + bytes(junk) + j[2:]


@pytest.mark.parametrize("walk", ["segments", "probe", "orientation", "size"])
def test_jpeg_walk_skips_junk_without_a_python_step_per_byte(walk: str) -> None:
    plain = image_bytes(0, fmt="jpg")
    data = CountingBytes(junk_jpeg(200_000))
    run = {"segments": lambda d: [m for m, _, _ in codecs.jpeg_segments(d)],
           "probe": mediainfo.probe_image_py, "orientation": codecs.jpeg_orientation, "size": codecs.jpeg_size}[walk]
    got = run(data)
    assert CountingBytes.indexed < 5_000, f"{CountingBytes.indexed} single-byte reads for {len(data)} bytes"
    if walk == "segments":
        assert got == [0xE1] + [m for m, _, _ in codecs.jpeg_segments(plain)]
    else:
        assert got == run(plain)


def test_jpeg_walk_steps_over_fill_runs_and_stuffed_markers() -> None:
    j = image_bytes(0, fmt="jpg")
    # fill bytes (FF FF ...) before a marker, a stuffed FF 00 and an RST marker in the junk, junk to the end
    odd = j[:2] + b"\x00\x11\xff\x00\xff\xd3" + b"\xff" * 5000 + j[2:]
    assert [s[0] for s in codecs.jpeg_segments(odd)] == [s[0] for s in codecs.jpeg_segments(j)]
    assert mediainfo.probe_image_py(odd) == mediainfo.probe_image_py(j)
    assert list(codecs.jpeg_segments(b"\xff\xd8" + b"\x00" * 100)) == []
    assert list(codecs.jpeg_segments(b"\xff\xd8" + b"\x00" * 100 + b"\xff\xe1\x00")) == []
    with pytest.raises(CorruptMedia, match="ends before its image data"):
        mediainfo.probe_image_py(b"\xff\xd8" + b"\x00" * 100 + b"\xff\xe1")
