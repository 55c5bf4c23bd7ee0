"""Your own ops and fusions in ablations (mmdata/plugins.py): an ablation whose arms use an op, or whose
trainer uses a fusion, registered by the user's script worked with one worker and failed every run with two
(QA: the spawned workers never imported the user's module). Real worker processes and the real trainer:
the results do not depend on the worker count; a recipe's ``imports:`` and its trainer entry are imported
before the arms are checked; an op defined in ``__main__`` is refused before any run; installed packages'
entry points are plugins too; import errors say "not found" or "found, but its own import failed"."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from mmdata.errors import MMDataError, RecipeError

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.filterwarnings("ignore::mmdata.ablate.design.AblationWarning")  # 2-seed designs, on purpose

# a user's module: an image op and a fusion, registered when it is imported
OPS = '''
import torch
from torch import nn

from mmdata.augment.base import Op
from mmdata.train.fusions import Fusion, register


class Invert(Op):
    section, name, field = "image", "{op}", "image"

    def transform(self, sample, params):
        return sample.with_fields(image=255 - sample["image"])

    def transform_batch(self, batch, params):
        return batch.replace(image=255 - batch["image"])


@register("{fusion}")
class ProdFusion(Fusion):
    def __init__(self, mods, d, classes, low_dims):
        super().__init__(mods, d, classes, low_dims)
        self.head = nn.Linear(d, classes)

    def forward(self, feats, present, low):
        h = torch.ones_like(feats[self.mods[0]])
        for m in self.mods:
            h = h * torch.tanh(feats[m])
        return self.head(h)
'''


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("ab") / "av", limit=4, progress=False)


@pytest.fixture
def registries() -> Iterator[None]:
    """The op and fusion registries, sys.path, sys.modules and the plugin state as they were: a test's
    plugin must not be seen by the next test (nor be listed among the bundled fusions)."""
    from mmdata.augment import base
    from mmdata.train.fusions import FUSIONS

    from mmdata import plugins

    ops, fusions, path, mods = dict(base.registry()), dict(FUSIONS), list(sys.path), set(sys.modules)
    loaded, eps = dict(plugins._LOADED), plugins._ENTRY_POINTS
    yield
    base._REGISTRY.clear()
    base._REGISTRY.update(ops)
    FUSIONS.clear()
    FUSIONS.update(fusions)
    sys.path[:] = path
    for m in set(sys.modules) - mods:  # the test's own modules (torch's, imported meanwhile, stay imported)
        if str(getattr(sys.modules[m], "__file__", None) or "").startswith(tempfile.gettempdir()):
            del sys.modules[m]
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)
    plugins._ENTRY_POINTS = eps


def _module(folder: Path, name: str, text: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(text), encoding="utf-8")
    importlib.invalidate_caches()
    return name


def _cfg(tiny: Path, op: str, fusion: str = "concat", **extra: object) -> dict:
    return {"dataset": {"path": str(tiny)}, "trainer": {"epochs": 1, "fusion": fusion, "eval_robustness": False},
            "seeds": 2, "design": {"mode": "explicit", "baseline": None, "arms": {"inv": {"image": [{"op": op}]}}},
            "controls": {"identity": False}, "delta": 1.0, **extra}


def _rows(out: Path) -> dict[tuple[str, int], dict]:
    return {(r["arm"], r["seed"]): r for r in pq.read_table(out / "runs.parquet").to_pylist()}


def _python(code: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter in ``cwd`` (on its sys.path, as for a user's ``python -c``)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_a_scripts_own_op_and_fusion_give_the_same_runs_with_one_and_two_workers(
        tmp_path: Path, tiny: Path, registries: None) -> None:
    """``import myops`` then ``run(..., workers=2)``: every run failed (``unknown image op`` / ``fusion
    'prod' is not one of``). The workers now import the module that registered them (found in this
    process, passed on), the runs equal those of one worker, and the resolved config names the module."""
    from mmdata.ablate import run

    mod = _module(tmp_path / "code", f"myops_{uuid.uuid4().hex[:8]}", OPS.format(op="invert", fusion="prod"))
    sys.path.insert(0, str(tmp_path / "code"))
    importlib.import_module(mod)  # the user's `import myops`
    cfg = _cfg(tiny, "invert", "prod")
    two = run(cfg, tmp_path / "two", workers=2, progress=False, plots=False)
    assert two["runs"]["failed"] == 0, two["failures"][:1]
    one = run(cfg, tmp_path / "one", workers=1, progress=False, plots=False)
    assert one["runs"]["ok"] == two["runs"]["ok"] == 4
    a, b = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k]["test_accuracy"], a[k]["test_nll"]) == (b[k]["test_accuracy"], b[k]["test_nll"]), k
    resolved = yaml.safe_load((tmp_path / "two" / "config.resolved.yaml").read_text())
    assert resolved["imports"] == [mod]
    env = json.loads((tmp_path / "two" / "env.json").read_text())
    assert [p["spec"] for p in env["plugins"]] == [mod] and env["plugins"][0]["file"].endswith(f"{mod}.py")
    # a rerun of the resolved config in a fresh process (which never imported the module) uses them
    res = _python(f"""
        from mmdata.ablate import run
        from mmdata.plugins import trust_code
        with trust_code():  # the resolved config names the module
            s = run({str(tmp_path / 'two' / 'config.resolved.yaml')!r}, {str(tmp_path / 'again')!r}, workers=2,
                    progress=False, plots=False)
        assert s["runs"]["ok"] == 4, s["failures"]
    """, tmp_path / "code")
    assert res.returncode == 0, res.stderr[-3000:]
    assert _rows(tmp_path / "again").keys() == b.keys()


def test_recipe_imports_are_imported_by_the_parent_and_every_worker(tmp_path: Path, tiny: Path) -> None:
    """``imports: [opsmod]`` in the recipe: nothing in the calling script imports it; the op and the fusion
    it registers are named by the arms and ``trainer.fusion``, and every run of two workers finds them."""
    code = tmp_path / "code"
    _module(code, "opsmod_a", OPS.format(op="invert_a", fusion="prod_a"))
    (code / "abl.yaml").write_text(yaml.safe_dump(_cfg(tiny, "invert_a", "prod_a", imports=["opsmod_a"])))
    res = _python(f"""
        from mmdata.ablate import run
        from mmdata.plugins import trust_code
        with trust_code():  # the recipe names code
            s = run("abl.yaml", {str(tmp_path / 'o')!r}, workers=2, progress=False, plots=False)
        assert s["runs"] == dict(s["runs"], ok=4, failed=0), s["failures"][:1]
    """, code)
    assert res.returncode == 0, res.stderr[-3000:]
    assert yaml.safe_load((tmp_path / "o" / "config.resolved.yaml").read_text())["imports"] == ["opsmod_a"]


def test_a_trainer_module_that_registers_ops_is_imported_before_the_arms_are_checked(tmp_path: Path, tiny: Path) -> None:
    """The arms were checked before ``trainer.entry`` was imported: a trainer module importing its own ops
    failed with ``design.arms.inv: image[0]: unknown image op 'invert_b'``."""
    code = tmp_path / "code"
    _module(code, "opsmod_b", OPS.format(op="invert_b", fusion="prod_b"))
    _module(code, "trainermod", """
        import opsmod_b  # registers invert_b
        from mmdata.train import train as _train


        def train(data, **kw):
            return _train(data, **kw)
    """)
    cfg = _cfg(tiny, "invert_b", trainer={"entry": "trainermod:train", "epochs": 1, "eval_robustness": False})
    (code / "abl.yaml").write_text(yaml.safe_dump(cfg))
    res = _python(f"""
        from mmdata.ablate import run
        from mmdata.plugins import trust_code
        with trust_code():  # the recipe names code
            s = run("abl.yaml", {str(tmp_path / 'o')!r}, workers=2, progress=False, plots=False)
        assert s["runs"] == dict(s["runs"], ok=4, failed=0), s["failures"][:1]
    """, code)
    assert res.returncode == 0, res.stderr[-3000:]


def test_an_op_defined_in_main_is_refused_before_any_run(tmp_path: Path, tiny: Path) -> None:
    """A worker process cannot import a script's ``__main__``: refused with what to do, before anything is
    written; with the runs in this process (one worker) it is there and works."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from mmdata.ablate import run
        from mmdata.augment.base import Op
        from mmdata.errors import MMDataError


        class Invert(Op):
            section, name, field = "image", "invert", "image"

            def transform(self, sample, params):
                return sample.with_fields(image=255 - sample["image"])


        cfg = {_cfg(tiny, "invert")!r}
        try:
            run(cfg, sys.argv[1] + "/two", workers=2, progress=False, plots=False)
        except MMDataError as exc:
            print("REFUSED", exc)
        s = run(cfg, sys.argv[1] + "/one", workers=1, progress=False, plots=False)
        print("ONE", s["runs"]["ok"])
    """), encoding="utf-8")
    res = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    said = res.stdout.split("REFUSED ", 1)[1].splitlines()[0]
    assert "op 'invert' (image) is defined in __main__" in said and "imports:" in said and "--plugin" in said
    assert not (tmp_path / "two").exists()
    assert "ONE 4" in res.stdout


def test_import_errors_say_not_found_or_found_but_its_import_failed(tmp_path: Path, registries: None) -> None:
    from mmdata import plugins

    code = tmp_path / "code"
    _module(code, "brokendep", "import nonexistent_dep_xyz\n")
    _module(code, "raising", "x = 1\nraise RuntimeError('boom')\n")
    sys.path.insert(0, str(code))
    with pytest.raises(MMDataError, match="cannot import module 'nope_xyz': no module of that name was found"):
        plugins.load_plugins(["nope_xyz"], entry_points=False)
    with pytest.raises(MMDataError, match=r"--plugin 'brokendep': module 'brokendep' \(.*brokendep.py\) was found, but its "
                                          r"own import failed: the module 'nonexistent_dep_xyz' it imports is not installed"):
        plugins.load_plugins(["brokendep"], entry_points=False)
    with pytest.raises(MMDataError, match=r"found, but its own import failed: RuntimeError: boom \(at .*raising.py:2\)"):
        plugins.load_plugins(["raising"], entry_points=False)
    for bad in ("../evil", "/abs/path", "pkg/mod", "", "a..b", "mod:"):
        with pytest.raises(MMDataError, match="expected a module name like pkg.myops"):
            plugins.load_plugins([bad], entry_points=False)
    with pytest.raises(RecipeError, match=r"imports\[1\]: expected a module name"):
        from mmdata.ablate import load_ablation

        load_ablation({"imports": ["ok_name", "../x.py"], "design": {"mode": "explicit", "arms": {"a": None}}})
    # a hook function is called once per process, however often it is named
    _module(code, "hooked", "calls = []\n\ndef register():\n    calls.append(1)\n")
    assert plugins.load_plugins(["hooked:register", "hooked:register"], entry_points=False) == ["hooked:register"]
    plugins.load_plugins(["hooked:register"], entry_points=False)
    assert sys.modules["hooked"].calls == [1]


def test_a_trainer_entry_whose_dependency_is_missing_says_so(tmp_path: Path, tiny: Path, registries: None) -> None:
    """It said "cannot import module 'brokenmod' (No module named 'nonexistent_dep_xyz'); is it installed or
    on PYTHONPATH?": the module was there, its dependency was not."""
    from mmdata.ablate import run
    from mmdata.plugins import trust_code

    _module(tmp_path / "code", "brokenmod", "import nonexistent_dep_xyz\n\ndef train(data, **kw):\n    return {}\n")
    sys.path.insert(0, str(tmp_path / "code"))
    cfg = {**_cfg(tiny, "hflip"), "trainer": {"entry": "brokenmod:train"}}
    with pytest.raises(MMDataError) as exc, trust_code():  # the recipe names its trainer
        run(cfg, tmp_path / "o", workers=2, progress=False, plots=False)
    said = str(exc.value)
    assert "trainer entry 'brokenmod:train': module 'brokenmod'" in said
    assert "was found, but its own import failed: the module 'nonexistent_dep_xyz' it imports is not installed" in said
    assert "is it installed or on PYTHONPATH" not in said and not (tmp_path / "o").exists()


