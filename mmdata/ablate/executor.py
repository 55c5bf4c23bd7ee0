"""Executors: where (arm, seed) runs happen. The scheduler (:mod:`mmdata.ablate.schedule`) decides
*which* runs; an executor only runs them.

* :func:`run_task` runs one task given as a plain dict (JSON-able: data path, recipe, seed, trainer
  entry ``"package.module:function"`` and keywords, device, threads) and returns one row for
  ``runs.parquet`` — ``status: ok`` with the flattened metrics, or ``status: failed`` with the error
  and the tail of its traceback. It never raises, so any executor (processes here, Ray later) can
  call it as is. It first loads the task's ``plugins`` (:mod:`mmdata.plugins`): a worker is a fresh
  interpreter, and the arms' own ops and fusions exist only once their modules are imported.
* :class:`InlineExecutor` runs tasks in this process (one at a time; for tests and callables that
  cannot be imported by name).
* :class:`ProcessExecutor` runs them in spawned worker processes, one task per worker at a time, with
  ``threads`` torch threads each; with ``device="cuda"`` every worker sees one GPU
  (``CUDA_VISIBLE_DEVICES``), round-robin over the GPUs. Workers ignore SIGINT (a terminal's Ctrl-C
  reaches the whole process group; the parent decides), die with their parent (Linux
  ``PR_SET_PDEATHSIG`` plus a watchdog thread that polls the parent's pid, so a SIGKILLed
  ``mmdata ablate`` leaves nothing behind), and are terminated when the parent stops (Ctrl-C,
  SIGTERM or an error) — a finished run is already saved, a run in progress is lost and redone on
  resume.

A run's time limit (``task["timeout_s"]``, ``mmdata ablate --run-timeout``): :func:`run_task` raises
:class:`RunTimeout` in the trainer when the limit passes (SIGALRM, in the main thread of the process
running it: a worker process, the command itself with ``-j 1``, a Ray worker), which makes a failed
run like any error. A trainer stuck where Python cannot interrupt it (native code, a deadlock) ends
with its worker process :data:`HARD_GRACE_S` later (worker processes only: a guard thread there).
A run that hit its limit poisons nothing (QA35): the limit waits for an import in progress to finish (at most
:data:`IMPORT_GRACE_S`; an import cut in half leaves a half-initialised package in ``sys.modules`` — torch's
lazy ``import torch._dynamo`` then failed every later run with ``module 'sympy' has no attribute 'core'``),
and a worker process whose run ended with a RunTimeout (or any other BaseException: ``sys.exit``) is
replaced by a fresh one before its next run. In this process (:class:`InlineExecutor`, ``-j 1``) the runs after
such a run go to a fresh worker process (a callable trainer cannot: its cut run's error says later runs may be
affected); on Ray a run with a time limit has a worker of its own (:mod:`mmdata.ablate.ray_executor`).
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from multiprocessing.connection import wait
from typing import Any, Protocol

from mmdata.errors import MMDataError
from mmdata.urls import is_remote, stage_dataset

DEFAULT_ENTRY = "mmdata.train:train"
TRACEBACK_LINES = 25
#: how long past its time limit a run that did not stop is given before its worker process ends itself
HARD_GRACE_S = 30.0
#: the exit code of a worker process ended by that guard (as coreutils' ``timeout`` exits)
TIMEOUT_EXIT = 124
#: how long past its time limit a run inside an import is let finish that import before RunTimeout is raised
IMPORT_GRACE_S = 10.0


class RunTimeout(BaseException):
    """A run went past its time limit (``--run-timeout``). A BaseException, as KeyboardInterrupt is,
    so a trainer's own ``except Exception`` does not swallow it. It never reaches the caller of
    :func:`mmdata.ablate.run`: the run is recorded as failed (``error: RunTimeout: ...``) and retried by a
    rerun, which is why it is not in ``mmdata.ablate.__all__``."""


def _importing(frame: Any) -> bool:
    """Whether ``frame`` runs inside an import (importlib's bootstrap is on the stack: a module's body
    being executed, or the import machinery itself)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


