"""QA37 identity, review of the fixes: member_digest kept in step by add-modality; renames paired by digest where a
size + CRC-32 collision would block them; old indexes (no member_digest) read their shards once and say what they
compared. Real PNGs whose size and CRC-32 collide (tests/test_identity_qa37.COLLIDING), real shards and indexes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mmdata.shards import index as idx
from mmdata.shards.columns import add_modality
from mmdata.shards.diff import diff
from tests.test_identity_qa37 import BASE, COLLIDING, _folders, _manifest, _png, _shard


def _depth_dataset(tmp_path: Path) -> Path:
    files = {f"{c}/{c}{i}.png": _png(40000 + i + 10 * (c == "cat")) for c in ("cat", "dog") for i in range(4)}
    v1, _ = _shard(_folders(tmp_path / "src", files), tmp_path / "v1", layout="columns",
                   split="train=0.5,val=0.25,test=0.25")
    return v1


def _depths(folder: Path, keys: list[str], value: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in keys:
        np.save(folder / f"{k}.depth.npy", np.full((4, 4), value, np.float32))
    return folder


def test_a_field_added_by_add_modality_is_a_change_and_has_its_digest(tmp_path: Path) -> None:
    """Review #5 (am.sh): a digest list shorter than the members (a field added without its digest) made diff
    drop the new member and say 'unchanged'."""
    v1 = _depth_dataset(tmp_path)
    keys = pq.read_table(v1 / idx.INDEX).column("key").to_pylist()
    v2 = tmp_path / "v2"
    shutil.copytree(v1, v2)
    add_modality(v2, "depth", _depths(tmp_path / "d1", keys, 0.0))
    for row in pq.read_table(v2 / idx.INDEX).to_pylist():
        assert len(row[idx.MEMBER_DIGEST]) == len(row["members"]), row
        at = [m.endswith(".depth.npy") for m in row["members"]].index(True)
        data = (tmp_path / "d1" / f"{row['key']}.depth.npy").read_bytes()
        assert row[idx.MEMBER_DIGEST][at] == idx.member_digest(data)
    d = diff(v1, v2)
    assert d["counts"]["changed"] == 8, d["counts"]
    assert all(c["members"][0]["what"] == "added" for c in d["changed"]["items"]), d["changed"]


def test_a_field_replaced_with_bytes_of_the_same_size_is_a_change(tmp_path: Path) -> None:
    """Review #1 (am2.sh / am3.sh): add-modality --replace with same-size .npy kept the old digest at the same
    position: diff said 'no sample differs', and --split-from with v2's own bytes said 'other content'."""
    v1 = _depth_dataset(tmp_path)
    keys = pq.read_table(v1 / idx.INDEX).column("key").to_pylist()
    add_modality(v1, "depth", _depths(tmp_path / "d1", keys, 0.0))
    v2 = tmp_path / "v2"
    shutil.copytree(v1, v2)
    add_modality(v2, "depth", _depths(tmp_path / "d2", keys, 1.0), replace=True)
    d = diff(v1, v2)
    assert d["counts"]["changed"] == 8, d["counts"]
    assert {m["member"] for c in d["changed"]["items"] for m in c["members"]} == {"depth.npy"}
    assert not d["warnings"], d["warnings"]


def test_diff_pairs_a_rename_beside_a_colliding_new_image(tmp_path: Path) -> None:
    """Review #2 (rn.sh): renames were grouped by size + CRC-32 and needed one row per side: a new image that
    collides with a renamed one (same size and CRC-32, other bytes) blocked the pair though both have digests."""
    same, other = COLLIDING[0]
    v1, _ = _shard(_manifest(tmp_path / "r1", [*BASE, ("k1", same, "cat")]), tmp_path / "v1",
                   split="train=0.6,val=0.2,test=0.2")
    v2, _ = _shard(_manifest(tmp_path / "r2", [*BASE, ("r1", same, "cat"), ("r2", other, "cat")]), tmp_path / "v2",
                   split="train=0.6,val=0.2,test=0.2", split_from=v1)
    d = diff(v1, v2)
    assert [(i["a_key"], i["key"]) for i in d["renamed"]["items"]] == [("k1", "r1")], d["renamed"]


def _manifest_split(root: Path, rows: list[tuple[str, int, str, str]]) -> Path:
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = ["key,image,label,split"]
    for key, seed, label, split in rows:
        (root / "img" / f"{key}.png").write_bytes(_png(seed))
        lines.append(f"{key},img/{key}.png,{label},{split}")
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    return root / "m.csv"


def test_split_from_pairs_renames_whose_crc_collides_across_splits(tmp_path: Path) -> None:
    """Review #2 (rn.sh): two removed images of one size and CRC-32 in two splits (other bytes) made their
    renamed copies be split anew: a renamed test item could land in train."""
    (a1, b1), (a2, b2) = COLLIDING
    rows = [(k, seed, lab, "train") for k, seed, lab in BASE]
    rows += [("k1", a1, "cat", "train"), ("k2", b1, "cat", "test"), ("k3", a2, "dog", "test"),
             ("k4", b2, "dog", "train")]
    v1, _ = _shard(_manifest_split(tmp_path / "r1", rows), tmp_path / "v1")
    renamed = [(k.replace("k", "r"), seed, lab) for k, seed, lab, _ in rows[-4:]]
    v2, said = _shard(_manifest(tmp_path / "r2", [*BASE, *renamed]), tmp_path / "v2",
                      split="train=0.2,val=0.2,test=0.6", split_from=v1)
    after = {r["key"]: r["split"] for r in pq.read_table(v2 / idx.INDEX).to_pylist()}
    assert {k: after[k] for k in ("r1", "r2", "r3", "r4")} == {"r1": "train", "r2": "test", "r3": "test",
                                                                "r4": "train"}, said
    assert idx.load_card(v2)["split_from"]["same_content"] == 4
    assert diff(v1, v2)["renamed"]["total"] == 4


