"""mmdata.blend / loader({name: folder}, weights=...): several datasets read as one, each a set number of
times per epoch, split once over workers and ranks, resumed exactly, labels merged by name."""

from __future__ import annotations

import tarfile
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import mmdata
from mmdata.errors import MMDataError, ShardError
from mmdata.shards.blend import BlendDataset
from mmdata.testing import make_messy_folder, make_sample_folder

RECIPE = {"normalize": {"image": [{"op": "to_rgb"}, {"op": "resize", "size": [16, 16], "side": "exact"}],
                        "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 8000},
                                  {"op": "pad_trim", "seconds": 0.2}]}}


def _class_folder(root: Path, counts: dict[str, int]) -> Path:
    for name, n in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 20 % 256, 0, 0)).save(root / name / f"{name}{i}.png")
    return root


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A messy folder (30 samples, shards of 7: uneven) and a sample folder (11 samples, shards of 4)."""
    t = tmp_path_factory.mktemp("blend")
    make_messy_folder(t / "ra", n=30)
    mmdata.shard(t / "ra", t / "a", maxcount=7, progress=False)
    mmdata.shard(make_sample_folder(t / "rb", n=11), t / "b", maxcount=4, progress=False)
    return {"a": str(t / "a"), "b": str(t / "b")}


def _keys(name: str, path: str) -> list[str]:
    return [f"{name}/{s.key}" for s in mmdata.open_dataset(path, decode=False)]


def _epoch(L: mmdata.Loader) -> list[str]:
    return [k for b in L for k in b.keys]


def _base(key: str) -> str:
    """A sample's key without the repeat suffix (``#r1``: its second read in one epoch)."""
    return key.split("#r")[0]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_every_sample_as_often_as_its_weight_each_epoch(two: dict[str, str], num_workers: int) -> None:
    a, b = _keys("a", two["a"]), _keys("b", two["b"])
    L = mmdata.loader(two, 4, recipe=RECIPE, weights={"b": 2}, num_workers=num_workers, seed=1)
    orders = []
    for _ in range(2):
        keys = _epoch(L)
        assert len(set(keys)) == len(keys)  # a repeat is a sample of its own (#r1)
        seen = Counter(map(_base, keys))
        assert seen == Counter({**dict.fromkeys(a, 1), **dict.fromkeys(b, 2)})
        orders.append(list(seen))
    assert orders[0] != orders[1]  # each epoch its own mix


def test_mixed_throughout_not_one_after_the_other(two: dict[str, str]) -> None:
    keys = [s.key for s in mmdata.blend(two, shuffle=True, seed=3)]
    first = [k.split("/")[0] for k in keys[:14]]
    assert set(first) == {"a", "b"}  # 30 + 11 samples: both in the first third
    assert [s.key for s in mmdata.blend(two)] == _keys("a", two["a"]) + _keys("b", two["b"])  # no shuffle: in order


@pytest.mark.parametrize("shuffle", [False, True])
def test_fraction_reads_the_rest_next_epoch(two: dict[str, str], shuffle: bool) -> None:
    """Weight 0.5: epochs 0 and 1 read the two halves of the dataset's epoch 0 — every sample once in
    two epochs, in order or shuffled (QA: the other half was never read without shuffle)."""
    ds = mmdata.blend(two, weights={"a": 0.5, "b": 0}, shuffle=shuffle, seed=0)
    epochs = [[s.key for s in ds] for _ in range(4)]
    assert all(len(e) == len(set(e)) == 15 for e in epochs)
    a = _keys("a", two["a"])
    assert sorted(epochs[0] + epochs[1]) == sorted(a) == sorted(epochs[2] + epochs[3])
    assert ds.samples_per_reader(1, 0) == [15] and ds.num_samples is None  # per epoch: known only given the epoch


@pytest.mark.parametrize(("weight", "epochs", "times"), [(0.3, 10, 3), (0.01, 100, 1), (1.5, 2, 3)])
def test_fraction_does_not_depend_on_the_readers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weight: float,
                                                 epochs: int, times: int) -> None:
    """QA: each reader rounded its own share (0.3 of 5 samples over 6 readers read nothing); the
    fractions now tile the dataset's epochs, so over 1/w epochs every sample comes once, any readers."""
    mmdata.shard(make_sample_folder(tmp_path / "r", n=5), tmp_path / "d", maxcount=1, progress=False)
    keys = _keys("d", str(tmp_path / "d"))
    for world in (1, 6):
        seen: Counter[str] = Counter()
        for rank in range(world):
            monkeypatch.setenv("RANK", str(rank))
            monkeypatch.setenv("WORLD_SIZE", str(world))
            ds = mmdata.blend({"d": tmp_path / "d"}, weights={"d": weight}, shuffle=True, seed=1)
            for _ in range(epochs):
                seen.update(_base(s.key) for s in ds)
        assert seen == Counter(dict.fromkeys(keys, times)), world


