"""QA round 30, apidocs D7: ``op_names`` / ``build_op`` with an unknown section returned ``[]`` (``op_names('Image')``)
or said ``unknown video op 'hflip'; allowed: `` with nothing after it. Both now name the sections."""

from __future__ import annotations

import pytest

import mmdata.augment as G
from mmdata.augment.base import SECTIONS
from mmdata.errors import RecipeError


@pytest.mark.parametrize(("section", "hint"), [("video", ""), ("Image", "did you mean 'image'\\? "), ("audios", "did you mean 'audio'\\? "),
                                               (None, "")])
def test_op_names_refuses_an_unknown_section_naming_the_sections(section: object, hint: str) -> None:
    with pytest.raises(RecipeError, match=f"op_names: unknown section {section!r}; {hint}sections: image, audio, text, sample, batch$"):
        G.op_names(section)  # type: ignore[arg-type]


def test_build_op_refuses_an_unknown_section_before_the_op_name() -> None:
    with pytest.raises(RecipeError, match=r"^image\[0\]: unknown section 'video'; sections: image, audio, text, sample, batch$"):
        G.build_op("video", {"op": "hflip"}, "image[0]")


def test_every_section_still_lists_its_ops() -> None:
    for section in SECTIONS:
        names = G.op_names(section)
        assert names, section
    for section, name in (("image", "hflip"), ("audio", "gain"), ("text", "word_delete"), ("sample", "modality_dropout"),
                          ("batch", "mixup")):
        assert G.build_op(section, {"op": name}, f"{section}[0]").name == name
    assert "hflip" in G.op_names("image") and "hflip" not in G.op_names("image", deterministic=True)
