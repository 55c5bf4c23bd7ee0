"""QA26 F10: `mmdata inspect` for speech datasets and its left-out counts.

1. Total audio duration per split and per class (a speech researcher's first number; Lhotse's
   ``describe`` reports it) from the index, no decode: h:mm:ss in the tables, seconds in ``--json``
   (``audio_duration``); above 30 classes the per-class durations are summarised per split, as the
   per-class counts are.
2. The "left out" counts say what ``mmdata shard`` said (``1 sample, 2 members``), not the card's number
   of entries (``3``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.shards.inspect import duration_text, inspect
from mmdata.testing import audio_bytes, make_messy_folder, make_sample_folder


def _mmdata(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MMDATA_PROGRESS": "off", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "mmdata.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def _reference(ds: Path) -> dict[str, Any]:
    """Seconds per split and per split / class, summed row by row from the index."""
    rows = pq.read_table(ds / "index.parquet").to_pydict()
    names = json.loads((ds / "dataset.json").read_text()).get("label_names")
    per_split: dict[str, float] = defaultdict(float)
    samples: dict[str, int] = defaultdict(int)
    per_class: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for split, label, secs in zip(rows["split"], rows["label"], rows["audio_seconds"]):
        name = "(none)" if label is None else names[label] if names else str(label)
        per_class[split][name] += 0.0
        if secs is None or not math.isfinite(secs):
            continue
        per_split[split] += secs
        samples[split] += 1
        per_class[split][name] += secs
    return {"per_split": {s: {"samples": samples[s], "seconds": per_split[s]} for s in per_split},
            "per_class": {s: dict(c) for s, c in per_class.items()}}


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("speech")
    m = make_messy_folder(root / "raw", n=30, sizes=((8, 8),), seconds=(0.6, 2.0))
    mmdata.shard(m.root, root / "ds", progress=False, split={"train": 0.7, "val": 0.3},
                 labels_from_folders=False)
    return root / "ds"


def test_duration_text_is_h_mm_ss() -> None:
    assert duration_text(0) == "0:00:00"
    assert duration_text(1.5) == "0:00:01.50"  # under a minute: a tiny test set is not "0:00:02"
    assert duration_text(59.994) == "0:00:59.99"
    assert duration_text(61.4) == "0:01:01"
    assert duration_text(3600 * 123 + 62) == "123:01:02"


def test_json_gives_total_audio_seconds_per_split_and_class(speech: Path) -> None:
    rep = inspect(speech)
    want = _reference(speech)
    dur = rep["audio_duration"]
    assert set(dur) >= {"seconds", "samples", "per_split", "per_class"}
    assert list(dur["per_split"]) == list(rep["per_split"])  # every split, in per_split's order
    for split, got in dur["per_split"].items():
        assert got["samples"] == want["per_split"][split]["samples"]
        assert got["seconds"] == pytest.approx(want["per_split"][split]["seconds"], abs=1e-3)
    assert dur["samples"] == rep["audio_seconds"]["count"] == rep["audio"]["count"]
    assert dur["seconds"] == pytest.approx(sum(v["seconds"] for v in want["per_split"].values()), abs=1e-3)
    # per class: the same splits and classes as per_class (the counts), seconds summed
    assert {s: set(c) for s, c in dur["per_class"].items()} == {s: set(c) for s, c in rep["per_class"].items()}
    for split, classes in want["per_class"].items():
        for name, secs in classes.items():
            assert dur["per_class"][split][name] == pytest.approx(secs, abs=1e-3), (split, name)
    # the contract: keys that were there keep their names and shapes
    for key in ("audio_seconds", "audio_sample_rate", "audio", "skipped", "skipped_counts", "per_class", "per_split"):
        assert key in rep
    assert set(rep["audio_seconds"]) == {"count", "min", "median", "max"}


def test_tables_show_hours_per_split_and_class(speech: Path) -> None:
    rep = inspect(speech)
    res = _mmdata("inspect", str(speech), cwd=speech.parent)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    dur = rep["audio_duration"]
    assert f"{duration_text(dur['seconds'])} of audio" in out.splitlines()[0]
    for split, got in dur["per_split"].items():
        row = next(line for line in out.splitlines() if line.startswith(f"│ {split} "))
        assert duration_text(got["seconds"]) in row, row
    # a table of classes by split: each cell that class's audio in that split
    header = next(line for line in out.splitlines() if "audio per class" in line or re.match(r"^┃ class ", line))
    assert "train" in header and "val" in header, header
    for name in ("circle", "square", "triangle"):
        row = next(line for line in out.splitlines() if line.startswith(f"│ {name} "))
        for split in ("train", "val"):
            secs = dur["per_class"][split].get(name)
            if secs is not None:
                assert duration_text(secs) in row, (row, split)


def test_a_dataset_without_audio_shows_no_duration(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4, missing=False)
    for p in raw.glob("*.flac"):
        p.unlink()
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    rep = inspect(tmp_path / "ds")
    assert rep["audio_duration"]["seconds"] == 0 and rep["audio_duration"]["samples"] == 0
    out = _mmdata("inspect", str(tmp_path / "ds"), cwd=tmp_path).stdout
    assert "of audio" not in out and "audio per class" not in out


def test_many_classes_summarise_audio_per_class(tmp_path: Path) -> None:
    """40 classes: each split's audio per class in one bounded line (min / median / max, the least), as the
    counts are summarised above 30 classes; --json keeps every class."""
    rows = []
    for c in range(40):
        for j in range(1 + c % 2):
            name = f"a{c:02d}_{j}.wav"
            (tmp_path / name).write_bytes(audio_bytes(c, seconds=0.5 + 0.1 * (c % 5), sample_rate=8000, fmt="wav"))
            rows.append({"key": f"a{c:02d}_{j}", "audio": name, "label": f"word{c:02d}"})
    with open(tmp_path / "m.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["key", "audio", "label"])
        w.writeheader()
        w.writerows(rows)
    mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    res = _mmdata("inspect", str(tmp_path / "ds"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert max(map(len, lines)) < 250
    rep = json.loads(_mmdata("inspect", str(tmp_path / "ds"), "--json", cwd=tmp_path).stdout)
    per = rep["audio_duration"]["per_class"]["train"]
    assert len(per) == 40
    values = sorted(per.values())
    row = next(line for line in lines if line.startswith("│ train ") and "per class min" in line and ":" in line
               and duration_text(values[0]) in line)
    assert f"min {duration_text(values[0])}" in row and f"max {duration_text(values[-1])}" in row, row
    assert not any(line.startswith("│ word00 ") for line in lines)  # no 40-row table


def test_inspect_left_out_counts_match_shard(tmp_path: Path) -> None:
    """One sample's audio is corrupt (a member left out), another sample is only a corrupt named image
    (its member left out, then the sample, emptied): shard says '1 sample, 2 members'; inspect said '3'."""
    raw = make_sample_folder(tmp_path / "raw", n=6, missing=False)
    (raw / "000001.flac").write_bytes(b"not audio at all" * 10)
    (raw / "000002.seg.png").write_bytes(b"\x89PNG garbage" * 5)
    res = _mmdata("shard", str(raw), str(tmp_path / "ds"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    said = re.search(r"left out: ([^(\n]+?) \(", res.stderr)
    assert said and said.group(1) == "1 sample, 2 members", res.stderr
    res = _mmdata("inspect", str(tmp_path / "ds"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    first = res.stdout.splitlines()[0]
    assert first.endswith(": 1 sample, 2 members"), first
    rep = json.loads(_mmdata("inspect", str(tmp_path / "ds"), "--json", cwd=tmp_path).stdout)
    assert rep["skipped"] == 3  # the card's entries, as before (a key of the contract)
    assert {k: v for k, v in rep["skipped_counts"].items() if v} == {"samples": 1, "members": 2}


def test_a_card_without_skipped_counts_counts_its_entries_by_kind(tmp_path: Path) -> None:
    """A card written before skipped_counts (or edited): the counts come from its skipped entries."""
    raw = make_sample_folder(tmp_path / "raw", n=4, missing=False)
    (raw / "000001.flac").write_bytes(b"junk" * 10)
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    card_path = tmp_path / "ds" / "dataset.json"
    card = json.loads(card_path.read_text())
    del card["skipped_counts"]
    card_path.write_text(json.dumps(card))
    rep = inspect(tmp_path / "ds")
    assert {k: v for k, v in rep["skipped_counts"].items() if v} == {"members": 1}
    out = _mmdata("inspect", str(tmp_path / "ds"), cwd=tmp_path).stdout
    assert out.splitlines()[0].endswith(": 1 member"), out.splitlines()[0]


def test_nothing_left_out_says_none(tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4), tmp_path / "ds", progress=False)
    first = _mmdata("inspect", str(tmp_path / "ds"), cwd=tmp_path).stdout.splitlines()[0]
    assert first.endswith(": none"), first
