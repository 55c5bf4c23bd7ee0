"""No secret a URL carries reaches a message (mmdata/urls.py ``redact_text``, applied by every
:class:`~mmdata.errors.MMDataError`): a user and password written into the URL, and the signature, token or
key of its query. Against a real HTTP server on 127.0.0.1 (fsspec's HTTP filesystem accepts userinfo in the
URL) and a port where nothing listens; the CLI in a real process."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError, ShardError, SourceError
from mmdata.testing import make_sample_folder
from mmdata.urls import SECRET_PARAMS, read_bytes, redact, redact_text, stage_dataset

ROOT = Path(__file__).parents[1]
SECRETS = ("hunter2", "pw123", "SIGVALUE", "CREDVALUE", "TOKVALUE")


def _clean(text: str) -> None:
    assert not [s for s in SECRETS if s in text], text


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("redaction")
    return Path(mmdata.shard(make_sample_folder(base / "raw", n=6), base / "ds", maxcount=4, split="val=1.0",
                             progress=False)["out"])


@pytest.fixture
def served(ds: Path, tmp_path: Path, serve_folder) -> str:  # noqa: ANN001
    """``http://alice:hunter2@127.0.0.1:PORT``: ``ds/``, ``bad/`` (a shard byte changed) and ``cut/`` (a shard
    truncated)."""
    root = tmp_path / "www"
    for name in ("ds", "bad", "cut"):
        shutil.copytree(ds, root / name)
    shard = sorted((root / "bad").glob("*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[600] ^= 0xFF
    shard.write_bytes(bytes(data))
    cut = sorted((root / "cut").glob("*.tar"))[0]
    cut.write_bytes(cut.read_bytes()[:700])
    return serve_folder(root).replace("http://", "http://alice:hunter2@")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_redact_text_masks_userinfo_and_secret_query_values() -> None:
    text = ("GET https://alice:hunter2@h.example/a?X-Amz-Signature=SIGVALUE&X-Amz-Credential=CREDVALUE&x=1, "
            "then s3://u@bucket/k and http://h/p?TOKEN=TOKVALUE;sv=2024 (see https://h/q?sig=SIGVALUE)")
    out = redact_text(text)
    _clean(out)
    assert out == ("GET https://***@h.example/a?X-Amz-Signature=***&X-Amz-Credential=***&x=1, then s3://***@bucket/k "
                   "and http://h/p?TOKEN=***;sv=2024 (see https://h/q?sig=***)")
    for name in SECRET_PARAMS:
        assert redact_text(f"https://h/x?a=1&{name.upper()}=v4lue") == f"https://h/x?a=1&{name.upper()}=***"
    assert redact_text("no url here: a@b, key: value") == "no url here: a@b, key: value"
    assert redact(redact("https://me:pw123@host/raw")) == "https://***@host/raw"  # idempotent


def test_every_mmdata_error_is_redacted_where_it_is_made() -> None:
    for cls in (MMDataError, ShardError, SourceError):
        exc = cls("shard http://alice:hunter2@h/ds/val-000000.tar?token=TOKVALUE: truncated", 3)
        _clean(str(exc))
        assert exc.args == ("shard http://***@h/ds/val-000000.tar?token=***: truncated", 3)


def test_a_truncated_shard_read_over_http_names_it_without_the_password(served: str) -> None:
    with pytest.raises(ShardError) as info:
        for _ in mmdata.open_dataset(f"{served}/cut", split="val"):
            pass
    _clean(str(info.value))
    assert "http://***@127.0.0.1:" in str(info.value)


def test_staging_errors_carry_the_url_redacted(served: str, tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match=r"http://\*\*\*@127\.0\.0\.1:\d+/bad/val-000000.tar: sha256") as info:
        stage_dataset(f"{served}/bad", cache=tmp_path / "cache")
    _clean(str(info.value))
    with pytest.raises(MMDataError) as info:
        stage_dataset(f"{served}/nothere", cache=tmp_path / "cache")
    _clean(str(info.value))
    port = _closed_port()
    with pytest.raises(MMDataError) as info:
        read_bytes(f"http://127.0.0.1:{port}/x.json?X-Amz-Signature=SIGVALUE&X-Amz-Credential=CREDVALUE")
    _clean(str(info.value))
    assert "X-Amz-Signature=***&X-Amz-Credential=***" in str(info.value)


def test_cli_messages_carry_urls_redacted(served: str, tmp_path: Path) -> None:
    port = _closed_port()
    raw = make_sample_folder(tmp_path / "raw", n=2)
    for args in (["inspect", f"{served.replace('hunter2', 'pw123')}/nothere"],
                 ["verify", f"http://user:pw123@127.0.0.1:{port}/ds"],
                 ["shard", str(raw), f"http://user:pw123@127.0.0.1:{port}/new"]):
        p = subprocess.run([sys.executable, "-c", "from mmdata.cli.main import main; main()", *args], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode != 0 and "***@127.0.0.1" in p.stderr + p.stdout, (args, p.stderr)
        _clean(p.stdout + p.stderr)
