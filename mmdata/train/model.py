"""The reference multimodal model: per-modality encoders + one fusion + presence masks."""

from __future__ import annotations

import functools
import itertools
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmdata.augment.audio import logmel
from mmdata.augment.contract import InputError
from mmdata.codecs import drop_final_line_end
from mmdata.errors import MMDataError
from mmdata.train.fusions import FUSIONS, AudioEncoder, ImageEncoder, TextEncoder, fusion_class
from mmdata.types import Batch

MODALITIES = ("image", "audio", "text")
N_MELS = 24
HOP_MS = 16.0
BAG = 128  # hashed bag-of-tokens size for early fusion
#: samples :meth:`TrainedModel.predict` decodes and runs at a time
BATCH_SIZE = 64
#: uint8 pixels -> x / 255, then (x - PIXEL_MEAN) / PIXEL_STD
PIXEL_MEAN, PIXEL_STD = 0.5, 0.5
#: the FusionModel arguments :meth:`FusionModel.architecture` records
ARCH_ARGS = ("modalities", "fusion", "classes", "d", "image_channels", "image_hw", "fusion_args", "sample_rate")


def preprocessing_constants() -> dict[str, Any]:
    """The model's in-code preprocessing as plain values (``metrics.json["model"]["constants"]``), so a
    re-implementation (another runtime, an export) need not read the source: pixel scaling, the log-mel
    features, the tokenizer's id scheme.

    Example:
        >>> preprocessing_constants()["image"]["scale"]
        '(x / 255 - 0.5) / 0.5 per channel, x the uint8 pixel, (C, H, W)'
    """
    import inspect

    from mmdata.text import _RESERVED, MASK_ID, MASK_TOKEN, PAD_ID, UNK_ID, Tokenizer

    mel = inspect.signature(logmel).parameters
    tok = Tokenizer()
    strip, invisible, fingerprint = _id_rules()
    return {
        "image": {"scale": f"(x / 255 - {PIXEL_MEAN}) / {PIXEL_STD} per channel, x the uint8 pixel, (C, H, W)",
                  "mean": PIXEL_MEAN, "std": PIXEL_STD, "divide_by": 255.0},
        "audio": {"features": "log(mel power + 1e-6) of the mono mix (mmdata.augment.audio.logmel): HTK mel scale, "
                                "triangles of peak 1, Hann window of win_ms, f_max 0 = half the sample rate", "n_mels": N_MELS, "hop_ms": HOP_MS,
                  "full_window": True,
                  **{k: (p.default if isinstance(p.default, (int, float, str, bool)) or p.default is None else repr(p.default))
                     for k, p in mel.items() if k not in ("wave", "sample_rate", "n_mels", "hop_ms", "full_window",
                                                          "fixed_order")  # the trainer's own: the product, always
                     and p.default is not inspect.Parameter.empty}},
        "text": {"tokenizer": "mmdata.text.Tokenizer", "vocab_size": tok.vocab_size, "max_len": tok.max_len,
                 "pad_id": PAD_ID, "mask_id": MASK_ID, "mask_token": MASK_TOKEN, "unk_id": UNK_ID,
                 # in words of what Tokenizer.token_id does, which is normative (QA33: NFC, the dropped marks and
                 # the Unicode punctuation were left out, and a re-implementation got other ids for such units); the
                 # sets are the code's own (values, so compared), the words say how they are used
                 "ids": f"normative: mmdata.text.Tokenizer.token_id (its module docstring details it). In words: "
                        f"{MASK_TOKEN} -> {MASK_ID}; else the unit's id text: a non-ASCII unit first loses the "
                        "characters of `invisible` (direction marks, the BOM) and is NFC-normalized; then the "
                        "characters of `strip` are stripped from its ends, and, where the unit is still not ASCII, every "
                        "non-ASCII character of Unicode category P* too but the Hebrew geresh and gershayim (U+05F3, "
                        "U+05F4; ASCII P* characters not in `strip`, as - _ @ #, are kept); then it is lower-cased; "
                        f"{UNK_ID} when nothing is left, else {_RESERVED} + zlib.crc32(utf-8) % (vocab_size - "
                        f"{_RESERVED}); units: mmdata.text.Tokenizer.words (words between white space and the "
                        "zero-width space U+200B, single characters in CJK runs); the first max_len units; padding 0 "
                        "to the batch's longest; `ids_fingerprint` changes when these rules' sets or patterns do",
                 "strip": strip, "invisible": invisible, "ids_fingerprint": fingerprint,
                 "early_fusion_bag": BAG},
    }


#: the prose entries of :func:`preprocessing_constants`: descriptions of the code for a reader, whose wording may
#: change without the preprocessing changing (the values beside them are compared: :func:`changed_constants`)
DESCRIPTIONS = {"image": ("scale",), "audio": ("features",), "text": ("ids",)}
#: entries recorded since QA33, compared only where the run recorded them: a run from before has none to compare
#: (a warning on every older run would say nothing about it)
RECORDED_SINCE = {"text": ("strip", "invisible", "ids_fingerprint")}


@functools.lru_cache(maxsize=1)  # module constants: read once (a scan of the BMP for the invisible set)
def _id_rules() -> tuple[str, str, str]:
    """(the characters stripped from every unit's ends, those a non-ASCII unit loses first, an 8-hex fingerprint of
    the token-id rules: both sets, the word marks kept, the unit and separator patterns, the Unicode version that NFC
    and the P* category follow), read from :mod:`mmdata.text` so that the record is the code's."""
    import unicodedata
    import zlib

    from mmdata import text

    strip = "".join(sorted(set(text._STRIP)))
    invisible = "".join(sorted(c for c in map(chr, range(0x10000)) if text._INVISIBLE.fullmatch(c)))
    rules = "\0".join((strip, invisible, "".join(sorted(text._WORD_MARKS)), text._UNITS.pattern, text._SEP,
                       unicodedata.unidata_version))
    return strip, invisible, f"{zlib.crc32(rules.encode('utf-8', 'surrogatepass')):08x}"


