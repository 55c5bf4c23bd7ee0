"""QA36 media defects, the writer / reader side: the card's PNG text-chunk warning names the keywords seen (never
their text); a job's result lists images over Pillow's warning size; each dataset opened is told of its large
image once (the warning was once a process)."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

import mmdata
from mmdata import codecs


def _png(i: int, text: dict[str, str] | None = None, size: tuple[int, int] = (16, 16)) -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    Image.fromarray(np.full(size, i * 40, np.uint8)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def test_the_card_names_the_png_text_keywords_seen(tmp_path: Path) -> None:
    for i in range(4):
        (tmp_path / "raw" / "c").mkdir(parents=True, exist_ok=True)
        (tmp_path / "raw" / "c" / f"x{i}.png").write_bytes(_png(i, {"PatientName": "Doe^John", "PatientID": "MRN-1"}))
    with pytest.warns(UserWarning, match="identifying metadata"):
        r = mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert card["metadata"]["text_chunks"] == 4 and card["metadata"]["text_chunk_keys"] == ["PatientID", "PatientName"]
    (w,) = [w for w in r["warnings"] if w.startswith("identifying metadata")]
    assert "PNG text chunks (tEXt / zTXt / iTXt; keys: PatientID, PatientName; patient data" in w
    assert "Doe" not in json.dumps(card) and "MRN-1" not in json.dumps(card) and "Author, Comment" not in w


def test_each_dataset_is_told_of_its_large_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    monkeypatch.setattr(codecs, "LARGE_IMAGE_PIXELS", 500)  # a 24x32 image (768 px) is "large"
    for name in ("a", "b"):  # two datasets of one notebook
        raw = tmp_path / name / "raw"
        raw.mkdir(parents=True)
        (raw / "big.png").write_bytes(_png(0, size=(24, 32)))
        for i in range(2):
            (raw / f"s{i}.png").write_bytes(_png(i + 1))
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            r = mmdata.shard(raw, tmp_path / name / "ds", progress=False)
            assert len(list(mmdata.open_dataset(tmp_path / name / "ds"))) == 3
        large = [w for w in r["warnings"] if "decompression-bomb" in w]
        assert large and large[0].startswith("1 image (of 3) is over Pillow's decompression-bomb warning size")
        said = [str(w.message) for w in seen if str(w.message).startswith("PNG of 32x24 pixels")]
        assert len(said) == 1  # the reader's, once for this dataset
        assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]
