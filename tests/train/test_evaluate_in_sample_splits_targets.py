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
    assert len(said) == 1 and f"{n['train']} of the {n['train']} samples of" in said[0]
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
    assert r["in_sample"]["by"] is None and r["in_sample"]["train"] is None and r["in_sample"]["val"] is None


def test_the_cli_says_when_the_in_sample_check_was_not_done(own: tuple[Path, Path, Path], tmp_path: Path,
                                                            mmdata_cli: Any) -> None:
    """review F1: ``by`` null was in --json only; the printed result says the check was not done."""
    import mmdata

    raw, ds, run = own
    other = tmp_path / "other"
    mmdata.shard(raw, other, split="train=0.5,test=0.5", seed=3, progress=False)
    code, said = mmdata_cli(["evaluate", str(run), str(other)])
    assert code == 0 and "in-sample check: not done" in said
    code, said = mmdata_cli(["evaluate", str(run), str(ds)])
    assert code == 0 and "in-sample check" not in said


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


def test_per_class_f1_reconciles_with_macro_f1() -> None:
    """onemodality #5 / review F2: a class without support that the model predicts has precision, recall and F1
    0.0 (scikit-learn's zero_division=0) and counts in macro-F1; one never predicted either is null and left out:
    macro-F1 is the mean of the non-null per-class F1 values; balanced accuracy that of the recalls of the classes
    with support."""
    s = Scores(3)
    s.update(torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [5.0, 0, 0]]), torch.tensor([0, 0, 0]))
    got = s.per_class(["a", "b", "c"], absent=None)
    assert got["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert got["c"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    f1s = [c["f1"] for c in got.values() if c["f1"] is not None]
    result = s.result()
    assert result["macro_f1"] == pytest.approx(sum(f1s) / len(f1s)) == pytest.approx((0.8 + 0.0) / 2)
    recalls = [c["recall"] for c in got.values() if c["support"]]
    assert result["balanced_accuracy"] == pytest.approx(sum(recalls) / len(recalls))


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


def _relabelled(raw: Path, to: Path) -> Path:
    """A copy of ``raw`` with cat's first sample moved to dog (new key, same bytes): another version."""
    shutil.copytree(raw, to)
    for f in sorted((to / "cat").glob("000.*")):
        f.rename(to / "dog" / f"x{f.name}")
    return to


def _shard_from(raw: Path, out: Path, parent: Path, **kw: Any) -> Path:
    import mmdata

    with warnings.catch_warnings():  # the moved sample's new split: not what is tested
        warnings.simplefilter("ignore")
        mmdata.shard(raw, out, split="train=0.5,val=0.25,test=0.25", split_from=parent, progress=False, **kw)
    return out


def test_a_chain_of_split_from_versions_is_followed(own: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """review F1: v1 (the run's) -> v2 -> v3, each sharded --split-from the one before, side by side: v3's card
    names v2, not the run's data; the chain is followed to v1 and v3's train split matched against it."""
    from mmdata.shards.index import load_card

    raw, ds, run = own
    raw2 = _relabelled(raw, tmp_path / "raw2")
    v2 = _shard_from(raw2, ds.parent / f"chain_v2_{tmp_path.name}", ds)
    v3 = _shard_from(raw2, ds.parent / f"chain_v3_{tmp_path.name}", v2)
    r = _eval(run, v3, split="train")
    assert r["in_sample"]["by"] == f"index of {ds.resolve()}"
    assert r["in_sample"]["train"] == load_card(v3)["splits"]["train"]["samples"] > 0


def test_a_moved_run_dataset_is_found_among_its_neighbours(own: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """review F1: the run's dataset renamed (or sharded --name X): split_from names a folder that is not there;
    a folder beside it whose card has the fingerprint is the one."""
    _, ds, run = own
    here = tmp_path / "data"
    here.mkdir()
    moved = here / "renamed"
    shutil.copytree(ds, moved)
    v2 = _shard_from(_relabelled(own[0], tmp_path / "raw2"), here / "v2", moved)
    shutil.copytree(moved, here / "v1_renamed_again")
    shutil.rmtree(moved)
    r = _eval(run, v2, split="train")
    assert r["in_sample"]["by"] == f"index of {(here / 'v1_renamed_again').resolve()}"
    assert r["in_sample"]["train"] > 0


def test_a_version_of_the_runs_data_not_found_is_still_warned(own: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """review F1: DATA's card says it was sharded --split-from the run's dataset, which is not beside it: its
    samples that kept their split are probably in-sample; counted by split name (by: split_from), and said."""
    from mmdata.shards.index import load_card

    raw, ds, run = own
    v2 = _shard_from(_relabelled(raw, tmp_path / "raw2"), tmp_path / "elsewhere" / "v2", ds)
    r = _eval(run, v2, split="train")
    n = load_card(v2)["splits"]["train"]["samples"]
    assert r["in_sample"] == {"train": n, "val": 0, "of": n, "by": "split_from"}
    said = [w for w in r["warnings"] if "in-sample" in w]
    assert len(said) == 1 and "--split-from" in said[0] and "not found" in said[0]
    t = _eval(run, v2, split="test")
    assert t["in_sample"]["by"] == "split_from" and t["in_sample"]["train"] == 0
    assert not any("in-sample" in w for w in t["warnings"])


def test_a_media_member_shared_by_many_training_samples_marks_none(tmp_path: Path) -> None:
    """review F5: a blank image reused by many training rows is no evidence that a sample holding it was seen."""
    from mmdata.train.score_run import _seen_marks

    ref = {"key": [f"k{i}" for i in range(10)], "split": ["train"] * 10,
           "members": [["png", "json"]] * 10, "sizes": [[10, 5]] * 9 + [[11, 5]],
           "member_crc32": [[7, 1]] * 9 + [[8, 2]]}
    seen = _seen_marks(ref, {"train": ["train"], "val": ["val"], "test": ["test"]})
    assert (10, 7) not in seen["train"] and (11, 8) in seen["train"] and ("key", "k0") in seen["train"]
