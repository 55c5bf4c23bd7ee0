"""Training and loading from an object store (docs/scale.md): ``mmdata train s3://…`` / ``mmdata.train``
stage the dataset folder once into the node's cache (every shard checked by sha256) and train exactly as
on the local folder; ``mmdata.loader`` streams a URL; an ablation hands its ``storage_options`` to
every run without writing them anywhere. Against the local moto S3 server (tests/conftest.py: ``s3``)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import mmdata
from mmdata.train import train
from mmdata.ablate import run
from mmdata.ablate.testing import synthetic_recipe, synthetic_train

pytest.importorskip("s3fs")
pytest.importorskip("moto")

ROOT = Path(__file__).parents[1]
TRAIN = dict(epochs=1, threads=1, eval_robustness=False, batch_size=16)


@pytest.fixture(scope="module")
def av(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return Path(build(tmp_path_factory.mktemp("av") / "av", limit=12, progress=False))


def _same_run(a: dict, b: dict) -> None:
    assert a["test"] == b["test"] and a["val"] == b["val"] and a["data_fingerprint"] == b["data_fingerprint"]
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]


def test_train_from_s3_stages_once_and_equals_local(tmp_path: Path, av: Path, s3, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    s3.fs.put(str(av), f"{s3.url[5:]}/av", recursive=True)
    url = f"{s3.url}/av"
    cache = tmp_path / "cache"
    monkeypatch.setenv("MMDATA_CACHE", str(cache))
    local = train(av, **TRAIN)
    remote = train(url, storage_options=s3.options, out=tmp_path / "out", progress=True, **TRAIN)  # a staging bar too
    _same_run(remote, local)
    fp = json.loads((av / "dataset.json").read_text())["fingerprint"]
    assert sorted(p.name for p in (cache / "datasets").iterdir()) == [fp]  # one checked copy, named by content
    written = "".join(p.read_text(errors="replace") for p in (tmp_path / "out").iterdir() if p.suffix == ".json")
    assert s3.options["endpoint_url"] not in written and "storage_options" not in written  # no credentials kept
    # the CLI, configured as users configure the AWS CLI (environment variables), on a fresh cache
    env = {**os.environ, **s3.env, "MMDATA_CACHE": str(tmp_path / "cache2"), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", "from mmdata.cli.main import main; main()", "train", url, "--epochs", "1",
                        "--threads", "1", "--batch-size", "16", "--no-robustness", "--json"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    _same_run(json.loads(p.stdout), local)


def test_loader_streams_an_s3_dataset_like_the_local_one(av: Path, s3) -> None:  # noqa: ANN001
    s3.fs.put(str(av), f"{s3.url[5:]}/av", recursive=True)
    kw = dict(recipe={"image": [{"op": "hflip", "p": 0.5}]}, seed=3, balance={"by": "label", "mode": "over"})
    local = [b.keys for b in mmdata.loader(av, 8, **kw)]
    remote = [b.keys for b in mmdata.loader(f"{s3.url}/av", 8, storage_options=s3.options, **kw)]
    assert remote == local and sum(map(len, local)) >= 1
    if importlib.util.find_spec("lightning") is None:
        return
    from mmdata.lightning import DataModule

    def epochs(path: object, **kw: object) -> list:
        dm = DataModule(path, 8, seed=3, val_split="val", test_split=None, **kw)  # no test split: []
        return [[b.keys for b in dm.train_dataloader()], [b.keys for b in dm.val_dataloader()], dm.test_dataloader()]

    assert epochs(f"{s3.url}/av", storage_options=s3.options) == epochs(av)  # the card's splits read from s3 too


def _reads(data: str, **kw: object) -> dict:
    """A trainer that reads the dataset it is given and says whether it is a local copy."""
    m = synthetic_train(data, **kw)
    m["test"]["samples_read"] = sum(1 for _ in mmdata.open_dataset(data, split="train"))
    m["test"]["local"] = float(Path(data, "dataset.json").is_file())
    return m


def test_an_ablation_hands_storage_options_to_its_runs_and_keeps_them_out_of_its_files(
        tmp_path: Path, av: Path, s3, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    s3.fs.put(str(av), f"{s3.url[5:]}/av", recursive=True)
    for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k, raising=False)  # only storage_options can reach the server
    monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "cache"))
    s = run(synthetic_recipe(tmp_path, f"{s3.url}/av", seeds=2), tmp_path / "out", train_fn=_reads,
            storage_options=s3.options, progress=False, plots=False)
    rows = pq.read_table(tmp_path / "out" / "runs.parquet").to_pylist()
    n_train = sum(1 for _ in mmdata.open_dataset(av, split="train"))
    assert s["runs"]["ok"] == 6 and {(r["test_samples_read"], r["test_local"]) for r in rows} == {(n_train, 1.0)}
    kept = "".join(p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file()
                   and p.suffix in (".yaml", ".json", ".md"))
    assert s3.options["endpoint_url"] not in kept and "storage_options" not in kept


def test_an_ablation_recipe_missing_at_a_url_is_a_clear_error(tmp_path: Path, s3) -> None:  # noqa: ANN001
    from mmdata.errors import MMDataError

    with pytest.raises(MMDataError, match=r"s3://.*/nope.yaml: cannot read the ablation recipe \(FileNotFoundError"):
        run(f"{s3.url}/nope.yaml", tmp_path / "out", storage_options=s3.options, progress=False)
    assert not (tmp_path / "out" / "runs.parquet").exists()


def test_an_ablation_out_at_s3_resumes_on_another_machine(tmp_path: Path, av: Path, s3,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """``--out s3://…``: runs.parquet is uploaded as runs finish and the report at the end; a driver
    with an empty cache (another machine, a fresh pod) resumes from what the URL holds, so every
    (arm, seed) is trained exactly once over the two drivers."""
    out = f"{s3.url}/abl"
    recipe = synthetic_recipe(tmp_path, av, seeds=3)
    monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "machine-a"))
    part = run(recipe, out, storage_options=s3.options, max_runs=4, workers=1, progress=False, plots=False)
    assert part["runs"]["ok"] == 4 and "runs.parquet" in s3.tree("abl")
    monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "machine-b"))
    done = run(recipe, out, storage_options=s3.options, workers=1, progress=False)
    rows = pq.read_table(io.BytesIO(s3.tree("abl")["runs.parquet"])).to_pylist()
    assert done["runs"]["ok"] == 9 and sorted((r["arm"], r["seed"]) for r in rows) == sorted(
        {(r["arm"], r["seed"]) for r in rows}) and len(rows) == 9
    assert {"summary.json", "report.md", "forest.png", "config.resolved.yaml", "env.json"} <= set(s3.tree("abl"))
    stamps = sorted(r["wall_s"] for r in rows)
    # the report's instruction with DIR a URL: the resolved config read from the store, nothing left to run
    again = run(f"{out}/config.resolved.yaml", out, storage_options=s3.options, workers=1, progress=False, plots=False)
    assert again["runs"]["ok"] == 9
    assert sorted(r["wall_s"] for r in pq.read_table(io.BytesIO(s3.tree("abl")["runs.parquet"])).to_pylist()) == stamps
    kept = "".join(v.decode(errors="replace") for k, v in s3.tree("abl").items() if k.endswith((".json", ".yaml", ".md")))
    assert s3.options["endpoint_url"] not in kept and "storage_options" not in kept


def test_a_stale_report_at_s3_is_removed_when_new_runs_start(tmp_path: Path, av: Path, s3,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The report of the finished part describes the old state once new runs start: it goes, at the
    URL as in the local copy (a stop before the end then leaves no report claiming the old verdicts)."""
    from mmdata.ablate.remote_out import RemoteRunDir

    out = f"{s3.url}/abl2"
    monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "cache"))
    fail = tmp_path / "fail"
    fail.touch()
    recipe = synthetic_recipe(tmp_path, av, seeds=3, fail={"seeds": [2], "while_exists": str(fail)})
    run(recipe, out, storage_options=s3.options, workers=1, progress=False, plots=False)
    assert {"summary.json", "report.md"} <= set(s3.tree("abl2"))
    d = RemoteRunDir(out, s3.options)
    d.remove(["summary.json", "not-there.md"])  # a name that is not there is no error
    assert "summary.json" not in s3.tree("abl2") and "report.md" in s3.tree("abl2")
    # the failed runs retried: new runs, so the old report goes before them; the new one is uploaded at the end
    fail.unlink()
    monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "cache2"))
    s = run(recipe, out, storage_options=s3.options, workers=1, progress=False, plots=False, max_runs=1)
    assert s["runs"]["ok"] == 7 and s["design"]["complete"] is False
    assert json.loads(s3.tree("abl2")["summary.json"]) == s
