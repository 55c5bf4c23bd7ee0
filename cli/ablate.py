"""`mmdata ablate` and `mmdata demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from mmdata.cli.common import (AddressOpt, ExecutorOpt, JsonFlag, PluginOpt, console, load_pandas_for_arrow, note,
                               recipe_help, shipped,
                               plural, print_json, one_line_path, split_option, table, terminated_as_exit, warn)


def _print_summary(s: dict[str, Any], out: Path | str) -> None:
    from collections import Counter

    from rich.markup import escape

    from mmdata.ablate.report import figure_arms, interval_cell, metric_decimals, num, plain_text, share_text

    pm = s["primary_metric"]
    dec = metric_decimals(s)  # as in report.md: 2 significant digits of the baseline's sd and of δ
    aligned = any("align_cos_delta" in a["exploratory"] for a in s["arms"])
    # no header or value is cut: folded on a narrow terminal, whole on a pipe (printed as wide as needed);
    # every text of the recipe is escaped: an arm named "[/]" was a MarkupError after all runs had finished
    t = table("arm", "seeds", f"Δ {escape(pm['label'])}", "interval (Holm level)", "wins/ties/losses",
              "P(beats)+½·P(tie)", "decision",
              *(["alignment Δcos (exploratory)"] if aligned else []),
              title=escape(f"{pm['name']} ({'higher' if pm['higher_is_better'] else 'lower'} is better) vs baseline "
                           f"'{s['baseline']['name']}'"))

    # past FIGURE_ARMS arms (a sweep), the rows the figures draw: controls, decided arms, largest effects
    shown, rest = figure_arms(s["arms"], pm["higher_is_better"])
    for a in shown:
        e = a["primary"]
        color = {"helps": "green", "hurts": "red", "equivalent": "blue", "failed": "magenta"}.get(a["decision"].split(" ")[0], "white")
        t.add_row(escape(a["name"]), str(e["n_seeds"]) + (" (futile)" if a["status"] == "futile" else ""), num(e["mean_diff"], dec),
                  interval_cell(a, dec),
                  "/".join(map(str, e["wins_ties_losses"])) if e.get("wins_ties_losses") else "—",
                  "—" if e["p_superior"] is None else f"{e['p_superior']:.2f}",
                  f"[{color}]{escape(a.get('decision_label') or a['decision'])}[/]",  # "(... exploratory)" as report.md
                  *([f"{a['exploratory']['align_cos_delta']['mean_diff']:+.3f}" if "align_cos_delta" in a["exploratory"] else "—"]
                    if aligned else []))
    if console.is_terminal:
        console.print(t)
    else:  # a pipe or a file: as wide as the rows need, never cut at 80 columns
        from rich.measure import Measurement

        need = Measurement.get(console, console.options.update_width(10_000), t).maximum
        if need > console.width:
            t.width = need
        console.print(t, crop=False)
    if rest:
        verdicts = Counter(a["decision"].split(" ")[0] for a in rest)
        console.print(f"{plural(len(rest), 'more arm')} not shown ({', '.join(f'{n} {v}' for v, n in verdicts.most_common())}): every "
                      f"arm is in {escape(one_line_path(str(out).rstrip('/')))}/report.md and summary.json (--json prints them all)",
                      soft_wrap=True)
    c = s["controls"]
    style = {"passed": "green", "aa_failed": "bold red", "insensitive": "bold yellow", "runs_failed": "bold red",
             "control_failed": "bold red", "not_checked": "yellow"}.get(c.get("verdict"), "white")
    console.print(f"[{style}]{escape(plain_text(c['headline']))}[/]")
    noise = s.get("eval_split_noise")
    if noise and noise.get("share") is not None:
        console.print(f"noise: {share_text(noise['share'])} of the paired variance is the {noise['n_test']}-example test split "
                      "(a larger split needs fewer seeds; report.md: 'Where the noise comes from')")
    r = s["runs"]
    d = s["delta"]
    delta = "not set yet (needs paired seeds)" if d["value"] is None else num(d["value"], dec, sign=False)
    warn = " [yellow](equivalent and negligible unreachable: set delta: in the recipe of a new --out)[/]" if d.get("warning") else ""
    console.print(f"runs: {r['ok']} ok ({100 * r['fraction_of_fixed']:.0f}% of a fixed {s['design']['max_seeds']}-seed design), "
                  f"{r['failed']} failed; δ = {escape(delta)}{warn}; report: {escape(one_line_path(str(out).rstrip('/')))}/report.md")
    for fl in s["failures"][:10]:
        console.print(_failed_line(fl))


def _split_option(key: str) -> Any:
    """mmdata train's option ``key`` (the same help and parsing), overriding the recipe's ``trainer.<key>``."""
    return split_option(key, f"Overrides the recipe's trainer.{key} (the default applies when it sets none).")


TrainSplitOpt = _split_option("train_split")
ValSplitOpt = _split_option("val_split")
TestSplitOpt = _split_option("test_split")


def _failed_line(fl: dict[str, Any]) -> str:
    """A failed run as the summary lists it (markup: the data escaped)."""
    from rich.markup import escape

    return f"[red]failed[/] {escape(str(fl['arm']))} seed {fl['seed']}: {escape(str(fl['error']))}"


def failures_error(failures: list[dict[str, Any]]) -> str | None:
    """The ``error`` line of a ``--json`` result with failed runs: how many, the first, what to do; None without.

    Example:
        >>> failures_error([{"arm": "cutout", "seed": 1, "error": "RuntimeError: boom"}])
        '1 run failed (rerun the same command to retry it): cutout seed 1: RuntimeError: boom'
    """
    if not failures:
        return None
    n = len(failures)
    first = failures[0]
    return (f"{plural(n, 'run')} failed (rerun the same command to retry {'it' if n == 1 else 'them'}): "
            f"{first['arm']} seed {first['seed']}: {first['error']}" + (f"; and {n - 1} more" if n > 1 else ""))


#: exit status of ``--fail-on`` when what it names happened (runs that failed, 1, come first)
EXIT_FAIL_ON = 3
#: what ``--fail-on`` takes
FAIL_ON = ("hurts", "controls")


def _fail_on(value: Optional[str]) -> list[str]:
    """``--fail-on hurts,controls`` as a list, each known (a usage error names the values otherwise)."""
    if value is None:
        return []
    wanted = list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    bad = [v for v in wanted if v not in FAIL_ON]
    if bad or not wanted:
        raise typer.BadParameter(f"{value!r}: expected hurts, controls or hurts,controls")
    return wanted


def tripped(s: dict[str, Any], fail_on: list[str]) -> list[str]:
    """What ``--fail-on`` finds in an ablation summary ``s``, one line each: ``hurts``: an arm of the design (kind
    ``arm``; a control such as label_noise is meant to hurt) whose decision starts with "hurts", "hurts
    (negligible)" included (its interval excludes 0: a confirmed loss, if one inside ±δ); ``controls``: a controls
    verdict other than ``passed`` (an A/A test that found a difference, a label-noise control that did not hurt,
    controls still pending, or none in the recipe).

    Example:
        >>> s = {"arms": [{"name": "noise", "kind": "control", "decision": "hurts"},
        ...               {"name": "-crop", "kind": "arm", "decision": "hurts (negligible)"}],
        ...      "controls": {"verdict": "passed"}}
        >>> tripped(s, ["hurts", "controls"])
        ["arm '-crop' hurts (negligible)"]
    """
    from mmdata.ablate.report import plain_text

    out = []
    if "hurts" in fail_on:
        out += [f"arm {a['name']!r} {a['decision']}" for a in s["arms"]
                if a.get("kind") == "arm" and str(a.get("decision", "")).startswith("hurts")]
    verdict = (s.get("controls") or {}).get("verdict")
    if "controls" in fail_on and verdict != "passed":
        out.append(f"controls {verdict or 'missing'}: {plain_text((s.get('controls') or {}).get('headline', ''))}".rstrip(": "))
    return out


def _finish(s: dict[str, Any], out: Path | str, json_: bool, fail_on: list[str] | None = None) -> None:
    found = tripped(s, fail_on or [])
    code = 1 if s["failures"] else EXIT_FAIL_ON if found else 0
    if json_:
        error = failures_error(s["failures"]) or (f"--fail-on {','.join(fail_on or [])}: " + "; ".join(found)
                                                  if found else None)
        print_json({**s, **({"fail_on": {"checked": fail_on, "found": found}} if fail_on else {})},
                   exit_code=code, error=error)
        for fl in s["failures"][:10]:  # on stderr, as the warnings and the progress: a CI log names them
            note(_failed_line(fl))
        if len(s["failures"]) > 10:
            note(f"  ... and {len(s['failures']) - 10} more (the JSON's failures)")
    else:
        _print_summary(s, out)
    if found:  # on stderr: the reason of the exit status, with --json too
        from rich.markup import escape

        note(f"[bold red]--fail-on {escape(','.join(fail_on or []))}:[/] " + escape("; ".join(found)))
    if code:
        raise typer.Exit(code)


def _interrupted(exc: BaseException, command: str) -> None:
    import signal

    from rich.markup import escape

    from mmdata.cli.common import STOPPED

    signum = getattr(exc, "signum", signal.SIGINT)
    line = str(exc) or "interrupted"
    STOPPED.append(f"{command} {line}")  # the --json error document's (cli/main.py)
    # on stderr, as the warnings: with --json stdout holds the error document only
    note(f"[yellow]{escape(line)}[/]")
    raise typer.Exit(128 + int(signum))


def ablate(
    recipe: Annotated[str, typer.Argument(help=recipe_help("Ablation recipe YAML (docs/ablation.md)", ablation=True))],
    out: Annotated[str, typer.Option("--out", help="Output folder (rerun to resume): a path, or an object-store URL (s3://bucket/abl; worked on in a local copy, uploaded as runs finish).")],
    seeds: Annotated[Optional[int], typer.Option(min=2, help="Paired seeds per arm (the maximum per arm with --adaptive).")] = None,
    adaptive: Annotated[Optional[bool], typer.Option("--adaptive/--fixed",
                                                     help="Group-sequential seeds with early stopping (default: the recipe's adaptive:).")] = None,
    trainer: Annotated[Optional[str], typer.Option(help="Your training function, package.module:function (see docs/ablation.md).")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (each run on one GPU).")] = None,
    gpus: Annotated[Optional[int], typer.Option(min=1, help="With --device cuda: how many visible GPUs to use.")] = None,
    threads: Annotated[Optional[int], typer.Option(min=1, help="Torch threads per run (part of each run's identity; "
                                                   "default: on a rerun into an ablation's folder, the threads its runs "
                                                   "were trained with, as env.json records them; else 1).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", "-j", min=1,
                                                   help="Parallel runs (default: CPU count, or one per GPU).")] = None,
    max_runs: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many new runs (resume later).")] = None,
    run_timeout: Annotated[Optional[float], typer.Option(min=0.001, help="A time limit per run in seconds: a run past it "
                                                         "is a failed run (rerun to retry).")] = None,
    robustness: Annotated[Optional[bool], typer.Option("--robustness/--no-robustness",
                                                       help="The bundled trainer's robustness evaluation (default: the recipe's trainer.eval_robustness).")] = None,
    alignment: Annotated[Optional[str], typer.Option(help="Alignment Δ per arm under a contrastive model: a folder with "
                                                     "contrastive.pt, or 'auto' to pre-train one into OUT/alignment.")] = None,
    train_split: TrainSplitOpt = None,
    val_split: ValSplitOpt = None,
    test_split: TestSplitOpt = None,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    plugin: PluginOpt = None,
    trust_code: Annotated[bool, typer.Option("--trust-code", help="Import and run the Python code the recipe names "
                                             "(its imports: and trainer.entry) on this machine; without it such a recipe "
                                             "is refused before anything is imported. Only for a recipe you trust.")] = False,
    fail_on: Annotated[Optional[str], typer.Option("--fail-on", help="Exit 3 (for CI) when: hurts — an arm of the "
                                                   "design (not a control) hurts, 'hurts (negligible)' included; "
                                                   "controls — the controls verdict is not passed (none in the "
                                                   "recipe counts); for both, pass --fail-on hurts,controls. The reasons go to stderr "
                                                   "and the JSON's error / fail_on.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Run an augmentation ablation (arms x paired seeds) and write runs.parquet, summary.json, report.md.

    Rerun into the same --out to resume it. A rerun whose recipe, data or mmdata changed trains its runs again
    and keeps the earlier report in OUT/previous/<hex>/ (runs.parquet keeps their rows, analysed: false).

    Exit status: 0; 1 when any run failed (listed; rerun to retry); 2 for a bad recipe, option or dataset,
    or an output folder it must not or cannot write (one error line); 3 when --fail-on found what it names
    (runs that failed come first: 1); 75 when another job is writing --out now (retry later); 130 / 143 when
    stopped by Ctrl-C / SIGTERM (finished runs are kept; rerun to resume).
    """
    from mmdata.ablate import run
    from mmdata.plugins import trust_code as consent

    try:
        checks = _fail_on(fail_on)
    except typer.BadParameter as exc:
        raise typer.BadParameter(str(exc), param_hint="'--fail-on'") from None
    # SIGTERM during the runs is the runner's (Interrupted: a message, 143); before and after them
    # (connecting, writing the report) it ends the command as an exception would, with the same code
    try:
        with terminated_as_exit():
            load_pandas_for_arrow()  # before the runs: not in the middle of saving the first one
            recipe = shipped(recipe, ablation=True)  # a shipped recipe's name: its file, said once
            with consent(trust_code):  # the recipe's imports: / trainer.entry (--plugin, --trainer: the user's own)
                s = run(recipe, out, seeds=seeds, workers=workers, adaptive=adaptive, trainer=trainer, device=device,
                        gpus=gpus, threads=threads, max_runs=max_runs, progress=True, robustness=robustness,
                        alignment=alignment, executor=executor, address=address, on_warning=warn,
                        run_timeout=run_timeout, plugins=plugin or [], train_split=train_split, val_split=val_split,
                        test_split=test_split)
    except KeyboardInterrupt as exc:
        _interrupted(exc, "mmdata ablate")
    _finish(s, out, json_, checks)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("runs/demo"),
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Parallel runs.")] = 2,
    quick: Annotated[bool, typer.Option(help="Small, fast version (tests, smoke checks).")] = False,
    json_: JsonFlag = False,
) -> None:
    """The main job: build avdigits, run an adaptive leave-one-out augmentation ablation with controls, write the report."""
    from mmdata.demo import run_demo

    try:
        with terminated_as_exit():
            load_pandas_for_arrow()
            s = run_demo(out, workers=workers, quick=quick, progress=True, on_warning=warn)
    except KeyboardInterrupt as exc:
        _interrupted(exc, "mmdata demo")
    if not json_:
        console.print(f"avdigits: {plural(s['dataset']['samples'], 'sample')} {s['dataset']['per_split']}; "
                      f"{s['demo']['wall_s']:.0f} s")
    _finish(s, out, json_)


