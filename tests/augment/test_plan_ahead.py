"""Params drawn ahead in DataLoader workers for ``augment_on="device"`` (``Recipe.plan_batched``).

Measured on an NVIDIA H200 (benchmarks/RESULTS.md, 2026-12-04): the batched CUDA path was host-bound —
26.5 us per sample of the main process went to drawing each sample's params, the GPU busy 5% of the
pass. Workers now draw them (shape-only kernels on a 'meta' copy carry sizes, lengths, presence and
text to the later draws), and the main process only runs the kernels. Every test here checks that the
batches, and their replay logs, are bit for bit those of drawing in the main process.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import mmdata
from mmdata import collate
from mmdata.augment import load_recipe
from mmdata.augment.base import Op, registry
from mmdata.augment.recipe import Recipe
from mmdata.errors import MMDataError
from mmdata.testing import restored_registry
from tests.augment.test_ops import OPS, _ids, _inputs, _recipe

ROOT = Path(__file__).resolve().parents[2]
RANDOM_OPS = [row for row in OPS if not row[0].startswith("normalize")]
SPEC_RECIPE = {"seed": 3, "audio": [{"op": "logmel", "n_mels": 16}, {"op": "freq_mask", "p": 0.8},
                                    {"op": "time_mask", "p": 0.8, "target": "spec"}]}
NESTED_RECIPE = {"seed": 2, "image": [
    {"op": "one_of", "p": 1.0, "ops": [{"op": "random_resized_crop", "size": [12, 12]}, {"op": "random_crop", "size": [12, 12]}]},
    {"op": "some_of", "p": 0.9, "n": [1, 2], "ops": [{"op": "cutout"}, {"op": "hflip"}, {"op": "rotate", "limit": 10}]},
    {"op": "random_resized_crop", "p": 0.5, "size": [8, 8]}],
    "sample": [{"op": "modality_dropout", "p_drop": 0.5}, {"op": "consistent_hflip", "p": 0.5}],
    "text": [{"op": "word_delete", "p": 0.5, "p_word": 0.3}, {"op": "token_mask", "p": 0.5, "p_token": 0.3}]}


def _same(a: Any, b: Any) -> None:
    """Two augmented batches: equal data (NaN where NaN), presence, lengths and replay logs."""
    assert a.keys == b.keys and set(a.data) == set(b.data)
    for k, v in a.data.items():
        w = b.data[k]
        if isinstance(v, torch.Tensor):
            assert v.shape == w.shape and v.dtype == w.dtype, k
            assert torch.equal(torch.nan_to_num(v), torch.nan_to_num(w)) and torch.equal(v.isnan(), w.isnan()) \
                if v.is_floating_point() else torch.equal(v, w), k
        else:
            assert v == w, k
    assert {k: v.tolist() for k, v in a.present.items()} == {k: v.tolist() for k, v in b.present.items()}
    assert {k: v.tolist() for k, v in a.lengths.items()} == {k: v.tolist() for k, v in b.lengths.items()}
    assert a.meta["aug"] == b.meta["aug"]


def _check(rec: Recipe, batch: Any, epochs: int = 3) -> None:
    for epoch in range(epochs):
        plan = rec.plan_batched(batch, epoch)
        assert plan is not None
        _same(rec.apply_batched(batch, epoch, plan=plan, mix=False), rec.apply_batched(batch, epoch, mix=False))


@pytest.mark.parametrize("section,spec,tol,kind", RANDOM_OPS, ids=_ids(RANDOM_OPS))
def test_every_op_planned_ahead_gives_the_batch_drawn_in_place(section: str, spec: dict[str, Any], tol: float, kind: str) -> None:
    _check(_recipe(section, spec), collate(_inputs(kind)))


@pytest.mark.parametrize("spec", [SPEC_RECIPE, NESTED_RECIPE], ids=["log-mel masks", "composites and size changes"])
def test_recipes_whose_later_draws_see_earlier_ops_are_planned_exactly(spec: dict[str, Any]) -> None:
    """A crop changes the size the next crop draws from, a dropout the presence, a word deletion the text:
    the plan's shape-only pass must carry each to the later draws."""
    _check(load_recipe(spec), collate(_inputs("base")), epochs=5)


def test_the_full_example_recipe_is_planned_exactly() -> None:
    spec = yaml.safe_load((ROOT / "recipes" / "full_example.yaml").read_text())
    _check(load_recipe(spec), collate(_inputs("base")), epochs=4)


@pytest.mark.parametrize("name", sorted(n for (s, n), cls in registry().items() if cls.keeps_layout),
                         ids=lambda n: n)
def test_ops_that_keep_the_layout_do(name: str) -> None:
    """``keeps_layout`` lets the plan skip an op's kernel: it must change no shape, length, presence or text."""
    section = next(s for (s, n) in registry() if n == name and registry()[(s, n)].keeps_layout)
    if name == "freq_mask":
        rec = load_recipe({"seed": 1, "audio": [{"op": "logmel"}, {"op": name, "p": 1.0}]})
        before = load_recipe({"seed": 1, "audio": [{"op": "logmel"}]}).apply_batched(collate(_inputs("base")))
    else:
        rec = load_recipe({"seed": 1, section: [{"op": name, "p": 1.0}]})
        before = collate(_inputs("sizes" if section == "image" else "base"))
    after = rec.apply_batched(before if name != "freq_mask" else collate(_inputs("base")), 1)
    for k, v in before.data.items():
        assert (v.shape == after.data[k].shape) if isinstance(v, torch.Tensor) else v == after.data[k], k
    assert {k: v.tolist() for k, v in before.present.items()} == {k: v.tolist() for k, v in after.present.items()}
    assert {k: v.tolist() for k, v in before.lengths.items()} == {k: v.tolist() for k, v in after.lengths.items()}