def changed_constants(metrics: Mapping[str, Any]) -> list[str]:
    """``"audio.hop_ms: 10.0 in the run, 16.0 here"`` for each constant of ``metrics["model"]["constants"]`` that
    differs from this code's (:func:`preprocessing_constants`); the prose of :data:`DESCRIPTIONS` is not compared.
    Empty for a run that recorded none (written before they were recorded).

    Example:
        >>> m = {"model": {"constants": {**preprocessing_constants(), "image": {"mean": 0.4}}}}
        >>> changed_constants(m)[:2]
        ['image.divide_by: absent in the run, 255.0 here', 'image.mean: 0.4 in the run, 0.5 here']
    """
    recorded = (metrics.get("model") or {}).get("constants")
    if not isinstance(recorded, Mapping):
        return []
    now = preprocessing_constants()
    out = []
    for m in sorted(set(recorded) | set(now)):
        old, new = recorded.get(m), now.get(m)
        old, new = (old if isinstance(old, Mapping) else {}), (new if isinstance(new, Mapping) else {})
        for k in sorted(set(old) | set(new)):
            if k in DESCRIPTIONS.get(m, ()) or old.get(k) == new.get(k):
                continue
            if k in RECORDED_SINCE.get(m, ()) and k not in old:
                continue
            was = f"{old[k]!r} in the run" if k in old else "absent in the run"
            out.append(f"{m}.{k}: {was}, {new[k]!r} here" if k in new else f"{m}.{k}: {was}, absent here")
    return out


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
                 image_hw: tuple[int, int] = (16, 16), fusion_args: Mapping[str, Any] | None = None,
                 sample_rate: int | None = None) -> None:
        super().__init__()
        #: the audio rate the model was trained at (None: not known, any rate is taken); a batch at another
        #: rate is refused (:meth:`inputs`): its log-mel bands would sit on other frequencies
        self.sample_rate = int(sample_rate) if sample_rate else None
        self.d = d
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
        self.fusion_args = args
        self.built_fusion = fusion  # the name built with (a --probe run's fusion_name becomes linear_probe after)
        if not any(p.requires_grad for p in self.parameters()):  # AdamW's "empty parameter list" named nothing
            raise MMDataError(f"fusion {fusion!r} ({_where(cls)}) has no trainable parameters and uses no encoders: "
                              "nothing to train; give it an nn.Linear head or nn.Parameters (docs/fusions.md)")

    def architecture(self) -> dict[str, Any]:
        """The arguments that rebuild this model (``FusionModel(**m.architecture())``) and the in-code
        constants of its preprocessing, as plain values: what ``metrics.json["model"]`` records.

        Example:
            >>> a = FusionModel(["image", "text"], "concat", classes=3, image_hw=(32, 32)).architecture()
            >>> a["image_hw"], a["d"], FusionModel(**{k: a[k] for k in ARCH_ARGS}).image_hw
            ([32, 32], 64, (32, 32))
        """
        return {"modalities": list(self.mods), "fusion": self.built_fusion, "classes": self.classes, "d": self.d,
                "image_channels": self.image_channels, "image_hw": list(self.image_hw),
                "fusion_args": dict(self.fusion_args), "sample_rate": self.sample_rate,
                "constants": preprocessing_constants()}

    def check_format(self, batch: Batch) -> None:
        """Raise naming expected vs got when ``batch`` is not in the model's input format: audio without a
        sample rate, at another rate than the model was trained at (:attr:`sample_rate`), images with another
        channel count. Another image *size* is taken (the image encoder pools its last feature map; early
        fusion pools the pixels to :attr:`image_hw`), as a recipe that crops to another size trains it.
        Only host metadata is read (no device sync).

        Example:
            >>> from mmdata import Sample, collate
            >>> m = FusionModel(["audio"], "concat", classes=2, sample_rate=8000)
            >>> m.check_format(collate([Sample("a", {"audio": torch.zeros(1, 800)}, sample_rate=16000)]))
            Traceback (most recent call last):
            ...
            mmdata.errors.MMDataError: the batch's audio is at 16000 Hz but the model takes 8000 Hz (its log-mel bands would lie on other frequencies): resample it first ({op: resample, rate: 8000} in the recipe's normalize.audio; mmdata.train.model.load_model's predict does)
        """
        if "audio" in self.mods and "audio" in batch:
            rate = batch.sample_rate
            if rate is None:
                takes = f"takes {self.sample_rate} Hz audio and " if self.sample_rate else ""
                raise MMDataError("the batch holds audio but no sample rate (Sample(..., sample_rate=HZ)); the model "
                                  f"{takes}needs the clip's rate (its log-mel bands are computed from it)")
            if self.sample_rate is not None and int(rate) != self.sample_rate:
                raise MMDataError(f"the batch's audio is at {int(rate)} Hz but the model takes {self.sample_rate} "
                                  "Hz (its log-mel bands would lie on other frequencies): resample it first ({op: resample, "
                                  f"rate: {self.sample_rate}}} in the recipe's normalize.audio; "
                                  "mmdata.train.model.load_model's predict does)")
        if "image" in self.mods and "image" in batch:
            img = batch["image"]
            got = int(img.shape[1]) if img.dim() == 4 else None
            if got != self.image_channels:
                kind = {1: "grey", 3: "RGB"}.get(self.image_channels, "channels")
                op = "to_gray" if self.image_channels == 1 else "to_rgb"
                seen = f"{got} channel{'s' * (got != 1)}" if got is not None else f"shape {tuple(img.shape)}, not (B, C, H, W)"
                raise MMDataError(f"the batch's images have {seen} but the model takes {self.image_channels} ({kind}): "
                                  f"convert them first ({{op: {op}}} in the recipe's "
                                  "normalize.image; mmdata.train.model.load_model's predict does)")

    def inputs(self, batch: Batch) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(model inputs by modality, presence by modality) on the model's device; a batch in another
        format than the model's is refused (:meth:`check_format`)."""
        self.check_format(batch)
        dev = next(self.parameters()).device
        x: dict[str, torch.Tensor] = {}
        pres: dict[str, torch.Tensor] = {}
        n = len(batch)
        for m in self.mods:
            pres[m] = batch.present[m].to(dev, non_blocking=True) if m in batch.present else torch.zeros(n, dtype=torch.bool, device=dev)
        if "image" in self.mods:
            img = batch["image"].to(dev).float() / 255.0 if "image" in batch else torch.zeros(n, self.image_channels, *self.image_hw, dtype=torch.float32, device=dev)
            x["image"] = (img - PIXEL_MEAN) / PIXEL_STD
        if "audio" in self.mods:
            if "audio" in batch:
                # the filterbank's product, as the recorded figures were measured (logmel's fixed_order)
                x["audio"] = logmel(batch["audio"].to(dev), int(batch.sample_rate), n_mels=N_MELS, hop_ms=HOP_MS,
                                    full_window=True, fixed_order=False)
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


