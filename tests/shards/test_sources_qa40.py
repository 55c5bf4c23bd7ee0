"""QA round 40 (sources): views of one stem in a folder, OS metadata files, non-finite metadata, invisible spellings."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

import mmdata
from mmdata.shards.sources import discover
from mmdata.testing import image_bytes


def _views(root: Path, base: bool = False, n: int = 10) -> Path:
    """Class folders near/ far/ holding stereo pairs ``s<i>.left.png`` / ``s<i>.right.png`` (and ``s<i>.txt``)."""
    k = 0
    for cls in ("near", "far"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            for view in ("left", "right"):
                (root / cls / f"s{i}.{view}.png").write_bytes(image_bytes(k))
                k += 1
            if base:
                (root / cls / f"s{i}.txt").write_text(f"scene {cls} {i}")
    return root


def _splits_by_stem(ds: Path) -> dict[str, set[str]]:
    rows = pq.read_table(ds / "index.parquet", columns=["source_key", "split"]).to_pylist()
    out: dict[str, set[str]] = {}
    for r in rows:
        stem = r["source_key"].rsplit(".", 1)[0] if r["source_key"].endswith((".left", ".right")) else r["source_key"]
        out.setdefault(stem, set()).add(r["split"])
    return out


def test_stereo_views_without_a_base_sample_stay_in_one_split_and_are_warned_of(tmp_path: Path) -> None:
    """QA40 multiview #1: 14 of 20 pairs had their left view in one split and the right in another, no warning."""
    rep = mmdata.shard(_views(tmp_path / "raw"), tmp_path / "ds", split="train=0.6,val=0.2,test=0.2", seed=0,
                       progress=False)
    assert rep["samples"] == 40  # a file's sample is its name up to the last dot: the rule stays
    crossed = {s: v for s, v in _splits_by_stem(tmp_path / "ds").items() if len(v) > 1}
    assert crossed == {}
    said = [w for w in rep["warnings"] if "views" in w and "left" in w]
    assert len(said) == 1, rep["warnings"]
    assert "one split" in said[0] and "--column right=right" in said[0] and "'far/s0.right'" in said[0]


def test_views_beside_a_base_sample_stay_with_it(tmp_path: Path) -> None:
    """QA40 multiview #1: with ``s0.txt`` beside the views 15 of 16 items crossed splits."""
    rep = mmdata.shard(_views(tmp_path / "raw", base=True), tmp_path / "ds", split="train=0.6,val=0.2,test=0.2",
                       seed=0, progress=False)
    crossed = {s: v for s, v in _splits_by_stem(tmp_path / "ds").items() if len(v) > 1}
    assert crossed == {}
    assert any("named field of another sample" in w and "one split" in w for w in rep["warnings"]), rep["warnings"]


