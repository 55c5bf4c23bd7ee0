"""The premise of benchmarks/crn_butterfly.py: each arm differs from the baseline exactly as its name says
(the figures in docs/ablation.md rest on it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

import mmdata
from mmdata.augment.recipe import load_recipe, params_seed

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "crn_butterfly.py"


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("crn_butterfly", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _applied(recipe: dict, samples: list, seed: int) -> dict:
    rec = load_recipe(recipe).with_seed(params_seed(recipe.get("seed", 0), seed))
    return {s.key: rec.apply_sample(s, epoch=0) for s in samples}


def test_each_arm_differs_from_the_baseline_as_named(tmp_path: Path) -> None:
    from mmdata.datasets.avdigits import build

    bf = _script()
    data = build(tmp_path / "av", limit=40, progress=False)
    samples = [mmdata.Sample(s.key, s.fields, s.sample_rate) for s in mmdata.open_dataset(data, split="train")]
    full, arms = bf.recipes()
    assert set(arms) | {"identity"} == set(bf.ARMS)
    base = _applied(full, samples, seed=3)
    for name, recipe in arms.items():
        out = _applied(recipe, samples, seed=3)
        changed_ops, max_rel = set(), 0.0
        for key, b in base.items():
            a = out[key]
            pa = {e["op"]: e["params"] for e in a.meta["aug"]}
            pb = {e["op"]: e["params"] for e in b.meta["aug"]}
            changed_ops |= {op for op in set(pa) | set(pb) if pa.get(op) != pb.get(op)}
            if name == "nudged" and "audio" in a.fields:
                xa, xb = np.asarray(a.fields["audio"]), np.asarray(b.fields["audio"])
                max_rel = max(max_rel, float(np.abs(xa - xb).max() / max(np.abs(xb).max(), 1e-12)))
        assert changed_ops == {"audio.noise"}, (name, changed_ops)  # the other five ops share every draw
        if name == "nudged":
            assert 0 < max_rel < 1e-6  # about one float32 rounding
    assert bf.config("DATA", 3, 6)["controls"] == {"identity": True, "label_noise": 0}
