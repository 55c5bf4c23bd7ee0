"""Hugging Face datasets in and out, with real (tiny, in-memory) HF datasets and no network:
``mmdata.shard(hf_dataset)``, ``mmdata.to_hf`` and ``load_dataset("webdataset")`` over mmdata shards."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import mmdata
from mmdata.errors import SourceError
from mmdata.shards import index as idx
from mmdata.testing import audio_bytes, image_bytes, make_class_folders, make_sample_folder, text_for

datasets = pytest.importorskip("datasets")
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Image, Value  # noqa: E402

from mmdata.interop.hf import decode_audio, torchcodec_available, webdataset_features, webdataset_files  # noqa: E402

NAMES = ["cat", "dog", "bird"]
N = 12


def make_hf(n: int = N, offset: int = 0) -> Dataset:
    """A typical HF dataset: Image (PNG and JPEG bytes), Audio, ClassLabel, a caption, scalar columns;
    some captions and audio missing."""
    feats = Features({"image": Image(), "label": ClassLabel(names=NAMES), "caption": Value("string"),
                      "speaker": Value("int32"), "score": Value("float32")})
    idxs = range(offset, offset + n)
    ds = Dataset.from_dict({
        "image": [image_bytes(i, fmt="jpg" if i % 2 else "png") for i in idxs],
        "label": [i % 3 for i in idxs],
        "caption": [None if i % 5 == 4 else text_for(i) for i in idxs],
        "speaker": [i * 7 for i in idxs],
        "score": [i / 3 for i in idxs],
    }, features=feats)
    # Audio storage is {bytes, path}; an Arrow-level cast (encoding through HF would need torchcodec)
    audio = [None if i % 4 == 3 else {"bytes": audio_bytes(i), "path": f"clip{i}.flac"} for i in idxs]
    return ds.add_column("audio", audio).cast_column("audio", Audio())


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _members(ds_dir: Path) -> dict[str, bytes]:
    out = {}
    for tar in sorted(ds_dir.glob("*.tar")):
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                out[m.name] = tf.extractfile(m).read()
    return out


def _undecoded(hf: Dataset) -> Dataset:
    """Image / Audio as stored ({bytes, path}): decoding Audio through HF needs torchcodec (see docs)."""
    return hf.cast_column("image", Image(decode=False)).cast_column("audio", Audio(decode=False))


def _raw(hf: Dataset, col: str) -> list:
    return _undecoded(hf)[col]


def _from_rows(rows: list[dict]) -> Dataset:
    """A Dataset from undecoded rows: built as plain structs, then cast (Arrow-level, no torchcodec)."""
    return Dataset.from_list(rows).cast_column("image", Image()).cast_column("audio", Audio())


# ---- HF -> mmdata --------------------------------------------------------------------------------
def test_shard_hf_stores_bytes_labels_text_and_extras(tmp_path: Path) -> None:
    hf = make_hf()
    rep = mmdata.shard(hf, tmp_path / "ds", maxcount=5, progress=False)
    assert rep["samples"] == N and rep["shards"] == 3 and rep["splits"] == {"train": N}
    m = _members(tmp_path / "ds")
    images, audios = _raw(hf, "image"), _raw(hf, "audio")
    for i in range(N):
        key = f"{i:06d}"
        ext = "jpg" if i % 2 else "png"
        assert m[f"{key}.{ext}"] == images[i]["bytes"]  # stored as HF holds them: no re-encoding
        if audios[i] is None:
            assert f"{key}.flac" not in m  # missing stays missing
        else:
            assert m[f"{key}.flac"] == audios[i]["bytes"]
        assert (m.get(f"{key}.txt") or b"").decode() == (hf["caption"][i] or "")
        assert m[f"{key}.cls"] == str(i % 3).encode()
        assert json.loads(m[f"{key}.json"]) == {"score": pytest.approx(i / 3), "speaker": i * 7}
    card = idx.load_card(tmp_path / "ds")
    assert card["label_names"] == NAMES
    assert card["modalities"]["image"]["codecs"] == ["jpg", "png"]
    assert card["hf"]["columns"] == {"image": "image", "audio": "audio", "label": "label", "text": "caption"}
    assert Features.from_dict(card["hf"]["features"]) == hf.features
    s = next(iter(mmdata.open_dataset(tmp_path / "ds")))
    assert s["image"].shape == (3, 24, 32) and s["label"] == 0 and s.sample_rate == 8000


def test_shard_hf_is_byte_deterministic_in_memory_and_on_disk(tmp_path: Path) -> None:
    hf = make_hf()
    mmdata.shard(hf, tmp_path / "a" / "ds", maxcount=4, split="train=0.5,val=0.5", progress=False)
    mmdata.shard(hf, tmp_path / "b" / "ds", maxcount=4, split="train=0.5,val=0.5", progress=False, workers=2)
    hf.save_to_disk(str(tmp_path / "saved"))
    mmdata.shard(datasets.load_from_disk(str(tmp_path / "saved")), tmp_path / "c" / "ds", maxcount=4,
                 split="train=0.5,val=0.5", progress=False)
    mmdata.shard(tmp_path / "saved", tmp_path / "d" / "ds", maxcount=4, split="train=0.5,val=0.5", progress=False)
    a = _tree(tmp_path / "a" / "ds")
    assert a == _tree(tmp_path / "b" / "ds") == _tree(tmp_path / "c" / "ds") == _tree(tmp_path / "d" / "ds")
    card = idx.load_card(tmp_path / "a" / "ds")
    assert card["splits"]["train"]["samples"] == card["splits"]["val"]["samples"] == N // 2
    per_split = {sp: sorted(r["label"] for r in idx.load_index(tmp_path / "a" / "ds").to_pylist() if r["split"] == sp)
                 for sp in ("train", "val")}
    assert per_split["train"] == per_split["val"] == [0, 0, 1, 1, 2, 2]  # stratified by ClassLabel


def test_shard_hf_datasetdict_gives_one_split_each(tmp_path: Path) -> None:
    dd = DatasetDict({"train": make_hf(6), "validation": make_hf(3, offset=6), "test": make_hf(3, offset=9)})
    rep = mmdata.shard(dd, tmp_path / "ds", progress=False)
    assert rep["splits"] == {"train": 6, "val": 3, "test": 3}  # "validation" -> "val", what mmdata train reads
    keys = [s.key for s in mmdata.open_dataset(tmp_path / "ds", split="val", decode=False)]
    assert keys == ["val_000000", "val_000001", "val_000002"]
    assert idx.load_card(tmp_path / "ds")["hf"]["splits"] == {"train": "train", "validation": "val", "test": "test"}
    with pytest.raises(SourceError, match="DatasetDict brings its own splits"):
        mmdata.shard(dd, tmp_path / "x", split="train=0.5,val=0.5", progress=False)


def test_shard_hf_key_and_split_columns(tmp_path: Path) -> None:
    hf = make_hf(6).add_column("id", [f"utt {i}.a" for i in range(6)])
    hf = hf.add_column("split", ["train", "train", "train", "test", "test", "train"])
    mmdata.shard(hf, tmp_path / "ds", columns={"key": "id"}, progress=False)
    rows = idx.load_index(tmp_path / "ds").to_pylist()
    assert [r["source_key"] for r in rows if r["split"] == "test"] == ["utt 3.a", "utt 4.a"]
    assert all("." not in r["key"] and " " not in r["key"] for r in rows)
    # a lone string column that is not named like text is metadata (.json), not the text modality
    meta = make_hf(4).remove_columns(["caption"]).add_column("speaker_name", ["ann", "bo", "cy", "di"])
    mmdata.shard(meta, tmp_path / "meta", progress=False)
    assert "text" not in idx.load_card(tmp_path / "meta")["modalities"]
    assert json.loads(_members(tmp_path / "meta")["000002.json"])["speaker_name"] == "cy"


def test_shard_hf_encodes_arrays_losslessly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 8, 10, 3), dtype=np.uint8)
    waves = rng.integers(-3000, 3000, size=(3, 400), dtype=np.int16)
    feats = Features({"pixels": datasets.Array3D((8, 10, 3), "uint8"),
                      "wave": {"array": datasets.List(Value("int16")), "sampling_rate": Value("int32")},
                      "fwave": {"array": datasets.List(Value("float32")), "sampling_rate": Value("int32")},
                      "emb": datasets.List(Value("float32"))})
    hf = Dataset.from_dict({"pixels": list(pixels), "wave": [{"array": w, "sampling_rate": 16000} for w in waves],
                            "fwave": [{"array": w / 7.0, "sampling_rate": 8000} for w in waves],
                            "emb": [[0.5, 1.5], [2.5], [3.25, 4.0, 5.0]]}, features=feats)
    with pytest.raises(SourceError, match=r"\['fwave'\] have features mmdata cannot store.*remove_columns"):
        mmdata.shard(hf, tmp_path / "x", columns={"image": "pixels", "audio": "wave"}, progress=False)
    mmdata.shard(hf.remove_columns(["fwave"]), tmp_path / "ds", columns={"image": "pixels", "audio": "wave"}, progress=False)
    m = _members(tmp_path / "ds")
    from PIL import Image as PILImage

    for i in range(3):
        assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(m[f"{i:06d}.png"]))), pixels[i])
        x, sr = sf.read(io.BytesIO(m[f"{i:06d}.flac"]), dtype="int16")
        assert sr == 16000 and np.array_equal(x, waves[i])
    assert np.load(io.BytesIO(m["000002.emb.npy"])).tolist() == [3.25, 4.0, 5.0]
    # float audio becomes 32-bit float WAV (FLAC is integer-only)
    mmdata.shard(hf.remove_columns(["wave"]), tmp_path / "f", columns={"image": "pixels", "audio": "fwave"}, progress=False)
    x, sr = sf.read(io.BytesIO(_members(tmp_path / "f")["000001.wav"]), dtype="float32")
    assert sr == 8000 and np.array_equal(x, (waves[1] / 7.0).astype(np.float32))


def test_shard_hf_bad_input_is_named_and_counted(tmp_path: Path) -> None:
    hf = make_hf(6)
    bad = _undecoded(hf).to_list()
    bad[3]["image"] = {"bytes": b"\x89PNG\r\n\x1a\nnot really", "path": None}
    rep = mmdata.shard(_from_rows(bad), tmp_path / "ds", progress=False)
    # the writer checks media: the bad image is dropped and counted, the sample keeps its text and label
    assert rep["samples"] == 6 and rep["skipped_counts"]["members"] == 1
    assert rep["skipped"] == [{"source": "000003.png", "sample": "000003", "what": "member",
                               "reason": "PNG without a valid IHDR header"}]
    kept = _members(tmp_path / "ds")
    assert "000003.png" not in kept and {"000003.txt", "000003.cls"} <= set(kept)
    gif = io.BytesIO()
    from PIL import Image as PILImage

    PILImage.new("RGB", (4, 3), (10, 20, 30)).save(gif, format="GIF")
    rows = _undecoded(hf).to_list()
    rows[0]["image"] = {"bytes": gif.getvalue(), "path": None}
    rows[1]["image"] = {"bytes": None, "path": str(tmp_path / "gone.png")}
    rows[2]["audio"] = {"bytes": b"\x00\x01 not audio at all", "path": None}
    odd = _from_rows(rows)
    rep = mmdata.shard(odd, tmp_path / "odd", progress=False)
    reasons = {s["source"]: s["reason"] for s in rep["skipped"]}
    assert set(reasons) == {"hf dataset[1]", "hf dataset[2]"}
    assert "gone.png" in reasons["hf dataset[1]"] and "not FLAC, WAV, OGG or MP3" in reasons["hf dataset[2]"]
    assert "000000.gif" in _members(tmp_path / "odd")  # GIF kept as it is (read as its first frame)
    with pytest.raises(SourceError, match=r"hf dataset\[1\]\.image: .*gone.png"):
        mmdata.shard(odd, tmp_path / "raise", on_error="raise", progress=False)
    two = hf.add_column("thumb", _raw(hf, "image")).cast_column("thumb", Image())
    with pytest.raises(SourceError, match=r"several candidate image columns \['image', 'thumb'\]; choose one"):
        mmdata.shard(two, tmp_path / "two", progress=False)
    with pytest.raises(SourceError, match=r"columns \['thumb'\]: mmdata stores one image"):
        mmdata.shard(two, tmp_path / "two", columns={"image": "image"}, progress=False)
    with pytest.raises(SourceError, match=r"columns: unknown field 'depth'"):
        mmdata.shard(hf, tmp_path / "u", columns={"depth": "image"}, progress=False)
    with pytest.raises(SourceError, match=r"columns: text='speaker' has feature .*int32.*must be string"):
        mmdata.shard(hf, tmp_path / "t", columns={"text": "speaker"}, progress=False)


def test_shard_hf_takes_the_writer_options(tmp_path: Path) -> None:
    # every option of mmdata.shard reaches the writer for a Hugging Face source too (recorded in the card)
    mmdata.shard(make_hf(4), tmp_path / "d", check="decode", max_file_size=1 << 20, progress=False)
    opts = json.loads((tmp_path / "d" / "dataset.json").read_text())["options"]
    assert opts["check"] == "decode" and opts["max_file_size"] == 1 << 20
    with pytest.raises(SourceError, match="check must be one of"):
        mmdata.shard(make_hf(4), tmp_path / "e", check="full", progress=False)


def test_cli_shards_a_saved_hf_dataset(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    make_hf().save_to_disk(str(tmp_path / "saved"))
    res = CliRunner().invoke(app, ["shard", str(tmp_path / "saved"), str(tmp_path / "ds"), "--split",
                                   "train=0.5,val=0.5", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["splits"] == {"train": 6, "val": 6}


# ---- mmdata -> HF --------------------------------------------------------------------------------
def test_to_hf_round_trip_restores_columns_and_features(tmp_path: Path) -> None:
    hf = make_hf()
    mmdata.shard(hf, tmp_path / "ds", maxcount=5, progress=False)
    back = mmdata.to_hf(tmp_path / "ds", "train", cache_dir=tmp_path / "cache")
    assert isinstance(back, Dataset) and back.num_rows == N
    assert list(back.features) == ["key", *hf.features]
    assert back.features["label"] == ClassLabel(names=NAMES)
    assert back.features["audio"].decode == torchcodec_available()
    for col in ("label", "caption", "speaker", "score"):
        assert back[col] == hf[col], col
    assert _raw(back, "image") == [{"bytes": r["bytes"], "path": f"{i:06d}.{'jpg' if i % 2 else 'png'}"}
                                   for i, r in enumerate(_raw(hf, "image"))]
    assert [a and a["bytes"] for a in _raw(back, "audio")] == [a and a["bytes"] for a in _raw(hf, "audio")]
    assert back[1]["image"].size == (32, 24)  # PIL, decoded by HF
    wave = decode_audio(back.cast_column("audio", Audio(decode=False))[0]["audio"])
    assert wave["sampling_rate"] == 8000 and wave["array"].shape == (1, 2000)
    assert np.allclose(wave["array"][0], sf.read(io.BytesIO(audio_bytes(0)), dtype="float32")[0])
    it = mmdata.to_hf(tmp_path / "ds", "train", iterable=True, num_shards=2, cache_dir=tmp_path / "cache")
    assert isinstance(it, datasets.IterableDataset) and it.n_shards == 2
    assert [r["key"] for r in it] == back["key"]


def test_to_hf_from_folder_shards(tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=6), tmp_path / "ds", progress=False)
    ds = mmdata.to_hf(tmp_path / "ds", cache_dir=tmp_path / "cache")
    assert dict(ds.features) == {"key": Value("string"), "source_key": Value("string"), "image": Image(),
                                 "audio": Audio(decode=torchcodec_available()),
                                 "text": Value("string"), "label": Value("int64")}
    assert ds["key"] == [f"{i:06d}" for i in range(6)]
    assert ds[3]["audio"] is None and ds[4]["text"] is None and ds[0]["text"] == text_for(0)
    mmdata.shard(make_class_folders(tmp_path / "cls", per_class=2), tmp_path / "cds", progress=False)
    cds = mmdata.to_hf(tmp_path / "cds", cache_dir=tmp_path / "cache")
    assert cds.features["label"] == ClassLabel(names=["bird", "cat", "dog"])
    assert sorted(cds.features["label"].int2str(cds["label"])) == ["bird"] * 2 + ["cat"] * 2 + ["dog"] * 2
    with pytest.raises(mmdata.ShardError, match="no split 'val'"):
        mmdata.to_hf(tmp_path / "ds", "val", cache_dir=tmp_path / "cache")
    with pytest.raises(mmdata.ShardError, match="not an mmdata dataset folder"):
        mmdata.to_hf(tmp_path / "raw", cache_dir=tmp_path / "cache")


def test_to_hf_caches_by_fingerprint(tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=4), tmp_path / "ds", progress=False)
    mmdata.to_hf(tmp_path / "ds", cache_dir=tmp_path / "cache")
    (f,) = (tmp_path / "cache").glob("*.arrow")
    before = f.stat().st_mtime_ns
    mmdata.to_hf(tmp_path / "ds", cache_dir=tmp_path / "cache")
    assert f.stat().st_mtime_ns == before  # reused
    url = (tmp_path / "ds").resolve().as_uri()  # file:// as open_dataset, loader, inspect take it
    assert mmdata.to_hf(url, cache_dir=tmp_path / "cache")["key"] == [f"{i:06d}" for i in range(4)]
    assert f.stat().st_mtime_ns == before  # the same dataset: the same cached file
    mmdata.shard(make_sample_folder(tmp_path / "raw2", n=5), tmp_path / "ds", progress=False)  # new content
    assert mmdata.to_hf(tmp_path / "ds", cache_dir=tmp_path / "cache").num_rows == 5
    assert len(list((tmp_path / "cache").glob("*.arrow"))) == 2


# ---- load_dataset("webdataset") reads mmdata shards ---------------------------------------------
def test_load_dataset_webdataset_with_explicit_features(tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=10), tmp_path / "ds", maxcount=4, split="train=0.6,val=0.4",
                 progress=False)
    ref = {s.key: s.fields for s in mmdata.open_dataset(tmp_path / "ds", split="train", decode=False)}
    files = webdataset_files(tmp_path / "ds")
    # the features documented in docs/interop.md, written out by hand
    feats = Features({"__key__": Value("string"), "__url__": Value("string"), "png": Image(),
                      "flac": Value("binary"), "txt": Value("string"), "cls": Value("int64")})
    assert webdataset_features(tmp_path / "ds", decode_audio=False) == feats
    hf = datasets.load_dataset("webdataset", data_files=files, split="train", features=feats,
                               cache_dir=str(tmp_path / "hfcache"))
    assert hf["__key__"] == list(ref)
    for row in hf.cast_column("png", Image(decode=False)):
        fields = ref[row["__key__"]]
        assert row["png"]["bytes"] == fields["png"]
        assert row["flac"] == fields.get("flac")  # None where the sample has no audio
        assert row["txt"] == (fields["txt"].decode() if "txt" in fields else None)
        assert row["cls"] == int(fields["cls"])
    assert hf.cast_column("flac", Audio(decode=False)).features["flac"] == Audio(decode=False)
    stream = datasets.load_dataset("webdataset", data_files=files, split="val", features=feats, streaming=True)
    val = [s.key for s in mmdata.open_dataset(tmp_path / "ds", split="val", decode=False)]
    assert [r["__key__"] for r in stream] == val


def test_load_dataset_webdataset_of_hf_sharded_dataset(tmp_path: Path) -> None:
    hf = make_hf()
    mmdata.shard(hf, tmp_path / "ds", maxcount=5, progress=False)
    feats = webdataset_features(tmp_path / "ds", decode_audio=False)
    assert feats["cls"] == ClassLabel(names=NAMES) and feats["json"] == {"score": Value("float32"), "speaker": Value("int32")}
    back = datasets.load_dataset("webdataset", data_files=webdataset_files(tmp_path / "ds"), split="train",
                                 features=feats, cache_dir=str(tmp_path / "hfcache"))
    assert back["cls"] == hf["label"] and [j["speaker"] for j in back["json"]] == hf["speaker"]
    assert back["jpg"][0] is None and back["png"][1] is None  # one column per codec; None where the other is used


def test_missing_datasets_names_the_extra(tmp_path: Path) -> None:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=2), tmp_path / "ds", progress=False)
    code = ("import sys; sys.modules['datasets'] = None\nimport mmdata\n"
            f"try:\n    mmdata.to_hf({str(tmp_path / 'ds')!r})\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pip install -e '.[hf]' in a clone of mmdata, or pip install \"<wheel>[hf]\"" in out.stdout, out.stdout + out.stderr


def test_to_hf_unlabelled_rows_are_minus_one(tmp_path: Path) -> None:
    """Interop QA 2026-12-02: an unlabelled sample came back as None, so with_format("torch") made the label
    column float with NaN; HF's convention (and ClassLabel's) is -1."""
    import torch

    feats = Features({"image": Image(), "label": ClassLabel(names=["a", "b"])})
    hf = Dataset.from_dict({"image": [image_bytes(i) for i in range(4)], "label": [0, -1, 1, 1]}, features=feats)
    mmdata.shard(hf, tmp_path / "ds", progress=False)
    back = mmdata.to_hf(tmp_path / "ds", "train", cache_dir=tmp_path / "cache")
    assert sorted(back["label"], key=lambda v: (v is None, v)) == sorted([0, -1, 1, 1])
    labels = back.with_format("torch")[:]["label"]
    assert labels.dtype == torch.int64 and sorted(labels.tolist()) == [-1, 0, 1, 1]
    folder = make_sample_folder(tmp_path / "raw", n=6, missing=False)  # int labels, no names: int64 column
    for p in sorted(folder.glob("*.cls"))[:2]:
        p.unlink()
    mmdata.shard(folder, tmp_path / "ds2", progress=False)
    assert sorted(mmdata.to_hf(tmp_path / "ds2", "train", cache_dir=tmp_path / "cache")["label"]).count(-1) == 2


def test_gif_bytes_from_hf_are_kept_as_gif(tmp_path: Path) -> None:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.new("P", (6, 4), 3).save(buf, "GIF")
    hf = Dataset.from_dict({"image": [{"bytes": buf.getvalue(), "path": None}], "label": [0]},
                           features=Features({"image": Image(), "label": ClassLabel(names=["a"])}))
    mmdata.shard(hf, tmp_path / "ds", progress=False)
    assert list(_members(tmp_path / "ds")) == ["000000.cls", "000000.gif"]
    (s,) = list(mmdata.open_dataset(tmp_path / "ds"))
    assert tuple(s["image"].shape)[1:] == (4, 6)


def test_aiff_bytes_from_hf_are_kept_as_aiff(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    wave = (np.sin(np.arange(800) / 5) * 0.5).astype(np.float32)
    sf.write(buf, wave, 8000, format="AIFF", subtype="PCM_16")
    hf = Dataset.from_dict({"audio": [{"bytes": buf.getvalue(), "path": None}], "label": [0]},
                           features=Features({"audio": {"bytes": Value("binary"), "path": Value("string")},
                                              "label": ClassLabel(names=["a"])}))
    mmdata.shard(hf.cast_column("audio", Audio(decode=False)), tmp_path / "ds", progress=False)
    assert sorted(_members(tmp_path / "ds")) == ["000000.aiff", "000000.cls"]
    (s,) = list(mmdata.open_dataset(tmp_path / "ds"))
    assert s.sample_rate == 8000 and np.allclose(s["audio"].numpy()[0], sf.read(io.BytesIO(buf.getvalue()),
                                                                                 dtype="float32")[0])
