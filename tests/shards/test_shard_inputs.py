"""`mmdata shard` on messy and hostile source folders: every defect reported in issues #10 and #11
(shard side) reproduced with real files, then what a user sees instead — a kept sample, a counted
skip naming the file, or a one-line error."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.errors import SourceError
from mmdata.shards import index as idx
from mmdata.testing import audio_bytes, image_bytes, make_class_folders, make_messy_folder, make_sample_folder
from tests.procs_helpers import communicate_or_kill

ROOT = Path(__file__).parents[2]
SMALL = ((32, 32), (40, 48))  # messy-folder image sizes that keep the tests fast


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(ds: Path) -> dict[str, dict]:
    return {r["source_key"]: r for r in idx.load_index(ds).to_pylist()}


def _skips(rep: dict, what: str | None = None) -> dict[str, str]:
    return {s["source"]: s["reason"] for s in rep["skipped"] if what is None or s["what"] == what}


def _members(row: dict) -> list[str]:
    return [m.split(".", 1)[1] for m in row["members"]]


# -- odd names and links (issue #11 item 3) ----------------------------------------------------------


def test_non_utf8_file_name_is_kept_with_an_escaped_source_key(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=3, missing=False)
    odd = os.fsencode(raw) + b"/bad-\xff.png"
    with open(odd, "wb") as f:
        f.write(image_bytes(7))
    with open(os.fsencode(raw) + b"/bad-\xff.txt", "wb") as f:
        f.write(b"a caption")
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    rows = _rows(tmp_path / "ds")
    assert rep["samples"] == 4 and "bad-\\xff" in rows
    row = rows["bad-\\xff"]
    assert _members(row) == ["png", "txt"] and row["image_width"] == 32 and "." not in row["key"]
    assert any("not valid UTF-8" in w for w in rep["warnings"])
    got = {s.key: s for s in mmdata.open_dataset(tmp_path / "ds")}
    assert got[row["key"]]["text"] == "a caption"


def test_symlink_loop_is_walked_once_and_reported(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4, nested=True, missing=False)
    (raw / "part0" / "loop").symlink_to("..")  # part0/loop -> raw: a cycle
    (raw / "again").symlink_to("part1")  # the same folder twice
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert rep["samples"] == 4
    folders = _skips(rep, "folder")
    assert set(folders) == {"again", "part0/loop"}
    assert "part1" in folders["again"] and "symbolic link" in folders["part0/loop"]


def test_broken_links_and_special_files_are_counted(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=3, missing=False)
    (raw / "gone.png").symlink_to(raw / "nowhere.png")
    os.mkfifo(raw / "pipe.flac")
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)  # would hang reading a FIFO
    files = _skips(rep, "file")
    assert "broken symbolic link" in files["gone.png"] and "not a regular file" in files["pipe.flac"]
    assert rep["samples"] == 3
    with pytest.raises(SourceError, match="gone.png"):
        mmdata.shard(raw, tmp_path / "ds2", on_error="raise", progress=False)


# -- size limit (issue #11 item 4) -------------------------------------------------------------------


def test_huge_sparse_file_is_skipped_under_a_memory_limit(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4, missing=False)
    big = raw / "000001.flac"
    os.truncate(big, 100 << 30)  # 100 GB, sparse: no disk used
    code = ("import resource, json, mmdata; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            f"rep = mmdata.shard({str(raw)!r}, {str(tmp_path / 'ds')!r}, progress=False); print(json.dumps(rep))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    rep = json.loads(res.stdout)
    assert rep["samples"] == 4
    reason = _skips(rep, "member")["000001.flac"]
    assert "file of 100 GB (107374182400 bytes)" in reason and "--max-file-size" in reason
    row = _rows(tmp_path / "ds")["000001"]
    assert _members(row) == ["cls", "png", "txt"]  # the rest of the sample is kept
    # the limit is an option: a tighter one skips the image too
    rep2 = mmdata.shard(raw, tmp_path / "ds2", max_file_size=100, progress=False)
    assert "000001.png" in _skips(rep2, "member")


def test_cli_max_file_size_accepts_units(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    raw = make_sample_folder(tmp_path / "raw", n=2, missing=False)
    res = CliRunner().invoke(app, ["shard", str(raw), str(tmp_path / "ds"), "--max-file-size", "0.5K", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert {s["source"] for s in rep["skipped"]} == {"000000.flac", "000001.flac"}  # FLAC ~1 KB > 512 B
    res = CliRunner().invoke(app, ["shard", str(raw), str(tmp_path / "x"), "--max-file-size", "lots"])
    assert res.exit_code != 0 and "max-file-size" in res.output


# -- two files for one field (issue #11 item 5) ------------------------------------------------------


@pytest.mark.parametrize("pair,kept", [(("a.jpeg", "a.jpg"), "a.jpeg"), (("a.jpg", "a.png"), "a.jpg"),
                                       (("a.JPG", "a.jpg"), "a.JPG"), (("a.flac", "a.wav"), "a.flac"),
                                       (("a.cls", "a.label"), "a.cls")])
def test_two_files_for_one_field(tmp_path: Path, pair: tuple[str, str], kept: str) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=3, missing=False)
    for name in pair:
        ext = name.rsplit(".", 1)[1].lower()
        data = {"jpeg": image_bytes(1, fmt="jpg"), "jpg": image_bytes(2, fmt="jpg"), "png": image_bytes(3),
                "flac": audio_bytes(1), "wav": audio_bytes(2, fmt="wav"), "cls": b"1", "label": b"2"}[ext]
        (raw / name).write_bytes(data)
    (raw / "a.txt").write_text("caption", encoding="utf-8")
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    other = pair[1] if kept == pair[0] else pair[0]
    skips = _skips(rep, "member")
    assert list(skips) == [other] and kept in skips[other]
    row = _rows(tmp_path / "ds")["a"]
    kept_ext = kept.rsplit(".", 1)[1].lower()
    assert kept_ext in _members(row) and len(row["members"]) == 2  # the kept file and the caption
    assert rep["skipped_counts"]["members"] == 1
    with pytest.raises(SourceError, match=f"{pair[0]}.*{pair[1]}|{pair[1]}.*{pair[0]}"):
        mmdata.shard(raw, tmp_path / "ds2", on_error="raise", progress=False)


# -- one job per output folder (issue #11 item 6) ----------------------------------------------------


def _start_shard(raw: Path, out: Path, delay: str) -> subprocess.Popen:
    env = {**os.environ, "MMDATA_TEST_SHARD_DELAY": delay}
    return subprocess.Popen([sys.executable, "-m", "mmdata.cli.main", "shard", str(raw), str(out), "--maxcount", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def test_second_job_into_the_same_output_is_refused_and_a_dead_holder_does_not_block(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=8)
    out = tmp_path / "ds"
    for delay in ("1.5", "5", "15"):  # 4 shards x delay: the second job starts inside, however loaded the machine
        shutil.rmtree(out, ignore_errors=True)
        first = _start_shard(raw, out, delay)
        deadline = time.time() + 60
        while time.time() < deadline and not list(out.glob("train-*.tar")):
            time.sleep(0.05)
        second = _start_shard(raw, out, "0")
        _, err2 = communicate_or_kill(second, 60)
        if first.poll() is None:
            break
        communicate_or_kill(first, 120)  # it ended before the second one started: again, slower
    else:
        pytest.fail("the first job ended before the second one started, even at 15 s per shard")
    assert second.returncode == 75, err2  # busy: retry later (QA26 F12), not bad input (2)
    assert f"pid {first.pid}" in err2 and str(out) in err2 and "Traceback" not in err2
    _, err1 = communicate_or_kill(first, 120)
    assert first.returncode == 0, err1
    mmdata.shard(raw, tmp_path / "clean" / "ds", maxcount=2, progress=False)
    assert _tree(out) == _tree(tmp_path / "clean" / "ds") and mmdata.verify(out)["ok"]
    # a holder killed with SIGKILL leaves its lock file behind; the next job takes over and resumes
    shutil.rmtree(out)
    killed = _start_shard(raw, out, "0.6")
    while time.time() < deadline + 60 and not list(out.glob("train-*.tar")):
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert (out / ".mmdata-lock").exists()
    mmdata.shard(raw, out, maxcount=2, progress=False)
    assert _tree(out) == _tree(tmp_path / "clean" / "ds")


# -- determinism of the card (issue #11 item 9) ------------------------------------------------------


def test_card_is_deterministic_when_files_are_skipped(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "a" / "raw", n=6, missing=False)
    (raw / "000001.png").write_bytes(b"not a png at all")  # unidentified by Pillow: its message names a BytesIO
    (raw / "000002.txt").write_bytes(b"\xff\xfe bad utf8")
    (raw / "x.webp").write_bytes(b"RIFF\x10\x00\x00\x00WEBPjunk")  # a sample with nothing else
    shutil.copytree(raw, tmp_path / "b" / "raw")
    mmdata.shard(raw, tmp_path / "a" / "ds", progress=False)
    mmdata.shard(tmp_path / "b" / "raw", tmp_path / "b" / "ds", progress=False)
    a, b = (idx.load_card(tmp_path / x / "ds") for x in "ab")
    assert json.dumps(a) == json.dumps(b)
    assert _tree(tmp_path / "a" / "ds") == _tree(tmp_path / "b" / "ds")
    text = json.dumps(a["skipped"])
    assert " at 0x" not in text and str(tmp_path) not in text


# -- labels (issue #11 item 11, issue #10 item 10) ---------------------------------------------------


@pytest.mark.parametrize("content,why", [(b"", "empty"), (b"cat\n", "integer"), (b"1.5", "a real number, not a class id"),
                                         (b"-1", "negative"), (b"\xff\xfe", "UTF-8")])
def test_bad_label_file_follows_on_error(tmp_path: Path, content: bytes, why: str) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4, missing=False)
    (raw / "000002.cls").write_bytes(content)
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert rep["samples"] == 4  # the sample stays, unlabelled
    assert why in _skips(rep, "member")["000002.cls"]
    row = _rows(tmp_path / "ds")["000002"]
    assert row["label"] is None and "label" not in row["modalities"] and "image" in row["modalities"]
    with pytest.raises(SourceError, match="000002.cls"):
        mmdata.shard(raw, tmp_path / "ds2", on_error="raise", progress=False)


def test_class_names_file_at_the_root_declares_classes(tmp_path: Path) -> None:
    m = make_messy_folder(tmp_path / "raw", n=12, sizes=SMALL, stray_label=True)
    rep = mmdata.shard(m.root, tmp_path / "ds", progress=False)
    card = idx.load_card(tmp_path / "ds")
    assert card["label_names"] == ["circle", "square", "triangle"] and card["num_classes"] == 3
    assert card["label_names_from"] == "labels.json"
    assert "labels" not in _rows(tmp_path / "ds")  # the names file is not a sample
    reason = _skips(rep, "member")["stray-label.cls"]
    assert "7" in reason and "circle" in reason  # names the declared classes
    assert _rows(tmp_path / "ds")["stray-label"]["label"] is None
    with pytest.raises(SourceError, match="stray-label.cls"):
        mmdata.shard(m.root, tmp_path / "ds2", on_error="raise", progress=False)


def test_labels_txt_and_labels_option(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=6, missing=False)
    (raw / "labels.txt").write_text("cat\ndog\nbird\n", encoding="utf-8")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    card = idx.load_card(tmp_path / "ds")
    assert card["label_names"] == ["cat", "dog", "bird"] and card["label_names_from"] == "labels.txt"
    names = tmp_path / "names.txt"
    names.write_text("zero\none\ntwo\nthree\n", encoding="utf-8")
    from mmdata.cli.main import app

    res = CliRunner().invoke(app, ["shard", str(raw), str(tmp_path / "ds2"), "--labels", str(names), "--json"])
    assert res.exit_code == 0, res.output
    card = idx.load_card(tmp_path / "ds2")
    assert card["label_names"] == ["zero", "one", "two", "three"] and card["label_names_from"] == "--labels"
    assert card["num_classes"] == 4


def test_class_folders_with_a_names_file_keep_its_order(tmp_path: Path) -> None:
    raw = make_class_folders(tmp_path / "raw", per_class=2)
    (raw / "labels.json").write_text(json.dumps({"names": ["dog", "cat", "bird"]}), encoding="utf-8")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    card = idx.load_card(tmp_path / "ds")
    assert card["label_names"] == ["dog", "cat", "bird"]
    assert {r["source_key"].split("/")[0]: r["label"] for r in idx.load_index(tmp_path / "ds").to_pylist()} == {
        "dog": 0, "cat": 1, "bird": 2}
    (raw / "labels.json").write_text(json.dumps({"names": ["dog", "cat"]}), encoding="utf-8")
    with pytest.raises(SourceError, match="bird.*labels.json"):
        mmdata.shard(raw, tmp_path / "ds2", progress=False)


def test_label_gaps_without_declared_names_warn(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    raw = make_sample_folder(tmp_path / "raw", n=6, missing=False)
    (raw / "000004.cls").write_text("7", encoding="utf-8")
    res = CliRunner().invoke(app, ["shard", str(raw), str(tmp_path / "ds")])
    assert res.exit_code == 0, res.output
    card = idx.load_card(tmp_path / "ds")
    assert card["num_classes"] == 8 and card["label_names"] is None
    warning = next(w for w in card["warnings"] if "label" in w)
    assert "3, 4, 5, 6" in warning and "labels.json" in warning
    assert "3, 4, 5, 6" in " ".join(res.output.split())


# -- corrupt media (issue #10 item 8) ----------------------------------------------------------------


def _flac(seconds: float, rate: int = 16000) -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.cos(2 * np.pi * 1234.5 * t ** 1.5)).astype(np.float32),
             rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _bad_media() -> dict[str, tuple[str, bytes, str]]:
    """name -> (extension, bytes, words the skip reason must contain)."""
    jpg = image_bytes(1, size=(64, 64), fmt="jpg")
    png = image_bytes(2, size=(64, 64))
    wav = audio_bytes(3, seconds=0.5, fmt="wav")
    flac_long = _flac(1.0)  # several frames
    flac_short = _flac(0.1)  # one frame: only its CRC tells a cut
    flipped = bytearray(png)
    flipped[60] ^= 0x10  # inside IDAT: the chunk CRC no longer matches
    return {
        "jpeg cut in half": ("jpg", jpg[: len(jpg) // 2], "JPEG"),
        "jpeg cut before its end marker": ("jpg", jpg[:-2], "end-of-image"),
        "png cut": ("png", png[:-20], "PNG"),
        "png bit flip": ("png", bytes(flipped), "CRC"),
        "wav cut": ("wav", wav[: len(wav) // 2], "data"),
        "flac cut (many frames)": ("flac", flac_long[: len(flac_long) // 2], "FLAC"),
        "flac cut (last frame)": ("flac", flac_short[:-5], "FLAC"),
    }


@pytest.mark.parametrize("case", list(_bad_media()))
def test_truncated_or_corrupt_media_is_dropped_and_the_sample_kept(tmp_path: Path, case: str) -> None:
    ext, data, words = _bad_media()[case]
    raw = make_sample_folder(tmp_path / "raw", n=3, missing=False, image_fmt="jpg" if ext == "jpg" else "png",
                             audio_fmt=ext if ext in ("wav", "flac") else "flac")
    (raw / f"000001.{ext}").write_bytes(data)
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert rep["samples"] == 3
    reason = _skips(rep, "member")[f"000001.{ext}"]
    assert words in reason, reason
    row = _rows(tmp_path / "ds")["000001"]
    assert ext not in _members(row) and {"label", "text"} <= set(row["modalities"])
    assert sum(1 for _ in mmdata.open_dataset(tmp_path / "ds", on_error="raise")) == 3  # the reader never sees it
    with pytest.raises(SourceError, match=f"000001.{ext}"):
        mmdata.shard(raw, tmp_path / "ds2", on_error="raise", progress=False)


def test_valid_media_variants_pass_the_checks(tmp_path: Path) -> None:
    """No false alarms: progressive JPEG, junk after a JPEG's end, 16-bit/palette PNG, stereo FLAC, 24-bit WAV."""
    import soundfile as sf
    from PIL import Image

    raw = tmp_path / "raw"
    raw.mkdir()
    arr = (np.arange(48 * 40 * 3) % 251).astype(np.uint8).reshape(48, 40, 3)
    files = {}
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", progressive=True)
    files["prog.jpg"] = buf.getvalue()
    files["trailer.jpg"] = buf.getvalue() + b"\x00\x00extra bytes after EOI"
    for name, mode in (("p16.png", "I;16"), ("pal.png", "P"), ("la.png", "LA"), ("bw.png", "1")):
        buf = io.BytesIO()
        Image.fromarray(arr).convert("L" if mode in ("I;16", "1") else "RGB").convert(mode).save(buf, "PNG")
        files[name] = buf.getvalue()
    x = (0.2 * np.sin(np.arange(24000) / 9.0)).astype(np.float32)
    for name, fmt, sub, data in (("st.flac", "FLAC", "PCM_24", np.stack([x, -x], 1)), ("m24.wav", "WAV", "PCM_24", x),
                                 ("f32.wav", "WAV", "FLOAT", x)):
        buf = io.BytesIO()
        sf.write(buf, data, 16000, format=fmt, subtype=sub)
        files[name] = buf.getvalue()
    for name, data in files.items():
        (raw / name).write_bytes(data)
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert rep["skipped"] == [] and rep["samples"] == len(files)
    rows = _rows(tmp_path / "ds")
    assert rows["st"]["audio_channels"] == 2 and rows["st"]["audio_seconds"] == 1.5
    assert rows["p16"]["image_mode"] == "I;16" and rows["pal"]["image_mode"] == "P" and rows["la"]["image_channels"] == 2


