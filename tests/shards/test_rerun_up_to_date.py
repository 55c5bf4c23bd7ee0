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
from typing import Any

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


@pytest.mark.parametrize("change", [_edit_source, _damage_shard, _edit_card, _drop_index, _unfinished_journal])
def test_any_change_to_the_sources_or_the_folder_runs_the_job_again(raw: Path, tmp_path: Path, change) -> None:  # noqa: ANN001
    """A change of content; a touched source or shard whose bytes are the same is up to date (QA26 F14)."""
    out, fresh = tmp_path / "ds", tmp_path / "fresh" / "ds"
    mmdata.shard(raw, out, maxcount=10, progress=False)
    change(raw if change is _edit_source else out)
    rep = mmdata.shard(raw, out, maxcount=10, progress=False)
    assert not rep.get("up_to_date")
    mmdata.shard(raw, fresh, maxcount=10, progress=False)
    assert _tree(out) == _tree(fresh) and mmdata.verify(out)["ok"]
    assert mmdata.shard(raw, out, maxcount=10, progress=False)["up_to_date"] is True  # and then it is up to date


@pytest.mark.parametrize("touch", [_touch_source, _touch_shard])
def test_a_touched_source_or_shard_with_the_same_bytes_is_up_to_date(raw: Path, tmp_path: Path, touch) -> None:  # noqa: ANN001
    """QA26 F14: new stamps, same content (a checkout, a restored CI cache): checked by sha256, up to date."""
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=10, progress=False)
    touch(raw if touch is _touch_source else out)
    assert mmdata.shard(raw, out, maxcount=10, progress=False)["up_to_date"] is True


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
    assert f"up to date: {aug} already holds this job's 48 samples" in " ".join(r.stdout.split()) and _stamps(aug) == before
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


# -- QA of the up-to-date check (a rerun must never keep stale output, nor crash on its record) ---------------

PLUGIN = '''
import numpy as np

from mmdata.augment.image import ImageOp


class Darken(ImageOp):
    name = "qa_darken"

    def kernel(self, arr, params):
        return (arr // 2).astype(np.uint8)
'''


