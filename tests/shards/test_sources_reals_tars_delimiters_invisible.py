"""QA round 33 (sources): a label column of real numbers alone (a regression target) is warned of; class names
with invisible characters at their ends are warned of; a semicolon- or tab-separated .csv is read with a warning;
mmdata's own tars re-sharded keep their class names (remapped by name across datasets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import mmdata
from mmdata.shards.sources import discover


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for i in range(12):
        Image.new("RGB", (4, 4), (i * 20, 0, 0)).save(tmp_path / f"{i}.png")
    return tmp_path


def test_a_label_column_of_measurements_is_warned_as_a_regression_target(root: Path) -> None:
    values = ["3.412", "7.9", "10.192", "5.541", "6.25", "8.01", "3.412", "9.75"]
    (root / "m.csv").write_text("image,label\n" + "".join(f"{i}.png,{v}\n" for i, v in enumerate(values)))
    found = discover(root / "m.csv")
    assert len(found.label_names) == 7  # kept as class names, as before: said, not changed
    warning = next(w for w in found.warnings if "regression target" in w)
    assert warning.startswith("manifest m.csv, column 'label' holds only real numbers ('3.412', '5.541', '6.25', ...")
    assert "7 distinct values in 8 rows, 6 of them met once" in warning
    assert "rename the column (e.g. to 'score') and shard with --meta score, then train with mmdata train --target score" in warning
    # read from a column named otherwise: the remedy names it
    (root / "r.csv").write_text("image,y\n" + "".join(f"{i}.png,{v}\n" for i, v in enumerate(values)))
    warning = next(w for w in discover(root / "r.csv", columns={"label": "y"}).warnings if "regression target" in w)
    assert "column 'y' holds only real numbers" in warning and "shard without --column label=y and with --meta y" in warning


def test_a_few_or_repeated_real_number_class_names_stay_quiet(root: Path) -> None:
    (root / "n.csv").write_text("image,label\n0.png,0.5\n1.png,1.5\n2.png,2.5\n")  # doses: few names
    assert not any("regression" in w for w in discover(root / "n.csv").warnings)
    rows = "".join(f"{i}.png,{[0.5, 1.5, 2.5, 3.5, 4.5][i % 5]}\n" for i in range(12))  # each value a class of many
    (root / "k.csv").write_text("image,label\n" + rows)
    assert not any("regression" in w for w in discover(root / "k.csv").warnings)


def _dataset(tmp_path: Path, name: str, classes: dict[str, int], n: int = 2) -> Path:
    """An mmdata dataset folder whose class folders are ``classes`` (name -> samples)."""
    raw = tmp_path / f"raw_{name}"
    for c, k in classes.items():
        (raw / c).mkdir(parents=True)
        for i in range(k):
            colour = (sum(map(ord, name)) % 256, sum(map(ord, c)) % 256, i * 40)  # no two images alike
            Image.new("RGB", (4, 4), colour).save(raw / c / f"{name}_{i}.png")
    mmdata.shard(raw, tmp_path / name, progress=False)
    return tmp_path / name


def _labels(ds: Path) -> dict[str, str]:
    import pandas as pd

    names = json.loads((ds / "dataset.json").read_text())["label_names"]
    return {k: names[int(v)] for k, v in pd.read_parquet(ds / "index.parquet")[["key", "label"]].values}


def test_one_dataset_resharded_from_its_tars_keeps_its_class_names(tmp_path: Path) -> None:
    a = _dataset(tmp_path, "dsA", {"cat": 2, "dog": 2})
    mmdata.shard(str(a / "*.tar"), tmp_path / "again", progress=False)
    card = json.loads((tmp_path / "again" / "dataset.json").read_text())
    assert card["label_names"] == ["cat", "dog"]  # was None: the ids alone
    assert card["label_names_from"] == str(a / "dataset.json")
    assert _labels(tmp_path / "again") == _labels(a) and len(_labels(a)) == 4


def test_datasets_with_different_names_are_merged_by_name_with_a_warning(tmp_path: Path) -> None:
    _dataset(tmp_path, "dsA", {"cat": 2, "dog": 2})
    _dataset(tmp_path, "dsC", {"Dog": 1, "bird": 1, "cat": 1})  # ids 0=Dog, 1=bird, 2=cat
    with pytest.warns(UserWarning) as got:
        mmdata.shard(str(tmp_path / "ds[AC]" / "*.tar"), tmp_path / "merged", progress=False)
    card = json.loads((tmp_path / "merged" / "dataset.json").read_text())
    assert card["label_names"] == ["cat", "dog", "Dog", "bird"]  # first-seen order: dsA's, then dsC's new ones
    labels = _labels(tmp_path / "merged")  # key 'cat_dsC_0_<hash>': the sample of the class folder cat/
    assert len(labels) == 7 and all(v == k.split("_ds")[0] for k, v in labels.items())  # dsC's 'cat' was dsA's 'dog'
    warning = next(str(w.message) for w in got if "different class-name lists" in str(w.message))
    assert ("2 datasets with 2 different class-name lists: dsA (2: 'cat', 'dog'); dsC (3: 'Dog', 'bird', 'cat')"
            in warning)
    assert "first-seen order" in warning and "'Dog', 'bird' from dsC" in warning
    assert "('dog' and 'Dog')" in warning and "--labels names.txt" in warning


def test_a_labelled_dataset_without_names_beside_named_ones_is_refused(tmp_path: Path) -> None:
    _dataset(tmp_path, "dsA", {"cat": 2, "dog": 2})
    b = _dataset(tmp_path, "dsB", {"x": 1, "y": 1})
    card = json.loads((b / "dataset.json").read_text())
    del card["label_names"]
    (b / "dataset.json").write_text(json.dumps(card))
    with pytest.raises(mmdata.MMDataError, match=r"its folder has no class names .* pass --labels names.txt"):
        mmdata.shard(str(tmp_path / "ds[AB]" / "*.tar"), tmp_path / "merged", progress=False)


def test_a_semicolon_separated_csv_is_read_with_a_warning(root: Path) -> None:
    # a European Excel export: BOM, CRLF, ';' and decimal commas
    (root / "m.csv").write_bytes("\ufeffimage;label;age\r\n0.png;cat;30,5\r\n1.png;dog;41\r\n".encode())
    found = discover(root / "m.csv", meta=["age"])
    assert found.label_names == ["cat", "dog"] and [r.label for r in found.records] == [0, 1]
    warning = next(w for w in found.warnings if "-separated" in w)
    assert "is semicolon-separated (its header and every line split into the same 3 columns by ';'" in warning
    assert "decimal commas, such as '30,5', are read as text" in warning


def test_a_tab_separated_csv_is_read_with_a_warning(root: Path) -> None:
    (root / "t.csv").write_text("image\tlabel\n0.png\tcat\n1.png\tdog\n")
    found = discover(root / "t.csv")
    assert [r.label for r in found.records] == [0, 1]
    assert any("is tab-separated" in w and "or as .tsv" in w for w in found.warnings)


def test_an_ambiguous_semicolon_csv_is_still_refused(root: Path) -> None:
    (root / "a.csv").write_text("image;label\n0.png;cat;x\n1.png;dog\n")  # a line of 3 cells by ';'
    with pytest.raises(mmdata.MMDataError, match="looks semicolon-separated"):
        discover(root / "a.csv")
    (root / "b.csv").write_text("image;label\ttext\n0.png;cat\tx\n")  # both ';' and tab split every line alike
    with pytest.raises(mmdata.MMDataError, match="looks semicolon-separated"):
        discover(root / "b.csv")


def test_invisible_characters_at_class_name_ends_are_warned_in_a_labels_file(root: Path) -> None:
    for i in range(4):
        (root / f"{i}.cls").write_text(str(i % 2))
    (root / "names.txt").write_bytes("\ufeff猫\r\nكلب\u200f\r\n".encode())  # the BOM is the file's, the RLM the name's
    for i in range(4, 12):
        (root / f"{i}.png").unlink()
    found = discover(root, label_names=mmdata.shards.sources.read_label_names(root / "names.txt"),
                     label_names_from="names.txt")
    assert found.label_names == ["猫", "كلب\u200f"]  # kept as written: the ids are the file's
    warning = next(w for w in found.warnings if "invisible characters" in w)
    assert warning.startswith("1 class name from names.txt starts or ends with invisible characters ('كلب\\u200f' "
                              "(U+200F RIGHT-TO-LEFT MARK))")


def test_invisible_characters_in_class_folder_names_and_vs16_twins(tmp_path: Path) -> None:
    for c in ("猫", "猫\ufe0f", "\u2764\ufe0f", "\u202bכלב\u202c"):
        (tmp_path / c).mkdir()
        Image.new("RGB", (4, 4), (len(c) * 40, ord(c[0]) % 256, 0)).save(tmp_path / c / "a.png")
    found = discover(tmp_path)
    warning = next(w for w in found.warnings if "start or end with invisible" in w)
    assert warning.startswith("2 class names from class folders start or end with invisible characters")
    assert "U+FE0F VARIATION SELECTOR-16" in warning and "U+202B RIGHT-TO-LEFT EMBEDDING" in warning
    assert "'\u2764\ufe0f'" not in warning  # an emoji's own spelling: not warned
    twins = next(w for w in found.warnings if "differ only in" in w)  # 猫 and 猫 + VS16 print alike
    assert "'猫' (class " in twins and "'猫\ufe0f' (class " in twins and "invisible characters" in twins


def test_vs16_twins_in_a_manifest_are_warned_as_spelling_twins(root: Path) -> None:
    (root / "m.csv").write_text("image,label\n0.png,猫\n1.png,猫\ufe0f\n2.png,猫\n")
    found = discover(root / "m.csv")
    assert any("classes '猫' (2) and '猫\ufe0f' (1) differ only in invisible characters" in w for w in found.warnings)
    assert any("U+FE0F VARIATION SELECTOR-16" in w for w in found.warnings)


def test_inspect_shows_a_dash_for_a_class_without_audio(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmdata.cli.main import app
    from mmdata.testing import audio_bytes

    rows = []
    for i, label in enumerate(["cat", "cat", "dog", "dog", "cats"]):
        Image.new("RGB", (4, 4), (i * 40, 0, 0)).save(tmp_path / f"{i}.png")
        audio = ""
        if label != "cats":  # the class 'cats' has no audio
            (tmp_path / f"{i}.wav").write_bytes(audio_bytes(i, seconds=0.5, sample_rate=8000, fmt="wav"))
            audio = f"{i}.wav"
        rows.append(f"{i}.png,{audio},{label}\n")
    (tmp_path / "m.csv").write_text("image,audio,label\n" + "".join(rows))
    mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", progress=False)
    rep = mmdata.inspect(tmp_path / "ds")
    assert rep["audio_duration"]["per_class"]["train"]["cats"] == 0  # the JSON's contract: 0 seconds
    assert rep["audio_duration"]["per_class_samples"]["train"] == {"cat": 2, "cats": 0, "dog": 2}
    out = CliRunner().invoke(app, ["inspect", str(tmp_path / "ds")])
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if line.startswith("│ cats "))
    assert "-" in row and "0:00:00" not in row, row  # was 0:00:00
    row = next(line for line in out.output.splitlines() if line.startswith("│ cat "))
    assert "0:00:01.00" in row, row
