"""QA of ``mmdata shard`` on an ESC-50-style environmental-sound dataset (the audio-event QA pass), each
finding reproduced with real audio files (numpy + soundfile) and real shards: a sample left with only
its label and ``--meta`` JSON, ESC-50's own ``meta/`` + ``audio/`` layout (the error without reasons,
``--root``), AIFF refused as an unknown type, metadata columns left out of ``--meta`` flooding the skip
list, and CSV booleans read back as strings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.errors import SourceError
from mmdata.shards import index as idx
from mmdata.shards.mediainfo import CorruptMedia, probe_audio


def _clip(i: int, frames: int = 800, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(i)
    return (rng.standard_normal((frames, channels)) * 0.1).astype(np.float32)


def _write(path: Path, i: int, fmt: str | None = None, subtype: str | None = None, frames: int = 800,
           channels: int = 1, rate: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _clip(i, frames, channels), rate, format=fmt, subtype=subtype)
    return path


def _cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in this process as the ``mmdata`` command does; (exit code, stdout + stderr)."""
    from mmdata.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    got = capsys.readouterr()
    return int(exc.value.code or 0), got.out + got.err


def _samples(ds: Path) -> dict[str, mmdata.Sample]:
    return {s.key: s for s in mmdata.open_dataset(ds)}


# -- 1. a sample whose only media file is bad is skipped whole, --meta or not ---------------------------


@pytest.mark.parametrize("meta", [None, ["fold"]])
def test_sample_left_with_only_label_and_meta_is_skipped(tmp_path: Path, meta: list[str] | None) -> None:
    src = tmp_path / "src"
    _write(src / "good.wav", 0)
    _write(src / "good2.wav", 1)
    sf.write(src / "empty.wav", np.zeros(0, np.float32), 8000)  # 0 frames: a bad file
    (src / "m.csv").write_text("filename,category,fold\ngood.wav,dog,1\ngood2.wav,rain,2\nempty.wav,dog,3\n")
    rep = mmdata.shard(src / "m.csv", tmp_path / "ds", columns={"audio": "filename", "label": "category"}, meta=meta,
                       progress=False)
    assert rep["samples"] == 2  # was 3 with --meta: 'empty' kept as a json+label sample
    assert rep["skipped_counts"]["samples"] == 1 and rep["skipped_counts"]["members"] == 1
    gone = [s for s in rep["skipped"] if s["what"] == "sample"]
    assert gone[0]["sample"] == "empty" and "nothing left to shard" in gone[0]["reason"]
    assert sorted(r["source_key"] for r in idx.load_index(tmp_path / "ds").to_pylist()) == ["good", "good2"]


def test_folder_json_file_still_keeps_its_sample(tmp_path: Path) -> None:
    """A .json *file* of a folder sample is content, not --meta metadata: its sample is kept."""
    src = tmp_path / "src"
    _write(src / "a.wav", 0)
    _write(src / "b.wav", 1)
    (src / "b.wav").write_bytes((src / "b.wav").read_bytes()[:60])  # truncated
    (src / "b.json").write_text('{"note": "kept"}')
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    assert rep["samples"] == 2 and rep["skipped_counts"]["members"] == 1


# -- 2. ESC-50's meta/ + audio/ layout: the error says why, and --root / root= reads it ---------------------


def _esc50(root: Path, n: int = 6) -> Path:
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for i in range(n):
        name = f"{i % 5 + 1}-10{i:04d}-A-{i % 2}.wav"
        _write(root / "audio" / name, i)
        lines.append(f"{name},{i % 5 + 1},{i % 2},{'dog' if i % 2 == 0 else 'rain'},{i % 3 == 0},10{i:04d},A")
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    return root / "meta" / "esc50.csv"


def test_esc50_layout_error_gives_the_reasons_and_the_fix(tmp_path: Path) -> None:
    manifest = _esc50(tmp_path / "esc")
    with pytest.raises(SourceError) as exc:
        mmdata.shard(manifest, tmp_path / "ds", columns={"audio": "filename", "label": "category"},
                     meta=["fold", "esc10", "target", "src_file", "take"], progress=False)
    msg = str(exc.value)
    assert "no samples found" in msg
    assert "6 × " in msg and "file not found" in msg and "column 'audio'" in msg  # the reason, counted
    assert "1-100000-A-0.wav" in msg  # an example
    assert "--root" in msg and str(tmp_path / "esc" / "audio") in msg  # the fix, with the folder that holds them
    assert not (tmp_path / "ds").exists()


