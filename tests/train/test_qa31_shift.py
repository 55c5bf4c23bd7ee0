"""QA31 shift (evaluating a trained run on other, shifted data): D3 labels that differ from --labels only in
case are named so; D4 ``mmdata match`` on another dataset keeps the run's own figure; D5 ``check_classes`` says
"another order" / "only in case"; D6 ``mmdata diff`` pairs names spelt in another case; D7 ``TrainedModel``
gives the loader's JPEG decode hint; D8 predictions.parquet's schema metadata names the classes; D9 a
fractional or str sample rate is refused."""

from __future__ import annotations

import csv
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

import mmdata
from mmdata.augment.contract import InputError
from mmdata.errors import MMDataError
from mmdata.shards import sources
from mmdata.train import load_model, train
from mmdata.train.matching import check_classes, default_figure, figure_name, match

FAST = {"epochs": 1, "seed": 0, "threads": 1, "eval_robustness": False, "batch_size": 16}


@pytest.fixture(scope="module")
def run(avdigits4: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("qa31shift") / "run"
    train(avdigits4, out=out, **FAST)
    return out


def _raw_copy(data: Path, root: Path, label: object = str) -> tuple[Path, list[str]]:
    """avdigits' test split as files + a manifest (image, audio, label: the class name through ``label``)."""
    names = json.loads((data / "dataset.json").read_text())["label_names"]
    members: dict[str, dict[str, bytes]] = {}
    for tar in sorted(data.glob("test-*.tar")):
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                k, ext = m.name.split(".", 1)
                members.setdefault(k, {})[ext] = tf.extractfile(m).read()  # type: ignore[union-attr]
    root.mkdir(parents=True)
    with open(root / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "audio", "label"])
        for k, d in sorted(members.items()):
            (root / f"{k}.png").write_bytes(d["png"])
            (root / f"{k}.flac").write_bytes(d["flac"])
            w.writerow([f"{k}.png", f"{k}.flac", label(names[int(d["cls"])])])  # type: ignore[operator]
    return root / "m.csv", names


def test_d3_labels_that_differ_only_in_case_say_so(avdigits4: Path, tmp_path: Path) -> None:
    manifest, names = _raw_copy(avdigits4, tmp_path / "raw", str.upper)
    with pytest.warns(UserWarning) as rec:
        mmdata.shard(manifest, tmp_path / "ds", label_names=names, progress=False)
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    reasons = [e["reason"] for e in card["skipped"]]
    assert reasons and all("differs only in case; labels are matched exactly" in r for r in reasons)
    assert any("got 'ZERO' (the class 'zero' differs only in case" in r for r in reasons)
    said = " ".join(str(w.message) for w in rec)
    assert "none of its" in said and "every sample is written without a label" in said


def test_d3_the_every_label_refused_line_names_the_label_column_given(avdigits4: Path, tmp_path: Path) -> None:
    """The last read of the change: with ``--column label=category`` the line said ``column 'label'``, which the
    manifest does not have."""
    manifest, names = _raw_copy(avdigits4, tmp_path / "raw", str.upper)
    manifest.write_text(manifest.read_text().replace("image,audio,label", "image,audio,category", 1))
    with pytest.warns(UserWarning) as rec:
        mmdata.shard(manifest, tmp_path / "ds", label_names=names, columns={"label": "category"}, progress=False)
    said = [str(w.message) for w in rec if "none of its" in str(w.message)]
    assert len(said) == 1 and "column 'category': none of its" in said[0], said


def test_d4_match_on_other_data_keeps_the_runs_own_figure(run: Path, avdigits4: Path, tmp_path: Path) -> None:
    manifest, names = _raw_copy(avdigits4, tmp_path / "raw")
    other = tmp_path / "shifted"
    mmdata.shard(manifest, other, label_names=names, split="test=1.0", progress=False)
    own = match(avdigits4, run)
    assert Path(own["figure"]) == run / "match.png"
    before = (run / "match.png").read_bytes()
    r = match(other, run)
    assert Path(r["figure"]) == run / "match-data-shifted.png" and (run / "match.png").read_bytes() == before
    metrics = json.loads((run / "metrics.json").read_text())
    assert figure_name("match", "val", other, metrics) == "match-data-shifted-val.png"
    assert figure_name("match", "val", avdigits4, metrics) == "match-val.png"
    assert default_figure("alignment", "test", other, run) == run / "alignment-data-shifted.png"


def test_review_f6_a_dataset_folder_named_as_a_split_does_not_take_the_splits_figure(run: Path, tmp_path: Path) -> None:
    """QA31 shift review F6: other data kept as ``shifted/val`` or ``test`` gave ``match-val.png`` /
    ``match-test.png``, the names of the run's own split figures (overwritten); the data's name is marked."""
    metrics = json.loads((run / "metrics.json").read_text())
    own = {figure_name("match", s, None, metrics) for s in ("test", "val", "train")}
    for folder in ("val", "test"):
        data = _two(tmp_path / folder, ["cat", "dog"]).rename(tmp_path / folder / folder)
        for split in ("test", "val"):
            assert figure_name("match", split, data, metrics) not in own
    assert figure_name("match", "test", tmp_path / "val" / "val", metrics) == "match-data-val.png"


