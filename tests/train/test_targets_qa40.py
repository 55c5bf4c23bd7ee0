"""Metadata targets, QA round 40 (persona ``medical``): a CheXpert-style finding column (1 / 0 / -1 / blank, as
ints or as pandas' ``1.0`` floats, or plain 0/1) trains as a regression — now said, with the way to train it as
a binary / multi-label target; ``--target A,B``'s message no longer promises that such a column trains as a
one-label target; the no-classes hint does not suggest the ``--group-by`` column or an id."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError
from mmdata.train.config import too_few_classes
from mmdata.train.targets import Values, resolve, settle

SPLITS = {"train": "train", "val": "val", "test": "test"}


@pytest.fixture(scope="module")
def chexpert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 one-image studies of 12 patients, CSV manifest with CheXpert cells: ``Edema`` 1 / 0 / -1 / blank
    (ints with a blank: pandas writes ``1.0``-style text), ``Effusion`` 1.0 / 0.0 / -1.0, ``atel01`` 0 / 1."""
    from mmdata.testing import image_bytes

    root = tmp_path_factory.mktemp("qa40_targets")
    lines = ["key,image,split,patient_id,view,Edema,Effusion,atel01"]
    edema = ["1", "0", "-1", "", "0", "1"]
    effusion = ["1.0", "0.0", "-1.0", "0.0"]
    for i in range(24):
        (root / f"{i}.png").write_bytes(image_bytes(i))
        split = "train" if i < 16 else ("val" if i < 20 else "test")
        lines.append(f"s{i:02d},{i}.png,{split},p{i // 2},{'PA' if i % 2 else 'AP'},{edema[i % 6]},"
                     f"{effusion[i % 4]},{i % 2}")
    (root / "m.csv").write_text("\n".join(lines) + "\n")
    mmdata.shard(root / "m.csv", root / "ds", meta=["patient_id", "view", "Edema", "Effusion", "atel01"],
                 progress=False)
    return root / "ds"


@pytest.mark.parametrize(("key", "values"), [("Edema", "-1, 0, 1"), ("Effusion", "-1, 0, 1"), ("atel01", "0 and 1")])
def test_a_finding_column_warns_that_it_trains_as_a_number_and_says_how_to_train_it_binary(
        chexpert: Path, key: str, values: str) -> None:
    target, _, warnings = resolve(str(chexpert), key, SPLITS)
    assert target.kind == "regression"  # unchanged: the kind follows the values' type
    # said at the start too: the run's header line (the warnings come with the result)
    assert target.describe().endswith(f"it holds only the whole values {values}: trained as a number (if it is a "
                                      "yes/no finding, the warning says how to train it as binary)")
    said = [w for w in warnings if "whole values" in w]
    assert len(said) == 1, warnings
    w = said[0]
    assert f"the target {key!r} holds only the whole values {values}" in w
    assert "regression" in w and "write the column as true / false" in w and f"--meta {key}" in w
    assert "multi-label" in w
    if "-1" in values:
        assert "U-ignore" in w and "U-ones" in w and "U-zeros" in w and "-1 is a value below 0" in w
    else:
        assert "U-ignore" not in w and "uncertain" not in w


@pytest.mark.parametrize(("key", "cells"), [("sentiment", [-1, 0, 1, 1, 0]), ("n_lesions", [0, 1, 1, 0, 0])])
def test_the_finding_warning_is_a_condition_not_a_claim_about_a_numeric_column(key: str, cells: list[int]) -> None:
    """QA40 review train #1: a -1 / 0 / 1 sentiment or a 0 / 1 count was told it *is* a 0/1 finding (uncertain as
    in CheXpert); the warning now says what to do if it is one, and that a number needs nothing."""
    rows = [(f"k{i}", v) for i, v in enumerate(cells)]
    target, _, warnings = settle("ds", key, Values({"train": rows[:4], "val": rows[4:]}, set()))
    assert target.kind == "regression"
    [w] = [w for w in warnings if "whole values" in w]
    assert "(a 0/1 finding" not in w and "uncertain as in CheXpert)" not in w
    assert "If it is a number (a score, a count), nothing to do. If it is a yes/no finding (" in w


def test_a_true_false_finding_trains_binary_and_other_numbers_are_not_warned_of() -> None:
    target, _, warnings = settle("ds", "Edema", Values({"train": [("a", "true"), ("b", "false"), ("c", "")]}, set()))
    assert (target.kind, target.boolean) == ("multilabel", True)
    _, _, warnings = settle("ds", "age", Values({"train": [("a", 0), ("b", 1), ("c", 2)]}, set()))
    assert not [w for w in warnings if "whole values" in w]
    _, _, warnings = settle("ds", "x", Values({"train": [("a", 1), ("b", 1), ("c", -1)]}, set()))
    assert not [w for w in warnings if "whole values" in w]  # no 0: not a 0/1 finding


def test_several_finding_columns_say_a_number_column_trains_as_a_regression(chexpert: Path) -> None:
    with pytest.raises(MMDataError) as err:
        resolve(str(chexpert), "Edema,Effusion", SPLITS)
    msg = str(err.value)
    assert "each column alone trains as a one-label target" not in msg
    assert "A column alone trains as a one-label (binary) target when it holds true / false" in msg
    assert "as a number (regression) when it holds numbers" in msg and "CheXpert's 1 / 0 / -1" in msg
    # QA40 review train #2: "-1 as blank (unlabelled), true or false," read as a list of three spellings
    assert msg.endswith("To train such a column alone as a binary target (--target Edema), write 1 as true and 0 "
                        "as false, and -1 as a blank cell (the sample is unlabelled for it) or as true or false, "
                        "as you decide; then shard again with --meta.")


def test_the_no_classes_hint_skips_the_group_by_column_and_ids(chexpert: Path) -> None:
    from mmdata.shards.index import load_card

    card = load_card(str(chexpert))
    assert card["metadata_columns"][0] == "patient_id"
    msg = too_few_classes("ds", {**card, "split_group_by": "patient_id"})
    assert "--target patient_id" not in msg and "--target view" in msg
    # an id-like name is skipped even when it is not the group-by column; nothing learnable: no --target example
    msg = too_few_classes("ds", {"num_classes": 0, "modalities": {"image": {}},
                                 "metadata_columns": ["study_id", "patientID", "uuid"]})
    assert "--target study_id" not in msg and "--target patientID" not in msg and "--target COLUMN" in msg


def test_a_run_on_a_finding_column_warns_and_its_loaded_model_prints_in_one_line(chexpert: Path, tmp_path: Path) -> None:
    """End to end: the warning is the run's (printed at train start, kept in metrics.json), and the loaded
    TrainedModel reads as the run, fusion, target and test score (QA40 notebook #2)."""
    from mmdata.train import load_model, train

    m = train(chexpert, target="Edema", out=tmp_path / "run", epochs=1, batch_size=8, threads=1,
              eval_robustness=False)
    assert any("the target 'Edema' holds only the whole values -1, 0, 1" in w for w in m["warnings"])
    text = repr(load_model(tmp_path / "run"))
    assert "\n" not in text and text.startswith(f"TrainedModel({str(tmp_path / 'run')!r}, ")
    assert "fusion of image" in text and "target 'Edema': regression (training mean" in text and "; test mae " in text
