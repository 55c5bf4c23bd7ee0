"""Every op: the batched torch kernel agrees with the per-sample kernel for the same params; inputs are
never mutated; p=0 is the identity; params depend only on (seed, epoch, key, op index)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from mmdata import Sample, collate
from mmdata.augment.base import build_op
from mmdata.rng import derive

# (section, spec, tolerance, samples) — tolerance: 0 = exact; else max abs difference allowed per tensor
# field; samples: which inputs the op needs (see _inputs). Section "normalize.X" = the normalize stage.
OPS: list[tuple[str, dict[str, Any], float, str]] = [
    ("image", {"op": "hflip"}, 0, "base"),
    ("image", {"op": "vflip"}, 0, "base"),
    ("image", {"op": "random_resized_crop", "size": [16, 20], "scale": [0.3, 1.0]}, 2, "base"),
    ("image", {"op": "random_crop", "size": [20, 28], "padding": 2, "fill": 7}, 0, "base"),
    ("image", {"op": "cutout", "num_holes": [1, 3], "size": [0.1, 0.4], "fill": 3}, 0, "base"),
    ("image", {"op": "brightness_contrast"}, 1, "base"),
    ("image", {"op": "gaussian_noise", "std": [0.05, 0.1]}, 1, "base"),
    ("image", {"op": "rotate", "limit": 15}, 0, "base"),
    ("image", {"op": "one_of", "ops": [{"op": "hflip"}, {"op": "vflip"}]}, 0, "base"),
    ("image", {"op": "to_gray", "channels": 3}, 0, "base"),
    ("image", {"op": "resize", "size": 20, "side": "shorter", "interpolation": "linear"}, 1, "sizes"),
    # masked kernels (the whole batch, applied rows written in place) on a batch of mixed sizes
    ("image", {"op": "hflip"}, 0, "sizes"),
    ("image", {"op": "vflip"}, 0, "sizes"),
    ("image", {"op": "cutout", "num_holes": [1, 2], "size": [0.2, 0.5], "fill": 4}, 0, "sizes"),
    ("image", {"op": "brightness_contrast"}, 1, "sizes"),
    ("image", {"op": "gaussian_noise", "std": [0.05, 0.1]}, 1, "sizes"),
    ("audio", {"op": "gain", "min_db": -12, "max_db": 6}, 0, "base"),
    ("audio", {"op": "polarity"}, 0, "base"),
    ("audio", {"op": "time_shift", "max_fraction": 0.3}, 0, "base"),
    ("audio", {"op": "time_shift", "max_fraction": 0.3, "rollover": False}, 0, "base"),
    ("audio", {"op": "time_mask", "max_fraction": 0.3}, 0, "base"),
    ("audio", {"op": "noise", "min_snr_db": 5, "max_snr_db": 20}, 1e-6, "base"),
    ("audio", {"op": "random_crop", "seconds": 0.1}, 0, "base"),
    ("audio", {"op": "pad", "seconds": 0.5, "mode": "random"}, 0, "base"),
    ("audio", {"op": "resample", "rate": 16000}, 1e-5, "base"),
    ("audio", {"op": "speed", "factor": [0.8, 1.2]}, 1e-5, "base"),
    ("audio", {"op": "logmel", "n_mels": 20}, 1e-4, "base"),
    ("audio", {"op": "some_of", "n": [1, 2], "ops": [{"op": "random_crop", "seconds": 0.12}, {"op": "time_mask", "max_fraction": 0.5},
                                                  {"op": "gain"}]}, 0, "base"),
    ("text", {"op": "token_mask", "p_token": 0.4}, 0, "base"),
    ("text", {"op": "word_delete", "p_word": 0.4}, 0, "base"),
    ("text", {"op": "word_swap", "n_swaps": [1, 3]}, 0, "base"),
    ("text", {"op": "word_crop", "fraction": [0.3, 0.8]}, 0, "base"),
    ("text", {"op": "typo", "p_word": 0.5}, 0, "base"),
    ("text", {"op": "some_of", "n": [1, 3], "ops": [{"op": "word_crop", "fraction": [0.2, 0.5]}, {"op": "word_swap", "n_swaps": [2, 4]},
                                                 {"op": "word_delete", "p_word": 0.5}]}, 0, "base"),
    ("sample", {"op": "modality_dropout", "p_drop": 0.6}, 0, "base"),
    ("sample", {"op": "consistent_hflip"}, 0, "base"),
    # the normalize stage (deterministic ops; also checked on inputs that need no change)
    ("normalize.image", {"op": "to_rgb"}, 0, "gray"),
    ("normalize.image", {"op": "to_rgb", "alpha": "blend", "background": 200}, 0, "rgba"),
    ("normalize.image", {"op": "to_rgb"}, 0, "base"),
    ("normalize.image", {"op": "to_gray"}, 0, "base"),
    ("normalize.image", {"op": "to_gray", "alpha": "blend"}, 0, "rgba"),
    ("normalize.image", {"op": "resize", "size": 16, "side": "shorter", "interpolation": "area"}, 1, "sizes"),
    ("normalize.image", {"op": "resize", "size": 40, "side": "longer", "interpolation": "cubic"}, 1, "sizes"),
    ("normalize.image", {"op": "resize", "size": [18, 26], "side": "exact", "interpolation": "nearest"}, 0, "sizes"),
    ("normalize.image", {"op": "resize", "size": [30, 50], "side": "exact", "interpolation": "linear"}, 1, "sizes"),
    ("normalize.image", {"op": "center_crop", "size": [20, 30], "fill": 9}, 0, "sizes"),
    ("normalize.image", {"op": "pad_to_size", "size": [30, 36], "fill": 5}, 0, "sizes"),
    ("normalize.image", {"op": "pad_to_size", "size": 32, "position": "top_left"}, 0, "sizes"),
    ("normalize.audio", {"op": "to_mono"}, 0, "stereo"),
    ("normalize.audio", {"op": "resample", "rate": 11025}, 1e-5, "base"),
    ("normalize.audio", {"op": "pad_trim", "seconds": 0.15}, 0, "base"),
    ("normalize.audio", {"op": "pad_trim", "seconds": 0.15, "align": "center", "pad": False}, 0, "base"),
    ("normalize.audio", {"op": "logmel", "n_mels": 12}, 1e-4, "base"),
    ("normalize.text", {"op": "max_tokens", "n": 3}, 0, "base"),
]


NOTHING_TO_DO = {("to_rgb", "base")}  # RGB input: to_rgb leaves it (and logs applied: false)


def _samples(n: int = 6, kind: str = "base") -> list[Sample]:
    g = torch.Generator().manual_seed(0)
    out = []
    texts = ["the dog on the left", "a bright red upright box", "left and right", "one", "some words here to play with", "",
             "一张红色背景上的圆形的照片，在户外拍摄。"]
    channels = {"gray": 1, "rgba": 4}.get(kind, 3)
    for i in range(n):
        h, w = ((24, 32), (40, 30), (12, 20))[i % 3] if kind == "sizes" else (24, 32)
        fields: dict[str, Any] = {
            "image": torch.randint(0, 256, (channels, h, w), generator=g, dtype=torch.uint8),
            "audio": torch.randn(2 if kind == "stereo" else 1, 800 + 160 * i, generator=g) * 0.3,
            "label": i % 3,
        }
        if texts[i % len(texts)]:
            fields["text"] = texts[i % len(texts)]
        if i == 4:
            del fields["audio"]
        out.append(Sample(f"k{i}", fields, sample_rate=8000))
    return out


def _inputs(kind: str) -> list[Sample]:
    return _samples(7, kind)


def _recipe(section: str, spec: dict[str, Any], p: float | None = None) -> Any:
    from mmdata.augment import load_recipe

    deterministic = section.startswith("normalize") or spec["op"] in ("resample", "to_rgb")
    spec = {**spec, "p": 1.0 if deterministic else (0.7 if p is None else p)}
    if section.startswith("normalize"):
        return load_recipe({"seed": 5, "normalize": {section.split(".")[1]: [spec]}})
    return load_recipe({"seed": 5, section: [spec]})


def _close(a: Any, b: Any, tol: float, what: str) -> None:
    if isinstance(a, torch.Tensor):
        assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
        diff = (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
        assert diff <= tol, f"{what}: max abs diff {diff} > {tol}"
    else:
        assert a == b, f"{what}: {a!r} != {b!r}"


def _ids(table: list[tuple[str, dict[str, Any], float, str]]) -> list[str]:
    return [f"{s}.{d['op']}-{k}-{i}" for i, (s, d, _, k) in enumerate(table)]


def _agree(ref: Any, got: Any, tol: float) -> None:
    """Collated per-sample results vs the batched result: valid regions, lengths, presence, tokens."""
    assert ref.sample_rate == got.sample_rate
    for name in ref.data:
        if name in ("image", "audio", "spec"):
            # compare valid regions (padding may differ in width)
            for i in range(len(ref)):
                if not bool(ref.present[name][i]):
                    assert not bool(got.present[name][i]), f"{name}[{i}] presence"
                    continue
                if name == "image":
                    h, w = (int(v) for v in ref.lengths["image"][i])
                    assert [h, w] == [int(v) for v in got.lengths["image"][i]], f"image[{i}] size"
                    _close(ref["image"][i, :, :h, :w], got["image"][i, :, :h, :w], tol, f"image[{i}]")
                elif name == "audio":
                    n = int(ref.lengths["audio"][i])
                    assert n == int(got.lengths["audio"][i]), f"audio[{i}] length"
                    _close(ref["audio"][i, :, :n], got["audio"][i, :, :n], tol, f"audio[{i}]")
                else:
                    shape = [int(v) for v in ref.lengths["spec"][i]] if "spec" in ref.lengths else list(ref["spec"].shape[1:])
                    region = (i, *(slice(0, v) for v in shape))
                    _close(ref["spec"][region], got["spec"][region], tol, f"spec[{i}]")
        elif name == "tokens":
            for i in range(len(ref)):
                n = int(ref.lengths["tokens"][i])
                assert n == int(got.lengths["tokens"][i]), f"tokens[{i}] length"
                assert ref["tokens"][i, :n].tolist() == got["tokens"][i, :n].tolist(), f"tokens[{i}]"
        else:
            _close(ref[name], got[name], 0, name)
    for name in ref.present:
        assert ref.present[name].tolist() == got.present[name].tolist(), f"present[{name}]"


@pytest.mark.parametrize("section,spec,tol,kind", OPS, ids=_ids(OPS))
@pytest.mark.parametrize("vectorised", [False, True], ids=["cpu-kernels", "device-kernels"])
def test_batched_matches_per_sample(section: str, spec: dict[str, Any], tol: float, kind: str, vectorised: bool,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-sample kernels (recipe.apply_sample) and batched kernels (apply_batched / normalize_batched)
    give the same samples and log the same params; inputs are never mutated."""
    # device-kernels: the vectorised torch kernels that run on CUDA, forced on the CPU
    monkeypatch.setattr("mmdata.augment.batching.VECTORISED_ON_CPU", vectorised)
    rec = _recipe(section, spec)
    samples = _inputs(kind)
    snapshot = copy.deepcopy(samples)
    versions = [{k: v._version for k, v in s.fields.items() if isinstance(v, torch.Tensor)} for s in samples]
    for epoch in range(3):
        per = [rec.apply_sample(s, epoch=epoch) for s in samples]
        batched = rec.normalize_batched if section.startswith("normalize") else (lambda b: rec.apply_batched(b, epoch))
        got = batched(collate(samples))
        _agree(collate(per), got, tol)
        assert [s.meta["aug"] for s in per] == got.meta["aug"], "same params both ways"
    applied = any(e["params"]["applied"] for s in per for e in s.meta["aug"])
    assert applied == ((spec["op"], kind) not in NOTHING_TO_DO), "the op did something (or, on inputs it fits, nothing)"
    for s, s0, ver in zip(samples, snapshot, versions):  # inputs never mutated
        for k, v in s.fields.items():
            if isinstance(v, torch.Tensor):
                assert v._version == ver[k] and torch.equal(v, s0[k])
            else:
                assert v == s0[k]


