"""QA round 33, read review #1 #2: a blend's checks at open (copies across its datasets, mixed formats) read
each index once — the reader's table for key / split / members / sizes, plus the format columns and
member_crc32 — find copies with numpy, keep their own card key (``copies_across_datasets``: a dataset card's
``duplicates`` has another layout), and can be switched off (``check_copies=False``)."""

from __future__ import annotations

import warnings

import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.shards import index as idx
from tests.shards.test_blend_copies_label_map_dataset_lists import RENAMES, sites  # noqa: F401 (fixture)


def test_check_copies_false_skips_the_check_and_its_card_entry(sites: dict[str, str]) -> None:  # noqa: F811
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = mmdata.blend({"A": sites["A"], "C": sites["C"]}, split="train", label_map=RENAMES, check_copies=False)
    assert "copies_across_datasets" not in b.card and "duplicates" not in b.card
    with pytest.raises(ShardError, match="check_copies"):
        mmdata.blend({"A": sites["A"], "C": sites["C"]}, label_map=RENAMES, check_copies="no")


def test_the_copies_keep_their_own_card_key(sites: dict[str, str]) -> None:  # noqa: F811
    with pytest.warns(UserWarning, match=r"copies_across_datasets; check_copies=False skips this check"):
        b = mmdata.blend({"A": sites["A"], "C": sites["C"]}, split="train", label_map=RENAMES)
    assert "duplicates" not in b.card  # a dataset card's duplicates is duplicates_across_splits' layout
    assert set(b.card["copies_across_datasets"]) == {"samples", "other_splits", "read_twice", "examples", "compared"}


def test_each_index_is_read_once_more_at_open(sites: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The reader loads key / split / members / sizes at open; the blend's checks add one read per dataset of
    the columns they need (not two reads of the members, as before)."""
    mmdata.blend({"A": sites["A"], "C": sites["C"]}, split="train", label_map=RENAMES, check_copies=False)  # warm
    calls: list[list[str]] = []
    real = idx.load_index

    def counted(*args, **kw):
        calls.append(list(kw.get("columns") or []))
        return real(*args, **kw)

    monkeypatch.setattr(idx, "load_index", counted)
    with pytest.warns(UserWarning, match="blend: 1 sample of the blended split"):
        mmdata.blend({"A": sites["A"], "C": sites["C"]}, split="train", label_map=RENAMES)
    checks = [c for c in calls if "member_crc32" in c or "image_channels" in c]
    assert len(checks) == 2 and all("members" not in c and "key" not in c for c in checks), calls


def test_a_copy_in_a_third_folder_is_found_past_a_same_folder_partner(sites: dict[str, str]) -> None:  # noqa: F811
    """A read under two names (two splits) and C: A/test's a0 is copied in C's train; the first copy of its
    key that is not read is in A's own folder, so the partner must come from another folder."""
    with pytest.warns(UserWarning) as got:
        b = mmdata.blend({"A": sites["A"], "At": sites["A"], "C": sites["C"]},
                         split={"A": "train", "At": "test", "C": "train"}, label_map=RENAMES)
    dups = b.card["copies_across_datasets"]
    assert any("blend: " in str(w.message) and "copies_across_datasets" in str(w.message) for w in got)
    # C/c0 (train) is a copy of a0, which name A does not read (test) and At reads; C/c1 of a4, read by A
    # (train) and not by At: each both leaked and read twice (the first fixer's Python loop said the same)
    assert (dups["samples"], dups["other_splits"], dups["read_twice"]) == (2, 2, 2)
    assert dups["examples"] == [[["C/c0", "train"], ["A/a0", "test"]], [["C/c1", "train"], ["At/a4", "train"]],
                                [["C/c0", "train"], ["At/a0", "test"]]]


def test_the_loader_and_the_datamodule_take_check_copies(sites: dict[str, str]) -> None:  # noqa: F811
    from mmdata.errors import MMDataError
    from mmdata.lightning import DataModule

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L = mmdata.loader({"A": sites["A"], "C": sites["C"]}, 4, label_map=RENAMES, check_copies=False)
        assert "copies_across_datasets" not in L.source.card
        dm = DataModule({"A": sites["A"], "C": sites["C"]}, batch_size=4, val_split=None, label_map=RENAMES,
                        check_copies=False)
        assert sum(len(b) for b in dm.train_dataloader()) > 0
    with pytest.raises(MMDataError, match=r"check_copies=False: it switches off a blend's check"):
        mmdata.loader(sites["A"], 4, check_copies=False)
