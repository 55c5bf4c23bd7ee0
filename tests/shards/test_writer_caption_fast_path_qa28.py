"""Review of QA28 #8: the writer's batched path checks ordinary ASCII captions without a Python call per caption
(a pre-filter over the chunk's captions joined); what it lets through is what text_refusal accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmdata
from mmdata.shards import mediainfo, writer
from mmdata.shards.sources import text_refusal
from mmdata.testing import image_bytes


def test_ordinary_captions_take_no_text_refusal_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if mediainfo._C_IMAGE is None or mediainfo._C_AUDIO is None:
        pytest.skip("no C probe module: the batched path is not taken")
    src = tmp_path / "raw"
    src.mkdir()
    for i in range(12):
        (src / f"{i}.png").write_bytes(image_bytes(i))
        (src / f"{i}.txt").write_text(f"a cat, number {i}\n", "utf-8")
    calls = []
    monkeypatch.setattr(writer, "text_refusal", lambda data, *a: calls.append(data) or text_refusal(data, *a))
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    assert rep["samples"] == 12 and not rep["skipped"]
    assert calls == []


ASCII_BYTES = st.binary(max_size=40).map(lambda b: bytes(c & 0x7F for c in b))
PLAIN = st.text(st.sampled_from("ab01,-! \t\n\r0x"), max_size=40).map(str.encode)


@settings(max_examples=400, deadline=None)
@given(st.one_of(ASCII_BYTES, PLAIN))
def test_the_prefilter_lets_through_only_what_text_refusal_accepts(data: bytes) -> None:
    if writer._MAYBE_REFUSED.search(data) is None:
        assert text_refusal(data) is None
