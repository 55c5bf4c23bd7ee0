"""Cross-modal ops (recipe section ``sample:``): one draw applied to several modalities.

* ``modality_dropout`` drops whole modalities per sample (never all of them: ``keep_at_least``);
  dropped fields disappear from the sample, so ``batch.present`` is False for them after collate, and
  the batched kernel clears the presence mask and zeroes the data.
* ``consistent_hflip`` flips the image and swaps left/right words in the paired text at word
  boundaries, preserving case: "left" <-> "right", "leftmost" <-> "rightmost", "left-hand" <->
  "right-hand", "leftward(s)" <-> "rightward(s)". Words merely containing the letters ("bright",
  "copyright", "upright", "cleft") are never touched — the substring bug of MDETR/VirTex-style flips.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mmdata.augment.base import Op, Param
from mmdata.augment.batching import on, retokenize
from mmdata.errors import RecipeError
from mmdata.text import PAD_ID
from mmdata.types import Batch, Sample

DROPPABLE = ("image", "audio", "text")
_LR = re.compile(r"\b(left|right)(most|ward|wards|-hand)?\b", re.IGNORECASE)


def swap_left_right(text: str) -> str:
    """Swap left/right words at word boundaries, keeping case.

    Example:
        >>> swap_left_right("Left of the bright, upright LEFTMOST tree; right-hand side")
        'Right of the bright, upright RIGHTMOST tree; left-hand side'
    """

    def repl(m: re.Match[str]) -> str:
        word = m.group(1)
        new = "right" if word.lower() == "left" else "left"
        if word.isupper():
            new = new.upper()
        elif word[0].isupper():
            new = new.capitalize()
        return new + (m.group(2) or "")

    return _LR.sub(repl, text)


class ModalityDropout(Op):
    """Drop each of ``modalities`` with probability ``p_drop`` (the op's ``p`` gates the whole op),
    keeping at least ``keep_at_least`` of those present. Exact agreement (presence masks)."""

    section, name = "sample", "modality_dropout"
    PARAMS = {"modalities": Param("list", list(DROPPABLE), choices=DROPPABLE, doc="modalities that may be dropped"),
              "p_drop": Param("float", 0.5, 0.0, 1.0, doc="probability of dropping each of them"),
              "keep_at_least": Param("int", 1, 1, 3, doc="never leave fewer modalities than this")}
    masked = True  # rows not applied drop nothing: no gather / scatter of every field

    def validate(self, where: str) -> None:
        if not self.modalities:
            raise RecipeError(f"{where}.modalities: give at least one of {list(DROPPABLE)}")

    def sample_params(self, rng: np.random.Generator, sample: Any) -> dict[str, Any]:
        here = [m for m in self.modalities if m in sample]
        u = rng.random(len(self.modalities))
        drop = [m for m, x in zip(self.modalities, u) if m in here and x < self.p_drop]
        present_after = [m for m in DROPPABLE if m in sample and m not in drop]
        while drop and len(present_after) < self.keep_at_least:
            # undo the drop with the largest draw first: deterministic, never drops every modality
            back = max(drop, key=lambda m: u[self.modalities.index(m)])
            drop.remove(back)
            present_after.append(back)
        return {"drop": drop}

    def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
        return sample.without(*params["drop"]) if params["drop"] else sample

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        out = batch.replace()
        for m in DROPPABLE:
            if m not in batch.present:
                continue
            rows = [m in p.get("drop", ()) for p in params]
            if not any(rows):
                continue
            drop = torch.tensor(rows, dtype=torch.bool)  # host, like present and lengths
            out.present[m] = batch.present[m] & ~drop
            if m == "text":
                out.data["text"] = ["" if r else t for t, r in zip(batch["text"], rows)]
                out.data["tokens"] = batch["tokens"].masked_fill(on(drop, batch["tokens"].device)[:, None], PAD_ID)
                out.lengths["tokens"] = batch.lengths["tokens"].masked_fill(drop, 0)
            else:
                x = batch[m]
                shape = (-1,) + (1,) * (x.dim() - 1)
                out.data[m] = x.masked_fill(on(drop, x.device).reshape(shape), 0)
                ln = batch.lengths[m]
                out.lengths[m] = ln.masked_fill(drop.reshape((-1,) + (1,) * (ln.dim() - 1)), 0)
        return out


class ConsistentHFlip(Op):
    """Flip the image left-right and swap left/right words in the text (one draw for both). Exact."""

    section, name = "sample", "consistent_hflip"

    def batch_fields(self) -> tuple[str, ...]:
        return ("image", "text", "tokens")

    def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
        upd: dict[str, Any] = {}
        if "image" in sample:
            upd["image"] = sample["image"].flip(-1)
        if "text" in sample:
            upd["text"] = swap_left_right(sample["text"])
        return sample.with_fields(**upd)

    def transform_batch(self, batch: Batch, params: Sequence[dict[str, Any]]) -> Batch:
        out = batch
        if "image" in batch:
            from mmdata.augment.image import HFlip

            out = HFlip(p=1.0).transform_batch(batch, params)
        if "text" in batch:
            out = retokenize(out, [swap_left_right(t) for t in batch["text"]])
        return out
