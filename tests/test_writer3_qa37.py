"""QA37 third-round review of the writer, diff and hf fixes (r3a #1-#4, r3c, r3b licence): counts and wording of
the old-index warnings, licence naming, and field licences on augmented cards."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from mmdata.shards import index as idx
from mmdata.shards.diff import diff
from tests.test_identity_qa37 import COLLIDING, _folders, _png, _shard


def test_split_from_an_old_index_without_shards_counts_what_was_compared_by_crc(tmp_path: Path) -> None:
    """r3a #2: 70 kept samples against an index without member_digest whose shards are gone: the warning said
    "64 samples ... compared by size and CRC-32 only", when all 70 were compared without sha256 (64 by CRC-32,
    the other 6 by size alone)."""
    files = {f"cat/c{i:03d}.png": _png(40000 + i) for i in range(70)}
    src = _folders(tmp_path / "src", files)
    v1, _ = _shard(src, tmp_path / "v1", split="train=0.8,val=0.1,test=0.1")
    t = pq.read_table(v1 / idx.INDEX)
    pq.write_table(t.drop_columns([idx.MEMBER_DIGEST]), v1 / idx.INDEX)
    for tar in v1.glob("*.tar"):
        tar.unlink()
    _, said = _shard(src, tmp_path / "v2", split="train=0.8,val=0.1,test=0.1", split_from=v1)
    got = [w for w in said if "by size and CRC-32 only" in w]
    assert len(got) == 1 and "the first 64 of 70 samples kept by key" in got[0], said
    assert "the other 6 by size alone" in got[0], got
    assert "64 samples kept by key" not in got[0], got


def test_diff_of_old_indexes_says_a_crc_collision_leaves_renames_unpaired(tmp_path: Path) -> None:
    """r3a #3: on indexes without member_digest the warning said "an unrelated file [may show] as a rename", though
    renames are confirmed by sha256 from the shards; what happens is that two files of one size and CRC-32 leave
    their renames unpaired."""
    (a, b), _ = COLLIDING
    files = {f"cat/c{i}.png": _png(41000 + i) for i in range(4)} | {"cat/x.png": _png(a), "cat/y.png": _png(b)}
    v1, _ = _shard(_folders(tmp_path / "a", files), tmp_path / "v1")
    renamed = {k.replace("/x.", "/x2.").replace("/y.", "/y2."): v for k, v in files.items()}
    v2, _ = _shard(_folders(tmp_path / "b", renamed), tmp_path / "v2")
    for v in (v1, v2):
        t = pq.read_table(v / idx.INDEX)
        pq.write_table(t.drop_columns([idx.MEMBER_DIGEST]), v / idx.INDEX)
    d = diff(v1, v2)
    assert d["renamed"]["total"] == 0 and d["removed"]["total"] == 2, d  # the colliding pair: unpaired, as said
    got = [w for w in d["warnings"] if "no member_digest" in w]
    # QA38 D #5: one warning naming both sides (it was said twice, once per side, word for word)
    assert len(got) == 1 and "renames unpaired" in got[0] and str(v1) in got[0] and str(v2) in got[0], d["warnings"]
    assert not [w for w in got if "an unrelated file as a rename" in w], got


def test_licence_values_of_cc_urls_without_scheme_marks_ports_and_both_uses() -> None:
    """r3a #4 (l3.py): a scheme-less CC URL and the Public Domain Mark were "no known licence", "commercial and non
    commercial use" was flagged NonCommercial, and a ported CC licence (by/2.0/de) was named as the generic one."""
    from mmdata.interop.hf import licence_column_counts

    r = licence_column_counts(["//creativecommons.org/licenses/by/4.0/"], "CC-BY-4.0")
    assert r["differ"] == 0 and r["unknown"] == [], r
    r = licence_column_counts(["https://creativecommons.org/publicdomain/mark/1.0/"])
    assert r["unknown"] == [] and r["ids"] == {"https://creativecommons.org/publicdomain/mark/1.0/": "pdm-1.0"}, r
    r = licence_column_counts(["commercial and non commercial use", "Non-commercial use only"], "CC-BY-4.0")
    assert r["noncommercial"] == ["Non-commercial use only"], r
    r = licence_column_counts(["http://creativecommons.org/licenses/by/2.0/de/"], "CC-BY-2.0")
    assert r["ids"] == {"http://creativecommons.org/licenses/by/2.0/de/": "cc-by-2.0-de"} and r["differ"] == 1, r
    r = licence_column_counts(["https://creativecommons.org/licenses/by/4.0/deed.de"], "CC-BY-4.0")
    assert r["differ"] == 0, r  # a deed's language is no port


