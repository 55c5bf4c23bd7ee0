"""QA round 33 (labelnoise #5 #6 #7, multisite #9, docsread #11): text-only samples with one caption under two
labels were no conflict; an image shared by two class folders (other members differing) was no label issue;
a pair sharing image and audio counted as two sets with a repeated example; the remedy advised --group-by when
--group-by had put the copies in different groups."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.shards import index as idx


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, "PNG")
    return buf.getvalue()


def _wav(f: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.sin(np.arange(800) * f).astype(np.float32), 8000, format="WAV")
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


def test_text_only_samples_with_one_caption_under_two_labels_conflict(tmp_path: Path) -> None:
    files = {f"pos/p{i}.txt": f"great movie number {i}\n".encode() for i in range(6)}
    files |= {f"neg/n{i}.txt": f"awful movie number {i}\n".encode() for i in range(6)}
    files["neg/dup.txt"] = files["pos/p3.txt"]
    rep = _shard(_folders(tmp_path / "raw", files), tmp_path / "ds")
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert dup["label_conflicts"] == 1 and dup["label_conflict_samples"] == 2, dup
    assert dup["label_examples"] == [[["neg/dup", "train", "neg"], ["pos/p3", "train", "pos"]]]
    said = [w for w in rep["warnings"] if "under different labels" in w]
    assert len(said) == 1 and "labels differ: neg, pos" in said[0] and "text" in said[0]


def test_text_only_samples_with_one_caption_in_two_splits_are_contamination(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    lines = ["text,label,split"] + [f"sentence {i},{'ab'[i % 2]},train" for i in range(10)] + ["sentence 1,b,test"]
    (src / "m.csv").write_text("\n".join(lines) + "\n")
    rep = _shard(src / "m.csv", tmp_path / "ds")
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert dup["across_splits"] == 1 and dup["samples"] == 2 and dup["text_only"] is True, dup
    assert any("in different splits" in w for w in rep["warnings"])


def test_captions_beside_images_are_not_compared_alone(tmp_path: Path) -> None:
    files = {f"{c}/s{i}.png": _png((i, 40 * (c == "a"), 9)) for c in "ab" for i in range(3)}
    files |= {f"{c}/s{i}.txt": b"a photo\n" for c in "ab" for i in range(3)}  # one caption everywhere
    _shard(_folders(tmp_path / "raw", files), tmp_path / "ds", split={"train": 0.5, "test": 0.5})
    assert idx.load_card(tmp_path / "ds")["duplicates"] == {"across_splits": 0, "samples": 0, "examples": []}


def test_one_image_in_two_class_folders_with_other_members_differing_is_a_label_issue(tmp_path: Path) -> None:
    files = {f"{c}/s{i}.png": _png((i, 50 * "abc".index(c), 1)) for c in "abc" for i in range(4)}
    files |= {f"{c}/s{i}.wav": _wav(0.01 * (i + 1) + "abc".index(c)) for c in "abc" for i in range(4)}
    files |= {f"{c}/s{i}.txt": f"{c} {i}".encode() for c in "abc" for i in range(4)}
    files["b/x1.png"] = files["c/s2.png"]  # an image-only copy filed as b
    files["a/x2.png"], files["a/x2.wav"] = files["c/s3.png"], files["c/s3.wav"]
    files["a/x2.txt"] = b"a different caption"
    rep = _shard(_folders(tmp_path / "raw", files), tmp_path / "ds")  # every sample in train
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert dup["shared_label_conflicts"] == 2 and dup["shared_label_conflict_samples"] == 4, dup
    assert sorted(dup["shared_label_examples"]) == [[["a/x2", "train", "a"], ["c/s3", "train", "c"]],
                                                    [["b/x1", "train", "b"], ["c/s2", "train", "c"]]]
    said = [w for w in rep["warnings"] if "under different class folders" in w]
    assert len(said) == 1 and said[0].startswith("4 samples in 2 sets share an image or audio file"), rep["warnings"]
    assert "labelling error" in said[0]


def test_a_pair_sharing_image_and_audio_is_one_set_and_says_labels_differ(tmp_path: Path) -> None:
    files = {f"{c}/s{i}.png": _png((i, 50 * "ab".index(c), 1)) for c in "ab" for i in range(3)}
    files |= {f"{c}/s{i}.wav": _wav(0.01 * (i + 1) + "ab".index(c)) for c in "ab" for i in range(3)}
    files |= {f"{c}/s{i}.txt": f"{c} {i}".encode() for c in "ab" for i in range(3)}
    src = _folders(tmp_path / "raw", files)
    lines = ["image,audio,text,label,split"]
    for c in "ab":
        for i in range(3):
            lines.append(f"{c}/s{i}.png,{c}/s{i}.wav,{c}/s{i}.txt,{c},{'test' if (c, i) == ('b', 0) else 'train'}")
    lines.append("a/s0.png,a/s0.wav,b/s1.txt,b,test")  # a's image and audio, another caption, labelled b
    (src / "m.csv").write_text("\n".join(lines) + "\n")
    rep = _shard(src / "m.csv", tmp_path / "ds")
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert dup["across_splits"] == 1 and dup["samples"] == 2, dup
    assert len(dup["examples"]) == 1
    assert dup["across_splits_labels_differ"] == 1
    said = next(w for w in rep["warnings"] if "in different splits" in w)
    assert said.startswith("2 samples in 1 set hold the same image or audio bytes")
    assert "labels differ: a (" in said and ", b (" in said
    # from a manifest a file shared under two labels may be a row per question: recorded, not warned
    assert dup["shared_label_conflicts"] == 1
    assert not [w for w in rep["warnings"] if "under different class folders" in w]


def test_remedy_does_not_advise_group_by_when_it_was_given(tmp_path: Path) -> None:
    same = _png((1, 2, 3))
    files = {f"P{p}/scan{i}.png": (same if i == 0 else _png((p, i, 7))) for p in range(6) for i in range(2)}
    src = _folders(tmp_path / "Patients", files)
    rep = _shard(src, tmp_path / "ds", labels_from_folders=False, group_by="folder",
                 split={"train": 0.5, "val": 0.25, "test": 0.25})
    said = next(w for w in rep["warnings"] if "in different splits" in w)
    assert "or --group-by)" not in said
    assert "--group-by folder put the copies in different groups" in said
