"""QA34 (leaderboard #1, #4; analyst D1, D5, D8): ``mmdata evaluate``'s scores hold for a benchmark — labelled
samples of a class the run cannot match count as errors (the headline never rises by dropping them), a
``class_map`` fixes a spelling, ``unknown="error"`` refuses; the scores sit under a fixed key whatever the split is
called; predictions.parquet carries the data's own class ids; the in-sample check finds the run's data beside
DATA (also an ``mmdata augment`` output of DATA) or at ``train_data``, and says null when it did not check."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

from mmdata.errors import MMDataError
from tests.train.test_evaluate_in_sample_splits_targets import _eval, _train


def _shard(raw: Path, out: Path, **kw: Any) -> Path:
    import mmdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, out, progress=False, **kw)
    return out


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(raw class folders, their dataset train/val/test in a folder of its own, a run on it)."""
    from mmdata.testing.media import make_class_folders

    root = tmp_path_factory.mktemp("qa34_bench")
    raw = make_class_folders(root / "raw", per_class=8)
    ds = _shard(raw, root / "data" / "ds", split="train=0.5,val=0.25,test=0.25")
    _train(ds, root / "run")
    return raw, ds, root / "run"


def _renamed_class(raw: Path, to: Path, old: str, new: str) -> Path:
    shutil.copytree(raw, to)
    (to / old).rename(to / new)
    return to


def _preds(folder: Path) -> Any:
    import pandas as pd

    return pd.read_parquet(folder / "predictions.parquet")


