"""``mmdata train --target KEY`` prints a results table that reads well with many labels: the most frequent
labels (:data:`mmdata.cli.train.LABEL_ROWS`) and a line saying how many more there are and where every
label's scores are; the tables fit 80 columns. ``--json`` and metrics.json keep every label.

Before (known limit of the 2026-12-04 session): a target with 346 labels printed 346 rows, and the
multi-label header wrapped at 80 columns."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

import mmdata
from mmdata.cli import train as cli_train
from mmdata.testing import make_messy_folder, write_manifest

LABELS = 60
FAST = ["--epochs", "1", "--batch-size", "8", "--threads", "1", "--no-robustness"]


def _genres(i: int) -> list[str]:
    """Three of sixty labels for row ``i``; ``genre00``..``genre04`` in every fourth row besides (the most frequent)."""
    names = [f"genre{(3 * i + j) % LABELS:02d}" for j in range(3)]
    return names + ([f"genre{i % 5:02d}"] if i % 4 == 0 and f"genre{i % 5:02d}" not in names else [])


@pytest.fixture(scope="module")
def many_labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A messy folder's manifest whose ``genres`` column holds label sets over 60 labels (JSON lists)."""
    root = tmp_path_factory.mktemp("many")
    m = make_messy_folder(root / "raw", n=80, sizes=((24, 32), (40, 30)), seconds=(0.3, 0.6))
    write_manifest(m, "manifest.csv", targets=True)
    path = m.root / "manifest.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df["genres"] = [json.dumps(_genres(i)) for i in range(len(df))]
    df.to_csv(path, index=False)
    mmdata.shard(path, root / "ds", meta=["genres"], split={"train": 0.6, "val": 0.2, "test": 0.2}, progress=False)
    return root / "ds"


@pytest.fixture()
def at_80_columns(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The command's stdout as a terminal of 80 columns (``COLUMNS=80``): what it prints, to read back."""
    buf = io.StringIO()
    monkeypatch.setattr(cli_train, "console", Console(file=buf, width=80, force_terminal=False, color_system=None))
    return buf


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from mmdata.cli.main import main

    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_many_labels_table_is_capped_and_fits_80_columns(many_labels: Path, tmp_path: Path, at_80_columns: io.StringIO,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["train", str(many_labels), "--target", "genres", "--out", str(tmp_path / "run"), *FAST],
                        capsys)
    assert code == 0, err
    text = at_80_columns.getvalue()
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80, text
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    per_label = metrics["per_class"]["test"]
    assert len(per_label) == LABELS  # metrics.json: every label
    shown = [ln.split("│")[1].strip() for ln in lines if ln.startswith("│ genre")]
    assert len(shown) == cli_train.LABEL_ROWS
    by_support = sorted(per_label, key=lambda k: (-per_label[k]["support"], k))
    assert shown == by_support[:cli_train.LABEL_ROWS]  # the most frequent, most frequent first
    more = LABELS - cli_train.LABEL_ROWS
    joined = text.replace("\n", "")  # a long path folds at 80 columns
    assert f"{more} more labels" in text and str(tmp_path / "run" / "metrics.json") in joined and "--json" in text, text
    # the results table's header: every score named on one line
    header = next(ln for ln in lines if "split" in ln)
    for name in cli_train.SCORE_COLUMNS["multilabel"].values():
        assert name in header, header


def test_json_keeps_every_label(many_labels: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["train", str(many_labels), "--target", "genres", "--json", *FAST], capsys)
    assert code == 0, err
    m = json.loads(out)
    assert len(m["per_class"]["test"]) == LABELS and len(m["target"]["labels"]) == LABELS


def test_few_labels_are_all_listed_without_a_note(at_80_columns: io.StringIO) -> None:
    m = _metrics({f"l{i}": i for i in range(4)})
    cli_train._per_label_table(m, "multilabel", out=None)
    text = at_80_columns.getvalue()
    assert all(f"l{i}" in text for i in range(4)) and "more labels" not in text


def test_the_note_without_out_points_at_json(at_80_columns: io.StringIO) -> None:
    m = _metrics({f"l{i:02d}": i for i in range(30)})
    cli_train._per_label_table(m, "multilabel", out=None)
    text = " ".join(at_80_columns.getvalue().split())
    assert "10 more labels" in text and "--json" in text and "--out" in text
    cli_train._per_label_table(m, "classes", out=None)  # classes: every class, as before
    assert all(f"l{i:02d}" in at_80_columns.getvalue() for i in range(30))


def _metrics(support: dict[str, int]) -> dict[str, Any]:
    scores = {"precision": 0.5, "recall": 0.25, "f1": 1 / 3, "ap": 0.4}
    return {"per_class": {"test": {k: {**scores, "support": n} for k, n in support.items()}}}


def test_the_classes_results_table_fits_80_columns(at_80_columns: io.StringIO) -> None:
    """Every kind's score columns fit beside split / labelled / unlabelled at 80 columns."""
    from rich.table import Table

    for kind, columns in cli_train.SCORE_COLUMNS.items():
        t = cli_train._scores_table(kind, "concat on image, audio, text")
        assert isinstance(t, Table)
        t.add_row("test", *("0.123" for _ in columns), "12345 of 12500")
        at_80_columns.truncate(0)
        at_80_columns.seek(0)
        cli_train.console.print(t)
        lines = at_80_columns.getvalue().splitlines()
        header = next(ln for ln in lines if "split" in ln)
        for name in columns.values():
            assert name in header, (kind, at_80_columns.getvalue())

