"""Folders of foreign (bare) WebDataset shards: splits by tar name and by Energon's split.yaml, hidden folders,
keys repeated across shards, webdataset's ``.index`` member and ``::`` URL lists, and the decode pool
(QA round 25, report B: D2, D5, D8, D12, D13; report A: 3, 4)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import threading
import warnings
from pathlib import Path

import pytest
from torch.utils.data import DataLoader

import mmdata
from mmdata.errors import ShardError
from mmdata.shards.reader import bare_folder_splits
from mmdata.testing import image_bytes


def _tar(path: Path, keys: list[str], extra: dict[str, bytes] | None = None) -> Path:
    """A bare shard as webdataset writes one: per key a .txt and a .cls member (plus ``extra``), adjacent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tf:
        for i, key in enumerate(keys):
            members = {"cls": str(i % 3).encode(), "txt": f"text of {key}".encode(), **(extra or {})}
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def _keys(prefix: str, n: int) -> list[str]:
    return [f"{prefix}_{i:03d}" for i in range(n)]


@pytest.fixture
def split_folder(tmp_path: Path) -> Path:
    """train-000.tar, train-001.tar (4 + 4 samples) and val-000.tar (3), as a webdataset user names them."""
    d = tmp_path / "sp"
    _tar(d / "train-000.tar", _keys("a", 4))
    _tar(d / "train-001.tar", _keys("b", 4))
    _tar(d / "val-000.tar", _keys("v", 3))
    return d


def test_a_folder_of_split_named_tars_reads_the_split_asked_for(split_folder: Path) -> None:
    """B-D2: split= selects the tars named ``<split>-``; the DataModule's loaders then differ."""
    assert [s.key for s in mmdata.open_dataset(split_folder, split="val")] == _keys("v", 3)
    assert [s.key for s in mmdata.open_dataset(split_folder)] == _keys("a", 4) + _keys("b", 4)
    assert sum(len(b) for b in mmdata.loader(split_folder, 2, split="train", num_workers=2)) == 8
    assert sum(len(b) for b in mmdata.loader(split_folder, 2, split="val", num_workers=2)) == 3
    two = mmdata.open_dataset(split_folder, split=["val", "train"])  # a list of splits: in the order given
    assert [s.key for s in two] == _keys("v", 3) + _keys("a", 4) + _keys("b", 4)
    assert bare_folder_splits(split_folder) == ["train", "val"]


def test_a_split_no_tar_is_named_for_is_refused_naming_the_tars_and_the_remedy(split_folder: Path) -> None:
    with pytest.raises(ShardError, match=r"no tar is named for split 'nope'.*named for the splits \['train', 'val'\]"
                                         r".*pattern or a list.*Tars: train-000.tar, train-001.tar, val-000.tar"):
        mmdata.open_dataset(split_folder, split="nope")
    with pytest.raises(ShardError, match="split 'test'"):
        mmdata.loader(split_folder, 2, split="test")
    # only one split named: the default reads train, never the val tars under it
    (split_folder / "train-000.tar").unlink()
    (split_folder / "train-001.tar").unlink()
    with pytest.raises(ShardError, match=r"no tar is named for split 'train'.*splits \['val'\]"):
        mmdata.open_dataset(split_folder)


def test_a_folder_of_tars_with_no_split_names_reads_all_for_the_default_split_only(tmp_path: Path) -> None:
    d = tmp_path / "wds"
    for i in range(3):
        _tar(d / f"shard-{i:03d}.tar", _keys(f"s{i}", 2))
    assert len(list(mmdata.open_dataset(d))) == 6  # as before: the default split is every tar
    assert len(list(mmdata.open_dataset(d, split="train"))) == 6
    with pytest.raises(ShardError, match=r"split 'val'.*carry no split name: the default split='train' reads all"):
        mmdata.open_dataset(d, split="val")
    assert bare_folder_splits(d) == ["train"]
    assert bare_folder_splits(tmp_path / "wds" / "shard-000.tar") is None  # a tar, not a folder


