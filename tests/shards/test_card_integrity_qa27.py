"""QA27 B7 / B15: ``mmdata verify`` checks the card (``dataset.json``) against the index — ``counts.samples``,
``counts.patterns``, each modality's count, class names against the class folders — and, where the job recorded
``card_digests``, every other entry (license, label_names, augmentation, ...) against them; a card without digests
(an older dataset) passes and is said to be unprotected. ``verify --deep`` checks the index's ``audio_seconds``
against each decoded audio member (an edited 999 s passed; inspect then summed it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.verify import UNPROTECTED, card_digest_problems, verify
from mmdata.testing import make_class_folders, make_sample_folder
from tests.shards.test_verify_qa import _cli, _edit_card, _edit_index


def _protect(ds: Path) -> None:
    """Record the card's digests as a job that writes a card does (``card[CARD_DIGESTS] = card_digests(card)``)."""
    card = json.loads((ds / idx.CARD).read_text())
    card.pop(idx.CARD_DIGESTS, None)
    card[idx.CARD_DIGESTS] = idx.card_digests(card)
    (ds / idx.CARD).write_bytes(idx.card_bytes(card))


def _unprotect(ds: Path) -> None:
    """An older card: one written before the jobs recorded ``card_digests``."""
    card = json.loads((ds / idx.CARD).read_text())
    card.pop(idx.CARD_DIGESTS)
    (ds / idx.CARD).write_bytes(idx.card_bytes(card))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("card_integrity")
    mmdata.shard(make_class_folders(t / "cls", per_class=2), t / "classes", progress=False, license="CC-BY-4.0",
                 maxcount=3)
    mmdata.shard(make_sample_folder(t / "raw", n=6), t / "media", progress=False, maxcount=3)
    return {"classes": t / "classes", "media": t / "media"}


@pytest.fixture
def classes(built: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(built["classes"], tmp_path / "classes"))


@pytest.fixture
def media(built: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(built["media"], tmp_path / "media"))


def _card_problems(ds: Path, deep: bool = False) -> list[dict[str, Any]]:
    rep = verify(ds, deep=deep)
    assert not rep["ok"]
    return [p for p in rep["problems"] if p["shard"] == idx.CARD]


def test_reversed_class_names_of_class_folders_fail_without_digests(classes: Path) -> None:
    """The QA case: label_names reversed in an older card (no digests) relabels every class for the readers;
    the class folders in the index's source keys say which name each id has."""
    _unprotect(classes)
    _edit_card(classes, lambda c: c.update(label_names=c["label_names"][::-1]))
    (p,) = _card_problems(classes)
    assert "label_names disagree with the class folders" in p["problem"]
    assert p["key"] is not None and p["key"].startswith("bird_") and "'bird/000'" in p["problem"]
    assert p["found"] == "'dog' (label_names[0])"


@pytest.mark.parametrize(("edit", "entry", "says"), [
    (lambda c: c["counts"].update(samples=99), "counts.samples", ("6 samples (index.parquet)", "99 (dataset.json)")),
    (lambda c: c["counts"].update(patterns={"image": 6}), "counts.patterns", ("image: 6 vs 0",)),
    (lambda c: c["modalities"]["image"].update(count=1), "modalities.image.count", ("6 (index.parquet)",)),
])
def test_edited_counts_disagree_with_the_index(classes: Path, edit: Callable[[dict[str, Any]], None], entry: str,
                                               says: tuple[str, ...]) -> None:
    _edit_card(classes, edit)
    (p,) = _card_problems(classes)
    text = f"{p['problem']} {p['expected']} {p['found']}"
    assert p["problem"].startswith(entry) and all(s in text for s in says), text


def test_an_intact_protected_card_passes_and_an_older_one_is_said_unprotected(classes: Path) -> None:
    # the shard job records the digests itself (writer._finalize)
    assert verify(classes, deep=True) == {"ok": True, "checked": 2, "problems": []}
    code, out = _cli(["verify", str(classes)])
    assert code == 0 and "unprotected" not in out
    _unprotect(classes)
    rep = verify(classes, deep=True)
    assert rep["ok"] and rep["unprotected_card"] == UNPROTECTED
    code, out = _cli(["verify", str(classes)])
    assert code == 0 and "unprotected" in out and "card_digests" in out


def test_a_licence_edited_after_the_shard_job_fails_verify(classes: Path) -> None:
    """End to end: the job's own digests name the QA's edit (CC-BY-4.0 -> proprietary)."""
    _edit_card(classes, lambda c: c.update(license="proprietary"))
    (p,) = _card_problems(classes)
    assert p["problem"].startswith("entry 'license' was edited after the job wrote the card"), p


@pytest.mark.parametrize(("edit", "entry", "what"), [
    (lambda c: c.update(license="proprietary"), "license", "edited"),
    (lambda c: c.update(homepage="x"), "homepage", "added"),
    (lambda c: c.pop("command"), "command", "removed"),
    (lambda c: c["options"].update(seed=5), "options", "edited"),
])
def test_an_entry_edited_after_the_job_is_named(classes: Path, edit: Callable[[dict[str, Any]], None], entry: str,
                                                what: str) -> None:
    _protect(classes)
    _edit_card(classes, edit)
    (p,) = _card_problems(classes)
    assert p["problem"].startswith(f"entry {entry!r} was {what} after the job wrote the card"), p
    code, out = _cli(["verify", str(classes)])
    assert code == 1 and f"entry '{entry}' was {what}" in out


