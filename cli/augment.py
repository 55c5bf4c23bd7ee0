"""`mmdata augment` and `mmdata preview`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from rich.markup import escape

from mmdata.cli.common import (AddressOpt, ExecutorOpt, JsonFlag, PluginOpt, RewriteFlag, Seed, ShardsOrDataDir, console,
                               load_pandas_for_arrow, no_room, note, one_of, plugins, plural, print_json, one_line_path,
                               recipe_help, shipped, stopped_as_exit, write_stdout_bytes)


RecipeOpt = Annotated[Path, typer.Option("--recipe", "-r", help=recipe_help("Recipe YAML"))]


def augment(
    shards: Annotated[str, typer.Argument(help="A dataset folder written by `mmdata shard` (a path or file:// URL), or a shard pattern / fsspec URL of shards.")],
    out: Annotated[str, typer.Argument(help="Output folder (created; a path, file:// URL or object store URL such as s3://bucket/ds; not http(s)://).")],
    recipe: RecipeOpt,
    copies: Annotated[int, typer.Option(min=0, help="Augmented copies per sample, keyed <key>_aug<k> (a pass over "
                                                    "augment output: <key>_p<n>aug<k>, n from its dataset.json).")] = 1,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Parallel output shards (writer threads).")] = 1,
    keep_original: Annotated[bool, typer.Option(help="Also write each source sample (through the recipe's normalize stage, as the copies).")] = False,
    seed: Seed = 0,
    split: Annotated[Optional[list[str]], typer.Option(help="Only these splits (repeatable or comma-separated); default all.")] = None,
    augment_split: Annotated[Optional[list[str]], typer.Option(
        help="Splits that get the random sections and --copies (repeatable or comma-separated); default train. "
             "The other splits are written once each, normalize stage only.")] = None,
    maxcount: Annotated[int, typer.Option(min=1, help="Max samples per output shard.")] = 1000,
    on_error: Annotated[str, typer.Option(callback=one_of("raise", "skip"), help="A source sample that does not read or decode (a damaged image or "
                                               "audio member, a shard cut short) or that the recipe refuses: raise "
                                               "(stop at it, naming shard and key) or skip (leave it and its copies "
                                               "out, count them and list each with its reason in the card's "
                                               "skipped; exit 0).")] = "raise",
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    plugin: PluginOpt = None,
    rewrite: RewriteFlag = False,
    force: Annotated[bool, typer.Option("--force", help="Write into an existing folder (or URL prefix) that holds other files and no mmdata dataset (refused by default: files of the names a job writes would be replaced), or a dataset that another command (shard, datasets build) wrote or that SRC was augmented from (refused by default: it would be replaced; an earlier augment output is replaced without it).")] = False,
    name: Annotated[Optional[str], typer.Option("--name", help="The output's name in dataset.json (default: the output folder's name).")] = None,
    license_: Annotated[Optional[str], typer.Option("--license", help="The output's license in dataset.json (e.g. CC-BY-4.0; default: the source's, which augmentation.augmented_from keeps either way).")] = None,
    description: Annotated[Optional[str], typer.Option("--description", help="A sentence about the output, in dataset.json (default: the source's).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Write K augmented copies of every training sample as new shards + index (params per sample) + card;
    val and test are written through with the normalize stage only (see --augment-split). The card keeps the
    source's license, description and what its jobs left out (skipped, each with its origin); --license and
    --description override the source's. Rerun to resume a stopped job; a rerun over an unchanged source writes
    nothing (up to date)."""
    from mmdata.augment.offline import augment_dataset, describe

    plugins(plugin)
    wanted = _split_names(augment_split, "--augment-split")
    split = _split_names(split, "--split")
    recipe = shipped(recipe)
    with stopped_as_exit(f"mmdata augment into {out}", "rerun the same command to resume it (the shards it finished "
                                                        "are kept)"):
        try:
            load_pandas_for_arrow()  # before the job: not in the middle of recording its first shard
            rep = augment_dataset(shards, out, recipe, copies=copies, workers=workers, keep_original=keep_original,
                                  seed=seed, splits=split, augment_splits=wanted, maxcount=maxcount, progress=True,
                                  executor=executor, address=address, on_error=on_error, rewrite=rewrite,
                                  force=force, name=name, license=license_, description=description)
        except OSError as exc:
            no_room(exc, out)
            raise
    if json_:
        print_json(rep)
    else:
        console.print(describe(rep, keep_original=keep_original, out=one_line_path(out)), markup=False, highlight=False)


def _split_names(values: Optional[list[str]], option: str) -> Optional[list[str]]:
    """A repeatable, comma-separated split option's names, each once (QA: 'val,test' was one name), or None
    when not given; a value naming no split (``--split ,``) is refused: it read as every split."""
    if not values:
        return None
    names = list(dict.fromkeys(sp.strip() for v in values for sp in v.split(",") if sp.strip()))
    if not names:
        raise typer.BadParameter(f"{values!r} names no split (give names such as train or val,test)",
                                 param_hint=f"'{option}'")
    return names


