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
    reasons = [s["reason"] for s in card["skipped"] if s["reason"].startswith("audio:")]
    assert len(reasons) == 1 and "the file is truncated or corrupt after ~" in reasons[0], card["skipped"]
    after = int(reasons[0].split("after ~")[1].split(" s")[0])
    assert 20 <= after <= 40 and "its header says 60 s" in reasons[0] and "50 s to 51 s" in reasons[0], reasons
    assert rep["samples"] == 1
