"""Plugins: your own augmentation ops and fusions, imported by name in every process that needs them.

An op (:class:`mmdata.augment.base.Op` subclass) or a fusion (``@mmdata.train.fusions.register``) is
registered when the module defining it is imported. In your own script ``import myops`` does that for
this process — but an ablation's worker processes are fresh interpreters that import only the
trainer, so they must be told which modules to import. A plugin is named by a *spec*: a module
(``pkg.myops``) or a module and a function to call once after importing it (``pkg.myops:register``).
Plugins come from:

* ``load_plugins(["pkg.myops"])`` — what the CLI's ``--plugin pkg.myops`` calls, once per command;
* an ablation recipe's ``imports: [pkg.myops]`` (with the caller's consent: see below) and
  ``mmdata.ablate.run(..., plugins=[...])``;
* installed packages' entry points in the group :data:`GROUP` (``mmdata.plugins``), e.g. in a
  plugin package's ``pyproject.toml``::

      [project.entry-points."mmdata.plugins"]
      myops = "mmdata_myops"            # or "mmdata_myops:register"

* and, for an ablation, the modules of the ops and fusions already registered in the calling process
  (``import myops`` before ``mmdata.ablate.run``): :func:`worker_plugins` passes each on when a fresh
  interpreter can import it by name, and refuses, before any run, an op or fusion the arms use that it
  cannot (defined in ``__main__`` — a script, a notebook — or inside a function).

Entry points are loaded at well-defined moments, never on ``import mmdata``: by :func:`load_plugins`
(the CLI's commands that name ops or fusions; :func:`mmdata.ablate.run`), and, for library callers, on
the first op or fusion name not registered yet (:func:`entry_points_on_miss`: a recipe's op in
:func:`mmdata.augment.base.build_op`, so ``load_recipe`` and ``mmdata.loader(recipe=)``; a fusion in
:func:`mmdata.train.fusions.fusion_class`), at most once per process. An installed package is
code the user chose to install — trusted like any import — and nothing here touches the network.
Loading them at the start of a command (rather than at each unknown name) keeps every process of
one job on the same registry: an ablation's workers import exactly the specs the parent loaded
(:func:`worker_plugins`), so results do not depend on which process ran which run.

A recipe is not the user's own choice the way ``--plugin`` and an installed package are: a recipe's
``imports:`` and ``trainer.entry`` import modules and call functions — code that runs on this machine
with the user's permissions when the recipe is loaded (``imports: ["http.server:test"]`` serves this
machine's files). Like ``trust_remote_code=True``, loading them is opt-in: :func:`check_code_consent`
refuses such a recipe, before anything is imported, unless the caller consents
(``mmdata ablate --trust-code``, ``load_ablation(..., trust_code=True)``, or a :func:`trust_code` block).

Errors say which of two things happened (:func:`import_module`): no module of that name is found,
or the module was found and its own import failed (a dependency missing, an exception in it).

Example:
    >>> load_plugins(["mmdata.ablate.testing"], entry_points=False)
    ['mmdata.ablate.testing']
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import Any

from mmdata.errors import MMDataError

#: the entry-point group installed packages register their plugins under
GROUP = "mmdata.plugins"
#: plugins one job may name (a recipe is untrusted input: its list is bounded)
MAX_PLUGINS = 64
_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_SPEC = re.compile(rf"^{_NAME}(?::{_NAME})?$")

# specs loaded in this process, in order (a dict: ordered and unique); an entry point's hook runs once
_LOADED: dict[str, None] = {}
# the specs of the installed entry points, once discovered and loaded (None: not yet)
_ENTRY_POINTS: list[str] | None = None
# entry_points_on_miss: the error of its load (kept: a broken package is tried once, not at every name), whether
# a load is under way (a plugin's own lookups while it imports start none), and one load at a time across threads
_MISS_ERROR: str | None = None
_MISS_LOADING = False
_MISS_LOCK = threading.RLock()
# the caller's consent to the code a recipe names (trust_code(); mmdata ablate --trust-code): off by default
_TRUST_CODE: ContextVar[bool] = ContextVar("mmdata_trust_code", default=False)


@contextmanager
def trust_code(trust: bool = True) -> Iterator[None]:
    """Within the block, consent (``trust``) to the code an ablation recipe names — its ``imports:`` and
    ``trainer.entry``, imported and called on this machine — as ``mmdata ablate --trust-code`` does; for
    a call that loads a recipe without a ``trust_code=`` of its own (``mmdata.ablate.run``).

    Example:
        >>> with trust_code():
        ...     code_trusted()
        True
        >>> code_trusted()
        False
    """
    token = _TRUST_CODE.set(bool(trust))
    try:
        yield
    finally:
        _TRUST_CODE.reset(token)


def code_trusted() -> bool:
    """Whether the caller consented to a recipe's code here (:func:`trust_code`).

    Example:
        >>> code_trusted()
        False
    """
    return _TRUST_CODE.get()


#: the trainers mmdata ships (the bundled one, the synthetic test dummy): part of the installed library, as
#: trusted as ``import mmdata`` — a recipe's ``trainer.entry`` naming one needs no consent
SHIPPED_TRAINERS = ("mmdata.train:train", "mmdata.ablate.testing:synthetic_train")


def check_code_consent(imports: Sequence[str], entry: str | None, where: str, trust: bool | None = None) -> None:
    """Refuse a recipe naming code (``imports``, a trainer ``entry``) unless the caller consented: ``trust``,
    or None for the :func:`trust_code` block around the call. Call it before anything is imported.
    mmdata's own code needs no consent (like a library's built-in models without ``trust_remote_code``):
    an import of an mmdata module (no ``:function`` to call) and the trainers in :data:`SHIPPED_TRAINERS`.

    Raises:
        MMDataError: naming the keys and the modules, and how to consent.

    Example:
        >>> check_code_consent([], None, "ablation recipe")  # names no code: nothing to consent to
        >>> check_code_consent(["mmdata.ablate.testing"], "mmdata.ablate.testing:synthetic_train", "x")  # mmdata's
        >>> check_code_consent(["pkg.ops"], None, "ablation recipe x.yaml")
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: ablation recipe x.yaml: this recipe runs Python code on this machine when loaded: imports: ['pkg.ops']; pass --trust-code (trust_code=True) if you trust it (nothing was imported)
    """
    imports = [m for m in imports if ":" in m or not _builtin(m)]
    entry = None if entry in SHIPPED_TRAINERS else entry
    if not imports and entry is None:
        return
    if trust if trust is not None else code_trusted():
        return
    named = ([f"imports: {list(imports)!r}"] if imports else []) + ([f"trainer.entry: {entry!r}"] if entry else [])
    raise MMDataError(f"{where}: this recipe runs Python code on this machine when loaded: {', '.join(named)}; pass "
                      "--trust-code (trust_code=True) if you trust it (nothing was imported)")


def check_spec(spec: Any, where: str) -> str:
    """``spec`` if it names a plugin: a dotted module name, optionally ``:function`` — no path, no
    relative import (a recipe's ``imports:`` is untrusted input).

    Example:
        >>> check_spec("pkg.myops:register", "imports[0]")
        'pkg.myops:register'
    """
    if not isinstance(spec, str) or not _SPEC.match(spec):
        raise MMDataError(f"{where}: expected a module name like pkg.myops (dotted Python names, optionally "
                          f":function), got {spec!r}")
    return spec


def import_module(name: str, where: str) -> ModuleType:
    """Import the module ``name``; errors start with ``where`` and tell "not found" from "found, but its
    own import failed" (a missing dependency is named as such).

    Example:
        >>> import_module("no_such_module_xyz", "--plugin 'no_such_module_xyz'")
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: --plugin 'no_such_module_xyz': cannot import module 'no_such_module_xyz': no module of that name was found; is it installed, or on PYTHONPATH (PYTHONPATH=. for a module in the working directory)?
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name
        if missing and (name == missing or name.startswith(missing + ".")):
            raise MMDataError(f"{where}: cannot import module {name!r}: no module of that name was found; is it installed, "
                              "or on PYTHONPATH (PYTHONPATH=. for a module in the working directory)?") from None
        what = f"the module {missing!r} it imports is not installed ({exc}); install it" if missing else str(exc)
        raise MMDataError(f"{where}: module {name!r}{_found_at(name)} was found, but its own import failed: {what}") from exc
    except MMDataError as exc:
        raise MMDataError(f"{where}: module {name!r}{_found_at(name)} was found, but its own import failed: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 — any error in the user's module is theirs to fix: named, one line
        raise MMDataError(f"{where}: module {name!r}{_found_at(name)} was found, but its own import failed: "
                          f"{type(exc).__name__}: {exc}{_line_of(exc)}") from exc


def _found_at(name: str) -> str:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # its package's import fails too
        return ""
    return f" ({spec.origin})" if spec is not None and spec.origin and spec.has_location else ""


def _line_of(exc: BaseException) -> str:
    """`` at FILE:LINE`` of the innermost frame of ``exc`` outside importlib (where the user's code failed)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return ""  # its message holds the file and line already
    tb, at = exc.__traceback__, None
    while tb is not None:
        f = tb.tb_frame.f_code.co_filename
        if "importlib" not in f:
            at = f"{f}:{tb.tb_lineno}"
        tb = tb.tb_next
    return f" (at {at})" if at else ""


def _load_spec(spec: str, where: str) -> None:
    """Import a spec's module and, for ``module:function``, call that function once (a registration hook)."""
    mod, _, attr = spec.partition(":")
    obj: Any = import_module(mod, where)
    if not attr:
        return
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise MMDataError(f"{where}: module {mod!r} has no attribute {attr!r}")
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        try:
            obj()
        except MMDataError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise MMDataError(f"{where}: {spec} raised {type(exc).__name__}: {exc}{_line_of(exc)}") from exc


def load_plugins(modules: Sequence[str] = (), *, entry_points: bool = True, where: str = "--plugin") -> list[str]:
    """Import plugin modules by name (and, with ``entry_points``, every installed package's
    ``mmdata.plugins`` entry point first), so the ops and fusions they register can be named.

    Each spec is loaded once per process; loading it again does nothing. Call it at the start of a
    command, before any recipe or ``--fusion`` is read.

    Args:
        modules: specs: ``"pkg.myops"`` or ``"pkg.myops:register"`` (the function is called once).
        entry_points: also load the installed entry points (:func:`load_entry_points`).
        where: how the caller names the list in errors (``--plugin``, ``imports``, ``plugins=``).

    Returns:
        The specs loaded by this call's request, entry points first, in order — what another process
        must load to register the same ops and fusions.

    Raises:
        MMDataError: a spec is malformed, its module is not found, or its import failed (which of them).

    Example:
        >>> load_plugins(["mmdata.ablate.testing"], entry_points=False)
        ['mmdata.ablate.testing']
    """
    if isinstance(modules, str):  # one name given as a string: not a list of its characters
        modules = [modules]
    if len(modules) > MAX_PLUGINS:
        raise MMDataError(f"{where}: {len(modules)} plugins; at most {MAX_PLUGINS}")
    specs = [check_spec(m, f"{where}[{i}]" if len(modules) > 1 else where) for i, m in enumerate(modules)]
    out: dict[str, None] = dict.fromkeys(load_entry_points()) if entry_points else {}
    for spec in specs:
        _load_once(spec, f"{where} {spec!r}")
        out[spec] = None
    return list(out)


def _load_once(spec: str, where: str) -> None:
    """:func:`_load_spec` unless this process loaded ``spec`` already (a hook runs once)."""
    if spec not in _LOADED:
        _load_spec(spec, where)
        _LOADED[spec] = None


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    seen: dict[str, Any] = {}
    for ep in entry_points(group=GROUP):  # a package on sys.path twice lists its entry point twice: one load
        seen.setdefault(ep.value, ep)
    return sorted(seen.values(), key=lambda ep: (ep.name, ep.value))  # a fixed order: every process loads alike


def _package(ep: Any) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an installed package"


def load_entry_points() -> list[str]:
    """Load every installed ``mmdata.plugins`` entry point (once per process) and return their specs.

    Raises:
        MMDataError: an entry point fails to load, naming the package that installed it.

    Example:
        >>> isinstance(load_entry_points(), list)
        True
    """
    global _ENTRY_POINTS
    if _ENTRY_POINTS is None:
        done = []
        for ep in _entry_points():
            where = f"installed package {_package(ep)}, entry point {ep.name} = {ep.value!r} (group {GROUP})"
            try:
                spec = check_spec(ep.value.replace(" ", ""), where)
                _load_once(spec, where)
            except MMDataError as exc:
                raise MMDataError(f"{exc}; fix or uninstall that package") from None
            done.append(spec)
        _ENTRY_POINTS = done
    return list(_ENTRY_POINTS)


def entry_points_on_miss() -> bool:
    """For a lookup by name that found nothing (a recipe's op, a fusion): load the installed entry points
    (:func:`load_entry_points`) unless they are loaded already, at most once per process, so a library
    caller gets an installed package's op or fusion without importing it, as the CLI's commands do.

    Returns:
        Whether this call loaded them — the caller then looks again; False when they were loaded before
        (here, or by :func:`load_plugins`) or while their load is under way (a plugin's import looking up a
        name it does not register).

    Raises:
        MMDataError: an entry point failed to load, naming its package; raised again at every later miss
            without a second try.

    Example:
        >>> entry_points_on_miss() in (True, False)
        True
    """
    global _MISS_ERROR, _MISS_LOADING
    with _MISS_LOCK:
        if _ENTRY_POINTS is not None or _MISS_LOADING:
            return False
        if _MISS_ERROR is not None:
            raise MMDataError(_MISS_ERROR)
        _MISS_LOADING = True
        try:
            load_entry_points()
        except MMDataError as exc:
            _MISS_ERROR = str(exc)
            raise
        finally:
            _MISS_LOADING = False
        return True


def loaded() -> list[str]:
    """Every spec loaded in this process so far (entry points included), in order.

    Example:
        >>> "mmdata.ablate.testing" in (load_plugins(["mmdata.ablate.testing"], entry_points=False) and loaded())
        True
    """
    return list(_LOADED)


def describe(specs: Iterable[str]) -> list[dict[str, Any]]:
    """Where each plugin's code came from, for ``env.json``: its spec, the module's file, and the installed
    distribution and version that provide it (None for a module that is not part of one).

    Example:
        >>> describe(["mmdata.ablate.testing"])[0]["distribution"]
        'mmdata'
    """
    from importlib.metadata import packages_distributions, version

    try:
        owners = packages_distributions()
    except Exception:  # noqa: BLE001 — a malformed installed package must not stop an ablation
        owners = {}
    out = []
    for spec in specs:
        mod = spec.partition(":")[0]
        m = sys.modules.get(mod)
        dists = owners.get(mod.split(".")[0]) or []
        ver = None
        if dists:
            try:
                ver = version(dists[0])
            except Exception:  # noqa: BLE001
                ver = None
        out.append({"spec": spec, "file": getattr(m, "__file__", None), "distribution": dists[0] if dists else None,
                    "version": ver})
    return out


def _builtin(module: str) -> bool:
    return module == "mmdata" or module.startswith("mmdata.")


def _importable(top: str) -> bool:
    """Whether the top-level module ``top`` is found by an import, as a worker looks for it: every finder of
    ``sys.meta_path`` (sys.path's, and those an installed package adds, e.g. setuptools' editable-install finder,
    which a worker's site start adds too), not merely ``sys.modules`` (a module loaded by path is there, in this
    process only). A top-level name imports nothing to be found (importlib.util.find_spec does the same, after
    looking in sys.modules)."""
    if top in sys.builtin_module_names:
        return True
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            if find_spec(top, None) is not None:
                return True
        except Exception:  # noqa: BLE001, S112 — a broken finder finds nothing; the next one may
            continue
    return False


def _by_name(cls: type) -> str | None:
    """Why importing ``cls.__module__`` in a fresh interpreter would not register ``cls`` (None: it would)."""
    mod, qual = cls.__module__ or "", cls.__qualname__
    if mod == "__main__":
        return "is defined in __main__ (the script you ran, or a notebook), which a worker process does not import"
    if "<locals>" in qual:
        return (f"is defined inside a function ({mod}.{qual}), so importing {mod!r} does not register it; "
                "define it at the top level of the module")
    if not _importable(mod.split(".")[0]):
        return (f"comes from module {mod!r}, which no import finder finds (not on sys.path, nor an installed or "
                "editable-installed package: loaded from a file by path, or made at run time), so another process "
                "cannot import it by name")
    obj: Any = sys.modules.get(mod)
    for part in qual.split("."):
        obj = getattr(obj, part, None)
    if obj is not cls:
        return f"is not {mod}.{qual} (made at run time?), so importing {mod!r} does not register it"
    return None


def registered() -> dict[str, type]:
    """Every op and fusion class registered from outside mmdata, labelled as errors name them
    (``op 'invert' (image)``, ``fusion 'prod'``).

    Example:
        >>> all(not c.__module__.startswith("mmdata.") for c in registered().values())
        True
    """
    from mmdata.augment.base import registry
    from mmdata.train.fusions import FUSIONS

    out: dict[str, type] = {}
    for (section, name), cls in sorted(registry().items()):
        if not _builtin(cls.__module__ or ""):
            out[f"op {name!r} ({section})"] = cls
    for name, cls in sorted(FUSIONS.items()):
        if not _builtin(cls.__module__ or ""):
            out[f"fusion {name!r}"] = cls
    return out


def used_code(recipes: Iterable[Mapping[str, Any] | None], fusion: str | None = None) -> dict[str, type]:
    """The ops of ``recipes`` (composites' children included) and the fusion named ``fusion`` that come
    from outside mmdata, labelled as :func:`registered` labels them.

    Example:
        >>> used_code([{"image": [{"op": "hflip"}]}], "concat")
        {}
    """
    from mmdata.augment.recipe import load_recipe
    from mmdata.train.fusions import FUSIONS

    out: dict[str, type] = {}

    def walk(steps: Iterable[Any]) -> None:
        for st in steps:
            cls = type(st.op)
            if not _builtin(cls.__module__ or ""):
                out[f"op {cls.name!r} ({cls.section})"] = cls
            walk(st.children)

    seen: set[str] = set()
    for r in recipes:
        if r:
            key = repr(r)  # the arms of a design repeat most steps: each recipe loaded once
            if key not in seen:
                seen.add(key)
                walk(load_recipe(dict(r)).steps)
    cls = FUSIONS.get(fusion) if fusion else None
    if cls is not None and not _builtin(cls.__module__ or ""):
        out[f"fusion {fusion!r}"] = cls
    return out


def worker_plugins(used: Mapping[str, type], specs: Sequence[str] = ()) -> list[str]:
    """The specs another process must load to register what this one has: ``specs`` (loaded by name
    already), then the module of every op and fusion registered here from outside mmdata that imports
    by name (``import myops`` in a script: passed on without being listed). An op or fusion in ``used``
    (``{label: class}``: what the job names) that another process cannot get that way is refused.

    Raises:
        MMDataError: naming the op or fusion, where it is defined and what to do.

    Example:
        >>> worker_plugins({}, ["mmdata.ablate.testing"])
        ['mmdata.ablate.testing']
    """
    out: dict[str, None] = dict.fromkeys(specs)
    covered = {s.partition(":")[0] for s in specs}
    for label, cls in {**registered(), **used}.items():
        mod = cls.__module__ or ""
        if _builtin(mod) or mod in covered:
            continue  # mmdata's own, or registered by a spec the other process loads too
        why = _by_name(cls)
        if why is None:
            out[mod] = None
            covered.add(mod)
        elif label in used:
            raise MMDataError(f"{label} {why}; move it to an importable module (a .py file on PYTHONPATH or in the "
                              "working directory) and list that module under imports: in the ablation recipe, "
                              "--plugin on the command line, or plugins= in run()")
    return list(out)
