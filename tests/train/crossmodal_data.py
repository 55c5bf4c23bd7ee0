"""A tiny image + audio + caption dataset for the cross-modal tests (pre-training, ``match``,
``audit-alignment``, an ablation's alignment step), with the defects each test plants: a sample that does
not decode, greyscale images in one split, identical captions, unpaired samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def build(root: Path, *, nan_split: str | None = None, gray_test: bool = False, same_text: bool = False,
          unpaired_test: bool = False) -> Path:
    """24 tiny image + float WAV + caption samples of two classes (12 train / 6 val / 6 test, 8x8 RGB PNGs);
    ``nan_split``: that split's second sample holds NaN audio; ``gray_test``: every other test image is
    greyscale (mode L); ``same_text``: every caption is "a photo"; ``unpaired_test``: a test sample holds
    only its image or only its audio (no caption). Sharded with the default ``--check header``."""
    import soundfile as sf
    from PIL import Image

    import mmdata

    raw = root / "raw"
    raw.mkdir(parents=True)
    splits = ["train"] * 12 + ["val"] * 6 + ["test"] * 6
    bad = splits.index(nan_split) + 1 if nan_split else -1
    lines = ["image,audio,text,label,split"]
    for i, split in enumerate(splits):
        c = i % 2
        x = (0.3 * np.sin(2 * np.pi * (300 + 600 * c + 10 * i) * np.arange(800) / 8000)).astype("float32")
        if i == bad:
            x[10:20] = np.nan
        sf.write(raw / f"s{i:03d}.wav", x, 8000, subtype="FLOAT")
        img = Image.fromarray(np.full((8, 8, 3), (200 if c else 20, 40 + 5 * i, 100), np.uint8))
        if gray_test and split == "test" and c:
            img = img.convert("L")
        img.save(raw / f"s{i:03d}.png")
        caption = "a photo" if same_text else f"{'high' if c else 'low'} tone {i}"
        image, audio = f"s{i:03d}.png", f"s{i:03d}.wav"
        if unpaired_test and split == "test":
            image, audio, caption = (image, "", "") if c else ("", audio, "")
        lines.append(f"{image},{audio},{caption},{'hi' if c else 'lo'},{split}")
    (raw / "m.csv").write_text("\n".join(lines) + "\n")
    mmdata.shard(raw / "m.csv", root / "ds", progress=False,
                 columns={"image": "image", "audio": "audio", "text": "text", "label": "label", "split": "split"})
    return root / "ds"


KW = dict(epochs=1, batch_size=8, threads=1, eval_robustness=False, pretrain="contrastive", pretrain_epochs=1)
