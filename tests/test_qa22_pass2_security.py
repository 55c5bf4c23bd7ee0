"""QA round 22, second security pass: a link planted at a shard's temp name is never written through nor
published; ``mmdata verify`` never prints a URL's password; :func:`mmdata.urls.redact_text` masks userinfo
holding ``/``, SigV2 / SAS / percent-encoded / fragment secrets; a resume state's numbers are bounded at
load. Real files, a real HTTP server (tests/conftest.py ``serve_folder``), the real CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.checks import expect_state
from mmdata.errors import ShardError
from mmdata.io import published_mode
from mmdata.shards.tarwrite import TarWriter, write_tar
from mmdata.testing import make_sample_folder
from mmdata.urls import redact_text

ROOT = Path(__file__).parents[1]
VICTIM = b"the victim's own bytes\n"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pass2")
    make_sample_folder(root / "raw", n=12)
    mmdata.shard(root / "raw", root / "ds", split="train=0.5,val=0.25,test=0.25", maxcount=4, seed=0, progress=False)
    return root / "ds"


def _plant(folder: Path, name: str, victim: Path, pids: range) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for pid in pids:
        (folder / f"{name}.tmp-{pid}").symlink_to(victim)


# ---- 1: temp shards -------------------------------------------------------------------------------------

def test_a_link_at_the_temp_name_is_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    out = tmp_path / "out"
    me = os.getpid()
    _plant(out, "x.tar", victim, range(me - 5, me + 6))  # the exact name the old code used, and neighbours
    write_tar(out / "x.tar", [("a.txt", b"hi")])
    assert victim.read_bytes() == VICTIM
    shard = out / "x.tar"
    assert not shard.is_symlink() and stat.S_ISREG(shard.lstat().st_mode)
    assert stat.S_IMODE(shard.stat().st_mode) == published_mode()
    assert shard.stat().st_uid == os.getuid() and shard.stat().st_size > len(VICTIM)


def test_temp_names_are_new_and_keep_the_swept_prefix(tmp_path: Path) -> None:
    w1, w2 = TarWriter(tmp_path / "x.tar"), TarWriter(tmp_path / "x.tar")
    try:
        assert w1._tmp != w2._tmp
        assert w1._tmp.name.startswith(f"x.tar.tmp-{os.getpid()}-") and Path(w1._tmp).match("*.tar.tmp-*")
    finally:
        w1.abort()
        w2.abort()
    assert list(tmp_path.iterdir()) == []


def test_mmdata_shard_into_a_folder_with_planted_links(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM)
    raw = make_sample_folder(tmp_path / "raw", n=8)
    out = tmp_path / "out"
    me = os.getpid()
    for split in ("train", "val"):
        _plant(out, f"{split}-000000.tar", victim, range(me - 5, me + 60))
    mmdata.shard(raw, out, split="train=0.5,val=0.5", seed=0, progress=False)
    assert victim.read_bytes() == VICTIM
    for split in ("train", "val"):
        shard = out / f"{split}-000000.tar"
        assert stat.S_ISREG(shard.lstat().st_mode), f"{shard} is a link"
    assert mmdata.verify(out)["ok"]


# ---- 2: verify's output ---------------------------------------------------------------------------------

def test_verify_never_prints_a_urls_password(dataset: Path, tmp_path: Path, serve_folder) -> None:  # noqa: ANN001
    bad = tmp_path / "bad"
    subprocess.run(["cp", "-r", str(dataset), str(bad)], check=True)
    shard = bad / "train-000000.tar"
    shard.write_bytes(shard.read_bytes()[:1500])  # truncated in a member
    base = serve_folder(tmp_path)
    url = base.replace("http://", "http://alice:SECRETPW@") + "/bad"
    for extra in ([], ["--json"]):
        proc = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "verify", url, *extra], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        text = proc.stdout + proc.stderr
        assert proc.returncode == 1, text
        assert "SECRETPW" not in text and "alice" not in text, text
        assert "truncated" in text and "train-000000.tar" in text, text
        if extra:
            found = [p["found"] for p in json.loads(proc.stdout)["problems"] if p["shard"] == "train-000000.tar"]
            assert any("***@" in f for f in found), found


def test_verify_report_strings_are_redacted(dataset: Path, tmp_path: Path, serve_folder) -> None:  # noqa: ANN001
    bad = tmp_path / "bad"
    subprocess.run(["cp", "-r", str(dataset), str(bad)], check=True)
    (bad / "val-000000.tar").write_bytes(b"\0" * 10)  # not a tar: its headers unreadable
    url = serve_folder(tmp_path).replace("http://", "http://bob:PASSWD@") + "/bad"
    rep = mmdata.verify(url)
    text = json.dumps(rep)
    assert not rep["ok"] and "PASSWD" not in text and "bob" not in text, text
    assert any("val-000000.tar" in p["shard"] for p in rep["problems"]), text


# ---- 3: redact_text -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, secret", [
    ("s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY@bucket/ds", "wJalr"),
    ("s3://AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY@bucket/ds", "AKIAIOSFODNN7EXAMPLE"),
    ("error: http://alice:pa/ss@127.0.0.1:8765/av: not found", "pa/ss"),
    ("error: http://alice:pa/ss@127.0.0.1:8765/av: not found", "alice"),
    ("http://alice:pa/ss@w@host/av/a.tar", "ss@w"),
    ("http://h/ds/a.tar?AWSAccessKeyId=AKIAEXAMPLE&Expires=1&Signature=SIGSECRET", "AKIAEXAMPLE"),
    ("http://h/ds/a.tar?AWSAccessKeyId=AKIAEXAMPLE&Expires=1&Signature=SIGSECRET", "SIGSECRET"),
    ("http://h/ds/a.tar?%73ig=SIGSECRET&x=1", "SIGSECRET"),
    ("http://h/ds/a.tar?%54oken=TOKSECRET", "TOKSECRET"),
    ("az://c/ds?sas_token=SASSECRET", "SASSECRET"),
    ("https://acct.blob.core.windows.net/c/ds?sv=2024-01-01&se=2030&sig=SASSIG%3D", "SASSIG"),
    ("http://h/ds#token=FRAGSECRET", "FRAGSECRET"),
    ("http://h/ds#x=1&access_token=FRAGSECRET", "FRAGSECRET"),
])
def test_redact_text_masks(text: str, secret: str) -> None:
    assert secret not in redact_text(text), redact_text(text)


@pytest.mark.parametrize("text", [
    "s3://bucket/path/a@b.txt",
    "s3://bucket/dir@2/file.tar: truncated",
    "http://h:8080/a@b.txt",
    "http://h:8080/x/a@b/c.tar",
    "http://[::1]:8080/a@b",
    "https://acct.blob.core.windows.net/c/ds?sv=2024-01-01&se=2030",
    "gs://b/k?generation=5#frag",
    "see http://h:80/x, mail me:a@b.c",
])
def test_redact_text_keeps(text: str) -> None:
    assert redact_text(text) == text


def test_redact_text_keeps_what_follows_the_url() -> None:
    assert redact_text("http://u:p/w@h/ds/a.tar: truncated") == "http://***@h/ds/a.tar: truncated"
    assert redact_text("https://a/b?sv=1&sig=S&se=2") == "https://a/b?sv=1&sig=***&se=2"


# ---- 4: resume state bounds -----------------------------------------------------------------------------

@pytest.mark.parametrize("state, key", [
    ({"epoch": 2**63, "seed": 0}, "'epoch'"),
    ({"epoch": 2**63 - 1, "seed": 0}, "'epoch'"),  # the next epoch would not fit the clock's word
    ({"epoch": 0, "seed": 2**64}, "'seed'"),
    ({"epoch": 0, "seed": -(2**63) - 1}, "'seed'"),
    ({"epoch": 0, "seed": 0, "positions": {0: 10**5000}}, "'positions'][0]"),
    ({"epoch": 0, "seed": 0, "positions": {0: 10**4000}}, "'positions'][0]"),
    ({"epoch": 0, "seed": 0, "positions": {0: 1}, "copies": {0: 2**63}}, "'copies'][0]"),
    ({"epoch": 0, "seed": 0, "positions": {0: 1}, "skipped": {0: {"x": 10**30}}}, "'skipped'][0]"),
    ({"epoch": 0, "seed": 0, "positions": {0: 1}, "errors": {0: [[10**5000, "s", "k", "m"]]}}, "'errors'][0]"),
    ({"epoch": 0, "seed": 0, "batches": 10**5000, "positions": {0: 1}}, "'batches'"),
])
def test_load_state_dict_bounds_every_number(dataset: Path, state: dict, key: str) -> None:
    ds = mmdata.open_dataset(dataset, split="train", seed=0)
    with pytest.raises(ShardError) as info:
        ds.load_state_dict(state)
    msg = str(info.value)
    assert key in msg and len(msg) < 400, msg
    assert "2**63" in msg or "position" in msg, msg


def test_a_state_at_the_bounds_loads(dataset: Path) -> None:
    ds = mmdata.open_dataset(dataset, split="train", seed=0)
    ds.load_state_dict({"epoch": 2**62, "seed": 0, "positions": {0: 2**63 - 1}})
    assert ds.state_dict()["epoch"] == 2**62
    assert expect_state({"epoch": 2**63 - 2, "seed": -(2**63)}, "state")["seed"] == -(2**63)
