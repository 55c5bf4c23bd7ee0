"""What the trainer feeds the model, derived from the dataset's own statistics.

A dataset mmdata can shard may hold images of many sizes and modes, audio at several rates and
channel counts, captions of any length. :func:`derive_inputs` reads ``index.parquet`` (per-sample
``image_height`` / ``image_width`` / ``audio_seconds`` / ``audio_sample_rate`` / ``text_chars``, and
``image_channels`` / ``image_mode`` / ``audio_channels`` where the writer recorded them) for the
training split and settles one input format (every split is brought to it, see below):

* ``image_size`` (H, W): the native size when every training image has it and its shorter side is at
  most :data:`MAX_IMAGE_SIDE`; otherwise a square of the median shorter side (a multiple of 8, in
  [16, :data:`MAX_IMAGE_SIDE`]) reached by resizing the shorter side and centre-cropping.
* ``channels``: 1 when every training image is greyscale, else 3 (RGBA / palette images become RGB).
* ``sample_rate``: the most common training rate (ties: the higher — a lower rate low-passes the
  clips recorded above it); audio is mixed down to mono.
* ``max_seconds``: the 95th percentile of training clip durations (rounded up to 10 ms), at most
  :data:`MAX_AUDIO_SECONDS`; clips are zero-padded or trimmed (from the start) to it. Longer clips are
  trimmed (with a margin for the resampling filter) before they are resampled, so the cost of the
  stage follows ``max_seconds``, not the clip's length.
* ``max_tokens``: the 95th percentile of caption lengths in characters (an upper bound on tokens for
  both the word and the CJK character units of :mod:`mmdata.text`), capped at the tokenizer's length.

Any of them can be given instead (``train(..., image_size=64)``); :meth:`InputSpec.describe` says for
each where it came from, and the trainer prints it at start. :func:`normalize_section` turns the spec
into the deterministic ``normalize:`` recipe stage applied to every split (train included, before the
recipe's random ops), leaving out the steps the statistics of *every* split the run reads (train, val,
test) prove to be no-ops: val audio at another rate than train's is resampled to train's rate, a
stereo clip only in test is mixed down, a val image of another size or mode is converted, even when
the training split alone needs none of it (``needs`` records the steps kept). A recipe's own
``normalize`` list wins per modality (:func:`with_normalize`); :func:`effective_inputs` then says what
the model gets from the stage that runs, which is what the trainer prints and records.

:func:`choose_modalities` settles the modalities: by default those that samples of the training split
have (a modality some samples lack stays — missing modalities are data, with presence masks); a
requested modality that no training sample has is an error.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmdata.checks import plural
from mmdata.errors import MMDataError
from mmdata.urls import lookup

MODALITIES = ("image", "audio", "text")
MAX_IMAGE_SIDE = 128  # a CPU reference trainer: larger inputs cost time, not accuracy, on small data
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
PEEK = 64  # decoded training images looked at when the index has no channel column
#: the longest derived audio input, in seconds: the 95th percentile of hour-long recordings at 48 kHz
#: asked for 690 MB a clip and the trainer ran out of memory; give max_seconds (--max-seconds) for more
MAX_AUDIO_SECONDS = 30.0
#: what a clip keeps beyond ``max_seconds`` when the normalize stage trims it before resampling: the
#: resampler's filter reaches at most one reduced input period (<= 1 s) plus 32 / (0.945 x the lower
#: rate) (<= 34 ms at the 1 kHz minimum) past an output, so the kept outputs are bit-identical to
#: resampling the whole clip (tests/train/test_long_audio.py checks rate pairs from 1 to 384 kHz)
RESAMPLE_MARGIN_SECONDS = 1.1


@dataclass(frozen=True)
class InputSpec:
    """The model's input format (see the module docstring for how each default is derived).

    Example:
        >>> s = InputSpec(image_size=(16, 16), channels=1, sample_rate=8000, max_seconds=0.8, max_tokens=33)
        >>> s.image_size, s.channels
        ((16, 16), 1)
    """

    image_size: tuple[int, int] | None = None
    channels: int | None = 1
    sample_rate: int | None = None
    max_seconds: float | None = None
    max_tokens: int | None = None
    #: where each value came from ("given", or the statistic it was derived from)
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    #: which normalisation steps the training statistics show to be needed
    needs: dict[str, bool] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = list(self.image_size) if self.image_size else None
        return d

    def describe(self) -> str:
        """One line per modality, for the start of a run."""
        src = self.sources
        rows = []
        # a value left as None with a source: a recipe's normalize keeps it mixed (the source says how)
        if self.image_size or "image_size" in src:
            size = "x".join(map(str, self.image_size)) if self.image_size else "mixed"
            chans = f"{self.channels} channel{'s' * (self.channels > 1)}" if self.channels else "channels mixed"
            rows += [("image", size, src.get("image_size", "")), ("", chans, src.get("channels", ""))]
        if self.sample_rate or "sample_rate" in src:
            rows += [("audio", f"{self.sample_rate} Hz mono" if self.sample_rate else "rates mixed", src.get("sample_rate", "")),
                     ("", f"{self.max_seconds:g} s" if self.max_seconds else "lengths mixed", src.get("max_seconds", ""))]
        if self.max_tokens:
            rows.append(("text", f"{self.max_tokens} tokens", src.get("max_tokens", "")))
        lines = [f"{m:<6} {v:<13} {why}" for m, v, why in rows]
        return "\n".join(lines)


class IndexStats:
    """The columns of ``index.parquet`` the trainer reads, loaded once as numpy arrays (numeric columns
    as float64 with NaN for null; missing columns are ``None``), so a 50k-sample index costs a few MB.
    ``roles`` (:func:`split_roles`): split names by role, e.g. ``{"train": ["1", "2", "3"], "val":
    ["4"], "test": ["5"]}``; its rows are then looked up by role (``rows("train")``: folds 1-3).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
        >>> len(IndexStats(t + "/ds").rows("train"))
        6
    """

    NUMERIC = ("label", "image_height", "image_width", "image_channels", "audio_seconds", "audio_sample_rate",
               "audio_channels", "text_chars")

    def __init__(self, data: str | Path, roles: Mapping[str, Sequence[str]] | None = None) -> None:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from mmdata.shards.index import INDEX, load_index

        self.data = data
        path = Path(data) / INDEX
        if not path.is_file():
            load_index(data)  # raises the reader's error for a missing index
        names = set(pq.read_schema(path).names)
        wanted = [c for c in ("split", "modalities", "image_mode", *self.NUMERIC) if c in names]
        table = pq.read_table(path, columns=wanted)
        # masks computed in Arrow: no Python object per row
        split = table.column("split").dictionary_encode().combine_chunks()
        codes = split.indices.to_numpy(zero_copy_only=False)
        self._splits = {str(v): codes == i for i, v in enumerate(split.dictionary.to_pylist())}
        if roles is not None:  # folds as splits: each role (train / val / test) is the union of its splits
            none = np.zeros(len(codes), dtype=bool)
            self._splits = {role: np.logical_or.reduce([self._splits.get(n, none) for n in names] or [none])
                            for role, names in roles.items()}
        mods = table.column("modalities").combine_chunks()
        parent = pc.list_parent_indices(mods).to_numpy()
        flat = pc.list_flatten(mods)
        self.has = {m: np.bincount(parent[pc.equal(flat, m).to_numpy(zero_copy_only=False)], minlength=len(table)) > 0
                    for m in ("image", "audio", "text")}
        self.col: dict[str, np.ndarray | None] = {n: None for n in ("image_mode", *self.NUMERIC)}
        for n in self.NUMERIC:
            if n in names:
                self.col[n] = table.column(n).to_numpy(zero_copy_only=False).astype(np.float64)
        if "image_mode" in names:
            self.col["image_mode"] = np.asarray(table.column("image_mode").to_pylist(), dtype=object)

    def rows(self, split: str, modality: str | None = None) -> np.ndarray:
        """Row numbers of ``split`` (that hold ``modality``, when given)."""
        mask = self._splits.get(split)
        if mask is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(mask & self.has[modality] if modality else mask)

    def rows_in(self, splits: Sequence[str], modality: str | None = None) -> np.ndarray:
        """Row numbers of every split in ``splits`` (that hold ``modality``, when given), in index order."""
        parts = [self.rows(s, modality) for s in dict.fromkeys(splits)]
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def known_at(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Bool mask over ``rows``: column ``name`` has a value there."""
        c = self.col[name]
        if c is None:
            return np.zeros(len(rows), bool)
        v = c[rows]
        return ~np.isnan(v) if v.dtype.kind == "f" else np.fromiter((x is not None for x in v), bool, len(v))

    def values(self, name: str, rows: np.ndarray) -> list[Any]:
        """Non-null values of column ``name`` at ``rows`` (empty when the column is missing)."""
        c = self.col[name]
        return [] if c is None else c[rows][self.known_at(name, rows)].tolist()

    def known(self, name: str, rows: np.ndarray) -> bool:
        """Column ``name`` exists and has a value at every row."""
        return self.col[name] is not None and bool(self.known_at(name, rows).all())

    def labels(self, split: str) -> dict[str, int]:
        """``{"samples", "labelled", "unlabelled"}`` of a split."""
        rows = self.rows(split)
        lab = int(self.known_at("label", rows).sum())
        return {"samples": len(rows), "labelled": lab, "unlabelled": len(rows) - lab}

    def class_counts(self, split: str, classes: int) -> np.ndarray:
        """Labelled samples of ``split`` per class id ``0..classes-1`` (labels outside the range not counted)."""
        lab = self.col["label"]
        if lab is None:
            return np.zeros(classes, dtype=np.int64)
        v = lab[self.rows(split)]
        v = v[~np.isnan(v) & (v >= 0) & (v < classes)].astype(np.int64)
        return np.bincount(v, minlength=classes)[:classes]

    def check_labels(self, classes: int) -> None:
        """Raise naming the samples whose label is outside ``0..classes-1``."""
        lab = self.col["label"]
        if lab is None:
            return
        bad = np.flatnonzero(~np.isnan(lab) & ((lab < 0) | (lab >= classes)))
        if len(bad):
            import pyarrow.parquet as pq

            from mmdata.shards.index import INDEX

            ids = pq.read_table(Path(self.data) / INDEX, columns=["key", "source_key"]).take(bad[:5]).to_pylist()
            shown = ", ".join(f"{r['key']} (source {r['source_key']!r}): {int(lab[i])}" for r, i in zip(ids, bad))
            raise MMDataError(f"{self.data}: {len(bad)} sample(s) have a label outside the card's {classes} classes "
                              f"0..{classes - 1}: {shown}; fix the label files or the card's num_classes / label_names")


def _p95(values: Sequence[float]) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, math.ceil(0.95 * len(v)) - 1)]


