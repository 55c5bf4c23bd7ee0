"""QA round 30, kernels #3 and #6: what the batched entry checks of a batch beyond its data tensors.

#3: a hand-built ``Batch`` whose ``present`` masks, ``lengths`` or ``keys`` are not what ``collate`` makes
crashed deep in torch / cv2 (``masked_fill_ only supports boolean masks``, ``list index out of range``) or
was taken silently (image lengths past the padded size). Each is refused with an InputError naming the
field, what was expected and what was given; the loader's and collate's own batches still pass.

#6: NaN / Inf audio went through every kernel silently; it is refused where audio enters (per sample and
batched, on the CPU), naming the sample.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.augment.contract import InputError, check_batch_input
from mmdata.augment.recipe import load_recipe
from mmdata.types import Batch, Sample, collate

RECIPE = {"seed": 0, "image": [{"op": "hflip", "p": 0.5}, {"op": "rotate"}, {"op": "cutout"}],
          "audio": [{"op": "gain"}, {"op": "time_shift", "p": 1.0}]}
T = torch.tensor


def _image_batch(keys: list[str], present: object, lengths: object = None) -> Batch:
    img = torch.randint(0, 256, (3, 3, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return Batch(keys=keys, data={"image": img}, present={"image": present},
                 lengths={"image": T([[4, 4]] * 3) if lengths is None else lengths})


def _audio_batch(present: object, lengths: object) -> Batch:
    audio = torch.randn(2, 1, 50, generator=torch.Generator().manual_seed(0))
    return Batch(keys=["a", "b"], data={"audio": audio}, present={"audio": present}, lengths={"audio": lengths},
                 sample_rate=16000)


# (case, batch, what the message must say) — the report's table, each once a raw torch / cv2 error or nothing
CASES = [
    ("image present as 0/1 ints", lambda: _image_batch(["a", "b", "c"], T([1, 0, 1])),
     r"batch.present\['image'\] must be a torch.bool tensor \(B,\) = \(3,\).*got torch.int64 \(3,\) -> x.bool\(\)"),
    ("image present of 2 rows for 3", lambda: _image_batch(["a", "b", "c"], T([True, False])),
     r"batch.present\['image'\] must be a torch.bool tensor \(B,\) = \(3,\).*got torch.bool \(2,\)"),
    ("image present as a list", lambda: _image_batch(["a", "b", "c"], [True, False, True]),
     r"batch.present\['image'\] must be .*got a list -> torch.tensor\(x, dtype=torch.bool\)"),
    ("2 keys for 3 rows", lambda: _image_batch(["a", "b"], T([True] * 3)),
     r"batch.keys has 2 keys but batch\['image'\] has 3 rows"),
    ("4 keys for 3 rows", lambda: _image_batch(["a", "b", "c", "d"], T([True] * 4)),
     r"batch.keys has 4 keys but batch\['image'\] has 3 rows"),
    ("image lengths (B,) not (B, 2)", lambda: _image_batch(["a", "b", "c"], T([True] * 3), T([4, 4, 4])),
     r"batch.lengths\['image'\] must be \(B, 2\) int64 \(height, width\), shape \(3, 2\) here, got torch.int64 \(3,\)"),
    ("image lengths 9x9 > 4x4", lambda: _image_batch(["a", "b", "c"], T([True] * 3), T([[9, 9]] * 3)),
     r"batch.lengths\['image'\] .*values in \[0, 4\] x \[0, 4\] .*got \[9, 9\] for row 0 \(key 'a'\)"),
    ("image lengths negative", lambda: _image_batch(["a", "b", "c"], T([True] * 3), T([[4, 4], [4, -1], [4, 4]])),
     r"batch.lengths\['image'\] .*got \[4, -1\] for row 1 \(key 'b'\)"),
    ("image lengths float", lambda: _image_batch(["a", "b", "c"], T([True] * 3), T([[4.0, 4.0]] * 3)),
     r"batch.lengths\['image'\] must be \(B, 2\) int64.*got torch.float32 \(3, 2\) -> x.long\(\)"),
    ("audio lengths 80 > T=50", lambda: _audio_batch(T([True, True]), T([80, 20])),
     r"batch.lengths\['audio'\] must be \(B,\) int64 \(time samples\) with values in \[0, 50\].*got 80 for row 0 \(key 'a'\)"),
    ("audio lengths float", lambda: _audio_batch(T([True, True]), T([50.0, 20.0])),
     r"batch.lengths\['audio'\] must be \(B,\) int64.*got torch.float32 \(2,\)"),
    ("audio present as 0/1 ints", lambda: _audio_batch(T([1, 1]), T([50, 20])),
     r"batch.present\['audio'\] must be a torch.bool tensor \(B,\) = \(2,\).*got torch.int64"),
]


@pytest.mark.parametrize(("case", "make", "message"), CASES, ids=[c[0] for c in CASES])
def test_malformed_batch_metadata_is_refused_naming_the_field(case: str, make: object, message: str) -> None:
    rec = load_recipe(RECIPE)
    batch = make()  # type: ignore[operator]
    with pytest.raises(InputError, match=message):
        rec.apply_batched(batch, 0)


def test_text_of_another_row_count_is_refused() -> None:
    batch = collate([Sample("a", {"text": "a cat"}), Sample("b", {"text": "a dog"})])
    bad = batch.replace(text=["a cat"])
    with pytest.raises(InputError, match=r"batch.keys has 2 keys but batch\['text'\] has 1 texts"):
        load_recipe({"text": [{"op": "word_delete", "p": 1.0}]}).apply_batched(bad, 0)


def test_token_lengths_past_the_padded_width_are_refused() -> None:
    batch = collate([Sample("a", {"text": "a cat"}), Sample("b", {"text": "a dog sat"})])
    bad = Batch(keys=batch.keys, data=dict(batch.data), present=dict(batch.present),
                lengths={**batch.lengths, "tokens": batch.lengths["tokens"] + 10})
    with pytest.raises(InputError, match=r"batch.lengths\['tokens'\] must be \(B,\) int64 \(tokens\) with values in"):
        load_recipe({"text": [{"op": "word_delete", "p": 1.0}]}).apply_batched(bad, 0)


def _mixed_samples() -> list[Sample]:
    g = torch.Generator().manual_seed(3)
    return [Sample("full", {"image": torch.randint(0, 256, (3, 6, 9), generator=g, dtype=torch.uint8),
                            "audio": torch.randn(2, 80, generator=g) * 0.1, "text": "a red kite", "label": 2}, sample_rate=8000),
            Sample("no_audio", {"image": torch.randint(0, 256, (3, 4, 4), generator=g, dtype=torch.uint8), "text": "",
                                "label": 0}),
            Sample("only_audio", {"audio": torch.randn(2, 30, generator=g) * 0.1, "label": -1}, sample_rate=8000),
            Sample("spec", {"spec": torch.randn(4, 7, generator=g)}),
            Sample("spec2", {"spec": torch.randn(4, 3, generator=g), "label": 1})]


def test_collates_batches_pass_and_the_ops_outputs_pass_again() -> None:
    rec = load_recipe({"seed": 1, **RECIPE, "normalize": {"audio": [{"op": "resample", "rate": 16000}]},
                       "sample": [{"op": "modality_dropout", "p_drop": 0.5}]})
    for rows in ([0], [0, 1], [0, 1, 2], [1, 2], [3, 4], [0, 1, 2, 3, 4]):
        batch = collate([_mixed_samples()[i] for i in rows])
        check_batch_input(batch)
        out = rec.apply_batched(batch, 0)  # normalize, then the random sections, each checked at its entry
        check_batch_input(out)
        check_batch_input(batch.to("meta"))  # plan_batched's dry run: data on 'meta', masks and lengths on the host


def test_device_lengths_are_checked_by_dtype_and_shape_not_read() -> None:
    """Lengths on another device than the CPU are not read (that would wait for the device): shown with
    'meta' tensors, which have no values to read — the value check would raise on them."""
    batch = collate([Sample("a", {"image": torch.zeros(3, 4, 4, dtype=torch.uint8)})])
    check_batch_input(Batch(keys=batch.keys, data=dict(batch.data), present=dict(batch.present),
                            lengths={"image": batch.lengths["image"].to("meta")}))
    with pytest.raises(InputError, match=r"batch.lengths\['image'\] must be \(B, 2\) int64"):
        check_batch_input(Batch(keys=batch.keys, data=dict(batch.data), present=dict(batch.present),
                                lengths={"image": batch.lengths["image"].float().to("meta")}))


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.testing import make_messy_folder

    root = tmp_path_factory.mktemp("qa30_contract")
    make_messy_folder(root / "raw", n=16, sizes=((24, 32), (40, 30)), seconds=(0.3, 0.6))
    mmdata.shard(root / "raw", root / "ds", split={"train": 1.0}, progress=False)
    return root / "ds"


@pytest.mark.parametrize("augment_on", ["workers", "device"])
def test_the_loaders_batches_pass_the_check(ds: Path, augment_on: str) -> None:
    recipe = {"seed": 2, "normalize": {"image": [{"op": "to_rgb"}], "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}]},
              "image": [{"op": "random_resized_crop", "size": [16, 16]}], "audio": [{"op": "time_shift", "p": 1.0}],
              "text": [{"op": "word_delete", "p": 0.5}], "sample": [{"op": "modality_dropout", "p_drop": 0.3}]}
    loader = mmdata.loader(ds, 4, recipe=recipe, num_workers=1, augment_on=augment_on, seed=1)
    n = 0
    for batch in loader:
        check_batch_input(batch)
        n += len(batch)
    assert n >= 12  # every sample the messy folder keeps came through


# -- #6: non-finite audio -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("op", [{"op": "gain"}, {"op": "speed"}, {"op": "band_limit"}, {"op": "noise"}, {"op": "logmel"}])
def test_non_finite_audio_is_refused_per_sample_and_batched(bad: float, op: dict) -> None:
    rec = load_recipe({"seed": 0, "audio": [{**op, "p": 1.0}]})
    clip = torch.randn(1, 800, generator=torch.Generator().manual_seed(0)) * 0.1
    clip[0, 17] = bad
    s = Sample("noisy_clip", {"audio": clip}, sample_rate=16000)
    with pytest.raises(InputError, match=r"sample 'noisy_clip': audio holds 1 NaN / infinite sample of 800 "
                                         r"\(the first at channel 0, time 17\)"):
        rec.apply_sample(s, 0)
    with pytest.raises(InputError, match=r"sample 'noisy_clip'"):
        collate([s])  # where audio enters a batch
    good = Sample("clean", {"audio": torch.zeros(1, 800)}, sample_rate=16000)
    batch = collate([good, good.with_fields(audio=torch.zeros(1, 800))])
    batch = batch.replace(audio=torch.stack([torch.zeros(1, 800), clip]))
    with pytest.raises(InputError, match=r"batch\['audio'\] of sample 'clean': audio holds 1 NaN / infinite sample "
                                         r"of 1600 \(the first at row 1, channel 0, time 17\)"):
        rec.apply_batched(batch, 0)


def test_finite_audio_whose_sum_overflows_is_taken() -> None:
    """The one-pass check sums the samples: a finite clip whose sum overflows float32 is checked sample by sample."""
    clip = torch.full((1, 64), 3e38)
    out = load_recipe({"seed": 0, "audio": [{"op": "polarity", "p": 1.0}]}).apply_sample(
        Sample("loud", {"audio": clip}, sample_rate=16000), 0)
    assert torch.isfinite(out["audio"]).all()