@pytest.mark.parametrize("section,spec", [("image", {"op": "hflip"}), ("audio", {"op": "gain"}), ("text", {"op": "token_mask"})])
def test_p0_identity_and_param_determinism(section: str, spec: dict[str, Any]) -> None:
    s = _samples()[0]
    op0 = build_op(section, {**spec, "p": 0.0}, "t")
    p = op0.draw(derive(1, 0, s.key, 0), s)
    assert p == {"applied": False} and op0.apply(s, p) is s
    op = build_op(section, {**spec, "p": 1.0}, "t")
    a = op.draw(derive(1, 0, s.key, 0), s)
    b = op.draw(derive(1, 0, s.key, 0), s)
    assert a == b and a["applied"]


def test_freq_mask_after_logmel_matches() -> None:
    lm = build_op("audio", {"op": "logmel", "n_mels": 16}, "a[0]")
    fm = build_op("audio", {"op": "freq_mask", "max_width": 6, "p": 1.0}, "a[1]")
    tm = build_op("audio", {"op": "time_mask", "target": "spec", "max_fraction": 0.5, "p": 1.0}, "a[2]")
    samples = [lm.apply(s, {"applied": True}) for s in _samples() if "audio" in s]
    for op in (fm, tm):
        params = [op.draw(derive(0, 0, s.key, 1), s) for s in samples]
        ref = collate([op.apply(s, p) for s, p in zip(samples, params)])
        got = op.apply_batch(collate(samples), params)
        assert torch.equal(ref["spec"], got["spec"])
        assert any(p["width"] > 0 for p in params)


