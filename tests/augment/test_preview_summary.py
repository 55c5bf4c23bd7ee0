"""`mmdata preview` says in text what its PNG shows (accessibility QA, 2026-12).

Before, ``mmdata preview DS -r RECIPE -o prev.png`` printed only ``wrote prev.png``: a screen reader's user
or a script learnt nothing of which samples were drawn, from which class, which ops fired in each variant
with which params, or what was dropped. And the PNG's row titles cut keys at 22 characters
(``batch_A_20…12_a9d1885a``) and never named the file a key was made from (``Batch_B__18_5934f799`` for
``样本_18``). Now ``--json`` prints the rows as JSON, a plain run lists them after ``wrote``, ``-o -`` keeps
that listing on stderr (stdout is the PNG), and a row's title shows its whole key where it fits and its
source key where the key does not show it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import mmdata
from mmdata.augment.recipe import load_recipe, params_seed
from mmdata.shards.index import load_index
from mmdata.testing import make_messy_folder
from mmdata.types import Sample

CLI = [sys.executable, "-m", "mmdata.cli.main"]
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "messy_folder.yaml"
PNG = b"\x89PNG\r\n\x1a\n"
N, VARIANTS, SEED = 6, 2, 3


def _mmdata(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], capture_output=True, cwd=cwd, stdin=subprocess.DEVNULL, timeout=300)


def _strict_json(text: str) -> Any:
    """JSON as jq reads it: ``NaN`` / ``Infinity`` are errors."""
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("summary")
    make_messy_folder(root / "raw", n=40)
    res = _mmdata("shard", str(root / "raw"), str(root / "ds"), "--split", "train=0.7,val=0.15,test=0.15", cwd=root)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    return root / "ds"


@pytest.fixture(scope="module")
def shown(ds: Path) -> dict[str, Any]:
    """``preview --json`` of the messy dataset's train split."""
    res = _mmdata("preview", str(ds), "-r", str(RECIPE), "-o", str(ds.parent / "p.png"), "--n", str(N), "--variants",
                  str(VARIANTS), "--seed", str(SEED), "--json", cwd=ds.parent)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    return _strict_json(res.stdout.decode("utf-8"))


def _fired(log: list[dict[str, Any]], normalize: bool) -> list[dict[str, Any]]:
    """The logged ops that fired, of the normalize stage or of the random sections, as the summary lists them."""
    out = []
    for e in log:
        params = dict(e["params"])
        if not params.pop("applied", True) or e["op"].startswith("normalize.") != normalize:
            continue
        section, _, op = e["op"].rpartition(".")
        out.append({"section": section, "op": op, "id": e["id"], "params": params})
    return json.loads(json.dumps(out))  # as JSON has them (tuples as lists)


def test_json_names_each_row_and_the_ops_drawn_for_it(ds: Path, shown: dict[str, Any]) -> None:
    assert Path(shown["png"]).read_bytes().startswith(PNG)
    assert shown["split"] == "train" and shown["seed"] == SEED and shown["skipped"] == []
    index = {r["key"]: r for r in load_index(ds).to_pylist()}
    names = json.loads((ds / "dataset.json").read_text(encoding="utf-8"))["label_names"]
    rows = shown["samples"]
    assert [r["row"] for r in rows] == list(range(1, N + 1))
    assert len({r["key"] for r in rows}) == N
    rec = load_recipe(RECIPE)
    rec = rec.with_seed(params_seed(rec.seed, SEED))  # as the preview and the loader combine the seeds
    samples = {s.key: s for s in mmdata.open_dataset(ds, split="train", keys=[r["key"] for r in rows])}
    fired_any = 0
    for r in rows:
        entry = index[r["key"]]  # a key of the dataset, in the split shown
        assert entry["split"] == "train" and r["source_key"] == entry["source_key"]
        assert r["label"] == entry["label"]
        assert r["class"] == (names[entry["label"]] if entry["label"] is not None else None)
        s = samples[r["key"]]
        s = Sample(s.key, s.fields, s.sample_rate)
        assert r["normalize"] == _fired(rec.normalize(s).meta["aug"], True)
        assert [v["epoch"] for v in r["variants"]] == list(range(VARIANTS))
        for v in r["variants"]:
            out = rec.apply_sample(s, epoch=v["epoch"])
            assert v["ops"] == _fired(out.meta["aug"], False), (r["key"], v["epoch"])
            assert v["dropped"] == [m for m in ("image", "audio", "text") if m in s and m not in out]
            fired_any += len(v["ops"])
    assert fired_any  # the recipe did something to show


