"""`mmdata shard SHARDS OUT` over WebDataset shards (QA round 25, B-D4 / B-D1 / B-D3): members kept as they
are, keys kept (as source_key), labels from .cls, splits from a <split>- prefix, else --split."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.errors import MMDataError, SourceError
from mmdata.shards.inspect import inspect
from mmdata.testing import audio_bytes, image_bytes


def _sample(i: int) -> tuple[str, dict[str, bytes]]:
    key = f"v1.0/spk{i % 3}/utt_{i:04d}" if i % 2 else f"clip_{i:04d}"
    members = {"cls": str(i % 3).encode(), "txt": f"hello {i} ünï".encode(),
               # the bytes as a webdataset writer wrote them: spaces after ':' and ','
               "json": json.dumps({"id": i, "speaker": f"s{i % 3}"}).encode()}
    if i % 3 == 0:
        members["jpg"] = image_bytes(i, fmt="jpeg")
    elif i % 3 == 1:
        members["png"] = image_bytes(i)
    if i % 4:
        members["flac"] = audio_bytes(i)
    return key, members


def _write_tar(path: Path, samples: list[tuple[str, dict[str, bytes]]]) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for key, members in samples:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    path.write_bytes(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)
    return path


def _series(folder: Path, names: list[str], per: int = 5) -> dict[str, tuple[str, dict[str, bytes]]]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for s, name in enumerate(names):
        samples = [_sample(s * per + j) for j in range(per)]
        _write_tar(folder / name, samples)
        written.update({k: (name, m) for k, m in samples})
    return written


def _stored(out: Path) -> dict[str, dict[str, bytes]]:
    """source key -> the members of its sample as stored in the output's tars."""
    rows = pq.read_table(out / "index.parquet").to_pylist()
    by_key = {r["key"]: r["source_key"] for r in rows}
    got: dict[str, dict[str, bytes]] = {}
    for tar in sorted(out.glob("*.tar")):
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                key, ext = m.name.split(".", 1)
                got.setdefault(by_key[key], {})[ext] = tf.extractfile(m).read()
    return got


def test_pattern_of_shards_becomes_a_dataset_folder_with_bytes_and_keys_kept(tmp_path: Path) -> None:
    written = _series(tmp_path / "w", ["shard-000.tar", "shard-001.tar", "shard-002.tar.gz"])
    rep = mmdata.shard(str(tmp_path / "w" / "shard-{000..001}.tar"), tmp_path / "out", progress=False)
    assert rep["samples"] == 10 and rep["splits"] == {"train": 10}
    stored = _stored(tmp_path / "out")
    expected = {k: m for k, (name, m) in written.items() if not name.endswith(".gz")}
    assert set(stored) == set(expected)  # every key kept, 'v1.0/spk1/utt_0001' included (as source_key)
    for key, members in expected.items():
        assert stored[key] == members  # no re-encoding: JPEG stays that JPEG, .json the bytes written, .cls
    # read back: the label is the .cls class id, the dotted-folder key is the sample's source key
    ds = mmdata.open_dataset(tmp_path / "out")
    labels = {s.key: s["label"] for s in ds}
    rows = {r["key"]: r["source_key"] for r in pq.read_table(tmp_path / "out" / "index.parquet").to_pylist()}
    assert {rows[k]: v for k, v in labels.items()} == {k: int(m["cls"]) for k, m in expected.items()}
    # a single .tar.gz, and a glob, work the same way
    assert mmdata.shard(str(tmp_path / "w" / "shard-002.tar.gz"), tmp_path / "gz", progress=False)["samples"] == 5
    assert mmdata.shard(str(tmp_path / "w" / "shard-*"), tmp_path / "glob", progress=False)["samples"] == 15


def test_folder_of_split_named_shards_keeps_its_splits(tmp_path: Path) -> None:
    written = _series(tmp_path / "sp", ["train-000.tar", "train-001.tar", "val-000.tar"])
    (tmp_path / "sp" / ".Trash").mkdir()
    _write_tar(tmp_path / "sp" / ".Trash" / "old.tar", [_sample(99)])  # a hidden folder is not read
    rep = mmdata.shard(tmp_path / "sp", tmp_path / "out", progress=False)
    assert rep["splits"] == {"train": 10, "val": 5}
    val_keys = {k for k, (name, _) in written.items() if name.startswith("val")}
    rows = pq.read_table(tmp_path / "out" / "index.parquet").to_pylist()
    assert {r["source_key"] for r in rows if r["split"] == "val"} == val_keys
    # the shards' own splits and --split fractions do not mix
    with pytest.raises(SourceError, match="names give their splits"):
        mmdata.shard(tmp_path / "sp", tmp_path / "out2", split="train=0.5,val=0.5", progress=False)


