"""Second QA pass over the locale fixes (095a9b5): inputs that read before it keep their keys and bytes
(role headers in another case are not taken over), ``--split-from`` over a dataset sharded with NFD keys,
split values in two Unicode forms, TSV without quoting, the fallbacks of a manifest at a URL, and the
wording of the hints."""

from __future__ import annotations

import unicodedata
import uuid
from pathlib import Path

import fsspec
import pytest

from mmdata.shards.index import load_card
from mmdata.shards.sources import Record, discover, not_utf8_reason, safe_key
from mmdata.shards.writer import shard, write_records
from mmdata.testing import image_bytes

NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")


def _manifest(root: Path, text: str, files: dict[str, bytes] | list[str] = (), name: str = "m.csv") -> Path:
    files = files if isinstance(files, dict) else {f: image_bytes(i) for i, f in enumerate(files)}
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    path = root / name
    path.write_bytes(text.encode("utf-8"))
    return path


# 1. a Text column of caption files is a path column, as before 095a9b5


def test_a_text_column_of_caption_paths_stores_the_files(tmp_path: Path) -> None:
    m = _manifest(tmp_path, "Image,Text,label\nimages/a.png,texts/a.txt,x\nimages/b.png,texts/b.txt,y\n",
                  {"images/a.png": image_bytes(0), "images/b.png": image_bytes(1), "texts/a.txt": b"a cat",
                   "texts/b.txt": b"a dog"})
    d = discover(m)
    assert not d.skipped, d.skipped
    for r in d.records:
        assert isinstance(r.members["txt"], str) and Path(r.members["txt"]).read_bytes() in (b"a cat", b"a dog")
    assert not any("--column text=Text" in w for w in d.warnings), d.warnings


# 3. a Key / Label header that is metadata is not taken over


def test_a_key_column_of_musical_keys_is_metadata(tmp_path: Path) -> None:
    m = _manifest(tmp_path, "image,Key\na.png,C#\nb.png,C#\nc.png,Eb\n", ["a.png", "b.png", "c.png"])
    d = discover(m)  # no "rows 1 and 2 are both sample 'C#'"
    assert sorted(r.key for r in d.records) == ["a", "b", "c"]
    w = [w for w in d.warnings if "'Key'" in w]
    assert w and "--column key=Key" in w[0] and "--meta Key" in w[0], d.warnings
    d = discover(m, meta=["Key"])
    assert not any("'Key'" in w for w in d.warnings), d.warnings


def test_a_label_column_of_record_labels_is_not_classes(tmp_path: Path) -> None:
    m = _manifest(tmp_path, "image,label \na.png,Sony\nb.png,EMI\n", ["a.png", "b.png"])
    d = discover(m)
    assert d.label_names is None and all(r.label is None for r in d.records)
    assert any("--column 'label=label '" in w for w in d.warnings), d.warnings


# 2. --split-from over a version sharded with NFD keys (before 095a9b5)


def _old_version(out: Path, stems: list[str], split: str) -> None:
    """A dataset as mmdata sharded it before 095a9b5: the key made from the name as written (NFD)."""
    write_records([Record(safe_key(s), s, {"png": image_bytes(i)}, split=split) for i, s in enumerate(stems)], out,
                  progress=False)


def test_split_from_a_version_with_nfd_keys_keeps_the_splits(tmp_path: Path) -> None:
    stems = [unicodedata.normalize("NFD", f"images/café {i}") for i in range(4)]
    _old_version(tmp_path / "v1", stems, "val")
    m = _manifest(tmp_path / "raw", "image\n" + "".join(f"{s}.png\n" for s in stems), [f"{s}.png" for s in stems])
    rep = shard(m, tmp_path / "v2", split_from=tmp_path / "v1", progress=False)
    card = load_card(tmp_path / "v2")
    assert card["split_from"]["kept"] == 4 and card["split_from"]["new"] == 0, card["split_from"]
    assert not any("--split-from: only" in w for w in rep["warnings"]), rep["warnings"]


def test_split_from_that_keeps_few_samples_warns(tmp_path: Path) -> None:
    _old_version(tmp_path / "v1", ["x0", "x1", "x2", "x3"], "val")
    # other bytes than x0..x3: the same bytes would keep their split by content (QA33, split_from.same_content)
    m = _manifest(tmp_path / "raw", "image\na.png\nb.png\nc.png\nd.png\n",
                  {f: image_bytes(10 + i) for i, f in enumerate(["a.png", "b.png", "c.png", "d.png"])})
    rep = shard(m, tmp_path / "v2", split_from=tmp_path / "v1", progress=False)
    assert load_card(tmp_path / "v2")["split_from"]["kept"] == 0
    assert any("--split-from: only 0 of 4 samples" in w for w in rep["warnings"]), rep["warnings"]


def test_split_from_a_version_that_grew_does_not_warn(tmp_path: Path) -> None:
    """A new version with many new samples keeps every old sample's split: no 'only k of n matched' warning
    (it compared the kept count with all samples, new ones included)."""
    old = [f"s{i}" for i in range(2)]
    _old_version(tmp_path / "v1", old, "val")
    names = [f"{s}.png" for s in old] + [f"n{i}.png" for i in range(8)]
    m = _manifest(tmp_path / "raw", "image,key\n" + "".join(f"{n},{n[:-4]}\n" for n in names), names)
    rep = shard(m, tmp_path / "v2", split_from=tmp_path / "v1", split={"train": 0.5, "val": 0.5}, progress=False)
    assert load_card(tmp_path / "v2")["split_from"]["kept"] == 2
    assert not any("--split-from: only" in w for w in rep["warnings"]), rep["warnings"]


