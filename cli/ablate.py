"""`mmdata ablate` and `mmdata demo`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mmdata.cli.common import JsonFlag, console, print_json


def _print_summary(s: dict, out: Path) -> None:
    from rich.table import Table

    t = Table("arm", "Δ accuracy (pts)", "95% CI", "p (Holm)", "decision", title=f"vs baseline '{s['baseline']['name']}'")
    for a in sorted(s["arms"], key=lambda a: -a["metrics"]["test_accuracy"]["mean_diff"]):
        e = a["metrics"]["test_accuracy"]
        color = {"helps": "green", "hurts": "red", "equivalent": "blue"}.get(a["decision"], "white")
        t.add_row(a["name"], f"{e['mean_diff']:+.2f}", f"[{e['ci95_t'][0]:+.2f}, {e['ci95_t'][1]:+.2f}]", f"{e['p_holm']:.4f}",
                  f"[{color}]{a['decision']}[/]")
    console.print(t)
    if s["underpowered"]:
        console.print(f"[yellow]underpowered[/]: {s['n_seeds']} seeds cannot reach p < 0.05 after Holm")
    console.print(f"A/A (identity): {s['aa_check']['decision']}; report: {out / 'report.md'}")


def ablate(
    recipe: Annotated[Path, typer.Argument(help="Ablation recipe YAML (see recipes/ablations/).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (rerun to resume).")],
    seeds: Annotated[Optional[int], typer.Option(min=2, help="Override the number of paired seeds.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", "-j", min=1, help="Parallel runs (one thread each).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Run an augmentation ablation (arms x paired seeds) and write runs.parquet, summary.json, report.md."""
    from mmdata.ablate import run

    s = run(recipe, out, seeds=seeds, workers=workers, progress=not json_)
    print_json(s) if json_ else _print_summary(s, out)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("runs/demo"),
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Parallel runs.")] = 2,
    quick: Annotated[bool, typer.Option(help="Small, fast version (tests, smoke checks).")] = False,
    json_: JsonFlag = False,
) -> None:
    """The main job: build avdigits, run a leave-one-out augmentation ablation with controls, write the report."""
    from mmdata.demo import run_demo

    s = run_demo(out, workers=workers, quick=quick, progress=not json_)
    if json_:
        print_json(s)
        return
    console.print(f"avdigits: {s['dataset']['samples']} samples {s['dataset']['per_split']}")
    _print_summary(s, out)


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
    app.command()(ablate)
    app.command()(demo)
