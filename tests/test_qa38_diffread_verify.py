"""QA38 F #4: ``verify --deep`` (minutes at 60,000 samples) shows progress over the shards as the other long
commands do (plain lines with MMDATA_PROGRESS=plain, none with off); a shallow verify stays quiet."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_class_folders


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("qa38_verify")
    mmdata.shard(make_class_folders(t / "raw", per_class=3), t / "ds", maxcount=2, progress=False)
    return t / "ds"


def test_progress_follows_the_switch_and_depth(ds: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.shards.verify import verify, verify_shards

    monkeypatch.setenv("MMDATA_PROGRESS", "plain")
    shards = len(list(ds.glob("*.tar")))
    assert shards > 1 and verify(ds, deep=True)["ok"]  # what `mmdata verify --deep` calls: progress by default
    err = capsys.readouterr().err
    assert f"verifying shards (decoding every member): {shards}/{shards} shards (100%)" in err and "\r" not in err
    assert verify(ds)["ok"]  # the shallow check is quick: no display
    assert verify(ds, deep=True, progress=False)["ok"]
    assert "verifying shards" not in capsys.readouterr().err
    tars = sorted(str(p) for p in ds.glob("*.tar"))
    assert verify_shards(tars[:2], deep=True)["ok"]
    assert "verifying shards (decoding every member): 2/2 shards (100%)" in capsys.readouterr().err
    monkeypatch.setenv("MMDATA_PROGRESS", "off")
    assert verify(ds, deep=True)["ok"]
    assert "verifying shards" not in capsys.readouterr().err
