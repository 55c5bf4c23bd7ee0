"""Alignment audit: hflip breaks image-caption agreement on avdigits-spatial, consistent_hflip does not;
the CLI (table, --json, PNG), the ablation columns, dropped modalities, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmdata.errors import MMDataError
from mmdata.train.alignment import RECIPE_ROW, alignment_columns, audit

FLIPS = {"seed": 0, "image": [{"op": "hflip", "p": 0.5}], "sample": [{"op": "consistent_hflip", "p": 0.5}]}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def spatial_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """avdigits-spatial (30 per class) and an image-text contrastive model pre-trained on it."""
    from mmdata.datasets.spatial import build
    from mmdata.train.contrastive import pretrain_encoders
    from mmdata.train.model import FusionModel

    root = tmp_path_factory.mktemp("align")
    data = build(root / "sp", limit=30, progress=False)
    torch.manual_seed(0)
    model = FusionModel(["image", "text"], "concat", classes=10, image_hw=(32, 32))
    pre = pretrain_encoders(model, data, epochs=15, seed=0, batch_size=32)
    pre.save(root / "model" / "contrastive.pt")
    return data, root / "model"


def _row(result: dict, op: str) -> dict:
    return next(o for o in result["ops"] if o["op"] == op)


def test_hflip_drops_alignment_and_consistent_hflip_does_not(spatial_model: tuple[Path, Path]) -> None:
    data, model = spatial_model
    r = audit(data, FLIPS, model)
    assert [o["op"] for o in r["ops"]] == ["image.hflip", "sample.consistent_hflip", RECIPE_ROW]
    assert r["clean"]["image-text"]["cosine"] > 0.3  # the model learned to pair images and captions
    h = _row(r, "image.hflip")["pairs"]["image-text"]
    c = _row(r, "sample.consistent_hflip")["pairs"]["image-text"]
    # hflip: a clear, significant drop in agreement (it contradicts every left/right caption)
    assert h["delta_cosine_ci95"][1] < 0 and h["delta_cosine"] < -0.1 and h["delta_auc"] < -0.08
    # consistent_hflip: none beyond what a 180-sample model's own asymmetry gives (seeds 0-2: -0.05..+0.04,
    # against -0.23..-0.29 for hflip)
    assert abs(c["delta_cosine"]) < 0.3 * abs(h["delta_cosine"]) and abs(c["delta_auc"]) < 0.05
    assert c["delta_cosine"] - h["delta_cosine"] > 0.1 and h["kept"] == c["kept"] == 1.0
    assert h["n"] == r["n"] == 60
    both = _row(r, RECIPE_ROW)["pairs"]["image-text"]  # hflip at p=0.5: about half the damage
    assert h["delta_cosine"] < both["delta_cosine"] < 0
    assert audit(data, FLIPS, model) == r  # deterministic


def test_audit_cli_table_json_and_png(spatial_model: tuple[Path, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    data, model = spatial_model
    recipe = tmp_path / "flips.yaml"
    recipe.write_text("seed: 0\nimage:\n  - {op: hflip, p: 0.5}\nsample:\n  - {op: consistent_hflip, p: 0.5}\n")
    res = CliRunner().invoke(app, ["audit-alignment", str(data), "--recipe", str(recipe), "--model", str(model),
                                   "--out", str(tmp_path / "a.png"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ops"][0]["op"] == "image.hflip" and Path(out["figure"]).read_bytes()[:8] == PNG
    res = CliRunner().invoke(app, ["audit-alignment", str(data), "--recipe", str(recipe), "--model", str(model)])
    assert res.exit_code == 0 and "consistent_hflip" in res.output and (model / "alignment.png").is_file()
    res = CliRunner().invoke(app, ["audit-alignment", str(data), "--recipe", str(recipe), "--model", str(tmp_path)])
    assert isinstance(res.exception, MMDataError) and "contrastive.pt not found" in str(res.exception)


def test_alignment_columns_for_the_ablation_report(spatial_model: tuple[Path, Path]) -> None:
    data, model = spatial_model
    cols = alignment_columns(data, {"seed": 0, "image": [{"op": "hflip", "p": 1.0}]}, model, seed=2)
    assert set(cols) == {"align_cos_delta_image_text", "align_r1_delta_image_text", "align_auc_delta_image_text",
                         "align_cos_delta", "align_r1_delta", "align_auc_delta"}
    assert cols["align_cos_delta_image_text"] < -0.05 and cols["align_cos_delta"] == cols["align_cos_delta_image_text"]
    assert set(alignment_columns(data, None, model).values()) == {0.0}  # a baseline without augmentation
    # a dropped modality leaves its pairs out (kept < 1) instead of scoring them as disagreement
    r = audit(data, {"sample": [{"op": "modality_dropout", "p": 1.0, "modalities": ["text"], "p_drop": 0.5}]}, model)
    row = r["ops"][0]["pairs"]["image-text"]
    assert 0.2 < row["kept"] < 0.8 and abs(row["delta_cosine"]) < 1e-6
    with pytest.raises(MMDataError, match="no augmentation ops"):
        audit(data, {"seed": 0}, model)


def test_reference_model_for_audits_and_ablations(spatial_model: tuple[Path, Path], tmp_path: Path) -> None:
    from mmdata.train.alignment import reference_model
    from mmdata.train.contrastive import load

    data, _ = spatial_model
    ref = reference_model(data, tmp_path / "ref", modalities=["image", "text"], epochs=1)
    ckpt = ref / "contrastive.pt"
    stamp = ckpt.stat().st_mtime_ns
    again = reference_model(data, tmp_path / "ref", modalities=["image", "text"], epochs=1)
    assert again == ref and ckpt.stat().st_mtime_ns == stamp  # kept (the same dataset and options)
    net = load(ref)
    assert net.mods == ["image", "text"] and net.config["image_hw"] == [32, 32] and net.config["epochs"] == 1
    cols = alignment_columns(data, FLIPS, ref, seed=0)
    assert set(cols) >= {"align_cos_delta", "align_r1_delta", "align_auc_delta"}


def test_captions_masked_to_nothing_lose_agreement_never_gain_it(spatial_model: tuple[Path, Path]) -> None:
    """QA: an op that made every caption the same (masked down to nothing) read as a large gain (ΔR@1 +60
    points, ΔAUC NaN): the augmented side took its identical copies from the augmented batch, so every
    emptied caption was every image's partner. The partners are the clean data's, on both sides."""
    data, model = spatial_model
    empty = {"seed": 0, "text": [{"op": "word_delete", "p": 1.0, "p_word": 1.0, "keep_at_least": 0},
                                 {"op": "token_mask", "p": 1.0, "p_token": 1.0}]}
    r = audit(data, empty, model)
    for op in ("text.word_delete", "text.token_mask", RECIPE_ROW):
        p = _row(r, op)["pairs"]["image-text"]
        assert p["delta_R@1"] <= 0 and p["R@1"] <= p["R@1_clean"], (op, p)
        assert p["delta_auc"] == p["delta_auc"] and p["delta_auc"] < 0, (op, p)  # defined, and a loss
    # a recipe that changes nothing (its row as written: hflip never drawn) changes no score
    same = audit(data, {"seed": 0, "image": [{"op": "hflip", "p": 0.0}]}, model)
    p = _row(same, RECIPE_ROW)["pairs"]["image-text"]
    assert p["delta_R@1"] == 0 and p["delta_auc"] == 0 and p["delta_cosine"] == 0


def test_audit_names_the_fields_it_does_not_measure(spatial_model: tuple[Path, Path]) -> None:
    """QA39 lipreading #3: a stored field the model does not measure (a (T, H, W) video beside audio) is named
    (warned of, and ``unmeasured_fields`` in the result): an op desyncing it is not rated by the audit."""
    from mmdata.shards.index import dataset_fields, load_card

    data, model = spatial_model
    others = [f for f in dataset_fields(load_card(data)) if f not in ("image", "audio", "text", "label", "json", "cls")]
    with pytest.warns(UserWarning, match="not measured") if others else _no_warning():
        r = audit(data, FLIPS, model)
    assert r["measured_fields"] == ["image", "text"]
    assert r["unmeasured_fields"] == others


def _no_warning():
    import contextlib
    import warnings

    @contextlib.contextmanager
    def ctx():
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            yield
    return ctx()


def test_unmeasured_lists_a_video_array_beside_audio(tmp_path: Path) -> None:
    """QA39 lipreading #3: a dataset with a ``.npy`` video beside audio and text: the video is named as not
    measured by an audio-text model (a standard modality it lacks is not: its ops get n/a rows)."""
    import numpy as np
    import soundfile as sf

    import mmdata
    from mmdata.train.alignment import _unmeasured

    raw = tmp_path / "raw" / "a"
    raw.mkdir(parents=True)
    for i in range(3):
        sf.write(raw / f"u{i}.wav", np.zeros(1600, np.float32), 16000)
        (raw / f"u{i}.txt").write_text("about", encoding="utf-8")
        np.save(raw / f"u{i}.video.npy", np.zeros((5, 8, 8), np.uint8))
    mmdata.shard(str(tmp_path / "raw"), str(tmp_path / "ds"), split={"train": 1.0}, progress=False)
    data = tmp_path / "ds"
    assert _unmeasured(data, ["audio", "text"]) == ["video"]
    assert _unmeasured(data, ["text"]) == ["video"]
    assert _unmeasured(tmp_path / "nowhere", ["audio"]) == []
