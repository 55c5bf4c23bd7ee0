"""``max_duration=`` over a dataset where some samples have no audio (QA27 C4).

They cost 0 s, so with ``batch_size=None`` audio-less samples piled up (30, 28, ... in a batch) until the
next clip. Now a sample without audio costs the shortest clip (the split's, from the index's
``audio_seconds``): it joins the shortest bucket, where collate pads its missing audio to the batch's longest
clip, and a batch of audio-less samples only holds as many as a batch of the shortest clips may.
"""

from __future__ import annotations

import csv
import warnings
from collections import Counter
from pathlib import Path

import pytest

import mmdata
from mmdata.augment.bucketing import form_batches
from mmdata.testing.media import audio_bytes, image_bytes

RATE = 8000
N = 60


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 image samples, every 10th with a clip (1 s, or 0.5 s for 0 and 30)."""
    root = tmp_path_factory.mktemp("mixed")
    raw = root / "raw"
    raw.mkdir()
    rows = []
    for i in range(N):
        (raw / f"{i}.png").write_bytes(image_bytes(i))
        row = {"key": f"s{i:03d}", "image": f"{i}.png", "audio": "", "label": i % 2}
        if i % 10 == 0:
            (raw / f"{i}.flac").write_bytes(audio_bytes(i, 0.5 if i % 30 == 0 else 1.0, RATE))
            row["audio"] = f"{i}.flac"
        rows.append(row)
    with open(raw / "m.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    mmdata.shard(raw / "m.csv", root / "ds", split={"train": 1.0}, progress=False)
    return root / "ds"


@pytest.mark.parametrize("num_workers", [0, 2])
def test_samples_without_audio_cost_the_shortest_clip(mixed: Path, num_workers: int) -> None:
    budget = 2.0  # the shortest clip is 0.5 s: at most 4 samples a batch
    loader = mmdata.loader(mixed, None, max_duration=budget, seed=0, num_workers=num_workers)
    seen: Counter = Counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in loader:
            seen.update(b.keys)
            n = len(b.keys)
            assert n <= budget / 0.5, (n, b.keys)  # was: 30 audio-less samples in one batch
            if "audio" in b.data and bool(b.present["audio"].any()):
                longest = float(b["audio"].shape[-1]) / RATE  # collate pads every row, audio-less ones too
                assert n * longest <= budget + 1e-6, (n, longest, b.keys)
    assert set(seen) == {f"s{i:03d}" for i in range(N)} and max(seen.values()) == 1  # each sample once
    assert loader.over_budget == 0


def test_form_batches_costs_an_item_without_audio_as_the_shortest_clip() -> None:
    pairs = [(f"i{n}", None) for n in range(10)] + [("a", 1.0), ("b", 0.5)]
    got = [b for b, _ in form_batches(pairs, [], 2.0, shortest=0.5)]
    assert got == [["i0", "i1", "i2", "i3"], ["i4", "i5", "i6", "i7"], ["i8", "i9"], ["a", "b"]]
    # learned from the stream (no index): the shortest clip among the first `buffer` items
    assert [b for b, _ in form_batches(pairs, None, 2.0, buffer=64, buckets=1)] == got
    # a shortest clip longer than the budget: an audio-less item still fits (costs the budget), never "over"
    assert list(form_batches([("x", None), ("y", None)], [], 0.4, shortest=0.5)) == [(["x"], False), (["y"], False)]
