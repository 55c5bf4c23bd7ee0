"""Duration-bucketed batching (``mmdata.loader(max_duration=...)``, mmdata.augment.bucketing).

Real FLAC clips of 0.5 s to 6 s (and one of 9 s) sharded with mmdata.shard, read by real DataLoader
workers: every sample once per epoch, batches within the budget, less padding than a fixed batch size,
the same batches on two runs, an exact mid-epoch resume, and the refusals.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmdata
from mmdata.augment.bucketing import bucket_edges, bucket_of, check_bucketing, form_batches, padded_cost
from mmdata.errors import MMDataError
from mmdata.testing.media import audio_bytes, text_for

RATE = 8000
#: 40 clips: mostly short, some long, one (index 7) longer than the budget used below
DURATIONS = [0.5, 0.6, 3.0, 0.7, 2.5, 6.0, 0.5, 9.0, 5.5, 0.8, 2.0, 4.0, 0.6, 3.5, 0.5, 1.2, 5.0, 0.9, 2.2, 0.5,
             1.5, 0.7, 4.5, 0.6, 1.1, 3.2, 0.5, 0.8, 2.8, 0.9, 0.6, 5.8, 1.0, 0.5, 2.4, 0.7, 1.8, 0.6, 3.9, 0.5]
BUDGET = 8.0
KEYS = [f"{i:06d}" for i in range(len(DURATIONS))]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    raw = root / "raw"
    raw.mkdir()
    for i, d in enumerate(DURATIONS):
        (raw / f"{i:06d}.flac").write_bytes(audio_bytes(i, d, RATE))
        (raw / f"{i:06d}.cls").write_text(str(i % 3), encoding="utf-8")
    mmdata.shard(raw, root / "ds", maxcount=8, progress=False)  # 5 shards
    return root / "ds"


def _batches(loader: mmdata.Loader) -> list[tuple[list[str], list[int], int]]:
    """(keys, clip frames, padded frames per row) of each batch of one pass."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in loader:
            out.append((list(b.keys), [int(n) for n in b.lengths["audio"].tolist()], int(b["audio"].shape[-1])))
    return out


def _bucketed(ds: Path, **kw: object) -> mmdata.Loader:
    opts = {"num_workers": 2, "max_duration": BUDGET, "buckets": 4, "seed": 3, **kw}
    return mmdata.loader(ds, opts.pop("batch_size", None), **opts)  # type: ignore[arg-type]


# -- the pure pieces ---------------------------------------------------------------------------------
def test_edges_are_quantiles_and_assignment_follows_them() -> None:
    assert bucket_edges(range(1, 9), 4) == [3.0, 5.0, 7.0]
    assert bucket_edges([1.0] * 10, 4) == []  # one value: one bucket
    assert bucket_edges([], 4) == []
    assert [bucket_of(d, [3.0, 5.0]) for d in (0.1, 2.99, 3.0, 5.0, 100)] == [0, 0, 1, 2, 2]


def test_form_batches_keeps_the_budget_sends_long_items_alone_and_the_tails() -> None:
    pairs = [(f"k{i}", d) for i, d in enumerate(DURATIONS)]
    out = list(form_batches(pairs, bucket_edges(DURATIONS, 4), BUDGET, buffer=100))
    assert sorted(k for b, _ in out for k in b) == sorted(k for k, _ in pairs)  # each once, tails included
    durs = dict(pairs)
    for b, over in out:
        if over:
            assert b == ["k7"] and durs["k7"] > BUDGET
        else:
            assert padded_cost([durs[k] for k in b]) <= BUDGET
    dropped = list(form_batches(pairs, bucket_edges(DURATIONS, 4), BUDGET, buffer=100, drop_last=True))
    assert len(dropped) < len(out) and ["k7"] in [b for b, _ in dropped]  # drop_last drops tails, not long clips


