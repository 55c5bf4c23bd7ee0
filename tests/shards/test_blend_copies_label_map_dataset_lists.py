"""QA round 33 (multisite #2 #3 #4 #11): several sites sharded apart and read as one.

* a list of dataset folders was read as given (every split of each: test samples trained on, only a warning)
  and each folder's class ids taken raw: refused now, naming ``mmdata.blend`` (lists of tars stay as they were);
* a blend warns of samples whose image bytes are in another of its datasets (size and CRC-32 from the
  indexes): a test sample of A trained on via C, or one item read twice per epoch;
* blend's remedy for case-variant class names (re-shard with --labels) stripped the labels not matched
  exactly; it now names ``label_map=``, which renames a dataset's classes before the merge by name;
* a blend of datasets whose images / clips differ in mode, size, rate or channels warns at open when no
  recipe normalises them (collate refuses the first mixed batch later).
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmdata
from mmdata.errors import MMDataError, ShardError

RENAMES = {"C": {"Cat": "cat", "Dog": "dog"}}


def _png(path: Path, seed: int, mode: str = "RGB", size: tuple[int, int] = (8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)


def _manifest(root: Path, rows: list[dict[str, str]]) -> Path:
    out = root / "manifest.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A: cat / dog, 4 images each, split by a manifest column (a0 is in test); C: 'Cat' / 'cat' / 'Dog', its
    c0 a byte copy of A's test image a0 (in C's train split), c1 of A's train image a4 (in C's train too)."""
    t = tmp_path_factory.mktemp("qa33sites")
    rows = []
    for i in range(8):
        _png(t / "A" / f"a{i}.png", seed=i)
        rows.append({"image": f"a{i}.png", "label": "cat" if i < 4 else "dog",
                     "split": "test" if i in (0, 5) else "train"})
    mmdata.shard(_manifest(t / "A", rows), t / "dsA", progress=False)
    (t / "C").mkdir()
    (t / "C" / "c0.png").write_bytes((t / "A" / "a0.png").read_bytes())
    (t / "C" / "c1.png").write_bytes((t / "A" / "a4.png").read_bytes())
    rows = [{"image": "c0.png", "label": "Cat", "split": "train"},
            {"image": "c1.png", "label": "Dog", "split": "train"}]
    for i, label in enumerate(["cat", "Cat", "Dog", "Dog"], start=2):
        _png(t / "C" / f"c{i}.png", seed=100 + i)
        rows.append({"image": f"c{i}.png", "label": label, "split": "test" if i == 5 else "train"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'Cat' / 'cat' within C: shard's own warning
        mmdata.shard(_manifest(t / "C", rows), t / "dsC", progress=False)
    # B: grayscale images of another size, no copies
    for i in range(4):
        _png(t / "B" / ("x" if i % 2 else "y") / f"b{i}.png", seed=200 + i, mode="L", size=(10, 6))
    mmdata.shard(t / "B", t / "dsB", progress=False)
    return {"A": str(t / "dsA"), "B": str(t / "dsB"), "C": str(t / "dsC")}


# ---- #2: a list of dataset folders --------------------------------------------------------------------------


def test_a_list_of_dataset_folders_is_refused_naming_blend(sites: dict[str, str]) -> None:
    with pytest.raises(ShardError, match=r"a list holding the dataset folders .*dsA.*dsC.* is not read as one "
                                         r"dataset: .*split 'train' would not apply.*mmdata\.blend\(\{'dsA': "):
        mmdata.open_dataset([sites["A"], sites["C"]], split="train")
    with pytest.raises(ShardError, match=r"mmdata\.blend"):
        mmdata.loader([sites["A"], sites["C"]], 4, split="train")
    with pytest.raises(ShardError, match=r"one dataset: pass its folder alone"):
        mmdata.open_dataset([sites["A"]])
    with pytest.raises(ShardError, match=r"mmdata\.blend"):  # webdataset's '::'-joined list too
        mmdata.open_dataset(f"{sites['A']}::{sites['C']}")


def test_a_list_of_a_dataset_folders_tars_is_read_as_given(sites: dict[str, str]) -> None:
    tars = sorted(str(p) for p in Path(sites["A"]).glob("*.tar"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # train and test tars: the mixed-splits warning, as before
        keys = [s.key for s in mmdata.open_dataset(tars, decode=False)]
    assert len(keys) == 8


# ---- #3: copies across the blended datasets -----------------------------------------------------------------


def test_a_test_sample_of_one_dataset_trained_on_via_another_is_warned(sites: dict[str, str]) -> None:
    with pytest.warns(UserWarning, match=r"blend: 1 sample of the blended split holds the same image or audio bytes "
                                         r"as a sample of another of its datasets in a split the blend does not read "
                                         r".*1 sample is a copy of a sample of an earlier dataset of the blend, both "
                                         r"read .*e\.g\. 'C/c0' \(train\) and 'A/a0' \(test\)") as got:
        b = mmdata.blend({"A": sites["A"], "C": sites["C"]}, split="train", label_map=RENAMES)
    assert got[0].filename == __file__
    dups = b.card["copies_across_datasets"]
    assert (dups["samples"], dups["other_splits"], dups["read_twice"]) == (2, 1, 1)
    assert [[k.split("_")[0], s] for pair in dups["examples"] for k, s in pair] == [
        ["C/c0", "train"], ["A/a0", "test"], ["C/c1", "train"], ["A/a4", "train"]]


def test_the_test_blend_names_the_copy_too_and_distinct_data_stays_quiet(sites: dict[str, str]) -> None:
    with pytest.warns(UserWarning, match=r"1 sample of the blended split holds .*'A/a0' \(test\) and 'C/c0' "
                                         r"\(train\)"):
        mmdata.blend({"A": sites["A"], "C": sites["C"]}, split="test", label_map={"C": {"Cat": "cat", "Dog": "dog"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = mmdata.blend({"A": sites["A"], "C": sites["C"]}, split="test", keys={"A": ["a5"], "C": ["c5"]},
                         label_map={"C": {"Cat": "cat", "Dog": "dog"}})
        assert b.card["copies_across_datasets"]["samples"] == 0
        # one folder under two names (weights) is no copy
        mmdata.blend({"A": sites["A"], "A2": sites["A"]}, split="train")


# ---- #4: label_map ------------------------------------------------------------------------------------------


def test_the_near_names_warning_gives_a_label_map_that_works(sites: dict[str, str]) -> None:
    with pytest.warns(UserWarning, match="differ only in case") as got:
        b = mmdata.blend({"A": sites["A"], "C": sites["C"]}, split="train")
    said = " ".join(str(w.message) for w in got if "differ only" in str(w.message))
    assert "label_map={'C': {'Cat': 'cat', 'Dog': 'dog'}}" in said and "--labels" not in said
    assert b.label_names == ["cat", "dog", "Cat", "Dog"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the copies' warning
        b = mmdata.blend({"A": sites["A"], "C": sites["C"]}, split="train", label_map=RENAMES)
    assert b.label_names == ["cat", "dog"]
    assert b.card["blend"]["C"]["label_map"] == {"Cat": "cat", "Dog": "dog"}
    got = {s.key.split("_")[0]: b.label_names[int(s["label"])] for s in b if s.key.startswith("C/")}
    assert got == {"C/c0": "cat", "C/c1": "dog", "C/c2": "cat", "C/c3": "cat", "C/c4": "dog"}  # every label kept


def test_label_map_maps_to_a_new_name_too(sites: dict[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = mmdata.blend({"A": sites["A"], "C": sites["C"]}, split="train",
                         label_map={"A": {"cat": "feline"}, "C": {"Cat": "feline", "cat": "feline", "Dog": "dog"}})
    assert b.label_names == ["feline", "dog"]


@pytest.mark.parametrize(("label_map", "match"), [
    ({"C": {"Kat": "cat"}}, r"label_map\['C'\]: 'Kat' is no class of 'C' .*its classes are \['Cat', 'Dog', 'cat'\]"),
    ({"Z": {"Cat": "cat"}}, r"label_map: \['Z'\] name no dataset of the blend; it has \['A', 'C'\]"),
    ({"C": {"Cat": ""}}, r"label_map\['C'\]: class names map to class names .*'Cat': ''"),
    ({"C": ["Cat"]}, r"label_map\['C'\]: expected \{class name: name in the blend\}"),
    ("Cat=cat", r"label_map: expected \{dataset name: \{class name: name in the blend\}\}"),
])
def test_a_bad_label_map_is_refused_naming_it(sites: dict[str, str], label_map: object, match: str) -> None:
    with pytest.raises(ShardError, match=match):
        mmdata.blend({"A": sites["A"], "C": sites["C"]}, split="train", label_map=label_map)  # type: ignore[arg-type]


def test_the_loader_takes_label_map_for_a_blend_only(sites: dict[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        L = mmdata.loader({"A": sites["A"], "C": sites["C"]}, 4, label_map={"C": {"Cat": "cat", "Dog": "dog"}})
    assert L.label_names == ["cat", "dog"]
    with pytest.raises(MMDataError, match=r"label_map=.*pass the datasets as a mapping"):
        mmdata.loader(sites["A"], 4, label_map={"C": {"Cat": "cat"}})


def test_the_datamodule_hands_each_eval_blend_its_own_renames(sites: dict[str, str]) -> None:
    from mmdata.lightning import DataModule

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # B has no test split: the test blend is A and C only; B's rename must not be refused there
        dm = DataModule({"A": sites["A"], "B": sites["B"], "C": sites["C"]}, batch_size=4, val_split=None,
                        label_map={"B": {"x": "dog"}, "C": {"Cat": "cat", "Dog": "dog"}},
                        recipe={"normalize": {"image": [{"op": "to_rgb"}]}})
        assert sum(len(b) for b in dm.test_dataloader()) == 3


# ---- #11: formats one batch cannot mix ----------------------------------------------------------------------


def test_a_blend_of_rgb_and_gray_datasets_warns_at_open_unless_a_recipe_normalises(sites: dict[str, str]) -> None:
    with pytest.warns(UserWarning, match=r"blend: its datasets differ in image channels \(A: 3; B: 1\): a batch "
                                         r"mixing them does not collate .*normalize_spec\(channels=3\)") as got:
        mmdata.blend({"A": sites["A"], "B": sites["B"]}, split="train")
    assert got[0].filename == __file__
    with pytest.warns(UserWarning, match=r"differ in image channels"):
        mmdata.loader({"A": sites["A"], "B": sites["B"]}, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mmdata.loader({"A": sites["A"], "B": sites["B"]}, 4, recipe={"normalize": {"image": [{"op": "to_rgb"}]}})
        mmdata.blend({"A": sites["A"], "A2": sites["A"]}, split="train")  # one format
