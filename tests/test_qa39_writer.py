"""QA round 39 fixes in mmdata/shards/writer.py (fixer "writer")."""

from __future__ import annotations

from collections import Counter

from mmdata.shards.writer import Record, assign_splits

SPLIT = {"train": 0.7, "val": 0.15, "test": 0.15}


def _recs(sizes: list[int], groups: bool = False) -> list[Record]:
    out = []
    for c, n in enumerate(sizes):
        for j in range(n):
            r = Record(f"c{c}_{j}", f"c{c}_{j}", {"txt": b"x"}, label=c)
            if groups:
                r.group = f"g{c}_{j // 3}"
            out.append(r)
    return out


def test_small_classes_go_to_train_every_seed() -> None:
    """(QA39 ecommerce #4) a class of 1-2 samples never lands only in val / test; the note names it."""
    for seed in range(8):
        recs = _recs([40, 30, 1, 1, 2, 1, 2])
        notes = assign_splits(recs, SPLIT, seed=seed, label_names=list("abcdefg"))
        for c in (2, 3, 4, 5, 6):
            assert {r.split for r in recs if r.label == c} == {"train"}, (seed, c)
        assert not any("no training sample" in n for n in notes), notes
        note = next(n for n in notes if "fewer samples than the 3 splits" in n)
        assert "5 classes" in note and "'c' (1)" in note and "'train'" in note
        got = Counter(r.split for r in recs if r.label in (0, 1))
        assert got["val"] and got["test"]


def test_small_classes_go_to_train_with_groups() -> None:
    """(QA39 ecommerce #4) with --group-by (singleton groups of one-sample classes) too."""
    for seed in range(8):
        recs = _recs([30, 30, 1, 1, 1, 2, 1, 1, 1], groups=True)
        notes = assign_splits(recs, SPLIT, seed=seed)
        for c in range(2, 9):
            assert {r.split for r in recs if r.label == c} == {"train"}, (seed, c)
        assert any("fewer samples than the 3 splits" in n for n in notes)


def _video_rows(tmp_path, arrays: dict[str, "object"]):
    import csv

    import numpy as np

    raw = tmp_path / "raw"
    raw.mkdir()
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "video", "label"])
        for k, x in arrays.items():
            np.save(raw / f"{k}.npy", x)
            w.writerow([k, f"{k}.npy", "A" if k < "m" else "B"])
    return raw / "m.csv"


def test_float_video_among_uint8_names_the_scales(tmp_path) -> None:
    """(QA39 lipreading #6) a 0-1 float32 video among 0-255 uint8 ones: the dtype-mix warning says the scales differ."""
    import numpy as np

    import mmdata

    rng = np.random.default_rng(0)
    arrays = {f"k{i}": rng.integers(0, 256, (10 + i, 8, 8)).astype(np.uint8) for i in range(5)}
    arrays["z_float"] = rng.random((12, 8, 8)).astype(np.float32)
    rep = mmdata.shard(_video_rows(tmp_path, arrays), tmp_path / "ds", columns={"video": "video"}, progress=False)
    mix = next(w for w in rep["warnings"] if "2 dtypes" in w)
    assert "scales differ" in mix and "0-1" in mix and "(x * 255).round().astype(np.uint8)" in mix, mix
    assert "z_float" in mix


def test_rank_mix_hint_squeezes_a_trailing_one(tmp_path) -> None:
    """(QA39 lipreading #8) a (T, 8, 8, 1) video among (T, 8, 8) ones: squeeze the last axis, no reshape(len, -1)."""
    import numpy as np

    import mmdata

    arrays = {f"k{i}": np.zeros((10 + i, 8, 8), np.uint8) for i in range(5)}
    arrays["z_chlast"] = np.zeros((12, 8, 8, 1), np.uint8)
    rep = mmdata.shard(_video_rows(tmp_path, arrays), tmp_path / "ds", columns={"video": "video"}, progress=False)
    mix = next(w for w in rep["warnings"] if "2 ranks" in w)
    assert "reshape(len(" not in mix and "np.squeeze(np.asarray(s['video']), -1)" in mix, mix


def _gif(path, frames: int) -> None:
    from PIL import Image

    ims = [Image.new("RGB", (16, 12), (40 * i, 255 - 40 * i, 7)) for i in range(frames)]
    ims[0].save(path, save_all=frames > 1, append_images=ims[1:], duration=50, loop=0)


