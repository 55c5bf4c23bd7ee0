"""QA38: evaluate's in-sample check against a dataset written before 2026-12-04 (its index has no member CRC-32s
nor digests): the samples a run trained on are found by key where either dataset was sharded ``--split-from``
the other, and by the members' bytes (read from the shards, compared by size first) where one side has no
CRC-32s — never a silent "0 seen" (persona D #2)."""

from __future__ import annotations

import io
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch
from PIL import Image


def _quiet(fn: Any, *args: Any, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _sample(folder: Path, name: str, seed: int, rate: int = 8000, channels: int = 1) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    sf.write(folder / f"{name}.wav", rng.standard_normal((rate // 10, channels)).astype(np.float32) * 0.1, rate,
             subtype="PCM_16")


def _tree(root: Path, moved: str | None = None, drop: str | None = None, rate: int = 8000,
          channels: int = 1) -> Path:
    for c, cls in enumerate(("bird", "cat")):
        for i in range(6):
            name = f"{cls}/s{i}"
            if name == drop:
                continue
            if name == moved:  # a relabel: the same bytes in another class folder
                _sample(root / "bird", f"m{i}", 10 * c + i, rate, channels)
            else:
                _sample(root / cls, f"s{i}", 10 * c + i, rate, channels)
    return root


def _shard(src: Path, out: Path, **kw: Any) -> Path:
    import mmdata

    _quiet(mmdata.shard, src, out, progress=False, labels_from_folders=True, **kw)
    return out


def _as_before_crc32(folder: Path) -> None:
    """The index as mmdata wrote it before 2026-12-04: no member_crc32, no member_digest."""
    from mmdata.shards import index as idx

    t = pq.read_table(folder / idx.INDEX)
    pq.write_table(t.drop_columns([c for c in ("member_crc32", idx.MEMBER_DIGEST) if c in t.column_names]),
                   folder / idx.INDEX)


def _train(data: Path, out: Path) -> Path:
    from mmdata.train import train

    torch.set_num_threads(1)
    _quiet(train, data, epochs=1, seed=0, out=out, batch_size=8, threads=1, eval_robustness=False)
    return out


def _eval(*args: Any, **kw: Any) -> dict[str, Any]:
    from mmdata.train.score_run import evaluate_run

    return _quiet(evaluate_run, *args, **kw)


def _keys(folder: Path, split: str) -> list[str]:
    t = pq.read_table(folder / "index.parquet", columns=["key", "split", "source_key"]).to_pylist()
    return [r["source_key"] for r in t if r["split"] == split]


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("d")
    o = _shard(_tree(root / "c"), root / "old", split={"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    _as_before_crc32(o)
    return o


@pytest.fixture(scope="module")
def new_run(old: Path) -> tuple[Path, Path]:
    """A newer version of ``old`` (one sample dropped, sharded --split-from it) and a run trained on it."""
    root = old.parent
    new = _shard(_tree(root / "c2", drop="bird/s0"), root / "new", split_from=old)
    return new, _train(new, root / "run_new")


def test_a_new_run_on_data_split_from_an_old_crc_less_dataset_counts_the_old_samples_it_trained_on(
        old: Path, new_run: tuple[Path, Path]) -> None:
    new, run = new_run
    trained = set(_keys(new, "train"))
    r = _eval(run, old, split="train")
    scored = set(_keys(old, "train"))
    assert r["in_sample"]["by"] and r["in_sample"]["train"] == len(scored & trained) > 0, r["in_sample"]
    assert any("seen by the run" in w for w in r["warnings"]), r["warnings"]


def test_an_old_run_scored_on_new_data_finds_a_moved_sample_by_its_bytes(old: Path, tmp_path: Path) -> None:
    old = Path(shutil.copytree(old, tmp_path / "old"))  # beside the new version, where --split-from found it
    run = _train(old, tmp_path / "run_old")
    moved = next(k for k in _keys(old, "train") if k.startswith("cat/"))
    new = _shard(_tree(tmp_path / "c3", moved=moved), tmp_path / "new3", split_from=old)
    r = _eval(run, new, split="train,val,test", out=tmp_path / "ev")
    rows = pq.read_table(tmp_path / "ev" / "predictions.parquet", columns=["source_key", "in_sample"]).to_pylist()
    flags = {x["source_key"]: x["in_sample"] for x in rows}
    assert r["in_sample"]["by"] == f"index of {old}", r["in_sample"]
    assert flags["bird/m" + moved.split("/s")[1]] is True, (flags, r["in_sample"])
    assert r["in_sample"]["train"] == len(_keys(old, "train")), r["in_sample"]
    assert r["in_sample"]["val"] == len(_keys(old, "val")), r["in_sample"]
    for tar in old.rglob("*.tar"):  # the run's shards gone: its index alone cannot tell the moved sample
        tar.unlink()
    r = _eval(run, new, split="train,val,test")
    # the moved sample and the two of the test split: not matched by key, their sizes the run's members' sizes
    assert r["in_sample"]["train"] == len(_keys(old, "train")) - 1 and r["in_sample"]["uncompared"] == 3, r["in_sample"]
    assert any("3 of the 12 samples" in w and "could not be compared" in w for w in r["warnings"]), r["warnings"]


def test_audio_of_another_rate_or_channels_than_the_runs_is_said(new_run: tuple[Path, Path], tmp_path: Path) -> None:
    """persona B #8: 48 kHz clips scored by a 250 kHz run said nothing (here 4 kHz stereo clips, an 8 kHz run)."""
    new, run = new_run
    r = _eval(run, _shard(_tree(tmp_path / "c", rate=4000, channels=2), tmp_path / "lo"), split="train")
    said = [w for w in r["warnings"] if "audio of" in w and "not the format the run was trained on" in w]
    assert len(said) == 1, r["warnings"]
    assert "12 of 12 clips are not 8000 Hz (4000 Hz: 12)" in said[0] and "nothing above 2000 Hz" in said[0], said
    assert "2 channels: 12, mixed down to mono" in said[0] and "8000 Hz mono" in said[0], said
    assert not any("audio of" in w for w in _eval(run, new, split="test")["warnings"])


def test_metrics_json_records_the_settings_the_last_digits_depend_on(new_run: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    """persona E #3: NLL / ECE / probabilities change in the last digits with --batch-size / --workers: recorded."""
    import json

    from typer.testing import CliRunner

    from mmdata.cli.main import app

    new, run = new_run
    before = torch.get_num_threads()
    a = _eval(run, new, split="train", out=tmp_path / "a", batch_size=3, threads=2)
    assert torch.get_num_threads() == before  # the caller's thread count is given back
    b = _eval(run, new, split="train", batch_size=64)
    saved = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert saved["settings"] == {"batch_size": 3, "num_workers": 0, "threads": 2, "device": "cpu"}, saved["settings"]
    assert a["scores"]["accuracy"] == b["scores"]["accuracy"] and b["settings"]["batch_size"] == 64
    out = CliRunner().invoke(app, ["evaluate", "--help"], terminal_width=200).output
    assert "--threads" in out and "last digits" in out and "settings" in out, out


def test_a_runs_own_mix_of_rates_is_no_shift_but_a_new_mix_is(new_run: tuple[Path, Path]) -> None:
    """A run that resampled its own mixed-rate training clips: scored clips of a rate it trained from are said only
    when resampled up and far more common than in training (persona B's 48 kHz clips, a 250 kHz run)."""
    from mmdata.train.score_run import _audio_format_shift, _training_rates

    assert _training_rates("most common of training rates {16000: 7, 22050: 9}") == {16000: 7, 22050: 9}
    assert _training_rates("given") is None
    new, _ = new_run  # 8 kHz mono clips

    def said(mix: str) -> str | None:
        metrics = {"inputs": {"sample_rate": 16000, "needs": {"resample": True},
                              "sources": {"sample_rate": f"most common of training rates {mix}"}}}
        return _audio_format_shift(new, ["train"], metrics, "new", "train")

    assert said("{8000: 5, 16000: 5}") is None  # the training mix had as many
    assert "7 of 7 clips are not 16000 Hz (8000 Hz: 7)" in (said("{8000: 1, 16000: 9}") or ""), said("{8000: 1, 16000: 9}")
    assert said("{11025: 1, 16000: 9}") is not None  # a rate the run never trained from


def test_accuracy_by_a_metadata_value_and_by_an_index_column(tmp_path: Path) -> None:
    """persona C #5: accuracy per SNR (a manifest column sharded --meta snr) was not reachable."""
    import csv
    import json

    from typer.testing import CliRunner

    import mmdata
    from mmdata.cli.main import app
    from mmdata.errors import MMDataError

    raw = tmp_path / "raw"
    raw.mkdir()
    snr = {}
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "image", "label", "snr"])
        for i in range(16):
            _sample(raw, f"k{i}", i)
            snr[f"k{i}"] = (-10, 0, 10)[i % 3]
            w.writerow([f"k{i}", f"k{i}.png", "ab"[i % 2], snr[f"k{i}"]])
    ds = tmp_path / "ds"
    _quiet(mmdata.shard, raw / "m.csv", ds, progress=False, meta=["snr"], split={"train": 0.5, "val": 0.25, "test": 0.25},
           seed=0)
    run = _train(ds, tmp_path / "run")
    r = _eval(run, ds, split="train,test", by="snr", out=tmp_path / "ev")
    pred = pq.read_table(tmp_path / "ev" / "predictions.parquet", columns=["source_key", "label", "pred"]).to_pylist()
    want: dict[int, list[int]] = {}
    for x in pred:
        c = want.setdefault(snr[x["source_key"]], [0, 0])
        c[0] += 1
        c[1] += x["label"] == x["pred"]
    got = r["by_value"]
    assert got["field"] == "snr" and got["from"] == "metadata", got
    assert [v["value"] for v in got["values"]] == sorted(want), got
    for v in got["values"]:
        assert v["samples"] == v["scored"] == want[v["value"]][0], (v, want)
        assert v["accuracy"] == pytest.approx(want[v["value"]][1] / want[v["value"]][0]), (v, want)
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["by_value"] == got
    split_rows = _eval(run, ds, split="train,test", by="split")["by_value"]
    assert split_rows["from"] == "index" and [v["value"] for v in split_rows["values"]] == ["test", "train"]
    with pytest.raises(MMDataError, match=r"no index column nor metadata key 'snrr'.*metadata keys: snr"):
        _eval(run, ds, by="snrr")
    res = CliRunner().invoke(app, ["evaluate", str(run), str(ds), "--split", "train,test", "--by", "json.snr"],
                             terminal_width=200)
    assert res.exit_code == 0 and "accuracy by" in res.output and "json.snr" in res.output, res.output
    assert any(line.startswith("│ -10 ") for line in res.output.splitlines()), res.output
