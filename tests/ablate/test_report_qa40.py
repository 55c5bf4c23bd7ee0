"""Ablation report, QA round 40 (persona ``multiview``): an arm's recipe line shows its ``targets:`` (the views
its ops also move), and the ablation says once that the bundled trainer never reads those stored fields."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.ablate.design import design_warnings, load_ablation, unread_fields_warning
from mmdata.ablate.report import recipe_ops_text


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 samples: a front PNG (``image``), a ``back`` PNG view in every sample and a label."""
    from mmdata.testing import image_bytes

    root = tmp_path_factory.mktemp("qa40_views")
    rows = []
    for i in range(16):
        (root / f"f{i}.png").write_bytes(image_bytes(i))
        (root / f"b{i}.png").write_bytes(image_bytes(100 + i))
        rows.append({"key": f"s{i:02d}", "image": f"f{i}.png", "back": f"b{i}.png", "label": "ab"[i % 2]})
    with open(root / "m.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(root / "m.csv", root / "ds", columns={"back": "back"}, split="train=0.5,val=0.25,test=0.25",
                     seed=0, progress=False)
    return root / "ds"


def _field(ds: Path) -> str:
    from mmdata.shards.index import load_card

    (name,) = [m for m in load_card(ds)["modalities"] if m.startswith("back")]
    return name


def _ablation(ds: Path, **trainer: object) -> dict[str, object]:
    back = _field(ds)
    return {"dataset": {"path": str(ds)}, "trainer": {"epochs": 1, **trainer}, "seeds": 2,
            "controls": {"identity": False},
            "design": {"mode": "explicit", "arms": {"views_flip": {
                "targets": {back: "image"}, "image": [{"op": "hflip", "p": 0.5}]}}}}


def test_the_unread_views_are_warned_of_once_naming_the_arm_whose_targets_move_them(views: Path) -> None:
    back = _field(views)
    said = [w for w in design_warnings(load_ablation(_ablation(views))) if "does not read the stored fields" in w]
    assert len(said) == 1, said
    w = said[0]
    assert f"the bundled trainer does not read the stored fields {back} (16 samples) (it reads image and the label)" in w
    assert f"arm 'views_flip' ({back})" in w and "trainer.entry" in w


def test_no_unread_warning_for_your_own_trainer(views: Path) -> None:
    ab = load_ablation({**_ablation(views), "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"}})
    assert unread_fields_warning(ab) is None


def test_an_arms_recipe_line_shows_its_targets(views: Path) -> None:
    ab = load_ablation(_ablation(views))
    arm = next(a for a in ab.arms if a.name == "views_flip")
    assert recipe_ops_text(arm.recipe) == f"image hflip(p 0.5); targets {_field(views)} (as image)"


def test_the_unread_views_warning_names_the_read_modalities_once(views: Path) -> None:
    """QA40 review train #4: the sentence listed the modalities twice, two ways ("it reads image and the label
    ...: the ablation compares models of image alone")."""
    w = unread_fields_warning(load_ablation(_ablation(views)))
    assert w is not None and w.count("it reads image and the label") == 1
    assert "compares models of" not in w and "image alone" not in w and "no arm's model sees them" in w
