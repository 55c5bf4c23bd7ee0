"""QA: in a multi-label target ``Drama`` and ``drama`` became two labels without a word (the ``|``-joined
case was warned of); they stay two labels (merging would be a guess) and are now warned of, naming
both spellings. And the derived audio length's source printed durations with ``{:g}``
(``0.61..3.79002 s``): clip durations are now given to the hundredth, as the loader's padding
warning gives them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

import mmdata
from mmdata.train.config import derive_inputs
from mmdata.train.targets import resolve


def test_labels_differing_only_in_case_are_warned_of_naming_both(tmp_path: Path) -> None:
    from mmdata.testing import image_bytes

    values = [["Drama", "Comedy"], ["drama"], ["Comedy"], ["COMEDY", "Horror"]]
    rows = []
    for i in range(8):
        (tmp_path / f"{i}.png").write_bytes(image_bytes(i))
        rows.append({"key": f"s{i}", "image": f"{i}.png", "label": "a", "split": "train", "y": values[i % 4]})
    pd.DataFrame(rows).to_json(tmp_path / "m.jsonl", orient="records", lines=True)
    mmdata.shard(tmp_path / "m.jsonl", tmp_path / "ds", meta=["y"], progress=False)
    target, _, warnings = resolve(str(tmp_path / "ds"), "y", {"train": "train"})
    assert target.names == ["COMEDY", "Comedy", "Drama", "Horror", "drama"]
    (warn,) = [w for w in warnings if "case" in w]
    assert "'COMEDY' / 'Comedy'" in warn and "'Drama' / 'drama'" in warn and "Horror" not in warn


def test_clip_durations_in_the_derived_source_are_given_to_the_hundredth(tmp_path: Path) -> None:
    import soundfile as sf

    raw = tmp_path / "raw"
    raw.mkdir()
    lines = ["filename,category,split"]
    for i, frames in enumerate([13451, 83571, 40000, 50000]):  # at 22050 Hz: 0.610023 s, 3.790068 s, ...
        sf.write(raw / f"c{i}.wav", (0.1 * np.sin(np.arange(frames) / 7)).astype("float32"), 22050)
        lines.append(f"c{i}.wav,{'ab'[i % 2]},train")
    (raw / "m.csv").write_text("\n".join(lines) + "\n")
    mmdata.shard(raw / "m.csv", tmp_path / "ds", columns={"audio": "filename", "label": "category", "split": "split"},
                 progress=False)
    src = derive_inputs(tmp_path / "ds", ["audio"]).sources["max_seconds"]
    assert re.fullmatch(r"95th percentile of durations 0\.61\.\.3\.79 s", src), src