@pytest.mark.parametrize("n", [0, 1, 50, 160, 256, 257, 800])
def test_logmel_takes_clips_shorter_than_half_a_window(n: int) -> None:
    """16 kHz, 25 ms: a 512-point window. Reflect padding needs more than 256 samples; shorter clips
    (a 10 ms click, an empty file) raised a torch padding error in both kernels, augment and preview."""
    lm = build_op("audio", {"op": "logmel", "n_mels": 8}, "a[0]")
    short = Sample("short", {"audio": torch.randn(2, n) * 0.1}, sample_rate=16000)
    normal = Sample("normal", {"audio": torch.randn(2, 1600) * 0.1}, sample_rate=16000)
    one = lm.apply(short, {"applied": True})["spec"]
    assert one.shape[0] == 8 and one.shape[1] >= 1 and torch.isfinite(one).all()
    batch = lm.apply_batch(collate([short, normal]), [{"applied": True}] * 2)
    assert torch.allclose(batch["spec"][0, :, : one.shape[1]], one, atol=1e-4)


def test_consistent_hflip_swaps_words_only_at_boundaries() -> None:
    op = build_op("sample", {"op": "consistent_hflip", "p": 1.0}, "s")
    s = Sample("k", {"image": torch.arange(6, dtype=torch.uint8).reshape(1, 2, 3), "text": "Left of a bright, upright leftmost box"})
    out = op.apply(s, {"applied": True})
    assert out["text"] == "Right of a bright, upright rightmost box"
    assert out["image"][0, 0].tolist() == [2, 1, 0]


