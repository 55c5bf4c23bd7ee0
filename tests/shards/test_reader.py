"""open_dataset: decoding, exactly-once over workers and ranks, order, resume, foreign shards, bad input."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from collections import Counter
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as tmp_mp
from torch.utils.data import DataLoader

import mmdata
from mmdata.errors import ShardError
from mmdata.shards.reader import ShardDataset
from mmdata.testing import audio_bytes, image_bytes, make_sample_folder
from tests.procs_helpers import rendezvous, spawn_ranks


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reader")
    raw = make_sample_folder(root / "raw", n=24)
    np.save(raw / "000000.depth.npy", np.arange(4, dtype=np.float32))
    mmdata.shard(raw, root / "ds", maxcount=4, progress=False)
    return root / "ds"


def _tar(path: Path, members: list[tuple[str, bytes]], gz: bool = False) -> Path:
    with tarfile.open(path, "w:gz" if gz else "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_decodes_every_modality(ds: Path) -> None:
    samples = list(mmdata.open_dataset(ds))
    assert len(samples) == 24
    s = samples[0]
    assert s["image"].dtype == torch.uint8 and s["image"].shape == (3, 24, 32)
    assert s["audio"].dtype == torch.float32 and s["audio"].shape == (1, 2000) and s.sample_rate == 8000
    assert s["text"].startswith("a small") and s["label"] == 0
    assert np.array_equal(s["depth"], np.arange(4, dtype=np.float32))
    assert "audio" not in samples[3] and "text" not in samples[4]  # missing stays absent
    assert s.meta["shard"] == "train-000000.tar" and s.meta["position"] == 0


def test_modalities_selection_and_required(ds: Path) -> None:
    only = list(mmdata.open_dataset(ds, modalities=["text", "label"]))
    assert all(set(s.modalities) <= {"text", "label"} for s in only) and len(only) == 24
    with pytest.raises(ShardError, match=r"train-000000.tar.*'000003'.*required modality 'audio'"):
        list(mmdata.open_dataset(ds, required=["audio"]))
    d = mmdata.open_dataset(ds, required=["audio"], on_error="skip")
    assert len(list(d)) == 18 and d.skipped == {"missing required modality": 6}


@pytest.mark.parametrize("shards_fewer", [False, True])
def test_exactly_once_with_dataloader_workers(tmp_path: Path, ds: Path, shards_fewer: bool) -> None:
    path = ds
    if shards_fewer:  # one shard, two workers: sample-level striding
        mmdata.shard(make_sample_folder(tmp_path / "raw", n=9), tmp_path / "one", progress=False)
        path = tmp_path / "one"
    dataset = mmdata.open_dataset(path, shuffle=True, seed=1)
    loader = DataLoader(dataset, batch_size=None, num_workers=2)
    keys = [s.key for s in loader]
    assert len(keys) == len(set(keys)) == (9 if shards_fewer else 24)
    readers = Counter(s.meta["reader"] for s in DataLoader(dataset, batch_size=None, num_workers=2))
    assert set(readers) == {0, 1}


def _ddp_worker(rank: int, path: str, init_method: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=init_method, rank=rank, world_size=2)
    try:
        dataset = mmdata.open_dataset(path, shuffle=True, seed=5)
        keys = [s.key for s in DataLoader(dataset, batch_size=None, num_workers=2)]
        Path(out, f"rank{rank}.txt").write_text("\n".join(keys))
    finally:
        torch.distributed.destroy_process_group()


def test_exactly_once_across_ranks_and_workers(tmp_path: Path, ds: Path) -> None:
    spawn_ranks(_ddp_worker, args=(str(ds), rendezvous(tmp_path), str(tmp_path)))
    r0 = Path(tmp_path, "rank0.txt").read_text().split()
    r1 = Path(tmp_path, "rank1.txt").read_text().split()
    assert not set(r0) & set(r1) and len(r0) + len(r1) == 24 and len(set(r0 + r1)) == 24


def test_order_is_function_of_seed_and_epoch(ds: Path) -> None:
    def order(seed: int, epoch: int) -> list[str]:
        return [s.key for s in mmdata.open_dataset(ds, shuffle=True, seed=seed, epoch=epoch, decode=False)]

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1) and order(1, 0) != order(2, 0)
    assert sorted(order(1, 1)) == sorted(order(1, 0))
    d = mmdata.open_dataset(ds, shuffle=True, seed=1)
    d.set_epoch(1)
    assert [s.key for s in d] == order(1, 1)


@pytest.mark.parametrize("shuffle", [False, True])
def test_state_dict_resume_midpoint(ds: Path, shuffle: bool) -> None:
    full = [s.key for s in mmdata.open_dataset(ds, shuffle=shuffle, seed=2, epoch=3)]
    d = mmdata.open_dataset(ds, shuffle=shuffle, seed=2, epoch=3)
    it = iter(d)
    head = [next(it).key for _ in range(10)]
    state = d.state_dict()
    assert state["positions"] == {0: 10} and state["epoch"] == 3
    fresh = mmdata.open_dataset(ds, shuffle=shuffle, seed=2)
    fresh.load_state_dict(state)
    rest = [s.key for s in fresh]
    assert head + rest == full
    # the resume applies once; the next pass is the whole next epoch (epochs advance by themselves)
    assert [s.key for s in fresh] == [s.key for s in mmdata.open_dataset(ds, shuffle=shuffle, seed=2, epoch=4)]


@pytest.mark.parametrize("decode", [True, False])
def test_resume_after_skipped_samples_is_exactly_once(ds: Path, decode: bool) -> None:
    """Positions count the samples the reader consumed, skipped ones included: a resume after a skip
    neither repeats nor loses a sample (sample 000003 has no audio and is skipped)."""
    kw = {"required": ["audio"], "on_error": "skip", "decode": decode}
    whole = mmdata.open_dataset(ds, **kw)
    full = [(s.key, s.meta.get("skipped")) for s in whole]
    d = mmdata.open_dataset(ds, **kw)
    it = iter(d)
    head = [(s.key, s.meta.get("skipped")) for s in islice(it, 5)]
    assert "000003" not in dict(head) and d.skipped == {"missing required modality": 1}
    assert d.state_dict()["skipped"] == {0: {"missing required modality": 1}}
    fresh = mmdata.open_dataset(ds, **kw)
    fresh.load_state_dict(d.state_dict())
    # the resume passes over 000003 uncounted: the saved count carries on (each later sample's record too)
    assert head + [(s.key, s.meta.get("skipped")) for s in fresh] == full
    assert fresh.skipped == whole.skipped == {"missing required modality": 6}
    _ = list(fresh)  # the next epoch counts its own losses from 0
    assert fresh.skipped == {"missing required modality": 6}


@pytest.mark.parametrize("modalities", [None, ["text", "label"]])
def test_raw_index_read_equals_streaming_parse(ds: Path, modalities: list[str] | None) -> None:
    """decode=False through the index-guided whole-shard read gives the same samples and bytes as the
    streaming tar parser on the same shards (bare paths, no index); resume and workers stay exact."""
    def raw(d: ShardDataset) -> list[tuple[str, dict[str, bytes]]]:
        return [(s.key, dict(s.fields)) for s in d]

    fast = raw(mmdata.open_dataset(ds, decode=False, modalities=modalities))
    slow = raw(mmdata.open_dataset(sorted(str(p) for p in ds.glob("train-*.tar")), decode=False, modalities=modalities))
    assert fast == slow and len(fast) == 24 and all(isinstance(v, bytes) for _, f in fast for v in f.values())
    if modalities:
        assert all(set(f) <= {"txt", "cls"} for _, f in fast)
    d = mmdata.open_dataset(ds, decode=False, modalities=modalities)
    it = iter(d)
    head = [next(it).key for _ in range(9)]
    fresh = mmdata.open_dataset(ds, decode=False, modalities=modalities)
    fresh.load_state_dict(d.state_dict())
    assert head + [s.key for s in fresh] == [k for k, _ in fast]
    dl = DataLoader(mmdata.open_dataset(ds, decode=False, modalities=modalities), batch_size=None, num_workers=2)
    assert Counter(s.key for s in dl) == Counter(k for k, _ in fast)


def test_raw_read_unmaps_when_stopped(ds: Path) -> None:
    """An in-order raw read stopped early (or finished) leaves no mapping of any shard behind."""
    import gc

    def shard_maps() -> int:
        return sum(str(ds) in line for line in Path("/proc/self/maps").read_text().splitlines())

    d = mmdata.open_dataset(ds, decode=False)
    assert [s.key for s in d] == [s.key for s in mmdata.open_dataset(ds)]  # same order as decoded
    assert shard_maps() == 0
    it = iter(d)
    first = [next(it).key for _ in range(5)]  # inside shard 2 of 6
    assert shard_maps() >= 1
    it.close()
    del it
    gc.collect()
    assert shard_maps() == 0
    assert first == [s.key for s in mmdata.open_dataset(ds, decode=False)][:5]


def test_reading_does_not_import_pandas(ds: Path) -> None:
    """pyarrow imports pandas on its first conversion of Python or numpy values; a DataLoader worker
    forked for each epoch would pay that import (seconds) every epoch. The reader converts nothing."""
    import subprocess
    import sys

    code = ("import os, sys; os.environ['RANK'], os.environ['WORLD_SIZE'] = '1', '2'; import mmdata\n"
            f"d = mmdata.open_dataset({str(ds)!r}, decode=False, shuffle=True)\n"
            "n = sum(1 for _ in d) + sum(1 for _ in mmdata.open_dataset(d.root, split='train'))\n"
            "print(n, d.samples_per_reader(2), 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split("\n")[0] == "24 [12, 12] False", out.stdout + out.stderr


def test_foreign_webdataset_writer(tmp_path: Path) -> None:
    import webdataset as wds

    pattern = str(tmp_path / "wds-%06d.tar")
    with wds.ShardWriter(pattern, maxcount=3, verbose=0) as sink:
        for i in range(7):
            sink.write({"__key__": f"s{i:03d}", "png": image_bytes(i), "flac": audio_bytes(i), "txt": f"t{i}", "cls": str(i % 2)})
    samples = list(mmdata.open_dataset(str(tmp_path / "wds-{000000..000002}.tar")))
    assert [s.key for s in samples] == [f"s{i:03d}" for i in range(7)]
    assert samples[1]["label"] == 1 and samples[1]["text"] == "t1" and samples[1]["image"].shape == (3, 24, 32)
    assert len(list(mmdata.open_dataset(str(tmp_path / "wds-*.tar")))) == 7
    assert len(list(mmdata.open_dataset(f"file://{tmp_path}/wds-000000.tar"))) == 3


def test_foreign_plain_tar_prefixes_and_gzip(tmp_path: Path) -> None:
    members = [("a/b/x1.png", image_bytes(1)), ("a/b/x1.txt", b"hello"), ("a/c/x1.txt", b"other"), ("a/c/x1.cls", b"2")]
    for gz in (False, True):
        path = _tar(tmp_path / ("p.tar.gz" if gz else "p.tar"), members, gz=gz)
        samples = list(mmdata.open_dataset(path))
        assert [s.key for s in samples] == ["a/b/x1", "a/c/x1"]
        assert samples[0]["text"] == "hello" and samples[1]["label"] == 2
    assert len(list(mmdata.open_dataset([tmp_path / "p.tar", tmp_path / "p.tar.gz"]))) == 4


def test_fsspec_memory_url() -> None:
    import fsspec

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("k1.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    with fsspec.open("memory://mm/shard-0.tar", "wb") as f:
        f.write(buf.getvalue())
    assert [s["text"] for s in mmdata.open_dataset("memory://mm/shard-0.tar")] == ["hi"]


def test_pickle_refused_unless_allowed(tmp_path: Path) -> None:
    path = _tar(tmp_path / "p.tar", [("k1.pyd", pickle.dumps({"a": 1})), ("k1.txt", b"x")])
    with pytest.raises(ShardError, match=r"p.tar.*'k1'.*pickle"):
        list(mmdata.open_dataset(path))
    d = mmdata.open_dataset(path, on_error="skip")
    assert list(d) == [] and d.skipped == {"pickle member refused": 1}
    assert next(iter(mmdata.open_dataset(path, allow_pickle=True)))["pyd"] == {"a": 1}


@pytest.mark.parametrize("member,data,reason", [
    ("k2.png", b"\x89PNG broken", "corrupt image"),
    ("k2.flac", b"fLaC nonsense", "corrupt audio"),
    ("k2.txt", b"\xff\xfe\xfa", "non-UTF-8 text"),
])
def test_corrupt_members_raise_or_skip(tmp_path: Path, member: str, data: bytes, reason: str) -> None:
    path = _tar(tmp_path / "bad.tar", [("k1.txt", b"ok"), (member, data), ("k3.txt", b"ok")])
    with pytest.raises(ShardError, match=r"bad.tar.*'k2'"):
        list(mmdata.open_dataset(path))
    for mode in ("skip", "warn"):
        d = mmdata.open_dataset(path, on_error=mode)
        assert [s.key for s in d] == ["k1", "k3"] and d.skipped == {reason: 1}
        assert d.errors[0][:2] == (str(path), "k2")


def test_truncated_shard(tmp_path: Path, ds: Path) -> None:
    data = (ds / "train-000001.tar").read_bytes()
    bad = tmp_path / "trunc.tar"
    bad.write_bytes(data[:6000])  # inside the second sample (000005.flac)
    with pytest.raises(ShardError, match="trunc.tar: truncated"):
        list(mmdata.open_dataset(bad))
    d = mmdata.open_dataset(bad, on_error="skip")
    got = list(d)
    # the complete first sample is kept; the cut one is counted (what followed the cut is not in the file)
    assert [s.key for s in got] == ["000004"] and d.skipped == {"truncated shard": 1}


def test_truncated_shard_in_dataset_counts_every_lost_sample(tmp_path: Path, ds: Path) -> None:
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(ds, copy)
    data = (copy / "train-000001.tar").read_bytes()
    (copy / "train-000001.tar").write_bytes(data[:3000])
    d = mmdata.open_dataset(copy, on_error="skip")
    keys = [s.key for s in d]
    # cut inside the first sample: all 4 samples of the shard are lost, and counted (was: 1)
    assert len(keys) == 20 and not {"000004", "000005", "000006", "000007"} & set(keys)
    assert sum(d.skipped.values()) == 4
    assert {k for _, k, _ in d.errors} == {"000004", "000005", "000006", "000007"}


def test_path_escape_member_refused(tmp_path: Path) -> None:
    path = _tar(tmp_path / "esc.tar", [("../evil.txt", b"x")])
    with pytest.raises(ShardError, match="escaping path"):
        list(mmdata.open_dataset(path))


def test_skipped_counts_surface_from_workers(tmp_path: Path) -> None:
    members = []
    for i in range(6):
        members.append((f"k{i}.txt", b"\xff" if i == 2 else b"fine"))
    path = _tar(tmp_path / "w.tar", members)
    d = mmdata.open_dataset(path, on_error="skip")
    metas = [s.meta for s in DataLoader(d, batch_size=None, num_workers=2)]
    assert len(metas) == 5
    assert max((m.get("skipped", {}).get("non-UTF-8 text", 0) for m in metas), default=0) == 1


def test_collate_batch_from_reader(ds: Path) -> None:
    b = mmdata.collate(list(mmdata.open_dataset(ds))[:5])
    assert b["image"].shape == (5, 3, 24, 32) and b.present["audio"].tolist() == [True, True, True, False, True]
    assert b["tokens"].shape[0] == 5 and b.lengths["audio"].tolist()[3] == 0


def test_decode_threads_and_image_hint(tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=10, image_fmt="jpg"), tmp_path / "ds", maxcount=4, progress=False)
    inline = list(mmdata.open_dataset(tmp_path / "ds", shuffle=True, seed=1, decode_threads=1))
    threaded = list(mmdata.open_dataset(tmp_path / "ds", shuffle=True, seed=1, decode_threads=3))
    assert [s.key for s in inline] == [s.key for s in threaded]  # order does not depend on threads
    for a, b in zip(inline, threaded):
        assert a.modalities == b.modalities
        assert all(torch.equal(a[m], b[m]) for m in ("image", "audio") if m in a)
    hinted = list(mmdata.open_dataset(tmp_path / "ds", image_max_size=(12, 16)))
    shapes = {tuple(s["image"].shape) for s in hinted if "image" in s}
    assert shapes == {(3, 12, 16)}  # 24x32 JPEGs DCT-scaled by 1/2: the smallest size >= (12, 16)
    loader_batch = next(iter(mmdata.loader(tmp_path / "ds", 4, image_max_size=(12, 16), modalities=["image"])))
    assert tuple(loader_batch["image"].shape[-2:]) == (12, 16)  # the loader passes the hint to the reader


def test_loader_decodes_jpeg_scaled_when_the_recipe_resizes_first(tmp_path: Path) -> None:
    """A recipe whose normalize stage resizes first lets the reader decode JPEGs DCT-scaled (the
    issue-14 draft mode): same output shapes, pixels within a few levels of the full decode."""
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=8, image_fmt="jpg"), tmp_path / "ds", maxcount=4, progress=False)
    recipe = {"normalize": {"image": [{"op": "to_rgb"}, {"op": "resize", "size": [12, 16], "side": "exact"}]}}
    hinted = mmdata.loader(tmp_path / "ds", 8, recipe=recipe, modalities=["image"], shuffle=False)
    full = mmdata.loader(tmp_path / "ds", 8, recipe=recipe, modalities=["image"], shuffle=False, image_max_size=None)
    assert hinted.source.image_max_size == (12, 16) and full.source.image_max_size is None
    a, b = next(iter(hinted)), next(iter(full))
    assert a["image"].shape == b["image"].shape == (8, 3, 12, 16)
    diff = (a["image"].float() - b["image"].float()).abs()
    assert 0 < diff.mean() < 8  # decoded at half size, then resized: close to, not the same as, full size
    crop_first = {"normalize": {"image": [{"op": "center_crop", "size": [12, 16]}, {"op": "resize", "size": 8}]}}
    assert mmdata.loader(tmp_path / "ds", 8, recipe=crop_first).source.image_max_size is None


def _change_second_header(shard: Path, good: bytes, header: int, column: int) -> None:
    """Write ``good`` with one byte of the second member's header name changed (checksum kept valid)."""
    data = bytearray(good)
    data[header + column] = ord("x")
    data[header + 148 : header + 156] = b"%06o\0 " % (sum(data[header : header + 148]) + 256 + sum(data[header + 156 : header + 512]))
    shard.write_bytes(bytes(data))


