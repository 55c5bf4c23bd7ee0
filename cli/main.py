"""Entry point of the ``mmdata`` command.

Each command module registers its commands on the one typer app; a command parses its options,
calls one library function and prints. What every command shares is here (:class:`MachineCommand`):
library errors (:class:`mmdata.MMDataError`) become a one-line message and exit code 2 instead of a
traceback, and with ``--json`` also ``{"ok": false, "error": ..., "exit_code": 2}`` on stdout; ``~`` in
a path is the home folder; a closed stdout pipe (a stderr pipe, a stdout the shell closed) ends the command
quietly with 141; a write to stdout that fails otherwise (a full disk) is an ``error:`` line and exit 2. Exit
statuses: README.md, "Exit status".
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import DefaultPlaceholder

from mmdata.cli import ablate, augment, datasets, evaluate, match, shards, train
from mmdata.cli.common import (JSON_OUTPUT, STOPPED, StdoutError, broken_pipe, checked_stderr, checked_stdout,
                               command_names, command_schema, err_console, stdout_error_line, write_json)

EXIT_STATUS = ("Exit status: 0 done, 1 problems found (verify), runs failed (ablate, demo, ablate-folds), "
               "more left out than shard --max-skipped allows, or a change diff --fail-on names; "
               "2 bad input or usage, 3 ablate --fail-on tripped, "
               "75 busy: another job is writing the output folder (retry later), "
               "130 / 143 / 129 Ctrl-C / SIGTERM / SIGHUP, 141 stdout closed; README.md 'Exit status'. "
               "Progress: MMDATA_PROGRESS=off|plain, MMDATA_PROGRESS_INTERVAL=SECONDS (README.md 'Progress').")

app = typer.Typer(
    name="mmdata",
    help="Multimodal datasets: shard, add-modality, inspect, verify, diff, augment, preview, train, evaluate, match, audit-alignment, ablate, ablate-folds, demo, datasets.",
    epilog=EXIT_STATUS,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from mmdata import __version__

        typer.echo(f"mmdata {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                          help="Print the version and exit.")] = None) -> None:
    pass


for module in (shards, augment, datasets, train, evaluate, match, ablate):
    module.register(app)
from mmdata.cli import diff as _diff  # noqa: E402 - `mmdata diff` (QA26 F16), registered apart from the list above

_diff.register(app)

err = err_console
RICH_HELP_MIN_COLUMNS = 110  # narrower, typer's rich tables cut long option names and values with "…"


def _json_wanted(args: list[str]) -> bool:
    """``--json`` among a command's own arguments (before ``--``, after which everything is a value)."""
    return "--json" in (args[:args.index("--")] if "--" in args else args)


#: exit status of a job refused because another job is writing its output folder now (``BusyError``): sysexits'
#: EX_TEMPFAIL, so a retry policy can tell "try again later" from bad input (2)
EXIT_BUSY = 75


def _error_code(exc: Exception) -> int:
    """The exit status of a library error: :data:`EXIT_BUSY` for a folder another job holds, else 2."""
    from mmdata.errors import BusyError

    return EXIT_BUSY if isinstance(exc, BusyError) else 2


def _json_error(message: str, exit_code: int) -> None:
    """The error document of ``--json``: every command prints the same one on stdout (and the usual
    error line on stderr), so ``out=$(mmdata CMD ... --json); jq .ok <<<"$out"`` works for all."""
    write_json({"ok": False, "error": message, "exit_code": exit_code})


#: exit statuses of a command stopped by a signal: Ctrl-C, SIGTERM, SIGHUP
STOP_CODES = {128 + signal.SIGINT: signal.SIGINT, 128 + signal.SIGTERM: signal.SIGTERM,
              **({128 + signal.SIGHUP: signal.SIGHUP} if hasattr(signal, "SIGHUP") else {})}


def _stopped_line(ctx: Any, code: int) -> str:
    """The line of the signal that ended the command with ``code``: its own (:data:`STOPPED`), else one naming
    the command and the signal (a SIGTERM while it connected or wrote its report)."""
    if STOPPED:
        return STOPPED[-1]
    signum = STOP_CODES[code]
    by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    return f"mmdata {' '.join(command_names(ctx))} interrupted{by}"


def _home(value: Any) -> Any:
    """``~`` and ``~/...`` (``~user`` for Path options) as the shell expands them: bash leaves ``~`` after
    ``=`` as it is (``--out=~/runs``), and a folder literally named ``~`` in the working directory is an
    ``rm -rf ~`` waiting to happen. URLs and other values are returned as they are."""
    if isinstance(value, Path) and str(value).startswith("~"):
        return value.expanduser()
    if isinstance(value, str) and (value == "~" or value.startswith("~/")):
        return os.path.expanduser(value)
    return value