def test_modality_dropout_never_drops_everything() -> None:
    op = build_op("sample", {"op": "modality_dropout", "p": 1.0, "p_drop": 1.0, "keep_at_least": 1}, "s")
    for s in _samples():
        p = op.draw(derive(0, 0, s.key, 0), s)
        out = op.apply(s, p)
        assert any(m in out for m in ("image", "audio", "text"))


def test_mixup_and_mixgen_targets() -> None:
    from mmdata.augment.recipe import load_recipe

    samples = [s for s in _samples() if "text" in s]
    for spec in ({"op": "mixup", "p": 1.0, "alpha": 0.4}, {"op": "mixgen", "p": 1.0, "lam": 0.5}):
        r = load_recipe({"seed": 3, "batch": [spec]})
        b = collate(samples)
        out = r.apply_batch_section(b)
        lam = out["mix_lam"]
        assert out["label_b"].shape == b["label"].shape and ((lam >= 0.5) & (lam <= 1)).all()
        perm = out.meta["aug_batch"][0]["params"]["perm"]
        assert out["label_b"].tolist() == [b["label"][j].item() for j in perm]
        if spec["op"] == "mixgen":
            assert out["text"][0] == f"{b['text'][0]} {b['text'][perm[0]]}".strip()
        assert torch.equal(r.apply_batch_section(collate(samples))["image"], out["image"])  # deterministic


