"""A ``--target`` run with the recipe's mixing ops (mixup, mixgen), label noise, ``--label-fraction``,
``--probe`` and ``--pretrain``.

Before (2026-12-04) each of them was refused with a target: the mixing ops wrote ``label_b`` for class
labels only, and the label-fraction, probe and pre-training paths were thought to read class labels.
Now a mixed row's target is ``lam * y_i + (1 - lam) * y_partner`` (timm's Mixup for multi-label: BCE on
the soft target; a regression's standardised values alike, MSE against the mixed value)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mmdata
from mmdata import Sample, collate
from mmdata.augment.mix import MIX_PARTNER
from mmdata.augment.recipe import load_recipe
from mmdata.errors import MMDataError
from mmdata.testing import shard_target_dataset
from mmdata.train import FusionModel, train
from mmdata.train.loop import train_step
from mmdata.train.targets import Target

FAST = {"epochs": 12, "batch_size": 8, "threads": 1, "eval_robustness": False}
MIXUP = {"seed": 0, "batch": [{"op": "mixup", "p": 0.8, "alpha": 0.4}]}


@pytest.fixture(scope="module")
def targets_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A messy folder's manifest with a numeric ``score`` and a label-set ``genres`` column that follow the
    class (as tests/train/test_targets.py builds it)."""
    return shard_target_dataset(tmp_path_factory.mktemp("target_mix"), n=80, meta=("score", "genres"))


def _truth(ds: Path, split: str, key: str) -> dict[str, object]:
    return {s.key: (s.fields.get("json") or {}).get(key) for s in mmdata.ShardDataset(ds, split=split)}


def _chance(ds: Path) -> tuple[float, float]:
    """On test: the best micro-F1 of a constant prediction (each label always on or always off), and the
    mAP of a random ranking (each label's prevalence, averaged)."""
    sets = [json.loads(v) for v in _truth(ds, "test", "genres").values() if v is not None]
    names = sorted({n for s in sets for n in s})
    hot = np.array([[n in s for n in names] for s in sets], dtype=float)
    best = 0.0
    for mask in range(1, 2 ** len(names)):
        on = np.array([(mask >> j) & 1 for j in range(len(names))], dtype=bool)
        tp = hot[:, on].sum()
        fp = (1 - hot[:, on]).sum()
        fn = hot[:, ~on].sum()
        best = max(best, 2 * tp / (2 * tp + fp + fn))
    return best, float(hot.mean(0).mean())


def _no_time(m: dict) -> dict:
    return {k: v for k, v in m.items() if k != "wall_s"}


# ---- the mixed targets, on a batch ----------------------------------------------------------------------


def _batch(kind: str, n: int = 8) -> tuple[Target, object]:
    """Rows with an image (rows 1 and 5 without: row 1's audio is its primary modality for mixup, row 5 has
    neither and is never mixed by it; mixgen's primary is then the text), metadata targets (rows 3 and 6
    unlabelled)."""
    g = torch.Generator().manual_seed(0)
    samples = []
    for i in range(n):
        fields: dict = {"text": f"w{i}"}
        if i not in (1, 5):
            fields["image"] = torch.randint(0, 256, (3, 6, 6), generator=g, dtype=torch.uint8)
        if i != 5:
            fields["audio"] = torch.randn(1, 100, generator=g)
        if i not in (3, 6):
            fields["json"] = {"g": ["a", "b", "c"][: 1 + i % 3], "s": float(i)}
        samples.append(Sample(f"k{i}", fields, sample_rate=8000))
    target = Target("multilabel", "g", ["a", "b", "c"]) if kind == "multilabel" else Target("regression", "s", [], 3.0, 2.0)
    return target, collate(samples)


