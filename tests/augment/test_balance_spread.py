"""QA42 longtail: balance on a long tail. F2: ``over`` handed a sample's copies out in a row (whole
batches of one image); F1: with ``fraction`` the rates came from the counts before it; F3: ``under`` with
a one-sample class silently kept a few percent of the split."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import pytest

import mmdata
from mmdata.augment.balance import BalancePlan
from mmdata.testing.media import image_bytes

COUNTS = {"big": 90, "mid": 9, "one": 1}


@pytest.fixture(scope="module")
def tail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("balance-tail")
    for c, (name, n) in enumerate(COUNTS.items()):
        (root / "raw" / name).mkdir(parents=True)
        for i in range(n):
            (root / "raw" / name / f"{i:03d}.png").write_bytes(image_bytes(c * 100 + i, (8, 8)))
    mmdata.shard(root / "raw", root / "ds", split={"train": 1.0}, maxcount=40, progress=False)
    return root / "ds"


def _rows(ds: Path, balance: dict, **kw: object) -> list[list[str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = mmdata.loader(ds, 16, seed=0, balance=balance, **kw)  # type: ignore[arg-type]
    return [list(b.keys) for b in loader]


def test_over_spreads_a_samples_copies_over_the_epoch(tail: Path) -> None:
    batches = _rows(tail, {"by": "label", "mode": "over"})
    rows = [k for b in batches for k in b]
    one = [k for k in rows if k.startswith("one")]
    assert len(one) == 90  # the multiset: 90 rows of the one-sample class, as many as the big class
    # before: 5 whole batches of that one sample; now each batch holds about the class mix (~1/3 of it)
    most = max(Counter(k.split("#r")[0] for k in b).most_common(1)[0][1] for b in batches)
    assert most <= 10, [Counter(k.split("#r")[0] for k in b).most_common(1) for b in batches]
    assert all(len({k.split("/")[0] for k in b}) >= 2 for b in batches[:-1])


def test_spread_keeps_the_rows_and_is_the_same_for_any_workers(tail: Path) -> None:
    plain = _rows(tail, {"by": "label", "mode": "over"})
    workers = _rows(tail, {"by": "label", "mode": "over"}, num_workers=2)
    assert sorted(k for b in plain for k in b) == sorted(k for b in workers for k in b)
    assert _rows(tail, {"by": "label", "mode": "over"}) == plain  # deterministic per (seed, epoch)
    rf = _rows(tail, {"by": "label", "mode": "repeat_factor", "threshold": 0.3})
    assert max(Counter(k.split("#r")[0] for k in b).most_common(1)[0][1] for b in rf) <= 10


def test_over_rates_come_from_what_fraction_keeps(tail: Path) -> None:
    keys = {k: str(i) for i, (name, n) in enumerate(COUNTS.items()) for k in (f"{name}/{j}" for j in range(n))}
    cfg = {"by": "label", "mode": "over", "fraction": {"big": 0.1}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 'one' is repeated ~9x, not 90x: no note
        plan = BalancePlan(keys, cfg, 0, label_names=list(COUNTS))
    with pytest.warns(UserWarning, match="'one' has 1 training sample, each repeated ~90x per epoch"):
        BalancePlan(keys, {"by": "label", "mode": "over"}, 0, label_names=list(COUNTS))
    kept = plan.kept_counts
    assert kept["1"] == 9 and kept["2"] == 1 and 3 <= kept["0"] <= 20
    top = max(kept.values())
    # every kept class to the largest kept class (before: to 90, so 'big' came 18x rarer than the rest)
    assert {g: round(kept[g] * plan.rate[g], 6) for g in kept} == dict.fromkeys(kept, top)
    rows = Counter(plan.groups[k] for k in keys for _ in range(plan.repeats(k, 0)))
    assert max(rows.values()) <= 2 * min(rows.values())


def test_under_rates_come_from_what_fraction_keeps_and_an_emptied_class_is_named() -> None:
    keys = {f"{c}{j}": g for c, g, n in (("a", "0", 40), ("b", "1", 20), ("c", "2", 1)) for j in range(n)}
    with pytest.warns(UserWarning) as caught:
        plan = BalancePlan(keys, {"by": "label", "mode": "under", "fraction": {"c": 0.0, "a": 0.25}}, 0,
                           label_names=["a", "b", "c"])
    said = [str(w.message) for w in caught]
    assert any("'c' keeps no training sample" in m for m in said), said
    kept = plan.kept_counts
    assert "2" not in kept
    low = min(kept.values())  # the target is the smallest *kept* class, not the emptied 'c' (rate 0 before)
    assert {g: round(kept[g] * plan.rate[g], 6) for g in kept} == dict.fromkeys(kept, low)


def test_under_with_a_tiny_class_warns_once_naming_it(tail: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loader = mmdata.loader(tail, 16, seed=0, balance={"by": "label", "mode": "under"}, num_workers=2)
        for _ in range(2):
            list(loader)
    said = [str(w.message) for w in caught if "balance under" in str(w.message)]
    assert said == ["balance under: the smallest class 'one' has 1 training sample, so each epoch keeps ~3 of 100 "
                    "samples (3%); use mode over or repeat_factor, or leave that class out"]


def test_no_note_for_a_mild_balance() -> None:
    keys = {f"{c}{j}": g for c, g, n in (("a", "0", 10), ("b", "1", 6)) for j in range(n)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for mode in ("under", "over", "repeat_factor"):
            BalancePlan(keys, {"by": "label", "mode": mode, **({"threshold": 0.5} if mode == "repeat_factor" else {})}, 0)


def test_a_plan_that_cannot_repeat_holds_no_block() -> None:
    # QA42 review: every balanced stream held 256 decoded samples per worker, also `under` and `fraction` alone
    from mmdata.augment.balance import SPREAD, Balanced, BalancePlan

    groups = {"a": "0", "b": "0", "c": "1"}
    for cfg in ({"by": "label", "mode": "under"}, {"by": "label", "fraction": 0.5}):
        assert Balanced([], BalancePlan(groups, cfg, 0)).spread == 1, cfg
    assert Balanced([], BalancePlan(groups, {"by": "label", "mode": "over"}, 0)).spread == SPREAD
