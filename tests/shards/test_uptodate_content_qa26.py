"""QA26 F14: a rerun's up-to-date check falls back to content when the change stamps moved.

Before: the record of a finished job kept every source's and shard's change stamps (mtime and ctime), so a
fresh `git checkout` of the sources or a CI cache restored with `tar x` (new stamps, same bytes) was never
up to date: every CI job rewrote every shard. Now, when the stamps differ, the sources' sha256 and the
shards' sha256 are checked against the record; same content: up to date, nothing written in OUT, and the
record gets the new stamps (the next rerun is fast). Changed content still rewrites.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

import mmdata
from mmdata.shards.output import done_path
from mmdata.testing import make_sample_folder


@pytest.fixture()
def raw(tmp_path: Path) -> Path:
    return make_sample_folder(tmp_path / "raw", n=24)


def _stamps(root: Path) -> dict[str, tuple[int, int]]:
    """Every file's (inode, mtime ns): what a rewrite (an atomic rename) changes."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(root.iterdir())}


def _touch_all(root: Path) -> None:
    """New stamps, same bytes: what a fresh checkout gives every file."""
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 7_000_000_000))


def test_touched_sources_with_the_same_content_are_up_to_date_and_the_record_is_refreshed(
        raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=10, progress=False)
    before, record = _stamps(out), json.loads(done_path(out).read_text())
    assert all(isinstance(s["content"], str) for s in record["shards"])
    _touch_all(raw)
    again = mmdata.shard(raw, out, maxcount=10, progress=False)
    assert again["up_to_date"] is True and _stamps(out) == before  # nothing written in OUT
    refreshed = json.loads(done_path(out).read_text())
    assert [s["inputs"] for s in refreshed["shards"]] != [s["inputs"] for s in record["shards"]]
    # the next rerun is told up to date by the stamps alone: no source is read for its content
    import mmdata.shards.output as output

    def no_read(*_a: object) -> None:
        raise AssertionError("a content check ran although the stamps were refreshed")

    monkeypatch.setattr(output, "content_digest", no_read)
    assert mmdata.shard(raw, out, maxcount=10, progress=False)["up_to_date"] is True


def test_the_qa_case_a_touched_text_file_of_a_copied_folder(raw: Path, tmp_path: Path, cli_without_ray) -> None:  # noqa: ANN001
    raw2, out = tmp_path / "raw2", tmp_path / "ds4"
    shutil.copytree(raw, raw2)
    assert cli_without_ray("shard", raw2, out, "--json").returncode == 0
    txt = sorted(raw2.rglob("*.txt"))[0]
    txt.touch()
    r = cli_without_ray("shard", raw2, out, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["up_to_date"] is True


@pytest.mark.parametrize("edit", ["append", "same_size"])
def test_a_source_whose_content_changed_is_written_again(raw: Path, tmp_path: Path, edit: str) -> None:
    out, fresh = tmp_path / "ds", tmp_path / "fresh" / "ds"
    mmdata.shard(raw, out, maxcount=10, progress=False)
    txt = sorted(raw.rglob("*.txt"))[0]
    data = txt.read_bytes()
    st = txt.stat()
    txt.write_bytes(data + b" more" if edit == "append" else data[:-1] + bytes([data[-1] ^ 1]))
    os.utime(txt, ns=(st.st_atime_ns, st.st_mtime_ns))  # the mtime put back: the ctime and the bytes tell
    _touch_all(out)
    assert not mmdata.shard(raw, out, maxcount=10, progress=False).get("up_to_date")
    mmdata.shard(raw, fresh, maxcount=10, progress=False)
    assert (out / "index.parquet").read_bytes() == (fresh / "index.parquet").read_bytes()
    assert mmdata.shard(raw, out, maxcount=10, progress=False)["up_to_date"] is True


def test_a_restored_tar_copy_of_the_output_is_up_to_date(raw: Path, tmp_path: Path) -> None:
    """`tar cf c.tar ds; rm -rf ds; tar xf c.tar`: whole-second mtimes, new ctimes and inodes, same bytes."""
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=10, progress=False)
    archive = tmp_path / "c.tar"
    with tarfile.open(archive, "w", format=tarfile.USTAR_FORMAT) as tf:
        tf.add(out, arcname="ds")
    shutil.rmtree(out)
    with tarfile.open(archive) as tf:
        tf.extractall(tmp_path, filter="data")
    _touch_all(raw)  # and the sources checked out again
    restored = _stamps(out)
    assert mmdata.shard(raw, out, maxcount=10, progress=False)["up_to_date"] is True
    assert _stamps(out) == restored
    assert mmdata.shard(raw, out, maxcount=10, progress=False)["up_to_date"] is True


