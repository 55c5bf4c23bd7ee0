"""`mmdata augment --on-error skip` over a source whose members do not decode (QA: it stopped at a damaged PNG,
exit 2, nothing written): such samples are left out, counted and listed with shard, key and reason, locally and
on Ray alike; ``--on-error raise`` (the default) stops at them, naming them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.augment.offline import augment_dataset
from mmdata.cli.main import app
from mmdata.errors import ShardError
from mmdata.testing import make_sample_folder
from mmdata.testing.hostile import header_offsets

RECIPE = {"image": [{"op": "hflip", "p": 0.5}]}
#: the source samples whose member is damaged below, and the member
DAMAGED = {"000001": "png", "000006": "png", "000004": "flac"}


def _damage(shard: Path, names: dict[str, str]) -> int:
    """Overwrite bytes of ``<key>.<ext>`` members' headers (a PNG's IHDR height, a FLAC's STREAMINFO), so the
    member is read whole but does not decode."""
    data = bytearray(shard.read_bytes())
    hit = 0
    for off, name in header_offsets(bytes(data)):
        key, _, ext = name.decode().partition(".")
        if names.get(key) == ext:
            data[off + 512 + 20 : off + 512 + 28] = b"\xff" * 8
            hit += 1
    shard.write_bytes(bytes(data))
    return hit


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("src")
    mmdata.shard(make_sample_folder(t / "raw", n=10), t / "ds", maxcount=4, progress=False)
    return t / "ds"


@pytest.fixture(scope="module")
def damaged(clean: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    out = tmp_path_factory.mktemp("damaged") / "ds"
    shutil.copytree(clean, out)
    assert sum(_damage(shard, DAMAGED) for shard in sorted(out.glob("train-*.tar"))) == len(DAMAGED)
    return out


def _members(root: Path) -> dict[str, dict[str, bytes]]:
    return {s.key: dict(s.fields) for s in mmdata.open_dataset(root, decode=False)}


def test_raise_stops_at_a_damaged_sample_naming_it(damaged: Path, tmp_path: Path) -> None:
    with pytest.raises(ShardError, match=r"train-00000\d\.tar.*000001.*cannot decode \.png"):
        augment_dataset(damaged, tmp_path / "aug", RECIPE, progress=False)


@pytest.mark.parametrize("workers", [1, 2])
def test_skip_leaves_out_counts_and_lists_damaged_source_samples(damaged: Path, clean: Path, tmp_path: Path,
                                                                 workers: int) -> None:
    rep = augment_dataset(damaged, tmp_path / "aug", RECIPE, copies=2, on_error="skip", workers=workers,
                          progress=False)
    got = _members(tmp_path / "aug")
    kept = [f"{i:06d}" for i in range(10) if f"{i:06d}" not in DAMAGED]
    assert sorted(got) == sorted(f"{k}_aug{c}" for k in kept for c in range(2))
    assert rep["samples"] == 2 * len(kept) and mmdata.verify(tmp_path / "aug")["ok"]
    left = rep["skipped"]
    assert sorted((e["source"], e["sample"]) for e in left) == sorted((k, f"{k}_aug{c}") for k in DAMAGED
                                                                      for c in range(2))
    for e in left:  # shard, member and why
        assert "train-00000" in e["reason"] and f"{e['source']}.{DAMAGED[e['source']]}" in e["reason"], e
        assert "cannot decode" in e["reason"], e
    card = json.loads((tmp_path / "aug" / "dataset.json").read_text())
    assert card["skipped"] == left
    # the samples that did decode: the same bytes as a run over the undamaged source gives them
    whole = augment_dataset(clean, tmp_path / "whole", RECIPE, copies=2, progress=False)
    assert whole["samples"] == 20
    ref = _members(tmp_path / "whole")
    assert {k: ref[k] for k in got} == got


def test_keep_original_leaves_a_damaged_original_out_too(damaged: Path, tmp_path: Path) -> None:
    rep = augment_dataset(damaged, tmp_path / "aug", RECIPE, copies=1, keep_original=True, on_error="skip",
                          progress=False)
    got = _members(tmp_path / "aug")
    assert not {k for k in got if k.split("_")[0] in DAMAGED}
    assert sorted(e["sample"] for e in rep["skipped"]) == sorted([*DAMAGED, *(f"{k}_aug0" for k in DAMAGED)])


def test_bare_shards_skip_damaged_samples(damaged: Path, tmp_path: Path) -> None:
    rep = augment_dataset(str(damaged / "train-*.tar"), tmp_path / "aug", RECIPE, on_error="skip", progress=False)
    assert sorted({e["source"] for e in rep["skipped"]}) == sorted(DAMAGED)
    assert not {k for k in _members(tmp_path / "aug") if k.split("_")[0] in DAMAGED}


def test_cli_skip_exits_0_and_says_what_it_left_out(damaged: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "aug.yaml"
    recipe.write_text("image:\n  - {op: hflip, p: 0.5}\n")
    args = ["augment", str(damaged), str(tmp_path / "aug"), "-r", str(recipe), "--copies", "1"]
    res = CliRunner().invoke(app, args)
    assert isinstance(res.exception, ShardError) and "cannot decode" in str(res.exception), res.output
    res = CliRunner().invoke(app, [*args, "--on-error", "skip"])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "skipped 3 samples, listed in dataset.json (skipped)" in out and "cannot decode" in out, out
    res = CliRunner().invoke(app, ["augment", str(damaged), str(tmp_path / "aug2"), "-r", str(recipe), "--copies", "2",
                                   "--on-error", "skip"])
    assert "skipped 6 samples of 3 source samples" in " ".join(res.output.split()), res.output


def test_undamaged_source_gives_the_same_bytes_with_skip(clean: Path, tmp_path: Path) -> None:
    def tree(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    augment_dataset(clean, tmp_path / "a" / "aug", RECIPE, copies=2, keep_original=True, progress=False)
    augment_dataset(clean, tmp_path / "b" / "aug", RECIPE, copies=2, keep_original=True, on_error="skip",
                    progress=False)
    a, b = tree(tmp_path / "a" / "aug"), tree(tmp_path / "b" / "aug")
    cards = [json.loads(t.pop("dataset.json")) for t in (a, b)]
    assert a == b  # every shard, the index and the shards table
    # the card records the option as given (QA: it said skip on a default raise run), and differs only there (and
    # in the command line that gives it)
    assert [c["options"].pop("on_error") for c in cards] == ["raise", "skip"]
    assert [len(c.pop("card_digests")) for c in cards][0] > 0  # the digests of options and command differ, as they do
    assert [c.pop("command").endswith("--on-error skip") for c in cards] == [False, True] and cards[0] == cards[1]


@pytest.mark.ray
def test_ray_skips_the_same_samples_with_the_same_bytes(damaged: Path, tmp_path: Path, ray_cluster) -> None:  # noqa: ANN001
    def tree(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    opts = dict(copies=2, keep_original=True, maxcount=5, on_error="skip", progress=False)
    local = augment_dataset(damaged, tmp_path / "local" / "aug", RECIPE, **opts)
    ray = augment_dataset(damaged, tmp_path / "ray" / "aug", RECIPE, executor="ray", **opts)
    assert sorted(ray["skipped"], key=json.dumps) == sorted(local["skipped"], key=json.dumps)
    assert len(local["skipped"]) == 3 * len(DAMAGED)
    a, b = tree(tmp_path / "local" / "aug"), tree(tmp_path / "ray" / "aug")
    assert sorted(a) == sorted(b) and [k for k in a if a[k] != b[k]] == []
    with pytest.raises(Exception, match="cannot decode"):
        augment_dataset(damaged, tmp_path / "ray2", RECIPE, executor="ray", progress=False)


@pytest.fixture(scope="module")
def cut(clean: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source with its second train shard cut in half (no end-of-archive marker)."""
    import shutil

    out = tmp_path_factory.mktemp("cut") / "ds"
    shutil.copytree(clean, out)
    shard = out / "train-000001.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    return out


