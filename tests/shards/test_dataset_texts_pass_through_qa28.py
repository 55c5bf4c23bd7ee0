"""Review of QA28 #4: the caption refusals (UTF-16 without a mark, control characters) are for raw sources a user
shards. Text members read from an existing dataset (``mmdata augment``, ``mmdata shard SHARDS OUT``) are passed
through as they are, counted and warned of, never a failed job; a DOS end-of-file byte (Ctrl-Z) at the end of a
raw caption file is tolerated and kept."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.shards.sources import text_refusal
from mmdata.testing import image_bytes

OLD = {"s0": "red \x1b[31mcat\x1b[0m".encode(), "s1": "كلب يجري".encode("utf-16-le"), "s2": b"a plain caption",
       "s3": "an old DOS caption\r\n\x1a".encode()}


def _tar(path: Path, captions: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tf:
        for i, (key, text) in enumerate(captions.items()):
            for name, data in ((f"{key}.png", image_bytes(i)), (f"{key}.txt", text)):
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), 0
                tf.addfile(info, io.BytesIO(data))
    return path


def _texts(out: Path) -> dict[str, bytes]:
    got = {}
    for t in sorted(out.glob("*.tar")):
        with tarfile.open(t) as tf:
            got |= {m.name: tf.extractfile(m).read() for m in tf if m.name.endswith(".txt")}
    return got


def test_a_dos_end_of_file_byte_is_tolerated() -> None:
    assert text_refusal(b"an old DOS caption\r\n\x1a") is None
    assert text_refusal(b"a\x1a caption") is not None


def test_a_raw_caption_ending_in_ctrl_z_is_sharded_as_it_is(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    for i in range(2):
        (src / f"{i}.png").write_bytes(image_bytes(i))
        (src / f"{i}.txt").write_bytes(b"caption %d\r\n\x1a" % i)
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    assert not rep["skipped"], rep["skipped"]
    assert sorted(_texts(tmp_path / "ds").values()) == [b"caption 0\r\n\x1a", b"caption 1\r\n\x1a"]


def test_resharding_tars_passes_old_captions_through(tmp_path: Path) -> None:
    tars = _tar(tmp_path / "old" / "train-000000.tar", OLD)
    rep = mmdata.shard(str(tars), tmp_path / "new", on_error="raise", progress=False)
    assert not rep["skipped"], rep["skipped"]
    assert _texts(tmp_path / "new") == {f"{k}.txt": v for k, v in OLD.items()}
    said = [w for w in rep["warnings"] if "kept as they are" in w]
    assert len(said) == 1 and "2 text members" in said[0] and "s0.txt" in said[0], rep["warnings"]
    assert "save the file again" not in said[0]
    card = json.loads((tmp_path / "new" / "dataset.json").read_text("utf-8"))
    assert said[0] in card["warnings"]


def test_augment_passes_old_captions_through(tmp_path: Path) -> None:
    tars = _tar(tmp_path / "old" / "train-000000.tar", OLD)
    rep = augment_dataset(str(tars), tmp_path / "aug", {"image": [{"op": "hflip", "p": 1.0}]}, progress=False,
                          on_error="raise")
    assert not rep["skipped"], rep["skipped"]
    texts = _texts(tmp_path / "aug")
    assert sorted(texts.values()) == sorted(OLD.values())
    assert any("kept as they are" in w for w in rep["warnings"]), rep["warnings"]


def test_raw_sources_still_refuse_them(tmp_path: Path) -> None:
    src = tmp_path / "raw"
    src.mkdir()
    for i, (key, text) in enumerate(OLD.items()):
        (src / f"{key}.png").write_bytes(image_bytes(i))
        (src / f"{key}.txt").write_bytes(text)
    rep = mmdata.shard(src, tmp_path / "ds", progress=False)
    assert sorted(e["source"] for e in rep["skipped"]) == ["s0.txt", "s1.txt"]
