"""``mmdata ablate --train-split / --val-split / --test-split`` and ``run(train_split=, val_split=,
test_split=)``: ``mmdata train``'s split options, overriding the recipe's ``trainer.*_split``, so k-fold
cross-validation over folds sharded as splits runs one recipe once per fold without editing it.

Before (2026-12-04) only the recipe could say which folds play train / val / test. Now the options reach
the bundled trainer (its runs score the chosen test fold, as ``mmdata train`` with the same options
does), a split that does not fit is refused before any run with train's message naming the option, and
the splits are part of the recorded configuration: a rerun into the same folder with another fold keeps
the earlier fold's runs as another configuration (not analysed, a warning naming the split keys), as a
changed recipe's runs are kept; the same fold again reuses its runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

import mmdata
from mmdata.ablate import load_ablation, run
from mmdata.cli.main import app
from mmdata.errors import MMDataError
from mmdata.testing import shard_folds
from mmdata.train.config import IndexStats
from mmdata.train.evaluate import decode_correct

CUT = {"seed": 0, "image": [{"op": "cutout", "p": 0.5}]}
#: the bundled trainer, as small as it goes: one epoch, no robustness pass
TRAINER = {"epochs": 1, "batch_size": 16, "eval_robustness": False}


@pytest.fixture(scope="module")
def folds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 messy samples sharded into folds 1-4 as splits (as tests/ablate/test_alignment_folds.py)."""
    return shard_folds(tmp_path_factory.mktemp("split_folds"))


def _recipe(data: Path, **trainer: Any) -> dict[str, Any]:
    return {"dataset": {"path": str(data)}, "trainer": {**TRAINER, **trainer}, "seeds": 2,
            "design": {"mode": "explicit", "baseline": None, "arms": {"cutout": CUT}}, "controls": {"identity": False}}


def _write(folder: Path, cfg: dict[str, Any]) -> str:
    p = folder / "ab.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return str(p)


def _rows(out: Path) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["arm"], r["seed"]): r for r in pq.read_table(out / "runs.parquet").to_pylist()}


def _scored(data: Path, split: str) -> int:
    """The labelled samples of one fold: what a run tested on it scores."""
    return IndexStats(data).labels(split)["labelled"]


def _quiet(msg: str) -> None:
    """The design's warnings (2 seeds reach no verdict; 1 epoch of BatchNorm): what these runs are for is elsewhere."""


def _trainer(out: Path) -> dict[str, Any]:
    return yaml.safe_load((out / "config.resolved.yaml").read_text())["trainer"]


def test_the_cli_options_reach_the_trainer(folds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["ablate", _write(tmp_path, _recipe(folds)), "--out", str(out), "-j", "1",
                                   "--val-split", "3", "--test-split", "4", "--json"])
    assert res.exit_code == 0, res.output
    # --json: the summary as it always was (the splits are configuration, not a new key), plus what every
    # --json result says (QA26 F12): ok, exit_code
    doc = json.loads(res.stdout)
    assert doc.pop("ok") is True and doc.pop("exit_code") == 0
    assert doc == json.loads((out / "summary.json").read_text())
    assert doc["runs"]["ok"] == 4
    trainer = _trainer(out)
    assert (trainer["val_split"], trainer["test_split"]) == ("3", "4") and "train_split" not in trainer
    rows = _rows(out)
    assert {r["status"] for r in rows.values()} == {"ok"}
    for r in rows.values():  # every run scored fold 4
        assert len(decode_correct(r["correct_on_test"])[1]) == _scored(folds, "4")
    # the run is the one `mmdata train --val-split 3 --test-split 4` trains with the same seed
    alone = mmdata.train.train(folds, seed=0, recipe=None, label_noise=0.0, device="cpu", threads=1,
                               **{k: v for k, v in trainer.items() if k != "device"})
    assert alone["config"]["splits"] == {"train": ["1", "2"], "val": ["3"], "test": ["4"]}
    assert rows[("baseline", 0)]["correct_on_test"] == alone["correct_on_test"]
    assert rows[("baseline", 0)]["test_accuracy"] == alone["test"]["accuracy"]


def test_the_help_is_trains_and_says_it_overrides() -> None:
    def flat(args: list[str]) -> str:
        res = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
        return " ".join(re.sub(r"[│╭╮╰╯─]", " ", res.output).split())

    ablate, train = flat(["ablate", "--help"]), flat(["train", "--help"])
    for option, key in (("--train-split", "train_split"), ("--val-split", "val_split"), ("--test-split", "test_split")):
        said = re.search(rf"{option} <str> (.*?) (?=--[a-z-]+ <)", train)  # up to the next option
        assert said, train
        assert f"{option} <str> {said.group(1)} Overrides the recipe's trainer.{key}" in ablate


