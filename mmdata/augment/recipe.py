"""Recipes: YAML files that build augmentation pipelines, and serialise back to the same YAML.

```yaml
seed: 0
image:
  - {op: hflip, p: 0.5}
  - {op: random_resized_crop, p: 1.0, size: [32, 32], scale: [0.6, 1.0], ratio: [0.75, 1.333]}
audio:
  - {op: gain, p: 0.5, min_db: -6, max_db: 6}
text:
  - {op: token_mask, p: 0.5, p_token: 0.15}
sample:
  - {op: modality_dropout, p: 0.3, modalities: [image, audio, text], p_drop: 0.3, keep_at_least: 1}
batch:
  - {op: mixup, p: 0.5, alpha: 0.2}
balance: {by: label, mode: over}
```

Ops run section by section in the order ``image, audio, text, sample`` (per sample) and then
``batch`` (after collate). Op *i* (its position across the whole recipe) draws its params from
``mmdata.rng.param_rng(seed, epoch, sample key, i)``, so a sample's params never depend on the worker,
the batch, the device or a resume point. ``to_yaml()`` writes the canonical form (every argument
explicit); a canonical file round-trips byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mmdata.augment.base import Op, Shape, build_op
from mmdata.augment.image import ImageOp, run_hwc
from mmdata.augment.mix import BatchOp
from mmdata.errors import RecipeError
from mmdata.rng import derive, param_rng
from mmdata.types import Batch, Sample

SAMPLE_SECTIONS = ("image", "audio", "text", "sample")
TOP_KEYS = ("seed", "image", "audio", "text", "sample", "batch", "balance")
BALANCE_KEYS = {"by": ("label", "modalities"), "mode": ("under", "over", "repeat_factor", "none")}


def validate_balance(spec: Any, where: str = "balance") -> dict[str, Any] | None:
    """Check a ``balance`` section / loader argument; returns the normalised dict (or None)."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise RecipeError(f"{where}: expected a mapping with keys by, mode, threshold, fraction, seed; got {spec!r}")
    allowed = ("by", "mode", "threshold", "fraction", "seed")
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {unknown}; allowed: {list(allowed)}")
    out: dict[str, Any] = {"by": spec.get("by", "label"), "mode": spec.get("mode", "none")}
    for k, choices in BALANCE_KEYS.items():
        if out[k] not in choices:
            raise RecipeError(f"{where}.{k}: {out[k]!r} is not allowed; choose one of {list(choices)}")
    th = spec.get("threshold", 0.1)
    if not isinstance(th, (int, float)) or not 0 < float(th) <= 1:
        raise RecipeError(f"{where}.threshold: expected a number in (0, 1], got {th!r}")
    out["threshold"] = float(th)
    frac = spec.get("fraction")
    if frac is not None:
        vals = frac.values() if isinstance(frac, Mapping) else [frac]
        if not all(isinstance(v, (int, float)) and 0 <= float(v) <= 1 for v in vals):
            raise RecipeError(f"{where}.fraction: expected a number in [0, 1] or {{class: number}}, got {frac!r}")
        out["fraction"] = {str(k): float(v) for k, v in frac.items()} if isinstance(frac, Mapping) else float(frac)
    if "seed" in spec:
        if not isinstance(spec["seed"], int):
            raise RecipeError(f"{where}.seed: expected an integer, got {spec['seed']!r}")
        out["seed"] = spec["seed"]
    return out


class _View:
    """What an op's ``draw`` sees of batch row i: presence, shapes, strings — without uncollating."""

    def __init__(self, batch: Batch, i: int, host: dict[str, Any]) -> None:
        self.key = batch.keys[i]
        self.sample_rate = batch.sample_rate
        self._b, self._i, self._host = batch, i, host

    def __contains__(self, name: object) -> bool:
        pres = self._host["present"].get(name)
        return pres[self._i] if pres is not None else False

    def __getitem__(self, name: str) -> Any:
        b, i, lens = self._b, self._i, self._host["lengths"]
        if name == "text":
            return b["text"][i]
        if name == "image":
            h, w = lens["image"][i]
            return Shape((b["image"].shape[1], h, w))
        if name == "audio":
            return Shape((b["audio"].shape[1], lens["audio"][i]))
        if name in lens:
            return Shape(tuple(lens[name][i]))
        val = b[name]
        return Shape(tuple(val.shape[1:])) if hasattr(val, "shape") else val[i]


