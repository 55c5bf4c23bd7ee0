"""QA 2026-12-04 (a maintainer shipping new versions of a dataset): with one --seed / --split, a version
with a few samples added and removed moved ~17% of the shared samples between splits (test -> train
leakage). ``--split-by key`` and ``--split-from OLD`` keep them; the default split is unchanged. The
card names how the split was drawn, the options that shaped the data and the command (D1, D5, D6);
``shard`` refuses a non-empty folder that is not an mmdata dataset (D4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.shards import index as idx
from mmdata.shards.writer import key_split, shard_command

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "mmdata.cli.main"]
SPLIT = "train=0.8,val=0.1,test=0.1"
CLASSES = ("bird", "cat", "dog", "frog")


def _raw(root: Path, numbers: range | list[int]) -> Path:
    """Class folders of one-line text samples ``<class>/s0000.txt`` (a folder source, labels from folders)."""
    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in numbers:
            (root / name / f"s{i:04d}.txt").write_text(f"a {name} number {i}\n")
    return root


def _splits(ds: Path) -> dict[str, str]:
    t = pq.read_table(ds / idx.INDEX, columns=["key", "split"]).to_pydict()
    return dict(zip(t["key"], t["split"]))


def _moved(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return sorted(k for k in set(a) & set(b) if a[k] != b[k])


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """v1: 50 samples per class; v2: the first 2 of each class removed, 5 added."""
    t = tmp_path_factory.mktemp("versions")
    return _raw(t / "raw1", range(50)), _raw(t / "raw2", range(2, 55))


# ---- D1: stable split assignment across versions ---------------------------------------------------
def test_the_default_split_moves_shared_samples_between_versions(versions: tuple[Path, Path], tmp_path: Path) -> None:
    """The reproduction: the stratified default (kept byte-identical: the avdigits data and the demo depend
    on it) draws per-class permutations, so a new version moves shared samples; the card says so."""
    raw1, raw2 = versions
    mmdata.shard(raw1, tmp_path / "v1", split=SPLIT, seed=7, progress=False)
    mmdata.shard(raw2, tmp_path / "v2", split=SPLIT, seed=7, progress=False)
    assert len(_moved(_splits(tmp_path / "v1"), _splits(tmp_path / "v2"))) > 10
    assert idx.load_card(tmp_path / "v2")["split_method"] == "label"


def test_split_by_key_keeps_every_shared_sample_in_its_split(versions: tuple[Path, Path], tmp_path: Path) -> None:
    raw1, raw2 = versions
    for raw, out in ((raw1, "v1"), (raw2, "v2")):
        mmdata.shard(raw, tmp_path / out, split=SPLIT, seed=7, split_by="key", progress=False)
    a, b = _splits(tmp_path / "v1"), _splits(tmp_path / "v2")
    assert len(set(a) & set(b)) == 4 * 48 and _moved(a, b) == []
    counts = {s: list(b.values()).count(s) for s in ("train", "val", "test")}
    assert all(counts.values()) and counts["train"] > counts["val"] + counts["test"]  # close to 80 / 10 / 10
    card = idx.load_card(tmp_path / "v2")
    assert card["split_method"] == "key" and card["options"]["split"] == {"train": 0.8, "val": 0.1, "test": 0.1}
    # another seed draws other splits; the same seed the same ones
    mmdata.shard(raw2, tmp_path / "v2s", split=SPLIT, seed=8, split_by="key", progress=False)
    assert _moved(b, _splits(tmp_path / "v2s"))
    assert mmdata.verify(tmp_path / "v2")["ok"]


def test_key_split_is_a_function_of_key_seed_and_fractions_alone() -> None:
    fr = {"train": 0.8, "val": 0.1, "test": 0.1}
    got = [key_split(f"k{i}", fr, seed=3) for i in range(4000)]
    assert got == [key_split(f"k{i}", fr, seed=3) for i in range(4000)]
    share = got.count("train") / len(got)
    assert 0.77 < share < 0.83
    assert {key_split(f"k{i}", {"train": 0.5, "val": 0.0, "test": 0.5}, seed=3) for i in range(200)} == {"train", "test"}


def test_split_by_key_keeps_a_group_together(tmp_path: Path) -> None:
    rows = ["key,text,speaker"] + [f"r{i},hello {i},spk{i % 7}" for i in range(70)]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", split="train=0.5,test=0.5", group_by="speaker", split_by="key",
                 progress=False)
    t = pq.read_table(tmp_path / "ds" / idx.INDEX, columns=["source_key", "split"]).to_pydict()
    by_speaker: dict[int, set[str]] = {}
    for key, split in zip(t["source_key"], t["split"]):
        by_speaker.setdefault(int(key[1:]) % 7, set()).add(split)
    assert all(len(s) == 1 for s in by_speaker.values())


def test_split_from_keeps_the_old_splits_and_splits_the_new_samples(versions: tuple[Path, Path],
                                                                   tmp_path: Path) -> None:
    raw1, raw2 = versions
    mmdata.shard(raw1, tmp_path / "v1", split=SPLIT, seed=7, progress=False)
    old = _splits(tmp_path / "v1")
    for given in (tmp_path / "v1", tmp_path / "v1" / idx.INDEX):  # the folder or its index
        rep = mmdata.shard(raw2, tmp_path / "v2", split=SPLIT, seed=7, split_from=given, progress=False)
        new = _splits(tmp_path / "v2")
        assert _moved(old, new) == [] and len(new) == 4 * 53
        card = idx.load_card(tmp_path / "v2")
        fp = idx.load_card(tmp_path / "v1")["fingerprint"]
        got = {k: v for k, v in card["split_from"].items() if k not in ("earlier_samples", "removed", "relabelled",
                                                                        "changes")}
        assert got == {"name": "v1", "fingerprint": fp, "kept": 4 * 48, "new": 4 * 5}
        gone = len(old) - 4 * 48  # QA34 gdpr #10: the removal is counted in the card
        assert card["split_from"]["earlier_samples"] == len(old) and card["split_from"]["removed"] == gone
        assert card["split_method"] == "label" and str(tmp_path) not in json.dumps(card["split_from"])
        assert any("20 samples without a split of their own" in w and "--split-from" in w for w in rep["warnings"])
    # shipping v2 over v1 in the same folder: the old index is read before anything is written
    mmdata.shard(raw2, tmp_path / "v1", split=SPLIT, seed=7, split_from=tmp_path / "v1", progress=False)
    assert _moved(old, _splits(tmp_path / "v1")) == []


def test_split_from_a_missing_or_foreign_index_is_a_clear_error(versions: tuple[Path, Path], tmp_path: Path) -> None:
    raw1, _ = versions
    with pytest.raises(SourceError, match=r"--split-from \(split_from=\) .*nope: does not exist; expected an "
                                          r"earlier version's dataset folder or its index.parquet"):
        mmdata.shard(raw1, tmp_path / "ds", split=SPLIT, split_from=tmp_path / "nope", progress=False)
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(SourceError, match=r"--split-from .*x.parquet: not a readable Parquet file"):
        mmdata.shard(raw1, tmp_path / "ds", split=SPLIT, split_from=tmp_path / "x.parquet", progress=False)
    with pytest.raises(SourceError, match=r"--split-by \(split_by=\) must be one of \('label', 'key'\), got 'hash'"):
        mmdata.shard(raw1, tmp_path / "ds", split=SPLIT, split_by="hash", progress=False)
    assert not (tmp_path / "ds").exists()


def test_cli_split_by_key_and_split_from(versions: tuple[Path, Path], tmp_path: Path) -> None:
    raw1, raw2 = versions
    for args in (["--split-by", "key"], ["--split-from", str(tmp_path / "k1")]):
        tag = "k" if args[0] == "--split-by" else "f"
        if tag == "k":
            res = _cli("shard", str(raw1), str(tmp_path / "k1"), "--split", SPLIT, "--seed", "7", *args)
            assert res.returncode == 0, res.stderr
        res = _cli("shard", str(raw2), str(tmp_path / f"{tag}2"), "--split", SPLIT, "--seed", "7", *args)
        assert res.returncode == 0, res.stderr
        assert _moved(_splits(tmp_path / "k1"), _splits(tmp_path / f"{tag}2")) == []


# ---- D5 / D6: what the card records -----------------------------------------------------------------
def test_the_card_records_the_options_version_command_license_and_name(tmp_path: Path) -> None:
    raw = _raw(tmp_path / "raw", range(3))
    (tmp_path / "names.txt").write_text("\n".join(CLASSES) + "\n")
    res = _cli("shard", str(raw), str(tmp_path / "out"), "--split", "train=0.5,test=0.5", "--seed", "3",
               "--labels", str(tmp_path / "names.txt"), "--name", "birds-v2", "--license", "CC-BY-4.0",
               "--description", "Four classes, one line each.", "-j", "2")
    assert res.returncode == 0, res.stderr
    card = idx.load_card(tmp_path / "out")
    assert card["name"] == "birds-v2" and card["license"] == "CC-BY-4.0"
    assert card["description"] == "Four classes, one line each."
    assert card["mmdata_version"] == mmdata.__version__
    assert card["source_options"] == {"columns": None, "group_by": None, "labels": "names.txt",
                                      "labels_from_folders": None, "meta": None, "paths": None, "root": None}
    assert card["command"] == ("mmdata shard SRC OUT --split train=0.5,test=0.5 --seed 3 --labels names.txt "
                               "--name birds-v2 --license CC-BY-4.0 --description 'Four classes, one line each.'")
    assert str(tmp_path) not in (tmp_path / "out" / idx.CARD).read_text()  # no path of this machine
    # the same options from the library (any workers, another output folder) give the same card bytes
    mmdata.shard(str(raw), tmp_path / "again" / "out", split="train=0.5,test=0.5", seed=3,
                 label_names=str(tmp_path / "names.txt"), name="birds-v2", license="CC-BY-4.0",
                 description="Four classes, one line each.", progress=False)
    assert (tmp_path / "again" / "out" / idx.CARD).read_bytes() == (tmp_path / "out" / idx.CARD).read_bytes()


def test_the_card_records_manifest_options(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("id,caption,speaker\na,hello,s1\nb,bye,s2\n")
    mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", columns={"key": "id", "text": "caption"}, meta=["speaker"],
                 progress=False)
    card = idx.load_card(tmp_path / "ds")
    assert card["source_options"]["columns"] == {"key": "id", "text": "caption"}
    assert card["source_options"]["meta"] == ["speaker"] and card["split_method"] is None
    assert card["command"] == "mmdata shard SRC OUT --column key=id --column text=caption --meta speaker"
    assert card["license"] is None and card["description"] is None


def test_shard_command_names_only_the_options_that_differ() -> None:
    assert shard_command() == "mmdata shard SRC OUT"
    assert shard_command(max_file_size=None, labels_from_folders=False, check="decode") == (
        "mmdata shard SRC OUT --no-labels-from-folders --max-file-size none --check decode")


def test_a_name_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"--name \(name=\): expected a string, got int 3"):
        mmdata.shard(_raw(tmp_path / "raw", range(2)), tmp_path / "ds", name=3, progress=False)  # type: ignore[arg-type]


# ---- D4: a foreign non-empty output folder ------------------------------------------------------------
def test_a_foreign_non_empty_output_folder_is_refused_naming_its_files(tmp_path: Path) -> None:
    raw = _raw(tmp_path / "raw", range(3))
    out = tmp_path / "theirs"
    out.mkdir()
    (out / "train-000000.tar").write_bytes(b"someone else's shard")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SourceError, match=r"output folder .*theirs: not an mmdata dataset and not empty: it holds 2 "
                                          r"entries \(train-000000.tar, notes.txt\); a job would replace "
                                          r"train-000000.tar; .*--force"):
        mmdata.shard(raw, out, progress=False)
    assert (out / "train-000000.tar").read_bytes() == b"someone else's shard"
    res = _cli("shard", str(raw), str(out))
    assert res.returncode == 2 and "train-000000.tar" in res.stderr and "--force" in res.stderr, res.stderr
    assert (out / "train-000000.tar").read_bytes() == b"someone else's shard"
    res = _cli("shard", str(raw), str(out), "--force")
    assert res.returncode == 0, res.stderr
    assert (out / "notes.txt").read_text() == "mine" and mmdata.verify(out)["ok"]


def test_an_empty_folder_a_dataset_and_an_interrupted_job_are_written_as_before(tmp_path: Path) -> None:
    raw = _raw(tmp_path / "raw", range(3))
    (tmp_path / "empty").mkdir()
    mmdata.shard(raw, tmp_path / "empty", progress=False)  # an empty folder
    mmdata.shard(raw, tmp_path / "empty", maxcount=2, progress=False)  # a dataset: replaced
    assert idx.load_card(tmp_path / "empty")["options"]["maxcount"] == 2
    (tmp_path / "empty" / idx.CARD).unlink()  # as a job killed after it removed the card leaves the folder
    mmdata.shard(raw, tmp_path / "empty", maxcount=2, progress=False)
    assert mmdata.verify(tmp_path / "empty")["ok"]
