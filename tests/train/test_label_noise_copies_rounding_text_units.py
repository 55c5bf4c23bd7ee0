"""Review of QA round 33 (trainer): the text-units summary honours the run's on_error and reads little; label
noise reaches a balance section's repeated copies, rounds half up and keeps metrics.json small; the card's
duplicates are worded by what is the same (a caption) and say when copies across splits carry other labels."""

from __future__ import annotations

import csv
import json
import tarfile
from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.errors import MMDataError
from mmdata.train import train

FAST = {"epochs": 1, "threads": 1, "batch_size": 8, "eval_robustness": False}
WORDS = ("red", "green", "blue", "cold", "warm", "dark", "light", "small")


def _manifest(root: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A text-only manifest (key, text, label) written as CSV."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "m.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["key", "text", "label"])
        w.writerows(rows)
    return path


def _captions(n: int) -> list[tuple[str, str, str]]:
    return [(f"s{i:03d}", f"{WORDS[i % 8]} {WORDS[(i * 3) % 8]} thing {i} {'yes' if i % 2 else 'no'}",
             "pos" if i % 2 else "neg") for i in range(n)]


# --- review #1 / #5: the text-units summary ---------------------------------------------------------------------------

def _break_one_caption(ds: Path) -> str:
    """Overwrites one training caption's bytes in its tar with 0xff (same length: no UTF-8); returns its key."""
    tar = ds / "train-000000.tar"
    with tarfile.open(tar) as t:
        member = next(m for m in t.getmembers() if m.name.endswith(".txt"))
    with open(tar, "r+b") as f:
        f.seek(member.offset_data)
        f.write(b"\xff" * member.size)
    return member.name.rsplit(".", 1)[0]


def test_text_units_honours_the_runs_on_error(tmp_path: Path) -> None:
    from mmdata.train.config import text_units

    mmdata.shard(_manifest(tmp_path / "raw", _captions(30)), tmp_path / "ds", split="train=0.6,val=0.2,test=0.2",
                 seed=0, progress=False)
    key = _break_one_caption(tmp_path / "ds")
    with pytest.raises(MMDataError, match=key):
        text_units(tmp_path / "ds", "train")
    units = text_units(tmp_path / "ds", "train", on_error="skip")
    assert units["skipped"] == 1 and units["captions"] == 17
    # review #1: --on-error skip used to end the run in the summary's read, before training
    m = train(tmp_path / "ds", fusion="concat", on_error="skip", out=tmp_path / "run", **FAST)
    assert m["inputs"]["text_units"]["skipped"] == 1
    assert m["inputs"]["text_units"]["captions"] == 17


def test_text_units_reads_a_bounded_sample_once_per_dataset(tmp_path: Path) -> None:
    from mmdata.train import config

    mmdata.shard(_manifest(tmp_path / "raw", _captions(30)), tmp_path / "ds", split="train=0.6,val=0.2,test=0.2",
                 seed=0, progress=False)
    assert config.TEXT_UNIT_CAPTIONS <= 500
    units = config.text_units(tmp_path / "ds", "train", limit=5)
    assert units["captions"] == 5 and units["capped"]
    # the same dataset (by fingerprint) and splits again: the summary computed before, not a second read
    (tmp_path / "ds" / "train-000000.tar").rename(tmp_path / "gone.tar")
    assert config.text_units(tmp_path / "ds", "train", limit=5) == units


# --- review #2 / #6: label noise ---------------------------------------------------------------------------------------

def test_label_noise_rounds_half_up_and_nests_across_fractions() -> None:
    from mmdata.train.targets import plan_label_noise

    five = {f"k{i}": i % 2 for i in range(5)}
    assert len(plan_label_noise(five, 0.5, 0).replaced) == 3  # round(2.5) would be 2 (banker's rounding)
    assert len(plan_label_noise({f"k{i:02d}": i % 2 for i in range(25)}, 0.1, 0).replaced) == 3
    labels = {f"k{i:03d}": i % 3 for i in range(200)}
    small, large = plan_label_noise(labels, 0.1, 4).replaced, plan_label_noise(labels, 0.3, 4).replaced
    assert set(small) < set(large) and all(large[k] == v for k, v in small.items())


