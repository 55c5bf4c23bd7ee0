"""Ablation recipes (YAML): which data, which trainer, which baseline, which arms.

```yaml
dataset: {name: avdigits, seed: 0}        # or {path: data/}
trainer: {fusion: concat, epochs: 8, batch_size: 64, lr: 0.002, modalities: [image, audio, text]}
seeds: 10
design:
  mode: leave_one_out                     # leave_one_out | add_one | explicit | sweep
  recipe: recipes/avdigits.yaml           # the full recipe (leave_one_out, add_one); path or mapping
  # explicit:  baseline: <recipe or null>, arms: {name: <recipe>, ...}
  # sweep:     baseline: <recipe or null>, section: image, op: cutout, param: size, values: [[0.1, 0.2], [0.2, 0.4]]
controls: {identity: true, label_noise: 0.3}
```

* ``leave_one_out``: baseline = the full recipe; arm ``-image.cutout`` = the full recipe without that step.
* ``add_one``: baseline = no augmentation; arm ``+image.cutout`` = only that step.
* ``explicit``: a baseline recipe and named arms.
* ``sweep``: the baseline with one step's parameter set to each value (the step is added if absent).
* Controls, added automatically: ``identity`` — the baseline with a different augmentation seed, i.e.
  the same distribution with fresh draws (an A/A check; identical to the baseline when the baseline
  has no random ops); ``label_noise`` — the baseline with that fraction of training labels flipped
  (a planted harmful arm; off unless asked).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmdata.augment.recipe import SAMPLE_SECTIONS, load_recipe
from mmdata.errors import RecipeError

MODES = ("leave_one_out", "add_one", "explicit", "sweep")
TRAINER_KEYS = ("fusion", "epochs", "batch_size", "lr", "weight_decay", "optimizer", "modalities", "device")
IDENTITY_SEED_OFFSET = 7919


@dataclass
class Arm:
    """One configuration trained on every seed."""

    name: str
    recipe: dict[str, Any] | None
    label_noise: float = 0.0
    kind: str = "arm"  # baseline | arm | control


@dataclass
class Ablation:
    """A resolved ablation: dataset, trainer config, seeds and arms (baseline first)."""

    dataset: dict[str, Any]
    trainer: dict[str, Any]
    seeds: int
    arms: list[Arm]
    metric: str = "accuracy"
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def baseline(self) -> Arm:
        return self.arms[0]

    def resolved(self) -> dict[str, Any]:
        """Everything needed to reproduce the runs (written to config.resolved.yaml)."""
        return {"dataset": self.dataset, "trainer": self.trainer, "seeds": self.seeds, "metric": self.metric,
                "arms": [{"name": a.name, "kind": a.kind, "label_noise": a.label_noise, "recipe": a.recipe} for a in self.arms]}

    def run_hash(self, arm: Arm, seed: int, data_fingerprint: str) -> str:
        payload = {"trainer": self.trainer, "recipe": arm.recipe, "label_noise": arm.label_noise, "seed": seed,
                   "data": data_fingerprint}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _recipe_dict(spec: Any, where: str, base: Path) -> dict[str, Any] | None:
    if spec is None:
        return None
    if isinstance(spec, str) and not spec.strip().startswith("{") and "\n" not in spec:
        p = Path(spec)
        if not p.is_absolute() and not p.exists():
            p = base / p
        if not p.exists():
            raise RecipeError(f"{where}: recipe file {spec!r} not found")
        spec = p
    try:
        return load_recipe(spec).to_dict()
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from exc


def _steps(recipe: dict[str, Any]) -> list[tuple[str, int, dict[str, Any]]]:
    return [(sec, i, step) for sec in (*SAMPLE_SECTIONS, "batch") for i, step in enumerate(recipe.get(sec, []))]


def _without(recipe: dict[str, Any], sec: str, i: int) -> dict[str, Any]:
    r = copy.deepcopy(recipe)
    del r[sec][i]
    if not r[sec]:
        del r[sec]
    return r


def _resolved_arms(spec: Any, base: Path) -> list[Arm]:
    """The ``arms:`` list of a resolved config: [{name, kind, label_noise, recipe}], baseline first."""
    if not isinstance(spec, list) or not spec:
        raise RecipeError("arms: expected a non-empty list of {name, kind, label_noise, recipe}")
    arms = []
    for i, a in enumerate(spec):
        where = f"arms[{i}]"
        if not isinstance(a, dict) or "name" not in a:
            raise RecipeError(f"{where}: expected a mapping with name, kind, label_noise, recipe")
        bad = sorted(set(a) - {"name", "kind", "label_noise", "recipe"})
        if bad:
            raise RecipeError(f"{where}: unknown key(s) {bad}; allowed: name, kind, label_noise, recipe")
        kind = a.get("kind", "arm")
        if kind not in ("baseline", "arm", "control"):
            raise RecipeError(f"{where}.kind: {kind!r} is not allowed; choose one of ['baseline', 'arm', 'control']")
        if (kind == "baseline") != (i == 0):
            raise RecipeError(f"{where}.kind: the first arm, and only the first, must be the baseline")
        ln = float(a.get("label_noise", 0.0) or 0.0)
        if not 0 <= ln < 1:
            raise RecipeError(f"{where}.label_noise: expected a fraction in [0, 1), got {ln!r}")
        arms.append(Arm(str(a["name"]), _recipe_dict(a.get("recipe"), f"{where}.recipe", base), label_noise=ln, kind=kind))
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise RecipeError(f"arm names must be unique, got {names}")
    return arms


def load_ablation(source: str | Path | dict[str, Any], seeds: int | None = None) -> Ablation:
    """Read and validate an ablation recipe; errors name the key and the allowed values."""
    base = Path(".")
    if isinstance(source, dict):
        data = copy.deepcopy(source)
    else:
        p = Path(source)
        if not p.is_file():
            raise RecipeError(f"ablation recipe {p} not found")
        base = p.parent
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise RecipeError("ablation recipe: expected a mapping with dataset, trainer, seeds, design, controls")
    resolved = "arms" in data  # DIR/config.resolved.yaml: the arms spelled out (re-run or resume a finished ablation)
    allowed = {"dataset", "trainer", "seeds", "metric"} | ({"arms"} if resolved else {"design", "controls"})
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RecipeError(f"ablation recipe: unknown key(s) {unknown}; allowed: {', '.join(sorted(allowed))} "
                          "(a resolved config lists arms: instead of design: and controls:)")
    dataset = data.get("dataset") or {"name": "avdigits", "seed": 0}
    if not isinstance(dataset, dict) or not ({"name", "path"} & set(dataset)):
        raise RecipeError("dataset: expected {name: avdigits, seed: S} or {path: DIR}")
    if "name" in dataset and dataset["name"] != "avdigits":
        raise RecipeError(f"dataset.name: {dataset['name']!r} is not an embedded dataset; allowed: ['avdigits'] (or give path:)")
    trainer = dict(data.get("trainer") or {})
    bad = sorted(set(trainer) - set(TRAINER_KEYS))
    if bad:
        raise RecipeError(f"trainer: unknown key(s) {bad}; allowed: {list(TRAINER_KEYS)}")
    trainer = {"fusion": "concat", "epochs": 8, "batch_size": 64, "lr": 2e-3, "modalities": ["image", "audio", "text"], **trainer}
    n_seeds = int(seeds if seeds is not None else data.get("seeds", 10))
    if n_seeds < 2:
        raise RecipeError(f"seeds: need at least 2 paired seeds, got {n_seeds}")
    if resolved:
        return Ablation(dataset=dataset, trainer=trainer, seeds=n_seeds, arms=_resolved_arms(data["arms"], base),
                        metric=data.get("metric", "accuracy"), source=data)
    design = data.get("design") or {}
    mode = design.get("mode", "explicit")
    if mode not in MODES:
        raise RecipeError(f"design.mode: {mode!r} is not allowed; choose one of {list(MODES)}")
    arms: list[Arm] = []
    if mode in ("leave_one_out", "add_one"):
        full = _recipe_dict(design.get("recipe"), "design.recipe", base)
        if not full or not _steps(full):
            raise RecipeError(f"design.recipe: {mode} needs a recipe with at least one step")
        if mode == "leave_one_out":
            arms.append(Arm("baseline (full recipe)", full, kind="baseline"))
            for sec, i, step in _steps(full):
                arms.append(Arm(f"-{sec}.{step['op']}", _without(full, sec, i)))
        else:
            arms.append(Arm("baseline (no augmentation)", None, kind="baseline"))
            for sec, i, step in _steps(full):
                arms.append(Arm(f"+{sec}.{step['op']}", {"seed": full.get("seed", 0), sec: [step]}))
    elif mode == "explicit":
        arms.append(Arm("baseline", _recipe_dict(design.get("baseline"), "design.baseline", base), kind="baseline"))
        named = design.get("arms") or {}
        if not isinstance(named, dict) or (not named and not (data.get("controls") or {}).get("label_noise")):
            raise RecipeError("design.arms: expected a mapping {arm name: recipe} (may be empty only with a label_noise control)")
        for name, spec in named.items():
            arms.append(Arm(str(name), _recipe_dict(spec, f"design.arms.{name}", base)))
    else:
        baseline = _recipe_dict(design.get("baseline"), "design.baseline", base)
        sec, op, param = design.get("section"), design.get("op"), design.get("param")
        values = design.get("values") or []
        if sec not in (*SAMPLE_SECTIONS, "batch") or not op or not param or not values:
            raise RecipeError("design (sweep): needs section, op, param and a non-empty values list")
        arms.append(Arm("baseline", baseline, kind="baseline"))
        for v in values:
            r = copy.deepcopy(baseline) if baseline else {"seed": 0}
            steps = r.setdefault(sec, [])
            hit = next((s for s in steps if s["op"] == op), None)
            if hit is None:
                hit = {"op": op, "p": 1.0}
                steps.append(hit)
            hit[param] = v
            arms.append(Arm(f"{op}.{param}={v}", _recipe_dict(r, f"design.values[{v}]", base)))
    controls = data.get("controls") or {}
    unknown = sorted(set(controls) - {"identity", "label_noise"})
    if unknown:
        raise RecipeError(f"controls: unknown key(s) {unknown}; allowed: identity, label_noise")
    b = arms[0]
    if controls.get("identity", True):
        ident = copy.deepcopy(b.recipe) if b.recipe else None
        if ident is not None:
            ident["seed"] = int(ident.get("seed", 0)) + IDENTITY_SEED_OFFSET
        arms.append(Arm("identity", ident, kind="control"))
    ln = controls.get("label_noise", 0)
    if ln:
        if not 0 < float(ln) < 1:
            raise RecipeError(f"controls.label_noise: expected a fraction in (0, 1), got {ln!r}")
        arms.append(Arm("label_noise", copy.deepcopy(b.recipe), label_noise=float(ln), kind="control"))
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise RecipeError(f"arm names must be unique, got {names}")
    return Ablation(dataset=dataset, trainer=trainer, seeds=n_seeds, arms=arms, metric=data.get("metric", "accuracy"), source=data)
