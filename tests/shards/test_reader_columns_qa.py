"""Reading column-layout datasets (one shard series per field, aligned by key), QA round: a modality
subset keeps what the whole read keeps at a cut series shard; a series member whose size disagrees with
the index (an old copy of a series put back) is damage, not data; losses name the series shard; an
object opened before ``add_modality(replace=True)`` says what changed; ``state_dict()`` in the main
process of a plain DataLoader with workers says it holds no position."""

from __future__ import annotations

import shutil
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.shards.columns import add_modality
from mmdata.testing import make_sample_folder


def _keys(ds: object) -> list[str]:
    return [s.key for s in ds]  # type: ignore[attr-defined]


# -- a series shard cut right after a member, read with a modality subset ------------------------------------


@pytest.fixture()
def cut_text(tmp_path: Path) -> Path:
    """8 samples in one shard; the text series cut right after 000003.txt (000004 has no text)."""
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=8), tmp_path / "ds", layout="columns", maxcount=8,
                 progress=False)
    p = tmp_path / "ds" / "text" / "train-000000.tar"
    with tarfile.open(p) as tf:
        ms = tf.getmembers()
    assert [m.name for m in ms[3:5]] == ["000003.txt", "000005.txt"]
    p.write_bytes(p.read_bytes()[: ms[4].offset])
    return tmp_path / "ds"


@pytest.mark.parametrize("modalities", [None, ["text"], ["label", "text"], ["text", "audio"]])
@pytest.mark.parametrize("decode", [True, False])
def test_a_subset_keeps_the_sample_cut_right_after_its_last_member(cut_text: Path, modalities: list[str] | None,
                                                                    decode: bool) -> None:
    ds = mmdata.open_dataset(cut_text, on_error="skip", modalities=modalities, decode=decode)
    assert _keys(ds) == ["000000", "000001", "000002", "000003", "000004"]
    assert ds.skipped == {"truncated or corrupt shard": 3}, ds.errors


# -- a member whose size disagrees with the index ---------------------------------------------------------------


@pytest.fixture()
def restored_depth(tmp_path: Path) -> Path:
    """A depth series replaced (5-element arrays), then the old copy (2-element arrays) put back."""
    ds = tmp_path / "ds"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4), ds, layout="columns", progress=False)
    for v, n in (("d1", 2), ("d2", 5)):
        (tmp_path / v).mkdir()
        for k in ("000000", "000001"):
            np.save(tmp_path / v / f"{k}.depth.npy", np.full(n, float(n)))
    add_modality(ds, "depth", tmp_path / "d1")
    shutil.copytree(ds / "depth", tmp_path / "bak")
    add_modality(ds, "depth", tmp_path / "d2", replace=True)
    shutil.rmtree(ds / "depth")
    shutil.copytree(tmp_path / "bak", ds / "depth")
    return ds


def test_a_series_member_of_another_size_than_the_index_is_raised(restored_depth: Path) -> None:
    with pytest.raises(ShardError) as err:
        list(mmdata.open_dataset(restored_depth, on_error="raise"))
    msg = str(err.value)
    shard = str(restored_depth / "depth" / "train-000000.tar")
    assert shard in msg and "'000000'" in msg and "000000.depth.npy" in msg, msg
    assert "bytes" in msg and "index" in msg, msg


@pytest.mark.parametrize("decode", [True, False])
def test_a_series_member_of_another_size_than_the_index_is_counted(restored_depth: Path, decode: bool) -> None:
    ds = mmdata.open_dataset(restored_depth, on_error="skip", decode=decode)
    got = [s for s in ds]
    assert [s.key for s in got] == ["000002", "000003"] and not any("depth" in s.fields for s in got)
    assert ds.skipped == {"member size mismatch": 2}, ds.errors
    assert [(shard, key) for shard, key, _ in ds.errors] == [("depth/train-000000.tar", "000000"),
                                                              ("depth/train-000000.tar", "000001")]
    # a selection without the depth series reads the rest as it is
    assert _keys(mmdata.open_dataset(restored_depth, on_error="raise", modalities=["image", "text"])) == [
        "000000", "000001", "000002", "000003"]


