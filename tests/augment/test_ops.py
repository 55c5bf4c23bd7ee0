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

# (section, spec, tolerance) — tolerance: 0 = exact; else max abs difference allowed per tensor field
OPS: list[tuple[str, dict[str, Any], float]] = [
    ("image", {"op": "hflip"}, 0),
    ("image", {"op": "vflip"}, 0),
    ("image", {"op": "random_resized_crop", "size": [16, 20], "scale": [0.3, 1.0]}, 2),
    ("image", {"op": "random_crop", "size": [20, 28], "padding": 2, "fill": 7}, 0),
    ("image", {"op": "cutout", "num_holes": [1, 3], "size": [0.1, 0.4], "fill": 3}, 0),
    ("image", {"op": "brightness_contrast"}, 1),
    ("image", {"op": "gaussian_noise", "std": [0.05, 0.1]}, 1),
    ("image", {"op": "rotate", "limit": 15}, 0),
    ("image", {"op": "one_of", "ops": [{"op": "hflip"}, {"op": "vflip"}]}, 0),
    ("audio", {"op": "gain", "min_db": -12, "max_db": 6}, 0),
    ("audio", {"op": "polarity"}, 0),
    ("audio", {"op": "time_shift", "max_fraction": 0.3}, 0),
    ("audio", {"op": "time_shift", "max_fraction": 0.3, "rollover": False}, 0),
    ("audio", {"op": "time_mask", "max_fraction": 0.3}, 0),
    ("audio", {"op": "noise", "min_snr_db": 5, "max_snr_db": 20}, 1e-6),
    ("audio", {"op": "random_crop", "seconds": 0.1}, 0),
    ("audio", {"op": "pad", "seconds": 0.5, "mode": "random"}, 0),
    ("audio", {"op": "resample", "rate": 16000}, 1e-5),
    ("audio", {"op": "speed", "factor": [0.8, 1.2]}, 1e-5),
    ("audio", {"op": "logmel", "n_mels": 20}, 1e-4),
    ("text", {"op": "token_mask", "p_token": 0.4}, 0),
    ("text", {"op": "word_delete", "p_word": 0.4}, 0),
    ("text", {"op": "word_swap", "n_swaps": [1, 3]}, 0),
    ("text", {"op": "word_crop", "fraction": [0.3, 0.8]}, 0),
    ("text", {"op": "typo", "p_word": 0.5}, 0),
    ("sample", {"op": "modality_dropout", "p_drop": 0.6}, 0),
    ("sample", {"op": "consistent_hflip"}, 0),
]


def _samples(n: int = 6) -> list[Sample]:
    g = torch.Generator().manual_seed(0)
    out = []
    texts = ["the dog on the left", "a bright red upright box", "left and right", "one", "some words here to play with", ""]
    for i in range(n):
        fields: dict[str, Any] = {
            "image": torch.randint(0, 256, (3, 24, 32), generator=g, dtype=torch.uint8),
            "audio": torch.randn(1, 800 + 160 * i, generator=g) * 0.3,
            "label": i % 3,
        }
        if texts[i % len(texts)]:
            fields["text"] = texts[i % len(texts)]
        if i == 4:
            del fields["audio"]
        out.append(Sample(f"k{i}", fields, sample_rate=8000))
    return out


def _close(a: Any, b: Any, tol: float, what: str) -> None:
    if isinstance(a, torch.Tensor):
        assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
        diff = (a.double() - b.double()).abs().max().item() if a.numel() else 0.0
        assert diff <= tol, f"{what}: max abs diff {diff} > {tol}"
    else:
        assert a == b, f"{what}: {a!r} != {b!r}"


