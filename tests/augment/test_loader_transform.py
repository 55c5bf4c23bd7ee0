"""``mmdata.loader(transform=fn)``: a per-sample function of one's own (webdataset's ``.map(fn)``: a
tokenizer, a derived field) run in the DataLoader workers after the recipe's per-sample stages, before
collate — migrating users had no place for it but a plugin op or a plain DataLoader without the loader's
resume and augmentation (QA25 B-D9)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.errors import MMDataError, ShardError
from mmdata.testing import make_sample_folder
from mmdata.types import Sample


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("transform")
    mmdata.shard(make_sample_folder(root / "raw", n=12), root / "ds", maxcount=4, progress=False)
    return root / "ds"


def add_length(s: Sample) -> Sample:  # module level: picklable for any worker start method
    text = s.get("text")
    if text is None:  # a sample without a caption (the folder has some)
        return s.with_fields(n_chars=torch.tensor(-1))
    return s.with_fields(n_chars=torch.tensor(len(text)), text=text.upper())


def refuse_odd(s: Sample) -> Sample:
    if int(s["label"]) % 2:
        raise ShardError(f"sample {s.key}: odd label")
    return s


@pytest.mark.parametrize("workers", [0, 2])
def test_the_transform_runs_on_every_sample_after_the_recipe(ds: Path, workers: int) -> None:
    recipe = {"seed": 1, "image": [{"op": "hflip", "p": 1.0}]}
    plain = {k: b for b in mmdata.loader(ds, 4, recipe=recipe, shuffle=False) for k in b.keys}
    got = list(mmdata.loader(ds, 4, recipe=recipe, shuffle=False, num_workers=workers, transform=add_length))
    keys = [k for b in got for k in b.keys]
    assert sorted(keys) == sorted(plain) and len(keys) == 12
    captions = 0
    for b in got:
        for i, key in enumerate(b.keys):
            text = b["text"][i]
            absent = text in (None, "")  # collate's place holder for a sample without a caption
            assert int(b["n_chars"][i]) == (-1 if absent else len(text))
            if not absent:
                assert text == text.upper()
                captions += 1
            # after the recipe: the flipped image, as without the transform
            j = plain[key].keys.index(key)
            assert torch.equal(b["image"][i], plain[key]["image"][j])
    assert captions > 0


def test_a_transform_that_skips_counts_the_skipped_and_one_that_breaks_names_the_sample(ds: Path) -> None:
    loader = mmdata.loader(ds, 4, transform=refuse_odd, on_error="skip", shuffle=False)
    labels = [int(x) for b in loader for x in b["label"]]
    assert labels and all(x % 2 == 0 for x in labels)
    assert sum(loader.skipped.values()) == 12 - len(labels)
    with pytest.raises(MMDataError, match=r"transform=\S*<lambda>\): sample '.+': returned dict, expected the mmdata"):
        list(mmdata.loader(ds, 4, transform=lambda s: dict(s.fields)))
    with pytest.raises(MMDataError, match=r"came back with key 'x'"):
        list(mmdata.loader(ds, 4, transform=lambda s: Sample("x", s.fields, s.meta)))
    def in_place(s: Sample) -> Sample:  # as a webdataset .map function writes it
        s["n"] = 1  # type: ignore[index]
        return s

    with pytest.raises(MMDataError, match=r"is not changed in place; return s.with_fields\(name=value\)"):
        list(mmdata.loader(ds, 4, transform=in_place))
    with pytest.raises(MMDataError, match=r"transform: a function of one mmdata.Sample"):
        mmdata.loader(ds, 4, transform="upper")


def test_resume_mid_epoch_with_a_transform_is_exact(ds: Path) -> None:
    loader = mmdata.loader(ds, 3, transform=add_length, num_workers=2)
    whole = [list(b.keys) for b in loader]
    loader = mmdata.loader(ds, 3, transform=add_length, num_workers=2)
    it = iter(loader)
    first = [list(next(it).keys) for _ in range(2)]
    state = loader.state_dict()
    del it
    again = mmdata.loader(ds, 3, transform=add_length, num_workers=2)
    again.load_state_dict(state)
    rest = [list(b.keys) for b in again]
    assert sorted(k for b in first + rest for k in b) == sorted(k for b in whole for k in b)
