"""The loader's audio PaddingWarning leads with the condition that fired (QA27 C7).

It fires when the shortest clip of a batch is mostly padding, but said "the median clip is 0% padding (the
shortest 75%), which the model hears as silence": the median, which is no padding at all, came first and
the silence seemed to be its. Now: "the shortest clip is 75% padding, which the model hears as silence (the
median clip is 0% padding)".
"""

from __future__ import annotations

import warnings
from pathlib import Path

import mmdata
from mmdata.augment.loader import PaddingWarning
from mmdata.testing.media import audio_bytes
from mmdata.train.padding import PaddingNotes


def _warned(loader: mmdata.Loader) -> list[str]:
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        for _ in loader:
            pass
    return [str(w.message) for w in rec if issubclass(w.category, PaddingWarning)]


def test_the_warning_leads_with_the_shortest_clip(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, sec in enumerate([0.5, 2.0, 2.0, 2.0]):  # one batch: the median clip is no padding, the shortest 75%
        (raw / f"{i:03d}.flac").write_bytes(audio_bytes(i, sec, 8000))
        (raw / f"{i:03d}.cls").write_text("0")
    mmdata.shard(raw, tmp_path / "ds", split={"train": 1.0}, progress=False)
    (msg,) = _warned(mmdata.loader(tmp_path / "ds", 4, shuffle=False))
    assert ("split 'train': a batch holds clips of 0.50 to 2.00 s, zero-padded to 2.00 s: the shortest clip is 75% "
            "padding, which the model hears as silence (the median clip is 0% padding); for less padding") in msg, msg
    assert "median clip is 0% padding (the shortest" not in msg
    assert msg.endswith("said once per loader")
    # a training run still merges it (numbers, then the remedy once)
    notes = PaddingNotes()
    assert notes.note(msg)
    (merged,) = notes.messages()
    assert "'train': a batch holds clips of 0.50 to 2.00 s, zero-padded to 2.00 s: the shortest clip is 75% padding" \
        in merged and "; for less padding" in merged and "said once per loader" not in merged, merged
    # batching by duration (the DataModule's max_duration= in QA's run): the same words
    (msg,) = _warned(mmdata.loader(tmp_path / "ds", 4, shuffle=False, max_duration=8.0, buckets=1))
    assert "zero-padded to 2.00 s: the shortest clip is 75% padding, which the model hears as silence" in msg, msg