def _image_size(hw: list[tuple[int, int]], given: int | Sequence[int] | None) -> tuple[tuple[int, int], str, bool]:
    sizes = Counter(hw)
    if given is not None:
        size = (int(given), int(given)) if isinstance(given, int) else (int(given[0]), int(given[1]))
        return size, "given", set(sizes) != {size}
    if len(sizes) == 1 and min(hw[0]) <= MAX_IMAGE_SIDE:
        return hw[0], f"every training image is {hw[0][0]}x{hw[0][1]}", False
    shorter = sorted(min(h, w) for h, w in hw)
    med = shorter[len(shorter) // 2]
    side = max(16, min(MAX_IMAGE_SIDE, 8 * round(med / 8)))
    lo, hi = min(hw, key=lambda s: s[0] * s[1]), max(hw, key=lambda s: s[0] * s[1])
    return (side, side), (f"{len(sizes)} training sizes {lo[0]}x{lo[1]}..{hi[0]}x{hi[1]}, median shorter side {med}: "
                          "resize + centre crop"), True


def _span(lo: float, hi: float) -> str:
    """Clip durations as the trainer says them: rounded to the hundredth (as the loader's padding
    warning), trailing zeros dropped — ``_span(0.610023, 3.790068)`` is ``'0.61..3.79 s'``, ``_span(1.2,
    1.5)`` ``'1.2..1.5 s'``."""
    return f"{round(float(lo), 2):g}..{round(float(hi), 2):g} s"


def option_name(key: str) -> str:
    """How a training option is named in messages from the library and ``mmdata train``: ``lr (--lr)``."""
    return f"{key} (--{key.replace('_', '-')})"


OPTIMIZERS = ("adamw", "sgd")
INPUT_OPTIONS = ("image_size", "channels", "sample_rate", "max_seconds", "max_tokens")


#: what a training run writes in its ``out`` (:data:`mmdata.train.outputs.OUTPUT_FILES` and the
#: pre-training's checkpoint): a folder holding one of them (or a temp file of one) is an earlier run's output
RUN_OUTPUTS = ("metrics.json", "predictions.parquet", "model.pt", "contrastive.pt")
#: what makes a folder a dataset (``mmdata shard``'s card and index, its shards)
DATASET_FILES = ("dataset.json", "index.parquet")


def dataset_around(out: str | Path) -> Path | None:
    """The nearest folder above ``out`` that is a dataset folder (it holds ``dataset.json`` or
    ``index.parquet``), up to the filesystem root; None when there is none. ``out`` itself is not looked
    at (:func:`check_out_folder` does). The folder is named as ``out`` names it where it can be (``ds`` for
    ``ds/runs``), else absolute (the working folder inside a dataset folder, a link leading into one).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "dataset.json").write_text("{}")
        >>> dataset_around(d / "runs" / "a") == d, dataset_around(d)
        (True, None)
    """
    p = Path(out)
    given = {os.path.abspath(q): q for q in p.parents  # how the user spelled each ancestor (ds, not /home/me/ds)
             if q.name not in ("", ".", "..") and ".." not in q.parts}  # not '.': it names no folder in a message
    absolute = Path(os.path.abspath(p))
    try:
        real = Path(os.path.realpath(p))  # a link or .. leading into a dataset folder
    except (OSError, ValueError):
        real = absolute
    for chain in (absolute.parents, real.parents):
        for a in chain:
            if any(os.path.lexists(a / n) for n in DATASET_FILES):
                return given.get(str(a), a)
    return None


def inside_dataset(out: str | Path, option: str, writes: str, shown: str | None = None) -> MMDataError | None:
    """The error for an output folder inside a dataset folder (:func:`dataset_around`), None when it is not:
    ``{option} {out}: inside the dataset folder DS (it holds dataset.json); {writes}: give a folder outside
    it, e.g. runs/DS`` — the refusal of ``mmdata train`` and ``mmdata ablate`` (``writes``: what they would
    put there; ``shown``: how the message names ``out``, default as given)."""
    around = dataset_around(out)
    if around is None:
        return None
    held = next(n for n in DATASET_FILES if os.path.lexists(around / n))
    return MMDataError(f"{option} {shown or out}: inside the dataset folder {around} (it holds {held}); {writes}: give a "
                       f"folder outside it, e.g. {around.parent / 'runs' / around.name}")


def dataset_file(names: Sequence[str] | None) -> str | None:
    """The file that makes a folder holding ``names`` a dataset folder (``dataset.json``, ``index.parquet``, else
    its first shard ``SPLIT-000000.tar`` as ``mmdata shard`` names them: not any tar a user keeps there), or None.

    Example:
        >>> dataset_file(["train-000000.tar", "notes.txt"]), dataset_file(["clip.tar"]), dataset_file(None)
        ('train-000000.tar', None, None)
    """
    shards = re.compile(r".+-\d{6}\.tar")
    found = ([n for n in DATASET_FILES if n in names] or sorted(filter(shards.fullmatch, names))[:1]) if names else []
    return found[0] if found else None


def check_out_folder(out: str | Path, option: str = "out (--out)") -> None:
    """Refuse an output folder a run would write its files among others' files: a dataset folder
    (``dataset.json``, ``index.parquet`` or shards ``SPLIT-000000.tar``) or a folder inside one
    (:func:`dataset_around`: the run's files would sit among the dataset's own and travel with it), or a folder that is not empty and holds no
    earlier run's output (:data:`RUN_OUTPUTS`: a rerun into the same ``out`` replaces them, as before).
    A folder that does not exist yet, or is empty (hidden files such as ``.DS_Store`` aside), is fine.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); check_out_folder(d)  # empty: fine
        >>> _ = (d / "notes.txt").write_text("mine")
        >>> try:
        ...     check_out_folder(d)
        ... except MMDataError as exc:
        ...     print(str(exc).split(": ", 1)[1].split(" (")[0])
        not empty and not an earlier run's output
    """
    p = Path(out)
    lookup(p, option)  # too long, a link loop: one error naming it, not the scan's or resolve()'s traceback
    try:
        names: list[str] | None = [e.name for e in os.scandir(p)]
    except (FileNotFoundError, NotADirectoryError):
        names = None  # created by the run; a file there is outputs.check_out's to refuse
    dataset = dataset_file(names)
    if dataset is not None:
        raise MMDataError(f"{option} {p}: a dataset folder (it holds {dataset}); the run would write metrics.json, "
                          "predictions.parquet and model.pt among its files: give another folder, e.g. runs/NAME")
    inside = inside_dataset(p, option, "the run would write metrics.json, predictions.parquet and model.pt among its "
                                       "files")
    if inside is not None:
        raise inside
    if names is None:
        return
    from mmdata.io import TEMP_NAME as temp  # a killed run's temp files (mmdata.io.make_temp)

    ours = [n for n in names if n in RUN_OUTPUTS or ((m := temp.fullmatch(n)) is not None and m["name"] in RUN_OUTPUTS)]
    if any(not n.startswith(".") for n in names) and not ours:  # hidden files alone (.DS_Store) leave it empty
        raise MMDataError(f"{option} {p}: not empty and not an earlier run's output (no "
                          f"{', '.join(RUN_OUTPUTS[:-1])} or {RUN_OUTPUTS[-1]}); give a new or empty folder, or the "
                          "--out of an earlier run to replace its files")


def check_options(name: Callable[[str], str] = option_name, **options: Any) -> None:
    """Raise naming the option when a training option's value cannot work (before any data is read).

    Checks the options given (``fusion``, ``epochs``, ``batch_size``, ``lr``, ``weight_decay``,
    ``optimizer``, ``modalities``, ``device``, ``eval_robustness``, ``label_noise``, ``on_error``, ``target`` and the input
    options ``image_size``, ``channels``, ``sample_rate``, ``max_seconds``, ``max_tokens``; ``None``
    means "not given" for those); ``name`` turns a
    key into the place the value came from — ``lr (--lr)`` by default, ``trainer.lr`` for an
    ablation recipe.

    Example:
        >>> check_options(lr=float("nan"))
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: lr (--lr): expected a finite number > 0, got nan
        >>> check_options(name=lambda k: f"trainer.{k}", fusion="concatt")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mmdata.errors.MMDataError: trainer.fusion: 'concatt' is not one of ['early', 'concat', ...]
    """
    def number(v: Any) -> bool:
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)

    def fail(key: str, expected: str, value: Any) -> MMDataError:
        hint = ""
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                pass
            else:  # PyYAML reads 1e-3 (no decimal point) as a string
                low = value.strip().lower()
                hint = (f" (YAML reads {value} as text; write {low.replace('e', '.0e', 1)})" if "e" in low and "." not in low
                        else " (a number, not quoted text)")
        return MMDataError(f"{name(key)}: expected {expected}, got {value!r}{hint}")

    def one_of(key: str, value: Any, allowed: Sequence[str]) -> None:
        if value not in allowed:
            raise MMDataError(f"{name(key)}: {value!r} is not one of {list(allowed)}")

    for key, value in options.items():
        if value is None and key in INPUT_OPTIONS:
            continue
        if key == "fusion":
            from mmdata.train.fusions import FUSIONS, fusion_class

            if not (isinstance(value, str) and fusion_class(value) is not None):  # an installed plugin's too
                one_of(key, value, list(FUSIONS))
        elif key in ("epochs", "batch_size"):
            if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
                raise fail(key, "an integer >= 1", value)
        elif key == "lr":
            if not (number(value) and value > 0):
                raise fail(key, "a finite number > 0", value)
        elif key == "weight_decay":
            if not (number(value) and value >= 0):
                raise fail(key, "a finite number >= 0", value)
        elif key == "label_noise":
            if not (number(value) and 0 <= value <= 1):
                raise fail(key, "a fraction in [0, 1]", value)
        elif key == "optimizer":
            one_of(key, value, OPTIMIZERS)
        elif key == "modalities":
            if value is None:
                continue
            if isinstance(value, str) or not isinstance(value, Sequence) or not value:
                raise fail(key, f"a list of modalities from {list(MODALITIES)} (or null: those the training split has)", value)
            for m in value:
                if m not in MODALITIES:  # a stored field (.npy arrays, ...): the built-in encoders do not read it (QA38 C #12)
                    raise MMDataError(f"{name(key)}: {m!r} is not one of {list(MODALITIES)}: the built-in trainer reads "
                                      f"those modalities only; a stored field such as a .npy array field needs your own "
                                      f"model: see docs/ablation.md \"Your own trainer\" (mmdata.loader gives its "
                                      f"batches)")
            if len(set(value)) != len(value):
                raise fail(key, "each modality once", value)
        elif key == "eval_robustness":
            if not isinstance(value, bool):
                raise fail(key, "true or false", value)
        elif key == "image_size":
            sides = [value] if isinstance(value, (int, np.integer)) else list(value) if isinstance(value, Sequence) else [value]
            if isinstance(value, str) or len(sides) not in (1, 2) or not all(number(v) and int(v) == v >= 1 for v in sides):
                raise fail(key, "N or HxW with every side >= 1", value)
        elif key == "channels":
            if value not in (1, 3):
                raise fail(key, "1 (greyscale) or 3 (RGB)", value)
        elif key in ("sample_rate", "max_tokens"):
            if not (number(value) and int(value) == value and value >= 1):
                raise fail(key, "a whole number of Hz >= 1" if key == "sample_rate" else "a whole number >= 1", value)
        elif key == "max_seconds":
            if not (number(value) and value > 0):
                raise fail(key, "a duration > 0 s", value)
        elif key == "on_error":
            one_of(key, value, ON_ERROR)
        elif key == "target":  # which key the samples' metadata holds is checked against the data (targets.resolve)
            if not (value is None or isinstance(value, str) and value.strip() == value and value):
                raise fail(key, "a metadata key (a --meta column of the manifest; null: the class label)", value)
        elif key in SPLIT_OPTIONS:  # the names are checked against the dataset's (split_roles)
            many = key == "train_split" and isinstance(value, Sequence) and not isinstance(value, str) and all(
                isinstance(v, (str, int)) and not isinstance(v, bool) for v in value)
            if not (value is None or many or isinstance(value, (str, int)) and not isinstance(value, bool)):
                raise fail(key, "split names A,B,C or a list" if key == "train_split" else "one split name", value)
        elif key == "device":
            import torch

            try:
                torch.device(value)
            except (RuntimeError, TypeError):
                raise MMDataError(f"{name(key)}: {value!r} is not a torch device; use cpu, cuda or cuda:N") from None
        else:
            raise TypeError(f"check_options: unknown option {key!r}")


def check_dataset(data: str | Path, modalities: Sequence[str] | None = None, *, where: str = "data",
                  modalities_key: str = "--modalities (modalities=)", splits: Mapping[str, Any] | None = None,
                  name: Callable[[str], str] = option_name, target: str | None = None,
                  metric: str | None = None, recipes: Mapping[str, Any] | None = None) -> Any:
    """Raise when the trainer cannot train on the dataset at ``data``: no classes, a missing train / val /
    test split, no labelled train or val sample, a requested modality no training sample has, or (``recipes``:
    name -> recipe, an ablation's arms) a recipe whose own ``normalize`` list leaves channel counts a batch
    cannot stack (:func:`channel_mix`; that message names the arm, not ``where``). The
    message starts with ``where`` (the argument or recipe key the folder came from). ``splits``:
    ``train_split`` / ``val_split`` / ``test_split`` (:func:`split_roles`), named by ``name``.
    ``target``: a metadata key predicted instead of the class label (:mod:`mmdata.train.targets`):
    its values are read and checked instead of the classes, and its
    :class:`~mmdata.train.targets.Target` is returned (None without one). ``metric``: a score the caller
    needs (an ablation's primary metric, ``test.accuracy``): the split of its role (``test`` / ``val``)
    must have a labelled sample too (``mmdata train`` only warns: its other scores stand; every run of
    an ablation would end with no value)."""
    from mmdata.shards.index import load_card

    try:
        card = load_card(data)
        roles = split_roles(data, card, **(splits or {}), name=name)
        classes_of(data, card, roles=roles, target=target is not None)
        st = IndexStats(data, roles)
        choose_modalities(st, modalities, card, option=modalities_key)
        counts, settled = None, None
        scored = metric.split(".", 1)[0] if metric else None
        needed = ("train", "val", *(("test",) if scored == "test" else ()))
        if target is not None:
            from mmdata.train.targets import resolve

            given = f"--target {target}" if name is option_name else name("target")  # an ablation's trainer.target
            try:
                settled, counts, _ = resolve(str(data), target, {s: role_splits(roles, s) for s in needed}, option=given)
            except MMDataError as exc:
                raise misspelt_target(data, target, card, name("target")) or exc from None
        for s in needed:
            n = st.labels(s) if counts is None else counts[s]
            if n["labelled"] == 0 and s == scored:
                named = (roles or {}).get(s) or [s]
                what = f"the metadata key {target!r}" if target is not None else "a label"
                raise MMDataError(f"{data}: the {s} split ({', '.join(map(str, named))}) supplies the primary metric "
                                  f"{metric!r}, but none of its {n['samples']} samples has {what}: every run would "
                                  f"score it as no value; label the {s} split, or choose another split "
                                  f"({name(f'{s}_split')})")
            if n["labelled"] == 0:
                raise MMDataError(f"{data}: the {s} split has no labelled samples ({n['samples']} samples); "
                                  "training and model selection need labels")
    except MMDataError as exc:
        msg = str(exc)
        own = msg.startswith(modalities_key) or any(msg.startswith(name(k)) for k in (*SPLIT_OPTIONS, "target"))
        raise type(exc)(msg if own else f"{where}: {msg}") from None
    used = choose_modalities(st, modalities, card, option=modalities_key)[0]
    refused = {arm: why for arm, recipe in (recipes or {}).items() if (why := _refusal(recipe, st, used))}
    if refused:  # the first arm's reason, with the other arms the same fix applies to (the section named first)
        arm, why = next(iter(refused.items()))
        same = [a for a, w in refused.items() if a != arm and w.split(" ", 1)[0] == why.split(" ", 1)[0]]
        names = ", ".join(map(repr, same[:5])) + (", ..." if len(same) > 5 else "")
        also = f" (and the recipe{'s' * (len(same) > 1)} of {plural(len(same), 'other arm')}: {names})" if same else ""
        raise MMDataError(f"arm {arm!r}: its recipe's {why}{also}")
    return settled


def _refusal(recipe: Any, st: IndexStats, modalities: Sequence[str]) -> str | None:
    """Why :func:`check_recipe_channels` refuses ``recipe`` (its message, which starts with the
    ``normalize.<modality>`` section it names), or None."""
    try:
        check_recipe_channels(recipe, st, modalities)
    except MMDataError as exc:
        return str(exc)
    return None


def class_warnings(st: IndexStats, names: Sequence[str]) -> list[str]:
    """Warnings for the classes without labelled training samples (the model cannot predict them, so
    test accuracy cannot reach 1) and, when val has labelled samples, for the trained classes without
    any in val (val scores and the best-epoch choice do not see them), and when test has labelled samples,
    for the trained classes without any in test (their test scores are null); counts from ``index.parquet``.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
        >>> class_warnings(IndexStats(t + "/ds"), ["a", "b", "c", "zebra"])
        ["class 'zebra' (id 3) has no training samples (val 0, test 0): the model cannot predict it"]
    """
    counts = {s: st.class_counts(s, len(names)) for s in ("train", "val", "test")}
    has_val, has_test = bool(counts["val"].sum()), bool(counts["test"].sum())
    out, no_train, no_val, no_test = [], [], [], []
    at = 0  # where the first class without val samples is in the class order: its line goes there
    for c, name in enumerate(names):
        val, test = int(counts["val"][c]), int(counts["test"][c])
        if counts["train"][c] == 0:
            no_train.append((name, c, val, test))
            continue
        if val == 0 and has_val:
            at = at if no_val else len(no_train)
            no_val.append((name, c, int(counts["train"][c]), test))
        if test == 0 and has_test:
            no_test.append((name, c, int(counts["train"][c]), val))
    out = [no_train_warning(no_train)] if no_train else []
    if no_val:
        out.insert(min(at, len(out)), no_val_warning(no_val))
    if no_test:
        out.append(no_test_warning(no_test))
    return out + class_name_warnings(names)


