"""QA27 C3 / C6: what the bundled trainer says it trains on.

C3: a recipe's random_resized_crop to 64x64 on 48x64 images trained on 64x64 crops while val and test were
scored at 48x64, the inputs block saying 48x64. The trainer now pairs the crop as torchvision does
(RandomResizedCrop(s) for training, Resize(s) + CenterCrop(s) for evaluation): the derived normalize stage
brings every split to the crop's size, and the inputs block says so. Other size changes it cannot pair
(random_crop, a given --image-size, a recipe's own normalize.image) are warned of.

C6: stored fields the model never reads (``frame1.jpg`` ...) were not mentioned; the run now lists them.
"""

from __future__ import annotations

import csv
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
FRAMES = ("frame1", "frame2", "frame3")


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 samples of 48x64 PNG + FLAC + text + label, each with three JPEG frames and a metadata column,
    sharded from a manifest (frames as fields ``frame1.jpg`` ...)."""
    import mmdata
    from mmdata.testing import make_sample_folder

    root = tmp_path_factory.mktemp("wide")
    raw = make_sample_folder(root / "raw", n=24, image_size=(48, 64), missing=False)
    rows = []
    for i, p in enumerate(sorted(raw.glob("*.png"))):
        row = {"image": p.name, "audio": p.stem + ".flac", "text": p.stem + ".txt",
               "label": (raw / f"{p.stem}.cls").read_text().strip(), "note": f"n{i}"}
        for j, f in enumerate(FRAMES):
            path = raw / "frames" / f"{p.stem}_{f}.jpg"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(np.full((8, 8, 3), 10 * i + j, np.uint8)).save(path)
            row[f] = f"frames/{path.name}"
        rows.append(row)
    with open(raw / "m.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny synthetic media repeat across splits
        mmdata.shard(raw / "m.csv", root / "ds", columns={f: f for f in FRAMES}, meta=["note"],
                     split="train=0.5,val=0.25,test=0.25", seed=0, progress=False)
    return root / "ds"


def _train(ds: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[dict[str, Any], Counter[tuple[str, tuple[int, int]]]]:
    """Train one epoch; count the image sizes the model's forward sees, by train / eval."""
    from mmdata.train import model as M
    from mmdata.train.loop import train

    seen: Counter[tuple[str, tuple[int, int]]] = Counter()
    forward = M.FusionModel.forward

    def counted(self: Any, batch: Any, *a: Any, **k: Any) -> Any:
        if "image" in batch:
            seen[("train" if self.training else "eval", tuple(batch["image"].shape[-2:]))] += 1
        return forward(self, batch, *a, **k)

    monkeypatch.setattr(M.FusionModel, "forward", counted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = train(ds, epochs=1, threads=1, eval_robustness=False, **kw)
    return m, seen


@pytest.mark.parametrize("side", [64, 32])
def test_random_resized_crop_size_is_what_every_split_gets(wide: Path, monkeypatch: pytest.MonkeyPatch, side: int) -> None:
    rec = ROOT / "recipes" / "image_basic.yaml"
    recipe: Any = rec if side == 64 else rec.read_text(encoding="utf-8").replace("size: [64, 64]", f"size: [{side}, {side}]")
    m, seen = _train(wide, monkeypatch, recipe=recipe)
    assert set(seen) == {("train", (side, side)), ("eval", (side, side))}, seen
    assert m["inputs"]["image_size"] == [side, side]
    src = m["inputs"]["sources"]["image_size"]
    assert "random_resized_crop (image[1])" in src and "every training image is 48x64" in src
    steps = m["normalize"]["image"]
    assert [s["op"] for s in steps][-2:] == ["resize", "center_crop"] and steps[-1]["size"] == [side, side]
    assert not [w for w in m["warnings"] if "makes training images" in w]


def test_random_crop_of_another_size_is_warned(wide: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m, seen = _train(wide, monkeypatch, recipe={"image": [{"op": "random_crop", "size": [32, 32]}]})
    assert set(seen) == {("train", (32, 32)), ("eval", (48, 64))}  # not paired: said
    said = [w for w in m["warnings"] if "makes training images" in w]
    assert len(said) == 1
    assert "image[0] random_crop makes training images 32x32, but val and test images are 48x64" in said[0]
    assert "--image-size) 32x32" in said[0]


def test_given_image_size_beside_a_crop_is_warned_not_overridden(wide: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m, seen = _train(wide, monkeypatch, recipe={"image": [{"op": "random_resized_crop", "size": [32, 32]}]}, image_size=48)
    assert m["inputs"]["image_size"] == [48, 48] and set(seen) == {("train", (32, 32)), ("eval", (48, 48))}
    said = [w for w in m["warnings"] if "makes training images" in w]
    assert len(said) == 1 and "val and test images are 48x48 (image_size (--image-size), given)" in said[0]


def test_own_normalize_of_another_size_is_warned(wide: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = {"normalize": {"image": [{"op": "to_rgb"}, {"op": "resize", "size": [40, 40], "side": "exact"}]},
              "image": [{"op": "random_resized_crop", "size": [32, 32]}]}
    m, _ = _train(wide, monkeypatch, recipe=recipe)
    said = [w for w in m["warnings"] if "makes training images" in w]
    assert len(said) == 1 and "normalize.image end at 32x32" in said[0]


def test_the_demo_recipes_keep_their_inputs() -> None:
    """avdigits images are 16x16 and its recipes crop 16x16: nothing to pair, nothing to warn of."""
    import yaml

    from mmdata.train.config import trained_image_size

    assert trained_image_size(ROOT / "recipes" / "avdigits.yaml", (16, 16)) is None
    for path in sorted((ROOT / "recipes" / "ablations").glob("*.yaml")):
        design = yaml.safe_load(path.read_text(encoding="utf-8"))["design"]
        assert trained_image_size(design.get("recipe") or {}, (16, 16)) is None, path
    assert trained_image_size({"image": [{"op": "one_of", "ops": [{"op": "hflip"}, {"op": "random_crop", "size": [8, 8]}]}]},
                              (16, 16)) is None  # mixed outputs: not told


def test_unread_fields_are_listed(wide: Path, mmdata_cli: Any) -> None:
    code, out = mmdata_cli(["train", str(wide), "--epochs", "1", "--threads", "1", "--no-robustness"])
    assert code == 0, out[-2000:]
    assert ("stored fields the model does not read (it reads image, audio, text and the label): frame1.jpg (24 samples), "
            "frame2.jpg (24 samples), frame3.jpg (24 samples)") in out
    assert "json (" not in out.split("does not read")[1].split("inputs")[0]


def test_unread_fields_leave_out_labels_metadata_and_standard_modalities(wide: Path, mmdata_cli: Any) -> None:
    from mmdata.train.config import unused_fields

    assert unused_fields({"modalities": {"image": {"count": 2}, "audio": {"count": 2}, "label": {"count": 2},
                                         "json": {"count": 2}, "caps.json": {"count": 1}}}, ["image"]) == {}
    code, out = mmdata_cli(["train", str(wide), "--epochs", "1", "--threads", "1", "--no-robustness",
                            "--modalities", "image"])
    assert code == 0 and "frame1.jpg (24 samples)" in out  # a left-out standard modality is not listed as a field
    assert "audio (24" not in out and "text (24" not in out
