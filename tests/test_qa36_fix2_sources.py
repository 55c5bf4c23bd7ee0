"""QA36 review of cb7db11 / 8ae76d1 (second fix, ``sources``).

F1 / F2: the numbered-frames rule grouped ordinary datasets (Kaggle Dogs vs Cats ``cat/cat.0.jpg``, camera exports
``IMG.0001.jpg``, speech ``spk1.001.wav``, takes ``take1.1.wav``, versioned ``v1.2.0.png``) into one split unit per
"clip" and emptied val / test: now only numbered IMAGES beside a clip's own audio / text sample are grouped, very
likely frames without one are warned of only, and grouping that could empty a split does not happen. F4: the
re-keying warning says an earlier version's keys change. F5: a PNG keyword holding a value is not shown. F3: the
14-bit advice for images with a few saturated pixels says it is for scans, and that dark photos can ignore it.
Real JPEG / PNG / WAV files throughout.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image, PngImagePlugin

import mmdata
from mmdata.shards import mediainfo
from mmdata.shards.sources import discover


def _jpg(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8, 3)).astype(np.uint8)).save(path)


def _wav(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.random.default_rng(seed).standard_normal(800)).astype(np.float32), 16000)


def _shard(src: Path, out: Path, split: str = "train=0.8,val=0.1,test=0.1", **kw) -> tuple[dict, list[str]]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        rep = mmdata.shard(src, out, split=split, progress=False, **kw)
    return rep, [str(w.message) for w in got]


def _frames_said(said: list[str]) -> list[str]:
    return [w for w in said if "numbered frames" in w]


def _dogs_vs_cats(root: Path, flat: bool = False) -> None:
    for a in ("cat", "dog"):
        for i in range(50):
            _jpg(root / ("" if flat else a) / f"{a}.{i}.jpg", hash((a, i)) % 10_000)


@pytest.mark.parametrize("flat", [False, True])
def test_dogs_vs_cats_names_split_as_before(tmp_path: Path, flat: bool) -> None:
    _dogs_vs_cats(tmp_path / "dvc", flat)
    rep, said = _shard(tmp_path / "dvc", tmp_path / "out")
    assert rep["splits"] == {"train": 80, "val": 10, "test": 10}, said
    assert not _frames_said(said) and not any("is empty" in w for w in said), said
    assert all(r.group is None for r in discover(tmp_path / "dvc").records)


def test_camera_export_is_not_grouped(tmp_path: Path) -> None:
    for c in ("beach", "city"):
        for i in range(1, 51):
            _jpg(tmp_path / "cam" / c / f"IMG.{i:04d}.jpg", hash((c, i)) % 10_000)
    rep, said = _shard(tmp_path / "cam", tmp_path / "out")
    assert rep["splits"] == {"train": 80, "val": 10, "test": 10}, said
    assert not any("is empty" in w for w in said), said
    # one base per folder: no frame warning either (a camera's numbering, not clips)
    assert not _frames_said(said), said


def test_speech_utterances_are_neither_grouped_nor_called_frames(tmp_path: Path) -> None:
    for s in range(6):
        for u in range(1, 6):
            _wav(tmp_path / "speech" / f"spk{s}" / f"spk{s}.{u:03d}.wav", 10 * s + u)
            (tmp_path / "speech" / f"spk{s}" / f"spk{s}.{u:03d}.txt").write_text(f"utterance {u}")
    found = discover(tmp_path / "speech")
    assert all(r.group is None for r in found.records)
    assert not _frames_said(found.warnings), found.warnings
    rep, said = _shard(tmp_path / "speech", tmp_path / "out", split="train=0.6,val=0.2,test=0.2")
    assert rep["splits"] == {"train": 18, "val": 6, "test": 6}
    assert not _frames_said(said), said


def test_takes_beside_a_transcript_are_not_frames(tmp_path: Path) -> None:
    for c in range(10):
        d = tmp_path / "takes" / f"c{c % 2}"
        _wav(d / f"take{c}.1.wav", c)
        _wav(d / f"take{c}.2.wav", 100 + c)
        (d / f"take{c}.txt").write_text("the transcript")
    found = discover(tmp_path / "takes")
    assert all(r.group is None for r in found.records) and not _frames_said(found.warnings), found.warnings


def test_versioned_names_split_as_before(tmp_path: Path) -> None:
    for c in range(2):
        for i in range(50):
            _jpg(tmp_path / "ver" / f"cls{c}" / f"v1.2.{i}.png", 100 * c + i)
    rep, said = _shard(tmp_path / "ver", tmp_path / "out")
    assert rep["splits"] == {"train": 80, "val": 10, "test": 10}, said
    assert not _frames_said(said) and not any("is empty" in w for w in said), said


def _clips(root: Path, n: int, frames: int = 4, audio: bool = True) -> None:
    for j in range(n):
        for i in range(frames):
            _jpg(root / f"clip{j}.{i:03d}.jpg", 100 * j + i)
        if audio:
            _wav(root / f"clip{j}.wav", j)


def test_clips_beside_their_audio_are_grouped_and_said(tmp_path: Path) -> None:
    _clips(tmp_path / "src", 10)
    rep, said = _shard(tmp_path / "src", tmp_path / "out")
    (w,) = _frames_said(said)
    assert w.startswith("50 samples of 10 clips look like the numbered frames") and "kept in one split" in w
    d = pd.read_parquet(tmp_path / "out" / "index.parquet")
    assert d.groupby(d.source_key.str.split(".").str[0])["split"].nunique().max() == 1
    assert set(d.split) == {"train", "val", "test"}


def test_subtitle_text_is_a_companion_too(tmp_path: Path) -> None:
    root = tmp_path / "src"
    _clips(root, 4, audio=False)
    for j in range(4):
        (root / f"clip{j}.txt").write_text("a line of the subtitles")
    found = discover(root)
    assert {r.group for r in found.records} == {f"clip{j}" for j in range(4)}
    assert any("kept in one split" in w for w in _frames_said(found.warnings))


def test_grouping_that_could_empty_a_split_does_not_happen(tmp_path: Path) -> None:
    _clips(tmp_path / "src", 2)
    found = discover(tmp_path / "src")
    assert all(r.group is None for r in found.records)
    (w,) = _frames_said(found.warnings)
    assert "were not grouped by clip: 2 clips would leave a split empty" in w
    rep, said = _shard(tmp_path / "src", tmp_path / "out")
    assert all(rep["splits"][s] for s in ("train", "val", "test")), rep


def test_very_likely_frames_without_audio_are_warned_not_grouped(tmp_path: Path) -> None:
    _clips(tmp_path / "src", 3, audio=False)
    found = discover(tmp_path / "src")
    assert all(r.group is None for r in found.records)
    (w,) = _frames_said(found.warnings)
    assert w.startswith("12 samples of 3 clips may be the numbered frames of a clip")
    assert "They were not grouped" in w and "--group-by folder" in w and "nor its audio" not in w
    assert "kept in one split" not in w
    # a single numbered base, or unpadded numbers: nothing said
    for extra in tmp_path.glob("src/clip[12].*"):
        extra.unlink()
    assert not _frames_said(discover(tmp_path / "src").warnings)


def test_group_by_folder_wins(tmp_path: Path) -> None:
    for c in ("a", "b", "c"):
        _clips(tmp_path / "src" / c, 2)
    found = discover(tmp_path / "src", group_by="folder")
    assert {r.group for r in found.records} == {"a", "b", "c"}
    (w,) = _frames_said(found.warnings)
    assert "Their split is their folder's (--group-by folder)" in w


# ---- F4: re-keying says an earlier version's keys change ---------------------------------------------------------


def _site(tmp_path: Path, site: str) -> None:
    raw = tmp_path / "raw" / site
    raw.mkdir(parents=True)
    with open(raw / "manifest.csv", "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["key", "image", "label"])
        for i in range(4):
            _jpg(raw / f"{i:04d}.png", ord(site) * 10 + i)
            wr.writerow([f"{i:04d}", f"{i:04d}.png", "ab"[i % 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw / "manifest.csv", tmp_path / "data" / site, progress=False)


def test_rekeying_warning_says_earlier_keys_change(tmp_path: Path) -> None:
    _site(tmp_path, "A")
    _site(tmp_path, "B")
    rep, said = _shard(str(tmp_path / "data" / "*" / "*.tar"), tmp_path / "ALL", split=None)
    w = next(w for w in said if "repeat across the tar folders" in w)
    assert "an earlier version's keys" in w and "--split-from" in w and "by content" in w


# ---- F5: PNG keywords holding a value ---------------------------------------------------------------------------


def _png_text(chunks: dict[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in chunks.items():
        info.add_text(k, v)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def test_a_keyword_holding_a_value_is_counted_not_shown() -> None:
    data = _png_text({"Patient John Smith 1970-01-01": "x", "Comment": "y", "ID 12345678": "z"})
    keys: set[str] = set()
    assert mediainfo.identifying_metadata(data, keys) == {"text_chunks"}
    said = mediainfo.text_chunks_what(sorted(keys))
    assert "Comment" in said and "2 other keywords" in said, said
    assert "Smith" not in said and "1970" not in said and "12345678" not in said
    assert "Smith" not in json.dumps(sorted(keys)) and "12345678" not in json.dumps(sorted(keys))
    assert mediainfo.png_keyword(b"Creation Time") == "Creation Time"
    assert mediainfo.png_keyword(b"Patient John Smith 1970-01-01") is None
    one: set[str] = set()
    mediainfo.identifying_metadata(_png_text({"John Smith born 1970": "x"}), one)
    assert mediainfo.text_chunks_what(sorted(one)).endswith("keys: 1 other keyword)")


# ---- F3: 14-bit advice on images with saturated pixels -------------------------------------------------------------


def test_saturated_pixels_advice_is_for_scans() -> None:
    night = np.random.default_rng(0).integers(0, 9000, (100, 100)).astype(np.uint16)
    night.flat[:5] = 65535
    buf = io.BytesIO()
    Image.fromarray(night).save(buf, format="PNG")
    acc = mediainfo.merge_sixteen_bit(None, mediainfo.image_depth(buf.getvalue()), "night")
    w = mediainfo.sixteen_bit_warning(acc, 1)
    assert "rescale (min(v << 2, 65535)" in w
    assert "scans whose value range is known" in w and "stay at 65535" in w
    assert "a photo that is simply dark" in w and "can ignore this" in w
