"""Regressions from the cross-modal QA pass (2026-12): contrastive pre-training without paired samples and
its option ranges, `match` / `audit-alignment` on splits without co-occurring pairs, on another dataset's
model, with unlabelled rows and CJK class names, the audit's input format and ops on absent modalities,
robustness for a modality the test split lacks, and per-split figure names."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from mmdata.errors import MMDataError
from mmdata.train.contrastive import ContrastiveModel, pretrain_encoders, pretrain_options, retrieval
from mmdata.train.model import FusionModel

PNG = b"\x89PNG\r\n\x1a\n"
HFLIP = {"seed": 0, "image": [{"op": "hflip", "p": 0.5}]}


@pytest.fixture(scope="module")
def disjoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 labelled samples (3 classes): even ones hold an image and a caption, odd ones only an audio clip,
    so image-text pairs exist and no sample has image and audio (or audio and text) together."""
    import mmdata
    from mmdata.testing import make_sample_folder

    root = tmp_path_factory.mktemp("disjoint")
    raw = make_sample_folder(root / "raw", n=30, missing=False)
    for i in range(30):
        for ext in (("flac",) if i % 2 == 0 else ("png", "txt")):
            (raw / f"{i:06d}.{ext}").unlink()
    mmdata.shard(raw, root / "ds", split="train=0.6,val=0.2,test=0.2", seed=0, progress=False)
    return root / "ds"


