"""QA26 F6: ``mmdata.loader(tokenizer=...)``: a tokenizer of the user's (a Hugging Face style tokenizer, a plain
function ``str -> list[int]``) encodes ``batch["tokens"]``, and the batch-stage ops that edit text (mixgen,
consistent_hflip, text ops run batched) re-encode with it — the ``transform=`` workaround left the user's ids
of the caption before mixgen. Real shards, real DataLoader workers (fork and spawn)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

import mmdata
from mmdata.errors import MMDataError
from mmdata.types import Sample, UserTokenizer, as_tokenizer, collate


def char_ids(text: str) -> list[int]:
    """A tokenizer of one text: its characters' code points (module-level: it pickles to spawned workers)."""
    return [ord(c) for c in text]


def decode_chars(ids: torch.Tensor, n: int) -> str:
    return "".join(chr(c) for c in ids[:n].tolist())


class WordVocab:
    """A tokenizer with the Hugging Face ``transformers`` calling convention — ``tok(texts, truncation=...)``
    returning ``{"input_ids": [[...], ...]}``, ``model_input_names``, ``model_max_length``, a pad id that is not
    0 — over a fixed word vocabulary (no download). Ids: [CLS]=101, words from 1000 up, [SEP]=102."""

    model_input_names = ["input_ids", "attention_mask"]
    pad_token_id = 7

    def __init__(self, words: list[str], model_max_length: int = 8) -> None:
        self.vocab = {w: 1000 + i for i, w in enumerate(words)}
        self.model_max_length = model_max_length
        self.calls: list[dict[str, Any]] = []

    def __call__(self, texts: Any, truncation: bool = False, **kw: Any) -> dict[str, Any]:
        assert isinstance(texts, list), "called on the batch's texts"
        out = []
        for t in texts:
            ids = [101, *(self.vocab.get(w, 100) for w in t.lower().split()), 102]
            out.append(ids[: self.model_max_length] if truncation else ids)
        return {"input_ids": out, "attention_mask": [[1] * len(i) for i in out]}

    def decode(self, ids: list[int]) -> str:
        inv = {v: k for k, v in self.vocab.items()}
        return " ".join(inv.get(i, "?") for i in ids if i not in (101, 102))


WORDS = ["caption", "a", "dog", "on", "the", "left", "right", "of", "cat", *map(str, range(8))]


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("tok")
    texts = [f"caption {i} a dog on the {'left' if i % 2 else 'right'}" for i in range(8)]
    for i in range(8):
        Image.new("RGB", (16, 12), (30 * i, 5 * i, 0)).save(t / f"{i}.png")
    (t / "m.jsonl").write_text("".join(json.dumps({"image": f"{i}.png", "text": texts[i]}) + "\n" for i in range(8)))
    mmdata.shard(t / "m.jsonl", t / "ds", progress=False)
    return t / "ds"


def _rows(b: Any) -> list[tuple[str, torch.Tensor, int]]:
    return [(b["text"][i], b["tokens"][i], int(b.lengths["tokens"][i])) for i in range(len(b))]


@pytest.mark.parametrize("workers", [0, 2])
def test_mixgen_reencodes_with_a_function_tokenizer(ds: Path, workers: int) -> None:
    """The QA repro: mixgen edits text in the batch stage; the ids are the user's tokenizer's of the mixed text."""
    ld = mmdata.loader(ds, 4, recipe={"batch": [{"op": "mixgen", "p": 1.0}]}, tokenizer=char_ids, shuffle=False,
                       num_workers=workers)
    mixed = 0
    for b in ld:
        assert isinstance(b.meta["tokenizer"], UserTokenizer)
        for text, ids, n in _rows(b):
            assert decode_chars(ids, n) == text
            assert n == len(text) and not ids[n:].any()  # 0 past the length
            mixed += text.count("caption") > 1
    assert mixed > 0  # mixgen did concatenate captions