def test_diff_counts_a_stale_digest_list_as_compared_by_crc(tmp_path: Path) -> None:
    """Review #6: a digest list stale against its members fell back to CRC-32 silently; only null lists were
    counted in the warning."""
    v1, _ = _shard(_manifest(tmp_path / "r1", BASE), tmp_path / "v1", split="train=0.6,val=0.2,test=0.2")
    v2 = tmp_path / "v2"
    shutil.copytree(v1, v2)
    t = pq.read_table(v2 / idx.INDEX)
    digests = t.column(idx.MEMBER_DIGEST).to_pylist()
    digests[0] = digests[0][:-1]  # as a series added by an add-modality without digests left it
    at = t.column_names.index(idx.MEMBER_DIGEST)
    t = t.set_column(at, idx.MEMBER_DIGEST, pa.array(digests, t.schema.field(idx.MEMBER_DIGEST).type))
    pq.write_table(t, v2 / idx.INDEX)
    d = diff(v1, v2)
    assert any("1 of its index rows have no member_digest" in w for w in d["warnings"]), d["warnings"]


def _drop_digests(v: Path) -> None:
    t = pq.read_table(v / idx.INDEX)
    pq.write_table(t.drop_columns([idx.MEMBER_DIGEST]), v / idx.INDEX)


def test_split_from_an_old_index_confirms_kept_keys_by_its_shards(tmp_path: Path) -> None:
    """Review #4 (old.sh): against an index without member_digest, a kept key whose image was replaced by one of
    the same size and CRC-32 was not flagged, nor was it said that the comparison was by CRC-32 only."""
    from tests.test_identity_qa37 import _collision_week

    week1, week2 = _collision_week(tmp_path)
    v1, _ = _shard(week1, tmp_path / "v1", split="train=0.6,val=0.2,test=0.2")
    _drop_digests(v1)
    _, said = _shard(week2, tmp_path / "v2", split="train=0.6,val=0.2,test=0.2", split_from=v1)
    got = [w for w in said if "other content" in w]
    assert len(got) == 1 and "'cat_cat00" in got[0] and "same size and CRC-32" in got[0], said
    assert idx.load_card(tmp_path / "v2")["split_from"]["other_content"] == 1
    assert not [w for w in said if "by size and CRC-32 only" in w], said
    # without the earlier shards: not confirmable, and said
    for tar in v1.glob("*.tar"):
        tar.unlink()
    _, said = _shard(week2, tmp_path / "v3", split="train=0.6,val=0.2,test=0.2", split_from=v1)
    assert [w for w in said if "compared with v1 by size and CRC-32 only" in w], said


def test_keypoints_beside_images_that_differ_in_two_axes_are_warned_with_the_right_slice(tmp_path: Path) -> None:
    """Review #7 (sign repro_3): with images in the dataset no multi-axis warning was given even for (T, 75, 3)
    keypoints among (T, 75, 2) ones (no per-pixel map), and the fix suggested [:, :C], the wrong axis."""
    files = {f"cat/c{i}.png": _png(50000 + i) for i in range(6)}
    src = _folders(tmp_path / "src", files)
    for i in range(6):
        np.save(src / "cat" / f"c{i}.pose.npy", np.zeros((5 + i, 75, 2 if i == 0 else 3), np.float32))
    _, said = _shard(src, tmp_path / "v1")
    got = [w for w in said if "field 'pose'" in w and "differ in 2 axes" in w]
    assert len(got) == 1 and "s['pose'][:, :, :2]" in got[0] and "[:, :C]" not in got[0], said


def test_per_pixel_maps_beside_images_are_not_warned_of(tmp_path: Path) -> None:
    """The maps case stays quiet: a (H, W) map per image, images of several sizes."""
    from PIL import Image

    src = tmp_path / "src" / "cat"
    src.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (20 + i, 10 + 2 * i)).save(src / f"c{i}.png")
        np.save(src / f"c{i}.depth.npy", np.zeros((10 + 2 * i, 20 + i), np.float32))
    _, said = _shard(tmp_path / "src", tmp_path / "v1")
    assert not [w for w in said if "field 'depth'" in w and "axes" in w], said
    # a half-resolution map of images of several sizes is a map too (as collate and augment take it)
    half = tmp_path / "half" / "cat"
    half.mkdir(parents=True)
    for i in range(4):
        w, h = 40 + 6 * i, 20 + 8 * i
        Image.new("RGB", (w, h)).save(half / f"c{i}.png")
        np.save(half / f"c{i}.depth.npy", np.zeros((h // 2, w // 2), np.float32))
    _, said = _shard(tmp_path / "half", tmp_path / "v2")
    assert not [w for w in said if "field 'depth'" in w and "axes" in w], said
