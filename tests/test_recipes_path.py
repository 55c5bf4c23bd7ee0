"""The shipped recipes by name (mmdata.recipes_path): ``-r avdigits``, ``mmdata ablate avdigits_loo``, the
demo's recipe, in a checkout and in a wheel's layout; a real file always wins; errors list the names.
Also env.json's git_revision, which only a checkout of mmdata itself reports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata import recipes_path
from mmdata.errors import RecipeError

REPO = Path(__file__).resolve().parents[1]
AUGMENT = sorted(p.stem for p in (REPO / "recipes").glob("*.yaml"))
ABLATION = sorted(p.stem for p in (REPO / "recipes" / "ablations").glob("*.yaml"))


def test_names_are_the_repository_recipes() -> None:
    assert recipes_path.shipped_recipes() == AUGMENT and "avdigits" in AUGMENT
    assert recipes_path.shipped_recipes(ablation=True) == ABLATION and "avdigits_loo" in ABLATION
    assert recipes_path.recipes_dir() == REPO / "recipes"  # a checkout: the top-level folder is the source


@pytest.mark.parametrize("name", ["avdigits", "avdigits.yaml", "recipes/avdigits.yaml", " avdigits "])
def test_find_augmentation_recipe(name: str) -> None:
    assert recipes_path.find_recipe(name) == REPO / "recipes" / "avdigits.yaml"


@pytest.mark.parametrize("name", ["avdigits_loo", "avdigits_loo.yaml", "ablations/avdigits_loo.yaml",
                                  "recipes/ablations/avdigits_loo.yaml"])
def test_find_ablation_recipe(name: str) -> None:
    assert recipes_path.find_recipe(name, ablation=True) == REPO / "recipes" / "ablations" / "avdigits_loo.yaml"


@pytest.mark.parametrize("name", ["", "nope", "../setup", "../pyproject.toml", "/etc/passwd", "avdigits_loo",
                                  "ablations/avdigits_loo", "a\x00b", "avdigits\nx", "recipes/../setup.py"])
def test_find_nothing_else(name: str) -> None:
    assert recipes_path.find_recipe(name) is None  # an augmentation recipe name only; never a path out of the folder


def test_ablation_names_are_apart() -> None:
    assert recipes_path.find_recipe("avdigits", ablation=True) is None


def test_recipe_path_error_lists_the_names() -> None:
    with pytest.raises(RecipeError, match=r"ablation recipe file nope not found; the recipes that ship with mmdata: "
                                          + ", ".join(ABLATION)):
        recipes_path.recipe_path("nope", ablation=True)


def test_a_real_file_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "avdigits.yaml").write_text("image:\n  - {op: hflip, p: 1.0}\n", encoding="utf-8")
    assert recipes_path.resolve("avdigits.yaml") == "avdigits.yaml"
    steps = mmdata.load_recipe("avdigits.yaml").steps
    assert [s.label for s in steps] == ["image.hflip"]  # the user's file, not the shipped avdigits
    assert [s.label for s in mmdata.load_recipe(Path("avdigits.yaml")).steps] == ["image.hflip"]
    # a name with no file of that path: the shipped one
    assert mmdata.load_recipe("avdigits").to_dict() == mmdata.load_recipe(REPO / "recipes" / "avdigits.yaml").to_dict()
    (tmp_path / "folder").mkdir()
    assert recipes_path.resolve("folder", ablation=True) == "folder"  # exists: refused by the loader as it is
    assert recipes_path.resolve("s3://b/x.yaml", ablation=True) == "s3://b/x.yaml"


@pytest.mark.parametrize("source", ["avdigits", "avdigits.yaml", Path("avdigits"), Path("recipes/avdigits.yaml")])
def test_load_recipe_by_shipped_name(source: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no recipes/ here: as a package user
    want = mmdata.load_recipe(REPO / "recipes" / "avdigits.yaml").to_dict()
    assert mmdata.load_recipe(source).to_dict() == want


@pytest.mark.parametrize("source", ["nope", "nope.yaml", Path("nope.yaml"), Path("sub/nope.yaml")])
def test_load_recipe_missing_lists_the_shipped(source: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipeError, match=rf"recipe file {source} not found; the recipes that ship with mmdata: "
                                          rf"{', '.join(AUGMENT)}$"):
        mmdata.load_recipe(source)


def test_load_ablation_by_shipped_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``mmdata.ablate.run("avdigits_loo", ...)`` from Python, as ``mmdata ablate avdigits_loo`` takes it."""
    from mmdata.ablate.design import load_ablation

    monkeypatch.chdir(tmp_path)
    want = load_ablation(REPO / "recipes" / "ablations" / "avdigits_loo.yaml")
    got = load_ablation("avdigits_loo")
    assert got.arms == want.arms and got.seeds == want.seeds and got.dataset == want.dataset
    with pytest.raises(RecipeError, match=r"ablation recipe file nope.yaml not found; the recipes that ship"):
        load_ablation("nope.yaml")


