"""QA28 deploy: a trained run loads again (the architecture it was built with), carries its complete
evaluation transform, refuses a batch in another format, predicts on raw samples (every run kind); a
rerun removes the previous model's figures; collate names a clip without a sample rate."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import mmdata
from mmdata.errors import MMDataError
from mmdata.train import train
from mmdata.train.matching import load_run, match
from mmdata.train import model as model_module
from mmdata.train.model import FusionModel

FAST = {"epochs": 1, "seed": 0, "threads": 1, "eval_robustness": False, "batch_size": 16}


@pytest.fixture(scope="module")
def run_a(avdigits4: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deploy") / "a"
    train(avdigits4, out=out, **FAST)
    return out


def _test_split(data: Path) -> dict[str, dict[str, bytes]]:
    mem: dict[str, dict[str, bytes]] = {}
    for tar in sorted(data.glob("test-*.tar")):
        with tarfile.open(tar) as t:
            for ti in t:
                k, ext = ti.name.split(".", 1)
                mem.setdefault(k, {})[ext] = t.extractfile(ti).read()  # type: ignore[union-attr]
    return mem


def test_recipe_resize_run_loads_again(avdigits4: Path, tmp_path: Path) -> None:
    """#1: a recipe's normalize.image resizing to 32 (the network is built at the derived 16): load_run /
    match / load_model rebuild it from metrics.json["model"]."""
    rec = {"normalize": {"image": [{"op": "to_gray"}, {"op": "resize", "size": 32}]}}
    m = train(avdigits4, out=tmp_path / "r32", recipe=rec, **FAST)
    assert m["model"]["image_hw"] == [16, 16] and m["inputs"]["image_size"] == [32, 32]
    model, _ = load_run(tmp_path / "r32")
    assert model.image_hw == (16, 16)
    assert match(avdigits4, tmp_path / "r32", out=tmp_path / "m.png")["n"] > 0
    assert len(model_module.load_model(tmp_path / "r32").predict([{"text": "one"}])) == 1


def test_messy_folder_recipe_run_loads_again(messy: Path, tmp_path: Path) -> None:
    """#1: recipes/messy_folder.yaml (normalize to 64x64) on a messy folder whose derived size is 32."""
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "messy_folder.yaml"
    m = train(messy, out=tmp_path / "mf", recipe=str(recipe), **FAST)
    assert m["model"]["image_hw"] != m["inputs"]["image_size"]  # the case that did not load
    model, _ = load_run(tmp_path / "mf")
    assert list(model.image_hw) == m["model"]["image_hw"]