@contextmanager
def time_limit(seconds: float | None, import_grace: float | None = None) -> Iterator[None]:
    """Raise :class:`RunTimeout` in the block once ``seconds`` have passed (POSIX main thread only;
    elsewhere, or with no limit, nothing is armed). When the limit passes during an import, the
    RunTimeout waits for the import to end (polled every 50 ms), at most ``import_grace`` seconds
    (default :data:`IMPORT_GRACE_S`): an exception raised in a module's body leaves the modules it had
    imported so far in ``sys.modules`` but not bound in a re-imported parent package, which breaks every
    later import of it in this process.

    Example:
        >>> import time
        >>> try:
        ...     with time_limit(0.05):
        ...         time.sleep(5)
        ... except RunTimeout as exc:
        ...     print(exc)
        the run took longer than its time limit of 0.05 s (--run-timeout)
    """
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    grace = IMPORT_GRACE_S if import_grace is None else max(0.0, float(import_grace))
    last = time.monotonic() + float(seconds) + grace  # past this, an import in progress is cut anyway
    message = f"the run took longer than its time limit of {seconds:g} s (--run-timeout)"
    late: list[bool] = []

    def expired(signum: int, frame: Any) -> None:
        if time.monotonic() < last and _importing(frame):
            late.append(True)
            signal.setitimer(signal.ITIMER_REAL, 0.05)  # again once this import is over
            return
        raise RunTimeout(message)

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    if late:  # the block ended during the wait for its import: it still went past its limit
        raise RunTimeout(message)


def resolve_entry(entry: str | None) -> Callable[..., dict[str, Any]]:
    """The training function named ``"package.module:function"`` (default: the bundled trainer).

    Example:
        >>> resolve_entry("mmdata.ablate.testing:synthetic_train").__name__
        'synthetic_train'
    """
    entry = entry or DEFAULT_ENTRY
    mod, sep, fn = entry.partition(":")
    if not sep or not mod or not fn:
        raise MMDataError(f"trainer entry {entry!r}: expected 'package.module:function'")
    from mmdata.plugins import import_module

    # "not found" and "found, but a dependency of it is missing" are different fixes: the helper says which
    obj: Any = import_module(mod, f"trainer entry {entry!r}")
    for part in fn.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise MMDataError(f"trainer entry {entry!r}: module {mod!r} has no attribute {fn!r}")
    if not callable(obj):
        raise MMDataError(f"trainer entry {entry!r}: {fn!r} is not callable")
    return obj


#: the keywords :func:`run_task` passes every trainer call besides the recipe's ``trainer:`` options
RUN_KEYWORDS = ("recipe", "seed", "label_noise", "device", "threads")


def check_signature(fn: Callable[..., Any], name: str, options: Mapping[str, Any] = ()) -> None:
    """Refuse a training function :func:`run_task` cannot call — ``fn(data, recipe=, seed=, label_noise=,
    device=, threads=, **options)`` — before any run (each run failed with the same TypeError, and wrote
    a report of failures): the error names the function, the keywords it does not take (and whether they
    come from the recipe's ``trainer:``), the arguments it needs that no run gives, and the contract.

    Example:
        >>> def train(data, recipe, seed):
        ...     return {}
        >>> check_signature(train, "mymod:train")
        Traceback (most recent call last):
        ...
        mmdata.errors.RecipeError: trainer entry 'mymod:train' (data, recipe, seed) cannot take what every run passes: unexpected keyword arguments 'label_noise', 'device', 'threads' (passed by the runner). Every run calls it as fn(data, recipe=..., seed=..., label_noise=..., device=..., threads=..., **the recipe's trainer: options); the contract: docs/ablation.md, "Your own trainer" (add **kwargs to take what you do not use)
    """
    import inspect

    from mmdata.errors import RecipeError

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or C callable: nothing to read; its runs say what is wrong
        return
    options = dict(options)
    passed = {**dict.fromkeys(RUN_KEYWORDS), **dict.fromkeys(options)}
    try:
        sig.bind("DATA", **passed)
        return
    except TypeError as exc:
        first = str(exc)
    P = inspect.Parameter
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    data = positional[0] if positional else None
    named = {p.name for p in params if p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY) and p is not data}
    problems = []
    if data is None and not any(p.kind is P.VAR_POSITIONAL for p in params):
        problems.append("no positional argument for the dataset folder")
    if not any(p.kind is P.VAR_KEYWORD for p in params):
        odd = [k for k in passed if k not in named]
        for whose, keys in (("by the runner", [k for k in odd if k in RUN_KEYWORDS and k not in options]),
                            ("from the recipe's trainer: options", [k for k in odd if k in options])):
            if keys:
                problems.append(f"unexpected keyword argument{'s' * (len(keys) > 1)} {', '.join(map(repr, keys))} "
                                f"(passed {whose})")
    missing = [p.name for p in params if p is not data and p.default is P.empty and p.name not in passed
               and p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)]
    if missing:
        problems.append(f"missing required argument{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))} "
                        "(no run passes them: give them defaults, or set them under trainer: in the recipe)")
    raise RecipeError(f"trainer entry {name!r} {str(sig).split(' -> ')[0]} cannot take what every run passes: "
                      f"{'; '.join(problems) or first}. Every run calls it as fn(data, recipe=..., seed=..., "
                      "label_noise=..., device=..., threads=..., **the recipe's trainer: options); the contract: "
                      'docs/ablation.md, "Your own trainer" (add **kwargs to take what you do not use)')


