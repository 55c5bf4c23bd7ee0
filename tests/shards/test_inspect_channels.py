"""`mmdata inspect` reports the channels the reader gives, not the file's bands.

The index's ``image_channels`` is the file's band count (a CMYK JPEG: 4, an ``LA`` PNG: 2), which is
what Pillow says of the file; the reader's decode (:func:`mmdata.codecs.image_array`) turns every
mode but the greyscale ones into RGB. Before (2026-12), inspect counted those bands: a CMYK JPEG
showed as 4 channels while every batch held 3. Each mode here is a real file, decoded by the reader.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.shards.inspect import inspect, reader_channels

#: (file stem, Pillow mode, format) — every mode the task names, in a format that keeps it
FILES = (("cmyk", "CMYK", "JPEG"), ("cmyk_tif", "CMYK", "TIFF"), ("grey16", "I;16", "PNG"), ("int32", "I", "TIFF"),
         ("float", "F", "TIFF"), ("bilevel", "1", "PNG"), ("grey_alpha", "LA", "PNG"), ("pal_alpha", "PA", "TIFF"),
         ("ycbcr", "YCbCr", "TIFF"), ("rgb", "RGB", "PNG"), ("rgba", "RGBA", "PNG"), ("grey", "L", "JPEG"),
         ("pal", "P", "PNG"))
EXT = {"JPEG": "jpg", "PNG": "png", "TIFF": "tif"}


def _image(mode: str, fmt: str, seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def modes_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("modes")
    raw = root / "raw"
    raw.mkdir()
    for i, (stem, mode, fmt) in enumerate(FILES):
        (raw / f"{stem}.{EXT[fmt]}").write_bytes(_image(mode, fmt, i))
    rep = mmdata.shard(raw, root / "ds", progress=False)
    assert rep["skipped_counts"].get("members", 0) == 0
    return root / "ds"


def test_the_files_keep_their_modes_in_the_index(modes_ds: Path) -> None:
    rows = pq.read_table(modes_ds / "index.parquet").to_pylist()
    got = {r["source_key"]: (r["image_mode"], r["image_channels"]) for r in rows}
    assert got["cmyk"] == ("CMYK", 4) and got["grey_alpha"] == ("LA", 2) and got["pal_alpha"] == ("PA", 2)
    assert {got[stem][0] for stem, _, _ in FILES} == {mode for _, mode, _ in FILES}


def test_inspect_counts_the_channels_the_reader_decodes(modes_ds: Path) -> None:
    decoded: dict[str, int] = {}
    for s in mmdata.open_dataset(modes_ds, split="train", modalities=["image"]):
        decoded[s.key] = int(s["image"].shape[0])
    rows = pq.read_table(modes_ds / "index.parquet").to_pylist()
    mode_of = {r["key"]: r["image_mode"] for r in rows}
    assert len(decoded) == len(FILES)
    for key, c in decoded.items():  # the rule inspect uses is the decoder's, mode by mode
        assert reader_channels(mode_of[key]) == c, mode_of[key]
    want: dict[str, int] = {}
    for c in decoded.values():
        want[str(c)] = want.get(str(c), 0) + 1
    got = inspect(modes_ds)["image"]["channels"]
    assert got == want and "4" not in got and "2" not in got
    assert sorted(s.key for s in mmdata.open_dataset(modes_ds, split="train", modalities=["image"])
                  if s["image"].shape[0] == 1) == sorted(k for k, m in mode_of.items() if m in ("I;16", "I", "F", "L", "1", "LA"))


def _without(ds: Path, *names: str) -> None:
    t = pq.read_table(ds / "index.parquet")
    pq.write_table(t.drop_columns(list(names)), ds / "index.parquet")


def test_older_indexes_stay_readable(modes_ds: Path, tmp_path: Path) -> None:
    """An index written before ``image_mode`` / ``image_channels`` has no channel counts; one that lost
    only the modes (edited by hand) counts what its bands tell: 3 or 4 bands decode to RGB, 2 (grey + alpha) to grey, while one
    band may be greyscale (1) or a palette (3), so those are left out."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(modes_ds, old)
    _without(old, "image_mode", "image_channels")
    rep = inspect(old)
    assert rep["image"]["channels"] == {} and rep["image"]["count"] == len(FILES)
    edited = tmp_path / "edited"
    shutil.copytree(modes_ds, edited)
    _without(edited, "image_mode")
    bands = [r["image_channels"] for r in pq.read_table(edited / "index.parquet").to_pylist()]
    # 2 bands: grey + alpha (LA, 1 channel since QA38 documents #6; a PA image, rare, decodes to 3)
    assert inspect(edited)["image"]["channels"] == {"3": sum(b >= 3 for b in bands), "1": sum(b == 2 for b in bands)}
