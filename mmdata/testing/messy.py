"""A user's messy folder, generated: the data mmdata must survive before anyone trusts it with theirs.

:func:`make_messy_folder` writes what a real user's raw folder looks like — nested folders with odd
names, images at several sizes and modes (RGB JPEG, greyscale and RGBA PNG, upper-case extensions),
speech-like audio at mixed sample rates and channel counts (WAV and FLAC, 16 / 22.05 kHz, mono and
stereo, 0.6-4 s), captions in five languages (some empty, some missing), imbalanced labels and
unlabelled samples — and returns the ground truth, so tests can check every downstream step exactly.

Content is a pure function of the arguments (no clock, no global RNG) and learnable: a sample's class
decides the shape drawn in its image, the pitch of its audio and a word of its caption.

Example:
    >>> import tempfile
    >>> m = make_messy_folder(tempfile.mkdtemp(), n=12, seed=0)
    >>> len(m.truth), sorted({t.label for t in m.truth if t.label is not None}) == [0, 1, 2]
    (12, True)
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CLASS_NAMES = ("circle", "square", "triangle")
#: image (height, width) at realistic sizes, from a small thumbnail to a phone photo
IMAGE_SIZES = ((64, 64), (96, 128), (120, 90), (150, 200), (240, 320), (300, 300), (427, 640))
SAMPLE_RATES = (16000, 22050)
#: class word per language (captions name the class in their language)
_CLASS_WORDS = {
    "en": ("circle", "square", "triangle"),
    "fr": ("cercle", "carré", "triangle"),
    "de": ("Kreis", "Quadrat", "Dreieck"),
    "zh": ("圆形", "正方形", "三角形"),
    "ja": ("円", "四角形", "三角形"),
}
_TEMPLATES = {
    "en": "A photo of a {w} on a {c} background, taken outdoors.",
    "fr": "Une photo d'un {w} sur un fond {c}, prise à l'extérieur.",
    "de": "Ein Foto von einem {w} auf {c} Hintergrund, draußen aufgenommen.",
    "zh": "一张{c}背景上的{w}的照片，在户外拍摄。",
    "ja": "{c}背景に{w}が写っている屋外の写真です。",
}
_COLOURS = {
    "en": ("red", "green", "blue", "grey"),
    "fr": ("rouge", "vert", "bleu", "gris"),
    "de": ("rotem", "grünem", "blauem", "grauem"),
    "zh": ("红色", "绿色", "蓝色", "灰色"),
    "ja": ("赤い", "緑の", "青い", "灰色の"),
}


@dataclass(frozen=True)
class Truth:
    """What one generated sample holds, for exact checks downstream.

    ``stem`` is the file stem (the sample's ``source_key``), ``folder`` its folder relative to the root;
    ``image_mode`` is the PIL mode written (``RGB``, ``L``, ``RGBA``); ``text`` is ``None`` when the
    caption file is missing and ``""`` when it is empty.
    """

    stem: str
    folder: str
    label: int | None
    image_ext: str | None
    image_size: tuple[int, int] | None
    image_mode: str | None
    audio_ext: str | None
    sample_rate: int | None
    channels: int | None
    audio_seconds: float | None
    language: str | None
    text: str | None

    @property
    def modalities(self) -> list[str]:
        """Field names present (``label`` excluded), sorted like ``index.parquet:modalities``."""
        out = [m for m, v in (("image", self.image_ext), ("audio", self.audio_ext), ("text", self.text)) if v is not None]
        return sorted(out)


@dataclass
class MessyFolder:
    """The generated folder and its ground truth (one :class:`Truth` per sample, in generation order)."""

    root: Path
    truth: list[Truth]
    class_names: tuple[str, ...] = CLASS_NAMES
    corrupt: list[str] = field(default_factory=list)

    def by_stem(self) -> dict[str, Truth]:
        return {t.stem: t for t in self.truth}

    def counts(self) -> dict[str, int]:
        """Labels per class name, ``unlabelled``, ``stray`` (outside the classes), and per-modality presence counts."""
        out: dict[str, int] = {n: 0 for n in self.class_names}
        out["unlabelled"] = out["stray"] = 0
        for t in self.truth:
            name = "unlabelled" if t.label is None else (self.class_names[t.label] if t.label < len(self.class_names) else "stray")
            out[name] += 1
        for m in ("image", "audio", "text"):
            out[m] = sum(m in t.modalities for t in self.truth)
        return out


def _image(rng: np.random.Generator, label: int, size: tuple[int, int]) -> np.ndarray:
    """An RGB uint8 "photo": a noisy two-colour gradient with the class's shape at a random place."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(30, 225, size=(2, 3))
    t = (xx / max(w - 1, 1) * rng.uniform(0.2, 1.0) + yy / max(h - 1, 1) * rng.uniform(0.2, 1.0))[..., None] / 2
    img = c0 * (1 - t) + c1 * t + rng.normal(0, 8, size=(h, w, 3))
    r = rng.uniform(0.18, 0.32) * min(h, w)
    cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
    if label == 0:
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    elif label == 1:
        mask = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
    else:
        mask = (yy >= cy - r) & (yy <= cy + r) & (np.abs(xx - cx) <= (yy - (cy - r)) / 2)
    img[mask] = 255 - c0 * 0.5
    return np.clip(img, 0, 255).astype(np.uint8)


def _audio(rng: np.random.Generator, label: int, rate: int, seconds: float, channels: int) -> np.ndarray:
    """Speech-like audio: syllables of a class-dependent pitch with formant-ish harmonics and noise."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    f0 = (140.0, 220.0, 330.0)[label] * rng.uniform(0.9, 1.1)
    syll = 3.0 + rng.uniform(0, 2)
    env = np.clip(np.sin(np.pi * syll * t) ** 2, 0, 1) * np.minimum(1, np.minimum(t, seconds - t) * 20)
    x = sum(a * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) for k, a in ((1, 0.5), (2, 0.25), (3, 0.12)))
    x = 0.5 * env * x + rng.normal(0, 0.01, n)
    if channels == 2:
        x = np.stack([x, 0.8 * x + rng.normal(0, 0.005, n)], 1)
    return x.astype(np.float32)


def _encode_image(arr: np.ndarray, mode: str, fmt: str) -> bytes:
    from PIL import Image

    im = Image.fromarray(arr)
    if mode == "L":
        im = im.convert("L")
    elif mode == "RGBA":
        alpha = np.full(arr.shape[:2], 255, np.uint8)
        alpha[: arr.shape[0] // 6] = 128
        im = Image.fromarray(np.dstack([arr, alpha]), "RGBA")
    buf = io.BytesIO()
    im.save(buf, format="JPEG" if fmt == "jpeg" else "PNG", quality=88)
    return buf.getvalue()


def _encode_audio(x: np.ndarray, rate: int, fmt: str) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt.upper(), subtype="PCM_16")
    return buf.getvalue()


def make_messy_folder(
    root: str | Path,
    n: int = 60,
    *,
    seed: int = 0,
    sizes: tuple[tuple[int, int], ...] = IMAGE_SIZES,
    class_weights: tuple[float, ...] = (0.6, 0.25, 0.15),
    unlabelled: float = 0.03,
    missing_text: float = 0.11,
    empty_text: float = 0.07,
    missing_audio: float = 0.08,
    missing_image: float = 0.04,
    stereo: float = 0.1,
    seconds: tuple[float, float] = (0.6, 4.0),
    class_names_file: str | None = "labels.json",
    stray_label: bool = False,
    corrupt: bool = False,
) -> MessyFolder:
    """Write a messy multimodal folder of ``n`` samples and return its ground truth.

    Layout: ``root/<group>/<sub>/<stem>.<ext>`` with groups such as ``batch A/2023-05`` and stems with
    spaces, dots, accents and CJK characters; images ``.jpg``/``.JPG``/``.jpeg`` (RGB) or ``.png``
    (greyscale or RGBA); audio ``.wav``/``.flac`` at 16 or 22.05 kHz, mono or stereo; captions ``.txt``
    in English, French, German, Chinese or Japanese; labels ``.cls`` (an integer) for labelled samples.

    Args:
        root: folder to create (or an empty one).
        n: number of samples (>= 6 so every class and every odd case appears).
        seed: content seed (same arguments -> same bytes).
        sizes: image (height, width) choices; tests pass small ones to stay fast.
        class_weights: class frequencies, one per class of :data:`CLASS_NAMES` (at most 3: each class has
            its own shape, pitch and caption word; imbalanced by default: 60/25/15 %).
        unlabelled, missing_text, empty_text, missing_audio, missing_image, stereo: fractions of samples.
        seconds: audio duration range.
        class_names_file: write the class names beside the data as this JSON file
            (``{"names": [...]}``); ``None`` writes none.
        stray_label: add one extra sample labelled 7 (a typo outside the declared classes).
        corrupt: add a truncated JPEG and a non-UTF-8 caption (their stems are in ``.corrupt``).

    Returns:
        A :class:`MessyFolder` with the root, one :class:`Truth` per sample, the class names and the
        stems of corrupt files.
    """
    if n < 6:
        raise ValueError(f"make_messy_folder: n must be >= 6, got {n}")
    w = np.asarray(class_weights, float)
    if not 1 <= len(w) <= len(CLASS_NAMES) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"make_messy_folder: class_weights must be 1 to {len(CLASS_NAMES)} non-negative frequencies "
                         f"(one per class of {', '.join(CLASS_NAMES)}) with a positive sum, got {tuple(class_weights)}")
    w = w / w.sum()
    root = Path(root)
    if root.exists() and any(root.iterdir()):  # its truth would describe only what this call wrote
        raise FileExistsError(f"make_messy_folder: {root} is not empty; give a new folder (the truth table "
                              "covers only the files one call writes)")
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 20261201])
    langs = list(_TEMPLATES)
    groups = ("batch A/2023-05", "batch A/2023-06", "Batch_B", "batch A/2023-05/extra")
    truth: list[Truth] = []
    for i in range(n):
        label: int | None = int(rng.choice(len(w), p=w)) if i >= 3 else i  # every class appears
        if i == 5 and unlabelled > 0 or (i >= 6 and rng.random() < unlabelled):
            label = None
        kind = i % 7
        stem = (f"IMG_{1000 + i}", f"photo {i}", f"scan.{i}.v2", f"café-{i}", f"样本_{i}", f"img#{i}", f"{i:04d}")[kind]
        folder = groups[i % len(groups)]
        d = root / folder
        d.mkdir(parents=True, exist_ok=True)
        cls = label if label is not None else int(rng.integers(3))
        # image
        image_ext = image_size = image_mode = None
        if not (rng.random() < missing_image and i >= 6):
            image_size = tuple(sizes[int(rng.integers(len(sizes)))])
            image_mode = ("RGB", "RGB", "RGB", "L", "RGBA")[i % 5]
            image_ext = "png" if image_mode != "RGB" else ("jpg", "JPG", "jpeg")[i % 3]
            arr = _image(rng, cls, image_size)
            (d / f"{stem}.{image_ext}").write_bytes(_encode_image(arr, image_mode, "png" if image_ext == "png" else "jpeg"))
        # audio
        audio_ext = rate = channels = secs = None
        if not (rng.random() < missing_audio and i >= 6):
            rate = SAMPLE_RATES[i % 2]
            channels = 2 if (rng.random() < stereo or i == 4) else 1
            secs = round(float(rng.uniform(*seconds)), 2)
            audio_ext = ("wav", "flac")[(i // 2) % 2]
            (d / f"{stem}.{audio_ext}").write_bytes(_encode_audio(_audio(rng, cls, rate, secs, channels), rate, audio_ext))
        # text
        lang: str | None = langs[i % len(langs)]
        r = rng.random()
        text: str | None
        if r < missing_text and i >= 6:
            text, lang = None, None
        elif r < missing_text + empty_text and i >= 6:
            text = ""
        else:
            colour = _COLOURS[lang][int(rng.integers(4))]
            text = _TEMPLATES[lang].format(w=_CLASS_WORDS[lang][cls], c=colour)
        if text is not None:
            (d / f"{stem}.txt").write_bytes(text.encode("utf-8"))
        if label is not None:
            (d / f"{stem}.cls").write_text(f"{label}\n", encoding="utf-8")
        truth.append(Truth(stem=stem, folder=folder, label=label, image_ext=image_ext, image_size=image_size,
                           image_mode=image_mode, audio_ext=audio_ext, sample_rate=rate, channels=channels,
                           audio_seconds=secs, language=lang, text=text))
    if stray_label:
        stem = "stray-label"
        (root / f"{stem}.png").write_bytes(_encode_image(_image(rng, 0, sizes[0]), "RGB", "png"))
        (root / f"{stem}.cls").write_text("7\n", encoding="utf-8")
        truth.append(Truth(stem=stem, folder="", label=7, image_ext="png", image_size=tuple(sizes[0]), image_mode="RGB",
                           audio_ext=None, sample_rate=None, channels=None, audio_seconds=None, language=None, text=None))
    bad: list[str] = []
    if corrupt:
        jpg = _encode_image(_image(rng, 0, sizes[0]), "RGB", "jpeg")
        (root / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
        (root / "truncated.txt").write_text("a caption whose image is cut short", encoding="utf-8")
        (root / "bad caption.png").write_bytes(_encode_image(_image(rng, 1, sizes[0]), "RGB", "png"))
        (root / "bad caption.txt").write_bytes(b"caf\xe9 latin-1, not UTF-8")
        (root / "bad caption.cls").write_text("1\n", encoding="utf-8")
        bad = ["truncated", "bad caption"]
    if class_names_file:
        (root / class_names_file).write_text(json.dumps({"names": list(CLASS_NAMES)}, ensure_ascii=False) + "\n", encoding="utf-8")
    return MessyFolder(root=root, truth=truth, corrupt=bad)


def truth_table(m: MessyFolder) -> list[dict]:
    """The ground truth as plain dicts (for JSON dumps and DataFrame comparisons)."""
    return [{**asdict(t), "modalities": t.modalities} for t in m.truth]


#: speakers of the generated metadata: accents, CJK, a comma and a quote (CSV quoting), and a blank
_SPEAKERS = ("Zoë", "李雷", "O'Brien, Pat", 'the "anon"', "")


def write_manifest(m: MessyFolder, name: str = "manifest.csv", targets: bool = False) -> dict[str, dict[str, object]]:
    """Write a manifest of a messy folder's samples with metadata columns, beside its files; return the
    metadata each sample's ``.json`` member must hold, by sample key (``folder/stem``).

    Columns: ``key``, ``image`` / ``audio`` (paths relative to the root), ``text`` (the caption inline),
    ``label`` (the class name; blank when unlabelled) and the metadata a user's manifest carries:
    ``speaker`` (accents, CJK, commas, quotes; some blank), ``duration`` (decimal seconds; blank without
    audio), ``rating`` (an integer), ``zip`` (digits with leading zeros: must stay text), ``notes`` (a
    line break, a comma; mostly blank). ``name`` ends in ``.csv``, ``.jsonl`` or ``.parquet``; in JSONL
    and Parquet ``rating`` and ``duration`` are numbers and ``tags`` (a list of strings) joins them.
    ``targets=True`` adds two columns a model can learn (they follow the class, which the media show;
    blank when unlabelled): ``score``, a number (1.5 x class id + 0.1 x (row % 3)), and ``genres``, a label
    set (the class name, plus ``even`` for an even class id; a JSON list in a CSV cell), for
    ``mmdata train --target``.

    Example:
        >>> import tempfile
        >>> m = make_messy_folder(tempfile.mkdtemp(), n=8)
        >>> meta = write_manifest(m)
        >>> sorted(next(iter(meta.values())))
        ['duration', 'notes', 'rating', 'speaker', 'zip']
    """
    import pandas as pd

    fmt = Path(name).suffix.lower()
    if fmt not in (".csv", ".jsonl", ".parquet"):
        raise ValueError(f"write_manifest: name must end in .csv, .jsonl or .parquet, got {name!r}")
    rows: list[dict[str, object]] = []
    expected: dict[str, dict[str, object]] = {}
    for i, t in enumerate(m.truth):
        if t.image_ext is None and t.audio_ext is None and not t.text:
            continue  # nothing for the manifest to list
        key = f"{t.folder}/{t.stem}" if t.folder else t.stem
        speaker = _SPEAKERS[i % len(_SPEAKERS)]
        meta: dict[str, object] = {
            "speaker": speaker or None,
            "duration": t.audio_seconds,
            "rating": i % 5 + 1,
            "zip": f"{(i * 7919) % 100000:05d}",
            "notes": "first line,\nsecond line" if i % 9 == 0 else None,
        }
        if fmt != ".csv":
            meta["tags"] = [m.class_names[t.label]] if t.label is not None and t.label < len(m.class_names) else []
        if targets:
            known = t.label is not None and t.label < len(m.class_names)
            meta["score"] = 1.5 * t.label + 0.1 * (i % 3) if known else None
            genres = [m.class_names[t.label]] + ["even"] * (t.label % 2 == 0) if known else None
            # a list in a CSV cell: JSON text, as a spreadsheet export of MM-IMDb's genres holds it
            meta["genres"] = json.dumps(genres) if fmt == ".csv" and genres is not None else genres
        row: dict[str, object] = {
            "key": key,
            "image": f"{key}.{t.image_ext}" if t.image_ext else None,
            "audio": f"{key}.{t.audio_ext}" if t.audio_ext else None,
            "text": t.text or None,
            "label": m.class_names[t.label] if t.label is not None and t.label < len(m.class_names) else None,
            **meta,
        }
        rows.append(row)
        expected[key] = meta
    path = m.root / name
    if fmt == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif fmt == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        pd.DataFrame(rows).to_parquet(path, index=False)
    return expected


#: the writer's note on a class with fewer samples than the splits (it goes whole to train: QA39 ecommerce #4),
#: which the helpers' messy folders hold on purpose (a one-sample class)
SMALL_CLASS_NOTE = r"note: \d+ class(es)? ha(s|ve) fewer samples than the \d+ splits"


def shard_target_dataset(root: str | Path, n: int = 80, manifest: str = "manifest.csv",
                         meta: tuple[str, ...] = ("score", "genres", "speaker"),
                         sizes: tuple[tuple[int, int], ...] = ((24, 32), (40, 30))) -> Path:
    """Shard a messy folder's manifest with the target columns (:func:`write_manifest` ``targets=True``:
    a numeric ``score``, a label-set ``genres``, a ``speaker``) kept as ``meta``, split 60 / 20 / 20 by
    class: the dataset ``--target`` tests train on. Returns the dataset folder ``root/ds``.

    Example:
        >>> import tempfile
        >>> shard_target_dataset(tempfile.mkdtemp(), n=12).name
        'ds'
    """
    import mmdata

    from mmdata.shards.writer import ShardWarning

    root = Path(root)
    m = make_messy_folder(root / "raw", n=n, sizes=sizes, seconds=(0.3, 0.6))
    write_manifest(m, manifest, targets=True)
    with warnings.catch_warnings():  # the manifest's other metadata columns, left out on purpose: not the caller's
        warnings.filterwarnings("ignore", r"manifest .*, column '[^']+': none of its \d+ values names a file",
                                ShardWarning)
        # the messy folder's one-sample class goes whole to train (QA39 ecommerce #4): there on purpose
        warnings.filterwarnings("ignore", SMALL_CLASS_NOTE, ShardWarning)
        mmdata.shard(m.root / manifest, root / "ds", meta=list(meta), split={"train": 0.6, "val": 0.2, "test": 0.2},
                     progress=False)
    return root / "ds"


def shard_meta_column(root: str | Path, values: list[Any], manifest: str = "m.csv", n: int = 12) -> Path:
    """Shard ``n`` one-image samples ``s0`` .. ``s{n-1}`` (all label ``a``, split ``train``) whose metadata
    ``y`` holds ``values``, cycled, from a manifest ``root/<manifest>``: a CSV makes every cell text (as a
    user's spreadsheet does), a ``.jsonl`` keeps the values' types. The dataset of the ``--target`` column
    tests (numbers written as text, NA cells, stray words). Returns ``root/ds``.

    Example:
        >>> import tempfile
        >>> shard_meta_column(tempfile.mkdtemp(), ["0.5", "?"], n=2).name
        'ds'
    """
    import pandas as pd

    import mmdata
    from mmdata.testing.media import image_bytes

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        (root / f"{i}.png").write_bytes(image_bytes(i))
        rows.append({"key": f"s{i}", "image": f"{i}.png", "label": "a", "split": "train", "y": values[i % len(values)]})
    df = pd.DataFrame(rows)
    if manifest.endswith(".jsonl"):
        df.to_json(root / manifest, orient="records", lines=True)
    else:
        df.to_csv(root / manifest, index=False)
    mmdata.shard(root / manifest, root / "ds", meta=["y"], progress=False)
    return root / "ds"


def shard_folds(root: str | Path, n: int = 40, sizes: tuple[tuple[int, int], ...] = ((24, 32), (40, 30)),
                seconds: tuple[float, float] = (0.3, 0.6)) -> Path:
    """Shard a messy folder of ``n`` samples into four folds as splits (``1`` .. ``4``, stratified by
    class): the dataset of k-fold tests (``--val-split 3 --test-split 4``). Returns ``root/ds``.

    Example:
        >>> import tempfile, mmdata
        >>> sorted(mmdata.open_dataset(shard_folds(tempfile.mkdtemp(), n=16), split="4", decode=False).card["splits"])
        ['1', '2', '3', '4']
    """
    import mmdata

    from mmdata.shards.writer import ShardWarning

    root = Path(root)
    make_messy_folder(root / "raw", n=n, sizes=sizes, seconds=seconds)
    with warnings.catch_warnings():  # the messy folder's unlabelled sample, there on purpose: not the caller's
        warnings.filterwarnings("ignore", r"the source looks like class folders .* samples? ha(s|ve) no label",
                                ShardWarning)
        warnings.filterwarnings("ignore", SMALL_CLASS_NOTE, ShardWarning)
        mmdata.shard(root / "raw", root / "ds", split="1=0.25,2=0.25,3=0.25,4=0.25", progress=False)
    return root / "ds"
