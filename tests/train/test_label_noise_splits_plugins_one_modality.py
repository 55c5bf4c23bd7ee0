"""QA round 33 (trainer): label noise flips an exact, seeded share and is recorded; every run records its
splits and plugins; the card's duplicates reach the run's warnings; one-modality runs say what their
fusion and robustness reduce to; the --target hint for reserved names; an ablation's regression metric;
the text-units line of the input summary."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.errors import MMDataError

FAST = {"epochs": 1, "threads": 1, "batch_size": 8}
WORDS = ("red", "green", "blue", "cold", "warm", "dark", "light", "small")


def _text_manifest(root: Path, captions: list[str], labels: list[str], scores: list[float] | None = None) -> Path:
    """A text-only manifest (key, text, label[, score]) written as CSV."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "m.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["key", "text", "label"] + (["score"] if scores is not None else []))
        for i, (t, y) in enumerate(zip(captions, labels)):
            w.writerow([f"s{i:03d}", t, y] + ([scores[i]] if scores is not None else []))
    return path


@pytest.fixture(scope="module")
def text_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 text-only samples, two classes, with a numeric metadata column ``score`` (train / val / test)."""
    root = tmp_path_factory.mktemp("text33")
    caps = [f"{WORDS[i % 8]} {WORDS[(i * 3) % 8]} thing {'yes' if i % 2 else 'no'}" for i in range(40)]
    path = _text_manifest(root / "raw", caps, ["pos" if i % 2 else "neg" for i in range(40)],
                          [round(0.1 * i, 2) for i in range(40)])
    mmdata.shard(path, root / "ds", meta=["score"], split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    return root / "ds"


# --- labelnoise #4: an exact, seeded share ----------------------------------------------------------------------------

def test_label_noise_plan_flips_exactly_round_f_n_to_classes_with_training_samples() -> None:
    from mmdata.train.targets import plan_label_noise

    labels = {f"k{i:02d}": (0, 1, 3)[i % 3] for i in range(58)}  # class 2 has no training sample
    for fraction in (0.1, 0.3, 0.5):
        for seed in range(4):
            noise = plan_label_noise(labels, fraction, seed)
            assert len(noise.replaced) == round(fraction * 58) and noise.of == 58
            assert all(new != labels[k] and new in (0, 1, 3) for k, new in noise.replaced.items())
            assert noise.replaced == plan_label_noise(dict(reversed(labels.items())), fraction, seed).replaced
    assert plan_label_noise(labels, 0.3, 0).replaced != plan_label_noise(labels, 0.3, 1).replaced
    assert plan_label_noise(labels, 0.0, 0).record() == {"fraction": 0.0, "flipped": 0, "of": 58, "keys": []}


def test_planned_noise_replaces_only_the_planned_rows_of_every_target_kind() -> None:
    from mmdata.train.targets import LabelNoise, Target

    keys = ["a", "b", "c"]
    cls = Target.classes(3)
    noisy = cls.noisy(torch.tensor([0, 1, -1]), keys, LabelNoise(0.5, 3, {"a": 2, "c": 1}), seed=0)
    assert noisy.tolist() == [2, 1, -1]  # an unlabelled row stays unlabelled
    reg = Target("regression", "s", [], 0.0, 1.0)
    out = reg.noisy(torch.tensor([0.5, float("nan"), 1.0]), keys, LabelNoise(0.5, 2, {"b": 3.0, "c": -1.0}), seed=0)
    assert torch.isnan(out[1]) and out[[0, 2]].tolist() == [0.5, -1.0]
    ml = Target("multilabel", "g", ["x", "y"])
    row = torch.tensor([1.0, 0.0])
    out = ml.noisy(torch.zeros(3, 2), keys, LabelNoise(0.3, 3, {"b": row.numpy()}), seed=0)
    assert out.tolist() == [[0, 0], [1, 0], [0, 0]]


def test_train_records_label_noise_splits_and_plugins(avdigits4: Path) -> None:
    from mmdata.train import train
    from mmdata.train.outputs import index_columns
    from mmdata.train.targets import plan_label_noise

    m = train(avdigits4, label_noise=0.3, seed=2, eval_robustness=False, plugins=["mmdata.ablate.testing"], **FAST)
    labels = index_columns(avdigits4, "train", ("label",))["label"]
    rec = m["label_noise"]
    assert rec["flipped"] == round(0.3 * len(labels)) == len(rec["keys"]) and rec["of"] == len(labels)
    assert rec["keys"] == sorted(plan_label_noise(labels, 0.3, 2).replaced)
    assert m["config"]["label_noise"] == 0.3 and rec["fraction"] == 0.3
    # labelnoise #10: every run records the splits it read; docsread #3: the plugins given
    assert m["config"]["splits"] == {"train": ["train"], "val": ["val"], "test": ["test"]}
    assert m["config"]["plugins"] == ["mmdata.ablate.testing"]


# --- labelnoise #8: the card's duplicates reach train's warnings ---------------------------------------------------

def test_card_label_conflicts_and_copies_across_read_splits_are_train_warnings(tmp_path: Path) -> None:
    from mmdata.shards.index import load_card
    from mmdata.testing import make_class_folders
    from mmdata.train import train
    from mmdata.train.config import duplicate_warnings

    raw = make_class_folders(tmp_path / "raw", per_class=6, classes=("cat", "dog"))
    for ext in ("png", "txt"):  # one item filed under both classes
        shutil.copy(raw / "cat" / f"000.{ext}", raw / "dog" / f"900.{ext}")
    ds = tmp_path / "ds"
    mmdata.shard(raw, ds, split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    said = duplicate_warnings(ds, load_card(ds), None)
    assert any("labels differ: cat, dog" in w for w in said), said
    m = train(ds, eval_robustness=False, **FAST)
    assert any("labels differ: cat, dog" in w for w in m["warnings"])
    clean = tmp_path / "clean"
    mmdata.shard(make_class_folders(tmp_path / "raw2", per_class=6, classes=("cat", "dog")), clean,
                 split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    assert duplicate_warnings(clean, load_card(clean), None) == []


# --- onemodality #2, #6, #7, #8; multilingual #8; deploy #12 --------------------------------------------------------

@pytest.mark.parametrize("key", ["label", "image"])
def test_target_hint_for_a_reserved_name_advises_renaming_the_column(avdigits4: Path, key: str) -> None:
    from mmdata.train import train

    with pytest.raises(MMDataError, match="no training sample has the metadata key") as exc:
        train(avdigits4, target=key, eval_robustness=False, **FAST)  # a dataset without metadata (onemodality #2)
    msg = str(exc.value)
    assert f"--meta {key};" not in msg and "rename the manifest's column" in msg and "--target score" in msg


def test_two_tower_on_one_modality_names_what_is_missing_and_what_works() -> None:
    from mmdata.train import FusionModel

    with pytest.raises(MMDataError, match=r"no image or audio .* concat is the plain unimodal baseline"):
        FusionModel(["text"], "two_tower", 2)


def test_one_modality_run_says_why_missing_is_empty_and_summarises_text_units(text_ds: Path) -> None:
    from mmdata.train import train

    m = train(text_ds, fusion="cross_attention", **FAST)
    rob = m["robustness"]
    assert rob["missing"] == {} and "the only modality" in rob["not_applicable"]["text"]
    assert "text" in rob["corruption"]
    units = m["inputs"]["text_units"]
    assert units["captions"] == 24 and units["tokens"]["median"] == 4 and units["single_unit_share"] == 0.0
    assert units["ids"] == 4096 and units["distinct_units"] >= 4
    assert "upper bound on tokens" in m["inputs"]["sources"]["max_tokens"]


def test_text_units_counts_single_unit_captions_and_id_collisions(tmp_path: Path) -> None:
    from mmdata.train.config import describe_text_units, text_units

    thai = ["แมวนั่งอยู่ทางซ้าย", "หมาวิ่งเร็วมาก", "นกบินสูง", "ปลาว่ายน้ำ"] * 3
    han = [chr(0x4E00 + i) * 1 + chr(0x4E00 + 2000 + i) for i in range(12)]  # two CJK units each
    path = _text_manifest(tmp_path / "raw", thai + han, ["a", "b"] * 12)
    ds = tmp_path / "ds"
    mmdata.shard(path, ds, progress=False)
    units = text_units(ds, "train")
    assert units["captions"] == 24 and units["single_unit_share"] == 0.5
    assert units["distinct_units"] == 4 + 24
    line = describe_text_units(units)
    assert "50% of captions are a single unit" in line and "Thai" in line
    from mmdata.text import Tokenizer

    ids = [Tokenizer().token_id(chr(0x4E00 + c)) for c in range(3500)]
    assert len(set(ids)) < 3500  # the table is small: the summary's collision count is not always 0


def test_ablation_on_a_regression_target_defaults_to_mae(text_ds: Path) -> None:
    from mmdata.ablate.design import design_warnings, load_ablation

    spec = {"dataset": {"path": str(text_ds)}, "trainer": {"fusion": "concat", "epochs": 1, "target": "score"},
            "seeds": 2, "design": {"mode": "add_one", "recipe": {"seed": 0, "text": [{"op": "word_delete", "p": 0.5}]}}}
    ab = load_ablation(spec)
    assert ab.metric.column == "test_mae" and ab.metric.higher_is_better is False
    assert any("primary metric is test.mae (lower is better)" in w for w in design_warnings(ab))


def test_ablation_target_kind_unknown_keeps_the_clear_error(tmp_path: Path) -> None:
    from mmdata.ablate.design import load_ablation
    from mmdata.errors import RecipeError

    spec = {"dataset": {"path": str(tmp_path / "absent")}, "trainer": {"fusion": "concat", "target": "score"},
            "seeds": 2, "design": {"mode": "explicit", "arms": {"a": None}}}
    with pytest.raises(RecipeError, match="name the primary metric"):
        load_ablation(spec)


def test_the_torchrun_entry_records_its_plugins(avdigits4: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m mmdata.train --plugin M`` (the torchrun entry) imported M itself and trained without it: its
    runs did not record config["plugins"], so a plugin fusion could not be named when loaded back."""
    from mmdata.train.__main__ import main

    main([str(avdigits4), "--plugin", "mmdata.ablate.testing", "--epochs", "1", "--batch-size", "8", "--threads", "1",
          "--no-eval-robustness", "--out", str(tmp_path / "run"), "--json"])
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["config"]["plugins"] == ["mmdata.ablate.testing"]