def build_from_metrics(metrics: Mapping[str, Any], where: str, classes: int = 0) -> FusionModel:
    """The untrained :class:`FusionModel` a run's ``metrics.json`` describes (``where``: its path, for errors):
    from ``metrics["model"]`` (:meth:`FusionModel.architecture`, the arguments the network was built with),
    else — a run written before it was recorded — from ``config`` and ``inputs`` (whose image size is the
    network's unless a recipe's own ``normalize.image`` set another). ``classes``: the output width when the
    run recorded none (an old run: the dataset card's). A ``--probe`` run gets its linear probe."""
    cfg = metrics.get("config") or {}
    arch = metrics.get("model")
    check_fusion_known(metrics, where)
    if isinstance(arch, Mapping) and "image_hw" in arch:
        model = FusionModel(**{k: (tuple(arch[k]) if k == "image_hw" else arch[k]) for k in ARCH_ARGS if k in arch})
    else:
        inputs = metrics.get("inputs") or {}
        target = metrics.get("target")
        width = int((metrics.get("classes") or {}).get("num_classes") or 0)
        if isinstance(target, Mapping):
            width = 1 if target.get("kind") == "regression" else len(target.get("labels") or [])
        width = width or classes
        if width < 1 or (width < 2 and not isinstance(target, Mapping)):
            raise MMDataError(f"{where}: no classes recorded (and no dataset card to read them from)")
        mods = cfg["modalities"]
        model = FusionModel(mods, cfg["fusion"], width, image_channels=int(inputs.get("channels") or 1),
                            image_hw=tuple(inputs.get("image_size") or (16, 16)), fusion_args=cfg.get("fusion_args"),
                            sample_rate=inputs.get("sample_rate") if "audio" in mods else None)
    if cfg.get("probe"):
        from mmdata.train.contrastive import make_probe

        make_probe(model)
    return model


def check_fusion_known(metrics: Mapping[str, Any], where: str) -> None:
    """Raise when the fusion a run was built with is not registered in this process: not a built-in, so a
    plugin registered it at training (``mmdata train --plugin``), and the error names the module(s) the run
    recorded (``config.plugins``) and how to load them — not ``--fusion``, which the loading user never gave."""
    arch = metrics.get("model")
    name = arch.get("fusion") if isinstance(arch, Mapping) and "fusion" in arch else (metrics.get("config") or {}).get("fusion")
    if not isinstance(name, str) or fusion_class(name) is not None:
        return  # a known fusion, or none recorded (FusionModel says what is wrong)
    plugins = (metrics.get("config") or {}).get("plugins")
    mods = [str(p) for p in plugins] if isinstance(plugins, (list, tuple)) and plugins else []
    if mods:
        given = " ".join(f"--plugin {m}" for m in mods)
        came = (f"it came from plugin module{'s' * (len(mods) > 1)} {', '.join(mods)} (metrics.json config.plugins): "
                f"pass {given} to `mmdata evaluate` / `mmdata match`, plugins={mods!r} to load_model, or import "
                f"{'them' if len(mods) > 1 else 'it'} first")
    else:
        came = ("it probably came from a plugin module given to `mmdata train --plugin` (this run records none): "
                "pass the same --plugin MODULE to `mmdata evaluate` / `mmdata match`, plugins=['MODULE'] to load_model, or import it "
                "first")
    raise MMDataError(f"{where}: the run's fusion {name!r} is not a built-in (registered now: "
                      f"{', '.join(sorted(FUSIONS))}): {came}")


