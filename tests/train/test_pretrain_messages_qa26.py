"""Pre-training's messages say what it did (QA26): on unlabelled data with ``--epochs 0`` the run said
"unlabelled samples are left out of the loss and the scores" (contrastive pre-training and its retrieval
use them); ``exclude_same_class=true`` on data without labels removed nothing, silently; and
``batch_size=100000`` on a split of 57 was recorded as 100000 with no word that each batch had 57 rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmdata


@pytest.fixture(scope="module")
def captions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unlabelled image-caption dataset (96 pairs, train 0.6)."""
    root = tmp_path_factory.mktemp("cap26")
    rng = np.random.default_rng(0)
    rows = ["image,text"]
    colours = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 30)}
    for i in range(96):
        name, rgb = list(colours.items())[i % 4]
        a = (rng.random((16, 16, 3)) * 40).astype(np.uint8)
        a[4:12, 4:12] = rgb
        Image.fromarray(a).save(root / f"{i:03d}.png")
        rows.append(f"{i:03d}.png,a {name} square number {i % 7}")
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    mmdata.shard(root / "m.csv", root / "ds", split="train=0.6,val=0.2,test=0.2", progress=False)
    return root / "ds"


def test_pretrain_only_messages(captions: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    args = ["train", str(captions), "--pretrain", "contrastive", "--epochs", "0", "--pretrain-epochs", "2",
            "--pretrain-arg", "exclude_same_class=true", "--pretrain-arg", "batch_size=100000", "--threads", "1"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "left out of the loss" not in text  # was said, and false: pre-training uses them
    assert "contrastive pre-training and its retrieval use every sample, labelled or not" in text
    assert "exclude_same_class=true removed nothing" in text and "no training sample had a known class" in text
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    n = m["samples"]["train"]["samples"]
    assert f"batch_size=100000, but the largest batch held {n} rows" in text
    pre = m["pretrain"]
    assert pre["batch_size"] == 100000 and pre["largest_batch"] == n
    h = pre["history"][-1]
    assert h["batches"] == 1 and h["largest_batch"] == n and h["negatives_per_row"] == n - 1
    assert h["excluded_negatives"] == 0 and h["rows_with_known_class"] == 0
    # the run's own --batch-size (64 by default) above a small split is no news: recorded, not warned of
    res = CliRunner().invoke(app, [*args[:-6], *args[-2:], "--out", str(tmp_path / "o2")])
    assert res.exit_code == 0, res.output
    assert "largest batch held" not in res.output
    assert json.loads((tmp_path / "o2" / "metrics.json").read_text())["pretrain"]["largest_batch"] == n


def test_no_note_when_batches_are_full_and_labels_known(avdigits4: Path) -> None:
    from mmdata.train.contrastive import pretrain_encoders
    from mmdata.train.model import FusionModel

    pre = pretrain_encoders(FusionModel(["image", "text"], "concat", classes=10), avdigits4, epochs=1, batch_size=8,
                            exclude_same_class=True, eval_split=None)
    h = pre.history[0]
    assert h["largest_batch"] == 8 and h["rows_with_known_class"] > 0 and pre.notes == []
    assert 0 < h["negatives_per_row"] <= 7
