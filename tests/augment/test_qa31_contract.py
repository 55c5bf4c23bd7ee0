"""QA round 31 (plugin author), the op contract at run time and in ``check_op``:

* D1: a BatchOp that writes ``label_b`` without ``mix_lam`` (or ``mix_lam`` without ``label_b`` on a labelled
  batch, or a ``mix_lam`` that is no float (B,) tensor) trained on the unmixed labels silently;
* D3: a TextOp whose ``edit`` returned a str spaced out every character of the caption;
* D6: tuple and NaN / infinite params passed the draw's JSON check (a tuple comes back from the log as a list),
  and ``check_op`` blamed the RNG for ``nan != nan``;
* D7: NaN audio made by a plugin op was blamed on the source ("clean the source");
* D8: a batched kernel that changed the time length without updating ``batch.lengths`` was re-padded silently;
* D12: an op written in another section's list got no "it is an audio op" hint.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from mmdata import Sample
from mmdata.augment.audio import AudioOp
from mmdata.augment.base import build_op
from mmdata.augment.contract import OpError
from mmdata.augment.mix import BatchOp
from mmdata.augment.recipe import load_recipe
from mmdata.augment.text import TextOp
from mmdata.errors import RecipeError
from mmdata.testing import check_op, op_samples, restored_registry
from mmdata.types import collate


@pytest.fixture(autouse=True)
def _registry_restored() -> Any:
    with restored_registry():
        yield


# -- D1: label_b and mix_lam go together ---------------------------------------------------------------------
def _mix_op(name: str, write: Any) -> BatchOp:
    def combine(self: Any, batch: Any, params: dict[str, Any]) -> Any:
        out = batch.replace()
        perm = torch.tensor(params["perm"])
        if "audio" in batch:
            out.data["audio"] = 0.5 * batch["audio"] + 0.5 * batch["audio"][perm]
        write(out, batch, perm)
        return out

    type(name.title().replace("_", ""), (BatchOp,), {"__doc__": "A test mix.", "name": name, "modalities": ("audio",),
                                                     "combine": combine})
    return build_op("batch", {"op": name, "p": 1.0}, "batch[0]")


def _label_b_only(out: Any, batch: Any, perm: Any) -> None:
    out.data["label_b"] = batch["label"][perm]


def _lam_only(out: Any, batch: Any, perm: Any) -> None:
    out.data["mix_lam"] = torch.full((len(batch),), 0.5)


def _both(out: Any, batch: Any, perm: Any) -> None:
    if "label" in batch:
        out.data["label_b"] = batch["label"][perm]
    out.data["mix_lam"] = torch.full((len(batch),), 0.5)


def _lam_2d(out: Any, batch: Any, perm: Any) -> None:
    out.data["label_b"] = batch["label"][perm]
    out.data["mix_lam"] = torch.full((len(batch), 1), 0.5)


def _lam_int(out: Any, batch: Any, perm: Any) -> None:
    out.data["label_b"] = batch["label"][perm]
    out.data["mix_lam"] = torch.ones(len(batch), dtype=torch.int64)


def _lam_nan(out: Any, batch: Any, perm: Any) -> None:
    out.data["label_b"] = batch["label"][perm]
    out.data["mix_lam"] = torch.tensor([0.5, 0.5, float("nan"), 0.5, 0.5, 0.5])


def _lam_big(out: Any, batch: Any, perm: Any) -> None:
    out.data["label_b"] = batch["label"][perm]
    out.data["mix_lam"] = torch.tensor([0.5, 1.5, 0.5, 0.5, -0.25, 0.5])


@pytest.mark.parametrize(("name", "write", "says"), [
    ("qa_halfmix", _label_b_only, "writes batch['label_b'] but no batch['mix_lam']"),
    ("qa_lamonly", _lam_only, "writes batch['mix_lam'] but no batch['label_b'] on a batch with labels"),
    ("qa_lamonly2", _lam_only, "write batch['label_b'] whenever the batch has a 'label' (the class loss reads it, "
                               "whatever target this run trains)"),
    ("qa_lamnan", _lam_nan, "batch['mix_lam'] holds nan at row 2 (key 'k2'); expected weights in [0, 1]"),
    ("qa_lambig", _lam_big, "batch['mix_lam'] holds 1.5 at row 1 (key 'k1'); expected weights in [0, 1]"),
    ("qa_lam2d", _lam_2d, "batch['mix_lam'] is torch.float32 (6, 1); expected a float tensor (B,) = (6,)"),
    ("qa_lamint", _lam_int, "batch['mix_lam'] is torch.int64 (6,); expected a float tensor (B,) = (6,)"),
])
def test_a_half_written_mix_target_is_refused_at_run_time_naming_the_op(name: str, write: Any, says: str) -> None:
    op = _mix_op(name, write)
    rec = load_recipe({"seed": 0, "batch": [{"op": name, "p": 1.0}]})
    with pytest.raises(OpError) as exc:
        rec.apply_batch_section(collate(op_samples()), 0)
    msg = str(exc.value)
    assert msg.startswith(f"batch[0] (op batch.{name}, class ") and says in msg, msg
    with pytest.raises(AssertionError, match=r"\[output types\].*" + says.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        check_op(op)


def test_a_whole_mix_target_passes_and_an_unlabelled_batch_needs_no_label_b() -> None:
    op = _mix_op("qa_goodmix", _both)
    check_op(op)
    rec = load_recipe({"seed": 0, "batch": [{"op": "qa_goodmix", "p": 1.0}]})
    out = rec.apply_batch_section(collate([s.without("label") for s in op_samples()]), 0)
    assert "mix_lam" in out and "label_b" not in out
    check_op(build_op("batch", {"op": "mixup", "p": 1.0}, "batch[0]"))  # the built-in as before


# -- D3: edit returns a list of str -------------------------------------------------------------------------
def _text_op(name: str, edit: Any) -> TextOp:
    type(name.title().replace("_", ""), (TextOp,), {"__doc__": "A test text op.", "name": name,
                                                     "edit": lambda self, words, params: edit(words)})
    return build_op("text", {"op": name}, "text[0]")


@pytest.mark.parametrize(("edit", "says"), [
    (lambda words: " ".join(words).upper(), "edit returned a str; expected a sequence of token units (words)"),
    (lambda words: (w for w in words), "edit returned a generator; expected a sequence of token units (words)"),
    (lambda words: [len(w) for w in words], "edit returned a list holding an int (3); expected a sequence of token units"),
    (lambda words: tuple(len(w) for w in words), "edit returned a tuple holding an int (3); expected a sequence of token"),
])
def test_an_edit_that_returns_no_list_of_words_is_refused_on_both_paths(edit: Any, says: str) -> None:
    op = _text_op("qa_upper", edit)
    rec = load_recipe({"text": [{"op": "qa_upper"}]})
    with pytest.raises(OpError) as exc:
        rec.apply_sample(Sample("k", {"text": "the dog on the left"}), epoch=0)
    assert str(exc.value).startswith("text[0] (op text.qa_upper, class ") and "on sample 'k'" in str(exc.value)
    assert says in str(exc.value), str(exc.value)
    with pytest.raises(OpError) as exc:
        rec.apply_batched(collate([Sample("a", {"text": "one two"}), Sample("b", {"text": "the dog on the left"})]), 0)
    assert says in str(exc.value) and "on sample 'a'" in str(exc.value), str(exc.value)
    with pytest.raises(AssertionError, match="expected a sequence of token units"):
        check_op(op)


@pytest.mark.parametrize("edit", [lambda words: [w.upper() for w in words], lambda words: tuple(w.upper() for w in words)])
def test_an_edit_that_returns_a_list_or_tuple_of_str_still_works(edit: Any) -> None:
    op = _text_op("qa_lower", edit)
    rec = load_recipe({"text": [{"op": "qa_lower"}]})
    out = rec.apply_sample(Sample("k", {"text": "the dog, left"}), epoch=0)
    assert out["text"] == "THE DOG, LEFT"
    got = rec.apply_batched(collate([Sample("a", {"text": "one two"}), Sample("b", {"text": "the dog on the left"})]), 0)
    assert got["text"] == ["ONE TWO", "THE DOG ON THE LEFT"]
    check_op(op)


# -- D6: tuples and NaN are no JSON params --------------------------------------------------------------------
def _params_op(name: str, params: dict[str, Any]) -> AudioOp:
    type(name.title().replace("_", ""), (AudioOp,), {
        "__doc__": "A test op.", "name": name,
        "sample_params": lambda self, rng, s: dict(params),
        "transform": lambda self, s, p: s.with_fields(audio=s["audio"] * 2.0)})
    return build_op("audio", {"op": name}, "audio[0]")


@pytest.mark.parametrize(("params", "says"), [
    ({"t": (1, 2)}, "params['t'] is a tuple; use a list"),
    ({"t": [1, (2, 3)]}, "params['t'][1] is a tuple; use a list"),
    ({"g": float("nan")}, "params['g'] is nan: NaN is not JSON"),
    ({"g": [float("-inf")]}, "params['g'][0] is -inf: an infinity is not JSON"),
])
def test_tuple_and_nonfinite_params_are_refused_when_drawn(params: dict[str, Any], says: str) -> None:
    op = _params_op("qa_tuple", params)
    rec = load_recipe({"seed": 0, "audio": [{"op": "qa_tuple"}]})
    with pytest.raises(OpError) as exc:
        rec.apply_sample(Sample("k", {"audio": torch.ones(1, 100)}, sample_rate=16000), epoch=0)
    assert str(exc.value).startswith("audio[0] (op audio.qa_tuple, class ") and says in str(exc.value), str(exc.value)
    with pytest.raises(AssertionError) as exc2:
        check_op(op)
    assert "[params]" in str(exc2.value) and says in str(exc2.value) and "differ" not in str(exc2.value), str(exc2.value)


def test_check_op_names_nan_params_not_the_rng_for_an_op_whose_draw_is_not_checked() -> None:
    op = _params_op("qa_nanp", {"g": float("nan")})
    type(op)._builtin = True  # as an op trusted at draw time: check_op's own comparison sees the NaN
    with pytest.raises(AssertionError) as exc:
        check_op(op)
    assert "NaN is not JSON" in str(exc.value) and "differ" not in str(exc.value), str(exc.value)


# -- D7: NaN audio made by an op names the op -----------------------------------------------------------------
def test_nonfinite_audio_from_a_plugin_op_names_the_op_and_the_sample() -> None:
    class NanAudio(AudioOp):
        """Writes a NaN."""

        name = "qa_nanaudio"

        def sample_params(self, rng: Any, sample: Any) -> dict[str, Any]:
            return {}

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            x = sample["audio"].clone()
            x[..., 3] = float("nan")
            return sample.with_fields(audio=x)

        def transform_batch(self, batch: Any, params: Any) -> Any:
            x = batch["audio"].clone()
            x[..., 3] = float("inf")
            return batch.replace(audio=x)

    rec = load_recipe({"audio": [{"op": "qa_nanaudio"}]})
    with pytest.raises(OpError) as exc:
        rec.apply_sample(Sample("k", {"audio": torch.zeros(1, 50)}, sample_rate=16000), epoch=0)
    msg = str(exc.value)
    assert msg.startswith("audio[0] (op audio.qa_nanaudio, class ") and "on sample 'k'" in msg, msg
    assert "returned audio holding 1 NaN / infinite sample of 50 (the first at channel 0, time 3)" in msg, msg
    assert "clean the source" not in msg, msg
    batch = collate([Sample("a", {"audio": torch.zeros(1, 50)}), Sample("b", {"label": 1}),
                     Sample("c", {"audio": torch.zeros(1, 40)})])
    batch.sample_rate = 16000
    with pytest.raises(OpError) as exc:
        rec.apply_batched(batch, 0)
    msg = str(exc.value)
    assert "audio[0] (op audio.qa_nanaudio" in msg and "samples 'a', 'c'" in msg and "clean the source" not in msg, msg
    assert "padding" not in msg, msg
    with pytest.raises(AssertionError, match="NaN / infinite"):
        check_op(build_op("audio", {"op": "qa_nanaudio"}, "audio[0]"))


# -- D8: a batched kernel that changes the length updates batch.lengths ---------------------------------------
def _len_op(name: str, width: int, update: bool) -> AudioOp:
    def resize(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] >= width:
            return x[..., :width].clone()
        return torch.nn.functional.pad(x, (0, width - x.shape[-1]))

    def transform_batch(self: Any, b: Any, p: Any) -> Any:
        out = b.replace(audio=resize(b["audio"]))
        if update:
            out.lengths["audio"] = torch.where(b.present["audio"], torch.full_like(b.lengths["audio"], width), 0)
        return out

    type(name.title().replace("_", ""), (AudioOp,), {
        "__doc__": "A test op.", "name": name, "sample_params": lambda self, rng, s: {},
        "transform": lambda self, s, p: s.with_fields(audio=resize(s["audio"])), "transform_batch": transform_batch})
    return build_op("audio", {"op": name}, "audio[0]")


@pytest.mark.parametrize(("width", "says"), [
    (100, "batch['audio'] is 100 wide but batch.lengths['audio'] holds 2000 (row 0, key 'a')"),
    (3000, "batch['audio'] is 3000 wide but batch.lengths['audio'] holds 2000 at most"),
])
def test_a_batched_kernel_that_changes_the_length_without_lengths_is_refused(width: int, says: str) -> None:
    op = _len_op("qa_trim", width, update=False)
    rec = load_recipe({"audio": [{"op": "qa_trim"}]})
    for rows in ([("a", 2000), ("b", 2000)], [("a", 2000), ("x", 0), ("b", 1500)]):  # the whole batch; the applied rows
        batch = collate([Sample(k, {"audio": torch.ones(1, n)} if n else {"label": 0}) for k, n in rows])
        batch.sample_rate = 16000
        with pytest.raises(OpError) as exc:
            rec.apply_batched(batch, 0)
        msg = str(exc.value)
        assert msg.startswith("audio[0] (op audio.qa_trim, class ") and says in msg, msg
        assert "update batch.lengths['audio'] when the kernel changes the length" in msg, msg
    with pytest.raises(AssertionError, match=r"update batch.lengths\['audio'\]"):
        check_op(op)


def test_a_batched_kernel_that_updates_the_lengths_passes() -> None:
    op = _len_op("qa_trim_ok", 100, update=True)
    check_op(op)
    rec = load_recipe({"audio": [{"op": "qa_trim_ok"}]})
    batch = collate([Sample("a", {"audio": torch.ones(1, 2000)}), Sample("x", {"label": 0}),
                     Sample("b", {"audio": torch.ones(1, 1500)})])
    batch.sample_rate = 16000
    out = rec.apply_batched(batch, 0)
    assert tuple(out["audio"].shape) == (3, 1, 100) and out.lengths["audio"].tolist() == [100, 0, 100]


# -- D12: an op of another section says where it goes ---------------------------------------------------------
def _error(section: str, name: str) -> str:
    with pytest.raises(RecipeError) as exc:
        load_recipe({section: [{"op": name}]})
    return str(exc.value)


@pytest.mark.parametrize(("section", "name", "says"), [
    ("image", "gain", "'gain' is an audio op (put it in the audio: section)"),
    ("audio", "hflip", "'hflip' is an image op (put it in the image: section)"),
    ("image", "mixup", "'mixup' is a batch op (put it in the batch: section)"),
    ("text", "random_crop", "'random_crop' is an image and audio op (put it in the image: or audio: section)"),
    ("image", "Gain", "'Gain' is spelt 'gain', an audio op (put it in the audio: section)"),
    ("batch", "one_of", "'one_of' is an image, audio, text and sample op (put it in the image:, audio:, text: or sample: "
                        "section)"),
])
def test_an_op_of_another_section_says_where_it_goes(section: str, name: str, says: str) -> None:
    msg = _error(section, name)
    assert msg.startswith(f"{section}[0]: unknown {section} op {name!r}; {says}; allowed: "), msg


def test_a_plugin_op_in_the_wrong_section_says_where_it_goes() -> None:
    class QaGain(AudioOp):
        """A plugin's gain."""

        name = "qa_gain"

    assert "'qa_gain' is an audio op (put it in the audio: section)" in _error("image", "qa_gain")
    # the foreign names and the section's own suggestions as before
    assert "is 'noise' here, an audio op" in _error("image", "AddGaussianSNR")
    assert "did you mean 'hflip'" in _error("image", "hflp") and "section)" not in _error("image", "hflp")


