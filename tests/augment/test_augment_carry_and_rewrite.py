"""QA round 34: what ``mmdata augment`` carries from its source's card, and why it rewrites an earlier output.

gdpr #6: the source's identifying-metadata warning, with the source's file names, was copied into the output's
card though every image is re-encoded (no EXIF there): false, and it named the erased subject's files. gdpr #1:
the source's entries of files that fed no sample were carried by name. upgrade #8: an output written by an older
mmdata was rewritten with no word why. Real JPEGs with EXIF, real shards."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

import mmdata
from mmdata.augment.offline import augment_dataset, describe
from mmdata.shards import index as idx

RECIPE = {"image": [{"op": "hflip", "p": 1.0}]}


def _jpegs(root: Path, n: int = 6) -> Path:
    for c in ("a", "b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n // 2):
            arr = np.full((16, 16, 3), 40 * i + (c == "b") * 100, np.uint8)
            ex = Image.Exif()
            ex[0x013B] = "Jane Doe"  # Artist
            Image.fromarray(arr).save(root / c / f"jane_doe_{c}{i}.jpg", exif=ex.tobytes(), quality=90)
    (root / "a" / "jane_doe_notes.zip").write_bytes(b"PK")  # a file that feeds no sample
    return root


def _card(ds: Path) -> dict:
    return json.loads((ds / idx.CARD).read_text(encoding="utf-8"))


def _run(src: Path, out: Path, **kw: object) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return augment_dataset(src, out, RECIPE, progress=False, **kw)


def test_the_source_metadata_warning_and_unused_file_names_are_not_carried(tmp_path: Path) -> None:
    src = tmp_path / "src"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(_jpegs(tmp_path / "raw"), src, split="train=1.0", on_error="skip", progress=False)
    card = _card(src)
    assert any(w.startswith("identifying metadata is published") for w in card["warnings"])
    assert any(e["what"] == "file" for e in card["skipped"])
    out = tmp_path / "aug"
    _run(src, out)
    aug = _card(out)
    assert not any("identifying metadata is published" in w for w in aug["warnings"]), aug["warnings"]
    assert "jane_doe" not in json.dumps(aug["warnings"]) and "jane_doe_notes" not in json.dumps(aug["skipped"])
    assert aug["metadata"].get("artist", 0) == 0  # the copies are re-encoded: this job's own count says so
    source = aug["augmentation"]["augmented_from"]
    assert source["skipped_count"] == len(card["skipped"]) and source["skipped_files_not_carried"] == 1
    assert mmdata.verify(out)["ok"]


def test_rewriting_an_output_of_an_older_mmdata_says_why(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(_jpegs(tmp_path / "raw"), tmp_path / "src", split="train=1.0", on_error="skip", progress=False)
    out = tmp_path / "aug"
    first = _run(tmp_path / "src", out)
    assert "rewrote" not in first
    again = _run(tmp_path / "src", out)
    assert again.get("up_to_date") and "rewrote" not in again
    card = _card(out)  # as an mmdata that recorded no code wrote it
    card.pop("code")
    card.pop(idx.CARD_DIGESTS)
    (out / idx.CARD).write_text(json.dumps(card), encoding="utf-8")
    rep = _run(tmp_path / "src", out)
    assert not rep.get("up_to_date") and "older mmdata" in rep["rewrote"]
    assert "rewrote the earlier output: it was written by an older mmdata" in describe(rep, keep_original=False, out=out)
    rep = _run(tmp_path / "src", out, seed=5)
    assert "seed" in rep["rewrote"] and "older" not in rep["rewrote"]
