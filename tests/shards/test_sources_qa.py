"""Folder sources (QA pass on ``mmdata/shards/sources.py``): links out of the source tree, junk folders
in a class-folder layout, non-UTF-8 and Unicode-normalised file names, re-runs with a link to a
folder that holds the source, and label files holding class names. Each test builds the folder a user
had, then checks what they get now."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.shards import index as idx
from mmdata.shards.sources import APPLEDOUBLE, HIDDEN_FOLDER, Discovered, discover, names_apart, safe_key
from mmdata.testing import image_bytes

ROOT = Path(__file__).parents[2]
NFC, NFD = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")


def _png(path: Path | bytes, seed: int = 0) -> None:
    with open(path, "wb") as f:
        f.write(image_bytes(seed))


def _skips(found: Discovered, what: str | None = None) -> dict[str, str]:
    return {s["source"]: s["reason"] for s in found.skipped if what is None or s["what"] == what}


def _keys(found: Discovered) -> list[str]:
    return [r.source_key for r in found.records]


# -- 1. links out of the source tree ----------------------------------------------------------------


def test_a_link_to_a_folder_holding_the_source_is_a_loop_and_not_walked(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    _png(tmp_path / "other" / "unrelated.png")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    _png(src / "a.png")
    (src / "up").symlink_to("..")  # -> tmp_path, which holds src: walked the whole parent folder
    (src / "sub" / "top").symlink_to("../../..")  # the parent's parent
    (src / "root").symlink_to("/")  # the whole file system
    found = discover(src)
    assert _keys(found) == ["a"]
    folders = _skips(found, "folder")
    assert set(folders) == {"up", "sub/top", "root"}
    assert folders["up"] == "symbolic link to '..', a folder that holds the source folder: a loop, not walked"
    assert "'/'" in folders["root"] and "'../../..'" in folders["sub/top"]


def test_a_link_to_a_folder_holding_the_link_outside_the_source_is_a_loop(tmp_path: Path) -> None:
    store = tmp_path / "big" / "ds"
    store.mkdir(parents=True)
    _png(store / "x.png")
    _png(tmp_path / "big" / "elsewhere.png")
    (store / "up").symlink_to("..")  # big/ds/up -> big: walks all of big through the farm
    src = tmp_path / "src"
    src.mkdir()
    (src / "ext").symlink_to(store)
    found = discover(src)
    assert _keys(found) == ["ext/x"]
    assert _skips(found, "folder") == {"ext/up": "symbolic link to '..', a folder that holds this link: a loop, "
                                                 "not walked"}


def test_files_through_links_leading_outside_are_kept_with_one_warning(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    store = tmp_path / "store"
    (store / "deep").mkdir(parents=True)
    _png(store / "s1.png", 1)
    _png(store / "deep" / "s2.png", 2)
    src = tmp_path / "src"
    src.mkdir()
    _png(src / "a.png")
    (src / "in.png").symlink_to("a.png")  # a link inside the source: not counted
    (src / "passwd.txt").symlink_to(secret)
    (src / "farm").symlink_to(store)  # a symlink farm: a legitimate way to build a dataset
    found = discover(src)
    assert _keys(found) == ["a", "farm/deep/s2", "farm/s1", "in", "passwd"]  # still followed
    assert found.warnings == ["3 files came through symbolic links that lead outside the source folder (e.g. "
                              "'passwd.txt': `readlink -f` on it shows where it leads) and are sharded like the rest: "
                              "check that they belong in the dataset before publishing it"]
    assert str(tmp_path) not in found.warnings[0]  # the card is the same wherever the storage lies
    # the CLI prints the card's warnings
    proc = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "shard", str(src), str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "400"})
    assert proc.returncode == 0, proc.stderr
    assert "3 files came through symbolic links that lead outside the source folder" in proc.stderr
    assert "'passwd.txt': `readlink -f`" in proc.stderr


def test_no_link_warning_without_links_leading_out(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "real").mkdir(parents=True)
    _png(src / "real" / "a.png")
    (src / "b.png").symlink_to("real/a.png")
    (src / "alias").symlink_to(src / "real")  # into the source: a skipped folder, no warning
    assert discover(src).warnings == []


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "/proc/self/fd/0"])
def test_a_link_to_a_device_is_not_a_regular_file_not_a_broken_link(tmp_path: Path, target: str) -> None:
    if not os.path.exists(target) or os.path.isfile(target) or os.path.isdir(target):
        pytest.skip(f"{target} is not a device, FIFO or socket here")  # stdin may be a file, or closed
    src = tmp_path / "src"
    src.mkdir()
    _png(src / "a.png")
    (src / "zero.png").symlink_to(target)
    found = discover(src, on_error="raise")  # not data: listed, never raised (as a FIFO)
    assert _keys(found) == ["a"]
    assert _skips(found) == {"zero.png": f"not a regular file (link to {target!r})"}


def test_a_broken_link_is_still_a_broken_link(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _png(src / "a.png")
    (src / "gone.png").symlink_to("nowhere.png")
    assert _skips(discover(src)) == {"gone.png": "broken symbolic link (to 'nowhere.png')"}


# -- 2. junk folders in a class-folder layout --------------------------------------------------------


def _class_folders(root: Path) -> Path:
    for n, c in enumerate(("cat", "dog")):
        (root / c).mkdir(parents=True)
        _png(root / c / "0.png", n)
        (root / c / "._0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
        (root / "__MACOSX" / c).mkdir(parents=True)
        (root / "__MACOSX" / c / "._0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "bird").mkdir()
    return root


def test_hidden_and_system_folders_are_not_classes_and_not_walked(tmp_path: Path) -> None:
    cf = _class_folders(tmp_path / "cf")
    (cf / "cat" / ".thumbs").mkdir()
    _png(cf / "cat" / ".thumbs" / "0.png")
    found = discover(cf)
    assert found.label_names == ["bird", "cat", "dog"] and found.label_names_from == "folders"
    assert [(r.source_key, r.label) for r in found.records] == [("cat/0", 1), ("dog/0", 2)]
    assert _skips(found, "folder") == {".git": HIDDEN_FOLDER, "__MACOSX": HIDDEN_FOLDER, "cat/.thumbs": HIDDEN_FOLDER}
    # AppleDouble files: one listed file each, not a sample or a broken member
    assert _skips(found, "file") == {"cat/._0.png": APPLEDOUBLE, "dog/._0.png": APPLEDOUBLE}
    assert not _skips(found, "member") and not _skips(found, "sample")
    mmdata.shard(cf, tmp_path / "ds", progress=False, on_error="raise")  # not data: never raised


def test_a_folder_at_a_url_leaves_out_the_same_folders(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    cf = _class_folders(tmp_path / "cf")
    (cf / "bird").rmdir()  # an object store has no empty folders
    fs = fsspec.filesystem("memory")
    base = f"/sources-qa-{os.getpid()}-{tmp_path.name}"
    for p in sorted(cf.rglob("*")):
        if p.is_file():
            fs.pipe(f"{base}/{p.relative_to(cf).as_posix()}", p.read_bytes())
    try:
        local, remote = discover(cf), discover(f"memory://{base}")
    finally:
        fs.rm(base, recursive=True)
    assert remote.label_names == local.label_names == ["cat", "dog"]
    assert [(r.source_key, r.label) for r in remote.records] == [(r.source_key, r.label) for r in local.records]
    assert remote.skipped == local.skipped


def test_an_empty_class_folder_stays_a_class_with_a_warning(tmp_path: Path) -> None:
    found = discover(_class_folders(tmp_path / "cf"))
    assert found.label_names == ["bird", "cat", "dog"]  # ids stay stable when bird gets samples later
    assert found.warnings == ["class folder bird/ holds no sample: class 0 keeps its id (so the ids of the others "
                              "stay as they are) but has no example; add samples or remove the folder"]


def test_class_folders_in_two_unicode_forms_are_one_class(tmp_path: Path) -> None:
    root = tmp_path / "cf"
    for n, name in enumerate((unicodedata.normalize("NFC", "dög"), unicodedata.normalize("NFD", "dög"), "cat")):
        (root / name).mkdir(parents=True)
        _png(root / name / f"{n}.png", n)
    found = discover(root)
    assert [unicodedata.normalize("NFC", n) for n in found.label_names] == ["cat", "dög"]
    assert sorted(r.label for r in found.records) == [0, 1, 1]
    (w,) = found.warnings
    assert "one name in two Unicode forms" in w and "b'd\\xc3\\xb6g'" in w and "b'do\\xcc\\x88g'" in w


def test_class_folders_differing_only_in_case_are_two_classes_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "cf"
    for n, name in enumerate(("cat", "Cat", "dog")):
        (root / name).mkdir(parents=True)
        _png(root / name / f"{n}.png", n)
    found = discover(root)
    assert found.label_names == ["Cat", "cat", "dog"]
    assert found.warnings == ["class folders 'Cat' (class 0) and 'cat' (class 1) differ only in case: they are 2 "
                              "classes; if they are one, merge the folders"]


# -- 3. non-UTF-8 names -------------------------------------------------------------------------------


def test_a_raw_byte_and_its_printed_escape_are_two_samples(tmp_path: Path) -> None:
    src = tmp_path / "nu"
    src.mkdir()
    _png(os.fsencode(src) + b"/a\xffb.png", 1)  # the byte 0xff
    _png(src / "a\\xffb.png", 2)  # the four characters \xff
    found = discover(src)
    keys = [r.key for r in found.records]
    assert len(set(keys)) == 2 and safe_key(os.fsdecode(b"a\xffb")) in keys and safe_key("a\\xffb") in keys
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    assert rep["samples"] == 2


def test_names_that_print_alike_are_told_apart_in_messages() -> None:
    a, b, alike = names_apart(os.fsdecode(b"a\xffb.png"), "a\\xffb.png")
    assert alike and a != b and "b'a\\xffb.png'" in a and "b'a\\\\xffb.png'" in b
    assert names_apart("x.png", "y.png") == ("'x.png'", "'y.png'", False)


# -- 4. Unicode normalisation -------------------------------------------------------------------------


def test_a_stem_in_nfc_and_nfd_is_one_sample(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _png(src / f"{NFC}.png")
    (src / f"{NFD}.txt").write_text("a caption")
    found = discover(src)
    (rec,) = found.records
    assert sorted(rec.members) == ["png", "txt"]
    assert rec.source_key == NFD  # the stem of the first file by name
    assert found.skipped == [] and found.warnings == []


def test_nfd_names_keep_their_source_keys_and_take_the_nfc_key(tmp_path: Path) -> None:
    """A folder copied through macOS (NFD names) gave other keys than the original (NFC): other splits,
    other augmentation draws, other tars (a determinism QA pass, 2026-12-03). The key now comes from the
    NFC form; source_key keeps the name as it is on disk."""
    src = tmp_path / "src"
    src.mkdir()
    _png(src / f"{NFD}.png")
    (src / f"{NFD}.txt").write_text("a caption")
    (rec,) = discover(src).records
    assert rec.source_key == NFD and rec.key == safe_key(NFC) != safe_key(NFD)


def test_a_copy_made_through_macos_gives_the_same_shards(tmp_path: Path) -> None:
    from mmdata.testing import make_messy_folder

    m = make_messy_folder(tmp_path / "nfc", n=24)
    for path in sorted(m.root.rglob("*")):  # the same tree with every name in NFD
        dst = tmp_path / "nfd" / unicodedata.normalize("NFD", str(path.relative_to(m.root)))
        if path.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(path.read_bytes())
    assert any(not p.name.isascii() for p in (tmp_path / "nfd").rglob("*"))
    for name in ("nfc", "nfd"):
        mmdata.shard(tmp_path / name, tmp_path / "out" / name / "ds", split="train=0.6,val=0.2,test=0.2", progress=False)
    a, b = tmp_path / "out" / "nfc" / "ds", tmp_path / "out" / "nfd" / "ds"
    tars = sorted(p.name for p in a.glob("*.tar"))
    assert tars == sorted(p.name for p in b.glob("*.tar")) and len(tars) >= 3
    assert all((a / t).read_bytes() == (b / t).read_bytes() for t in tars)
    ia, ib = idx.load_index(a).to_pylist(), idx.load_index(b).to_pylist()
    assert [{k: v for k, v in r.items() if k != "source_key"} for r in ia] == \
        [{k: v for k, v in r.items() if k != "source_key"} for r in ib]


def test_two_files_of_one_field_in_two_forms_are_reported_naming_both(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _png(src / f"{NFC}.png", 1)
    _png(src / f"{NFD}.png", 2)
    found = discover(src)
    (rec,) = found.records
    assert rec.members["png"].endswith(f"{NFD}.png")  # the first by name
    (entry,) = found.skipped
    assert entry["what"] == "member" and entry["source"] == f"{NFC}.png"
    assert "a second image file" in entry["reason"]
    assert "b'cafe\\xcc\\x81.png'" in entry["reason"] and "b'caf\\xc3\\xa9.png'" in entry["reason"]
    with pytest.raises(SourceError, match=re.escape("b'caf\\xc3\\xa9.png'")):
        discover(src, on_error="raise")


def test_sub_folders_in_two_unicode_forms_are_one_folder(tmp_path: Path) -> None:
    """A copy made on macOS left the sub-folder café/ once in NFC (the images) and once in NFD (the
    captions): each sample came out as two half-samples, with keys that print alike and no word."""
    src = tmp_path / "src"
    for form in (NFC, NFD):
        (src / "batch" / form).mkdir(parents=True)
    (src / "top.txt").write_text("a root sample keeps the layout flat")
    for i in range(3):
        _png(src / "batch" / NFC / f"{i}.png", i)
        (src / "batch" / NFD / f"{i}.txt").write_text(f"caption {i}")
    _png(src / "batch" / NFD / "2.png", 9)  # sample 2 has an image in both: the second is reported
    found = discover(src)
    recs = {r.source_key: r for r in found.records}
    assert sorted(recs) == [f"batch/{NFD}/0", f"batch/{NFD}/1", f"batch/{NFD}/2", "top"]  # the first folder by name
    assert all(sorted(recs[f"batch/{NFD}/{i}"].members) == ["png", "txt"] for i in range(3))
    assert recs[f"batch/{NFD}/2"].members["png"].endswith(f"{NFD}/2.png")
    (entry,) = found.skipped
    assert entry["what"] == "member" and entry["source"] == f"batch/{NFC}/2.png"
    assert "a second image file" in entry["reason"] and "two Unicode forms" in entry["reason"]
    (warning,) = found.warnings
    assert "one name in two Unicode forms" in warning and "3 samples with files in both" in warning
    assert "b'batch/cafe\\xcc\\x81/'" in warning and "b'batch/caf\\xc3\\xa9/'" in warning
    with pytest.raises(SourceError, match="two Unicode forms"):
        discover(src, on_error="raise")


def test_class_folders_in_two_unicode_forms_join_split_samples(tmp_path: Path) -> None:
    for form, ext in ((NFC, "png"), (NFD, "txt")):
        (tmp_path / "src" / form).mkdir(parents=True)
    _png(tmp_path / "src" / NFC / "a.png")
    (tmp_path / "src" / NFD / "a.txt").write_text("a caption")
    (tmp_path / "src" / "dog").mkdir()
    _png(tmp_path / "src" / "dog" / "b.png")
    found = discover(tmp_path / "src")
    assert [(r.source_key, sorted(r.members), r.label) for r in found.records] == \
        [(f"{NFD}/a", ["png", "txt"], 0), ("dog/b", ["png"], 1)]
    assert any("class folders" in w for w in found.warnings) and any("1 sample with files in both" in w
                                                                     for w in found.warnings)


# -- 5. re-runs with a link up to the output's parent -------------------------------------------------


def test_a_link_reaching_the_output_folder_leaves_reruns_byte_identical(tmp_path: Path) -> None:
    src = tmp_path / "iso" / "src"
    src.mkdir(parents=True)
    _png(src / "a.png")
    (src / "up").symlink_to("..")
    out = tmp_path / "iso" / "out"
    mmdata.shard(src, out, progress=False)
    first = (out / "dataset.json").read_bytes()
    rep = mmdata.shard(src, out, progress=False)
    assert (out / "dataset.json").read_bytes() == first
    assert [s["source"] for s in rep["skipped"]] == ["up"]
    assert [r["source_key"] for r in idx.load_index(out).to_pylist()] == ["a"]


# -- 6. label files holding class names ---------------------------------------------------------------


def test_label_files_with_class_names_get_a_hint_to_declare_them(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _png(src / "a.png")
    (src / "a.cls").write_text("cat\n")
    (entry,) = discover(src).skipped
    assert entry["source"] == "a.cls" and entry["reason"].startswith("expected an integer class id, got 'cat'")
    assert "labels.txt" in entry["reason"] and "--labels names.txt" in entry["reason"]
    (src / "labels.txt").write_text("dog\ncat\n")  # what the hint says: then the names are read
    assert [r.label for r in discover(src).records] == [1]


def test_a_label_that_is_a_number_gets_no_class_name_hint(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _png(src / "a.png")
    (src / "a.cls").write_text("1.5")
    (entry,) = discover(src).skipped
    assert entry["reason"] == ("label '1.5' is a real number, not a class id (labels are class ids 0, 1, ...; a score "
                               "or a regression target is metadata: --meta)")


def test_a_hidden_output_folder_inside_the_source_is_listed_as_the_output_on_every_run(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _png(src / "a.png")
    cards = []
    for _ in range(2):
        rep = mmdata.shard(src, src / ".out", progress=False)
        assert [(s["source"], s["reason"]) for s in rep["skipped"]] == [(".out", "the output folder of this job")]
        cards.append((src / ".out" / "dataset.json").read_bytes())
    assert cards[0] == cards[1]


def test_a_named_field_file_beside_a_sample_is_warned_about(tmp_path: Path) -> None:
    """Extension QA 2026-12-03: `000000.meta.json` beside `000000.png` became sample `000000.meta` (WebDataset
    users read it as field `meta.json` of `000000`) without a word; 8 stems wrote 16 samples."""
    from mmdata.testing import make_sample_folder

    raw = make_sample_folder(tmp_path / "raw", n=4)
    for i in range(4):
        (raw / f"{i:06d}.meta.json").write_text('{"speaker": "a"}')
    rep = mmdata.shard(raw, tmp_path / "ds", progress=False)
    assert rep["samples"] == 8  # the rule stays: a stem may hold dots
    said = [w for w in rep["warnings"] if "named field of another sample" in w]
    assert len(said) == 1 and said[0].startswith("4 samples look like") and "'000000.meta.npy'" in said[0], rep["warnings"]
    plain = mmdata.shard(make_sample_folder(tmp_path / "raw2", n=4), tmp_path / "ds2", progress=False)
    assert not [w for w in plain["warnings"] if "named field" in w]