def test_bad_caption_keeps_the_image_and_audio(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4, missing=False)
    (raw / "000002.txt").write_bytes(b"caf\xe9 latin-1")
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert "UTF-8" in _skips(rep, "member")["000002.txt"] and rep["skipped_counts"] == {
        "samples": 0, "members": 1, "files": 0, "folders": 0}
    row = _rows(tmp_path / "ds")["000002"]
    assert row["modalities"] == ["audio", "image", "label"] and row["text_chars"] is None


def test_a_sample_with_nothing_left_is_skipped_whole(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=3, missing=False, labels=False)
    for ext in ("png", "flac", "txt"):
        (raw / f"000001.{ext}").write_bytes(b"\xff\xd8 junk" if ext != "txt" else b"\xff")
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert rep["samples"] == 2 and rep["skipped_counts"]["members"] == 3 and rep["skipped_counts"]["samples"] == 1
    assert "000001" in _skips(rep, "sample")


def test_check_decode_finds_bodies_the_header_checks_pass(tmp_path: Path) -> None:
    import zlib

    raw = make_sample_folder(tmp_path / "raw", n=3, missing=False)
    png = bytearray(image_bytes(1))
    i = png.index(b"IDAT")
    n = int.from_bytes(png[i - 4:i], "big")
    png[i + 4:i + 4 + n] = bytes(n)  # zeros: not a zlib stream, with a correct CRC
    png[i + 4 + n:i + 8 + n] = zlib.crc32(bytes(png[i:i + 4 + n])).to_bytes(4, "big")
    (raw / "000001.png").write_bytes(bytes(png))
    assert mmdata.shard(raw, tmp_path / "ds", progress=False)["skipped"] == []
    rep = mmdata.shard(raw, tmp_path / "ds2", check="decode", progress=False)
    assert "000001.png" in _skips(rep, "member")
    with pytest.raises(SourceError, match="check"):
        mmdata.shard(raw, tmp_path / "ds3", check="everything", progress=False)


