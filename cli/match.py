"""`mmdata match` and `mmdata audit-alignment`: cross-modal agreement of a trained model and of a recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from mmdata.cli.common import (DataDir, JsonFlag, PluginOpt, Seed, console, note, one_of, plugins, plural, print_json, recipe_help,
                               shipped, table, warn)

ModelDir = Annotated[Path, typer.Option("--model", help="Output folder of `mmdata train` (contrastive.pt with --pretrain contrastive).")]
Split = Annotated[str, typer.Option(help="Split to measure.")]
OnError = Annotated[str, typer.Option("--on-error", callback=one_of("raise", "skip"), help="A sample that does not decode (a float WAV holding NaN): raise "
                    "(stop, naming it) or skip (leave it out of the measurement, counted beside n).")]


def samples_line(r: dict) -> str:
    """'6 samples' or '5 samples, 1 skipped' (--on-error skip)."""
    lost = sum((r.get("skipped_samples") or {}).values())
    return plural(r["n"], "sample") + (f", {lost} skipped" if lost else "")


def match(
    data: DataDir,
    model: ModelDir,
    split: Split = "test",
    out: Annotated[Optional[Path], typer.Option(
        help="PNG path (default: MODEL/match.png for test, MODEL/match-SPLIT.png for another split; "
             "MODEL/match-data-DATA.png, MODEL/match-data-DATA-SPLIT.png on a dataset the run was not trained on).")] = None,
    on_error: OnError = "raise",
    plugin: PluginOpt = None,
    json_: JsonFlag = False,
) -> None:
    """Per modality pair: matched vs mismatched cosine (means, ROC-AUC) and KL / JS divergence of the
    per-modality predictions, overall and per class; writes a PNG."""
    from mmdata.train.matching import describe_model
    from mmdata.train.matching import match as run

    plugins(plugin)
    r = run(data, model, split=split, out=out, on_error=on_error)
    if json_:
        print_json(r)
        _match_notes(r)  # on stderr, with --json too
        return
    from rich import box

    cols = ["pair", "n", "cos+", "cos−", "AUC", "AUC≠c", "JS", "KL a‖b", "KL b‖a", "agree"]
    t = table(*cols, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0),
              title=f"modality matching on {split} ({samples_line(r)}, "
                    + (f"{describe_model(r)})" if r["fusion"] else "the pre-trained embedding: no classifier, no JS / KL)"),
              caption="n: samples holding both; cos+ / cos−: mean cosine of matched / mismatched pairs; AUC≠c: mismatched "
                      "of another class only; JS, KL in bits; agree: same argmax")
    for pair, e in r["pairs"].items():
        c, d = e.get("cosine"), e.get("divergence")
        cos = [f"{c['matched_mean']:+.2f}", "—" if c["mismatched_mean"] is None else f"{c['mismatched_mean']:+.2f}",
               "—" if c["auc"] is None else f"{c['auc']:.3f}",
               f"{c['auc_other_class']:.3f}" if "auc_other_class" in c else "—"] if c else ["—"] * 4
        div = [f"{d['js']:.3f}", f"{d['kl_ab']:.2f}", f"{d['kl_ba']:.2f}", f"{d['argmax_agreement']:.1%}"] if d else ["—"] * 4
        t.add_row(pair, str(e.get("n", "")), *cos, *div)
    console.print(t)
    _match_notes(r)
    console.print(f"figure: {r['figure']}", soft_wrap=True)


def _match_notes(r: dict) -> None:
    """match's diagnostics on stderr: pairs skipped, warnings, why a cosine column is empty."""
    for pair, why in r.get("skipped", {}).items():
        note(escape(f"{pair}: skipped — {why}"))
    for w in r.get("warnings", []):
        warn(w)
    for pair, e in r["pairs"].items():
        if (e.get("cosine") or {}).get("reason"):
            note(escape(f"{pair}: cos− and AUC — {e['cosine']['reason']}"))
    if r["embedding"] is None:
        note("no contrastive.pt in the model folder: cosine columns need a shared embedding "
             "(train with --pretrain contrastive)")


