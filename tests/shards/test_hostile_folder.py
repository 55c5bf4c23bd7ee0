"""Hostile dataset folders: files that are not regular files (a FIFO blocks the open forever), an
index.parquet of millions of junk rows in a few hundred KB, a card or index of other types than mmdata
writes, shards linked from outside the folder, split names that cannot name shard files. Each ends in a
ShardError naming the file (the CLI: one ``error:`` line, exit 2), a counted skip, or a verify problem
— never a hang, a raw traceback or gigabytes of rows. See docs/bad-input-read.md."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.errors import ShardError
from mmdata.shards import index as idx
from mmdata.shards.reader import open_dataset
from mmdata.testing import make_sample_folder

RECIPE = {"image": [{"op": "hflip", "p": 1.0}]}


class _Hung(BaseException):
    """Raised by :func:`_deadline`: not an Exception (nor an OSError, as TimeoutError is), so no
    ``except Exception`` / ``except OSError`` of the code under test turns it into a retry."""


@contextlib.contextmanager
def _deadline(seconds: int = 30) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``: SIGALRM
    interrupts a blocked ``open()`` of a FIFO and the handler's exception ends it."""
    def expire(*_: Any) -> None:
        raise _Hung(f"still running after {seconds} s: the reader hangs")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("hostile")
    raw = make_sample_folder(t / "raw", n=8, missing=False)
    mmdata.shard(raw, t / "ds", maxcount=2, split="train=0.5,val=0.5", progress=False)
    mmdata.shard(raw, t / "cols", maxcount=4, layout="columns", progress=False)
    return {"samples": t / "ds", "columns": t / "cols"}


@pytest.fixture
def ds(built: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(built["samples"], tmp_path / "ds"))


def _listed(ds: Path, shard: str) -> int:
    """Samples the index lists in ``shard``."""
    return sum(1 for s in pq.read_table(ds / idx.INDEX, columns=["shard"])["shard"].to_pylist() if s == shard)


def _fifo(p: Path) -> None:
    p.unlink()
    os.mkfifo(p)


