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
    run: Annotated[Path, typer.Argument(help="Output folder of `mmdata train` (metrics.json + model.pt), or a "
                                             "predictions file (.parquet / .csv with a key column) or a folder holding "
                                             "predictions.parquet without model.pt (a submission: scored, not run).")],
    data: DataUrl,
    split: Annotated[Optional[str], typer.Option(
        help="Split of DATA to score, or several read as one (3,4). Default: test, or DATA's only split if it has no "
             "test split.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Folder for metrics.json and predictions.parquet (with class "
                                                     "names), written together; default: nothing written. Not RUN.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per batch. NLL, ECE and probabilities depend on it "
                                                        "(and on --workers, --threads, --device) in their last digits; "
                                                        "accuracy does not. metrics.json settings records them.")] = 64,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N.")] = "cpu",
    workers: Annotated[int, typer.Option("--workers", "-j", min=0, help="DataLoader worker processes.")] = 0,
    threads: Annotated[Optional[int], typer.Option(min=1, help="torch intra-op threads (default: torch's).")] = None,
    by: Annotated[Optional[list[str]], typer.Option("--by", help="Scores per group of a per-sample field: an "
                  "index.parquet column (split, audio_sample_rate, label, ...) or a metadata key (shard --meta snr: --by "
                  "snr, or json.snr); per group: samples, accuracy with its Wilson 95% interval, balanced accuracy, "
                  "small groups marked, then the worst / best group and the gap (a --target run: its own scores per "
                  "group, micro F1 / macro F1 / mAP or MAE / RMSE, ranked by micro F1 / MAE; a group with no "
                  "positive label and none predicted has no micro F1, null, not ranked; every group scoring the same: "
                  "'no gap', summary.tied in --json). Several (--by sex --by site, or sex,site): one group per "
                  "combination. Number fields (text '56' == '56.0'; n/a, ?, blank: missing) "
                  "are grouped by number, in equal-count bins when many (--bins). Values differing only in case / "
                  "spaces are warned of. In --json and metrics.json as by_value.")] = None,
    bins: Annotated[Optional[int], typer.Option(min=0, help="--by a number field: its equal-count bins (default 4 "
                    "where it has more than 10 distinct numbers, 20 if all whole; 0: one group per number).")] = None,
    robustness: Annotated[bool, typer.Option("--robustness", help="Also the accuracy with each modality removed and "
                                                                  "under corruption, as `mmdata train` reports it.")] = False,
    on_error: Annotated[str, typer.Option("--on-error", callback=one_of("raise", "skip"), help="A sample that does not "
                        "decode: raise (stop, naming it) or skip (leave it out, counted).")] = "raise",
    unknown: Annotated[str, typer.Option("--unknown-classes", callback=one_of("wrong", "leave-out", "error"), help=
                       "Labelled samples of a class the run does not know: wrong (scored as errors, every labelled "
                       "sample counts), leave-out (score the run's classes only, warned) or error (refuse).")] = "wrong",
    train_data: Annotated[Optional[Path], typer.Option("--train-data", help="The dataset the run trained on, for the "
                          "in-sample check (else found when it is DATA, beside DATA or through --split-from).")] = None,
    plugin: PluginOpt = None,
    ci: Annotated[Optional[float], typer.Option(help="Submissions: the confidence level of the bootstrap intervals "
                                                     "(0 for none). Default 0.95.")] = None,
    bootstrap: Annotated[int, typer.Option(min=100, help="Submissions: bootstrap resamples of the intervals.")] = 1000,
    seed: Annotated[int, typer.Option(help="Submissions: the bootstrap's seed (same seed, same interval).")] = 0,
    missing: Annotated[str, typer.Option(callback=one_of("error", "wrong"), help="Submissions: a labelled sample "
                       "without a prediction: error (refuse the file) or wrong (scored as a wrong prediction, counted).")
                       ] = "error",
    class_map: Annotated[Optional[list[str]], typer.Option("--class-map", help="NAME=DATA_NAME: a class of the run "
                         "(RUN_NAME) or of the predictions (SUBMISSION_NAME) spelt otherwise than DATA's (repeat it, or "
                         "a=b,c=d; a name with a comma: give that pair alone).")
                         ] = None,
    compare: Annotated[Optional[Path], typer.Option(help="Submissions: another predictions file or folder scored on the "
                       "same samples: paired differences (bootstrap interval and p) and McNemar's exact test.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Score a trained run on a split of any dataset: accuracy, macro F1, balanced accuracy, NLL, ECE, AUROC, AUPRC
    and per-class scores, as metrics.json holds them for test. DATA's classes are matched to the run's by name (a dataset sharded
    on its own numbers them in its own order); samples of a class the run does not know are counted and scored as
    wrong (--unknown-classes).
    Samples the run trained on (or chose its epoch on) are counted and warned of: their scores are in-sample.
    The same --batch-size, --workers, --threads and --device give the same bytes; other values change NLL, ECE and
    the probabilities in their last digits (float32 sums over a batch), never accuracy: metrics.json's settings
    records the four.

    RUN may instead be a submission — a predictions file (key -> class name, or probabilities) or a folder of
    `mmdata evaluate --out` — scored against DATA's labels (the hidden labels of a benchmark): joined on key, every
    labelled sample of the split scored (a missing key refused, or wrong with --missing wrong; a duplicate refused;
    extra keys and unknown class names counted), with bootstrap confidence intervals; --compare OTHER adds the paired
    comparison of the two submissions (docs/benchmark.md)."""
    from mmdata.train.score_run import evaluate_run
    from mmdata.train.loop import TrainWarning
    from mmdata.train.submissions import is_predictions

    if is_predictions(run):
        if out is not None or robustness:
            raise typer.BadParameter("RUN is a predictions file (a submission): nothing is run or written; keep its "
                                     "scores with --json > scores.json", param_hint="--out / --robustness")
        if by or bins is not None:
            raise typer.BadParameter("RUN is a predictions file (a submission): --by scores a run; join the file with "
                                     "the field instead", param_hint="--by")
        if train_data is not None or unknown != "wrong":  # a run's options: said, not ignored
            raise typer.BadParameter("RUN is a predictions file (a submission): there is no run whose training data "
                                     "or classes these options concern (a submission's unknown class names are "
                                     "counted and scored as wrong; --class-map renames them)",
                                     param_hint="--train-data / --unknown-classes")
        _submission(run, data, split, ci, bootstrap, seed, missing, class_map, compare, json_)
        return
    if bins is not None and not by:
        raise typer.BadParameter("--bins bins the number field of --by; give --by FIELD", param_hint="--bins")
    if compare is not None or ci is not None:
        raise typer.BadParameter("--ci and --compare score predictions files: write the run's with --out "
                                 "DIR, then `mmdata evaluate DIR DATA --ci 0.95` (docs/benchmark.md)",
                                 param_hint="--ci / --compare")
    plugins(plugin)
    with warnings.catch_warnings():  # the result's warnings are printed below, once each; other library ones show
        warnings.simplefilter("ignore", TrainWarning)
        r = evaluate_run(run, data, split=split, out=out, batch_size=batch_size, device=device, num_workers=workers,
                         robustness=robustness, on_error=on_error, unknown=unknown, class_map=_class_map(class_map),
                         train_data=train_data, threads=threads, by=_by_list(by), bins=bins)
    if json_:
        print_json(r)
        for w in r.get("warnings", []):  # stderr, with --json too
            warn(w)
        return
    from mmdata.cli.train import CLASS_ROWS, LABEL_ROWS, SCORE_COLUMNS, _num, _ratio, _scores_table, ranking_line

    kind = (r.get("target") or {}).get("kind", "classes")
    split = r["split"]  # the one scored (the default: test, or the data's only split)
    n = r["samples"][split]
    what = f" predicting {r['target']['key']!r} ({kind})" if kind != "classes" else ""
    # names from the dataset and the command line (run, data, split, target key) are text, never markup (QA40
    # hostile #1)
    t = _scores_table(kind, escape(f"{card_text(r['run'])}{card_text(what)} on {card_text(r['data'])}"))
    how = "scored as wrong" if r.get("unknown_classes_scored") == "wrong" else "left out"
    unknown_note = f", {n['unknown_class']} of unknown classes {how}" if n.get("unknown_class") else ""
    skipped = f" ({n['skipped']} skipped)" if n.get("skipped") else ""
    t.add_row(escape(card_text(split)), *(_num(r["scores"].get(k)) for k in SCORE_COLUMNS[kind]),
              f"{n['scored']} of {n['samples']}{unknown_note}{skipped}")
    console.print(t)
    ranked = ranking_line({split: r["scores"]}) if kind == "classes" else None
    if ranked:
        console.print(ranked, highlight=False)
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
                   title=f"{escape(card_text(split))}, per {noun} (the run's and the data's unknown ones){shown}"
                   if r.get("unknown_classes") and r.get("unknown_classes_scored") == "wrong"
                   else f"{escape(card_text(split))}, per {noun} of the run{shown}")
        for name in names:
            c = per[name]
            pc.add_row(*(escape(v) for v in (card_text(name), *(_ratio(c[k]) for k in (
                "precision", "recall", "f1", *(("ap",) if kind == "multilabel" else ()))), str(c["support"]))))
        console.print(pc)
        if len(names) < len(per):
            console.print(f"... and {plural(len(per) - len(names), 'more ' + noun, 'more classes' if noun == 'class' else None)};"
                          " every one: --json, or metrics.json (per_class) with --out DIR", highlight=False)
    if r.get("by_value"):
        _by_value_table(r["by_value"], escape(card_text(split)))
    rob = r.get("robustness", {})
    metric = rob.get("metric", "accuracy")
    if rob.get("missing"):
        console.print(f"{metric} with a modality removed: "
                      + ", ".join(f"-{k}: {_num(v)}" for k, v in rob["missing"].items()), highlight=False)
    if rob.get("corruption"):
        console.print(("corruption AUC: " if metric != "mae" else "corruption AUC of the MAE curve (lower is better): ")
                      + ", ".join(f"{k}: {_num(v['auc'])}" for k, v in rob["corruption"].items()))
    for k, why in rob.get("not_applicable", {}).items():
        console.print(f"robustness -{k}: n/a ({escape(why)})", highlight=False)
    if r.get("ids_match") is False:
        console.print(f"classes matched by name: {escape(card_text(r['data']))}'s class ids are not the run's "
                      "(class_map in --json)", highlight=False)
    if (r.get("in_sample") or {}).get("by", "") is None:
        # said, not warned: an outside test set is the usual case, but a reader of the README expects the check
        why = r.get("in_sample_not_done") or "no relation to the run's dataset found"
        console.print(f"in-sample check: not done for {escape(card_text(r['data']))}: {escape(why)} "
                      "(in_sample.by is null)",
                      highlight=False)
    if out is not None:
        console.print(f"outputs in {escape(one_line_path(out))}", highlight=False)
    for w in r.get("warnings", []):
        warn(w)


#: the per-value rows printed (every one is in --json and metrics.json; the missing groups always are)
BY_ROWS = 60


def _by_list(by: Optional[list[str]]) -> Optional[str | list[str]]:
    """--by as evaluate_run takes it: one field (its text, which may be "a,b") or the repeated option's list."""
    if not by:
        return None
    return by[0] if len(by) == 1 else by


def _by_text(v: object, binned: bool = False, kind: str | None = None, text: str | None = None) -> str:
    """A group's value as the table shows it: inspect's :func:`~mmdata.shards.inspect.group_text` (the missing
    group as (missing), a list / object as its JSON text, an infinite number as inf, a bin's label as it is), but
    text quoted only where it could be mistaken for another value — blank at an end, empty, 'null', a number's or a
    bool's spelling ('-0.0' beside the number -0.0, 'True' beside the bool True: QA40 hostile #2), a list's or an
    object's — so plain class names and sites read bare. ``kind``: the row's ``type`` (list, object, number);
``text``: its ``text`` (a list holding inf, apart from a list of the string "Infinity").

    Example:
        >>> _by_text(True), _by_text("True"), _by_text(-0.0), _by_text("-0.0"), _by_text(None), _by_text("F")
        ('True', "'True'", '-0.0', "'-0.0'", '(missing)', 'F')
        >>> _by_text({"a": 1}, kind="object"), _by_text("inf", kind="number"), _by_text("inf")
        ('{"a": 1}', 'inf', "'inf'")
        >>> _by_text(["Infinity"], kind="list", text="[Infinity]"), _by_text(["Infinity"], kind="list")
        ('[Infinity]', '["Infinity"]')
    """
    from mmdata.shards.inspect import group_text

    if (isinstance(v, str) and not binned and kind is None and not (
            v != v.strip() or not v or v.lower() in ("null", "none", "(missing)", "true", "false") or "\n" in v
            or v[:1] in "[{" or _number_like(v))):
        return v
    return group_text({"value": v, **({"type": kind} if kind else {}), **({"bin": True} if binned else {}),
                       **({"text": text} if text else {})})


def _number_like(text: str) -> bool:
    """Whether ``text`` reads as a number (Python's or JSON's spelling, nan / inf included)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _by_value_table(got: dict, split: str) -> None:
    """Print evaluate_run's ``by_value``: per group the counts, accuracy with its interval and balanced accuracy;
    the missing group(s) always shown however many values (QA39 fairness #2); then the worst / best line."""
    from mmdata.cli.train import SCORE_COLUMNS, _ratio

    kind = got.get("kind", "classes")  # a --target run: its own scores per group (QA40 medical #2)
    rows = got["values"]
    fields = got.get("fields") or [got["field"]]
    # several fields: only the all-missing combination is kept past the cap, and the rows stay in their order (a
    # negative slice printed nearly every row: QA39 review evaluate #5)
    missing = [r for r in rows if (r.get("missing") or r["value"] is None) if len(fields) == 1
               or all(v is None for v in r["value"])]
    rest = [r for r in rows if r not in missing][:max(0, BY_ROWS - len(missing))]
    keep = {id(r) for r in missing} | {id(r) for r in rest}
    shown = rows if len(rows) <= BY_ROWS else [r for r in rows if id(r) in keep]
    level = got.get("ci_level", 0.95)
    small = got.get("small_group")
    where = "index column" if got["from"] == "index" else "metadata" if len(fields) == 1 else "fields"
    # a field's name comes from the dataset: escaped, never read as markup (QA40 hostile #1)
    names = [escape(card_text(f)) for f in fields]
    scored = {k: SCORE_COLUMNS[kind][k] for k in BY_SCORES[kind]} if kind != "classes" else {}
    what = "accuracy" if kind == "classes" else " / ".join(scored.values())
    heads = ("accuracy", f"{level:.0%} interval", "balanced acc.") if kind == "classes" else tuple(scored.values())
    t = table(*names, "samples", "scored", *heads,
              title=f"{split}, {what} by {' x '.join(names)} ({where})"
              + (f" ({len(shown)} of {len(rows)} groups shown, the missing ones included)" if len(shown) < len(rows)
                 else ""))
    for row in shown:
        values = row["value"] if len(fields) > 1 else [row["value"]]
        ci = row.get("ci")
        mark = " *" if row.get("small") and row["scored"] else ""
        cells = [_by_text(v, *how) for v, how in zip(values, _binned(row, len(fields)))]
        if row.get("markers"):
            cells[-1 if len(fields) == 1 else next((i for i, v in enumerate(values) if v is None), -1)] += (
                " (" + ", ".join(f"{m!r}: {n}" for m, n in row["markers"].items()) + ")")
        counted = (str(row["samples"]), f"{row['scored']}{mark}")
        if kind != "classes":
            t.add_row(*(escape(card_text(c)) for c in cells), *counted,
                      *(_ratio((row.get("scores") or {}).get(k)) for k in scored))
            continue
        t.add_row(*(escape(card_text(c)) for c in cells), *counted,
                  _ratio(row["accuracy"]), f"[{_ratio(ci[0])}, {_ratio(ci[1])}]" if ci else "-",
                  _ratio(row.get("balanced_accuracy")))
    console.print(t)
    if len(shown) < len(rows):
        console.print(f"... and {len(rows) - len(shown)} more groups not shown (the missing group is above); every "
                      "one: --json, or metrics.json (by_value) with --out DIR; fewer: --bins N for a number field",
                      highlight=False)
    if small and any(r.get("small") and r["scored"] for r in rows):
        n = sum(1 for r in rows if r.get("small") and r["scored"])
        console.print(f"* {plural(n, 'group')} with fewer than {small} scored samples: "
                      + ("accuracy is noisy there (see the interval)" if kind == "classes" else
                         "the scores are noisy there"), highlight=False)
    for f, info in (got.get("numeric") or {}).items():
        said = [f"{card_text(f)}: read as numbers"]
        if info.get("edges"):
            said.append(f"in {len(info['edges']) - 1} equal-count bins (--bins N; 0: one group per number)")
        if info.get("markers"):
            said.append("counted as missing: " + ", ".join(f"{m!r} ({n})" for m, n in info["markers"].items()))
        if info.get("words"):  # QA39 review evaluate #1
            said.append("not numbers, each its own group: "
                        + ", ".join(f"{m!r} ({n})" for m, n in info["words"].items()))
        console.print(escape("; ".join(card_text(x) for x in said)), highlight=False)
    for f, words in (got.get("not_numeric") or {}).items():
        shown_words = (", ".join(f"{m!r} ({n})" for m, n in list(words.items())[:6])
                       + (", ..." if len(words) > 6 else ""))
        console.print(escape(
            f"{card_text(f)}: read as text, one group per value, although most samples hold numbers: "
            f"{card_text(shown_words)} are neither numbers nor NA markers (n/a, ?, unknown, ...); fix them in the "
            "manifest to get number bins"), highlight=False)
    if got.get("bins_unused"):
        console.print(escape(f"--bins: not used for {card_text(', '.join(got['bins_unused']))} (not read as numbers)"),
                      highlight=False)
    if got.get("undefined_micro_f1"):
        # 0 / 0: no positive label in the group and none predicted (a healthy / "No Finding" group), not a score of 0
        # (QA40 review eval #2)
        n = len(got["undefined_micro_f1"])
        console.print(f"micro F1: undefined (0 / 0, shown —) for {plural(n, 'group')} with no positive label and none "
                      "predicted: not ranked; --json has their subset_accuracy and hamming (by_value.undefined_micro_f1 "
                      "names them)",
                      highlight=False)
    s = got.get("summary")
    if s:
        metric = s.get("metric", "accuracy")
        label = "" if metric == "accuracy" else f"{SCORE_COLUMNS[kind].get(metric, metric)} "

        def val(g: dict) -> str:
            # each value cut on its own, mmdata's sentence never (QA40 hostile #7)
            v = g["value"]
            many = isinstance(v, list) and len(fields) > 1
            return " x ".join(card_text(_by_text(x, *how))
                              for x, how in zip(v if many else [v], _binned(g, len(fields))))

        def one(g: dict) -> str:
            return f"{val(g)} ({label}{_ratio(g.get(metric))}, {g['scored']} scored)"

        if s.get("tied"):  # one group would be both the worst and the best (QA40 review eval #6)
            console.print(escape(f"no gap: every group scores {label}{_ratio(s.get('score'))} ({s['groups']} groups, "
                                 f"over {s['over']})"), highlight=False)
            return
        console.print(escape(
            f"worst group: {one(s['worst'])}; best: {one(s['best'])}; gap {_ratio(s['gap'])}"
            + (f", ratio {_ratio(s['ratio'])}" if s.get("ratio") is not None else "") + f" (over {s['over']})"),
            highlight=False)


#: a --target run's scores per group in the table (every one is in --json: by_value.values[].scores)
BY_SCORES = {"multilabel": ("micro_f1", "macro_f1", "map"), "regression": ("mae", "rmse")}


def _binned(row: dict, n: int) -> list[tuple[bool, str | None, str | None]]:
    """Per field, whether ``row``'s value is a bin's label ("[20, 30)", said as it is), its ``type`` (list,
    object, number: an infinite number ``"inf"``) and ``text`` (a list holding inf), :func:`_by_text`'s
    ``binned``, ``kind`` and ``text``."""
    b, t, x = row.get("bin"), row.get("type"), row.get("text")
    bins = [False] * n if b is None else [y is not None for y in b] if n > 1 else [True]
    types = t if isinstance(t, list) else [t] * n
    texts = x if isinstance(x, list) else [x] * n
    return list(zip(bins, types, texts))


def _submission(run: Path, data: str, split: Optional[str], ci: Optional[float], bootstrap: int, seed: int,
                missing: str, class_map: Optional[list[str]], compare: Optional[Path], json_: bool) -> None:
    """Score a predictions file (and compare it with another): parse, call the library, print."""
    from mmdata.train.submissions import CI_METRICS, compare_predictions, score_predictions
    from mmdata.cli.train import _num

    level = 0.95 if ci is None else ci
    if compare is not None:
        if not level:
            raise typer.BadParameter("a paired comparison needs an interval level in (0, 1)", param_hint="--ci")
        r = compare_predictions(run, compare, data, split, missing=missing, class_map=class_map, ci=level,
                                n_boot=bootstrap, seed=seed)
        if json_:
            print_json(r)
        else:
            sp = r["split"]
            t = table("metric", "A", "B", "A - B", f"{level:g} interval", "p (bootstrap)",
                      title=escape(f"A: {card_text(r['a']['predictions'])} vs B: {card_text(r['b']['predictions'])} "
                                   f"on {card_text(r['data'])} ({card_text(sp)}, {r['samples']} samples, paired)"))
            for m in CI_METRICS:
                d = r["difference"][m]
                t.add_row(m, _num(d["a"]), _num(d["b"]), _num(d["diff"]), f"[{_num(d['ci'][0])}, {_num(d['ci'][1])}]",
                          _num(d["p"]))
            console.print(t)
            mc = r["mcnemar"]
            console.print(f"McNemar exact: {mc['a_only']} samples right only by A, {mc['b_only']} only by B: "
                          f"p = {mc['p']:.4g}", highlight=False)
        for w in r["warnings"]:
            warn(w)
        return
    r = score_predictions(run, data, split, missing=missing, class_map=class_map, ci=level or None,
                          n_boot=bootstrap, seed=seed)
    if json_:
        print_json(r)
        for w in r["warnings"]:
            warn(w)
        return
    from mmdata.cli.train import CLASS_ROWS, SCORE_COLUMNS, _ratio, _scores_table, ranking_line

    sp = r["split"]
    n = r["samples"][sp]
    cols = SCORE_COLUMNS["classes"]
    t = _scores_table("classes", escape(f"{card_text(r['predictions'])} on {card_text(r['data'])}"))
    notes = [f"{n[k]} {k.replace('_', ' ')}" for k in ("missing", "unknown_prediction", "no_prediction") if n[k]]
    t.add_row(escape(card_text(sp)), *(_num(r["scores"].get(k)) for k in cols),
              f"{n['scored']} of {n['samples']}" + (f" ({', '.join(notes)}: wrong)" if notes else ""))
    console.print(t)
    ranked = ranking_line({sp: r["scores"]})  # AUROC / AUPRC only when the file has probabilities
    if ranked:
        console.print(ranked, highlight=False)
    c = (r.get("ci") or {}).get(sp)
    if c:
        console.print(f"{c['level']:g} intervals ({c['method']}, {c['bootstrap']} resamples, seed {c['seed']}): "
                      + ", ".join(f"{m} [{_num(c[m][0])}, {_num(c[m][1])}]" for m in CI_METRICS)
                      + f"; accuracy (Wilson) [{_num(c['accuracy_wilson'][0])}, {_num(c['accuracy_wilson'][1])}]",
                      highlight=False)
    per = r["per_class"][sp]
    names = sorted((k for k in per if per[k]["support"] or per[k]["f1"] is not None),
                   key=lambda k: (-per[k]["support"], k))[:CLASS_ROWS]
    pc = table("class", "precision", "recall", "F1", "support",
               title=escape(f"{card_text(sp)}, per class of {card_text(r['data'])}"))
    for name in names:
        v = per[name]
        pc.add_row(escape(card_text(name)), *(_ratio(v[k]) for k in ("precision", "recall", "f1")), str(v["support"]))
    console.print(pc)
    if n["extra"]:
        console.print(escape(f"{n['extra']} predicted keys not in {card_text(sp)}: "
                             + ", ".join(f"{card_text(k)}: {v}" for k, v in r["extra_keys"].items())), highlight=False)
    for w in r["warnings"]:
        warn(w)


def _class_map(pairs: Optional[list[str]]) -> dict[str, str] | None:
    """--class-map RUN=DATA (repeated or comma-separated) as a dict, the syntax of a submission's map (one parser:
    a name holding a comma is given as its own pair); a pair without '=' or a name mapped twice is refused."""
    from mmdata.train.submissions import parse_class_map

    return parse_class_map(pairs) or None


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
    app.command()(evaluate)
