"""QA37 identity: a sample's member identity for ``--split-from`` and ``mmdata diff``.

#1 a PNG's whole-file CRC-32 carries ~16 bits of variety (each chunk ends in its own CRC-32), so size + CRC-32
called different images the same: the index now stores ``member_digest`` (sha256 prefix) and both use it.
Real PNGs (two pairs of 24x24 PNGs of equal size and CRC-32 but different bytes), real shards and indexes."""

from __future__ import annotations

import io
import warnings
import zlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

import mmdata
from mmdata.shards import index as idx
from mmdata.shards.diff import diff

#: seeds of _png whose files have one size and CRC-32 but different bytes (found by a search over 4,000 seeds)
COLLIDING = ((111, 180), (225, 232))


def _png(seed: int) -> bytes:
    b = io.BytesIO()
    a = (np.random.default_rng(seed).random((24, 24, 3)) * 255).astype(np.uint8)
    Image.fromarray(a).save(b, "PNG")
    return b.getvalue()


def _shard(src: Path, out: Path, **kw: object) -> tuple[Path, list[str]]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        mmdata.shard(src, out, progress=False, **kw)
    return out, [str(w.message) for w in got]


def _folders(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _collision_week(tmp_path: Path) -> tuple[Path, Path]:
    (a1, b1), (a2, b2) = COLLIDING
    for x, y in COLLIDING:  # the premise: equal size and CRC-32, different bytes
        px, py = _png(x), _png(y)
        assert px != py and (len(px), zlib.crc32(px)) == (len(py), zlib.crc32(py))
    files = {f"cat/cat{i:02d}.png": _png(10000 + i) for i in range(20)}
    files |= {f"dog/dog{i:02d}.png": _png(20000 + i) for i in range(20)}
    files |= {"cat/cat00.png": _png(a1), "dog/dog05.png": _png(a2)}
    week1 = _folders(tmp_path / "a", files)
    files2 = dict(files)
    files2["cat/cat00.png"] = _png(b1)  # the corrected image for cat00
    del files2["dog/dog05.png"]  # erased on request
    files2["dog/dog99.png"] = _png(b2)  # an unrelated new image
    return week1, _folders(tmp_path / "b", files2)


def test_index_stores_a_strong_member_digest(tmp_path: Path) -> None:
    week1, _ = _collision_week(tmp_path)
    v1, _ = _shard(week1, tmp_path / "v1", split="train=0.6,val=0.2,test=0.2")
    row = next(r for r in pq.read_table(v1 / idx.INDEX).to_pylist() if r["source_key"] == "cat/cat00")
    data = (week1 / "cat/cat00.png").read_bytes()
    at = [m.endswith(".png") for m in row["members"]].index(True)
    assert row[idx.MEMBER_DIGEST][at] == idx.member_digest(data)


def test_split_from_does_not_pin_a_colliding_new_image(tmp_path: Path) -> None:
    week1, week2 = _collision_week(tmp_path)
    v1, _ = _shard(week1, tmp_path / "v1", split="train=0.6,val=0.2,test=0.2")
    v2, said = _shard(week2, tmp_path / "v2", split="train=0.6,val=0.2,test=0.2", split_from=v1)
    assert not [w for w in said if "dog/dog05" in w and "dog/dog99" in w], said
    card = idx.load_card(v2)
    assert "dog/dog05" not in str(card.get("split_from")), card.get("split_from")


def test_diff_sees_colliding_images_as_different(tmp_path: Path) -> None:
    week1, week2 = _collision_week(tmp_path)
    v1, _ = _shard(week1, tmp_path / "v1", split="train=0.6,val=0.2,test=0.2")
    v2, _ = _shard(week2, tmp_path / "v2", split="train=0.6,val=0.2,test=0.2", split_from=v1)
    d = diff(v1, v2)
    assert [c["source_key"] for c in d["changed"]["items"]] == ["cat/cat00"]
    assert d["renamed"]["total"] == 0, d["renamed"]
    assert [r["source_key"] for r in d["removed"]["items"]] == ["dog/dog05"]
    assert [r["source_key"] for r in d["added"]["items"]] == ["dog/dog99"]


def test_diff_without_digests_confirms_or_says_so(tmp_path: Path) -> None:
    """An index without ``member_digest`` (written before 2026-12-07): the colliding pair cannot be told apart from
    the index alone; diff says the comparison was by size and CRC-32."""
    import pyarrow as pa

    week1, week2 = _collision_week(tmp_path)
    v1, _ = _shard(week1, tmp_path / "v1", split="train=0.6,val=0.2,test=0.2")
    v2, _ = _shard(week2, tmp_path / "v2", split="train=0.6,val=0.2,test=0.2", split_from=v1)
    for v in (v1, v2):
        t = pq.read_table(v / idx.INDEX)
        t = t.drop_columns([idx.MEMBER_DIGEST])
        pq.write_table(t, v / idx.INDEX)
    d = diff(v1, v2)
    assert any("compared by size and CRC-32" in w for w in d["warnings"]), d["warnings"]
    # the rename dog05 -> dog99 that CRC-32s suggest is refused by the shards' bytes
    assert d["renamed"]["total"] == 0, d["renamed"]
    # without the shards, it cannot be confirmed: listed, and said
    for v in (v1, v2):
        for tar in v.glob("*.tar"):
            tar.unlink()
    d = diff(v1, v2)
    assert d["renamed"]["total"] == 1 and any("compared by size and CRC-32 only" in w for w in d["warnings"])
    del pa


def _manifest(root: Path, rows: list[tuple[str, int, str]]) -> Path:
    """A manifest of (key, image seed, label) rows, each image its own PNG."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = ["key,image,label"]
    for key, seed, label in rows:
        (root / "img" / f"{key}.png").write_bytes(_png(seed))
        lines.append(f"{key},img/{key}.png,{label}")
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    return root / "m.csv"


BASE = [(f"s{i:03d}", 30000 + i, "cat" if i % 2 else "dog") for i in range(30)]


def test_an_erased_item_redelivered_under_a_new_key_and_label_is_renamed_and_relabelled(tmp_path: Path) -> None:
    """#2: diff paired renames within one class only, shard's --split-from regardless of class: diff said removed
    where the card said kept by content, and the label change was counted nowhere."""
    v1, _ = _shard(_manifest(tmp_path / "r1", BASE), tmp_path / "v1", split="train=0.6,val=0.2,test=0.2")
    rows = [r for r in BASE if r[0] not in ("s001", "s003", "s004")]
    rows += [("new001", 30001, "dog"), ("new003", 30003, "dog")]  # cat items re-delivered as dog under new keys
    rows = [(k, seed, "dog" if k == "s005" else lab) for k, seed, lab in rows]  # one relabel kept by key
    v2, _ = _shard(_manifest(tmp_path / "r2", rows), tmp_path / "v2", split="train=0.6,val=0.2,test=0.2",
                   split_from=v1)
    d = diff(v1, v2)
    renamed = {(i["a_key"], i["key"]): i for i in d["renamed"]["items"]}
    assert set(renamed) == {("s001", "new001"), ("s003", "new003")}, d["renamed"]
    assert all(i["a_label"] == "cat" and i["label"] == "dog" for i in renamed.values())
    removed = {i["key"]: i for i in d["removed"]["items"]}
    assert removed["s001"]["renamed_to"] == "new001" and "renamed_to" not in removed["s004"]
    relabelled = sorted(i["key"] for i in d["relabelled"]["items"])
    assert relabelled == ["new001", "new003", "s005"], d["relabelled"]
    sf = idx.load_card(v2)["split_from"]
    # the card and diff count alike: removed = diff's removed less its renamed; relabelled = diff's relabelled
    assert sf["same_content"] == d["renamed"]["total"] == 2
    assert sf["removed"] == d["counts"]["removed"] - d["renamed"]["total"] == 1
    assert sf["relabelled"] == d["counts"]["relabelled"] == 3


def test_a_layout_change_counts_its_relabels(tmp_path: Path) -> None:
    """#2: class folders -> a manifest (every key changes; samples kept by content) with real relabels: the card's
    split_from.relabelled counted 0."""
    files = {f"{lab}/{k}.png": _png(seed) for k, seed, lab in BASE}
    v1, _ = _shard(_folders(tmp_path / "cf", files), tmp_path / "v1", split="train=0.6,val=0.2,test=0.2")
    rows = [(k, seed, ("cat" if lab == "dog" else "dog") if i < 4 else lab) for i, (k, seed, lab) in enumerate(BASE)]
    v2, _ = _shard(_manifest(tmp_path / "m", rows), tmp_path / "v2", split="train=0.6,val=0.2,test=0.2",
                   split_from=v1)
    sf = idx.load_card(v2)["split_from"]
    assert sf["relabelled"] == 4, sf


def test_a_new_byte_copy_of_a_kept_sample_takes_its_split(tmp_path: Path) -> None:
    """#3: copies of removed / renamed keys were pinned to the old split, a new copy of a kept key was split anew
    (into another split: the leak the duplicates check then warned of)."""
    v1, _ = _shard(_manifest(tmp_path / "r1", BASE), tmp_path / "v1", split="train=0.4,val=0.3,test=0.3")
    before = {r["key"]: r["split"] for r in pq.read_table(v1 / idx.INDEX).to_pylist()}
    rows = [*BASE, *((f"dup{k}", seed, lab) for k, seed, lab in BASE[:10])]
    v2, said = _shard(_manifest(tmp_path / "r2", rows), tmp_path / "v2", split="train=0.4,val=0.3,test=0.3",
                      split_from=v1)
    after = {r["key"]: r["split"] for r in pq.read_table(v2 / idx.INDEX).to_pylist()}
    assert {k: after[f"dup{k}"] for k, _, _ in BASE[:10]} == {k: before[k] for k, _, _ in BASE[:10]}
    assert idx.load_card(v2)["split_from"]["copies_of_kept"] == 10
    assert any("hold the image / audio bytes of an earlier sample kept by key" in w for w in said), said
    assert not idx.load_card(v2).get("duplicates", {}).get("across_splits"), idx.load_card(v2).get("duplicates")


def test_group_by_with_split_from_and_no_split_warns_only_of_groups_without_a_split(tmp_path: Path) -> None:
    """#4: --split-from + --group-by without --split: new rows followed their groups, yet the warning said they all
    went to train."""
    def manifest(root: Path, n: int) -> Path:
        root.mkdir(parents=True)
        lines = ["key,image,label,grp"]
        for i in range(n):
            (root / f"k{i:03d}.png").write_bytes(_png(40000 + i))
            lines.append(f"k{i:03d},k{i:03d}.png,{'ab'[i % 2]},g{i % 6}")
        (root / "m.csv").write_text("\n".join(lines) + "\n")
        return root / "m.csv"

    v1, _ = _shard(manifest(tmp_path / "r1", 36), tmp_path / "v1", split="train=0.5,val=0.25,test=0.25",
                   group_by="grp")
    v2, said = _shard(manifest(tmp_path / "r2", 42), tmp_path / "v2", split_from=v1, group_by="grp")
    assert not [w for w in said if "has no effect without --split" in w], said
    t = pq.read_table(v2 / idx.INDEX).to_pylist()
    by_group: dict[str, set[str]] = {}
    for r in t:
        by_group.setdefault(f"g{int(r['source_key'][1:]) % 6}", set()).add(r["split"])
    assert all(len(s) == 1 for s in by_group.values()), by_group


def test_a_class_renamed_at_its_id_is_no_class_id_change(tmp_path: Path) -> None:
    """#5: car -> automobile with --labels (ids kept) warned "class ids name other classes" and advised an order
    that moved automobile to a new id; the warning went into the published card."""
    rows = [(k, seed, "car" if lab == "cat" else lab) for k, seed, lab in BASE]
    (tmp_path / "l1.txt").write_text("car\ndog\n")
    v1, _ = _shard(_manifest(tmp_path / "r1", rows), tmp_path / "v1", split="train=0.6,val=0.2,test=0.2",
                   label_names=str(tmp_path / "l1.txt"))
    rows2 = [(k, seed, "automobile" if lab == "car" else lab) for k, seed, lab in rows]
    (tmp_path / "l2.txt").write_text("automobile\ndog\nbird\n")
    v2, said = _shard(_manifest(tmp_path / "r2", rows2), tmp_path / "v2", split="train=0.6,val=0.2,test=0.2",
                      split_from=v1, label_names=str(tmp_path / "l2.txt"))
    assert not [w for w in said if "class ids name other classes" in w], said
    assert not [w for w in idx.load_card(v2).get("warnings") or [] if "class ids" in w]
    assert diff(v1, v2)["card"]["label_names"]["renamed"] == [{"id": 0, "a": "car", "b": "automobile"}]


def test_a_caption_edit_is_counted_changed_not_another_file(tmp_path: Path) -> None:
    """#6: a caption typo fixed beside the same image was "the key now names another file" with class folders, and
    through a manifest nothing was said or counted."""
    files = {f"{lab}/{k}.png": _png(seed) for k, seed, lab in BASE}
    files |= {f"{lab}/{k}.txt": f"a photo number {k}".encode() for k, _, lab in BASE}
    v1, _ = _shard(_folders(tmp_path / "a", files), tmp_path / "v1", split="train=0.6,val=0.2,test=0.2")
    k, _, lab = BASE[3]
    files[f"{lab}/{k}.txt"] = f"a photo number {k} (fixed)".encode()
    v2, said = _shard(_folders(tmp_path / "b", files), tmp_path / "v2", split="train=0.6,val=0.2,test=0.2",
                      split_from=v1)
    assert not [w for w in said if "other content" in w], said
    assert any("hold an edited text" in w for w in said), said
    assert idx.load_card(v2)["split_from"]["changed"] == 1
    # through a manifest (the caption inline): counted too
    rows = ["key,image,text,label"]
    for key, seed, label in BASE:
        (tmp_path / "m" / "img").mkdir(parents=True, exist_ok=True)
        (tmp_path / "m" / "img" / f"{key}.png").write_bytes(_png(seed))
        rows.append(f"{key},img/{key}.png,a photo number {key},{label}")
    (tmp_path / "m" / "m.csv").write_text("\n".join(rows) + "\n")
    m1, _ = _shard(tmp_path / "m" / "m.csv", tmp_path / "m1", split="train=0.6,val=0.2,test=0.2")
    (tmp_path / "m" / "m.csv").write_text("\n".join(rows).replace("number s003", "number s003 (fixed)") + "\n")
    m2, said = _shard(tmp_path / "m" / "m.csv", tmp_path / "m2", split="train=0.6,val=0.2,test=0.2", split_from=m1)
    assert idx.load_card(m2)["split_from"]["changed"] == 1, said


def test_a_kept_key_whose_image_was_replaced_by_a_colliding_one_is_said(tmp_path: Path) -> None:
    """#1: a kept key's image replaced by another of the same size and CRC-32 passed as the same file."""
    week1, week2 = _collision_week(tmp_path)
    v1, _ = _shard(week1, tmp_path / "v1", split="train=0.6,val=0.2,test=0.2")
    _, said = _shard(week2, tmp_path / "v2", split="train=0.6,val=0.2,test=0.2", split_from=v1)
    got = [w for w in said if "other content" in w]
    assert len(got) == 1 and "'cat_cat00" in got[0] and "same size and CRC-32" in got[0], said