def _two(tmp_path: Path, names: list[str]) -> Path:
    for i, n in enumerate(names):
        (tmp_path / "raw" / n).mkdir(parents=True)
        Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(tmp_path / "raw" / n / f"{i}.png")
    mmdata.shard(tmp_path / "raw", tmp_path / "ds", progress=False)
    return tmp_path / "ds"


def test_d5_check_classes_names_a_reordering_and_a_case_difference(tmp_path: Path) -> None:
    data = _two(tmp_path / "a", ["cat", "dog"])  # sharded as cat=0, dog=1
    with pytest.raises(MMDataError, match=r"same 2 class names as the model in another order.*re-shard .*--labels.*; "
                                          r"to score the run on it as it is: mmdata evaluate run "):  # QA31 shift review F7
        check_classes({"classes": {"num_classes": 2, "names": ["dog", "cat"]}}, data, "run")
    upper = _two(tmp_path / "b", ["CAT", "DOG"])
    with pytest.raises(MMDataError, match=r"differ only in case \('cat' vs 'CAT', 'dog' vs 'DOG'\)"):
        check_classes({"classes": {"num_classes": 2, "names": ["cat", "dog"]}}, upper, "run")
    with pytest.raises(MMDataError, match=r"differ from those of .*class 0: 'ant' vs 'cat'"):  # other names: as before
        check_classes({"classes": {"num_classes": 2, "names": ["ant", "bee"]}}, data, "run")
    check_classes({"classes": {"num_classes": 2, "names": ["cat", "dog"]}}, data, "run")


def test_d6_diff_pairs_names_spelt_in_another_case(tmp_path: Path) -> None:
    a = _two(tmp_path / "a", ["cat", "dog"])
    b = _two(tmp_path / "b", ["DOG", "Cat", "eel"])  # Cat=0, DOG=1, eel=2 (case-sensitive sort)
    from mmdata.shards.diff import diff

    names = diff(a, b)["card"]["label_names"]
    assert names["renamed"] == [] and names["removed"] == [] and names["added"] == ["eel"]
    assert [(r["a"], r["b"]) for r in names["case_only"]] == [("cat", "Cat"), ("dog", "DOG")]
    assert names["id_changed"] == []  # cat 0 -> Cat 0, dog 1 -> DOG 1


def test_d7_the_loaders_decode_hint_reaches_open_dataset(run: Path) -> None:
    tm = load_model(run)
    assert tm.image_decode_hint == mmdata.load_recipe({"normalize": tm.normalize}).image_decode_hint()
    assert "image_max_size=tm.image_decode_hint" in (tm.predict.__doc__ or "")


def test_d8_predictions_name_their_classes_in_the_schema(run: Path) -> None:
    meta = json.loads(pq.read_schema(run / "predictions.parquet").metadata[b"mmdata"])
    names = json.loads((run / "metrics.json").read_text())["classes"]["names"]
    assert meta == {"target": {"kind": "classes", "key": None}, "names": names}
    assert pq.read_table(run / "predictions.parquet").column_names[:4] == ["key", "split", "label", "pred"]


def test_d9_a_rate_that_is_not_a_whole_number_is_refused(run: Path) -> None:
    tm = load_model(run)
    wave = np.zeros((1, 4000), dtype=np.float32)
    wave[0, ::7] = 0.1
    base = tm.predict([{"audio": (wave, 8000)}])[0]["probs"]
    assert tm.predict([{"audio": (wave, 8000.0)}])[0]["probs"] == base
    assert tm.predict([{"audio": (torch.from_numpy(wave), np.int32(8000))}])[0]["probs"] == base
    with pytest.raises(InputError, match=r"sample 'r1', field 'audio': sample rate 8000.9 is not a whole number"):
        tm.predict([{"key": "r1", "audio": (wave, 8000.9)}])
    with pytest.raises(InputError, match=r"sample rate '8000' is a str, not a number"):
        tm.predict([{"audio": (wave, "8000")}])


def test_review_f1_the_case_hint_is_computed_once_per_distinct_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused label costs O(1): the near-name map is built once per names list, each distinct label's hint once
    (was: an O(classes) cache check per refused cell, and every cell's hint again for the summary warning)."""
    names = [f"class_{i:03d}" for i in range(300)]
    with open(tmp_path / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(400):
            w.writerow([f"t{i}", ["CLASS_000", "CLASS_001", "nope"][i % 3]])
    calls: list[str] = []
    near_name = sources._near_name
    monkeypatch.setattr(sources, "_near_name", lambda s: calls.append(s) or near_name(s))
    with pytest.warns(UserWarning) as rec:
        mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", label_names=names, progress=False)
    assert len(calls) <= len(names) + 3 * 2, len(calls)  # each class once, each distinct label (+ its pair) once
    said = " ".join(str(w.message) for w in rec)
    assert "none of its 400 labels names a class" in said
    assert "267 labels differ from a class name only in spelling: 'CLASS_000' (the class 'class_000'" in said
