"""The training loop: ``mmdata.train.train(...)``, ``mmdata train`` and ``torchrun -m mmdata.train`` (DDP).

``train()`` is four steps: :func:`setup` (read the card and index statistics, settle the input format
and the classes, build the model, the optimiser and one :func:`mmdata.loader` per split),
:func:`train_epoch`, :func:`mmdata.train.evaluate.evaluate` (streamed, on val after every epoch —
the best epoch's is the reported val — and on test with the best checkpoint) and :func:`write_outputs`.

Data. Every split is read batch by batch through :func:`mmdata.loader`; a split is decoded once into
memory only when ``cache=True``, or with ``cache="auto"`` (the default) when the decoded size that
``index.parquet`` implies fits ``cache_budget_mb`` (splits are considered in the order train, val,
test); the process keeps those decoded splits for its next run on the same folder (an ablation
worker decodes the dataset once, :func:`mmdata.augment.loader.decoded_split`). A val split in memory
is also collated, and its model inputs (log-mel spectrograms, ...) computed, once per run rather
than every epoch (while 4x its decoded size fits the budget). Training batches get the recipe's
augmentations with the batched kernels on the training device (``augment_on="device"``); val and
test get none. Each loader warns once of batches that are mostly zero padding (short clips, images
of several sizes); the run says each kind once when it ends, naming the splits
(:mod:`mmdata.train.padding`).

Seeds. One seed fixes initialisation, data order, augmentation draws (the loader combines it with the
recipe's seed) and label-noise flips. The split is fixed by the dataset (built once with its own seed).

Labels. Unlabelled samples (label -1) take part in nothing that needs a label: they are masked out
of the loss (so a batch of them still steps every DDP rank together) and out of every score, and
counted per split (``metrics["samples"]``). A label outside the card's classes is an error naming
the sample, raised before training.

Devices. Model inputs, labels and masks are moved to the training device once per batch
(non-blocking); presence masks and lengths stay host metadata; losses and scores accumulate on the
device and are read back once per epoch — never one ``.item()`` per step.

DDP (``WORLD_SIZE`` > 1): each rank reads a disjoint part of every epoch (the reader splits by rank),
gradients are averaged by DistributedDataParallel, uneven last steps are handled with ``DDP.join()``,
and rank 0 evaluates and writes the outputs. Backend: gloo on CPU, nccl on CUDA (one GPU per rank,
``LOCAL_RANK``).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from mmdata.augment.image import CROP_ADVICE  # the augment op's advice, which the trainer can make precise
from mmdata.checks import keyword_hints, plural, usable_device
from mmdata.errors import MMDataError
from mmdata.shards.reader import undecodable
from mmdata.train.config import crop_warning, label_leak_warning, shortcut_warnings
from mmdata.train.config import (OPTIMIZERS, IndexStats, InputSpec, check_options, check_out_folder, choose_modalities, class_warnings,  # noqa: F401
                                  SPEC_UNUSED, check_given_inputs, eval_section, option_name, classes_of, decoded_bytes, derive_inputs, effective_inputs, modality_warnings, duplicate_warnings, describe_text_units, text_units, role_splits,
                                  misspelt_target, spec_ops, split_roles, target_columns, too_few_labelled_classes, trained_image_size, unused_fields,
                                  with_normalize)  # OPTIMIZERS: kept importable here
from mmdata.train.evaluate import Correctness, evaluate, prepare_eval
from mmdata.train.model import FusionModel
from mmdata.train.padding import PaddingNotes, reading, said_once
from mmdata.train.targets import (META_FIELD, LabelNoise, Target, Values, apply_label_noise, class_ids,  # noqa: F401
                                  label_noise_plan, masked_loss, noise_keys, noisy_labels, plan_label_noise, read_values, resolve,
                                  settle, several_columns)  # the label helpers: importable here as before
from mmdata.types import Batch
from mmdata.versions import software


class TrainWarning(UserWarning):
    """A warning of a run's result (:func:`train`'s ``metrics["warnings"]``: BatchNorm statistics from too few
    batches, a class missing from a split, a test split without labels): each is also raised as one, from
    the caller's line and once per call, so ``_ = train(...)`` in a notebook still shows them. ``mmdata
    train`` prints the list instead (once each); an ablation counts them over its runs (the report).

    Silence them with ``warnings.simplefilter("ignore", TrainWarning)``: the result still lists them.

    Example:
        >>> issubclass(TrainWarning, UserWarning)
        True
    """


VAL_INPUTS_FACTOR = 4  # val's model inputs (float32) against its decoded size (uint8 images): kept within the cache budget
SPLITS = ("train", "val", "test")


def _code() -> dict[str, Any]:
    """The code that trained (QA27 B11: metrics.json said mmdata 0.1.0 across every commit): the dataset
    card's ``code`` entry — mmdata's version, the digest of its files and the libraries that make the
    bytes, and the git revision (and whether mmdata's files differ from it) when run from a checkout."""
    from mmdata.shards.writer import code_card

    return dict(code_card())


def train_step(net: torch.nn.Module, opt: torch.optim.Optimizer, batch: Batch, classes: int | Target, *,
               label_noise: float | LabelNoise = 0.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on a batch (already on the model's device); returns (loss, labelled rows)
    as device tensors. Nothing here reads a device tensor back to the host (tested on the ``meta`` device).
    ``classes``: the number of classes, or the run's :class:`~mmdata.train.targets.Target`. ``label_noise``:
    the run's :class:`~mmdata.train.targets.LabelNoise` (what :func:`train` passes), or a fraction each row
    flips with (:meth:`~mmdata.train.targets.Target.noisy`).

    Example:
        >>> from mmdata import Sample, collate
        >>> from mmdata.train import FusionModel
        >>> m = FusionModel(["text"], "concat", classes=2)
        >>> b = collate([Sample("a", {"text": "odd", "label": 1}), Sample("b", {"text": "even"})])
        >>> loss, n = train_step(m, torch.optim.SGD(m.parameters(), lr=0.1), b, 2)
        >>> int(n)
        1
    """
    dev = next(net.parameters()).device
    target = classes if isinstance(classes, Target) else Target.classes(classes)
    y, _ = target.values(batch, dev)
    # a run's plan knows a balance section's copies by their sample's key; a bare fraction draws per row as before
    y = target.noisy(y, noise_keys(batch) if isinstance(label_noise, LabelNoise) else batch.keys, label_noise, seed)
    loss, n = target.loss(net(batch), batch, y)
    if not loss.requires_grad:  # host metadata: backward() said only "element 0 of tensors does not require grad"
        name = getattr(getattr(net, "module", net), "fusion_name", "?")
        raise MMDataError(f"fusion {name!r}: its logits do not depend on any trainable parameter (detached, constant, or "
                          "built without the encoders' features and its own parameters): nothing to train; build the "
                          "logits from feats[m] or the fusion's nn.Parameters (docs/fusions.md)")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach(), n


def slurm_alone() -> str | None:
    """The warning for a process that SLURM started as one of several tasks (``srun -n 2 mmdata train``)
    without torch's variables: it trains the whole dataset alone, as every other task does. None when
    ``WORLD_SIZE`` is set (torchrun, or the variables exported from SLURM's: docs/slurm.md) or the step has
    one task. The SLURM variables are not read in their place: ``MASTER_ADDR`` / ``MASTER_PORT`` need the
    allocation's first node and a port, which only the job script knows, and a batch script's own process
    (``SLURM_NTASKS=4``, one process) would wait for three peers that never come.

    Example:
        >>> slurm_alone() is None or "SLURM" in slurm_alone()
        True
    """
    tasks = os.environ.get("SLURM_STEP_NUM_TASKS") or os.environ.get("SLURM_NTASKS")
    if "WORLD_SIZE" in os.environ or not tasks or not tasks.isdigit() or int(tasks) < 2:
        return None
    name = "SLURM_STEP_NUM_TASKS" if os.environ.get("SLURM_STEP_NUM_TASKS") else "SLURM_NTASKS"
    return (f"{name}={tasks} but WORLD_SIZE is not set: this process (SLURM_PROCID={os.environ.get('SLURM_PROCID', '?')}) "
            f"trains the whole dataset alone (world size 1), and so does every other of the {tasks} tasks; launch "
            "`srun torchrun ...` (one task per node), or export RANK=$SLURM_PROCID WORLD_SIZE=$SLURM_NTASKS "
            "LOCAL_RANK=$SLURM_LOCALID MASTER_ADDR=<first node> MASTER_PORT=<port> before `mmdata train` (docs/slurm.md)")


def _dist(device: str) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    alone = slurm_alone()
    if alone is not None:
        import warnings

        warnings.warn(alone, UserWarning, stacklevel=3)
    dev = usable_device(device, "--device (device=)")
    if world > 1 and dev.type == "cuda":  # one GPU per rank
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    if torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size(), dev
    return 0, 1, dev


@dataclass
class Run:
    """Everything a training run holds between its steps (built by :func:`setup`)."""

    data: Path
    config: dict[str, Any]
    spec: InputSpec  # what the model gets: the normalize stage that runs (a recipe's own lists included)
    normalize: dict[str, list[dict[str, Any]]]
    classes: int  # the model's outputs: classes, labels of a multi-label target, 1 for regression
    names: list[str]
    samples: dict[str, dict[str, int]]
    cache: dict[str, bool]
    rank: int
    world: int
    device: torch.device
    model: FusionModel
    net: torch.nn.Module
    opt: torch.optim.Optimizer
    loaders: dict[str, Any]
    card: dict[str, Any]
    target: Target  # what is predicted: the card's classes, or a metadata key's label sets or numbers
    progress: bool = False
    prep: Any = None  # mmdata.train.contrastive.Prepared: pre-training, probe, labelled subset
    noise: LabelNoise | None = None  # label_noise's planned flips (None: no label noise)
    text_units: dict[str, Any] | None = None  # how the tokenizer cuts the training captions (config.text_units)
    keep_val_inputs: bool = False  # val's model inputs computed once and kept (see train())
    warnings: list[str] = field(default_factory=list)  # about the data (classes missing from a split), for metrics.json
    padding: PaddingNotes | None = None  # the loaders' padding warnings of the run (mmdata.train.padding.said_once)
    history: list[dict[str, Any]] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)

    def say(self, msg: str) -> None:
        """A line (or lines) on stderr. ``msg`` holds the data's own strings (class names, split names from the
        card): printed as text, not rich markup, through :func:`mmdata.terminal.terminal_lines` (a class name's
        ``ESC]52;`` clipboard write or U+202E printed escaped, as inspect prints it; QA28 security #2)."""
        if self.progress and self.rank == 0:
            from mmdata.terminal import terminal_lines

            _console().print(terminal_lines(msg), markup=False, highlight=False)


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def constant_labels(goal: Target, read: Values, *, kept: bool = False) -> list[str]:
    """Warnings for a multi-label target's labels on in every labelled training sample (a boolean target
    true in every one): the model learns "always on" and scores perfectly, learning nothing (a constant
    regression target is warned of by :func:`mmdata.train.targets.settle`). ``kept``: ``read`` holds the
    training labels a ``--label-fraction`` keeps, and the warnings say so.

    Example:
        >>> t = Target("multilabel", "tags", ["x", "y"])
        >>> constant_labels(t, Values({"train": [("a", ["x"]), ("b", ["x", "y"]), ("c", None)]}, set()))
        ["label 'x' of the target 'tags' is on in every training sample (2): nothing to learn; its scores are perfect for a model that always predicts it"]
    """
    from mmdata.train.targets import _as_label_set, _labels_of, _missing

    if goal.kind != "multilabel":
        return []
    train = [v for _, v in read.by_role.get("train", []) if not _missing(v)]
    sets = [set(_as_label_set(v, goal.key) if goal.boolean else _labels_of(v) or ()) for v in train]
    if not sets:
        return []
    always = [n for n in goal.names if all(n in st for st in sets)]
    why = "nothing to learn; {} perfect for a model that always predicts {}"
    every = f"every training {'label kept (--label-fraction)' if kept else 'sample'} ({len(sets)})"
    if goal.boolean and always:
        return [f"the target {goal.key!r} is true in {every}: " + why.format("its scores are", "true")]
    if not always:
        return []
    shown = ", ".join(map(repr, always[:5])) + (f" and {len(always) - 5} more" if len(always) > 5 else "")
    if len(always) == 1:
        return [f"label {shown} of the target {goal.key!r} is on in {every}: " + why.format("its scores are", "it")]
    return [f"labels {shown} of the target {goal.key!r} are on in {every}: " + why.format("their scores are", "them")]


def _described(goal: Target, read: Values | None) -> str:
    """The target's header line; a constant regression target's sd as it is, 0 (the Target keeps sd 1 to
    standardise by, which the header printed as "sd 1")."""
    from mmdata.train.targets import _missing, _number

    text = goal.describe()
    if goal.kind != "regression" or read is None:
        return text
    train = [_number(v) for _, v in read.by_role.get("train", []) if not _missing(v)]
    sd = float(np.std(np.asarray(train, dtype=np.float64))) if train else 0.0
    if sd == goal.sd:
        return text
    return text.replace(f"sd {goal.sd:.4g};", f"sd {sd:.4g};")


def _cache_plan(cache: bool | str, budget_mb: float, st: IndexStats, modalities: Sequence[str], world: int,
                spec: InputSpec | None = None) -> dict[str, bool]:
    if cache not in (True, False, "auto"):
        raise MMDataError(f"cache must be True, False or 'auto', got {cache!r}")
    plan: dict[str, bool] = {}
    used = 0
    for split in SPLITS:
        if split != "train" and world > 1:  # rank 0 evaluates whole splits; the memory cache partitions by rank
            plan[split] = False
            continue
        size = decoded_bytes(st, split, modalities, spec)  # as the normalize stage leaves it: what the cache holds
        plan[split] = cache is True or (cache == "auto" and used + size <= budget_mb * 2**20)
        used += size if plan[split] else 0
    return plan


_classes = classes_of  # the card's classes and splits (mmdata.train.config, shared with the ablation runner's checks)


def _optimizer(model: torch.nn.Module, optimizer: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(model.parameters(), lr=lr * 50, momentum=0.9, weight_decay=weight_decay)


def quiet_stop_signals(worker_id: int) -> None:
    """The training loaders' ``worker_init_fn``: SIGTERM, SIGINT or SIGHUP ends a DataLoader worker at once with
    exit status 0. SLURM (and ``kill -- -PGID``, Ctrl-C in a terminal) signals every process of the job: a
    worker that died of the signal turned the main process's clean stop (exit 143 and one line) into
    torch's "DataLoader worker ... is killed by signal: Terminated" traceback and exit 1 (QA: 3 runs in 6),
    as it reports a worker killed by a signal or exiting with a non-zero status from its SIGCHLD handler.
    The main process handles the signal itself and ends the job. Not ignored: a worker must still end on
    ``Process.terminate()`` (multiprocessing's exit handler joins the workers a stopped loader left). A
    worker signalled alone is still an error in the main process ("DataLoader worker ... exited
    unexpectedly").

    Example:
        >>> import signal
        >>> old = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)]
        >>> quiet_stop_signals(0); signal.getsignal(signal.SIGTERM) is _worker_stopped
        True
        >>> for s, h in zip((signal.SIGTERM, signal.SIGINT), old): _ = signal.signal(s, h)
    """
    import signal

    from mmdata.procs import die_with_parent, quiet_fd_handover_errors

    for name in ("SIGTERM", "SIGINT", "SIGHUP"):
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is not signal.SIG_IGN:
            signal.signal(getattr(signal, name), _worker_stopped)
    # the job's main process dying of the same signal while this worker hands it a tensor's fd printed the
    # sharer thread's traceback after the job's one line (CI: 1 run of the group-SIGTERM test)
    quiet_fd_handover_errors()
    # a SIGKILL of the job's main process alone (the OOM killer picks it, a scheduler's `kill -9 PID`) left its
    # workers running for 10+ minutes, holding OUT/.mmdata-lock (inherited): every rerun stopped with exit 75
    # naming the dead pid (QA28 ops #1); they now end with it, as shard's writers and ablate's workers do
    if torch.utils.data.get_worker_info() is not None:  # in a DataLoader worker (not a caller's own process)
        die_with_parent(os.getppid())


def _worker_stopped(signum: int, frame: Any) -> None:
    os._exit(0)  # no clean-up to run in a reader worker; its parent reports the signal


def _size_mismatch(trained: tuple[tuple[int, int], str, str], inputs: InputSpec, given: bool) -> str:
    """The warning for a recipe whose random image section makes training images of another size than the
    normalize stage gives val and test (``trained``: :func:`trained_image_size`), which the trainer does not pair."""
    (h, w), where, op = trained
    H, W = inputs.image_size or (0, 0)
    src = inputs.sources.get("image_size", "")
    shown = f"{option_name('image_size')}, given" if src == "given" else src
    if src.startswith("the recipe's"):
        fix = f"make the recipe's normalize.image end at {h}x{w} (resize + center_crop, as recipes/messy_folder.yaml does)"
    elif given:
        fix = (f"give {option_name('image_size')} {h}x{w}" + (", or leave it out: the trainer then resizes and centre-crops "
               "every split to the crop's size" if op == "random_resized_crop" else ""))
    else:
        fix = (f"give {option_name('image_size')} {h}x{w} (every split is then brought to it; random_crop shifts the image "
               "within its padding), or crop with random_resized_crop, which the trainer pairs with a resize and centre "
               "crop of every split to its size")
    return (f"the recipe's {where} {op} makes training images {h}x{w}, but val and test images are {H}x{W} ({shown}): "
            f"the model is scored on another size and framing than it learns from; {fix}")


def _loaders(data: str | Path, recipe: dict[str, Any], plan: dict[str, bool], world: int, *, batch_size: int, seed: int,
             device: torch.device, fields: list[str], num_workers: int, balance: dict[str, Any] | None = None,
             on_error: str = "raise", roles: dict[str, list[str]] | None = None,
             train_keys: list[str] | None = None) -> dict[str, Any]:
    """Train: normalize + the recipe's random ops (batched on the device); ``train_keys``: the training samples
    it reads (None: every one). Val / test: normalize only."""
    import mmdata

    common = {"device": device, "modalities": fields, "num_workers": num_workers,
              **({"worker_init_fn": quiet_stop_signals} if num_workers else {}),
              **({"on_error": on_error} if on_error != "raise" else {})}
    loaders = {"train": mmdata.loader(data, batch_size, recipe=recipe, split=role_splits(roles, "train"), seed=seed,
                                      augment_on="device",
                                      cache=plan["train"], balance=balance, **common,
                                      **({"keys": train_keys} if train_keys is not None else {}))}
    for split in ("val", "test"):
        reader = {"partition": False} if world > 1 else {}  # rank 0 evaluates the whole split
        loaders[split] = mmdata.loader(data, batch_size, recipe=recipe, split=role_splits(roles, split), stage="eval",
                                       cache=plan[split],
                                       **common, **reader)
    return loaders


def local_data(data: str | Path, storage_options: dict[str, Any] | None = None, progress: bool = False) -> Path:
    """The local dataset folder to train on: a path as it is, a ``file://`` URL stripped, an fsspec URL
    staged into this node's cache (once per dataset fingerprint; every shard checked by sha256).
    Training reads every split many times, so a remote folder is copied once rather than streamed
    each epoch (litdata's cache and Lhotse's local copies do the same)."""
    from collections.abc import Mapping

    from mmdata.urls import is_remote, local_path, stage_dataset

    if isinstance(data, Mapping):
        raise MMDataError(f"data: the trainer reads one dataset folder, got a mapping {list(data)} (a blend); blends "
                          "are read by mmdata.blend, mmdata.loader({name: folder}, ..., weights=...) and the Lightning "
                          "DataModule — for mmdata train, shard the datasets' tars into one dataset folder: mmdata shard "
                          "'data/*/*.tar' OUT (keys that repeat across the datasets are prefixed with each dataset's "
                          "folder name, A/0001, as a blend keys them; class names merge by name, --labels names.txt "
                          "to choose them)")
    if not is_remote(data):
        return local_path(data, "data")
    return stage_dataset(str(data), storage_options=storage_options, progress=progress)


@contextmanager
def _as_named(data: str | Path, named: str) -> Iterator[None]:
    """An :class:`MMDataError` raised inside names ``named`` (the URL the user gave, redacted) where it
    named ``data`` (the dataset's staged copy in the cache): the user never typed that path, and a fix
    (a split, a label) is made at the URL (QA round 22)."""
    try:
        yield
    except MMDataError as exc:
        staged = str(data)
        if named != staged and exc.args and isinstance(exc.args[0], str) and staged in exc.args[0]:
            exc.args = (exc.args[0].replace(staged, named), *exc.args[1:])
        raise


def _named(data: Any) -> str | None:
    """A remote dataset's URL as messages show it (secrets redacted); None for a local folder (its path).

    Example:
        >>> _named("s3://bkt/huge"), _named("https://u:pw@h/ds"), _named("runs/ds")
        ('s3://bkt/huge', 'https://***@h/ds', None)
    """
    from mmdata.urls import is_remote, redact

    return redact(str(data)) if isinstance(data, str) and is_remote(data) else None


def _target_classes(target: str, goal: Target, values: Values,
                    pretrain_args: dict[str, Any] | None) -> dict[str, int] | None:
    """The training samples' classes that pre-training's same-class negatives (``exclude_same_class``) are
    removed by with a metadata target: its value per sample key (None: the option is off). A target
    with one label per sample has classes; a multi-label or numeric one is refused, naming why."""
    from mmdata.train.contrastive import pretrain_options

    if not pretrain_options(pretrain_args).get("exclude_same_class"):
        return None
    try:
        return class_ids(goal, values)
    except MMDataError as exc:
        raise MMDataError(f"--pretrain-arg exclude_same_class=true with --target {target}: {exc}; a same-class "
                          "negative is a candidate with the row's value of the target, which needs one label per "
                          "sample (a name, a one-label list, or true / false); drop one of them") from None


def setup(data: str | Path, *, fusion: str = "concat", modalities: Sequence[str] | None = None,
          seed: int = 0, recipe: Any = None, batch_size: int = 64, lr: float = 2e-3, weight_decay: float = 1e-4,
          optimizer: str = "adamw", device: str | torch.device = "cpu", threads: int | None = None, num_workers: int = 0,
          cache: bool | str = "auto", cache_budget_mb: float = 256.0, image_size: int | Sequence[int] | None = None,
          channels: int | None = None, sample_rate: int | None = None, max_seconds: float | None = None,
          max_tokens: int | None = None, progress: bool = False, fusion_args: dict[str, Any] | None = None,
          pretrain: str | None = None, pretrain_epochs: int = 10, pretrain_args: dict[str, Any] | None = None,
          probe: bool = False, label_fraction: float = 1.0, storage_options: dict[str, Any] | None = None,
          on_error: str = "raise", train_split: str | Sequence[str] | None = None, val_split: str | None = None,
          test_split: str | None = None, target: str | None = None, **config: Any) -> Run:
    """Check the dataset, settle inputs and classes, build the model, optimiser and loaders (see :func:`train`).

    Every loader gets the same normalize stage (train's input format, its steps chosen over train, val
    and test: :func:`mmdata.train.config.derive_inputs`). ``threads`` sets torch's threads for the
    process; :func:`train` gives the caller its count back (:func:`caller_threads`)."""
    import mmdata
    from mmdata.shards.index import load_card

    t0 = time.perf_counter()
    named = _named(data)  # the dataset as the user gave it (a URL), not its staged copy in the cache
    check_options(fusion=fusion, batch_size=batch_size, lr=lr, weight_decay=weight_decay, optimizer=optimizer,
                  modalities=modalities, on_error=on_error)
    pretrain_only = config.get("epochs") == 0  # contrastive pre-training alone: labels are not needed
    if named is not None:
        # what the card alone decides (its splits, the roles asked of them, its classes) is checked on the remote
        # card before a byte of shard is staged, naming the URL (QA round 22: a dataset without a test split was
        # downloaded whole into the cache, then refused naming the cache's path)
        remote = load_card(str(data), storage_options)
        _classes(named, remote, need_classes=not pretrain_only,
                 roles=split_roles(named, remote, train_split, val_split, test_split), target=target is not None)
    data = local_data(data, storage_options, progress=progress and os.environ.get("LOCAL_RANK", "0") == "0")
    named = named or str(data)
    with _as_named(data, named):  # a staged copy's errors name the URL given, not the cache's folder
        if threads:
            torch.set_num_threads(threads)
        card = load_card(data)
        roles = split_roles(named, card, train_split, val_split, test_split)
        classes, names = _classes(named, card, need_classes=not pretrain_only, roles=roles, target=target is not None)
        st = IndexStats(data, roles)
        modalities, left_out = choose_modalities(st, modalities, card)
        same_class: dict[str, int] | None = None  # a target's classes for exclude_same_class (None: the card's)
        if target is None:
            goal = Target.classes(classes, names)
            if classes:
                st.check_labels(classes)
            samples = {s: st.labels(s) for s in SPLITS}
            data_warnings = class_warnings(st, names)
        else:  # a metadata key: its kind, labels or training mean / sd and counts come from one read of the metadata
            from mmdata.train.contrastive import labelled_balance

            several = several_columns(named, target, target_columns(card))  # not a misspelling of one of them (QA31 D5)
            if several is not None:
                raise several
            try:
                values = read_values(str(data), target, {s: role_splits(roles, s) for s in SPLITS}, on_error=on_error)
            except MMDataError as exc:  # a typo of a column the card lists: "did you mean", not "re-shard it"
                raise misspelt_target(data, target, card, "target (--target)") or exc from None
            # the values whose training labels the model trains on: a --label-fraction's subset (the loader's per-sample
            # draw, known before any pre-training, so a fraction that keeps none is refused before it; QA31 review F1).
            # A regression's mean / sd and the training-label warnings come from them, not the hidden labels too (QA31
            # D3: a label leak); the kind, the label names (the outputs) and the counts stay every sample's. Pre-training
            # alone (--epochs 0) reads no label: every value, as before
            fitted = values if pretrain_only else _kept_values(data, values, labelled_balance(recipe, label_fraction),
                                                               seed, role_splits(roles, "train"))
            try:
                goal, samples, data_warnings = settle(str(data), target, values, trained_on=None if fitted is values
                                                      else {k for k, _ in fitted.by_role.get("train", [])})
            except MMDataError as exc:
                raise misspelt_target(data, target, card, "target (--target)") or exc from None
            data_warnings += constant_labels(goal, fitted, kept=fitted is not values)
            classes, names = goal.outputs, goal.names
            same_class = _target_classes(target, goal, values, pretrain_args)  # before any pre-training
        augmented = set((card.get("augmentation") or {}).get("augmented_splits") or ())
        for role in ("val", "test"):  # scored on augmented copies: the scores are not of the held-out data
            copied = [n for n in ((roles or {}).get(role) or [role]) if n in augmented]
            if copied:
                data_warnings.append(f"the {role} split ({', '.join(copied)}) holds augmented copies (mmdata augment "
                                     f"--augment-split): its scores count each copy; train on the source dataset's "
                                     f"{role} split, or augment only the training splits")
        for s in ("train", "val") if not pretrain_only else ():
            if samples[s]["labelled"] == 0:
                what = f"samples with the metadata key {target!r} (--target {target})" if target else "labelled samples"
                raise MMDataError(f"{named}: the {s} split has no {what} ({samples[s]['samples']} samples); "
                                  "training and model selection need labels")
        if target is None and not pretrain_only:  # one class labelled, the others declared (--labels) but not yet
            counts = st.class_counts("train", classes)
            if int((counts > 0).sum()) < 2:
                raise MMDataError(too_few_labelled_classes(named, names, counts))
        # a supervised run's training loader reads the labelled training samples alone: an unlabelled one would be
        # decoded and forwarded for nothing but BatchNorm statistics, and a batch of them would still step the
        # optimiser (weight decay, momentum): the same labels beside a pool gave another model (QA42 active #5)
        train_keys = None if pretrain_only else _labelled_train_keys(data, roles, samples["train"],
                                                                     values if target is not None else None)
        if train_keys is not None:
            samples["train"]["left_out"] = samples["train"]["samples"] - len(train_keys)
        if not pretrain_only and samples["test"]["labelled"] == 0:  # said, not only null scores
            what = f"the metadata key {target!r}" if target else "a label"
            data_warnings.append(f"no test sample has {what} ({samples['test']['samples']} samples): every test score is "
                                 "null; the model is selected on val and not scored")
        # pre-training alone reads train (and test, for retrieval, when the dataset has it): val may be absent
        splits = [s for s in SPLITS if s in card["splits"]] if pretrain_only else SPLITS
        spec = derive_inputs(st, modalities, image_size=image_size, channels=channels, sample_rate=sample_rate,
                             max_seconds=max_seconds, max_tokens=max_tokens, splits=splits)
        full, norm = with_normalize(recipe, spec)
        unused = spec_ops(full) if "audio" in modalities else []
        if unused:
            data_warnings.append(f"recipe step{'s' * (len(unused) > 1)} {', '.join(unused)} act{'s' * (len(unused) == 1)} on "
                                 f"'spec', the log-mel features: {SPEC_UNUSED}")
        # what the model gets: a recipe's own normalize lists win over the derived steps
        inputs = spec if recipe is None else effective_inputs(spec, norm, modalities, st, splits)
        trained = trained_image_size(full, inputs.image_size) if "image" in modalities else None
        if trained is not None and trained[2] == "random_resized_crop" and image_size is None \
                and not inputs.sources.get("image_size", "").startswith("the recipe's"):  # the derived normalize.image runs
            # after torchvision's pair (RandomResizedCrop(s) trains, Resize(s) + CenterCrop(s) evaluates); the derived
            # normalize stage at s is that resize and centre crop, run on every split, so training's crops are drawn
            # from the centre square, not the whole image as torchvision's are (QA27 D3) (QA27 C3: training crops were
            # 64x64 while val and test were scored at the images' own 48x64, the inputs block saying 48x64)
            derived = spec.sources.get("image_size", "")
            spec = derive_inputs(st, modalities, image_size=trained[0], channels=channels, sample_rate=sample_rate,
                                 max_seconds=max_seconds, max_tokens=max_tokens, splits=splits)
            spec.sources["image_size"] = (f"random_resized_crop ({trained[1]}) crops training images to it; every split is "
                                          f"first resized (shorter side) and centre-cropped to it, the training crops "
                                          f"drawn from that centre square (a wide image's sides are not trained on); "
                                          f"{derived}")
            full, norm = with_normalize(recipe, spec)
            inputs = effective_inputs(spec, norm, modalities, st, splits)
        elif trained is not None:
            data_warnings.append(_size_mismatch(trained, inputs, given=image_size is not None))
        if recipe is not None and "audio" in modalities and inputs.sample_rate:
            from mmdata.train.config import training_resamples

            moved = training_resamples(recipe, inputs.sample_rate)
            if moved:
                raise MMDataError(f"recipe step{'s' * (len(moved) > 1)} {', '.join(moved)} resample{'s' * (len(moved) == 1)} "
                                  f"training audio, but the model takes {inputs.sample_rate} Hz, the rate val and test "
                                  "are scored at: move the resample to normalize.audio (every split) or drop it")
        check_given_inputs({"image_size": image_size, "channels": channels, "sample_rate": sample_rate,
                            "max_seconds": max_seconds, "max_tokens": max_tokens}, spec, inputs)
        rank, world, dev = _dist(device)
        plan = _cache_plan(cache, cache_budget_mb, st, modalities, world, inputs)
        data_warnings += modality_warnings(st, modalities)  # a scored split without a modality the model uses
        # warnings from the index (and below the captions) alone: also said before the first epoch, so a wasted run
        # can be stopped (the others come from training itself or are said with the result)
        early: list[str] = []
        if target is None:  # a sample rate / image mode that tells the class (QA38 bioacoustics #5)
            early += shortcut_warnings(st, names, modalities)
        if "image" in modalities:  # a centre crop that cuts most of tall pages away (QA38 documents #5)
            cut = crop_warning(st, st.rows("train", "image"), inputs.image_size, norm.get("image"))
            if cut is not None:
                early.append(cut)
        data_warnings += early
        data_warnings += duplicate_warnings(data, card, roles)  # the card's copies across the splits read, label conflicts
        if recipe is not None:  # QA33 onemodality #3: recipe parts for modalities the model does not read did nothing, unsaid
            from mmdata.augment.recipe import inert_parts

            inert, none = inert_parts(recipe, modalities, f"the training of {data}")
            data_warnings += [f"recipe: {note}" for note in _unread_not_absent(inert, f"the training of {data}",
                                                                                modalities, card, data)]
            if none and not mmdata.load_recipe(recipe).is_empty:
                data_warnings.append(f"recipe: no step can act on what the model reads ({', '.join(modalities)}): the "
                                     "recipe changes nothing the model sees")
            from mmdata.augment.recipe import label_side_notes

            # a flip of classes named LEFT / RIGHT keeps the label: where the label noise does harm (QA37 review #5)
            data_warnings += [f"recipe: {note}" for note in label_side_notes(recipe, list(names or ()), modalities)]
            from mmdata.augment.recipe import tempo_target_notes

            # a speed change keeps a tempo-like regression target (bpm) as it is (QA39 music #2)
            if target is not None and goal.kind == "regression":
                data_warnings += [f"recipe: {note}" for note in tempo_target_notes(recipe, {target: "regression"},
                                                                                     modalities)]
        torch.manual_seed(seed)
        # channels follow a recipe's own to_gray / to_rgb (any other count cannot enter the encoder); sizes
        # stay the derived ones (the encoder adapts, early fusion pools)
        model = FusionModel(modalities, fusion, max(classes, 1), image_channels=inputs.channels or spec.channels,
                            image_hw=spec.image_size or (16, 16), fusion_args=fusion_args,
                            sample_rate=inputs.sample_rate if "audio" in modalities else None).to(dev)
        from mmdata.train.contrastive import classes_without_labels, prepare  # cross-modal hook: pre-training, probe, labelled subset

        trained = role_splits(roles, "train")  # the split(s) the training role reads (folds: a list)
        with reading("train"):  # pre-training's loader reads the training split(s)
            prep = prepare(model, data, pretrain=pretrain, pretrain_epochs=pretrain_epochs, pretrain_args=pretrain_args,
                           probe=probe, label_fraction=label_fraction, seed=seed, batch_size=batch_size, lr=lr,
                           weight_decay=weight_decay, recipe=full, device=dev, cache=plan["train"], num_workers=num_workers,
                           progress=progress and rank == 0, eval_split=role_splits(roles, "test") if "test" in splits else None,
                           train_split=trained, class_of=same_class, on_error=on_error,
                           eval_normalize=eval_section(inputs, norm, sorted(own_normalize(recipe)), modalities,
                                                       model.image_channels))
        if prep.pretrained is not None:  # on_error="skip": what pre-training and its retrieval left out
            data_warnings += prep.pretrained.warnings(data)
        if target is not None and prep.labelled is not None:  # the kept subset's samples that hold the target
            kept = fitted if fitted is not values else _kept_values(data, values, prep.balance, seed, trained)  # --epochs 0
            prep.labelled = len(kept.labelled("train"))
        if target is None and prep.balance is not None and not pretrain_only:  # the subset is drawn per sample
            bare = classes_without_labels(data, prep.balance, seed, trained)
            if bare:
                data_warnings.append(
                    f"class{'es' * (len(bare) > 1)} " + ", ".join(f"{names[c]!r} (id {c})" if names and c < len(names) else f"id {c}"
                                                                 for c in bare)
                    + f" {'have' if len(bare) > 1 else 'has'} training samples but no labelled one under --label-fraction "
                    f"{label_fraction:g} ({prep.labelled} of {samples['train']['labelled']} training labels kept, drawn per "
                    "sample, not stratified): the model cannot learn "
                    f"{'them' if len(bare) > 1 else 'it'}; give a larger fraction (or another --seed)")
        net: torch.nn.Module = model
        if world > 1:
            net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)
        loaders = {} if pretrain_only else _loaders(data, full, plan, world, batch_size=batch_size, seed=seed, device=dev,
                                                    fields=[*modalities, "label" if target is None else META_FIELD],
                                                    num_workers=num_workers, balance=prep.balance,
                                                    on_error=on_error, roles=roles, train_keys=train_keys)
        cfg = {"fusion": fusion, "modalities": modalities, "modalities_left_out": left_out, "seed": seed, "batch_size": batch_size,
               "lr": lr, "weight_decay": weight_decay, "optimizer": optimizer, "device": str(dev),
               # the threads torch used, not the option: their count changes float sums, so a run is reproduced with it
               "threads": torch.get_num_threads(),
               "num_workers": num_workers, "cache": cache, "cache_budget_mb": cache_budget_mb,
               "recipe": None if recipe is None else mmdata.load_recipe(recipe).to_dict(), "world_size": world,
               "fusion_args": dict(fusion_args or {}), **prep.config, **config,
               **({"on_error": on_error} if on_error != "raise" else {}),  # the default's config as before
               # the split names each role read, the default run's too (QA33: evaluate tells a run's own training
               # split from held-out data by them)
               "splits": roles if roles is not None else {s: [s] for s in splits},
               **({"target": target} if target is not None else {})}
        run = Run(data=Path(data), config=cfg, spec=inputs, normalize=norm, classes=classes, names=names, samples=samples,
                  cache=plan, rank=rank, world=world, device=dev, model=model, net=net,
                  opt=_optimizer(model, optimizer, lr, weight_decay), loaders=loaders, card=card, target=goal, progress=progress, prep=prep, t0=t0,
                  warnings=data_warnings, keep_val_inputs=plan["val"] and VAL_INPUTS_FACTOR * decoded_bytes(st, "val", modalities, inputs) <= cache_budget_mb * 2**20)
        if roles is not None:
            run.say("splits: " + "; ".join(f"{role} = {', '.join(n)}" for role, n in roles.items())
                    + " (--train-split / --val-split / --test-split)")
        unread = unused_fields(card, modalities)
        run.say((f"{named}: {_described(goal, fitted if target is not None else None)}" if classes
                 else f"{named}: no classes (pre-training only)")
                + (f"\none modality ({modalities[0]}): {fusion} reduces to encoder + head (no fusion across modalities: "
                   "a comparison of fusions on this data compares heads)" if len(modalities) == 1 and classes else "")
                + (f"\nmodalities: {', '.join(modalities)}; left out: " + "; ".join(f"{m} ({why})" for m, why in left_out.items())
                   if left_out else "")
                + (f"\nstored fields the model does not read (it reads {', '.join(modalities)} and the label): "
                   + ", ".join(f"{f} ({plural(n, 'sample')})" for f, n in unread.items()) if unread else ""))
        # rank 0 alone prints the summary and writes metrics.json: the other ranks do not read the captions
        run.text_units = (text_units(data, role_splits(roles, "train"), on_error=on_error, card=card,
                                     names=names if target is None else None)
                          if "text" in modalities and rank == 0 else None)
        leak = label_leak_warning(run.text_units, names) if target is None else None
        if leak is not None:  # captions that name their class (QA38 signals #9)
            run.warnings.append(leak)
            early.append(leak)
        run.say("inputs (from the training split's index stats unless given; set with image_size= / --image-size etc."
                + ("; a recipe's own normalize lists win" if inputs is not spec else "") + "):\n  "
                + inputs.describe().replace("\n", "\n  ")
                + (f"\n  {describe_text_units(run.text_units)}" if run.text_units else ""))
        run.say("normalize (every split, before the recipe's random ops): "
                + ("; ".join(f"{m}: " + ", ".join(step["op"] for step in steps) for m, steps in norm.items()) or "nothing to do"))
        run.say("samples: " + ", ".join(f"{s} {c['samples']} ({c['unlabelled']} unlabelled)" for s, c in samples.items())
                + ("; contrastive pre-training and its retrieval use every sample, labelled or not (no classifier is trained)"
                   if pretrain_only else "; unlabelled samples are left out of the loss and the scores"
                   + (f"; the {samples['train']['left_out']} unlabelled training samples are not read by the training "
                      "loader (no forward pass, no BatchNorm statistics, no optimiser step)"
                      if samples["train"].get("left_out") else "")
                   + ("; contrastive pre-training uses them" if prep.pretrained is not None else ""))
                + (f"; training labels kept: {prep.labelled} of {samples['train']['labelled']} (--label-fraction "
                   f"{label_fraction:g})" if prep.labelled is not None and not pretrain_only else "") + "\n"
                + "splits decoded once into memory: " + (", ".join(s for s, v in plan.items() if v) or "none")
                + f" (cache={cache!r}, budget {cache_budget_mb:g} MiB); the rest is streamed")
        if sample_rate is not None and "audio" in modalities and inputs.sample_rate:  # the loader says it once, mid-epoch
            from collections import Counter

            above = Counter(int(r) for r in st.values("audio_sample_rate", st.rows_in(splits, "audio"))
                            if r > inputs.sample_rate)
            if above:
                run.say(f"note: {sum(above.values())} clips of {', '.join(splits)} are recorded above the given "
                        f"{inputs.sample_rate} Hz (" + ", ".join(f"{r} Hz: {n}" for r, n in sorted(above.items())[:4])
                        + (", ..." if len(above) > 4 else "") + f"): resampled down, nothing above "
                        f"{inputs.sample_rate // 2} Hz of them reaches the model")
        for w in early:
            run.say(f"warning (from the index; listed again with the result): {w}")
        fraction = float(config.get("label_noise") or 0.0)
        if fraction > 0 and not pretrain_only:
            run.noise = _label_noise(data, goal, roles, fraction, seed, fitted if target is not None else None, prep.balance)
            run.say(f"label noise: {len(run.noise.replaced)} of {run.noise.of} labelled training samples get another "
                    + ("class (one that has training samples)" if goal.kind == "classes" else "target")
                    + f" (--label-noise {fraction:g}: {fraction:g} x {run.noise.of}, half rounded up; a choice fixed by the seed, "
                    "the same every epoch and in every copy a balance section repeats; their keys: metrics.json label_noise)")
        return run


def _label_noise(data: str | Path, goal: Target, roles: dict[str, list[str]] | None, fraction: float, seed: int,
                 read: Values | None, balance: dict[str, Any] | None) -> LabelNoise:
    """The run's label noise over the labelled training samples it trains on: the card's labels (from the
    index, those a ``--label-fraction`` keeps) or a target's values (``read``: already that subset)."""
    trained = role_splits(roles, "train")
    if read is None:
        from mmdata.train.contrastive import labelled_keys
        from mmdata.train.outputs import index_columns

        labels = {k: int(v) for k, v in index_columns(data, trained, ("label",))["label"].items() if v is not None and v >= 0}
        kept = labelled_keys(data, balance, seed, trained)
        if kept is not None:
            labels = {k: v for k, v in labels.items() if k in kept}
    elif goal.kind == "classes":
        labels = class_ids(goal, Values({"train": read.by_role.get("train", [])}, read.seen_keys))
    else:
        labels = dict.fromkeys(read.labelled("train"))
    return plan_label_noise(labels, fraction, seed, goal.kind, goal.outputs)


def _labelled_train_keys(data: str | Path, roles: dict[str, list[str]] | None, counts: dict[str, int],
                         values: Values | None) -> list[str] | None:
    """The training samples a supervised run trains on when the training split holds unlabelled ones: those
    with a label (``values``: a metadata target's, those holding its key); None when every one is labelled (the
    loader then reads the split as it always did: a fully labelled run's batches are unchanged)."""
    if not counts.get("unlabelled"):
        return None
    if values is not None:
        return sorted(values.labelled("train"))
    from mmdata.train.outputs import index_columns

    labels = index_columns(data, role_splits(roles, "train"), ("label",))["label"]
    return sorted(k for k, v in labels.items() if v is not None and v >= 0)


def _kept_values(data: str | Path, read: Values, balance: dict[str, Any] | None, seed: int,
                 split: str | Sequence[str] = "train") -> Values:
    """``read`` with only the training samples the loader's ``balance`` (a label fraction's) keeps
    (:func:`~mmdata.train.contrastive.kept_keys`, with or without a class label)."""
    from mmdata.train.contrastive import kept_keys

    kept = kept_keys(data, balance, seed, split)
    if kept is None:
        return read
    return Values({**read.by_role, "train": [(k, v) for k, v in read.by_role.get("train", []) if k in kept]}, read.seen_keys)


def train_epoch(run: Run, epoch: int) -> dict[str, Any]:
    """One pass over this rank's part of the training split; returns ``{epoch, train_loss, train_rows,
    train_unlabelled}`` (loss averaged over the labelled rows)."""
    loader = run.loaders["train"]
    loader.set_epoch(epoch)
    run.net.train()
    noise = run.noise if run.noise is not None else 0.0
    total = torch.zeros((), dtype=torch.float64, device=run.device)
    labelled = torch.zeros((), dtype=torch.float64, device=run.device)
    # the first step whose loss is not finite (-1: none), kept on the device: read once, at the end of the epoch
    first_bad = torch.full((), -1, dtype=torch.int64, device=run.device)
    bad_loss = torch.zeros((), dtype=torch.float32, device=run.device)
    rows = unlabelled = 0
    seen: list[str] = []
    with run.net.join() if run.world > 1 else nullcontext(), reading("train"):  # type: ignore[operator]
        torch.empty((), dtype=torch.int64).random_()  # the draw torch's DataLoader made before mmdata's loader passed
        # its own generator: training's RNG stream (dropout, mixing) stays as it was
        for step, batch in enumerate(_progress(run, loader, f"epoch {epoch}")):
            loss, n = train_step(run.net, run.opt, batch, run.target, label_noise=noise, seed=run.config["seed"])
            now = (first_bad < 0) & ~torch.isfinite(loss)
            first_bad = torch.where(now, step, first_bad)
            bad_loss = torch.where(now, loss.float(), bad_loss)
            total += loss.double() * n
            labelled += n
            rows += len(batch)
            unlabelled += len(batch) - int(run.target.labelled(batch).sum())  # host metadata: no device read
            seen.extend(batch.keys)
    if not rows:
        _nothing_read(run, "train", f"epoch {epoch}", loader)
    bad = int(first_bad)
    if bad >= 0:
        raise _diverged(run, epoch, bad, float(bad_loss))
    # the last step can break the weights or BatchNorm's running statistics with a finite loss: the
    # evaluation that follows would see them (one read per epoch)
    state = [t for t in (*run.model.parameters(), *run.model.buffers()) if t.is_floating_point()]
    if rows and state and not bool(torch.stack([torch.isfinite(t).all() for t in state]).all()):
        raise _diverged(run, epoch, step, weights=True)
    record = os.environ.get("MMDATA_RECORD_SEEN")  # tests: which keys each rank trained on
    if record:
        with open(Path(record) / f"seen-rank{run.rank}.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"epoch": epoch, "keys": seen}) + "\n")
    return {"epoch": epoch, "train_loss": float(total / labelled.clamp(min=1)), "train_rows": rows,
            "train_unlabelled": unlabelled}


def _nothing_read(run: Run, split: str, what: str, loader: Any) -> None:
    """Raise when a pass over ``split`` (this process's whole split: no DDP) read no batch though the split
    has samples: DataLoader workers that failed (an open-file limit too low for their shared memory,
    ``unable to open shared memory object ... Too many open files``) deliver nothing and print their
    errors, and the run trained and scored nothing, then failed with a TypeError."""
    n = run.samples.get(split, {}).get("samples", 0)
    if not n or run.world > 1:  # a DDP rank's part of a tiny split may be empty
        return
    skipped = sum(getattr(loader, "skipped", {}).values())
    if skipped:
        raise MMDataError(f"{what}: every sample of the {split} split ({n}) was skipped (--on-error skip): nothing to "
                          f"{'train on' if split == 'train' else 'score'}; see the samples' errors above")
    workers = int(run.config.get("num_workers") or 0)
    if workers:
        import resource

        fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        raise MMDataError(f"{what}: the {split} split has {n} samples but its {workers} DataLoader workers (--workers "
                          f"{workers}) delivered no batch; their errors are printed above (often 'Too many open "
                          f"files': the open-file limit is {fds}, raise it with ulimit -n, e.g. 4096, or use "
                          "--workers 0)")
    raise MMDataError(f"{what}: the {split} split has {n} samples but the reader delivered no batch")


def _diverged(run: Run, epoch: int, step: int, loss: float = math.nan, weights: bool = False,
             logits: tuple[int, int] | None = None) -> MMDataError:
    """The error for a loss that became NaN or infinite: one line, where it happened and the likely causes
    (without it the NaN weights crashed the evaluation with "Class values must be smaller than num_classes").

    The loop keeps the first bad step on the device and reads it once per epoch (no sync per step), so
    the rest of that epoch still runs: NaN weights never recover, and the run ends there."""
    from mmdata.train.fusions import FUSIONS

    cfg = run.config
    fusion = cfg.get("fusion")
    own = fusion in FUSIONS and not (FUSIONS[fusion].__module__ or "").startswith("mmdata.")
    hint = [f"lr {cfg.get('lr'):g} too high? try a lower --lr (lr=)".replace("e+", "e")]
    if own:
        hint.append(f"or your fusion {fusion!r} returns non-finite logits")
    if logits is not None:
        what = f"the model's logits are not finite on {logits[0]} of {logits[1]} val samples after epoch {epoch}"
    elif weights:
        what = f"the weights are not finite after epoch {epoch}, step {step} (the loss was finite up to it)"
    else:
        what = f"the loss is {'NaN' if math.isnan(loss) else loss} at epoch {epoch}, step {step}"
    return MMDataError(f"training diverged: {what} ({'; '.join(hint)})")


def _progress(run: Run, batches: Any, what: str, split: str = "train") -> Iterator[Batch]:
    """``batches`` under an epoch's bar (rank 0): redrawn on a terminal, a plain line per
    ``MMDATA_PROGRESS_INTERVAL`` off one ("training epoch 0: 120/400 batches", not "epoch 0: ..." which
    scripts read as an epoch's result line), none with ``MMDATA_PROGRESS=off`` (see :mod:`mmdata.progress`).
    ``split``: whose sample count sizes the bar; any other ``what`` than ``"epoch ..."`` is shown as given
    (the evaluation after training: "evaluating test: 3/47 batches")."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    from mmdata.progress import PlainProgress, make_progress

    bar = make_progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        transient=True, unit="batches") if run.progress and run.rank == 0 else None
    if bar is None:
        yield from batches
        return
    epoch = what.startswith("epoch")
    n = run.samples.get(split, {}).get("samples")
    total = -(-n // (run.config["batch_size"] * (run.world if epoch else 1))) if n else None  # rank 0 evaluates all
    with bar:
        task = bar.add_task(f"training {what}" if epoch and isinstance(bar, PlainProgress) else what, total=total)
        for b in batches:
            yield b
            bar.advance(task)


_RNG_HELD = threading.local()  # caller_rng: the outermost block of this thread restores, nested ones pass
_F = TypeVar("_F", bound=Callable[..., Any])


def _rng_devices(device: Any) -> list[int]:
    """The CUDA devices whose generators a run on ``device`` may draw from (none for a CPU run: CUDA is not
    initialised for it; an unknown device name is left to the run's own check)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        return []
    if dev.type != "cuda" or not torch.cuda.is_available():
        return []
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # a rank's own process, its own GPU (see _dist)
        return [int(os.environ.get("LOCAL_RANK", "0"))]
    return list(range(torch.cuda.device_count()))  # torch.manual_seed seeded every one of them


@contextmanager
def caller_rng(device: Any = "cpu") -> Iterator[None]:
    """Give the caller torch's global random state back when the block ends, raised or not: a run seeds
    it (``torch.manual_seed(seed)``) and draws from it, and the caller's own stream (``torch.initial_seed()``,
    ``torch.get_rng_state()``, the CUDA devices' with a CUDA ``device``) must not depend on having trained.
    Inside the block the run sees the state as before (its results do not change); a nested block (pre-training
    inside :func:`train`) passes, so the outer run's stream goes on through it as before.

    The state is the process's: runs in two threads at once still share it (and ``warnings``' filters), so a
    process trains one run at a time (parallel runs: processes, ``mmdata ablate -j``).

    Example:
        >>> _ = torch.manual_seed(7); before = torch.get_rng_state()
        >>> with caller_rng():
        ...     _ = torch.manual_seed(0)
        >>> torch.initial_seed(), torch.equal(torch.get_rng_state(), before)
        (7, True)
    """
    if getattr(_RNG_HELD, "depth", 0):
        yield
        return
    _RNG_HELD.depth = 1
    try:
        with torch.random.fork_rng(devices=_rng_devices(device)):
            yield
    finally:
        _RNG_HELD.depth = 0


def keeps_caller_rng(fn: _F) -> _F:
    """``fn`` (a run taking ``device=``) inside :func:`caller_rng`: its caller's random state is given back."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with caller_rng(kwargs.get("device", "cpu")):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextmanager
def caller_threads() -> Iterator[None]:
    """Give the caller its torch intra-op and inter-op thread counts back when the block ends, raised
    or not (``train(threads=1)`` must not leave the process at one thread).

    Example:
        >>> n = torch.get_num_threads()
        >>> with caller_threads():
        ...     torch.set_num_threads(1)
        >>> torch.get_num_threads() == n
        True
    """
    intra, inter = torch.get_num_threads(), torch.get_num_interop_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != intra:
            torch.set_num_threads(intra)
        if torch.get_num_interop_threads() != inter:  # settable once per process: restore only what was changed
            try:
                torch.set_num_interop_threads(inter)
            except RuntimeError as exc:  # parallel work has started: say so rather than hide the block's outcome
                import warnings

                warnings.warn(f"could not restore torch's {inter} inter-op threads: {exc}", RuntimeWarning, stacklevel=3)


#: the CLI's spellings of train()'s keywords (``--workers`` / ``-j``, ``--robustness``)
TRAIN_ALIASES = {"workers": "num_workers", "jobs": "num_workers", "j": "num_workers", "robustness": "eval_robustness",
                 "epoch": "epochs"}


@keyword_hints("mmdata.train.train", aliases=TRAIN_ALIASES, reserved={
    "label_names": "the class names come from the dataset's card (mmdata.shard(..., label_names=...) sets them)"})
def train(data: str | Path, *, fusion: str = "concat", modalities: Sequence[str] | None = None,
          epochs: int = 15, seed: int = 0, recipe: Any = None, out: str | Path | None = None, batch_size: int = 64,
          lr: float = 2e-3, weight_decay: float = 1e-4, optimizer: str = "adamw", device: str | torch.device = "cpu",
          label_noise: float = 0.0, threads: int | None = None, eval_robustness: bool = True,
          progress: bool = False, num_workers: int = 0, cache: bool | str = "auto", cache_budget_mb: float = 256.0,
          image_size: int | Sequence[int] | None = None, channels: int | None = None, sample_rate: int | None = None,
          max_seconds: float | None = None, max_tokens: int | None = None, fusion_args: dict[str, Any] | None = None,
          pretrain: str | None = None, pretrain_epochs: int = 10, pretrain_args: dict[str, Any] | None = None,
          probe: bool = False, label_fraction: float = 1.0, storage_options: dict[str, Any] | None = None,
          on_error: str = "raise", train_split: str | Sequence[str] | None = None, val_split: str | None = None,
          test_split: str | None = None, target: str | None = None,
          plugins: Sequence[str] | None = None) -> dict[str, Any]:
    """Train the reference fusion model on a dataset folder with image, audio and/or text and train / val / test
    splits (other fields, such as ``.npy`` arrays, need your own trainer: docs/ablation.md); returns
    (and writes) the metrics.

    Args:
        data: dataset folder (``mmdata shard RAW DATA --split train=0.8,val=0.1,test=0.1``, or
            ``mmdata datasets build avdigits DATA``): a path, a ``file://`` URL, or an fsspec URL
            (``s3://bucket/ds``) — a URL's folder is staged once into this node's cache, every shard
            checked against its sha256 (:func:`mmdata.urls.stage_dataset`), and trained on from there.
        fusion: one of ``mmdata.train.FUSIONS`` (early, concat, late, mean, max, gated, attention,
            cross_attention, tensor, low_rank, hierarchical, two_tower).
        modalities: the modalities the model uses (one modality = a unimodal baseline); each must be
            in at least one training sample. None: every modality the training split has (those left
            out, and why, are in ``config["modalities_left_out"]``).
        epochs, batch_size, lr, weight_decay, optimizer (``adamw`` | ``sgd``): optimisation.
        seed: fixes init, data order, augmentation draws and label-noise flips. The run seeds torch's
            global RNG with it; the caller's global RNG state (CPU, and the CUDA devices' for a CUDA run)
            is given back when ``train`` returns or raises. That state (and ``warnings``' filters) is the
            process's: ``train`` runs one at a time per process — two calls in threads at once are not
            reproducible; run in parallel with processes (``mmdata ablate -j``).
        recipe: augmentation recipe (path / dict / Recipe) applied to training batches.
        out: folder for ``metrics.json``, ``predictions.parquet`` (test split, written batch by batch)
            and ``model.pt`` (state dict).
        device: ``cpu``, ``cuda`` or ``cuda:N``, as a name or a :class:`torch.device` (under torchrun: ``cuda`` =
            the rank's ``LOCAL_RANK``).
        label_noise: fraction of training labels flipped (a planted harmful control for ablations): exactly
            ``floor(label_noise * n + 0.5)`` (half up) of the ``n`` labelled training samples, a choice fixed by
            ``seed`` (every copy a recipe's ``balance`` repeats of one of them too), each flipped class to another
            class that has training samples (a target: another label set / number); ``metrics["label_noise"]``
            records ``fraction``, ``flipped``, ``of`` and the flipped ``keys`` (sorted; beyond 1000 the first 1000
            and ``keys_sha256`` of all).
        threads: torch intra-op threads for the run (None: leave as is); the caller's count is
            restored when ``train`` returns or raises.
        eval_robustness: also compute missing-modality and corruption robustness on test (one extra
            streamed pass; ``False`` skips it, e.g. in ablations that only read accuracy).
        progress: print the derived inputs, a progress bar and one line per epoch (stderr).
        num_workers: DataLoader worker processes per split. Each epoch's samples and their augmentation
            draws do not depend on it, but each worker makes its own batches, so the batches, the
            training and the metrics do: keep it fixed to reproduce a run.
        cache: ``"auto"`` keeps a split decoded in memory when its decoded size (estimated from the
            index) fits ``cache_budget_mb`` together with the splits before it; ``True`` / ``False``
            always / never.
        cache_budget_mb: memory budget of ``cache="auto"`` in MiB.
        image_size, channels, sample_rate, max_seconds, max_tokens: the model's input format; ``None``
            derives each from the training split's statistics (:mod:`mmdata.train.config`); one
            normalize stage brings train, val and test (robustness included) to it, its steps chosen
            from the statistics of all three (``metrics["inputs"]["needs"]``). A recipe's
            own ``normalize`` list for a modality replaces its derived steps; ``metrics["inputs"]``
            records what the stage that runs produces. A value given here that such a list would
            override (``image_size=48`` beside a list resizing to 24) is refused, naming both.
        fusion_args: options of the fusion (``hierarchical``: ``order``; ``two_tower``: ``towers``,
            ``interaction``; docs/fusions.md; KEY=VALUE,... on the command line).
        pretrain: ``"contrastive"``: pre-train the encoders first (CLIP-style symmetric InfoNCE per
            modality pair; docs/crossmodal.md); ``contrastive.pt`` and test retrieval are written.
        pretrain_epochs: epochs of pre-training.
        pretrain_args: pre-training options ``dim``, ``temperature``, ``exclude_same_class``,
            ``batch_size``, ``lr`` (KEY=VALUE,... on the command line).
        probe: freeze the encoders and train one linear layer on their features (linear evaluation).
        label_fraction: fraction of training labels used (each kept with this probability per sample
            key and seed, not stratified; the supervised epochs see only those; a class left without
            labelled training samples is warned of).
        storage_options: options of a URL ``data``'s fsspec filesystem (``{"endpoint_url": ...}`` for
            s3fs); None: the protocol's defaults (environment variables, config files, instance roles).
            Never written to the metrics.
        on_error: ``"raise"``: a sample that does not decode (a float WAV holding NaN passes the default
            ``--check header``) stops the run with an error naming its shard and key and how to find
            and fix such samples; ``"skip"``: such samples are left out of training and of every score
            and counted (``metrics["skipped"]``: split -> reason -> samples, and a warning).
        train_split, val_split, test_split: which of the dataset's splits play train, val and test
            (None for all three: the splits named so). ``val_split`` / ``test_split``: one name each
            (not given: ``val`` / ``test``); ``train_split``: a name, ``"A,B,C"`` or a list read as
            one split, by default every other split of the dataset — k-fold cross-validation over
            folds sharded as splits (``--column split=fold``): ``val_split="4", test_split="5"``
            trains on 1, 2, 3. The metrics keep the roles' names (``test``, ``val``, ``samples``);
            ``config["splits"]`` records the split names each played.
        target: None: predict the card's class label. A metadata key (a ``--meta`` column of the
            manifest, each sample's ``.json`` member): lists of names (or one name per sample) train a
            **multi-label** model (one sigmoid per label; scores micro / macro F1, mAP, subset accuracy,
            Hamming loss; best epoch by val micro-F1), numbers a **regression** (standardised squared
            error; MAE, RMSE, Pearson r, R²; best epoch by val MAE). A sample without the key is
            unlabelled. ``metrics["target"]`` records the kind, labels or training mean / sd
            (:mod:`mmdata.train.targets`). A recipe's mixing ops mix the targets (``lam * y_i + (1 - lam)
            * y_partner``: label vectors under BCE, standardised numbers under squared error);
            ``label_fraction`` keeps the same seeded subset of training samples as for classes
            (``labelled_train``: those of them holding the key); ``probe`` and ``pretrain`` work as for
            classes. ``pretrain_args={"exclude_same_class": True}`` takes the target's classes when it
            holds one label per sample (a name, a one-label list, or true / false): a same-class
            negative is a candidate with the row's value, known for the labelled training samples
            (of ``label_fraction``'s subset); a multi-label or numeric target is refused.
        plugins: modules (``"pkg.myops"``, or ``"pkg.myops:register"``) to import first, whose ops and fusions
            the recipe and ``fusion`` may name (``mmdata train --plugin``); ``config["plugins"]`` records them in
            the order given, so the run is loaded back with the same (``load_model`` / ``mmdata evaluate --plugin``).

    Returns:
        ``{"test": {accuracy, macro_f1, balanced_accuracy, nll, ece}, "val": {...}, "per_class": {"test": {name: {...}}},
        "samples": {split: {samples, labelled, unlabelled}} (the index's counts; with ``on_error="skip"``
        also ``skipped`` and, for val / test, ``scored``: the labelled / unlabelled samples the scores are
        over), "classes", "inputs", "robustness",
        "best_epoch", "history", "config", "cache", "n_params", "data_fingerprint", "correct_on_test",
        "wall_s"}`` — ``correct_on_test``: which labelled test examples the best model got right
        (:class:`mmdata.train.evaluate.Correctness`; None above 100,000 examples, and for a ``target``).
        With a ``target``: its scores in ``test`` / ``val`` and ``"target"`` in place of ``"classes"``.

    Example:
        >>> import tempfile
        >>> from mmdata.datasets.avdigits import build
        >>> ds = build(tempfile.mkdtemp() + "/av", limit=10, progress=False)
        >>> m = train(ds, epochs=1, threads=1, eval_robustness=False)
        >>> 0 <= m["test"]["accuracy"] <= 1, m["samples"]["test"]["unlabelled"]
        (True, 0)
    """
    # every option and the output folder are checked before a sample is read or a model is trained
    from mmdata.plugins import load_plugins

    # recorded in config["plugins"]: a run whose fusion or ops a plugin registered is loaded back with them (QA33)
    plugins = load_plugins(plugins or [], entry_points=False, where="plugins=")
    if isinstance(fusion, str):
        from mmdata.train.fusions import fusion_class

        fusion_class(fusion)  # a name not registered yet: an installed plugin's (entry points) may register it
    if epochs == 0 and pretrain is None:
        raise MMDataError("epochs=0 (--epochs 0) trains no classifier; it pre-trains the encoders alone, with "
                          "pretrain='contrastive' (--pretrain contrastive)")
    if epochs == 0 and probe:
        raise MMDataError("probe=True (--probe) trains a linear layer, and epochs=0 (--epochs 0) trains none")
    check_options(fusion=fusion, batch_size=batch_size, lr=lr, weight_decay=weight_decay, optimizer=optimizer,
                  modalities=modalities, label_noise=label_noise, eval_robustness=eval_robustness, on_error=on_error,
                  train_split=train_split, val_split=val_split, test_split=test_split, target=target,
                  **({"epochs": epochs} if epochs != 0 else {}))
    locked: Any = nullcontext()
    if out is not None:
        from mmdata.train.outputs import check_out, out_lock, remove_leftovers

        check_out(out)
        check_out_folder(out)  # not a dataset's folder nor a foreign one (a rerun's own outputs are replaced)
        if os.environ.get("RANK", "0") == "0":  # rank 0 writes the outputs: a second job into out is refused
            locked = out_lock(out)
    with locked:
        if out is not None:
            remove_leftovers(out)  # a killed run's temp files: nothing else would ever remove them
        metrics = _train_checked(data, fusion=fusion, modalities=modalities, epochs=epochs, seed=seed, recipe=recipe,
                                 out=out, batch_size=batch_size, lr=lr, weight_decay=weight_decay, optimizer=optimizer,
                                 device=device, label_noise=label_noise, threads=threads, eval_robustness=eval_robustness,
                                 progress=progress, num_workers=num_workers, cache=cache, cache_budget_mb=cache_budget_mb,
                                 image_size=image_size, channels=channels, sample_rate=sample_rate, max_seconds=max_seconds,
                                 max_tokens=max_tokens, fusion_args=fusion_args, pretrain=pretrain,
                                 pretrain_epochs=pretrain_epochs, pretrain_args=pretrain_args, probe=probe,
                                 label_fraction=label_fraction, storage_options=storage_options, on_error=on_error,
                                 train_split=train_split, val_split=val_split, test_split=test_split, target=target,
                                 plugins=plugins)
    said_to_caller(metrics.get("warnings"), stacklevel=4)  # the caller's line: past keyword_hints' wrapper
    return metrics


def said_to_caller(messages: Sequence[str] | None, stacklevel: int = 3) -> None:
    """Raise each of a result's ``warnings`` as a :class:`TrainWarning`, each text once, attributed to the
    line ``stacklevel`` frames up (3: the line that called the function calling this). Each call says
    them again: the default filter's registry would hide a rerun notebook cell's; filters that ignore
    TrainWarning or make it an error decide as usual.

    Example:
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     said_to_caller(["a", "b", "a"], stacklevel=2)
        >>> [str(w.message) for w in caught]
        ['a', 'b']
    """
    from mmdata.shards.writer import say_to_caller  # the one helper: shard / augment / blend say theirs so

    # one frame more: say_to_caller's own
    say_to_caller(list(dict.fromkeys(str(m) for m in messages or ())), TrainWarning, stacklevel=stacklevel + 1)


def _train_checked(data: str | Path, *, device: str, **kw: Any) -> dict[str, Any]:
    """:func:`_train` with the caller's RNG kept, and an undecodable sample's error naming --on-error skip."""
    try:
        with caller_rng(device):  # the run seeds torch's global RNG: the caller gets its own state back
            return _train(data, device=device, **kw)
    except MMDataError as exc:
        hinted = undecodable(exc, data, skip="; or leave them out of this run with --on-error skip (on_error='skip'; "
                                              "in an ablation recipe, trainer: {on_error: skip})")
        if hinted is None:
            raise
        raise hinted from None


def _train(data: str | Path, *, fusion: str, modalities: Sequence[str] | None, epochs: int, seed: int, recipe: Any,
           out: str | Path | None, batch_size: int, lr: float, weight_decay: float, optimizer: str, device: str,
           label_noise: float, threads: int | None, eval_robustness: bool, progress: bool, num_workers: int,
           cache: bool | str, cache_budget_mb: float, image_size: int | Sequence[int] | None, channels: int | None,
           sample_rate: int | None, max_seconds: float | None, max_tokens: int | None,
           fusion_args: dict[str, Any] | None, pretrain: str | None, pretrain_epochs: int,
           pretrain_args: dict[str, Any] | None, probe: bool, label_fraction: float,
           storage_options: dict[str, Any] | None, on_error: str, train_split: str | Sequence[str] | None,
           val_split: str | None, test_split: str | None, target: str | None = None,
           plugins: Sequence[str] = ()) -> dict[str, Any]:
    """:func:`train` once its options and ``out`` are checked."""
    # threads= sets torch's threads for the run, not for the caller after it; each split's loader warns of
    # padding once: said once for the run, naming the splits
    with caller_threads(), said_once() as padding:
        run = setup(data, fusion=fusion, modalities=modalities, seed=seed, recipe=recipe, batch_size=batch_size, lr=lr,
                    weight_decay=weight_decay, optimizer=optimizer, device=device, threads=threads, num_workers=num_workers,
                    cache=cache, cache_budget_mb=cache_budget_mb, image_size=image_size, channels=channels,
                    sample_rate=sample_rate, max_seconds=max_seconds, max_tokens=max_tokens, epochs=epochs,
                    label_noise=label_noise, eval_robustness=eval_robustness, progress=progress, fusion_args=fusion_args,
                    pretrain=pretrain, pretrain_epochs=pretrain_epochs, pretrain_args=pretrain_args, probe=probe,
                    label_fraction=label_fraction, storage_options=storage_options, on_error=on_error,
                    train_split=train_split, val_split=val_split, test_split=test_split, target=target,
                    plugins=list(plugins))
        padding.roles = run.config.get("splits")
        padding.reshaped = reshaping_ops(run.config.get("recipe"))
        run.padding = padding  # finish() records its warnings in the result
        if epochs == 0:
            return pretrained_only(run, out)
        best: tuple[float, int, dict[str, Any] | None, dict[str, Any] | None] = (-math.inf, -1, None, None)
        metric, higher = run.target.selection  # the val score that picks the best epoch: accuracy for classes
        val_batches: Any = run.loaders["val"]
        if run.rank == 0 and run.keep_val_inputs:  # val is in memory: collate it and compute its model inputs once
            with torch.random.fork_rng(devices=[]), reading("val"):
                val_batches = prepare_eval(run.model, val_batches)
        for epoch in range(epochs):
            try:
                rec = train_epoch(run, epoch)
            except MMDataError as exc:
                hinted = _crop_hint(exc, run.spec)
                if hinted is None:
                    raise
                raise hinted from None
            if run.rank == 0:
                # a DataLoader draws its base seed: keep training's stream intact
                with torch.random.fork_rng(devices=[]), reading("val"):
                    # picks the epoch: no auroc / auprc here (every row's probabilities kept and ranked, each
                    # epoch: QA36 review train #1); the best epoch's val is ranked once, after the loop
                    val = evaluate(run.model, val_batches, run.target, names=run.names, ranking=False)
                if not val["labelled"] + val["unlabelled"]:
                    _nothing_read(run, "val", f"epoch {epoch} (val)", run.loaders["val"])
                if val["nonfinite"]:  # finite weights, overflowing logits (lr 1e12 after one step): the loss saw nothing yet
                    raise _diverged(run, epoch, -1, logits=(val["nonfinite"], val["labelled"]))
                v = val["scores"][metric]
                rec[f"val_{metric}"] = v
                run.history.append(rec)
                run.say(f"epoch {epoch}: loss {rec['train_loss']:.3f}  val {'acc' if metric == 'accuracy' else metric} {v:.3f}")
                if (v if higher else -v) > best[0]:  # the best epoch's val evaluation is the final one: same weights, same batches
                    best = (v if higher else -v, epoch, copy.deepcopy(run.model.state_dict()), val)
        if run.world > 1:
            torch.distributed.barrier()
        if run.rank != 0:
            torch.distributed.destroy_process_group()
            return {}
        if best[2] is None:  # every val score undefined: nothing picked an epoch (a TypeError before)
            raise MMDataError(f"no epoch of {epochs} gave a val {metric} (every one was undefined: NaN): no model "
                              "to report; check the val split's labels")
        run.model.load_state_dict(best[2])
        metrics = finish(run, best[1], out, val=_ranked_val(run, val_batches, best[3]))
        if run.world > 1:
            torch.distributed.destroy_process_group()
        return metrics


def _unread_not_absent(notes: Sequence[str], label: str, modalities: Sequence[str], card: Mapping[str, Any] | None,
                       data: Any) -> list[str]:
    """:func:`mmdata.augment.recipe.inert_parts`'s notes (about ``label``, the run) reworded where the dataset has
    the modality and the run only does not read it (``--modalities`` / ``trainer.modalities``): "the training of D
    has no audio" read as a claim about the data (QA36 medical #8).

    Example:
        >>> _unread_not_absent(["section 'audio' (gain) has no effect: the training of d has no audio (it has image)"],
        ...                    "the training of d", ["image"], {"modalities": {"audio": {"count": 3}}}, "d")[0]
        "section 'audio' (gain) has no effect: this run reads only image (the modalities it was given), not the audio 3 samples of d have"
    """
    mods = (card or {}).get("modalities") or {}
    held = {m: int(v.get("count", 0) or 0) for m, v in mods.items() if isinstance(v, Mapping)} if isinstance(mods, Mapping) else {}
    reads = ", ".join(m for m in ("image", "audio", "text") if m in modalities)
    out = []
    for note in notes:
        head, sep, why = note.partition(": ")
        for m in ("image", "audio", "text"):
            if held.get(m) and m not in modalities and why.startswith(f"{label} has no {m}"):
                note = (f"{head}{sep}this run reads only {reads} (the modalities it was given), not the {m} "
                        f"{held[m]} sample{'s' * (held[m] != 1)} of {data} {'have' if held[m] != 1 else 'has'}")
                break
        out.append(note)
    return out


#: audio ops that change the clips' lengths (the train loader's padding numbers come before them)
RESHAPING_AUDIO = ("random_crop", "speed", "pad", "pad_trim", "resample")


def reshaping_ops(recipe: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The random audio ops of ``recipe`` (a recipe's dict) that change the clips' lengths, each once.

    Example:
        >>> reshaping_ops({"audio": [{"op": "random_crop", "seconds": 1.0}, {"op": "gain"}]})
        ('random_crop',)
        >>> reshaping_ops({"audio": [{"op": "one_of", "ops": [{"op": "random_crop"}, {"op": "speed"}]}]})
        ('random_crop', 'speed')
    """
    def walk(steps: Any) -> Iterator[str]:  # one_of / some_of children too (review C F6)
        for s in steps if isinstance(steps, list) else []:
            if isinstance(s, Mapping):
                if s.get("op") in RESHAPING_AUDIO:
                    yield str(s.get("op"))
                yield from walk(s.get("ops"))

    return tuple(dict.fromkeys(walk((recipe or {}).get("audio") or [])))


def _crop_hint(exc: MMDataError, spec: InputSpec) -> MMDataError | None:
    """``exc`` (a ``random_crop`` larger than its image) with the trainer's advice when the trainer set
    the image size (derived or given, not a recipe's own normalize.image): it already resizes every
    image, so the fix is a smaller crop or a larger ``image_size``. None for any other error.

    Example:
        >>> e = MMDataError("sample 'a': random_crop size [500, 500] exceeds the padded image [32, 32]" + CROP_ADVICE)
        >>> print(str(_crop_hint(e, InputSpec(image_size=(32, 32), sources={"image_size": "given"}))).split("; ")[1][:74])
        the trainer brings every image to 32x32 (image_size (--image-size), given)
    """
    msg, src = str(exc), spec.sources.get("image_size", "")
    if "random_crop size" not in msg or CROP_ADVICE not in msg or not spec.image_size or src.startswith("the recipe's"):
        return None
    h, w = spec.image_size
    fix = (f"; the trainer brings every image to {h}x{w} ({option_name('image_size')}, {src}) before the recipe's "
           f"random ops: give the random_crop a size of at most [{h}, {w}] (or padding), or, with mmdata train, a larger "
           f"--image-size (image_size=)")
    return type(exc)(msg.replace(CROP_ADVICE, fix))


def pretrained_only(run: Run, out: str | Path | None) -> dict[str, Any]:
    """``epochs=0``: the encoders were pre-trained (:func:`setup`'s hook) and no classifier is trained:
    metrics.json holds the pre-training and its test retrieval, and ``contrastive.pt`` the model (for
    ``mmdata match`` / :func:`mmdata.train.contrastive.load`); no model.pt, no predictions."""
    if run.world > 1:
        torch.distributed.barrier()
        if run.rank != 0:
            torch.distributed.destroy_process_group()
            return {}
    metrics = run_metrics(run)
    said = run.warnings + (run.padding.take() if run.padding is not None else [])
    if said:
        metrics["warnings"] = said
    metrics["versions"] = software()
    metrics["code"] = _code()
    metrics["wall_s"] = time.perf_counter() - run.t0
    if out is not None:
        save_outputs(run, out, metrics, None)
    if run.world > 1:
        torch.distributed.destroy_process_group()
    return metrics


def own_normalize(recipe: Any) -> list[str]:
    """The modalities a recipe's own ``normalize:`` section lists (they replace the derived steps)."""
    if recipe is None:
        return []
    import mmdata

    return list((mmdata.load_recipe(recipe).to_dict().get("normalize") or {}))


def run_metrics(run: Run) -> dict[str, Any]:
    """What metrics.json records of the run itself, trained or pre-trained only: samples, classes, the
    input format and normalize stage, config, cache plan, size, the data's fingerprint, pre-training."""
    return {
        "samples": run.samples,
        **({"classes": {"num_classes": run.classes, "names": run.names}} if run.target.kind == "classes"
           else {"target": run.target.to_dict()}),
        "inputs": {**run.spec.to_dict(), **({"text_units": run.text_units} if run.text_units else {})},
        "normalize": run.normalize,
        # what rebuilds the network (the image size it was BUILT with: the derived one, not a recipe's) and
        # what brings a sample in any format to its inputs (mmdata.train.load_model)
        "model": run.model.architecture(),
        "eval_normalize": eval_section(run.spec, run.normalize, sorted(own_normalize(run.config.get("recipe"))),
                                       run.model.mods, run.model.image_channels),
        "config": run.config,
        "cache": run.cache,
        "n_params": sum(p.numel() for p in run.model.parameters()),
        "data_fingerprint": run.card.get("fingerprint"),
        **({"label_noise": run.noise.record()} if run.noise is not None else {}),
        **(run.prep.metrics() if run.prep is not None else {}),
    }


def save_outputs(run: Run, out: str | Path, metrics: dict[str, Any], model: torch.nn.Module | None,
                 predictions: str | None = None) -> None:
    """metrics.json, model.pt (with a ``model``), the pre-training's contrastive.pt and the finished
    ``predictions`` temp file in ``out``, replaced together (:func:`mmdata.train.outputs.write_outputs`)."""
    from mmdata.train.outputs import write_outputs

    extra = run.prep.files() if run.prep is not None else {}
    write_outputs(Path(out), metrics, model, predictions=predictions, extra=extra)


#: BatchNorm running statistics (momentum 0.1) keep 0.9^n of their initial values after n training
#: batches: below this many, eval-mode scores measure the initial statistics as much as the data's
MIN_BATCHNORM_BATCHES = 30


def batchnorm_warnings(model: torch.nn.Module, best_epoch: int, epochs: int | None) -> list[str]:
    """A warning when the reported model's BatchNorm statistics come from few training batches (a small
    dataset, a large batch, an early best epoch): its val / test scores (eval mode) are then unreliable.

    Example:
        >>> m = torch.nn.Sequential(torch.nn.BatchNorm1d(2))
        >>> _ = m(torch.randn(4, 2))
        >>> batchnorm_warnings(m, 0, 2)[0][:60]
        'the reported model (best epoch 1 of 2) normalises with Batch'

    ``best_epoch`` is the 0-based index (``metrics["best_epoch"]``, the ``epoch 0:`` lines); "epoch X of M"
    counts from 1, as the ablation report's "the best epoch was the last (M of M)" does, and the warning names
    the progress line it is (``the "epoch X-1:" line, best_epoch X-1 in metrics.json``), as ``mmdata train``'s
    test line does (QA36 mir #3: "best epoch 3 of 3" read as a fourth epoch beside "epoch 2:").
    """
    counts = [int(mod.num_batches_tracked) for mod in model.modules()
              if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and mod.num_batches_tracked is not None]
    seen = min(counts, default=MIN_BATCHNORM_BATCHES)
    if seen >= MIN_BATCHNORM_BATCHES:
        return []
    which = f"{best_epoch + 1} of {epochs}" if epochs else f"{best_epoch}"
    return [f"the reported model (best epoch {which}) normalises with BatchNorm statistics from only {seen} "
            f"training batch{'es' * (seen != 1)} (momentum 0.1 keeps {0.9 ** seen:.0%} of their initial values), so its "
            f"val / test scores are unreliable; train more epochs or use a smaller --batch-size (at least "
            f"{MIN_BATCHNORM_BATCHES} batches before the best epoch)"
            + (f"; best epoch {best_epoch + 1} of {epochs} is the \"epoch {best_epoch}:\" line (best_epoch {best_epoch} "
               "in metrics.json)" if epochs else "")]


def _ranked_val(run: Run, val_batches: Any, val: dict[str, Any]) -> dict[str, Any]:
    """The best epoch's val evaluation (made with ``ranking=False``) with its ``auroc`` / ``auprc`` (and
    ``auroc_skipped``): one more clean pass over val with the best weights (loaded), the only one that keeps every
    row's probabilities — the per-epoch passes keep none (QA36 review train #1). Its other scores are the epoch's,
    which chose it (the ``epoch N:`` line's)."""
    if run.target.kind != "classes" or not val.get("labelled"):
        return val
    with torch.random.fork_rng(devices=[]), reading("val"):
        again = evaluate(run.model, val_batches, run.target, names=run.names, ranking=True)
    out = {**val, "scores": {**val["scores"], **{k: again["scores"].get(k) for k in ("auroc", "auprc")}}}
    if again.get("auroc_skipped"):
        out["auroc_skipped"] = again["auroc_skipped"]
    return out


def finish(run: Run, best_epoch: int, out: str | Path | None, val: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate the (best) model on test — predictions streamed to ``out`` — and on val unless ``val``
    (its evaluation at the best epoch) is given, and write the outputs."""
    from mmdata.train.outputs import PredictionWriter, index_columns, no_room

    if val is None:
        with reading("val"):
            val = evaluate(run.model, _progress(run, run.loaders["val"], "evaluating val", "val"), run.target,
                           names=run.names)
    writer = None
    if out is not None:
        tested = role_splits(run.config.get("splits"), "test")
        cols = index_columns(run.data, tested, ("source_key", "split"))
        # folds as the test role (--test-split 5): each row names its fold, so folds' predictions can be joined
        writer = PredictionWriter(Path(out) / "predictions.parquet", split="test" if tested == "test" else cols["split"],
                                  target=run.target, source_keys=cols["source_key"])
    # which test examples were right: an ablation measures the test split's share of its noise (classes only)
    correct = Correctness() if run.target.kind == "classes" else None

    def sink(batch: Batch, logits: torch.Tensor) -> None:
        if correct is not None:
            correct(batch, logits)
        if writer is not None:
            writer(batch, logits)

    try:
        with reading("test"):
            # with robustness, each batch is scored clean, without each modality and at every corruption level
            what = "evaluating test" + (" (robustness)" if run.config["eval_robustness"] else "")
            test = evaluate(run.model, _progress(run, run.loaders["test"], what, "test"), run.target,
                            modalities=run.config["modalities"],
                            robustness=run.config["eval_robustness"], seed=run.config["seed"], names=run.names, sink=sink)
        # kept under its temp name: renamed with metrics.json and model.pt (save_outputs), all or none
        predictions = writer.finish() if writer is not None else None
    except BaseException as exc:
        if writer is not None:
            writer.abort()
        refused = no_room(exc, out) if out is not None else None
        if refused is not None:
            raise refused from None
        raise
    try:
        return _finished(run, best_epoch, out, val, test, correct, predictions)
    except BaseException:
        if predictions is not None:
            Path(predictions).unlink(missing_ok=True)
        raise


def _finished(run: Run, best_epoch: int, out: str | Path | None, val: dict[str, Any], test: dict[str, Any],
              correct: Correctness | None, predictions: str | None) -> dict[str, Any]:
    """:func:`finish` once test is evaluated: the metrics, written with the finished ``predictions`` temp file."""
    metrics: dict[str, Any] = {
        "test": test["scores"],
        "val": val["scores"],
        "per_class": {"val": val["per_class"], "test": test["per_class"]},
        "best_epoch": best_epoch,
        "history": run.history,
        "correct_on_test": None if correct is None else correct.code(),
        **run_metrics(run),
    }
    skipped_ranking = {s: r["auroc_skipped"] for s, r in (("val", val), ("test", test)) if r.get("auroc_skipped")}
    if skipped_ranking:  # the classes auroc / auprc's one-vs-rest mean leaves out, per split (no sample there)
        metrics["auroc_skipped"] = skipped_ranking
    if "robustness" in test:
        metrics["robustness"] = test["robustness"]
        mods = run.model.mods
        if len(mods) == 1 and mods[0] not in test["robustness"]["not_applicable"]:  # why `missing` is empty (QA33)
            test["robustness"]["not_applicable"][mods[0]] = (
                "the only modality: removing it leaves no input (every prediction the head's bias), so `missing` has "
                "no score; its corruption curve is measured")
    warnings = run.warnings + batchnorm_warnings(run.model, best_epoch, run.config.get("epochs"))
    if run.padding is not None:  # the loaders' padding warnings, test's included: in the result as printed (analyst D2)
        warnings += run.padding.take()
    if run.config.get("on_error", "raise") != "raise":  # on_error="skip": what each split's last pass left out
        skipped = {s: dict(sorted(run.loaders[s].skipped.items())) for s in SPLITS}
        metrics["skipped"] = skipped
        # the index's counts stay; beside them what was left out, and what val / test's scores are over
        samples = {s: {**c, "skipped": sum(skipped.get(s, {}).values())} for s, c in run.samples.items()}
        for s, r in (("val", val), ("test", test)):
            if s in samples and "labelled" in r:
                samples[s]["scored"] = {"labelled": r["labelled"], "unlabelled": r["unlabelled"]}
        metrics["samples"] = samples
        from mmdata.train.contrastive import skip_warning  # one wording with pre-training's and the retrieval's

        for s, counts in skipped.items():
            said = skip_warning(s, counts, run.data, "training" if s == "train" else "its scores")
            if said:
                warnings.append(said)
    bad = {"test": test.get("nonfinite", 0), "the robustness evaluation": test.get("robustness", {}).get("nonfinite", 0)}
    for where, n in bad.items():
        if n:  # said, not hidden: such rows are scored at chance (mmdata.train.evaluate)
            warnings.append(f"the model's logits were NaN or infinite on {n} labelled samples of {where}: they were "
                            "scored as uniform predictions (chance), so those scores understate a working model")
    if warnings:
        metrics["warnings"] = warnings
    metrics["versions"] = software()  # what explains figures that differ on another machine in the last digits
    metrics["code"] = _code()
    metrics["wall_s"] = time.perf_counter() - run.t0
    if out is not None:
        save_outputs(run, out, metrics, run.model, predictions=predictions)
    return metrics
