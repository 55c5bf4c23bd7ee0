"""consistent_hflip (QA 2026-12-06, a CLIP-style pretraining researcher):

1. Korean pair words carrying a particle (왼쪽에, 왼쪽으로, 왼쪽의) were left as they were: Hangul was matched
   as whole space-separated words, and Korean attaches particles and endings to the word's right.
2. Stereo audio kept its channels while the image flipped ("a dog barks on the left" became "...on the
   right" with the left-channel energy still on the left): a mirrored scene has its channels swapped.
3. The default English pairs are ambiguous ("all right" -> "all left", "He left the room" -> "He right the
   room"): documented, and fixed phrases can be kept with [w, w] pairs (several words each).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from mmdata.augment import build_op, load_recipe
from mmdata.augment.cross import LEFT_RIGHT, swap_left_right
from mmdata.errors import RecipeError
from mmdata.types import Sample, collate

KO = [["왼쪽", "오른쪽"], ["맨왼쪽", "맨오른쪽"], ["좌측", "우측"]]


# -- 1: Korean particles, Japanese ------------------------------------------------------------------------


@pytest.mark.parametrize("text,want", [
    ("빨간 사각형이 왼쪽에 있다, 왼쪽 손", "빨간 사각형이 오른쪽에 있다, 오른쪽 손"),  # the QA repro
    ("왼쪽으로 가는 차, 왼쪽의 나무", "오른쪽으로 가는 차, 오른쪽의 나무"),
    ("고양이는 오른쪽에서 왼쪽으로 걷는다.", "고양이는 왼쪽에서 오른쪽으로 걷는다."),
    ("(왼쪽)에 \"오른쪽이\"", "(오른쪽)에 \"왼쪽이\""),
    # a pair word inside a compound (Hangul before it) is another word: only a listed compound swaps
    ("맨왼쪽에 있는 컵", "맨오른쪽에 있는 컵"),
    ("우리는 우측에 앉았다, 우유는 좌측에", "우리는 좌측에 앉았다, 우유는 우측에"),  # 우리 / 우유 keep their 우
    ("X왼쪽 왼쪽X 왼쪽에x", "X왼쪽 왼쪽X 왼쪽에x"),  # glued to Latin letters: no word of the pair
])
def test_korean_pair_words_swap_with_their_particles(text: str, want: str) -> None:
    assert swap_left_right(text, KO) == want
    assert swap_left_right(want, KO) == text  # the swap is its own inverse


def test_korean_mixed_with_english_and_the_op() -> None:
    pairs = [list(p) for p in LEFT_RIGHT] + KO
    assert swap_left_right("the LEFT cup, 왼쪽에 있는 컵", pairs) == "the RIGHT cup, 오른쪽에 있는 컵"
    op = build_op("sample", {"op": "consistent_hflip", "p": 1.0, "pairs": pairs}, "sample[0]")
    img = torch.arange(6, dtype=torch.uint8).reshape(1, 2, 3)
    out = op.apply(Sample("k", {"image": img, "text": "빨간 사각형이 왼쪽에 있다"}), {"applied": True})
    assert out["text"] == "빨간 사각형이 오른쪽에 있다"


def test_japanese_is_matched_as_characters_with_the_default_pairs() -> None:
    assert swap_left_right("犬は左に、猫は右側にいる") == "犬は右に、猫は左側にいる"
    assert swap_left_right("左右対称の建物、左手") == "左右対称の建物、右手"


# -- 2: stereo channels -------------------------------------------------------------------------------------


def _stereo(n: int = 200) -> torch.Tensor:
    t = torch.linspace(0, 1, n)
    return torch.stack([torch.sin(40 * t), 0.1 * torch.cos(40 * t)]).float()  # energy on the left channel


def test_stereo_channels_are_mirrored_with_the_image() -> None:
    img = torch.arange(6, dtype=torch.uint8).reshape(1, 2, 3)
    a = _stereo()
    s = Sample("k", {"image": img, "audio": a, "text": "a dog barks on the left"}, sample_rate=8000)
    op = build_op("sample", {"op": "consistent_hflip", "p": 1.0}, "sample[0]")
    out = op.apply(s, {"applied": True})
    assert out["text"] == "a dog barks on the right"
    assert torch.equal(out["audio"][0], a[1]) and torch.equal(out["audio"][1], a[0])
    assert torch.equal(s["audio"], a)  # input not mutated
    assert op.to_dict() == {"op": "consistent_hflip", "p": 1.0}  # the default stays out of the recipe text

    keep = build_op("sample", {"op": "consistent_hflip", "p": 1.0, "stereo": "keep"}, "sample[0]")
    assert keep.to_dict()["stereo"] == "keep"
    assert build_op("sample", keep.to_dict(), "sample[0]").to_dict() == keep.to_dict()
    assert torch.equal(keep.apply(s, {"applied": True})["audio"], a)


@pytest.mark.parametrize("channels", [1, 3, 6])
def test_other_channel_counts_are_left_as_they_are(channels: int) -> None:
    img = torch.arange(6, dtype=torch.uint8).reshape(1, 2, 3)
    a = torch.randn(channels, 100, generator=torch.Generator().manual_seed(0))
    s = Sample("k", {"image": img, "audio": a, "text": "left"}, sample_rate=8000)
    op = build_op("sample", {"op": "consistent_hflip", "p": 1.0}, "sample[0]")
    assert op.apply(s, {"applied": True})["audio"] is a
    b = op.apply_batch(collate([s, s]), [{"applied": True}] * 2)
    assert torch.equal(b["audio"], collate([s, s])["audio"])


def test_stereo_without_image_is_not_touched() -> None:
    a = _stereo()
    s = Sample("k", {"audio": a, "text": "on the left"}, sample_rate=8000)
    op = build_op("sample", {"op": "consistent_hflip", "p": 1.0}, "sample[0]")
    assert op.apply(s, {"applied": True}) is s
    b = op.apply_batch(collate([s]), [{"applied": True}])
    assert torch.equal(b["audio"][0], a) and b["text"] == ["on the left"]


def test_stereo_value_is_checked() -> None:
    with pytest.raises(RecipeError, match=r"sample\[0\]\.stereo: 'mirror' is not allowed; choose one of \['swap', 'keep'\]"):
        load_recipe({"sample": [{"op": "consistent_hflip", "stereo": "mirror"}]})


def _samples(channels: int) -> list[Sample]:
    g = torch.Generator().manual_seed(3)
    out = []
    for i in range(9):
        fields = {"image": torch.randint(0, 256, (3, 8 + i % 3, 10 + i % 4), generator=g, dtype=torch.uint8),
                  "audio": torch.randn(channels, 300 + 37 * i, generator=g), "text": ["a dog on the left", "right", "x"][i % 3]}
        if i % 4 == 1:
            del fields["image"]
        if i == 5:
            del fields["audio"]
        out.append(Sample(f"k{i}", fields, sample_rate=8000))
    return out


@pytest.mark.parametrize("channels", [2, 1])
@pytest.mark.parametrize("stereo", ["swap", "keep"])
@pytest.mark.parametrize("vectorised", [False, True], ids=["cpu-kernels", "device-kernels"])
def test_kernels_agree_on_stereo(channels: int, stereo: str, vectorised: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-sample and batched kernels (p < 1: the applied rows gathered and scattered back) give the same
    audio, images and captions; inputs never mutated (as tests/augment/test_ops.py checks every op)."""
    monkeypatch.setattr("mmdata.augment.batching.VECTORISED_ON_CPU", vectorised)
    rec = load_recipe({"seed": 4, "sample": [{"op": "consistent_hflip", "p": 0.6, "stereo": stereo}]})
    samples = _samples(channels)
    snapshot = copy.deepcopy(samples)
    swapped = 0
    for epoch in range(4):
        per = [rec.apply_sample(s, epoch=epoch) for s in samples]
        ref, got = collate(per), rec.apply_batched(collate(samples), epoch)
        assert got.meta["aug"] == [s.meta["aug"] for s in per]
        assert got["text"] == ref["text"]
        for name in ("image", "audio"):
            assert got.present[name].tolist() == ref.present[name].tolist()
        for i in range(len(samples)):
            if bool(ref.present["audio"][i]):
                n = int(ref.lengths["audio"][i])
                assert int(got.lengths["audio"][i]) == n
                assert torch.equal(got["audio"][i, :, :n], ref["audio"][i, :, :n]), (epoch, i)
                changed = not torch.equal(per[i]["audio"], samples[i]["audio"])
                flipped = bool(per[i].meta["aug"][0]["params"]["applied"]) and "image" in samples[i]
                assert changed == (flipped and channels == 2 and stereo == "swap")
                swapped += changed
            if bool(ref.present["image"][i]):
                h, w = ref.lengths["image"][i].tolist()
                assert torch.equal(got["image"][i, :, :h, :w], ref["image"][i, :, :h, :w])
    assert (swapped > 0) == (channels == 2 and stereo == "swap")
    for s, s0 in zip(samples, snapshot):
        for k, v in s.fields.items():
            assert torch.equal(v, s0[k]) if isinstance(v, torch.Tensor) else v == s0[k]


