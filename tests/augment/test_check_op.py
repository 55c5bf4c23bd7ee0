"""mmdata.testing.check_op, the op harness: it passes every built-in op, and it catches the mistakes a
researcher writing an op makes (an in-place write, a non-deterministic kernel or draw, numpy params, HWC
float images, a batched kernel that disagrees, a draw that reads pixels, a lossy to_dict), naming the check."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from mmdata import Sample
from mmdata.augment.audio import AudioOp
from mmdata.augment.base import Op, Param, build_op, registry
from mmdata.augment.image import ImageOp
from mmdata.augment.mix import BatchOp
from mmdata.testing import check_op, op_samples, restored_registry

# children for the composites; arguments the default samples need (24 x 32 images, 0.1-0.2 s mono clips)
CHILDREN = {"image": [{"op": "hflip"}, {"op": "cutout"}], "audio": [{"op": "gain"}, {"op": "time_mask"}],
            "text": [{"op": "token_mask"}, {"op": "word_swap"}], "sample": [{"op": "modality_dropout"}, {"op": "consistent_hflip"}]}
ARGS = {("image", "random_crop"): {"size": [16, 20]}, ("audio", "random_crop"): {"seconds": 0.05},
        ("text", "max_tokens"): {"n": 3}}


def _stereo() -> list[Sample]:
    return [s.with_fields(audio=torch.cat([s["audio"], -s["audio"]])) if "audio" in s else s for s in op_samples()]


SAMPLES = {("image", "to_rgb"): lambda: op_samples(channels=1), ("audio", "to_mono"): _stereo,
           ("text", "choose_caption"): lambda: [s.with_fields(json={"captions": [f"caption {j} of {s.key}" for j in range(3)]})
                                                for s in op_samples()]}


@pytest.fixture(autouse=True)
def _registry_restored() -> Any:
    with restored_registry():
        yield


@pytest.mark.parametrize("section,name", sorted(registry()), ids=[f"{s}.{n}" for s, n in sorted(registry())])
@pytest.mark.parametrize("p", [0.6, 1.0])
def test_check_op_passes_every_builtin_op(section: str, name: str, p: float, tmp_path: Any, monkeypatch: Any) -> None:
    spec: dict[str, Any] = {"op": name, "p": p, **ARGS.get((section, name), {})}
    if name == "background_noise":  # its path is required: a folder of real noise files, relative to the working dir
        import soundfile as sf

        (tmp_path / "noise").mkdir()
        sf.write(tmp_path / "noise" / "n.wav", np.random.default_rng(0).standard_normal(3000).astype(np.float32) * 0.1, 16000)
        monkeypatch.chdir(tmp_path)
        spec["path"] = "noise"
    if name in ("one_of", "some_of"):
        spec["ops"] = CHILDREN[section]
    if name in ("to_rgb", "to_gray", "resize", "to_mono", "resample") and p < 1:
        spec["p"] = 1.0  # ops that change the channel count, size or rate apply to every sample
    samples = SAMPLES.get((section, name), op_samples)()
    check_op(build_op(section, spec, f"{section}[0]"), samples)


def test_check_op_on_a_device_when_there_is_one() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for section, spec in (("image", {"op": "cutout"}), ("audio", {"op": "gain"}), ("text", {"op": "token_mask"})):
        check_op(build_op(section, {**spec, "p": 0.6}, f"{section}[0]"), device="cuda")


# -- bad ops it must catch --------------------------------------------------------------------------------
def _audio_op(name: str, transform: Any = None, **attrs: Any) -> Op:
    body = {"__doc__": "A test op.", "section": "audio", "name": name, **attrs}
    if transform is not None:
        body["transform"] = lambda self, sample, params: transform(sample, params)
    type(name.title().replace("_", ""), (AudioOp,), body)
    return build_op("audio", {"op": name}, "audio[0]")


def _doubled_in_place(sample: Sample, params: dict[str, Any]) -> Sample:
    sample["audio"].mul_(2.0)
    return sample


def _doubled_via_numpy(sample: Sample, params: dict[str, Any]) -> Sample:
    a = sample["audio"].numpy()
    a *= 2.0  # torch's version counter does not see this
    return sample.with_fields(audio=torch.from_numpy(a.copy()))


def _fields_edited(sample: Sample, params: dict[str, Any]) -> Sample:
    sample.fields["audio"] = sample["audio"] * 2.0  # type: ignore[index] - the cached sample's own dict
    return sample


def _noisy(sample: Sample, params: dict[str, Any]) -> Sample:
    return sample.with_fields(audio=sample["audio"] + 0.01 * torch.randn_like(sample["audio"]))


def _global_random_draw(self: Any, rng: Any, sample: Any) -> dict[str, Any]:
    return {"gain": float(np.random.uniform(0.5, 2.0))}  # not the rng it was given


def _numpy_draw(self: Any, rng: Any, sample: Any) -> dict[str, Any]:
    return {"gain": rng.uniform(0.5, 2.0, size=1)}  # an ndarray


def _scale(sample: Sample, params: dict[str, Any]) -> Sample:
    return sample.with_fields(audio=sample["audio"] * float(np.asarray(params.get("gain", 1.0)).ravel()[0]))


def _pixel_draw(self: Any, rng: Any, sample: Any) -> dict[str, Any]:
    return {"bright": float(sample["image"].float().mean()) > 127}  # reads values: a batch row has only shapes


BAD: dict[str, tuple[Any, str]] = {
    "torch in-place write": (lambda: _audio_op("double_torch", _doubled_in_place), r"\[no input mutation\]: sample 'k0': the input's 'audio' tensor was written in place"),
    "numpy view write": (lambda: _audio_op("double_numpy", _doubled_via_numpy), r"\[no input mutation\]: .*'audio' tensor was written in place"),
    "fields dict edited": (lambda: _audio_op("double_fields", _fields_edited), r"\[no input mutation\]: .*'audio' was replaced in its fields dict"),
    "random kernel": (lambda: _audio_op("noisy", _noisy), r"\[deterministic apply\]: sample 'k0', epoch 0: the same params twice gave another output"),
    "global random draw": (lambda: _audio_op("global_draw", _scale, sample_params=_global_random_draw),
                           r"\[params\]: sample 'k0', epoch 0: two draws for the same \(seed, epoch, key\) differ"),
    "ndarray params": (lambda: _audio_op("numpy_draw", _scale, sample_params=_numpy_draw),
                       r"\[params\]: audio\[0\] \(op audio.numpy_draw.*params\['gain'\] is a numpy.ndarray, not JSON"),
    "draw reads pixels": (lambda: build_op("sample", {"op": "pixel_draw"}, "sample[0]"),
                          r"\[batched == per-sample \(CPU kernels\)\]: raised AttributeError.*sample_params sees a row as shapes"),
}


def _define_pixel_draw() -> None:
    class PixelDraw(Op):
        """Draws from pixel values."""

        section, name = "sample", "pixel_draw"
        sample_params = _pixel_draw

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample


@pytest.mark.parametrize("case", list(BAD))
def test_check_op_catches(case: str) -> None:
    _define_pixel_draw()
    make, match = BAD[case]
    with pytest.raises(AssertionError, match=match):
        check_op(make())


@pytest.mark.parametrize("how", ["float HWC tensor", "float CHW tensor", "HWC numpy", "kernel floats"])
def test_check_op_catches_hwc_float_images(how: str) -> None:
    class Bright(Op):
        """Returns images as torchvision's ToTensor would."""

        section, name, field = "image", "bright", "image"

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            x = sample["image"]
            if how == "float HWC tensor":
                return sample.with_fields(image=x.permute(1, 2, 0).float() / 255)
            if how == "float CHW tensor":
                return sample.with_fields(image=x.float() / 255)
            return sample.with_fields(image=x.permute(1, 2, 0).numpy().copy())

    class BrightKernel(ImageOp):
        """A kernel returning floats in [0, 1]."""

        section, name = "image", "bright_kernel"

        def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
            return arr.astype(np.float32) / 255

    name = "bright_kernel" if how == "kernel floats" else "bright"
    match = {"float HWC tensor": r"'image' has dtype torch.float32", "float CHW tensor": r"'image' has dtype torch.float32",
             "HWC numpy": r"'image' is a numpy.ndarray", "kernel floats": r"kernel returned a float32 array; expected uint8"}[how]
    with pytest.raises(AssertionError, match=r"check_op\(image\[0\] \(op image\.%s, class .*\)\) \[output types\]: .*%s" % (name, match)):
        check_op(build_op("image", {"op": name}, "image[0]"))


