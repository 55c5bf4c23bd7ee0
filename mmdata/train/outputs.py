"""Run outputs: ``metrics.json`` and ``model.pt`` written atomically, ``predictions.parquet`` streamed.

Predictions are appended batch by batch to a temp file beside the target (a Parquet row group per
batch) and renamed into place when the pass completes, so memory does not grow with the split and a
killed run leaves no torn file.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mmdata.io import atomic_write_bytes, finite, make_temp, published_mode, remove_stale_temps
from mmdata.types import Batch

#: what a run writes into its output folder (and, with ``--pretrain``, :data:`mmdata.train.contrastive.CHECKPOINT`)
OUTPUT_FILES = ("metrics.json", "predictions.parquet", "model.pt")


class PredictionWriter:
    """A prediction sink for :func:`mmdata.train.evaluate.evaluate`: one row per sample with ``key``,
    ``split`` (a name, or sample key -> its split in index.parquet: the fold, with folds as the test
    role), ``label`` (-1 when unlabelled), ``pred``, ``prob_label`` (null when unlabelled) and ``probs``
    — or, for a multi-label / regression ``target`` (:class:`mmdata.train.targets.Target`), ``key``,
    ``split`` and the target's columns (:meth:`~mmdata.train.targets.Target.predictions`: ``labels``,
    ``pred_labels``, ``probs`` / ``target``, ``pred``; null targets when unlabelled) — and last
    ``source_key``: what the sample was sharded from (a file's path in its folder, a manifest's key), from
    ``source_keys`` (sample key -> source key: :func:`source_keys`), to join predictions back to the
    user's files; null for a key it lacks (or without ``source_keys``).

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
                 source_keys: Mapping[str, str | None] | None = None) -> None:
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
        # last: the columns before it keep their positions (readers that select by position)
        self.schema = self.schema.append(pa.field("source_key", pa.string()))
        self._writer: Any = None
        self.rows = 0

    def _columns(self, batch: Batch, logits: torch.Tensor) -> dict[str, list[Any]]:
        if self.target is not None:
            return self.target.predictions(batch, logits)
        probs = torch.softmax(logits.double(), 1).cpu()
        labels = batch["label"].cpu() if "label" in batch else torch.full((len(batch),), -1, dtype=torch.int64)
        has = labels >= 0
        prob_label = probs.gather(1, labels.clamp(min=0)[:, None]).squeeze(1)
        return {"label": labels.tolist(), "pred": probs.argmax(1).tolist(),
                "prob_label": [p if h else None for p, h in zip(prob_label.tolist(), has.tolist())],
                "probs": probs.tolist()}

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

    def close(self) -> None:
        """Finish the file and move it into place."""
        import pyarrow.parquet as pq

        if self._writer is None:
            pq.write_table(self.schema.empty_table(), self.tmp)
        else:
            self._writer.close()
        os.chmod(self.tmp, published_mode())
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the partial file (the pass failed)."""
        if self._writer is not None:
            self._writer.close()
        Path(self.tmp).unlink(missing_ok=True)


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
    """Raise when ``out`` cannot be the output folder (an existing file): checked before training, so a
    run never trains for nothing.

    Example:
        >>> import tempfile
        >>> check_out(tempfile.mkdtemp())  # an existing folder (or none yet) is fine
    """
    from mmdata.errors import MMDataError

    p = Path(out)
    if p.exists() and not p.is_dir():
        raise MMDataError(f"{option} {p}: exists and is not a folder; give a folder (it is created) for metrics.json, "
                          "predictions.parquet and model.pt")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise MMDataError(f"{option} {p}: {parent} exists and is not a folder")
            break


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


def write_outputs(out: Path, metrics: dict[str, Any], model: torch.nn.Module | None) -> None:
    """``metrics.json`` (:func:`metrics_json`) and ``model.pt`` (the state dict; load with
    ``torch.load(..., weights_only=True)``; none without a ``model``: pre-training alone)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "metrics.json", metrics_json(metrics))
    if model is None:
        return
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write_bytes(out / "model.pt", buf.getvalue())
