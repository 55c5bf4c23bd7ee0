"""QA27 D5: a README.md written by write_hub_card stayed after a reshard (another licence, other splits) — the Hub
would publish the old licence and load one split — and verify said ok. verify now compares it with the card the
dataset gives now; a README.md of one's own (without the mark) is not looked at."""

from __future__ import annotations

from pathlib import Path

import mmdata
from mmdata.interop.hf import HUB_CARD_MARK, hub_card, write_hub_card
from mmdata.shards.verify import verify
from mmdata.testing import make_class_folders


def test_a_hub_card_left_from_before_a_reshard_fails_verify(tmp_path: Path) -> None:
    raw = make_class_folders(tmp_path / "raw", per_class=4)
    ds = tmp_path / "ds"
    mmdata.shard(raw, ds, license="CC-BY-4.0", progress=False)
    write_hub_card(ds)
    assert HUB_CARD_MARK in (ds / "README.md").read_text() and verify(ds)["ok"]
    mmdata.shard(raw, ds, license="proprietary", split={"train": 0.5, "val": 0.5}, rewrite=True, progress=False)
    assert (ds / "README.md").is_file()  # the reshard leaves files of one's own alone
    rep = verify(ds)
    (p,) = [p for p in rep["problems"] if p["shard"] == "README.md"]
    assert not rep["ok"] and "stale" in p["problem"] and "write_hub_card" in p["problem"]
    assert p["found"] == "license: cc-by-4.0" and p["expected"] == "license: other"  # the first line that differs
    write_hub_card(ds)  # written again: clean
    assert verify(ds)["ok"] and (ds / "README.md").read_text() == hub_card(ds)


def test_a_readme_of_ones_own_is_not_checked(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    mmdata.shard(make_class_folders(tmp_path / "raw", per_class=2), ds, progress=False)
    (ds / "README.md").write_text("# my notes\n", encoding="utf-8")
    assert verify(ds)["ok"]
