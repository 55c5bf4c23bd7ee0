"""Review r2 of QA29 splits #5: ``--split-from`` over unchanged ``--segment`` data reported every kept segment
as "other content" (18 of 18): it compared the whole recording's size on disk with the earlier index's size of
the stored segment (the FLAC of its frames). A segment is now compared as the writer stores it: its frames cut
from the recording."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.writer import ShardWarning

SPLIT = {"train": 0.5, "test": 0.5}


def _recordings(root: Path, seed: int = 0) -> Path:
    """Three 1 s recordings at 8 kHz, three segments each, in a manifest with start / duration columns."""
    rng = np.random.default_rng(seed)
    root.mkdir()
    rows = []
    for i in range(3):
        sf.write(root / f"rec{i}.wav", (rng.standard_normal(8000) * 3000).astype("int16"), 8000)
        rows += [{"key": f"r{i}_{s}", "audio": f"rec{i}.wav", "start": str(s * 0.3), "duration": "0.3"}
                 for s in range(3)]
    with open(root / "seg.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root / "seg.csv"


def test_unchanged_segments_are_no_other_content(tmp_path: Path) -> None:
    m = _recordings(tmp_path / "v")
    seg = {"start": "start", "duration": "duration"}
    mmdata.shard(m, tmp_path / "d1", split=SPLIT, segment=seg, progress=False)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        mmdata.shard(m, tmp_path / "d2", split=SPLIT, segment=seg, split_from=tmp_path / "d1", progress=False)
    assert not [w for w in got if "other content" in str(w.message)]
    about = idx.load_card(tmp_path / "d2")["split_from"]
    assert about["kept"] == 9 and "other_content" not in about


def test_a_segment_key_naming_other_frames_is_other_content(tmp_path: Path) -> None:
    seg = {"start": "start", "duration": "duration"}
    mmdata.shard(_recordings(tmp_path / "v1"), tmp_path / "d1", split=SPLIT, segment=seg, progress=False)
    with pytest.warns(ShardWarning) as got:  # other recordings under the same keys
        mmdata.shard(_recordings(tmp_path / "v2", seed=1), tmp_path / "d2", split=SPLIT, segment=seg,
                     split_from=tmp_path / "d1", progress=False)
    assert "9 of 9 samples kept by key hold other content" in " | ".join(str(w.message) for w in got)
    assert idx.load_card(tmp_path / "d2")["split_from"]["other_content"] == 9
