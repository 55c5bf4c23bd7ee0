"""docs/interop.md's lab blocks run as written in an empty folder (QA round 33, docsread #5): the segments block
makes its own recordings and manifests, and both manifests shard; the Hub card block needs no file of its own."""

from __future__ import annotations

import json
import os
import re
import warnings
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
    assert mmdata.open_dataset("ds_py", split="train") is not None
    # both classes of the lab's labels (QA33 review: every row was "yes", a one-class dataset)
    assert json.loads(Path("ds_py/dataset.json").read_text())["label_names"] == ["no", "yes"]
    rep = mmdata.shard("supervisions.jsonl", "ds_jsonl", columns={"key": "id", "audio": "recording"},
                       segment={"start": "start", "end": "end"}, progress=False)
    assert rep["samples"] == 10 and not rep.get("skipped")
    assert os.path.isfile("wavs/talk1.flac")


def test_the_segments_cli_split_keeps_each_recording_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The doc's --split line gives one recording to each split, with no warning that the groups skew it."""
    monkeypatch.chdir(tmp_path)
    make = next(b for b in _python_blocks() if "long_audio_bytes" in b and "supervisions.jsonl" in b)
    exec(compile(make, "docs/interop.md segments block", "exec"), {"__name__": "interop_md"})  # noqa: S102
    line = next(ln for ln in DOC.read_text(encoding="utf-8").splitlines() if ln.startswith("mmdata shard segments.csv"))
    split = line.split("--split ")[1].split()[0]
    assert split == "train=0.5,val=0.5"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = mmdata.shard("segments.csv", "ds_csv", segment={"start": "start", "duration": "duration"},
                           split={"train": 0.5, "val": 0.5}, progress=False)
    assert rep["samples"] == 10
    card = json.loads(Path("ds_csv/dataset.json").read_text())
    assert {s: card["splits"][s]["samples"] for s in card["splits"]} == {"train": 5, "val": 5}
    assert card["label_names"] == ["no", "yes"]


def test_the_hub_card_block_needs_no_file_of_its_own() -> None:
    block = next(b for b in _python_blocks() if '"citation": citation' in b)
    assert "open(" not in block.split("#")[0]
