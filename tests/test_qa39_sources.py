"""QA39 defects of source discovery (``mmdata/shards/sources.py``).

security #2: a ``..\\outside\\x.txt`` cell was told "differs only in case" and the warning (kept in the card) named
the file outside the manifest's folder (an existence oracle); it now escapes as ``../outside/x.txt`` does.
security #4: captions with C1 controls (U+0080-U+009F: CSI, OSC, NEL) are refused as C0 ESC is.
security #5: class folder names holding ESC / a line break are refused as label cells are.
Real PNG / UTF-8 files throughout.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmdata.errors import SourceError
from mmdata.shards.sources import discover, text_refusal


def _png(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(path)


def test_backslash_cell_escaping_the_folder_is_an_escape_not_a_case_hint(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("secret\n", encoding="utf-8")
    rows = []
    for k, v in [("exists", "..\\outside\\secret.txt"), ("missing", "..\\outside\\nothere.txt"), ("ok", "img/ok.png")]:
        _png(root / "img" / f"{k}.png")
        rows.append({"key": k, "image": f"img/{k}.png", "transcript": v})
    (root / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    found = discover(root / "m.jsonl")
    said = json.dumps(found.warnings) + json.dumps([dict(s) if isinstance(s, dict) else str(s) for s in found.skipped])
    assert "../outside/secret.txt" not in said  # the outside file is never named (so never confirmed)
    assert "only in case" not in said
    assert said.count("escapes the manifest's folder") >= 2, said


def test_c1_controls_in_a_caption_are_noted_not_refused() -> None:
    """QA39 review sources #1 overturned the refusal: C1 is mostly mojibake (a real caption), kept and noted."""
    from mmdata.shards.sources import c1_note

    assert text_refusal("red \x1b[31mX".encode()) is not None
    assert text_refusal("red \u009b31mX".encode()) is None
    said = c1_note("red \u009b31mX".encode())
    assert said is not None and "U+009B CSI" in said and "character 5" in said
    assert text_refusal("a\u0085b".encode()) is None and c1_note("a\u0085b".encode()) is None  # NEL: a line break
    assert text_refusal("café Ü — ok\tend\n".encode()) is None  # Latin-1 letters (C2 A0 and up) are text
    assert text_refusal("caf\xe9 \x9b".encode("latin-1")) is None  # not UTF-8: the decode's own error names it


def test_class_folder_with_control_characters_is_refused(tmp_path: Path) -> None:
    for name in ("cat", "red\x1b[31mX"):
        for i in range(2):
            _png(tmp_path / "src" / name / f"{i}.png", i)
    with pytest.raises(SourceError, match=r"red\\x1b\[31mX.*control character.*rename the folder"):
        discover(tmp_path / "src")


def test_text_column_of_txt_and_lrc_paths_is_warned(tmp_path: Path) -> None:
    """music #3: a third of the paths naming .lrc files (a type not read) silenced the warning."""
    rows = []
    for i in range(9):
        _png(tmp_path / "img" / f"{i}.png", i)
        ext = "lrc" if i % 3 == 0 else "txt"
        (tmp_path / "lyrics").mkdir(exist_ok=True)
        (tmp_path / "lyrics" / f"t{i}.{ext}").write_text("[00:01.00]la la\n", encoding="utf-8")
        rows.append(f"k{i},img/{i}.png,lyrics/t{i}.{ext}\n")
    (tmp_path / "m.csv").write_text("key,image,text\n" + "".join(rows), encoding="utf-8")
    found = discover(tmp_path / "m.csv")
    assert any("9 of its 9 values name files" in w and "stored as the captions" in w for w in found.warnings), \
        found.warnings


def test_lrc_is_refused_with_its_conversion() -> None:
    """music #4: LRC lyrics are refused as subtitles are, with the command that makes the .txt."""
    from mmdata.shards.sources import other_type_reason

    said = other_type_reason("rock/s1.lrc")
    assert said is not None and "timed lyrics" in said and "song.txt" in said and "sed -E" in said


def test_meta_column_spelling_variants_are_warned(tmp_path: Path) -> None:
    """fairness #1: 'F', 'f' and ' F' in a --meta column were three groups for evaluate --by, with no word."""
    rows = []
    for i, sex in enumerate(["F", "F", "f", " F", "M", "M"]):
        _png(tmp_path / "img" / f"{i}.png", i)
        rows.append(f"k{i},img/{i}.png,{sex}\n")
    (tmp_path / "m.csv").write_text("key,image,sex\n" + "".join(rows), encoding="utf-8")
    found = discover(tmp_path / "m.csv", meta=["sex"])
    said = [w for w in found.warnings if "--meta column 'sex'" in w]
    assert len(said) == 1 and "'F' (2)" in said[0] and "' F' (1)" in said[0] and "'f' (1)" in said[0], found.warnings
    assert "'M'" not in said[0]


