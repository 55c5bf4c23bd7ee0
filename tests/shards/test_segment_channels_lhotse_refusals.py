"""QA34 review rD: per-channel segment rows of one window are different inputs (no "contradictory labels"
warning, and without a key column the duplicate-key error names the channels); a CSV channel cell ``1.0``
(pandas' float column) is a channel; a Lhotse cut whose recording has ``transforms`` (speed / tempo
perturbation, resampling) or a ``url`` source is an error naming the cut, not a silent cut of the raw file."""

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
from mmdata.shards.sources import lhotse_cut_rows

SR = 8000


def _stereo(root: Path) -> np.ndarray:
    (root / "rec").mkdir(parents=True)
    x = np.stack([(c * 1000 + np.arange(3 * SR)) % 30000 for c in range(2)], 1).astype(np.int16)
    sf.write(root / "rec" / "st.wav", x, SR, subtype="PCM_16")
    return x


def _members(ds: Path) -> dict[str, dict[str, bytes]]:
    out: dict[str, dict[str, bytes]] = {}
    for tar in sorted(ds.glob("*.tar")):
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                key, _, ext = m.name.partition(".")
                out.setdefault(key, {})[ext] = t.extractfile(m).read()  # type: ignore[union-attr]
    return out


def test_two_channels_of_one_window_with_different_labels_are_not_contradictory(tmp_path: Path) -> None:
    _stereo(tmp_path)
    (tmp_path / "m.csv").write_text("key,audio,start,duration,channel,label\n"
                                    "s0,rec/st.wav,1.0,1.0,0,angry\ns1,rec/st.wav,1.0,1.0,1,calm\n"
                                    "s2,rec/st.wav,1.0,1.0,1,angry\n", encoding="utf-8")
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", segment="start=start,duration=duration,channel=channel",
                       progress=False)
    said = [w for w in rep["warnings"] if "contradictory" in w]
    # s1 and s2 are one input (channel 1 of one window) with two labels: that is still warned, naming them
    assert len(said) == 1 and "rows 2 and 3" in said[0] and "row 1" not in said[0], said


