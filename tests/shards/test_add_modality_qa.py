"""`mmdata add-modality` QA (2026-12-05): the field name is untrusted (it names a folder of OUT), a
standard field takes only its own file types, SIGTERM ends the job like Ctrl-C (the dataset as it was),
and the CLI's messages say why files were not used."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.errors import SourceError
from mmdata.testing import make_sample_folder

REPO = Path(__file__).parents[2]
KEYS = [f"{i:06d}" for i in range(6)]


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _columns_ds(tmp_path: Path) -> Path:
    mmdata.shard(make_sample_folder(tmp_path / "raw", n=6), tmp_path / "ds", layout="columns", maxcount=3, progress=False)
    return tmp_path / "ds"


def _files(folder: Path, ext: str, keys: list[str] = KEYS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in keys:
        if ext.endswith("npy"):
            np.save(folder / f"{k}.{ext}", np.full(3, 1.0))
        else:
            (folder / f"{k}.{ext}").write_text("1\n")
    return folder


@pytest.mark.parametrize("name", ["../evil", "a/b", ".", "..", ".hidden", "", "a\\b", "bad\nname"])
def test_a_field_name_that_is_no_folder_name_is_refused_before_anything_is_written(tmp_path: Path, name: str) -> None:
    """QA: `add-modality ds ../evil m.csv` wrote a series beside the dataset, which every reader then refused
    ('escapes the dataset folder'); `.` / `..` / `a/b` crashed half-way, leaving a staging folder."""
    ds = _columns_ds(tmp_path)
    src = _files(tmp_path / "d", "x.npy")
    before, around = _tree(ds), sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SourceError, match=r"is not a field name"):
        mmdata.add_modality(ds, name, src)
    assert _tree(ds) == before and sorted(p.name for p in tmp_path.iterdir()) == around
    assert mmdata.verify(ds)["ok"]


def test_label_is_refused_and_says_how_labels_are_given(tmp_path: Path) -> None:
    """QA: the error for `label` advised `<key>.label.npy`, which add-modality then wrote and the reader refuses
    (the sample lost), and the index kept the old labels."""
    ds = _columns_ds(tmp_path)
    before = _tree(ds)
    for ext in ("cls", "label.npy"):
        with pytest.raises(SourceError, match=r"the label cannot be added as a series.*re-shard"):
            mmdata.add_modality(ds, "label", _files(tmp_path / ext, ext), replace=True)
    assert _tree(ds) == before


def test_a_standard_field_takes_only_its_own_types(tmp_path: Path) -> None:
    """`<key>.image.npy` names the image field but is no image: the reader refuses it (a lost sample)."""
    ds = _columns_ds(tmp_path)
    before = _tree(ds)
    with pytest.raises(SourceError, match=r"none for field 'image'.*image\.npy.*cannot supply.*\.png"):
        mmdata.add_modality(ds, "image", _files(tmp_path / "d", "image.npy"), replace=True)
    assert _tree(ds) == before
    # beside good ones, such a file is not used and says why
    src = tmp_path / "mixed"
    src.mkdir()
    for k, p in zip(KEYS[:2], sorted((tmp_path / "raw").rglob("*.png"))):
        (src / f"{k}.png").write_bytes(p.read_bytes())
    _files(src, "image.npy", KEYS[2:3])
    rep = mmdata.add_modality(ds, "image", src, replace=True)
    # it matches sample KEYS[2] and names the field: a left-out member of that sample, listed in the card's skipped
    # (QA35 robotics #1), no more an unused file of the folder
    assert rep["added"] == 2 and rep["unmatched"] == 0 and rep["skipped"] == 1
    [entry] = rep["skipped_files"]
    assert entry["sample"] == KEYS[2] and "cannot supply the standard field 'image'" in entry["reason"]
    assert all(s.key in KEYS[:2] or "image" not in s.fields for s in mmdata.open_dataset(ds, on_error="raise"))


def test_the_cli_says_why_files_were_not_used_and_names_its_own_option(tmp_path: Path) -> None:
    from mmdata.cli.main import app

    ds = _columns_ds(tmp_path)
    src = _files(tmp_path / "d", "depth.npy", KEYS + ["nokey"])
    _files(src, "normals.npy", KEYS[:1])
    runner = CliRunner()
    res = runner.invoke(app, ["add-modality", str(ds), "depth", str(src)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "not used: 2 files (" in out and "its name matches no sample's key or source_key: 1;" in out \
        and "a 'normals' file, not 'depth': 1;" in out, out
    res = runner.invoke(app, ["add-modality", str(ds), "depth", str(src)])
    assert res.exit_code != 0 and "already exists; replace it with --replace" in str(res.exception)


def test_sigterm_while_the_series_is_moved_into_place_leaves_the_dataset_as_it_was(tmp_path: Path) -> None:
    """QA: Ctrl-C put everything back; SIGTERM (a scheduler) killed the job between the index and the card,
    leaving `.mmdata-add-depth.old` and a dataset that failed verify."""
    ds = _columns_ds(tmp_path)
    mmdata.add_modality(ds, "depth", _files(tmp_path / "d1", "depth.npy", KEYS[:3]))
    before = _tree(ds)
    env = {**os.environ, "MMDATA_TEST_COMMIT_DELAY": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "mmdata.cli.main", "add-modality", str(ds), "depth",
                             str(_files(tmp_path / "d2", "depth.npy")), "--replace"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (ds / ".mmdata-add-depth.old").exists():  # the new series in place, index written, card not
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "mmdata add-modality into" in err and "interrupted by SIGTERM" in err, err
    assert _tree(ds) == before and mmdata.verify(ds)["ok"]
    assert not any(p.name.startswith(".mmdata-add") for p in ds.iterdir())


def test_a_sigterm_while_the_old_series_is_removed_leaves_none_of_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """QA (second pass): a SIGTERM landing inside the last step — the replaced series' removal, after the
    commit — stopped it half-way: part of `.mmdata-add-depth.old` stayed, verify listed its shards and the
    next add-modality took it for a killed replace. Now the removal finishes; the signal comes right after."""
    import shutil as real_shutil

    from mmdata.cli.common import Terminated, terminated_as_exit
    from mmdata.shards import columns

    ds = _columns_ds(tmp_path)
    mmdata.add_modality(ds, "depth", _files(tmp_path / "d1", "depth.npy", KEYS[:3]))
    rmtree, sent = real_shutil.rmtree, []

    def signalled(path, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        if str(path).endswith(".mmdata-add-depth.old") and not sent:
            sent.append(path)
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler's, at the worst moment: one signal
        return rmtree(path, *a, **k)

    monkeypatch.setattr(columns.shutil, "rmtree", signalled)
    with pytest.raises(Terminated), terminated_as_exit():
        mmdata.add_modality(ds, "depth", _files(tmp_path / "d2", "depth.npy"), replace=True)
    monkeypatch.undo()
    assert not [p.name for p in ds.iterdir() if p.name.startswith(".mmdata-add")]
    assert mmdata.verify(ds)["ok"]
    assert sum("depth" in s.fields for s in mmdata.open_dataset(ds)) == len(KEYS)  # the new series, committed


def test_the_hint_never_names_a_standard_field_and_promises_arrays_only(tmp_path: Path) -> None:
    """QA (second pass): images given for an extra field got 'to add them as they are, use the field name
    'image'' (with --replace, a way to overwrite the dataset's images) and '<key>.depth2.png' was promised
    (such a file reads as an image)."""
    ds = _columns_ds(tmp_path)
    src = tmp_path / "maps"
    src.mkdir()
    for k, p in zip(KEYS, sorted((tmp_path / "raw").rglob("*.png"))):
        (src / f"{k}.png").write_bytes(p.read_bytes())
    with pytest.raises(SourceError) as err:
        mmdata.add_modality(ds, "depth2", src)
    msg = str(err.value)
    assert "none for field 'depth2'" in msg and "expected <key>.depth2.npy (an array)" in msg, msg
    assert "use the field name" not in msg and ".depth2.png" not in msg, msg
