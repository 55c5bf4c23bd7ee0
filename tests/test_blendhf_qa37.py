"""QA round 37: blend and Hub-card defects.

* fed #1: a blend of RGB, palette (P) and RGBA sites was warned of as "differ in image channels ... does not
  collate", though the reader decodes P / RGBA to RGB and the batch collates: the check goes by decoded channels;
* licence #5: the blend card's ``licenses`` dropped a dataset without a licence, warned of one licence spelt two
  ways ("CC-BY-4.0" / "CC BY 4.0"), and carried none of the sources' identifying-metadata counts;
* licence #1: a per-sample licence column contradicting ``--license``: the Hub card claimed the one licence;
* vendor #8: the Hub card hid the card's copies across splits;
* sign #6: ``to_hf`` lost the shape of an empty (0, 75, 3) array;
* blend copies: size + CRC-32 is no proof of the same bytes (PNG CRC-32s collide): confirmed by the bytes.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmdata


def _images(root: Path, mode: str, seed: int, n: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            im = Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
            im = im.convert("P", palette=Image.ADAPTIVE) if mode == "P" else im.convert(mode)
            im.save(root / cls / f"{mode}{i}.png")
    return root


def _blend_warnings(datasets: dict[str, Path], **kw: object) -> tuple[mmdata.BlendDataset, list[str]]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        ds = mmdata.blend({k: str(v) for k, v in datasets.items()}, **kw)
    return ds, [str(w.message) for w in got]


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("qa37sites")
    out = {}
    for i, mode in enumerate(("RGB", "P", "RGBA", "L")):
        out[mode] = t / f"ds_{mode}"
        mmdata.shard(_images(t / f"raw_{mode}", mode, seed=i), out[mode], progress=False)
    return out


def test_palette_and_rgba_sites_blend_without_a_channels_warning(sites: dict[Path, Path]) -> None:
    ds, said = _blend_warnings({"rgb": sites["RGB"], "pal": sites["P"], "rgba": sites["RGBA"]})
    assert not [w for w in said if "image channels" in w], said
    assert ds._formats["image_channels"] == {"rgb": [3], "pal": [3], "rgba": [3]}
    shapes = {tuple(b["image"].shape[1:]) for b in mmdata.loader({"rgb": str(sites["RGB"]), "pal": str(sites["P"]),
                                                                  "rgba": str(sites["RGBA"])}, batch_size=100)}
    assert shapes == {(3, 16, 16)}


def test_grey_and_rgb_sites_still_warned(sites: dict[str, Path]) -> None:
    _, said = _blend_warnings({"rgb": sites["RGB"], "grey": sites["L"]})
    hit = [w for w in said if "image channels" in w]
    assert hit and "rgb: 3" in hit[0] and "grey: 1" in hit[0] and "channels=3" in hit[0], said


def _png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(path)


def _manifest(root: Path, rows: list[dict[str, str]]) -> Path:
    out = root / "m.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return out


def _front(text: str) -> dict[str, object]:
    import yaml

    return yaml.safe_load(text.split("---")[1])


def _hub_card(path: Path) -> tuple[str, list[str]]:
    from mmdata.interop.hf import write_hub_card

    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        text = write_hub_card(path).read_text(encoding="utf-8")
    return text, [str(w.message) for w in got]


def test_hub_card_claims_no_one_licence_over_per_sample_licences(tmp_path: Path) -> None:
    values = ["CC-BY-4.0", "CC-BY-NC-4.0", "CC0-1.0", "unknown"]
    rows = []
    for i in range(8):
        _png(tmp_path / "raw" / f"{i}.png", i)
        rows.append({"image": f"{i}.png", "label": "ab"[i % 2], "license": values[i % 4], "attribution": f"P {i}"})
    mmdata.shard(_manifest(tmp_path / "raw", rows), tmp_path / "ds", meta=["license", "attribution"],
                 license="CC-BY-4.0", progress=False)
    text, said = _hub_card(tmp_path / "ds")
    front = _front(text)
    assert front["license"] == "other" and front["license_name"] == "per-sample-licences", front
    assert "| CC-BY-NC-4.0 | 2 | cc-by-nc-4.0 |" in text and "| unknown | 2 | none |" in text
    assert "NonCommercial" in text and "No known licence" in text
    hit = [w for w in said if "per-sample licence column 'license'" in w]
    assert hit and "6 samples" in hit[0] and "'CC-BY-NC-4.0'" in hit[0], said


def test_hub_card_keeps_the_licence_all_samples_share(tmp_path: Path) -> None:
    rows = []
    for i in range(4):
        _png(tmp_path / "raw" / f"{i}.png", i)
        rows.append({"image": f"{i}.png", "label": "ab"[i % 2], "license": "CC BY 4.0"})
    mmdata.shard(_manifest(tmp_path / "raw", rows), tmp_path / "ds", meta=["license"], license="CC-BY-4.0",
                 progress=False)
    text, said = _hub_card(tmp_path / "ds")
    assert _front(text)["license"] == "cc-by-4.0"
    assert "per-sample" not in text and not [w for w in said if "per-sample" in w]


def test_licence_column_counts_is_pure_and_names_the_kinds() -> None:
    from mmdata.interop.hf import licence_column_counts, licence_columns

    got = licence_column_counts(["CC-BY-4.0", "cc by 4.0", None, "Non-commercial use only"], "CC BY 4.0")
    assert got["counts"] == {"CC-BY-4.0": 1, "cc by 4.0": 1, "(none)": 1, "Non-commercial use only": 1}
    assert got["differ"] == 2 and got["unknown"] == ["(none)"] and got["noncommercial"] == ["Non-commercial use only"]
    assert licence_columns(["Licence", "caption"]) == ["Licence"]


def test_hub_card_says_the_copies_across_splits(tmp_path: Path) -> None:
    rows = []
    for i in range(6):
        _png(tmp_path / "raw" / f"{i}.png", i)
        rows.append({"image": f"{i}.png", "label": "ab"[i % 2], "split": "test" if i == 0 else "train"})
    (tmp_path / "raw" / "copy.png").write_bytes((tmp_path / "raw" / "0.png").read_bytes())
    rows.append({"image": "copy.png", "label": "a", "split": "train"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(_manifest(tmp_path / "raw", rows), tmp_path / "ds", license="MIT", progress=False)
    card = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert card["duplicates"]["samples"] == 2
    text, _ = _hub_card(tmp_path / "ds")
    line = [ln for ln in text.splitlines() if ln.startswith("* Contamination across splits")]
    assert line and "2 samples in 1 set hold" in line[0] and "(test)" in line[0] and "sha256" in line[0], text
    assert "warned once" in text


@pytest.fixture(scope="module")
def gps_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One folder of 3 JPEGs with a GPS position, sharded as a (CC-BY-4.0), b ("CC BY 4.0"), c (no licence)."""
    t = tmp_path_factory.mktemp("qa37gps")
    (t / "raw" / "cat").mkdir(parents=True)
    for i in range(3):
        im = Image.fromarray(np.random.default_rng(i).integers(0, 255, (16, 16, 3), dtype=np.uint8))
        ex = Image.Exif()
        ex.get_ifd(0x8825).update({1: "N", 2: (1.0, 2.0, 3.0)})
        im.save(t / "raw" / "cat" / f"{i}.jpg", exif=ex)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, lic in (("a", "CC-BY-4.0"), ("b", "CC BY 4.0"), ("c", None)):
            out[name] = t / name
            mmdata.shard(t / "raw", out[name], license=lic, progress=False)
    return out


