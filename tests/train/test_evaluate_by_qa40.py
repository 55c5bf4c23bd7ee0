"""QA40: ``evaluate --by`` prints the dataset's field names and values as text, never as rich markup (hostile #1),
keeps values apart that print alike (the bool True and the text 'True', -0.0 and '-0.0': hostile #2), cuts each
value of the worst / best line and never its own sentence (hostile #7), and breaks a multi-label or regression run's
own scores down by group (medical #2: it was refused, sending the user to a file without metadata)."""
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

ONE = {"epochs": 1, "batch_size": 8, "threads": 1, "eval_robustness": False}


def _row(value: Any, acc: float, scored: int = 40, **kw: Any) -> dict[str, Any]:
    return {"value": value, "samples": scored, "scored": scored, "accuracy": acc, "ci": [0.1, 0.9],
            "balanced_accuracy": acc, "small": scored < 30, "missing": value is None, **kw}


def _printed(capsys: pytest.CaptureFixture[str], got: dict[str, Any]) -> str:
    import cli.evaluate as ev

    ev._by_value_table(got, "test")
    return capsys.readouterr().out


@pytest.mark.parametrize("field", ["[/]", "[link=http://evil.example]L[/link]", "[red]c[/red]"])
def test_a_field_name_is_printed_as_it_is_never_as_markup(capsys: pytest.CaptureFixture[str], field: str) -> None:
    """Hostile #1: '[/]' raised MarkupError after scoring; '[link=...]' made an OSC 8 hyperlink."""
    from mmdata.train.score_run import _worst_best

    rows = [_row("a", 0.5), _row("b", 1.0)]
    got = {"values": rows, "fields": [field], "field": field, "from": "metadata", "summary": _worst_best(rows),
           "numeric": {field: {"markers": {"n/a": 1}}}, "bins_unused": [field]}
    out = _printed(capsys, got)
    assert f"accuracy by {field} (metadata)" in out, out
    assert out.count(field) >= 4 and "\x1b]8" not in out, out  # title, header, numbers line, --bins line


def test_values_that_print_alike_are_told_apart(capsys: pytest.CaptureFixture[str]) -> None:
    """Hostile #2: True (bool) and 'True' (text), -0.0 and '-0.0' were two rows reading the same."""
    from mmdata.train.score_run import _worst_best

    rows = [_row(-0.0, 0.0), _row("-0.0", 1.0), _row(True, 1.0), _row("True", 0.0), _row("[1, 2]", 0.5),
            _row("plain", 0.5), _row("[20, 30)", 0.5, bin=[20, 30])]
    out = _printed(capsys, {"values": rows, "fields": ["g"], "field": "g", "from": "metadata",
                            "summary": _worst_best(rows)})
    lines = out.splitlines()
    assert any(" -0.0 " in ln for ln in lines) and any(" '-0.0' " in ln for ln in lines), out
    assert any(" True " in ln for ln in lines) and any(" 'True' " in ln for ln in lines), out
    assert "'[1, 2]'" in out and "'plain'" not in out and " [20, 30) " in out and "'[20, 30)'" not in out, out
    assert "worst group: -0.0 (0.000" in out and "best: '-0.0' (1.000" in out, out


def test_an_infinite_number_is_said_as_one_and_its_text_quoted(capsys: pytest.CaptureFixture[str]) -> None:
    """--json gives inf as "inf" with type number (the shared group_value): the table says inf, the text 'inf'
    quoted, the worst / best line alike; a list is its JSON text, its string quoted (QA40 hostile #3, #4)."""
    from mmdata.train.score_run import _worst_best

    rows = [_row("inf", 0.0, type="number"), _row("inf", 1.0), _row([1, 2], 0.5, type="list"),
            _row("[1, 2]", 0.5)]
    out = _printed(capsys, {"values": rows, "fields": ["g"], "field": "g", "from": "metadata",
                            "summary": _worst_best(rows)})
    lines = out.splitlines()
    assert any(" inf " in ln for ln in lines) and any(" 'inf' " in ln for ln in lines), out
    assert any(" [1, 2] " in ln for ln in lines) and any(" '[1, 2]' " in ln for ln in lines), out
    assert "worst group: inf (0.000" in out and "best: 'inf' (1.000" in out, out


