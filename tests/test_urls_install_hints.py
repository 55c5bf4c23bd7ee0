"""A URL that needs a package which is not installed names mmdata's extra for it (``pip install
'mmdata[s3]'``), not a bare package: the extra holds the versions mmdata is tested with."""

from __future__ import annotations

import sys

import pytest

from mmdata.errors import MMDataError
from mmdata.urls import filesystem


def _missing_s3fs(url: str, **kw: object) -> object:
    raise ImportError("Install s3fs to access S3")  # fsspec's own message when s3fs is not installed


@pytest.mark.parametrize("url", ["s3://bucket/ds", "simplecache::s3://bucket/ds"])
def test_missing_s3fs_names_the_extra(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fsspec_core = pytest.importorskip("fsspec.core")
    monkeypatch.setattr(fsspec_core, "url_to_fs", _missing_s3fs)
    with pytest.raises(MMDataError) as info:
        filesystem(url)
    assert str(info.value).startswith(f"{url}: fsspec cannot open ")
    assert "Install s3fs to access S3 (pip install -e '.[s3]' in a clone of mmdata, or pip install \"<wheel>[s3]\"" in str(info.value)


def test_other_stores_keep_fsspecs_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    fsspec_core = pytest.importorskip("fsspec.core")

    def missing(url: str, **kw: object) -> object:
        raise ImportError("Install gcsfs to access Google Storage")

    monkeypatch.setattr(fsspec_core, "url_to_fs", missing)
    with pytest.raises(MMDataError, match=r"^gs://b/x: fsspec cannot open gs:// URLs here: Install gcsfs to access Google Storage$"):
        filesystem("gs://b/x")


def test_missing_fsspec_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec raises ImportError
    monkeypatch.setitem(sys.modules, "fsspec.core", None)
    with pytest.raises(MMDataError, match=r"^s3://b/x: reading URLs needs fsspec: pip install -e '\.\[s3\]' in a clone of mmdata"):
        filesystem("s3://b/x")
