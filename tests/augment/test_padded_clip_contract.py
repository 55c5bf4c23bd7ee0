"""Audio ops on clips ``pad_trim`` padded (QA round 34, review C of 36c96e3): plugin ops get what they got before
unless they opt in (``real_frames``), and both kernels agree for them; ``check_op`` tests padded clips;
``pad_trim`` -> ``logmel`` gives fixed-size features again; a second ``pad_trim`` / a ``pad`` give the widths
ops.md says; kernels-2 logs and nested containers warn on replay; the trainer's note sees nested crops."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import torch

from mmdata import Sample, collate, load_recipe
from mmdata.augment.audio import AudioOp
from mmdata.augment.replay import kernels_changed, load_log, log_rows, save_log
from mmdata.testing import check_op, restored_registry
from mmdata.train.loop import reshaping_ops

LENS = (300, 2500, 6001, 9000)


@pytest.fixture()
def plugins() -> Any:
    """Register this file's plugin ops for one test only."""
    with restored_registry():
        yield


def _clips(lens: tuple[int, ...] = LENS) -> list[Sample]:
    g = torch.Generator().manual_seed(1)
    return [Sample(f"k{i}", {"audio": torch.randn(1, n, generator=g) * 0.3}, 8000, {}) for i, n in enumerate(lens)]


def _both(ops: list[dict[str, Any]], seconds: float = 1.0, lens: tuple[int, ...] = LENS) -> tuple[Any, Any, list[Sample]]:
    """(collated per-sample output, batched output, per-sample outputs) after a normalize ``pad_trim``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = load_recipe({"seed": 0, "normalize": {"audio": [{"op": "pad_trim", "seconds": seconds}]}, "audio": ops})
        rows = [r.normalize(s) for s in _clips(lens)]
        per = [r.apply_sample(s, 0) for s in rows]
        return collate(per), r.apply_batched(collate(rows), 0), per


def _fade_op() -> type[AudioOp]:
    class FadeOut(AudioOp):
        """Fade out the last 0.1 s of the clip it gets (linear)."""

        name = "fade_out_qa34c"

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            x = sample["audio"].clone()
            k = min(x.shape[-1], int(0.1 * sample.sample_rate))
            x[..., x.shape[-1] - k:] *= torch.linspace(1, 0, k)
            return sample.with_fields(audio=x)

        def transform_batch(self, batch: Any, params: Any) -> Any:
            x = batch["audio"].clone()
            k = min(x.shape[-1], int(0.1 * batch.sample_rate))
            x[..., x.shape[-1] - k:] *= torch.linspace(1, 0, k)
            return batch.replace(audio=x)

    return FadeOut


def test_a_plugin_op_gets_the_padded_clip_in_both_kernels_unless_it_opts_in(plugins: Any) -> None:
    seen: list[int] = []

    class Frames(AudioOp):
        """Zero one of 10 frames of a pad_trim'd 1 s clip: it relies on the fixed width."""

        name = "zero_frame_qa34c"

        def sample_params(self, rng: Any, sample: Any) -> dict[str, Any]:
            seen.append(int(sample["audio"].shape[-1]))  # the real frames, in both kernels
            return {"i": int(rng.integers(0, 10))}

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            x = sample["audio"].clone().reshape(sample["audio"].shape[0], 10, -1)
            x[:, params["i"]] = 0
            return sample.with_fields(audio=x.reshape(sample["audio"].shape))

    fade = _fade_op()
    assert not fade.real_frames and not Frames.real_frames
    per, bat, outs = _both([{"op": "fade_out_qa34c"}])
    assert per["audio"].shape == bat["audio"].shape == (4, 1, 8000)
    assert torch.equal(per["audio"], bat["audio"]) and per.lengths["audio"].tolist() == [300, 2500, 6001, 8000]
    per, bat, outs = _both([{"op": "zero_frame_qa34c"}])  # no batched kernel: the fallback keeps the width too
    assert set(seen) == {300, 2500, 6001, 8000} and torch.equal(per["audio"], bat["audio"]) and bat["audio"].shape[-1] == 8000
    assert bat.lengths["audio"].tolist() == [300, 2500, 6001, 8000]


def _last_frame_op(real: bool) -> type[AudioOp]:
    class ZeroLast(AudioOp):
        """Zero the clip's last frame; the batched kernel zeroes each row's last frame by ``lengths``."""

        name = f"zero_last_{real}_qa34c"
        real_frames = real

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            x = sample["audio"].clone()
            x[..., -1] = 0
            return sample.with_fields(audio=x)

        def transform_batch(self, batch: Any, params: Any) -> Any:
            x = batch["audio"].clone()
            for i, n in enumerate(batch.lengths["audio"].tolist()):
                x[i, :, n - 1] = 0
            return batch.replace(audio=x)

    return ZeroLast


