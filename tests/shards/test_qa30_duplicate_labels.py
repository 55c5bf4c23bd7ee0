"""QA round 30 (extremes #7): byte-identical members under different labels were reported only as test
contamination ("in different splits"), and not at all when every copy sat in one split. A labelling
conflict is now said on its own (``labels differ: a, b, c``) and the card's ``duplicates`` records it."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image

import mmdata
from mmdata.shards import index as idx


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, "PNG")
    return buf.getvalue()


def _folders(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _shard(src: Path, out: Path, **kw: object) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mmdata.shard(src, out, progress=False, **kw)


def test_one_photo_in_three_class_folders_across_splits_is_a_label_conflict(tmp_path: Path) -> None:
    same = _png((10, 200, 30))
    src = _folders(tmp_path / "raw", {f"{c}/s{c}.png": same for c in "abc"})
    rep = _shard(src, tmp_path / "ds", split={"train": 0.34, "val": 0.33, "test": 0.33})
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert dup["across_splits"] == 1 and dup["samples"] == 3  # as before
    assert dup["label_conflicts"] == 1 and dup["label_conflict_samples"] == 3
    assert dup["label_conflicts_across_splits"] == 1
    assert [name for _, _, name in dup["label_examples"][0]] == ["a", "b", "c"]
    assert [key for key, _, _ in dup["label_examples"][0]] == ["a/sa", "b/sb", "c/sc"]
    split_said = next(w for w in rep["warnings"] if "in different splits" in w)
    assert "1 of these sets carries different labels too" in split_said
    said = next(w for w in rep["warnings"] if "under different labels" in w)
    assert said.startswith("3 samples in 1 set hold the same image or audio bytes (confirmed by sha256) under "
                           "different labels (e.g. 'a/sa' (")
    assert "labels differ: a, b, c)" in said and "labelling error" in said


def test_copies_in_one_split_under_two_labels_are_reported(tmp_path: Path) -> None:
    same = _png((200, 10, 30))
    src = _folders(tmp_path / "raw", {"cat/x.png": same, "dog/y.png": same, "dog/z.png": _png((1, 2, 3))})
    rep = _shard(src, tmp_path / "ds")  # no --split: every sample in train
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert dup["across_splits"] == 0 and dup["examples"] == []
    assert dup["label_conflicts"] == 1 and dup["label_conflicts_across_splits"] == 0
    assert dup["label_examples"] == [[["cat/x", "train", "cat"], ["dog/y", "train", "dog"]]]
    said = [w for w in rep["warnings"] if "same image or audio bytes" in w]
    assert len(said) == 1 and "under different labels" in said[0] and "labels differ: cat, dog" in said[0]


def test_copies_under_one_label_or_unlabelled_are_no_conflict(tmp_path: Path) -> None:
    same = _png((30, 30, 200))
    src = _folders(tmp_path / "raw", {"cat/x.png": same, "cat/y.png": same, "dog/z.png": _png((5, 5, 5))})
    rep = _shard(src, tmp_path / "ds")
    assert idx.load_card(tmp_path / "ds")["duplicates"] == {"across_splits": 0, "samples": 0, "examples": []}
    assert not [w for w in rep["warnings"] if "same image or audio bytes" in w]


def _wav() -> bytes:
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(800, dtype=np.float32), 8000, format="WAV")
    return buf.getvalue()


def _csv(path: Path, rows: list[dict[str, str]]) -> None:
    import csv

    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_samples_sharing_one_file_but_not_the_rest_are_no_conflict(tmp_path: Path) -> None:
    """Review of QA30: a row per question of one image (VQA-style) and one silence clip beside other images were
    called a labelling error, with the advice to remove samples; only samples identical in every member are."""
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "i0.png").write_bytes(_png((1, 2, 3)))
    (raw / "i1.png").write_bytes(_png((4, 5, 6)))
    (raw / "i2.png").write_bytes(_png((7, 8, 9)))
    (raw / "silence.wav").write_bytes(_wav())
    rows = [{"image": "i0.png", "audio": "", "text": "what colour?", "label": "a"},
            {"image": "i0.png", "audio": "", "text": "how many?", "label": "b"},
            {"image": "i1.png", "audio": "silence.wav", "text": "", "label": "a"},
            {"image": "i2.png", "audio": "silence.wav", "text": "", "label": "b"}]
    _csv(raw / "m.csv", rows)
    rep = _shard(raw / "m.csv", tmp_path / "ds")
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert "label_conflicts" not in dup, dup
    assert not [w for w in rep["warnings"] if "under different labels" in w]
    # the same image and the same question under two labels is one item labelled twice
    rows.append({"image": "i0.png", "audio": "", "text": "what colour?", "label": "b"})
    _csv(raw / "m.csv", rows)
    rep = _shard(raw / "m.csv", tmp_path / "ds2")
    dup = idx.load_card(tmp_path / "ds2")["duplicates"]
    assert dup["label_conflicts"] == 1 and dup["label_conflict_samples"] == 2, dup