def test_label_noise_record_caps_its_keys_and_digests_all() -> None:
    import hashlib

    from mmdata.train.targets import NOISE_KEYS_SHOWN, plan_label_noise

    labels = {f"k{i:05d}": i % 2 for i in range(3 * NOISE_KEYS_SHOWN)}
    rec = plan_label_noise(labels, 0.5, 0).record()
    assert rec["flipped"] == round(1.5 * NOISE_KEYS_SHOWN) and len(rec["keys"]) == NOISE_KEYS_SHOWN
    every = sorted(plan_label_noise(labels, 0.5, 0).replaced)
    assert rec["keys"] == every[:NOISE_KEYS_SHOWN]
    assert rec["keys_sha256"] == hashlib.sha256("\n".join(every).encode()).hexdigest()
    assert plan_label_noise({"a": 0, "b": 1}, 1.0, 0).record()["keys"] == ["a", "b"]


def test_planned_noise_reaches_a_balance_sections_copies() -> None:
    from mmdata import Sample, collate
    from mmdata.train.targets import LabelNoise, Target, noise_keys

    samples = [Sample("a", {"text": "x", "label": 0}), Sample("a#r1", {"text": "x", "label": 0}, meta={"copy": 1}),
               Sample("b#r1", {"text": "y", "label": 1}), Sample("b", {"text": "y", "label": 1}, meta={"copy": 0})]
    batch = collate(samples)
    # 'b#r1' without a copy in its meta is a sample of that name, not a copy of 'b'
    assert noise_keys(batch) == ["a", "a", "b#r1", "b"]
    target = Target.classes(2)
    y = torch.tensor([0, 0, 1, 1])
    assert target.noisy(y, noise_keys(batch), LabelNoise(0.5, 2, {"a": 1}), 0).tolist() == [1, 1, 1, 1]


def test_a_flipped_sample_trains_with_its_flipped_label_in_every_balance_copy(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.train import loop, targets

    rows = _captions(36)
    rows = [(k, t, "pos" if i % 6 == 0 else "neg") for i, (k, t, _) in enumerate(rows)]  # 1 : 5, balance repeats pos
    mmdata.shard(_manifest(tmp_path / "raw", rows), tmp_path / "ds", split="train=0.7,val=0.15,test=0.15", seed=0,
                 progress=False)
    (tmp_path / "r.yaml").write_text("balance: {by: label, mode: over}\n", encoding="utf-8")
    seen: list[tuple[str, int, int]] = []
    rows: list[list[str]] = []
    planned, known = targets.Target._planned, getattr(loop, "noise_keys", None)

    def keys_of(batch):  # the real function; the batch's own keys (copies: '<key>#r<i>') kept for record()
        rows.append(list(batch.keys))
        return known(batch)

    def record(self, y, keys, noise):  # the real method; each row's batch key, target given and returned
        out = planned(self, y, keys, noise)
        seen.extend(zip(rows.pop() if rows else keys, y.tolist(), out.tolist()))
        return out

    monkeypatch.setattr(targets.Target, "_planned", record)
    monkeypatch.setattr(loop, "noise_keys", keys_of, raising=False)
    m = train(tmp_path / "ds", recipe=tmp_path / "r.yaml", label_noise=0.5, out=tmp_path / "run", **FAST)
    flipped = set(json.loads((tmp_path / "run" / "metrics.json").read_text())["label_noise"]["keys"])
    assert m["label_noise"]["flipped"] == len(flipped) > 0
    copies = [(k, a, b) for k, a, b in seen if "#r" in k]
    assert copies, "the recipe repeated no sample"
    for k, a, b in seen:  # every row of a flipped sample, copy or not, carries the flipped label; no other changes
        assert (a != b) == (k.split("#r")[0] in flipped), k


# --- review #3 / #4: the card's duplicates in the run's warnings -------------------------------------------------------

def test_text_only_copies_are_called_captions_and_other_labels_across_splits_are_said(tmp_path: Path) -> None:
    from mmdata.shards.index import load_card
    from mmdata.train.config import duplicate_warnings

    rows = [(k, t, y, ("train", "train", "val", "test")[i % 4]) for i, (k, t, y) in enumerate(_captions(24))]
    rows[3] = ("s003", rows[0][1], "neg" if rows[0][2] == "pos" else "pos", "test")  # s000's caption, the other label
    (tmp_path / "raw").mkdir()
    with open(tmp_path / "raw" / "m.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("key", "text", "label", "split"), *rows])
    mmdata.shard(tmp_path / "raw" / "m.csv", tmp_path / "ds", progress=False)
    card = load_card(tmp_path / "ds")
    said = duplicate_warnings(tmp_path / "ds", card, None)
    assert said, card.get("duplicates")
    text = " ".join(said)
    assert "image or audio" not in text and "caption" in text, text
    assert "labels differ" in text and "'s000'" in text and "'s003'" in text, text
    # a run reading train and val only: the test copy is none of its business
    assert duplicate_warnings(tmp_path / "ds", card, {"train": ["train"], "val": ["val"]}) == []
