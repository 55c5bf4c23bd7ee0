"""QA38 second round (writer2): review 2's --split-from messages (#1 count of samples compared by size alone, #2
"same size and CRC-32" where no CRC-32 was compared, #3 the card count named, #4 a remote earlier folder's cause),
8-bit clipping (#5), the audio-level wording (#6), fixed-shape arrays (#7), the resume note (#8); review 3 #1 (the
audio sample format counted on the card and shown by inspect); review 5 #8 (a manifest's progress counts rows)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from typer.testing import CliRunner

import mmdata
from cli.main import app
from mmdata.shards.inspect import inspect
from mmdata.shards.mediainfo import audio_level_warnings, decode_check
from mmdata.shards.writer import _resume_notes, _sized_kept_warning
from tests.test_identity_qa37 import _folders, _png, _shard
from tests.test_qa38_splitfrom_writer import _crc_less, _redelivered


def test_size_alone_warning_counts_every_kept_sample_not_only_the_first_read(tmp_path: Path) -> None:
    """#1: 70 kept samples against a CRC-less index given alone: all compared by size alone, "64" was said."""
    files = {f"cat/s{i:03d}.png": _png(400 + i) for i in range(70)}
    a = _folders(tmp_path / "a", files)
    old, _ = _shard(a, tmp_path / "old", labels_from_folders=True, split="train=0.5,test=0.5")
    _crc_less(old)
    for tar in old.glob("*.tar"):
        tar.unlink()
    _, said = _shard(a, tmp_path / "new", labels_from_folders=True, split_from=old)
    got = [w for w in said if "by size alone" in w]
    assert len(got) == 1 and "70 samples kept by key" in got[0] and "6 beyond the first 64" in got[0], got
    assert "could not be read" in got[0] and "whole folder" in got[0], got


def test_size_alone_warning_for_a_remote_earlier_folder_gives_the_remote_cause() -> None:
    """#4: a remote earlier folder was told its shards "could not be read" and to give the whole folder."""
    text = _sized_kept_warning(["k0"], "s3://b/v1", remote=True)
    assert "1 sample kept by key (e.g. 'k0') was compared" in text and "folder is remote" in text, text
    assert "could not be read" not in text and "Copy the earlier version's folder" in text, text


def test_same_size_change_against_a_crc_less_index_claims_no_crc(tmp_path: Path) -> None:
    """#2: "other bytes, same size and CRC-32" where the earlier index had no CRC-32 to compare."""
    files = {f"cat/s{i:02d}.png": _png(300 + i) for i in range(4)}
    a = _folders(tmp_path / "a", files)
    other = bytearray(files["cat/s01.png"])
    other[-20] ^= 0xFF  # same size, other bytes
    b = _folders(tmp_path / "b", {**files, "cat/s01.png": bytes(other)})
    old, _ = _shard(a, tmp_path / "old", labels_from_folders=True, split="train=0.5,test=0.5")
    _crc_less(old)
    _, said = _shard(b, tmp_path / "new", labels_from_folders=True, split_from=old)
    got = [w for w in said if "hold other content" in w]
    assert len(got) == 1 and "png other bytes, same size;" in got[0] and "and CRC-32" not in got[0], got


def test_other_content_warning_names_the_card_field_that_is_written(tmp_path: Path) -> None:
    """#3: the warning cited split_from.kept_by_key, which the card has only where it differs from kept."""
    a, b = _redelivered(tmp_path)
    old, _ = _shard(a, tmp_path / "old", labels_from_folders=True, split="train=0.5,test=0.5")
    _, said = _shard(b, tmp_path / "new", labels_from_folders=True, split_from=old)
    card = json.loads((tmp_path / "new" / "dataset.json").read_text())["split_from"]
    got = [w for w in said if "hold other content" in w]
    assert "kept_by_key" not in card and len(got) == 1, (card, said)
    assert "split_from.other_content of kept in the card" in got[0] and "kept_by_key" not in got[0], got
    _folders(a, {"dog/m.png": _png(777)})
    _folders(b, {"cat/m.png": _png(777)})  # a class move: kept by content, so kept_by_key is written
    old, _ = _shard(a, tmp_path / "old2", labels_from_folders=True, split="train=0.5,test=0.5")
    _, said = _shard(b, tmp_path / "new2", labels_from_folders=True, split_from=old)
    card = json.loads((tmp_path / "new2" / "dataset.json").read_text())["split_from"]
    got = [w for w in said if "hold other content" in w]
    assert card["kept_by_key"] == 12 and len(got) == 1 and "other_content of kept_by_key in the card" in got[0], got


def _wav(x: np.ndarray, subtype: str, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, 8000, subtype=subtype, format=fmt)
    return buf.getvalue()


