"""Writing your own op (docs/extending.md): errors inside an op name the recipe step, the op and the sample;
what a plugin op returns and draws is checked; an op that writes into its input cannot corrupt cached
samples; op classes are checked when they are defined; registration survives reloads and names both
classes on a clash; every code block of docs/extending.md runs."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import mmdata
from mmdata import Sample
from mmdata.augment.audio import AudioOp
from mmdata.augment.base import Op, Param, registry
from mmdata.augment.image import ImageOp
from mmdata.augment.recipe import Recipe, load_recipe
from mmdata.errors import RecipeError
from mmdata.testing import make_sample_folder, restored_registry

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "extending.md"


@pytest.fixture(autouse=True)
def _registry_restored() -> Any:
    """Ops defined by a test leave the registry as it was (docs/ops.md is generated from it)."""
    with restored_registry():
        yield


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ext")
    mmdata.shard(make_sample_folder(root / "raw", n=8), root / "ds", maxcount=4, progress=False)
    return root / "ds"


def _keys(path: Path) -> set[str]:
    return {s.key for s in mmdata.open_dataset(path)}


def _sample(key: str = "k0") -> Sample:
    g = torch.Generator().manual_seed(0)
    return Sample(key, {"image": torch.randint(0, 256, (3, 24, 32), generator=g, dtype=torch.uint8),
                        "audio": torch.randn(1, 800, generator=g) * 0.3, "text": "a small dog on the left", "label": 1},
                  sample_rate=8000)


def _text(exc: BaseException) -> str:
    """What a user sees: the message, the chained traceback and the notes."""
    return "".join(traceback.format_exception(exc))


def _kaboom() -> type[Op]:
    class Kaboom(ImageOp):
        """Fails on every sample."""

        section, name = "image", "kaboom"

        def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
            raise ValueError("kaboom")

    return Kaboom


# -- 4. errors inside an op name the recipe step, the op and the sample ----------------------------------------
@pytest.mark.parametrize("workers", [0, 2])
def test_error_in_op_names_step_op_and_sample_from_the_loader(ds: Path, workers: int) -> None:
    _kaboom()
    rec = {"image": [{"op": "hflip", "p": 0.5}, {"op": "kaboom"}]}
    with pytest.raises(ValueError, match="kaboom") as info:
        for _ in mmdata.loader(ds, 4, recipe=rec, num_workers=workers):
            pass
    text = _text(info.value)
    assert "in recipe step image[1] (op image.kaboom, class " in text and ".Kaboom)" in text, text
    assert any(f"on sample {k!r}" in text for k in _keys(ds)), text


def test_error_in_a_batched_kernel_names_the_op_and_the_rows(ds: Path) -> None:
    class Fails(AudioOp):
        """A batched kernel that fails."""

        section, name = "audio", "fails_batched"

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample.with_fields(audio=sample["audio"] * 0.5)

        def transform_batch(self, batch: Any, params: Any) -> Any:
            raise ValueError("kaboom")

    with pytest.raises(ValueError, match="kaboom") as info:
        next(iter(mmdata.loader(ds, 4, recipe={"audio": [{"op": "fails_batched"}]}, augment_on="device")))
    assert re.search(r"in recipe step audio\[0\] \(op audio\.fails_batched, class .*Fails\) on a batch of 4 samples \('",
                     _text(info.value)), _text(info.value)


def test_error_in_op_names_step_op_and_sample_in_augment_dataset_and_preview(ds: Path, tmp_path: Path) -> None:
    from mmdata.augment.offline import augment_dataset
    from mmdata.augment.preview import preview

    class Boom(Op):
        """Fails on every sample."""

        section, name = "sample", "boom"

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            raise ValueError("kaboom")

    rec = {"sample": [{"op": "boom"}]}
    with pytest.raises(ValueError, match="kaboom") as info:
        augment_dataset(ds, tmp_path / "out", rec, progress=False)
    assert "in recipe step sample[0] (op sample.boom, class " in _text(info.value)
    assert re.search(r"on sample '[^']+_aug0'", _text(info.value)), _text(info.value)
    with pytest.raises(ValueError, match="kaboom") as info:
        preview(ds, rec, tmp_path / "p.png", n=2, variants=1)
    assert "in recipe step sample[0] (op sample.boom" in _text(info.value)
    assert any(f"on sample {k!r}" in _text(info.value) for k in _keys(ds))


def test_error_inside_a_composite_names_the_child() -> None:
    _kaboom()
    rec = load_recipe({"image": [{"op": "one_of", "ops": [{"op": "kaboom"}]}]})
    with pytest.raises(ValueError, match="kaboom") as info:
        rec.apply_sample(_sample("x7"))
    notes = info.value.__notes__
    assert len(notes) == 1 and "image[0].ops[0] (op image.kaboom" in notes[0] and "sample 'x7'" in notes[0], notes


# -- 4, 5. what a plugin op returns and draws is checked where it runs ---------------------------------------
BAD_RETURNS = {
    "dict": (lambda s: dict(s.fields), r"transform returned dict, expected an mmdata.Sample"),
    "None": (lambda s: None, r"transform returned NoneType, expected an mmdata.Sample"),
    "text int": (lambda s: s.with_fields(text=3), r"'text' is a int \(3\); expected a str"),
    "float image": (lambda s: s.with_fields(image=s["image"].float() / 255), r"'image' has dtype torch.float32; expected a torch.uint8"),
    "HWC numpy image": (lambda s: s.with_fields(image=s["image"].permute(1, 2, 0).numpy()), r"'image' is a numpy.ndarray"),
    "HWC tensor image": (lambda s: s.with_fields(image=s["image"].permute(1, 2, 0).contiguous()), r"24 channels.*channels last"),
    "2-D image": (lambda s: s.with_fields(image=s["image"][0]), r"'image' has shape \(24, 32\); expected a torch.uint8 tensor \(C, H, W\)"),
    "int16 audio": (lambda s: s.with_fields(audio=(s["audio"] * 32767).to(torch.int16)), r"'audio' has dtype torch.int16"),
    "changed key": (lambda s: Sample(s.key + "_x", s.fields, s.sample_rate, s.meta), r"changed the sample key to 'k3_x'"),
    "rate gone": (lambda s: Sample(s.key, {**s.fields, "audio": s["audio"] * 1.0}, None, s.meta), r"sample_rate is None"),
}


@pytest.mark.parametrize("case", list(BAD_RETURNS))
def test_bad_returns_are_named_where_the_op_runs(case: str) -> None:
    fn, match = BAD_RETURNS[case]

    class BadReturn(Op):
        """Returns what the loader cannot batch."""

        section, name = "sample", "bad_return"

        def transform(self, sample: Sample, params: dict[str, Any]) -> Any:
            return fn(sample)

    rec = load_recipe({"sample": [{"op": "bad_return"}]})
    with pytest.raises(RecipeError, match=match) as info:
        rec.apply_sample(_sample("k3"))
    assert type(info.value).__name__ == "OpError"
    assert str(info.value).startswith("sample[0] (op sample.bad_return, class ") and "on sample 'k3'" in str(info.value)


def test_a_float_image_never_reaches_a_batch(ds: Path) -> None:
    class ToFloat(Op):
        """Scales to [0, 1] (a torchvision habit)."""

        section, name, field = "image", "to_float", "image"

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample.with_fields(image=sample["image"].float() / 255)

    with pytest.raises(RecipeError, match=r"image\[0\] \(op image.to_float.*'image' has dtype torch.float32"):
        next(iter(mmdata.loader(ds, 4, recipe={"image": [{"op": "to_float"}]})))


def test_an_image_op_that_overrides_transform_runs() -> None:
    """A run of image ops calls kernels; an ImageOp that implements transform instead runs on its own."""
    class Shift(ImageOp):
        """Rolls the image right by one column, on the CHW tensor."""

        section, name = "image", "shift_chw"

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample.with_fields(image=sample["image"].roll(1, dims=-1))

    s = _sample()
    out = load_recipe({"image": [{"op": "hflip"}, {"op": "shift_chw"}, {"op": "vflip"}]}).apply_sample(s)
    assert torch.equal(out["image"], s["image"].flip(-1).roll(1, dims=-1).flip(-2))


def test_an_image_kernel_returning_float_or_other_channels_is_named() -> None:
    class Half(ImageOp):
        """Returns floats."""

        section, name = "image", "half"

        def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
            return arr / 2.0

    class Gray(ImageOp):
        """Drops channels without saying so."""

        section, name = "image", "gray_silently"

        def kernel(self, arr: np.ndarray, params: dict[str, Any]) -> np.ndarray:
            return arr[..., :1]

    for name, match in (("half", r"kernel returned a float64 array; expected uint8"),
                        ("gray_silently", r"kernel returned 1 channels .*out_channels says 3")):
        rec = load_recipe({"image": [{"op": "hflip", "p": 0.0}, {"op": name}]})
        with pytest.raises(RecipeError, match=match):
            rec.apply_sample(_sample())
        with pytest.raises(RecipeError, match=match):  # outside a run of image ops too (replay, per-row fallback)
            rec.steps[1].op.apply(_sample(), {"applied": True})


@pytest.mark.parametrize("params,match", [
    ({"shift": np.float32(0.5)}, r"params\['shift'\] is a numpy.float32, not JSON"),
    ({"mask": np.zeros(3)}, r"params\['mask'\] is a numpy.ndarray, not JSON"),
    ({"at": [1, np.int64(2)]}, r"params\['at'\]\[1\] is a numpy.int64"),
    ([1, 2], r"sample_params returned list; expected a dict"),
])
def test_params_that_cannot_go_to_the_log_are_refused_when_drawn(params: Any, match: str) -> None:
    class NumpyParams(AudioOp):
        """Draws numpy values."""

        section, name = "audio", "numpy_params"

        def sample_params(self, rng: np.random.Generator, sample: Any) -> Any:
            return params

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample

    rec = load_recipe({"audio": [{"op": "numpy_params"}]})
    with pytest.raises(RecipeError, match=match) as info:
        rec.apply_sample(_sample("k5"))  # not an epoch later, when save_log writes the replay log
    assert "audio[0] (op audio.numpy_params" in str(info.value) and "sample 'k5'" in str(info.value)


# -- 3. an op that writes into its input cannot corrupt cached samples -------------------------------------
def _doubler(how: str, copies: bool | None = None) -> type[Op]:
    class DoubleInPlace(AudioOp):
        """Doubles the waveform in place (the bug)."""

        section, name = "audio", "double_in_place"
        copy_input = copies

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            x = sample["audio"]
            if how == "torch":
                x.mul_(2.0)
            else:  # a numpy view: torch's version counter does not see it
                a = x.numpy()
                a *= 2.0
            return sample

    return DoubleInPlace


@pytest.mark.parametrize("how", ["torch", "numpy view"])
def test_in_place_op_does_not_corrupt_cached_samples(ds: Path, how: str) -> None:
    from mmdata.augment.loader import clear_decoded

    _doubler(how)
    clear_decoded()
    L = mmdata.loader(ds, 8, recipe={"audio": [{"op": "double_in_place"}]}, cache=True, shuffle=False)
    epochs = [next(iter(L))["audio"].clone() for _ in range(3)]
    plain = next(iter(mmdata.loader(ds, 8, shuffle=False)))["audio"]
    for e, got in enumerate(epochs):
        assert torch.equal(got, plain * 2), f"epoch {e}: the cached audio was doubled {e + 1} times"
    clear_decoded()


def test_in_place_op_that_says_it_copies_nothing_is_caught() -> None:
    _doubler("torch", copies=False)
    s = _sample("k2")
    before = s["audio"].clone()
    with pytest.raises(RecipeError, match=r"audio\[0\] \(op audio.double_in_place.*sample 'k2': transform wrote into the "
                                          r"input's 'audio' tensor in place"):
        load_recipe({"audio": [{"op": "double_in_place"}]}).apply_sample(s)
    assert not torch.equal(s["audio"], before)  # it did write: the check says so rather than pretending


def test_builtin_ops_are_not_copied_or_checked() -> None:
    """The built-in path pays nothing: no copy, no return check (tests/augment/test_ops.py checks them)."""
    from mmdata.augment.contract import checked_transform

    for cls in registry().values():
        assert cls._builtin and not cls._copies, cls
    import mmdata.augment.contract as contract

    calls = []
    orig = contract.checked_transform
    contract.checked_transform = lambda *a: calls.append(a) or orig(*a)  # type: ignore[assignment]
    try:
        load_recipe({"audio": [{"op": "gain"}], "image": [{"op": "hflip"}]}).apply_sample(_sample())
    finally:
        contract.checked_transform = orig  # type: ignore[assignment]
    assert calls == [] and checked_transform is orig


# -- 6. op classes are checked when they are defined ---------------------------------------------------------
@pytest.mark.parametrize("body,match", [
    ({"PARAMS": {"n": Param("int", 500, 0, 10)}}, r"Bad.PARAMS\['n'\].default: 500 is out of range; allowed \[0, 10\]"),
    ({"PARAMS": {"p": Param("float", 0.5, 0.0, 1.0)}}, r"Bad.PARAMS\['p'\]: 'p' is reserved"),
    ({"PARAMS": {"id": Param("str", "a")}}, r"Bad.PARAMS\['id'\]: 'id' is reserved"),
    ({"PARAMS": {"where": Param("str", "a")}}, r"'where' is reserved"),
    ({"PARAMS": {"name": Param("str", "a")}}, r"Bad.PARAMS\['name'\]: 'name' is reserved .*op.name would not read the argument"),
    ({"PARAMS": {"field": Param("str", "a")}}, r"'field' is reserved"),
    ({"PARAMS": {"section": Param("str", "a")}}, r"'section' is reserved"),
    ({"PARAMS": {"transform": Param("bool", True)}}, r"'transform' is reserved"),
    ({"PARAMS": {"sigma": Param("flaot", 1.0)}}, r"Bad.PARAMS\['sigma'\]: unknown kind 'flaot'; did you mean 'float'"),
    ({"PARAMS": {"sigma": 1.0}}, r"Bad.PARAMS\['sigma'\]: expected a Param"),
    ({"PARAMS": {"size": Param("size", 32, 1, 64)}}, r"write it in canonical form, \[32, 32\]"),
    ({"PARAMS": {"mode": Param("str", "fast", choices=("slow", "exact"))}}, r"'fast' is not allowed"),
    ({"section": "video"}, r"Bad: section 'video' is not one of \['image', 'audio', 'text', 'sample', 'batch'\]"),
    ({"section": ""}, r"Bad: name 'bad' without a section"),
    ({"section": "batch"}, r"Bad: section 'batch' takes batch ops only"),
])
def test_op_class_is_checked_when_defined(body: dict[str, Any], match: str) -> None:
    with pytest.raises(TypeError, match=match):
        type("Bad", (Op,), {"section": "sample", "name": "bad", "__doc__": "x", **body})
    assert ("sample", "bad") not in registry()


def test_init_with_arguments_to_dict_would_drop_is_refused() -> None:
    with pytest.raises(TypeError, match=r"Blur.__init__ takes \['sigma'\], which are not in PARAMS: to_dict\(\) .* would drop them"):
        class Blur(ImageOp):
            """Keeps sigma outside PARAMS."""

            section, name = "image", "blur_init"

            def __init__(self, sigma: float = 1.0, **kw: Any) -> None:
                super().__init__(**kw)
                self.sigma = sigma
    # PARAMS is the way: the argument round-trips
    class Blur2(ImageOp):
        """sigma in PARAMS."""

        section, name = "image", "blur_params"
        PARAMS = {"sigma": Param("float", 1.0, 0.0, 10.0, doc="blur")}

        def __init__(self, sigma: float = 1.0, **kw: Any) -> None:
            super().__init__(sigma=sigma, **kw)

    op = Blur2(sigma=2.0)
    assert load_recipe({"image": [op.to_dict()]}).steps[0].op.sigma == 2.0


def test_batch_op_outside_the_batch_section_is_refused() -> None:
    from mmdata.augment.mix import BatchOp

    with pytest.raises(TypeError, match=r"a BatchOp mixes batches and runs only in section 'batch', not 'image'"):
        type("Mixer", (BatchOp,), {"section": "image", "name": "mixer"})


# -- 8. the batch section takes batch ops only -------------------------------------------------------------
def test_a_hand_built_recipe_with_a_per_sample_op_in_batch_is_refused() -> None:
    op = load_recipe({"sample": [{"op": "modality_dropout"}]}).steps[0].op
    with pytest.raises(RecipeError, match=r"sample\[0\]: sample.modality_dropout \(ModalityDropout\) is not a batch op"):
        Recipe(0, {"batch": [op]})


# -- 7. registration ---------------------------------------------------------------------------------------
MODULE = '''
from mmdata.augment.image import ImageOp


class Invert(ImageOp):
    """Invert the pixels."""

    section, name = "image", "invert"
    VERSION = {version}

    def kernel(self, arr, params):
        return 255 - arr
'''


def test_reload_replaces_the_op(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "myops_reload.py").write_text(MODULE.format(version=1))
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("myops_reload")
    assert registry()[("image", "invert")].VERSION == 1
    (tmp_path / "myops_reload.py").write_text(MODULE.format(version=2))
    importlib.invalidate_caches()
    importlib.reload(mod)
    assert registry()[("image", "invert")] is mod.Invert and mod.Invert.VERSION == 2
    sys.modules.pop("myops_reload", None)


def test_a_notebook_cell_run_twice_replaces_the_op() -> None:
    for version in (1, 2):
        ns: dict[str, Any] = {"__name__": "__main__"}
        exec(MODULE.format(version=version), ns)  # noqa: S102 - what a notebook does with a cell
    assert registry()[("image", "invert")].VERSION == 2


def test_a_clash_names_both_classes_and_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ns: dict[str, Any] = {"__name__": "labmate_ops"}
    exec(MODULE.format(version=1), ns)  # noqa: S102
    with pytest.raises(RuntimeError, match=r"image.invert registered twice: .*mine_ops.Invert \(module mine_ops\) and "
                                           r"labmate_ops.Invert \(module labmate_ops\); set another name = \"...\" on Invert"):
        exec(MODULE.format(version=2), {"__name__": "mine_ops"})  # noqa: S102
    with pytest.raises(RuntimeError, match=r"image.hflip registered twice: .*Flip2 .* and mmdata.augment.image.HFlip"):
        type("Flip2", (ImageOp,), {"section": "image", "name": "hflip"})


def test_a_subclass_without_its_own_name_is_told_to_set_one() -> None:
    ns: dict[str, Any] = {"__name__": "labmate_ops"}
    exec(MODULE.format(version=1), ns)  # noqa: S102
    with pytest.raises(RuntimeError, match=r"image.invert registered twice: labmate_ops.InvertV2 inherits name = 'invert' "
                                           r"from labmate_ops.Invert .*give the subclass its own name = \"...\""):
        exec("class InvertV2(Invert):\n    pass\n", ns)  # noqa: S102
    exec("class InvertBase(Invert):\n    name = ''\n", ns)  # noqa: S102 - a base class that is no op itself


def test_builtins_register_before_a_clashing_plugin_op() -> None:
    """An op named like a built-in, defined before that built-in's module was imported, is the one refused;
    the built-in module still imports."""
    code = textwrap.dedent('''
        import sys
        from mmdata.augment.base import Op, registry
        assert "mmdata.augment.text" not in sys.modules
        try:
            class MyTypo(Op):
                """A typo op of my own."""
                section, name = "text", "typo"
        except RuntimeError as exc:
            print("refused:", exc)
        import mmdata.augment.text
        print("registered:", registry()[("text", "typo")].__module__)
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "refused: augmentation op text.typo registered twice: __main__.MyTypo (module __main__) and " \
           "mmdata.augment.text.Typo (module mmdata.augment.text)" in out.stdout, out.stdout
    assert "registered: mmdata.augment.text" in out.stdout


# -- 1. docs/extending.md: every code block runs -----------------------------------------------------------
def _blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_every_code_block_of_the_extending_docs_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _blocks()
    assert len(blocks) >= 5, "docs/extending.md has its worked examples"
    monkeypatch.chdir(tmp_path)
    ns: dict[str, Any] = {"__name__": "extending_md"}
    for j, code in enumerate(blocks):
        try:
            exec(compile(code, f"docs/extending.md block {j + 1}", "exec"), ns)  # noqa: S102
        except Exception as exc:
            raise AssertionError(f"docs/extending.md code block {j + 1} fails:\n{code}") from exc


def test_the_extending_docs_cover_the_contract() -> None:
    text = DOC.read_text(encoding="utf-8")
    for word in ("ImageOp", "AudioOp", "TextOp", "BatchOp", "Param", "PARAMS", "sample_params", "transform",
                 "transform_batch", "masked", "deterministic", "section", "never mutate", "check_op", "--plugin",
                 "copy_input", "JSON", "uint8", "float32"):
        assert word.lower() in text.lower(), word
