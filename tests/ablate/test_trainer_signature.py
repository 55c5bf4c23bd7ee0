"""A trainer entry is checked against the call every run makes before any run (QA: ``def train(data,
recipe, seed)`` failed every run with ``TypeError: ... unexpected keyword argument 'label_noise'`` and
wrote a report folder of failures): one RecipeError naming the entry, what does not fit and the contract."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from mmdata.ablate import run
from mmdata.errors import RecipeError
from mmdata.plugins import trust_code

pytestmark = pytest.mark.filterwarnings("ignore::mmdata.ablate.design.AblationWarning")


@pytest.fixture(autouse=True)
def _trusted() -> object:
    """The recipes name their trainer modules: code the caller consents to (mmdata.plugins.trust_code)."""
    with trust_code():
        yield

TRAINERS = '''
from mmdata.ablate.testing import synthetic_train


def three(data, recipe, seed):
    return synthetic_train(data, recipe=recipe, seed=seed)


def strict(data, *, recipe, seed, label_noise, device, threads):
    return synthetic_train(data, recipe=recipe, seed=seed, label_noise=label_noise)


def needs_model(data, model_size, *, recipe=None, **kw):
    return synthetic_train(data, recipe=recipe, **kw)


def open_ended(data, **kw):
    return synthetic_train(data, **kw)
'''


@pytest.fixture
def sigmod(tmp_path: Path) -> str:
    name = f"sigmod_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(TRAINERS), encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    yield name
    sys.path.remove(str(tmp_path))
    sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("ab") / "av", limit=4, progress=False)


def _cfg(entry: str, data: Path, **trainer: object) -> dict:
    return {"dataset": {"path": str(data)}, "trainer": {"entry": entry, **trainer}, "seeds": 2,
            "metric": {"name": "test.accuracy"}, "design": {"mode": "explicit", "arms": {"a": None}},
            "controls": {"identity": False}}


def test_a_trainer_without_the_runners_keywords_is_refused_before_any_run(tmp_path: Path, sigmod: str, tiny: Path) -> None:
    with pytest.raises(RecipeError) as exc:
        run(_cfg(f"{sigmod}:three", tiny), tmp_path / "o", workers=2, progress=False, plots=False)
    said = str(exc.value)
    assert f"trainer entry '{sigmod}:three' (data, recipe, seed)" in said
    assert "unexpected keyword arguments 'label_noise', 'device', 'threads' (passed by the runner)" in said
    assert 'docs/ablation.md, "Your own trainer"' in said and "\n" not in said
    assert not (tmp_path / "o").exists()  # no folder of failed runs


def test_trainer_options_and_required_arguments_are_named(tmp_path: Path, sigmod: str, tiny: Path) -> None:
    with pytest.raises(RecipeError, match=r"unexpected keyword argument 'epochs' \(passed from the recipe's trainer: "
                                          r"options\)"):
        run(_cfg(f"{sigmod}:strict", tiny, epochs=3), tmp_path / "o", workers=1, progress=False, plots=False)
    with pytest.raises(RecipeError, match=r"missing required argument 'model_size' \(no run passes them"):
        run(_cfg(f"{sigmod}:needs_model", tiny), tmp_path / "o", workers=1, progress=False, plots=False)
    # the same function given as train_fn (an importable one: worker processes) is checked alike
    mod = importlib.import_module(sigmod)
    with pytest.raises(RecipeError, match=f"trainer entry '{sigmod}:three'"):
        run(_cfg(f"{sigmod}:open_ended", tiny), tmp_path / "o", train_fn=mod.three, workers=2, progress=False, plots=False)
    assert not (tmp_path / "o").exists()


def test_trainers_that_fit_the_contract_run(tmp_path: Path, sigmod: str, tiny: Path) -> None:
    s = run(_cfg(f"{sigmod}:strict", tiny), tmp_path / "strict", workers=1, progress=False, plots=False)
    assert s["runs"]["ok"] == 4
    s = run(_cfg(f"{sigmod}:open_ended", tiny, epochs=3), tmp_path / "open", workers=1, progress=False, plots=False)
    assert s["runs"]["ok"] == 4
