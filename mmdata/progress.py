"""Progress bars of long operations, one switch for all of them (``shard``, ``augment``, ``ablate``,
``train``'s epochs, staging a remote dataset).

Three looks, chosen by :func:`make_progress` from ``MMDATA_PROGRESS`` and stderr:

* a rich bar redrawn in place, on a terminal (``auto``, the default); on a narrow terminal the bar and then
  the description give way, the count and the times stay;
* plain lines at most once per ``MMDATA_PROGRESS_INTERVAL`` seconds (default :data:`DEFAULT_INTERVAL`)
  and one at the end, when stderr is not a terminal (a CI log, a pipe, a file) or with
  ``MMDATA_PROGRESS=plain`` (a screen reader): ``ablation runs: 30/116 (26%), 0:12:04 elapsed``.
  A job that is still busy prints a line each interval even without a step done, so a CI that kills
  silent jobs (CircleCI: after 10 minutes) sees it alive; never a cursor move or ``\\r``;
* nothing with ``MMDATA_PROGRESS=off`` (``0``, ``false``, ``no``): warnings and results still print.

Bars live in the main process only: a DataLoader worker or a Ray task gets none, and a plain bar
copied into a forked child stays silent there.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.filesize import decimal
from rich.measure import Measurement
from rich.progress import BarColumn, Progress, Task, TextColumn
from rich.table import Column, Table

#: the switch: auto (a bar on a terminal, plain lines elsewhere), plain, off
ENV = "MMDATA_PROGRESS"
#: seconds between two plain lines
INTERVAL_ENV = "MMDATA_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 30.0
_VALUES = {"": "auto", "auto": "auto", "on": "auto", "1": "auto", "true": "auto", "yes": "auto",
           "plain": "plain", "off": "off", "0": "off", "false": "off", "no": "off", "none": "off"}
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, UserWarning, stacklevel=3)


def parse_mode(raw: str) -> str:
    """The mode a ``MMDATA_PROGRESS`` value names: ``"auto"``, ``"plain"`` or ``"off"`` (an unknown value:
    a warning naming the choices, then ``"auto"``).

    Example:
        >>> parse_mode("false"), parse_mode(""), parse_mode("Plain")
        ('off', 'auto', 'plain')
    """
    mode = _VALUES.get(raw.strip().lower())
    if mode is None:
        _warn_once(f"{ENV}={raw!r} is not one of auto, plain, off (or 1/true/yes, 0/false/no): progress as with auto")
        return "auto"
    return mode


def progress_mode() -> str:
    """``MMDATA_PROGRESS``'s mode now (see :func:`parse_mode`)."""
    return parse_mode(os.environ.get(ENV, ""))


def parse_interval(raw: str) -> float:
    """Seconds between two plain progress lines, from a ``MMDATA_PROGRESS_INTERVAL`` value (empty:
    :data:`DEFAULT_INTERVAL`; ``0`` prints every step; not a number >= 0: a warning, the default).

    Example:
        >>> parse_interval("5"), parse_interval("") == DEFAULT_INTERVAL, parse_interval("1e308") == MAX_INTERVAL
        (5.0, True, True)
    """
    raw = raw.strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        _warn_once(f"{INTERVAL_ENV}={raw!r} is not a number of seconds >= 0: every {DEFAULT_INTERVAL:g} s")
        return DEFAULT_INTERVAL
    # a huge interval means "the final line only": the keep-alive thread's wait cannot take more than this
    # (QA: 1e10 killed it with OverflowError)
    return min(value, MAX_INTERVAL)


#: the longest interval (a year): longer waits overflow the platform's timers
MAX_INTERVAL = 365 * 24 * 3600.0


def progress_interval() -> float:
    """``MMDATA_PROGRESS_INTERVAL``'s interval now (see :func:`parse_interval`)."""
    return parse_interval(os.environ.get(INTERVAL_ENV, ""))


def _in_worker() -> bool:
    """In a DataLoader worker or a Ray task: no bar (only the main process shows progress)."""
    data = sys.modules.get("torch.utils.data")
    if data is not None and data.get_worker_info() is not None:
        return True
    if "ray" in sys.modules:
        try:
            from ray._private import worker

            return bool(worker.global_worker.mode == worker.WORKER_MODE)
        except Exception:  # another Ray version: the pid guard of PlainProgress still holds
            return False
    return False