@pytest.mark.parametrize("kind", ["multilabel", "regression"])
@pytest.mark.parametrize("op", [{"op": "mixup", "p": 0.7, "alpha": 0.4}, {"op": "mixgen", "p": 0.7, "lam": 0.6}])
def test_a_mixed_target_is_exactly_the_lam_weighted_pair(kind: str, op: dict) -> None:
    target, batch = _batch(kind, n=16)
    out = load_recipe({"seed": 5, "batch": [op]}).apply_batch_section(batch)
    params = out.meta["aug_batch"][0]["params"]
    perm, rows = params["perm"], params["rows"]
    y, labelled = target.values(out, torch.device("cpu"))
    soft, keep = target.mixed(out, y)
    lam = out["mix_lam"]
    order = ("image", "audio") if op["op"] == "mixup" else ("image", "text")  # the op's primary modality first
    mixed_rows = 0
    for i, j in enumerate(perm):
        primary = next((m for m in order if bool(out.present[m][i])), None)  # row 5 has neither for mixup
        mixed = rows[i] and primary is not None and bool(out.present[primary][j])
        partner = int(out.meta[MIX_PARTNER][i])
        assert partner == (j if mixed else i)
        if not mixed:  # a row whose primary modality was not mixed keeps its own target: mix_lam 1
            assert float(lam[i]) == 1.0
        mixed_rows += mixed
        yi, yj = (y[i].clamp(min=0), y[partner].clamp(min=0)) if kind == "multilabel" else (y[i], y[partner])
        expect = lam[i] * yi + (1 - lam[i]) * yj
        assert bool(keep[i]) == bool(labelled[i] and labelled[partner])  # an unlabelled partner: out of the loss
        if keep[i]:
            assert torch.equal(soft[i], expect), (i, soft[i], expect)
    assert 2 <= mixed_rows < len(out) and not keep.all()


def test_row_without_its_primary_modality_mixed_keeps_its_target_even_beside_an_unlabelled_partner() -> None:
    """mixup of an image row with an image-less partner: the image is not mixed, so the row keeps its own
    target and stays in the loss (the class path's rule: an unlabelled partner does not remove it)."""
    target = Target("regression", "s", [], 0.0, 1.0)
    g = torch.Generator().manual_seed(0)
    batch = collate([Sample("a", {"image": torch.randint(0, 256, (3, 4, 4), generator=g, dtype=torch.uint8),
                                  "json": {"s": 2.0}}),
                     Sample("b", {"text": "no image"})])
    out = load_recipe({"seed": 0, "batch": [{"op": "mixup", "p": 1.0}]}).apply_batch_section(batch)
    assert out["mix_lam"].tolist() == [1.0, 1.0] and out.meta[MIX_PARTNER].tolist() == [0, 1]
    soft, keep = target.mixed(out, target.values(out, torch.device("cpu"))[0])
    assert soft[0].item() == 2.0 and keep.tolist() == [True, False]


@pytest.mark.parametrize("kind", ["multilabel", "regression"])
def test_the_loss_of_a_mixed_batch_is_bce_or_mse_on_the_soft_target(kind: str) -> None:
    target, batch = _batch(kind)
    out = load_recipe({"seed": 2, "batch": [{"op": "mixup", "p": 1.0, "alpha": 1.0}]}).apply_batch_section(batch)
    y, _ = target.values(out, torch.device("cpu"))
    logits = torch.randn(len(out), target.outputs, generator=torch.Generator().manual_seed(1))
    loss, n = target.loss(logits, out, y)
    lam, partner = out["mix_lam"], out.meta[MIX_PARTNER]
    has = (y >= 0).all(1) if kind == "multilabel" else ~torch.isnan(y)
    ok = [i for i in range(len(out)) if has[i] and has[partner[i]]]
    if kind == "multilabel":
        t = lam[:, None] * y + (1 - lam[:, None]) * y[partner]
        rows = [F.binary_cross_entropy_with_logits(logits[i], t[i], reduction="sum") for i in ok]
    else:
        t = lam * y + (1 - lam) * y[partner]
        rows = [(logits[i, 0] - t[i]) ** 2 for i in ok]
    assert int(n) == len(ok) and 0 < len(ok) < len(out)
    assert float(loss) == pytest.approx(float(torch.stack(rows).mean()), rel=1e-6)


