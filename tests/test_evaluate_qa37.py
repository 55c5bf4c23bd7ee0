"""QA37: evaluate's in-sample check confirms a (size, CRC-32) match by the members' strong digests or bytes (a PNG's
CRC-32 collides often: an image never trained on was called "seen", vendor #12); case-only class names name the
``--class-map`` that scores them (fed #2); a site whose classes are all unknown to the run is scored under
``unknown="wrong"`` (fed #3); an image format other than the run's is said (fed #5)."""

from __future__ import annotations

import csv
import io
import shutil
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from mmdata.errors import MMDataError


def _quiet(fn: Any, *args: Any, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _eval(*args: Any, **kw: Any) -> dict[str, Any]:
    from mmdata.train.score_run import evaluate_run

    return _quiet(evaluate_run, *args, **kw)


def _train(data: Path, out: Path) -> Path:
    from mmdata.train import train

    torch.set_num_threads(1)
    _quiet(train, data, epochs=1, seed=0, out=out, batch_size=8, threads=1, eval_robustness=False)
    return out


def _png(seed: int, size: tuple[int, int] = (8, 8), mode: str = "RGB") -> bytes:
    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, "PNG", compress_level=0)  # stored: every image the same size
    return buf.getvalue()


def _collision() -> tuple[bytes, bytes]:
    """Two different PNG images of the same size and whole-file CRC-32 (found in a few hundred draws)."""
    seen: dict[tuple[int, int], bytes] = {}
    for seed in range(20000):
        data = _png(seed)
        mark = (len(data), zlib.crc32(data))
        if mark in seen and seen[mark] != data:
            return seen[mark], data
        seen[mark] = data
    raise AssertionError("no two PNGs of the same size and CRC-32 in 20000 draws")


def _manifest(root: Path, rows: list[tuple[str, bytes, str, str]]) -> Path:
    root.mkdir(parents=True)
    with open(root / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "image", "label", "split"])
        for key, data, label, split in rows:
            (root / f"{key}.png").write_bytes(data)
            w.writerow([key, f"{key}.png", label, split])
    return root / "m.csv"


def _shard(src: Path, out: Path, **kw: Any) -> Path:
    import mmdata

    _quiet(mmdata.shard, src, out, progress=False, **kw)
    return out