def test_hf_style_tokenizer_and_batched_text_ops(ds: Path) -> None:
    """A transformers-style tokenizer: called on the batch's texts with truncation at its model_max_length;
    token ops and consistent_hflip run batched (augment_on='device') re-encode with it."""
    tok = WordVocab(WORDS, model_max_length=6)
    rec = {"text": [{"op": "token_mask", "p": 1.0, "p_token": 0.5}, {"op": "word_delete", "p": 0.5}],
           "sample": [{"op": "consistent_hflip", "p": 1.0}], "batch": [{"op": "mixgen", "p": 0.5}]}
    for augment_on in ("device", "workers"):
        seen = 0
        for b in mmdata.loader(ds, 4, recipe=rec, tokenizer=tok, augment_on=augment_on, seed=3):
            for text, ids, n in _rows(b):
                want = tok([text], truncation=True)["input_ids"][0]
                assert ids[:n].tolist() == want, (augment_on, text)
                assert n <= 6
                seen += 1
        assert seen == 8
    # the flip swapped the words, and the ids are those of the swapped caption
    tok = WordVocab(WORDS, model_max_length=16)
    b = next(iter(mmdata.loader(ds, 8, recipe={"sample": [{"op": "consistent_hflip", "p": 1.0}]}, tokenizer=tok,
                                augment_on="device", shuffle=False)))
    assert b["text"][1].endswith("the right") and tok.decode(b["tokens"][1][: b.lengths["tokens"][1]].tolist()).endswith("right")


def test_eval_loader_and_collate_take_the_tokenizer(ds: Path) -> None:
    b = next(iter(mmdata.loader(ds, 8, stage="eval", tokenizer=char_ids)))
    assert all(decode_chars(ids, n) == t for t, ids, n in _rows(b))
    b2 = collate([Sample("a", {"text": "hi"}), Sample("b", {})], tokenizer=char_ids)
    assert b2["tokens"].tolist() == [[104, 105], [0, 0]] and b2.lengths["tokens"].tolist() == [2, 0]


def test_spawned_workers_get_the_tokenizer_pickled(ds: Path) -> None:
    tok = as_tokenizer(WordVocab(WORDS))
    again = pickle.loads(pickle.dumps(tok))
    assert again.encode_batch(["a dog"])[0].tolist() == tok.encode_batch(["a dog"])[0].tolist()
    ld = mmdata.loader(ds, 4, recipe={"batch": [{"op": "mixgen", "p": 1.0}]}, tokenizer=char_ids, num_workers=1,
                       multiprocessing_context="spawn")
    rows = [r for b in ld for r in _rows(b)]
    assert len(rows) == 8 and all(decode_chars(ids, n) == t for t, ids, n in rows)


def test_mmdata_tokenizer_kept_as_it_is(ds: Path) -> None:
    from mmdata.text import Tokenizer

    tok = Tokenizer(vocab_size=50, max_len=3)
    assert as_tokenizer(tok) is tok
    b = next(iter(mmdata.loader(ds, 4, tokenizer=tok, recipe={"text": [{"op": "token_mask", "p": 1.0}]},
                                augment_on="device")))
    assert b.meta["tokenizer"] is tok and int(b["tokens"].max()) < 50 and int(b.lengths["tokens"].max()) <= 3


def _strings(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("bad,match", [(42, "tokenizer: expected a Hugging Face tokenizer"),
                                       (_strings, r"tokenizer _strings: the text 'a photo of a cat' gave .*expected a list of token ids")])
def test_a_tokenizer_that_cannot_encode_is_refused_up_front(ds: Path, bad: Any, match: str) -> None:
    with pytest.raises(MMDataError, match=match):
        mmdata.loader(ds, 4, tokenizer=bad)


def test_datamodule_forwards_the_tokenizer(ds: Path) -> None:
    pytest.importorskip("lightning")
    from mmdata.augment.loader import loader_keywords
    from mmdata.lightning import DataModule

    assert "tokenizer" in loader_keywords()
    dm = DataModule(ds, batch_size=4, tokenizer=char_ids, recipe={"batch": [{"op": "mixgen", "p": 1.0}]})
    rows = [r for b in dm.train_dataloader() for r in _rows(b)]
    assert len(rows) == 8 and all(decode_chars(ids, n) == t for t, ids, n in rows)