def test_index_guided_read_refuses_a_shard_whose_headers_disagree_with_the_index(tmp_path: Path) -> None:
    """The whole-shard read is taken only when every header says what the index says: a member name
    changed anywhere in its 100 bytes (also after the longest indexed name) makes the reader fall back
    to the streaming parser, which reads what the headers say, not the index's idea of it."""
    from mmdata.shards.reader import _ShardIndex
    from mmdata.shards.tario import indexed_members

    mmdata.shard(make_sample_folder(tmp_path / "raw", n=6), tmp_path / "ds", maxcount=6, progress=False)
    shard = tmp_path / "ds" / "train-000000.tar"
    plan = _ShardIndex(tmp_path / "ds", "train").plan(shard.name)
    assert plan is not None and plan.names.shape[1] < 100
    assert indexed_members(str(shard), plan.names, plan.sizes, plan.offsets, plan.size_fields) is not None
    good = shard.read_bytes()
    for column in (0, plan.names.shape[1] + 3):  # inside the indexed width, and after it
        _change_second_header(shard, good, int(plan.offsets[1]), column)
        assert indexed_members(str(shard), plan.names, plan.sizes, plan.offsets, plan.size_fields) is None, column
        ds = mmdata.open_dataset(tmp_path / "ds", decode=False, on_error="skip")
        keys = [s.key for s in ds]
        if column == 0:  # another name: the streaming parser reports the sample that lost its member
            assert "000000" not in keys and sum(ds.skipped.values()) >= 1, (keys, ds.skipped)
        else:  # bytes after the name's NUL: tar ignores them, so does the streaming parser
            assert keys == [f"{i:06d}" for i in range(6)] and not ds.skipped
    shard.write_bytes(good)


