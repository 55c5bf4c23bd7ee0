"""``mmdata shard`` from a source folder (or manifest) at an fsspec URL (docs/scale.md): the source is
listed on the driver, each shard's task fetches its own members, and the output is byte for byte what
sharding a local copy of the folder gives. Against the local S3 server of tests/conftest.py (``s3``)."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.testing.messy import make_messy_folder

pytest.importorskip("s3fs")
pytest.importorskip("moto")


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".mmdata-lock")}


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("messy") / "raw"
    make_messy_folder(root, n=14, sizes=((24, 32), (40, 30)), seconds=(0.1, 0.3), stray_label=True, corrupt=True)
    (root / "notes.zip").write_bytes(b"PK not data")  # a file that is not data: reported
    (root / "Batch_B" / "IMG_1002.png").write_bytes((root / "labels.json").read_bytes())  # a second image
    return root


def test_shard_from_s3_equals_sharding_the_local_folder(tmp_path: Path, messy: Path, s3) -> None:  # noqa: ANN001
    s3.fs.put(str(messy), f"{s3.url[5:]}/raw", recursive=True)
    opts = dict(maxcount=4, split="train=0.7,val=0.3", seed=1, workers=2, progress=False)
    local = mmdata.shard(messy, tmp_path / "local" / "ds", **opts)
    remote = mmdata.shard(f"{s3.url}/raw", tmp_path / "remote" / "ds", storage_options=s3.options, **opts)
    assert _tree(tmp_path / "remote" / "ds") == _tree(tmp_path / "local" / "ds")  # shards, index, card
    assert remote["skipped"] == local["skipped"] and remote["skipped_counts"] == local["skipped_counts"]
    assert local["skipped_counts"]["files"] >= 1 and local["skipped_counts"]["members"] >= 2
