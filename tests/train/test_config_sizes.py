"""The trainer's data checks on large media (QA with 12000x9000 photos and hour-long 48 kHz audio):
``--cache auto`` sizes a split as the normalize stage leaves it, and a scored split without a modality
the run uses is warned about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mmdata.train.config import IndexStats, InputSpec, decoded_bytes, derive_inputs, effective_inputs, modality_warnings, with_normalize


def _index(tmp_path: Path, rows: list[dict[str, Any]]) -> IndexStats:
    cols = sorted({k for r in rows for k in r})
    pq.write_table(pa.table({c: [r.get(c) for r in rows] for c in cols}), tmp_path / "index.parquet")
    return IndexStats(tmp_path)


def _row(i: int, split: str, audio: bool = True) -> dict[str, Any]:
    r: dict[str, Any] = {"key": f"k{i}", "split": split, "label": i % 2, "image_height": 9000, "image_width": 12000,
                         "image_channels": 3, "modalities": ["image", "audio"] if audio else ["image"]}
    if audio:
        r.update(audio_seconds=3600.0, audio_sample_rate=48000, audio_channels=2)
    return r


def test_the_cache_estimate_counts_the_normalized_size(tmp_path: Path) -> None:
    st = _index(tmp_path, [_row(i, "train") for i in range(4)])
    stored = decoded_bytes(st, "train", ["image", "audio"])
    assert stored > 4 * (9000 * 12000 * 3 + 3600 * 48000 * 4 * 2)  # 2.6 GB a sample as stored
    spec = derive_inputs(st, ["image", "audio"])
    assert spec.image_size == (128, 128) and spec.max_seconds == 30.0
    after = decoded_bytes(st, "train", ["image", "audio"], spec)
    assert after == 4 * (1024 + 128 * 128 * 3 + 30 * 48000 * 4)  # 49 KB + 5.8 MB a sample
    # a recipe's own normalize list that keeps the channels and lengths: counted as they stay
    _, norm = with_normalize({"normalize": {"audio": [{"op": "resample", "rate": 16000}]}}, spec)
    own = effective_inputs(spec, norm, ["image", "audio"], st)
    assert decoded_bytes(st, "train", ["audio"], own) == 4 * (1024 + 3600 * 16000 * 4 * 2)


def test_a_scored_split_without_a_modality_is_warned_about(tmp_path: Path) -> None:
    rows = [_row(i, "train") for i in range(6)] + [_row(10 + i, "val") for i in range(2)] + \
        [_row(20 + i, "test", audio=False) for i in range(3)]
    st = _index(tmp_path, rows)
    (w,) = modality_warnings(st, ["image", "audio"])
    assert w.startswith("the test split has no audio (0 of 3 samples; train: 6 of 6)") and "--modalities" in w
    assert modality_warnings(st, ["image"]) == []
    roles = IndexStats(tmp_path, {"train": ["train"], "val": ["test"], "test": ["val"]})  # the split names by role
    assert modality_warnings(roles, ["audio"])[0].startswith("the val split has no audio (0 of 3")
