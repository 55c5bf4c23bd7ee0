"""Argument checks shared by the public entry points (``open_dataset``, ``loader``, ``shard``,
``collate``, the Lightning ``DataModule``): each raises when the object is built, naming the argument,
what was expected and what was given — never a ``'<' not supported between 'str' and 'int'`` from
deep inside, or an error only once iteration starts.

The messages follow :func:`mmdata.train.config.check_options`: ``NAME: expected WHAT, got VALUE``.
No torch import here (``import mmdata`` and shard-writer processes stay light).

Example:
    >>> expect_int(4, "batch_size", minimum=1)
    4
    >>> expect_int("4", "batch_size", minimum=1)
    Traceback (most recent call last):
    ...
    mmdata.errors.MMDataError: batch_size: expected an integer >= 1, got '4' (a number, not quoted text)
    >>> expect_names("audio", "required")
    ('audio',)
"""

from __future__ import annotations

import difflib
import functools
import inspect
import numbers
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mmdata.errors import MMDataError

if TYPE_CHECKING:
    import torch

F = TypeVar("F", bound=Callable[..., Any])


def _hint(value: Any, unit: str | None) -> str:
    """Why a string was not taken: quoted numbers and the CLI's size notation (``2G``)."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        if unit == "bytes" and value.strip()[-1:].upper() in "KMGTB" and any(c.isdigit() for c in value):
            return " (a number of bytes, e.g. 2 * 1024**3; sizes such as 500M or 2G are read by the CLI only)"
        return ""
    return " (a number, not quoted text)"


def shown(value: Any, width: int = 40) -> str:
    """``repr(value)`` fit for a message: an integer of more than about ``width`` digits is shown as its
    first digits and its length (QA round 22: a state's ``10**4000`` put 4000 digits in a message, and past
    4300 digits ``repr`` raises ``ValueError``), anything else cut at ``2 * width`` characters.

    Example:
        >>> shown(7), shown(-2**200), shown(10**5000)
        ('7', '-1606938044...(an integer of about 61 digits)', 'an integer of about 5001 digits')
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        v = int(value)
        if v.bit_length() <= 3 * width:  # up to ~36 digits: shown whole
            return repr(v)
        digits = int(v.bit_length() * 0.3010299956639812) + 1
        if digits > 4000:  # str() of it is slow, and refused past 4300 digits
            return f"{'a negative' if v < 0 else 'an'} integer of about {digits} digits"
        return f"{'-' if v < 0 else ''}{str(abs(v))[:10]}...(an integer of about {digits} digits)"
    text = repr(value)
    return text if len(text) <= 2 * width else text[:2 * width] + "..."


def expect_int(value: Any, name: str, *, minimum: int | None = None, allow_none: bool = False,
               error: type[Exception] = MMDataError, unit: str | None = None,
               maximum: int | None = None) -> int | None:
    """``value`` as an ``int``, else ``error`` naming ``name``: a bool, a float or a string is refused
    (``"5"`` and ``5.0`` are almost always a slip of a config file, and ``True`` is not a count).

    Args:
        value: the argument as given.
        name: how the message names it (``"batch_size"``, ``"loader(prefetch=...)"``).
        minimum: the smallest allowed value (None: any integer).
        allow_none: None is allowed (and returned).
        error: the exception type of the calling module (``ShardError``, ``SourceError``...).
        unit: ``"bytes"`` adds a hint for ``"2G"``-style strings.
        maximum: the largest allowed value (None: no bound).

    Example:
        >>> expect_int(None, "maxsize", minimum=1, allow_none=True) is None
        True
    """
    if value is None and allow_none:
        return None
    if (isinstance(value, numbers.Integral) and not isinstance(value, bool) and (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum)):
        return int(value)
    too_large = maximum is not None and isinstance(value, numbers.Integral) and not isinstance(value, bool) \
        and value > maximum
    if not too_large:  # the range's top is named where it was passed (a wrong type says what type)
        expected = "an integer" + (f" >= {minimum}" if minimum is not None else "")
    else:
        expected = f"an integer from {_bound(minimum) if minimum is not None else 'any'} to {_bound(maximum)}"
    if unit:
        expected += f" ({unit})"
    if allow_none:
        expected += " or None"
    raise error(f"{name}: expected {expected}, got {shown(value)}{_hint(value, unit)}")


