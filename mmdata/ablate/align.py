"""Alignment Δ per arm: how much each arm's augmentation changes cross-modal agreement.

With ``alignment:`` in the ablation recipe (or ``mmdata ablate --alignment DIR|auto``), every finished
run gets the ``align_*`` columns of :func:`mmdata.train.alignment.alignment_columns`: under a
contrastive model of the clean data, the matched-pair cosine, matched-vs-mismatched ROC-AUC and
retrieval R@1 of the ``split`` augmented by the arm's recipe with that run's own draws (its seed),
minus the same on the clean split. The report then compares arms with the baseline on them like any
exploratory metric (``alignment Δ``; higher is better: less agreement lost).

The columns depend on the arm's recipe, the seed and the model only — not on training — so they are
computed here, in the calling process, after the runs: any trainer and any executor get them, a
resumed ablation computes only the missing ones, and turning ``alignment`` on for a finished
ablation adds them without retraining anything.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mmdata.ablate.design import Ablation
from mmdata.errors import MMDataError

#: the summary column every aligned run has (the others are per modality pair)
ALIGN_COLUMN = "align_cos_delta"


def check_model(ab: Ablation) -> None:
    """Fail before any run when ``alignment.model`` names no contrastive model."""
    from mmdata.train.contrastive import CHECKPOINT

    model = (ab.alignment or {}).get("model")
    if model and not (Path(model) / CHECKPOINT).is_file() and not (Path(model).is_file() and Path(model).suffix == ".pt"):
        raise MMDataError(f"alignment.model: {model} has no {CHECKPOINT}; train one with "
                          "`mmdata train DATA --pretrain contrastive --out DIR` or set alignment: true")


def reference(ab: Ablation, data: str, out: Path, device: str = "cpu") -> Path:
    """The contrastive model's folder: ``alignment.model``, or one pre-trained on the clean training
    split into ``out/alignment`` (kept for reruns)."""
    spec = ab.alignment or {}
    if spec.get("model"):
        check_model(ab)
        return Path(spec["model"])
    from mmdata.train.alignment import reference_model

    from mmdata.ablate.design import EMBEDDED_MODALITIES

    mods = list(ab.trainer.get("modalities") or ab.data_modalities or EMBEDDED_MODALITIES)
    return reference_model(data, out / "alignment", modalities=mods, epochs=int(spec.get("epochs", 20)), seed=0,
                           device=device)


def add_alignment(ab: Ablation, data: str, out: Path, rows: list[dict[str, Any]], *, device: str = "cpu",
                  on_row: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Fill the ``align_*`` columns of every ``ok`` row that lacks them (in place); returns how many.

    Example:
        >>> add_alignment(load_ablation("ab.yaml"), "data/avdigits", Path("runs/ab"), rows)  # doctest: +SKIP
        90
    """
    todo = [r for r in rows if r.get("status") == "ok" and r.get(ALIGN_COLUMN) is None]
    if not ab.alignment or not todo:
        return 0
    from mmdata.train.alignment import alignment_columns
    from mmdata.train.contrastive import load

    net = load(reference(ab, data, out, device), device)
    recipes = {a.name: a.recipe for a in ab.arms}
    for r in todo:
        if r["arm"] not in recipes:
            continue
        r.update(alignment_columns(data, recipes[r["arm"]], net, seed=int(r["seed"]), split=ab.alignment["split"],
                                   device=device))
        if on_row is not None:
            on_row(r)
    return len(todo)