def test_load_recipe_odd_paths_keep_their_errors(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="is a folder, not a recipe file"):
        mmdata.load_recipe(tmp_path)
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(RecipeError, match="not found"):
        mmdata.load_recipe(tmp_path / "dangling")


def _wheel_layout(tmp_path: Path) -> Path:
    """site-packages/mmdata/recipes as the wheel installs it, inside a user's git repository."""
    pkg = tmp_path / "site" / "mmdata"
    (pkg / "recipes" / "ablations").mkdir(parents=True)
    (pkg / "recipes" / "mine.yaml").write_text("image:\n  - {op: hflip}\n", encoding="utf-8")
    (pkg / "recipes" / "ablations" / "loo.yaml").write_text("seeds: 2\n", encoding="utf-8")
    return pkg


def test_wheel_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = _wheel_layout(tmp_path)
    monkeypatch.setattr(recipes_path, "_PACKAGE", pkg)
    assert recipes_path.checkout_root() is None and recipes_path.recipes_dir() == pkg / "recipes"
    assert recipes_path.shipped_recipes() == ["mine"] and recipes_path.shipped_recipes(ablation=True) == ["loo"]
    assert recipes_path.recipe_path("loo", ablation=True) == pkg / "recipes" / "ablations" / "loo.yaml"


def test_broken_install_has_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "site" / "mmdata").mkdir(parents=True)
    (tmp_path / "site" / "recipes").mkdir()  # another distribution's top-level 'recipes' is not ours
    (tmp_path / "site" / "recipes" / "x.yaml").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(recipes_path, "_PACKAGE", tmp_path / "site" / "mmdata")
    assert recipes_path.recipes_dir() is None and recipes_path.shipped_recipes() == []
    with pytest.raises(RecipeError, match=r"^recipe file avdigits not found$"):
        recipes_path.recipe_path("avdigits")


