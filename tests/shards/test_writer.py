"""mmdata.shard: sources, determinism, parallel bytes, splits, resume, corrupt inputs, columns, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.errors import ShardError, SourceError
from mmdata.shards import index as idx
from mmdata.testing import audio_bytes, image_bytes, make_class_folders, make_sample_folder


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _job_stopped_in_shard_4(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A 12-sample folder whose sample 9 is broken, sharded 2 per shard with on_error=raise: the job
    stops in shard 4 after shards 0-3 finished. Returns (raw, out, the good bytes of 000009.png)."""
    raw = make_sample_folder(tmp_path / "raw", n=12, missing=False)
    out = tmp_path / "ds"
    good_png = (raw / "000009.png").read_bytes()
    (raw / "000009.png").write_bytes(b"broken")
    with pytest.raises(SourceError, match="000009"):
        mmdata.shard(raw, out, maxcount=2, on_error="raise", progress=False)
    return raw, out, good_png


def _keys(ds_path: Path, split: str = "train") -> list[str]:
    return [s.key for s in mmdata.open_dataset(ds_path, split=split, decode=False)]


def test_folder_samples_and_members(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=12)
    rep = mmdata.shard(raw, tmp_path / "ds", maxcount=5, progress=False)
    assert rep["samples"] == 12 and rep["shards"] == 3
    with tarfile.open(tmp_path / "ds" / "train-000000.tar") as tf:
        names = tf.getnames()
        assert names[:4] == ["000000.cls", "000000.flac", "000000.png", "000000.txt"]
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in tf.getmembers())
    rows = idx.load_index(tmp_path / "ds").to_pylist()
    r3 = next(r for r in rows if r["key"] == "000003")
    assert r3["modalities"] == ["image", "label", "text"]  # audio missing stays missing
    assert r3["image_height"] == 24 and r3["image_width"] == 32 and r3["label"] == 0
    r0 = rows[0]
    assert r0["audio_seconds"] == pytest.approx(0.25) and r0["audio_sample_rate"] == 8000
    card = idx.load_card(tmp_path / "ds")
    assert card["counts"]["samples"] == 12 and card["splits"]["train"]["shards"][0] == "train-000000.tar"
    assert card["modalities"]["image"]["codecs"] == ["png"]


def test_odd_stems_stay_one_sample(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=6, odd_stems=True, nested=True)
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    rows = idx.load_index(tmp_path / "ds").to_pylist()
    assert len(rows) == 6
    src = {r["source_key"] for r in rows}
    assert "part0/café 0.v2 #0" in src
    for r in rows:
        assert "." not in r["key"] and "/" not in r["key"]
        assert {"image", "label"} <= set(r["modalities"])


def test_class_folders(tmp_path: Path) -> None:
    raw = make_class_folders(tmp_path / "raw", per_class=3)
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    card = idx.load_card(tmp_path / "ds")
    assert card["label_names"] == ["bird", "cat", "dog"]
    labels = {s.meta["shard"] and s["label"] for s in mmdata.open_dataset(tmp_path / "ds")}
    assert labels == {0, 1, 2}


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_manifests(tmp_path: Path, kind: str) -> None:
    media = tmp_path / "m"
    media.mkdir()
    rows = []
    for i in range(6):
        (media / f"im{i}.jpg").write_bytes(image_bytes(i, fmt="jpg"))
        (media / f"au{i}.wav").write_bytes(audio_bytes(i, fmt="wav"))
        rows.append({"key": f"s.{i}", "image": f"m/im{i}.jpg", "audio": f"m/au{i}.wav" if i != 2 else None,
                     "text": f"caption {i}", "label": ["cat", "dog"][i % 2]})
    df = pd.DataFrame(rows)
    path = tmp_path / f"manifest.{kind}"
    if kind == "csv":
        df.to_csv(path, index=False)
    elif kind == "jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path)
    mmdata.shard(path, tmp_path / "ds", progress=False)
    samples = {s.meta["shard"] and idx_key: s for idx_key, s in ((s.key, s) for s in mmdata.open_dataset(tmp_path / "ds"))}
    assert len(samples) == 6
    card = idx.load_card(tmp_path / "ds")
    assert card["label_names"] == ["cat", "dog"]
    rows_ = idx.load_index(tmp_path / "ds").to_pylist()
    by_src = {r["source_key"]: r for r in rows_}
    assert by_src["s.2"]["modalities"] == ["image", "label", "text"]
    s = samples[by_src["s.1"]["key"]]
    assert s["text"] == "caption 1" and s["label"] == 1 and s["image"].shape[0] == 3 and s.sample_rate == 8000


