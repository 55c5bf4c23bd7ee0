"""QA round 40, fixer "inspect": group values of inspect --by / diff --groups (lists, inf, many values)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from typer.testing import CliRunner


def _manifest_ds(tmp_path: Path, name: str, values: list, split: dict[str, float] | None = None) -> Path:
    """A text dataset from a JSONL manifest whose metadata key ``g`` holds ``values`` (one per sample)."""
    import mmdata

    raw = tmp_path / f"raw_{name}"
    raw.mkdir()
    with open(raw / "m.jsonl", "w") as f:
        for i, v in enumerate(values):
            f.write(json.dumps({"key": f"k{i:04d}", "text": f"sample {i}", "label": ["cat", "dog"][i % 2], "g": v})
                    + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw / "m.jsonl", tmp_path / name, meta=["g"], split=split or {"train": 1.0}, progress=False)
    return tmp_path / name


def _folder_ds(tmp_path: Path, sidecar: str) -> Path:
    """An image folder whose ``<stem>.json`` sidecars hold ``g2`` = Infinity / -Infinity (odd / even stems)."""
    from PIL import Image

    import mmdata

    rng = np.random.default_rng(0)
    raw = tmp_path / "raw_inf"
    for c in ("a", "b"):
        (raw / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(raw / c / f"s{i}.png")
            (raw / c / f"s{i}.json").write_text(sidecar % ("Infinity" if i % 2 else "-Infinity"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, tmp_path / "ds_inf", progress=False)
    return tmp_path / "ds_inf"


def test_a_list_value_is_a_group_apart_from_the_string_of_its_text(tmp_path) -> None:
    """QA40 hostile #3: [1, 2] and "[1, 2]" (and {"a": 1} / '{"a": 1}') were one group, the list written as text."""
    from mmdata.shards.inspect import metadata_groups

    ds = _manifest_ds(tmp_path, "ds", [[1, 2], "[1, 2]", {"a": 1}, '{"a": 1}'] * 3)
    g = metadata_groups(ds, "g")
    rows = {(r.get("type"), json.dumps(r["value"])): r["samples"] for r in g["values"]}
    assert rows == {("list", "[1, 2]"): 3, (None, '"[1, 2]"'): 3, ("object", '{"a": 1}'): 3,
                    (None, '"{\\"a\\": 1}"'): 3}, g["values"]
    json.dumps(g, allow_nan=False)  # valid JSON as --json writes it


def test_inf_values_are_two_labelled_groups_not_two_nulls(tmp_path) -> None:
    """QA40 hostile #4: a sidecar's Infinity / -Infinity were two groups both "value": null (the missing group's)."""
    from mmdata.shards.inspect import metadata_groups

    ds = _folder_ds(tmp_path, '{"g2": %s}')
    g = metadata_groups(ds, "g2")
    assert g["missing"] == 0
    assert sorted((r["value"], r.get("type"), r["samples"]) for r in g["values"]) == [
        ("-inf", "number", 6), ("inf", "number", 6)], g["values"]
    json.dumps(g, allow_nan=False)


def test_diff_groups_keeps_lists_and_inf_apart_in_json(tmp_path) -> None:
    """QA40 hostile #3, #4 through diff --groups: a list and its text, inf and -inf, each a row of its own."""
    from mmdata.shards.diff import diff

    a = _manifest_ds(tmp_path, "a", [[1, 2]] * 4 + ["x"] * 4)
    b = _manifest_ds(tmp_path, "b", [[1, 2]] * 4 + ["[1, 2]"] * 4)
    rows = diff(a, b, groups="g")["groups"]["values"]
    got = sorted((json.dumps(r["value"]), r.get("type"), r["a"], r["b"]) for r in rows)
    assert got == [('"[1, 2]"', None, 0, 4), ('"x"', None, 4, 0), ("[1, 2]", "list", 4, 4)], rows
    d = _folder_ds(tmp_path, '{"g2": %s}')
    rows = diff(d, d, groups="g2")["groups"]["values"]
    assert sorted(r["value"] for r in rows) == ["-inf", "inf"] and all(r["type"] == "number" for r in rows), rows


def test_inspect_by_table_shows_a_list_unquoted_and_its_text_quoted(tmp_path) -> None:
    from mmdata.cli.main import app

    ds = _manifest_ds(tmp_path, "ds", [[1, 2], "[1, 2]"] * 3)
    res = CliRunner().invoke(app, ["inspect", str(ds), "--by", "g"])
    assert res.exit_code == 0, res.output
    assert "│ [1, 2] " in res.output and "│ '[1, 2]' " in res.output, res.output
    res = CliRunner().invoke(app, ["inspect", str(ds), "--by", "g", "--json"])
    values = json.loads(res.stdout)["groups"]["values"]
    assert sorted(json.dumps(v["value"]) for v in values) == ['"[1, 2]"', "[1, 2]"], values


