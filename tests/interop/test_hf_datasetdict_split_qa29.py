"""A DatasetDict keeps its own splits: split= / --split is refused with words for the caller at hand
(the CLI's option from the shell, the keyword from Python), naming the splits it has (QA29 docs #7)."""

from __future__ import annotations

from pathlib import Path

import pytest
import mmdata
from mmdata.errors import SourceError
from mmdata.testing import image_bytes

datasets = pytest.importorskip("datasets")


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})

    def part(n: int, offset: int) -> datasets.Dataset:
        return datasets.Dataset.from_dict({"image": [image_bytes(offset + i) for i in range(n)],
                                           "label": [i % 2 for i in range(n)]}, features=feats)

    datasets.DatasetDict({"train": part(4, 0), "test": part(2, 4)}).save_to_disk(str(tmp_path / "hfdd"))
    return tmp_path / "hfdd"


def test_python_split_on_a_datasetdict_names_the_keyword(saved: Path, tmp_path: Path) -> None:
    dd = datasets.load_from_disk(str(saved))
    with pytest.raises(SourceError) as err:
        mmdata.shard(dd, tmp_path / "ds", split="train=0.8,val=0.2", progress=False)
    msg = str(err.value)
    assert "its own splits (train, test)" in msg and "dd['train']" in msg
    assert "split= for --split" in msg  # a Python caller is told its keyword
    rep = mmdata.shard(dd, tmp_path / "ds", progress=False)  # without split=: the dataset's own splits
    assert rep["splits"] == {"train": 4, "test": 2}
    rep = mmdata.shard(dd["train"], tmp_path / "one", split="train=0.5,val=0.5", progress=False)
    assert rep["splits"] == {"train": 2, "val": 2}


def test_cli_split_on_a_saved_datasetdict_says_drop_the_option(saved: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["shard", str(saved), str(tmp_path / "ds"), "--split", "train=0.8,val=0.2"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "its own splits (train, test)" in err and "drop --split" in err
    assert "split=None" not in err and "from Python" not in err  # a shell user has no keyword to pass
