"""Streamed evaluation: scores equal the whole-split formulas (sklearn), do not depend on the batch size,
skip unlabelled rows; the training step and evaluation never read a device tensor back (meta device)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, precision_recall_fscore_support

from mmdata import Sample, collate
from mmdata.train import FusionModel
from mmdata.train.evaluate import LEVELS, Scores, corrupt, evaluate, labels_of, scores
from mmdata.train.loop import label_noise_plan, noisy_labels, train_step


def _reference(logits: torch.Tensor, labels: torch.Tensor, classes: int) -> dict[str, float]:
    """The whole-tensor formulas the trainer used before streaming (labelled rows only)."""
    keep = labels >= 0
    logits, labels = logits[keep], labels[keep]
    probs = torch.softmax(logits.double(), 1)
    pred = probs.argmax(1)
    conf = probs.max(1).values
    ece = 0.0
    edges = torch.linspace(0, 1, 16, dtype=torch.float64)
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += float(m.double().mean() * ((pred[m] == labels[m]).double().mean() - conf[m].mean()).abs())
    return {"accuracy": float((pred == labels).double().mean()),
            "macro_f1": float(f1_score(labels, pred, average="macro", labels=list(range(classes)), zero_division=0)),
            "balanced_accuracy": float(balanced_accuracy_score(labels, pred)),
            "nll": float(torch.nn.functional.nll_loss(torch.log(probs.clamp_min(1e-12)), labels)), "ece": ece}


@pytest.mark.parametrize("chunk", [1, 7, 200])
def test_streamed_scores_equal_whole_split_formulas(chunk: int) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 5, generator=g) * 2
    labels = torch.randint(0, 5, (200,), generator=g)
    labels[::9] = -1  # unlabelled rows
    labels[labels == 4] = 3  # class 4 never occurs: its F1 counts as 0 in the macro average (sklearn's zero_division=0)
    s = Scores(5)
    for i in range(0, 200, chunk):
        s.update(logits[i:i + chunk], labels[i:i + chunk])
    got, ref = s.result(), _reference(logits, labels, 5)
    assert got == pytest.approx(ref, abs=1e-12)
    assert (s.labelled, s.unlabelled) == (int((labels >= 0).sum()), int((labels < 0).sum()))
    keep = labels >= 0
    p, r, f, n = precision_recall_fscore_support(labels[keep], logits[keep].argmax(1), labels=list(range(5)), zero_division=0)
    pc = s.per_class(list("abcde"))
    assert [pc[c]["support"] for c in "abcde"] == n.tolist()
    assert np.allclose([pc[c]["f1"] for c in "abcde"], f) and np.allclose([pc[c]["recall"] for c in "abcde"], r)
    assert np.allclose([pc[c]["precision"] for c in "abcde"], p)


def test_scores_without_labels_are_nan_not_an_error() -> None:
    s = Scores(3)
    s.update(torch.zeros(2, 3), torch.tensor([-1, -1]))
    assert np.isnan(s.result()["accuracy"]) and s.unlabelled == 2


def _samples(n: int = 12) -> list[Sample]:
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(n):
        f: dict = {"image": torch.randint(0, 256, (3, 16, 16), generator=g, dtype=torch.uint8),
                   "audio": torch.randn(1, 800, generator=g) * 0.1,  # one length: the audio encoder sees padding
                   "text": ["an odd number", "greater than five", "a prime"][i % 3]}
        if i % 5:
            f["label"] = i % 3
        out.append(Sample(f"k{i}", f, sample_rate=8000))
    return out


def test_evaluate_does_not_depend_on_batching() -> None:
    """Robustness noise is drawn per sample key at the sample's own size: batch 1 and batch 12 agree."""
    torch.manual_seed(0)
    m = FusionModel(["image", "audio", "text"], "late", classes=3, image_channels=3).eval()
    s = _samples()
    one = evaluate(m, [collate(s[i:i + 1]) for i in range(len(s))], 3, modalities=m.mods, robustness=True, seed=3)
    big = evaluate(m, [collate(s[:5]), collate(s[5:])], 3, modalities=m.mods, robustness=True, seed=3)
    assert one["scores"] == pytest.approx(big["scores"], abs=1e-6)
    assert one["robustness"]["missing"] == big["robustness"]["missing"]
    for mod in m.mods:
        assert one["robustness"]["corruption"][mod]["accuracy"] == big["robustness"]["corruption"][mod]["accuracy"], mod
        assert len(one["robustness"]["corruption"][mod]["levels"]) == len(LEVELS)
    assert (one["labelled"], one["unlabelled"]) == (9, 3)


