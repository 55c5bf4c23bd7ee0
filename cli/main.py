"""Entry point of the ``mmdata`` command.

Each command module registers its commands on the one typer app; a command parses its options,
calls one library function and prints. Library errors (:class:`mmdata.MMDataError`) become a
one-line message and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from mmdata.cli import ablate, augment, datasets, match, shards, train

app = typer.Typer(
    name="mmdata",
    help="Multimodal datasets: shard, add-modality, inspect, verify, augment, preview, train, match, audit-alignment, ablate, demo, datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (shards, augment, datasets, train, match, ablate):
    module.register(app)

err = Console(stderr=True)
RICH_HELP_MIN_COLUMNS = 110  # narrower, typer's rich tables cut long option names and values with "…"


def _help_style(apps: tuple[typer.Typer, ...]) -> None:
    """Click's plain help (wrapped, never truncated) on terminals too narrow for typer's rich tables."""
    import shutil

    if shutil.get_terminal_size().columns < RICH_HELP_MIN_COLUMNS:
        for a in apps:
            a.rich_markup_mode = None


def _utf8_file_names() -> None:
    """Re-run this command in Python's UTF-8 mode when file names are read as ASCII (``LC_ALL=C`` with
    ``PYTHONUTF8=0``): a folder's UTF-8 names (``café.jpg``) then decode to the same keys, labels and
    bytes under every locale, instead of counting as "not valid UTF-8" and changing their keys. Worker
    processes inherit the mode. Only from the command line; the library says so in its warning."""
    import os

    fs = sys.getfilesystemencoding().replace("-", "").lower()
    if fs == "utf8" or os.name != "posix" or os.environ.get("PYTHONUTF8") == "1" or len(sys.orig_argv) < 2:
        return
    os.environ["PYTHONUTF8"] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _printable_streams() -> None:
    """Characters the terminal cannot show are printed as escapes, never a crash: under an ASCII
    locale (``LC_ALL=C`` with ``PYTHONUTF8=0``) a warning naming ``café.jpg`` raised
    UnicodeEncodeError after the job had finished, and a file name that is not UTF-8 (kept by Python
    as lone surrogates) cannot be encoded by any locale."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user-fixable errors print one line and exit 2."""
    from mmdata.errors import MMDataError

    if argv is None:  # run as the command (not called from Python with its own arguments)
        _utf8_file_names()
    _printable_streams()
    _help_style((app, datasets.app))
    try:
        app(args=argv, standalone_mode=True)
    except MMDataError as exc:
        from rich.markup import escape

        # escaped: messages name things like mmdata[ray] or a recipe key path[0], which are not markup
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