def test_misfit_error_does_not_claim_a_dataset(run_a: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    met = json.loads((run_a / "metrics.json").read_text())
    met["model"]["d"] = 32
    (bad / "metrics.json").write_text(json.dumps(met))
    (bad / "model.pt").write_bytes((run_a / "model.pt").read_bytes())
    with pytest.raises(MMDataError, match="does not fit") as exc:
        load_run(bad)
    assert "on this dataset" not in str(exc.value)


def test_old_metrics_without_model_record_still_load(run_a: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    met = json.loads((run_a / "metrics.json").read_text())
    del met["model"], met["eval_normalize"]
    (old / "metrics.json").write_text(json.dumps(met))
    (old / "model.pt").write_bytes((run_a / "model.pt").read_bytes())
    model, _ = load_run(old)
    assert model.sample_rate == 8000 and model.image_hw == (16, 16)
    assert model_module.load_model(old).normalize == json.loads((run_a / "metrics.json").read_text())["eval_normalize"]


def _shifted(files: dict[str, bytes]) -> dict[str, Any]:
    """The same content as 32x32 RGB PNG (each pixel repeated 2x2) and a 16 kHz WAV."""
    import soundfile as sf
    from PIL import Image

    from mmdata.codecs import decode_audio

    im = Image.open(io.BytesIO(files["png"])).convert("RGB")
    im = im.resize((im.width * 2, im.height * 2), Image.NEAREST)
    pb = io.BytesIO()
    im.save(pb, "PNG")
    wave, sr = decode_audio(files["flac"])
    up = mmdata.load_recipe({"normalize": {"audio": [{"op": "resample", "rate": 2 * sr}]}}).normalize(
        mmdata.Sample("x", {"audio": wave}, sample_rate=sr))
    wb = io.BytesIO()
    sf.write(wb, up.fields["audio"].numpy().T, 2 * sr, format="WAV", subtype="FLOAT")
    return {"image": pb.getvalue(), "audio": wb.getvalue(), "text": files.get("txt")}


def test_eval_transform_brings_another_format_to_the_models(avdigits4: Path, run_a: Path) -> None:
    """#2 / #4: metrics.json's eval_normalize is complete; predict() on 32x32 RGB / 16 kHz input of the same
    content gives the predictions of the 16x16 grey / 8 kHz originals (image exact: 2x2 area means; audio: the
    round trip 8 -> 16 -> 8 kHz is close, not exact)."""
    met = json.loads((run_a / "metrics.json").read_text())
    ops = {m: [o["op"] for o in v] for m, v in met["eval_normalize"].items()}
    assert ops["image"] == ["to_gray", "resize", "center_crop"] and ops["audio"][-2:] == ["resample", "pad_trim"]
    tm = model_module.load_model(run_a)
    mem = _test_split(avdigits4)
    keys = sorted(mem)
    orig = [{"key": k, "image": mem[k]["png"], "audio": mem[k]["flac"], "text": mem[k].get("txt")} for k in keys]
    p_orig = tm.predict(orig)
    # the originals through predict() give predictions.parquet's probabilities
    import pyarrow.parquet as pq

    ref = {r["key"]: r["probs"] for r in pq.read_table(run_a / "predictions.parquet").to_pylist() if r["split"] == "test"}
    for r in p_orig:
        assert np.allclose(list(r["probs"].values()), ref[r["key"]], atol=1e-5), r["key"]
    p_shift = tm.predict([{"key": k, **_shifted(mem[k])} for k in keys])
    agree = np.mean([a["pred"] == b["pred"] for a, b in zip(p_orig, p_shift)])
    diff = max(abs(a["probs"][n] - b["probs"][n]) for a, b in zip(p_orig, p_shift) for n in a["probs"])
    assert agree == 1.0 and diff < 0.02, (agree, diff)


def test_model_refuses_another_format(run_a: Path) -> None:
    """#3: no rate, another rate, another channel count: errors naming expected vs got."""
    model, _ = load_run(run_a)
    a = torch.zeros(1, 6400)
    img = torch.zeros(1, 16, 16, dtype=torch.uint8)
    with pytest.raises(MMDataError, match="no sample rate"):
        model(mmdata.collate([mmdata.Sample("x", {"image": img, "audio": a})]))
    with pytest.raises(MMDataError, match="16000 Hz but the model takes 8000 Hz"):
        model(mmdata.collate([mmdata.Sample("x", {"image": img, "audio": a}, sample_rate=16000)]))
    with pytest.raises(MMDataError, match="have 3 channels but the model takes 1"):
        model(mmdata.collate([mmdata.Sample("x", {"image": torch.zeros(3, 16, 16, dtype=torch.uint8)})]))
    out = model(mmdata.collate([mmdata.Sample("x", {"image": img, "audio": a}, sample_rate=8000)]))
    assert out.shape == (1, 10)


def test_architecture_round_trip_and_constants() -> None:
    m = FusionModel(["image", "audio", "text"], "early", classes=4, image_hw=(24, 24), sample_rate=16000)
    a = m.architecture()
    json.dumps(a)
    assert a["constants"]["audio"]["n_mels"] == 24 and a["constants"]["text"]["vocab_size"] == 4096
    from mmdata.train.model import build_from_metrics

    m2 = build_from_metrics({"model": a, "config": {}}, "x")
    assert m2.image_hw == (24, 24) and m2.sample_rate == 16000
    m2.load_state_dict(m.state_dict())


def _reg_dataset(root: Path) -> Path:
    import soundfile as sf
    from PIL import Image

    raw = root / "raw"
    raw.mkdir()
    rows = []
    for i in range(30):
        v = float(i % 5)
        Image.fromarray(np.full((16, 16), int(v * 50), "uint8"), "L").save(raw / f"{i}.png")
        sf.write(raw / f"{i}.wav", (np.sin(np.arange(2000) * (v + 1) / 50) * 0.3).astype("float32"), 8000)
        rows.append({"key": f"s{i}", "image": f"{i}.png", "audio": f"{i}.wav", "text": f"value {int(v)}", "rating": v,
                     "tags": ["odd"] if i % 2 else ["even", "x"]})
    (raw / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    mmdata.shard(raw / "m.jsonl", root / "ds", meta=["rating", "tags"], split="train=0.6,val=0.2,test=0.2", seed=0,
                 progress=False)
    return root / "ds"


@pytest.mark.parametrize("target,kind", [("rating", "regression"), ("tags", "multilabel")])
def test_load_model_predicts_target_runs(tmp_path: Path, target: str, kind: str) -> None:
    """#4: regression and multi-label runs load and predict (load_run refused them with a matching message)."""
    ds = _reg_dataset(tmp_path)
    train(ds, out=tmp_path / "r", target=target, **FAST)
    tm = model_module.load_model(tmp_path / "r")
    assert tm.kind == kind
    rows = tm.predict([{"image": (tmp_path / "raw" / "3.png").read_bytes(), "text": "value 3"}])
    if kind == "regression":
        assert isinstance(rows[0]["value"], float) and rows[0]["target"] == "rating"
    else:
        assert set(rows[0]["probs"]) == {"even", "odd", "x"} and set(rows[0]["labels"]) <= {"even", "odd", "x"}


def test_rerun_removes_previous_model_figures(run_a: Path, avdigits4: Path, tmp_path: Path) -> None:
    """#7: match.png / alignment.png of the previous model go with it."""
    out = tmp_path / "a7"
    train(avdigits4, out=out, **FAST)
    match(avdigits4, out)
    (out / "alignment.png").write_bytes(b"x")
    (out / "match-val.png").write_bytes(b"x")
    (out / "notes.png").write_bytes(b"x")
    (out / "alignment-figure3-for-paper.png").write_bytes(b"x")  # the user's own, named alike (review of QA28)
    train(avdigits4, out=out, **{**FAST, "seed": 5})
    assert sorted(p.name for p in out.iterdir()) == ["alignment-figure3-for-paper.png", "metrics.json", "model.pt",
                                                     "notes.png", "predictions.parquet"]


def test_collate_names_audio_without_a_rate() -> None:
    """#6: no "None Hz", no resample advice."""
    a = torch.zeros(1, 800)
    with pytest.raises(ValueError) as exc:
        mmdata.collate([mmdata.Sample("x", {"audio": a}, sample_rate=8000), mmdata.Sample("y", {"audio": a})])
    msg = str(exc.value)
    assert "['y'] holds audio but no sample_rate" in msg and "None Hz" not in msg and "resample" not in msg


def test_contrastive_checkpoint_records_the_eval_transform(avdigits4: Path, tmp_path: Path) -> None:
    """#2: contrastive.pt (what audit-alignment reads the model's format from) carries eval_normalize too."""
    from mmdata.train.contrastive import load

    m = train(avdigits4, out=tmp_path / "p", pretrain="contrastive", pretrain_epochs=1, **FAST)
    assert load(tmp_path / "p").config["eval_normalize"] == m["eval_normalize"]


def test_load_model_warns_when_the_preprocessing_constants_changed(run_a: Path, tmp_path: Path) -> None:
    """#4: metrics.json's constants are compared with the running code's (a changed n_mels is said)."""
    other = tmp_path / "o"
    other.mkdir()
    met = json.loads((run_a / "metrics.json").read_text())
    met["model"]["constants"]["audio"]["n_mels"] = 40
    (other / "metrics.json").write_text(json.dumps(met))
    (other / "model.pt").write_bytes((run_a / "model.pt").read_bytes())
    with pytest.warns(UserWarning, match=r"audio\.n_mels"):
        model_module.load_model(other)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model_module.load_model(run_a)
