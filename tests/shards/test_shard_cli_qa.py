"""`mmdata shard` QA items: an interrupted re-shard never leaves an old card over new shards, zero-frame
audio is bad data in every format, option and output-folder mistakes are one-line errors (exit 2), a
source whose every file is bad is an error, sizes read as sizes, and Ctrl-C says how to resume."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.errors import ShardError, SourceError
from mmdata.shards import index as idx
from mmdata.shards import writer
from mmdata.shards.journal import NAME as JOURNAL
from mmdata.shards.mediainfo import CorruptMedia, probe_audio, probe_audio_py
from mmdata.shards.writer import parse_split
from mmdata.testing import make_sample_folder
from mmdata.testing.procs import sigint_as_from_a_terminal
from tests.procs_helpers import communicate_or_kill

REPO = Path(__file__).parents[2]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in this process as the ``mmdata`` command does; (exit code, stdout + stderr)."""
    from mmdata.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    got = capsys.readouterr()
    return int(exc.value.code or 0), got.out + got.err


# -- 1: a re-shard with other options, stopped half-way ------------------------------------------------


def test_reshard_failing_after_its_first_shard_leaves_no_card(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=12, missing=False)
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=3, progress=False)
    old_first = (out / "train-000000.tar").read_bytes()
    good = (raw / "000010.flac").read_bytes()
    (raw / "000010.flac").write_bytes(b"not flac")  # the new plan's last shard fails, after shard 0 was written
    with pytest.raises(SourceError, match="000010"):
        mmdata.shard(raw, out, maxcount=4, on_error="raise", progress=False)
    assert (out / "train-000000.tar").read_bytes() != old_first  # a shard of the new plan
    assert not (out / idx.CARD).exists() and (out / JOURNAL).is_file()
    for read in (mmdata.inspect, mmdata.verify):
        with pytest.raises(ShardError, match=r"`mmdata shard` job into this folder did not finish.*rerun"):
            read(out)
    (raw / "000010.flac").write_bytes(good)
    rep = mmdata.shard(raw, out, maxcount=4, on_error="raise", progress=False)
    assert rep["samples"] == 12 and mmdata.verify(out)["ok"]
    mmdata.shard(raw, tmp_path / "clean" / "ds", maxcount=4, on_error="raise", progress=False)
    assert _tree(out) == _tree(tmp_path / "clean" / "ds")


