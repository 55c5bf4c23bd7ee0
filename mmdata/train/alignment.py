"""Alignment audit of augmentations: does an op keep the modalities of a sample in agreement?

An augmentation can raise clean accuracy while breaking the pairing between modalities (an image
flipped under a caption that says "left", audio cropped past the spoken word, a caption masked down
to nothing). The audit measures it with a contrastive model (``contrastive.pt`` from
``mmdata train --pretrain contrastive``): for each op of a recipe, applied to every sample of a split
(``p`` forced to 1: the effect *when applied*), and for the recipe as written, per modality pair:

* **matched-pair cosine**: mean cosine similarity of each sample's two embeddings, augmented vs
  clean, with a 95% t interval over the per-sample paired differences;
* **retrieval R@1**: instance-level R@1 (mean of both directions; an identical copy of the partner
  counts, see :func:`mmdata.train.contrastive.retrieval`) among the samples of the split, augmented
  vs clean — on the same rows (an op that drops a modality shrinks the pool; ``kept`` is the
  fraction of clean pairs still present);
* **matched-vs-mismatched ROC-AUC** (:func:`mmdata.train.matching.cosine_stats`), augmented vs
  clean: the ranking view of the same question, sensitive where R@1 sits near its floor (a pool of
  hundreds of look-alike samples).

A negative Δ means the op makes the modalities agree less. The same draws as training: op params
come from ``param_rng(params_seed(recipe seed, seed), epoch, key, op index)``, as in
:func:`mmdata.loader`. :func:`alignment_columns` gives the ablation report its ``align_*`` columns.

Example:
    >>> audit("data/avdigits-spatial", "recipes/flips.yaml", "runs/spatial")["ops"][0]["op"]  # doctest: +SKIP
    'image.hflip'
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmdata.augment.preview import figure_style
from mmdata.errors import MMDataError
from mmdata.train.contrastive import ContrastiveModel, embed_all, identical, load, pair_key, pair_names, recall_at
from mmdata.train.loop import keeps_caller_rng
from mmdata.train.matching import co_occurring, cosine_stats, read_measured, save_png, text_style
from mmdata.types import Batch

RECIPE_ROW = "recipe (as written)"


def _t95(n: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, max(n - 1, 1)))


Agreement = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]


def agreement(model: ContrastiveModel, batch: Batch) -> Agreement:
    """Embeddings, presence and identical-content matrices of every row of ``batch`` (CPU)."""
    z, p = embed_all(model, batch)
    return z, p, identical(batch, model.mods)


def compare(clean: Agreement, aug: Agreement, mods: list[str]) -> dict[str, dict[str, Any]]:
    """Per pair: matched cosine and R@1, clean vs augmented, on the rows where the pair is present in both.

    Which candidates count as a row's partner (its own pair, or an identical copy of its content) is the
    clean data's on both sides: an op that makes contents alike (captions masked down to nothing) must
    read as a loss of agreement. Taking the copies from the augmented batch made every emptied caption
    every image's partner — R@1 rose to 1 and the AUC had no mismatched pair left (QA: ΔR@1 +60 points)."""
    (zc, pc, sc), (za, pa, _) = clean, aug
    out: dict[str, dict[str, Any]] = {}
    for a, b in pair_names(mods):
        before = pc[a] & pc[b]
        rows = before & pa[a] & pa[b]
        n = int(rows.sum())
        entry: dict[str, Any] = {"n": n, "kept": n / max(int(before.sum()), 1)}
        if n >= 2:
            cos_c = (zc[a][rows] * zc[b][rows]).sum(1).double()
            cos_a = (za[a][rows] * za[b][rows]).sum(1).double()
            diff = cos_a - cos_c
            half = _t95(n) * float(diff.std()) / math.sqrt(n) if n > 1 else float("nan")
            same = sc[a][rows][:, rows] | sc[b][rows][:, rows]
            r1_c = _r1(zc[a][rows], zc[b][rows], same)
            r1_a = _r1(za[a][rows], za[b][rows], same)
            auc_c = cosine_stats(zc[a][rows], zc[b][rows], same=same)["auc"]
            auc_a = cosine_stats(za[a][rows], za[b][rows], same=same)["auc"]
            entry.update({"cosine_clean": float(cos_c.mean()), "cosine": float(cos_a.mean()), "delta_cosine": float(diff.mean()),
                          "delta_cosine_ci95": [float(diff.mean()) - half, float(diff.mean()) + half],
                          "R@1_clean": r1_c, "R@1": r1_a, "delta_R@1": r1_a - r1_c,
                          "auc_clean": auc_c, "auc": auc_a, "delta_auc": auc_a - auc_c})
        out[pair_key(a, b)] = entry
    return out


