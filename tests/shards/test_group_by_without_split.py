"""QA round 33 (docsread #2): ``--group-by`` without ``--split`` changed nothing (every sample went to train)
and said nothing, while the user believed they had patient-disjoint splits."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image

import mmdata


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i, 2 * i, 3)).save(buf, "PNG")
    return buf.getvalue()


def _shard(src: Path, out: Path, **kw: object) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mmdata.shard(src, out, progress=False, **kw)


def _patients(root: Path) -> Path:
    for p in range(4):
        for i in range(2):
            (root / f"P{p}").mkdir(parents=True, exist_ok=True)
            (root / f"P{p}" / f"scan{i}.png").write_bytes(_png(10 * p + i))
    return root


def test_group_by_folder_without_split_is_warned(tmp_path: Path) -> None:
    src = _patients(tmp_path / "Patients")
    rep = _shard(src, tmp_path / "ds", labels_from_folders=False, group_by="folder")
    assert rep["splits"] == {"train": 8}
    said = [w for w in rep["warnings"] if w.startswith("--group-by has no effect without --split")]
    assert said and "(all 8 samples without a split of their own went to train)" in said[0], rep["warnings"]


def test_group_by_column_without_split_is_warned_and_with_split_is_not(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = ["image,label,spk"]
    for i in range(8):
        (raw / f"i{i}.png").write_bytes(_png(i))
        lines.append(f"i{i}.png,{'ab'[i % 2]},s{i % 4}")
    (raw / "m.csv").write_text("\n".join(lines) + "\n")
    rep = _shard(raw / "m.csv", tmp_path / "ds", group_by="spk")
    assert any(w.startswith("--group-by has no effect without --split (all 8 samples") for w in rep["warnings"])
    rep = _shard(raw / "m.csv", tmp_path / "ds2", group_by="spk", split={"train": 0.5, "test": 0.5})
    assert not any("--group-by has no effect" in w for w in rep["warnings"])
    # a split column gives every sample its split: --group-by changes nothing, but nothing went to train by default
    (raw / "m.csv").write_text("\n".join([lines[0] + ",split"] + [f"{ln},{'train' if i < 4 else 'test'}"
                                                                   for i, ln in enumerate(lines[1:])]) + "\n")
    rep = _shard(raw / "m.csv", tmp_path / "ds3", group_by="spk")
    assert not any("--group-by has no effect" in w for w in rep["warnings"])
