"""Review of QA33 writer fixes: a caption beside a .npy / .mp4 (or one of a question + answer pair) was compared
alone as a "text-only" sample (false contamination and labelling errors); one silent clip / blank image shared
by samples of several class folders was warned as a labelling error; ``--split-from`` put every new sample
holding a placeholder's bytes into one gone sample's split."""

from __future__ import annotations

import io
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.writer import duplicates_across_splits


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i % 256, (7 * i) % 256, (13 * i) % 256)).save(buf, "PNG")
    return buf.getvalue()


def _wav(seed: int | None) -> bytes:
    buf = io.BytesIO()
    x = np.zeros(800, np.float32) if seed is None else np.random.default_rng(seed).standard_normal(800).astype(np.float32) * .1
    sf.write(buf, x, 8000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _npy(seed: int) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(seed).random(8).astype(np.float32))
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


def _split3() -> dict[str, float]:
    return {"train": 0.6, "val": 0.2, "test": 0.2}


def test_a_caption_beside_features_is_not_compared_alone(tmp_path: Path) -> None:
    files = {f"{c}/{c}{i}.npy": _npy(100 * (c == "run") + i) for c in ("run", "walk") for i in range(8)}
    files |= {f"{c}/{c}{i}.txt": b"a person outdoors" for c in ("run", "walk") for i in range(8)}
    rep = _shard(_folders(tmp_path / "raw", files), tmp_path / "ds", split=_split3())
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert dup["across_splits"] == 0 and "label_conflicts" not in dup and "text_only" not in dup, dup
    assert not [w for w in rep["warnings"] if "same image, audio or text" in w]


def test_a_caption_beside_a_left_out_video_is_not_compared_alone(tmp_path: Path) -> None:
    files = {f"{c}/{c}{i}.mp4": bytes([i, c == "run"]) * 50 for c in ("run", "walk") for i in range(8)}
    files |= {f"{c}/{c}{i}.txt": b"a person outdoors" for c in ("run", "walk") for i in range(8)}
    rep = _shard(_folders(tmp_path / "raw", files), tmp_path / "ds", split=_split3())
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert dup["across_splits"] == 0 and "label_conflicts" not in dup, dup
    assert not [w for w in rep["warnings"] if "is a labelling error" in w]


def test_one_text_of_several_is_not_compared_alone_and_other_members_count() -> None:
    rows = pa.table({"key": ["a", "b", "c", "d"], "split": ["train", "test", "train", "train"],
                     "shard": ["t", "u", "t", "t"],
                     "members": [["a.question.txt", "a.answer.txt"], ["b.question.txt", "b.answer.txt"],
                                 ["c.jpg", "c.npy", "c.cls"], ["d.jpg", "d.npy", "d.cls"]],
                     "sizes": [[20, 3], [21, 3], [50, 9, 1], [50, 9, 1]],
                     "member_crc32": [[1, 7], [2, 7], [5, 8, 3], [5, 6, 4]], "label": [0, 0, 0, 1]})
    out = duplicates_across_splits(rows, label_names=["x", "y"])
    # the two answers "yes" are no item in two splits; c and d share the image but not the features: no whole
    # label conflict (a labelling error), only a shared file
    assert out["across_splits"] == 0 and "label_conflicts" not in out, out
    assert out["shared_label_conflicts"] == 1, out


def test_a_silent_clip_shared_across_class_folders_is_a_placeholder_not_a_labelling_error(tmp_path: Path) -> None:
    files = {}
    for n, c in enumerate(("cat", "dog", "owl")):
        for i in range(4):
            files[f"{c}/{c}{i}.png"] = _png(10 * n + i)
            files[f"{c}/{c}{i}.wav"] = _wav(None) if i < 2 else _wav(10 * n + i)  # a muted camera: one silence
    rep = _shard(_folders(tmp_path / "raw", files), tmp_path / "ds")
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert dup.get("shared_placeholders") == 1 and dup["shared_placeholder_samples"] == 6, dup
    assert "shared_label_conflicts" not in dup, dup
    assert not [w for w in rep["warnings"] if "is a labelling error" in w]
    assert [w for w in rep["warnings"] if "taken for placeholders" in w]


def test_an_image_in_two_class_folders_is_still_a_labelling_error(tmp_path: Path) -> None:
    files = {f"{c}/{c}{i}.png": _png(10 * (c == "dog") + i) for c in ("cat", "dog") for i in range(4)}
    files |= {f"{c}/{c}{i}.wav": _wav(10 * (c == "dog") + i) for c in ("cat", "dog") for i in range(4)}
    files["dog/dog3.png"] = files["cat/cat1.png"]
    rep = _shard(_folders(tmp_path / "raw", files), tmp_path / "ds")
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert dup["shared_label_conflicts"] == 1 and "shared_placeholders" not in dup, dup
    assert [w for w in rep["warnings"] if "is a labelling error" in w]


def test_split_from_does_not_match_new_samples_by_a_placeholder_s_bytes(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    (src / "img").mkdir(parents=True)
    blank = _png(0)
    (src / "img" / "blank.png").write_bytes(blank)
    for i in range(20):
        (src / "img" / f"p{i}.png").write_bytes(_png(i + 1))
    rows = ["key,image,label"] + [f"r{i},img/p{i}.png,{'ab'[i % 2]}" for i in range(20)] + ["r_missing,img/blank.png,a"]
    (src / "v1.csv").write_text("\n".join(rows) + "\n")
    _shard(src / "v1.csv", tmp_path / "v1", split=_split3())
    for i in range(12):  # new rows whose photos are not in yet: copies of the placeholder
        (src / "img" / f"missing_{i}.png").write_bytes(blank)
    rows = rows[:-1] + [f"n{i},img/missing_{i}.png,{'ab'[i % 2]}" for i in range(12)]
    (src / "v2.csv").write_text("\n".join(rows) + "\n")
    rep = _shard(src / "v2.csv", tmp_path / "v2", split=_split3(), split_from=tmp_path / "v1")
    card = idx.load_card(tmp_path / "v2")["split_from"]
    assert card["new"] == 12 and card.get("same_content_placeholders") == 12 and "same_content" not in card, card
    got = Counter(r["split"] for r in idx.load_index(tmp_path / "v2").select(["key", "split"]).to_pylist()
                  if r["key"].startswith("n"))
    assert len(got) > 1, got  # split by the fractions, not all into r_missing's split
    assert [w for w in rep["warnings"] if "a placeholder" in w and "split anew" in w]


def test_a_split_folder_in_another_normalisation_form_is_stripped() -> None:
    from mmdata.shards.writer import _in_class_folder, _outside_split_folder

    nfd, nfc = "te\u0301st", "t\u00e9st"  # the folder on disk in NFD, the split value in NFC
    assert _in_class_folder(f"{nfd}/cat/x1", 0, ["cat"], nfc) == "x1"
    assert _outside_split_folder(f"{nfd}/x1", nfc) == "x1"


def test_blank_texts_are_no_items(tmp_path: Path) -> None:
    files = {f"{c}/{c}{i}.txt": f"{c} review number {i}".encode() for c in ("pos", "neg") for i in range(6)}
    files |= {f"{c}/blank{i}.txt": "\u200b\n".encode() for c in ("pos", "neg") for i in range(3)}
    rep = _shard(_folders(tmp_path / "raw", files), tmp_path / "ds", split=_split3())
    dup = idx.load_card(tmp_path / "ds")["duplicates"]
    assert dup["across_splits"] == 0 and "label_conflicts" not in dup, dup
    assert not [w for w in rep["warnings"] if "same image, audio or text" in w]
