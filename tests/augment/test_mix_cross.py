"""Mixing (mixup, mixgen) and cross-modal ops (modality_dropout, consistent_hflip) on missing modalities,
ragged audio and derived fields: each test reproduces a defect of the QA pass on these ops.

* modality_dropout drops audio's derived ``spec`` with it (per sample) / clears and zeroes it (batched);
* mixup / mixgen mix a modality only where the row and its partner both have it, extend audio lengths to
  the pair's, and mix the label only when the row's primary modality was mixed;
* a batch is mixed once: a second mixing op raises, naming the op;
* partners form a derangement (no row mixed with itself);
* consistent_hflip leaves samples without an image alone and swaps configurable word pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import mmdata
from mmdata import Sample, collate
from mmdata.augment.base import build_op
from mmdata.augment.recipe import load_recipe
from mmdata.errors import RecipeError
from mmdata.rng import derive
from mmdata.testing import make_sample_folder
from mmdata.types import uncollate

NORMALIZE = {"audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}, {"op": "pad_trim", "seconds": 0.3}],
             "image": [{"op": "to_rgb"}, {"op": "resize", "size": [16, 16], "side": "exact"}]}


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mixcross")
    mmdata.shard(make_sample_folder(root / "raw", n=8), root / "ds", maxcount=8, progress=False)
    return root / "ds"


def _samples(n: int = 8, seed: int = 0, spec: bool = False) -> list[Sample]:
    """Rows with every presence pattern of image / audio / text, audio of different lengths, labels."""
    g = torch.Generator().manual_seed(seed)
    texts = ["the dog on the left", "a red box", "left and right", "one", "a cat at the right-hand side"]
    out = []
    for i in range(n):
        fields: dict[str, Any] = {"label": i % 5}
        if i % 4 != 1:
            fields["image"] = torch.randint(0, 256, (3, 8, 10), generator=g, dtype=torch.uint8)
        if i % 3 != 2:
            fields["audio"] = torch.randn(1, 200 + 60 * ((i * 7) % 5), generator=g) * 0.3
        if i % 5 != 3:
            fields["text"] = texts[i % len(texts)]
        out.append(Sample(f"s{seed}-{i}", fields, sample_rate=8000))
    if spec:
        lm = build_op("audio", {"op": "logmel", "n_mels": 6}, "audio[0]")
        out = [lm.apply(s, {"applied": True}) if "audio" in s else s for s in out]
    return out


def _assert_batches_agree(ref: mmdata.Batch, got: mmdata.Batch) -> None:
    """Presence, valid regions and lengths of every field (padding may differ)."""
    assert sorted(ref.present) == sorted(got.present)
    for name in ref.present:
        assert ref.present[name].tolist() == got.present[name].tolist(), f"present[{name}]"
    for i in range(len(ref)):
        for name in ("image", "audio", "spec"):
            if name not in ref.present or not bool(ref.present[name][i]):
                continue
            if name == "image":
                h, w = (int(v) for v in ref.lengths["image"][i])
                assert got.lengths["image"][i].tolist() == [h, w]
                assert torch.equal(ref["image"][i, :, :h, :w], got["image"][i, :, :h, :w])
            elif name == "audio":
                n = int(ref.lengths["audio"][i])
                assert int(got.lengths["audio"][i]) == n
                assert torch.equal(ref["audio"][i, :, :n], got["audio"][i, :, :n])
            else:
                shape = ref.lengths["spec"][i].tolist() if "spec" in ref.lengths else list(ref["spec"].shape[1:])
                region = (i, *(slice(0, v) for v in shape))
                assert torch.allclose(ref["spec"][region], got["spec"][region])
    assert ref["text"] == got["text"]


# -- defect 1: modality_dropout and audio's derived spec ----------------------------------------------------


@pytest.mark.parametrize("augment_on", ["workers", "device"])
def test_dropping_audio_drops_its_spec_in_both_modes(ds: Path, augment_on: str) -> None:
    """QA repro: logmel, then modality_dropout of audio with p_drop 1 — no row keeps a spec (workers kept it
    with values, device marked audio absent but left spec untouched)."""
    rec = {"normalize": NORMALIZE, "audio": [{"op": "logmel", "n_mels": 8}],
           "sample": [{"op": "modality_dropout", "modalities": ["audio"], "p_drop": 1.0}]}
    b = next(iter(mmdata.loader(ds, 8, recipe=rec, augment_on=augment_on, shuffle=False)))
    assert not b.present.get("audio", torch.zeros(len(b), dtype=torch.bool)).any()
    if "spec" in b:
        assert not b.present["spec"].any() and not b["spec"].any()


def test_modality_dropout_kernels_agree_on_derived_fields() -> None:
    """Per-sample (drops audio and spec) and batched (clears presence, zeroes data, lengths) agree; rows that
    keep their audio keep their spec bit for bit."""
    rec = load_recipe({"seed": 2, "sample": [{"op": "modality_dropout", "p": 0.8, "p_drop": 0.6}]})
    dropped_audio = 0
    for epoch in range(4):
        samples = _samples(9, seed=epoch, spec=True)
        per = [rec.apply_sample(s, epoch=epoch) for s in samples]
        assert all(("spec" in s) == ("audio" in s) for s in per)
        got = rec.apply_batched(collate(samples), epoch)
        ref = collate(per)
        _assert_batches_agree(ref, got)
        assert got.present["spec"].tolist() == [("audio" in s) for s in per]
        gone = ~got.present["spec"]
        assert not got["spec"][gone].any() and not got["audio"][gone].any()
        if "spec" in got.lengths:
            assert not got.lengths["spec"][gone].any()
        dropped_audio += sum("audio" in s and "audio" not in p for s, p in zip(samples, per))
    assert dropped_audio > 0


# -- defect 2: mixing respects presence masks and audio lengths ----------------------------------------------


def _expected_mix(samples: list[Sample], params: dict[str, Any], op: str) -> list[dict[str, Any]]:
    """Per-row reference of the documented rule, from the samples themselves (no batch padding involved)."""
    mods = ("image", "audio") if op == "mixup" else ("image", "text")
    out = []
    for i, s in enumerate(samples):
        j = params["perm"][i]
        lam = params["lam"][i]
        partner = samples[j]
        row: dict[str, Any] = {}
        mixed = {m: params["rows"][i] and j != i and m in s and m in partner for m in mods}
        if "image" in s:
            x = s["image"].float()
            if mixed["image"]:
                y = lam * x + (1 - lam) * partner["image"].float()
                x = y.round().clamp(0, 255)
            row["image"] = x.to(torch.uint8)
        if "audio" in s:
            a = s["audio"]
            if op == "mixup" and mixed["audio"]:
                b = partner["audio"]
                n = max(a.shape[-1], b.shape[-1])
                a = lam * torch.nn.functional.pad(a, (0, n - a.shape[-1])) + (1 - lam) * torch.nn.functional.pad(b, (0, n - b.shape[-1]))
            row["audio"] = a
        if "text" in s:
            row["text"] = f"{s['text']} {partner['text']}" if op == "mixgen" and mixed["text"] else s["text"]
        primary = next((m for m in mods if m in s), None)
        label_mixed = primary is not None and mixed[primary]
        row["mix_lam"] = lam if label_mixed else 1.0
        row["label_b"] = partner["label"] if label_mixed else s["label"]
        out.append(row)
    return out


@pytest.mark.parametrize("op", ["mixup", "mixgen"])
def test_mixing_follows_presence_and_lengths(op: str) -> None:
    """Images / audio / captions are mixed only where both rows have them; absent rows stay empty and
    absent; audio lengths become the pair's longest; label weights follow the primary modality."""
    seen_partial = 0
    for seed in range(6):
        samples = _samples(8, seed=seed)
        rec = load_recipe({"seed": seed, "batch": [{"op": op, "p": 0.9}]})
        b = collate(samples)
        out = rec.apply_batch_section(b)
        params = out.meta["aug_batch"][0]["params"]
        exp = _expected_mix(samples, params, op)
        for name in b.present:
            assert out.present[name].tolist() == b.present[name].tolist(), name
        assert not out["image"][~b.present["image"]].any() and not out["audio"][~b.present["audio"]].any()
        assert [t for t, p in zip(out["text"], b.present["text"].tolist()) if not p] == [""] * int((~b.present["text"]).sum())
        for i, (s, e) in enumerate(zip(uncollate(out), exp)):
            if "image" in e:  # the reference rounds lam in double precision: ties may land 1 level apart
                assert s["image"].shape == e["image"].shape and (s["image"].int() - e["image"].int()).abs().max() <= 1, (seed, i)
            if "audio" in e:
                assert s["audio"].shape == e["audio"].shape, (seed, i)
                assert torch.allclose(s["audio"], e["audio"], atol=1e-6), (seed, i)
            assert s.fields.get("text") == e.get("text"), (seed, i)
        assert out["mix_lam"].tolist() == pytest.approx([e["mix_lam"] for e in exp])
        assert out["label_b"].tolist() == [e["label_b"] for e in exp]
        seen_partial += sum(1 for e in exp if e["mix_lam"] == 1.0)
    assert seen_partial > 0  # the presence patterns did exercise the unmixed-label rule


