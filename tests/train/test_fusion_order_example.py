"""QA: a bad hierarchical fusion order ended with an example that was itself refused: for the modalities
image, audio it said "e.g. '(image+audio)+audio'" (audio repeated). The example now names every
modality once, and parses."""

from __future__ import annotations

import re

import pytest

from mmdata.errors import MMDataError
from mmdata.train.fusions import parse_groups


@pytest.mark.parametrize("mods", [["image"], ["image", "audio"], ["image", "audio", "text"],
                                  ["image", "audio", "text", "depth"]], ids=len)
def test_the_example_in_the_error_parses(mods: list[str]) -> None:
    with pytest.raises(MMDataError) as err:
        parse_groups("image+txt", mods, "order")
    example = re.search(r"e\.g\. '([^']+)'$", str(err.value)).group(1)
    groups = parse_groups(example, mods, "order")
    flat = re.findall(r"\w+", str(groups))
    assert sorted(flat) == sorted(mods)
