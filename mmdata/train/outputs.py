"""Run outputs: ``predictions.parquet`` streamed, then ``metrics.json`` and ``model.pt``, replaced together.

Predictions are appended batch by batch to a temp file beside the target (a Parquet row group per
batch), so memory does not grow with the split. Every output is written to a temp name beside its
target first and the files are renamed into place only once all of them are written
(:func:`write_outputs`): a run that fails on its way out (a full disk) leaves the folder as it was —
an earlier run's files all kept, never this run's metrics beside the earlier model — and a killed run
leaves no torn file.
"""

from __future__ import annotations

import errno
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmdata.errors import MMDataError
from mmdata.io import NO_ROOM as _NO_ROOM
from mmdata.io import can_write_in, finite, make_temp, no_room_advice, published_mode, remove_stale_temps
from mmdata.types import Batch
from mmdata.train.config import RUN_OUTPUTS
from mmdata.urls import lookup

#: what a run writes into its output folder (and, with ``--pretrain``, :data:`mmdata.train.contrastive.CHECKPOINT`)
OUTPUT_FILES = ("metrics.json", "predictions.parquet", "model.pt")
#: the figures ``mmdata match`` / ``mmdata audit-alignment`` write into a run's folder by default
#: (``match.png``, ``match-val.png``, ``alignment.png``): they describe that run's model, so a rerun removes them
MODEL_FIGURES = ("match", "alignment")


def model_figures(metrics: bytes | None) -> set[str]:
    """The names of :data:`MODEL_FIGURES` a run's folder may hold: ``match.png`` and ``match-<split>.png`` for
    the splits ``metrics`` (a run's metrics.json) counts, the same for ``alignment`` — not any ``match-*.png``
    (the review of QA28: a user's ``alignment-figure3-for-paper.png`` was removed by a rerun).

    Example:
        >>> sorted(model_figures(b'{"samples": {"val": {}, "test": {}}}'))[:3]
        ['alignment-test.png', 'alignment-val.png', 'alignment.png']
    """
    try:
        splits = [str(s) for s in (json.loads(metrics or b"{}").get("samples") or {})]
    except (ValueError, AttributeError):
        splits = []
    return {f"{fig}{'-' + s if s else ''}.png" for fig in MODEL_FIGURES for s in ["", *splits]}
#: the file a run's outputs are sealed with (:func:`publish`)
SEAL = "metrics.json"


