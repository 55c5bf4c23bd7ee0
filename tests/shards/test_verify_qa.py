"""QA 2026-12-02 (verify / inspect): ``verify`` checks the card's shard lists, index keys, member
names and sizes against the tar headers and ``shards.parquet`` rows for duplicates; ``inspect`` names
a missing index column and flags a damaged card shard list; messages say what was expected, carry no
object addresses, and ``--json`` errors are JSON."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.errors import ShardError
from mmdata.io import file_sha256
from mmdata.shards import index as idx
from mmdata.testing import make_sample_folder
from mmdata.shards.verify import NOT_LISTED, verify


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 samples in 4 shards (tests copy it before damaging it)."""
    t = tmp_path_factory.mktemp("verify_qa")
    mmdata.shard(make_sample_folder(t / "raw", n=12), t / "ds", maxcount=3, progress=False)
    return t / "ds"


@pytest.fixture(scope="module")
def columns_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("verify_qa_columns")
    mmdata.shard(make_sample_folder(t / "raw", n=8), t / "ds", maxcount=3, layout="columns", progress=False,
                 split="train=0.5,val=0.5")
    return t / "ds"


@pytest.fixture
def ds(dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dataset, tmp_path / "ds"))


def _edit_card(ds: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    card = json.loads((ds / idx.CARD).read_text())
    edit(card)
    (ds / idx.CARD).write_text(json.dumps(card))


def _edit_index(ds: Path, edit: Callable[[list[dict[str, Any]]], None]) -> None:
    rows = pq.read_table(ds / idx.INDEX).to_pylist()
    edit(rows)
    idx.write_index(ds, rows)


def _rewrite_shard(ds: Path, shard: str, edit: Callable[[tarfile.TarInfo, bytes], tuple[str, bytes]]) -> None:
    """Rewrite one shard member by member through ``edit`` and record its new sha256 in shards.parquet
    (the checksum then matches: only the other checks can see the change)."""
    src = tarfile.open(ds / shard)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as out:
        for ti in src.getmembers():
            name, data = edit(ti, src.extractfile(ti).read())  # type: ignore[union-attr]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    (ds / shard).write_bytes(buf.getvalue())
    t = pq.read_table(ds / idx.SHARDS).to_pylist()
    for r in t:
        if r["shard"] == shard:
            r["sha256"], r["bytes"] = file_sha256(ds / shard), (ds / shard).stat().st_size
    idx.write_shards_table(ds, t)


def _problems(rep: dict[str, Any], where: str) -> list[dict[str, Any]]:
    return [p for p in rep["problems"] if p["shard"] == where]


def _cli(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args)
    return res.exit_code, " ".join(res.output.split())


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The real entry point (MMDataError -> one line, exit 2): exit code, stdout, stderr."""
    from mmdata.cli.main import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(args)
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, " ".join(err.split())


# ---- 1. the card's shard lists -------------------------------------------------------------------
def _drop_last(card: dict[str, Any]) -> None:
    card["splits"]["train"]["shards"].pop()


def _as_string(card: dict[str, Any]) -> None:
    card["splits"]["train"]["shards"] = "train-000000.tar"


def _escaping(card: dict[str, Any]) -> None:
    card["splits"]["train"]["shards"].append("../../../../etc/passwd")


def _twice(card: dict[str, Any]) -> None:
    card["splits"]["train"]["shards"].append("train-000000.tar")


@pytest.mark.parametrize(("edit", "says"), [
    (_drop_last, ("split 'train'", "train-000003.tar", "does not list")),
    (_as_string, ("split 'train'", "not a list", "train-000000.tar")),
    (_escaping, ("split 'train'", "outside the dataset folder", "../../../../etc/passwd")),
    (_twice, ("split 'train'", "more than once", "train-000000.tar 2 times")),
])
def test_verify_checks_the_card_shard_list_of_each_split(ds: Path, edit: Callable[[dict[str, Any]], None],
                                                          says: tuple[str, ...]) -> None:
    _edit_card(ds, edit)
    rep = mmdata.verify(ds)
    assert not rep["ok"]
    (p,) = _problems(rep, idx.CARD)
    text = f"{p['problem']} {p['expected']} {p['found']}"
    assert all(s in text for s in says), text
    code, out = _cli(["verify", str(ds)])
    assert code == 1 and out.startswith(f"{idx.CARD}: split 'train'"), out


def test_verify_accepts_the_card_shard_lists_of_the_column_layout(columns_dataset: Path, tmp_path: Path) -> None:
    ds = Path(shutil.copytree(columns_dataset, tmp_path / "ds"))
    assert mmdata.verify(ds)["ok"]
    dropped = []
    _edit_card(ds, lambda c: dropped.append(c["splits"]["val"]["shards"].pop()))
    (p,) = _problems(mmdata.verify(ds), idx.CARD)
    assert "split 'val'" in p["problem"] and p["expected"] == dropped[0]


def test_inspect_refuses_an_escaping_card_shard_name(ds: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit_card(ds, _escaping)
    with pytest.raises(ShardError, match=r"dataset.json: .*'(\.\./)+etc/passwd'.*escapes the dataset folder"):
        mmdata.inspect(ds)
    code, _, err = _main(["inspect", str(ds)], capsys)
    assert code == 2 and err.startswith("error: ") and "etc/passwd" in err


@pytest.mark.parametrize("edit", [_drop_last, _as_string, _twice])
def test_inspect_warns_about_a_damaged_card_shard_list(ds: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    _edit_card(ds, edit)
    warnings = [w["message"] for w in mmdata.inspect(ds)["warnings"] if w["kind"] == "card"]
    assert len(warnings) == 1 and warnings[0].startswith(f"{idx.CARD}: split 'train'")
    assert "mmdata verify" in warnings[0]


# ---- 2. index and shards-table edits the readers rely on ---------------------------------------
def test_verify_fails_on_a_renamed_index_key(ds: Path) -> None:
    _edit_index(ds, lambda rows: rows[1].update(key="zzz"))
    rep = mmdata.verify(ds)
    (p,) = _problems(rep, idx.INDEX)
    assert p["problem"] == "row of key 'zzz' lists members that are not <key>.<ext> of that key"
    assert p["expected"] == "zzz.<ext>" and p["found"] == "'000001.cls', '000001.flac', '000001.png', '000001.txt'"


def test_verify_fails_on_a_duplicated_index_key(ds: Path) -> None:
    _edit_index(ds, lambda rows: rows.insert(1, dict(rows[0])))
    rep = mmdata.verify(ds)
    problems = [(p["problem"], p["found"]) for p in _problems(rep, idx.INDEX)]
    assert ("key '000000' has more than one row", "2 rows") in problems, problems


def test_verify_compares_index_member_sizes_with_the_tar_headers(ds: Path) -> None:
    def grow(rows: list[dict[str, Any]]) -> None:
        rows[4]["sizes"][2] += 100
    _edit_index(ds, grow)
    rows = pq.read_table(ds / idx.INDEX).to_pylist()
    shard, member, size = rows[4]["shard"], rows[4]["members"][2], rows[4]["sizes"][2]
    rep = mmdata.verify(ds)
    (p,) = _problems(rep, shard)
    assert member in p["problem"] and idx.INDEX in p["problem"]
    assert (p["expected"], p["found"]) == (f"{size - 100} bytes (tar header)", f"{size} bytes ({idx.INDEX})")


def test_verify_compares_the_tar_headers_of_a_dataset_at_a_url(ds: Path) -> None:
    """At a URL the header walk reads the stream the sha256 reads."""
    import fsspec

    def grow(rows: list[dict[str, Any]]) -> None:
        rows[4]["sizes"][2] += 100
    fs = fsspec.filesystem("memory")
    url = f"memory://verify-qa-{ds.parent.name}/ds"
    fs.put(str(ds), url.removeprefix("memory://"), recursive=True)
    try:
        assert mmdata.verify(url)["ok"]
        _edit_index(ds, grow)
        fs.pipe(f"{url}/{idx.INDEX}".removeprefix("memory://"), (ds / idx.INDEX).read_bytes())
        assert [p["shard"] for p in mmdata.verify(url)["problems"]] == [mmdata.verify(ds)["problems"][0]["shard"]]
    finally:
        fs.rm(url.removeprefix("memory://"), recursive=True)


def test_verify_names_a_tar_member_renamed_outside_the_folder(ds: Path) -> None:
    _rewrite_shard(ds, "train-000001.tar",
                   lambda ti, data: ("../005.txt" if ti.name == "000005.txt" else ti.name, data))
    rep = mmdata.verify(ds)
    assert not rep["ok"]
    text = " | ".join(p["problem"] for p in _problems(rep, "train-000001.tar"))
    assert "'../005.txt'" in text and "escaping path" in text and "'000005.txt'" in text, text


def test_deep_verify_compares_the_index_label_with_the_label_member(ds: Path) -> None:
    def relabel(rows: list[dict[str, Any]]) -> None:
        rows[0]["label"] = (rows[0]["label"] + 1) % 3
    _edit_index(ds, relabel)
    # a label is in no tar header: plain verify sees it only in the card's per-class counts (QA 2026-12-04)
    (p,) = mmdata.verify(ds)["problems"]
    assert p["shard"] == idx.CARD and p["problem"].startswith("samples per class of index.parquet disagree with")
    rep = mmdata.verify(ds, deep=True)
    (p,) = _problems(rep, "train-000000.tar")
    assert "'000000'" in p["problem"] and "000000.cls" in p["problem"] and idx.INDEX in p["problem"]


def test_a_duplicated_shards_table_row_fails_verify_and_is_counted_once_by_inspect(ds: Path) -> None:
    before = mmdata.inspect(ds)["shards"]
    t = pq.read_table(ds / idx.SHARDS).to_pylist()
    idx.write_shards_table(ds, t + [t[1]])
    rep = mmdata.verify(ds)
    assert rep["checked"] == 4
    (p,) = _problems(rep, idx.SHARDS)
    assert "train-000001.tar" in p["problem"] and p["found"] == "2 rows"
    code, out = _cli(["verify", str(ds)])
    assert code == 1 and "4 shards" not in out
    rep = mmdata.inspect(ds)
    assert rep["shards"] == before
    assert any(w["kind"] == "shards" and "train-000001.tar" in w["message"] for w in rep["warnings"])


# ---- 3. inspect on an index missing a column -----------------------------------------------------
@pytest.mark.parametrize("column", ["key", "split", "members", "sizes", "label", "modalities", "image_height",
                                    "image_width", "audio_seconds", "audio_sample_rate", "text_chars"])
def test_inspect_names_a_missing_index_column(ds: Path, column: str, capsys: pytest.CaptureFixture[str]) -> None:
    pq.write_table(pq.read_table(ds / idx.INDEX).drop_columns([column]), ds / idx.INDEX)
    with pytest.raises(ShardError, match=rf"{ds}/{idx.INDEX}: no column '{column}'; it has \["):
        mmdata.inspect(ds)
    code, _, err = _main(["inspect", str(ds)], capsys)
    assert code == 2 and f"no column '{column}'" in err and "Traceback" not in err


def test_inspect_does_without_the_optional_index_columns(ds: Path) -> None:
    pq.write_table(pq.read_table(ds / idx.INDEX).drop_columns(["image_mode", "image_channels", "audio_channels"]),
                   ds / idx.INDEX)
    assert mmdata.inspect(ds)["samples"] == 12


# ---- 4. messages ---------------------------------------------------------------------------------
def test_truncated_shard_says_what_the_expected_number_counts(ds: Path) -> None:
    t = ds / "train-000001.tar"
    t.write_bytes(t.read_bytes()[:1500])
    (p,) = [p for p in _problems(mmdata.verify(ds), "train-000001.tar") if p["problem"] == "unreadable"]
    members = pq.read_table(ds / idx.SHARDS).to_pylist()[1]["members"]
    assert p["expected"] == f"{members} members"


def test_a_folder_in_place_of_a_shard_is_not_a_file(ds: Path) -> None:
    (ds / "train-000002.tar").unlink()
    (ds / "train-000002.tar").mkdir()
    (p,) = _problems(mmdata.verify(ds), "train-000002.tar")
    assert p["problem"] == "not a file" and p["found"] == "a folder"


def test_deep_verify_reasons_are_deterministic_and_name_the_member(ds: Path) -> None:
    _rewrite_shard(ds, "train-000000.tar",
                   lambda ti, data: (ti.name, b"x" * len(data) if ti.name == "000001.png" else data))
    rep = mmdata.verify(ds, deep=True)
    crc, p = _problems(rep, "train-000000.tar")  # the bytes changed (member_crc32), then do not decode
    assert (crc["key"], crc["member"]) == ("000001", "000001.png") and "CRC-32" in crc["problem"]
    assert (p["key"], p["member"]) == ("000001", "000001.png")
    text = f"{p['problem']} {p['expected']} {p['found']}"
    assert "0x" not in text and "object at" not in text, text
    assert p["problem"] == "member does not decode" and p["expected"] == "000001.png"
    assert p["found"].startswith("not decodable: cannot decode .png member as an image")
    assert "000001.png" not in p["found"]  # QA: "expected X, found member X" read like a name mismatch
    assert rep == mmdata.verify(ds, deep=True)


@pytest.mark.parametrize("cmd", ["verify", "inspect"])
def test_a_path_that_does_not_exist_is_named_so(tmp_path: Path, cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _main([cmd, str(tmp_path / "nope")], capsys)
    assert code == 2 and f"{tmp_path / 'nope'}: does not exist" in err and "dataset.json" not in err


@pytest.mark.parametrize("cmd", ["verify", "inspect"])
def test_json_errors_are_json_on_stdout(tmp_path: Path, cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _main([cmd, str(tmp_path / "nope"), "--json"], capsys)
    rep = json.loads(out)
    assert code == 2 and rep["ok"] is False and "does not exist" in rep["error"] and rep["exit_code"] == 2 and "error:" in err


def test_verify_json_problems_keep_exit_1(ds: Path) -> None:
    _edit_card(ds, _drop_last)
    res = CliRunner().invoke(app, ["verify", str(ds), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["ok"] is False


def test_intact_datasets_still_pass_and_inspect_has_no_new_warnings(dataset: Path, columns_dataset: Path) -> None:
    for d in (dataset, columns_dataset):
        assert mmdata.verify(d, deep=True)["ok"]
        assert not [w for w in mmdata.inspect(d)["warnings"] if w["kind"] in ("card", "shards")]


def test_verify_walks_the_headers_of_long_and_non_ascii_member_names(tmp_path: Path) -> None:
    """Names over 100 bytes (extended headers) miss the one-pass layout check; the header walk then
    finds them equal to the index, and a size edit is still caught."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for stem in ("x" * 130 + "1", "é" * 60 + "2", "plain3"):
        (raw / f"{stem}.txt").write_text(f"hello {stem[-1]}")
        (raw / f"{stem}.cls").write_text("1")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert mmdata.verify(tmp_path / "ds", deep=True)["ok"]

    def grow(rows: list[dict[str, Any]]) -> None:
        rows[0]["sizes"][1] += 1
    _edit_index(tmp_path / "ds", grow)
    (p,) = mmdata.verify(tmp_path / "ds")["problems"]
    assert "a size other than its tar header" in p["problem"]


def test_inspect_survives_index_member_names_verify_fails(ds: Path) -> None:
    """A member name without an extension (an edited index) is verify's to report; inspect does not crash."""
    _edit_index(ds, lambda rows: rows[0].update(members=["zzz", None, *rows[0]["members"][2:]]))
    assert mmdata.inspect(ds)["samples"] == 12
    assert not mmdata.verify(ds)["ok"]


def test_verify_leaves_out_a_dataset_folder_inside_the_dataset(tmp_path: Path) -> None:
    """Docs walkthrough 2026-12-02: the README shards into data/ and then builds data/avdigits inside it;
    verify data/ reported every shard of the nested dataset as 'a shard file the index does not list'."""
    raw = make_sample_folder(tmp_path / "raw", n=6, missing=False)
    mmdata.shard(raw, tmp_path / "data", maxcount=3, progress=False)
    mmdata.shard(raw, tmp_path / "data" / "inner", maxcount=3, progress=False)
    assert verify(tmp_path / "data")["ok"]
    (tmp_path / "data" / "stray").mkdir()
    shutil.copy(tmp_path / "data" / "train-000000.tar", tmp_path / "data" / "stray" / "x.tar")
    r = verify(tmp_path / "data")
    assert [(p["shard"], p["problem"]) for p in r["problems"]] == [("stray/x.tar", NOT_LISTED)]


def test_a_label_outside_the_cards_classes_is_a_bad_label_on_read(ds: Path) -> None:
    """A shard whose ``.cls`` was edited apart from its index (999 with 3 classes) would hand the model a
    target it has no output for (cross-entropy: "Target 999 is out of bounds", no key named): the reader
    raises naming the shard and the key (the default), or counts it as a bad label naming the sample."""
    classes = idx.load_card(ds)["num_classes"]
    shard = idx.load_card(ds)["splits"]["train"]["shards"][0]
    victim = next(s.key for s in mmdata.open_dataset(ds, decode=False) if s.meta["shard"].endswith(shard))
    # the member keeps its size (one the index does not give it is refused as damage before its label is read)
    size = len(next(s for s in mmdata.open_dataset(ds, decode=False) if s.key == victim)["cls"])
    bad = b"9" * size
    assert int(bad) >= classes
    _rewrite_shard(ds, shard, lambda ti, data: (ti.name, bad if ti.name == f"{victim}.cls" else data))
    reader = mmdata.open_dataset(ds, on_error="skip")
    got = {s.key: s.get("label") for s in reader}
    assert victim not in got and all(0 <= v < classes for v in got.values() if v is not None)
    assert reader.skipped == {"bad label": 1}
    assert [(k, "outside the card" in m) for _, k, m in reader.errors] == [(victim, True)]
    with pytest.raises(ShardError, match=rf"{shard}.*{victim}.*label {int(bad)} is outside the card's {classes} classes"):
        list(mmdata.open_dataset(ds, on_error="raise"))
    raw = {s.key: s for s in mmdata.open_dataset(ds, decode=False)}  # undecoded bytes pass as they are
    assert raw[victim]["cls"] == bad