def test_index_is_read_once_per_process_and_a_rewritten_dataset_is_read_afresh(tmp_path: Path) -> None:
    """Every fresh reader of a dataset shares one parsed index (and its shard plans) in a process;
    a dataset written again in the same folder (new ``index.parquet``) is never served stale."""
    mmdata.shard(make_sample_folder(tmp_path / "raw_a", n=8), tmp_path / "ds", maxcount=4, progress=False)
    first, second = mmdata.open_dataset(tmp_path / "ds", decode=False), mmdata.open_dataset(tmp_path / "ds", decode=False)
    assert first._shard_index() is second._shard_index()
    assert [s.key for s in first] == [f"{i:06d}" for i in range(8)]
    # another dataset with other samples replaces this one file by file (as a re-run writer would)
    raw_b = make_sample_folder(tmp_path / "raw_b", n=6)
    for p in sorted(raw_b.iterdir()):
        p.rename(p.with_name("b" + p.name))
    mmdata.shard(raw_b, tmp_path / "other", maxcount=4, progress=False)
    for p in sorted((tmp_path / "other").iterdir()):
        p.replace(tmp_path / "ds" / p.name)
    fresh = mmdata.open_dataset(tmp_path / "ds", decode=False)
    assert fresh._shard_index() is not first._shard_index()
    assert [s.key for s in fresh] == [f"b{i:06d}" for i in range(6)]


