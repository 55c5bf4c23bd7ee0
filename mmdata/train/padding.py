"""The loaders' padding warnings, said once per training run, naming the splits they concern.

:func:`mmdata.loader` warns once per loader when a batch is mostly zero padding: clips much shorter
than the batch's length (the normalize stage's ``pad_trim``), or images of several sizes padded to the
largest. A training run reads every split with a loader of its own (and pre-training with one more),
so the same warning came up to four times. :func:`said_once` collects them while the run reads its
splits — :func:`reading` says which split a loader is reading for — and says each kind once when
the run ends: the splits it concerns (``train (1, 2)`` for folds), each with its loader's numbers,
then the remedy once. An ablation keeps each run's (:func:`kept`) for its report instead.

Example:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with said_once():
    ...         for split in ("train", "val"):
    ...             with reading(split):
    ...                 warnings.warn(f"mmdata.loader: split {split!r}: a batch holds clips of 0.30 to 1.00 s, "
    ...                               "zero-padded to 1.00 s: most of it; for less padding trim; said once per loader",
    ...                               PaddingWarning)
    >>> len(caught), str(caught[0].message).split(" (each")[0]
    (1, 'mmdata.train: zero padding in the batches of the train and val splits')
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from mmdata.augment.loader import PaddingWarning

#: the words of the loader's padding warnings (:class:`~mmdata.augment.loader.PaddingWarning`; a message of
#: that category they do not match is shown as the loader wrote it)
LOADER_PADDING = re.compile(r"mmdata\.loader: (?:split (?P<split>'[^']*'|\[[^\]]*\]): )?"
                            r"(?P<detail>a batch holds (?P<kind>images|clips) .*)", re.S)
#: how the loader's message ends: said once here instead
LOADER_TAIL = "; said once per loader"

ROLES = ("train", "val", "test")
_ROLE: ContextVar[str | None] = ContextVar("mmdata_train_reading", default=None)


@contextmanager
def reading(role: str) -> Iterator[None]:
    """The loaders iterated in this block read for ``role`` (train, val or test): their padding
    warnings are that split's."""
    token = _ROLE.set(role)
    try:
        yield
    finally:
        _ROLE.reset(token)


class PaddingNotes:
    """The padding warnings of one run, by kind (``clips`` / ``images``) and split, first one each."""

    def __init__(self, roles: Mapping[str, Sequence[str]] | None = None) -> None:
        #: which splits play train / val / test (:func:`mmdata.train.config.split_roles`), for the names
        self.roles = roles
        self.seen: dict[str, dict[str, str]] = {}
        #: the training recipe's ops that change the clips' lengths on the device, after the train loader
        #: measured its batches (``random_crop``, ``speed``...): its numbers are then not what the model gets
        self.reshaped: tuple[str, ...] = ()

    def take(self) -> list[str]:
        """:meth:`messages` so far, which the run records in its result (``metrics.json["warnings"]``, as the
        other warnings of a run: QA round 34, analyst D2); they are then not said again when the block ends.

        Example:
            >>> n = PaddingNotes()
            >>> with reading("val"):
            ...     n.note("mmdata.loader: split 'val': a batch holds clips of 0.30 to 1.00 s, zero-padded to 1.00 s")
            True
            >>> n.take()[0].split(" (each")[0], n.take()
            ('mmdata.train: zero padding in the batches of the val split', [])
        """
        out = self.messages()
        self.seen.clear()
        return out

    def note(self, message: str) -> bool:
        """Keep ``message`` when it is a loader's padding warning (True), else False."""
        m = LOADER_PADDING.match(message)
        if m is None:
            return False
        split = _ROLE.get() or m["split"] or "another"
        self.seen.setdefault(m["kind"], {}).setdefault(split, m["detail"].removesuffix(LOADER_TAIL))
        return True

    def messages(self) -> list[str]:
        """One warning per kind seen: its splits, each one's numbers, the remedy once."""
        out = []
        for by_split in self.seen.values():
            # train, val, test (the order val's loader, read before the first epoch, found it in does not matter)
            order = sorted(by_split, key=lambda s: ROLES.index(s) if s in ROLES else len(ROLES))
            names = [self._name(s) for s in order]
            details, remedy = [], ""
            for split, name, text in zip(order, names, (by_split[s] for s in order)):
                detail, _, remedy = text.partition("; ")  # the numbers; what to do, the same for every split
                if split == "train" and self.reshaped and detail.startswith("a batch holds clips"):
                    # the train loader measures its batches before the recipe's device ops (QA round 34, avspeech 11)
                    ops = ", ".join(self.reshaped)
                    detail = (f"{detail} (as the loader collated them, before the recipe's {ops}, which change"
                              f"{'s' * (len(self.reshaped) == 1)} the clips' lengths on the training device: the model "
                              f"gets the clips {ops} made{', while val and test are scored on whole clips' * ('random_crop' in self.reshaped)})")
                details.append(f"{name}: {detail}")
            shown = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            out.append(f"mmdata.train: zero padding in the batches of the {shown} split{'s' * (len(names) > 1)} (each "
                       "split's loader found it; said once per run): " + "; ".join(details)
                       + (f"; {remedy}" if remedy else ""))
        return out

    def _name(self, split: str) -> str:
        names = list((self.roles or {}).get(split) or ())
        return f"{split} ({', '.join(names)})" if names and names != [split] else split