def test_check_op_catches_a_batched_kernel_that_disagrees() -> None:
    class Louder(AudioOp):
        """Doubles the waveform; its batched kernel forgets the rows not applied."""

        section, name = "audio", "louder"
        masked = True

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample.with_fields(audio=sample["audio"] * 2.0)

        def transform_batch(self, batch: Any, params: Any) -> Any:
            return batch.replace(audio=batch["audio"] * 2.0)  # every row, also those not applied

    with pytest.raises(AssertionError, match=r"\[batched == per-sample \(CPU kernels\)\]: epoch 0: audio\[\d\] \(sample 'k\d'\): "
                                             r"max abs difference"):
        check_op(build_op("audio", {"op": "louder", "p": 0.5}, "audio[0]"))


def test_check_op_catches_a_batched_kernel_that_writes_into_its_input() -> None:
    class LouderInPlace(AudioOp):
        """Its batched kernel writes into the batch."""

        section, name = "audio", "louder_batch_in_place"

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample.with_fields(audio=sample["audio"] * 2.0)

        def transform_batch(self, batch: Any, params: Any) -> Any:
            batch["audio"].mul_(2.0)
            return batch.replace(audio=batch["audio"])

    with pytest.raises(AssertionError, match=r"\[batched == per-sample .*the batched kernel changed its input batch: the input's "
                                             r"'audio' tensor was written in place"):
        # every row has audio: the kernel gets the batch itself (with some rows not applied, a gathered copy)
        check_op(build_op("audio", {"op": "louder_batch_in_place"}, "audio[0]"), [s for s in op_samples() if "audio" in s])


