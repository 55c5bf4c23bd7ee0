"""QA37 preview / verify / reader defects: verify --deep on a float-TIFF named field holding NaN (a tensor, not an
array), a long stereo clip drawn per channel, a silent clip drawn as silence, a float target's NaN drawn as
nodata, and loader(blend(...)) pointing at the mapping it takes."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset


def _dem_folder(root: Path, n: int, size: int, nan: bool) -> Path:
    """n tiles (grey PNG) with a float DEM TIFF beside each, NaN at [0, 0] when ``nan``; labels a / b."""
    raw = root / "raw"
    raw.mkdir(parents=True)
    rows = []
    for i in range(n):
        Image.fromarray(np.full((size, size, 3), 20 + i * 20, np.uint8)).save(raw / f"t{i}.png")
        d = np.tile(np.linspace(0, 3000, size, dtype=np.float32), (size, 1)) + i
        if nan:
            d[0, 0] = np.nan
        Image.fromarray(d, "F").save(raw / f"t{i}_dem.tif")
        rows.append({"image": f"t{i}.png", "dem": f"t{i}_dem.tif", "label": "ab"[i % 2]})
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return raw / "m.csv"


def test_verify_deep_counts_nan_in_a_float_tiff_named_field(tmp_path: Path) -> None:
    """geo #2: the augmented dem.tif.npy decodes to a tensor (``.size`` is a method): deep verify warned by
    crashing with a TypeError instead of naming the field."""
    manifest = _dem_folder(tmp_path, 4, 16, nan=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(manifest, tmp_path / "d", columns={"dem": "dem"}, progress=False)
        augment_dataset(tmp_path / "d", tmp_path / "daug",
                        {"seed": 0, "targets": {"dem.tif": "mask"}, "image": [{"op": "hflip", "p": 0.5}]},
                        progress=False)
        report = mmdata.verify(tmp_path / "daug", deep=True)
    assert report["ok"], report["problems"]
    said = " ".join(str(w) for w in report.get("warnings", []))
    assert "dem.tif" in said and "4 of 4 arrays" in said and "1 of 256 values" in said, report.get("warnings")


def test_loader_of_a_blend_names_the_mapping_to_pass(tmp_path: Path) -> None:
    """fed #4: mmdata.loader(mmdata.blend(...)) said "or a list of those", and a list of dataset folders is
    refused: the error gives the mapping the loader takes, built from the blend."""
    from mmdata.testing import make_class_folders

    for name in ("s1", "s2"):
        make_class_folders(tmp_path / f"raw_{name}", per_class=2)
        mmdata.shard(tmp_path / f"raw_{name}", tmp_path / name, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = mmdata.blend({"s1": tmp_path / "s1", "s2": tmp_path / "s2"}, split="train", seed=3, weights={"s2": 2.0})
        with pytest.raises(mmdata.ShardError) as err:
            mmdata.loader(b, batch_size=2)
    msg = str(err.value)
    assert "got a BlendDataset" in msg and "list of those" not in msg, msg
    want = (f"mmdata.loader({{'s1': {str(tmp_path / 's1')!r}, 's2': {str(tmp_path / 's2')!r}}}, split='train', "
            "weights={'s1': 1.0, 's2': 2.0}, seed=3)")
    assert want in msg, msg
    # the mapping it names is one the loader takes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = next(iter(mmdata.loader({"s1": tmp_path / "s1", "s2": tmp_path / "s2"}, split="train",
                                        weights={"s1": 1.0, "s2": 2.0}, seed=3, batch_size=2)))
    assert batch is not None


def _stereo_dataset(root: Path, seconds: int, rate: int = 8000) -> Path:
    """Two stereo clips: the 1st channel speaks in the first half, the 2nd in the second (a host and a guest)."""
    import soundfile as sf

    for c in ("a", "b"):
        (root / "raw" / c).mkdir(parents=True)
        n = rate * seconds
        x = np.zeros((n, 2), np.float32)
        x[: n // 2, 0] = 0.5 * np.sin(np.arange(n // 2) / 3)
        x[n // 2:, 1] = 0.2 * np.sin(np.arange(n - n // 2) / 5)
        sf.write(root / "raw" / c / "talk.wav", x, rate, subtype="PCM_16")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the two classes hold the same clip: said, not this test's matter
        mmdata.shard(root / "raw", root / "ds", progress=False)
    return root / "ds"


def _fills(ax) -> list[tuple[str, float, float]]:
    """(colour, lowest, highest) of each filled envelope on ``ax``."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_hex

    out = []
    for coll in ax.collections:
        if isinstance(coll, PolyCollection):
            ys = np.concatenate([p.vertices[:, 1] for p in coll.get_paths()])
            out.append((to_hex(coll.get_facecolor()[0], keep_alpha=False), float(ys.min()), float(ys.max())))
    return out


