"""QA29 stats #5: make_messy_folder's class_weights are checked before anything is written."""

from __future__ import annotations

import pytest

from mmdata.testing.messy import make_messy_folder


@pytest.mark.parametrize("weights", [(0.4, 0.3, 0.2, 0.1), (), (0.5, -0.1, 0.6), (0.0, 0.0)])
def test_bad_class_weights_refused_before_writing(tmp_path, weights):
    root = tmp_path / "messy"
    with pytest.raises(ValueError, match=r"class_weights must be 1 to 3 non-negative frequencies.*circle, square, triangle"):
        make_messy_folder(root, n=6, class_weights=weights, sizes=((16, 16),), seconds=(0.1, 0.2))
    assert not root.exists()  # a retry with good arguments is not refused as "not empty"
    m = make_messy_folder(root, n=6, class_weights=(0.5, 0.5, 0.0), sizes=((16, 16),), seconds=(0.1, 0.2))
    assert len(m.truth) == 6