def _live_terminal(console: Any) -> bool:
    """Whether stderr takes a bar redrawn in place: a terminal (or Jupyter), not a dumb one. ``FORCE_COLOR``
    (set by CI configurations for colours) does not count: a log cannot redraw; ``TTY_COMPATIBLE`` does."""
    said = os.environ.get("TTY_COMPATIBLE", "")
    if said in ("0", "1"):
        return said == "1"
    if console.is_jupyter:
        return True
    if os.environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return False
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def make_progress(*columns: Any, transient: bool = False, unit: str = "") -> Any:
    """A progress display on stderr with rich's ``Progress`` API (``add_task``, ``update``, ``advance``,
    ``start``/``stop`` or ``with``, ``tasks``, ``task_ids``), not started; None with ``MMDATA_PROGRESS=off``
    or in a worker process. ``columns`` are rich's, used on a terminal; ``unit`` names the count of the
    plain lines (``"batches"``; ``"bytes"`` prints sizes).

    Example:
        >>> bar = make_progress("{task.description}")  # here plain lines: stderr is not a terminal
        >>> bar is None or is_progress(bar)
        True
    """
    mode = progress_mode()
    if mode == "off" or _in_worker():
        return None
    console = Console(stderr=True)
    if mode == "auto" and _live_terminal(console):
        return FitProgress(*columns, console=console, transient=transient)
    return PlainProgress(*columns, console=console, transient=transient, unit=unit, interval=progress_interval())


def is_progress(obj: Any) -> bool:
    """Whether ``obj`` is a display :func:`make_progress` made (not a bool saying whether to make one)."""
    return isinstance(obj, Progress)