def test_eight_bit_positive_clipping_is_counted() -> None:
    """#5: an 8-bit WAV's largest value decodes to 127/128, below the 16-bit full scale: never counted."""
    x = np.clip(10 * np.sin(np.linspace(0, 60, 4000)), -0.5, 1.0)  # clipped on the positive side only
    u8 = decode_check("audio", _wav(x, "PCM_U8"))
    assert u8 is not None and u8.full_scale > 400, u8
    quiet = decode_check("audio", _wav(0.5 * np.sin(np.linspace(0, 60, 4000)), "PCM_U8"))
    assert quiet is not None and quiet.full_scale == 0, quiet


def test_audio_level_warning_grammar_for_one_member() -> None:
    """#6: "1 audio member (of 33) is offset (...): ...; they are kept"."""
    [one] = audio_level_warnings({"dc_offset": [1, ["k"]]}, 33)
    assert one.startswith("1 audio member (of 33) has a DC offset (") and one.endswith("; it is kept"), one
    [two] = audio_level_warnings({"dc_offset": [2, ["k", "j"]]}, 33)
    assert "2 audio members (of 33) have a DC offset" in two and two.endswith("; they are kept"), two


def test_fixed_shape_arrays_show_their_shape_without_a_length_range(tmp_path: Path) -> None:
    """#7: every file (2, 128) showed "(T, 128)" and "first axis 2..2"; (T, C) recordings of varying T keep T."""
    src = tmp_path / "src"
    for i in range(4):
        (src / "c").mkdir(parents=True, exist_ok=True)
        np.save(src / "c" / f"s{i}.iq.npy", np.full((2, 128), i, np.float32))
        np.save(src / "c" / f"s{i}.imu.npy", np.zeros((50 + 10 * i, 6), np.float32))
    out, _ = _shard(src, tmp_path / "ds", labels_from_folders=True)
    mods = json.loads((out / "dataset.json").read_text())["modalities"]
    assert mods["iq"]["shapes"] == {"(2, 128)": 4} and "length" not in mods["iq"], mods["iq"]
    assert mods["imu"]["shapes"] == {"(T, 6)": 4} and mods["imu"]["length"] == [50, 80], mods["imu"]
    run = CliRunner().invoke(app, ["inspect", str(out)], env={"COLUMNS": "250"})
    assert run.exit_code == 0, run.output
    assert "shapes (2, 128): 4" in run.output and "2..2" not in run.output and "first axis 50..80" in run.output


def test_resume_note_says_plainly_what_was_rewritten() -> None:
    """#8: "(same bytes, complete index)" was cryptic; a journal with CRC-32s lacked only the digests."""
    [note] = _resume_notes(0, ["train-000000.tar"], 13)
    assert "CRC-32s or sha256 digests" in str(note) and "the shards' bytes are the same" in str(note), note
    assert "same bytes, complete index" not in str(note)


def test_audio_sample_formats_are_counted_on_the_card_and_shown_by_inspect(tmp_path: Path) -> None:
    """Review 3 #1: 16-bit, 24-bit and float WAVs and a FLAC in one dataset: the format was recorded nowhere."""
    x = 0.3 * np.sin(np.linspace(0, 200, 2000))
    files = {"a/s0.wav": _wav(x, "PCM_16"), "a/s1.wav": _wav(x, "PCM_16"), "a/s2.wav": _wav(x, "PCM_24"),
             "b/s3.wav": _wav(x, "FLOAT"), "b/s4.flac": _wav(x, "PCM_24", "FLAC"), "b/s5.flac": _wav(x, "PCM_16", "FLAC")}
    out, _ = _shard(_folders(tmp_path / "src", files), tmp_path / "ds", labels_from_folders=True, maxcount=2)
    card = json.loads((out / "dataset.json").read_text())
    assert card["modalities"]["audio"]["subtypes"] == {"PCM_16": 3, "PCM_24": 2, "FLOAT": 1}, card["modalities"]
    assert inspect(out)["audio"]["subtypes"] == {"PCM_16": 3, "PCM_24": 2, "FLOAT": 1}
    run = CliRunner().invoke(app, ["inspect", str(out)], env={"COLUMNS": "250"})
    assert run.exit_code == 0 and "formats PCM_16: 3, PCM_24: 2, FLOAT: 1 (mixed)" in run.output, run.output
    one, _ = _shard(_folders(tmp_path / "one", {"s.wav": files["a/s0.wav"]}), tmp_path / "ds1")
    assert json.loads((one / "dataset.json").read_text())["modalities"]["audio"]["subtypes"] == {"PCM_16": 1}


def test_manifest_progress_counts_rows(tmp_path: Path, monkeypatch: object, capsys: object) -> None:
    """Review 5 #8: a manifest's progress said "finding files: N" while it counted rows."""
    lines = "".join(f"k{i},caption {i}\n" for i in range(1100))
    (tmp_path / "m.csv").write_text("key,text\n" + lines, encoding="utf-8")
    monkeypatch.setenv("MMDATA_PROGRESS", "plain")  # type: ignore[attr-defined]
    monkeypatch.setenv("MMDATA_PROGRESS_INTERVAL", "0")  # type: ignore[attr-defined]
    mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=True)
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "reading rows: 1,024" in err and "finding files:" not in err, err
