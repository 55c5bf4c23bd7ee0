"""An environmental-sound researcher's QA (ESC-50-style clips at many rates, one float WAV holding NaN,
predefined folds): the trainer's default sample rate on a tie, the hint and skip option for a sample
that does not decode, the recipe snippet its spec-ops warning recommends, and folds as splits."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.errors import MMDataError, ShardError


def _esc(root: Path, rows: list[tuple[int, str, str]], nan: set[int] = frozenset()) -> Path:  # type: ignore[assignment]
    """A manifest dataset of short float WAV clips: ``rows`` of (rate, class, split); clip ``i`` in
    ``nan`` holds NaN samples. Sharded with the default ``--check header`` (NaN passes it)."""
    import soundfile as sf

    raw = root / "raw"
    raw.mkdir(parents=True)
    lines = ["filename,category,split"]
    for i, (rate, cls, split) in enumerate(rows):
        t = np.arange(int(0.1 * rate)) / rate
        x = (0.3 * np.sin(2 * np.pi * (300 if cls == "dog" else 900) * t)).astype("float32")
        if i in nan:
            x[10:20] = np.nan
        sf.write(raw / f"c{i}.wav", x, rate, subtype="FLOAT")
        lines.append(f"c{i}.wav,{cls},{split}")
    (raw / "m.csv").write_text("\n".join(lines) + "\n")
    mmdata.shard(raw / "m.csv", root / "ds", columns={"audio": "filename", "label": "category", "split": "split"},
                 progress=False)
    return root / "ds"


# -- (A) the default sample rate: a tie goes to the higher rate ---------------------------------------------

def test_rate_tie_goes_to_the_higher_rate_and_says_so(tmp_path: Path) -> None:
    from mmdata.train.config import derive_inputs

    rows = [(8000, "dog", "train"), (8000, "rain", "train"), (16000, "dog", "train"), (16000, "rain", "train"),
            (44100, "dog", "train"), (16000, "dog", "val"), (16000, "rain", "test")]
    spec = derive_inputs(_esc(tmp_path, rows), ["audio"])
    assert spec.sample_rate == 16000  # 8000 low-passed every 16/44.1 kHz clip to 4 kHz
    assert "a tie of 8000, 16000 Hz (2 clips each): the higher" in spec.sources["sample_rate"]


def test_rate_without_a_tie_is_the_most_common_and_unchanged(tmp_path: Path) -> None:
    from mmdata.train.config import derive_inputs

    rows = [(8000, "dog", "train"), (8000, "rain", "train"), (16000, "dog", "train"), (16000, "dog", "val"),
            (16000, "rain", "test")]
    spec = derive_inputs(_esc(tmp_path, rows), ["audio"])
    assert spec.sample_rate == 8000
    assert spec.sources["sample_rate"] == "most common of training rates {8000: 2, 16000: 1}"


def test_ablation_and_alignment_use_the_same_derived_rate() -> None:
    """The ablation runner trains through mmdata.train.train and its alignment pass derives the format with
    derive_inputs too: neither picks a rate of its own."""
    import inspect

    from mmdata.ablate import design, runner
    from mmdata.train import alignment

    for mod in (design, runner):
        src = inspect.getsource(mod)
        if mod is design:  # the user's own trainer.sample_rate is passed through (QA27), never picked here
            start = src.index("TRAINER_KEYS = (")
            src = src[:start] + src[src.index('"max_tokens")', start):]
        assert "sample_rate" not in src
    assert "derive_inputs(st, mods)" in inspect.getsource(alignment)


# -- (B) a sample that does not decode: named, with a hint; on_error="skip" ---------------------------------

@pytest.fixture(scope="module")
def nan_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [(8000, "dog" if i % 2 else "rain", ("train", "train", "val", "test")[i % 4]) for i in range(16)]
    return _esc(tmp_path_factory.mktemp("nan"), rows, nan={3})  # c3: test


def test_nan_clip_passes_verify_and_stops_train_naming_it_with_a_hint(nan_ds: Path) -> None:
    from mmdata.train import train

    assert mmdata.verify(nan_ds)
    with pytest.raises(ShardError) as e:
        train(nan_ds, epochs=1, threads=1, eval_robustness=False)
    msg = str(e.value)
    assert re.search(r"shard \S+test-000000\.tar: sample 'c3': c3\.wav: cannot decode", msg), msg
    assert f"mmdata verify {nan_ds} --deep" in msg and "--check decode" in msg and "--on-error skip" in msg
    assert "\n" not in msg  # one line, also when a DataLoader worker raised it (its traceback is dropped)


def test_nan_clip_error_from_a_worker_is_one_line(nan_ds: Path) -> None:
    from mmdata.train import train

    with pytest.raises(ShardError) as e:
        train(nan_ds, epochs=1, threads=1, eval_robustness=False, num_workers=1, cache=False)
    assert "\n" not in str(e.value) and "sample 'c3'" in str(e.value) and "--deep" in str(e.value)


def test_on_error_skip_leaves_the_nan_clip_out_and_counts_it(nan_ds: Path) -> None:
    from mmdata.train import train

    m = train(nan_ds, epochs=1, threads=1, eval_robustness=False, on_error="skip")
    assert m["skipped"] == {"train": {}, "val": {}, "test": {"corrupt audio": 1}}
    assert any("1 sample(s) of the test split were skipped" in w for w in m["warnings"])
    assert m["config"]["on_error"] == "skip"
    with pytest.raises(MMDataError, match=r"on_error \(--on-error\): 'ignore' is not one of \['raise', 'skip'\]"):
        train(nan_ds, epochs=1, on_error="ignore")


def test_on_error_skip_counts_what_was_scored(nan_ds: Path) -> None:
    """metrics.json's per-split counts came from the index alone, so the skipped clip was still counted
    among the labelled test samples the scores were over: each split now says how many samples were
    skipped, and val / test how many labelled / unlabelled samples the scores are over."""
    from mmdata.train import train

    m = train(nan_ds, epochs=1, threads=1, eval_robustness=False, on_error="skip")
    index = pq.read_table(nan_ds / "index.parquet").to_pandas()
    n_test = int((index["split"] == "test").sum())
    assert m["samples"]["test"]["samples"] == n_test  # the index's count, as before
    assert m["samples"]["test"]["skipped"] == 1 and m["samples"]["train"]["skipped"] == 0
    assert m["samples"]["test"]["scored"] == {"labelled": m["samples"]["test"]["labelled"] - 1, "unlabelled": 0}
    assert m["samples"]["val"]["scored"] == {"labelled": m["samples"]["val"]["labelled"], "unlabelled": 0}


def test_default_run_records_no_on_error(nan_ds: Path, tmp_path: Path) -> None:
    """The default's metrics are as before: no skipped / on_error keys."""
    from mmdata.train import train

    ok = _esc(tmp_path, [(8000, "dog" if i % 2 else "rain", ("train", "train", "val", "test")[i % 4]) for i in range(8)])
    m = train(ok, epochs=1, threads=1, eval_robustness=False)
    assert "skipped" not in m and "on_error" not in m["config"]