def test_repeats_get_their_own_augmentation(two: dict[str, str]) -> None:
    """QA: with weight 2 both reads of a sample in one epoch had the same draws (same key and epoch)."""
    rec = {**RECIPE, "image": [{"op": "gaussian_noise", "p": 1.0, "std": [0.1, 0.2]}]}
    batch = next(iter(mmdata.loader({"b": two["b"]}, 64, recipe=rec, weights={"b": 2}, seed=0)))
    at = {k: i for i, k in enumerate(batch.keys)}
    pairs = [(at[k], at[k + "#r1"]) for k in at if "#r" not in k and batch.present["image"][at[k]]]
    assert len(pairs) >= 5
    assert all(not torch.equal(batch["image"][i], batch["image"][j]) for i, j in pairs)


def test_one_folder_under_two_names_is_two_orders(two: dict[str, str]) -> None:
    ds = mmdata.blend({"x": two["a"], "y": two["a"]}, shuffle=True, seed=0)
    keys = [s.key for s in ds]
    x = [k[2:] for k in keys if k.startswith("x/")]
    y = [k[2:] for k in keys if k.startswith("y/")]
    assert sorted(x) == sorted(y) and x != y


def test_a_state_of_another_blend_is_refused(two: dict[str, str]) -> None:
    L = mmdata.loader(two, 4, recipe=RECIPE, weights={"b": 2}, seed=0)
    it = iter(L)
    next(it)
    state = L.state_dict()
    del it
    for other in (mmdata.loader(two, 4, recipe=RECIPE, weights={"b": 1}, seed=0),
                  mmdata.loader({"b": two["b"], "a": two["a"]}, 4, recipe=RECIPE, weights={"b": 2}, seed=0)):
        with pytest.raises(ShardError, match="cannot resume the blend"):
            other.load_state_dict(state)
    with pytest.raises(MMDataError, match="cannot resume a loader of one dataset"):
        mmdata.loader(two["a"], 4, recipe=RECIPE, seed=0).load_state_dict(state)
    single = mmdata.loader(two["a"], 4, recipe=RECIPE, seed=0)
    it = iter(single)
    next(it)
    with pytest.raises(ShardError, match="a single dataset's state"):
        mmdata.loader(two, 4, recipe=RECIPE, seed=0).load_state_dict(single.state_dict())
    mmdata.loader(two, 4, recipe=RECIPE, weights={"b": 1}, seed=0).load_state_dict({"epoch": 3, "seed": 0})  # fresh: fine


def test_same_seed_same_bytes_other_seed_other_order(two: dict[str, str]) -> None:
    def run(seed: int) -> list[tuple[str, bytes]]:
        return [(k, b["image"].numpy().tobytes()) for b in mmdata.loader(two, 5, recipe=RECIPE, seed=seed,
                                                                          weights={"a": 1.5}) for k in b.keys]
    assert run(4) == run(4)
    assert [k for k, _ in run(4)] != [k for k, _ in run(5)]


def test_labels_merged_by_name(tmp_path: Path) -> None:
    mmdata.shard(_class_folder(tmp_path / "r1", {"cat": 2, "dog": 3}), tmp_path / "p1", progress=False)
    mmdata.shard(_class_folder(tmp_path / "r2", {"bird": 1, "dog": 2}), tmp_path / "p2", progress=False)
    ds = mmdata.blend({"pets": tmp_path / "p1", "more": tmp_path / "p2"})
    assert ds.label_names == ["cat", "dog", "bird"] and ds.card["num_classes"] == 3
    got = Counter((s.key.split("/")[0], s.key.split("/")[1].split("_")[0], ds.label_names[s["label"]]) for s in ds)
    assert got == {("pets", "cat", "cat"): 2, ("pets", "dog", "dog"): 3, ("more", "bird", "bird"): 1,
                   ("more", "dog", "dog"): 2}  # (source, class folder, blended class name)
    batch = next(iter(mmdata.loader({"pets": tmp_path / "p1", "more": tmp_path / "p2"}, 16, shuffle=False)))
    assert sorted(batch["label"].tolist()) == [0, 0, 1, 1, 1, 1, 1, 2]


