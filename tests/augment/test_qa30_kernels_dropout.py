"""QA round 30, extremes #6: ``modality_dropout`` with ``keep_at_least: 1`` dropped a sample's only caption
when it was blank, though collate and the loader mark a blank caption present (a folder's empty ``.txt``),
leaving the sample with no modality. A blank caption is now kept last, where the image and audio kept fall short
of ``keep_at_least`` (collate marks it present); it still does not count while an image or audio can be kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.augment.recipe import load_recipe
from mmdata.types import Sample, collate

DROP_ALL = {"seed": 0, "sample": [{"op": "modality_dropout", "p": 1.0, "modalities": ["image", "audio", "text"],
                                   "p_drop": 1.0, "keep_at_least": 1}]}


@pytest.mark.parametrize("caption", ["", "  \n"])
def test_a_blank_only_caption_is_kept_per_sample_and_batched(caption: str) -> None:
    rec = load_recipe(DROP_ALL)
    s = Sample("k0", {"text": caption, "label": 0})
    out = rec.apply_sample(s)
    assert out.modalities == ("text", "label") and out["text"] == caption
    assert out.meta["aug"][0]["params"] == {"applied": True, "drop": []}
    batched = rec.apply_batched(collate([s, Sample("k1", {"text": "a cat", "label": 1})]))
    assert batched.present["text"].tolist() == [True, True]
    assert batched["text"] == [caption, "a cat"]


def test_image_or_audio_is_kept_before_a_blank_caption() -> None:
    """keep_at_least 2 of image + audio + blank caption: both image and audio come back, the caption goes;
    keep_at_least 3: all three, counted as collate counts them."""
    s = Sample("k", {"image": torch.zeros(3, 4, 4, dtype=torch.uint8), "audio": torch.zeros(1, 8), "text": ""},
               sample_rate=8000)
    for keep, kept in ((1, 1), (2, 2), (3, 3)):
        rec = load_recipe({"seed": 0, "sample": [{"op": "modality_dropout", "p_drop": 1.0, "keep_at_least": keep}]})
        out = rec.apply_sample(s)
        assert sum(m in out.fields for m in ("image", "audio", "text")) == kept, keep
        assert ("text" in out.fields) == (keep == 3), keep
        batched = rec.apply_batched(collate([s]))
        per = collate([out])
        absent = torch.zeros(1, dtype=torch.bool)  # a batch whose rows all lack a modality may carry no mask for it
        for m in ("image", "audio", "text"):
            assert batched.present.get(m, absent).tolist() == per.present.get(m, absent).tolist(), (keep, m)


def test_an_image_beside_a_blank_caption_is_kept_back() -> None:
    """Review of QA30: counting a blank caption toward keep_at_least dropped the image of an image + empty `.txt`
    sample (``modalities: [image]``, ``keep_at_least: 1``), leaving the model an empty caption; the image is kept
    back, as before the fix."""
    rec = load_recipe({"seed": 0, "sample": [{"op": "modality_dropout", "p": 1.0, "modalities": ["image"], "p_drop": 1.0,
                                              "keep_at_least": 1}]})
    s = Sample("k0", {"image": torch.zeros(3, 4, 4, dtype=torch.uint8), "text": "", "label": 0})
    out = rec.apply_sample(s)
    assert out.modalities == ("image", "text", "label") and out.meta["aug"][0]["params"]["drop"] == []
    assert rec.apply_batched(collate([s])).present["image"].tolist() == [True]


def test_the_loader_keeps_a_folders_empty_captions(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for name, text in (("a/s0.txt", ""), ("a/s1.txt", "a cat\n"), ("b/s2.txt", ""), ("b/s3.txt", " \n")):
        (raw / name).parent.mkdir(parents=True, exist_ok=True)
        (raw / name).write_text(text, encoding="utf-8")
    mmdata.shard(raw, tmp_path / "ds", split={"train": 1.0}, progress=False)
    rows = 0
    for batch in mmdata.loader(tmp_path / "ds", 4, recipe=DROP_ALL, num_workers=1, seed=0):
        assert batch.present["text"].all(), (batch.keys, batch.present["text"].tolist())
        rows += len(batch)
    assert rows == 4
