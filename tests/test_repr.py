"""What a notebook cell shows: a Batch, a Sample and a Loader print as short summaries (a batch of 32
printed ~70 KB: its tensors and every sample's augmentation log), and a loader says its class names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.types import Batch, Sample, collate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.testing import make_messy_folder

    root = tmp_path_factory.mktemp("repr")
    make_messy_folder(root / "raw", n=40, sizes=((24, 24), (32, 40)), seconds=(0.1, 0.3))
    mmdata.shard(root / "raw", root / "ds", split="train=0.8,val=0.1,test=0.1", seed=0, progress=False)
    return root / "ds"


def test_batch_of_32_with_augmentation_logs_prints_one_short_line(messy: Path) -> None:
    b = next(iter(mmdata.loader(messy, 32, recipe=ROOT / "recipes" / "messy_folder.yaml", seed=0)))
    assert len(b) == 32 and len(repr(b.meta)) > 5000  # the logs are there, and not printed
    text = repr(b)
    assert "\n" not in text and len(text) < 400, text
    assert text.startswith(f"Batch(32 samples {b.keys[0]!r}..{b.keys[-1]!r}; ")
    n_img = int(b.present["image"].sum())
    assert f"image uint8[{','.join(map(str, b['image'].shape))}] present {n_img}/32" in text
    assert f"audio float32[{','.join(map(str, b['audio'].shape))}] @{b.sample_rate} Hz present" in text
    assert "text list[32] present" in text and "label int64[32] present" in text
    assert text.endswith("meta: " + ", ".join(b.meta) + ")")


def test_sample_repr_is_one_line_with_shapes_and_meta_keys_only() -> None:
    long = "a caption " * 40
    s = Sample("k1", {"image": torch.zeros(3, 8, 8, dtype=torch.uint8), "audio": torch.zeros(2, 800), "text": long,
                      "label": 2}, 8000, {"shard": "x.tar", "augment": [{"op": "gain", "db": 3.0}] * 50})
    assert repr(s) == ("Sample('k1', image uint8[3,8,8], audio float32[2,800] @8000 Hz, "
                       f"text 'a caption a caption '… ({len(long)} chars), label 2; meta: shard, augment)")
    assert repr(Sample("e")) == "Sample('e')"


def test_empty_and_small_batches() -> None:
    assert repr(Batch([])) == "Batch(0 samples)"
    assert repr(collate([Sample("a", {"text": "hi"})])).startswith("Batch(1 sample 'a'; text list[1] present 1/1")


def test_loader_repr_and_label_names(messy: Path, tmp_path: Path) -> None:
    ld = mmdata.loader(messy, 8, recipe={"image": [{"op": "hflip"}]}, split="val", stage="eval")
    assert repr(ld) == (f"Loader({str(messy)!r}, split='val', batch_size=8, stage='eval', num_workers=0, epoch=0, "
                        f"recipe=image, batches={len(ld)})")
    assert ld.label_names == ["circle", "square", "triangle"]
    assert mmdata.loader(messy, 8, cache=True).label_names == ["circle", "square", "triangle"]
    assert "batches=unknown" in repr(mmdata.loader(messy, 8, on_error="skip"))


def test_blend_label_names_are_the_merged_names(messy: Path, tmp_path: Path) -> None:
    from mmdata.testing import make_sample_folder

    mmdata.shard(make_sample_folder(tmp_path / "raw", n=6), tmp_path / "other", progress=False)
    ld = mmdata.loader({"mine": messy, "other": tmp_path / "other"}, 8)
    assert ld.label_names == ld.source.label_names
    assert {"circle", "square", "triangle"} <= set(ld.label_names)
    assert repr(ld).startswith("Loader({'mine': ")
