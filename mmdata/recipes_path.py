"""The recipes that ship with mmdata: where they are, their names, and the lookup of one by name.

The repository's top-level ``recipes/`` folder is their source: a wheel installs it as ``mmdata/recipes/``
(setup.py maps the package ``mmdata.recipes`` to it), while a checkout or an editable install finds it
beside the ``mmdata`` package. Augmentation recipes lie in the folder itself (``avdigits``), ablation
recipes in its ``ablations/`` folder (``avdigits_loo``). A recipe file given by path always wins: a name
is looked up here only when no file of that path exists (``-r avdigits``, ``mmdata ablate avdigits_loo``); a
dangling symbolic link is a file that exists (refused, naming it). A lookup that falls back to a shipped recipe
is logged at INFO on this module's logger (:func:`fallback` says it beforehand; the CLI prints it once).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from pathlib import Path, PurePosixPath

from mmdata.errors import RecipeError

ABLATIONS = "ablations"
_PACKAGE = Path(__file__).resolve().parent  # the mmdata package's folder (tests point it elsewhere)
log = logging.getLogger(__name__)


def checkout_root() -> Path | None:
    """The folder of the mmdata source tree this package runs from (a checkout, an editable install), or
    None (an installed wheel: the folder above the package is site-packages, or a user's own project).

    Example:
        >>> root = checkout_root()
        >>> root is None or (root / "pyproject.toml").is_file()
        True
    """
    root = _PACKAGE.parent
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not re.search(r'(?m)^name\s*=\s*["\']mmdata["\']\s*$', text) or _PACKAGE.name != "mmdata":
        return None
    return root


def git_revision() -> str | None:
    """The git commit of the mmdata checkout this package runs from, or None: an installed copy has none
    (a virtual environment inside a user's own repository must not report the user's commit as mmdata's).

    Example:
        >>> rev = git_revision()
        >>> rev is None or len(rev) == 40
        True
    """
    root = checkout_root()
    if root is None or not (root / ".git").exists():
        return None
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=root).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev or None


def git_dirty() -> bool | None:
    """Whether the mmdata package's tracked files in its checkout differ from its git commit (an edited
    trainer read as the clean commit); None without a checkout (an installed copy) or git. The status runs
    with ``--no-optional-locks``: a refreshing status takes ``.git/index.lock`` and can fail a concurrent
    ``git commit`` (QA27). The card's ``code`` and an ablation's ``env.json`` both record it.

    Example:
        >>> git_dirty() in (None, True, False)
        True
    """
    root = checkout_root()
    if root is None or not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no", "--",
                               "mmdata"], capture_output=True, text=True, timeout=5, cwd=root)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(done.stdout.strip()) if done.returncode == 0 else None


def recipes_dir() -> Path | None:
    """The folder of the shipped recipes: ``mmdata/recipes`` in an installed wheel, the source tree's
    ``recipes/`` in a checkout or an editable install; None when neither is there (a broken install).

    Example:
        >>> (recipes_dir() / "ablations" / "avdigits_loo.yaml").is_file()
        True
    """
    inside = _PACKAGE / "recipes"
    if inside.is_dir():
        return inside
    root = checkout_root()
    if root is not None and (root / "recipes").is_dir():
        return root / "recipes"
    return None


def shipped_recipes(ablation: bool = False) -> list[str]:
    """The names of the shipped augmentation recipes (``ablation=True``: the ablation recipes), sorted.

    Example:
        >>> "avdigits_loo" in shipped_recipes(ablation=True)
        True
    """
    folder = recipes_dir()
    if folder is None:
        return []
    folder = folder / ABLATIONS if ablation else folder
    try:
        return sorted(p.stem for p in folder.glob("*.yaml") if p.is_file())
    except OSError:
        return []


def find_recipe(name: str | os.PathLike[str], ablation: bool = False) -> Path | None:
    """The shipped recipe ``name`` names, or None. ``name``: a recipe's name with or without ``.yaml``,
    also as the repository spells it (``recipes/avdigits.yaml``, ``recipes/ablations/avdigits_loo.yaml``).

    Example:
        >>> find_recipe("recipes/avdigits.yaml").name, find_recipe("avdigits_loo", ablation=True).name
        ('avdigits.yaml', 'avdigits_loo.yaml')
        >>> find_recipe("../setup") is None
        True
    """
    text = os.fspath(name).strip()
    if not text or any(c in text for c in "\n\r\x00"):
        return None
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if parts[:1] == ("recipes",):
        parts = parts[1:]
    if ablation and parts[:1] == (ABLATIONS,):
        parts = parts[1:]
    if len(parts) != 1:
        return None
    stem = parts[0][:-5] if parts[0].endswith(".yaml") else parts[0][:-4] if parts[0].endswith(".yml") else parts[0]
    if stem not in shipped_recipes(ablation):  # only a listed name: never a path out of the folder
        return None
    folder = recipes_dir()
    assert folder is not None  # shipped_recipes found the name there
    return (folder / ABLATIONS if ablation else folder) / f"{stem}.yaml"


def not_found(source: str | os.PathLike[str], ablation: bool = False) -> str:
    """The error for a recipe file that does not exist and names no shipped recipe; it lists them, and says
    when the name is a shipped recipe of the other kind (``-r avdigits_loo``: an ablation recipe)."""
    label = "ablation recipe" if ablation else "recipe"
    names = shipped_recipes(ablation)
    other = find_recipe(source, not ablation)
    hint = ""
    if other is not None:
        hint = (f"; {other.stem} is an augmentation recipe: -r {other.stem} (mmdata augment / preview / train / "
                f"audit-alignment)" if ablation else f"; {other.stem} is an ablation recipe: mmdata ablate {other.stem}")
    shipped = f"; the recipes that ship with mmdata: {', '.join(names)}" if names else ""
    return f"{label} file {os.fspath(source)} not found{hint}{shipped}"


def dangling(source: str | os.PathLike[str], ablation: bool = False) -> str | None:
    """The error for ``source`` when it is a symbolic link to nothing, else None. Such a link is a file
    that exists (:func:`os.path.lexists`): it is refused, never taken for a shipped recipe's name.

    Example:
        >>> dangling("recipes") is None
        True
    """
    try:
        text = os.fspath(source)
        if "\n" in text or not os.path.islink(text) or os.path.exists(text):
            return None
        target = os.readlink(text)
    except (OSError, ValueError, TypeError):
        return None
    label = "ablation recipe" if ablation else "recipe"
    return f"{label} file {text} not found: {text} is a symbolic link to {target}, which does not exist"


def fallback(source: str | os.PathLike[str], ablation: bool = False) -> Path | None:
    """The shipped recipe a recipe argument falls back to: its file when nothing of path ``source`` exists and
    it names a shipped recipe, else None (a real file or link, a URL, an unknown name).

    Example:
        >>> fallback("avdigits").name, fallback("setup.py")  # setup.py: a real file
        ('avdigits.yaml', None)
    """
    try:
        text = os.fspath(source)
        if "://" in text or any(c in text for c in "\n\r\x00") or os.path.lexists(text):
            return None
    except (OSError, ValueError, TypeError):
        return None
    return find_recipe(text, ablation)


def fallback_note(source: str | os.PathLike[str], ablation: bool = False) -> str | None:
    """The line that tells a user a recipe argument was taken for a shipped recipe's name (a mistyped path of
    their own ``recipes/`` folder silently got mmdata's copy), or None when it names a file or nothing.

    Example:
        >>> fallback_note("nope.yaml") is None
        True
    """
    found = fallback(source, ablation)
    return None if found is None else fallback_line(source, found)


def fallback_line(source: str | os.PathLike[str], found: Path) -> str:
    """What a fallback from recipe argument ``source`` to the shipped recipe ``found`` is told as."""
    return f"no file {os.fspath(source)} here: using the recipe that ships with mmdata ({found})"


def logged(source: str | os.PathLike[str], found: Path) -> Path:
    """``found``, the shipped recipe ``source`` fell back to, after an INFO record saying so."""
    log.info("%s", fallback_line(source, found))
    return found


def recipe_path(name: str | os.PathLike[str], ablation: bool = False) -> Path:
    """The file of the shipped recipe ``name`` (``ablation=True``: an ablation recipe).

    Raises:
        RecipeError: no shipped recipe has that name (the message lists those that do).

    Example:
        >>> recipe_path("avdigits_loo", ablation=True).name
        'avdigits_loo.yaml'
    """
    found = find_recipe(name, ablation)
    if found is None:
        raise RecipeError(not_found(name, ablation))
    return found


def resolve(source: str | os.PathLike[str], ablation: bool = False) -> str | os.PathLike[str]:
    """``source`` itself when a file (or anything else) of that path exists or it is a URL, else the shipped
    recipe it names; neither: :class:`RecipeError` listing the shipped recipes.

    Example:
        >>> Path(resolve("avdigits_loo.yaml", ablation=True)).parent.name
        'ablations'
    """
    text = os.fspath(source)
    bad = dangling(text, ablation)
    if bad is not None:
        raise RecipeError(bad)
    if "://" in text or "\x00" in text or os.path.lexists(text):
        return source
    found = find_recipe(text, ablation)
    if found is None:
        raise RecipeError(not_found(text, ablation))
    return logged(text, found)
