"""Alignment Δ per arm in the ablation report (issue 12, item 4): `mmdata ablate --alignment auto|DIR`
and the recipe's `alignment:` key add the align_* columns to every run, compare arms with the
baseline on them (exploratory), and never retrain a run to do so."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from mmdata.ablate import load_ablation, run
from mmdata.cli.main import app
from mmdata.errors import MMDataError, RecipeError

SYN = "mmdata.ablate.testing:synthetic_train"
HEAVY = {"seed": 0, "image": [{"op": "cutout", "p": 1.0, "size": [0.6, 0.8]}], "audio": [{"op": "noise", "p": 1.0}],
         "text": [{"op": "token_mask", "p": 1.0}]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("al") / "av", limit=4, progress=False)


def _recipe(tmp_path: Path, data: Path) -> Path:
    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": SYN}, "seeds": 3, "alignment": {"epochs": 2},
           "design": {"mode": "explicit", "baseline": None, "arms": {"heavy": HEAVY, "plain": None}},
           "controls": {"identity": False}}
    p = tmp_path / "ab.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_alignment_delta_columns_from_the_cli_without_retraining(tmp_path: Path, tiny: Path) -> None:
    recipe, out = _recipe(tmp_path, tiny), tmp_path / "out"
    first = run(recipe, out, workers=1, progress=False, plots=False, alignment=False)  # the runs, no alignment
    before = {(r["arm"], r["seed"]): r for r in pq.read_table(out / "runs.parquet").to_pylist()}
    assert first["runs"]["ok"] == 9 and not any(k.startswith("align_") for r in before.values() for k in r)

    res = CliRunner().invoke(app, ["ablate", str(recipe), "--out", str(out), "-j", "1", "--alignment", "auto", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["arms"][0]["exploratory"]["align_cos_delta"]["n_seeds"] == 3
    assert (out / "alignment" / "contrastive.pt").is_file()  # the reference model, pre-trained once
    rows = {(r["arm"], r["seed"]): r for r in pq.read_table(out / "runs.parquet").to_pylist()}
    assert set(rows) == set(before)
    for k, r in rows.items():  # the same runs: not one was trained again
        assert r["wall_s"] == before[k]["wall_s"] and r["config_hash"] == before[k]["config_hash"]
        assert {"align_cos_delta", "align_r1_delta", "align_auc_delta", "align_cos_delta_image_audio"} <= set(r)
    # no augmentation: agreement unchanged; the heavy arm (cutout, noise, masking at p = 1) changes it
    # (its sign under a 2-epoch model means little: tests/train/test_alignment.py separates hflip from
    # consistent_hflip on avdigits-spatial with a trained model, through the same alignment_columns)
    assert all(rows[("baseline", s)]["align_cos_delta"] == 0.0 == rows[("plain", s)]["align_cos_delta"] for s in range(3))
    assert all(rows[("heavy", s)]["align_cos_delta"] != 0 for s in range(3))
    # the run's own draws: different seeds, different augmented inputs, different deltas
    assert len({rows[("heavy", s)]["align_cos_delta"] for s in range(3)}) == 3

    s = json.loads((out / "summary.json").read_text())
    arms = {a["name"]: a for a in s["arms"]}
    e = arms["heavy"]["exploratory"]["align_cos_delta"]
    assert e["n_seeds"] == 3 and "decision" not in e
    assert e["mean_diff"] == pytest.approx(sum(rows[("heavy", s)]["align_cos_delta"] for s in range(3)) / 3)
    assert arms["plain"]["exploratory"]["align_cos_delta"]["mean_diff"] == 0.0
    assert s["baseline"]["metrics"]["align_cos_delta"]["mean"] == 0.0
    report = (out / "report.md").read_text()
    assert "## Alignment Δ per arm (exploratory)" in report and "alignment Δ matched cosine" in report

    # a named model is used as is; the columns already there are kept (nothing recomputed)
    again = run(recipe, out, workers=1, progress=False, plots=False, alignment=str(out / "alignment"))
    assert again["runs"]["ok"] == 9
    after = {(r["arm"], r["seed"]): r["align_cos_delta"] for r in pq.read_table(out / "runs.parquet").to_pylist()}
    assert after == {k: r["align_cos_delta"] for k, r in rows.items()}


def test_alignment_recipe_errors(tmp_path: Path) -> None:
    base = {"design": {"mode": "explicit", "arms": {"a": None}}}
    assert load_ablation({**base, "alignment": True}).alignment == {"model": None, "epochs": 20, "split": "test"}
    assert load_ablation({**base, "alignment": "runs/pre"}).alignment["model"] == "runs/pre"
    assert load_ablation({**base, "alignment": {"epochs": 3}}, alignment="m").alignment == {"model": "m", "epochs": 3, "split": "test"}
    assert load_ablation({**base, "alignment": True}, alignment=False).alignment is None
    for bad, msg in [({"speed": 1}, r"alignment: unknown key\(s\) \['speed'\]"), ({"split": "dev"}, "alignment.split: 'dev'"),
                     ({"epochs": 0}, "alignment.epochs: expected a positive integer"), (3, "alignment: expected true")]:
        with pytest.raises(RecipeError, match=msg):
            load_ablation({**base, "alignment": bad})
    res = CliRunner().invoke(app, ["ablate", _missing_model_recipe(tmp_path), "--out", str(tmp_path / "o"), "-j", "1"])
    assert isinstance(res.exception, MMDataError) and "alignment.model" in str(res.exception)
    assert "contrastive.pt" in str(res.exception) and not (tmp_path / "o" / "runs.parquet").exists()  # before any run


def test_hflip_arm_loses_alignment_and_consistent_hflip_does_not(tmp_path: Path) -> None:
    """The case built for it (avdigits-spatial: captions say left/right): through the ablation runner,
    with a reference model it pre-trains itself."""
    from mmdata.datasets.spatial import build

    data = build(tmp_path / "sp", limit=30, progress=False)
    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": SYN, "modalities": ["image", "text"]}, "seeds": 2,
           "alignment": {"epochs": 15},
           "design": {"mode": "explicit", "baseline": None,
                      "arms": {"hflip": {"seed": 0, "image": [{"op": "hflip", "p": 1.0}]},
                               "consistent_hflip": {"seed": 0, "sample": [{"op": "consistent_hflip", "p": 1.0}]}}},
           "controls": {"identity": False}}
    s = run(cfg, tmp_path / "out", workers=1, progress=False, plots=False)
    ex = {a["name"]: a["exploratory"] for a in s["arms"]}
    h, c = ex["hflip"]["align_cos_delta"], ex["consistent_hflip"]["align_cos_delta"]
    assert h["mean_diff"] < -0.1  # contradicts every left/right caption
    # hflip at p = 1 draws nothing: the same Δ on every seed, so no t interval (was a zero-width one; QA29 stats #4)
    assert h["ci95_t_unadjusted"] is None and h["ci95_t_note"].startswith("the same Δ on every seed")
    assert abs(c["mean_diff"]) < 0.3 * abs(h["mean_diff"])  # flips the caption too: agreement kept
    assert ex["hflip"]["align_auc_delta"]["mean_diff"] < ex["consistent_hflip"]["align_auc_delta"]["mean_diff"]


def _missing_model_recipe(tmp_path: Path) -> str:
    from mmdata.datasets.avdigits import build

    data = build(tmp_path / "av", limit=2, progress=False)
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"dataset": {"path": str(data)}, "trainer": {"entry": SYN}, "seeds": 2,
                                 "alignment": {"model": str(tmp_path / "nothing")},
                                 "design": {"mode": "explicit", "arms": {"a": None}}, "controls": {"identity": False}}))
    return str(p)
