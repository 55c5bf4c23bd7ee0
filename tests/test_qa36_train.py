"""QA36 (fixer ``train``): AUROC / AUPRC in the classification scores and the corruption curve's area under a
clear name (medical #4), the recipe note on a modality the run does not read (medical #8), an arrays-only
dataset's error (timeseries #5), one epoch numbering in the BatchNorm warning (mir #3), the in-sample keys of
``mmdata evaluate`` (sites #5) and the train-side label claim about duplicates (medical #5)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mmdata.errors import MMDataError
from mmdata.train.evaluate import Scores


def _logits(p1: list[float]) -> torch.Tensor:
    """Two-class logits whose softmax gives the second class probability ``p1``."""
    p = torch.tensor(p1, dtype=torch.float64)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], 1)


def _train(data: Path, out: Path | None, **kw: Any) -> dict[str, Any]:
    from mmdata.train import train

    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(data, **{"epochs": 1, "seed": 0, "out": out, "batch_size": 8, "threads": 1,
                              "eval_robustness": False, **kw})


# medical #4: threshold-free scores -------------------------------------------------------------------------------


def test_binary_auroc_auprc_hand_checked() -> None:
    """Positive = the second class, ranked by its probability; ties one threshold; unlabelled rows left out."""
    s = Scores(2, ranking=True)
    s.update(_logits([0.1, 0.4]), torch.tensor([0, 0]))
    s.update(_logits([0.35, 0.8, 0.9]), torch.tensor([1, 1, -1]))
    r = s.result()
    # pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>both -> 3 of 4; AP: ranks 0.8(+) 0.4(-) 0.35(+) -> (1 + 2/3) / 2
    assert r["auroc"] == pytest.approx(0.75) and r["auprc"] == pytest.approx(5 / 6)
    tied = Scores(2, ranking=True)
    tied.update(_logits([0.5, 0.5, 0.5, 0.2]), torch.tensor([1, 0, 0, 0]))
    # the positive ties two negatives (half credit each) and beats one: (1 + 0.5 + 0.5) / 3; AP: precision 1/3
    assert tied.result()["auroc"] == pytest.approx(2 / 3) and tied.result()["auprc"] == pytest.approx(1 / 3)


def test_multiclass_one_vs_rest_skips_classes_absent_from_the_split() -> None:
    s = Scores(3, ranking=True)
    s.update(torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [2.0, 1.0, 0], [0, 0.5, 0]]), torch.tensor([0, 1, 0, 1]))
    r = s.ranking_scores()
    assert r["auroc"] == pytest.approx(1.0) and r["auroc_skipped"] == [2]  # class 2: no positive
    one = Scores(2, ranking=True)  # one class only: no ranking to score
    one.update(_logits([0.2, 0.7]), torch.tensor([1, 1]))
    assert one.result()["auroc"] is None and one.result()["auprc"] is None  # no value, not NaN (results compare equal)
    assert "auroc" not in Scores(2).result()  # the robustness passes keep no probabilities


def test_ranking_scores_equal_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for classes in (2, 4):
        for trial in range(10):
            n = int(rng.integers(8, 40))
            logits = torch.tensor(rng.integers(-2, 3, (n, classes)).astype(float) if trial % 2 else rng.normal(size=(n, classes)))
            y = torch.tensor(rng.integers(0, classes, n))
            s = Scores(classes, ranking=True)
            s.update(logits, y)
            r = s.ranking_scores()
            p, t = torch.softmax(logits.double(), 1).numpy(), y.numpy()
            cols = [1] if classes == 2 else [c for c in range(classes) if 0 < (t == c).sum() < n]
            if not cols or classes == 2 and len(set(t)) < 2:
                continue
            assert r["auroc"] == pytest.approx(np.mean([metrics.roc_auc_score(t == c, p[:, c]) for c in cols]), abs=1e-12)
            assert r["auprc"] == pytest.approx(np.mean([metrics.average_precision_score(t == c, p[:, c]) for c in cols]),
                                               abs=1e-12)


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    import mmdata
    from mmdata.testing.media import make_class_folders

    root = tmp_path_factory.mktemp("qa36_train")
    raw = make_class_folders(root / "raw", per_class=8, classes=("normal", "abnormal"))
    ds = root / "ds"
    mmdata.shard(raw, ds, split="train=0.5,val=0.25,test=0.25", progress=False)
    m = _train(ds, root / "run", modalities=["image"], eval_robustness=True)
    return ds, root / "run", m


def _auroc_of(table: pa.Table) -> float:
    """AUROC of the second class from predictions.parquet, counted pair by pair (ties half)."""
    rows = [(r["label"], r["probs"][1]) for r in table.to_pylist() if r["label"] >= 0]
    pos = [p for y, p in rows if y == 1]
    neg = [p for y, p in rows if y == 0]
    return sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg))


def test_train_metrics_have_auroc_auprc_and_accuracy_area(binary: tuple[Path, Path, dict[str, Any]]) -> None:
    ds, run, m = binary
    for split in ("test", "val"):
        assert {"auroc", "auprc"} <= set(m[split]), m[split]
    assert m["test"]["auroc"] == pytest.approx(_auroc_of(pq.read_table(run / "predictions.parquet")), abs=1e-12)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["test"]["auroc"] == pytest.approx(m["test"]["auroc"])
    curve = saved["robustness"]["corruption"]["image"]
    assert curve["accuracy_area"] == curve["auc"]  # the clear name, and the old one kept for its readers


def test_evaluate_json_has_auroc_and_names_in_sample_keys(binary: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> None:
    """sites #5: the in-sample samples are named (up to 5 per role) and marked in predictions.parquet."""
    from mmdata.cli.common import print_json  # noqa: F401 - the --json envelope keeps the result's keys
    from mmdata.shards.index import load_index
    from mmdata.train.score_run import evaluate_run

    ds, run, _ = binary
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = evaluate_run(run, ds, split="train", out=tmp_path / "ev")
        t = evaluate_run(run, ds, split="test", out=tmp_path / "evt")
    assert {"auroc", "auprc"} <= set(r["scores"]) and {"auroc", "auprc"} <= set(t["scores"])
    keys = [k for k, s in zip(load_index(ds, columns=["key", "split"])["key"].to_pylist(),
                              load_index(ds, columns=["key", "split"])["split"].to_pylist()) if s == "train"]
    assert r["in_sample"]["train"] == len(keys) > 0
    assert r["in_sample_keys"]["train"] == keys[:5]
    said = [w for w in r["warnings"] if "in-sample" in w]
    assert said and repr(keys[0]) in said[0], said
    pred = pq.read_table(tmp_path / "ev" / "predictions.parquet")
    assert pred.column("in_sample").to_pylist() == [True] * pred.num_rows
    assert "in_sample_keys" not in t
    assert not any(pq.read_table(tmp_path / "evt" / "predictions.parquet").column("in_sample").to_pylist())


