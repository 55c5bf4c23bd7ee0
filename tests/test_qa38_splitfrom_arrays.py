"""QA38 splitfrom C#6: channels-first (2, N) I/Q arrays of several lengths: the card and inspect called the channel
axis T, of length 2..2, and the field "mixed"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import mmdata
from mmdata.shards.inspect import inspect


def _iq_folder(root: Path, lengths: tuple[int, ...]) -> Path:
    r = np.random.default_rng(0)
    for i in range(12):
        (root / ("BPSK", "QPSK")[i % 2]).mkdir(parents=True, exist_ok=True)
        x = r.standard_normal((2, lengths[i % len(lengths)])).astype(np.float32)
        np.save(root / ("BPSK", "QPSK")[i % 2] / f"x{i}.iq.npy", x)
    return root


def test_channels_first_iq_of_several_lengths_has_its_last_axis_as_the_length(tmp_path: Path) -> None:
    src = _iq_folder(tmp_path / "r2n", (128, 1024, 1050))
    mmdata.shard(src, tmp_path / "ds", progress=False)
    iq = json.loads((tmp_path / "ds" / "dataset.json").read_text())["modalities"]["iq"]
    assert iq["shapes"] == {"(2, T)": 12} and iq["length"] == [128, 1050] and iq["length_axis"] == 1, iq
    assert iq["varying_axes"] == [1] and iq["ranks"] == {"2": 12}, iq
    a = inspect(tmp_path / "ds")["arrays"]["iq"]
    assert a["shapes"] == {"(2, T)": 12} and a["length"] == {"min": 128, "max": 1050} and a["length_axis"] == 1, a
    # a card written before this fix (the first axis as T) is shown the same way by inspect
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    card["modalities"]["iq"].update(shapes={"(T, 1024)": 4, "(T, 1050)": 4, "(T, 128)": 4}, length=[2, 2])
    del card["modalities"]["iq"]["length_axis"]
    from mmdata.shards.inspect import _arrays

    old = _arrays(card)["iq"]
    assert old["shapes"] == {"(2, T)": 12} and old["length"] == {"min": 128, "max": 1050}, old


def test_time_first_arrays_keep_the_first_axis_as_the_length(tmp_path: Path) -> None:
    r = np.random.default_rng(1)
    (tmp_path / "src" / "A").mkdir(parents=True)
    for i, n in enumerate((50, 80, 120)):
        np.save(tmp_path / "src" / "A" / f"s{i}.imu.npy", r.standard_normal((n, 6)).astype(np.float32))
    mmdata.shard(tmp_path / "src", tmp_path / "ds", progress=False)
    imu = json.loads((tmp_path / "ds" / "dataset.json").read_text())["modalities"]["imu"]
    assert imu["shapes"] == {"(T, 6)": 3} and imu["length"] == [50, 120] and "length_axis" not in imu, imu


def test_inspect_cli_names_the_axis_it_gives_the_length_of(tmp_path: Path) -> None:
    """The CLI table said "first axis 128..1050" of (2, T) arrays (QA38 RF #6, the lead's share)."""
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    mmdata.shard(_iq_folder(tmp_path / "r2n", (128, 1050)), tmp_path / "ds", progress=False)
    out = CliRunner().invoke(app, ["inspect", str(tmp_path / "ds")], env={"COLUMNS": "200"}).output
    assert "axis 1 (T) 128..1,050" in out and "first axis 128" not in out, out
