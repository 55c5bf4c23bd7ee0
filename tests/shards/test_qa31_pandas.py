"""QA31 persona "pandas" (DataFrame / DuckDB / Parquet manifests): a named pandas index stored in a Parquet
manifest is a column (D1); a categorical label's categories are the class names in their order (D3); a blank
cell in a manifest's key column is refused naming its row (D4); ``keys=`` takes a pyarrow RecordBatchReader and
a DuckDB relation (D7)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

import mmdata
from mmdata.errors import ShardError, SourceError
from mmdata.shards.reader import expect_keys
from mmdata.testing import image_bytes


def _images(root: Path, n: int = 6) -> list[str]:
    files = [f"img/{i}.png" for i in range(n)]
    for i, rel in enumerate(files):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(image_bytes(i, (16, 16)))
    return files


def _shard(src: Path, out: Path, **kw: Any) -> dict[str, Any]:
    return mmdata.shard(src, out, progress=False, force=True, **kw)


def _index(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "index.parquet")


def _card(out: Path) -> dict[str, Any]:
    return json.loads((out / "dataset.json").read_text())


# -- D1: a named pandas index in a Parquet manifest is a column ---------------------------------------------


def test_a_named_index_is_read_as_a_column_and_csv_gives_the_same_keys(tmp_path: Path) -> None:
    files = _images(tmp_path)
    df = pd.DataFrame({"key": [f"utt{i}" for i in range(6)], "image": files, "label": ["a", "b"] * 3})
    df.set_index("key").to_parquet(tmp_path / "i.parquet")
    df.set_index("key").to_csv(tmp_path / "i.csv")
    _shard(tmp_path / "i.parquet", tmp_path / "dsP")
    _shard(tmp_path / "i.csv", tmp_path / "dsC")
    parquet, csv = _index(tmp_path / "dsP"), _index(tmp_path / "dsC")
    assert sorted(parquet.source_key) == [f"utt{i}" for i in range(6)]
    assert sorted(parquet.key) == sorted(csv.key)
    assert sorted(parquet.source_key) == sorted(csv.source_key)


def test_a_named_index_can_be_the_group_by_column(tmp_path: Path) -> None:
    files = _images(tmp_path)
    df = pd.DataFrame({"spk": ["s1", "s2", "s3"] * 2, "image": files, "label": ["a", "b"] * 3})
    df.set_index("spk").to_parquet(tmp_path / "g.parquet")
    rep = _shard(tmp_path / "g.parquet", tmp_path / "ds", group_by="spk")
    assert rep["samples"] == 6


def test_an_unnamed_index_of_a_filtered_frame_stays_left_out(tmp_path: Path) -> None:
    files = _images(tmp_path)
    df = pd.DataFrame({"key": [f"k{i}" for i in range(6)], "image": files, "label": ["a", "b"] * 3})
    df[df.label == "a"].to_parquet(tmp_path / "f.parquet")  # __index_level_0__: 0, 2, 4
    rep = _shard(tmp_path / "f.parquet", tmp_path / "ds")
    assert sorted(_index(tmp_path / "ds").source_key) == ["k0", "k2", "k4"]
    assert not any("__index_level" in w for w in rep["warnings"])



def test_a_warning_on_a_named_index_column_says_it_was_the_index(tmp_path: Path) -> None:
    """QA31 pandas review F6: a warning naming a column that was the DataFrame's named index says so, with
    reset_index(drop=True) (the advice was about files and folders only); other columns' warnings do not."""
    files = _images(tmp_path)
    df = pd.DataFrame({"orig_file": [f"/data/old/{i}.png" for i in range(6)], "rid": [f"r{i}" for i in range(6)],
                       "image": files, "label": ["a", "b"] * 3})
    df.set_index("orig_file").to_parquet(tmp_path / "orig.parquet")
    rep = _shard(tmp_path / "orig.parquet", tmp_path / "ds")
    about = [w for w in rep["warnings"] if "'orig_file'" in w]
    assert about and all("the DataFrame's index, saved by to_parquet" in w and "reset_index(drop=True)" in w
                         for w in about), rep["warnings"]
    assert not [w for w in rep["warnings"] if "'rid'" in w and "DataFrame's index" in w], rep["warnings"]
    df.drop(columns="orig_file").set_index("rid").to_parquet(tmp_path / "rid.parquet")
    rep = _shard(tmp_path / "rid.parquet", tmp_path / "ds2")
    assert any("'rid'" in w and "the DataFrame's index" in w for w in rep["warnings"]), rep["warnings"]