def _plugin_augment(tmp_path: Path, module: str, op: str) -> Any:
    """``augment()``: ``mmdata augment DS AUG -r r.yaml --plugin MODULE --json`` in a fresh process (the CLI's
    way: each run imports the plugin's files as they are now); returns its report."""
    import subprocess
    import sys

    (tmp_path / "r.yaml").write_text(f"image:\n  - {{op: {op}, p: 1}}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}

    def augment() -> dict:
        r = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "augment", str(tmp_path / "ds"),
                            str(tmp_path / "aug"), "-r", str(tmp_path / "r.yaml"), "--plugin", module, "--json"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    return augment


def test_an_edited_plugin_op_runs_the_augment_again(raw: Path, tmp_path: Path) -> None:
    """QA: the recipe names the user's op, whose code changed: the old output was kept "up to date"."""
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    (tmp_path / "qa_rerun_ops.py").write_text(PLUGIN)
    augment = _plugin_augment(tmp_path, "qa_rerun_ops", "qa_darken")
    assert augment()["up_to_date"] is False
    before = _tree(tmp_path / "aug")
    assert augment()["up_to_date"] is True
    (tmp_path / "qa_rerun_ops.py").write_text(PLUGIN.replace("arr // 2", "arr // 4"))
    assert augment()["up_to_date"] is False
    assert _tree(tmp_path / "aug")["train-000000.tar"] != before["train-000000.tar"]


def test_other_code_runs_the_job_again(raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: mmdata's version string stays 0.1.0 between fixes — a pulled fix kept the old output. The job's
    identity holds a digest of mmdata's code and of the encoders' versions instead."""
    from mmdata.shards import writer

    out = tmp_path / "ds"
    mmdata.shard(raw, out, progress=False)
    assert len(writer.code_identity()) == 64
    monkeypatch.setattr(writer, "code_identity", lambda: "0" * 64)
    assert mmdata.shard(raw, out, progress=False)["up_to_date"] is False
    assert mmdata.shard(raw, out, progress=False)["up_to_date"] is True


def test_a_touched_source_shard_or_another_on_error_runs_the_augment_again(raw: Path, tmp_path: Path) -> None:
    """QA: a flipped byte in a source tar (its card unchanged) and --on-error raise after skip were "up to date"."""
    ds, aug = tmp_path / "ds", tmp_path / "aug"
    mmdata.shard(raw, ds, maxcount=10, progress=False)
    augment_dataset(ds, aug, RECIPE, progress=False)
    os.utime(ds / "train-000001.tar")  # its change stamp moves (as any write to it would)
    assert augment_dataset(ds, aug, RECIPE, progress=False)["up_to_date"] is False
    assert augment_dataset(ds, aug, RECIPE, progress=False)["up_to_date"] is True
    assert augment_dataset(ds, aug, RECIPE, progress=False, on_error="skip")["up_to_date"] is False
    assert augment_dataset(ds, aug, RECIPE, progress=False)["up_to_date"] is False


def test_a_folder_reached_through_a_link_gets_the_name_it_is_written_under(raw: Path, tmp_path: Path) -> None:
    """QA: written through a link named alias, then under its own name: "up to date" kept the card's name alias."""
    real, alias = tmp_path / "real", tmp_path / "alias"
    real.mkdir()
    alias.symlink_to(real)
    mmdata.shard(raw, alias, progress=False)
    assert json.loads((real / "dataset.json").read_text())["name"] == "alias"
    assert mmdata.shard(raw, real, progress=False)["up_to_date"] is False
    assert json.loads((real / "dataset.json").read_text())["name"] == "real"
    assert mmdata.shard(raw, real, progress=False)["up_to_date"] is True


@pytest.mark.parametrize(("record", "report"), [
    ("[" * 100_000 + "]" * 100_000, None),
    ('{"shards": [1, 2], "files": {}}', None),
    ("COPY", {}),  # the record as written, with its report emptied / given wrong types / removed
    ("COPY", {"samples": "many", "splits": "x"}),
    ("COPY", None),
], ids=["nested", "shards-not-dicts", "empty-report", "report-of-wrong-types", "no-report"])
def test_a_damaged_or_hostile_record_is_no_record(raw: Path, tmp_path: Path, record: str, report: dict | None) -> None:
    """QA: a deeply nested record raised RecursionError, non-dict shard entries an AttributeError, and an empty
    report was taken as "up to date" and crashed the CLI — every later run failed until the file was found."""
    out = tmp_path / "ds"
    mmdata.shard(raw, out, progress=False)
    path = done_path(out)
    if record == "COPY":
        saved = json.loads(path.read_text())
        saved["report"] = report
        path.write_text(json.dumps(saved))
    else:
        path.write_text(record)
    rep = mmdata.shard(raw, out, progress=False)
    assert rep["up_to_date"] is False and rep["samples"] == 24
    assert mmdata.shard(raw, out, progress=False)["up_to_date"] is True  # a good record again


def test_an_up_to_date_folder_is_only_read(raw: Path, tmp_path: Path) -> None:
    """QA: a read-only (published) folder failed "not writable" on an up-to-date rerun: the lock was taken first.
    Checked before the lock now — shown with another job holding it; a job that must write still waits for it."""
    from mmdata.errors import SourceError
    from mmdata.shards.journal import JobLock

    out = tmp_path / "ds"
    mmdata.shard(raw, out, progress=False)
    with JobLock(out, "another job"):
        assert mmdata.shard(raw, out, progress=False)["up_to_date"] is True
        with pytest.raises(SourceError, match="being written by another job"):
            mmdata.shard(raw, out, maxcount=5, progress=False)


def test_rewrite_writes_an_up_to_date_job_again(raw: Path, tmp_path: Path, cli_without_ray) -> None:  # noqa: ANN001
    out = tmp_path / "ds"
    mmdata.shard(raw, out, progress=False)
    before, files = _stamps(out), _tree(out)
    rep = mmdata.shard(raw, out, progress=False, rewrite=True)
    assert rep["up_to_date"] is False and _tree(out) == files
    assert _stamps(out)["dataset.json"] != before["dataset.json"]
    before = _stamps(out)
    r = cli_without_ray("shard", raw, out, "--rewrite", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["up_to_date"] is False and _stamps(out) != before and _tree(out) == files
    assert "--rewrite" in cli_without_ray("shard", "--help").stdout


def test_an_output_folder_named_with_bytes_that_are_not_utf8(raw: Path, tmp_path: Path) -> None:
    """QA: OUT named ``odd\\xff\\xfe name`` (bytes a Linux file system allows) crashed the job at its end (the
    card's name) and then every reader (pyarrow takes paths as UTF-8): the card says U+FFFD there."""
    out = tmp_path / os.fsdecode(b"odd\xff\xfe name")
    rep = mmdata.shard(raw, out, progress=False)
    assert rep["samples"] == 24
    assert json.loads((out / "dataset.json").read_text(encoding="utf-8"))["name"] == "odd\ufffd\ufffd name"
    assert mmdata.verify(out)["ok"] and len(list(mmdata.open_dataset(out))) == 24
    assert mmdata.shard(raw, out, progress=False)["up_to_date"] is True


# -- the second QA of the check --------------------------------------------------------------------------------

def test_an_augment_source_in_columns_layout_edited_underneath_runs_again(raw: Path, tmp_path: Path) -> None:
    """QA: the source folder's tars were looked for at its top, where the card names them; a columns layout keeps
    them in image/, audio/, ... — a byte changed there kept the output "up to date"."""
    ds, aug = tmp_path / "ds", tmp_path / "aug"
    mmdata.shard(raw, ds, layout="columns", progress=False)
    tar = sorted((ds / "image").glob("*.tar"))[0]
    augment_dataset(ds, aug, RECIPE, progress=False)
    assert augment_dataset(ds, aug, RECIPE, progress=False)["up_to_date"] is True
    os.utime(tar)
    assert augment_dataset(ds, aug, RECIPE, progress=False)["up_to_date"] is False


HELPER_PLUGIN = '''
import numpy as np

from qa_rerun_helper import FACTOR
from mmdata.augment.image import ImageOp


class Scale(ImageOp):
    name = "qa_scale"

    def kernel(self, arr, params):
        return (arr // FACTOR).astype(np.uint8)
'''


def test_a_helper_module_of_a_plugin_op_is_part_of_the_job(raw: Path, tmp_path: Path) -> None:
    """QA: only the op class's own file was hashed; a constant in a module it imports changed the output and the
    rerun said "up to date"."""
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    (tmp_path / "qa_rerun_helper.py").write_text("FACTOR = 2\n")
    (tmp_path / "qa_rerun_scale.py").write_text(HELPER_PLUGIN)
    augment = _plugin_augment(tmp_path, "qa_rerun_scale", "qa_scale")
    assert augment()["up_to_date"] is False and augment()["up_to_date"] is True
    (tmp_path / "qa_rerun_helper.py").write_text("FACTOR = 4\n")
    assert augment()["up_to_date"] is False


def test_a_finished_folder_made_read_only_is_still_up_to_date(raw: Path, tmp_path: Path) -> None:
    """QA: ``chmod -R a-w OUT`` (publishing it) moves every tar's ctime: the rerun wrote the folder again (or, not
    as root, failed "not writable"). A tar whose mtime and size are the same is checked by its bytes."""
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=10, progress=False)
    before = _stamps(out)
    for p in out.iterdir():
        p.chmod(0o444)
    try:
        assert mmdata.shard(raw, out, maxcount=10, progress=False)["up_to_date"] is True
        assert _stamps(out) == before
    finally:
        for p in out.iterdir():
            p.chmod(0o644)
    data = bytearray((out / "train-000001.tar").read_bytes())
    data[700] ^= 1
    mtime = (out / "train-000001.tar").stat().st_mtime_ns
    (out / "train-000001.tar").write_bytes(bytes(data))
    os.utime(out / "train-000001.tar", ns=(mtime, mtime))  # the bytes changed, the mtime put back
    assert mmdata.shard(raw, out, maxcount=10, progress=False)["up_to_date"] is False


def test_augment_with_names_that_are_not_utf8_and_into_dot(raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA: augment from or into a folder named with bytes that are not UTF-8 crashed after writing (the growth
    check read the index by path); augment into "." named its card "."."""
    src = tmp_path / os.fsdecode(b"src\xff")
    mmdata.shard(raw, src, progress=False)
    out = tmp_path / os.fsdecode(b"aug\xfe")
    assert augment_dataset(src, out, RECIPE, progress=False)["samples"] == 24
    assert augment_dataset(src, out, RECIPE, progress=False)["up_to_date"] is True
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    augment_dataset(src, ".", RECIPE, progress=False)
    assert json.loads((here / "dataset.json").read_text())["name"] == "here"
    assert augment_dataset(src, here, RECIPE, progress=False)["up_to_date"] is True


def test_bare_shards_whose_source_cannot_be_told_unchanged_are_written_each_time(tmp_path: Path) -> None:
    """QA: a server that sends no ETag or Last-Modified gave the stamp "None": a shard changed at the same size
    stayed "up to date". Such a source (here fsspec's memory file system, whose info has neither) is
    written every time, and no record is kept."""
    import fsspec

    from mmdata.testing.hostile import end_of_archive, member
    from mmdata.testing.media import image_bytes

    fs = fsspec.filesystem("memory")
    fs.pipe("/qa-rerun/a.tar", b"".join(member(f"k{i}.png".encode(), image_bytes(i)) for i in range(4))
            + end_of_archive())
    out = tmp_path / "aug"
    assert augment_dataset("memory://qa-rerun/a.tar", out, RECIPE, progress=False)["samples"] == 4
    assert augment_dataset("memory://qa-rerun/a.tar", out, RECIPE, progress=False)["up_to_date"] is False
    assert not done_path(out).exists()


def test_the_source_spelt_another_way_is_the_same_job(raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`raw`, `./raw/`, `/abs/raw` and `sub/../raw` name one folder: a finished job is up to date under each."""
    out = tmp_path / "ds"
    monkeypatch.chdir(tmp_path)
    first = mmdata.shard("raw", out, maxcount=10, progress=False)
    before = _stamps(out)
    (tmp_path / "sub").mkdir()
    for spelt in ("./raw/", str(raw), "sub/../raw", f"{raw}//"):
        assert mmdata.shard(spelt, out, maxcount=10, progress=False)["up_to_date"] is True, spelt
    monkeypatch.chdir(raw)  # and from another working directory
    assert mmdata.shard(".", out, maxcount=10, progress=False)["up_to_date"] is True
    assert _stamps(out) == before
    assert mmdata.shard(raw, tmp_path / "fresh" / "ds", maxcount=10, progress=False)["fingerprint"] == first["fingerprint"]
