"""QA33 deploy / docsread / multilingual: ``load_model(DIR).predict`` on what a service is given — a PIL image still
carrying its EXIF orientation, a caption file as a Path or file object, a long list in chunks, a run file instead of
its folder, an encoder-only run, a plugin fusion, numpy waves and pixels, file:// URLs — and the run's record of its
token-id scheme and preprocessing constants."""

from __future__ import annotations

import io
import json
import tarfile
import unicodedata
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mmdata.augment.contract import InputError
from mmdata.errors import MMDataError
from mmdata.train import train
from mmdata.train.model import FusionModel, TrainedModel, load_model, preprocessing_constants

FAST = {"epochs": 1, "seed": 0, "threads": 1, "eval_robustness": False, "batch_size": 16}
RATE = 8000
NORMALIZE = {"image": [{"op": "to_rgb"}, {"op": "resize", "size": 16, "side": "shorter"}, {"op": "center_crop", "size": [16, 16]}],
             "audio": [{"op": "to_mono"}, {"op": "resample", "rate": RATE}, {"op": "pad_trim", "seconds": 0.25}],
             "text": [{"op": "max_tokens", "n": 16}]}


@pytest.fixture(scope="module")
def tm() -> TrainedModel:
    """A tiny untrained model with a real evaluation transform: stands in for a run where no training is needed."""
    torch.manual_seed(0)
    m = FusionModel(["image", "audio", "text"], "concat", classes=3, d=8, image_channels=3, image_hw=(16, 16),
                    sample_rate=RATE)
    met = {"config": {"modalities": list(m.mods), "fusion": "concat"}, "model": m.architecture(),
           "classes": {"num_classes": 3, "names": ["a", "b", "c"]}, "eval_normalize": NORMALIZE}
    return TrainedModel(m, met, "runs/x")