class PredictionWriter:
    """A prediction sink for :func:`mmdata.train.evaluate.evaluate`: one row per sample with ``key``,
    ``split`` (a name, or sample key -> its split in index.parquet: the fold, with folds as the test
    role), ``label`` (-1 when unlabelled), ``pred``, ``prob_label`` (null when unlabelled) and ``probs``
    — or, for a multi-label / regression ``target`` (:class:`mmdata.train.targets.Target`), ``key``,
    ``split`` and the target's columns (:meth:`~mmdata.train.targets.Target.predictions`: ``labels``,
    ``pred_labels``, ``probs`` / ``target``, ``pred``; null targets when unlabelled) — and last
    ``source_key``: what the sample was sharded from (a file's path in its folder, a manifest's key), from
    ``source_keys`` (sample key -> source key: :func:`source_keys`), to join predictions back to the
    user's files; null for a key it lacks (or without ``source_keys``). A class run whose classes have names
    (``label_names``, or the ``target``'s) adds, after it, ``label_name`` (the label's class name; null
    unlabelled) and ``pred_name`` (the predicted class's): the columns ``mmdata evaluate`` writes too. ``probs`` holds every class's
    probability: 8 bytes a class and sample before compression (5,000 classes: about 40 KB a sample). The
    schema's metadata (key ``mmdata``, JSON: :func:`prediction_metadata`) says what the ids mean: the target
    and its class names (``label_names``, else the ``target``'s), so a file copied out of its run folder reads.

    Example:
        >>> import tempfile, pyarrow.parquet as pq
        >>> from mmdata import Sample, collate
        >>> p = tempfile.mkdtemp() + "/predictions.parquet"
        >>> w = PredictionWriter(p, split="test", source_keys={"a": "photos/a.png"})
        >>> w(collate([Sample("a", {"label": 1}), Sample("b", {})]), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        >>> w.close()
        >>> pq.read_table(p).select(["pred", "source_key"]).to_pylist()
        [{'pred': 1, 'source_key': 'photos/a.png'}, {'pred': 0, 'source_key': None}]
    """

    def __init__(self, path: str | Path, split: str | Mapping[str, str], target: Any = None,
                 source_keys: Mapping[str, str | None] | None = None,
                 label_names: Sequence[str] | None = None) -> None:
        import pyarrow as pa

        self.path = Path(path)
        self.split = split
        self.target = None if target is None or target.kind == "classes" else target
        self.source_keys: Mapping[str, str | None] = source_keys or {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = make_temp(self.path)  # named after this process: a rerun can tell it is gone
        os.close(fd)
        head = [("key", pa.string()), ("split", pa.string())]
        if self.target is None:
            self.schema = pa.schema([*head, ("label", pa.int64()), ("pred", pa.int64()), ("prob_label", pa.float64()),
                                     ("probs", pa.list_(pa.float64()))])
        elif self.target.kind == "multilabel":
            self.schema = pa.schema([*head, ("labels", pa.list_(pa.string())), ("pred_labels", pa.list_(pa.string())),
                                     ("probs", pa.list_(pa.float64()))])
        else:
            self.schema = pa.schema([*head, ("target", pa.float64()), ("pred", pa.float64())])
        # after the scores: the columns before it keep their positions (readers that select by position)
        self.schema = self.schema.append(pa.field("source_key", pa.string()))
        # a class run's names: label_name / pred_name, as mmdata evaluate writes them (one schema for both)
        names = label_names if label_names is not None else getattr(target, "names", None)
        self.class_names = [str(n) for n in names or []] if self.target is None else []
        if self.class_names:
            self.schema = self.schema.append(pa.field("label_name", pa.string())).append(pa.field("pred_name", pa.string()))
        self.schema = self.schema.with_metadata(prediction_metadata(target, label_names))
        self._writer: Any = None
        self.rows = 0

    def _columns(self, batch: Batch, logits: torch.Tensor) -> dict[str, Any]:
        import pyarrow as pa

        if self.target is not None:
            return self.target.predictions(batch, logits)
        probs = torch.softmax(logits.double(), 1).cpu()
        labels = batch["label"].cpu() if "label" in batch else torch.full((len(batch),), -1, dtype=torch.int64)
        has = labels >= 0
        prob_label = probs.gather(1, labels.clamp(min=0)[:, None]).squeeze(1)
        # Arrow arrays straight from the tensors' memory: a Python float per class and sample (.tolist())
        # made a 5,000-class test split millions of objects, for the same values
        b, c = probs.shape
        probs_np = probs.numpy()
        pred = probs.argmax(1).numpy()
        cols = {"label": pa.array(labels.to(torch.int64).numpy()), "pred": pa.array(pred),
                "prob_label": pa.array(prob_label.numpy(), mask=~has.numpy()),
                "probs": pa.ListArray.from_arrays(pa.array(np.arange(0, (b + 1) * c, c, dtype=np.int32)),
                                                  pa.array(probs_np.reshape(-1)))}
        if self.class_names:
            names = self.class_names
            cols["label_name"] = [names[i] if 0 <= i < len(names) else None for i in labels.tolist()]
            cols["pred_name"] = [names[i] if i < len(names) else None for i in pred.tolist()]
        return cols

    def __call__(self, batch: Batch, logits: torch.Tensor) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        split = ([self.split] * len(batch) if isinstance(self.split, str)
                 else [self.split.get(k) for k in batch.keys])  # per sample: folds read as the test role
        table = pa.table({"key": batch.keys, "split": split, **self._columns(batch, logits),
                          "source_key": [self.source_keys.get(k) for k in batch.keys]}, schema=self.schema)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, self.schema)
        self._writer.write_table(table)
        self.rows += len(batch)

    def finish(self) -> str:
        """Finish the file under its temp name and return that name (:func:`write_outputs` moves it into
        place with the run's other outputs); on an error the temp file is removed."""
        import pyarrow.parquet as pq

        try:
            if self._writer is None:
                pq.write_table(self.schema.empty_table(), self.tmp)
            else:
                writer, self._writer = self._writer, None
                writer.close()
            os.chmod(self.tmp, published_mode())
        except BaseException:
            Path(self.tmp).unlink(missing_ok=True)
            raise
        return self.tmp

    def close(self) -> None:
        """Finish the file and move it into place."""
        os.replace(self.finish(), self.path)

    def abort(self) -> None:
        """Drop the partial file (the pass failed)."""
        try:
            if self._writer is not None:
                writer, self._writer = self._writer, None
                writer.close()  # a full disk fails here again: the partial file goes all the same
        except OSError:
            pass
        finally:
            Path(self.tmp).unlink(missing_ok=True)


