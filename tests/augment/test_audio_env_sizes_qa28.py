"""Noise / impulse-response files over a size cap are refused unread (QA28 security #4: a 20 GB sparse
``.wav`` in a recipe's noise folder was read whole, and the error said only ``MemoryError:``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mmdata.augment import audio_env
from mmdata.augment.base import build_op
from mmdata.errors import RecipeError

SR = 16000


@pytest.fixture
def noise_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "noise").mkdir()
    sf.write(tmp_path / "noise" / "ok.wav", np.zeros(SR // 10, np.float32), SR)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(audio_env, "_CACHE", type(audio_env._CACHE)())
    return tmp_path / "noise"


@pytest.mark.parametrize("op", ["background_noise", "reverb"])
def test_a_file_over_the_cap_is_refused_when_the_folder_is_listed(noise_dir: Path, op: str) -> None:
    big = noise_dir / "zbig.wav"
    big.write_bytes(b"")
    os.truncate(big, audio_env.MAX_FILE_BYTES + 1)  # sparse: no disk used, and never read
    with pytest.raises(RecipeError) as exc:
        build_op("audio", {"op": op, "path": "noise"}, "audio[0]")
    msg = str(exc.value)
    assert msg.startswith("audio[0].path: ") and str(big) in msg
    assert f"{audio_env.MAX_FILE_BYTES + 1} bytes" in msg and "1 GiB" in msg


def test_a_file_grown_past_the_cap_after_listing_is_not_read_whole(noise_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    op = build_op("audio", {"op": "background_noise", "path": "noise"}, "audio[0]")
    assert op._files == ("ok.wav",)
    size = (noise_dir / "ok.wav").stat().st_size
    monkeypatch.setattr(audio_env, "MAX_FILE_BYTES", size - 1)
    with pytest.raises(RecipeError, match=rf"audio\[0\]\.path: .*ok\.wav: {size} bytes, over the limit of {size - 1}"):
        audio_env.load_file(noise_dir, "ok.wav", SR, "audio[0].path")


def test_running_out_of_memory_is_the_machines_not_the_noise_files(noise_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of memory while decoding a noise file propagates as itself (the CLI prints one line: out of memory,
    exit 2, mmdata.io.out_of_memory), not as a RecipeError blaming a 1 KB noise file (review of QA28)."""
    import mmdata.codecs
    from mmdata.io import out_of_memory

    def no_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError()

    monkeypatch.setattr(mmdata.codecs, "decode_audio", no_memory)
    with pytest.raises(MemoryError) as exc:
        audio_env.load_file(noise_dir, "ok.wav", SR, "audio[0].path")
    assert out_of_memory(exc.value).startswith("out of memory")