def _git(cwd: Path, *args: str) -> None:
    try:
        subprocess.run(["git", "-c", "user.email=u@x", "-c", "user.name=u", *args], cwd=cwd, check=True,
                       capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("git is not usable here")


def test_git_revision_only_of_an_mmdata_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A virtual environment inside the user's own repository: mmdata installed there records no commit
    (it recorded the user's)."""
    user = tmp_path
    (user / "pyproject.toml").write_text('[project]\nname = "user-project"\n', encoding="utf-8")
    _git(user, "init", "-q")
    _git(user, "commit", "-q", "--allow-empty", "-m", "user")
    pkg = _wheel_layout(user / ".venv" / "lib")
    monkeypatch.setattr(recipes_path, "_PACKAGE", pkg)
    assert recipes_path.git_revision() is None
    # the folder above the package is the user's repository itself (pip install --target .): still not mmdata
    monkeypatch.setattr(recipes_path, "_PACKAGE", user / "mmdata")
    assert recipes_path.checkout_root() is None and recipes_path.git_revision() is None
    # a checkout of mmdata: its commit
    (user / "pyproject.toml").write_text('[project]\nname = "mmdata"\n', encoding="utf-8")
    rev = recipes_path.git_revision()
    assert rev is not None and len(rev) == 40


def test_env_json_git_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.ablate.runner import environment

    monkeypatch.setattr(recipes_path, "checkout_root", lambda: None)  # as in an installed copy
    assert environment()["git_revision"] is None


def test_cli_ablate_takes_a_shipped_name(tmp_path: Path) -> None:
    """``mmdata ablate avdigits_loo`` outside a checkout reads the shipped recipe (its dataset, avdigits, is
    named by the split check that refuses the option before any run); a missing name lists the shipped."""
    cli = [sys.executable, "-m", "mmdata"]
    env = {**os.environ, "COLUMNS": "200"}
    res = subprocess.run([*cli, "ablate", "avdigits_loo", "--out", "o", "--test-split", "nosuch"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 2 and "avdigits has no split 'nosuch'" in res.stderr, res.stderr
    res = subprocess.run([*cli, "ablate", "nope.yaml", "--out", "o"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 2, res.stderr
    assert f"ablation recipe file nope.yaml not found; the recipes that ship with mmdata: {', '.join(ABLATION)}" in res.stderr
    assert not (tmp_path / "o").exists()


def test_cli_help_names_the_shipped_recipes() -> None:
    env = {**os.environ, "COLUMNS": "400", "TERM": "dumb"}
    for command, names in (("augment", AUGMENT), ("ablate", ABLATION)):
        out = subprocess.run([sys.executable, "-m", "mmdata", command, "--help"], capture_output=True, text=True,
                             timeout=120, env=env, check=True).stdout
        flat = " ".join(out.split())
        assert all(n in flat for n in names), (command, names)
        assert "see recipes/" not in flat


# second QA pass (2026-12-05): -r on train / audit-alignment, the fallback's note, cross-kind hints, dangling
# links, help generated from the folder

def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "400", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "mmdata", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize("command", ["train", "audit-alignment"])
def test_train_and_audit_take_dash_r(command: str, tmp_path: Path) -> None:
    """README: ``-r avdigits`` for augment / preview / train / audit-alignment (train had --recipe only)."""
    out = _cli([command, "--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    flat = " ".join(out.stdout.split())
    assert "-r" in flat.split() or " -r " in flat or "-r," in flat
    assert all(n in flat for n in AUGMENT), (command, flat)
    args = ["train", "nodata", "-r", "nope.yaml"] if command == "train" else \
        ["audit-alignment", "nodata", "-r", "nope.yaml", "--model", "m"]
    res = _cli(args, tmp_path)
    assert "No such option" not in res.stderr, res.stderr


def test_fallback_note_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = REPO / "recipes" / "avdigits.yaml"
    assert recipes_path.fallback(Path("recipes/avdigits.yaml")) == shipped
    assert recipes_path.fallback_note("recipes/avdigits.yaml") == (
        f"no file recipes/avdigits.yaml here: using the recipe that ships with mmdata ({shipped})")
    assert recipes_path.fallback("avdigits_loo", ablation=True) == REPO / "recipes" / "ablations" / "avdigits_loo.yaml"
    for none in ("nope", "s3://b/avdigits.yaml", "a\nb"):
        assert recipes_path.fallback(none) is None and recipes_path.fallback_note(none) is None
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "avdigits.yaml").write_text("image: []\n", encoding="utf-8")
    assert recipes_path.fallback("recipes/avdigits.yaml") is None  # a real file: no fallback, no note


def test_fallback_is_logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The library says it at INFO (not a warning per load_recipe call): a program can know."""
    import logging

    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="mmdata.recipes_path"):
        mmdata.load_recipe("recipes/avdigits.yaml")
    assert any("ships with mmdata" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mmdata.recipes_path"):
        mmdata.load_recipe(REPO / "recipes" / "avdigits.yaml")
    assert not caplog.records


def test_cli_notes_the_fallback_once(tmp_path: Path) -> None:
    """A user whose own recipes/ folder lacks the file they typed gets mmdata's copy: said once on stderr."""
    (tmp_path / "recipes").mkdir()
    res = _cli(["augment", "nodata", "out", "-r", "recipes/avdigits.yaml"], tmp_path)
    want = "note: no file recipes/avdigits.yaml here: using the recipe that ships with mmdata ("
    flat = " ".join(res.stderr.split())
    assert flat.count(want) == 1, res.stderr
    res = _cli(["ablate", "avdigits_loo", "--out", "o", "--test-split", "nosuch"], tmp_path)
    flat = " ".join(res.stderr.split())
    assert flat.count("note: no file avdigits_loo here: using the recipe that ships with mmdata (") == 1, res.stderr


@pytest.mark.parametrize("ablation, name, hint", [
    (False, "avdigits_loo", "avdigits_loo is an ablation recipe: mmdata ablate avdigits_loo"),
    (False, "recipes/ablations/avdigits_loo.yaml", "avdigits_loo is an ablation recipe: mmdata ablate avdigits_loo"),
    (True, "avdigits", "avdigits is an augmentation recipe: -r avdigits"),
])
def test_cross_kind_hint(ablation: bool, name: str, hint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert hint in recipes_path.not_found(name, ablation)
    assert "is an ablation" not in recipes_path.not_found("nope") and "is an augmentation" not in recipes_path.not_found("nope", True)
    if not ablation:
        with pytest.raises(RecipeError, match=hint):
            mmdata.load_recipe(name)


def test_cli_cross_kind_hint(tmp_path: Path) -> None:
    res = _cli(["augment", "nodata", "out", "-r", "avdigits_loo"], tmp_path)
    assert res.returncode == 2 and "avdigits_loo is an ablation recipe: mmdata ablate avdigits_loo" in " ".join(res.stderr.split())
    res = _cli(["ablate", "avdigits", "--out", "o"], tmp_path)
    assert res.returncode == 2 and "avdigits is an augmentation recipe" in " ".join(res.stderr.split()), res.stderr


@pytest.mark.parametrize("source", ["dropout", Path("dropout"), "dropout.yaml"])
def test_dangling_link_is_refused_everywhere(source: str | Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dangling link is a file that exists (os.path.lexists): never the shipped recipe of that name."""
    from mmdata.ablate.design import load_ablation

    monkeypatch.chdir(tmp_path)
    os.symlink("gone.yaml", os.fspath(source))
    link = rf"{os.fspath(source)} is a symbolic link to gone\.yaml, which does not exist"
    with pytest.raises(RecipeError, match=link):
        mmdata.load_recipe(source)
    with pytest.raises(RecipeError, match=link):
        load_ablation(source)
    assert recipes_path.fallback(source) is None


def test_help_names_come_from_the_folder(tmp_path: Path) -> None:
    """--help lists what the folder holds (no hard-coded list to forget when a recipe is added)."""
    text = (REPO / "cli" / "common.py").read_text(encoding="utf-8") + (REPO / "cli" / "ablate.py").read_text(encoding="utf-8")
    assert "shipped_recipes(" in text and "audio_speech, dropout" not in text and "avdigits_loo, cutout_sweep" not in text
