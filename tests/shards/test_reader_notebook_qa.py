"""A notebook user's findings on open_dataset (QA, one long-lived process, pandas on index.parquet):

1. a dataset folder is never read as bare shards, whatever a re-shard into it is doing meanwhile;
2. an object opened before a re-shard says so (both on_error modes), not "run mmdata verify" / 44 skips;
3. a typo in ``required=`` is caught when the dataset is opened, as one in ``modalities=``;
4. bool arguments are bools: ``shuffle="no"`` does not shuffle silently;
5. ``dataset.json`` / ``index.parquet`` given for the folder names the folder to pass;
8. ``repr(dataset)`` says what it reads, on one line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.shards import index as idx
from mmdata.shards import reader
from mmdata.testing import make_messy_folder

SPLIT = "train=0.7,val=0.15,test=0.15"
RECIPE = {"normalize": {"image": [{"op": "to_rgb"}, {"op": "resize", "size": [16, 16], "side": "exact"}],
                        "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 8000},
                                  {"op": "pad_trim", "seconds": 0.2}]}}


def _data(root: Path, **kw: object) -> tuple[Path, Path]:
    raw, ds = root / "raw", root / "data"
    make_messy_folder(raw, n=40, sizes=((16, 16),), seconds=(0.1, 0.3), seed=1)
    mmdata.shard(raw, ds, split=SPLIT, maxcount=5, seed=0, progress=False, **kw)  # type: ignore[arg-type]
    return raw, ds


@pytest.fixture()
def data(tmp_path: Path) -> tuple[Path, Path]:
    return _data(tmp_path)


def _keys(ds: object) -> list[str]:
    return [s.key for s in ds]  # type: ignore[attr-defined]


# -- 1: a re-shard finishing while the folder is opened ----------------------------------------------------


def test_a_card_appearing_after_the_first_look_still_reads_one_split(data: tuple[Path, Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer removed the card at its start and writes it back last: the reader looked (no card) just
    before it came back. It used to read every split's tars as bare shards (val/test leaking into train)."""
    _, ds = data
    train = _keys(mmdata.open_dataset(ds, decode=False))
    card = (ds / idx.CARD).read_bytes()
    (ds / idx.CARD).unlink()
    real = idx.unfinished_job

    def finishing(path: object, so: object) -> bool:  # the card is written back right after this check
        found = real(path, so)  # type: ignore[arg-type]
        (ds / idx.CARD).write_bytes(card)
        return found

    monkeypatch.setattr(idx, "unfinished_job", finishing)
    try:
        got = mmdata.open_dataset(ds, split="train", decode=False)
    except ShardError as exc:  # the card was not there when read: says the job, never reads bare
        assert "did not finish" in str(exc) or "being written" in str(exc)
    else:
        assert got.card is not None and _keys(got) == train
    monkeypatch.setattr(idx, "unfinished_job", real)
    seen = iter([False])
    monkeypatch.setattr(idx, "is_dataset", lambda path, so=None: next(seen, True))  # no card at the first look
    got = mmdata.open_dataset(ds, split="train", decode=False)
    assert got.card is not None and _keys(got) == train