def test_check_op_catches_a_lossy_to_dict() -> None:
    class Gainy(AudioOp):
        """Its to_dict forgets the argument."""

        section, name = "audio", "gainy"
        PARAMS = {"factor": Param("float", 2.0, 0.0, 10.0, doc="factor")}

        def to_dict(self) -> dict[str, Any]:
            return {"op": self.name, "p": self.p}

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample.with_fields(audio=sample["audio"] * self.factor)

    check_op(build_op("audio", {"op": "gainy"}, "audio[0]"))  # the default survives the loss
    with pytest.raises(AssertionError, match=r"\[round trip\]: sample 'k0': build\(op.to_dict\(\)\) transforms differently"):
        check_op(build_op("audio", {"op": "gainy", "factor": 3.0}, "audio[0]"))


def test_check_op_catches_an_unregistered_op() -> None:
    class Shadow(AudioOp):
        """Registered, then replaced by another class under its name."""

        section, name = "audio", "shadow"

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample

    op = build_op("audio", {"op": "shadow"}, "audio[0]")
    registry()[("audio", "shadow")] = type("Other", (), {})
    with pytest.raises(AssertionError, match=r"\[round trip\]: registry\(\)\[\('audio', 'shadow'\)\] is .*Other.*not .*Shadow"):
        check_op(op)


def test_check_op_catches_a_batch_op_that_writes_into_its_batch() -> None:
    class Halve(BatchOp):
        """Halves the images in place."""

        section, name = "batch", "halve"

        def combine(self, batch: Any, params: dict[str, Any]) -> Any:
            batch["image"].div_(2, rounding_mode="floor")
            return batch.replace()

    with pytest.raises(AssertionError, match=r"check_op\(batch\[0\] \(op batch.halve, .*\)\) \[no input mutation\]: the batch op "
                                             r"changed its input batch: the input's 'image' tensor was written in place"):
        check_op(build_op("batch", {"op": "halve"}, "batch[0]"))


def test_check_op_asks_for_samples_it_applies_to() -> None:
    with pytest.raises(AssertionError, match=r"\[applied\]: no draw applied the op to the 6 samples in 2 epochs"):
        check_op(build_op("audio", {"op": "to_mono"}, "audio[0]"))  # mono samples: nothing to do
    check_op(build_op("audio", {"op": "to_mono"}, "audio[0]"), require_applied=False)
