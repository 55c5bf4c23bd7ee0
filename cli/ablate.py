"""`mmdata demo` (and, with the ablation runner, `mmdata ablate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonFlag, console, print_json


def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("runs/demo"),
    workers: Annotated[int, typer.Option("--workers", "-j", min=0, help="Writer processes / DataLoader workers.")] = 2,
    json_: JsonFlag = False,
) -> None:
    """Run the main job end to end on embedded generated data (see README)."""
    from mmdata.demo import run_demo

    s = run_demo(out, workers=workers, progress=not json_)
    if json_:
        print_json(s)
        return
    info = s["inspect"]
    console.print(f"sharded {info['samples']} samples into {info['shards']['count']} shards at {out / 'shards'} "
                  f"(splits {info['per_split']}); verify: {'ok' if s['verify_ok'] else 'FAILED'}")
    console.print(f"modality patterns: {info['patterns']}")
    fb = s["first_batch"]
    console.print(f"read {s['train_samples_read']} train samples in {s['train_batches']} batches; first batch: "
                  f"image {fb['image']}, audio {fb['audio']}, tokens {fb['tokens']}, labels {fb['label']}")
    console.print(f"audio present: {fb['present']['audio']}")
    console.print(f"summary: {out / 'summary.json'}")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
    app.command()(demo)