def test_stereo_swap_never_reads_device_data_back() -> None:
    """On a 'meta' batch (tensors without data; the CPU stand-in for CUDA's sync-free check in
    tests/augment/test_ops.py): the rows to swap come from host params and presence masks only."""
    rec = load_recipe({"seed": 4, "sample": [{"op": "consistent_hflip", "p": 0.6}]})
    for epoch in range(3):
        cpu = rec.apply_batched(collate(_samples(2)), epoch)
        meta = rec.apply_batched(collate(_samples(2)).to("meta"), epoch)
        assert meta["audio"].device.type == "meta" and meta["audio"].shape == cpu["audio"].shape
        assert {k: v.tolist() for k, v in meta.present.items()} == {k: v.tolist() for k, v in cpu.present.items()}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_stereo_swap_on_cuda_matches_the_cpu() -> None:
    rec = load_recipe({"seed": 4, "sample": [{"op": "consistent_hflip", "p": 0.6}]})
    for epoch in range(3):
        cpu = rec.apply_batched(collate(_samples(2)), epoch)
        gpu = rec.apply_batched(collate(_samples(2)).to("cuda"), epoch)
        assert gpu["audio"].is_cuda and torch.equal(gpu["audio"].cpu(), cpu["audio"])
        assert torch.equal(gpu["image"].cpu(), cpu["image"]) and gpu["text"] == cpu["text"]


