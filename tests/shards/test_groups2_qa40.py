"""QA round 40, second fixer "inspect2": the view colour-mode check (masks, advice, cost, remote) and the group
reading of inspect --by (inf among numbers, canonical list values, word counts, capped notes)."""
from __future__ import annotations

import csv
import json
import math
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest


def _views_ds(tmp_path: Path, image_mode: str, view_mode: str, odd_every: int, n: int = 12) -> Path:
    """A manifest of ``image_mode`` images with a ``seg`` member beside each, in ``view_mode`` every
    ``odd_every``-th sample (1: all of them) and in the image's mode otherwise."""
    from PIL import Image

    import mmdata

    rng = np.random.default_rng(0)
    raw = tmp_path / "raw"
    (raw / "img").mkdir(parents=True)
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "image", "seg", "label"])
        for i in range(n):
            px = Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
            px.convert(image_mode).save(raw / "img" / f"p{i:02d}.png")
            px.convert(view_mode if i % odd_every == 0 else image_mode).save(raw / "img" / f"p{i:02d}_seg.png")
            w.writerow([f"p{i:02d}", f"img/p{i:02d}.png", f"img/p{i:02d}_seg.png", ["a", "b"][i % 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw / "m.csv", tmp_path / "ds", columns={"seg": "seg"}, progress=False)
    return tmp_path / "ds"


def _said(rep: dict) -> list[str]:
    return [w["message"] for w in rep["warnings"] if w["kind"] == "target channels"]


def test_a_grey_mask_beside_every_rgb_image_is_not_warned_of(tmp_path) -> None:
    """Review inspect #1: every segmentation dataset (an L seg.png beside an RGB image) was told to convert its masks
    to RGB, which would ruin them."""
    from mmdata.shards.inspect import inspect

    rep = inspect(_views_ds(tmp_path, "RGB", "L", odd_every=1))
    assert _said(rep) == [], rep["warnings"]
    got = rep["named_image_channels"]["seg.png"]
    assert got["checked"] == 12 and got["other_channels"] == 12 and got["one_channel"] is True, got


def test_the_repo_segmentation_fixture_is_not_warned_of(tmp_path) -> None:
    from mmdata.shards.inspect import inspect
    from tests.shards.test_inspect_targets import SIZES, _write

    import mmdata

    mmdata.shard(_write(tmp_path / "raw", SIZES), tmp_path / "ds", columns={"seg": "seg"}, split="train=1.0",
                 progress=False)
    assert _said(inspect(tmp_path / "ds")) == []


def test_a_mixed_view_field_is_a_condition_naming_the_images_mode(tmp_path) -> None:
    """Review inspect #1, #2: the advice said convert('RGB') for views of L images, and never said a mask is fine."""
    from mmdata.shards.inspect import inspect

    said = _said(inspect(_views_ds(tmp_path, "L", "RGB", odd_every=4)))
    assert len(said) == 1, said
    assert said[0].startswith("seg.png: 3 of 12 samples have a member in another colour mode"), said
    assert "If seg.png is a view a recipe declares as a targets: image" in said[0], said
    assert "convert those views to L, their images' mode" in said[0] and "convert('L')" in said[0], said
    assert "convert('RGB')" not in said[0] and "do not convert a mask" in said[0], said


def test_the_view_check_reads_only_the_first_samples_of_a_shard(tmp_path, monkeypatch) -> None:
    """Review inspect #3: every tar header of up to 8 whole shards was read; now a shard is read up to its last wanted
    member. The tar is cut after the 4th sample: a whole read fails there, a read of the first 4 does not."""
    from mmdata.shards import inspect as ins

    ds = _views_ds(tmp_path, "RGB", "L", odd_every=2)
    (tar,) = ds.rglob("*.tar")
    with tarfile.open(tar) as tf:
        cut = next(m.offset for m in tf.getmembers() if m.name.startswith("p04"))
    with open(tar, "r+b") as f:
        f.truncate(cut + 100)  # a header cut short: tarfile raises reading past it
    monkeypatch.setattr(ins, "VIEW_SAMPLES", 4)
    rep = ins.inspect(ds)
    assert rep["named_image_channels"]["seg.png"]["checked"] == 4, rep["named_image_channels"]
    assert rep["named_image_channels"]["seg.png"]["other_channels"] == 2
    (said,) = _said(rep)
    assert "2 of the 4 samples read" in said, said


def test_a_remote_dataset_says_its_views_were_not_checked(tmp_path, serve_folder) -> None:
    """Review inspect #8: a remote dataset skipped the check silently (as if nothing needed checking)."""
    from mmdata.shards.inspect import inspect

    ds = _views_ds(tmp_path, "RGB", "L", odd_every=2)
    rep = inspect(serve_folder(tmp_path) + "/ds")
    (said,) = _said(rep)
    assert said.startswith("seg.png: the colour mode of the named image views was not checked: the dataset is remote")


def test_inf_among_numbers_counts_as_numbers_and_is_a_group_of_its_own() -> None:
    """Review inspect #4: 15 -inf in 60 samples made a number field text (45 one-sample groups)."""
    from mmdata.shards.inspect import _Bin, read_groups

    weight = {(False, float(i)): 1 for i in range(1, 46)}
    weight[(False, float("-inf"))] = 15
    got, info = read_groups(weight, "n2")
    assert info.get("numeric") is True and "words" not in info and "not_numeric" not in info, info
    assert got[(False, float("-inf"))] == float("-inf")
    assert all(isinstance(got[(False, float(i))], _Bin) for i in range(1, 46))
    assert all(math.isfinite(e) for e in info["edges"]), info["edges"]


def test_a_list_group_is_canonical_and_writes_inf_apart_from_its_string() -> None:
    """Review inspect #5: [Infinity] was written [null] in --json; [1] and [1.0] were two groups."""
    from mmdata.shards.inspect import group_key, group_text, group_value

    assert group_key([1.0]) == group_key([1]) and group_key({"a": [2.0]}) == group_key({"a": [2]})
    assert group_key([True]) != group_key([1])
    inf, text = group_value(group_key([float("inf")])), group_value(group_key(["Infinity"]))
    assert inf == {"value": ["Infinity"], "type": "list", "text": "[Infinity]"}, inf
    assert text == {"value": ["Infinity"], "type": "list"}, text
    assert group_text(inf) == "[Infinity]" and group_text(text) == '["Infinity"]'
    json.dumps([inf, text], allow_nan=False)


def test_words_among_numbers_are_keyed_by_their_group() -> None:
    """Review inspect #6: the bool True and the text "True" (a list and its text) shared one key: a count was lost."""
    from mmdata.shards.inspect import group_key, read_groups

    weight = {(False, float(i)): 1 for i in range(200)}
    weight.update({(True, True): 2, (False, "True"): 3, (False, group_key([1, 2])): 4, (False, "[1, 2]"): 5})
    _, info = read_groups(weight, "f")
    assert info["words"] == {"True": 3, "True (bool)": 2, "[1, 2]": 5, "[1, 2] (list)": 4}, info


def _manifest(tmp_path: Path, rows: list[tuple[str, str]], split: dict[str, float]) -> Path:
    import mmdata

    raw = tmp_path / "raw_m"
    raw.mkdir()
    with open(raw / "m.jsonl", "w") as f:
        for i, (g, label) in enumerate(rows):
            f.write(json.dumps({"key": f"k{i:04d}", "text": f"s {i}", "label": label, "g": g}) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw / "m.jsonl", tmp_path / "dm", meta=["g"], split=split, progress=False)
    return tmp_path / "dm"


def test_many_values_telling_the_class_are_one_note(tmp_path) -> None:
    """Review inspect #7a: a "nearly tells the class" note per patient id (2,000 ids: 2,000 lines)."""
    from mmdata.shards.inspect import EXAMPLES, NOTES_MAX, metadata_groups

    n = NOTES_MAX + 2
    ds = _manifest(tmp_path, [(f"patient{p:02d}", ["a", "b"][p % 2]) for p in range(n) for _ in range(10)],
                   {"train": 1.0})
    notes = [x for x in metadata_groups(ds, "g")["notes"] if "tell the class" in x]
    assert len(notes) == 1 and notes[0].startswith(f"{n} values of g nearly tell the class (e.g. "), notes
    assert notes[0].count("samples are class") == EXAMPLES, notes


@pytest.mark.parametrize("n_values", [1, 14])
def test_a_long_value_is_cut_in_a_note_keeping_its_quote(tmp_path, n_values: int) -> None:
    """Review inspect #7b: one value's note carried the whole value (205 KB); the cut lost the closing quote."""
    from mmdata.shards.inspect import metadata_groups

    rows = [("Y" * 5000 + str(i), "a") for i in range(n_values)] + [("c", ["a", "b"][i % 2]) for i in range(12)]
    notes = metadata_groups(_manifest(tmp_path, rows, {"train": 0.5, "test": 0.5}), "g")["notes"]
    said = [x for x in notes if "YYY" in x]
    assert said and all(len(x) < 1000 for x in said), [len(x) for x in said]
    assert all("YYY...'" in x for x in said), said


def test_inf_text_among_numbers_is_the_infinite_number() -> None:
    """QA40 review 2 data #1: the writer advises writing an infinite cell as text ('inf'), and a CSV cell keeps it
    so; that text was a word, so 6 'inf' in 30 samples made a number field 25 text groups. It is the number (one
    group with a float inf), as '56' is 56; a field half numbers, half words is not said to be "most" numbers (#2)."""
    from mmdata.shards.inspect import read_groups

    weight = {(False, str(i * 1.5)): 1 for i in range(22)}
    weight.update({(False, "inf"): 5, (False, "-Infinity"): 1, (False, float("inf")): 2})
    got, info = read_groups(weight, "score")
    assert info.get("numeric") is True and "words" not in info, info
    assert got[(False, "inf")] == got[(False, float("inf"))] == float("inf")
    assert got[(False, "-Infinity")] == float("-inf")
    half = {(False, str(i)): 1 for i in range(12)}
    half.update({(False, f"w{i}"): 1 for i in range(12)})
    _, info = read_groups(half, "f")
    assert "numeric" not in info and "not_numeric" not in info, info