# -- review of the fixes above ---------------------------------------------------------------------------------
class _PeakNorm(AudioOp):
    """Peak-normalises in place: NaN on a silent clip (0 / 0)."""

    name = ""

    def sample_params(self, rng: Any, sample: Any) -> dict[str, Any]:
        return {}

    def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
        x = sample["audio"]
        x.div_(x.abs().amax())  # into the private copy the recipe hands an op defined outside mmdata
        return sample if params.get("same") is None else sample.with_fields(audio=x)

    def transform_batch(self, batch: Any, params: Any) -> Any:
        x = batch["audio"]
        x.div_(x.abs().amax(dim=(1, 2), keepdim=True))
        return batch


def _silent_batch() -> Any:
    batch = collate([Sample("a", {"audio": torch.full((1, 60), 0.5)}), Sample("b", {"audio": torch.zeros(1, 50)})])
    batch.sample_rate = 16000
    return batch


def test_nan_an_op_writes_into_its_private_copy_is_the_ops_per_sample_and_batched() -> None:
    class QaPeak(_PeakNorm):
        name = "qa_peak"

    rec = load_recipe({"audio": [{"op": "qa_peak"}]})
    src = Sample("silent", {"audio": torch.zeros(1, 100)}, sample_rate=16000)
    for same in (None, True):
        with pytest.raises(OpError) as exc:
            QaPeak().apply(src, {"applied": True, "same": same})
        msg = str(exc.value)
        assert "(op audio.qa_peak, class " in msg and "on sample 'silent'" in msg, msg
        assert "returned audio holding 100 NaN / infinite samples of 100" in msg and "clean the source" not in msg, msg
    with pytest.raises(OpError, match=r"audio\[0\] \(op audio.qa_peak.*returned audio holding 100 NaN"):
        rec.apply_sample(src, epoch=0)
    assert not src["audio"].any()  # the caller's clip as it was
    with pytest.raises(OpError) as exc:
        rec.apply_batched(_silent_batch(), 0)
    msg = str(exc.value)
    assert "audio[0] (op audio.qa_peak" in msg and "holding 60 NaN / infinite samples" in msg, msg
    assert "in the rows of sample 'b'" in msg and "clean the source" not in msg and "padding" not in msg, msg


