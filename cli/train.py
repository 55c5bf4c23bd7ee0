"""`mmdata train`: the reference fusion trainer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from mmdata.cli.common import DataDir, JsonFlag, Seed, console, print_json


def train(
    data: DataDir,
    fusion: Annotated[str, typer.Option(help="early, concat, late, mean, max, gated, attention, cross_attention, tensor, low_rank, "
                                             "hierarchical, two_tower.")] = "concat",
    fusion_arg: Annotated[Optional[list[str]], typer.Option("--fusion-arg", help="KEY=VALUE fusion option, repeatable: "
                          "order='(image+audio)+text' (hierarchical); towers='image|audio+text', interaction=mlp|dot|bilinear (two_tower).")] = None,
    modalities: Annotated[str, typer.Option(help="Comma-separated: image,audio,text (one = unimodal baseline).")] = "image,audio,text",
    epochs: Annotated[int, typer.Option(min=1)] = 15,
    seed: Seed = 0,
    recipe: Annotated[Optional[Path], typer.Option(help="Augmentation recipe YAML.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder: metrics.json, predictions.parquet, model.pt.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    lr: Annotated[float, typer.Option()] = 2e-3,
    optimizer: Annotated[str, typer.Option(help="adamw or sgd.")] = "adamw",
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    label_noise: Annotated[float, typer.Option(min=0.0, max=1.0, help="Fraction of training labels flipped (control).")] = 0.0,
    threads: Annotated[Optional[int], typer.Option(help="torch threads.")] = None,
    no_robustness: Annotated[bool, typer.Option("--no-robustness", help="Skip the robustness evaluation.")] = False,
    pretrain: Annotated[Optional[str], typer.Option(help="Pre-train the encoders first: contrastive (CLIP-style InfoNCE per modality pair).")] = None,
    pretrain_epochs: Annotated[int, typer.Option(min=1, help="Epochs of pre-training.")] = 10,
    pretrain_arg: Annotated[Optional[list[str]], typer.Option("--pretrain-arg", help="KEY=VALUE pre-training option, repeatable: "
                            "exclude_same_class=true, dim=32, temperature=0.07, batch_size, lr.")] = None,
    probe: Annotated[bool, typer.Option("--probe", help="Linear probe: freeze the encoders, train one linear layer.")] = False,
    label_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Fraction of training labels used (stratified, per seed).")] = 1.0,
    json_: JsonFlag = False,
) -> None:
    """Train the reference fusion model; writes metrics.json and predictions.parquet to --out."""
    os.environ.setdefault("MMDATA_DEVICE", device)
    from mmdata.train import train as run

    m = run(data, fusion=fusion, modalities=[s.strip() for s in modalities.split(",") if s.strip()], epochs=epochs, seed=seed,
            recipe=recipe, out=out, batch_size=batch_size, lr=lr, optimizer=optimizer, device=device, label_noise=label_noise,
            threads=threads, eval_robustness=not no_robustness, progress=not json_, fusion_args=_key_values(fusion_arg, "--fusion-arg"),
            pretrain=pretrain, pretrain_epochs=pretrain_epochs, pretrain_args=_key_values(pretrain_arg, "--pretrain-arg"),
            probe=probe, label_fraction=label_fraction)
    if not m:  # non-zero DDP rank
        return
    if json_:
        print_json(m)
        return
    from rich.table import Table

    t = Table("split", "accuracy", "macro F1", "NLL", "ECE", title=f"{fusion} on {', '.join(m['config']['modalities'])}")
    for split in ("val", "test"):
        s = m[split]
        t.add_row(split, f"{s['accuracy']:.3f}", f"{s['macro_f1']:.3f}", f"{s['nll']:.3f}", f"{s['ece']:.3f}")
    console.print(t)
    rob = m.get("robustness", {})
    if rob.get("missing"):
        console.print("accuracy with a modality removed: " + ", ".join(f"-{k}: {v:.3f}" for k, v in rob["missing"].items()))
    if rob.get("corruption"):
        console.print("corruption AUC: " + ", ".join(f"{k}: {v['auc']:.3f}" for k, v in rob["corruption"].items()))
    for pair, r in m.get("retrieval", {}).items():
        inst = " ".join(f"{d} R@1 {v['R@1']:.2f} R@5 {v['R@5']:.2f} median rank {v['median_rank']:.0f}" for d, v in r["instance"].items())
        cls = " ".join(f"{d} {v['R@1']:.2f}" for d, v in r.get("class", {}).items())
        console.print(f"retrieval {pair} (n={r['n']}, chance R@1 {r['chance']['instance']['R@1']:.3f}): {inst}"
                      + (f"; class-level R@1 {cls}" if cls else ""), soft_wrap=True)
    console.print(f"best epoch {m['best_epoch']}, {m['n_params']:,} parameters, {m['wall_s']:.1f} s" + (f"; outputs in {out}" if out else ""))


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