@pytest.mark.parametrize("channels", [1, 3])
def test_recipe_runs_image_ops_in_one_hwc_domain_exactly(channels: int) -> None:
    """apply_sample chains consecutive image ops on one HWC array; the result must equal applying each op
    to a CHW sample in turn (the replay path), for grey and colour images, and never touch the input."""
    from mmdata.augment import load_recipe

    rec = load_recipe({"seed": 3, "image": [
        {"op": "hflip", "p": 0.5}, {"op": "random_resized_crop", "p": 0.8, "size": [20, 20]},
        {"op": "cutout", "p": 0.7, "num_holes": [1, 2]}, {"op": "brightness_contrast", "p": 0.5},
        {"op": "random_crop", "p": 0.5, "size": [16, 16], "padding": 2}, {"op": "rotate", "p": 0.5, "limit": 10},
        {"op": "gaussian_noise", "p": 0.5}], "audio": [{"op": "gain", "p": 1.0}]})
    g = torch.Generator().manual_seed(1)
    for i in range(12):
        img = torch.randint(0, 256, (channels, 24, 30), generator=g, dtype=torch.uint8)
        s = Sample(f"s{i}", {"image": img, "audio": torch.randn(1, 400, generator=g)}, sample_rate=8000)
        before = img.clone()
        out = rec.apply_sample(s, epoch=2)
        assert torch.equal(img, before)
        again = rec.replay(s, out.meta["aug"])
        assert out["image"].shape == (channels, 16, 16) and torch.equal(out["image"], again["image"])
        assert torch.equal(out["audio"], again["audio"])


DEVICE_GENERATOR_OPS = {"gaussian_noise", "noise"}  # draw noise from a generator on the batch's device (CUDA)


@pytest.mark.parametrize("section,spec,tol,kind", OPS, ids=_ids(OPS))
def test_batched_kernels_never_read_device_data_back(section: str, spec: dict[str, Any], tol: float, kind: str) -> None:
    """The batched path on a 'meta' batch (tensors without data): any host read of a device tensor
    (.item(), .tolist(), bool(), .cpu(), a per-sample fallback) raises, and so does mixing devices —
    the CPU stand-in for CUDA's set_sync_debug_mode("error") and for device-placement bugs. Presence
    masks and lengths stay host metadata; data stays on the device."""
    if spec["op"] in DEVICE_GENERATOR_OPS:
        pytest.skip("meta has no random generator; covered on CUDA by benchmarks/augment.py")
    rec = _recipe(section, spec)
    run = rec.normalize_batched if section.startswith("normalize") else (lambda b: rec.apply_batched(b, epoch=1))
    cpu = run(collate(_inputs(kind)))
    meta = run(collate(_inputs(kind)).to("meta"))
    for name, v in meta.data.items():
        if isinstance(v, torch.Tensor):
            assert v.device.type == "meta" and v.shape == cpu[name].shape, name
    for table in (meta.present, meta.lengths):
        assert all(t.device.type == "cpu" for t in table.values())
    assert {k: v.tolist() for k, v in meta.present.items()} == {k: v.tolist() for k, v in cpu.present.items()}
    assert {k: v.tolist() for k, v in meta.lengths.items()} == {k: v.tolist() for k, v in cpu.lengths.items()}