def prediction_metadata(target: Any = None, label_names: Sequence[str] | None = None) -> dict[bytes, bytes]:
    """The schema metadata of ``predictions.parquet``: ``{b"mmdata": JSON}`` holding ``target`` (``kind``:
    ``classes`` / ``multilabel`` / ``regression``; ``key``: the metadata key, null for the card's label) and
    ``names``: what ``label`` / ``pred`` / ``probs``'s positions name (class names; a multi-label target's
    labels; absent for regression, and for classes without names). Read it back with
    ``json.loads(pq.read_schema(path).metadata[b"mmdata"])``.

    Example:
        >>> prediction_metadata(None, ["cat", "dog"])
        {b'mmdata': b'{"target": {"kind": "classes", "key": null}, "names": ["cat", "dog"]}'}
    """
    kind = getattr(target, "kind", None) or "classes"
    names = list(label_names) if label_names is not None else list(getattr(target, "names", None) or [])
    meta: dict[str, Any] = {"target": {"kind": kind, "key": getattr(target, "key", None)}}
    if kind != "regression" and names:
        meta["names"] = [str(n) for n in names]
    return {b"mmdata": json.dumps(meta, ensure_ascii=False).encode("utf-8")}


def source_keys(data: str | Path, splits: str | Sequence[str]) -> dict[str, str | None]:
    """Sample key -> ``source_key`` (what it was sharded from: ``cat/000`` for ``cat/000.png`` in a class
    folder, a manifest row's key) of the samples of ``splits`` in the dataset folder ``data``, from its
    ``index.parquet``: what :class:`PredictionWriter` names in ``predictions.parquet``.

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_class_folders
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_class_folders(t + "/raw", per_class=1), t + "/ds", progress=False)
        >>> sorted(source_keys(t + "/ds", "train").values())[:2]
        ['bird/000', 'cat/000']
    """
    return index_columns(data, splits, ("source_key",))["source_key"]