def _r1(za: torch.Tensor, zb: torch.Tensor, same: torch.Tensor) -> float:
    sim = za @ zb.T
    match = same | torch.eye(len(za), dtype=torch.bool)
    return float((recall_at(sim, 1, match).mean() + recall_at(sim.T, 1, match.T).mean()) / 2)


def _apply(recipe: Any, batch: Batch, seed: int, epoch: int) -> Batch:
    from mmdata.augment.recipe import params_seed

    r = recipe.with_seed(params_seed(recipe.seed, seed))  # the loader's seeding, so the draws are training's
    return r.apply_batched(batch, epoch, mix=True)


def _single(recipe: Any, section: str, op: Any) -> Any:
    import mmdata

    spec: dict[str, Any] = {"seed": recipe.seed, section: [{**op.to_dict(), "p": 1.0}]}
    if recipe.keying != "identity":
        spec["keying"] = recipe.keying
    return mmdata.load_recipe(spec)


def input_format(net: ContrastiveModel, rec: Any) -> tuple[dict[str, Any], list[str]]:
    """The ``normalize:`` stage the audit puts the split through, and the modalities whose ``normalize:``
    list in the audited recipe differs from it (ignored, with a warning).

    The audit asks how an op changes agreement *under this model*, so clean and augmented samples are in
    the format the model was pre-trained on (its sizes, channels, rates, token length: the
    ``normalize`` of ``contrastive.pt``). Letting the recipe's own lists win would measure the clean
    baseline on inputs the model never saw (another size, rate or token length) and attribute the
    mismatch to nothing. A model without a recorded format (built in memory) takes the recipe's.
    """
    recipe_norm = rec.to_dict().get("normalize") or {}
    config = getattr(net, "config", None)
    if config is None or config.get("normalize") is None:
        return recipe_norm, []
    model_norm = dict(config["normalize"])
    ignored = [m for m in net.mods if m in recipe_norm and recipe_norm[m] != model_norm.get(m)]
    if ignored:
        warnings.warn(f"audit-alignment: the recipe's normalize: section for [{', '.join(ignored)}] differs from the "
                      f"model's input format; the audit measures in the model's format (the normalize: stage it was "
                      f"pre-trained with: {_norm_text(model_norm, ignored)}), so the recipe's normalize is ignored for "
                      f"[{', '.join(ignored)}] — pre-train a model with this recipe to audit it in that format",
                      UserWarning, stacklevel=3)
    # the reading itself goes through the complete evaluation transform when the checkpoint records it (QA28
    # deploy #2): a split at another image size / audio rate is brought to the model's format, not fed as it is
    return dict(config.get("eval_normalize") or model_norm), ignored


def _norm_text(norm: dict[str, Any], mods: Sequence[str]) -> str:
    return "; ".join(f"{m}: " + (", ".join(o["op"] for o in norm.get(m) or []) or "none") for m in mods)


def _norm_params(norm: dict[str, Any]) -> str:
    """A normalize stage with each step's options (``image: resize(size=24, side=shorter), ...``), ``p`` left out."""
    def step(o: dict[str, Any]) -> str:
        return f"{o['op']}(" + ", ".join(f"{k}={v}" for k, v in o.items() if k not in ("op", "p")) + ")"

    return "; ".join(f"{m}: " + ", ".join(step(o) for o in norm.get(m) or []) for m in sorted(norm)) or "none"


