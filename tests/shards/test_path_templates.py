"""``--path FIELD=TEMPLATE`` (``paths=``): a manifest whose rows name files by parts, as UrbanSound8K's
``metadata/UrbanSound8K.csv`` names ``audio/fold{fold}/{slice_file_name}``. Real WAV files in a tmp tree, through
the library and the CLI; templates and values that leave the folder are refused, naming the row."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import mmdata
from mmdata.errors import SourceError
from mmdata.shards import index as idx
from mmdata.shards.sources import discover, fill_template, path_templates

#: (fold, classID, class) per clip, as UrbanSound8K's CSV lists them (not sorted by fold)
CLIPS = [(1, 3, "dog_bark"), (2, 8, "siren"), (1, 8, "siren"), (2, 3, "dog_bark"), (3, 3, "dog_bark")]
TEMPLATE = "audio/fold{fold}/{slice_file_name}"


def _wav(path: Path, i: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(800) / 8000
    sf.write(path, (0.2 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.float32), 8000, subtype="PCM_16")
    return path


def _urbansound(root: Path, extra_rows: tuple[str, ...] = ()) -> Path:
    """An UrbanSound8K-shaped tree: ``audio/fold{N}/<bare name>.wav`` and ``metadata/UrbanSound8K.csv``."""
    lines = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for i, (fold, cid, cls) in enumerate(CLIPS):
        name = f"10{i}032-{cid}-0-{i}.wav"
        _wav(root / "audio" / f"fold{fold}" / name, i)
        lines.append(f"{name},10{i}032,0.0,0.1,1,{fold},{cid},{cls}")
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    (root / "metadata" / "UrbanSound8K.csv").write_text("\n".join([*lines, *extra_rows]) + "\n")
    return root / "metadata" / "UrbanSound8K.csv"


def _cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from mmdata.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    got = capsys.readouterr()
    return int(exc.value.code or 0), got.out + got.err


def _check_dataset(ds: Path, us8k: Path) -> None:
    """Every clip once, its class name as label, its fold as split, its bytes those of the file."""
    card = idx.load_card(ds)
    assert card["label_names"] == ["dog_bark", "siren"]
    rows = idx.load_index(ds).to_pylist()
    assert len(rows) == len(CLIPS)
    got = {r["source_key"].rsplit("/", 1)[-1]: (r["split"], card["label_names"][r["label"]]) for r in rows}
    assert got == {f"10{i}032-{cid}-0-{i}": (str(fold), cls) for i, (fold, cid, cls) in enumerate(CLIPS)}
    source_keys = {r["key"]: r["source_key"] for r in rows}
    seen = 0
    for s in mmdata.open_dataset(ds, split=["1", "2", "3"]):
        i = int(source_keys[s.key][-1])
        fold, cid, _ = CLIPS[i]
        want, _ = sf.read(us8k / "audio" / f"fold{fold}" / f"10{i}032-{cid}-0-{i}.wav", dtype="float32",
                          always_2d=True)
        assert np.array_equal(s["audio"].numpy(), want.T)
        assert s["json"]["classID"] == cid  # a CSV column of ints reads back as ints
        seen += 1
    assert seen == len(CLIPS)
    assert mmdata.verify(ds)["ok"]


def test_urbansound8k_without_a_template_finds_nothing(tmp_path: Path) -> None:
    """The bare names are in no single folder, so no ``--root`` reads them all: the error says which
    ``--path`` does (it named ``--root .../audio/fold1`` before, which reads one fold and drops the rest)."""
    us8k = tmp_path / "UrbanSound8K"
    manifest = _urbansound(us8k)
    for root, want in ((None, f"--root {us8k} --path 'audio={TEMPLATE}' instead of --column audio=slice_file_name"),
                       (us8k, f"--path 'audio={TEMPLATE}' instead of --column audio=slice_file_name"),
                       (us8k / "audio", "--path 'audio=fold{fold}/{slice_file_name}' instead of --column")):
        with pytest.raises(SourceError, match="no samples found.*file not found") as exc:
            mmdata.shard(manifest, tmp_path / "ds", root=root, columns={"audio": "slice_file_name",
                                                                         "label": "class"}, progress=False)
        assert want in str(exc.value) and "fold1:" not in str(exc.value) and "--root " + str(us8k / "audio") \
            not in str(exc.value)
    with pytest.raises(SourceError) as exc:  # the column read under its own name: the field of its files
        mmdata.shard(manifest, tmp_path / "ds", columns={"label": "class"}, meta=["fold"], progress=False)
    assert f"--path 'audio={TEMPLATE}' (root=" in str(exc.value)
    assert not (tmp_path / "ds").exists()


def test_the_hinted_command_shards_every_fold(tmp_path: Path) -> None:
    us8k = tmp_path / "UrbanSound8K"
    with pytest.raises(SourceError) as exc:
        mmdata.shard(_urbansound(us8k), tmp_path / "ds", columns={"audio": "slice_file_name", "label": "class"},
                     progress=False)
    hinted = re.search(r"\(root=(.+?), paths=(\{.+?\})\)", str(exc.value))
    assert hinted is not None
    root, paths = ast.literal_eval(hinted[1]), ast.literal_eval(hinted[2])
    rep = mmdata.shard(us8k / "metadata" / "UrbanSound8K.csv", tmp_path / "ds", root=root, paths=paths,
                       columns={"label": "class", "split": "fold"}, meta=["classID"], progress=False)
    assert rep["samples"] == len(CLIPS) and rep["skipped"] == []
    _check_dataset(tmp_path / "ds", us8k)


def test_files_spread_over_folders_no_column_names_get_no_wrong_root(tmp_path: Path) -> None:
    """Files in two folders that no column names: no --root (it would read one folder), no template."""
    _wav(tmp_path / "data" / "a" / "x.wav", 0)
    _wav(tmp_path / "data" / "b" / "y.wav", 1)
    (tmp_path / "data" / "meta").mkdir()
    (tmp_path / "data" / "meta" / "m.csv").write_text("audio,label\nx.wav,0\ny.wav,1\n")
    with pytest.raises(SourceError) as exc:
        mmdata.shard(tmp_path / "data" / "meta" / "m.csv", tmp_path / "ds", progress=False)
    msg = str(exc.value)
    assert "'x.wav' is in " + str(tmp_path / "data" / "a") + ", but other rows' files are not (e.g. 'y.wav')" in msg
    assert "--path FIELD=TEMPLATE" in msg and "pass --root" not in msg


def test_urbansound8k_through_the_library(tmp_path: Path) -> None:
    us8k = tmp_path / "UrbanSound8K"
    manifest = _urbansound(us8k)
    rep = mmdata.shard(manifest, tmp_path / "ds", root=us8k, paths={"audio": TEMPLATE},
                       columns={"label": "class", "split": "fold"}, meta=["classID", "fsID", "salience"],
                       progress=False)
    assert rep["samples"] == len(CLIPS) and rep["skipped"] == [] and rep["splits"] == {"1": 2, "2": 2, "3": 1}
    assert not any("slice_file_name" in w for w in rep["warnings"])  # read by the template, not as files
    _check_dataset(tmp_path / "ds", us8k)
    card = idx.load_card(tmp_path / "ds")
    assert card["source_options"]["paths"] == {"audio": TEMPLATE}
    assert f"--path 'audio={TEMPLATE}'" in card["command"] and "--root UrbanSound8K" in card["command"]


def test_urbansound8k_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    us8k = tmp_path / "UrbanSound8K"
    manifest = _urbansound(us8k)
    code, out = _cli("shard", str(manifest), str(tmp_path / "ds"), "--root", str(us8k / "audio"),
                     "--path", "audio=fold{fold}/{slice_file_name}", "--column", "label=class",
                     "--column", "split=fold", "--meta", "classID,fsID", capsys=capsys)
    assert code == 0, out
    assert "wrote 5 samples" in out and "1: 2, 2: 2, 3: 1" in out
    _check_dataset(tmp_path / "ds", us8k)
    keys = sorted(r["source_key"] for r in idx.load_index(tmp_path / "ds").to_pylist())
    assert keys[0] == "fold1/100032-3-0-0"  # named by the path under --root, as a folder source names samples
    code, out = _cli("verify", str(tmp_path / "ds"), capsys=capsys)
    assert code == 0 and "ok" in out


def test_the_fold_column_can_also_be_metadata(tmp_path: Path) -> None:
    """A column a template reads may still be a field or metadata (here: --meta fold, the split drawn)."""
    us8k = tmp_path / "UrbanSound8K"
    rep = mmdata.shard(_urbansound(us8k), tmp_path / "ds", root=us8k, paths={"audio": TEMPLATE},
                       columns={"label": "class"}, meta=["fold"], progress=False)
    assert rep["samples"] == len(CLIPS)
    folds = sorted(s["json"]["fold"] for s in mmdata.open_dataset(tmp_path / "ds"))
    assert folds == sorted(c[0] for c in CLIPS)


@pytest.mark.parametrize("name", ["../../../secret.wav", "/etc/secret.wav", "fold1/../../../secret.wav",
                                  "..\\..\\secret.wav", "C:/secret.wav", "file:///secret.wav"])
def test_a_value_leaving_the_folder_is_refused_naming_the_row(tmp_path: Path, name: str) -> None:
    us8k = tmp_path / "UrbanSound8K"
    _wav(tmp_path / "secret.wav", 9)
    manifest = _urbansound(us8k, extra_rows=(f"{name},1,0,0.1,1,1,3,dog_bark",))
    rep = mmdata.shard(manifest, tmp_path / "ds", root=us8k, paths={"audio": TEMPLATE},
                       columns={"label": "class", "split": "fold"}, progress=False)
    assert rep["samples"] == len(CLIPS)
    member = [s for s in rep["skipped"] if s["what"] == "member"]
    assert len(member) == 1 and "UrbanSound8K.csv row 6" in member[0]["reason"]
    assert "'slice_file_name'" in member[0]["reason"] and "refused" in member[0]["reason"]
    with pytest.raises(SourceError, match=r"UrbanSound8K.csv row 6, --path audio=.*slice_file_name.*refused"):
        mmdata.shard(manifest, tmp_path / "ds2", root=us8k, paths={"audio": TEMPLATE}, on_error="raise",
                     columns={"label": "class", "split": "fold"}, progress=False)
    assert not (tmp_path / "ds2").exists()


@pytest.mark.parametrize("template", ["../audio/fold{fold}/{slice_file_name}", "/data/{slice_file_name}",
                                      "audio/../../{slice_file_name}", "C:\\audio\\{slice_file_name}",
                                      "s3://bucket/{slice_file_name}", "{fold}/..\\{slice_file_name}"])
def test_a_template_leaving_the_folder_is_refused(tmp_path: Path, template: str) -> None:
    us8k = tmp_path / "UrbanSound8K"
    with pytest.raises(SourceError, match=r"--path audio=.*relative path without '\.\.' parts.*--root"):
        mmdata.shard(_urbansound(us8k), tmp_path / "ds", paths={"audio": template}, progress=False)
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(("template", "match"), [
    ("audio/fold{fold:02d}/{slice_file_name}", "no format spec"),
    ("audio/fold{fold!r}/{slice_file_name}", "no format spec"),
    ("audio/{}/x.wav", "not a column name"),
    ("audio/{fold/x.wav", "placeholder is {column}"),
    ("audio/all.wav", "names no column"),
    ("audio/fold{folds}/{slice_file_name}", r"no column 'folds' \(columns: \["),
])
def test_template_mistakes_are_one_clear_error(tmp_path: Path, template: str, match: str) -> None:
    us8k = tmp_path / "UrbanSound8K"
    with pytest.raises(SourceError, match=match):
        mmdata.shard(_urbansound(us8k), tmp_path / "ds", root=us8k, paths={"audio": template}, progress=False)


def test_a_field_given_twice_is_refused(tmp_path: Path) -> None:
    us8k = tmp_path / "UrbanSound8K"
    manifest = _urbansound(us8k)
    with pytest.raises(SourceError, match="both give the field 'audio'"):
        mmdata.shard(manifest, tmp_path / "ds", root=us8k, paths={"audio": TEMPLATE},
                     columns={"audio": "slice_file_name"}, progress=False)
    with pytest.raises(SourceError, match="'label' is not a file"):
        mmdata.shard(manifest, tmp_path / "ds", root=us8k, paths={"label": TEMPLATE}, progress=False)
    (tmp_path / "m.csv").write_text("audio,name\nx.wav,a.wav\n")
    with pytest.raises(SourceError, match="also has a column 'audio'"):
        mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", paths={"audio": "clips/{name}"}, progress=False)


def test_a_column_of_the_fields_name_may_fill_its_template(tmp_path: Path) -> None:
    """``--path audio=clips/{audio}``: the column ``audio`` holds bare names, the template adds the folder."""
    _wav(tmp_path / "clips" / "a.wav", 0)
    _wav(tmp_path / "clips" / "b.wav", 1)
    (tmp_path / "m.jsonl").write_text('{"audio": "a.wav", "label": 0}\n{"audio": "b.wav", "label": 1}\n'
                                      '{"audio": null, "label": 1, "text": "no clip"}\n')
    rep = mmdata.shard(tmp_path / "m.jsonl", tmp_path / "ds", paths={"audio": "clips/{audio}"}, progress=False)
    assert rep["samples"] == 3 and rep["skipped"] == []  # a row without the clip: absent, as a blank path cell
    assert sorted(r["source_key"] for r in idx.load_index(tmp_path / "ds").to_pylist()) == ["clips/a", "clips/b",
                                                                                             "row00000002"]


def test_a_blank_cell_the_template_needs_is_reported(tmp_path: Path) -> None:
    us8k = tmp_path / "UrbanSound8K"
    manifest = _urbansound(us8k, extra_rows=("999-3-0-9.wav,1,0,0.1,1,,3,dog_bark",))
    rep = mmdata.shard(manifest, tmp_path / "ds", root=us8k, paths={"audio": TEMPLATE}, columns={"label": "class"},
                       meta=["fold"], progress=False)
    member = [s for s in rep["skipped"] if s["what"] == "member"]
    assert member[0]["source"] == "audio/fold{fold}/999-3-0-9.wav"
    assert "row 6" in member[0]["reason"] and "column 'fold' is empty" in member[0]["reason"]


def test_parquet_whole_floats_fill_as_ints(tmp_path: Path) -> None:
    """A Parquet fold column holding a null reads as floats: 1.0 fills ``fold{fold}`` as ``fold1``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _wav(tmp_path / "audio" / "fold1" / "a.wav", 0)
    _wav(tmp_path / "audio" / "fold2" / "b.wav", 1)
    pq.write_table(pa.table({"name": ["a.wav", "b.wav", "c.wav"], "fold": [1.0, 2.0, None]}), tmp_path / "m.parquet")
    rep = mmdata.shard(tmp_path / "m.parquet", tmp_path / "ds", paths={"audio": "audio/fold{fold}/{name}"},
                       progress=False)
    assert rep["samples"] == 2
    assert "column 'fold' is empty" in rep["skipped"][0]["reason"]