def test_a_long_stereo_clip_draws_each_channels_envelope(tmp_path: Path) -> None:
    """podcast #4: over 30 s, min / max over every channel drew one blue band while the note said blue the 1st
    channel, orange the others."""
    import torch
    from matplotlib.colors import to_hex

    from mmdata.augment.preview import WAVE_COLOURS, Sample, drawn_sample, preview_figure

    rate, n = 8000, 8000 * 40
    x = torch.zeros(2, n)
    x[0, : n // 2] = 0.5 * torch.sin(torch.arange(n // 2) / 3.0)
    x[1, n // 2:] = 0.2 * torch.sin(torch.arange(n - n // 2) / 5.0)
    d, what = drawn_sample(Sample("k", {"audio": x}, sample_rate=rate))
    t, lo, hi, seconds = d.meta["preview_envelope"]
    assert what == {"audio"} and seconds == 40 and lo.shape == hi.shape == (2, len(t))
    half = len(t) // 2
    assert hi[0, : half - 1].min() > 0.45 and hi[0, half + 1:].max() == 0  # the host, then nothing
    assert hi[1, : half - 1].max() == 0 and 0.15 < hi[1, half + 1:].min() < 0.25  # nothing, then the guest
    mono = drawn_sample(Sample("m", {"audio": torch.stack([x[0], x[0]])}, sample_rate=rate))[0]
    assert mono.meta["preview_envelope"][1].shape == (1, len(t))  # identical channels: one envelope

    ds = _stereo_dataset(tmp_path, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig = preview_figure(ds, {"audio": [{"op": "gain", "p": 1.0, "min_db": 0, "max_db": 0}]}, n=1, variants=1)
    waves = [f for ax in fig.axes if (f := _fills(ax))]
    assert waves, "no envelope drawn"
    for fills in waves:
        colours = [c for c, _, _ in fills]
        assert colours == [to_hex(WAVE_COLOURS[0]), to_hex(WAVE_COLOURS[1])], fills
        assert fills[0][2] > 0.45 and 0.15 < fills[1][2] < 0.25, fills  # each channel its own height


def test_a_silent_clip_is_drawn_as_silence(tmp_path: Path) -> None:
    """podcast #9: scaled to its own maximum, digital silence drew magma's top colour (as if loudest), and the
    white STFT label on it could not be read."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf

    from mmdata.augment.preview import SILENT_DBFS, log_spectrogram, preview_figure, spectrogram

    rate = 8000
    fig, (a, b) = plt.subplots(2)
    im = spectrogram(a, np.zeros(rate * 2), rate)
    lo_c, hi_c = im.get_clim()
    assert float(np.asarray(im.get_array()).max()) <= lo_c, "silence coloured above the bottom of the scale"
    assert any(t.get_text().startswith("silent") for t in a.texts)
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(rate * 2) / rate)
    im2 = spectrogram(b, tone, rate)
    assert not any(t.get_text().startswith("silent") for t in b.texts)
    assert -14 < im2.get_clim()[1] < -8  # a tone at 0.3 of full scale: its own top, as before (about -10.5 dBFS)
    db = log_spectrogram(np.sin(2 * np.pi * 440 * np.arange(rate) / rate), rate)[0]
    assert -3 < float(db.max()) < 1  # dB relative to full scale: a full-scale sine peaks near 0
    plt.close(fig)

    for c, x in (("a", np.zeros(rate * 4)), ("b", tone)):
        (tmp_path / "raw" / c).mkdir(parents=True)
        sf.write(tmp_path / "raw" / c / f"{c}.wav", x.astype(np.float32), rate, subtype="PCM_16")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig = preview_figure(tmp_path / "ds", {"audio": [{"op": "gain", "p": 1.0, "min_db": -1, "max_db": -1}]},
                             n=2, variants=1)
    said = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sum(t.startswith("silent") for t in said) == 2, said  # the silent clip's original and its variant


def test_a_nan_in_a_float_target_is_nodata_not_the_scale(tmp_path: Path) -> None:
    """geo #6: one NaN in a DEM made the legend five "nan" ticks and the overlay one flat colour; the scale is the
    finite values', NaN drawn and named as nodata."""
    from matplotlib.colors import to_rgba

    from mmdata.augment.preview import NODATA_COLOUR, overlay, preview_figure, target_legend, target_values

    dem = np.tile(np.linspace(0, 3000, 32), (32, 1))
    dem[0, 0] = np.nan
    values = target_values([dem])
    title, entries = target_legend("dem.tif", values)
    labels = [label for label, _ in entries]
    assert "nan" not in labels and labels[-1] == "NaN (nodata)" and entries[-1][1] == NODATA_COLOUR, labels
    assert labels[:5] == ["96.77", "822.6", "1548", "2274", "3000"] and "(31 values" in title, (title, labels)
    clean = target_legend("dem.tif", target_values([np.nan_to_num(dem)]))
    assert clean[1] == entries[:-1], "the NaN changes no other entry"

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    overlay(ax, dem[None], values)
    scale, marks = ax.images  # the colour scale, then the nodata layer
    drawn = scale.to_rgba(scale.get_array())
    assert len({tuple(np.round(c, 3)) for c in drawn[1:, 1:].reshape(-1, 4)}) > 20, "a flat overlay"
    assert np.ma.getmaskarray(scale.get_array())[0, 0] and tuple(marks.get_array()[0, 0]) == NODATA_COLOUR
    assert not marks.get_array()[1:, 1:].any()
    plt.close(fig)

    manifest = _dem_folder(tmp_path, 4, 32, nan=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(manifest, tmp_path / "d", columns={"dem": "dem"}, progress=False)
        fig = preview_figure(tmp_path / "d", {"seed": 0, "targets": {"dem.tif": "mask"},
                                              "image": [{"op": "hflip", "p": 1.0}]}, n=2, variants=1)
    legend = fig.legends[0]
    said = [t.get_text() for t in legend.get_texts()]
    assert "nan" not in said and said[-1] == "NaN (nodata)", said
    assert to_rgba(legend.legend_handles[-1].get_facecolor()) == NODATA_COLOUR


def test_loader_of_a_blend_with_per_dataset_splits_names_that_mapping(tmp_path: Path) -> None:
    """fix2 #4: a blend of split={"s1": "train", "s2": "test"} was told to call loader(..., split='train'), which
    reads s2's train samples instead of its test ones: the hint carries the {name: split} mapping."""
    from mmdata.testing import make_class_folders

    for name in ("s1", "s2"):
        make_class_folders(tmp_path / f"raw_{name}", per_class=4)
        mmdata.shard(tmp_path / f"raw_{name}", tmp_path / name, split={"train": 0.5, "test": 0.5}, progress=False)
    folders = {"s1": tmp_path / "s1", "s2": tmp_path / "s2"}
    splits = {"s1": "train", "s2": "test"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = mmdata.blend(folders, split=splits, seed=3)
        with pytest.raises(mmdata.ShardError) as err:
            mmdata.loader(b, batch_size=2)
    msg = str(err.value)
    assert "split={'s1': 'train', 's2': 'test'}" in msg and "split='train'" not in msg, msg
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keys = [k for batch in mmdata.loader(folders, split=splits, seed=3, batch_size=2) for k in batch.keys]
    import pandas as pd

    wanted = set()
    for n, d in folders.items():
        index = pd.read_parquet(d / "index.parquet")
        wanted |= {f"{n}/{k}" for k in index.loc[index["split"] == splits[n], "key"]}
    assert set(keys) == wanted, (keys, wanted)  # the mapping said is the one that reads s2's test samples
    # one split for every dataset: still said as one name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same = mmdata.blend(folders, split={"s1": "test", "s2": "test"})
        with pytest.raises(mmdata.ShardError) as err:
            mmdata.loader(same, batch_size=2)
    assert "split='test'" in str(err.value), str(err.value)


def _noise(rate: int, seconds: int, dbfs: float) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(rate * seconds) * 10 ** (dbfs / 20)


def test_silent_is_judged_by_the_clips_peak_not_its_loudest_bin() -> None:
    """fix2 #5: white noise at -110 dBFS RMS spreads over every bin (its loudest under -120 dB) and was called
    "silent (under -120 dBFS)" while a -110 dBFS sine was drawn; silence is the clip's peak sample level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mmdata.augment.preview import SILENT_DBFS, log_spectrogram, spectrogram

    rate = 48000
    noise = _noise(rate, 5, -110)
    assert float(log_spectrogram(noise, rate)[0].max()) < SILENT_DBFS  # the case: every bin under the line
    quiet = np.full(rate * 2, 10 ** (-130 / 20))  # a DC offset at -130 dBFS: under the line, said silent
    quiet[::2] *= -1
    fig, axes = plt.subplots(3)
    drawn = {name: (spectrogram(ax, x, rate), ax) for ax, (name, x) in
             zip(axes, (("noise", noise), ("quiet", quiet), ("zero", np.zeros(rate * 2))))}
    said = {name: [t.get_text() for t in ax.texts if t.get_text().startswith("silent")] for name, (_, ax) in
            drawn.items()}
    assert said["noise"] == [], said
    assert said["quiet"] == said["zero"] == [f"silent (peak under {SILENT_DBFS:g} dBFS)"], said
    im = drawn["noise"][0]
    assert im.get_clim()[1] == pytest.approx(float(log_spectrogram(noise, rate)[0].max())), "noise: its own scale"
    plt.close(fig)


def test_target_values_sorts_minus_inf_first_and_the_legend_names_it() -> None:
    """fix2 #5: target_values said infinities sort last; -inf sorts first (np.unique), NaN and +inf last. The
    legend names each kind of nodata present (-inf was said 'inf')."""
    from mmdata.augment.preview import target_legend, target_values

    values = target_values([np.array([[1.0, np.nan], [-np.inf, 2.0], [np.inf, 0.0]])])
    assert str(values.tolist()) == "[-inf, 1.0, 2.0, inf, nan]"
    assert target_values.__doc__ is not None and "-inf" in target_values.__doc__
    labels = [label for label, _ in target_legend("dem.tif", values)[1]]
    assert labels == ["1", "2", "NaN / -inf / inf (nodata)"], labels
    labels = [label for label, _ in target_legend("dem.tif", target_values([np.array([[1.0, -np.inf]])]))[1]]
    assert labels == ["1", "-inf (nodata)"], labels
