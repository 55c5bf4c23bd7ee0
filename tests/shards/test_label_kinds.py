"""Labels that are not one class per sample (QA 2026-12-03, a MultiBench user): MM-IMDb-like genres
("Drama|Comedy", a JSON list) became combination classes — a list its Python repr as a class name —
without a word, and CMU-MOSI-like sentiment scores were left out row by row ("expected an integer class
id", "-2.0" too, though it is an integer) while "3.0" silently became class 3. Lists are now reported
cells, joined names and real numbers are warned of with the route that works (--meta), and the
per-row reasons say what the value is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import mmdata
from mmdata.shards.sources import discover


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for i in range(6):
        Image.new("RGB", (4, 4), (i * 40, 0, 0)).save(tmp_path / f"{i}.png")
    return tmp_path


def test_multi_label_genres_are_warned_and_lists_reported(root: Path) -> None:
    (root / "g.csv").write_text("image,label\n0.png,Drama|Comedy\n1.png,Comedy|Drama\n2.png,Drama\n3.png,Action|Drama\n")
    found = discover(root / "g.csv")
    assert any("3 class names join several names ('Action|Drama', 'Comedy|Drama', 'Drama|Comedy'): multi-label "
               "targets?" in w and "(--meta)" in w for w in found.warnings)
    rows = [{"image": "0.png", "label": ["Action", "Music"]}, {"image": "1.png", "label": "Drama"}]
    (root / "l.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    found = discover(root / "l.jsonl")
    assert found.label_names == ["Drama"]  # was ["Drama", "['Action', 'Music']"]
    assert [r.label for r in found.records] == [None, 0]
    assert found.skipped[0]["reason"].startswith("l.jsonl row 1, column 'label': a list of 2 values, not one class")


def test_scores_in_the_label_column_are_warned_and_named(root: Path) -> None:
    (root / "s.csv").write_text("image,label\n0.png,-1.8\n1.png,2.6\n2.png,3.0\n3.png,-2.0\n4.png,1\n")
    found = discover(root / "s.csv")
    assert [r.label for r in found.records] == [None, None, 3, None, 1]
    warning = next(w for w in found.warnings if "holds real numbers" in w)
    assert "('-1.8', '2.6': 2 rows): a score or a regression target?" in warning  # -2.0: a negative label
    assert "1 whole number ('3.0') read as class id;" in warning
    reasons = [e["reason"] for e in found.skipped]
    assert "label '-2.0' is a negative number, not a class id" in reasons[2]  # was "expected an integer class id"
    assert "label '2.6' is a real number, not a class id" in reasons[1]


def test_the_metadata_route_gives_scores_and_genres_back_exactly(root: Path, tmp_path: Path) -> None:
    rows = [{"image": f"{i}.png", "sentiment": [-1.8, 0.6666667, 2.6][i % 3], "genres": ["Drama", "Comedy"][: 1 + i % 2]}
            for i in range(6)]
    (root / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    mmdata.shard(root / "m.jsonl", tmp_path / "ds", meta=["sentiment", "genres"], progress=False)
    got = {}
    for b in mmdata.loader(tmp_path / "ds", 3, shuffle=False):
        for k, meta in zip(b.keys, b["json"]):
            got[k] = meta
    assert got == {str(i): {"sentiment": rows[i]["sentiment"], "genres": rows[i]["genres"]} for i in range(6)}
    names = ["Comedy", "Drama"]
    target = torch.tensor([[float(n in got[k]["genres"]) for n in names] for k in sorted(got)])
    assert target.sum().item() == 9  # multi-hot targets for a BCE loss, from the json field


def test_label_warnings_stay_quiet_where_nothing_was_lost(root: Path) -> None:
    """QA round 4: numeric class names declared with --labels, names float() reads (1e3, nan), a column of
    real numbers only (kept as names) and -1 were all warned as "real numbers ... left out"; a CSV column of
    pandas list reprs became class names without a word."""
    (root / "n.csv").write_text("image,label\n0.png,0.5\n1.png,1.5\n2.png,2.5\n")
    (root / "names.txt").write_text("0.5\n1.5\n2.5\n")
    declared = discover(root / "n.csv", label_names=["0.5", "1.5", "2.5"])
    assert [r.label for r in declared.records] == [0, 1, 2] and not declared.warnings
    alone = discover(root / "n.csv")  # real numbers without ids are class names: nothing left out
    assert [r.label for r in alone.records] == [0, 1, 2] and not any("real numbers" in w for w in alone.warnings)
    (root / "f.csv").write_text("image,label\n0.png,1e3\n1.png,nan\n2.png,-1\n")  # names float() reads, no id
    assert not any("real numbers" in w for w in discover(root / "f.csv").warnings)
    (root / "p.csv").write_text('image,label\n0.png,"[\'a\', \'b\']"\n1.png,"[\'a\']"\n')
    warning = next(w for w in discover(root / "p.csv").warnings if "multi-label" in w)
    assert "2 class names read as Python lists" in warning and "--labels names.txt" in warning
