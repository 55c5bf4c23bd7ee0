"""The trainer on a user's messy folder (mmdata.testing.make_messy_folder): unlabelled samples, derived
input defaults, classes from the card — sharded with train/val/test splits, no file rewritten by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mmdata.shards.index import load_index
from mmdata.train import train



def _unlabelled(ds: Path) -> dict[str, int]:
    t = load_index(ds).to_pydict()
    out = {"train": 0, "val": 0, "test": 0}
    for split, label in zip(t["split"], t["label"]):
        out[split] += label is None
    return out


def test_unlabelled_samples_are_left_out_and_counted(tmp_path: Path, messy: Path) -> None:
    """Defect 3 of issue 10: `IndexError: Target -1 is out of bounds` on a dataset with unlabelled samples."""
    expected = _unlabelled(messy)
    assert all(expected.values())  # the fixture has unlabelled samples in every split
    m = train(messy, modalities=["text"], epochs=2, seed=0, out=tmp_path / "o", threads=1, batch_size=8)
    assert {s: c["unlabelled"] for s, c in m["samples"].items()} == expected
    labelled_test = m["samples"]["test"]["labelled"]
    assert sum(c["support"] for c in m["per_class"]["test"].values()) == labelled_test
    assert all(0 <= m[s]["accuracy"] <= 1 for s in ("val", "test"))
    # the unlabelled training samples are not read at all (QA42 active #5): no forward pass, no optimiser step
    assert m["samples"]["train"]["left_out"] == expected["train"]
    assert all(h["train_unlabelled"] == 0 and h["train_rows"] == m["samples"]["train"]["labelled"] for h in m["history"])
    preds = pq.read_table(tmp_path / "o" / "predictions.parquet").to_pydict()
    assert len(preds["key"]) == m["samples"]["test"]["samples"]
    unl = [i for i, y in enumerate(preds["label"]) if y == -1]
    assert len(unl) == expected["test"] and all(preds["prob_label"][i] is None for i in unl)
    saved = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert saved["samples"] == m["samples"] and saved["classes"]["num_classes"] == 3


RECIPE = """seed: 3
image:
  - {op: hflip, p: 0.5}
  - {op: random_resized_crop, p: 1.0, size: [24, 24], scale: [0.6, 1.0], ratio: [0.75, 1.333]}
audio:
  - {op: gain, p: 0.5, min_db: -6.0, max_db: 6.0}
  - {op: time_mask, p: 0.3, max_fraction: 0.1, target: wave}
text:
  - {op: token_mask, p: 0.3, p_token: 0.15}
sample:
  - {op: modality_dropout, p: 0.2, modalities: [image, audio, text], p_drop: 0.5, keep_at_least: 1}
batch:
  - {op: mixup, p: 0.5, alpha: 0.2}
"""


@pytest.mark.parametrize("fusion,recipe", [("concat", False), ("late", True), ("early", True)])
def test_messy_folder_trains_from_the_cli(tmp_path: Path, messy: Path, fusion: str, recipe: bool) -> None:
    """Issue 10's acceptance: mixed sizes, L/RGB/RGBA, 16/22.05 kHz mono/stereo, multilingual and missing
    captions, unlabelled and imbalanced samples train with `mmdata train` (defects 3, 4 and 5: unlabelled
    labels, eval at native size, early fusion sized from padded test images, pad_stack on mixed sizes)."""
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    args = ["train", str(messy), "--fusion", fusion, "--epochs", "2", "--batch-size", "8", "--out", str(tmp_path / "o"),
            "--threads", "1", "--json"]
    if recipe:
        (tmp_path / "r.yaml").write_text(RECIPE, encoding="utf-8")
        args += ["--recipe", str(tmp_path / "r.yaml")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output[-3000:]
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    side = m["inputs"]["image_size"]
    assert side[0] == side[1] and 16 <= side[0] <= 128 and m["inputs"]["channels"] == 3  # mixed sizes and modes
    assert m["inputs"]["sample_rate"] in (16000, 22050) and m["inputs"]["max_seconds"] <= 1.5
    steps = {mod: [s["op"] for s in v] for mod, v in m["normalize"].items()}
    assert steps["image"] == ["to_rgb", "resize", "center_crop"] and steps["audio"] == ["to_mono", "resample", "pad_trim"]
    assert m["classes"]["names"] == ["circle", "square", "triangle"] or m["classes"]["num_classes"] == 3
    assert {s: c["unlabelled"] for s, c in m["samples"].items()} == _unlabelled(messy)
    assert all(0 <= m[s]["accuracy"] <= 1 for s in ("val", "test")) and set(m["robustness"]["missing"]) == {"image", "audio", "text"}
    assert len(pq.read_table(tmp_path / "o" / "predictions.parquet")) == m["samples"]["test"]["samples"]


def test_a_recipes_own_normalize_wins_and_given_inputs_are_used(tmp_path: Path, messy: Path) -> None:
    own = {"normalize": {"image": [{"op": "to_gray", "channels": 1}, {"op": "resize", "size": [24, 24], "side": "exact"}]},
           "image": [{"op": "hflip", "p": 0.5}]}
    m = train(messy, fusion="early", modalities=["image", "audio"], epochs=1, recipe=own, channels=1, image_size=24,
              sample_rate=16000, max_seconds=0.5, threads=1, batch_size=16, eval_robustness=False)
    assert [s["op"] for s in m["normalize"]["image"]] == ["to_gray", "resize"]
    assert [s["op"] for s in m["normalize"]["audio"]] == ["to_mono", "resample", "pad_trim"]
    assert m["normalize"]["audio"][1]["rate"] == 16000 and m["normalize"]["audio"][2]["seconds"] == 0.5
    # the recipe's own image list is what runs, so it is what the inputs record names
    assert m["inputs"]["image_size"] == [24, 24] and m["inputs"]["channels"] == 1
    assert m["inputs"]["sources"]["image_size"] == "the recipe's normalize.image (to_gray, resize)"
    assert m["inputs"]["sample_rate"] == 16000 and m["inputs"]["sources"]["sample_rate"] == "given"
    assert m["config"]["recipe"]["image"][0]["op"] == "hflip" and "robustness" not in m
