"""QA37 third review of the media / preview fixes (8a57c94, 3a36bf6, 9f9de69).

#1: only 0.1% of a float tile's values could lie above 1 before it was read as 0-255, so a 0-1 reflectance tile
with 0.5% cloud pixels at 1.08 decoded black and the warning told it to "rescale to 0-1"; a float class map
0 / 1 / 2 with a single class-2 pixel was read as unit range (classes 1 and 2 merged). #2: an older job's
accumulator made the card say "0 of 0 pixels". #3: a loud clip with one NaN sample was drawn "silent". #4: bare
"GIPHY" / "ImageMagick" comment prefixes hid a person's words. Real TIFFs / GIFs / shards throughout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mmdata.codecs import image_array
from mmdata.shards import mediainfo
from mmdata.shards.mediainfo import identifying_metadata, image_depth
from tests.test_media_qa37 import _gif, _one, float_tiff, shard


def _decode(arr: np.ndarray) -> np.ndarray:
    return image_array(Image.fromarray(arr.astype(np.float32), "F"))


def _cloudy(seed: int, frac: float, size: int = 64) -> np.ndarray:
    """A 0-1 reflectance tile (0.05-0.35) with ``frac`` of its pixels cloud at 1.08 (the reviewer's cloud.sh)."""
    g = np.random.default_rng(seed)
    a = (0.05 + g.random((size, size)) * 0.3).astype(np.float32)
    a.flat[g.choice(a.size, int(round(frac * a.size)), replace=False)] = 1.08
    return a


# ---- #1: the float rule ----------------------------------------------------------------------------------------


def test_reflectance_with_up_to_5_percent_cloud_is_unit_range(tmp_path: Path) -> None:
    for frac in (0.0, 0.001, 0.005, 0.049):  # 0.049: 201 of 4096, under 5%
        a = _cloudy(int(frac * 1000), frac)
        d = _decode(a)
        assert d[a > 1].tolist() == [255] * int(np.count_nonzero(a > 1)), frac  # the clouds clip
        assert 40 < float(d[a <= 1].mean()) < 70, frac  # the rest bright, one scale for every tile (not mean 0)
    heavy = _cloudy(3, 0.06)  # more than 5% above 1: 0-255, as before
    assert _decode(heavy).max() <= 1
    files = {f"{'ab'[i % 2]}/t{i}.tif": float_tiff(_cloudy(i, f)) for i, f in enumerate((0.005, 0.049, 0.0, 0.06))}
    card = shard(tmp_path, files)
    over = _one(card, "read as unit range")
    n5 = int(round(0.049 * 4096))
    assert over.startswith(f"2 float images (of 4) hold values above 1 (at most 5% of each) read as unit range "
                           f"({20 + n5} of 8192 pixels over them, up to 1.08)"), over
    faint = _one(card, "of them above 1, read as 0-255")
    assert faint.startswith("1 float image (of 4) holds values at or under 1.08, more than 5% of them above 1, "
                            "read as 0-255"), faint
    assert "it decodes nearly black (0-1 of 255)" in faint and "fewer such pixels are read bright" in faint
    assert "clip the values above 1 (0-1 data with clouds / highlights)" in faint and "subtract the offset" in faint


def test_whole_number_class_maps_are_0_255_whatever_their_counts() -> None:
    g = np.random.default_rng(0)
    common = g.integers(0, 3, (64, 64)).astype(np.float32)
    rare = g.integers(0, 2, (64, 64)).astype(np.float32)
    rare[0, 0] = 2  # a single class-2 pixel: classes 1 and 2 must stay apart (the reviewer's cls.py)
    for a in (common, rare):
        d = _decode(a)
        assert {c: sorted(set(d[a == c].tolist())) for c in (0, 1, 2)} == {0: [0], 1: [1], 2: [2]}
    assert not image_depth(float_tiff(rare)).over and not image_depth(float_tiff(rare)).faint  # labels: no warning
    offset = (1.05 + g.random((16, 16)) * 0.9).astype(np.float32)  # 1 + reflectance: all above 1
    assert _decode(offset).max() <= 2 and image_depth(float_tiff(offset)).faint


def test_a_saturated_pixel_above_2_is_dim_only_when_the_rest_reads_bright() -> None:
    cloud = _cloudy(1, 0.01, 32)
    cloud.flat[7] = 6.5535  # one saturated pixel: 0-255, and without it the tile (1% cloud) reads bright
    assert image_depth(float_tiff(cloud)).top is not None and _decode(cloud).max() <= 7
    acc = mediainfo.merge_sixteen_bit(None, image_depth(float_tiff(cloud)), "t")
    assert acc.get("dim") and not acc.get("faint")
    offset = (1.05 + np.random.default_rng(2).random((32, 32)) * 0.9).astype(np.float32)
    offset.flat[7] = 6.5535  # without it the tile still is 0-255: faint (values up to 1.95), not dim
    facts = image_depth(float_tiff(offset))
    acc = mediainfo.merge_sixteen_bit(None, facts, "o")
    assert facts.faint and not acc.get("dim") and acc["faint"][:2] == [1, float(offset[offset <= 2].max())]


# ---- #2: an older job's accumulator --------------------------------------------------------------------------------


def test_an_older_accumulator_says_no_zero_pixel_count() -> None:
    old = {"low": [0, 0, []], "clip": [0, None, None, []], "frames": [0, 0, []], "over": [1, 1.2, ["k0"]]}
    (w,) = [w for w in mediainfo.deep_warnings(old, 4) if "unit range (" in w]
    assert "0 of 0" not in w and w.startswith("1 float image (of 4) holds values above 1 (at most 5% of each) read "
                                              "as unit range (up to 1.2) (e.g. k0)"), w


# ---- #3: preview: a NaN sample --------------------------------------------------------------------------------------


def test_a_loud_clip_with_one_nan_is_not_silent() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mmdata.augment.preview import spectrogram

    loud = 0.1 * np.sin(np.arange(16000) * 0.3)
    loud[100] = np.nan
    fig, (a, b) = plt.subplots(2)
    im = spectrogram(a, loud.astype(np.float32), 16000)
    said = [t.get_text() for t in a.texts]
    assert not [t for t in said if "silent" in t or "NaN" in t], said
    assert all(np.isfinite(im.get_clim())) and -30 < im.get_clim()[1] < -10, im.get_clim()  # a -20 dBFS sine's top
    spectrogram(b, np.full(16000, np.nan, np.float32), 16000)
    said = [t.get_text() for t in b.texts]
    assert "all samples NaN" in said and not [t for t in said if "silent" in t], said
    plt.close(fig)


# ---- #4: tool comments ----------------------------------------------------------------------------------------------


def test_giphy_and_imagemagick_words_are_tool_comments_only_in_the_makers_forms() -> None:
    for tool in (b"GIPHY", b"ImageMagick", b"Made with GIPHY", b"Created with ImageMagick",
                 b"GIPHY https://giphy.com/gifs/abc123"):
        assert identifying_metadata(_gif(tool)) == set(), tool
    for person in (b"GIPHY user jane_doe, Leeds", b"ImageMagick portrait of Karl Person"):
        assert identifying_metadata(_gif(person)) == {"comments"}, person