def test_a_job_starting_while_the_tars_are_listed_is_not_read_as_bare_shards(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder of tars without a card: the first look finds none of a job's files, then a job starts writing
    (its journal appears) while the reader lists the tars."""
    _, ds = _data(tmp_path)
    folder = tmp_path / "incoming"
    folder.mkdir()
    for sh in sorted(ds.glob("*.tar")):
        (folder / sh.name).write_bytes(sh.read_bytes())
    # bare shards named by split (QA round 25, B-D2: every tar was read whatever the split): the train tars
    assert _keys(mmdata.open_dataset(folder, decode=False)) == _keys(mmdata.open_dataset(ds, split="train", decode=False))
    real = reader.expand_sources

    def job_starts(*a: object, **kw: object) -> list[str]:
        out = real(*a, **kw)  # type: ignore[arg-type]
        (folder / ".mmdata-journal").write_bytes(b"MMJ1")
        return out

    monkeypatch.setattr(reader, "expand_sources", job_starts)
    with pytest.raises(ShardError, match=str(folder)):
        mmdata.open_dataset(folder, split="train")


def test_a_folder_being_written_now_says_so(data: tuple[Path, Path]) -> None:
    """A job holds the folder's lock: not 'did not finish; rerun', which tells the user to start a second job."""
    from mmdata.shards.journal import JobLock

    _, ds = data
    (ds / idx.CARD).unlink()
    (ds / ".mmdata-journal").write_bytes(b"MMJ1")
    with JobLock(ds, "mmdata shard"):
        with pytest.raises(ShardError) as err:
            mmdata.open_dataset(ds, split="train")
    assert str(ds) in str(err.value) and "being written by a running job (pid " in str(err.value)
    with pytest.raises(ShardError, match="did not finish.*rerun"):  # the job is gone, its journal left
        mmdata.open_dataset(ds, split="train")


def test_index_changing_while_opened_is_read_again_or_refused(data: tuple[Path, Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The card read, then the writer replaces the index before the reader reads it: the open starts over
    (the stamp of dataset.json + index.parquet before and after differs) and so reads one job's files."""
    _, ds = data
    real = idx.load_card
    calls = []

    def racing(path: object, *a: object, **kw: object) -> dict[str, object]:
        card = real(path, *a, **kw)  # type: ignore[arg-type]
        if not kw.get("shard_lists", True):  # load_index's own look at the card
            return card
        calls.append(1)
        if len(calls) == 1:  # the first open's card: the index is rewritten right after it was read
            data = (ds / idx.INDEX).read_bytes()
            (ds / idx.INDEX).unlink()
            (ds / idx.INDEX).write_bytes(data)
        return card

    monkeypatch.setattr(idx, "load_card", racing)
    d = mmdata.open_dataset(ds, split="train", decode=False)
    assert len(calls) == 2 and len(_keys(d)) == d.num_samples


# -- 2: an object opened before a re-shard ------------------------------------------------------------------


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_a_dataset_opened_before_a_reshard_says_so(data: tuple[Path, Path], on_error: str) -> None:
    raw, ds = data
    d = mmdata.open_dataset(ds, on_error=on_error)
    assert len(_keys(d)) == d.num_samples
    mmdata.shard(raw, ds, split=SPLIT, maxcount=7, seed=1, progress=False)
    assert mmdata.verify(ds)["ok"]
    with pytest.raises(ShardError) as err:
        list(d)
    msg = str(err.value)
    assert str(ds) in msg and "changed since it was opened" in msg and "re-sharded" in msg and "open it again" in msg
    assert "verify" not in msg
    assert len(_keys(mmdata.open_dataset(ds, on_error=on_error))) == d.num_samples  # a new object reads it


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_loader_made_before_a_reshard_says_so(data: tuple[Path, Path], num_workers: int) -> None:
    raw, ds = data
    L = mmdata.loader(ds, 4, recipe=RECIPE, on_error="skip", num_workers=num_workers)
    assert sum(len(b) for b in L) == 28
    mmdata.shard(raw, ds, split=SPLIT, maxcount=7, seed=1, progress=False)
    with pytest.raises(ShardError, match="changed since it was opened"):
        list(L)


def test_a_reshard_in_the_middle_of_a_pass_says_so(data: tuple[Path, Path]) -> None:
    raw, ds = data
    d = mmdata.open_dataset(ds, on_error="skip", decode=False)
    it = iter(d)
    next(it)
    mmdata.shard(raw, ds, split=SPLIT, maxcount=7, seed=1, progress=False)
    with pytest.raises(ShardError, match="changed since it was opened"):
        list(it)


# -- 3: a typo in required= ---------------------------------------------------------------------------------


def test_a_typo_in_required_is_caught_when_opened(data: tuple[Path, Path]) -> None:
    _, ds = data
    for on_error in ("raise", "skip"):
        with pytest.raises(ShardError, match=r"unknown required modalities \['audoi'\]; choose from \['audio', "):
            mmdata.open_dataset(ds, required=["audoi"], on_error=on_error)
    with pytest.raises(ShardError, match="unknown required modalities"):
        mmdata.loader(ds, 4, recipe=RECIPE, required="audoi", on_error="skip")
    with pytest.raises(ShardError, match=r"required modalities \['audio'\] are not among modalities \['image', 'label'\]"):
        mmdata.open_dataset(ds, modalities=["image"], required=["audio"])
    assert mmdata.open_dataset(ds, required="audio", on_error="skip").required == ("audio",)


# -- 4: bool arguments --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["shuffle", "decode", "partition", "allow_pickle", "image_alpha"])
@pytest.mark.parametrize("value", ["no", "False", 0, None])
def test_bool_arguments_refuse_other_values(data: tuple[Path, Path], name: str, value: object) -> None:
    _, ds = data
    with pytest.raises(ShardError) as err:
        mmdata.open_dataset(ds, **{name: value})  # type: ignore[arg-type]
    assert f"{name}: expected True or False, got {value!r}" in str(err.value)


def test_bool_arguments_take_bools_and_numpy_bools(data: tuple[Path, Path]) -> None:
    import numpy as np

    _, ds = data
    d = mmdata.open_dataset(ds, shuffle=np.bool_(True), decode=False)
    assert d.shuffle is True and d.decode is False


# -- 5: the card or the index given for the folder ----------------------------------------------------------


@pytest.mark.parametrize("name", [idx.CARD, idx.INDEX, idx.SHARDS])
def test_the_card_or_index_given_for_the_folder_names_the_folder(data: tuple[Path, Path], name: str) -> None:
    _, ds = data
    for given in (ds / name, str(ds / name)):
        with pytest.raises(ShardError) as err:
            mmdata.open_dataset(given)
        msg = str(err.value)
        assert "not a tar file" not in msg and f"pass the dataset folder {ds}" in msg, msg


def test_a_table_given_as_the_path_points_at_keys(data: tuple[Path, Path]) -> None:
    import pandas as pd

    _, ds = data
    with pytest.raises(ShardError, match=r"path: expected .*got a DataFrame.*keys="):
        mmdata.open_dataset(pd.read_parquet(ds / idx.INDEX))  # type: ignore[arg-type]


# -- 8: repr --------------------------------------------------------------------------------------------------


def test_repr_is_one_short_line(data: tuple[Path, Path]) -> None:
    _, ds = data
    d = mmdata.open_dataset(ds, split="val", shuffle=True, seed=3)
    text = repr(d)
    assert "\n" not in text and len(text) < 200
    assert text == f"ShardDataset({str(ds)!r}, split='val', samples=6, shuffle=True, seed=3, epoch=0)"
    d.set_epoch(4)
    assert "epoch=4" in repr(d)
    sub = mmdata.open_dataset(ds, split=["val", "test"], keys=_keys(mmdata.open_dataset(ds, split="val"))[:2])
    assert "split=['val', 'test'], samples=2 of 12 (keys=)" in repr(sub)
    bare = mmdata.open_dataset(sorted(str(p) for p in ds.glob("train-*.tar")))
    assert repr(bare).startswith("ShardDataset(6 shards: ") and "samples=?" in repr(bare)
