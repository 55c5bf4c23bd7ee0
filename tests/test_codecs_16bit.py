"""16-bit images holding 12-bit (or fewer) data: QA found a class of values 0-199 decoded (``v >> 8``) to all
zeros and one of 3000-3199 to 11-12 with no word anywhere (``inspect`` said only "modes I;16"). The decode rule
stays (documented; changing it changes bytes); the reader warns once a process, ``inspect`` notes 16-bit modes."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmdata
from mmdata import codecs
from mmdata.codecs import decode_image


def _png16(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codecs, "_low_bits_seen", False)


def _decode(data: bytes) -> tuple[np.ndarray, list[str]]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        img = decode_image(data).numpy()
    return img, [str(w.message) for w in got if "16-bit" in str(w.message)]


def test_values_under_256_decode_to_zero_and_say_so_once() -> None:
    img, said = _decode(_png16(np.arange(200).reshape(10, 20)))
    assert img.max() == 0  # the rule holds: v >> 8
    assert len(said) == 1 and "up to 199" in said[0] and "all 0" in said[0] and "v << 8" in said[0]
    _, again = _decode(_png16(np.arange(200).reshape(10, 20)))
    assert again == []  # once a process


def test_twelve_bit_data_is_named_nearly_black() -> None:
    img, said = _decode(_png16(3000 + np.arange(200).reshape(10, 20)))
    assert sorted(np.unique(img).tolist()) == [11, 12]
    assert len(said) == 1 and "up to 3199" in said[0] and "12 significant bits" in said[0] and "v << 4" in said[0]


def test_full_range_data_is_not_warned_about() -> None:
    img, said = _decode(_png16(np.linspace(0, 65535, 200).reshape(10, 20)))
    assert img.max() == 255 and said == []


def test_inspect_notes_16_bit_modes(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for c, base in (("a", 0), ("b", 3000)):
        (raw / c).mkdir(parents=True)
        for i in range(2):
            (raw / c / f"{i}.png").write_bytes(_png16(base + np.arange(200).reshape(10, 20) + i))
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    notes = [w["message"] for w in mmdata.inspect(tmp_path / "ds")["warnings"] if w["kind"] == "16-bit images"]
    assert len(notes) == 1 and "I;16: 4" in notes[0] and "v >> 8" in notes[0] and "v << 4" in notes[0]


def test_an_all_zero_image_loses_nothing_and_is_not_warned_about() -> None:
    img, said = _decode(_png16(np.zeros((4, 4))))
    assert img.max() == 0 and said == []