#: the separators of a hierarchy path in class names (``Home > Kitchen > Knives``, ``animals/dogs/terrier``)
PATH_SEPARATORS = (" > ", ">", " / ", "/")


def class_name_warnings(names: Sequence[str]) -> list[str]:
    """Warnings for class names that are several names joined (``rock;pop``, ``Drama, Comedy`` beside ``Drama``:
    :func:`mmdata.train.targets._joined`) or hierarchy paths (``Home > Kitchen > Knives``: at least half the names
    hold one path separator of :data:`PATH_SEPARATORS` between words, and a first level recurs): each is one flat class of a
    single-label model; said with how to train each name (a multi-label ``--target``) or a coarser level (QA39 music
    #5, ecommerce #7).

    Example:
        >>> class_name_warnings(["Home > Kitchen > Knives", "Home > Kitchen > Pans", "Toys > Dolls"])[0][:38]
        '3 of 3 class names are hierarchy paths'
        >>> class_name_warnings(["a", "b"])
        []
    """
    from mmdata.train.targets import _joined, _show

    out = []
    joined = [n for n, _ in _joined(list(names), set(names))]
    if joined:
        out.append(f"class name{'s' * (len(joined) > 1)} {_show(joined, 3)} join{'s' * (len(joined) == 1)} several "
                   f"names (by ';', '|' or ','): a single-label model trains each combination as a class of its own; to "
                   f"train one output per name, keep each sample's names in a --meta column (a JSON list "
                   f"[\"rock\", \"pop\"] in a CSV cell, or a list in JSONL / Parquet) and train --target COLUMN "
                   f"(multi-label)")
    for sep in PATH_SEPARATORS:
        # every level a word (a letter, two characters or more): no metre ('3/4', '6/8'), fraction or 'n/a'
        # (QA39 review augment #3)
        paths = [n for n in names if sep in n and all(len(p.strip()) > 1 and any(c.isalpha() for c in p)
                                                      for p in n.split(sep))]
        firsts = Counter(n.split(sep)[0].strip() for n in paths)
        if len(names) > 1 and 2 * len(paths) >= len(names) and firsts.most_common(1)[0][1] > 1:
            out.append(f"{len(paths)} of {len(names)} class names are hierarchy paths ({_show(paths, 2)}; split at "
                       f"{sep!r}): each path is one flat class (no parent level is trained or scored); to train a "
                       f"coarser level, write a manifest column of each path cut at that level (e.g. "
                       f"{sep.join(paths[0].split(sep)[:-1]).strip()!r}) and shard again with --column label=COLUMN "
                       f"(kept as --meta too, `mmdata evaluate RUN DATA --by COLUMN` scores the finer run per "
                       f"parent)")
            break
    return out


#: training captions the text-units summary reads at most (stream order): a look at the captions, not a pass
#: over a large split (review of QA33: 2000 samples streamed a row-layout tar's image and audio bytes too, on
#: every run of an ablation)
TEXT_UNIT_CAPTIONS = 500

#: text-units summaries this process computed, by (dataset fingerprint, splits, limit, on_error): an ablation's
#: runs on one dataset read its captions once
_TEXT_UNITS: dict[tuple[Any, ...], dict[str, Any] | None] = {}


