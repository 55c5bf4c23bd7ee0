"""Review of QA27 on manifest and folder reading (``mmdata/shards/sources.py``): a plain UTF-8 TSV whose '"'
are characters of their cells (an unclosed caption quote, a whole-quoted caption) keeps every line a row and
every '"', while Excel's quoted exports are still unquoted; a job lists each folder once when it looks for
files named in another case."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmdata.shards.sources import discover, read_manifest
from mmdata.testing import image_bytes


def _images(root: Path, names: list[str]) -> None:
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(image_bytes(i))


def test_an_unclosed_caption_quote_does_not_merge_rows(tmp_path: Path) -> None:
    """The review's case: a '"' opening a.png's caption and one ending c.png's keep every row three cells wide
    when read as quoted, so a.png's text swallowed b and c (2 samples of 4, silently)."""
    _images(tmp_path, ["a.png", "b.png", "c.png", "d.png"])
    (tmp_path / "m.tsv").write_text('image\ttext\tlabel\na.png\t"A man riding a horse\tcat\nb.png\ta dog\tdog\n'
                                    'c.png\ta TV, 55"\tcat\nd.png\ta bird\tdog\n')
    found = discover(tmp_path / "m.tsv")
    assert [(r.source_key, r.members["txt"]) for r in found.records] == [
        ("a", b'"A man riding a horse'), ("b", b"a dog"), ("c", b'a TV, 55"'), ("d", b"a bird")]
    assert [r.label for r in found.records] == [0, 1, 0, 1]
    assert not found.skipped


@pytest.mark.parametrize(("cell", "text"), [('"Stop!"', '"Stop!"'), ('""', '""'), ('"Hello" she said', '"Hello" she said'),
                                            ('5" screen', '5" screen')])
def test_quotes_excel_would_not_write_are_kept(tmp_path: Path, cell: str, text: str) -> None:
    (tmp_path / "m.tsv").write_text(f"image\ttext\na.png\t{cell}\nb.png\tplain\n")
    assert [r["text"] for r in read_manifest(tmp_path / "m.tsv")] == [text, "plain"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
@pytest.mark.parametrize(("cell", "text"), [
    ('"a 12"" record"', 'a 12" record'),  # a '"' in the cell: doubled
    ('"line one\nline two"', "line one\nline two"),  # a line break in the cell
    ('"""Stop!"""', '"Stop!"'),  # a whole-quoted caption as Excel writes it
    ('"tab\tinside"', "tab\tinside"),  # a tab in the cell
])
def test_excel_quoting_is_read(tmp_path: Path, encoding: str, cell: str, text: str) -> None:
    body = f"image\ttext\tlabel\r\na.png\t{cell}\tcat\r\nb.png\tplain\tdog\r\n"
    (tmp_path / "m.tsv").write_bytes(body.encode(encoding))  # utf-16: Excel's "Unicode text" (a BOM)
    rows = read_manifest(tmp_path / "m.tsv")
    assert [(r["image"], r["text"], r["label"]) for r in rows] == [("a.png", text, "cat"), ("b.png", "plain", "dog")]


def test_a_bom_keeps_excel_quoting_even_when_lines_would_do(tmp_path: Path) -> None:
    """UTF-16 with a BOM is Excel's export: its quoting is read, even where the lines alone give even rows."""
    body = 'image\ttext\tlabel\na.png\t"x\tcat\nb.png\ty"\tdog\n'
    (tmp_path / "m.txt").write_bytes(body.encode("utf-16"))
    assert [r["text"] for r in read_manifest(tmp_path / "m.txt")] == ["x\tcat\nb.png\ty"]


def test_each_folder_is_listed_once_for_cells_missing_in_many_folders(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows cycling through more folders than the listings kept (64 before) listed a folder again for each missing
    cell while looking for the file in another case; each folder is now listed once per manifest."""
    import os
    from collections import Counter

    folders = [f"f{i:03d}" for i in range(100)]
    _images(tmp_path, [f"{f}/0.png" for f in folders])
    rows = ["image"] + [f"{f}/0.png" for f in folders] + [f"{f}/gone{j}.png" for j in range(3) for f in folders]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    listed: Counter[str] = Counter()
    listdir = os.listdir

    def counting(path: str = ".") -> list[str]:
        listed[os.path.basename(os.fspath(path))] += 1
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counting)
    found = discover(tmp_path / "m.csv")
    assert len(found.records) == 100
    missing = {s["source"] for s in found.skipped if s["reason"].endswith("file not found")}
    assert len(missing) == 300  # counted, not dropped silently
    assert {f: n for f, n in listed.items() if f in folders and n > 1} == {}
    assert all(listed[f] == 1 for f in folders)