def _clean(data: str | Path, split: str | Sequence[str], net: ContrastiveModel, rec: Any,
           on_error: str = "raise") -> tuple[Batch, dict[str, Any], list[str], dict[str, int]]:
    """The split in the model's input format (:func:`input_format`), that format, the ignored modalities
    and the samples ``on_error="skip"`` left out (reason -> count; a raise carries train's hint)."""
    norm, ignored = input_format(net, rec)
    batch, lost = read_measured(data, split, net.mods, norm, on_error, (getattr(net, "config", None) or {}).get("image_channels"))
    return batch, norm, ignored, lost


def _unmeasured(data: str | Path, mods: Sequence[str]) -> list[str]:
    """The fields the dataset card lists beyond its standard modalities and label (a ``.npy`` lip video beside
    audio and text), which the model does not measure: an op that desyncs one of them from a measured stream is
    not rated by the audit (QA39 lipreading #3). Bare shards or an unreadable card: none known."""
    from mmdata.shards.index import dataset_fields, load_card

    try:
        card = load_card(data)
    except Exception:  # noqa: BLE001 — no card: nothing to list (the audit itself reads the shards)
        return []
    # a standard modality the model lacks is not listed: its ops get "n/a (model has no audio)" rows already
    return [n for n in dataset_fields(card) if n not in mods
            and n not in ("image", "audio", "text", "label", "json", "cls")]


def _absent(step: Any, mods: Sequence[str]) -> str | None:
    """The modalities an op works on when the model has none of them (its rows are n/a), else None."""
    if step.section in ("image", "audio", "text"):
        touched: Any = [step.section]
    else:
        touched = getattr(step.op, "modalities", None)
    if isinstance(touched, (list, tuple)) and touched and not set(touched) & set(mods):
        return " or ".join(touched)
    return None


def _model(model: str | Path | ContrastiveModel, device: str) -> ContrastiveModel:
    return model if isinstance(model, ContrastiveModel) else load(model, device)


def _summary(pairs: dict[str, dict[str, Any]]) -> dict[str, float]:
    vals = [p for p in pairs.values() if "delta_cosine" in p]
    keys = ("delta_cosine", "delta_R@1", "delta_auc")
    # None (JSON null) when no pair kept two samples: NaN is not JSON, and "no change" would be a claim
    return {k: float(np.mean([p[k] for p in vals])) if vals else None for k in keys}


