"""Modality matching: do the modalities of a sample agree? (``mmdata match DATA --model DIR``)

Two families of numbers per pair of modalities, on one split (test by default):

* **Embedding agreement** (needs the shared space of a contrastive model, ``DIR/contrastive.pt``):
  the cosine similarity of a sample's two embeddings (*matched*) against that of embeddings from two
  different samples (*mismatched*, every ordered pair i != j whose contents differ: a repeated
  caption under another image is not a mismatch), their means, and the ROC-AUC of
  matched vs mismatched — the probability that a random matched pair scores above a random
  mismatched one (0.5: the embedding cannot tell them apart). ``*_other_class`` repeats the
  mismatched side with pairs of *different* labels only: on label-paired data (avdigits pairs a
  digit image with *some* clip of the same digit) a same-class "mismatch" is not a mismatch at all.
* **Predictive agreement** (any fusion, ``DIR/model.pt``): the trained model's class distribution
  from each modality alone (the others removed through their presence masks), and per sample the
  KL divergence both ways and the Jensen–Shannon divergence between two modalities' distributions,
  in bits (JS is symmetric and in [0, 1]; KL is unbounded and asymmetric: ``KL(a||b)`` is large
  where ``a`` is confident about a class ``b`` rules out), plus how often their argmax agrees —
  overall and per true class.

When they mislead (docs/crossmodal.md has the long form): a model never trained with a modality
alone (no ``modality_dropout``) gives off-distribution single-modality outputs, so high JS may say
more about the fusion than about the data — ``late`` fusion or training with modality dropout makes
them meaningful; a confident wrong modality and an unsure right one have small KL one way and large
the other; AUC near 1 with matched cosine near the mismatched mean means a clear *ranking* but a
small margin; everything is measured on the model's own training distribution (use test).

Example:
    >>> result = match("data/avdigits", "runs/pre")  # doctest: +SKIP
    >>> result["pairs"]["image-audio"]["cosine"]["auc"]  # doctest: +SKIP
    0.83
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmdata.augment.preview import cjk_font, figure_style
from mmdata.errors import MMDataError
from mmdata.io import atomic_write_bytes
from mmdata.train.contrastive import CHECKPOINT, embed_all, identical, load, model_format, pair_key, pair_names, read_split
from mmdata.train.model import FusionModel, build_from_metrics, eval_normalize, load_weights, read_run, run_folder
from mmdata.types import Batch

EPS = 1e-12
DPI = 110  # of the PNGs written


#: why a pair has no mismatched cosine nor AUC (:func:`cosine_stats`)
NO_MISMATCH = ("no mismatched pairs: all contents identical (every sample's content equals every other's in one "
               "of the two modalities, e.g. one caption under every image), so mismatched cosine and AUC are undefined")


def cosine_stats(za: torch.Tensor, zb: torch.Tensor, labels: torch.Tensor | None = None,
                 same: torch.Tensor | None = None) -> dict[str, Any]:
    """Matched vs mismatched cosine similarity of two aligned sets of unit vectors (row i of each is one sample).

    ``same[i, j]``: sample j's content is identical to sample i's in one of the two modalities (from
    :func:`mmdata.train.contrastive.identical`); such pairs are left out of the mismatched side — a
    repeated caption under another image is not a mismatch. ``labels`` (-1: unknown) add
    ``auc_other_class`` over the ``n_other_class`` rows whose label is known.

    When no mismatched pair is left (every content identical in one of the modalities: one caption
    under every image) the mismatched mean / sd and the AUC are NaN — undefined, not 0.5 — and
    ``reason`` says why; nothing is warned (:func:`match` reports them as null with the reason).

    Example:
        >>> z = torch.nn.functional.normalize(torch.eye(3) + 0.1, dim=1)
        >>> cosine_stats(z, z)["auc"]
        1.0
    """
    from sklearn.metrics import roc_auc_score

    n = za.shape[0]
    sim = (za @ zb.T).double()
    eye = torch.eye(n, dtype=torch.bool)
    off = ~eye if same is None else ~(eye | same)
    matched, mism = sim[eye], sim[off]
    if len(mism) == 0:  # nothing to compare with: torch's std and sklearn's AUC would warn and give NaN
        nan = float("nan")
        return {"n": n, "matched_mean": float(matched.mean()), "matched_std": float(matched.std()) if n > 1 else nan,
                "mismatched_mean": nan, "mismatched_std": nan, "auc": nan, "reason": NO_MISMATCH}
    scores = torch.cat([matched, mism]).numpy()
    truth = np.r_[np.ones(n), np.zeros(len(mism))]
    out: dict[str, Any] = {"n": n, "matched_mean": float(matched.mean()), "matched_std": float(matched.std()),
                           "mismatched_mean": float(mism.mean()), "mismatched_std": float(mism.std()),
                           "auc": float(roc_auc_score(truth, scores))}
    if labels is not None:
        # over the rows whose label is known (n_other_class of them): an unlabelled row is on neither side
        known = labels >= 0
        other = (labels[:, None] != labels[None, :]) & off & known[:, None] & known[None, :]
        if other.any():
            mo, mk = sim[other], matched[known]
            out["n_other_class"] = int(known.sum())
            out["mismatched_other_class_mean"] = float(mo.mean())
            out["auc_other_class"] = float(roc_auc_score(np.r_[np.ones(len(mk)), np.zeros(len(mo))], torch.cat([mk, mo]).numpy()))
    return out


def kl_bits(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Per-row KL(p || q) in bits (rows are distributions)."""
    p, q = p.double().clamp_min(EPS), q.double().clamp_min(EPS)
    return (p * (p.log2() - q.log2())).sum(-1)