def test_a_restored_output_whose_shard_differs_is_written_again(raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=10, progress=False)
    p = out / "train-000001.tar"
    data = bytearray(p.read_bytes())
    data[700] ^= 1  # same size, another byte: the stamps moved and the sha256 differs
    p.write_bytes(bytes(data))
    assert not mmdata.shard(raw, out, maxcount=10, progress=False).get("up_to_date")
    assert mmdata.verify(out)["ok"]


def test_a_record_planted_in_another_users_cache_does_not_skip_the_job(raw: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The record is read from the user's private cache only (:func:`mmdata.urls.cache_subdir`): a shared
    cache of another user with a matching record, content digests included, is refused and the job writes."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a folder another user's")
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=10, progress=False)
    shared = tmp_path / "sharedcache"
    (shared / "jobs").mkdir(parents=True)
    shutil.copy(done_path(out), shared / "jobs" / done_path(out).name)
    for p in (shared, shared / "jobs", *(shared / "jobs").iterdir()):
        os.chown(p, 12345, 12345)
    shared.chmod(0o1777)
    monkeypatch.setenv("MMDATA_CACHE", str(shared))
    _touch_all(raw)
    with pytest.warns(mmdata.errors.CacheWarning):
        assert not mmdata.shard(raw, out, maxcount=10, progress=False).get("up_to_date")


def test_content_digest_reads_small_and_large_files_alike_and_refuses_a_fifo(tmp_path: Path) -> None:
    import hashlib

    from mmdata.shards.output import _INLINE_HASH, content_digest

    small, big, fifo = tmp_path / "a.txt", tmp_path / "b.flac", tmp_path / "c.png"
    small.write_bytes(b"caption")
    big.write_bytes(bytes(range(256)) * (_INLINE_HASH // 128))
    want = hashlib.sha256()
    for p in (small, big, small):
        want.update(os.fsencode(p) + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    assert content_digest([small, big, small]) == want.hexdigest()
    os.mkfifo(fifo)  # a source swapped for a FIFO: refused, not waited on
    assert content_digest([small, fifo]) is None and content_digest([tmp_path / "gone.txt"]) is None


def test_a_restored_augment_output_is_up_to_date(raw: Path, tmp_path: Path) -> None:
    """`mmdata augment` shares the record and its tar check: a restored OUT (new stamps, same bytes) is up
    to date. Its source dataset is in its identity by stamps: a touched source tar still runs it."""
    from mmdata.augment.offline import augment_dataset

    recipe = {"image": [{"op": "hflip", "p": 0.5}]}
    ds, aug = tmp_path / "ds", tmp_path / "aug"
    mmdata.shard(raw, ds, maxcount=10, progress=False)
    augment_dataset(ds, aug, recipe, progress=False)
    copy = tmp_path / "aug-copy"
    shutil.copytree(aug, copy)
    shutil.rmtree(aug)
    shutil.copytree(copy, aug, copy_function=shutil.copy)  # new inodes, stamps, same bytes
    before = _stamps(aug)
    assert augment_dataset(ds, aug, recipe, progress=False)["up_to_date"] is True
    assert _stamps(aug) == before


def test_a_deleted_tar_is_found_before_any_source_is_hashed(raw: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Known limit of the twenty-sixth round: a rerun with moved stamps hashed every source before finding
    a deleted tar (the cheap check ran after the content check)."""
    import mmdata.shards.output as output

    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=10, progress=False)
    _touch_all(raw)
    next(out.glob("*.tar")).unlink()
    checked: list[str] = []
    real = output.stable_content

    def spy(*a: object, **k: object) -> object:
        checked.append(sys._getframe(1).f_code.co_name)  # the up-to-date check, or the new record's digest
        return real(*a, **k)

    monkeypatch.setattr(output, "stable_content", spy)
    assert mmdata.shard(raw, out, maxcount=10, progress=False)["up_to_date"] is False
    assert checked and "_up_to_date" not in checked  # the tar was found missing before any source was hashed
