"""QA38 defects of manifest discovery and add-modality (``mmdata/shards/sources.py``, ``columns.py``).

OCR #1: ``--column text=transcript`` on a column of ``.txt`` paths stored the paths as the transcriptions, and
the warning told the user to rename a column that already had another name: the files are now read (a column
of .txt paths is the text), and a column mixing paths and captions is warned with the fix that applies.
Real PNG / UTF-8 files and real shards throughout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import mmdata
from mmdata.shards.sources import discover


def _png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 16), dtype=np.uint8)).save(path)


def _pages(root: Path, n: int = 3) -> None:
    for i in range(n):
        _png(root / "raw" / f"doc{i}_p001.png", i)
        (root / "raw" / f"doc{i}_p001.txt").write_text(f"page one of document {i}\n", encoding="utf-8")


def test_mapped_text_column_of_txt_paths_reads_the_files(tmp_path: Path) -> None:
    _pages(tmp_path)
    rows = "".join(f"raw/doc{i}_p001.png,raw/doc{i}_p001.txt,form\n" for i in range(3))
    (tmp_path / "m.csv").write_text("image,transcript,label\n" + rows, encoding="utf-8")
    found = discover(tmp_path / "m.csv", columns={"text": "transcript"})
    assert len(found.records) == 3
    # each sample's text is its file (a path to read), not the cell's bytes
    assert all(isinstance(r.members["txt"], str) and r.members["txt"].endswith("_p001.txt") for r in found.records)
    assert not any("stored as the captions" in w for w in found.warnings), found.warnings
    out = tmp_path / "ds"
    mmdata.shard(tmp_path / "m.csv", out, columns={"text": "transcript"}, split={"train": 1.0})
    texts = sorted(s["text"] for s in mmdata.open_dataset(out, split="train"))
    assert texts == [f"page one of document {i}" for i in range(3)]


def test_mapped_text_column_mixing_paths_and_captions_names_the_fix(tmp_path: Path) -> None:
    _pages(tmp_path, 10)
    cells = [f"raw/doc{i}_p001.txt" for i in range(10)] + ["a caption typed in"]
    body = "".join(f"raw/doc{i % 10}_p001.png,{c},k{i}\n" for i, c in enumerate(cells))
    (tmp_path / "m.csv").write_text("image,transcript,key\n" + body, encoding="utf-8")
    found = discover(tmp_path / "m.csv", columns={"text": "transcript"})
    [w] = [w for w in found.warnings if "stored as the captions" in w]
    assert "--column text=transcript" in w and "rename the column" not in w
    assert "10 of its 11 values" in w
