"""``--segment start=COL,duration=COL`` (``segment=``): a manifest's rows as segments of longer recordings
(Lhotse supervisions, Kaldi ``segments``). Real long WAV / FLAC files made with soundfile (16-bit stereo 8 kHz,
24-bit mono 44.1 kHz; chirps, so every frame's value tells where it was cut), CSV and JSONL manifests, through
the library and the CLI; each sample holds exactly its frames, bad rows are named, a recording's segments
land in one split, and a rerun gives the same bytes."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.errors import SourceError
from mmdata.shards import index as idx
from mmdata.shards.sources import segment_spec

SR_A, SR_B = 8000, 44100
SECONDS = 6


def _chirp(n: int, sr: int, f0: float, f1: float, phase: float = 0.0) -> np.ndarray:
    """A linear chirp: its phase grows faster each frame, so no two stretches of it are alike."""
    t = np.arange(n) / sr
    return np.sin(phase + 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * n / sr)))


def _recordings(folder: Path) -> dict[str, tuple[np.ndarray, int]]:
    """``talk.wav`` (16-bit stereo 8 kHz) and ``music.flac`` (24-bit mono 44.1 kHz): their frames as written,
    as ints (the 24-bit ones scaled to 32 bits, as soundfile reads them back as int32)."""
    folder.mkdir(parents=True, exist_ok=True)
    n_a, n_b = SR_A * SECONDS, SR_B * SECONDS
    a = np.stack([_chirp(n_a, SR_A, 50, 3000), _chirp(n_a, SR_A, 70, 2500, 1.0)], axis=1)
    a = np.round(a * 30000).astype(np.int16)
    sf.write(folder / "talk.wav", a, SR_A, subtype="PCM_16")
    b = np.round(_chirp(n_b, SR_B, 30, 15000) * 8_000_000).astype(np.int32) << 8  # 24-bit values in int32
    sf.write(folder / "music.flac", b, SR_B, subtype="PCM_24")
    return {"talk.wav": (a, SR_A), "music.flac": (b[:, None], SR_B)}


#: (audio, start, duration, text) per row
ROWS = [("talk.wav", 0.5, 1.25, "hello there"), ("talk.wav", 2.0, 1.0, "second"), ("music.flac", 1.0, 0.5, "la"),
        ("talk.wav", 5.5, 0.5, "the end"), ("music.flac", 3.3333, 2.0, "long"), ("talk.wav", 3.0001, 0.0003, "tiny")]


def _csv(folder: Path, rows: list[tuple] = ROWS, header: str = "audio,begin,dur,text") -> Path:
    lines = [header, *(",".join(str(c) for c in r) for r in rows)]
    (folder / "segments.csv").write_text("\n".join(lines) + "\n")
    return folder / "segments.csv"


def _jsonl(folder: Path, rows: list[dict]) -> Path:
    (folder / "segments.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder / "segments.jsonl"


def _cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from mmdata.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    got = capsys.readouterr()
    return int(exc.value.code or 0), got.out + got.err


def _expected(src: dict[str, tuple[np.ndarray, int]], audio: str, start: float, dur: float) -> np.ndarray:
    frames, sr = src[audio]
    return frames[round(start * sr):min(round((start + dur) * sr), len(frames))]


def _read_back(ds: Path) -> dict[str, tuple[bytes, str]]:
    """source_key -> (the audio member's bytes, its extension), through mmdata.open_dataset (every split)."""
    rows = {r["key"]: r for r in idx.load_index(ds).to_pylist()}
    got = {}
    for split in sorted({r["split"] for r in rows.values()}):
        for s in mmdata.open_dataset(ds, split=split, decode=False):
            ext = next(e for e in s.keys() if e in ("flac", "wav"))
            got[rows[s.key]["source_key"]] = (s[ext], ext)
    return got


def _shard_bytes(ds: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(ds.glob("*.tar"))}


def test_spec_parsing() -> None:
    assert segment_spec("start=b,duration=d", "m") == {"start": "b", "duration": "d"}
    assert segment_spec({"end": "e", "start": "b"}, "m") == {"start": "b", "end": "e"}
    assert segment_spec(None, "m") is None
    for bad, said in [("start=b", "neither duration= nor end="), ("start=b,duration=d,end=e", "both"),
                      ("duration=d", "no start="), ("start=b,length=d", "unknown key 'length'"),
                      ("start=,duration=d", "start= names no column"), ("start", "expected start=COLUMN")]:
        with pytest.raises(SourceError, match=said):
            segment_spec(bad, "manifest m.csv")


def test_csv_segments_exact_frames_and_index(tmp_path: Path) -> None:
    src = _recordings(tmp_path / "raw")
    rep = mmdata.shard(_csv(tmp_path / "raw"), tmp_path / "ds", segment="start=begin,duration=dur", progress=False)
    assert rep["samples"] == len(ROWS) and not rep["skipped"]
    rows = {r["source_key"]: r for r in idx.load_index(tmp_path / "ds").to_pylist()}
    # a row without a key: its recording's key and start (3 decimals); the shard key is made safe
    assert sorted(rows) == sorted(f"{a.rsplit('.', 1)[0]}_{s:010.3f}" for a, s, _, _ in ROWS)
    got = _read_back(tmp_path / "ds")
    for audio, start, dur, text in ROWS:
        sk = f"{audio.rsplit('.', 1)[0]}_{start:010.3f}"
        data, ext = got[sk]
        assert ext == "flac"  # 16 and 24-bit PCM: FLAC at the source's depth
        info = sf.info(io.BytesIO(data))
        frames, sr = src[audio]
        assert (info.samplerate, info.channels) == (sr, frames.shape[1])
        assert info.subtype == ("PCM_16" if audio == "talk.wav" else "PCM_24")
        back, _ = sf.read(io.BytesIO(data), dtype="int16" if audio == "talk.wav" else "int32", always_2d=True)
        np.testing.assert_array_equal(back, _expected(src, audio, start, dur))
        r = rows[sk]
        assert (r["segment_source"], float(r["segment_start"]), float(r["segment_duration"])) == (audio, start, dur)
        first, stop = map(int, r["segment_frames"].split(":"))
        assert (first, stop) == (round(start * sr), round((start + dur) * sr))
        assert r["audio_seconds"] == pytest.approx((stop - first) / sr, abs=1e-6)
    # the decoded read-back: float samples of the same frames, channels first
    ds = mmdata.open_dataset(tmp_path / "ds", split="train")
    by_key = {r["key"]: r for r in rows.values()}
    for s in ds:
        r = by_key[s.key]
        frames, sr = src[r["segment_source"]]
        exp = _expected(src, r["segment_source"], float(r["segment_start"]), float(r["segment_duration"]))
        scale = 32768.0 if r["segment_source"] == "talk.wav" else 2.0 ** 31
        assert tuple(s["audio"].shape) == (frames.shape[1], len(exp))
        np.testing.assert_allclose(s["audio"].numpy(), exp.T / scale, atol=1e-6)
        assert s["text"] == dict((f"{a.rsplit('.', 1)[0]}_{st:010.3f}", t) for a, st, _, t in ROWS)[r["source_key"]]


def test_jsonl_end_column_keys_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _recordings(tmp_path / "raw")
    rows = [{"id": "utt1", "wav": "talk.wav", "from": 0.25, "to": 1.5, "text": "a"},
            {"id": "utt2", "wav": "talk.wav", "from": "1.5", "to": "2.75", "text": "b"},
            {"id": "utt3", "wav": "music.flac", "from": 0, "to": 6.0, "text": "c"}]  # the whole file
    manifest = _jsonl(tmp_path / "raw", rows)
    code, out = _cli("shard", str(manifest), str(tmp_path / "ds"), "--column", "key=id", "--column", "audio=wav",
                     "--segment", "start=from,end=to", capsys=capsys)
    assert code == 0, out
    got = _read_back(tmp_path / "ds")
    assert sorted(got) == ["utt1", "utt2", "utt3"]  # the key column wins
    for r in rows:
        data, _ = got[r["id"]]
        start, end = float(r["from"]), float(r["to"])
        back, _ = sf.read(io.BytesIO(data), dtype="int16" if r["wav"] == "talk.wav" else "int32", always_2d=True)
        np.testing.assert_array_equal(back, _expected(src, r["wav"], start, end - start))
    card = idx.load_card(tmp_path / "ds")
    assert card["source_options"]["segment"] == {"start": "from", "end": "to"}
    assert "--segment start=from,end=to" in card["command"]
    index = {r["key"]: r for r in idx.load_index(tmp_path / "ds").to_pylist()}
    assert index["utt2"]["segment_duration"] == "1.25" and index["utt3"]["segment_frames"] == f"0:{SR_B * SECONDS}"


def test_float_and_32bit_sources_stay_wav(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    x = _chirp(SR_A * 2, SR_A, 100, 2000)
    sf.write(raw / "f.wav", np.stack([x, -x], 1).astype(np.float32), SR_A, subtype="FLOAT")
    sf.write(raw / "i.wav", np.round(x * 2_000_000_000).astype(np.int32), SR_A, subtype="PCM_32")
    _csv(raw, [("f.wav", 0.1, 0.5, "x"), ("i.wav", 0.2, 0.5, "y")])
    for out in ("ds", "ds2"):
        mmdata.shard(raw / "segments.csv", tmp_path / out, segment="start=begin,duration=dur", progress=False)
    assert _shard_bytes(tmp_path / "ds") == _shard_bytes(tmp_path / "ds2")  # no time of writing in the WAVs
    got = _read_back(tmp_path / "ds")
    data, ext = got["f_000000.100"]
    assert ext == "wav" and sf.info(io.BytesIO(data)).subtype == "FLOAT"
    back, _ = sf.read(io.BytesIO(data), dtype="float32")
    np.testing.assert_array_equal(back, np.stack([x, -x], 1).astype(np.float32)[800:4800])
    data, ext = got["i_000000.200"]
    assert ext == "wav" and sf.info(io.BytesIO(data)).subtype == "PCM_32"
    back, _ = sf.read(io.BytesIO(data), dtype="int32")
    np.testing.assert_array_equal(back, np.round(x * 2_000_000_000).astype(np.int32)[1600:5600])


BAD_ROWS = [
    (("talk.wav", -0.5, 1.0, "neg"), "start column 'begin': -0.5 s is negative"),
    (("talk.wav", 1.0, 0, "zero"), "duration column 'dur': 0 s (a duration > 0 expected)"),
    (("talk.wav", 1.0, -2, "negdur"), "duration column 'dur': -2 s"),
    (("talk.wav", "abc", 1.0, "nan"), "start column 'begin': 'abc' is not a number of seconds"),
    (("talk.wav", "", 1.0, "blank"), "start column 'begin' is blank"),
    (("talk.wav", 1.0, "", "blankdur"), "duration column 'dur' is blank"),
    (("talk.wav", 5.5, 1.0, "past"), "ends 0.5 s (4000 frames) past the end of 'talk.wav'"),
    (("talk.wav", 7.0, 1.0, "after"), "starts at 7 s, at or past the end of 'talk.wav'"),
    (("talk.wav", 1.0, "inf", "inf"), "'inf' is not a finite number of seconds"),
    (("talk.wav", 1.0, 0.00001, "short"), "shorter than one frame at 8000 Hz"),
]


@pytest.mark.parametrize("row, said", BAD_ROWS, ids=[r[3] for r, _ in BAD_ROWS])
def test_bad_row_raises_naming_manifest_and_row(tmp_path: Path, row: tuple, said: str) -> None:
    _recordings(tmp_path / "raw")
    manifest = _csv(tmp_path / "raw", [ROWS[0], row])
    with pytest.raises(SourceError) as exc:
        mmdata.shard(manifest, tmp_path / "ds", segment="start=begin,duration=dur", on_error="raise", progress=False)
    assert "segments.csv row 2" in str(exc.value) and said in str(exc.value)


def test_bad_rows_skipped_counted_and_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _recordings(tmp_path / "raw")
    bad = [r for r, _ in BAD_ROWS]
    manifest = _csv(tmp_path / "raw", [*ROWS[:2], *bad])
    rep = mmdata.shard(manifest, tmp_path / "ds", segment="start=begin,duration=dur", progress=False)
    assert rep["samples"] == 2
    assert rep["skipped_counts"]["samples"] == len(bad)
    reasons = [s["reason"] for s in rep["skipped"]]
    for n, (_, said) in enumerate(BAD_ROWS, start=3):
        assert any(r.startswith(f"segments.csv row {n}: ") and said in r for r in reasons), (n, said, reasons)
    card = idx.load_card(tmp_path / "ds")
    assert len(card["skipped"]) == len(bad)
    # the CLI says so too
    code, out = _cli("shard", str(manifest), str(tmp_path / "ds2"), "--segment", "start=begin,duration=dur",
                     capsys=capsys)
    assert code == 0 and f"left out: {len(bad)} samples" in " ".join(out.split())


def test_one_frame_of_rounding_is_tolerated(tmp_path: Path) -> None:
    src = _recordings(tmp_path / "raw")
    # ends 1/16000 s past the end: half a frame, rounds to one frame over; cut at the end
    manifest = _csv(tmp_path / "raw", [("talk.wav", 5.0, 1.0 + 1 / 16000 + 1e-9, "x")])
    rep = mmdata.shard(manifest, tmp_path / "ds", segment="start=begin,duration=dur", on_error="raise",
                       progress=False)
    assert rep["samples"] == 1
    data, _ = next(iter(_read_back(tmp_path / "ds").values()))
    back, _ = sf.read(io.BytesIO(data), dtype="int16", always_2d=True)
    np.testing.assert_array_equal(back, src["talk.wav"][0][40000:])


def test_key_collision_names_both_rows(tmp_path: Path) -> None:
    _recordings(tmp_path / "raw")
    # one start to the millisecond, two ends: the keys name the end too (QA42 segments #2), the others stay
    manifest = _csv(tmp_path / "raw", [ROWS[0], ("talk.wav", 2.0, 1.0, "a"), ("talk.wav", 2.0004, 0.5, "b")])
    rep = mmdata.shard(manifest, tmp_path / "ds", segment="start=begin,duration=dur", progress=False)
    assert sorted(r["source_key"] for r in idx.load_index(tmp_path / "ds").to_pylist()) == [
        "talk_000000.500", "talk_000002.000-000002.500", "talk_000002.000-000003.000"]
    assert any("rows 2, 3: 'talk_000002.000'" in w for w in rep["warnings"]), rep["warnings"]
    # one segment twice: still an error, naming both rows and the remedy
    manifest = _csv(tmp_path / "raw", [ROWS[0], ("talk.wav", 2.0, 1.0, "a"), ("talk.wav", 2.0004, 0.9996, "b")])
    with pytest.raises(SourceError, match=r"rows 2 and 3 are both sample 'talk_000002.000'.*'key' column"):
        mmdata.shard(manifest, tmp_path / "ds2", segment="start=begin,duration=dur", progress=False)


def test_missing_column_and_wrong_sources(tmp_path: Path) -> None:
    _recordings(tmp_path / "raw")
    manifest = _csv(tmp_path / "raw")
    with pytest.raises(SourceError, match=r"--segment start=offset: no column 'offset'"):
        mmdata.shard(manifest, tmp_path / "ds", segment="start=offset,duration=dur", progress=False)
    with pytest.raises(SourceError, match=r"this source is a folder"):
        mmdata.shard(tmp_path / "raw", tmp_path / "ds2", segment="start=begin,duration=dur", progress=False)


def test_segments_of_one_recording_land_in_one_split(tmp_path: Path) -> None:
    _recordings(tmp_path / "raw")
    for i in range(4):  # more recordings, so both splits get some
        x = np.round(_chirp(SR_A * 3, SR_A, 60 + i, 900) * 9000).astype(np.int16)
        sf.write(tmp_path / "raw" / f"r{i}.wav", x, SR_A, subtype="PCM_16")
    rows = [(f"r{i}.wav", s, 0.5, f"t{i}{s}") for i in range(4) for s in (0.0, 1.0, 2.0)]
    manifest = _csv(tmp_path / "raw", [*ROWS, *rows])
    rep = mmdata.shard(manifest, tmp_path / "ds", segment="start=begin,duration=dur", split="train=0.5,val=0.5",
                       seed=3, progress=False)
    assert set(rep["splits"]) == {"train", "val"}
    splits: dict[str, set[str]] = {}
    for r in idx.load_index(tmp_path / "ds").to_pylist():
        splits.setdefault(r["segment_source"], set()).add(r["split"])
    assert all(len(s) == 1 for s in splits.values()), splits
    assert not any("name a file another sample names" in w for w in rep["warnings"])
    # a group column wins: the speakers' segments go together, one recording may be in two splits
    speakers = [(a, s, d, t, f"spk{k % 2}") for k, (a, s, d, t) in enumerate([*ROWS, *rows])]
    manifest = _csv(tmp_path / "raw", speakers, header="audio,begin,dur,text,speaker")
    mmdata.shard(manifest, tmp_path / "ds2", segment="start=begin,duration=dur", split="train=0.5,val=0.5",
                 group_by="speaker", progress=False)
    by_speaker: dict[str, set[str]] = {}
    by_file: dict[str, set[str]] = {}
    speaker_of = {f"{a.rsplit('.', 1)[0]}_{s:010.3f}": spk for a, s, _, _, spk in speakers}
    for r in idx.load_index(tmp_path / "ds2").to_pylist():
        by_speaker.setdefault(speaker_of[r["source_key"]], set()).add(r["split"])
        by_file.setdefault(r["segment_source"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_speaker.values()) and len(set().union(*by_speaker.values())) == 2
    assert any(len(s) == 2 for s in by_file.values())


def test_rerun_gives_identical_bytes(tmp_path: Path) -> None:
    _recordings(tmp_path / "raw")
    manifest = _csv(tmp_path / "raw")
    for out in ("a", "b"):
        mmdata.shard(manifest, tmp_path / out, segment={"start": "begin", "duration": "dur"}, maxcount=2,
                     workers=2, progress=False)
    assert _shard_bytes(tmp_path / "a") == _shard_bytes(tmp_path / "b") and len(_shard_bytes(tmp_path / "a")) == 3
    assert (tmp_path / "a" / "index.parquet").read_bytes() == (tmp_path / "b" / "index.parquet").read_bytes()
    # a rerun into the same folder is up to date; a changed recording is cut again
    rep = mmdata.shard(manifest, tmp_path / "a", segment={"start": "begin", "duration": "dur"}, maxcount=2,
                       workers=2, progress=False)
    assert rep.get("up_to_date")


def test_maxsize_plans_by_the_segment_not_the_whole_file(tmp_path: Path) -> None:
    _recordings(tmp_path / "raw")
    manifest = _csv(tmp_path / "raw", ROWS[:2])  # 1.25 s and 1 s of a 6 s file of 192 kB
    rep = mmdata.shard(manifest, tmp_path / "ds", segment="start=begin,duration=dur", maxsize=150_000,
                       progress=False)
    assert rep["shards"] == 1  # the whole file per row would be two shards


def test_lhotse_supervisions_with_path_template(tmp_path: Path) -> None:
    """A Lhotse-like supervisions JSONL (id, recording_id, start, duration): the recording's file made by
    ``--path``, as docs/interop.md shows."""
    src = _recordings(tmp_path / "raw" / "wavs")
    sups = [{"id": "talk-0001", "recording_id": "talk", "start": 0.125, "duration": 0.5, "text": "hi"},
            {"id": "talk-0002", "recording_id": "talk", "start": 4.0, "duration": 1.5, "text": "bye"}]
    manifest = _jsonl(tmp_path / "raw", sups)
    rep = mmdata.shard(manifest, tmp_path / "ds", columns={"key": "id"}, paths={"audio": "wavs/{recording_id}.wav"},
                       segment="start=start,duration=duration", on_error="raise", progress=False)
    assert rep["samples"] == 2
    got = _read_back(tmp_path / "ds")
    for s in sups:
        back, _ = sf.read(io.BytesIO(got[s["id"]][0]), dtype="int16", always_2d=True)
        np.testing.assert_array_equal(back, _expected(src, "talk.wav", s["start"], s["duration"]))
    assert {r["segment_source"] for r in idx.load_index(tmp_path / "ds").to_pylist()} == {"wavs/talk.wav"}


def test_lossy_source_is_decoded_to_16_bit_flac(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    x = 0.5 * _chirp(SR_A * 3, SR_A, 100, 1500)
    sf.write(raw / "v.ogg", x.astype(np.float32), SR_A, format="OGG", subtype="VORBIS")
    decoded, _ = sf.read(raw / "v.ogg", dtype="float32")
    _csv(raw, [("v.ogg", 1.0, 0.5, "x")])
    for out in ("ds", "ds2"):
        mmdata.shard(raw / "segments.csv", tmp_path / out, segment="start=begin,duration=dur", on_error="raise",
                     progress=False)
    assert _shard_bytes(tmp_path / "ds") == _shard_bytes(tmp_path / "ds2")
    data, ext = _read_back(tmp_path / "ds")["v_000001.000"]
    assert ext == "flac" and sf.info(io.BytesIO(data)).subtype == "PCM_16"
    back, _ = sf.read(io.BytesIO(data), dtype="float32")
    assert len(back) == 4000
    np.testing.assert_allclose(back, decoded[8000:12000], atol=1 / 32768)


def test_changed_recording_is_cut_again(tmp_path: Path) -> None:
    src = _recordings(tmp_path / "raw")
    manifest = _csv(tmp_path / "raw", ROWS[:2])
    seg = "start=begin,duration=dur"
    mmdata.shard(manifest, tmp_path / "ds", segment=seg, progress=False)
    louder = (src["talk.wav"][0] // 2).astype(np.int16)
    sf.write(tmp_path / "raw" / "talk.wav", louder, SR_A, subtype="PCM_16")
    rep = mmdata.shard(manifest, tmp_path / "ds", segment=seg, progress=False)
    assert not rep.get("up_to_date")
    back, _ = sf.read(io.BytesIO(_read_back(tmp_path / "ds")["talk_000002.000"][0]), dtype="int16", always_2d=True)
    np.testing.assert_array_equal(back, louder[16000:24000])


def test_labels_per_segment_are_no_conflict(tmp_path: Path) -> None:
    """Rows of one recording with their own labels are distinct inputs (no 'contradictory labels' warning);
    two rows naming the same segment with different labels still are one input with two labels."""
    _recordings(tmp_path / "raw")
    rows = [("talk.wav", 0.0, 1.0, "speech"), ("talk.wav", 1.0, 1.0, "music"), ("talk.wav", 2.0, 1.0, "noise")]
    manifest = _csv(tmp_path / "raw", rows, header="audio,begin,dur,label")
    rep = mmdata.shard(manifest, tmp_path / "ds", segment="start=begin,duration=dur", progress=False)
    assert rep["samples"] == 3 and not any("contradictory" in w for w in rep["warnings"]), rep["warnings"]
    rows = [("k1", "talk.wav", 0.0, 1.0, "speech"), ("k2", "talk.wav", 0.0, 1.0, "music")]
    manifest = _csv(tmp_path / "raw", rows, header="key,audio,begin,dur,label")
    rep = mmdata.shard(manifest, tmp_path / "ds2", segment="start=begin,duration=dur", progress=False)
    assert any("contradictory" in w for w in rep["warnings"])


def test_columns_layout_and_decode_check(tmp_path: Path) -> None:
    src = _recordings(tmp_path / "raw")
    manifest = _csv(tmp_path / "raw", ROWS[:3])
    rep = mmdata.shard(manifest, tmp_path / "ds", segment="start=begin,duration=dur", layout="columns",
                       check="decode", on_error="raise", progress=False)
    assert rep["samples"] == 3
    got = {s.key: s for s in mmdata.open_dataset(tmp_path / "ds", split="train")}
    rows = {r["key"]: r for r in idx.load_index(tmp_path / "ds").to_pylist()}
    for key, s in got.items():
        r = rows[key]
        exp = _expected(src, r["segment_source"], float(r["segment_start"]), float(r["segment_duration"]))
        assert tuple(s["audio"].shape) == (exp.shape[1], exp.shape[0]) and s["text"]