def _fake_distribution(where: Path, value: str, module: str, text: str) -> None:
    """An installed package as importlib.metadata finds one: a module and its dist-info with an entry point."""
    _module(where, module, text)
    info = where / "mmdata_fakeplugin-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mmdata-fakeplugin\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(f"[mmdata.plugins]\nfake = {value}\n")


def test_installed_entry_points_are_plugins(tmp_path: Path, tiny: Path, registries: None) -> None:
    """A package's ``mmdata.plugins`` entry point registers its fusion: loaded by load_plugins (the CLI, an
    ablation), or on a fusion name not registered yet (``mmdata.train.train``), and passed to workers."""
    from mmdata import plugins
    from mmdata.train import train
    from mmdata.train.fusions import FUSIONS

    site = tmp_path / "site"
    mod = f"fakeplugin_{uuid.uuid4().hex[:8]}"
    _fake_distribution(site, f"{mod}:register", mod, f"""
        def register():
            exec({OPS.format(op='invert_ep', fusion='prod_ep')!r}, globals())
    """)
    sys.path.insert(0, str(site))
    plugins._ENTRY_POINTS = None
    assert "prod_ep" not in FUSIONS
    m = train(tiny, fusion="prod_ep", epochs=1, threads=1, eval_robustness=False)  # found on the miss
    assert m["config"]["fusion"] == "prod_ep"
    assert f"{mod}:register" in plugins.load_plugins([])
    d = plugins.describe([f"{mod}:register"])[0]
    assert d["file"].endswith(f"{mod}.py")