def test_full_recipe_on_a_device_batch_stays_sync_free() -> None:
    """Every section of recipes/full_example.yaml (minus the device-generator noise ops) on a 'meta' batch."""
    from pathlib import Path

    import yaml

    from mmdata.augment import load_recipe

    spec = yaml.safe_load((Path(__file__).parents[2] / "recipes" / "full_example.yaml").read_text())
    for sec in ("image", "audio"):
        spec[sec] = [s for s in spec[sec] if s["op"] not in DEVICE_GENERATOR_OPS]
    rec = load_recipe(spec)
    for epoch in range(3):
        out = rec.apply_batch_section(rec.apply_batched(collate(_samples()).to("meta"), epoch, mix=False), epoch)
        assert {v.device.type for v in out.data.values() if isinstance(v, torch.Tensor)} == {"meta"}
        assert {t.device.type for t in (*out.present.values(), *out.lengths.values())} == {"cpu"}


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_colour_conversions_match_pil(mode: str) -> None:
    """to_rgb (alpha dropped) and to_gray agree exactly with PIL's convert("RGB") / convert("L")."""
    import numpy as np
    from PIL import Image

    from mmdata.augment import load_recipe

    rng = np.random.default_rng(3)
    chans = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    arr = rng.integers(0, 256, (9, 13, chans), dtype=np.uint8)
    pil = Image.fromarray(arr[..., 0] if chans == 1 else arr, mode)
    s = Sample("k", {"image": torch.from_numpy(arr.transpose(2, 0, 1).copy())})
    rgb = load_recipe({"normalize": {"image": [{"op": "to_rgb"}]}}).normalize(s)["image"]
    assert rgb.permute(1, 2, 0).numpy().tolist() == np.asarray(pil.convert("RGB")).tolist()
    grey = load_recipe({"normalize": {"image": [{"op": "to_gray"}]}}).normalize(s)["image"]
    ref = np.asarray(pil.convert("RGB").convert("L")) if chans == 4 else np.asarray(pil.convert("L"))
    assert grey[0].numpy().tolist() == ref.tolist() and grey.shape[0] == 1


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "area", "cubic"])
def test_resize_batched_weights_match_cv2(interpolation: str) -> None:
    """The batched resize (per-axis weight matrices) against cv2.resize itself, shrinking, enlarging and
    both at once, within the stated tolerance (nearest exact)."""
    import cv2
    import numpy as np

    from mmdata.augment.image import _CV2_INTERPOLATION, resize_weights

    rng = np.random.default_rng(0)
    worst = 0.0
    for (H, W), (h, w) in [((24, 32), (16, 20)), ((24, 32), (48, 40)), ((60, 40), (32, 32)), ((427, 640), (64, 96)),
                           ((48, 64), (20, 100)), ((7, 9), (30, 5)), ((64, 64), (21, 21))]:
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        ref = cv2.resize(img, (w, h), interpolation=_CV2_INTERPOLATION[interpolation]).astype(np.float64)
        shrinking = H >= h and W >= w
        wy, wx = resize_weights(H, h, interpolation, shrinking), resize_weights(W, w, interpolation, shrinking)
        out = np.clip(np.rint(np.stack([wy @ img[..., c].astype(np.float64) @ wx.T for c in range(3)], axis=-1)), 0, 255)
        worst = max(worst, float(np.abs(out - ref).max()))
    assert worst <= (0 if interpolation == "nearest" else 1), worst


def test_op_protocol_is_final() -> None:
    """draw / apply / apply_batch live in Op only: a subclass overriding one is refused at class creation."""
    from mmdata.augment.base import Op

    with pytest.raises(TypeError, match="overrides Op.draw"):
        type("Bad", (Op,), {"draw": lambda self, rng, sample: {"applied": True}})
    with pytest.raises(TypeError, match="overrides Op.apply_batch"):
        type("Bad", (Op,), {"apply_batch": lambda self, batch, params: batch})


