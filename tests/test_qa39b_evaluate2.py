"""QA39 review "evaluate", second fixer: one reading of number fields shared by ``evaluate --by``, ``inspect --by``
and ``diff --groups`` (a stray word does not turn an age column into text groups; "56" and 56.0 are one value), a
field one diffed version lacks counted as missing, unread samples not shown as group changes, the evaluate table's
cap with several fields, ``inspect --by label`` in class names, worst / best without the missing group."""
from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from cli.main import app
from tests.test_qa39_evaluate_by import _by
from tests.test_qa39_inspect import _meta_ds


def test_one_word_in_a_number_field_keeps_it_numbers_and_names_the_word() -> None:
    """QA39 review evaluate #1: 'unknown' made the field text, sorted as text, 56 apart from 56.0, nothing said."""
    got = _by(["56", "56.0", "unknown", "7", "100", "9"], [0] * 6, [0] * 6).result()
    assert [r["value"] for r in got["values"]] == [7, 9, 56, 100, None], got
    assert got["numeric"]["f"]["markers"] == {"unknown": 1}, got
    many = [str(i) for i in range(30)] + ["missing", "Unknown"]  # over 20 whole numbers: binned
    b = _by(many, [0] * 32, [0] * 32).result()
    assert len(b["values"]) == 5 and b["values"][-1]["value"] is None and b["values"][-1]["samples"] == 2, b
    # a word that is no NA marker: its own group, named, the rest still numbers
    w = _by([str(i) for i in range(30)] + ["ninety"], [0] * 31, [0] * 31).result()
    assert w["numeric"]["f"]["words"] == {"ninety": 1}, w
    assert [r["value"] for r in w["values"]][-1] == "ninety" and len(w["values"]) == 5, w
    # mostly words: text, and a field that is mostly numbers below the share names its words
    t = _by(["1", "2", "3", "4", "x", "y"], [0] * 6, [0] * 6).result()
    assert "numeric" not in t and t["not_numeric"] == {"f": {"x": 1, "y": 1}}, t
    assert "not_numeric" not in _by(["a", "b", "1"], [0] * 3, [0] * 3).result()


def test_worst_best_leaves_the_missing_group_out() -> None:
    """QA39 review evaluate #6/#7: the summary named the missing group as the worst."""
    got = _by(["1", "1", "2", "2", None, None], [0, 1, 0, 1, 0, 1], [0, 1, 0, 0, 1, 0]).result()
    s = got["summary"]
    assert s["worst"]["value"] == 2 and s["best"]["value"] == 1 and "(" not in s["over"], s


def test_inspect_and_diff_read_numbers_as_evaluate_does(tmp_path) -> None:
    """QA39 review evaluate #4: inspect --by age gave a row per text value; diff showed '56' vs 56.0 as a change."""
    from mmdata.shards.diff import diff
    from mmdata.shards.inspect import metadata_groups

    ages = [str(20 + i) for i in range(24)] + ["n/a", "unknown"]  # 24 whole numbers: binned (over 20)
    a = _meta_ds(tmp_path, "a", ages, ["x", "y"] * 13)
    g = metadata_groups(a, "site")
    assert g["numeric"] and len(g["edges"]) == 5 and g["missing"] == 2, g
    assert [v["value"] for v in g["values"]][-1] is None and all("bin" in v for v in g["values"][:-1]), g
    assert len(metadata_groups(a, "site", bins=0)["values"]) == 25
    b = _meta_ds(tmp_path, "b", [a + ".0" for a in ages[:24]] + ["n/a", "unknown"], ["x", "y"] * 13)
    d = diff(a, b, groups="site")["groups"]
    assert all(r["change"] == 0 for r in d["values"]), d
    assert metadata_groups(a, "json.site")["numeric"]