def test_cli_train_on_error_skip(nan_ds: Path, mmdata_cli: Callable[[list[str]], tuple[int, str]]) -> None:
    base = ["train", str(nan_ds), "--epochs", "1", "--threads", "1", "--no-robustness"]
    code, out = mmdata_cli([*base, "--on-error", "skip"])
    assert code == 0 and "1 sample(s) of the test split were skipped" in out, out
    m = mmdata_cli([*base, "--on-error", "skip", "--json"])[1]
    n = json.JSONDecoder().raw_decode(m[m.index("{"):])[0]["samples"]["test"]  # stderr may follow the document
    # QA: the table said "N of N" for test although its scores were over N - 1 labelled samples
    assert f"{n['labelled'] - 1} of {n['samples']} (1 skipped)" in out, out
    code, out = mmdata_cli(base)
    assert code == 2 and "sample 'c3'" in out and "--deep" in out, out


def test_preview_of_a_nan_clip_names_it_with_a_hint(tmp_path: Path) -> None:
    from mmdata.augment.preview import preview

    ds = _esc(tmp_path, [(8000, "dog", "train"), (8000, "rain", "train"), (8000, "dog", "val"), (8000, "dog", "test")],
              nan={1})
    with pytest.raises(ShardError) as e:
        preview(ds, {"audio": [{"op": "gain"}]}, tmp_path / "p.png", n=2, variants=1)
    assert "sample 'c1'" in str(e.value) and f"mmdata verify {ds} --deep" in str(e.value)
    assert "--check decode" in str(e.value)


