"""Simulation of ``mmdata ablate-folds``: the family-wise A/A false-positive rate of the pooled verdicts, and the
power of the pooled test against one fold alone, with the synthetic trainer's noise.

Each run's accuracy comes from :func:`mmdata.ablate.testing.synthetic_train` (the noise structure of real
avdigits runs: a seed effect shared by the arms of a seed, augmentation-draw effects partly shared per op,
rounding to whole test examples), fold ``k`` of family ``f`` on seed ``s`` being its seed
``f * 100_000 + k * 1_000 + s`` (what ``mmdata ablate --test-split k`` changes: the runs). A family is one
cross-validated ablation: a baseline recipe that draws (``image.hflip``, ``text.token_mask``) and 4 arms with
no planted effect — ``identity`` (fresh draws), ``-image.hflip``, ``-text.token_mask``, ``+image.vflip`` —
and, for power, a 5th arm ``+effect`` (the baseline plus ``EFFECT`` points on every run). The decisions are the
library's own (:func:`mmdata.ablate.folds.pool`: Holm across the arms of the family at 5%).

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

from mmdata.ablate.folds import pool  # noqa: E402
from mmdata.ablate.stats import analyze  # noqa: E402
from mmdata.ablate.testing import synthetic_train  # noqa: E402

BASE = {"seed": 0, "image": [{"op": "hflip", "p": 0.5}], "text": [{"op": "token_mask", "p": 0.3}]}
NULL_ARMS = {"identity": {**BASE, "seed": 1}, "-image.hflip": {"seed": 0, "text": BASE["text"]},
             "-text.token_mask": {"seed": 0, "image": BASE["image"]},
             "+image.vflip": {**BASE, "image": [*BASE["image"], {"op": "vflip", "p": 0.5}]}}
DESIGNS = {"fixed": (10, 10, 10, 10, 10), "mixed": (10, 10, 10, 5, 8)}
CONFIRM = ("helps", "hurts")


def acc(recipe: dict, seed: int) -> float:
    return 100.0 * synthetic_train(None, recipe=recipe, seed=seed)["test"]["accuracy"]


def family(f: int, seeds: tuple[int, ...], effect: float | None = None) -> dict[str, dict[str, dict[int, float]]]:
    """arm -> fold -> {seed: arm - baseline} (points) of family ``f``; ``effect``: add the ``+effect`` arm."""
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
            if effect is not None:  # the baseline's own draws plus a true shift, rounded to whole test examples
                e = acc({**BASE, "seed": 2}, seed) + effect
                out["+effect"][str(k)][s] = round(e * 3.6) / 3.6 - b
    return out


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
    a = ap.parse_args(argv)
    out: dict = {}
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