def test_diff_groups_field_in_one_version_only_and_unread_side(tmp_path) -> None:
    """QA39 review evaluate #2 (the whole diff aborted) and #3 (an index-only copy: every group 'removed')."""
    import warnings

    import mmdata
    from mmdata.shards.diff import diff

    a = _meta_ds(tmp_path, "a", ["A"] * 6 + ["C"] * 4, ["x", "y"] * 5)
    raw = tmp_path / "raw_plain"
    raw.mkdir()
    (raw / "m.csv").write_text("key,text,label\n" + "".join(f"k{i:03d},t {i},{'xy'[i % 2]}\n" for i in range(10)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw / "m.csv", tmp_path / "plain", progress=False)
    rep = diff(a, tmp_path / "plain", groups="site")
    rows = {r["value"]: (r["a"], r["b"]) for r in rep["groups"]["values"]}
    assert rows == {"A": (6, 0), "C": (4, 0), None: (0, 10)}, rows
    assert any("has no index column nor metadata key 'site'" in w for w in rep["warnings"]), rep["warnings"]
    x = tmp_path / "x"
    x.mkdir()
    for f in ("dataset.json", "index.parquet", "shards.parquet"):
        if (a / f).exists():
            shutil.copy(a / f, x / f)
    rep = diff(a, x, groups="site")
    assert all(r["change"] is None for r in rep["groups"]["values"]), rep["groups"]
    assert any("could not be read" in w and "copy the dataset" in w for w in rep["warnings"]), rep["warnings"]
    r = CliRunner().invoke(app, ["diff", str(a), str(x), "--groups", "site"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "-6" not in r.output and "could not be read" in r.output, r.output


def test_inspect_by_label_shows_names_without_a_shortcut_note(tmp_path) -> None:
    """QA39 review evaluate #6."""
    from mmdata.shards.inspect import metadata_groups

    a = _meta_ds(tmp_path, "a", ["A"] * 12, ["calm"] * 8 + ["angry"] * 4)
    g = metadata_groups(a, "label")
    assert {v["value"] for v in g["values"]} == {"calm", "angry"} and not g["notes"], g
    r = CliRunner().invoke(app, ["inspect", str(a), "--by", "site", "--bins", "2"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "--bins not used" in r.output, r.output


def test_evaluate_table_cap_with_several_fields(monkeypatch, capsys) -> None:
    """QA39 review evaluate #5: the cap's slice went negative: 48 of 49 rows shown."""
    import cli.evaluate as ev

    monkeypatch.setattr(ev, "BY_ROWS", 5)
    rows = [{"value": [s, None if i % 2 else i], "samples": 1, "scored": 1, "accuracy": 1.0, "ci": [0.2, 1.0],
             "balanced_accuracy": 1.0, "small": True, "missing": bool(i % 2)} for i in range(40) for s in ("a",)]
    rows.append({"value": [None, None], "samples": 1, "scored": 1, "accuracy": 1.0, "ci": [0.2, 1.0],
                 "balanced_accuracy": 1.0, "small": True, "missing": True})
    ev._by_value_table({"values": rows, "fields": ["f", "g"], "field": "f,g", "from": "metadata"}, "test")
    out = capsys.readouterr().out
    assert "(5 of 41 groups shown" in out, out


def test_ids_and_bools_are_not_numbers_to_bin() -> None:
    """QA39 review 2 last #2 / b #3: 12 site ids stay one group each (whole numbers are binned above 20 values);
    '007' and '7' are two ids, not one number; a bool among numbers is a word, not a reason to read them as text."""
    ids = [str(i) for i in range(1, 13)] * 2
    got = _by(ids, [0] * 24, [0] * 24).result()
    assert len(got["values"]) == 12 and "bin" not in got["values"][0], got
    z = _by(["007"] + ["7"] * 20 + ["8"] * 20, [0] * 41, [0] * 41).result()
    assert {r["value"] for r in z["values"]} == {"007", 7, 8} and z["numeric"]["f"]["words"] == {"007": 1}, z
    many = [float(i) for i in range(30)] + [True]
    b = _by(many, [0] * 31, [0] * 31).result()
    assert b["numeric"]["f"]["words"] == {"True": 1} and len(b["values"]) == 5, b