def test_the_summary_cuts_each_value_not_its_own_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    """Hostile #7: a long group value cut the line at 200 characters, mid-explanation."""
    from mmdata.train.score_run import _worst_best

    rows = [_row("w" * 300, 0.0, 9), _row("b" * 300, 1.0, 9)]
    out = _printed(capsys, {"values": rows, "fields": ["g"], "field": "g", "from": "metadata",
                            "summary": _worst_best(rows)})
    line = " ".join(out[out.index("worst group"):].split())
    assert "(300 characters) (0.000, 9 scored)" in line and "(300 characters) (1.000, 9 scored)" in line, line
    assert line.endswith("scored samples: noisy)"), line


@pytest.fixture(scope="module")
def target_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 one-image samples with a number ``score``, a label list ``tags`` and a ``site`` of two values."""
    from mmdata.testing import image_bytes

    root = tmp_path_factory.mktemp("qa40_by_target")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(48):
        (root / f"{i}.png").write_bytes(image_bytes(i))
        split = "train" if i < 24 else ("val" if i < 32 else "test")
        rows.append({"key": f"s{i:02d}", "image": f"{i}.png", "label": "a", "split": split,
                     "score": round(float(rng.uniform(0, 10)), 3), "site": "[/]" if i % 3 else "north",
                     "tags": ["x"] + (["y"] if i % 2 else [])})
    pd.DataFrame(rows).to_json(root / "m.jsonl", orient="records", lines=True)
    mmdata.shard(root / "m.jsonl", root / "ds", meta=["score", "tags", "site"], progress=False)
    return root / "ds"


@pytest.mark.parametrize("target, metric", [("score", "mae"), ("tags", "micro_f1")])
def test_a_target_run_is_scored_per_group(target_ds: Path, tmp_path: Path, target: str, metric: str) -> None:
    """Medical #2: --by was refused for every --target run; per group now the run's own scores."""
    from mmdata.train import train
    from mmdata.train.score_run import evaluate_run

    train(target_ds, target=target, seed=0, out=tmp_path / "run", **ONE)
    whole = evaluate_run(tmp_path / "run", target_ds, out=tmp_path / "ev")
    got = evaluate_run(tmp_path / "run", target_ds, by="site")
    by = got["by_value"]
    assert by["kind"] in ("regression", "multilabel") and by["metric"] == metric, by
    rows = {r["value"]: r for r in by["values"]}
    assert set(rows) == {"[/]", "north"} and sum(r["scored"] for r in rows.values()) == 16, rows
    assert got["scores"] == whole["scores"], (got["scores"], whole["scores"])
    preds = pd.read_parquet(tmp_path / "ev" / "predictions.parquet")
    site = {k: ("north" if int(k[1:]) % 3 == 0 else "[/]") for k in preds["key"]}
    for value, row in rows.items():
        mine = preds[[site[k] == value for k in preds["key"]]]
        if metric == "mae":  # the group's MAE from predictions.parquet's target and pred columns
            assert row["scores"]["mae"] == pytest.approx(float((mine["target"] - mine["pred"]).abs().mean())), row
        else:  # micro F1 over the group's label sets
            tp = sum(len(set(a) & set(b)) for a, b in zip(mine["labels"], mine["pred_labels"]))
            n = sum(len(a) + len(b) for a, b in zip(mine["labels"], mine["pred_labels"]))
            assert row["scores"]["micro_f1"] == pytest.approx(2 * tp / n if n else 0.0), row
    s = by["summary"]
    assert s["metric"] == metric and {s["worst"]["value"], s["best"]["value"]} == {"[/]", "north"}, s
    higher = metric != "mae"
    assert (s["best"][metric] >= s["worst"][metric]) == higher or s["gap"] == 0, s
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run"), str(target_ds), "--by", "site", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["by_value"]["metric"] == metric, r.output
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "run"), str(target_ds), "--by", "site"],
                           env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert ("MAE / RMSE by site" if metric == "mae" else "micro F1 / macro F1 / mAP by site") in r.output, r.output
    assert "[/]" in r.output and "worst group: " in r.output, r.output
