"""Waiting for a child process a test started, without leaving it behind when it hangs.

``proc.wait(timeout=N)`` and ``proc.communicate(timeout=N)`` raise ``TimeoutExpired`` and leave the
child running: a hung ``mmdata augment`` once outlived its test by 40 minutes, eating the CPU of the
2-core CI machine. :func:`wait_or_kill` and :func:`communicate_or_kill` wait the same way, and on a
timeout kill the child (its whole process group when it leads one of its own, as with
``start_new_session=True``; and its descendants where psutil is installed), reap it, and fail the
test with an ``AssertionError`` naming the command, the timeout and the tail of what it printed.

Import with ``from tests.procs_helpers import wait_or_kill, communicate_or_kill`` (the suite runs with
``--import-mode=importlib`` from the repository root, where ``tests`` is a namespace package).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from typing import Any, NoReturn

TAIL_CHARS = 4000  # how much of the end of stderr (and stdout) the failure message shows
_REAP_S = 30  # how long to wait for the killed child's pipes to close before giving up on them


def wait_or_kill(proc: subprocess.Popen, timeout: float) -> int:
    """``proc.wait(timeout)``; past the timeout, kill and reap the child and raise ``AssertionError``."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _fail(proc, timeout)


def communicate_or_kill(proc: subprocess.Popen, timeout: float, input: Any = None) -> tuple[Any, Any]:  # noqa: A002 — as Popen.communicate
    """``proc.communicate(input, timeout)`` → ``(stdout, stderr)``; past the timeout, kill and reap the
    child and raise ``AssertionError`` with the tail of what it printed."""
    try:
        return proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _fail(proc, timeout)


def _fail(proc: subprocess.Popen, timeout: float) -> NoReturn:
    """Kill and reap a child that outlived its timeout, then fail with what it printed."""
    piped = proc.stderr is not None
    _kill(proc)
    out, err = _reap(proc)
    raise AssertionError(_message(proc, timeout, out, err, piped)) from None


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the child: its process group when it leads a group of its own (``start_new_session``,
    ``process_group=0``), else the child alone; then any descendant psutil found before (one that
    left the group by starting a session of its own, or the grandchildren of a child in ours)."""
    descendants = []
    try:
        import psutil

        descendants = psutil.Process(proc.pid).children(recursive=True)
    except Exception:  # noqa: BLE001 — psutil missing, or the child already gone
        pass
    try:
        own_group = os.getpgid(proc.pid) == proc.pid != os.getpgrp()
    except OSError:  # already reaped
        own_group = False
    try:
        if own_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass
    for p in descendants:
        try:
            p.kill()
        except Exception:  # noqa: BLE001 — gone already
            pass


def _reap(proc: subprocess.Popen) -> tuple[Any, Any]:
    """Wait for the killed child and collect what is left in its pipes (``None`` for a stream not piped)."""
    if proc.stdin is not None and proc.stdin.closed:  # closed by the test: communicate() would fail flushing it
        proc.stdin = None
    try:
        return proc.communicate(timeout=_REAP_S)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        # a process outside the group still holds a pipe open: stop reading
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        proc.wait()
        return None, None


def _text(data: Any) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    return data if len(data) <= TAIL_CHARS else "..." + data[-TAIL_CHARS:]


def _command(proc: subprocess.Popen) -> str:
    args = proc.args
    if isinstance(args, (str, bytes, os.PathLike)):
        args = [args]
    words = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else str(a) for a in args]
    return shlex.join(w if len(w) <= 200 else w[:200] + "..." for w in words)


def _message(proc: subprocess.Popen, timeout: float, out: Any, err: Any, piped: bool) -> str:
    lines = [f"{_command(proc)} did not finish within {timeout} s; killed (pid {proc.pid}, exit {proc.returncode})"]
    if piped:
        lines.append(f"stderr (tail):\n{_text(err) or '(empty)'}")
    if out:
        lines.append(f"stdout (tail):\n{_text(out)}")
    elif not piped:
        lines.append("(no output captured)")
    return "\n".join(lines)