def test_corruption_is_seeded_and_hits_every_sample() -> None:
    b = collate(_samples(4))
    a1, a2 = corrupt(b, "audio", 0.6, seed=1, level_index=3), corrupt(b, "audio", 0.6, seed=1, level_index=3)
    assert torch.equal(a1["audio"], a2["audio"]) and not torch.equal(a1["audio"], corrupt(b, "audio", 0.6, 2, 3)["audio"])
    for name in ("image", "audio"):
        x = corrupt(b, name, 0.4, seed=0)[name]
        assert all(not torch.equal(x[i], b[name][i]) for i in range(4)), name
    assert torch.equal(corrupt(b, "text", 1.0, seed=0)["tokens"], torch.zeros_like(b["tokens"]))
    assert corrupt(b, "image", 0.0, seed=0) is b


def test_label_noise_plan_matches_the_per_sample_rule() -> None:
    keys = [f"k{i}" for i in range(500)]
    labels = torch.randint(-1, 10, (500,), generator=torch.Generator().manual_seed(0))
    noisy = noisy_labels(keys, labels, 0.3, seed=4, classes=10)
    flip, off = label_noise_plan(keys, 0.3, seed=4, classes=10)
    lab = labels >= 0
    assert torch.equal(noisy != labels, flip & lab)  # a flip always lands on another class
    assert torch.equal(noisy[~lab], labels[~lab])
    assert torch.equal(noisy[flip & lab], (labels[flip & lab] + 1 + off[flip & lab]) % 10)


def test_scores_helper_and_missing_labels() -> None:
    assert scores(torch.tensor([[3.0, 0.0], [0.0, 3.0]]), torch.tensor([0, -1]), 2)["accuracy"] == 1.0
    b = collate([Sample("a", {"text": "x"})])
    y, has = labels_of(b, torch.device("cpu"))
    assert y.tolist() == [-1] and has.tolist() == [False]


@pytest.mark.parametrize("fusion", ["concat", "early"])
def test_device_paths_never_read_back(fusion: str) -> None:
    """A 'meta' batch and model (tensors without data) stand in for CUDA: a host read of a device tensor
    (`.item()`, `float()`, boolean indexing) or a host/device mix raises here, as it would sync or fail there."""
    meta = torch.device("meta")
    m = FusionModel(["image", "audio", "text"], fusion, classes=3, image_channels=3).to(meta)
    b = collate(_samples(6)).to(meta)
    loss, n = train_step(m, torch.optim.AdamW(m.parameters()), b, 3, label_noise=0.3, seed=1)
    assert loss.device == meta and n.device == meta
    b = b.replace(mix_lam=torch.full((6,), 0.7, device=meta), label_b=b["label"].flip(0))
    loss, n = train_step(m, torch.optim.SGD(m.parameters(), lr=0.1), b, 3)
    s = Scores(3, meta)
    y, has = labels_of(b, meta)
    with torch.no_grad():
        s.update(m(b), y, has)
        s.update(m(b, drop=["audio"]), y, has)
        for mod in ("image", "audio", "text"):
            s.update(m(corrupt(b, mod, 0.4, seed=0, level_index=2)), y, has)
    assert s.counts.device == meta and s.labelled == 4 * 5  # k0 and k5 are unlabelled
