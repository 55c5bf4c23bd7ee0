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

Splits: the recipe's ``trainer.train_split`` / ``trainer.val_split`` / ``trainer.test_split`` (the
options of ``mmdata train --train-split / --val-split / --test-split``: folds sharded as splits) say
which splits play train, val and test for the alignment as for the runs: the reference model
pre-trains on the training split(s) and ``alignment.split`` names a role (``test``: the split playing
test). They are checked before any run, by :func:`mmdata.train.config.split_roles` with its messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmdata.ablate.design import Ablation
from mmdata.errors import MMDataError

#: the summary column every aligned run has (the others are per modality pair)
ALIGN_COLUMN = "align_cos_delta"

#: how an ablation leaves a sample that does not decode out of its alignment step (as out of its runs)
SKIP_HINT = "; or leave them out with trainer: {on_error: skip} in the ablation recipe (as out of its runs)"


@contextmanager
def _recipe_hint(data: str) -> Iterator[None]:
    """A sample that does not decode in the alignment step raises naming the ablation recipe's
    ``trainer: {on_error: skip}`` (QA: it named ``mmdata match``'s ``--on-error skip``, or nothing)."""
    from mmdata.shards.reader import undecodable
    from mmdata.train.matching import SKIP_HINT as MEASUREMENT_HINT

    try:
        yield
    except MMDataError as exc:
        msg = str(exc)
        if msg.endswith(MEASUREMENT_HINT):  # the measurement's read hinted its own command's option
            raise type(exc)(msg[: -len(MEASUREMENT_HINT)] + SKIP_HINT) from None
        hinted = undecodable(exc, data, skip=SKIP_HINT)
        if hinted is None:
            raise
        raise hinted from None


def check_model(ab: Ablation) -> None:
    """Fail before any run when the alignment cannot be measured: ``alignment.model`` names no
    contrastive model, or the trainer's split options do not fit the dataset at ``dataset.path``
    (:func:`alignment_roles`; a named or remote dataset is checked when the alignment is computed)."""
    from mmdata.train.contrastive import CHECKPOINT
    from mmdata.urls import is_remote

    model = (ab.alignment or {}).get("model")
    if model and not (Path(model) / CHECKPOINT).is_file() and not (Path(model).is_file() and Path(model).suffix == ".pt"):
        raise MMDataError(f"alignment.model: {model} has no {CHECKPOINT}; train one with "
                          "`mmdata train DATA --pretrain contrastive --out DIR` or set alignment: true")
    path = ab.dataset.get("path")
    if ab.alignment and path is not None and not is_remote(path):
        alignment_roles(ab, str(path))


def _trainer_key(key: str) -> str:
    return f"trainer.{key}"


def split_options(ab: Ablation) -> dict[str, Any]:
    """The recipe's ``trainer.train_split`` / ``val_split`` / ``test_split`` that are set."""
    from mmdata.train.config import SPLIT_OPTIONS

    return {k: ab.trainer[k] for k in SPLIT_OPTIONS if ab.trainer.get(k) is not None}


def alignment_roles(ab: Ablation, data: str) -> dict[str, list[str]] | None:
    """Which of ``data``'s splits play train, val and test for the alignment (None: the splits so
    named): the trainer's split options, checked by :func:`mmdata.train.config.split_roles` (named as
    recipe keys, or as ``mmdata train``'s options where ``run()`` overrode them). Without them, the
    splits it reads must exist by name: train (the reference model's pre-training, unless
    ``alignment.model`` is given) and ``alignment.split``."""
    from mmdata.shards.index import load_card
    from mmdata.train.config import split_roles

    card = load_card(data)
    roles = split_roles(data, card, **split_options(ab), name=ab.key_name)  # an override: its option's name
    spec = ab.alignment or {}
    needed = dict.fromkeys([*([] if spec.get("model") else ["train"]), spec.get("split", "test")])
    missing = [s for s in needed if roles is None and s not in card["splits"]]
    if missing:
        reads = ("the reference model pre-trains on train; " if "train" in missing else "") + \
            f"alignment.split: {spec.get('split', 'test')}"
        raise MMDataError(f"dataset.path: {data} has no split named {' or '.join(map(repr, missing))} (it has "
                          f"{sorted(card['splits'])}), which the alignment reads ({reads}); say which splits play "
                          f"train / val / test with {_trainer_key('val_split')} and {_trainer_key('test_split')} "
                          f"[{_trainer_key('train_split')}], the options of mmdata train --val-split / --test-split / "
                          "--train-split (folds: val_split: '4', test_split: '5')")
    return roles


def reference(ab: Ablation, data: str, out: Path, device: str = "cpu") -> Path:
    """The contrastive model's folder: ``alignment.model``, or one pre-trained on the clean training
    split(s) (the trainer's ``train_split``, when set) into ``out/alignment`` (kept for reruns)."""
    spec = ab.alignment or {}
    if spec.get("model"):
        check_model(ab)
        return Path(spec["model"])
    from mmdata.train.alignment import reference_model

    from mmdata.ablate.design import EMBEDDED_MODALITIES

    alignment_roles(ab, data)  # named as recipe keys: reference_model checks them again, named as train's options
    mods = list(ab.trainer.get("modalities") or ab.data_modalities or EMBEDDED_MODALITIES)
    with _recipe_hint(data):
        return reference_model(data, out / "alignment", modalities=mods, epochs=int(spec.get("epochs", 20)),
                               seed=0, device=device, on_error=on_error(ab), **split_options(ab))


def on_error(ab: Ablation) -> str:
    """The runs' ``trainer.on_error`` (``skip``: a sample that does not decode is left out of the
    reference model's pre-training and of the alignment's split, as out of every run)."""
    return str(ab.trainer.get("on_error") or "raise")


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
    from mmdata.train.config import role_splits
    from mmdata.train.contrastive import load

    split = role_splits(alignment_roles(ab, data), ab.alignment["split"])  # the split(s) playing that role
    net = load(reference(ab, data, out, device), device)
    recipes = {a.name: a.recipe for a in ab.arms}
    for r in todo:
        if r["arm"] not in recipes:
            continue
        with _recipe_hint(data):
            r.update(alignment_columns(data, recipes[r["arm"]], net, seed=int(r["seed"]), split=split, device=device,
                                       on_error=on_error(ab)))
        if on_row is not None:
            on_row(r)
    return len(todo)
