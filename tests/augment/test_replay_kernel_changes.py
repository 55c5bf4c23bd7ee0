"""A replay log of older kernels warns naming the ops whose outputs changed since, and only those (QA round 34,
upgrade 6: a kernels-1 log replayed a stereo clip under ``consistent_hflip`` with its channels swapped while the
warning blamed ``logmel``, and logs that replayed exactly got the same warning)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from mmdata import Sample, load_recipe
from mmdata.augment.replay import load_log, log_rows, save_log


def _old_log(tmp_path: Path, recipe: dict, sample: Sample) -> Path:
    """The log of ``recipe`` on ``sample``, its schema saying kernels 1 (as mmdata of 2026-12-03 to 06 wrote)."""
    rec = load_recipe(recipe)
    save_log(tmp_path / "log.parquet", log_rows(sample.key, rec.apply_sample(sample).meta["aug"], 0))
    t = pq.read_table(tmp_path / "log.parquet")
    pq.write_table(t.replace_schema_metadata({**t.schema.metadata, b"mmdata.kernels": b"1"}), tmp_path / "old.parquet")
    return tmp_path / "old.parquet"


def _stereo() -> Sample:
    audio = torch.stack([torch.linspace(-0.5, 0.5, 800), torch.linspace(0.5, -0.5, 800)])
    image = torch.arange(3 * 8 * 8, dtype=torch.uint8).reshape(3, 8, 8)
    return Sample("k", {"image": image, "audio": audio, "text": "left"}, sample_rate=8000)


def test_a_kernels_1_log_with_consistent_hflip_names_it_and_the_remedy_replays_as_recorded(tmp_path: Path) -> None:
    recipe = {"seed": 0, "sample": [{"op": "consistent_hflip", "p": 1.0}]}
    path = _old_log(tmp_path, recipe, _stereo())
    with pytest.warns(UserWarning, match=r"written by kernels 1 \(these are kernels \d+\).*consistent_hflip swaps the "
                                         r"left and right channels.*stereo: keep") as caught:
        log = load_log(path)
    assert not any("logmel" in str(w.message) for w in caught)  # no op of the log's is blamed wrongly
    before = load_recipe({"seed": 0, "sample": [{"op": "consistent_hflip", "p": 1.0, "stereo": "keep"}]})
    out = before.replay(_stereo(), log[("k", 0)])
    assert torch.equal(out["audio"], _stereo()["audio"])  # as a log of before 2026-12-06 recorded it
    assert torch.equal(out["image"], _stereo()["image"].flip(-1))


def test_a_kernels_1_log_of_unchanged_ops_replays_without_a_warning(tmp_path: Path) -> None:
    path = _old_log(tmp_path, {"seed": 0, "audio": [{"op": "gain", "p": 1.0}]}, _stereo())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_log(path)