def preview(
    shards: ShardsOrDataDir,
    recipe: RecipeOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write; - writes it to stdout (a pipe or a file).")] = Path("preview.png"),
    n: Annotated[int, typer.Option(min=1, help="Samples (rows), taking the classes in turn (bare shards: the first N).")] = 8,
    variants: Annotated[int, typer.Option(min=1, help="Augmented variants (columns) per sample.")] = 3,
    split: Annotated[str, typer.Option(help="Split to preview.")] = "train",
    seed: Seed = 0,
    font: Annotated[Optional[Path], typer.Option(help="Font file with CJK glyphs (default: found on the system).")] = None,
    on_error: Annotated[str, typer.Option("--on-error", callback=one_of("raise", "skip"), help="A sample that does not decode (a float WAV holding NaN) or "
                        "that the recipe refuses: raise (stop, naming it) or skip (leave it out and draw the next good "
                        "samples; each one left out is named on stderr and under the grid).")] = "raise",
    plugin: PluginOpt = None,
    keys: Annotated[Optional[list[str]], typer.Option("--keys", help="Draw these samples (their keys, in this order; "
                    "repeat the option or separate with commas) instead of N picked ones.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print what the grid shows as JSON instead of the listing: "
                                        "the PNG's path, and per row the sample's key, source key and class, and per "
                                        "variant the ops that fired with their params and the modalities dropped. "
                                        "Not with --out - (stdout is the PNG).")] = False,
) -> None:
    """Draw a grid: samples x (original, normalized, augmented variants) with images, audio and marked text; then
    list what it shows (each row's key, source key and class; each variant's ops and params, what was dropped):
    on stdout after the PNG's path, on stderr with --out -, as JSON with --json."""
    import sys
    import tempfile

    from mmdata.augment.preview import preview as run, summary_lines
    from mmdata.errors import MMDataError

    if json_ and str(out) == "-":  # before the grid is drawn: stdout holds one thing, the PNG or the JSON
        raise MMDataError("--json with --out -: stdout is the PNG; give --out a file name for the JSON "
                          "(the listing of --out - goes to stderr)")
    plugins(plugin)
    recipe = shipped(recipe)
    skipped: list[dict] = []
    summary: list[dict] = []
    notes: list[str] = []  # the notes under the grid (a batch section not drawn, images drawn black, ...)
    kw = {"n": n, "variants": variants, "split": split, "seed": seed, "font": str(font) if font else None,
          "on_error": on_error, "skipped": skipped, "summary": summary, "notes": notes,
          "keys": None if keys is None else [k for item in keys for k in item.split(",") if k]}
    if str(out) != "-":
        from mmdata.shards.writer import NO_ROOM

        _check_png_path(out)  # before the grid is drawn (a read-only folder failed after it, with a traceback)
        try:
            path = run(shards, recipe, out, **kw)
        except OSError as exc:
            if exc.errno not in NO_ROOM:
                raise
            from mmdata.io import no_room_advice

            raise MMDataError(f"--out {out}: cannot write the PNG: " + no_room_advice(
                exc, Path(str(out)).parent, other="give another path", retry="preview again")) from None
        if json_:
            print_json({"png": str(path), "recipe": str(recipe), "split": split, "seed": seed, "variants": variants,
                        "samples": summary, "skipped": skipped, "notes": notes})
            _skipped(skipped)  # on stderr too, as without --json
            return
        console.print(f"wrote {one_line_path(path)}", markup=False, highlight=False)
        for line in summary_lines(summary):
            console.print(line, markup=False, highlight=False)
        _skipped(skipped)
        return
    if sys.stdout.isatty():  # as curl: PNG bytes would garble the terminal
        raise MMDataError("--out -: stdout is a terminal; pipe the PNG (| display, > grid.png) or give a file name")
    with tempfile.TemporaryDirectory(prefix="mmdata-preview-") as tmp:
        data = run(shards, recipe, Path(tmp) / "preview.png", **kw).read_bytes()
    write_stdout_bytes(data)  # the only output: a PNG file, byte for byte, whole or an error (a full disk)
    for line in summary_lines(summary):  # what the PNG shows, for a reader of the terminal
        note(escape(line))
    _skipped(skipped)


def _check_png_path(out: Path) -> None:
    """Refuse ``--out`` before the grid is drawn when the PNG cannot be written there: a folder, or a
    folder above it that is a file or not writable (the shard writer's check of its output folder)."""
    from mmdata.errors import MMDataError
    from mmdata.shards.output import check_local_output

    if out.is_dir():
        raise MMDataError(f"--out {out}: a folder; give the PNG's file name (e.g. {out / 'preview.png'})")
    try:
        check_local_output(out.parent)
    except MMDataError as exc:
        raise MMDataError(f"--out {out}: {exc}") from None


def _skipped(skipped: list[dict], shown: int = 10) -> None:
    """On stderr (stdout is the result, or the PNG itself): how many samples ``--on-error skip`` left out and,
    for the first ``shown``, which and why."""
    if not skipped:
        return
    note(f"[yellow]skipped {plural(len(skipped), 'sample')}[/] (--on-error skip), not drawn:")
    for s in skipped[:shown]:
        where = f"{s['key']!r} in {s['shard']}" if s["key"] is not None else "a sample the reader did not name"
        note(f"  {escape(where)}: {escape(str(s['reason']))}")
    if len(skipped) > shown:
        note(f"  ... and {len(skipped) - shown} more")


def register(app: typer.Typer) -> None:
    """Add this group's commands to the app."""
    app.command()(augment)
    app.command()(preview)
