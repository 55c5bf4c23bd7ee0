"""QA round 33, read review #3: a list holding a dataset folder is refused (split would not apply). Beside
tars (a mixed list) the remedy keeps those tars — the folder's split tars in its place, not a one-dataset
blend that drops them — and a dataset folder URL in a list is refused the same way (it was a bare
"not found", and reading it as given would reopen the hole)."""

from __future__ import annotations

import glob
import re

import pytest

import mmdata
from mmdata.errors import ShardError
from tests.shards.test_blend_copies_label_map_dataset_lists import sites  # noqa: F401 (fixture)


def test_a_mixed_list_is_told_to_list_the_folders_split_tars(sites: dict[str, str]) -> None:  # noqa: F811
    tar = sorted(glob.glob(f"{sites['B']}/train-*.tar"))[0]
    with pytest.raises(ShardError) as got:
        mmdata.open_dataset([sites["A"], tar], split="train")
    msg = str(got.value)
    pattern = f"{sites['A']}/train-*.tar"
    assert f"open_dataset([{pattern!r}, {tar!r}])" in msg, msg
    assert "pass its folder alone" not in msg  # that would drop the tar
    # the remedy reads: A's train split and the tar, nothing of A's test split
    ds = mmdata.open_dataset([pattern, tar])
    assert {s.key for s in ds} == {s.key for s in mmdata.open_dataset(sites["A"], split="train")} | {
        s.key for s in mmdata.open_dataset(tar)}


def test_a_list_of_only_folders_still_names_the_blend(sites: dict[str, str]) -> None:  # noqa: F811
    with pytest.raises(ShardError, match=re.escape("mmdata.blend({'dsA': ") + ".*pass its folder alone"):
        mmdata.open_dataset([sites["A"]], split="train")


@pytest.mark.parametrize("url", ["memory://qa33/dsA", "s3://bucket/sites/dsA/"])
def test_a_dataset_folder_url_in_a_list_is_refused_naming_the_blend(url: str) -> None:
    with pytest.raises(ShardError, match=re.escape(f"a list holding the dataset folder {url!r}") + ".*mmdata.blend"):
        mmdata.open_dataset([url, "memory://qa33/other-000000.tar"], split="train")
