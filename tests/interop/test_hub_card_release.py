"""The Hub card for a publisher (QA round 42, hub): split names the Hub refuses, ``--meta`` columns of kind ``json``,
a README of one's own, Hub fields mmdata cannot infer (``extra=``), the Hub's licence ids, ``val`` as
``validation``, and the smaller card facts (unlabelled samples, identifying metadata, ``out=`` elsewhere, shard
patterns, no licence). Real PNG/JPEG shards; the cards are loaded with ``datasets.load_dataset`` offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

import mmdata
from mmdata.errors import ShardError

datasets = pytest.importorskip("datasets")
from mmdata.interop.hf import HUB_CARD_MARK, hub_card, hub_license, webdataset_features, write_hub_card  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _front(text: str) -> dict:
    return yaml.safe_load(text.split("---\n")[1])


def _manifest(tmp: Path, rows: list[dict], name: str = "m.jsonl") -> Path:
    """A JSONL manifest of tiny distinct PNGs (no audio: the Hub's Audio feature needs torchcodec)."""
    media = tmp / "media"
    media.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(tmp / name, "w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(media / f"s{i:03d}.png")
            f.write(json.dumps({"key": f"s{i:03d}", "image": f"media/s{i:03d}.png", **r}, ensure_ascii=False) + "\n")
    return tmp / name


def _load(ds: Path, split: str, tmp: Path) -> datasets.Dataset:
    return datasets.load_dataset(str(ds), split=split, cache_dir=str(tmp / "hfcache"))


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 labelled images in train / val, CC BY-SA 4.0."""
    tmp = tmp_path_factory.mktemp("plain")
    m = _manifest(tmp, [{"label": ["cat", "dog"][i % 2], "split": "train" if i < 9 else "val"} for i in range(12)])
    return Path(mmdata.shard(m, tmp / "ds", license="CC BY-SA 4.0", progress=False)["out"])


def _copy(ds: Path, tmp: Path, name: str) -> Path:
    import shutil

    return Path(shutil.copytree(ds, tmp / name))


# 1: a split name the Hub refuses
def test_a_split_name_the_hub_refuses_is_named_and_can_be_mapped(tmp_path: Path) -> None:
    m = _manifest(tmp_path, [{"label": "cat", "split": ["train", "fold-1", "test.clean"][i % 3]} for i in range(9)])
    ds = Path(mmdata.shard(m, tmp_path / "ds", progress=False)["out"])
    with pytest.raises(ShardError, match=r"split 'fold-1' is not a split name the Hub takes"
                                         r".*split_names=\{'fold-1': 'fold_1'\}"):
        write_hub_card(ds)
    assert not (ds / "README.md").exists()
    write_hub_card(ds, split_names={"fold-1": "fold_1"})
    files = {f["split"]: f["path"] for f in _front((ds / "README.md").read_text())["configs"][0]["data_files"]}
    assert files["fold_1"] == ["fold-1-000000.tar"] and "test.clean" in files
    for split in ("train", "fold_1", "test.clean"):
        assert _load(ds, split, tmp_path).num_rows == 3
    assert mmdata.verify(ds)["ok"]  # the mapping is recorded in the card: verify makes the same card
    with pytest.raises(ShardError, match="'nope'"):
        hub_card(ds, split_names={"nope": "x"})


# 1b: --meta columns of kind json
def test_meta_columns_of_kind_json_get_a_feature_and_load(tmp_path: Path) -> None:
    rows = [{"label": "cat", "source": {"url": f"https://example.org/{i}", "author": "X"},
             "score": i if i % 2 else f"n/a{i}", "n": i} for i in range(6)]
    ds = Path(mmdata.shard(_manifest(tmp_path, rows), tmp_path / "ds", meta=["source", "score", "n"],
                           progress=False)["out"])
    feats = webdataset_features(ds)["json"]
    assert feats["source"] == {"url": datasets.Value("string"), "author": datasets.Value("string")}
    assert feats["score"] == datasets.Value("string") and feats["n"] == datasets.Value("int64")
    text = (write_hub_card(ds)).read_text()
    assert "`score`" in text and "no one type" in text
    d = _load(ds, "train", tmp_path)
    got = {r["__key__"]: r["json"] for r in d}
    assert got["s001"]["source"] == {"url": "https://example.org/1", "author": "X"}
    assert got["s001"]["score"] == "1" and got["s002"]["score"] == "n/a2" and got["s002"]["n"] == 2
    assert mmdata.verify(ds)["ok"]


# 2: a README of one's own
def test_a_readme_of_ones_own_is_not_overwritten(plain: Path, tmp_path: Path) -> None:
    ds = _copy(plain, tmp_path, "ds")
    (ds / "README.md").write_text("# My dataset\n\nHand-written datasheet.\n")
    with pytest.raises(ShardError, match=r"README\.md.*not written by write_hub_card.*overwrite=True.*out="):
        write_hub_card(ds)
    assert "Hand-written" in (ds / "README.md").read_text()
    write_hub_card(ds, overwrite=True)
    assert HUB_CARD_MARK in (ds / "README.md").read_text()
    write_hub_card(ds)  # its own card is replaced without a word


# 3, 3b: Hub fields of one's own
def test_extra_fields_reach_the_card_are_kept_on_rewrite_and_pass_verify(plain: Path, tmp_path: Path) -> None:
    ds = _copy(plain, tmp_path, "ds")
    write_hub_card(ds, extra={"language": ["en", "fr"], "multilinguality": "multilingual", "tags": ["foxes"],
                              "homepage": "https://example.org/fox", "citation": "@misc{fox2026, title={Fox}}"})
    text = (ds / "README.md").read_text()
    meta = _front(text)
    assert meta["language"] == ["en", "fr"] and meta["multilinguality"] == "multilingual"
    assert meta["tags"][-1] == "foxes" and "mmdata" in meta["tags"]
    assert "homepage" not in meta and "<https://example.org/fox>" in text and "@misc{fox2026" in text
    assert mmdata.verify(ds)["ok"]
    write_hub_card(ds, extra={"task_categories": ["image-to-text"]})  # a rewrite keeps the earlier fields
    meta = _front((ds / "README.md").read_text())
    assert meta["language"] == ["en", "fr"] and meta["task_categories"] == ["image-to-text"]
    assert mmdata.verify(ds)["ok"]
    readme = ds / "README.md"
    readme.write_text(readme.read_text().replace("- fr\n", "- fr\n- ja\n"))
    p = mmdata.verify(ds)["problems"][0]
    assert "edited by hand or is stale" in p["problem"] and "extra=" in p["problem"]


@pytest.mark.parametrize("extra, match", [
    ({"configs": []}, "written from the shards"), ({"license": "mit"}, "--license"),
    ({"language": ["English"]}, "ISO 639"), ({"homepage": "example.org"}, "http"), ({"bad key": 1}, "field name"),
    ({"tags": [object()]}, "expected a string"),
])
def test_extra_values_are_checked(plain: Path, extra: dict, match: str) -> None:
    with pytest.raises(ShardError, match=match):
        hub_card(plain, extra=extra)


# 4: the Hub's licence ids
@pytest.mark.parametrize("text, hub", [
    ("MIT License", "mit"), ("Apache License 2.0", "apache-2.0"), ("Apache License, Version 2.0", "apache-2.0"),
    ("CC0", "cc0-1.0"), ("CC0 1.0 Universal", "cc0-1.0"), ("LGPL-2.1", "lgpl-2.1"), ("MPL-2.0", "mpl-2.0"),
    ("ISC", "isc"), ("unknown", "unknown"), ("GPL-3.0-only", "gpl-3.0"), ("LGPL-2.1-or-later", "lgpl-2.1"),
    ("cc-by-nc-sa-2.0", "cc-by-nc-sa-2.0"), ("CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/)",
                                             "cc-by-sa-4.0"), ("BSD 3-Clause License", "bsd-3-clause"),
])
def test_hub_license_knows_the_hubs_ids_and_their_spellings(text: str, hub: str) -> None:
    assert hub_license(text) == {"license": hub}


def test_hub_license_other_keeps_name_and_link() -> None:
    assert hub_license("My terms: see https://x.org/t") == {"license": "other", "license_name": "my-terms-see",
                                                            "license_link": "https://x.org/t"}


# 7: val on the Hub
def test_val_is_published_as_validation_and_an_older_card_is_not_stale(plain: Path, tmp_path: Path) -> None:
    ds = _copy(plain, tmp_path, "ds")
    write_hub_card(ds)
    assert _load(ds, "validation", tmp_path).num_rows == 3
    write_hub_card(ds, split_names={"val": "val"})
    assert _load(ds, "val", tmp_path).num_rows == 3 and mmdata.verify(ds)["ok"]
    # a card written before the options were recorded (format 1: val, no facts lines) is no stale card
    (ds / "README.md").write_text(hub_card(ds, _format=1))
    assert "split: val\n" in (ds / "README.md").read_text() and mmdata.verify(ds)["ok"]


# 8: the smaller card facts
def test_tasks_unlabelled_count_no_licence_warning(tmp_path: Path) -> None:
    rows = [{"label": "cat" if i < 4 else None, "text": f"a caption {i}"} for i in range(6)]
    ds = Path(mmdata.shard(_manifest(tmp_path, rows), tmp_path / "ds", progress=False)["out"])
    with pytest.warns(UserWarning, match="no licence"):
        write_hub_card(ds)
    text = (ds / "README.md").read_text()
    assert _front(text)["task_categories"] == ["image-classification"]
    assert "2 of 6 samples have no label" in text


def test_text_only_labelled_data_is_text_classification(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text("".join(json.dumps({"key": f"k{i}", "text": f"t {i}", "label": "a"}) + "\n"
                                              for i in range(3)))
    ds = Path(mmdata.shard(tmp_path / "m.jsonl", tmp_path / "ds", progress=False)["out"])
    assert _front(hub_card(ds))["task_categories"] == ["text-classification"]


def test_out_elsewhere_gets_paths_relative_to_it(plain: Path, tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    stage.mkdir()
    card = write_hub_card(plain, out=stage / "README.md")
    files = {f["split"]: f["path"] for f in _front(card.read_text())["configs"][0]["data_files"]}
    assert files["train"][0].endswith("/ds/train-000000.tar") and files["train"][0].startswith("..")
    assert _load(stage, "train", tmp_path).num_rows == 9
    assert not (plain / "README.md").exists()


def test_many_shards_are_listed_by_pattern(tmp_path: Path) -> None:
    m = _manifest(tmp_path, [{"label": "cat", "split": "train" if i < 22 else "test"} for i in range(24)])
    ds = Path(mmdata.shard(m, tmp_path / "ds", maxcount=1, progress=False)["out"])
    write_hub_card(ds)
    files = {f["split"]: f["path"] for f in _front((ds / "README.md").read_text())["configs"][0]["data_files"]}
    assert files == {"train": "train-*.tar", "test": ["test-000000.tar", "test-000001.tar"]}
    assert _load(ds, "train", tmp_path).num_rows == 22 and mmdata.verify(ds)["ok"]


def test_identifying_metadata_counts_are_in_the_card(tmp_path: Path) -> None:
    (tmp_path / "raw" / "cat").mkdir(parents=True)
    im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8))
    ex = Image.Exif()
    ex[0x013B] = "Jane Doe"
    ex[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)}
    im.save(tmp_path / "raw" / "cat" / "a.jpg", exif=ex)
    im.save(tmp_path / "raw" / "cat" / "b.jpg")
    ds = Path(mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)["out"])
    text = hub_card(ds)
    assert "Identifying metadata" in text and "gps: 1" in text and "artist: 1" in text


# review of the card (QA round 42, hub2) ----------------------------------------------------------------------
def test_extra_keys_in_any_order_give_a_card_that_verify_makes_again(plain: Path, tmp_path: Path) -> None:
    ds = _copy(plain, tmp_path, "ds")
    extra = {"task_ids": ["multi-class-image-classification"], "multilinguality": "multilingual",
             "language": ["en", "fr"], "source_datasets": {"b": "x", "a": ["y"]}, "annotations_creators": ["found"]}
    write_hub_card(ds, extra=extra)
    assert mmdata.verify(ds)["ok"]
    text = (ds / "README.md").read_text()
    write_hub_card(ds, extra=dict(reversed(list(extra.items()))))  # the order given does not change the card
    assert (ds / "README.md").read_text() == text and _front(text)["source_datasets"] == {"a": ["y"], "b": "x"}


def _fold_dataset(tmp: Path, rows: int, name: str = "ds") -> Path:
    splits = ["train", "fold-1", "test"] if rows == 9 else ["train", "test"]
    m = _manifest(tmp, [{"label": "cat", "split": splits[i % len(splits)]} for i in range(rows)], f"m{rows}.jsonl")
    return Path(mmdata.shard(m, tmp / name, progress=False)["out"])


def test_a_mapped_split_a_reshard_took_away_is_dropped_with_a_warning(tmp_path: Path) -> None:
    ds = _fold_dataset(tmp_path, 9)
    write_hub_card(ds, split_names={"fold-1": "fold_1"})
    _fold_dataset(tmp_path, 6)  # re-shard: no fold-1 any more
    p = mmdata.verify(ds)["problems"]
    assert len(p) == 1 and "'fold-1'" in p[0]["problem"] and "write_hub_card" in p[0]["problem"]
    with pytest.warns(UserWarning, match=r"drops the split_names it recorded.*'fold-1' -> 'fold_1'"):
        write_hub_card(ds)  # verify's advice works
    assert mmdata.verify(ds)["ok"] and "fold" not in (ds / "README.md").read_text()


def test_split_names_none_drops_a_recorded_name(plain: Path, tmp_path: Path) -> None:
    ds = _copy(plain, tmp_path, "ds")
    write_hub_card(ds, split_names={"val": "dev"})
    assert _front((ds / "README.md").read_text())["configs"][0]["data_files"][1]["split"] == "dev"
    write_hub_card(ds, split_names={"val": None})
    assert _front((ds / "README.md").read_text())["configs"][0]["data_files"][1]["split"] == "validation"
    assert mmdata.verify(ds)["ok"]
    write_hub_card(ds, split_names={"gone": None})  # nothing to drop: fine
    with pytest.raises(ShardError, match="'gone'"):
        write_hub_card(ds, split_names={"gone": "x"})


def test_a_path_holding_layout_does_not_hide_a_stale_card(tmp_path: Path) -> None:
    ds = _fold_dataset(tmp_path / "my_layouts", 9)
    write_hub_card(ds, split_names={"fold-1": "fold_1"})
    _fold_dataset(tmp_path / "my_layouts", 6)
    assert not mmdata.verify(ds)["ok"]


def test_an_integer_beyond_64_bits_in_a_json_column_is_text_named_in_the_card(tmp_path: Path) -> None:
    rows = [{"label": "cat", "big": 2**70 if i == 3 else i, "obj": {"a": i}} for i in range(5)]
    ds = Path(mmdata.shard(_manifest(tmp_path, rows), tmp_path / "ds", meta=["big", "obj"], progress=False)["out"])
    card = json.loads((ds / "dataset.json").read_text())
    if card["metadata_kinds"]["big"] != "json":
        pytest.skip(f"big is of kind {card['metadata_kinds']['big']!r} here")
    feats = webdataset_features(ds)["json"]
    assert feats["big"] == datasets.Value("string") and feats["obj"] == {"a": datasets.Value("int64")}
    text = hub_card(ds)
    assert "beyond 64" in text and "`big`" in text and "`obj`" not in text


def test_json_columns_are_typed_once_per_dataset_and_remote_ones_are_named(tmp_path: Path) -> None:
    from mmdata.interop.hf import metadata_json_feature

    rows = [{"label": "cat", "obj": {"a": i}} for i in range(4)]
    ds = Path(mmdata.shard(_manifest(tmp_path, rows), tmp_path / "ds", meta=["obj"], progress=False)["out"])
    first = webdataset_features(ds)
    shard = next(ds.glob("*.tar"))
    data = shard.read_bytes()
    shard.write_bytes(b"not a tar")  # the shards were read once: a later call does not read them again
    try:
        assert webdataset_features(ds) == first and mmdata.interop.hf.hub_card(ds)
    finally:
        shard.write_bytes(data)
    card = json.loads((ds / "dataset.json").read_text())
    with pytest.raises(ShardError, match=r"s3://b/ds: typing the --meta columns obj.*local folder"):
        metadata_json_feature("s3://b/ds", card)


def test_an_old_card_of_a_licence_now_mapped_is_named_so(tmp_path: Path) -> None:
    m = _manifest(tmp_path, [{"label": "cat"} for _ in range(3)])
    ds = Path(mmdata.shard(m, tmp_path / "ds", license="MIT License", progress=False)["out"])
    readme = write_hub_card(ds)
    readme.write_text(readme.read_text().replace("license: mit\n", "license: other\nlicense_name: mit-license\n"))
    p = mmdata.verify(ds)["problems"]
    assert len(p) == 1 and "mmdata now maps 'MIT License' to the Hub's mit" in p[0]["problem"]
    assert "did not change" in p[0]["problem"]
    readme.write_text(readme.read_text().replace("license_name: mit-license\n", "license_name: mine\n"))
    assert "edited by hand or is stale" in mmdata.verify(ds)["problems"][0]["problem"]


@pytest.mark.parametrize("text", ["LGPL-2", "Apache", "Apache License"])
def test_hub_license_does_not_guess_a_version(text: str) -> None:
    assert hub_license(text)["license"] == "other"


def test_oversized_extra_is_refused_and_an_oversized_card_is_named(plain: Path, tmp_path: Path) -> None:
    ds = _copy(plain, tmp_path, "ds")
    with pytest.raises(ShardError, match=r"'citation': [\d,]+ bytes as JSON, over 65,536"):
        write_hub_card(ds, extra={"citation": "@misc{x, note={" + "y" * 100_000 + "}}"})
    readme = write_hub_card(ds)
    readme.write_text(readme.read_text() + "\n" + "z" * (1 << 22))
    p = mmdata.verify(ds)["problems"]
    assert len(p) == 1 and "over 4 MiB" in p[0]["problem"]


def test_augment_output_card_says_validation_throughout(plain: Path, tmp_path: Path) -> None:
    from mmdata.augment.offline import augment_dataset

    out = tmp_path / "aug"
    augment_dataset(plain, out, {"image": [{"op": "hflip", "p": 1.0}]}, copies=1, progress=False)
    text = hub_card(out)
    section = text[text.index("## Augmentation"):text.index("## Provenance")]
    assert "validation" in section and "val." not in section and "val:" not in section
    assert "* Rows of validation: 3 input samples." in section