def js_bits(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Per-row Jensen–Shannon divergence in bits, in [0, 1].

    Example:
        >>> js_bits(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])).round(decimals=6).tolist()
        [1.0]
    """
    m = (p.double() + q.double()) / 2
    return (kl_bits(p, m) + kl_bits(q, m)) / 2


def _summary(kl_ab: torch.Tensor, kl_ba: torch.Tensor, js: torch.Tensor, agree: torch.Tensor) -> dict[str, float]:
    return {"n": int(len(js)), "kl_ab": float(kl_ab.mean()), "kl_ba": float(kl_ba.mean()), "js": float(js.mean()),
            "argmax_agreement": float(agree.double().mean())}


def divergences(probs: dict[str, torch.Tensor], present: dict[str, torch.Tensor], labels: torch.Tensor | None,
                mods: Sequence[str], label_names: Sequence[str] | None = None) -> dict[str, Any]:
    """KL both ways, JS and argmax agreement of per-modality class distributions, per pair: overall and per
    true class, over the rows where both modalities are present. ``kl_ab`` is ``KL(a || b)`` for pair ``a-b``."""
    out: dict[str, Any] = {}
    for a, b in pair_names(mods):
        rows = present[a] & present[b]
        if not rows.any():
            continue
        pa, pb = probs[a][rows], probs[b][rows]
        kl_ab, kl_ba, js = kl_bits(pa, pb), kl_bits(pb, pa), js_bits(pa, pb)
        agree = pa.argmax(1) == pb.argmax(1)
        entry = _summary(kl_ab, kl_ba, js, agree)
        if labels is not None:
            y = labels[rows]
            per = {}
            for c in sorted(int(v) for v in y.unique() if v >= 0):
                k = y == c
                name = label_names[c] if label_names and c < len(label_names) else str(c)
                per[name] = _summary(kl_ab[k], kl_ba[k], js[k], agree[k])
            entry["per_class"] = per
        out[pair_key(a, b)] = entry
    return out


def _show(names: Sequence[str], at_most: int = 6) -> str:
    shown = ", ".join(repr(n) for n in names[:at_most])
    return f"[{shown}{', …' if len(names) > at_most else ''}]"


def check_classes(metrics: dict[str, Any], data: str | Path, model_dir: str | Path) -> None:
    """Raise when the run's classes (``metrics.json["classes"]``) are not the dataset card's: count and
    names in order. A model of another dataset would put its class names on this dataset's label ids
    (its 'circle' on digit 0). A run that recorded no classes, or a dataset without classes, passes."""
    from mmdata.shards.index import load_card

    recorded = metrics.get("classes") or {}
    n_model = int(recorded.get("num_classes") or 0)
    if not n_model:
        return
    card = load_card(data)
    n_data = int(card.get("num_classes") or 0)
    if not n_data:
        return
    model_names = [str(n) for n in recorded.get("names") or []] or [str(c) for c in range(n_model)]
    data_names = [str(n) for n in card.get("label_names") or []] or [str(c) for c in range(n_data)]
    hint = (f"use the dataset the model was trained on (or retrain on {data}): per-class numbers would put the "
            "model's class names on this dataset's labels")
    if n_model != n_data:
        raise MMDataError(f"{model_dir}: the model was trained on {n_model} classes {_show(model_names)} but {data} has "
                          f"{n_data} classes {_show(data_names)}; {hint}")
    if model_names == data_names:
        return
    reshard = (f"re-shard {data}'s source with --labels listing the run's names in order (metrics.json classes.names, "
               f"one per line: mmdata shard SOURCE OUT --labels names.txt)")
    if sorted(model_names) == sorted(data_names):
        raise MMDataError(f"{model_dir}: {data} has the same {n_data} class names as the model in another order "
                          f"(model {_show(model_names)}, {data} {_show(data_names)}): its label ids name other classes; "
                          f"{reshard}; to score the run on it as it is: mmdata evaluate {model_dir} {data} (classes "
                          f"matched by name)")
    from mmdata.shards.sources import _near_name

    near = {_near_name(n): n for n in model_names}
    if len(near) == n_model and sorted(near) == sorted(_near_name(n) for n in data_names):
        pairs = [f"{near[_near_name(n)]!r} vs {n!r}" for n in data_names if near[_near_name(n)] != n]
        order = "" if [_near_name(n) for n in model_names] == [_near_name(n) for n in data_names] else " (and order)"
        cased = all(n.casefold() == near[_near_name(n)].casefold() for n in data_names)
        how = "only in case" if cased else "only in case, spaces at the start or end or Unicode form"
        raise MMDataError(f"{model_dir}: the model's class names and those of {data} differ {how}{order} "
                          f"({', '.join(pairs[:6])}{', …' if len(pairs) > 6 else ''}): class names are matched "
                          f"exactly; spell the labels as the run does (the label column, the class folders) and "
                          f"{reshard}")
    i = next(i for i, (a, b) in enumerate(zip(model_names, data_names)) if a != b)
    raise MMDataError(f"{model_dir}: the model's class names {_show(model_names)} differ from those of {data} "
                      f"{_show(data_names)} (class {i}: {model_names[i]!r} vs {data_names[i]!r}); {hint}")


def load_run(model_dir: str | Path, device: str = "cpu", data: str | Path | None = None) -> tuple[FusionModel, dict[str, Any]]:
    """Rebuild a trained fusion model from ``DIR/metrics.json`` (the architecture it records, else config,
    classes and input format) and ``DIR/model.pt``; returns (model in eval mode, metrics) — for the audits
    (a classifier); :func:`mmdata.train.model.load_model` loads any run for prediction. ``data``: the dataset, whose card gives
    the classes when metrics.json does not (runs written before it recorded them) and must have the
    run's classes when it does (:func:`check_classes`)."""
    d = run_folder(model_dir, "--model must be an output folder")
    if (d / "metrics.json").is_file() and not (d / "model.pt").is_file() and (d / CHECKPOINT).is_file():
        # (match itself measures such a run by its embedding alone, before it calls this)
        raise MMDataError(f"{d} holds pre-trained encoders only ({CHECKPOINT} of `mmdata train --pretrain contrastive "
                          "--epochs 0`): no classifier (model.pt) whose predictions this measures; train one with "
                          "--epochs N (the pre-training runs first)")
    d, metrics = read_run(d, "--model must be an output folder")
    target = metrics.get("target")
    if isinstance(target, dict):  # its outputs are label sets or a number: no class distribution to compare
        raise MMDataError(f"{d}: the model predicts the metadata key {target.get('key')!r} ({target.get('kind')}, "
                          "`mmdata train --target`), not classes; matching and alignment audits read a classifier's "
                          "class predictions: give a run trained without --target (mmdata.train.model.load_model loads "
                          "it for prediction)")
    if data is not None:
        check_classes(metrics, data, d)
    classes = 0
    if not (metrics.get("classes") or {}).get("num_classes") and data is not None:
        from mmdata.shards.index import load_card

        classes = int(load_card(data).get("num_classes") or 0)
    model = build_from_metrics(metrics, str(d / "metrics.json"), classes)
    load_weights(model, d)
    return model.to(device).eval(), metrics