@pytest.mark.parametrize("kind", ["multilabel", "regression"])
def test_label_noise_then_mixing_mixes_the_partners_noisy_target(kind: str) -> None:
    """A flipped sample's target is its noisy one wherever it appears: as the row, and as a partner."""
    target, batch = _batch(kind)
    out = load_recipe({"seed": 4, "batch": [{"op": "mixup", "p": 1.0}]}).apply_batch_section(batch)
    y, _ = target.values(out, torch.device("cpu"))
    noisy = target.noisy(y, out.keys, 1.0, seed=3)
    assert not torch.equal(noisy.nan_to_num(), y.nan_to_num())
    soft, keep = target.mixed(out, noisy)
    lam, partner = out["mix_lam"], out.meta[MIX_PARTNER]
    for i in range(len(out)):
        if keep[i]:
            w = lam[i]
            expect = w * noisy[i] + (1 - w) * noisy[partner[i]]
            assert torch.equal(soft[i], expect)


def test_an_unmixed_batch_trains_exactly_as_before() -> None:
    """Target.mixed of a batch no op mixed is y itself: the loss of a plain target run did not move."""
    for kind in ("multilabel", "regression"):
        target, batch = _batch(kind)
        y, labelled = target.values(batch, torch.device("cpu"))
        soft, keep = target.mixed(batch, y)
        assert torch.equal(soft, y.clamp(min=0) if kind == "multilabel" else y.nan_to_num())
        assert keep.tolist() == labelled.tolist()


def test_a_users_mixing_op_without_the_partner_rows_is_refused_naming_it() -> None:
    target, batch = _batch("regression")
    mixed = batch.replace(mix_lam=torch.full((len(batch),), 0.5))
    mixed.meta["mixed_by"] = "batch[0] (my_mix)"
    with pytest.raises(MMDataError, match=r"batch\[0\] \(my_mix\) mixed this batch .* mix_partner"):
        target.mixed(mixed, target.values(mixed, torch.device("cpu"))[0])


def test_a_class_batch_without_labels_mixed_trains_on_a_zero_loss() -> None:
    """mix_lam is written for every mixed batch now; a class batch of unlabelled rows has no label_b."""
    g = torch.Generator().manual_seed(0)
    batch = collate([Sample(f"k{i}", {"image": torch.randint(0, 256, (3, 4, 4), generator=g, dtype=torch.uint8)})
                     for i in range(4)])
    out = load_recipe({"seed": 0, "batch": [{"op": "mixup", "p": 1.0}]}).apply_batch_section(batch)
    assert "mix_lam" in out and "label_b" not in out
    model = FusionModel(["image"], "concat", classes=3, image_channels=3, image_hw=(4, 4))
    loss, n = train_step(model, torch.optim.SGD(model.parameters(), lr=0.1), out, 3)
    assert float(loss) == 0.0 and int(n) == 0


# ---- training runs ------------------------------------------------------------------------------------------


def test_multilabel_with_mixup_learns(targets_ds: Path) -> None:
    m = train(targets_ds, target="genres", recipe=MIXUP, **FAST)
    f1, ap = _chance(targets_ds)  # a test split of 15 labelled samples, most of one class: a constant scores 0.77
    assert m["test"]["micro_f1"] > f1 and m["test"]["map"] > ap + 0.2, (m["test"], f1, ap)
    assert m["config"]["recipe"]["batch"][0]["op"] == "mixup"


def test_multilabel_with_mixgen_trains(targets_ds: Path) -> None:
    m = train(targets_ds, target="genres", recipe={"seed": 0, "batch": [{"op": "mixgen", "p": 0.5}]},
              **{**FAST, "epochs": 3})
    assert 0 <= m["test"]["micro_f1"] <= 1 and m["history"][-1]["train_loss"] > 0