def test_blend_licences_compare_hub_ids_and_list_the_missing_one(gps_sets: dict[str, Path]) -> None:
    ds, said = _blend_warnings({"a": gps_sets["a"], "b": gps_sets["b"]}, check_copies=False)
    assert not [w for w in said if "licences differ" in w], said
    assert ds.card["licenses"] == ["CC-BY-4.0"]
    assert ds.card["blend"]["b"]["license"] == "CC BY 4.0"  # as its card gives it
    ds, said = _blend_warnings({"a": gps_sets["a"], "c": gps_sets["c"]}, check_copies=False)
    assert [w for w in said if "licences differ" in w and "'c' (none given)" in w], said
    assert ds.card["licenses"] == ["CC-BY-4.0", "(none given)"]


def test_blend_card_carries_the_sources_identifying_metadata(gps_sets: dict[str, Path]) -> None:
    ds, _ = _blend_warnings({"a": gps_sets["a"], "c": gps_sets["c"]}, check_copies=False)
    assert ds.card["metadata"] == {"gps": 6}
    assert ds.card["blend"]["a"]["metadata"] == {"gps": 3}
    gps = [w for w in ds.card["warnings"] if "GPS" in w]
    assert [w[:3] for w in gps] == ["a: ", "c: "], ds.card["warnings"]
    json.dumps(ds.card)  # a run's record: JSON as it is


