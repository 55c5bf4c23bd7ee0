"""QA24 C#2: `mmdata inspect` of a dataset of thousands of classes summarises each split's classes (a
5,000-class dataset made a 165,060-character line, 1,259 lines in a terminal); --json lists them all."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest


def _mmdata(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MMDATA_PROGRESS": "off"}
    return subprocess.run([sys.executable, "-m", "mmdata.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def _shard_manifest(root: Path, classes: int) -> Path:
    """Text samples, 1-3 per class, from a CSV manifest, sharded train / val / test = 0.8 / 0.1 / 0.1."""
    import mmdata

    root.mkdir(parents=True, exist_ok=True)
    with open(root / "m.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["key", "text", "label"])
        w.writeheader()
        for c in range(classes):
            for j in range(1 + c % 3):
                w.writerow({"key": f"s{c:05d}_{j}", "text": f"caption {j} of class {c}", "label": f"c{c:05d}"})
    with warnings.catch_warnings():  # a class of 1 sample cannot be in every split: shard says so, not this test
        warnings.simplefilter("ignore")
        mmdata.shard(root / "m.csv", root / "ds", split="train=0.8,val=0.1,test=0.1", maxcount=5000, progress=False)
    return root / "ds"


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _shard_manifest(tmp_path_factory.mktemp("many"), 5000)


def test_inspect_of_5000_classes_prints_short_lines(many: Path) -> None:
    res = _mmdata("inspect", str(many), cwd=many.parent)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert max(map(len, lines)) < 250, max(lines, key=len)[:300]
    assert len(res.stdout) < 5_000
    per_class = json.loads(_mmdata("inspect", str(many), "--json", cwd=many.parent).stdout)["per_class"]
    for split, counts in per_class.items():
        row = next(line for line in lines if line.startswith(f"│ {split} "))
        values = sorted(counts.values())
        assert f"{len(counts):,} of 5,000 classes" in row, row
        assert f"min {values[0]} / " in row and f"/ max {values[-1]}" in row, row
        assert f"absent {5000 - len(counts):,} (" in row, row
    assert "5,000 classes: each split's counts summarised; --json lists every class (per_class)" in lines


def test_inspect_json_still_lists_every_class(many: Path) -> None:
    rep = json.loads(_mmdata("inspect", str(many), "--json", cwd=many.parent).stdout)
    assert set().union(*(c.keys() for c in rep["per_class"].values())) == {f"c{c:05d}" for c in range(5000)}
    assert sum(sum(c.values()) for c in rep["per_class"].values()) == rep["samples"] == 9999


def test_inspect_of_a_few_classes_lists_them_as_before(tmp_path: Path) -> None:
    ds = _shard_manifest(tmp_path, 6)
    res = _mmdata("inspect", str(ds), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    per_class = json.loads(_mmdata("inspect", str(ds), "--json", cwd=tmp_path).stdout)["per_class"]
    train = next(line for line in res.stdout.splitlines() if line.startswith("│ train "))
    assert ", ".join(f"{k}: {v}" for k, v in per_class["train"].items()) in train
    assert "summarised" not in res.stdout


def test_a_class_named_like_the_unlabelled_group_is_warned_of_when_sharded(tmp_path: Path) -> None:
    """A class literally named ``(none)`` (a tool's export for "no label"?) is what inspect, ``balance: by:
    label`` and contrastive pre-training call the unlabelled samples: inspect counted the two together and
    balance left the class unbalanced, without a word (a known limit of the twenty-fourth round)."""
    import mmdata

    rows = [("a", "x", "cat"), ("b", "y", "(none)"), ("c", "z", ""), ("d", "w", "cat")]
    (tmp_path / "m.csv").write_text("key,text,label\n" + "".join(f"{k},{t},{lab}\n" for k, t, lab in rows),
                                    encoding="utf-8")
    with pytest.warns(mmdata.ShardWarning, match=r"class '\(none\)' \(id 0\) has the name mmdata gives samples "
                                                 r"without a label"):
        report = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    assert any("balance: by: label" in w and "rename the class" in w for w in report["warnings"])
    # an ordinary dataset says nothing of it
    (tmp_path / "n.csv").write_text("key,text,label\na,x,cat\nb,y,dog\nc,z,\n", encoding="utf-8")
    assert not any("(none)" in w for w in mmdata.shard(tmp_path / "n.csv", tmp_path / "ds2", progress=False)["warnings"])
