"""hierarchical and two_tower with every configuration: shapes, masks, no NaN, gradients, config errors.

(tests/train/test_fusions.py runs the same checks on every registered fusion with its defaults.)
"""

from __future__ import annotations

import itertools

import pytest
import torch

from mmdata import Sample, collate
from mmdata.errors import MMDataError
from mmdata.train import FusionModel
from mmdata.train.fusions import parse_groups

MODS = ("image", "audio", "text")
VARIANTS = [
    ("hierarchical", {"order": "(image+audio)+text"}),
    ("hierarchical", {"order": "image+(audio+text)"}),
    ("hierarchical", {"order": "((text)+image)+audio"}),
    ("hierarchical", {"order": "image+audio+text"}),
    ("two_tower", {"interaction": "mlp"}),
    ("two_tower", {"interaction": "dot", "towers": "image+audio|text"}),
    ("two_tower", {"interaction": "bilinear", "towers": "audio|image+text"}),
]
IDS = [f"{f}-{'-'.join(a.values())}" for f, a in VARIANTS]


def _rows(patterns: list[tuple[bool, ...]]):  # noqa: ANN202
    g = torch.Generator().manual_seed(1)
    clue = ["an odd number", "greater than five", "the loneliest number"]
    make = {"image": lambda i: torch.randint(0, 256, (1, 16, 16), generator=g, dtype=torch.uint8),
            "audio": lambda i: torch.randn(1, 4000, generator=g) * 0.1, "text": lambda i: clue[i % 3]}
    return collate([Sample(f"s{i}", {"label": i % 10, **{m: make[m](i) for m, on in zip(MODS, p) if on}}, sample_rate=8000)
                    for i, p in enumerate(patterns)])


@pytest.mark.parametrize(("fusion", "args"), VARIANTS, ids=IDS)
def test_every_presence_pattern_finite(fusion: str, args: dict) -> None:
    torch.manual_seed(0)
    m = FusionModel(MODS, fusion, classes=10, fusion_args=args).eval()
    out = m(_rows(list(itertools.product([True, False], repeat=3))))
    assert out.shape == (8, 10) and torch.isfinite(out).all()
    # nothing present: one constant output whatever data sits behind the masks (nothing leaks in)
    none = _rows([(True, True, True)] * 3)
    none.present.update({k: torch.zeros(3, dtype=torch.bool) for k in MODS})
    out = m(none)
    assert torch.allclose(out[0], out[1]) and torch.allclose(out[0], out[2])


@pytest.mark.parametrize(("fusion", "args"), VARIANTS, ids=IDS)
def test_absent_data_ignored_and_present_data_used(fusion: str, args: dict) -> None:
    torch.manual_seed(0)
    m = FusionModel(MODS, fusion, classes=10, fusion_args=args).eval()
    b = _rows([(True, True, True)] * 4)
    b.present["image"] = torch.tensor([False, True, False, True])
    ref = m(b)
    out = m(b.replace(image=255 - b["image"]))
    assert torch.allclose(out[[0, 2]], ref[[0, 2]], atol=1e-5)
    assert not torch.allclose(out[[1, 3]], ref[[1, 3]], atol=1e-5)


@pytest.mark.parametrize(("fusion", "args"), VARIANTS, ids=IDS)
def test_gradients_reach_every_parameter(fusion: str, args: dict) -> None:
    torch.manual_seed(0)
    m = FusionModel(MODS, fusion, classes=10, fusion_args=args).train()
    b = _rows([(True, True, True)] * 6)
    torch.nn.functional.cross_entropy(m(b), b["label"]).backward()
    dead = [n for n, p in m.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not dead, dead


@pytest.mark.parametrize("interaction", ["dot", "bilinear", "mlp"])
def test_two_tower_one_tower_missing_still_uses_the_other(interaction: str) -> None:
    torch.manual_seed(0)
    m = FusionModel(MODS, "two_tower", classes=10, fusion_args={"interaction": interaction}).eval()
    b = _rows([(True, False, False)] * 3)  # only the image tower (default towers: image | audio+text)
    out = m(b)
    assert not torch.allclose(out, m(b.replace(image=255 - b["image"])), atol=1e-5)


def test_hierarchical_order_defines_the_groups() -> None:
    assert parse_groups("(image+audio)+text", MODS, "o") == (("image", "audio"), "text")
    assert parse_groups("image + ( audio + text )", MODS, "o") == ("image", ("audio", "text"))
    m = FusionModel(MODS, "hierarchical", classes=10)
    assert m.fusion.order == "(image+audio)+text" and m.fusion.plan == [("image", "audio"), (0, "text")]
    m = FusionModel(["audio", "text"], "hierarchical", classes=4)
    assert m.fusion.plan == [("audio", "text")]
    flat = FusionModel(MODS, "hierarchical", classes=10, fusion_args={"order": "image+audio+text"})
    assert len(flat.fusion.groups) == 1 and flat.fusion.groups[0].in_features == 3 * 65


@pytest.mark.parametrize(("spec", "msg"), [
    ("(image+audio", "unbalanced"), ("image+video+text", "'video' is not one of"), ("image+audio", "missing: \\['text'\\]"),
    ("image+image+audio+text", "repeated: \\['image'\\]"), ("image++audio+text", "unexpected '\\+'"), ("", "ends early"),
])
def test_hierarchical_bad_orders_are_named(spec: str, msg: str) -> None:
    with pytest.raises(MMDataError, match=msg):
        FusionModel(MODS, "hierarchical", classes=10, fusion_args={"order": spec})


def test_fusion_args_errors() -> None:
    with pytest.raises(MMDataError, match="accepts no arguments"):
        FusionModel(MODS, "concat", classes=10, fusion_args={"order": "x"})
    with pytest.raises(MMDataError, match="accepts \\['towers', 'interaction'\\]"):
        FusionModel(MODS, "two_tower", classes=10, fusion_args={"order": "x"})
    with pytest.raises(MMDataError, match="choose one of"):
        FusionModel(MODS, "two_tower", classes=10, fusion_args={"interaction": "cosine"})
    with pytest.raises(MMDataError, match="exactly once"):
        FusionModel(MODS, "two_tower", classes=10, fusion_args={"towers": "image|audio"})
    with pytest.raises(MMDataError, match="at least two"):
        FusionModel(["image"], "two_tower", classes=10)