def _forge_crc(data: bytes, target: int) -> bytes:
    """4 bytes X such that zlib.crc32(data + X) == target (CRC-32 is affine in X over GF(2))."""
    import zlib

    base = zlib.crc32(data + b"\0\0\0\0")
    cols = [zlib.crc32(data + (1 << i).to_bytes(4, "little")) ^ base for i in range(32)]
    want = target ^ base
    # Gaussian elimination over GF(2): rows = the 32 columns' bits, tracking which inputs make each
    basis: list[tuple[int, int]] = []  # (value, combination of inputs)
    for i, c in enumerate(cols):
        combo = 1 << i
        for v, m in basis:
            if c ^ v < c:
                c, combo = c ^ v, combo ^ m
        if c:
            basis.append((c, combo))
            basis.sort(reverse=True)
    x = 0
    for v, m in basis:
        if want ^ v < want:
            want, x = want ^ v, x ^ m
    assert want == 0
    out = x.to_bytes(4, "little")
    assert zlib.crc32(data + out) == target
    return out


def test_blend_copies_need_the_same_bytes_not_only_size_and_crc(tmp_path: Path) -> None:
    """Two different PNGs of one size and one whole-file CRC-32 (trailing bytes after IEND, which decoders
    ignore, forged): no copy. A true copy still is one."""
    import io
    import zlib

    def png(seed: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
        return buf.getvalue()

    a, b = png(1), png(2)
    assert len(a) == len(b)
    a += b"\0\0\0\0"
    b += _forge_crc(b, zlib.crc32(a))
    assert len(a) == len(b) and zlib.crc32(a) == zlib.crc32(b) and a != b
    for name, data, extra in (("A", a, png(3)), ("B", b, png(4))):
        (tmp_path / name / "cat").mkdir(parents=True)
        (tmp_path / name / "cat" / "x.png").write_bytes(data)
        (tmp_path / name / "cat" / "y.png").write_bytes(extra)
        mmdata.shard(tmp_path / name, tmp_path / f"ds{name}", progress=False)
    ds, said = _blend_warnings({"A": tmp_path / "dsA", "B": tmp_path / "dsB"})
    assert not [w for w in said if "same image or audio bytes" in w or "copies of samples" in w], said
    assert ds.card["copies_across_datasets"]["samples"] == 0
    assert ds.card["copies_across_datasets"]["compared"] == "sha256"
    # a true copy (C holds A's x.png) is still found, confirmed
    (tmp_path / "C" / "cat").mkdir(parents=True)
    (tmp_path / "C" / "cat" / "x.png").write_bytes(a)
    mmdata.shard(tmp_path / "C", tmp_path / "dsC", progress=False)
    ds, said = _blend_warnings({"A": tmp_path / "dsA", "C": tmp_path / "dsC"})
    assert ds.card["copies_across_datasets"]["read_twice"] == 1
    assert [w for w in said if "confirmed by sha256" in w], said


def test_blend_copies_confirmed_by_reading_members_of_an_index_without_digests(tmp_path: Path) -> None:
    """An index written before member_digest (or without it): the candidates' members are read and hashed."""
    import io
    import zlib

    import pyarrow.parquet as pq

    def png(seed: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
        return buf.getvalue()

    a, b = png(1) + b"\0\0\0\0", png(2)
    b += _forge_crc(b, zlib.crc32(a))
    for name, files in (("A", {"x.png": a}), ("B", {"x.png": b}), ("C", {"z.png": a})):
        (tmp_path / name / "cat").mkdir(parents=True)
        for f, data in files.items():
            (tmp_path / name / "cat" / f).write_bytes(data)
        (tmp_path / name / "cat" / "w.png").write_bytes(png(10 + ord(name)))
        mmdata.shard(tmp_path / name, tmp_path / f"ds{name}", progress=False)
        index = tmp_path / f"ds{name}" / "index.parquet"
        table = pq.read_table(index)
        if "member_digest" in table.column_names:
            pq.write_table(table.drop(["member_digest"]), index)
    ds, said = _blend_warnings({"A": tmp_path / "dsA", "B": tmp_path / "dsB", "C": tmp_path / "dsC"})
    dups = ds.card["copies_across_datasets"]
    assert dups["compared"] == "sha256" and dups["read_twice"] == 1 and dups["samples"] == 1, dups
    (later, _), (earlier, _) = dups["examples"][0]
    assert later.startswith("C/") and earlier.startswith("A/"), dups


def test_blend_copies_read_the_members_where_the_digests_are_null_or_stale(tmp_path: Path) -> None:
    """A member_digest column of nulls, or of lists that do not match the members, is not trusted: read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, seed in (("A", 1), ("B", 2)):
        (tmp_path / name / "cat").mkdir(parents=True)
        _png(tmp_path / name / "cat" / "x.png", seed)
        mmdata.shard(tmp_path / name, tmp_path / f"ds{name}", progress=False)
    (tmp_path / "C" / "cat").mkdir(parents=True)
    (tmp_path / "C" / "cat" / "x.png").write_bytes((tmp_path / "A" / "cat" / "x.png").read_bytes())
    mmdata.shard(tmp_path / "C", tmp_path / "dsC", progress=False)
    for name, cell in (("A", None), ("C", [7])):  # A: null; C: a list shorter than its members
        index = tmp_path / f"ds{name}" / "index.parquet"
        table = pq.read_table(index)
        col = pa.array([cell] * table.num_rows, pa.list_(pa.int64()))
        if "member_digest" in table.column_names:
            table = table.set_column(table.column_names.index("member_digest"), "member_digest", col)
        else:
            table = table.append_column("member_digest", col)
        pq.write_table(table, index)
    ds, _ = _blend_warnings({"A": tmp_path / "dsA", "B": tmp_path / "dsB", "C": tmp_path / "dsC"})
    dups = ds.card["copies_across_datasets"]
    assert dups["read_twice"] == 1 and dups["compared"] == "sha256", dups


def test_blend_copies_unread_members_still_count_by_size_and_crc(tmp_path: Path) -> None:
    """B's test split holds byte copies of A's train images; B's index has no member_digest and its test shard is
    gone, so those members cannot be read. They pair with A's read members of the same size and CRC-32 (counted
    unconfirmed), not only with other unread ones: the trained-on-and-tested copies are not lost (evalblend
    review #2)."""
    import shutil

    import pyarrow.parquet as pq

    rows_a, rows_b = [], []
    for i in range(6):
        _png(tmp_path / "A" / f"a{i}.png", 100 + i)
        rows_a.append({"key": f"a{i}", "image": f"a{i}.png", "label": "cat", "split": "train"})
    (tmp_path / "B").mkdir()
    for i in range(3):  # copies of A's train images: B's test
        shutil.copy(tmp_path / "A" / f"a{i}.png", tmp_path / "B" / f"b{i}.png")
        rows_b.append({"key": f"b{i}", "image": f"b{i}.png", "label": "cat", "split": "test"})
    for i in range(3, 6):  # other images: B's train
        _png(tmp_path / "B" / f"b{i}.png", 200 + i)
        rows_b.append({"key": f"b{i}", "image": f"b{i}.png", "label": "cat", "split": "train"})
    for name, rows in (("A", rows_a), ("B", rows_b)):
        mmdata.shard(_manifest(tmp_path / name, rows), tmp_path / f"ds{name}", progress=False)
    blend = {"A": tmp_path / "dsA", "B": tmp_path / "dsB"}
    ds, _ = _blend_warnings(blend, split="train")
    assert ds.card["copies_across_datasets"]["other_splits"] == 3, ds.card["copies_across_datasets"]
    index = tmp_path / "dsB" / "index.parquet"
    pq.write_table(pq.read_table(index).drop(["member_digest"]), index)
    (tmp_path / "dsB" / "test-000000.tar").unlink()
    ds, said = _blend_warnings(blend, split="train")
    dups = ds.card["copies_across_datasets"]
    assert dups["other_splits"] == 3 and dups["unconfirmed"] == 3, dups
    assert dups["compared"] == "sha256, and size and CRC-32 where the bytes could not be read"
    hit = [w for w in said if "same image or audio bytes" in w]
    assert hit and "3 members could not be read: each counted as a copy of every member of its size and CRC-32" in hit[0]


def test_a_licence_column_holding_the_declared_non_hub_licence_does_not_differ(tmp_path: Path) -> None:
    """--license Proprietary and every sample's column 'Proprietary': one licence, not 'no known licence' and
    'license: other' + per-sample table on the Hub card (evalblend review #4)."""
    rows = []
    for i in range(4):
        _png(tmp_path / "raw" / f"{i}.png", i)
        rows.append({"image": f"{i}.png", "label": "ab"[i % 2], "license": "Proprietary"})
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        mmdata.shard(_manifest(tmp_path / "raw", rows), tmp_path / "ds", meta=["license"], license="proprietary",
                     progress=False)
    assert not [str(w.message) for w in got if "per-sample licence" in str(w.message)]
    text, said = _hub_card(tmp_path / "ds")
    assert _front(text)["license_name"] == "proprietary" and "per-sample" not in text, text
    assert not [w for w in said if "per-sample" in w]


def test_licence_column_counts_folds_text_maps_cc_urls_and_spaced_non_commercial() -> None:
    from mmdata.interop.hf import licence_column_counts, licence_column_warning

    got = licence_column_counts(["Internal use only", "internal-use  ONLY", "Other terms"], "internal use only")
    assert got["differ"] == 1 and got["unknown"] == ["Other terms"] and got["declared_text"] == "internal use only"
    said = licence_column_warning("ds", "license", got)
    assert "differs from the dataset's licence ('internal use only') in 1 sample" in said
    url = licence_column_counts(["https://creativecommons.org/licenses/by/4.0/", "http://creativecommons.org/"
                                 "publicdomain/zero/1.0/"], "CC-BY-4.0")
    assert url["ids"] == {"https://creativecommons.org/licenses/by/4.0/": "cc-by-4.0",
                          "http://creativecommons.org/publicdomain/zero/1.0/": "cc0-1.0"}
    assert url["differ"] == 1 and url["unknown"] == []
    nc = licence_column_counts(["non commercial use only", "https://creativecommons.org/licenses/by-nc/2.0/"],
                               "CC-BY-4.0")
    assert nc["noncommercial"] == ["https://creativecommons.org/licenses/by-nc/2.0/", "non commercial use only"]
