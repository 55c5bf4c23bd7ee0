"""QA26 F13: a checkout without `git lfs pull` shards to a text-only dataset with exit 0 and no word about it.

Git LFS pointers (as media files and as shard tars) are named as such, a modality left out in most
samples is a warning, and ``--max-skipped`` / ``max_skipped=`` fails the job (the dataset written)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import ShardError, SourceError
from mmdata.shards import index as idx
from mmdata.shards.pointers import LFS_POINTER, is_lfs_pointer
from mmdata.shards.verify import verify
from mmdata.shards.writer import ShardWarning, TooManySkipped, parse_max_skipped
from mmdata.testing import make_sample_folder

POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 1234\n"
MEDIA = ("*.png", "*.jpg", "*.flac", "*.wav")


def _unfetched(raw: Path, patterns: tuple[str, ...] = MEDIA) -> int:
    """Replace the files as a clone without `git lfs pull` leaves them; how many."""
    n = 0
    for pattern in patterns:
        for f in raw.rglob(pattern):
            f.write_bytes(POINTER)
            n += 1
    return n


def _shard(raw: Path, out: Path, **kw: object) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShardWarning)
        return mmdata.shard(raw, out, progress=False, **kw)


def _cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from mmdata.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    got = capsys.readouterr()
    return int(exc.value.code or 0), got.out, got.err


def test_is_lfs_pointer_only_for_pointers() -> None:
    assert is_lfs_pointer(POINTER)
    assert not is_lfs_pointer(b"version 2 of my caption")
    assert not is_lfs_pointer(POINTER + b"x" * 2000)  # git-lfs reads nothing that large as a pointer


def test_media_pointers_are_named_and_the_lost_modalities_warned(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=8, missing=False)
    _unfetched(raw)
    with pytest.warns(ShardWarning) as got:
        rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    members = [s for s in rep["skipped"] if s["what"] == "member"]
    assert len(members) == 16 and {s["reason"] for s in members} == {LFS_POINTER}
    want = {"image: 8 of 8 files were left out (all Git LFS pointers: run `git lfs pull`): the dataset has no image",
            "audio: 8 of 8 files were left out (all Git LFS pointers: run `git lfs pull`): the dataset has no audio"}
    assert want <= set(rep["warnings"])
    assert want <= {str(w.message) for w in got}
    card = json.loads((tmp_path / "ds" / idx.CARD).read_text())
    assert want <= set(card["warnings"])


def test_a_few_bad_files_are_no_modality_warning(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=8, missing=False)
    (raw / "000003.png").write_bytes(POINTER)
    rep = _shard(raw, tmp_path / "ds")
    assert [s["reason"] for s in rep["skipped"]] == [LFS_POINTER]
    assert not any("files were left out" in w for w in rep["warnings"])


def test_more_than_half_lost_says_how_many_are_left(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4, missing=False)
    for k in ("000000", "000001", "000002"):
        (raw / f"{k}.flac").write_bytes(b"not audio at all")
    rep = _shard(raw, tmp_path / "ds")
    lost = [w for w in rep["warnings"] if w.startswith("audio:")]
    assert len(lost) == 1 and lost[0].startswith("audio: 3 of 4 files were left out (not audio soundfile can open")
    assert lost[0].endswith("only 1 sample has one")


def test_a_caption_that_is_a_pointer_is_left_out(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4, missing=False)
    (raw / "000002.txt").write_bytes(POINTER)  # valid UTF-8: it was stored as the caption
    rep = _shard(raw, tmp_path / "ds")
    assert [(s["source"], s["reason"]) for s in rep["skipped"]] == [("000002.txt", LFS_POINTER)]
    texts = {s.key: s.get("text") for s in mmdata.open_dataset(tmp_path / "ds", decode=False)}
    assert texts["000002"] is None


def test_on_error_raise_names_the_pointer(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=3, missing=False)
    (raw / "000001.png").write_bytes(POINTER)
    with pytest.raises(SourceError, match=r"000001\.png: a Git LFS pointer .*git lfs pull"):
        mmdata.shard(raw, tmp_path / "ds", progress=False, on_error="raise")


def test_shard_tars_that_are_pointers_are_named(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4)
    _shard(raw, tmp_path / "ds")
    tar = tmp_path / "ds" / "train-000000.tar"
    tar.write_bytes(POINTER)
    with pytest.raises(ShardError, match="is not a tar file but a Git LFS pointer"):
        list(mmdata.open_dataset(tmp_path / "ds"))
    rep = verify(tmp_path / "ds")
    assert not rep["ok"] and any("Git LFS pointer" in p["problem"] or "Git LFS pointer" in str(p.get("found"))
                                 for p in rep["problems"])


def test_max_skipped_fails_the_job_and_keeps_the_dataset(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=8, missing=False)
    _unfetched(raw)
    with pytest.raises(TooManySkipped, match=r"8 of 8 samples lost a file .*--max-skipped 0\.01") as exc:
        _shard(raw, tmp_path / "ds", max_skipped=0.01)
    assert exc.value.report["samples"] == 8 and (tmp_path / "ds" / idx.CARD).is_file()
    with pytest.raises(TooManySkipped):  # a rerun: up to date, and still over the limit
        _shard(raw, tmp_path / "ds", max_skipped="5")
    assert _shard(raw, tmp_path / "ds", max_skipped=8)["up_to_date"]  # the limit is not part of the job


def test_max_skipped_counts_samples(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=10, missing=False)
    (raw / "000001.png").write_bytes(POINTER)
    (raw / "000001.flac").write_bytes(POINTER)  # one sample, two files: counted once
    assert _shard(raw, tmp_path / "a", max_skipped=1)["samples"] == 10
    assert _shard(raw, tmp_path / "b", max_skipped=0.1)["samples"] == 10
    with pytest.raises(TooManySkipped, match="1 of 10 samples"):
        _shard(raw, tmp_path / "c", max_skipped=0)
    with pytest.raises(TooManySkipped):
        _shard(raw, tmp_path / "d", max_skipped="5%")


@pytest.mark.parametrize("bad", ["x", -1, 1.5, "150%", True])
def test_max_skipped_refuses_nonsense_before_the_job(tmp_path: Path, bad: object) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=2)
    with pytest.raises(SourceError, match="max.skipped"):
        mmdata.shard(raw, tmp_path / "ds", progress=False, max_skipped=bad)
    assert not (tmp_path / "ds").exists()


def test_parse_max_skipped() -> None:
    assert parse_max_skipped("0") == 0 and parse_max_skipped(3) == 3
    assert parse_max_skipped("0.25") == 0.25 and parse_max_skipped("1%") == 0.01 and parse_max_skipped(None) is None


def test_cli_max_skipped_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=6, missing=False)
    _unfetched(raw, ("*.png",))
    code, out, err = _cli("shard", str(raw), str(tmp_path / "ds"), "--max-skipped", "0", "--json", capsys=capsys)
    assert code == 1
    rep = json.loads(out)
    assert rep["exit_code"] == 1 and not rep["ok"] and "--max-skipped" in rep["error"]
    assert "image: 6 of 6 files were left out (all Git LFS pointers" in err
    assert (tmp_path / "ds" / idx.CARD).is_file()
    code, out, err = _cli("shard", str(raw), str(tmp_path / "ds"), "--max-skipped", "6", capsys=capsys)
    assert code == 0


def test_dvc_files_not_fetched_are_named_and_warned(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4, missing=False)
    for f in raw.glob("*.png"):  # as a clone without `dvc pull` has them: photo.png.dvc, no photo.png
        (raw / (f.name + ".dvc")).write_text(f"outs:\n- md5: 0\n  path: {f.name}\n")
        f.unlink()
    rep = _shard(raw, tmp_path / "ds")
    files = [s for s in rep["skipped"] if s["what"] == "file"]
    assert len(files) == 4 and all("`dvc pull`" in s["reason"] for s in files)
    assert ("image: 4 of 4 files were left out (all tracked by DVC and not fetched: run `dvc pull`): the dataset "
            "has no image") in rep["warnings"]


def test_max_skipped_counts_samples_that_lost_a_file_to_dvc(tmp_path: Path) -> None:
    """QA26 review: a DVC pointer is a 'file' entry, which --max-skipped did not count: a CI gate with
    max_skipped=0 passed a dataset whose every image was not fetched."""
    raw = make_sample_folder(tmp_path / "raw", n=4, missing=False)
    for f in raw.glob("*.png"):
        (raw / (f.name + ".dvc")).write_text(f"outs:\n- md5: 0\n  path: {f.name}\n")
        f.unlink()
    with pytest.raises(TooManySkipped, match=r"4 of 4 samples lost a file .*`dvc pull`"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mmdata.shard(raw, tmp_path / "ds", max_skipped=0, progress=False)


def test_a_dvc_tracked_source_folder_not_fetched_says_dvc_pull(tmp_path: Path) -> None:
    (tmp_path / "raw.dvc").write_text("outs:\n- md5: 0.dir\n  path: raw\n")
    with pytest.raises(SourceError, match=r"raw does not exist: .*raw\.dvc beside it is a DVC pointer .*dvc pull"):
        mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)


def test_a_gzipped_shard_that_is_a_pointer_is_named(tmp_path: Path) -> None:
    (tmp_path / "train-000000.tar.gz").write_bytes(POINTER)
    with pytest.raises(ShardError, match=r"train-000000\.tar\.gz: is not a gzip file but a Git LFS pointer"):
        list(mmdata.open_dataset(tmp_path / "train-000000.tar.gz"))


def test_a_class_names_file_that_is_a_pointer_is_refused(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=3)
    (raw / "labels.txt").write_bytes(POINTER)  # its three lines were three class names
    with pytest.raises(SourceError, match=r"class names file .*labels\.txt: a Git LFS pointer"):
        mmdata.shard(raw, tmp_path / "ds", progress=False)


@pytest.mark.parametrize("name", ["meta.csv", "meta.jsonl", "meta.csv.gz", "meta.parquet"])
def test_a_manifest_that_is_a_pointer_is_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(POINTER)
    with pytest.raises(SourceError, match=rf"manifest .*{name.replace('.', '[.]')}: a Git LFS pointer"):
        mmdata.shard(tmp_path / name, tmp_path / "ds", progress=False)
