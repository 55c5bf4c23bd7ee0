"""QA42 (a speech / environmental-sound researcher cutting long recordings into segments): Ogg Vorbis segments cut
on a shared decoder had wrong first frames that depended on the other rows; overlapping segments of one recording
split apart by ``--group-by speaker`` (the same audio in train and test) went unwarned; a truncated recording's
skip message gave libsndfile's words only."""

from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

import mmdata
from mmdata.shards import index as idx

SEG = "start=start,duration=duration"


def _csv(path: Path, rows: list[tuple], header: tuple = ("audio", "start", "duration", "label")) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _members(ds: Path) -> dict[str, bytes]:
    out = {}
    for tar in sorted(ds.rglob("*.tar")):
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                if m.name.endswith(".flac"):
                    out[m.name[:-5]] = t.extractfile(m).read()  # type: ignore[union-attr]
    return out


def _vorbis(raw: Path, seconds: float = 12.0, sr: int = 22050) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t * (1 + 0.5 * np.sin(t))) + 0.05 * np.random.default_rng(3).standard_normal(
        t.size)
    sf.write(raw / "v.ogg", np.stack([x, -0.5 * x], 1), sr, format="OGG", subtype="VORBIS")
    return raw / "v.ogg"


def test_vorbis_segments_are_the_decoders_output_whatever_else_is_cut(tmp_path: Path) -> None:
    src = _vorbis(tmp_path / "raw")
    full, sr = sf.read(src, dtype="float32", always_2d=True)
    starts = [0.37 + 1.1 * i for i in range(9)] + [2.0, 5.55, 0.0]  # consecutive, overlapping, from the start
    rows = [("v.ogg", round(s, 3), 0.8, "ab"[i % 2]) for i, s in enumerate(starts)]
    many = _csv(tmp_path / "raw" / "many.csv", rows)
    mmdata.shard(many, tmp_path / "many", segment=SEG, on_error="raise", progress=False)
    mmdata.shard(many, tmp_path / "small", segment=SEG, on_error="raise", maxcount=2, progress=False)
    t = pq.read_table(tmp_path / "many" / idx.INDEX, columns=["key", "segment_frames"]).to_pydict()
    frames = dict(zip(t["key"], t["segment_frames"]))
    got = _members(tmp_path / "many")
    assert len(got) == len(rows)
    for key, data in got.items():
        first, stop = map(int, frames[key].split(":"))
        back, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        # before: the first 34-500 frames of every segment but the first differed, by up to 0.77
        np.testing.assert_allclose(back, full[first:stop], atol=1 / 32768 + 1e-7, err_msg=key)
    assert _members(tmp_path / "small") == got  # before: the bytes changed with --maxcount
    alone = _csv(tmp_path / "raw" / "one.csv", [rows[4]])
    mmdata.shard(alone, tmp_path / "one", segment=SEG, on_error="raise", progress=False)
    (key, data), = _members(tmp_path / "one").items()
    assert got[key] == data  # a segment's bytes do not depend on its neighbours


def _talk(raw: Path, sr: int = 8000, seconds: int = 24) -> Path:
    raw.mkdir(parents=True, exist_ok=True)
    x = (np.random.default_rng(0).standard_normal((sr * seconds,)) * 3000).astype(np.int16)
    sf.write(raw / "talk.wav", x, sr, subtype="PCM_16")
    return raw / "talk.wav"


