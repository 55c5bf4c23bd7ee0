"""Ablation artifacts: summary.json, report.md and its figures (forest plot, paired per-seed plot,
robustness curves)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from mmdata.ablate.design import Ablation
from mmdata.ablate.stats import DELTA, compare, min_p
from mmdata.io import atomic_write_bytes

PRIMARY = "test_accuracy"
#: metric -> (label, scale to reporting units, higher is better)
METRICS = {
    "test_accuracy": ("accuracy (points)", 100.0, True),
    "test_macro_f1": ("macro-F1 (points)", 100.0, True),
    "test_nll": ("NLL", 1.0, False),
    "test_ece": ("ECE (points)", 100.0, False),
}
MODS = ("image", "audio", "text")


def _by_arm(rows: list[dict[str, Any]], metric: str) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        if r.get(metric) is not None:
            out.setdefault(r["arm"], {})[int(r["seed"])] = float(r[metric])
    return out


def _metrics(rows: list[dict[str, Any]]) -> dict[str, tuple[str, float, bool]]:
    ms = dict(METRICS)
    keys = {k for r in rows for k in r}
    for m in MODS:
        if f"robust_{m}_auc" in keys:
            ms[f"robust_{m}_auc"] = (f"robustness AUC {m} (points)", 100.0, True)
        if f"missing_{m}_accuracy" in keys:
            ms[f"missing_{m}_accuracy"] = (f"accuracy without {m} (points)", 100.0, True)
    return ms


def _fmt_ci(ci: list[float]) -> str:
    return f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def write_report(ab: Ablation, out: Path, rows: list[dict[str, Any]], fingerprint: str) -> dict[str, Any]:
    """Compute statistics for every metric and write summary.json, report.md and the PNGs."""
    base = ab.baseline.name
    arms = [a for a in ab.arms if a.name != base]
    metrics = _metrics(rows)
    effects: dict[str, dict[str, dict[str, Any]]] = {}
    baseline_stats: dict[str, dict[str, float]] = {}
    for metric, (_, scale, hib) in metrics.items():
        per = _by_arm(rows, metric)
        if base not in per:
            continue
        vals = [v * scale for v in per[base].values()]
        baseline_stats[metric] = {"mean": statistics.mean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                                  "n": len(vals)}
        present = {a.name: per[a.name] for a in arms if a.name in per}
        delta = DELTA if scale == 100.0 else DELTA / 100.0
        effects[metric] = compare(per[base], present, scale=scale, higher_is_better=hib, delta=delta)
    n_seeds = len({r["seed"] for r in rows if r["arm"] == base})
    floor = min_p(max(n_seeds, 1), max(len(arms), 1))
    underpowered = floor >= 0.05
    summary_arms = []
    for a in arms:
        prim = effects.get(PRIMARY, {}).get(a.name)
        if prim is None:
            continue
        summary_arms.append({"name": a.name, "kind": a.kind, "decision": prim["decision"], "n_seeds": prim["n_seeds"],
                             "metrics": {m: e[a.name] for m, e in effects.items() if a.name in e}})
    aa = next((s for s in summary_arms if s["name"] == "identity"), None)
    aa_check = {"arm": "identity", "decision": aa["decision"] if aa else None,
                "false_positive": bool(aa and aa["decision"] in ("helps", "hurts"))}
    summary = {"schema": "mmdata.ablate/1", "primary_metric": PRIMARY, "units": "accuracy points (percent)",
               "n_seeds": n_seeds, "underpowered": underpowered, "min_achievable_p_holm": floor,
               "baseline": {"name": base, **{m: s for m, s in baseline_stats.items()}},
               "arms": summary_arms, "aa_check": aa_check, "data_fingerprint": fingerprint,
               "test": "exact two-sided sign-flip permutation test on paired seed differences, Holm across arms"}
    atomic_write_bytes(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    figs = _plots(ab, out, rows, effects)
    atomic_write_bytes(out / "report.md", _markdown(ab, summary, effects, metrics, figs, rows).encode())
    return summary


def _plots(ab: Ablation, out: Path, rows: list[dict[str, Any]], effects: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs: dict[str, str] = {}
    prim = effects.get(PRIMARY, {})
    if prim:
        items = sorted(prim.items(), key=lambda kv: kv[1]["mean_diff"])
        colors = {"helps": "tab:green", "hurts": "tab:red", "equivalent": "tab:blue", "inconclusive": "tab:gray"}
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(items) + 1.6))
        ax.axvspan(-DELTA, DELTA, color="tab:blue", alpha=0.08)
        ax.axvline(0, color="black", lw=0.8)
        for y, (name, e) in enumerate(items):
            lo, hi = e["ci95_t"]
            ax.plot([lo, hi], [y, y], color=colors[e["decision"]], lw=2.2)
            ax.plot(e["mean_diff"], y, "o", color=colors[e["decision"]])
            ax.text(hi, y, f"  {e['decision']}", va="center", fontsize=8, color=colors[e["decision"]])
        ax.set_yticks(range(len(items)), [n for n, _ in items])
        ax.set_xlabel("Δ test accuracy vs baseline (points)\nmean and 95% t CI over paired seeds")
        ax.set_title(f"Effect of each arm vs '{ab.baseline.name}'\n(shaded: ±{DELTA} pt equivalence band)", fontsize=10)
        lim = max(1.0, *(abs(v) for e in prim.values() for v in e["ci95_t"])) * 1.35
        ax.set_xlim(-lim, lim)
        fig.tight_layout()
        fig.savefig(out / "forest.png", dpi=120)
        plt.close(fig)
        figs["forest"] = "forest.png"
        # paired per-seed slope plots
        per = _by_arm(rows, PRIMARY)
        base = per.get(ab.baseline.name, {})
        names = [n for n, _ in items]
        cols = min(4, len(names))
        nrows = int(np.ceil(len(names) / cols))
        fig, axes = plt.subplots(nrows, cols, figsize=(2.6 * cols, 2.4 * nrows), squeeze=False, sharey=True)
        for ax, name in zip(axes.flat, names):
            for s, b in base.items():
                if s in per.get(name, {}):
                    a = per[name][s]
                    ax.plot([0, 1], [b * 100, a * 100], "-o", ms=3, lw=0.8,
                            color="tab:green" if a > b else "tab:red" if a < b else "tab:gray")
            ax.set_xticks([0, 1], ["baseline", "arm"], fontsize=7)
            ax.set_title(name, fontsize=8)
        for ax in axes.flat[len(names):]:
            ax.axis("off")
        axes[0, 0].set_ylabel("test accuracy (%)")
        fig.suptitle("Paired seeds: baseline vs arm (green: arm better)", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "paired.png", dpi=110)
        plt.close(fig)
        figs["paired"] = "paired.png"
    # robustness curves: mean accuracy vs corruption level per modality, per arm
    curves = {m: {} for m in MODS}
    for r in rows:
        for m in MODS:
            c = r.get(f"robust_{m}_curve")
            if c:
                curves[m].setdefault(r["arm"], []).append(json.loads(c))
    mods = [m for m in MODS if curves[m]]
    if mods:
        from mmdata.train.evaluate import LEVELS

        fig, axes = plt.subplots(1, len(mods), figsize=(4 * len(mods), 3.2), squeeze=False)
        for ax, m in zip(axes[0], mods):
            for name, cs in curves[m].items():
                arr = np.array(cs) * 100
                mean = arr.mean(0)
                style = {"lw": 2.2, "color": "black"} if name == ab.baseline.name else {"lw": 1.0}
                ax.plot(LEVELS[: len(mean)], mean, label=name, **style)
                if name == ab.baseline.name and len(arr) > 1:
                    sd = arr.std(0, ddof=1)
                    ax.fill_between(LEVELS[: len(mean)], mean - sd, mean + sd, color="black", alpha=0.1)
            ax.set_title(f"{m} corrupted", fontsize=9)
            ax.set_xlabel("corruption level")
            ax.set_ylabel("test accuracy (%)")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)  # beside, not over, the curves
        fig.suptitle("Robustness: accuracy under test-time corruption (mean over seeds; band: baseline ± sd)", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "robustness.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        figs["robustness"] = "robustness.png"
    return figs


def _markdown(ab: Ablation, summary: dict[str, Any], effects: dict[str, Any], metrics: dict[str, Any],
              figs: dict[str, str], rows: list[dict[str, Any]]) -> str:
    n = summary["n_seeds"]
    t = ab.trainer
    lines = [
        "# Augmentation ablation report", "",
        f"Dataset: `{ab.dataset}` (fingerprint `{summary['data_fingerprint'][:16]}`). Trainer: {t['fusion']} fusion on "
        f"{', '.join(t['modalities'])}, {t['epochs']} epochs, batch {t['batch_size']}, lr {t['lr']}. "
        f"{n} paired seeds (each seed fixes initialisation, data order, augmentation draws and label-noise flips; "
        "the dataset split is fixed), every arm on every seed.", "",
    ]
    if summary["underpowered"]:
        lines += [f"> **Underpowered:** with {n} seeds and {len(summary['arms'])} arms the smallest achievable "
                  f"Holm-adjusted exact p is {summary['min_achievable_p_holm']:.3f} ≥ 0.05, so no arm can be called "
                  "helps/hurts. Use more seeds (10 supports up to ~25 arms).", ""]
    lines += ["## Baseline", "", f"Baseline arm: **{ab.baseline.name}**.", "", "| metric | mean | sd | seeds |", "|---|---:|---:|---:|"]
    for m, s in summary["baseline"].items():
        if isinstance(s, dict):
            lines.append(f"| {metrics[m][0]} | {s['mean']:.2f} | {s['sd']:.2f} | {s['n']} |")
    loo = any(a.name.startswith("-") for a in ab.arms)
    lines += ["", "## Effects on test accuracy", "",
              "Differences are arm − baseline in accuracy points, paired by seed."
              + (" Leave-one-out: arm `-op` is the full recipe *without* that op, so `helps` means the recipe is better"
                 " without the op (the op hurts here), and `hurts` means the op helps." if loo else ""), "",
              "| arm | mean Δ | 95% CI (t) | 95% CI (bootstrap) | d_z | P(Δ>0) seeds | p | p (Holm) | decision |",
              "|---|---:|---|---|---:|---:|---:|---:|---|"]
    prim = effects.get(PRIMARY, {})
    for name, e in sorted(prim.items(), key=lambda kv: -kv[1]["mean_diff"]):
        lines.append(f"| {name} | {e['mean_diff']:+.2f} | {_fmt_ci(e['ci95_t'])} | {_fmt_ci(e['ci95_boot'])} | {e['d_z']:+.2f} | "
                     f"{e['p_improve_seeds']:.2f} | {e['p_value']:.4f} | {e['p_holm']:.4f} | **{e['decision']}** |")
    if "forest" in figs:
        lines += ["", f"![forest plot]({figs['forest']})", ""]
    others = [m for m in metrics if m != PRIMARY and m in effects]
    if others:
        lines += ["## Other metrics", "", "Mean Δ (decision) per arm; NLL and ECE: lower is better.", "",
                  "| arm | " + " | ".join(metrics[m][0] for m in others) + " |", "|---|" + "---|" * len(others)]
        for name in prim:
            cells = [f"{effects[m][name]['mean_diff']:+.2f} ({effects[m][name]['decision']})" if name in effects[m] else "—" for m in others]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if "paired" in figs:
        lines += ["", "## Per-seed results", "", f"![paired seeds]({figs['paired']})"]
    if "robustness" in figs:
        lines += ["", "## Robustness", "", f"![robustness curves]({figs['robustness']})"]
    walls = [r["wall_s"] for r in rows if r.get("wall_s")]
    lines += ["", "## Runs", "", f"{len(rows)} runs, {statistics.mean(walls):.1f} s each on average (one thread per run). "
              "Every run is a row of `runs.parquet`; the resolved configuration is `config.resolved.yaml`, the environment `env.json`."]
    aa = summary["aa_check"]
    foot = ("A/A check: the `identity` arm (the baseline recipe with fresh augmentation draws) came out "
            f"**{aa['decision']}**" + (" — a false positive: treat other decisions with caution." if aa["false_positive"]
                                       else " — no false positive.") if aa["decision"] else "A/A check: no identity arm.")
    lines += ["", "---", "", f"{foot} {n} seeds, exact two-sided sign-flip permutation test on paired differences, "
              f"Holm correction across {len(summary['arms'])} arms; equivalence margin ±{DELTA} accuracy points (90% CI)."]
    return "\n".join(lines) + "\n"