def test_path_is_for_local_manifests_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    us8k = tmp_path / "UrbanSound8K"
    _urbansound(us8k)
    with pytest.raises(SourceError, match="--path .*this source is a folder"):
        discover(us8k / "audio", paths={"audio": TEMPLATE})
    with pytest.raises(SourceError, match="--path .*a manifest at a URL"):  # refused before anything is fetched
        discover("s3://bucket/UrbanSound8K/metadata/UrbanSound8K.csv", paths={"audio": TEMPLATE})
    code, out = _cli("shard", str(us8k / "audio"), str(tmp_path / "ds"), "--path", "audio", capsys=capsys)
    assert code == 2 and "--path expects FIELD=TEMPLATE" in out
    code, out = _cli("shard", str(us8k / "metadata" / "UrbanSound8K.csv"), str(tmp_path / "ds"), "--path",
                     f"audio={TEMPLATE}", "--path", "audio=x/{fold}", capsys=capsys)
    assert code == 2 and "--path audio= is given twice" in out


def test_fill_template_is_pure() -> None:
    tpl = path_templates({"audio": TEMPLATE}, "m")["audio"]
    row = {"fold": "3", "slice_file_name": "x.wav", "class": "siren"}
    assert fill_template(tpl, row) == "audio/fold3/x.wav" and row == {"fold": "3", "slice_file_name": "x.wav",
                                                                       "class": "siren"}
    assert tpl.columns == ("fold", "slice_file_name")
    braces = path_templates({"image": "{{raw}}/{id}.png"}, "m")["image"]
    assert fill_template(braces, {"id": 7}) == "{raw}/7.png"


