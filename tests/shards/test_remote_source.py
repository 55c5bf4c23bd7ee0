"""``mmdata shard`` from a source folder (or manifest) at an fsspec URL (docs/scale.md): the source is
listed on the driver, each shard's task fetches its own members, and the output is byte for byte what
sharding a local copy of the folder gives. Against the local S3 server of tests/conftest.py (``s3``)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError, SourceError
from mmdata.testing.messy import make_messy_folder

pytest.importorskip("s3fs")
pytest.importorskip("moto")

OPTS = dict(maxcount=4, split="train=0.7,val=0.3", seed=1, progress=False)
MEDIA = (".png", ".jpg", ".jpeg", ".JPG", ".wav", ".flac", ".txt")


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".mmdata-lock")}


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A messy folder (odd names, nested folders, a class-names file, corrupt and stray files) with a
    file that is not data and a second image for one stem, so every kind of skip entry occurs."""
    root = tmp_path_factory.mktemp("messy") / "raw"
    make_messy_folder(root, n=14, sizes=((24, 32), (40, 30)), seconds=(0.1, 0.3), stray_label=True, corrupt=True)
    (root / "notes.zip").write_bytes(b"PK not data")
    (root / "Batch_B" / "IMG_1002.png").write_bytes((root / "labels.json").read_bytes())
    return root


@pytest.fixture(scope="module")
def local_ds(tmp_path_factory: pytest.TempPathFactory, messy: Path) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("local") / "ds"
    return out, mmdata.shard(messy, out, workers=2, **OPTS)


def _upload(s3, folder: Path, prefix: str) -> str:  # noqa: ANN001
    s3.fs.put(str(folder), f"{s3.url[5:]}/{prefix}", recursive=True)
    return f"{s3.url}/{prefix}"