def audit_alignment(
    data: DataDir,
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help=recipe_help("Augmentation recipe YAML to audit"))],
    model: ModelDir,
    split: Split = "test",
    seed: Seed = 0,
    epoch: Annotated[int, typer.Option(min=0, help="Epoch of the augmentation draws.")] = 0,
    out: Annotated[Optional[Path], typer.Option(
        help="PNG path (default: MODEL/alignment.png for test, MODEL/alignment-SPLIT.png for another split; "
             "MODEL/alignment-data-DATA[-SPLIT].png on a dataset the run was not trained on).")] = None,
    on_error: OnError = "raise",
    plugin: PluginOpt = None,
    json_: JsonFlag = False,
) -> None:
    """How much each op of a recipe changes cross-modal agreement under a contrastive model:
    Δ matched-pair cosine (95% CI) and Δ retrieval R@1, augmented − clean, per modality pair, on the
    samples in the model's input format."""
    import warnings

    from mmdata.train.alignment import audit
    from mmdata.train.matching import default_figure

    plugins(plugin)
    recipe = shipped(recipe)
    with warnings.catch_warnings():  # the ignored normalize is printed below (or is in the JSON), not as a Python warning
        warnings.simplefilter("ignore", UserWarning)
        r = audit(data, recipe, model, split=split, seed=seed, epoch=epoch,
                  out=out or default_figure("alignment", split, data, model), on_error=on_error)
    if json_:
        print_json(r)
        _audit_notes(r)  # on stderr, with --json too
        return
    from rich import box

    clean = ", ".join(f"{k} {v['cosine']:.2f}" for k, v in r["clean"].items())
    t = table("op", "p", "pair", "Δcos ± 95% CI", "ΔAUC", "ΔR@1", "kept", box=box.SIMPLE_HEAD,
              pad_edge=False, padding=(0, 1, 0, 0),
              title=f"alignment audit on {split} ({samples_line(r)}): augmented − clean (R@1 in points)\n"
                    f"clean cosine: {clean}")
    for o in r["ops"]:
        if o.get("na"):
            t.add_row(o["op"], "—" if o["p"] is None else f"{o['p']:g}→1", "—", f"n/a ({o['na']})", "", "", "", end_section=True)
            continue
        for j, p in enumerate(r["pairs"]):
            e = o["pairs"].get(p, {})
            last = j == len(r["pairs"]) - 1
            if "delta_cosine" not in e:  # the op left fewer than 2 samples with both: a row, not a gap
                kept = f"{e['kept']:.0%}" if "kept" in e else ""
                t.add_row(o["op"] if j == 0 else "", ("—" if o["p"] is None else f"{o['p']:g}→1") if j == 0 else "", p,
                          f"n/a ({plural(e.get('n', 0), 'sample')} kept both)", "", "", kept,
                          end_section=last)
                continue
            lo, hi = e["delta_cosine_ci95"]
            color = "red" if hi < 0 else "green" if lo > 0 else ""
            delta = f"{e['delta_cosine']:+.3f} ± {(hi - lo) / 2:.3f}"
            t.add_row(o["op"] if j == 0 else "", ("—" if o["p"] is None else f"{o['p']:g}→1") if j == 0 else "", p,
                      f"[{color}]{delta}[/]" if color else delta, f"{e['delta_auc']:+.2f}", f"{e['delta_R@1'] * 100:+.1f}",
                      f"{e['kept']:.0%}", end_section=last)
    console.print(t)
    _audit_notes(r)
    console.print(f"figure: {r['figure']}", soft_wrap=True)


def _audit_notes(r: dict) -> None:
    """audit-alignment's diagnostics on stderr: pairs skipped, a recipe normalize the audit ignored."""
    for pair, why in r.get("skipped", {}).items():
        note(escape(f"{pair}: skipped — {why}"))
    ignored = r.get("input_format", {}).get("recipe_normalize_ignored")
    if ignored:
        warn(f"the recipe's normalize: for {', '.join(ignored)} differs from the model's input format and was ignored "
             "— the audit measures in the format the model was pre-trained on (--json: input_format)")
    unmeasured = r.get("unmeasured_fields") or []
    if unmeasured:  # QA39 lipreading #3: an audio crop beside a (T, H, W) video rated harmless, unsaid
        warn(escape(f"not measured: {', '.join(unmeasured)} (the model measures {', '.join(r.get('measured_fields') or [])}): "
                    "an op that moves one stream and not these (an audio crop beside a video) is not rated here "
                    "(--json: unmeasured_fields)"))


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
    app.command()(match)
    app.command("audit-alignment")(audit_alignment)