def _bound(n: int) -> str:
    """A range's end in a message: ``2**63 - 1`` rather than nineteen digits."""
    for base in (2, 10):
        for e in range(8, 64):
            for off in (-2, -1, 0):
                if n == base ** e + off or n == -(base ** e) + off:
                    sign = "-" if n < 0 else ""
                    return f"{sign}{base}**{e}" + (f" - {-off}" if off else "")
    return str(n)


def expect_bool(value: Any, name: str, *, error: type[Exception] = MMDataError) -> bool:
    """``value`` as a ``bool``, else ``error`` naming ``name``: only ``True`` / ``False`` (and numpy's
    ``bool_``) are taken. A string from a config file or the command line (``"no"``, ``"False"``) is
    truthy, so taking it would switch an option *on*; ``0`` / ``1`` / None are refused as well, the way
    :func:`expect_int` refuses ``True`` as a count.

    Example:
        >>> expect_bool(False, "shuffle")
        False
        >>> expect_bool("no", "shuffle")
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: shuffle: expected True or False, got 'no' (a bool, not quoted text)
    """
    if isinstance(value, bool):
        return value
    if type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"):  # numpy 2 / 1
        return bool(value)
    hint = " (a bool, not quoted text)" if isinstance(value, str) else ""
    raise error(f"{name}: expected True or False, got {value!r}{hint}")


def expect_names(value: Any, name: str, *, error: type[Exception] = MMDataError) -> tuple[str, ...] | None:
    """Field / modality names as a tuple: one name (a string) is a list of one — as torch and
    webdataset users expect — not its letters; None stays None.

    Example:
        >>> expect_names(["image", "text"], "modalities"), expect_names(None, "modalities")
        (('image', 'text'), None)
        >>> expect_names(3, "modalities")
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: modalities: expected a name or a list of names (e.g. ['image', 'audio']), got 3
    """
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        names = tuple(value)
        if all(isinstance(n, str) for n in names):
            return names
    raise error(f"{name}: expected a name or a list of names (e.g. ['image', 'audio']), got {value!r}")


def expect_size(value: Any, name: str, *, error: type[Exception] = MMDataError) -> tuple[int, int] | None:
    """An image size as ``(height, width)``: N (a square, like ``mmdata train --image-size``) or a pair
    of integers >= 1; None stays None.

    Example:
        >>> expect_size(16, "image_max_size"), expect_size((24, 32), "image_max_size")
        ((16, 16), (24, 32))
    """
    if value is None:
        return None
    sides = [value] if isinstance(value, numbers.Integral) else (
        list(value) if isinstance(value, (list, tuple)) else None)
    if sides is None or len(sides) not in (1, 2) or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in sides):
        raise error(f"{name}: expected N or (height, width), integers >= 1, or None; got {value!r}")
    return (int(sides[0]), int(sides[-1]))


#: the most readers (world size x DataLoader workers) a resume state may name: a state is shared data, and
#: its shares are computed per reader (QA: ``readers: 10**10`` hung the reader in that loop)
MAX_READERS = 1 << 20


def _reader_id(key: Any, name: str, error: type[Exception]) -> int:
    """A reader's number as a state's mapping key: an int, or its decimal text (a state through JSON)."""
    if isinstance(key, str) and key.strip().isdigit():
        r = int(key) if len(key.strip()) < 20 else MAX_READERS  # int() of thousands of digits raises
    else:
        r = int(expect_int(key, f"{name} key", minimum=0, error=error))  # type: ignore[arg-type]
    if r >= MAX_READERS:
        raise error(f"{name} key {key!r:.40}: expected a reader number below {MAX_READERS} (world size x DataLoader "
                    "workers); the state is damaged or not one state_dict() returned")
    return r


#: the largest number a resume state holds (a signed 64-bit word, what the reader's clock stores)
STATE_INT_MAX = 2**63 - 1


def _cut(value: Any) -> str:
    """``repr(value)`` cut at 80 characters, even when it holds an integer too long to print."""
    try:
        return f"{value!r:.80}"
    except ValueError:
        return f"a {type(value).__name__} holding an integer too long to print"


