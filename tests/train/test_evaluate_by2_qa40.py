"""QA40 review eval: ``evaluate --by`` on --target runs keeps a value's type (inf apart from 'inf', a list apart
from its text: #1), leaves a multi-label group's undefined micro F1 (no positive, none predicted) null and unranked
(#2), scores per final group however many raw values a field has (#4), writes kind / metric / higher_is_better for
class runs too (#5), says "no gap" when every group ties (#6), prints a split name as text in the threshold-free
line (#3) and an object group as inspect prints it (#7)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import mmdata
from cli.main import app

ONE = {"epochs": 1, "threads": 1, "eval_robustness": False}
G = ["Infinity", '"inf"', "[1, 2]", '"[1, 2]"']


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 16x16 images in classes a / b with .json sidecars: ``g`` inf / 'inf' / [1, 2] / '[1, 2]', ``site``
    (``nopos``: no tag at all), ``tags``, ``score`` and a float ``age`` (one value per sample)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("qa40_by2")
    rng = np.random.default_rng(3)
    for c in ("a", "b"):
        (root / "raw" / c).mkdir(parents=True)
        for i in range(40):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / "raw" / c / f"s{i}.png")
            site = ["north", "south", "nopos", "north"][i % 4]
            tags = [] if site == "nopos" else ["x"] + (["y"] if i % 3 else [])
            body = '{"g": %s, "site": %s, "tags": %s, "score": %s, "age": %s}' % (
                G[(i // 4) % 4], json.dumps(site), json.dumps(tags), round(float(rng.uniform(0, 10)), 3),
                i + 0.5 + (100 if c == "b" else 0))
            (root / "raw" / c / f"s{i}.json").write_text(body)
    with pytest.warns(Warning):  # the Infinity sidecars: stored as given, warned of
        mmdata.shard(root / "raw", root / "ds", split="train=0.4,val=0.1,test=0.5", progress=False)
    return root / "ds"


@pytest.fixture(scope="module")
def runs(ds: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from mmdata.train import train

    root = tmp_path_factory.mktemp("qa40_by2_runs")
    out = {}
    for name, target in (("tags", "tags"), ("score", "score"), ("cls", None)):
        with pytest.warns(Warning):
            train(ds, **({"target": target} if target else {}), seed=0, out=root / name, **ONE)
        out[name] = root / name
    return out


def _cli(*args: str) -> str:
    r = CliRunner().invoke(app, ["evaluate", *args], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.mark.parametrize("run", ["tags", "score"])
def test_a_target_runs_groups_keep_their_type(ds: Path, runs: dict[str, Path], run: str) -> None:
    """#1: the number inf and the text 'inf' were two rows both {'value': 'inf'}, printed alike."""
    got = json.loads(_cli(str(runs[run]), str(ds), "--by", "g", "--json"))["by_value"]
    said = sorted((json.dumps(r["value"]), str(r.get("type"))) for r in got["values"])
    assert said == [('"[1, 2]"', "None"), ('"inf"', "None"), ('"inf"', "number"), ("[1, 2]", "list")], said
    lines = [ln for ln in _cli(str(runs[run]), str(ds), "--by", "g").splitlines() if ln.startswith("│")]
    for cell in (" inf ", " 'inf' ", " [1, 2] ", " '[1, 2]' "):
        assert sum(cell in ln for ln in lines) == 1, (cell, lines)


def test_a_group_without_positives_has_no_micro_f1(ds: Path, runs: dict[str, Path], tmp_path: Path) -> None:
    """#2: a group with no positive label that the run predicts none of scored micro F1 0.000 (as if every
    prediction were wrong) and was named the worst group; 2tp + fp + fn = 0 there: null, not ranked."""
    from mmdata.train.score_run import evaluate_run

    got = evaluate_run(runs["tags"], ds, by="site", out=tmp_path / "ev")["by_value"]
    preds = pd.read_parquet(tmp_path / "ev" / "predictions.parquet")
    sites = {r["value"]: r for r in got["values"]}
    site_of = {k: ["north", "south", "nopos", "north"][int(k.split("_")[1][1:]) % 4] for k in preds["key"]}
    undefined = []
    for site, row in sites.items():
        mine = preds[[site_of[k] == site for k in preds["key"]]]
        n = sum(len(a) + len(b) for a, b in zip(mine["labels"], mine["pred_labels"]))
        if n == 0:
            undefined.append(site)
            assert row["scores"]["micro_f1"] is None and row["scores"]["subset_accuracy"] == 1.0, row
        else:
            tp = sum(len(set(a) & set(b)) for a, b in zip(mine["labels"], mine["pred_labels"]))
            assert row["scores"]["micro_f1"] == pytest.approx(2 * tp / n), row
    assert undefined == ["nopos"] and got["undefined_micro_f1"] == ["nopos"], (undefined, got)
    s = got["summary"]
    assert s is None or "nopos" not in json.dumps(s), s
    out = _cli(str(runs["tags"]), str(ds), "--by", "site")
    assert "undefined (0 / 0" in out and "worst group: nopos" not in out, out