def _number(v: Any) -> float | None:
    """``v`` as a float when it is a number (Python, NumPy or a one-element tensor), else None."""
    if isinstance(v, (bool, str, bytes)):
        return None
    try:
        return float(v) if isinstance(v, numbers.Real) or hasattr(v, "__float__") else None
    except (TypeError, ValueError, RuntimeError):  # a tensor with several elements, say
        return None


def flatten_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The columns of one run: ``test.<name>`` numbers as ``test_<name>``, the bundled trainer's
    robustness (``missing_<m>_accuracy``, ``robust_<m>_auc``, ``robust_<m>_curve``; with a multi-label or
    regression ``target``, measured on its selection score: ``missing_<m>_micro_f1``, ``robust_<m>_micro_f1_auc``,
    no curve), ``best_epoch``,
    ``correct_on_test`` (:class:`mmdata.train.evaluate.Correctness`) and the trainer's ``warnings`` (a JSON
    list of strings).

    Example:
        >>> flatten_metrics({"test": {"accuracy": 0.9, "per_class": [1, 2]}, "best_epoch": 3})
        {'test_accuracy': 0.9, 'best_epoch': 3}
    """
    if not isinstance(metrics, dict) or not isinstance(metrics.get("test"), dict):
        raise MMDataError("the trainer must return a dict with a 'test' mapping of metrics (at least test.accuracy), "
                          f"got {type(metrics).__name__} with keys {sorted(metrics) if isinstance(metrics, dict) else '-'}")
    row: dict[str, Any] = {}
    for k, v in metrics["test"].items():
        x = _number(v)
        if x is not None:
            row[f"test_{k}"] = x
    rob = metrics.get("robustness") or {}
    metric = rob.get("metric", "accuracy")  # a target's selection score (mmdata.train.targets)
    for m, acc in (rob.get("missing") or {}).items():
        row[f"missing_{m}_{metric}"] = float(acc)
    for m, c in (rob.get("corruption") or {}).items():
        if metric == "accuracy":
            row[f"robust_{m}_auc"] = float(c["auc"])
            row[f"robust_{m}_curve"] = json.dumps([float(v) for v in c["accuracy"]])
        else:  # the report's curves read accuracy points
            row[f"robust_{m}_{metric}_auc"] = float(c["auc"])
    if "best_epoch" in metrics:
        row["best_epoch"] = int(metrics["best_epoch"])
    if isinstance(metrics.get("correct_on_test"), str):  # the bundled trainer: which test examples were right
        row["correct_on_test"] = metrics["correct_on_test"]
    said = metrics.get("warnings")
    if isinstance(said, (list, tuple)) and said:  # what the trainer warned about this run (the report counts them)
        row["warnings"] = json.dumps([str(w) for w in said], ensure_ascii=False)
    return row


def error_text(exc: BaseException) -> str:
    """A failed run's one-line summary (runs.parquet ``error``, the CLI, the report's Failures): the exception
    and mmdata's notes naming where it happened (``mmdata: in recipe step image[0] (op image.boom, ...) on
    sample '000015'``), of it or of an exception it was raised from — QA31: only the traceback column held them.

    Example:
        >>> from mmdata.augment.contract import add_note
        >>> e = ValueError("kaboom")
        >>> add_note(e, "mmdata: in recipe step image[0] (op image.boom) on sample '7'")
        >>> error_text(e)
        "ValueError: kaboom (mmdata: in recipe step image[0] (op image.boom) on sample '7')"
    """
    text = f"{type(exc).__name__}: {exc}"
    notes: list[str] = []
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen and len(seen) < 20:  # the chain of causes, never a cycle
        seen.add(id(e))
        notes += [n for n in getattr(e, "__notes__", None) or () if isinstance(n, str) and n.startswith("mmdata:")]
        e = e.__cause__ or e.__context__
    notes = [n for n in dict.fromkeys(notes) if n not in text]
    return f"{text} ({'; '.join(notes)})" if notes else text


def _tail(exc: BaseException) -> str:
    lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()
    return "\n".join(lines[-TRACEBACK_LINES:])


def run_task(task: dict[str, Any], train_fn: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run one (arm, seed) task; never raises (a failure is a row with ``status: failed``).

    Args:
        task: ``{arm, seed, hash, fingerprint, data, recipe, label_noise, entry, trainer, device,
            threads, primary}`` and, for a URL ``data``, ``storage_options``; ``timeout_s`` a time limit
            (see the module docstring); ``plugins`` the plugin specs to load first (the ablation's
            :func:`mmdata.plugins.worker_plugins`: a worker registers the ops and fusions its parent
            has) — plain data only (see :class:`mmdata.ablate.schedule`).
        train_fn: a callable to use instead of ``task["entry"]`` (in-process executors only).

    Returns:
        The ``runs.parquet`` row.
    """
    return execute_task(task, train_fn)[0]


