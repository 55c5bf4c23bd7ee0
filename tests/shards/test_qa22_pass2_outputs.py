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


# -- 2: datasets build into an object store ----------------------------------------------------------


def test_build_api_returns_the_url_of_a_remote_out_and_a_path_of_a_local_one(tmp_path: Path, s3) -> None:  # noqa: ANN001
    from mmdata.datasets import avdigits, spatial

    url = avdigits.build(f"{s3.url}/av2", limit=4, progress=False, storage_options=s3.options)
    assert url == f"{s3.url}/av2"
    assert mmdata.inspect(url, storage_options=s3.options)["samples"] == 40
    url = spatial.build(f"{s3.url}/sp", limit=4, progress=False, storage_options=s3.options)
    assert url == f"{s3.url}/sp" and "dataset.json" in s3.tree("sp")
    assert avdigits.build(tmp_path / "av", limit=4, progress=False) == tmp_path / "av"
    # the storage options reach the foreign-output check too
    s3.fs.pipe_file(f"{s3.url[5:]}/mixed/train-000000.tar", b"the user's tar")
    with pytest.raises(mmdata.errors.SourceError, match=r"s3://.*/mixed: not an mmdata dataset and not empty"):
        avdigits.build(f"{s3.url}/mixed", limit=4, progress=False, storage_options=s3.options)


@pytest.mark.parametrize("name", ["avdigits", "avdigits-spatial"])
def test_datasets_build_cli_writes_to_the_bucket(name: str, tmp_path: Path, s3, monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from mmdata.cli.main import main

    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["datasets", "build", name, f"{s3.url}/av", "--limit", "4"])
    got = capsys.readouterr()
    assert (exc.value.code or 0) == 0, got.err
    assert f"built {name} at {s3.url}/av\n" in got.out
    assert {"dataset.json", "index.parquet", "shards.parquet"} <= set(s3.tree("av"))
    assert list(tmp_path.iterdir()) == []  # no local ./s3:/... folder


# -- 3: a new file with a deleted one's name in another class folder is not a move -------------------

SPLIT3 = "train=0.5,val=0.25,test=0.25"


def _numbered(root: Path, n: dict[str, int]) -> Path:
    """Class folders whose files are numbered per class (cat/000.txt, dog/000.txt, ...)."""
    for c, count in n.items():
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / c / f"{i:03d}.txt").write_text(f"a {c} number {i}\n")
    return root


def _splits(ds: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    from mmdata.shards import index as idx

    t = pq.read_table(ds / idx.INDEX, columns=["source_key", "split"]).to_pydict()
    return dict(zip(t["source_key"], t["split"]))


@pytest.mark.parametrize("same", [False, True])
def test_a_class_folder_move_is_the_same_file_only(tmp_path: Path, same: bool) -> None:
    from mmdata.shards import index as idx

    raw = _numbered(tmp_path / "raw", {"cat": 12, "dog": 11})  # cat/000..011, dog/000..010
    mmdata.shard(raw, tmp_path / "v1", split=SPLIT3, seed=0, progress=False)
    v1 = _splits(tmp_path / "v1")
    if same:  # the annotator's relabel: the file itself moved
        (raw / "cat" / "011.txt").rename(raw / "dog" / "011.txt")
    else:  # the QA case: cat/011 deleted, a different new dog/011 added
        (raw / "cat" / "011.txt").unlink()
        (raw / "dog" / "011.txt").write_text("a new dog, not that cat\n")
    rep = mmdata.shard(raw, tmp_path / "v2", split=SPLIT3, seed=0, split_from=tmp_path / "v1", progress=False)
    moved = [w for w in rep["warnings"] if "moved to another class folder" in w]
    card = idx.load_card(tmp_path / "v2")["split_from"]
    if same:
        assert len(moved) == 1 and "'cat/011' -> 'dog/011'" in moved[0], rep["warnings"]
        assert card["moved_class"] == 1 and _splits(tmp_path / "v2")["dog/011"] == v1["cat/011"]
    else:
        assert moved == [] and "moved_class" not in card, rep["warnings"]


# -- 4: "split 'X' is empty" only for a split empty in the output ----------------------------------


def test_split_from_warns_of_an_empty_split_only_when_the_output_has_none(tmp_path: Path) -> None:
    from mmdata.shards import index as idx

    raw = _numbered(tmp_path / "raw", {"cat": 11, "dog": 11})
    mmdata.shard(raw, tmp_path / "v1", split=SPLIT3, seed=0, progress=False)
    (raw / "dog" / "011.txt").write_text("one new dog\n")
    rep = mmdata.shard(raw, tmp_path / "v2", split=SPLIT3, seed=0, split_from=tmp_path / "v1", progress=False)
    assert rep["samples"] == 23 and all(rep["splits"][s] for s in ("train", "val", "test")), rep["splits"]
    assert not any("is empty" in w for w in rep["warnings"]), rep["warnings"]
    line = [w for w in rep["warnings"] if w.startswith("--split train=0.5,val=0.25,test=0.25 was applied to the 1 sample")]
    assert len(line) == 1 and line[0].endswith("; the 1 split now went to train (1), none to 'val' or 'test', which "
                                               f"hold {rep['splits']['val']} and {rep['splits']['test']} that keep "
                                               "their split"), rep["warnings"]
    assert line[0] in idx.load_card(tmp_path / "v2")["warnings"]


def test_an_output_split_that_is_empty_is_still_named(tmp_path: Path) -> None:
    """A split the earlier version did not have and the new samples do not fill: empty in the output."""
    raw = _numbered(tmp_path / "raw", {"cat": 4, "dog": 4})
    mmdata.shard(raw, tmp_path / "v1", split="train=0.5,val=0.5", seed=0, progress=False)
    (raw / "dog" / "004.txt").write_text("one new dog\n")
    rep = mmdata.shard(raw, tmp_path / "v2", split="train=0.5,val=0.4,test=0.1", seed=0, split_from=tmp_path / "v1",
                       progress=False)
    got = [w for w in rep["warnings"] if "is empty" in w]
    assert got == ["split 'test' is empty: --split asks test=0.1 of the 1 sample without a split of their own "
                   "(0.10), which rounds to none (got train 1, val 0, test 0); give it a larger fraction or shard "
                   "more samples"], rep["warnings"]
