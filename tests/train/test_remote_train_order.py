"""``mmdata train s3://...`` (QA round 22, second pass): what the dataset card alone decides (its splits, the
roles asked of them) is checked on the remote card before any shard is staged, and every message names the
URL the user gave (redacted), never the staged copy in the cache. A real S3 protocol server
(tests/conftest.py: ``s3``), the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("remote-order")
    make_sample_folder(root / "raw", n=24)
    mmdata.shard(root / "raw", root / "two", split="train=0.7,val=0.3", maxcount=8, seed=0, progress=False)
    mmdata.shard(root / "raw", root / "three", split="train=0.6,val=0.2,test=0.2", maxcount=8, seed=0, progress=False)
    return {"two": root / "two", "three": root / "three"}


def _staged(cache: Path) -> list[str]:
    """Every file under the cache's staged datasets (none when nothing was downloaded)."""
    return sorted(str(p.relative_to(cache)) for p in (cache / "datasets").rglob("*") if p.is_file()) \
        if (cache / "datasets").exists() else []


@pytest.fixture
def remote(s3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN001, ANN201
    pytest.importorskip("s3fs")
    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "cache"))
    return s3


def test_missing_split_is_refused_before_staging_naming_the_url(folders, remote, mmdata_cli,  # noqa: ANN001
                                                                tmp_path: Path) -> None:
    remote.fs.put(str(folders["two"]), f"{remote.url[5:]}/ds", recursive=True)
    code, text = mmdata_cli(["train", f"{remote.url}/ds", "--epochs", "1", "--out", str(tmp_path / "tr")])
    assert code == 2, text
    assert f"{remote.url}/ds: needs train/val/test splits; it has ['train', 'val']" in text, text
    assert str(tmp_path / "cache") not in text and "datasets/" not in text, text
    assert _staged(tmp_path / "cache") == [], "the dataset was downloaded before its card was checked"


def test_unknown_split_role_is_refused_before_staging(folders, remote, mmdata_cli, tmp_path: Path) -> None:  # noqa: ANN001
    remote.fs.put(str(folders["three"]), f"{remote.url[5:]}/ds", recursive=True)
    code, text = mmdata_cli(["train", f"{remote.url}/ds", "--epochs", "1", "--val-split", "nope"])
    assert code == 2, text
    assert f"{remote.url}/ds has no split 'nope'" in text, text
    assert str(tmp_path / "cache") not in text, text
    assert _staged(tmp_path / "cache") == []


def test_a_check_after_staging_names_the_url_not_the_cache(folders, remote, mmdata_cli,  # noqa: ANN001
                                                           tmp_path: Path) -> None:
    remote.fs.put(str(folders["three"]), f"{remote.url[5:]}/ds", recursive=True)
    code, text = mmdata_cli(["train", f"{remote.url}/ds", "--epochs", "1", "--target", "no_such_key"])
    assert code == 2, text
    assert f"{remote.url}/ds" in text and str(tmp_path / "cache") not in text, text