@pytest.mark.parametrize("section,spec,tol", OPS, ids=[f"{s}.{d['op']}" + ("" if d.get("rollover", True) else "-norollover") for s, d, _ in OPS])
@pytest.mark.parametrize("vectorised", [False, True], ids=["cpu-kernels", "device-kernels"])
def test_batched_matches_per_sample(section: str, spec: dict[str, Any], tol: float, vectorised: bool,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # device-kernels: the vectorised torch kernels that run on CUDA, forced on the CPU
    monkeypatch.setattr("mmdata.augment.batching.VECTORISED_ON_CPU", vectorised)
    op = build_op(section, {**spec, "p": 1.0 if spec["op"] == "resample" else 0.7}, "test")
    samples = _samples()
    params = [op.draw(derive(5, 1, s.key, 3), s) for s in samples]
    snapshot = copy.deepcopy(samples)
    versions = [{k: v._version for k, v in s.fields.items() if isinstance(v, torch.Tensor)} for s in samples]
    per = [op.apply(s, p) if p["applied"] or getattr(op, "always_transforms", False) else s for s, p in zip(samples, params)]
    ref = collate(per)
    got = op.apply_batch(collate(samples), params)
    for s, s0, ver in zip(samples, snapshot, versions):  # inputs never mutated
        for k, v in s.fields.items():
            if isinstance(v, torch.Tensor):
                assert v._version == ver[k] and torch.equal(v, s0[k])
            else:
                assert v == s0[k]
    for name in ref.data:
        if name in ("image", "audio", "spec"):
            # compare valid regions (padding may differ in width)
            for i in range(len(ref)):
                if not bool(ref.present[name][i]):
                    assert not bool(got.present[name][i]), f"{name}[{i}] presence"
                    continue
                if name == "image":
                    h, w = (int(v) for v in ref.lengths["image"][i])
                    assert [h, w] == [int(v) for v in got.lengths["image"][i]]
                    _close(ref["image"][i, :, :h, :w], got["image"][i, :, :h, :w], tol, f"image[{i}]")
                elif name == "audio":
                    n = int(ref.lengths["audio"][i])
                    assert n == int(got.lengths["audio"][i]), f"audio[{i}] length"
                    _close(ref["audio"][i, :, :n], got["audio"][i, :, :n], tol, f"audio[{i}]")
                else:
                    _close(ref["spec"][i], got["spec"][i], tol, f"spec[{i}]")
        elif name == "tokens":
            for i in range(len(ref)):
                n = int(ref.lengths["tokens"][i])
                assert n == int(got.lengths["tokens"][i]), f"tokens[{i}] length"
                assert ref["tokens"][i, :n].tolist() == got["tokens"][i, :n].tolist(), f"tokens[{i}]"
        else:
            _close(ref[name], got[name], 0, name)
    for name in ref.present:
        assert ref.present[name].tolist() == got.present[name].tolist(), f"present[{name}]"


@pytest.mark.parametrize("section,spec,tol", OPS[:1] + OPS[9:10] + OPS[20:21])
def test_p0_identity_and_param_determinism(section: str, spec: dict[str, Any], tol: float) -> None:
    s = _samples()[0]
    op0 = build_op(section, {**spec, "p": 0.0}, "t")
    p = op0.draw(derive(1, 0, s.key, 0), s)
    assert not p["applied"]
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


@pytest.mark.parametrize("section,spec,tol", OPS, ids=[f"{s}.{d['op']}" + ("" if d.get("rollover", True) else "-norollover") for s, d, _ in OPS])
def test_batched_kernels_never_read_device_data_back(section: str, spec: dict[str, Any], tol: float) -> None:
    """The batched path on a 'meta' batch (tensors without data): any host read of a device tensor
    (.item(), .tolist(), bool(), .cpu(), a per-sample fallback) raises, and so does mixing devices —
    the CPU stand-in for CUDA's set_sync_debug_mode("error") and for device-placement bugs. Presence
    masks and lengths stay host metadata; data stays on the device."""
    if spec["op"] in DEVICE_GENERATOR_OPS:
        pytest.skip("meta has no random generator; covered on CUDA by benchmarks/augment.py")
    from mmdata.augment import load_recipe

    rec = load_recipe({"seed": 0, section: [{**spec, "p": 1.0 if spec["op"] == "resample" else 0.7}]})
    cpu = rec.apply_batched(collate(_samples()), epoch=1)
    meta = rec.apply_batched(collate(_samples()).to("meta"), epoch=1)
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
        out = rec.apply_batch_section(rec.apply_batched(collate(_samples()).to("meta"), epoch), epoch)
        assert {v.device.type for v in out.data.values() if isinstance(v, torch.Tensor)} == {"meta"}
        assert {t.device.type for t in (*out.present.values(), *out.lengths.values())} == {"cpu"}
