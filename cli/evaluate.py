"""`mmdata evaluate RUN DATA`: a trained run's test scores on another dataset, its classes matched by name."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from mmdata.cli.common import (DataUrl, JsonFlag, PluginOpt, card_text, console, one_line_path, one_of, plugins, plural,
                               print_json, table, warn)


def evaluate(
    run: Annotated[Path, typer.Argument(help="Output folder of `mmdata train` (metrics.json + model.pt).")],
    data: DataUrl,
    split: Annotated[Optional[str], typer.Option(
        help="Split of DATA to score, or several read as one (3,4). Default: test, or DATA's only split if it has no "
             "test split.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Folder for metrics.json and predictions.parquet (with class "
                                                     "names), written together; default: nothing written. Not RUN.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per batch.")] = 64,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    workers: Annotated[int, typer.Option("--workers", "-j", min=0, help="DataLoader worker processes.")] = 0,
    robustness: Annotated[bool, typer.Option("--robustness", help="Also the accuracy with each modality removed and "
                                                                  "under corruption, as `mmdata train` reports it.")] = False,
    on_error: Annotated[str, typer.Option("--on-error", callback=one_of("raise", "skip"), help="A sample that does not "
                        "decode: raise (stop, naming it) or skip (leave it out, counted).")] = "raise",
    plugin: PluginOpt = None,
    json_: JsonFlag = False,
) -> None:
    """Score a trained run on a split of any dataset: accuracy, macro F1, balanced accuracy, NLL, ECE and per-class
    scores, as metrics.json holds them for test. DATA's classes are matched to the run's by name (a dataset sharded
    on its own numbers them in its own order); samples of a class the run does not know are counted and left out.
    Samples the run trained on (or chose its epoch on) are counted and warned of: their scores are in-sample."""
    from mmdata.train.score_run import evaluate_run
    from mmdata.train.loop import TrainWarning

    plugins(plugin)
    with warnings.catch_warnings():  # the result's warnings are printed below, once each; other library ones show
        warnings.simplefilter("ignore", TrainWarning)
        r = evaluate_run(run, data, split=split, out=out, batch_size=batch_size, device=device, num_workers=workers,
                         robustness=robustness, on_error=on_error)
    if json_:
        print_json(r)
        for w in r.get("warnings", []):  # stderr, with --json too
            warn(w)
        return
    from mmdata.cli.train import CLASS_ROWS, LABEL_ROWS, SCORE_COLUMNS, _num, _ratio, _scores_table

    kind = (r.get("target") or {}).get("kind", "classes")
    split = r["split"]  # the one scored (the default: test, or the data's only split)
    n = r["samples"][split]
    what = f" predicting {r['target']['key']!r} ({kind})" if kind != "classes" else ""
    t = _scores_table(kind, f"{card_text(r['run'])}{what} on {card_text(r['data'])}")
    unknown = f", {n['unknown_class']} of unknown classes left out" if n.get("unknown_class") else ""
    skipped = f" ({n['skipped']} skipped)" if n.get("skipped") else ""
    t.add_row(split, *(_num(r[split].get(k)) for k in SCORE_COLUMNS[kind]),
              f"{n['scored']} of {n['samples']}{unknown}{skipped}")
    console.print(t)
    per = r["per_class"][split]
    if per:
        noun = "label" if kind == "multilabel" else "class"
        names = list(per)
        rows = LABEL_ROWS if kind == "multilabel" else CLASS_ROWS
        if len(names) > rows:
            valued = [k for k in names if per[k]["support"] or per[k].get("f1") is not None]
            names = sorted(valued, key=lambda k: (-per[k]["support"], k))[:rows]
        shown = f" (the {len(names)} most frequent of {len(per)})" if len(names) < len(per) else ""
        pc = table(noun, "precision", "recall", "F1", *(("AP",) if kind == "multilabel" else ()), "support",
                   title=f"{split}, per {noun} of the run{shown}")
        for name in names:
            c = per[name]
            pc.add_row(*(escape(v) for v in (card_text(name), *(_ratio(c[k]) for k in (
                "precision", "recall", "f1", *(("ap",) if kind == "multilabel" else ()))), str(c["support"]))))
        console.print(pc)
        if len(names) < len(per):
            console.print(f"... and {plural(len(per) - len(names), 'more ' + noun, 'more classes' if noun == 'class' else None)};"
                          " every one: --json, or metrics.json (per_class) with --out DIR", highlight=False)
    rob = r.get("robustness", {})
    metric = rob.get("metric", "accuracy")
    if rob.get("missing"):
        console.print(f"{metric} with a modality removed: " + ", ".join(f"-{k}: {_num(v)}" for k, v in rob["missing"].items()))
    if rob.get("corruption"):
        console.print(("corruption AUC: " if metric != "mae" else "corruption AUC of the MAE curve (lower is better): ")
                      + ", ".join(f"{k}: {_num(v['auc'])}" for k, v in rob["corruption"].items()))
    for k, why in rob.get("not_applicable", {}).items():
        console.print(f"robustness -{k}: n/a ({escape(why)})", highlight=False)
    if r.get("ids_match") is False:
        console.print(f"classes matched by name: {card_text(r['data'])}'s class ids are not the run's (class_map in "
                      "--json)", highlight=False)
    if (r.get("in_sample") or {}).get("by", "") is None and r.get("run_data_fingerprint"):
        # said, not warned: an outside test set is the usual case, but a reader of the README expects the check
        console.print(f"in-sample check: not done ({card_text(r['data'])} is neither the run's dataset nor traced to "
                      "it through --split-from: in_sample.by is null)", highlight=False)
    if out is not None:
        console.print(f"outputs in {escape(one_line_path(out))}", highlight=False)
    for w in r.get("warnings", []):
        warn(w)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
    app.command()(evaluate)
