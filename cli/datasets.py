"""`mmdata datasets list | build`: the embedded datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mmdata.cli.common import JsonFlag, Seed, console, load_pandas_for_arrow, one_line_path, plural, print_json

app = typer.Typer(help="Embedded datasets (built offline).", no_args_is_help=True)
DATASETS = {"avdigits": "10 digits: sklearn handwriting images + espeak-ng speech (speaker-disjoint) + partial text clues",
            "avdigits-spatial": "avdigits with a framed digit beside a distractor and captions saying where (left/right/top/bottom)"}


@app.command("list")
def list_(json_: JsonFlag = False) -> None:
    """List the embedded datasets."""
    if json_:
        print_json({"datasets": [{"name": name, "description": doc} for name, doc in DATASETS.items()]})
        return
    for name, doc in DATASETS.items():
        console.print(f"[bold]{name}[/]: {doc}")


@app.command()
def build(
    name: Annotated[str, typer.Argument(help="Dataset name (see `mmdata datasets list`).")],
    out: Annotated[str, typer.Argument(help="Output folder (created): a path, or an fsspec URL of an object store "
                                            "(s3://bucket/av; credentials from the environment).")],
    seed: Seed = 0,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Parallel shard writers.")] = 1,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Keep only the first N samples per class (a quick small build).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into OUT even when it holds files and no mmdata dataset (they may be replaced), or a dataset another command (shard, augment) wrote (it is replaced).")] = False,
    json_: JsonFlag = False,
) -> None:
    """Build an embedded dataset into OUT (shards + index + card). An OUT holding files and no mmdata dataset
    is refused, naming them, and so is one holding a dataset that `mmdata shard` or `mmdata augment` wrote
    (--force writes into it); an earlier build there is replaced."""
    from mmdata.errors import MMDataError

    if name not in DATASETS:
        raise MMDataError(f"unknown dataset {name!r}; available: {sorted(DATASETS)}")
    if name == "avdigits-spatial":
        from mmdata.datasets.spatial import build as run
    else:
        from mmdata.datasets.avdigits import build as run
    from mmdata.shards.inspect import inspect
    from mmdata.urls import is_remote, redact

    load_pandas_for_arrow()
    # a str, not a Path: Path('s3://bkt/av') is 's3:/bkt/av', a local folder (QA round 22)
    path = run(out if is_remote(out) else Path(out), seed=seed, workers=workers, limit=limit, progress=True,
               force=force)
    info = inspect(path)
    shown = redact(str(path)) if is_remote(path) else str(path)
    if json_:
        print_json({"ok": True, "name": name, "path": shown, "samples": info["samples"],
                    "per_split": info["per_split"], "patterns": info["patterns"], "warnings": info.get("warnings", [])})
        return
    console.print(f"built {name} at {one_line_path(shown)}", soft_wrap=True)
    console.print(f"  {plural(info['samples'], 'sample')} {info['per_split']}, patterns {info['patterns']}", soft_wrap=True)


def register(root: typer.Typer) -> None:
    """Add this group's commands to the app."""
    root.add_typer(app, name="datasets")