# mir #3 ------------------------------------------------------------------------------------------------------------


def test_batchnorm_warning_names_the_epoch_line() -> None:
    from mmdata.train.loop import batchnorm_warnings

    m = torch.nn.Sequential(torch.nn.BatchNorm1d(2))
    m(torch.randn(4, 2))
    said = batchnorm_warnings(m, 2, 3)[0]
    assert "(best epoch 3 of 3)" in said and 'is the "epoch 2:" line (best_epoch 2 in metrics.json)' in said


# medical #8 ---------------------------------------------------------------------------------------------------------


def test_recipe_note_says_the_run_does_not_read_audio_the_data_has(tmp_path: Path) -> None:
    import mmdata
    from mmdata.testing.media import make_sample_folder

    ds = tmp_path / "ds"
    with warnings.catch_warnings():  # the folder's own duplicates: not what is tested
        warnings.simplefilter("ignore")
        mmdata.shard(make_sample_folder(tmp_path / "raw", n=12), ds, split="train=0.5,val=0.25,test=0.25",
                     progress=False)
    recipe = {"image": [{"op": "hflip", "p": 0.5}], "normalize": {"audio": [{"op": "to_mono"}]}}
    m = _train(ds, None, modalities=["image", "text"], recipe=recipe)
    said = [w for w in m.get("warnings", []) if "normalize.audio" in w]
    assert said and "this run reads only image, text (the modalities it was given)" in said[0], said
    assert "has no audio" not in said[0]