def test_overlapping_segments_split_apart_are_warned_and_counted(tmp_path: Path) -> None:
    _talk(tmp_path / "raw")
    rows = [("talk.wav", 2.0 * i, 3.0, "ab"[i % 2], f"spk{i % 4}") for i in range(10)]  # each overlaps the next
    m = _csv(tmp_path / "raw" / "ovl.csv", rows, ("audio", "start", "duration", "label", "speaker"))
    rep = mmdata.shard(m, tmp_path / "ds", segment=SEG, group_by="speaker", split="train=0.5,val=0.25,test=0.25",
                       progress=False)
    t = pq.read_table(tmp_path / "ds" / idx.INDEX, columns=["segment_start", "split"]).to_pydict()
    split = {float(s): p for s, p in zip(t["segment_start"], t["split"])}
    crossing = sum(split[2.0 * i] != split[2.0 * i + 2] for i in range(9))
    assert crossing, split  # the split assignment is not changed: speakers land in several splits
    card = idx.load_card(tmp_path / "ds")
    assert card["segment_overlaps_across_splits"] == crossing
    said = [w for w in rep["warnings"] if "overlapping segments of one recording" in w]
    assert len(said) == 1 and f"{crossing} pair" in said[0], rep["warnings"]
    i = next(i for i in range(9) if split[2.0 * i] != split[2.0 * i + 2])
    assert (f"'talk.wav' {2 * i:g}-{2 * i + 3:g} s ({split[2.0 * i]}) overlaps {2 * i + 2:g}-{2 * i + 5:g} s "
            f"({split[2.0 * i + 2]})") in said[0]
    assert "group the segments by recording" in said[0] and "trim the overlaps" in said[0]


def test_segments_grouped_by_recording_are_not_warned(tmp_path: Path) -> None:
    _talk(tmp_path / "raw")
    m = _csv(tmp_path / "raw" / "ovl.csv", [("talk.wav", 2.0 * i, 3.0, "ab"[i % 2]) for i in range(6)])
    rep = mmdata.shard(m, tmp_path / "ds", segment=SEG, split="train=0.5,test=0.5", progress=False)
    assert not [w for w in rep["warnings"] if "overlapping segments" in w]
    assert "segment_overlaps_across_splits" not in idx.load_card(tmp_path / "ds")


def test_overlap_count_sweeps_each_recording() -> None:
    from mmdata.shards.sources import Record
    from mmdata.shards.writer import segment_overlaps_across_splits

    def seg(key: str, rec: str, first: int, stop: int, split: str) -> Record:
        return Record(key, key, split=split, extra={"segment_source": rec, "segment_start": str(first / 10),
                                                    "segment_duration": str((stop - first) / 10),
                                                    "segment_frames": f"{first}:{stop}"})

    recs = [seg("a", "r1", 0, 100, "train"), seg("b", "r1", 10, 20, "test"), seg("c", "r1", 15, 30, "val"),
            seg("d", "r1", 100, 110, "test"),  # touches a's end: no overlap
            seg("e", "r2", 0, 10, "train"), seg("f", "r3", 5, 10, "test")]  # other recordings
    n, shown = segment_overlaps_across_splits(recs)
    assert n == 3 and len(shown) == 2  # a-b, a-c, b-c; one example per segment
    assert shown[0] == "'r1' 0-10 s (train) overlaps 1-2 s (test)"