# -- (C) the spec-ops warning recommends a target the recipe loader takes ----------------------------------

def test_spec_warning_recommends_a_loadable_target() -> None:
    from mmdata.train.config import SPEC_UNUSED

    m = re.search(r"time_mask with target: (\w+)", SPEC_UNUSED)
    assert m, SPEC_UNUSED
    rec = mmdata.load_recipe(f"audio: [{{op: time_mask, p: 0.5, target: {m.group(1)}}}]")
    assert rec.to_dict()["audio"][0]["target"] == "wave"


# -- (E) k-fold cross-validation: folds sharded as splits 1..5 -------------------------------------------

@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 clips, 2 classes, folds 1-5 as splits (``--column split=fold``), 4 clips each."""
    rows = [(8000, "dog" if i % 2 else "rain", str(i % 5 + 1)) for i in range(20)]
    return _esc(tmp_path_factory.mktemp("folds"), rows)


def test_folds_without_split_options_name_them_in_the_error(folds: Path) -> None:
    from mmdata.train import train

    with pytest.raises(MMDataError, match=r"it has \['1', '2', '3', '4', '5'\].*--val-split 4 --test-split 5"):
        train(folds, epochs=1)


def test_val_and_test_split_train_on_the_other_folds(folds: Path) -> None:
    from mmdata.train import train

    m = train(folds, epochs=1, threads=1, eval_robustness=False, val_split="4", test_split="5")
    assert m["config"]["splits"] == {"train": ["1", "2", "3"], "val": ["4"], "test": ["5"]}
    assert {s: n["samples"] for s, n in m["samples"].items()} == {"train": 12, "val": 4, "test": 4}
    assert m["test"]["accuracy"] is not None and set(m["per_class"]) == {"val", "test"}


def test_fold_predictions_name_their_fold(folds: Path, tmp_path: Path) -> None:
    """Known limit: with folds as splits, predictions.parquet's `split` column said 'test' for every
    fold, so five folds' predictions concatenated could not be told apart. It now holds each sample's
    split as index.parquet names it (the fold); a run without folds still writes 'test'."""
    import pyarrow.parquet as pq

    from mmdata.train import train

    for fold in ("5", "2"):
        train(folds, epochs=1, threads=1, eval_robustness=False, val_split="4", test_split=fold, out=tmp_path / fold)
    rows = [r for f in ("5", "2") for r in pq.read_table(tmp_path / f / "predictions.parquet").to_pylist()]
    truth = {s.key: f for f in ("5", "2") for s in mmdata.open_dataset(folds, split=f)}
    assert {r["key"]: r["split"] for r in rows} == truth and len(rows) == len(truth) == 8


def test_folds_with_a_balanced_recipe(folds: Path) -> None:
    """A recipe's balance reads the training folds as one split (refused before index_groups took lists)."""
    from mmdata.train import train

    rec = {"balance": {"by": "label", "mode": "over"}}
    m = train(folds, epochs=1, threads=1, eval_robustness=False, val_split="4", test_split="5", recipe=rec)
    assert m["config"]["splits"]["train"] == ["1", "2", "3"] and m["test"]["accuracy"] is not None