def test_manifest_errors_name_row_and_column(tmp_path: Path) -> None:
    pd.DataFrame([{"image": "missing.png", "label": 1}]).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(SourceError, match=r"row 1, column 'image': missing.png: file not found"):
        mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", on_error="raise", progress=False)
    pd.DataFrame([{"image": "../escape.png"}]).to_csv(tmp_path / "e.csv", index=False)
    with pytest.raises(SourceError, match="escapes"):
        mmdata.shard(tmp_path / "e.csv", tmp_path / "ds", on_error="raise", progress=False)
    with pytest.raises(SourceError, match="no samples found"):  # skipped and counted: nothing is left
        mmdata.shard(tmp_path / "e.csv", tmp_path / "ds", progress=False)


def test_a_metadata_column_is_named_once_in_the_warnings(tmp_path: Path) -> None:
    """QA 2026-12-02: extra manifest columns (a score, an author) are path columns, as documented, so
    every cell is a skipped "file not found"; one warning now says the column names no file at all."""
    (tmp_path / "m").mkdir()
    rows = []
    for i in range(3):
        (tmp_path / "m" / f"im{i}.png").write_bytes(image_bytes(i))
        rows.append({"image": f"m/im{i}.png", "score": f"0.{i + 5}", "author": "ユーザー",
                     "depth": "m/missing.npy" if i == 0 else f"m/im{i}.png"})
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    meta = [w for w in rep["warnings"] if "names a file" in str(w)]
    assert len(meta) == 2 and all("pass --meta" in str(w) for w in meta)
    # named with a count, never a cell value (QA27 B1: a column not kept put e-mail addresses into the card)
    assert any("column 'score': none of its 3 values" in str(w) and "'0.5'" not in str(w) for w in meta)
    assert any("column 'author'" in str(w) for w in meta)  # 'image' and 'depth' name files: no warning
    assert any("names a file" in str(w) for w in idx.load_card(tmp_path / "ds")["warnings"])


def test_byte_determinism_and_workers(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=20)
    opts = dict(maxcount=4, split="train=0.6,val=0.2,test=0.2", seed=3, progress=False)
    # same folder name: the card's default dataset name is the output folder's name
    mmdata.shard(raw, tmp_path / "a" / "ds", workers=1, **opts)
    mmdata.shard(raw, tmp_path / "b" / "ds", workers=1, **opts)
    mmdata.shard(raw, tmp_path / "c" / "ds", workers=2, **opts)
    a, b, c = (_tree_bytes(tmp_path / x / "ds") for x in "abc")
    assert a == b == c
    mmdata.shard(raw, tmp_path / "d" / "ds", workers=1, **{**opts, "seed": 4})
    assert _tree_bytes(tmp_path / "d" / "ds") != a


def test_split_stratified(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=60, missing=False)
    rep = mmdata.shard(raw, tmp_path / "ds", split="train=0.6,val=0.2,test=0.2", progress=False)
    assert rep["splits"] == {"train": 36, "val": 12, "test": 12}
    per = idx.load_card(tmp_path / "ds")
    rows = idx.load_index(tmp_path / "ds").to_pylist()
    for split, n in (("train", 12), ("val", 4), ("test", 4)):
        for c in range(3):
            assert sum(1 for r in rows if r["split"] == split and r["label"] == c) == n
    assert sum(per["splits"][s]["samples"] for s in per["splits"]) == 60
    with pytest.raises(SourceError, match="sum to 1"):
        mmdata.shard(raw, tmp_path / "x", split="train=0.6,val=0.6", progress=False)


def test_maxsize_boundaries(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=10, missing=False)
    rep = mmdata.shard(raw, tmp_path / "ds", maxsize=8000, progress=False)
    assert rep["shards"] > 2
    assert sorted(_keys(tmp_path / "ds")) == [f"{i:06d}" for i in range(10)]


def test_corrupt_sources_skipped_and_counted(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=6, missing=False)
    (raw / "000001.png").write_bytes(b"not a png at all")
    (raw / "000002.txt").write_bytes(b"\xff\xfe bad utf8")
    (raw / "notes.zip").write_bytes(b"zip")
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert rep["samples"] == 6  # the bad files are left out, their samples keep the rest
    reasons = {s["source"]: s["reason"] for s in rep["skipped"]}
    assert "000001.png" in reasons and "000002.txt" in reasons and "notes.zip" in reasons
    assert idx.load_card(tmp_path / "ds")["skipped_count"] == 3
    with pytest.raises(SourceError, match="000001"):
        mmdata.shard(raw, tmp_path / "ds2", on_error="raise", progress=False)


