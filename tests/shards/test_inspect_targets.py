"""`mmdata inspect` says up front which named image maps have another size than their image.

A recipe's ``targets: {seg.png: mask}`` moves a per-pixel map beside the image with it; the loader
refuses, sample by sample, a map whose height and width are not the image's (skipped as "refused by
the recipe", or the error with ``on_error="raise"``). Before (2026-12) neither ``mmdata shard`` nor
``mmdata inspect`` said so: the index kept only the image's size. The writer now records each named
image member's displayed size (``named_image_sizes``) and inspect compares it with the image's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.shards.inspect import inspect

#: (image height, width) and seg map (height, width) per sample (None: the sample has no map)
SIZES = {"a0": ((24, 32), (24, 32)), "a1": ((24, 32), (20, 30)), "a2": ((18, 18), (18, 18)),
         "a3": ((24, 32), (32, 24)), "a4": ((24, 32), None), "a5": ((16, 20), (8, 10)), "a6": ((24, 32), (24, 32))}
OTHER = ["a1", "a3", "a5"]


def _write(raw: Path, sizes: dict[str, tuple]) -> Path:
    """A manifest of real PNG images (and JPEG for one) with a ``seg`` column of PNG maps."""
    from PIL import Image

    raw.mkdir(parents=True)
    rows = ["image,seg,label"]
    for i, (key, (hw, seg)) in enumerate(sizes.items()):
        img = f"{key}.jpg" if i == 2 else f"{key}.png"
        Image.fromarray(np.full((*hw, 3), 30 * i, np.uint8)).save(raw / img)
        if seg is not None:
            Image.fromarray(np.full(seg, i % 3, np.uint8)).save(raw / f"{key}_seg.png")
        rows.append(f"{img},{f'{key}_seg.png' if seg is not None else ''},{i % 2}")
    (raw / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return raw / "m.csv"


@pytest.fixture(scope="module")
def seg_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seg")
    mmdata.shard(_write(root / "raw", SIZES), root / "ds", columns={"seg": "seg"}, split="train=1.0", progress=False)
    return root / "ds"


def _target_warnings(rep: dict) -> list[dict]:
    return [w for w in rep["warnings"] if w["kind"] == "target sizes"]


def test_the_index_records_named_image_sizes(seg_ds: Path) -> None:
    rows = {r["key"]: r for r in pq.read_table(seg_ds / "index.parquet").to_pylist()}
    for key, (_, seg) in SIZES.items():
        want = None if seg is None else [{"field": "seg.png", "height": seg[0], "width": seg[1]}]
        assert rows[key]["named_image_sizes"] == want, key


def test_inspect_warns_of_maps_of_another_size_and_the_loader_agrees(seg_ds: Path) -> None:
    rep = inspect(seg_ds)
    with_seg = sum(seg is not None for _, seg in SIZES.values())
    assert rep["named_images"] == {"seg.png": {"samples": with_seg, "other_size": len(OTHER), "no_image": 0,
                                               "unknown": 0, "examples": OTHER}}
    (w,) = _target_warnings(rep)
    msg = w["message"]
    assert f"seg.png: {len(OTHER)} of {with_seg} samples" in msg and "targets:" in msg
    assert all(k in msg for k in OTHER) and "a0" not in msg
    # what the warning says is what the loader does with `targets: {seg.png: mask}`
    recipe = {"targets": {"seg.png": "mask"}, "image": [{"op": "hflip"}]}
    loader = mmdata.loader(seg_ds, 1, recipe=recipe, on_error="skip")
    kept = sorted(k for b in loader for k in b.keys)
    assert kept == sorted(set(SIZES) - set(OTHER)) and loader.skipped == {"refused by the recipe": len(OTHER)}


def test_the_cli_shows_the_warning_and_json_carries_it(seg_ds: Path) -> None:
    from mmdata.cli.main import app

    res = CliRunner().invoke(app, ["inspect", str(seg_ds)])
    assert res.exit_code == 0 and "warning (target sizes)" in res.output and "seg.png" in res.output
    js = json.loads(CliRunner().invoke(app, ["inspect", str(seg_ds), "--json"]).stdout)
    assert _target_warnings(js) == _target_warnings(inspect(seg_ds)) and js["named_images"]["seg.png"]["other_size"] == 3


def test_maps_that_all_match_give_no_warning(tmp_path: Path) -> None:
    same = {k: (hw, hw if seg is not None else None) for k, (hw, seg) in SIZES.items()}
    mmdata.shard(_write(tmp_path / "raw", same), tmp_path / "ds", columns={"seg": "seg"}, progress=False)
    rep = inspect(tmp_path / "ds")
    assert not _target_warnings(rep) and rep["named_images"]["seg.png"]["other_size"] == 0
    plain = tmp_path / "plain"
    mmdata.shard(tmp_path / "raw" / "m.csv", plain, progress=False)  # without --column: no named field
    assert inspect(plain)["named_images"] == {} and not _target_warnings(inspect(plain))


def test_an_index_written_before_the_column_is_inspected_and_says_it_cannot_tell(seg_ds: Path,
                                                                                  tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(seg_ds, old)
    t = pq.read_table(old / "index.parquet")
    pq.write_table(t.drop_columns(["named_image_sizes"]), old / "index.parquet")
    rep = inspect(old)
    with_seg = sum(seg is not None for _, seg in SIZES.values())
    assert rep["named_images"]["seg.png"] == {"samples": with_seg, "other_size": 0, "no_image": 0,
                                              "unknown": with_seg, "examples": []}
    (w,) = _target_warnings(rep)
    assert "does not record" in w["message"] and "seg.png" in w["message"]
    assert mmdata.verify(old)["ok"]

