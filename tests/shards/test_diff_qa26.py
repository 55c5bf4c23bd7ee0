"""``mmdata diff A B`` (mmdata.shards.diff): two versions of real datasets, sharded from real folders and
manifests edited between them (a file added, one removed, an image's bytes changed, a file moved to another
class folder, a label and a split changed); every kind checked exactly, the JSON, the exit codes (QA26 F16)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mmdata.errors import ShardError
from mmdata.shards import index as idx
from mmdata.shards.diff import KINDS, diff
from mmdata.shards.writer import shard
from mmdata.testing import make_class_folders
from mmdata.testing.media import image_bytes, text_for

ROOT = Path(__file__).parents[2]


def _cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmdata", "diff", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """v1 and v2 of a class-folder dataset: v2 sharded with --split-from v1 after a file was added, one
    removed, an image's bytes changed and a sample moved to another class folder."""
    t = tmp_path_factory.mktemp("diff_folders")
    raw = make_class_folders(t / "raw", per_class=4)  # bird, cat, dog: 000..003 each
    (raw / "bird" / "b900.png").write_bytes(image_bytes(90))
    (raw / "bird" / "b900.txt").write_text(text_for(90), encoding="utf-8")
    shard(raw, t / "v1", split="train=0.5,test=0.5", progress=False)
    raw2 = t / "raw2"
    shutil.copytree(raw, raw2)
    (raw2 / "dog" / "100.png").write_bytes(image_bytes(100))  # added
    for f in (raw2 / "cat").glob("000.*"):  # removed
        f.unlink()
    (raw2 / "dog" / "001.png").write_bytes(image_bytes(101))  # other bytes
    (raw2 / "cat" / "002.txt").unlink()  # a member removed
    for f in (raw2 / "bird").glob("b900.*"):  # moved to another class folder: relabelled bird -> cat
        f.rename(raw2 / "cat" / f.name)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        shard(raw2, t / "v2", split="train=0.5,test=0.5", split_from=t / "v1", progress=False)
    assert any("moved to another class folder" in str(w.message) for w in said)  # shard pairs it too
    rows = {r["source_key"]: r for r in idx.load_index(t / "v1").to_pylist()}
    return t / "v1", t / "v2", rows


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """v1 and v2 of a manifest dataset (key, image, label and split columns): in v2 s1 is relabelled dog -> cat,
    s2 moved train -> test, s3's image has other bytes, s5 is gone, s6 is new in a new class 'ant' (which
    sorts first: every class id shifts, no sample is relabelled by it)."""
    t = tmp_path_factory.mktemp("diff_manifests")

    def version(name: str, rows: list[dict]) -> Path:
        raw = t / f"raw_{name}"
        raw.mkdir()
        for r in rows:
            (raw / r["image"]).write_bytes(image_bytes(r.pop("seed")))
        with open(raw / "m.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=["id", "image", "label", "split"])
            w.writeheader()
            w.writerows(rows)
        shard(raw / "m.csv", t / name, columns={"key": "id"}, progress=False)
        return t / name

    v1 = [{"id": f"s{i}", "image": f"img{i}.png", "label": ["cat", "dog"][i % 2], "split": "test" if i % 3 == 0
           else "train", "seed": i} for i in range(6)]
    v2 = [dict(r) for r in v1 if r["id"] != "s5"]
    v2[1]["label"] = "cat"  # s1
    v2[2]["split"] = "test"  # s2
    v2[3]["seed"] = 33  # s3
    v2.append({"id": "s6", "image": "img6.png", "label": "ant", "split": "train", "seed": 6})
    return version("v1", v1), version("v2", v2)


def test_folders_every_kind_exactly(folders: tuple[Path, Path, dict]) -> None:
    v1, v2, rows = folders
    d = diff(v1, v2)
    assert d["by"] == "key" and "no shard is read" in d["reads"]
    assert {k: d[k]["total"] for k in KINDS} == {"added": 1, "removed": 1, "changed": 2, "relabelled": 1, "moved": 0}
    assert d["counts"]["unchanged"] == 13 - 1 - 2 - 1
    [added] = d["added"]["items"]
    assert (added["source_key"], added["label"]) == ("dog/100", "dog")
    [removed] = d["removed"]["items"]
    assert (removed["source_key"], removed["label"], removed["split"]) == ("cat/000", "cat", rows["cat/000"]["split"])
    changed = {c["source_key"]: c["members"] for c in d["changed"]["items"]}
    assert set(changed) == {"dog/001", "cat/002"}
    [png] = changed["dog/001"]
    assert (png["member"], png["what"], png["a_size"]) == ("png", "bytes", rows["dog/001"]["sizes"][1])
    assert png["a_crc32"] == rows["dog/001"]["member_crc32"][1] and png["b_crc32"] != png["a_crc32"]
    assert changed["cat/002"] == [{"member": "txt", "what": "removed", "a_size": rows["cat/002"]["sizes"][2],
                                   "b_size": None}]
    # moved to another class folder: paired by its path inside the folder and its members' CRC-32s
    [rel] = d["relabelled"]["items"]
    assert (rel["a"], rel["b"], rel["matched"], rel["source_key"]) == ("bird", "cat", "class folder", "cat/b900")
    assert rel["a_key"] == rows["bird/b900"]["key"] != rel["key"]
    assert rel["split"] == rows["bird/b900"]["split"]  # --split-from kept it
    assert d["relabelled_pairs"] == {"bird -> cat": 1} and d["moved_pairs"] == {}
    assert d["card"]["changed"] is False and d["card"]["fingerprint"]["same"] is False
    assert d["same"] is False and d["warnings"] == []
    per = d["per_split"]
    assert sum(p["a"] for p in per.values()) == 13 and sum(p["b"] for p in per.values()) == 13
    assert per[rows["cat/000"]["split"]]["removed"] == 1
    json.dumps(d)  # JSON-able


def test_by_source_key_agrees(folders: tuple[Path, Path, dict]) -> None:
    v1, v2, _ = folders
    by_key, by_source = diff(v1, v2), diff(v1, v2, by="source_key")
    assert by_source["by"] == "source_key"
    assert {k: by_source[k] for k in KINDS} == {k: by_key[k] for k in KINDS}


def test_manifests_relabel_move_and_class_ids(manifests: tuple[Path, Path]) -> None:
    v1, v2 = manifests
    d = diff(v1, v2)
    assert {k: d[k]["total"] for k in KINDS} == {"added": 1, "removed": 1, "changed": 1, "relabelled": 1, "moved": 1}
    assert [(i["key"], i["split"], i["label"]) for i in d["added"]["items"]] == [("s6", "train", "ant")]
    assert [(i["key"], i["split"], i["label"]) for i in d["removed"]["items"]] == [("s5", "train", "dog")]
    assert [(i["key"], [m["member"] for m in i["members"]]) for i in d["changed"]["items"]] == [("s3", ["png"])]
    # names compared, not ids: 'ant' sorts first, so cat is id 1 and dog id 2 in v2; only s1 changed class
    [rel] = d["relabelled"]["items"]
    assert (rel["key"], rel["a"], rel["b"], rel["a_id"], rel["b_id"]) == ("s1", "dog", "cat", 1, 1)
    assert [(i["key"], i["a"], i["b"]) for i in d["moved"]["items"]] == [("s2", "train", "test")]
    assert d["counts"]["unchanged"] == 2  # s0, s4 (s4's class id changed, its class did not)
    card = d["card"]
    assert card["label_names"]["added"] == ["ant"] and card["label_names"]["removed"] == []
    assert card["label_names"]["id_changed"] == [{"name": "cat", "a": 0, "b": 1}, {"name": "dog", "a": 1, "b": 2}]
    assert card["num_classes"] == {"a": 2, "b": 3} and card["changed"] is True
    assert d["per_split"]["test"] == {"a": 2, "b": 3, "added": 0, "removed": 0, "changed": 1, "relabelled": 0,
                                      "moved_in": 1, "moved_out": 0, "unchanged": 1, "renamed": 0, "same": False}
    only_test = diff(v1, v2, splits=["test"])
    assert {k: only_test[k]["total"] for k in KINDS} == {"added": 0, "removed": 0, "changed": 1, "relabelled": 0,
                                                         "moved": 1}
    assert list(only_test["per_split"]) == ["test"]


def test_same_dataset_is_empty(manifests: tuple[Path, Path]) -> None:
    v1, _ = manifests
    for by in ("key", "source_key"):
        d = diff(v1, v1, by=by)
        assert d["same"] is True and all(d[k]["total"] == 0 for k in KINDS)
        assert d["counts"]["unchanged"] == 6 and d["card"]["fingerprint"]["same"] is True


def test_limit_caps_lists_not_totals(folders: tuple[Path, Path, dict]) -> None:
    v1, v2, _ = folders
    d = diff(v1, v2, limit=1)
    assert d["changed"]["total"] == 2 and len(d["changed"]["items"]) == 1 and d["changed"]["truncated"] is True
    assert len(diff(v1, v2, limit=None)["changed"]["items"]) == 2


def test_not_a_dataset_is_a_clear_error(tmp_path: Path, manifests: tuple[Path, Path]) -> None:
    v1, _ = manifests
    with pytest.raises(ShardError, match="does not exist; expected a dataset folder"):
        diff(v1, tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ShardError, match=r"plain: no dataset\.json"):
        diff(tmp_path / "plain", v1)
    with pytest.raises(ValueError, match="by= must be one of"):
        diff(v1, v1, by="label")
    with pytest.raises(ShardError, match=r"split 'tset': in neither .*their splits: test, train"):
        diff(v1, v1, splits=["tset"])  # a typo compares nothing: a CI gate would pass


def test_duplicate_source_key_names_it(tmp_path: Path, manifests: tuple[Path, Path]) -> None:
    v1, _ = manifests
    copy = tmp_path / "copy"
    shutil.copytree(v1, copy)
    table = idx.load_index(copy)
    sk = table.column("source_key").to_pylist()
    sk[1] = sk[0]
    idx.write_index(copy, table.set_column(table.column_names.index("source_key"), "source_key",
                                           __import__("pyarrow").array(sk)))
    with pytest.raises(ShardError, match=rf"source_key '{sk[0]}' names two samples.*--by key"):
        diff(v1, copy, by="source_key")


def test_cli_json_and_exit_codes(manifests: tuple[Path, Path], tmp_path: Path) -> None:
    v1, v2 = manifests
    r = _cli(v1, v2, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["exit_code"] == 0 and doc["failed_on"] == []
    assert doc["counts"] == {"added": 1, "removed": 1, "changed": 1, "relabelled": 1, "moved": 1, "unchanged": 2}
    r = _cli(v1, v2, "--fail-on", "added,removed", "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 1 and doc["failed_on"] == ["added", "removed"]
    assert "added (1 sample), removed (1 sample)" in doc["error"] and "--fail-on" in r.stderr
    # the CI gate of the brief: the test split changed (s2 moved into it, s3's image changed)
    assert _cli(v1, v2, "--split", "test", "--fail-on", "any").returncode == 1
    assert _cli(v1, v2, "--split", "test", "--fail-on", "added,removed,relabelled").returncode == 0
    assert _cli(v1, v1, "--fail-on", "any").returncode == 0
    r = _cli(v1, v2, "--fail-on", "deleted")
    assert r.returncode == 2 and "--fail-on" in r.stderr and "expected a comma-separated list" in r.stderr
    r = _cli(v1, v2, "--by", "label")
    assert r.returncode == 2 and "--by" in r.stderr
    r = _cli(v1, tmp_path / "nope", "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["ok"] is False and "does not exist" in r.stderr


def test_cli_human_summary(folders: tuple[Path, Path, dict]) -> None:
    v1, v2, _ = folders
    r = _cli(v1, v2, "--limit", "1")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "1 added, 1 removed, 2 changed, 1 relabelled; 9 unchanged" in out
    assert "relabelled: bird -> cat: 1" in out and "not listed:" in out and "1 more changed" in out
    assert "moved to another class folder" in out
    r = _cli(v1, v1)
    assert r.returncode == 0 and "no sample differs" in r.stdout and "fingerprint: the same" in r.stdout


def test_reads_only_the_index_and_card(manifests: tuple[Path, Path], tmp_path: Path) -> None:
    """No shard is read: the two versions' dataset.json and index.parquet alone give the same result."""
    v1, v2 = manifests
    bare = []
    for v in (v1, v2):
        (tmp_path / v.name).mkdir()
        for name in (idx.CARD, idx.INDEX):
            shutil.copyfile(v / name, tmp_path / v.name / name)
        bare.append(tmp_path / v.name)
    strip = lambda d: {k: v for k, v in d.items() if k not in ("a", "b")}  # noqa: E731 - the paths differ
    assert strip(diff(*bare)) == strip(diff(v1, v2))


def test_object_store(manifests: tuple[Path, Path], s3) -> None:  # noqa: ANN001
    """fsspec URLs (a real S3 protocol server, tests/conftest.py), only the card and index uploaded."""
    v1, v2 = manifests
    for v in (v1, v2):
        for name in (idx.CARD, idx.INDEX):
            s3.fs.put_file(str(v / name), f"{s3.url[5:]}/{v.name}/{name}")
    d = diff(f"{s3.url}/v1", f"{s3.url}/v2", storage_options=s3.options)
    local = diff(v1, v2)
    assert {k: d[k] for k in (*KINDS, "card", "per_split")} == {k: local[k] for k in (*KINDS, "card", "per_split")}
    assert d["a"]["path"] == f"{s3.url}/v1"


def test_cards_without_class_names(manifests: tuple[Path, Path], tmp_path: Path) -> None:
    """Numeric labels (a card without label_names) against named ones: the ids are the names, no class is
    said to be added or removed by it."""
    from mmdata.testing import make_sample_folder

    v1, _ = manifests
    shard(make_sample_folder(tmp_path / "raw", n=3), tmp_path / "ids", progress=False)
    card = diff(v1, tmp_path / "ids")["card"]["label_names"]
    assert card["b"] is None and card["added"] == card["removed"] == []


def test_another_maxcount_is_the_same_dataset(folders: tuple[Path, Path, dict], tmp_path: Path) -> None:
    """Keys come from file names, not from the packing: v1's raw folder sharded again with another --maxcount
    (same split options) has the same samples; only the fingerprint (the shards' bytes) differs."""
    v1, _, _ = folders
    shard(v1.parent / "raw", tmp_path / "again", split="train=0.5,test=0.5", maxcount=2, progress=False)
    for by in ("key", "source_key"):
        d = diff(v1, tmp_path / "again", by=by)
        assert d["same"] is True and d["counts"]["unchanged"] == 13
        assert d["card"]["fingerprint"]["same"] is False and d["card"]["changed"] is False


def test_a_failed_gate_on_urls_names_them_without_their_password(manifests: tuple[Path, Path],
                                                                   serve_folder) -> None:  # noqa: ANN001
    """QA26 review: the --fail-on error line (stderr and --json's error) was built from the arguments as given,
    a URL's password included; it now names the result's masked paths."""
    v1, v2 = manifests
    assert v1.parent == v2.parent
    base = serve_folder(v1.parent).replace("http://", "http://me:secret@")
    p = subprocess.run([sys.executable, "-m", "mmdata.cli.main", "diff", f"{base}/{v1.name}", f"{base}/{v2.name}",
                        "--fail-on", "any", "--json"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stderr
    assert "secret" not in p.stdout + p.stderr and "***@" in json.loads(p.stdout)["error"]