def test_reversed_class_names_of_a_protected_card_are_named_twice_over(classes: Path) -> None:
    _protect(classes)
    _edit_card(classes, lambda c: c.update(label_names=c["label_names"][::-1]))
    problems = [p["problem"] for p in _card_problems(classes)]
    assert any(p.startswith("label_names disagree with the class folders") for p in problems)
    assert any(p.startswith("entry 'label_names' was edited") for p in problems)


def test_an_augmented_datasets_provenance_is_protected(classes: Path, tmp_path: Path) -> None:
    """An augment output's ``augmentation`` (recipe, seed, augmented_from.fingerprint) is one digested entry."""
    card = json.loads((classes / idx.CARD).read_text())
    card["augmentation"] = {"seed": 1, "recipe": {"image": [{"op": "hflip", "p": 0.5}]},
                            "augmented_from": {"name": "src", "fingerprint": "ab" * 32}}
    (classes / idx.CARD).write_bytes(idx.card_bytes(card))
    _protect(classes)
    assert verify(classes)["ok"]
    for edit in (lambda c: c["augmentation"].update(seed=2),
                 lambda c: c["augmentation"]["augmented_from"].update(fingerprint="cd" * 32),
                 lambda c: c["augmentation"]["recipe"]["image"][0].update(p=1.0)):
        ds = Path(shutil.copytree(classes, tmp_path / f"aug{len(list(tmp_path.iterdir()))}"))
        _edit_card(ds, edit)
        (p,) = _card_problems(ds)
        assert p["problem"].startswith("entry 'augmentation' was edited")


def test_digests_do_not_cover_what_add_modality_rewrites() -> None:
    """add-modality rewrites fields, modalities, skipped and the fingerprint (each checked against the index):
    a card's digests still hold after it."""
    card = {"license": "MIT", "splits": {}, "fields": ["image"], "modalities": {"image": {"count": 1}}}
    card[idx.CARD_DIGESTS] = idx.card_digests(card)
    card.update(fields=["image", "depth"], modalities={"image": {"count": 1}, "depth": {"count": 1}},
                skipped=[{"what": "file"}], skipped_count=1, fingerprint="ff")
    idx.refresh_digests(card, ("skipped", "skipped_count", "skipped_counts"))  # as add-modality does (QA27 D4)
    assert card_digest_problems(card) == []
    card[idx.CARD_DIGESTS] = "x"
    (p,) = card_digest_problems(card)
    assert "not an object" in p["problem"]


def test_deep_verify_checks_the_index_audio_seconds(media: Path) -> None:
    """The QA case: an index row's audio_seconds set to 999 passed verify --deep (an edited image size was
    caught); the decoded length is compared, within a frame."""
    edited: list[str] = []

    def stretch(rows: list[dict[str, Any]]) -> None:
        row = next(r for r in rows if r["audio_seconds"] is not None)
        row["audio_seconds"] = 999.0
        edited.append(row["key"])

    assert verify(media, deep=True)["ok"]
    _edit_index(media, stretch)
    assert verify(media)["ok"]  # plain verify decodes nothing
    (p,) = verify(media, deep=True)["problems"]
    assert p["key"] == edited[0] and p["member"].startswith(f"{edited[0]}.")
    assert "audio length" in p["problem"] and p["found"] == "999.0 s (index.parquet)"
    assert "frames at" in p["expected"]


def test_deep_verify_allows_a_frame_of_rounding(media: Path) -> None:
    """The index rounds audio_seconds to the microsecond: a length off by less than a frame is not a problem."""
    def nudge(rows: list[dict[str, Any]]) -> None:
        for r in rows:
            if r["audio_seconds"] is not None:
                r["audio_seconds"] += 0.5 / r["audio_sample_rate"]

    _edit_index(media, nudge)
    assert verify(media, deep=True)["ok"]


def test_an_emptied_left_out_list_fails_verify_and_add_modality_keeps_the_card_verified(tmp_path: Path) -> None:
    """QA27 D4: card_digests left `skipped*` out, so a card whose left-out list was emptied (a hidden data loss)
    passed verify while `mmdata diff` saw it; add-modality, which rewrites that list, refreshes its digests."""
    raw = make_sample_folder(tmp_path / "raw", n=6)
    (raw / "notes.xyz").write_text("not data")
    ds = tmp_path / "ds"
    mmdata.shard(raw, ds, progress=False, layout="columns")
    assert json.loads((ds / idx.CARD).read_text())["skipped"]
    edited = Path(shutil.copytree(ds, tmp_path / "edited"))
    _edit_card(edited, lambda c: c.update(skipped=[], skipped_count=0, skipped_counts={}))
    named = {p["problem"].split("'")[1] for p in _card_problems(edited)}
    assert {"skipped", "skipped_count", "skipped_counts"} <= named
    # add-modality rewrites the list (its own left-out files) and the card still verifies
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zzz.emb.npy").write_bytes(b"not an npy")  # matches no sample: a left-out entry of its own
    from mmdata.shards.columns import add_modality

    import numpy as np

    key = sorted(idx.load_index(ds).column("key").to_pylist())[0]
    np.save(extra / f"{key}.emb.npy", np.zeros(3, np.float32))
    rep = add_modality(ds, "emb", extra)
    assert rep["unmatched"] == 1
    assert verify(ds)["ok"], verify(ds)["problems"]
