"""QA38 defects of manifest discovery and add-modality (``mmdata/shards/sources.py``, ``columns.py``).

OCR #1: ``--column text=transcript`` on a column of ``.txt`` paths stored the paths as the transcriptions, and
the warning told the user to rename a column that already had another name: the files are now read (a column
of .txt paths is the text), and a column mixing paths and captions is warned with the fix that applies.
Real PNG / UTF-8 files and real shards throughout.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

import mmdata
from mmdata.shards.sources import discover


def _png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 16), dtype=np.uint8)).save(path)


def _pages(root: Path, n: int = 3) -> None:
    for i in range(n):
        _png(root / "raw" / f"doc{i}_p001.png", i)
        (root / "raw" / f"doc{i}_p001.txt").write_text(f"page one of document {i}\n", encoding="utf-8")


def test_mapped_text_column_of_txt_paths_reads_the_files(tmp_path: Path) -> None:
    _pages(tmp_path)
    rows = "".join(f"raw/doc{i}_p001.png,raw/doc{i}_p001.txt,form\n" for i in range(3))
    (tmp_path / "m.csv").write_text("image,transcript,label\n" + rows, encoding="utf-8")
    found = discover(tmp_path / "m.csv", columns={"text": "transcript"})
    assert len(found.records) == 3
    # each sample's text is its file (a path to read), not the cell's bytes
    assert all(isinstance(r.members["txt"], str) and r.members["txt"].endswith("_p001.txt") for r in found.records)
    assert not any("stored as the captions" in w for w in found.warnings), found.warnings
    out = tmp_path / "ds"
    mmdata.shard(tmp_path / "m.csv", out, columns={"text": "transcript"}, split={"train": 1.0})
    texts = sorted(s["text"] for s in mmdata.open_dataset(out, split="train"))
    assert texts == [f"page one of document {i}" for i in range(3)]


def test_mapped_text_column_mixing_paths_and_captions_names_the_fix(tmp_path: Path) -> None:
    _pages(tmp_path, 10)
    cells = [f"raw/doc{i}_p001.txt" for i in range(10)] + ["a caption typed in"]
    body = "".join(f"raw/doc{i % 10}_p001.png,{c},k{i}\n" for i, c in enumerate(cells))
    (tmp_path / "m.csv").write_text("image,transcript,key\n" + body, encoding="utf-8")
    found = discover(tmp_path / "m.csv", columns={"text": "transcript"})
    [w] = [w for w in found.warnings if "stored as the captions" in w]
    assert "--column text=transcript" in w and "rename the column" not in w
    assert "10 of its 11 values" in w


# OCR #4: the pages of one document (docA_p001.png, docA_p002.png) went to different splits without a word


def _doc_pages(root: Path, docs: int = 4, pages: int = 3, form: str = "{d}_p{p:03d}") -> None:
    for d in range(docs):
        for p in range(1, pages + 1):
            stem = form.format(d=f"doc{d}", p=p)
            _png(root / "forms" / f"{stem}.png", 10 * d + p)
            (root / "forms" / f"{stem}.txt").write_text(f"{d} {p}", encoding="utf-8")


def _page_warnings(found) -> list[str]:  # noqa: ANN001
    return [w for w in found.warnings if "pages of" in w]


def test_pages_of_one_document_are_warned_with_the_group_by_fix(tmp_path: Path) -> None:
    _doc_pages(tmp_path)
    [w] = _page_warnings(discover(tmp_path))
    assert "12 samples" in w and "4 documents" in w
    assert "'forms/doc0_p001'" in w and "--group-by folder" in w and "--group-by" in w.split("--group-by folder")[1]
    # the pages are not grouped by it (the split is the user's to choose): only warned of
    assert all(r.group is None for r in discover(tmp_path).records)


def test_page_word_forms_are_recognised(tmp_path: Path) -> None:
    for i, form in enumerate(("{d}_page{p}", "{d}-p{p:02d}", "{d}.pg{p}")):
        root = tmp_path / str(i)
        _doc_pages(root, 2, 2, form)
        assert len(_page_warnings(discover(root))) == 1, form


def test_plain_numbered_samples_and_folder_groups_are_not_warned(tmp_path: Path) -> None:
    for i in range(1, 9):  # one class's distinct samples: no page word, no warning
        _png(tmp_path / "a" / "cat" / f"img_{i:04d}.png", i)
        _png(tmp_path / "a" / "cat" / f"photo{i}.png", i)
    assert _page_warnings(discover(tmp_path / "a")) == []
    _doc_pages(tmp_path / "b")
    assert _page_warnings(discover(tmp_path / "b", group_by="folder")) == []
    for i in range(3):  # s0.page1.png, s0.page2.png beside s0.txt: a clip's named frames, grouped, not pages
        for p in (1, 2):
            _png(tmp_path / "d" / f"s{i}.page{p}.png", p)
        (tmp_path / "d" / f"s{i}.txt").write_text("words", encoding="utf-8")
    found = discover(tmp_path / "d")
    assert _page_warnings(found) == [] and {r.group for r in found.records} == {"s0", "s1", "s2"}
    _png(tmp_path / "c" / "x" / "doc_p1.png", 1)  # one page alone: no document of several pages
    _png(tmp_path / "c" / "x" / "other_p1.png", 2)
    assert _page_warnings(discover(tmp_path / "c")) == []


# OCR #9: hOCR / ALTO / PAGE-XML sidecars were refused as an "unknown file type", no way out named


def test_xml_sidecars_name_the_way_that_keeps_them(tmp_path: Path) -> None:
    for i in range(3):
        _png(tmp_path / "pages" / f"d{i}.png", i)
        (tmp_path / "pages" / f"d{i}.xml").write_text("<alto><String CONTENT='x'/></alto>", encoding="utf-8")
    found = discover(tmp_path)
    reasons = {s["reason"] for s in found.skipped if s["source"].endswith(".xml")}
    assert len(reasons) == 1 and len(found.skipped) == 3
    [why] = reasons
    assert "ALTO" in why and "--column alto=alto" in why and ".txt" in why and ".json" in why
    # the way it names works: the XML as a .txt in a folder of its own, a paired layout
    for i in range(3):
        (tmp_path / "alto").mkdir(exist_ok=True)
        (tmp_path / "alto" / f"d{i}.txt").write_text((tmp_path / "pages" / f"d{i}.xml").read_text("utf-8"), "utf-8")
        (tmp_path / "pages" / f"d{i}.xml").unlink()
    kept = discover(tmp_path, columns={"image": "pages", "alto": "alto"})
    assert sorted(sorted(r.members) for r in kept.records) == [["alto.txt", "png"]] * 3 and not kept.skipped
    (tmp_path / "m.csv").write_text("image,alto\npages/d0.png,pages/d1.hocr\n", encoding="utf-8")
    (tmp_path / "pages" / "d1.hocr").write_text("<html/>", encoding="utf-8")
    [skip] = discover(tmp_path / "m.csv", columns={"alto": "alto"}).skipped
    assert "hOCR" in skip["reason"] and "no known media extension" not in skip["reason"]


# RF #10: add-modality of an array field never counted NaN / inf; sites F #6: a manifest row's key matching no
# sample was reported as "its name matches no sample's key"


def _columns_dataset(root: Path, n: int = 4) -> Path:
    for i in range(n):
        _png(root / "src" / f"s{i}.png", i)
    out = root / "ds"
    mmdata.shard(root / "src", out, layout="columns", split={"train": 1.0}, progress=False)
    return out


def test_add_modality_counts_non_finite_arrays(tmp_path: Path) -> None:
    from mmdata.shards.columns import add_modality

    out = _columns_dataset(tmp_path)
    (tmp_path / "agc").mkdir()
    for i in range(4):
        a = np.full(8, np.nan, np.float32) if i == 1 else np.arange(8, dtype=np.float32)
        np.save(tmp_path / "agc" / f"s{i}.agc.npy", a)
    rep = add_modality(out, "agc", tmp_path / "agc")
    [w] = [w for w in rep["warnings"] if "NaN" in w]
    assert "1 of 4" in w and "s1" in w
    card = json.loads((out / "dataset.json").read_text("utf-8"))
    assert card["modalities"]["agc"]["non_finite"] == 1


def test_add_modality_from_a_manifest_names_the_row_key_matching_no_sample(tmp_path: Path) -> None:
    from mmdata.shards.columns import add_modality

    out = _columns_dataset(tmp_path)
    (tmp_path / "d").mkdir()
    lines = []
    for i, key in enumerate(("s0", "s1", "gone_a", "gone_b")):
        np.save(tmp_path / "d" / f"d{i}.npy", np.zeros(3, np.float32))
        lines.append(f"{key},d/d{i}.npy\n")
    (tmp_path / "depth.csv").write_text("key,depth\n" + "".join(lines), encoding="utf-8")
    rep = add_modality(out, "depth", tmp_path / "depth.csv")
    assert rep["added"] == 2 and rep["unmatched"] == 2
    [(why, n)] = rep["unmatched_reasons"].items()
    assert n == 2 and "row's key" in why and "its name" not in why
    assert any("'gone_a'" in f and "d2.npy" in f for f in rep["unmatched_files"]), rep["unmatched_files"]


# sites #5: a large manifest's "finding files" showed no count; reading it went through DataFrame.to_dict


def test_manifest_rows_are_counted_while_read_and_cells_keep_their_values(tmp_path: Path) -> None:
    lines = "".join(f"k{i},caption {i},{'' if i % 7 == 0 else 'c' + str(i % 3)}, x \n" for i in range(3000))
    (tmp_path / "t.csv").write_text("key,text,label,note\n" + lines, encoding="utf-8")
    seen: list[int] = []
    found = discover(tmp_path / "t.csv", meta=["note"], on_files=seen.append)
    assert seen[0] == 0 and seen[-1] == 3000 and seen == sorted(seen) and 1024 in seen
    assert len(found.records) == 3000
    import pandas as pd
    from mmdata.shards.sources import read_manifest
    rows = read_manifest(tmp_path / "t.csv")
    want = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False, na_values=[""]).to_dict(orient="records")
    assert len(rows) == len(want) and all(
        r.keys() == w.keys() and all(r[k] == w[k] or (r[k] != r[k] and w[k] != w[k]) for k in r)
        for r, w in zip(rows, want))
    assert rows[0]["label"] != rows[0]["label"] and rows[1]["note"] == " x "  # blank: NaN; spaces kept
