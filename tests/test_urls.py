"""Paths as URLs (mmdata/urls.py): ``file://`` works wherever a path goes (shard, augment, reader,
ablation; CLI too), an ablation reads its dataset from a real non-local fsspec URL (an HTTP server on
127.0.0.1, read with fsspec's HTTP filesystem) — staged per node, every shard checked by sha256 — and
URLs that cannot work are clear errors naming what to do."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.ablate import run
from mmdata.ablate.testing import synthetic_recipe, synthetic_train
from mmdata.errors import MMDataError
from mmdata.testing import make_sample_folder
from mmdata.urls import stage_dataset

ROOT = Path(__file__).parents[1]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".mmdata-lock")}


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("urls")
    return Path(mmdata.shard(make_sample_folder(base / "raw", n=10), base / "ds", maxcount=4, progress=False)["out"])


@pytest.fixture
def http_root(ds: Path, tmp_path: Path, serve_folder) -> str:  # noqa: ANN001
    """The base URL of an HTTP server on 127.0.0.1 serving the dataset (``ds/``) and a damaged copy
    of it (``bad/``: one shard byte changed)."""
    served = tmp_path / "served"
    shutil.copytree(ds, served / "ds")
    shutil.copytree(ds, served / "bad")
    shard = served / "bad" / "train-000001.tar"
    data = bytearray(shard.read_bytes())
    data[600] ^= 0xFF
    shard.write_bytes(bytes(data))
    # a hostile copy (``escape/``): its shards table sends a download outside the dataset folder
    shutil.copytree(ds, served / "escape")
    table = pq.read_table(served / "escape" / "shards.parquet")
    names = table.column("shard").to_pylist()
    names[0] = "../ds/" + names[0]
    pq.write_table(table.set_column(table.schema.get_field_index("shard"), "shard", pa.array(names)),
                   served / "escape" / "shards.parquet")
    return serve_folder(served)


def _reads(data: str, **kw: object) -> dict:
    """A trainer that reads the dataset it is given (all of it) and reports what it saw."""
    m = synthetic_train(data, **kw)
    m["test"]["samples_read"] = sum(1 for _ in mmdata.open_dataset(data, split="train"))
    m["test"]["local"] = float(Path(data, "dataset.json").is_file())
    return m


def test_file_urls_work_wherever_a_path_goes(tmp_path: Path, ds: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=6)
    a = mmdata.shard(f"file://{raw}", f"file://{tmp_path / 'a' / 'ds'}", maxcount=4, progress=False)
    b = mmdata.shard(raw, tmp_path / "b" / "ds", maxcount=4, progress=False)
    assert a["fingerprint"] == b["fingerprint"] and _files(tmp_path / "a") == _files(tmp_path / "b")
    # the CLI keeps the URL a URL (a Path argument would fold file:///x into file:/x)
    p = subprocess.run([sys.executable, "-c", "from mmdata.cli.main import main; main()", "shard", f"file://{raw}",
                        f"file://{tmp_path / 'c' / 'ds'}", "--maxcount", "4", "--json"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert _files(tmp_path / "c") == _files(tmp_path / "b")
    assert [s.key for s in mmdata.open_dataset(f"file://{ds}")] == [s.key for s in mmdata.open_dataset(ds)]
    from mmdata.augment.offline import augment_dataset

    recipe = {"image": [{"op": "hflip", "p": 0.5}]}
    augment_dataset(f"file://{ds}", f"file://{tmp_path / 'aug1' / 'aug'}", recipe, copies=1, progress=False)
    augment_dataset(ds, tmp_path / "aug2" / "aug", recipe, copies=1, progress=False)
    assert _files(tmp_path / "aug1") == _files(tmp_path / "aug2")  # the card too: it names the source by content
    s = run(synthetic_recipe(tmp_path, f"file://{ds}", seeds=2), f"file://{tmp_path / 'abl'}", train_fn=_reads,
            progress=False, plots=False)
    rows = pq.read_table(tmp_path / "abl" / "runs.parquet").to_pylist()
    assert s["runs"]["ok"] == 6 and {r["test_samples_read"] for r in rows} == {10}


def test_an_ablation_reads_its_dataset_from_an_http_url(tmp_path: Path, ds: Path, http_root: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "cache"))
    s = run(synthetic_recipe(tmp_path, f"{http_root}/ds", seeds=2), tmp_path / "out", train_fn=_reads,
            progress=False, plots=False)
    rows = pq.read_table(tmp_path / "out" / "runs.parquet").to_pylist()
    assert s["runs"]["ok"] == 6 and {(r["test_samples_read"], r["test_local"]) for r in rows} == {(10, 1.0)}
    card = json.loads((ds / "dataset.json").read_text())
    staged = tmp_path / "cache" / "datasets" / card["fingerprint"]
    assert _files(staged) == _files(ds)  # one verified copy, byte for byte, reused by every run
    assert {r["data_fingerprint"] for r in rows} == {card["fingerprint"]}
    # a damaged remote shard, on a node without that verified copy: an error naming the shard and
    # the mismatch (a run records it as its failure); nothing half-staged stays
    with pytest.raises(MMDataError, match=r"/bad/train-000001.tar: sha256 [0-9a-f]{64}, but shards.parquet says"):
        stage_dataset(f"{http_root}/bad", cache=tmp_path / "cache2")
    with pytest.raises(MMDataError, match=r"/escape/shards.parquet: shard path '\.\./ds/train-000000.tar' escapes the dataset folder"):
        stage_dataset(f"{http_root}/escape", cache=tmp_path / "cache2")
    assert list((tmp_path / "cache2" / "datasets").iterdir()) == []


def test_urls_that_cannot_work_are_clear_errors(tmp_path: Path, ds: Path) -> None:
    if not _installed("gcsfs"):  # a source or output URL whose protocol package is missing: the error names it
        with pytest.raises(MMDataError, match=r"gs://bucket/raw: fsspec cannot open gs:// URLs here: .*gcsfs"):
            mmdata.shard("gs://bucket/raw", tmp_path / "x", progress=False)
        with pytest.raises(MMDataError, match=r"gs://bucket/x: fsspec cannot open gs:// URLs here: .*gcsfs"):
            mmdata.shard(make_sample_folder(tmp_path / "raw", n=2), "gs://bucket/x", progress=False)
    missing = "s3fs" if not _installed("s3fs") else None
    if missing:  # fsspec knows s3://, its package is not installed here: the error names it
        with pytest.raises(MMDataError, match=r"s3://bucket/ds: fsspec cannot open s3:// URLs here: .*s3fs"):
            run(synthetic_recipe(tmp_path, "s3://bucket/ds"), tmp_path / "out", progress=False)
    with pytest.raises(MMDataError, match=r"unknown URL protocol 'nosuchfs'"):
        stage_dataset("nosuchfs://host/ds")
    assert not (tmp_path / "out" / "runs.parquet").exists()


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_file_urls_in_the_read_commands(tmp_path: Path, ds: Path) -> None:
    """Docs walkthrough 2026-12-02: inspect, verify, preview, match and add-modality said "no dataset.json" or
    "shard file:/... not found" for a file:// URL (a Path argument folds file:///x into file:/x)."""
    import numpy as np
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    url = f"file://{ds}"
    assert [s.key for s in mmdata.open_dataset(Path(url))] == [s.key for s in mmdata.open_dataset(ds)]  # file:/...
    for args in (["inspect", url], ["verify", url], ["preview", url, "--recipe", str(ROOT / "recipes" / "image_basic.yaml"),
                                                        "--out", str(tmp_path / "p.png"), "--n", "2", "--variants", "1"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, (args, res.output)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    cols = tmp_path / "cols"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=2), cols, layout="columns", progress=False)
    (tmp_path / "d").mkdir()
    for k in ("000000", "000001"):
        np.save(tmp_path / "d" / f"{k}.depth.npy", np.zeros(2))
    res = CliRunner().invoke(app, ["add-modality", f"file://{cols}", "depth", f"file://{tmp_path / 'd'}"])
    assert res.exit_code == 0, res.output
    assert "depth" in json.loads((cols / "dataset.json").read_text())["fields"]