def test_tars_named_for_no_split_beside_split_named_ones_are_warned_of(split_folder: Path) -> None:
    _tar(split_folder / "extra.tar", _keys("x", 2))
    with pytest.warns(UserWarning, match=r"1 tar\(s\) named for no split are not read for split 'train': extra.tar"):
        ds = mmdata.open_dataset(split_folder)
    assert len(list(ds)) == 8


def test_hidden_folders_and_files_are_not_read(tmp_path: Path) -> None:
    """B-D13: ``.Trash/``, macOS' ``._x.tar``: never training data."""
    d = tmp_path / "wds"
    _tar(d / "shard-000.tar", _keys("a", 3))
    _tar(d / "parts" / "shard-001.tar", _keys("b", 3))
    _tar(d / ".Trash" / "old.tar", _keys("t", 3))
    _tar(d / "parts" / "._shard-001.tar", _keys("m", 3))
    ds = mmdata.open_dataset(d)
    assert [os.path.relpath(s, d) for s in ds.shards] == ["parts/shard-001.tar", "shard-000.tar"]
    assert len(list(ds)) == 6
    only_hidden = tmp_path / "h"
    _tar(only_hidden / ".Trash" / "old.tar", _keys("t", 1))
    with pytest.raises(ShardError, match=r"no \.tar/\.tar\.gz shards \(hidden ones are not read: \.Trash/\)"):
        mmdata.open_dataset(only_hidden)


def test_a_key_read_from_two_shards_of_a_folder_is_warned_of_naming_both(tmp_path: Path) -> None:
    """B-D13: a copy of a shard (``shard-000 (1).tar``) is the same samples twice: said, naming both tars."""
    d = tmp_path / "wds"
    _tar(d / "shard-000.tar", _keys("a", 3))
    _tar(d / "shard-001.tar", _keys("b", 3))
    _tar(d / "shard-001 (1).tar", _keys("b", 3))
    with pytest.warns(UserWarning, match=r"shard-001.tar: sample key 'b_000' was already read from .*shard-001 \(1\)"
                                         r"\.tar in this pass"):
        keys = [s.key for s in mmdata.open_dataset(d)]
    assert len(keys) == 9  # said, not dropped: keys restarting in every shard are legal webdataset
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no copy: nothing said
        (d / "shard-001 (1).tar").unlink()
        assert len(list(mmdata.open_dataset(d))) == 6