@torch.no_grad()
def single_modality_probs(model: FusionModel, batch: Batch, chunk: int = 512) -> dict[str, torch.Tensor]:
    """Class distributions (N, C) from each modality alone (the others removed via presence masks)."""
    model.eval()
    out = {}
    for m in model.mods:
        drop = [o for o in model.mods if o != m]
        logits = [model(batch.select(range(lo, min(lo + chunk, len(batch)))), drop=drop).cpu() for lo in range(0, len(batch), chunk)]
        out[m] = torch.softmax(torch.cat(logits).double(), 1)
    return out


#: how ``match`` / ``audit-alignment`` can leave a sample that does not decode out (the end of the reader's hint)
SKIP_HINT = "; or leave them out of this measurement with --on-error skip (on_error='skip')"


def read_measured(data: str | Path, split: str | Sequence[str], mods: Sequence[str], normalize: dict[str, Any] | None,
                  on_error: str, image_channels: int | None = None) -> tuple[Batch, dict[str, int]]:
    """:func:`mmdata.train.contrastive.read_split` in a model's input format (``normalize`` completed by
    :func:`~mmdata.train.contrastive.model_format`: a greyscale image of the split becomes the RGB an
    RGB-trained model takes) for a measurement: a sample that does not decode raises with the trainer's
    hint (``mmdata verify --deep``, ``--check decode``) and this command's ``--on-error skip``; samples
    that still cannot be batched raise an MMDataError naming the model's input format."""
    from mmdata.shards.reader import undecodable

    norm = model_format(normalize, mods, image_channels)
    try:
        return read_split(data, split, mods, norm, on_error)
    except MMDataError as exc:
        hinted = undecodable(exc, data, skip=SKIP_HINT)
        if hinted is None:
            raise
        raise hinted from None
    except ValueError as exc:  # collate: the model's normalize leaves shapes a batch cannot hold
        if "cannot collate" not in str(exc):
            raise
        why = str(exc).split("; add {op:")[0]
        steps = "; ".join(f"{m}: " + ", ".join(o["op"] for o in v) for m, v in sorted(norm.items())) or "none"
        raise MMDataError(f"{data}: split {split!r} cannot be brought to the model's input format (the normalize "
                          f"stage it was trained with, as this measurement applies it: {steps}; image channels "
                          f"{image_channels}): {why}") from None


