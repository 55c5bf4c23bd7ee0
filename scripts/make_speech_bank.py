"""Generate the avdigits speech bank (maintainers only; needs espeak-ng: apt-get install -y espeak-ng).

Real synthetic speech of the ten digit words from many espeak-ng "speakers" (a base English voice x
a voice variant x a fixed speed / pitch offset), trimmed of silence, resampled to 8 kHz, peak
normalised, and stored in the package as ONE 16-bit FLAC of concatenated clips plus a JSON table
(speaker, digit, offset, length) and the FLAC's sha256. espeak-ng is deterministic, so running this
again reproduces the same bank (the sha256 is checked when the bank is loaded).

Run: .venv/bin/python scripts/make_speech_bank.py
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
BASES = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en"]
VARIANTS = ["m1", "m2", "m3", "m4", "m6", "f1", "f2", "f3", "f4"]
RATE = 8000
OUT = Path(__file__).resolve().parents[1] / "mmdata" / "datasets" / "assets"


def speakers() -> list[dict[str, object]]:
    rng = np.random.default_rng(20261122)
    out = []
    for b in BASES:
        for v in VARIANTS:
            out.append({"id": len(out), "voice": f"{b}+{v}", "speed": int(rng.integers(120, 200)), "pitch": int(rng.integers(25, 75))})
    return out


def speak(voice: str, speed: int, pitch: int, word: str) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", f.name, word], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        x, sr = sf.read(f.name, dtype="float32")
    x = soxr.resample(x, sr, RATE)
    env = np.abs(x) > 0.02 * np.abs(x).max()
    idx = np.flatnonzero(env)
    x = x[max(0, idx[0] - 80) : idx[-1] + 80]
    return (0.5 * x / max(np.abs(x).max(), 1e-6)).astype(np.float32)


def main() -> None:
    clips, table = [], []
    offset = 0
    for spk in speakers():
        for d, w in enumerate(WORDS):
            x = speak(str(spk["voice"]), int(spk["speed"]), int(spk["pitch"]), w)
            clips.append(x)
            table.append({"speaker": spk["id"], "digit": d, "offset": offset, "length": len(x)})
            offset += len(x)
    buf = io.BytesIO()
    sf.write(buf, np.concatenate(clips), RATE, format="FLAC", subtype="PCM_16")
    data = buf.getvalue()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "speech_bank.flac").write_bytes(data)
    meta = {"rate": RATE, "words": WORDS, "speakers": speakers(), "clips": table, "sha256": hashlib.sha256(data).hexdigest(),
            "generator": "scripts/make_speech_bank.py (espeak-ng)"}
    (OUT / "speech_bank.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{len(table)} clips from {len(speakers())} speakers, {len(data) / 1e6:.2f} MB, sha256 {meta['sha256']}")


if __name__ == "__main__":
    main()