def test_mixup_audio_beyond_the_row_length_is_kept_and_counted() -> None:
    """QA repro: a short clip mixed with a long partner — the partner's tail is inside the row's length."""
    short = Sample("a", {"audio": torch.ones(1, 4), "label": 0}, sample_rate=8000)
    long = Sample("b", {"audio": torch.full((1, 10), 2.0), "label": 1}, sample_rate=8000)
    op = build_op("batch", {"op": "mixup", "p": 1.0}, "batch[0]")
    out = op.mix(collate([short, long]), {"perm": [1, 0], "rows": [True, True], "lam": [0.75, 0.75]})
    assert out.lengths["audio"].tolist() == [10, 10]
    assert out["audio"][0, 0].tolist() == pytest.approx([1.25] * 4 + [0.5] * 6)
    assert out["audio"][1, 0].tolist() == pytest.approx([1.75] * 4 + [1.5] * 6)


def test_mixup_image_next_to_an_absent_partner_is_unchanged() -> None:
    """QA repro: an image mixed with an absent partner's zeros was darkened and took the partner's label."""
    img = Sample("a", {"image": torch.full((1, 2, 2), 200, dtype=torch.uint8), "label": 0})
    none = Sample("b", {"audio": torch.ones(1, 5), "label": 1}, sample_rate=8000)
    op = build_op("batch", {"op": "mixup", "p": 1.0}, "batch[0]")
    out = op.mix(collate([img, none]), {"perm": [1, 0], "rows": [True, True], "lam": [0.6, 0.6]})
    assert out["image"][0].flatten().tolist() == [200] * 4 and not out["image"][1].any()
    assert out["audio"][0].abs().sum() == 0 and out["audio"][1].tolist() == [[1.0] * 5]
    assert out.present["image"].tolist() == [True, False] and out.present["audio"].tolist() == [False, True]
    assert out["mix_lam"].tolist() == [1.0, 1.0] and out["label_b"].tolist() == [0, 1]


