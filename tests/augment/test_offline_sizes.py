"""`mmdata augment` and member sizes (QA with long 48 kHz audio and large photos): a member the readers
would refuse is not written (an error naming the sample and the limit), and members that grow a lot
(16-bit FLAC written as float WAV, JPEG as PNG) are warned about with the measured ratio."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.augment.offline import augment_dataset, member_growth
from mmdata.errors import ShardError
from mmdata.shards import tario
from mmdata.testing import make_sample_folder

GAIN = {"audio": [{"op": "gain", "p": 1.0, "min_db": 3.0, "max_db": 6.0}]}


@pytest.fixture()
def ds(tmp_path: Path) -> Path:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4, missing=False, audio_seconds=0.5), tmp_path / "ds", progress=False)
    return tmp_path / "ds"


def test_a_member_over_the_readers_limit_is_not_written(ds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tario, "DEFAULT_MAX_MEMBER_BYTES", 10_000)  # a 0.5 s 8 kHz float WAV is 16 kB, the rest smaller
    with pytest.raises(ShardError, match=r"sample '000000_aug0': member 000000_aug0\.wav would be 16,\d+ bytes, more "
                                         r"than the readers read \(max_member_bytes 10,000 bytes\)") as e:
        augment_dataset(ds, tmp_path / "aug", GAIN, progress=False)
    assert "pad_trim" in str(e.value) and "--on-error skip" in str(e.value)
    rep = augment_dataset(ds, tmp_path / "skip", GAIN, progress=False, on_error="skip", keep_original=True)
    assert rep["samples"] == 4 and len(rep["skipped"]) == 4 and "max_member_bytes" in rep["skipped"][0]["reason"]
    rep = augment_dataset(ds, tmp_path / "img", {"image": [{"op": "hflip", "p": 1.0}]}, progress=False)
    assert rep["samples"] == 4 and mmdata.verify(tmp_path / "img")["ok"]  # 16-bit FLAC stays FLAC: under the limit


def test_members_that_grow_are_warned_about_with_the_ratio(ds: Path, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=r"audio members of .*aug are [\d.]+x the source's size: [\d,]+ bytes a sample "
                                         r"\(wav\) against [\d,]+ \(flac\)") as rec:
        rep = augment_dataset(ds, tmp_path / "aug", GAIN, progress=False)
    assert [str(w.message).split(" members")[0] for w in rec if "source's size" in str(w.message)] == ["audio"]
    g = rep["member_growth"]["audio"]
    assert g["ratio"] > 2 and g["formats"] == ["wav"] and g["source_formats"] == ["flac"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # hflip on PNGs: no growth, no warning
        rep = augment_dataset(ds, tmp_path / "flip", {"image": [{"op": "hflip", "p": 1.0}]}, progress=False)
    assert rep["member_growth"]["audio"]["ratio"] == 1.0 and rep["member_growth"]["image"]["formats"] == ["png"]
    assert member_growth(ds, tmp_path / "missing") == {}
