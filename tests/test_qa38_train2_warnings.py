"""QA38 review 3 (train / evaluate): the shortcut warning capped and linear at thousands of classes (#2), evaluate's
stereo check kept where the run resampled to a given rate or only another split was stereo (#3), a mode-less 2-band
row decoded as 1 channel (#4), ``--by`` keeping True and 1 apart (#5)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf

import mmdata
from mmdata.train.config import IndexStats, decoded_channels, derive_inputs, shortcut_warnings


def _stats(rates: np.ndarray, labels: np.ndarray) -> IndexStats:
    """An IndexStats over in-memory columns (thousands of classes: sharding that many is not a unit test)."""
    st = IndexStats.__new__(IndexStats)
    n = len(labels)
    st.data = "mem"
    st._splits = {"train": np.ones(n, bool)}
    st.has = {"audio": np.ones(n, bool), "image": np.zeros(n, bool), "text": np.zeros(n, bool)}
    st.col = {k: None for k in ("image_mode", *IndexStats.NUMERIC)}
    st.col["label"] = labels.astype(np.float64)
    st.col["audio_sample_rate"] = rates.astype(np.float64)
    return st


def test_shortcut_warning_is_capped_at_thousands_of_classes() -> None:
    classes = 2000
    labels = np.repeat(np.arange(classes), 10)
    got = shortcut_warnings(_stats(8000 + 10 * labels, labels), None, ["audio"])
    assert len(got) == 1 and len(got[0]) < 1500, len(got[0])
    assert "8000 Hz only in 0 (10 of 10)" in got[0] and "and 1995 more classes" in got[0], got[0][:600]
    # 3 rates shared by every class: nothing to say
    rng = np.random.default_rng(0)
    assert shortcut_warnings(_stats(rng.choice([8000, 16000, 22050], len(labels)), labels), None, ["audio"]) == []


def test_two_band_row_without_a_mode_decodes_to_one_channel() -> None:
    st = _stats(np.full(4, 8000), np.arange(4) % 2)
    st.has["image"] = np.ones(4, bool)
    st.col["image_channels"] = np.array([2.0, 3.0, 4.0, 1.0])
    got = {c: r.tolist() for c, r in decoded_channels(st, "image", np.arange(4)).items()}
    assert got == {1: [0], 3: [1, 2]}, got


def _wav(seed: int, rate: int, channels: int) -> bytes:
    buf = io.BytesIO()
    x = np.random.default_rng(seed).normal(0, 0.1, (rate // 10, channels)).astype(np.float32)
    sf.write(buf, x, rate, format="WAV")
    return buf.getvalue()


def test_evaluate_says_stereo_for_a_given_rate_run_and_a_run_mono_in_train(tmp_path: Path) -> None:
    from mmdata.train.score_run import _audio_format_shift

    raw = tmp_path / "raw"
    for c in ("a", "b"):
        (raw / c).mkdir(parents=True)
        for i in range(6):
            (raw / c / f"s{i}.wav").write_bytes(_wav(i + 10 * len(c), 8000, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, tmp_path / "mono", progress=False, split="train=1.0")
    rows = ["key,audio,label,split"] + [f"{c}{i},{c}/s{i}.wav,{c},train" for c in "ab" for i in range(6)]
    for i in range(2):  # stereo clips in test only
        (raw / "a" / f"st{i}.wav").write_bytes(_wav(50 + i, 8000, 2))
        rows.append(f"st{i},a/st{i}.wav,a,test")
    (raw / "m.csv").write_text("\n".join(rows) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw / "m.csv", tmp_path / "mixed", progress=False)
    stereo = tmp_path / "stereo"
    (stereo / "raw" / "a").mkdir(parents=True)
    (stereo / "raw" / "b").mkdir(parents=True)
    for i in range(3):
        (stereo / "raw" / "a" / f"s{i}.wav").write_bytes(_wav(i, 8000, 2))
        (stereo / "raw" / "b" / f"s{i}.wav").write_bytes(_wav(9 + i, 8000, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(stereo / "raw", stereo / "ds", progress=False, split="train=1.0")
    # (a) a run trained with --sample-rate 16000 on 8 kHz mono clips: resampled, no training rates recorded
    given = {"inputs": derive_inputs(tmp_path / "mono", ["audio"], sample_rate=16000, splits=["train"]).to_dict()}
    assert given["inputs"]["needs"]["resample"] and given["inputs"]["sources"]["sample_rate"] == "given"
    said = _audio_format_shift(stereo / "ds", ["train"], given, "stereo", "train")
    assert said is not None and "6 of 6 clips have 2 channels: 6, mixed down to mono" in said, said
    # (b) a run whose train split is mono but whose test split held stereo: the run's own training clips were mono
    inputs = derive_inputs(tmp_path / "mixed", ["audio"]).to_dict()
    assert inputs["needs"]["mono"] and "mixed down to mono from channels" in inputs["sources"]["sample_rate"], inputs
    said = _audio_format_shift(stereo / "ds", ["train"], {"inputs": inputs}, "stereo", "train")
    assert said is not None and "mixed down to mono (the run trained on mono clips only)" in said, said


def test_by_value_keeps_bools_and_ints_apart() -> None:
    import torch

    from mmdata.train.score_run import _ByValue
    from mmdata.types import Sample, collate

    by = _ByValue("flag", None, "flag")
    flags = [True, 1, False, 0, 1]
    batch = collate([Sample(f"k{i}", {"label": 0, "json": {"flag": f}}) for i, f in enumerate(flags)])
    by(batch, torch.tensor([[1.0, 0.0]] * len(flags)))
    rows = {(type(v["value"]).__name__, v["value"]): v["samples"] for v in by.result()["values"]}
    assert rows == {("bool", True): 1, ("int", 1): 2, ("bool", False): 1, ("int", 0): 1}, rows


def test_index_warnings_and_a_lower_given_rate_are_said_before_the_first_epoch(tmp_path: Path, capsys) -> None:
    """Review 3's note: the shortcut / caption-leak warnings came only with the result, after every epoch; the augment
    fixer's: a --sample-rate below the clips' rates was said only mid-training, by the loader."""
    from mmdata.train import train

    raw = tmp_path / "raw"
    for c, rate in (("BPSK", 16000), ("QPSK", 8000)):
        (raw / c).mkdir(parents=True)
        for i in range(8):
            (raw / c / f"s{i}.wav").write_bytes(_wav(i + rate, rate, 1))
            (raw / c / f"s{i}.txt").write_text(f"capture {i} of {c}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(raw, tmp_path / "ds", progress=False, split="train=0.5,val=0.25,test=0.25")
        capsys.readouterr()
        m = train(tmp_path / "ds", modalities=["audio", "text"], epochs=1, batch_size=8, seed=0, sample_rate=8000,
                  eval_robustness=False, progress=True)
    err = capsys.readouterr().err
    first_epoch = err.index("epoch 0:")
    shortcut = err.find("warning (from the index; listed again with the result): the sample rate predicts the label")
    leak = err.find("contain their own class name")
    note = err.find("clips of train, val, test are recorded above the given 8000 Hz (16000 Hz: 8)")
    assert -1 < shortcut < first_epoch and -1 < leak < first_epoch and -1 < note < first_epoch, err
    assert "nothing above 4000 Hz of them reaches the model" in err, err
    said = m.get("warnings") or []  # still in the result, once each
    assert sum(w.startswith("the sample rate predicts the label") for w in said) == 1, said
