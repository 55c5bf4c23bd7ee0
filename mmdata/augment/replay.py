"""Replay logs: the params every op drew for every sample, as Parquet (one row per sample x op).

``sample.meta["aug"]`` (per-sample path) or ``batch.meta["aug"]`` (batched path) holds the log;
:meth:`mmdata.augment.Recipe.replay` re-applies it exactly.

Format 3 (written now; schema metadata ``mmdata.replay_log_format = 3``): columns ``key, epoch, seq,
index, id, op, applied, params`` — ``id`` is the op identity (``image.cutout#0``), ``seq`` the entry's
place in the sample's log, ``index`` the op's position (null for normalize ops and composite children) —
and, when the log holds ops from outside mmdata, their provenance (schema metadata ``mmdata.op_provenance``,
:func:`op_provenance`). Format 2 (written before 2026-12-07) is format 3 without the provenance; format 1
(written before 2026-12-01: no ``id`` column) is still read: its entries are matched to a recipe by ``index``.

A log replays the *params*; the outputs are the ones recorded as long as the ops' kernels compute what they
did then. Logs record :data:`mmdata.augment.recipe.KERNELS` (schema metadata ``mmdata.kernels``), and
:func:`load_log` warns when a log was written with other kernels (or before logs said: mmdata of
2026-12-01 / 02, whose ``logmel`` window and several ops' semantics changed since). An op from outside
mmdata (a plugin's, a notebook's) is not covered by ``KERNELS``: the log records, per such op, its module,
its class's ``version`` attribute (the op author's to bump when the kernel's output changes), the installed
distribution and version that provide it, and a digest of the class's source; :func:`load_log` (for the ops
registered when it reads the log) and :meth:`~mmdata.augment.Recipe.replay` (for the recipe's ops) warn,
naming the op and what changed, when the op now registered differs. Logs without the record (format 2)
load without that warning.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from mmdata.errors import MMDataError
from mmdata.io import atomic_write_bytes

FORMAT_KEY = b"mmdata.replay_log_format"
KERNELS_KEY = b"mmdata.kernels"
#: schema metadata: ``{"image.solarize": op_provenance(cls), ...}`` for the log's ops from outside mmdata
PROVENANCE_KEY = b"mmdata.op_provenance"
#: in an entry's ``"provenance"``: the op's provenance :func:`load_log` compared the record with
CHECKED = "checked_against"
#: the columns of a row (:func:`log_rows`)
COLUMNS = ("key", "epoch", "seq", "index", "id", "op", "applied", "params")
#: in a composite's log entry (and its row, not a column): the labels of its children from outside mmdata,
#: whose provenance :func:`save_log` records (the row names the composite only: ``image.one_of``)
PLUGIN_OPS = "plugin_ops"


def log_rows(key: str, log: Sequence[Mapping[str, Any]], epoch: int = 0) -> list[dict[str, Any]]:
    """Flatten one sample's log into rows: key, epoch, seq, index, id, op, applied, params (JSON)."""
    rows = [{"key": key, "epoch": epoch, "seq": j, "index": None if e.get("index") is None else int(e["index"]),
             "id": e.get("id"), "op": e["op"], "applied": bool(e["params"].get("applied")),
             "params": json.dumps(e["params"], sort_keys=True)}
            for j, e in enumerate(log)]
    for row, e in zip(rows, log):
        if e.get(PLUGIN_OPS):  # a composite's children from outside mmdata: what save_log records the provenance of
            row[PLUGIN_OPS] = list(e[PLUGIN_OPS])
    return rows


