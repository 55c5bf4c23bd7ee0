"""QA31 (plugin author): what a plugin op's ``move_map`` returns is checked at run time (D2); a replay log
records where each op from outside mmdata came from and warns when it changed (D4); ``save_log`` refuses rows
that are not ``log_rows`` output and ``load_log`` names the row of a bad params cell (D13); an op refuses a
sample with ``ShardError`` (D10)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from mmdata import Sample, collate
from mmdata.augment.contract import OpError
from mmdata.augment.image import ImageOp
from mmdata.augment.recipe import load_recipe
from mmdata.testing import restored_registry


@pytest.fixture(autouse=True)
def _registry_restored() -> Any:
    with restored_registry():
        yield


def _sample(dtype: torch.dtype = torch.uint8) -> Sample:
    return Sample("k", {"image": torch.zeros(3, 8, 6, dtype=torch.uint8), "seg.png": torch.zeros(1, 8, 6, dtype=dtype)})


SEG = {"seed": 0, "targets": {"seg.png": "mask"}}


def _moving_ops() -> None:
    class QCrop(ImageOp):  # crops 2 rows; its move_map (the bug) crops 1
        name = "qa31_crop"
        moves_pixels = True

        def sample_params(self, rng, s):
            return {}

        def kernel(self, a, p):
            return np.ascontiguousarray(a[2:])

        def move_map(self, arr, params, fill):
            return np.ascontiguousarray(arr[1:])

    class QFlipBad(ImageOp):  # move_map drops the K axis (the bug)
        name = "qa31_flipbad"
        moves_pixels = True

        def sample_params(self, rng, s):
            return {}

        def kernel(self, a, p):
            return np.ascontiguousarray(a[::-1])

        def move_map(self, arr, params, fill):
            return np.ascontiguousarray(arr[::-1])[..., 0]

    class QFloat(ImageOp):  # move_map returns float32 (the bug)
        name = "qa31_float"
        moves_pixels = True

        def sample_params(self, rng, s):
            return {}

        def kernel(self, a, p):
            return np.ascontiguousarray(a[::-1])

        def move_map(self, arr, params, fill):
            return np.ascontiguousarray(arr[::-1]).astype(np.float32)

    class QTensor(ImageOp):  # move_map returns a tensor (the bug)
        name = "qa31_tensor"
        moves_pixels = True

        def sample_params(self, rng, s):
            return {}

        def kernel(self, a, p):
            return np.ascontiguousarray(a[::-1])

        def move_map(self, arr, params, fill):
            return torch.from_numpy(np.ascontiguousarray(arr[::-1]))

    class QGood(ImageOp):  # a correct vertical flip, for the paths that must still work
        name = "qa31_vflip"
        moves_pixels = True

        def sample_params(self, rng, s):
            return {}

        def kernel(self, a, p):
            return np.ascontiguousarray(a[::-1])

        def move_map(self, arr, params, fill):
            return arr[::-1]


BAD = [("qa31_crop", "shape (7, 6, 1)", "(6, 6, 1)"), ("qa31_flipbad", "shape (8, 6)", "(8, 6, 1)"),
       ("qa31_float", "float32", "uint8"), ("qa31_tensor", "torch.Tensor", "numpy")]


@pytest.mark.parametrize("op,got,want", BAD, ids=[b[0] for b in BAD])
def test_d2_a_bad_move_map_is_an_op_error_naming_step_op_sample_and_target(op: str, got: str, want: str) -> None:
    _moving_ops()
    rec = load_recipe({**SEG, "image": [{"op": "hflip", "p": 0.0}, {"op": op}]})
    with pytest.raises(OpError) as info:
        rec.apply_sample(_sample(), epoch=0)
    msg = str(info.value)
    assert f"image[1] (op image.{op}, class " in msg and "sample 'k'" in msg and "'seg.png'" in msg, msg
    assert "move_map" in msg and got in msg and want in msg, msg


@pytest.mark.parametrize("op,got,want", BAD[:3], ids=[b[0] for b in BAD[:3]])
def test_d2_batched_and_replayed_runs_check_move_map_too(op: str, got: str, want: str) -> None:
    _moving_ops()
    rec = load_recipe({**SEG, "image": [{"op": op}]})
    b = collate([_sample(), Sample("k2", _sample().fields)])
    with pytest.raises(OpError) as info:
        rec.apply_batched(b, 0)
    assert f"image[0] (op image.{op}" in str(info.value) and "'seg.png'" in str(info.value) and got in str(info.value)
    with pytest.raises(OpError) as info:
        rec.replay(_sample(), [{"op": f"image.{op}", "id": f"image.{op}#0", "index": 0, "params": {"applied": True}}])
    assert f"image[0] (op image.{op}" in str(info.value) and "sample 'k'" in str(info.value) and got in str(info.value)


def test_d2_a_correct_move_map_and_the_builtins_still_move_targets() -> None:
    _moving_ops()
    s = _sample(torch.int32)
    s = s.with_fields(**{"seg.png": torch.arange(48, dtype=torch.int32).reshape(1, 8, 6)})
    rec = load_recipe({**SEG, "normalize": {"image": [{"op": "center_crop", "size": [4, 4]}]},
                       "image": [{"op": "qa31_vflip"}]})
    out = rec.apply_sample(s, epoch=0)
    assert out["seg.png"].dtype == torch.int32 and tuple(out["seg.png"].shape) == (1, 4, 4)
    assert torch.equal(out["seg.png"], s["seg.png"][:, 2:6, 1:5].flip(1))
    assert torch.equal(rec.replay(s, out.meta["aug"])["seg.png"], out["seg.png"])
    n = rec.normalize(s)  # apply_batched runs the random sections only
    b = rec.apply_batched(collate([n, Sample("k2", n.fields)]), 0)
    assert torch.equal(b["seg.png"][0], out["seg.png"])