def index_columns(data: str | Path, splits: str | Sequence[str], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{column: {sample key: value}}`` for the samples of ``splits``, from one read of the dataset
    folder's ``index.parquet``: ``source_key`` (what :class:`PredictionWriter` names) and ``split`` (the
    fold a prediction came from when folds are read as the test role, ``--test-split 5``).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.testing import make_class_folders
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_class_folders(t + "/raw", per_class=2), t + "/ds", split="a=0.5,b=0.5", progress=False)
        >>> sorted(set(index_columns(t + "/ds", ["a", "b"], ["split"])["split"].values()))
        ['a', 'b']
    """
    from mmdata.shards.index import load_index

    wanted = {splits} if isinstance(splits, str) else set(splits)
    t = load_index(data, columns=list(dict.fromkeys(["key", "split", *columns])), read_dictionary=["split"]).to_pydict()
    rows = [i for i, sp in enumerate(t["split"]) if sp in wanted]
    return {c: {t["key"][i]: t[c][i] for i in rows} for c in columns}


def check_out(out: str | Path, option: str = "out (--out)") -> None:
    """Raise when ``out`` cannot be the output folder (an existing file, a folder this process cannot write
    in or make: permissions, a read-only file system): checked before training, so a run never trains
    for nothing (the shard writer's check, :func:`mmdata.shards.output.check_local_output`, does the same).

    Example:
        >>> import tempfile
        >>> check_out(tempfile.mkdtemp())  # an existing folder (or none yet) is fine
    """
    p = Path(out)
    lookup(p, option)  # too long, a link loop: one error naming it (exists() raised OSError / RuntimeError)
    if p.exists() and not p.is_dir():
        raise MMDataError(f"{option} {p}: exists and is not a folder; give a folder (it is created) for metrics.json, "
                          "predictions.parquet and model.pt")
    for folder in (p, *p.parents):
        if folder.exists():
            if not folder.is_dir():
                raise MMDataError(f"{option} {p}: {folder} exists and is not a folder")
            if not can_write_in(folder):  # found only after the last epoch, by the first write
                what = "is" if folder == p else f"would be made in {folder}, which is"
                raise MMDataError(f"{option} {p} {what} not writable (permissions or a read-only file system); give "
                                  "another --out (out=)")
            break


@contextmanager
def out_lock(out: str | Path) -> Iterator[None]:
    """Hold ``out``'s job lock (:class:`mmdata.shards.journal.JobLock`, what ``shard``, ``augment`` and
    ``ablate`` take) for a whole training run: a second run into the same folder is refused at its start,
    naming the holder (QA: four runs with different seeds into one ``--out`` all exited 0 and the folder
    held one seed's files). A folder made only for the lock is removed again when the run leaves it empty
    (a failed run leaves no empty folder behind). Under DDP only rank 0 takes it (rank 0 writes).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()) / "run"
        >>> with out_lock(d):
        ...     with out_lock(d):
        ...         pass
        Traceback (most recent call last):
        ...
        mmdata.errors.BusyError: ... is being written by another job (pid ..., mmdata train, since ...); wait for it to finish or write to another folder
        >>> d.exists()
        False
    """
    from mmdata.shards.journal import JobLock

    p = Path(out)
    made = not p.exists()
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MMDataError(f"out (--out) {p}: cannot make the folder ({exc.strerror or exc}); give another --out "
                          "(out=)") from None
    try:
        with JobLock(p, "mmdata train"):
            yield
    finally:
        if made:
            try:
                p.rmdir()  # only an empty one: the run wrote nothing
            except OSError:
                pass


def remove_leftovers(out: str | Path) -> list[Path]:
    """Remove what killed runs left in ``out``: the temp files of :data:`OUTPUT_FILES` (and the
    pre-trained checkpoint) whose writer
    process is dead (SIGKILL, out of memory, a lost node). A run writing into the same folder right now
    keeps its own (:func:`mmdata.io.remove_stale_temps`); nothing else in ``out`` is touched.

    Example:
        >>> import tempfile
        >>> remove_leftovers(tempfile.mkdtemp())
        []
    """
    from mmdata.train.contrastive import CHECKPOINT

    return remove_stale_temps(out, (*OUTPUT_FILES, CHECKPOINT))



def metrics_json(metrics: dict[str, Any]) -> bytes:
    """The bytes of ``metrics.json``: valid JSON (a metric without a value, e.g. accuracy on a split
    without labelled samples, is null, not ``NaN``), keys sorted as ``mmdata train --json`` prints them.

    Example:
        >>> metrics_json({"val": {"nll": 0.5}, "test": {"accuracy": float("nan")}}).decode().split()
        ['{', '"test":', '{', '"accuracy":', 'null', '},', '"val":', '{', '"nll":', '0.5', '}', '}']
    """
    return (json.dumps(finite(metrics), indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


#: errors of a write that the disk refused (full, over a size or quota limit, read-only): one line, not a traceback
NO_ROOM = _NO_ROOM


def no_room(exc: BaseException, out: str | Path, name: str | None = None) -> MMDataError | None:
    """The error for a write into the output folder ``out`` that the disk refused (:data:`NO_ROOM`: full,
    over ``ulimit -f`` or a quota, read-only), naming the folder, the file and the OS error; None for
    any other error.

    Example:
        >>> print(no_room(OSError(errno.ENOSPC, "No space left on device", "runs/a/model.pt"), "runs/a"))  # doctest: +ELLIPSIS
        cannot write the outputs into runs/a (model.pt): No space left on device: free space (... free there now) (or give another --out (out=)) and train again: runs/a keeps the files it held before (none of this run's)
    """
    if not isinstance(exc, OSError) or exc.errno not in NO_ROOM:
        return None
    name = name or (Path(exc.filename).name if isinstance(exc.filename, str) else None)
    where = f" ({name})" if name else ""
    advice = no_room_advice(exc, out, other="give another --out (out=)", retry="train again")
    return MMDataError(f"cannot write the outputs into {out}{where}: {advice}: {out} keeps the files it held before "
                       "(none of this run's)")


def _write_temp(path: Path, data: bytes) -> str:
    """``data`` in a new temp file beside ``path`` (synced, with the mode of a published file): its name."""
    fd, tmp = make_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, published_mode())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def publish(out: Path, files: Mapping[str, bytes], finished: Mapping[str, str] | None = None) -> None:
    """Replace the outputs in ``out`` together: ``files`` (name -> bytes) are written to temp names first,
    then these and ``finished`` (name -> a temp file already written beside its target, such as
    :meth:`PredictionWriter.finish`'s) are renamed into place. ``metrics.json`` is the set's seal: the old
    one is removed before the first rename and the new one renamed in last, after the outputs of an
    earlier run that this one does not write (``model.pt`` beside a pre-training-only run's files) are
    removed — so a ``metrics.json`` in ``out`` always sits beside its own run's files, also after a kill
    between the renames (QA: the old metrics and model stayed beside the new predictions; that folder now
    has no metrics.json, and a rerun writes the whole set). A failure before the renames (a full disk)
    removes every temp file and leaves ``out`` as it was; one the disk refused is an
    :class:`~mmdata.errors.MMDataError` (:func:`no_room`).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> publish(d, {"metrics.json": b"{}\\n", "model.pt": b"..."})
        >>> sorted(p.name for p in d.iterdir())
        ['metrics.json', 'model.pt']
    """
    temps = dict(finished or {})
    name = None
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            temps[name] = _write_temp(out / name, data)
        name = SEAL
        (out / SEAL).unlink(missing_ok=True)  # no metrics.json while the folder holds two runs' files
        for name in sorted(temps, key=lambda n: n == SEAL):
            if name == SEAL:  # last: first the earlier run's outputs this run does not replace go
                for stale in RUN_OUTPUTS:
                    if stale not in temps:
                        (out / stale).unlink(missing_ok=True)
                figures = model_figures(files.get(SEAL))
                for fig in out.iterdir():  # mmdata match / audit-alignment figures of the previous model
                    if fig.name in figures and fig.name not in temps:
                        fig.unlink(missing_ok=True)
            os.replace(temps[name], out / name)
    except BaseException as exc:
        for tmp in temps.values():  # the renamed ones are gone from here already
            Path(tmp).unlink(missing_ok=True)
        refused = no_room(exc, out, name)
        if refused is not None:
            raise refused from None
        raise


def write_outputs(out: Path, metrics: dict[str, Any], model: torch.nn.Module | None, *,
                  predictions: str | None = None, extra: Mapping[str, bytes] | None = None) -> None:
    """``metrics.json`` (:func:`metrics_json`), ``model.pt`` (the state dict; load with
    ``torch.load(..., weights_only=True)``; none without a ``model``: pre-training alone), ``extra`` files
    (name -> bytes: the pre-trained checkpoint) and ``predictions`` (the finished temp file of
    :class:`PredictionWriter`), replaced together (:func:`publish`)."""
    files = {"metrics.json": metrics_json(metrics)}
    if model is not None:
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        files["model.pt"] = buf.getvalue()
    files.update(extra or {})
    publish(out, files, {"predictions.parquet": predictions} if predictions is not None else None)
