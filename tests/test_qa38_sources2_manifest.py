"""QA38 second-round defects of manifest discovery (``mmdata/shards/sources.py``) and add-modality
(``columns.py``), reviewer 5's findings: ``--column text=COL`` warnings that were untrue or missing, a remote
manifest's NFC cell naming an NFD ``.txt`` file, the document-pages warning's false positives, add-modality's
error for a manifest matching no sample, and ``_numbered``'s look-up per row. Real PNG / text files throughout.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image

from mmdata.shards.sources import discover


def _png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 16), dtype=np.uint8)).save(path)


def _captions_warning(found) -> str:  # noqa: ANN001
    [w] = [w for w in found.warnings if "stored as the captions" in w]
    return w


def test_text_column_of_png_paths_does_not_advise_dropping_the_option(tmp_path: Path) -> None:
    # rev5 #1: the .png cells are no text: dropping --column text=other would not give text, no "0 cells"
    _png(tmp_path / "raw" / "a.png", 0)
    (tmp_path / "m.csv").write_text("image,other\n" + "raw/a.png,raw/a.png\n" * 10, encoding="utf-8")
    w = _captions_warning(discover(tmp_path / "m.csv", columns={"text": "other"}))
    assert "10 of its 10 values" in w and "no text" in w and "--column FIELD=other" in w
    assert "drop --column" not in w and "0 cells" not in w and "write every cell as a path" not in w


def test_text_column_of_txt_paths_outside_the_folder_is_warned_with_root(tmp_path: Path) -> None:
    # rev5 #2: .txt paths outside the manifest's folder were stored as the text without a word
    (tmp_path / "outside.txt").write_text("not read", encoding="utf-8")
    d = tmp_path / "m"
    _png(d / "raw" / "a.png", 0)
    _png(d / "raw" / "b.png", 1)
    (d / "m.csv").write_text(f"image,transcript\nraw/a.png,../outside.txt\nraw/b.png,{tmp_path / 'outside.txt'}\n",
                             encoding="utf-8")
    found = discover(d / "m.csv", columns={"text": "transcript"})
    w = _captions_warning(found)
    assert "2 of them lie outside the manifest's folder" in w and "--root DIR" in w
    assert "drop --column text=transcript" in w and "naming no .txt file" not in w
    assert all(r.members["txt"] != b"not read" for r in found.records)
    # with --root, the advice names that folder
    w = _captions_warning(discover(d / "m.csv", columns={"text": "transcript"}, root=d))
    assert "outside the --root folder" in w and "give --root a folder" in w


def test_mapped_text_column_mixing_paths_and_captions_still_advises_dropping_the_option(tmp_path: Path) -> None:
    for i in range(10):
        _png(tmp_path / "raw" / f"p{i}.png", i)
        (tmp_path / "raw" / f"p{i}.txt").write_text(f"page {i}", encoding="utf-8")
    body = "".join(f"raw/p{i}.png,raw/p{i}.txt,k{i}\n" for i in range(10)) + "raw/p0.png,typed in,k10\n"
    (tmp_path / "m.csv").write_text("image,transcript,key\n" + body, encoding="utf-8")
    w = _captions_warning(discover(tmp_path / "m.csv", columns={"text": "transcript"}))
    assert "drop --column text=transcript" in w and "the 1 cell naming no .txt file" in w and "outside" not in w


def test_remote_text_column_reads_a_txt_file_named_in_the_other_unicode_form() -> None:
    # rev5 #3: NFC cell, NFD file at a URL: the whole column fell back to captions
    import fsspec

    from mmdata.testing import image_bytes

    fs = fsspec.filesystem("memory")
    nfd = unicodedata.normalize("NFD", "café")
    nfc = unicodedata.normalize("NFC", "café")
    fs.pipe("/qa38s2/raw/a.png", image_bytes(0))
    fs.pipe("/qa38s2/raw/a.txt", b"hello one")
    fs.pipe("/qa38s2/raw/c.png", image_bytes(1))
    fs.pipe(f"/qa38s2/raw/{nfd}.txt", b"hello cafe")
    fs.pipe("/qa38s2/m.csv", f"image,transcript\nraw/a.png,raw/a.txt\nraw/c.png,raw/{nfc}.txt\n".encode())
    try:
        found = discover("memory://qa38s2/m.csv", columns={"text": "transcript"})
    finally:
        fs.rm("/qa38s2", recursive=True)
    assert not any("stored as the captions" in w for w in found.warnings), found.warnings
    texts = sorted(r.members["txt"] for r in found.records)
    assert all(isinstance(t, str) and t.endswith(".txt") for t in texts), texts
    assert any(t.endswith(f"{nfd}.txt") for t in texts)


# rev5 #4 #5 #6: the document-pages warning


def _page_warnings(found) -> list[str]:  # noqa: ANN001
    return [w for w in found.warnings if "pages of" in w]


def test_bare_p_numbers_without_padding_or_text_are_no_pages(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "step_p1.png", 1)  # steps of a procedure, participants: no pages
    _png(tmp_path / "a" / "step_p2.png", 2)
    for i in range(1, 4):
        _png(tmp_path / "a" / "cat" / f"subject_p{i:02d}.png", i)
    assert _page_warnings(discover(tmp_path / "a")) == []
    for i in range(1, 3):  # a 3-digit page number, a page word, or a transcription beside: pages
        _png(tmp_path / "b" / f"doc_p{i:03d}.png", i)
        _png(tmp_path / "c" / f"doc_pg{i}.png", i)
        _png(tmp_path / "d" / f"doc-p{i:02d}.png", i)
        (tmp_path / "d" / f"doc-p{i:02d}.txt").write_text("words", encoding="utf-8")
    for d in "bcd":
        [w] = _page_warnings(discover(tmp_path / d))
        assert "2 samples" in w and "a split drawn from them (--split)" in w, d


def test_a_few_clips_of_named_frames_get_the_frames_warning_only(tmp_path: Path) -> None:
    for i in range(2):  # 1-2 clips are not grouped: the frames warning names them, the pages one must not too
        for p in (1, 2):
            _png(tmp_path / f"s{i}.page{p}.png", p)
        (tmp_path / f"s{i}.txt").write_text("words", encoding="utf-8")
    found = discover(tmp_path)
    assert any("numbered frames of a clip" in w for w in found.warnings), found.warnings
    assert _page_warnings(found) == []


def test_add_modality_manifest_matching_no_sample_names_the_row_keys(tmp_path: Path) -> None:
    # rev5 #7: the error said to rename the files (a manifest's file names do not matter), "1 files"
    import pytest

    import mmdata
    from mmdata.errors import SourceError
    from mmdata.shards.columns import add_modality

    for i in range(4):
        _png(tmp_path / "src" / f"s{i}.png", i)
    out = tmp_path / "ds"
    mmdata.shard(tmp_path / "src", out, split={"train": 1.0}, layout="columns")
    (tmp_path / "dep" / "f").mkdir(parents=True)
    np.save(tmp_path / "dep" / "f" / "d000000.npy", np.zeros(3, np.float32))
    (tmp_path / "dep" / "none.csv").write_text("key,depth\nzz,f/d000000.npy\n", encoding="utf-8")
    with pytest.raises(SourceError) as exc:
        add_modality(out, "depth", tmp_path / "dep" / "none.csv")
    msg = str(exc.value)
    assert "1 row," in msg and "'zz'" in msg and "key column" in msg, msg
    assert "1 files" not in msg and "name each file" not in msg and "\"/" not in msg, msg


# rev5 note: _numbered probed base#1, base#2, ... from #1 for each row naming one file (20,000 rows: 76 s)


def test_rows_naming_one_file_are_numbered_in_order_with_one_look_up_each(tmp_path: Path) -> None:
    from mmdata.shards.sources import _numbered

    _png(tmp_path / "x.png", 0)
    body = "".join(f"x.png,caption {i}\n" for i in range(600))
    (tmp_path / "m.csv").write_text("image,text\n" + body, encoding="utf-8")
    found = discover(tmp_path / "m.csv")
    assert {r.source_key: r.members["txt"] for r in found.records} == {
        "x" + (f"#{i}" if i else ""): b"caption %d" % i for i in range(600)}
    assert any("numbered after it ('x', then 'x#1'" in w for w in found.warnings), found.warnings

    class Counted(dict):  # a real dict that counts the look-ups numbering makes
        looks = 0

        def __contains__(self, k: object) -> bool:
            Counted.looks += 1
            return super().__contains__(k)

    key_rows, numbered, renamed, tried = Counted(x=0), {}, [], {}
    for i in range(1, 2001):
        key_rows[_numbered("x", key_rows, numbered, renamed, tried)] = i
    assert sorted(key_rows, key=lambda k: int(k.partition("#")[2] or 0))[-1] == "x#2000"
    assert Counted.looks <= 2 * 2000  # linear: not 2000 * 2001 / 2


def test_a_numbered_name_a_later_row_names_is_renumbered(tmp_path: Path) -> None:
    _png(tmp_path / "x.png", 0)
    _png(tmp_path / "x#1.png", 1)  # a file whose name numbering gave an earlier row: that row takes the next
    (tmp_path / "m.csv").write_text("image,text\nx.png,a\nx.png,b\nx.png,c\nx#1.png,d\n", encoding="utf-8")
    texts = {r.source_key: r.members["txt"] for r in discover(tmp_path / "m.csv").records}
    assert texts == {"x": b"a", "x#3": b"b", "x#2": b"c", "x#1": b"d"}  # b took the next number free
