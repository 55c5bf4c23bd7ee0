"""A Hub card written before mmdata checked language codes (QA round 33 review of multilingual #9): a card that
records ``jp`` / ``iw`` / ``xx`` now fails ``verify``; verify's advice and ``write_hub_card``'s error both name the
call that works, ``write_hub_card(path, language=[...])`` with the code meant, and that call mends the card."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import ShardError
from mmdata.interop.hf import recorded_language_remedy, write_hub_card
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hublang33")
    raw = make_sample_folder(base / "raw", n=6, missing=False)
    mmdata.shard(raw, base / "ds", license="MIT", label_names=["cat", "dog", "bird"], progress=False)
    return base / "ds"


def _old_card(base: Path, tmp_path: Path, codes: list[str]) -> Path:
    """The dataset with the card the code before the check wrote for ``language=codes`` (the same text, the
    code in the YAML list and in the options line)."""
    ds = tmp_path / "ds"
    shutil.copytree(base, ds)
    good = ["ja"] if len(codes) == 1 else ["ja", "en"]
    write_hub_card(ds, language=good, decode_audio=False)  # bytes: no torchcodec warning in this env
    text = (ds / "README.md").read_text(encoding="utf-8")
    old_yaml = "language:\n" + "".join(f"- {c}\n" for c in good)
    assert old_yaml in text and f'"language": {good!r}'.replace("'", '"') in text
    text = text.replace(old_yaml, "language:\n" + "".join(f"- {c}\n" for c in codes))
    text = text.replace(f'"language": {good!r}'.replace("'", '"'), f'"language": {codes!r}'.replace("'", '"'))
    (ds / "README.md").write_text(text, encoding="utf-8")
    return ds


@pytest.mark.parametrize("codes, call", [
    (["jp"], "language=['ja']"),
    (["iw", "en"], "language=['he', 'en']"),
    (["jp-JP"], "language=['ja-JP']"),
    (["xx"], "language=[...]"),          # und or mul: the user says which
])
def test_verify_names_the_call_that_mends_an_old_card(base: Path, tmp_path: Path, codes: list[str], call: str) -> None:
    ds = _old_card(base, tmp_path, codes)
    rep = mmdata.verify(ds)
    assert not rep["ok"]
    (p,) = [p for p in rep["problems"] if p["shard"] == "README.md"]
    assert f"write_hub_card({str(ds)!r}, {call})" in p["problem"]
    assert "split_names" not in p["problem"]  # the advice for a renamed split is not this card's cause
    # a plain rewrite reuses the recorded code: refused, with the same advice
    with pytest.raises(ShardError, match="recorded language") as e:
        write_hub_card(ds)
    assert f"write_hub_card({str(ds)!r}, {call})" in str(e.value)
    # the advised call mends it ('und' for xx)
    write_hub_card(ds, language=eval(call.split("=", 1)[1].replace("...", "'und'")))  # noqa: S307
    assert mmdata.verify(ds)["ok"]
    write_hub_card(ds)  # and a plain rewrite works again
    assert mmdata.verify(ds)["ok"]


def test_the_remedy_is_none_for_valid_codes() -> None:
    assert recorded_language_remedy("ds", ["en", "zh-Hant", "yue"]) is None
    assert "language=['en']" in recorded_language_remedy("ds", ["EN"])


def test_extra_none_drops_an_old_language(base: Path, tmp_path: Path) -> None:
    ds = _old_card(base, tmp_path, ["jp"])
    with pytest.warns(UserWarning, match="names no language"):
        write_hub_card(ds, extra={"language": None})
    assert "language:" not in (ds / "README.md").read_text(encoding="utf-8").split("---\n")[1]
    assert mmdata.verify(ds)["ok"]


def test_nfd_nfc_twin_classlabel_is_warned_of_as_kept(tmp_path: Path) -> None:
    """QA33 review #3: a ClassLabel with 'café' in NFD and in NFC keeps both names (two ids); the warning said the
    name was stored in NFC, which it was not, and did not name the hazard (two classes that print alike)."""
    import io
    import unicodedata as ud

    datasets = pytest.importorskip("datasets")
    from PIL import Image

    def png(i: int) -> bytes:
        b = io.BytesIO()
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(b, "PNG")
        return b.getvalue()

    names = [ud.normalize("NFD", "café"), "café", "thé"]
    d = datasets.Dataset.from_dict(
        {"image": [{"bytes": png(i), "path": None} for i in range(3)], "label": [0, 1, 2]},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)}))
    rep = mmdata.shard(d, tmp_path / "d", progress=False)
    import json

    assert json.loads((tmp_path / "d" / "dataset.json").read_text(encoding="utf-8"))["label_names"] == names
    said = " ".join(rep["warnings"])
    assert "stored in NFC" not in said
    assert "differ only in Unicode normalization" in said and "two classes" in said
    assert "(id 0)" in said and "(id 1)" in said
