"""QA round 31 (persona "plugin"): a plugin op edited between two calls into one --out trains its runs again
(the runs' identity covers plugin code); an ablation of mmdata's own code keeps its hashes; failure summaries
keep the note naming the step, op and sample; config.resolved.yaml records entry-point plugins."""

from __future__ import annotations

import importlib
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::mmdata.ablate.design.AblationWarning")

OP = '''
from mmdata.augment.image import ImageOp


class Post(ImageOp):
    name = "{name}"

    def sample_params(self, rng, sample):
        return {{"b": int(rng.integers(2, 7))}}

    def kernel(self, a, p):
        return {body}
'''


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("ab") / "av", limit=4, progress=False)


@pytest.fixture
def registries() -> Iterator[None]:
    from mmdata.augment import base

    from mmdata import plugins

    ops, path, mods = dict(base.registry()), list(sys.path), set(sys.modules)
    loaded = dict(plugins._LOADED)
    yield
    base._REGISTRY.clear()
    base._REGISTRY.update(ops)
    sys.path[:] = path
    for m in set(sys.modules) - mods:
        if str(getattr(sys.modules[m], "__file__", None) or "").startswith(tempfile.gettempdir()):
            del sys.modules[m]
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)


def _plugin(folder: Path, body: str) -> tuple[str, str]:
    mod, name = f"qa31ops_{uuid.uuid4().hex[:8]}", f"qa31_post_{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{mod}.py").write_text(textwrap.dedent(OP.format(name=name, body=body)), encoding="utf-8")
    importlib.invalidate_caches()
    sys.path.insert(0, str(folder))
    return mod, name


def _cfg(tiny: Path, arms: dict[str, Any]) -> dict[str, Any]:
    return {"dataset": {"path": str(tiny)}, "seeds": 3, "controls": {"identity": False}, "delta": 1.0,
            "design": {"mode": "explicit", "baseline": None, "arms": arms}}


def _rows(out: Path) -> list[dict[str, Any]]:
    return pq.read_table(out / "runs.parquet").to_pylist()


def test_a_plugin_op_edited_between_calls_trains_its_runs_again(tmp_path: Path, tiny: Path, registries: None) -> None:
    from mmdata.ablate import run
    from mmdata.ablate.testing import synthetic_train

    mod, name = _plugin(tmp_path / "code", "a")
    cfg = _cfg(tiny, {"post": {"image": [{"op": name, "p": 0.7}]}})
    kw = {"train_fn": synthetic_train, "workers": 1, "progress": False, "plots": False, "plugins": [mod]}
    run(cfg, tmp_path / "out", max_runs=3, on_warning=lambda m: None, **kw)
    first = {(r["arm"], r["seed"]): r["config_hash"] for r in _rows(tmp_path / "out")}
    assert len(first) == 3
    (tmp_path / "code" / f"{mod}.py").write_text(textwrap.dedent(OP.format(name=name, body="255 - a")), encoding="utf-8")
    said: list[str] = []
    s = run(cfg, tmp_path / "out", on_warning=said.append, **kw)
    msg = next(m for m in said if "come from another configuration" in m)
    assert "3 runs" in msg and "the plugins' code" in msg, msg
    assert s["runs"]["stale_rows_not_analysed"] == 3 and s["runs"]["ok"] == 6
    now = {(r["arm"], r["seed"]): r["config_hash"] for r in _rows(tmp_path / "out") if r["config_hash"] not in first.values()}
    assert len(now) == 6 and not set(now.values()) & set(first.values())
    import json

    env = json.loads((tmp_path / "out" / "env.json").read_text())
    assert len(env["plugin_code"]) == 64 and env["code"] != env["environments"][0].get("plugin_code")


def test_an_ablation_of_mmdatas_own_code_keeps_its_run_hashes(tmp_path: Path, tiny: Path) -> None:
    from mmdata.ablate import load_ablation, run
    from mmdata.ablate.runner import plugin_code, run_code
    from mmdata.ablate.testing import synthetic_train
    from mmdata.shards import writer

    cfg = _cfg(tiny, {"flip": {"image": [{"op": "hflip", "p": 0.5}]}})
    ab = load_ablation(cfg, own_trainer=True)
    assert plugin_code(ab) is None and run_code("c" * 64, None) == "c" * 64
    run(cfg, tmp_path / "out", train_fn=synthetic_train, workers=1, progress=False, plots=False, on_warning=lambda m: None)
    code = writer.code_identity.__wrapped__()
    ab = load_ablation(cfg, entry="mmdata.ablate.testing:synthetic_train")
    by = {a.name: a for a in ab.arms}
    for r in _rows(tmp_path / "out"):
        assert r["code"] == code
        assert r["config_hash"] == ab.run_hash(by[r["arm"]], r["seed"], r["data_fingerprint"], code=code)


BOOM = '''
from mmdata.augment.image import ImageOp


class Boom(ImageOp):
    name = "{name}"

    def kernel(self, a, p):
        raise ValueError("kaboom")
'''


