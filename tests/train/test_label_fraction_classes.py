"""QA: ``--label-fraction`` could leave a class with no training labels, silently: the subset is a draw
per sample (each kept with probability F), not stratified, so at a small F a small class can lose all
its labels; the "class ... has no training samples" warning fired only for a class absent from the
split, and the console's sample line never said how many labels the run trains on. Now the classes
left without labelled training samples are warned of by name, and the sample line gives the kept
count."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmdata.train import train
from mmdata.train.contrastive import kept_keys, labelled_balance

ONE = {"epochs": 1, "batch_size": 16, "threads": 1, "eval_robustness": False, "modalities": ["image"]}


def test_a_class_left_without_labels_is_warned_of_and_the_kept_count_printed(messy: Path,
                                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # seed 1 at F = 0.1 keeps one circle and one square of the 32 labelled training samples, no triangle
    kept = kept_keys(messy, labelled_balance(None, 0.1), 1)
    assert sorted(set(kept.values())) == ["0", "1"]
    m = train(messy, label_fraction=0.1, seed=1, progress=True, **ONE)
    assert m["labelled_train"] == 2
    warn = [w for w in m.get("warnings", []) if "--label-fraction" in w]
    assert len(warn) == 1 and "'triangle'" in warn[0] and "'circle'" not in warn[0], m.get("warnings")
    out = " ".join(capsys.readouterr().err.split())
    assert "training labels kept: 2 of 32 (--label-fraction 0.1)" in out


def test_every_class_kept_warns_nothing(messy: Path) -> None:
    kept = kept_keys(messy, labelled_balance(None, 0.1), 0)
    assert sorted(set(kept.values())) == ["0", "1", "2"]
    m = train(messy, label_fraction=0.1, seed=0, **ONE)
    assert not [w for w in m.get("warnings", []) if "--label-fraction" in w]
