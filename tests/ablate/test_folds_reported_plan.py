"""QA35 review #3: ``mmdata ablate-folds`` took each fold's metric / δ / α from its config.resolved.yaml, which can be
edited after the fold reported, and analysed a hand-edited ``test_accuracy`` that the row's own ``correct_on_test``
contradicts — both refused by ``mmdata ablate`` since QA35 grader #1 / #3, not by the fold pooling. Now
ablate-folds uses the same checks (runner's ``_reported_plan`` / ``_as_reported`` / ``check_recorded_accuracy``).

Also (review #5a) a fold whose runs tested on another split says so where its report gives the dataset's size.

Real bundled-trainer folds on a tiny avdigits (one epoch): one tested on ``test``, one on ``val``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml

from mmdata.ablate import run
from mmdata.ablate.folds import gather
from mmdata.errors import MMDataError


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from mmdata.datasets.avdigits import build

    root = tmp_path_factory.mktemp("foldplan")
    data = build(root / "av", limit=4, progress=False)
    cfg = {"dataset": {"path": str(data)},
           "trainer": {"fusion": "concat", "epochs": 1, "batch_size": 16, "eval_robustness": False}, "seeds": 4,
           "design": {"mode": "explicit", "baseline": None,
                      "arms": {"crop": {"image": [{"op": "random_crop", "p": 0.7, "size": [16, 16], "padding": 2,
                                                   "fill": 0}]}}},
           "controls": {"identity": False}}
    f1, f2 = root / "f1", root / "f2"
    run(cfg, f1, workers=1, progress=False, plots=False, on_warning=lambda w: None)
    run(cfg, f2, workers=1, progress=False, plots=False, on_warning=lambda w: None, test_split="val", val_split="test")
    return f1, f2


def _copies(folds: tuple[Path, Path], to: Path) -> list[Path]:
    return [Path(shutil.copytree(f, to / f.name)) for f in folds]


def _edit(folder: Path, **kw: Any) -> None:
    p = folder / "config.resolved.yaml"
    cfg = yaml.safe_load(p.read_text())
    cfg.update(kw)
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_untouched_folds_pool(folds: tuple[Path, Path], tmp_path: Path) -> None:
    s = gather(list(folds), tmp_path / "pooled", plots=False)
    assert s["primary_metric"]["name"] == "test.accuracy"


@pytest.mark.parametrize("edit, said", [
    ({"metric": {"name": "test.nll", "higher_is_better": False}}, "metric: test.nll (summary.json reported test.accuracy)"),
    ({"delta": 40.0}, "delta: 40 (summary.json reported the default)"),
    ({"alpha": 0.2}, "alpha: 0.2 (summary.json reported 0.05)"),
])
def test_a_plan_edited_into_a_folds_config_after_it_reported_is_refused(folds: tuple[Path, Path], tmp_path: Path,
                                                                         edit: dict[str, Any], said: str) -> None:
    f1, f2 = _copies(folds, tmp_path)
    _edit(f2, **edit)
    with pytest.raises(MMDataError) as err:
        gather([f1, f2], tmp_path / "pooled", plots=False)
    msg = str(err.value)
    assert msg.startswith(f"{f2}:") and said in msg and "edited after the fold reported" in msg, msg
    assert not (tmp_path / "pooled" / "report.md").exists()


def test_a_hand_edited_accuracy_in_a_fold_is_refused(folds: tuple[Path, Path], tmp_path: Path) -> None:
    f1, f2 = _copies(folds, tmp_path)
    t = pq.read_table(f1 / "runs.parquet").to_pandas()
    t.loc[t.arm == "crop", "test_accuracy"] += 0.2
    t.to_parquet(f1 / "runs.parquet")
    with pytest.raises(MMDataError) as err:
        gather([f1, f2], tmp_path / "pooled", plots=False)
    assert str(err.value).startswith(f"{f1}/runs.parquet row crop/0: test_accuracy") and "edited?" in str(err.value)


def test_a_fold_tested_on_val_says_so_with_the_dataset_size(folds: tuple[Path, Path]) -> None:
    f1, f2 = folds
    md1, md2 = ((f1 / "report.md").read_text(),
                (f2 / "report.md").read_text())
    assert "were tested on `val` (10)" in md2, [ln for ln in md2.splitlines() if "samples" in ln]
    assert "tested on" not in md1  # the usual splits: the counts alone


def test_report_md_shows_what_an_explicit_arm_trains_with(folds: tuple[Path, Path]) -> None:
    """QA35 review #4: a relabelled arm (``crop`` with another op in config.resolved.yaml) was invisible in report.md."""
    md = (folds[0] / "report.md").read_text()
    line = next(ln for ln in md.splitlines() if ln.startswith("Arms' recipes: "))
    assert "crop: `image random_crop(p 0.7, size [16, 16], padding 2, fill 0)`" in line, line
    assert line.startswith("Arms' recipes: baseline: `no augmentation`"), line
