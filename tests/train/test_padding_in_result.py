"""The trainer's padding warning is part of its result (QA round 34, analyst D2: metrics.json and ``--json`` left
out the warning stderr printed) and its train numbers say when the recipe changes the clips' lengths after the
loader measured them (avspeech 11: "clips of 1.16 to 5.92 s" while the model got 1 s windows)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_messy_folder
from mmdata.train import train

FAST = {"epochs": 1, "batch_size": 8, "threads": 1, "eval_robustness": False, "modalities": ["audio"]}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("padres")
    make_messy_folder(root / "raw", n=30, sizes=((16, 16),), seconds=(0.2, 1.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(root / "raw", root / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False,
                     labels_from_folders=False)
    return root / "ds"


def _run(data: Path, out: Path, **kw: object) -> tuple[dict, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = train(data, out=out, **{**FAST, **kw})
    return m, [str(w.message) for w in caught if "zero padding in the batches" in str(w.message)]


def test_the_padding_warning_is_in_metrics_json_and_said_once(clips: Path, tmp_path: Path) -> None:
    m, said = _run(clips, tmp_path / "run")
    assert len(said) == 1, said
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())["warnings"]
    assert said[0] in m["warnings"] and said[0] in on_disk
    assert "test" in said[0] and "before the recipe" not in said[0]


def test_the_train_numbers_say_the_recipe_changes_the_lengths_after_them(clips: Path, tmp_path: Path) -> None:
    recipe = {"seed": 0, "audio": [{"op": "random_crop", "p": 1.0, "seconds": 0.3}]}
    m, said = _run(clips, tmp_path / "run", recipe=recipe)
    (msg,) = said
    train_part = msg.split("; train: ")[-1] if "; train: " in msg else msg.split("splits (each split's loader found it; said once per run): ")[1]
    assert "train" in msg and "before the recipe's random_crop, which changes the clips' lengths" in msg, msg
    assert "while val and test are scored on whole clips" in msg, msg
    assert train_part and msg in m["warnings"]
