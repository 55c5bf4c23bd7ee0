"""mmdata.blend / loader({name: folder}, weights=...): several datasets read as one, each a set number of
times per epoch, split once over workers and ranks, resumed exactly, labels merged by name."""

from __future__ import annotations

import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
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


@pytest.mark.parametrize("num_workers", [0, 2])
def test_every_sample_as_often_as_its_weight_each_epoch(two: dict[str, str], num_workers: int) -> None:
    a, b = _keys("a", two["a"]), _keys("b", two["b"])
    L = mmdata.loader(two, 4, recipe=RECIPE, weights={"b": 2}, num_workers=num_workers, seed=1)
    orders = []
    for _ in range(2):
        seen = Counter(_epoch(L))
        assert seen == Counter({**dict.fromkeys(a, 1), **dict.fromkeys(b, 2)})
        orders.append(list(seen))
    assert orders[0] != orders[1]  # each epoch its own mix


def test_mixed_throughout_not_one_after_the_other(two: dict[str, str]) -> None:
    keys = [s.key for s in mmdata.blend(two, shuffle=True, seed=3)]
    first = [k.split("/")[0] for k in keys[:14]]
    assert set(first) == {"a", "b"}  # 30 + 11 samples: both in the first third
    assert [s.key for s in mmdata.blend(two)] == _keys("a", two["a"]) + _keys("b", two["b"])  # no shuffle: in order


def test_fraction_reads_another_part_each_epoch(two: dict[str, str]) -> None:
    ds = mmdata.blend(two, weights={"a": 0.5, "b": 0}, shuffle=True, seed=0)
    epochs = [[s.key for s in ds] for _ in range(4)]
    assert all(len(e) == len(set(e)) == 15 for e in epochs)
    assert len(set().union(*map(set, epochs))) > 20  # other halves: more than one half of the 30 over 4 epochs
    assert ds.samples_per_reader(1, 0) == [15] and ds.num_samples == 15


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


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_mid_epoch_gives_exactly_the_rest(two: dict[str, str], num_workers: int) -> None:
    kw = dict(recipe=RECIPE, weights={"a": 0.5, "b": 2}, num_workers=num_workers, seed=7)
    full = mmdata.loader(two, 3, **kw)
    full.set_epoch(1)
    whole = [list(b.keys) for b in full]
    part = mmdata.loader(two, 3, **kw)
    part.set_epoch(1)
    it = iter(part)
    head = [list(next(it).keys) for _ in range(4)]
    state = part.state_dict()
    del it
    resumed = mmdata.loader(two, 3, **kw)
    resumed.load_state_dict(state)
    rest = [list(b.keys) for b in resumed]
    assert head + rest == whole


def test_ranks_split_the_epoch_exactly_once(two: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _keys("a", two["a"]), _keys("b", two["b"])  # before RANK is set: every sample
    seen: Counter[str] = Counter()
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        seen.update(s.key for s in mmdata.blend(two, weights={"b": 3}, shuffle=True, seed=2))
    assert seen == Counter({**dict.fromkeys(a, 1), **dict.fromkeys(b, 3)})


def test_losses_are_counted_per_dataset_and_summed(two: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    mmdata.shard(make_sample_folder(tmp_path / "rbad", n=6), bad, maxcount=3, progress=False)
    shard = sorted(bad.glob("**/*.tar"))[0]
    with tarfile.open(shard) as tar:
        png = next(m for m in tar.getmembers() if m.name.endswith(".png"))
    data = bytearray(shard.read_bytes())
    data[png.offset_data + 40 : png.offset_data + 60] = b"\xff" * 20  # a PNG chunk no longer matches its CRC
    shard.write_bytes(bytes(data))
    L = mmdata.loader({"a": two["a"], "bad": str(bad)}, 4, recipe=RECIPE, on_error="skip", num_workers=2)
    keys = _epoch(L)
    lost = sum(L.skipped.values())
    assert lost >= 1 and len(keys) == 30 + 6 - lost and len(set(keys)) == len(keys)


def test_errors_name_what_is_wrong(two: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ShardError, match="name no dataset of the blend"):
        mmdata.blend(two, weights={"c": 1})
    with pytest.raises(ShardError, match="finite number >= 0"):
        mmdata.blend(two, weights={"a": -1})
    with pytest.raises(ShardError, match="finite number >= 0"):
        mmdata.blend(two, weights={"a": True})
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
    train = Counter(k for b in dm.train_dataloader() for k in b.keys)
    assert sum(k.startswith("x/") for k in train) == 6 and set(train[k] for k in train if k.startswith("y/")) == {2}
    val = Counter(k for b in dm.val_dataloader() for k in b.keys)
    assert sum(val.values()) == len(val) == 10  # each val sample once: weights are for training
    assert dm.test_dataloader() == []  # no dataset has a test split: no test stage
    with pytest.raises(ShardError, match="no split"):
        DataModule(paths, val_split="validation")
