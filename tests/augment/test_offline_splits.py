"""`mmdata augment` augments the training split only: val and test are written through (normalize stage
only, one record per sample under its own key) unless `--augment-split` opts them in."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.augment.recipe import load_recipe
from mmdata.cli.main import app
from mmdata.errors import ShardError
from mmdata.shards import index as idx
from mmdata.testing import make_messy_folder

RECIPE = Path(__file__).parents[2] / "recipes" / "messy_folder.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A messy folder (mixed sizes, rates, missing modalities, unlabelled samples) in train / val / test."""
    root = tmp_path_factory.mktemp("augsplits")
    m = make_messy_folder(root / "raw", n=30, sizes=((32, 32), (48, 64)), seconds=(0.3, 0.8))
    mmdata.shard(m.root, root / "data", split="train=0.6,val=0.2,test=0.2", progress=False)
    return root / "data"


def _rows(out: Path) -> list[dict]:
    return idx.load_index(out).to_pylist()


def _source(data: Path) -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for r in _rows(data):
        keys.setdefault(r["split"], []).append(r["key"])
    return keys


def test_readme_command_augments_train_only_and_writes_val_test_through(tmp_path: Path, data: Path) -> None:
    src = _source(data)
    out = tmp_path / "data_aug"
    res = CliRunner().invoke(app, ["augment", str(data), str(out), "--recipe", str(RECIPE), "--copies", "2",
                                   "--keep-original", "-j", "2"])
    assert res.exit_code == 0, res.output
    rows = _rows(out)
    per_split = Counter(r["split"] for r in rows)
    assert per_split == {"train": 3 * len(src["train"]), "val": len(src["val"]), "test": len(src["test"])}
    for split in ("val", "test"):  # same keys, one record each, normalize stage only
        got = [r for r in rows if r["split"] == split]
        assert sorted(r["key"] for r in got) == sorted(src[split])
        ops = {p["op"] for r in got for p in json.loads(r["aug_params"])}
        assert ops and all(op.startswith("normalize.") for op in ops), ops
    train_ops = {p["op"] for r in rows if r["split"] == "train" and "_aug" in r["key"] for p in json.loads(r["aug_params"])}
    assert "image.hflip" in train_ops and "image.random_resized_crop" in train_ops
    # the output's val / test samples are exactly what the loader's eval stage gives the source's
    rec = load_recipe(RECIPE)
    for s in mmdata.open_dataset(data, split="val"):
        if "image" in s:
            want = rec.apply_sample(s, stage="eval")["image"]
            got = next(t for t in mmdata.open_dataset(out, split="val") if t.key == s.key)["image"]
            assert got.shape == want.shape == (3, 64, 64) and bool((got == want).all())
            break
    card = json.loads((out / "dataset.json").read_text())["augmentation"]
    assert card["augmented_splits"] == ["train"] and sorted(card["eval_splits"]) == ["test", "val"]
    assert card["eval_stage"] == "normalize"
    text = " ".join(res.output.split())  # the console wraps lines
    assert f"train {3 * len(src['train'])} (augmented: 2 copies each + originals)" in text, text
    assert f"val {len(src['val'])} (not augmented: normalize stage only, 1 copy each)" in text, text
    assert f"wrote {len(rows)} samples" in text
    assert mmdata.verify(out)["ok"]