def test_a_split_per_subfolder_keeps_its_splits_as_the_reader_reads_them(tmp_path: Path) -> None:
    """QA25 R1-11: ``ds/train/*.tar`` + ``ds/Validation/*.tar`` (many webdataset repositories) became one
    train split; the reader and ``mmdata shard`` now read a subfolder's name as the split, as file names."""
    train = _series(tmp_path / "ds" / "train", ["000.tar", "001.tar"])
    samples = [_sample(100 + j) for j in range(3)]  # keys of their own
    (tmp_path / "ds" / "Validation").mkdir()
    _write_tar(tmp_path / "ds" / "Validation" / "shard-0.tar", samples)
    val = dict(samples)
    rep = mmdata.shard(tmp_path / "ds", tmp_path / "out", progress=False)
    assert rep["splits"] == {"train": len(train), "val": len(val)}
    rows = pq.read_table(tmp_path / "out" / "index.parquet").to_pylist()
    assert {r["source_key"] for r in rows if r["split"] == "val"} == set(val)
    assert {s.key for s in mmdata.open_dataset(tmp_path / "ds", split="val")} == set(val)


def test_split_fractions_for_unsplit_shards_and_a_mixed_series_is_refused(tmp_path: Path) -> None:
    _series(tmp_path / "w", ["shard-000.tar", "shard-001.tar"])
    rep = mmdata.shard(str(tmp_path / "w" / "shard-{000..001}.tar"), tmp_path / "out", split="train=0.5,val=0.5",
                       progress=False)
    assert sum(rep["splits"].values()) == 10 and set(rep["splits"]) == {"train", "val"}
    _series(tmp_path / "mix", ["train-000.tar", "shard-001.tar"])
    with pytest.raises(SourceError, match="shard-001.tar"):
        mmdata.shard(tmp_path / "mix", tmp_path / "out2", progress=False)


def test_shard_source_errors_name_what_to_do(tmp_path: Path) -> None:
    _series(tmp_path / "w", ["shard-000.tar", "shard-001.tar"])
    with pytest.raises(SourceError, match=r"4 shards of the pattern do not exist.*shard-002.tar"):
        mmdata.shard(str(tmp_path / "w" / "shard-{000..005}.tar"), tmp_path / "o1", progress=False)
    with pytest.raises(SourceError, match="matches no shard"):
        mmdata.shard(str(tmp_path / "w" / "nope-*.tar"), tmp_path / "o2", progress=False)
    with pytest.raises(SourceError, match="--meta"):
        mmdata.shard(str(tmp_path / "w" / "shard-000.tar"), tmp_path / "o3", meta=["speaker"], progress=False)
    # one key in two shards: both shards named
    _write_tar(tmp_path / "w" / "shard-002.tar", [_sample(0)])
    with pytest.raises(SourceError, match=r"shard-000.tar.*shard-002.tar"):
        mmdata.shard(str(tmp_path / "w" / "shard-*.tar"), tmp_path / "o4", progress=False)


def test_the_messages_that_prescribe_mmdata_shard_now_hold(tmp_path: Path) -> None:
    """blend's and open_dataset(keys=)'s advice for bare shards: `mmdata shard SHARDS OUT` then works."""
    _series(tmp_path / "w", ["shard-000.tar", "shard-001.tar"])
    pattern = str(tmp_path / "w" / "shard-{000..001}.tar")
    with pytest.raises(MMDataError, match="mmdata shard SHARDS OUT"):
        mmdata.open_dataset(pattern, keys=["clip_0000"])
    mmdata.shard(pattern, tmp_path / "ds", progress=False)
    assert [s.key for s in mmdata.open_dataset(tmp_path / "ds", keys=["clip_0000"])] == ["clip_0000"]


def test_inspect_splits_member_names_as_the_reader_does(tmp_path: Path) -> None:
    """B-D1: a key with a dot in a folder ('v1.0/spk1/utt_0001'): bytes per real field, no target-size warnings."""
    _series(tmp_path / "w", ["shard-000.tar"], per=8)
    # augment of bare shards keeps such keys verbatim in the output's members
    recipe = tmp_path / "seed.yaml"
    recipe.write_text("seed: 0\n")
    from mmdata.augment.offline import augment_dataset

    augment_dataset(str(tmp_path / "w" / "shard-000.tar"), tmp_path / "conv", recipe, copies=0, keep_original=True,
                    progress=False)
    rep = inspect(tmp_path / "conv")
    assert set(rep["bytes_per_modality"]) <= {"audio", "image", "json", "label", "text"}, rep["bytes_per_modality"]
    assert not [w for w in rep["warnings"] if w["kind"] == "target sizes"]