def expect_state(state: Any, name: str, *, error: type[Exception] = MMDataError) -> dict[str, Any]:
    """A resume state (what a reader's or a loader's ``state_dict()`` returned, perhaps through JSON or
    a checkpoint) checked before it is taken: a dict with an ``epoch`` (an integer >= 0); ``seed`` an
    integer; ``readers`` and ``world`` from 1 to :data:`MAX_READERS`, ``batches`` and ``next_worker`` >= 0;
    ``positions`` / ``copies`` map a reader (an integer below :data:`MAX_READERS` or its text) to an
    integer >= 0; ``skipped`` maps a reader to counts per reason, ``errors`` a reader to lists of entries.
    Anything else raises ``error`` naming the key, what was expected and what was given (QA: a fuzzed state
    raised ``KeyError: 'epoch'``, took ``1.5`` as a position or failed in ``islice`` once iteration began;
    ``readers: 10**10`` hung the computation of the readers' shares). A state that yielded batches but holds no
    ``positions`` would start its epoch over (repeating them): refused. Returns a copy whose reader keys
    are ints. Whether the positions fit the data is the caller's check (it knows the shares).

    Example:
        >>> expect_state({"epoch": 0, "seed": 0, "positions": {"0": 4}}, "state")["positions"]
        {0: 4}
        >>> expect_state({"epoch": 0, "positions": {0: 1.5}}, "loader state")
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: loader state['positions'][0]: expected an integer >= 0, got 1.5
    """
    if not isinstance(state, Mapping):
        raise error(f"{name}: expected a dict (what state_dict() returned), got {type(state).__name__} {_cut(state)}")
    if "epoch" not in state:
        raise error(f"{name}: has no 'epoch' (keys {sorted(map(str, state))}); expected what state_dict() returned, "
                    "or {'epoch': N} to start epoch N")
    out = dict(state)
    # the reader's clock keeps the epoch in a signed 64-bit word (and the next epoch must fit); every other
    # number is bounded alike (QA round 22: epoch 2**63 raised struct.error, a position of 10**5000 raised
    # ValueError in a message once iteration began)
    out["epoch"] = expect_int(state["epoch"], f"{name}['epoch']", minimum=0, maximum=STATE_INT_MAX - 1, error=error)
    for key, minimum in (("seed", None), ("readers", 1), ("world", 1), ("batches", 0), ("next_worker", 0)):
        if state.get(key) is not None:
            out[key] = expect_int(state[key], f"{name}[{key!r}]", minimum=minimum, maximum=STATE_INT_MAX, error=error)
    if out.get("seed") is not None and out["seed"] < -STATE_INT_MAX - 1:
        raise error(f"{name}['seed']: expected an integer from -2**63 to 2**63 - 1, got {shown(out['seed'])}")
    for key in ("readers", "world"):
        if out.get(key) is not None and out[key] > MAX_READERS:
            raise error(f"{name}[{key!r}]: expected at most {MAX_READERS} (world size x DataLoader workers), got "
                        f"{out[key]}: the state is damaged or not one state_dict() returned; pass the whole "
                        f"state_dict(), or {{'epoch': {out['epoch']}}} to start that epoch over")
    for key in ("positions", "copies", "skipped", "errors"):
        value = state.get(key)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise error(f"{name}[{key!r}]: expected a dict of reader -> value, got {type(value).__name__} {_cut(value)}")
        checked: dict[int, Any] = {}
        for k, v in value.items():
            r = _reader_id(k, f"{name}[{key!r}]", error)
            where = f"{name}[{key!r}][{r}]"
            if key in ("positions", "copies"):
                checked[r] = expect_int(v, where, minimum=0, maximum=STATE_INT_MAX, error=error)
            elif key == "skipped":
                if not isinstance(v, Mapping):
                    raise error(f"{where}: expected a dict of reason -> count, got {_cut(v)}")
                checked[r] = {str(why): expect_int(n, f"{where}[{why!r:.40}]", minimum=0, maximum=STATE_INT_MAX, error=error)
                              for why, n in v.items()}
            else:
                if not isinstance(v, (list, tuple)) or not all(
                        isinstance(e, (list, tuple)) and e and isinstance(e[0], numbers.Integral)
                        and not isinstance(e[0], bool) and 0 <= e[0] <= STATE_INT_MAX for e in v):
                    raise error(f"{where}: expected a list of [position, shard, key, message] entries (positions from "
                                f"0 to 2**63 - 1), got {_cut(v)}")
                checked[r] = v
        out[key] = checked
    if "positions" not in state and out.get("batches"):
        raise error(f"{name}: {out['batches']} batches yielded but no 'positions': it would start epoch {out['epoch']} "
                    f"over, repeating them; pass the whole state_dict(), or {{'epoch': {out['epoch']}}} to start over")
    return out


