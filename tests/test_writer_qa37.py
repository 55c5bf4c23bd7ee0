"""QA round 37, the writer's share: a ``--segment`` sample whose cut fails (a truncated FLAC) is left out whole, not
kept as a transcript without audio (podcast #6); a per-sample licence column that contradicts ``--license`` is
warned of at shard time (licence #1); ``--split-from`` an earlier version whose ``add-modality`` fields this job
does not write says so (vendor #5); the identifying-metadata warning's verb agrees with its count and its strip
advice enters class folders (licence #3, #8); rows cut past a recording's end are one reason in the summary
(podcast #7). Real FLAC / PNG / WAV files, real shards and cards."""

from __future__ import annotations

import csv
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.shards.columns import add_modality
from mmdata.shards.writer import identifying_metadata_warning, skip_reasons


def _shard(src: Path, out: Path, **kw: object) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mmdata.shard(src, out, progress=False, **kw)


def test_a_segment_of_a_truncated_flac_is_left_out_whole(tmp_path: Path) -> None:
    x = (0.1 * np.random.default_rng(0).standard_normal(8000 * 60)).astype("float32")
    sf.write(tmp_path / "ep.flac", x, 8000, subtype="PCM_16")
    size = os.path.getsize(tmp_path / "ep.flac")
    os.truncate(tmp_path / "ep.flac", size // 2)
    (tmp_path / "m.csv").write_text("audio,start,end,text\nep.flac,5,8,uno\nep.flac,50,55,dos\nep.flac,56,58,tres\n")
    res = _shard(tmp_path / "m.csv", tmp_path / "ds", segment={"start": "start", "end": "end"})
    rows = pq.read_table(tmp_path / "ds" / "index.parquet").to_pylist()
    assert [r["source_key"] for r in rows] == ["ep_000005.000"]  # the two past the cut: no text-only samples
    assert all("audio" in r["modalities"] for r in rows)
    gone = [s for s in res["skipped"] if s["what"] == "sample"]
    assert {s["source"] for s in gone} == {"ep_000050.000", "ep_000056.000"}
    assert all("could not be cut" in s["reason"] for s in gone)


def test_a_licence_column_other_than_the_declared_licence_is_warned_of(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    kinds = ["CC-BY-4.0", "CC-BY-NC-4.0", "CC0-1.0", "unknown"]
    with open(tmp_path / "raw" / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "label", "license"])
        for i in range(8):
            Image.fromarray(np.full((8, 8, 3), i * 20, "uint8")).save(tmp_path / "raw" / f"{i}.png")
            w.writerow([f"{i}.png", "ab"[i % 2], kinds[i % 4]])
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        mmdata.shard(tmp_path / "raw" / "m.csv", tmp_path / "ds", meta=["license"], license="CC-BY-4.0",
                      progress=False)
    said = [str(w.message) for w in got if "per-sample licence column 'license'" in str(w.message)]
    assert len(said) == 1 and "in 6 samples" in said[0] and "NonCommercial: 'CC-BY-NC-4.0'" in said[0]
    assert "no known licence: 'unknown'" in said[0]
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert any("per-sample licence column" in w for w in card["warnings"])
    # every sample under the declared licence: nothing to say
    with open(tmp_path / "raw" / "m2.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "label", "license"])
        for i in range(4):
            w.writerow([f"{i}.png", "ab"[i % 2], "CC BY 4.0"])
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        mmdata.shard(tmp_path / "raw" / "m2.csv", tmp_path / "ds2", meta=["license"], license="CC-BY-4.0",
                     progress=False)
    assert not [w for w in got if "per-sample licence column" in str(w.message)]


def test_split_from_a_version_with_added_fields_says_they_are_not_carried(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for c in ("a", "b"):
        (raw / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((8, 8, 3), 10 * i + (c == "b") * 100, "uint8")).save(raw / c / f"{c}{i}.png")
    v1 = tmp_path / "v1"
    _shard(raw, v1, layout="columns", split={"train": 0.5, "val": 0.5})
    emb = tmp_path / "emb"
    for c in ("a", "b"):  # named by source key (a/a0), as the index lists them
        (emb / c).mkdir(parents=True)
        for i in range(4):
            np.save(emb / c / f"{c}{i}.npy", np.ones(4, "float32"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        add_modality(v1, "emb", emb, license="CC0-1.0")
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        mmdata.shard(raw, tmp_path / "v2", layout="columns", split_from=v1, progress=False)
    said = [str(w.message) for w in got if "add-modality" in str(w.message) and "--split-from v1" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in got]
    assert "field 'emb' was added to it" in said[0] and "mmdata add-modality" in said[0] and "'emb'" in said[0]
    assert "--license / --attribution as before" in said[0]
    # the samples layout cannot take it back by add-modality: said
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        mmdata.shard(raw, tmp_path / "v3", split_from=v1, progress=False)
    assert any("needs this dataset sharded with --layout columns" in str(w.message) for w in got)


def test_the_metadata_warning_agrees_with_its_count_and_enters_class_folders() -> None:
    one = identifying_metadata_warning({"gps": 1, "examples": {"gps": ["a/1.jpg"]}})[0]
    two = identifying_metadata_warning({"gps": 2, "examples": {"gps": ["a/1.jpg"]}})[0]
    assert "1 image member carries a GPS" in one and "2 image members carry a GPS" in two
    assert "exiftool -r -all= -tagsfromfile @ -Orientation" in one
    assert "exiftool cannot write WAV" in one


def test_rows_past_a_recordings_end_are_one_reason() -> None:
    skipped = [{"source": f"ep_{t:06d}.000", "what": "sample",
                "reason": f"m.csv row {i}: the segment starts at {t} s, at or past the end of 'ep.wav' (its length: "
                          f"60 s, 480000 frames at 8000 Hz); a start inside the file expected"}
               for i, t in enumerate(range(60, 120, 5), start=2)]
    (line,) = skip_reasons(skipped)
    assert line.startswith("12 × ") and "(its length: 60 s" in line


def test_add_modality_keeps_member_digests_in_step_with_members(tmp_path: Path) -> None:
    from mmdata.shards import index as idx

    raw = tmp_path / "raw"
    (raw / "a").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, "uint8")).save(raw / "a" / f"a{i}.png")
    ds = tmp_path / "ds"
    _shard(raw, ds, layout="columns")
    emb = tmp_path / "emb" / "a"
    emb.mkdir(parents=True)
    for i in range(3):
        np.save(emb / f"a{i}.npy", np.full(4, i, "float32"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        add_modality(ds, "emb", tmp_path / "emb")
    rows = pq.read_table(ds / "index.parquet").to_pylist()
    for row in rows:
        assert len(row[idx.MEMBER_DIGEST]) == len(row["members"]) == len(row["member_crc32"])
        emb_at = [i for i, m in enumerate(row["members"]) if m.endswith(".emb.npy") or m.endswith(".npy")]
        assert emb_at, row["members"]
        i = int(row["source_key"][-1])
        buf = tmp_path / "emb" / "a" / f"a{i}.npy"
        assert row[idx.MEMBER_DIGEST][emb_at[0]] == idx.member_digest(buf.read_bytes())


def test_big_endian_arrays_are_no_dtype_of_their_own(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(4):
        a = np.arange(12, dtype="float32").reshape(4, 3) + i
        np.save(raw / f"s{i}.imu.npy", a.astype(">f4") if i % 2 else a)
        (raw / f"s{i}.txt").write_text(f"clip {i}")
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert not [w for w in got if "dtypes" in str(w.message)], [str(w.message) for w in got]
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert card["modalities"]["imu"]["dtypes"] == {"float32": 4}
    batch = next(iter(mmdata.loader(tmp_path / "ds", 4, split=list(card["splits"]))))
    assert str(batch["imu"].dtype) == "torch.float32"
