"""QA24 C#1: thousands of classes through evaluation — scores accumulated in O(B) per batch and O(C) memory
(no C x C confusion matrix), with scores identical to the confusion matrix's; predictions.parquet built
from the tensors with the same columns and values; progress while test is evaluated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mmdata import Sample, collate
from mmdata.train.evaluate import Scores
from mmdata.train.outputs import PredictionWriter


def _batches(classes: int, n_batches: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Random logits and labels with unlabelled rows (-1), a NaN row and rows predicting unseen classes."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n_batches):
        b = 16 + i
        logits = torch.randn(b, classes, generator=g) * 3
        labels = torch.randint(0, classes, (b,), generator=g)
        labels[::5] = -1
        logits[1, 0] = float("nan")
        # some rows right: the diagonal must see counts
        logits[2::3] += torch.nn.functional.one_hot(labels[2::3].clamp(min=0), classes) * 20
        out.append((logits, labels))
    return out


def _reference(batches: list[tuple[torch.Tensor, torch.Tensor]], classes: int, names: list[str]) -> tuple[dict, dict]:
    """accuracy, macro-F1 and per-class scores from a full confusion matrix (the formulas Scores used before)."""
    cm = np.zeros((classes, classes), dtype=np.float64)
    for logits, labels in batches:
        bad = ~torch.isfinite(logits).all(1)
        pred = torch.softmax(logits.masked_fill(bad[:, None], 0.0).double(), 1).argmax(1)
        keep = labels >= 0
        np.add.at(cm, (labels[keep].numpy(), pred[keep].numpy()), 1.0)
    c = torch.from_numpy(cm)
    tp, denom = c.diag(), c.sum(0) + c.sum(1)
    seen = denom > 0
    scores = {"accuracy": float(tp.sum() / c.sum()), "macro_f1": float((2 * tp[seen] / denom[seen]).mean())}
    per = {}
    for k, name in enumerate(names):
        t, p, r = float(c[k, k]), float(c[:, k].sum()), float(c[k].sum())
        if not p and not r:
            per[name] = {"precision": None, "recall": None, "f1": None, "support": 0}
            continue
        pr, rc = (t / p if p else 0.0), (t / r if r else 0.0)
        per[name] = {"precision": pr, "recall": rc, "f1": 2 * pr * rc / (pr + rc) if pr + rc else 0.0, "support": int(r)}
    return scores, per


@pytest.mark.parametrize("classes", [3, 40, 1500])
def test_scores_equal_the_confusion_matrix_scores_exactly(classes: int) -> None:
    batches = _batches(classes, 4, seed=classes)
    names = [f"c{k}" for k in range(classes)]
    s = Scores(classes)
    for logits, labels in batches:
        s.update(logits, labels)
    want, per = _reference(batches, classes, names)
    got = s.result()
    assert {k: got[k] for k in want} == want  # exact: the counts are integers
    assert s.per_class(names, absent=None) == per
    assert s.nonfinite == 4 - sum(int(lab[1] < 0) for _, lab in batches)


def test_merged_scores_equal_one_pass() -> None:
    batches = _batches(300, 6, seed=7)
    whole, a, b = Scores(300), Scores(300), Scores(300)
    for i, (logits, labels) in enumerate(batches):
        whole.update(logits, labels)
        (a if i % 2 else b).update(logits, labels)
    a.merge(b)
    assert a.result() == whole.result() and a.per_class(list("x" * 300)) == whole.per_class(list("x" * 300))
    assert (a.labelled, a.unlabelled, a.nonfinite) == (whole.labelled, whole.unlabelled, whole.nonfinite)


def test_scores_of_5000_classes_hold_no_class_by_class_matrix() -> None:
    """The report: a 190 MB float64 matrix per accumulator (clean, each modality removed, each corruption
    level: 22 of them in a robustness pass) and B * C^2 multiply-adds per batch."""
    s = Scores(5000)
    held = sum(v.numel() * v.element_size() for v in vars(s).values() if isinstance(v, torch.Tensor))
    assert held < 1_000_000, f"{held} bytes of running sums for 5,000 classes"
    logits, labels = torch.randn(64, 5000), torch.arange(64) * 70
    s.update(logits, labels)
    assert s.labelled == 64 and s.per_class([str(k) for k in range(5000)])["70"]["support"] == 1


def test_a_label_past_the_classes_is_refused() -> None:
    with pytest.raises((IndexError, RuntimeError)):  # never counted silently as another class
        Scores(3).update(torch.zeros(2, 3), torch.tensor([0, 3]))


def test_predictions_of_a_wide_head_keep_the_columns_and_values(tmp_path: Path) -> None:
    classes = 2000
    g = torch.Generator().manual_seed(0)
    path = tmp_path / "predictions.parquet"
    w = PredictionWriter(path, split="test", source_keys={"k0": "a/k0.png"})
    rows = []
    for part in range(2):
        samples = [Sample(f"k{part * 5 + i}", {"label": 3 * i} if i != 2 else {}) for i in range(5)]
        batch = collate(samples)
        logits = torch.randn(5, classes, generator=g)
        w(batch, logits)
        rows.append((batch, logits))
    w.close()
    table = pq.read_table(path)
    assert table.schema == pa.schema([("key", pa.string()), ("split", pa.string()), ("label", pa.int64()),
                                      ("pred", pa.int64()), ("prob_label", pa.float64()),
                                      ("probs", pa.list_(pa.float64())), ("source_key", pa.string())])
    got = table.to_pylist()
    want = []
    for batch, logits in rows:
        probs = torch.softmax(logits.double(), 1)
        for i, key in enumerate(batch.keys):
            label = int(batch["label"][i])
            want.append({"key": key, "split": "test", "label": label, "pred": int(probs[i].argmax()),
                         "prob_label": float(probs[i, label]) if label >= 0 else None, "probs": probs[i].tolist(),
                         "source_key": "a/k0.png" if key == "k0" else None})
    assert got == want


@pytest.mark.filterwarnings("ignore:the reported model")
def test_train_shows_progress_while_it_evaluates_test(two_class: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The report: ~14 minutes without a line after the last epoch while test and its robustness passes ran."""
    from mmdata.train import train

    monkeypatch.setenv("MMDATA_PROGRESS", "plain")
    monkeypatch.setenv("MMDATA_PROGRESS_INTERVAL", "0")
    train(two_class, out=tmp_path / "run", epochs=1, batch_size=4, threads=1, eval_robustness=True, progress=True)
    err = capsys.readouterr().err.splitlines()
    test_lines = [line for line in err if line.startswith("evaluating test (robustness): ")]
    assert test_lines and test_lines[-1].startswith("evaluating test (robustness): 1/1 batches (100%)"), err
    assert not any(line.startswith("epoch") and "batches" in line for line in err)
    train(two_class, out=tmp_path / "quiet", epochs=1, batch_size=4, threads=1, eval_robustness=True, progress=False)
    assert "evaluating" not in capsys.readouterr().err