def test_the_listing_names_every_row_drawn(ds: Path, shown: dict[str, Any]) -> None:
    res = _mmdata("preview", str(ds), "-r", str(RECIPE), "-o", str(ds.parent / "q.png"), "--n", str(N), "--variants",
                  str(VARIANTS), "--seed", str(SEED), cwd=ds.parent)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    lines = res.stdout.decode("utf-8").splitlines()
    assert lines[0].startswith("wrote ") and lines[0].endswith("q.png")
    heads = [line for line in lines if line.startswith("row ")]
    assert len(heads) == N
    for r, head in zip(shown["samples"], heads):
        assert head.startswith(f"row {r['row']}: {r['key']}")
        if r["source_key"] != r["key"]:
            assert f"(from {r['source_key']})" in head
        if r["class"] is not None:
            assert f"class {r['class']}" in head
    variants = [line.strip() for line in lines if line.startswith("  epoch ")]
    assert len(variants) == N * VARIANTS
    ops = [f"{op['section']}.{op['op']}" for r in shown["samples"] for v in r["variants"] for op in v["ops"]]
    text = "\n".join(variants)
    assert all(op in text for op in ops)


def test_png_on_stdout_keeps_the_listing_on_stderr(ds: Path, shown: dict[str, Any], tmp_path: Path) -> None:
    args = ["preview", str(ds), "-r", str(RECIPE), "-o", "-", "--n", str(N), "--variants", str(VARIANTS),
            "--seed", str(SEED)]
    res = _mmdata(*args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    assert res.stdout.startswith(PNG) and res.stdout.endswith(b"IEND\xaeB`\x82")
    err = res.stderr.decode("utf-8")
    assert all(f"row {r['row']}: {r['key']}" in err for r in shown["samples"])
    # the same grid as the file the --json run wrote
    assert res.stdout == Path(shown["png"]).read_bytes()
    refused = _mmdata(*args, "--json", cwd=tmp_path)
    assert refused.returncode == 2 and not refused.stdout.startswith(PNG)
    doc = _strict_json(refused.stdout.decode("utf-8"))
    assert doc["ok"] is False and "--json" in doc["error"] and "--out -" in doc["error"]


def test_row_titles_show_whole_keys_and_their_source(ds: Path, shown: dict[str, Any], tmp_path: Path) -> None:
    from mmdata.augment.preview import figure_style, preview, preview_figure

    with figure_style():
        fig = preview_figure(ds, RECIPE, n=N, variants=VARIANTS, seed=SEED)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title().endswith("(original)")]
    assert len(titles) == N
    for r, title in zip(shown["samples"], titles):
        key_line = title.split("\n")[0].removesuffix(" (original)")
        if "…" in key_line:  # cut in the middle, only where it does not fit: its start and its hash suffix stay
            assert len(r["key"]) > 30 and key_line.startswith(r["key"][:8]) and key_line.endswith(r["key"][-8:]), title
        else:  # whole (before: cut at 22 characters)
            assert key_line == r["key"], title
        if r["source_key"] and "样本" in r["source_key"]:  # a key that lost the file's name shows it
            assert "样本" in title, title
    assert any(r["source_key"] and "样本" in r["source_key"] for r in shown["samples"])
    a = preview(ds, RECIPE, tmp_path / "a.png", n=N, variants=VARIANTS, seed=SEED).read_bytes()
    assert a == Path(shown["png"]).read_bytes()  # deterministic: the same inputs, the same bytes
