"""The normalize stage on a user's messy folder (mixed sizes, image modes L/RGB/RGBA, 16 / 22.05 kHz,
mono / stereo, CJK and missing captions): without it nothing collates (issue 10, defects 1 and 2);
with it the loader works in both ``augment_on`` modes with the same batches, in training and eval."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.testing import make_messy_folder
from mmdata.text import MASK_ID

NORMALIZE = {"image": [{"op": "to_rgb"}, {"op": "resize", "size": 24, "side": "shorter"}, {"op": "center_crop", "size": [24, 24]}],
             "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}, {"op": "pad_trim", "seconds": 0.5}],
             "text": [{"op": "max_tokens", "n": 12}]}
# exact ops only, so both augment_on settings must agree bit for bit
RECIPE = {"seed": 4, "normalize": NORMALIZE,
          "image": [{"op": "hflip", "p": 0.5}, {"op": "cutout", "p": 0.5, "num_holes": [1, 2]}],
          "audio": [{"op": "gain", "p": 0.5}, {"op": "time_mask", "p": 0.5}],
          "text": [{"op": "token_mask", "p": 0.7, "p_token": 0.3},
                   {"op": "some_of", "p": 0.8, "n": [1, 2], "ops": [{"op": "word_crop"}, {"op": "word_swap"}]}],
          "sample": [{"op": "modality_dropout", "p": 0.3}],
          "batch": [{"op": "mixup", "p": 0.5}]}


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("messy")
    m = make_messy_folder(root / "raw", n=40, sizes=((32, 32), (48, 64), (60, 40)), seconds=(0.3, 1.0))
    mmdata.shard(m.root, root / "ds", maxcount=8, split="train=0.7,val=0.3", progress=False)
    return root / "ds"


def _all(ds: Path, **kw: object) -> list[mmdata.Batch]:
    return list(mmdata.loader(ds, 6, **kw))  # type: ignore[arg-type]


def _same(a: mmdata.Batch, b: mmdata.Batch) -> None:
    assert a.keys == b.keys and a.sample_rate == b.sample_rate
    for name in ("image", "audio", "label", "label_b", "mix_lam"):
        pa, pb = (x.present.get(name, torch.zeros(len(x), dtype=torch.bool)) if name in x.present else
                  torch.ones(len(x), dtype=torch.bool) * (name in x) for x in (a, b))
        assert torch.equal(pa, pb), name
        if pa.any():
            assert torch.equal(a[name][pa], b[name][pb]), name
    assert a["text"] == b["text"]
    assert torch.equal(a.lengths["tokens"], b.lengths["tokens"])
    w = int(a.lengths["tokens"].max())
    assert torch.equal(a["tokens"][:, :w], b["tokens"][:, :w])


@pytest.mark.parametrize("augment_on", ["workers", "device"])
def test_messy_data_does_not_collate_without_normalize(messy: Path, augment_on: str) -> None:
    """Defects 1 and 2: the collate error names the sample keys and the normalize op that fixes it — also
    when the resample sits in a random section, which runs after collate with augment_on="device"."""
    with pytest.raises(ValueError, match=r"differ \(.*samples? \[.*\]( \.\.\.)?\); add \{op: (to_rgb|to_mono|resample, rate: \d+)\}.* to normalize\.(image|audio)"):
        _all(messy, augment_on=augment_on)
    if augment_on == "device":
        rec = {"normalize": {"image": NORMALIZE["image"], "audio": [{"op": "to_mono"}]},
               "audio": [{"op": "resample", "rate": 16000}]}
        with pytest.raises(ValueError, match=r"sample rates differ .* add \{op: resample, rate: \d+\} to normalize\.audio"):
            _all(messy, recipe=rec, augment_on="device")


def test_normalize_loads_messy_data_with_the_same_batches_both_ways(messy: Path) -> None:
    w = _all(messy, recipe=RECIPE, seed=1, augment_on="workers")
    d = _all(messy, recipe=RECIPE, seed=1, augment_on="device")
    w2 = _all(messy, recipe=RECIPE, seed=1, augment_on="device", num_workers=2)
    assert sorted(k for b in w for k in b.keys) == sorted(s.key for s in mmdata.open_dataset(messy, split="train"))
    for a, b in zip(w, d, strict=True):
        _same(a, b)
        assert a["image"].shape[1:] == (3, 24, 24) and a.sample_rate == 16000
        assert a["audio"].shape[1:] == (1, 8000) and "label_b" in a
    by_key = {k: (b, i) for b in w for i, k in enumerate(b.keys)}
    for b in w2:  # worker count does not change a sample's params (mixup pairs differ with batch order)
        for i, k in enumerate(b.keys):
            ref, j = by_key[k]
            assert b["text"][i] == ref["text"][j]
            if bool(b.present["audio"][i]) and bool(ref.present["audio"][j]):
                assert torch.equal(b["audio"][i], ref["audio"][j]) or "mix_lam" in b


def test_eval_stage_is_normalize_only_in_order(messy: Path) -> None:
    """stage="eval": deterministic (no random ops, no balance, no mixing, no shuffle), identical every
    epoch and in both modes; the normalize-only recipe loads without random sections."""
    rec = {**RECIPE, "balance": {"by": "label", "mode": "over"}}
    e0 = _all(messy, recipe=rec, split="val", stage="eval", seed=1)
    ld = mmdata.loader(messy, 6, recipe=rec, split="val", stage="eval", seed=2, augment_on="device")
    ld.set_epoch(3)
    e3 = list(ld)
    only = _all(messy, recipe={"normalize": NORMALIZE}, split="val", seed=9, shuffle=False)  # training stage, in order
    plain = [s.key for s in mmdata.open_dataset(messy, split="val")]
    assert [k for b in e0 for k in b.keys] == plain  # reader order, every sample once (no balance repeats)
    for a, b, c in zip(e0, e3, only, strict=True):
        _same(a, b)
        _same(a, c)
        assert "label_b" not in a and "[MASK]" not in " ".join(a["text"])
        assert all(len(e["params"]) >= 1 and e["op"].startswith("normalize.") for m in a.meta["samples"] for e in m["aug"])


def test_cache_holds_normalized_samples(messy: Path) -> None:
    a = _all(messy, recipe=RECIPE, seed=3, cache=True, augment_on="device")
    b = _all(messy, recipe=RECIPE, seed=3, cache=True, augment_on="workers")
    for x, y in zip(a, b, strict=True):
        _same(x, y)
        assert x["image"].shape[1:] == (3, 24, 24)


def test_cjk_captions_are_token_masked_per_character(messy: Path) -> None:
    """Defect 10: a Chinese / Japanese caption is a sequence of tokens, so token_mask masks some of its
    characters, not the whole caption."""
    rec = {"seed": 0, "text": [{"op": "token_mask", "p": 1.0, "p_token": 0.3}]}
    seen = 0
    for b in _all(messy, recipe=rec, seed=0, modalities=["text"]):
        for text, n, ids in zip(b["text"], b.lengths["tokens"].tolist(), b["tokens"]):
            if any("\u4e00" <= ch <= "\u9fff" for ch in text):
                seen += 1
                masked = int((ids[:n] == MASK_ID).sum())
                assert n > 5 and 0 < text.count("[MASK]") < n, text
                assert masked == text.count("[MASK]")
    assert seen >= 3


def test_normalize_spec_and_with_normalize(messy: Path) -> None:
    """The helper a trainer uses to add a normalize stage derived from the data; a recipe's own
    normalize lists win."""
    from mmdata.augment import load_recipe, normalize_spec

    spec = normalize_spec(image_size=20, channels=1, sample_rate=8000, mono=True, seconds=0.4, max_tokens=5)
    rec = load_recipe({"normalize": {"text": [{"op": "max_tokens", "n": 9}]}}).with_normalize(spec)
    assert [s["op"] for s in rec.to_dict()["normalize"]["image"]] == ["to_gray", "resize", "center_crop"]
    assert rec.to_dict()["normalize"]["text"][0]["n"] == 9
    b = next(iter(mmdata.loader(messy, 8, recipe=rec, stage="eval")))
    assert b["image"].shape[1:] == (1, 20, 20) and b["audio"].shape[1:] == (1, 3200) and b.sample_rate == 8000
    assert int(b.lengths["tokens"].max()) <= 9
    letterbox = load_recipe({}).with_normalize(normalize_spec(image_size=24, resize="longer", channels=3))
    assert tuple(next(iter(mmdata.loader(messy, 4, recipe=letterbox, modalities=["image"])))["image"].shape[1:]) == (3, 24, 24)
    wide = load_recipe({}).with_normalize(normalize_spec(image_size=[16, 24], channels=3))
    assert tuple(next(iter(mmdata.loader(messy, 4, recipe=wide, modalities=["image"])))["image"].shape[1:]) == (3, 16, 24)
