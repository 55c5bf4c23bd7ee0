"""A dataset of thousands of classes (QA 2026-12-05, a data engineer with many small samples): `mmdata
train` printed all 5,000 class names on one 40 KB line of stderr."""

from __future__ import annotations

from mmdata.train.targets import Target


def test_the_classes_line_names_twenty_and_counts_the_rest() -> None:
    names = [f"c{i:05d}" for i in range(5000)]
    line = Target.classes(5000, names).describe()
    assert line == "5000 classes (" + ", ".join(names[:20]) + ", ... and 4980 more)"
    assert Target.classes(3, ["a", "b", "c"]).describe() == "3 classes (a, b, c)"
    assert Target.classes(20, names[:20]).describe() == "20 classes (" + ", ".join(names[:20]) + ")"