# timeseries #5 ------------------------------------------------------------------------------------------------------


def test_arrays_only_dataset_error_names_the_fields_and_the_way(tmp_path: Path) -> None:
    import mmdata

    rng = np.random.default_rng(5)
    for c in ("walk", "run"):
        (tmp_path / "raw" / c).mkdir(parents=True)
        for i in range(6):
            np.save(tmp_path / "raw" / c / f"{c}{i:02d}.npy", rng.normal(size=(30, 3)).astype(np.float32))
    ds = tmp_path / "ds"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(tmp_path / "raw", ds, split="train=0.5,val=0.25,test=0.25", progress=False)
    with pytest.raises(MMDataError) as got:
        _train(ds, None)
    said = str(got.value)
    assert "nothing to train on" in said and "(.npy, 12 samples)" in said, said
    assert "--trainer" in said and "Your own trainer" in said


# medical #5 (train side) --------------------------------------------------------------------------------------------


def _index_like(splits: list[str], labels: list[int | None], crcs: list[int]) -> pa.Table:
    n = len(splits)
    return pa.table({"key": [f"s{i}" for i in range(n)], "split": splits, "members": [[f"s{i}.wav"] for i in range(n)],
                     "sizes": [[100] for _ in range(n)], "member_crc32": [[c] for c in crcs], "label": pa.array(labels, pa.int64())})


def test_label_claim_only_for_a_train_vs_scored_pair() -> None:
    from mmdata.train.config import _labels_across

    names = ["normal", "abnormal"]
    # a pair in train under two labels plus an unlabelled test copy; a val / test pair: no train-vs-score conflict
    for splits, labels in ((["train", "train", "test"], [1, 0, None]), (["val", "test"], [0, 1])):
        within = _labels_across(_index_like(splits, labels, [7] * len(splits)), names)
        assert "trained on one label and scored on the other" not in within and "not between a training" in within
    # a train sample and a test sample under different labels: said, with that pair
    across = _labels_across(_index_like(["train", "test"], [0, 1], [7, 7]), names)
    assert "trained on one label and scored on the other" in across
    assert "normal ('s0', train) and abnormal ('s1', test)" in across
    # one silent clip in 12 samples of both splits and labels: a placeholder, not a label conflict
    held = _labels_across(_index_like(["train", "test"] * 6, [0, 1, 1, 0] * 3, [7] * 12), names)
    assert "placeholder" in held and "trained on one label and scored on the other" not in held


def test_shared_placeholder_clip_is_not_called_a_train_vs_score_label_conflict(tmp_path: Path) -> None:
    """medical #5: every study a distinct image and one byte-identical silent clip: the run's warning must not say
    the model is trained on one label and scored on the other."""
    import mmdata
    from mmdata.shards.index import load_card
    from mmdata.testing.media import audio_bytes, image_bytes
    from mmdata.train.config import duplicate_warnings

    raw = tmp_path / "raw"
    silent = audio_bytes(0)
    for c, name in enumerate(("normal", "abnormal")):
        (raw / name).mkdir(parents=True)
        for i in range(8):
            (raw / name / f"p{i}.png").write_bytes(image_bytes(c * 8 + i))
            (raw / name / f"p{i}.flac").write_bytes(silent)
    ds = tmp_path / "ds"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, ds, split="train=0.5,val=0.25,test=0.25", progress=False)
    said = " ".join(duplicate_warnings(ds, load_card(ds), None))
    assert "trained on one label and scored on the other" not in said, said
