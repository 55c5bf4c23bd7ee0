"""Simulation of ``mmdata ablate-folds``: the family-wise A/A false-positive rate of the pooled verdicts, and the
power of the pooled test against one fold alone, with the synthetic trainer's noise.

Each run's accuracy follows :func:`mmdata.ablate.testing.synthetic_train`'s noise model (the noise structure
of real avdigits runs: a seed effect shared by the arms of a seed, augmentation-draw effects partly shared per
op, rounding to whole test examples), drawn with numpy for a whole fold at once (:func:`family`; ~100x faster
than calling the trainer per run, :func:`family_runs`; the script first prints the ratio of the two models'
paired sds, ``--check``). A family is one cross-validated ablation: a baseline recipe that draws
(``image.hflip``, ``text.token_mask``) and 4 arms with no planted effect — ``identity`` (fresh draws),
``-image.hflip``, ``-text.token_mask``, ``+image.vflip`` — and, for power, a 5th arm ``+effect`` (fresh draws
plus ``EFFECT`` points on every run). Folds are independent runs (another seed per fold, as another test split
gives other runs). The decisions are the library's own (:func:`mmdata.ablate.folds.pool`: Holm across the arms
of the family at 5%).

Designs: ``fixed``: 5 folds x 10 seeds; ``mixed``: 5 folds with 10, 10, 10, 5 and 8 seeds — what adaptive
folds read at their first look (10 of 20; 5 of 10) and folds with failed runs look like to the pooled test.

    .venv/bin/python benchmarks/ablate_folds_sim.py --aa 2000 --power 500     # ~5 min on a busy 2-core box

Prints, per design, the share of A/A families with any confirmatory verdict (helps / hurts, negligible or
not) among the null arms, with its binomial standard error; and per effect size the power of the pooled
verdict against the same family analysed on fold 1 alone (``mmdata ablate``'s own report of that fold).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from mmdata.ablate.folds import pool  # noqa: E402
from mmdata.ablate.stats import analyze  # noqa: E402
from mmdata.ablate.testing import DRAW_SD, SEED_SD, SHARED_DRAWS, TEST_SIZE, synthetic_train  # noqa: E402

BASE = {"seed": 0, "image": [{"op": "hflip", "p": 0.5}], "text": [{"op": "token_mask", "p": 0.3}]}
NULL_ARMS = {"identity": {**BASE, "seed": 1}, "-image.hflip": {"seed": 0, "text": BASE["text"]},
             "-text.token_mask": {"seed": 0, "image": BASE["image"]},
             "+image.vflip": {**BASE, "image": [*BASE["image"], {"op": "vflip", "p": 0.5}]}}
DESIGNS = {"fixed": (10, 10, 10, 10, 10), "mixed": (10, 10, 10, 5, 8)}
CONFIRM = ("helps", "hurts")


def acc(recipe: dict, seed: int) -> float:
    return 100.0 * synthetic_train(None, recipe=recipe, seed=seed)["test"]["accuracy"]


def family_runs(f: int, seeds: tuple[int, ...], effect: float | None = None) -> dict[str, dict[str, dict[int, float]]]:
    """arm -> fold -> {seed: arm - baseline} (points) of family ``f`` from :func:`synthetic_train` itself (slow:
    ~0.1 ms a run; the reference :func:`family` is checked against, see :func:`check_model`)."""
    arms = dict(NULL_ARMS)
    out: dict[str, dict[str, dict[int, float]]] = {a: {} for a in arms}
    if effect is not None:
        out["+effect"] = {}
    for k, n in enumerate(seeds, start=1):
        for a in out:
            out[a][str(k)] = {}
        for s in range(n):
            seed = f * 100_000 + k * 1_000 + s
            b = acc(BASE, seed)
            for a, r in arms.items():
                out[a][str(k)][s] = acc(r, seed) - b
            if effect is not None:  # fresh draws of the baseline's ops plus a true shift, rounded to whole test examples
                out["+effect"][str(k)][s] = round((acc({**BASE, "seed": 2}, seed) + effect) * 3.6) / 3.6 - b
    return out


def family(f: int, seeds: tuple[int, ...], effect: float | None = None) -> dict[str, dict[str, dict[int, float]]]:
    """:func:`family_runs`'s noise model drawn with numpy at once (the synthetic trainer's: a seed effect ``SEED_SD``
    shared by a seed's runs; per op a share ``SHARED_DRAWS`` of the draw variance ``DRAW_SD`` from that op's own draws,
    shared by the arms that keep the op under the same augmentation seed; the rest following the whole recipe;
    rounding to ``TEST_SIZE`` examples), ~100x faster."""
    rng = np.random.default_rng([f, 0xF01D5])
    out: dict[str, dict[str, dict[int, float]]] = {a: {} for a in [*NULL_ARMS, *(["+effect"] if effect is not None else [])]}
    rest = DRAW_SD * math.sqrt(1 - SHARED_DRAWS)

    def ops(n: int) -> float:
        return DRAW_SD * math.sqrt(SHARED_DRAWS / n)

    for k, n in enumerate(seeds, start=1):
        z = rng.standard_normal((12, n))  # 0 seed, 1-2 the baseline's ops, 3-7 paths, 8-9 identity's ops, 10 vflip, 11 +effect
        u = 0.83 + SEED_SD * z[0]

        def r(x: np.ndarray, shift: float = 0.0) -> np.ndarray:
            return 100.0 * np.round(np.clip(x, 0, 1) * TEST_SIZE) / TEST_SIZE + shift

        base = r(u + ops(2) * (z[1] + z[2]) + rest * z[3])
        runs = {"identity": r(u + ops(2) * (z[8] + z[9]) + rest * z[4]),
                "-image.hflip": r(u + ops(1) * z[2] + rest * z[5]),
                "-text.token_mask": r(u + ops(1) * z[1] + rest * z[6]),
                "+image.vflip": r(u + ops(3) * (z[1] + z[2] + z[10]) + rest * z[7])}
        if effect is not None:
            fresh = rng.standard_normal((2, n))
            runs["+effect"] = np.round((r(u + ops(2) * (fresh[0] + fresh[1]) + rest * z[11]) + effect) * 3.6) / 3.6
        for a, v in runs.items():
            out[a][str(k)] = {s: float(v[s] - base[s]) for s in range(n)}
    return out


def check_model(n: int = 400) -> dict[str, float]:
    """Per null arm, sd of the paired differences from :func:`family` / from :func:`synthetic_train` (``n`` seeds)."""
    model = family(0, (n,))
    runs = family_runs(0, (n,))
    return {a: float(np.std(list(model[a]["1"].values()), ddof=1) / np.std(list(runs[a]["1"].values()), ddof=1))
            for a in NULL_ARMS}


def declared(per: dict[str, dict], arms: list[str]) -> bool:
    return any(per[a]["decision"].split(" ")[0] in CONFIRM for a in arms)


def aa_rate(n: int, seeds: tuple[int, ...], start: int = 0) -> tuple[float, float]:
    """Share of ``n`` A/A families with a confirmatory verdict (pooled over the folds), and its standard error."""
    hits = 0
    for f in range(start, start + n):
        per = pool(family(f, seeds), delta=1.0, intervals=False)
        hits += declared(per, list(NULL_ARMS))
    p = hits / n
    return p, math.sqrt(p * (1 - p) / n)


def power(n: int, seeds: tuple[int, ...], effect: float, start: int = 10**6) -> tuple[float, float, float]:
    """(pooled power, fold-1-alone power, A/A false positives among the null arms of these families)."""
    pooled = alone = false = 0
    for f in range(start, start + n):
        d = family(f, seeds, effect)
        per = pool(d, delta=1.0, intervals=False)
        pooled += per["+effect"]["decision"] == "helps" or per["+effect"]["decision"] == "helps (negligible)"
        false += declared(per, list(NULL_ARMS))
        one = analyze({a: d[a]["1"] for a in d}, delta=1.0, intervals=False)
        alone += one["+effect"]["rejected"] and one["+effect"]["mean_diff"] > 0
    return pooled / n, alone / n, false / n


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aa", type=int, default=2000, help="A/A families per design")
    ap.add_argument("--power", type=int, default=500, help="families per effect size")
    ap.add_argument("--effects", type=float, nargs="*", default=[1.0, 2.0], help="true effects (accuracy points)")
    ap.add_argument("--check", type=int, default=400, help="seeds of the model check against synthetic_train (0: skip)")
    a = ap.parse_args(argv)
    out: dict = {}
    if a.check:
        ratio = check_model(a.check)
        out["model_sd_ratio"] = ratio
        print(f"noise model vs synthetic_train, sd of the paired differences over {a.check} seeds (ratio): "
              + ", ".join(f"{k} {v:.2f}" for k, v in ratio.items()), flush=True)
    for name, seeds in DESIGNS.items():
        t = time.time()
        if a.aa:
            p, se = aa_rate(a.aa, seeds)
            out[f"aa_{name}"] = p
            print(f"A/A {name} {list(seeds)}: {a.aa} families of {len(NULL_ARMS)} null arms, family-wise false-positive "
                  f"rate {100 * p:.2f}% (se {100 * se:.2f}%) [{time.time() - t:.0f} s]", flush=True)
        for eff in a.effects if a.power else []:
            t = time.time()
            pw, one, false = power(a.power, seeds, eff)
            out[f"power_{name}_{eff:g}"] = (pw, one)
            print(f"power {name} {list(seeds)}, +{eff:g} points: pooled {100 * pw:.1f}%, fold 1 alone {100 * one:.1f}% "
                  f"(ratio {pw / one if one else math.inf:.2f}); null arms' family-wise rate here {100 * false:.1f}% "
                  f"[{a.power} families, {time.time() - t:.0f} s]", flush=True)
    return out


if __name__ == "__main__":
    main()