def test_copy_input_false_skips_the_nan_check_and_check_op_still_makes_it() -> None:
    class QaPeakTrusted(_PeakNorm):
        name = "qa_peak_trusted"
        copy_input = False

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            x = sample["audio"]
            return sample.with_fields(audio=x / x.abs().amax())

        def transform_batch(self, batch: Any, params: Any) -> Any:
            x = batch["audio"]
            return batch.replace(audio=x / x.abs().amax(dim=(1, 2), keepdim=True))

    rec = load_recipe({"audio": [{"op": "qa_peak_trusted"}]})
    out = rec.apply_sample(Sample("silent", {"audio": torch.zeros(1, 100)}, sample_rate=16000), epoch=0)
    assert out["audio"].isnan().all()  # the class opted out: no pass over its output
    assert rec.apply_batched(_silent_batch(), 0)["audio"][1].isnan().any()

    class QaNanTrusted(_PeakNorm):
        name = "qa_nan_trusted"
        copy_input = False

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample.with_fields(audio=sample["audio"] / 0.0)

        def transform_batch(self, batch: Any, params: Any) -> Any:
            return batch.replace(audio=batch["audio"] / 0.0)

    with pytest.raises(AssertionError, match="NaN / infinite"):  # check_op checks what the run no longer does
        check_op(build_op("audio", {"op": "qa_nan_trusted"}, "audio[0]"))

    class QaBatchNanTrusted(QaNanTrusted):
        name = "qa_batchnan_trusted"

        def transform(self, sample: Sample, params: dict[str, Any]) -> Sample:
            return sample.with_fields(audio=sample["audio"] * 0.5)

        def transform_batch(self, batch: Any, params: Any) -> Any:
            x = batch["audio"].clone()
            x[..., 0] = float("inf")
            return batch.replace(audio=x)

    with pytest.raises(AssertionError, match=r"\[batched == per-sample \(CPU kernels\)\].*NaN / infinite"):
        check_op(build_op("audio", {"op": "qa_batchnan_trusted"}, "audio[0]"))


