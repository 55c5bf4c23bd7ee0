"""QA26 F6: ``text: [{op: choose_caption}]`` picks one of a sample's several captions (COCO's five, kept with
``mmdata shard --meta captions``) per (seed, epoch, key): deterministic, another draw each epoch, uniform over
the list; in ``text:`` it runs before ``consistent_hflip`` (section ``sample``), which then swaps left / right
in the chosen caption. The replay log records the draw. Real shards and the real loader."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

import mmdata
from mmdata import Sample
from mmdata.augment import load_recipe
from mmdata.augment.base import build_op
from mmdata.augment.cross import swap_left_right
from mmdata.errors import ShardError
from mmdata.testing import check_op, op_samples

N = 6


def captions_of(i: int) -> list[str]:
    return [f"image {i} caption {j} the dog on the {'left' if j % 2 else 'right'}" for j in range(5)]


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("caps")
    for i in range(N):
        Image.new("RGB", (16, 12), (40 * i, 0, 0)).save(t / f"{i}.png")
    rows = [{"image": f"{i}.png", "text": captions_of(i)[0], "captions": captions_of(i)} for i in range(N)]
    (t / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    mmdata.shard(t / "m.jsonl", t / "ds", meta=["captions"], progress=False)
    return t / "ds"


def _texts(ds: Path, recipe: Any, epoch: int = 0, seed: int = 0, **kw: Any) -> dict[str, str]:
    out = {}
    for b in mmdata.loader(ds, 4, recipe=recipe, epoch=epoch, seed=seed, **kw):
        out.update(zip(b.keys, b["text"]))
    return out


CHOOSE = {"text": [{"op": "choose_caption"}]}


def test_deterministic_per_seed_epoch_key_and_another_draw_each_epoch(ds: Path) -> None:
    a = _texts(ds, CHOOSE, epoch=0)
    assert a == _texts(ds, CHOOSE, epoch=0, num_workers=2)  # workers do not change a sample's draw
    assert a == _texts(ds, CHOOSE, epoch=0, augment_on="device")  # nor the batched kernel
    epochs = [_texts(ds, CHOOSE, epoch=e) for e in range(4)]
    assert any(e != a for e in epochs[1:])
    for texts in epochs:
        assert len(texts) == N
        for text in texts.values():
            assert text in captions_of(int(text.split()[1]))  # "image {i} caption {j} ..."


def test_uniform_over_five_captions() -> None:
    rec = load_recipe({"seed": 0, **CHOOSE})
    s = Sample("coco/123", {"text": "first", "json": {"captions": captions_of(0)}})
    counts = Counter(rec.apply_sample(s, epoch=e)["text"] for e in range(1000))
    assert set(counts) == set(captions_of(0))
    assert all(150 <= c <= 250 for c in counts.values()), counts  # 200 expected each; 5 sigma ~ 63


def test_before_consistent_hflip_the_flip_swaps_the_chosen_caption(ds: Path) -> None:
    rec = {"text": [{"op": "choose_caption"}], "sample": [{"op": "consistent_hflip", "p": 1.0}]}
    for augment_on in ("workers", "device"):
        for b in mmdata.loader(ds, 3, recipe=rec, augment_on=augment_on, epoch=1):
            for i, key in enumerate(b.keys):
                text = b["text"][i]
                chosen = swap_left_right(text)  # the flip is its own inverse
                assert chosen in captions_of(int(text.split()[1])), (augment_on, text)
                assert ("right" in text) == ("left" in chosen)
    # the replay log names the draw, and replays it
    r = load_recipe({"seed": 5, **rec})
    s = Sample("k1", {"image": torch.zeros(3, 4, 6, dtype=torch.uint8), "text": "x",
                      "json": {"captions": captions_of(1)}})
    out = r.apply_sample(s, epoch=3)
    log = out.meta["aug"]
    entry = next(e for e in log if e["op"] == "text.choose_caption")
    assert entry["params"]["applied"] and entry["params"]["of"] == 5
    assert out["text"] == swap_left_right(captions_of(1)[entry["params"]["index"]])
    again = r.replay(s, log)
    assert again["text"] == out["text"] and torch.equal(again["image"], out["image"])


def test_batched_kernel_agrees_with_the_per_sample_one() -> None:
    samples = [s.with_fields(json={"captions": captions_of(i)[: 1 + i % 5], "other": 1}) for i, s in enumerate(op_samples())]
    for p in (0.6, 1.0):
        check_op(build_op("text", {"op": "choose_caption", "p": p}, "text[0]"), samples)
    # the list as a named JSON member of its own (key: "")
    named = [Sample(s.key, {"caps.json": captions_of(i)}) for i, s in enumerate(op_samples())]
    check_op(build_op("text", {"op": "choose_caption", "source": "caps.json", "key": ""}, "text[0]"), named)


@pytest.mark.parametrize("fields,match", [
    ({"text": "a"}, r"sample 'k': text\[0\] \(choose_caption.*no field 'json' \(its fields: text\)"),
    ({"json": {"speaker": 1}}, r"sample 'k': text\[0\].*no key 'captions' in the field 'json' \(keys \['speaker'\]\)"),
    ({"json": {"captions": "one caption"}}, r"sample 'k': text\[0\].*expected a list of captions \(strings\), got str"),
    ({"json": {"captions": []}}, r"sample 'k': text\[0\].*the list of captions is empty"),
    ({"json": {"captions": ["a", 3]}}, r"sample 'k': text\[0\].*caption \[1\] is 3; expected a non-empty string"),
    ({"json": {"captions": ["a", "  "]}}, r"caption \[1\] is '  '; expected a non-empty string"),
])
def test_bad_captions_name_the_sample_and_the_step(fields: dict[str, Any], match: str) -> None:
    with pytest.raises(ShardError, match=match):
        load_recipe(CHOOSE).apply_sample(Sample("k", fields))


def test_a_replayed_index_for_another_list_is_refused() -> None:
    r = load_recipe(CHOOSE)
    s = Sample("k", {"json": {"captions": captions_of(0)}})
    log = r.apply_sample(s).meta["aug"]
    with pytest.raises(ShardError, match=r"name caption \d of 5, but the sample has 2 captions"):
        r.replay(Sample("k", {"json": {"captions": captions_of(0)[:2]}}), log)


def test_samples_without_captions_are_skipped_and_counted(tmp_path: Path) -> None:
    for i in range(4):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / f"{i}.png")
    rows = [{"image": f"{i}.png", "text": "t", "captions": captions_of(i) if i != 2 else []} for i in range(4)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    mmdata.shard(tmp_path / "m.jsonl", tmp_path / "ds", meta=["captions"], progress=False)
    ld = mmdata.loader(tmp_path / "ds", 2, recipe=CHOOSE, on_error="skip")
    keys = [k for b in ld for k in b.keys]
    assert len(keys) == 3 and sum(ld.skipped.values()) == 1
