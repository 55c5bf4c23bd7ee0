"""`mmdata augment` over augment output (a second pass): keys unique and deterministic, the first pass's
keys as before, provenance through both passes.

QA: ``mmdata augment aug_out aug2 --copies 1 --keep-original`` over ``aug_out`` written with
``--keep-original --copies 2`` failed with "two samples have key 'X_aug0'": the second pass kept the
input's ``X_aug0`` as an original and also named ``X``'s new copy ``X_aug0``. Copies of pass *n* >= 2 are
now ``<key>_p<n>aug<k>`` (*n* from the input card's ``augmentation`` entry); a collision left (bare shards
of augment output, whose pass no card says) is refused naming both input samples and the way out.

Real shards from :func:`mmdata.testing.make_sample_folder` (odd stems in sub-folders: keys differ from
the stems), augmented by the real writer; nothing mocked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.augment.offline import augment_dataset, copy_key
from mmdata.cli.main import app
from mmdata.errors import ShardError
from mmdata.shards import index as idx
from mmdata.testing import shard_odd_names

RECIPE = {"image": [{"op": "hflip", "p": 0.5}], "text": [{"op": "typo", "p_word": 0.5}]}


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shard_odd_names(tmp_path_factory.mktemp("second_pass"), n=8)


@pytest.fixture(scope="module")
def first(ds: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("second_pass_first") / "aug_out"
    augment_dataset(ds, out, RECIPE, copies=2, keep_original=True, progress=False)
    return out


def _rows(folder: Path, aug: bool = True) -> list[dict]:
    return idx.load_index(folder, columns=["key", "split", "source_key", *(["aug_source"] if aug else [])]).to_pylist()


def _card(folder: Path) -> dict:
    return json.loads((folder / "dataset.json").read_text())


def test_copy_key_scheme() -> None:
    assert [copy_key("cat_1a2b3c4d", k) for k in range(2)] == ["cat_1a2b3c4d_aug0", "cat_1a2b3c4d_aug1"]
    assert copy_key("cat_1a2b3c4d_aug0", 0, 2) == "cat_1a2b3c4d_aug0_p2aug0"
    assert copy_key("x", 3, 3) == "x_p3aug3"


def test_first_pass_keys_are_key_aug_k(ds: Path, first: Path) -> None:
    """Unchanged by the fix: ``<key>_aug<k>`` beside the kept original; the card names no pass (pass 1)."""
    inputs = {r["key"]: r for r in _rows(ds, aug=False)}
    want = set()
    for key, r in inputs.items():
        want |= {key, f"{key}_aug0", f"{key}_aug1"} if r["split"] == "train" else {key}
    assert {r["key"] for r in _rows(first)} == want
    assert "pass" not in _card(first)["augmentation"]


def _check_second(ds: Path, first: Path, second: Path, copies: int = 1) -> None:
    inputs = {r["key"]: r for r in _rows(first)}
    originals = {r["key"]: r["source_key"] for r in _rows(ds, aug=False)}
    rows = _rows(second)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys))
    want = set()
    for key, r in inputs.items():
        want |= ({key} | {f"{key}_p2aug{k}" for k in range(copies)}) if r["split"] == "train" else {key}
    assert set(keys) == want
    for r in rows:
        src = re.sub(r"_p2aug\d+$", "", r["key"])
        assert r["aug_source"] == src, r  # the first pass's sample it was made from
        assert r["source_key"] == inputs[src]["source_key"] == originals[inputs[src]["aug_source"]], r
    assert _card(second)["augmentation"]["pass"] == 2
    assert mmdata.verify(second, deep=True)["ok"]


def test_second_pass_with_keep_original_api(ds: Path, first: Path, tmp_path: Path) -> None:
    """The QA case through the API: the input's X_aug0 kept, X's new copy X_p2aug0 (was X_aug0: a collision)."""
    augment_dataset(first, tmp_path / "aug2", RECIPE, copies=1, keep_original=True, progress=False)
    _check_second(ds, first, tmp_path / "aug2")
    # deterministic: the same bytes again, and with workers (the card names its folder)
    augment_dataset(first, tmp_path / "again", RECIPE, copies=1, keep_original=True, workers=2, progress=False)
    names = sorted(p.name for p in (tmp_path / "aug2").iterdir() if p.suffix in (".tar", ".parquet"))
    assert names == sorted(p.name for p in (tmp_path / "again").iterdir() if p.suffix in (".tar", ".parquet"))
    for name in names:
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "aug2" / name).read_bytes(), name


def test_second_pass_with_keep_original_cli(ds: Path, first: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps(RECIPE))  # JSON is YAML
    res = CliRunner().invoke(app, ["augment", str(first), str(tmp_path / "aug2"), "--recipe", str(recipe),
                                   "--copies", "1", "--keep-original"])
    assert res.exit_code == 0, res.output
    _check_second(ds, first, tmp_path / "aug2")
    res = CliRunner().invoke(app, ["verify", str(tmp_path / "aug2")])
    assert res.exit_code == 0, res.output


def test_third_pass_counts_on(ds: Path, first: Path, tmp_path: Path) -> None:
    augment_dataset(first, tmp_path / "aug2", RECIPE, copies=1, keep_original=True, progress=False)
    augment_dataset(tmp_path / "aug2", tmp_path / "aug3", RECIPE, copies=2, keep_original=True, progress=False)
    rows = _rows(tmp_path / "aug3")
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) and any(k.endswith("_p2aug0_p3aug1") for k in keys)
    assert _card(tmp_path / "aug3")["augmentation"]["pass"] == 3
    assert {r["source_key"] for r in rows} == {r["source_key"] for r in _rows(ds, aug=False)}
    assert mmdata.verify(tmp_path / "aug3")["ok"]


def test_bare_shards_of_augment_output_are_refused_naming_both_samples(first: Path, tmp_path: Path) -> None:
    """Bare shards carry no card, so no pass: X's copy X_aug0 meets the input's X_aug0, kept. Refused before
    anything is written, naming both input samples and the way out."""
    with pytest.raises(ShardError) as err:
        augment_dataset(str(first / "train-*.tar"), tmp_path / "out", RECIPE, copies=1, keep_original=True,
                        progress=False)
    msg = str(err.value)
    x = next(r["key"] for r in _rows(first) if r["split"] == "train" and r["key"] == r["aug_source"])
    assert f"'{x}_aug0'" in msg and f"input sample '{x}'" in msg and "--keep-original" in msg, msg
    assert "dataset folder" in msg, msg
    assert not (tmp_path / "out").exists()


def test_bare_shards_of_augment_output_without_keep_original_work(first: Path, tmp_path: Path) -> None:
    augment_dataset(str(first / "train-*.tar"), tmp_path / "out", RECIPE, copies=1, progress=False)
    keys = [r["key"] for r in _rows(tmp_path / "out")]
    assert len(keys) == len(set(keys)) and mmdata.verify(tmp_path / "out")["ok"]


def test_a_bad_pass_in_the_card_is_named(first: Path, tmp_path: Path) -> None:
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(first, bad)
    card = _card(bad)
    card["augmentation"]["pass"] = "two"
    (bad / "dataset.json").write_text(json.dumps(card))
    with pytest.raises(ShardError, match=r"augmentation.*pass.*'two'"):
        augment_dataset(bad, tmp_path / "out", RECIPE, copies=1, progress=False)


@pytest.mark.ray
def test_ray_second_pass_matches_local(first: Path, tmp_path: Path, ray_cluster) -> None:  # noqa: ANN001
    """``--executor ray`` plans the same keys (the driver plans them from the index) and writes the same index."""
    augment_dataset(first, tmp_path / "ray", RECIPE, copies=1, keep_original=True, executor="ray", maxcount=10,
                    progress=False)
    augment_dataset(first, tmp_path / "local", RECIPE, copies=1, keep_original=True, maxcount=10, progress=False)
    assert (tmp_path / "ray" / "index.parquet").read_bytes() == (tmp_path / "local" / "index.parquet").read_bytes()
    assert mmdata.verify(tmp_path / "ray")["ok"]


@pytest.mark.ray
def test_ray_bare_shards_collision_refused(first: Path, tmp_path: Path, ray_cluster) -> None:  # noqa: ANN001
    with pytest.raises(ShardError, match="--keep-original"):
        augment_dataset(str(first / "train-*.tar"), tmp_path / "out", RECIPE, copies=1, keep_original=True,
                        executor="ray", progress=False)
    assert not (tmp_path / "out").exists()