def test_apply_batch_hands_the_kernel_only_applied_rows() -> None:
    """Op.apply_batch (kornia's apply_func): the kernel sees only the applied rows (all with the field),
    padded to those rows; the result is merged back with the other rows untouched."""
    from mmdata.augment.base import Op

    seen: list[Any] = []

    class Probe(Op):
        field = "image"

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample.with_fields(image=sample["image"][:, :5, :7] + 1)

        def transform_batch(self, batch: Any, params: Any) -> Any:
            seen.append((list(batch.keys), [p["applied"] for p in params], tuple(batch["image"].shape)))
            out = batch.replace(image=batch["image"][:, :, :5, :7] + 1)
            out.lengths["image"] = torch.tensor([[5, 7]] * len(batch))
            return out

    samples = _samples(6, "sizes")
    samples[2] = samples[2].without("image")
    op = Probe(p=0.5)
    params = [op.draw(derive(0, 0, s.key, "probe"), s) for s in samples]
    rows = [i for i, p in enumerate(params) if p["applied"]]
    assert 0 < len(rows) < 5 and 2 not in rows
    got = op.apply_batch(collate(samples), params)
    keys, flags, shape = seen[0]
    assert keys == [samples[i].key for i in rows] and all(flags)
    assert shape[2:] == tuple(max(samples[i]["image"].shape[j] for i in rows) for j in (1, 2))  # padding trimmed
    _agree(collate([op.apply(s, p) for s, p in zip(samples, params)]), got, 0)


def test_apply_batch_gathers_only_the_fields_an_op_touches() -> None:
    """A partially applied image op's kernel gets the applied rows of ``image`` only (no copy of audio, text,
    tokens); a text op's gets ``text`` with its ``tokens``; the other fields come back as the same objects."""
    from mmdata.augment.base import Op

    seen: list[list[str]] = []

    class Probe(Op):
        field = "image"

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample.with_fields(image=sample["image"] + 1)

        def transform_batch(self, batch: Any, params: Any) -> Any:
            seen.append(sorted(batch.data))
            return batch.replace(image=batch["image"] + 1)

    class TextProbe(Probe):
        field = "text"

        def transform_batch(self, batch: Any, params: Any) -> Any:
            seen.append(sorted(batch.data))
            return batch

    samples = _samples(6)
    b = collate(samples)
    params = [{"applied": i % 2 == 0} for i in range(len(samples))]
    got = Probe().apply_batch(b, params)
    assert seen == [["image"]]
    assert got["audio"] is b["audio"] and got["tokens"] is b["tokens"] and got["text"] is b["text"]
    _agree(collate([Probe().apply(s, p) for s, p in zip(samples, params)]), got, 0)
    text_rows = [{"applied": "text" in s and i % 2 == 0} for i, s in enumerate(samples)]
    TextProbe().apply_batch(b, text_rows)
    assert seen[-1] == ["text", "tokens"]


def test_masked_kernels_get_the_whole_batch_and_leave_other_rows_alone() -> None:
    """A ``masked`` op (hflip, cutout, gain, time_mask, noise, ...) gets every row, with ``applied: false``
    for the others, and returns those rows bit for bit; rows it applies match the per-sample kernel."""
    from mmdata.augment.base import registry

    masked = sorted(f"{s}.{n}" for (s, n), cls in registry().items() if cls.masked)
    assert {"image.hflip", "image.vflip", "image.cutout", "audio.gain", "audio.time_mask", "audio.noise",
            "sample.modality_dropout"} <= set(masked)
    samples = _samples(6)
    b = collate(samples)
    for section, spec in [("image", {"op": "hflip"}), ("image", {"op": "cutout", "size": [0.3, 0.5]}),
                          ("image", {"op": "brightness_contrast", "brightness": [0.1, 0.3]}),
                          ("audio", {"op": "gain"}), ("audio", {"op": "time_mask", "max_fraction": 0.5}),
                          ("audio", {"op": "noise"}), ("audio", {"op": "polarity"})]:
        op = build_op(section, {**spec, "p": 0.5}, "t")
        params = [op.draw(derive(2, 0, s.key, 0), s) for s in samples]
        rows = [i for i, p in enumerate(params) if p["applied"]]
        assert 0 < len(rows) < len(samples) - 1, spec
        got = op.apply_batch(b, params)
        x, y = b[op.field], got[op.field]
        for i in range(len(samples)):
            if i not in rows:
                assert torch.equal(x[i], y[i]), (spec, i)
        _agree(collate([op.apply(s, p) for s, p in zip(samples, params)]), got, 1e-6)


