"""QA39 fairness #8 / #9 through the CLI: ``mmdata inspect DATA --by FIELD`` prints the samples per value, per
split and per class, missing values as ``(missing)``, with the shortcut note; ``mmdata diff A B --groups FIELD``
prints the count per value in A and B (``groups`` in ``--json``)."""
import json

from typer.testing import CliRunner

from cli.main import app
from tests.test_qa39_inspect import _meta_ds


def test_inspect_by_and_diff_groups_on_the_cli(tmp_path) -> None:
    a = _meta_ds(tmp_path, "a", ["A"] * 6 + ["C"] * 3 + [None], ["x", "y"] * 5)
    b = _meta_ds(tmp_path, "b", ["A"] * 3 + ["B"] * 3 + ["C"] * 2, ["x", "y"] * 4)
    runner = CliRunner()
    r = runner.invoke(app, ["inspect", str(a), "--by", "site"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "(missing)" in r.output and "'A'" in r.output and "'C'" in r.output, r.output
    r = runner.invoke(app, ["inspect", str(a), "--by", "site", "--json"])
    assert r.exit_code == 0, r.output
    rows = {v["value"]: v["samples"] for v in json.loads(r.stdout)["groups"]["values"]}
    assert rows == {"A": 6, "C": 3, None: 1}, rows
    r = runner.invoke(app, ["diff", str(a), str(b), "--groups", "site", "--json"])
    assert r.exit_code == 0, r.output
    got = {v["value"]: (v["a"], v["b"]) for v in json.loads(r.stdout)["groups"]["values"]}
    assert got["B"] == (0, 3) and got["A"] == (6, 3), got
    r = runner.invoke(app, ["diff", str(a), str(b), "--groups", "site"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "+3" in r.output, r.output
