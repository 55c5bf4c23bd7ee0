"""A manifest's `caption` column (AudioCaps' CSV: audio,caption,youtube_id) named no files, so it was not read —
rightly, a column is never taken over by its name — but the warning advised only `--meta caption`; the text
was lost. The warning now names `--column text=caption` for the text-like names other tools use (QA26)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import audio_bytes


@pytest.mark.parametrize("col", ["caption", "Sentence", "transcript"])
def test_a_text_like_column_is_named_with_the_option_that_reads_it(tmp_path: Path, col: str) -> None:
    for i in range(3):
        (tmp_path / f"a{i}.wav").write_bytes(audio_bytes(i, fmt="wav"))
    (tmp_path / "ac.csv").write_text(f"audio,{col},youtube_id\n" + "".join(f"a{i}.wav,a dog barks {i},yt{i}\n"
                                                                        for i in range(3)))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        mmdata.shard(tmp_path / "ac.csv", tmp_path / "ds", progress=False)
    said = " ".join(str(w.message) for w in seen)
    assert f"--column text={col}" in said and "names the text in other tools' manifests" in said
    assert "--column text=youtube_id" not in said  # other columns keep the metadata advice only
    ds = mmdata.shard(tmp_path / "ac.csv", tmp_path / "ds2", columns={"text": col}, progress=False)
    assert ds is not None
    texts = sorted(s["text"] for s in mmdata.open_dataset(tmp_path / "ds2"))
    assert texts == [f"a dog barks {i}" for i in range(3)]