def test_number_column_left_out_of_meta_is_named_metadata_not_missing_files(tmp_path: Path) -> None:
    """fairness #10: an age column ('36.0', one 'n/a') forgotten in --meta listed a 'file not found' skip per cell."""
    rows = []
    for i, age in enumerate(["36.0", "18.0", "n/a", "52", "44.0", "61.0", "23.0", "30.0", "41.0", "29.0", "70.0"]):
        _png(tmp_path / "img" / f"{i}.png", i)
        rows.append(f"k{i},img/{i}.png,{age}\n")
    (tmp_path / "m.csv").write_text("key,image,age\n" + "".join(rows), encoding="utf-8")
    found = discover(tmp_path / "m.csv")
    assert not any("file not found" in json.dumps(s, default=str) for s in found.skipped), found.skipped
    assert any("column 'age'" in w and "--meta age" in w for w in found.warnings), found.warnings
    # QA39 review sources #3: many 'n/a' cells, dates and ratios are no paths either; a column naming media files
    # that are missing is still a path column (its files listed as not found)
    rows = [f"k{i},img/{i}.png,{v},{d},{r},gone/{i}.png\n" for i, (v, d, r) in enumerate(zip(
        ["n/a", "36", "n/a", "52", "n/a", "61", "23", "30", "n/a", "29", "70"],
        [f"0{1 + i % 9}/05/2023" for i in range(11)], [f"{i}/40" for i in range(11)]))]
    (tmp_path / "m2.csv").write_text("key,image,age,visit,ratio,extra\n" + "".join(rows), encoding="utf-8")
    found = discover(tmp_path / "m2.csv", columns={"extra": "extra"})
    skipped = json.dumps(found.skipped, default=str)
    for col in ("age", "visit", "ratio"):
        assert f"'{col}'" not in skipped and any(f"column '{col}'" in w for w in found.warnings), (col, found.warnings)
    assert skipped.count("gone/") == 11, skipped


def _wav(path: Path, seconds: float, sr: int = 8000) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * sr), np.float32), sr, subtype="PCM_16")


def test_segment_warns_that_an_array_field_is_kept_whole(tmp_path: Path) -> None:
    """lipreading #1: --segment cut the audio and kept the whole (T,H,W) video in every segment, silently."""
    _wav(tmp_path / "long.wav", 4.0)
    np.save(tmp_path / "long.npy", np.zeros((100, 8, 8), np.uint8))
    (tmp_path / "m.csv").write_text("audio,video,start,duration,label\nlong.wav,long.npy,0.0,1.0,A\n"
                                    "long.wav,long.npy,2.0,1.5,B\n", encoding="utf-8")
    found = discover(tmp_path / "m.csv", columns={"video": "video"}, segment={"start": "start", "duration": "duration"})
    assert len(found.records) == 2
    said = [w for w in found.warnings if "cuts the audio only" in w]
    assert len(said) == 1 and "'video' (2 segments)" in said[0], found.warnings
    # QA39 review sources #4: arrays already cut per segment (each row naming its own file) are not warned of
    np.save(tmp_path / "a.npy", np.zeros((25, 8, 8), np.uint8))
    np.save(tmp_path / "b.npy", np.zeros((37, 8, 8), np.uint8))
    (tmp_path / "cut.csv").write_text("audio,video,start,duration,label\nlong.wav,a.npy,0.0,1.0,A\n"
                                      "long.wav,b.npy,2.0,1.5,B\n", encoding="utf-8")
    found = discover(tmp_path / "cut.csv", columns={"video": "video"}, segment={"start": "start", "duration": "duration"})
    assert len(found.records) == 2 and not [w for w in found.warnings if "cuts the audio only" in w], found.warnings


def test_npy_column_mapped_to_image_is_refused_at_shard_time(tmp_path: Path) -> None:
    """lipreading #2: --column image=<.npy column> wrote <key>.image.npy members no reader loads."""
    for i in range(2):
        np.save(tmp_path / f"v{i}.npy", np.zeros((5, 8, 8), np.uint8))
    (tmp_path / "m.csv").write_text("key,video\nk0,v0.npy\nk1,v1.npy\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"column 'video' \(given as --column image=video\).*--column frames=video"):
        discover(tmp_path / "m.csv", columns={"image": "video"})
    found = discover(tmp_path / "m.csv", columns={"frames": "video"})  # the fix it names works
    assert len(found.records) == 2
