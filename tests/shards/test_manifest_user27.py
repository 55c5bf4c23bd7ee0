"""QA27 H1: a new user's manifests and names. A CSV whose every row has one unquoted separator too many
(pandas made the first cell the row index and shifted the columns: no image, cut captions), a ``text`` column
of caption-file paths (stored as the paths), ``.jfif`` / ``.jpe`` / ``.jif`` members beside ``.jpg`` ones, and
the Windows reserved-name warning naming a member that does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmdata.shards.sources import SourceError, discover, read_manifest
from mmdata.testing import image_bytes


def _images(root: Path, n: int, folder: str = "imgs") -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / folder / f"p{i}.png").write_bytes(image_bytes(i))


# D1: a row with more cells than the header


@pytest.mark.parametrize("sep", [",", ";"])
def test_every_row_one_unquoted_separator_too_many_is_an_error(tmp_path: Path, sep: str) -> None:
    _images(tmp_path, 6)
    head = "" if sep == "," else "sep=;\n"
    rows = "".join(f"imgs/p{i}.png{sep}hello{sep} world {i}{sep}cat\n" for i in range(6))
    m = tmp_path / "rag.csv"
    m.write_text(f"{head}image{sep}text{sep}label\n{rows}")
    with pytest.raises(SourceError) as e:
        discover(m)
    msg = str(e.value)
    assert "rag.csv" in msg and "6 rows" in msg and "more cells than the header" in msg, msg
    first = 3 if sep == ";" else 2  # the line of the first data row in the file
    assert f"line {first}" in msg and "quote" in msg and repr(sep) in msg, msg


def test_one_ragged_row_is_named(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("image,text,label\na.png,a cat,cat\nb.png,hello, world,dog\nc.png,x,cat\n")
    with pytest.raises(SourceError, match=r"1 row has more cells than the header's 3 \(line 3: 4 cells"):
        read_manifest(m)


def test_the_first_row_ragged_alone_is_not_cut_silently(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("image,text,label\na.png,hello, world,dog\nb.png,a cat,cat\n")
    with pytest.raises(SourceError, match="line 2"):
        read_manifest(m)


def test_trailing_empty_cells_lose_nothing_and_read(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("image,text,label\na.png,a cat,cat,\nb.png,a dog,dog,\n")
    assert read_manifest(m) == [{"image": "a.png", "text": "a cat", "label": "cat"},
                                {"image": "b.png", "text": "a dog", "label": "dog"}]


def test_quoted_separators_read(tmp_path: Path) -> None:
    m = tmp_path / "m.csv"
    m.write_text('image,text,label\na.png,"hello, world",cat\n')
    assert read_manifest(m) == [{"image": "a.png", "text": "hello, world", "label": "cat"}]


# D2: a text column naming caption files


def _clips(root: Path, n: int = 3) -> None:
    for i in range(n):
        d = root / "clips" / f"clip{i:03d}"
        d.mkdir(parents=True)
        (d / "frame.png").write_bytes(image_bytes(i))
        (d / "subtitles.txt").write_text(f"hello {i}")


def test_a_text_column_of_file_paths_warns_how_to_read_the_files(tmp_path: Path) -> None:
    _clips(tmp_path)
    m = tmp_path / "m.csv"
    m.write_text("image,text\n" + "".join(f"clips/clip{i:03d}/frame.png,clips/clip{i:03d}/subtitles.txt\n"
                                           for i in range(3)))
    d = discover(m)
    w = [x for x in d.warnings if "column 'text'" in x]
    assert len(w) == 1, d.warnings
    assert "3 of its 3" in w[0] and "clips/clip000/subtitles.txt" in w[0] and "rename" in w[0], w[0]
    # what the warning advises does read the files' contents
    m2 = tmp_path / "m2.csv"
    m2.write_text(m.read_text().replace("image,text", "image,subtitles"))
    d2 = discover(m2)
    assert all(Path(r.members["txt"]).read_text().startswith("hello") for r in d2.records)  # type: ignore[arg-type]
    assert not any("column 'subtitles'" in x for x in d2.warnings), d2.warnings


def test_captions_in_the_text_column_do_not_warn(tmp_path: Path) -> None:
    _images(tmp_path, 2)
    (tmp_path / "and").mkdir()
    m = tmp_path / "m.csv"
    m.write_text("image,text\nimgs/p0.png,a cat and/or a dog\nimgs/p1.png,imgs/p1.png\n")
    d = discover(m)
    assert not any("column 'text'" in x for x in d.warnings), d.warnings


def test_the_folder_per_item_warning_names_a_column_that_reads_caption_files(tmp_path: Path) -> None:
    _clips(tmp_path)
    d = discover(tmp_path / "clips")
    w = [x for x in d.warnings if "a folder per item" in x]
    assert len(w) == 1, d.warnings
    assert "subtitles" in w[0] and "a column named text holds the caption itself" in w[0], w[0]


# D6: JPEG-family extensions are stored as .jpg


def test_jfif_jpe_jif_are_stored_as_jpg(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i, ext in enumerate(("jfif", "JFIF", "jpe", "jif", "jpg", "jpeg")):
        (src / f"s{i}.{ext}").write_bytes(image_bytes(i, fmt="jpg"))
    d = discover(src)
    assert {r.key: sorted(r.members) for r in d.records} == {
        "s0": ["jpg"], "s1": ["jpg"], "s2": ["jpg"], "s3": ["jpg"], "s4": ["jpg"], "s5": ["jpeg"]}
    assert Path(d.records[0].members["jpg"]).name == "s0.jfif"  # type: ignore[arg-type]
    m = tmp_path / "m.csv"
    m.write_text("image,label\nsrc/s0.jfif,a\nsrc/s2.jpe,b\n")
    assert [sorted(r.members) for r in discover(m).records] == [["jpg"], ["jpg"]]


def test_a_jpg_and_a_jfif_of_one_name_are_still_two_images(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.jpg").write_bytes(image_bytes(0, fmt="jpg"))
    (src / "x.jfif").write_bytes(image_bytes(1, fmt="jpg"))
    d = discover(src)
    assert [(r.key, sorted(r.members)) for r in d.records] == [("x", ["jpg"])]
    assert len(d.skipped) == 1 and "a second image file for sample 'x'" in d.skipped[0]["reason"], d.skipped
    with pytest.raises(SourceError, match="two image files for sample 'x'"):
        discover(src, on_error="raise")


# D7: the reserved-name warning names the sample's members


def test_the_reserved_name_warning_names_the_real_members(tmp_path: Path) -> None:
    src = tmp_path / "win"
    src.mkdir()
    (src / "CON.jpg").write_bytes(image_bytes(0, fmt="jpg"))
    (src / "CON.txt").write_text("a caption")
    d = discover(src)
    w = [x for x in d.warnings if "Windows reserves" in x]
    assert len(w) == 1 and "CON.jpg, CON.txt cannot be created there" in w[0] and ".png" not in w[0], w