def test_regression_with_mixup_learns(targets_ds: Path) -> None:
    m = train(targets_ds, target="score", recipe=MIXUP, **FAST)
    assert m["test"]["r"] > 0.7 and m["test"]["mae"] < 0.8, m["test"]


def test_a_mixed_target_run_is_deterministic_and_the_seed_matters(targets_ds: Path) -> None:
    runs = [train(targets_ds, target=t, recipe=MIXUP, seed=s, label_noise=0.2, **{**FAST, "epochs": 2})
            for t, s in (("genres", 3), ("genres", 3), ("genres", 4), ("score", 3), ("score", 3))]
    a, b, c, r1, r2 = (_no_time(m) for m in runs)
    assert a == b and r1 == r2
    assert a["history"] != c["history"]


# ---- label fraction, probe, pre-training -----------------------------------------------------------------


def _seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: object) -> tuple[dict, set[str]]:
    rec = tmp_path / f"seen-{len(list(tmp_path.iterdir()))}"
    rec.mkdir()
    monkeypatch.setenv("MMDATA_RECORD_SEEN", str(rec))
    m = train(**kw)  # type: ignore[arg-type]
    keys = {k for line in (rec / "seen-rank0.jsonl").read_text().splitlines() for k in json.loads(line)["keys"]}
    return m, keys