def text_units(data: str | Path, split: str | Sequence[str], limit: int = TEXT_UNIT_CAPTIONS,
               on_error: str = "raise", card: Mapping[str, Any] | None = None,
               names: Sequence[str] | None = None) -> dict[str, Any] | None:
    """How the default tokenizer (:class:`mmdata.text.Tokenizer`: whitespace words, single CJK characters,
    hashed into its id table) cuts the training captions (QA33: a Thai caption without spaces is one unit,
    and common Han characters share ids; nothing said so): ``captions`` read (the first ``limit``),
    ``tokens`` per caption (median, 95th percentile, max), ``distinct_units`` (as their ids are computed:
    NFC, end punctuation stripped, lower-cased), ``single_unit_share`` (captions that are one unit),
    ``ids`` (the table's size) and ``colliding_units`` (distinct units sharing an id with another); None
    without a caption.

    Only the text member is decoded (``modalities=["text"]``; the row layout still streams the other members'
    bytes of the samples read), whatever the rank (not partitioned). ``on_error``: the run's; with ``"skip"`` /
    ``"warn"`` a caption that does not decode is left out and counted in ``skipped`` (the training loader
    reports it again: the summary adds no warning), with ``"raise"`` its error is the one training would give.
    The result is kept per (the card's ``fingerprint``, splits, ``limit``, ``on_error``, ``names``) for this process, so an
    ablation's runs on one dataset read once (``card``: the dataset's, else read from ``data``). With the class
    ``names``, the labels are read too and ``named`` counts per class id the captions read, those holding the
    class's own name (a whole word, case-insensitive) and those of other classes holding it, with an example
    key (:func:`label_leak_warning`).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
        >>> text_units(t + "/ds", "train")["single_unit_share"]
        0.0
    """
    from mmdata.shards.index import load_card
    from mmdata.shards.reader import open_dataset
    from mmdata.text import _strip_id, default_tokenizer

    splits = (split,) if isinstance(split, str) else tuple(split)
    mode = "raise" if on_error == "raise" else "skip"  # "warn": the training loader warns of the same samples
    if card is None:
        try:
            card = load_card(data)
        except (MMDataError, OSError):
            card = {}
    # a name of one character or digits only ('0', 'a') is in many captions without naming the class
    names = [str(n) for n in names] if names and any(len(str(n)) > 1 and not str(n).isdigit() for n in names) else None
    memo = ((card.get("fingerprint"), str(data), splits, int(limit), mode, tuple(names or ()))
            if card.get("fingerprint") else None)
    if memo is not None and memo in _TEXT_UNITS:
        return _TEXT_UNITS[memo]
    tok = default_tokenizer()
    lengths: list[int] = []
    ids: dict[str, int] = {}
    lowered = {n.casefold(): i for i, n in enumerate(names or ()) if len(n) > 1 and not n.isdigit()}
    pattern = (re.compile(r"(?<!\w)(" + "|".join(sorted(map(re.escape, lowered), key=len, reverse=True)) + r")(?!\w)",
                          re.IGNORECASE) if lowered else None)
    named: dict[str, list[Any]] = {}
    ds = open_dataset(data, split=list(splits), modalities=["text", "label"] if names else ["text"], on_error=mode,
                      partition=False)
    for sample in ds:
        text = sample.fields.get("text") if "text" in sample.fields else None
        if not isinstance(text, str):
            continue
        label = sample.fields.get("label")
        if pattern is not None and isinstance(label, int) and not isinstance(label, bool):
            got = named.setdefault(str(label), [0, 0, 0, None])
            got[0] += 1
            said = {lowered.get(m.casefold()) for m in pattern.findall(text)}
            if label in said:
                got[1] += 1
                got[3] = got[3] if got[3] is not None else sample.key
            for other in said - {label, None}:
                named.setdefault(str(other), [0, 0, 0, None])[2] += 1
        words = tok.words(text)
        lengths.append(len(words))
        for w in words:
            form = _strip_id(w)
            if form and form not in ids:
                ids[form] = tok.token_id(w)
        if len(lengths) >= limit:
            break
    skipped = sum(int(n) for n in (getattr(ds, "skipped", None) or {}).values())
    out = None
    if lengths:
        per_id = Counter(ids.values())
        ordered = sorted(lengths)
        out = {"captions": len(lengths), "capped": len(lengths) >= limit,
               "tokens": {"median": ordered[len(ordered) // 2], "p95": int(math.ceil(_p95(ordered))), "max": ordered[-1]},
               "distinct_units": len(ids), "single_unit_share": round(sum(n == 1 for n in lengths) / len(lengths), 4),
               "ids": tok.vocab_size, "colliding_units": sum(1 for i in ids.values() if per_id[i] > 1),
               **({"skipped": skipped} if skipped else {}), **({"named": named} if named else {})}
    if memo is not None:
        if len(_TEXT_UNITS) >= 16:  # a long-lived process over many datasets: keep the latest few
            _TEXT_UNITS.pop(next(iter(_TEXT_UNITS)))
        _TEXT_UNITS[memo] = out
    return out


def describe_text_units(units: Mapping[str, Any]) -> str:
    """The input summary's line for :func:`text_units`.

    Example:
        >>> describe_text_units({"captions": 4, "capped": False, "tokens": {"median": 1, "p95": 3, "max": 3},
        ...                      "distinct_units": 6, "single_unit_share": 0.75, "ids": 4096, "colliding_units": 0})[:60]
        'text units of 4 training captions (whitespace words, one per'
    """
    t = units["tokens"]
    single = units["single_unit_share"]
    return (f"text units of {units['captions']} {'(the first) ' if units['capped'] else ''}training captions (whitespace "
            f"words, one per CJK character): {t['median']} per caption (median; 95th percentile {t['p95']}, max "
            f"{t['max']}); {units['distinct_units']} distinct, {units['colliding_units']} of them sharing one of the "
            f"{units['ids']} hashed ids with another; {100 * single:.0f}% of captions are a single unit"
            + (f" ({plural(units['skipped'], 'caption')} that did not decode left out)" if units.get("skipped") else "")
            + (" (text without spaces, e.g. Thai or Khmer, is one unit: no segmenter; split it into words before "
               "sharding to train on words)" if single >= 0.5 else ""))


def duplicate_warnings(data: str | Path, card: Mapping[str, Any], roles: Mapping[str, Sequence[str]] | None) -> list[str]:
    """The dataset card's duplicates that concern a run (QA33: a user who did not see ``mmdata shard``'s
    warnings trained on contradictory labels and scored on copies of training samples): found again in the
    index over the splits the run reads, each split counted as the role it plays (two training folds
    sharing a file are no leak), so only copies across train / val / test and label conflicts among them
    are said. Nothing is read when the card found none (the card's check confirms by sha256; this one
    matches the index's size and CRC-32 of the members the card's sets came from).

    What is the same is named as :func:`mmdata.shards.writer.duplicates_across_splits` compared it: image or
    audio bytes, or a text-only sample's caption (``text_only``; a caption alone when the splits read hold no
    image or audio). Copies across splits under different labels say so (``across_splits_labels_differ``:
    the model trains on one label and is scored on the other); samples sharing one image or audio file under
    different class folders (``shared_label_conflicts``, labels from folders only: from a manifest it may be a
    row per question of one image) are warned of as ``mmdata shard`` does.

    Example:
        >>> duplicate_warnings("ds", {"duplicates": {"across_splits": 0, "samples": 0, "examples": []}}, None)
        []
    """
    found = card.get("duplicates") or {}
    folders = card.get("label_names_from") == "folders"
    if not (found.get("across_splits") or found.get("label_conflicts") or (folders and found.get("shared_label_conflicts"))):
        return []
    import pyarrow as pa
    import pyarrow.compute as pc

    from mmdata.shards.index import load_index
    from mmdata.shards.writer import _MEDIA_MEMBER, duplicates_across_splits

    role_of = {str(s): role for role, names in (roles or {r: [r] for r in RUN_SPLITS}).items() for s in names}
    wanted = ["key", "source_key", "split", "shard", "members", "sizes", "member_crc32", "label"]
    have = set(_index_names(data))
    t = load_index(data, columns=[c for c in wanted if c in have])
    t = t.filter(pc.is_in(pc.cast(t["split"], pa.string()), value_set=pa.array(list(role_of), pa.string())))
    t = t.set_column(t.schema.get_field_index("split"), "split",
                     pa.array([role_of[s] for s in pc.cast(t["split"], pa.string()).to_pylist()], pa.string()))
    again = duplicates_across_splits(t, label_names=card.get("label_names"))
    read = ", ".join(f"{role} ({', '.join(map(str, names))})" if list(names) != [role] else role
                     for role, names in (roles or {r: [r] for r in RUN_SPLITS}).items())
    media = t.num_rows and pc.any(pc.match_substring_regex(pc.utf8_lower(pc.list_flatten(t["members"])),
                                                           _MEDIA_MEMBER)).as_py()
    what = (("image or audio bytes, or a text-only sample's caption," if media else "caption (text-only samples)")
            if again.get("text_only") else "image or audio bytes")
    said = []
    if again.get("across_splits"):
        shown = " and ".join(f"{key!r} ({split})" for key, split in again["examples"][0])
        labels = _labels_across(t, card.get("label_names")) if again.get("across_splits_labels_differ") else ""
        said.append(f"{plural(again['samples'], 'sample')} in {plural(again['across_splits'], 'set')} hold the same {what} "
                    f"in more than one of the splits this run reads ({read}; e.g. {shown}): a val or test "
                    f"sample that is also trained on inflates its scores{labels} (the dataset card's duplicates, matched "
                    "here by size and CRC-32); remove the copies, or re-shard giving each set one split (--group-by)")
    if again.get("label_conflicts"):
        ex = again["label_examples"][0]
        shown = " and ".join(f"{key!r} ({split})" for key, split, _ in ex)
        said.append(f"{plural(again['label_conflict_samples'], 'sample')} in {plural(again['label_conflicts'], 'set')} of "
                    f"the splits this run reads hold the same content under different labels (e.g. {shown}: labels differ: "
                    f"{', '.join(name for _, _, name in ex)}): the model is trained or scored on contradictory labels "
                    "(the dataset card's duplicates.label_examples); keep the copy with the right label and remove the others")
    if folders and again.get("shared_label_conflicts"):
        ex = again["shared_label_examples"][0]
        shown = " and ".join(f"{key!r} ({split})" for key, split, _ in ex)
        said.append(f"{plural(again['shared_label_conflict_samples'], 'sample')} in "
                    f"{plural(again['shared_label_conflicts'], 'set')} of the splits this run reads share an image or audio "
                    f"file under different class folders (e.g. {shown}: labels differ: {', '.join(name for _, _, name in ex)}): "
                    "the model is trained or scored on contradictory labels (the dataset card's "
                    "duplicates.shared_label_examples); keep the file in the right class folder only")
    return said


def _labels_across(t: Any, label_names: Sequence[str] | None) -> str:
    """The across-split warning's words on labels (QA36 medical #5): only a set holding a sample of one split and
    a sample of another under different labels is "trained on one label and scored on the other", that pair
    named; a file more than ``_FEW_COPIES`` samples share (a placeholder: a blank image, a silent clip) is no
    item under two labels, and a set whose differing labels sit in one split is a label conflict within it.
    ``t``: the index rows the run reads, ``split`` already its role."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from mmdata.shards.writer import _FEW_COPIES, _MEDIA_MEMBER

    if not {"members", "sizes", "member_crc32", "label"} <= set(t.column_names) or not t.num_rows:
        return ""
    members = t["members"].combine_chunks()
    flat = pa.table({"row": pc.list_parent_indices(members), "name": pc.list_flatten(members),
                     "size": pc.list_flatten(t["sizes"].combine_chunks()),
                     "crc": pc.list_flatten(t["member_crc32"].combine_chunks())})
    flat = flat.filter(pc.and_(pc.is_valid(flat["crc"]), pc.match_substring_regex(pc.utf8_lower(flat["name"]),
                                                                                   _MEDIA_MEMBER)))
    flat = flat.append_column("split", t["split"].combine_chunks().take(flat["row"]))
    flat = flat.append_column("label", t["label"].combine_chunks().take(flat["row"]))
    per = flat.group_by(["size", "crc"]).aggregate([("split", "count_distinct"), ("label", "count_distinct")])
    per = per.filter(pc.and_(pc.greater(per["split_count_distinct"], 1), pc.greater(per["label_count_distinct"], 1)))
    if not per.num_rows:
        return ""
    dup = flat.join(per.select(["size", "crc"]), ["size", "crc"], join_type="inner")
    sets: dict[tuple[Any, Any], set[int]] = {}
    for size, crc, row in zip(dup["size"].to_pylist(), dup["crc"].to_pylist(), dup["row"].to_pylist()):
        sets.setdefault((size, crc), set()).add(row)
    key_col = t["source_key" if "source_key" in t.column_names else "key"].to_pylist()
    split_col, label_col = t["split"].to_pylist(), t["label"].to_pylist()

    def name(label: int) -> str:
        return label_names[label] if label_names is not None and 0 <= label < len(label_names) else str(label)

    across, placeholders, within = [], 0, 0
    for got in sorted(sorted(g) for g in {frozenset(g) for g in sets.values()}):  # the join's order is not fixed
        if len(got) > _FEW_COPIES:
            placeholders += 1
            continue
        pair = next(((i, j) for i in got for j in got if split_col[i] == "train" and split_col[j] != "train"
                     and label_col[i] is not None and label_col[j] is not None and label_col[i] != label_col[j]), None)
        if pair is None:
            within += 1
        else:
            across.append(pair)
    said = []
    if across:
        i, j = across[0]
        said.append(f"{plural(len(across), 'set')} of these {'carries' if len(across) == 1 else 'carry'} different labels "
                    f"in different splits (e.g. {name(label_col[i])} ({key_col[i]!r}, {split_col[i]}) and "
                    f"{name(label_col[j])} ({key_col[j]!r}, {split_col[j]})): the model is trained on one label and "
                    "scored on the other")
    if within:
        said.append(f"{plural(within, 'set')} of these {'has' if within == 1 else 'have'} different labels, but not "
                    "between a training sample and a val / test one (a label conflict, not a train-vs-score one)")
    if placeholders:
        said.append(f"{plural(placeholders, 'file')} with different labels {'is' if placeholders == 1 else 'are'} "
                    f"shared by more than {_FEW_COPIES} samples (a placeholder: a blank image, a silent clip), not one "
                    "item under two labels; the model may learn the placeholder rather than the sample")
    return "".join(f"; {part}" for part in said)


def _index_names(data: str | Path) -> list[str]:
    """The columns of ``data``'s ``index.parquet`` (older datasets lack ``member_crc32`` / ``source_key``)."""
    import pyarrow.parquet as pq

    from mmdata.shards.index import INDEX

    return list(pq.read_schema(Path(data) / INDEX).names)


def no_train_warning(classes: Sequence[tuple[str, int, int, int]]) -> str:
    """The warning for the classes without training samples, ``(name, id, val count, test count)`` each: one
    class's counts, or one line for many (QA: a class list of 60 names of which 3 occur printed 57 lines).

    Example:
        >>> no_train_warning([(f"c{i}", i, 0, 0) for i in range(7)])[:81]
        "7 classes have no training samples ('c0', 'c1', 'c2', 'c3', 'c4' and 2 more): the"
    """
    if len(classes) == 1:
        name, c, val, test = classes[0]
        return f"class {name!r} (id {c}) has no training samples (val {val}, test {test}): the model cannot predict it"
    shown = ", ".join(repr(n) for n, *_ in classes[:NAMED_CLASSES])
    more = f" and {len(classes) - NAMED_CLASSES} more" if len(classes) > NAMED_CLASSES else ""
    return (f"{len(classes)} classes have no training samples ({shown}{more}): the model cannot predict them; "
            "their val and test counts: mmdata inspect")


#: the classes a warning about many classes names (the rest are counted)
NAMED_CLASSES = 5


def no_val_warning(classes: Sequence[tuple[str, int, int, int]]) -> str:
    """The warning for the trained classes without val samples, ``(name, id, train count, test count)``
    each: one class's counts, or one line for many (QA: 200 classes of 1-3 samples printed 137 lines)
    naming :data:`NAMED_CLASSES` of them.

    Example:
        >>> no_val_warning([("cat", 0, 3, 1)])
        "class 'cat' (id 0) has no val samples (train 3, test 1): val scores and the best-epoch choice do not see it"
        >>> no_val_warning([(f"c{i}", i, 1, 1) for i in range(7)])[:76]
        "7 classes have no val samples ('c0', 'c1', 'c2', 'c3', 'c4' and 2 more): val"
    """
    return _split_gap_warning("val", "test", classes, "val scores and the best-epoch choice do not see {}")


def no_test_warning(classes: Sequence[tuple[str, int, int, int]]) -> str:
    """The warning for the trained classes without test samples, ``(name, id, train count, val count)`` each
    (QA42 longtail F5: the val one was said, the test one not): one class's counts, or one line for many.

    Example:
        >>> print(no_test_warning([("cat", 0, 3, 1)]))  # doctest: +NORMALIZE_WHITESPACE
        class 'cat' (id 0) has no test samples (train 3, val 1): test balanced accuracy leaves it out;
        its test scores are null and test macro-F1 leaves it out too unless the model predicts it (then
        its precision, recall and F1 are 0 and macro-F1 counts it as F1 0, as scikit-learn's does)
    """
    # whether the model predicts the class is known only after the test pass; the per-class record and
    # macro-F1 follow scikit-learn (mmdata.train.evaluate.Scores.per_class), so the warning says both cases
    return _split_gap_warning("test", "val", classes, "test balanced accuracy leaves {1} out; {0} test scores are "
                              "null and test macro-F1 leaves {1} out too unless the model predicts {1} (then {0} "
                              "precision, recall and F1 are 0 and macro-F1 counts {1} as F1 0, as scikit-learn's "
                              "does)", ("its", "it"), ("their", "them"))


def _split_gap_warning(split: str, other: str, classes: Sequence[tuple[str, int, int, int]], what: str,
                       one: tuple[str, ...] = ("it",), many: tuple[str, ...] = ("them",)) -> str:
    """The warning for trained classes without ``split`` samples, ``(name, id, train count, ``other`` count)``
    each: one class's counts, or one line for many naming :data:`NAMED_CLASSES` of them; ``what`` (what the gap
    does) is formatted with ``one`` or ``many``'s words."""
    if len(classes) == 1:
        name, c, train, count = classes[0]
        return f"class {name!r} (id {c}) has no {split} samples (train {train}, {other} {count}): " + what.format(*one)
    shown = ", ".join(repr(n) for n, *_ in classes[:NAMED_CLASSES])
    more = f" and {len(classes) - NAMED_CLASSES} more" if len(classes) > NAMED_CLASSES else ""
    return (f"{len(classes)} classes have no {split} samples ({shown}{more}): {what.format(*many)}; their train "
            f"and {other} counts: mmdata inspect")


#: the metadata columns a too-few-classes error lists (the rest are counted)
TARGET_HINT_COLUMNS = 8


def target_columns(card: dict[str, Any]) -> list[str]:
    """The card's metadata columns (a manifest's ``--meta``, each sample's ``.json`` member) that could be
    a ``--target``: every one but those whose values are all null (``metadata_kinds``), in the card's order.

    Example:
        >>> target_columns({"metadata_columns": ["genres", "notes", "year"], "metadata_kinds": {"notes": "null"}})
        ['genres', 'year']
    """
    kinds = card.get("metadata_kinds")
    kinds = kinds if isinstance(kinds, Mapping) else {}
    cols = card.get("metadata_columns")
    if not isinstance(cols, list):
        return []
    return [c for c in dict.fromkeys(c for c in cols if isinstance(c, str) and c) if kinds.get(c) != "null"]


def misspelt_target(data: str | Path, target: str, card: dict[str, Any], given: str) -> MMDataError | None:
    """The error for a target key the card's metadata columns (:func:`target_columns`) lack but spell
    closely (``scor`` for ``score``), naming the option it came from (``given``: ``target (--target)``,
    an ablation's ``trainer.target``); None when the card lists no such close column (the reader's message then says
    what the samples hold, and how to shard a column in). Without it a typo was blamed on the dataset,
    with advice to re-shard under the misspelt name (QA round 25).

    Example:
        >>> print(misspelt_target("ds", "scor", {"metadata_columns": ["score", "genres"]}, "trainer.target"))
        trainer.target: 'scor' is not a metadata column of ds; did you mean 'score'? (its columns: score, genres)
        >>> misspelt_target("ds", "year", {"metadata_columns": ["score", "genres"]}, "trainer.target") is None
        True
        >>> misspelt_target("ds", "score,genres", {"metadata_columns": ["score", "genres"]}, "trainer.target") is None
        True
    """
    import difflib

    from mmdata.train.targets import several_columns

    cols = target_columns(card)
    close = difflib.get_close_matches(target, cols, n=1) or [c for c in cols if c.lower() == target.lower()]
    if target in cols or not close or several_columns(str(data), target, cols) is not None:
        return None  # several columns ('findA,findB'): not a misspelling of one of them, the caller's error says so (QA31 D5)
    shown = ", ".join(cols[:TARGET_HINT_COLUMNS]) + (f", ... ({len(cols)} in all)" if len(cols) > TARGET_HINT_COLUMNS else "")
    return MMDataError(f"{given}: {target!r} is not a metadata column of {data}; did you mean {close[0]!r}? "
                       f"(its columns: {shown})")


_ID_NAME = re.compile(r"(?:^|[_\s.-])(?:id|ids|uuid|guid|key)$|^(?:id|uuid|guid|key)(?:[_\s.-]|$)", re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z](?:ID|Id)$")


def _id_like(column: str, card: Mapping[str, Any]) -> bool:
    """Whether ``column`` names an id (``patient_id``, ``studyID``, ``uuid``) or is the card's ``--group-by``
    column (``split_group_by``): a value unique to a few samples, held apart across the splits by design, so
    no model learns it — the no-classes hint does not suggest it as a ``--target`` (QA40 medical #3).

    Example:
        >>> [_id_like(c, {"split_group_by": "site"}) for c in ["patient_id", "studyID", "site", "view", "idea"]]
        [True, True, True, False, False]
    """
    return column == card.get("split_group_by") or bool(_ID_NAME.search(column) or _CAMEL_ID.search(column))


def too_few_classes(data: str | Path, card: dict[str, Any]) -> str:
    """Why a classifier cannot train on a card with fewer than 2 classes: unlabelled (no classes), or
    labelled with one class (its name said); pre-training alone is offered where the card has pairs
    (two of the trainer's modalities) to pre-train on, and predicting a metadata column where the card
    has some (:func:`target_columns`).

    Example:
        >>> too_few_classes("ds", {"num_classes": 1, "label_names": ["cat"], "modalities": {"image": {}}})
        "ds has 1 class ('cat'): a classifier needs at least 2 (shard a source with samples of another class too)"
        >>> print(too_few_classes("ds", {"num_classes": 0, "modalities": {"image": {}},
        ...                              "metadata_columns": ["genres", "year"]}))  # doctest: +NORMALIZE_WHITESPACE
        ds: the card has no classes (num_classes=0); training needs labels; or predict a metadata column:
        --target genres (columns: genres, year)
    """
    classes = int(card.get("num_classes") or 0)
    have = [m for m in MODALITIES if m in (card.get("modalities") or {})]
    pairs = "-".join(have) if len(have) > 1 else None
    cols = target_columns(card)
    shown = ", ".join(cols[:TARGET_HINT_COLUMNS]) + (f", ... ({len(cols)} in all)" if len(cols) > TARGET_HINT_COLUMNS else "")
    example = next((c for c in cols if not _id_like(c, card)), None)
    target = ((f"; or predict a metadata column: --target {example} (columns: {shown})" if example else
               f"; the metadata columns ({shown}) look like ids or the --group-by column, which a model cannot learn "
               "to predict: shard a column to predict with --meta, then train with --target COLUMN") if cols else "")
    if classes == 1:
        names = [str(n) for n in card.get("label_names") or []]
        named = f" ({names[0]!r})" if len(names) == 1 else ""
        return (f"{data} has 1 class{named}: a classifier needs at least 2 (shard a source with samples of another "
                "class too" + (f"; or pre-train the encoders on its {pairs} pairs alone: --pretrain contrastive "
                               "--epochs 0" if pairs else "") + ")" + target)
    return (f"{data}: the card has no classes (num_classes={classes}); training needs labels"
            + (" (to pre-train the encoders on unlabelled pairs alone: --pretrain contrastive --epochs 0)"
               if pairs else "") + target)


def too_few_labelled_classes(data: str | Path, names: Sequence[str], counts: Sequence[int]) -> str:
    """Why a classifier cannot train when fewer than 2 classes have labelled training samples though the card
    declares more (``mmdata shard --labels`` listing classes not labelled yet: an active-learning cold start):
    the message of :func:`too_few_classes`'s one-class card, naming the classes and their training counts
    (QA42 active #6: it trained and scored 1.000, every prediction the one class).

    Example:
        >>> print(too_few_labelled_classes("ds", ["cat", "dog", "bird"], [12, 0, 0]))  # doctest: +NORMALIZE_WHITESPACE
        ds has 1 of its 3 classes with labelled training samples ('cat': 12; none of 'dog', 'bird'): a classifier
        needs at least 2 (label training samples of another class too)
    """
    had = [(n, int(c)) for n, c in zip(names, counts) if c > 0]
    bare = [n for n, c in zip(names, counts) if not c > 0]
    shown = "; ".join(f"{n!r}: {c}" for n, c in had)
    none = ", ".join(repr(n) for n in bare[:NAMED_CLASSES]) + (f" and {len(bare) - NAMED_CLASSES} more"
                                                               if len(bare) > NAMED_CLASSES else "")
    return (f"{data} has {len(had)} of its {len(names)} classes with labelled training samples ("
            + (f"{shown}; " if shown else "") + f"none of {none}): a classifier needs at least 2 "
            "(label training samples of another class too)")


def classes_of(data: str | Path, card: dict[str, Any], need_classes: bool = True,
               roles: Mapping[str, Sequence[str]] | None = None, target: bool = False) -> tuple[int, list[str]]:
    """The card's number of classes and class names; raise when it has none (unless not
    ``need_classes``: contrastive pre-training alone, which needs a train split only; then ``(0, [])``
    without classes), lacks a train / val / test split, or its names do not match. ``roles``
    (:func:`split_roles`, checked there): the splits play train / val / test, not the names.
    ``target``: a metadata target is predicted (:mod:`mmdata.train.targets`): the splits are checked,
    the classes are not (``(0, [])``)."""
    classes = int(card.get("num_classes") or 0)
    if classes < 2 and need_classes and not target:
        raise MMDataError(too_few_classes(data, card))
    missing = [s for s in (RUN_SPLITS if need_classes else ("train",)) if s not in card["splits"]] if roles is None else []
    if missing and not need_classes:
        raise MMDataError(f"{data}: pre-training needs a train split; it has {sorted(card['splits'])} (shard with "
                          f"--split train=0.9,test=0.1: test, when there is one, measures retrieval)")
    if missing:
        raise MMDataError(f"{data}: needs train/val/test splits; it has {sorted(card['splits'])} (shard with --split "
                          f"train=0.8,val=0.1,test=0.1; an embedded dataset built with a small --limit may lack one; "
                          f"or say which splits play them: --val-split NAME --test-split NAME [--train-split A,B,...], "
                          f"e.g. folds sharded with --column split=fold: --val-split 4 --test-split 5)")
    if target or (classes < 2 and not need_classes):
        return 0, []
    names = [str(n) for n in (card.get("label_names") or [])] or [str(c) for c in range(classes)]
    if len(names) != classes:
        raise MMDataError(f"{data}: the card has {len(names)} label_names for num_classes={classes}")
    return classes, names


#: the splits a training run reads: its normalize stage must bring each to the training split's format
RUN_SPLITS = ("train", "val", "test")
SPLIT_OPTIONS = ("train_split", "val_split", "test_split")


def split_roles(data: str | Path, card: dict[str, Any], train_split: str | Sequence[str] | None = None,
                val_split: str | None = None, test_split: str | None = None,
                name: Callable[[str], str] = option_name) -> dict[str, list[str]] | None:
    """Which of the dataset's splits play train, val and test: None (the splits named so) when none
    of the three is given; else ``{"train": [...], "val": [name], "test": [name]}`` — a role not given
    keeps its own name (``val``, ``test``), and train defaults to every other split of the card
    (folds ``1``..``5`` with ``val_split="4", test_split="5"``: train on 1, 2, 3). ``train_split``: a
    name, ``"A,B,C"`` or a list. A name the card lacks, a split in two roles or an empty train is an
    error naming the option (``name``).

    Example:
        >>> card = {"splits": {s: {} for s in "12345"}}
        >>> split_roles("esc", card, val_split="4", test_split="5")
        {'train': ['1', '2', '3'], 'val': ['4'], 'test': ['5']}
        >>> split_roles("esc", card) is None
        True
    """
    if train_split is None and val_split is None and test_split is None:
        return None
    have = [str(s) for s in card.get("splits") or {}]

    def one(key: str, value: Any, default: str) -> str:
        if value is None:
            return default
        if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip() or "," in str(value):
            raise MMDataError(f"{name(key)}: expected one split name, got {value!r}")
        return str(value).strip()

    val, test = one("val_split", val_split, "val"), one("test_split", test_split, "test")
    if train_split is None:
        train = [s for s in have if s not in (val, test)]
    else:
        parts = train_split.split(",") if isinstance(train_split, str) else train_split
        if isinstance(parts, (int, float)) or not isinstance(parts, Sequence):
            raise MMDataError(f"{name('train_split')}: expected split names (A,B,C or a list), got {train_split!r}")
        train = [str(p).strip() for p in parts if str(p).strip()]
        if len(set(train)) != len(train):
            raise MMDataError(f"{name('train_split')}: a split is named twice in {train}")
    if not train:
        raise MMDataError(f"{name('train_split')}: no split left to train on ({data} has {have}; val {val!r}, "
                          f"test {test!r})")
    roles = {"train": train, "val": [val], "test": [test]}
    for role, names in roles.items():
        unknown = [n for n in names if n not in have]
        if unknown:
            # a number given for a zero-padded name: YAML (and the CLI's int) reads 04 as 4
            padded = [h for n in unknown if n.isdigit() for h in have if h.isdigit() and h != n and int(h) == int(n)]
            hint = (f" ({', '.join(map(repr, padded))} has the same number: a YAML value 04 is read as 4 — quote it, "
                    f"'{padded[0]}')" if padded else "")
            raise MMDataError(f"{name(role + '_split')}: {data} has no split {' or '.join(map(repr, unknown))}; "
                              f"it has {have}{hint}")
    if val == test or val in train or test in train:
        twice = sorted({val, test} & set(train) | ({val} if val == test else set()))
        raise MMDataError(f"{name('val_split')} / {name('test_split')} / {name('train_split')}: split "
                          f"{', '.join(map(repr, twice))} plays two roles (train {train}, val {val!r}, test {test!r}); "
                          "a sample scored on what it was trained or selected on says nothing")
    return roles


def role_splits(roles: Mapping[str, Sequence[str]] | None, role: str) -> str | list[str]:
    """What a loader reads for ``role``: the split of that name, its one split, or the list read as one."""
    if roles is None:
        return role
    names = list(roles[role])
    return names[0] if len(names) == 1 else names


def _elsewhere(st: IndexStats, every: np.ndarray, name: str | Callable[[np.ndarray], list[str]]) -> str:
    """The values outside the train split among rows ``every``, by split (``val 16000; test 16000``):
    of column ``name`` (whole numbers shown as such), or those ``name(rows)`` gives as text."""
    def shown(rows: np.ndarray) -> list[str]:
        if callable(name):
            return name(rows)
        return [str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in st.values(name, rows)]

    parts = []
    for split, mask in st._splits.items():
        rows = every[mask[every]]
        if split == "train" or not len(rows):
            continue
        vals = shown(rows)
        parts.append(f"{split} " + (", ".join(sorted(set(vals))) if vals else "unknown"))
    return "; ".join(parts) or "other splits"


def _channels(st: IndexStats, rows: np.ndarray, given: int | None, every: np.ndarray) -> tuple[int, str, bool]:
    """(channels, source, convert needed): the count from the training ``rows``; the conversion is
    needed unless every row of ``every`` (the splits the stage runs on) already decodes to it."""
    if given is not None:
        return given, "given", True
    # the mode says more than the channel count (a palette image has one channel and decodes to RGB)
    if st.values("image_mode", rows):
        modes = Counter(str(m) for m in st.values("image_mode", rows))
        c = 1 if set(modes) <= GREY_MODES else 3
        target = ("L", "RGB")[c == 3]
        source = f"image modes {dict(sorted(modes.items()))}"
        in_train = not (st.known("image_mode", rows) and set(modes) == {target})
        needed = not (st.known("image_mode", every) and {str(m) for m in st.values("image_mode", every)} == {target})
        if needed and not in_train:
            source += f"; converted from modes {_elsewhere(st, every, 'image_mode')}"
        return c, source, needed
    if st.values("image_channels", rows):
        seen = Counter(int(c) for c in st.values("image_channels", rows))
        c = 1 if set(seen) == {1} else 3
        return c, f"image channels {dict(sorted(seen.items()))}", True
    # an index without channel columns: look at a few decoded images, and convert anyway (a no-op where equal)
    from mmdata.shards.reader import open_dataset

    seen_c: Counter[int] = Counter()
    for s in open_dataset(st.data, split="train", modalities=["image"], partition=False):
        if "image" in s:
            seen_c[int(s["image"].shape[0])] += 1
            if sum(seen_c.values()) >= PEEK:
                break
    c = 1 if set(seen_c) == {1} else 3
    return c, f"channels {dict(sorted(seen_c.items()))} in the first {sum(seen_c.values())} decoded training images", True


def derive_inputs(data: str | Path | IndexStats, modalities: Sequence[str], *, image_size: int | Sequence[int] | None = None,
                  channels: int | None = None, sample_rate: int | None = None, max_seconds: float | None = None,
                  max_tokens: int | None = None, splits: Sequence[str] = RUN_SPLITS) -> InputSpec:
    """The input format for ``modalities`` from the training split's statistics (given values win).

    The format is the training split's; whether a step of the normalize stage is needed (``needs``:
    resize, convert, resample, mono, pad_trim) is decided over every split in ``splits``, since the
    stage brings each of them to that format: val at another rate than train is resampled, a stereo
    clip only in test is mixed down. Where only another split needs a step, its source says so.

    Args:
        data: dataset folder (with ``index.parquet``) or its :class:`IndexStats`.
        modalities: the modalities the model uses.
        image_size, channels, sample_rate, max_seconds, max_tokens: values to use instead of deriving.
        splits: the splits the normalize stage runs on (train is always one): a training run's train,
            val and test by default.

    Returns:
        An :class:`InputSpec`; fields of unused modalities (or absent from the data) are ``None``.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
        >>> derive_inputs(t + "/ds", ["image", "text"]).image_size
        (24, 32)
    """
    from mmdata.text import default_tokenizer

    check_options(image_size=image_size, channels=channels, sample_rate=sample_rate, max_seconds=max_seconds,
                  max_tokens=max_tokens)
    st = data if isinstance(data, IndexStats) else IndexStats(data)
    if not len(st.rows("train")):
        raise MMDataError(f"{st.data}: index.parquet has no training rows; shard with --split train=...,val=...,test=...")
    sources: dict[str, str] = {}
    needs: dict[str, bool] = {}
    spec: dict[str, Any] = {}
    splits = ["train", *(s for s in splits if s != "train")]

    def hw_of(rows: np.ndarray) -> list[tuple[int, int]]:
        sized = rows[st.known_at("image_height", rows) & st.known_at("image_width", rows)]
        return list(zip(map(int, st.values("image_height", sized)), map(int, st.values("image_width", sized))))

    def all_sized(rows: np.ndarray) -> bool:
        return st.known("image_height", rows) and st.known("image_width", rows)

    def note(step: str, in_train: bool, key: str, what: Callable[[], str]) -> None:
        """Record a step that only another split needs, in the source of the value it brings them to."""
        if needs[step] and not in_train:
            sources[key] += f"; {what()}"

    rows = st.rows("train", "image")
    every = st.rows_in(splits, "image")
    if "image" in modalities and (len(rows) or image_size is not None):
        hw = hw_of(rows) or [(16, 16)]
        spec["image_size"], sources["image_size"], in_train = _image_size(hw, image_size)
        size = spec["image_size"]
        needs["resize"] = in_train or not all_sized(every) or set(hw_of(every)) != {size}
        note("resize", in_train, "image_size", lambda: "resize + centre crop of sizes "
             + _elsewhere(st, every, lambda r: [f"{h}x{w}" for h, w in hw_of(r)]))
        spec["channels"], sources["channels"], needs["convert"] = _channels(st, rows, channels, every)
    rows = st.rows("train", "audio")
    every = st.rows_in(splits, "audio")
    if "audio" in modalities and (len(rows) or sample_rate is not None):
        counts = Counter(int(r) for r in st.values("audio_sample_rate", rows))
        if sample_rate is not None or not counts:
            spec["sample_rate"], sources["sample_rate"] = int(sample_rate or 16000), "given" if sample_rate else "default"
        else:
            top = max(counts.values())
            tied = sorted(r for r, c in counts.items() if c == top)
            # a tie goes to the higher rate: the lower one would low-pass every clip recorded above it
            spec["sample_rate"] = tied[-1]
            sources["sample_rate"] = f"most common of training rates {dict(sorted(counts.items()))}" + (
                f"; a tie of {', '.join(map(str, tied))} Hz ({top} clips each): the higher" if len(tied) > 1 else "")
        rate = spec["sample_rate"]
        in_train = set(counts) != {rate}
        needs["resample"] = in_train or not st.known("audio_sample_rate", every) or \
            {int(r) for r in st.values("audio_sample_rate", every)} != {rate}
        note("resample", in_train, "sample_rate",
             lambda: f"resampled from rates {_elsewhere(st, every, 'audio_sample_rate')}")
        in_train = not (st.known("audio_channels", rows) and set(st.values("audio_channels", rows)) == {1})
        needs["mono"] = not (st.known("audio_channels", every) and set(st.values("audio_channels", every)) == {1})
        note("mono", in_train, "sample_rate",
             lambda: f"mixed down to mono from channels {_elsewhere(st, every, 'audio_channels')}")
        secs = [float(s) for s in st.values("audio_seconds", rows)] or [1.0]
        if max_seconds is not None:
            spec["max_seconds"], sources["max_seconds"] = float(max_seconds), "given"
        else:
            p95 = math.ceil(round(_p95(secs) * 100, 6)) / 100
            spec["max_seconds"] = min(p95, MAX_AUDIO_SECONDS)
            sources["max_seconds"] = f"95th percentile of durations {_span(min(secs), max(secs))}" + (
                f" is {p95:g} s, capped at {MAX_AUDIO_SECONDS:g} s (longer clips are trimmed; for more, give "
                f"{option_name('max_seconds')})" if p95 > MAX_AUDIO_SECONDS else "")
        in_train = any(abs(s - spec["max_seconds"]) > 1e-6 for s in secs)
        needs["pad_trim"] = in_train or not st.known("audio_seconds", every) or \
            any(abs(float(s) - spec["max_seconds"]) > 1e-6 for s in st.values("audio_seconds", every))
        # a clip much longer than max_seconds is trimmed before it is mixed down and resampled: the
        # stage's time and memory then follow max_seconds, not the clip (an hour at 48 kHz: 690 MB)
        # (recorded only when needed: the inputs of runs on short clips stay as they were)
        if (needs["resample"] or needs["mono"]) and needs["pad_trim"] and (
                not st.known("audio_seconds", every)
                or max(float(s) for s in st.values("audio_seconds", every)) > spec["max_seconds"] + RESAMPLE_MARGIN_SECONDS):
            needs["trim_first"] = True
        note("pad_trim", in_train, "max_seconds", lambda: "padded or trimmed to it from durations "
             + _elsewhere(st, every, lambda r: [_span(min(v), max(v)) for v in [st.values("audio_seconds", r)] if v]))
    if "text" in modalities:
        cap = default_tokenizer().max_len
        if max_tokens is not None:
            if int(max_tokens) > cap:  # collate's token ids hold the tokenizer's first `cap` units, no more
                raise MMDataError(f"max_tokens (--max-tokens) {int(max_tokens)}: the tokenizer keeps the first {cap} "
                                  f"tokens of a caption (mmdata.text.Tokenizer max_len), so the model never sees more; "
                                  f"give at most {cap} (batch['text'] keeps the whole string for a model of your own)")
            spec["max_tokens"], sources["max_tokens"] = int(max_tokens), "given"
        else:
            chars = [int(c) for c in st.values("text_chars", st.rows("train", "text"))]
            spec["max_tokens"] = max(1, min(cap, math.ceil(_p95(chars)) if chars else cap))
            # the index holds characters, not units: a unit is at least one character, so this bounds the tokens
            sources["max_tokens"] = (f"95th percentile of caption characters (an upper bound on tokens), at most {cap}")
        needs["max_tokens"] = spec["max_tokens"] < cap
    return InputSpec(**spec, sources=sources, needs=needs)


def decoded_bytes(st: IndexStats, split: str, modalities: Sequence[str], spec: InputSpec | None = None) -> int:
    """An upper estimate of a split's decoded size in memory (what ``cache=True`` holds), from the
    index: images as uint8 (3 channels unless recorded), audio as float32 (2 channels unless recorded),
    text and Python overhead at 1 KiB a sample.

    The cache holds what the normalize stage returns, so with ``spec`` (the inputs the model gets:
    :func:`effective_inputs`) images count at ``spec.image_size`` x ``spec.channels`` and audio at
    ``spec.sample_rate`` x ``spec.max_seconds``, mono, where the spec fixes them (a 12000x9000 photo
    resized to 128x128 holds 49 KB, not 324 MB); without it, at their stored size.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
        >>> st = IndexStats(t + "/ds")
        >>> decoded_bytes(st, "train", ["image"]), decoded_bytes(st, "train", ["image"], InputSpec(image_size=(8, 8)))
        (19968, 6528)
    """
    rows = st.rows(split)

    def col(name: str, default: float) -> np.ndarray:
        c = st.col[name]
        v = np.full(len(rows), default) if c is None else c[rows]
        return np.nan_to_num(v, nan=default)

    total = 1024.0 * len(rows)
    if "image" in modalities:
        h, w = col("image_height", 0), col("image_width", 0)
        chans = col("image_channels", 3)
        if spec is not None and spec.image_size:
            h, w = np.where(h > 0, spec.image_size[0], 0), np.where(w > 0, spec.image_size[1], 0)
        if spec is not None and spec.image_size and spec.channels:
            chans = np.full(len(rows), float(spec.channels))
        total += float((h * w * chans).sum())
    if "audio" in modalities:
        secs, rate, chans = col("audio_seconds", 0), col("audio_sample_rate", 0), col("audio_channels", 2)
        if spec is not None and spec.sample_rate:
            # the derived stage mixes down and resamples (a recipe's own list may keep the channels);
            # pad_trim brings every clip to max_seconds
            rate = np.where(secs > 0, float(spec.sample_rate), 0)
            if not spec.sources.get("sample_rate", "").startswith("the recipe's"):
                chans = np.ones(len(rows))
            if spec.max_seconds:
                secs = np.where(secs > 0, float(spec.max_seconds), 0)
        total += float((secs * rate * 4 * chans).sum())
    if "text" in modalities:
        total += float(4 * col("text_chars", 0).sum())
    return int(total)


def modality_warnings(st: IndexStats, modalities: Sequence[str], splits: Sequence[str] = RUN_SPLITS) -> list[str]:
    """Warnings for a modality the run uses that no sample of a scored split has (the model sees it
    missing there, so that split's scores measure the other modalities only, e.g. a test split without
    audio), counts from ``index.parquet``; ``splits`` are roles (:func:`split_roles`). An empty split is
    not warned about here (the trainer's split checks say what it lacks).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
        >>> modality_warnings(IndexStats(t + "/ds"), ["image", "audio"])
        []
    """
    out = []
    train = len(st.rows("train"))
    for split in splits:
        n = len(st.rows(split))
        if split == "train" or not n:
            continue
        for m in modalities:
            if m in MODALITIES and not len(st.rows(split, m)):
                has = len(st.rows("train", m))
                out.append(f"the {split} split has no {m} (0 of {n} samples; train: {has} of {train}): the model "
                           f"sees {m} missing for every {split} sample, so its {split} scores measure the other "
                           f"modalities only; re-split so {split} has {m}, or leave {m} out (--modalities)")
    return out


#: a centre crop that keeps under this share of an image's area cuts most of it away (QA38 documents #5)
CROP_KEPT_MIN = 0.5


def crop_warning(st: IndexStats, rows: np.ndarray, hw: tuple[int, int] | None,
                 steps: Sequence[Mapping[str, Any]] | None) -> str | None:
    """The warning when the normalize ``steps`` (``resize`` then ``center_crop`` to ``hw``) keep under
    :data:`CROP_KEPT_MIN` of the area of some training images (``rows``): a tall page or a wide banner of aspect
    ratio far from the crop's loses most of its content (QA38 documents #5: a 120x900 page kept 13%). From the
    index's sizes, vectorised; None when every image keeps more, or without a centre crop.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
        >>> st = IndexStats(t + "/ds")
        >>> crop_warning(st, st.rows("train", "image"), (16, 16), [{"op": "resize"}, {"op": "center_crop"}]) is None
        True
    """
    ops = [step.get("op") for step in steps or ()]
    h_col, w_col = st.col["image_height"], st.col["image_width"]
    if hw is None or "center_crop" not in ops or h_col is None or w_col is None or not len(rows):
        return None
    h, w = h_col[rows], w_col[rows]
    ok = (h > 0) & (w > 0)
    h, w, at = h[ok], w[ok], rows[ok]
    if not len(h):
        return None
    ch, cw = float(hw[0]), float(hw[1])
    scale = np.maximum(ch / h, cw / w) if "resize" in ops else np.ones_like(h)  # resize covers the crop, then cut
    kept = np.minimum(1.0, (ch * cw) / np.maximum(h * scale * w * scale, 1.0))
    low = kept < CROP_KEPT_MIN
    if not low.any():
        return None
    worst = int(np.argmin(kept))
    import pyarrow.parquet as pq

    from mmdata.shards.index import INDEX

    keys = pq.read_table(Path(st.data) / INDEX, columns=["key"]).column("key").take(at[low][:3]).to_pylist()
    # worded by the cut images' own aspect: a 400x6000 banner was called "a tall page" (QA39 ecommerce #10)
    tall = (h * cw > w * ch)[low]
    what = ("tall image (a page)" if tall.all() else "wide image (a banner, a text line)" if not tall.any()
            else "tall or wide image (a page, a banner)")
    return (f"{int(low.sum())} of {len(h)} training images keep under {CROP_KEPT_MIN:.0%} of their area in the "
            f"{hw[0]}x{hw[1]} centre crop (aspect ratios far from the crop's; height x width: the least kept, "
            f"{int(h[worst])}x{int(w[worst])}, keeps {kept[worst]:.0%}; e.g. "
            f"{', '.join(map(repr, keys))}): most of a {what} is cut away before the model sees it; give --image-size HxW near the images' shape, "
            f"or a recipe normalize.image with `resize` (side: longer) then `pad_to_size` to keep the whole image")


#: a value (sample rate, image mode, ...) counts as one class's own when at least this many training samples have it
SHORTCUT_MIN = 3
#: ... and a class is warned of when this share of its labelled training samples have such values
SHORTCUT_SHARE = 0.8
#: classes a shortcut warning names (the rest counted: 2,000 classes made a 69,000-character line)
SHORTCUT_SHOWN = 5

_SHORTCUT_COLUMNS = (("audio", "audio_sample_rate", "sample rate", " Hz"), ("audio", "audio_channels", "channel count", " ch"),
                     ("image", "image_mode", "image mode", ""))


def shortcut_warnings(st: IndexStats, names: Sequence[str] | None, modalities: Sequence[str]) -> list[str]:
    """Warnings when a recording / file property — the sample rate, channel count or image mode, from the
    index — separates the classes of the training split: each of a class's values (of at least
    :data:`SHORTCUT_MIN` samples) seen in no other class, for :data:`SHORTCUT_SHARE` of its samples (QA38
    bioacoustics #5: one species recorded at 384 kHz, the others at 48 kHz — the model can learn the recorder,
    e.g. the empty band above 24 kHz after resampling, not the species). Cheap: numpy over index columns.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
        >>> shortcut_warnings(IndexStats(t + "/ds"), None, ["image", "audio"])
        []
    """
    lab = st.col["label"]
    if lab is None:
        return []
    out = []
    for modality, column, what, unit in _SHORTCUT_COLUMNS:
        col = st.col[column]
        if modality not in modalities or col is None:
            continue
        rows = st.rows("train", modality)
        rows = rows[st.known_at(column, rows) & ~np.isnan(lab[rows])]
        if not len(rows):
            continue
        # the distinct values formatted once, the (value, class) pairs counted in numpy: a Python loop per row
        # cost ~1 s a column at a million rows (QA38 last read)
        labels = lab[rows].astype(np.int64)
        keep = labels >= 0
        uniq, inv = np.unique(np.asarray(col[rows])[keep], return_inverse=True)
        texts = [str(v) if column == "image_mode" else f"{v:g}" for v in uniq.tolist()]
        labels = labels[keep]
        if not labels.size:
            continue
        width = int(labels.max()) + 1
        codes, counts = np.unique(inv.reshape(-1).astype(np.int64) * width + labels, return_counts=True)
        pairs: Counter[tuple[str, int]] = Counter()
        for k, n in zip(codes.tolist(), counts.tolist()):  # summed: two values may print alike (%g)
            pairs[(texts[k // width], k % width)] += n
        per_value: dict[str, set[int]] = {}
        for v, c in pairs:
            per_value.setdefault(v, set()).add(c)
        if len(per_value) < 2 or len(np.unique(labels)) < 2:
            continue
        owned: dict[int, dict[str, int]] = {}  # per class its own values: grouped once (10k classes: linear)
        for (v, c), n in pairs.items():
            if per_value[v] == {c} and n >= SHORTCUT_MIN:
                owned.setdefault(c, {})[v] = n
        totals = np.bincount(labels)
        found = []
        for c in sorted(owned):
            own, total = owned[c], int(totals[c])
            if sum(own.values()) >= SHORTCUT_SHARE * total:
                cls = names[c] if names and 0 <= c < len(names) else str(c)
                vals = sorted(own, key=own.get, reverse=True)
                found.append(f"{' / '.join(v + unit for v in vals[:4])}{' / ...' if len(vals) > 4 else ''} only in "
                             f"{cls} ({sum(own.values())} of {total})")
        if found:
            shown = "; ".join(found[:SHORTCUT_SHOWN]) + (
                f"; and {len(found) - SHORTCUT_SHOWN} more classes" if len(found) > SHORTCUT_SHOWN else "")
            out.append(f"the {what} predicts the label in the training split: {shown}: a model can learn "
                       f"the recording device or the file format instead of the content (e.g. the band a resample leaves "
                       f"empty); record every class with the same devices / formats, or check per-class results by "
                       f"{what} before trusting the scores")
    return out


#: a class whose captions name it in at least this share of them (and others' captions seldom do) leaks its label
LEAK_SHARE = 0.5


def label_leak_warning(units: Mapping[str, Any] | None, names: Sequence[str] | None) -> str | None:
    """The warning when most training captions of a class contain its own name (:func:`text_units`'s
    ``named``: per class [captions read, captions naming it, captions of other classes naming it, an example
    key]): the text field gives the label away (QA38 signals #9: 'capture 0 of BPSK at 14 dB'), so a model with
    text scores that, not the other modalities. None when no class does.

    Example:
        >>> print(label_leak_warning({"named": {"0": [10, 10, 0, "k0"], "1": [10, 2, 0, "k5"]}}, ["BPSK", "QPSK"]))  # doctest: +ELLIPSIS
        10 of 20 training captions read contain their own class name: BPSK in 10 of 10 (e.g. sample 'k0'): ...
    """
    named = (units or {}).get("named") or {}
    hit = {int(c): v for c, v in named.items()
           if v[0] >= SHORTCUT_MIN and v[1] >= LEAK_SHARE * v[0] and v[2] * 10 <= sum(o[0] for k, o in named.items() if k != c)}
    if not hit:
        return None
    read = sum(v[0] for v in named.values())

    def cls(c: int) -> str:
        return names[c] if names and 0 <= c < len(names) else str(c)

    shown = ", ".join(f"{cls(c)} in {v[1]} of {v[0]} (e.g. sample {v[3]!r})" for c, v in sorted(hit.items())[:5])
    return (f"{sum(v[1] for v in hit.values())} of {read} training captions read contain their own class name: {shown}: "
            f"the text gives the label away, so a model reading text learns the name, not the data, and its scores "
            f"measure that; remove the class names from the captions, or leave text out (--modalities)")


def normalize_section(spec: InputSpec) -> dict[str, list[dict[str, Any]]]:
    """The deterministic ``normalize:`` recipe stage that brings every sample to ``spec``
    (:func:`mmdata.augment.recipe.normalize_spec`), without the steps the training statistics prove to
    be no-ops (``spec.needs``).

    Images: ``to_rgb`` / ``to_gray``, then ``resize`` (shorter side, ``area`` interpolation) and
    ``center_crop`` to ``image_size`` — torchvision's Resize + CenterCrop evaluation transform. Audio:
    ``to_mono``, ``resample``, ``pad_trim`` to ``max_seconds`` (keeping the start), after a first
    ``pad_trim`` (``pad: false``) to ``max_seconds`` + :data:`RESAMPLE_MARGIN_SECONDS` when some clip is
    longer than that (``needs["trim_first"]``; the output is the same). Text: ``max_tokens``.

    Example:
        >>> s = InputSpec(image_size=(32, 32), channels=3, needs={"convert": True, "resize": True})
        >>> [step["op"] for step in normalize_section(s)["image"]]
        ['to_rgb', 'resize', 'center_crop']
    """
    from mmdata.augment.recipe import normalize_spec

    needs = spec.needs

    def need(step: str, value: Any) -> Any:
        return value if value is not None and needs.get(step, True) else None

    out = normalize_spec(image_size=need("resize", spec.image_size and list(spec.image_size)),
                         channels=need("convert", spec.channels if spec.image_size else None),
                         sample_rate=need("resample", spec.sample_rate), mono=bool(spec.sample_rate and needs.get("mono", True)),
                         seconds=need("pad_trim", spec.max_seconds if spec.sample_rate else None),
                         max_tokens=need("max_tokens", spec.max_tokens))
    audio = [step["op"] for step in out.get("audio", [])]
    if needs.get("trim_first") and ("resample" in audio or "to_mono" in audio) and "pad_trim" in audio:
        # keep max_seconds + a margin at the clip's own rate first; the final pad_trim cuts exactly
        out["audio"] = [{"op": "pad_trim", "seconds": round(float(spec.max_seconds) + RESAMPLE_MARGIN_SECONDS, 6),
                         "pad": False}, *out["audio"]]
    return out


def eval_section(spec: InputSpec, normalize: Mapping[str, list[dict[str, Any]]] | None, own: Sequence[str],
                 modalities: Sequence[str], channels: int | None) -> dict[str, list[dict[str, Any]]]:
    """The model's complete evaluation transform (``metrics.json["eval_normalize"]``): what brings a sample in
    *any* format to the format the model was trained on — unlike the recorded ``normalize`` stage, which leaves
    out the steps the training data did not need (all 16x16 images: no resize). Every step of
    :func:`normalize_section` at ``spec`` (channels, resize + centre crop to ``image_size``, ``to_mono``,
    ``resample`` to ``sample_rate``, ``pad_trim`` to ``max_seconds``, ``max_tokens``); a modality in ``own``
    (the recipe's own ``normalize:`` lists) keeps the list training ran (``normalize[m]``), completed with
    the encoder's channel step (:func:`mmdata.train.contrastive.model_format`). On data already in the
    model's format every added step is a no-op.

    Example:
        >>> s = InputSpec(image_size=(16, 16), channels=1, sample_rate=8000, max_seconds=0.8, max_tokens=33)
        >>> e = eval_section(s, {"text": [{"op": "max_tokens", "n": 33}]}, [], ["image", "audio"], 1)
        >>> [o["op"] for o in e["image"]], [o["op"] for o in e["audio"]]
        (['to_gray', 'resize', 'center_crop'], ['pad_trim', 'to_mono', 'resample', 'pad_trim'])
    """
    from dataclasses import replace

    from mmdata.augment.recipe import load_recipe
    from mmdata.train.contrastive import model_format

    every = normalize_section(replace(spec, needs={"trim_first": True}))
    out = {m: list((normalize or {}).get(m) or []) if m in own else every.get(m, []) for m in modalities}
    out = model_format({m: v for m, v in out.items() if v}, modalities, channels)
    return load_recipe({"normalize": out}).to_dict().get("normalize", {}) if out else {}


def with_normalize(recipe: Any, spec: InputSpec) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The recipe the trainer runs: ``recipe`` (path / YAML / dict / Recipe / None) with the derived
    normalize stage, where a modality's list in the recipe's own ``normalize:`` replaces the derived
    steps of that modality (the other modalities keep theirs). Returns (recipe dict, the normalize
    stage used), both canonical (validated, every argument explicit).

    Example:
        >>> s = InputSpec(max_tokens=8, needs={"max_tokens": True})
        >>> rec, norm = with_normalize({"normalize": {"image": [{"op": "to_rgb"}]}}, s)
        >>> sorted(norm), norm["text"][0]["n"], norm["text"][0]["op"]
        (['image', 'text'], 8, 'max_tokens')
    """
    from mmdata.augment.recipe import load_recipe

    full = load_recipe(recipe).with_normalize(normalize_section(spec), where="derived normalize").to_dict()
    return full, full.get("normalize", {})


def training_resamples(recipe: Any, rate: int) -> list[str]:
    """The steps (children too) of a recipe's training sections — not ``normalize`` — that resample audio to
    another rate than ``rate``, the one the model takes: training batches would reach it at that rate while val
    and test come at ``rate`` (the review of QA28: the model refused the first batch, mid-run, saying "trained at").

    Example:
        >>> training_resamples({"audio": [{"op": "resample", "rate": 16000}], "normalize": {"audio": [
        ...     {"op": "resample", "rate": 8000}]}}, 8000)
        ['audio[0] (16000 Hz)']
    """
    import warnings

    from mmdata.augment.recipe import _flat, load_recipe

    with warnings.catch_warnings():  # the recipe's own warnings were given when the trainer loaded it
        warnings.simplefilter("ignore")
        sections = load_recipe(recipe).sections  # the training sections (normalize is apart)
    return [f"{op.where} ({int(op.rate)} Hz)" for ops in sections.values() for op in _flat(ops)
            if op.name == "resample" and int(op.rate) != int(rate)]


def spec_ops(recipe: Any) -> list[str]:
    """The recipe steps (children too) that write or read ``spec``, the log-mel features: ``logmel``,
    ``freq_mask``, ``time_mask`` with ``target: spec``. The bundled trainer computes its own log-mel from the
    waveform and never reads ``spec``, so these change nothing it trains on.

    Example:
        >>> spec_ops({"normalize": {"audio": [{"op": "logmel"}]}, "audio": [{"op": "gain"}, {"op": "freq_mask"}]})
        ['normalize.audio[0]', 'audio[1]']
    """
    from mmdata.augment.recipe import acts_on_spec, load_recipe

    out: list[str] = []

    def walk(steps: Sequence[Any]) -> None:
        for st in steps:
            if acts_on_spec(st.op):
                out.append(st.op.where)
            walk(st.children)

    walk(load_recipe(recipe).steps)
    return out


ON_ERROR = ("raise", "skip")


#: why the bundled trainer ignores a recipe's spec ops (train's warning, ablate's design warning)
SPEC_UNUSED = ("the bundled trainer computes its own log-mel from the waveform and never reads 'spec', so they change "
               "nothing it trains on (waveform ops such as time_mask with target: wave, gain and noise do reach it)")


def choose_modalities(st: IndexStats, requested: Sequence[str] | None,
                      card: dict[str, Any] | None = None, *, option: str = "--modalities (modalities=)") -> tuple[list[str], dict[str, str]]:
    """The modalities a run uses, and those left out with why.

    ``requested=None``: every modality that at least one training sample has, in the order image,
    audio, text (a modality some samples lack stays: its presence mask says which). A requested
    modality that no training sample has is an error naming it, the split and what the data has
    (training split counts from ``index.parquet``; all splits from the card, ``dataset.json``), named
    as ``option`` (``--modalities``, or ``trainer.modalities`` in an ablation recipe).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
        >>> choose_modalities(IndexStats(t + "/ds"), None)
        (['image', 'audio', 'text'], {})
    """
    n = len(st.rows("train"))
    counts = {m: len(st.rows("train", m)) for m in MODALITIES}
    has = ", ".join(f"{m} ({c} of {n} samples)" for m, c in counts.items() if c) or "no image, audio or text"
    if requested is None:
        used = [m for m in MODALITIES if counts[m]]
        if not used:
            raise MMDataError(f"{st.data}: no sample of the train split has image, audio or text; nothing to train on"
                              + _other_fields(card))
        return used, {m: f"no sample of the train split has {m}; it has {has}" for m in MODALITIES if not counts[m]}
    used = list(requested)
    shown = ",".join(used)
    unknown = [m for m in used if m not in MODALITIES]
    if unknown or not used:
        raise MMDataError(f"{option} {shown!r}: {', '.join(map(repr, unknown)) or 'none given'}; "
                          f"choose from {', '.join(MODALITIES)}")
    absent = [m for m in used if not counts[m]]
    if absent:
        everywhere = {m: int(v.get("count", 0)) for m, v in ((card or {}).get("modalities") or {}).items()
                      if m in MODALITIES and isinstance(v, dict)}
        anywhere = ", ".join(f"{m} ({c})" for m, c in everywhere.items() if c)
        raise MMDataError(f"{option} {shown}: no sample of the train split of {st.data} has {' or '.join(absent)}; "
                          f"the train split has {has}" + (f"; all splits (dataset.json): {anywhere}" if everywhere else "")
                          + f"; drop it from {option}, or leave {option} out to use the modalities the "
                          "training split has")
    return used, {}


def _recipe_ops(section: str, steps: list[dict[str, Any]]) -> list[Any]:
    from mmdata.augment.recipe import load_recipe

    return list(load_recipe({"normalize": {section: steps}}).normalize_sections.get(section, []))


def _image_out(op: Any, hw: tuple[int, int] | None) -> tuple[int, int] | None:
    """An image normalize op's output (height, width) for an input size (None: unknown)."""
    name = op.name
    if name == "resize":
        return op.out_size(1, 1) if op.side == "exact" else (None if hw is None else op.out_size(*hw))
    if name == "center_crop":  # pads smaller images: always exactly its size
        return int(op.size[0]), int(op.size[1])
    if hasattr(op, "window"):  # pad_to_size and other windows depend on the input
        return None if hw is None else tuple(int(v) for v in op.window(*hw)[2:])  # type: ignore[return-value]
    return hw


#: random image ops whose every output is their ``size`` (a failed ``p`` draw too: random_resized_crop then
#: resizes the whole image, random_crop crops the centre)
SIZED_OPS = ("random_resized_crop", "random_crop")


def trained_image_size(recipe: Any, hw: tuple[int, int] | None) -> tuple[tuple[int, int], str, str] | None:
    """The size the random ``image`` section of ``recipe`` makes of images that enter it at ``hw`` (the
    normalize stage's output, which is what val and test get), when that is another size: (size, the last
    step that sets it, as ``image[j]``, its op name). None when the section keeps ``hw``, or when its output
    cannot be told from the recipe (``hw`` mixed, a ``one_of`` / ``some_of`` with a resizing child, a resize
    with ``p`` < 1, an op of one's own that changes the layout).

    Example:
        >>> trained_image_size({"image": [{"op": "hflip"}, {"op": "random_resized_crop", "size": [64, 64]}]}, (48, 64))
        ((64, 64), 'image[1]', 'random_resized_crop')
        >>> trained_image_size({"image": [{"op": "random_crop", "size": [16, 16], "padding": 2}]}, (16, 16)) is None
        True
    """
    from mmdata.augment.compose import Composite
    from mmdata.augment.recipe import load_recipe

    def keeps(op: Any) -> bool:
        if isinstance(op, Composite):
            return all(keeps(c) for c in op.children)
        return bool(getattr(op, "keeps_layout", False)) or op.name in CHANNEL_OPS["image"]

    if hw is None:
        return None
    out, last = (int(hw[0]), int(hw[1])), None
    for j, op in enumerate(load_recipe(recipe).sections.get("image", [])):
        if keeps(op):
            continue
        if op.name in SIZED_OPS:
            size = op.size if isinstance(op.size, (list, tuple)) else [op.size, op.size]
            new: tuple[int, int] | None = (int(size[0]), int(size[1]))
        elif op.name in ("resize", "center_crop", "pad_to_size") and float(op.p) >= 1.0:
            new = _image_out(op, out)
        else:  # one's own op, a composite that resizes, a resize some images skip: sizes the recipe does not tell
            return None
        if new is None:
            return None
        out, last = new, (f"image[{j}]", op.name)
    return None if last is None or out == (int(hw[0]), int(hw[1])) else (out, *last)


#: card fields the bundled trainer reads besides the modalities it trains on, or that hold labels and metadata
_READ_FIELDS = ("label", "cls", "json", "meta")


def _other_fields(card: Mapping[str, Any] | None) -> str:
    """What a dataset without image, audio or text holds instead (its card's fields, e.g. ``.npy`` arrays), and
    the way to train on them: the bundled model reads only image, audio and text (QA36 timeseries #5).

    Example:
        >>> _other_fields({"modalities": {"array": {"codecs": ["npy"], "count": 32}, "label": {"count": 32}}})[:64]
        ': the stored fields are `array` (.npy, 32 samples); the bundled '
    """
    mods = (card or {}).get("modalities") or {}
    shown = []
    for name, info in mods.items() if isinstance(mods, Mapping) else ():
        if str(name) in _READ_FIELDS or not isinstance(info, Mapping):
            continue
        codecs = ", ".join(f".{c}" for c in info.get("codecs") or [] if isinstance(c, str))
        count = info.get("count", 0)
        shown.append(f"`{name}` ({codecs + ', ' if codecs else ''}{count} sample{'s' * (count != 1)})")
    fields = f"the stored fields are {', '.join(shown)}; " if shown else ""
    return (f": {fields}the bundled model (mmdata train; mmdata ablate without a trainer) reads only image, audio "
            "and text; to train on other fields (arrays: time series, features) write your own training function on "
            "mmdata.loader and run it with mmdata ablate --trainer package.module:function (or the recipe's "
            "trainer: {entry: ...}); see docs/ablation.md \"Your own trainer\"")


def unused_fields(card: Mapping[str, Any], modalities: Sequence[str]) -> dict[str, int]:
    """The stored fields (``dataset.json``'s ``modalities``: named members such as ``frame1.jpg``,
    ``depth.png``, ``mask.npy``) that the bundled model does not read, with how many samples hold each:
    every field but the modalities it trains on and the label / JSON metadata fields. The standard image,
    audio and text fields it leaves out are not listed (the run says why it leaves a modality out).

    Example:
        >>> unused_fields({"modalities": {"image": {"count": 4}, "frame1.jpg": {"count": 4}, "label": {"count": 4},
        ...                               "caps.json": {"count": 4}}}, ["image"])
        {'frame1.jpg': 4}
    """
    mods = card.get("modalities") or {}
    out: dict[str, int] = {}
    for name, info in mods.items() if isinstance(mods, Mapping) else ():
        name = str(name)
        if name in MODALITIES or name in modalities or name in _READ_FIELDS or name.endswith(".json"):
            continue
        count = info.get("count", 0) if isinstance(info, Mapping) else 0
        out[name] = int(count) if isinstance(count, (int, float)) and not isinstance(count, bool) else 0
    return dict(sorted(out.items()))


#: the normalize ops that set each modality's channel count: a recipe's own list without one keeps the decoded counts
CHANNEL_OPS = {"image": ("to_rgb", "to_gray"), "audio": ("to_mono",)}
#: what the message asks for, per modality
_CHANNEL_FIX = {"image": "add {op: to_rgb} as its first step (or {op: to_gray} for a greyscale model)",
                "audio": "add {op: to_mono} as its first step"}


def decoded_channels(st: IndexStats, modality: str, rows: np.ndarray) -> dict[int, np.ndarray]:
    """``rows`` by the channel count the reader decodes for ``modality`` (``image`` or ``audio``), from the
    index alone: an image's mode (:func:`mmdata.shards.inspect.reader_channels`; ``P`` and ``RGBA`` decode
    to 3), else its band count where that decides it; a clip's ``audio_channels``. Rows the index does
    not tell are left out.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
        >>> st = IndexStats(t + "/ds")
        >>> {c: len(r) for c, r in decoded_channels(st, "image", st.rows("train", "image")).items()}
        {3: 6}
    """
    out = np.full(len(rows), -1, dtype=np.int64)
    if modality == "image":
        from mmdata.shards.inspect import reader_channels

        modes = st.col["image_mode"]
        if modes is not None:
            at = modes[rows]
            for mode in {m for m in at.tolist() if m is not None}:
                out[at == mode] = reader_channels(str(mode)) or -1
        bands = st.col["image_channels"]
        if bands is not None:  # no mode: inspect's rule (2 bands: LA, 1; 3 or 4: RGB; 1 band: grey or a palette, unknown)
            from mmdata.shards.inspect import _READER_CHANNELS_OF_BANDS

            at = bands[rows]
            for n, c in _READER_CHANNELS_OF_BANDS.items():
                out[(out < 0) & (at == n)] = c
    else:
        chans = st.col["audio_channels"]
        if chans is not None:
            out = np.nan_to_num(chans[rows], nan=-1).astype(np.int64)
    return {int(c): rows[out == c] for c in sorted(set(out.tolist())) if c > 0}


def _sets_channels(op: Any) -> bool:
    """Whether a recipe op converts channels: a built-in of :data:`CHANNEL_OPS`, or an image op of one's
    own that declares ``out_channels`` (docs/extending.md: "when the channel count changes")."""
    from mmdata.augment.image import ImageOp

    return isinstance(op, ImageOp) and type(op).out_channels is not ImageOp.out_channels


def channel_mix(st: IndexStats, modality: str, ops: Sequence[Any], splits: Sequence[str] = RUN_SPLITS) -> str | None:
    """Why a recipe's own ``normalize.<modality>`` list (its ops, or their names) cannot be batched on the
    dataset of ``st``, or None: without a channel op (:data:`CHANNEL_OPS`, or an op of one's own declaring
    ``out_channels``) the samples keep their decoded
    channel counts, and when the splits the run reads hold more than one, collate cannot stack a batch —
    the run would fail at its first batch (QA round 24: after the set-up lines, a traceback). The reason
    names the counts, a few sample keys of each, and the fix.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=6), t + "/ds", progress=False)
        >>> channel_mix(IndexStats(t + "/ds"), "image", ["resize"], ["train"]) is None  # every image is RGB
        True
    """
    names = [op if isinstance(op, str) else op.name for op in ops]
    if any(n in CHANNEL_OPS[modality] for n in names) or any(_sets_channels(op) for op in ops):
        return None
    groups = decoded_channels(st, modality, st.rows_in(["train", *splits], modality))
    if len(groups) < 2:
        return None
    import pyarrow.parquet as pq

    from mmdata.shards.index import INDEX

    try:  # only on this error path: the keys make the message checkable
        keys = pq.read_table(Path(st.data) / INDEX, columns=["key"]).column("key")
    except Exception:  # noqa: BLE001 - the counts alone still say it
        keys = None
    noun = "images" if modality == "image" else "clips"

    def group(c: int, rows: np.ndarray) -> str:
        shown = f", e.g. {', '.join(repr(str(k)) for k in keys.take(rows[:3]).to_pylist())}" if keys is not None else ""
        return f"{c} channel{'s' * (c != 1)}: {len(rows)} {noun}{shown}"

    where = ", ".join(names) or "empty"
    which = f"the {', '.join(dict.fromkeys(['train', *splits]))} splits"
    return (f"normalize.{modality} ({where}) has no {' / '.join(CHANNEL_OPS[modality])}, and the {noun} of {which} "
            f"decode to different channel counts ({'; '.join(group(c, r) for c, r in groups.items())}): no batch "
            f"could stack them, so training would fail at its first batch. A recipe's own normalize.{modality} "
            f"replaces the derived steps, their channel conversion included; {_CHANNEL_FIX[modality]} in "
            f"normalize.{modality}")


def check_recipe_channels(recipe: Any, st: IndexStats, modalities: Sequence[str],
                          splits: Sequence[str] = RUN_SPLITS) -> None:
    """Raise :func:`channel_mix`'s reason for the first of ``modalities`` whose list in ``recipe``'s own
    ``normalize:`` (path / dict / Recipe) leaves mixed channel counts: a set-up check, before any epoch.

    Example:
        >>> check_recipe_channels(None, None, ["image"])  # no recipe of one's own: the derived steps convert
    """
    from mmdata.augment.recipe import load_recipe

    if recipe is None:
        return
    own = load_recipe(recipe).normalize_sections
    for m in ("image", "audio"):
        if m in modalities and m in own:
            why = channel_mix(st, m, own[m], splits)
            if why:
                raise MMDataError(why)


def effective_inputs(spec: InputSpec, normalize: dict[str, list[dict[str, Any]]], modalities: Sequence[str],
                     st: IndexStats | None = None, splits: Sequence[str] = RUN_SPLITS) -> InputSpec:
    """What the model gets from the ``normalize`` stage that runs (:func:`with_normalize`'s second
    result): ``spec`` where that stage is the one derived from it; where a recipe's own list replaced
    a modality's steps, that modality's values follow those steps (applied to the sizes, modes, rates
    and durations of every split in ``splits``, from ``st``: the model sees val and test too), with
    ``sources`` naming the recipe's steps. A value the steps leave mixed is ``None`` (its source says so).

    Example:
        >>> s = InputSpec(image_size=(32, 32), channels=3, needs={"resize": False, "convert": False})
        >>> e = effective_inputs(s, {"image": [{"op": "resize", "size": [64, 48], "side": "exact"}]}, ["image"])
        >>> e.image_size, e.channels, e.sources["image_size"]
        ((64, 48), 3, "the recipe's normalize.image (resize)")
    """
    _, derived = with_normalize(None, spec)
    own = [m for m in MODALITIES if m in modalities and normalize.get(m, []) != derived.get(m, [])]
    if not own:
        return spec
    from mmdata.text import default_tokenizer

    values = {k: getattr(spec, k) for k in ("image_size", "channels", "sample_rate", "max_seconds", "max_tokens")}
    sources = dict(spec.sources)
    needs = spec.needs
    empty = np.zeros(0, dtype=np.int64)
    for m in own:
        ops = _recipe_ops(m, normalize.get(m, []))
        where = f"the recipe's normalize.{m} (" + ", ".join(op.name for op in ops) + ")" if ops else \
            f"the recipe's empty normalize.{m}"
        rows = st.rows_in(["train", *splits], m) if st is not None else empty
        mix = channel_mix(st, m, ops, splits) if st is not None and m in CHANNEL_OPS else None
        if mix:  # refused at set-up: collate would raise at the first batch, after the set-up lines
            raise MMDataError(mix)
        if m == "image":
            sized = rows[st.known_at("image_height", rows) & st.known_at("image_width", rows)] if st is not None else empty
            hws: set[tuple[int, int] | None] = set(zip(map(int, st.values("image_height", sized)),
                                                       map(int, st.values("image_width", sized)))) if st is not None else set()
            if not hws:
                hws = {spec.image_size if spec.image_size and not needs.get("resize", True) else None}
            chans = spec.channels if not needs.get("convert", True) else None
            for op in ops:
                hws = {_image_out(op, hw) for hw in hws}
                if op.name == "to_rgb":
                    chans = 3
                elif op.name == "to_gray":
                    chans = int(op.channels)
            known = sorted(hw for hw in hws if hw is not None)
            values["image_size"] = known[0] if len(hws) == 1 and known else None
            values["channels"] = chans
            sources["image_size"] = where if values["image_size"] else (
                f"{where} leaves {len(known)} sizes {known[0][0]}x{known[0][1]}..{known[-1][0]}x{known[-1][1]}"
                if len(known) > 1 else f"{where} leaves the decoded sizes")
            sources["channels"] = where if chans else f"{where} leaves the decoded channels"
        elif m == "audio":
            rates: set[int | None] = {int(r) for r in st.values("audio_sample_rate", rows)} if st is not None else set()
            secs = [float(x) for x in st.values("audio_seconds", rows)] if st is not None else []
            if not rates:
                rates = {spec.sample_rate if not needs.get("resample", True) else None}
            lo, hi = (min(secs), max(secs)) if secs else (spec.max_seconds, spec.max_seconds)
            if not secs and needs.get("pad_trim", True):
                lo = hi = None
            for op in ops:
                if op.name == "resample":
                    rates = {int(op.rate)}
                elif op.name == "pad_trim" and lo is not None and hi is not None:
                    t = float(op.seconds)
                    lo, hi = (max(lo, t), max(hi, t)) if op.pad else (lo, hi)
                    lo, hi = (min(lo, t), min(hi, t)) if op.trim else (lo, hi)
                elif op.name == "pad_trim" and op.pad and op.trim:
                    lo = hi = float(op.seconds)
            values["sample_rate"] = next(iter(rates)) if len(rates) == 1 and None not in rates else None
            sources["sample_rate"] = where if values["sample_rate"] else f"{where} leaves rates {sorted(r for r in rates if r)}"
            if lo is not None and hi is not None and abs(hi - lo) <= 1e-6:
                values["max_seconds"], sources["max_seconds"] = round(hi, 6), where
            else:
                values["max_seconds"] = None if hi is None else round(hi, 6)
                span = _span(lo, hi) if lo is not None and hi is not None else "of the decoded lengths"
                sources["max_seconds"] = f"{where} leaves clips {span} (batches padded to their longest)"
        else:
            caps = [int(op.n) for op in ops if op.name == "max_tokens"]
            window = default_tokenizer().max_len
            if caps and min(caps) > window:  # as --max-tokens: the ids hold the tokenizer's first `window` units
                raise MMDataError(f"{where}: max_tokens n={min(caps)}: the tokenizer keeps the first {window} tokens of "
                                  f"a caption (mmdata.text.Tokenizer max_len), so the model never sees more; give n "
                                  f"at most {window}")
            values["max_tokens"] = min(caps) if caps else window
            sources["max_tokens"] = where if caps else f"{where}: the tokenizer's limit"
    return InputSpec(**values, sources=sources, needs=dict(needs))


#: the modality whose ``normalize`` list sets each input option
OPTION_MODALITY = {"image_size": "image", "channels": "image", "sample_rate": "audio", "max_seconds": "audio",
                   "max_tokens": "text"}


def _shown_input(key: str, value: Any) -> str:
    """An input value as the trainer prints it: ``48x48``, ``16000 Hz``, ``2 s``; None: what is left mixed."""
    if value is None:
        return {"image_size": "the decoded sizes", "channels": "the decoded channels", "sample_rate": "the decoded rates",
                "max_seconds": "the decoded lengths", "max_tokens": "the tokenizer's limit"}[key]
    if key == "image_size":
        return "x".join(map(str, value))
    if key == "channels":
        return f"{value} channel{'s' * (value != 1)}"
    return {"sample_rate": f"{value} Hz", "max_seconds": f"{value:g} s"}.get(key, f"{value} tokens")


def check_given_inputs(given: Mapping[str, Any], spec: InputSpec, inputs: InputSpec) -> None:
    """Refuse an input option that was given (``train(image_size=48)``, ``--image-size 48``) when a
    recipe's own ``normalize`` list for its modality replaces the derived steps and makes another value
    (``spec``: :func:`derive_inputs` with the options; ``inputs``: :func:`effective_inputs`). The recipe's
    list wins per modality, so the option would be silently ignored — and the options are how every fold
    of a cross-validation trains the same model. A value the recipe's steps agree with is fine.

    Example:
        >>> s = InputSpec(image_size=(48, 48), sources={"image_size": "given"})
        >>> e = InputSpec(image_size=(24, 24), sources={"image_size": "the recipe's normalize.image (resize)"})
        >>> try:
        ...     check_given_inputs({"image_size": 48}, s, e)
        ... except MMDataError as exc:
        ...     print(str(exc).split(":")[0])
        image_size (--image-size) 48x48 is given, but the recipe's normalize.image (resize) makes 24x24
    """
    for key, value in given.items():
        if value is None or key not in OPTION_MODALITY:
            continue
        mine, theirs = getattr(spec, key), getattr(inputs, key)
        where = inputs.sources.get(key, "")
        if mine == theirs or not where.startswith("the recipe's"):
            continue
        m = OPTION_MODALITY[key]
        # a list that leaves the value to the data says so itself (QA: "... leaves the decoded channels makes the
        # decoded channels")
        made = f" makes {_shown_input(key, theirs)}" if theirs is not None else (
            "" if "leaves" in where else f" leaves {_shown_input(key, None)}")
        raise MMDataError(f"{option_name(key)} {_shown_input(key, mine)} is given, but {where}{made}: a recipe's own "
                          f"normalize.{m} list replaces the derived "
                          f"{m} steps, so the option would be ignored. Drop {option_name(key)}, or change normalize.{m} "
                          f"in the recipe (or drop it there, and the option sets the {m} input)")