def test_samples_of_a_class_the_run_lacks_count_as_errors(bench: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """leaderboard #1: a data class spelt otherwise than the run's ('dogs' for 'dog'): its samples are scored as
    wrong (every labelled sample in the denominator), with a per-class row; the old leave-out is asked for."""
    raw, _, run = bench
    data = _shard(_renamed_class(raw, tmp_path / "raw", "dog", "dogs"), tmp_path / "d" / "typo",
                  split="train=0.5,test=0.5")
    r = _eval(run, data, split="test", out=tmp_path / "ev")
    n = r["samples"]["test"]
    assert n["unknown_class"] > 0 and n["scored"] == n["labelled"]
    p = _preds(tmp_path / "ev")
    lab = p[p.label_name.notna()]
    right = (lab.label_name == lab.pred_name).mean()  # 'dogs' is never predicted: wrong
    assert r["scores"]["accuracy"] == pytest.approx(right)
    assert r["test"]["accuracy"] == r["scores"]["accuracy"]
    assert r["per_class"]["test"]["dogs"]["support"] == n["unknown_class"]
    assert r["per_class"]["test"]["dogs"]["recall"] == 0.0
    assert r["unknown_classes_scored"] == "wrong"
    assert any("scored as wrong" in w and "'dogs'" in w for w in r["warnings"])
    left = _eval(run, data, split="test", unknown="leave-out")
    assert left["samples"]["test"]["scored"] == n["labelled"] - n["unknown_class"]
    assert left["scores"]["accuracy"] >= r["scores"]["accuracy"]
    known = lab[lab.label_name != "dogs"]
    assert left["scores"]["accuracy"] == pytest.approx((known.label_name == known.pred_name).mean())
    # the predictions file is the same either way: label -2, the data's own name
    assert set(p[p.label_name == "dogs"].label) == {-2}


def test_unknown_error_refuses_and_rename_matches(bench: tuple[Path, Path, Path], tmp_path: Path) -> None:
    raw, ds, run = bench
    data = _shard(_renamed_class(raw, tmp_path / "raw", "dog", "Dog"), tmp_path / "d" / "case",
                  split="train=0.5,test=0.5")
    with pytest.raises(MMDataError, match=r"the run does not know \('Dog': 4") as e:
        _eval(run, data, split="test", unknown="error", out=tmp_path / "ev")
    assert "--class-map RUN=DATA" in str(e.value) and not (tmp_path / "ev").exists()
    r = _eval(run, data, split="test", class_map={"dog": "Dog"}, out=tmp_path / "ev2")
    assert r["samples"]["test"]["unknown_class"] == 0 and r["class_map"]["Dog"] == "dog"
    p = _preds(tmp_path / "ev2")
    assert (p[p.label_name == "Dog"].label >= 0).all()
    with pytest.raises(MMDataError, match="class_map.*has no class 'Cow'"):
        _eval(run, data, split="test", class_map={"dog": "Cow"})
    with pytest.raises(MMDataError, match="class_map.*'doggy' is not a class of the run"):
        _eval(run, data, split="test", class_map={"doggy": "Dog"})
    with pytest.raises(MMDataError, match="unknown"):
        _eval(run, data, split="test", unknown="drop")


def test_a_class_renamed_in_the_runs_metrics_json_does_not_raise_the_score(bench: tuple[Path, Path, Path],
                                                                           tmp_path: Path) -> None:
    _, ds, run = bench
    honest = _eval(run, ds, split="test")
    game = tmp_path / "game"
    shutil.copytree(run, game)
    m = json.loads((game / "metrics.json").read_text())
    names = m["classes"]["names"]
    m["classes"]["names"] = [*names[:-1], "not-a-" + names[-1]]
    (game / "metrics.json").write_text(json.dumps(m))
    gamed = _eval(game, ds, split="test")
    assert gamed["samples"]["test"]["scored"] == honest["samples"]["test"]["scored"]
    assert gamed["scores"]["accuracy"] <= honest["scores"]["accuracy"]


@pytest.mark.parametrize("name", ["samples", "split", "warnings"])
def test_scores_under_a_fixed_key_whatever_the_split_is_called(bench: tuple[Path, Path, Path], tmp_path: Path,
                                                               name: str) -> None:
    """analyst D1: a split named like a result key erased the scores (or the key)."""
    raw, _, run = bench
    data = _shard(raw, tmp_path / "d" / "odd", split=f"train=0.5,{name}=0.5")
    r = _eval(run, data, split=name, out=tmp_path / "ev")
    assert isinstance(r["scores"]["accuracy"], float) and r["scores"]["accuracy"] == r["scores"]["accuracy"]
    assert r["split"] == name and isinstance(r["warnings"], list)
    assert r["samples"][name]["scored"] > 0 and r["per_class"][name]
    on_disk = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert on_disk["scores"]["accuracy"] == pytest.approx(r["scores"]["accuracy"])


def test_predictions_carry_the_datas_class_ids(bench: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """analyst D5: label / pred are the run's ids; data_label / data_pred the data's (a join with index.parquet
    compares like with like), said in the schema's metadata."""
    import pandas as pd
    import pyarrow.parquet as pq

    raw, _, run = bench
    names = sorted(p.name for p in raw.iterdir())
    rev = tmp_path / "labels.txt"
    rev.write_text("\n".join(reversed(names)) + "\n")
    data = _shard(raw, tmp_path / "d" / "rev", split="train=0.5,test=0.5", label_names=str(rev))
    r = _eval(run, data, split="test", out=tmp_path / "ev")
    assert r["ids_match"] is False
    p = _preds(tmp_path / "ev")
    i = pd.read_parquet(data / "index.parquet")
    x = p.merge(i[["key", "label"]], on="key", suffixes=("", "_index"))
    assert (x.data_label == x.label_index).all() and (x.label != x.label_index).any()
    data_names = list(reversed(names))
    assert [data_names[k] for k in x.data_pred] == list(x.pred_name)
    meta = json.loads(pq.read_schema(tmp_path / "ev" / "predictions.parquet").metadata[b"mmdata"])
    assert meta["data_names"] == data_names and "run" in meta["ids"]["label"] and "data" in meta["ids"]["data_label"]


def test_a_run_trained_on_the_test_samples_beside_data_is_caught(bench: tuple[Path, Path, Path],
                                                                 tmp_path: Path) -> None:
    """leaderboard #4: the participant's training data sits beside DATA (another fingerprint, no --split-from):
    found by the run's data_fingerprint, matched by key and bytes; elsewhere it is given as train_data."""
    import pandas as pd

    raw, ds, _ = bench
    cheat = _shard(raw, ds.parent / f"cheat_{tmp_path.name}", split="train=0.6,val=0.2,test=0.2", seed=5)
    run = tmp_path / "run_cheat"
    _train(cheat, run)
    i, c = pd.read_parquet(ds / "index.parquet"), pd.read_parquet(cheat / "index.parquet")
    seen = i[i.split == "test"].key.isin(c[c.split != "test"].key).sum()
    r = _eval(run, ds, split="test")
    got = r["in_sample"]
    assert got["by"] == f"index of {cheat.resolve()}" and got["train"] + got["val"] == seen > 0
    assert any("in-sample" in w for w in r["warnings"])
    away = tmp_path / "away"
    shutil.copytree(ds, away / "ds")
    shutil.move(str(cheat), tmp_path / "elsewhere")
    assert _eval(run, away / "ds", split="test")["in_sample"]["by"] is None
    given = _eval(run, away / "ds", split="test", train_data=tmp_path / "elsewhere")
    assert given["in_sample"]["by"] == f"index of {(tmp_path / 'elsewhere').resolve()}"
    assert given["in_sample"]["train"] + given["in_sample"]["val"] == seen
    with pytest.raises(MMDataError, match="train_data.*not the data the run trained on"):
        _eval(run, away / "ds", split="test", train_data=ds)


def test_not_checked_is_null_not_zero(bench: tuple[Path, Path, Path], tmp_path: Path) -> None:
    raw, _, run = bench
    other = _shard(raw, tmp_path / "o" / "other", split="train=0.5,test=0.5", seed=3)
    r = _eval(run, other, split="test")
    assert r["in_sample"] == {"train": None, "val": None, "of": r["samples"]["test"]["samples"], "by": None}


def test_a_run_on_an_augment_of_data_is_in_sample(bench: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """analyst D8: the run trained on `mmdata augment DATA` (new keys; aug_source names DATA's key) beside DATA."""
    from mmdata.augment.offline import augment_dataset
    from mmdata.shards.index import load_card

    _, ds, _ = bench
    aug = ds.parent / f"aug_{tmp_path.name}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        augment_dataset(ds, aug, {"image": [{"op": "hflip", "p": 1.0}]}, copies=1, progress=False)
    run = tmp_path / "run_aug"
    _train(aug, run)
    r = _eval(run, ds, split="train")
    n = load_card(ds)["splits"]["train"]["samples"]
    assert r["in_sample"]["by"] == f"index of {aug.resolve()}" and r["in_sample"]["train"] == n
    t = _eval(run, ds, split="test")
    assert t["in_sample"]["train"] == 0 and t["in_sample"]["by"] == f"index of {aug.resolve()}"
