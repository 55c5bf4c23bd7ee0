"""#9 point 8 (thirty-eighth session): the demo's ``identity`` (A/A) control was stopped for futility at 8
seeds, before its design's first look that can decide (11 seeds), so it could give no false positive and its
report said "Controls passed in part". The controls are now spared the futility rule until that look: they are
tested once, then stop like any arm; other arms keep the rule at every look (the simulations' designs have no
controls and are unchanged)."""

from __future__ import annotations

import numpy as np

from mmdata.ablate.schedule import Design, next_runs
from mmdata.ablate.stats import first_deciding_look

DEMO_LOOKS = (8, 10, 11, 13, 14, 16)


def _values(arms: dict[str, list[float]], n: int) -> dict[str, dict[int, float]]:
    base = {s: 80.0 + (s % 3) for s in range(n)}
    out = {"baseline": base}
    for a, d in arms.items():
        out[a] = {s: base[s] + d[s % len(d)] for s in range(n)}
    return out


def _run_to_end(design: Design, effects: dict[str, list[float]]) -> dict[str, tuple[str, int]]:
    """Drive the scheduler as the runner does (every needed run finishes) and return arm -> (status, seeds)."""
    names = list(effects)
    done: dict[str, dict[int, float]] = {"baseline": {}, **{a: {} for a in names}}
    full = _values(effects, design.looks.max)
    while True:
        state, need = next_runs(design, "baseline", names, done, {a: set(v) for a, v in done.items()})
        if not need:
            return {a: (state.arms[a].status, len(done[a])) for a in names}
        for a, seeds in need.items():
            for s in seeds:
                done[a][s] = full[a][s]


def test_a_null_control_runs_to_the_first_deciding_look_and_a_null_arm_may_stop_before() -> None:
    null = [0.5, -0.5, 0.25, -0.25, 0.1, -0.1, 0.3, -0.3]  # mean 0: conditional power ~0 from the first look
    first = first_deciding_look(Design.sequential(16, DEMO_LOOKS).looks, 0.05 / 3)
    deciding = DEMO_LOOKS[first - 1]
    assert deciding == 10  # the demo's looks with 3 arms: no verdict is possible before 10 seeds (11 with its 7)
    effects = {"identity": null, "-crop": null, "label_noise": [-8.0, -7.0, -9.0]}
    kept = _run_to_end(Design.sequential(16, DEMO_LOOKS, keep=("identity", "label_noise")), effects)
    assert kept["-crop"] == ("futile", 8)  # an ordinary arm: stopped at the first look, as before
    assert kept["identity"] == ("futile", deciding)  # tested at the first look that can decide, then stopped
    assert kept["label_noise"][0] == "rejected"
    plain = _run_to_end(Design.sequential(16, DEMO_LOOKS), effects)  # no controls named: the rule at every look
    assert plain["identity"] == ("futile", 8)


def test_a_kept_control_is_decided_at_the_deciding_look_when_it_crosses() -> None:
    """Spared futility, not spared the test: an A/A control whose seeds all differ one way is caught there."""
    skew = [1.0, 1.5, 0.8, 1.2, 1.1, 0.9, 1.3, 0.7, 1.4, 1.05, 0.95]
    out = _run_to_end(Design.sequential(16, DEMO_LOOKS, keep=("identity",)),
                      {"identity": skew, "-crop": [0.1, -0.1]})
    assert out["identity"] == ("rejected", 10)  # the first look that can decide with 2 arms


def test_without_a_deciding_look_the_controls_stop_as_any_arm() -> None:
    """Looks of 2-4 seeds can decide nothing at 3 arms: sparing a control there would only spend runs."""
    design = Design.sequential(4, (2, 3, 4), keep=("identity",))
    assert first_deciding_look(design.looks, 0.05 / 3) is None
    out = _run_to_end(design, {"identity": [0.2, -0.2], "-crop": [0.2, -0.2], "label_noise": [-8.0, -7.0]})
    assert out["identity"] == out["-crop"]


def test_the_ablation_names_its_controls_in_its_design() -> None:
    from mmdata.ablate.design import load_ablation as load

    ab = load({"dataset": {"path": "x"}, "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"}, "seeds": 16,
               "adaptive": {"looks": list(DEMO_LOOKS)},
               "design": {"mode": "explicit", "baseline": {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]},
                          "arms": {"-cutout": None}},
               "controls": {"identity": True, "label_noise": 0.3}})
    assert ab.design().keep == ("identity", "label_noise")
    assert np.all([a.kind == "control" for a in ab.arms if a.name in ab.design().keep])


def test_kept_controls_keep_the_family_wise_rate() -> None:
    """The futility rule is non-binding (the boundaries ignore it), so sparing a control from it cannot lift
    the family-wise rate above α: demo-shaped A/A families (8 null arms, the first an identity control that
    shares no draws, the rest rho 0.5) under the default looks with the control kept: a false helps / hurts
    in at most 5% of families (+2 binomial sd), and the control reached the first deciding look each time."""
    import math

    from mmdata.ablate.schedule import walk
    from tests.ablate.test_stats import _family

    rng = np.random.default_rng(2038)
    design = Design.sequential(20, keep=("a0",))
    deciding = design.looks.sizes[first_deciding_look(design.looks, 0.05 / 8) - 1]
    reps, fam = 300, 0
    for _ in range(reps):
        arms = walk(_family(rng, [0.0] * 8, rho=[0.0] + [0.5] * 7), design, len(design.looks.sizes)).arms
        fam += any(st.status == "rejected" for st in arms.values())
        assert arms["a0"].status == "rejected" or arms["a0"].stopped_at >= deciding
    assert fam / reps <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / reps), fam / reps
