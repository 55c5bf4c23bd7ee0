"""`mmdata augment` (copies, determinism, verify-clean, params in the index) and `mmdata preview`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmdata
from mmdata.cli.main import app
from mmdata.errors import RecipeError
from mmdata.shards import index as idx
from mmdata.testing import make_sample_folder

RECIPE = Path(__file__).parents[2] / "recipes" / "avdigits.yaml"


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("off")
    mmdata.shard(make_sample_folder(root / "raw", n=10), root / "ds", split="train=0.8,val=0.2", progress=False)
    return root / "ds"


def _bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_augment_cli_copies_and_determinism(tmp_path: Path, ds: Path) -> None:
    runner = CliRunner()
    for name, extra in (("a", []), ("b", []), ("c", ["--workers", "2"])):
        res = runner.invoke(app, ["augment", str(ds), str(tmp_path / name / "aug"), "--recipe", str(RECIPE), "--copies", "2",
                                  "--keep-original", *extra])
        assert res.exit_code == 0, res.output
    a = _bytes(tmp_path / "a" / "aug")
    assert a == _bytes(tmp_path / "b" / "aug") == _bytes(tmp_path / "c" / "aug")
    out = tmp_path / "a" / "aug"
    assert mmdata.verify(out)["ok"]
    rows = idx.load_index(out).to_pylist()
    assert len(rows) == 30 and {r["split"] for r in rows} == {"train", "val"}
    keys = {r["key"] for r in rows}
    assert {"000000", "000000_aug0", "000000_aug1"} <= keys
    r = next(r for r in rows if r["key"] == "000001_aug1")
    params = json.loads(r["aug_params"])
    assert [p["op"] for p in params][:2] == ["image.random_crop", "image.rotate"] and r["aug_source"] == "000001"
    samples = {s.key: s for s in mmdata.open_dataset(out)}
    augmented = [s for k, s in samples.items() if "_aug" in k and "image" in s]  # modality_dropout may drop some
    assert augmented and all(s["image"].shape[-2:] == (16, 16) for s in augmented)  # random_crop size from the recipe


def test_augment_refuses_batch_ops(tmp_path: Path, ds: Path) -> None:
    with pytest.raises(RecipeError, match="batch"):
        from mmdata.augment.offline import augment_dataset

        augment_dataset(ds, tmp_path / "x", {"batch": [{"op": "mixup"}]}, progress=False)


def test_preview_png(tmp_path: Path, ds: Path) -> None:
    res = CliRunner().invoke(app, ["preview", str(ds), "--recipe", str(RECIPE), "--out", str(tmp_path / "g.png"), "--n", "3",
                                   "--variants", "2"])
    assert res.exit_code == 0, res.output
    from PIL import Image

    with Image.open(tmp_path / "g.png") as im:
        assert im.format == "PNG" and im.width > 300 and im.height > 400


def test_mark_changes() -> None:
    from mmdata.augment.preview import mark_changes

    assert mark_changes("one two three", "one three") == "one [-two-] three"