class FitProgress(Progress):
    """Rich's ``Progress`` whose line fits a narrow terminal: the count and time columns keep their
    width; the bar shrinks (down to 10 columns) then goes, then the description is cut with "…" (rich
    shared the cut among all columns: ``ablation runs (8 already done) ━━ 0… 0:…`` at 40 columns).

    Where its refresh thread cannot start (``ulimit -v``: QA35 lowmem #1), the bar is redrawn by the steps
    themselves, at most 10 times a second, instead of failing the job."""

    _by_steps = False  # no refresh thread: update / advance redraw
    _drawn = 0.0

    def start(self) -> None:
        try:
            super().start()
        except RuntimeError:  # "can't start new thread": rich's Live started all but its refresh thread
            self.live._refresh_thread = None
            self.live.auto_refresh = False
            self._by_steps = True

    def update(self, task_id: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(task_id, **kwargs)
        self._redraw()

    def advance(self, task_id: Any, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._redraw()

    def _redraw(self) -> None:
        if self._by_steps and self.live.is_started and time.monotonic() - self._drawn >= 0.1:
            self._drawn = time.monotonic()
            self.refresh()

    def make_tasks_table(self, tasks: Any) -> Table:
        tasks = [t for t in tasks if t.visible]
        if not tasks or not hasattr(self, "live"):  # rich's __init__ renders once before its console is set
            return super().make_tasks_table(tasks)
        cols = list(self.columns)
        desc = next((i for i, c in enumerate(cols) if (isinstance(c, str) and "description" in c) or
                     (isinstance(c, TextColumn) and "description" in c.text_format)), None)
        bars = [i for i, c in enumerate(cols) if isinstance(c, BarColumn)]
        rows = [[c.format(task=t) if isinstance(c, str) else c(t) for c in cols] for t in tasks]
        width = self.console.width
        options = self.console.options

        def wide(i: int) -> int:
            return max((Measurement.get(self.console, options, r[i]).maximum for r in rows), default=0)

        keep = [i for i in range(len(cols)) if i != desc and i not in bars]
        need = sum(wide(i) for i in keep) + max(len(keep) - 1, 0)
        room = width - need  # for the description, the bar and their gaps
        d = wide(desc) if desc is not None else 0
        b = sum(min(wide(i), width) for i in bars)
        gaps = (desc is not None) + len(bars)
        if room >= d + b + gaps:
            return super().make_tasks_table(tasks)
        bar_w = room - d - gaps
        if len(bars) != 1 or bar_w < 10:
            bar_w = 0
            d = min(d, max(room - (desc is not None), 0))
            if d < 4:
                d = 0
        shown = [i for i in range(len(cols)) if (i != desc or d) and (i not in bars or bar_w)]
        table = Table.grid(*(Column(width=d, no_wrap=True, overflow="ellipsis") if i == desc else
                             Column(width=bar_w, no_wrap=True) if i in bars else Column(no_wrap=True)
                             for i in shown), padding=(0, 1))
        for r in rows:
            for i in bars:
                if hasattr(r[i], "width"):
                    r[i].width = bar_w
            table.add_row(*(r[i] for i in shown))
        return table


class PlainProgress(Progress):
    """Rich's ``Progress`` without its live display (``disable``), printing plain lines instead: at most
    one each ``interval`` seconds while running (one each interval even when no step was done: a sign
    of life), and a last one at :meth:`stop` unless ``transient``. Only the process that made it prints
    (a fork copies it into DataLoader workers).

    Example:
        >>> p = PlainProgress(interval=0)
        >>> task = p.add_task("sharding samples", total=4)
        >>> p.line(p.tasks[0])
        'sharding samples: 0/4 (0%), 0:00:00 elapsed'
    """

    def __init__(self, *columns: Any, console: Any = None, transient: bool = False, unit: str = "",
                 interval: float | None = None) -> None:
        super().__init__(*columns, console=console or Console(stderr=True), transient=transient, disable=True)
        self.unit = unit
        self.interval = progress_interval() if interval is None else interval
        self._plain_lock = threading.RLock()
        self._pid = os.getpid()
        self._last = time.monotonic()
        self._shown: list[tuple[Any, ...]] | None = None
        self._running = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self, task_id: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(task_id, **kwargs)
        self._tick()

    def advance(self, task_id: Any, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._tick()

    def start(self) -> None:
        with self._plain_lock:
            if self._running:
                return
            self._running = True
            self._done.clear()
            self._last = time.monotonic()
            if self.interval > 0:
                thread = threading.Thread(target=self._heartbeat, name="mmdata-progress", daemon=True)
                try:
                    thread.start()
                except RuntimeError:
                    # "can't start new thread": a thread's stack does not fit under this process's address-space
                    # limit (ulimit -v) or its thread limit (QA35 lowmem #1). A display never fails the job: the
                    # lines still come with the steps (_tick), only the heartbeat between steps is lost
                    return
                self._thread = thread

    def stop(self) -> None:
        with self._plain_lock:
            if not self._running:
                return
            self._running = False
            self._done.set()
            if not self.live.transient and self._state() != self._shown:
                self._print()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def line(self, task: Task) -> str:
        """``what: n/N (p%), H:MM:SS elapsed`` (``what: n`` without a total, ``what`` before the first step)."""
        def num(x: float) -> str:
            if self.unit == "bytes":
                return decimal(int(x))
            return f"{int(x)}" if float(x).is_integer() else f"{x:.1f}"

        unit = f" {self.unit}" if self.unit and self.unit != "bytes" else ""
        if task.total:
            pct = 100 * task.completed / task.total
            pct = min(round(pct), 99) if task.completed < task.total else round(pct)
            count = f": {num(task.completed)}/{num(task.total)}{unit} ({pct}%)"
        elif task.completed or task.total == 0:
            count = f": {num(task.completed)}{unit}"
        else:
            count = ""
        return f"{task.description}{count}, {timedelta(seconds=int(task.elapsed or 0))} elapsed"

    def _state(self) -> list[tuple[Any, ...]]:
        return [(t.description, t.completed, t.total) for t in self.tasks if t.visible]

    def _tick(self, beat: bool = False) -> None:
        # a step that changed nothing shown prints nothing (the heartbeat says the job is alive)
        with self._plain_lock:
            if (self._running and time.monotonic() - self._last >= self.interval
                    and (beat or self._state() != self._shown)):
                self._print()

    def _print(self) -> None:
        if os.getpid() != self._pid:
            return
        self._last = time.monotonic()
        self._shown = self._state()
        for task in self.tasks:
            if task.visible:
                self.console.print(self.line(task), markup=False, highlight=False, emoji=False, soft_wrap=True)

    def _heartbeat(self) -> None:
        while not self._done.wait(max(self.interval - (time.monotonic() - self._last), 0.05)):
            self._tick(beat=True)
