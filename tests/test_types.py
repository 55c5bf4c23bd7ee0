"""Sample / Batch / collate contracts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdata import Batch, Sample, collate, uncollate
from mmdata.text import MASK_ID, PAD_ID, Tokenizer


def _samples() -> list[Sample]:
    return [
        Sample("a", {"image": torch.ones(3, 4, 5, dtype=torch.uint8), "audio": torch.ones(1, 10), "text": "a b c",
                     "label": 1, "depth": np.zeros((2, 2), np.float32)}, sample_rate=8000),
        Sample("b", {"image": torch.full((3, 6, 2), 7, dtype=torch.uint8), "text": "x", "label": 2}),
        Sample("c", {"audio": torch.ones(1, 4) * 2, "depth": np.ones((2, 2), np.float32)}, sample_rate=8000),
    ]


def test_sample_mapping_access() -> None:
    s = _samples()[1]
    assert s.key == "b" and s["label"] == 2 and "audio" not in s and "image" in s
    with pytest.raises(KeyError, match="'b' has no field 'audio'"):
        s["audio"]
    t = s.with_fields(label=5)
    assert s["label"] == 2 and t["label"] == 5  # never mutated


def test_collate_pads_and_masks() -> None:
    b = collate(_samples())
    assert isinstance(b, Batch) and b.keys == ["a", "b", "c"] and len(b) == 3
    assert b["image"].shape == (3, 3, 6, 5) and b["image"].dtype == torch.uint8
    assert b.present["image"].tolist() == [True, True, False]
    assert b.lengths["image"].tolist() == [[4, 5], [6, 2], [0, 0]]
    assert b["audio"].shape == (3, 1, 10) and b.lengths["audio"].tolist() == [10, 0, 4]
    assert b.sample_rate == 8000
    assert b["label"].tolist() == [1, 2, -1] and b.present["label"].tolist() == [True, True, False]
    assert b["text"] == ["a b c", "x", ""] and b.lengths["tokens"].tolist() == [3, 1, 0]
    assert b["tokens"][2].tolist() == [PAD_ID] * 3
    assert b["depth"].shape == (3, 2, 2) and b.present["depth"].tolist() == [True, False, True]


def test_uncollate_roundtrip() -> None:
    samples = _samples()
    back = uncollate(collate(samples))
    for s, t in zip(samples, back):
        assert s.key == t.key and set(s.fields) == set(t.fields)
        for k in s.fields:
            a, b = s[k], t[k]
            if isinstance(a, (torch.Tensor, np.ndarray)):
                assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
            else:
                assert a == b


def test_collate_errors_name_keys_and_the_fixing_op() -> None:
    """Mixed rates / channel counts: the message lists sample keys per group and the normalize op to add."""
    with pytest.raises(ValueError, match=r"sample rates differ \(8000 Hz: samples \['a', 'c'\]; 16000 Hz: sample \['b'\]\); "
                                         r"add \{op: resample, rate: 8000\} to normalize.audio"):
        collate([Sample("a", {"audio": torch.ones(1, 3)}, sample_rate=8000),
                 Sample("b", {"audio": torch.ones(1, 3)}, sample_rate=16000),
                 Sample("c", {"audio": torch.ones(1, 3)}, sample_rate=8000)])
    with pytest.raises(ValueError, match=r"cannot collate 'image': channel counts differ \(1 channel: sample \['g'\]; "
                                         r"3 channels: sample \['c'\]\); add \{op: to_rgb\} \(or \{op: to_gray\}\) to normalize.image"):
        collate([Sample("g", {"image": torch.zeros(1, 4, 4, dtype=torch.uint8)}), Sample("c", {"image": torch.zeros(3, 4, 4, dtype=torch.uint8)})])
    with pytest.raises(ValueError, match=r"channel counts differ \(1 channel: sample \['m'\]; 2 channels: sample \['s'\]\); "
                                         r"add \{op: to_mono\} to normalize.audio"):
        collate([Sample("m", {"audio": torch.ones(1, 3)}, sample_rate=8000), Sample("s", {"audio": torch.ones(2, 3)}, sample_rate=8000)])


def test_tokenizer_word_units() -> None:
    tok = Tokenizer()
    assert tok.encode("[MASK] Dog.") == [MASK_ID, tok.token_id("dog")]
    ids, lens = tok.encode_batch(["a b", ""])
    assert ids.shape == (2, 2) and lens.tolist() == [2, 0]


def test_tokenizer_splits_cjk_into_characters() -> None:
    """A Chinese / Japanese caption is a sequence of character tokens, not one token; punctuation
    attached to a character is stripped from its id; join() round-trips the units."""
    tok = Tokenizer()
    zh = "一张红色背景上的圆形的照片，在户外拍摄。"
    units = Tokenizer.words(zh)
    assert len(units) == 18 and units[12] == "片，" and tok.token_id("片，") == tok.token_id("片")
    assert Tokenizer.words("赤い背景に円") == ["赤", "い", "背", "景", "に", "円"]
    # Korean puts spaces between words: Hangul words are whitespace words, and keep their spaces
    assert Tokenizer.words("한국어 문장 입니다") == ["한국어", "문장", "입니다"]
    assert Tokenizer.join(["한국어", "문장", "입니다"]) == "한국어 문장 입니다"
    assert Tokenizer.words("A photo of 圆形 on GPU用") == ["A", "photo", "of", "圆", "形", "on", "GPU", "用"]
    for text in (zh, "A photo of 圆形 on GPU用", "「写真」です", "plain words only"):
        assert Tokenizer.words(Tokenizer.join(Tokenizer.words(text))) == Tokenizer.words(text)
    assert Tokenizer.join(Tokenizer.words(zh)) == zh
    ids, lens = tok.encode_batch([zh])
    assert lens.tolist() == [18] and len(set(ids[0].tolist())) > 10


def test_rng_derive_is_pure() -> None:
    from mmdata.rng import derive

    assert derive(1, 2, "k", 3).integers(0, 10**9) == derive(1, 2, "k", 3).integers(0, 10**9)
    assert derive(1, 2, "k", 3).integers(0, 10**9) != derive(1, 2, "k", 4).integers(0, 10**9)


class _Samples(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    def __iter__(self):  # type: ignore[no-untyped-def]
        info = torch.utils.data.get_worker_info()
        for i in range(info.id if info else 0, 6, info.num_workers if info else 1):
            yield Sample(f"{i:02d}", {"image": torch.full((3, 8, 8), i, dtype=torch.uint8), "text": str(i),
                                      "view": torch.arange(100.0)[::2], "big": torch.full((300_000,), float(i))},
                         16000, {"position": i})


def test_samples_cross_processes_with_small_tensors_by_value() -> None:
    """Uncollated samples out of DataLoader workers: small tensors are pickled by value (torch's
    shared-memory handover costs ~0.3 ms per tensor, issue 14), large ones still go through shared
    memory; every value arrives equal, writable and of its dtype."""
    import pickle

    s = Sample("k", {"image": torch.arange(12, dtype=torch.uint8).reshape(3, 2, 2), "label": 3}, None, {"a": 1})
    back = pickle.loads(pickle.dumps(s))
    assert (back.key, back.meta, back["label"], back.sample_rate) == ("k", {"a": 1}, 3, None)
    assert torch.equal(back["image"], s["image"]) and back["image"].dtype == torch.uint8
    dl = torch.utils.data.DataLoader(_Samples(), batch_size=None, num_workers=2, multiprocessing_context="fork")
    got = sorted(dl, key=lambda x: x.key)
    assert [x.key for x in got] == [f"{i:02d}" for i in range(6)] and [x.meta["position"] for x in got] == list(range(6))
    for i, x in enumerate(got):
        assert torch.equal(x["image"], torch.full((3, 8, 8), i, dtype=torch.uint8)) and x["text"] == str(i)
        assert torch.equal(x["view"], torch.arange(100.0)[::2]) and x.sample_rate == 16000
        assert not x["image"].is_shared() and not x["view"].is_shared()  # by value
        assert x["big"].is_shared() and float(x["big"][0]) == i  # 1.2 MB: torch's shared memory
        x["image"].add_(1)  # writable


def test_a_sample_without_tensors_pickles_without_a_python_call_per_sample() -> None:
    """Raw samples (bytes, str, ints) are pickled as the object and its __dict__ (NEWOBJ + BUILD):
    the unpickler rebuilds them in C, no function of ours runs per sample (issue 14: raw reads with
    DataLoader workers). They come back equal, frozen and of their class."""
    import dataclasses
    import pickle

    s = Sample("k", {"jpg": b"\xff\xd8", "txt": "a caption", "cls": 3, "depth": np.zeros(2)}, None,
               {"shard": "train-000000.tar", "position": 7})
    blob = pickle.dumps([s, s], protocol=pickle.HIGHEST_PROTOCOL)
    assert b"_rebuild_sample" not in blob
    back = pickle.loads(blob)
    assert type(back[0]) is Sample and back[0].key == "k" and back[0].meta == s.meta and back[1] is back[0]
    assert back[0]["jpg"] == b"\xff\xd8" and back[0]["txt"] == "a caption" and np.array_equal(back[0]["depth"], np.zeros(2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        back[0].key = "other"  # type: ignore[misc]


def test_text_ops_keep_unedited_text_and_korean_spaces() -> None:
    """A typo op with nothing to change returned '한국어문장입니다' for '한국어 문장 입니다' (every Hangul
    syllable was a unit and join glued them); text an op leaves unedited is now returned as it was."""
    from mmdata import Sample
    from mmdata.augment.recipe import load_recipe

    ko = "한국어 문장 입니다"
    out = load_recipe({"text": [{"op": "typo", "p_word": 1.0}]}).apply_sample(Sample("k", {"text": ko}), 0)
    assert len(out["text"].split(" ")) == 3
    spaced = "two  spaces\tand a tab"
    same = load_recipe({"text": [{"op": "token_mask", "p_token": 0.0}]}).apply_sample(Sample("k", {"text": spaced}), 0)
    assert same["text"] == spaced
    swapped = load_recipe({"text": [{"op": "word_swap", "p": 1.0}]}).apply_sample(Sample("k", {"text": ko}), 3)
    assert sorted(swapped["text"].split(" ")) == sorted(ko.split(" "))


def test_collate_carries_the_fields_asked_for_when_no_sample_has_them() -> None:
    """QA: a batch none of whose samples had a label (or some modality) had no batch["label"] and no
    present["audio"], so README-style step code raised KeyError (batch_size=1, a short last batch)."""
    import torch

    from mmdata import Sample, collate

    b = collate([Sample("a", {"image": torch.zeros(3, 2, 2, dtype=torch.uint8)})], fields=("image", "audio", "text", "label"))
    assert b["label"].tolist() == [-1] and b.present["label"].tolist() == [False]
    assert b["text"] == [""] and b.present["text"].tolist() == [False] and b["tokens"].shape == (1, 1)
    assert b.present["audio"].tolist() == [False] and "audio" not in b.data
    assert b.present["image"].tolist() == [True]


def test_loader_batches_carry_the_datasets_fields(tmp_path) -> None:  # noqa: ANN001
    import mmdata
    from mmdata.testing import audio_bytes, image_bytes

    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(4):
        (raw / f"s{i}.png").write_bytes(image_bytes(i))
        if i != 1:  # s1: no audio, no label
            (raw / f"s{i}.flac").write_bytes(audio_bytes(i))
            (raw / f"s{i}.cls").write_text(str(i % 2))
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    for workers in (0, 1):
        batches = list(mmdata.loader(tmp_path / "ds", 1, num_workers=workers))
        assert len(batches) == 4
        for b in batches:
            assert {"image", "audio", "label"} <= set(b.present), b.keys
            assert b["label"].shape == (1,)
        (lone,) = [b for b in batches if b.keys == ["s1"]]
        assert lone["label"].tolist() == [-1] and lone.present["audio"].tolist() == [False]


def test_a_batch_is_not_a_sequence_of_samples_and_says_so() -> None:
    """`list(batch)` indexed batch[0], batch[1], ... and raised `KeyError: batch has no field 0`."""
    import collections.abc

    b = collate([Sample("a", {"label": 1}), Sample("b", {"label": 0})])
    for attempt in (lambda: list(b), lambda: b[0], lambda: [x for x in b]):
        with pytest.raises(TypeError, match=r"indexed by field name \(\['label'\]\).*keys are batch.keys"):
            attempt()
    # not Iterable: Lightning finds the batch size through the dataclass fields (keys, data), as before
    assert not isinstance(b, collections.abc.Iterable) and b["label"].tolist() == [1, 0]


def test_uncollated_samples_are_pinned_by_torchs_pin_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """``DataLoader(batch_size=None, pin_memory=True)`` pins what has a ``pin_memory()``: a Sample's tensors now
    (QA: torch left the Sample, unknown to it, pageable). No accelerator here, so pinning marks the tensor; the
    GPU check pins for real."""
    from torch.utils.data._utils.pin_memory import pin_memory as torch_pin

    pinned: set[int] = set()

    def mark(t: torch.Tensor, *args: object) -> torch.Tensor:
        out = t.clone()
        pinned.add(id(out))
        return out

    monkeypatch.setattr(torch.Tensor, "pin_memory", mark)
    s = Sample("a", {"image": torch.zeros(3, 2, 2, dtype=torch.uint8), "audio": torch.zeros(1, 8), "text": "hi",
                     "label": 3}, 8000, {"shard": "x.tar"})
    for out in (torch_pin(s), torch_pin([s])[0]):
        assert isinstance(out, Sample) and out.key == "a" and out.sample_rate == 8000 and out.meta == s.meta
        assert id(out["image"]) in pinned and id(out["audio"]) in pinned
        assert out["text"] == "hi" and out["label"] == 3
        assert torch.equal(out["audio"], s["audio"])


def test_sample_to_reaches_tensors_in_nested_fields() -> None:
    """Second QA pass: ``Sample.to`` / ``pin_memory`` left a tensor inside a dict or list field where it was."""
    s = Sample("x", {"nest": {"a": torch.ones(2)}, "lst": [torch.ones(1), "t"], "tup": (torch.zeros(1),), "n": 3})
    out = s.to("meta")
    assert out["nest"]["a"].is_meta and out["lst"][0].is_meta and out["lst"][1] == "t" and out["tup"][0].is_meta
    assert isinstance(out["tup"], tuple) and out["n"] == 3 and not s["nest"]["a"].is_meta  # the input untouched
