"""A git-annex / DVC dataset whose content is not fetched (its card, index and shards table are links to
missing files) is refused naming the links and what to do, not as "not an mmdata dataset" (review of QA28 #7)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.shards import index as idx
from mmdata.testing import make_class_folders


def test_shard_into_links_to_missing_files_names_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.cli.main import main

    raw = make_class_folders(tmp_path / "raw", classes=("cat", "dog"), per_class=2)
    out = tmp_path / "annex"
    out.mkdir()
    for name, key in ((idx.CARD, "aa.json"), (idx.INDEX, "bb.parquet"), (idx.SHARDS, "cc.parquet")):
        os.symlink(f"../.git/annex/objects/XX/SHA256E-s1--{key}", out / name)
    (out / "train-000000.tar").write_bytes(b"MYTAR")
    with pytest.raises(SystemExit) as exc:
        main(["shard", str(raw), str(out)])
    text = capsys.readouterr().err
    assert exc.value.code == 2, text
    assert "dataset.json, index.parquet, shards.parquet are links to missing files" in text
    assert "git annex get / dvc pull" in text and "--force" in text and "not an mmdata dataset" not in text
    assert (out / "train-000000.tar").read_bytes() == b"MYTAR" and os.path.islink(out / idx.CARD)
    os.remove(out / idx.INDEX)
    os.remove(out / idx.SHARDS)
    with pytest.raises(SourceError, match=r"dataset\.json is a link to a missing file \(\.\./\.git/annex/"):
        mmdata.shard(raw, out, progress=False)
    mmdata.shard(raw, out, progress=False, force=True)
    assert idx.load_card(out)["format"] == idx.FORMAT