def test_lone_dotted_names_and_frames_are_not_views(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    for i in range(4):
        (src / "a" / f"img{i}.v2.png").write_bytes(image_bytes(i))  # one dotted name per stem: its own sample
        (src / "b" / f"p{i}.png").write_bytes(image_bytes(10 + i))
    for i in range(3):  # a document's pages: the pages warning's, not views
        (src / "b" / f"doc{i}.pg1.png").write_bytes(image_bytes(20 + i))
        (src / "b" / f"doc{i}.pg2.png").write_bytes(image_bytes(30 + i))
    found = discover(src)
    assert all(r.group is None for r in found.records)
    assert not any("views" in w for w in found.warnings)
    assert any("pages of 3 documents" in w for w in found.warnings), found.warnings


def test_os_metadata_files_are_named_as_such(tmp_path: Path) -> None:
    """QA40 repro #2: ``.DS_Store`` read as "unknown file type" while ``._x`` is named macOS metadata."""
    src = tmp_path / "raw"
    src.mkdir()
    (src / "a.png").write_bytes(image_bytes(0))
    (src / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1junk")
    (src / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0junk")
    (src / "desktop.ini").write_text("[.ShellClassInfo]\n")
    reasons = {s["source"]: s["reason"] for s in discover(src).skipped}
    assert "macOS" in reasons[".DS_Store"] and "not data" in reasons[".DS_Store"]
    assert "Windows" in reasons["Thumbs.db"] and "not data" in reasons["Thumbs.db"]
    assert "Windows" in reasons["desktop.ini"] and "not data" in reasons["desktop.ini"]


def test_an_inf_metadata_cell_is_changed_to_null_with_a_warning_not_left_out(tmp_path: Path) -> None:
    """QA40 hostile #6: ``inf`` read as "left out: 6 members"; NaN silently null: both alike now."""
    src = tmp_path / "raw"
    src.mkdir()
    lines = []
    for i in range(6):
        (src / f"{i}.png").write_bytes(image_bytes(i))
        g = "Infinity" if i == 2 else "NaN" if i == 4 else str(i)
        lines.append(f'{{"image": "{i}.png", "g": {g}}}')
    (src / "m.jsonl").write_text("\n".join(lines) + "\n")
    rep = mmdata.shard(src / "m.jsonl", tmp_path / "ds", meta=["g"], progress=False)
    assert rep["samples"] == 6 and rep["skipped"] == []
    said = [w for w in rep["warnings"] if "null" in w and "'g'" in w]
    assert len(said) == 1 and "2 metadata cells" in said[0] and "row 3" in said[0], rep["warnings"]


def test_values_differing_by_an_invisible_character_name_it(tmp_path: Path) -> None:
    """QA40 hostile #8: bidi controls were said to be "case or spaces"."""
    src = tmp_path / "raw"
    src.mkdir()
    lines = []
    for i in range(4):
        (src / f"{i}.png").write_bytes(image_bytes(i))
        lines.append(json.dumps({"image": f"{i}.png", "g": "a\u202ab" if i % 2 else "a\u202eb"}))
    (src / "m.jsonl").write_text("\n".join(lines) + "\n")
    rep = mmdata.shard(src / "m.jsonl", tmp_path / "ds", meta=["g"], progress=False)
    (said,) = [w for w in rep["warnings"] if "--meta column 'g'" in w]
    assert "U+202A" in said and "U+202E" in said and "case" not in said.split(" — ")[0]


def test_json_note_names_what_strict_parsers_refuse() -> None:
    """QA40 hostile #4: a sidecar's NaN / -Infinity / 1e999 / repeated key, named by key (the writer counts them)."""
    from mmdata.shards.sources import json_note

    note = json_note(b'{"g": NaN, "g2": -Infinity, "d": 1, "d": 2, "big": 1e999}')
    assert note == ("key 'g': NaN; key 'g2': -Infinity; key 'big': 1e999 (beyond a double: infinite); "
                    "key 'd' repeated")
    assert json_note(b'{"a": [1.5, null], "b": {"c": 1e300}}') is None
    assert json_note(b'{"a": {"b": [Infinity]}}') == "key 'b[]': Infinity"
    assert json_note(b"not json") is None  # refused by check_json, not noted


def test_a_sidecar_holding_nan_or_a_repeated_key_is_warned_of_by_sample_and_key(tmp_path: Path) -> None:
    """QA40 hostile #4: stored byte for byte with no warning; now counted and named (bytes still as given)."""
    src = tmp_path / "raw"
    body = b'{"g": NaN, "g2": -Infinity, "d": 1, "d": 2, "big": 1e999}'
    for cls in ("a", "b"):
        (src / cls).mkdir(parents=True)
        for i in range(3):
            (src / cls / f"s{i}.png").write_bytes(image_bytes(i + (10 if cls == "b" else 0)))
            (src / cls / f"s{i}.json").write_bytes(body if i else b'{"g": 1}')
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    (said,) = [w for w in rep["warnings"] if ".json member" in w]
    assert said.startswith("4 .json members hold") and "key 'g': NaN" in said and "key 'd' repeated" in said
    assert "'a/s1'" in said and "write null" in said
