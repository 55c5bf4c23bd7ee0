"""The training loop: ``mmdata.train.train(...)`` and ``torchrun -m mmdata.train`` (DDP).

One seed fixes initialisation, data order, augmentation draws (the loader combines it with the
recipe's seed) and label-noise flips. The split is fixed by the dataset (built once with its own
seed). Training batches come from :func:`mmdata.loader` with ``cache=True`` (decoded once) and the
batched kernels (``augment_on="device"``) on the training device. The checkpoint with the best
validation accuracy is kept and evaluated on test. Under DDP (``WORLD_SIZE`` > 1) each rank reads a
disjoint part of every epoch (the reader splits by rank), gradients are averaged by
DistributedDataParallel, uneven last steps are handled with ``DDP.join()``, and rank 0 evaluates and
writes the outputs.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mmdata.errors import MMDataError
from mmdata.rng import derive
from mmdata.train.evaluate import predict, robustness, scores
from mmdata.train.model import FusionModel
from mmdata.types import Batch


def take(batch: Batch, rows: Iterable[int]) -> Batch:
    """Rows of a batch (data, presence, lengths; per-sample lists)."""
    idx = torch.as_tensor(list(rows), dtype=torch.int64)
    li = idx.tolist()

    def pick(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return v[idx.to(v.device)]
        if isinstance(v, list):
            return [v[i] for i in li]
        return v

    return Batch(keys=[batch.keys[i] for i in li], data={k: pick(v) for k, v in batch.data.items()},
                 present={k: pick(v) for k, v in batch.present.items()}, lengths={k: pick(v) for k, v in batch.lengths.items()},
                 sample_rate=batch.sample_rate, meta={})


def noisy_labels(keys: Sequence[str], labels: torch.Tensor, fraction: float, seed: int, classes: int) -> torch.Tensor:
    """Flip ``fraction`` of labels to a different random class, fixed per sample key (same every epoch)."""
    if fraction <= 0:
        return labels
    out = labels.clone()
    for i, k in enumerate(keys):
        rng = derive(seed, 0, k, "label_noise")
        if labels[i] >= 0 and rng.random() < fraction:
            out[i] = int((int(labels[i]) + 1 + rng.integers(classes - 1)) % classes)
    return out


def _load_split(data: str | Path, split: str, modalities: Sequence[str]) -> Batch:
    import mmdata

    samples = list(mmdata.open_dataset(data, split=split, modalities=[*modalities, "label"], partition=False))
    if not samples:
        raise MMDataError(f"{data}: split {split!r} is empty")
    return mmdata.collate(samples)


def _dist() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("MMDATA_DEVICE", "cpu").startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend)
    if torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def train(data: str | Path, *, fusion: str = "concat", modalities: Sequence[str] = ("image", "audio", "text"),
          epochs: int = 15, seed: int = 0, recipe: Any = None, out: str | Path | None = None, batch_size: int = 64,
          lr: float = 2e-3, weight_decay: float = 1e-4, optimizer: str = "adamw", device: str = "cpu",
          label_noise: float = 0.0, threads: int | None = None, eval_robustness: bool = True,
          progress: bool = False, fusion_args: dict[str, Any] | None = None, pretrain: str | None = None,
          pretrain_epochs: int = 10, pretrain_args: dict[str, Any] | None = None, probe: bool = False,
          label_fraction: float = 1.0) -> dict[str, Any]:
    """Train the reference fusion model on a dataset folder; returns (and writes) the metrics.

    Args:
        data: dataset folder with train / val / test splits (e.g. from ``mmdata datasets build avdigits``).
        fusion: one of ``mmdata.train.FUSIONS`` (early, concat, late, mean, max, gated, attention,
            cross_attention, tensor, low_rank).
        modalities: the modalities the model uses (one modality = a unimodal baseline).
        epochs, batch_size, lr, weight_decay, optimizer (``adamw`` | ``sgd``): optimisation.
        seed: fixes init, data order, augmentation draws and label-noise flips.
        recipe: augmentation recipe (path / dict / Recipe) applied to training batches.
        out: folder for ``metrics.json``, ``predictions.parquet`` and ``model.pt`` (state dict).
        device: ``cpu`` or ``cuda``.
        label_noise: fraction of training labels flipped (a planted harmful control for ablations).
        threads: torch intra-op threads (None: leave as is).
        eval_robustness: also compute missing-modality and corruption robustness.
        fusion_args: options of the fusion (``hierarchical``: ``order``; ``two_tower``: ``towers``,
            ``interaction``; docs/fusions.md).
        pretrain, pretrain_epochs, pretrain_args, probe, label_fraction: cross-modal pre-training before the
            supervised epochs, a linear probe on frozen encoders, and the fraction of training labels
            used (:func:`mmdata.train.contrastive.prepare`; docs/crossmodal.md).

    Returns:
        ``{"test": {accuracy, macro_f1, nll, ece}, "val": {...}, "robustness": {...}, "best_epoch", ...}``.
    """
    import mmdata

    t0 = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    if optimizer not in ("adamw", "sgd"):
        raise MMDataError(f"--optimizer must be adamw or sgd, got {optimizer!r}")
    rank, world = _dist()
    from mmdata.shards.index import load_card

    card = load_card(data)
    classes = int(card.get("num_classes") or 0)
    if classes < 2:
        raise MMDataError(f"{data}: the card has no classes (num_classes={classes}); training needs labels")
    for split in ("train", "val", "test"):
        if split not in card["splits"]:
            raise MMDataError(f"{data}: needs train/val/test splits; it has {sorted(card['splits'])} (shard with --split)")
    dev = torch.device(device)
    torch.manual_seed(seed)
    val = _load_split(data, "val", modalities)
    test = _load_split(data, "test", modalities)
    img_shape = tuple(test["image"].shape[1:]) if "image" in test else (1, 16, 16)
    model = FusionModel(modalities, fusion, classes, image_channels=img_shape[0], image_hw=img_shape[1:],
                        fusion_args=fusion_args).to(dev)
    from mmdata.train.contrastive import prepare  # cross-modal hook: pre-training, probe, labelled subset

    prep = prepare(model, data, pretrain=pretrain, pretrain_epochs=pretrain_epochs, pretrain_args=pretrain_args, probe=probe,
                   label_fraction=label_fraction, seed=seed, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                   recipe=recipe, device=dev, progress=progress and rank == 0)
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    opt = (torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay) if optimizer == "adamw"
           else torch.optim.SGD(model.parameters(), lr=lr * 50, momentum=0.9, weight_decay=weight_decay))
    loader = mmdata.loader(data, batch_size, recipe=recipe, split="train", seed=seed, device=dev, augment_on="device",
                           cache=True, modalities=[*modalities, "label"], balance=prep.balance)
    seen_dir = os.environ.get("MMDATA_RECORD_SEEN")
    best = (-1.0, -1, None)
    history = []
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        net.train()
        total, count, seen = 0.0, 0, []
        join = net.join() if world > 1 else _null()
        with join:
            for batch in loader:
                y = batch["label"].to(dev)
                if label_noise > 0:  # flips are keyed by sample: the labels come to the host only then
                    y = noisy_labels(batch.keys, y.cpu(), label_noise, seed, classes).to(dev)
                logits = net(batch)
                if "mix_lam" in batch:
                    lam = batch["mix_lam"].to(dev)
                    yb = batch["label_b"].to(dev)
                    loss = (lam * F.cross_entropy(logits, y, reduction="none")
                            + (1 - lam) * F.cross_entropy(logits, yb, reduction="none")).mean()
                else:
                    loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(batch)
                count += len(batch)
                seen.extend(batch.keys)
        if seen_dir:
            with open(Path(seen_dir) / f"seen-rank{rank}.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"epoch": epoch, "keys": seen}) + "\n")
        if rank == 0:
            v = scores(predict(model, val), val["label"], classes)
            history.append({"epoch": epoch, "train_loss": total / max(count, 1), "val_accuracy": v["accuracy"]})
            if progress:
                print(f"epoch {epoch}: loss {total / max(count, 1):.3f}  val acc {v['accuracy']:.3f}", flush=True)
            if v["accuracy"] > best[0]:
                best = (v["accuracy"], epoch, copy.deepcopy(model.state_dict()))
    if world > 1:
        torch.distributed.barrier()
    if rank != 0:
        torch.distributed.destroy_process_group()
        return {}
    model.load_state_dict(best[2])
    logits = predict(model, test)
    metrics: dict[str, Any] = {
        "test": scores(logits, test["label"], classes),
        "val": scores(predict(model, val), val["label"], classes),
        "best_epoch": best[1],
        "history": history,
        "config": {"fusion": fusion, "modalities": list(modalities), "epochs": epochs, "seed": seed, "batch_size": batch_size,
                   "lr": lr, "weight_decay": weight_decay, "optimizer": optimizer, "label_noise": label_noise,
                   "recipe": None if recipe is None else mmdata.load_recipe(recipe).to_dict(), "world_size": world,
                   "fusion_args": fusion_args or {}, **prep.config},
        "n_params": sum(p.numel() for p in model.parameters()),
        "data_fingerprint": card.get("fingerprint"),
        **prep.metrics(),
    }
    if eval_robustness:
        metrics["robustness"] = robustness(model, test, modalities, classes, seed=seed)
    metrics["wall_s"] = time.perf_counter() - t0
    if out is not None:
        _write_outputs(Path(out), metrics, model, test, logits)
        prep.save(out)
    if world > 1:
        torch.distributed.destroy_process_group()
    return metrics


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def _write_outputs(out: Path, metrics: dict[str, Any], model: torch.nn.Module, test: Batch, logits: torch.Tensor) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from mmdata.io import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "metrics.json", (json.dumps(metrics, indent=2) + "\n").encode())
    probs = torch.softmax(logits.double(), 1)
    labels = test["label"]
    table = pa.table({"key": test.keys, "split": ["test"] * len(test), "label": labels.tolist(),
                      "pred": probs.argmax(1).tolist(), "prob_label": probs[torch.arange(len(test)), labels.clamp(min=0)].tolist(),
                      "probs": probs.tolist()})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(out / "predictions.parquet", buf.getvalue())
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write_bytes(out / "model.pt", buf.getvalue())
