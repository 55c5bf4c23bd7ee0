"""Bare WebDataset shards given where a dataset folder is expected (QA26): `mmdata train 'x-{0..3}.tar'`
said "does not exist" for a pattern whose files exist, and a folder of tars "no dataset.json"; both now
say that they are shards and how to make a dataset folder of them (`mmdata shard SHARDS OUT`). `mmdata verify`
of a URL pattern of tars read it as a dataset folder (`.../x-{0..3}.tar/dataset.json: cannot read it`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.shards.index import read_card
from mmdata.shards.verify import verify
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def tars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("bare")
    mmdata.shard(make_sample_folder(t / "raw", n=8), t / "ds", maxcount=2, progress=False)
    out = t / "wds"
    out.mkdir()
    for tar in sorted((t / "ds").glob("train-*.tar")):
        shutil.copy(tar, out / tar.name)
    return out


@pytest.mark.parametrize("given", ["{dir}/train-{{000000..000003}}.tar", "{dir}/train-*.tar", "{dir}"])
def test_shards_where_a_dataset_folder_is_expected_say_how_to_make_one(tars: Path, given: str) -> None:
    path = given.format(dir=tars)
    with pytest.raises(ShardError) as err:
        read_card(path)
    msg = str(err.value)
    assert "4 WebDataset shards" in msg and "does not exist" not in msg
    assert "mmdata shard" in msg and "OUT" in msg and "open_dataset" in msg


def test_train_cli_on_a_pattern_of_shards(tars: Path, tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "train", f"{tars}/train-{{000000..000003}}.tar",
                        "--out", str(tmp_path / "run"), "--epochs", "1"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert "4 WebDataset shards" in p.stderr and "`mmdata shard" in p.stderr and "does not exist" not in p.stderr
    assert not (tmp_path / "run").exists()


def test_missing_shards_and_missing_folders_still_say_so(tars: Path, tmp_path: Path) -> None:
    with pytest.raises(ShardError, match="does not exist"):
        read_card(tmp_path / "nothing")
    with pytest.raises(ShardError, match="does not exist"):
        read_card(str(tars / "nope-000000.tar"))


def test_verify_reads_a_url_pattern_of_shards(tars: Path, serve_folder) -> None:  # noqa: ANN001
    base = serve_folder(tars)
    rep = verify(f"{base}/train-{{000000..000003}}.tar", deep=True)
    assert rep["ok"] and rep["bare"] and rep["samples"] == 8
    bad = verify(f"{base}/train-{{000000..000004}}.tar")
    assert not bad["ok"] and any("train-000004.tar" in str(p) for p in bad["problems"])


def test_a_shard_urls_password_is_not_in_the_advice() -> None:
    with pytest.raises(ShardError) as err:
        read_card("https://me:secret@127.0.0.1:9/x-{0..1}.tar")
    assert "secret" not in str(err.value) and "2 WebDataset shards" in str(err.value)
