"""Waiting for a child process a test started, without leaving it behind when it hangs.

``proc.wait(timeout=N)`` and ``proc.communicate(timeout=N)`` raise ``TimeoutExpired`` and leave the
child running: a hung ``mmdata augment`` once outlived its test by 40 minutes, eating the CPU of the
2-core CI machine. :func:`wait_or_kill` and :func:`communicate_or_kill` wait the same way, and on a
timeout kill the child (its whole process group when it leads one of its own, as with
``start_new_session=True``; and its descendants where psutil is installed), reap it, and fail the
test with an ``AssertionError`` naming the command, the timeout and the tail of what it printed.

Ranks of a distributed test: :func:`spawn_ranks` is ``torch.multiprocessing.spawn`` with a deadline
(past it, the ranks and their DataLoader workers are killed and the test fails naming them; without one
a hung rendezvous or collective waits out gloo's 30-minute default and CI with it), and
:func:`rendezvous` is an ``init_method`` that needs no TCP port. A port chosen by binding port 0 and
closing the socket is free only until someone else takes it: the ranks bind it seconds later (they
start Python, torch and the test module first), and on a busy machine — the other pytest-xdist worker,
Ray, an S3 or HTTP test server, another suite — anything binding or connecting in between can take it
(rank 0 then fails with ``EADDRINUSE``).

Import with ``from tests.procs_helpers import wait_or_kill, communicate_or_kill`` (the suite runs with
``--import-mode=importlib`` from the repository root, where ``tests`` is a namespace package).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, NoReturn

TAIL_CHARS = 4000  # how much of the end of stderr (and stdout) the failure message shows
_REAP_S = 30  # how long to wait for the killed child's pipes to close before giving up on them
#: a whole 2-rank test (start, rendezvous, reading with DataLoader workers) takes ~5 s on an idle 2-core
#: machine and ~40 s with a load of 13 there; a hang is ended after this
RANKS_TIMEOUT_S = 300.0


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


def on_a_terminal(command: list[str], cwd: str | os.PathLike, env: dict[str, str],
                  timeout: float = 300) -> tuple[int, str]:
    """Run ``command`` with stdout and stderr on a pseudo-terminal (stdin not a terminal): its exit code and
    what it showed, escape sequences removed (killed as :func:`wait_or_kill` does past ``timeout``)."""
    import pty
    import re

    master, slave = pty.openpty()
    proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError:  # EIO: the other end closed with the process
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    rc = wait_or_kill(proc, timeout)
    return rc, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", b"".join(chunks).decode(errors="replace"))


def rendezvous(folder: str | os.PathLike) -> str:
    """``init_method`` for ``torch.distributed.init_process_group`` through a file in ``folder`` (a
    test's own ``tmp_path``): no port to collide with, unlike ``tcp://127.0.0.1:PORT``.

    Example:
        >>> rendezvous("/tmp/t0")  # doctest: +SKIP
        'file:///tmp/t0/rendezvous'
    """
    path = Path(folder, "rendezvous").absolute()
    assert not path.exists(), f"{path} exists: a FileStore must start from no file (one rendezvous per folder)"
    return path.as_uri()


def spawn_ranks(fn: Callable[..., None], args: tuple = (), nprocs: int = 2, timeout: float = RANKS_TIMEOUT_S) -> None:
    """``torch.multiprocessing.spawn(fn, args, nprocs)``: ``fn(rank, *args)`` in ``nprocs`` spawned
    processes; a rank's exception is raised here (``ProcessRaisedException``) as by ``spawn``. Past
    ``timeout`` seconds the ranks and their descendants (DataLoader workers) are killed and reaped and
    an ``AssertionError`` names ``fn``, the timeout and the ranks still running.
    """
    import torch.multiprocessing as tmp_mp

    context = tmp_mp.start_processes(fn, args=args, nprocs=nprocs, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=max(0.0, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            running = [rank for rank, p in enumerate(context.processes) if p.is_alive()]
            for p in context.processes:
                _kill_tree(p.pid, p.kill)
            for p in context.processes:
                p.join(_REAP_S)
            raise AssertionError(f"{fn.__module__}.{fn.__qualname__} on {nprocs} ranks did not finish within {timeout} s; "
                                 f"killed (ranks still running: {running}; their output is in the test's captured stderr)")


def _kill_tree(pid: int, kill: Callable[[], None]) -> None:
    """SIGKILL a process (``kill``) and every descendant psutil finds (when installed)."""
    descendants = []
    try:
        import psutil

        descendants = psutil.Process(pid).children(recursive=True)
    except Exception:  # noqa: BLE001 — psutil missing, or the process already gone
        pass
    try:
        kill()
    except OSError:
        pass
    for p in descendants:
        try:
            p.kill()
        except Exception:  # noqa: BLE001 — gone already
            pass


def _fail(proc: subprocess.Popen, timeout: float) -> NoReturn:
    """Kill and reap a child that outlived its timeout, then fail with what it printed, its signal state
    (``/proc``: a signal blocked, ignored or pending) and, where it runs Python with ``PYTHONFAULTHANDLER``
    set, every thread's stack (:func:`dump_stacks`) — what a rare hang in CI needs to be understood."""
    piped = proc.stderr is not None
    state = signal_state(proc.pid)
    dump_stacks(proc)
    _kill(proc)
    out, err = _reap(proc)
    raise AssertionError(_message(proc, timeout, out, err, piped) + (f"\nits signals then: {state}" if state else "")) from None


def signal_state(pid: int) -> str:
    """The signals ``pid`` blocks, ignores, catches and has pending, by name, from ``/proc/PID/status``
    ("" where there is no /proc or the process is gone)."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    except OSError:
        return ""
    names = []
    for key in ("SigBlk", "SigIgn", "SigCgt", "SigPnd", "ShdPnd"):
        bits = int(fields.get(key, "0").strip() or "0", 16)
        sigs = [signal.Signals(n).name if n in signal.valid_signals() else str(n) for n in range(1, 65)
                if bits >> (n - 1) & 1]
        names.append(f"{key} {','.join(s for s in sigs if not s.isdigit()) or '-'}")
    return "; ".join(names)


def dump_stacks(proc: subprocess.Popen) -> None:
    """SIGABRT a live child whose environment sets ``PYTHONFAULTHANDLER``: Python's fault handler prints
    every thread's stack on its stderr before the process ends (waited for up to 5 s)."""
    try:
        env = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return
    if not any(e.startswith(b"PYTHONFAULTHANDLER=") and e != b"PYTHONFAULTHANDLER=" for e in env):
        return
    try:
        os.kill(proc.pid, signal.SIGABRT)
        proc.wait(5)
    except (OSError, subprocess.TimeoutExpired):
        pass


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the child: its process group when it leads a group of its own (``start_new_session``,
    ``process_group=0``), else the child alone; then any descendant psutil found before (one that
    left the group by starting a session of its own, or the grandchildren of a child in ours)."""
    try:
        own_group = os.getpgid(proc.pid) == proc.pid != os.getpgrp()
    except OSError:  # already reaped
        own_group = False
    _kill_tree(proc.pid, (lambda: os.killpg(proc.pid, signal.SIGKILL)) if own_group else proc.kill)


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


def without_dac_override(cmd: list[str]) -> list[str]:
    """``cmd`` run so that file permissions hold for it: as is for a user, through ``setpriv`` dropping the
    DAC override capabilities for root (who may otherwise write anywhere); skips the test when root has no
    ``setpriv``."""
    if os.geteuid() != 0:
        return cmd
    import shutil

    import pytest

    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: file permissions cannot be enforced")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]


def read_only_to_access(monkeypatch: Any, folder: Path) -> None:
    """Make ``os.access`` say ``folder`` is not writable (for root too, who may write anywhere): how a test
    stands in for a read-only folder or file system in the checks that ask before writing."""
    real_access = os.access

    def access(p: Any, mode: int, **kw: Any) -> bool:
        return False if Path(p) == folder and mode & os.W_OK else real_access(p, mode, **kw)

    monkeypatch.setattr(os, "access", access)
