"""Build hook for the optional C accelerator (metadata lives in pyproject.toml).

``mmdata.shards._pack`` speeds up sharding many small files (batched reads, tar headers, media checks);
``optional=True`` means a machine without a C compiler still installs mmdata, which then uses the
pure-Python code that writes the same bytes. It is built against the limited API (one ``abi3`` binary
for CPython >= 3.10), except on free-threaded interpreters, which have no limited API.
"""

import sysconfig

from setuptools import Extension, find_packages, setup

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
LIMITED = [] if FREE_THREADED else [("Py_LIMITED_API", "0x030A0000")]

# cli/ installs as mmdata.cli (package-dir mapping): a top-level "cli" package could clash in site-packages.
# recipes/ (YAML only, the source of truth in the repository) installs as mmdata/recipes: mmdata demo and
# `-r NAME` read them in an installed copy (mmdata.recipes_path); mmdata/datasets/assets holds data files.
# Both are data folders without an __init__.py, listed by name so setuptools ships them as packages.
DATA_PACKAGES = ["mmdata.datasets.assets", "mmdata.recipes", "mmdata.recipes.ablations"]
setup(packages=[*find_packages(include=["mmdata", "mmdata.*"]), "mmdata.cli", *DATA_PACKAGES],
      package_dir={"mmdata.cli": "cli", "mmdata.recipes": "recipes"},
      ext_modules=[Extension("mmdata.shards._pack", ["mmdata/shards/_pack.c"], optional=True,
                             py_limited_api=not FREE_THREADED, define_macros=LIMITED,
                             extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"])],
      options={} if FREE_THREADED else {"bdist_wheel": {"py_limited_api": "cp310"}})