def _flags_without_type(params: list[Any]) -> list[Any]:
    """``params`` with an empty type column for flags (``--json``, ``--deep / --no-deep``, ``--help``): typer's
    rich help (terminals of :data:`RICH_HELP_MIN_COLUMNS` and more) printed ``<bool>`` beside every flag, a
    value none of them takes; click's plain help shows none already."""
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
    return params


def _refuse_repeated(ctx: Any, params: list[Any], args: list[str]) -> None:
    """A usage error when an option that takes one value is given more than once (``--split-from dsA
    --split-from dsB``): click keeps the last silently (QA33: one site's earlier splits were dropped unsaid).
    Options that take a list (``--column``, ``--meta``) and flags are left alone."""
    from typer._click.exceptions import UsageError

    single: dict[str, Any] = {}
    for p in params:
        if getattr(p, "param_type_name", "") != "option" or p.is_flag or p.multiple or p.count or p.nargs != 1:
            continue
        for opt in (*p.opts, *p.secondary_opts):
            single[opt] = p
    seen: dict[str, list[tuple[str, str]]] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            break
        name, eq, value = a.partition("=") if a.startswith("--") else (a, "", "")
        p = single.get(name)
        if p is not None:
            if not eq:
                value = args[i + 1] if i + 1 < len(args) else ""
                i += 1  # the value, whatever it looks like, is not an option
            seen.setdefault(p.name, []).append((name, value))
        i += 1
    for name, given in seen.items():
        if len(given) > 1:
            shown = " and ".join(f"{opt} {v!r}" for opt, v in given[:3]) + (" ..." if len(given) > 3 else "")
            raise UsageError(f"{given[0][0]} is given {len(given)} times ({shown}): it takes one value, and the "
                             f"last would win silently; give it once", ctx=ctx)


