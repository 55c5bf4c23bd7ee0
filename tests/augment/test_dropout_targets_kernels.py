"""``modality_dropout`` of the image with image targets: both kernels give batches of one structure (QA round 34,
avspeech 4: with every image dropped, the per-sample kernel's batch had no ``frame1.png`` while the batched one
kept it as a list of None, so ``"frame1.png" in batch`` differed)."""

from __future__ import annotations

import warnings

import torch

from mmdata import Sample, collate, load_recipe


def _samples() -> list[Sample]:
    img = torch.arange(3 * 6 * 8, dtype=torch.uint8).reshape(3, 6, 8)
    return [Sample(f"k{i}", {"image": img, "frame1.png": img.flip(0), "text": f"word {i}"}) for i in range(4)]


def test_dropping_every_image_drops_its_targets_in_both_kernels() -> None:
    rec = load_recipe({"seed": 0, "targets": {"frame1.png": "image"},
                       "sample": [{"op": "modality_dropout", "p": 1.0, "modalities": ["image"], "p_drop": 1.0,
                                   "keep_at_least": 1}]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_sample = collate([rec.apply_sample(s) for s in _samples()])
        batched = rec.apply_batched(collate(_samples()))
    for b in (per_sample, batched):
        assert "image" not in b and "frame1.png" not in b, (list(b.data), list(b.present))
    assert sorted(per_sample.data) == sorted(batched.data)
    assert sorted(per_sample.present) == sorted(batched.present)