def eval_normalize(metrics: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A run's complete evaluation transform: ``metrics["eval_normalize"]`` (:func:`mmdata.train.config.eval_section`),
    or, for a run written before it was recorded, the same built from ``inputs`` and ``normalize``."""
    if isinstance(metrics.get("eval_normalize"), Mapping):
        return {m: list(v) for m, v in metrics["eval_normalize"].items()}
    from mmdata.train.config import InputSpec, eval_section

    cfg, inp = metrics.get("config") or {}, metrics.get("inputs") or {}
    spec = InputSpec(image_size=tuple(inp["image_size"]) if inp.get("image_size") else None, channels=inp.get("channels"),
                     sample_rate=inp.get("sample_rate"), max_seconds=inp.get("max_seconds"), max_tokens=inp.get("max_tokens"))
    own = sorted(((cfg.get("recipe") or {}).get("normalize") or {}))
    arch = metrics.get("model") or {}
    return eval_section(spec, metrics.get("normalize"), own, cfg["modalities"],
                        arch.get("image_channels", inp.get("channels")))


#: the full scale of integer PCM samples: ``float = (x - offset) / scale`` (soundfile's and torchaudio's reading)
PCM_SCALE = {"int8": (0, 1 << 7), "uint8": (128, 1 << 7), "int16": (0, 1 << 15), "int32": (0, 1 << 31)}


def pcm_float(wave: Any) -> torch.Tensor:
    """A float32 tensor of ``wave`` (a tensor, array or list): float samples as they are, integer PCM scaled by
    its dtype's full scale as ``soundfile.read(dtype="float32")`` reads the same file (int16 / 32768, int32 / 2**31,
    int8 / 128, uint8 (x - 128) / 128); another dtype (int64, bool, complex) is refused with the conversion.

    Example:
        >>> pcm_float(np.array([[-32768, 16384]], np.int16))
        tensor([[-1.0000,  0.5000]])
    """
    # np.require: a view with negative strides (a[:, ::-1]) is copied, which torch.as_tensor refuses
    t = wave.detach().cpu() if isinstance(wave, torch.Tensor) else torch.as_tensor(np.require(wave, requirements="C"))
    if t.is_floating_point():
        return t.to(torch.float32)
    name = str(t.dtype).removeprefix("torch.")
    if name not in PCM_SCALE:
        raise InputError(f"audio samples are {name}: a wave is float (in [-1, 1]) or integer PCM of "
                         f"{', '.join(PCM_SCALE)}, scaled by its full scale (int16 / 32768); convert it, e.g. 16-bit values held "
                         "as int64: (x / 32768).astype(np.float32)")
    offset, scale = PCM_SCALE[name]
    return (t.to(torch.float64) - offset).div(scale).to(torch.float32)


def _given(x: Any) -> str:
    """What a request's field holds, for a message: ``numpy float64 (6400,)``, ``torch.float32 (1, 800)``, ``a dict``
    (the caller's own object, not the tensor it was converted to: QA33 a numpy wave was called a torch tensor).

    Example:
        >>> _given(np.zeros(3)), _given(torch.zeros(1, 2, dtype=torch.uint8)), _given({})
        ('numpy float64 (3,)', 'torch.uint8 (1, 2)', 'a dict')
    """
    if isinstance(x, np.ndarray):
        return f"numpy {x.dtype} {x.shape}"
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} {tuple(x.shape)}"
    return f"a {type(x).__name__}"


def _request_path(s: str) -> Path:
    """A request's str / path as a local file: a plain path, or a ``file://`` URL as everywhere in mmdata; another
    URL is refused with the string as given (``Path`` would collapse its ``//``)."""
    from mmdata.urls import local_path, protocol

    proto = protocol(s)
    if proto not in (None, "file"):
        raise InputError(f"{s!r} is a {proto}:// URL: predict reads local files only; fetch it and give its bytes, a "
                         "local path or a file:// URL")
    return local_path(s, "path")


def _pixels(v: torch.Tensor | np.ndarray) -> torch.Tensor:
    """An image given as pixels, as a (C, H, W) tensor: a uint8 tensor / array (C, H, W); a grey (H, W) or a channels-last
    (H, W, C) one (``np.asarray(pil_image)``) is turned so where no (C, H, W) reading could hold it (more than 4 rows:
    :func:`~mmdata.augment.contract.image_problem`'s own rule); a numpy array of another dtype is refused with the
    numpy conversion (a tensor's refusal comes from the ops, with torch's)."""
    from mmdata.augment.contract import MAX_IMAGE_CHANNELS

    shape = tuple(v.shape)
    if isinstance(v, np.ndarray) and v.dtype != np.uint8:
        if v.dtype.kind == "f":
            top = float(np.nan_to_num(np.abs(v)).max()) if v.size else 0.0
            fix = (f"a float image in 0-255 (its values reach {top:g}) -> np.clip(np.round(a), 0, 255).astype(np.uint8)"
                   if top > 1.0 else "a float image in [0, 1] -> np.round(a * 255).astype(np.uint8)")
        elif v.dtype == np.uint16:
            fix = "a 16-bit image -> (a >> 8).astype(np.uint8)"
        else:
            fix = f"a {v.dtype} image -> scale it to 0-255, then a.astype(np.uint8)"
        raise InputError(f"image pixels must be uint8, got {_given(v)}: {fix}")
    # np.require: a view with negative strides (np.fliplr(a)) is copied, which torch.as_tensor refuses
    t = torch.as_tensor(np.require(v, requirements="C") if isinstance(v, np.ndarray) else v)
    if t.dim() == 2:  # a grey (H, W) image: one reading only
        return t[None]
    if t.dim() == 3 and 1 <= shape[2] <= MAX_IMAGE_CHANNELS and not 1 <= shape[0] <= MAX_IMAGE_CHANNELS:
        return t.permute(2, 0, 1).contiguous()  # (H, W, C): as (C, H, W) it would have more than 4 channels
    if t.dim() != 3 and isinstance(v, np.ndarray):
        raise InputError(f"got {_given(v)}: an image array is (H, W), (H, W, C) or (C, H, W), {t.dim()} dims given")
    return t


def _wave_layout(given: Any, wave: torch.Tensor) -> torch.Tensor:
    """``wave`` (:func:`pcm_float` of ``given``) as (channels, time): a mono (time,) wave gets its channel; soundfile's
    (time, channels) is turned where no (channels, time) reading could hold it (more than 255 channels and more
    channels than samples: :data:`~mmdata.augment.contract.CHANNELS_LAST_AUDIO`, the ops' own rule); another number of
    dims is refused naming what was given, with the conversion for its type."""
    from mmdata.augment.contract import CHANNELS_LAST_AUDIO

    if wave.dim() == 1:
        return wave[None]
    if wave.dim() == 2 and wave.shape[0] > CHANNELS_LAST_AUDIO and wave.shape[0] > wave.shape[1] > 0:
        return wave.T.contiguous()
    if wave.dim() == 2 and wave.shape[0] > wave.shape[1] > 0:
        # more channels than samples as (channels, time); as soundfile's (time, channels) a clip of at most 255
        # frames: both readings are possible, and a guess gives silently other scores at 255 and 256 frames (QA33)
        (r, c), t = wave.shape, ("a.T" if isinstance(given, np.ndarray) else "x.T")
        raise InputError(f"a wave of {_given(given)} reads as {r} frames of {c} channels (soundfile's (time, channels)) "
                         f"or as {r} channels of {c} frames ((channels, time)): give {t} for the first (or a[:, 0] for "
                         "one channel); a 2-D wave is (channels, time), or (time, channels) over 255 frames")
    if wave.dim() != 2:
        fix = ("a[0] for one clip of a batch; a wave is (channels, time), (time,) or soundfile's (time, channels)"
               if isinstance(given, np.ndarray) else
               "x[0] for one clip of a batch; a wave is (channels, time) or (time,)")
        raise InputError(f"a wave of {_given(given)} ({wave.dim()} dims): {fix}")
    return wave


def _caller_level() -> int:
    """The ``stacklevel`` that attributes a warning raised in this module to the first frame outside it: the line of
    the user's ``sample`` / ``logits`` / ``predict`` / ``load_model`` call, whichever entry point (and whichever
    generator, comprehension or torch decorator frames lie between) led there, so that a warnings filter on that
    line works (QA33)."""
    f, level = sys._getframe(1), 1  # the frame that calls warnings.warn: stacklevel 1
    # torch's frames: torch.no_grad's wrapper around logits
    while f is not None and (f.f_code.co_filename == __file__ or str(f.f_globals.get("__name__")).startswith("torch.")):
        f, level = f.f_back, level + 1
    return level


def _caption_file(v: Any) -> bool:
    """Whether a str text looks like the path of a caption file: one line ending ``.txt`` that names an existing file
    (QA33: ``{"text": "raw/d0009.txt"}`` was scored as the caption "raw/d0009.txt", as an image's str is a path)."""
    if not isinstance(v, str) or not v.lower().endswith(".txt") or "\n" in v or len(v) > 4096 or "\0" in v:
        return False
    try:
        return os.path.isfile(v)
    except (OSError, ValueError):
        return False


def _is_rate(x: Any) -> bool:
    """Whether ``x`` is a number (a sample rate), not a wave."""
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool)


def _whole_rate(x: Any) -> int:
    """``x``, the rate of a ``(wave, sample_rate)`` request, as an int: a whole number (``8000``, ``np.int32``,
    ``8000.0``); a fraction (``8000.9``), a str (``'8000'``) or a bool is refused, not truncated (QA31 shift D9).

    Example:
        >>> _whole_rate(16000), _whole_rate(np.float32(8000.0))
        (16000, 8000)
    """
    if not _is_rate(x):
        raise InputError(f"sample rate {x!r} is a {type(x).__name__}, not a number: give (wave, sample_rate) with "
                         "the rate an int (samples per second)")
    if not math.isfinite(float(x)) or float(x) != int(x):
        raise InputError(f"sample rate {x!r} is not a whole number of samples per second: give (wave, sample_rate) "
                         "with the rate an int (the file's rate, e.g. soundfile.read's)")
    return int(x)


#: the keys of a mapping handed to :meth:`TrainedModel.sample` / :meth:`TrainedModel.predict`
SAMPLE_KEYS = ("key", *MODALITIES)
#: what each field of a request may be (:meth:`TrainedModel.sample`), as its input errors say it
ACCEPTED = {
    "image": "encoded bytes (PNG, JPEG, WebP, ...), a file path or file:// URL, a binary file object, a PIL image (its "
             "EXIF orientation applied, even after .transpose / .rotate, which keep the tag: ImageOps.exif_transpose "
             "turns it and drops the tag) or uint8 pixels: a (C, H, W), grey (H, W) or (H, W, C) tensor / numpy array",
    "audio": "encoded bytes (WAV, FLAC, OGG, ...), a file path or file:// URL, a binary file object or (wave, "
             "sample_rate): a float or integer-PCM wave (channels, time), mono (time,), or soundfile.read's (time, "
             "channels) when it has more than 255 frames and more frames than channels (a shorter 2-D wave with more rows "
             "than columns is refused: it reads both ways)",
    "text": "a str (the caption itself), UTF-8 bytes, or a caption file as a pathlib.Path or binary file object (read "
            "as `mmdata shard` reads a .txt: UTF-8, a leading BOM dropped); without control characters but tab and "
            "line breaks (as `mmdata shard` keeps captions)",
}


class TrainedModel:
    """A trained run loaded for prediction (:func:`load_model`): the model (eval mode), its complete
    preprocessing (``normalize``: the run's evaluation transform, which brings a sample in any image size,
    channel count, audio rate, length to the model's format) and what its outputs mean.

    Attributes:
        model: the :class:`FusionModel`.
        metrics: the run's ``metrics.json``.
        normalize: the ``normalize:`` recipe stage applied to every sample before :func:`mmdata.collate`.
        kind: ``"classes"``, ``"multilabel"`` or ``"regression"`` (``mmdata train --target``).
        names: class / label names (empty for regression).
        image_decode_hint: ``(height, width)`` the run's loader decodes JPEGs down to (DCT-scaled), or None: give it
            to :func:`mmdata.open_dataset` (``image_max_size=``) so that its ``Sample``s are the loader's.
    """

    def __init__(self, model: FusionModel, metrics: dict[str, Any], where: str = "") -> None:
        import mmdata

        self.model, self.metrics, self.where = model.eval(), metrics, where
        self.normalize = eval_normalize(metrics)
        changed = changed_constants(metrics)
        if changed:
            # a warning, not a refusal: the code computes its own preprocessing (the recorded values are not
            # parameters it can take), and a run from another mmdata version must still load; each constant
            # is named with both values so that a log shows what differs
            import warnings

            warnings.warn(f"{where or 'the run'}: the model was trained with other preprocessing constants than this "
                          f"mmdata computes ({'; '.join(changed)}: metrics.json model.constants vs "
                          "mmdata.train.model.preprocessing_constants()); its predictions here may differ from "
                          "predictions.parquet", UserWarning, stacklevel=_caller_level())
        self._recipe = mmdata.load_recipe({"normalize": self.normalize})
        self.image_decode_hint: tuple[int, int] | None = self._recipe.image_decode_hint()
        target = metrics.get("target")
        self.kind = target.get("kind", "classes") if isinstance(target, Mapping) else "classes"
        if self.kind == "multilabel":
            self.names = [str(n) for n in target.get("labels") or []]
        elif self.kind == "regression":
            self.names = []
            # the divisor the run standardised by: ``scale`` where it is not the split's sd (a constant target:
            # train_sd 0, scale 1; a run before that recorded the 1 as train_sd)
            self.mean, self.key = float(target.get("train_mean", 0.0)), target.get("key")
            self.sd = float(target.get("scale", target.get("train_sd", 1.0)))
            if not self.sd or not math.isfinite(self.sd):
                self.sd = 1.0
        else:
            names = (metrics.get("classes") or {}).get("names") or []
            self.names = [str(n) for n in names] or [str(c) for c in range(model.classes)]

    def __repr__(self) -> str:
        """One line: the run, the fusion and its modalities, what the outputs mean, and the run's test score of
        the metric that picked its epoch (QA40 notebook #2: the object printed as ``<... object at 0x...>``).

        Example:
            >>> tm = TrainedModel.__new__(TrainedModel)
            >>> tm.where, tm.kind, tm.names = "runs/a", "classes", ["cat", "dog"]
            >>> tm.model = FusionModel(["image", "text"], "concat", classes=2, image_channels=1)
            >>> tm.metrics = {"test": {"accuracy": 0.75}}
            >>> tm
            TrainedModel('runs/a', concat fusion of image+text, 2 classes ('cat', 'dog'); test accuracy 0.75)
        """
        from mmdata.train.targets import SELECTION

        model = getattr(self, "model", None)
        fusion = f"{getattr(model, 'fusion_name', '?')} fusion of {'+'.join(getattr(model, 'mods', None) or ()) or '?'}"
        names = list(getattr(self, "names", []))
        shown = ", ".join(repr(n) for n in names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")
        target = self.metrics.get("target")
        target = target if isinstance(target, Mapping) else {}
        if self.kind == "multilabel":
            what = f"target {target.get('key')!r}: multi-label, {len(names)} label{'s' * (len(names) != 1)} ({shown})"
        elif self.kind == "regression":
            what = (f"target {target.get('key')!r}: regression (training mean {getattr(self, 'mean', 0.0):.4g}, "
                    f"sd {getattr(self, 'sd', 1.0):.4g})")
        else:
            what = f"{len(names)} classes ({shown})"
        metric = SELECTION.get(self.kind, ("accuracy", True))[0]
        test = self.metrics.get("test")
        value = test.get(metric) if isinstance(test, Mapping) else None
        score = f"; test {metric} {value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        return f"TrainedModel({self.where or '?'!r}, {fusion}, {what}{score})"

    def sample(self, raw: Any, key: str = "sample") -> Any:
        """A :class:`mmdata.Sample` in the model's format from ``raw``: a ``Sample``, or a mapping of
        :data:`SAMPLE_KEYS` — ``image``, ``audio``, ``text`` (each as :data:`ACCEPTED` says; None is absent) and
        ``key`` (``key`` when it has none). Integer PCM is scaled by its full scale (:func:`pcm_float`); a mono
        (time,) wave gets its channel. A PIL image is taken as the pixels it holds, turned by its EXIF orientation
        when it still carries one (``Image.open(f)`` does; ``ImageOps.exif_transpose``'s result does not), as the file
        is decoded and `mmdata shard` stores it. Pillow copies the tag to every derived image: one turned by hand
        (``.transpose`` / ``.rotate``) is turned again, so turn with ``ImageOps.exif_transpose`` (or give the file). Its JPEG is not decode-scaled (the file's bytes or path are decoded
        exactly as the run's loader decodes them). A str text is the caption itself (a warning when it names an
        existing ``.txt`` file); a ``pathlib.Path`` or file object is read as the caption file. A ``Sample`` is taken as decoded: one from
        :func:`mmdata.open_dataset` holds its JPEGs at full size, where the run's loader decodes them DCT-scaled to
        its resize; open the dataset with ``image_max_size=tm.image_decode_hint`` (or give the members' bytes) for
        the loader's pixels, as ``predictions.parquet`` holds them.

        Raises:
            InputError: (an :class:`~mmdata.errors.MMDataError` and a ``ValueError``) ``raw`` cannot be used: an
                unknown key, a field of another type or that does not decode, none of the model's modalities;
                the message names the sample's key, the field and what it accepts.

        Example:
            >>> tm = TrainedModel(FusionModel(["text"], "concat", classes=2), {"config": {"modalities": ["text"]}})
            >>> tm.sample({"key": "req-1", "text": b"a cat"}).fields["text"]
            'a cat'
        """
        from mmdata.types import Sample

        where = self.where or "predict"
        if isinstance(raw, Sample):
            s = raw
        elif isinstance(raw, Mapping):
            name = str(raw["key"]) if raw.get("key") not in (None, "") else key
            unknown = sorted(str(k) for k in raw if k not in SAMPLE_KEYS)
            if unknown:  # a client's typo ('imgae') would otherwise give the answer of a sample without that field
                raise InputError(f"{where}: sample {name!r}: unknown keys {unknown}; a sample's keys are "
                                 f"{list(SAMPLE_KEYS)} (this model uses {self.model.mods})")
            fields: dict[str, Any] = {}
            rate = None
            for m in MODALITIES:
                if raw.get(m) is None:
                    continue
                if m == "text" and _caption_file(raw[m]):
                    import warnings

                    warnings.warn(f"{where}: sample {name!r}: text {raw[m]!r} is the path of an existing .txt file, and "
                                  "a str text is the caption itself: it is scored as these characters; give "
                                  "pathlib.Path(...) (or the file opened 'rb') to read the file", UserWarning,
                                  stacklevel=_caller_level())
                try:
                    fields[m], rate = self._field(m, raw[m], rate)
                except MemoryError:
                    raise
                except Exception as exc:  # noqa: BLE001 - whichever decoder met the client's input: one error type
                    why = str(exc) if isinstance(exc, MMDataError) else f"{type(exc).__name__}: {exc}"
                    raise InputError(f"{where}: sample {name!r}, field {m!r}: {why}; accepted: {ACCEPTED[m]}") from exc
            s = Sample(name, fields, sample_rate=rate)
        else:
            raise InputError(f"{where}: a sample must be an mmdata.Sample or a mapping of {list(SAMPLE_KEYS)}; got a "
                             f"{type(raw).__name__}")
        if not any(s.fields.get(m) is not None for m in self.model.mods):
            # the head's bias, whatever was asked: an answer that used no input must not look like one that did
            given = sorted(k for k, v in (raw.items() if isinstance(raw, Mapping) else s.fields.items()) if v is not None)
            raise InputError(f"{where}: sample {s.key!r} holds none of the model's inputs "
                             f"{self.model.mods} (given: {given or 'nothing'}): nothing to predict from")
        try:
            return self._recipe.normalize(s)
        except InputError as exc:  # a tensor's shape or rate refused by the ops: named like the errors above
            if not self.where or str(exc).startswith(self.where):
                raise
            raise InputError(f"{self.where}: {exc}") from exc

    def _field(self, m: str, v: Any, rate: int | None) -> tuple[Any, int | None]:
        """(the decoded field ``m`` of a request, the sample rate) from ``v``, any of :data:`ACCEPTED`."""
        source = None  # the path or file the field was read from: a decode error names it (not a BytesIO)
        if isinstance(v, os.PathLike) or (isinstance(v, str) and m != "text"):  # a str text is the caption itself
            source = os.fsdecode(os.fspath(v))
            v = _request_path(source).read_bytes()
        elif hasattr(v, "read"):  # a file object: open(path, "rb"), io.BytesIO, an upload's .file
            name = getattr(v, "name", None)
            source = name if isinstance(name, str) else None
            v = v.read()
            if isinstance(v, str):
                if m != "text":
                    raise InputError("a file object opened in text mode: open it with 'rb'")
                v = drop_final_line_end(v.removeprefix("\ufeff"))  # as decode_text reads the file's bytes
        try:
            return self._decoded(m, v, rate)
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - a decoder's error names a BytesIO; say which file it was
            if source is None:
                raise
            why = str(exc) if isinstance(exc, MMDataError) else f"{type(exc).__name__}: {exc}"
            why = re.sub(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "(its bytes)", why)
            raise InputError(f"{source}: {why}") from exc

    def _decoded(self, m: str, v: Any, rate: int | None) -> tuple[Any, int | None]:
        """:meth:`_field` of a value already read from its file (bytes), or given decoded."""
        from mmdata.codecs import decode_audio, decode_text

        encoded = (bytes, bytearray, memoryview)
        if m == "text":
            from mmdata.shards.sources import text_refusal

            if isinstance(v, str):
                try:  # a lone surrogate: no UTF-8 file (nor the bytes form of this request) can hold it
                    data, text = v.encode("utf-8"), v
                except UnicodeEncodeError as exc:
                    raise InputError(f"text with a lone surrogate {v[exc.start]!r} at character {exc.start} (not "
                                     "valid Unicode, as `mmdata shard` refuses it)") from None
            elif isinstance(v, encoded):
                data = bytes(v)
                try:
                    text = decode_text(data)
                except UnicodeDecodeError as exc:
                    from mmdata.shards.sources import not_utf8_reason

                    raise InputError(f"{not_utf8_reason(data, exc)}; text bytes must be UTF-8: decode them "
                                     "and pass a str") from None
            else:
                raise InputError(f"got {_given(v)}")
            # the rule `mmdata shard` keeps captions to (QA: a NUL in a str was scored, and flipped the answer)
            why = text_refusal(data)
            if why is not None:
                raise InputError(why.replace("; remove it and save the file again", "; remove it"))
            return text, rate
        if m == "image":
            if isinstance(v, encoded):
                return self._decode_image(bytes(v)), rate
            if isinstance(v, (torch.Tensor, np.ndarray)):
                return _pixels(v), rate
            from PIL import Image

            if isinstance(v, Image.Image):
                from mmdata.augment.image import blends_alpha
                from mmdata.codecs import _pil_orientation, image_array, orient

                v.load()
                # Image.open keeps the EXIF orientation as a tag: turned as the file's bytes or path are (and as
                # `mmdata shard` stores it), so that `Image.open(upload)` is scored as the run's data was (QA33);
                # ImageOps.exif_transpose's result has no tag left, and is taken as it is
                arr = orient(image_array(v, blends_alpha(self._recipe)), _pil_orientation(v))
                return torch.from_numpy(np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))), rate
            raise InputError(f"got {_given(v)}")
        if isinstance(v, encoded):
            return decode_audio(bytes(v))
        if isinstance(v, (tuple, list)) and len(v) == 2:
            if _is_rate(v[0]) and not _is_rate(v[1]):
                raise InputError("got (sample_rate, wave), the order scipy.io.wavfile.read returns; give (wave, "
                                 "sample_rate), the wave (channels, time): rate, data = wavfile.read(path); "
                                 "(np.atleast_2d(data.T), rate)")
            wave = _wave_layout(v[0], pcm_float(v[0]))
            if wave.numel() == 0:  # as decode_audio refuses a file without frames (QA: (1, 0) was scored)
                raise InputError(f"a wave without audio frames (shape {tuple(wave.shape)}); leave the field out "
                                 "(None) for a sample without audio")
            bad = ~torch.isfinite(wave)
            if wave.dim() >= 1 and bool(bad.any()):  # as decode_audio refuses the same samples as bytes
                from mmdata.codecs import non_finite_reason

                first = int(bad.reshape(-1, wave.shape[-1]).any(0).nonzero()[0])
                raise InputError(non_finite_reason(int(bad.sum()), wave.numel(), first))
            return wave, _whole_rate(v[1])
        if isinstance(v, (torch.Tensor, np.ndarray)):
            fix = "(wave, sr)" if isinstance(v, np.ndarray) else "(wave, sample_rate)"
            raise InputError(f"got a {type(v).__name__} without its rate ({_given(v)}): give {fix}, e.g. wave, sr = "
                             "soundfile.read(path); {'audio': (wave, sr)}")
        raise InputError(f"got {_given(v)}")

    def _decode_image(self, data: bytes) -> torch.Tensor:
        """``data`` decoded as the run's evaluation loader decodes it (:class:`mmdata.augment.loader.Loader`): JPEGs
        DCT-scaled to the normalize stage's resize (``image_decode_hint``), alpha kept where it blends it."""
        from mmdata.augment.image import blends_alpha
        from mmdata.codecs import decode_image

        return decode_image(data, self._recipe.image_decode_hint(), blends_alpha(self._recipe))

    @torch.no_grad()
    def logits(self, samples: Iterable[Any], batch_size: int = BATCH_SIZE) -> torch.Tensor:
        """Raw outputs ``(N, outputs)`` for ``samples`` (see :meth:`sample`), in eval mode, ``batch_size`` samples
        decoded and run at a time (the outputs do not depend on it: eval mode, and each encoder sees its rows alone)."""
        outs = [out for _, out in self._chunks(samples, batch_size)]
        return torch.cat(outs) if outs else torch.zeros(0, self.model.classes)  # no request: no rows

    def _chunks(self, samples: Iterable[Any], batch_size: int) -> Iterator[tuple[list[str], torch.Tensor]]:
        """(keys, logits) of ``samples`` in chunks of ``batch_size``: only a chunk's decoded samples are held at
        once, so the memory of a call does not grow with the length of its list (QA33: 4,320 requests took 1.2 GiB);
        a generator is read as it goes."""
        from mmdata.types import Sample, collate

        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InputError(f"{self.where or 'predict'}: batch_size must be a whole number of samples, at least 1; "
                             f"got {batch_size!r}")
        if isinstance(samples, (Mapping, Sample, str, bytes, bytearray)):  # iterating a dict would give its keys
            raise InputError(f"{self.where or 'predict'}: predict takes a list of samples, predict([sample]); got one "
                             f"{type(samples).__name__}")
        self.model.eval()
        dev = next(self.model.parameters(), torch.empty(0)).device
        it, i = iter(samples), 0
        while True:
            chunk = list(itertools.islice(it, int(batch_size)))
            if not chunk:
                return
            built = []
            for s in chunk:  # a loop, not a comprehension: sample's warnings point at the caller of predict
                built.append(self.sample(s, f"sample{i}"))
                i += 1
            batch = collate(built)
            # requests are decoded on the host
            yield [s.key for s in built], self.model(batch if dev.type == "cpu" else batch.to(dev)).cpu()

    def predict(self, samples: Iterable[Any], batch_size: int = BATCH_SIZE) -> list[dict[str, Any]]:
        """One dict per sample: classes -> ``pred`` (name), ``index``, ``probs`` (name -> softmax probability);
        multi-label -> ``labels`` (those of sigmoid >= 0.5) and ``probs``; regression -> ``value`` in the
        target's units (``target``: its metadata key). A missing modality is absent (presence masks), as in training;
        a sample holding none of the model's modalities, or a key other than :data:`SAMPLE_KEYS`, is refused
        (:class:`~mmdata.augment.contract.InputError`). Images given as bytes or paths are decoded as the run's
        loader decodes them; ``Sample``s are taken as decoded: read a dataset for prediction with
        ``mmdata.open_dataset(path, split=..., image_max_size=tm.image_decode_hint)`` (:meth:`sample`).
        ``batch_size`` samples are decoded and run at a time (a list or generator of any length; the results do
        not depend on it).

        Example:
            >>> tm = TrainedModel(FusionModel(["text"], "concat", classes=2), {"config": {"modalities": ["text"]},
            ...                   "classes": {"num_classes": 2, "names": ["no", "yes"]}})
            >>> sorted(tm.predict([{"text": "a cat"}])[0])
            ['index', 'key', 'pred', 'probs']
        """
        rows: list[dict[str, Any]] = []
        for keys, out in self._chunks(samples, batch_size):
            rows += self._rows(keys, out.double())
        return rows

    def _rows(self, keys: Sequence[str], out: torch.Tensor) -> list[dict[str, Any]]:
        """:meth:`predict`'s dicts of ``keys`` from their logits ``out``."""
        rows: list[dict[str, Any]] = []
        for k, row in zip(keys, out):
            if self.kind == "regression":
                rows.append({"key": k, "target": self.key, "value": float(row[0] * self.sd + self.mean)})
            elif self.kind == "multilabel":
                p = torch.sigmoid(row).tolist()
                rows.append({"key": k, "labels": [n for n, v in zip(self.names, p) if v >= 0.5], "probs": dict(zip(self.names, p))})
            else:
                p = torch.softmax(row, 0).tolist()
                i = int(row.argmax())
                rows.append({"key": k, "pred": self.names[i], "index": i, "probs": dict(zip(self.names, p))})
        return rows


