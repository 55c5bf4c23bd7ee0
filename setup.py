"""Build hook for the optional C accelerator (metadata lives in pyproject.toml).

``mmdata.shards._pack`` speeds up sharding many small files; ``optional=True`` means a machine without
a C compiler still installs mmdata, which then uses the pure-Python code that writes the same bytes.
"""

from setuptools import Extension, find_packages, setup

# cli/ installs as mmdata.cli (package-dir mapping): a top-level "cli" package could clash in site-packages.
setup(packages=[*find_packages(include=["mmdata", "mmdata.*"]), "mmdata.cli"],
      package_dir={"mmdata.cli": "cli"},
      ext_modules=[Extension("mmdata.shards._pack", ["mmdata/shards/_pack.c"], optional=True,
                             extra_compile_args=["-O2"])])
