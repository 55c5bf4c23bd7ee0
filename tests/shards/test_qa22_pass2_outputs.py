"""QA round 22, second pass (brief F2): a remote job killed right after its first upload resumes (its
prefix is marked as an mmdata job's before that upload); ``datasets build NAME s3://...`` writes to the
bucket and returns / prints the URL; ``--split-from`` calls a file moved between class folders only when
it is the same file; an empty-split warning under ``--split-from`` only for a split that is empty in the
output. Object stores: the real S3 protocol server of tests/conftest.py (moto)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import mmdata
from mmdata.testing import make_sample_folder

REPO = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_folder(tmp_path_factory.mktemp("raw") / "raw", n=6)


# -- 1: killed between shard 0's upload and its journal record ------------------------------------

# stands in for a SIGKILL at that instant: the driver dies where it would write its first record
_KILLED = """
import os, sys, mmdata
from mmdata.shards import output
output.ObjectJournal.append = lambda self, payload: os._exit(9)
mmdata.shard(sys.argv[1], sys.argv[2], maxcount=4, split="train=0.7,val=0.3", seed=1, workers=1, progress=False)
"""


def test_a_remote_job_killed_after_its_first_upload_resumes(raw: Path, s3) -> None:  # noqa: ANN001
    out = f"{s3.url}/race"
    proc = subprocess.run([sys.executable, "-c", _KILLED, str(raw), out], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **s3.env}, timeout=120)
    assert proc.returncode == 9, proc.stderr
    left = s3.tree("race")
    assert "train-000000.tar" in left
    assert any(k.startswith(".mmdata-journal/") for k in left), left  # marked before the upload
    rep = mmdata.shard(raw, out, maxcount=4, split="train=0.7,val=0.3", seed=1, workers=1, progress=False,
                       storage_options=s3.options)
    assert rep["samples"] == 6
    tree = s3.tree("race")
    assert not any(k.startswith(".mmdata-journal/") for k in tree), tree  # the finished job removed its journal
    assert {"dataset.json", "index.parquet", "shards.parquet", "train-000000.tar"} <= set(tree)
    mmdata.verify(out, storage_options=s3.options)
