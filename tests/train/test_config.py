"""Input defaults derived from index.parquet statistics, and the normalize stage built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmdata.errors import MMDataError
from mmdata.train.config import InputSpec, derive_inputs, normalize_section, with_normalize


def _index(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    cols = sorted({k for r in rows for k in r})
    pq.write_table(pa.table({c: [r.get(c) for r in rows] for c in cols}), tmp_path / "index.parquet")
    return tmp_path


def _row(split: str = "train", **kw: Any) -> dict[str, Any]:
    mods = [m for m, c in (("image", "image_height"), ("audio", "audio_seconds"), ("text", "text_chars")) if c in kw]
    return {"key": f"k{id(kw)}", "split": split, "label": 0, "modalities": mods, **kw}


def test_mixed_data_gets_a_square_size_rgb_mono_and_the_common_rate(tmp_path: Path) -> None:
    rows = [_row(image_height=h, image_width=w, image_mode=m, audio_seconds=s, audio_sample_rate=r, audio_channels=c,
                 text_chars=t)
            for h, w, m, s, r, c, t in [(32, 32, "L", 0.5, 16000, 1, 10), (48, 64, "RGB", 1.0, 22050, 2, 40),
                                        (60, 40, "RGBA", 1.2, 16000, 1, 20), (120, 90, "RGB", 0.8, 22050, 1, 30),
                                        (427, 640, "RGB", 4.0, 16000, 1, 500)]]
    rows.append(_row("test", image_height=2000, image_width=2000, image_mode="L"))  # other splits do not count
    spec = derive_inputs(_index(tmp_path, rows), ["image", "audio", "text"])
    assert spec.image_size == (48, 48)  # the median of the shorter sides 32, 40, 48, 90, 427
    assert spec.channels == 3 and spec.sample_rate == 16000 and spec.max_tokens == 64
    assert spec.max_seconds == 4.0 and spec.needs == {"resize": True, "convert": True, "resample": True, "mono": True,
                                                      "pad_trim": True, "max_tokens": False}
    assert "RGBA" in spec.sources["channels"] and "16000: 3" in spec.sources["sample_rate"]
    norm = normalize_section(spec)
    assert norm == {"image": [{"op": "to_rgb"}, {"op": "resize", "size": 48, "side": "shorter", "interpolation": "area"},
                              {"op": "center_crop", "size": [48, 48]}],
                    "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000},
                              {"op": "pad_trim", "seconds": 4.0, "pad": True}]}
    assert "image  48x48" in spec.describe()


def test_uniform_data_needs_no_normalisation_and_given_values_win(tmp_path: Path) -> None:
    rows = [_row(image_height=16, image_width=16, image_mode="L", audio_seconds=0.8, audio_sample_rate=8000,
                 audio_channels=1, text_chars=20 + i) for i in range(20)]
    data = _index(tmp_path, rows)
    spec = derive_inputs(data, ["image", "audio", "text"])
    assert (spec.image_size, spec.channels, spec.sample_rate, spec.max_seconds, spec.max_tokens) == ((16, 16), 1, 8000, 0.8, 38)
    assert normalize_section(spec) == {"text": [{"op": "max_tokens", "n": 38}]}
    given = derive_inputs(data, ["image", "audio"], image_size=[24, 32], channels=3, sample_rate=16000, max_seconds=1.0)
    assert (given.image_size, given.channels, given.sample_rate, given.max_seconds, given.max_tokens) == ((24, 32), 3, 16000, 1.0, None)
    steps = normalize_section(given)
    assert [s["op"] for s in steps["image"]] == ["to_rgb", "resize", "center_crop"] and steps["image"][1]["size"] == 24
    assert [s["op"] for s in steps["audio"]] == ["resample", "pad_trim"]
    with pytest.raises(MMDataError, match=r"channels \(--channels\): expected 1 \(greyscale\) or 3"):
        derive_inputs(data, ["image"], channels=2)
    for bad in ([32, 0], "32", [16.5], [1, 2, 3], True):
        with pytest.raises(MMDataError, match=r"image_size \(--image-size\): expected N or HxW"):
            derive_inputs(data, ["image"], image_size=bad)
    for key, bad in (("sample_rate", 0), ("sample_rate", 8000.5), ("max_seconds", float("inf")), ("max_tokens", "9")):
        with pytest.raises(MMDataError, match=rf"{key} \(--{key.replace('_', '-')}\): expected"):
            derive_inputs(data, ["image", "audio", "text"], **{key: bad})


def test_a_recipes_own_normalize_list_wins_per_modality() -> None:
    spec = InputSpec(image_size=(32, 32), channels=3, sample_rate=16000, max_seconds=1.0,
                     needs={"convert": True, "resize": True, "mono": True, "resample": False, "pad_trim": True})
    own = [{"op": "to_gray", "channels": 3}]
    _, norm = with_normalize({"normalize": {"image": own}}, spec)
    assert [s["op"] for s in norm["image"]] == ["to_gray"] and [s["op"] for s in norm["audio"]] == ["to_mono", "pad_trim"]


def test_no_training_rows_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match="no training rows"):
        derive_inputs(_index(tmp_path, [_row("test", text_chars=3)]), ["text"])


def test_effective_inputs_follow_the_recipes_own_steps(tmp_path: Path) -> None:
    from mmdata.train.config import IndexStats, effective_inputs

    rows = [_row(image_height=h, image_width=w, image_mode="RGB", audio_seconds=s, audio_sample_rate=r, audio_channels=1,
                 text_chars=20) for h, w, s, r in [(32, 32, 0.5, 16000), (48, 64, 1.0, 22050), (60, 40, 1.5, 16000)]]
    st = IndexStats(_index(tmp_path, rows))
    spec = derive_inputs(st, ["image", "audio", "text"])
    _, derived = with_normalize(None, spec)
    assert effective_inputs(spec, derived, ["image", "audio", "text"], st) is spec  # nothing of the recipe's own
    own = {"image": [{"op": "resize", "size": 16, "side": "shorter"}], "audio": [{"op": "pad_trim", "seconds": 1.2, "trim": False}],
           "text": [{"op": "max_tokens", "n": 8}]}
    _, norm = with_normalize({"normalize": own}, spec)
    e = effective_inputs(spec, norm, ["image", "audio", "text"], st)
    assert e.image_size is None and "leaves 3 sizes 16x16..24x16" in e.sources["image_size"]  # no crop: sizes stay mixed
    assert e.channels == 3 and e.sample_rate is None and "rates [16000, 22050]" in e.sources["sample_rate"]
    assert e.max_seconds == 1.5 and "1.2..1.5 s" in e.sources["max_seconds"] and e.max_tokens == 8
    assert "image  mixed" in e.describe() and "rates mixed" in e.describe()


def test_default_modalities_are_those_the_training_split_has(tmp_path: Path) -> None:
    from mmdata.train.config import IndexStats, choose_modalities

    rows = [_row(image_height=8, image_width=8), _row(image_height=8, image_width=8, text_chars=3),
            _row("test", audio_seconds=1.0, audio_sample_rate=8000)]  # audio only outside train
    st = IndexStats(_index(tmp_path, rows))
    used, left = choose_modalities(st, None)
    assert used == ["image", "text"] and list(left) == ["audio"] and "text (1 of 2 samples)" in left["audio"]
    assert choose_modalities(st, ["text"]) == (["text"], {})
    card = {"modalities": {"image": {"count": 2}, "audio": {"count": 1}, "text": {"count": 1}, "label": {"count": 3}}}
    with pytest.raises(MMDataError, match=r"--modalities \(modalities=\) image,audio: no sample of the train split .* has audio; .*"
                                          r"all splits \(dataset.json\): image \(2\), audio \(1\), text \(1\)"):
        choose_modalities(st, ["image", "audio"], card)