def audit(data: str | Path, recipe: Any, model: str | Path | ContrastiveModel, *, split: str = "test", seed: int = 0,
          epoch: int = 0, out: str | Path | None = None, device: str = "cpu", on_error: str = "raise") -> dict[str, Any]:
    """Audit every op of ``recipe`` (and the whole recipe) for cross-modal agreement on ``split``.

    Args:
        data: dataset folder.
        recipe: augmentation recipe (path / YAML / dict / Recipe).
        model: a contrastive model, or a folder / file holding ``contrastive.pt``.
        split: the split to measure (test by default).
        seed, epoch: augmentation draws (as a training run with this seed draws them in this epoch).
        out: PNG path for the chart (None: no figure).
        on_error: ``"raise"`` (a sample that does not decode stops the audit, naming it) or ``"skip"``
            (it is left out; ``skipped_samples`` counts it by reason, ``n`` the samples measured).

    The split is put through the *model's* ``normalize:`` stage, not the recipe's (see
    :func:`input_format`; a differing recipe ``normalize:`` is ignored with a warning). A pair with
    fewer than two samples holding both modalities is skipped (``skipped`` says why). An op on a
    modality the model lacks (audio ops for an image-text model) gets ``"na": "model has no audio"``
    and no numbers, not a Δ of zero.

    Returns:
        ``{"split", "n", "input_format": {"normalize", "recipe_normalize_ignored"}, "pairs", "skipped",
        "clean": {pair: {"cosine", "R@1", "auc", "n"}}, "ops": [{"op", "index", "p", "pairs": {pair:
        {"delta_cosine", "delta_cosine_ci95", "delta_R@1", "delta_auc", "cosine", "cosine_clean", "R@1",
        "R@1_clean", "auc", "auc_clean", "kept", "n"}}, "delta_cosine", "delta_R@1", "delta_auc"[, "na"]},
        ...], "measured_fields", "unmeasured_fields", "figure"}``; the last op row is the recipe as written (each op
        with its own ``p``); ``unmeasured_fields``: the card's fields beside the label the model does not
        measure (warned of: an op desyncing them is not rated).

    Raises:
        MMDataError: the recipe has no augmentation op, or no pair of the model's modalities co-occurs
            in two samples of the split.
    """
    import mmdata

    rec = mmdata.load_recipe(recipe)
    if not (rec.has_random or rec.has_batch_ops):
        raise MMDataError("the recipe has no augmentation ops (image, audio, text, sample or batch): nothing to audit")
    net = _model(model, device)
    batch, norm, ignored, lost = _clean(data, split, net, rec, on_error)
    unmeasured = _unmeasured(data, net.mods)
    if unmeasured:
        warnings.warn(f"audit-alignment: measures {', '.join(net.mods)} (the model's modalities) only; the stored "
                      f"field{'s' * (len(unmeasured) > 1)} {', '.join(repr(n) for n in unmeasured)} "
                      f"{'are' if len(unmeasured) > 1 else 'is'} not measured, so an op that moves one stream and not "
                      f"{'them' if len(unmeasured) > 1 else 'it'} (an audio crop beside a (T, H, W) video) is not rated "
                      "here", UserWarning, stacklevel=2)
    clean = agreement(net, batch)
    # a pair needs two samples holding both modalities (a matched and a mismatched candidate)
    skipped = co_occurring(clean[1], net.mods, split, data, at_least=2)
    keep = [pair_key(a, b) for a, b in pair_names(net.mods) if pair_key(a, b) not in skipped]

    def measured(aug: Agreement) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in compare(clean, aug, net.mods).items() if k in keep}

    rows: list[dict[str, Any]] = []
    for step in rec.steps:
        if step.index is None:  # the normalize stage is the input format, not an augmentation
            continue
        row = {"op": step.label, "index": step.index, "p": step.op.p}
        lacking = _absent(step, net.mods)
        if lacking is not None:  # nothing to measure: not "no change"
            rows.append({**row, "na": f"model has no {lacking}", "pairs": {},
                         "delta_cosine": None, "delta_R@1": None, "delta_auc": None})
            continue
        pairs = measured(agreement(net, _apply(_single(rec, step.section, step.op), batch, seed, epoch)))
        rows.append({**row, "pairs": pairs, **_summary(pairs)})
    pairs = measured(agreement(net, _apply(rec, batch, seed, epoch)))
    rows.append({"op": RECIPE_ROW, "index": None, "p": None, "pairs": pairs, **_summary(pairs)})
    base = {k: {"cosine": v["cosine_clean"], "R@1": v["R@1_clean"], "auc": v["auc_clean"], "n": v["n"]}
            for k, v in measured(clean).items() if "cosine_clean" in v}
    result = {"data": str(data), "split": split, "n": len(batch), "skipped_samples": lost, "seed": seed, "epoch": epoch,
              "model": None if isinstance(model, ContrastiveModel) else str(model), "recipe": rec.to_dict(),
              "input_format": {"normalize": norm, "recipe_normalize_ignored": ignored},
              "pairs": keep, "skipped": skipped, "clean": base, "ops": rows,
              "measured_fields": list(net.mods), "unmeasured_fields": unmeasured}
    if out is not None:
        result["figure"] = str(plot(result, Path(out)))
    return result


#: the options of :func:`reference_model` a checkpoint must have been pre-trained with to be reused
#: (``splits``: the roles of the split options, None for the splits named train / val / test)
REFERENCE_OPTIONS = ("modalities", "seed", "epochs", "batch_size", "exclude_same_class", "normalize", "splits")