@pytest.fixture(scope="module")
def disjoint_run(disjoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `late` run (1 epoch, no pre-training) on all three modalities of ``disjoint``."""
    from mmdata.train import train

    out = tmp_path_factory.mktemp("disjoint_run") / "run"
    train(disjoint, fusion="late", epochs=1, seed=0, out=out, threads=1, eval_robustness=False)
    return out


@pytest.fixture(scope="module")
def image_text_ref(disjoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image-text contrastive model (1 epoch) on ``disjoint``: a model with one pair and no audio."""
    from mmdata.train.alignment import reference_model

    return reference_model(disjoint, tmp_path_factory.mktemp("itref"), modalities=("image", "text"), epochs=1)


def _copy_run(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    for png in dst.glob("*.png"):
        png.unlink()
    return dst


# 1. contrastive pre-training without paired samples -------------------------------------------------------

def test_pretraining_refuses_data_without_paired_samples(disjoint: Path, tmp_path: Path) -> None:
    from mmdata.train import train

    with pytest.raises(MMDataError, match=r"no training sample has two of \[image, audio\] together.*needs paired samples"):
        train(disjoint, modalities=["image", "audio"], epochs=1, threads=1, eval_robustness=False, out=tmp_path / "o",
              pretrain="contrastive", pretrain_epochs=1)
    assert not (tmp_path / "o" / "contrastive.pt").exists()


def test_pretraining_refuses_when_no_batch_holds_a_pair(avdigits40: Path) -> None:
    """The index has pairs, but the recipe drops audio from every sample: no batch ever holds one."""
    recipe = {"sample": [{"op": "modality_dropout", "p": 1.0, "modalities": ["audio"], "p_drop": 1.0}]}
    model = FusionModel(["image", "audio"], "concat", classes=10)
    with pytest.raises(MMDataError, match=r"no training batch .*image, audio"):
        pretrain_encoders(model, avdigits40, epochs=1, recipe=recipe, eval_split=None)


def test_pretraining_needs_two_rows_per_batch(avdigits40: Path) -> None:
    from mmdata.train import train

    model = FusionModel(["image", "text"], "concat", classes=10)
    with pytest.raises(MMDataError, match=r"batch_size=1.*>= 2"):
        pretrain_encoders(model, avdigits40, epochs=1, batch_size=1, eval_split=None)
    with pytest.raises(MMDataError, match=r"batch_size=1.*>= 2.*--batch-size"):  # the run's batch size, not overridden
        train(avdigits40, modalities=["image", "text"], epochs=1, batch_size=1, threads=1, eval_robustness=False,
              pretrain="contrastive", pretrain_epochs=1)


# 8. --pretrain-arg ranges ------------------------------------------------------------------------------------

@pytest.mark.parametrize("key,value", [("dim", "0"), ("dim", "-3"), ("lr", "-1"), ("lr", "0"), ("lr", "nan"),
                                       ("batch_size", "1"), ("temperature", "0"), ("temperature", "2")])
def test_pretrain_args_out_of_range_name_the_option(key: str, value: str) -> None:
    with pytest.raises(MMDataError, match=rf"--pretrain-arg \(pretrain_args=\) {key}={value!r}: expected"):
        pretrain_options({key: value})


def test_pretrain_arg_ranges_checked_before_training(avdigits40: Path) -> None:
    from mmdata.train import train

    with pytest.raises(MMDataError, match="--pretrain-arg \\(pretrain_args=\\) dim=0"):
        train(avdigits40, modalities=["image", "text"], epochs=1, threads=1, eval_robustness=False,
              pretrain="contrastive", pretrain_epochs=1, pretrain_args={"dim": 0})
    model = FusionModel(["image", "text"], "concat", classes=10)
    for kw in ({"dim": -3}, {"lr": -1.0}):
        with pytest.raises(MMDataError, match=f"{next(iter(kw))}="):
            pretrain_encoders(model, avdigits40, epochs=1, eval_split=None, **kw)
    assert pretrain_options({"dim": "8", "lr": "1e-3", "batch_size": "2", "temperature": "1"}) == \
        {"dim": 8, "lr": 1e-3, "batch_size": 2, "temperature": 1.0}


# 2. match / audit-alignment without co-occurring pairs -----------------------------------------------------

def test_match_errors_when_no_pair_co_occurs_and_skips_missing_pairs(disjoint: Path, disjoint_run: Path, tmp_path: Path) -> None:
    from mmdata.train import train
    from mmdata.train.matching import match

    two = tmp_path / "two"
    train(disjoint, modalities=["image", "audio"], fusion="late", epochs=1, out=two, threads=1, eval_robustness=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "Mean of empty slice"
        with pytest.raises(MMDataError, match=r"split 'test'.*image-audio"):
            match(disjoint, two, out=tmp_path / "x.png")
        r = match(disjoint, disjoint_run, out=tmp_path / "m.png")
    assert not (tmp_path / "x.png").exists()
    assert list(r["pairs"]) == ["image-text"] and r["pairs"]["image-text"]["divergence"]["n"] > 0
    assert set(r["skipped"]) == {"image-audio", "audio-text"} and "no test sample" in r["skipped"]["image-audio"]
    assert Path(r["figure"]).read_bytes()[:8] == PNG


def test_audit_errors_when_no_pair_co_occurs_and_skips_missing_pairs(disjoint: Path, tmp_path: Path) -> None:
    from mmdata.train.alignment import audit, reference_model

    torch.manual_seed(0)
    image_audio = ContrastiveModel(FusionModel(["image", "audio"], "concat", classes=3, image_channels=3, image_hw=(24, 32)))
    with pytest.raises(MMDataError, match=r"split 'test'.*image-audio"):
        audit(disjoint, HFLIP, image_audio, out=tmp_path / "a.png")
    assert not (tmp_path / "a.png").exists()
    ref = reference_model(disjoint, tmp_path / "ref", epochs=1)  # image, audio and text
    r = audit(disjoint, HFLIP, ref, out=tmp_path / "b.png")
    assert r["pairs"] == ["image-text"] and set(r["skipped"]) == {"image-audio", "audio-text"}
    assert set(r["clean"]) == {"image-text"} and all(set(o["pairs"]) == {"image-text"} for o in r["ops"])


# 3. a model trained on another dataset ---------------------------------------------------------------------

def test_match_refuses_a_model_with_other_classes(avdigits40: Path, disjoint_run: Path,
                                                  pretrained_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    from mmdata.train.matching import match

    run = _copy_run(disjoint_run, tmp_path / "a")  # 3 classes "0", "1", "2"
    with pytest.raises(MMDataError, match=r"3 classes.*10 classes"):
        match(avdigits40, run)
    assert not list(run.glob("*.png"))
    renamed = _copy_run(pretrained_run[0], tmp_path / "b")  # 10 classes, other names
    metrics = json.loads((renamed / "metrics.json").read_text())
    metrics["classes"]["names"] = [f"c{i}" for i in range(10)]
    (renamed / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(MMDataError, match=r"class names.*'c0'.*'zero'"):
        match(avdigits40, renamed)


# 4. unlabelled rows ----------------------------------------------------------------------------------------

def test_one_unlabelled_row_keeps_class_level_numbers() -> None:
    from mmdata.train.matching import cosine_stats

    g = torch.Generator().manual_seed(0)
    za = F.normalize(torch.randn(20, 8, generator=g), dim=1)
    zb = F.normalize(za + 0.3 * torch.randn(20, 8, generator=g), dim=1)
    labels = torch.arange(20) % 4
    full = cosine_stats(za, zb, labels)
    labels[3] = -1
    s = cosine_stats(za, zb, labels)
    assert "auc_other_class" in s and s["n_other_class"] == 19 and full["n_other_class"] == 20
    known = torch.arange(20) != 3
    assert s["auc_other_class"] == pytest.approx(cosine_stats(za[known], zb[known], labels[known])["auc_other_class"])
    pres = {m: torch.ones(20, dtype=torch.bool) for m in ("image", "text")}
    r = retrieval({"image": za, "text": zb}, pres, labels)["image-text"]
    assert r["n"] == 20 and r["n_class"] == 19 and set(r["class"]) == {"image->text", "text->image"}
    ref = retrieval({"image": za[known], "text": zb[known]}, {m: p[known] for m, p in pres.items()}, labels[known])["image-text"]
    assert r["class"] == ref["class"] and r["chance"]["class"] == ref["chance"]["class"]


# 5. CJK class names in the figures ---------------------------------------------------------------------------

def _match_result(names: list[str]) -> dict[str, Any]:
    one = {"n": 2, "kl_ab": 0.1, "kl_ba": 0.2, "js": 0.3, "argmax_agreement": 0.5}
    return {"split": "test", "n": 6, "fusion": "late",
            "pairs": {"image-text": {"divergence": {**one, "per_class": {n: dict(one) for n in names}}}}}


def _capture(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[Any]:
    """Replace ``module.save_png`` by one that also keeps the figure's drawn texts (and their extents)."""
    from mmdata.train import matching

    seen: list[Any] = []
    original = matching.save_png

    def save(fig: Any, path: Path, bottom: float = 0.0) -> Path:
        fig.set_dpi(matching.DPI)  # measured as saved
        fig.tight_layout(rect=(0, bottom, 1, 1))
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_window_extent")) if t.get_text()]
        # what is drawn: every axes with its title and tick labels, and the figure's own texts
        drawn = [(ax.get_title(), ax.get_tightbbox(r).bounds) for ax in fig.axes if ax.get_visible()]
        drawn += [(t.get_text(), t.get_window_extent(r).bounds) for t in [fig._suptitle, *fig.texts] if t is not None]
        seen.append((fig.bbox.bounds, [(t.get_text(), t.get_window_extent(r).bounds) for t in texts if t.get_visible()], drawn))
        return original(fig, path, bottom)

    monkeypatch.setattr(module, "save_png", save)
    return seen


def test_cjk_class_names_are_drawn_with_a_cjk_font(tmp_path: Path) -> None:
    from mmdata.augment.preview import cjk_font
    from mmdata.train.matching import plot

    if cjk_font() is None:
        pytest.skip("no CJK font installed")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = plot(_match_result(["三角形", "圆形", "正方形"]), tmp_path / "m.png")
    assert out.read_bytes()[:8] == PNG
    assert not [w for w in caught if "missing from" in str(w.message)], [str(w.message) for w in caught]


def test_cjk_class_names_without_a_font_get_a_placeholder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.train import matching

    monkeypatch.setattr(matching, "cjk_font", lambda: None)
    seen = _capture(monkeypatch, matching)
    matching.plot(_match_result(["三角形", "圆形"]), tmp_path / "m.png")
    texts = [t for t, _ in seen[0][1]]
    assert "⟦CJK ×3⟧" in texts and "⟦CJK ×2⟧" in texts and not any("三" in t for t in texts)
    assert any("no CJK font" in t for t in texts)


# 6. the audit's input format ------------------------------------------------------------------------------------

def test_audit_measures_in_the_models_input_format(avdigits40: Path, pretrained_run: tuple[Path, dict[str, Any]]) -> None:
    from mmdata.train.alignment import audit

    run, _ = pretrained_run
    plain = audit(avdigits40, HFLIP, run)
    other = {**HFLIP, "normalize": {"image": [{"op": "resize", "size": [8, 8], "side": "exact"}]}}
    with pytest.warns(UserWarning, match=r"normalize.*\bimage\b.*model's"):
        r = audit(avdigits40, other, run)
    assert r["clean"] == plain["clean"] and r["ops"] == plain["ops"]
    assert r["input_format"]["recipe_normalize_ignored"] == ["image"] and plain["input_format"]["recipe_normalize_ignored"] == []


# 7. one-pair figures and ops on a modality the model lacks ---------------------------------------------------

def test_audit_marks_ops_on_absent_modalities_and_fits_one_pair(disjoint: Path, image_text_ref: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.train import alignment

    recipe = {"seed": 0, "image": [{"op": "hflip", "p": 0.5}], "audio": [{"op": "gain", "p": 0.5}],
              "sample": [{"op": "modality_dropout", "p": 0.5, "modalities": ["audio"]}]}
    seen = _capture(monkeypatch, alignment)
    r = alignment.audit(disjoint, recipe, image_text_ref, out=tmp_path / "a.png")
    rows = {o["op"]: o for o in r["ops"]}
    assert rows["audio.gain"]["na"] == "model has no audio" and rows["audio.gain"]["pairs"] == {}
    assert rows["audio.gain"]["delta_cosine"] is None
    assert rows["sample.modality_dropout"]["na"] == "model has no audio"
    assert "na" not in rows["image.hflip"] and "delta_cosine" in rows["image.hflip"]["pairs"]["image-text"]
    json.dumps(r, allow_nan=False)
    (fw, fh), texts, drawn = seen[0][0][2:], seen[0][1], seen[0][2]
    assert any("n/a" in t for t, _ in texts)
    for text, (x0, y0, w, h) in drawn:  # nothing drawn outside the figure: no title cut off
        assert x0 >= -1 and y0 >= -1 and x0 + w <= fw + 1 and y0 + h <= fh + 1, text


def test_audit_cli_prints_na_rows(disjoint: Path, image_text_ref: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    recipe = tmp_path / "r.yaml"
    recipe.write_text("seed: 0\nimage:\n  - {op: hflip, p: 0.5}\naudio:\n  - {op: gain, p: 0.5}\n")
    res = CliRunner().invoke(app, ["audit-alignment", str(disjoint), "--recipe", str(recipe), "--model", str(image_text_ref),
                                   "--out", str(tmp_path / "a.png")])
    assert res.exit_code == 0, res.output
    assert "n/a (model has no audio)" in res.output


# 9. robustness for a modality the test split lacks -------------------------------------------------------------

def test_robustness_is_na_for_a_modality_no_test_sample_has() -> None:
    from mmdata import Sample, collate
    from mmdata.train.evaluate import evaluate

    torch.manual_seed(0)
    m = FusionModel(["image", "text"], "late", classes=3, image_channels=3).eval()
    g = torch.Generator().manual_seed(1)
    s = [Sample(f"k{i}", {"image": torch.randint(0, 256, (3, 16, 16), generator=g, dtype=torch.uint8), "label": i % 3})
         for i in range(6)]
    r = evaluate(m, [collate(s)], 3, modalities=m.mods, robustness=True)["robustness"]
    assert "text" not in r["missing"] and "text" not in r["corruption"]
    assert r["not_applicable"] == {"text": "no labelled test sample has text"}
    assert set(r["missing"]) == {"image"} and set(r["corruption"]) == {"image"}
    json.dumps(r, allow_nan=False)


# 10. one figure per split ----------------------------------------------------------------------------------------

def test_match_names_the_default_figure_per_split(avdigits40: Path, pretrained_run: tuple[Path, dict[str, Any]],
                                                  tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app
    from mmdata.train.matching import match

    run = _copy_run(pretrained_run[0], tmp_path)
    assert match(avdigits40, run)["figure"] == str(run / "match.png")
    stamp = (run / "match.png").stat().st_mtime_ns
    assert match(avdigits40, run, split="val")["figure"] == str(run / "match-val.png")
    assert (run / "match-val.png").read_bytes()[:8] == PNG and (run / "match.png").stat().st_mtime_ns == stamp
    res = CliRunner().invoke(app, ["audit-alignment", str(avdigits40), "--recipe", str(_yaml(tmp_path)), "--model", str(run),
                                   "--split", "val"])
    assert res.exit_code == 0, res.output
    assert (run / "alignment-val.png").is_file() and not (run / "alignment.png").exists()


def _yaml(tmp_path: Path) -> Path:
    p = tmp_path / "hflip.yaml"
    p.write_text("seed: 0\nimage:\n  - {op: hflip, p: 0.5}\n")
    return p


def test_train_cli_prints_robustness_na_for_a_modality_the_test_split_lacks(tmp_path: Path) -> None:
    """`mmdata train` names the modality robustness could not be measured for, and why, instead of a number."""
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    import mmdata
    from mmdata.cli.main import app
    from mmdata.testing import make_sample_folder

    raw = make_sample_folder(tmp_path / "raw", n=30, missing=False)
    split = "train=0.6,val=0.2,test=0.2"
    mmdata.shard(raw, tmp_path / "probe", split=split, seed=0, progress=False)
    rows = pq.read_table(tmp_path / "probe" / "index.parquet", columns=["key", "split"]).to_pylist()
    test_keys = [r["key"] for r in rows if r["split"] == "test"]
    assert test_keys
    for key in test_keys:  # the same keys and labels: the same split, and now no test sample has a caption
        (raw / f"{key}.txt").unlink()
    mmdata.shard(raw, tmp_path / "ds", split=split, seed=0, progress=False)
    res = CliRunner().invoke(app, ["train", str(tmp_path / "ds"), "--fusion", "late", "--epochs", "1", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "robustness -text: n/a (no labelled test sample has text)" in res.output
    assert "-image:" in res.output and "-text:" not in res.output.split("accuracy with a modality removed:")[1].splitlines()[0]


def test_match_takes_file_urls(disjoint: Path, disjoint_run: Path, tmp_path: Path) -> None:
    from mmdata.train.matching import match

    r = match(f"file://{disjoint}", f"file://{disjoint_run}", out=tmp_path / "m.png")
    assert list(r["pairs"]) == ["image-text"] and Path(r["figure"]).read_bytes()[:8] == PNG


def test_a_model_with_unsettled_batchnorm_statistics_is_warned_about(disjoint: Path) -> None:
    """User QA 2026-12-02: on 18 training samples the best epoch was 0 — one batch of BatchNorm updates — and
    the eval-mode scores measured the initial statistics (chance accuracy; 0.75 with batch statistics)."""
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    res = CliRunner().invoke(app, ["train", str(disjoint), "--fusion", "late", "--epochs", "1", "--threads", "1",
                                   "--no-robustness", "--json"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    # since QA33 the card's copies across the splits read are train warnings too (this fixture's clips repeat)
    said = [w for w in m["warnings"] if "BatchNorm" in w]
    assert len(said) == 1 and "BatchNorm statistics from only 1 training batch" in said[0], m["warnings"]
    res = CliRunner().invoke(app, ["train", str(disjoint), "--fusion", "late", "--epochs", "1", "--threads", "1",
                                   "--no-robustness"])
    assert "warning: the reported model (best epoch 1 of 1)" in " ".join(res.output.split())


# 11. an op that leaves no pair: a row with n/a, JSON null (CLI QA 2026-12-03) -----------------------------------

def test_audit_keeps_an_op_whose_pairs_all_vanished(disjoint: Path, image_text_ref: Path, tmp_path: Path) -> None:
    """`modality_dropout` of every image (p 1, p_drop 1) leaves no image-text pair: the audit printed
    NaN in --json (invalid JSON) and the table dropped the op's row without a word."""
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    recipe = tmp_path / "drop.yaml"
    recipe.write_text("seed: 0\nimage:\n  - {op: hflip, p: 0.5}\n"
                      "sample:\n  - {op: modality_dropout, p: 1, p_drop: 1, modalities: [image]}\n")
    args = ["audit-alignment", str(disjoint), "--recipe", str(recipe), "--model", str(image_text_ref),
            "--out", str(tmp_path / "a.png")]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"{c} in --json"))
    rows = {o["op"]: o for o in r["ops"]}
    assert rows["sample.modality_dropout"]["delta_cosine"] is None
    assert rows["sample.modality_dropout"]["pairs"]["image-text"]["kept"] == 0
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    line = next(ln for ln in table.stdout.splitlines() if "modality_dropout" in ln)
    assert "n/a (0 samples kept both)" in line and "0%" in line
