"""The Hub card in mmdata's own environment (QA round 33): ``write_hub_card(..., decode_audio=False)`` declares audio
as bytes so ``datasets.load_dataset(folder)`` reads a dataset with audio where torchcodec does not load (docsread
#4); ``language=`` / ``extra["language"]`` are checked against ISO 639 (``jp``, ``xx``, ``iw`` refused naming the
code meant) and a dataset with text and no language is warned of (multilingual #9). Real shards (PNG, FLAC, text)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml

import mmdata
from mmdata.errors import ShardError
from mmdata.testing import make_sample_folder

datasets = pytest.importorskip("datasets")
from mmdata.interop.hf import (  # noqa: E402
    _card_options, check_language, decode_audio, hub_card, torchcodec_available, write_hub_card)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hub33")
    raw = make_sample_folder(base / "raw", n=12, missing=False)
    mmdata.shard(raw, base / "ds", split="train=0.75,val=0.25", license="MIT", label_names=["cat", "dog", "bird"],
                 progress=False)
    return base / "ds"


def _features(text: str) -> dict:
    return {f["name"]: f["dtype"] for f in yaml.safe_load(text.split("---\n")[1])["dataset_info"]["features"]}


def test_a_card_with_audio_as_bytes_loads_here(ds: Path, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        path = write_hub_card(ds, decode_audio=False, language=["en"])
    assert not [w for w in said if "torchcodec" in str(w.message)]
    text = path.read_text(encoding="utf-8")
    assert _features(text)["flac"] == "binary"
    assert _card_options(text)["decode_audio"] is False
    d = datasets.load_dataset(str(ds), split="train", cache_dir=str(tmp_path / "cache"))
    assert d.num_rows == 9 and d.features["cls"].names == ["cat", "dog", "bird"]
    row = d[0]
    assert row["flac"][:4] == b"fLaC"
    assert decode_audio({"bytes": row["flac"], "path": "a.flac"})["sampling_rate"] > 0
    # the recorded choice is kept when the card is written again without it
    write_hub_card(ds)
    assert _features((ds / "README.md").read_text(encoding="utf-8"))["flac"] == "binary"
    write_hub_card(ds, decode_audio=True)
    assert _features((ds / "README.md").read_text(encoding="utf-8"))["flac"] == "audio"


def test_verify_takes_a_card_with_audio_as_bytes(ds: Path) -> None:
    write_hub_card(ds, decode_audio=False, language="en")
    assert mmdata.verify(ds)["ok"]


def test_the_default_card_warns_where_torchcodec_does_not_load(ds: Path) -> None:
    if torchcodec_available():
        pytest.skip("torchcodec loads here: Audio columns load")
    with pytest.warns(UserWarning, match=r"decode_audio=False"):
        write_hub_card(ds, decode_audio=True, language=["en"])
    assert _features((ds / "README.md").read_text(encoding="utf-8"))["flac"] == "audio"  # the Hub's player


@pytest.mark.parametrize(("code", "meant"), [("jp", "'ja'"), ("iw", "'he'"), ("xx", "'und'"), ("EN", "'en'"),
                                             ("qq", "ISO 639-1"), ("qab", "local use")])
def test_language_codes_are_iso_639(ds: Path, code: str, meant: str) -> None:
    with pytest.raises(ShardError, match=meant):
        hub_card(ds, extra={"language": [code]})
    with pytest.raises(ShardError, match=meant):
        hub_card(ds, language=code)


def test_language_keyword_goes_to_the_yaml_and_is_kept(ds: Path) -> None:
    assert check_language(["en", "zh-Hant", "yue", "pt-BR"]) == ["en", "zh-Hant", "yue", "pt-BR"]
    meta = yaml.safe_load(hub_card(ds, language=["ja", "ar"]).split("---\n")[1])
    assert meta["language"] == ["ja", "ar"]
    write_hub_card(ds, language=["ja"])
    write_hub_card(ds)  # the language recorded is kept
    assert yaml.safe_load((ds / "README.md").read_text(encoding="utf-8").split("---\n")[1])["language"] == ["ja"]


def test_text_without_a_language_is_warned_of(ds: Path, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=r"has text and the card names no language"):
        write_hub_card(ds, out=tmp_path / "README.md")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        write_hub_card(ds, out=tmp_path / "README.md", language="en")
    assert not [w for w in said if "no language" in str(w.message)]
