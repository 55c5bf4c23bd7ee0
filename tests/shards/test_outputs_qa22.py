"""QA round 22, outputs (brief C): a job never writes over what is not its own — a remote prefix or an
augment output holding foreign files is refused as a local shard output is, an output URL naming an
object is refused, an ``http(s)://`` output is refused up front; a symbolic link planted at a job's lock
or journal is refused, never followed; a remote "not a dataset" says what is there; a SIGKILLed job into
``s3://`` leaves no temp shard the next run does not sweep; a read-only published folder says why the
job would write it. Object stores: the real S3 protocol server of tests/conftest.py (moto)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mmdata
from mmdata.errors import MMDataError, ShardError, SourceError
from mmdata.testing import make_sample_folder

REPO = Path(__file__).parents[2]
RECIPE = {"image": [{"op": "hflip", "p": 0.5}]}


def _cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in this process as the ``mmdata`` command does; (exit code, stdout + stderr)."""
    from mmdata.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    got = capsys.readouterr()
    return int(exc.value.code or 0), got.out + got.err


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_folder(tmp_path_factory.mktemp("raw") / "raw", n=6)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory, raw: Path) -> Path:
    out = tmp_path_factory.mktemp("ds") / "ds"
    mmdata.shard(raw, out, maxcount=3, progress=False)
    return out


# -- 1: foreign files at a remote output, at augment's output; an output URL naming an object --------


def test_a_remote_output_holding_foreign_objects_is_refused_unless_forced(raw: Path, s3) -> None:  # noqa: ANN001
    pytest.importorskip("s3fs")
    s3.fs.pipe_file(f"{s3.url[5:]}/mixed/train-000000.tar", b"the user's tar")
    s3.fs.pipe_file(f"{s3.url[5:]}/mixed/notes.txt", b"notes")
    with pytest.raises(SourceError, match=r"output folder s3://.*/mixed: not an mmdata dataset and not empty: it holds "
                                          r"2 entries \(train-000000.tar, notes.txt\); a job would replace "
                                          r"train-000000.tar.*--force"):
        mmdata.shard(raw, f"{s3.url}/mixed", maxcount=3, progress=False, storage_options=s3.options)
    assert s3.tree("mixed") == {"notes.txt": b"notes", "train-000000.tar": b"the user's tar"}
    rep = mmdata.shard(raw, f"{s3.url}/mixed", maxcount=3, progress=False, storage_options=s3.options, force=True)
    tree = s3.tree("mixed")
    assert rep["samples"] == 6 and tree["notes.txt"] == b"notes" and tree["train-000000.tar"] != b"the user's tar"
    # its own dataset there now: a rerun is not refused
    mmdata.shard(raw, f"{s3.url}/mixed", maxcount=3, progress=False, storage_options=s3.options)


def test_an_output_url_naming_an_object_is_refused(raw: Path, ds: Path, s3) -> None:  # noqa: ANN001
    s3.fs.pipe_file(f"{s3.url[5:]}/avd/dataset.json", b"{}")
    for force in (False, True):
        with pytest.raises(SourceError, match=r"output s3://.*/avd/dataset.json: an object \(a file\), expected a folder"):
            mmdata.shard(raw, f"{s3.url}/avd/dataset.json", progress=False, storage_options=s3.options, force=force)
    from mmdata.augment.offline import augment_dataset

    with pytest.raises(SourceError, match=r"an object \(a file\), expected a folder"):
        augment_dataset(ds, f"{s3.url}/avd/dataset.json", RECIPE, progress=False, storage_options=s3.options)
    assert s3.tree("avd") == {"dataset.json": b"{}"}


def test_augment_refuses_a_foreign_output_locally_and_remotely(ds: Path, tmp_path: Path, s3) -> None:  # noqa: ANN001
    from mmdata.augment.offline import augment_dataset

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "train-000000.tar").write_bytes(b"the user's tar")
    with pytest.raises(SourceError, match=r"mixed: not an mmdata dataset and not empty.*train-000000.tar.*--force"):
        augment_dataset(ds, mixed, RECIPE, progress=False)
    assert (mixed / "train-000000.tar").read_bytes() == b"the user's tar"
    s3.fs.pipe_file(f"{s3.url[5:]}/mixed2/train-000000.tar", b"the user's tar")
    with pytest.raises(SourceError, match=r"s3://.*/mixed2: not an mmdata dataset and not empty"):
        augment_dataset(ds, f"{s3.url}/mixed2", RECIPE, progress=False, storage_options=s3.options)
    assert s3.tree("mixed2") == {"train-000000.tar": b"the user's tar"}
    rep = augment_dataset(ds, mixed, RECIPE, progress=False, force=True)
    assert rep["samples"] == 6 and mmdata.verify(mixed)["ok"]
    assert augment_dataset(ds, mixed, RECIPE, progress=False)["up_to_date"]  # its own output: no --force needed