def load_model(model_dir: str | Path, device: str | torch.device = "cpu", plugins: Sequence[str] = ()) -> TrainedModel:
    """Load the output folder of ``mmdata train --out DIR`` (``metrics.json`` + ``model.pt``) for prediction:
    classification, multi-label and regression (``--target``) runs alike.

    Args:
        model_dir: the run's output folder (``--out``), holding ``metrics.json`` and ``model.pt`` (or one of
            these files: its folder is taken).
        device: where the model runs and requests go after decoding (``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a
            :class:`torch.device`); one this torch cannot use raises :class:`~mmdata.errors.MMDataError`.
        plugins: modules to import first (:func:`mmdata.plugins.load_plugins`), for a run trained with a fusion of
            your own (``mmdata train --plugin MOD``; ``metrics.json`` ``config.plugins`` records them); importing
            the module yourself before the call does the same.

    Raises:
        MMDataError: a file of the run is missing or damaged, the weights do not fit ``metrics.json``'s model, or
            its fusion is not registered (the message names the plugin module(s) the run recorded).

    Example:
        >>> tm = load_model("runs/a")  # doctest: +SKIP
        >>> tm.predict([{"image": open("7.png", "rb").read(), "audio": open("7.wav", "rb").read(), "text": "seven"}])  # doctest: +SKIP
        [{'key': 'sample0', 'pred': '7', 'index': 7, 'probs': {...}}]
    """
    from mmdata.checks import usable_device

    dev = usable_device(device, "load_model(device=)")  # before reading a large model.pt
    if plugins:
        from mmdata.plugins import load_plugins

        load_plugins(plugins, entry_points=False, where="load_model(plugins=)")  # fusion_class loads entry points
    d = run_folder(model_dir, "give an output folder")
    if (d / "metrics.json").is_file() and not (d / "model.pt").is_file() and (d / "contrastive.pt").is_file():
        raise MMDataError(f"{d} holds pre-trained encoders only (contrastive.pt of `mmdata train --pretrain contrastive "
                          "--epochs 0`): no classifier to predict with; train one with --epochs N (the pre-training "
                          "runs first), or use the encoders as they are with `mmdata match` / `mmdata audit-alignment` "
                          "(mmdata.train.contrastive.load)")
    d, metrics = read_run(d, "give an output folder")
    model = build_from_metrics(metrics, str(d / "metrics.json"))
    load_weights(model, d)
    return TrainedModel(model.to(dev), metrics, str(d))


