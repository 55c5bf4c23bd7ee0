"""`mmdata train`: the reference fusion trainer."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from mmdata.cli.common import (DataUrl, JsonFlag, PluginOpt, Seed, console, load_pandas_for_arrow, plugins, plural, print_json,
                               card_text, encodable, one_line_path, recipe_help, shipped, split_option, stopped_as_exit, table, warn)

Derived = ("Default: derived from index.parquet (printed at start). A --recipe's own normalize list for the "
           "modality sets it instead: a given value it would override is refused.")


def _image_size(value: Optional[str]) -> Any:
    if value is None:
        return None
    parts = value.lower().replace("x", ",").split(",")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise typer.BadParameter(f"expected N or HxW, got {value!r}", param_hint="'--image-size'") from None
    if len(nums) not in (1, 2) or min(nums) < 1:
        raise typer.BadParameter(f"expected N or HxW with every side >= 1, got {value!r}", param_hint="'--image-size'")
    return nums[0] if len(nums) == 1 else nums


def _channels(value: Optional[int]) -> Optional[int]:
    if value is not None and value not in (1, 3):
        raise typer.BadParameter(f"expected 1 (greyscale) or 3 (RGB), got {value}")
    return value


def _seconds(value: Optional[float]) -> Optional[float]:
    if value is not None and not value > 0:
        raise typer.BadParameter(f"expected a duration > 0 s, got {value}")
    return value


def _fraction(value: float) -> float:
    # typer's min= / max= can only show and check a closed range; 0 labels leave nothing to train on
    if not 0 < value <= 1:
        raise typer.BadParameter(f"expected a fraction in (0, 1] (0.0<x<=1.0), got {value}")
    return value


def _cache(value: str) -> Any:
    if value not in ("auto", "true", "false"):
        raise typer.BadParameter(f"expected auto, true or false, got {value!r}")
    return {"true": True, "false": False}.get(value, value)


def train(
    data: DataUrl,
    fusion: Annotated[str, typer.Option(help="early, concat, late, mean, max, gated, attention, cross_attention, tensor, low_rank, "
                                             "hierarchical, two_tower.")] = "concat",
    fusion_arg: Annotated[Optional[list[str]], typer.Option("--fusion-arg", help="KEY=VALUE fusion option, repeatable: "
                          "order='(image+audio)+text' (hierarchical); towers='image|audio+text', interaction=mlp|dot|bilinear (two_tower).")] = None,
    modalities: Annotated[Optional[str], typer.Option(help="Comma-separated: image,audio,text (one = unimodal baseline); each must be "
                          "in some training samples. Default: the modalities the training split has (printed at start).")] = None,
    epochs: Annotated[int, typer.Option(min=0, help="Training epochs; the reported model is the best epoch's "
                                                   "(highest val accuracy; with --target, micro-F1 / lowest MAE). 0 with --pretrain contrastive: pre-train "
                                                   "the encoders alone (no labels needed; contrastive.pt and retrieval).")] = 15,
    seed: Seed = 0,
    recipe: Annotated[Optional[Path], typer.Option("--recipe", "-r", help=recipe_help("Augmentation recipe YAML"))] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder: metrics.json, predictions.parquet, model.pt. A new or empty "
                                                     "folder, or an earlier run's (its files are replaced); not a dataset's folder.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per training batch.")] = 64,
    lr: Annotated[float, typer.Option(help="Learning rate of --optimizer.")] = 2e-3,
    weight_decay: Annotated[float, typer.Option(min=0.0, help="Weight decay of --optimizer.")] = 1e-4,
    optimizer: Annotated[str, typer.Option(help="adamw or sgd.")] = "adamw",
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    label_noise: Annotated[float, typer.Option(min=0.0, max=1.0, help="Fraction of training labels flipped (control): "
                         "exactly F x n of the n labelled training samples (half rounded up), chosen by --seed, each to another "
                         "class with training samples (and every balance copy of them); metrics.json label_noise lists "
                         "them (the first 1000 and a digest beyond).")] = 0.0,
    threads: Annotated[Optional[int], typer.Option(min=1, help="torch intra-op threads.")] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", min=0, help="DataLoader worker processes per split. The samples of "
                       "each epoch and each sample's augmentation do not depend on it, but batch composition (each worker "
                       "makes its own batches) and so the training and the metrics do: keep it fixed to reproduce a run.")] = 0,
    cache: Annotated[str, typer.Option(help="Keep decoded splits in memory: auto (when they fit --cache-budget-mb), true, false.")] = "auto",
    cache_budget_mb: Annotated[float, typer.Option(min=0.0, help="Memory budget of --cache auto, MiB.")] = 256.0,
    image_size: Annotated[Optional[str], typer.Option(help=f"Model image size, N or HxW. {Derived}")] = None,
    channels: Annotated[Optional[int], typer.Option(callback=_channels, help=f"Image channels, 1 or 3. {Derived}")] = None,
    sample_rate: Annotated[Optional[int], typer.Option(min=1, help=f"Audio rate, Hz. {Derived}")] = None,
    max_seconds: Annotated[Optional[float], typer.Option(callback=_seconds, help=f"Audio duration, s (pad / trim). {Derived}")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(min=1, help=f"Tokens per caption. {Derived}")] = None,
    no_robustness: Annotated[bool, typer.Option("--no-robustness", help="Skip the robustness evaluation.")] = False,
    pretrain: Annotated[Optional[str], typer.Option(help="Pre-train the encoders first: contrastive (CLIP-style InfoNCE per modality pair).")] = None,
    pretrain_epochs: Annotated[int, typer.Option(min=1, help="Epochs of pre-training.")] = 10,
    pretrain_arg: Annotated[Optional[list[str]], typer.Option("--pretrain-arg", help="KEY=VALUE pre-training option, repeatable: "
                            "exclude_same_class=true, dim=32, temperature=0.07, batch_size, lr.")] = None,
    probe: Annotated[bool, typer.Option("--probe", help="Linear probe: freeze the encoders, train one linear layer.")] = False,
    label_fraction: Annotated[float, typer.Option(callback=_fraction, help="Fraction of training labels used: each kept with "
                              "probability F, drawn per sample and seed (not stratified). [0.0<x<=1.0]")] = 1.0,
    train_split: split_option("train_split") = None,  # type: ignore[valid-type]
    val_split: split_option("val_split") = None,  # type: ignore[valid-type]
    test_split: split_option("test_split") = None,  # type: ignore[valid-type]
    on_error: Annotated[str, typer.Option("--on-error", help="A sample that does not decode (a float WAV holding NaN): raise "
                        "(stop, naming it) or skip (leave it out of training and the scores, counted in metrics.json "
                        "skipped).")] = "raise",
    target: Annotated[Optional[str], typer.Option(help="Predict a metadata key (a --meta column of the manifest) instead of "
                      "the class label: label lists (or one name per sample) train a multi-label model, numbers a "
                      "regression. A sample without the key is unlabelled.")] = None,
    plugin: PluginOpt = None,
    json_: JsonFlag = False,
) -> None:
    """Train the reference fusion model on a dataset with image, audio and/or text and train/val/test splits
    (other fields, such as .npy arrays: your own trainer, docs/ablation.md "Your own trainer"); writes
    metrics.json, predictions.parquet and model.pt to --out."""
    from mmdata.train import train as run
    from mmdata.train.loop import TrainWarning

    plugins(plugin)
    recipe = shipped(recipe)
    mods = None if modalities is None else [s.strip() for s in modalities.split(",") if s.strip()]
    stopped = (f"its outputs in {out} are written only when it finishes" if out else "nothing was written")
    with stopped_as_exit("mmdata train", f"{stopped}; rerun the same command to train again"):
        load_pandas_for_arrow()
        with warnings.catch_warnings():  # the result's warnings are printed below, once each
            warnings.simplefilter("ignore", TrainWarning)
            m = run(data, fusion=fusion, modalities=mods, epochs=epochs, seed=seed,
                    recipe=recipe, out=out, batch_size=batch_size, lr=lr, weight_decay=weight_decay, optimizer=optimizer,
                    device=device, label_noise=label_noise, threads=threads, eval_robustness=not no_robustness,
                    progress=True, num_workers=workers, cache=_cache(cache), cache_budget_mb=cache_budget_mb,
                    image_size=_image_size(image_size), channels=channels, sample_rate=sample_rate, max_seconds=max_seconds,
                    max_tokens=max_tokens, fusion_args=_key_values(fusion_arg, "--fusion-arg"), pretrain=pretrain,
                    pretrain_epochs=pretrain_epochs, pretrain_args=_key_values(pretrain_arg, "--pretrain-arg"), probe=probe,
                    label_fraction=label_fraction, on_error=on_error, train_split=train_split, val_split=val_split,
                    test_split=test_split, target=target, plugins=plugin)
    if not m:  # non-zero DDP rank
        return
    if json_:
        print_json(m)  # a metric without a value (no labelled sample) is null
        for w in m.get("warnings", []):  # stderr, with --json too (QA26 F12)
            warn(w)
        return
    if "test" not in m:  # --epochs 0: pre-training alone
        _retrieval_lines(m)
        console.print(f"pre-trained the encoders only (--epochs 0), {m['n_params']:,} parameters, {m['wall_s']:.1f} s"
                      + (f"; contrastive.pt in {escape(one_line_path(out))}" if out else ""), highlight=False)
        for w in m.get("warnings", []):
            warn(w)
        return
    kind = (m.get("target") or {}).get("kind", "classes")
    columns = SCORE_COLUMNS[kind]
    what = f" predicting {m['target']['key']!r} ({kind})" if kind != "classes" else ""
    used = m["config"]["modalities"]
    alone = " (one modality: encoder + head)" if len(used) == 1 else ""  # not a cross-modal model, whatever its name
    t = _scores_table(kind, f"{fusion} on {', '.join(used)}{alone}{what}")
    missing = []
    for split in ("val", "test"):
        s, n = m[split], m["samples"][split]
        named = m["config"].get("splits", {}).get(split)  # --val-split / --test-split: the split that played it
        named = named if named != [split] else None  # the default's own names: said by the row's name already
        # --on-error skip: the labelled samples the scores are over, and how many the reader left out
        scored = n.get("scored", {}).get("labelled", n["labelled"])
        skipped = f" ({n['skipped']} skipped)" if n.get("skipped") else ""
        t.add_row(f"{split} ({', '.join(named)})" if named else split, *(_num(s.get(k)) for k in columns),
                  f"{scored} of {n['labelled'] + n['unlabelled']}{skipped}")
        if not scored:
            missing.append(f"n/a: no labelled {split} sample")
    if missing:
        t.caption = "; ".join(missing)
    console.print(t)
    ranked = ranking_line({split: m[split] for split in ("val", "test")}) if kind == "classes" else None
    if ranked:
        console.print(ranked, highlight=False)
    _per_label_table(m, kind, out)
    rob = m.get("robustness", {})
    metric = rob.get("metric", "accuracy")
    if rob.get("missing"):
        console.print(f"{metric} with a modality removed: " + ", ".join(f"-{k}: {_num(v)}" for k, v in rob["missing"].items()))
    if rob.get("corruption"):
        console.print(("corruption accuracy area: " if metric != "mae" else "corruption area of the MAE curve (lower is better): ")
                      + ", ".join(f"{k}: {_num(v.get('accuracy_area', v['auc']))}" for k, v in rob["corruption"].items()))
    for k, why in rob.get("not_applicable", {}).items():
        console.print(f"robustness -{k}: n/a ({escape(why)})", highlight=False)
    _retrieval_lines(m)
    chosen = {"classes": "highest val accuracy", "multilabel": "highest val micro-F1", "regression": "lowest val MAE"}[kind]
    best, epochs = m["best_epoch"], m["config"].get("epochs") or len(m.get("history", []))
    # counted from 1, as the warnings and the ablation report say it; metrics.json and the progress lines keep the index
    console.print(f"best epoch {best + 1} of {epochs} (the \"epoch {best}:\" line; {chosen}; ties keep the earlier), "
                  f"{m['n_params']:,} parameters, "
                  f"{m['wall_s']:.1f} s" + (f"; outputs in {escape(one_line_path(out))}" if out else ""), highlight=False)
    for w in m.get("warnings", []):  # stderr, as the run's progress: stdout is the result
        warn(w)


#: labels of a multi-label target the per-label table lists (the most frequent in test; all: --json, metrics.json)
LABEL_ROWS = 20
#: classes the per-class table lists (the most frequent in test; all: --json, metrics.json): more than
#: :data:`LABEL_ROWS`, as a class table of a few dozen rows is read whole, but not hundreds (QA: 210 rows)
CLASS_ROWS = 50


def _scores_table(kind: str, title: str) -> Any:
    """The results table's columns for a target ``kind``: the split, its scores (:data:`SCORE_COLUMNS`) and
    ``labelled`` (``N of M`` samples), every header on one line at 80 columns.

    Example:
        >>> [c.header for c in _scores_table("multilabel", "concat").columns][-2:]
        ['Hamming', 'labelled']
    """
    return table("split", *SCORE_COLUMNS[kind].values(), "labelled", title=title)


def _per_label_table(m: dict, kind: str, out: Optional[Path]) -> None:
    """The test scores per class or per label of a multi-label target: every one up to :data:`CLASS_ROWS`
    (:data:`LABEL_ROWS`), else that many of the most frequent in test (most first, ties by name), then a line saying how
    many more there are and where every one's scores are (a dataset can have hundreds of classes). A class
    without a value (absent from test and never predicted: macro-F1 leaves it out) shows ``—``. A
    regression has none."""
    scores = m["per_class"]["test"]
    if not scores:
        return
    multilabel = kind == "multilabel"
    noun = "label" if multilabel else "class"
    names = list(scores)
    rows = LABEL_ROWS if multilabel else CLASS_ROWS
    if len(names) > rows:  # a class without a value (no test sample, never predicted) fills no capped row (QA)
        valued = [k for k in names if scores[k]["support"] or scores[k].get("f1") is not None]
        names = sorted(valued, key=lambda k: (-scores[k]["support"], k))[:rows]
    shown = f" (the {len(names)} most frequent of {len(scores)})" if len(names) < len(scores) else ""
    pc = table(noun, "precision", "recall", "F1", *(("AP",) if multilabel else ()),
               "support", title=f"test, per {noun}{shown}")
    for name in names:
        c = scores[name]
        pc.add_row(*(escape(v) for v in (  # an ASCII stdout: the table escapes what it cannot show
            card_text(name), *(_ratio(c[k]) for k in ("precision", "recall", "f1", *(("ap",) if multilabel else ()))),
            str(c["support"]))))
    console.print(pc)
    more = len(scores) - len(names)
    if more:
        where = (f"{escape(one_line_path(out / 'metrics.json'))} (per_class) and --json" if out is not None else
                 "--json, or metrics.json (per_class) with --out DIR")
        console.print(f"... and {plural(more, 'more ' + noun, 'more classes' if noun == 'class' else None)}, "
                      f"none more frequent in test; every {noun}'s scores: {where}", highlight=False)


def _ratio(value: float | None) -> str:
    """A per-class score: ``—`` without a value (None: a class absent from test and never predicted)."""
    if value is None:  # a stdout that cannot print the dash (ASCII) gets '-', not the escape '\u2014'
        return "—" if encodable("—") == "—" else "-"
    return _num(value)


#: the threshold-free scores said on a line under the classes table (two more columns do not fit 80: QA36)
RANK_SCORES = {"auroc": "AUROC", "auprc": "AUPRC"}


def ranking_line(scores: dict[str, dict]) -> str | None:
    """The line under a classes results table with each split's AUROC / AUPRC (``scores``: split -> its scores),
    None where no split has them.

    Example:
        >>> ranking_line({"val": {"auroc": 0.9, "auprc": None}, "test": {"auroc": 0.91234, "auprc": 0.5}})
        'threshold-free: val AUROC 0.900, AUPRC n/a; test AUROC 0.912, AUPRC 0.500'
        >>> ranking_line({"test": {"accuracy": 0.5}}) is None
        True
    """
    from mmdata.cli.common import card_text

    # a split's name is the dataset's text, never markup (QA40 review eval #3)
    parts = [f"{escape(card_text(split))} " + ", ".join(f"{name} {_num(sc.get(k))}" for k, name in RANK_SCORES.items())
             for split, sc in scores.items() if any(k in sc for k in RANK_SCORES)]
    return "threshold-free: " + "; ".join(parts) if parts else None


#: the results table's score columns per target kind (metrics key -> header)
SCORE_COLUMNS = {
    "classes": {"accuracy": "accuracy", "macro_f1": "macro F1", "balanced_accuracy": "balanced acc", "nll": "NLL",
                "ece": "ECE"},
    "multilabel": {"micro_f1": "micro F1", "macro_f1": "macro F1", "map": "mAP", "subset_accuracy": "subset acc",
                   "hamming": "Hamming"},
    "regression": {"mae": "MAE", "rmse": "RMSE", "r": "Pearson r", "r2": "R²"},
}


def _retrieval_lines(m: dict) -> None:
    """One line per modality pair of the test retrieval after pre-training."""
    for pair, r in m.get("retrieval", {}).items():
        inst = " ".join(f"{d} R@1 {_num(v['R@1'], 2)} R@5 {_num(v['R@5'], 2)} median rank {_num(v['median_rank'], 0)}"
                        for d, v in r["instance"].items())
        cls = " ".join(f"{d} {_num(v['R@1'], 2)}" for d, v in r.get("class", {}).items())
        console.print(f"retrieval {pair} (n={r['n']}, chance R@1 {_num(r['chance']['instance']['R@1'])}): {inst}"
                      + (f"; class-level R@1 {cls}" if cls else ""))


def _num(value: float | None, decimals: int = 3) -> str:
    """A metric for the tables: ``n/a`` when it has no value (NaN, e.g. no labelled sample; None), never ``nan``.

    Example:
        >>> _num(0.12345), _num(float("nan")), _num(None), _num(3.0, 0)
        ('0.123', 'n/a', 'n/a', '3')
    """
    if value is None or value != value:
        return "n/a"
    return f"{value:.{decimals}f}"


def _key_values(items: list[str] | None, option: str) -> dict[str, str]:
    from mmdata.errors import MMDataError

    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MMDataError(f"{option} {item!r}: expected KEY=VALUE, e.g. order='(image+audio)+text'")
        out[key.strip()] = value.strip()
    return out


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
    app.command()(train)