def save_log(path: str | Path, rows: Iterable[Mapping[str, Any]], *, recipe: Any = None) -> None:
    """Write rows (from :func:`log_rows`) to a Parquet file atomically (format 3), with the provenance
    (:func:`op_provenance`) of every op from outside mmdata that the rows name, inside composites (``one_of``,
    ``some_of``: their rows list such children, :data:`PLUGIN_OPS`) too — and, given the ``recipe`` that
    drew them, of all its ops from outside mmdata (rows written by hand need not list them).

    Raises:
        MMDataError: a row that is not :func:`log_rows` output (naming the row and what it lacks); nothing
            is written.

    Example:
        >>> import tempfile, os
        >>> rows = log_rows("k", [{"op": "image.hflip", "id": "image.hflip#0", "index": 0, "params": {"applied": True}}])
        >>> save_log(os.path.join(tempfile.mkdtemp(), "log.parquet"), rows)
    """
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from mmdata.augment.recipe import KERNELS, LOG_FORMAT

    rows = list(rows)
    _check_rows(rows)
    meta = {FORMAT_KEY: str(LOG_FORMAT).encode(), KERNELS_KEY: str(KERNELS).encode()}
    provenance = _provenance_of(rows, recipe)
    if provenance:
        meta[PROVENANCE_KEY] = json.dumps(provenance, sort_keys=True).encode()
    schema = pa.schema([("key", pa.string()), ("epoch", pa.int64()), ("seq", pa.int64()), ("index", pa.int64()),
                        ("id", pa.string()), ("op", pa.string()), ("applied", pa.bool_()), ("params", pa.string())],
                       metadata=meta)
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf)
    atomic_write_bytes(path, buf.getvalue())


def _check_rows(rows: Sequence[Any]) -> None:
    """Each row is a mapping with :data:`COLUMNS`, its ``params`` the JSON text :func:`log_rows` makes, or an
    :class:`MMDataError` naming the row (a sample's log itself, ``{"key", "epoch", "aug": [...]}``, was written
    as nulls, and :func:`load_log` then failed on them)."""
    from numbers import Integral

    how = "rows come from log_rows(key, sample.meta['aug'], epoch): one row per entry of a sample's log"
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise MMDataError(f"save_log: row {i} is a {type(row).__name__}, not a mapping; {how}")
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise MMDataError(f"save_log: row {i} (keys {sorted(map(str, row))}) is missing {missing}; {how}")
        if not isinstance(row["params"], str) or not isinstance(row["op"], str):
            bad = "params" if not isinstance(row["params"], str) else "op"
            raise MMDataError(f"save_log: row {i}: {bad} is a {type(row[bad]).__name__}; expected "
                              f"{'the JSON text of the params (json.dumps)' if bad == 'params' else 'the op label (image.hflip)'}; {how}")
        where = f"save_log: row {i} (key {row['key']!r}, epoch {row['epoch']!r}, op {row['op']})"
        if not isinstance(row["key"], str):
            raise MMDataError(f"{where}: key is a {type(row['key']).__name__}; expected the sample's key (a str); {how}")
        for col in ("epoch", "seq"):
            if not isinstance(row[col], Integral) or isinstance(row[col], bool):
                raise MMDataError(f"{where}: {col} is {row[col]!r} (a {type(row[col]).__name__}); expected an int; {how}")
        try:
            params = json.loads(row["params"])
        except ValueError as exc:
            raise MMDataError(f"{where}: params is not JSON: {exc}: {row['params'][:80]!r}; {how}") from None
        if not isinstance(params, dict):
            raise MMDataError(f"{where}: params is not a JSON object (a {type(params).__name__}): "
                              f"{row['params'][:80]!r}; {how}")
        extra = row.get(PLUGIN_OPS)
        if extra is not None and (isinstance(extra, str) or not all(isinstance(x, str) for x in extra)):
            raise MMDataError(f"{where}: {PLUGIN_OPS} is {extra!r}; expected a list of op labels (image.solarize)")


