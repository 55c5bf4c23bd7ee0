"""A damaged ``runs.parquet`` on resume (fuzz QA): a dropped column crashed ``mmdata ablate`` with a
traceback ending ``KeyError: 'arm'`` (exit 1); a duplicated row was taken silently — the report said 13
finished runs of 12 and the design's share of the fixed runs read 1.083. Now the table's columns and cells
are checked naming the file, and a run's extra rows are left out with a warning (the last row of each run,
the one a resumed run replaces, is analysed), in ``mmdata ablate-folds`` too."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmdata.ablate import run
from mmdata.ablate.folds import read_fold
from mmdata.errors import MMDataError

SYN = "mmdata.ablate.testing:synthetic_train"


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    from mmdata.datasets.avdigits import build

    t = tmp_path_factory.mktemp("runs")
    data = build(t / "av", limit=4, progress=False)
    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": SYN}, "seeds": 4, "controls": {"identity": False},
           "design": {"mode": "explicit", "baseline": None, "arms": {"flip": {"image": [{"op": "hflip", "p": 0.5}]}}}}
    run(cfg, t / "ab", workers=1, progress=False, plots=False, on_warning=lambda msg: None)
    return cfg, t / "ab"


def _copy(src: Path, dst: Path, edit) -> Path:
    import shutil

    shutil.copytree(src, dst)
    t = pq.read_table(dst / "runs.parquet")
    pq.write_table(edit(t), dst / "runs.parquet")
    return dst


@pytest.mark.parametrize("edit, says", [
    (lambda t: t.drop(["arm"]), r"runs.parquet: no column 'arm' \(it has \["),
    (lambda t: t.set_column(t.schema.get_field_index("seed"), "seed", pa.array([-1] + t["seed"].to_pylist()[1:])),
     r"runs.parquet: row 0 has arm '\w+', seed -1"),
    (lambda t: t.set_column(t.schema.get_field_index("arm"), "arm", pa.array([None] + t["arm"].to_pylist()[1:])),
     r"runs.parquet: row 0 has arm None"),
])
def test_a_damaged_runs_table_is_an_error_naming_it(done: tuple[dict, Path], tmp_path: Path, edit, says: str) -> None:
    cfg, ab = done
    out = _copy(ab, tmp_path / "ab", edit)
    with pytest.raises(MMDataError, match=says):
        run(cfg, out, workers=1, progress=False, plots=False, on_warning=lambda msg: None)
    with pytest.raises(MMDataError, match=says):  # mmdata ablate-folds reads a fold's table the same way
        read_fold(out)


def test_a_runs_duplicated_row_counts_once_and_is_warned(done: tuple[dict, Path], tmp_path: Path) -> None:
    cfg, ab = done
    out = _copy(ab, tmp_path / "ab", lambda t: pa.concat_tables([t, t.slice(0, 1)]))
    said: list[str] = []
    s = run(cfg, out, workers=1, progress=False, plots=False, on_warning=said.append)
    assert s["runs"]["ok"] == 8 and s["runs"]["fraction_of_fixed"] == 1.0, s["runs"]
    assert any("holds 1 duplicate row of a run (first: arm" in w for w in said), said
    assert len(pq.read_table(out / "runs.parquet")) == 8  # the saved table has one row per run again
    assert len(read_fold(_copy(ab, tmp_path / "again", lambda t: pa.concat_tables([t, t.slice(0, 1)]))).rows) == 8
    first = json.loads((ab / "summary.json").read_text())
    assert [a["primary"]["mean_diff"] for a in s["arms"]] == [a["primary"]["mean_diff"] for a in first["arms"]]


def test_failure_columns_are_there_when_every_run_succeeded(tmp_path: Path) -> None:
    """A reader's ``df.error`` / ``df["traceback"]`` / ``df.warnings`` work on a table of successes (QA: the
    columns existed only when some run had failed)."""
    from mmdata.ablate.runner import save_runs

    save_runs(tmp_path, [{"arm": "baseline", "seed": 0, "status": "ok", "test_accuracy": 0.5}])
    t = pq.read_table(tmp_path / "runs.parquet")
    assert {"error", "traceback", "warnings"} <= set(t.column_names)
    assert t.column("error").to_pylist() == [None]
