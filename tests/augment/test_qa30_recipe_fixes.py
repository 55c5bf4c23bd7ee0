"""QA round 30, recipe and Batch: repeated keys in a batch (K4), a plan applied to another batch (K5),
``normalize_spec``'s own arguments (D8), ``dict(batch)`` (D9)."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import mmdata
from mmdata import Sample, collate
from mmdata.augment import load_recipe
from mmdata.augment.recipe import Plan, normalize_spec
from mmdata.errors import MMDataError, RecipeError

SPEC = {"seed": 0, "image": [{"op": "rotate"}, {"op": "cutout"}, {"op": "hflip", "p": 0.5}]}


def _image(seed: int, h: int = 16, w: int = 16) -> torch.Tensor:
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _batch(prefix: str, n: int = 2, h: int = 8) -> Any:
    return collate([Sample(f"{prefix}{i}", {"image": _image(i, h, h)}) for i in range(n)])


# -- K4: a key repeated in one batch --------------------------------------------------------------------
def test_a_key_repeated_in_a_batch_warns_naming_it_and_the_fix() -> None:
    rec = load_recipe(SPEC)
    x = _image(0)
    batch = collate([Sample("img", {"image": x}) for _ in range(4)] + [Sample("other", {"image": x})])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = rec.apply_batched(batch, 0)
        rec.apply_batched(batch, 1)  # said once per recipe
    said = [str(w.message) for w in caught if "repeat" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in caught]
    assert "'img' (4 times)" in said[0] and "other" not in said[0]
    assert "#v" in said[0]
    # the documented behaviour: one key, one draw (replay and common random numbers depend on it)
    assert all(torch.equal(out["image"][0], out["image"][i]) for i in range(4))


def test_plan_batched_warns_of_a_repeated_key_too() -> None:
    rec = load_recipe(SPEC)
    batch = collate([Sample("img", {"image": _image(0)}) for _ in range(2)])
    with pytest.warns(UserWarning, match="'img' \\(2 times\\)"):
        rec.plan_batched(batch, 0)


def test_distinct_keys_do_not_warn() -> None:
    rec = load_recipe(SPEC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec.apply_batched(_batch("k", 4), 0)
        rec.plan_batched(_batch("k", 4), 0)


def test_views_under_their_own_keys_differ_and_each_replays_exactly() -> None:
    """The documented way to independent views: each under its own key (views by an argument were dropped in review:
    their logs, mixing and errors named keys that were not the batch's)."""
    rec = load_recipe(SPEC)
    x = _image(0)
    views = [rec.apply_batched(collate([Sample(f"img#v{v}", {"image": x})]), 0) for v in (0, 1)]
    assert not torch.equal(views[0]["image"][0], views[1]["image"][0])
    for v, out in enumerate(views):
        again = rec.replay(Sample(f"img#v{v}", {"image": x}), out.meta["aug"][0])
        assert torch.equal(again["image"], out["image"][0])
    assert rec.apply_sample(Sample("img#v1", {"image": x}), 0).meta["aug"] == views[1].meta["aug"][0]


def test_repeated_copies_with_their_own_keys_differ() -> None:
    rec = load_recipe(SPEC)
    x = _image(0)
    out = rec.apply_batched(collate([Sample("img" if i == 0 else f"img#v{i}", {"image": x}) for i in range(4)]), 0)
    assert len({bytes(out["image"][i].flatten().tolist()) for i in range(4)}) == 4


# -- K5: a plan drawn for another batch or epoch -----------------------------------------------------------
@pytest.mark.filterwarnings("ignore:.*a format op at p 1")  # the crops' recipe is a test's, not a real one
def test_a_plan_for_another_batch_of_the_same_size_is_refused() -> None:
    rec = load_recipe({"seed": 0, "image": [{"op": "rotate", "limit": 90}, {"op": "cutout"}]})
    a, b = _batch("a"), _batch("b")
    plan = rec.plan_batched(a, 0)
    assert isinstance(plan, Plan) and plan.keys == ("a0", "a1") and plan.epoch == 0
    with pytest.raises(MMDataError, match="'a0'.*'b0'.*plan_batched\\(batch, epoch\\)"):
        rec.apply_batched(b, 0, plan=plan)
    with pytest.raises(MMDataError, match="epoch 0.*epoch 1.*plan_batched\\(batch, epoch\\)"):
        rec.apply_batched(a, 1, plan=plan)
    # the same keys and epoch by another seed or recipe, or with other sizes (review of QA30: applied without a
    # word, or a KeyError 'angle' from a kernel)
    with pytest.raises(MMDataError, match="drawn by another recipe"):
        load_recipe({"seed": 1, "image": [{"op": "rotate", "limit": 90}, {"op": "cutout"}]}).apply_batched(a, 0, plan=plan)
    with pytest.raises(MMDataError, match="drawn by another recipe"):
        load_recipe({"seed": 0, "image": [{"op": "hflip"}, {"op": "cutout"}]}).apply_batched(a, 0, plan=plan)
    with pytest.raises(MMDataError, match="other sizes or fields"):
        rec.apply_batched(_batch("a", h=12), 0, plan=plan)
    # the same rows in another order (OpenCV's assertion before): refused, not crashed in a kernel
    rows = [Sample(f"k{i}", {"image": _image(i, 4 + i, 9 - i)} if i != 1 else {"text": "a cat"}) for i in range(3)]
    crop = load_recipe({"seed": 5, "image": [{"op": "one_of", "ops": [
        {"op": "rotate"}, {"op": "random_resized_crop", "size": [6, 6]}, {"op": "resize", "size": [5, 7], "side": "exact"}]},
        {"op": "center_crop", "size": [5, 5]}]})
    ahead = crop.plan_batched(collate(rows), 0)
    assert ahead is not None
    with pytest.raises(MMDataError, match="'k0'.*'k2'"):
        crop.apply_batched(collate(rows[::-1]), 0, plan=ahead)
    # its own batch and epoch: exactly the batch drawn in place
    assert torch.equal(rec.apply_batched(a, 0, plan=plan)["image"], rec.apply_batched(a, 0)["image"])
    again = load_recipe({"seed": 0, "image": [{"op": "rotate", "limit": 90}, {"op": "cutout"}]})  # the same recipe, rebuilt
    assert torch.equal(again.apply_batched(a, 0, plan=plan)["image"], rec.apply_batched(a, 0)["image"])
    # another normalize stage draws nothing: its plan is the same (review of the mends)
    normed = load_recipe({"seed": 0, "normalize": {"image": [{"op": "to_rgb"}]},
                          "image": [{"op": "rotate", "limit": 90}, {"op": "cutout"}]})
    assert torch.equal(normed.apply_batched(a, 0, plan=plan)["image"], rec.apply_batched(a, 0)["image"])


def _planned(samples: list[Sample]) -> tuple[Any, Any]:
    batch = collate(samples)
    return batch, load_recipe({"seed": 0, "image": [{"op": "rotate", "limit": 90}, {"op": "cutout"}]}).plan_batched(batch, 2)


def test_a_plan_comes_out_of_a_dataloader_worker_with_its_keys() -> None:
    data = [Sample(f"s{i}", {"image": _image(i, 8, 8)}) for i in range(4)]
    loader = torch.utils.data.DataLoader(data, batch_size=2, num_workers=1, collate_fn=_planned)
    rec = load_recipe({"seed": 0, "image": [{"op": "rotate", "limit": 90}, {"op": "cutout"}]})
    (b0, p0), (b1, p1) = list(loader)
    assert isinstance(p0, Plan) and p0.keys == ("s0", "s1") and p0.epoch == 2
    assert torch.equal(rec.apply_batched(b0, 2, plan=p0)["image"], rec.apply_batched(b0, 2)["image"])
    with pytest.raises(MMDataError, match="'s0'.*'s2'"):
        rec.apply_batched(b1, 2, plan=p0)
    back = pickle.loads(pickle.dumps(p1))
    assert back == p1 and back.keys == p1.keys and back.epoch == 2


# -- D8: normalize_spec's own arguments ---------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "named"), [
    ({"image_size": 0}, "image_size"), ({"image_size": [32, -1]}, "image_size"), ({"image_size": [1, 2, 3]}, "image_size"),
    ({"image_size": 2.5}, "image_size"), ({"image_size": True}, "image_size"),
    ({"image_size": 32, "resize": "bogus"}, "resize: 'bogus'"), ({"image_size": 32, "interpolation": "cubic?"}, "interpolation"),
    ({"sample_rate": 0}, "sample_rate"), ({"sample_rate": 16000.5}, "sample_rate"),
    ({"seconds": 0}, "seconds"), ({"seconds": float("nan")}, "seconds"), ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": "12"}, "max_tokens"), ({"mono": "yes"}, "mono"), ({"pad": 1}, "pad"),
])
def test_normalize_spec_names_its_own_argument(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(RecipeError, match=f"normalize_spec\\({named.split(':')[0]}=|{named}") as err:
        normalize_spec(**kwargs)
    assert ".side" not in str(err.value) and "normalize_spec(" in str(err.value)


def test_normalize_spec_still_builds_valid_recipes() -> None:
    spec = normalize_spec(image_size=[24, 32], channels=3, resize="exact", interpolation="linear", sample_rate=16000,
                          mono=True, seconds=1, pad=False, max_tokens=8)
    rec = load_recipe({"normalize": spec})
    assert rec.has_normalize and spec["audio"][-1] == {"op": "pad_trim", "seconds": 1.0, "pad": False}
    assert load_recipe({"normalize": normalize_spec(image_size=16, resize="longer")}).has_normalize


# -- D9: dict(batch) ---------------------------------------------------------------------------------------
def test_batch_documents_its_fields_and_keys_stays_a_plain_list(tmp_path: Path) -> None:
    """Batch's docstring names its fields and says a Batch is no mapping (dict(batch) fails: the fields are
    batch.data). keys stays a plain list (review of QA30: a list subclass whose call explained dict(batch) broke
    torch.load(weights_only=True) and yaml.safe_dump of saved keys)."""
    import yaml

    b = collate([Sample("a", {"label": 1, "text": "x"}), Sample("b", {"label": 2, "text": "y"})])
    assert type(b.keys) is list and b.keys == ["a", "b"]
    assert {"label", "text"} <= dict(b.data).keys()
    torch.save({"keys": b.keys}, tmp_path / "k.pt")
    assert torch.load(tmp_path / "k.pt", weights_only=True) == {"keys": ["a", "b"]}
    assert yaml.safe_load(yaml.safe_dump({"keys": b.keys})) == {"keys": ["a", "b"]}
    assert pickle.loads(pickle.dumps(b)).keys == ["a", "b"]
    doc = mmdata.Batch.__doc__ or ""
    assert "sample_rate" in doc and "meta" in doc and "dict(batch.data)" in doc