def test_root_reads_the_manifest_paths_from_another_folder(tmp_path: Path) -> None:
    manifest = _esc50(tmp_path / "esc")
    (tmp_path / "secret.wav").write_bytes(_write(tmp_path / "x" / "s.wav", 9).read_bytes())
    with manifest.open("a") as f:
        f.write("../../secret.wav,1,0,dog,False,99,A\n")  # escapes the root: refused, as outside a manifest's folder
    rep = mmdata.shard(manifest, tmp_path / "ds", root=tmp_path / "esc" / "audio",
                       columns={"audio": "filename", "label": "category"},
                       meta=["fold", "esc10", "target", "src_file", "take"], progress=False)
    assert rep["samples"] == 6
    assert [s["source"] for s in rep["skipped"] if s["what"] == "member"] == ["../../secret.wav"]
    assert any("outside" in w and "--root" in w for w in rep["warnings"])
    rows = {r["source_key"]: r for r in idx.load_index(tmp_path / "ds").to_pylist()}
    assert "1-100000-A-0" in rows  # keys from the paths relative to the root, as a folder names samples
    got = _samples(tmp_path / "ds")["1-100000-A-0"]
    want, _ = sf.read(tmp_path / "esc" / "audio" / "1-100000-A-0.wav", dtype="float32", always_2d=True)
    assert np.array_equal(got["audio"].numpy(), want.T)


def test_root_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _esc50(tmp_path / "esc")
    code, out = _cli("shard", str(manifest), str(tmp_path / "ds"), "--root", str(tmp_path / "esc" / "audio"),
                     "--column", "audio=filename", "--column", "label=category", "--meta", "fold,esc10,target",
                     "--meta", "src_file,take", capsys=capsys)
    assert code == 0, out
    assert "wrote 6 samples" in out
    code, out = _cli("shard", str(tmp_path / "esc" / "audio"), str(tmp_path / "ds2"), "--root", str(tmp_path),
                     capsys=capsys)
    assert code == 2 and "--root" in out and "manifest" in out  # a folder source has no paths to root


def test_root_must_be_a_folder(tmp_path: Path) -> None:
    manifest = _esc50(tmp_path / "esc")
    with pytest.raises(SourceError, match="root"):
        mmdata.shard(manifest, tmp_path / "ds", root=tmp_path / "nowhere", columns={"audio": "filename"},
                     progress=False)


# -- 3. AIFF / AIFC is audio --------------------------------------------------------------------------------


AIFF_KINDS = [("a.aiff", "AIFF", "PCM_16", 1), ("b.aif", "AIFF", "FLOAT", 2), ("c.AIFF", "AIFF", "PCM_24", 1),
              ("d.aifc", "AIFF", "ULAW", 1)]


