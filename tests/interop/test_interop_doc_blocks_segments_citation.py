"""docs/interop.md's lab blocks run as written in an empty folder (QA round 33, docsread #5): the segments block
makes its own recordings and manifests, and both manifests shard; the Hub card block needs no file of its own."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import mmdata

DOC = Path(__file__).resolve().parents[2] / "docs" / "interop.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_segments_blocks_run_in_an_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make = next(b for b in _python_blocks() if "long_audio_bytes" in b and "supervisions.jsonl" in b)
    shard = next(b for b in _python_blocks() if 'mmdata.shard("segments.csv"' in b)
    assert shard.startswith("import mmdata")
    exec(compile(make, "docs/interop.md segments block", "exec"), {"__name__": "interop_md"})  # noqa: S102
    exec(compile(shard.replace('segment={', 'progress=False, segment={'), "docs/interop.md shard block", "exec"),
         {"__name__": "interop_md"})  # noqa: S102
    assert mmdata.open_dataset("ds", split="train") is not None
    rep = mmdata.shard("supervisions.jsonl", "ds2", columns={"key": "id", "audio": "recording"},
                       segment={"start": "start", "end": "end"}, progress=False)
    assert rep["samples"] == 10 and not rep.get("skipped")
    assert os.path.isfile("wavs/talk1.flac")


def test_the_hub_card_block_needs_no_file_of_its_own() -> None:
    block = next(b for b in _python_blocks() if '"citation": citation' in b)
    assert "open(" not in block.split("#")[0]