def test_augment_advice_for_splitting_bare_shards_holds(tmp_path: Path) -> None:
    """offline.py's advice: two --split over bare shards -> shard them into a dataset folder, then augment it."""
    from mmdata.augment.offline import augment_dataset

    _series(tmp_path / "sp", ["train-000.tar", "val-000.tar"])
    recipe = tmp_path / "seed.yaml"
    recipe.write_text("seed: 0\n")
    with pytest.raises(MMDataError, match=r"mmdata shard SHARDS DS: the splits their names give"):
        augment_dataset(str(tmp_path / "sp" / "*.tar"), tmp_path / "o", recipe, splits=["train", "val"],
                        progress=False)
    mmdata.shard(tmp_path / "sp", tmp_path / "ds", progress=False)
    rep = augment_dataset(tmp_path / "ds", tmp_path / "aug", recipe, copies=0, keep_original=True,
                          splits=["train", "val"], progress=False)
    assert rep["splits"] == {"train": 5, "val": 5}


def test_verify_reads_bare_shards_through_and_inspect_says_what_to_do(tmp_path: Path) -> None:
    """B-D3: verify / inspect of a pattern, a tar or a folder of tars said 'does not exist' (the files exist)."""
    from typer.testing import CliRunner

    from mmdata.cli.main import app
    from mmdata.errors import ShardError
    from mmdata.shards.verify import verify

    _series(tmp_path / "w", ["shard-000.tar", "shard-001.tar.gz"])
    for src in (str(tmp_path / "w" / "shard-{000.tar,001.tar.gz}"), str(tmp_path / "w" / "shard-*"),
                str(tmp_path / "w" / "shard-001.tar.gz"), str(tmp_path / "w")):
        rep = verify(src, deep=True)
        assert rep["ok"] and rep["bare"], (src, rep)
        assert rep["samples"] == (5 if src.endswith(".gz") else 10)
        with pytest.raises(ShardError, match=r"not a dataset folder but \d WebDataset shards? without an index.*mmdata shard .* OUT"):
            inspect(src)
    # damage is found and named: a key in two shards, a .cls that is no class id (--deep), a truncated .tar.gz
    _write_tar(tmp_path / "w" / "shard-002.tar", [_sample(0)])
    bad = _sample(7)
    _write_tar(tmp_path / "w" / "shard-003.tar", [("odd", {**bad[1], "cls": b"dog"})])
    gz = (tmp_path / "w" / "shard-001.tar.gz").read_bytes()
    (tmp_path / "w" / "shard-004.tar.gz").write_bytes(gz[: len(gz) // 2])
    rep = verify(str(tmp_path / "w" / "shard-*"), deep=True)
    assert not rep["ok"]
    by_shard = {Path(p["shard"]).name: p for p in rep["problems"]}
    assert "also in shard" in by_shard["shard-002.tar"]["problem"] and by_shard["shard-002.tar"]["key"] == "clip_0000"
    assert "dog" in by_shard["shard-003.tar"]["problem"]
    assert "shard-004.tar.gz" in by_shard and "unreadable" in by_shard["shard-004.tar.gz"]["problem"]
    assert not verify(str(tmp_path / "w" / "shard-003.tar"))["problems"]  # without --deep nothing is decoded
    # the CLI: exit 1 with the problems, 0 and the count on clean shards
    res = CliRunner().invoke(app, ["verify", str(tmp_path / "w" / "shard-{000.tar,001.tar.gz}")])
    assert res.exit_code == 0 and "10 samples" in res.output, res.output
    res = CliRunner().invoke(app, ["verify", "--deep", str(tmp_path / "w" / "shard-*")])
    assert res.exit_code == 1 and "also in shard" in res.output
    res = CliRunner().invoke(app, ["inspect", str(tmp_path / "w" / "nope-*.tar")])
    assert isinstance(res.exception, ShardError) and "matches no shard" in str(res.exception)


def test_class_names_in_cls_members_with_a_names_file_or_labels(tmp_path: Path) -> None:
    """A .cls holding a class name: labels.txt beside the tars (as for raw data) or --labels gives its id; without
    names the member is a listed skip and the sample is kept unlabelled."""
    (tmp_path / "w").mkdir()
    _write_tar(tmp_path / "w" / "a.tar", [("x0", {"txt": b"a", "cls": b"dog"}), ("x1", {"txt": b"b", "cls": b"cat"})])
    rep = mmdata.shard(tmp_path / "w" / "a.tar", tmp_path / "o1", progress=False)
    assert rep["samples"] == 2 and [s["sample"] for s in rep["skipped"]] == ["x0", "x1"]
    (tmp_path / "w" / "labels.txt").write_text("cat\ndog\n")
    mmdata.shard(tmp_path / "w", tmp_path / "o2", progress=False)
    assert {s.key: s["label"] for s in mmdata.open_dataset(tmp_path / "o2")} == {"x0": 1, "x1": 0}
    assert mmdata.open_dataset(tmp_path / "o2").label_names == ["cat", "dog"]
    mmdata.shard(tmp_path / "w" / "a.tar", tmp_path / "o3", label_names=["dog", "cat"], progress=False)
    assert {s.key: s["label"] for s in mmdata.open_dataset(tmp_path / "o3")} == {"x0": 0, "x1": 1}
