"""The loader's warnings said while batches are handed out (images or clips zero-padded, a clip over
max_duration) point at the caller's file and line — the loop over the loader — not at mmdata's own
`for batch in batches:` (QA29 docs #3)."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image

import mmdata
from mmdata.testing.media import audio_bytes


def _said_where(loader: mmdata.Loader) -> dict[str, str]:
    """The loader's warnings and the file each names."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in loader:
            pass
    return {str(w.message): w.filename for w in caught if str(w.message).startswith("mmdata.loader:")}


def test_padding_and_budget_warnings_name_the_callers_file(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, (width, sec) in enumerate([(8, 0.5), (12, 2.0), (16, 2.0)]):  # images of 3 sizes, a clip mostly padding
        Image.new("RGB", (width, 8), (40 * i, 0, 0)).save(raw / f"{i:03d}.png")
        (raw / f"{i:03d}.flac").write_bytes(audio_bytes(i, sec, 8000))
    mmdata.shard(raw, tmp_path / "ds", split={"train": 1.0}, progress=False)
    said = _said_where(mmdata.loader(tmp_path / "ds", 3, shuffle=False))
    assert len(said) == 2 and set(said.values()) == {__file__}, said  # images, then clips, zero-padded
    said = _said_where(mmdata.loader(tmp_path / "ds", shuffle=False, max_duration=1.0, buckets=1))  # 2 s > 1 s
    assert any("longer than max_duration" in m for m in said), said
    assert set(said.values()) == {__file__}, said
