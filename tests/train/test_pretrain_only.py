"""Contrastive pre-training alone, on unlabelled pairs (QA 2026-12-03, an image-text retrieval user):
``mmdata train --pretrain contrastive`` refused a caption dataset without classes ("the card has no
classes ... training needs labels", though pre-training leaves labels unused), and ``--epochs`` had to be
at least 1, so a retrieval user invented labels and sat through a classifier's training.
``--epochs 0`` now pre-trains the encoders alone: metrics.json with the test retrieval, contrastive.pt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmdata
from mmdata.errors import MMDataError
from mmdata.train import train
from mmdata.train.contrastive import load

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 30)}


@pytest.fixture(scope="module")
def captions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unlabelled image-caption dataset: a coloured square on one side, a caption naming both."""
    root = tmp_path_factory.mktemp("cap")
    rng = np.random.default_rng(0)
    rows = ["image,text"]
    for i in range(96):
        name, rgb = list(COLOURS.items())[i % 4]
        side = ["left", "right"][(i // 4) % 2]
        a = (rng.random((16, 16, 3)) * 40).astype(np.uint8)
        a[4:12, (0 if side == "left" else 8):(8 if side == "left" else 16)] = rgb
        Image.fromarray(a).save(root / f"{i:03d}.png")
        rows.append(f"{i:03d}.png,a {name} square on the {side}")
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    mmdata.shard(root / "m.csv", root / "ds", split="train=0.6,val=0.2,test=0.2", progress=False)
    return root / "ds"


def test_epochs_0_pretrains_on_unlabelled_pairs(captions: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    card = json.loads((captions / "dataset.json").read_text())
    assert not card.get("num_classes")  # no labels at all
    args = ["train", str(captions), "--pretrain", "contrastive", "--epochs", "0", "--pretrain-epochs", "3",
            "--out", str(tmp_path / "o"), "--threads", "1"]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output  # was: "the card has no classes (num_classes=0); training needs labels"
    m = json.loads(res.stdout)
    r = m["retrieval"]["image-text"]
    assert r["n"] == m["samples"]["test"]["samples"] > 10 and 0 < r["chance"]["instance"]["R@1"] < 1
    assert "test" not in m and m["classes"]["num_classes"] == 0 and len(m["pretrain"]["history"]) == 3
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["contrastive.pt", "metrics.json"]
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["retrieval"] == m["retrieval"]
    assert list(load(tmp_path / "o").mods) == ["image", "text"]
    res = CliRunner().invoke(app, args)  # the table form: retrieval and what was written
    assert res.exit_code == 0 and "retrieval image-text" in res.output and "pre-trained the encoders only" in res.output


def test_the_same_pretraining_as_before_a_classifier(avdigits40: Path) -> None:
    """--epochs 0 stops where a run with a classifier starts training it: the same pre-training."""
    kw = dict(seed=2, threads=1, eval_robustness=False, pretrain="contrastive", pretrain_epochs=1,
              modalities=["image", "text"])
    alone = train(avdigits40, epochs=0, **kw)
    with_classifier = train(avdigits40, epochs=1, **kw)
    assert alone["pretrain"]["history"] == with_classifier["pretrain"]["history"]
    assert alone["retrieval"] == with_classifier["retrieval"]


def test_epochs_0_without_pretraining_is_an_error(captions: Path, avdigits40: Path) -> None:
    with pytest.raises(MMDataError, match=r"epochs=0 \(--epochs 0\) trains no classifier"):
        train(avdigits40, epochs=0)
    with pytest.raises(MMDataError, match="trains a linear layer, and epochs=0"):
        train(avdigits40, epochs=0, pretrain="contrastive", probe=True)
    with pytest.raises(MMDataError, match=r"training needs labels \(to pre-train the encoders on unlabelled pairs "
                                          r"alone: --pretrain contrastive --epochs 0\)"):
        train(captions, epochs=1)


def test_match_reads_a_pretrained_only_folder(captions: Path, tmp_path: Path) -> None:
    """QA: `mmdata match DATA --model DIR` after `--epochs 0` failed "DIR/model.pt not found"; the cosine part
    needs only contrastive.pt, so it runs and the classifier's divergences are left out."""
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    train(captions, epochs=0, pretrain="contrastive", pretrain_epochs=2, out=tmp_path / "o", threads=1)
    res = CliRunner().invoke(app, ["match", str(captions), "--model", str(tmp_path / "o"), "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["fusion"] is None and r["embedding"].endswith("contrastive.pt") and r["overall"].keys() == {"auc"}
    assert list(r["pairs"]) == ["image-text"] and "divergence" not in r["pairs"]["image-text"]
    assert 0 <= r["pairs"]["image-text"]["cosine"]["auc"] <= 1 and Path(r["figure"]).is_file()
    res = CliRunner().invoke(app, ["match", str(captions), "--model", str(tmp_path / "o")])
    assert res.exit_code == 0 and "the pre-trained embedding" in res.output


@pytest.mark.parametrize("split", ["train=0.8,test=0.2", "train=1.0"])
def test_pretraining_alone_needs_a_train_split_only(captions: Path, tmp_path: Path, split: str) -> None:
    """QA: `--epochs 0` asked for train / val / test splits though pre-training reads train and measures
    retrieval on test; a caption corpus with train + test (or train alone) had to be re-sharded."""
    raw = captions.parent
    mmdata.shard(raw / "m.csv", tmp_path / "ds", split=split, progress=False)
    m = train(tmp_path / "ds", epochs=0, pretrain="contrastive", pretrain_epochs=1, threads=1, out=tmp_path / "o")
    assert (tmp_path / "o" / "contrastive.pt").is_file() and len(m["pretrain"]["history"]) == 1
    assert ("image-text" in m["retrieval"]) == ("test" in split)  # retrieval on test when there is one
    mmdata.shard(raw / "m.csv", tmp_path / "no_train", split="val=0.5,test=0.5", progress=False)
    with pytest.raises(MMDataError, match=r"pre-training needs a train split; it has \['test', 'val'\]"):
        train(tmp_path / "no_train", epochs=0, pretrain="contrastive", pretrain_epochs=1, threads=1)