def test_nan_only_in_the_padding_says_so() -> None:
    class QaPadNan(_PeakNorm):
        name = "qa_padnan"

        def transform_batch(self, batch: Any, params: Any) -> Any:
            x = batch["audio"].clone()
            x[1, :, 50:] = float("nan")  # row 'b' holds 50 samples: all past its length
            return batch.replace(audio=x)

    with pytest.raises(OpError) as exc:
        load_recipe({"audio": [{"op": "qa_padnan"}]}).apply_batched(_silent_batch(), 0)
    msg = str(exc.value)
    assert "holding 10 NaN / infinite samples of 120" in msg and "in the rows of sample 'b'" in msg, msg
    assert "all past batch.lengths['audio'] (the padding, which a model reading the whole row sees)" in msg, msg


@pytest.mark.parametrize(("spec", "says"), [
    ({"image": [{"op": "pad_trim", "length": 10}]}, "'pad_trim' is an audio op (put it in normalize's audio: section)"),
    ({"image": [{"op": "gain"}]}, "'gain' is an audio op that draws random params (put it in the audio: section, "
                                  "outside normalize: normalize takes deterministic ops only)"),
    ({"image": [{"op": "Pad_Trim", "length": 10}]}, "'Pad_Trim' is spelt 'pad_trim', an audio op (put it in normalize's "
                                                    "audio: section)"),
])
def test_an_op_of_another_section_under_normalize_says_where_it_goes(spec: dict[str, Any], says: str) -> None:
    with pytest.raises(RecipeError) as exc:
        load_recipe({"normalize": spec})
    assert str(exc.value).startswith("normalize.image[0]: unknown image op ") and f"; {says}; allowed: " in str(exc.value), \
        str(exc.value)