def test_a_plan_that_is_not_this_batchs_is_refused() -> None:
    rec = load_recipe(NESTED_RECIPE)
    batch = collate(_inputs("base"))
    plan = rec.plan_batched(batch, 0)
    with pytest.raises(MMDataError, match="plan_batched\\(batch, epoch\\) makes the plan of this batch"):
        rec.apply_batched(collate(_inputs("base")[:3]), 0, plan=plan)
    assert load_recipe({"seed": 0, "batch": [{"op": "mixup"}]}).plan_batched(batch) is None  # nothing to plan


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.testing import make_messy_folder

    root = tmp_path_factory.mktemp("plan_ahead")
    make_messy_folder(root / "raw", n=40, sizes=((24, 32), (40, 30)), seconds=(0.3, 0.6))
    mmdata.shard(root / "raw", root / "ds", split={"train": 1.0}, progress=False)
    return root / "ds"


RECIPE = {"seed": 4, "normalize": {"image": [{"op": "to_rgb"}, {"op": "resize", "size": [24, 24], "side": "exact"}],
                                   "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}, {"op": "pad_trim", "seconds": 0.5}]},
          "image": [{"op": "random_resized_crop", "p": 0.8, "size": [16, 16]}, {"op": "cutout", "p": 0.5}],
          "audio": [{"op": "random_crop", "p": 0.7, "seconds": 0.3}, {"op": "gain", "p": 0.5}],
          "text": [{"op": "word_delete", "p": 0.5, "p_word": 0.3}],
          "sample": [{"op": "modality_dropout", "p_drop": 0.3}]}


def test_the_loader_applies_the_workers_plan(ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With workers, every batch reaches the main process with its params drawn, and the kernels run on
    them give exactly what drawing in the main process gives, epoch after epoch (``plan_in_workers``:
    on by default only when the device is an accelerator; forced here on the CPU)."""
    loader = mmdata.loader(ds, 8, recipe=RECIPE, num_workers=2, augment_on="device", seed=1, plan_in_workers=True)
    rec = loader.recipe
    apply = Recipe.apply_batched
    seen: list[bool] = []

    def spy(self: Recipe, batch: Any, epoch: int = 0, plan: Any = None, **kw: Any) -> Any:
        seen.append(plan is not None)
        out = apply(self, batch, epoch, plan=plan, **kw)
        if plan is not None:
            _same(out, apply(self, batch, epoch, **kw))
        return out

    monkeypatch.setattr(rec, "apply_batched", spy.__get__(rec))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            batches = list(loader)
            assert batches and all("plan" not in b.meta for b in batches)
    assert seen and all(seen) and not [w for w in caught if "ahead" in str(w.message)]


def test_without_workers_or_with_an_op_that_cannot_be_planned_the_main_process_draws(ds: Path,
                                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's op whose kernel reads its data (here: a sum) cannot run on 'meta': no plan, the same batches.
    (The op leaves the registry as it was: docs/ops.md is generated from it.)"""
    with restored_registry():
        _unplannable_op_is_drawn_in_the_main_process(ds, monkeypatch)


def _unplannable_op_is_drawn_in_the_main_process(ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    class ReadsData(Op):
        section, name, field = "image", "reads_data_test", "image"
        copy_input = False

        def sample_params(self, rng: Any, sample: Any) -> dict[str, Any]:
            return {}

        def transform(self, sample: Any, params: dict[str, Any]) -> Any:
            return sample

        def transform_batch(self, batch: Any, params: Any) -> Any:
            if float(batch["image"].float().sum()) < 0:
                raise AssertionError
            return batch

    rec = load_recipe({"seed": 0, "image": [{"op": "hflip", "p": 0.5}, {"op": "reads_data_test", "p": 1.0}]})
    batch = collate(_inputs("base"))
    assert rec.plan_batched(batch, 0) is None
    for workers, spec in ((2, {**RECIPE, "image": rec.to_dict()["image"]}), (0, RECIPE)):
        loader = mmdata.loader(ds, 8, recipe=spec, num_workers=workers, augment_on="device", seed=1, plan_in_workers=True)
        apply, seen = Recipe.apply_batched, []

        def spy(self: Recipe, batch: Any, epoch: int = 0, plan: Any = None, **kw: Any) -> Any:
            seen.append(plan is not None)
            return apply(self, batch, epoch, plan=plan, **kw)

        monkeypatch.setattr(loader.recipe, "apply_batched", spy.__get__(loader.recipe))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            n = len(list(loader)) + len(list(loader))
        assert n >= 10 and seen == [False] * n  # drawn here, every batch still augmented
        said = [w for w in caught if "could not draw a batch's augmentation params ahead" in str(w.message)]
        assert len(said) == (1 if workers else 0)  # QA: the workers' fallback was silent; once per loader


def test_plan_in_workers_defaults_to_accelerators_only(ds: Path) -> None:
    """On the CPU the shape-only pass would cost the workers more than the draws save the main process
    (they share the cores): off unless asked; on for an accelerator device; a wrong value is named."""
    assert mmdata.loader(ds, 8, recipe=RECIPE, augment_on="device").plan_in_workers is False
    assert mmdata.loader(ds, 8, recipe=RECIPE, augment_on="device", device="meta").plan_in_workers is True
    with pytest.raises(MMDataError, match="plan_in_workers must be True, False or None"):
        mmdata.loader(ds, 8, plan_in_workers="yes")
    with pytest.raises(MMDataError, match="with augment_on='workers' they run the per-sample kernels"):
        mmdata.loader(ds, 8, recipe=RECIPE, plan_in_workers=True)  # QA: accepted without a word
