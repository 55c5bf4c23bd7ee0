"""QA34 avspeech #7 / #8: ``--segment`` keeps a Lhotse supervision's ``channel`` (one speaker per channel of a
call), refuses a channel the recording lacks naming the row, warns when a channel column is left unread; a
Lhotse ``cuts.jsonl.gz`` (recording and supervisions nested in each cut) shards as docs/interop.md says."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.errors import SourceError
from mmdata.shards.sources import lhotse_cut_rows, segment_spec

SR = 8000


def _calls(root: Path, channels: int = 2) -> np.ndarray:
    """Two 4 s recordings, each channel a ramp of its own (channel c holds c * 1000 + frame), 16-bit."""
    (root / "rec").mkdir(parents=True)
    n = 4 * SR
    x = np.stack([(c * 1000 + np.arange(n)) % 30000 for c in range(channels)], 1).astype(np.int16)
    for r in ("call1", "call2"):
        sf.write(root / "rec" / f"{r}.wav", x, SR, subtype="PCM_16")
    return x


def _sups(root: Path, channel: object = None) -> Path:
    rows = [{"id": f"{r}-{i}", "recording_id": r, "start": i * 1.0, "duration": 0.5,
             "channel": i % 2 if channel is None else channel, "text": f"word {i}",
             "speaker": f"{r}-{'AB'[i % 2]}"} for r in ("call1", "call2") for i in range(4)]
    p = root / "sups.jsonl"
    p.write_text("".join(json.dumps(s) + "\n" for s in rows), encoding="utf-8")
    return p


def _samples(ds: Path) -> dict[str, dict]:
    out = {}
    for tar in sorted(ds.glob("*.tar")):
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                key, _, ext = m.name.partition(".")
                out.setdefault(key, {})[ext] = t.extractfile(m).read()
    return out


def test_segment_spec_takes_a_channel_column() -> None:
    assert segment_spec("start=s,duration=d,channel=ch", "m") == {"start": "s", "duration": "d", "channel": "ch"}


def test_a_supervision_channel_keeps_that_channel_only(tmp_path: Path) -> None:
    x = _calls(tmp_path)
    rep = mmdata.shard(_sups(tmp_path), tmp_path / "ds", columns={"key": "id"}, paths={"audio": "rec/{recording_id}.wav"},
                       segment={"start": "start", "duration": "duration", "channel": "channel"}, meta=["speaker"],
                       progress=False)
    assert rep["samples"] == 8 and not rep.get("skipped")
    got = _samples(tmp_path / "ds")
    for key, members in got.items():
        i = int(key[-1])
        audio, sr = sf.read(io.BytesIO(members["flac"]), dtype="int16", always_2d=True)
        assert audio.shape == (SR // 2, 1), key
        first = i * SR
        assert np.array_equal(audio[:, 0], x[first:first + SR // 2, i % 2]), key  # the row's channel, bit for bit
    index = __import__("pandas").read_parquet(tmp_path / "ds" / "index.parquet")
    assert dict(zip(index.key, index.segment_channels)) == {f"{r}-{i}": str(i % 2) for r in ("call1", "call2")
                                                              for i in range(4)}


def test_a_list_of_channels_in_a_csv_keeps_them_in_order(tmp_path: Path) -> None:
    x = _calls(tmp_path, channels=3)
    (tmp_path / "m.csv").write_text('key,audio,start,duration,ch\na,rec/call1.wav,1.0,0.5,"[2, 0]"\n'
                                    'b,rec/call1.wav,2.0,0.5,1\n', encoding="utf-8")
    mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", segment="start=start,duration=duration,channel=ch",
                 progress=False)
    got = _samples(tmp_path / "ds")
    a, _ = sf.read(io.BytesIO(got["a"]["flac"]), dtype="int16", always_2d=True)
    b, _ = sf.read(io.BytesIO(got["b"]["flac"]), dtype="int16", always_2d=True)
    assert np.array_equal(a, x[SR:SR + SR // 2][:, [2, 0]])
    assert np.array_equal(b[:, 0], x[2 * SR:2 * SR + SR // 2, 1]) and b.shape[1] == 1


def test_a_channel_the_recording_lacks_is_refused_naming_the_row(tmp_path: Path) -> None:
    _calls(tmp_path)
    with pytest.raises(SourceError) as exc:
        mmdata.shard(_sups(tmp_path, channel=2), tmp_path / "ds", columns={"key": "id"},
                     paths={"audio": "rec/{recording_id}.wav"}, on_error="raise",
                     segment={"start": "start", "duration": "duration", "channel": "channel"}, progress=False)
    msg = str(exc.value)
    assert "sups.jsonl row 1" in msg and "channel 2" in msg and "2 channels" in msg, msg


def test_a_bad_channel_cell_skips_its_row_and_names_it(tmp_path: Path) -> None:
    _calls(tmp_path)
    (tmp_path / "m.csv").write_text("key,audio,start,duration,ch\na,rec/call1.wav,1.0,0.5,0\n"
                                    "b,rec/call1.wav,2.0,0.5,left\nc,rec/call1.wav,3.0,0.5,5\n", encoding="utf-8")
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", segment="start=start,duration=duration,channel=ch",
                       progress=False)
    assert rep["samples"] == 1
    reasons = json.dumps(rep["skipped"])
    assert "m.csv row 2" in reasons and "'left' is not a channel" in reasons
    assert "m.csv row 3" in reasons and "channel 5" in reasons


def test_an_unread_channel_column_of_multichannel_recordings_is_warned_of(tmp_path: Path) -> None:
    _calls(tmp_path)
    rep = mmdata.shard(_sups(tmp_path), tmp_path / "ds", columns={"key": "id"}, paths={"audio": "rec/{recording_id}.wav"},
                       segment={"start": "start", "duration": "duration"}, meta=["speaker"], progress=False)
    (w,) = [w for w in rep["warnings"] if "not read by --segment" in w]
    assert "'channel'" in w and "channel=channel" in w and "2 recordings" in w


def _cuts(root: Path, sources: list | None = None) -> Path:
    cuts = [{"id": f"{r}-{i}", "start": i * 1.0, "duration": 0.5, "channel": i % 2, "type": "MonoCut",
             "supervisions": [{"id": f"{r}-{i}", "recording_id": r, "start": 0.0, "duration": 0.5, "channel": i % 2,
                               "text": f"word {i}", "speaker": f"{r}-{'AB'[i % 2]}", "language": "en"}],
             "recording": {"id": r, "sources": sources or [{"type": "file", "channels": [0, 1],
                                                            "source": f"rec/{r}.wav"}],
                           "sampling_rate": SR, "num_samples": 4 * SR, "duration": 4.0, "channel_ids": [0, 1]}}
            for r in ("call1", "call2") for i in range(4)]
    p = root / "cuts.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write("".join(json.dumps(c) + "\n" for c in cuts))
    return p


def test_a_lhotse_cutset_shards_as_the_docs_say(tmp_path: Path) -> None:
    x = _calls(tmp_path)
    rep = mmdata.shard(_cuts(tmp_path), tmp_path / "ds", columns={"key": "id"}, meta=["speaker"],
                       segment="start=start,duration=duration,channel=channel", progress=False)
    assert rep["samples"] == 8 and not rep.get("skipped")
    got = _samples(tmp_path / "ds")
    assert got["call2-3"]["txt"] == b"word 3"
    assert json.loads(got["call2-3"]["json"]) == {"speaker": "call2-B"}
    audio, _ = sf.read(io.BytesIO(got["call2-3"]["flac"]), dtype="int16", always_2d=True)
    assert np.array_equal(audio[:, 0], x[3 * SR:3 * SR + SR // 2, 1]) and audio.shape[1] == 1


def test_a_cut_of_one_file_per_channel_is_an_error_naming_it(tmp_path: Path) -> None:
    _calls(tmp_path)
    two = [{"type": "file", "channels": [0], "source": "rec/call1.wav"},
           {"type": "file", "channels": [1], "source": "rec/call2.wav"}]
    with pytest.raises(SourceError, match=r"Lhotse cut 'call1-0'.*2 sources \(one file per channel\)"):
        mmdata.shard(_cuts(tmp_path, two), tmp_path / "ds", columns={"key": "id"},
                     segment="start=start,duration=duration", progress=False)


def test_rows_that_are_not_cuts_pass_through() -> None:
    rows = [{"id": "a", "recording": "x.wav", "start": 0, "duration": 1}]
    assert lhotse_cut_rows(rows, "m.jsonl") is rows


def test_lossy_segments_keep_their_channel_through_the_precut(tmp_path: Path) -> None:
    """An Ogg Vorbis recording's segments are decoded once before the shard tasks (the precut spill): two
    segments of one span on different channels are two cuts, each the full decode's channel."""
    t = np.arange(3 * SR) / SR
    x = np.stack([0.4 * np.sin(2 * np.pi * 300 * t), 0.4 * np.sin(2 * np.pi * 900 * t)], 1).astype(np.float32)
    sf.write(tmp_path / "v.ogg", x, SR, format="OGG", subtype="VORBIS")
    full, _ = sf.read(tmp_path / "v.ogg", dtype="float32", always_2d=True)
    (tmp_path / "m.csv").write_text("key,audio,start,duration,ch\na,v.ogg,1.0,0.5,0\nb,v.ogg,1.0,0.5,1\n"
                                    "c,v.ogg,2.0,0.5,1\n", encoding="utf-8")
    mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", segment="start=start,duration=duration,channel=ch",
                 on_error="raise", progress=False)
    got = _samples(tmp_path / "ds")
    for key, start, ch in (("a", 1.0, 0), ("b", 1.0, 1), ("c", 2.0, 1)):
        audio, _ = sf.read(io.BytesIO(got[key]["flac"]), dtype="float32", always_2d=True)
        first = int(start * SR)
        want = full[first:first + SR // 2, ch]
        assert audio.shape == (SR // 2, 1) and np.abs(audio[:, 0] - want).max() <= 1 / 32768 + 1e-6, key
