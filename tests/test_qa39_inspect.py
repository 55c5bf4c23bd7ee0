"""QA round 39, fixer "inspect": blend dtype advice, inspect --by, diff --by, label-name warnings, alpha notes."""
from __future__ import annotations

import pytest


def _card(d: str):
    class D:
        card = {"modalities": {"feat": {"dtypes": {d: 3}}}}
    return D()


def test_a_blend_of_float_and_int16_features_never_advises_an_int16_save() -> None:
    """QA39 interop #2: the re-save and cast were in the cast dataset's dtype (int16), truncating the float one."""
    from mmdata.shards.blend import _dtypes_warning

    said = _dtypes_warning({"a": _card("float64"), "b": _card("int16")}, None)
    assert said is not None and "float64 in 'a', int16 in 'b'" in said, said
    assert "astype(np.int16)" not in said and "to(torch.int16)" not in said, said
    assert "astype(np.float64)" in said and "build it for float64" in said, said


def test_a_blend_of_uint16_and_int16_advises_a_dtype_that_holds_both() -> None:
    """QA39 interop #2 (the known limit of non-nesting pairs): int32 holds uint16 and int16."""
    from mmdata.shards.blend import _dtypes_warning

    said = _dtypes_warning({"a": _card("uint16"), "b": _card("int16")}, None)
    assert said is not None and "astype(np.int32)" in said, said
    assert "astype(np.int16)" not in said and "astype(np.uint16)" not in said and ".to(torch." not in said, said


def test_a_blend_of_float32_and_float64_still_offers_the_float32_cast() -> None:
    from mmdata.shards.blend import _dtypes_warning

    said = _dtypes_warning({"a": _card("float32"), "b": _card("float64")}, None)
    assert said is not None and "batch['feat'].to(torch.float32)" in said and "astype(np.float64)" in said, said


def _meta_ds(tmp_path, name: str, sites: list[str | None], labels: list[str]):
    import csv
    import warnings

    import mmdata

    raw = tmp_path / f"raw_{name}"
    raw.mkdir()
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "text", "label", "site"])
        for i, (s, lab) in enumerate(zip(sites, labels)):
            w.writerow([f"k{i:03d}", f"utterance {i}", lab, "" if s is None else s])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw / "m.csv", tmp_path / name, meta=["site"], progress=False)
    return tmp_path / name


def test_metadata_groups_counts_each_value_per_split_and_class_with_missing_and_a_shortcut_note(tmp_path) -> None:
    """QA39 fairness #8: inspect had no composition per split / class of a --meta column."""
    from mmdata.errors import ShardError
    from mmdata.shards.inspect import metadata_groups

    sites = ["A"] * 20 + ["B"] * 16 + [None] * 4
    labels = ["calm"] * 18 + ["angry"] * 2 + ["angry", "happy"] * 8 + ["calm"] * 4
    ds = _meta_ds(tmp_path, "ds", sites, labels)
    g = metadata_groups(ds, "site")
    assert g["from"] == "metadata" and g["missing"] == 4 and g["unread"] == 0
    by = {v["value"]: v for v in g["values"]}
    assert [v["value"] for v in g["values"]] == ["A", "B", None]
    assert by["A"]["samples"] == 20 and sum(by["A"]["per_split"].values()) == 20
    assert by["A"]["per_class"] == {"angry": 2, "calm": 18} and by[None]["per_class"] == {"calm": 4}
    assert any("site 'A': 18 of 20 samples are class 'calm'" in n for n in g["notes"]), g["notes"]
    assert not any("site 'B'" in n and "class" in n for n in g["notes"]), g["notes"]
    assert metadata_groups(ds, "split")["from"] == "index"
    with pytest.raises(ShardError, match="metadata key 'nope'.*site"):
        metadata_groups(ds, "nope")