def test_mixing_on_a_device_batch_stays_sync_free() -> None:
    """Both mixing ops with missing modalities and ragged audio on a 'meta' batch: no host read of data."""
    for op in ("mixup", "mixgen"):
        rec = load_recipe({"seed": 1, "batch": [{"op": op, "p": 0.7}]})
        cpu = rec.apply_batch_section(collate(_samples(8, spec=True)))
        meta = rec.apply_batch_section(collate(_samples(8, spec=True)).to("meta"))
        assert {v.device.type for v in meta.data.values() if isinstance(v, torch.Tensor)} == {"meta"}
        assert {k: v.tolist() for k, v in meta.lengths.items()} == {k: v.tolist() for k, v in cpu.lengths.items()}
        assert meta["text"] == cpu["text"]


# -- defect 3: a batch is mixed once -------------------------------------------------------------------------


def test_second_mixing_op_raises_naming_the_op() -> None:
    """QA repro: two mixgen steps gave label_b of the second pairing with a folded lambda."""
    # refused when the recipe is loaded
    with pytest.raises(RecipeError, match=r"batch\[1\].*mixgen.*batch\[0\]"):
        load_recipe({"batch": [{"op": "mixgen"}, {"op": "mixgen"}]})
    # and, for ops applied by hand, when a mixed batch reaches a second mixing op
    b = collate([Sample(f"k{i}", {"image": torch.full((1, 1, 1), 40 * (i + 1), dtype=torch.uint8), "label": i}) for i in range(4)])
    first, second = (build_op("batch", {"op": "mixgen"}, f"batch[{i}]") for i in range(2))
    mixed = first.mix(b, first.draw_batch(np.random.default_rng(0), b))
    with pytest.raises(RecipeError, match=r"batch\[1\].*mixgen.*already mixed by batch\[0\]"):
        second.mix(mixed, second.draw_batch(np.random.default_rng(1), mixed))