def _edit_card(ds: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    card = json.loads((ds / idx.CARD).read_text())
    edit(card)
    (ds / idx.CARD).write_text(json.dumps(card))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed entry point in a fresh process (a traceback would show on stderr)."""
    return subprocess.run([sys.executable, "-m", "mmdata.cli.main", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "400"})


def _one_error_line(res: subprocess.CompletedProcess[str], *says: str) -> None:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert all(s in lines[0] for s in says), lines[0]


# ---- 6. a FIFO (or any non-regular file) is refused before it is opened ------------------------------
def test_a_fifo_shard_is_refused_by_the_readers_naming_it(ds: Path) -> None:
    shard = "train-000000.tar"
    lost = _listed(ds, shard)
    _fifo(ds / shard)
    with _deadline():
        with pytest.raises(ShardError, match=r"train-000000\.tar: a FIFO \(named pipe\), not a regular file"):
            list(open_dataset(ds))
        with pytest.raises(ShardError, match=r"train-000000\.tar: a FIFO"):
            list(open_dataset(ds, decode=False))  # the in-order raw path maps shards itself
        skip = open_dataset(ds, on_error="skip")
        got = [s.key for s in skip]
        assert len(got) == 4 - lost and skip.skipped == {"truncated or corrupt shard": lost}
        assert any("FIFO" in msg for _, _, msg in skip.errors)
        rep = mmdata.verify(ds)
        (p,) = [p for p in rep["problems"] if p["shard"] == shard]
        assert p["problem"] == "not a file" and p["found"] == "a FIFO (named pipe), not a regular file"
        assert mmdata.inspect(ds)["samples"] == 8  # reads no shard
        with pytest.raises(ShardError, match="FIFO"):
            augment_dataset(ds, ds.parent / "aug", RECIPE, progress=False)


def test_a_fifo_shard_is_refused_by_to_hf(ds: Path, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    _fifo(ds / "train-000000.tar")
    with _deadline(), pytest.raises(ShardError, match=r"train-000000\.tar: a FIFO"):
        mmdata.to_hf(ds, "train", cache_dir=tmp_path / "hf")


def test_a_fifo_column_series_shard_is_refused(built: dict[str, Path], tmp_path: Path) -> None:
    ds = Path(shutil.copytree(built["columns"], tmp_path / "cols"))
    _fifo(ds / "image" / "train-000000.tar")
    with _deadline():
        with pytest.raises(ShardError, match=r"image/train-000000\.tar: a FIFO"):
            list(open_dataset(ds))
        skip = open_dataset(ds, on_error="skip")
        assert len(list(skip)) == 8 - 4 and skip.skipped == {"truncated or corrupt shard": 4}


def test_a_bare_fifo_shard_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "a.tar")
    with _deadline(), pytest.raises(ShardError, match=r"a\.tar: a FIFO"):
        list(open_dataset(str(tmp_path / "a.tar")))


@pytest.mark.parametrize("name", [idx.CARD, idx.INDEX, idx.SHARDS])
def test_a_fifo_metadata_file_is_refused_by_every_reader(ds: Path, name: str) -> None:
    _fifo(ds / name)
    says = rf"{name}: a FIFO \(named pipe\), not a regular file"
    readers: dict[str, Callable[[], Any]] = {
        "open_dataset": lambda: list(open_dataset(ds)), "inspect": lambda: mmdata.inspect(ds),
        "augment": lambda: augment_dataset(ds, ds.parent / "aug", RECIPE, progress=False)}
    if importlib.util.find_spec("datasets") is not None:  # the [hf] extra (it said "no dataset.json")
        readers["to_hf"] = lambda: mmdata.to_hf(ds, "train", cache_dir=ds.parent / "hf")
    if name == idx.SHARDS:
        for reader in ("open_dataset", "augment", "to_hf"):  # they do not read shards.parquet
            readers.pop(reader, None)
    with _deadline():
        for read in readers.values():
            with pytest.raises(ShardError, match=says):
                read()
        if name in (idx.INDEX, idx.SHARDS):  # verify reports an unreadable index or shards table (exit 1), naming why
            (p,) = [p for p in mmdata.verify(ds)["problems"] if p["shard"] == name]
            assert "FIFO" in p["found"]
        else:
            with pytest.raises(ShardError, match=says):
                mmdata.verify(ds)


# ---- 8. the index's row count is checked against the card before any row is read ---------------------
def _junk_rows(ds: Path, n: int) -> None:
    """Add ``n`` rows of a junk split to index.parquet: dictionary-encoded and zstd, a few hundred KB."""
    t = pq.read_table(ds / idx.INDEX)
    cols = {f.name: pa.nulls(n, f.type) for f in t.schema}
    cols["key"] = pa.array([f"j{i}" for i in range(n)])
    cols["split"] = pa.array(["junk"] * n)
    cols["shard"] = pa.array(["junk-000000.tar"] * n)
    cols["members"] = pa.array([[]] * n, pa.list_(pa.string()))
    cols["sizes"] = pa.array([[]] * n, pa.list_(pa.int64()))
    junk = pa.table([cols[f.name] for f in t.schema], schema=t.schema)
    pq.write_table(pa.concat_tables([t, junk]), ds / idx.INDEX, compression="zstd", use_dictionary=True)


def test_an_index_of_junk_rows_is_refused_naming_both_counts(ds: Path) -> None:
    _junk_rows(ds, 200_000)
    assert (ds / idx.INDEX).stat().st_size < 2_000_000
    says = r"index\.parquet: holds 200008 rows, but dataset\.json lists 8 samples"
    with pytest.raises(ShardError, match=says):
        open_dataset(ds)
    with pytest.raises(ShardError, match=says):
        mmdata.inspect(ds)  # used to load every row, then TypeError
    with pytest.raises(ShardError, match=says):
        augment_dataset(ds, ds.parent / "aug", RECIPE, progress=False)
    rep = mmdata.verify(ds)
    (p,) = [p for p in rep["problems"] if p["shard"] == idx.INDEX]
    assert p["problem"] == "unreadable" and "holds 200008 rows" in p["found"] and "the 8 samples" in p["found"]
    _one_error_line(_cli("inspect", str(ds)), "index.parquet", "200008", "8 samples")


def test_a_few_extra_index_rows_are_refused_by_readers_and_listed_by_verify(ds: Path) -> None:
    _junk_rows(ds, 3)
    with pytest.raises(ShardError, match=r"holds 11 rows, but dataset\.json lists 8 samples"):
        list(open_dataset(ds, on_error="skip"))
    problems = {p["problem"] for p in mmdata.verify(ds)["problems"] if p["shard"] == idx.INDEX}
    assert "rows of split 'junk', which dataset.json does not list" in problems  # read row by row


def test_a_shards_table_of_junk_rows_is_refused(ds: Path) -> None:
    t = pq.read_table(ds / idx.SHARDS)
    n = 100_000
    junk = pa.table({f.name: pa.array(["x"] * n) if f.name in ("shard", "split", "sha256") else pa.nulls(n, f.type)
                     for f in t.schema}, schema=t.schema)
    pq.write_table(pa.concat_tables([t, junk]), ds / idx.SHARDS, compression="zstd")
    with pytest.raises(ShardError, match=r"shards\.parquet: holds 100004 rows, far more than the 4 shards"):
        mmdata.inspect(ds)
    # verify: a problem found (exit 1), as for a damaged index (QA 2026-12-04: it was exit 2 here, 1 there)
    (p,) = mmdata.verify(ds)["problems"]
    assert p["shard"] == idx.SHARDS and p["problem"] == "unreadable"
    assert re.search(r"shards\.parquet: holds 100004 rows, far more than the 4 shards", p["found"])


# ---- 9. the card's and the index's types are checked when they are loaded ---------------------------
def _set(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(card: dict[str, Any]) -> None:
        node = card
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return edit


CARD_EDITS = [
    ("'splits': expected an object", _set("splits", value=[{"samples": 4}])),
    ("'splits.train': expected an object", _set("splits", "train", value="train-000000.tar")),
    ("'splits.train.shards': expected a list of strings", _set("splits", "train", "shards", value="t")),
    ("'splits.train.shards[0]': expected a string", _set("splits", "train", "shards", value=[["a"]])),
    ("'splits.train.samples': expected a count", _set("splits", "train", "samples", value="4")),
    ("'label_names': expected a list of strings", _set("label_names", value={"0": "cat"})),
    ("'modalities': expected an object", _set("modalities", value=["image", "audio"])),
    ("'num_classes': expected a count", _set("num_classes", value=[3])),
    ("'layout': expected 'samples' or 'columns'", _set("layout", value="rows")),
    ("'fields': expected a list of strings", _set("fields", value="image")),
    ("'hf.columns': expected an object", _set("hf", value={"columns": ["x"]})),
]


@pytest.mark.parametrize(("says", "edit"), CARD_EDITS, ids=[s.split("'")[1] for s, _ in CARD_EDITS])
def test_a_card_key_of_another_type_is_a_shard_error_naming_it(ds: Path, says: str,
                                                                edit: Callable[[dict[str, Any]], None]) -> None:
    _edit_card(ds, edit)
    match = rf"dataset\.json: {re.escape(says)}.*found"
    with pytest.raises(ShardError, match=match):
        open_dataset(ds)
    with pytest.raises(ShardError, match=match):
        augment_dataset(ds, ds.parent / "aug", RECIPE, progress=False)
    if "shards" in says:  # inspect warns, verify reports (exit 1): the readers' shard lists
        assert not mmdata.verify(ds)["ok"]
        return
    with pytest.raises(ShardError, match=match):
        mmdata.inspect(ds)
    with pytest.raises(ShardError, match=match):
        mmdata.verify(ds)


def test_to_hf_names_a_card_key_of_another_type(ds: Path, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    _edit_card(ds, _set("modalities", value=["image", "audio"]))
    with pytest.raises(ShardError, match=r"dataset\.json: 'modalities': expected an object"):
        mmdata.to_hf(ds, "train", cache_dir=tmp_path / "hf")
    _edit_card(ds, _set("modalities", value={}))
    _edit_card(ds, _set("splits", "train", value="x"))
    with pytest.raises(ShardError, match=r"dataset\.json: 'splits\.train': expected an object"):
        mmdata.to_hf(ds, "train", cache_dir=tmp_path / "hf")


@pytest.mark.parametrize(("text", "says"), [
    ('{"format": "mmdata/1", "splits": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"format": "mmdata/1", "num_classes": ' + "7" * 5000 + ', "splits": {}}', "Exceeds the limit"),
], ids=["nested-100k", "5000-digits"])
def test_hostile_json_in_the_card_is_a_shard_error(ds: Path, text: str, says: str) -> None:
    (ds / idx.CARD).write_text(text)
    for read in (lambda: open_dataset(ds), lambda: mmdata.inspect(ds), lambda: mmdata.verify(ds)):
        with pytest.raises(ShardError, match=rf"dataset\.json: .*{says}"):
            read()
    _one_error_line(_cli("verify", str(ds)), "dataset.json", says)


def test_a_card_of_another_type_is_one_error_line_in_the_cli(ds: Path) -> None:
    _edit_card(ds, _set("splits", value=["train"]))
    _one_error_line(_cli("inspect", str(ds)), "dataset.json: 'splits': expected an object", "found a JSON array")


@pytest.mark.parametrize(("column", "values", "says"), [
    ("key", lambda n: pa.array(range(n), pa.int64()), "column 'key' holds int64, expected string"),
    ("members", lambda n: pa.array(["a.png"] * n), "column 'members' holds string, expected list<string>"),
    ("sizes", lambda n: pa.array([["1"]] * n), "column 'sizes' holds list<element: string>, expected list<int64>"),
])
def test_an_index_column_of_another_type_is_a_shard_error_naming_it(ds: Path, column: str,
                                                                    values: Callable[[int], Any], says: str) -> None:
    t = pq.read_table(ds / idx.INDEX)
    pq.write_table(t.set_column(t.schema.get_field_index(column), column, values(t.num_rows)), ds / idx.INDEX)
    match = rf"index\.parquet: {re.escape(says)}"
    with pytest.raises(ShardError, match=match):
        list(open_dataset(ds))
    with pytest.raises(ShardError, match=match):
        mmdata.inspect(ds)
    (p,) = [p for p in mmdata.verify(ds)["problems"] if p["shard"] == idx.INDEX]
    assert p["problem"] == "unreadable" and says in p["found"]
    if column == "key":
        _one_error_line(_cli("inspect", str(ds)), "index.parquet", says)


# ---- 10. a listed shard that resolves outside the dataset folder -------------------------------------
def test_a_shard_linked_from_outside_the_folder_is_refused_and_reported(ds: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    shard = "train-000000.tar"
    lost = _listed(ds, shard)
    shutil.move(str(ds / shard), secret / "private.tar")
    (ds / shard).symlink_to(secret / "private.tar")
    says = rf"{shard}: a link to {secret / 'private.tar'}, outside the dataset folder"
    with pytest.raises(ShardError, match=says):
        list(open_dataset(ds))
    skip = open_dataset(ds, on_error="skip")
    assert len(list(skip)) == 4 - lost and skip.skipped == {"truncated or corrupt shard": lost}
    rep = mmdata.verify(ds)
    (p,) = [p for p in rep["problems"] if p["shard"] == shard]
    assert p["problem"].startswith("a link to a file outside the dataset folder")
    assert p["found"] == str(secret / "private.tar")
    with pytest.raises(ShardError, match=says):
        augment_dataset(ds, tmp_path / "aug", RECIPE, progress=False)
    assert not (tmp_path / "aug" / shard).exists()


@pytest.mark.ray
@pytest.mark.parametrize("how", ["link out", "fifo"])
def test_ray_augment_planning_refuses_a_shard_the_local_reader_refuses(ds: Path, tmp_path: Path, how: str,
                                                                       ray_cluster) -> None:  # noqa: ANN001
    """`--executor ray` plans from the card and index, then its tasks open the listed shards blindly:
    the planner refuses a shard linked from outside the folder or a FIFO with the reader's message,
    before any task starts or anything is written."""
    shard = "train-000000.tar"
    if how == "fifo":
        _fifo(ds / shard)
        says = rf"shard {ds / shard}: a FIFO \(named pipe\), not a regular file; expected a shard"
    else:
        (tmp_path / "secret").mkdir()
        shutil.move(str(ds / shard), tmp_path / "secret" / "private.tar")
        (ds / shard).symlink_to(tmp_path / "secret" / "private.tar")
        says = rf"shard {ds / shard}: a link to {tmp_path / 'secret' / 'private.tar'}, outside the dataset folder"
    with _deadline(), pytest.raises(ShardError, match=says):
        augment_dataset(ds, tmp_path / "aug", RECIPE, progress=False, executor="ray")
    assert not (tmp_path / "aug").exists()


def test_a_shard_linked_to_a_system_file_is_refused_without_reading_it(ds: Path) -> None:
    (ds / "train-000000.tar").unlink()
    (ds / "train-000000.tar").symlink_to("/etc/passwd")
    with pytest.raises(ShardError, match=r"train-000000\.tar: a link to /etc/passwd") as exc:
        list(open_dataset(ds))
    assert "root:" not in str(exc.value) and "tar file" not in str(exc.value)  # no bytes of the file quoted


def test_a_shard_linked_inside_the_folder_is_read(ds: Path) -> None:
    (ds / "store").mkdir()
    shutil.move(str(ds / "train-000000.tar"), ds / "store" / "real.bin")
    (ds / "train-000000.tar").symlink_to(Path("store") / "real.bin")
    assert len(list(open_dataset(ds))) == 4
    assert mmdata.verify(ds)["ok"]


# ---- 11. split names from the card are checked as `mmdata shard` checks its own ------------------------
def test_splits_differing_only_in_case_are_reported_and_refused(ds: Path, tmp_path: Path) -> None:
    _edit_card(ds, lambda c: c["splits"].__setitem__("TRAIN", dict(c["splits"]["train"])))
    problems = [p["problem"] for p in mmdata.verify(ds)["problems"] if p["shard"] == idx.CARD]
    assert any("splits 'TRAIN' and 'train' differ only in case" in p for p in problems), problems
    with pytest.raises(ShardError, match=r"dataset\.json: splits 'TRAIN' and 'train' differ only in case"):
        augment_dataset(ds, tmp_path / "aug", RECIPE, splits=["train", "TRAIN"], progress=False)
    assert not (tmp_path / "aug").exists()


@pytest.mark.parametrize("name", ["../../ESCAPED", "/abs", ".hidden"])
def test_a_split_name_that_cannot_name_shard_files_is_reported_and_refused(ds: Path, tmp_path: Path,
                                                                           name: str) -> None:
    _edit_card(ds, lambda c: c["splits"].__setitem__(name, c["splits"].pop("val")))
    rep = mmdata.verify(ds)
    assert not rep["ok"]
    problems = [p["problem"] for p in rep["problems"] if p["shard"] == idx.CARD]
    assert f"split {name!r} cannot name shard files" in " ".join(problems), problems
    with pytest.raises(ShardError, match=rf"dataset\.json: split '{name}' cannot name shard files"):
        augment_dataset(ds, tmp_path / "aug", RECIPE, progress=False)
