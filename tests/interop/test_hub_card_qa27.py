"""A Hub-ready dataset card (QA round 27, B10): ``mmdata.interop.hf.write_hub_card`` writes ``README.md`` with
the YAML front matter the Hugging Face Hub reads (license, task_categories, size_categories, configs with each
split's shards, dataset_info with the ClassLabel names) from a dataset folder's ``dataset.json``; a folder with
that README loads with ``datasets.load_dataset(folder)`` as the Hub would load the repository. Real shards."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import mmdata
from mmdata.errors import ShardError
from mmdata.testing import make_sample_folder

datasets = pytest.importorskip("datasets")
from mmdata.interop.hf import hub_card, hub_license, write_hub_card  # noqa: E402

# make_sample_folder repeats a clip across splits: the shard job's duplicate warning is not under test here
pytestmark = pytest.mark.filterwarnings("ignore:.*hold the same image or audio bytes")


def _front(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hubcard")
    raw = make_sample_folder(base / "raw", n=12, missing=False)
    mmdata.shard(raw, base / "ds", split="train=0.75,val=0.25", license="CC BY 4.0", description="tiny birds",
                 label_names=["cat", "dog", "bird"], progress=False)
    return base / "ds"


def test_the_front_matter_has_licence_tasks_sizes_configs_and_class_names(ds: Path) -> None:
    meta = _front(hub_card(ds))
    assert meta["license"] == "cc-by-4.0"
    assert meta["size_categories"] == ["n<1K"]
    # the captions beside the class are no text classification (QA42 #8)
    assert set(meta["task_categories"]) == {"image-classification", "audio-classification"}
    files = {f["split"]: f["path"] for f in meta["configs"][0]["data_files"]}
    assert files == {"train": ["train-000000.tar"], "validation": ["val-000000.tar"]}  # the Hub's name (QA42 #7)
    cls = next(f for f in meta["dataset_info"]["features"] if f["name"] == "cls")
    assert cls["dtype"]["class_label"]["names"] == {"0": "cat", "1": "dog", "2": "bird"}
    assert {f["name"]: f["dtype"] for f in meta["dataset_info"]["features"]}["flac"] == "audio"
    assert "tiny birds" in hub_card(ds) and "12 samples (train: 9, validation: 3)" in hub_card(ds)


def test_the_folder_with_its_readme_loads_as_a_hub_repository(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=12, missing=False)
    for flac in raw.rglob("*.flac"):  # no audio: the Hub's Audio feature needs torchcodec, which may not load here
        flac.unlink()
    ds = Path(mmdata.shard(raw, tmp_path / "ds", split="train=0.75,val=0.25", label_names=["cat", "dog", "bird"],
                           progress=False)["out"])
    path = write_hub_card(ds)
    assert path == ds / "README.md"
    assert mmdata.verify(ds)["ok"]  # the README is no problem for verify
    d = datasets.load_dataset(str(ds), split="train", cache_dir=str(tmp_path / "cache"))
    assert d.num_rows == 9
    assert d.features["cls"].names == ["cat", "dog", "bird"]


def test_hub_license_ids() -> None:
    assert hub_license("CC-BY-4.0") == {"license": "cc-by-4.0"}
    assert hub_license("MIT") == {"license": "mit"}
    assert hub_license("proprietary terms") == {"license": "other", "license_name": "proprietary-terms"}
    assert hub_license("") == {}


def test_not_a_dataset_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ShardError, match="not an mmdata dataset folder"):
        hub_card(tmp_path)