def test_animated_gifs_in_named_image_fields_are_counted(tmp_path) -> None:
    """(QA39 ecommerce #5) the several-frames warning counts a named image field's GIFs, naming the member."""
    import csv

    import mmdata

    raw = tmp_path / "raw"
    raw.mkdir()
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "image", "image2", "label"])
        for i in range(6):
            _gif(raw / f"a{i}.gif", 3 if i == 0 else 1)
            _gif(raw / f"b{i}.gif", 4 if i < 3 else 1)
            w.writerow([f"k{i}", f"a{i}.gif", f"b{i}.gif", "x"])
    rep = mmdata.shard(raw / "m.csv", tmp_path / "ds", columns={"image2": "image2"}, progress=False)
    frames = next(w for w in rep["warnings"] if "several frames" in w)
    assert frames.startswith("4 images (of 12)"), frames
    assert "k0.image2.gif" in frames or "k1.image2.gif" in frames, frames


def test_html_in_captions_is_counted_not_altered(tmp_path) -> None:
    """(QA39 ecommerce #8) captions with &amp; / <br>: a counted warning with examples; the text kept as written."""
    import csv

    import mmdata

    raw = tmp_path / "raw"
    raw.mkdir()
    titles = ["Chef knife 20cm &amp; sheath", "Messer <br> Edelstahl", "plain mug", "AT&T phone", "x &quot;y&quot;"]
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "text", "label"])
        for i, t in enumerate(titles):
            w.writerow([f"k{i}", t, "a"])
    rep = mmdata.shard(raw / "m.csv", tmp_path / "ds", progress=False)
    html = next(w for w in rep["warnings"] if "HTML entities or tags" in w)
    assert html.startswith("3 texts (of 5) hold"), html
    assert "&amp;" in html and "k0" in html
    got = {s.key: s["text"] for s in mmdata.open_dataset(tmp_path / "ds")}
    assert got["k0"] == titles[0] and got["k1"] == titles[1]


def test_mixed_format_named_column_is_warned(tmp_path) -> None:
    """(QA39 ecommerce #2) one manifest column of .gif and .png files became two fields: said at shard time."""
    import csv

    from PIL import Image

    import mmdata

    raw = tmp_path / "raw"
    raw.mkdir()
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "image", "image2", "label"])
        for i in range(4):
            Image.new("RGB", (8, 8), (i, 2, 3)).save(raw / f"a{i}.png")
            name = f"b{i}.{'png' if i % 2 else 'gif'}"
            Image.new("RGB", (8, 8), (i, 9, 3)).save(raw / name)
            w.writerow([f"k{i}", f"a{i}.png", name, "x"])
    rep = mmdata.shard(raw / "m.csv", tmp_path / "ds", columns={"image2": "image2"}, progress=False)
    got = next(w for w in rep["warnings"] if "one per file format" in w)
    assert "column 'image2' became 2 fields" in got and "image2.gif (2)" in got and "image2.png (2)" in got, got


def test_audio_and_frame_lengths_disagree(tmp_path) -> None:
    """(QA39 lipreading #4) a (T, H, W) stack 1.6 s shorter than its audio at the dataset's ~25 fps is named."""
    import csv
    import wave

    import numpy as np

    import mmdata

    raw = tmp_path / "raw"
    raw.mkdir()
    with open(raw / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "audio", "video", "label"])
        for i in range(8):
            t = 20 + 3 * i
            sec = t / 25 + (0.04 if i % 2 else -0.04) + (1.6 if i == 5 else 0.0)
            with wave.open(str(raw / f"k{i}.wav"), "wb") as wf:
                wf.setnchannels(1)
                wf.setsampwidth(2)
                wf.setframerate(8000)
                wf.writeframes(np.zeros(int(sec * 8000), np.int16).tobytes())
            np.save(raw / f"k{i}.npy", np.zeros((t, 16, 16), np.uint8))
            w.writerow([f"k{i}", f"k{i}.wav", f"k{i}.npy", "a"])
    rep = mmdata.shard(raw / "m.csv", tmp_path / "ds", columns={"video": "video"}, progress=False)
    got = next(w for w in rep["warnings"] if "disagree with their audio" in w)
    assert got.startswith("field 'video': 1 of 8 samples'") and "'k5'" in got and "25 frames a second" in got, got


def test_classes_of_pairs_still_fill_every_split() -> None:
    """(QA39 review 2 last #1) when the small classes are most of the data (a re-identification set of pairs, a
    label that is an id), they are spread like the others, as before: moving them all to train emptied val / test."""
    for sizes in ([2] * 150, [1] * 100, [2] * 40 + [30]):
        recs = _recs(sizes)
        notes = assign_splits(recs, SPLIT, seed=0)
        got = Counter(r.split for r in recs)
        assert got["val"] > 0 and got["test"] > 0, (sizes[:3], got, notes)
        assert not any("fewer samples than the 3 splits" in n for n in notes), notes
