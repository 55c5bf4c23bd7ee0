"""QA27 A12: Windows saves web images as ``.jfif`` (a JPEG); ``.jpe`` / ``.jif`` are JPEG too. They were
"unknown file type" and left out. Formats we cannot decode (HEIC/HEIF photos, M4A/AAC recordings from an
iPhone or a Mac) get a reason that says so and how to convert, from :func:`mmdata.codecs.unsupported_reason`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mmdata
from mmdata.codecs import IMAGE_EXTS, decode_image, decode_member, field_of, unsupported_reason
from mmdata.testing import image_bytes


@pytest.mark.parametrize("ext", ["jfif", "jpe", "jif", "JFIF"])
def test_jpeg_aliases_are_images(ext: str) -> None:
    data = image_bytes(0, size=(16, 24), fmt="jpg")
    assert ext.lower() in IMAGE_EXTS
    assert field_of(ext) == "image"
    name, arr, _ = decode_member(ext, data)
    assert name == "image"
    assert np.array_equal(np.asarray(arr), np.asarray(decode_image(data)))


def test_a_jfif_folder_shards_and_reads_back(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, ext in enumerate(("jfif", "JFIF", "jpe", "jpg")):
        (raw / f"s{i}.{ext}").write_bytes(image_bytes(i, size=(16, 24), fmt="jpg"))
        (raw / f"s{i}.txt").write_text(f"caption {i}")
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert rep["samples"] == 4, rep["skipped"]
    assert rep["skipped"] == []
    got = {s.key: s for s in mmdata.open_dataset(tmp_path / "ds")}
    assert len(got) == 4
    for s in got.values():
        assert tuple(np.asarray(s["image"]).shape)[-2:] in ((16, 24), (24, 3))


@pytest.mark.parametrize(("name", "hint"), [("IMG_0001.HEIC", "convert it to JPEG"), ("x.heif", "convert it to JPEG"),
                                            ("memo.m4a", "ffmpeg -i memo.m4a memo.flac"),
                                            ("clip.aac", "ffmpeg -i clip.aac clip.flac")])
def test_unsupported_formats_say_how_to_convert(name: str, hint: str) -> None:
    why = unsupported_reason(name)
    assert why is not None and "not supported" in why and hint in why
    assert unsupported_reason("notes.zip") is None and unsupported_reason("a.jfif") is None