class Recipe:
    """A loaded recipe: ops per section, a seed, and an optional balance config.

    Example:
        >>> r = load_recipe({"seed": 1, "text": [{"op": "token_mask", "p": 1.0, "p_token": 0.5}]})
        >>> out = r.apply_sample(Sample("k", {"text": "a b c d e f"}))
        >>> out["text"].count("[MASK]") > 0, out.meta["aug"][0]["op"]
        (True, 'text.token_mask')
    """

    def __init__(self, seed: int, sections: dict[str, list[Op]], balance: dict[str, Any] | None = None) -> None:
        self.seed = seed
        self.sections = sections
        self.balance = balance
        self._indexed: list[tuple[int, str, Op]] = []
        i = 0
        for sec in (*SAMPLE_SECTIONS, "batch"):
            for op in sections.get(sec, []):
                self._indexed.append((i, sec, op))
                i += 1
        # the per-sample plan: runs of consecutive image ops (one HWC array each), other ops one by one
        self._runs: list[Any] = []
        for i, sec, op in self._indexed:
            if sec == "batch":
                continue
            if isinstance(op, ImageOp):
                if not (self._runs and isinstance(self._runs[-1], list)):
                    self._runs.append([])
                self._runs[-1].append((i, op))
            else:
                self._runs.append((i, sec, op))

    # -- construction / serialisation ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": self.seed}
        for sec in (*SAMPLE_SECTIONS, "batch"):
            if self.sections.get(sec):
                out[sec] = [op.to_dict() for op in self.sections[sec]]
        if self.balance is not None:
            out["balance"] = dict(self.balance)
        return out

    def to_yaml(self) -> str:
        """Canonical YAML: one flow-style line per step, sections in application order."""
        d = self.to_dict()
        lines = [f"seed: {d['seed']}"]
        for sec in (*SAMPLE_SECTIONS, "batch"):
            if sec in d:
                lines.append(f"{sec}:")
                lines += [f"  - {_flow(step)}" for step in d[sec]]
        if "balance" in d:
            lines.append(f"balance: {_flow(d['balance'])}")
        return "\n".join(lines) + "\n"

    def with_seed(self, seed: int) -> Recipe:
        """The same ops with another seed (ops are stateless, so they are shared)."""
        return Recipe(seed, self.sections, self.balance)

    @property
    def ops(self) -> list[tuple[int, str, Op]]:
        """(global op index, section, op) in application order."""
        return list(self._indexed)

    @property
    def is_empty(self) -> bool:
        return not self._indexed

    @property
    def has_batch_ops(self) -> bool:
        return bool(self.sections.get("batch"))

    # -- per sample ------------------------------------------------------------------------------
    def apply_sample(self, sample: Sample, epoch: int = 0) -> Sample:
        """Run the image, audio, text and sample sections with the per-sample CPU kernels; the applied
        params are appended to ``sample.meta["aug"]`` (the replay log)."""
        if not self._indexed:
            return sample
        log = list(sample.meta.get("aug", ()))

        def draw(i: int, op: Op, view: Any) -> dict[str, Any]:
            return op.draw(param_rng(self.seed, epoch, sample.key, i), view)

        for run in self._runs:
            if isinstance(run, list):  # consecutive image ops: one HWC array, one conversion each way
                sample = run_hwc(run, sample, draw, log)
                continue
            i, sec, op = run
            params = draw(i, op, sample)
            if params.get("applied") or op.always_transforms:
                sample = op.apply(sample, params)
            log.append({"op": f"{sec}.{op.name}", "index": i, "params": params})
        return sample.with_meta(aug=log)

    def replay(self, sample: Sample, log: Sequence[Mapping[str, Any]]) -> Sample:
        """Re-apply a replay log (from ``meta["aug"]`` or Parquet): reproduces the output exactly."""
        by_index = {i: op for i, _, op in self._indexed}
        for entry in log:
            op = by_index.get(int(entry["index"]))
            if op is None or f"{op.section}.{op.name}" != entry["op"]:
                raise RecipeError(f"replay log entry {entry['op']} #{entry['index']} does not match this recipe")
            if entry["params"].get("applied") or op.always_transforms:
                sample = op.apply(sample, dict(entry["params"]))
        return sample

    # -- batched ---------------------------------------------------------------------------------
    def draw_batch_params(self, batch: Batch, index: int, op: Op, epoch: int) -> list[dict[str, Any]]:
        host = {"present": {k: v.tolist() for k, v in batch.present.items()},  # python lists: cheap per-row reads
                "lengths": {k: v.tolist() for k, v in batch.lengths.items()}}
        return [op.draw(param_rng(self.seed, epoch, key, index), _View(batch, i, host)) for i, key in enumerate(batch.keys)]

    def apply_batched(self, batch: Batch, epoch: int = 0) -> Batch:
        """Run the image, audio, text and sample sections with the batched torch kernels on the batch's
        device, with each sample's params drawn exactly as :meth:`apply_sample` draws them."""
        logs: list[list[dict[str, Any]]] = [[] for _ in batch.keys]
        for i, sec, op in self._indexed:
            if sec == "batch":
                continue
            params = self.draw_batch_params(batch, i, op, epoch)
            if any(p.get("applied") for p in params) or op.always_transforms:
                batch = op.apply_batch(batch, params)
            for lg, p in zip(logs, params):
                lg.append({"op": f"{sec}.{op.name}", "index": i, "params": p})
        out = batch.replace()
        out.meta["aug"] = logs
        return out

    def apply_batch_section(self, batch: Batch, epoch: int = 0) -> Batch:
        """Run the ``batch:`` section (mixgen, mixup); params are drawn per batch (its keys' hash)."""
        ops = [(i, op) for i, sec, op in self._indexed if sec == "batch"]
        if not ops:
            return batch
        bkey = "batch:" + hashlib.blake2b("\x1f".join(batch.keys).encode(), digest_size=8).hexdigest()
        applied = []
        for i, op in ops:
            assert isinstance(op, BatchOp)
            params = op.draw_batch(derive(self.seed, epoch, bkey, i), batch)
            batch = op.apply_batch(batch, params)
            applied.append({"op": f"batch.{op.name}", "index": i, "params": params})
        out = batch.replace()
        out.meta["aug_batch"] = applied
        return out