def test_a_truncated_recording_says_where_it_ends(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    sr = 8000
    x = (np.random.default_rng(1).standard_normal(sr * 60) * 3000).astype(np.int16)
    sf.write(raw / "trunc.flac", x, sr, subtype="PCM_16")
    data = (raw / "trunc.flac").read_bytes()
    (raw / "trunc.flac").write_bytes(data[:len(data) // 2])  # the header still says 60 s
    m = _csv(raw / "bad.csv", [("trunc.flac", 1.0, 1.0, "a"), ("trunc.flac", 50.0, 1.0, "b")])
    rep = mmdata.shard(m, tmp_path / "ds", segment=SEG, progress=False)
    card = idx.load_card(tmp_path / "ds")
    reasons = [s["reason"] for s in card["skipped"] if "audio: cannot cut" in s["reason"]]
    assert len(reasons) == 1 and "the file is truncated or corrupt after ~" in reasons[0], card["skipped"]
    after = int(reasons[0].split("after ~")[1].split(" s")[0])
    assert 20 <= after <= 40 and "its header says 60 s" in reasons[0] and "50 s to 51 s" in reasons[0], reasons
    assert rep["samples"] == 1
    # review of 483ce55: the row and the sample were named nowhere in it
    (bad,) = [s for s in card["skipped"] if s["reason"].startswith("bad.csv row 2, sample 'trunc_000050.000': audio:")]
    assert not [c for c in pq.read_schema(tmp_path / "ds" / idx.INDEX).names if "row" in c]  # no index column


def test_a_truncated_mp3_says_where_its_decoding_ends(tmp_path: Path) -> None:
    """Review of 483ce55: a lossy file is decoded from its start, and a truncated MP3 (its Xing header still says
    the whole length) said it held the segment's start in frames and "changed since the manifest was read"."""
    raw = tmp_path / "raw"
    raw.mkdir()
    x = 0.1 * np.random.default_rng(1).standard_normal(16000 * 40)
    sf.write(raw / "t.mp3", x, 16000, format="MP3", subtype="MPEG_LAYER_III")
    data = (raw / "t.mp3").read_bytes()
    (raw / "t.mp3").write_bytes(data[:len(data) // 2])
    m = _csv(raw / "bad.csv", [("t.mp3", 1.0, 1.0, "a"), ("t.mp3", 2.0, 1.0, "a"), ("t.mp3", 35.0, 1.0, "b")])
    rep = mmdata.shard(m, tmp_path / "ds", segment=SEG, progress=False)
    reasons = [s["reason"] for s in idx.load_card(tmp_path / "ds")["skipped"] if "audio:" in s["reason"]]
    assert len(reasons) == 1 and reasons[0].startswith("bad.csv row 3, sample 't_000035.000': audio: cannot cut"), reasons
    after = int(reasons[0].split("after ~")[1].split(" s")[0])
    assert 15 <= after <= 25 and "its header says 40 s" in reasons[0] and "35 s to 36 s" in reasons[0], reasons
    assert "changed since" not in reasons[0]
    assert rep["samples"] == 2


def test_lossy_segments_in_shuffled_key_order_decode_the_recording_once(tmp_path: Path, monkeypatch) -> None:
    """Review of 483ce55: a manifest's own key column (not in start order) or a small --maxcount restarted the
    decoder at frame 0 for each segment that starts before the previous one, and for each shard task: quadratic in
    the recording's length. Counted here as the decoder's rewinds to frame 0, not timed."""
    src = _vorbis(tmp_path / "raw", seconds=8.0)
    full, _ = sf.read(src, dtype="float32", always_2d=True)
    order = np.random.default_rng(7).permutation(14)
    rows = [(f"utt_{order[i]:02d}", "v.ogg", round(0.5 * i, 3), 0.7, "ab"[i % 2]) for i in range(14)]
    m = _csv(tmp_path / "raw" / "keyed.csv", rows, ("key", "audio", "start", "duration", "label"))
    rewinds = []
    seek = sf.SoundFile.seek

    def counted(self, frames, whence=0):  # type: ignore[no-untyped-def]
        if frames == 0 and whence == 0:
            rewinds.append(self.name)
        return seek(self, frames, whence)

    monkeypatch.setattr(sf.SoundFile, "seek", counted)
    mmdata.shard(m, tmp_path / "ds", segment=SEG, on_error="raise", maxcount=2, progress=False)
    assert len(rewinds) == 1, rewinds  # before: 8 (a shard task's first segment, a key out of start order)
    monkeypatch.setattr(sf.SoundFile, "seek", seek)
    got = _members(tmp_path / "ds")
    t = pq.read_table(tmp_path / "ds" / idx.INDEX, columns=["key", "segment_frames"]).to_pydict()
    assert sorted(got) == sorted(t["key"]) and len(got) == 14
    for key, frames in zip(t["key"], t["segment_frames"]):
        first, stop = map(int, frames.split(":"))
        back, _ = sf.read(io.BytesIO(got[key]), dtype="float32", always_2d=True)
        np.testing.assert_allclose(back, full[first:stop], atol=1 / 32768 + 1e-7, err_msg=key)
    mmdata.shard(m, tmp_path / "one", segment=SEG, on_error="raise", progress=False)
    assert _members(tmp_path / "one") == got  # the same bytes whatever the shards
    mmdata.shard(m, tmp_path / "threads", segment=SEG, on_error="raise", maxcount=3, workers=3, progress=False)
    assert _members(tmp_path / "threads") == got
