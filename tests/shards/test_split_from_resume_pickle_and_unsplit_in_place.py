"""Review E of QA round 34's ``--split-from`` fixes: the ``relabelled`` count without the earlier card (F1), an
interrupted in-place reshard that resumes (F2), a report that pickles (F3), an in-place reshard without ``--split``
(F4) and the no-CRC warning's cause for a remote or a damaged earlier folder (F5)."""

from __future__ import annotations

import copy
import json
import pickle
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mmdata.errors import SourceError
from mmdata.shards.writer import CardText, _no_crc_warning
from tests.shards.test_split_from_upgrade_and_card_privacy import _card, _shard, _splits, _tree


def _move(src: Path, stem: str, to: str) -> None:
    for f in list(src.glob(f"*/{stem}.*")):
        shutil.move(str(f), src / to / f.name)


SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2}


def test_split_from_an_index_alone_does_not_count_every_sample_relabelled(tmp_path: Path) -> None:
    src = _tree(tmp_path / "raw")
    _shard(src, tmp_path / "v1", split=SPLIT)
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tmp_path / "v1" / "index.parquet", alone / "index.parquet")
    _shard(src, tmp_path / "v2", split=SPLIT, split_from=alone / "index.parquet")
    got = _card(tmp_path / "v2")["split_from"]
    assert got["earlier_samples"] == 20 and got["removed"] == 0
    assert got["relabelled"] is None  # the earlier class names are unknown: not counted, not 20
    assert "relabelled" not in json.dumps(got.get("changes", {}))


def _interrupted_then_resumed(tmp_path: Path) -> tuple[Path, dict]:
    src = _tree(tmp_path / "raw")
    ds = tmp_path / "ds"
    _shard(src, ds, split=SPLIT, maxcount=2, license="CC-BY-4.0")
    val = sorted(k for k, s in _splits(ds).items() if s == "val")[-1]
    good = (src / f"{val}.wav").read_bytes()
    (src / f"{val}.wav").write_bytes(b"RIFF not a wav")
    with pytest.raises(SourceError):
        _shard(src, ds, split=SPLIT, maxcount=2, split_from=ds, on_error="raise")
    assert not (ds / "dataset.json").exists()
    (src / f"{val}.wav").write_bytes(good)
    return ds, _shard(src, ds, split=SPLIT, maxcount=2, split_from=ds, on_error="raise")


def test_a_resumed_in_place_reshard_writes_the_card_a_clean_run_writes(tmp_path: Path) -> None:
    ds, rep = _interrupted_then_resumed(tmp_path / "a")
    clean = tmp_path / "b"
    _tree(clean / "raw")
    _shard(clean / "raw", clean / "ds", split=SPLIT, maxcount=2, license="CC-BY-4.0")
    _shard(clean / "raw", clean / "ds", split=SPLIT, maxcount=2, split_from=clean / "ds")
    got, want = _card(ds), _card(clean / "ds")
    assert got["license"] == "CC-BY-4.0"
    assert got["split_from"] == want["split_from"] and got["split_from"]["relabelled"] == 0
    assert got["split_from"]["name"] == "ds" and got["split_from"]["fingerprint"] is not None
    assert got["warnings"] == want["warnings"]
    assert not any(p.name.startswith(".mmdata-earlier") for p in ds.iterdir())  # gone once the card is written


def test_a_resumed_reshard_without_split_from_still_warns_of_moved_splits(tmp_path: Path) -> None:
    src = _tree(tmp_path / "raw")
    ds = tmp_path / "ds"
    _shard(src, ds, split=SPLIT, maxcount=2)
    val = sorted(k for k, s in _splits(ds).items() if s == "val")[-1]
    good = (src / f"{val}.wav").read_bytes()
    (src / f"{val}.wav").write_bytes(b"RIFF not a wav")
    with pytest.raises(SourceError):
        _shard(src, ds, split=SPLIT, seed=1, maxcount=2, on_error="raise")
    (src / f"{val}.wav").write_bytes(good)
    rep = _shard(src, ds, split=SPLIT, seed=1, maxcount=2, on_error="raise")
    assert any("held an earlier version" in w for w in rep["warnings"])


def test_card_text_and_a_report_holding_it_pickle_and_copy() -> None:
    w = CardText("kept ('cat/a' -> 'a')", "kept (now 'a')")
    for back in (pickle.loads(pickle.dumps(w)), copy.copy(w), copy.deepcopy(w)):
        assert str(back) == str(w) and back.card == w.card


def _moved_job(base: str) -> int:
    root = Path(base)
    src = _tree(root / "raw")
    _shard(src, root / "v1", split=SPLIT)
    test = sorted(k for k, s in _splits(root / "v1").items() if s == "test" and k.startswith("cat/"))[0]
    _move(src, test.split("/")[1], "dog")
    rep = _shard(src, root / "v2", split=SPLIT, split_from=root / "v1")
    assert not any(isinstance(w, CardText) for w in rep["warnings"])  # plain data
    return len(rep["warnings"])


def test_shard_with_split_from_runs_in_a_process_pool(tmp_path: Path) -> None:
    with ProcessPoolExecutor(1) as pool:
        assert pool.submit(_moved_job, str(tmp_path)).result() >= 1


def test_reshard_in_place_without_split_says_earlier_test_samples_went_to_train(tmp_path: Path) -> None:
    src = _tree(tmp_path / "raw")
    ds = tmp_path / "ds"
    _shard(src, ds, split=SPLIT)
    rep = _shard(src, ds)  # no --split: every sample to train
    shown = [w for w in rep["warnings"] if "held an earlier version" in w]
    assert len(shown) == 1 and "test -> train: 4" in shown[0] and "without --split" in shown[0]
    assert not [w for w in _card(ds)["warnings"] if "held an earlier version" in w]  # the job's note, not the data's


def test_the_no_crc_warning_names_the_cause_of_a_remote_or_a_local_folder() -> None:
    remote = _no_crc_warning("v1", ["a"], remote=True)
    assert "remote" in remote and "copy" in remote.lower() and "whole folder" not in remote
    local = _no_crc_warning("v1", ["a"], remote=False)
    assert "damaged" in local and "whole folder" in local


def test_split_from_a_folder_with_a_damaged_shard_says_so(tmp_path: Path) -> None:
    src = _tree(tmp_path / "raw")
    _shard(src, tmp_path / "v1", split=SPLIT)
    t = pq.read_table(tmp_path / "v1" / "index.parquet")
    pq.write_table(t.drop(["member_crc32"]), tmp_path / "v1" / "index.parquet")
    for tar in (tmp_path / "v1").glob("*.tar"):
        tar.write_bytes(b"\0" * 10)
    test = sorted(k for k, s in _splits(tmp_path / "v1").items() if s == "test" and k.startswith("cat/"))[0]
    _move(src, test.split("/")[1], "dog")
    rep = _shard(src, tmp_path / "v2", split=SPLIT, split_from=tmp_path / "v1")
    assert any("damaged" in w and "no member CRC-32s" in w for w in rep["warnings"])
