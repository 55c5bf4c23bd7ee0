"""choose_caption must come first in text: a text op before it would edit a text that is thrown away."""

import pytest

from mmdata.augment import load_recipe
from mmdata.errors import RecipeError


def test_text_op_before_choose_caption_is_refused_naming_both():
    with pytest.raises(RecipeError) as e:
        load_recipe({"text": [{"op": "token_mask", "p": 1.0}, {"op": "choose_caption"}]})
    msg = str(e.value)
    assert "text[1]" in msg and "text[0] (token_mask)" in msg and "first" in msg


def test_normalize_text_op_before_choose_caption_is_refused():
    with pytest.raises(RecipeError, match="normalize.text"):
        load_recipe({"normalize": {"text": [{"op": "lowercase"}]}, "text": [{"op": "choose_caption"}]})


def test_choose_caption_first_or_alone_or_in_one_of_is_fine():
    load_recipe({"text": [{"op": "choose_caption"}, {"op": "token_mask"}]})
    load_recipe({"text": [{"op": "one_of", "ops": [{"op": "token_mask"}, {"op": "choose_caption"}]}]})
    load_recipe({"text": [{"op": "token_mask"}]})
