"""``--json`` as a CI contract (QA26 F12, an MLOps engineer wiring mmdata into CI): stdout holds one JSON
document and nothing else, while stderr keeps what it holds without ``--json`` (progress, the keep-alive
lines a CI's no-output timeout needs, warnings, the files left out, verify's problems, failed runs); a job
stopped by a signal still prints its error document; every result says ``ok``, ``exit_code`` and its
``schema``; a dataset another job is writing exits 75 (busy, retry later), not 2 (bad input)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mmdata.testing import make_sample_folder
from mmdata.testing.procs import sigint_as_from_a_terminal
from tests.procs_helpers import communicate_or_kill
from tests.test_progress import _env, _mmdata  # the CLI in a child, its terminal settings dropped

ROOT = Path(__file__).parents[1]
CLI = [sys.executable, "-m", "mmdata.cli.main"]




def _doc(stdout: str) -> Any:
    """stdout as one strict JSON document (jq's reading: no NaN)."""
    def refuse(c: str) -> None:
        raise ValueError(c)

    return json.loads(stdout, parse_constant=refuse)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 samples and two files that are not what their names say: left out, with a warning."""
    root = make_sample_folder(tmp_path_factory.mktemp("qa26json") / "raw", n=12)
    (root / "000001.png").write_bytes(b"not a png")
    (root / "000002.flac").write_bytes(b"not a flac")
    return root


@pytest.fixture(scope="module")
def ds(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mmdata

    out = tmp_path_factory.mktemp("qa26json-ds") / "ds"
    mmdata.shard(raw, out, maxcount=4, progress=False)
    return out


# 1: stderr keeps its diagnostics under --json ------------------------------------------------------------

def test_shard_json_keeps_progress_left_out_files_and_warnings_on_stderr(raw: Path, tmp_path: Path) -> None:
    """`shard --json` printed nothing on stderr: no progress (MMDATA_PROGRESS=plain could not turn it on), no
    "left out: ..." lines, no warnings (README: stderr holds "progress bars, warnings, the files left out")."""
    plain = _mmdata("shard", str(raw), "plain", "--maxcount", "3", "--split", "train=0.99,val=0.01", cwd=tmp_path,
                    MMDATA_PROGRESS_INTERVAL="0")
    res = _mmdata("shard", str(raw), "ds", "--maxcount", "3", "--split", "train=0.99,val=0.01", "--json", cwd=tmp_path,
                  MMDATA_PROGRESS_INTERVAL="0")
    assert res.returncode == 0 == plain.returncode, res.stderr
    doc = _doc(res.stdout)  # stdout is the JSON document alone
    assert doc["ok"] is True and doc["exit_code"] == 0 and doc["schema"] == "mmdata.shard/1"
    assert "sharding samples" in res.stderr  # plain lines off a terminal, as without --json
    assert "left out: 2 members" in res.stderr and "000001.png" in res.stderr
    assert "warning: split 'val' is empty" in res.stderr
    # the same diagnostics as without --json (progress lines aside: their times differ)
    def diag(err: str) -> list[str]:
        return [ln for ln in err.splitlines() if not ln.startswith("sharding samples")]

    assert diag(res.stderr) == diag(plain.stderr)


def test_json_progress_follows_mmdata_progress(raw: Path, tmp_path: Path) -> None:
    res = _mmdata("shard", str(raw), "ds", "--json", cwd=tmp_path, MMDATA_PROGRESS="off")
    assert res.returncode == 0 and "sharding samples" not in res.stderr + res.stdout
    assert _doc(res.stdout)["samples"] == 12


def test_verify_json_names_its_problems_on_stderr_too(ds: Path, tmp_path: Path) -> None:
    """A failed `verify --json` printed its problems only into the JSON: a CI log said nothing; and the
    document had `ok: false` but no `error` (`jq -r .error` printed null) and no `exit_code`."""
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(ds, bad)
    shard = sorted(bad.rglob("*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[700] ^= 0xFF
    shard.write_bytes(bytes(data))
    res = _mmdata("verify", str(bad), "--json", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    doc = _doc(res.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 1 and doc["schema"] == "mmdata.verify/1"
    assert doc["error"].startswith(f"{len(doc['problems'])} problem") and shard.name in doc["error"]
    assert shard.name in res.stderr and "sha256" in res.stderr  # each problem, as without --json
    deep = _doc(_mmdata("verify", str(ds), "--deep", "--json", cwd=tmp_path).stdout)
    assert deep["ok"] is True and deep["deep"] is True and deep["exit_code"] == 0 and "error" not in deep
    assert _doc(_mmdata("verify", str(ds), "--json", cwd=tmp_path).stdout)["deep"] is False


def test_add_modality_json_keeps_its_left_out_files_on_stderr(tmp_path: Path) -> None:
    import mmdata

    ds = tmp_path / "cols"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=6), ds, layout="columns", progress=False)
    import numpy as np

    extra = tmp_path / "depth"
    extra.mkdir()
    for key in [f"{i:06d}" for i in range(5)] + ["999999"]:  # the last one names no sample
        np.save(extra / f"{key}.depth.npy", np.zeros(2))
    res = _mmdata("add-modality", str(ds), "depth", str(extra), "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    doc = _doc(res.stdout)
    assert doc["ok"] is True and doc["exit_code"] == 0 and doc["unmatched"] == 1
    assert "not used: 1 file" in res.stderr and "999999" in res.stderr


def test_inspect_json_carries_schema_and_the_card_fingerprint(ds: Path, tmp_path: Path) -> None:
    res = _mmdata("inspect", str(ds), "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    doc = _doc(res.stdout)
    card = json.loads((ds / "dataset.json").read_text())
    assert doc["schema"] == "mmdata.inspect/1" and doc["ok"] is True and doc["exit_code"] == 0
    assert doc["fingerprint"] == card["fingerprint"] and doc["mmdata_version"] == card["mmdata_version"]


# 2: a job stopped by a signal prints its error document --------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: signal.Signals(s).name)
def test_a_stopped_shard_json_prints_its_error_document(raw: Path, tmp_path: Path, signum: int) -> None:
    """`shard --json` stopped by SIGTERM exited 143 with 0 bytes on stdout, though README says every failure
    under --json prints {"ok": false, "error": ..., "exit_code": N}."""
    proc = subprocess.Popen([*CLI, "shard", str(raw), str(tmp_path / "ds"), "--maxcount", "1", "--json"], cwd=tmp_path,
                            env=_env(MMDATA_TEST_SHARD_DELAY="0.4", MMDATA_PROGRESS="off"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=sigint_as_from_a_terminal)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "ds").glob("*.tar")):  # the job is writing shards
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signum)
    out, err = communicate_or_kill(proc, 60)
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    doc = _doc(out)
    assert doc == {"ok": False, "exit_code": 128 + signum, "error": doc["error"]}
    by = "interrupted" if signum == signal.SIGINT else f"interrupted by {name}"
    assert by in doc["error"] and "rerun the same command to resume" in doc["error"], doc
    assert by in err  # the line on stderr, as without --json


def test_a_stopped_ablation_json_prints_its_error_document(tmp_path: Path, tiny: Path) -> None:
    from mmdata.ablate.testing import synthetic_recipe

    recipe = synthetic_recipe(tmp_path, tiny, seeds=2, sleep=30)
    proc = subprocess.Popen([*CLI, "ablate", recipe, "--out", str(tmp_path / "out"), "-j", "1", "--json"], cwd=tmp_path,
                            env=_env(MMDATA_PROGRESS="plain", MMDATA_PROGRESS_INTERVAL="0.2"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "out" / "config.resolved.yaml").exists():
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.1)
    time.sleep(3)  # inside the first (30 s) run: the keep-alive lines come meanwhile
    proc.send_signal(signal.SIGTERM)
    out, err = communicate_or_kill(proc, 60)
    assert proc.returncode == 143, err
    doc = _doc(out)
    assert doc["ok"] is False and doc["exit_code"] == 143 and "interrupted by SIGTERM" in doc["error"], doc
    assert "ablation runs" in err  # the progress lines a CI's no-output timeout needs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mmdata.datasets.avdigits import build

    return build(tmp_path_factory.mktemp("qa26-ab") / "av", limit=4, progress=False)


def test_ablation_with_failed_runs_json_says_ok_false_and_lists_them_on_stderr(tmp_path: Path, tiny: Path) -> None:
    from mmdata.ablate.testing import synthetic_recipe

    recipe = synthetic_recipe(tmp_path, tiny, seeds=2, fail={"seeds": [1], "arm_has": "image.cutout"})
    res = _mmdata("ablate", recipe, "--out", str(tmp_path / "out"), "-j", "1", "--json", cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    doc = _doc(res.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 1 and doc["schema"] == "mmdata.ablate/2"
    assert doc["error"].startswith("1 run failed") and "cutout" in doc["error"]
    assert "failed cutout seed 1: " in res.stderr and "synthetic failure on seed 1" in res.stderr


# 3: --on-error names the option -----------------------------------------------------------------------

@pytest.mark.parametrize("command", ["shard", "add-modality"])
def test_a_bad_on_error_names_the_option_and_its_values(raw: Path, ds: Path, tmp_path: Path, command: str) -> None:
    args = (["shard", str(raw), "out"] if command == "shard" else ["add-modality", str(ds), "depth", str(raw)])
    res = _mmdata(*args, "--on-error", "bogus", "--json", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    doc = _doc(res.stdout)
    assert "--on-error" in doc["error"] and "'bogus'" in doc["error"] and "on_error" not in doc["error"], doc
    assert "skip" in doc["error"] and "raise" in doc["error"]
    help_ = _mmdata(*args[:1], "--help", cwd=tmp_path, COLUMNS="200").stdout
    for value in ("skip", "raise", "warn") if "warn" in doc["error"] else ("skip", "raise"):
        assert value in help_.split("--on-error", 1)[1][:600], help_


# 4: the cache warning is in every result's warnings -----------------------------------------------------

def test_the_cache_warning_joins_every_json_result(ds: Path, tmp_path: Path) -> None:
    """A cache that cannot take the job's record printed its warning on stderr only where the result had no
    ``warnings`` list of strings (augment: none at all)."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    (cache / "jobs").write_text("not a folder")  # the records' folder cannot be made
    recipe = ROOT / "recipes" / "image_basic.yaml"
    res = _mmdata("augment", str(ds), "aug", "-r", str(recipe), "--json", cwd=tmp_path, MMDATA_CACHE=str(cache),
                  MMDATA_PROGRESS="off")
    assert res.returncode == 0, res.stderr
    doc = _doc(res.stdout)
    assert doc["schema"] == "mmdata.augment/1" and doc["ok"] is True
    assert [w for w in doc["warnings"] if "jobs is not a folder" in w], doc.get("warnings")
    assert "jobs is not a folder" in res.stderr


# 5: a folder another job is writing exits 75 (retry later), not 2 (bad input) -----------------------------

def test_a_busy_output_folder_exits_75(raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    first = subprocess.Popen([*CLI, "shard", str(raw), str(out), "--maxcount", "1"], cwd=tmp_path,
                             # 3 s a shard, 10 shards: the lock is held ~27 s after the first tar, for two CLI starts
                             # (1 s was too short on a machine at load 37: the first job finished, the third call ran)
                             env=_env(MMDATA_TEST_SHARD_DELAY="3", MMDATA_PROGRESS="off"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(out.glob("*.tar")):  # the first job holds the lock
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.05)
        res = _mmdata("shard", str(raw), str(out), "--maxcount", "1", "--json", cwd=tmp_path, MMDATA_PROGRESS="off")
        assert res.returncode == 75, res.stderr
        doc = _doc(res.stdout)
        assert doc["exit_code"] == 75 and doc["ok"] is False and "being written by another job" in doc["error"]
        assert "error:" in res.stderr and "being written by another job" in res.stderr
        assert first.poll() is None, "the first job ended before the third call: widen MMDATA_TEST_SHARD_DELAY"
        plain = _mmdata("shard", str(raw), str(out), "--maxcount", "1", cwd=tmp_path, MMDATA_PROGRESS="off")
        assert plain.returncode == 75 and plain.stdout == "", plain.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        communicate_or_kill(first, 60)


# 6: --fail-on for CI -------------------------------------------------------------------------------------

def _hurting_recipe(folder: Path, data: Path) -> str:
    """A synthetic ablation whose arm ``noisy`` (three noise ops: -0.045 accuracy) hurts and whose label_noise
    control hurts too, as it is meant to."""
    import yaml

    noise = {"op": "noise", "p": 0.5}
    cfg = {"dataset": {"path": str(data)}, "trainer": {"entry": "mmdata.ablate.testing:synthetic_train"}, "seeds": 8,
           "design": {"mode": "explicit", "baseline": None, "arms": {"noisy": {"audio": [noise, noise, noise]}}},
           "controls": {"identity": False, "label_noise": 0.5}}
    path = folder / "hurt.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return str(path)


def test_fail_on_hurts_counts_arms_only_and_exits_3(tmp_path: Path, tiny: Path) -> None:
    """Nothing let CI fail when an arm hurts, and the obvious jq check was a trap: the label_noise control is in
    `arms` (kind control) and hurts by design."""
    recipe = _hurting_recipe(tmp_path, tiny)
    res = _mmdata("ablate", recipe, "--out", str(tmp_path / "out"), "-j", "2", "--fail-on", "hurts", "--json",
                  cwd=tmp_path, MMDATA_PROGRESS="off")
    assert res.returncode == 3, res.stderr
    doc = _doc(res.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 3 and doc["fail_on"]["checked"] == ["hurts"]
    decisions = {a["name"]: (a["kind"], a["decision"]) for a in doc["arms"]}
    assert decisions["noisy"][1].startswith("hurts"), decisions
    assert doc["fail_on"]["found"] == [f"arm 'noisy' {decisions['noisy'][1]}"]  # the control is not counted
    assert "--fail-on hurts: arm 'noisy' hurts" in doc["error"] and "--fail-on hurts: arm 'noisy'" in res.stderr
    # the summary without --fail-on: exit 0, as before
    again = _mmdata("ablate", recipe, "--out", str(tmp_path / "out"), "--json", cwd=tmp_path, MMDATA_PROGRESS="off")
    assert again.returncode == 0 and "fail_on" not in _doc(again.stdout)
    bad = _mmdata("ablate", recipe, "--out", str(tmp_path / "out"), "--fail-on", "hurt", "--json", cwd=tmp_path)
    assert bad.returncode == 2 and "--fail-on" in _doc(bad.stdout)["error"]
