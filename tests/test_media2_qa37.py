"""QA37 review of the media fixes (b33924f, ca0f640): what the float rule, the TIFF refusal and the metadata scan
got wrong.

#1: FLOAT_UNIT_MAX = 2 read every float image at or under 2 as unit range, so tiles whose values all lie in 1-2
(an offset index) decoded white and a float class map 0 / 1 / 2 decoded 0 / 255 / 255, where they decoded as
0-255 before; the card said "those pixels clip" with no count. #2: 3-band float32 / int16 / 12-bit RGB TIFFs
were refused as "multi-band" with Pillow's reason dropped. #3: stock IPTC keywords were counted as EXIF free text
too; ezgif's GIF comment counted as identifying. #5: the outlier warning said "0-0 of 255", and one image got both
the clip and the outlier warning. Real files throughout (Pillow TIFFs / JPEGs / GIFs, the baseline TIFF writer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmdata.codecs import decode_image, image_array
from mmdata.shards import mediainfo
from mmdata.shards.mediainfo import CorruptMedia, identifying_metadata, image_depth, probe_image_py
from tests.test_media_qa37 import _gif, _iptc_jpeg, _one, float_tiff, shard, tiff


def _floats(arr: np.ndarray) -> list[list[int]]:
    return image_array(Image.fromarray(arr.astype(np.float32), "F")).tolist()


# ---- #1: the unit-range reading above 1 only for a few values ------------------------------------------------------


def test_many_values_above_one_are_read_as_0_255_as_before(tmp_path: Path) -> None:
    classes = np.random.default_rng(0).integers(0, 3, (16, 16)).astype(np.float32)  # a class map stored as float
    assert set(np.unique(image_array(Image.fromarray(classes, "F")))) == {0, 1, 2}  # not 0 / 255 / 255
    offset = (1.05 + np.random.default_rng(1).random((16, 16)) * 0.9).astype(np.float32)  # 1 + reflectance
    assert image_array(Image.fromarray(offset, "F")).max() <= 2  # not every pixel 255
    files = {f"{'ab'[i % 2]}/t{i}.tif": float_tiff(1.05 + np.random.default_rng(i).random((16, 16)) * 0.9)
             for i in range(4)}
    files.update({f"{'ab'[i % 2]}/c{i}.tif": float_tiff(classes) for i in range(2)})
    card = shard(tmp_path, files)
    faint = _one(card, "more than 5% of them above 1, read as 0-255")
    assert faint.startswith("4 float images (of 6) hold values at or under 1.9")  # the class maps are not named
    assert "decode nearly black (0-2 of 255)" in faint
    assert not [w for w in card["warnings"] if "read as unit range" in w]  # nothing called clipped
    small = np.full((8, 8), 0.5, np.float32)
    small[0, 0] = 1.08  # one of 64 values (1.6%): a cloud pixel, unit range since QA37's third review (at most 5%)
    assert _floats(small)[0][:2] == [255, 128] and image_depth(float_tiff(small)).over == 1
    small[0, :4] = 1.08  # four of 64 (6%): more than 5%, the 0-255 rule, warned alike
    assert image_depth(float_tiff(small)).faint


def test_a_cloud_pixel_keeps_unit_range_and_the_clipped_pixels_are_counted(tmp_path: Path) -> None:
    files = {}
    for i in range(4):  # geo repro_4: one 1.08 cloud pixel in odd tiles
        r = np.random.default_rng(i).random((16, 16)).astype(np.float32) * 0.6
        if i % 2:
            r[0, 0] = 1.08
        files[f"{'ab'[i % 2]}/t{i}.tif"] = float_tiff(r)
    assert int(decode_image(files["b/t1.tif"]).max()) == 255
    assert int(decode_image(files["b/t1.tif"])[0].flatten()[1:].max()) > 140  # the rest bright, not 0-1 of 255
    over = _one(shard(tmp_path, files), "read as unit range")
    assert over.startswith("2 float images (of 4) hold values above 1 (at most 5% of each) read as unit range (2 of 512 pixels "
                           "over them, up to 1.08)")
    two = np.full((16, 16), 0.5, np.float32)
    two[0, :2] = 1.5  # two of 256 values: under 5%, unit range (it was 0-255 at a 0.1% limit: QA37 third review)
    assert _floats(two)[0][:3] == [255, 255, 128]
    two[:2] = 1.5  # 32 of 256 (12.5%): the 0-255 rule
    assert _floats(two)[0][:1] + _floats(two)[2][:1] == [2, 1]


def test_an_older_accumulators_over_entry_is_read() -> None:
    old = {"low": [0, 0, []], "clip": [0, None, None, []], "frames": [0, 0, []], "over": [1, 1.2, ["k0"]]}
    new = mediainfo.merge_sixteen_bit(None, mediainfo.DepthFacts("float", 0.1, 1.5, 1, None, 0, 100, over=1), "k1")
    both = mediainfo.combine_sixteen_bit([old, new])
    assert both["over"] == [2, 1.5, 1, 100, ["k0", "k1"]]


# ---- #5: one warning per image, no "0-0 of 255" ---------------------------------------------------------------------


def test_a_saturated_dark_tile_gets_one_warning_without_0_0(tmp_path: Path) -> None:
    files = {}
    for i in range(2):
        r = np.random.default_rng(i).random((32, 32)) * 0.5
        r.flat[5] = 1000.0
        files[f"{'ab'[i]}/t{i}.tif"] = float_tiff(r)
    card = shard(tmp_path, files)
    dim = _one(card, "under the 0-255 rule")
    assert "decode black (0 of 255, those pixels excepted)" in dim and "0-0 of 255" not in dim
    assert not [w for w in card["warnings"] if "reader maps" in w]


# ---- #2: an RGB TIFF Pillow cannot open is not "multi-band" ---------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_an_rgb_tiff_pillow_cannot_open_names_its_sample_type(dtype: type) -> None:
    with pytest.raises(CorruptMedia) as e:
        probe_image_py(tiff(np.full((8, 8, 3), 3, dtype)))
    msg = str(e.value)
    assert "multi-band" not in msg
    kind = np.dtype(dtype).name
    assert msg.startswith(f"a TIFF of 3 {kind} samples per pixel (photometric RGB) that Pillow does not open (")
    assert "Error" in msg  # Pillow's reason, e.g. UnidentifiedImageError: cannot identify image file
    with pytest.raises(CorruptMedia, match="^a multi-band TIFF \\(5 samples per pixel"):  # past colour + alpha
        probe_image_py(tiff(np.zeros((8, 8, 5), np.float32)))


# ---- #3: IPTC keywords once, under iptc; tool comments in GIFs --------------------------------------------------------


def test_stock_keywords_count_once_and_gif_tool_comments_not_at_all(tmp_path: Path) -> None:
    assert identifying_metadata(_iptc_jpeg((25, b"sunset"), (25, b"beach"))) == {"iptc"}
    assert identifying_metadata(_gif(b"Created with ezgif.com GIF maker")) == set()
    assert identifying_metadata(_gif(b"Photo by Karl Person, Berlin")) == {"comments"}
    card = shard(tmp_path, {"a/p.jpg": _iptc_jpeg((25, b"sunset"), (25, b"beach")),
                            "b/g.gif": _gif(b"Created with ezgif.com GIF maker")})
    (w,) = [w for w in card["warnings"] if "identifying metadata" in w]
    assert "IPTC-IIM" in w and "free text" not in w and "GIF comments (" not in w