# -- D3: a categorical label's categories --------------------------------------------------------------------


def _categorical(tmp_path: Path, categories: list[Any], values: list[Any], name: str = "c.parquet") -> Path:
    files = _images(tmp_path, len(values))
    df = pd.DataFrame({"key": [f"k{i}" for i in range(len(values))], "image": files,
                       "label": pd.Categorical(values, categories=categories, ordered=True)})
    df.to_parquet(tmp_path / name, index=False)
    return tmp_path / name


def test_categorical_label_names_follow_the_categories_unused_ones_kept(tmp_path: Path) -> None:
    cats = ["zebra", "dog", "cat", "bird"]
    values = ["dog", "cat"] * 3
    src = _categorical(tmp_path, cats, values)
    rep = _shard(src, tmp_path / "ds")
    assert _card(tmp_path / "ds")["label_names"] == cats
    idx = _index(tmp_path / "ds").sort_values("source_key")
    codes = list(pd.Categorical(values, categories=cats).codes)
    assert list(idx.label) == codes  # [1, 2, 1, 2, 1, 2]: the frame's cat.codes
    # the unused classes keep their ids, as declared names do, with the warning --labels gets
    assert [w for w in rep["warnings"] if "categor" in w] == [
        "classes 'zebra' (id 0), 'bird' (id 3), named by the categorical column 'label', have no sample: they keep "
        "their ids (so the others' stay) but have no example to train or test on; add samples, or remove them from "
        "the list if the class was dropped"]


def test_categorical_label_with_labels_given_follows_labels_and_warns_of_the_other_order(tmp_path: Path) -> None:
    src = _categorical(tmp_path, ["zebra", "dog", "cat", "bird"], ["dog", "cat"] * 3)
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n")
    rep = mmdata.shard(src, tmp_path / "ds", progress=False, label_names=str(names))
    assert _card(tmp_path / "ds")["label_names"] == ["cat", "dog"]
    assert sorted(_index(tmp_path / "ds").label.tolist()) == [0, 0, 0, 1, 1, 1]
    assert any("categor" in w and "--labels" in w for w in rep["warnings"]), rep["warnings"]


def test_categorical_label_of_digit_names_is_not_used_and_warned_of(tmp_path: Path) -> None:
    src = _categorical(tmp_path, ["2", "1", "x"], ["1", "2"] * 3)
    rep = _shard(src, tmp_path / "ds")
    assert any("categor" in w for w in rep["warnings"]), rep["warnings"]
    assert _card(tmp_path / "ds")["label_names"] is None  # ids 1, 2 as in any column of ids


def test_a_plain_string_label_column_keeps_sorted_names(tmp_path: Path) -> None:
    files = _images(tmp_path)
    pd.DataFrame({"image": files, "label": ["dog", "cat"] * 3}).to_parquet(tmp_path / "p.parquet", index=False)
    _shard(tmp_path / "p.parquet", tmp_path / "ds")
    assert _card(tmp_path / "ds")["label_names"] == ["cat", "dog"]