# 4. split values in two Unicode forms are one split


def test_a_split_in_two_unicode_forms_is_one_split(tmp_path: Path) -> None:
    t_nfc, t_nfd = unicodedata.normalize("NFC", "tést"), unicodedata.normalize("NFD", "tést")
    m = _manifest(tmp_path, f"image,split\na.png,{t_nfc}\nb.png,{t_nfd}\nc.png,train\n", ["a.png", "b.png", "c.png"])
    d = discover(m)
    assert sorted({r.split for r in d.records}) == sorted({t_nfc, "train"})
    assert any("Unicode forms" in w and "'split'" in w for w in d.warnings), d.warnings


def test_a_split_in_one_unicode_form_is_kept_as_written(tmp_path: Path) -> None:
    t_nfd = unicodedata.normalize("NFD", "tést")
    m = _manifest(tmp_path, f"image,split\na.png,{t_nfd}\nb.png,train\n", ["a.png", "b.png"])
    assert {r.split for r in discover(m).records} == {t_nfd, "train"}


# 5. TSV has no quoting


@pytest.mark.parametrize("name", ["m.tsv", "m.txt"])
def test_a_quote_in_a_tsv_caption_is_a_character(tmp_path: Path, name: str) -> None:
    m = _manifest(tmp_path, 'image\ttext\na.png\t"Stop" she said\nb.png\ta 12" record\nc.png\tdog\n',
                  ["a.png", "b.png", "c.png"], name=name)
    d = discover(m)
    assert sorted(r.members["txt"] for r in d.records) == [b'"Stop" she said', b'a 12" record', b"dog"]


# 6. a manifest at a URL: the same fallbacks and warnings


def _remote(files: dict[str, bytes]) -> str:
    base = f"memory://locale-qa2-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    for rel, data in files.items():
        with fs.open(f"{base}/{rel}", "wb") as f:
            f.write(data)
    return base


def test_a_remote_manifest_reads_backslashes_and_the_other_unicode_form(tmp_path: Path) -> None:
    base = _remote({"m.csv": f"image,text\nimages\\a.png,x\nimages/{NFD}.png,y\nC:\\Users\\José\\b.png,z\n".encode(),
                    "images/a.png": image_bytes(0), f"images/{NFC}.png": image_bytes(1)})
    d = discover(f"{base}/m.csv")
    assert sorted(r.source_key for r in d.records) == ["images/a", f"images/{NFD}", "row00000002"], d.records
    assert [s["reason"] for s in d.skipped if "Windows path" in s["reason"]], d.skipped
    assert sum("backslash" in w for w in d.warnings) == 1, d.warnings
    assert any("Windows path" in w and "'C:\\Users\\José\\b.png'" in w for w in d.warnings), d.warnings


def test_a_remote_tab_separated_txt_is_a_manifest() -> None:
    base = _remote({"export.txt": b"image\ttext\na.png\ta cat\n", "a.png": image_bytes(0)})
    d = discover(f"{base}/export.txt")
    assert [r.members["txt"] for r in d.records] == [b"a cat"]


# 9. wording


def test_label_spelling_advice_says_digits_are_ids(tmp_path: Path) -> None:
    m = _manifest(tmp_path, "image,label\na.png,1\nb.png,01\n", ["a.png", "b.png"])
    w = [w for w in discover(m).warnings if "'01'" in w]
    assert w and "not numbers" in w[0] and "write them as names (and declare" not in w[0], w


def test_keys_differing_in_case_and_unicode_form_are_warned_about(tmp_path: Path) -> None:
    upper_nfd = unicodedata.normalize("NFD", "Café")
    m = _manifest(tmp_path, f"key,image\n{upper_nfd},a.png\n{NFC},b.png\n", ["a.png", "b.png"])
    assert any("differ only in case" in w for w in discover(m).warnings)


def test_the_windows_path_warning_prints_the_path_as_written(tmp_path: Path) -> None:
    m = _manifest(tmp_path, "image,text\nC:\\Users\\José\\dog.png,x\n")
    w = [w for w in discover(m).warnings if "Windows path" in w]
    assert w and "'C:\\Users\\José\\dog.png'" in w[0] and "\\\\" not in w[0], w


def test_a_rooted_backslash_path_gets_the_windows_hint(tmp_path: Path) -> None:
    m = _manifest(tmp_path, "image,text\n\\images\\a.png,x\nb.png,y\n", ["b.png"])
    d = discover(m)
    assert any("Windows path" in s["reason"] for s in d.skipped), d.skipped


def _reason(data: bytes) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not_utf8_reason(data, exc)
    raise AssertionError("decoded")


def test_the_latin1_hint_only_for_latin1_letters() -> None:
    assert "Latin-1" in _reason("café".encode("latin-1"))
    assert "Latin-1" in _reason("Ça coûte très cher".encode("cp1252"))
    cut = _reason(b"caf\xc3")
    assert "Latin-1" not in cut and "middle of a UTF-8 character" in cut
    assert "Latin-1" not in _reason("naïve café".encode()[:-1])
    assert "Latin-1" not in _reason(b"ab\x81\x8d")


def test_a_caption_txt_with_a_tab_says_how_it_was_read(tmp_path: Path) -> None:
    p = tmp_path / "caption.txt"
    p.write_text("a cat\ton a mat\n")
    d = discover(p)
    assert not d.records and "tab-separated manifest" in d.hint and "'a cat'" in d.hint, d.hint
