"""Every fusion: shapes, presence masks respected, no NaN with any pattern, gradients reach every parameter."""

from __future__ import annotations

import itertools

import pytest
import torch

from mmdata import Sample, collate
from mmdata.train import FUSIONS, FusionModel

MODS = ("image", "audio", "text")


def _batch(patterns: list[tuple[bool, bool, bool]]) -> "object":
    g = torch.Generator().manual_seed(0)
    samples = []
    for i, (im, au, tx) in enumerate(patterns):
        f: dict = {"label": i % 10}
        if im:
            f["image"] = torch.randint(0, 256, (1, 16, 16), generator=g, dtype=torch.uint8)
        if au:
            f["audio"] = torch.randn(1, 6400, generator=g) * 0.1
        if tx:
            f["text"] = ["an odd number", "greater than five", "the number of legs of a dog"][i % 3]
        samples.append(Sample(f"k{i}", f, sample_rate=8000))
    return collate(samples)


ALL = list(itertools.product([True, False], repeat=3))


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_shapes_no_nan_and_all_missing(fusion: str) -> None:
    torch.manual_seed(0)
    m = FusionModel(MODS, fusion, classes=10).eval()
    b = _batch(ALL)  # includes a row with every modality missing
    out = m(b)
    assert out.shape == (8, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_absent_modality_data_is_ignored(fusion: str) -> None:
    torch.manual_seed(0)
    m = FusionModel(MODS, fusion, classes=10).eval()
    b = _batch([(True, True, True)] * 4)
    b.present["audio"] = torch.tensor([False, False, True, True])
    ref = m(b)
    noisy = b.replace(audio=b["audio"] + torch.randn(b["audio"].shape) * 5)
    out = m(noisy)
    assert torch.allclose(out[:2], ref[:2], atol=1e-5)  # rows without audio: unchanged
    assert not torch.allclose(out[2:], ref[2:], atol=1e-5)  # rows with audio: changed


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_gradients_reach_every_parameter(fusion: str) -> None:
    torch.manual_seed(0)
    m = FusionModel(MODS, fusion, classes=10).train()
    b = _batch([(True, True, True)] * 6)
    loss = torch.nn.functional.cross_entropy(m(b), b["label"])
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, missing


def test_low_rank_factors_are_registered() -> None:
    m = FusionModel(MODS, "low_rank", classes=10)
    names = [n for n, _ in m.named_parameters()]
    assert sum(n.startswith("fusion.factors.") for n in names) == 3
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == sum(p.numel() for p in m.parameters())


def test_unknown_fusion_and_modality() -> None:
    from mmdata.errors import MMDataError

    with pytest.raises(MMDataError, match="choose one of"):
        FusionModel(MODS, "magic", classes=10)
    with pytest.raises(MMDataError, match="choose from"):
        FusionModel(["video"], "concat", classes=10)
