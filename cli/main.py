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


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user-fixable errors print one line and exit 2."""
    from mmdata.errors import MMDataError

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
