"""QA42 notebook persona, mmdata.loader in one long-lived process:

#2 a spawn / forkserver loader (the default on macOS and Windows) with a ``transform=`` or a recipe op defined
   in a notebook's ``__main__`` is refused before a worker starts, naming it and the ways out (it used to die
   with torch's bare "DataLoader worker exited unexpectedly");
#4 a pass over the loader leaves torch's global RNG where it was (a peek changed the next cell's model init),
   with the same batches as before for a given seed.
(Segments #6, no "trimmed" claim for clips a speed op only shortened: tests/augment/test_audio_length_warning.py.)
"""

from __future__ import annotations

import copy
import sys
import types
from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.errors import MMDataError
from mmdata.testing import make_messy_folder, make_sample_folder, restored_registry


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("nb")
    return mmdata.shard(make_sample_folder(t / "raw", n=10), t / "ds", progress=False) and t / "ds"


@pytest.fixture()
def notebook_main(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``__main__`` as a Jupyter kernel (or ``python -c``) has it: no file a spawned worker could run again."""
    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    return main


CELL = """
def add_flag(s):
    s.meta["flag"] = 1
    return s
"""

OP_CELL = """
import numpy as np
from mmdata.augment import Param
from mmdata.augment.image import ImageOp

class Solarize(ImageOp):
    name = "qa42_solarize"
    PARAMS = {"threshold": Param("irange", [128, 255], 0, 255, doc="range")}

    def sample_params(self, rng, sample):
        return {"threshold": int(rng.integers(self.threshold[0], self.threshold[1] + 1))}

    def kernel(self, arr, params):
        return np.where(arr >= params["threshold"], 255 - arr, arr).astype(np.uint8)
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_notebook_transform_with_spawned_workers_is_refused_naming_it(ds: Path, notebook_main: types.ModuleType,
                                                                        method: str) -> None:
    exec(CELL, notebook_main.__dict__)  # a notebook cell: the function's module is __main__
    with pytest.raises(MMDataError) as err:
        mmdata.loader(ds, 4, transform=notebook_main.add_flag, num_workers=2, multiprocessing_context=method)
    msg = str(err.value)
    assert msg.startswith("transform=add_flag:") and "__main__" in msg and method in msg
    assert "define it in a module" in msg and "num_workers=0" in msg


def test_a_notebook_op_in_the_recipe_with_spawned_workers_is_refused_naming_the_op(
        ds: Path, notebook_main: types.ModuleType) -> None:
    with restored_registry():
        exec(OP_CELL, notebook_main.__dict__)
        recipe = {"image": [{"op": "qa42_solarize", "p": 1.0}]}
        with pytest.raises(MMDataError, match=r"op 'qa42_solarize' \(image\), class Solarize, is defined in __main__"):
            mmdata.loader(ds, 4, recipe=recipe, num_workers=1, multiprocessing_context="spawn")
        # forked workers are copies of this process: they have it (and num_workers=0 has no worker at all)
        got = [k for b in mmdata.loader(ds, 4, recipe=recipe, num_workers=0) for k in b.keys]
        assert len(got) == 10
        mmdata.loader(ds, 4, recipe=recipe, num_workers=1, multiprocessing_context="fork")


def test_an_unpicklable_transform_with_spawned_workers_is_refused_naming_it(ds: Path) -> None:
    def local(s: mmdata.Sample) -> mmdata.Sample:  # a function inside a function does not pickle
        return s

    with pytest.raises(MMDataError, match=r"^transform=.*local: .*does not pickle"):
        mmdata.loader(ds, 4, transform=local, num_workers=1, multiprocessing_context="spawn")


def test_a_script_main_and_importable_functions_pass_the_spawn_check(ds: Path) -> None:
    # pytest's own __main__ is a module a spawned worker imports again; mmdata's and the stdlib's functions import
    mmdata.loader(ds, 4, transform=copy.copy, num_workers=1, multiprocessing_context="spawn", worker_init_fn=print)


# -- review of the check: it refuses only what would surely fail in a spawned worker ---------------------

MODULE = """
import multiprocessing
import threading

import numpy as np


def add_flag(s):
    s.meta["flag"] = 1
    return s


class Tint:
    \"\"\"holds a 128x128x3 table (192 KB: pickled out of band with protocol 5)\"\"\"

    def __init__(self):
        self.table = np.zeros((128, 128, 3), np.float32)

    def __call__(self, s):
        return s


class Counter:
    \"\"\"counts in a multiprocessing.Value, which pickles only while a process is started\"\"\"

    def __init__(self):
        ctx = multiprocessing.get_context("spawn")
        self.n, self.log = ctx.Value("i", 0), ctx.Queue()

    def __call__(self, s):
        return s


class Locked:
    def __init__(self):
        self.lock = threading.Lock()

    def __call__(self, s):
        return s
"""


def _module(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(MODULE, encoding="utf-8")
    return folder


@pytest.fixture()
def qa42mod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    import importlib

    monkeypatch.syspath_prepend(str(_module(tmp_path / "site", "qa42_spawn_mod")))
    monkeypatch.delitem(sys.modules, "qa42_spawn_mod", raising=False)
    return importlib.import_module("qa42_spawn_mod")


def test_a_transform_holding_a_large_array_passes_the_spawn_check(ds: Path, qa42mod: types.ModuleType) -> None:
    import pickle

    import numpy as np

    from mmdata.augment.loader import _Discard

    mmdata.loader(ds, 4, transform=qa42mod.Tint(), num_workers=1, multiprocessing_context="spawn")
    # protocol 5 (the workers' default from Python 3.14) hands a large array over as a PickleBuffer
    assert _Discard().write(pickle.PickleBuffer(np.zeros((128, 128, 3), np.float32))) == 128 * 128 * 3 * 4


def test_objects_that_pickle_only_while_a_worker_starts_pass_the_spawn_check(ds: Path,
                                                                            qa42mod: types.ModuleType) -> None:
    mmdata.loader(ds, 4, transform=qa42mod.Counter(), num_workers=1, multiprocessing_context="spawn")
    with pytest.raises(MMDataError, match=r"^transform=Locked\(\.\.\.\): .*does not pickle \(TypeError: cannot pickle "
                                          r"'_thread.lock' object\); make what it holds picklable"):
        mmdata.loader(ds, 4, transform=qa42mod.Locked(), num_workers=1, multiprocessing_context="spawn")


def test_a_module_an_import_finder_finds_off_sys_path_passes_the_spawn_check(ds: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import importlib.abc
    import importlib.machinery
    import importlib.util

    src = _module(tmp_path / "src", "qa42_editable")

    class EditableFinder(importlib.abc.MetaPathFinder):  # what setuptools' __editable___*_finder.py installs
        def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
            return importlib.machinery.PathFinder.find_spec(name, [str(src)]) if name == "qa42_editable" else None

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, EditableFinder()])
    monkeypatch.delitem(sys.modules, "qa42_editable", raising=False)
    mod = importlib.import_module("qa42_editable")
    mmdata.loader(ds, 4, transform=mod.add_flag, num_workers=1, multiprocessing_context="spawn")
    # a module loaded from a file by path is in sys.modules only: a worker cannot import it by name
    spec = importlib.util.spec_from_file_location("qa42_by_path", _module(tmp_path / "other", "qa42_by_path") /
                                                  "qa42_by_path.py")
    by_path = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "qa42_by_path", by_path)
    spec.loader.exec_module(by_path)  # type: ignore[union-attr]
    with pytest.raises(MMDataError, match=r"^transform=add_flag: .*module 'qa42_by_path', which no import finder finds"):
        mmdata.loader(ds, 4, transform=by_path.add_flag, num_workers=1, multiprocessing_context="spawn")