@pytest.fixture(scope="module")
def run(avdigits4: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("qa33") / "run"
    train(avdigits4, out=out, **FAST)
    return out


def _members(data: Path, split: str = "test") -> dict[str, dict[str, bytes]]:
    mem: dict[str, dict[str, bytes]] = {}
    for tar in sorted(data.glob(f"{split}-*.tar")):
        with tarfile.open(tar) as t:
            for ti in t:
                k, ext = ti.name.split(".", 1)
                mem.setdefault(k, {})[ext] = t.extractfile(ti).read()  # type: ignore[union-attr]
    return mem


# ---- deploy #4: a PIL image with an EXIF orientation ---------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_pil_image_is_turned_by_its_exif_orientation(tm: TrainedModel, tmp_path: Path, fmt: str) -> None:
    from PIL import Image, ImageOps

    a = np.zeros((16, 24, 3), np.uint8)
    a[:, :8] = 255
    a[:4] = 128
    ex = Image.Exif()
    ex[0x0112] = 6
    p = tmp_path / f"exif6.{fmt.lower()}"
    Image.fromarray(a).save(p, fmt, exif=ex.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    opened = tm.sample({"image": Image.open(p)}).fields["image"]
    turned = tm.sample({"image": ImageOps.exif_transpose(Image.open(p))}).fields["image"]
    assert torch.equal(opened, turned)  # the tag applied once: not again on exif_transpose's result
    assert torch.equal(opened, tm.sample({"image": str(p)}).fields["image"])  # as the file's path is decoded
    assert tm.predict([{"image": Image.open(p)}])[0]["probs"] == tm.predict([{"image": p}])[0]["probs"]


# ---- deploy #3: a caption file as Path / file object; a str naming a .txt file warns -------------------------

def test_a_caption_file_is_read_as_shard_reads_it(tm: TrainedModel, tmp_path: Path) -> None:
    f = tmp_path / "d0009.txt"
    f.write_bytes("\ufeffnine cats\r\non the left\r\n".encode())
    # as decode_text reads a file: no BOM, no final line end (QA round 34: a transcript's newline is not text)
    want = tm.sample({"text": "nine cats\r\non the left"}).fields["text"]
    assert tm.sample({"text": f}).fields["text"] == want
    with open(f, "rb") as fo:
        assert tm.sample({"text": fo}).fields["text"] == want
    with open(f, encoding="utf-8", newline="") as ft:  # text mode: taken, its BOM dropped as from the bytes
        assert tm.sample({"text": ft}).fields["text"] == want
    with pytest.warns(UserWarning, match=r"sample 'k'.*existing \.txt file.*pathlib\.Path"):
        got = tm.sample({"key": "k", "text": str(f)}).fields["text"]
    assert got == str(f)  # still the caption itself: a str is never read
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe caption")
    with pytest.raises(InputError, match=r"bad\.txt.*UTF-8"):
        tm.sample({"text": tmp_path / "bad.txt"})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tm.sample({"text": "a caption about notes.txt"})
        tm.sample({"text": str(tmp_path / "missing.txt")})


# ---- deploy #5: predict / logits in chunks --------------------------------------------------------------------

def test_predict_runs_in_chunks_with_the_same_outputs(run: Path, avdigits4: Path) -> None:
    tm = load_model(run)
    mem = _members(avdigits4)
    reqs = [{"key": k, "image": m.get("png"), "audio": m.get("flac"), "text": m.get("txt")} for k, m in mem.items()]
    reqs += [{"key": r["key"] + "-noimg", "audio": r["audio"], "text": r["text"]} for r in reqs[:5]]  # mixed presence
    whole = tm.predict(reqs, batch_size=len(reqs))
    for bs in (1, 3, 7):
        got = tm.predict(iter(reqs), batch_size=bs)  # a generator too, read as it goes
        assert [r["key"] for r in got] == [r["key"] for r in whole]
        assert [r["pred"] for r in got] == [r["pred"] for r in whole]
        diff = max(abs(g["probs"][c] - w["probs"][c]) for g, w in zip(got, whole) for c in w["probs"])
        assert diff < 1e-6
    assert torch.allclose(tm.logits(reqs, batch_size=4), tm.logits(reqs), atol=1e-6)
    assert tm.predict([], batch_size=2) == [] and tuple(tm.logits([]).shape) == (0, len(tm.names))
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(InputError, match="batch_size"):
            tm.predict(reqs, batch_size=bad)


def test_unnamed_samples_keep_their_index_across_chunks(tm: TrainedModel) -> None:
    keys = [r["key"] for r in tm.predict([{"text": f"t{i}"} for i in range(5)], batch_size=2)]
    assert keys == [f"sample{i}" for i in range(5)]


# ---- deploy #8 / #7: a run's file for its folder; an encoder-only run -----------------------------------------

def test_a_run_file_stands_for_its_folder(run: Path, tmp_path: Path) -> None:
    want = load_model(run).predict([{"text": "three"}])
    for f in ("model.pt", "metrics.json"):
        assert load_model(run / f).predict([{"text": "three"}]) == want
    (tmp_path / "model.pt").write_bytes((run / "model.pt").read_bytes())
    with pytest.raises(MMDataError, match=r"model\.pt is a file, not a run folder"):
        load_model(tmp_path / "model.pt")


def test_an_encoder_only_run_is_said_to_be_one(avdigits4: Path, tmp_path: Path) -> None:
    out = tmp_path / "pc0"
    train(avdigits4, out=out, pretrain="contrastive", pretrain_epochs=1, **{**FAST, "epochs": 0})
    assert (out / "contrastive.pt").is_file() and not (out / "model.pt").exists()
    with pytest.raises(MMDataError, match=r"pre-trained encoders only.*--epochs N.*mmdata match") as exc:
        load_model(out)
    assert "not found" not in str(exc.value)


# ---- docsread #3: a run trained with a plugin fusion ----------------------------------------------------------


PLUGIN = '''
from mmdata.train.fusions import ConcatFusion, register


@register("qa33_sum")
class Qa33Sum(ConcatFusion):
    """concat under another name: the weights of a concat run fit it."""
'''


def test_a_plugin_fusion_run_names_its_module(restore_fusions: None, run: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "qa33_plug.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    other = tmp_path / "plug"
    other.mkdir()
    (other / "model.pt").write_bytes((run / "model.pt").read_bytes())
    met = json.loads((run / "metrics.json").read_text())
    met["model"]["fusion"] = met["config"]["fusion"] = "qa33_sum"
    (other / "metrics.json").write_text(json.dumps(met))
    with pytest.raises(MMDataError, match=r"fusion 'qa33_sum' is not a built-in.*probably came from a plugin") as exc:
        load_model(other)
    assert "--fusion (fusion=)" not in str(exc.value)
    met["config"]["plugins"] = ["qa33_plug"]
    (other / "metrics.json").write_text(json.dumps(met))
    with pytest.raises(MMDataError, match=r"from plugin module qa33_plug .*--plugin qa33_plug.*plugins=\['qa33_plug'\]"):
        load_model(other)
    tm = load_model(other, plugins=["qa33_plug"])
    assert tm.predict([{"text": "three"}]) == load_model(run).predict([{"text": "three"}])


# ---- deploy #10 / #13: numpy inputs, file:// URLs, decode errors naming the path --------------------------------

def test_numpy_waves_in_the_unambiguous_layouts_are_taken(tm: TrainedModel) -> None:
    b = io.BytesIO()
    t = np.arange(2000) / RATE
    sf.write(b, np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], 1) * 0.3, RATE, format="FLAC")
    w, sr = sf.read(io.BytesIO(b.getvalue()))  # float64 (2000, 2): soundfile's layout
    want = tm.sample({"audio": (w.T, sr)}).fields["audio"]
    assert torch.equal(tm.sample({"audio": (w, sr)}).fields["audio"], want)
    assert torch.equal(tm.sample({"audio": (torch.from_numpy(w), sr)}).fields["audio"], want)
    mono = w[:, 0]
    assert torch.equal(tm.sample({"audio": (mono, sr)}).fields["audio"], tm.sample({"audio": (mono[None], sr)}).fields["audio"])
    assert torch.equal(tm.sample({"audio": (torch.from_numpy(mono), sr)}).fields["audio"],
                       tm.sample({"audio": (mono[None], sr)}).fields["audio"])
    with pytest.raises(InputError, match=r"numpy float64 \(1, 2, 2000\).*a\[0\]"):
        tm.sample({"audio": (w.T[None], sr)})
    with pytest.raises(InputError, match=r"got a ndarray without its rate \(numpy float64 \(2000,\)\).*\(wave, sr\)"):
        tm.sample({"audio": mono})


def test_numpy_pixels_are_described_as_numpy(tm: TrainedModel) -> None:
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert torch.equal(tm.sample({"image": g}).fields["image"], tm.sample({"image": g[None]}).fields["image"])
    rgb = np.stack([g, g[::-1], g.T], 2)  # (H, W, C), np.asarray of a PIL image
    assert torch.equal(tm.sample({"image": rgb}).fields["image"], tm.sample({"image": rgb.transpose(2, 0, 1)}).fields["image"])
    with pytest.raises(InputError, match=r"numpy float64 \(16, 16\).*np\.round\(a \* 255\)\.astype\(np\.uint8\)") as exc:
        tm.sample({"image": g / 255.0})
    assert "torch" not in str(exc.value).split("accepted")[0]
    with pytest.raises(InputError, match=r"numpy uint16 \(16, 16\).*\(a >> 8\)"):
        tm.sample({"image": g.astype(np.uint16) * 256})


def test_file_urls_are_paths_and_other_urls_are_named_as_given(tm: TrainedModel, tmp_path: Path) -> None:
    from PIL import Image

    p = tmp_path / "d0005.png"
    Image.fromarray(np.full((16, 16, 3), 40, np.uint8)).save(p)
    assert torch.equal(tm.sample({"image": p.as_uri()}).fields["image"], tm.sample({"image": p}).fields["image"])
    for url in ("https://example.invalid/x.png", "s3://bucket/x.png"):
        with pytest.raises(InputError, match="URL") as exc:
            tm.sample({"image": url})
        assert repr(url) in str(exc.value)
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(InputError) as exc:
        tm.sample({"image": str(junk)})
    assert str(junk) in str(exc.value) and "BytesIO" not in str(exc.value)
    with pytest.raises(InputError, match="notes.png"):
        with open(junk, "rb") as f:
            tm.sample({"audio": f})


# ---- multilingual #5: the recorded id scheme is complete ---------------------------------------------------------

def _described(u: str) -> int:
    """An id computed from metrics.json's ``text`` constants (the ``ids`` words, the ``strip`` and ``invisible``
    sets), not from mmdata.text."""
    text = preprocessing_constants()["text"]
    ids, strip, invisible = text["ids"], text["strip"], text["invisible"]
    assert "Tokenizer.token_id" in ids and "NFC" in ids and "non-ASCII character of Unicode category P*" in ids
    assert "geresh" in ids and "strip" in ids and "invisible" in ids
    if not u.isascii():
        u = unicodedata.normalize("NFC", "".join(c for c in u if c not in invisible))
    i, j = 0, len(u)

    def punct(c: str) -> bool:
        return c in strip or (not c.isascii() and unicodedata.category(c)[0] == "P" and c not in "\u05f3\u05f4")

    if u.isascii():
        w = u.strip(strip).lower()
    else:
        while i < j and punct(u[i]):
            i += 1
        while j > i and punct(u[j - 1]):
            j -= 1
        w = u[i:j].lower()
    return 3 + zlib.crc32(w.encode()) % 4093 if w else 2


@pytest.mark.parametrize("unit", ["Cafe\u0301", "\u0643\u0644\u0628\u200f", "\u00abПривет\u00bb", "猫。", "left\u200e",
                                  "Hello,", "\u05d2\u05f3", "猫～", "猫＋", "値｜", "Ｘ＝", "Привет-", "#тег", "\u00abПривет\u00bb-"])
def test_the_recorded_id_scheme_gives_the_tokenizers_ids(unit: str) -> None:
    from mmdata.text import Tokenizer

    assert _described(unit) == Tokenizer().token_id(unit)


# ---- deploy #6: changed constants named with both values; prose not compared ------------------------------------

def test_changed_constants_are_named_with_both_values(run: Path, tmp_path: Path) -> None:
    import warnings

    other = tmp_path / "hop"
    other.mkdir()
    (other / "model.pt").write_bytes((run / "model.pt").read_bytes())
    met = json.loads((run / "metrics.json").read_text())
    met["model"]["constants"]["audio"]["hop_ms"] = 10.0
    met["model"]["constants"]["image"]["std"] = 0.25
    (other / "metrics.json").write_text(json.dumps(met))
    with pytest.warns(UserWarning, match=r"audio\.hop_ms: 10\.0 in the run, 16\.0 here; image\.std: 0\.25 in the run, 0\.5 here"):
        load_model(other)
    met = json.loads((run / "metrics.json").read_text())
    met["model"]["constants"]["text"]["ids"] = "the wording of an older mmdata"  # a description, not a value
    (other / "metrics.json").write_text(json.dumps(met))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(other)