class FlagsGroup(TyperGroup):
    """``mmdata`` and ``mmdata datasets``: their flags' help without a ``<bool>`` type (:func:`_flags_without_type`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))


class MachineCommand(TyperCommand):
    """Every ``mmdata`` command: the same error document under ``--json`` (usage errors too), ``~``
    expanded in every argument and option value, a closed pipe as exit 141, plain help without
    rich's escapes (``mmdata\\[ray]``)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        if self.epilog is None and "Exit status" not in (self.help or ""):  # ablate's help has its own
            self.epilog = EXIT_STATUS
        if kw.get("rich_markup_mode", "rich") is None:  # click's plain help prints the text as written
            for p in self.params:
                if getattr(p, "help", None):
                    p.help = p.help.replace("\\[", "[")  # type: ignore[attr-defined]

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_type(super().get_params(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # now: click's parser consumes the list; a command without --json gets the usual error only
        json_ = _json_wanted(args) and any(p.name == "json_" for p in self.params)
        try:
            _refuse_repeated(ctx, self.params, args)
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:  # a bad option value, a missing argument: typer prints it on stderr
            if json_ and hasattr(exc, "format_message"):
                _json_error(exc.format_message(), getattr(exc, "exit_code", 2))
            raise

    def invoke(self, ctx: Any) -> Any:
        from mmdata.errors import MMDataError

        for name, value in ctx.params.items():
            ctx.params[name] = _home(value)
        json_ = bool(ctx.params.get("json_"))
        if json_:
            JSON_OUTPUT.append(command_schema(ctx))
        try:
            return super().invoke(ctx)
        except (SystemExit, typer.Exit) as exc:  # a signal's end (Terminated, typer.Exit(130))
            code = exc.code if isinstance(exc, SystemExit) else exc.exit_code
            if json_ and code in STOP_CODES:  # README: every failure under --json prints its document
                _json_error(_stopped_line(ctx, code), code)
            raise
        except MMDataError as exc:  # main() prints the error line and exits 2 (75: busy)
            if json_:
                _json_error(str(exc), _error_code(exc))
            raise
        except typer.TyperException as exc:  # typer.BadParameter raised by the command itself
            if json_ and hasattr(exc, "format_message"):
                _json_error(exc.format_message(), getattr(exc, "exit_code", 2))
            raise
        except BrokenPipeError:  # typer would exit 1 (a failure under `set -o pipefail`)
            broken_pipe()
        finally:
            if json_:
                JSON_OUTPUT.pop()


def _machine_commands(a: typer.Typer) -> None:
    for info in a.registered_commands:
        if info.cls in (None, TyperCommand):  # typer's default; a command with a class of its own keeps it
            info.cls = MachineCommand
    for group in a.registered_groups:
        if group.typer_instance is not None:
            if isinstance(group.typer_instance.info.cls, DefaultPlaceholder):  # typer's default group class
                group.typer_instance.info.cls = FlagsGroup
            _machine_commands(group.typer_instance)


app.info.cls = FlagsGroup
_machine_commands(app)


def _help_style(apps: tuple[typer.Typer, ...]) -> None:
    """Click's plain help (wrapped, never truncated) on terminals too narrow for typer's rich tables."""
    import shutil

    if shutil.get_terminal_size().columns < RICH_HELP_MIN_COLUMNS:
        for a in apps:
            a.rich_markup_mode = None


#: the open-file limit the command raises its soft limit to (within the hard limit): DataLoader workers pass
#: batches through file descriptors, and a shard job opens a file per member being read
OPEN_FILES = 65536


def _more_open_files() -> None:
    """Raise the soft open-file limit toward the hard one (up to :data:`OPEN_FILES`), as Ray and many
    servers do: a container's or macOS's default soft limit (1024 / 256, the hard one far above) made
    ``train -j 2`` and ``shard -j 4`` run out (hostile-host QA). A hard limit set low (``ulimit -n 36``)
    is left as the user set it; the job then stops naming the limit."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):  # a system maximum below the hard limit (macOS's kern.maxfilesperproc)
            pass


def _matplotlib_config() -> None:
    """Give matplotlib a writable config / cache folder when its default one cannot be made (a ``HOME``
    that is read-only, or under a file): matplotlib then makes a temporary one itself but prints a two-line
    warning to set ``MPLCONFIGDIR`` before every figure a command draws (QA25 C-5: a class on a shared
    machine with read-only homes). mmdata's own cache is used where it can be (``<cache>/matplotlib``: the
    font cache is then kept), else a private temporary folder removed at exit. A ``MPLCONFIGDIR`` the user
    set is left alone, and nothing is made when the default folder is usable."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    try:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "matplotlib"
    except (RuntimeError, KeyError):  # no home directory
        base = None
    probe = base
    while probe is not None and not probe.exists() and probe.parent != probe:
        probe = probe.parent  # the first existing folder: matplotlib would make the rest there
    if probe is not None and probe.is_dir() and os.access(probe, os.W_OK | os.X_OK):
        return
    try:
        from mmdata.urls import NoCacheError, cache_subdir

        folder = str(cache_subdir("matplotlib"))
    except (NoCacheError, OSError):
        import atexit
        import shutil
        import tempfile

        folder = tempfile.mkdtemp(prefix="mmdata-matplotlib-")
        atexit.register(shutil.rmtree, folder, True)
    os.environ["MPLCONFIGDIR"] = folder


def _utf8_file_names() -> None:
    """Re-run this command in Python's UTF-8 mode when file names are read as ASCII (``LC_ALL=C`` with
    ``PYTHONUTF8=0``): a folder's UTF-8 names (``café.jpg``) then decode to the same keys, labels and
    bytes under every locale, instead of counting as "not valid UTF-8" and changing their keys. Worker
    processes inherit the mode. The output keeps the locale's encoding (an ASCII terminal gets ASCII tables,
    other characters as escapes). Only from the command line; the library says so in its warning."""
    fs = sys.getfilesystemencoding().replace("-", "").lower()
    if fs == "utf8" or os.name != "posix" or os.environ.get("PYTHONUTF8") == "1" or len(sys.orig_argv) < 2:
        return
    os.environ["PYTHONUTF8"] = "1"
    if "PYTHONIOENCODING" not in os.environ and sys.stdout is not None:
        # the output keeps the terminal's encoding (QA: under LC_ALL=C the tables came out as UTF-8 box drawing);
        # what it cannot show is printed as escapes, as _printable_streams does
        os.environ["PYTHONIOENCODING"] = f"{sys.stdout.encoding}:backslashreplace"
    for stream in (sys.stdout, sys.stderr):  # None: closed by the shell (>&-)
        if stream is not None:
            stream.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _printable_streams() -> None:
    """Characters the terminal cannot show are printed as escapes, never a crash: under an ASCII
    locale (``LC_ALL=C`` with ``PYTHONUTF8=0``) a warning naming ``café.jpg`` raised
    UnicodeEncodeError after the job had finished, and a file name that is not UTF-8 (kept by Python
    as lone surrogates) cannot be encoded by any locale."""
    checked_stderr()
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _broken_pipes_exit_141() -> None:
    """Every rich console of the command (the library's progress bars on stderr too: the shard writer's)
    ends it with 141 when its stream is a closed pipe, as :class:`~mmdata.cli.common.DiagnosticConsole`
    does; rich's default exits 1 and points stdout at /dev/null even when stderr was the closed one."""
    from rich.console import Console

    def on_broken_pipe(self: Console) -> None:
        self.quiet = True
        try:
            fd = self.file.fileno()
        except (OSError, ValueError, AttributeError):
            fd = None
        broken_pipe(fd)

    Console.on_broken_pipe = on_broken_pipe  # type: ignore[method-assign]


def _warnings_as_lines() -> None:
    """A library UserWarning (a per-pixel map the recipe will not move, shards listed twice) prints as
    the commands' own ``warning: ...`` line on stderr (:func:`mmdata.terminal.warnings_as_lines`, which keeps
    it a line under ``PYTHONWARNINGS=error`` too: QA, a job whose cache could not take its record ended in a
    traceback, its lock and journal left in OUT); a :class:`mmdata.errors.CacheWarning` also joins the
    ``warnings`` list of the command's ``--json`` result."""
    from mmdata.cli.common import SHOWN_WARNINGS, warn
    from mmdata.errors import CacheWarning
    from mmdata.terminal import warnings_as_lines

    def say(message: str, category: type[Warning]) -> None:
        warn(message)
        if issubclass(category, CacheWarning):  # the job's own (not a run's, not a worker's): in --json too
            SHOWN_WARNINGS.append(message)

    warnings_as_lines(say)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user-fixable errors print one line and exit 2. A SIGTERM that lands in the process's
    teardown after the result was printed (0.3 - 0.6 s of interpreter and torch teardown) still exits 143:
    ignoring it there (QA35 pipeline #1's first fix) left a process whose teardown hung unkillable but by
    SIGKILL (QA35 review); what the command printed is complete, and a rerun says it is up to date."""
    _main(argv)


def _no_thread(exc: BaseException) -> str | None:
    """The out-of-memory line for a thread that could not start (``RuntimeError: can't start new thread``):
    under ``ulimit -v`` the first thing to fail is a new thread's stack (QA35 lowmem #1: a 30-line traceback
    from the progress thread at 300 MiB, where 500 MiB gave this line); None for any other error."""
    from mmdata.io import out_of_memory

    if not isinstance(exc, RuntimeError) or "can't start new thread" not in str(exc):
        return None
    return out_of_memory(MemoryError("can't start new thread (its stack does not fit in this process's address "
                                     "space, or the thread limit: ulimit -u)"))


def _main(argv: list[str] | None) -> None:
    from mmdata.errors import MMDataError

    from mmdata.cli.common import SHOWN_WARNINGS

    for said in (SHOWN_WARNINGS, STOPPED):  # this command's only (main() may run twice in one process)
        said.clear()
    if argv is None:  # run as the command (not called from Python with its own arguments)
        _utf8_file_names()
        _more_open_files()
        _matplotlib_config()
        _warnings_as_lines()
        # a short write to stdout (a full disk) raises instead of dropping the rest; not from Python (QA: a
        # caller's sys.stdout was replaced for the rest of its process, its own writes reordered)
        checked_stdout()
    _printable_streams()
    _broken_pipes_exit_141()
    _help_style((app, datasets.app))
    hook = sys.excepthook
    try:
        try:
            app(args=argv, standalone_mode=True)
        finally:
            if argv is not None:  # called from Python: typer's app sets its own excepthook for the process
                sys.excepthook = hook  # (QA: a notebook calling main([...]) kept typer's hook afterwards)
            if sys.stdout is not None:  # a test may have set it to None
                # output still buffered meets a closed pipe or a full disk here, not in Python's exit
                sys.stdout.flush()
    except MMDataError as exc:
        _error_line(str(exc))
        sys.exit(_error_code(exc))
    except BrokenPipeError:
        broken_pipe()
    except StdoutError as exc:  # a full disk under `> file`: the result is cut short
        _error_line(stdout_error_line(exc))
        sys.exit(2)
    except Exception as exc:  # out of memory (MemoryError, OpenCV's, torch's ...): one line, exit 2, like other host limits
        from mmdata.io import out_of_memory

        said = out_of_memory(exc) or _no_thread(exc)
        if said is None:
            raise
        _error_line(said)
        sys.exit(2)


def _error_line(message: str) -> None:
    from rich.markup import escape

    # escaped: messages name things like mmdata[ray] or a recipe key path[0], which are not markup
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