def plural(n: int, word: str, plural_word: str | None = None) -> str:
    """``n`` and ``word``, in the plural unless ``n`` is 1: the counts of messages and human output
    (``--json`` keeps the bare numbers).

    Args:
        n: the count.
        word: the singular.
        plural_word: the plural of an irregular word (default: ``word`` + "s").

    Example:
        >>> plural(1, "shard"), plural(2, "shard"), plural(0, "sample"), plural(1, "match", "matches")
        ('1 shard', '2 shards', '0 samples', '1 match')
    """
    return f"{n} {word if n == 1 else plural_word or word + 's'}"


def did_you_mean(name: Any, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the valid names closest to a misspelt ``name``, or ``""``.

    A name that differs only in case is the one suggestion (``HFlip``: ``hflip``, not ``vflip`` first).

    Example:
        >>> did_you_mean("sze", ["size", "fill", "num_holes"])
        "; did you mean 'size'?"
        >>> did_you_mean("HFlip", ["vflip", "hflip"])
        "; did you mean 'hflip'?"
    """
    if not isinstance(name, str):
        return ""
    choices = sorted(choices)
    close = [c for c in choices if c.lower() == name.lower()] or difflib.get_close_matches(name, choices, n=3)
    return ("; did you mean " + " or ".join(repr(c) for c in close) + "?") if close else ""


def unknown_keywords(function: str, given: Iterable[str], allowed: Collection[str],
                     reserved: Mapping[str, str] | None = None, aliases: Mapping[str, str] | None = None) -> None:
    """Raise TypeError — Python's own for a bad keyword — for the first name in ``given`` that is not
    in ``allowed``, naming ``function`` (the one the user called, not the one it forwards to) and the
    closest valid names. ``reserved``: names the function sets itself, with why. ``aliases``: other
    spellings a user may try (the CLI's: ``jobs`` for ``-j``) -> the keyword they mean.

    Example:
        >>> unknown_keywords("loader", ["shufle"], ["shuffle", "seed"])
        Traceback (most recent call last):
        ...
        TypeError: loader() got an unexpected keyword argument 'shufle'; did you mean 'shuffle'?
    """
    for key in given:
        if reserved and key in reserved:
            raise TypeError(f"{function}() does not take {key!r}: {reserved[key]}")
        if key in allowed:
            continue
        if aliases and aliases.get(key) in allowed:
            hint = f"; did you mean {aliases[key]!r}?"
        else:
            hint = did_you_mean(key, allowed) or f"; it takes {sorted(allowed)}"
        raise TypeError(f"{function}() got an unexpected keyword argument {key!r}{hint}")


def keyword_check(name: str, fn: Callable[..., Any], aliases: Mapping[str, str] | None = None,
                  reserved: Mapping[str, str] | None = None) -> Callable[[Mapping[str, Any]], None]:
    """The check :func:`keyword_hints` runs before each call, for a wrapper of one's own: it raises
    :func:`unknown_keywords`' TypeError for a keyword ``fn`` does not take (none for a ``**kwargs`` function).

    Example:
        >>> check = keyword_check("mmdata.fit", lambda data, *, epochs=1: epochs)
        >>> check({"epochs": 2})
        >>> check({"epoch": 2})
        Traceback (most recent call last):
        ...
        TypeError: mmdata.fit() got an unexpected keyword argument 'epoch'; did you mean 'epochs'?
    """
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return lambda kwargs: None  # it takes any keyword: its own checks name them
    allowed = frozenset(p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                             inspect.Parameter.KEYWORD_ONLY))

    def check(kwargs: Mapping[str, Any]) -> None:
        if not allowed.issuperset(kwargs):
            unknown_keywords(name, kwargs, allowed, reserved=reserved, aliases=aliases)
    return check


def keyword_hints(name: str, aliases: Mapping[str, str] | None = None,
                  reserved: Mapping[str, str] | None = None) -> Callable[[F], F]:
    """Decorate a public entry point so that a misspelt keyword raises Python's own TypeError with the
    closest valid names (:func:`unknown_keywords`), as :func:`mmdata.loader` does, instead of a bare
    ``unexpected keyword argument``; ``name``: how the message names the function (``mmdata.shard``),
    ``aliases``: other spellings -> the keyword meant (``{"jobs": "workers"}``), ``reserved``: keywords of
    a neighbouring function a user may bring along -> why this one does not take them. The call is the
    function's, and ``inspect.signature`` shows its parameters (``__wrapped__``); the wrapper is one frame
    more, which a ``warnings.warn(..., stacklevel=N)`` aimed at the caller's line counts.

    Example:
        >>> @keyword_hints("mmdata.fit", aliases={"jobs": "workers"})
        ... def fit(data: str, *, epochs: int = 1, workers: int = 1) -> int:
        ...     return epochs
        >>> fit("ds", epochs=3), list(inspect.signature(fit).parameters)
        (3, ['data', 'epochs', 'workers'])
        >>> fit("ds", jobs=2)
        Traceback (most recent call last):
        ...
        TypeError: mmdata.fit() got an unexpected keyword argument 'jobs'; did you mean 'workers'?
    """
    def decorate(fn: F) -> F:
        check = keyword_check(name, fn, aliases, reserved)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check(kwargs)
            return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]
    return decorate


def check_sources_exist(path: Any, error: type[Exception] = MMDataError) -> None:
    """Raise when a local dataset folder, shard or brace pattern named in ``path`` does not exist, so
    a typo fails when the dataset is opened, not when it is read (``shard nope/ not found``).

    URLs are not checked (that costs a request; their readers report them). A glob is left to the
    reader's ``matches no shard``. A brace pattern (``train-{000..009}.tar``) is refused only when none
    of its shards exists: one missing shard among them is the reader's damage to report or count.

    Example:
        >>> check_sources_exist("no/such/folder")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: no/such/folder: does not exist (expected a dataset folder written by ...)
    """
    from mmdata.urls import is_remote, local_path, protocol, redact

    if isinstance(path, (list, tuple)):
        for p in path:
            check_sources_exist(p, error)
        return
    if not isinstance(path, (str, Path)):
        return
    if str(path).startswith("pipe:") and not os.path.lexists(str(path)):
        # before is_remote: "pipe:curl -s http://..." parses as a URL of the protocol "pipe:curl -s http"
        raise error(f"{redact(str(path))}: pipe: URLs run a shell command, which mmdata never does for a shard name; give "
                    "the shard's path or URL (s3://, gs://, https://, ...: fsspec fetches it)")
    if is_remote(path):
        return
    s = str(local_path(path)) if protocol(path) == "file" else str(path)
    if any(c in s for c in "*?["):
        return
    if "{" in s:
        from mmdata.shards.tario import braceexpand

        if not any(os.path.lexists(p) for p in braceexpand(s)):
            raise error(f"pattern {s!r}: none of its shards exists")
        return
    if not os.path.lexists(s):
        raise error(f"{s}: does not exist (expected a dataset folder written by `mmdata shard`, a .tar / .tar.gz "
                    "shard, a brace pattern, a glob or a URL)")


def usable_device(device: Any, flag: str) -> torch.device:
    """``device`` as a :class:`torch.device`, or an :class:`MMDataError` naming ``flag`` and why it cannot be
    used here: not a device name, CUDA asked of a torch that sees no GPU (a CPU build raised torch's own
    "Torch not compiled with CUDA enabled" from deep inside ``.to``), or a device no tensor can be placed on
    (``mps`` / ``xpu`` on a build without them, tried with an empty tensor; ``cuda:N`` past the visible GPUs,
    counted without starting CUDA).

    Example:
        >>> usable_device("cpu", "device=")
        device(type='cpu')
        >>> usable_device("gpu0", "device=")
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: device= 'gpu0': not a torch device (cpu, cuda, cuda:N, mps): Invalid device string: 'gpu0'
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise MMDataError(f"{flag} {device!r}: not a torch device (cpu, cuda, cuda:N, mps): {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        use = f"{flag.split()[0]} cpu" if flag.startswith("--") else "device='cpu'"
        raise MMDataError(f"{flag} {device}: no CUDA device is visible (torch {torch.__version__}: "
                          f"torch.cuda.is_available() is False); use {use}")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise MMDataError(f"{flag} {device}: torch sees {torch.cuda.device_count()} CUDA device(s) (cuda:0 .. "
                          f"cuda:{torch.cuda.device_count() - 1})")
    # mps / xpu and other backends: torch says so only at the first tensor, so one is tried (not on CUDA: that
    # would start its context in this process, which a forking launcher (Lightning's ddp_fork) then refuses)
    if dev.type not in ("cpu", "meta", "cuda"):
        try:
            torch.empty(0, device=dev)
        except Exception as exc:  # noqa: BLE001 (NotImplementedError, AssertionError, RuntimeError, ImportError)
            first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
            raise MMDataError(f"{flag} {device}: this torch ({torch.__version__}) cannot place a tensor there: {first}") from None
    return dev
