"""`mmdata augment` (copies, determinism, verify-clean, params in the index) and `mmdata preview`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.errors import RecipeError
from mmdata.shards import index as idx
from mmdata.testing import make_sample_folder

RECIPE = Path(__file__).parents[2] / "recipes" / "avdigits.yaml"


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("off")
    mmdata.shard(make_sample_folder(root / "raw", n=10), root / "ds", split="train=0.8,val=0.2", progress=False)
    return root / "ds"


def _bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_augment_cli_copies_and_determinism(tmp_path: Path, ds: Path) -> None:
    runner = CliRunner()
    for name, extra in (("a", []), ("b", []), ("c", ["--workers", "2"])):
        res = runner.invoke(app, ["augment", str(ds), str(tmp_path / name / "aug"), "--recipe", str(RECIPE), "--copies", "2",
                                  "--keep-original", *extra])
        assert res.exit_code == 0, res.output
    a = _bytes(tmp_path / "a" / "aug")
    assert a == _bytes(tmp_path / "b" / "aug") == _bytes(tmp_path / "c" / "aug")
    out = tmp_path / "a" / "aug"
    assert mmdata.verify(out)["ok"]
    rows = idx.load_index(out).to_pylist()
    src = idx.load_index(ds).to_pylist()
    n_train = sum(r["split"] == "train" for r in src)
    # train: original + 2 copies each; val: written through once (training augmentation is not applied to it)
    assert len(rows) == 3 * n_train + (len(src) - n_train) and {r["split"] for r in rows} == {"train", "val"}
    assert {r["key"] for r in rows if r["split"] == "val"} == {r["key"] for r in src if r["split"] == "val"}
    keys = {r["key"] for r in rows}
    assert {"000000", "000000_aug0", "000000_aug1"} <= keys
    r = next(r for r in rows if r["key"] == "000001_aug1")
    params = json.loads(r["aug_params"])
    assert [p["op"] for p in params][:2] == ["image.random_crop", "image.rotate"] and r["aug_source"] == "000001"
    samples = {s.key: s for s in mmdata.open_dataset(out)}
    augmented = [s for k, s in samples.items() if "_aug" in k and "image" in s]  # modality_dropout may drop some
    assert augmented and all(s["image"].shape[-2:] == (16, 16) for s in augmented)  # random_crop size from the recipe


def test_augment_refuses_batch_ops(tmp_path: Path, ds: Path) -> None:
    with pytest.raises(RecipeError, match="batch"):
        from mmdata.augment.offline import augment_dataset

        augment_dataset(ds, tmp_path / "x", {"batch": [{"op": "mixup"}]}, progress=False)


def test_preview_png(tmp_path: Path, ds: Path) -> None:
    res = CliRunner().invoke(app, ["preview", str(ds), "--recipe", str(RECIPE), "--out", str(tmp_path / "g.png"), "--n", "3",
                                   "--variants", "2"])
    assert res.exit_code == 0, res.output
    from PIL import Image

    with Image.open(tmp_path / "g.png") as im:
        assert im.format == "PNG" and im.width > 300 and im.height > 400


def test_preview_layout_and_spectrogram_contrast(tmp_path: Path, ds: Path) -> None:
    """QA 2026-12-02: an 8-row preview had 2.5 inches of blank under its title (the grid's top was a
    share of the height), and a padded clip's spectrogram was one saturated block (the colour scale
    ran down to the padding's -180 dB)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    from mmdata.augment.preview import preview, spectrogram

    out = preview(ds, RECIPE, tmp_path / "g.png", n=3, variants=1)
    with Image.open(out) as im:
        rows = (np.asarray(im.convert("L")) < 250).any(axis=1)  # rows with any ink
    starts = np.flatnonzero(rows[1:] & ~rows[:-1]) + 1  # where a block of ink begins: the title, then the first cell
    assert len(starts) >= 2 and starts[1] - starts[0] < 80, starts[:3]  # 110 dpi: under ~0.7 inch from title to grid
    rate = 8000
    t = np.arange(rate // 4) / rate
    wav = np.concatenate([0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.random.default_rng(0).normal(size=t.size),
                          np.zeros(rate)])  # a quarter second of tone + noise, then padding
    fig, ax = plt.subplots()
    im = spectrogram(ax, wav, rate)
    lo, hi = im.get_clim()
    assert hi - lo == 80
    scaled = (np.asarray(im.get_array()) - lo) / (hi - lo)  # 0..1 as coloured (the image is flipped: no matter)
    signal = scaled[:, : scaled.shape[1] // 5]  # the tone's columns
    assert 0.1 < float(np.median(signal)) < 0.9 and float(signal.std()) > 0.05  # structure, not one colour
    plt.close(fig)


def test_mark_changes() -> None:
    from mmdata.augment.preview import mark_changes

    assert mark_changes("one two three", "one three") == "one [-two-] three"


@pytest.fixture(scope="module")
def messy_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.testing import make_messy_folder

    root = tmp_path_factory.mktemp("messyprev")
    m = make_messy_folder(root / "raw", n=40, sizes=((32, 32), (48, 64), (60, 40)), seconds=(0.3, 1.0))
    mmdata.shard(m.root, root / "ds", maxcount=10, progress=False)
    return root / "ds"


def _glyph_warnings(record: list) -> list[str]:
    return [str(w.message) for w in record if "missing from font" in str(w.message)]


def test_preview_of_text_only_cells_and_the_readme_command(tmp_path: Path, ds: Path) -> None:
    """Issue 10 defect 7: a cell with neither image nor audio crashed the preview (preview.py:41) — e.g.
    every variant after modality_dropout of both, and the README's own `--seed 1` command."""
    rec = tmp_path / "text_only.yaml"
    rec.write_text("sample:\n  - {op: modality_dropout, p: 1.0, modalities: [image, audio], p_drop: 1.0, keep_at_least: 1}\n")
    for recipe, extra in ((rec, []), (RECIPE, ["--seed", "1"])):
        res = CliRunner().invoke(app, ["preview", str(ds), "--recipe", str(recipe), "--out", str(tmp_path / "t.png"), "--n", "3",
                                       "--variants", "2", *extra])
        assert res.exit_code == 0, res.output


def test_preview_of_messy_data_with_normalize(tmp_path: Path, messy_ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mixed modes / rates / CJK captions preview with a normalize recipe; without a CJK font the captions
    show a visible placeholder instead of boxes (no missing-glyph warnings)."""
    import warnings

    from PIL import Image

    from mmdata.augment import preview as pv

    recipe = {"normalize": {"image": [{"op": "to_rgb"}, {"op": "resize", "size": 32}, {"op": "center_crop", "size": 32}],
                            "audio": [{"op": "to_mono"}, {"op": "resample", "rate": 16000}]},
              "text": [{"op": "token_mask", "p": 1.0, "p_token": 0.3}]}
    monkeypatch.setattr(pv, "cjk_font", lambda path=None: None)  # as on a machine without CJK fonts
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = pv.preview(messy_ds, recipe, tmp_path / "m.png", n=6, variants=1)
    assert not _glyph_warnings(record), _glyph_warnings(record)[:2]
    with Image.open(out) as im:
        assert im.width > 500 and im.height > 900  # 6 rows x (original, normalized, epoch 0)
    assert pv.placeholder_cjk("写真 of 圆形") == "⟦CJK ×2⟧ of ⟦CJK ×2⟧"


def test_preview_draws_cjk_with_a_cjk_font(tmp_path: Path, messy_ds: Path) -> None:
    """With a CJK font installed (CI installs fonts-wqy-microhei; or $MMDATA_CJK_FONT), captions are drawn
    with real glyphs: matplotlib reports no missing glyph."""
    import warnings

    from mmdata.augment.preview import cjk_font, preview

    if cjk_font() is None:
        pytest.skip("no CJK font on this machine (scripts/setup_env.sh installs fonts-wqy-microhei where it can)")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        preview(messy_ds, {"text": [{"op": "word_swap", "p": 1.0}]}, tmp_path / "c.png", n=6, variants=1)
    assert not _glyph_warnings(record)


def test_preview_long_keys_and_emoji(tmp_path: Path) -> None:
    """QA: a long sample key overprinted the next column's title; an emoji caption printed matplotlib's
    'Glyph ... missing from font(s)' warnings on the terminal."""
    import warnings

    from mmdata.augment.preview import KEY_CHARS, _fit, preview

    raw = tmp_path / "raw"
    make_sample_folder(raw, n=2)
    for i, p in enumerate(sorted(raw.glob("*.txt"))):
        for f in raw.glob(p.stem + ".*"):
            f.rename(raw / f"extra_IMG_1007_78211516_holiday_photo_{i}{''.join(f.suffixes)}")
    (raw / "extra_IMG_1007_78211516_holiday_photo_0.txt").write_text("party time \U0001f525\U0001f389", encoding="utf-8")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        preview(tmp_path / "ds", {"image": [{"op": "hflip"}]}, tmp_path / "p.png", n=2, variants=1)
    assert not [w for w in caught if "Glyph" in str(w.message)]
    key = "extra_IMG_1007_78211516_holiday_photo_0"
    assert len(_fit(key)) == KEY_CHARS and _fit(key).startswith("extra_IMG") and _fit(key).endswith("photo_0")
    assert _fit("short") == "short"


def test_a_dropped_modality_keeps_its_slot() -> None:
    """QA 2026-12-02: where a variant dropped the image, its waveform and spectrogram moved up into the image's
    slot and grew, so the rows of the grid no longer lined up; the slot now stays, framed and labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from mmdata import Sample
    from mmdata.augment.preview import _cell

    original = Sample("k", {"image": torch.zeros(3, 8, 8, dtype=torch.uint8), "audio": torch.zeros(1, 800), "text": "a cat"},
                      sample_rate=8000)
    boxes = []
    for variant in (original, Sample("k", {"audio": torch.zeros(1, 800), "text": "a cat"}, sample_rate=8000),
                    Sample("k", {"image": torch.zeros(3, 8, 8, dtype=torch.uint8), "text": "a cat"})):
        fig = plt.figure(figsize=(2, 4))
        _cell(fig, fig.add_gridspec(1, 1)[0], variant, original, None, "v", None)
        boxes.append([tuple(round(v, 3) for v in ax.get_position(original=True).bounds) for ax in fig.axes])
        labels = [t.get_text() for ax in fig.axes for t in ax.texts]
        if "image" not in variant:
            assert "image dropped" in labels
        if "audio" not in variant:
            assert "audio dropped" in labels
        plt.close(fig)
    assert boxes[0] == boxes[1] == boxes[2]  # image, waveform, spectrogram, text: the same four slots


def test_preview_spreads_rows_over_classes_and_reads_only_their_shards(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A class-folder dataset's keys are sorted by class: the first n rows were all of the first class.
    The rows now take the classes in turn, evenly spaced within each, and only the shards holding them
    are read."""
    from mmdata.augment import preview as pv
    from mmdata.shards import reader

    raw = tmp_path / "raw"
    for c in ("ant", "bee", "cat"):
        (raw / c).mkdir(parents=True)
        for i in range(6):
            (raw / c / f"{i:02d}.txt").write_text(f"{c} number {i}", encoding="utf-8")
    mmdata.shard(raw, tmp_path / "ds", maxcount=3, progress=False)
    ds = mmdata.open_dataset(tmp_path / "ds")
    picked = pv.spread_keys(ds, 4)
    labels = {r["key"]: r["label"] for r in idx.load_index(tmp_path / "ds").to_pylist()}
    assert [labels[k] for k, _ in picked] == [0, 1, 2, 0]
    assert [k.split("_")[1] for k, _ in picked] == ["00", "00", "00", "03"]  # evenly spaced within a class
    assert pv.spread_keys(mmdata.open_dataset(sorted((tmp_path / "ds").glob("*.tar"))), 4) is None  # bare shards

    shown: list[str] = []
    read: list[str] = []
    monkeypatch.setattr(pv, "_cell", lambda fig, spec, s, *args, **kw: shown.append(s.key) or False)
    real = reader.ShardDataset._shard_items
    monkeypatch.setattr(reader.ShardDataset, "_shard_items",
                        lambda self, shard, *a, **k: read.append(shard) or real(self, shard, *a, **k))
    pv.preview(tmp_path / "ds", {"text": [{"op": "token_mask", "p": 1.0}]}, tmp_path / "p.png", n=4, variants=1)
    assert shown[::2] == [k for k, _ in picked]  # rows in the picked order (two cells a row)
    assert sorted(read) == sorted({sh for _, sh in picked}) and len(read) < len(ds.shards)


def test_preview_leaves_the_callers_matplotlib_alone(tmp_path: Path, ds: Path) -> None:
    """preview switched the process to the Agg backend (a notebook's plt.show() stopped displaying) and a
    preview interrupted mid-drawing left its figure in pyplot's list (QA 2026-12-03): figures are
    matplotlib.figure.Figure objects now, never pyplot's."""
    import subprocess
    import sys

    code = ("import matplotlib; matplotlib.use('svg'); import matplotlib.pyplot as plt\n"
            "from mmdata.augment.preview import preview\n"
            f"preview({str(ds)!r}, {str(RECIPE)!r}, {str(tmp_path / 'p.png')!r}, n=2, variants=1)\n"
            "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
            "assert plt.get_fignums() == [], plt.get_fignums()\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
