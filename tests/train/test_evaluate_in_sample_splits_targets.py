"""QA33: ``mmdata evaluate`` (``mmdata.train.evaluate_run``) on the run's own samples (in-sample scores warned of:
same dataset, a byte copy, a re-shard under ``--split-from``), a union of splits, the only split of an unlabelled
folder, a ``--target`` run on data without its key, per-class scores of a class without support, warning grammar,
``ids_match`` and the row order of predictions.parquet under worker processes."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from mmdata.train.evaluate import Scores
from mmdata.train.score_run import class_map, run_roles, scored_splits


def _raw(root: Path, per_class: int = 8) -> Path:
    from mmdata.testing.media import make_class_folders

    return make_class_folders(root, per_class=per_class)


def _train(data: Path, out: Path, **kw: Any) -> dict[str, Any]:
    from mmdata.train import train

    torch.set_num_threads(1)
    with warnings.catch_warnings():  # few BatchNorm batches: what the run is, not what is tested
        warnings.simplefilter("ignore")
        return train(data, epochs=1, seed=0, out=out, batch_size=8, threads=1, eval_robustness=False, **kw)


def _eval(*args: Any, **kw: Any) -> dict[str, Any]:
    from mmdata.train.score_run import evaluate_run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_run(*args, **kw)


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(raw class folders, their dataset train/val/test, a default run on it)."""
    import mmdata

    root = tmp_path_factory.mktemp("qa33_eval")
    raw = _raw(root / "raw")
    ds = root / "ds"
    mmdata.shard(raw, ds, split="train=0.5,val=0.25,test=0.25", progress=False)
    _train(ds, root / "run")
    return raw, ds, root / "run"


def test_the_runs_training_and_val_splits_are_warned_in_sample(own: tuple[Path, Path, Path]) -> None:
    """labelnoise #1 / deploy #2b: the run's own training split scored: counted (in_sample) and warned of, with
    the remedy; val too (it chose the epoch); the test split is not."""
    from mmdata.shards.index import load_card

    _, ds, run = own
    n = {s: v["samples"] for s, v in load_card(ds)["splits"].items()}
    r = _eval(run, ds, split="train")
    assert r["in_sample"] == {"train": n["train"], "val": 0, "of": n["train"], "by": "fingerprint"}
    assert r["data_fingerprint"] == r["run_data_fingerprint"]
    said = [w for w in r["warnings"] if "in-sample" in w]
    assert len(said) == 1 and f"{n['train']} of the {n['train']} scored samples" in said[0]
    assert "--split test" in said[0] and "out-of-fold" in said[0]
    v = _eval(run, ds, split="val")
    assert v["in_sample"]["val"] == n["val"] and any("validation split" in w for w in v["warnings"])
    t = _eval(run, ds, split="test")
    assert t["in_sample"] == {"train": 0, "val": 0, "of": n["test"], "by": "fingerprint"}
    assert not any("in-sample" in w for w in t["warnings"])


def test_the_warning_is_a_python_warning_too(own: tuple[Path, Path, Path]) -> None:
    from mmdata.train import TrainWarning
    from mmdata.train.score_run import evaluate_run

    _, ds, run = own
    with pytest.warns(TrainWarning, match="in-sample"):
        evaluate_run(run, ds, split="train")


