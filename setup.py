"""Build hook for the optional C accelerator (metadata lives in pyproject.toml).

``mmdata.shards._pack`` speeds up sharding many small files; ``optional=True`` means a machine without
a C compiler still installs mmdata, which then uses the pure-Python code that writes the same bytes.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("mmdata.shards._pack", ["mmdata/shards/_pack.c"], optional=True,
                             extra_compile_args=["-O2"])])
