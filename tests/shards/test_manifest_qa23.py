"""QA round 23 (annotation-tool exports: Label Studio, CVAT, COCO) on manifest reading: a JSON bool label is a
listed skip, not a class 'True'; percent-encoded file names are read decoded; Label Studio's ``/data/upload/...``
paths name what to write; a path column none of whose files was read is warned of; rows that name one file
with different labels are warned of; class names differing by surrounding spaces are merged with a warning;
a key cell that is a dict, list or bool is an error and ``5.0`` is the key ``5``; ``--target``'s "join several
names" advice only for string cells; "1 label"; a ``.json`` export gets the ``.jsonl`` hint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.shards.index import load_card
from mmdata.shards.sources import discover
from mmdata.testing import image_bytes
from mmdata.train.targets import Target, Values, settle

REPO = Path(__file__).parents[2]


def _jsonl(root: Path, rows: list[dict[str, Any]], files: list[str] = (), name: str = "m.jsonl") -> Path:
    """A JSONL manifest of ``rows`` in ``root``, beside a small PNG at each of ``files``."""
    for i, rel in enumerate(files):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(image_bytes(i, (16, 16)))
    path = root / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _pets(root: Path, n: int = 8) -> tuple[list[dict[str, Any]], list[str]]:
    files = [f"img/{i}.png" for i in range(n)]
    return [{"key": f"k{i}", "image": f, "label": ["cat", "dog"][i % 2]} for i, f in enumerate(files)], files


def _shard(src: Path, out: Path, **kw: Any) -> dict[str, Any]:
    return mmdata.shard(src, out, progress=False, **kw)


# -- D1: a JSON / Parquet bool in the label column -----------------------------------------------------------


def test_a_json_bool_label_is_a_listed_skip_not_a_class(tmp_path: Path) -> None:
    rows, files = _pets(tmp_path)
    rows[0]["label"], rows[1]["label"] = True, False
    rep = _shard(_jsonl(tmp_path, rows, files), tmp_path / "ds")
    card = load_card(tmp_path / "ds")
    assert card["label_names"] == ["cat", "dog"]  # was ['False', 'True', 'cat', 'dog']
    reasons = sorted(s["reason"] for s in rep["skipped"])
    assert reasons == ["m.jsonl row 1, column 'label': a bool, not a class id or name",
                       "m.jsonl row 2, column 'label': a bool, not a class id or name"]
    assert rep["samples"] == 8  # the rest of the row is kept, unlabelled


def test_a_label_column_of_bools_points_to_meta_and_target(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, files = _pets(tmp_path, 4)
    _jsonl(tmp_path, [], files)
    pq.write_table(pa.table({"image": files, "label": [True, False, True, None]}), tmp_path / "m.parquet")
    rep = _shard(tmp_path / "m.parquet", tmp_path / "ds")
    assert load_card(tmp_path / "ds")["label_names"] is None
    assert [s["reason"] for s in rep["skipped"]] == [
        f"m.parquet row {i}, column 'label': a bool, not a class id or name; for a yes/no target keep the column "
        f"as metadata (--meta, under a name other than 'label') and train on it with mmdata train --target"
        for i in (1, 2, 3)]


def test_csv_text_true_stays_a_class_name(tmp_path: Path) -> None:
    _, files = _pets(tmp_path, 4)
    _jsonl(tmp_path, [], files)
    (tmp_path / "m.csv").write_text("image,label\n" + "".join(f"{f},{['True', 'cat'][i % 2]}\n"
                                                              for i, f in enumerate(files)))
    d = discover(tmp_path / "m.csv")
    assert d.label_names == ["True", "cat"] and not d.skipped


# -- D2: percent-encoded file names ---------------------------------------------------------------------------


def test_a_percent_encoded_name_is_read_decoded_with_one_warning(tmp_path: Path) -> None:
    _jsonl(tmp_path, [], ["data/upload/3/my photo.png", "data/upload/3/café 2.png", "data/upload/3/b.png"])
    rows = [{"image": f"data/upload/3/{e}", "text": f"t{i}"}
            for i, e in enumerate(["my%20photo.png", "caf%C3%A9%202.png", "b.png", "gone%20away.png"])]
    rep = _shard(_jsonl(tmp_path, rows, name="rel.jsonl"), tmp_path / "ds")
    assert rep["samples"] == 4
    assert [(s["source"], s["reason"]) for s in rep["skipped"]] == [
        ("data/upload/3/gone%20away.png", "rel.jsonl row 4, column 'image': file not found")]
    said = [w for w in rep["warnings"] if "percent-encoded" in w]
    assert said == ["manifest rel.jsonl: 2 paths written percent-encoded (e.g. 'data/upload/3/my%20photo.png', the "
                    "file 'data/upload/3/my photo.png') were read decoded: no file has the name as written (an "
                    "annotation tool's URL spelling, as Label Studio's); write them decoded to silence this"]
    assert said == [w for w in load_card(tmp_path / "ds")["warnings"] if "percent-encoded" in w]


def test_a_name_as_written_wins_over_its_decoded_form(tmp_path: Path) -> None:
    _jsonl(tmp_path, [], ["a%20b.png", "a b.png"])
    d = discover(_jsonl(tmp_path, [{"image": "a%20b.png"}]))
    assert d.records[0].members["png"] == str(tmp_path / "a%20b.png")
    assert not [w for w in d.warnings if "percent-encoded" in w]


# -- D3: Label Studio's /data/upload/... paths, and a column none of whose files was read ---------------------


def _label_studio(root: Path) -> Path:
    _jsonl(root, [], ["data/upload/3/b.png", "data/upload/3/c.png", "data/upload/3/my photo.png"])
    rows = [{"image": f"/data/upload/3/{e}", "text": f"t{i}"} for i, e in enumerate(["b.png", "c.png", "my%20photo.png"])]
    return _jsonl(root, rows, name="ls.jsonl")


@pytest.mark.parametrize("with_root", [False, True])
def test_a_document_root_path_says_what_to_write(tmp_path: Path, with_root: bool) -> None:
    m = _label_studio(tmp_path)
    rep = _shard(m, tmp_path / "ds", **({"root": tmp_path} if with_root else {}))
    folder = "the --root folder" if with_root else "the manifest's folder"
    rel = "--root folder" if with_root else "manifest"
    assert [(s["source"], s["reason"]) for s in rep["skipped"]] == [  # the path in source, one reason for all
        (p, f"ls.jsonl row {i}, column 'image': the path escapes {folder}: no such file on this machine, but {folder} "
            f"holds it without its leading '/'; write it relative to the {rel}")
        for i, p in ((1, "/data/upload/3/b.png"), (2, "/data/upload/3/c.png"), (3, "/data/upload/3/my%20photo.png"))]
    warnings = rep["warnings"]
    assert not [w for w in warnings if "--root DIR" in w or "give --root a folder" in w]  # hints that cannot work
    assert (f"manifest ls.jsonl: 3 absolute paths (e.g. '/data/upload/3/b.png') name no file on this machine, but "
            f"each names one below {folder} once its leading '/' is dropped (an annotation tool's paths from its "
            f"document root, as Label Studio's /data/upload/...): they were left out; write them relative to the "
            f"{rel} ('data/upload/3/b.png')") in warnings
    unread = ("manifest ls.jsonl: no file of column 'image' was read: all 3 cells skipped; see skipped in "
              "dataset.json")
    assert unread in warnings and unread in load_card(tmp_path / "ds")["warnings"]


def test_a_manifest_at_a_url_gets_the_same_spellings() -> None:
    import uuid

    import fsspec

    base = f"memory://qa23-{uuid.uuid4().hex[:8]}"
    files = {"m.jsonl": b'{"image": "up/my%20photo.png"}\n{"image": "/up/b.png", "text": "t"}\n',
             "up/my photo.png": image_bytes(0), "up/b.png": image_bytes(1)}
    fs = fsspec.filesystem("memory")
    for rel, data in files.items():
        with fs.open(f"{base}/{rel}", "wb") as f:
            f.write(data)
    d = discover(f"{base}/m.jsonl")
    assert [r.source_key for r in d.records if "png" in r.members] == ["up/my photo"]  # named after the file read
    assert [s["reason"] for s in d.skipped] == [
        "m.jsonl row 2, column 'image': an absolute path or URL: a manifest at a URL names its files relative to "
        "its folder: the manifest's folder holds it without its leading '/'; write it relative to the manifest"]
    assert sum("percent-encoded" in w for w in d.warnings) == 1
    assert sum("once its leading '/' is dropped" in w for w in d.warnings) == 1


def test_a_column_with_one_file_read_is_not_called_unread(tmp_path: Path) -> None:
    rows, files = _pets(tmp_path, 4)
    rows[0]["image"] = "img/missing.png"
    rep = _shard(_jsonl(tmp_path, rows, files[1:]), tmp_path / "ds")
    assert not [w for w in rep["warnings"] if "was read" in w]


def test_the_unread_column_warning_reaches_the_console(tmp_path: Path) -> None:
    m = _label_studio(tmp_path)
    p = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "shard", str(m), str(tmp_path / "ds")],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert p.returncode == 0, p.stderr  # exit status unchanged: the texts are samples
    assert "no file of column 'image' was read: all 3 cells skipped" in " ".join((p.stdout + p.stderr).split())


# -- D4: rows naming one file with different labels -----------------------------------------------------------


def test_rows_that_label_one_file_differently_are_warned_of(tmp_path: Path) -> None:
    files = [f"img/{i}.png" for i in range(10)]
    rows = [{"key": f"task{i}_ann1", "image": f, "label": ["cat", "dog"][i % 2]} for i, f in enumerate(files)]
    rows.append({"key": "task3_ann2", "image": "img/3.png", "label": "cat"})
    rows.append({"key": "task5_ann2", "image": "img/5.png", "label": "dog"})  # agrees: no conflict
    rep = _shard(_jsonl(tmp_path, rows, files), tmp_path / "ds")
    said = ("manifest m.jsonl: 1 file is named by rows whose labels differ (e.g. 'img/3.png': rows 4 and 11 say "
            "'dog' and 'cat'): the model is trained on one input with contradictory labels; keep one row per file "
            "with an agreed label (e.g. the annotators' majority), or keep the labels as a list in a metadata column "
            "(--meta) and train on it with mmdata train --target")
    assert said in rep["warnings"] and said in load_card(tmp_path / "ds")["warnings"]


def test_rows_that_label_one_file_alike_are_not_warned_of(tmp_path: Path) -> None:
    rows, files = _pets(tmp_path, 4)
    rows.append({"key": "again", "image": "img/1.png", "label": " dog"})
    assert not [w for w in discover(_jsonl(tmp_path, rows, files)).warnings if "labels differ" in w]


# -- D5: class names that differ by surrounding spaces --------------------------------------------------------


def test_names_differing_by_spaces_are_merged_and_warned_of(tmp_path: Path) -> None:
    _, files = _pets(tmp_path, 8)
    _jsonl(tmp_path, [], files)
    (tmp_path / "m.csv").write_text("image,label\n" + "".join(f'{f},"{["dog", " dog", "cat ", "cat"][i % 4]}"\n'
                                                              for i, f in enumerate(files)))
    d = discover(tmp_path / "m.csv")
    assert d.label_names == ["cat", "dog"]
    assert [w for w in d.warnings if "spaces" in w] == [
        "manifest m.csv, column 'label': class names 'cat ' (2 rows) and 'cat' (2 rows); ' dog' (2 rows) and 'dog' "
        "(2 rows) differ only by spaces around them: each is one class, named without the spaces; write each name "
        "without spaces around it to silence this"]


def test_names_written_one_way_with_spaces_are_not_warned_of(tmp_path: Path) -> None:
    _, files = _pets(tmp_path, 4)
    _jsonl(tmp_path, [], files)
    (tmp_path / "m.csv").write_text("image,label\n" + "".join(f'{f}," dog"\n' for f in files))
    assert not [w for w in discover(tmp_path / "m.csv").warnings if "spaces" in w]


# -- D6: a key cell that is a dict, list, bool or float -------------------------------------------------------


@pytest.mark.parametrize("key,shown", [({"id": 1, "project": 3}, "{'id': 1, 'project': 3} is a dict"),
                                       ([2], "[2] is a list"), (True, "True is a bool")])
def test_a_key_that_is_no_string_or_integer_is_an_error(tmp_path: Path, key: Any, shown: str) -> None:
    rows, files = _pets(tmp_path, 3)
    rows[1]["key"] = key
    with pytest.raises(SourceError) as exc:
        discover(_jsonl(tmp_path, rows, files))
    assert str(exc.value) == (f"manifest m.jsonl row 2, column 'key': {shown}, not a key: a key is a string or "
                              f"an integer")


def test_a_renamed_key_column_is_named_as_written(tmp_path: Path) -> None:
    rows, files = _pets(tmp_path, 2)
    for r in rows:
        r["task"] = r.pop("key")
    rows[0]["task"] = [1]
    with pytest.raises(SourceError, match=r"row 1, column 'task': \[1\] is a list, not a key"):
        discover(_jsonl(tmp_path, rows, files), columns={"key": "task"})


def test_a_whole_float_key_is_its_integer_and_said_once(tmp_path: Path) -> None:
    rows, files = _pets(tmp_path, 4)
    rows[0]["key"], rows[1]["key"], rows[2]["key"] = 5.0, 6.0, 2.5
    d = discover(_jsonl(tmp_path, rows, files))
    assert sorted(r.source_key for r in d.records) == ["2.5", "5", "6", "k3"]
    assert [w for w in d.warnings if "float" in w] == [
        "manifest m.jsonl: 2 keys written as whole-number floats (e.g. 5.0 in row 1) were read as integers ('5'): "
        "pandas writes an integer column with a missing value as floats; write keys as integers or strings to "
        "silence this"]


# -- D7 and the nits --------------------------------------------------------------------------------------------


def _values(vals: list[Any]) -> Values:
    return Values({"train": [(f"k{i}", v) for i, v in enumerate(vals)]}, {"parts"})


def test_a_joined_name_inside_a_list_gets_no_join_advice() -> None:
    _, _, warnings = settle("ds", "parts", _values([["wheel|tyre", "door"], ["door"]] * 3))
    assert not [w for w in warnings if "join several" in w]
    _, _, warnings = settle("ds", "parts", _values(['["wheel|tyre", "door"]', "door"] * 3))  # a list in a CSV cell
    assert not [w for w in warnings if "join several" in w]


def test_a_joined_name_in_a_string_cell_gets_the_join_advice() -> None:
    _, _, warnings = settle("ds", "parts", _values(["wheel|tyre", ["wheel|tyre"], "door"]))
    assert [w for w in warnings if "join several" in w][0].startswith(
        "label of the target 'parts' join several names ('wheel|tyre')")


def test_one_label_is_singular() -> None:
    assert Target("multilabel", "reviewed", ["reviewed"]).describe() == "target 'reviewed': multi-label, 1 label ('reviewed')"
    assert "2 labels" in Target("multilabel", "t", ["a", "b"]).describe()


def test_a_json_export_names_the_jsonl_way(tmp_path: Path) -> None:
    (tmp_path / "export.json").write_text(json.dumps([{"image": "a.png"}]))
    with pytest.raises(SourceError) as exc:
        discover(tmp_path / "export.json")
    assert str(exc.value).endswith("a JSON array of row objects (an annotation tool's export) is a manifest once "
                                   f"written one object per line, as .jsonl (e.g. jq -c '.[]' {tmp_path}/export.json > "
                                   f"{tmp_path}/export.jsonl)")


# -- QA23 pass 2 ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_root", [False, True])
@pytest.mark.parametrize("cell", ["/sub/%2e%2e/%2e%2e/secret/s.png", "/sub/..%2f..%2fsecret/s.png",
                                  "/sub/%2E%2E/%2E%2E/secret/s.png"])
def test_a_document_root_hint_never_names_a_path_outside_the_folder(tmp_path: Path, with_root: bool,
                                                                     cell: str) -> None:
    """D1: percent-decoded before the escape check, so the hint neither recommends a path that escapes nor says
    whether a file outside the folder exists."""
    _jsonl(tmp_path, [], ["secret/s.png", "man/ok.png", "man/sub/x.png"])
    m = _jsonl(tmp_path / "man", [{"image": "ok.png"}, {"image": cell}])
    rep = _shard(m, tmp_path / "ds", **({"root": tmp_path / "man"} if with_root else {}))
    folder = "the --root folder" if with_root else "the manifest's folder"
    assert [s["reason"] for s in rep["skipped"] if s["what"] == "member"] == [
        f"m.jsonl row 2, column 'image': the path escapes {folder}"]
    assert not [w for w in rep["warnings"] if "leading '/'" in w]


def test_a_document_root_hint_for_a_path_that_stays_inside(tmp_path: Path) -> None:
    _jsonl(tmp_path, [], ["man/up/b.png"])
    m = _jsonl(tmp_path / "man", [{"image": "/up/x/%2e%2e/b.png"}])
    d = discover(m)
    assert [s["reason"] for s in d.skipped if s["what"] == "member"] == [
        "m.jsonl row 1, column 'image': the path escapes the manifest's folder: no such file on this machine, but "
        "the manifest's folder holds it without its leading '/'; write it relative to the manifest"]
    assert [w for w in d.warnings if "leading '/'" in w][0].endswith("write it relative to the manifest ('up/b.png')")


def test_document_root_paths_are_grouped_by_one_reason(tmp_path: Path) -> None:
    """D4: the row's path is in the skip's source, so the summaries group the rows (CLI, card, no samples)."""
    from collections import Counter

    files = [f"ls/data/upload/3/f{i}.png" for i in range(12)]
    _jsonl(tmp_path, [], files + ["man/ok.png"])
    (tmp_path / "man" / "m.csv").write_text("image,label\n" + "".join(f"/data/upload/3/f{i}.png,{i % 3}\n"
                                                                       for i in range(12)))
    with pytest.raises(SourceError) as exc:
        _shard(tmp_path / "man" / "m.csv", tmp_path / "o", root=tmp_path / "ls")
    reason = ("the path escapes the --root folder: no such file on this machine, but the --root folder holds it "
              "without its leading '/'; write it relative to the --root folder")
    assert f"12 × m.csv, column 'image': {reason}" in str(exc.value)
    with (tmp_path / "man" / "m.csv").open("a") as f:
        f.write("ok.png,0\n")
    (tmp_path / "ls" / "ok.png").write_bytes(image_bytes(99, (16, 16)))
    p = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "shard", str(tmp_path / "man" / "m.csv"),
                        str(tmp_path / "ds"), "--root", str(tmp_path / "ls")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert f"12 × m.csv, column 'image': {reason}" in " ".join((p.stdout + p.stderr).split())
    card = load_card(tmp_path / "ds")
    members = [s for s in card["skipped"] if s["what"] == "member"]
    assert len(members) == 12 and len(Counter(s["reason"].split(": ", 1)[1] for s in members)) == 1
    assert sorted(s["source"] for s in members)[0] == "/data/upload/3/f0.png"


def test_csv_whole_float_keys_are_read_as_parquet_and_jsonl_keys(tmp_path: Path) -> None:
    """D5: one DataFrame, one key set, whatever format it was written in."""
    pd = pytest.importorskip("pandas")
    _, files = _pets(tmp_path, 4)
    _jsonl(tmp_path, [], files)
    # floats, as pandas holds an int column that had a missing value
    df = pd.DataFrame({"key": [10.0, 11.0, 12.0, 13.0], "image": files, "label": [0, 1, 0, 1]})
    df.to_csv(tmp_path / "m.csv", index=False)
    df.to_json(tmp_path / "m.jsonl", orient="records", lines=True)
    got = {}
    for name in ("m.csv", "m.jsonl"):
        d = discover(tmp_path / name)
        got[name] = sorted(r.source_key for r in d.records)
        said = [w for w in d.warnings if "whole-number float" in w]
        assert len(said) == 1 and "4 keys" in said[0] and "were read as integers ('10')" in said[0], said
    assert got["m.csv"] == got["m.jsonl"] == ["10", "11", "12", "13"]
    # the missing key itself is refused naming its row, in every format (QA31 pandas D4: it was named 'img/2')
    df.loc[2, "key"] = None
    df.to_csv(tmp_path / "m.csv", index=False)
    df.to_json(tmp_path / "m.jsonl", orient="records", lines=True)
    for name in ("m.csv", "m.jsonl"):
        with pytest.raises(SourceError, match=f"manifest {name}, column 'key': row 3 has no key"):
            discover(tmp_path / name)


def test_csv_keys_that_are_not_all_whole_floats_stay_text(tmp_path: Path) -> None:
    _, files = _pets(tmp_path, 3)
    _jsonl(tmp_path, [], files)
    (tmp_path / "m.csv").write_text("key,image\n10.0,img/0.png\n1.5,img/1.png\nk,img/2.png\n")
    d = discover(tmp_path / "m.csv")
    assert sorted(r.source_key for r in d.records) == ["1.5", "10.0", "k"]
    assert not [w for w in d.warnings if "whole-number float" in w]


def test_a_shared_file_with_different_other_inputs_is_no_label_conflict(tmp_path: Path) -> None:
    """D6: a room-tone clip shared by samples whose images differ: the inputs differ, the labels may too."""
    from mmdata.testing import audio_bytes

    _, files = _pets(tmp_path, 6)
    _jsonl(tmp_path, [], files)
    (tmp_path / "room_tone.flac").write_bytes(audio_bytes(0))
    (tmp_path / "m.csv").write_text("image,audio,label\n" + "".join(f"{f},room_tone.flac,{i % 2}\n"
                                                                    for i, f in enumerate(files)))
    assert not [w for w in discover(tmp_path / "m.csv").warnings if "labels differ" in w]
    (tmp_path / "m2.csv").write_text("image,audio,label\nimg/0.png,room_tone.flac,0\nimg/1.png,room_tone.flac,1\n"
                                     "img/0.png,room_tone.flac,1\n")
    said = [w for w in discover(tmp_path / "m2.csv").warnings if "labels differ" in w]
    assert len(said) == 1 and "rows 1 and 3 say 0 and 1" in said[0], said


@pytest.mark.parametrize("name", ["sub/Export.JSON", "sub/x.json"])
def test_the_jq_hint_names_the_file_as_given(tmp_path: Path, name: str) -> None:
    """D7: folder and extension kept, so the command runs from where the user typed theirs."""
    (tmp_path / "sub").mkdir()
    (tmp_path / name).write_text(json.dumps([{"image": "a.png"}]))
    given = str(tmp_path / name)
    with pytest.raises(SourceError) as exc:
        discover(given)
    assert str(exc.value).endswith(f"(e.g. jq -c '.[]' {given} > {given[:-5]}.jsonl)")
