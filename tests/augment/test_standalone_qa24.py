"""The augment package used on one's own batches, without mmdata's loader (QA24 persona D): each test
reproduces a defect of that pass.

* the batched path keeps the tokenizer the batch was collated with (text ops, mixgen, the per-sample
  fallback of a mixed-size batch): the same tokens as ``apply_sample`` then ``collate(tokenizer=...)``;
* mixgen treats an empty / whitespace-only caption as absent: not mixed, label not mixed;
* a None field is absent, as collate takes it; a text that is no str is refused at entry, naming the sample;
* ``apply_batched`` on a recipe with a ``batch:`` section warns, naming ``apply_batch_section`` (or runs it,
  ``mix=True``);
* a batch without presence masks, a numpy field in a batch, a dict for a Sample: refused with a guide;
* the hint for a float image holding 0-255 values does not scale it by 255 again;
* mixup of images of several sizes warns (once per recipe) from ``apply_batch_section`` itself.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from mmdata import Batch, Sample, collate
from mmdata.augment.contract import InputError, image_problem
from mmdata.augment.recipe import load_recipe
from mmdata.text import Tokenizer

LONG = " ".join(f"w{i}" for i in range(30))


def _img(h: int, w: int, v: int = 0) -> torch.Tensor:
    return torch.full((3, h, w), v, dtype=torch.uint8)


def _same_tokens(got: Batch, want: Batch) -> None:
    assert got["text"] == want["text"]
    assert torch.equal(got["tokens"], want["tokens"]), (got["tokens"], want["tokens"])
    assert got.lengths["tokens"].tolist() == want.lengths["tokens"].tolist()


# -- 1: the batched path keeps collate's tokenizer ----------------------------------------------------------


@pytest.mark.parametrize("section, op", [
    ("image", {"op": "rotate", "p": 1.0}),  # mixed sizes: the per-sample fallback re-collates
    ("text", {"op": "typo", "p": 1.0, "p_word": 1.0}),
    ("text", {"op": "word_delete", "p": 1.0, "p_word": 0.3}),  # long rows: refilled past the window
    ("text", {"op": "word_crop", "p": 1.0}),
    ("text", {"op": "token_mask", "p": 1.0}),
    ("sample", {"op": "consistent_hflip", "p": 1.0}),
])
def test_batched_ops_keep_the_collate_tokenizer(section: str, op: dict) -> None:
    tok = Tokenizer(vocab_size=100, max_len=4)
    ss = [Sample("a", {"image": _img(8, 8), "text": "the quick left brown fox jumps over the lazy dog"}),
          Sample("b", {"image": _img(10, 6), "text": LONG}),
          Sample("c", {"image": _img(8, 8), "text": "hello left again"})]
    rec = load_recipe({"seed": 0, section: [op]})
    got = rec.apply_batched(collate(ss, tokenizer=tok), 0)
    want = collate([rec.apply_sample(s, 0) for s in ss], tokenizer=tok)
    _same_tokens(got, want)
    assert int(got["tokens"].max()) < tok.vocab_size and got["tokens"].shape[1] <= tok.max_len
    torch.nn.Embedding(tok.vocab_size, 4)(got["tokens"])  # the user's vocabulary holds every id


def test_mixgen_keeps_the_collate_tokenizer() -> None:
    tok = Tokenizer(vocab_size=50, max_len=3)
    ss = [Sample(f"k{i}", {"text": f"caption number {i} with words", "label": i}) for i in range(4)]
    out = load_recipe({"seed": 0, "batch": [{"op": "mixgen", "p": 1}]}).apply_batch_section(collate(ss, tokenizer=tok), 0)
    _same_tokens(out, collate([Sample(k, {"text": t}) for k, t in zip(out.keys, out["text"])], tokenizer=tok))


def test_a_tokenizer_of_another_kind_re_encodes_the_edited_texts() -> None:
    """A tokenizer that is no mmdata Tokenizer (ids not one per unit): the edited strings are encoded with it."""

    class Chars:
        def encode_batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
            n = max(1, max(len(t) for t in texts))
            ids = torch.zeros(len(texts), n, dtype=torch.int64)
            for i, t in enumerate(texts):
                ids[i, : len(t)] = torch.tensor([ord(c) % 97 + 3 for c in t], dtype=torch.int64)
            return ids, torch.tensor([len(t) for t in texts])

    ss = [Sample("a", {"text": "one two three four"}), Sample("b", {"text": "five six"})]
    rec = load_recipe({"seed": 3, "text": [{"op": "word_delete", "p": 1.0, "p_word": 0.5}]})
    got = rec.apply_batched(collate(ss, tokenizer=Chars()), 0)
    _same_tokens(got, collate([rec.apply_sample(s, 0) for s in ss], tokenizer=Chars()))


# -- 2: mixgen and empty captions ---------------------------------------------------------------------------


def test_mixgen_leaves_empty_and_blank_captions_unmixed() -> None:
    rec = load_recipe({"seed": 0, "batch": [{"op": "mixgen", "p": 1}]})
    texts = ["", "a dog", "   ", " two  cats\n", "a bird"]
    b = rec.apply_batch_section(collate([Sample(f"k{i}", {"text": t, "label": i}) for i, t in enumerate(texts)]), 0)
    perm = b.meta["aug_batch"][0]["params"]["perm"]
    words = [bool(t.strip()) for t in texts]
    for i, t in enumerate(texts):
        j = perm[i]
        if words[i] and words[j]:  # both have words: "text_i text_j", the user's whitespace kept
            assert b["text"][i] == f"{t} {texts[j]}"
            assert b["mix_lam"][i] == 0.5 and b["label_b"][i] == j and b.meta["mix_partner"][i] == j
        else:
            assert b["text"][i] == t, (i, b["text"][i])
            assert b["mix_lam"][i] == 1.0 and b["label_b"][i] == i and b.meta["mix_partner"][i] == i
    assert any(not words[i] or not words[perm[i]] for i in range(len(texts)))


# -- 3: None fields, non-str text ---------------------------------------------------------------------------


def test_a_none_field_is_absent_in_apply_sample() -> None:
    rec = load_recipe({"seed": 0, "image": [{"op": "hflip", "p": 1}], "audio": [{"op": "gain", "p": 1}],
                       "text": [{"op": "token_mask", "p": 1}],
                       "sample": [{"op": "modality_dropout", "p": 1, "p_drop": 1.0, "modalities": ["image", "text"],
                                   "keep_at_least": 1}]})
    full = Sample("z", {"image": _img(4, 4), "audio": torch.zeros(1, 8), "text": "a b", "label": 0}, 16000)
    for fields in [{"image": None, "text": "x y"}, {"audio": None}, {"text": None},
                   {"image": None, "audio": None, "text": None, "label": 1}]:
        out = rec.apply_sample(Sample("k", fields, 16000), 0)
        for name, v in fields.items():
            if v is None:
                assert name in out.fields and out[name] is None, (fields, out)
        # collate takes the None as absent, as it took the input's
        want = collate([Sample("k", fields, 16000), full])
        got = collate([out, full])
        assert {k: v.tolist() for k, v in got.present.items()} == {k: v.tolist() for k, v in want.present.items()}


def test_a_text_that_is_no_str_is_refused_naming_the_sample() -> None:
    rec = load_recipe({"seed": 0, "text": [{"op": "token_mask", "p": 1}]})
    for bad in (5, b"bytes", ["a", "b"]):
        with pytest.raises(InputError, match=r"sample 'k7'.*text must be a str"):
            rec.apply_sample(Sample("k7", {"text": bad}), 0)
        with pytest.raises(InputError, match=r"sample 'k7'.*text must be a str"):
            collate([Sample("k7", {"text": bad})])


def test_an_error_in_an_image_op_names_the_recipe_step() -> None:
    from mmdata.augment.base import Param
    from mmdata.augment.image import ImageOp

    class Boom(ImageOp):
        name = "qa24_boom"
        PARAMS = {"x": Param("float", 0.0, 0.0, 1.0, doc="unused")}

        def kernel(self, arr: np.ndarray, params: dict) -> np.ndarray:
            raise ValueError("kaboom")

    rec = load_recipe({"seed": 0, "image": [{"op": "hflip"}, {"op": "qa24_boom", "p": 1}]})
    with pytest.raises(ValueError, match="kaboom") as info:
        rec.apply_sample(Sample("k3", {"image": _img(4, 4)}), 0)
    assert any("image[1]" in n and "'k3'" in n for n in info.value.__notes__)


# -- 7: apply_batched and the batch: section ----------------------------------------------------------------


def test_apply_batched_warns_of_the_batch_section_or_runs_it() -> None:
    ss = [Sample(f"k{i}", {"image": _img(4, 4, 10 * i), "label": i}) for i in range(2)]
    rec = load_recipe({"seed": 0, "image": [{"op": "hflip", "p": 1}], "batch": [{"op": "mixup", "p": 1}]})
    with pytest.warns(UserWarning, match=r"apply_batch_section"):
        out = rec.apply_batched(collate(ss), 0)
    assert "mix_lam" not in out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec.apply_batched(collate(ss), 0)  # once per recipe
        both = load_recipe(rec.to_dict()).apply_batched(collate(ss), 0, mix=True)
        apart = rec.apply_batch_section(rec.apply_batched(collate(ss), 0, mix=False), 0)
    assert torch.equal(both["mix_lam"], apart["mix_lam"]) and torch.equal(both["image"], apart["image"])
    only_batch = load_recipe({"seed": 0, "batch": [{"op": "mixup", "p": 1}]})  # no random per-sample steps
    assert "mix_lam" in only_batch.apply_batched(collate(ss), 0, mix=True)


# -- 8, 9: batches and samples not built by mmdata ----------------------------------------------------------


def test_a_batch_without_presence_masks_is_refused() -> None:
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    rec = load_recipe({"seed": 0, "image": [{"op": "hflip", "p": 1}]})
    with pytest.raises(InputError, match=r"present\['image'\].*mmdata.collate"):
        rec.apply_batched(Batch(keys=["a", "b"], data={"image": x.clone()}), 0)
    mix = load_recipe({"seed": 0, "batch": [{"op": "mixup", "p": 1}]})
    with pytest.raises(InputError, match=r"present\['image'\]"):
        mix.apply_batch_section(Batch(keys=["a", "b"], data={"image": x.clone()}), 0)


def test_wrong_containers_are_refused_with_a_guide() -> None:
    rec = load_recipe({"seed": 0, "image": [{"op": "hflip", "p": 1}]})
    with pytest.raises(TypeError, match=r"Sample\(key, fields"):
        rec.apply_sample({"image": _img(4, 4)}, 0)
    b = collate([Sample("a", {"image": _img(4, 4)}), Sample("b", {"image": _img(4, 4)})])
    with pytest.raises(InputError, match=r"batch\['image'\].*numpy.*torch.from_numpy"):
        rec.apply_batched(b.replace(image=b["image"].numpy()), 0)
    with pytest.raises(TypeError, match=r"Batch.*mmdata.collate"):
        rec.apply_batched([Sample("a", {"image": _img(4, 4)})], 0)


# -- 10: the float image hint -------------------------------------------------------------------------------


def test_the_float_image_hint_reads_the_value_range() -> None:
    wide = image_problem(torch.randint(0, 256, (3, 8, 8)).float())
    assert "x.round().clamp(0, 255).to(torch.uint8)" in wide and "* 255" not in wide
    unit = image_problem(torch.rand(3, 8, 8))
    assert "(x * 255).round()" in unit


# -- 13: mixup of several image sizes -----------------------------------------------------------------------


def test_mixup_of_several_image_sizes_warns_once_from_the_batch_section() -> None:
    rec = load_recipe({"seed": 0, "batch": [{"op": "mixup", "p": 1, "alpha": 1.0}]})
    ss = [Sample("a", {"image": _img(8, 8, 200), "label": 0}), Sample("b", {"image": _img(4, 4, 100), "label": 1})]
    with pytest.warns(UserWarning, match=r"several sizes.*8x8.*4x4"):
        rec.apply_batch_section(collate(ss), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec.apply_batch_section(collate(ss), 1)  # once per recipe
        same = [Sample(s.key, {"image": _img(4, 4, 9), "label": s["label"]}) for s in ss]
        load_recipe(rec.to_dict()).apply_batch_section(collate(same), 0)  # one size: no warning