def test_an_arrow_dictionary_column_not_from_pandas_keeps_sorted_names(tmp_path: Path) -> None:
    """QA31 pandas review F2: only a pandas Categorical (the file's pandas metadata says ``categorical``) declares
    the classes; ``dictionary_encode()`` (first-appearance order, as polars' Categorical) is read as strings,
    so two files of one dataset encoded apart keep one set of ids."""
    import pyarrow.parquet as pq

    labels = ["dog", "cat", "bird"] * 2
    files = _images(tmp_path, len(labels))
    pq.write_table(pa.table({"key": [f"k{i}" for i in range(6)], "image": files,
                             "label": pa.array(labels).dictionary_encode()}), tmp_path / "d.parquet")
    rep = _shard(tmp_path / "d.parquet", tmp_path / "ds")
    assert _card(tmp_path / "ds")["label_names"] == ["bird", "cat", "dog"]
    assert list(_index(tmp_path / "ds").sort_values("source_key").label) == [2, 1, 0, 2, 1, 0]
    assert not [w for w in rep["warnings"] if "categor" in w], rep["warnings"]
    # a pandas Categorical of the same values still declares its order
    pd.DataFrame({"key": [f"k{i}" for i in range(6)], "image": files,
                  "label": pd.Categorical(labels, categories=["dog", "cat", "bird"])}).to_parquet(
        tmp_path / "p.parquet", index=False)
    _shard(tmp_path / "p.parquet", tmp_path / "ds2")
    assert _card(tmp_path / "ds2")["label_names"] == ["dog", "cat", "bird"]



@pytest.mark.parametrize(("values", "expected"), [
    (["Drama|Comedy", "Comedy|Drama", "Drama", "Action|Drama"], "join several names"),
    (["['a', 'b']", "['b']", "a"], "read as Python lists"),
    (["DOG", "dog", "dog", "cat"], "differ only in case"),
])
def test_a_categorical_label_column_keeps_the_label_content_warnings(tmp_path: Path, values: list[str],
                                                                     expected: str) -> None:
    """QA31 pandas review F3: categories are class names, not names declared with --labels, so the warnings a
    column of names gets (multi-label cells, Python-list strings, case-only differences) still run."""
    values = values * 2
    files = _images(tmp_path, len(values))
    pd.DataFrame({"key": [f"k{i}" for i in range(len(values))], "image": files,
                  "label": pd.Series(values).astype("category")}).to_parquet(tmp_path / "c.parquet", index=False)
    rep = _shard(tmp_path / "c.parquet", tmp_path / "ds")
    assert any(expected in w for w in rep["warnings"]), rep["warnings"]



def test_a_categorical_of_id_strings_in_their_own_order_is_not_warned_of(tmp_path: Path) -> None:
    """QA31 pandas review F4: categories '0', '1', '2' (astype(str).astype("category") of ids) read as ids equal
    to the category codes: no warning that they are not (categories '2', '1', 'x' still get one, above)."""
    values = ["0", "1", "2", "1"] * 2
    src = _categorical(tmp_path, ["0", "1", "2"], values)
    rep = _shard(src, tmp_path / "ds")
    assert not [w for w in rep["warnings"] if "categor" in w], rep["warnings"]
    assert list(_index(tmp_path / "ds").sort_values("source_key").label) == [0, 1, 2, 1] * 2


# -- D4: a blank key cell ------------------------------------------------------------------------------------


def test_a_blank_key_cell_is_refused_naming_its_row(tmp_path: Path) -> None:
    files = _images(tmp_path, 5)
    pd.DataFrame({"image": files, "label": ["a", "b", "a", "b", "a"],
                  "key": pd.array([1, 2, None, 4, None], dtype="Int64")}).to_parquet(tmp_path / "n.parquet", index=False)
    with pytest.raises(SourceError, match=r"nakey|n\.parquet.*rows? 3 and 5.*blank key|key") as exc:
        _shard(tmp_path / "n.parquet", tmp_path / "ds")
    msg = str(exc.value)
    assert "3" in msg and "5" in msg and "key" in msg, msg


