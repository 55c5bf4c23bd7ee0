"""QA36 defects of folder / manifest / tar discovery (``mmdata/shards/sources.py``).

video #1: a flat frame sequence (``cat0.000.jpg`` ... ``cat0.007.jpg`` + ``cat0.wav``) became one sample per
frame, silently, and ``--split`` scattered a clip's frames across train / val / test: now warned (example files,
counts, the manifest fix) and each clip's samples go to one split. ROS stems with a dotted timestamp keep their
meaning. video #6 / timeseries #7: video, subtitles, ``.npz`` and ``.csv`` files are refused with what to do
instead. sites #2: several datasets' tars whose keys repeat (every site numbers its samples ``0001``) are sharded
into one dataset, each key prefixed with its folder's name; a key repeated within one folder is still refused
with a way out that works. Real JPEG / PNG / WAV / .npy files and real tars throughout.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.errors import MMDataError
from mmdata.shards.sources import discover


def _jpg(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (16, 16, 3)).astype(np.uint8)).save(path)


def _wav(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.random.default_rng(seed).standard_normal(1600)).astype(np.float32), 16000)


def _clips(root: Path, frames: int = 8) -> None:
    """Two class folders of 4 clips each: ``<clip>.000.jpg`` ... and ``<clip>.wav`` side by side."""
    for c, name in enumerate(("cat", "dog")):
        for j in range(4):
            k = f"{name}{j}"
            for i in range(frames):
                _jpg(root / name / f"{k}.{i:03d}.jpg", 1000 * c + 100 * j + i)
            _wav(root / name / f"{k}.wav", 10 * c + j)


def test_flat_frame_sequences_are_warned_and_each_clip_stays_in_one_split(tmp_path: Path) -> None:
    _clips(tmp_path / "src")
    with pytest.warns(UserWarning) as got:
        rep = mmdata.shard(tmp_path / "src", tmp_path / "out", split="train=0.5,val=0.25,test=0.25", progress=False)
    said = [str(w.message) for w in got if "numbered frames" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in got]
    w = said[0]
    assert w.startswith("72 samples of 8 clips look like the numbered frames of a clip")
    assert "'cat/cat0.000', 'cat/cat0.001', ... 'cat/cat0.007'" in w and "beside sample 'cat/cat0' holding wav" in w
    assert "one split" in w and "--column frame1=frame1" in w and "'Audio-visual clips'" in w
    card = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert any("numbered frames" in x for x in card["warnings"])
    assert sum(rep["splits"].values()) == 72
    d = pd.read_parquet(tmp_path / "out" / "index.parquet")
    clip = d.source_key.str.split(".").str[0]
    assert d.groupby(clip)["split"].nunique().max() == 1  # was: every clip in 2 or 3 splits
    assert set(d.split) == {"train", "val", "test"}


def test_the_advised_manifest_gives_one_sample_per_clip(tmp_path: Path) -> None:
    _clips(tmp_path / "src", frames=3)
    rows = []
    for wav in sorted((tmp_path / "src").rglob("*.wav")):
        frames = sorted(wav.parent.glob(wav.stem + ".[0-9]*.jpg"))
        rows.append({"key": wav.stem, "label": wav.parent.name, "audio": f"{wav.parent.name}/{wav.name}",
                     "image": f"{wav.parent.name}/{frames[0].name}",
                     **{f"frame{i}": f"{wav.parent.name}/{f.name}" for i, f in enumerate(frames[1:], 1)}})
    with open(tmp_path / "src" / "clips.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    found = discover(tmp_path / "src" / "clips.csv", columns={"frame1": "frame1", "frame2": "frame2"})
    assert len(found.records) == 8
    assert sorted(found.records[0].members) == ["frame1.jpg", "frame2.jpg", "jpg", "wav"]
    assert not any("numbered frames" in w for w in found.warnings)


def test_frame_sequences_without_audio_or_class_folders(tmp_path: Path) -> None:
    # QA36 review F1 / F2: without a clip's audio or text beside them, numbered images are never grouped (Kaggle's
    # cat.0.jpg ..., IMG.0001.jpg); zero-padded numbers of several bases are only warned of
    for j in range(3):
        for i in range(4):
            _jpg(tmp_path / "src" / f"clip{j:03d}.{i:03d}.jpg", 10 * j + i)
    found = discover(tmp_path / "src")
    assert len(found.records) == 12
    assert {r.group for r in found.records} == {None}
    assert any(w.startswith("12 samples of 3 clips may be the numbered frames") and "not grouped" in w
               for w in found.warnings)
    # --group-by folder: the folder is the group, the clips are still named
    found = discover(tmp_path / "src", group_by="folder")
    assert any("numbered frames" in w for w in found.warnings)


def test_dotted_names_that_are_no_frame_sequence_are_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "src"
    _jpg(root / "v1.2.jpg", 0)  # one dotted name
    _jpg(root / "scan.1.jpg", 1)
    _jpg(root / "scan.2.jpg", 2)  # two numbered, no sample 'scan': not a run of frames
    for i, s in enumerate(("f_1701234567.120", "f_1701234567.990", "f_1701234567.995")):  # ROS timestamps
        _jpg(root / f"{s}.jpg", 10 + i)
        np.save(root / f"{s}.npy", np.zeros((4, 3), np.float32))
    for i, s in enumerate(("g_1701234567.120", "g_1701234567.990")):  # arrays only: one sample each (QA35)
        np.save(root / f"{s}.npy", np.zeros((4, 3), np.float32))
    found = discover(root)
    assert not any("numbered frames" in w for w in found.warnings), found.warnings
    assert all(r.group is None for r in found.records)
    by_key = {r.source_key: sorted(r.members) for r in found.records}
    assert by_key["f_1701234567.990"] == ["jpg", "npy"] and by_key["g_1701234567.120"] == ["npy"]


@pytest.mark.parametrize(("name", "data", "said"), [
    ("k.mp4", b"\x00\x00\x00\x1cftypisom" + bytes(100), "a video file (video is not decoded): extract its frames"),
    ("k.MKV", b"\x1aE\xdf\xa3" + bytes(60), "frame1, frame2"),
    ("k.srt", b"1\n00:00:00,000 --> 00:00:00,500\nHello\n", "subtitles (not read: their cue numbers and timing lines"),
    ("k.vtt", b"WEBVTT\n\n00:00.000 --> 00:00.500\nHello\n", "convert them to a .txt"),
])
def test_video_and_subtitle_files_are_refused_with_what_to_do(tmp_path: Path, name: str, data: bytes,
                                                              said: str) -> None:
    _wav(tmp_path / "src" / "c" / "k.wav", 0)
    (tmp_path / "src" / "c" / name).write_bytes(data)
    found = discover(tmp_path / "src")
    entry = next(s for s in found.skipped if s["source"] == f"c/{name}")
    assert entry["reason"].startswith("unknown file type, ") and said in entry["reason"]
    # a manifest's cell: the same reason instead of the list of 34 extensions
    (tmp_path / "src" / "m.csv").write_text(f"audio,extra\nc/k.wav,c/{name}\n")
    found = discover(tmp_path / "src" / "m.csv")
    reasons = [s["reason"] for s in found.skipped]
    assert any(said in r and "no known media extension" not in r for r in reasons), reasons


def test_npz_and_csv_windows_are_refused_with_what_to_do(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    (root / "c").mkdir(parents=True)
    np.savez(root / "c" / "x.npz", ecg=np.ones(5, "f4"), fs=np.array(250))
    np.save(root / "c" / "y.npy", np.ones(5, "f4"))
    found = discover(root)
    reason = next(s["reason"] for s in found.skipped if s["source"] == "c/x.npz")
    assert reason.startswith("unknown file type, a NumPy .npz archive") and "'<stem>.<name>.npy'" in reason
    walk = tmp_path / "raw7" / "walk"
    walk.mkdir(parents=True)
    for i in range(3):
        (walk / f"w{i}.csv").write_text("timestamp,ax,ay,az\n0,1,2,3\n1,4,5,6\n")
    with pytest.raises(MMDataError, match=r"no samples found .*3 × unknown file type, a CSV / TSV table \(no sample file\).*save it as .npy"):
        mmdata.shard(tmp_path / "raw7", tmp_path / "out7", progress=False)


def _site(tmp_path: Path, site: str, names: list[str]) -> Path:
    raw = tmp_path / "raw" / site
    raw.mkdir(parents=True)
    rows = []
    for i in range(6):
        k = f"{i + 1:04d}"
        _jpg(raw / f"{k}.png", ord(site) * 10 + i)
        rows.append({"key": k, "image": f"{k}.png", "label": names[i % 2], "site": site})
    with open(raw / "manifest.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw / "manifest.csv", tmp_path / "data" / site, meta=["site"], progress=False)
    return tmp_path / "data" / site


def test_datasets_sharing_keys_are_sharded_together_keyed_by_folder(tmp_path: Path) -> None:
    _site(tmp_path, "A", ["cat", "dog"])
    _site(tmp_path, "B", ["Cat", "dog"])
    with pytest.warns(UserWarning) as got:
        rep = mmdata.shard(str(tmp_path / "data" / "*" / "*.tar"), tmp_path / "ALL", progress=False)
    assert sum(rep["splits"].values()) == 12
    said = next(str(w.message) for w in got if "repeat across the tar folders" in str(w.message))
    assert said.startswith("6 sample keys repeat across the tar folders (e.g. '0001' in ")
    assert "starts with its folder's name ('A', 'B'; e.g. 'B/0001')" in said
    d = pd.read_parquet(tmp_path / "ALL" / "index.parquet")
    assert sorted(d.source_key) == [f"{s}/{i:04d}" for s in "AB" for i in range(1, 7)]
    metas = {s.key: s["json"]["site"] for s in mmdata.open_dataset(tmp_path / "ALL")}
    assert sorted(metas.values()) == ["A"] * 6 + ["B"] * 6  # each sample keeps its metadata
    # the merged dataset is one folder: what train / ablate read
    assert len(list(mmdata.open_dataset(tmp_path / "ALL"))) == 12


def test_datasets_without_shared_keys_keep_their_keys(tmp_path: Path) -> None:
    _site(tmp_path, "A", ["cat", "dog"])
    b = _site(tmp_path, "B", ["cat", "dog"])
    for t in b.glob("*.tar"):  # B's keys made distinct from A's: nothing to prefix
        t.unlink()
    (tmp_path / "data" / "B").rename(tmp_path / "gone")
    mmdata.shard(str(tmp_path / "data" / "*" / "*.tar"), tmp_path / "ALL", progress=False)
    d = pd.read_parquet(tmp_path / "ALL" / "index.parquet")
    assert sorted(d.source_key) == [f"{i:04d}" for i in range(1, 7)]


def test_a_key_repeated_within_one_folder_is_refused_with_a_way_out(tmp_path: Path) -> None:
    a = _site(tmp_path, "A", ["cat", "dog"])
    tar = next(a.glob("*.tar"))
    (a / "train-000001.tar").write_bytes(tar.read_bytes())  # a shard copied twice
    with pytest.raises(MMDataError, match=r"is in two shards.*folder of its own.*prefixed with their folder's name"):
        mmdata.shard(str(a / "*.tar"), tmp_path / "ALL", progress=False)
