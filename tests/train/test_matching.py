"""Modality matching: cosine matched vs mismatched (AUC), KL / JS of per-modality predictions, the PNG, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from mmdata.errors import MMDataError
from mmdata.train.matching import cosine_stats, divergences, js_bits, kl_bits, match

PNG = b"\x89PNG\r\n\x1a\n"


def test_cosine_stats_auc_and_other_class() -> None:
    g = torch.Generator().manual_seed(0)
    za = F.normalize(torch.randn(50, 16, generator=g), dim=1)
    near = F.normalize(za + 0.3 * torch.randn(50, 16, generator=g), dim=1)
    s = cosine_stats(za, near, torch.arange(50) % 5)
    assert s["auc"] > 0.95 and s["matched_mean"] > s["mismatched_mean"]
    assert s["n"] == 50 and 0 <= s["auc_other_class"] <= 1 and "mismatched_other_class_mean" in s
    unrelated = cosine_stats(za, F.normalize(torch.randn(50, 16, generator=g), dim=1))
    assert abs(unrelated["auc"] - 0.5) < 0.15 and "auc_other_class" not in unrelated


def test_kl_and_js_in_bits() -> None:
    p = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    q = torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.5, 0.3, 0.2]])
    js = js_bits(p, q)
    assert js[0] == pytest.approx(0.0, abs=1e-9) and js[1] == pytest.approx(1.0) and 0 < js[2] < 1
    assert torch.allclose(js, js_bits(q, p))  # symmetric
    assert kl_bits(p, q)[2] == pytest.approx(float(0.2 * torch.log2(torch.tensor(0.4)) + 0.5 * torch.log2(torch.tensor(2.5))))
    assert kl_bits(p, q)[1] > 30  # confident and wrong: KL is unbounded (here capped by the 1e-12 floor)


def test_divergences_per_pair_and_class() -> None:
    probs = {"image": torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]), "text": torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.5, 0.5]])}
    present = {"image": torch.tensor([True, True, True]), "text": torch.tensor([True, True, False])}
    d = divergences(probs, present, torch.tensor([0, 1, 1]), ["image", "text"], ["zero", "one"])["image-text"]
    assert d["n"] == 2 and d["argmax_agreement"] == 0.5  # the row without text is left out
    assert d["per_class"]["zero"]["js"] == pytest.approx(0.0, abs=1e-9) and d["per_class"]["one"]["js"] > 0.1
    assert d["js"] == pytest.approx((d["per_class"]["zero"]["js"] + d["per_class"]["one"]["js"]) / 2)


def test_match_on_a_pretrained_run(avdigits40: Path, pretrained_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    run, _ = pretrained_run
    r = match(avdigits40, run, out=tmp_path / "m.png")
    assert set(r["pairs"]) == {"image-audio", "image-text", "audio-text"} and r["embedding"].endswith("contrastive.pt")
    for name, e in r["pairs"].items():
        c, d = e["cosine"], e["divergence"]
        assert c["auc"] > 0.5 and c["matched_mean"] > c["mismatched_mean"], name  # matched pairs agree more
        assert 0 <= d["js"] <= 1 and d["kl_ab"] >= 0 and d["kl_ba"] >= 0 and len(d["per_class"]) == 10
    assert r["overall"]["auc"] > 0.6
    assert Path(r["figure"]).read_bytes()[:8] == PNG
    json.dumps(r)  # the result is plain JSON


def test_match_without_embedding_and_errors(avdigits40: Path, tmp_path: Path) -> None:
    from mmdata.train import train

    train(avdigits40, fusion="two_tower", epochs=1, seed=0, out=tmp_path / "run", threads=1, eval_robustness=False,
          fusion_args={"interaction": "dot"})
    r = match(avdigits40, tmp_path / "run", split="val")
    assert r["embedding"] is None and all("cosine" not in e and "divergence" in e for e in r["pairs"].values())
    assert "auc" not in r["overall"] and (tmp_path / "run" / "match-val.png").is_file()  # one figure per split
    with pytest.raises(MMDataError, match="metrics.json not found"):
        match(avdigits40, tmp_path / "nowhere")
    train(avdigits40, modalities=["text"], epochs=1, out=tmp_path / "uni", threads=1, eval_robustness=False)
    with pytest.raises(MMDataError, match="matching needs two"):
        match(avdigits40, tmp_path / "uni")


def test_match_cli(avdigits40: Path, pretrained_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    run, _ = pretrained_run
    res = CliRunner().invoke(app, ["match", str(avdigits40), "--model", str(run), "--out", str(tmp_path / "a.png"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["pairs"]["image-audio"]["cosine"]["auc"] > 0.5
    res = CliRunner().invoke(app, ["match", str(avdigits40), "--model", str(run), "--out", str(tmp_path / "b.png")])
    assert res.exit_code == 0 and "image-audio" in res.output and (tmp_path / "b.png").is_file()