def test_the_repeated_key_warning_comes_from_a_dataloader_worker(tmp_path: Path) -> None:
    """In a worker process (pytest records warnings in this one, so a fresh interpreter reads it)."""
    d = tmp_path / "wds"
    _tar(d / "a.tar", _keys("a", 3))
    _tar(d / "b.tar", _keys("a", 3))
    code = ("import sys, mmdata; from torch.utils.data import DataLoader; "
            "print(len(list(DataLoader(mmdata.open_dataset(sys.argv[1]), batch_size=None, num_workers=1))))")
    out = subprocess.run([sys.executable, "-c", code, str(d)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["6"]
    assert "b.tar: sample key 'a_000' was already read from" in out.stderr and "a.tar" in out.stderr


def test_an_energon_folder_reads_its_split_parts_less_exclude(tmp_path: Path) -> None:
    """B-D8: ``.nv-meta/split.yaml`` (energon prepare) gives the split's shards."""
    d = tmp_path / "en"
    for i in range(4):
        _tar(d / "parts" / f"data-{i}.tar", _keys(f"p{i}", 2))
        (d / "parts" / f"data-{i}.tar.idx").write_bytes(b"\0" * 16)
    (d / ".nv-meta").mkdir()
    (d / ".nv-meta" / "split.yaml").write_text(
        "split_parts:\n  train:\n    - parts/data-0.tar\n    - parts/data-{1..2}.tar\n  val:\n    - parts/data-3.tar\n"
        "  test: []\nexclude:\n  - parts/data-2.tar\n")
    assert [s.key for s in mmdata.open_dataset(d, split="train")] == _keys("p0", 2) + _keys("p1", 2)
    assert [s.key for s in mmdata.open_dataset(d, split="val")] == _keys("p3", 2)
    assert bare_folder_splits(d) == ["test", "train", "val"]
    with pytest.raises(ShardError, match=r"split 'test' of its .nv-meta/split.yaml lists no shard"):
        mmdata.open_dataset(d, split="test")
    with pytest.raises(ShardError, match=r"without split 'dev'; its split_parts are \['test', 'train', 'val'\]"):
        mmdata.open_dataset(d, split="dev")


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("split_parts:\n  train: [../outside.tar]\n", r"'../outside.tar' is outside the dataset folder"),
    ("split_parts:\n  train: [/etc/x.tar]\n", r"'/etc/x.tar' is outside the dataset folder"),
    ("split_parts:\n  train: [parts/data-0.tar]\nexclude: [parts/data-0.tar/p0_000]\n", r"names a sample"),
    ("split_parts:\n  train: [parts/nope.tar]\n", r"lists 'parts/nope.tar', which .* does not hold"),
    ("split_parts: [a, b]\n", r"expected 'split_parts:' mapping split names"),
    ("!!python/object/apply:os.system [echo]\n", r"invalid YAML"),
])
def test_an_energon_split_file_out_of_bounds_is_refused(tmp_path: Path, yaml_text: str, message: str) -> None:
    d = tmp_path / "en"
    _tar(d / "parts" / "data-0.tar", _keys("p0", 2))
    _tar(tmp_path / "outside.tar", _keys("o", 2))
    (d / ".nv-meta").mkdir()
    (d / ".nv-meta" / "split.yaml").write_text(yaml_text)
    with pytest.raises(ShardError, match=message):
        mmdata.open_dataset(d)


