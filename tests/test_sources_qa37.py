"""QA37 sources fixes, on real files (JPEG, NumPy, WAV, CSV / TSV / JSON manifests).

Sign #4: ``<clip>.frame0.jpg`` beside ``<clip>.pose.npy`` / ``<clip>.txt`` were samples of their own split apart
from their clip; now grouped with it (one split per clip) and said so. Podcast #2: a truncated WAV under
``--segment`` is said truncated, every segment of it left out. Podcast #1: a per-episode JSON transcript is
recognised and the jq line that flattens it given. Podcast #7: segment reasons group by cause
(:func:`reason_group`). Podcast #8 / vendor #7: repeated keys of a key column are counted, exact copies and
NFC / NFD twins said as such. Geo #14: the skip note of a second image says what was left out and how to keep it.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.errors import SourceError
from mmdata.shards.sources import discover
from mmdata.shards.writer import skip_reasons


def _shard(src: Path, out: Path, **kw) -> tuple[dict, list[str]]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        rep = mmdata.shard(src, out, progress=False, **kw)
    return rep, [str(w.message) for w in got]


def _sign_clips(root: Path, n: int = 8) -> None:
    rng = np.random.default_rng(5)
    for lab in ("A", "B"):
        (root / lab).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            k = root / lab / f"{lab}{i}"
            np.save(f"{k}.pose.npy", rng.random((20 + i, 75, 3)).astype(np.float32))
            for f in range(2 + i % 2):
                Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(f"{k}.frame{f}.jpg")
            Path(f"{k}.txt").write_text("HELLO\n")


def test_named_frames_stay_in_their_clips_split(tmp_path: Path) -> None:
    _sign_clips(tmp_path / "raw")
    rep, said = _shard(tmp_path / "raw", tmp_path / "out", split="train=0.5,val=0.25,test=0.25", seed=0, workers=1)
    t = pq.read_table(tmp_path / "out" / "index.parquet").to_pandas()
    t["clip"] = t["source_key"].str.split(".").str[0]
    spans = t.groupby("clip")["split"].nunique()
    assert len(spans) == 16 and (spans == 1).all(), spans
    assert set(t["split"]) == {"train", "val", "test"}
    frames = [w for w in said if "frames of a clip" in w]
    assert len(frames) == 1 and "'A/A0.frame<number>'" in frames[0] and "kept in one split" in frames[0], said
    assert "nor the clip's sample 'A/A0'" in frames[0]
    assert not any("named field of another sample" in w for w in said), said


def test_named_field_beside_an_image_is_still_its_own_sample(tmp_path: Path) -> None:
    # a0.view1.png beside a0.png (an image sample): not a clip's frame; warned of as before, kept in a0's split
    # (grouped by stem, QA40 multiview #1)
    for i in range(6):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(tmp_path / f"a{i}.png")
        Image.fromarray(np.full((8, 8, 3), 9 + i, np.uint8)).save(tmp_path / f"a{i}.view1.png")
    found = discover(tmp_path)
    assert all(r.group == r.source_key.split(".")[0] for r in found.records)
    assert any("named field of another sample" in w for w in found.warnings), found.warnings
    assert not any("frames of a clip" in w for w in found.warnings), found.warnings


def _truncated_episode(root: Path) -> Path:
    (root / "f").mkdir(parents=True)
    wav = root / "f" / "ep.wav"
    sf.write(wav, (0.3 * np.sin(np.arange(8000 * 60) / 5)).astype(np.float32), 8000, subtype="PCM_16")
    os.truncate(wav, 480044)  # a 60 s episode cut to 30 s (an interrupted download)
    m = root / "m.csv"
    m.write_text("audio,start,end,text\nf/ep.wav,0,10,uno\nf/ep.wav,10,20,dos\nf/ep.wav,28,35,tres\n"
                 "f/ep.wav,40,50,cuatro\n")
    sf.write(root / "whole.wav", np.zeros(8000 * 20, np.float32), 8000, subtype="PCM_16")
    with open(m, "a") as f:
        f.write("whole.wav,0,5,bien\n")
    return m


def test_truncated_wav_segments_said_truncated_and_all_left_out(tmp_path: Path) -> None:
    m = _truncated_episode(tmp_path)
    rep = mmdata.shard(m, tmp_path / "out", segment="start=start,end=end", progress=False)
    assert rep["samples"] == 1
    reasons = [s["reason"] for s in rep["skipped"]]
    assert len(reasons) == 4, reasons
    assert all("truncated WAV: the data chunk declares 960000 bytes, the file holds 480000" in r for r in reasons)
    assert not any("past the end" in r for r in reasons), reasons
    with pytest.raises(SourceError, match="truncated WAV"):
        mmdata.shard(m, tmp_path / "out2", segment="start=start,end=end", on_error="raise", progress=False)


def test_segments_past_the_end_group_by_reason(tmp_path: Path) -> None:
    sf.write(tmp_path / "ep.wav", np.zeros(8000 * 60, np.float32), 8000, subtype="PCM_16")
    (tmp_path / "m.csv").write_text("audio,start,end,text\n" + "".join(f"ep.wav,{s},{s + 4},t\n"
                                                                       for s in range(0, 120, 5)))
    (tmp_path / "m.csv").write_text((tmp_path / "m.csv").read_text() + "ep.wav,58,63,t\nep.wav,57,64,t\n")
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "out", segment="start=start,end=end", progress=False)
    # the per-row reasons keep their numbers ...
    assert any("starts at 60 s" in s["reason"] for s in rep["skipped"])
    # ... and the report groups them by cause, as the shard job's summary gives them (not regrouped here)
    assert skip_reasons(rep["skipped"], 5) == [
        "12 × m.csv: the segment starts at or past the end of 'ep.wav' (its length: 60 s, 480000 frames at 8000 "
        "Hz); a start inside the file expected (e.g. 'ep_000060.000')",
        "2 × m.csv: the segment ends past the end of 'ep.wav' (its length: 60 s, 480000 frames at 8000 Hz); a "
        "segment inside the file expected (e.g. 'ep_000058.000')"], skip_reasons(rep["skipped"], 5)


def test_per_episode_json_transcript_is_told_how_to_flatten(tmp_path: Path) -> None:
    sf.write(tmp_path / "ep01.wav", np.zeros(8000 * 20, np.float32), 8000)
    doc = {"audio": "ep01.wav", "utterances": [{"start": 0, "end": 3, "text": "hola"},
                                               {"start": 4, "end": 7, "text": "adiós"}]}
    (tmp_path / "ep01.json").write_text(json.dumps(doc))
    with pytest.raises(SourceError) as exc:
        mmdata.shard(tmp_path / "ep01.json", tmp_path / "out", segment="start=start,end=end", progress=False)
    said = str(exc.value)
    assert "JSON Lines" not in said and "field 'utterances' holds a list of objects" in said, said
    assert "jq -c '.utterances[] + {audio}'" in said, said
    (tmp_path / "ep01.jsonl").write_text(json.dumps(doc) + "\n")
    with pytest.raises(SourceError) as exc:
        mmdata.shard(tmp_path / "ep01.jsonl", tmp_path / "out", segment="start=start,end=end", progress=False)
    assert "no column 'start'" in str(exc.value) and "jq -c '.utterances[] + {audio}'" in str(exc.value)
    # the advice, done by hand (jq's output), shards
    rows = [{**u, "audio": doc["audio"]} for u in doc["utterances"]]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rep = mmdata.shard(tmp_path / "rows.jsonl", tmp_path / "ok", segment="start=start,end=end", progress=False)
    assert rep["samples"] == 2


def test_key_column_values_in_two_unicode_forms(tmp_path: Path) -> None:
    sf.write(tmp_path / "ep.wav", np.zeros(8000 * 20, np.float32), 8000)
    (tmp_path / "keys.tsv").write_bytes(b"id\taudio\tstart\tend\ttext\nepisodio \xc3\xb1.1\tep.wav\t0\t3\ta\n"
                                        b"episodio n\xcc\x83.1\tep.wav\t3\t6\tb\n")
    with pytest.raises(SourceError) as exc:
        mmdata.shard(tmp_path / "keys.tsv", tmp_path / "out", columns={"key": "id"}, segment="start=start,end=end",
                     progress=False)
    said = str(exc.value)
    assert "differ only in their Unicode normalisation" in said and "key column 'id'" in said, said
    assert "a 'key' column, or --column key=COL" not in said


def _images_manifest(root: Path, n: int, repeat: range) -> Path:
    (root / "img").mkdir(parents=True)
    lines = ["key,image,text"]
    for i in range(n):
        Image.fromarray(np.full((8, 8, 3), i % 250, np.uint8)).save(root / "img" / f"s{i:04d}.png")
        lines.append(f"s{i:04d},img/s{i:04d}.png,photo {i}")
    lines += [lines[1 + i] for i in repeat]
    m = root / "m.csv"
    m.write_text("\n".join(lines) + "\n")
    return m


def test_rows_delivered_twice_are_counted_and_named_copies(tmp_path: Path) -> None:
    m = _images_manifest(tmp_path, 60, range(30, 50))
    with pytest.raises(SourceError) as exc:
        mmdata.shard(m, tmp_path / "out", progress=False)
    said = str(exc.value)
    assert said.startswith("manifest m.csv: rows 31 and 61 are both sample 's0030' (20 rows repeat the key of an "
                           "earlier row in key column 'key', 20 keys: 's0030': rows 31, 61; 's0031': rows 32, 62"), said
    assert "exact copy of an earlier one" in said and f"awk '!seen[$0]++' {m} > deduplicated.csv" in said, said
    assert "give each row its own key: a 'key' column" not in said


def test_distinct_rows_sharing_a_key_are_told_apart(tmp_path: Path) -> None:
    m = _images_manifest(tmp_path, 10, range(2, 4))  # rows 11 and 12 repeat s0002 and s0003 ...
    lines = m.read_text().splitlines()
    m.write_text("\n".join(lines[:-1] + ["s0003,img/s0003.png,another photo"]) + "\n")  # ... s0003's is no copy
    with pytest.raises(SourceError) as exc:
        mmdata.shard(m, tmp_path / "out", progress=False)
    said = str(exc.value)
    assert "give each row its own key in column 'key'" in said and "exact copy" not in said, said
    assert "1 of the repeated rows are exact copies" in said, said


def test_second_image_note_says_what_was_left_out_and_how_to_keep_it(tmp_path: Path) -> None:
    for i in range(4):
        Image.fromarray(np.full((8, 8), 1000 * i, np.uint16)).save(tmp_path / f"tile{i}.tif")
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(tmp_path / f"tile{i}.png")
    found = discover(tmp_path)
    notes = [s["reason"] for s in found.skipped]
    assert len(notes) == 4, notes
    assert "kept 'tile0.png' (the first by name), left out 'tile0.tif'" in notes[0], notes
    assert "to keep 'tile0.tif' instead, move 'tile0.png'" in notes[0] and "--column image2=COLUMN" in notes[0]