def test_batch_section_check_for_load_time() -> None:
    """The check recipe loading can call on the whole section: one mixing op at most."""
    from mmdata.augment.mix import check_batch_section

    one = [build_op("batch", {"op": "mixup"}, "batch[0]")]
    check_batch_section(one)
    with pytest.raises(RecipeError, match=r"batch\[1\]: .*mixgen.*batch\[0\].*mixup"):
        check_batch_section([*one, build_op("batch", {"op": "mixgen"}, "batch[1]")])


# -- defect 4: no row is its own partner ---------------------------------------------------------------------


def test_partners_form_a_seeded_derangement() -> None:
    from mmdata.augment.mix import derangement

    for n in range(2, 40):
        for seed in range(8):
            perm = derangement(np.random.default_rng([seed, n]), n)
            assert sorted(perm) == list(range(n)) and all(p != i for i, p in enumerate(perm)), (n, perm)
            assert perm == derangement(np.random.default_rng([seed, n]), n)
    assert derangement(np.random.default_rng(0), 1) == [0] and derangement(np.random.default_rng(0), 0) == []
    # uniform over derangements of 3 (there are 2)
    counts: dict[tuple[int, ...], int] = {}
    rng = np.random.default_rng(5)
    for _ in range(400):
        perm = tuple(derangement(rng, 3))
        counts[perm] = counts.get(perm, 0) + 1
    assert set(counts) == {(1, 2, 0), (2, 0, 1)} and min(counts.values()) > 150


def test_mixgen_never_doubles_a_caption() -> None:
    """QA repro: a row paired with itself got "caption caption" and an unchanged image."""
    for n in (2, 3, 5, 8):
        samples = [Sample(f"k{i}", {"image": torch.full((1, 1, 1), 10 * i, dtype=torch.uint8), "text": f"w{i}", "label": i})
                   for i in range(n)]
        for seed in range(20):
            out = load_recipe({"seed": seed, "batch": [{"op": "mixgen", "p": 1.0}]}).apply_batch_section(collate(samples))
            for i, t in enumerate(out["text"]):
                assert t.split()[0] == f"w{i}" and t.split()[1] != f"w{i}", (n, seed, t)
            assert out["label_b"].tolist() != list(range(n))
            assert not (out["label_b"] == out["label"]).any()
            again = load_recipe({"seed": seed, "batch": [{"op": "mixgen", "p": 1.0}]}).apply_batch_section(collate(samples))
            assert again["text"] == out["text"] and torch.equal(again["image"], out["image"])
    single = collate(samples[:1])
    out = load_recipe({"batch": [{"op": "mixgen", "p": 1.0}]}).apply_batch_section(single)
    assert out["text"] == ["w0"] and out["mix_lam"].tolist() == [1.0]


# -- defect 5: consistent_hflip ------------------------------------------------------------------------------


def test_consistent_hflip_leaves_a_caption_without_image_alone() -> None:
    """Per sample and batched: no image, nothing to flip, no caption rewrite (and the log says so)."""
    rec = load_recipe({"seed": 0, "sample": [{"op": "consistent_hflip", "p": 1.0}]})
    samples = [Sample("a", {"text": "the dog on the left"}),
               Sample("b", {"image": torch.arange(6, dtype=torch.uint8).reshape(1, 2, 3), "text": "left of the box"}),
               Sample("c", {"audio": torch.ones(1, 4), "text": "right"}, sample_rate=8000)]
    per = [rec.apply_sample(s) for s in samples]
    assert [s["text"] for s in per] == ["the dog on the left", "right of the box", "right"]
    assert [s.meta["aug"][0]["params"]["applied"] for s in per] == [False, True, False]
    got = rec.apply_batched(collate(samples))
    assert got["text"] == [s["text"] for s in per] and got.meta["aug"] == [s.meta["aug"] for s in per]
    # a replayed "applied" on a row without image (older logs) still leaves its caption
    op = build_op("sample", {"op": "consistent_hflip", "p": 1.0}, "sample[0]")
    assert op.apply(samples[0], {"applied": True})["text"] == "the dog on the left"
    b = op.apply_batch(collate(samples), [{"applied": True}] * 3)
    assert b["text"] == ["the dog on the left", "right of the box", "right"]


def test_consistent_hflip_default_pairs() -> None:
    from mmdata.augment.cross import swap_left_right

    assert swap_left_right("Left of the bright, upright LEFTMOST tree; right-hand side, leftwards") == \
        "Right of the bright, upright RIGHTMOST tree; left-hand side, rightwards"
    assert swap_left_right("狗在左边，猫在右侧，左右对称") == "狗在右边，猫在左侧，左右对称"
    assert swap_left_right("画像の左に犬") == "画像の右に犬"
    assert swap_left_right("chain links on the left") == "chain links on the right"  # English "links" stays


