"""Fixtures for every test, the docstring examples in mmdata/ and cli/ among them (tests/conftest.py
holds those of the test folder)."""

from __future__ import annotations

import tempfile

import pytest


@pytest.fixture(autouse=True)
def _doctest_temp_folders(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A docstring example makes its folders with ``tempfile.mkdtemp()`` (the line a reader would
    copy); under the suite they go into the example's own ``tmp_path``, which pytest removes, instead
    of being left in /tmp."""
    if isinstance(request.node, pytest.DoctestItem):
        monkeypatch.setattr(tempfile, "tempdir", str(request.getfixturevalue("tmp_path")))