def test_augment_cli_has_force(ds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "train-000000.tar").write_bytes(b"the user's tar")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("image:\n  - {op: hflip, p: 0.5}\n")
    code, text = _cli("augment", str(ds), str(mixed), "-r", str(recipe), "--json", capsys=capsys)
    assert code != 0 and "pass --force" in text and (mixed / "train-000000.tar").read_bytes() == b"the user's tar"
    code, text = _cli("augment", str(ds), str(mixed), "-r", str(recipe), "--force", "--json", capsys=capsys)
    assert code == 0, text


# -- 2: an http(s):// output is refused up front ------------------------------------------------------


def test_an_http_output_is_refused_before_the_source_is_read(ds: Path, tmp_path: Path) -> None:
    from mmdata.augment.offline import augment_dataset

    never = tmp_path / "no-such-source"  # read first, it would be the error
    for url in ("http://127.0.0.1:9/new", "https://example.invalid/new"):
        with pytest.raises(SourceError, match=r"output https?://.*/new: http\(s\):// is read-only here: write to "
                                              r"s3:// / gs:// / az:// or a local or mounted path"):
            mmdata.shard(never, url, progress=False)
        with pytest.raises(SourceError, match=r"http\(s\):// is read-only here"):
            augment_dataset(ds, url, RECIPE, progress=False)
    with pytest.raises(SourceError, match=r"https://\*\*\*@host/x: http\(s\):// is read-only"):  # no password shown
        mmdata.shard(never, "https://me:secret@host/x", progress=False)


# -- 3: a remote "not a dataset" says what is there -------------------------------------------------


def test_remote_not_a_dataset_errors_say_what_is_there(ds: Path, s3) -> None:  # noqa: ANN001
    from mmdata.shards.index import read_card

    s3.fs.put(str(ds), f"{s3.url[5:]}/avd", recursive=True)
    shard = f"{s3.url}/avd/train-000000.tar"
    # QA26: a shard URL is named as a WebDataset shard, with the command that makes a dataset folder of it
    with pytest.raises(ShardError, match=r"train-000000.tar: not a dataset folder but 1 WebDataset shard.*"
                                         r"`mmdata shard .*mmdata.open_dataset"):
        read_card(shard, s3.options)
    with pytest.raises(MMDataError, match=r"not a dataset folder but 1 WebDataset shard without an index"):
        mmdata.inspect(shard, storage_options=s3.options)
    rep = mmdata.verify(shard, storage_options=s3.options)  # QA26: read through as shards (it was refused)
    assert rep["ok"] and rep["bare"] and rep["samples"] > 0
    with pytest.raises(ShardError, match=r"s3://no-such-bucket-qa22/ds: the bucket 'no-such-bucket-qa22' does not exist"):
        read_card("s3://no-such-bucket-qa22/ds", s3.options)
    with pytest.raises(ShardError, match=r"/nothing: does not exist \(no object under that prefix\)"):
        read_card(f"{s3.url}/nothing", s3.options)
    s3.fs.pipe_file(f"{s3.url[5:]}/plain/a.txt", b"x")  # a folder without a card: as before
    with pytest.raises(ShardError, match=r"/plain: no dataset.json \(not a dataset folder"):
        read_card(f"{s3.url}/plain", s3.options)


# -- 4: a symbolic link planted at the lock or the journal -------------------------------------------


@pytest.mark.parametrize("name", [".mmdata-lock", ".mmdata-journal"])
def test_a_planted_symlink_at_a_job_file_is_refused_and_its_target_untouched(raw: Path, tmp_path: Path,
                                                                            name: str) -> None:
    victim = tmp_path / "victim" / ".bashrc"
    victim.parent.mkdir()
    victim.write_text("export PATH=$HOME/bin:$PATH\n")
    shared = tmp_path / "shared" / "ds"
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    (shared / name).symlink_to(victim)
    with pytest.raises(SourceError, match=rf"ds/{name}: a symbolic link: refused.*remove it"):
        mmdata.shard(raw, shared, maxcount=3, progress=False)
    assert victim.read_text() == "export PATH=$HOME/bin:$PATH\n"
    assert (shared / name).is_symlink()
    (shared / name).unlink()
    assert mmdata.shard(raw, shared, maxcount=3, progress=False)["samples"] == 6


