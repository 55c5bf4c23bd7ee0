"""QA24: an ablation's ``trainer:`` section takes ``fusion_args`` (a fusion's options), as ``mmdata train
--fusion-arg`` / ``train(fusion_args=...)`` do. It was refused as an unknown trainer key, so a fusion with
options (``hierarchical``'s ``order``, ``two_tower``'s ``towers``, a plug-in's) always ran with its
defaults in an ablation. Checked before any run, passed to every run, recorded in config.resolved.yaml,
and part of the run identity only when given (a recipe without it keeps its run hashes: resumes do not
retrain)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from mmdata.ablate.design import load_ablation
from mmdata.errors import RecipeError

pytestmark = pytest.mark.filterwarnings("ignore::mmdata.ablate.design.AblationWarning")  # 2-seed designs, on purpose

FLIP = {"image": [{"op": "hflip", "p": 0.5}]}


def _cfg(dataset: dict | None = None, **trainer: object) -> dict:
    return {**({"dataset": dataset} if dataset else {}),
            "trainer": {"epochs": 1, "fusion": "hierarchical", "eval_robustness": False, **trainer},
            "seeds": 2, "design": {"mode": "explicit", "baseline": None, "arms": {"flip": FLIP}},
            "controls": {"identity": False}, "delta": 1.0}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("fa") / "av", limit=4, progress=False)


def test_a_config_without_fusion_args_hashes_its_runs_as_before() -> None:
    """The hashes mmdata gave these runs before ``fusion_args`` was a trainer key (pinned): a resume of an
    existing ablation folder finds its runs done instead of training them again. An empty or null
    ``fusion_args`` is the fusion's defaults: the same runs, the same hashes."""
    before = {"baseline": ("ec0f36264c2cf13a", "ce83c8d385bac058"), "flip": ("c75d5122ed21a663", "117709f615cfd5c2")}
    for extra in ({}, {"fusion_args": {}}, {"fusion_args": None}):
        ab = load_ablation(_cfg(**extra))
        assert "fusion_args" not in ab.trainer and "fusion_args" not in ab.resolved()["trainer"]
        assert {a.name: (ab.run_hash(a, 3, "fp"), ab.run_hash(a, 3, "fp", code="c1")) for a in ab.arms} == before, extra
    given = load_ablation(_cfg(fusion_args={"order": "image+audio+text"}))
    assert given.trainer["fusion_args"] == {"order": "image+audio+text"}
    assert given.run_hash(given.arms[0], 3, "fp") != before["baseline"][0]  # another model: another run


@pytest.mark.parametrize(("trainer", "says"), [
    ({"fusion_args": {"ordr": "image+audio+text"}}, "trainer.fusion_args.ordr: not an option of fusion 'hierarchical'; it accepts ['order']"),
    ({"fusion": "concat", "fusion_args": {"order": "image+audio"}}, "trainer.fusion_args.order: not an option of fusion 'concat'; it accepts no options"),
    ({"fusion_args": {"order": "image+video"}}, "trainer.fusion_args.order 'image+video': 'video' is not one of the model's modalities"),
    ({"fusion": "two_tower", "fusion_args": {"towers": "image+audio+text"}}, "trainer.fusion_args.towers 'image+audio+text': expected two towers"),
    ({"fusion": "two_tower", "fusion_args": {"interaction": "cosine"}}, "trainer.fusion_args.interaction 'cosine': choose one of"),
    ({"fusion_args": "order=image+audio+text"}, "trainer.fusion_args: expected a mapping of the fusion's options"),
])
def test_bad_fusion_args_are_refused_before_any_run_naming_the_key(tmp_path: Path, trainer: dict, says: str) -> None:
    """Each refused by load_ablation (so by ``run`` before a run or an output file), naming
    ``trainer.fusion_args.<name>`` and what the fusion takes, as ``train(fusion_args=)`` checks them."""
    from mmdata.ablate import run

    with pytest.raises(RecipeError) as err:
        load_ablation(_cfg(**trainer))
    assert says in str(err.value)
    with pytest.raises(RecipeError):
        run(_cfg(**trainer), tmp_path / "o", progress=False, plots=False)
    assert not (tmp_path / "o" / "runs.parquet").exists()


def _rows(out: Path) -> dict[tuple[str, int], dict]:
    return {(r["arm"], r["seed"]): r for r in pq.read_table(out / "runs.parquet").to_pylist()}


def test_fusion_args_reach_every_run_and_the_resolved_config(tmp_path: Path, tiny: Path) -> None:
    """The runs train the fusion with the recipe's options: ``order`` spelt as the default trains the same
    models as no ``fusion_args`` (other hashes, equal metrics); another order trains other models. The
    resolved config records them, and re-running it finds every run done."""
    from mmdata.ablate import run

    data = {"path": str(tiny)}
    kw = {"workers": 1, "progress": False, "plots": False}
    plain = run(_cfg(data), tmp_path / "plain", **kw)
    spelt = run(_cfg(data, fusion_args={"order": "(image+audio)+text"}), tmp_path / "spelt", **kw)
    flat = run(_cfg(data, fusion_args={"order": "image+audio+text"}), tmp_path / "flat", **kw)
    for s in (plain, spelt, flat):
        assert s["runs"]["ok"] == 4 and s["runs"]["failed"] == 0, s["failures"][:1]
    a, b, c = _rows(tmp_path / "plain"), _rows(tmp_path / "spelt"), _rows(tmp_path / "flat")
    assert a.keys() == b.keys() == c.keys()
    for k in a:
        assert (a[k]["test_accuracy"], a[k]["test_nll"]) == (b[k]["test_accuracy"], b[k]["test_nll"]), k
        assert a[k]["config_hash"] != b[k]["config_hash"], k
    assert any(a[k]["test_nll"] != c[k]["test_nll"] for k in a)  # the flat order was used
    resolved = tmp_path / "flat" / "config.resolved.yaml"
    assert yaml.safe_load(resolved.read_text())["trainer"]["fusion_args"] == {"order": "image+audio+text"}
    assert "fusion_args" not in yaml.safe_load((tmp_path / "plain" / "config.resolved.yaml").read_text())["trainer"]
    before = pq.read_table(tmp_path / "flat" / "runs.parquet").to_pylist()
    again = run(str(resolved), tmp_path / "flat", **kw)  # a resume: nothing to train
    assert again["runs"]["ok"] == 4
    assert pq.read_table(tmp_path / "flat" / "runs.parquet").to_pylist() == before  # no run trained again
