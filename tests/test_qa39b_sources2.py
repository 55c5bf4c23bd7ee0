"""QA39 review sources #1 #5: C1 control characters in captions (mostly UTF-8 read as Latin-1 / cp1252: mojibake)
are kept and noted with the fix, not refused; mmdata's printed lines escape them; ``predict(text=...)`` takes them
again; a class folder's refusal names the real code point, also where label files take their names from folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmdata.errors import SourceError
from mmdata.shards.sources import c1_note, c1_texts_warning, discover, text_refusal
from mmdata.terminal import terminal_text
from mmdata.testing.media import image_bytes

MOJIBAKE = "It’s a dog — running".encode().decode("latin-1")  # 'Itâ\x80\x99s a dog â\x80\x94 running'


def test_mojibake_caption_is_kept_and_named_with_its_fix() -> None:
    assert text_refusal(MOJIBAKE.encode()) is None
    said = c1_note(MOJIBAKE.encode())
    assert said is not None and "mojibake" in said and "ftfy" in said and "It’s a dog" in said
    cp1252 = "Í".encode().decode("latin-1")  # 'Ã\x8d': 0x8D is undefined in cp1252
    assert text_refusal(cp1252.encode()) is None and "mojibake" in c1_note(cp1252.encode())
    assert c1_note("plain café".encode()) is None


def test_c1_warning_counts_and_names_the_samples() -> None:
    noted = [{"member": f"k{i}.txt", "sample": f"k{i}", "note": c1_note(MOJIBAKE.encode())} for i in range(7)]
    said = c1_texts_warning(noted)
    assert said is not None and said.startswith("7 text members hold C1") and "'k0', 'k1'" in said and "..." in said
    assert c1_texts_warning([]) is None


def test_printed_lines_escape_c1_as_esc() -> None:
    from mmdata.augment.preview import summary_lines

    shown = terminal_text("red \u009b31mX \u009d0;t\u009c")
    assert "\u009b" not in shown and "\\x9b" in shown and "\\x9d" in shown
    line = summary_lines([{"row": 1, "key": "k\u009b2J", "class": "c\u009b", "variants": []}])[0]
    assert "\u009b" not in line and "\\x9b" in line


def test_predict_takes_c1_text_again() -> None:
    """`predict(text=...)` follows text_refusal: C1 text was scored before QA39 and is again."""
    from mmdata.train.model import FusionModel, TrainedModel

    torch.manual_seed(0)
    m = FusionModel(["text"], "concat", classes=2, d=8)
    tm = TrainedModel(m, {"config": {"modalities": ["text"], "fusion": "concat"}, "model": m.architecture(),
                          "classes": {"num_classes": 2, "names": ["a", "b"]},
                          "eval_normalize": {"text": [{"op": "max_tokens", "n": 16}]}}, "runs/x")
    reqs = [{"text": t} for t in (MOJIBAKE, MOJIBAKE.encode(), "a\u0085b", "red \u009b31m")]
    assert len(tm.predict(reqs)) == len(reqs)


def _png(path: Path, i: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(i))


def test_class_folder_refusal_names_the_real_code_point(tmp_path: Path) -> None:
    for name in ("cat", "tab\there"):
        for i in range(2):
            _png(tmp_path / "src" / name / f"{i}.png", i)
    with pytest.raises(SourceError, match=r"tab\\there', U\+0009 TAB\).*control character") as got:
        discover(tmp_path / "src")
    assert "ESC" not in str(got.value)


def test_class_names_from_folders_for_label_files_are_checked_too(tmp_path: Path) -> None:
    for name in ("cat", "tab\there"):
        for i in range(2):
            _png(tmp_path / "src" / name / f"{name[:3]}{i}.png", i)
            (tmp_path / "src" / name / f"{name[:3]}{i}.cls").write_text("cat\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"U\+0009 TAB"):
        discover(tmp_path / "src")


def test_folder_npy_named_as_a_standard_field_is_left_out_counted(tmp_path) -> None:
    """(QA39 review sources #2) a folder's ``<stem>.image.npy`` (an array where the image goes) was sharded silently
    and no reader could load the dataset; it is left out, counted and named with the rename, the sample kept."""
    import io
    import warnings

    import numpy as np
    import soundfile as sf

    import mmdata

    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(3):
        np.save(raw / f"{i}.image.npy", np.zeros((5, 8, 8), np.uint8))
        buf = io.BytesIO()
        sf.write(buf, np.zeros(800, np.float32), 8000, format="WAV")
        (raw / f"{i}.wav").write_bytes(buf.getvalue())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = mmdata.shard(str(raw), str(tmp_path / "ds"), split={"train": 1.0}, progress=False)
    left = [e for e in r["skipped"] if e["what"] == "member"]
    assert len(left) == 3 and "image_array.npy" in left[0]["reason"], r["skipped"]
    samples = list(mmdata.open_dataset(str(tmp_path / "ds"), split="train"))
    assert len(samples) == 3 and all("audio" in s.fields for s in samples)