def test_fields_are_the_union_and_sources_are_named(two: dict[str, str], tmp_path: Path) -> None:
    mmdata.shard(_class_folder(tmp_path / "r", {"x": 3}), tmp_path / "img", progress=False)  # images only
    blend = {"a": two["a"], "img": str(tmp_path / "img")}
    batches = list(mmdata.loader(blend, 64, recipe=RECIPE, shuffle=False))
    assert len(batches) == 1
    b = batches[0]
    assert {"image", "audio", "text", "label"} <= set(b.present)
    from_img = [i for i, k in enumerate(b.keys) if k.startswith("img/")]
    assert len(from_img) == 3 and not b.present["audio"][from_img].any() and b.present["image"][from_img].all()
    assert {m["source"] for m in b.meta["samples"]} == {"a", "img"}


def _resumes_exactly(blend: dict[str, str], cut: int, **kw: object) -> None:
    """Epoch 1 read whole equals its first ``cut`` batches, a state_dict, and a fresh loader resumed from it:
    the same keys and, per sample, the same record of the losses so far (the epoch's count at the end)."""
    def seen(b: mmdata.Batch) -> list[tuple[str, dict]]:
        return [(k, m.get("skipped", {})) for k, m in zip(b.keys, b.meta["samples"])]

    full = mmdata.loader(blend, 3, **kw)
    full.set_epoch(1)
    whole = [seen(b) for b in full]
    part = mmdata.loader(blend, 3, **kw)
    part.set_epoch(1)
    it = iter(part)
    head = [seen(next(it)) for _ in range(cut)]
    state = part.state_dict()
    del it
    resumed = mmdata.loader(blend, 3, **kw)
    resumed.load_state_dict(state)
    assert head + [seen(b) for b in resumed] == whole
    assert resumed.skipped == full.skipped


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_mid_epoch_gives_exactly_the_rest(two: dict[str, str], num_workers: int) -> None:
    _resumes_exactly(two, 4, recipe=RECIPE, weights={"a": 0.5, "b": 2}, num_workers=num_workers, seed=7)


def test_ranks_split_the_epoch_exactly_once(two: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _keys("a", two["a"]), _keys("b", two["b"])  # before RANK is set: every sample
    seen: Counter[str] = Counter()
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        seen.update(_base(s.key) for s in mmdata.blend(two, weights={"b": 3}, shuffle=True, seed=2))
    assert seen == Counter({**dict.fromkeys(a, 1), **dict.fromkeys(b, 3)})


def _damaged(tmp_path: Path) -> Path:
    """A 6-sample dataset whose first shard's first PNG no longer decodes (a chunk fails its CRC)."""
    bad = tmp_path / "bad"
    mmdata.shard(make_sample_folder(tmp_path / "rbad", n=6), bad, maxcount=3, progress=False)
    shard = sorted(bad.glob("**/*.tar"))[0]
    with tarfile.open(shard) as tar:
        png = next(m for m in tar.getmembers() if m.name.endswith(".png"))
    data = bytearray(shard.read_bytes())
    data[png.offset_data + 40 : png.offset_data + 60] = b"\xff" * 20  # a PNG chunk no longer matches its CRC
    shard.write_bytes(bytes(data))
    return bad


def test_losses_are_counted_per_dataset_and_summed(two: dict[str, str], tmp_path: Path) -> None:
    bad = _damaged(tmp_path)
    L = mmdata.loader({"a": two["a"], "bad": str(bad)}, 4, recipe=RECIPE, on_error="skip", num_workers=2)
    keys = _epoch(L)
    lost = sum(L.skipped.values())
    assert lost >= 1 and len(keys) == 30 + 6 - lost and len(set(keys)) == len(keys)


def test_errors_name_what_is_wrong(two: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ShardError, match="name no dataset of the blend"):
        mmdata.blend(two, weights={"c": 1})
    for bad in (-1, True, 1e9, float("nan"), "2"):
        with pytest.raises(ShardError, match="a number from 0 to 1000"):
            mmdata.blend(two, weights={"a": bad})
    assert mmdata.blend(two, weights={"a": np.float32(0.5), "b": np.int64(2)}).weights == {"a": 0.5, "b": 2.0}
    for name in (".", ".."):
        with pytest.raises(ShardError, match="prefixes"):
            mmdata.blend({name: two["a"]})
    with pytest.raises(ShardError, match="every weight is 0"):
        mmdata.blend(two, weights={"a": 0, "b": 0})
    with pytest.raises(ShardError, match="mapping of names"):
        mmdata.blend({})
    with pytest.raises(ShardError, match="prefixes"):
        mmdata.blend({"a/b": two["a"]})
    with pytest.raises(ShardError, match="missing"):
        mmdata.blend(two, split={"a": "train"})
    with pytest.raises(ShardError, match="no split 'val'"):
        mmdata.blend(two, split="val")
    tars = sorted(Path(two["b"]).glob("**/*.tar"))
    with pytest.raises(ShardError, match="not a dataset folder"):
        mmdata.blend({"a": two["a"], "t": str(tars[0])})
    with pytest.raises(MMDataError, match="weights blend several datasets"):
        mmdata.loader(two["a"], 4, weights={"a": 1})
    with pytest.raises(MMDataError, match="cache"):
        mmdata.loader(two, 4, cache=True)
    with pytest.raises(MMDataError, match="balance"):
        mmdata.loader(two, 4, balance={"by": "label", "mode": "over"})


def test_split_per_dataset_and_eval_in_order(two: dict[str, str], tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "r", n=10), tmp_path / "s", split="train=0.5,validation=0.5",
                 progress=False)
    ds = mmdata.blend({"b": two["b"], "s": str(tmp_path / "s")}, split={"b": "train", "s": "validation"})
    keys = [s.key for s in ds]
    assert keys[:11] == _keys("b", two["b"]) and len(keys) == 16
    assert isinstance(ds, BlendDataset) and ds.card["blend"]["s"]["split"] == "validation"
    assert np.array_equal(np.array(ds.samples_per_reader(2)).sum(), 16)


