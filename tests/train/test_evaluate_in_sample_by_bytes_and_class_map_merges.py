"""QA34 review B1: the in-sample check matches a dataset found only beside DATA (or given as ``train_data``) by
image / audio bytes, never by key alone (an unrelated set with the same key scheme is not the test samples) and
counts an augment's ``aug_source`` only when it was made from DATA; ``class_map`` never merges two data classes;
what can be refused (``train_data``, ``unknown="error"``) is refused before the model runs, leaving nothing in
``out``; a split called ``ok`` leaves the ``--json`` envelope alone; a label-set run's unknown labels are counted
and said, its ``class_map`` applied; a regression run refuses both options."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from mmdata.errors import MMDataError


def _quiet(fn: Any, *args: Any, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _train(data: Path, out: Path, **kw: Any) -> dict[str, Any]:
    from mmdata.train import train

    torch.set_num_threads(1)
    return _quiet(train, data, epochs=1, seed=0, out=out, batch_size=8, threads=1, eval_robustness=False, **kw)


def _eval(*args: Any, **kw: Any) -> dict[str, Any]:
    from mmdata.train.score_run import evaluate_run

    return _quiet(evaluate_run, *args, **kw)


def _shard(raw: Path, out: Path, **kw: Any) -> Path:
    import mmdata

    _quiet(mmdata.shard, raw, out, progress=False, **kw)
    return out


def _other_pixels(raw: Path, to: Path) -> Path:
    """``raw``'s class folders and file names (so the same keys) with other image bytes."""
    from mmdata.testing.media import image_bytes

    shutil.copytree(raw, to)
    for i, png in enumerate(sorted(to.rglob("*.png"))):
        png.write_bytes(image_bytes(1000 + i))
    return to


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(raw class folders, their dataset in a folder of its own, a run on it)."""
    from mmdata.testing.media import make_class_folders

    root = tmp_path_factory.mktemp("b1_bench")
    raw = make_class_folders(root / "raw", per_class=6)
    ds = _shard(raw, root / "data" / "ds", split="train=0.5,val=0.25,test=0.25")
    _train(ds, root / "run")
    return raw, ds, root / "run"


def test_an_unrelated_dataset_beside_data_with_the_same_keys_is_matched_by_bytes(bench: tuple[Path, Path, Path],
                                                                                   tmp_path: Path) -> None:
    """B1-1: other pixels, the same keys, beside DATA, its splits drawn otherwise: no test sample was seen."""
    from mmdata.augment.offline import augment_dataset
    import pandas as pd

    raw, ds, _ = bench
    other = _shard(_other_pixels(raw, tmp_path / "raw2"), ds.parent / f"other_{tmp_path.name}",
                   split="train=0.6,val=0.2,test=0.2", seed=5)
    i, o = pd.read_parquet(ds / "index.parquet"), pd.read_parquet(other / "index.parquet")
    assert i[i.split == "test"].key.isin(o[o.split != "test"].key).sum() > 0  # keys collide
    run = tmp_path / "run_other"
    _train(other, run)
    got = _eval(run, ds, split="test")
    assert got["in_sample"]["by"] == f"index of {other.resolve()}"
    assert got["in_sample"]["train"] == got["in_sample"]["val"] == 0
    assert not any("in-sample" in w for w in got["warnings"])
    # an augment of the unrelated set: its aug_source keys are the other set's, not DATA's
    aug = ds.parent / f"aug_other_{tmp_path.name}"
    _quiet(augment_dataset, other, aug, {"image": [{"op": "hflip", "p": 1.0}]}, copies=1, progress=False)
    run2 = tmp_path / "run_aug_other"
    _train(aug, run2)
    got = _eval(run2, ds, split="test")
    assert got["in_sample"]["by"] == f"index of {aug.resolve()}" and got["in_sample"]["train"] == 0
    shutil.rmtree(other)
    shutil.rmtree(aug)


def test_not_checked_says_why(bench: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """B1-7 / B1-8: the report says why the check was not done and names --train-data."""
    raw, _, run = bench
    other = _shard(raw, tmp_path / "o" / "other", split="train=0.5,test=0.5", seed=3)
    r = _eval(run, other, split="test")
    assert r["in_sample"]["by"] is None and "--train-data" in r["in_sample_not_done"]


def test_class_map_never_merges_two_data_classes(bench: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """B1-3: a data name given twice, or a rename onto a run class another data class already has, is refused;
    a swap is fine."""
    raw, _, run = bench
    moved = tmp_path / "raw_m"
    shutil.copytree(raw, moved)
    (moved / "cat").rename(moved / "cats")
    data = _shard(moved, tmp_path / "m" / "ds", split="test=1.0")
    with pytest.raises(MMDataError, match="given twice"):
        _eval(run, data, class_map={"cat": "cats", "dog": "cats"})
    with pytest.raises(MMDataError, match="'cats' and 'dog'|'dog' and 'cats'"):
        _eval(run, data, class_map={"dog": "cats"})
    ok = _eval(run, data, class_map={"cat": "cats"})
    assert ok["class_map"]["cats"] == "cat" and not ok["unknown_classes"]
    swapped = _eval(run, data, class_map={"cat": "dog", "dog": "cats"})
    assert swapped["class_map"] == {"bird": "bird", "cats": "dog", "dog": "cat"}


def test_refusals_come_before_the_model_and_leave_no_out(bench: tuple[Path, Path, Path], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """B1-5: a wrong train_data and unknown='error' are refused before any batch is scored; --out stays absent."""
    import mmdata.train.evaluate as ev

    raw, ds, run = bench
    moved = tmp_path / "raw_m"
    shutil.copytree(raw, moved)
    (moved / "cat").rename(moved / "cats")
    data = _shard(moved, tmp_path / "m" / "ds", split="test=1.0")

    def never(*a: Any, **k: Any) -> Any:
        raise AssertionError("the model ran before the refusal")

    monkeypatch.setattr(ev, "evaluate", never)  # the refusal must not need it
    with pytest.raises(MMDataError, match="train_data.*not the data the run trained on"):
        _eval(run, data, out=tmp_path / "ev" / "t", train_data=data)
    with pytest.raises(MMDataError, match=r"'cats': 6.*unknown='error'"):
        _eval(run, data, out=tmp_path / "ev" / "u", unknown="error")
    assert not (tmp_path / "ev").exists()


def test_a_split_called_ok_leaves_the_json_envelope(bench: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """B1-6: print_json keeps a result's own ``ok``: the scores must not be there."""
    from mmdata.train.score_run import RESULT_KEYS

    raw, _, run = bench
    data = _shard(raw, tmp_path / "k" / "ds", split="train=0.5,ok=0.5")
    r = _eval(run, data, split="ok")
    assert "ok" not in r and r["scores"]["accuracy"] is not None
    assert {"ok", "exit_code", "error", "schema"} <= RESULT_KEYS


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(a label-set dataset, a run predicting its ``genres``, a copy whose tag 'even' is spelt 'evens')."""
    from mmdata.testing.messy import shard_target_dataset

    root = tmp_path_factory.mktemp("b1_tags")
    ds = _quiet(shard_target_dataset, root / "t", n=40)
    _train(ds, root / "run", target="genres")
    raw = root / "t" / "raw"
    text = (raw / "manifest.csv").read_text(encoding="utf-8")
    assert '""even""' in text
    (raw / "m2.csv").write_text(text.replace('""even""', '""evens""'), encoding="utf-8")
    other = _shard(raw / "m2.csv", root / "iso2" / "ds", meta=["score", "genres", "speaker"],
                   split={"train": 0.6, "val": 0.2, "test": 0.2})
    return ds, root / "run", other


def test_a_label_the_run_lacks_is_counted_and_said(tagged: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """B1-2: an unknown tag is counted and warned; class_map spells it as the run does; unknown='error' refuses
    (leaving no out)."""
    _, run, other = tagged
    r = _eval(run, other, split="test")
    assert r["unknown_classes"].get("evens", 0) > 0
    assert any("'evens'" in w and "does not know" in w for w in r["warnings"])
    fixed = _eval(run, other, split="test", class_map={"even": "evens"})
    assert fixed["unknown_classes"] == {} and not any("does not know" in w for w in fixed["warnings"])
    with pytest.raises(MMDataError, match="'evens'.*unknown='error'"):
        _eval(run, other, split="test", unknown="error", out=tmp_path / "ev")
    assert not (tmp_path / "ev").exists()
    with pytest.raises(MMDataError, match="not a label of the run"):
        _eval(run, other, split="test", class_map={"evens": "even"})


def test_a_regression_run_refuses_class_options(tagged: tuple[Path, Path, Path], tmp_path: Path) -> None:
    ds, _, _ = tagged
    run = tmp_path / "run_score"
    _train(ds, run, target="score")
    with pytest.raises(MMDataError, match="apply to class and label-set runs"):
        _eval(run, ds, split="test", unknown="error")
    with pytest.raises(MMDataError, match="apply to class and label-set runs"):
        _eval(run, ds, split="test", class_map={"a": "b"})
