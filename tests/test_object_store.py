"""Object stores as output and input (docs/scale.md): ``mmdata shard`` / ``mmdata augment`` write to an
``s3://`` folder — each shard uploaded whole by the task that wrote it, the index and card last, the
resume journal at OUT — byte for byte what a local OUT gets; ``open_dataset`` / ``inspect`` /
``verify`` read an ``s3://`` dataset folder. Against a real S3 protocol server on 127.0.0.1 (moto's,
tests/conftest.py: ``s3``), read and written with s3fs; the Ray tests on the 2-node local cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError
from mmdata.testing import make_sample_folder

pytest.importorskip("s3fs")
pytest.importorskip("moto")

ROOT = Path(__file__).parents[1]
RECIPE = {"image": [{"op": "hflip", "p": 0.5}], "audio": [{"op": "gain", "p": 1.0}]}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".mmdata-lock")}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_folder(tmp_path_factory.mktemp("raw") / "raw", n=24)


@pytest.fixture(scope="module")
def local_ds(tmp_path_factory: pytest.TempPathFactory, raw: Path) -> Path:
    out = tmp_path_factory.mktemp("local") / "ds"
    mmdata.shard(raw, out, maxcount=4, split="train=0.7,val=0.3", seed=1, progress=False)
    return out


def test_shard_to_s3_equals_a_local_out_byte_for_byte(tmp_path: Path, raw: Path, local_ds: Path, s3) -> None:  # noqa: ANN001
    rep = mmdata.shard(raw, f"{s3.url}/data/ds", maxcount=4, split="train=0.7,val=0.3", seed=1, workers=2,
                       progress=False, storage_options=s3.options)
    assert rep["out"] == f"{s3.url}/data/ds" and rep["samples"] == 24
    remote = s3.tree("data/ds")
    assert remote == _tree(local_ds)  # every shard, index.parquet, shards.parquet, dataset.json; no journal left
    assert sum(k.endswith(".tar") for k in remote) == rep["shards"] >= 5


def test_augment_to_s3_equals_local(tmp_path: Path, local_ds: Path, s3) -> None:  # noqa: ANN001
    from mmdata.augment.offline import augment_dataset

    opts = dict(copies=2, keep_original=True, maxcount=6, progress=False)
    local = augment_dataset(local_ds, tmp_path / "aug", RECIPE, **opts)
    rep = augment_dataset(local_ds, f"{s3.url}/aug", RECIPE, storage_options=s3.options, **opts)
    assert rep["samples"] == local["samples"] == 58  # 17 train x (2 copies + original) + 7 val written through
    assert s3.tree("aug") == _tree(tmp_path / "aug")


def test_a_killed_driver_resumes_into_s3(tmp_path: Path, raw: Path, local_ds: Path, s3) -> None:  # noqa: ANN001
    """A CLI driver (configured as users configure the AWS CLI: environment variables) SIGKILLed
    after some shards: what is at OUT is a journal and whole shards only; the rerun keeps them."""
    out = f"{s3.url}/ds"
    s3.kill_shard_cli(str(raw), out)
    before = s3.tree("ds")
    assert "index.parquet" not in before and "dataset.json" not in before, "the job finished before the kill"
    kept = {k: v for k, v in before.items() if k.endswith(".tar")}
    assert 2 <= len(kept) < 7
    local = _tree(local_ds)
    assert all(local[k] == v for k, v in kept.items())  # whole shards only: an upload is one PUT
    stamps = s3.modified(out)
    rep = mmdata.shard(raw, out, maxcount=4, split="train=0.7,val=0.3", seed=1, progress=False,
                       storage_options=s3.options)
    assert rep["samples"] == 24 and s3.tree("ds") == local
    assert any(s3.modified(out)[k] == t for k, t in stamps.items()), "no finished shard was kept"


def test_open_dataset_inspect_and_verify_an_s3_dataset_folder(local_ds: Path, s3) -> None:  # noqa: ANN001
    s3.fs.put(str(local_ds), f"{s3.url[5:]}/ds", recursive=True)
    url = f"{s3.url}/ds"
    for split in ("train", "val"):
        here = [(s.key, s.get("label"), s.fields.keys()) for s in mmdata.open_dataset(local_ds, split=split)]
        there = mmdata.open_dataset(url, split=split, storage_options=s3.options)
        got = [(s.key, s.get("label"), s.fields.keys()) for s in there]
        assert got == here and there.num_samples == len(here) and there.label_names == mmdata.open_dataset(local_ds).label_names
    a = next(iter(mmdata.open_dataset(local_ds)))
    b = next(iter(mmdata.open_dataset(url, storage_options=s3.options)))
    assert a.key == b.key and all((a[f] == b[f]).all() if hasattr(a[f], "shape") else a[f] == b[f] for f in a.fields)
    assert mmdata.inspect(url, storage_options=s3.options) == mmdata.inspect(local_ds) | {"path": url}
    assert mmdata.verify(url, storage_options=s3.options)["ok"]
    p = subprocess.run([sys.executable, "-c", "from mmdata.cli.main import main; main()", "verify", url, "--json"],
                       cwd=ROOT, env={**os.environ, **s3.env}, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and '"ok": true' in p.stdout, p.stderr  # the CLI: credentials from the environment
    s3.fs.pipe_file(f"{s3.url[5:]}/ds/train-000001.tar", b"\0" * 1024)  # damaged: verify says which shard
    bad = mmdata.verify(url, storage_options=s3.options)
    assert not bad["ok"] and {p["shard"] for p in bad["problems"]} == {"train-000001.tar"}


def test_a_remote_card_cannot_point_outside_its_folder(local_ds: Path, s3, tmp_path: Path) -> None:  # noqa: ANN001
    import json
    import shutil

    hostile = tmp_path / "hostile"
    shutil.copytree(local_ds, hostile)
    card = json.loads((hostile / "dataset.json").read_text())
    card["splits"]["train"]["shards"][0] = "../other/train-000000.tar"
    (hostile / "dataset.json").write_text(json.dumps(card))
    s3.fs.put(str(hostile), f"{s3.url[5:]}/hostile", recursive=True)
    with pytest.raises(MMDataError, match=r"hostile.*\.\./other/train-000000.tar.*escapes"):
        list(mmdata.open_dataset(f"{s3.url}/hostile", storage_options=s3.options))


def test_object_store_errors_name_the_url(tmp_path: Path, raw: Path, s3, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    with pytest.raises(MMDataError, match=r"s3://no-such-bucket-x/ds: cannot write .*bucket"):
        mmdata.shard(raw, "s3://no-such-bucket-x/ds", maxcount=4, progress=False, storage_options=s3.options)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(MMDataError, match=rf"{s3.url}/ds: cannot write .*NoCredentialsError.*credentials"):
        mmdata.shard(raw, f"{s3.url}/ds", maxcount=4, progress=False,
                     storage_options={"endpoint_url": s3.options["endpoint_url"]})
    assert s3.tree("") == {}  # nothing was written
    from mmdata.shards.index import read_card

    with pytest.raises(MMDataError, match=rf"{s3.url}/ds/dataset.json: cannot read it \(NoCredentialsError.*credentials"):
        read_card(f"{s3.url}/ds", {"endpoint_url": s3.options["endpoint_url"]})


@pytest.mark.ray
def test_ray_shard_and_augment_to_s3_equal_local(tmp_path: Path, raw: Path, local_ds: Path, s3, ray_cluster) -> None:  # noqa: ANN001
    from mmdata.augment.offline import augment_dataset

    rep = mmdata.shard(raw, f"{s3.url}/ds", maxcount=4, split="train=0.7,val=0.3", seed=1, executor="ray",
                       progress=False, storage_options=s3.options)
    assert rep["samples"] == 24 and s3.tree("ds") == _tree(local_ds)
    opts = dict(copies=1, maxcount=10, progress=False)
    augment_dataset(local_ds, tmp_path / "aug", RECIPE, **opts)
    # the source read from s3 too: each task reads its source shards from there and uploads its shard
    augment_dataset(f"{s3.url}/ds", f"{s3.url}/aug", RECIPE, executor="ray", storage_options=s3.options, **opts)
    assert s3.tree("aug") == _tree(tmp_path / "aug")  # the card too: it names the source by content


def test_augment_of_an_s3_dataset_reads_its_card_with_the_given_storage_options(
        tmp_path: Path, s3, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """CI of 361ef25: augment read the source card for its modalities with no storage_options, so an
    ``s3://`` dataset reached only through ``storage_options`` got no "has no effect" warning, and the
    credential-less filesystem it made stayed in fsspec's cache for later calls in the process."""
    import s3fs

    from mmdata.augment.offline import augment_dataset

    raw = make_sample_folder(tmp_path / "raw", n=12)
    for p in raw.rglob("*"):
        if p.suffix in (".flac", ".wav", ".txt"):
            p.unlink()  # images only: an audio section acts on nothing
    mmdata.shard(raw, f"{s3.url}/img", maxcount=6, split="train=0.7,val=0.3", seed=1, progress=False,
                 storage_options=s3.options)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(k, raising=False)  # only storage_options reach the server
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3fs.S3FileSystem.clear_instance_cache()
    with pytest.warns(UserWarning, match=r"section 'audio' .*has no effect"):
        augment_dataset(f"{s3.url}/img", tmp_path / "aug", RECIPE, copies=1, maxcount=10, progress=False,
                        storage_options=s3.options)
    made = [fs.storage_options for fs in s3fs.S3FileSystem._cache.values()]
    assert made and all(o.get("endpoint_url") == s3.options["endpoint_url"] for o in made), made
