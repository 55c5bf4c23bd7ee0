"""QA42 notebook #1: a dataset opened by a relative name reads what was opened after the working directory
changes (a notebook's ``%cd``, ``os.chdir``). It used to re-resolve the name at each pass: "the dataset folder
changed since it was opened (a job is writing it now ...)", or another folder's tars read silently."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder


def _shard(raw: Path, out: Path, n: int) -> Path:
    mmdata.shard(make_sample_folder(raw, n=n), out, progress=False)
    return out


@pytest.fixture()
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    home, empty, other = tmp_path / "home", tmp_path / "empty", tmp_path / "other"
    _shard(tmp_path / "raw", home / "ds", 6)
    _shard(tmp_path / "raw2", other / "ds", 3)  # another dataset under the same relative name
    empty.mkdir()
    monkeypatch.chdir(home)
    return {"home": home, "empty": empty, "other": other}


@pytest.mark.parametrize("where", ["empty", "other"])
def test_open_dataset_by_a_relative_name_reads_the_folder_opened_after_a_chdir(places: dict[str, Path],
                                                                               where: str) -> None:
    ds = mmdata.open_dataset("ds")
    before = [s.key for s in ds]
    os.chdir(places[where])
    assert [s.key for s in ds] == before  # no "changed since it was opened", not the other folder's samples
    assert ds.root == places["home"] / "ds"
    assert str(places["home"] / "ds") in repr(ds)  # the repr names the folder read, not 'ds'


@pytest.mark.parametrize("num_workers", [0, 1])
def test_loader_by_a_relative_name_reads_the_folder_opened_after_a_chdir(places: dict[str, Path],
                                                                         num_workers: int) -> None:
    L = mmdata.loader("ds", 4, seed=0, num_workers=num_workers)
    before = [k for b in L for k in b.keys]
    os.chdir(places["other"])
    L.set_epoch(0)
    assert [k for b in L for k in b.keys] == before
    assert L.label_names == mmdata.loader(places["home"] / "ds", 4).label_names


def test_bare_shards_by_a_relative_pattern_read_after_a_chdir(places: dict[str, Path]) -> None:
    tars = sorted(str(p.relative_to(places["home"])) for p in (places["home"] / "ds").glob("*.tar"))
    ds = mmdata.open_dataset(tars[0])
    glob = mmdata.open_dataset(f"ds/{Path(tars[0]).name[:3]}*.tar")
    before, globbed = [s.key for s in ds], [s.key for s in glob]
    os.chdir(places["empty"])
    assert [s.key for s in ds] == before and [s.key for s in glob] == globbed


def test_absolute_sources_leaves_urls_and_keeps_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.shards.reader import absolute_sources

    monkeypatch.chdir(tmp_path)
    for name in ("ds", "a.tar", "a-0.tar", "b.tar"):
        (tmp_path / name).touch()
    here = os.getcwd()
    assert absolute_sources("s3://b/ds") == "s3://b/ds"
    assert absolute_sources("file:///data/ds") == "file:///data/ds"
    assert absolute_sources(Path("ds")) == Path(here) / "ds"
    assert absolute_sources(["a.tar", "https://h/b.tar"]) == [os.path.join(here, "a.tar"), "https://h/b.tar"]
    assert absolute_sources("a-{0..1}.tar::b.tar") == f"{here}/a-{{0..1}}.tar::{here}/b.tar"
    assert absolute_sources("a-*.tar") == f"{here}/a-*.tar"
    # what names nothing stays as typed, for the error that says so
    assert absolute_sources("nope/") == "nope/" and absolute_sources(Path("nope")) == Path("nope")
    assert absolute_sources(["a.tar", "z-*.tar", "z-{0..1}.tar", "~/ds"]) == [f"{here}/a.tar", "z-*.tar", "z-{0..1}.tar",
                                                                            "~/ds"]


@pytest.mark.parametrize("given", ["nope/", "~/ds", "file:ds"])
def test_a_name_that_does_not_exist_is_named_as_typed(places: dict[str, Path], given: str) -> None:
    from mmdata.errors import ShardError

    with pytest.raises(ShardError) as err:
        mmdata.open_dataset(given)
    assert str(err.value).startswith(f"{given}: does not exist (expected a dataset folder"), str(err.value)
    with pytest.raises(ShardError) as err:
        mmdata.loader(given, 4)
    assert str(err.value).startswith(f"{given}: does not exist"), str(err.value)
    assert str(places["home"]) not in str(err.value)