def _shown_as_usual() -> bool:
    """Whether the warning filters in force show a loader's PaddingWarning (not "ignore", not "error")."""
    with warnings.catch_warnings(record=True) as seen:
        try:  # a fresh registry: "default" / "once" show it
            warnings.warn_explicit("mmdata.loader: a batch holds images of 2 sizes", PaddingWarning, "loader.py", 1,
                                   module="mmdata.augment.loader", registry={})
        except PaddingWarning:
            return False
    return bool(seen)


@contextmanager
def said_once(roles: Mapping[str, Sequence[str]] | None = None) -> Iterator[PaddingNotes]:
    """Collect the loaders' padding warnings in the block and say each kind once when it ends, raised or
    not (a run stopped half-way still says what it saw), as a :class:`PaddingWarning`; other warnings pass
    as they would. Where the filters ignore PaddingWarning or make it an error, the loaders' warnings
    are left to them. The notes' ``roles`` can be set once known (after setup)."""
    notes = PaddingNotes(roles)
    if not _shown_as_usual():
        yield notes
        return
    try:
        with warnings.catch_warnings():  # filters and showwarning as they were, when the block ends
            # each loader says it once: let every one reach the hook (the registry would hide a repeat)
            warnings.filterwarnings("always", category=PaddingWarning)
            shown = warnings.showwarning

            def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                     line: str | None = None) -> None:
                if not (issubclass(category, PaddingWarning) and notes.note(str(message))):
                    shown(message, category, filename, lineno, file, line)

            warnings.showwarning = show
            yield notes
    finally:
        for msg in notes.messages():
            warnings.warn(msg, PaddingWarning, stacklevel=3)


@contextmanager
def kept() -> Iterator[list[str]]:
    """Keep the :class:`PaddingWarning` said in the block, in order and each text once, in the list it
    yields instead of showing them; other warnings pass as they would. An ablation's run
    (:func:`mmdata.ablate.executor.run_task`) puts them in its ``warnings``, which the report counts over
    the runs, instead of printing one per run. Where the filters ignore PaddingWarning or make it an error,
    they are left to them (nothing is kept).

    Example:
        >>> with kept() as said:
        ...     for _ in range(2):
        ...         warnings.warn("mmdata.train: zero padding in the batches of the train split", PaddingWarning)
        >>> said
        ['mmdata.train: zero padding in the batches of the train split']
    """
    said: list[str] = []
    if not _shown_as_usual():
        yield said
        return
    with warnings.catch_warnings():  # filters and showwarning as they were, when the block ends
        # every run says it: let each one reach the hook (the registry would hide a later run's)
        warnings.filterwarnings("always", category=PaddingWarning)
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                 line: str | None = None) -> None:
            if not issubclass(category, PaddingWarning):
                shown(message, category, filename, lineno, file, line)
            elif str(message) not in said:
                said.append(str(message))

        warnings.showwarning = show
        yield said
