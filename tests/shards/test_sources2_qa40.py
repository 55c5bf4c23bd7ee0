"""QA round 40, second review of sources: id-like dotted names are no views, p1 / p2 views, warning wording,
OS metadata named by a manifest row, a CSV ``inf`` cell."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

import mmdata
from mmdata.shards.sources import _views_kept, discover
from mmdata.testing import image_bytes


def _split_counts(ds: Path) -> dict[tuple[int, str], int]:
    out: dict[tuple[int, str], int] = {}
    for r in pq.read_table(ds / "index.parquet", columns=["label", "split"]).to_pylist():
        out[(r["label"], r["split"])] = out.get((r["label"], r["split"]), 0) + 1
    return out


def test_a_class_folder_of_files_sharing_a_dotted_prefix_is_no_view_set(tmp_path: Path) -> None:
    """QA40 review sources #1: ``img.a000.png`` .. ``img.a014.png`` in each class folder made each class one
    group: two classes never trained on, val and test one class each."""
    src = tmp_path / "raw"
    k = 0
    for cls in ("cat", "dog", "fox", "owl"):
        (src / cls).mkdir(parents=True)
        for i in range(15):
            (src / cls / f"img.a{i:03d}.png").write_bytes(image_bytes(k))
            k += 1
    found = discover(src)
    assert all(r.group is None for r in found.records)
    assert not any("views" in w for w in found.warnings), found.warnings
    rep = mmdata.shard(src, tmp_path / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    counts = _split_counts(tmp_path / "ds")
    assert all(counts.get((label, "train"), 0) >= 5 for label in range(4)), (counts, rep["warnings"])


def test_two_prefixes_sharing_id_words_are_still_no_views(tmp_path: Path) -> None:
    """``img.a000`` .. ``img.a014`` and ``pic.a000`` .. ``pic.a014`` per class: the words recur under two stem names,
    but 15 words for 2 stems a folder are ids, not a few views; grouped, each class would be 2 split units."""
    src = tmp_path / "raw"
    k = 0
    for cls in ("cat", "dog", "fox", "owl"):
        (src / cls).mkdir(parents=True)
        for stem in ("img", "pic"):
            for i in range(15):
                (src / cls / f"{stem}.a{i:03d}.png").write_bytes(image_bytes(k))
                k += 1
    found = discover(src)
    assert all(r.group is None for r in found.records)
    assert not any("views" in w for w in found.warnings), found.warnings


def test_files_named_genus_dot_species_id_are_no_views(tmp_path: Path) -> None:
    """QA40 review sources #1: ``Acer/Acer.negundo_0.png``: each word one file's id, no view."""
    src = tmp_path / "raw"
    k = 0
    for genus, species in (("Acer", ("negundo", "rubrum")), ("Quercus", ("robur", "alba")),
                           ("Pinus", ("nigra", "mugo"))):
        (src / genus).mkdir(parents=True)
        for sp in species:
            for i in range(5):
                (src / genus / f"{genus}.{sp}_{i}.png").write_bytes(image_bytes(k))
                k += 1
    found = discover(src)
    assert all(r.group is None for r in found.records)
    assert not any("views" in w for w in found.warnings), found.warnings


def test_stereo_pairs_beside_id_named_files_are_still_grouped(tmp_path: Path) -> None:
    """The views rule kept for words that recur under many stems (left / right), not for ids beside them."""
    src = tmp_path / "raw"
    k = 0
    for cls in ("near", "far"):
        (src / cls).mkdir(parents=True)
        for i in range(6):
            for view in ("left", "right"):
                (src / cls / f"s{i}.{view}.png").write_bytes(image_bytes(k))
                k += 1
            (src / cls / f"img.a{i:03d}.png").write_bytes(image_bytes(100 + k))
    found = discover(src)
    groups = {r.source_key: r.group for r in found.records}
    assert groups["near/s0.left"] == groups["near/s0.right"] == "near/s0"
    assert all(g is None for key, g in groups.items() if "/img." in key)
    assert any("views" in w and "'far/s0.left'" in w for w in found.warnings), found.warnings


