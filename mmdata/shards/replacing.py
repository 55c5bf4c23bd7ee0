"""Which dataset a job may replace in its output folder.

``mmdata shard``, ``mmdata augment`` and ``mmdata datasets build`` write a dataset folder; a rerun of the
same command into its own output replaces what it wrote there (re-shard with other options, augment with
another recipe, build again). A dataset folder written by another command, or the dataset that the job's
source was augmented from, is refused unless ``force`` (``--force``) says to replace it (QA35 pipeline #2:
``mmdata augment aug clean`` with SRC and OUT swapped replaced the only sharded copy of ``clean``, exit 0).
``--force`` keeps its one meaning: replace what OUT holds (another tool's files, or another command's dataset).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmdata.errors import SourceError

#: the commands that write a dataset folder, as :func:`command_kind` names them
KINDS = ("shard", "augment", "datasets build")


def command_kind(command: Any) -> str | None:
    """The command (one of :data:`KINDS`) that a card's ``command`` entry names, or None for a card naming
    none (an older card, one edited by hand). ``add-modality`` keeps the card's command: a column-layout
    dataset with added series counts as the command that wrote it.

    Example:
        >>> command_kind("mmdata augment SRC OUT -r RECIPE --copies 2"), command_kind("mmdata shard SRC OUT")
        ('augment', 'shard')
        >>> command_kind("mmdata.datasets.avdigits.build(OUT, seed=0, limit=None, knobs=...)"), command_kind(None)
        ('datasets build', None)
    """
    if not isinstance(command, str):
        return None
    words = command.split()
    if words[:3] == ["mmdata", "datasets", "build"] or command.startswith("mmdata.datasets."):
        return "datasets build"
    if len(words) >= 2 and words[0] == "mmdata" and words[1] in ("shard", "augment"):
        return words[1]
    return None


def check_replacing(out: str | Path, kind: str, *, src: Any = None, force: bool = False,
                    storage_options: dict[str, Any] | None = None) -> None:
    """Refuse (a :class:`SourceError`, exit 2 in the CLI) to replace the dataset in ``out`` when a job of
    command ``kind`` (one of :data:`KINDS`) did not write it, or when it is the dataset that ``src``'s card
    says ``src`` was augmented from (``augmentation.augmented_from.fingerprint`` equal to its fingerprint:
    SRC and OUT swapped), whatever command wrote it. ``force=True``: no check. No card in ``out`` (a new or
    empty folder, bare shards, an interrupted job's folder), a card naming no command or one that does not
    read (the job's own checks say what is wrong): no check either, as before.

    Called before the source is read and before anything is written.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=3), t + "/ds", progress=False)
        >>> check_replacing(t + "/ds", "shard")  # a rerun of the same command: replaced
        >>> try:
        ...     check_replacing(t + "/ds", "augment")
        ... except SourceError as exc:
        ...     print(str(exc).split(": ", 1)[1][:58])
        it holds the dataset 'ds' (3 samples) written by `mmdata s
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if force or _same_folder(out, src):  # OUT = SRC: the job's own check names it
        return
    card = _card(out, storage_options)
    if card is None:
        return
    shown = _shown(out)
    name, fingerprint = card.get("name"), card.get("fingerprint")
    held = f"the dataset {str(name)!r} ({_samples(card)})" if name else f"a dataset ({_samples(card)})"
    force_line = "; write to another folder, or pass --force (force=True) to replace it"
    origin = _augmented_from(src, storage_options)
    if fingerprint and origin and origin.get("fingerprint") == fingerprint:
        raise SourceError(f"output folder {shown}: it holds {held} that the source {_shown(src)} was augmented "
                          f"from (the source card's augmentation.augmented_from.fingerprint "
                          f"{str(fingerprint)[:12]}...): are SRC and OUT swapped? "
                          f"Write to another folder, or pass --force (force=True) to replace it")
    have = command_kind(card.get("command"))
    if have is None or have == kind:
        return
    raise SourceError(f"output folder {shown}: it holds {held} written by `{_command(card['command'])}`, not by "
                      f"`mmdata {kind}` (a rerun replaces its own command's output only){force_line}")


def _card(out: str | Path, storage_options: dict[str, Any] | None) -> dict[str, Any] | None:
    """``out``'s card, or None: no card there, or one that does not read."""
    from mmdata.errors import MMDataError
    from mmdata.shards import index as idx
    from mmdata.urls import is_remote

    try:
        if not is_remote(out) and not (Path(out) / idx.CARD).is_file():
            return None
        if is_remote(out) and not idx.is_dataset(out, storage_options):
            return None
        card = idx.load_card(out, storage_options, shard_lists=False)
    except (MMDataError, OSError, ValueError):  # the job's own checks (lock, write check) say what is wrong
        return None
    return card if isinstance(card, dict) else None


def _augmented_from(src: Any, storage_options: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``augmentation.augmented_from`` entry of the card of the dataset folder ``src``, or None. Shard
    files given as SRC (a list, ``aug/*.tar``, ``aug/train-{000..003}.tar``) are read through the folder that
    holds them all (QA35 review: ``augment aug2/*.tar aug`` replaced aug2's origin where ``augment aug2 aug``
    was refused); a Hugging Face dataset has no card."""
    folder = _shards_folder(src)
    if folder is None:
        return None
    card = _card(folder, storage_options)
    entry = ((card or {}).get("augmentation") or {}).get("augmented_from")
    return entry if isinstance(entry, dict) else None


def _shards_folder(src: Any) -> str | Path | None:
    """The folder ``src`` names: itself, or the one folder holding every shard file it lists (a path or
    pattern of shards, or a list of them); None for anything else (a Hugging Face dataset, shards of
    several folders)."""
    if isinstance(src, (list, tuple)):
        parents = {_shards_folder(x) for x in src}
        return parents.pop() if len(parents) == 1 else None
    if not isinstance(src, (str, Path)):
        return None
    text = str(src).rstrip("/")
    if text.endswith((".tar", ".tar.gz", ".tgz")) or any(c in text for c in "{}*?["):
        parent = text.rsplit("/", 1)[0] if "/" in text else "."
        return None if any(c in parent for c in "{}*?[") else parent
    return src


def _same_folder(out: Any, src: Any) -> bool:
    from mmdata.urls import is_remote

    if not isinstance(src, (str, Path)) or is_remote(src) or is_remote(out):
        return False
    try:
        return os.path.samefile(out, src)
    except OSError:
        return False


def _samples(card: dict[str, Any]) -> str:
    n = (card.get("counts") or {}).get("samples") if isinstance(card.get("counts"), dict) else None
    return f"{n} sample{'s' if n != 1 else ''}" if isinstance(n, int) else "samples not counted"


def _command(command: str) -> str:
    """A card's command as shown in one line (a card is untrusted: no control characters, at most 120)."""
    from mmdata.shards.sources import printable

    text = printable(" ".join(command.split()))
    return text if len(text) <= 120 else text[:117] + "..."


def _shown(path: Any) -> str:
    from mmdata.urls import is_remote, redact

    return redact(str(path)) if is_remote(path) else str(path)
