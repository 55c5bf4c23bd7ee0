"""The audio containers libsndfile reads besides FLAC / WAV / OGG / MP3 / AIFF (QA round 26, F9): Ogg Opus
(``.opus``), Ogg Vorbis named ``.oga``, NIST SPHERE (``.sph``), Sun / NeXT (``.au``, ``.snd``), Wave64
(``.w64``), CAF (``.caf``) and RF64 (``.rf64``) were "unknown file type" to ``mmdata shard`` and an extra
field of bytes to the reader, though soundfile reads them. Each file here is a real one written by
soundfile; what soundfile reads back from it is the truth checked."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

import mmdata
from mmdata.codecs import AUDIO_EXTS, decode_audio, decode_member, field_of
from mmdata.shards.mediainfo import CorruptMedia, member_stats, probe_audio

# extension -> (soundfile format, subtype, sample rate)
FORMATS = {
    "opus": ("OGG", "OPUS", 48000),
    "oga": ("OGG", "VORBIS", 16000),
    "sph": ("NIST", "PCM_16", 16000),
    "au": ("AU", "PCM_16", 16000),
    "snd": ("AU", "ULAW", 8000),
    "w64": ("W64", "PCM_24", 16000),
    "caf": ("CAF", "ALAC_16", 16000),
    "rf64": ("RF64", "FLOAT", 16000),
}


def _clip(ext: str, frames: int = 4800, channels: int = 1) -> bytes:
    fmt, subtype, rate = FORMATS[ext]
    t = np.arange(frames)
    x = np.stack([0.4 * np.sin(t / (5 + c)) for c in range(channels)], 1).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _truth(data: bytes) -> tuple[np.ndarray, int]:
    arr, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return arr.T, rate


def test_every_format_soundfile_reads_here_is_an_audio_type() -> None:
    readable = sf.available_formats()
    for ext, (fmt, subtype, _) in FORMATS.items():
        assert fmt in readable and subtype in sf.available_subtypes(fmt), (ext, fmt, subtype)
        assert ext in AUDIO_EXTS and field_of(ext) == "audio" and field_of(ext.upper()) == "audio"


@pytest.mark.parametrize("ext", sorted(FORMATS))
@pytest.mark.parametrize("channels", [1, 2])
def test_header_check_and_decode_read_what_soundfile_reads(ext: str, channels: int) -> None:
    data = _clip(ext, 4800, channels)
    truth, rate = _truth(data)
    assert truth.shape == (channels, 4800)
    assert probe_audio(data) == (4800, rate, channels)
    stats = member_stats(ext, data)
    assert stats["audio_sample_rate"] == rate and stats["audio_channels"] == channels
    audio, got_rate = decode_audio(data)
    assert got_rate == rate and np.array_equal(audio.numpy(), truth)
    field, value, member_rate = decode_member(ext, data)
    assert field == "audio" and member_rate == rate and np.array_equal(value.numpy(), truth)
    # a hint decodes the first frames only, the same values
    assert np.array_equal(decode_audio(data, max_frames=1000)[0].numpy(), truth[:, :1000])


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_bytes_that_are_no_audio_are_refused_under_these_names(ext: str) -> None:
    with pytest.raises(CorruptMedia, match="not audio soundfile can open"):
        member_stats(ext, b"this is a text file, not audio at all" * 10)
    with pytest.raises(CorruptMedia, match="empty file"):
        member_stats(ext, b"")


def test_shard_a_folder_of_each_and_read_it_back(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app
    from mmdata.shards.verify import verify

    src = tmp_path / "src"
    src.mkdir()
    clips = {ext: _clip(ext) for ext in FORMATS}
    for ext, data in clips.items():
        (src / f"utt_{ext}.{ext}").write_bytes(data)
    res = CliRunner().invoke(app, ["shard", str(src), str(tmp_path / "ds")])
    assert res.exit_code == 0, res.output
    assert "unknown file type" not in res.output, res.output
    rows = pq.read_table(tmp_path / "ds" / "index.parquet").to_pylist()
    assert len(rows) == len(FORMATS)
    # the members are stored as they are, under their own extension
    stored: dict[str, bytes] = {}
    for tar in sorted((tmp_path / "ds").glob("*.tar")):
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                stored[m.name.split(".", 1)[1]] = tf.extractfile(m).read()
    assert stored == clips
    for row in rows:
        assert row["audio_seconds"] == pytest.approx(4800 / FORMATS[row["key"].rsplit("_", 1)[-1]][2])
    got = {s.key.rsplit("_", 1)[-1]: s["audio"] for s in mmdata.open_dataset(str(tmp_path / "ds"), shuffle=False)}
    assert set(got) == set(FORMATS)
    for ext, audio in got.items():
        assert np.array_equal(audio.numpy(), _truth(clips[ext])[0]), ext
    assert verify(tmp_path / "ds", deep=True)["ok"]


def test_webdataset_members_named_so_are_the_audio_field(tmp_path: Path) -> None:
    from mmdata.shards.verify import verify

    tar = tmp_path / "bare.tar"
    clips = {ext: _clip(ext) for ext in FORMATS}
    with tarfile.open(tar, "w", format=tarfile.USTAR_FORMAT) as tf:
        for ext, data in clips.items():
            for name, body in ((f"k{ext}.{ext}", data), (f"k{ext}.cls", b"1")):
                info = tarfile.TarInfo(name)
                info.size = len(body)
                tf.addfile(info, io.BytesIO(body))
    samples = list(mmdata.open_dataset(str(tar), shuffle=False))
    assert len(samples) == len(FORMATS)
    for s in samples:
        ext = s.key[1:]
        assert np.array_equal(s["audio"].numpy(), _truth(clips[ext])[0]), ext
    assert verify(str(tar), deep=True)["ok"]


@pytest.mark.parametrize("ext, message", [("sph", "truncated NIST SPHERE"), ("au", "truncated AU"),
                                          ("snd", "truncated AU"), ("w64", "truncated W64"),
                                          ("rf64", "truncated RF64")])
def test_a_cut_file_is_refused_where_libsndfile_would_read_it_short(ext: str, message: str) -> None:
    data = _clip(ext)
    cut = data[:len(data) // 2]
    assert 0 < sf.info(io.BytesIO(cut)).frames < 4800  # the truth: libsndfile reads it short, without an error
    with pytest.raises(CorruptMedia, match=message):
        probe_audio(cut)
    with pytest.raises(CorruptMedia, match=message):
        decode_audio(cut)
    assert mmdata.codecs.audio_frames(cut) is None


def test_a_cut_file_is_reported_by_shard(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = _clip("sph")
    (src / "good.sph").write_bytes(data)
    (src / "cut.sph").write_bytes(data[:-1000])
    report = mmdata.shard(src, tmp_path / "ds", on_error="skip", progress=False)
    assert report["samples"] == 1, report
    assert "truncated NIST SPHERE" in str(report), report


def test_an_au_whose_length_is_left_open_reads_to_the_end() -> None:
    data = bytearray(_clip("au"))
    data[8:12] = b"\xff\xff\xff\xff"  # what a Sun / NeXT writer to a pipe leaves
    truth, rate = _truth(bytes(data))
    assert truth.shape == (1, 4800)
    assert probe_audio(bytes(data)) == (4800, rate, 1)
    assert np.array_equal(decode_audio(bytes(data))[0].numpy(), truth)


def test_bytes_without_a_name_are_known_by_their_magic_number() -> None:
    """Inline bytes (a Parquet binary column, HF audio storage) get their type from their first bytes."""
    from mmdata.interop.hf import audio_ext

    want = {"opus": "ogg", "oga": "ogg", "sph": "sph", "au": "au", "snd": "au", "w64": "w64", "caf": "caf",
            "rf64": "rf64"}
    for ext, got in want.items():
        assert audio_ext(_clip(ext)) == got, ext
        assert field_of(got) == "audio"


def test_an_augment_target_cannot_be_named_like_an_audio_member() -> None:
    from mmdata.augment.targets import MODALITY_EXTS

    assert all(MODALITY_EXTS[e] == "audio" for e in AUDIO_EXTS)


@pytest.mark.filterwarnings("ignore:audio members of .* the source.s size")
def test_augment_reads_them_and_writes_flac_or_wav(tmp_path: Path) -> None:
    """The offline augment decodes each clip and writes what it produced as FLAC / WAV (as for .ogg)."""
    from mmdata.augment.offline import augment_dataset

    src = tmp_path / "src"
    src.mkdir()
    for ext in FORMATS:
        (src / f"utt_{ext}.{ext}").write_bytes(_clip(ext))
    mmdata.shard(src, tmp_path / "ds", progress=False)
    recipe = {"normalize": {"audio": [{"op": "resample", "rate": 16000}]}, "audio": [{"op": "gain", "p": 1.0}]}
    augment_dataset(tmp_path / "ds", tmp_path / "aug", recipe, seed=1, progress=False)
    out = list(mmdata.open_dataset(str(tmp_path / "aug"), shuffle=False))
    assert len(out) == len(FORMATS)
    assert all(s["audio"].shape[0] == 1 and s["audio"].shape[1] > 0 for s in out)
    names = set()
    for tar in (tmp_path / "aug").glob("*.tar"):
        with tarfile.open(tar) as tf:
            names |= {m.name.split(".", 1)[1] for m in tf.getmembers()}
    assert names <= {"flac", "wav", "json"}, names


def test_a_sphere_length_of_thousands_of_digits_is_a_bad_file_not_a_crash(tmp_path: Path) -> None:
    """QA26 review: int() of a 5000-digit -i field raised Python's digit-limit ValueError, which aborted the job."""
    from mmdata.shards.mediainfo import CorruptMedia, probe_audio

    head = b"NIST_1A\n   1024\nsample_count -i " + b"9" * 5000 + b"\nend_head\n"
    data = head + b"\x00" * (-len(head) % 1024) + b"\x00" * 64
    data = data[:8] + f"{len(head) + (-len(head) % 1024):7d}\n".encode() + data[16:]
    try:
        probe_audio(data)
    except CorruptMedia:
        pass