def test_nan_a_mixing_op_writes_into_its_input_batch_is_the_ops() -> None:
    def combine(self: Any, batch: Any, params: dict[str, Any]) -> Any:
        x = batch["audio"]
        x.div_(x.abs().amax(dim=(1, 2), keepdim=True))  # peak-normalise in place: a silent row turns NaN
        out = batch.replace()
        out.data["label_b"] = batch["label"][torch.tensor(params["perm"])]
        out.data["mix_lam"] = torch.full((len(batch),), 1.0)
        return out

    type("QaPeakMix", (BatchOp,), {"__doc__": "A test mix.", "name": "qa_peakmix", "modalities": ("audio",),
                                   "combine": combine})
    rec = load_recipe({"seed": 0, "batch": [{"op": "qa_peakmix", "p": 1.0}]})
    batch = collate([Sample("a", {"audio": torch.full((1, 60), 0.5), "label": 0}),
                     Sample("b", {"audio": torch.zeros(1, 50), "label": 1})])
    batch.sample_rate = 16000
    with pytest.raises(OpError) as exc:
        rec.apply_batch_section(batch, 0)
    msg = str(exc.value)
    assert msg.startswith("batch[0] (op batch.qa_peakmix, class ") and "NaN" in msg and "clean the source" not in msg, msg