@keeps_caller_rng  # it seeds torch's global RNG: a direct caller gets its own state back
def reference_model(data: str | Path, out: str | Path, *, modalities: Sequence[str] = ("image", "audio", "text"),
                    epochs: int = 20, seed: int = 0, batch_size: int = 64, device: str = "cpu",
                    exclude_same_class: bool = False, train_split: str | Sequence[str] | None = None,
                    val_split: str | None = None, test_split: str | None = None, on_error: str = "raise") -> Path:
    """Pre-train a contrastive model on the clean training split, in the trainer's input format, and
    write ``out/contrastive.pt`` — the model an audit (or an ablation's alignment columns) measures
    with. Resumable: an existing checkpoint is kept when it was pre-trained on this dataset (the card's
    ``fingerprint``, recorded in the checkpoint as ``data_fingerprint``) with these options (the
    modalities the data has of ``modalities``, ``seed``, ``epochs``, ``batch_size``,
    ``exclude_same_class``, the splits and the input format); otherwise it is refused, naming what
    differs, as ``mmdata match`` refuses another dataset's model (``device`` is not compared). Returns ``out``.

    ``train_split`` / ``val_split`` / ``test_split``: which splits play train, val and test, as for
    :func:`mmdata.train.train` (folds as splits: ``val_split="4", test_split="5"`` pre-trains on the
    other folds; :func:`mmdata.train.config.split_roles` checks them, with its messages); the input
    format is derived as a training run with them derives it, and the checkpoint records them (``splits``).
    ``on_error``: as the trainer's (``"skip"``: a training sample that does not decode is left out).

    Raises:
        MMDataError: a split option that does not fit the dataset, or ``out`` holds a checkpoint of
            another dataset, with other options, or one that records no dataset fingerprint; delete it
            (or choose another ``out``) to pre-train anew.

    Example:
        >>> ref = reference_model("data/avdigits-spatial", "runs/ablation/alignment")  # doctest: +SKIP
        >>> audit("data/avdigits-spatial", "recipes/spatial_audit.yaml", ref)["ops"][0]["op"]  # doctest: +SKIP
        'image.hflip'
    """
    from mmdata.shards.index import load_card
    from mmdata.train.config import IndexStats, derive_inputs, role_splits, split_roles, with_normalize
    from mmdata.train.contrastive import CHECKPOINT, pretrain_encoders
    from mmdata.train.model import FusionModel

    out = Path(out)
    card = load_card(data)
    roles = split_roles(data, card, train_split, val_split, test_split)
    st = IndexStats(data, roles)
    mods = [m for m in modalities if len(st.rows("train", m))]
    spec = derive_inputs(st, mods)
    recipe, norm = with_normalize(None, spec)
    wanted = {"modalities": mods, "seed": seed, "epochs": epochs, "batch_size": batch_size,
              "exclude_same_class": exclude_same_class, "normalize": norm, "splits": roles}
    if (out / CHECKPOINT).is_file():
        _check_reference(out / CHECKPOINT, data, card.get("fingerprint"), wanted)
        return out
    torch.manual_seed(seed)
    model = FusionModel(mods, "concat", max(2, int(card.get("num_classes") or 2)), image_channels=spec.channels,
                        image_hw=spec.image_size or (16, 16))
    pre = pretrain_encoders(model, data, epochs=epochs, seed=seed, batch_size=batch_size, recipe=recipe, device=device,
                            exclude_same_class=exclude_same_class, eval_split=None, train_split=role_splits(roles, "train"),
                            on_error=on_error)
    pre.config.update(data=str(data), data_fingerprint=card.get("fingerprint"), splits=roles)
    pre.save(out / CHECKPOINT)
    return out


