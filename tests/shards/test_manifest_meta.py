"""A manifest's metadata columns (``--meta``): a speaker, a duration, a zip code kept per sample in its
``.json`` member, read back as the sample's ``json`` field and carried through augment.

Before (2026-12-03) every column but key / text / label / split was read as file paths: a ``speaker``
column became one "file not found" per row and a warning telling the user to delete the column."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.errors import ShardError, SourceError
from mmdata.shards.sources import discover_manifest
from mmdata.testing import image_bytes, make_messy_folder, write_manifest

SMALL = ((24, 32), (40, 30))
META = ["speaker", "duration", "rating", "zip", "notes"]


def _by_source_key(ds_path: Path) -> dict[str, dict]:
    """The json field of every sample, by its source key (from the index)."""
    index = pd.read_parquet(ds_path / "index.parquet")
    source = dict(zip(index["key"], index["source_key"]))
    out = {}
    for split in json.loads((ds_path / "dataset.json").read_text())["splits"]:
        for s in mmdata.ShardDataset(ds_path, split=split):
            out[source[s.key]] = s.fields.get("json")
    return out


@pytest.mark.parametrize("name", ["manifest.csv", "manifest.jsonl", "manifest.parquet"])
def test_messy_manifest_metadata_round_trips_exactly(tmp_path: Path, name: str) -> None:
    m = make_messy_folder(tmp_path / "raw", n=24, sizes=SMALL, seconds=(0.3, 0.6))
    expected = write_manifest(m, name)
    meta = META + (["tags"] if not name.endswith(".csv") else [])
    rep = mmdata.shard(m.root / name, tmp_path / "ds", meta=meta, progress=False)
    assert rep["samples"] == len(expected)
    assert not [w for w in rep["warnings"] if "names a file" in str(w)]  # no metadata column read as paths
    got = _by_source_key(tmp_path / "ds")
    assert got == expected  # types too: ints, floats, text with leading zeros, nulls, lists
    some = next(v for v in got.values() if v["zip"].startswith("0"))
    assert isinstance(some["zip"], str) and isinstance(some["rating"], int)
    assert any("\n" in (v["notes"] or "") for v in got.values())
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert card["metadata_columns"] == meta
    assert card["metadata_kinds"] == {"speaker": "string", "duration": "float", "rating": "int", "zip": "string",
                                      "notes": "string", **({"tags": "list<string>"} if "tags" in meta else {})}


def test_csv_types_are_inferred_per_column_and_never_lose_digits(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes(0))
    (tmp_path / "b.png").write_bytes(image_bytes(1))
    # QA 2026-12-03: +49..., 1.10, 1e3 and 36-digit decimals were typed and lost their digits
    (tmp_path / "m.csv").write_text("image,n,x,zip,mixed,exp,flag,phone,version,prec,big,huge\n"
                                    "a.png,3,1.5,00123,7,1e-05,true,+4917612345678,1.10,0.1000000000000000055511151231257827,"
                                    f"123456789012345678901234567890,{'1' * 5000}\n"
                                    "b.png,-4,2,99,seven,-0.25,false,+4930123,1.2,0.5,-1,7\n", encoding="utf-8")
    cols = ["n", "x", "zip", "mixed", "exp", "flag", "phone", "version", "prec", "big", "huge"]
    found = discover_manifest(tmp_path / "m.csv", meta=cols)
    got = [json.loads(r.members["json"]) for r in found.records]
    assert got == [{"n": 3, "x": 1.5, "zip": "00123", "mixed": "7", "exp": 1e-05, "flag": "true",
                    "phone": "+4917612345678", "version": "1.10", "prec": "0.1000000000000000055511151231257827",
                    "big": 123456789012345678901234567890, "huge": "1" * 5000},
                   {"n": -4, "x": 2.0, "zip": "99", "mixed": "seven", "exp": -0.25, "flag": "false",
                    "phone": "+4930123", "version": "1.2", "prec": "0.5", "big": -1, "huge": "7"}]
    assert type(got[0]["n"]) is int and type(got[1]["x"]) is float and not found.skipped


def test_the_json_member_is_deterministic_sorted_and_utf8(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes(0))
    (tmp_path / "m.jsonl").write_text(json.dumps({"image": "a.png", "z": "Zoë ☃", "a": {"b": [1, None]}},
                                                 ensure_ascii=False) + "\n", encoding="utf-8")
    found = discover_manifest(tmp_path / "m.jsonl", meta=["z", "a"])
    assert found.records[0].members["json"] == '{"a":{"b":[1,null]},"z":"Zoë ☃"}'.encode()
    digests = []
    for out in ("one", "two"):
        mmdata.shard(tmp_path / "m.jsonl", tmp_path / out, meta=["z", "a"], progress=False)
        digests.append(hashlib.sha256(next((tmp_path / out).glob("*.tar")).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_values_json_cannot_hold_are_reported_and_stored_as_null(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes(0))
    (tmp_path / "b.png").write_bytes(image_bytes(1))
    pd.DataFrame({"image": ["a.png", "b.png"], "score": [math.inf, 0.5], "blob": [b"\x00\x01", None],
                  "when": pd.to_datetime(["2026-12-03", None]), "nan": [np.nan, 1.0]}
                 ).to_parquet(tmp_path / "m.parquet")
    found = discover_manifest(tmp_path / "m.parquet", meta=["score", "blob", "when", "nan"])
    got = [json.loads(r.members["json"]) for r in found.records]
    assert got[0] == {"score": None, "blob": None, "when": "2026-12-03T00:00:00", "nan": None}
    assert got[1] == {"score": 0.5, "blob": None, "when": None, "nan": 1.0}
    reasons = sorted(s["reason"] for s in found.skipped)
    assert len(reasons) == 1
    assert "column 'blob'" in reasons[0] and "bytes value" in reasons[0] and "null in the sample's" in reasons[0]
    # an infinite number is changed to null with a warning, as NaN is: no cell left out (QA40 hostile #6)
    (said,) = [w for w in found.warnings if "infinite number" in w]
    assert "row 1, column 'score': inf" in said and "changed to null" in said
    with pytest.raises(SourceError, match=r"row 1, column 'blob'.*bytes value"):
        discover_manifest(tmp_path / "m.parquet", meta=["score", "blob", "when", "nan"], on_error="raise")


def test_parquet_values_keep_their_arrow_types(tmp_path: Path) -> None:
    """QA 2026-12-03: through pandas an int column with a null became floats (2^53 + 1 lost its last
    digit, lists of ints came back as 1.0); decimals and durations were null; maps lists of pairs; ''
    became null."""
    import datetime
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    for i in range(2):
        (tmp_path / f"{i}.png").write_bytes(image_bytes(i))
    table = pa.table({
        "image": ["0.png", "1.png"],
        "big": pa.array([9007199254740993, None], pa.int64()),
        "ids": pa.array([[1, None], [2]], pa.list_(pa.int64())),
        "price": pa.array([decimal.Decimal("1.10"), decimal.Decimal("12345678901234567890.12")], pa.decimal128(22, 2)),
        "took": pa.array([datetime.timedelta(seconds=1.5), None], pa.duration("ms")),
        "attrs": pa.array([[("k", 1)], []], pa.map_(pa.string(), pa.int64())),
        "note": ["", None],
        "at": pa.array([datetime.datetime(2026, 12, 3, 12, 0, tzinfo=datetime.timezone.utc), None],
                       pa.timestamp("s", tz="UTC")),
    })
    pq.write_table(table, tmp_path / "m.parquet")
    cols = ["big", "ids", "price", "took", "attrs", "note", "at"]
    found = discover_manifest(tmp_path / "m.parquet", meta=cols)
    got = [json.loads(r.members["json"]) for r in found.records]
    assert got == [{"big": 9007199254740993, "ids": [1, None], "price": 1.1, "took": 1.5, "attrs": {"k": 1},
                    "note": "", "at": "2026-12-03T12:00:00+00:00"},
                   {"big": None, "ids": [2], "price": "12345678901234567890.12", "took": None, "attrs": {},
                    "note": None, "at": None}]
    assert not found.skipped
    # a named pandas index written as a column is a manifest column, as in a CSV of that frame (pandas reads it
    # back, as the index; QA31 pandas D1): here metadata not asked for, so not read, with the usual warning
    pd.DataFrame({"image": ["0.png"], "speaker": ["ann"]}, index=pd.Index(["r0"], name="rid")).to_parquet(
        tmp_path / "i.parquet")
    found = discover_manifest(tmp_path / "i.parquet", meta=["speaker"])
    assert json.loads(found.records[0].members["json"]) == {"speaker": "ann"}
    assert [w.split(":")[0] for w in found.warnings] == ["manifest i.parquet, column 'rid'"]
    found = discover_manifest(tmp_path / "i.parquet", meta=["speaker", "rid"])
    assert json.loads(found.records[0].members["json"]) == {"rid": "r0", "speaker": "ann"} and not found.warnings
    # an unnamed one (__index_level_0__: a filtered frame not reset) is bookkeeping: left out, silently
    pd.DataFrame({"image": ["0.png"], "speaker": ["ann"]}, index=[7]).to_parquet(tmp_path / "u.parquet")
    found = discover_manifest(tmp_path / "u.parquet", meta=["speaker"])
    assert json.loads(found.records[0].members["json"]) == {"speaker": "ann"} and not found.warnings


def test_text_json_cannot_encode_is_reported_not_a_crash(tmp_path: Path) -> None:
    """QA 2026-12-03: a lone surrogate (a JSONL caption cut inside an escape pair) and lists nested 600
    deep ended the job with a UnicodeEncodeError / RecursionError naming nothing."""
    (tmp_path / "0.png").write_bytes(image_bytes(0))
    deep: list = []
    for _ in range(600):
        deep = [deep]
    lines = [json.dumps({"image": "0.png", "s": "ok\ud800x", "d": deep, "text": "cut \udc80"})]
    (tmp_path / "m.jsonl").write_text(lines[0] + "\n", encoding="ascii")  # the escapes as JSON text
    found = discover_manifest(tmp_path / "m.jsonl", meta=["s", "d"])
    assert json.loads(found.records[0].members["json"]) == {"s": None, "d": None}
    assert "txt" not in found.records[0].members
    reasons = " | ".join(s["reason"] for s in found.skipped)
    assert "column 's'" in reasons and "lone surrogate '\\ud800' at character 2" in reasons
    assert "column 'd'" in reasons and "nested more than 64 levels" in reasons
    assert "column 'text'" in reasons and "not valid Unicode" in reasons
    rep = mmdata.shard(tmp_path / "m.jsonl", tmp_path / "ds", meta=["s", "d"], progress=False)
    assert rep["samples"] == 1 and rep["skipped_counts"]["members"] == 3
    # in a path column: a skipped member (was a UnicodeEncodeError from os.stat); in a key: an error
    (tmp_path / "p.jsonl").write_text('{"image": "0\\ud800.png", "text": "ok"}\n', encoding="ascii")
    found = discover_manifest(tmp_path / "p.jsonl")
    assert found.skipped[0]["source"] == "0\\ud800.png" and "no file has this name" in found.skipped[0]["reason"]
    (tmp_path / "k.jsonl").write_text('{"key": "a\\ud800", "image": "0.png"}\n', encoding="ascii")
    with pytest.raises(SourceError, match=r"k.jsonl row 1, column 'key': .* is not valid Unicode"):
        mmdata.shard(tmp_path / "k.jsonl", tmp_path / "k", progress=False)


def test_a_renamed_field_and_a_column_of_its_name(tmp_path: Path) -> None:
    """QA 2026-12-03: --column image=img with a column 'image' (URLs) lost one of them without a word,
    and with --meta image every image member was gone."""
    for i in range(2):
        (tmp_path / f"{i}.png").write_bytes(image_bytes(i))
    (tmp_path / "m.csv").write_text("image,img,speaker\nhttp://x/o0.jpg,0.png,ann\nhttp://x/o1.jpg,1.png,bob\n",
                                    encoding="utf-8")
    with pytest.raises(SourceError, match=r"--column image=img: the manifest also has a column 'image'.*--meta image"):
        discover_manifest(tmp_path / "m.csv", {"image": "img"})
    found = discover_manifest(tmp_path / "m.csv", {"image": "img"}, meta=["image", "speaker"])
    assert [sorted(r.members) for r in found.records] == [["json", "png"], ["json", "png"]]
    assert json.loads(found.records[0].members["json"]) == {"image": "http://x/o0.jpg", "speaker": "ann"}
    assert not found.skipped


def test_meta_names_with_commas_and_spaces(tmp_path: Path) -> None:
    (tmp_path / "0.png").write_bytes(image_bytes(0))
    (tmp_path / "m.csv").write_text('image,"Name, First",trail ,b\n0.png,Ann,x,y\n', encoding="utf-8")
    found = discover_manifest(tmp_path / "m.csv", meta=["Name, First", "trail ,b"])
    assert json.loads(found.records[0].members["json"]) == {"Name, First": "Ann", "trail ": "x", "b": "y"}
    with pytest.raises(SourceError, match=r"--meta ',' names no column"):
        discover_manifest(tmp_path / "m.csv", meta=[","])


def test_bad_meta_options_are_named(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes(0))
    (tmp_path / "m.csv").write_text("image,label,speaker,img2\na.png,0,ann,a.png\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"--meta speakr: no column 'speakr' \(columns: \['image', 'img2', "):
        discover_manifest(tmp_path / "m.csv", meta=["speakr"])
    with pytest.raises(SourceError, match=r"--meta label: 'label' is a field of its own"):
        discover_manifest(tmp_path / "m.csv", meta=["label"])
    with pytest.raises(SourceError, match=r"--meta img2: the column is also --column depth=img2"):
        discover_manifest(tmp_path / "m.csv", {"depth": "img2"}, meta=["img2"])
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "x.png").write_bytes(image_bytes(0))
    with pytest.raises(SourceError, match=r"--meta names a manifest's metadata columns, and this is a folder"):
        mmdata.shard(folder, tmp_path / "out", meta=["speaker"], progress=False)
    assert not (tmp_path / "out").exists()


def test_a_json_file_column_and_meta_do_not_both_fill_the_member(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes(0))
    (tmp_path / "a.json").write_text('{"from": "file"}', encoding="utf-8")
    (tmp_path / "m.csv").write_text("image,extra,speaker\na.png,a.json,ann\n", encoding="utf-8")
    found = discover_manifest(tmp_path / "m.csv", meta=["speaker"])
    assert json.loads(found.records[0].members["json"]) == {"speaker": "ann"}  # what --meta asked for
    assert found.skipped[0]["source"] == "a.json" and "--meta columns give" in found.skipped[0]["reason"]


def test_metadata_reach_the_batch_and_survive_augment(tmp_path: Path) -> None:
    m = make_messy_folder(tmp_path / "raw", n=12, sizes=SMALL, seconds=(0.3, 0.5))
    expected = write_manifest(m)
    mmdata.shard(m.root / "manifest.csv", tmp_path / "ds", meta=META, progress=False)
    index = pd.read_parquet(tmp_path / "ds" / "index.parquet")
    source = dict(zip(index["key"], index["source_key"]))
    seen = {}
    recipe = Path(__file__).parents[2] / "recipes" / "messy_folder.yaml"  # mixed sizes, modes and rates batch
    for batch in mmdata.loader(tmp_path / "ds", batch_size=4, recipe=recipe, num_workers=2):
        assert batch.present["json"].all()
        seen.update({source[k]: v for k, v in zip(batch.keys, batch["json"])})
    assert seen == expected
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - {op: hflip, p: 1.0}\n", encoding="utf-8")
    augment_dataset(tmp_path / "ds", tmp_path / "aug", recipe, copies=2, progress=False)
    card = json.loads((tmp_path / "aug" / "dataset.json").read_text())
    assert card["metadata_columns"] == META
    # the same bytes as the sharder's member (was json.dumps' default: spaces, \\u escapes)
    raw = {s.key: s.fields["json"] for s in mmdata.ShardDataset(tmp_path / "ds", decode=False)}
    copies = {s.key: s.fields["json"] for s in mmdata.ShardDataset(tmp_path / "aug", decode=False)}
    assert all(copies[k] == raw[k.rsplit("_aug", 1)[0]] for k in copies)
    aug = {s.key: s.fields["json"] for s in mmdata.ShardDataset(tmp_path / "aug")}
    assert len(aug) == 2 * len(expected)
    for key, val in aug.items():
        assert val == expected[source[key.rsplit("_aug", 1)[0]]]


def test_cli_meta_option_and_the_hint_for_a_metadata_column(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes(0))
    (tmp_path / "b.png").write_bytes(image_bytes(1))
    (tmp_path / "m.csv").write_text("image,speaker,duration\na.png,ann,1.5\nb.png,bob,2\n", encoding="utf-8")
    cli = [sys.executable, "-m", "mmdata.cli.main"]
    hint = subprocess.run([*cli, "shard", str(tmp_path / "m.csv"), str(tmp_path / "plain")], capture_output=True,
                          text=True, timeout=120)
    assert hint.returncode == 0, hint.stderr
    assert "pass --meta speaker" in hint.stderr.replace("\n", " ")
    run = subprocess.run([*cli, "shard", str(tmp_path / "m.csv"), str(tmp_path / "ds"), "--meta", "speaker,duration",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rep = json.loads(run.stdout)
    assert rep["samples"] == 2 and rep["skipped_counts"]["members"] == 0
    shown = subprocess.run([*cli, "inspect", str(tmp_path / "ds")], capture_output=True, text=True, timeout=120)
    assert "metadata (each sample's json field): speaker (string), duration (float)" in shown.stdout
    listed = subprocess.run([*cli, "inspect", str(tmp_path / "ds"), "--json"], capture_output=True, text=True, timeout=120)
    assert json.loads(listed.stdout)["metadata_columns"] == ["speaker", "duration"]
    assert sorted(s.fields["json"]["speaker"] for s in mmdata.ShardDataset(tmp_path / "ds")) == ["ann", "bob"]


def test_a_manifest_at_a_url_gives_the_same_metadata(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A manifest on S3 (the local server of tests/conftest.py) with --meta: the same dataset, byte for
    byte, as the local manifest; --meta on a folder at a URL is refused as locally."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    s3 = request.getfixturevalue("s3")
    m = make_messy_folder(tmp_path / "raw", n=10, sizes=SMALL, seconds=(0.2, 0.3))
    write_manifest(m, "manifest.jsonl")
    s3.fs.put(str(m.root), f"{s3.url[5:]}/meta-raw", recursive=True)
    meta = [*META, "tags"]
    local, remote = tmp_path / "local" / "ds", tmp_path / "remote" / "ds"  # one name: the card names its folder
    mmdata.shard(m.root / "manifest.jsonl", local, meta=meta, progress=False)
    mmdata.shard(f"{s3.url}/meta-raw/manifest.jsonl", remote, meta=meta, storage_options=s3.options, progress=False)

    def tree(root: Path) -> dict[Path, bytes]:
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and not p.name.startswith(".mmdata-lock")}

    assert tree(local) == tree(remote)
    assert {s.fields["json"]["zip"] for s in mmdata.ShardDataset(remote)} >= {"00000"}
    with pytest.raises(SourceError, match="this is a folder"):
        mmdata.shard(f"{s3.url}/meta-raw", tmp_path / "folder", meta=["speaker"], storage_options=s3.options,
                     progress=False)


def test_to_hf_gives_one_typed_column_per_metadata_column(tmp_path: Path) -> None:
    """A --meta dataset exported to Hugging Face: speaker a string column, duration float64, tags a list
    (was one 'json' column of JSON text); a column of mixed values stays JSON text."""
    pytest.importorskip("datasets")
    from mmdata.interop.hf import to_hf, webdataset_features

    m = make_messy_folder(tmp_path / "raw", n=12, sizes=SMALL, seconds=(0.2, 0.3))
    expected = write_manifest(m, "manifest.jsonl")
    rows = [json.loads(line) for line in (m.root / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    for i, r in enumerate(rows):
        r["mixed"] = [1, "one", {"k": [1]}][i % 3]
        expected[r["key"]]["mixed"] = r["mixed"]
    (m.root / "manifest.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                           encoding="utf-8")
    meta = [*META, "tags", "mixed"]
    mmdata.shard(m.root / "manifest.jsonl", tmp_path / "ds", meta=meta, progress=False)
    hf = to_hf(tmp_path / "ds", split="train", cache_dir=tmp_path / "cache")
    feats = {c: str(hf.features[c]) for c in meta}
    assert feats == {"speaker": "Value('string')", "duration": "Value('float64')", "rating": "Value('int64')",
                     "zip": "Value('string')", "notes": "Value('string')", "tags": "List(Value('string'))",
                     "mixed": "Value('string')"}
    index = pd.read_parquet(tmp_path / "ds" / "index.parquet")
    source = dict(zip(index["key"], index["source_key"]))
    for row in hf:
        want = dict(expected[source[row["key"]]])
        mixed = want.pop("mixed")
        assert {c: row[c] for c in want} == want
        assert json.loads(row["mixed"]) == mixed  # JSON text: the one form every value has
    assert "json" not in hf.features
    # a mixed column: the Hub card's features type it as text (QA42: it raised, and no card could be written)
    assert str(webdataset_features(tmp_path / "ds")["json"]["mixed"]) == "Value('string')"
    mmdata.shard(m.root / "manifest.jsonl", tmp_path / "typed", meta=META, progress=False)
    assert set(webdataset_features(tmp_path / "typed")["json"]) == set(META)
