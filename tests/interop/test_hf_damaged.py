"""``mmdata.to_hf`` over damaged media (QA: it returned every row, and reading the bad one later failed with PIL's
``cannot identify image file <_io.BytesIO ...>``, naming neither sample nor shard): each image / audio member is
decoded once as the reader decodes it; ``on_error="raise"`` (default) names shard, sample and member,
``"skip"`` leaves the sample out with a warning and lists it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.testing import make_sample_folder
from mmdata.testing.hostile import header_offsets

pytest.importorskip("datasets")

#: sample -> member whose body is overwritten: a PNG that PIL cannot identify, a FLAC whose frames are junk
DAMAGED = {"000002": "png", "000005": "flac"}


def _junk_bodies(shard: Path) -> int:
    data = bytearray(shard.read_bytes())
    hit = 0
    for off, name in header_offsets(bytes(data)):
        key, _, ext = name.decode().partition(".")
        if DAMAGED.get(key) == ext:
            size = int(bytes(data[off + 124 : off + 136]).split(b"\0", 1)[0].strip(), 8)
            start = off + 512 + (0 if ext == "png" else 42)  # a FLAC keeps its header (fLaC + STREAMINFO)
            data[start : off + 512 + size] = bytes(range(7, 7 + 13)) * ((off + 512 + size - start) // 13) + \
                b"\x01" * ((off + 512 + size - start) % 13)
            hit += 1
    shard.write_bytes(bytes(data))
    return hit


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    t = tmp_path_factory.mktemp("hfdamage")
    mmdata.shard(make_sample_folder(t / "raw", n=8, audio_seconds=0.5), t / "clean", progress=False)
    shutil.copytree(t / "clean", t / "bad")
    assert sum(_junk_bodies(sh) for sh in sorted((t / "bad").glob("train-*.tar"))) == len(DAMAGED)
    return t / "clean", t / "bad"


def test_the_damage_is_what_qa_met(folders: tuple[Path, Path]) -> None:
    from PIL import UnidentifiedImageError

    _, bad = folders
    with pytest.raises(ShardError, match="000005.flac"):  # the reader refuses both
        list(mmdata.open_dataset(bad, keys=["000005"]))
    with pytest.raises(ShardError, match="000002.png"):
        list(mmdata.open_dataset(bad, keys=["000002"]))
    png = next(s for s in mmdata.open_dataset(bad, keys=["000002"], decode=False)).fields["png"]
    import io

    from PIL import Image

    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(png))


def test_raise_names_shard_sample_and_member(folders: tuple[Path, Path], tmp_path: Path) -> None:
    _, bad = folders
    with pytest.raises(ShardError, match=r"shard train-000000\.tar: sample '000002': member 000002\.png: cannot "
                                         r"decode.*on_error='skip'"):
        mmdata.to_hf(bad, "train", cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.arrow"))  # nothing cached


def test_skip_leaves_damaged_samples_out_and_says_so(folders: tuple[Path, Path], tmp_path: Path) -> None:
    clean, bad = folders
    left: list[dict] = []
    with pytest.warns(UserWarning, match=r"left out 2 samples that do not decode.*'000002' in shard "
                                         r"train-000000\.tar \(000002\.png\).*'000005'.*000005\.flac"):
        ds = mmdata.to_hf(bad, "train", cache_dir=tmp_path, on_error="skip", skipped=left)
    assert [(e["key"], e["member"], e["shard"]) for e in left] == [("000002", "000002.png", "train-000000.tar"),
                                                                   ("000005", "000005.flac", "train-000000.tar")]
    assert all("cannot decode" in e["reason"] for e in left)
    assert ds["key"] == [f"{i:06d}" for i in range(8) if f"{i:06d}" not in DAMAGED]
    for row in ds:  # every row left decodes
        assert row["image"].size == (32, 24)
    ref = mmdata.to_hf(clean, "train", cache_dir=tmp_path / "clean")
    keep = [i for i, k in enumerate(ref["key"]) if k not in DAMAGED]
    assert ds.to_list() == ref.select(keep).to_list()
    # a cached conversion warns again, and lists its losses
    again: list[dict] = []
    with pytest.warns(UserWarning, match="left out 2 samples"):
        assert mmdata.to_hf(bad, "train", cache_dir=tmp_path, on_error="skip", skipped=again).num_rows == 6
    assert again == left
    # and does not stand in for a raising conversion
    with pytest.raises(ShardError, match="000002"):
        mmdata.to_hf(bad, "train", cache_dir=tmp_path)


def test_undamaged_output_is_the_same_either_way(folders: tuple[Path, Path], tmp_path: Path) -> None:
    import warnings

    clean, _ = folders
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for undamaged data
        a = mmdata.to_hf(clean, "train", cache_dir=tmp_path / "a")
        b = mmdata.to_hf(clean, "train", cache_dir=tmp_path / "b", on_error="skip", skipped=(left := []))
    assert left == [] and a.num_rows == 8 and a.to_list() == b.to_list()
    (fa,) = (tmp_path / "a").glob("*.arrow")
    (fb,) = (tmp_path / "b").glob("*.arrow")
    assert fa.read_bytes() == fb.read_bytes()


def test_on_error_is_checked(folders: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ShardError, match="on_error must be 'raise' or 'skip'"):
        mmdata.to_hf(folders[0], "train", cache_dir=tmp_path, on_error="warn")
