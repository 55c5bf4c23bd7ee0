"""QA37 review of the sources / arrays fixes, on real files (JPEG, PNG, WAV, NumPy, CSV.gz, JSON manifests).

#1 timestamped stems (``<stamp>.cam1.jpg`` beside ``<stamp>.npy``) keep their named-field warning (the
named-frame change had silenced it); #2 one named image beside a non-image sample is no "clip" (the sidecar advice
stays; grouped all the same); #3 ``add-modality --replace`` merges the field's license and attribution key by
key; #4 the multi-axis PaddingWarning on EEG mixes (channel counts that vary, a transposed file beside one of
another channel count); #7 the repeated-row hint of a compressed manifest decompresses first; #8 the jq hint of a
per-episode transcript keeps fields whose names are no identifier and flattens a list of episodes in one command.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import mmdata
from mmdata import types
from mmdata.errors import SourceError
from mmdata.shards.sources import discover
from mmdata.testing import make_sample_folder
from mmdata.types import Sample, collate


def _img(p: Path, v: int = 0) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), v % 256, np.uint8)).save(p)


def _found(root: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return discover(root)


@pytest.mark.parametrize("stem", ["frame_17012345{:02d}", "17012345{:02d}"])
def test_timestamped_camera_images_keep_their_named_field_warning(tmp_path: Path, stem: str) -> None:
    for i in range(12):
        s = stem.format(i)
        np.save(tmp_path / f"{s}.npy", np.zeros((4, 3), np.float32))
        for c in (1, 2):
            _img(tmp_path / f"{s}.cam{c}.jpg", c)
    found = _found(tmp_path)
    said = [w for w in found.warnings if "named field of another sample" in w]
    assert len(said) == 1 and said[0].startswith("24 samples look like"), found.warnings
    assert not any("frames of a clip" in w for w in found.warnings), found.warnings
    # no clip, but each timestamp's camera views are kept in its split (grouped by stem, QA40 multiview #1)
    assert all(r.group == r.source_key.split(".")[0] for r in found.records)


@pytest.mark.parametrize("case", ["page", "view", "v2"])
def test_one_named_image_beside_its_sample_gets_the_sidecar_advice(tmp_path: Path, case: str) -> None:
    for i in range(12):
        if case == "page":  # a document dataset: s0.txt (OCR) + s0.page1.png
            (tmp_path / f"s{i}.txt").write_text("ocr")
            _img(tmp_path / f"s{i}.page1.png", i)
        elif case == "view":  # c0.wav + c0.view1.jpg
            sf.write(tmp_path / f"c{i}.wav", np.zeros(800, np.float32), 8000)
            _img(tmp_path / f"c{i}.view1.jpg", i)
        else:  # captioned photos, a few with a retouched p0.v2.jpg
            _img(tmp_path / f"p{i}.jpg", i)
            (tmp_path / f"p{i}.txt").write_text("a cat")
            if i < 3:
                _img(tmp_path / f"p{i}.v2.jpg", 50 + i)
    found = _found(tmp_path)
    assert not any("frames of a clip" in w for w in found.warnings), found.warnings
    side = [w for w in found.warnings if "named field of another sample" in w]
    assert len(side) == 1, found.warnings
    ext = {"page": "png", "view": "jpg", "v2": "jpg"}[case]
    assert f".{ext}' if that sample has no image file" in side[0], side[0]
    # still kept in its sample's split
    by_key = {r.source_key: r for r in found.records}
    odd = [k for k in by_key if k.count(".") == 1]
    assert odd and all(by_key[k].group == by_key[k].group.split(".")[0] == k.split(".")[0] for k in odd)


def test_clip_of_two_named_frames_still_said_a_clip(tmp_path: Path) -> None:
    # some bases with two frames, some with one: a clip dataset; the count of files agrees in number
    for i in range(6):
        (tmp_path / f"A{i}.txt").write_text("HELLO")
        for f in range(1 + (i > 0)):
            _img(tmp_path / f"A{i}.frame{f}.jpg", f)
    found = _found(tmp_path)
    clip = [w for w in found.warnings if "frames of a clip" in w]
    assert len(clip) == 1 and "2 files named" in clip[0] and "1 files" not in clip[0], found.warnings
    assert not any("named field of another sample" in w for w in found.warnings), found.warnings


def _added_ds(tmp_path: Path) -> tuple[Path, Path]:
    raw = make_sample_folder(tmp_path / "raw", n=6)
    mmdata.shard(raw, tmp_path / "ds", layout="columns", progress=False)
    emb = tmp_path / "emb"
    emb.mkdir()
    for r in _found(raw).records:
        np.save(emb / f"{r.source_key}.emb.npy", np.ones((3, 4), np.float32))
    return tmp_path / "ds", emb


def _credit(ds: Path) -> dict:
    mod = json.loads((ds / "dataset.json").read_text())["modalities"]["emb"]
    return {k: mod[k] for k in ("license", "attribution", "license_from") if k in mod}


def test_replace_merges_license_and_attribution_key_by_key(tmp_path: Path) -> None:
    ds, emb = _added_ds(tmp_path)
    mmdata.add_modality(ds, "emb", emb, license="CC-BY-NC-4.0", attribution="Lab X")
    rep = mmdata.add_modality(ds, "emb", emb, replace=True, attribution="Lab Y")
    assert _credit(ds) == {"license": "CC-BY-NC-4.0", "attribution": "Lab Y"}  # the NC license is kept
    assert rep["license"] == "CC-BY-NC-4.0"
    mmdata.add_modality(ds, "emb", emb, replace=True, license="CC0-1.0")
    assert _credit(ds) == {"license": "CC0-1.0", "attribution": "Lab Y"}  # the attribution is kept
    mmdata.add_modality(ds, "emb", emb, replace=True)
    assert _credit(ds) == {"license": "CC0-1.0", "attribution": "Lab Y"}


def test_replace_of_a_field_under_the_datasets_license_adds_attribution(tmp_path: Path) -> None:
    ds, emb = _added_ds(tmp_path)
    mmdata.add_modality(ds, "emb", emb)
    mmdata.add_modality(ds, "emb", emb, replace=True, attribution="Lab Y")
    assert _credit(ds) == {"attribution": "Lab Y", "license_from": "dataset"}


def _padding_message(arrays: dict[str, np.ndarray]) -> str:
    types.reset_shape_warnings()
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        collate([Sample(k, {"eeg": a}) for k, a in arrays.items()])
    said = [str(w.message) for w in got if "differ in" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in got]
    return said[0]


def _z(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


def test_padding_warning_says_channel_counts_that_recur_are_padded() -> None:
    # fixed windows (T = 128) of 19 / 21 / 23 / 32 channels, one file transposed
    arrays = {f"m{i}": _z(128, c) for i, c in enumerate([19, 21, 23, 32, 19, 21])} | {"t": _z(19, 128)}
    msg = _padding_message(arrays)
    assert "19 (2), 21 (2), 23, 32" in msg and "zero-padded to 32" in msg, msg
    assert "s['eeg'].T where s['eeg'].shape[0] is not 128" in msg, msg  # the transposed one still reoriented


def test_padding_warning_reorients_only_the_transposed_array_and_cuts_the_rest() -> None:
    arrays = {**{f"c{i}": _z(1000 + i, 32) for i in range(5)}, "t": _z(32, 1400), "o": _z(1300, 31)}
    msg = _padding_message(arrays)
    # the turn is restricted to arrays it makes (T, 32): not the (1300, 31) one
    assert "x = s['eeg'].T where s['eeg'].shape[1] is not 32 and s['eeg'].T.shape is (T, 32)" in msg, msg
    assert "then x = x[:, :31]" in msg, msg
    # the turn applied as said, then the cut, gives every array one shape but its length
    out = []
    for a in arrays.values():
        x = a.T if a.shape[1] != 32 and a.T.shape[1] == 32 else a
        out.append(x[:, :31].shape[1])
    assert set(out) == {31}


def test_padding_warning_length_range_leaves_out_the_odd_arrays() -> None:
    msg = _padding_message({**{f"e{i}": _z(256, 64) for i in range(7)}, "t": _z(64, 256)})
    assert "axis 0 is the length (256)" in msg and "64..256" not in msg, msg


def test_repeated_rows_of_a_gzipped_manifest_are_deduplicated_after_zcat(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the manifest given as a relative path, as on a command line
    for i in range(4):
        _img(tmp_path / f"b{i}.png", i)
    text = "key,image\n" + "".join(f"k{i},b{i}.png\n" for i in range(4)) + "k1,b1.png\n"
    (tmp_path / "m.csv.gz").write_bytes(gzip.compress(text.encode()))
    with pytest.raises(SourceError) as exc:
        mmdata.shard(Path("m.csv.gz"), tmp_path / "o", progress=False)
    said = str(exc.value)
    assert "zcat m.csv.gz | awk '!seen[$0]++' > deduplicated.csv" in said, said
    if shutil.which("zcat"):  # the command as given gives a manifest that shards
        cmd = said.split("(e.g. ", 1)[1].split(") and shard", 1)[0]
        subprocess.run(cmd, shell=True, cwd=tmp_path, check=True)
        rep = mmdata.shard(tmp_path / "deduplicated.csv", tmp_path / "o2", progress=False)
        assert rep["samples"] == 4


def _jq_line(message: str) -> str:
    return message.split("(e.g. ", 1)[1].split("; for many such files", 1)[0]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed: the hint's command is not run")
def test_jq_hint_keeps_fields_named_with_spaces_and_flattens_a_list_of_episodes(tmp_path: Path) -> None:
    sf.write(tmp_path / "ep01.wav", np.zeros(8000 * 10, np.float32), 8000)
    doc = {"audio file": "ep01.wav", "episode": 1,
           "utterances": [{"start": 0, "end": 3, "text": "hola"}, {"start": 3, "end": 6, "text": "adios"}]}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    with pytest.raises(SourceError) as exc:
        mmdata.shard(tmp_path / "a.json", tmp_path / "o1", segment="start=start,end=end", progress=False)
    line = _jq_line(str(exc.value))
    assert '"audio file": .["audio file"]' in line, line
    subprocess.run(line, shell=True, cwd=tmp_path, check=True)
    rows = [json.loads(s) for s in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert rows == [{**u, "audio file": "ep01.wav", "episode": 1} for u in doc["utterances"]]

    eps = [{"audio": "ep01.wav", "utterances": [{"start": 0, "end": 3, "text": "hola"}]},
           {"audio": "ep01.wav", "utterances": [{"start": 3, "end": 6, "text": "x"}]}]
    (tmp_path / "b.json").write_text(json.dumps(eps))
    with pytest.raises(SourceError) as exc:
        mmdata.shard(tmp_path / "b.json", tmp_path / "o2", segment="start=start,end=end", progress=False)
    line = _jq_line(str(exc.value))
    subprocess.run(line, shell=True, cwd=tmp_path, check=True)
    rows = [json.loads(s) for s in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert rows == [{**u, "audio": "ep01.wav"} for e in eps for u in e["utterances"]], line
    rep = mmdata.shard(tmp_path / "b.jsonl", tmp_path / "o3", segment="start=start,end=end", progress=False)
    assert rep["samples"] == 2
