"""QA39 review fixes (codecs): ``--check decode`` reads an MP3 in one call as the reader does (review codecs #2),
``photo_fields`` checked (a string is one name; unknown names refused naming the fields, review codecs #3), a mono
MP3 decoded straight into its result (review codecs #4)."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata import codecs
from mmdata.errors import ShardError
from mmdata.shards import mediainfo
from mmdata.shards.reader import open_dataset
from mmdata.testing import make_sample_folder
from tests.test_qa39_codecs import _mp3
from tests.test_qa39_photo_fields import _dataset


@pytest.mark.parametrize(("rate", "channels"), [(22050, 1), (44100, 2)])
def test_check_decode_reads_mp3_in_one_call(rate: int, channels: int) -> None:
    """(QA39 review codecs #2) decode_check read MP3 in 65,536-frame blocks: the samples after each boundary were
    wrong (the level / DC checks saw them) and libmpg123 printed part2_3_length errors."""
    data = _mp3(rate, channels)
    whole = sf.read(io.BytesIO(data), always_2d=True, dtype="float32")[0]
    assert len(whole) > 1 << 16
    levels = mediainfo.decode_check("audio", data)
    assert levels.samples == whole.size
    assert levels.mean == pytest.approx(float(whole.sum(dtype=np.float64)) / whole.size, rel=1e-3, abs=1e-9)
    assert levels.full_scale == 0


def test_mono_mp3_decoded_without_a_second_copy() -> None:
    """(QA39 review codecs #4) an MP3 was read into an interleaved buffer and copied: twice the result's memory."""
    data = _mp3(22050, 1, seconds=30.0)
    codecs.decode_audio(data)  # warm up (imports, libsndfile)
    tracemalloc.start()
    try:
        arr = codecs.decode_audio(data)[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = arr.numel() * 4
    assert peak < 1.6 * size, (peak, size)


def test_photo_fields_string_is_one_name(tmp_path) -> None:
    """(QA39 review codecs #3) a bare string was taken as a set of its characters: the view stayed palette indices."""
    ds = open_dataset(_dataset(tmp_path), split="train", photo_fields="image2.gif")
    assert ds.photo_fields == frozenset({"image2.gif"})
    s = next(iter(ds))
    assert tuple(s["image2.gif"].shape) == (3, 24, 24)


def test_photo_fields_unknown_name_refused(tmp_path) -> None:
    """(QA39 review codecs #3) an unknown name (or one without its extension) was accepted silently."""
    path = _dataset(tmp_path)
    with pytest.raises(ShardError, match=r"photo_fields \['image2'\].*'image2\.gif'"):
        open_dataset(path, split="train", photo_fields=["image2"])
    # a name no field has: warned of, naming the fields (a recipe's targets may serve several datasets)
    with pytest.warns(UserWarning, match=r"photo_fields \['view3.gif'\] are not fields.*'image2\.gif'"):
        open_dataset(path, split="train", photo_fields=["view3.gif"])
    with pytest.raises(ShardError, match="photo_fields: expected"):
        open_dataset(path, split="train", photo_fields=[3])
    open_dataset(path, split="train", photo_fields=["image", "image2.gif"])  # the standard image too: fine
    # QA39 review 2 a #2: a recipe listing the view in several formats (one of them a field), or a dataset without
    # named image fields (a blended dataset lacking the view): not warned of
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        open_dataset(path, split="train", photo_fields=["image2.gif", "image2.png", "image2.jpg"])
        plain = make_sample_folder(tmp_path / "plain_raw", n=2)
        mmdata.shard(plain, tmp_path / "plain", progress=False)
        open_dataset(tmp_path / "plain", photo_fields=["image2.gif"])
