"""``augment_on="workers"`` and ``augment_on="device"`` give the same batches — keys, presence masks, lengths,
sample rate, tensor shapes and values — on a messy dataset (mixed image sizes, missing modalities, captions
in several languages), for ops that drop a modality or shorten texts. Each test reproduces a QA defect:

* A: a modality ``modality_dropout`` dropped from every row of a batch kept all-zero tensors (and ``spec``'s
  mask, and the sample rate) in device batches, and dropping some rows left the padding of the dropped ones;
* B: text ops that shorten texts (``max_tokens``, ``word_delete``, ``word_crop``, ``modality_dropout`` of
  text) left ``tokens`` as wide as before in device batches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import mmdata
from mmdata import Batch, Sample, collate
from mmdata.augment.recipe import load_recipe
from mmdata.testing import make_messy_folder

NORMALIZE = {"image": [{"op": "to_rgb"}], "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}]}
NORMALIZE_SPEC = {"image": [{"op": "to_rgb"}],
                  "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}, {"op": "logmel", "n_mels": 16}]}
FIELDS = ("image", "audio", "text", "label")


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parity")
    make_messy_folder(root / "raw", n=12, seed=0, sizes=((32, 32), (48, 40)), seconds=(0.3, 0.6))
    mmdata.shard(root / "raw", root / "ds", progress=False)
    return root / "ds"


def _assert_same(w: Batch, d: Batch, where: str) -> None:
    """Workers batch ``w`` and device batch ``d`` are the same batch (padding included)."""
    assert w.keys == d.keys, where
    assert sorted(w.data) == sorted(d.data), f"{where}: fields"
    assert {k: v.tolist() for k, v in w.present.items()} == {k: v.tolist() for k, v in d.present.items()}, f"{where}: present"
    assert {k: v.tolist() for k, v in w.lengths.items()} == {k: v.tolist() for k, v in d.lengths.items()}, f"{where}: lengths"
    assert w.sample_rate == d.sample_rate, f"{where}: sample_rate"
    for name, v in w.data.items():
        u = d.data[name]
        if isinstance(v, torch.Tensor):
            assert tuple(v.shape) == tuple(u.shape), f"{where}: {name} shape {tuple(v.shape)} vs {tuple(u.shape)}"
            assert v.dtype == u.dtype and torch.equal(v, u), f"{where}: {name} values"
        else:
            assert v == u, f"{where}: {name}"


def _both(ds: Path, rec: dict[str, Any], seed: int = 0, epochs: int = 2) -> list[tuple[Batch, Batch]]:
    """Every batch of ``epochs`` passes with per-sample kernels in the workers and with batched kernels."""
    loaders = [mmdata.loader(ds, 4, recipe=rec, seed=seed, augment_on=m) for m in ("workers", "device")]
    pairs: list[tuple[Batch, Batch]] = []
    for _ in range(epochs):
        w, d = (list(ld) for ld in loaders)
        assert len(w) == len(d)
        pairs.extend(zip(w, d))
    return pairs


# -- A: a modality dropped from every row, or from some ---------------------------------------------------------


def test_audio_dropped_from_every_row_leaves_no_tensor_mask_of_spec_or_rate(ds: Path) -> None:
    """QA repro: with ``logmel`` in normalize, dropping audio everywhere left zero ``audio`` / ``spec``
    tensors, a ``spec`` mask and the sample rate in device batches; collate gives a mask only."""
    rec = {"normalize": NORMALIZE_SPEC,
           "sample": [{"op": "modality_dropout", "modalities": ["audio"], "p_drop": 1.0}]}
    for i, (w, d) in enumerate(_both(ds, rec)):
        _assert_same(w, d, f"batch {i}")
        assert "audio" not in d and "spec" not in d and "spec" not in d.present and d.sample_rate is None
        assert not d.present["audio"].any()


def test_bare_shards_dropping_a_modality_everywhere_match_too(ds: Path) -> None:
    """Bare shards (no card): a modality dropped from every row has the same mask either way (the device path
    kept an all-False one, the workers none); since QA33 every loader batch masks image / audio / text, all False
    where absent."""
    rec = {"normalize": NORMALIZE_SPEC, "sample": [{"op": "modality_dropout", "modalities": ["audio"], "p_drop": 1.0}]}
    shards = sorted(str(p) for p in ds.glob("*.tar"))
    w, d = (next(iter(mmdata.loader(shards, 4, recipe=rec, seed=0, augment_on=m))) for m in ("workers", "device"))
    _assert_same(w, d, "bare shards")
    assert not w.present["audio"].any() and not d.present["audio"].any() and "spec" not in d.present


@pytest.mark.parametrize("vectorised", [False, True], ids=["cpu-kernels", "device-kernels"])
def test_image_dropped_from_every_row_leaves_no_tensor(ds: Path, vectorised: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropping the image everywhere (after an image op) leaves the mask and no tensor, in both modes."""
    monkeypatch.setattr("mmdata.augment.batching.VECTORISED_ON_CPU", vectorised)
    rec = {"normalize": NORMALIZE, "image": [{"op": "hflip", "p": 0.5}],
           "sample": [{"op": "modality_dropout", "modalities": ["image"], "p_drop": 1.0}]}
    for i, (w, d) in enumerate(_both(ds, rec, epochs=1)):
        _assert_same(w, d, f"batch {i}")
        assert "image" not in d and "image" not in d.lengths and not d.present["image"].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dropping_some_rows_trims_padding_to_the_rows_left(ds: Path, seed: int) -> None:
    """Random drops of every modality on mixed image sizes and clip lengths: the same padded shapes
    (collate pads to the rows still present), presence, lengths and values both ways."""
    rec = {"normalize": NORMALIZE_SPEC, "sample": [{"op": "modality_dropout", "p": 0.9, "p_drop": 0.5}]}
    for i, (w, d) in enumerate(_both(ds, rec, seed=seed)):
        _assert_same(w, d, f"seed {seed} batch {i}")


