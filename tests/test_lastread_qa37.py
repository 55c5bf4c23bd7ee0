"""QA round 37, the last read of the round's diff: a float image with negative values is read as 0-255, as before
the round (NDVI in -1..1 is not unit range: already-sharded datasets must not change values on upgrade); the shard
path's per-pixel-map rule (`writer._maps_image`) does not import torch; evaluate's in-sample rows read an index
without `member_digest` (every index written before 2026-12-07)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mmdata.codecs import float_unit_range, follows_image, image_array


def test_negative_float_images_read_as_0_255_as_before() -> None:
    ndvi = np.array([[-0.8, -0.2, 0.3, 0.9]], np.float32)
    assert image_array(Image.fromarray(ndvi)).tolist() == [[0, 0, 0, 1]]
    assert not float_unit_range(ndvi.ravel())
    assert image_array(Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32))).tolist() == [[0, 128, 255]]


def test_the_map_rule_on_the_shard_path_imports_no_torch() -> None:
    code = ("import sys; import mmdata.shards.writer as w; "
            "r = (w._maps_image((64, 48), (32, 24, 1)), w._maps_image((64, 48), (30, 75, 3))); "
            "print(r, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "(True, False) False", out
    assert follows_image((64, 48), (16, 12)) and not follows_image((64, 48), (5, 4))


def test_in_sample_rows_of_an_index_without_digests(tmp_path: Path) -> None:
    from mmdata.train.score_run import _media_members

    rows = {"members": [["a.png", "a.cls"], ["b.png"]], "sizes": [[10, 1], [12]], "member_crc32": [[7, 8], [9]]}
    assert _media_members(rows, 1) == [(12, 9, 0, None)]
    rows["member_digest"] = [[5, 6], [4]]
    assert _media_members(rows, 0) == [(10, 7, 0, 5)]


def test_diff_of_an_older_index_against_a_newer_keeps_the_fast_path(tmp_path: Path, monkeypatch) -> None:
    """An index written before member_digest against one written after: the unchanged samples are told apart by
    names, sizes and CRC-32s without reading their rows (the digest string, empty on one side, is not compared)."""
    import shutil
    import warnings

    import pyarrow.parquet as pq

    import mmdata
    from mmdata.shards import diff as diff_mod
    from mmdata.shards import index as idx

    raw = tmp_path / "raw"
    for c in ("a", "b"):
        (raw / c).mkdir(parents=True)
        for i in range(6):
            rng = np.random.default_rng(10 * i + (c == "b"))
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(raw / c / f"{c}{i}.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, tmp_path / "new", progress=False)
    shutil.copytree(tmp_path / "new", tmp_path / "old")
    table = pq.read_table(tmp_path / "old" / idx.INDEX)
    pq.write_table(table.drop_columns([idx.MEMBER_DIGEST]), tmp_path / "old" / idx.INDEX)
    fetched: list[str] = []
    real = diff_mod._Version.fetch

    def spy(self, matches):  # the real fetch, counting the rows it is asked to read
        fetched.extend(matches)
        return real(self, matches)

    monkeypatch.setattr(diff_mod._Version, "fetch", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = diff_mod.diff(tmp_path / "old", tmp_path / "new")
    assert d["counts"]["unchanged"] == 12 and d["counts"]["changed"] == 0, d["counts"]
    assert fetched == [], fetched
