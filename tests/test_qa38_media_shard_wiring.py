"""QA38 bioacoustics #1 / #4 wired into `shard` and `verify --deep`: a WAV whose header was never finalised is
warned of at shard time; digital silence, clipping and a DC offset under `--check decode` and `verify --deep`.
Real WAVs written by soundfile, sharded and verified through the API."""

from __future__ import annotations

import io
import json
import struct
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

import mmdata
from mmdata.shards.verify import verify


def _wav(x: np.ndarray, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def _folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    files = {f"bat/n{i}.wav": _wav(rng.normal(0, 0.1, 1600).astype(np.float32)) for i in range(4)}
    b = bytearray(_wav(rng.normal(0, 0.1, 1600).astype(np.float32)))
    j = b.find(b"data")
    struct.pack_into("<I", b, j + 4, 0)  # the data chunk's size never written
    files["bat/unfinished.wav"] = bytes(b)
    files["noise/silent.wav"] = _wav(np.zeros(1600, np.float32))
    files["noise/clipped.wav"] = _wav(np.clip(rng.normal(0, 3, 1600), -1, 1).astype(np.float32))
    files["noise/offset.wav"] = _wav((0.5 + rng.normal(0, 0.05, 1600)).astype(np.float32))
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    return src


def _warnings(card: dict) -> str:
    return "\n".join(card.get("warnings") or [])


def test_shard_warns_of_an_unfinished_header_and_with_decode_of_silence_clipping_and_offset(tmp_path: Path) -> None:
    src = _folder(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(src, tmp_path / "plain", progress=False)
        mmdata.shard(src, tmp_path / "decoded", progress=False, check="decode")
    plain = _warnings(json.loads((tmp_path / "plain" / "dataset.json").read_text()))
    assert "header never finalised" in plain and "unfinished" in plain, plain
    assert "digital silence" not in plain  # levels need a full decode
    decoded = _warnings(json.loads((tmp_path / "decoded" / "dataset.json").read_text()))
    assert "header never finalised" in decoded
    for said, key in (("digital silence", "silent"), ("clipped", "clipped"), ("offset", "offset")):
        line = next((w for w in decoded.splitlines() if said in w and "audio member" in w), "")
        assert key in line, (said, decoded)
    assert "n0" not in decoded.split("digital silence")[1].split("\n")[0]  # healthy clips are not named
    deep = verify(tmp_path / "plain", deep=True, progress=False)
    text = json.dumps(deep)
    assert "digital silence" in text and "silent" in text and "clipped" in text, deep


def test_verify_deep_counts_positive_clipping_of_an_eight_bit_wav(tmp_path: Path) -> None:
    """verify --deep judged clipping at 16-bit full scale: an 8-bit WAV (peak 127/128) clipped on its positive side
    only was not counted there, though `shard --check decode` counted it (QA38 review 2 #5)."""
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    x = np.clip(10 * np.sin(np.linspace(0, 60, 4000)), -0.5, 1.0)
    buf = io.BytesIO()
    sf.write(buf, x, 8000, subtype="PCM_U8", format="WAV")
    (src / "a" / "clip8.wav").write_bytes(buf.getvalue())
    (src / "a" / "ok.wav").write_bytes(_wav(0.1 * np.sin(np.linspace(0, 300, 4000))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(src, tmp_path / "ds", progress=False)
    text = json.dumps(verify(tmp_path / "ds", deep=True, progress=False))
    assert "clipped" in text and "clip8" in text and "'ok" not in text, text


def test_an_eight_bit_flac_is_named_as_soundfile_names_it_and_its_clipping_verified(tmp_path: Path) -> None:
    """The header reader called an 8-bit FLAC "PCM_8" (soundfile: PCM_S8), so verify --deep judged it at 16-bit full
    scale and missed positive-only clipping (QA38 review b #2; `--segment` cuts 8-bit WAVs into 8-bit FLAC)."""
    from mmdata.shards.mediainfo import audio_subtype

    x = np.clip(10 * np.sin(np.linspace(0, 60, 4000)), -0.5, 1.0)
    buf = io.BytesIO()
    sf.write(buf, x, 8000, subtype="PCM_S8", format="FLAC")
    assert audio_subtype(buf.getvalue()) == sf.info(io.BytesIO(buf.getvalue())).subtype == "PCM_S8"
    (tmp_path / "src" / "a").mkdir(parents=True)
    (tmp_path / "src" / "a" / "clip8.flac").write_bytes(buf.getvalue())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(tmp_path / "src", tmp_path / "ds", progress=False)
    assert "clipped" in json.dumps(verify(tmp_path / "ds", deep=True, progress=False))


def test_inspect_does_not_flag_an_augment_outputs_own_format_mix(tmp_path: Path) -> None:
    """augment writes changed clips as float WAV and copies the rest: inspect flagged its own output "(mixed)" in
    yellow, a false alarm on ordinary data (QA38 review b #3); a dataset of mixed recorders is still flagged."""
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    src = tmp_path / "src" / "a"
    src.mkdir(parents=True)
    for i, subtype in enumerate(("PCM_16", "FLOAT")):
        buf = io.BytesIO()
        sf.write(buf, 0.1 * np.sin(np.linspace(0, 300 + i, 4000)), 8000, subtype=subtype, format="WAV")
        (src / f"c{i}.wav").write_bytes(buf.getvalue())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(tmp_path / "src", tmp_path / "ds", progress=False)
    out = CliRunner().invoke(app, ["inspect", str(tmp_path / "ds")], env={"COLUMNS": "250"}).output
    assert "formats FLOAT: 1, PCM_16: 1 (mixed)" in out, out
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    card["augmentation"] = {"recipe": "x"}
    (tmp_path / "ds" / "dataset.json").write_text(json.dumps(card))
    from mmdata.shards.inspect import inspect

    rep = inspect(tmp_path / "ds")
    assert rep["audio"].get("subtypes_augmented") is True, rep["audio"]
    out = CliRunner().invoke(app, ["inspect", str(tmp_path / "ds")], env={"COLUMNS": "250"}).output
    assert "(augment writes changed clips as FLOAT)" in out and "(mixed)" not in out, out