def test_the_batched_kernel_trims_what_it_dropped() -> None:
    """Kernel level, on rows built to need it: the largest image, the longest clip (and its spec) and the
    longest caption are dropped, so the batch after the op is narrower than before — as collate makes it."""
    g = torch.Generator().manual_seed(0)
    samples = [Sample(f"k{i}", {"image": torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8),
                                "audio": torch.randn(1, n, generator=g), "text": t, "label": i},
                      sample_rate=8000)
               for i, (h, w, n, t) in enumerate([(40, 48, 900, "one two three four five six"), (16, 20, 300, "a b"),
                                                 (24, 16, 500, "一张照片")])]
    spec = load_recipe({"normalize": {"audio": [{"op": "logmel", "n_mels": 8}]}})
    samples = [spec.normalize(s) for s in samples]
    rec = load_recipe({"seed": 3, "sample": [{"op": "modality_dropout", "modalities": ["image", "audio", "text"],
                                              "p_drop": 1.0, "keep_at_least": 1}]})
    rows = [rec.apply_sample(s) for s in samples]
    before = collate(samples, fields=FIELDS)
    got = rec.apply_batched(before)
    ref = collate(rows, fields=FIELDS)
    _assert_same(ref, got, "kernel")
    assert sum(len(s.fields) for s in rows) < sum(len(s.fields) for s in samples)


def test_a_per_sample_fallback_keeps_the_fields_no_row_has() -> None:
    """An op without a vectorised CPU kernel (per-sample fallback, re-collated) on a batch none of whose rows
    has audio or a label keeps their masks and the -1 labels, as the loader's collate gives them."""
    g = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 256, (3, 20 + 4 * i, 24), generator=g, dtype=torch.uint8) for i in range(3)]
    samples = [Sample(f"k{i}", {"image": x, "text": "a cat"}) for i, x in enumerate(images)]
    rec = load_recipe({"seed": 1, "image": [{"op": "random_resized_crop", "size": [16, 16], "p": 1.0}]})
    got = rec.apply_batched(collate(samples, fields=FIELDS))
    ref = collate([rec.apply_sample(s) for s in samples], fields=FIELDS)
    _assert_same(ref, got, "fallback")
    assert got["label"].tolist() == [-1, -1, -1] and not got.present["audio"].any()


# -- B: text ops that shorten texts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [
    {"op": "max_tokens", "n": 3},
    {"op": "word_delete", "p": 1.0, "p_word": 0.6},
    {"op": "word_crop", "p": 1.0, "fraction": [0.2, 0.5]},
    {"op": "word_crop", "p": 0.5, "fraction": [0.2, 0.5]},
    {"op": "token_mask", "p": 1.0, "p_token": 0.5},
    {"op": "typo", "p": 1.0, "p_word": 0.5},
], ids=lambda s: f"{s['op']}-p{s.get('p', 1.0)}")
def test_text_ops_give_tokens_as_wide_as_the_longest_text(ds: Path, spec: dict[str, Any]) -> None:
    """QA repro: ``max_tokens`` n=3 gave (4, 23) tokens in device batches, (4, 3) in workers batches."""
    rec = {"normalize": NORMALIZE, "text": [spec]}
    for i, (w, d) in enumerate(_both(ds, rec)):
        _assert_same(w, d, f"batch {i}")
        assert d["tokens"].shape[1] == max(1, int(d.lengths["tokens"].max()))


def test_text_dropped_from_every_row_leaves_one_pad_column(ds: Path) -> None:
    """Dropping every caption: empty texts, all-False mask and (B, 1) PAD tokens, like collate."""
    rec = {"normalize": NORMALIZE, "sample": [{"op": "modality_dropout", "modalities": ["text"], "p_drop": 1.0}]}
    for i, (w, d) in enumerate(_both(ds, rec, epochs=1)):
        _assert_same(w, d, f"batch {i}")
        assert d["text"] == [""] * len(d) and tuple(d["tokens"].shape) == (len(d), 1) and not d["tokens"].any()