def test_a_blank_key_cell_in_a_csv_is_refused(tmp_path: Path) -> None:
    files = _images(tmp_path, 3)
    (tmp_path / "m.csv").write_text("key,image\nk0,%s\n,%s\nk2,%s\n" % tuple(files))
    with pytest.raises(SourceError, match="row 2"):
        _shard(tmp_path / "m.csv", tmp_path / "ds")


def test_empty_rows_below_a_table_with_keys_are_still_no_sample(tmp_path: Path) -> None:
    files = _images(tmp_path, 2)
    (tmp_path / "m.csv").write_text("key,image\nk0,%s\nk1,%s\n,\n" % tuple(files))
    rep = _shard(tmp_path / "m.csv", tmp_path / "ds")
    assert rep["samples"] == 2



def test_blank_key_messages_read_right(tmp_path: Path) -> None:
    """QA31 pandas review F7: "blank cells" (was "a blank cells"), a JSONL object without the field says so (it has
    no cell), a row naming no file either is told it is refused (it was a listed skip before e9b21a5), a column
    blank in every row says that."""
    files = _images(tmp_path, 12)
    keys = [f"k{i}" if i % 2 else None for i in range(12)]
    pd.DataFrame({"key": keys, "image": files}).to_parquet(tmp_path / "many.parquet", index=False)
    with pytest.raises(SourceError) as exc:
        _shard(tmp_path / "many.parquet", tmp_path / "ds")
    assert "(blank cells; 6 rows in all)" in str(exc.value), str(exc.value)
    (tmp_path / "m.jsonl").write_text(json.dumps({"key": "k0", "image": files[0]}) + "\n"
                                      + json.dumps({"image": files[1]}) + "\n")
    # a JSONL object without the field has no cell: named after its first file, as before (QA round 3's
    # tests/shards/test_split_groups.py keys some rows only)
    got = _shard(tmp_path / "m.jsonl", tmp_path / "ds_m")
    assert got["samples"] == 2, got
    (tmp_path / "n.jsonl").write_text(json.dumps({"key": "k0", "image": files[0]}) + "\n"
                                      + json.dumps({"key": None, "image": files[1]}) + "\n")
    with pytest.raises(SourceError, match=r"row 2 has no key \(a null or blank 'key'\)"):
        _shard(tmp_path / "n.jsonl", tmp_path / "ds")
    pd.DataFrame({"key": ["k0", None], "image": [files[0], None], "text": ["a", "b"]}).to_parquet(
        tmp_path / "nofile.parquet", index=False)
    with pytest.raises(SourceError, match=r"row 2 names no file either: a row without a key is refused, not "
                                          r"skipped"):
        _shard(tmp_path / "nofile.parquet", tmp_path / "ds")
    pd.DataFrame({"key": [None] * 3, "image": files[:3]}).to_parquet(tmp_path / "null.parquet", index=False)
    with pytest.raises(SourceError, match=r"column 'key': blank in every row \(3 rows\)"):
        _shard(tmp_path / "null.parquet", tmp_path / "ds")


# -- D7: keys= from DuckDB -----------------------------------------------------------------------------------


def test_keys_take_a_record_batch_reader() -> None:
    table = pa.table({"key": ["a", "b"], "x": [1, 2]})
    assert expect_keys(pa.RecordBatchReader.from_batches(table.schema, table.to_batches())) == {"a", "b"}


def test_keys_take_a_duckdb_relation_and_its_arrow_result() -> None:
    duckdb = pytest.importorskip("duckdb")
    rel = duckdb.sql("SELECT * FROM (VALUES ('a', 1), ('b', 2)) t(key, x)")
    assert expect_keys(rel) == {"a", "b"}
    assert expect_keys(rel.arrow()) == {"a", "b"}


def test_keys_of_tables_name_the_type_and_stay_short() -> None:
    table = pa.table({"key": ["a" * 50] * 100})
    with pytest.raises(ShardError) as exc:
        expect_keys(iter(table.to_batches()))
    msg = str(exc.value)
    assert "RecordBatch" in msg and len(msg) < 600, msg