def test_an_op_that_opts_in_sees_the_real_frames_and_check_op_tests_padded_clips(plugins: Any) -> None:
    real, whole = _last_frame_op(True), _last_frame_op(False)
    per, bat, outs = _both([{"op": "zero_last_True_qa34c"}])
    assert [s.meta.get("audio_valid") for s in outs] == [300, 2500, 6001, None]
    assert float(outs[2]["audio"][0, 6000]) == 0.0 and torch.equal(per["audio"], bat["audio"])
    check_op(real(), require_applied=False, epochs=1)
    # acts on the padded clip per sample but on the real frames batched: only a padded clip shows it
    with pytest.raises(AssertionError, match=r"clips pad_trim padded"):
        check_op(whole(), require_applied=False, epochs=1)


def test_pad_trim_then_logmel_gives_fixed_size_features_with_the_floor_in_the_padding() -> None:
    per, bat, outs = _both([{"op": "logmel", "n_mels": 20}], lens=(300, 2500, 6000, 9000))
    assert {tuple(s["spec"].shape) for s in outs} == {(20, 101)}
    # one shape: the rows' whole shapes, in collate's lengths (every batch has them, QA38 E #1) and the batched one's
    assert per.lengths["spec"].tolist() == bat.valid_shapes("spec").tolist() == [[20, 101]] * 4
    assert torch.allclose(per["spec"], bat["spec"], atol=1e-4)
    assert float(per["spec"][0, :, -1].max()) == pytest.approx(-13.8155, abs=1e-3)  # log(1e-6): silence
    assert per.lengths["audio"].tolist() == [300, 2500, 6000, 8000]


@pytest.mark.parametrize("pad", [True, False])
def test_pad_trim_after_pad_trim_makes_every_clip_its_width_in_both_kernels(pad: bool) -> None:
    ops = [{"op": "pad_trim", "seconds": 0.5, "pad": pad}]
    per, bat, outs = _both(ops, lens=(300, 2500, 4000, 6000, 9000))
    assert {tuple(s["audio"].shape) for s in outs} == {(1, 4000)}
    assert per.lengths["audio"].tolist() == bat.lengths["audio"].tolist() == [300, 2500, 4000, 4000, 4000]
    assert torch.equal(per["audio"], bat["audio"])
    assert [e[-1] for e in bat.meta["aug"]] == [s.meta["aug"][-1] for s in outs]


def test_pad_after_pad_trim_keeps_the_width() -> None:
    per, bat, outs = _both([{"op": "pad", "seconds": 0.5}], lens=(300, 2500, 9000))
    assert {tuple(s["audio"].shape) for s in outs} == {(1, 8000)}
    assert per.lengths["audio"].tolist() == bat.lengths["audio"].tolist() == [300, 2500, 8000]
    assert torch.equal(per["audio"], bat["audio"])
    per, bat, outs = _both([{"op": "pad", "seconds": 1.5}], lens=(300, 9000))  # wider: the real frames padded
    assert {tuple(s["audio"].shape) for s in outs} == {(1, 12000)} and torch.equal(per["audio"], bat["audio"])


def test_a_kernels_2_log_of_padded_clips_warns_naming_the_ops(tmp_path: Path) -> None:
    rec = load_recipe({"seed": 0, "normalize": {"audio": [{"op": "pad_trim", "seconds": 1.0}]},
                       "audio": [{"op": "time_shift", "p": 1.0}, {"op": "noise", "p": 1.0}]})
    s = rec.apply_sample(rec.normalize(_clips((300,))[0]))
    save_log(tmp_path / "log.parquet", log_rows(s.key, s.meta["aug"], 0))
    t = pq.read_table(tmp_path / "log.parquet")
    pq.write_table(t.replace_schema_metadata({**t.schema.metadata, b"mmdata.kernels": b"2"}), tmp_path / "old.parquet")
    with pytest.warns(UserWarning, match=r"written by kernels 2 .*time_shift draws on and acts on the real frames"):
        load_log(tmp_path / "old.parquet")
    assert "noise" in kernels_changed(b"2", ["audio.noise"]) and kernels_changed(b"2", ["audio.gain"]) is None


def test_ops_nested_in_containers_are_seen() -> None:
    said = kernels_changed(b"1", ["audio.some_of"])
    assert said is not None and "logmel" in said
    recipe = {"audio": [{"op": "one_of", "ops": [{"op": "random_crop"}, {"op": "some_of", "ops": [{"op": "speed"}]}]}]}
    assert reshaping_ops(recipe) == ("random_crop", "speed")
