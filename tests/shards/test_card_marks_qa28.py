"""What counts as an mmdata dataset folder, and how big a card is read (QA28 security #3, #5).

#3: ``dataset.json`` was parsed whole whatever its size (a 60 MB card of ``{}`` took 1.7 GB): a card over
``index.MAX_CARD_BYTES`` is now refused before a byte is parsed, naming the file, its size and the limit.
#5: any entry named ``dataset.json`` (an nnU-Net ``dataset.json``, a link pointing anywhere) made
``mmdata shard`` take the folder for a dataset and replace the user's files without ``--force``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import ShardError, SourceError
from mmdata.shards import index as idx
from mmdata.testing import make_class_folders

NNUNET = '{"name": "Task01", "labels": {"0": "bg"}, "numTraining": 1}\n'


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("marks")
    make_class_folders(root / "raw", classes=("cat", "dog"), per_class=2)
    mmdata.shard(root / "raw", root / "ds", progress=False)
    return root


def _cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from mmdata.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    got = capsys.readouterr()
    return int(exc.value.code or 0), got.out + got.err


# ---- #3 ---------------------------------------------------------------------------------------------


def test_an_oversized_card_is_refused_before_it_is_read(tmp_path: Path) -> None:
    (tmp_path / idx.CARD).write_bytes(b"")
    os.truncate(tmp_path / idx.CARD, idx.MAX_CARD_BYTES + 1)  # sparse: no disk, no read needed to refuse it
    with pytest.raises(ShardError) as exc:
        idx.load_card(tmp_path)
    msg = str(exc.value)
    assert msg.startswith(f"{tmp_path / idx.CARD}: ") and f"{idx.MAX_CARD_BYTES + 1} bytes" in msg
    assert "64 MiB" in msg and "dataset card" in msg


def test_the_size_check_comes_before_parsing(ds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card = json.loads((ds / "ds" / idx.CARD).read_text(encoding="utf-8"))
    card["x_extra"] = [{}] * 5000
    (tmp_path / idx.CARD).write_text(json.dumps(card), encoding="utf-8")
    size = (tmp_path / idx.CARD).stat().st_size
    monkeypatch.setattr(idx, "MAX_CARD_BYTES", size - 1)
    parsed = []
    monkeypatch.setattr(idx.json, "loads", lambda *a, **k: parsed.append(1))
    with pytest.raises(ShardError, match=rf"{size} bytes, over the limit of {size - 1} bytes"):
        idx.load_card(tmp_path)
    assert not parsed


def test_a_card_at_the_limit_is_read(ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idx, "MAX_CARD_BYTES", (ds / "ds" / idx.CARD).stat().st_size)
    assert idx.load_card(ds / "ds")["format"] == idx.FORMAT


# ---- #5 ---------------------------------------------------------------------------------------------


def test_a_foreign_dataset_json_is_no_mark_and_shard_refuses(ds: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o8"
    out.mkdir()
    (out / idx.CARD).write_text(NNUNET, encoding="utf-8")
    (out / "train-000000.tar").write_bytes(b"MYTAR")
    (out / "imagesTr").mkdir()
    assert not idx.dataset_marks(out)
    code, text = _cli("shard", str(ds / "raw"), str(out), capsys=capsys)
    assert code == 2, text
    assert "not an mmdata dataset and not empty" in text and "dataset.json" in text and "train-000000.tar" in text
    assert (out / idx.CARD).read_text(encoding="utf-8") == NNUNET
    assert (out / "train-000000.tar").read_bytes() == b"MYTAR"


@pytest.mark.parametrize("name", [idx.CARD, idx.INDEX, idx.SHARDS])
@pytest.mark.parametrize("target", ["dangling", "elsewhere"])
def test_a_link_pointing_anywhere_is_no_mark(ds: Path, tmp_path: Path, name: str, target: str) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (tmp_path / "elsewhere").write_text(NNUNET, encoding="utf-8")
    os.symlink(tmp_path / target, out / name)
    (out / "train-000000.tar").write_bytes(b"MYTAR")
    assert not idx.dataset_marks(out)
    # a link elsewhere: "not an mmdata dataset"; a dangling one: named as such once the writer says so
    # (review of QA28 #7, index.dangling_note)
    with pytest.raises(SourceError, match=rf"output folder .*: .*{name}"):
        mmdata.shard(ds / "raw", out, progress=False)
    assert (out / "train-000000.tar").read_bytes() == b"MYTAR" and os.path.islink(out / name)


def test_real_datasets_still_count(ds: Path, tmp_path: Path) -> None:
    assert idx.dataset_marks(ds / "ds")
    # a dataset folder of links (git-annex, DVC's symlink cache): its card and tables are links to the real files
    linked = tmp_path / "linked"
    linked.mkdir()
    for p in (ds / "ds").iterdir():
        os.symlink(p, linked / p.name)
    assert idx.dataset_marks(linked)
    assert idx.load_card(linked)["format"] == idx.FORMAT
    # a damaged card of ours is still a dataset's (reading it says what is wrong, not "bare shards")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / idx.CARD).write_text('{"format": "mmdata/1", "name": "x", ', encoding="utf-8")
    assert idx.dataset_marks(broken)
    with pytest.raises(ShardError, match="invalid JSON"):
        idx.load_card(broken)
    # a folder being written (its journal) counts without a card
    journal = tmp_path / "journal"
    journal.mkdir()
    from mmdata.shards.journal import NAME

    (journal / NAME).write_text("{}", encoding="utf-8")
    assert idx.dataset_marks(journal)
