"""QA38 reproducibility #2 / #4: a finished ablation folder re-rendered without its dataset keeps what its own
summary.json recorded of the data (``dataset``, ``target``, and so the warnings computed from them); the
"not there" warning names the path looked up and a same-named dataset folder found elsewhere; a recipe's
relative ``dataset.path`` missing from the working directory but beside the recipe is named in the error.
Synthetic trainer (no training)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmdata.ablate import run
from mmdata.errors import MMDataError

SYN = "mmdata.ablate.testing:synthetic_train"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("qa38abl") / "o_base", limit=4, progress=False)


def _cfg(data: Any) -> dict[str, Any]:
    return {"dataset": {"path": str(data)}, "trainer": {"entry": SYN}, "seeds": 4,
            "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": {"image": [{"op": "cutout", "p": 0.5}]}}},
            "controls": {"identity": False}}


def _run(recipe: Any, out: Path, said: list[str] | None = None) -> dict[str, Any]:
    return run(recipe, out, progress=False, plots=False, workers=1,
               on_warning=(said.append if said is not None else lambda m: None))


#: a class reference as the bundled trainer's report records it (the synthetic trainer's report has none)
TARGET = {"key": None, "kind": "classes", "test_split": "test", "n_test": 15, "names": ["a", "b"],
          "train_counts": {"a": 20, "b": 20}, "test_counts": {"a": 8, "b": 7}, "absent_from_test": [],
          "constant": {"a": {"accuracy": 8 / 15, "macro_f1": 0.3478260869565218},
                       "b": {"accuracy": 7 / 15, "macro_f1": 0.3181818181818182}},
          "best_constant": "a", "runs_at_trivial_reference": None}


def test_a_rerender_without_the_dataset_keeps_the_recorded_dataset_and_target(tmp_path: Path, tiny: Path) -> None:
    folder = tmp_path / "colleague"
    data = shutil.copytree(tiny, folder / "o_base")
    out = folder / "ab1"
    first = _run(_cfg(data), out)
    assert first["dataset"] and first["dataset"]["samples"] > 0
    # the bundled trainer's report records the target's reference; planted here as it would be
    s = json.loads((out / "summary.json").read_text())
    s["target"] = TARGET
    (out / "summary.json").write_text(json.dumps(s, indent=2) + "\n")
    # the folder moves to another machine: the recorded absolute path is gone, ./o_base is beside it
    moved = shutil.move(folder, tmp_path / "mv1")
    here = Path(moved)
    cwd = os.getcwd()
    os.chdir(here)
    try:
        said: list[str] = []
        again = _run(here / "ab1" / "config.resolved.yaml", here / "ab1", said)
    finally:
        os.chdir(cwd)
    assert again["dataset"] == first["dataset"]
    assert again["target"]["n_test"] == 15 and again["target"]["names"] == ["a", "b"]
    # the warning the reference gives is computed again from the recorded target (δ vs one test example)
    assert any("the test split `test` has 15 labelled examples" in w for w in again["warnings"]), again["warnings"]
    gone = next(m for m in said if "is not there" in m)
    assert str(data) in gone, gone  # the path looked up, as recorded (absolute), not a shortened name
    assert "o_base" in gone and "holds the same data" in gone and "set dataset.path to it" in gone, gone
    assert "summary.json" in gone and "dataset" in gone
    report = (here / "ab1" / "report.md").read_text()
    assert "15 labelled examples" in report


def test_a_recorded_summary_of_other_data_is_not_reused(tmp_path: Path, tiny: Path) -> None:
    data = shutil.copytree(tiny, tmp_path / "d")
    out = tmp_path / "ab"
    _run(_cfg(data), out)
    s = json.loads((out / "summary.json").read_text())
    s["target"], s["data_fingerprint"] = TARGET, "0" * 16  # a report of other data
    (out / "summary.json").write_text(json.dumps(s, indent=2) + "\n")
    shutil.rmtree(data)
    said: list[str] = []
    again = _run(out / "config.resolved.yaml", out, said)
    assert again["dataset"] is None and again["target"] is None
    assert any("could not be re-checked" in m for m in said), said


def test_a_relative_dataset_path_beside_the_recipe_is_named(tmp_path: Path, tiny: Path) -> None:
    art = tmp_path / "elsewhere" / "abl"
    shutil.copytree(tiny, art / "o_base")
    (art / "abl.yaml").write_text(yaml.safe_dump(_cfg("o_base")))
    (tmp_path / "cwdtest").mkdir()
    cwd = os.getcwd()
    os.chdir(tmp_path / "cwdtest")
    try:
        with pytest.raises(MMDataError) as got:
            _run(art / "abl.yaml", tmp_path / "ab3")
    finally:
        os.chdir(cwd)
    msg = str(got.value)
    assert "dataset.path" in msg and "relative to the working directory" in msg
    assert str(art / "o_base") in msg and "beside the ablation recipe" in msg, msg
    assert not (tmp_path / "ab3").exists()
