"""QA of `mmdata match`'s report: a test split where every caption is identical ("a photo") showed
``cos− +nan  AUC nan`` with torch / sklearn / numpy warnings on stderr and null in --json without a
reason; the table and figure did not show each pair's ``n``; a ``--probe`` run was titled "fusion concat";
``--split train`` was not warned of; a run without test pairs had ``"retrieval": {}`` with no word why."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from mmdata.train import train
from mmdata.train.matching import cosine_stats, match
from tests.train.crossmodal_data import KW, build


@pytest.fixture(scope="module")
def same_text(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("same_text")
    data = build(root, same_text=True)
    train(data, out=root / "run", **KW)
    return data, root / "run"


def test_cosine_stats_without_mismatched_pairs_says_why_and_warns_nothing() -> None:
    z = torch.nn.functional.normalize(torch.eye(3) + 0.1, dim=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = cosine_stats(z, z, same=torch.ones(3, 3, dtype=torch.bool))
    assert "all contents identical" in out["reason"]
    assert out["auc"] != out["auc"] and out["mismatched_mean"] != out["mismatched_mean"]  # NaN: undefined


def test_match_on_identical_captions(same_text: tuple[Path, Path], tmp_path: Path, mmdata_cli) -> None:  # noqa: ANN001
    data, run = same_text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = match(data, run, out=tmp_path / "m.png")
    c = r["pairs"]["image-text"]["cosine"]
    assert c["auc"] is None and c["mismatched_mean"] is None and "all contents identical" in c["reason"]
    assert r["pairs"]["image-audio"]["cosine"]["auc"] is not None
    code, out = mmdata_cli(["match", str(data), "--model", str(run), "--out", str(tmp_path / "c.png")])
    assert code == 0 and "nan" not in out.lower() and "Warning" not in out, out
    assert "image-text: cos− and AUC — no mismatched pairs: all contents identical" in out, out
    code, out = mmdata_cli(["match", str(data), "--model", str(run), "--out", str(tmp_path / "c.png"), "--json"])
    doc = json.JSONDecoder().raw_decode(out[out.index("{"):])[0]  # --json keeps warnings on stderr, after it here
    assert "all contents identical" in doc["pairs"]["image-text"]["cosine"]["reason"]


def test_match_table_shows_n_per_pair_and_warns_of_the_training_split(same_text: tuple[Path, Path], tmp_path: Path,
                                                                      mmdata_cli) -> None:  # noqa: ANN001
    data, run = same_text
    r = match(data, run, out=tmp_path / "m.png")
    assert all(e["n"] == 6 for e in r["pairs"].values()) and r["warnings"] == []
    code, out = mmdata_cli(["match", str(data), "--model", str(run), "--out", str(tmp_path / "c.png")])
    assert "pair n cos+" in out and "image-audio 6 +" in out, out
    code, out = mmdata_cli(["match", str(data), "--model", str(run), "--out", str(tmp_path / "c.png"), "--split", "train"])
    assert code == 0 and "warning: measured on the train split, which the model was trained on" in out, out
    # another dataset's train split is no training data of the model (QA: warned all the same)
    other = build(tmp_path / "other")
    assert match(other, run, split="train", out=tmp_path / "o.png")["warnings"] == []


def test_a_probe_run_is_not_titled_fusion_concat(tmp_path: Path, mmdata_cli) -> None:  # noqa: ANN001
    data = build(tmp_path / "d")
    train(data, out=tmp_path / "run", probe=True, **KW)
    code, out = mmdata_cli(["match", str(data), "--model", str(tmp_path / "run"), "--out", str(tmp_path / "m.png")])
    assert code == 0 and "linear probe on the pre-trained encoders" in out and "fusion concat" not in out, out


def test_no_test_pair_says_why_retrieval_is_empty(tmp_path: Path) -> None:
    data = build(tmp_path / "d", unpaired_test=True)
    m = train(data, out=tmp_path / "run", **KW)
    assert m["retrieval"] == {} and "image-audio: 0" in m["retrieval_reason"]
    assert any(w.startswith("no retrieval in metrics.json: no pair of [image, audio, text]") for w in m["warnings"])
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["retrieval_reason"] == m["retrieval_reason"]
