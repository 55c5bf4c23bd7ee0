"""Extreme datasets from a QA pass (2026-12-05): a test split without labels under ``mmdata ablate``, 200+
classes of 1-3 samples, a class with no test sample, constant targets, non-ASCII class names on an
ASCII stdout.

Before: the ablation trained every run and failed each on a NaN primary metric (the cause only in the
runs' warnings); 200 classes printed 137 "no val samples" lines and a 210-row table; a class absent from
test and never predicted showed P/R/F1 0.000 while macro-F1 left it out; a target true in every sample
(or a label on in every sample) trained to perfect scores without a word; a constant regression target's
header said "sd 1"; ``PYTHONIOENCODING=ascii`` misaligned the per-class table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml

import mmdata
from mmdata.testing.media import image_bytes

TINY = ["--epochs", "1", "--batch-size", "16", "--no-robustness", "--threads", "1"]


def shard_rows(root: Path, rows: list[tuple[Any, str]], meta: dict[str, list[Any]] | None = None) -> Path:
    """Shard one 8x8 image per ``(label or None, split)`` row from a JSONL manifest (``meta``: extra
    columns, one value per row, kept with their JSON types). Returns ``root/ds``."""
    root.mkdir(parents=True, exist_ok=True)
    records = []
    for i, (label, split) in enumerate(rows):
        (root / f"{i}.png").write_bytes(image_bytes(i, (8, 8)))
        rec = {"key": f"s{i}", "image": f"{i}.png", "label": label, "split": split}
        rec.update({k: v[i] for k, v in (meta or {}).items()})
        records.append(rec)
    pd.DataFrame(records).to_json(root / "m.jsonl", orient="records", lines=True)
    mmdata.shard(root / "m.jsonl", root / "ds", meta=list(meta or ()), progress=False)
    return root / "ds"


def _cli(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmdata.cli.main", *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


# 1. an ablation's primary metric scored on a split without labels


@pytest.fixture(scope="module")
def unlabelled_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [("a", "train"), ("b", "train")] * 3 + [("a", "val"), ("b", "val")] + [(None, "test")] * 2
    return shard_rows(tmp_path_factory.mktemp("unlabelled_test"), rows)


def test_ablate_refuses_a_test_split_without_labels(unlabelled_test: Path, tmp_path: Path, mmdata_cli: Any) -> None:
    recipe = {"dataset": {"path": str(unlabelled_test)}, "trainer": {"epochs": 1, "eval_robustness": False},
              "seeds": 2, "design": {"mode": "explicit", "baseline": None, "arms": {"cut": {"seed": 0, "image": [
                  {"op": "cutout", "p": 0.5}]}}}, "controls": {"identity": False}}
    (tmp_path / "ab.yaml").write_text(yaml.safe_dump(recipe))
    code, out = mmdata_cli(["ablate", str(tmp_path / "ab.yaml"), "--out", str(tmp_path / "out"), "-j", "1"])
    assert code == 2, out
    assert "the test split (test)" in out and "primary metric 'test.accuracy'" in out and "has a label" in out, out
    assert not (tmp_path / "out" / "runs.parquet").exists()


def test_check_dataset_names_the_metric_split(unlabelled_test: Path) -> None:
    from mmdata.errors import MMDataError
    from mmdata.train.config import check_dataset

    check_dataset(unlabelled_test)  # mmdata train: a warning, not an error
    with pytest.raises(MMDataError, match=r"the test split \(test\) supplies the primary metric 'test.macro_f1'"):
        check_dataset(unlabelled_test, metric="test.macro_f1")


# 2. hundreds of classes with a few samples each


@pytest.fixture(scope="module")
def many_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = []
    for c in range(210):  # 1-3 samples: every class in train, a third also in val, a third in test
        rows.append((f"c{c}", "train"))
        if c % 3 == 1:
            rows.append((f"c{c}", "val"))
        if c % 3 != 1:
            rows.append((f"c{c}", "test"))
    return shard_rows(tmp_path_factory.mktemp("many"), rows)


def test_many_classes_one_warning_and_a_capped_table(many_classes: Path, tmp_path: Path) -> None:
    from mmdata.cli.train import CLASS_ROWS

    res = _cli(["train", str(many_classes), *TINY, "--out", str(tmp_path / "run")])
    assert res.returncode == 0, res.stderr
    no_val = [line for line in res.stderr.splitlines() if "no val samples" in line]
    assert len(no_val) == 1, no_val
    assert "140 classes" in no_val[0] and "'c0'" in no_val[0], no_val
    rows = [line for line in res.stdout.splitlines() if line.startswith("│ c")]
    assert len(rows) == CLASS_ROWS and f"the {CLASS_ROWS} most frequent of 210" in res.stdout, res.stdout
    assert f"{210 - CLASS_ROWS} more classes" in res.stdout and "metrics.json" in res.stdout, res.stdout
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(m["per_class"]["test"]) == 210  # every class in the file
    assert sum("no val samples" in w for w in m["warnings"]) == 1


def test_class_warnings_aggregate() -> None:
    from mmdata.train.config import NAMED_CLASSES, no_val_warning

    line = no_val_warning([(f"c{i}", i, 1, 1) for i in range(50)])
    assert line.startswith("50 classes have no val samples") and f"'c{NAMED_CLASSES - 1}'" in line
    assert f"'c{NAMED_CLASSES}'" not in line and "and 45 more" in line


def test_classes_without_training_samples_are_one_warning() -> None:
    """QA pass 2: a class list of 60 names of which 3 occur printed 57 'has no training samples' lines."""
    from mmdata.train.config import no_train_warning

    line = no_train_warning([(f"c{i}", i, 0, 0) for i in range(57)])
    assert line.startswith("57 classes have no training samples ('c0'") and "and 52 more" in line
    one = no_train_warning([("zebra", 2, 0, 2)])
    assert one == "class 'zebra' (id 2) has no training samples (val 0, test 2): the model cannot predict it"


def test_the_capped_table_leaves_out_classes_without_a_value(capsys: pytest.CaptureFixture[str]) -> None:
    """QA pass 2: the 50-row cap filled 47 rows with '—' (support 0, never predicted) of 60 listed names."""
    from mmdata.cli.train import CLASS_ROWS, _per_label_table

    none = {"precision": None, "recall": None, "f1": None, "support": 0}
    test = {"a": {"precision": 0.9, "recall": 1.0, "f1": 0.947, "support": 9},
            "b": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},  # predicted, no sample: a value
            **{f"n{i:02d}": dict(none) for i in range(CLASS_ROWS + 5)}}
    _per_label_table({"per_class": {"test": test}}, "classes", None)
    out = capsys.readouterr().out
    assert " a " in out and " b " in out and " n00 " not in out, out
    assert f"{CLASS_ROWS + 5} more classes" in out


# 3. a class with no test sample, never predicted


def test_unseen_unpredicted_class_is_null_not_zero() -> None:
    from mmdata.train.evaluate import Scores

    s = Scores(3)
    logits = torch.tensor([[5.0, 0, 0]] * 11)  # b's one sample predicted as a; z: no sample, no prediction
    labels = torch.tensor([0] * 10 + [1])
    s.update(logits, labels)
    assert s.per_class(["a", "b", "z"])["z"]["f1"] == 0.0  # scikit-learn's zero_division=0, by default
    pc = s.per_class(["a", "b", "z"], absent=None)  # as evaluate() and metrics.json give it
    assert pc["z"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert pc["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}  # macro-F1 counts it as 0
    assert round(pc["a"]["f1"], 3) == 0.952
    f1s = [c["f1"] for c in pc.values() if c["f1"] is not None]
    assert s.result()["macro_f1"] == pytest.approx(sum(f1s) / len(f1s))


def test_multilabel_label_never_on_nor_predicted_is_null_not_zero() -> None:
    """QA pass 2: a multi-label label with no positive, never predicted, read P/R/F1 0.0 while macro-F1
    left it out (the class scores had the fix, the multi-label ones not)."""
    from mmdata.train.target_scores import MultiLabelScores

    s = MultiLabelScores(3)
    s.update(torch.tensor([[3.0, -3, -3], [-1, 2, -3]]), torch.tensor([[1, 0, 0], [0, 1, 0]]))
    assert s.result()["macro_f1"] == 1.0
    pc = s.per_class(["x", "y", "z"], absent=None)
    assert pc["z"]["f1"] is None and pc["z"]["precision"] is None and pc["z"]["support"] == 0
    assert pc["x"]["f1"] == 1.0 and s.per_class(["x", "y", "z"])["z"]["f1"] == 0.0


def test_table_shows_a_dash_for_no_value(capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.cli.train import _per_label_table

    m = {"per_class": {"test": {"a": {"precision": 0.9, "recall": 1.0, "f1": 0.947, "support": 9},
                                "z": {"precision": None, "recall": None, "f1": None, "support": 0}}}}
    _per_label_table(m, "classes", None)
    z = next(line for line in capsys.readouterr().out.splitlines() if " z " in line)
    assert z.count("—") == 3 and "0.000" not in z, z


# 4. constant targets


@pytest.fixture(scope="module")
def constant_targets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    splits = ["train"] * 8 + ["val"] * 3 + ["test"] * 3
    n = len(splits)
    meta = {"flag": [True] * n, "tags": [["x", "y"] if i % 2 else ["x"] for i in range(n)], "num": [1.0] * n}
    return shard_rows(tmp_path_factory.mktemp("const"), [("a" if i % 2 else "b", s) for i, s in enumerate(splits)],
                      meta=meta)


@pytest.mark.parametrize("key, said", [("flag", "the target 'flag' is true in every training sample (8)"),
                                       ("tags", "label 'x' of the target 'tags' is on in every training sample")])
def test_constant_label_is_warned(constant_targets: Path, key: str, said: str) -> None:
    from mmdata.train import train

    m = train(constant_targets, target=key, epochs=1, threads=1, eval_robustness=False, batch_size=16)
    assert any(said in w and "nothing to learn" in w for w in m["warnings"]), m["warnings"]


def test_constant_regression_header_prints_sd_0(constant_targets: Path) -> None:
    res = _cli(["train", str(constant_targets), "--target", "num", *TINY])
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "training mean 1, sd 0" in out and "sd 1;" not in out, out


# 5. non-ASCII class names on an ASCII stdout


def test_ascii_stdout_table_aligned(tmp_path: Path) -> None:
    rows = [("café", "train"), ("日本", "train")] * 4 + [("café", "val"), ("日本", "val")] + \
           [("café", "test"), ("日本", "test")]
    ds = shard_rows(tmp_path / "nonascii", rows)
    res = _cli(["train", str(ds), *TINY], env={"PYTHONIOENCODING": "ascii", "COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "per class" in line)
    table = [line for line in lines[start + 1:] if line.strip()][:6]
    assert "caf\\xe9" in res.stdout and "\\u65e5\\u672c" in res.stdout, res.stdout
    assert len({len(line) for line in table}) == 1, "\n".join(table)