# -- index columns and inspect (issue #14 item 4, issue #10 item 10) ---------------------------------


def test_index_media_columns_match_pillow_and_soundfile(tmp_path: Path) -> None:
    import soundfile as sf
    from PIL import Image

    m = make_messy_folder(tmp_path / "raw", n=21, sizes=SMALL)
    mmdata.shard(m.root, tmp_path / "ds", progress=False)
    truth = m.by_stem()
    for row in idx.load_index(tmp_path / "ds").to_pylist():
        t = truth[row["source_key"].rsplit("/", 1)[-1]]
        files = {mm.split(".", 1)[1]: mm for mm in row["members"]}
        if t.image_ext:
            src = m.root / t.folder / f"{t.stem}.{t.image_ext}"
            with Image.open(src) as im:
                assert (row["image_mode"], row["image_channels"]) == (im.mode, len(im.getbands())) == (
                    t.image_mode, {"RGB": 3, "L": 1, "RGBA": 4}[t.image_mode])
                assert (row["image_height"], row["image_width"]) == (im.height, im.width)
        else:
            assert row["image_mode"] is None and row["image_channels"] is None
        if t.audio_ext:
            info = sf.info(str(m.root / t.folder / f"{t.stem}.{t.audio_ext}"))
            assert (row["audio_channels"], row["audio_sample_rate"]) == (info.channels, info.samplerate) == (
                t.channels, t.sample_rate)
            assert row["audio_seconds"] == pytest.approx(info.frames / info.samplerate, abs=1e-6)
        assert ("txt" in files) == (t.text is not None)