def _flow(obj: Any) -> str:
    return yaml.safe_dump(obj, default_flow_style=True, sort_keys=False, width=10**6).strip()


def _load_mapping(source: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(source, Mapping):
        return dict(source), "recipe"
    text = None
    path = Path(str(source))
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and path.suffix in (".yaml", ".yml")):
        if not path.is_file():
            raise RecipeError(f"recipe file {path} not found")
        text, where = path.read_text(encoding="utf-8"), path.name
    else:
        text, where = str(source), "recipe"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{where}: invalid YAML ({exc})") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: expected a mapping with sections {list(TOP_KEYS)}, got {type(data).__name__}")
    return data, where


def load_recipe(source: str | Path | Mapping[str, Any] | Recipe | None) -> Recipe:
    """Load a recipe from a YAML path, a YAML string, or a dict (validated; errors name the key).

    Raises:
        RecipeError: unknown section / op / key, or a value out of range — the message names the
            recipe key (``image[1].scale``) and the allowed values.
    """
    if isinstance(source, Recipe):
        return source
    if source is None:
        return Recipe(0, {})
    data, where = _load_mapping(source)
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise RecipeError(f"{where}: unknown section(s) {unknown}; allowed: {list(TOP_KEYS)}")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise RecipeError(f"{where}: seed must be an integer, got {seed!r}")
    sections: dict[str, list[Op]] = {}
    for sec in (*SAMPLE_SECTIONS, "batch"):
        steps = data.get(sec) or []
        if not isinstance(steps, list):
            raise RecipeError(f"{where}: section {sec!r} must be a list of steps like {{op: NAME, p: 0.5}}")
        sections[sec] = [build_op(sec, step, f"{sec}[{j}]") for j, step in enumerate(steps)]
    balance = validate_balance(data.get("balance"))
    return Recipe(seed, sections, balance)


def params_seed(*parts: object) -> int:
    """Combine seeds (e.g. a recipe's and a run's) into one, deterministically."""
    from mmdata.rng import derive_int

    return derive_int(*parts) % (2**62)


__all__ = ["Recipe", "load_recipe", "validate_balance", "params_seed", "np"]
