"""QA: the cross-modal commands and a sample that does not decode (a float WAV holding NaN, which the
default ``--check header`` lets through). ``mmdata train --pretrain contrastive --on-error skip`` used to
stop on it (pre-training's loader and its retrieval read ignored the option); ``mmdata match`` and
``mmdata audit-alignment`` had no ``--on-error`` and their error lacked train's hint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmdata.errors import MMDataError
from mmdata.train import train
from tests.train.crossmodal_data import KW, build


@pytest.fixture(scope="module")
def nan_train(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("nan_train"), nan_split="train")


@pytest.fixture(scope="module")
def nan_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("nan_test"), nan_split="test")


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory, nan_test: Path) -> Path:
    """A run pre-trained and fine-tuned on clean data of the same layout (for match / audit on ``nan_test``)."""
    root = tmp_path_factory.mktemp("clean")
    train(build(root, nan_split=None), out=root / "run", **KW)
    return root / "run"


@pytest.mark.parametrize("where", ["train", "test"])
def test_pretraining_honours_on_error_skip(where: str, nan_train: Path, nan_test: Path, tmp_path: Path) -> None:
    data = nan_train if where == "train" else nan_test
    m = train(data, on_error="skip", out=tmp_path / "run", **KW)
    assert m["pretrain"]["skipped"][where] == {"corrupt audio": 1}, m["pretrain"]["skipped"]
    assert m["retrieval"], "the retrieval evaluation ran on what was left"
    what = "pre-training" if where == "train" else "the retrieval evaluation"
    assert any(f"of the {where} split were skipped" in w and what in w for w in m["warnings"]), m["warnings"]
    assert (tmp_path / "run" / "contrastive.pt").is_file()
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["pretrain"]["skipped"][where] == {"corrupt audio": 1}


def test_pretraining_alone_honours_on_error_skip(nan_test: Path, tmp_path: Path) -> None:
    m = train(nan_test, on_error="skip", out=tmp_path / "run", **{**KW, "epochs": 0})
    assert m["pretrain"]["skipped"]["test"] == {"corrupt audio": 1}
    assert any("left out of the retrieval evaluation" in w for w in m["warnings"])


def test_pretraining_still_raises_by_default_with_the_hint(nan_train: Path) -> None:
    with pytest.raises(MMDataError, match=r"s001.*--deep.*--on-error skip"):
        train(nan_train, **KW)


def test_match_on_error(nan_test: Path, clean_run: Path, tmp_path: Path, mmdata_cli) -> None:  # noqa: ANN001
    from mmdata.train.matching import match

    with pytest.raises(MMDataError) as err:
        match(nan_test, clean_run, out=tmp_path / "m.png")
    msg = str(err.value)
    assert "s019" in msg and "--deep" in msg and "--check decode" in msg and "--on-error skip" in msg, msg
    r = match(nan_test, clean_run, out=tmp_path / "m.png", on_error="skip")
    assert r["n"] == 5 and r["skipped_samples"] == {"corrupt audio": 1}
    code, out = mmdata_cli(["match", str(nan_test), "--model", str(clean_run), "--out", str(tmp_path / "c.png"),
                            "--on-error", "skip"])
    assert code == 0 and "5 samples, 1 skipped" in out, out
    code, out = mmdata_cli(["match", str(nan_test), "--model", str(clean_run), "--out", str(tmp_path / "c.png"),
                            "--on-error", "skip", "--json"])
    assert code == 0 and json.loads(out)["skipped_samples"] == {"corrupt audio": 1}
    code, out = mmdata_cli(["match", str(nan_test), "--model", str(clean_run), "--out", str(tmp_path / "c.png")])
    assert code == 2 and "--on-error skip" in out, out


def test_audit_alignment_on_error(nan_test: Path, clean_run: Path, tmp_path: Path, mmdata_cli) -> None:  # noqa: ANN001
    from mmdata.train.alignment import alignment_columns, audit

    recipe = {"image": [{"op": "hflip", "p": 0.5}]}
    with pytest.raises(MMDataError) as err:
        audit(nan_test, recipe, clean_run)
    msg = str(err.value)
    assert "s019" in msg and "--deep" in msg and "--check decode" in msg and "--on-error skip" in msg, msg
    r = audit(nan_test, recipe, clean_run, on_error="skip")
    assert r["n"] == 5 and r["skipped_samples"] == {"corrupt audio": 1}
    assert "align_cos_delta" in alignment_columns(nan_test, recipe, clean_run, on_error="skip")
    (tmp_path / "r.yaml").write_text("image:\n  - {op: hflip, p: 0.5}\n")
    argv = ["audit-alignment", str(nan_test), "--recipe", str(tmp_path / "r.yaml"), "--model", str(clean_run),
            "--out", str(tmp_path / "a.png")]
    code, out = mmdata_cli([*argv, "--on-error", "skip"])
    assert code == 0 and "5 samples, 1 skipped" in out, out
    code, out = mmdata_cli([*argv, "--on-error", "skip", "--json"])
    assert code == 0 and json.loads(out)["skipped_samples"] == {"corrupt audio": 1}
    code, out = mmdata_cli(argv)
    assert code == 2 and "--on-error skip" in out, out
