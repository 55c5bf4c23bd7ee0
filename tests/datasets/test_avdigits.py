"""avdigits: determinism, fingerprint, speaker-disjoint splits, clues, bank integrity, CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import mmdata
from mmdata.datasets import speech
from mmdata.datasets.avdigits import CLUES, WORDS, Knobs, build, clue_for, generate
from mmdata.errors import MMDataError
from mmdata.shards import index as idx


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_build_is_deterministic(tmp_path: Path) -> None:
    a = build(tmp_path / "a" / "av", seed=0, limit=6, progress=False)
    b = build(tmp_path / "b" / "av", seed=0, limit=6, progress=False)
    c = build(tmp_path / "c" / "av", seed=1, limit=6, progress=False)
    assert _tree(a) == _tree(b)
    fa, fc = (idx.load_card(p)["avdigits"]["content_sha256"] for p in (a, c))
    assert fa != fc and mmdata.verify(a)["ok"]


def test_full_default_build(tmp_path: Path) -> None:
    p = build(tmp_path / "av", progress=False)
    card = idx.load_card(p)
    assert card["label_names"] == list(WORDS) and card["num_classes"] == 10
    info = mmdata.inspect(p)
    assert info["samples"] == 1797
    n = info["per_split"]
    assert abs(n["train"] / 1797 - 0.6) < 0.01 and abs(n["val"] / 1797 - 0.2) < 0.01
    for split, per in info["per_class"].items():
        assert max(per.values()) - min(per.values()) <= max(per.values()) * 0.2  # stratified
    spk = card["avdigits"]["speakers"]
    assert not set(spk["train"]) & set(spk["test"]) and not set(spk["train"]) & set(spk["val"])
    rows = idx.load_index(p).to_pylist()
    for r in rows:
        assert int(r["speaker"]) in spk[r["split"]]
    missing_text = sum(1 for r in rows if "text" not in r["modalities"]) / len(rows)
    assert abs(missing_text - Knobs().text_missing) < 0.05
    assert {r["audio_sample_rate"] for r in rows} == {8000} and {r["image_height"] for r in rows} == {16}
    for s in mmdata.open_dataset(p, split="test", modalities=["text", "label"]):
        if "text" in s:
            words = s["text"].split()
            assert WORDS[s["label"]] not in words and str(s["label"]) not in words


def test_clues_are_true_and_never_name_the_digit() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    for d in range(10):
        for _ in range(30):
            c = clue_for(d, rng, Knobs())
            assert any(text == c and pred(d) for text, pred in CLUES)
            assert WORDS[d] not in c.split()


def test_bank_sha256_is_checked(tmp_path: Path) -> None:
    bank = speech.load_bank()
    assert bank.rate == 8000 and len(set(bank.speaker.tolist())) == 72
    bad = tmp_path / "assets"
    shutil.copytree(speech.ASSETS, bad)
    data = bytearray((bad / "speech_bank.flac").read_bytes())
    data[-10] ^= 0xFF
    (bad / "speech_bank.flac").write_bytes(bytes(data))
    with pytest.raises(MMDataError, match="corrupt or modified"):
        speech.load_bank.__wrapped__(str(bad))


def test_generate_limit_and_cli(tmp_path: Path) -> None:
    g = generate(seed=3, limit=2)
    assert len(g["records"]) == 20
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    res = CliRunner().invoke(app, ["datasets", "build", "avdigits", str(tmp_path / "av")])
    assert res.exit_code == 0 and "1797 samples" in " ".join(res.output.split())  # rich may wrap long paths
    assert CliRunner().invoke(app, ["datasets", "list"]).exit_code == 0


def test_a_limit_too_small_for_every_split_is_warned() -> None:
    """QA: `datasets build avdigits --limit 2` made no val split without a word; `mmdata train` then
    failed asking to re-shard. Tiny builds stay allowed (tests and the synthetic trainer need no val)."""
    import warnings

    with pytest.warns(UserWarning, match=r"limit 2 per class gives train / val / test 1 / 0 / 1.*no val split.*at least 4"):
        generate(seed=0, limit=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = generate(seed=0, limit=4)
    assert {r["split"] for r in g["records"]} == {"train", "val", "test"}


def test_the_datasets_commands_take_json(tmp_path: Path) -> None:
    """QA: `mmdata datasets list --json` was "No such option" though the README says every command takes it."""
    import json
    import subprocess
    import sys

    cli = [sys.executable, "-m", "mmdata.cli.main", "datasets"]
    listed = subprocess.run([*cli, "list", "--json"], capture_output=True, text=True, check=True)
    assert [d["name"] for d in json.loads(listed.stdout)["datasets"]] == ["avdigits", "avdigits-spatial"]
    built = subprocess.run([*cli, "build", "avdigits", str(tmp_path / "av"), "--limit", "4", "--json"],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    rep = json.loads(built.stdout)
    assert rep["ok"] and rep["samples"] == 40 and rep["per_split"] == {"test": 10, "train": 20, "val": 10}
    assert "sharding" in built.stderr  # progress on stderr under --json too, as the other commands (QA26 F12)
    bad = subprocess.run([*cli, "build", "nope", str(tmp_path / "x"), "--json"], capture_output=True, text=True)
    assert bad.returncode == 2 and json.loads(bad.stdout)["ok"] is False