def execute_task(task: dict[str, Any], train_fn: Callable[..., dict[str, Any]] | None = None
                 ) -> tuple[dict[str, Any], bool]:
    """:func:`run_task`'s row, and whether the run ended with a BaseException (a RunTimeout, ``sys.exit``):
    raised wherever the trainer was, it may have left this process's state half-changed (an import, a
    lock, a library's global), so a worker process is replaced rather than given the next run."""
    base = {"arm": task["arm"], "seed": int(task["seed"]), "config_hash": task["hash"],
            "data_fingerprint": task["fingerprint"]}
    t0, c0 = time.perf_counter(), time.process_time()
    padding: list[str] = []
    # a run in the caller's process (a callable trainer, -j 1, Ray's local mode) gives it its torch thread
    # counts back, returned or failed, as train(threads=) does (QA36 notebook #1: a notebook was left at 1)
    restore = contextlib.ExitStack()
    try:
        threads = int(task.get("threads") or 1)
        import torch

        from mmdata.train.loop import TrainWarning, caller_threads
        from mmdata.train.padding import kept

        restore.enter_context(caller_threads())
        torch.set_num_threads(threads)
        if task.get("plugins"):  # before the trainer: its module may name a plugin's op at import
            from mmdata.plugins import load_plugins

            load_plugins(task["plugins"], entry_points=False, where="the ablation's plugin")
        fn = train_fn or resolve_entry(task.get("entry"))
        # the trainer's padding warning (one per run) goes in the row's warnings, counted over the runs by
        # the report as the trainer's other warnings are, not printed once per run; those (TrainWarning,
        # raised for a Python caller) are in the metrics' warnings already: not shown either
        # an import in progress may finish past the limit, well within the worker's hard guard
        grace = min(IMPORT_GRACE_S, 0.5 * float(task.get("hard_grace_s", HARD_GRACE_S)))
        with time_limit(task.get("timeout_s"), grace), kept() as said, warnings.catch_warnings():
            warnings.simplefilter("ignore", TrainWarning)
            padding = said  # filled as the trainer says them: a failed run's too
            data = task["data"]
            if is_remote(data):  # an fsspec URL: this node's verified local copy (downloaded once per node)
                data = str(stage_dataset(data, storage_options=task.get("storage_options")))
            metrics = fn(data, recipe=task["recipe"], seed=int(task["seed"]), label_noise=float(task["label_noise"]),
                         device=task.get("device") or "cpu", threads=threads, **(task.get("trainer") or {}))
        if padding and isinstance(metrics, dict):
            given = metrics.get("warnings")
            metrics = {**metrics, "warnings": [*(given if isinstance(given, (list, tuple)) else ()), *padding]}
        row = flatten_metrics(metrics)
        primary = task.get("primary", "test_accuracy")
        v = row.get(primary)
        if v is None or not math.isfinite(v):
            raw = metrics.get("test", {}).get(primary[len("test_"):]) if primary.startswith("test_") else None
            what = ("missing" if raw is None else v if v is not None
                    else f"not a number: test.{primary[len('test_'):]} = {raw!r} ({type(raw).__name__})")
            raise MMDataError(f"primary metric {primary!r} is {what} (the trainer returned numbers for {sorted(row)})")
        for k, val in list(row.items()):
            # a NaN secondary metric is a missing value; ±inf is kept (Parquet holds it, and an NLL of inf says
            # something a missing value does not). Both are left out of that metric's analysis (the report counts
            # the seeds each metric used), and summary.json writes any non-finite number as null.
            if isinstance(val, float) and math.isnan(val):
                row[k] = None
        # cpu_s: this process's CPU time (all its threads): what the run costs on an idle machine
        return {**base, "status": "ok", "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, **row}, False
    except (Exception, SystemExit, RunTimeout) as exc:  # noqa: BLE001 — a failed run is data: recorded, reported, retried on rerun
        # SystemExit too: a trainer's sys.exit() would end the whole ablation when it runs in this process
        return {**base, "status": "failed", "wall_s": time.perf_counter() - t0,
                "error": error_text(exc), "traceback": _tail(exc),
                **({"warnings": json.dumps(padding, ensure_ascii=False)} if padding else {})}, not isinstance(exc, Exception)
    finally:
        restore.close()


class Executor(Protocol):
    """Runs tasks and reports each finished row through ``on_result`` (in completion order)."""

    def run(self, tasks: Iterable[dict[str, Any]], on_result: Callable[[dict[str, Any]], None]) -> None: ...

    def close(self) -> None: ...


#: added to the error of a run cut by its time limit in this process when later runs cannot move out of it
INLINE_DAMAGE_NOTE = ("; it ran in this process (a trainer given as a callable runs nowhere else), where what the limit "
                      "cut off (an import, a lock) stays: later runs in this process may fail on it — give the trainer "
                      "by name (`module:function`) to have them run in a fresh process")


class InlineExecutor:
    """Runs tasks one by one in this process.

    After a run that ended with a BaseException (a RunTimeout, ``sys.exit``: this process may hold what it left
    half-done, QA35 review #1) the remaining runs go to one fresh worker process (a :class:`ProcessExecutor`),
    when the trainer is given by name; a callable trainer (``train_fn``) cannot leave this process: the cut run's
    error says later runs may be affected.
    """

    def __init__(self, train_fn: Callable[..., dict[str, Any]] | None = None) -> None:
        self.train_fn = train_fn
        self._moved: ProcessExecutor | None = None  # where the runs go once this process may be damaged

    def run(self, tasks: Iterable[dict[str, Any]], on_result: Callable[[dict[str, Any]], None]) -> None:
        todo = iter(tasks)
        for t in todo:
            if self._moved is not None:
                self._moved.run([t, *todo], on_result)
                return
            row, damaged = execute_task(t, self.train_fn)
            if damaged and self.train_fn is None:
                self._moved = ProcessExecutor(1, device=t.get("device") or "cpu", threads=int(t.get("threads") or 1))
            elif damaged and row.get("error"):
                row = {**row, "error": row["error"] + INLINE_DAMAGE_NOTE}
            on_result(row)

    def close(self) -> None:
        if self._moved is not None:
            self._moved.close()


# ---------------------------------------------------------------------------------------------
# worker processes

# A worker is a fresh interpreter started by subprocess (not multiprocessing's spawn, whose bootstrap
# re-imports the parent's __main__ for seconds before any code of ours runs): its first statements
# ignore SIGINT, arm the parent-death signal and check the parent is still there, so a SIGKILLed
# parent never leaves a worker behind, even one still starting up.
_BOOT = """import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG (Linux)
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    os._exit(1)
from mmdata.ablate.executor import worker_loop
worker_loop(int(sys.argv[2]), int(sys.argv[1]))
"""


def worker_loop(fd: int, parent_pid: int) -> None:
    """A worker's life: receive a task, run it, send ``(row, retire)`` back, until told to stop or orphaned, or
    until a run ended with a BaseException (``retire``: this process may be damaged; the parent starts a new one)."""
    from multiprocessing.connection import Connection

    from mmdata.procs import die_with_parent

    die_with_parent(parent_pid)  # _BOOT armed the signal before any import; this adds the watchdog thread
    conn = Connection(fd)
    try:  # what every run imports, before any run's time limit counts (a worker replaced after a timeout too)
        import torch  # noqa: F401

        import mmdata.train.loop  # noqa: F401
        import mmdata.train.padding  # noqa: F401
    except Exception:  # noqa: BLE001 — run_task imports them again and records the error as the run's
        pass
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        guard = None
        if task.get("timeout_s"):  # SIGALRM cannot stop native code or a deadlock: this process ends then
            guard = threading.Timer(float(task["timeout_s"]) + float(task.get("hard_grace_s", HARD_GRACE_S)),
                                    os._exit, args=(TIMEOUT_EXIT,))
            guard.daemon = True
            guard.start()
        try:
            row, damaged = execute_task(task)
        finally:
            if guard is not None:
                guard.cancel()
        conn.send((row, damaged))
        if damaged:
            return


class _Worker:
    def __init__(self, env: dict[str, str]) -> None:
        import multiprocessing as mp
        import subprocess

        self.conn, child = mp.Pipe(duplex=True)
        fd = child.fileno()
        # the worker imports what this process can (a trainer module next to a user's script, say)
        path = os.pathsep.join([p for p in sys.path if p and os.path.isdir(p)] + [os.environ.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen([sys.executable, "-c", _BOOT, str(os.getpid()), str(fd)], pass_fds=[fd],
                                     env={**os.environ, "PYTHONPATH": path.rstrip(os.pathsep), **env},
                                     stdin=subprocess.DEVNULL)
        child.close()
        self.env = env
        self.task: dict[str, Any] | None = None


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [v.strip() for v in env.split(",") if v.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def select_gpus(gpus: int | None = None) -> list[str]:
    """The first ``gpus`` of the visible GPUs (all by default), as ``CUDA_VISIBLE_DEVICES`` entries;
    worker ``w`` of a :class:`ProcessExecutor` then sees only entry ``w % len``.

    Example:
        >>> os.environ["CUDA_VISIBLE_DEVICES"] = "3,5,7"; select_gpus(2)  # doctest: +SKIP
        ['3', '5']
    """
    ids = visible_gpus()
    if not ids:
        raise MMDataError("--device (device=) cuda: no GPU is visible (CUDA_VISIBLE_DEVICES is empty or torch sees none)")
    if gpus is not None:
        if gpus < 1 or gpus > len(ids):
            raise MMDataError(f"--gpus (gpus=) {gpus}: {len(ids)} GPU(s) visible ({','.join(ids)})")
        ids = ids[:gpus]
    return ids


def cuda_ids(device: str, gpus: int | None = None) -> list[str]:
    """The GPUs runs on ``device`` (``cuda``, ``cuda:N``) may use (:func:`select_gpus`), or an
    :class:`MMDataError` saying why there are none — checked before an ablation writes anything."""
    import torch

    if not torch.cuda.is_available():
        raise MMDataError(f"device {device!r}: torch {torch.__version__} sees no CUDA device "
                          "(CPU build or no GPU visible); use --device cpu")
    return select_gpus(gpus)


class ProcessExecutor:
    """Worker processes, one task each at a time (see the module docstring).

    Args:
        workers: number of worker processes (default: GPUs used with ``device="cuda"``, else CPU count).
        device: ``cpu`` or ``cuda``; with ``cuda`` worker ``w`` sees GPU ``w % gpus`` only.
        gpus: how many of the visible GPUs to use (default: all).
        threads: torch threads per run.
    """

    def __init__(self, workers: int | None = None, *, device: str = "cpu", gpus: int | None = None, threads: int = 1) -> None:
        self.device = device
        self.threads = max(1, int(threads))
        self.gpu_ids: list[str] = []
        if device.startswith("cuda"):
            self.gpu_ids = cuda_ids(device, gpus)
        self.workers = max(1, int(workers or (len(self.gpu_ids) if self.gpu_ids else os.cpu_count() or 1)))
        self._pool: list[_Worker] = []

    def _env(self, w: int) -> dict[str, str]:
        t = str(self.threads)
        env = {"OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t}
        if self.gpu_ids:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu_ids[w % len(self.gpu_ids)]
        return env

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._pool]

    def run(self, tasks: Iterable[dict[str, Any]], on_result: Callable[[dict[str, Any]], None]) -> None:
        todo = deque(dict(t, device="cuda" if self.gpu_ids else t.get("device", "cpu"), threads=self.threads,
                          hard_grace_s=HARD_GRACE_S) for t in tasks)
        if not todo:
            return
        while len(self._pool) < min(self.workers, len(todo)):
            self._pool.append(_Worker(self._env(len(self._pool))))
        while todo or any(w.task is not None for w in self._pool):
            for w in self._pool:
                if w.task is None and todo:
                    w.task = todo.popleft()
                    try:
                        w.conn.send(w.task)
                    except OSError:
                        pass  # a dead worker: its EOF is handled below
            busy = [w for w in self._pool if w.task is not None]
            ready = wait([w.conn for w in busy], timeout=1.0)
            for i, w in enumerate(list(self._pool)):
                if w.task is None or (w.conn not in ready and w.proc.poll() is None):
                    continue
                try:
                    row, retire = w.conn.recv()
                except (EOFError, OSError):
                    row, retire = None, False
                if row is not None:
                    w.task = None
                    if retire:  # the run ended with a RunTimeout (or sys.exit) wherever it was: a fresh process
                        self._pool[i] = self._replace(w)
                    on_result(row)
                    continue
                # the worker died mid-run (out of memory, a crash in native code, or its own guard: a run
                # stuck past its time limit where SIGALRM cannot interrupt it): record, replace
                task = w.task
                w.task = None
                try:
                    code = w.proc.wait(timeout=5)
                except Exception:  # noqa: BLE001
                    code = None
                error = (f"RunTimeout: the run did not stop within {task['hard_grace_s']:g} s of its time limit of "
                         f"{task['timeout_s']:g} s (--run-timeout); its worker process was ended"
                         if code == TIMEOUT_EXIT and task.get("timeout_s") else
                         f"WorkerDied: the worker process exited with code {code} during the run")
                on_result({"arm": task["arm"], "seed": int(task["seed"]), "config_hash": task["hash"],
                           "data_fingerprint": task["fingerprint"], "status": "failed", "wall_s": None,
                           "error": error, "traceback": ""})
                w.conn.close()
                self._pool[i] = _Worker(w.env)

    def _replace(self, w: _Worker) -> _Worker:
        """A new worker in place of ``w``, which exits by itself after its last row (killed if it does not)."""
        import subprocess

        try:
            w.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass  # killed below
        stopped = _kill(w, None)
        if stopped is not None:  # a Ctrl-C meanwhile: w is gone; close() stops the others
            raise stopped
        return _Worker(w.env)

    def close(self) -> None:
        """Stop every worker now (idle ones are told to exit, busy ones terminated, stragglers killed).

        A KeyboardInterrupt or SystemExit (Ctrl-C, the CLI's SIGTERM) raised in here — a second Ctrl-C while
        the workers shut down is common — ends the waiting, not the stopping: every worker left is killed and
        reaped first, then the first such exception is raised again.
        """
        import subprocess

        pool, self._pool = self._pool, []
        stopped: BaseException | None = None  # the interrupt to raise once every worker is gone
        for w in pool:
            try:
                try:
                    if w.task is None and w.proc.poll() is None:
                        w.conn.send(None)
                    else:
                        w.proc.terminate()
                except OSError:
                    w.proc.terminate()
            except BaseException as exc:  # noqa: BLE001 — raised again below, after the kills
                stopped = stopped or exc
                break
        if stopped is None:
            deadline = time.monotonic() + 2.0
            for w in pool:
                try:
                    w.proc.wait(max(0.05, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass  # killed below
                except BaseException as exc:  # noqa: BLE001 — raised again below, after the kills
                    stopped = exc
                    break
        for w in pool:
            stopped = _kill(w, stopped)
        if stopped is not None:
            raise stopped


def _kill(w: _Worker, stopped: BaseException | None, tries: int = 3) -> BaseException | None:
    """Kill and reap worker ``w`` (when it has not exited) and close its pipe, going on through up to ``tries``
    interrupts (Ctrl-C, SIGTERM) that land meanwhile; returns ``stopped``, or the first interrupt when it was None."""
    for _ in range(tries):
        try:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
            break
        except BaseException as exc:  # noqa: BLE001 — the caller raises it, once every worker is stopped
            stopped = stopped or exc
    try:
        w.conn.close()
    except BaseException as exc:  # noqa: BLE001 — as above
        stopped = stopped or exc
    return stopped
