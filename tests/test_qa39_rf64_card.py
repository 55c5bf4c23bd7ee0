"""QA39 security #6, end to end: RF64 WAVs (ffmpeg's -rf64, WAVs past 4 GB) are counted in the card's audio
sample formats (``subtypes``) beside RIFF WAVs (the writer's one-pass header scan skipped every member not
starting RIFF / fLaC)."""
import io
import warnings

import numpy as np
import soundfile as sf

import mmdata
from mmdata.shards.index import load_card


def test_rf64_wavs_are_counted_in_the_card(tmp_path):
    raw = tmp_path / "raw"
    for c in ("a", "b"):
        (raw / c).mkdir(parents=True)
        for i in range(2):
            buf = io.BytesIO()  # libsndfile writes RF64 (its ds64 chunk, 0xFFFFFFFF sizes) as ffmpeg -rf64 does
            sf.write(buf, np.full(800, 0.1 * (i + 1), np.float32), 8000, format="RF64" if c == "a" else "WAV",
                     subtype="PCM_16")
            assert buf.getvalue()[:4] == (b"RF64" if c == "a" else b"RIFF")
            (raw / c / f"s{i}.wav").write_bytes(buf.getvalue())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(str(raw), str(tmp_path / "ds"), split={"train": 1.0}, progress=False)
    subtypes = load_card(tmp_path / "ds")["modalities"]["audio"].get("subtypes")
    assert subtypes == {"PCM_16": 4}, subtypes