def test_forked_workers_start_with_the_parents_index(tmp_path: Path) -> None:
    """open_dataset reads the index (and plans the shards) in the process that opens it, so the
    DataLoader workers forked for every epoch do not read it again: they read the same samples even
    when index.parquet is gone after the open."""
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=12), tmp_path / "ds", maxcount=3, progress=False)
    dataset = mmdata.open_dataset(tmp_path / "ds", decode=False)
    (tmp_path / "ds" / "index.parquet").rename(tmp_path / "index.parquet")
    ctx = tmp_mp.get_context("fork")
    for _epoch in range(2):
        keys = sorted(s.key for s in DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context=ctx))
        assert keys == [f"{i:06d}" for i in range(12)]


def test_a_shard_changed_after_a_verified_read_is_checked_again(tmp_path: Path) -> None:
    """The header checks of the whole-shard read are skipped only while the shard file is the one
    verified before (same inode, size, modification and change times): a shard rewritten after a
    read is checked again and falls back to the streaming parser."""
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=6), tmp_path / "ds", maxcount=6, progress=False)
    shard = tmp_path / "ds" / "train-000000.tar"
    keys = [f"{i:06d}" for i in range(6)]
    for _ in range(2):  # the second read takes the verified shortcut
        assert [s.key for s in mmdata.open_dataset(tmp_path / "ds", decode=False)] == keys
    plan = mmdata.open_dataset(tmp_path / "ds")._shard_index().plan(shard.name)
    assert plan.memo.get("verified") is not None
    _change_second_header(shard, shard.read_bytes(), int(plan.offsets[1]), 0)
    ds = mmdata.open_dataset(tmp_path / "ds", decode=False, on_error="skip")
    assert "000000" not in [s.key for s in ds] and sum(ds.skipped.values()) >= 1, ds.skipped


