"""The reference multimodal model: per-modality encoders + one fusion + presence masks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmdata.augment.audio import logmel
from mmdata.errors import MMDataError
from mmdata.train.fusions import FUSIONS, AudioEncoder, ImageEncoder, TextEncoder, fusion_class
from mmdata.types import Batch

MODALITIES = ("image", "audio", "text")
N_MELS = 24
BAG = 128  # hashed bag-of-tokens size for early fusion


class FusionModel(nn.Module):
    """Encoders for ``modalities`` + the named fusion -> logits.

    Example:
        >>> from mmdata import Sample, collate
        >>> m = FusionModel(["image", "text"], "concat", classes=3, image_channels=1)
        >>> b = collate([Sample("a", {"image": torch.zeros(1, 16, 16, dtype=torch.uint8), "text": "odd"})])
        >>> tuple(m(b).shape)
        (1, 3)
    """

    def __init__(self, modalities: Sequence[str], fusion: str, classes: int, d: int = 64, image_channels: int = 1,
                 image_hw: tuple[int, int] = (16, 16), fusion_args: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        # float32 parameters, drawn as float32, whatever the caller's torch default dtype: a notebook's
        # set_default_dtype(float64) built float64 layers that the float32 inputs could not meet
        with float32_default():
            self._build(modalities, fusion, classes, d, image_channels, image_hw, fusion_args)

    def _build(self, modalities: Sequence[str], fusion: str, classes: int, d: int, image_channels: int,
               image_hw: tuple[int, int], fusion_args: Mapping[str, Any] | None) -> None:
        bad = [m for m in modalities if m not in MODALITIES]
        if bad or not modalities:
            raise MMDataError(f"--modalities (modalities=): {bad or 'none given'}; choose from {list(MODALITIES)}")
        cls = fusion_class(fusion) if isinstance(fusion, str) else None
        if cls is None:
            raise MMDataError(f"--fusion (fusion=) {fusion!r} is unknown; choose one of {sorted(FUSIONS)}")
        self.mods = list(modalities)
        self.fusion_name = fusion
        self.image_hw = tuple(image_hw)
        self.image_channels = image_channels
        self.encoders = nn.ModuleDict()
        self.classes = classes
        if getattr(cls, "uses_encoders", True):
            enc = {"image": lambda: ImageEncoder(d, image_channels, image_hw), "audio": lambda: AudioEncoder(d, N_MELS),
                   "text": lambda: TextEncoder(d)}
            for m in self.mods:
                self.encoders[m] = enc[m]()
        low_dims = {"image": image_channels * image_hw[0] * image_hw[1], "audio": 2 * N_MELS, "text": BAG}
        args = dict(fusion_args or {})
        unknown = sorted(set(args) - set(cls.options))
        if unknown:
            raise MMDataError(f"--fusion-arg (fusion_args=) {unknown}: fusion {fusion!r} accepts {list(cls.options) or 'no arguments'}")
        self.fusion = cls(self.mods, d, classes, low_dims, **args)
        if not any(p.requires_grad for p in self.parameters()):  # AdamW's "empty parameter list" named nothing
            raise MMDataError(f"fusion {fusion!r} ({_where(cls)}) has no trainable parameters and uses no encoders: "
                              "nothing to train; give it an nn.Linear head or nn.Parameters (docs/fusions.md)")

    def inputs(self, batch: Batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(model inputs by modality, presence by modality) on the model's device."""
        dev = next(self.parameters()).device
        x: dict[str, torch.Tensor] = {}
        pres: dict[str, torch.Tensor] = {}
        n = len(batch)
        for m in self.mods:
            pres[m] = batch.present[m].to(dev, non_blocking=True) if m in batch.present else torch.zeros(n, dtype=torch.bool, device=dev)
        if "image" in self.mods:
            img = batch["image"].to(dev).float() / 255.0 if "image" in batch else torch.zeros(n, self.image_channels, *self.image_hw, dtype=torch.float32, device=dev)
            x["image"] = (img - 0.5) / 0.5
        if "audio" in self.mods:
            if "audio" in batch:
                x["audio"] = logmel(batch["audio"].to(dev), int(batch.sample_rate or 8000), n_mels=N_MELS, hop_ms=16.0,
                                    full_window=True)
            else:
                x["audio"] = torch.zeros(n, N_MELS, 8, dtype=torch.float32, device=dev)
        if "text" in self.mods:
            x["text"] = batch["tokens"].to(dev) if "tokens" in batch else torch.zeros(n, 1, dtype=torch.int64, device=dev)
        return x, pres

    def low_level(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        low: dict[str, torch.Tensor] = {}
        if "image" in x:
            img = x["image"]
            if tuple(img.shape[-2:]) != self.image_hw:  # e.g. a recipe crops to another size: pool to the configured one
                img = F.adaptive_avg_pool2d(img, self.image_hw)
            low["image"] = img.flatten(1)
        if "audio" in x:
            mel = x["audio"]
            low["audio"] = torch.cat([mel.mean(-1), mel.std(-1)], 1) / 10.0
        if "text" in x:
            tok = x["text"]
            bag = torch.zeros(tok.shape[0], BAG, dtype=torch.float32, device=tok.device)
            bag.scatter_add_(1, tok % BAG, (tok != 0).float())
            low["text"] = bag
        return low

    def forward(self, batch: Batch, drop: Sequence[str] = (),
                inputs: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None) -> torch.Tensor:
        """Logits (B, classes); ``drop`` removes modalities (presence False) for robustness tests;
        ``inputs``: ``self.inputs(batch)`` computed before (an evaluation batch reused every epoch)."""
        x, pres = self.inputs(batch) if inputs is None else (inputs[0], dict(inputs[1]))
        host = host_present(batch, self.mods)  # which rows each encoder sees, read without a device sync
        for m in drop:
            if m in pres:
                pres[m] = torch.zeros_like(pres[m])
                host[m] = torch.zeros_like(host[m])
        feats = self.encode(x, host)
        low = self.low_level(x) if getattr(self.fusion, "uses_low", False) else {}  # a plug-in may ask, not only early
        return self.check_logits(self.fusion(feats, pres, low), len(batch))

    def encode(self, x: dict[str, torch.Tensor], pres: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Encoder features ``(B, d)`` per modality with an encoder: each encoder sees only the rows that
        hold its modality (:func:`encode_present`); an absent row's features are zeros. ``pres``: presence
        by modality, best the host masks (:func:`host_present`: no device sync)."""
        return {m: encode_present(self.encoders[m], x[m], pres[m], self.fusion.d) for m in self.mods if m in self.encoders}

    def check_logits(self, logits: Any, rows: int) -> torch.Tensor:
        """``logits`` if they are a (rows, classes) tensor; else an error naming the fusion and what was
        expected (a fusion with one extra output trained and scored a class that does not exist). Only
        host metadata is read — shapes, no values — so it costs nothing per batch and checks every one
        (evaluation with a modality dropped too, not just the first training batch).

        Example:
            >>> m = FusionModel(["text"], "concat", classes=3)
            >>> m.check_logits(torch.zeros(2, 4), 2)
            Traceback (most recent call last):
            ...
            mmdata.errors.MMDataError: fusion 'concat' (mmdata.train.fusions.ConcatFusion) returned logits of shape (2, 4) for a batch of 2; expected (batch, classes) = (2, 3): one score per class of the dataset
        """
        if isinstance(logits, torch.Tensor) and logits.dim() == 2 and tuple(logits.shape) == (rows, self.classes):
            return logits
        got = f"shape {tuple(logits.shape)}" if isinstance(logits, torch.Tensor) else f"a {type(logits).__name__}"
        raise MMDataError(f"fusion {self.fusion_name!r} ({_where(type(self.fusion))}) returned logits of {got} for a batch "
                          f"of {rows}; expected (batch, classes) = ({rows}, {self.classes}): one score per class of the dataset")


def host_present(batch: Batch, mods: Sequence[str]) -> dict[str, torch.Tensor]:
    """Presence masks ``(B,)`` bool of ``mods`` as the batch holds them, on the host (``Batch.to`` leaves
    them there): which rows an encoder sees is decided without reading a device tensor back."""
    n = len(batch)
    return {m: batch.present[m] if m in batch.present else torch.zeros(n, dtype=torch.bool) for m in mods}


def encode_present(encoder: nn.Module, x: torch.Tensor, present: torch.Tensor, d: int) -> torch.Tensor:
    """``encoder`` run on the rows of ``x`` where ``present`` is True, scattered into zeros ``(B, d)``.

    An absent row is padding, not data: run through the encoder it would enter BatchNorm's batch
    statistics (and its running statistics), so the present rows' features would depend on how many
    absent rows share their batch. Rules: all rows present -> the encoder on the batch as it is; none
    -> zeros (the encoder's parameters join the graph with weight 0, so DDP sees every parameter used,
    and no BatchNorm statistics change); a single present row in training mode -> the encoder in eval
    mode for that call (BatchNorm normalises it with the running statistics and does not update them:
    one row's statistics are not a batch's, and a 1x1 feature map would fail; dropout is off for that
    row too), each submodule's mode restored after it.

    Example:
        >>> from mmdata.train.fusions import TextEncoder
        >>> enc = TextEncoder(4)
        >>> out = encode_present(enc, torch.tensor([[5, 6], [0, 0]]), torch.tensor([True, False]), 4)
        >>> tuple(out.shape), out[1].abs().sum().item()
        ((2, 4), 0.0)
    """
    n = x.shape[0]
    host = present if present.device.type == "cpu" else present.cpu()  # a device mask costs a sync: pass the host's
    idx_host = host.nonzero().squeeze(1)
    k = int(idx_host.numel())
    idx = idx_host.to(x.device, non_blocking=True)
    if k == 1 and encoder.training:
        modes = [(m, m.training) for m in encoder.modules()]  # each as it was: a submodule the user froze stays so
        encoder.eval()
        try:
            f = encoder(x.index_select(0, idx))
        finally:
            for m, was in modes:
                m.training = was
    elif k == n:
        return encoder(x)
    elif k == 0:
        # exactly 0 (an empty slice's sum: an inf parameter times 0.0 was NaN), every parameter in the graph
        tie = sum((p.reshape(-1)[:0].sum() for p in encoder.parameters() if p.requires_grad),
                  torch.zeros((), device=x.device))
        kind = x.device.type  # autocast knows cpu / cuda / ...; the 'meta' device of the sync tests it does not
        dtype = (torch.get_autocast_dtype(kind) if kind in ("cpu", "cuda") and torch.is_autocast_enabled(kind)
                 else torch.float32)
        return torch.zeros(n, d, dtype=dtype, device=x.device) + tie.to(dtype)
    else:
        f = encoder(x.index_select(0, idx))
    if k == n:
        return f
    out = f.new_zeros(n, f.shape[1])
    out[idx] = f
    return out


@contextmanager
def float32_default() -> Iterator[None]:
    """torch's default dtype is float32 inside (the caller's is restored after, also on an error).

    Example:
        >>> torch.set_default_dtype(torch.float64)
        >>> with float32_default():
        ...     torch.zeros(1).dtype
        torch.float32
        >>> torch.get_default_dtype()
        torch.float64
        >>> torch.set_default_dtype(torch.float32)
    """
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
