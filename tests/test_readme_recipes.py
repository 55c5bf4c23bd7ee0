"""Every augmentation recipe shown in the README loads (QA 2026-12-03: the example recipe gained a
`targets:` line beside a `mixup`, which a recipe with targets refuses — the README's own recipe failed)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mmdata.augment.recipe import TOP_KEYS, load_recipe

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_recipe_block_in_the_readme_loads() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    recipes = [b for b in blocks if isinstance(yaml.safe_load(b), dict) and set(yaml.safe_load(b)) <= set(TOP_KEYS)]
    assert len(recipes) >= 2  # the full example and the targets one
    for block in recipes:
        load_recipe(block)
