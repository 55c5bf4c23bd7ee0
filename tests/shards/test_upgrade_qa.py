"""Artifacts of older mmdata read by this one (upgrade QA 2026-12-03).

Shards written before mmdata applied a JPEG's EXIF orientation (2026-12-02) decode turned now, while
their index keeps the stored size: ``verify --deep`` said OK. It now names each such image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

import mmdata


def test_deep_verify_names_images_whose_index_size_predates_exif_orientation(tmp_path: Path) -> None:
    from PIL import Image

    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(3):
        im = Image.fromarray(np.full((20, 40, 3), 60 * i, np.uint8))
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees on display: decodes 40 x 20
        im.save(raw / f"p{i}.jpg", exif=exif)
        (raw / f"p{i}.txt").write_text(f"photo {i}", encoding="utf-8")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert mmdata.verify(tmp_path / "ds", deep=True)["ok"]
    table = pq.read_table(tmp_path / "ds" / "index.parquet")
    h, w = table.column("image_height"), table.column("image_width")
    assert h.to_pylist() == [40] * 3
    old = table.set_column(table.schema.get_field_index("image_height"), "image_height", w) \
        .set_column(table.schema.get_field_index("image_width"), "image_width", h)
    pq.write_table(old, tmp_path / "ds" / "index.parquet")  # the index an older mmdata wrote: the stored 20 x 40
    report = mmdata.verify(tmp_path / "ds", deep=True)
    sized = [p for p in report["problems"] if "image size other than" in p["problem"]]
    assert len(sized) == 3 and sized[0]["expected"] == "20x40 (index.parquet)" and sized[0]["found"].startswith("40x20")
    assert "EXIF orientation" in sized[0]["problem"]