def test_many_values_lacking_a_split_are_one_note_with_a_count_and_examples(tmp_path) -> None:
    """QA40 hostile #5: one note per value of an id-like field (20,000 lines on stderr, 20,000 in --json)."""
    from mmdata.shards.inspect import EXAMPLES, NOTES_MAX, metadata_groups

    n = NOTES_MAX * 4
    ds = _manifest_ds(tmp_path, "ds", [f"v{i}" for i in range(n)], split={"train": 0.5, "test": 0.5})
    g = metadata_groups(ds, "g")
    assert len(g["values"]) == n
    lacking = [n for n in g["notes"] if "no samples in" in n]
    assert len(lacking) == 1, g["notes"]
    assert lacking[0].startswith(f"{n} values of g have no samples in some split (e.g. "), lacking[0]
    assert lacking[0].count("elsewhere)") == EXAMPLES and "--json" in lacking[0], lacking[0]


def test_a_few_values_lacking_a_split_keep_a_note_each(tmp_path) -> None:
    from mmdata.shards.inspect import metadata_groups

    ds = _manifest_ds(tmp_path, "ds", ["a", "b", "c", "c"] * 6 + ["lonely"], split={"train": 0.5, "test": 0.5})
    g = metadata_groups(ds, "g")
    assert any(n.startswith("g 'lonely': no samples in") and n.endswith("its group is not scored there")
               for n in g["notes"]), g["notes"]


def _views_ds(tmp_path: Path, grey_every: int) -> Path:
    """A manifest of RGB images with a ``back`` view, grayscale in every ``grey_every``-th sample (0: none)."""
    import csv

    from PIL import Image

    import mmdata

    rng = np.random.default_rng(0)
    raw = tmp_path / "raw_views"
    (raw / "img").mkdir(parents=True)
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "image", "back", "label"])
        for i in range(12):
            px = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(px).save(raw / "img" / f"p{i:02d}_front.png")
            back = Image.fromarray(px[:, ::-1].copy())
            (back.convert("L") if grey_every and i % grey_every == 0 else back).save(raw / "img" / f"p{i:02d}_back.png")
            w.writerow([f"p{i:02d}", f"img/p{i:02d}_front.png", f"img/p{i:02d}_back.png", ["a", "b"][i % 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw / "m.csv", tmp_path / "ds_views", columns={"back": "back"}, progress=False)
    return tmp_path / "ds_views"


def test_inspect_warns_of_a_view_in_another_colour_mode_than_its_image(tmp_path) -> None:
    """QA40 multiview #2: inspect warned of views of another size, not of another mode (grey beside RGB), which the
    loader then refuses per sample as a targets: image (37% of the training samples skipped, nothing said)."""
    from mmdata.shards.inspect import inspect

    rep = inspect(_views_ds(tmp_path, grey_every=4))
    said = [w["message"] for w in rep["warnings"] if w["kind"] == "target channels"]
    assert len(said) == 1 and said[0].startswith("back.png: 3 of 12 samples have a member in another colour mode"), said
    assert "p00: L (image RGB)" in said[0] and "convert those views" in said[0] and "out of targets:" in said[0]
    assert rep["named_image_channels"]["back.png"]["other_channels"] == 3


def test_inspect_says_nothing_of_views_in_their_images_mode(tmp_path) -> None:
    from mmdata.shards.inspect import inspect

    rep = inspect(_views_ds(tmp_path, grey_every=0))
    assert not [w for w in rep["warnings"] if w["kind"] == "target channels"], rep["warnings"]
    assert rep["named_image_channels"]["back.png"] == {"checked": 12, "other_channels": 0, "examples": [],
                                                       "one_channel": False, "to": {}}


def test_diff_groups_keeps_a_list_holding_inf_apart_from_a_list_of_its_string(tmp_path) -> None:
    """QA40 review last #1: [Infinity] and ["Infinity"] were one diff row (their --json value alike) whose count
    was overwritten, not added: 2 of 4 samples were counted. Each is a row of its own, every sample counted."""
    from PIL import Image

    import mmdata
    from mmdata.shards.diff import diff

    raw = tmp_path / "raw"
    sidecars = ['{"g": [Infinity]}', '{"g": ["Infinity"]}', '{"g": ["Infinity"]}', '{"g": 1}']
    for c in ("a", "b"):
        (raw / c).mkdir(parents=True)
        for i, side in enumerate(sidecars):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(raw / c / f"s{i}.png")
            (raw / c / f"s{i}.json").write_text(side)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, tmp_path / "ds", progress=False)
    rows = diff(tmp_path / "ds", tmp_path / "ds", groups="g")["groups"]["values"]
    got = sorted((json.dumps(r["value"]), str(r.get("type")), str(r.get("text")), r["a"], r["b"]) for r in rows)
    assert got == [("1", "None", "None", 2, 2), ('["Infinity"]', "list", "None", 4, 4),
                   ('["Infinity"]', "list", "[Infinity]", 2, 2)], rows