def test_a_csv_channel_cell_written_as_a_float_is_a_channel(tmp_path: Path) -> None:
    x = _stereo(tmp_path)
    (tmp_path / "m.csv").write_text("key,audio,start,duration,channel\nf1,rec/st.wav,1.0,0.5,1.0\n"
                                    "f0,rec/st.wav,2.0,0.5,+0.00\nbad,rec/st.wav,0.0,0.5,1.5\n", encoding="utf-8")
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", segment="start=start,duration=duration,channel=channel",
                       progress=False)
    assert rep["samples"] == 2
    (skip,) = rep["skipped"]
    assert "row 3" in skip["reason"] and "'1.5' is not a channel" in skip["reason"]
    got = _members(tmp_path / "ds")
    a, _ = sf.read(io.BytesIO(got["f1"]["flac"]), dtype="int16", always_2d=True)
    assert np.array_equal(a[:, 0], x[SR:SR + SR // 2, 1])


def test_two_channels_at_one_start_without_a_key_name_the_channels(tmp_path: Path) -> None:
    _stereo(tmp_path)
    (tmp_path / "m.csv").write_text("audio,start,duration,channel\nrec/st.wav,1.0,1.0,0\nrec/st.wav,1.0,1.0,1\n",
                                    encoding="utf-8")
    with pytest.raises(SourceError) as err:
        mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", segment="start=start,duration=duration,channel=channel",
                     progress=False)
    msg = str(err.value)
    assert "rows 1 and 2" in msg and "channels 0 and 1" in msg and "twice" not in msg


def _cut(recording: dict) -> dict:
    return {"id": "call1-0", "start": 0.0, "duration": 1.0, "channel": 0, "type": "MonoCut",
            "supervisions": [{"id": "s", "recording_id": recording["id"], "start": 0.0, "duration": 1.0,
                              "text": "hello", "speaker": "A"}], "recording": recording}


@pytest.mark.parametrize("transforms, shown", [
    ([{"name": "Speed", "kwargs": {"factor": 1.1}}], "Speed 1.1"),
    ([{"name": "Resample", "kwargs": {"source_sampling_rate": 8000, "target_sampling_rate": 16000}}], "Resample"),
])
def test_a_lhotse_recording_with_transforms_is_refused_naming_the_cut(tmp_path: Path, transforms: list,
                                                                      shown: str) -> None:
    _stereo(tmp_path)
    rec = {"id": "call1_sp1.1", "sources": [{"type": "file", "channels": [0, 1], "source": "rec/st.wav"}],
           "sampling_rate": SR, "num_samples": 3 * SR, "duration": 3.0, "channel_ids": [0, 1],
           "transforms": transforms}
    p = tmp_path / "sp.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write(json.dumps(_cut(rec)) + "\n")
    with pytest.raises(SourceError) as err:
        mmdata.shard(p, tmp_path / "ds", columns={"key": "id"}, segment="start=start,duration=duration,channel=channel",
                     progress=False)
    msg = str(err.value)
    assert "'call1-0'" in msg and "transforms" in msg and shown in msg and "unperturbed" in msg
    rec["transforms"] = []  # an empty list is no transform
    assert lhotse_cut_rows([_cut(rec)], p)[0]["audio"] == "rec/st.wav"


def test_a_lhotse_url_source_is_refused_naming_the_cut(tmp_path: Path) -> None:
    rec = {"id": "r1", "sources": [{"type": "url", "channels": [0], "source": "https://example.org/r1.wav"}],
           "sampling_rate": SR, "num_samples": SR, "duration": 1.0}
    with pytest.raises(SourceError) as err:
        lhotse_cut_rows([_cut(rec)], "cuts.jsonl")
    msg = str(err.value)
    assert "'call1-0'" in msg and "'url'" in msg and "local" in msg


def test_the_documented_lhotse_command_keeps_recording_id_without_a_warning(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "interop.md").read_text(encoding="utf-8")
    (block,) = [b for b in doc.split("```bash")[1:] if "cuts.jsonl.gz" in b.split("```")[0]]
    assert "--meta speaker,recording_id" in block.split("```")[0]
    _stereo(tmp_path)
    rec = {"id": "call1", "sources": [{"type": "file", "channels": [0, 1], "source": "rec/st.wav"}],
           "sampling_rate": SR, "num_samples": 3 * SR, "duration": 3.0, "channel_ids": [0, 1]}
    p = tmp_path / "cuts.jsonl.gz"
    with gzip.open(p, "wt", encoding="utf-8") as f:
        f.write(json.dumps(_cut(rec)) + "\n")
    rep = mmdata.shard(p, tmp_path / "ds", columns={"key": "id"}, meta=["speaker", "recording_id"],
                       segment="start=start,duration=duration,channel=channel", group_by="speaker", progress=False)
    assert rep["samples"] == 1 and not [w for w in rep["warnings"] if "column" in w], rep["warnings"]
    got = _members(tmp_path / "ds")
    assert json.loads(got["call1-0"]["json"]) == {"speaker": "A", "recording_id": "call1"}


def test_overlaps_across_splits_compare_segments_whose_channel_sets_meet() -> None:
    """Review of QA34 D (F13): segments were grouped by their exact channel string, so "0,1" and an overlapping
    "1" in another split were never compared; channel sets that do not meet share no audio."""
    from mmdata.shards.sources import Record
    from mmdata.shards.writer import segment_overlaps_across_splits

    def seg(key: str, start: int, split: str, ch: str | None = None) -> Record:
        extra = {"segment_source": "a.wav", "segment_start": str(start), "segment_duration": "3.0",
                 "segment_frames": f"{start * 10}:{start * 10 + 30}"}
        return Record(key, key, split=split, extra={**extra, **({"segment_channels": ch} if ch else {})})

    assert segment_overlaps_across_splits([seg("x", 0, "test", "0,1"), seg("y", 2, "val", "1")])[0] == 1
    assert segment_overlaps_across_splits([seg("x", 0, "test", "0"), seg("y", 2, "val", "1")])[0] == 0
    assert segment_overlaps_across_splits([seg("x", 0, "test", "0"), seg("y", 2, "val")])[0] == 1  # all channels
    assert segment_overlaps_across_splits([seg("x", 0, "test", "0"), seg("y", 2, "test", "0")])[0] == 0
