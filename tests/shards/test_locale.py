"""The mmdata command under locales that cannot show or decode UTF-8 (a QA pass, 2026-12-02): a C locale
with Python's UTF-8 mode turned off, and a terminal encoding of ASCII."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mmdata.testing import make_sample_folder

REPO = Path(__file__).parents[2]
CLI = [sys.executable, "-m", "mmdata.cli.main"]


def _utf8_named_folder(root: Path) -> Path:
    make_sample_folder(root, n=4)
    for p in sorted(root.glob("000001.*")):  # one sample named in UTF-8: café
        p.rename(p.with_name("café" + p.name[len("000001"):]))
    return root


def _shard(raw: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "shard", str(raw), str(out), "--json"], cwd=REPO, env=env, capture_output=True,
                          text=True, encoding="utf-8", errors="replace")


def test_a_c_locale_without_utf8_mode_gives_the_same_dataset(tmp_path: Path) -> None:
    """Under LC_ALL=C with PYTHONUTF8=0 Python reads file names as ASCII: a UTF-8 name (café) counted as
    'not valid UTF-8', got another key than under a UTF-8 locale, and its warning crashed the summary
    print (UnicodeEncodeError) after the job had finished."""
    raw = _utf8_named_folder(tmp_path / "raw")
    c_env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    c_env.pop("PYTHONIOENCODING", None)
    c = _shard(raw, tmp_path / "c", c_env)
    u = _shard(raw, tmp_path / "u", {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONUTF8": "1"})
    assert c.returncode == 0 and u.returncode == 0, (c.stderr, u.stderr)
    report = json.loads(c.stdout)
    assert not any("UTF-8" in w for w in report["warnings"]), report["warnings"]
    assert (tmp_path / "c" / "index.parquet").read_bytes() == (tmp_path / "u" / "index.parquet").read_bytes()
    assert sorted(p.name for p in (tmp_path / "c").glob("*.tar")) == sorted(p.name for p in (tmp_path / "u").glob("*.tar"))
    for tar in (tmp_path / "c").glob("*.tar"):
        assert tar.read_bytes() == (tmp_path / "u" / tar.name).read_bytes()


def test_a_name_the_terminal_cannot_show_is_escaped_not_a_crash(tmp_path: Path) -> None:
    """With an ASCII terminal encoding (PYTHONIOENCODING=ascii) the list of files left out named café.png
    and the command died with UnicodeEncodeError after writing the dataset."""
    raw = make_sample_folder(tmp_path / "raw", n=4)
    (raw / "café.png").symlink_to("nowhere")
    r = subprocess.run([*CLI, "shard", str(raw), str(tmp_path / "out")], cwd=REPO, capture_output=True,
                       env={**os.environ, "PYTHONIOENCODING": "ascii"}, text=True, encoding="ascii", errors="strict")
    assert r.returncode == 0, r.stderr
    assert "caf\\xe9.png: broken symbolic link" in r.stderr


def test_the_library_under_an_ascii_file_system_encoding_says_how_to_keep_utf8_names(tmp_path: Path) -> None:
    """Imported into a Python that reads file names as ASCII the library cannot re-run itself as the
    command does: its warning says why the names look invalid and what to set."""
    raw = _utf8_named_folder(tmp_path / "raw")
    code = ("import json, sys, mmdata; r = mmdata.shard(sys.argv[1], sys.argv[2]); "
            "print(json.dumps([w for w in r['warnings'] if 'UTF-8' in w]))")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "utf-8"}
    r = subprocess.run([sys.executable, "-c", code, str(raw), str(tmp_path / "out")], cwd=REPO, env=env,
                       capture_output=True, text=True, encoding="utf-8")
    assert r.returncode == 0, r.stderr
    (warning,) = json.loads(r.stdout.strip().splitlines()[-1])
    assert "1 sample name is not valid UTF-8" in warning and "PYTHONUTF8=1" in warning and "ascii" in warning


def test_an_ascii_locale_gets_ascii_output(tmp_path: Path) -> None:
    """The command re-runs itself in UTF-8 mode to read UTF-8 file names, but its output keeps the locale's ASCII
    (QA: under LC_ALL=C with PYTHONUTF8=0 the tables came out as UTF-8 box drawing on an ASCII terminal)."""
    raw = _utf8_named_folder(tmp_path / "raw")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    env.pop("PYTHONIOENCODING", None)
    assert _shard(raw, tmp_path / "ds", env).returncode == 0
    r = subprocess.run([*CLI, "inspect", str(tmp_path / "ds")], cwd=REPO, env=env, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.isascii() and b"| split" in r.stdout, r.stdout[:300]
    index = subprocess.run([*CLI, "inspect", str(tmp_path / "ds"), "--json"], cwd=REPO, env=env, capture_output=True)
    assert index.stdout.isascii() and json.loads(index.stdout)["samples"] == 4
