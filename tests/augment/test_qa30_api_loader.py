"""QA30 (fix-api, apidocs D4 / D5): ``mmdata.loader(device=...)`` refuses a device this torch cannot use with an
MMDataError naming ``device=`` (it raised torch's bare RuntimeError), as every other bad loader argument and
``train(device=)`` do; a list of shards, which works, is in the hint."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.augment.loader import Loader
from mmdata.errors import MMDataError
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dev")
    mmdata.shard(make_sample_folder(root / "raw", n=6), root / "ds", maxcount=2, progress=False)
    return root / "ds"


@pytest.mark.parametrize("device", ["tpu", "gpu0", "cuda:x", 3.5])
def test_a_bad_device_is_an_mmdata_error_naming_it(ds: Path, device: object) -> None:
    with pytest.raises(MMDataError, match=rf"^device= {device!r}: not a torch device \(cpu, cuda, cuda:N, mps\)"):
        mmdata.loader(ds, 2, device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is visible: the loader can use it")
def test_cuda_without_a_gpu_is_refused_before_the_first_batch(ds: Path) -> None:
    with pytest.raises(MMDataError, match=r"device= cuda: no CUDA device is visible .* use device='cpu'"):
        mmdata.loader(ds, 2, device="cuda")


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")], ids=["str", "torch.device"])
def test_a_usable_device_still_batches(ds: Path, device: object) -> None:
    batches = list(mmdata.loader(ds, 4, device=device))
    assert [len(b) for b in batches] == [4, 2]
    assert all(b["image"].device.type == "cpu" for b in batches)


def test_a_list_of_shards_is_in_the_hint_and_works(ds: Path) -> None:
    tars = sorted(ds.glob("train-*.tar"))
    assert len(tars) == 3
    assert sorted(k for b in mmdata.loader(tars, 4) for k in b.keys) == sorted(k for b in mmdata.loader(ds, 4) for k in b.keys)
    for f in (mmdata.loader, Loader.__init__):
        hint = str(typing.get_type_hints(f)["path"])
        assert "Sequence" in hint and "Mapping" in hint, hint