def test_a_transform_in_a_packages_main_run_with_python_m_is_refused_naming_it(ds: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.machinery

    main = types.ModuleType("__main__")  # `python -m clipkg`: multiprocessing re-runs no package's __main__
    main.__spec__ = importlib.machinery.ModuleSpec("clipkg.__main__", None)
    main.__file__ = "/src/clipkg/__main__.py"
    monkeypatch.setitem(sys.modules, "__main__", main)
    exec(CELL, main.__dict__)
    with pytest.raises(MMDataError, match=r"^transform=add_flag: .*is defined in __main__ \(clipkg/__main__.py, run "
                                          r"with `python -m clipkg`\), which a spawned worker does not run again"):
        mmdata.loader(ds, 4, transform=main.add_flag, num_workers=1, multiprocessing_context="spawn")
    main.__spec__ = importlib.machinery.ModuleSpec("clipkg.cli", None)  # `python -m clipkg.cli`: re-run by name
    mmdata.loader(ds, 4, transform=main.add_flag, num_workers=1, multiprocessing_context="spawn")


# -- #4: torch's global RNG ------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::mmdata.augment.loader.PaddingWarning")
@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_pass_leaves_torchs_global_rng_as_it_was(ds: Path, num_workers: int) -> None:
    torch.manual_seed(1)
    want = torch.rand(3)
    torch.manual_seed(1)
    L = mmdata.loader(ds, 4, recipe="messy_folder", num_workers=num_workers)
    next(iter(L))  # a notebook's peek at a batch
    keys = [k for b in L for k in b.keys]
    assert torch.equal(torch.rand(3), want)  # the next cell's model init is what it would have been
    assert sorted(keys) == sorted(f"{i:06d}" for i in range(10))