def test_consistent_hflip_pairs_are_configurable() -> None:
    fr_de = [["left", "right"], ["gauche", "droite"], ["links", "rechts"], ["linken", "rechten"]]
    op = build_op("sample", {"op": "consistent_hflip", "p": 1.0, "pairs": fr_de}, "sample[0]")
    img = torch.arange(6, dtype=torch.uint8).reshape(1, 2, 3)
    for text, want in [("le chien à gauche, la maladroite à Droite", "le chien à droite, la maladroite à Gauche"),
                       ("Der Hund ist links, auf der linken Seite", "Der Hund ist rechts, auf der rechten Seite"),
                       ("LEFT", "RIGHT"), ("leftmost", "leftmost")]:
        assert op.apply(Sample("k", {"image": img, "text": text}), {"applied": True})["text"] == want
    default = build_op("sample", {"op": "consistent_hflip", "p": 0.5}, "sample[0]")
    assert default.to_dict() == {"op": "consistent_hflip", "p": 0.5}  # recipes from before `pairs` keep their text
    assert build_op("sample", default.to_dict(), "sample[0]").pairs == default.pairs
    again = build_op("sample", op.to_dict(), "sample[0]")
    assert again.to_dict() == op.to_dict() and op.to_dict()["pairs"] == fr_de
    rec = load_recipe({"sample": [{"op": "consistent_hflip", "p": 0.6, "pairs": fr_de}]})
    assert load_recipe(rec.to_yaml()).to_yaml() == rec.to_yaml()
    samples = [Sample(f"k{i}", {"image": img, "text": t}) if i % 3 else Sample(f"k{i}", {"text": t})
               for i, t in enumerate(["à gauche", "links oben", "droite et gauche", "left", "rechts", "gauche"] * 2)]
    for epoch in range(3):
        per = [rec.apply_sample(s, epoch=epoch) for s in samples]
        _assert_batches_agree(collate(per), rec.apply_batched(collate(samples), epoch))


@pytest.mark.parametrize("pairs,match", [
    ([["left"]], r"sample\[0\]\.pairs\[0\]: expected a pair"),
    ([["left", "right"], ["left", "droite"]], r"sample\[0\]\.pairs\[1\]: 'left' .*already"),
    ([["left", ""]], r"sample\[0\]\.pairs\[0\]"),
    ("left", r"sample\[0\]\.pairs: expected"),
])
def test_consistent_hflip_rejects_bad_pairs(pairs: Any, match: str) -> None:
    with pytest.raises(RecipeError, match=match):
        build_op("sample", {"op": "consistent_hflip", "pairs": pairs}, "sample[0]")


def test_mixup_mixes_spec_as_it_mixes_the_waveform() -> None:
    """Ops QA 2026-12-02: the waveform was mixed over the longer clip of a pair but its log-mel only over the
    frames both had, so row 0's spec kept 11 frames beside 3200 samples of audio and row 1's tail frames
    stayed unmixed. Now both are mixed over the longer, each row silent past its end."""
    from mmdata.augment.audio import logmel
    from mmdata.augment.mix import SILENT_FRAME
    from mmdata.augment.recipe import load_recipe

    r = load_recipe({"normalize": {"audio": [{"op": "logmel"}]}, "batch": [{"op": "mixup", "p": 1.0, "alpha": 1.0}]})
    rows = [r.normalize(Sample(k, {"audio": torch.sin(torch.arange(n) * f)[None] * 0.3, "label": i}, sample_rate=16000))
            for i, (k, n, f) in enumerate((("a", 1600, 0.3), ("b", 3200, 0.05)))]
    b = collate(rows)
    o = r.apply_batch_section(b, 0)
    frames = b.lengths["spec"][:, -1]
    for i in range(2):
        n = int(o.lengths["audio"][i])
        assert int(o.lengths["spec"][i, -1]) == logmel(o["audio"][i, :, :n], 16000).shape[-1] == 21
        lam, j = float(o["mix_lam"][i]), 1 - i
        own = torch.where(torch.arange(21) < frames[i], b["spec"][i], torch.full_like(b["spec"][i], SILENT_FRAME))
        other = torch.where(torch.arange(21) < frames[j], b["spec"][j], torch.full_like(b["spec"][j], SILENT_FRAME))
        assert torch.allclose(o["spec"][i], lam * own + (1 - lam) * other, atol=1e-5)