def test_a_byte_copy_is_the_same_data(own: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, ds, run = own
    copy = tmp_path / "copy"
    shutil.copytree(ds, copy)
    r = _eval(run, copy, split="train")
    assert r["in_sample"]["by"] == "fingerprint" and r["in_sample"]["train"] == r["in_sample"]["of"] > 0


def test_a_reshard_under_split_from_is_matched_by_key_and_bytes(own: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """A relabelled re-shard (files moved to another class folder: new keys, other fingerprint) kept the splits:
    its train split is the run's training data, found through the index of the version it was sharded from."""
    import mmdata
    from mmdata.shards.index import load_card

    raw, ds, run = own
    raw2 = tmp_path / "raw"
    shutil.copytree(raw, raw2)
    for f in sorted((raw2 / "cat").glob("000.*")):  # a relabel: new key, same bytes
        f.rename(raw2 / "dog" / f"x{f.name}")
    # next to ds: the --split-from version is found by its name beside the new one
    v2 = ds.parent / f"ds_v2_{tmp_path.name}"
    with warnings.catch_warnings():  # the moved sample's new split: not what is tested
        warnings.simplefilter("ignore")
        mmdata.shard(raw2, v2, split="train=0.5,val=0.25,test=0.25", split_from=ds, progress=False)
    card = load_card(v2)
    assert card["fingerprint"] != load_card(ds)["fingerprint"]
    r = _eval(run, v2, split="train")
    n = card["splits"]["train"]["samples"]
    assert r["in_sample"]["by"] == f"index of {ds.resolve()}"
    assert r["in_sample"]["train"] == n and any("image / audio bytes" in w for w in r["warnings"])
    t = _eval(run, v2, split="test")
    assert t["in_sample"]["train"] == t["in_sample"]["val"] == 0
    assert not any("in-sample" in w for w in t["warnings"])


def test_another_dataset_is_not_checked(own: tuple[Path, Path, Path], tmp_path: Path) -> None:
    import mmdata

    raw, _, run = own
    other = tmp_path / "other"
    mmdata.shard(raw, other, split="train=0.5,test=0.5", seed=3, progress=False)
    r = _eval(run, other, split="test")
    assert r["in_sample"]["by"] is None and r["in_sample"]["train"] == 0


def test_a_fold_run_and_a_union_of_splits(own: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """labelnoise #9: --split 3,4 reads the union (as train's --train-split); a fold run's config.splits decides
    which folds are in-sample; predictions.parquet holds each sample's own fold."""
    import mmdata
    import pyarrow.parquet as pq
    from mmdata.shards.index import load_card

    raw, _, _ = own
    folds = tmp_path / "folds"
    mmdata.shard(raw, folds, split="1=0.25,2=0.25,3=0.25,4=0.25", progress=False)
    _train(folds, tmp_path / "run", train_split=["3", "4"], val_split="2", test_split="1")
    n = {s: v["samples"] for s, v in load_card(folds)["splits"].items()}
    r = _eval(tmp_path / "run", folds, split="3,4", out=tmp_path / "ev")
    assert r["split"] == "3,4" and "3,4" in r and r["samples"]["3,4"]["samples"] == n["3"] + n["4"]
    assert r["in_sample"]["train"] == n["3"] + n["4"]
    assert sorted(set(pq.read_table(tmp_path / "ev" / "predictions.parquet").column("split").to_pylist())) == ["3", "4"]
    assert _eval(tmp_path / "run", folds, split=["1"])["in_sample"]["train"] == 0


def test_scored_splits() -> None:
    from mmdata.errors import MMDataError

    assert scored_splits(None, ["test", "train"], "d") == (["test"], None)
    names, note = scored_splits(None, ["train"], "d")
    assert names == ["train"] and "no test split" in note  # type: ignore[operator]
    with pytest.raises(MMDataError, match=r"no split 'test'; it has \['train', 'val'\]: name the split"):
        scored_splits(None, ["train", "val"], "d")
    with pytest.raises(MMDataError, match=r"no split '5'"):
        scored_splits("3,5", ["3", "4"], "d")
    assert scored_splits(["4", "3", "4"], ["3", "4"], "d") == (["4", "3"], None)
    assert run_roles({})["train"] == ["train"]


def test_the_only_split_of_an_unlabelled_folder_is_scored(own: tuple[Path, Path, Path], tmp_path: Path,
                                                          mmdata_cli: Any) -> None:
    """deploy #2: an unlabelled folder sharded has one split, train: no --split scores it and says so."""
    import mmdata

    raw, _, run = own
    flat = tmp_path / "flat"
    flat.mkdir()
    for f in sorted((raw / "cat").iterdir())[:4]:
        shutil.copy(f, flat / f"new_{f.name}")
    unl = tmp_path / "unl"
    mmdata.shard(flat, unl, progress=False)
    r = _eval(run, unl, out=tmp_path / "ev")
    assert r["split"] == "train" and any("no test split" in w for w in r["warnings"])
    code, said = mmdata_cli(["evaluate", str(run), str(unl)])
    assert code == 0 and "its only split, 'train', was scored" in said


def test_a_target_run_predicts_data_without_its_key(tmp_path: Path) -> None:
    """deploy #1: a --target run on data without the metadata key writes predictions with null targets and
    scores, and a warning (a class run does so on unlabelled data); it was refused."""
    import pyarrow.parquet as pq

    from mmdata.testing import shard_target_dataset

    ds = shard_target_dataset(tmp_path / "t", n=30, meta=("score",))
    _train(ds, tmp_path / "run", target="score")
    bare = shard_target_dataset(tmp_path / "b", n=30, meta=())
    r = _eval(tmp_path / "run", bare, out=tmp_path / "ev")
    assert any("has no metadata" in w and "every test sample is unlabelled" in w for w in r["warnings"])
    assert r["samples"]["test"]["scored"] == 0
    rows = pq.read_table(tmp_path / "ev" / "predictions.parquet").to_pylist()
    assert rows and all(p["target"] is None and p["pred"] is not None for p in rows)


def test_per_class_of_a_predicted_class_without_support_is_null() -> None:
    """onemodality #5: recall and F1 of a class with no sample are null (precision a real 0.0 when predicted);
    sklearn's zero_division=0 values stay the default of Scores.per_class; macro-F1 is unchanged."""
    s = Scores(3)
    s.update(torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [5.0, 0, 0]]), torch.tensor([0, 0, 0]))
    got = s.per_class(["a", "b", "c"], absent=None)
    assert got["b"] == {"precision": 0.0, "recall": None, "f1": None, "support": 0}
    assert got["c"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert s.per_class(["a", "b", "c"])["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert s.result()["macro_f1"] == pytest.approx((0.8 + 0.0) / 2)


def test_ids_match_and_reordered() -> None:
    """docsread #8: reordered is only about equal name sets; ids_match says whether ids can be compared."""
    m = class_map(["cat", "bird", "dog"], ["Cat", "dog", "fish"])
    assert m["reordered"] is False and m["ids_match"] is False
    assert class_map(["a", "b"], ["a", "b"])["ids_match"] is True
    assert class_map(["a", "b", "c"], ["a", "b"])["ids_match"] is True  # a subset numbered as the run


def test_absent_and_unknown_class_warnings(own: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """labelnoise #12: one absent class reads "is not a class"; multisite #10: an unknown class without a
    sample in the scored split is not counted among the classes left out."""
    import mmdata

    raw, _, run = own
    split_raw = tmp_path / "raw"
    for c in ("cat", "dog"):
        shutil.copytree(raw / c, split_raw / "test" / c)
    for name in ("zzz", "yyy"):
        (split_raw / "test" / name).mkdir(parents=True)
        shutil.copy(raw / "dog" / "001.png", split_raw / "test" / name / f"{name}.png")
    (split_raw / "train" / "xxx").mkdir(parents=True)  # a class with train samples only
    shutil.copy(raw / "dog" / "002.png", split_raw / "train" / "xxx" / "x.png")
    data = tmp_path / "ds"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(split_raw, data, progress=False)
    r = _eval(run, data, split="test")
    assert r["unknown_classes"]["xxx"] == 0
    assert any("1 of the run's 3 classes is not a class of" in w and "it has no support" in w for w in r["warnings"])
    unknown = next(w for w in r["warnings"] if "the run does not know" in w)
    assert "of 2 classes" in unknown and "'xxx'" not in unknown


def test_rows_in_the_datasets_order_under_workers(own: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """deploy #11: -j 2 writes predictions.parquet in the order -j 0 does (the index's)."""
    import pyarrow.parquet as pq

    _, ds, run = own
    _eval(run, ds, split="train", out=tmp_path / "j0", batch_size=3)
    _eval(run, ds, split="train", out=tmp_path / "j2", batch_size=3, num_workers=2)
    a = pq.read_table(tmp_path / "j0" / "predictions.parquet")
    b = pq.read_table(tmp_path / "j2" / "predictions.parquet")
    assert a.column("key").to_pylist() == b.column("key").to_pylist()
    assert a.schema.metadata == b.schema.metadata
    assert sorted(p.name for p in (tmp_path / "j2").iterdir()) == ["metrics.json", "predictions.parquet"]


def test_help_names_balanced_accuracy(mmdata_cli: Any) -> None:
    code, said = mmdata_cli(["evaluate", "--help"])
    assert code == 0 and "balanced accuracy" in said
