"""QA round 38 (augops): what augment's copies show — copies equal to their originals (IQ #11), one-colour crops
(OCR #2), a to_mono that cancels and a resample that removes the content (bats #2, #6) — and typo's edits on
[MASK] (OCR #8)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset, describe
from mmdata.augment.recipe import load_recipe
from mmdata.types import Sample


def _page(path: Path, seed: int) -> None:
    """A white page with a dark text block in its top-left corner only."""
    a = np.full((60, 60), 255, np.uint8)
    a[2:12, 2:20] = np.random.default_rng(seed).integers(0, 80, (10, 18), dtype=np.uint8)
    Image.fromarray(a).save(path)


def _card_warnings(out: Path) -> list[str]:
    return json.loads((out / "dataset.json").read_text())["warnings"]


def test_copies_of_samples_without_the_recipes_field_are_counted(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "a"
    raw.mkdir(parents=True)
    for i in range(2):
        _page(raw / f"img{i}.png", i)
    for i in range(4):
        (raw / f"txt{i}.txt").write_text(f"caption {i}", encoding="utf-8")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    with pytest.warns(UserWarning) as rec:
        rep = augment_dataset(tmp_path / "ds", tmp_path / "aug", {"image": [{"op": "hflip", "p": 1.0}]}, progress=False)
    assert rep["unchanged_copies"] == {"train": 4}
    line = describe(rep, keep_original=False, out=tmp_path / "aug")
    assert "4 of the copies equal their originals" in line and "no field the recipe's random sections act on" in line
    said = [str(w.message) for w in rec if "can act on 2 of the 6 augmented copies" in str(w.message)]
    assert len(said) == 1 and "4 (" in said[0] and "'a_txt0" in said[0] and "holds text" in said[0]
    assert any("can act on 2 of the 6" in w for w in _card_warnings(tmp_path / "aug"))


def test_every_sample_acted_on_says_nothing_of_unchanged_copies(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "a"
    raw.mkdir(parents=True)
    for i in range(3):
        _page(raw / f"img{i}.png", i)
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        rep = augment_dataset(tmp_path / "ds", tmp_path / "aug", {"image": [{"op": "hflip", "p": 1.0}]}, progress=False)
    assert "unchanged_copies" not in rep
    assert not [w for w in rec if "equal their originals" in str(w.message) or "one colour" in str(w.message)]
    assert "equal their originals" not in describe(rep, keep_original=False, out=tmp_path / "aug")


def test_crops_of_an_empty_margin_are_counted_and_named(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "a"
    raw.mkdir(parents=True)
    for i in range(8):
        _page(raw / f"p{i}.png", i)
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    recipe = {"image": [{"op": "random_crop", "p": 1.0, "size": [12, 12]}]}
    with pytest.warns(UserWarning) as rec:
        augment_dataset(tmp_path / "ds", tmp_path / "aug", recipe, progress=False)
    said = [str(w.message) for w in rec if "have an image of one colour" in str(w.message)]
    assert len(said) == 1
    # count what was written: every one-colour copy is counted, none other
    blank = sum(1 for s in mmdata.open_dataset(tmp_path / "aug", split="train")
                if bool((s["image"] == s["image"].reshape(-1)[0]).all()))
    assert blank > 0 and said[0].startswith(f"recipe: {blank} of the 8 augmented copies")
    assert "image.random_crop" in said[0] and "larger random_crop size" in said[0]
    assert any(f"{blank} of the 8 augmented copies have an image of one colour" in w
               for w in _card_warnings(tmp_path / "aug"))


def _stereo(path: Path, sr: int, freq: float, invert: bool) -> None:
    t = np.arange(sr // 20) / sr
    s = 0.5 * np.sin(2 * np.pi * freq * t)
    sf.write(path, np.stack([s, -s if invert else s], 1), sr, subtype="PCM_16")


def test_to_mono_of_cancelling_channels_is_counted_in_augment(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "a"
    raw.mkdir(parents=True)
    for i in range(3):
        _stereo(raw / f"r{i}.wav", 16000, 440 + 50 * i, invert=i < 2)
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    recipe = {"normalize": {"audio": [{"op": "to_mono"}]}, "audio": [{"op": "gain", "p": 1.0}]}
    with pytest.warns(UserWarning) as rec:
        augment_dataset(tmp_path / "ds", tmp_path / "aug", recipe, progress=False)
    said = [str(w.message) for w in rec if "audio.to_mono" in str(w.message)]
    assert len(said) == 1 and "2 of 3 samples" in said[0] and "reverse polarity" in said[0] and "'a_r0" in said[0]


def test_resample_down_that_removes_the_content_is_counted_in_augment(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "a"
    raw.mkdir(parents=True)
    _stereo(raw / "bat.wav", 192000, 50000, invert=False)  # all its energy above 24 kHz
    _stereo(raw / "low.wav", 192000, 1000, invert=False)
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    recipe = {"normalize": {"audio": [{"op": "resample", "rate": 48000}]}, "audio": [{"op": "gain", "p": 1.0}]}
    with pytest.warns(UserWarning) as rec:
        augment_dataset(tmp_path / "ds", tmp_path / "aug", recipe, progress=False)
    said = [str(w.message) for w in rec if "audio.resample to 48000 Hz" in str(w.message)]
    assert len(said) == 1 and "1 of 2 samples" in said[0] and "'a_bat" in said[0] and "24 kHz" in said[0]
    assert any("audio.resample to 48000 Hz" in w for w in _card_warnings(tmp_path / "aug"))


def test_audio_checks_warn_once_per_process_outside_augment() -> None:
    import mmdata.augment.audio as audio

    audio._SAID.clear()
    sr = 96000
    t = torch.arange(sr // 20) / sr
    s = 0.5 * torch.sin(2 * math.pi * 30000 * t)
    rec = load_recipe({"normalize": {"audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}]}})
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        for k in range(3):
            rec.apply_sample(Sample(f"k{k}", {"audio": torch.stack([s, -s])}, sample_rate=sr), stage="eval")
            rec.apply_sample(Sample(f"j{k}", {"audio": torch.stack([s, s])}, sample_rate=sr), stage="eval")
        low = 0.5 * torch.sin(2 * math.pi * 1000 * t)
        rec.apply_sample(Sample("quiet", {"audio": torch.stack([low, low])}, sample_rate=sr), stage="eval")
    texts = [str(w.message) for w in got]
    assert sum("audio.to_mono" in x for x in texts) == 1 and "'k0'" in next(x for x in texts if "to_mono" in x)
    assert sum("audio.resample to 16000 Hz" in x for x in texts) == 1
    assert "'j0'" in next(x for x in texts if "resample" in x) and "once per process" in texts[0]
    audio._SAID.clear()


def test_batched_to_mono_checks_each_row() -> None:
    import mmdata.augment.audio as audio
    from mmdata.types import collate

    audio._SAID.clear()
    t = torch.arange(800) / 16000
    s = 0.5 * torch.sin(2 * math.pi * 440 * t)
    batch = collate([Sample("ok", {"audio": torch.stack([s, s])}, sample_rate=16000),
                     Sample("bad", {"audio": torch.stack([s, -s])}, sample_rate=16000)])
    with audio.collect_notes() as found:
        audio.ToMono().transform_batch(batch, [{}, {}])
    assert [k for _, k, _ in found] == ["bad"]


def test_typo_plans_no_edit_on_a_mask() -> None:
    rec = load_recipe({"text": [{"op": "token_mask", "p": 1.0, "p_token": 0.5},
                                {"op": "typo", "p": 1.0, "p_word": 1.0, "kind": "ocr"}]})
    for k in range(5):
        out = rec.apply_sample(Sample(f"k{k}", {"text": "SOS BOSS SIS ASS SO SOS SSS OS"}), epoch=0)
        log = {e["op"]: e["params"] for e in out.meta["aug"]}
        masked = set(log["text.token_mask"]["positions"])
        edited = {w for w, _, _ in log["text.typo"]["edits"]}
        assert masked and not masked & edited
        assert len(edited) == 8 - len(masked)  # every other word edited (p_word 1): the draws are kept


def test_typo_counts_masks_as_no_editable_word() -> None:
    rec = load_recipe({"text": [{"op": "token_mask", "p": 1.0, "p_token": 0.5},
                                {"op": "typo", "p": 1.0, "p_word": 0.5, "kind": "ocr"}]})
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        for k in range(6):
            rec.apply_sample(Sample(f"k{k}", {"text": "שלום עולם טוב מאוד היום"}), epoch=0)
    said = [str(w.message) for w in got if "can change no character" in str(w.message)]
    assert said and "of 4 of the 4 captions" in said[0]


def _pages_with_text(tmp_path: Path, text: str, audio: bool = False) -> Path:
    raw = tmp_path / "raw" / "a"
    raw.mkdir(parents=True)
    for i in range(3):
        _page(raw / f"p{i}.png", i)
        (raw / f"p{i}.txt").write_text(f"{text} {i}", encoding="utf-8")
        if audio:
            sf.write(raw / f"p{i}.wav", np.zeros(800, np.float32), 16000, subtype="PCM_16")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    return tmp_path / "ds"


TRANSCRIPT = "Invoice INV-7 total 12.50 due on receipt, page one of two"


@pytest.mark.parametrize("recipe", [{"image": [{"op": "hflip", "p": 0.5}]},
                                    {"image": [{"op": "rotate", "limit": 180}]},
                                    {"sample": [{"op": "consistent_hflip"}]}])
def test_a_flip_of_images_beside_long_texts_is_warned_of(tmp_path: Path, recipe: dict) -> None:
    ds = _pages_with_text(tmp_path, TRANSCRIPT)
    with pytest.warns(UserWarning) as rec:
        augment_dataset(ds, tmp_path / "aug", recipe, progress=False)
    said = [str(w.message) for w in rec if "if the text is read from the image" in str(w.message)]
    assert len(said) == 1 and "3 samples pair their image with a text" in said[0] and "glyphs" in said[0]
    assert any("if the text is read from the image" in w for w in _card_warnings(tmp_path / "aug"))


@pytest.mark.parametrize("case", ["short text", "with audio", "small rotate"])
def test_no_transcription_note_for_short_texts_audio_or_a_small_rotate(tmp_path: Path, case: str) -> None:
    ds = _pages_with_text(tmp_path, "seven" if case == "short text" else TRANSCRIPT, audio=case == "with audio")
    recipe = {"image": [{"op": "rotate", "limit": 15}]} if case == "small rotate" else {"image": [{"op": "hflip"}]}
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        augment_dataset(ds, tmp_path / "aug", recipe, progress=False)
    assert not [w for w in rec if "read from the image" in str(w.message)]