def _check_reference(path: Path, data: str | Path, fingerprint: str | None, wanted: dict[str, Any]) -> None:
    """Raise unless the checkpoint at ``path`` was pre-trained on the dataset with ``fingerprint`` with
    the options ``wanted`` (:func:`reference_model`)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    cfg = ckpt.get("config", {}) if isinstance(ckpt, dict) else {}
    fix = f"; delete {path} to pre-train a reference model on {data} with these options, or choose another folder"
    saved = cfg.get("data_fingerprint")
    if saved is None or fingerprint is None:
        which = f"{path} records no dataset fingerprint" if saved is None else f"{data}'s card (dataset.json) has no fingerprint"
        raise MMDataError(f"{path}: cannot tell whether this reference model was pre-trained on {data} ({which}), "
                          f"so it is not reused{fix}")

    def shown(key: str, value: Any) -> str:
        if key == "splits":  # the roles, or the splits named so
            return ", ".join(f"{r} {n}" for r, n in value.items()) if value else "train, val, test (the splits so named)"
        return (_norm_text(value or {}, sorted(value or {})) or "none") if key == "normalize" else str(value)

    diffs = []
    if saved != fingerprint:
        diffs.append(f"dataset fingerprint {saved[:12]}… ({cfg.get('data', 'another dataset')}; asked for {data}: "
                     f"{fingerprint[:12]}…)")
    for key in REFERENCE_OPTIONS:
        if cfg.get(key) != wanted[key]:
            label = "input format" if key == "normalize" else key
            was, now = shown(key, cfg.get(key)), shown(key, wanted[key])
            if was == now and key == "normalize":  # the same steps with other sizes (folds of other images): say them
                was, now = _norm_params(cfg.get(key) or {}), _norm_params(wanted[key] or {})
            diffs.append(f"{label} {was} (asked for {now})")
    if diffs:
        raise MMDataError(f"{path}: this reference model was pre-trained with " + ", ".join(diffs)
                          + f"; a reference model is reused only for the dataset and options it was pre-trained with{fix}")


def alignment_columns(data: str | Path, recipe: Any, model: str | Path | ContrastiveModel, *, seed: int = 0,
                      split: str | Sequence[str] = "test", device: str = "cpu", on_error: str = "raise") -> dict[str, float]:
    """The ``alignment Δ`` columns of one ablation run: the recipe as written, augmented vs clean, on
    ``split`` (a list: folds read as one).

    ``align_cos_delta_<a>_<b>``, ``align_r1_delta_<a>_<b>`` and ``align_auc_delta_<a>_<b>`` per pair,
    and their means over pairs ``align_cos_delta`` / ``align_r1_delta`` / ``align_auc_delta`` (R@1 and
    AUC in fractions, like accuracies). Pass the run's seed:
    the draws are those of its training loader. An empty recipe gives zeros. ``on_error``: the run's
    (``"skip"`` leaves a sample of ``split`` that does not decode out of both sides).

    Example:
        >>> cols = alignment_columns("data/avdigits", arm_recipe, "runs/ablation/contrastive", seed=3)  # doctest: +SKIP
        >>> sorted(cols)[:2]  # doctest: +SKIP
        ['align_cos_delta', 'align_cos_delta_audio_text']
    """
    import mmdata

    rec = mmdata.load_recipe(recipe)
    net = _model(model, device)
    if not (rec.has_random or rec.has_batch_ops):
        pairs = {pair_key(a, b): {"delta_cosine": 0.0, "delta_R@1": 0.0, "delta_auc": 0.0} for a, b in pair_names(net.mods)}
    else:
        batch = _clean(data, split, net, rec, on_error)[0]
        pairs = compare(agreement(net, batch), agreement(net, _apply(rec, batch, seed, 0)), net.mods)
    cols: dict[str, float] = {}
    for name, p in pairs.items():
        if "delta_cosine" in p:
            cols[f"align_cos_delta_{name.replace('-', '_')}"] = p["delta_cosine"]
            cols[f"align_r1_delta_{name.replace('-', '_')}"] = p["delta_R@1"]
            cols[f"align_auc_delta_{name.replace('-', '_')}"] = p["delta_auc"]
    s = _summary(pairs)
    cols["align_cos_delta"], cols["align_r1_delta"], cols["align_auc_delta"] = s["delta_cosine"], s["delta_R@1"], s["delta_auc"]
    return cols


def plot(result: dict[str, Any], path: Path) -> Path:
    """Per pair: Δ matched cosine (with 95% CI), Δ ROC-AUC and Δ R@1 per op, horizontal bars (red:
    agreement lost); an op on a modality the model lacks is labelled n/a."""
    # figures are matplotlib.figure.Figure, not pyplot's: the caller's backend and figures untouched; drawn under
    # matplotlib's defaults, so the caller's settings (a notebook's figure.dpi, a style's fonts) leave the PNG's bytes
    ops = result["ops"]
    labels = [o["op"] if o["index"] is None else f"{o['op']} (p {o['p']:g} → 1)" for o in ops]
    labels = [f"{t}: n/a ({o['na']})" if o.get("na") else t for t, o in zip(labels, ops)]
    rc, shown, note = text_style([*labels, *result["pairs"], str(result["split"])])
    with figure_style(rc):
        return _plot(result, path, [shown(t) for t in labels], shown, note)


def _plot(result: dict[str, Any], path: Path, labels: list[str], shown: Any, note: str | None) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ops = result["ops"]
    pairs = result["pairs"]
    metrics = (("delta_cosine", "Δ matched cosine", "cosine"), ("delta_auc", "Δ ROC-AUC matched vs mismatched", "auc"),
               ("delta_R@1", "Δ R@1 (points)", "R@1"))
    # the op labels take the first column's left margin; a one-pair figure must still hold its titles
    width = max(2.4 + 3.8 * len(pairs), 7.0)
    height = (0.3 * len(ops) + 1.2) * len(metrics) + 0.8 + (0.3 if note else 0)
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # draws PNGs; fig.canvas.get_renderer() for layout checks
    axes = fig.subplots(len(metrics), len(pairs), squeeze=False)
    ys = np.arange(len(ops))[::-1]
    for j, pair in enumerate(pairs):
        for i, (metric, title, clean_key) in enumerate(metrics):
            ax = axes[i, j]
            scale = 100.0 if metric == "delta_R@1" else 1.0
            got = [o["pairs"].get(pair, {}).get(metric) for o in ops]  # None: n/a or not measured
            vals = [float("nan") if v is None else v * scale for v in got]
            colors = ["#D55E00" if v < 0 else "#0072B2" for v in vals]  # Okabe–Ito: apart to colour-blind eyes too
            ax.barh(ys, vals, color=colors, alpha=0.75)
            if metric == "delta_cosine":
                for y, o in zip(ys, ops):
                    ci = o["pairs"].get(pair, {}).get("delta_cosine_ci95")
                    if ci:
                        ax.plot(ci, [y, y], color="black", lw=1)
            for y, o, v in zip(ys, ops, got):
                if v is None:  # the model lacks the op's modality, or fewer than 2 samples kept the pair
                    ax.text(0, y, "n/a", ha="center", va="center", fontsize=7, color="dimgray",
                            bbox={"fc": "white", "ec": "none", "pad": 1})
            ax.axvline(0, color="black", lw=0.8)
            ax.set_yticks(ys, labels if j == 0 else [""] * len(ops), fontsize=7)
            clean = result["clean"].get(pair)
            base = f" (clean {clean[clean_key] * scale:.2f})" if clean else ""
            ax.set_title(textwrap.fill(f"{pair}: {title}{base}", 44), fontsize=8)
            # one scale per row: a pair's noise must not look as large as another pair's real effect
            every = [abs(o["pairs"].get(q, {}).get(metric) or 0.0) * scale for o in ops for q in pairs]
            every += [abs(c) for o in ops for q in pairs for c in (o["pairs"].get(q, {}).get(f"{metric}_ci95") or [])]
            lim = max([v for v in every if not math.isnan(v)] + [1e-3]) * 1.15
            ax.set_xlim(-lim, lim)
    title = shown(f"Alignment audit on {result['split']} ({result['n']} samples): augmented − clean, per op applied "
                  "to every sample, and the recipe as written")
    fig.suptitle(textwrap.fill(title, int(width * 12)), fontsize=9)
    if note:
        fig.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=7, color="dimgray", wrap=True)
    return save_png(fig, path, bottom=0.3 / height if note else 0.0)