@pytest.mark.parametrize("bare", [False, True])
def test_a_shard_cut_short_is_skipped_and_listed(cut: Path, tmp_path: Path, bare: bool) -> None:
    src = str(cut / "train-*.tar") if bare else cut
    with pytest.raises(ShardError, match="truncated"):
        augment_dataset(src, tmp_path / "r", RECIPE, progress=False)
    rep = augment_dataset(src, tmp_path / "aug", RECIPE, on_error="skip", progress=False)
    written = set(_members(tmp_path / "aug"))
    assert rep["samples"] == len(written) < 10 and rep["skipped"]
    for e in rep["skipped"]:
        assert "train-000001.tar" in e["reason"] and f"{e['source']}_aug0" not in written, e
    if not bare:  # the index names every sample lost
        assert len(written) + len(rep["skipped"]) == 10


@pytest.mark.ray
@pytest.mark.parametrize("bare", [False, True])
def test_ray_plans_a_shard_cut_short_as_locally(cut: Path, tmp_path: Path, bare: bool, ray_cluster) -> None:  # noqa: ANN001
    def tree(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    src = str(cut / "train-*.tar") if bare else cut
    opts = dict(copies=1, maxcount=3, on_error="skip", progress=False)
    local = augment_dataset(src, tmp_path / "local" / "aug", RECIPE, **opts)
    ray = augment_dataset(src, tmp_path / "ray" / "aug", RECIPE, executor="ray", **opts)
    assert ray["skipped"] == local["skipped"] and local["skipped"]
    a, b = tree(tmp_path / "local" / "aug"), tree(tmp_path / "ray" / "aug")
    assert sorted(a) == sorted(b) and [k for k in a if a[k] != b[k]] == []