def test_train_split_list_streamed_with_a_worker(folds: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from mmdata.train import train

    m = train(folds, epochs=1, threads=1, eval_robustness=False, train_split=["1", "2"], val_split=3, test_split="4",
              cache=False, num_workers=1, out=tmp_path / "run")
    assert m["config"]["splits"] == {"train": ["1", "2"], "val": ["3"], "test": ["4"]}
    assert m["samples"]["train"]["samples"] == 8
    keys = pq.read_table(tmp_path / "run" / "predictions.parquet").column("key").to_pylist()
    test_keys = [s.key for s in mmdata.open_dataset(folds, split="4")]
    assert sorted(keys) == sorted(test_keys)


@pytest.mark.parametrize(("kw", "err"), [
    ({"val_split": "9", "test_split": "5"}, r"val_split \(--val-split\): \S+ has no split '9'; it has \['1'"),
    ({"val_split": "4", "test_split": "4"}, r"split '4' plays two roles"),
    ({"train_split": "1,4", "val_split": "4", "test_split": "5"}, r"split '4' plays two roles"),
    ({"train_split": "1,1", "val_split": "4", "test_split": "5"}, r"train_split \(--train-split\): a split is named twice"),
    ({"val_split": "4,5", "test_split": "3"}, r"val_split \(--val-split\): expected one split name"),
])
def test_split_options_are_checked(folds: Path, kw: dict, err: str) -> None:
    from mmdata.train import train

    with pytest.raises(MMDataError, match=err):
        train(folds, epochs=1, **kw)


def test_a_number_for_a_zero_padded_fold_says_to_quote_it() -> None:
    """Known limit: an ablation recipe's `val_split: 04` is the number 4 to YAML, and the error only listed
    the splits; it now names the zero-padded one and says to quote it."""
    from mmdata.train.config import split_roles

    card = {"splits": {s: {} for s in ("01", "02", "03", "04", "05")}}
    with pytest.raises(MMDataError, match=r"no split '4'; .* \('04' has the same number: a YAML value 04 is read as 4 — quote it"):
        split_roles("esc", card, val_split=4, test_split="05")


def test_folds_with_a_label_fraction_and_pretraining(tmp_path: Path) -> None:
    """Known limit: --label-fraction and --pretrain were refused with --val-split / --test-split (they read
    a split named train). Now the labelled subset is drawn over the training folds, pre-training reads
    them, and retrieval is measured on the test fold."""
    from mmdata.testing import shard_folds
    from mmdata.train import train
    from mmdata.train.contrastive import kept_keys, labelled_balance

    ds, fast = shard_folds(tmp_path), {"epochs": 1, "threads": 1, "eval_robustness": False, "seed": 3}
    m = train(ds, val_split="3", test_split="4", label_fraction=0.5, **fast)
    kept = kept_keys(ds, labelled_balance(None, 0.5), 3, ["1", "2"])
    train_keys = {s.key for f in ("1", "2") for s in mmdata.open_dataset(ds, split=f)}
    assert kept and set(kept) <= train_keys and 0 < len(kept) < len(train_keys)
    assert m["labelled_train"] == sum(g != "(none)" for g in kept.values())
    m = train(ds, val_split="3", test_split="4", pretrain="contrastive", pretrain_epochs=1, **fast)
    test_n = sum(1 for _ in mmdata.open_dataset(ds, split="4"))
    assert m["pretrain"]["epochs"] == 1 and m["retrieval"] and m["samples"]["test"]["samples"] == test_n


def test_naming_the_default_splits_trains_exactly_as_the_default(tmp_path: Path) -> None:
    """val_split="val", test_split="test": train is every other split (train); the same run, the split
    names recorded, as the default records them."""
    from mmdata.train import train

    ds = _esc(tmp_path, [(8000, "dog" if i % 2 else "rain", ("train", "train", "val", "test")[i % 4]) for i in range(12)])
    a = train(ds, epochs=2, threads=1, eval_robustness=False, batch_size=4)
    b = train(ds, epochs=2, threads=1, eval_robustness=False, batch_size=4, val_split="val", test_split="test")
    # every run records the split names it read (QA33 labelnoise #10), the default's too
    assert a["config"]["splits"] == b["config"]["splits"] == {"train": ["train"], "val": ["val"], "test": ["test"]}
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b


def test_cli_k_fold_options(folds: Path, tmp_path: Path, mmdata_cli: Callable[[list[str]], tuple[int, str]]) -> None:
    import json

    code, out = mmdata_cli(["train", str(folds), "--epochs", "1", "--threads", "1", "--no-robustness", "--val-split", "4",
                      "--test-split", "5", "--train-split", "1,2,3", "--out", str(tmp_path / "f5")])
    assert code == 0, out
    assert "splits: train = 1, 2, 3; val = 4; test = 5" in out and "test (5)" in out
    m = json.loads((tmp_path / "f5" / "metrics.json").read_text())
    assert m["config"]["splits"]["test"] == ["5"] and "accuracy" in m["test"]


def test_ablation_trainer_split_keys(folds: Path, tmp_path: Path) -> None:
    """trainer.val_split / test_split (/ train_split) reach every run and are checked before any run."""
    import pandas as pd

    from mmdata.ablate import run

    recipe = {"dataset": {"path": str(folds)}, "seeds": 2, "controls": {"identity": False},
              "trainer": {"epochs": 1, "batch_size": 4, "eval_robustness": False, "val_split": "4", "test_split": "5"},
              "design": {"mode": "explicit", "baseline": None, "arms": {"gain": {"audio": [{"op": "gain", "p": 0.5}]}}}}
    s = run(recipe, tmp_path / "ab", workers=1, progress=False, plots=False, on_warning=lambda msg: None)
    assert s["design"]["complete"]
    runs = pd.read_parquet(tmp_path / "ab" / "runs.parquet")
    assert (runs["status"] == "ok").all() and len(runs) == 4
    bad = {**recipe, "trainer": {**recipe["trainer"], "val_split": "9"}}
    with pytest.raises(MMDataError, match=r"^trainer\.val_split: \S+ has no split '9'"):
        run(bad, tmp_path / "ab2", workers=1, progress=False, plots=False, on_warning=lambda msg: None)
    with pytest.raises(MMDataError, match=r"needs train/val/test splits.*--val-split 4 --test-split 5"):
        run({**recipe, "trainer": {"epochs": 1}}, tmp_path / "ab3", workers=1, progress=False, plots=False,
            on_warning=lambda msg: None)


def test_ablation_split_keys_are_strings_for_any_trainer(folds: Path) -> None:
    """QA re-test: unquoted `val_split: 4` reached a custom trainer as an int (open_dataset refuses ints)."""
    import yaml

    from mmdata.ablate.design import load_ablation

    text = (f"dataset: {{path: {folds}}}\nseeds: 2\ncontrols: {{identity: false}}\n"
            "trainer: {entry: 'mmdata.ablate.testing:synthetic_train', val_split: 4, test_split: 5, train_split: [1, 2]}\n"
            "design: {mode: explicit, baseline: null, arms: {gain: {audio: [{op: gain, p: 0.5}]}}}\n")
    ab = load_ablation(yaml.safe_load(text))
    assert (ab.trainer["val_split"], ab.trainer["test_split"], ab.trainer["train_split"]) == ("4", "5", ["1", "2"])


def test_scoring_on_augmented_copies_is_warned(tmp_path: Path) -> None:
    """QA re-test: train scored val / test on augmented copies (3 rows per clip) without a word."""
    from mmdata.augment.offline import augment_dataset
    from mmdata.testing import make_sample_folder
    from mmdata.train import train

    mmdata.shard(make_sample_folder(tmp_path / "raw", n=18), tmp_path / "ds", split="train=0.5,val=0.25,test=0.25",
                 progress=False)
    rec = {"image": [{"op": "hflip", "p": 0.5}]}
    augment_dataset(tmp_path / "ds", tmp_path / "aug", rec, copies=2, augment_splits=["train", "val"], progress=False)
    m = train(tmp_path / "aug", epochs=1, threads=1, eval_robustness=False, batch_size=4)
    assert [w for w in m["warnings"] if "holds augmented copies" in w and w.startswith("the val split")]
    assert not [w for w in m["warnings"] if w.startswith("the test split")]
