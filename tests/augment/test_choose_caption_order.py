"""choose_caption must come first in text: a text op before it would edit a text that is thrown away (normalize.text
is not checked: the trainer derives its own max_tokens there)."""

import pytest

from mmdata.augment import load_recipe
from mmdata.errors import RecipeError


def test_text_op_before_choose_caption_is_refused_naming_both():
    with pytest.raises(RecipeError) as e:
        load_recipe({"text": [{"op": "token_mask", "p": 1.0}, {"op": "choose_caption"}]})
    msg = str(e.value)
    assert "text[1]" in msg and "text[0] (token_mask)" in msg and "first" in msg


def test_the_trainers_derived_max_tokens_in_normalize_is_allowed():
    """Review: refusing normalize.text ops stopped every `mmdata train -r` of a caption recipe, since the trainer
    derives normalize.text: max_tokens itself (with_normalize)."""
    from mmdata.train.config import InputSpec, with_normalize

    rec, norm = with_normalize({"text": [{"op": "choose_caption"}, {"op": "token_mask", "p": 0.2}]},
                         InputSpec(max_tokens=8, needs={"max_tokens": True}))
    assert norm["text"][0]["op"] == "max_tokens"
    assert [op.name for op in load_recipe(rec).sections["text"]] == ["choose_caption", "token_mask"]


def test_choose_caption_first_or_alone_or_in_one_of_is_fine():
    load_recipe({"text": [{"op": "choose_caption"}, {"op": "token_mask"}]})
    load_recipe({"text": [{"op": "one_of", "ops": [{"op": "token_mask"}, {"op": "choose_caption"}]}]})
    load_recipe({"text": [{"op": "token_mask"}]})
