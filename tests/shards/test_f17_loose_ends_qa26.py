"""QA26 F17 loose ends: `mmdata verify` of a shard that is a Git LFS pointer says only that; `--segment` cuts a
WAV whose header was never finalised (data chunk size 0, the audio after it) like any other."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.shards.verify import verify
from mmdata.testing import make_sample_folder

POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 1234\n"


def test_verify_of_a_pointer_shard_says_only_the_pointer(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=8)
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=4, progress=False)
    tars = sorted(out.glob("*.tar"))
    tars[0].write_bytes(POINTER)
    rep = verify(out)
    about = [p for p in rep["problems"] if p["shard"] == tars[0].name]
    assert not rep["ok"] and len(about) == 1, about
    assert "Git LFS pointer" in str(about[0]["found"]) and "git lfs pull" in str(about[0]["found"])
    assert not any(p["problem"] == "sha256 mismatch" for p in rep["problems"])
    assert all(p["shard"] == tars[0].name for p in rep["problems"])  # the other shard is fine


def test_verify_still_reports_a_changed_shard_as_a_sha256_mismatch(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=8)
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=4, progress=False)
    tar = sorted(out.glob("*.tar"))[0]
    data = bytearray(tar.read_bytes())
    data[-1] ^= 1  # the zero padding at the end: still a readable tar
    tar.write_bytes(bytes(data))
    assert [p["problem"] for p in verify(out)["problems"]] == ["sha256 mismatch"]


SR = 8000


def _unfinalised_wav(path: Path, seconds: float = 3.0) -> np.ndarray:
    """A real 16-bit stereo WAV whose data chunk size is 0 (a streaming writer stopped before it wrote the
    size back), the audio after it; its frames."""
    n = int(SR * seconds)
    t = np.arange(n) / SR
    frames = np.round(np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], axis=1) * 20000
                      ).astype(np.int16)
    buf = io.BytesIO()
    sf.write(buf, frames, SR, format="WAV", subtype="PCM_16")
    data = buf.getvalue()
    i = data.find(b"data") + 4
    path.write_bytes(data[:i] + bytes(4) + data[i + 4:])
    assert sf.info(str(path)).frames == 0  # libsndfile alone sees no audio
    return frames


@pytest.mark.parametrize("seconds", [1.5, 12.0])  # 48 KB, 384 KB: within / past the bytes read for the header
def test_segments_of_an_unfinalised_wav_are_cut(tmp_path: Path, seconds: float) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    frames = _unfinalised_wav(raw / "talk.wav", seconds)
    rows = [(0.1, 0.5, "one"), (0.6, 0.3, "two"), (seconds - 0.5, 0.5, "last")]
    (raw / "segments.csv").write_text("audio,begin,dur,text\n" + "".join(
        f"talk.wav,{b},{d},{txt}\n" for b, d, txt in rows))
    out = tmp_path / "ds"
    rep = mmdata.shard(raw / "segments.csv", out, segment="start=begin,duration=dur", progress=False)
    assert rep["skipped"] == [] and rep["samples"] == 3, json.dumps(rep["skipped"])[:500]
    got: dict[str, np.ndarray] = {}
    texts: dict[str, str] = {}
    for tar in sorted(out.rglob("*.tar")):
        with tarfile.open(tar) as tf:
            for m in tf:
                key, _, ext = m.name.partition(".")
                data = tf.extractfile(m).read()  # type: ignore[union-attr]
                if ext in ("flac", "wav"):
                    got[key] = sf.read(io.BytesIO(data), dtype="int16", always_2d=True)[0]
                elif ext == "txt":
                    texts[key] = data.decode()
    by_text = {texts[k]: got[k] for k in got}
    for b, d, txt in rows:
        start, stop = round(b * SR), round((b + d) * SR)
        assert np.array_equal(by_text[txt], frames[start:stop]), txt