def test_a_float_field_is_scored_per_bin(ds: Path, runs: dict[str, Path], tmp_path: Path) -> None:
    """#4: one accumulator per raw value (one per sample on a float field); now per final group: each bin's MAE
    equals the one from predictions.parquet."""
    from mmdata.train.score_run import evaluate_run

    got = evaluate_run(runs["score"], ds, by="age", bins=2, out=tmp_path / "ev")["by_value"]
    preds = pd.read_parquet(tmp_path / "ev" / "predictions.parquet")
    age = {k: int(k.split("_")[1][1:]) + 0.5 + (100 if k.startswith("b") else 0) for k in preds["key"]}
    rows = [r for r in got["values"] if r.get("bin")]
    assert len(rows) == 2 and sum(r["scored"] for r in rows) == len(preds), got["values"]
    for r in rows:
        lo, hi = r["bin"]
        mine = preds[[lo <= age[k] < hi or (r is rows[-1] and age[k] == hi) for k in preds["key"]]]
        assert len(mine) == r["scored"], (r, len(mine))
        assert r["scores"]["mae"] == pytest.approx(float((mine["target"] - mine["pred"]).abs().mean())), r


def test_a_class_run_writes_the_metric_keys(ds: Path, runs: dict[str, Path]) -> None:
    """#5: class runs lacked kind / metric / higher_is_better: one reader now takes both kinds."""
    got = json.loads(_cli(str(runs["cls"]), str(ds), "--by", "site", "--json"))["by_value"]
    assert (got["kind"], got["metric"], got["higher_is_better"]) == ("classes", "accuracy", True), got
    assert got["summary"]["metric"] == "accuracy", got["summary"]


def _printed(capsys: pytest.CaptureFixture[str], got: dict[str, Any]) -> str:
    import cli.evaluate as ev

    ev._by_value_table(got, "test")
    return capsys.readouterr().out


def _row(value: Any, acc: float, scored: int = 40, **kw: Any) -> dict[str, Any]:
    return {"value": value, "samples": scored, "scored": scored, "accuracy": acc, "ci": [0.1, 0.9],
            "balanced_accuracy": acc, "small": scored < 30, "missing": value is None, **kw}


def test_every_group_tied_names_no_worst_and_best(capsys: pytest.CaptureFixture[str]) -> None:
    """#6: all groups at 0.5: worst and best named the same group, gap 0."""
    from mmdata.train.score_run import _worst_best

    rows = [_row("a", 0.5), _row("b", 0.5), _row("c", 0.5)]
    s = _worst_best(rows)
    assert s is not None and s["tied"] and "worst" not in s and s["score"] == 0.5 and s["groups"] == 3, s
    assert _worst_best([_row("a", 0.4), _row("b", 0.5)])["tied"] is False
    out = _printed(capsys, {"values": rows, "fields": ["g"], "field": "g", "from": "metadata", "summary": s})
    assert "no gap: every group scores 0.500 (3 groups" in out and "worst group" not in out, out


def test_an_object_group_prints_as_inspect_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    """#7: evaluate printed an object group as Python's {'a': 1}, inspect --by as JSON {"a": 1}."""
    from mmdata.shards.inspect import group_text
    from mmdata.train.score_run import _worst_best

    rows = [_row({"a": 1}, 0.0, type="object"), _row("plain", 1.0)]
    out = _printed(capsys, {"values": rows, "fields": ["g"], "field": "g", "from": "metadata",
                            "summary": _worst_best(rows)})
    assert group_text(rows[0]) == '{"a": 1}' and ' {"a": 1} ' in out and "{'a': 1}" not in out, out
    assert "worst group: {\"a\": 1} (0.000" in out, out


def test_the_threshold_free_line_prints_a_split_name_as_text() -> None:
    """#3: ranking_line put the split raw into a line printed with markup: '[red]T[red]' turned red, tags eaten."""
    from rich.console import Console

    from cli.train import ranking_line

    line = ranking_line({"[red]T[red]": {"auroc": 0.5, "auprc": 0.25}})
    c = Console(record=True, width=200, force_terminal=True, color_system="standard")
    c.print(line, highlight=False)
    assert "[red]T[red] AUROC 0.500" in c.export_text() and "\x1b[31m" not in c.export_text(styles=True), line
