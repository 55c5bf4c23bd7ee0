"""Installed plugins for library callers, and plugins under `mmdata augment -j N`'s process pool
(mmdata/plugins.py: :func:`~mmdata.plugins.entry_points_on_miss`).

Only the CLI and ``mmdata.ablate.run`` called ``load_plugins()``: ``load_recipe`` / ``mmdata.loader(recipe=)``
said "unknown image op" for an op an installed package's ``mmdata.plugins`` entry point provides. Now the
first name not registered loads the entry points, once per process. Each check runs in a fresh
interpreter, so the process-wide registry and that once-only state start clean."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.ablate.test_plugins import _fake_distribution

# an installed package's module: an image op and a fusion, registered by its entry point's hook
PACKAGE = '''
import numpy as np
import torch

from mmdata.augment.image import ImageOp
from mmdata.train.fusions import Fusion, register as register_fusion

hooked = []


def register():
    hooked.append(1)

    class Threshold(ImageOp):
        name = "ep_threshold"

        def sample_params(self, rng, sample):
            return {"t": int(rng.integers(0, 256))}

        def kernel(self, arr, params):
            return np.where(arr >= params["t"], 255 - arr, arr).astype(np.uint8)

    @register_fusion("ep_sum")
    class Sum(Fusion):
        def __init__(self, mods, d, classes, low_dims):
            super().__init__(mods, d, classes, low_dims)
            self.head = torch.nn.Linear(d, classes)

        def forward(self, feats, present, low):
            return self.head(sum(feats[m] for m in self.mods))
'''


def _python(code: str, site: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter with ``site`` (the fake installed package) on its path."""
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": path, **env}, timeout=600)


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, str]:
    """A folder holding an installed package (dist-info with a ``mmdata.plugins`` entry point) and its module."""
    mod = f"mmdata_ep_{uuid.uuid4().hex[:8]}"
    _fake_distribution(tmp_path / "site", f"{mod}:register", mod, PACKAGE)
    return tmp_path / "site", mod


def test_a_recipe_finds_an_installed_packages_op_without_load_plugins(site: tuple[Path, str], tmp_path: Path) -> None:
    folder, mod = site
    res = _python(f"""
        import sys

        import mmdata
        from mmdata import plugins
        from mmdata.augment import load_recipe
        from mmdata.testing import make_sample_folder

        scans = []
        scan = plugins._entry_points
        plugins._entry_points = lambda: scans.append(1) or scan()  # count the entry-point scans
        assert {mod!r} not in sys.modules and plugins._ENTRY_POINTS is None
        recipe = load_recipe("seed: 0\\nimage:\\n  - {{op: ep_threshold, p: 0.5}}\\n")  # found on the miss
        assert type(recipe.steps[0].op).__module__ == {mod!r}, recipe.steps
        assert plugins.loaded() == [{mod + ':register'!r}]
        for _ in range(2):  # a name still unknown: the message of today, and no second scan
            try:
                load_recipe({{"image": [{{"op": "ep_thresold"}}]}})
            except mmdata.RecipeError as exc:
                said = str(exc)
            else:
                raise AssertionError("an unknown op was built")
            assert said.startswith("image[0]: unknown image op 'ep_thresold'; did you mean 'ep_threshold'?"), said
        from mmdata.train.fusions import fusion_class

        assert fusion_class("ep_sum").__name__ == "Sum" and fusion_class("nope") is None
        assert scans == [1] and sys.modules[{mod!r}].hooked == [1], (scans, sys.modules[{mod!r}].hooked)
        mmdata.shard(make_sample_folder("raw", n=4), "ds", progress=False)
        batch = next(iter(mmdata.loader("ds", 2, recipe={{"image": [{{"op": "ep_threshold"}}]}})))
        assert [s["aug"][0]["op"] for s in batch.meta["samples"]] == ["image.ep_threshold"] * 2, batch.meta
    """, folder, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]


def test_a_fresh_process_loader_finds_the_op(site: tuple[Path, str], tmp_path: Path) -> None:
    """``mmdata.loader(recipe=)`` is the first lookup of the process (no ``load_recipe`` before it)."""
    folder, mod = site
    res = _python(f"""
        import mmdata
        from mmdata.testing import make_sample_folder

        mmdata.shard(make_sample_folder("raw", n=4), "ds", progress=False)
        batch = next(iter(mmdata.loader("ds", 2, recipe={{"seed": 0, "image": [{{"op": "ep_threshold", "p": 1.0}}]}})))
        assert batch["image"].shape[0] == 2
    """, folder, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]