@pytest.fixture(scope="module")
def collided(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run trained on ``k00`` (image A); a site beside its dataset holding image B (same size and CRC-32 as A,
    other pixels) under ``xb`` and a true copy of training image ``k01`` under ``xcopy``."""
    a, b = _collision()
    assert a != b and len(a) == len(b) and zlib.crc32(a) == zlib.crc32(b)
    root = tmp_path_factory.mktemp("qa37_crc")
    rows = [("k00", a, "cat", "train")]
    rows += [(f"k{i:02d}", _png(50000 + i), ["cat", "dog"][i % 2], "train" if i < 16 else "val" if i < 20 else "test")
             for i in range(1, 24)]
    ds = _shard(_manifest(root / "src", rows), root / "data" / "ds")
    copy = next(d for k, d, _, _ in rows if k == "k01")
    site = [("xb", b, "cat", "test"), ("xcopy", copy, "dog", "test")]
    site += [(f"x{i}", _png(70000 + i), ["cat", "dog"][i % 2], "test") for i in range(6)]
    other = _shard(_manifest(root / "src2", site), root / "data" / "site")
    return {"root": root, "ds": ds, "site": other, "run": _train(ds, root / "run")}


def _drop_digests(folder: Path) -> None:
    """``folder``'s index as written before the member_digest column (2026-12-07)."""
    t = pq.read_table(folder / "index.parquet")
    if "member_digest" in t.column_names:
        pq.write_table(t.drop(["member_digest"]), folder / "index.parquet")


def test_a_crc32_collision_is_not_seen_with_digests_in_both_indexes(collided: dict[str, Any]) -> None:
    r = _eval(collided["run"], collided["site"])
    assert r["in_sample"]["by"].startswith("index of")
    assert r["in_sample"]["train"] == 1 and r["in_sample"]["unconfirmed"] == 0
    assert r["in_sample_keys"] == {"train": ["xcopy"]}
    said = [w for w in r["warnings"] if "seen by the run" in w]
    assert len(said) == 1 and "'xb'" not in said[0] and "CRC-32 only" not in said[0]


def test_a_crc32_collision_is_not_seen_when_the_bytes_are_read(collided: dict[str, Any], tmp_path: Path) -> None:
    """Indexes without member_digest (older shards): the candidates' bytes are read from both datasets."""
    ds, site = tmp_path / "ds", tmp_path / "site"
    shutil.copytree(collided["ds"], ds)
    shutil.copytree(collided["site"], site)
    _drop_digests(ds)
    _drop_digests(site)
    r = _eval(collided["run"], site, train_data=ds)
    assert r["in_sample"]["train"] == 1 and r["in_sample"]["unconfirmed"] == 0
    assert r["in_sample_keys"] == {"train": ["xcopy"]}
    only_site = tmp_path / "only_site"  # the run's index has digests, the site's not: the site's bytes are read
    shutil.copytree(collided["site"], only_site)
    _drop_digests(only_site)
    r = _eval(collided["run"], only_site, train_data=collided["ds"])
    assert r["in_sample_keys"] == {"train": ["xcopy"]} and r["in_sample"]["unconfirmed"] == 0


def test_a_match_whose_bytes_cannot_be_read_is_said_to_rest_on_size_and_crc32(collided: dict[str, Any],
                                                                                tmp_path: Path) -> None:
    ds, site = tmp_path / "ds", tmp_path / "site"
    shutil.copytree(collided["ds"], ds)
    shutil.copytree(collided["site"], site)
    _drop_digests(ds)
    _drop_digests(site)
    (ds / "train-000000.tar").unlink()  # the run's training shard is gone: nothing to confirm against
    r = _eval(collided["run"], site, train_data=ds)
    assert r["in_sample"]["train"] == 2 and r["in_sample"]["unconfirmed"] == 2
    assert sorted(r["in_sample_keys"]["train"]) == ["xb", "xcopy"]
    said = next(w for w in r["warnings"] if "seen by the run" in w)
    assert "2 of them (['xb', 'xcopy']) by member size and CRC-32 only" in said
    # each claim true: the matches are not said to be by sha256 (evalblend review #7)
    assert "bytes (sha256)" not in said and "confirmed by sha256 where both members' bytes could be had" in said


def test_a_digest_list_not_in_step_with_the_members_is_not_used(collided: dict[str, Any], tmp_path: Path) -> None:
    """A member_digest list of another length than the members (a field added by an add-modality older than
    55b74c8): zipped with the members it dropped the image and missed a real copy (evalblend review #1). Not used:
    the bytes are read instead."""
    import pyarrow as pa

    site = tmp_path / "site"
    shutil.copytree(collided["site"], site)
    t = pq.read_table(site / "index.parquet")
    stale = [d[1:] for d in t.column("member_digest").to_pylist()]  # one short: ['x.cls', 'x.png'] vs [d_png]
    assert all(len(d) + 1 == len(m) for d, m in zip(stale, t.column("members").to_pylist()))
    t = t.set_column(t.column_names.index("member_digest"), "member_digest", pa.array(stale, pa.list_(pa.int64())))
    pq.write_table(t, site / "index.parquet")
    r = _eval(collided["run"], site, train_data=collided["ds"])
    assert r["in_sample_keys"] == {"train": ["xcopy"]} and r["in_sample"]["unconfirmed"] == 0, r["in_sample"]


def _site(root: Path, classes: list[str], mode: str = "RGB", size: tuple[int, int] = (16, 16), seed: int = 0) -> Path:
    """Class folders of 8 random images each (``size``: height, width), sharded train / val / test."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    raw = root.with_name(root.name + "_raw")
    for cls in classes:
        (raw / cls).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).convert(mode).save(raw / cls / f"{i}.png")
    return _shard(raw, root, split="train=0.5,val=0.25,test=0.25")


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A run on grey 40x48 cat / dog images; sites spelling them Cat / Dog, holding bird / fish only, and holding
    RGB 16x16 cat / dog images."""
    root = tmp_path_factory.mktemp("qa37_sites")
    own = _site(root / "own", ["cat", "dog"], mode="L", size=(40, 48))
    return {"run": _train(own, root / "run"), "own": own,
            "case": _site(root / "case", ["Cat", "Dog"], seed=1),
            "other": _site(root / "other", ["bird", "fish"], seed=2),
            "rgb": _site(root / "rgb", ["cat", "dog"], seed=3)}


def test_case_only_class_names_name_the_class_map_that_scores_them(sites: dict[str, Path]) -> None:
    with pytest.raises(MMDataError, match=r"nothing to score; 2 differ from the run's only in case .*'Cat' vs 'cat'.*"
                                          r"score them as the run's classes with --class-map cat=Cat,dog=Dog ") as e:
        _eval(sites["run"], sites["case"])
    assert "it does not rename them" in str(e.value)  # --labels is not offered as the remedy
    r = _eval(sites["run"], sites["case"], class_map={"cat": "Cat", "dog": "Dog"})  # the remedy given works
    assert r["unknown_classes"] == {"Cat": 0, "Dog": 0} or not any(r["unknown_classes"].values())
    assert r["samples"]["test"]["scored"] == r["samples"]["test"]["labelled"] > 0


def test_the_class_map_flag_quotes_names_a_shell_would_split() -> None:
    from mmdata.train.score_run import _class_map_flag

    assert _class_map_flag({"cat": "Cat"}) == "--class-map cat=Cat"
    assert _class_map_flag({"big cat": "Big Cat", "a,b": "A,B"}) == "--class-map 'big cat=Big Cat' --class-map a,b=A,B"
    from mmdata.train.submissions import parse_class_map

    assert parse_class_map(["a,b=A,B"]) == {"a,b": "A,B"}  # one option per pair: its commas are names'


def test_a_site_of_only_unknown_classes_is_scored_as_wrong(sites: dict[str, Path]) -> None:
    for given in ({}, {"unknown": "wrong"}):
        r = _eval(sites["run"], sites["other"], **given)
        n = r["samples"]["test"]
        assert n["scored"] == n["labelled"] == n["unknown_class"] > 0
        assert r["scores"]["accuracy"] == 0.0 and r["unknown_classes_scored"] == "wrong"
        said = next(w for w in r["warnings"] if "none of its 2 classes" in w)
        assert "scored as wrong (accuracy 0)" in said and "--class-map RUN=DATA" in said
    with pytest.raises(MMDataError, match=r"nothing to score with unknown='leave-out'.*unknown='wrong'"):
        _eval(sites["run"], sites["other"], unknown="leave-out")
    with pytest.raises(MMDataError, match=r"the run does not know \('bird': \d+, 'fish': \d+"):
        _eval(sites["run"], sites["other"], unknown="error")


def test_images_of_another_format_than_the_runs_are_said(sites: dict[str, Path]) -> None:
    r = _eval(sites["run"], sites["rgb"])
    said = [w for w in r["warnings"] if "not the format the run was trained on" in w]
    assert len(said) == 1, r["warnings"]
    n = r["samples"]["test"]["samples"]
    assert f"{n} of {n} have 3 channels, converted to the run's 1" in said[0]
    assert f"{n} of {n} are not 40x48 (16x16: {n}), resized to the run's 40x48" in said[0]
    own = _eval(sites["run"], sites["own"])  # the run's own format: nothing said
    assert not any("not the format" in w for w in own["warnings"])


def test_image_format_is_compared_by_decoded_channels_not_stored_bands(sites: dict[str, Path],
                                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    """Palette (1 band) and RGBA (4) images decode to RGB, 3 channels (evalblend review #3): scored
    by an RGB run nothing is said of channels; scored by a grey run they are converted from 3, not from 1 / 4.
    (LA decodes to grey, 1 channel, since QA38 documents #6: tests/test_qa38_media_audio.py.)"""
    root = tmp_path_factory.mktemp("qa37_modes")
    for mode in ("P", "RGBA"):  # the grey run is 40x48: only channels differ
        r = _eval(sites["run"], _site(root / f"g{mode}", ["cat", "dog"], mode=mode, size=(40, 48), seed=5))
        said = [w for w in r["warnings"] if "not the format the run was trained on" in w]
        n = r["samples"]["test"]["samples"]
        assert len(said) == 1 and f"{n} of {n} have 3 channels, converted to the run's 1" in said[0], (mode, said)
        assert "metrics.json inputs: 1 channel, 40x48" in said[0]
    rgb_run = _train(sites["rgb"], root / "rgb_run")  # RGB 16x16
    for mode in ("P", "RGBA"):
        r = _eval(rgb_run, _site(root / f"c{mode}", ["cat", "dog"], mode=mode, seed=6))
        assert not any("not the format" in w for w in r["warnings"]), (mode, r["warnings"])


def test_the_class_map_flag_says_the_pairs_no_option_can_give() -> None:
    """A run name holding '=' cannot be given with --class-map (it splits at the first '='): said, with the
    class_map= that gives it (evalblend review #6); the options it does write parse back to their pairs."""
    from mmdata.train.score_run import _class_map_flag
    from mmdata.train.submissions import parse_class_map

    flag = _class_map_flag({"x=y": "X=Y", "cat": "Cat"})
    assert flag.startswith("--class-map cat=Cat (1 pair no --class-map option can say")
    assert "class_map={'x=y': 'X=Y'}" in flag
    assert parse_class_map(["x=Y=Z"]) == {"x": "Y=Z"} and _class_map_flag({"x": "Y=Z"}) == "--class-map x=Y=Z"
    # a data name 'b,c=d' would be split into two pairs as one option: said too
    assert "class_map={'a': 'b,c=d'}" in _class_map_flag({"a": "b,c=d"})


def test_the_cli_scores_a_site_of_only_unknown_classes(sites: dict[str, Path]) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "mmdata", "evaluate", str(sites["run"]), str(sites["other"])],
                          capture_output=True, text=True, env={**__import__("os").environ, "MMDATA_PROGRESS": "off"})
    assert done.returncode == 0, done.stderr
    assert "scored as wrong (accuracy 0)" in done.stdout + done.stderr
