"""QA37 third review, the CLI / sources / evaluate share, on real files (FLAC, WAV, PNG, NumPy, JSON manifests):
a ``--segment`` sample left out because its cut failed is said so on the terminal (not "no file or text left");
the per-episode jq hint writes a field named like a jq keyword as ``"k": .["k"]`` (jq 1.6 rejects ``{label}``);
``add-modality --replace`` says which credit it kept from the replaced series and ``--license dataset`` goes
back to the dataset's; a clip of 3 frames is listed whole; a class map no option can give is advised as
``class_map=`` alone."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

import mmdata
from mmdata.shards.sources import _nested_rows_hint, discover
from mmdata.testing import make_sample_folder


def _said(res) -> str:  # noqa: ANN001
    return " ".join(res.output.split())


def test_a_failed_segment_cut_is_said_on_the_terminal(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    x = (0.1 * np.random.default_rng(0).standard_normal(8000 * 60)).astype("float32")
    sf.write(tmp_path / "ep.flac", x, 8000, subtype="PCM_16")
    os.truncate(tmp_path / "ep.flac", os.path.getsize(tmp_path / "ep.flac") // 2)
    (tmp_path / "m.csv").write_text("audio,start,end,text\nep.flac,5,8,uno\nep.flac,50,55,dos\n")
    res = CliRunner().invoke(app, ["shard", str(tmp_path / "m.csv"), str(tmp_path / "ds"),
                                   "--segment", "start=start,end=end"])
    assert res.exit_code == 0, res.output
    out = _said(res)
    assert "no file or text left" not in out  # it had its text
    assert "1 sample whose segment of the recording could not be cut" in out and "'ep_000050.000'" in out


@pytest.mark.parametrize("name", ["label", "end", "if", "and", "speaker's", "audio file"])
def test_the_jq_hint_copies_a_field_named_like_a_jq_keyword(tmp_path: Path, name: str) -> None:
    rows = [{"audio": "ep.wav", name: "news", "utterances": [{"start": 0, "end": 3, "text": "hi"}]}]
    hint = _nested_rows_hint(rows, "ep.json", "ep.jsonl")
    prog = f'.utterances[] + {{audio, {json.dumps(name)}: .[{json.dumps(name)}]}}'  # a keyword quoted too
    assert f"jq -c {shlex.quote(prog)} ep.json" in hint, hint
    if shutil.which("jq"):
        (tmp_path / "ep.json").write_text(json.dumps(rows[0]))
        got = subprocess.run(["jq", "-c", prog, "ep.json"], cwd=tmp_path, capture_output=True, text=True)
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout) == {"start": 0, "end": 3, "text": "hi", "audio": "ep.wav", name: "news"}
        # and the hint as printed, run by a shell
        cmd = hint.split("e.g. ", 1)[1].split("; for many", 1)[0]
        sh = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True)
        assert sh.returncode == 0, (cmd, sh.stderr)
        assert json.loads((tmp_path / "ep.jsonl").read_text())[name] == "news"


def _columns_ds(tmp_path: Path) -> tuple[Path, Path]:
    raw = make_sample_folder(tmp_path / "raw", n=6)
    mmdata.shard(raw, tmp_path / "ds", layout="columns", license="CC-BY-4.0", progress=False)
    emb = tmp_path / "emb"
    emb.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recs = discover(raw).records
    for r in recs:
        np.save(emb / f"{r.source_key}.emb.npy", np.ones((3, 4), np.float32))
    return tmp_path / "ds", emb


def _credit(ds: Path) -> dict:
    mod = json.loads((ds / "dataset.json").read_text())["modalities"]["emb"]
    return {k: mod[k] for k in ("license", "attribution", "license_from") if k in mod}


def test_replace_with_a_license_keeps_the_attribution_and_says_so(tmp_path: Path) -> None:
    """Fails without 0f52f21: a --license alone dropped the replaced series' attribution."""
    from mmdata.cli.main import app

    ds, emb = _columns_ds(tmp_path)
    mmdata.add_modality(ds, "emb", emb, attribution="Lab X")
    assert _credit(ds) == {"attribution": "Lab X", "license_from": "dataset"}
    res = CliRunner().invoke(app, ["add-modality", str(ds), "emb", str(emb), "--replace", "--license", "CC0-1.0"])
    assert res.exit_code == 0, res.output
    assert _credit(ds) == {"license": "CC0-1.0", "attribution": "Lab X"}
    out = _said(res)
    assert "kept from the replaced series: attribution 'Lab X'" in out and "--attribution" in out
    assert "license" not in out.split("kept from the replaced series:", 1)[1].split("(", 1)[0]


def test_replace_says_the_kept_license_and_license_dataset_goes_back(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    ds, emb = _columns_ds(tmp_path)
    mmdata.add_modality(ds, "emb", emb, license="CC-BY-NC-4.0", attribution="Lab X")
    res = CliRunner().invoke(app, ["add-modality", str(ds), "emb", str(emb), "--replace"])
    assert res.exit_code == 0, res.output
    out = _said(res)
    assert "kept from the replaced series: license 'CC-BY-NC-4.0', attribution 'Lab X'" in out
    assert "--license dataset" in out
    rep = mmdata.add_modality(ds, "emb", emb, replace=True, license="dataset")
    assert _credit(ds) == {"attribution": "Lab X", "license_from": "dataset"}
    assert rep["kept_from_replaced"] == {"attribution": "Lab X"}
    rep = mmdata.add_modality(ds, "emb", emb, replace=True, attribution="none")
    assert _credit(ds) == {"license_from": "dataset"} and rep["kept_from_replaced"] == {}
    res = CliRunner().invoke(app, ["add-modality", str(ds), "emb", str(emb), "--replace"])
    assert "kept from the replaced series" not in _said(res)  # nothing to keep: nothing said


def test_a_clip_of_three_frames_is_listed_whole(tmp_path: Path) -> None:
    for i in range(6):
        for j in range(3):
            Image.fromarray(np.full((8, 8, 3), i * 9 + j, np.uint8)).save(tmp_path / f"x {i}.frame{j}.jpg")
        (tmp_path / f"x {i}.txt").write_text(f"clip {i}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = discover(tmp_path)
    clip = [w for w in found.warnings if "frames of a clip" in w]
    assert len(clip) == 1, found.warnings
    assert "'x 0.frame0', 'x 0.frame1', 'x 0.frame2'" in clip[0] and "..." not in clip[0].split(":", 1)[0]


def test_a_class_map_no_option_can_give_is_advised_as_class_map_alone() -> None:
    from mmdata.train.score_run import _class_map_flag

    flag = _class_map_flag({" a": "b"})
    assert "(none)" not in flag and not flag.startswith("--class-map")
    assert flag.startswith("class_map={' a': 'b'}")
    both = _class_map_flag({"x=y": "X=Y", "cat": "Cat"})
    assert both.startswith("--class-map cat=Cat") and "class_map={'x=y': 'X=Y'}" in both