def test_resume_after_killed_job(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=16)
    out = tmp_path / "ds"
    env = {**os.environ, "MMDATA_TEST_SHARD_DELAY": "0.6"}
    proc = subprocess.Popen([sys.executable, "-m", "mmdata.cli.main", "shard", str(raw), str(out), "--maxcount", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=Path(__file__).parents[2])
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("train-*.tar"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = sorted(p.name for p in out.glob("train-*.tar"))
    assert 2 <= len(done_before) < 8 and not (out / "index.parquet").exists()
    mmdata.shard(raw, out, maxcount=2, progress=False)
    mmdata.shard(raw, tmp_path / "clean" / "ds", maxcount=2, progress=False)
    assert _tree_bytes(out) == _tree_bytes(tmp_path / "clean" / "ds")
    keys = _keys(out)
    assert sorted(keys) == [f"{i:06d}" for i in range(16)] and len(set(keys)) == 16
    assert mmdata.verify(out)["ok"]


def test_resume_rechecks_finished_shards_and_their_sources(tmp_path: Path) -> None:
    """A re-run keeps finished shards whose file and sources are unchanged, rewrites the others."""
    raw, out, good_png = _job_stopped_in_shard_4(tmp_path)
    assert sorted(p.name for p in out.glob("train-*.tar")) == [f"train-{i:06d}.tar" for i in range(4)]
    (raw / "000009.png").write_bytes(good_png)
    (raw / "000001.txt").write_text("changed since the first run", encoding="utf-8")  # shard 0's source
    damaged = out / "train-000002.tar"
    damaged.write_bytes(damaged.read_bytes()[:1024])  # e.g. lost in a power cut (no --fsync)
    kept = {n: (out / n).stat().st_mtime_ns for n in ("train-000001.tar", "train-000003.tar")}
    mmdata.shard(raw, out, maxcount=2, on_error="raise", progress=False)
    assert {n: (out / n).stat().st_mtime_ns for n in kept} == kept  # not rewritten
    mmdata.shard(raw, tmp_path / "clean" / "ds", maxcount=2, on_error="raise", progress=False, fsync=True)
    assert _tree_bytes(out) == _tree_bytes(tmp_path / "clean" / "ds")
    texts = {s.key: s["text"] for s in mmdata.open_dataset(out)}
    assert texts["000001"] == "changed since the first run"


def test_resume_sees_an_edit_that_restored_the_mtime(tmp_path: Path) -> None:
    """``touch -r`` / ``cp -p`` / ``rsync -t`` leave size and mtime as they were; the ctime moves, and
    the finished shard of the edited file is rewritten (it was kept, with the old text, before)."""
    raw, out, good_png = _job_stopped_in_shard_4(tmp_path)
    (raw / "000009.png").write_bytes(good_png)
    src = raw / "000001.txt"
    before = src.stat()
    old = src.read_text(encoding="utf-8")
    time.sleep(0.01)  # a ctime tick later on filesystems with coarse timestamps
    src.write_text("x" * len(old), encoding="utf-8")  # same size
    os.utime(src, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime as it was
    after = src.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    if after.st_ctime_ns == before.st_ctime_ns:
        pytest.skip("this filesystem's ctime did not move")
    kept = (out / "train-000001.tar").stat().st_mtime_ns
    mmdata.shard(raw, out, maxcount=2, on_error="raise", progress=False)
    assert {s.key: s["text"] for s in mmdata.open_dataset(out)}["000001"] == "x" * len(old)
    assert (out / "train-000001.tar").stat().st_mtime_ns == kept  # the untouched shard is still kept
    mmdata.shard(raw, tmp_path / "clean" / "ds", maxcount=2, on_error="raise", progress=False)
    assert _tree_bytes(out) == _tree_bytes(tmp_path / "clean" / "ds")


def test_columns_layout_and_add_modality(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=10)
    mmdata.shard(raw, tmp_path / "ds", layout="columns", maxcount=4, progress=False)
    ds = tmp_path / "ds"
    series = {p.name for p in ds.iterdir() if p.is_dir()}
    assert series == {"image", "audio", "text", "label"}
    for s in series:
        assert sorted(p.name for p in (ds / s).iterdir()) == ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    samples = list(mmdata.open_dataset(ds))
    assert [s.key for s in samples] == [f"{i:06d}" for i in range(10)]
    assert "audio" not in samples[3] and "text" not in samples[4] and samples[0]["label"] == 0
    dep = tmp_path / "depth"
    dep.mkdir()
    for i in range(0, 10, 3):
        np.save(dep / f"{i:06d}.depth.npy", np.full((2, 2), i, np.float32))
    rep = mmdata.add_modality(ds, "depth", dep)
    assert rep["added"] == 4 and rep["missing"] == 6
    got = {s.key: s for s in mmdata.open_dataset(ds)}
    assert float(got["000003"]["depth"][0, 0]) == 3.0 and "depth" not in got["000001"]
    assert mmdata.verify(ds)["ok"]
    with pytest.raises(SourceError, match="already exists"):
        mmdata.add_modality(ds, "depth", dep)
    # only-text view never opens the image series
    (ds / "image" / "train-000000.tar").unlink()
    assert len(list(mmdata.open_dataset(ds, modalities=["text"]))) == 10


def test_cli_shard_inspect_verify(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    raw = make_sample_folder(tmp_path / "raw", n=8)
    runner = CliRunner()
    res = runner.invoke(app, ["shard", str(raw), str(tmp_path / "ds"), "--maxcount", "3", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["samples"] == 8
    res = runner.invoke(app, ["shard", str(raw), str(tmp_path / "durable" / "ds"), "--maxcount", "3", "--fsync", "--json"])
    assert res.exit_code == 0, res.output
    assert _tree_bytes(tmp_path / "durable" / "ds") == _tree_bytes(tmp_path / "ds")  # --fsync changes no byte
    res = runner.invoke(app, ["inspect", str(tmp_path / "ds"), "--json"])
    rep = json.loads(res.stdout)
    assert rep["samples"] == 8 and rep["patterns"]["audio+image+label+text"] == 5
    assert rep["audio_seconds"]["median"] == pytest.approx(0.25) and rep["shards"]["count"] == 3
    assert rep["per_class"]["train"] == {"0": 3, "1": 3, "2": 2}
    res = runner.invoke(app, ["inspect", str(tmp_path / "ds")])
    assert res.exit_code == 0 and "audio+image+label+text" in res.output
    assert runner.invoke(app, ["verify", str(tmp_path / "ds")]).exit_code == 0
    shard = tmp_path / "ds" / "train-000001.tar"
    data = bytearray(shard.read_bytes())
    data[700] ^= 0xFF
    shard.write_bytes(bytes(data))
    res = runner.invoke(app, ["verify", str(tmp_path / "ds")])
    assert res.exit_code == 1 and "train-000001.tar" in res.output and "sha256 mismatch" in res.output


def test_verify_missing_and_truncated(tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=8), tmp_path / "ds", maxcount=3, progress=False)
    ds = tmp_path / "ds"
    (ds / "train-000000.tar").unlink()
    t = ds / "train-000001.tar"
    t.write_bytes(t.read_bytes()[:1500])
    (ds / "stray.tar").write_bytes(b"")
    rep = mmdata.verify(ds)
    probs = {(p["shard"], p["problem"]) for p in rep["problems"]}
    assert ("train-000000.tar", "missing") in probs
    assert ("train-000001.tar", "sha256 mismatch") in probs and ("train-000001.tar", "unreadable") in probs
    assert ("stray.tar", "a shard file the index does not list (left from another job?)") in probs and not rep["ok"]
    from mmdata.cli.main import app

    res = CliRunner().invoke(app, ["verify", str(ds)])
    out = " ".join(res.output.split())
    assert res.exit_code == 1 and "stray.tar: a shard file the index does not list" in out and "None" not in out


def test_cli_error_is_one_line(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "shard", str(tmp_path / "nope"), str(tmp_path / "o")],
                         capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert res.returncode == 2 and "does not exist" in res.stderr and "Traceback" not in res.stderr


def test_verify_names_the_shards_table_when_a_listed_shard_escapes(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ds = Path(mmdata.shard(make_sample_folder(tmp_path / "raw", n=4), tmp_path / "ds", maxcount=3, progress=False)["out"])
    table = pq.read_table(ds / "shards.parquet")
    names = ["../" + n for n in table.column("shard").to_pylist()]
    pq.write_table(table.set_column(table.schema.get_field_index("shard"), "shard", pa.array(names)), ds / "shards.parquet")
    with pytest.raises(ShardError, match=r"/ds/shards.parquet: shard path '\.\./train-000000.tar' escapes"):
        mmdata.verify(ds)


# -- re-sharding into an existing dataset folder (new-user QA item 3) -------------------------------


def test_resharding_with_other_options_removes_the_old_jobs_shards(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    raw = make_sample_folder(tmp_path / "raw", n=30, missing=False)
    data = tmp_path / "data"
    runner = CliRunner()
    res = runner.invoke(app, ["shard", str(raw), str(data), "--split", "train=0.8,val=0.1,test=0.1",
                              "--maxcount", "20"])
    assert res.exit_code == 0, res.output
    assert (data / "test-000000.tar").is_file()
    (data / "mine-000001.tar").write_bytes(b"a user's own file: no job listed it")
    res = runner.invoke(app, ["shard", str(raw), str(data), "--split", "train=0.5,val=0.5", "--maxcount", "10"])
    assert res.exit_code == 0, res.output
    assert "removed 1 shard" in " ".join(res.output.split()) and "test-000000.tar" in res.output
    assert not (data / "test-000000.tar").exists() and (data / "mine-000001.tar").is_file()
    (data / "mine-000001.tar").unlink()
    assert mmdata.verify(data)["ok"]
    assert runner.invoke(app, ["verify", str(data)]).exit_code == 0
    mmdata.shard(raw, tmp_path / "clean" / "data", split="train=0.5,val=0.5", maxcount=10, progress=False)
    assert _tree_bytes(data) == _tree_bytes(tmp_path / "clean" / "data")  # as if written into an empty folder


def test_resharding_a_columns_dataset_as_samples_removes_its_series(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=12, missing=False)
    out = tmp_path / "ds"
    mmdata.shard(raw, out, layout="columns", maxcount=4, split="train=0.5,val=0.5", progress=False)
    assert (out / "image" / "val-000000.tar").is_file()
    rep = mmdata.shard(raw, out, maxcount=6, progress=False)
    assert len(rep["removed_stale"]) == 4 * 4  # 4 shards x image, audio, text, label series
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "dataset.json", "index.parquet", "shards.parquet", "train-000000.tar", "train-000001.tar"]
    assert mmdata.verify(out)["ok"]


def test_shards_of_an_unfinished_job_with_another_plan_are_removed(tmp_path: Path) -> None:
    raw, out, good_png = _job_stopped_in_shard_4(tmp_path)
    assert (out / "train-000003.tar").is_file() and not (out / "dataset.json").exists()
    (raw / "000009.png").write_bytes(good_png)
    rep = mmdata.shard(raw, out, maxcount=4, progress=False)  # another plan: train-000000..000002
    assert rep["removed_stale"] == ["train-000003.tar"]
    assert mmdata.verify(out)["ok"]
    mmdata.shard(raw, tmp_path / "clean" / "ds", maxcount=4, progress=False)
    assert _tree_bytes(out) == _tree_bytes(tmp_path / "clean" / "ds")


@pytest.mark.parametrize("maxsize", [30_000, 100_000])
def test_maxsize_bounds_the_shard_files(tmp_path: Path, maxsize: int) -> None:
    """A shard file (tar end marker and 10 KiB record padding included) stays within --maxsize; only a
    sample larger than the limit on its own makes a larger shard, alone."""
    raw = make_sample_folder(tmp_path / "raw", n=40, missing=False)
    rep = mmdata.shard(raw, tmp_path / "ds", maxsize=maxsize, progress=False)
    sizes = [(tmp_path / "ds" / n).stat().st_size for n in idx.load_shards_table(tmp_path / "ds")["shard"].to_pylist()]
    assert rep["shards"] > 1 and max(sizes) <= maxsize, sizes
    (raw / "000000.txt").write_bytes(b"x" * (maxsize + 1))  # one sample over the limit: a shard of its own
    mmdata.shard(raw, tmp_path / "big", maxsize=maxsize, progress=False)
    rows = idx.load_index(tmp_path / "big").to_pylist()
    assert [r["key"] for r in rows if r["shard"] == "train-000000.tar"] == ["000000"]


def test_an_unreachable_ray_cluster_leaves_no_output(tmp_path: Path) -> None:
    """`shard(..., executor="ray", address="auto")` with no cluster left `.mmdata-journal` and
    `.mmdata-lock` in a new folder (it connected only when the first shard task went out). A real
    failed `ray.init` in a fresh process: a Ray Client address where nothing listens (not "auto", which
    joins any Ray instance running on the machine, another test's included)."""
    pytest.importorskip("ray")
    raw = make_sample_folder(tmp_path / "raw", n=4)
    code = ("import mmdata, sys\n"
            "try:\n"
            f"    mmdata.shard({str(raw)!r}, {str(tmp_path / 'out')!r}, executor='ray', address='ray://127.0.0.1:1', progress=False)\n"
            "except mmdata.MMDataError as e:\n"
            "    print(e); sys.exit(3)\n")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 3, res.stderr[-2000:]
    assert "cannot connect to Ray at ray://127.0.0.1:1" in res.stdout
    assert not (tmp_path / "out").exists()
