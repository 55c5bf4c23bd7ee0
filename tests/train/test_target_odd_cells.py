"""QA: a target column that is mostly numbers with a few cells that are not (a ``?`` missing marker, a
stray ``high``) trained silently as a multi-label target of one label per distinct number (90 sigmoids
named '-0.038', '-0.047', ...). A CSV makes every cell text, so the mixed-kinds check, which looked for
JSON numbers only, never saw it. Now a column whose labelled values are at least half numbers is a
numeric column with bad cells: refused naming the samples and the cells, and how to mark them missing.
Label names that happen to be digits stay labels when they are a minority, or when written as lists."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError
from mmdata.train.targets import Target, resolve


def _resolve(tmp_path: Path, values: list[object], name: str = "m.csv") -> tuple[Target, dict, list[str]]:
    """``y`` resolved over train, of 12 samples whose metadata ``y`` holds ``values`` (cycled; JSONL keeps types,
    CSV makes text: :func:`mmdata.testing.shard_meta_column`)."""
    from mmdata.testing import shard_meta_column

    return resolve(str(shard_meta_column(tmp_path, values, name)), "y", {"train": "train"})


def test_a_float_column_with_a_question_mark_is_refused_naming_the_cells(tmp_path: Path) -> None:
    values = ["0.5", "-0.038", "?", "1.25", "-0.047", "2"]
    with pytest.raises(MMDataError) as err:
        _resolve(tmp_path, values)
    msg = str(err.value)
    assert "the target 'y' mixes kinds" in msg
    assert "10 of 12 labelled samples hold numbers" in msg
    assert "sample 's2' '?'" in msg and "sample 's8' '?'" in msg
    assert "blank" in msg and "NA" in msg  # how to mark a cell missing


def test_a_class_number_column_with_a_word_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match=r"mixes kinds: 9 of 12 labelled samples hold numbers.*sample 's3' 'high'"):
        _resolve(tmp_path, ["0", "1", "2", "high"])


def test_json_numbers_beside_a_word_are_refused_naming_the_word(tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match=r"mixes kinds: 8 of 12 labelled samples hold numbers.*sample 's2' '\?'"):
        _resolve(tmp_path, [0.5, 1.5, "?"], "m.jsonl")


def test_the_marked_cells_as_na_train_a_regression(tmp_path: Path) -> None:
    """The way out the message names: NA (or a blank cell) is unlabelled."""
    target, counts, _ = _resolve(tmp_path, ["0.5", "-0.038", "NA", "1.25", "-0.047", "2"])
    assert target.kind == "regression" and counts["train"]["unlabelled"] == 2


def test_digit_names_in_a_minority_stay_labels(tmp_path: Path) -> None:
    target, _, _ = _resolve(tmp_path, ["cat", "dog", "1"])
    assert target.kind == "multilabel" and target.names == ["1", "cat", "dog"]


def test_digit_names_written_as_lists_are_labels(tmp_path: Path) -> None:
    """The way out for a class column named by digits: one JSON list per cell."""
    target, _, _ = _resolve(tmp_path, ['["1"]', '["2"]', '["a"]'])
    assert target.kind == "multilabel" and target.names == ["1", "2", "a"]


def test_digit_labels_with_some_cells_as_lists_stay_a_label_set(tmp_path: Path) -> None:
    """QA: genre ids as digits, most cells one bare id, some a JSON list of ids: refused as 'mixes kinds',
    naming the lists as the odd cells (it trained as multi-label before the odd-cells rule)."""
    cells = ["5", '["3","7"]', "5", "2", "2", '["2","5"]', "3", "7", "5", "2", "3", '["3","5"]']
    target, _, _ = _resolve(tmp_path, cells)
    assert target.kind == "multilabel" and target.names == ["2", "3", "5", "7"]
    # a stray word among such cells is still one
    with pytest.raises(MMDataError, match=r"sample 's\d+' '\?'"):
        _resolve(tmp_path / "q", ["5", '["3","7"]', "?", "2", "2", "5"])
