"""``to_hf`` decodes text, label and JSON members as the reader does (speech QA 2026-12: a transcript
saved by a Windows editor came back as ``'\\ufeffBOM vorne…'`` from ``to_hf``, while the loader,
``text_chars`` and ``mmdata.codecs.decode_text`` drop the byte order mark)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder

datasets = pytest.importorskip("datasets")

BOM = "\ufeff"


def test_to_hf_text_label_and_json_lose_a_leading_bom_as_in_the_reader(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=3, missing=False)
    (raw / "000000.txt").write_text(BOM + "BOM vorne, Umlaute: Köln", encoding="utf-8")
    (raw / "000002.cls").write_text(BOM + "2\n", encoding="utf-8")
    (raw / "000002.json").write_text(BOM + json.dumps({"speaker": "ann"}), encoding="utf-8")
    (raw / "000001.de.txt").write_text(BOM + "Untertitel", encoding="utf-8")
    (raw / "m.csv").write_text("image,caption_de\n000001.png,000001.de.txt\n", encoding="utf-8")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    mmdata.shard(raw / "m.csv", tmp_path / "named", columns={"caption_de": "caption_de"}, progress=False)
    read = {s.key: s.fields for s in mmdata.open_dataset(tmp_path / "ds", split="train")}
    assert read["000000"]["text"] == "BOM vorne, Umlaute: Köln"  # the reader's view, which to_hf must match
    hf = mmdata.to_hf(tmp_path / "ds", "train", cache_dir=tmp_path / "cache")
    rows = {r["key"]: r for r in hf}
    assert rows["000000"]["text"] == read["000000"]["text"]
    assert rows["000002"]["label"] == read["000002"]["label"] == 2
    assert json.loads(rows["000002"]["json"]) == read["000002"]["json"] == {"speaker": "ann"}
    assert not any(BOM in v for r in rows.values() for v in r.values() if isinstance(v, str))
    (named,) = mmdata.open_dataset(tmp_path / "named", split="train")
    hf = mmdata.to_hf(tmp_path / "named", "train", cache_dir=tmp_path / "cache",
                      features={"caption_de.txt": datasets.Value("string")})
    assert hf[0]["caption_de.txt"] == named.fields["caption_de.txt"] == "Untertitel"
