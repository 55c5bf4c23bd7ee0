"""``--meta`` of a column named like a field (key, text, label, split) whose field another column gives.

Speech QA 2026-12: ``mmdata shard manifest.csv OUT --column label=speaker`` on a manifest that also has a
column ``label`` said "keep that column as metadata (--meta label)", and following that advice failed with
"--meta label: 'label' is a field of its own". When ``--column label=speaker`` reads the field from
another column, the column ``label`` is plain metadata in the sample's ``.json`` member; when it is the
field's own column, ``--meta`` of it is still refused, saying how to keep it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import mmdata
from mmdata.errors import SourceError
from mmdata.shards.sources import discover_manifest
from mmdata.testing import audio_bytes, image_bytes

# per field: the column it is read from instead (two rows' cells), and the same-named column's cells
CASES = {
    "label": ("speaker", ["ann", "bob"], ["happy", "sad"]),
    "text": ("transcript", ["guten Tag", "hallo"], ["noisy", "clean"]),
    "key": ("utt", ["u1", "u2"], ["x7", "x8"]),
    "split": ("fold", ["train", "val"], ["a", "b"]),
}


def _manifest(tmp_path: Path, field: str) -> Path:
    col, given, kept = CASES[field]
    for i in range(2):
        (tmp_path / f"{i}.png").write_bytes(image_bytes(i))
    pd.DataFrame({"image": ["0.png", "1.png"], col: given, field: kept}).to_csv(tmp_path / "m.csv", index=False)
    return tmp_path / "m.csv"


@pytest.mark.parametrize("field", sorted(CASES))
def test_a_field_read_from_another_column_leaves_its_namesake_as_metadata(tmp_path: Path, field: str) -> None:
    col, given, kept = CASES[field]
    m = _manifest(tmp_path, field)
    with pytest.raises(SourceError, match=rf"--column {field}={col}: .* keep that column as metadata \(--meta {field}\)"):
        discover_manifest(m, {field: col})
    found = discover_manifest(m, {field: col}, meta=[field])  # the advice works
    assert not found.skipped and found.meta_columns == (field,)
    recs = sorted(found.records, key=lambda r: Path(r.members["png"]).name)  # in the manifest's row order
    assert [json.loads(r.members["json"]) for r in recs] == [{field: v} for v in kept]
    got = {"label": lambda r: found.label_names[r.label], "text": lambda r: r.members["txt"].decode(),
           "key": lambda r: r.source_key, "split": lambda r: r.split}[field]
    assert [got(r) for r in recs] == given  # the field from its --column, not from the metadata column


def test_label_from_speaker_with_the_label_column_as_metadata_reads_back(tmp_path: Path) -> None:
    """The QA case end to end: shard with the CLI, read the label and the metadata back, and to_hf."""
    rows = []
    for i in range(4):
        (tmp_path / f"{i}.flac").write_bytes(audio_bytes(i))
        rows.append({"audio": f"{i}.flac", "label": ["happy", "sad"][i % 2], "speaker": ["ann", "bob"][i // 2]})
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    cli = [sys.executable, "-m", "mmdata.cli.main", "shard", str(tmp_path / "m.csv"), str(tmp_path / "ds"),
           "--column", "label=speaker"]
    hint = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert hint.returncode == 2 and "--meta label" in hint.stderr.replace("\n", " "), hint.stderr
    run = subprocess.run([*cli, "--meta", "label"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert card["label_names"] == ["ann", "bob"] and card["metadata_columns"] == ["label"]
    assert card["metadata_kinds"] == {"label": "string"}
    index = pd.read_parquet(tmp_path / "ds" / "index.parquet")
    source = dict(zip(index["key"], index["source_key"]))
    back = {source[s.key]: (s.fields["label"], s.fields["json"]) for s in mmdata.ShardDataset(tmp_path / "ds")}
    assert back == {"0": (0, {"label": "happy"}), "1": (0, {"label": "sad"}), "2": (1, {"label": "happy"}),
                    "3": (1, {"label": "sad"})}
    batch = next(iter(mmdata.loader(tmp_path / "ds", batch_size=4, num_workers=0)))
    assert sorted(zip(batch["label"].tolist(), [j["label"] for j in batch["json"]])) == \
        [(0, "happy"), (0, "sad"), (1, "happy"), (1, "sad")]
    pytest.importorskip("datasets")
    hf = mmdata.to_hf(tmp_path / "ds", "train", cache_dir=tmp_path / "cache")
    # the column 'label' is the class; the metadata column of that name stays in the json text column
    assert hf.features["label"].names == ["ann", "bob"]
    assert sorted((r["label"], json.loads(r["json"])["label"]) for r in hf) == \
        [(0, "happy"), (0, "sad"), (1, "happy"), (1, "sad")]


@pytest.mark.parametrize("field", sorted(CASES))
def test_meta_of_a_fields_own_column_is_refused_saying_how_to_keep_it(tmp_path: Path, field: str) -> None:
    m = _manifest(tmp_path, field)
    with pytest.raises(SourceError, match=rf"--meta {field}: '{field}' is a field of its own: the column '{field}' "
                                          rf"gives the sample's {field} .*--column {field}=COLUMN"):
        discover_manifest(m, meta=[field])
