"""``mmdata augment``: write K augmented copies of every sample as a new, verifiable dataset.

Copy *k* of sample ``key`` gets key ``<key>_aug<k>`` and draws its params from that key (so copies
differ from each other and are reproducible); ``--keep-original`` also writes the source sample
under its own key. Augmented media are re-encoded losslessly where possible (PNG images, 16-bit FLAC
audio, UTF-8 text, ``.npy`` features), and the applied params of each sample are stored in the
index column ``aug_params`` (JSON). Splits are kept. Batch-section ops (mixup, mixgen) mix samples
and are training-time only, so they are refused here.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, IterableDataset

from mmdata.augment.recipe import Recipe, load_recipe, params_seed
from mmdata.errors import RecipeError
from mmdata.shards.sources import Record
from mmdata.types import Sample


def encode_sample(sample: Sample) -> dict[str, bytes]:
    """Encode decoded fields back to member bytes: PNG, FLAC (PCM 16), UTF-8, ``<name>.npy``."""
    import soundfile as sf
    from PIL import Image

    out: dict[str, bytes] = {}
    for name, val in sample.items():
        if name == "label":
            continue
        buf = io.BytesIO()
        if name == "image":
            arr = val.numpy()
            Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)).save(buf, format="PNG")
            out["png"] = buf.getvalue()
        elif name == "audio":
            sf.write(buf, np.clip(val.numpy().T, -1.0, 1.0), int(sample.sample_rate), format="FLAC", subtype="PCM_16")
            out["flac"] = buf.getvalue()
        elif name == "text":
            out["txt"] = str(val).encode("utf-8")
        elif hasattr(val, "shape"):
            np.save(buf, np.asarray(val), allow_pickle=False)
            out[f"{name}.npy"] = buf.getvalue()
        elif isinstance(val, (dict, list)):
            out["json"] = json.dumps(val, sort_keys=True).encode()
    return out


class _Copies(IterableDataset):  # type: ignore[type-arg]
    def __init__(self, source: Any, recipe: Recipe, copies: int, keep_original: bool, split: str) -> None:
        self.source, self.recipe, self.copies, self.keep, self.split = source, recipe, copies, keep_original, split

    def __iter__(self) -> Iterator[Record]:
        for s in self.source:
            label = s.get("label")
            base = Sample(s.key, s.fields, s.sample_rate)
            if self.keep:
                yield Record(s.key, s.key, encode_sample(base), label, self.split, extra={"aug_params": "[]", "aug_source": s.key})
            for k in range(self.copies):
                out = self.recipe.apply_sample(Sample(f"{s.key}_aug{k}", s.fields, s.sample_rate), epoch=0)
                params = json.dumps([{"op": e["op"], "id": e.get("id"), "params": e["params"]} for e in out.meta.get("aug", [])],
                                    sort_keys=True)
                yield Record(out.key, out.key, encode_sample(out), out.get("label", label), self.split,
                             extra={"aug_params": params, "aug_source": s.key})


def augment_dataset(src: str | Path, out: str | Path, recipe: Any, *, copies: int = 1, workers: int = 1,
                    keep_original: bool = False, seed: int = 0, splits: list[str] | None = None,
                    maxcount: int = 1000, progress: bool = True, executor: str = "local",
                    address: str | None = None) -> dict[str, Any]:
    """Write ``copies`` augmented copies of every sample of ``src`` (all splits by default) to ``out``.

    Deterministic for a fixed recipe and seed: the same bytes for any ``workers`` and ``executor``.
    With ``executor="ray"`` each output shard is written by one Ray task (``address``: the cluster;
    see :func:`mmdata.shards.writer.shard`); the samples are augmented and encoded here, in
    ``workers - 1`` DataLoader processes.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=3), t + "/ds", progress=False)
        >>> rep = augment_dataset(t + "/ds", t + "/aug", {"image": [{"op": "hflip", "p": 1.0}]}, copies=2, progress=False)
        >>> rep["samples"], mmdata.verify(t + "/aug")["ok"]
        (6, True)
    """
    import mmdata
    from mmdata.shards.index import is_dataset, load_card
    from mmdata.shards.writer import write_records

    if copies < 0:
        raise RecipeError(f"--copies must be >= 0, got {copies}")
    if executor == "ray":
        from mmdata.ray_cluster import require_ray

        require_ray()  # before the samples are augmented: a clear error naming the extra
    base = load_recipe(recipe)
    if base.has_batch_ops:
        raise RecipeError("recipe section 'batch' (mixup / mixgen) mixes samples during training; "
                          "`mmdata augment` writes per-sample copies — remove the batch section")
    rec = base.with_seed(params_seed(base.seed, seed))
    card = load_card(src) if is_dataset(src) else {}
    names = card.get("label_names")
    all_splits = list(card.get("splits", {"train": None}))
    records: list[Record] = []
    for split in splits or all_splits:
        ds = mmdata.open_dataset(src, split=split)
        it = DataLoader(_Copies(ds, rec, copies, keep_original, split), batch_size=None, num_workers=max(0, workers - 1) if workers > 1 else 0)
        records.extend(it)
    extra = {"augmented_from": str(src), "recipe": rec.to_dict(), "copies": copies, "keep_original": keep_original}
    return write_records(records, out, maxcount=maxcount, workers=workers, label_names=names, progress=progress,
                         name=Path(out).name, card_extra={"augmentation": extra}, executor=executor,
                         address=address) | {"copies": copies}