def test_form_batches_caps_samples_and_holds_at_most_buffer() -> None:
    pairs = [(i, 0.5) for i in range(50)]
    assert [len(b) for b, _ in form_batches(pairs, [], 100.0, max_samples=8, buffer=100)] == [8] * 6 + [2]
    held = [len(b) for b, _ in form_batches(pairs, [], 1000.0, buffer=10)]
    assert max(held) <= 11 and sum(held) == 50


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 40.0, allow_nan=False), max_size=80), st.integers(1, 6), st.floats(0.5, 30.0),
       st.one_of(st.none(), st.integers(1, 9)), st.integers(6, 40), st.booleans())
def test_form_batches_invariants(durs: list[float], buckets: int, budget: float, cap: int | None, buffer: int,
                                 learn: bool) -> None:
    """Every item once (in one batch), each batch within the budget and the cap or a lone long item,
    never more than ``buffer`` + 1 items held."""
    pairs = list(enumerate(durs))
    edges = None if learn else bucket_edges(durs, buckets)
    out = list(form_batches(pairs, edges, budget, max_samples=cap, buffer=max(buffer, buckets), buckets=buckets))
    assert sorted(i for b, _ in out for i in b) == list(range(len(durs)))
    for b, over in out:
        if over:
            assert len(b) == 1 and durs[b[0]] > budget
        else:
            assert padded_cost([durs[i] for i in b]) <= budget and (cap is None or len(b) <= cap)
            assert len(b) <= max(buffer, buckets) + 1
    assert out == list(form_batches(pairs, edges, budget, max_samples=cap, buffer=max(buffer, buckets), buckets=buckets))


def test_edges_learned_from_the_stream_without_an_index() -> None:
    pairs = [(f"k{i}", d) for i, d in enumerate(DURATIONS)]
    a = list(form_batches(pairs, None, BUDGET, buffer=16, buckets=4))
    assert sorted(k for b, _ in a for k in b) == sorted(k for k, _ in pairs)
    assert a == list(form_batches(pairs, None, BUDGET, buffer=16, buckets=4))


@pytest.mark.parametrize("kw,name", [
    ({"max_duration": -1}, "max_duration"), ({"max_duration": 0}, "max_duration"),
    ({"max_duration": "10"}, "max_duration"), ({"max_duration": float("inf")}, "max_duration"),
    ({"max_duration": True}, "max_duration"),
    ({"max_duration": 5, "buckets": 0}, "buckets"), ({"max_duration": 5, "buckets": 2.5}, "buckets"),
    ({"max_duration": 5, "buckets": -3}, "buckets"),
    ({"max_duration": 5, "bucket_buffer": 0}, "bucket_buffer"), ({"max_duration": 5, "bucket_buffer": "8"}, "bucket_buffer"),
    ({"max_duration": 5, "buckets": 8, "bucket_buffer": 4}, "bucket_buffer"),
    ({"max_duration": 5, "batch_size": 0}, "batch_size"), ({"max_duration": 5, "batch_size": 2.0}, "batch_size"),
    ({"buckets": 4}, "max_duration"), ({"bucket_buffer": 64}, "max_duration"),
])
def test_bad_arguments_name_the_keyword(clips: Path, kw: dict, name: str) -> None:
    batch_size = kw.pop("batch_size", None if "max_duration" in kw else 4)
    with pytest.raises(MMDataError, match=name):
        mmdata.loader(clips, batch_size, **kw)


def test_check_bucketing_defaults() -> None:
    assert check_bucketing(20, 4, None, None) == (20.0, 4, 128)
    assert check_bucketing(2.5, 1, 1, 16) == (2.5, 1, 1)


def test_without_max_duration_batch_size_is_still_required(clips: Path) -> None:
    for call in (lambda: mmdata.loader(clips, None), lambda: mmdata.loader(clips)):
        with pytest.raises(MMDataError, match="batch_size: samples per batch .* or max_duration"):
            call()
    assert mmdata.loader(clips, max_duration=BUDGET).batch_size is None  # batch_size left out: no cap


