"""QA31 shift D2: a trained run scored on another dataset (``mmdata.train.evaluate_run``, in the module
``mmdata.train.score_run``; ``mmdata evaluate RUN DATA``), its classes matched to the run's by name: avdigits' test
split re-sharded on its own (class names in `mmdata shard`'s sorted order) scores as the run's own test split did."""

from __future__ import annotations

import json
import tarfile
import warnings
from pathlib import Path
from typing import Any

import pytest

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def run(avdigits40: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    import torch

    from mmdata.train import train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("eval_run") / "run"
    with warnings.catch_warnings():  # few BatchNorm batches: what the run is, not what is tested
        warnings.simplefilter("ignore")
        m = train(avdigits40, epochs=1, seed=0, out=out, batch_size=32, threads=1, eval_robustness=False)
    return out, m


def _members(data: Path, split: str) -> dict[str, dict[str, bytes]]:
    samples: dict[str, dict[str, bytes]] = {}
    for tar in sorted(data.glob(f"{split}-*.tar")):
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                key, ext = m.name.split(".", 1)
                samples.setdefault(key, {})[ext] = tf.extractfile(m).read()  # type: ignore[union-attr]
    return samples


def _reshard(data: Path, root: Path, name: str, relabel: Any = None, extra: int = 0) -> Path:
    """``data``'s test split sharded again from files as a new dataset (every sample in its test split): class names
    as labels (``relabel(name)``: another name, None to leave the sample out), ``extra`` more samples (of val) of a class 'ten'."""
    import mmdata

    raw = root / f"raw_{name}"
    raw.mkdir()
    rows = []
    samples = sorted(_members(data, "test").items())
    for key, d in samples:
        label = NAMES[int(d["cls"])]
        label = relabel(label) if relabel else label
        if label is None:
            continue
        (raw / f"{key}.png").write_bytes(d["png"])
        (raw / f"{key}.flac").write_bytes(d["flac"])
        row = {"key": key, "image": f"{key}.png", "audio": f"{key}.flac", "label": label}
        if "txt" in d:
            row["text"] = d["txt"].decode("utf-8")
        rows.append(row)
    for i, (key, d) in enumerate(sorted(_members(data, "val").items())[:extra]):  # other samples: no duplicates
        (raw / f"ten{i}.png").write_bytes(d["png"])
        (raw / f"ten{i}.flac").write_bytes(d["flac"])
        rows.append({"key": f"ten{i}", "image": f"ten{i}.png", "audio": f"ten{i}.flac", "label": "ten"})
    (raw / "cuts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = root / name
    mmdata.shard(raw / "cuts.jsonl", out, split="test=1.0", progress=False)
    return out


@pytest.fixture(scope="module")
def shifted(avdigits40: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """avdigits40's test split sharded on its own: the same ten names, numbered in sorted order (eight = 0)."""
    return _reshard(avdigits40, tmp_path_factory.mktemp("shifted"), "shifted")


def test_reordered_dataset_scores_as_the_runs_own_test(run: tuple[Path, dict[str, Any]], shifted: Path) -> None:
    from mmdata.shards.index import load_card
    from mmdata.train.score_run import evaluate_run

    out, m = run
    assert load_card(shifted)["label_names"] == sorted(NAMES)  # ids differ from the run's: eight is 0 there
    r = evaluate_run(out, shifted, split="test")
    assert r["test"]["accuracy"] == m["test"]["accuracy"]
    for k in ("macro_f1", "nll", "ece"):
        assert r["test"][k] == pytest.approx(m["test"][k], abs=1e-9)
    for name, scores in m["per_class"]["test"].items():
        assert r["per_class"]["test"][name] == pytest.approx(scores)
    assert r["reordered"] is True and r["unknown_classes"] == {} and r["absent_classes"] == []
    assert r["samples"]["test"]["scored"] == m["samples"]["test"]["labelled"]
    assert r["class_map"]["eight"] == "eight"


def test_own_dataset_gives_metrics_json(run: tuple[Path, dict[str, Any]], avdigits40: Path) -> None:
    from mmdata.train.score_run import evaluate_run

    out, m = run
    r = evaluate_run(out, avdigits40)
    assert r["test"] == pytest.approx(m["test"], abs=1e-12)
    assert r["reordered"] is False and r["warnings"] == []


def test_unknown_and_absent_classes(run: tuple[Path, dict[str, Any]], avdigits40: Path, tmp_path: Path) -> None:
    """A class the run does not know ('ten') is counted and left out of the scores; a run's class the data lacks
    ('nine') is listed; the scores equal the run's own predictions over the samples kept."""
    import pyarrow.parquet as pq

    from mmdata.train.score_run import evaluate_run

    out, m = run
    data = _reshard(avdigits40, tmp_path, "partial", relabel=lambda n: None if n == "nine" else n, extra=3)
    with pytest.warns(UserWarning, match="the run does not know"):
        r = evaluate_run(out, data, out=tmp_path / "eval", unknown="leave-out")  # the default: scored as errors
    assert r["unknown_classes"] == {"ten": 3}
    assert r["absent_classes"] == ["nine"]
    assert r["class_map"]["ten"] is None
    n = r["samples"]["test"]
    assert n["unknown_class"] == 3 and n["scored"] == n["labelled"] - 3
    assert any("'ten': 3" in w and "left out of every score" in w for w in r["warnings"])
    assert any("'nine'" in w for w in r["warnings"])
    own = pq.read_table(out / "predictions.parquet").to_pylist()
    kept = [p for p in own if m["classes"]["names"][p["label"]] != "nine"]
    assert n["scored"] == len(kept)
    assert r["test"]["accuracy"] == pytest.approx(sum(p["pred"] == p["label"] for p in kept) / len(kept), abs=1e-12)
    # the files: metrics.json as returned, predictions with class names (the unknown class's own name, label -2:
    # -1 is an unlabelled sample, QA42 active #4)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["unknown_classes"] == {"ten": 3} and saved["test"]["accuracy"] == r["test"]["accuracy"]
    rows = {p["key"]: p for p in pq.read_table(tmp_path / "eval" / "predictions.parquet").to_pylist()}
    assert rows["ten0"]["label"] == -2 and rows["ten0"]["label_name"] == "ten" and rows["ten0"]["prob_label"] is None
    some = next(p for k, p in rows.items() if not k.startswith("ten"))
    assert some["label_name"] == NAMES[some["label"]] and some["pred_name"] == NAMES[some["pred"]]
    meta = json.loads(pq.read_schema(tmp_path / "eval" / "predictions.parquet").metadata[b"mmdata"])
    assert meta["names"] == NAMES  # probs's positions
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["metrics.json", "predictions.parquet"]


def test_nothing_written_without_out(run: tuple[Path, dict[str, Any]], shifted: Path) -> None:
    from mmdata.train.score_run import evaluate_run

    out, _ = run
    before = {d: sorted(p.name for p in d.iterdir()) for d in (out, shifted)}
    evaluate_run(out, shifted)
    assert {d: sorted(p.name for p in d.iterdir()) for d in (out, shifted)} == before


def test_wrong_split_named(run: tuple[Path, dict[str, Any]], shifted: Path, mmdata_cli: Any) -> None:
    from mmdata.errors import MMDataError
    from mmdata.train.score_run import evaluate_run

    out, _ = run
    with pytest.raises(MMDataError, match=r"no split 'val'; it has \['test'\] \(--split\)"):
        evaluate_run(out, shifted, split="val")
    code, said = mmdata_cli(["evaluate", str(out), str(shifted), "--split", "val"])
    assert code == 2 and "no split 'val'; it has ['test']" in said


def test_case_only_names_refused_with_the_remedy(run: tuple[Path, dict[str, Any]], avdigits40: Path,
                                                 tmp_path: Path) -> None:
    from mmdata.errors import MMDataError
    from mmdata.train.score_run import evaluate_run

    out, _ = run
    data = _reshard(avdigits40, tmp_path, "upper", relabel=str.upper)
    with pytest.raises(MMDataError, match=r"none of its 10 classes .* is one of the 10 classes of the run in .* nothing to score; 10 differ from the run's only in "
                                          r"case .*'EIGHT' vs 'eight'.*--labels"):
        evaluate_run(out, data)


def test_out_refuses_the_run_folder(run: tuple[Path, dict[str, Any]], shifted: Path) -> None:
    from mmdata.errors import MMDataError
    from mmdata.train.score_run import evaluate_run

    out, _ = run
    before = (out / "metrics.json").read_bytes()
    with pytest.raises(MMDataError, match="is the run's folder"):
        evaluate_run(out, shifted, out=out)
    assert (out / "metrics.json").read_bytes() == before and (out / "model.pt").is_file()


def test_cli_json(run: tuple[Path, dict[str, Any]], shifted: Path, tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.cli.main import main

    out, m = run
    capsys.readouterr()
    try:
        main(["evaluate", str(out), str(shifted), "--json", "--out", str(tmp_path / "e")])
    except SystemExit as exc:
        assert not exc.code
    r = json.loads(capsys.readouterr().out)
    assert r["ok"] is True and r["split"] == "test" and r["test"]["accuracy"] == m["test"]["accuracy"]
    assert set(r["per_class"]["test"]) == set(NAMES) and r["reordered"] is True
    assert (tmp_path / "e" / "metrics.json").is_file() and (tmp_path / "e" / "predictions.parquet").is_file()


def test_cli_table(run: tuple[Path, dict[str, Any]], shifted: Path, mmdata_cli: Any) -> None:
    out, m = run
    code, said = mmdata_cli(["evaluate", str(out), str(shifted)])
    assert code == 0
    assert f"{m['test']['accuracy']:.3f}" in said and "per class of the run" in said
    assert "classes matched by name" in said


@pytest.mark.parametrize("key", ["score", "genres"])
def test_a_target_run_scores_as_its_metrics_json(key: str, tmp_path: Path) -> None:
    """A run trained with --target (regression, multi-label) is scored on the data's metadata under its key."""
    import pyarrow.parquet as pq

    from mmdata.testing import shard_target_dataset
    from mmdata.train import train
    from mmdata.train.score_run import evaluate_run

    ds = shard_target_dataset(tmp_path / "t", n=40, meta=("score", "genres"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = train(ds, target=key, out=tmp_path / "run", epochs=2, batch_size=8, threads=1, eval_robustness=False)
    r = evaluate_run(tmp_path / "run", ds, out=tmp_path / "eval")
    assert r["target"] == m["target"] and "classes" not in r
    assert r["test"] == pytest.approx(m["test"], abs=1e-9, nan_ok=True)
    assert r["samples"]["test"]["scored"] == m["samples"]["test"]["labelled"]
    mine = {p["key"]: p for p in pq.read_table(tmp_path / "eval" / "predictions.parquet").to_pylist()}
    theirs = {p["key"]: p for p in pq.read_table(tmp_path / "run" / "predictions.parquet").to_pylist()}
    assert set(mine) == set(theirs)
    column = "pred" if m["target"]["kind"] == "regression" else "pred_labels"
    for k, p in theirs.items():
        assert mine[k][column] == pytest.approx(p[column], abs=1e-9)


def test_a_target_run_on_data_without_its_key_is_predicted_with_a_warning(tmp_path: Path, mmdata_cli: Any) -> None:
    """QA31 shift review F2, QA33 deploy #1: data whose metadata lacks the run's --target key (or that has no
    metadata) is predicted, every sample unlabelled, with a warning naming the key and the data's metadata columns
    (QA31: every score null with no warning, or "unknown modalities ['json']"; then refused, so new unlabelled data
    had no predictions)."""
    from mmdata.testing import shard_target_dataset
    from mmdata.train import train
    from mmdata.train.score_run import evaluate_run

    ds = shard_target_dataset(tmp_path / "t", n=30, meta=("score", "genres"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(ds, target="genres", out=tmp_path / "run", epochs=1, batch_size=8, threads=1, eval_robustness=False)
    only_score = shard_target_dataset(tmp_path / "s", n=30, meta=("score",))
    with pytest.warns(UserWarning, match=r"metadata has no key 'genres' \(its metadata columns: \['score'\]\); the run "
                                         r".* predicts the metadata key 'genres' \(--target genres\): every test sample is "
                                         r"unlabelled.*re-shard it with --meta genres"):
        r = evaluate_run(tmp_path / "run", only_score)
    assert r["samples"]["test"]["scored"] == 0
    bare = shard_target_dataset(tmp_path / "b", n=30, meta=())
    with pytest.warns(UserWarning, match=r"has no metadata; the run .* predicts the metadata key 'genres'") as caught:
        evaluate_run(tmp_path / "run", bare)
    assert not any("json" in str(w.message) for w in caught)
    code, said = mmdata_cli(["evaluate", str(tmp_path / "run"), str(bare)])
    assert code == 0 and "has no metadata" in said and "'json'" not in said


def test_the_results_warnings_are_python_warnings_too(run: tuple[Path, dict[str, Any]], avdigits40: Path,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     mmdata_cli: Any) -> None:
    """QA31 shift review F3: evaluate_run raises each of its warnings as a TrainWarning (a notebook that does not
    print ``r["warnings"]`` still sees 35 samples left out); the CLI hides those (it prints the list) and no other
    library warning, as ``mmdata train`` does."""
    import importlib

    from mmdata.train import TrainWarning

    module = importlib.import_module("mmdata.train.score_run")

    out, _ = run
    data = _reshard(avdigits40, tmp_path, "nine_as_ten", relabel=lambda n: "ten" if n == "nine" else n)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = module.evaluate_run(out, data)
    said = [str(w.message) for w in caught if issubclass(w.category, TrainWarning)]
    assert r["warnings"] and said == r["warnings"]
    assert all(w.filename == __file__ for w in caught if issubclass(w.category, TrainWarning))

    def fake(*args: Any, **kw: Any) -> dict[str, Any]:
        warnings.warn("a reader's warning", UserWarning)
        warnings.warn("the result's warning", TrainWarning)
        return {"split": "test", "warnings": ["the result's warning"]}

    monkeypatch.setattr(module, "evaluate_run", fake)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, text = mmdata_cli(["evaluate", str(out), str(data), "--json"])
    assert code == 0 and text.count("warning: the result's warning") == 1
    assert [str(w.message) for w in caught] == ["a reader's warning"]


def test_out_checks_as_train_does(run: tuple[Path, dict[str, Any]], shifted: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """QA31 shift review F4: --out inside a dataset folder is refused (as mmdata train refuses it), a dataset folder is
    told as one (by index.parquet too), and a failed evaluation removes every folder it created."""
    import shutil

    import mmdata.train.evaluate
    from mmdata.errors import MMDataError
    from mmdata.train.score_run import evaluate_run

    out, _ = run
    with pytest.raises(MMDataError, match=r"inside the dataset folder .*shifted \(it holds dataset.json\); this "
                                          r"evaluation would write metrics.json and predictions.parquet among its files"):
        evaluate_run(out, shifted, out=shifted / "eval")
    assert not (shifted / "eval").exists()
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(shifted / "index.parquet", bare / "index.parquet")
    with pytest.raises(MMDataError, match=r"bare: a dataset folder \(it holds index.parquet\); this evaluation would "
                                          r"write") as exc:
        evaluate_run(out, shifted, out=bare)
    assert "replace the one there" not in str(exc.value)

    def fails(*args: Any, **kw: Any) -> Any:
        raise RuntimeError("stopped")

    monkeypatch.setattr(mmdata.train.evaluate, "evaluate", fails)
    with pytest.raises(RuntimeError, match="stopped"):
        evaluate_run(out, shifted, out=tmp_path / "new" / "a" / "b")
    assert not (tmp_path / "new").exists()


def test_the_function_does_not_hide_its_module() -> None:
    """QA31 shift review F5: the module is ``mmdata.train.score_run``, so ``mmdata.train.evaluate_run`` (the function)
    no longer shadows it: ``import mmdata.train.score_run as m`` and ``mock.patch("mmdata.train.score_run.X")`` work."""
    import types
    from unittest import mock

    import mmdata.train
    import mmdata.train.score_run as module

    assert isinstance(module, types.ModuleType) and mmdata.train.evaluate_run is module.evaluate_run
    assert callable(mmdata.train.score_run.class_map)
    with mock.patch("mmdata.train.score_run.class_key", lambda n: str(n).casefold()):
        assert module.class_map(["A"], ["a"])["ids"] == [0]
