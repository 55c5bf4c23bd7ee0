"""Recipes (round trip, validation), replay logs, the loader (workers vs device, epochs, resume, cache)
and balanced sampling."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
import torch

import mmdata
from mmdata.augment.balance import BalancePlan
from mmdata.augment.loader import clear_decoded
from mmdata.augment.recipe import load_recipe
from mmdata.augment.replay import load_log, log_rows, save_log
from mmdata.errors import RecipeError
from mmdata.testing import make_sample_folder

RECIPES = sorted(Path(__file__).parents[2].joinpath("recipes").glob("*.yaml"))
EXACT = {"seed": 3, "image": [{"op": "hflip", "p": 0.5}, {"op": "cutout", "p": 0.5}],
         "audio": [{"op": "gain", "p": 0.5}, {"op": "time_mask", "p": 0.5}, {"op": "polarity", "p": 0.3}],
         "text": [{"op": "token_mask", "p": 0.7, "p_token": 0.3}, {"op": "word_delete", "p": 0.3}],
         "sample": [{"op": "modality_dropout", "p": 0.3}]}


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("aug")
    mmdata.shard(make_sample_folder(root / "raw", n=30), root / "ds", maxcount=5, progress=False)
    return root / "ds"


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_files_round_trip(path: Path) -> None:
    text = path.read_text()
    r = load_recipe(path)
    assert r.to_yaml() == text
    assert load_recipe(r.to_dict()).to_dict() == r.to_dict()


@pytest.mark.parametrize("recipe,match", [
    ({"image": [{"op": "flip_it"}]}, r"image\[0\]: unknown image op 'flip_it'; .*allowed: .*hflip"),
    ({"image": [{"op": "hflip", "q": 1}]}, r"image\[0\]: unknown key\(s\) \['q'\]"),
    ({"image": [{"op": "random_resized_crop", "scale": [0.5, 2.0]}]}, r"image\[0\]\.scale: 2.0 is out of range; allowed \[0.0, 1.0\]"),
    ({"audio": [{"op": "gain", "p": 1.5}]}, r"audio\[0\]\.p: 1.5 is out of range"),
    ({"text": [{"op": "typo", "kind": "qwerty"}]}, r"text\[0\]\.kind: 'qwerty' is not allowed; choose one of \['keyboard', 'ocr'\]"),
    ({"imgs": []}, r"unknown section\(s\) \['imgs'\]; allowed"),
    ({"balance": {"mode": "sideways"}}, r"balance\.mode: 'sideways' is not allowed"),
    ({"batch": [{"op": "mixup", "alpha": -1}]}, r"batch\[0\]\.alpha"),
    ({"normalize": {"image": [{"op": "to_rgb"}, {"op": "hflip"}]}},
     r"normalize\.image\[1\]: 'hflip' draws random params; the normalize stage takes deterministic ops only: center_crop, pad_to_size"),
    ({"normalize": {"audio": [{"op": "pad_trim", "p": 0.5}]}}, r"normalize\.audio\[0\]\.p: normalize ops apply to every sample; p must be 1\.0"),
    ({"normalize": {"video": []}}, r"normalize: unknown section\(s\) \['video'\]"),
    ({"normalize": {"text": [{"op": "max_tokens", "n": 0}]}}, r"normalize\.text\[0\]\.n: 0 is out of range; allowed \[1, 100000\]"),
    ({"image": [{"op": "resize", "size": [3, 4]}]}, r"image\[0\]\.size: side 'shorter' takes one integer"),
    ({"image": [{"op": "to_rgb", "p": 0.5}]}, r"image\[0\]\.p: to_rgb changes the channel count"),
    ({"keying": "random"}, r"keying: 'random' is not allowed; choose one of \['identity', 'position'\]"),
])
def test_recipe_errors_name_the_key(recipe: dict, match: str) -> None:
    with pytest.raises(RecipeError, match=match):
        load_recipe(recipe)


def test_recipe_error_at_cli_has_no_traceback(tmp_path: Path, ds: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("image:\n  - {op: hflip, p: 2}\n")
    res = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "preview", str(ds), "--recipe", str(bad), "--out", str(tmp_path / "g.png")],
                         capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert res.returncode == 2 and "image[0].p" in res.stderr and "Traceback" not in res.stderr


def test_replay_log_reproduces_exactly(tmp_path: Path, ds: Path) -> None:
    r = load_recipe(RECIPES[0].parent / "avdigits.yaml")
    samples = list(mmdata.open_dataset(ds))[:8]
    outs = [r.apply_sample(s, epoch=2) for s in samples]
    save_log(tmp_path / "log.parquet", [row for o in outs for row in log_rows(o.key, o.meta["aug"], 2)])
    logs = load_log(tmp_path / "log.parquet")
    for s, o in zip(samples, outs):
        again = r.replay(s, logs[(s.key, 2)])
        for k in o.fields:
            a, b = o[k], again[k]
            assert torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def _batches(ds: Path, **kw) -> list[mmdata.Batch]:
    return list(mmdata.loader(ds, 4, recipe=EXACT, seed=1, **kw))


def _same(a: mmdata.Batch, b: mmdata.Batch) -> None:
    assert a.keys == b.keys
    for name in ("image", "audio", "label"):
        # a modality dropped from every sample may be absent from one batch and all-False in the other
        pa, pb = (x.present.get(name, torch.zeros(len(x), dtype=torch.bool)) for x in (a, b))
        assert torch.equal(pa, pb), name
        if pa.any():
            assert torch.equal(a[name][pa], b[name][pb]), name
    # token padding width may differ (collate after vs before word deletion): compare valid tokens
    assert torch.equal(a.lengths["tokens"], b.lengths["tokens"])
    w = int(a.lengths["tokens"].max())
    assert torch.equal(a["tokens"][:, :w], b["tokens"][:, :w])
    assert a["text"] == b["text"]


def test_workers_and_device_paths_give_the_same_batches(ds: Path) -> None:
    w = _batches(ds, augment_on="workers")
    d = _batches(ds, augment_on="device")
    w2 = _batches(ds, augment_on="workers", num_workers=2)
    assert sum(len(b) for b in w) == 30
    for a, b in zip(w, d):
        _same(a, b)
    assert sorted(k for b in w2 for k in b.keys) == sorted(k for b in w for k in b.keys)
    by_key = {k: (b, i) for b in w for i, k in enumerate(b.keys)}
    for b in w2:  # same per-sample params whatever the worker count / batch composition
        for i, k in enumerate(b.keys):
            ref, j = by_key[k]
            assert torch.equal(b["image"][i], ref["image"][j]) and b["text"][i] == ref["text"][j]


def test_new_epoch_draws_new_params(ds: Path) -> None:
    l = mmdata.loader(ds, 30, recipe=EXACT, seed=1, shuffle=False)
    e0 = next(iter(l))
    l.set_epoch(1)
    e1 = next(iter(l))
    assert e0.keys == e1.keys and not torch.equal(e0["image"], e1["image"])
    l.set_epoch(0)
    _same(next(iter(l)), e0)


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_resume_midpoint(ds: Path, workers: int) -> None:
    full = _batches(ds, num_workers=workers)
    l = mmdata.loader(ds, 4, recipe=EXACT, seed=1, num_workers=workers)
    it = iter(l)
    head = [next(it) for _ in range(3)]
    state = l.state_dict()
    del it
    fresh = mmdata.loader(ds, 4, recipe=EXACT, seed=1, num_workers=workers)
    fresh.load_state_dict(state)
    rest = list(fresh)
    assert [b.keys for b in head + rest] == [b.keys for b in full]
    for a, b in zip(head + rest, full):
        _same(a, b)


def test_cache_serves_the_same_samples(ds: Path) -> None:
    a = mmdata.loader(ds, 8, recipe=EXACT, seed=2, cache=True)
    keys = sorted(k for b in a for k in b.keys)
    assert keys == sorted(s.key for s in mmdata.open_dataset(ds))
    a.set_epoch(0)
    first = [b.keys for b in a]
    a.set_epoch(0)
    assert [b.keys for b in a] == first  # deterministic per epoch (without set_epoch the next pass is epoch 1)


def test_cache_decodes_a_split_once_per_process_and_counts_its_skips(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=12), ds, progress=False)
    d = mmdata.open_dataset(ds, required=["audio"], on_error="skip")
    kept = [s.key for s in d]
    assert d.skipped and sum(d.skipped.values()) == 12 - len(kept)  # the folder has samples without audio
    clear_decoded()
    kw = {"cache": True, "required": ["audio"], "on_error": "skip", "shuffle": False}
    a = mmdata.loader(ds, 4, recipe=EXACT, seed=1, **kw)
    b = mmdata.loader(ds, 4, recipe=EXACT, seed=2, **kw)  # another seed: the same decoded (normalized) split
    assert b.source.samples is a.source.samples
    assert a.skipped == b.skipped == d.skipped  # skips of the decoding pass are reported, also from the memo
    assert [k for batch in b for k in batch.keys] == kept
    other = mmdata.loader(ds, 4, recipe={"normalize": {"image": [{"op": "to_rgb"}]}}, **kw)  # another normalize stage
    assert other.source.samples is not a.source.samples and other.source.samples[0]["image"].shape[0] == 3
    st = (ds / "index.parquet").stat()
    os.utime(ds / "index.parquet", ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # the folder was rewritten
    assert mmdata.loader(ds, 4, recipe=EXACT, seed=1, **kw).source.samples is not a.source.samples
    clear_decoded()


def _label_counts(ds: Path, balance: dict, epochs: int = 20) -> Counter:
    """Labels the balanced training stream of ``ds`` yields over ``epochs`` epochs (-1: unlabelled)."""
    c: Counter = Counter()
    loader = mmdata.loader(ds, 64, balance=balance, seed=0, modalities=["label"])
    for e in range(epochs):
        loader.set_epoch(e)
        for b in loader:
            c.update(b["label"].tolist())
    return c


def test_balance_over_under_and_fraction(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=40, missing=False)
    for i in range(40):  # skew: class 0 for 28 samples, class 1 for 8, class 2 for 4
        (raw / f"{i:06d}.cls").write_text("0" if i < 28 else "1" if i < 36 else "2")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    ds = tmp_path / "ds"

    over = _label_counts(ds, {"by": "label", "mode": "over"})
    for c in (1, 2):  # expected 28 per class per epoch; sd of the Bernoulli part is small
        assert abs(over[c] / 20 - 28) < 3, over
    under = _label_counts(ds, {"by": "label", "mode": "under"})
    for c in (0, 1):  # expected 4 per epoch each
        assert abs(under[c] / 20 - 4) < 1.5, under
    assert under[2] == 80
    plan = BalancePlan({f"{i:06d}": str(0 if i < 28 else 1) for i in range(36)}, {"mode": "repeat_factor", "threshold": 0.5}, 0)
    assert plan.rate["0"] == 1.0 and plan.rate["1"] > 1.0
    frac = mmdata.loader(ds, 64, balance={"fraction": {"0": 0.25}}, seed=0, modalities=["label"])
    kept0 = [k for b in frac for k, lab in zip(b.keys, b["label"].tolist()) if lab == 0]
    frac.set_epoch(1)
    kept1 = [k for b in frac for k, lab in zip(b.keys, b["label"].tolist()) if lab == 0]
    assert sorted(kept0) == sorted(kept1) and 2 <= len(kept0) <= 14  # same subset every epoch
    rep = mmdata.loader(ds, 64, balance={"mode": "over"}, seed=0, modalities=["label"])
    keys = [k for b in rep for k in b.keys]
    assert any("#r" in k for k in keys) and len(keys) == len(set(keys))


def test_balance_leaves_unlabelled_samples_alone(tmp_path: Path) -> None:
    """Unlabelled samples (label -1 in a batch: no loss) are not a class: each appears once per epoch
    as without balancing, and they never set the target of ``over`` / ``under`` / ``repeat_factor``."""
    raw = make_sample_folder(tmp_path / "raw", n=43, missing=False)
    for i in range(43):  # class 0: 24, class 1: 10, class 2: 6, unlabelled: 3
        if i >= 40:
            (raw / f"{i:06d}.cls").unlink()
        else:
            (raw / f"{i:06d}.cls").write_text("0" if i < 24 else "1" if i < 34 else "2")
    mmdata.shard(raw, tmp_path / "ds", progress=False)
    epochs = 20

    def counts(balance: dict) -> Counter:
        return _label_counts(tmp_path / "ds", balance, epochs)

    over = counts({"by": "label", "mode": "over"})
    assert over[-1] == 3 * epochs, over  # not oversampled to the largest class
    for c in (1, 2):
        assert abs(over[c] / epochs - 24) < 3, over
    under = counts({"by": "label", "mode": "under"})
    assert under[-1] == 3 * epochs and under[2] == 6 * epochs, under  # 3 unlabelled do not set the target
    for c in (0, 1):
        assert abs(under[c] / epochs - 6) < 1.5, under
    # many unlabelled samples do not set the target of `over` either, nor the frequencies of repeat_factor
    groups = {f"u{i}": "(none)" for i in range(30)} | {f"a{i}": "0" for i in range(10)} | {f"b{i}": "1" for i in range(5)}
    plan = BalancePlan(groups, {"by": "label", "mode": "over"}, 0)
    assert plan.rate == {"(none)": 1.0, "0": 1.0, "1": 2.0}
    assert all(plan.repeats(f"u{i}", e) == 1 for i in range(30) for e in range(3))
    plan = BalancePlan(groups, {"by": "label", "mode": "under"}, 0)
    assert plan.rate == {"(none)": 1.0, "0": 0.5, "1": 1.0}
    plan = BalancePlan(groups, {"by": "label", "mode": "repeat_factor", "threshold": 0.5}, 0)
    assert plan.rate["(none)"] == 1.0 and plan.rate["1"] == pytest.approx((0.5 / (5 / 15)) ** 0.5)
    # grouping by modality pattern: every sample is in a pattern, labelled or not
    plan = BalancePlan({"a": "image", "b": "image", "c": "audio+image"}, {"by": "modalities", "mode": "over"}, 0)
    assert plan.rate == {"image": 1.0, "audio+image": 2.0}


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipes_pickle_for_spawned_workers(path: Path, ds: Path) -> None:
    """DataLoader workers started with spawn (macOS, Windows) receive the recipe pickled: composites
    included, it must round-trip and draw the same params."""
    import pickle

    r = load_recipe(path)
    again = pickle.loads(pickle.dumps(r))
    s = next(iter(mmdata.open_dataset(ds)))
    assert again.to_dict() == r.to_dict()
    assert again.apply_sample(s, epoch=1).meta["aug"] == r.apply_sample(s, epoch=1).meta["aug"]
