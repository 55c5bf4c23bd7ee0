"""QA42 (segments #2 #8, clinical #4 #7 #8 #13): segment rows that share a recording and a start get keys naming
their end (warned) instead of failing the shard, and a collision that is left names its remedy; one recording
named several ways is one recording, without the "row per caption" warning; two fields from one manifest
column are refused; the "names no file" warning names the manifest's column; a ';'-separated Excel CSV gets the
semicolon message; folders that look like patients rather than classes are warned about, and ``--group-by
folder`` keeps each one in one split. Real WAV / PNG files and CSV manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.errors import SourceError
from mmdata.shards import index as idx
from mmdata.shards.sources import discover, discover_manifest, read_manifest
from mmdata.testing.media import image_bytes

SR = 8000


def _recording(path: Path, seconds: float = 4.0, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(seed).integers(-20000, 20000, int(seconds * SR)).astype(np.int16)
    sf.write(path, x, SR, subtype="PCM_16")


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---- segments #2: one start, two segments ---------------------------------------------------------------
def test_same_start_segments_get_keys_naming_their_end(tmp_path: Path) -> None:
    _recording(tmp_path / "rec" / "talk.wav")
    _recording(tmp_path / "rec" / "other.wav", seed=1)
    m = _write(tmp_path / "m.csv", ["audio,start,duration,label", "rec/talk.wav,1.0,2.0,dog",
                                    "rec/talk.wav,1.0,1.0,car", "rec/talk.wav,1.0004,0.5,bird",
                                    "rec/talk.wav,3.0,0.5,dog", "rec/other.wav,1.0,1.0,car"])
    found = discover_manifest(m, segment="start=start,duration=duration")
    keys = sorted(r.source_key for r in found.records)
    # only the colliding rows' keys change: the others are as before (rec/talk_000003.000, rec/other_000001.000)
    assert keys == ["rec/other_000001.000", "rec/talk_000001.000-000001.500", "rec/talk_000001.000-000002.000",
                    "rec/talk_000001.000-000003.000", "rec/talk_000003.000"], keys
    said = [w for w in found.warnings if "the millisecond" in w]
    assert len(said) == 1 and "3 segment rows" in said[0] and "rows 1, 2, 3" in said[0], found.warnings
    assert "key column" in said[0]
    # the same manifest in another row order gives the same keys
    m2 = _write(tmp_path / "m2.csv", ["audio,start,duration,label", "rec/other.wav,1.0,1.0,car",
                                      "rec/talk.wav,3.0,0.5,dog", "rec/talk.wav,1.0004,0.5,bird",
                                      "rec/talk.wav,1.0,1.0,car", "rec/talk.wav,1.0,2.0,dog"])
    assert sorted(r.source_key for r in discover_manifest(m2, segment="start=start,duration=duration").records) == keys


def test_a_collision_left_names_the_remedy(tmp_path: Path) -> None:
    _recording(tmp_path / "rec" / "talk.wav")
    sf.write(tmp_path / "rec" / "talk.flac", np.zeros(SR * 4, np.int16), SR, subtype="PCM_16")
    # two recordings whose names differ only in their extension, cut alike: the end cannot tell them apart
    m = _write(tmp_path / "m.csv", ["audio,start,duration", "rec/talk.wav,1.0,1.0", "rec/talk.flac,1.0,1.0"])
    with pytest.raises(SourceError) as exc:
        mmdata.shard(m, tmp_path / "ds", segment="start=start,duration=duration", progress=False)
    msg = str(exc.value)
    assert "rows 1 and 2 are both sample 'rec/talk_000001.000'" in msg
    assert "'key' column" in msg and "--column key=COL" in msg and "extension" in msg, msg
    # one segment twice (same start and end): the same remedy
    m = _write(tmp_path / "m.csv", ["audio,start,duration,label", "rec/talk.wav,1.0,1.0,a", "rec/talk.wav,1.0,1.0,b"])
    with pytest.raises(SourceError, match=r"rows 1 and 2 are both sample.*'key' column.*--column key=COL"):
        discover_manifest(m, segment="start=start,duration=duration")
    # a key column names them: no collision
    m = _write(tmp_path / "m.csv", ["id,audio,start,duration", "a,rec/talk.wav,1.0,1.0", "b,rec/talk.flac,1.0,1.0"])
    found = discover_manifest(m, {"key": "id"}, segment="start=start,duration=duration")
    assert sorted(r.source_key for r in found.records) == ["a", "b"]


# ---- segments #8: one recording, several spellings -------------------------------------------------------
def test_one_recording_named_several_ways_is_one_group_without_the_caption_warning(tmp_path: Path) -> None:
    for i in range(4):
        _recording(tmp_path / "rec" / f"r{i}.wav", seed=i)
    spellings = ["rec/r0.wav", "./rec/r0.wav", str(tmp_path / "rec" / "r0.wav"), "rec//r0.wav", "rec/../rec/r0.wav"]
    lines = ["audio,start,duration,label"]
    lines += [f"{s},{k * 0.5},0.4,{'ab'[k % 2]}" for k, s in enumerate(spellings)]
    lines += [f"rec/r{i}.wav,{s},0.4,{'ab'[s % 2]}" for i in (1, 2, 3) for s in range(3)]
    m = _write(tmp_path / "m.csv", lines)
    rep = mmdata.shard(m, tmp_path / "ds", segment="start=start,duration=duration", split="train=0.5,val=0.5",
                       progress=False)
    assert not any("another sample names" in w or "copy of the file" in w for w in rep["warnings"]), rep["warnings"]
    rows = idx.load_index(tmp_path / "ds").to_pylist()
    r0 = {r["split"] for r in rows if r["source_key"].startswith("rec/r0_")}
    assert len(rows) == 14 and len(r0) == 1
    # the index keeps each cell as written
    assert {r["segment_source"] for r in rows if r["source_key"].startswith("rec/r0_")} == set(spellings)


# ---- clinical #4: two fields from one column ----------------------------------------------------------
def test_two_fields_from_one_column_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes(0))
    m = _write(tmp_path / "m.csv", ["image,label", "a.png,x"])
    with pytest.raises(SourceError, match=r"--column image=image and --column raw16=image both read the column "
                                          r"'image'"):
        discover_manifest(m, {"image": "image", "raw16": "image"})
    with pytest.raises(SourceError, match=r"--column image=img and --column depth=img"):
        discover_manifest(_write(tmp_path / "n.csv", ["img,label", "a.png,x"]), {"image": "img", "depth": "img"})


# ---- clinical #13: the warning names the manifest's column --------------------------------------------
def test_no_file_warning_names_the_manifest_column(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(image_bytes(0))
    (tmp_path / "b.png").write_bytes(image_bytes(1))
    m = _write(tmp_path / "m.csv", ["image,patient,label", "a.png,P001,x", "b.png,P002,y"])
    found = discover_manifest(m, {"image": "image", "depth": "patient"})
    said = [w for w in found.warnings if "names a file" in w]
    assert len(said) == 1, found.warnings
    assert "column 'patient' (given as --column depth=patient)" in said[0] and "--meta patient" in said[0]
    assert "--meta depth" not in said[0]
    # the advice works
    found = discover_manifest(m, {"image": "image"}, meta=["patient"])
    assert not any("names a file" in w for w in found.warnings)


# ---- clinical #8: a German Excel CSV ----------------------------------------------------------------
def test_semicolon_csv_with_decimal_commas_gets_the_semicolon_message(tmp_path: Path) -> None:
    m = _write(tmp_path / "excel.csv", ["image;patient;age;text", "a.png;P1;30,5;Fieber 38,5 °C",
                                        "b.png;P2;41,0;ok"])
    rows = read_manifest(m)  # every line splits by ';' alike: read so, warned (QA33 multisite #8)
    assert rows[0]["age"] == "30,5" and "decimal commas" in rows.notes[0]
    m = _write(tmp_path / "ragged.csv", ["image;patient;age;text", "a.png;P1;30,5;Fieber; 38,5 °C"])
    with pytest.raises(SourceError, match=r"its header is one column 'image;patient;age;text': the file looks "
                                          r"semicolon-separated"):
        read_manifest(m)
    # a comma CSV whose captions hold unquoted commas keeps its own advice
    m = _write(tmp_path / "c.csv", ["image,text", "a.png,hello, world"])
    with pytest.raises(SourceError, match=r"must be quoted"):
        read_manifest(m)


# ---- clinical #7: a folder per patient -------------------------------------------------------------
def _folders(root: Path, n_folders: int, per: int, prefix: str = "P") -> None:
    for f in range(n_folders):
        (root / f"{prefix}{f:03d}").mkdir(parents=True, exist_ok=True)
        for j in range(per):
            (root / f"{prefix}{f:03d}" / f"scan{j}.png").write_bytes(image_bytes(f * 10 + j))


def test_folders_that_look_like_patients_are_warned(tmp_path: Path) -> None:
    _folders(tmp_path / "Patients", 10, 3)
    found = discover(tmp_path / "Patients")
    said = [w for w in found.warnings if "patient" in w]
    assert len(said) == 1 and "10 folders" in said[0] and "--group-by folder" in said[0], found.warnings
    assert "Split by fractions (--split)" in said[0] and "docs/bad-input-shard.md" in said[0]
    assert "*.png" not in said[0]  # no one-liner for one extension and one column
    found = discover(tmp_path / "Patients", labels_from_folders=False)
    assert any("--group-by folder" in w for w in found.warnings), found.warnings
    # class folders of many samples each: no warning
    _folders(tmp_path / "classes", 3, 12, prefix="c")
    assert not any("--group-by folder" in w for w in discover(tmp_path / "classes").warnings)


def test_patient_folders_read_as_classes_still_fill_the_asked_shares(tmp_path: Path) -> None:
    """Known limit of QA32: with folders read as classes (each patient its own class, one group each) the class
    term of split_grouped pulled every group to the largest split: 8 patients at 50/25/25 went 6/1/1."""
    _folders(tmp_path / "Patients", 8, 3)
    for seed in (0, 1, 2):
        mmdata.shard(tmp_path / "Patients", tmp_path / f"ds{seed}", group_by="folder", seed=seed,
                     split="train=0.5,val=0.25,test=0.25", progress=False)
        per: dict[str, set[str]] = {}
        for r in idx.load_index(tmp_path / f"ds{seed}").to_pylist():
            per.setdefault(r["split"], set()).add(r["source_key"].split("/")[0])
        assert {k: len(v) for k, v in per.items()} == {"train": 4, "val": 2, "test": 2}, (seed, per)


def test_group_by_folder_keeps_each_patient_in_one_split(tmp_path: Path) -> None:
    _folders(tmp_path / "Patients", 10, 3)
    rep = mmdata.shard(tmp_path / "Patients", tmp_path / "ds", labels_from_folders=False, group_by="folder",
                       split="train=0.5,val=0.25,test=0.25", progress=False)
    rows = idx.load_index(tmp_path / "ds").to_pylist()
    splits: dict[str, set[str]] = {}
    for r in rows:
        splits.setdefault(r["source_key"].split("/")[0], set()).add(r["split"])
    assert len(splits) == 10 and all(len(s) == 1 for s in splits.values()), splits
    assert len(set().union(*splits.values())) == 3
    assert not any("--group-by folder" in w for w in rep["warnings"])
    # class/patient/file: the folder below the class is the group, named by its path
    for c in ("sick", "well"):
        _folders(tmp_path / "nested" / c, 5, 2, prefix=f"{c}_p")
    found = discover(tmp_path / "nested", group_by="folder")
    assert {r.group for r in found.records} == {f"{c}/{c}_p{f:03d}" for c in ("sick", "well") for f in range(5)}
    assert found.label_names == ["sick", "well"]
    # any other value is still a manifest's column
    with pytest.raises(SourceError, match=r"--group-by names a manifest's column.*--group-by folder"):
        discover(tmp_path / "Patients", group_by="patient")


def _splits_of(ds: Path, depth: int) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in idx.load_index(ds).to_pylist():
        out.setdefault("/".join(r["source_key"].split("/")[:depth]), set()).add(r["split"])
    return out


def test_group_by_folder_on_folders_read_as_classes_groups_by_those_folders(tmp_path: Path) -> None:
    # QA42 rev-shardin #1: without --no-labels-from-folders each patient folder is a class; every sample was a
    # group of its own, every patient in every split, and the card said split_groups_crossing: 0
    _folders(tmp_path / "Patients", 10, 3)
    rep = mmdata.shard(tmp_path / "Patients", tmp_path / "ds", group_by="folder",
                       split="train=0.5,val=0.25,test=0.25", progress=False)
    splits = _splits_of(tmp_path / "ds", 1)
    assert len(splits) == 10 and all(len(s) == 1 for s in splits.values()), splits
    said = [w for w in rep["warnings"] if "hold their files directly" in w]
    assert len(said) == 1 and "--no-labels-from-folders" in said[0], rep["warnings"]
    assert {r.group for r in discover(tmp_path / "Patients", group_by="folder").records} == \
        {f"P{f:03d}" for f in range(10)}
    # --labels-from-folders: the user says they are classes, no warning
    found = discover(tmp_path / "Patients", group_by="folder", labels_from_folders=True)
    assert not any("hold their files directly" in w for w in found.warnings), found.warnings


def test_group_by_folder_keys_groups_by_path_not_name(tmp_path: Path) -> None:
    # QA42 rev-shardin #2: benign/001 and malignant/001 are two patients; libri <speaker>/<chapter> too
    for c in ("benign", "malignant"):
        _folders(tmp_path / "nest" / c, 4, 2, prefix="")
    found = discover(tmp_path / "nest", group_by="folder")
    assert {r.group for r in found.records} == {f"{c}/{f:03d}" for c in ("benign", "malignant") for f in range(4)}
    for spk in range(100, 110):
        for ch in ("200", "201"):
            for u in range(3):
                _recording(tmp_path / "libri" / str(spk) / ch / f"u{u}.wav", 0.05, seed=spk * 10 + int(ch) + u * 1000)
    rep = mmdata.shard(tmp_path / "libri", tmp_path / "lb", group_by="folder", labels_from_folders=False,
                       split="train=0.5,val=0.25,test=0.25", progress=False)
    splits = _splits_of(tmp_path / "lb", 1)
    assert len(splits) == 10 and all(len(s) == 1 for s in splits.values()), (splits, rep["warnings"])
    found = discover(tmp_path / "libri", group_by="folder")  # speakers as classes: each chapter of each speaker
    assert len({r.group for r in found.records}) == 20


def test_class_folder_sets_are_not_taken_for_patients(tmp_path: Path) -> None:
    # QA42 rev-shardin #3: 10 classes x 3 and MNIST's 0..9 x 5 are ordinary class sets
    _folders(tmp_path / "toy", 10, 3, prefix="class")
    for d in range(10):
        (tmp_path / "digits" / str(d)).mkdir(parents=True)
        for j in range(5):
            (tmp_path / "digits" / str(d) / f"{j}.png").write_bytes(image_bytes(d * 10 + j))
    for src in ("toy", "digits"):
        assert not any("patient" in w for w in discover(tmp_path / src).warnings), src
    # explicit --labels-from-folders silences it on id-like names
    _folders(tmp_path / "Patients", 10, 3)
    assert not any("patient" in w for w in discover(tmp_path / "Patients", labels_from_folders=True).warnings)
    # without --split the card's warning does not say the samples were split
    rep = mmdata.shard(tmp_path / "Patients", tmp_path / "ds", progress=False)
    said = [w for w in rep["warnings"] if "patient" in w]
    assert len(said) == 1 and "No --split is given" in said[0] and "drawn one by one" not in said[0], said
    # <class>/<patient>/: the folders below the class folders are looked at
    for c in ("benign", "malignant"):
        _folders(tmp_path / "nest" / c, 5, 2)
    said = [w for w in discover(tmp_path / "nest").warnings if "patient" in w]
    assert len(said) == 1 and "below the class folders" in said[0] and "benign/P000/" in said[0], said
    assert said == [w for w in discover(tmp_path / "nest", labels_from_folders=True).warnings if "patient" in w]


def test_remote_folder_takes_group_by_folder_and_is_named_by_its_url(tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    base = "memory://sources2-pat"
    for f in range(10):
        for j in range(3):
            fs.pipe(f"{base}/P{f:03d}/scan{j}.png", image_bytes(f * 10 + j))
    try:
        said = [w for w in discover(base).warnings if "patient" in w]
        assert len(said) == 1 and said[0].startswith(f"source {base}:"), said
        found = discover(base, group_by="folder", labels_from_folders=False)
        assert {r.group for r in found.records} == {f"P{f:03d}" for f in range(10)}
        with pytest.raises(SourceError, match=r"--group-by names a manifest's column"):
            discover(base, group_by="patient")
    finally:
        fs.rm(base, recursive=True)


def test_two_files_differing_by_extension_are_named_as_such(tmp_path: Path) -> None:
    _recording(tmp_path / "rec" / "long.wav")
    sf.write(tmp_path / "rec" / "long.flac", np.zeros(SR * 4, np.int16), SR, subtype="PCM_16")
    m = _write(tmp_path / "m.csv", ["audio,start,duration", "rec/long.wav,1.0,2.0", "rec/long.flac,1.0,1.0"])
    said = [w for w in discover_manifest(m, segment="start=start,duration=duration").warnings if "millisecond" in w]
    assert len(said) == 1 and "differ only by the extension" in said[0] and "share their recording" not in said[0]
    assert "'rec/long.flac', 'rec/long.wav'" in said[0], said


def test_semicolon_advice_adds_decimal_only_for_decimal_commas(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"sep=';'\)\.to_csv") as err:
        read_manifest(_write(tmp_path / "s.csv", ["image;age", "a.png;30", "b.png;41.5;x"]))  # ragged: not sniffed
    assert "decimal" not in str(err.value)
    with pytest.raises(SourceError, match=r"sep=';', decimal=','\)"):
        read_manifest(_write(tmp_path / "d.csv", ["image;age", "a.png;30,5;x"]))