def test_an_index_member_is_its_own_integer_field_never_the_label(tmp_path: Path) -> None:
    """B-D5: webdataset's ``.index`` (a sample position) was read as the class label: with a ``.cls`` the
    sample was refused ('members .cls and .index both give field label'), alone it became the label."""
    both = _tar(tmp_path / "both.tar", ["s0", "s1"], extra={"index": b"1000"})
    got = [(s.key, s["label"], s["index"]) for s in mmdata.open_dataset(both)]
    assert got == [("s0", 0, 1000), ("s1", 1, 1000)]
    only = tmp_path / "only.tar"
    with tarfile.open(only, "w") as tf:
        for name, data in (("s0.index", b"7"), ("s0.txt", b"t")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    (s,) = mmdata.open_dataset(only)
    assert "label" not in s.modalities and s["index"] == 7
    batch = next(iter(mmdata.loader(both, 2)))
    assert dict(zip(batch.keys, batch["label"].tolist())) == {"s0": 0, "s1": 1}
    assert list(batch["index"]) == [1000, 1000]
    assert mmdata.codecs.field_of("index") == "index" and mmdata.codecs.field_of("cls") == "label"


def test_webdataset_double_colon_url_lists_are_read(tmp_path: Path) -> None:
    """B-D12: ``a-{0..1}.tar::b.tar`` is webdataset's list syntax (was 'none of its shards exists')."""
    for i in range(2):
        _tar(tmp_path / f"a-{i}.tar", _keys(f"a{i}", 2))
    _tar(tmp_path / "b.tar", _keys("b", 2))
    ds = mmdata.open_dataset(f"{tmp_path}/a-{{0..1}}.tar::{tmp_path}/b.tar")
    assert [s.key for s in ds] == _keys("a0", 2) + _keys("a1", 2) + _keys("b", 2)
    with pytest.raises(ShardError, match=r"an empty entry in a '::'-joined shard list.*Python list"):
        mmdata.open_dataset(f"{tmp_path}/b.tar::")


def test_members_not_adjacent_in_a_bare_tar_name_the_remedy(tmp_path: Path) -> None:
    """B-D12: ``tar cf x.tar *.jpg *.cls`` (all images, then all labels): the error says how to write it."""
    path = tmp_path / "bytype.tar"
    with tarfile.open(path, "w") as tf:
        for name in ("i0.txt", "i1.txt", "i0.cls", "i1.cls"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tf.addfile(info, io.BytesIO(b"1"))
    with pytest.raises(ShardError, match=r"appears again after other samples.*tar --sort=name -cf"):
        list(mmdata.open_dataset(path))


def _decode_threads_alive() -> int:
    return sum(t.name.startswith("mmdata-decode") for t in threading.enumerate())


def test_a_text_only_read_does_not_use_the_decode_pool(tmp_path: Path) -> None:
    """A-3: text / label decoders hold the GIL: a thread per sample cost 2x the CPU; no pool starts."""
    d = tmp_path / "wds"
    _tar(d / "shard-000.tar", _keys("a", 40))
    seen = []
    for s in mmdata.open_dataset(d, decode_threads=4):
        seen.append(_decode_threads_alive())
    assert len(seen) == 40 and max(seen) == 0


def test_the_decode_pool_gives_the_same_samples_in_the_same_order(tmp_path: Path) -> None:
    """Image samples go to the pool, text-only ones are decoded in place: order, values and the error of a
    bad member (raised in its turn) are those of decode_threads=1."""
    img = image_bytes(0, (8, 8))
    path = tmp_path / "mixed.tar"
    with tarfile.open(path, "w") as tf:
        for i in range(30):
            members = {"txt": f"t{i}".encode(), "cls": str(i % 2).encode()}
            if i % 3 == 0:
                members["png"] = img
            for ext, data in members.items():
                info = tarfile.TarInfo(f"k{i:02d}.{ext}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    seen_threads = []

    def read(threads: int) -> list[tuple[str, str, int, tuple[int, ...] | None]]:
        out = []
        for s in mmdata.open_dataset(path, decode_threads=threads):
            seen_threads.append(_decode_threads_alive())
            out.append((s.key, s["text"], s["label"], tuple(s["image"].shape) if "image" in s.modalities else None))
        return out

    one = read(1)
    assert read(3) == one and len(one) == 30 and max(seen_threads) > 0  # the images did use the pool
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tf:
        for name, data in (("k0.png", img), ("k1.cls", b"dog"), ("k2.png", b"not a png")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    for threads in (1, 3):
        with pytest.raises(ShardError, match=r"sample 'k1'.*cls"):
            list(mmdata.open_dataset(bad, decode_threads=threads))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity and 2 CPUs")
def test_auto_decode_threads_count_the_cpus_the_process_may_use(tmp_path: Path) -> None:
    """A-4: under taskset / a cgroup cpuset, os.cpu_count() is the host's; the pool is sized by affinity."""
    code = ("import os, mmdata, sys; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from mmdata.shards.reader import usable_cpus; "
            "print(usable_cpus(), mmdata.open_dataset(sys.argv[1])._threads())")
    shard = _tar(tmp_path / "shard-000.tar", ["k"])
    out = subprocess.run([sys.executable, "-c", code, str(shard)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]


def test_the_lightning_datamodule_reads_a_bare_folders_splits(split_folder: Path, tmp_path: Path) -> None:
    """B-D2 in Lightning: the DataModule validated on its training data; over a split-named folder it now
    reads train and val apart, and over a folder of unsplit tars (``shard-000.tar``) it has no val loader,
    as for a dataset folder without a val split (it raised "no tar is named for split 'val'" in fit)."""
    pytest.importorskip("lightning.pytorch")
    from mmdata.lightning import DataModule

    dm = DataModule(split_folder, batch_size=2, modalities=["text", "label"])
    dm.setup("fit")
    assert sum(len(b) for b in dm.train_dataloader()) == 8 and sum(len(b) for b in dm.val_dataloader()) == 3
    _tar(tmp_path / "plain" / "shard-000.tar", _keys("p", 5))
    dm = DataModule(tmp_path / "plain", batch_size=2, modalities=["text", "label"])
    dm.setup("fit")
    assert sum(len(b) for b in dm.train_dataloader()) == 5 and list(dm.val_dataloader()) == []


def test_reading_a_tar_gz_leaves_no_file_open(tmp_path: Path) -> None:
    """B-D6's aside: each ``.tar.gz`` read left its file open (gzip.GzipFile(fileobj=) does not close it): a
    ResourceWarning per shard when collected. In a subprocess: pytest takes over unraisable warnings."""
    path = tmp_path / "x.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for key in ("a", "b"):
            info = tarfile.TarInfo(f"{key}.txt")
            info.size = 2
            tf.addfile(info, io.BytesIO(b"hi"))
    code = ("import gc, sys, warnings, mmdata\n"
            "warnings.simplefilter('error', ResourceWarning)\n"
            "lost = []\n"
            "sys.unraisablehook = lambda u: lost.append(repr(u.exc_value))\n"
            f"for _ in range(2): assert [s.key for s in mmdata.open_dataset({str(path)!r})] == ['a', 'b']\n"
            "gc.collect()\n"
            "print('LOST', lost)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "LOST []" in proc.stdout, proc.stdout + proc.stderr[-2000:]


@pytest.mark.parametrize("layout", [("Train-000.tar", "VAL-000.tar"), ("training_000.tar", "validation_000.tar"),
                                    ("train/000.tar", "dev/000.tar"), ("train/shard-0.tar", "Validation/shard-0.tar")])
def test_a_bare_folder_names_its_splits_as_mmdata_shard_reads_them(tmp_path: Path, layout: tuple[str, str]) -> None:
    """QA25 R1-5 / R1-11: the reader took only a literal ``<split>-`` prefix while ``mmdata shard`` takes any
    case, ``_`` and the common spellings: ``Train-000.tar`` + ``VAL-000.tar`` trained on the val tar, and a
    split per subfolder (``train/*.tar``, ``val/*.tar``, as many webdataset repositories lay them out) put
    the val tars in training; the DataModule then had no val loader."""
    train, val = layout
    _tar(tmp_path / "ds" / train, _keys("t", 4))
    _tar(tmp_path / "ds" / val, _keys("v", 2))
    assert bare_folder_splits(tmp_path / "ds") == ["train", "val"]
    assert [s.key for s in mmdata.open_dataset(tmp_path / "ds")] == _keys("t", 4)
    assert [s.key for s in mmdata.open_dataset(tmp_path / "ds", split="val")] == _keys("v", 2)
    assert [s.key for s in mmdata.open_dataset(tmp_path / "ds", split="validation")] == _keys("v", 2)
    with pytest.raises(ShardError, match=r"no tar is named for split 'test'"):
        mmdata.open_dataset(tmp_path / "ds", split="test")


def test_a_datamodule_over_a_shard_pattern_does_not_validate_on_its_training_tars(split_folder: Path) -> None:
    """QA25 R1-1: ``DataModule("sp/*.tar")`` read every tar for val too (a pattern is read whole, whatever the
    split): it validated on its training samples. A pattern is the training data: no val loader by default,
    and a val split asked for by name is refused."""
    pytest.importorskip("lightning.pytorch")
    from mmdata.errors import MMDataError
    from mmdata.lightning import DataModule

    pattern = str(split_folder / "*.tar")
    dm = DataModule(pattern, batch_size=4, modalities=["text", "label"])
    dm.setup("fit")
    assert sum(len(b) for b in dm.train_dataloader()) == 11 and list(dm.val_dataloader()) == []
    with pytest.raises(MMDataError, match=r"no split 'val' \(val_split\); it has \['train'\]"):
        dm = DataModule(pattern, batch_size=4, modalities=["text", "label"], val_split="val")
        dm.setup("fit")
        dm.val_dataloader()
    dm = DataModule([str(split_folder / "train-000.tar")], batch_size=4, modalities=["text", "label"])
    dm.setup("fit")
    assert sum(len(b) for b in dm.train_dataloader()) == 4 and list(dm.val_dataloader()) == []
