"""QA33 model review: ``mmdata match --model RUN/model.pt`` (and RUN/contrastive.pt of an encoder-only run) take the
run's folder; the encoder-only message belongs to load_model; the caption-path warning names the caller's line
whichever entry point was used; the recorded token-id scheme carries a fingerprint that a change of the id rules
changes; an ambiguous short 2-D wave is refused naming both readings; numpy arrays with negative strides are taken."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mmdata.augment.contract import InputError
from mmdata.errors import MMDataError
from mmdata.train import train
from mmdata.train.matching import match
from mmdata.train.model import FusionModel, TrainedModel, changed_constants, load_model, preprocessing_constants

FAST = {"seed": 0, "threads": 1, "eval_robustness": False, "batch_size": 16, "pretrain": "contrastive",
        "pretrain_epochs": 1}
RATE = 8000
NORMALIZE = {"audio": [{"op": "to_mono"}, {"op": "resample", "rate": RATE}, {"op": "pad_trim", "seconds": 0.25}],
             "image": [{"op": "to_rgb"}, {"op": "resize", "size": 16, "side": "shorter"},
                       {"op": "center_crop", "size": [16, 16]}],
             "text": [{"op": "max_tokens", "n": 16}]}


@pytest.fixture(scope="module")
def runs(avdigits4: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(pc0: encoders only, `--pretrain contrastive --epochs 0`; pc1: the same with one epoch of fine-tuning)."""
    root = tmp_path_factory.mktemp("qa33runs")
    train(avdigits4, out=root / "pc0", epochs=0, **FAST)
    train(avdigits4, out=root / "pc1", epochs=1, **FAST)
    return root / "pc0", root / "pc1"


@pytest.fixture(scope="module")
def tm() -> TrainedModel:
    torch.manual_seed(0)
    m = FusionModel(["image", "audio", "text"], "concat", classes=3, d=8, image_channels=3, image_hw=(16, 16),
                    sample_rate=RATE)
    met = {"config": {"modalities": list(m.mods), "fusion": "concat"}, "model": m.architecture(),
           "classes": {"num_classes": 3, "names": ["a", "b", "c"]}, "eval_normalize": NORMALIZE}
    return TrainedModel(m, met, "runs/x")


# ---- review #1 / #2: match given a file of the run ---------------------------------------------------------------

def test_match_takes_a_file_of_the_run_as_its_folder(avdigits4: Path, runs: tuple[Path, Path]) -> None:
    pc0, pc1 = runs
    want = match(avdigits4, pc1)
    for f in ("model.pt", "metrics.json", "contrastive.pt"):
        r = match(avdigits4, pc1 / f)
        assert r["model"] == str(pc1) and r["embedding"] == str(pc1 / "contrastive.pt")  # cosines not lost
        assert r["pairs"] == want["pairs"] and Path(r["figure"]).parent == pc1
    for f in ("contrastive.pt", "metrics.json"):  # the encoder-only run: as its folder is
        r = match(avdigits4, pc0 / f)
        assert r["fusion"] is None and r["embedding"] == str(pc0 / "contrastive.pt") and Path(r["figure"]).parent == pc0


def test_match_cli_with_a_run_file(avdigits4: Path, runs: tuple[Path, Path]) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    pc0, pc1 = runs
    for f in (pc1 / "model.pt", pc0 / "contrastive.pt"):
        res = CliRunner().invoke(app, ["match", str(avdigits4), "--model", str(f), "--json"])
        assert res.exit_code == 0, res.output
        assert Path(json.loads(res.stdout)["figure"]).parent == f.parent


def test_the_encoder_only_message_is_load_models(runs: tuple[Path, Path]) -> None:
    from mmdata.train.matching import load_run

    pc0, _ = runs
    with pytest.raises(MMDataError, match=r"pre-trained encoders only.*--epochs N.*mmdata match") as exc:
        load_model(pc0 / "contrastive.pt")
    assert "not found" not in str(exc.value)
    with pytest.raises(MMDataError) as exc:  # an audit's classifier: not told to use `mmdata match`
        load_run(pc0)
    assert "mmdata match" not in str(exc.value) and "no classifier" in str(exc.value)


# ---- review #6: the caption-path warning names the caller's line -------------------------------------------------