def test_stereo_swap_leaves_the_logmel_spec_as_it_is() -> None:
    """logmel mixes the channels to mono before its transform: a spec computed before the flip is the
    flipped audio's spec too, bit for bit (so it needs no swap of its own)."""
    rec = load_recipe({"seed": 0, "audio": [{"op": "logmel", "n_mels": 8}], "sample": [{"op": "consistent_hflip", "p": 1.0}]})
    img = torch.zeros(1, 2, 2, dtype=torch.uint8)
    s = Sample("k", {"image": img, "audio": _stereo(800)}, sample_rate=8000)
    out = rec.apply_sample(s)
    again = load_recipe({"seed": 0, "audio": [{"op": "logmel", "n_mels": 8}]}).apply_sample(
        Sample("k", {"image": img, "audio": out["audio"]}, sample_rate=8000))
    assert torch.equal(out["spec"], again["spec"])


# -- 3: ambiguous English words -------------------------------------------------------------------------------


def test_english_ambiguity_is_as_documented() -> None:
    """The default pairs swap every "left" / "right": the documented examples, as they come out."""
    assert swap_left_right("all right, right now") == "all left, left now"
    assert swap_left_right("He left the room") == "He right the room"
    doc = (Path(__file__).parents[2] / "docs" / "ops.md").read_text(encoding="utf-8")
    section = doc.split("### sample: consistent_hflip")[1].split("### ")[0]
    for words in ("all right", "He left the room", "right now"):
        assert words in section


def test_fixed_phrases_are_kept_with_same_word_pairs() -> None:
    pairs = [list(p) for p in LEFT_RIGHT] + [["all right", "all right"], ["right now", "right now"], ["right away", "right away"]]
    assert swap_left_right("All right, the dog on the left, right now", pairs) == "All right, the dog on the right, right now"
    assert swap_left_right("ALL RIGHT!  all\tright; right  away, turn left", pairs) == "ALL RIGHT!  all\tright; right  away, turn right"
    assert swap_left_right("alright, upright now", pairs) == "alright, upright now"
    # a pair of several words swaps as a whole, whatever the spaces between them
    two = [["to the left", "to the right"]]
    assert swap_left_right("moves to the  left, left", two) == "moves to the right, left"
    op = build_op("sample", {"op": "consistent_hflip", "p": 1.0, "pairs": pairs}, "sample[0]")
    assert build_op("sample", op.to_dict(), "sample[0]").to_dict() == op.to_dict()