def test_label_fraction_trains_on_a_seeded_fraction_of_the_labelled_samples(targets_ds: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    truth = _truth(targets_ds, "train", "score")
    labelled = {k for k, v in truth.items() if v is not None}
    kw = {"data": targets_ds, "target": "score", **FAST, "epochs": 2}
    m, seen = _seen(tmp_path, monkeypatch, label_fraction=0.5, seed=1, **kw)
    again, seen_again = _seen(tmp_path, monkeypatch, label_fraction=0.5, seed=1, **kw)
    other, seen_other = _seen(tmp_path, monkeypatch, label_fraction=0.5, seed=2, **kw)
    assert seen == seen_again and _no_time(m) == _no_time(again)  # deterministic by seed
    assert seen != seen_other
    assert seen < set(truth) and 0.25 * len(truth) < len(seen) < 0.75 * len(truth)
    assert m["labelled_train"] == len(seen & labelled) and m["config"]["label_fraction"] == 0.5
    # the same subset as a class run of that seed keeps (the loader's fraction, per sample key and seed)
    _, seen_class = _seen(tmp_path, monkeypatch, data=targets_ds, label_fraction=0.5, seed=1, **FAST | {"epochs": 1})
    assert seen_class == seen


def test_label_fraction_with_a_multilabel_target_and_mixup(targets_ds: Path) -> None:
    m = train(targets_ds, target="genres", label_fraction=0.6, recipe=MIXUP, seed=0, **{**FAST, "epochs": 2})
    assert m["target"]["kind"] == "multilabel" and 0 < m["labelled_train"] < m["samples"]["train"]["labelled"]


def test_probe_with_a_target_trains_only_the_linear_layer(targets_ds: Path, tmp_path: Path) -> None:
    m = train(targets_ds, target="score", probe=True, out=tmp_path / "p", seed=0, **{**FAST, "epochs": 2})
    final = torch.load(tmp_path / "p" / "model.pt", weights_only=True)
    assert sorted(k for k in final if k.startswith("fusion.")) == ["fusion.linear.bias", "fusion.linear.weight"]
    assert final["fusion.linear.weight"].shape[0] == 1 and m["config"]["probe"]
    torch.manual_seed(0)  # the encoders are as initialised: frozen
    m0 = train(targets_ds, target="score", probe=True, seed=0, out=tmp_path / "p0", **{**FAST, "epochs": 1})
    first = torch.load(tmp_path / "p0" / "model.pt", weights_only=True)
    enc = [k for k in final if k.startswith("encoders.")]
    assert enc and all(torch.equal(final[k], first[k]) for k in enc) and m0["target"]["kind"] == "regression"


def test_pretrain_then_fine_tune_on_a_target(targets_ds: Path, tmp_path: Path) -> None:
    m = train(targets_ds, target="genres", pretrain="contrastive", pretrain_epochs=1, out=tmp_path / "pre",
              modalities=["image", "text"], **{**FAST, "epochs": 2})
    assert m["target"]["kind"] == "multilabel" and m["pretrain"]["epochs"] == 1 and m["retrieval"]
    assert (tmp_path / "pre" / "contrastive.pt").is_file() and (tmp_path / "pre" / "model.pt").is_file()


def test_exclude_same_class_with_a_target_is_refused_naming_both(targets_ds: Path) -> None:
    """Same-class negatives need one class per sample: a multi-label target is refused before any
    pre-training (a single-label one works: tests/train/test_same_class_target.py)."""
    with pytest.raises(MMDataError, match=r"--pretrain-arg exclude_same_class=true with --target genres: 'genres' is a "
                                          r"multi-label target: training sample '[^']+' holds 2 labels"):
        train(targets_ds, target="genres", pretrain="contrastive", pretrain_args={"exclude_same_class": True},
              **{**FAST, "epochs": 1})


def test_mixing_with_a_target_in_the_cli(targets_ds: Path, tmp_path: Path, mmdata_cli) -> None:
    recipe = tmp_path / "mix.yaml"
    recipe.write_text("seed: 0\nbatch:\n  - {op: mixup, p: 0.5}\n")
    code, out = mmdata_cli(["train", str(targets_ds), "--target", "score", "--recipe", str(recipe), "--epochs", "1",
                            "--batch-size", "8", "--no-robustness", "--label-fraction", "0.5"])
    assert code == 0, out
    assert "mae" in out


@pytest.mark.parametrize("kind", ["multilabel", "regression"])
def test_a_mixed_target_step_never_reads_the_device_back(kind: str) -> None:
    """On the 'meta' device (tensors without data, standing in for CUDA) a host read of a device tensor
    raises: the mixed target, its noise and its loss stay on the device (mix_partner is host metadata)."""
    meta = torch.device("meta")
    target, batch = _batch(kind)
    out = load_recipe({"seed": 1, "batch": [{"op": "mixup", "p": 1.0}]}).apply_batch_section(batch.to(meta))
    assert out["mix_lam"].device == meta and out.meta[MIX_PARTNER].device.type == "cpu"
    model = FusionModel(["image", "audio", "text"], "concat", classes=target.outputs, image_channels=3).to(meta)
    loss, n = train_step(model, torch.optim.SGD(model.parameters(), lr=0.1), out, target, label_noise=0.3, seed=1)
    assert loss.device == meta and n.device == meta


def test_ddp_mixes_a_target(targets_ds: Path, tmp_path: Path) -> None:
    """torchrun with --target and a recipe's mixup (untested in DDP before): each rank mixes its own
    batches' label vectors; the run finishes on both ranks, rank 0 writes finite multi-label scores."""
    import math
    import os
    import subprocess
    import sys

    import yaml

    recipe = tmp_path / "mix.yaml"
    recipe.write_text(yaml.safe_dump(MIXUP), encoding="utf-8")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", "-m",
           "mmdata.train", str(targets_ds), "--target", "genres", "--recipe", str(recipe), "--epochs", "2",
           "--batch-size", "8", "--no-robustness", "--out", str(tmp_path / "ddp")]
    res = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=Path(__file__).parents[2],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert m["config"]["world_size"] == 2 and m["target"]["kind"] == "multilabel"
    assert [s["op"] for s in m["config"]["recipe"]["batch"]] == ["mixup"]
    assert all(math.isfinite(h["train_loss"]) for h in m["history"]) and math.isfinite(m["test"]["micro_f1"])
