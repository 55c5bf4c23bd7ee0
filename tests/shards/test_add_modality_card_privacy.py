"""QA round 34: what ``mmdata add-modality`` writes into the card, and how an older card is protected.

gdpr #1: the files of the modality's folder that matched no sample (after an erasure: the erased person's,
``jane_doe_s07_006.depth.npy``) were named in ``dataset.json: skipped`` and copied onward by ``augment``: the card
now counts them (``modalities.<field>.unmatched`` / ``unmatched_reasons``) and names none; the command's output
still names them. upgrade #3: a card written before 2026-12-06 (no ``card_digests``) stayed unprotected after
add-modality rewrote it, and verify's only advice (a ``--rewrite`` reshard) removes every added series: add-modality
now records the digests, verify's note names a remedy that keeps the series, and ``protect_card`` seals a card in
place once verify passes. Real shards, real .npy files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.cli.main import app
from mmdata.errors import ShardError
from mmdata.shards import index as idx
from mmdata.shards.verify import UNPROTECTED, protect_card
from mmdata.testing import make_sample_folder

KEYS = [f"{i:06d}" for i in range(6)]


def _columns_ds(tmp_path: Path) -> Path:
    raw = make_sample_folder(tmp_path / "raw", n=len(KEYS))
    mmdata.shard(raw, tmp_path / "ds", layout="columns", maxcount=4, progress=False)
    return tmp_path / "ds"


def _depth(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in names:
        np.save(folder / f"{k}.depth.npy", np.full((2, 2), 7, np.float32))
    return folder


def _card(ds: Path) -> dict:
    return json.loads((ds / idx.CARD).read_text(encoding="utf-8"))


def _unprotect(ds: Path) -> None:
    """The card as mmdata wrote it before 2026-12-06: no card_digests."""
    card = _card(ds)
    card.pop(idx.CARD_DIGESTS)
    (ds / idx.CARD).write_text(json.dumps(card), encoding="utf-8")


def test_unused_files_are_counted_in_the_card_never_named(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    dep = _depth(tmp_path / "dep", KEYS + ["jane_doe_s07_006", "jane_doe_s07_014"])
    (dep / "jane_doe_notes.zip").write_bytes(b"PK")
    res = CliRunner().invoke(app, ["add-modality", str(ds), "depth", str(dep)])
    assert res.exit_code == 0, res.output
    assert "jane_doe_s07_006.depth.npy" in res.output  # the user is told which files were not used
    text = (ds / idx.CARD).read_text(encoding="utf-8")
    assert "jane" not in text.lower()
    rec = _card(ds)["modalities"]["depth"]
    assert rec["unmatched"] == 3 and sum(rec["unmatched_reasons"].values()) == 3
    assert mmdata.verify(ds)["ok"]
    # augment of it carries no such name either
    out = tmp_path / "aug"
    augment_dataset(ds, out, {"image": [{"op": "hflip", "p": 1.0}]}, progress=False)
    assert "jane" not in (out / idx.CARD).read_text(encoding="utf-8").lower()


def test_add_modality_protects_an_older_card_and_verify_keeps_the_added_series(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    mmdata.add_modality(ds, "depth", _depth(tmp_path / "dep", KEYS))
    _unprotect(ds)
    rep = mmdata.verify(ds)
    note = rep["unprotected_card"]
    # the remedy named keeps the added series (a --rewrite reshard removes it)
    assert note != UNPROTECTED and "depth" in note and "protect_card" in note and "add-modality" in note
    # a series added (or replaced) today records the digests: the card is protected from then on
    mmdata.add_modality(ds, "depth", _depth(tmp_path / "dep2", KEYS), replace=True)
    assert idx.CARD_DIGESTS in _card(ds)
    rep = mmdata.verify(ds)
    assert rep["ok"] and "unprotected_card" not in rep
    card = _card(ds)  # and an edit after it is named
    card["license"] = "proprietary"
    (ds / idx.CARD).write_text(json.dumps(card), encoding="utf-8")
    assert not mmdata.verify(ds)["ok"]


def test_protect_card_seals_an_older_card_in_place_once_verify_passes(tmp_path: Path) -> None:
    ds = _columns_ds(tmp_path)
    mmdata.add_modality(ds, "depth", _depth(tmp_path / "dep", KEYS))
    _unprotect(ds)
    tars = {p: p.read_bytes() for p in ds.rglob("*.tar")}
    assert protect_card(ds) is True
    assert {p: p.read_bytes() for p in ds.rglob("*.tar")} == tars and (ds / "depth").is_dir()
    rep = mmdata.verify(ds)
    assert rep["ok"] and "unprotected_card" not in rep
    assert protect_card(ds) is False  # already protected: nothing written
    # a card that disagrees with its data is not sealed as it is
    _unprotect(ds)
    card = _card(ds)
    card["counts"]["samples"] = 999
    (ds / idx.CARD).write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ShardError, match="verify finds"):
        protect_card(ds)
    assert idx.CARD_DIGESTS not in _card(ds)
