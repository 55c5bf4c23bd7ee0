"""Rerunning a finished `shard` / `augment` job.

Before: a rerun of a finished job rewrote every shard, and removed the card first, so a rerun stopped
half-way (Ctrl-C, a full disk) left a dataset that had been complete without its card. Now a rerun of the
same job over unchanged sources finds the folder up to date and writes nothing (as make or a build
cache would); any change — a source, an option, the card's inputs, a file of the folder — runs the job.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.shards.output import done_path
from mmdata.testing import make_sample_folder

RECIPE = {"image": [{"op": "hflip", "p": 0.5}]}


def _stamps(root: Path) -> dict[str, tuple[int, int]]:
    """Every file's (inode, mtime) — what a rewrite (an atomic rename) changes."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(root.iterdir())}


def _tree(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


@pytest.fixture()
def raw(tmp_path: Path) -> Path:
    return make_sample_folder(tmp_path / "raw", n=24)


def test_a_rerun_of_a_finished_job_writes_nothing_and_says_so(raw: Path, tmp_path: Path, cli_without_ray) -> None:  # noqa: ANN001
    out = tmp_path / "ds"
    first = mmdata.shard(raw, out, maxcount=10, progress=False)
    assert not first.get("up_to_date")
    before, files = _stamps(out), _tree(out)
    again = mmdata.shard(raw, out, maxcount=10, progress=False)
    assert again["up_to_date"] is True
    assert {k: again[k] for k in ("samples", "shards", "splits", "fingerprint")} == \
        {k: first[k] for k in ("samples", "shards", "splits", "fingerprint")}
    assert _stamps(out) == before  # not one file rewritten (the card neither: it never went away)
    # the folder holds the dataset's files only, byte for byte a fresh run's
    fresh = tmp_path / "fresh" / "ds"  # the card names the folder
    mmdata.shard(raw, fresh, maxcount=10, progress=False)
    assert _tree(out) == files == _tree(fresh)
    assert sorted(files) == ["dataset.json", "index.parquet", "shards.parquet"] + [f"train-00000{i}.tar" for i in range(3)]
    r = cli_without_ray("shard", raw, out, "--maxcount", "10")
    assert r.returncode == 0, r.stderr
    assert " ".join(r.stdout.split()).startswith(f"up to date: {out} already holds this job's 24 samples in 3 shards "
                                                 f"(train: 24); nothing rewritten")
    assert _stamps(out) == before
    r = cli_without_ray("shard", raw, out, "--maxcount", "10", "--json")
    assert json.loads(r.stdout)["up_to_date"] is True


def _edit_source(raw: Path) -> None:
    png = sorted(raw.rglob("*.png"))[0]
    png.write_bytes(sorted(raw.rglob("*.png"))[1].read_bytes())


def _touch_source(raw: Path) -> None:
    os.utime(sorted(raw.rglob("*.png"))[0])


def _touch_shard(out: Path) -> None:
    os.utime(out / "train-000001.tar")


def _damage_shard(out: Path) -> None:
    p = out / "train-000001.tar"
    data = bytearray(p.read_bytes())
    data[700] ^= 1
    p.write_bytes(bytes(data))


def _edit_card(out: Path) -> None:
    card = json.loads((out / "dataset.json").read_text())
    card["name"] = "edited"
    (out / "dataset.json").write_text(json.dumps(card))


def _drop_index(out: Path) -> None:
    (out / "index.parquet").unlink()


def _unfinished_journal(out: Path) -> None:
    (out / ".mmdata-journal").write_bytes(b"")


@pytest.mark.parametrize("change", [_edit_source, _touch_source, _touch_shard, _damage_shard, _edit_card, _drop_index,
                                    _unfinished_journal])
def test_any_change_to_the_sources_or_the_folder_runs_the_job_again(raw: Path, tmp_path: Path, change) -> None:  # noqa: ANN001
    out, fresh = tmp_path / "ds", tmp_path / "fresh" / "ds"
    mmdata.shard(raw, out, maxcount=10, progress=False)
    change(raw if change in (_edit_source, _touch_source) else out)
    rep = mmdata.shard(raw, out, maxcount=10, progress=False)
    assert not rep.get("up_to_date")
    mmdata.shard(raw, fresh, maxcount=10, progress=False)
    assert _tree(out) == _tree(fresh) and mmdata.verify(out)["ok"]
    assert mmdata.shard(raw, out, maxcount=10, progress=False)["up_to_date"] is True  # and then it is up to date


@pytest.mark.parametrize("kw", [{"maxcount": 5}, {"name": "other"}, {"card_extra": {"description": "a card of its own"}},
                                {"seed": 3, "split": {"train": 0.5, "val": 0.5}}])
def test_another_job_into_the_folder_runs(raw: Path, tmp_path: Path, kw: dict) -> None:
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=10, progress=False)
    rep = mmdata.shard(raw, out, **{"maxcount": 10, **kw}, progress=False)
    assert not rep.get("up_to_date")
    card = json.loads((out / "dataset.json").read_text())
    if "name" in kw:
        assert card["name"] == "other"
    if "card_extra" in kw:
        assert "a card of its own" in json.dumps(card)
    assert mmdata.shard(raw, out, **{"maxcount": 10, **kw}, progress=False)["up_to_date"] is True