def test_diff_groups_gives_the_count_per_value_in_a_and_b(tmp_path) -> None:
    """QA39 fairness #9: diff listed per-key changes but not the change in group composition."""
    from mmdata.shards.diff import diff

    a = _meta_ds(tmp_path, "a", ["A"] * 6 + ["C"] * 4, ["x", "y"] * 5)
    b = _meta_ds(tmp_path, "b", ["A"] * 3 + ["B"] * 3 + ["C"] * 2, ["x", "y"] * 4)
    rep = diff(a, b, groups="site")
    rows = {r["value"]: (r["a"], r["b"], r["change"]) for r in rep["groups"]["values"]}
    assert rows == {"A": (6, 3, -3), "B": (0, 3, 3), "C": (4, 2, -2)}, rows
    assert [r["value"] for r in rep["groups"]["values"]][-1] == "C"  # largest change first
    assert "groups" not in diff(a, b)


def test_class_names_that_are_joined_names_or_hierarchy_paths_are_warned_with_the_way_out() -> None:
    """QA39 music #5 (a 'rock;pop' class), ecommerce #7 ('Home > Kitchen > Knives' trained as a flat class)."""
    from mmdata.train.config import class_name_warnings

    got = class_name_warnings(["Home > Kitchen > Knives", "Home > Kitchen > Pans", "Toys > Dolls", "Garden"])
    assert len(got) == 1 and got[0].startswith("3 of 4 class names are hierarchy paths"), got
    assert "one flat class" in got[0] and "'Home > Kitchen'" in got[0] and "--column label=" in got[0], got
    got = class_name_warnings(["rock", "pop", "rock;pop", "jazz"])
    assert len(got) == 1 and "'rock;pop'" in got[0] and "--target" in got[0] and "multi-label" in got[0], got
    assert class_name_warnings(["cat", "dog", "Washington, D.C."]) == []
    assert class_name_warnings(["A/B"]) == []  # one name: nothing to tell


def test_the_crop_warning_words_a_wide_banner_as_wide(tmp_path) -> None:
    """QA39 ecommerce #10: a 400x6000 banner was called "a tall page or a line crop"."""
    import warnings

    import numpy as np
    from PIL import Image

    import mmdata
    from mmdata.train.config import IndexStats, crop_warning

    raw = tmp_path / "raw"
    for c in ("a", "b"):
        (raw / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((10, 150, 3), 40 * i, np.uint8)).save(raw / c / f"{c}{i}.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, tmp_path / "ds", progress=False)
    st = IndexStats(tmp_path / "ds")
    cut = crop_warning(st, st.rows("train", "image"), (16, 16), [{"op": "resize"}, {"op": "center_crop"}])
    assert cut is not None and "wide image (a banner" in cut and "tall" not in cut, cut


def test_inspect_notes_images_with_an_alpha_channel_and_the_blend_that_keeps_a_background(tmp_path) -> None:
    """QA39 ecommerce #6, music #8: RGBA cut-outs decode onto their hidden colour; inspect suggested to_rgb only."""
    import warnings

    import numpy as np
    from PIL import Image

    import mmdata

    raw = tmp_path / "raw"
    for c in ("a", "b"):
        (raw / c).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 4), np.uint8), "RGBA").save(raw / c / f"{c}0.png")
        Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(raw / c / f"{c}1.png")
        Image.fromarray(np.zeros((8, 8, 3), np.uint8), "RGB").save(raw / c / f"{c}2.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, tmp_path / "ds", progress=False)
    got = {w["kind"]: w["message"] for w in mmdata.inspect(tmp_path / "ds")["warnings"]}
    assert "2 images have an alpha channel (RGBA: 2)" in got["image alpha"], got
    assert "alpha: blend, background: 255" in got["image alpha"] and "image_channels" in got["image alpha"]
    assert "alpha: blend" in got["image channels"], got


def test_the_joined_target_warning_shows_the_list_in_the_users_own_names() -> None:
    """QA39 music #5: the advice to write a list used an IMDb example; the user's 'classical;metal' is clearer."""
    from mmdata.train.targets import _as_list

    assert _as_list("classical;metal") == '["classical", "metal"]'
    assert _as_list("a | b") == '["a", "b"]' and _as_list("Crime, Drama") == '["Crime", "Drama"]'
