"""Rows missing a modality do not go through its encoder (QA26): a present row's features, logits and
contrastive embedding do not depend on how many rows of its batch lack the modality, in training mode
(BatchNorm batch statistics) and in eval mode, and BatchNorm's running statistics see only present rows.
Before, every row went through every encoder and the absent rows' zero padding moved the present
rows' audio embeddings by 0.15 (and pulled the running mean of the log-mel BatchNorm to -11.6)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mmdata.train.contrastive import ContrastiveModel
from mmdata.train.fusions import FUSIONS
from mmdata.train.model import FusionModel
from mmdata.types import Sample, collate

MODS = ["image", "audio", "text"]
BUILTIN = sorted(n for n, c in FUSIONS.items() if c.__module__ == "mmdata.train.fusions")
WORDS = ["red", "green", "blue", "cat", "dog", "bird", "one", "two"]


def sample(i: int, mods: list[str] = MODS) -> Sample:
    g = torch.Generator().manual_seed(i)
    fields: dict = {}
    if "image" in mods:
        fields["image"] = torch.randint(0, 255, (1, 16, 16), dtype=torch.uint8, generator=g)
    if "audio" in mods:
        fields["audio"] = torch.randn(1, 1600, generator=g) * 0.1
    if "text" in mods:
        fields["text"] = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(3))
    return Sample(key=f"k{i}", fields=fields, sample_rate=16000)


REAL = [sample(i) for i in range(6)]


def without(m: str, n: int, start: int = 100) -> list[Sample]:
    return [sample(start + i, [x for x in MODS if x != m]) for i in range(n)]


def model(fusion: str) -> FusionModel:
    torch.manual_seed(0)
    return FusionModel(MODS, fusion, classes=3, d=16)


def bn_stats(net: nn.Module) -> list[torch.Tensor]:
    return [b for mod in net.modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)
            for b in (mod.running_mean, mod.running_var)]


def run_rows(base: FusionModel, rows: list[Sample], mode: str) -> tuple[torch.Tensor, dict, list[torch.Tensor]]:
    """(logits, encoder features, BatchNorm running stats) of the first len(REAL) rows, on a copy of ``base``."""
    net = copy.deepcopy(base)
    net.train(mode == "train")
    net.fusion.eval()  # dropout in the head draws per row: the encoders stay in `mode`
    b = collate(rows)
    with torch.no_grad():
        x, pres = net.inputs(b)
        feats = {k: v[: len(REAL)] for k, v in net.encode(x, pres).items()}
        net.load_state_dict(base.state_dict())  # encode() above updated the running stats once already
        logits = net(b)[: len(REAL)]
    return logits, feats, bn_stats(net.encoders)


@pytest.mark.parametrize("fusion", BUILTIN)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_present_rows_do_not_depend_on_absent_rows(fusion: str, mode: str) -> None:
    """Rows with nothing present leave the present rows' logits and the running stats alone; rows
    without modality m (the others present) leave m's features and m's encoder statistics alone."""
    base = model(fusion)
    empty = [Sample(key=f"e{i}", fields={}) for i in range(10)]
    ref = run_rows(base, REAL, mode)
    for rows in (REAL + empty[:3], REAL + empty):
        logits, feats, stats = run_rows(base, rows, mode)
        torch.testing.assert_close(logits, ref[0], atol=1e-5, rtol=1e-5, msg=f"{fusion}: logits moved")
        for k in feats:
            torch.testing.assert_close(feats[k], ref[1][k], atol=1e-5, rtol=1e-5, msg=f"{fusion}: {k} features moved")
        for a, b0 in zip(stats, ref[2]):
            torch.testing.assert_close(a, b0, atol=1e-6, rtol=1e-6, msg=f"{fusion}: BatchNorm running stats moved")
    if not base.encoders:  # early: no encoders, the low-level inputs are row-wise
        return
    for m in MODS:
        ref_m = run_rows(base, REAL, mode)
        for rows in (REAL + without(m, 3), REAL + without(m, 10)):
            _, feats, _ = run_rows(base, rows, mode)
            torch.testing.assert_close(feats[m], ref_m[1][m], atol=1e-5, rtol=1e-5, msg=f"{fusion}: {m} features moved")
            net = copy.deepcopy(base)
            net.train(mode == "train")
            with torch.no_grad():
                net(collate(rows))
            ref_net = copy.deepcopy(base)
            ref_net.train(mode == "train")
            with torch.no_grad():
                ref_net(collate(REAL))
            for a, b0 in zip(bn_stats(net.encoders[m]), bn_stats(ref_net.encoders[m])):
                torch.testing.assert_close(a, b0, atol=1e-6, rtol=1e-6, msg=f"{fusion}: {m} running stats moved")


def test_absent_rows_features_are_zero_and_training_is_unchanged_without_them() -> None:
    net = model("concat")
    net.train()
    b = collate(REAL + without("audio", 4))
    x, pres = net.inputs(b)
    f = net.encode(x, pres)
    assert f["audio"][len(REAL):].abs().sum() == 0
    assert f["audio"][: len(REAL)].abs().sum() > 0


@pytest.mark.parametrize("fusion", ["concat", "cross_attention", "two_tower"])
def test_one_or_no_present_row_in_training(fusion: str) -> None:
    """One present row: BatchNorm normalises it with the running statistics and leaves them as they
    are (no crash, no one-row statistics); none: zeros, every encoder parameter still in the graph
    (DDP without find_unused_parameters needs a gradient for each)."""
    net = model(fusion)
    net.train()
    before = [t.clone() for t in bn_stats(net.encoders["audio"])]
    b = collate(REAL[:1] + without("audio", 5))  # one row with audio
    loss = net(b).sum()
    loss.backward()
    for a, c in zip(bn_stats(net.encoders["audio"]), before):
        torch.testing.assert_close(a, c)
    assert net.encoders["audio"].training  # eval mode was for that call only
    net.zero_grad()
    b = collate(without("audio", 4))  # no row with audio
    net(b).sum().backward()
    assert all(p.grad is not None for p in net.encoders["audio"].parameters())
    assert all(float(p.grad.abs().sum()) == 0 for p in net.encoders["audio"].parameters())
    for a, c in zip(bn_stats(net.encoders["audio"]), before):
        torch.testing.assert_close(a, c)


def test_a_batch_of_one_row_trains() -> None:
    net = model("concat")
    net.train()
    net(collate(REAL[:1])).sum().backward()


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_contrastive_embeddings_do_not_depend_on_absent_rows(mode: str) -> None:
    """The QA reproduction: 24 rows with audio moved 8 clips' audio embeddings by <= 0.005 (BatchNorm
    batch statistics of real clips), 24 rows without audio by 0.153."""
    torch.manual_seed(0)
    base = ContrastiveModel(FusionModel(["image", "audio"], "concat", classes=2))
    mk = lambda i, a: sample(i, ["image", "audio"] if a else ["image"])  # noqa: E731
    real = [mk(i, 1) for i in range(8)]
    absent = [mk(200 + i, 0) for i in range(24)]
    zs = []
    for rows in (real, real + absent[:5], real + absent):
        m = copy.deepcopy(base)
        m.train(mode == "train")
        with torch.no_grad():
            z, _ = m.embed(collate(rows))
        zs.append((z["audio"][:8], bn_stats(m.encoders["audio"])))
    for z, s in zs[1:]:
        torch.testing.assert_close(z, zs[0][0], atol=1e-5, rtol=1e-5)
        for a, c in zip(s, zs[0][1]):
            torch.testing.assert_close(a, c, atol=1e-6, rtol=1e-6)


def test_contrastive_loss_trains_with_a_modality_missing_from_a_batch() -> None:
    torch.manual_seed(0)
    m = ContrastiveModel(FusionModel(MODS, "concat", classes=2, d=16))
    m.train()
    loss, per = m(collate(without("audio", 6)))
    loss.backward()
    assert set(per) == {"image-text"}
    assert torch.isfinite(loss)


def test_one_present_row_leaves_each_submodules_mode_as_it_was() -> None:
    """QA26 review: the one-row path put the encoder back with .train(), which turned a BatchNorm the user had
    frozen (.eval()) back to training (its running statistics updating again)."""
    from mmdata.train.fusions import ImageEncoder
    from mmdata.train.model import encode_present

    enc = ImageEncoder(8)
    enc.train()
    frozen = next(m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d))
    frozen.eval()
    before = {id(m): m.training for m in enc.modules()}
    x = torch.rand(3, 1, 16, 16)
    encode_present(enc, x, torch.tensor([True, False, False]), 8)
    assert {id(m): m.training for m in enc.modules()} == before and not frozen.training


def test_no_present_row_gives_exact_zeros_even_with_an_infinite_parameter() -> None:
    """QA26 review: zeros + sum(p) * 0.0 was NaN when a parameter was inf; the tie is now exactly 0."""
    from mmdata.train.fusions import TextEncoder
    from mmdata.train.model import encode_present

    enc = TextEncoder(4)
    with torch.no_grad():
        next(enc.parameters()).view(-1)[0] = float("inf")
    out = encode_present(enc, torch.tensor([[5, 6], [1, 2]]), torch.tensor([False, False]), 4)
    assert torch.equal(out, torch.zeros(2, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert encode_present(enc, torch.tensor([[5, 6]]), torch.tensor([False]), 4).dtype == torch.bfloat16
