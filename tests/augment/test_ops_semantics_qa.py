"""QA defects in what ops do (not how fast): each test reproduces one report.

* 1: ``word_delete`` with ``keep_at_least`` kept the *last* tokens (the drop list was truncated to a prefix):
  the survivors must be uniform among the drawn drops, and draws where the bound does not bind unchanged;
* 2: ``gaussian_noise``'s per-sample kernel truncated toward zero (std 4.75 for a target 5.10) while the
  batched one rounded: both round to nearest and agree exactly on CPU;
* 3: ``cutout`` with ``size: [0.0, 0.0]`` erased a 1x1 hole;
* 4: documented fallbacks and limits (``random_resized_crop`` with p < 1, ``random_crop`` on a small image,
  ``modality_dropout``'s ``keep_at_least`` counting every present modality) behave as their docs say.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from mmdata import Sample, collate
from mmdata.augment.base import build_op
from mmdata.augment.recipe import load_recipe
from mmdata.augment.reference import op_reference
from mmdata.errors import ShardError

# -- 1: word_delete keep_at_least ------------------------------------------------------------------------------

WORDS = "w0 w1 w2 w3 w4"


def test_word_delete_keeps_uniformly_chosen_tokens() -> None:
    """QA repro: p_word 0.9, keep_at_least 1 over 2000 keys: the lone survivor was w4 65% of the time."""
    rec = load_recipe({"text": [{"op": "word_delete", "p_word": 0.9, "keep_at_least": 1}]})
    alone: Counter[str] = Counter()
    for k in range(2000):
        words = rec.apply_sample(Sample(f"k{k}", {"text": WORDS}))["text"].split()
        assert len(words) >= 1
        if len(words) == 1:
            alone[words[0]] += 1
    n = sum(alone.values())
    assert n > 1500  # p_word 0.9: the bound binds on most keys
    for w in WORDS.split():
        assert 0.15 < alone[w] / n < 0.25, (w, dict(alone))  # uniform: 0.2 each (sd ~0.01)


@pytest.mark.parametrize("p_word,keep", [(0.9, 1), (0.7, 2), (0.5, 3), (0.3, 1), (1.0, 4)])
def test_word_delete_draws_change_only_where_keep_at_least_binds(p_word: float, keep: int) -> None:
    op = build_op("text", {"op": "word_delete", "p_word": p_word, "keep_at_least": keep}, "text[0]")
    words = [f"w{i}" for i in range(6)]
    bound = 0
    for seed in range(300):
        got = op.word_params(np.random.default_rng(seed), words)["positions"]
        drawn = np.flatnonzero(np.random.default_rng(seed).random(len(words)) < p_word).tolist()
        room = len(words) - keep
        if len(drawn) <= room:
            assert got == drawn, seed  # what the op drew before the fix
        else:
            bound += 1
            assert len(got) == room and set(got) <= set(drawn) and got == sorted(got), seed
    assert bound or p_word < 0.5


def test_word_delete_keep_at_least_kernels_agree() -> None:
    rec = load_recipe({"seed": 3, "text": [{"op": "word_delete", "p_word": 0.8, "keep_at_least": 2}]})
    samples = [Sample(f"k{i}", {"text": t}) for i, t in enumerate([WORDS, "a b c", "one", "x y z u v w q r s", WORDS])]
    for epoch in range(4):
        ref = collate([rec.apply_sample(s, epoch) for s in samples])
        got = rec.apply_batched(collate(samples), epoch)
        assert got["text"] == ref["text"]
        assert got.lengths["tokens"].tolist() == ref.lengths["tokens"].tolist()
        assert torch.equal(got["tokens"], ref["tokens"])
        assert all(len(t.split()) >= min(2, len(s["text"].split())) for t, s in zip(got["text"], samples))


# -- 2: gaussian_noise rounding --------------------------------------------------------------------------------


def _flat(n: int, size: tuple[int, int] = (64, 64), value: int = 128) -> list[Sample]:
    return [Sample(f"k{i}", {"image": torch.full((3, *size), value, dtype=torch.uint8)}) for i in range(n)]


@pytest.mark.parametrize("vectorised", [False, True])
def test_gaussian_noise_kernels_agree_exactly_on_cpu(vectorised: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA repro: 4 constant-128 images, std 0.02: per-sample std 4.75, batched 5.14; 48% of pixels differed."""
    monkeypatch.setattr("mmdata.augment.batching.VECTORISED_ON_CPU", vectorised)
    rec = load_recipe({"image": [{"op": "gaussian_noise", "std": [0.02, 0.02]}]})
    samples = _flat(4)
    per = torch.stack([rec.apply_sample(s)["image"] for s in samples])
    batched = rec.apply_batched(collate(samples))["image"]
    assert torch.equal(per, batched)
    assert abs(per.float().std().item() - 0.02 * 255) < 0.15  # rounding adds 1/12 to the variance: 5.108
    assert abs(per.float().mean().item() - 128) < 0.1