def run_folder(model_dir: Any, ask: str) -> Path:
    """``model_dir`` as a run folder's Path: a file of the run (``run/model.pt``, ``run/metrics.json``,
    ``run/contrastive.pt``: what a PyTorch user gives first; QA33 "run/model.pt/metrics.json not found") stands for
    its folder; a file with no ``metrics.json`` beside it is refused naming ``ask``. A folder is returned as given
    (the caller names its missing files)."""
    d = Path(model_dir)
    if d.is_file():
        if not (d.parent / "metrics.json").is_file():
            raise MMDataError(f"{d} is a file, not a run folder: {ask} of `mmdata train --out DIR` (the folder "
                              "holding metrics.json and model.pt)")
        d = d.parent
    return d


def read_run(model_dir: Any, ask: str) -> tuple[Any, dict[str, Any]]:
    """(the folder as a Path, its ``metrics.json``) of a run folder holding ``metrics.json`` and ``model.pt``; an
    error naming the missing file and ``ask`` (what the caller asks for: ``--model must be an output folder``).
    A file of the run stands for its folder (:func:`run_folder`)."""
    import json

    d = run_folder(model_dir, ask)
    for f in ("metrics.json", "model.pt"):
        if not (d / f).is_file():
            raise MMDataError(f"{d / f} not found: {ask} of `mmdata train --out DIR`")
    path = d / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSON or UTF-8: a partial or damaged copy
        raise MMDataError(f"{path} is not the JSON `mmdata train` writes ({exc}; {path.stat().st_size:,} bytes): a "
                          "partial copy? copy the run folder again") from None
    if not isinstance(metrics, dict):
        raise MMDataError(f"{path} holds a JSON {type(metrics).__name__}, not the object `mmdata train` writes")
    return d, metrics