def test_aiff_is_sharded_and_decodes_as_soundfile_does(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i, (name, fmt, sub, ch) in enumerate(AIFF_KINDS):
        _write(src / "dog" / name, i, fmt, sub, frames=1000 + i, channels=ch, rate=16000)
    _write(src / "rain" / "e.wav", 9)
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    assert rep["skipped"] == [] and rep["samples"] == 5
    rows = {r["source_key"]: r for r in idx.load_index(tmp_path / "ds").to_pylist()}
    got = _samples(tmp_path / "ds")
    for i, (name, _, _, ch) in enumerate(AIFF_KINDS):
        stem = name.rsplit(".", 1)[0]
        r = rows[f"dog/{stem}"]
        sample = got[r["key"]]
        assert (r["audio_sample_rate"], r["audio_channels"]) == (16000, ch)
        info = sf.info(src / "dog" / name)  # (libsndfile writes an odd 8-bit mono clip a frame longer)
        assert r["audio_seconds"] == round(info.frames / 16000, 6) and info.frames >= 1000 + i
        assert probe_audio((src / "dog" / name).read_bytes()) == (info.frames, info.samplerate, info.channels)
        want, rate = sf.read(src / "dog" / name, dtype="float32", always_2d=True)
        assert sample.sample_rate == rate
        assert np.array_equal(sample["audio"].numpy(), want.T)  # bit-exact to soundfile's float32
        assert sample["label"] == 0
    # stored as it is (as OGG is): the member is the file's bytes
    import tarfile

    with tarfile.open(tmp_path / "ds" / "train-000000.tar") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    key = rows["dog/a"]["key"]
    assert members[f"{key}.aiff"] == (src / "dog" / "a.aiff").read_bytes()


def test_truncated_aiff_is_a_bad_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    data = _write(src / "cut.aiff", 0, "AIFF", "PCM_16", frames=4000).read_bytes()
    (src / "cut.aiff").write_bytes(data[:-1000])  # libsndfile would read 3500 of the 4000 frames, no error
    _write(src / "ok.aif", 1, "AIFF", "FLOAT")
    (src / "empty.aiff").write_bytes(_write(tmp_path / "e.aiff", 0, "AIFF", "PCM_16", frames=0).read_bytes())
    with pytest.raises(CorruptMedia, match="truncated AIFF"):
        probe_audio(data[:-1000])
    assert probe_audio(data) == (4000, 8000, 1)
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    assert rep["samples"] == 1
    reasons = {s["source"]: s["reason"] for s in rep["skipped"] if s["what"] == "member"}
    assert "truncated AIFF" in reasons["cut.aiff"]
    assert "without audio frames" in reasons["empty.aiff"]
    with pytest.raises(mmdata.codecs.DecodeError, match="truncated AIFF"):  # the reader refuses it too
        mmdata.codecs.decode_member("aiff", data[:-1000])


def test_aiff_in_a_manifest_and_the_listing_shows_the_cause(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    rows = ["filename,category"]
    for i in range(12):
        name = f"c{i}.aiff" if i % 2 else f"c{i}.wav"
        _write(src / name, i, "AIFF" if i % 2 else None)
        rows.append(f"{name},{'dog' if i % 3 else 'rain'}")
    for i in range(12, 24):  # rows whose only file is gone: each a member left out, then its sample
        rows.append(f"gone{i}.wav,dog")
    (src / "m.csv").write_text("\n".join(rows) + "\n")
    code, out = _cli("shard", str(src / "m.csv"), str(tmp_path / "ds"), "--column", "audio=filename",
                     "--column", "label=category", capsys=capsys)
    assert code == 0, out
    assert "wrote 12 samples" in out
    listed = [line for line in out.splitlines() if line.startswith("  ")]
    # the causes come first, the samples they emptied are one line, not ten lines hiding them
    assert listed[0].startswith("  gone12.wav: m.csv row 13, column 'audio': file not found")
    assert sum("no file or text left" in line for line in listed) == 1
    assert "12 × m.csv, column 'audio': file not found" in out


# -- 4. columns left out of --meta: one warning each, not a skip per cell ------------------------------


def test_metadata_columns_not_passed_to_meta_are_one_warning(tmp_path: Path) -> None:
    manifest = _esc50(tmp_path / "esc")
    (tmp_path / "esc" / "meta" / "esc50.csv").rename(tmp_path / "esc" / "audio" / "esc50.csv")
    manifest = tmp_path / "esc" / "audio" / "esc50.csv"
    text = manifest.read_text().splitlines()
    text[2] = "missing.wav" + text[2][text[2].index(","):]  # one real loss among the metadata columns
    manifest.write_text("\n".join(text) + "\n")
    rep = mmdata.shard(manifest, tmp_path / "ds", columns={"audio": "filename", "label": "category"},
                       meta=["fold", "esc10"], progress=False)
    assert rep["samples"] == 5
    # only the real loss is listed (was 18 more "file not found" entries: target, src_file and take)
    assert [s["source"] for s in rep["skipped"] if s["what"] == "member"] == ["missing.wav"]
    assert rep["skipped_counts"] == {"samples": 1, "members": 1, "files": 0, "folders": 0}
    for col in ("target", "src_file", "take"):
        said = [w for w in rep["warnings"] if f"column {col!r}" in w]
        assert len(said) == 1 and f"--meta {col}" in said[0] and "not read" in said[0]
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert card["skipped_counts"]["members"] == 1


def test_a_path_column_whose_files_are_all_missing_still_lists_each(tmp_path: Path) -> None:
    """Cells that look like file names are losses, each listed, with a hint where the files are."""
    src = tmp_path / "src"
    _write(src / "a.wav", 0)
    (src / "m.csv").write_text("key,audio,extra\nk1,a.wav,x1.png\nk2,a.wav,sub/x2.png\n")
    rep = mmdata.shard(src / "m.csv", tmp_path / "ds", progress=False)
    assert sorted(s["source"] for s in rep["skipped"] if s["what"] == "member") == ["sub/x2.png", "x1.png"]


# -- 5. CSV booleans ---------------------------------------------------------------------------------------


def test_csv_true_false_metadata_reads_back_as_bools(tmp_path: Path) -> None:
    src = tmp_path / "src"
    lines = ["audio,label,esc10,flag,mixed,yes"]
    for i in range(4):
        _write(src / f"c{i}.wav", i)
        lines.append(f"c{i}.wav,{i % 2},{i % 2 == 0},{'true' if i % 2 else 'false'},"
                     f"{'True' if i % 2 else 'maybe'},{'yes' if i % 2 else 'no'}")
    _write(src / "c4.wav", 4)
    lines.append("c4.wav,0,,,,")  # blank cells: null, the columns still bools
    (src / "m.csv").write_text("\n".join(lines) + "\n")
    rep = mmdata.shard(src / "m.csv", tmp_path / "ds", meta=["esc10", "flag", "mixed", "yes"], progress=False)
    assert rep["samples"] == 5
    got = {k: s["json"] for k, s in _samples(tmp_path / "ds").items()}
    # True / False as Python and pandas write them; true / false (written by no Python bool) stay text
    assert got["c0"] == {"esc10": True, "flag": "false", "mixed": "maybe", "yes": "no"}
    assert got["c1"] == {"esc10": False, "flag": "true", "mixed": "True", "yes": "yes"}
    assert got["c4"] == {"esc10": None, "flag": None, "mixed": None, "yes": None}
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert card["metadata_kinds"] == {"esc10": "bool", "flag": "string", "mixed": "string", "yes": "string"}
    assert type(got["c0"]["esc10"]) is bool


@pytest.mark.parametrize("with_root", [False, True])
def test_a_link_inside_the_folder_to_a_file_outside_is_left_out(tmp_path: Path, with_root: bool) -> None:
    """QA re-test: a manifest row naming a link inside its folder (or --root) to a file outside was
    sharded silently — the outside file's bytes in the shards; a folder source leaves such links out."""
    secret = _write(tmp_path / "outside" / "secret.wav", 3)
    data = tmp_path / "m" / "audio"
    _write(data / "ok.wav", 1)
    (data / "link.wav").symlink_to(secret)
    (data / "inner.wav").symlink_to(data / "ok.wav")  # a link that stays inside is fine
    manifest = tmp_path / "m" / ("meta.csv" if with_root else "manifest.csv")
    prefix = "" if with_root else "audio/"
    manifest.write_text(f"audio,label\n{prefix}ok.wav,0\n{prefix}link.wav,1\n{prefix}inner.wav,0\n")
    rep = mmdata.shard(manifest, tmp_path / "ds", root=data if with_root else None, progress=False)
    assert rep["samples"] == 2
    (left,) = [s for s in rep["skipped"] if s["what"] == "member"]
    assert left["source"].endswith("link.wav") and "through a link" in left["reason"]


@pytest.mark.parametrize(("fmt", "subtype", "name"), [("WAV", "GSM610", "gsm.wav"), ("WAV", "G721_32", "g721.wav"),
                                                      ("AIFF", "GSM610", "gsm.aifc")])
def test_check_decode_keeps_codecs_libsndfile_streams_only(tmp_path: Path, fmt: str, subtype: str, name: str) -> None:
    """QA re-test: --check decode left GSM 6.10 / G.721 WAV and GSM AIFC out ('frames must be specified for
    non-seekable files': SoundFile.blocks) although the reader decodes them."""
    if subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"libsndfile here cannot write {fmt} {subtype}")
    raw = tmp_path / "raw"
    raw.mkdir()
    wave = (np.sin(np.arange(8000) / 7) * 0.4).astype(np.float32)
    sf.write(raw / name, wave, 8000, format=fmt, subtype=subtype)
    rep = mmdata.shard(raw, tmp_path / "ds", check="decode", progress=False)
    assert rep["samples"] == 1 and not rep["skipped"], rep["skipped"]