def test_p1_p2_views_are_grouped_as_views_not_left_silent(tmp_path: Path) -> None:
    """QA40 review sources #3: ``s0.p1.png`` / ``s0.p2.png`` were claimed by neither the pages nor the views rule."""
    src = tmp_path / "raw"
    k = 0
    for cls in ("a", "b"):
        (src / cls).mkdir(parents=True)
        for i in range(10):
            for view in ("p1", "p2"):
                (src / cls / f"s{i}.{view}.png").write_bytes(image_bytes(k))
                k += 1
    found = discover(src)
    groups = {r.source_key: r.group for r in found.records}
    assert groups["a/s3.p1"] == groups["a/s3.p2"] == "a/s3"
    assert sum("views" in w for w in found.warnings) == 1, found.warnings
    assert not any("pages" in w for w in found.warnings), found.warnings


def test_views_kept_sentence_says_what_split_from_does() -> None:
    """QA40 review sources #2: with --split-from the earlier version's splits win; the sentence said every stem
    was kept in one split while 14 pairs were not."""
    said = _views_kept("grouped")
    assert "--split-from" in said and "earlier version" in said


def test_a_sidecar_warning_ends_its_sentence_before_the_split_sentence(tmp_path: Path) -> None:
    """QA40 review sources #5: "... (members <key>.edited.png) Each stem's samples ..." had no full stop."""
    src = tmp_path / "raw"
    (src / "c").mkdir(parents=True)
    for i in range(12):
        (src / "c" / f"IMG_{i:04d}.png").write_bytes(image_bytes(i))
        if i < 3:
            (src / "c" / f"IMG_{i:04d}.edited.png").write_bytes(image_bytes(50 + i))
    said = [w for w in discover(src).warnings if "one split" in w]
    assert len(said) == 1, said
    before = said[0].split(" Each stem's samples")[0]
    assert before.endswith(".") and not before.endswith(".."), said[0]


def test_a_manifest_row_naming_os_metadata_gets_that_reason(tmp_path: Path) -> None:
    """QA40 review sources #4: a row naming ``.DS_Store`` / ``Thumbs.db`` got "no known media extension"; the
    docs say it gets the OS metadata reason, as a folder source's file does."""
    src = tmp_path / "raw"
    src.mkdir()
    for i in range(3):
        (src / f"{i}.png").write_bytes(image_bytes(i))
    (src / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1junk")
    (src / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0junk")
    (src / "._0.png").write_bytes(b"\x00\x05\x16\x07junk")
    (src / "m.csv").write_text("image,label\n0.png,0\n1.png,1\n2.png,0\n.DS_Store,1\nThumbs.db,0\n._0.png,1\n")
    found = discover(src / "m.csv")
    reasons = {s["source"]: s["reason"] for s in found.skipped}
    assert len(found.records) == 3
    assert any("macOS" in r and "not data" in r and ".DS_Store" in s for s, r in reasons.items()), reasons
    assert any("Windows" in r and "not data" in r and "Thumbs.db" in s for s, r in reasons.items()), reasons
    assert not any("no known media extension" in r for r in reasons.values()), reasons


def test_a_csv_inf_cell_keeps_its_column_text_as_written(tmp_path: Path) -> None:
    """QA40 review sources #4: the docs said a CSV float column's ``inf`` became null with a warning; a CSV
    column is a number only when every cell reads back as written, so ``inf`` keeps it text (as the docs now
    say), stored as written, no cell changed."""
    src = tmp_path / "raw"
    src.mkdir()
    rows = ["image,score"]
    for i in range(4):
        (src / f"{i}.png").write_bytes(image_bytes(i))
        rows.append(f"{i}.png,{'inf' if i == 1 else f'{i}.5'}")
    (src / "m.csv").write_text("\n".join(rows) + "\n")
    rep = mmdata.shard(src / "m.csv", tmp_path / "ds", meta=["score"], progress=False)
    assert rep["samples"] == 4 and rep["skipped"] == []
    assert not any("null" in w and "'score'" in w for w in rep["warnings"]), rep["warnings"]
    ds = mmdata.open_dataset(tmp_path / "ds", decode=False)
    scores = sorted(json.loads(s["json"])["score"] for s in ds)
    assert scores == ["0.5", "2.5", "3.5", "inf"]
