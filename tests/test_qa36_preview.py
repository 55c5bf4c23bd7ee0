"""QA36 preview defects: what the grid cannot show is said (a batch section, 12-bit scans drawn black, stored
fields no panel draws), image targets are drawn beside their image, a one-word deletion is not "text removed",
and the spectrogram has a log-frequency axis with labelled frequencies."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.augment.preview import (STFT_KIND, image_strip, log_spectrogram, preview, preview_figure,
                                    summary_lines)


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]


def _preview(ds: Path, recipe, **kw):
    notes: list[str] = []
    summary: list[dict] = []
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        fig = preview_figure(ds, recipe, notes=notes, summary=summary, **kw)
    return fig, notes, summary, [str(w.message) for w in said]


@pytest.fixture()
def music(tmp_path: Path) -> Path:
    """Four 48 kHz stereo tones (220-550 Hz), a manifest with a genres column (mir #2 / #5)."""
    sr = 48000
    t = np.arange(sr) / sr
    rows = ["audio,genres"]
    for i in range(4):
        sf.write(tmp_path / f"{i}.wav", np.stack([np.sin(2 * np.pi * (220 + 110 * i) * t)] * 2, 1) * 0.9, sr,
                 subtype="PCM_24")
        rows.append(f"{tmp_path / f'{i}.wav'},rock")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", meta=["genres"], progress=False)
    return tmp_path / "ds"


def test_batch_section_is_said_not_shown(music: Path) -> None:
    recipe = {"audio": [{"op": "gain", "p": 1.0, "min_db": 0, "max_db": 0}], "batch": [{"op": "mixup", "p": 1.0, "alpha": 0.4}]}
    fig, notes, _, said = _preview(music, recipe, n=2, variants=1)
    want = "batch section (mixup) not shown: it mixes samples at collate time"
    assert any(want in n for n in notes), notes
    assert any(want in w for w in said), said
    assert any(want in t.replace("\n", " ") for t in _texts(fig)), "the note under the grid"


def test_spectrogram_is_log_frequency_with_labelled_ticks(music: Path) -> None:
    fig, *_ = _preview(music, {"audio": [{"op": "gain", "p": 1.0, "min_db": 0, "max_db": 0}]}, n=1, variants=1)
    texts = _texts(fig)
    assert STFT_KIND == "STFT (log Hz)" and any(t == STFT_KIND for t in texts)
    assert {"100 –", "1k –"} <= set(texts), texts  # frequencies labelled inside the panel
    # a tone an octave up sits well above on the log axis (linear to 24 kHz: one row apart, QA36 mir #5)
    sr = 48000
    t = np.arange(sr) / sr
    rows = []
    for f in (220.0, 440.0):
        db, lo, hi, _ = log_spectrogram(np.sin(2 * np.pi * f * t), sr)
        rows.append(int(db.mean(axis=1).argmax()))
        assert abs(np.geomspace(lo, hi, db.shape[0])[rows[-1]] / f - 1) < 0.1
    assert rows[1] - rows[0] >= 10, rows


def test_one_deleted_word_is_not_text_removed(tmp_path: Path) -> None:
    (tmp_path / "raw" / "rock").mkdir(parents=True)
    (tmp_path / "raw" / "rock" / "a.txt").write_text("la la la\n\nla la\n")
    (tmp_path / "raw" / "rock" / "b.txt").write_text("one two three four\n")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    _, _, summary, _ = _preview(tmp_path / "ds", {"text": [{"op": "word_delete", "p": 1.0}]}, n=2, variants=1)
    lines = summary_lines(summary)
    assert not any("text removed" in ln for ln in lines), lines
    deleted = [v["text_counts"] for r in summary for v in r["variants"] if "removed" in v["text_marks"]]
    assert deleted and all(c["removed"] >= 1 for c in deleted), summary
    assert any(f"text: {c['removed']} word{'s' * (c['removed'] != 1)} removed" in " ".join(lines) for c in deleted), lines


def test_twelve_bit_scans_drawn_black_are_said(tmp_path: Path) -> None:
    for i in range(4):
        d = tmp_path / "raw" / ("normal" if i < 2 else "abnormal")
        d.mkdir(parents=True, exist_ok=True)
        a = (np.random.default_rng(i).random((64, 64)) * 4095).astype(np.uint16)
        if i == 3:
            a[0, 0] = 65535  # a burned-in marker: the image's maximum is full range, its pixels still dark
        Image.fromarray(a).save(d / f"x{i}.png")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    fig, notes, _, said = _preview(tmp_path / "ds", {"image": [{"op": "hflip", "p": 1.0}]}, n=4, variants=1)
    note = next((n for n in notes if "drawn nearly black" in n), None)
    assert note is not None and note.startswith("4 of 4 images drawn nearly black"), notes
    assert "the card warns of 16-bit images" in note, note
    assert any("drawn nearly black" in w for w in said)


def test_bright_images_get_no_dark_note(tmp_path: Path) -> None:
    for i, c in enumerate(("a", "b")):
        (tmp_path / "raw" / c).mkdir(parents=True)
        Image.fromarray(np.full((16, 16, 3), 120 + i, np.uint8)).save(tmp_path / "raw" / c / "x.png")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    _, notes, _, _ = _preview(tmp_path / "ds", {"image": [{"op": "hflip", "p": 1.0}]}, n=2, variants=1)
    assert not any("nearly black" in n or "not drawn" in n for n in notes), notes


def test_image_targets_are_drawn_beside_the_image_with_the_same_flip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for k, c in (("a", "x"), ("b", "y")):
        a = rng.integers(0, 255, (32, 32, 3)).astype(np.uint8)
        Image.fromarray(a).save(tmp_path / f"{k}0.png")
        Image.fromarray(a).save(tmp_path / f"{k}1.png")
        rows.append({"key": k, "label": c, "image": f"{k}0.png", "frame1": f"{k}1.png"})
    with open(tmp_path / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", columns={"frame1": "frame1"}, progress=False)
    recipe = {"seed": 0, "targets": {"frame1.png": "image"}, "image": [{"op": "hflip", "p": 1.0}]}
    fig, notes, summary, _ = _preview(tmp_path / "ds", recipe, n=2, variants=1)
    assert any("image target frame1.png drawn right of each image" in n for n in notes), notes
    assert not any("fields not drawn" in n for n in notes), notes
    # each image panel draws the image and its frame side by side: the same pixels (frame == image), flipped alike
    panels = [ax.images[0].get_array() for ax in fig.axes if ax.images and ax.images[0].get_array().ndim == 3]
    assert len(panels) == 4, len(panels)
    for p in panels:
        p = np.asarray(p)
        assert p.shape[1] > 64
        assert np.array_equal(p[:, :32], p[:, -32:])
    # the helper: a frame the sample lacks is a near-white block (framed and labelled in the grid: QA40), never a crash
    import torch

    from mmdata.augment.preview import MISSING_LEVEL

    s = mmdata.Sample("k", {"image": torch.zeros(3, 4, 4, dtype=torch.uint8)})
    assert image_strip(s, ["gone.png"])[:, -4:].tolist() == [[[MISSING_LEVEL] * 3] * 4] * 4


def test_arrays_only_grid_plots_the_array_and_names_what_it_does_not_draw(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for c in ("afib", "normal"):
        (tmp_path / "raw" / c).mkdir(parents=True)
        for i in range(2):
            np.save(tmp_path / "raw" / c / f"{c}_{i}.npy", (rng.normal(size=(300,)) * 1000).astype(np.int16))
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    out = tmp_path / "p.png"
    notes: list[str] = []
    preview(tmp_path / "ds", {"image": [{"op": "hflip"}]}, out, n=2, variants=1, notes=notes)
    assert out.stat().st_size > 0
    assert any(n.startswith("array: its first channel drawn as a line") for n in notes), notes
    fig = preview_figure(tmp_path / "ds", {"image": [{"op": "hflip"}]}, n=2, variants=1)
    plotted = [ax.lines[0].get_ydata() for ax in fig.axes if ax.lines]
    assert len(plotted) == 4 and all(len(y) == 300 for y in plotted)


def test_fields_no_panel_draws_are_named(tmp_path: Path) -> None:
    """A field that is neither media, a target nor a 1-D / 2-D signal (a 3-D volume) is named, not left silent."""
    from mmdata.augment.preview import fields_not_drawn

    s = mmdata.Sample("k", {"label": 0, "vol": np.zeros((2, 3, 4), np.float32), "json": {"a": 1}})
    assert fields_not_drawn([s]) == ["vol (float32, shape (2, 3, 4))"]


def test_the_cli_json_lists_the_notes(music: Path, tmp_path: Path) -> None:
    """`mmdata preview --json` carries what the grid says under it (the batch section not drawn)."""
    import json
    import subprocess
    import sys

    (tmp_path / "r.yaml").write_text("audio:\n  - {op: gain, p: 1.0, min_db: 0, max_db: 0}\n"
                                     "batch:\n  - {op: mixup, p: 1.0, alpha: 0.4}\n")
    out = subprocess.run([sys.executable, "-m", "mmdata", "preview", str(music), "-r", str(tmp_path / "r.yaml"),
                          "-o", str(tmp_path / "g.png"), "--n", "2", "--json"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    notes = json.loads(out.stdout)["notes"]
    assert any("batch section (mixup) not shown" in n for n in notes), notes


def test_identical_stereo_channels_draw_one_line_said_identical(tmp_path: Path) -> None:
    """QA36 review: a mono clip stored as stereo drew the orange 2nd channel over the blue 1st (only orange seen)."""
    sr = 16000
    t = np.arange(sr // 2) / sr
    tone = np.sin(2 * np.pi * 440 * t) * 0.5
    (tmp_path / "raw").mkdir()
    sf.write(tmp_path / "raw" / "same.wav", np.stack([tone, tone], 1), sr)
    sf.write(tmp_path / "raw" / "diff.wav", np.stack([tone, -tone], 1), sr)
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    fig, *_ = _preview(tmp_path / "ds", {"audio": [{"op": "gain", "p": 1.0, "min_db": 0, "max_db": 0}]}, n=2,
                       variants=1)
    texts = _texts(fig)
    assert sum(t.endswith("2 ch identical") for t in texts) >= 1, texts
    assert any(t.endswith("2 ch") for t in texts), texts  # the anti-phase clip: both channels drawn, not "identical"
