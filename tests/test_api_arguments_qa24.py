"""QA round 24 (persona A) D5: a misspelt keyword of ``mmdata.train.train``, ``mmdata.shard`` and
``mmdata.ablate.run`` raised a bare ``unexpected keyword argument``, where ``loader`` / ``DataModule`` say
``did you mean``; the CLI's spellings (``jobs`` for ``-j``, ``max_count``) name the keyword they mean."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import mmdata
import mmdata.ablate
import mmdata.train
from mmdata.testing import make_sample_folder


@pytest.mark.parametrize(("call", "kw", "message"), [
    ("train", {"epoch": 1}, "mmdata.train.train() got an unexpected keyword argument 'epoch'; did you mean 'epochs'?"),
    ("train", {"jobs": 2}, "mmdata.train.train() got an unexpected keyword argument 'jobs'; did you mean 'num_workers'?"),
    ("train", {"workers": 2}, "mmdata.train.train() got an unexpected keyword argument 'workers'; did you mean 'num_workers'?"),
    ("train", {"batchsize": 8}, "mmdata.train.train() got an unexpected keyword argument 'batchsize'; did you mean 'batch_size'?"),
    ("shard", {"max_count": 3}, "mmdata.shard() got an unexpected keyword argument 'max_count'; did you mean 'maxcount'?"),
    ("shard", {"jobs": 2}, "mmdata.shard() got an unexpected keyword argument 'jobs'; did you mean 'workers'?"),
    ("shard", {"labels": "l.txt"}, "mmdata.shard() got an unexpected keyword argument 'labels'; did you mean 'label_names'?"),
    ("run", {"jobs": 2}, "mmdata.ablate.run() got an unexpected keyword argument 'jobs'; did you mean 'workers'?"),
    ("run", {"seed": 2}, "mmdata.ablate.run() got an unexpected keyword argument 'seed'; did you mean 'seeds'?"),
])
def test_a_misspelt_keyword_names_the_one_meant(tmp_path: Path, call: str, kw: dict, message: str) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4)
    fn = {"train": lambda **k: mmdata.train.train(tmp_path / "ds", **k),
          "shard": lambda **k: mmdata.shard(raw, tmp_path / "ds", progress=False, **k),
          "run": lambda **k: mmdata.ablate.run(tmp_path / "ab.yaml", tmp_path / "out", **k)}[call]
    with pytest.raises(TypeError) as exc:
        fn(**kw)
    assert str(exc.value) == message
    assert not (tmp_path / "ds").exists() and not (tmp_path / "out").exists()  # refused before any work


def test_an_unknown_keyword_without_a_close_one_lists_the_keywords(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"mmdata.shard\(\) got an unexpected keyword argument 'zzz'; it takes \[.*'maxcount'"):
        mmdata.shard(tmp_path, tmp_path / "ds", zzz=1)


def test_the_entry_points_keep_their_signatures_and_calls(tmp_path: Path) -> None:
    assert list(inspect.signature(mmdata.train.train).parameters)[:3] == ["data", "fusion", "modalities"]
    assert "maxcount" in inspect.signature(mmdata.shard).parameters
    assert "workers" in inspect.signature(mmdata.ablate.run).parameters
    assert mmdata.train.train.__name__ == "train" and mmdata.train.train.__doc__.startswith("Train the reference")
    raw = make_sample_folder(tmp_path / "raw", n=4)
    rep = mmdata.shard(raw, tmp_path / "ds", maxcount=2, workers=1, progress=False)  # the right keywords still work
    assert rep["shards"] == 2 and rep["samples"] == 4
    with pytest.raises(TypeError, match="positional"):  # Python's own errors stay as they are
        mmdata.shard(raw, tmp_path / "ds2", 2)
