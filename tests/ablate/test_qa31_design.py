"""QA round 31 (persona "sweep"): sweep designs that target a step, fold means snapped to 0, metric
directions, arms that train alike."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from mmdata.ablate.folds import pool


def test_a_fold_mean_of_exactly_cancelling_seeds_is_zero_not_a_sign() -> None:
    # one win, one loss, two ties: the float mean is 1.8e-15, which counted as a positive fold (⚠ folds disagree)
    ghost = [0.0, 100 * (9 / 20) - 100 * (10 / 20), 100 * (11 / 20) - 100 * (10 / 20), 0.0]
    assert sum(ghost) / 4 != 0
    diffs = {"a": {"1": dict(enumerate([-5.0, -5.0, 0.0, -5.0])), "3": dict(enumerate(ghost)),
                   "4": dict(enumerate([-5.0, 0.0, -5.0, -5.0]))}}
    e = pool(diffs, delta=2.5)["a"]
    assert [f["mean_diff"] for f in e["per_fold"]][1] == 0.0
    assert e["sign_disagreement"] is False


from mmdata.ablate import load_ablation  # noqa: E402
from mmdata.ablate.design import design_warnings  # noqa: E402
from mmdata.errors import RecipeError  # noqa: E402

BASE = {"seed": 0, "image": [{"op": "cutout", "id": "holes", "p": 0.5, "num_holes": [1, 2], "size": [0.1, 0.3]},
                             {"op": "brightness_contrast", "p": 0.5}],
        "audio": [{"op": "noise", "p": 0.5, "min_snr_db": 5, "max_snr_db": 20}]}
TWO = {"seed": 0, "image": [{"op": "cutout", "id": "small", "p": 0.5, "size": [0.05, 0.1]},
                            {"op": "cutout", "id": "big", "p": 0.5, "size": [0.3, 0.5]}]}
ONE_OF = {"seed": 0, "image": [{"op": "one_of", "ops": [{"op": "cutout", "p": 1.0, "size": [0.1, 0.3]},
                                                        {"op": "hflip", "p": 1.0}]}]}


def _sweep(baseline: Any, **design: Any) -> dict[str, Any]:
    return {"seeds": 6, "design": {"mode": "sweep", "baseline": baseline, "section": "image", "param": "size",
                                   "values": [[0.4, 0.6]], **design}}


def test_a_sweep_of_an_op_only_inside_one_of_is_refused_naming_where_and_design_id() -> None:
    with pytest.raises(RecipeError, match=r"design.op: image op 'cutout' is not a top-level step of the baseline: it is "
                                          r"inside one_of image\[0\] \(at image\[0\].ops\[0\]\).*design.id"):
        load_ablation(_sweep(ONE_OF, op="cutout"))
    nested = {"seed": 0, "image": [{"op": "one_of", "ops": [{"op": "cutout", "id": "inner", "p": 1.0, "size": [0.1, 0.3]},
                                                            {"op": "hflip", "p": 1.0}]}]}
    ab = load_ablation(_sweep(nested, id="inner"))
    arm = ab.arms[1]
    assert arm.name == "inner.size=[0.4, 0.6]"
    assert len(arm.recipe["image"]) == 1 and arm.recipe["image"][0]["ops"][0]["size"] == [0.4, 0.6]
    assert ab.sweep_note is None


def test_a_sweep_of_an_op_the_baseline_lacks_adds_it_warned_and_said_in_the_design() -> None:
    ab = load_ablation({**_sweep(BASE, op="gaussian_noise", param="std", values=[[0.0, 0.05]])})
    assert ab.arms[1].recipe["image"][-1]["op"] == "gaussian_noise" and ab.arms[1].recipe["image"][-1]["p"] == 1.0
    assert "image op gaussian_noise is not a step of the baseline" in ab.sweep_note and "p = 1.0" in ab.sweep_note
    assert any("gaussian_noise is not a step of the baseline" in w for w in design_warnings(ab))
    # a baseline without augmentation: each arm is the op alone, neither warned of nor said (review F3)
    ab = load_ablation({**_sweep(None, op="cutout")})
    assert ab.sweep_note is None and not any("not a step of the baseline" in w for w in design_warnings(ab))
    plain = load_ablation(_sweep(BASE, op="cutout"))  # a step of the baseline: as before
    assert plain.sweep_note is None and plain.arms[1].name == "cutout.size=[0.4, 0.6]"
    assert plain.arms[1].recipe["image"][0]["size"] == [0.4, 0.6] and len(plain.arms[1].recipe["image"]) == 2


def test_a_sweep_names_its_step_by_id_and_refuses_an_op_of_several_steps() -> None:
    with pytest.raises(RecipeError, match=r"design.op: 'cutout' is 2 image steps of the baseline \(image\[0\] cutout "
                                          r"\(id small\), image\[1\] cutout \(id big\)\); which one to sweep\? name one "
                                          r"with design.id"):
        load_ablation(_sweep(TWO, op="cutout"))
    ab = load_ablation(_sweep(TWO, id="big"))
    assert ab.arms[1].name == "big.size=[0.4, 0.6]"
    assert [(s["id"], s["size"]) for s in ab.arms[1].recipe["image"]] == [("small", [0.05, 0.1]), ("big", [0.4, 0.6])]
    assert load_ablation(_sweep(TWO, op="cutout", id="small")).arms[1].recipe["image"][0]["size"] == [0.4, 0.6]
    with pytest.raises(RecipeError, match=r"design.op: 'hflip', but the baseline's step of id 'big' \(image\[1\]\) is a cutout"):
        load_ablation(_sweep(TWO, op="hflip", id="big"))
    with pytest.raises(RecipeError, match=r"design.id: no image step of the baseline has id 'huge'; the baseline's image "
                                          r"steps: image\[0\] cutout \(id small\), image\[1\] cutout \(id big\)"):
        load_ablation(_sweep(TWO, id="huge"))


def test_an_id_given_as_design_op_or_an_unknown_op_is_named_as_design_op() -> None:
    with pytest.raises(RecipeError, match=r"^design.op: 'big' is not an op of the baseline's image steps but the id of "
                                          r"image\[1\] \(cutout\): name the step with design.id: big"):
        load_ablation(_sweep(TWO, op="big"))
    with pytest.raises(RecipeError, match=r"^design.op: unknown image op 'cutuot'; did you mean 'cutout'\?.*the baseline's "
                                          r"image steps: image\[0\] cutout \(id small\)"):
        load_ablation(_sweep(TWO, op="cutuot"))


def test_a_metric_direction_contradicting_a_known_metric_is_refused() -> None:
    one = {"seeds": 6, "design": {"mode": "explicit", "arms": {"a": {"image": [{"op": "hflip", "p": 0.5}]}}}}
    with pytest.raises(RecipeError, match=r"metric.higher_is_better: true for 'test.nll', but a lower NLL is better.*set "
                                          r"it to false"):
        load_ablation({**one, "metric": {"name": "test.nll", "higher_is_better": True}})
    with pytest.raises(RecipeError, match=r"a higher accuracy is better"):
        load_ablation({**one, "metric": {"name": "test.accuracy", "higher_is_better": False}})
    assert load_ablation({**one, "metric": {"name": "test.nll", "higher_is_better": False}}).metric.higher_is_better is False


def _explicit(arms: dict[str, Any]) -> dict[str, Any]:
    return {"seeds": 6, "controls": {"identity": False},
            "design": {"mode": "explicit", "baseline": BASE, "arms": arms}}


def test_two_arms_that_train_identically_are_warned_of() -> None:
    flip = {"seed": 0, "image": [{"op": "hflip", "p": 0.5}]}
    w = design_warnings(load_ablation(_explicit({"dup_a": flip, "dup_b": dict(flip), "other": {"seed": 1, **BASE}})))
    assert any("arms 'dup_a' and 'dup_b' train identically" in m for m in w), w
    assert not any("'other'" in m and "identically" in m for m in w)


def test_an_arm_adding_only_a_step_at_p_0_trains_like_the_baseline() -> None:
    extra = {**BASE, "image": [*BASE["image"], {"op": "hflip", "p": 0.0}]}
    w = design_warnings(load_ablation(_explicit({"p_zero_extra": extra})))
    assert any("arm 'p_zero_extra' trains exactly like the baseline" in m for m in w), w
    # a p 0 step before a step of its op without an id shifts that step's identity (draws): not the baseline's
    flips = {"seed": 0, "image": [{"op": "hflip", "p": 0.5}]}
    shifted = {"seed": 0, "image": [{"op": "hflip", "p": 0.0}, {"op": "hflip", "p": 0.5}]}
    w = design_warnings(load_ablation({"seeds": 6, "controls": {"identity": False},
                                       "design": {"mode": "explicit", "baseline": flips, "arms": {"s": shifted}}}))
    assert not any("trains exactly like the baseline" in m for m in w), w


def test_the_report_design_section_says_the_step_a_sweep_adds(tmp_path: Path) -> None:
    from mmdata.ablate import run
    from mmdata.ablate.testing import synthetic_train
    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=4, progress=False)
    cfg = {**_sweep(BASE, op="gaussian_noise", param="std", values=[[0.0, 0.05]]), "seeds": 3,
           "dataset": {"path": str(data)}, "controls": {"identity": False}}
    said: list[str] = []
    s = run(cfg, tmp_path / "out", train_fn=synthetic_train, workers=1, progress=False, plots=False, on_warning=said.append)
    assert any("gaussian_noise is not a step of the baseline" in w for w in said)
    assert any("gaussian_noise is not a step of the baseline" in w for w in s["warnings"])
    report = (tmp_path / "out" / "report.md").read_text()
    design = report.split("## Design", 1)[1].split("\n## ", 1)[0]
    assert "Sweep: the sweep's image op gaussian_noise is not a step of the baseline" in design, design


# review of the fixes above (QA31 review "ablate" F3-F6)


def test_a_sweep_op_both_top_level_and_nested_is_refused_naming_both() -> None:
    both = {"seed": 0, "image": [{"op": "cutout", "p": 0.5, "size": [0.1, 0.3]},
                                 {"op": "one_of", "ops": [{"op": "cutout", "p": 1.0, "size": [0.2, 0.4]},
                                                          {"op": "hflip", "p": 1.0}]}]}
    with pytest.raises(RecipeError, match=r"design.op: 'cutout' is 2 image steps of the baseline \(image\[0\] cutout, "
                                          r"image\[1\].ops\[0\] cutout inside one_of image\[1\]\); which one to sweep\? "
                                          r"give them an `id:`.*design.id"):
        load_ablation(_sweep(both, op="cutout"))
    named = copy.deepcopy(both)
    named["image"][0]["id"], named["image"][1]["ops"][0]["id"] = "outer", "inner"
    with pytest.raises(RecipeError, match=r"which one to sweep\? name one with design.id"):
        load_ablation(_sweep(named, op="cutout"))
    assert load_ablation(_sweep(named, id="inner")).arms[1].recipe["image"][1]["ops"][0]["size"] == [0.4, 0.6]


def test_the_design_id_refusal_says_no_step_has_it_in_the_singular() -> None:
    with pytest.raises(RecipeError, match=r"^design.id: no image step of the baseline has id 'huge'"):
        load_ablation(_sweep(TWO, id="huge"))


def test_a_custom_trainers_metric_refusal_says_it_may_return_it_under_another_name() -> None:
    one = {"seeds": 6, "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"},
           "design": {"mode": "explicit", "arms": {"a": {"image": [{"op": "hflip", "p": 0.5}]}}}}
    with pytest.raises(RecipeError, match=r"a lower Hamming loss is better.*if your trainer's test.hamming measures "
                                          r"something else, return it under another name \(e.g. test.my_hamming\)"):
        load_ablation({**one, "metric": {"name": "test.hamming", "higher_is_better": True}})
    bundled = {k: v for k, v in one.items() if k != "trainer"}
    with pytest.raises(RecipeError, match=r"set it to false$"):  # the bundled trainer's metrics are mmdata's
        load_ablation({**bundled, "metric": {"name": "test.nll", "higher_is_better": True}})


def test_the_sweep_line_is_said_only_with_a_baseline_and_survives_a_rerun_of_the_resolved_config(tmp_path: Path) -> None:
    import yaml

    from mmdata.ablate import run
    from mmdata.ablate.testing import synthetic_train
    from mmdata.datasets.avdigits import build

    assert load_ablation(_sweep(None, op="cutout")).sweep_note is None  # nothing to add to: no note, no line
    data = build(tmp_path / "av", limit=4, progress=False)
    cfg = {**_sweep(BASE, op="gaussian_noise", param="std", values=[[0.0, 0.05]]), "seeds": 3,
           "dataset": {"path": str(data)}, "controls": {"identity": False}}
    kw: dict[str, Any] = {"train_fn": synthetic_train, "workers": 1, "progress": False, "plots": False}
    out = tmp_path / "out"
    run(cfg, out, on_warning=lambda m: None, **kw)
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert "gaussian_noise is not a step of the baseline" in resolved["sweep_note"]
    said: list[str] = []
    run(out / "config.resolved.yaml", out, on_warning=said.append, **kw)
    assert any("gaussian_noise is not a step of the baseline" in w for w in said), said
    design = (out / "report.md").read_text().split("## Design", 1)[1].split("\n## ", 1)[0]
    assert "Sweep: the sweep's image op gaussian_noise is not a step of the baseline" in design, design
    assert "sweep_note" in yaml.safe_load((out / "config.resolved.yaml").read_text())
    null = {**_sweep(None, op="cutout"), "seeds": 3, "dataset": {"path": str(data)}, "controls": {"identity": False}}
    run(null, tmp_path / "null", on_warning=lambda m: None, **kw)
    assert "Sweep:" not in (tmp_path / "null" / "report.md").read_text()
    assert "sweep_note" not in yaml.safe_load((tmp_path / "null" / "config.resolved.yaml").read_text())
