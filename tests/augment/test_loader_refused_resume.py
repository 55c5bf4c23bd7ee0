"""Samples the recipe refuses (``"refused by the recipe"``, ``on_error="skip"``) across a resume.

QA: a refusal was counted in the reader's ``skipped`` but not in the records (``meta["skipped"]``) of the
samples after it — the decode window had read them before the recipe saw the refused one — so a loader
resumed from a state (which starts from the last sample's record) reported fewer ``skipped`` than the
uninterrupted epoch. A refusal is now in the record of every sample after it, for any ``decode_threads``,
and, in a blend, whichever dataset the next samples come from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mmdata
from mmdata.testing import audio_bytes, image_bytes

#: a crop larger than the small images: the recipe refuses those samples
RECIPE = {"image": [{"op": "random_crop", "size": [20, 20]}]}
SMALL = (1, 6, 7, 12)
KW: dict[str, Any] = {"recipe": RECIPE, "on_error": "skip", "required": ["audio"]}


def _folder(root: Path, name: str, n: int, small: tuple[int, ...]) -> str:
    """``n`` samples in shards of 4: the images of ``small`` are 16x16 (refused by :data:`RECIPE`), the
    others 40x40; every 5th from the 4th lacks audio (lost with ``required=["audio"]``)."""
    raw = root / f"raw_{name}"
    raw.mkdir(parents=True)
    for i in range(n):
        (raw / f"{i:06d}.png").write_bytes(image_bytes(i, (16, 16) if i in small else (40, 40)))
        if i % 5 != 3:
            (raw / f"{i:06d}.flac").write_bytes(audio_bytes(i))
    mmdata.shard(raw, root / name, maxcount=4, progress=False)
    return str(root / name)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    t = tmp_path_factory.mktemp("refused_resume")
    return {"a": _folder(t, "a", 14, SMALL), "b": _folder(t, "b", 10, (4,))}


def _roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state))


def _seen(batch: mmdata.Batch) -> list[tuple[str, dict[str, int]]]:
    return [(k, m.get("skipped", {})) for k, m in zip(batch.keys, batch.meta["samples"])]


def _resumes_at_every_batch(path: Any, **kw: Any) -> None:
    whole = mmdata.loader(path, 2, **kw)
    full = [_seen(b) for b in whole]
    skipped, errors = whole.skipped, whole.errors
    assert skipped.get("refused by the recipe", 0) >= 3 and skipped.get("missing required modality", 0) >= 2
    assert len(errors) == sum(skipped.values())
    for cut in range(len(full) + 1):
        first = mmdata.loader(path, 2, **kw)
        it = iter(first)
        head = [_seen(next(it)) for _ in range(cut)]
        state = _roundtrip(first.state_dict())
        del it
        again = mmdata.loader(path, 2, **kw)
        again.load_state_dict(state)
        assert head + [_seen(b) for b in again] == full, cut
        assert again.skipped == skipped, cut
        assert again.errors == errors, cut


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("shuffle", [False, True])
def test_a_resumed_loader_counts_the_recipes_refusals(data: dict[str, str], workers: int, shuffle: bool) -> None:
    _resumes_at_every_batch(data["a"], num_workers=workers, shuffle=shuffle, seed=1, **KW)


@pytest.mark.parametrize("weights", [{"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 1.5, "b": 0.5}],
                         ids=lambda w: "-".join(f"{k}{v}" for k, v in w.items()))
@pytest.mark.parametrize("workers", [0, 2])
def test_a_resumed_blend_loader_counts_the_recipes_refusals(data: dict[str, str], weights: dict[str, float],
                                                            workers: int) -> None:
    _resumes_at_every_batch(data, num_workers=workers, shuffle=True, seed=1, weights=weights, **KW)


@pytest.mark.parametrize("threads", [1, 4])
def test_a_refusal_is_in_the_record_of_every_sample_after_it(data: dict[str, str], threads: int) -> None:
    """Whatever the decode window read ahead: the sample after a refused one carries its count."""
    L = mmdata.loader(data["a"], 2, shuffle=False, decode_threads=threads, **KW)
    seen = [s for b in L for s in _seen(b)]
    refused_before = [sum(1 for i in SMALL if i < int(k)) for k, _ in seen]
    assert [r.get("refused by the recipe", 0) for _, r in seen] == refused_before
    assert L.skipped["refused by the recipe"] == len(SMALL)