def _n_text(entry: dict[str, Any], part: dict[str, Any]) -> str:
    """`` (n=N)``: a pair's own sample count (the pair's entry, else its part's), or nothing when neither has one
    (a result built by hand: QA, a missing ``n`` raised KeyError while drawing)."""
    n = entry.get("n", part.get("n"))
    return "" if n is None else f" (n={n})"


def _trained_on(metrics: dict[str, Any], data: str | Path) -> bool:
    """Whether the run of ``metrics`` was trained on the dataset ``data`` (its card's fingerprint; True when
    either is unknown): a split of another dataset named like the training split is no training data (QA:
    the "trained on" warning for another dataset's train split)."""
    from mmdata.shards import index as idx

    saved = metrics.get("data_fingerprint")
    if saved is None:
        return True
    try:
        return idx.load_card(data).get("fingerprint") in (None, saved)
    except Exception:  # a folder the read above opened: unknown here is no reason to fail
        return True


def match(data: str | Path, model_dir: str | Path, *, split: str = "test", out: str | Path | None = None,
          device: str = "cpu", on_error: str = "raise") -> dict[str, Any]:
    """Measure modality agreement on ``split`` with a trained run (and its contrastive model, if any).

    Args:
        data: the dataset folder.
        model_dir: an output folder of ``mmdata train`` (``metrics.json`` + ``model.pt``; with
            ``contrastive.pt`` when it was pre-trained with ``--pretrain contrastive``).
        split: which split to measure (test by default: never the data the model was fitted on).
        out: where to write the PNG (default ``model_dir/match.png`` for test, ``match-<split>.png``
            for another split; on a dataset the run was not trained on ``match-data-<dataset folder>.png`` /
            ``match-data-<dataset folder>-<split>.png``; the path is in the result).
        on_error: ``"raise"`` (a sample that does not decode — a float WAV holding NaN — stops the
            measurement, naming it) or ``"skip"`` (it is left out; ``skipped_samples`` counts it by reason).

    Returns:
        ``{"split", "n", "fusion", "embedding", "pairs": {"image-audio": {"cosine": {...} | absent,
        "divergence": {...}}}, "skipped": {pair: reason}, "skipped_samples": {reason: samples}, "overall": {...},
        "figure"}`` (see the module docstring). A pair no sample of the split holds is skipped (named in
        ``skipped``); ``n`` counts the samples measured (each pair's ``n`` those holding both of its
        modalities), ``skipped_samples`` those ``on_error="skip"`` left out; ``probe``: the classifier is a
        linear probe on the frozen pre-trained encoders (``--probe``); ``warnings``: measuring the training split.

    Raises:
        MMDataError: the run's classes are not the dataset's, or no pair of modalities co-occurs in the split.
    """
    from mmdata.urls import unless_file_url

    # a file of the run (RUN/model.pt, RUN/contrastive.pt) stands for its folder: its checks, the embedding and the
    # figure's default path are the folder's (QA33: the figure was put under RUN/model.pt/)
    data, d = unless_file_url(data), run_folder(unless_file_url(model_dir), "--model must be an output folder")
    if not (d / "model.pt").is_file() and (d / CHECKPOINT).is_file() and (d / "metrics.json").is_file():
        # pre-training alone (`mmdata train --pretrain contrastive --epochs 0`): the embedding's cosines only
        metrics = json.loads((d / "metrics.json").read_text(encoding="utf-8"))
        check_classes(metrics, data, d)
        model, cfg = None, {**metrics["config"], "fusion": None}
        net = load(d, device)
        mods, channels = list(net.mods), net.config.get("image_channels")
    else:
        model, metrics = load_run(d, device, data)
        cfg = metrics["config"]
        mods, channels = list(cfg["modalities"]), model.image_channels
    if len(mods) < 2:
        raise MMDataError(f"{d}: the model uses one modality ({mods[0]}); matching needs two")
    # the model's complete evaluation transform: a dataset at another size / rate is brought to the model's
    batch, lost = read_measured(data, split, mods, eval_normalize(metrics) if model is not None else metrics.get("normalize"),
                                on_error, channels)
    labels = batch["label"] if "label" in batch else None
    present = {m: (batch.present[m] if m in batch.present else torch.zeros(len(batch), dtype=torch.bool)) for m in mods}
    skipped = co_occurring(present, mods, split, data)
    pairs: dict[str, Any] = {}
    if model is not None:  # the classifier's per-modality predictions
        probs = single_modality_probs(model, batch)
        div = divergences(probs, present, labels, mods, (metrics.get("classes") or {}).get("names"))
        pairs = {k: {"divergence": v} for k, v in div.items()}
    embedding = None
    hist: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if (d / CHECKPOINT).is_file():
        cm = load(d, device)
        z, pres = embed_all(cm, batch)
        dup = identical(batch, cm.mods)
        embedding = str(d / CHECKPOINT)
        for a, b in pair_names(cm.mods):
            rows = pres[a] & pres[b]
            if int(rows.sum()) >= 2:
                za, zb = z[a][rows], z[b][rows]
                same = dup[a][rows][:, rows] | dup[b][rows][:, rows]
                stats = cosine_stats(za, zb, labels[rows] if labels is not None else None, same)
                if "reason" in stats:  # undefined: null in the result (and the JSON), with the reason
                    stats = {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in stats.items()}
                pairs.setdefault(pair_key(a, b), {})["cosine"] = stats
                sim = (za @ zb.T).numpy()
                hist[pair_key(a, b)] = (np.diag(sim), sim[~(same | torch.eye(len(sim), dtype=torch.bool)).numpy()])
    for a, b in pair_names(mods):  # each pair's own sample count: a pair can rest on far fewer rows than the split
        if pair_key(a, b) in pairs:
            pairs[pair_key(a, b)] = {"n": int((present[a] & present[b]).sum()), **pairs[pair_key(a, b)]}
    divs = [p["divergence"] for p in pairs.values() if "divergence" in p]
    overall = {"js": float(np.mean([v["js"] for v in divs])),
               "argmax_agreement": float(np.mean([v["argmax_agreement"] for v in divs]))} if divs else {}
    aucs = [p["cosine"]["auc"] for p in pairs.values() if "cosine" in p and p["cosine"]["auc"] is not None]
    if aucs:
        overall["auc"] = float(np.mean(aucs))
    fitted = ((cfg.get("splits") or {}).get("train") or ["train"])
    said = [f"measured on the {split} split, which the model was trained on" + (" (its contrastive model saw every pair of "
            "it)" if embedding else "") + ": agreement reads higher than on unseen data; measure on test (the default)"
            ] if split in fitted and _trained_on(metrics, data) else []
    result = {"data": str(data), "model": str(d), "split": split, "n": len(batch), "skipped_samples": lost,
              "fusion": cfg.get("fusion"), "probe": bool(cfg.get("probe")), "warnings": said,
              "modalities": mods, "embedding": embedding, "pairs": pairs, "skipped": skipped, "overall": overall,
              "units": {"kl": "bits", "js": "bits, in [0, 1]", "cosine": "[-1, 1]"}}
    result["figure"] = str(plot(result, Path(out) if out else d / figure_name("match", split, data, metrics), hist))
    return result