def load_log(path: str | Path) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Read a Parquet log back (format 1, 2 or 3): (key, epoch) -> log entries in op order (ready for
    ``Recipe.replay``). A format 3 log's entries carry the provenance of its ops from outside mmdata (under
    ``"provenance"``, what :meth:`~mmdata.augment.Recipe.replay` compares with the recipe's ops); a warning
    names each such op registered now that differs from the one the log was written with.

    Raises:
        MMDataError: a row whose params are null or not a JSON object, naming the file and the row.
    """
    import warnings

    import pyarrow.parquet as pq

    from mmdata.augment.recipe import KERNELS

    table = pq.read_table(path)
    written = (table.schema.metadata or {}).get(KERNELS_KEY)
    if written != str(KERNELS).encode():
        said = kernels_changed(written, table.column("op").to_pylist() if "op" in table.column_names else [])
        if said:
            warnings.warn(f"replay log {path} {said}", UserWarning, stacklevel=2)
    provenance = _read_provenance(path, (table.schema.metadata or {}).get(PROVENANCE_KEY))
    if provenance:
        from mmdata.augment.base import registry

        for label, recorded in sorted(provenance.items()):
            cls = registry().get(_op_key(label))
            if cls is None:  # not imported yet: Recipe.replay compares it with the recipe's op
                continue
            changed = _changes(recorded, cls)
            recorded[CHECKED] = op_provenance(cls)  # said here: replay with this same class says nothing more
            if changed:
                warnings.warn(_changed_message(f"replay log {path}", label, cls, changed), UserWarning, stacklevel=2)
    v2 = "id" in table.column_names
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for i, r in enumerate(table.to_pylist()):
        entry = {"op": r["op"], "index": r["index"], "params": _params(path, i, r)}
        if v2:
            entry["id"], entry["seq"] = r["id"], r["seq"]
        if provenance:
            entry["provenance"] = provenance
        out.setdefault((r["key"], r["epoch"]), []).append(entry)
    for entries in out.values():
        entries.sort(key=lambda e: e["seq"] if v2 else e["index"])
        for e in entries:
            e.pop("seq", None)
    return out


#: what each recorded kernels number computes differently from today's, by op name: a log of those kernels
#: replays these ops' params to other outputs (:func:`kernels_changed` names the ones a log holds)
KERNEL_CHANGES: dict[str, dict[str, str]] = {
    "1": {
        "logmel": "logmel sums its mel bands in a fixed order on the CPU since 2026-12-06 18:10 (kernels 2): its "
                  "features move by float rounding",
        # fa40320 (2026-12-06 05:10) changed it under kernels 1: a kernels-1 log may be of before or after (QA34 upgrade 6)
        "consistent_hflip": "consistent_hflip swaps the left and right channels of 2-channel audio with the image "
                            "since 2026-12-06 05:10 (stereo: swap, its default; before, stereo was never swapped): a "
                            "log of before replays a stereo clip it flipped with the channels swapped; replay such "
                            "a log with the recipe's consistent_hflip given stereo: keep",
    },
    # 36c96e3 (2026-12-07): audio after pad_trim acts on the real frames (QA round 34, avspeech 1/2/10; review C F1):
    # on a clip pad_trim padded, these ops draw on, or act on, its real frames alone, so a log of kernels 2
    # replays them to other audio there (clips pad_trim did not pad replay as they were)
    "2": {name: (f"{name} draws on and acts on the real frames of a clip pad_trim padded (not its padding) since "
                 "2026-12-07 (kernels 3): on such clips its output differs; clips pad_trim did not pad are as they were")
          for name in ("time_shift", "time_mask", "noise", "speed", "resample", "band_limit",
                       "pitch_shift", "reverb", "background_noise", "random_crop", "pad", "pad_trim")},
}

#: containers whose log rows do not name their children (``{"children": {"0": {...}}}``): a log holding one may
#: hold any op, so every change of its kernels number is named (review C F6)
CONTAINERS = frozenset({"one_of", "some_of"})


def kernels_changed(written: bytes | None, ops: Iterable[Any]) -> str | None:
    """How a log written by kernels ``written`` (its schema metadata; None: not recorded) replays, naming
    the ops among ``ops`` (the log's op labels) whose kernels changed since; None where none of them did.

    Example:
        >>> kernels_changed(b"1", ["image.hflip", "sample.consistent_hflip"]).startswith("was written by kernels 1")
        True
        >>> kernels_changed(b"1", ["image.hflip"]) is None
        True
        >>> "logmel" in kernels_changed(b"1", ["audio.some_of"])  # a container's children are not named: all
        True
    """
    from mmdata.augment.recipe import KERNELS

    if written == str(KERNELS).encode():
        return None
    if written is None:
        return (f"was written by an mmdata that did not record its kernels (these are kernels {KERNELS}): "
                "Recipe.replay applies its params, but ops whose kernels changed since (logmel's window, several "
                "ops' semantics in 2026-12, consistent_hflip's stereo swap) give other outputs than were recorded")
    number = written.decode(errors="replace")
    changes = KERNEL_CHANGES.get(number)
    if changes is None:  # a number this mmdata does not know (a newer one): every op may differ
        return (f"was written by kernels {number} (these are kernels {KERNELS}): Recipe.replay applies its params, "
                "but ops whose kernels differ give other outputs than were recorded")
    names = {str(op).rsplit(".", 1)[-1] for op in ops if op is not None}
    said = [text for name, text in changes.items() if name in names or names & CONTAINERS]
    if not said:
        return None
    return (f"was written by kernels {number} (these are kernels {KERNELS}): Recipe.replay applies its params, but "
            "these ops' outputs changed since: " + "; ".join(said))


def _params(path: Any, i: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """Row ``i``'s params, parsed, or an :class:`MMDataError` naming the file and the row."""
    where = f"replay log {path}: row {i} (key {row.get('key')!r}, epoch {row.get('epoch')}, op {row.get('op')})"
    text = row.get("params")
    if text is None:
        raise MMDataError(f"{where}: params is null; a log's rows come from log_rows(key, sample.meta['aug'], epoch) "
                          "(save_log refuses other rows since 2026-12-07)")
    try:
        params = json.loads(text)
    except ValueError as exc:
        raise MMDataError(f"{where}: params is not JSON: {exc}: {text[:80]!r}") from None
    if not isinstance(params, dict):
        raise MMDataError(f"{where}: params is not a JSON object (a {type(params).__name__}): {text[:80]!r}")
    return params


# -- provenance of ops from outside mmdata -----------------------------------------------------------

def _ours(cls: type) -> bool:
    """Whether ``cls`` is defined in mmdata (:func:`mmdata.plugins._builtin`, the plugins' own test)."""
    from mmdata.plugins import _builtin

    return _builtin(cls.__module__ or "")


def _op_key(label: str) -> tuple[str, str]:
    """(section, name) of a log label: ``image.solarize``, ``normalize.image.resize`` -> ('image', 'resize')."""
    section, _, name = label.removeprefix("normalize.").rpartition(".")
    return section, name


@lru_cache(maxsize=1)
def _owners() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    try:
        return dict(packages_distributions())
    except Exception:  # noqa: BLE001 — a malformed installed package must not stop a log
        return {}


def _distribution(module: str) -> tuple[str | None, str | None]:
    """The installed distribution that provides ``module`` and its version, or (None, None)."""
    from importlib.metadata import version

    dists = _owners().get(module.split(".")[0]) or []
    if not dists:
        return None, None
    try:
        return dists[0], version(dists[0])
    except Exception:  # noqa: BLE001
        return dists[0], None


def op_provenance(cls: type) -> dict[str, Any]:
    """Where an op class comes from, as a replay log records it: ``module``, ``version`` (the class's
    ``version`` attribute, None if it defines none: bump it when the kernel's output changes),
    ``distribution`` and ``distribution_version`` (the installed package that provides the module, None for
    a module on ``PYTHONPATH``) and ``source_sha256`` (16 hex digits of the sha256 of the class's source,
    ``inspect.getsource``; None where it is not available).

    Example:
        >>> from mmdata.augment.base import registry
        >>> sorted(op_provenance(registry()["image", "hflip"]))
        ['distribution', 'distribution_version', 'module', 'source_sha256', 'version']
    """
    version = getattr(cls, "version", None)
    if not isinstance(version, (str, int, float, bool, type(None))):
        version = str(version)
    dist, dist_version = _distribution(cls.__module__ or "")
    return {"module": cls.__module__, "version": version, "distribution": dist, "distribution_version": dist_version,
            "source_sha256": _digest(cls)}


_DIGESTS: WeakKeyDictionary[type, str | None] = WeakKeyDictionary()


def _digest(cls: type) -> str | None:
    """16 hex digits of the sha256 of ``cls``'s source, once per class (a class's code does not change: an
    edited module makes a new class), None where the source is not available."""
    try:
        return _DIGESTS[cls]
    except KeyError:
        pass
    import inspect

    try:
        digest: str | None = hashlib.sha256(inspect.getsource(cls).encode()).hexdigest()[:16]
    except (OSError, TypeError):  # defined in a REPL, from stdin, or a build without source
        digest = None
    _DIGESTS[cls] = digest
    return digest


def _provenance_of(rows: Sequence[Mapping[str, Any]], recipe: Any) -> dict[str, dict[str, Any]]:
    """{label: op_provenance} of the ops from outside mmdata the rows name (registered now), and of
    ``recipe``'s (children of composites included)."""
    from mmdata.augment.base import registry

    reg = registry()
    classes: dict[str, type] = {}
    named = {str(r["op"]) for r in rows} | {str(x) for r in rows for x in r.get(PLUGIN_OPS) or ()}
    for label in sorted(named):
        cls = reg.get(_op_key(label))
        if cls is not None and not _ours(cls):
            classes[f"{cls.section}.{cls.name}"] = cls

    def walk(steps: Iterable[Any]) -> None:
        for st in steps:
            cls = type(st.op)
            if not _ours(cls):
                classes[f"{cls.section}.{cls.name}"] = cls
            walk(st.children)

    if recipe is not None:
        walk(recipe.steps)
    return {label: op_provenance(cls) for label, cls in sorted(classes.items())}


def _read_provenance(path: Any, raw: bytes | None) -> dict[str, dict[str, Any]]:
    if not raw:
        return {}
    try:
        got = json.loads(raw)
    except ValueError:
        got = None
    if not isinstance(got, dict) or not all(isinstance(v, dict) for v in got.values()):
        import warnings

        warnings.warn(f"replay log {path}: its {PROVENANCE_KEY.decode()} metadata is not a JSON object of objects; "
                      "its ops' provenance is not checked", UserWarning, stacklevel=3)
        return {}
    return got


def _changes(recorded: Mapping[str, Any], cls: type) -> list[str]:
    """What differs between the ``recorded`` provenance and ``cls``'s now: ``version: 1 -> 2``, ... A source
    digest not known on one side (None: a class from stdin, ``python -c``, a notebook cell) is not compared;
    the module is, only then: the same source under another module name (a script run as ``__main__``, later
    imported) is the same op."""
    now = op_provenance(cls)
    out = []
    was, digest = recorded.get("source_sha256"), now["source_sha256"]
    known = was is not None and digest is not None
    if not known and recorded.get("module") != now["module"]:
        out.append(f"module: {recorded.get('module')} -> {now['module']}")
    if recorded.get("version") != now["version"]:
        out.append(f"version: {recorded.get('version')} -> {now['version']}")
    if known and was != digest:
        out.append(f"source sha256: {was} -> {digest}")
    was = (recorded.get("distribution"), recorded.get("distribution_version"))
    if was != (now["distribution"], now["distribution_version"]):
        def shown(d: Any, v: Any) -> str:
            return "no distribution" if d is None else f"{d} {v}"
        out.append(f"distribution: {shown(*was)} -> {shown(now['distribution'], now['distribution_version'])}")
    return out


def _changed_message(where: str, label: str, cls: type, changed: Sequence[str]) -> str:
    return (f"{where}: op {label} (class {cls.__module__}.{cls.__qualname__}) is not the one the log was written "
            f"with ({'; '.join(changed)}): Recipe.replay applies the logged params, but the op may give another "
            "output than was recorded (an op's author bumps its class's `version` when its output changes)")


def check_provenance(entries: Sequence[Mapping[str, Any]], steps: Iterable[Any], seen: dict[Any, Any]) -> None:
    """Warn when an op of ``steps`` (and their children) from outside mmdata differs from the provenance the
    log's ``entries`` carry (:func:`load_log`'s ``"provenance"``), once per log: ``seen`` (the recipe's) holds
    the records compared already, by identity (a log's entries share one) and by content."""
    import warnings

    provenance = next((e["provenance"] for e in entries if e.get("provenance")), None)
    if not provenance:
        return
    if seen.get(id(provenance)) is provenance:  # this log's record: compared at its first sample
        return
    seen[id(provenance)] = provenance  # held, so that its id is not another record's while it is here
    content = json.dumps(provenance, sort_keys=True, default=str)
    if content in seen:
        return
    seen[content] = True
    done: set[str] = set()

    def walk(sts: Iterable[Any]) -> None:
        for st in sts:
            cls = type(st.op)
            label = f"{cls.section}.{cls.name}"
            if not _ours(cls) and label not in done and label in provenance:
                done.add(label)
                recorded = provenance[label]
                changed = _changes(recorded, cls)
                if changed and recorded.get(CHECKED) != op_provenance(cls):  # load_log did not say it already
                    warnings.warn(_changed_message("Recipe.replay", label, cls, changed), UserWarning, stacklevel=4)
            walk(st.children)

    walk(steps)