def test_split_from_added_fields_warning_gives_the_fields_licence_and_attribution(tmp_path: Path) -> None:
    """r3c #6: the warning said "with --license / --attribution as before" without the values."""
    import warnings

    import numpy as np

    from mmdata.shards.columns import add_modality

    raw = _folders(tmp_path / "raw", {f"a/a{i}.png": _png(42000 + i) for i in range(4)})
    v1, _ = _shard(raw, tmp_path / "v1", layout="columns")
    emb = tmp_path / "emb" / "a"
    emb.mkdir(parents=True)
    for i in range(4):
        np.save(emb / f"a{i}.npy", np.ones(4, "float32"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        add_modality(v1, "emb", tmp_path / "emb", license="CC-BY-NC-4.0", attribution="Lab X, 2026")
    _, said = _shard(raw, tmp_path / "v2", layout="columns", split_from=v1)
    got = [w for w in said if "--split-from v1" in w and "add-modality" in w]
    assert len(got) == 1 and "emb SRC --license CC-BY-NC-4.0 --attribution 'Lab X, 2026'" in got[0], said


def test_one_licence_on_every_sample_and_none_declared_is_told_to_pass_it(tmp_path: Path) -> None:
    """r3c #3 (lic.sh): a licence column with CC-BY-4.0 on every row and no --license was told the dataset "cannot
    be published under one licence"; the remedy is --license CC-BY-4.0."""
    import csv

    src = _folders(tmp_path / "src", {f"i{i}.png": _png(43000 + i) for i in range(4)})
    with open(src / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "licence"])
        w.writerows([f"i{i}.png", "CC-BY-4.0" if i % 2 else "CC BY 4.0"] for i in range(4))
    _, said = _shard(src / "m.csv", tmp_path / "v1", meta=["licence"])
    got = [w for w in said if "'licence'" in w and "licen" in w]
    assert len(got) == 1 and "pass --license CC-BY-4.0" in got[0], said
    assert "cannot be published under one licence" not in got[0], got
    _, said = _shard(src / "m.csv", tmp_path / "v2", meta=["licence"], license="CC-BY-4.0")
    assert not [w for w in said if "column 'licence'" in w], said


def test_an_augmented_cards_fields_keep_their_own_licence(tmp_path: Path) -> None:
    """r3b licence (nc_field.sh): after augment, ``modalities.depth.license`` was None though the source's depth
    field was CC-BY-NC-4.0 (add-modality --license): the writer rebuilt ``modalities``."""
    import json
    import warnings

    import numpy as np

    import mmdata
    from mmdata.augment.offline import augment_dataset

    raw = _folders(tmp_path / "raw", {f"cat/c{i}.png": _png(44000 + i) for i in range(3)})
    mmdata.shard(raw, tmp_path / "ds", license="CC-BY-4.0", layout="columns", progress=False)
    dep = tmp_path / "dep"
    dep.mkdir()
    for r in mmdata.open_dataset(tmp_path / "ds"):
        np.save(dep / f"{r.key}.depth.npy", np.zeros((4, 4), np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.add_modality(tmp_path / "ds", "depth", dep, license="CC-BY-NC-4.0", attribution="Depth Lab")
        augment_dataset(tmp_path / "ds", tmp_path / "aug", {"image": [{"op": "hflip", "p": 1.0}]}, progress=False)
    card = json.loads((tmp_path / "aug" / "dataset.json").read_text())
    assert card["modalities"]["depth"]["license"] == "CC-BY-NC-4.0", card["modalities"]
    assert card["modalities"]["image"].get("license") is None, card["modalities"]
    mmdata.verify(tmp_path / "aug")