def _print_folds(s: dict[str, Any], out: Path | str) -> None:
    from rich.markup import escape

    from mmdata.ablate.report import arm_order, interval_cell, num, plain_text

    pm = s["primary_metric"]
    t = table("arm", "folds", "units", f"pooled Δ {escape(pm['label'])}", "interval (Holm level)", "per fold", "decision",
              title=escape(f"{pm['name']} across {len(s['folds'])} folds vs baseline '{s['baseline']}'"))
    for a in arm_order(s["arms"], pm["higher_is_better"]):
        e = a["primary"]
        color = {"helps": "green", "hurts": "red", "equivalent": "blue", "failed": "magenta"}.get(a["decision"].split(" ")[0], "white")
        # a fold left out of the arm reads so (as in report.md), not as a number beside those the pooled Δ averages
        per = " ".join(num(p["mean_diff"], 1) if p["used"] else f"(left out: {p.get('left_out_because', 'fewer than 2 paired seeds')})"
                       for p in e["per_fold"]) + (" (signs disagree)" if e["sign_disagreement"] else "")
        het = e.get("heterogeneity") or {}
        if het.get("p_value") is not None and het["p_value"] < 0.05:  # exploratory: docs/ablation.md
            per += f" (folds differ, p {het['p_value']:.3f})"
        t.add_row(escape(a["name"]), str(len(e["folds_used"])), str(e["units"]), num(e["mean_diff"]),
                  interval_cell(a), escape(per), f"[{color}]{escape(a['decision'])}[/]")
    console.print(t, crop=False)
    console.print(escape(plain_text(s["controls"]["headline"])))
    console.print(f"report: {escape(one_line_path(str(out).rstrip('/')))}/report.md")


def ablate_folds(
    folders: Annotated[list[str], typer.Argument(help="The --out folders of `mmdata ablate`, one per fold (same recipe, "
                                                 "another --test-split each).")],
    out: Annotated[str, typer.Option("--out", help="Output folder for report.md, summary.json and forest.png.")],
    json_: JsonFlag = False,
) -> None:
    """Pool the per-fold ablations of a k-fold cross-validation into one report (docs/ablation.md, "One report
    across folds").

    Exit status: 0; 1 when a fold has failed runs (listed; rerun that fold's ablate to retry them); 2 for
    folders that are not one ablation on different test splits (one error line naming the folder and key).
    """
    from mmdata.ablate.folds import gather

    s = gather(folders, out)
    for w in s["warnings"]:  # on stderr, with --json too (the summary's warnings hold them as well)
        warn(w)
    if json_:
        print_json(s, exit_code=1 if s["failures"] else 0, error=failures_error(s["failures"]))
        for fl in s["failures"][:10]:
            note(_failed_line(fl))
    else:
        _print_folds(s, out)
    if s["failures"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
    app.command()(ablate)
    app.command()(demo)
    app.command("ablate-folds")(ablate_folds)