def test_a_failed_runs_one_line_error_keeps_the_note_naming_the_step_op_and_sample(
        tmp_path: Path, tiny: Path, registries: None) -> None:
    from mmdata.ablate import run
    from mmdata.ablate.testing import synthetic_train

    mod, name = f"qa31boom_{uuid.uuid4().hex[:8]}", f"qa31_boom_{uuid.uuid4().hex[:6]}"
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / f"{mod}.py").write_text(textwrap.dedent(BOOM.format(name=name)), encoding="utf-8")
    importlib.invalidate_caches()
    sys.path.insert(0, str(tmp_path / "code"))

    def train(data: Any, *, recipe: Any = None, seed: int = 0, **kw: Any) -> dict[str, Any]:
        if recipe:  # the arm's recipe on a sample, as a trainer's loader applies it
            import torch

            from mmdata import Sample
            from mmdata.augment import load_recipe

            load_recipe(recipe).apply_sample(Sample("k7", {"image": torch.zeros(3, 8, 8, dtype=torch.uint8)}), epoch=0)
        return synthetic_train(data, recipe=recipe, seed=seed, **kw)

    cfg = _cfg(tiny, {"boom": {"image": [{"op": name, "p": 1.0}]}})
    s = run(cfg, tmp_path / "out", train_fn=train, workers=1, progress=False, plots=False, plugins=[mod],
            on_warning=lambda m: None)
    err = s["failures"][0]["error"]
    assert err.startswith("ValueError: kaboom (mmdata: in recipe step image[0] (op image." + name), err
    assert "on sample 'k7'" in err
    assert all(r["error"] == err for r in _rows(tmp_path / "out") if r["status"] == "failed")
    assert f"ValueError: kaboom (mmdata: in recipe step image\\[0\\]" in (tmp_path / "out" / "report.md").read_text()