def test_a_copy_of_the_folder_is_not_taken_for_the_original(raw: Path, tmp_path: Path) -> None:
    out, copy = tmp_path / "ds", tmp_path / "copy"
    mmdata.shard(raw, out, progress=False)
    shutil.copytree(out, copy)
    assert not mmdata.shard(raw, copy, progress=False).get("up_to_date")
    assert mmdata.shard(raw, copy, progress=False)["up_to_date"] is True
    assert mmdata.shard(raw, out, progress=False)["up_to_date"] is True  # each folder its own record


def test_the_record_is_kept_outside_the_folder_and_a_cache_that_cannot_be_written_costs_only_the_shortcut(
        raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "ds"
    mmdata.shard(raw, out, progress=False)
    record = done_path(out)
    assert record.is_file() and not record.is_relative_to(out)
    assert json.loads(record.read_text())["folder"] == str(out.resolve())
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache would be")
    monkeypatch.setenv("MMDATA_CACHE", str(blocked))
    other = tmp_path / "other"
    assert mmdata.shard(raw, other, progress=False)["samples"] == 24  # the job itself is not affected
    assert not mmdata.shard(raw, other, progress=False).get("up_to_date")  # no record: written again


def test_a_rerun_of_a_finished_augment_writes_nothing_and_another_recipe_or_seed_runs(raw: Path, tmp_path: Path,
                                                                                      cli_without_ray) -> None:  # noqa: ANN001
    ds, aug = tmp_path / "ds", tmp_path / "aug"
    mmdata.shard(raw, ds, maxcount=10, progress=False)
    first = augment_dataset(ds, aug, RECIPE, copies=2, progress=False)
    before, files = _stamps(aug), _tree(aug)
    again = augment_dataset(ds, aug, RECIPE, copies=2, progress=False)
    assert again["up_to_date"] is True and again["samples"] == first["samples"] == 48
    assert again["augmented_splits"] == ["train"] and _stamps(aug) == before
    r = cli_without_ray("augment", ds, aug, "-r", _recipe_file(tmp_path), "--copies", "2")
    assert r.returncode == 0, r.stderr
    assert "up to date (nothing rewritten" in " ".join(r.stdout.split()) and _stamps(aug) == before
    assert not augment_dataset(ds, aug, RECIPE, copies=2, seed=1, progress=False).get("up_to_date")
    assert _tree(aug) != files
    assert not augment_dataset(ds, aug, {"image": [{"op": "hflip", "p": 0.9}]}, copies=2, seed=1,
                               progress=False).get("up_to_date")
    # a changed source dataset (resharded) is another job too
    assert not augment_dataset(ds, aug, RECIPE, copies=2, progress=False).get("up_to_date")
    assert _tree(aug) == files
    mmdata.shard(raw, ds, maxcount=5, progress=False)
    assert not augment_dataset(ds, aug, RECIPE, copies=2, progress=False).get("up_to_date")


def _recipe_file(tmp_path: Path) -> str:
    p = tmp_path / "recipe.yaml"
    p.write_text("image:\n  - op: hflip\n    p: 0.5\n")
    return str(p)