def test_inspect_shows_modes_rates_channels_and_warns_on_mixes(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    m = make_messy_folder(tmp_path / "raw", n=24, sizes=SMALL)
    mmdata.shard(m.root, tmp_path / "ds", progress=False)
    rep = mmdata.inspect(tmp_path / "ds")
    modes = {}
    for t in m.truth:
        if t.image_mode:
            modes[t.image_mode] = modes.get(t.image_mode, 0) + 1
    decoded = {"3": modes.get("RGB", 0) + modes.get("RGBA", 0), "1": modes.get("L", 0)}  # RGBA decodes to RGB
    assert rep["image"]["modes"] == modes and rep["image"]["channels"] == {k: v for k, v in decoded.items() if v}
    assert rep["audio"]["sample_rates"] == {str(r): sum(1 for t in m.truth if t.sample_rate == r) for r in (16000, 22050)}
    assert set(rep["audio"]["channels"]) == {"1", "2"}
    kinds = {w["kind"] for w in rep["warnings"]}
    assert {"image channels", "audio sample rates", "audio channels"} <= kinds
    res = CliRunner().invoke(app, ["inspect", str(tmp_path / "ds")])
    assert res.exit_code == 0 and "22050" in res.output and "RGBA" in res.output and "mixed" in res.output
    js = json.loads(CliRunner().invoke(app, ["inspect", str(tmp_path / "ds"), "--json"]).stdout)
    assert js["warnings"] == rep["warnings"]


# -- the messy folder end to end ---------------------------------------------------------------------


def test_messy_folder_is_sharded_exactly(tmp_path: Path) -> None:
    m = make_messy_folder(tmp_path / "raw", n=30, sizes=SMALL, stray_label=True, corrupt=True)
    opts = dict(split="train=0.7,val=0.15,test=0.15", maxcount=8, seed=1, progress=False)
    rep = mmdata.shard(m.root, tmp_path / "one" / "ds", workers=1, **opts)
    mmdata.shard(m.root, tmp_path / "two" / "ds", workers=2, **opts)
    assert _tree(tmp_path / "one" / "ds") == _tree(tmp_path / "two" / "ds")
    ds = tmp_path / "one" / "ds"
    rows = {r["source_key"].rsplit("/", 1)[-1]: r for r in idx.load_index(ds).to_pylist()}
    truth = m.by_stem()
    assert set(rows) == set(truth) | {"truncated", "bad caption"}
    for stem, t in truth.items():
        r = rows[stem]
        assert r["modalities"] == sorted(t.modalities + (["label"] if t.label is not None and t.label < 3 else []))
        assert r["label"] == (t.label if t.label is not None and t.label < 3 else None)
        assert r["source_key"] == (f"{t.folder}/{stem}" if t.folder else stem)
    assert rows["truncated"]["modalities"] == ["text"]  # the cut JPEG dropped, the caption kept
    assert rows["bad caption"]["modalities"] == ["image", "label"]  # the bad caption dropped
    assert _skips(rep, "member").keys() == {"truncated.jpg", "bad caption.txt", "stray-label.cls"}
    card = idx.load_card(ds)
    counts = m.counts()
    assert card["counts"]["per_class"] == {"0": counts["circle"], "1": counts["square"] + 1, "2": counts["triangle"]}
    assert card["num_classes"] == 3 and card["skipped_counts"] == {"samples": 0, "members": 3, "files": 0, "folders": 0}
    read = sum(1 for split in ("train", "val", "test") for _ in mmdata.open_dataset(ds, split=split, on_error="raise"))
    assert read == len(rows) == card["counts"]["samples"]


# -- class folders next to stray root files (new-user QA item 1) ------------------------------------


def _class_folder_tree(root: Path) -> Path:
    """``cat/a.png``, ``cat/sub1/a.png``, ``dog/a.png``, ``dog/b.png``: labels from the folders."""
    for rel, i in (("cat/a.png", 0), ("cat/sub1/a.png", 1), ("dog/a.png", 2), ("dog/b.png", 3)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(image_bytes(i))
    return root


@pytest.mark.parametrize("stray", [".DS_Store", "README.md", "notes.zip", "labels.txt"])
def test_stray_root_file_keeps_the_class_folder_labels(tmp_path: Path, stray: str) -> None:
    raw = _class_folder_tree(tmp_path / "cf7")
    (raw / stray).write_bytes(b"cat\ndog\n" if stray == "labels.txt" else b"\x00\x01 not data")
    from mmdata.cli.main import app

    res = CliRunner().invoke(app, ["shard", str(raw), str(tmp_path / "d_t"), "--json"])
    assert res.exit_code == 0, res.output
    card = idx.load_card(tmp_path / "d_t")
    assert card["label_names"] == ["cat", "dog"]
    assert {k: r["label"] for k, r in _rows(tmp_path / "d_t").items()} == {
        "cat/a": 0, "cat/sub1/a": 0, "dog/a": 1, "dog/b": 1}
    if stray != "labels.txt":  # the stray file is still listed, never dropped silently
        assert [s["source"] for s in card["skipped"]] == [stray]


def test_a_sample_at_the_root_still_turns_class_folders_off(tmp_path: Path) -> None:
    raw = _class_folder_tree(tmp_path / "raw")
    (raw / "loose.png").write_bytes(image_bytes(9))
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert all(r["label"] is None for r in _rows(tmp_path / "ds").values())
    mmdata.shard(raw, tmp_path / "forced", labels_from_folders=True, progress=False)
    got = {k: r["label"] for k, r in _rows(tmp_path / "forced").items()}
    assert got == {"cat/a": 0, "cat/sub1/a": 0, "dog/a": 1, "dog/b": 1, "loose": None}


def test_class_folders_with_some_label_files_warn_and_the_flags_decide(tmp_path: Path) -> None:
    raw = _class_folder_tree(tmp_path / "raw")
    (raw / "cat" / "a.cls").write_text("1", encoding="utf-8")  # one sample labelled by a file
    (raw / ".DS_Store").write_bytes(b"\x00")
    from mmdata.cli.main import app

    res = CliRunner().invoke(app, ["shard", str(raw), str(tmp_path / "ds")])
    assert res.exit_code == 0, res.output
    card = idx.load_card(tmp_path / "ds")
    assert {k: r["label"] for k, r in _rows(tmp_path / "ds").items()} == {
        "cat/a": 1, "cat/sub1/a": None, "dog/a": None, "dog/b": None}
    [warning] = [w for w in card["warnings"] if "--labels-from-folders" in w]
    assert "3 of 4 samples have no label" in warning and "1 label file" in warning
    assert "--labels-from-folders" in " ".join(res.output.split())
    rep = mmdata.shard(raw, tmp_path / "on", labels_from_folders=True, progress=False)
    assert {k: r["label"] for k, r in _rows(tmp_path / "on").items()} == {
        "cat/a": 0, "cat/sub1/a": 0, "dog/a": 1, "dog/b": 1}
    assert "label file ignored" in _skips(rep, "member")["cat/a.cls"]
    assert not any("--labels-from-folders" in w for w in rep["warnings"])
    rep = mmdata.shard(raw, tmp_path / "off", labels_from_folders=False, progress=False)
    assert _rows(tmp_path / "off")["cat/a"]["label"] == 1 and _rows(tmp_path / "off")["dog/a"]["label"] is None
    assert not any("--labels-from-folders" in w for w in rep["warnings"])  # the user chose: no warning


# -- output folder vs source folder (new-user QA item 2) --------------------------------------------


@pytest.mark.parametrize("same", ["raw", "raw/.", "link"])
def test_output_folder_equal_to_the_source_is_refused(tmp_path: Path, same: str) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=3, missing=False)
    (tmp_path / "link").symlink_to(raw)
    before = _tree(raw)
    proc = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "shard", str(raw), str(tmp_path / same)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    msg = " ".join(proc.stderr.split())
    assert "is the source folder" in msg and "raw" in msg and "Traceback" not in proc.stderr
    assert _tree(raw) == before  # nothing written into the source


def test_an_earlier_output_inside_the_source_is_one_skipped_folder(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4, missing=False)
    first = mmdata.shard(raw, tmp_path / "ds", progress=False)
    shutil.copytree(tmp_path / "ds", raw / "ds_v1")  # a dataset kept beside the data
    rep = mmdata.shard(raw, tmp_path / "ds2", progress=False)
    assert rep["samples"] == first["samples"] == 4
    assert rep["skipped"] == [{"source": "ds_v1", "sample": None, "what": "folder",
                               "reason": "an mmdata dataset folder (an earlier output: dataset.json + index.parquet)"}]
    assert _tree(tmp_path / "ds").keys() - {"dataset.json"} == _tree(tmp_path / "ds2").keys() - {"dataset.json"}
    with pytest.raises(SourceError, match="dataset.json"):  # a dataset folder is not raw data
        mmdata.shard(tmp_path / "ds", tmp_path / "ds3", progress=False)


def test_output_inside_the_source_is_reported_the_same_on_every_run(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4, missing=False)
    one = mmdata.shard(raw, raw / "ds", progress=False)
    card_one = (raw / "ds" / "dataset.json").read_bytes()
    two = mmdata.shard(raw, raw / "ds", progress=False)
    assert one["skipped"] == two["skipped"] == [{"source": "ds", "sample": None, "what": "folder",
                                                 "reason": "the output folder of this job"}]
    assert (raw / "ds" / "dataset.json").read_bytes() == card_one


def test_a_deeply_nested_class_names_file_is_a_clear_error() -> None:
    """`--labels labels.json` holding [[[...]]] 10^5 deep raised a raw RecursionError (QA 2026-12-03)."""
    from mmdata.shards.sources import parse_label_names

    with pytest.raises(SourceError, match=r"class names file labels\.json: nested too deeply"):
        parse_label_names(b"[" * 100_000 + b"]" * 100_000, "labels.json")