def test_a_member_of_another_size_than_the_index_in_the_samples_layout(tmp_path: Path) -> None:
    # the same damage in a samples-layout shard: the mapped path refuses it, the streaming parser did not
    import io

    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4, missing=False), tmp_path / "ds", progress=False)
    p = tmp_path / "ds" / "train-000000.tar"
    out = io.BytesIO()
    with tarfile.open(p) as src, tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()  # type: ignore[union-attr]
            if m.name == "000001.txt":
                data += b" and more"
            m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    p.write_bytes(out.getvalue())
    with pytest.raises(ShardError, match=r"train-000000\.tar.*'000001'.*000001\.txt"):
        list(mmdata.open_dataset(tmp_path / "ds"))
    for decode in (True, False):
        ds = mmdata.open_dataset(tmp_path / "ds", on_error="skip", decode=decode)
        assert _keys(ds) == ["000000", "000002", "000003"] and ds.skipped == {"member size mismatch": 1}
        assert [e[:2] for e in ds.errors] == [("train-000000.tar", "000001")]
    # a selection that leaves the text out does not read it: nothing to refuse
    assert len(_keys(mmdata.open_dataset(tmp_path / "ds", modalities=["image", "label"]))) == 4


# -- losses name the series shard ----------------------------------------------------------------------------


def test_losses_of_a_cut_series_name_the_series_shard(cut_text: Path) -> None:
    ds = mmdata.open_dataset(cut_text, on_error="skip")
    _keys(ds)
    assert {shard for shard, _, _ in ds.errors} == {"text/train-000000.tar"}, ds.errors


# -- an object opened before add_modality(replace=True) --------------------------------------------------------


def test_an_object_opened_before_a_replaced_series_says_the_folder_changed(restored_depth: Path, tmp_path: Path) -> None:
    d = mmdata.open_dataset(restored_depth, on_error="skip")
    (tmp_path / "d3").mkdir()
    np.save(tmp_path / "d3" / "000000.depth.npy", np.zeros(3))
    add_modality(restored_depth, "depth", tmp_path / "d3", replace=True)
    with pytest.raises(ShardError) as err:
        list(d)
    msg = str(err.value)
    assert "changed since it was opened" in msg and "modality added or replaced" in msg and "open it again" in msg, msg
    assert _keys(mmdata.open_dataset(restored_depth, on_error="raise")) == ["000000", "000001", "000002", "000003"]


# -- state_dict() in the main process of a plain DataLoader with workers ------------------------------------------


@pytest.fixture(scope="module", params=["columns", "samples"])
def twelve(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp(request.param)
    mmdata.shard(make_sample_folder(t / "raw", n=12), t / "ds", layout=request.param, maxcount=3, progress=False)
    return t / "ds"


def test_state_dict_under_plain_dataloader_workers_warns(twelve: Path) -> None:
    import torch

    ds = mmdata.open_dataset(twelve, shuffle=True, seed=1, decode=False)
    with pytest.warns(UserWarning, match=r"plain DataLoader with workers.*mmdata\.loader.*StatefulDataLoader.*state_from_positions"):
        for i, _ in enumerate(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)):
            if i == 5:
                ds.state_dict()
                break
    # set_epoch / load_state_dict in this process decide the next iteration: that state is its own again
    ds.load_state_dict({"seed": 1, "epoch": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ds.state_dict()["epoch"] == 3
    # a pass of this process's own: its state is exact, no warning
    ds = mmdata.open_dataset(twelve, shuffle=True, seed=1, decode=False)
    list(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2))
    it = iter(ds)
    next(it)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sum(ds.state_dict()["positions"].values()) == 1


def test_a_member_that_does_not_decode_names_its_series_shard(tmp_path: Path) -> None:
    import io

    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4, missing=False), tmp_path / "ds", layout="columns",
                 progress=False)
    p = tmp_path / "ds" / "image" / "train-000000.tar"
    out = io.BytesIO()
    with tarfile.open(p) as src, tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()  # type: ignore[union-attr]
            dst.addfile(m, io.BytesIO(b"\0" * len(data) if m.name.startswith("000001.") else data))  # same size
    p.write_bytes(out.getvalue())
    ds = mmdata.open_dataset(tmp_path / "ds", on_error="skip")
    assert _keys(ds) == ["000000", "000002", "000003"]
    assert [e[:2] for e in ds.errors] == [("image/train-000000.tar", "000001")], ds.errors
    with pytest.raises(ShardError, match=rf"shard {p}: sample '000001'"):
        list(mmdata.open_dataset(tmp_path / "ds"))
