"""Shared typer parameter aliases and output helpers for the command modules.

Streams, as scripts expect them: stdout holds a command's result (tables, or one JSON document with
``--json``); stderr holds progress, warnings and errors (:data:`err_console`, :func:`warn`).
"""

from __future__ import annotations

import copy
import errno
import io
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console, ConsoleDimensions, RenderHook
from rich.markup import escape
from rich.table import Table

from mmdata.checks import plural  # noqa: F401 - the commands' count wording, imported from here
from mmdata.errors import install_hint
from mmdata.io import finite
from mmdata.procs import watch_for_a_dropped_exception
from mmdata.recipes_path import fallback, fallback_line, shipped_recipes

#: width of stdout's console on a pipe or a file: no limit a record would reach, so every record is one
#: line (``| wc -l``, ``| grep``) and a table is as wide as its rows, never cut or wrapped at 80 columns
UNLIMITED_WIDTH = 1 << 20
#: exit status when stdout (or stderr) is a closed pipe (``mmdata inspect DS | head -1``): 128 + SIGPIPE,
#: what a program killed by SIGPIPE reports to the shell
EXIT_BROKEN_PIPE = 128 + 13


def broken_pipe(fd: int | None = None) -> NoReturn:
    """End the command quietly with :data:`EXIT_BROKEN_PIPE` after a write into a closed pipe.

    As Python's docs advise (library/signal.html, "Note on SIGPIPE"): the stream is pointed at
    /dev/null first, so the flush at exit does not fail again ("Exception ignored ... BrokenPipeError").
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno() if fd is None else fd)
    except (OSError, ValueError):  # stdout replaced by an object without a file descriptor (tests)
        pass
    finally:
        os.close(devnull)
    raise SystemExit(EXIT_BROKEN_PIPE)


class StdoutError(OSError):
    """A write to stdout that failed for another reason than a closed pipe (a full disk, ``ulimit -f``):
    the result is incomplete, and the command ends with one ``error:`` line and exit 2."""


class WholeWrites(io.RawIOBase):
    """stdout's file descriptor for :func:`checked_stdout`: a write writes every byte or raises.

    Python's own buffered stdout takes a short write (a disk with 4 KiB left) for a partial success and
    drops the rest of the data without an error: ``mmdata train --json > full/t.json`` left 4096 bytes
    of JSON and exited 0. Here the rest is written again, so the disk's error surfaces (as
    :class:`StdoutError`; a closed pipe stays BrokenPipeError). After a failure further writes are
    dropped: the error is being reported, and the flush at exit must not fail again.
    """

    def __init__(self, fd: int, closed: bool = False) -> None:
        super().__init__()
        self.fd = fd
        self.closed_at_start = closed  # the shell closed it (>&-): fd is /dev/null, the result cannot be written
        self.failed = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return not self.closed_at_start and os.isatty(self.fd)

    def write(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self.failed:
            return len(view)
        if self.closed_at_start:
            self.failed = True
            raise BrokenPipeError(errno.EPIPE, "stdout is closed")
        done = 0
        try:
            while done < len(view):
                done += os.write(self.fd, view[done:])
        except BrokenPipeError:
            self.failed = True
            raise
        except OSError as exc:
            self.failed = True
            raise StdoutError(exc.errno, os.strerror(exc.errno) if exc.errno else str(exc)) from None
        return done


def checked_stdout() -> None:
    """Point ``sys.stdout`` at :class:`WholeWrites` (the process's own stdout only, not a test's
    capture), its encoding and line buffering kept, characters it cannot encode printed as escapes
    (``errors="backslashreplace"``). A stdout the shell closed (``>&-``) is fd 1 reopened on /dev/null,
    so no file the command opens takes fd 1, and its first write is a closed pipe: exit 141."""
    out = sys.stdout
    if out is not sys.__stdout__ or isinstance(getattr(getattr(out, "buffer", None), "raw", None), WholeWrites):
        return
    closed = out is None or not _fd_open(1)
    if closed:
        _devnull_on(1)
    else:
        out.flush()
    raw = WholeWrites(1, closed=closed)
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(raw), encoding=getattr(out, "encoding", None) or "utf-8",
                                  errors="backslashreplace", line_buffering=bool(getattr(out, "line_buffering", False)))


def checked_stderr() -> None:
    """A stderr the shell closed (``2>&-``) is fd 2 reopened on /dev/null: the diagnostics are dropped
    (as ``2>/dev/null``), no file the command opens takes fd 2, and the exit status is the command's."""
    if sys.stderr is None or not _fd_open(2):
        _devnull_on(2)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                                      write_through=True)


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _devnull_on(fd: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    if devnull != fd:
        os.dup2(devnull, fd)
        os.close(devnull)


def write_stdout_bytes(data: bytes) -> None:
    """Write ``data`` to stdout's binary buffer whole (a buffered write may take only part of it, as
    :class:`WholeWrites` explains) and flush it: a full disk raises, never cuts the output short."""
    buf = sys.stdout.buffer
    view = memoryview(data)
    while view:
        n = buf.write(view)
        if not n:
            raise StdoutError(errno.EIO, "the write took no byte")
        view = view[n:]
    buf.flush()


def stdout_error_line(exc: OSError) -> str:
    """The ``error:`` line of a failed write to stdout (:class:`StdoutError`)."""
    return (f"cannot write the result to stdout: {exc.strerror or exc}; the output is incomplete (free space, or "
            "write it elsewhere)")


class ResultConsole(Console):
    """stdout's console: on a terminal, the terminal's width (tables fold, see :func:`table`); on
    a pipe or a file, :data:`UNLIMITED_WIDTH`, whatever ``COLUMNS`` says (rich otherwise wraps at 80
    columns, or at the terminal's width read from stdin: one problem of ``mmdata verify DS | wc -l``
    was 3 lines). Decided at each print: typer's test runner swaps ``sys.stdout``.

    A dumb terminal (``TERM=dumb``: emacs' shell, emacspeak) is measured too: rich takes it as 80x25
    whatever its size, so tables were 71 columns wide in a 40-column window (QA27 A10)."""

    @property  # type: ignore[override]
    def size(self) -> ConsoleDimensions:
        if self.is_dumb_terminal:  # a width or height given (or COLUMNS / LINES when it was made) wins
            width, height = _terminal_size(self)
            return ConsoleDimensions(width if self._width is None else self._width,
                                     height if self._height is None else self._height)
        size = Console.size.fget(self)  # type: ignore[attr-defined]
        return size if self.is_terminal else ConsoleDimensions(UNLIMITED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    def on_broken_pipe(self) -> None:
        """rich's default exits 1 (a failure to a script's ``set -o pipefail``); see :func:`broken_pipe`."""
        self.quiet = True
        broken_pipe()


def _terminal_size(con: Console) -> ConsoleDimensions:
    """A terminal's size as rich measures a smart one: the window's (the console's stream first, then the
    standard streams), ``COLUMNS`` / ``LINES`` over it, 80x25 when neither says."""
    width = height = 0
    fds = []
    try:
        fds.append(con.file.fileno())
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        pass
    for fd in (*fds, 1, 0, 2):
        try:
            width, height = os.get_terminal_size(fd)
        except (AttributeError, ValueError, OSError):
            continue
        break
    env = os.environ
    columns, lines = env.get("COLUMNS", ""), env.get("LINES", "")
    width = int(columns) if columns.isdigit() else width
    height = int(lines) if lines.isdigit() else height
    return ConsoleDimensions(width or 80, height or 25)


class DiagnosticConsole(Console):
    """stderr's console: a closed stderr ends the command as a closed stdout does (rich's default
    would point stdout at /dev/null instead and exit 1)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        broken_pipe(sys.stderr.fileno())


class _Escaped:
    """A renderable as :class:`TerminalSafe` prints it: its text segments through
    :func:`mmdata.terminal.terminal_lines`, its control segments (rich's own cursor moves) as they are."""

    def __init__(self, renderable: Any) -> None:
        self.renderable = renderable

    def __rich_measure__(self, console: Any, options: Any) -> Any:
        from rich.measure import Measurement

        return Measurement.get(console, options, self.renderable)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.segment import Segment

        from mmdata.terminal import terminal_lines

        for seg in console.render(self.renderable, options):
            text = seg.text
            if seg.control or text.isprintable() or text == "\n":
                yield seg
            else:
                yield Segment(terminal_lines(text), seg.style)


class TerminalSafe(RenderHook):
    """The last guard of what a command prints (pushed on :data:`console` and :data:`err_console`): escape
    sequences a string from downloaded data carries (a class name's ``ESC]52;`` clipboard write, ``\\x9b``,
    U+202E) are printed escaped even where a command forgot :func:`card_text` (rich drops only BEL; an
    ST-terminated OSC went through). The commands still escape such strings themselves, before a table
    measures them."""

    def process_renderables(self, renderables: list[Any]) -> list[Any]:
        return [_Escaped(r) for r in renderables]


def terminal_safe(con: Console) -> Console:
    """``con`` with :class:`TerminalSafe` pushed on it (returned for ``terminal_safe(Console(stderr=True))``)."""
    con.push_render_hook(TerminalSafe())
    return con


console = terminal_safe(ResultConsole())
# soft_wrap: a warning or error is one line (the terminal wraps it; a log keeps it whole)
err_console = terminal_safe(DiagnosticConsole(stderr=True, soft_wrap=True))


def warn(message: str) -> None:
    """A ``warning:`` line on stderr (stdout stays the command's result: the tables, or the JSON)."""
    from mmdata.terminal import terminal_lines

    err_console.print(f"[yellow]warning:[/] {escape(terminal_lines(message))}", highlight=False)


def note(message: str) -> None:
    """A diagnostic line on stderr (``message`` is rich markup: escape the data in it)."""
    err_console.print(message, highlight=False)


def one_line_path(path: Any) -> str:
    """A path as a result line prints it: one line whatever its name holds. Bytes of a non-UTF-8 name are
    ``\\xff`` (:func:`mmdata.shards.sources.printable`) and control, format and separator characters are escaped
    as :func:`mmdata.terminal.terminal_text` says (``a\\nb``; a ZWJ / ZWNJ inside a word kept): a newline in a
    folder's name broke "one record per line" (``wrote ... to runs/a``, ``b/ds`` on the next line).

    Example:
        >>> print(one_line_path("runs/a\\nb/ds"), one_line_path("café"))
        runs/a\\nb/ds café
    """
    from mmdata.shards.sources import printable
    from mmdata.terminal import terminal_text

    try:
        text = printable(str(path))
    except UnicodeEncodeError:  # a lone surrogate a JSON card can hold (\ud800), not a file name's byte
        text = str(path).encode("utf-8", "backslashreplace").decode("utf-8")
    return terminal_text(text)


#: the characters of one card string (a name, a class, a license) inspect and diff print; --json has it whole
MAX_CARD_TEXT = 200


def card_text(value: object, limit: int = MAX_CARD_TEXT) -> str:
    """A string from a dataset card (downloaded data) as the terminal gets it: on one line with control characters
    escaped (``\\x1b``: a card's ``ESC[2J`` would clear the screen, ``ESC[1A ESC[2K`` erase the warning above),
    and cut after ``limit`` characters with how many it has (a 1 MB class name printed whole).

    Example:
        >>> print(card_text("n\\x1b[2J"), card_text("x" * 300, limit=5))
        n\\x1b[2J xxxxx... (300 characters)
    """
    text = one_line_path(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def rounded(value: float, decimals: int = 2) -> str:
    """A measured value for people: at most ``decimals`` decimals, none for a whole number, never an exponent
    (``:g`` printed ``0.251247`` seconds and ``1.23457e+06`` characters); ``--json`` keeps every digit.

    Example:
        >>> rounded(0.2512471655), rounded(24), rounded(22.5), rounded(1234567.0)
        ('0.25', '24', '22.5', '1234567')
    """
    text = f"{float(value):.{decimals}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text


def table(*headers: str, **kw: Any) -> Any:
    """A rich Table whose columns fold a value that does not fit (over several lines) instead of cutting it
    to ``imag…`` / ``0.48…`` on a narrow terminal: a value is never hidden. On a pipe there is room
    for every row (:class:`ResultConsole`).

    Example:
        >>> t = table("split", "samples", title="splits")
    """
    from rich.table import Column

    return _FoldingTable(*(Column(h, overflow="fold") for h in headers), **kw)


class _FoldingTable(Table):
    """A table that never splits a word in the middle: when the terminal is too narrow for each column's longest
    word, header words included, in screen cells (``+3.06`` read as ``+3.`` over ``06``, ``preci`` over ``sion``,
    QA at 40 to 80 columns), each row is printed as ``header: value`` lines instead (a record per row, which a
    screen reader reads in order too). A dumb terminal (``TERM=dumb``: emacs' shell, where emacspeak reads the
    output aloud) always gets the records: no box-drawing characters to read out or to misalign. A terminal whose
    encoding cannot show a character (an ASCII locale) gets the cells with such characters as escapes before they
    are measured, so the borders line up."""

    def __init__(self, *columns: Any, **kw: Any) -> None:
        super().__init__(*columns, **kw)
        self.records: list[list[str]] = []  # each row's cells as markup, as the table reads them

    def add_row(self, *cells: Any, **kw: Any) -> None:
        self.records.append([c if isinstance(c, str) else "" if c is None else escape(str(getattr(c, "plain", c)))
                             for c in cells])
        super().add_row(*cells, **kw)

    @staticmethod
    def _widths(rows: list[list[str]], headers: list[str]) -> tuple[list[int], list[int]]:
        """Each column's longest word and longest line, in screen cells (a CJK character is two), its header
        included."""
        from rich.cells import cell_len
        from rich.text import Text

        texts = [[Text.from_markup(t).plain for t in (headers[i], *(r[i] for r in rows if i < len(r)))]
                 for i in range(len(headers))]
        words = [max((cell_len(w) for t in col for w in t.split()), default=1) for col in texts]
        lines = [max((cell_len(ln) for t in col for ln in t.splitlines() or [""]), default=1) for col in texts]
        return words, [max(w, ln) for w, ln in zip(words, lines)]

    def __rich_console__(self, console: Any, options: Any) -> Any:
        headers = [str(c.header) if isinstance(c.header, str) else escape(str(getattr(c.header, "plain", c.header)))
                   for c in self.columns]
        rows = self.records
        shown = self
        encoding = (console.encoding or "utf-8").lower()
        if not encoding.startswith("utf") and rows:  # escapes now, so that rich measures what the terminal shows
            headers, rows = [encodable(h, encoding) for h in headers], [[encodable(c, encoding) for c in r] for r in rows]
            shown = _FoldingTable.__new__(_FoldingTable)
            shown.__dict__.update({**self.__dict__, "columns": [], "rows": [], "records": []})
            for column, header in zip(self.columns, headers):
                shown.add_column(header, overflow="fold", justify=column.justify, style=column.style)
            for row in rows:
                Table.add_row(shown, *row)
        words, lines = self._widths(rows, headers)
        room = options.max_width - (3 * len(headers) + 1)  # the borders and the padding beside them
        if not rows or (sum(words) <= room and not console.is_dumb_terminal):
            # rich narrows the widest columns first, below their longest word (QA: 'inconclusiv' over 'e' at 80
            # columns): each column gets its longest word, and the room left in proportion to what it lacks
            if console.is_dumb_terminal and shown.box is not None:  # no rows: the headers alone, in ASCII
                from rich import box

                shown = copy.copy(shown)
                shown.box = box.ASCII
            for column in shown.columns:
                column.width = None
            if sum(lines) > room:
                lack = [ln - w for w, ln in zip(words, lines)]
                share = [(room - sum(words)) * x // max(sum(lack), 1) for x in lack]
                for column, w, extra in zip(shown.columns, words, share):
                    column.width = w + extra
            yield from Table.__rich_console__(shown, console, options)
            return
        from rich.text import Text

        if self.title:
            title = self.title if isinstance(self.title, str) else escape(str(getattr(self.title, "plain", self.title)))
            yield Text.from_markup(encodable(title, encoding) if not encoding.startswith("utf") else title, style="bold")
        for row in rows:  # headers and cells are markup, as the table reads them (escaped names stay names)
            for header, cell in zip(headers, row):
                yield Text.from_markup(f"{header}: {cell}")
            yield Text("")
        if self.caption:
            caption = self.caption if isinstance(self.caption, str) else escape(str(getattr(self.caption, "plain", self.caption)))
            yield Text.from_markup(encodable(caption, encoding) if not encoding.startswith("utf") else caption)


def encodable(text: str, encoding: str | None = None) -> str:
    """``text`` as a stream of ``encoding`` (default: stdout's) prints it: characters it lacks as the ``\\xe9`` /
    ``\\u0394`` escapes the stream writes (:func:`checked_stdout`), so a table measures the text that is printed
    (QA: ``PYTHONIOENCODING=ascii`` misaligned the rows of ``café`` and ``日本``).

    Example:
        >>> print(encodable("café", "ascii"), encodable("cat"))
        caf\\xe9 cat
    """
    encoding = encoding or getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        return text


DataDir = Annotated[Path, typer.Argument(help="A dataset folder written by `mmdata shard`.")]
ShardsOrDataDir = Annotated[Path, typer.Argument(help="A dataset folder written by `mmdata shard` (or a shard pattern).")]
DataUrl = Annotated[str, typer.Argument(help="A dataset folder written by `mmdata shard`: a path, or an fsspec URL "
                                             "(s3://bucket/ds; credentials and endpoint from the environment).")]
OutDir = Annotated[Path, typer.Argument(help="Output folder (created).")]
RewriteFlag = Annotated[bool, typer.Option("--rewrite", help="Write the job even when OUT already holds its output "
                                                             "(by default a rerun over unchanged sources, options and "
                                                             "code writes nothing: up to date).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of tables (an error "
                                                       "too: {\"ok\": false, \"error\": ..., \"exit_code\": N}); "
                                                       "stderr keeps the progress, warnings and problems.")]
#: the help of the options naming the splits that play train / val / test (mmdata train, mmdata ablate)
SPLIT_HELP = {
    "train_split": "Splits read as the training split, A,B,C. Default: train; with --val-split / --test-split, every "
                   "other split of the dataset (k-fold: --val-split 4 --test-split 5 trains on folds 1,2,3).",
    "val_split": "The split used for validation (best epoch). Default: val.",
    "test_split": "The split scored as test. Default: test.",
}


def split_option(key: str, extra: str = "") -> Any:
    """The ``--train-split`` / ``--val-split`` / ``--test-split`` option (``key``), its help plus ``extra``."""
    return Annotated[Optional[str], typer.Option(help=f"{SPLIT_HELP[key]} {extra}".strip())]


def one_of(*values: str) -> Callable[[str], str]:
    """An option's callback refusing a value not in ``values``, naming the option and the values as --help lists
    them (the library's own check named its keyword: "on_error must be one of ...").

    Example:
        >>> one_of("skip", "raise")("skip")
        'skip'
    """
    def check(value: str) -> str:
        if value not in values:
            listed = ", ".join(values[:-1]) + f" or {values[-1]}" if len(values) > 1 else values[0]
            raise typer.BadParameter(f"{value!r} is not one of {listed}")
        return value

    return check


Seed = Annotated[int, typer.Option("--seed", help="Seed: same input + seed -> same bytes / params / metrics.")]
Workers = Annotated[int, typer.Option("--workers", "-j", min=1, help="Parallel worker processes.")]
# "\[": rich markup escape, shown as "[" in rich help; cli/main.py removes the backslash for plain help
ExecutorOpt = Annotated[str, typer.Option("--executor", help="local (this machine) or ray (Ray tasks on a cluster; "
                                                            f"{install_hint('ray')}; see docs/scale.md)."
                                                            .replace("[", "\\["))]
AddressOpt = Annotated[Optional[str], typer.Option("--address", help="With --executor ray: the cluster (auto, HOST:PORT, "
                                                                 "ray://HOST:PORT); default: RAY_ADDRESS or a local Ray.")]


#: the line of the signal that stopped this command (:func:`stopped_as_exit`, ablate's runner): the ``error`` of
#: the ``--json`` error document its end prints (cli/main.py). Cleared by ``main()``, as :data:`SHOWN_WARNINGS`
STOPPED: list[str] = []
#: the schema of the ``--json`` command running now (:func:`command_schema`; cli/main.py sets it): its result's
#: ``schema``; and a signal's end from the watch thread (:class:`_SignalWatch`), which ends the process itself,
#: prints the error document on stdout too
JSON_OUTPUT: list[str] = []


def stop_document(line: str, exit_code: int) -> str:
    """The ``--json`` error document of a command stopped by a signal (``exit_code`` 130 / 143 / 129), as text."""
    return json.dumps({"ok": False, "error": line, "exit_code": exit_code}, indent=2, sort_keys=True) + "\n"


class Terminated(SystemExit):
    """Raised in the main thread by SIGTERM (or SIGHUP) under :func:`terminated_as_exit`; its code is 128 +
    the signal's number: 143 (129)."""


PluginOpt = Annotated[Optional[list[str]], typer.Option(
    "--plugin", help="Import this module first, for your own ops / fusions (repeatable): pkg.ops or pkg.ops:register "
                     "(docs/extending.md). Installed packages' mmdata.plugins entry points are loaded too.")]


def plugins(specs: Optional[list[str]]) -> list[str]:
    """Load ``--plugin`` modules and installed plugin entry points before a command reads a recipe or a
    fusion name; the specs loaded (what worker processes must import too)."""
    from mmdata.plugins import load_plugins

    return load_plugins(specs or [], where="--plugin")


#: seconds a handled signal's Python handler gets to run before :class:`_SignalWatch` ends the process itself
#: (the main thread blocked in native code: a TCPStore rendezvous, a collective waiting for a dead peer)
HANDLER_GRACE_S = 3.0
#: torch's errors for a DataLoader worker that ended, as a signal to the whole group ends it (SLURM and
#: ``kill -- -PGID`` signal every process): "is killed by signal: Terminated", "exited unexpectedly"
_WORKER_KILLED = re.compile(r"DataLoader worker \(pid[^)]*\) (is killed by signal|exited unexpectedly)")
#: the watches of this process (nested commands): a forked child (a DataLoader worker) forgets them
_WATCHES: list[_SignalWatch] = []


class _SignalWatch:
    """The signals' last resort when their Python handler cannot run: Python runs a handler only between
    bytecodes of the main thread, never while it is blocked in C++ (QA: ``mmdata train`` as rank 1 of 2
    without its rank 0 ignored SIGTERM for 10 minutes, waiting in ``init_process_group``). The C-level
    handler writes each signal's number into a pipe (:func:`signal.set_wakeup_fd`); a daemon thread reads it,
    and when the handler has not run within :data:`HANDLER_GRACE_S` it prints the command's one line and
    ends the process with ``128 + signum`` (``os._exit``: from a thread the only way; the clean-up of the
    ``finally`` blocks cannot run in a blocked thread anyway). Not started where another wakeup fd is set
    (an asyncio loop's signal handling)."""

    def __init__(self, signums: set[int], line: Callable[[int], str]) -> None:
        self.signums, self.line = signums, line
        self.ran: list[float] = []  # monotonic times the handler ran
        self.cond = threading.Condition()
        self.old = -1
        self.r, self.w = os.pipe()
        os.set_blocking(self.w, False)
        try:
            self.old = signal.set_wakeup_fd(self.w, warn_on_full_buffer=False)
        except (ValueError, OSError):
            self.old = None  # not the main thread of the main interpreter: no watch
        if self.old not in (None, -1):  # someone else's (asyncio): left to them
            signal.set_wakeup_fd(self.old)
            self.old = None
        if self.old is None:
            self._close()
            return
        _WATCHES.append(self)
        try:
            threading.Thread(target=self._watch, name="mmdata-signal-watch", daemon=True).start()
        except RuntimeError:  # "can't start new thread" (ulimit -v, QA35 lowmem #1): the Python handlers
            self.stop()  # alone, as where another wakeup fd is set; the job goes on
            self._close()

    @property
    def active(self) -> bool:
        return self.old is not None

    def handled(self) -> None:
        """The Python handler ran (called from it)."""
        with self.cond:
            self.ran.append(time.monotonic())
            self.cond.notify_all()

    def _watch(self) -> None:
        while True:
            try:
                data = os.read(self.r, 64)
            except OSError:
                return
            if not data:  # closed: the watch ended
                os.close(self.r)
                return
            signums = [b for b in data if b in self.signums]
            if not signums:
                continue  # another signal's (SIGCHLD of torch's DataLoader)
            # the handler may have run just before this read: one run since shortly before counts
            since = time.monotonic() - 1.0
            with self.cond:
                ok = self.cond.wait_for(lambda: any(t >= since for t in self.ran), timeout=HANDLER_GRACE_S)
            if ok or self.old is None:
                continue
            signum = signums[0]
            try:
                os.write(2, (self.line(signum) + "\n").encode("utf-8", "backslashreplace"))
            except OSError:  # a hung-up terminal: the exit status still says it
                pass
            if JSON_OUTPUT:  # README: every failure under --json prints its document
                try:
                    os.write(1, stop_document(self.line(signum), 128 + signum).encode("utf-8", "backslashreplace"))
                except OSError:
                    pass
            os._exit(128 + signum)

    def stop(self) -> None:
        if self.old is None:
            return
        try:
            signal.set_wakeup_fd(self.old)
        except ValueError:
            pass
        self.old = None
        if self in _WATCHES:
            _WATCHES.remove(self)
        os.close(self.w)  # the thread reads the end of the pipe and returns
        self.w = -1

    def _close(self) -> None:
        for fd in (self.r, self.w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _forget_watches_in_child() -> None:
    """A forked child (a DataLoader worker) would write its own signals into its parent's watch pipe: it has
    no watch thread, so the wakeup fd is unset and its copies of the pipes are closed."""
    if not _WATCHES:
        return
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    for w in _WATCHES:
        w.old = None
        w._close()
    _WATCHES.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_watches_in_child)


def blocked_line(signum: int) -> str:
    """The line of a command whose signal ended it while blocked in native code (:class:`_SignalWatch`),
    where the command has no line of its own."""
    return (f"mmdata interrupted by {signal.Signals(signum).name} while blocked in native code (a rendezvous, "
            "a collective, a read); it ended at once")


def _worker_killed_by(exc: BaseException, received: list[int]) -> int | None:
    """The signal this process received when torch's error for a DataLoader worker that ended follows it (a
    group's SIGTERM ended the worker too): the job was stopped, not failed. None for any other error, or a
    worker that ended while this process got no signal (within a second: one sent to the group is pending)."""
    if not isinstance(exc, RuntimeError) or not _WORKER_KILLED.search(str(exc)):
        return None
    for _ in range(20):  # the group's signal to this process may be pending still: its handler runs in sleep()
        if received:
            return received[0]
        time.sleep(0.05)
    return None


def _children_quiet() -> None:
    """Once a stop signal arrived, a child process's end says nothing more: torch's SIGCHLD handler raised
    "DataLoader worker ... is killed by signal: Terminated" for a worker the same group signal ended (one
    forked a moment before, whose ``worker_init_fn`` had not run yet), during the job's clean stop — after its
    one line, a traceback (QA round 22: 3 group SIGTERMs in 6 during contrastive pre-training). Not restored:
    the process is stopping, and its workers end on the way."""
    chld = getattr(signal, "SIGCHLD", None)
    if chld is not None:
        signal.signal(chld, _ignore_child)


def _ignore_child(signum: int, frame: Any) -> None:
    """A Python handler that does nothing (``SIG_DFL`` here would make a pending SIGCHLD an unraisable
    "ignored due to race condition" message)."""


@contextmanager
def terminated_as_exit(received: list[int] | None = None, line: Callable[[int], str] | None = None) -> Iterator[None]:
    """SIGTERM (a scheduler stopping the job, ``kill``) ends the command like an exception would: the
    ``finally`` blocks run (an atomic write removes its temp file, DataLoader workers are ended) and the
    exit code is 143 (128 + 15), instead of dying mid-write (``.predictions.parquet.XXXX.tmp`` was left
    in ``--out``). SIGHUP (the terminal or the ssh session closed) is handled the same way, exit 129,
    unless it is ignored (``nohup``: it stays ignored). Only in the main thread, where Python delivers
    signals. Both SIGTERM's exception and
    Ctrl-C's KeyboardInterrupt are raised again should C code drop them
    (:func:`mmdata.procs.watch_for_a_dropped_exception`).

    While the main thread is blocked in native code (a DDP rendezvous, a collective waiting for a dead
    peer), where no Python handler can run, the signal still ends the command within
    :data:`HANDLER_GRACE_S` seconds with its status and ``line(signum)`` on stderr (:class:`_SignalWatch`).
    torch's ``DataLoader worker ... is killed by signal: Terminated`` raised after such a signal (the
    whole process group was signalled) ends it as the signal would.

    Args:
        received: the signal numbers seen are appended here (Ray's blocking calls turn the exception
            into a KeyboardInterrupt: the list tells a SIGTERM from a Ctrl-C).
        line: the one line printed when the process must be ended from the watch (default :func:`blocked_line`).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = received if received is not None else []
    redeliveries: list[threading.Timer] = []
    in_hook: list[int] = []  # signals that landed while `swallowed` ran: it delivers them again itself
    hook_running: list[bool] = []

    def handler(signum: int, frame: Any) -> None:
        watch.handled()
        seen.append(signum)
        _children_quiet()
        if hook_running:  # raised inside the hook, it would be printed and lost (QA30: the job ran on)
            in_hook.append(signum)
            return
        watch_for_a_dropped_exception(frame, lambda: Terminated(128 + signum))  # C code may drop it
        raise Terminated(128 + signum)

    def swallowed(u: Any) -> None:
        # a signal's exception raised inside a callback that cannot raise (an at-fork handler while a
        # DataLoader forks its workers, a __del__, a cffi callback of soundfile) is printed and dropped,
        # and the job ran on: deliver the signal again a little later (from here it would be handled at
        # once, inside this hook, and dropped too), until it lands in ordinary code
        signum = (int(u.exc_value.code) - 128 if isinstance(u.exc_value, Terminated) else
                  signal.SIGINT if isinstance(u.exc_value, KeyboardInterrupt) else None)
        if signum is None:
            hook(u)
            return
        hook_running.append(True)
        try:
            pending = [signum]
            while pending:  # this signal, and any other that lands while a timer starts (the handler queues it)
                again = threading.Timer(0.05, os.kill, (os.getpid(), pending.pop()))
                again.daemon = True
                redeliveries.append(again)
                again.start()
                pending += [n for n in dict.fromkeys(in_hook) if n != signum]
                in_hook.clear()
        finally:
            hook_running.clear()  # one landing in these last steps is still ended by the timer just started

    def interrupted(signum: int, frame: Any) -> None:
        # Python's own Ctrl-C handler, watched the same way (QA: a Ctrl-C during `augment -j 2` ran on to exit 0)
        watch.handled()
        seen.append(signum)
        _children_quiet()
        if hook_running:
            in_hook.append(signum)
            return
        watch_for_a_dropped_exception(frame, KeyboardInterrupt)
        raise KeyboardInterrupt

    # SIGHUP left with its default action ended the job at once: no finally ran, temp files were left
    hup = getattr(signal, "SIGHUP", None)
    take_hup = hup is not None and signal.getsignal(hup) is signal.SIG_DFL
    # only where Ctrl-C has Python's own handler (not where it is ignored: a job started in the background)
    take_int = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    watch = _SignalWatch({int(signal.SIGTERM), *((int(hup),) if take_hup else ()),  # type: ignore[arg-type]
                          *((int(signal.SIGINT),) if take_int else ())}, line or blocked_line)
    old, hook = signal.signal(signal.SIGTERM, handler), sys.unraisablehook
    old_hup = signal.signal(hup, handler) if take_hup else None  # type: ignore[arg-type]
    old_int = signal.signal(signal.SIGINT, interrupted) if take_int else None
    # a signal held back by the parent (one that forked while it blocked SIGTERM, as multiprocessing's resource
    # tracker and mmdata's hashing thread do for a moment) stays blocked in a child: the scheduler's SIGTERM
    # then waits forever, and the job trains on until SIGKILL; the signals handled here reach their handler
    old_mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, watch.signums) if hasattr(signal, "pthread_sigmask") else None
    sys.unraisablehook = swallowed
    try:
        try:
            yield
        except RuntimeError as exc:
            signum = _worker_killed_by(exc, seen)
            if signum is None:
                raise
            if signum == signal.SIGINT:
                raise KeyboardInterrupt from None
            raise Terminated(128 + signum) from None
    finally:
        for again in redeliveries:  # once the handlers are restored, a signal sent again would kill the process
            again.cancel()
        watch.stop()
        signal.signal(signal.SIGTERM, old)
        if old_hup is not None:
            signal.signal(hup, old_hup)
        if old_int is not None:
            signal.signal(signal.SIGINT, old_int)
        if old_mask is not None and old_mask & watch.signums:  # held back again as the caller had it
            signal.pthread_sigmask(signal.SIG_BLOCK, old_mask & watch.signums)
        sys.unraisablehook = hook


@contextmanager
def stopped_as_exit(what: str, then: str) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP end the command with one line on stderr, ``{what} interrupted[ by SIGTERM];
    {then}``, and exit 130 / 143 / 129, after the ``finally`` blocks ran (temp files removed).

    Example:
        >>> with stopped_as_exit("mmdata shard into ds", "rerun the same command to resume it"):
        ...     pass
    """
    from rich.markup import escape

    received: list[int] = []

    def line(signum: int) -> str:
        by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
        return f"{what} interrupted{by}; {then}"

    try:
        with terminated_as_exit(received, line):
            yield
    except (KeyboardInterrupt, Terminated) as exc:
        signum = received[0] if received else signal.SIGINT
        by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
        STOPPED.append(f"{what} interrupted{by}; {then}")  # the --json error document's (cli/main.py)
        try:
            note(f"[yellow]{escape(what)} interrupted{by}[/]; {escape(then)}")
        except OSError:  # a hung-up terminal (SIGHUP) refuses the line: the exit status still says it
            pass
        if isinstance(exc, Terminated):
            raise
        raise SystemExit(128 + signum) from None  # typer would turn a KeyboardInterrupt into a silent 130


def load_pandas_for_arrow() -> None:
    """Import pandas and pyarrow's pandas layer now, at the start of a command that writes Parquet.

    pyarrow imports pandas on its first conversion of Python values (``pa.array``, ``pa.table``,
    ``Table.from_pylist``: the first shard a job records, the first ``runs.parquet`` or predictions
    it writes) through a lazy shim. A Ctrl-C landing in that import, deep inside a job, could be
    swallowed by the shim (the job ran on) or leave pandas half-imported and pyarrow's shim set to
    "no pandas" for the rest of the process (a traceback, exit 1, from the job's clean-up). Here the
    import is plain Python before the job has written anything, so a Ctrl-C ends the command as at
    any other point. No extra cost for a job that runs: it would import pandas anyway (~0.2-0.3 s);
    a job that fails on its options pays it. Kept out of module imports: ``mmdata --help`` and
    spawned worker processes do not pay it, and the shard reader (DataLoader workers) never needs it.
    """
    try:
        import pandas  # noqa: F401
    except ImportError:  # pyarrow then has no pandas layer to import lazily either
        return
    import pyarrow as pa
    import pyarrow.pandas_compat  # noqa: F401 — the shim's other import

    pa.array([0])  # the shim's first use: with both modules loaded, a dictionary lookup


#: the cache warnings (:class:`mmdata.errors.CacheWarning`) this command printed as ``warning:`` lines
#: (main._warnings_as_lines): a ``--json`` result with a ``warnings`` list of strings carries them too (QA:
#: they reached stderr only). Only these: a run's or a worker's warnings have their own place (or none)
SHOWN_WARNINGS: list[str] = []


def print_json(obj: Any, exit_code: int = 0, error: str | None = None) -> None:
    """Print a command's ``--json`` result on stdout (:func:`write_json`) with what every result says, keys it
    has kept as they are: ``ok`` (``exit_code == 0``), ``exit_code`` (the status the command exits with: 1 for
    problems found or runs failed), ``error`` (a failed result's one-line summary, as an error document's) and
    ``schema`` (``mmdata.<command>/1``: ``mmdata.shard/1``, ``mmdata.datasets-build/1``). Its ``warnings`` get
    the cache warnings the command printed on stderr that they lack (:func:`_with_cache_warnings`).

    Example:
        >>> print_json({"samples": 3})  # doctest: +SKIP
    """
    if isinstance(obj, dict):
        said = {"ok": exit_code == 0, "exit_code": exit_code, **({"error": error} if error else {})}
        if JSON_OUTPUT:  # the command's (cli/main.py), not a caller's from Python
            said["schema"] = JSON_OUTPUT[-1]
        obj = {**{k: v for k, v in said.items() if k not in obj}, **obj}
        obj = {**obj, "warnings": _with_cache_warnings(obj.get("warnings"))} if SHOWN_WARNINGS else obj
    write_json(obj)


def _with_cache_warnings(said: Any) -> Any:
    """A result's ``warnings`` with the cache warnings the command printed on stderr (:data:`SHOWN_WARNINGS`) that
    it lacks: strings in a list of strings, ``{"kind": "cache", "message": ...}`` in a list of such objects
    (inspect's), a new list where the result has none (augment's, train's); any other value as it is."""
    shown = list(dict.fromkeys(SHOWN_WARNINGS))
    if said is None:
        return shown
    if not isinstance(said, list):
        return said
    if all(isinstance(w, str) for w in said):
        return [*said, *(w for w in shown if w not in said)]
    if all(isinstance(w, dict) and "message" in w for w in said):
        have = {w["message"] for w in said}
        return [*said, *({"kind": "cache", "message": w} for w in shown if w not in have)]
    return said


def write_json(obj: Any) -> None:
    """Print JSON to stdout (plain, no rich markup) for machines: keys sorted, NaN / infinity as null;
    ``allow_nan=False``: a value that would still be invalid JSON fails here, not in the reader."""
    typer.echo(json.dumps(finite(obj), indent=2, sort_keys=True, default=str, allow_nan=False))


def command_names(ctx: Any) -> list[str]:
    """The words of the command of the (typer) context ``ctx`` after ``mmdata``: ``["datasets", "build"]``."""
    names = []
    while ctx is not None and ctx.parent is not None:  # the root (mmdata itself, whatever argv[0] says) is not named
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return names[::-1]


def command_schema(ctx: Any) -> str:
    """``mmdata.<command>/1`` for the command of the (typer) context ``ctx`` (``mmdata.datasets-build/1`` for a
    group's): the ``schema`` of its ``--json`` result. A result whose layout changes gets a new number."""
    return f"mmdata.{'-'.join(command_names(ctx))}/1"


def no_room(exc: OSError, out: Any) -> None:
    """A writing job stopped by a full or read-only disk: an MMDataError (one line, exit 2) saying so; any
    other OSError is left to the caller (it re-raises)."""
    from mmdata.errors import MMDataError
    from mmdata.shards.writer import NO_ROOM

    if exc.errno in NO_ROOM:
        from mmdata.io import no_room_advice

        where = f" ({exc.filename})" if exc.filename else ""
        advice = no_room_advice(exc, out, retry="rerun the same command to resume (the shards it finished are kept)",
                                smaller="use smaller shards (--maxsize BYTES or --maxcount N) or write to another "
                                        "file system")
        raise MMDataError(f"cannot write into {out}{where}: {advice}") from None


def recipe_help(what: str, ablation: bool = False) -> str:
    """``what``'s help, naming the shipped recipes as the folder lists them (read once, at import)."""
    names = ", ".join(shipped_recipes(ablation)) or "none in this install"
    if ablation:
        return (f"{what}: a path, an object-store URL (s3://bucket/abl/config.resolved.yaml), or the name of an "
                f"ablation recipe that ships with mmdata when no such file exists ({names}).")
    return (f"{what}: a file, or the name of a recipe that ships with mmdata when no such file exists ({names}; "
            "avdigits.yaml and recipes/avdigits.yaml too).")


def shipped(recipe: Any, ablation: bool = False) -> Any:
    """The recipe argument as the command passes it on: the shipped recipe's file where it falls back to one,
    said once on stderr (a mistyped path of the user's own recipes/ folder got mmdata's copy unnoticed)."""
    found = fallback(recipe, ablation) if recipe is not None else None
    if found is None:
        return recipe
    note(escape(f"note: {fallback_line(recipe, found)}"))
    return found if isinstance(recipe, Path) else str(found)
