"""mmdata as a package, not a checkout: what the sdist and the wheel hold (the recipes, the licence, the
whole test suite), the shipped recipes found in a wheel's layout, one version, ``python -m mmdata``.

The build test builds an sdist of the source tree, then a wheel from the unpacked sdist (as pip does
from PyPI), with the setuptools of this environment and no network: ~5-10 s.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import mmdata

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, **env})


def _source_tree(dest: Path) -> Path:
    """A copy of the files a clone would have (tracked + untracked, not ignored: no .venv, build/, *.so)."""
    listed = _run(["git", "ls-files", "-co", "--exclude-standard", "-z"], REPO)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the source tree cannot be listed")
    for name in filter(None, listed.stdout.split("\0")):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _build(kind: str, src: Path, out: Path) -> tuple[Path, str]:
    code = (f"import sys; from setuptools import build_meta as b; "
            f"print('BUILT', b.build_{kind}(sys.argv[1]))")
    res = _run([sys.executable, "-c", code, str(out)], src)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    name = re.search(r"^BUILT (\S+)$", res.stdout, re.M)
    assert name, res.stdout[-2000:]
    return out / name.group(1), res.stdout + res.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("build")
    src = _source_tree(tmp / "src")
    sdist, log_s = _build("sdist", src, tmp / "dist")
    with tarfile.open(sdist) as tf:
        names = tf.getnames()
        tf.extractall(tmp / "unpacked", filter="data") if sys.version_info >= (3, 12) else tf.extractall(tmp / "unpacked")
    root = tmp / "unpacked" / sdist.name[: -len(".tar.gz")]
    wheel, log_w = _build("wheel", root, tmp / "dist")  # the wheel pip would build from the sdist
    return {"sdist": sdist, "sdist_names": names, "wheel": wheel, "log": log_s + log_w, "tmp": tmp}


def _recipe_files() -> list[str]:
    return sorted(p.relative_to(REPO / "recipes").as_posix() for p in (REPO / "recipes").rglob("*.yaml"))


def test_wheel_ships_the_recipes_licence_and_one_version(built: dict[str, object]) -> None:
    with zipfile.ZipFile(built["wheel"]) as zf:  # type: ignore[arg-type]
        names = set(zf.namelist())
        for rel in _recipe_files():  # every recipe, byte for byte the repository's
            assert zf.read(f"mmdata/recipes/{rel}") == (REPO / "recipes" / rel).read_bytes(), rel
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert zf.read(licence) == (REPO / "LICENSE").read_bytes()
    assert "mmdata/recipes/ablations/avdigits_loo.yaml" in names  # the demo's recipe
    assert {"mmdata/__main__.py", "mmdata/recipes_path.py", "mmdata/cli/main.py", "mmdata/py.typed",
            "mmdata/datasets/assets/speech_bank.flac", "mmdata/datasets/assets/speech_bank.json"} <= names
    assert not any(n.startswith(("recipes/", "tests/", "cli/")) for n in names)  # nothing at site-packages' top
    assert re.search(rf"^Version: {re.escape(mmdata.__version__)}$", meta, re.M)
    assert re.search(r"^License-Expression: MIT$", meta, re.M) and re.search(r"^License-File: LICENSE$", meta, re.M)
    assert "absent from the packages configuration" not in str(built["log"])


def test_sdist_ships_the_whole_test_suite_and_the_recipes(built: dict[str, object]) -> None:
    names = built["sdist_names"]
    assert isinstance(names, list)
    top = names[0].split("/")[0]
    inside = {n[len(top) + 1:] for n in names if n.startswith(top + "/")}
    tests = {p.relative_to(REPO).as_posix() for p in (REPO / "tests").rglob("*.py")
             if "__pycache__" not in p.parts and _tracked_or_new(p)}
    assert tests - inside == set(), "the sdist leaves test files out"
    assert {"conftest.py", "tests/conftest.py", "tests/procs_helpers.py", "LICENSE", "MANIFEST.in",
            "mmdata/shards/_pack.c"} <= inside
    assert {f"recipes/{r}" for r in _recipe_files()} <= inside
    assert not any("__pycache__" in n or n.endswith((".pyc", ".so")) for n in inside)


def _tracked_or_new(p: Path) -> bool:
    res = _run(["git", "check-ignore", "-q", str(p)], REPO)
    return res.returncode != 0  # 1: not ignored


def test_installed_wheel_finds_its_recipes_and_reports_no_foreign_commit(built: dict[str, object]) -> None:
    """The wheel unpacked into a 'site-packages' inside a user's own git repository: the demo's recipe
    and ``-r NAME`` resolve inside the package, and env.json's git_revision is not the user's commit."""
    tmp = built["tmp"]
    assert isinstance(tmp, Path)
    user = tmp / "user_project"
    site = user / ".venv" / "site-packages"
    site.mkdir(parents=True)
    (user / "pyproject.toml").write_text('[project]\nname = "user-project"\n', encoding="utf-8")
    for args in (["init", "-q"], ["-c", "user.email=u@x", "-c", "user.name=u", "commit", "-q", "--allow-empty", "-m", "u"]):
        if _run(["git", *args], user).returncode != 0:
            pytest.skip("git cannot make a repository here")
    with zipfile.ZipFile(built["wheel"]) as zf:  # type: ignore[arg-type]
        zf.extractall(site)
    code = ("import mmdata, mmdata.recipes_path as r, mmdata.demo as d; from mmdata.ablate.runner import environment; "
            "print(mmdata.__file__); print(r.recipes_dir()); print(r.checkout_root()); print(environment()['git_revision']); "
            "print(d.demo_config(quick=True)['design']['mode']); print(len(mmdata.load_recipe('avdigits').steps))")
    res = _run([sys.executable, "-c", code], user, PYTHONPATH=str(site))
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.split("\n")
    assert lines[0] == str(site / "mmdata" / "__init__.py")  # the wheel's copy, not the checkout's
    assert lines[1:6] == [str(site / "mmdata" / "recipes"), "None", "None", "leave_one_out",
                          str(len(mmdata.load_recipe(REPO / "recipes" / "avdigits.yaml").steps))]


def test_one_version() -> None:
    assert importlib.metadata.version("mmdata") == mmdata.__version__
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert not re.search(r"(?m)^version\s*=\s*\"", text)  # the dynamic version: mmdata.__version__ is the one source
    assert re.search(r'(?m)^dynamic = \["version"\]', text)


def test_python_m_mmdata_runs_the_cli(tmp_path: Path) -> None:
    res = _run([sys.executable, "-m", "mmdata", "--version"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert mmdata.__version__ in res.stdout


def test_licence_is_mit() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Copyright (c) 2026 the mmdata authors" in text
    assert re.search(r'(?m)^license-files = \["LICENSE"\]', (REPO / "pyproject.toml").read_text(encoding="utf-8"))