def test_lightning_datamodule_blends_training_and_reads_eval_once(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    from mmdata.lightning import DataModule

    paths = {}
    for name, n in (("x", 12), ("y", 8)):
        mmdata.shard(make_sample_folder(tmp_path / f"r{name}", n=n), tmp_path / name, split="train=0.5,val=0.5",
                     progress=False)
        paths[name] = str(tmp_path / name)
    dm = DataModule(paths, batch_size=4, weights={"y": 2}, recipe=RECIPE, seed=0)
    train = Counter(_base(k) for b in dm.train_dataloader() for k in b.keys)
    assert sum(k.startswith("x/") for k in train) == 6 and set(train[k] for k in train if k.startswith("y/")) == {2}
    val = Counter(k for b in dm.val_dataloader() for k in b.keys)
    assert sum(val.values()) == len(val) == 10  # each val sample once: weights are for training
    assert dm.test_dataloader() == []  # no dataset has a test split: no test stage
    with pytest.raises(ShardError, match="no split"):
        DataModule(paths, val_split="validation")
    # QA: own data with val / test beside a train-only public set kept no val / test loader
    mmdata.shard(make_sample_folder(tmp_path / "rz", n=6), tmp_path / "z", progress=False)  # train only
    dm = DataModule({**paths, "z": str(tmp_path / "z")}, batch_size=4, recipe=RECIPE)
    val = Counter(k.split("/")[0] for b in dm.val_dataloader() for k in b.keys)
    assert val == {"x": 6, "y": 4}


def test_the_trainer_says_blends_are_not_its_input(two: dict[str, str]) -> None:
    from mmdata.train import train

    with pytest.raises(MMDataError, match="reads one dataset folder, got a mapping"):
        train(two, epochs=1)


def test_unnamed_classes_are_merged_by_id_with_a_warning(two: dict[str, str]) -> None:
    with pytest.warns(UserWarning, match="'b' has 3 classes without names"):
        ds = mmdata.blend(two)
    assert ds.label_names == ["circle", "square", "triangle", "0", "1", "2"]


def test_keys_select_within_a_blend(two: dict[str, str]) -> None:
    a, b = _keys("a", two["a"]), _keys("b", two["b"])
    chosen = a[:3] + b[-2:]
    got = Counter(_base(s.key) for s in mmdata.blend(two, weights={"b": 2}, keys=chosen, shuffle=True))
    assert got == Counter({**dict.fromkeys(a[:3], 1), **dict.fromkeys(b[-2:], 2)})
    per = {"b": [k[2:] for k in b[:1]]}  # {name: its own keys}: the datasets not named give nothing
    assert [s.key for s in mmdata.blend(two, keys=per)] == b[:1]
    L = mmdata.loader(two, 2, recipe=RECIPE, keys=chosen, num_workers=2)
    assert Counter(map(_base, _epoch(L))) == Counter(chosen)
    with pytest.raises(ShardError, match="not '<name>/<key>'"):
        mmdata.blend(two, keys=["000001"])
    with pytest.raises(ShardError, match="name no dataset"):
        mmdata.blend(two, keys={"c": ["x"]})


def test_balance_reads_a_split_list_and_a_selection(tmp_path: Path) -> None:
    """Reader QA: balance looked the samples up in one split (a split list raised) and counted unselected ones."""
    mmdata.shard(make_sample_folder(tmp_path / "r", n=12), tmp_path / "d", split="1=0.5,2=0.5", progress=False)
    bal = {"by": "label", "mode": "over"}
    keys = Counter(k for b in mmdata.loader(tmp_path / "d", 4, split=["1", "2"], balance=bal) for k in b.keys)
    every = {s.key for sp in ("1", "2") for s in mmdata.open_dataset(tmp_path / "d", split=sp, decode=False)}
    assert {k.split("#r")[0] for k in keys} == every
    some = [s.key for s in mmdata.open_dataset(tmp_path / "d", split="1")][:3]
    got = {k.split("#r")[0] for b in mmdata.loader(tmp_path / "d", 4, split="1", balance=bal, keys=some) for k in b.keys}
    assert got <= set(some) and got


@pytest.mark.parametrize("cut", [1, 3, 7])  # the damaged image is in batch 7 (worker 0)
def test_resume_with_losses_and_fractions_gives_exactly_the_rest(two: dict[str, str], tmp_path: Path, cut: int) -> None:
    blend = {"a": two["a"], "bad": str(_damaged(tmp_path))}
    _resumes_exactly(blend, cut, recipe=RECIPE, weights={"a": 0.5, "bad": 1.5}, num_workers=2, seed=3, on_error="skip")


def test_a_blend_says_what_it_reads(two: dict[str, str]) -> None:
    """README cold read: a blend printed as <mmdata.shards.blend.BlendDataset object at 0x...>. It says
    its datasets (folder, split, weight, samples), shuffle, seed and epoch on one line, like ShardDataset."""
    b = mmdata.blend(two, weights={"a": 1, "b": 0.5}, shuffle=True, seed=3)
    n_a = sum(1 for _ in mmdata.open_dataset(two["a"]))
    text = repr(b)
    assert text.startswith("BlendDataset(a=") and "object at" not in text and "\n" not in text
    assert f"a={two['a']!r} (split 'train', weight 1, {n_a} samples)" in text
    assert "weight 0.5" in text and "shuffle=True, seed=3, epoch=0)" in text


@pytest.fixture(scope="module")
def lossy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two sample folders whose every 4th sample lacks audio (lost with required=["audio"]); a's second
    shard cut to half its length (its samples lost, met ahead of the reader by the decode window)."""
    t = tmp_path_factory.mktemp("lossy")
    for n, name in ((12, "a"), (8, "b")):
        mmdata.shard(make_sample_folder(t / f"raw_{name}", n=n), t / name, maxcount=4, progress=False)
    shard = t / "a" / "train-000001.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2 + 100])
    return {"a": str(t / "a"), "b": str(t / "b")}


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_resumed_blend_counts_the_epochs_losses_once(lossy: dict[str, str], shuffle: bool) -> None:
    """QA: a resumed blend lost the counts of a shard cut short (the decode window met it while the
    resume passed over samples, uncounted) and doubled others (decode losses passed over were counted
    in the samples' records); a dataset's losses after its last sample were in no record."""
    def mk() -> mmdata.BlendDataset:
        return mmdata.blend(lossy, shuffle=shuffle, on_error="skip", seed=0, required=["audio"])

    def records(d: Any) -> list[tuple[str, dict]]:
        return [(s.key, s.meta.get("skipped", {})) for s in d]

    whole = mk()
    full = records(whole)
    assert set(whole.skipped) == {"truncated shard", "truncated or corrupt shard", "missing required modality"}
    for cut in range(1, len(full)):
        d = mk()
        head = records(islice(iter(d), cut))
        resumed = mk()
        resumed.load_state_dict(d.state_dict())
        assert head + records(resumed) == full, cut
        assert resumed.skipped == whole.skipped, cut


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_a_resumed_blend_loader_with_workers_counts_the_epochs_losses_once(lossy: dict[str, str], cut: int) -> None:
    _resumes_exactly(lossy, cut, num_workers=2, seed=1, shuffle=True, on_error="skip", required=["audio"])
