"""QA round 33 (onemodality #4): ``mmdata.loader`` batches of a text-only (image-only, audio-only) dataset had no
``present["audio"]`` (KeyError in model code) while the README promises masks "all the way to the model". Now
every batch of the loader — training and evaluation, and of a dataset's ``collate_fn`` — has a presence mask for
image, audio and text, all False where the dataset lacks one (a mask only: no data)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from torch.utils.data import DataLoader

import mmdata
from mmdata.testing import make_sample_folder
from mmdata.types import MASKED_MODALITIES, collate, with_masks


@pytest.fixture(scope="module")
def text_only(tmp_path_factory: pytest.TempPathFactory) -> str:
    t = tmp_path_factory.mktemp("qa33text")
    with (t / "text.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(6):
            w.writerow([f"words number {i}", "pos" if i % 2 else "neg"])
    mmdata.shard(t / "text.csv", t / "ds", progress=False)
    return str(t / "ds")


@pytest.fixture(scope="module")
def image_only(tmp_path_factory: pytest.TempPathFactory) -> str:
    t = tmp_path_factory.mktemp("qa33img")
    raw = make_sample_folder(t / "raw", n=4, missing=False)
    for p in [*raw.glob("*.flac"), *raw.glob("*.txt")]:
        p.unlink()
    mmdata.shard(raw, t / "ds", progress=False)
    return str(t / "ds")


@pytest.mark.parametrize("stage", ["train", "eval"])
def test_loader_batches_of_a_text_only_dataset_mask_image_and_audio(text_only: str, stage: str) -> None:
    batch = next(iter(mmdata.loader(text_only, 4, stage=stage,
                                    recipe={"text": [{"op": "token_mask", "p": 1.0, "p_token": 0.3}]})))
    assert batch.present["audio"].tolist() == [False] * 4 and batch.present["image"].tolist() == [False] * 4
    assert batch.present["text"].all()
    assert "audio" not in batch and "image" not in batch  # a mask only: no data to pad


def test_the_loader_and_collate_fn_give_one_key_set(text_only: str, image_only: str) -> None:
    for path in (text_only, image_only):
        ds = mmdata.open_dataset(path)
        plain = next(iter(DataLoader(ds, batch_size=4, collate_fn=ds.collate_fn)))
        ours = next(iter(mmdata.loader(path, 4, shuffle=False)))
        assert set(MASKED_MODALITIES) <= set(plain.present) and set(plain.present) == set(ours.present)
    ours = next(iter(mmdata.loader(image_only, 4)))
    assert ours.present["text"].tolist() == [False] * 4 and "text" not in ours and "tokens" not in ours


def test_with_masks_keeps_a_batch_that_has_them_and_does_not_mutate() -> None:
    b = collate([mmdata.Sample("a", {"text": "hi"})])
    out = with_masks(b)
    assert set(b.present) == {"text"} and set(out.present) == {"text", "image", "audio"}
    assert with_masks(out) is out


def test_modalities_keeps_the_masks_it_names_only(image_only: str) -> None:
    batch = next(iter(mmdata.loader(image_only, 4, modalities=["image", "audio"])))
    # and the label, the target, which modalities= does not leave out (QA38 C #8)
    assert set(batch.present) == {"image", "audio", "label"} and not batch.present["audio"].any()
    ds = mmdata.open_dataset(image_only, modalities="image")
    # the label kept there too, as the loader keeps it (QA38 rv1 #6)
    assert set(next(iter(DataLoader(ds, batch_size=4, collate_fn=ds.collate_fn))).present) == {"image", "label"}


def test_a_mask_without_data_is_not_taken_for_image_data(tmp_path: Path) -> None:
    """Review of the QA33 masks: a text-only dataset's batch masks image (all False) without image data; the
    recipe's size check after a foreign op looked at the mask and read image data that is not there."""
    from itertools import islice

    from mmdata.augment.recipe import _check_sizes

    (tmp_path / "raw").mkdir()
    for i in range(3):
        (tmp_path / "raw" / f"s{i}.txt").write_text(f"caption {i}", encoding="utf-8")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    ds = mmdata.open_dataset(tmp_path / "ds")
    b = ds.collate_fn(list(islice(ds, 2)))
    assert "image" in b.present and "image" not in b.data and not b.present["image"].any()
    _check_sizes(b, None, [{"applied": True}] * 2, ["mask"])  # nothing to check: returns before the step is read