def load_weights(model: FusionModel, d: Any) -> None:
    """``d/model.pt`` into ``model``; an error naming both files when it does not fit."""
    import pickle

    import re

    d = Path(d)
    path = d / "model.pt"
    if not path.is_file():
        raise MMDataError(f"{path} not found: a run folder of `mmdata train --out DIR` holds it")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused an object: a whole model, an optimizer, a class
        first = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()[0][:200]
        raise MMDataError(f"{path} holds objects other than tensors ({first}): `mmdata train` writes the model's "
                          "state dict, and no other object is loaded from a file (unpickling runs code); a model "
                          "saved with torch.save(model)? save model.state_dict()") from exc
    except (OSError, EOFError, RuntimeError, ValueError) as exc:  # torch's name no file
        first = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
        why = f"{type(exc).__name__}: {first[0][:200]}" if first else type(exc).__name__
        raise MMDataError(f"{path} is not a readable PyTorch checkpoint ({why}; {path.stat().st_size:,} bytes): "
                          "truncated? copy the run folder again") from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise MMDataError(f"{d / 'model.pt'} does not fit the model described by {d / 'metrics.json'} "
                          f"({str(exc).splitlines()[0]} {' '.join(str(exc).splitlines()[1:2]).strip()[:200]})") from exc