@pytest.mark.parametrize("vectorised", [False, True])
def test_gaussian_noise_kernels_agree_on_mixed_sizes_and_clipping(vectorised: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mmdata.augment.batching.VECTORISED_ON_CPU", vectorised)
    rec = load_recipe({"seed": 5, "image": [{"op": "gaussian_noise", "p": 0.6, "std": [0.05, 0.3]}]})
    g = torch.Generator().manual_seed(0)
    samples = [Sample(f"k{i}", {"image": torch.randint(0, 256, (3, 20 + 4 * (i % 3), 24 + 2 * i), generator=g, dtype=torch.uint8)})
               for i in range(6)]
    samples.append(Sample("dark", {"image": torch.zeros(3, 16, 16, dtype=torch.uint8)}))
    samples.append(Sample("light", {"image": torch.full((3, 16, 16), 255, dtype=torch.uint8)}))
    for epoch in range(3):
        ref = collate([rec.apply_sample(s, epoch) for s in samples])
        got = rec.apply_batched(collate(samples), epoch)
        assert torch.equal(got["image"], ref["image"]), epoch
        assert torch.equal(got.lengths["image"], ref.lengths["image"])


def test_gaussian_noise_rounds_to_nearest() -> None:
    op = build_op("image", {"op": "gaussian_noise"}, "image[0]")
    arr = np.full((8, 8, 3), 100, dtype=np.uint8)
    p = {"applied": True, "std": 0.03, "seed": 7}
    noise = (op._noise((3, 8, 8), 7) * (0.03 * 255.0)).numpy().transpose(1, 2, 0)
    want = np.clip(np.rint(arr.astype(np.float32) + noise), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(op.kernel(arr, p), want)


# -- 3: cutout of size 0 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("vectorised", [False, True])
def test_cutout_of_size_zero_erases_nothing(vectorised: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """QA repro: size [0.0, 0.0] erased a 1x1 hole."""
    monkeypatch.setattr("mmdata.augment.batching.VECTORISED_ON_CPU", vectorised)
    rec = load_recipe({"image": [{"op": "cutout", "num_holes": [1, 4], "size": [0.0, 0.0], "fill": 0}]})
    g = torch.Generator().manual_seed(1)
    samples = [Sample(f"k{i}", {"image": torch.randint(1, 256, (3, 24, 32), generator=g, dtype=torch.uint8)}) for i in range(5)]
    for s in samples:
        out = rec.apply_sample(s)
        assert torch.equal(out["image"], s["image"])
        holes = out.meta["aug"][-1]["params"]["holes"]
        assert holes and all(y0 == y1 and x0 == x1 for y0, x0, y1, x1 in holes)
    assert torch.equal(rec.apply_batched(collate(samples))["image"], collate(samples)["image"])


def test_cutout_positive_sizes_are_at_least_one_pixel() -> None:
    op = build_op("image", {"op": "cutout", "num_holes": [3, 3], "size": [0.001, 0.001]}, "image[0]")
    shape = Sample("k", {"image": torch.zeros(3, 32, 32, dtype=torch.uint8)})
    for seed in range(20):
        for y0, x0, y1, x1 in op.sample_params(np.random.default_rng(seed), shape)["holes"]:
            assert (y1 - y0, x1 - x0) == (1, 1)


# -- 4: documented fallbacks and limits ------------------------------------------------------------------------


def test_random_resized_crop_fallback_resizes_the_whole_image() -> None:
    """When the p draw fails the whole image is resized to ``size``: the aspect ratio is not kept."""
    rec = load_recipe({"image": [{"op": "random_resized_crop", "p": 0.0, "size": [16, 16]}]})
    img = torch.zeros(3, 16, 64, dtype=torch.uint8)
    img[:, :, 32:] = 200  # right half bright: a stretch keeps it as the right half of the square output
    out = rec.apply_sample(Sample("k", {"image": img}))
    params = out.meta["aug"][-1]["params"]
    assert params["random"] is False and params["box"] == [0, 0, 16, 64]
    assert tuple(out["image"].shape) == (3, 16, 16)
    assert out["image"][:, :, :7].max() == 0 and out["image"][:, :, 9:].min() == 200
    doc = " ".join(type(rec.steps[0].op).__doc__.split())
    assert "aspect ratio is not kept" in doc


def test_random_crop_on_a_smaller_image_raises_and_says_what_to_do() -> None:
    rec = load_recipe({"image": [{"op": "random_crop", "size": [32, 32]}]})
    with pytest.raises(ShardError, match=r"'small'.*exceeds the padded image"):
        rec.apply_sample(Sample("small", {"image": torch.zeros(3, 20, 40, dtype=torch.uint8)}))
    doc = " ".join(type(rec.steps[0].op).__doc__.split())
    assert "pad_if_needed=False" in doc and "center_crop" in doc and "pad_to_size" in doc


def test_modality_dropout_keep_at_least_counts_modalities_outside_the_list() -> None:
    rec = load_recipe({"sample": [{"op": "modality_dropout", "modalities": ["image", "audio"], "p_drop": 1.0}]})
    s = Sample("k", {"image": torch.zeros(3, 8, 8, dtype=torch.uint8), "audio": torch.zeros(1, 160), "text": "a cat"},
               sample_rate=16000)
    out = rec.apply_sample(s)
    assert "text" in out and "image" not in out and "audio" not in out
    op = type(rec.steps[0].op)
    assert "also those not in" in " ".join(op.__doc__.split())
    assert "also those not in" in op.PARAMS["keep_at_least"].doc
    two = load_recipe({"sample": [{"op": "modality_dropout", "modalities": ["image", "audio"], "p_drop": 1.0, "keep_at_least": 2}]})
    kept = two.apply_sample(s)
    assert "text" in kept and ("image" in kept) != ("audio" in kept)


def test_the_op_reference_states_these_limits() -> None:
    """docs/ops.md shows only a docstring's first paragraph: the notes above must be in it."""
    ref = " ".join(op_reference().split())
    for op, phrase in [("image: random_resized_crop", "aspect ratio is not kept"),
                       ("image: random_crop", "pad_if_needed=False"),
                       ("image: cutout", "erases nothing"),
                       ("image: gaussian_noise", "rounded to the nearest"),
                       ("text: word_delete", "chosen uniformly at random"),
                       ("sample: modality_dropout", "also those not in ``modalities``")]:
        start = ref.index(f"### {op} ")
        assert phrase in ref[start : ref.index("| param |", start)], op