@pytest.mark.parametrize(("args", "err"), [
    (["--val-split", "3", "--test-split", "9"], "test_split (--test-split): {data} has no split '9'; it has ['1', '2', '3', '4']"),
    (["--val-split", "3", "--test-split", "3"], "val_split (--val-split) / test_split (--test-split) / train_split "
                                                "(--train-split): split '3' plays two roles"),
    (["--train-split", "1,1", "--val-split", "3", "--test-split", "4"], "train_split (--train-split): a split is named twice"),
    (["--val-split", "3,4"], "val_split (--val-split): expected one split name, got '3,4'"),
])
def test_a_split_that_does_not_fit_is_refused_before_any_run_with_trains_message(folds: Path, tmp_path: Path, args: list[str],
                                                                                 err: str, capsys: pytest.CaptureFixture) -> None:
    from mmdata.cli.main import main

    out = tmp_path / "out"
    said = {}
    for command in (["ablate", _write(tmp_path, _recipe(folds)), "--out", str(out)], ["train", str(folds)]):
        with pytest.raises(SystemExit) as exit_:
            main([*command, *args])
        said[command[0]] = " ".join(capsys.readouterr().err.split())
        assert exit_.value.code == 2 and "Traceback" not in said[command[0]]
    assert said["ablate"].startswith("error: ") and err.format(data=folds) in said["ablate"], said
    assert said["ablate"] == said["train"]  # the very message mmdata train gives
    assert not out.exists()


def test_an_option_is_named_as_such_and_the_recipes_keys_as_recipe_keys(folds: Path, tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match=r"^trainer\.val_split: \S+ has no split '7'"):
        run(_recipe(folds, val_split="7"), tmp_path / "a", workers=1, progress=False, test_split="4")
    with pytest.raises(MMDataError, match=r"^test_split \(--test-split\): expected one split name, got \['4'\]"):
        run(_recipe(folds, val_split="3"), tmp_path / "b", workers=1, progress=False, test_split=["4"])
    with pytest.raises(MMDataError, match=r"^test_split \(--test-split\): avdigits has no split '5'; it has "
                                          r"\['train', 'val', 'test'\]"):  # the named dataset: before it is built
        run({**_recipe(folds), "dataset": {"name": "avdigits", "limit": 4}}, tmp_path / "c", workers=1, progress=False,
            test_split="5")
    assert not any((tmp_path / d).exists() for d in "abc")


def test_the_keywords_override_the_recipe_and_another_fold_is_another_configuration(folds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # the recipe's fold 4 as test, overridden: fold 1 tests (an int, as YAML reads an unquoted fold), 2 validates
    first = run(_recipe(folds, val_split="3", test_split="4"), out, workers=1, progress=False, plots=False,
                val_split="2", test_split=1, on_warning=_quiet)
    assert first["runs"]["ok"] == 4
    assert {k: v for k, v in _trainer(out).items() if k.endswith("_split")} == {"val_split": "2", "test_split": "1"}
    assert load_ablation(out / "config.resolved.yaml").trainer["test_split"] == "1"  # a rerun of it tests fold 1 too
    fold1 = _rows(out)
    assert {len(decode_correct(r["correct_on_test"])[1]) for r in fold1.values()} == {_scored(folds, "1")}

    # the next fold into the same folder: fold 1's runs are kept but not analysed, and the warning says why
    said: list[str] = []
    second = run(_recipe(folds, val_split="3", test_split="4"), out, workers=1, progress=False, plots=False,
                 val_split="1", test_split="2", on_warning=said.append)
    assert any(re.search(r"^4 runs in \S+runs.parquet come from another configuration \(changed: trainer.val_split, "
                         r"trainer.test_split\); they are kept there but not analysed", w) for w in said), said
    assert second["runs"]["ok"] == 4 and second["runs"]["stale_rows_not_analysed"] == 4
    assert pq.read_table(out / "runs.parquet").num_rows == 8
    assert _trainer(out)["test_split"] == "2"

    # fold 1 again: its runs are found by their configuration and reused, none trained again
    again = run(_recipe(folds), out, workers=1, progress=False, plots=False, val_split="2", test_split="1",
                on_warning=_quiet)
    assert again["runs"]["ok"] == 4 and again["runs"]["stale_rows_not_analysed"] == 4
    hashes = {r["config_hash"] for r in fold1.values()}
    now = {(r["arm"], r["seed"]): r["wall_s"] for r in pq.read_table(out / "runs.parquet").to_pylist()
           if r["config_hash"] in hashes}
    assert now == {k: r["wall_s"] for k, r in fold1.items()}