def test_reshard_killed_after_its_first_shard_leaves_no_card(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL (no clean-up runs) once the new plan's first shard is journaled: the folder has no card,
    and inspect / verify say the job did not finish; the rerun completes it."""
    raw = make_sample_folder(tmp_path / "raw", n=12, missing=False)
    out = tmp_path / "ds"
    mmdata.shard(raw, out, maxcount=3, progress=False)
    head = (out / idx.CARD).read_bytes()
    env = {**os.environ, "MMDATA_TEST_SHARD_DELAY": "0.5"}
    proc = subprocess.Popen([sys.executable, "-m", "mmdata.cli.main", "shard", str(raw), str(out), "--maxcount", "4"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    journal = out / JOURNAL
    deadline = time.time() + 60
    try:
        # the journal's first record is the plan (12-byte head + 64 hex digits); a longer one holds a shard
        while time.time() < deadline and not (journal.is_file() and journal.stat().st_size > 76):
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert journal.is_file() and journal.stat().st_size > 76, "the job did not finish a shard in 60 s"
    assert not (out / idx.CARD).exists(), "an old card over the new plan's shards"
    code, text = _cli("inspect", str(out), capsys=capsys)
    assert code == 2 and "did not finish" in text and "rerun" in text and "Traceback" not in text
    code, text = _cli("verify", str(out), capsys=capsys)
    assert code == 2 and "did not finish" in text
    mmdata.shard(raw, out, maxcount=4, progress=False)
    assert (out / idx.CARD).read_bytes() != head and not journal.exists()
    mmdata.shard(raw, tmp_path / "clean" / "ds", maxcount=4, progress=False)
    assert _tree(out) == _tree(tmp_path / "clean" / "ds")


def test_reshard_into_an_object_store_removes_the_card_first(tmp_path: Path) -> None:
    """The card goes through the output object, so a remote OUT loses it before its first new shard too."""
    import fsspec

    from mmdata.shards.output import output

    raw = make_sample_folder(tmp_path / "raw", n=8, missing=False)
    url = f"memory://qa-{tmp_path.name}/ds"
    mmdata.shard(raw, url, maxcount=3, progress=False)
    fs = fsspec.filesystem("memory")
    assert fs.isfile(f"{url}/{idx.CARD}".removeprefix("memory://"))
    out = output(url)
    out.remove_card()
    assert not fs.isfile(f"{url}/{idx.CARD}".removeprefix("memory://"))
    out.remove_card()  # nothing there: nothing to do
    good = (raw / "000006.flac").read_bytes()
    (raw / "000006.flac").write_bytes(b"not flac")
    mmdata.shard(raw, url, maxcount=3, progress=False)  # the card back
    with pytest.raises(SourceError, match="000006"):
        mmdata.shard(raw, url, maxcount=4, on_error="raise", progress=False)
    assert not fs.isfile(f"{url}/{idx.CARD}".removeprefix("memory://"))
    with pytest.raises(ShardError, match="did not finish"):
        idx.load_card(url)
    (raw / "000006.flac").write_bytes(good)
    assert mmdata.shard(raw, url, maxcount=4, progress=False)["samples"] == 8
    assert idx.load_card(url)["options"]["maxcount"] == 4


# -- 2: audio of zero frames ---------------------------------------------------------------------------


def _silent(fmt: str, subtype: str) -> bytes:
    if fmt == "FLAC":  # libsndfile writes no FLAC of 0 frames: a FLAC's metadata blocks without its frames
        from mmdata.testing import audio_bytes

        data = audio_bytes(0, seconds=0.25, sample_rate=8000)
        pos, last = 4, False
        while not last:
            last = bool(data[pos] & 0x80)
            pos += 4 + int.from_bytes(data[pos + 1:pos + 4], "big")
        return data[:pos]
    buf = io.BytesIO()
    sf.write(buf, np.zeros(0, np.float32), 8000, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.mark.parametrize("fmt,subtype,ext", [("WAV", "PCM_16", "wav"), ("WAV", "FLOAT", "wav"),
                                             ("OGG", "VORBIS", "ogg"), ("FLAC", "PCM_16", "flac")])
def test_zero_frame_audio_is_left_out_in_every_format(tmp_path: Path, fmt: str, subtype: str, ext: str) -> None:
    data = _silent(fmt, subtype)
    for probe in (probe_audio_py, probe_audio):
        with pytest.raises(CorruptMedia, match="without audio frames"):
            probe(data)
    raw = tmp_path / "z"
    raw.mkdir()
    (raw / f"a.{ext}").write_bytes(data)
    (raw / f"b.{ext}").write_bytes(data)
    (raw / "b.txt").write_text("a caption", encoding="utf-8")
    for check in ("header", "decode"):
        rep = mmdata.shard(raw, tmp_path / f"o-{check}", check=check, progress=False)
        assert rep["samples"] == 1  # b keeps its caption, a had nothing else
        reasons = {s["source"]: s["reason"] for s in rep["skipped"] if s["what"] == "member"}
        assert set(reasons) == {f"a.{ext}", f"b.{ext}"} and all("without audio frames" in r for r in reasons.values())


# -- 3, 4: options and output folders that cannot work -------------------------------------------------


@pytest.mark.parametrize("spec,message", [
    ("train=nan,val=1", "'nan'"), ("train=inf,val=0", "'inf'"), ("train=-0.5,val=1.5", "'-0.5'"),
    ("train=1e400", "'1e400'"), ("=0.5,val=0.5", "'=0.5'"), ("train=0.5,val=", "'val='"),
    ("train=x", "'train=x'"), ("train=1.5,val=-0.5", "'1.5'"), ("train=0.4,val=0.4", "sum 0.8"),
    ("TRAIN=0.5,train=0.5", "'TRAIN' and 'train' differ only in case"), ("train=0.5,Train=0.3,val=0.2", "only in case"),
    ("train=0.5,train=0.5", "'train' is given twice"), ("train=0.5, train =0.5", "given twice"),
])
def test_bad_split_specs_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(SourceError, match="--split \\(split=\\)") as exc:
        parse_split(spec)
    assert message in str(exc.value)


def test_good_split_specs() -> None:
    assert parse_split("train=0.8,val=0.1,test=0.1") == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert parse_split(" train = 1 ") == {"train": 1.0}
    assert parse_split({"train": 0.5, "val": 0.5}) == {"train": 0.5, "val": 0.5}
    with pytest.raises(SourceError, match="only in case"):
        parse_split({"Val": 0.5, "val": 0.5})


@pytest.mark.parametrize("spec", ["train=nan,val=1", "TRAIN=0.5,train=0.5", "train=0.5,train=0.5", "=0.5"])
def test_cli_split_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4)
    code, text = _cli("shard", str(raw), str(tmp_path / "o"), "--split", spec, capsys=capsys)
    assert code == 2 and "--split" in text and "Traceback" not in text and len(text.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_output_that_is_a_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine", encoding="utf-8")
    code, text = _cli("shard", str(raw), str(notes), capsys=capsys)
    assert code == 2 and "Traceback" not in text and len(text.strip().splitlines()) == 1
    assert str(notes) in text and "a file" in text and "folder" in text
    assert notes.read_text(encoding="utf-8") == "mine"
    with pytest.raises(SourceError, match="a file"):  # the API too, and under an existing file
        mmdata.shard(raw, notes / "ds", progress=False)


def test_output_that_cannot_be_created_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4)
    code, text = _cli("shard", str(raw), "/proc/mmdata-qa/out", capsys=capsys)
    assert code == 2 and "Traceback" not in text and len(text.strip().splitlines()) == 1
    # found before the source is read (QA26: a probe file, not os.access, which says yes to root for /proc)
    assert "/proc/mmdata-qa/out" in text and "would be made in /proc, which is not writable" in text
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(SourceError, match="not writable|cannot create"):
            mmdata.shard(raw, ro / "ds", progress=False)


# -- 5: every file bad ---------------------------------------------------------------------------------


def test_source_whose_every_file_is_bad_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "allbad"
    raw.mkdir()
    (raw / "a.png").write_bytes(b"junk\n")
    (raw / "b.png").write_bytes(b"more junk\n")
    (raw / "b.txt").write_bytes(b"\xff\xfe not utf-8")
    (raw / "notes.zip").write_bytes(b"zip")
    out = tmp_path / "o"
    code, text = _cli("shard", str(raw), str(out), capsys=capsys)
    assert code == 2 and "Traceback" not in text
    assert "no sample could be sharded" in text and "4 files" in text and "a.png" in text and "not an image" in text
    assert not out.exists()  # made by the job, removed with its empty shards
    out.mkdir()
    (out / "mine.txt").write_text("a user's file", encoding="utf-8")
    # a folder of someone else's files is refused first, naming them (QA 2026-12-04); --force writes into it
    with pytest.raises(SourceError, match=r"not an mmdata dataset and not empty: it holds 1 entry \(mine.txt\)"):
        mmdata.shard(raw, out, layout="columns", progress=False)
    with pytest.raises(SourceError, match="no sample could be sharded"):
        mmdata.shard(raw, out, layout="columns", progress=False, force=True)
    assert [p.name for p in out.rglob("*")] == ["mine.txt"]  # nothing that looks like a dataset; theirs kept
    (raw / "c.txt").write_text("one good caption", encoding="utf-8")
    assert mmdata.shard(raw, out, progress=False, force=True)["samples"] == 1  # and the folder then works


# -- 6: sizes in messages ------------------------------------------------------------------------------


def test_human_size() -> None:
    sizes = (0, 200, 1023, 1024, 1894, 10_000, 1023 * 1024, 1 << 20, 5 * (1 << 20) + 1, 100 * 10**9, 1 << 40,
             5000 << 40)
    assert [writer.human_size(n) for n in sizes] == [
        "0 B", "200 B", "1023 B", "1 KB", "1.85 KB", "9.77 KB", "0.999 MB", "1 MB", "5 MB", "93.1 GB", "1 TB",
        "5000 TB"]


def test_file_over_max_file_size_names_its_size(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=2, missing=False)
    # over 1 KiB (left out for its size, never read)
    (raw / "000001.flac").write_bytes((raw / "000001.flac").read_bytes() + b"\0" * 900)
    small, large = (raw / "000000.flac").stat().st_size, (raw / "000001.flac").stat().st_size
    assert 200 < small < 1024 <= large
    rep = mmdata.shard(raw, tmp_path / "o", max_file_size=200, progress=False)
    reasons = {s["source"]: s["reason"] for s in rep["skipped"]}
    assert reasons["000000.flac"] == (f"file of {small} B is larger than --max-file-size (200 B); raise the limit "
                                      f"to shard it")
    assert reasons["000001.flac"] == (f"file of {writer.human_size(large)} ({large} bytes) is larger than "
                                      f"--max-file-size (200 B); raise the limit to shard it")
    assert "0.0 GB" not in str(reasons)


# -- 7: Ctrl-C -----------------------------------------------------------------------------------------


def test_ctrl_c_says_the_job_was_interrupted_and_how_to_resume(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=12)
    out = tmp_path / "ds"
    env = {**os.environ, "MMDATA_TEST_SHARD_DELAY": "0.5"}
    cmd = [sys.executable, "-m", "mmdata.cli.main", "shard", str(raw), str(out), "--maxcount", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            preexec_fn=sigint_as_from_a_terminal)
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.glob("train-*.tar")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = communicate_or_kill(proc, 60)
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and "rerun" in lines[0] and "resume" in lines[0] and "Traceback" not in err
    assert not (out / idx.CARD).exists()
    assert mmdata.shard(raw, out, maxcount=2, progress=False)["samples"] == 12


def test_a_missing_dataset_folder_is_said_to_be_missing_with_the_working_directory(tmp_path: Path) -> None:
    """CLI QA 2026-12-03: `mmdata train nope` (and an ablation recipe's `dataset: {path: av}` run from another
    folder) said "nope: no dataset.json", as if the folder were there without its card."""
    res = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "train", "nope", "--epochs", "1"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert f"nope: does not exist (relative to the working directory {tmp_path})" in res.stderr, res.stderr
    (tmp_path / "empty").mkdir()
    res = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "train", str(tmp_path / "empty"), "--epochs", "1"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "empty: no dataset.json" in res.stderr, res.stderr