def test_select_and_scatter_round_trip() -> None:
    """Batch.select trims padding to the chosen rows; scatter puts rows back (re-padding as needed)."""
    samples = _samples(6, "sizes")
    b = collate(samples)
    rows = [1, 4]
    sub = b.select(rows)
    assert sub.keys == ["k1", "k4"] and sub["image"].shape[-2:] == (40, 30)
    back = b.scatter(rows, sub)
    _agree(b, back, 0)
    assert back["text"] == b["text"] and back.sample_rate == b.sample_rate
    # new rows of another size / length: the batch is re-padded around them
    small = sub.replace(image=sub["image"][:, :, :3, :4].contiguous(), audio=sub["audio"][:, :, :10].contiguous())
    small.lengths["image"] = torch.tensor([[3, 4], [3, 4]])
    small.lengths["audio"] = torch.tensor([10, 0])
    merged = b.scatter(rows, small)
    assert merged.lengths["image"][1].tolist() == [3, 4] and merged.lengths["audio"].tolist()[1] == 10
    assert merged["image"].shape[-2:] == (24, 32)  # rows 0, 2, 3, 5 (24x32 and 12x20) set the padded size
    with pytest.raises(ValueError, match="channels"):
        b.scatter(rows, sub.replace(image=sub["image"][:, :1].contiguous()))


def test_some_of_children_draw_from_the_sample_the_previous_child_left() -> None:
    """Issue 11 item 8: word_swap after word_crop inside some_of indexed past the cropped word list (88 of
    100 epochs). Children now draw on the text as the previous child left it: no crash in 60 epochs, per
    sample or batched, and both paths agree — also for recipes/full_example.yaml's text section."""
    from pathlib import Path

    import yaml

    from mmdata.augment import load_recipe

    crash = load_recipe({"seed": 0, "text": [{"op": "some_of", "p": 1.0, "n": [2, 2], "ops": [
        {"op": "word_crop", "fraction": [0.1, 0.3]}, {"op": "word_swap", "n_swaps": [3, 5]}]}]})
    full = yaml.safe_load((Path(__file__).parents[2] / "recipes" / "full_example.yaml").read_text())
    example = load_recipe({"seed": full["seed"], "text": full["text"]})
    texts = ["one two three four five six seven eight nine ten eleven twelve", "a b", "single", "the dog on the left side",
             "一张红色背景上的圆形的照片，在户外拍摄。"]
    samples = [Sample(f"s{i}", {"text": t}) for i, t in enumerate(texts * 3)]
    for rec in (crash, example):
        for epoch in range(60):
            per = [rec.apply_sample(s, epoch=epoch) for s in samples]
            got = rec.apply_batched(collate(samples), epoch=epoch)
            assert got["text"] == [s["text"] for s in per]
            ref = collate(per)
            assert ref.lengths["tokens"].tolist() == got.lengths["tokens"].tolist()
            for i, n in enumerate(ref.lengths["tokens"].tolist()):
                assert ref["tokens"][i, :n].tolist() == got["tokens"][i, :n].tolist()
    log = crash.apply_sample(samples[0], epoch=3).meta["aug"][0]["params"]
    assert set(log["children"]) == {"0", "1"} and max(log["children"]["1"]["swaps"]) < log["children"]["0"]["length"] - 1