# ---- QA round 2: misspelt modality names, a shard listed twice ------------------------------------------
def test_unknown_modality_names_are_an_error_naming_the_fields(ds: Path) -> None:
    with pytest.raises(ShardError, match=r"'images'.*choose from.*'image'") as info:
        mmdata.open_dataset(ds, modalities=["images", "label"])
    assert str(ds) in str(info.value) and "'label'" not in str(info.value).split("choose from")[0]
    with pytest.raises(ShardError, match=r"'imgae'.*choose from"):
        mmdata.loader(ds, 4, modalities=["imgae", "label"])
    assert {"depth", "label"} >= set(next(iter(mmdata.open_dataset(ds, modalities=["depth", "label"]))).modalities)


def test_modalities_of_bare_shards_are_not_checked(tmp_path: Path) -> None:
    path = _tar(tmp_path / "b.tar", [("k0.txt", b"hi"), ("k0.cls", b"1")])
    assert [list(s.modalities) for s in mmdata.open_dataset(path, modalities=["texts", "label"])] == [["label"]]


def test_a_shard_listed_twice_is_read_once_with_a_warning(tmp_path: Path, ds: Path) -> None:
    path = _tar(tmp_path / "b.tar", [("k0.txt", b"hi"), ("k1.txt", b"ho")])
    for twice in ([path, path], [str(path), str(tmp_path / "." / "b.tar")], [path, str(tmp_path / "*.tar")]):
        with pytest.warns(UserWarning, match=r"b\.tar.*more than once"):
            d = mmdata.open_dataset(twice)
        assert [s.key for s in d] == ["k0", "k1"]


def test_a_standard_modality_the_dataset_lacks_is_missing_data_not_an_error(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4)
    for f in raw.glob("*.flac"):
        f.unlink()
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    samples = list(mmdata.open_dataset(tmp_path / "ds", modalities=["image", "audio", "label"]))
    assert len(samples) == 4 and all("audio" not in s for s in samples)
    card = tmp_path / "ds" / "dataset.json"  # an older card without "modalities": the index says
    c = json.loads(card.read_text())
    c.pop("modalities", None)
    card.write_text(json.dumps(c))
    with pytest.raises(ShardError, match=r"\['imagez'\]; choose from \['image', 'label', 'text'\]"):
        mmdata.open_dataset(tmp_path / "ds", modalities=["imagez"])