def test_a_lock_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    from mmdata.shards.journal import JobLock

    out = tmp_path / "ds"
    out.mkdir()
    os.mkfifo(out / ".mmdata-lock")  # opened read-write it does not block: then seen to be no regular file
    with pytest.raises(SourceError, match=r"\.mmdata-lock: not a regular file"):
        JobLock(out, "mmdata shard").__enter__()


# -- 5: a SIGKILLed job into s3:// leaves no temp shard the next run does not sweep --------------------


def test_a_killed_job_into_s3_leaves_its_temp_shards_where_the_next_run_sweeps_them(tmp_path: Path, s3) -> None:  # noqa: ANN001
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(4):  # large members: the upload of each shard takes long enough to be killed in
        (raw / f"{i:03d}.txt").write_bytes(b"%d " % i * (6 << 20))
    cache = tmp_path / "cache"
    out = f"{s3.url}/big"
    env = {**os.environ, **s3.env, "MMDATA_CACHE": str(cache), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    cmd = [sys.executable, "-c", "from mmdata.cli.main import main; main()", "shard", str(raw), out,
           "--maxcount", "1", "--json"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    staged: list[Path] = []
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        staged = [p for p in (cache / "staging").glob("*/*/*") if p.is_file()]
        if staged:
            break
        time.sleep(0.002)
    os.killpg(proc.pid, 9)
    proc.wait()
    assert staged, f"no shard was staged before the job ended: {proc.stderr.read().decode()[-2000:]}"
    left = [p for p in (cache / "staging").glob("*/*") if p.is_dir()]
    assert left, "the kill left nothing to sweep (the job finished first?)"
    assert not list((tmp_path / "tmp").iterdir())  # nothing in the system's temp folder
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, timeout=300)
    assert [p for p in (cache / "staging").glob("*/*")] == []
    assert mmdata.verify(out, storage_options=s3.options)["ok"]


def test_sweep_keeps_a_live_process_folder_and_never_follows_a_link(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.shards.output import staging_dir, sweep_staging

    monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "cache"))
    mine = staging_dir("s3://b/ds")  # this process: alive
    root = mine.parent
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    gone = root / f"{dead.stdout.strip()}-abc"
    gone.mkdir()
    (gone / "train-000000.tar").write_bytes(b"x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    (root / f"{dead.stdout.strip()}-link").symlink_to(outside)
    assert sweep_staging("s3://b/ds") == [gone.name]
    assert mine.is_dir() and (outside / "keep").read_text() == "keep"


# -- 6: a read-only published folder: why the job would write it -------------------------------------


def test_a_read_only_published_folder_says_the_cache_has_no_record(ds: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdata.shards.output import _why_rewrite, check_local_output

    monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "my-cache"))  # not the cache of the job that wrote ds
    why = _why_rewrite(ds)
    assert "my-cache" in why and "has no record of this job" in why and f"mmdata verify {ds}" in why
    assert _why_rewrite(tmp_path) == ""  # no dataset there: the plain message
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere: the not-writable path needs another user")
    pub = tmp_path / "pub"
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=3), pub, progress=False)
    pub.chmod(0o555)
    try:
        monkeypatch.setenv("MMDATA_CACHE", str(tmp_path / "other-cache"))
        with pytest.raises(SourceError, match=r"not writable .*has no record of this job.*mmdata verify"):
            check_local_output(pub, rerun=True)
    finally:
        pub.chmod(0o755)


def test_a_refused_cache_of_another_user_is_named_not_called_unnamed(ds: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """QA25 C-4: a class's shared MMDATA_CACHE owned by the teacher is refused for a student (warned), and the
    read-only-folder error then said "MMDATA_CACHE: none can be named here", as if the variable were unset."""
    from mmdata.shards.output import _why_rewrite

    if os.geteuid() != 0:
        pytest.skip("needs root to make a folder another user's")
    shared = tmp_path / "sharedcache"
    shared.mkdir(mode=0o1777)
    os.chown(shared, 12345, 12345)
    monkeypatch.setenv("MMDATA_CACHE", str(shared))
    why = _why_rewrite(ds)
    assert "none can be named" not in why, why
    assert f"none was used: mmdata's cache {shared} belongs to uid 12345" in why and "has no record" in why, why