def test_augment_split_opts_other_splits_in(tmp_path: Path, data: Path) -> None:
    from mmdata.augment.offline import augment_dataset

    src = _source(data)
    rep = augment_dataset(data, tmp_path / "a", RECIPE, copies=2, augment_splits=["train", "val"], progress=False)
    assert rep["augmented_splits"] == [sp for sp in json.loads((data / "dataset.json").read_text())["splits"]
                                       if sp in ("train", "val")]
    assert rep["eval_splits"] == ["test"]
    assert rep["splits"] == {"train": 2 * len(src["train"]), "val": 2 * len(src["val"]), "test": len(src["test"])}
    assert rep["samples"] == sum(rep["splits"].values())
    val_keys = {r["key"] for r in _rows(tmp_path / "a") if r["split"] == "val"}
    assert val_keys == {f"{k}_aug{i}" for k in src["val"] for i in range(2)}
    # comma-separated on the command line; one copy reads "1 copy each"
    res = CliRunner().invoke(app, ["augment", str(data), str(tmp_path / "b"), "-r", str(RECIPE),
                                   "--augment-split", "train,test"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "1 copy each" in text and "1 copies" not in text, text
    card = json.loads((tmp_path / "b" / "dataset.json").read_text())["augmentation"]
    assert sorted(card["augmented_splits"]) == ["test", "train"] and card["eval_splits"] == ["val"]
    with pytest.raises(ShardError, match=r"augment split\(s\) \['valid'\] are not splits of the dataset; it has "
                                         r"\['test', 'train', 'val'\]"):
        augment_dataset(data, tmp_path / "c", RECIPE, augment_splits=["valid"], progress=False)
    assert not (tmp_path / "c").exists()


def test_no_split_augmented_is_said(tmp_path: Path, data: Path) -> None:
    res = CliRunner().invoke(app, ["augment", str(data), str(tmp_path / "v"), "-r", str(RECIPE), "--split", "val"])
    assert res.exit_code == 0, res.output
    assert "no split augmented" in " ".join(res.output.split())
    assert {r["key"] for r in _rows(tmp_path / "v")} == set(_source(data)["val"])


@pytest.mark.slow
def test_augmented_output_trains(tmp_path: Path, data: Path) -> None:
    """The README's flow: augment offline, then `mmdata train` on the output (it needs val and test)."""
    out = tmp_path / "data_aug"
    res = CliRunner().invoke(app, ["augment", str(data), str(out), "-r", str(RECIPE), "--copies", "1"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["train", str(out), "--epochs", "1", "--batch-size", "16", "--recipe", str(RECIPE),
                                   "--out", str(tmp_path / "run"), "--threads", "1"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics


def test_sample_copies_eval_writes_one_normalized_record() -> None:
    import torch

    from mmdata.augment.offline import sample_copies
    from mmdata.types import Sample

    rec = load_recipe({"normalize": {"image": [{"op": "resize", "size": [8, 8], "side": "exact"}]},
                       "image": [{"op": "hflip", "p": 1.0}]})
    s = Sample("k", {"image": torch.zeros(3, 20, 30, dtype=torch.uint8), "label": 1})
    out = list(sample_copies(s, rec, copies=3, keep_original=True, split="val", augment=False))
    assert [r.key for r in out] == ["k"] and out[0].label == 1
    assert [p["op"] for p in json.loads(out[0].extra["aug_params"])] == ["normalize.image.resize"]
    train = list(sample_copies(s, rec, copies=2, keep_original=True, split="train"))
    assert [r.key for r in train] == ["k", "k_aug0", "k_aug1"]


@pytest.mark.ray
def test_ray_augment_writes_eval_splits_through_as_locally(tmp_path: Path, data: Path, ray_cluster) -> None:  # noqa: ANN001
    """`--executor ray` plans the same records (copies for train, one normalized record per val / test
    sample) and writes the same bytes as a local run."""
    from mmdata.augment.offline import augment_dataset

    def tree(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    opts = dict(copies=2, keep_original=True, maxcount=8, progress=False)
    local = augment_dataset(data, tmp_path / "local" / "aug", RECIPE, **opts)
    rep = augment_dataset(data, tmp_path / "ray" / "aug", RECIPE, executor="ray", **opts)
    src = _source(data)
    assert rep["splits"] == local["splits"] == {"train": 3 * len(src["train"]), "val": len(src["val"]),
                                                "test": len(src["test"])}
    assert rep["augmented_splits"] == local["augmented_splits"] == ["train"]
    a, b = tree(tmp_path / "local" / "aug"), tree(tmp_path / "ray" / "aug")
    assert sorted(a) == sorted(b) and [k for k in a if a[k] != b[k]] == []


@pytest.mark.parametrize("inside", [False, True])
def test_output_that_is_or_lies_inside_the_source_is_refused(tmp_path: Path, inside: bool) -> None:
    """`mmdata augment data data` replaced the source's index and deleted its shards (the originals lost);
    `data/sub` left shards the source's index does not list, so `mmdata verify data` failed."""
    from mmdata.testing import make_sample_folder

    src = tmp_path / "data"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=6), src, progress=False)
    before = {p.name: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    out = src / "sub" if inside else src
    with pytest.raises(ShardError, match="the source dataset") as err:
        augment_dataset(src, out, {"image": [{"op": "hflip", "p": 1.0}]}, progress=False)
    assert ("lies inside" if inside else "the originals lost") in str(err.value)
    assert {p.name: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before
    assert mmdata.verify(src)["ok"]


def test_the_card_names_the_source_by_content_not_by_path(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The card recorded the source as typed (`av` from one folder, `/tmp/x/av` from another): copies of one
    dataset gave other cards, and a published card leaked an absolute path (a determinism QA pass)."""
    import shutil

    copy = tmp_path / "elsewhere" / "data"
    shutil.copytree(data, copy)
    recipe = {"image": [{"op": "hflip", "p": 0.5}]}
    augment_dataset(data, tmp_path / "a" / "aug", recipe, copies=1, progress=False)
    monkeypatch.chdir(copy.parent)
    augment_dataset("data", tmp_path / "b" / "aug", recipe, copies=1, progress=False)
    a, b = ((tmp_path / x / "aug" / "dataset.json").read_bytes() for x in "ab")
    assert a == b and str(tmp_path) not in a.decode()
    source = idx.load_card(data)
    assert json.loads(a)["augmentation"]["augmented_from"] == {"name": source["name"], "fingerprint": source["fingerprint"]}


def test_a_recipe_without_random_ops_warns_that_the_copies_equal_the_originals(tmp_path: Path, data: Path) -> None:
    """An empty (or comments-only) recipe wrote a full copy and said "augmented: 1 copy each" (QA 2026-12-03)."""
    from mmdata.augment.offline import augment_dataset, describe

    (tmp_path / "empty.yaml").write_text("# nothing yet\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"no random ops .* copies of each train sample equal the sample as read"):
        rep = augment_dataset(data, tmp_path / "aug", tmp_path / "empty.yaml", splits=["train"], progress=False)
    assert rep["random_ops"] is False
    assert "the recipe has no random ops: the copies equal the originals" in describe(rep, keep_original=False, out="aug")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a recipe with random ops says nothing of the kind
        warnings.filterwarnings("ignore", message=r".* members of .* the source's size")  # its float WAV grows
        rep = augment_dataset(data, tmp_path / "aug2", RECIPE, splits=["train"], progress=False)
    assert rep["random_ops"] is True and "no random ops" not in describe(rep, keep_original=False, out="aug2")


def test_kept_originals_go_through_normalize_as_the_copies(tmp_path: Path) -> None:
    """QA (ESC-50 user): --keep-original wrote the train originals at their own rates and channel counts
    beside normalized copies and val / test; now every record of the output went through normalize."""
    import numpy as np
    import soundfile as sf
    import torch

    from mmdata.augment.offline import sample_copies
    from mmdata.types import Sample

    rec = {"normalize": {"audio": [{"op": "to_mono"}, {"op": "resample", "rate": 8000}]},
           "audio": [{"op": "gain", "p": 1.0, "min_db": -3, "max_db": 3}]}
    s = Sample("k", {"audio": torch.zeros(2, 4410), "label": 0}, sample_rate=44100)
    out = list(sample_copies(s, load_recipe(rec), copies=1, keep_original=True, split="train"))
    assert [r.key for r in out] == ["k", "k_aug0"]
    assert [p["op"] for p in json.loads(out[0].extra["aug_params"])] == ["normalize.audio.to_mono",
                                                                         "normalize.audio.resample"]
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, (rate, ch) in enumerate([(44100, 2), (16000, 1), (48000, 6)]):
        sf.write(raw / f"{i}.wav", np.zeros((rate // 10, ch), dtype=np.float32), rate)
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    augment_dataset(tmp_path / "ds", tmp_path / "aug", rec, copies=1, keep_original=True, progress=False)
    got = {(s.key, s.sample_rate, s["audio"].shape[0]) for s in mmdata.open_dataset(tmp_path / "aug")}
    assert {(r, c) for _, r, c in got} == {(8000, 1)} and len(got) == 6


def test_split_takes_commas_like_augment_split(tmp_path: Path, data: Path) -> None:
    """QA: `--split val,test` was one split name ("no split 'val,test'") while `--augment-split train,val`
    and `shard --meta a,b` take commas."""
    res = CliRunner().invoke(app, ["augment", str(data), str(tmp_path / "a"), "-r", str(RECIPE), "--split", "val,test"])
    assert res.exit_code == 0, res.output
    assert sorted(json.loads((tmp_path / "a" / "dataset.json").read_text())["splits"]) == ["test", "val"]
    # a split named twice is one (QA: "splits 'val' and 'val' differ only in case")
    res = CliRunner().invoke(app, ["augment", str(data), str(tmp_path / "b"), "-r", str(RECIPE), "--split", "val,test,val"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("option", ["--split", "--augment-split"])
def test_a_split_option_naming_no_split_is_refused(tmp_path: Path, data: Path, option: str) -> None:
    """QA: `--split ,` read as every split (and `--augment-split ,` as none) without a word; spaces after a
    comma are not part of a name."""
    res = CliRunner().invoke(app, ["augment", str(data), str(tmp_path / "a"), "-r", str(RECIPE), option, ","])
    assert res.exit_code == 2 and "names no split" in res.output and option in res.output, res.output
    assert not (tmp_path / "a").exists()
    res = CliRunner().invoke(app, ["augment", str(data), str(tmp_path / "b"), "-r", str(RECIPE), "--split", "val, test"])
    assert res.exit_code == 0, res.output
    assert sorted(json.loads((tmp_path / "b" / "dataset.json").read_text())["splits"]) == ["test", "val"]
