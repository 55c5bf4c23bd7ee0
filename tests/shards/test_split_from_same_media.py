"""QA round 33 (multisite #6): ``--split-from`` into a combined manifest of several sites matched nothing (every
key carries the site folder), so site A's test samples could go to train. Samples whose image / audio bytes are
an earlier sample's (whose key is gone) now keep its split, counted in the card's ``split_from.same_content``."""

from __future__ import annotations

import io
import shutil
import warnings
from pathlib import Path

from PIL import Image

import mmdata
from mmdata.shards import index as idx


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (i % 256, (11 * i) % 256, 5)).save(buf, "PNG")
    return buf.getvalue()


def _shard(src: Path, out: Path, **kw: object) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mmdata.shard(src, out, progress=False, **kw)


def _splits(ds: Path) -> dict[str, str]:
    return {r["source_key"]: r["split"] for r in idx.load_index(ds).select(["source_key", "split"]).to_pylist()}


def test_a_combined_manifest_keeps_a_site_s_splits_by_content(tmp_path: Path) -> None:
    site_a = tmp_path / "all" / "siteA"
    for c in ("cat", "dog"):
        (site_a / c).mkdir(parents=True)
        for i in range(6):
            (site_a / c / f"img_{i}.png").write_bytes(_png(100 * (c == "dog") + i))
    _shard(site_a, tmp_path / "dsA", split={"train": 0.5, "test": 0.5})
    before = _splits(tmp_path / "dsA")
    site_b = tmp_path / "all" / "siteB"
    site_b.mkdir()
    rows = ["image,label"] + [f"siteA/{k}.png,{k.split('/')[0]}" for k in sorted(before)]
    for i in range(6):
        (site_b / f"b{i}.png").write_bytes(_png(200 + i))
        rows.append(f"siteB/b{i}.png,{'cat' if i % 2 else 'dog'}")
    shutil.copy(site_a / "cat" / "img_0.png", site_b / "copy.png")  # a copy of one of A's samples at site B
    rows.append("siteB/copy.png,cat")
    (tmp_path / "all" / "m.csv").write_text("\n".join(rows) + "\n")
    rep = _shard(tmp_path / "all" / "m.csv", tmp_path / "dsAll", split={"train": 0.5, "test": 0.5},
                 split_from=tmp_path / "dsA")
    after = _splits(tmp_path / "dsAll")
    for k, split in before.items():
        assert after[f"siteA/{k}"] == split, k
    assert after["siteB/copy"] == before["cat/img_0"]  # the copy goes with the sample it copies
    card = idx.load_card(tmp_path / "dsAll")
    assert card["split_from"]["same_content"] == len(before) + 1
    assert card["duplicates"]["across_splits"] == 0
    said = [w for w in rep["warnings"] if "kept the split of the earlier sample with the same image / audio bytes" in w]
    assert said and "'cat/img_0' -> 'siteA/cat/img_0'" in said[0]
    assert not [w for w in rep["warnings"] if "matched a sample key of the earlier version" in w]