def test_training_options_accept_an_installed_packages_fusion(site: tuple[Path, str], tmp_path: Path) -> None:
    """``check_options`` (train's and the ablation's option check) is the first lookup of the process:
    it checked ``fusion`` against the fusions registered so far, and refused the package's one."""
    folder, _ = site
    res = _python("""
        from mmdata.train.config import check_options

        check_options(fusion="ep_sum")
        try:
            check_options(fusion="ep_summ")
        except Exception as exc:
            assert "is not one of" in str(exc) and "ep_sum" in str(exc), exc
        else:
            raise AssertionError("an unknown fusion passed")
    """, folder, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]


def test_a_broken_installed_package_is_tried_once_and_named(tmp_path: Path) -> None:
    """An entry point whose import fails: an unknown op's error names the recipe step and the package, every
    time, without importing it again; a registered op never looks at the entry points."""
    _fake_distribution(tmp_path / "site", "brokenplug_lazy", "brokenplug_lazy", "import nonexistent_dep_xyz\n")
    res = _python("""
        from mmdata import RecipeError, plugins
        from mmdata.augment import load_recipe

        scans = []
        scan = plugins._entry_points
        plugins._entry_points = lambda: scans.append(1) or scan()
        load_recipe({"image": [{"op": "hflip"}]})
        assert scans == [] and plugins._ENTRY_POINTS is None
        for _ in range(2):
            try:
                load_recipe({"image": [{"op": "ep_nothing"}]})
            except RecipeError as exc:
                said = str(exc)
            else:
                raise AssertionError("an unknown op was built")
            assert said.startswith("image[0]: unknown image op 'ep_nothing'; loading the installed plugins "
                                   "to look for it failed: installed package mmdata-fakeplugin 1.2, entry point fake = "
                                   "'brokenplug_lazy'"), said
            assert "nonexistent_dep_xyz" in said and "fix or uninstall that package" in said, said
        assert scans == [1], scans
    """, tmp_path / "site", tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]


def test_augment_with_a_plugin_op_in_the_writers_process_pool_matches_the_threads(tmp_path: Path) -> None:
    """``mmdata augment -j 3 --plugin M`` where the writer uses a spawned process pool (``MMDATA_PURE_PYTHON=1``;
    torch loaded: spawn) writes the same bytes as with writer threads. The pool's workers augment their
    shards' samples themselves (one task per output shard), so they load the recipe's plugin modules."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "lazy_cli_ops.py").write_text(textwrap.dedent('''
        import numpy as np

        from mmdata.augment.image import ImageOp


        class Threshold(ImageOp):
            name = "cli_threshold"

            def sample_params(self, rng, sample):
                return {"t": int(rng.integers(0, 256))}

            def kernel(self, arr, params):
                return np.where(arr >= params["t"], 255 - arr, arr).astype(np.uint8)
    '''))
    (tmp_path / "r.yaml").write_text("seed: 0\nimage:\n  - {op: cli_threshold, p: 0.7}\n")
    made = _python("""
        import mmdata
        from mmdata.testing import make_sample_folder

        mmdata.shard(make_sample_folder("raw", n=12), "ds", split="train=0.5,val=0.25,test=0.25", progress=False)
    """, code, tmp_path)
    assert made.returncode == 0, made.stderr[-3000:]
    # the CLI, with the pool's start method reported (a spawned worker does not run this -c code again)
    cli = """
        import sys
        from concurrent import futures

        import mmdata.shards.writer as writer
        from mmdata.cli.main import main


        class Reporting(futures.ProcessPoolExecutor):
            def __init__(self, *args, **kwargs):
                print("pool:", kwargs["mp_context"].get_start_method(), file=sys.stderr)
                super().__init__(*args, **kwargs)


        writer.ProcessPoolExecutor = Reporting
        sys.argv = ["mmdata", "augment", "ds", sys.argv[1], "-r", "r.yaml", "--plugin", "lazy_cli_ops", "-j", "3",
                    "--maxcount", "2", "--copies", "2", "--json"]
        main()
    """
    outs = {}
    for how, env in (("processes", {"MMDATA_PURE_PYTHON": "1"}), ("threads", {})):
        res = subprocess.run([sys.executable, "-c", textwrap.dedent(cli), f"{how}/aug"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=600, env={**os.environ, **env, "PYTHONPATH": os.pathsep.join(
                                 [str(code), os.environ.get("PYTHONPATH", "")])})
        assert res.returncode == 0, res.stderr[-3000:]
        assert ("pool: spawn" in res.stderr) == (how == "processes"), res.stderr[-3000:]
        outs[how] = {p.relative_to(tmp_path / how / "aug"): p.read_bytes()
                     for p in sorted((tmp_path / how / "aug").iterdir()) if p.is_file()}
    assert sum(p.suffix == ".tar" for p in outs["threads"]) > 3  # more shards than one: the pool had work to share
    assert outs["processes"] == outs["threads"]