def test_shard_from_s3_equals_sharding_the_local_folder(tmp_path: Path, messy: Path, local_ds, s3,  # noqa: ANN001
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.shards.remote_source import RemoteSource

    fetched: list[tuple[str, str]] = []  # (thread, path) of every fetch: the real fetch still runs
    real = RemoteSource.read_many

    def spy(self, paths, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        fetched.extend((threading.current_thread().name, p) for p in paths)
        return real(self, paths, *args, **kwargs)

    monkeypatch.setattr(RemoteSource, "read_many", spy)
    src = _upload(s3, messy, "raw")
    rep = mmdata.shard(src, tmp_path / "ds", workers=2, storage_options=s3.options, **OPTS)
    local, local_rep = local_ds
    assert _tree(tmp_path / "ds") == _tree(local)  # every shard, index.parquet, shards.parquet, dataset.json
    assert rep["skipped"] == local_rep["skipped"] and rep["warnings"] == local_rep["warnings"]
    assert local_rep["skipped_counts"]["files"] >= 1 and local_rep["skipped_counts"]["members"] >= 3
    # the driver fetched the label files only; every media member was fetched by a writer thread
    on_driver = {p for t, p in fetched if t == threading.main_thread().name}
    assert on_driver and all(p.endswith(".cls") for p in on_driver)
    assert {p for t, p in fetched if t != threading.main_thread().name and p.endswith(MEDIA)}
    assert "testing" not in (tmp_path / "ds" / "dataset.json").read_text()  # no storage options in the card


def test_maxsize_plans_from_the_listing_and_a_manifest_at_a_url(tmp_path: Path, messy: Path, s3) -> None:  # noqa: ANN001
    """``--maxsize`` cuts from the listed sizes (no stat); a manifest at a URL names files relative to
    its folder there, with the path-escape and missing-file rules of a local manifest."""
    src = _upload(s3, messy, "raw")
    sized = dict(OPTS, maxsize=60_000)
    mmdata.shard(messy, tmp_path / "a" / "ds", **sized)
    mmdata.shard(src, tmp_path / "b" / "ds", storage_options=s3.options, **sized)
    assert _tree(tmp_path / "b" / "ds") == _tree(tmp_path / "a" / "ds")

    (messy.parent / "manifest.csv").write_text(
        "key,image,audio,text,label\n"
        "a,raw/Batch_B/IMG_1002.png,,un,0\n"
        "b,raw/batch A/2023-05/IMG_1000.jpg,raw/batch A/2023-05/IMG_1000.flac,deux,1\n"
        "c,../outside/x.png,,trois,2\n"
        "d,raw/missing.png,raw/Batch_B/photo 1.wav,,circle\n", encoding="utf-8")
    s3.fs.put_file(str(messy.parent / "manifest.csv"), f"{s3.url[5:]}/manifest.csv")
    local = mmdata.shard(messy.parent / "manifest.csv", tmp_path / "c" / "ds", **OPTS)
    remote = mmdata.shard(f"{s3.url}/manifest.csv", tmp_path / "d" / "ds", storage_options=s3.options, **OPTS)
    assert _tree(tmp_path / "d" / "ds") == _tree(tmp_path / "c" / "ds")
    assert remote["skipped"] == local["skipped"]
    assert {s["reason"].split(": ", 1)[1] for s in local["skipped"]} >= {"the path escapes the manifest's folder",
                                                                       "file not found"}
    # a gzipped manifest at a URL (Lhotse's .jsonl.gz) reads as the plain one does (it was refused by its suffix)
    import gzip

    s3.fs.pipe_file(f"{s3.url[5:]}/manifest.csv.gz", gzip.compress((messy.parent / "manifest.csv").read_bytes()))
    mmdata.shard(f"{s3.url}/manifest.csv.gz", tmp_path / "e" / "ds", storage_options=s3.options, **OPTS)
    gz, plain = _tree(tmp_path / "e" / "ds"), _tree(tmp_path / "d" / "ds")
    assert {k: v for k, v in gz.items() if k != "dataset.json"} == {k: v for k, v in plain.items() if k != "dataset.json"}


def test_a_killed_cli_driver_resumes_from_s3_to_s3(tmp_path: Path, messy: Path, local_ds, s3) -> None:  # noqa: ANN001
    """The CLI, credentials from the environment as the AWS CLI takes them, source and output on S3:
    SIGKILLed after some shards, the rerun keeps them and the result equals the local sharding."""
    src, out = _upload(s3, messy, "raw"), f"{s3.url}/ds"
    s3.kill_shard_cli(src, out)
    before = s3.tree("ds")
    assert "dataset.json" not in before and sum(k.endswith(".tar") for k in before) >= 2
    stamps = s3.modified(out)
    rep = mmdata.shard(src, out, storage_options=s3.options, **OPTS)
    assert rep["samples"] == local_ds[1]["samples"] and s3.tree("ds") == _tree(local_ds[0])
    assert any(s3.modified(out)[k] == t for k, t in stamps.items()), "no finished shard was kept"


def test_a_replaced_source_object_changes_its_stamp(s3) -> None:  # noqa: ANN001
    """A finished shard is kept on resume only when its sources are listed as they were: an object
    replaced by one of the same size has another stamp (ETag and time), so its shard is rewritten."""
    from mmdata.shards.remote_source import RemoteSource
    from mmdata.shards.writer import _current_inputs

    s3.fs.pipe_file(f"{s3.url[5:]}/raw/a.txt", b"one")
    payload = [("a", "a", None, {}, ("txt",), (f"{s3.url[5:]}/raw/a.txt",))]
    before = RemoteSource(f"{s3.url}/raw", s3.options)
    before.meta_under(before.root)
    s3.fs.pipe_file(f"{s3.url[5:]}/raw/a.txt", b"two")
    after = RemoteSource(f"{s3.url}/raw", s3.options)
    after.meta_under(after.root)
    assert before.meta.keys() == after.meta.keys() and _current_inputs(payload, before) != _current_inputs(payload, after)


def test_an_object_gone_since_the_listing_is_reported_as_a_local_file_gone_is(tmp_path: Path, s3) -> None:  # noqa: ANN001
    from mmdata.shards.sources import discover
    from mmdata.shards.writer import write_records
    from mmdata.testing import make_sample_folder

    folder = make_sample_folder(tmp_path / "raw", n=4)
    src = _upload(s3, folder, "raw")
    reports = []
    for where, gone in ((folder, lambda: (folder / "000001.png").unlink()),
                        (src, lambda: s3.fs.rm_file(f"{src[5:]}/000001.png"))):
        found = discover(where, storage_options=s3.options)
        gone()  # after the plan, before the write
        reports.append(write_records(found.records, tmp_path / f"out{len(reports)}", skipped=found.skipped,
                                     root=found.root, source=found.source, progress=False)["skipped"])
    assert reports[0] == reports[1] == [{"sample": "000001", "what": "member", "source": "000001.png",
                                         "reason": "cannot read: No such file or directory"}]


def test_source_url_errors_name_the_url_and_what_to_check(tmp_path: Path, s3, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    with pytest.raises(SourceError, match=rf"source {s3.url}/nothing-here does not exist: no object under it; check"):
        mmdata.shard(f"{s3.url}/nothing-here", tmp_path / "x", storage_options=s3.options, progress=False)
    with pytest.raises(SourceError, match=r"source s3://no-such-bucket-x/raw: does not exist .*check the URL"):
        mmdata.shard("s3://no-such-bucket-x/raw", tmp_path / "x", storage_options=s3.options, progress=False)
    s3.fs.pipe_file(f"{s3.url[5:]}/notes.zip", b"PK")
    with pytest.raises(SourceError, match=rf"source {s3.url}/notes.zip is not a folder or a manifest"):
        mmdata.shard(f"{s3.url}/notes.zip", tmp_path / "x", storage_options=s3.options, progress=False)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(MMDataError, match=rf"{s3.url}/raw: cannot list the source .*NoCredentialsError.*credentials"):
        mmdata.shard(f"{s3.url}/raw", tmp_path / "x", storage_options={"endpoint_url": s3.options["endpoint_url"]},
                     progress=False)
    closed = {**s3.options, "endpoint_url": "http://127.0.0.1:9", "secret": "s3cr3t-value",
              "config_kwargs": {"retries": {"max_attempts": 1}}}
    with pytest.raises(MMDataError, match=rf"{s3.url}/raw: cannot list the source .*endpoint") as info:
        mmdata.shard(f"{s3.url}/raw", tmp_path / "x", progress=False, storage_options=closed)
    assert "s3cr3t-value" not in str(info.value)  # storage options never in an error
    with pytest.raises(SourceError, match=r"source https://\*\*\*@host/raw: an HTTP server has no listing"):
        mmdata.shard("https://me:pw@host/raw", tmp_path / "x", progress=False)  # the password is not shown
    assert not (tmp_path / "x").exists()


def test_an_output_folder_inside_the_source_is_not_walked(tmp_path: Path, s3) -> None:  # noqa: ANN001
    from mmdata.testing import make_sample_folder

    src = _upload(s3, make_sample_folder(tmp_path / "raw", n=6), "raw")
    first = mmdata.shard(src, f"{src}/ds", storage_options=s3.options, progress=False)
    again = mmdata.shard(src, f"{src}/ds", storage_options=s3.options, progress=False)  # its shards now in the source
    assert first["samples"] == again["samples"] == 6 and first["skipped"] == []
    assert again["skipped"] == [{"source": "ds", "sample": None, "what": "folder",
                                 "reason": "the output folder of this job"}]


@pytest.mark.ray
def test_ray_shard_from_s3_equals_local(tmp_path: Path, messy: Path, local_ds, s3, ray_cluster) -> None:  # noqa: ANN001
    """Each Ray task (on either node) fetches its own members from S3 with the job's storage options."""
    src = _upload(s3, messy, "raw")
    rep = mmdata.shard(src, tmp_path / "ds", executor="ray", storage_options=s3.options, **OPTS)
    assert _tree(tmp_path / "ds") == _tree(local_ds[0]) and rep["skipped"] == local_ds[1]["skipped"]


def test_a_labels_file_at_a_url_is_the_local_file(tmp_path: Path, s3) -> None:  # noqa: ANN001
    from mmdata.testing import make_sample_folder

    raw = make_sample_folder(tmp_path / "raw", n=6)
    names = tmp_path / "names.txt"
    names.write_text("zero\none\ntwo\nthree\n")
    s3.fs.put_file(str(names), f"{s3.url[5:]}/meta/names.txt")
    local = mmdata.shard(raw, tmp_path / "a" / "ds", label_names=names, progress=False)
    remote = mmdata.shard(raw, tmp_path / "b" / "ds", label_names=f"{s3.url}/meta/names.txt", storage_options=s3.options,
                          progress=False)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b") and local["samples"] == remote["samples"] == 6
    with pytest.raises(MMDataError, match=rf"{s3.url}/meta/nope.txt: cannot read it \(FileNotFoundError"):
        mmdata.shard(raw, tmp_path / "c", label_names=f"{s3.url}/meta/nope.txt", storage_options=s3.options,
                     progress=False)


def test_a_rerun_from_another_working_directory_is_up_to_date(tmp_path: Path, messy: Path, s3,  # noqa: ANN001
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: local source paths became absolute in a job's identity, and so did a remote source's
    (`bucket/raw/a.png`, no protocol): a rerun from another folder rewrote every shard."""
    src = _upload(s3, messy, "raw_cwd")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    assert not mmdata.shard(src, tmp_path / "ds", storage_options=s3.options, **OPTS).get("up_to_date")
    monkeypatch.chdir(tmp_path / "b")
    assert mmdata.shard(src, tmp_path / "ds", storage_options=s3.options, **OPTS)["up_to_date"] is True
