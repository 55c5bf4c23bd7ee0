"""Embedded datasets, built offline: ``avdigits`` (see :mod:`mmdata.datasets.avdigits`)."""