def test_the_caption_path_warning_names_the_callers_line(tm: TrainedModel, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cap.txt").write_text("three")
    monkeypatch.chdir(tmp_path)
    calls = {"sample": lambda: tm.sample({"text": "cap.txt"}), "logits": lambda: tm.logits([{"text": "cap.txt"}]),
             "predict": lambda: tm.predict([{"text": "cap.txt"}], batch_size=1)}
    for name, call in calls.items():
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            call()
        w = [w for w in got if "existing .txt file" in str(w.message)]
        assert len(w) == 1 and w[0].filename == __file__, (name, [(x.filename, x.lineno) for x in w])


# ---- review #4: a fingerprint of the id rules --------------------------------------------------------------------

def test_the_id_rules_fingerprint_is_compared_when_recorded() -> None:
    now = preprocessing_constants()
    fp = now["text"]["ids_fingerprint"]
    assert isinstance(fp, str) and len(fp) == 8 and fp == preprocessing_constants()["text"]["ids_fingerprint"]
    other = {"model": {"constants": {**now, "text": {**now["text"], "ids_fingerprint": "00000000"}}}}
    assert changed_constants(other) == [f"text.ids_fingerprint: '00000000' in the run, {fp!r} here"]
    older = {"model": {"constants": {**now, "text": {k: v for k, v in now["text"].items() if k != "ids_fingerprint"}}}}
    assert changed_constants(older) == []  # a run from before the fingerprint: nothing to compare with


# ---- review #9: ambiguous short 2-D waves, negative strides ---------------------------------------------------------

def test_a_short_2d_wave_with_more_rows_than_columns_is_refused_naming_both_readings(tm: TrainedModel) -> None:
    with pytest.raises(InputError, match=r"numpy float64 \(200, 2\).*200 frames of 2 channels.*200 channels of 2 "
                                         r"frames.*\.T"):
        tm.sample({"audio": (np.zeros((200, 2)), 16000)})
    tm.sample({"audio": (np.zeros((256, 2)), 16000)})  # sf.read's layout: one reading only
    tm.sample({"audio": (np.zeros((2, 200)), 16000)})  # (channels, time)


def test_numpy_arrays_with_negative_strides_are_taken(tm: TrainedModel) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    got = tm.sample({"image": np.fliplr(a)}).fields["image"]
    assert torch.equal(got, tm.sample({"image": np.ascontiguousarray(np.fliplr(a))}).fields["image"])
    w = rng.standard_normal((1, 4000)).astype(np.float32) * 0.1
    got = tm.sample({"audio": (w[:, ::-1], RATE)}).fields["audio"]
    assert torch.equal(got, tm.sample({"audio": (np.ascontiguousarray(w[:, ::-1]), RATE)}).fields["audio"])


# ---- review #8: docsread #3 end to end (the trainer records config.plugins) ---------------------------------------


PLUGIN = '''
from mmdata.train.fusions import ConcatFusion, register


@register("qa33_sum_e2e")
class Qa33SumE2e(ConcatFusion):
    """concat under another name."""
'''


def test_a_plugin_fusion_run_trained_with_plugins_names_its_module(restore_fusions: None, avdigits4: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from mmdata import plugins
    from mmdata.train.fusions import FUSIONS

    (tmp_path / "qa33_plug_e2e.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "run"
    train(avdigits4, out=out, fusion="qa33_sum_e2e", plugins=["qa33_plug_e2e"], epochs=1,
          **{k: v for k, v in FAST.items() if not k.startswith("pretrain")})
    want = load_model(out).predict([{"text": "three"}])
    # a fresh process: the plugin not imported (as `mmdata evaluate` / a service would start)
    # plain deletes: restore_fusions puts the registry back after the test (monkeypatch would re-add the fusion)
    del FUSIONS["qa33_sum_e2e"], sys.modules["qa33_plug_e2e"], plugins._LOADED["qa33_plug_e2e"]
    with pytest.raises(MMDataError, match=r"fusion 'qa33_sum_e2e' is not a built-in.*from plugin module qa33_plug_e2e "
                                          r".*--plugin qa33_plug_e2e.*plugins=\['qa33_plug_e2e'\]"):
        load_model(out / "model.pt")
    assert load_model(out, plugins=["qa33_plug_e2e"]).predict([{"text": "three"}]) == want
