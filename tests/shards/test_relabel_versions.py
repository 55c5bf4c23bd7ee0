"""QA 2026-12-05 (a researcher relabelling a dataset over months): an annotator's fix that moves a file to
another class folder changed its key, so ``--split-from`` split it anew (v1 test samples went to v2 train);
adding a class before others in sorted order renumbered every class id under ``--split-from`` without a
word; a label differing only by an invisible character was a class of its own with no warning; a class
declared in ``--labels`` that no sample carries was not named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq

import mmdata
from mmdata.shards import index as idx

SPLIT = "train=0.6,val=0.2,test=0.2"


def _raw(root: Path, classes: tuple[str, ...], n: int = 12) -> Path:
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / c / f"{c}{i:03d}.txt").write_text(f"a {c} {i}\n")
    return root


def _by_source(ds: Path) -> dict[str, str]:
    t = pq.read_table(ds / idx.INDEX, columns=["source_key", "split"]).to_pydict()
    return dict(zip(t["source_key"], t["split"]))


def test_a_sample_moved_to_another_class_folder_keeps_its_split(tmp_path: Path) -> None:
    raw = _raw(tmp_path / "raw1", ("bee", "cat", "dog"))
    mmdata.shard(raw, tmp_path / "v1", split=SPLIT, seed=0, progress=False)
    v1 = _by_source(tmp_path / "v1")
    tests = sorted(k for k, s in v1.items() if s == "test" and not k.startswith("bee/"))
    trains = sorted(k for k, s in v1.items() if s == "train" and k.startswith("dog/"))
    raw2 = Path(shutil.copytree(raw, tmp_path / "raw2"))
    moves = {tests[0]: "bee", tests[1]: "dog" if not tests[1].startswith("dog/") else "cat", trains[0]: "cat"}
    for sk, to in moves.items():
        (raw2 / (sk + ".txt")).rename(raw2 / to / (sk.split("/", 1)[1] + ".txt"))
    rep = mmdata.shard(raw2, tmp_path / "v2", split=SPLIT, seed=0, split_from=tmp_path / "v1", progress=False)
    v2 = _by_source(tmp_path / "v2")
    for sk, to in moves.items():
        now = f"{to}/{sk.split('/', 1)[1]}"
        assert v2[now] == v1[sk], (sk, now)  # before: the two test samples were split anew
    assert all(v2[k] == s for k, s in v1.items() if k in v2)
    card = idx.load_card(tmp_path / "v2")
    assert card["split_from"]["moved_class"] == 3 and card["split_from"]["new"] == 0
    assert any("3 samples moved to another class folder since the earlier version kept their split" in w
               for w in rep["warnings"])


def test_a_new_file_with_a_gone_files_name_in_the_same_class_is_not_taken_for_a_move(tmp_path: Path) -> None:
    """Only a class change is a move: a path met in the same class again is a new sample, split anew."""
    raw = _raw(tmp_path / "raw1", ("bee", "cat"), n=5)
    mmdata.shard(raw, tmp_path / "v1", split="train=0.5,test=0.5", seed=0, progress=False)
    (raw / "cat" / "cat000.txt").unlink()
    (raw / "cat" / "sub").mkdir()
    (raw / "cat" / "sub" / "cat000.txt").write_text("another\n")
    mmdata.shard(raw, tmp_path / "v2", split="train=0.5,test=0.5", seed=0, split_from=tmp_path / "v1", progress=False)
    assert "moved_class" not in idx.load_card(tmp_path / "v2")["split_from"]


def test_class_ids_that_change_under_split_from_are_named_with_the_remedy(tmp_path: Path) -> None:
    raw = _raw(tmp_path / "raw1", ("bee", "cat", "dog"), n=4)
    mmdata.shard(raw, tmp_path / "v1", split=SPLIT, seed=0, progress=False)
    shutil.rmtree(raw / "bee")
    _raw(raw, ("ant",), n=4)
    rep = mmdata.shard(raw, tmp_path / "v2", split=SPLIT, seed=0, split_from=tmp_path / "v1", progress=False)
    got = [w for w in rep["warnings"] if "class ids name other classes" in w]
    assert len(got) == 1, rep["warnings"]
    assert "(v1): id 0 'bee' -> 'ant';" in got[0] and "; added: 'ant'; removed: 'bee'" in got[0]
    assert "--labels FILE naming its classes in its order, then the new ones (bee, cat, dog, ant" in got[0]
    # the card stores this version's names only: no removed class's name (QA34 gdpr #2: an erased person)
    stored = [w for w in idx.load_card(tmp_path / "v2")["warnings"] if "class ids name other classes" in w]
    assert len(stored) == 1 and "'bee'" not in stored[0] and "id 0 now 'ant'" in stored[0]
    assert "1 class removed" in stored[0]
    # the remedy keeps the ids, and a class appended last changes none: no warning
    (tmp_path / "names.txt").write_text("bee\ncat\ndog\nant\n")
    rep = mmdata.shard(raw, tmp_path / "v3", split=SPLIT, seed=0, split_from=tmp_path / "v1",
                       label_names=tmp_path / "names.txt", progress=False)
    assert not [w for w in rep["warnings"] if "class ids name other" in w]
    assert idx.load_card(tmp_path / "v3")["label_names"] == ["bee", "cat", "dog", "ant"]
    # bee is named by --labels and has no sample now: said (before, nothing did)
    assert any("class 'bee' (id 0), named by --labels, has no sample" in w for w in rep["warnings"])
    assert any("'bee' (id 0)" in w["message"] for w in mmdata.inspect(tmp_path / "v3")["warnings"])


def test_a_label_differing_by_an_invisible_character_is_warned_and_shown_escaped(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    rows = ["text,label"] + [f"t{i},cat" for i in range(6)] + [f"u{i},cat\u200b" for i in range(2)] + ["v,dog"]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    got = [w for w in rep["warnings"] if "differ only in" in w and "invisible characters" in w]
    assert len(got) == 1 and "'cat\\u200b' (2)" in got[0] and "'cat' (6)" in got[0], rep["warnings"]
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "inspect", str(tmp_path / "ds")], cwd=repo,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo),
                                                              "COLUMNS": "200"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "cat\\u200b: 2" in out.stdout and "cat: 6" in out.stdout, out.stdout
    assert json.loads(subprocess.run([sys.executable, "-m", "mmdata.cli.main", "inspect", str(tmp_path / "ds"),
                                      "--json"], cwd=repo, capture_output=True, text=True, timeout=120,
                                     env={**os.environ, "PYTHONPATH": str(repo)}).stdout)["label_names"] == [
        "cat", "cat\u200b", "dog"]