# -- the loader, with DataLoader workers ----------------------------------------------------------------
def test_each_sample_once_per_epoch_within_the_budget(clips: Path) -> None:
    loader = _bucketed(clips)
    for epoch in range(2):  # a second pass is the next epoch: every sample once again
        seen: list[str] = []
        for keys, frames, padded in _batches(loader):
            seen += keys
            cost = padded * len(keys) / RATE
            assert cost <= BUDGET or (len(keys) == 1 and frames[0] / RATE > BUDGET), (epoch, keys, cost)
        assert sorted(seen) == KEYS, epoch
        assert loader.over_budget == 1


def test_the_padding_drops_against_a_fixed_batch_size(clips: Path) -> None:
    def padding(batches: list[tuple[list[str], list[int], int]]) -> float:
        padded = sum(p * len(f) for _, f, p in batches)
        return 1 - sum(sum(f) for _, f, _ in batches) / padded

    bucketed = _batches(_bucketed(clips))
    mean = len(DURATIONS) // len(bucketed) or 1  # a fixed batch of the same mean size
    fixed = _batches(mmdata.loader(clips, mean, num_workers=2, seed=3))
    assert padding(bucketed) < 0.5 * padding(fixed), (padding(bucketed), padding(fixed), mean)


def test_the_same_batches_on_two_runs_and_another_order_next_epoch(clips: Path) -> None:
    a, b = _batches(_bucketed(clips)), _batches(_bucketed(clips))
    assert a == b
    nxt = _bucketed(clips, epoch=1)
    assert [k for k, _, _ in _batches(nxt)] != [k for k, _, _ in a]


