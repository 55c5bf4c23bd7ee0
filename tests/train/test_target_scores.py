"""Multi-label and regression scores, streamed: equal to scikit-learn / scipy over the labelled rows,
independent of the batch split, mergeable, NaN without labels, never raising on non-finite outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score, hamming_loss, mean_absolute_error,
                             mean_squared_error, precision_recall_fscore_support, r2_score)

from mmdata.train.target_scores import MultiLabelScores, RegressionScores

K = 6


def _multilabel_data(seed: int, n: int = 300) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits rounded to one decimal (many ties), targets with unlabelled rows both ways, label 5 with
    no positive and no prediction, label 4 with no positive but predictions."""
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, K, generator=g, dtype=torch.float64) * 2).round(decimals=1)
    y = (torch.rand(n, K, generator=g) < 0.3).double()
    y[:, 4:] = 0
    logits[:, 5] = -3.0
    y[::11] = -1.0  # unlabelled by the target
    mask = torch.rand(n, generator=g) > 0.1  # unlabelled by the caller
    return logits, y, mask


def _multilabel_reference(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> tuple[dict[str, float], list]:
    keep = mask & (y >= 0).all(1)
    x, t = logits[keep].numpy(), y[keep].numpy().astype(int)
    pred = (x >= 0).astype(int)
    seen = (t.sum(0) + pred.sum(0)) > 0
    f1 = f1_score(t, pred, average=None, zero_division=0)
    ap = [average_precision_score(t[:, k], x[:, k]) if t[:, k].any() else math.nan for k in range(K)]
    nll = torch.nn.functional.binary_cross_entropy_with_logits(logits[keep], y[keep], reduction="sum") / len(x)
    ref = {"micro_f1": f1_score(t, pred, average="micro", zero_division=0), "macro_f1": float(f1[seen].mean()),
           "map": float(np.nanmean(ap)), "subset_accuracy": accuracy_score(t, pred), "hamming": hamming_loss(t, pred),
           "nll": float(nll)}
    p, r, f, n = precision_recall_fscore_support(t, pred, average=None, zero_division=0)
    return ref, [p, r, f, ap, n]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("chunk", [1, 7, 300])
def test_multilabel_streamed_equals_sklearn(seed: int, chunk: int) -> None:
    logits, y, mask = _multilabel_data(seed)
    s = MultiLabelScores(K)
    for i in range(0, len(y), chunk):
        s.update(logits[i:i + chunk], y[i:i + chunk], mask[i:i + chunk])
    ref, (p, r, f, ap, n) = _multilabel_reference(logits, y, mask)
    assert s.result() == pytest.approx(ref, rel=1e-12)
    keep = mask & (y >= 0).all(1)
    assert (s.labelled, s.unlabelled, s.nonfinite) == (int(keep.sum()), int((~keep).sum()), 0)
    pc = s.per_class(list("abcdef"))
    for key, want in zip(("precision", "recall", "f1", "ap", "support"), (p, r, f, ap, n)):
        assert np.allclose([pc[c][key] for c in "abcdef"], want, rtol=1e-12, equal_nan=True), key


def test_multilabel_macro_and_map_leave_out_absent_labels() -> None:
    s = MultiLabelScores(3)
    s.update(torch.tensor([[3.0, -3.0, -3.0], [-1.0, 2.0, 0.5]]), torch.tensor([[True, False, False], [False, True, False]]))
    r = s.result()
    # label 2: predicted once without a positive (F1 0, in the macro mean) but has no AP (out of the map)
    assert r["macro_f1"] == pytest.approx(2 / 3) and r["map"] == 1.0
    assert math.isnan(s.per_class("abc")["c"]["ap"]) and s.per_class("abc")["c"]["support"] == 0


def test_multilabel_ap_groups_tied_scores_like_sklearn() -> None:
    scores = torch.tensor([[0.5], [0.5], [0.5], [0.2], [0.2], [-1.0]], dtype=torch.float64)
    truth = torch.tensor([[1.0], [0.0], [0.0], [1.0], [1.0], [0.0]])
    s = MultiLabelScores(1)
    s.update(scores, truth)
    assert s.result()["map"] == pytest.approx(average_precision_score(truth[:, 0], scores[:, 0]), rel=1e-15)


def test_multilabel_merge_of_halves_equals_one_pass() -> None:
    logits, y, mask = _multilabel_data(3)
    whole, a, b = MultiLabelScores(K), MultiLabelScores(K), MultiLabelScores(K)
    whole.update(logits, y, mask)
    a.update(logits[:120], y[:120], mask[:120])
    b.update(logits[120:], y[120:], mask[120:])
    a.merge(b)
    assert a.result() == pytest.approx(whole.result(), rel=1e-12)
    assert (a.labelled, a.unlabelled) == (whole.labelled, whole.unlabelled)


def test_multilabel_without_labelled_rows_is_nan() -> None:
    s = MultiLabelScores(2)
    assert all(math.isnan(v) for v in s.result().values())
    s.update(torch.zeros(2, 2), torch.ones(2, 2), torch.tensor([False, False]))
    s.update(torch.zeros(1, 2), -torch.ones(1, 2))
    assert all(math.isnan(v) for v in s.result().values()) and (s.labelled, s.unlabelled) == (0, 3)


def test_multilabel_nonfinite_logits_are_counted_and_scored_as_zero() -> None:
    logits, y, mask = _multilabel_data(4, n=40)
    broken = logits.clone()
    broken[0, 1], broken[2] = math.nan, math.inf  # row 0 is labelled, row 2 not (mask / target permitting)
    s, zeroed = MultiLabelScores(K), MultiLabelScores(K)
    s.update(broken, y, mask)
    logits[0], logits[2] = 0.0, 0.0
    zeroed.update(logits, y, mask)
    assert s.result() == pytest.approx(zeroed.result(), rel=1e-12)
    keep = mask & (y >= 0).all(1)
    assert s.nonfinite == int(keep[0]) + int(keep[2])


def _regression_data(seed: int, n: int = 257, offset: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, generator=g, dtype=torch.float64) * 3 + offset
    p = y + torch.randn(n, generator=g, dtype=torch.float64) * 2 + 0.5
    y[::13] = math.nan
    mask = torch.rand(n, generator=g) > 0.1
    return p, y, mask


def _regression_reference(p: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    keep = mask & ~torch.isnan(y)
    p, y = p[keep].numpy(), y[keep].numpy()
    return {"mae": mean_absolute_error(y, p), "rmse": math.sqrt(mean_squared_error(y, p)),
            "r": float(pearsonr(y, p).statistic), "r2": r2_score(y, p)}


@pytest.mark.parametrize("chunk", [1, 10, 257])
def test_regression_streamed_equals_sklearn_and_scipy(chunk: int) -> None:
    p, y, mask = _regression_data(0)
    s = RegressionScores()
    for i in range(0, len(y), chunk):
        s.update(p[i:i + chunk, None], y[i:i + chunk], mask[i:i + chunk])  # (B, 1) predictions
    assert s.result() == pytest.approx(_regression_reference(p, y, mask), rel=1e-12)
    keep = mask & ~torch.isnan(y)
    assert (s.labelled, s.unlabelled, s.nonfinite) == (int(keep.sum()), int((~keep).sum()), 0)
    assert s.per_class(["x"]) == {}


@pytest.mark.parametrize("chunk", [5, 257])
def test_regression_large_offset_keeps_precision(chunk: int) -> None:
    p, y, mask = _regression_data(1, offset=1e6)
    s = RegressionScores()
    for i in range(0, len(y), chunk):
        s.update(p[i:i + chunk], y[i:i + chunk], mask[i:i + chunk])
    # the reference about 0: y - 1e6 is exact in float64 (Sterbenz), so it has no cancellation
    assert s.result() == pytest.approx(_regression_reference(p - 1e6, y - 1e6, mask), rel=1e-9)


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_regression_merge_of_halves_equals_one_pass(offset: float) -> None:
    p, y, mask = _regression_data(2, offset=offset)
    p[:100] -= 50.0  # the halves get different prediction shifts as well as target shifts
    whole, a, b, empty = RegressionScores(), RegressionScores(), RegressionScores(), RegressionScores()
    whole.update(p, y, mask)
    a.update(p[:100], y[:100], mask[:100])
    b.update(p[100:], y[100:], mask[100:])
    a.merge(b)
    empty.merge(a)
    for merged in (a, empty):
        assert merged.result() == pytest.approx(whole.result(), rel=1e-9)
        assert (merged.labelled, merged.unlabelled) == (whole.labelled, whole.unlabelled)


def test_regression_nan_cases() -> None:
    s = RegressionScores()
    s.update(torch.ones(3), torch.tensor([math.nan] * 3))
    assert all(math.isnan(v) for v in s.result().values()) and s.unlabelled == 3
    s.update(torch.tensor([1.0, 2.0, 3.0]), torch.full((3,), 0.1, dtype=torch.float64))  # constant targets
    r = s.result()
    assert math.isnan(r["r"]) and math.isnan(r["r2"]) and r["mae"] == pytest.approx(1.9)
    c = RegressionScores()
    c.update(torch.full((3,), 0.3, dtype=torch.float64), torch.tensor([1.0, 2.0, 3.0]))  # constant predictions
    assert math.isnan(c.result()["r"]) and c.result()["r2"] == pytest.approx(r2_score([1, 2, 3], [0.3] * 3))


def test_regression_nonfinite_predictions_are_scored_as_fill() -> None:
    p, y, mask = _regression_data(3, n=30)
    mask[:] = True
    y[:] = torch.nan_to_num(y, nan=1.0)
    broken = p.clone()
    broken[[0, 4]] = torch.tensor([math.nan, -math.inf], dtype=torch.float64)
    s, filled = RegressionScores(fill=2.5), RegressionScores()
    s.update(broken, y)
    p[[0, 4]] = 2.5
    filled.update(p, y)
    assert s.result() == pytest.approx(filled.result(), rel=1e-12) and s.nonfinite == 2


def test_updates_and_merges_never_read_back() -> None:
    """On the 'meta' device (tensors without data, standing in for CUDA) a host read raises."""
    meta = torch.device("meta")
    m, m2 = MultiLabelScores(K, meta), MultiLabelScores(K, meta)
    m.update(torch.randn(5, K, device=meta), torch.zeros(5, K, device=meta), torch.ones(5, dtype=torch.bool))
    m2.update(torch.randn(3, K, device=meta), torch.zeros(3, K, device=meta))
    m.merge(m2)
    r, r2 = RegressionScores(meta), RegressionScores(meta)
    r.update(torch.randn(5, 1, device=meta), torch.zeros(5, device=meta), torch.ones(5, dtype=torch.bool))
    r2.update(torch.randn(3, device=meta), torch.zeros(3, device=meta))
    r.merge(r2)
    assert m.sums.device == meta and r.sums.device == meta and (m.rows, r.rows) == (8, 8)