def describe_model(result: dict[str, Any]) -> str:
    """What a :func:`match` result measured with: ``fusion late``, ``linear probe on the pre-trained
    encoders`` (``--probe``: its fusion is recorded as concat) or ``the pre-trained embedding``."""
    if result.get("probe"):
        return "linear probe on the pre-trained encoders"
    return f"fusion {result['fusion']}" if result["fusion"] else "the pre-trained embedding"


def figure_name(stem: str, split: str, data: str | Path | None = None, metrics: dict[str, Any] | None = None) -> str:
    """The default PNG name of a figure measured on ``split``: ``match.png`` for test (the default
    split), ``match-val.png`` for val, so measuring another split never overwrites test's figure; on a
    dataset ``data`` the run (``metrics``) was not trained on, its folder's name comes first after ``data-``
    (``match-data-shifted.png``, ``match-data-shifted-val.png``), so measuring other data never overwrites the
    figure of the run's own (QA31 shift D4), also of a folder named as a split (``shifted/val`` was
    ``match-val.png``: QA31 shift review F6).

    Example:
        >>> figure_name("match", "test"), figure_name("match", "val")
        ('match.png', 'match-val.png')
    """
    parts = [stem]
    if data is not None and metrics is not None and not _trained_on(metrics, data):
        name = str(data).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1].split("?")[0]
        parts.append("data-" + (re.sub(r"[^\w.-]+", "_", name).strip("._") or "data"))
    if split != "test":
        parts.append(split)
    return "-".join(parts) + ".png"


