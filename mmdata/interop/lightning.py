"""``mmdata.lightning.DataModule``: mmdata loaders wired into PyTorch Lightning.

Lightning calls ``set_epoch`` only on a DataLoader's *sampler*; an IterableDataset (or any other
iterable) returned by ``train_dataloader`` is never told the epoch, so its order and augmentation
draws repeat every epoch. The DataModule's train loader asks the trainer instead: each iteration
starts epoch ``trainer.current_epoch`` (new shard order, shuffle buffer, balance and augmentation
draws), and without a trainer each new iteration advances the epoch by one.

Checkpoints. Lightning saves ``DataModule.state_dict()`` in every checkpoint and hands it back to
``load_state_dict`` when ``trainer.fit(..., ckpt_path=...)`` resumes. Lightning also fetches one batch
ahead of the training step when an iterable has no length, so the loader's own position is then one
batch past what the model has seen when a checkpoint is written; the DataModule keeps the loader's
state after each of the last few batches and saves the one matching the batches the trainer has
*processed*. A resumed fit therefore trains on exactly the batches the interrupted one had not
reached, mid-epoch included, also with DataLoader workers.

Length. The train loader has ``len()`` when the index fixes the batches per epoch (see
:meth:`mmdata.augment.loader.Loader.__len__`): Lightning then shows the epoch's size and does not
fetch ahead — which is also what makes a plain ``mmdata.loader`` returned from
``LightningModule.train_dataloader`` resume exactly, without the DataModule.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mmdata.interop import require

pl = require("lightning.pytorch", "lightning", "mmdata.lightning")

_HISTORY = 16  # loader states kept: more than Lightning's fetch-ahead (1 batch by default)
STATE_VERSION = 1


class EpochLoader:
    """The train loader as Lightning sees it: each iteration sets the epoch (from the trainer) or resumes.

    ``loader`` is the wrapped :class:`mmdata.augment.loader.Loader` (``.skipped``, ``.recipe``...).
    """

    def __init__(self, datamodule: DataModule, loader: Any) -> None:
        self.datamodule = datamodule
        self.loader = loader
        self.history: dict[int, dict[str, Any]] = {}

    def _epoch(self) -> int:
        trainer = self.datamodule.trainer
        if trainer is not None:
            return int(trainer.current_epoch)
        return self.datamodule._start_epoch + self.datamodule._iterations

    def __iter__(self) -> Iterator[Any]:
        epoch = self._epoch()
        self.datamodule._iterations += 1
        pending, self.datamodule._pending = self.datamodule._pending, None
        if pending is not None and int(pending["epoch"]) == epoch:
            self.loader.load_state_dict(pending)
            done = int(pending.get("batches", 0))
        else:
            self.loader.set_epoch(epoch)
            done = 0
        self.history = {done: self.loader.state_dict()}
        for batch in self.loader:
            done += 1
            self.history[done] = self.loader.state_dict()
            self.history.pop(done - _HISTORY, None)
            yield batch

    def __len__(self) -> int:
        return len(self.loader)  # TypeError when the loader has no exact length (Lightning: unsized)

    def __bool__(self) -> bool:
        return True

    def state_at(self, batches: int | None) -> dict[str, Any]:
        """The loader's state after ``batches`` batches of the current epoch (the latest if unknown)."""
        if batches is not None and batches in self.history:
            return self.history[batches]
        return self.loader.state_dict()