def test_values_that_only_together_leave_the_folder_are_refused() -> None:
    tpl = path_templates({"image": "{a}{b}/x.png"}, "m")["image"]
    got = fill_template(tpl, {"a": ".", "b": "."})
    assert got.reason is not None and "together" in got.reason  # type: ignore[union-attr]
    assert fill_template(tpl, {"a": ".", "b": "x"}) == ".x/x.png"


def test_a_template_read_from_the_wrong_folder_names_the_root_that_fits(tmp_path: Path) -> None:
    us8k = tmp_path / "UrbanSound8K"
    with pytest.raises(SourceError) as exc:
        mmdata.shard(_urbansound(us8k), tmp_path / "ds", paths={"audio": "fold{fold}/{slice_file_name}"},
                     columns={"label": "class"}, progress=False)
    msg = str(exc.value)
    assert "--path audio=fold{fold}/{slice_file_name}: file not found (e.g. 'fold1/100032-3-0-0.wav')" in msg
    assert f"--path audio=fold{{fold}}/{{slice_file_name}}: 'fold1/100032-3-0-0.wav' is in {us8k / 'audio'}: pass " \
           f"--root {us8k / 'audio'}" in msg


def test_a_root_holding_one_fold_warns_with_the_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA: ``--root audio/fold1`` read the 2 clips of fold1 and left out the 3 of fold2 / fold3 ("file not
    found"), exit 0, no hint (it fired only when no file at all was found). The warning now names the
    template, with folders relative to the --root folder (warnings go to the card: no path of this machine)."""
    us8k = tmp_path / "UrbanSound8K"
    manifest = _urbansound(us8k)
    rep = mmdata.shard(manifest, tmp_path / "ds", root=us8k / "audio" / "fold1", columns={"label": "class"},
                       progress=False)
    assert rep["samples"] == 2
    (warning,) = [w for w in rep["warnings"] if "--path" in w]
    assert "column 'slice_file_name' (3 of its 5 paths name no file in the --root folder" in warning
    assert "pass --root ROOT/.. --path 'audio=fold{fold}/{slice_file_name}'" in warning
    assert "ROOT: the --root folder" in warning and str(tmp_path) not in warning
    # the route it names reads every fold
    rep = mmdata.shard(manifest, tmp_path / "ds2", root=us8k / "audio" / "fold1" / "..",
                       paths={"audio": "fold{fold}/{slice_file_name}"}, columns={"label": "class"}, progress=False)
    assert rep["samples"] == len(CLIPS) and rep["skipped"] == []
    code, out = _cli("shard", str(manifest), str(tmp_path / "ds3"), "--root", str(us8k / "audio" / "fold1"),
                     capsys=capsys)
    assert code == 0 and "wrote 2 samples" in out
    assert "--path 'audio=fold{fold}/{slice_file_name}'" in " ".join(out.split())


def test_a_few_missing_files_get_no_template_warning(tmp_path: Path) -> None:
    """A file or two gone from a dataset is no sign of a wrong --root: no folder search, no template."""
    us8k = tmp_path / "UrbanSound8K"
    manifest = _urbansound(us8k)
    (us8k / "audio" / "fold3" / "104032-3-0-4.wav").unlink()
    rep = mmdata.shard(manifest, tmp_path / "ds", root=us8k, paths={"audio": TEMPLATE}, columns={"label": "class"},
                       progress=False)
    assert rep["samples"] == 4 and not any("--path" in w for w in rep["warnings"])


@pytest.mark.parametrize("null_first", [True, False])
def test_a_null_fold_does_not_hide_the_template(tmp_path: Path, null_first: bool) -> None:
    """QA: one null fold in a Parquet manifest made the hint say "give --path FIELD=TEMPLATE" without one:
    every checked row had to fill the template. A row whose template cells are blank is not checked."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names, folds = ["a.wav", "b.wav", "c.wav", "d.wav"], [1.0, 2.0, 1.0, 2.0]
    for n, f in zip(names, folds):
        _wav(tmp_path / "audio" / f"fold{int(f)}" / n, len(n))
    _wav(tmp_path / "audio" / "fold2" / "e.wav", 5)
    rows = [("e.wav", None), *zip(names, folds)] if null_first else [*zip(names, folds), ("e.wav", None)]
    (tmp_path / "meta").mkdir()
    pq.write_table(pa.table({"name": [r[0] for r in rows], "fold": [r[1] for r in rows]}),
                   tmp_path / "meta" / "m.parquet")
    with pytest.raises(SourceError) as exc:
        mmdata.shard(tmp_path / "meta" / "m.parquet", tmp_path / "ds", progress=False)
    assert f"--root {tmp_path} --path 'audio=audio/fold{{fold}}/{{name}}'" in str(exc.value)


def test_a_nul_in_a_value_is_named_as_such(tmp_path: Path) -> None:
    us8k = tmp_path / "UrbanSound8K"
    manifest = _urbansound(us8k, extra_rows=("p5.wav\x00,1,0,0.1,1,1,3,dog_bark",))
    rep = mmdata.shard(manifest, tmp_path / "ds", root=us8k, paths={"audio": TEMPLATE}, columns={"label": "class"},
                       progress=False)
    (member,) = [s for s in rep["skipped"] if s["what"] == "member"]
    assert "row 6" in member["reason"] and "holds a NUL character" in member["reason"]
    assert "absolute path" not in member["reason"] and "'..'" not in member["reason"]


def test_a_second_file_from_a_template_names_the_path_options(tmp_path: Path) -> None:
    """QA: ``--path image=...`` whose files are audio said "(column 'audio' gives one)" and suggested
    ``--column image=image``, though both fields come from --path."""
    for n in ("a", "b"):
        _wav(tmp_path / "clips" / f"{n}.wav", 0)
        _wav(tmp_path / "other" / f"{n}.wav", 1)
    (tmp_path / "m.csv").write_text("name,label\na.wav,0\nb.wav,1\n")
    rep = mmdata.shard(tmp_path / "m.csv", tmp_path / "ds", paths={"audio": "clips/{name}", "image": "other/{name}"},
                       progress=False)
    assert rep["samples"] == 2
    reason = rep["skipped"][0]["reason"]
    assert "--path image=other/{name}: a second audio file for the sample (--path audio=clips/{name} gives one)" \
        in reason
    assert "column 'audio'" not in reason and "--column" not in reason
    assert ".wav files (audio), not image files" in reason