def default_figure(stem: str, split: str, data: str | Path, model_dir: str | Path) -> Path:
    """``model_dir / figure_name(stem, split, data, its metrics.json)``: where ``mmdata match`` /
    ``audit-alignment`` write their figure when ``--out`` is not given."""
    from mmdata.urls import unless_file_url

    try:  # a file of the run stands for its folder (as for the audit itself)
        d = run_folder(unless_file_url(model_dir), "--model must be an output folder")
    except MMDataError:  # no run here: the audit itself names the problem
        d = Path(unless_file_url(model_dir))
    try:
        metrics = json.loads((d / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no run here: the audit itself names the problem
        metrics = None
    return d / figure_name(stem, split, data, metrics if isinstance(metrics, dict) else None)


def co_occurring(present: dict[str, torch.Tensor], mods: Sequence[str], split: str, data: str | Path,
                 at_least: int = 1) -> dict[str, str]:
    """The pairs of ``mods`` with fewer than ``at_least`` rows holding both modalities, each with the
    reason it is skipped; raise when that leaves no pair (nothing to compare on this split)."""
    counts = {pair_key(a, b): int((present[a] & present[b]).sum()) for a, b in pair_names(mods)}
    rows = "no sample" if at_least == 1 else "fewer than two samples" if at_least == 2 else f"fewer than {at_least} samples"
    skipped = {}
    for (a, b), (k, n) in zip(pair_names(mods), counts.items()):
        if n < at_least:
            skipped[k] = (f"no {split} sample has both {a} and {b}" if n == 0 else
                          f"only {n} {split} sample{'s' * (n != 1)} with both {a} and {b} (needs {at_least})")
    if len(skipped) == len(counts):
        each = ", ".join(f"{int(present[m].sum())} with {m}" for m in mods)
        raise MMDataError(f"{data}: split {split!r} has {rows} holding two of the model's modalities "
                          f"[{', '.join(mods)}] together ({', '.join(f'{k}: {n}' for k, n in counts.items())}; "
                          f"{len(next(iter(present.values())))} samples, {each}); agreement between modalities needs "
                          "samples that hold both — measure a split (--split) or dataset that has them")
    return skipped


def plot(result: dict[str, Any], path: Path, hist: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> Path:
    """Top row: histograms of matched vs mismatched cosine per pair (``hist``: pair -> (matched,
    mismatched) similarities); bottom row: mean JS divergence per true class per pair, with the argmax
    agreement."""
    # figures are matplotlib.figure.Figure, not pyplot's: the caller's backend and figures untouched; drawn under
    # matplotlib's defaults, so the caller's settings (a notebook's figure.dpi, a style's fonts) leave the PNG's bytes
    pairs = list(result["pairs"])
    names = [k for p in pairs for k in (result["pairs"][p].get("divergence") or {}).get("per_class", {})]
    rc, shown, note = text_style([*names, *pairs, str(result["split"]), str(result["fusion"])])
    with figure_style(rc):
        return _plot(result, path, hist, pairs, shown, note)


def _plot(result: dict[str, Any], path: Path, hist: dict[str, tuple[np.ndarray, np.ndarray]] | None, pairs: list[str],
          shown: Callable[[str], str], note: str | None) -> Path:
    import textwrap

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def title(head: str, detail: str) -> str:
        # the pair on its own line, the numbers wrapped to the panel (~12 characters per inch at 9 pt): on one line
        # a third panel's title ran off the figure and the first's nearly touched the second's (accessibility QA)
        return head + ":\n" + textwrap.fill(detail, 46, break_on_hyphens=False)

    has_cos = any("cosine" in result["pairs"][p] for p in pairs)
    has_div = any("divergence" in result["pairs"][p] for p in pairs)
    rows = max(1, int(has_cos) + int(has_div))  # a pair of one co-occurring sample has neither: an empty frame
    fig = Figure(figsize=(max(4.2 * len(pairs), 6.0), 3.3 * rows + (0.3 if note else 0)))
    FigureCanvasAgg(fig)  # draws PNGs; fig.canvas.get_renderer() for layout checks
    axes = fig.subplots(rows, len(pairs), squeeze=False)
    for j, name in enumerate(pairs):
        entry = result["pairs"][name]
        if has_cos:
            ax = axes[0, j]
            c = entry.get("cosine")
            if c is None:
                ax.axis("off")
            else:
                matched, mism = (hist or {}).get(name, (np.array([]), np.array([])))
                bins = np.linspace(-1, 1, 41)
                if len(mism):  # density of an empty histogram divides by zero
                    ax.hist(mism, bins=bins, density=True, color="tab:gray", alpha=0.5,
                            label=f"mismatched: {c['mismatched_mean']:+.2f} ± {c['mismatched_std']:.2f}")
                ax.hist(matched, bins=bins, density=True, color="#0072B2", alpha=0.5,  # Okabe–Ito blue
                        label=f"matched: {c['matched_mean']:+.2f} ± {c['matched_std']:.2f}")
                if "mismatched_other_class_mean" in c:
                    ax.axvline(c["mismatched_other_class_mean"], color="#D55E00", lw=0.8, ls=":",
                               label=f"mismatched, other class: {c['mismatched_other_class_mean']:+.2f}")
                auc = "— (no mismatched pairs)" if c["auc"] is None else f"{c['auc']:.2f}"
                ax.set_title(title(f"{name}{_n_text(entry, c)}", f"cosine, ROC-AUC {auc}"
                                   + (f" ({c['auc_other_class']:.2f} other class)" if "auc_other_class" in c else "")),
                             fontsize=9)
                ax.set_xlabel("cosine similarity")
                ax.set_ylabel("density")
                ax.legend(fontsize=7, loc="upper left")
        dv = entry.get("divergence")
        if not has_div:
            continue
        ax = axes[rows - 1, j]
        if not dv:
            ax.axis("off")
            continue
        per = dv.get("per_class", {})
        names = list(per) or ["all"]
        vals = [per[k]["js"] for k in names] if per else [dv["js"]]
        agree = [per[k]["argmax_agreement"] for k in names] if per else [dv["argmax_agreement"]]
        ax.bar(range(len(names)), vals, color="tab:purple", alpha=0.8, label="JS divergence (bits)")
        ax.plot(range(len(names)), agree, "o-", color="tab:orange", ms=3, lw=1, label="argmax agreement")
        ax.axhline(dv["js"], color="tab:purple", lw=0.8, ls="--")
        ax.set_xticks(range(len(names)), [shown(n) for n in names], rotation=60, fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_title(title(f"{name}{_n_text(entry, dv)}", f"JS {dv['js']:.2f} bits, KL {dv['kl_ab']:.2f} / {dv['kl_ba']:.2f}, "
                           f"agree {dv['argmax_agreement']:.0%}"), fontsize=9)
        ax.set_xlabel("true class")
        if j == 0:
            ax.legend(fontsize=7, loc="upper left")
    by = describe_model(result)
    fig.suptitle(shown(f"Modality matching on {result['split']} ({result['n']} samples; {by})"), fontsize=10)
    if note:
        fig.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=7, color="dimgray", wrap=True)
    return save_png(fig, path, bottom=0.3 / fig.get_figheight() if note else 0.0)


def text_style(texts: Iterable[str]) -> tuple[dict[str, Any], Callable[[str], str], str | None]:
    """How a figure draws ``texts`` (class names, titles) as the recipe preview draws captions
    (:func:`mmdata.augment.preview.figure_text_style`): matplotlib settings adding the CJK font
    :func:`mmdata.augment.preview.cjk_font` finds (DejaVu Sans first, the CJK font for the glyphs it lacks), the
    function that makes a text drawable, and a footnote. Without a CJK font each CJK run becomes a visible
    ``⟦CJK ×N⟧`` and the footnote says which font to install; a script or emoji no font has (Devanagari, Thai,
    👩‍👩‍👧) becomes ``⟦Devanagari ×6⟧`` / ``⟦U+1F469 ...⟧``, with a warning — never silent empty boxes (QA28
    i18n #6). ASCII texts leave the figure as it was (no font scan).

    Example:
        >>> rc, shown, note = text_style(["zero", "one"])
        >>> rc, shown("zero"), note
        ({}, 'zero', None)
    """
    from mmdata.augment.preview import figure_text_style

    return figure_text_style(texts, "match", find_font=cjk_font)


def save_png(fig: Any, path: Path, bottom: float = 0.0) -> Path:
    """Write a matplotlib figure as a PNG atomically (creating the folder) and close it (``bottom``:
    a band kept free for a footnote, as a fraction of the height)."""
    fig.set_dpi(DPI)  # lay out at the resolution saved: text does not scale exactly with the dpi
    fig.tight_layout(rect=(0, bottom, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    atomic_write_bytes(path, buf.getvalue())
    return path