def test_a_broken_entry_point_names_its_package(tmp_path: Path, registries: None) -> None:
    from mmdata import plugins

    site = tmp_path / "site"
    _fake_distribution(site, "brokenplug_xyz", "brokenplug_xyz", "import nonexistent_dep_xyz\n")
    sys.path.insert(0, str(site))
    plugins._ENTRY_POINTS = None
    with pytest.raises(MMDataError, match=r"installed package mmdata-fakeplugin 1.2, entry point fake = 'brokenplug_xyz' "
                                          r"\(group mmdata.plugins\): module 'brokenplug_xyz' .*was found, but its own "
                                          r"import failed.*fix or uninstall that package"):
        plugins.load_plugins([])


@pytest.mark.ray
def test_ray_workers_import_the_plugins_too(tmp_path: Path, tiny: Path, ray_cluster: object) -> None:
    """The Ray executor's tasks load the same plugins before their run (each task is a fresh worker's)."""
    code = tmp_path / "code"
    _module(code, "rayops", OPS.format(op="invert_ray", fusion="prod_ray"))
    res = _python(f"""
        import rayops  # the user's script registers them; the cluster's workers never imported it
        from mmdata.ablate import run
        s = run({_cfg(tiny, "invert_ray", "prod_ray")!r}, {str(tmp_path / 'o')!r}, executor="ray",
                address={ray_cluster.address!r}, progress=False, plots=False)
        assert s["runs"] == dict(s["runs"], ok=4, failed=0), s["failures"][:1]
    """, code)
    assert res.returncode == 0, res.stderr[-3000:]
