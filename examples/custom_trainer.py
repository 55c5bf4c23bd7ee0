"""Ablate your own model: a plain PyTorch training loop over ``mmdata.loader``, run by ``mmdata ablate``.

The contract (docs/ablation.md): ``train(data, *, recipe, seed, label_noise, device, threads, **kwargs)``
returns ``{"test": {"accuracy": float, ...}}``, and every random choice comes from ``seed`` — the
initialisation (``torch.manual_seed``), the data order and the augmentation draws (the loader's
``seed``) and the label-noise flips (:func:`mmdata.rng.derive`). ``kwargs`` are the other keys of the
recipe's ``trainer:`` mapping (here ``epochs``, ``batch_size``, ``lr``).

    PYTHONPATH=examples mmdata ablate examples/custom_ablation.yaml --out runs/custom   # trainer.entry in the recipe
    PYTHONPATH=examples mmdata ablate recipes/ablations/avdigits_loo.yaml --out runs/mine \\
        --trainer custom_trainer:train                                         # or on the command line
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import mmdata
from mmdata.rng import derive
from mmdata.train.config import derive_inputs, with_normalize


class SmallNet(nn.Module):
    """The user's own model: a small CNN on the image and a 1-D CNN on the waveform, concatenated."""

    def __init__(self, classes: int, image_channels: int) -> None:
        super().__init__()
        self.image = nn.Sequential(nn.Conv2d(image_channels, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.audio = nn.Sequential(nn.Conv1d(1, 16, 64, stride=16), nn.ReLU(), nn.AdaptiveAvgPool1d(8), nn.Flatten())
        self.head = nn.Linear(16 * 16 + 16 * 8, classes)

    def forward(self, image: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.image(image), self.audio(audio.mean(1, keepdim=True))], 1))


def _inputs(batch: mmdata.Batch, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    image = batch["image"].to(dev).float() / 255.0
    audio = batch["audio"].to(dev).float()
    # absent modalities are zero-filled by collate; zero them explicitly after augmentation too
    image = image * batch.present["image"].to(dev).view(-1, 1, 1, 1)
    audio = audio * batch.present["audio"].to(dev).view(-1, 1, 1)
    return image, audio


def train(data: str | Path, *, recipe: Any = None, seed: int = 0, label_noise: float = 0.0, device: str = "cpu",
          threads: int | None = None, epochs: int = 3, batch_size: int = 64, lr: float = 3e-3, **_: Any) -> dict[str, Any]:
    """Train ``SmallNet`` on the train split, return test accuracy and loss."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    dev = torch.device(device)
    card = json.loads((Path(data) / "dataset.json").read_text())
    classes = int(card["num_classes"])
    mods = ["image", "audio", "label"]
    # one input format for every sample (RGB, one size, mono, one rate, one duration), derived from the
    # index like the bundled trainer does; the recipe's own normalize: lists win. Without it a folder of
    # mixed sizes, channels or sample rates cannot be batched.
    recipe, _ = with_normalize(recipe, derive_inputs(data, ["image", "audio"]))
    train_batches = mmdata.loader(data, batch_size, recipe=recipe, split="train", seed=seed, modalities=mods)
    # evaluation sees the recipe's deterministic normalize stage (to_rgb, resize, ...), none of its random ops
    test_batches = mmdata.loader(data, 256, recipe=recipe, split="test", modalities=mods, stage="eval")
    first = next(iter(test_batches))
    model = SmallNet(classes, first["image"].shape[1]).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for epoch in range(epochs):
        train_batches.set_epoch(epoch)
        model.train()
        for batch in train_batches:
            y = batch["label"].clone()
            for i, key in enumerate(batch.keys):  # label noise: flips fixed per sample key by the seed
                rng = derive(seed, 0, key, "label_noise")
                if y[i] >= 0 and rng.random() < label_noise:
                    y[i] = int((int(y[i]) + 1 + rng.integers(classes - 1)) % classes)
            keep = y >= 0  # unlabelled samples do not enter the loss
            if not keep.any():
                continue
            image, audio = _inputs(batch, dev)
            loss = F.cross_entropy(model(image, audio)[keep.to(dev)], y[keep].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    correct = total = 0
    loss_sum = 0.0
    with torch.no_grad():
        for batch in test_batches:
            y = batch["label"].to(dev)
            keep = y >= 0
            logits = model(*_inputs(batch, dev))[keep]
            correct += int((logits.argmax(1) == y[keep]).sum())
            loss_sum += float(F.cross_entropy(logits, y[keep], reduction="sum"))
            total += int(keep.sum())
    return {"test": {"accuracy": correct / max(total, 1), "loss": loss_sum / max(total, 1)}}
