"""Training on a small avdigits build: beats chance, deterministic, outputs, label noise, DDP exactly-once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from mmdata.augment.loader import clear_decoded
from mmdata.datasets.avdigits import build
from mmdata.shards import index as idx
from mmdata.train import train
from mmdata.train.evaluate import decode_correct
from mmdata.train.loop import noisy_labels

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("av") / "av", limit=20, progress=False)


def test_train_outputs_and_determinism(tmp_path: Path, small: Path) -> None:
    clear_decoded()
    a = train(small, fusion="concat", epochs=8, seed=1, out=tmp_path / "a", threads=1)
    b = train(small, fusion="concat", epochs=8, seed=1, threads=1)  # the splits decoded for a are reused
    assert a["test"] == b["test"] and a["robustness"] == b["robustness"]  # same seed -> same metrics on CPU
    assert a["val"] == b["val"] and a["per_class"] == b["per_class"]
    assert a["val"]["accuracy"] == a["history"][a["best_epoch"]]["val_accuracy"]  # the best epoch's val pass
    keys, right = decode_correct(a["correct_on_test"])  # which test examples were right, in the split's order
    assert len(right) == 40 and right.mean() == pytest.approx(a["test"]["accuracy"]) and b["correct_on_test"] == a["correct_on_test"]
    assert a["test"]["accuracy"] > 0.25  # 10 classes: chance is 0.1
    assert set(a["test"]) == {"accuracy", "macro_f1", "balanced_accuracy", "nll", "ece", "auroc", "auprc"}
    rob = a["robustness"]
    assert set(rob["missing"]) == {"image", "audio", "text"}
    curve = rob["corruption"]["image"]
    assert len(curve["levels"]) == len(curve["accuracy"]) and 0 <= curve["auc"] <= 1
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["test"] == a["test"] and m["data_fingerprint"]
    assert m["classes"]["names"][:2] == ["zero", "one"] and set(m["per_class"]["test"]) == set(m["classes"]["names"])
    assert m["inputs"]["image_size"] == [16, 16] and m["inputs"]["sample_rate"] == 8000 and m["cache"]["train"]
    assert m["samples"]["test"] == {"samples": 40, "labelled": 40, "unlabelled": 0}
    preds = pq.read_table(tmp_path / "a" / "predictions.parquet").to_pydict()
    assert len(preds["key"]) == 40 and set(preds) >= {"key", "label", "pred", "prob_label", "probs"}
    state = torch.load(tmp_path / "a" / "model.pt", weights_only=True)
    assert any(k.startswith("fusion.") for k in state)


def test_val_inputs_computed_once_score_like_the_streamed_batches(small: Path) -> None:
    from mmdata.train.evaluate import evaluate, prepare_eval
    from mmdata.train.loop import setup, train_epoch

    run = setup(small, seed=2, threads=1)
    train_epoch(run, 0)
    assert run.keep_val_inputs  # the small val split is held in memory
    kept = prepare_eval(run.model, run.loaders["val"])
    assert len(kept) == len(list(run.loaders["val"])) and all(k.inputs[0]["audio"].dim() == 3 for k in kept)
    run.model.eval()  # dropout off: both calls see the same network
    for drop in ([], ["audio"]):
        with torch.no_grad():
            assert torch.equal(run.model(kept[0].batch, drop=drop, inputs=kept[0].inputs), run.model(kept[0].batch, drop=drop))
    fresh = run.model.inputs(kept[0].batch)[1]
    assert all(torch.equal(v, fresh[m]) for m, v in kept[0].inputs[1].items())  # drop= left the kept masks alone
    assert evaluate(run.model, kept, run.classes, names=run.names) == evaluate(run.model, run.loaders["val"], run.classes,
                                                                               names=run.names)


def test_unimodal_and_recipe_and_sgd(small: Path) -> None:
    recipe = ROOT / "recipes" / "avdigits.yaml"
    m = train(small, fusion="late", modalities=["audio"], epochs=2, seed=0, recipe=recipe, optimizer="sgd",
              threads=1, eval_robustness=False)
    assert m["config"]["recipe"]["seed"] == 0 and 0 <= m["test"]["accuracy"] <= 1 and "robustness" not in m


def test_label_noise_flips_the_stated_fraction() -> None:
    keys = [f"k{i}" for i in range(2000)]
    labels = torch.randint(0, 10, (2000,), generator=torch.Generator().manual_seed(0))
    noisy = noisy_labels(keys, labels, 0.3, seed=4, classes=10)
    frac = (noisy != labels).double().mean().item()
    assert abs(frac - 0.3) < 0.03 and torch.equal(noisy, noisy_labels(keys, labels, 0.3, seed=4, classes=10))


def test_train_cli(tmp_path: Path, small: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app

    res = CliRunner().invoke(app, ["train", str(small), "--fusion", "gated", "--epochs", "1", "--out", str(tmp_path / "o"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["config"]["fusion"] == "gated"
    res = CliRunner().invoke(app, ["train", str(small), "--fusion", "nope", "--epochs", "1"])
    assert res.exit_code != 0
    res = CliRunner().invoke(app, ["train", str(small), "--fusion", "early", "--epochs", "1", "--image-size", "24", "--cache", "false",
                                   "--weight-decay", "0", "--no-robustness", "--threads", "1", "-j", "1"])
    assert res.exit_code == 0, res.output
    for shown in ("10 classes (zero, one", "24x24", "given", "8000 Hz mono", "test, per class", "streamed"):
        assert shown in res.output, shown


def test_ddp_entry_does_not_import_the_cli() -> None:
    code = ("import sys, mmdata.train.__main__ as m; ns = m.parser().parse_args(['d', '--image-size', '48x64', '--cache', 'false', '-j', '2', "
            "'--fusion-arg', 'order=image+(audio+text)', '--fusion-arg', 'towers=2', '--pretrain-args', 'dim=16,lr=0.001']); "
            "assert ns.image_size == [48, 64] and ns.cache is False and ns.num_workers == 2, ns; "
            "assert ns.fusion_args == {'order': 'image+(audio+text)', 'towers': '2'}, ns; "
            "assert ns.pretrain_args == {'dim': '16', 'lr': '0.001'}, ns; "
            "bad = [k for k in sys.modules if k == 'cli' or k.startswith(('cli.', 'mmdata.cli', 'typer'))]; assert not bad, bad")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]


def test_ddp_two_processes_each_sample_once(tmp_path: Path, small: Path) -> None:
    env = {**os.environ, "MMDATA_RECORD_SEEN": str(tmp_path), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           "-m", "mmdata.train", str(small), "--fusion", "concat", "--epochs", "3", "--seed", "1", "--out", str(tmp_path / "ddp"),
           "--json", "--no-robustness"]
    res = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    epochs: dict[int, list[str]] = {}
    for r in (0, 1):
        for line in (tmp_path / f"seen-rank{r}.jsonl").read_text().splitlines():
            rec = json.loads(line)
            epochs.setdefault(rec["epoch"], []).extend(rec["keys"])
    for e, keys in epochs.items():
        n_train = idx.load_card(small)["splits"]["train"]["samples"]
        assert len(keys) == len(set(keys)) == n_train, e  # every training sample exactly once per epoch across ranks
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    single = train(small, fusion="concat", epochs=3, seed=1, threads=1, eval_robustness=False)
    assert ddp["config"]["world_size"] == 2
    assert abs(ddp["test"]["accuracy"] - single["test"]["accuracy"]) < 0.2  # same quality, different batching


def test_label_outside_the_cards_classes_names_the_sample(tmp_path: Path, small: Path) -> None:
    import shutil

    from mmdata.errors import MMDataError

    ds = tmp_path / "ds"
    shutil.copytree(small, ds)
    card = json.loads((ds / "dataset.json").read_text())
    card["num_classes"], card["label_names"] = 9, card["label_names"][:9]  # the digit 9 is now outside the classes
    (ds / "dataset.json").write_text(json.dumps(card))
    with pytest.raises(MMDataError, match=r"label outside the card's 9 classes 0\.\.8: .*\(source '.*'\): 9"):
        train(ds, epochs=1, threads=1)


def test_cache_budget_decides_what_is_streamed(small: Path) -> None:
    from mmdata.train.config import IndexStats, decoded_bytes
    from mmdata.train.loop import setup

    st = IndexStats(small)
    size = {s: decoded_bytes(st, s, ["image", "audio", "text"]) / 2**20 for s in ("train", "val", "test")}
    assert size["train"] > size["val"] + size["test"] > 0
    assert setup(small, threads=1).cache == {"train": True, "val": True, "test": True}
    budget = size["val"] + size["test"] + 0.01  # train does not fit; val and test together do
    assert setup(small, threads=1, cache_budget_mb=budget).cache == {"train": False, "val": True, "test": True}
    assert setup(small, threads=1, cache=False).cache == {"train": False, "val": False, "test": False}
    m = train(small, epochs=2, seed=1, threads=1, cache=False, eval_robustness=False, modalities=["image", "text"])
    assert m["cache"] == {"train": False, "val": False, "test": False}
    assert m["history"][1]["train_loss"] < m["history"][0]["train_loss"] and m["samples"]["test"]["labelled"] == 40


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(small: Path) -> None:
    from mmdata.errors import MMDataError

    with pytest.raises(MMDataError, match="no CUDA device is visible .*; use --device cpu"):
        train(small, epochs=1, device="cuda", threads=1)
    with pytest.raises(MMDataError, match="--device \\(device=\\) 'gpu'"):
        train(small, epochs=1, device="gpu", threads=1)


def test_early_fusion_is_sized_from_the_configured_input(small: Path) -> None:
    """Issue 10 defect 4: the model was sized from the (padded) test images, so `--fusion early` with a
    recipe that resizes training images crashed (`mat1 and mat2 shapes cannot be multiplied`)."""
    rec = {"image": [{"op": "random_resized_crop", "p": 1.0, "size": [24, 24], "scale": [0.5, 1.0], "ratio": [0.75, 1.333]}]}
    m = train(small, fusion="early", epochs=1, recipe=rec, threads=1, eval_robustness=False, modalities=["image", "text"])
    assert m["inputs"]["image_size"] == [24, 24] and 0 <= m["test"]["accuracy"] <= 1