def test_a_mid_epoch_state_resumes_exactly(clips: Path) -> None:
    loader = _bucketed(clips, batch_size=4)
    full, states = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in loader:
            full.append(list(b.keys))
            states.append(loader.state_dict())
    assert "bucket_batches" in states[0]
    for k in (1, len(full) // 2, len(full) - 1):
        again = _bucketed(clips, batch_size=4)
        again.load_state_dict(states[k - 1])
        rest = [keys for keys, _, _ in _batches(again)]
        assert rest == full[k:], k
        assert sorted(x for b in full[:k] + rest for x in b) == KEYS
    last = _bucketed(clips, batch_size=4)
    last.load_state_dict(states[-1])  # saved after the last batch, the pass still open: nothing is left
    assert _batches(last) == []
    end = _bucketed(clips, batch_size=4)
    end.load_state_dict(loader.state_dict())  # saved once the pass ended: the next epoch's start
    again = [keys for keys, _, _ in _batches(end)]
    assert sorted(x for keys in again for x in keys) == KEYS and end.epoch == 2  # epoch 1 ended: next is 2


def test_a_state_of_other_batching_or_workers_is_refused(clips: Path) -> None:
    loader = _bucketed(clips)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    del it
    with pytest.raises(MMDataError, match="max_duration"):
        _bucketed(clips, max_duration=4.0).load_state_dict(state)
    with pytest.raises(MMDataError, match="num_workers"):
        _bucketed(clips, num_workers=1).load_state_dict(state)
    with pytest.raises(MMDataError, match="max_duration"):
        mmdata.loader(clips, 4, num_workers=2, seed=3).load_state_dict(state)
    fixed = mmdata.loader(clips, 4, num_workers=2, seed=3)
    it = iter(fixed)
    next(it)
    fixed_state = fixed.state_dict()
    del it
    with pytest.raises(MMDataError, match="without max_duration"):
        _bucketed(clips).load_state_dict(fixed_state)


def test_a_clip_over_the_budget_comes_alone_warned_once(clips: Path) -> None:
    loader = _bucketed(clips, max_duration=5.0)  # 9.0, 5.5, 5.8, 6.0 s are over it
    with pytest.warns(UserWarning, match="longer than max_duration=5") as caught:
        batches = [list(b.keys) for b in loader]
    assert len([w for w in caught if "longer than max_duration" in str(w.message)]) == 1
    over = {KEYS[i] for i, d in enumerate(DURATIONS) if d > 5.0}
    assert loader.over_budget == len(over)
    assert all([k] in batches for k in over)
    assert sorted(k for b in batches for k in b) == KEYS


def test_drop_last_drops_the_bucket_tails_only(clips: Path) -> None:
    full = [k for keys, _, _ in _batches(_bucketed(clips, batch_size=3)) for k in keys]
    some = [k for keys, _, _ in _batches(_bucketed(clips, batch_size=3, drop_last=True)) for k in keys]
    assert len(set(some)) == len(some) < len(full) and "000007" in some


def test_len_is_unknown(clips: Path) -> None:
    with pytest.raises(TypeError, match="no exact length"):
        len(_bucketed(clips))
    assert "batches=unknown" in repr(_bucketed(clips)) and "max_duration=8, buckets=4" in repr(_bucketed(clips))


def test_a_dataset_without_audio_is_refused(tmp_path: Path, clips: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(4):
        (raw / f"{i:06d}.txt").write_text(text_for(i), encoding="utf-8")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    with pytest.raises(MMDataError, match="no audio to measure"):
        mmdata.loader(tmp_path / "ds", None, max_duration=10.0)
    with pytest.raises(MMDataError, match="no audio to measure"):
        mmdata.loader(clips, None, max_duration=10.0, modalities=["label"])


def test_a_state_through_json_resumes_and_a_damaged_one_is_refused(clips: Path) -> None:
    import json

    full = [keys for keys, _, _ in _batches(_bucketed(clips))]
    loader = _bucketed(clips)
    it = iter(loader)
    for _ in range(3):
        next(it)
    state = json.loads(json.dumps(loader.state_dict()))  # reader keys become strings
    del it
    again = _bucketed(clips)
    again.load_state_dict(state)
    assert [keys for keys, _, _ in _batches(again)] == full[3:]
    for bad in ({"0": -1}, {"0": 1.5}, [1, 2]):
        with pytest.raises(MMDataError, match="bucket_batches"):
            _bucketed(clips).load_state_dict({**state, "bucket_batches": bad})


def test_the_lightning_datamodule_passes_max_duration_on(clips: Path) -> None:
    lightning = pytest.importorskip("mmdata.interop.lightning")
    dm = lightning.DataModule(clips, batch_size=4, max_duration=BUDGET, num_workers=2)  # batch_size: the cap
    dm.setup("fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = [list(b.keys) for b in dm.train_dataloader()]
    assert sorted(k for b in batches for k in b) == KEYS and max(map(len, batches)) <= 4
    assert "bucket_batches" in dm.state_dict()["train"]


@pytest.mark.parametrize("workers", [0, 2])
def test_skipped_samples_counted_once_across_a_resume(tmp_path: Path, workers: int) -> None:
    """The resumed pass reads the epoch's start again: the losses there are counted once, as uninterrupted."""
    from mmdata.testing.media import shard_lossy

    d = shard_lossy(tmp_path, "a", 24, spoiled=("000001", "000010"))
    kw = {"num_workers": workers, "max_duration": 1.0, "on_error": "skip", "seed": 2}
    whole = mmdata.loader(d, 3, **kw)
    full = [list(b.keys) for b in whole]
    it = iter(part := mmdata.loader(d, 3, **kw))
    for _ in range(3):
        next(it)
    state = part.state_dict()
    del it
    again = mmdata.loader(d, 3, **kw)
    again.load_state_dict(state)
    assert [list(b.keys) for b in again] == full[3:]
    assert again.skipped == whole.skipped == {"corrupt image": 2}


def test_batches_by_duration_leave_ddp_counts_to_the_ranks(clips: Path) -> None:
    """QA26 review: the DataModule's even-batches plan counted a bucketed loader's batches as samples / batch_size
    (batch_size=None raised TypeError; a cap gave each rank a target below its real batch count, so batches were
    dropped silently, dropped=0). A bucketed loader's counts follow its clips: the ranks agree batch by batch."""
    lightning = pytest.importorskip("mmdata.interop.lightning")
    for cap in (None, 4):
        ld = mmdata.loader(clips, cap, max_duration=BUDGET, num_workers=2)
        assert lightning.reader_counts(ld, 0, 4) is None
        assert lightning.even_plan(ld, 0, "pad") is None and lightning.even_plan(ld, 0, "drop") is None
