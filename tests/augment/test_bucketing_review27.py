"""``form_batches`` learns what an audio-less sample costs from the shortest *non-empty* clip (review27 G3-3).

Before, a zero-length clip among the first ``buffer`` items made ``shortest`` 0, so audio-less samples were
free again and piled up: ``[("z", 0.0)] + 40 audio-less + [("a", 2.0)]`` at 6 s gave batches of 41 and 1.
"""

from __future__ import annotations

from mmdata.augment.bucketing import form_batches


def test_a_zero_length_clip_does_not_make_audio_less_samples_free() -> None:
    pairs = [("z", 0.0)] + [(f"i{n}", None) for n in range(40)] + [("a", 2.0)]
    batches = [b for b, _ in form_batches(pairs, None, 6.0, buffer=64)]
    assert sorted(x for b in batches for x in b) == sorted(k for k, _ in pairs)  # nothing dropped
    # each audio-less sample costs the 2 s clip: at most 3 of them in a 6 s batch
    assert max(len(b) for b in batches) <= 3, [len(b) for b in batches]


def test_only_zero_length_clips_leave_shortest_to_the_first_clip_after_the_head() -> None:
    pairs = [("z", 0.0)] + [(f"i{n}", None) for n in range(5)] + [("a", 2.0)] + [(f"j{n}", None) for n in range(9)]
    batches = [b for b, _ in form_batches(pairs, None, 6.0, buffer=4)]
    assert sorted(x for b in batches for x in b) == sorted(k for k, _ in pairs)
    j_batches = [b for b in batches if any(x.startswith("j") for x in b)]
    assert all(len(b) <= 3 for b in j_batches), [len(b) for b in batches]  # after "a", each costs 2 s
