"""QA29 service: ``load_model(DIR).predict`` as a service calls it — integer PCM audio, requests with no usable
input, the loader's JPEG decode, one error type naming the sample and field, NaN audio, a damaged run folder,
caption bytes, one dict / a generator. A tiny untrained model stands in for a run (no training needed)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from mmdata.augment.contract import InputError
from mmdata.errors import MMDataError
from mmdata.train.model import FusionModel, TrainedModel, load_model

RATE = 8000
NORMALIZE = {"image": [{"op": "to_rgb"}, {"op": "resize", "size": 16, "side": "shorter"}, {"op": "center_crop", "size": [16, 16]}],
             "audio": [{"op": "to_mono"}, {"op": "resample", "rate": RATE}, {"op": "pad_trim", "seconds": 0.25}],
             "text": [{"op": "max_tokens", "n": 16}]}


def _metrics(model: FusionModel) -> dict[str, Any]:
    return {"config": {"modalities": list(model.mods), "fusion": "concat"}, "model": model.architecture(),
            "classes": {"num_classes": 3, "names": ["a", "b", "c"]},
            "eval_normalize": {m: v for m, v in NORMALIZE.items() if m in model.mods}}


def _tm(mods: tuple[str, ...] = ("image", "audio", "text")) -> TrainedModel:
    torch.manual_seed(0)
    m = FusionModel(list(mods), "concat", classes=3, d=8, image_channels=3, image_hw=(16, 16),
                    sample_rate=RATE if "audio" in mods else None)
    return TrainedModel(m, _metrics(m), "runs/x")


@pytest.fixture(scope="module")
def tm() -> TrainedModel:
    return _tm()


def _wav(seconds: float = 0.25, subtype: str = "PCM_16") -> bytes:
    x = (np.sin(np.arange(int(RATE * seconds)) / 3.0) * 0.4).astype(np.float32)
    b = io.BytesIO()
    sf.write(b, x, RATE, subtype=subtype, format="WAV")
    return b.getvalue()


def _jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    b = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(b, "JPEG", quality=90)
    return b.getvalue()


# ---- #3: integer PCM -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["int16", "int32"])
def test_integer_pcm_is_scaled_as_soundfile_reads_it(tm: TrainedModel, dtype: str) -> None:
    b = _wav()
    f, sr = sf.read(io.BytesIO(b), dtype="float32", always_2d=True)
    i, _ = sf.read(io.BytesIO(b), dtype=dtype, always_2d=True)
    as_float = tm.sample({"audio": (f.T, sr)}).fields["audio"]
    as_int = tm.sample({"audio": (i.T, sr)}).fields["audio"]
    assert as_int.abs().max() <= 1.0
    assert torch.allclose(as_int, as_float, atol=1e-6)
    assert torch.allclose(as_int, tm.sample({"audio": b}).fields["audio"], atol=1e-6)
    torch_int = tm.sample({"audio": (torch.from_numpy(np.ascontiguousarray(i.T)), sr)}).fields["audio"]
    assert torch.equal(torch_int, as_int)


def test_uint8_and_unscalable_integer_waves(tm: TrainedModel) -> None:
    u8 = np.array([[0, 128, 255] * 400], np.uint8)
    got = tm.sample({"audio": (u8, RATE)}).fields["audio"]
    assert got.min() >= -1.0 and got.max() <= 1.0
    with pytest.raises(InputError, match=r"int64.*int16 / 32768"):
        tm.sample({"audio": (np.zeros((1, 800), np.int64), RATE)})


def test_scipy_rate_data_order_is_refused_with_the_fix(tm: TrainedModel) -> None:
    data = np.zeros(800, np.int16)
    with pytest.raises(InputError, match=r"\(sample_rate, wave\).*scipy.*np.atleast_2d\(data.T\), rate"):
        tm.predict([{"key": "req-3", "audio": (RATE, data)}])


# ---- #1: no usable input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [{}, {"key": "req-1", "image": None, "audio": None, "text": None}])
def test_a_request_without_input_is_refused(tm: TrainedModel, raw: dict[str, Any]) -> None:
    with pytest.raises(InputError, match=r"holds none of the model's inputs \['image', 'audio', 'text'\]"):
        tm.predict([raw])


def test_unknown_keys_are_refused_naming_the_accepted(tm: TrainedModel) -> None:
    with pytest.raises(InputError, match=r"'req-2': unknown keys \['Audio', 'caption', 'imgae'\]; a sample's keys are "
                                         r"\['key', 'image', 'audio', 'text'\]"):
        tm.predict([{"key": "req-2", "imgae": _jpeg(), "Audio": _wav(), "caption": "a red circle"}])


def test_a_unimodal_model_refuses_only_other_modalities() -> None:
    aud = _tm(("audio",))
    with pytest.raises(InputError, match=r"none of the model's inputs \['audio'\] \(given: \['image', 'text'\]\)"):
        aud.predict([{"image": _jpeg(), "text": "a red circle"}])
    assert len(aud.predict([{"image": _jpeg(), "audio": _wav()}])) == 1  # a full sample: the model's part is used


# ---- #4: the loader's JPEG decode -----------------------------------------------------------------------------

def test_jpeg_is_decoded_as_the_eval_loader_decodes_it(tm: TrainedModel) -> None:
    """The loader decodes with image_max_size=recipe.image_decode_hint() (DCT-scaled JPEG); predict did not."""
    from mmdata.codecs import decode_image
    from mmdata.types import Sample

    jpg = _jpeg((64, 48))
    hint = tm._recipe.image_decode_hint()
    assert hint == (16, 16)
    loader = tm._recipe.normalize(Sample("k", {"image": decode_image(jpg, hint)})).fields["image"]
    full = tm._recipe.normalize(Sample("k", {"image": decode_image(jpg)})).fields["image"]
    assert not torch.equal(loader, full)  # the case that differed
    assert torch.equal(tm.sample({"image": jpg}).fields["image"], loader)


# ---- #2: one error type naming the sample, the field and what is accepted -----------------------------------

def test_paths_pil_images_and_file_objects_are_taken(tm: TrainedModel, tmp_path: Path) -> None:
    from PIL import Image

    jpg, wav = _jpeg(), _wav()
    (tmp_path / "a.jpg").write_bytes(jpg)
    (tmp_path / "a.wav").write_bytes(wav)
    want = tm.predict([{"image": jpg, "audio": wav, "text": "x"}])[0]["probs"]
    for image, audio in [(str(tmp_path / "a.jpg"), tmp_path / "a.wav"), (io.BytesIO(jpg), io.BytesIO(wav))]:
        got = tm.predict([{"image": image, "audio": audio, "text": "x"}])[0]["probs"]
        assert got == pytest.approx(want, abs=1e-6)
    png = io.BytesIO()
    Image.open(io.BytesIO(jpg)).save(png, "PNG")
    pil = tm.sample({"image": Image.open(io.BytesIO(png.getvalue()))}).fields["image"]
    assert torch.equal(pil, tm.sample({"image": png.getvalue()}).fields["image"])


@pytest.mark.parametrize("field,value,why", [
    ("image", b"not an image", "UnidentifiedImageError"),
    ("image", 3.5, "got a float"),
    ("image", "/nonexistent/a.jpg", "/nonexistent/a.jpg"),
    ("audio", b"not audio", "not audio|Format not recognised|Error opening"),
    ("audio", np.zeros((1, 800), np.float32), "got a ndarray without its rate"),
    ("text", 7, "got a int"),
])
def test_bad_fields_raise_one_error_type_naming_sample_and_field(tm: TrainedModel, field: str, value: Any, why: str) -> None:
    with pytest.raises(InputError, match=rf"sample 'req-7', field '{field}': .*({why}).*; accepted: ") as exc:
        tm.predict([{"key": "ok", "text": "x"}, {"key": "req-7", field: value}])
    assert isinstance(exc.value, MMDataError) and isinstance(exc.value, ValueError)


def test_empty_batch_gives_no_rows(tm: TrainedModel) -> None:
    assert tm.predict([]) == []
    assert tuple(tm.logits([]).shape) == (0, 3)


# ---- #7: NaN / inf audio arrays ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_wave_is_refused_as_bytes_are(tm: TrainedModel, bad: float) -> None:
    x = (np.sin(np.arange(2000) / 5) * 0.3).astype(np.float32)
    x[100] = bad
    with pytest.raises(InputError, match=r"sample 'req-9', field 'audio': audio holds NaN or infinite samples "
                                         r"\(1 of 2000 samples, the first at frame 100\)"):
        tm.predict([{"key": "req-9", "audio": (x[None], RATE)}])


# ---- #8: caption bytes that are not UTF-8 --------------------------------------------------------------------

@pytest.mark.parametrize("data,why", [("a red circle".encode("utf-16"), "text is UTF-16"),
                                      ("café rouge".encode("latin-1"), "text is not UTF-8")])
def test_non_utf8_caption_bytes_are_refused_with_the_fix(tm: TrainedModel, data: bytes, why: str) -> None:
    with pytest.raises(InputError, match=rf"sample 'req-5', field 'text': {why}.*text bytes must be UTF-8: decode "
                                         "them and pass a str"):
        tm.predict([{"key": "req-5", "text": data}])


# ---- #6: one dict, a generator -------------------------------------------------------------------------------

def test_one_dict_is_refused_and_a_generator_is_read_once(tm: TrainedModel) -> None:
    req = {"key": "req-1", "text": "a red circle"}
    with pytest.raises(InputError, match=r"predict takes a list of samples, predict\(\[sample\]\); got one dict"):
        tm.predict(req)
    rows = tm.predict(r for r in [req, {**req, "key": "req-2"}])
    assert [r["key"] for r in rows] == ["req-1", "req-2"] and rows[0]["probs"] == rows[1]["probs"]


# ---- #5: a damaged run folder --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("run")
    tm = _tm()
    (d / "metrics.json").write_text(json.dumps(tm.metrics))
    torch.save(tm.model.state_dict(), d / "model.pt")
    assert load_model(d).predict([{"text": "x"}])[0]["probs"] == tm.predict([{"text": "x"}])[0]["probs"]
    return d


@pytest.mark.parametrize("damage,file,why", [
    ("truncated", "model.pt", r"model.pt is not a readable PyTorch checkpoint \(.*; 5,000 bytes\): truncated\? copy"),
    ("empty", "model.pt", r"model.pt is not a readable PyTorch checkpoint \(.*; 0 bytes\)"),
    ("badjson", "metrics.json", r"metrics.json is not the JSON `mmdata train` writes \(Expecting"),
    ("list", "metrics.json", r"metrics.json holds a JSON list"),
])
def test_damaged_run_folder_names_the_file(run_dir: Path, tmp_path: Path, damage: str, file: str, why: str) -> None:
    for f in ("metrics.json", "model.pt"):
        (tmp_path / f).write_bytes((run_dir / f).read_bytes())
    new = {"truncated": (run_dir / "model.pt").read_bytes()[:5000], "empty": b"", "badjson": b"{not json",
           "list": b"[]"}[damage]
    (tmp_path / file).write_bytes(new)
    with pytest.raises(MMDataError, match=why):
        load_model(tmp_path)


def test_a_folders_blank_caption_is_predicted_as_its_shard_holds_it(tm: TrainedModel, tmp_path: Path) -> None:
    """``mmdata shard FOLDER`` keeps an empty or blank ``.txt`` as a (blank) text: the raw files of such a sample
    give predict what its shard sample gives (review of QA29: a rule dropping blank text as "no text, as shard
    stores it" — true of manifest cells only — moved 7 of 8 such test samples off predictions.parquet)."""
    import mmdata
    from mmdata.shards.reader import open_dataset

    raw = tmp_path / "raw"
    for i, caption in enumerate([b"", b"   \n", b"a cat", b"", b"dog", b"  "]):
        d = raw / ("a" if i % 2 else "b")
        d.mkdir(parents=True, exist_ok=True)
        (d / f"s{i}.wav").write_bytes(_wav())
        (d / f"s{i}.txt").write_bytes(caption)
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    for s in open_dataset(str(tmp_path / "ds")):
        folder, stem = s.key.rsplit("_", 1)[0].split("_", 1)  # a_s1_e3fc1371: class folder a, file s1
        src = raw / folder / stem
        request = {"key": s.key, "audio": src.with_suffix(".wav").read_bytes(), "text": src.with_suffix(".txt").read_bytes()}
        assert tm.predict([request])[0]["probs"] == tm.predict([s])[0]["probs"], (s.key, s.fields.get("text"))


def test_a_whole_model_pickled_or_no_checkpoint_is_named_as_such(tm: TrainedModel, tmp_path: Path) -> None:
    """Review of QA29: ``torch.save(model)`` (not its state dict) was called "truncated? copy again" with torch's
    terminal colour codes, and a missing model.pt raised a bare FileNotFoundError from the error path."""
    from mmdata.train.model import load_weights

    torch.save(tm.model, tmp_path / "model.pt")
    with pytest.raises(MMDataError, match=r"model.pt holds objects other than tensors .*save model.state_dict\(\)") as err:
        load_weights(tm.model, tmp_path)
    assert "\x1b" not in str(err.value) and "truncated" not in str(err.value)
    (tmp_path / "model.pt").unlink()
    with pytest.raises(MMDataError, match=r"model.pt not found"):
        load_weights(tm.model, tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for a torch that sees no GPU")
@pytest.mark.parametrize("device,why", [
    ("cuda", r"load_model\(device=\) cuda: no CUDA device is visible \(torch .*\); use device='cpu'"),
    ("gpu0", r"load_model\(device=\) 'gpu0': not a torch device \(cpu, cuda, cuda:N, mps\)"),
    ("mps", r"load_model\(device=\) mps: this torch \(.*\) cannot place a tensor there: "),  # review of QA30
    ("xpu", r"load_model\(device=\) xpu: this torch \(.*\) cannot place a tensor there: "),
])
def test_load_model_refuses_a_device_it_cannot_use(run_dir: Path, device: str, why: str) -> None:
    """A device this torch cannot use is named with the argument before model.pt is read (a CPU build raised
    torch's "Torch not compiled with CUDA enabled" from inside ``.to``)."""
    with pytest.raises(MMDataError, match=why):
        load_model(run_dir, device=device)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (scripts/gpu_check.sh runs it)")
def test_load_model_on_cuda_predicts_as_on_cpu(run_dir: Path) -> None:
    """The requests, decoded on the host, go to the model's device (they stayed on the CPU: a device mismatch)."""
    request = [{"text": "a cat", "audio": _wav(), "image": _jpeg()}]
    cpu, gpu = load_model(run_dir).predict(request)[0], load_model(run_dir, device="cuda").predict(request)[0]
    assert cpu["pred"] == gpu["pred"]
    assert max(abs(cpu["probs"][k] - gpu["probs"][k]) for k in cpu["probs"]) < 1e-4
