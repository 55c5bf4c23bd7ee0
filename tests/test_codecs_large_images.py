"""Large images (QA with 12000x9000 photos): Pillow's DecompressionBombWarning, printed raw for every
image between 89.5 and 179 MP, becomes one mmdata warning a process; images over the limit are refused
with an error naming the shard, the sample and the limit. The limits are patched small here."""

from __future__ import annotations

import io
import tarfile
import warnings
from pathlib import Path

import pytest
from PIL import Image

import mmdata
from mmdata import codecs
from mmdata.errors import ShardError
from mmdata.shards import mediainfo
from mmdata.testing import image_bytes


def test_pillows_warning_becomes_one_mmdata_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # a 24x32 image (768 px) makes Pillow warn
    monkeypatch.setattr(codecs, "LARGE_IMAGE_PIXELS", 500)
    monkeypatch.setattr(codecs, "_large_seen", False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # Pillow's warning would show each time
        for fmt in ("png", "webp", "png"):
            codecs.decode_image(image_bytes(0, (24, 32), fmt=fmt))
        codecs.decode_image_values(image_bytes(1, (24, 32), fmt="png"))
    assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]
    (w,) = [str(w.message) for w in seen]
    assert w.startswith("PNG of 32x24 pixels (0.0 MP) is over Pillow's decompression-bomb warning size") and "said once" in w


def test_an_image_over_the_limit_names_the_sample_and_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mediainfo, "MAX_PIXELS", 600)  # 24x32 = 768 pixels: over it; 16x16: under
    with tarfile.open(tmp_path / "s.tar", "w") as tf:
        for key, data in (("big", image_bytes(0, (24, 32))), ("small", image_bytes(1, (16, 16)))):
            info = tarfile.TarInfo(f"{key}.png")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with pytest.raises(ShardError, match=r"shard .*s\.tar: sample 'big': big\.png: cannot decode \.png member as an "
                                         r"image: OversizeMediaError: PNG of 32x24 pixels \(768 pixels\) is over the "
                                         r"limit of 600 pixels .*mediainfo\.MAX_PIXELS"):
        list(mmdata.open_dataset(str(tmp_path / "s.tar"), shuffle=False))
    ok = list(mmdata.open_dataset(str(tmp_path / "s.tar"), shuffle=False, on_error="skip"))
    assert [s.key for s in ok] == ["small"]