def test_the_resolved_config_records_which_plugin_provided_an_op_and_a_rerun_without_it_names_it(
        tmp_path: Path, tiny: Path, registries: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from mmdata.ablate import load_ablation, run, runner
    from mmdata.ablate.testing import synthetic_train
    from mmdata.augment import base
    from mmdata.errors import RecipeError

    mod, name = _plugin(tmp_path / "code", "a")
    real = runner.describe
    monkeypatch.setattr(runner, "describe", lambda specs: [  # as for an installed entry-point package
        {**d, "distribution": "qa31-ops", "version": "0.1"} if str(d["spec"]).startswith("qa31ops_") else d for d in real(specs)])
    cfg = _cfg(tiny, {"post": {"image": [{"op": name, "p": 0.7}]}})
    out = tmp_path / "out"
    run(cfg, out, train_fn=synthetic_train, workers=1, progress=False, plots=False, plugins=[mod], on_warning=lambda m: None)
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["plugins"] == [{"op": f"image.{name}", "module": mod, "distribution": "qa31-ops", "version": "0.1"}]
    # another environment: the plugin is not installed (an entry point is not listed under imports:)
    del base._REGISTRY[("image", name)]
    resolved.pop("imports")
    (out / "config.resolved.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    with pytest.raises(RecipeError, match=rf"unknown image op '{name}'.*; op image.{name} came from plugin module {mod} "
                                          r"\(distribution qa31-ops 0.1\) when these runs were made \(config.resolved.yaml "
                                          r"plugins:\): install it \(pip install 'qa31-ops==0.1'\)"):
        load_ablation(out / "config.resolved.yaml")
    resolved.pop("plugins")  # a config without the record: env.json's plugins are named
    (out / "config.resolved.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    with pytest.raises(RecipeError, match=rf"unknown image op '{name}'.*; the runs in .* loaded the plugins {mod} "
                                          rf"\(distribution qa31-ops 0.1\) \(env.json\): install the one that provides op "
                                          rf"image.{name}"):
        load_ablation(out / "config.resolved.yaml")


def test_a_resolved_config_without_plugins_has_no_plugins_record(tmp_path: Path, tiny: Path) -> None:
    import yaml

    from mmdata.ablate import run
    from mmdata.ablate.testing import synthetic_train

    run(_cfg(tiny, {"flip": {"image": [{"op": "hflip", "p": 0.5}]}}), tmp_path / "out", train_fn=synthetic_train,
        workers=1, progress=False, plots=False, on_warning=lambda m: None)
    assert "plugins" not in yaml.safe_load((tmp_path / "out" / "config.resolved.yaml").read_text())


# review of the fixes above (QA31 review "ablate" F1, F2)

PKG_OP = '''
from mmdata.augment.image import ImageOp

from {pkg} import helpers


class Post(ImageOp):
    name = "{name}"

    def sample_params(self, rng, sample):
        return {{"b": int(rng.integers(2, 7))}}

    def kernel(self, a, p):
        return helpers.f(a, p)
'''


def _package(folder: Path) -> tuple[str, str]:
    """A plugin package whose op's kernel lives in a sibling module (helpers.py), as a project's ops do."""
    pkg, name = f"qa31pkg_{uuid.uuid4().hex[:8]}", f"qa31_pkg_{uuid.uuid4().hex[:6]}"
    (folder / pkg).mkdir(parents=True)
    (folder / pkg / "__init__.py").write_text("", encoding="utf-8")
    (folder / pkg / "ops.py").write_text(textwrap.dedent(PKG_OP.format(pkg=pkg, name=name)), encoding="utf-8")
    (folder / pkg / "helpers.py").write_text("def f(a, p):\n    return a\n", encoding="utf-8")
    importlib.invalidate_caches()
    sys.path.insert(0, str(folder))
    importlib.import_module(f"{pkg}.ops")
    return pkg, name


def test_the_plugin_digest_covers_the_op_modules_whole_package(tmp_path: Path, registries: None) -> None:
    from mmdata.ablate import load_ablation
    from mmdata.ablate.runner import plugin_code, plugin_digests

    pkg, name = _package(tmp_path / "code")
    ab = load_ablation({"seeds": 3, "controls": {"identity": False},
                        "design": {"mode": "explicit", "arms": {"post": {"image": [{"op": name, "p": 0.7}]}}}},
                       own_trainer=True)
    before, digests = plugin_code(ab), plugin_digests(ab)
    assert list(digests) == [pkg] and before is not None
    with open(tmp_path / "code" / pkg / "helpers.py", "a", encoding="utf-8") as f:
        f.write("# edited\n")  # the op's module (ops.py) is untouched: only the helper it calls changed
    assert plugin_code(ab) != before
    assert plugin_code(ab, [f"{pkg}.ops", pkg]) == plugin_code(ab)  # one package, one digest, however it is named
    # a top-level module that is no package: that file alone, never the folder it sits in (site-packages)
    mod, single = _plugin(tmp_path / "flat", "a")
    importlib.import_module(mod)
    ab = load_ablation({"seeds": 3, "controls": {"identity": False},
                        "design": {"mode": "explicit", "arms": {"post": {"image": [{"op": single, "p": 0.7}]}}}},
                       own_trainer=True)
    flat = plugin_code(ab)
    (tmp_path / "flat" / "neighbour.py").write_text("x = 1\n", encoding="utf-8")
    assert plugin_code(ab) == flat


def test_the_retrain_warning_says_it_was_the_plugins_code_and_which_package(
        tmp_path: Path, tiny: Path, registries: None) -> None:
    from mmdata.ablate import run
    from mmdata.ablate.testing import synthetic_train

    pkg, name = _package(tmp_path / "code")
    cfg = _cfg(tiny, {"post": {"image": [{"op": name, "p": 0.7}]}})
    kw = {"train_fn": synthetic_train, "workers": 1, "progress": False, "plots": False, "plugins": [f"{pkg}.ops"]}
    run(cfg, tmp_path / "out", on_warning=lambda m: None, **kw)
    with open(tmp_path / "code" / pkg / "helpers.py", "a", encoding="utf-8") as f:
        f.write("# edited\n")
    said: list[str] = []
    s = run(cfg, tmp_path / "out", on_warning=said.append, **kw)
    msg = next(m for m in said if "come from another configuration" in m)
    assert f"changed: the plugins' code ({pkg} edited; mmdata's code and libraries are as before)" in msg, msg
    assert s["runs"]["stale_rows_not_analysed"] == 6 and s["runs"]["ok"] == 6


def test_the_retrain_warning_of_runs_that_did_not_record_their_plugin_code_says_so() -> None:
    from mmdata.ablate.runner import _code_change

    env = {"code": "r" * 64, "mmdata_code": "m" * 64, "plugin_code": "p" * 64, "plugin_modules": {"myproj": "p" * 64},
           "mmdata": "0.1.0", "torch": "2.4"}
    before = {"code": "m" * 64, "mmdata": "0.1.0", "torch": "2.4"}  # an env.json from before the plugin digest
    msg = _code_change([{"code": "m" * 64}], env, before)
    assert msg is not None and msg.startswith("the plugins' code, which these runs did not record"), msg
    assert "mmdata's code and libraries are as before" in msg
    # mmdata's code changed too: both said, mmdata's with its versions
    msg = _code_change([{"code": "o" * 64}], env, {"code": "o" * 64, "mmdata": "0.0.9", "torch": "2.4"})
    assert msg is not None and msg.startswith("mmdata's code or its libraries (mmdata 0.0.9") and "did not record" in msg, msg
    # an ablation without plugins: the message of before
    msg = _code_change([{"code": "o" * 64}], {"code": "m" * 64, "mmdata": "0.1.0", "torch": "2.4"},
                       {"code": "o" * 64, "mmdata": "0.0.9", "torch": "2.4"})
    assert msg == ("mmdata's code or its libraries (mmdata 0.0.9, torch 2.4, code oooooooo -> mmdata 0.1.0, torch 2.4, "
                   "code mmmmmmmm)"), msg