class DataModule(pl.LightningDataModule):
    """Train / val / test loaders over an mmdata dataset, with epochs and exact mid-epoch resume.

    Args:
        path: dataset folder (or shards, see :func:`mmdata.open_dataset`).
        batch_size: samples per training batch.
        recipe: augmentation recipe for training (path, YAML string, dict or Recipe; None: none).
        eval_recipe: recipe for val / test / predict (default none: evaluation sees clean samples).
        seed: order, balance and augmentation seed.
        num_workers: DataLoader worker processes per loader.
        augment_on: ``"workers"`` (per-sample kernels in workers) or ``"device"`` (batched kernels on
            the trainer's device).
        balance: class / pattern balancing of the training stream (see :func:`mmdata.loader`).
        train_split, val_split, test_split, predict_split: split names; a split the dataset does not
            have gives no loader (Lightning then skips that stage).
        eval_batch_size: batch size of the evaluation loaders (default ``batch_size``).
        start_epoch: the epoch of the first iteration when no trainer drives the module.
        **loader_kw: more :func:`mmdata.loader` options (``drop_last``, ``modalities``, ``cache``,
            ``on_error``, reader options).

    Example:
        >>> import tempfile, mmdata
        >>> from mmdata.lightning import DataModule
        >>> from mmdata.testing import make_sample_folder
        >>> t = tempfile.mkdtemp()
        >>> _ = mmdata.shard(make_sample_folder(t + "/raw", n=8), t + "/ds", progress=False)
        >>> dm = DataModule(t + "/ds", batch_size=4, recipe={"image": [{"op": "hflip", "p": 0.5}]})
        >>> first = [k for b in dm.train_dataloader() for k in b.keys]    # epoch 0
        >>> second = [k for b in dm.train_dataloader() for k in b.keys]   # epoch 1: another order
        >>> sorted(first) == sorted(second), first != second
        (True, True)
    """

    def __init__(self, path: str | Path, batch_size: int = 32, *, recipe: Any = None, eval_recipe: Any = None,
                 seed: int = 0, num_workers: int = 0, augment_on: str = "workers", balance: Any = None,
                 train_split: str = "train", val_split: str | None = "val", test_split: str | None = "test",
                 predict_split: str | None = None, eval_batch_size: int | None = None, start_epoch: int = 0,
                 **loader_kw: Any) -> None:
        super().__init__()
        self.path = path
        self.batch_size = batch_size
        self.recipe = recipe
        self.eval_recipe = eval_recipe
        self.seed = seed
        self.num_workers = num_workers
        self.augment_on = augment_on
        self.balance = balance
        self.train_split = train_split
        self.val_split = val_split
        self.test_split = test_split
        self.predict_split = predict_split
        self.eval_batch_size = eval_batch_size or batch_size
        self.loader_kw = loader_kw
        self._start_epoch = start_epoch
        self._iterations = 0  # train iterations so far (the epoch when no trainer drives the module)
        self._pending: dict[str, Any] | None = None
        self._train: EpochLoader | None = None

    # ---- helpers ---------------------------------------------------------------------------------
    def _splits(self) -> set[str] | None:
        from mmdata.shards import index as idx
        from mmdata.urls import is_folder_url

        if isinstance(self.path, (str, Path)) and (is_folder_url(self.path) or idx.is_dataset(self.path)):
            return set(idx.load_card(self.path, self.loader_kw.get("storage_options")).get("splits", {}))
        return None  # bare shards: the split name is not checked

    def _device(self) -> Any:
        if self.augment_on == "device" and self.trainer is not None:
            return self.trainer.strategy.root_device
        return "cpu"  # Lightning moves the batch (Batch.to) before the step

    def _loader(self, split: str, batch_size: int, recipe: Any, **kw: Any) -> Any:
        import mmdata

        return mmdata.loader(self.path, batch_size, recipe=recipe, split=split, seed=self.seed,
                             num_workers=self.num_workers, device=self._device(), augment_on=self.augment_on,
                             **kw, **self.loader_kw)

    def _eval(self, split: str | None) -> Any:
        splits = self._splits()
        if split is None or (splits is not None and split not in splits):
            return []
        return self._loader(split, self.eval_batch_size, self.eval_recipe, shuffle=False)

    # ---- Lightning hooks -------------------------------------------------------------------------
    def train_dataloader(self) -> EpochLoader:
        """The training loader: shuffled, augmented, epoch from the trainer, resumable."""
        loader = self._loader(self.train_split, self.batch_size, self.recipe, balance=self.balance, shuffle=True)
        self._train = EpochLoader(self, loader)
        return self._train

    def val_dataloader(self) -> Any:
        """The validation split in order, without augmentation (``eval_recipe``); ``[]`` if absent."""
        return self._eval(self.val_split)

    def test_dataloader(self) -> Any:
        """The test split in order; ``[]`` if absent."""
        return self._eval(self.test_split)

    def predict_dataloader(self) -> Any:
        """``predict_split`` in order; ``[]`` if unset or absent."""
        return self._eval(self.predict_split)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: the train loader's position after the batches the trainer processed."""
        if self._train is None:
            return {"version": STATE_VERSION, "train": self._pending}
        processed = None
        if self.trainer is not None:
            processed = int(self.trainer.fit_loop.epoch_loop.batch_progress.current.processed)
        return {"version": STATE_VERSION, "train": self._train.state_at(processed)}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume: the next train iteration of the saved epoch continues where the checkpoint was written."""
        if int(state_dict.get("version", STATE_VERSION)) != STATE_VERSION:
            raise ValueError(f"mmdata DataModule state version {state_dict.get('version')} is not {STATE_VERSION}")
        train = state_dict.get("train")
        self._pending = dict(train) if train is not None else None
