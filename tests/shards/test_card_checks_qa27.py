"""What the shard job checks and the card records (QA27, F2):

* B4: byte-identical files under two names landed in train and test without a word: the job now warns and
  the card's ``duplicates`` counts the sets of one image / audio content found in several splits;
* A4: an image and its caption whose names differ only in case (``IMG_0.JPG`` + ``img_0.txt``) became two
  samples in two splits: keys that differ only in case now go to one split, and the warning says how many
  images and captions were not paired;
* B11: the card recorded only ``mmdata_version`` (unchanged across commits): it now records the code that
  wrote the data (``code``: digest, git revision) and stays byte-identical when the job is rerun;
* B3: EXIF GPS / camera serial / artist and audio tags were published with the members without a word:
  the card's ``metadata`` counts them, with examples, and the job warns.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.codecs import jpeg_orientation
from mmdata.shards import index as idx
from mmdata.shards.mediainfo import identifying_metadata
from mmdata.shards.writer import code_card, code_identity


def _jpeg(colour: tuple[int, int, int], exif: Image.Exif | None = None) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 8), colour).save(buf, format="JPEG", **({"exif": exif} if exif is not None else {}))
    return buf.getvalue()


def _index(out: Path) -> list[dict]:
    return pq.read_table(out / "index.parquet").select(["source_key", "split"]).to_pylist()


# ---- B4: the same content under two names, in two splits -------------------------------------------------
def test_identical_files_in_train_and_test_are_warned_and_counted_in_the_card(tmp_path: Path) -> None:
    src = tmp_path / "dup"
    for cls, colour in (("cat", (10, 200, 30)), ("dog", (200, 10, 30))):
        (src / cls).mkdir(parents=True)
        data = _jpeg(colour)
        for i in range(6):
            (src / cls / f"{cls[0]}{i}.jpg").write_bytes(data)  # six copies of one photo per class
    rep = mmdata.shard(src, tmp_path / "ds", split={"train": 0.5, "test": 0.5}, seed=0, progress=False)
    card = idx.load_card(tmp_path / "ds")
    dup = card["duplicates"]
    assert dup["across_splits"] == 2 and dup["samples"] == 12
    ex = dup["examples"][0]
    assert {split for _, split in ex} == {"train", "test"} and len({key.split("/")[0] for key, _ in ex}) == 1
    said = [w for w in rep["warnings"] if "same image or audio bytes" in w]
    assert len(said) == 1 and "12 samples in 2 sets" in said[0] and f"{ex[0][0]!r} ({ex[0][1]})" in said[0]


def test_distinct_files_and_shared_captions_are_not_duplicates(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for cls in ("cat", "dog"):
        (src / cls).mkdir(parents=True)
        for i in range(4):
            (src / cls / f"{i}.jpg").write_bytes(_jpeg((i * 40, 90 if cls == "cat" else 10, 0)))
            (src / cls / f"{i}.txt").write_text("a photo", encoding="utf-8")  # one caption for all: not a duplicate
    rep = mmdata.shard(src, tmp_path / "ds", split={"train": 0.5, "test": 0.5}, progress=False)
    assert idx.load_card(tmp_path / "ds")["duplicates"] == {"across_splits": 0, "samples": 0, "examples": []}
    assert not [w for w in rep["warnings"] if "same image or audio bytes" in w]


# ---- A4: names that differ only in case -----------------------------------------------------------------
def test_names_differing_only_in_case_go_to_one_split_and_the_unpaired_are_counted(tmp_path: Path) -> None:
    src = tmp_path / "case"
    for cls in ("cat", "dog"):
        (src / cls).mkdir(parents=True)
        for i in range(6):
            (src / cls / f"IMG_{i}.JPG").write_bytes(_jpeg((i * 30, 40 if cls == "cat" else 90, 0)))
            (src / cls / f"img_{i}.txt").write_text(f"a {cls} {i}", encoding="utf-8")
    rep = mmdata.shard(src, tmp_path / "ds", split={"train": 0.5, "test": 0.5}, seed=0, progress=False)
    splits: dict[str, set[str]] = {}
    for row in _index(tmp_path / "ds"):
        splits.setdefault(row["source_key"].casefold(), set()).add(row["split"])
    assert len(splits) == 12 and all(len(s) == 1 for s in splits.values())
    assert {next(iter(s)) for s in splits.values()} == {"train", "test"}
    said = [w for w in rep["warnings"] if "differ only in case" in w and "one split together" in w]
    assert len(said) == 1
    assert "24 samples in 12 sets" in said[0] and "12 images (or audio files) and 12 captions" in said[0]
    assert "not paired" in said[0]


# ---- B11: the code that wrote the data --------------------------------------------------------------------
def test_the_card_records_the_code_and_a_rerun_is_byte_identical(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for cls in ("a", "b"):
        (src / cls).mkdir(parents=True)
        for i in range(3):
            (src / cls / f"{i}.jpg").write_bytes(_jpeg((i * 50, 7 if cls == "a" else 70, 0)))
    for out in ("one", "two"):
        mmdata.shard(src, tmp_path / out, split={"train": 0.5, "test": 0.5}, name="ds", progress=False)
    card = idx.load_card(tmp_path / "one")
    assert card["code"]["digest"] == code_identity() and card["code"]["mmdata"] == mmdata.__version__
    rev = card["code"]["git_revision"]
    assert rev is None or len(rev) == 40
    assert card["code"] == code_card()
    assert (tmp_path / "one" / "dataset.json").read_bytes() == (tmp_path / "two" / "dataset.json").read_bytes()


# ---- B3: identifying metadata ------------------------------------------------------------------------------
def _exif(gps: bool = False, serial: bool = False, artist: bool = False, orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if artist:
        exif[0x013B] = "Jane Doe"
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    if serial:
        exif.get_ifd(0x8769)[0xA431] = "SN-0042"
    return exif


def _tagged_flac(path: Path, tags: bool) -> None:
    with sf.SoundFile(path, "w", samplerate=8000, channels=1, format="FLAC") as f:
        if tags:
            f.artist = "Jane Doe"
            f.title = "kitchen, 5 May"
        f.write(np.zeros(800, dtype="int16"))


def test_gps_serial_artist_and_audio_tags_are_counted_in_the_card(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir(parents=True)
    (src / "a" / "gps.jpg").write_bytes(_jpeg((1, 2, 3), _exif(gps=True, orientation=6)))
    (src / "a" / "serial.jpg").write_bytes(_jpeg((4, 5, 6), _exif(serial=True, artist=True)))
    (src / "a" / "plain.jpg").write_bytes(_jpeg((7, 8, 9), _exif(orientation=3)))  # orientation only: nothing
    _tagged_flac(src / "b" / "tagged.flac", tags=True)
    _tagged_flac(src / "b" / "clean.flac", tags=False)
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    meta = idx.load_card(tmp_path / "ds")["metadata"]
    assert {k: meta[k] for k in ("gps", "camera_serial", "artist", "audio_tags")} == \
        {"gps": 1, "camera_serial": 1, "artist": 1, "audio_tags": 1}
    assert meta["examples"]["gps"][0].startswith("a_gps") and meta["examples"]["audio_tags"][0].endswith(".flac")
    said = [w for w in rep["warnings"] if "identifying metadata" in w]
    assert len(said) == 1 and "GPS position" in said[0] and "tags" in said[0]
    # members are stored as read: the orientation the reader applies is still there
    with tarfile.open(tmp_path / "ds" / "train-000000.tar") as tar:
        stored = {m.name: tar.extractfile(m).read() for m in tar if m.name.endswith(".jpg")}
    assert [jpeg_orientation(d) for n, d in sorted(stored.items()) if n.startswith("a_gps")] == [6]


def test_a_dataset_without_identifying_metadata_says_none(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.jpg").write_bytes(_jpeg((1, 2, 3)))
    _tagged_flac(src / "a" / "y.flac", tags=False)
    sf.write(src / "a" / "z.wav", np.zeros(80, dtype="int16"), 8000)
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    meta = idx.load_card(tmp_path / "ds")["metadata"]
    assert meta == {"gps": 0, "camera_serial": 0, "artist": 0, "audio_tags": 0, "examples": {}}
    assert not [w for w in rep["warnings"] if "identifying metadata" in w]


def test_identifying_metadata_reads_png_wav_and_mp3_style_tags(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG", exif=_exif(gps=True).tobytes())  # an eXIf chunk
    assert identifying_metadata(buf.getvalue()) == {"gps"}
    with sf.SoundFile(tmp_path / "t.wav", "w", samplerate=8000, channels=1, format="WAV") as f:
        f.comment = "recorded at home"
        f.write(np.zeros(80, dtype="int16"))
    assert identifying_metadata((tmp_path / "t.wav").read_bytes()) == {"audio_tags"}
    frame = b"\xff\xfb\x90\x00" + bytes(413)
    assert identifying_metadata(frame + b"TAG" + b"Song".ljust(125, b"\x00")) == {"audio_tags"}
    id3 = b"ID3\x03\x00\x00\x00\x00\x00\x15" + b"TIT2\x00\x00\x00\x0b\x00\x00\x00kitchen 5/5"
    assert identifying_metadata(id3 + frame) == {"audio_tags"}
    only_encoder = b"ID3\x03\x00\x00\x00\x00\x00\x14" + b"TSSE\x00\x00\x00\x0a\x00\x00\x00Lavf58.76"
    assert identifying_metadata(only_encoder + frame) == set()
    assert identifying_metadata(b"ID of a caption") == set()
