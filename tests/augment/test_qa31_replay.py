"""QA31 (plugin author): what a plugin op's ``move_map`` returns is checked at run time (D2); a replay log
records where each op from outside mmdata came from and warns when it changed (D4); ``save_log`` refuses rows
that are not ``log_rows`` output and ``load_log`` names the row of a bad params cell (D13); an op refuses a
sample with ``ShardError`` (D10)."""

from __future__ import annotations

import importlib
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from mmdata import Sample, collate
from mmdata.augment import replay
from mmdata.augment.contract import OpError
from mmdata.augment.image import ImageOp
from mmdata.augment.recipe import load_recipe
from mmdata.augment.replay import load_log, log_rows, save_log
from mmdata.errors import MMDataError
from mmdata.testing import restored_registry


@pytest.fixture(autouse=True)
def _registry_restored() -> Any:
    with restored_registry():
        yield


def _sample(dtype: torch.dtype = torch.uint8) -> Sample:
    return Sample("k", {"image": torch.zeros(3, 8, 6, dtype=torch.uint8), "seg.png": torch.zeros(1, 8, 6, dtype=dtype)})


SEG = {"seed": 0, "targets": {"seg.png": "mask"}}


def _moving_ops() -> None:
    class QCrop(ImageOp):  # crops 2 rows; its move_map (the bug) crops 1
        name = "qa31_crop"
        moves_pixels = True

        def sample_params(self, rng, s):
            return {}

        def kernel(self, a, p):
            return np.ascontiguousarray(a[2:])

        def move_map(self, arr, params, fill):
            return np.ascontiguousarray(arr[1:])

    class QFlipBad(ImageOp):  # move_map drops the K axis (the bug)
        name = "qa31_flipbad"
        moves_pixels = True

        def sample_params(self, rng, s):
            return {}

        def kernel(self, a, p):
            return np.ascontiguousarray(a[::-1])

        def move_map(self, arr, params, fill):
            return np.ascontiguousarray(arr[::-1])[..., 0]

    class QFloat(ImageOp):  # move_map returns float32 (the bug)
        name = "qa31_float"
        moves_pixels = True

        def sample_params(self, rng, s):
            return {}

        def kernel(self, a, p):
            return np.ascontiguousarray(a[::-1])

        def move_map(self, arr, params, fill):
            return np.ascontiguousarray(arr[::-1]).astype(np.float32)

    class QTensor(ImageOp):  # move_map returns a tensor (the bug)
        name = "qa31_tensor"
        moves_pixels = True

        def sample_params(self, rng, s):
            return {}

        def kernel(self, a, p):
            return np.ascontiguousarray(a[::-1])

        def move_map(self, arr, params, fill):
            return torch.from_numpy(np.ascontiguousarray(arr[::-1]))

    class QGood(ImageOp):  # a correct vertical flip, for the paths that must still work
        name = "qa31_vflip"
        moves_pixels = True

        def sample_params(self, rng, s):
            return {}

        def kernel(self, a, p):
            return np.ascontiguousarray(a[::-1])

        def move_map(self, arr, params, fill):
            return arr[::-1]


BAD = [("qa31_crop", "shape (7, 6, 1)", "(6, 6, 1)"), ("qa31_flipbad", "shape (8, 6)", "(8, 6, 1)"),
       ("qa31_float", "float32", "uint8"), ("qa31_tensor", "torch.Tensor", "numpy")]


@pytest.mark.parametrize("op,got,want", BAD, ids=[b[0] for b in BAD])
def test_d2_a_bad_move_map_is_an_op_error_naming_step_op_sample_and_target(op: str, got: str, want: str) -> None:
    _moving_ops()
    rec = load_recipe({**SEG, "image": [{"op": "hflip", "p": 0.0}, {"op": op}]})
    with pytest.raises(OpError) as info:
        rec.apply_sample(_sample(), epoch=0)
    msg = str(info.value)
    assert f"image[1] (op image.{op}, class " in msg and "sample 'k'" in msg and "'seg.png'" in msg, msg
    assert "move_map" in msg and got in msg and want in msg, msg


@pytest.mark.parametrize("op,got,want", BAD[:3], ids=[b[0] for b in BAD[:3]])
def test_d2_batched_and_replayed_runs_check_move_map_too(op: str, got: str, want: str) -> None:
    _moving_ops()
    rec = load_recipe({**SEG, "image": [{"op": op}]})
    b = collate([_sample(), Sample("k2", _sample().fields)])
    with pytest.raises(OpError) as info:
        rec.apply_batched(b, 0)
    assert f"image[0] (op image.{op}" in str(info.value) and "'seg.png'" in str(info.value) and got in str(info.value)
    with pytest.raises(OpError) as info:
        rec.replay(_sample(), [{"op": f"image.{op}", "id": f"image.{op}#0", "index": 0, "params": {"applied": True}}])
    assert f"image[0] (op image.{op}" in str(info.value) and "sample 'k'" in str(info.value) and got in str(info.value)


def test_d2_a_correct_move_map_and_the_builtins_still_move_targets() -> None:
    _moving_ops()
    s = _sample(torch.int32)
    s = s.with_fields(**{"seg.png": torch.arange(48, dtype=torch.int32).reshape(1, 8, 6)})
    rec = load_recipe({**SEG, "normalize": {"image": [{"op": "center_crop", "size": [4, 4]}]},
                       "image": [{"op": "qa31_vflip"}]})
    out = rec.apply_sample(s, epoch=0)
    assert out["seg.png"].dtype == torch.int32 and tuple(out["seg.png"].shape) == (1, 4, 4)
    assert torch.equal(out["seg.png"], s["seg.png"][:, 2:6, 1:5].flip(1))
    assert torch.equal(rec.replay(s, out.meta["aug"])["seg.png"], out["seg.png"])
    n = rec.normalize(s)  # apply_batched runs the random sections only
    b = rec.apply_batched(collate([n, Sample("k2", n.fields)]), 0)
    assert torch.equal(b["seg.png"][0], out["seg.png"])


# -- D4: provenance of plugin ops in replay logs ---------------------------------------------------------

POST = '''import numpy as np
from mmdata.augment.image import ImageOp
class P(ImageOp):
    name = "qa31_post"
{version}    def sample_params(self, rng, s): return {{"b": int(rng.integers(2, 7))}}
    def kernel(self, a, p): return {body}((a >> (8 - p["b"])) << (8 - p["b"])).astype(np.uint8)
'''


def _plugin(tmp_path: Path, body: str = "", version: str = "") -> Any:
    """The module ``qa31_post`` (in tmp_path), imported or reloaded with this source."""
    path = tmp_path / "qa31_post.py"
    path.write_text(POST.format(body=body, version=f"    version = {version}\n" if version else ""))
    if str(tmp_path) not in sys.path:
        sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    mod = sys.modules.get("qa31_post")
    return importlib.reload(mod) if mod is not None else importlib.import_module("qa31_post")


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Any:
    yield tmp_path
    sys.modules.pop("qa31_post", None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


S = Sample("k", {"image": torch.arange(192, dtype=torch.uint8).reshape(3, 8, 8)})
REC = {"seed": 0, "image": [{"op": "qa31_post"}]}


def _write(tmp_path: Path) -> tuple[Path, Sample]:
    out = load_recipe(REC).apply_sample(S, epoch=0)
    save_log(tmp_path / "log.parquet", log_rows("k", out.meta["aug"], 0))
    return tmp_path / "log.parquet", out


def test_d4_a_log_records_a_plugin_ops_provenance(plugin_dir: Path) -> None:
    _plugin(plugin_dir, version="3")
    path, _ = _write(plugin_dir)
    meta = pq.read_schema(path).metadata
    assert meta[replay.FORMAT_KEY] == b"3"
    prov = json.loads(meta[replay.PROVENANCE_KEY])
    assert set(prov) == {"image.qa31_post"}  # mmdata's own ops are not listed: KERNELS covers them
    got = prov["image.qa31_post"]
    assert got["module"] == "qa31_post" and got["version"] == 3 and got["distribution"] is None
    assert got["distribution_version"] is None and len(got["source_sha256"]) == 16


def test_d4_a_changed_plugin_op_warns_at_load_and_replay(plugin_dir: Path) -> None:
    _plugin(plugin_dir)
    path, out = _write(plugin_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log = load_log(path)  # the same code: no warning
        assert torch.equal(load_recipe(REC).replay(S, log[("k", 0)])["image"], out["image"])
    _plugin(plugin_dir, body="255 - ")  # v2 inverts its output
    with pytest.warns(UserWarning, match=r"image\.qa31_post .*source") as rec:
        log = load_log(path)
    assert str(path) in str(rec[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # load_log said it, of this same class
        load_recipe(REC).replay(S, log[("k", 0)])
    _plugin(plugin_dir, body="254 - ")  # changed again since load_log read the log
    with pytest.warns(UserWarning, match=r"Recipe\.replay: op image\.qa31_post"):
        load_recipe(REC).replay(S, log[("k", 0)])


def test_d4_a_bumped_version_warns_and_names_both(plugin_dir: Path) -> None:
    _plugin(plugin_dir, version="1")
    path, _ = _write(plugin_dir)
    _plugin(plugin_dir, version="2")
    with pytest.warns(UserWarning, match=r"version 1 .*version 2|version: 1 -> 2"):
        load_log(path)


def test_d4_load_before_the_plugin_is_imported_then_replay_warns(plugin_dir: Path) -> None:
    _plugin(plugin_dir)
    path, _ = _write(plugin_dir)
    from mmdata.augment.base import _REGISTRY

    _REGISTRY.pop(("image", "qa31_post"))  # not registered when the log is read
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log = load_log(path)
    _plugin(plugin_dir, body="255 - ")
    with pytest.warns(UserWarning, match=r"image\.qa31_post"):
        load_recipe(REC).replay(S, log[("k", 0)])


def test_d4_the_distribution_is_recorded(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "_distribution", lambda module: ("mmdata-qa31", "0.1") if module == "qa31_post" else (None, None))
    _plugin(plugin_dir)
    path, _ = _write(plugin_dir)
    got = json.loads(pq.read_schema(path).metadata[replay.PROVENANCE_KEY])["image.qa31_post"]
    assert (got["distribution"], got["distribution_version"]) == ("mmdata-qa31", "0.1")
    monkeypatch.setattr(replay, "_distribution", lambda module: ("mmdata-qa31", "0.2") if module == "qa31_post" else (None, None))
    with pytest.warns(UserWarning, match=r"mmdata-qa31 0\.1.*0\.2"):
        load_log(path)


def test_d4_logs_of_before_and_of_builtins_load_without_a_warning(plugin_dir: Path) -> None:
    _plugin(plugin_dir)
    path, _ = _write(plugin_dir)
    table = pq.read_table(path)
    meta = {k: v for k, v in table.schema.metadata.items() if k != replay.PROVENANCE_KEY}
    meta[replay.FORMAT_KEY] = b"2"
    pq.write_table(table.replace_schema_metadata(meta), plugin_dir / "old.parquet")  # written before today
    _plugin(plugin_dir, body="255 - ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log = load_log(plugin_dir / "old.parquet")
        load_recipe(REC).replay(S, log[("k", 0)])
        rec = load_recipe({"seed": 0, "image": [{"op": "hflip"}]})
        save_log(plugin_dir / "own.parquet", log_rows("k", rec.apply_sample(S).meta["aug"], 0))
        assert replay.PROVENANCE_KEY not in pq.read_schema(plugin_dir / "own.parquet").metadata
        assert load_log(plugin_dir / "own.parquet")[("k", 0)] == [
            {"op": "image.hflip", "id": "image.hflip#0", "index": 0, "params": {"applied": True}}]


def test_d4_a_plugin_op_inside_a_composite_is_recorded_with_the_recipe(plugin_dir: Path) -> None:
    _plugin(plugin_dir)
    rec = load_recipe({"seed": 0, "image": [{"op": "one_of", "ops": [{"op": "qa31_post"}, {"op": "hflip"}]}]})
    out = rec.apply_sample(S)
    save_log(plugin_dir / "c.parquet", log_rows("k", out.meta["aug"], 0), recipe=rec)
    assert set(json.loads(pq.read_schema(plugin_dir / "c.parquet").metadata[replay.PROVENANCE_KEY])) == {"image.qa31_post"}


# -- D13: rows that are not log_rows output; bad params cells -------------------------------------------

def test_d13_save_log_refuses_rows_that_are_not_log_rows_output(tmp_path: Path) -> None:
    with pytest.raises(MMDataError, match=r"row 0 .*missing .*'applied'.*log_rows\(key, sample.meta\['aug'\], epoch\)"):
        save_log(tmp_path / "bad.parquet", [{"key": "k", "epoch": 0, "aug": [{"op": "image.hflip",
                                                                             "params": {"applied": True}}]}])
    good = log_rows("k", [{"op": "image.hflip", "id": "image.hflip#0", "index": 0, "params": {"applied": True}}], 0)
    with pytest.raises(MMDataError, match=r"row 1: params is a dict.*JSON"):
        save_log(tmp_path / "bad.parquet", [*good, {**good[0], "seq": 1, "params": {"applied": True}}])
    with pytest.raises(MMDataError, match=r"row 0 .*not a mapping"):
        save_log(tmp_path / "bad.parquet", [("k", 0)])
    assert not (tmp_path / "bad.parquet").exists()


def test_d13_load_log_names_the_file_and_row_of_a_bad_params_cell(tmp_path: Path) -> None:
    import pyarrow as pa

    good = log_rows("k", [{"op": "image.hflip", "id": "image.hflip#0", "index": 0, "params": {"applied": True}}], 0)
    save_log(tmp_path / "ok.parquet", good * 3)
    table = pq.read_table(tmp_path / "ok.parquet")
    for cell, why in ((None, "null"), ("{not json", "not JSON"), ("[1, 2]", "not a JSON object")):
        params = pa.array(['{"applied": true}', '{"applied": true}', cell], pa.string())
        bad = table.set_column(table.column_names.index("params"), "params", params)
        pq.write_table(bad, tmp_path / "bad.parquet")
        with pytest.raises(MMDataError, match=r"bad\.parquet.*row 2 \(key 'k', epoch 0, op image\.hflip\).*" + why):
            load_log(tmp_path / "bad.parquet")


# -- D10: an op refuses a sample with ShardError; the reason keeps the step ----------------------------

def test_d10_refusal_keeps_the_step_that_raised_it() -> None:
    from mmdata.augment.recipe import refusal
    from mmdata.errors import ShardError

    class DropDark(ImageOp):
        name = "qa31_drop_dark"

        def kernel(self, arr, params):
            raise ShardError("too dark")

    with pytest.raises(ShardError) as info:
        load_recipe({"image": [{"op": "qa31_drop_dark"}]}).apply_sample(_sample(), epoch=0)
    assert str(info.value) == "too dark"  # the exception itself is as raised (its note says the step)
    assert refusal(info.value).startswith("too dark (in recipe step image[0] (op image.qa31_drop_dark, class ")
    assert refusal(info.value).endswith(".DropDark))")  # the skip record names the sample (its key)
    assert refusal(ShardError("sample 'k': target 'seg.png' has shape [1, 4, 4]")) == \
        "sample 'k': target 'seg.png' has shape [1, 4, 4]"  # not raised in an op: as it was


# -- D10: the skip reason of a sample an op refuses names the step (patch replay-2: loader, offline, preview) --

def test_d10_a_refusal_is_skipped_and_its_skip_reason_names_the_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mmdata
    from mmdata.augment.offline import sample_copies
    from mmdata.augment.preview import preview_figure
    from mmdata.errors import ShardError
    from mmdata.shards.sources import SKIP_REASON
    from mmdata.testing import make_sample_folder

    class DropDark(ImageOp):
        name = "qa31_drop_dark"

        def kernel(self, arr, params):
            if arr.mean() < 128:
                raise ShardError(f"mean pixel value {arr.mean():.1f} < 128")
            return arr

    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(make_sample_folder("raw", n=8), "ds", progress=False)
        recipe = {"image": [{"op": "qa31_drop_dark"}]}
        step = "in recipe step image[0] (op image.qa31_drop_dark, class "
        loader = mmdata.loader("ds", 4, recipe=recipe, on_error="skip", num_workers=0)
        kept = sum(len(b.keys) for b in loader)
        refused = loader.skipped.get("refused by the recipe", 0)
        assert kept and refused and all(step in e[2] and "< 128" in e[2] for e in loader.errors), loader.errors
        skipped: list[dict[str, Any]] = []
        preview_figure("ds", recipe, n=2, variants=1, on_error="skip", skipped=skipped)
        assert skipped and all(s["reason"].startswith("refused by the recipe: mean pixel value") and step in s["reason"]
                               for s in skipped), skipped
        dark = next(s for s in mmdata.open_dataset("ds", shuffle=False) if s["image"].float().mean() < 128)
        recs = list(sample_copies(dark, load_recipe(recipe), 1, False, "train", on_error="skip"))
        assert step in recs[0].extra[SKIP_REASON], recs[0].extra
        with pytest.raises(ValueError):  # any other exception stops the job, with the note
            class Boom(ImageOp):
                name = "qa31_boom"

                def kernel(self, arr, params):
                    raise ValueError("kaboom")

            for _ in mmdata.loader("ds", 4, recipe={"image": [{"op": "qa31_boom"}]}, on_error="skip", num_workers=0):
                pass


# -- review of the QA31 replay fixes -------------------------------------------------------------------------

def _shrink() -> None:
    class QShrink(ImageOp):  # makes the image 2 rows shorter, without moves_pixels (the bug)
        name = "qa31_shrink"

        def sample_params(self, rng, s):
            return {}

        def kernel(self, a, p):
            return np.ascontiguousarray(a[2:])


def test_review3_batched_refuses_a_resizing_op_without_moves_pixels_as_per_sample_does() -> None:
    _shrink()
    rec = load_recipe({**SEG, "image": [{"op": "qa31_shrink"}]})
    for run in (lambda: rec.apply_sample(_sample(), epoch=0),
                lambda: rec.apply_batched(collate([_sample(), Sample("k2", _sample().fields)]), 0)):
        with pytest.raises(OpError, match=r"image\[0\] \(op image\.qa31_shrink, class .*sample 'k'.*'seg\.png' is 8x6 "
                                          r"after this step, the image 6x6.*moves_pixels = True"):
            run()
    ok = load_recipe({**SEG, "image": [{"op": "qa31_shrink", "p": 0.0}, {"op": "hflip"}]})  # not applied: fine
    b = ok.apply_batched(collate([_sample(), Sample("k2", _sample().fields)]), 0)
    assert tuple(b["seg.png"].shape) == (2, 1, 8, 6)


def test_review4_a_size_mismatch_inside_a_composite_names_the_child() -> None:
    _moving_ops()
    rec = load_recipe({**SEG, "image": [{"op": "one_of", "ops": [{"op": "qa31_crop"}]}]})
    log = rec.apply_sample(Sample("k", {"image": _sample()["image"]}), epoch=0).meta["aug"]
    runs = (lambda: rec.apply_sample(_sample(), epoch=0),
            lambda: rec.apply_batched(collate([_sample(), Sample("k2", _sample().fields)]), 0),
            lambda: rec.replay(_sample(), log))
    for run in runs:
        with pytest.raises(OpError, match=r"image\[0\]\.ops\[0\] \(op image\.qa31_crop, class .*sample 'k'.*move_map "
                                          r"returned shape \(7, 6, 1\)"):
            run()


def test_review1_a_plugin_op_inside_a_composite_is_recorded_by_the_documented_call(plugin_dir: Path) -> None:
    _plugin(plugin_dir)
    spec = {"seed": 0, "image": [{"op": "one_of", "ops": [{"op": "some_of", "ops": [{"op": "qa31_post"}]}]},
                                 {"op": "one_of", "ops": [{"op": "hflip"}]}]}
    out = load_recipe(spec).apply_sample(S)
    assert out.meta["aug"][0]["plugin_ops"] == ["image.qa31_post"] and "plugin_ops" not in out.meta["aug"][1]
    path = plugin_dir / "c.parquet"
    save_log(path, log_rows("k", out.meta["aug"], 0))  # as README / extending.md show it: no recipe=
    assert set(json.loads(pq.read_schema(path).metadata[replay.PROVENANCE_KEY])) == {"image.qa31_post"}
    assert pq.read_schema(path).names == list(replay.COLUMNS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log = load_log(path)
        assert torch.equal(load_recipe(spec).replay(S, log[("k", 0)])["image"], out["image"])
    _plugin(plugin_dir, body="255 - ")
    with pytest.warns(UserWarning, match=r"image\.qa31_post .*source"):
        load_log(path)
    rec = load_recipe({"seed": 0, "image": [{"op": "one_of", "ops": [{"op": "hflip"}]}]})
    assert "plugin_ops" not in rec.apply_sample(S).meta["aug"][0]  # mmdata's own composites log as before


def _rewrite(path: Path, to: Path, **changed: Any) -> Path:
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    prov = json.loads(meta[replay.PROVENANCE_KEY])
    prov["image.qa31_post"].update(changed)
    meta[replay.PROVENANCE_KEY] = json.dumps(prov).encode()
    pq.write_table(table.replace_schema_metadata(meta), to)
    return to


def test_review2_an_unknown_digest_or_a_module_rename_of_the_same_source_is_no_change(plugin_dir: Path,
                                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _plugin(plugin_dir)
    path, _ = _write(plugin_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_log(_rewrite(path, plugin_dir / "a.parquet", source_sha256=None))  # written from stdin / a notebook
        load_log(_rewrite(path, plugin_dir / "b.parquet", module="__main__"))  # written running it as a script
    with pytest.warns(UserWarning, match=r"module: __main__ -> qa31_post"):  # no digest: the module says it
        load_log(_rewrite(path, plugin_dir / "c.parquet", module="__main__", source_sha256=None))
    monkeypatch.setattr(replay, "_digest", lambda cls: None)  # read from stdin: its source is not available
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log = load_log(path)
        load_recipe(REC).replay(S, log[("k", 0)])


def test_review6_a_recipe_checks_each_log_it_replays(plugin_dir: Path) -> None:
    _plugin(plugin_dir)
    first, _ = _write(plugin_dir)
    second = _rewrite(first, plugin_dir / "other.parquet", version=7)  # written by other plugin code
    rec = load_recipe(REC)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log = load_log(first)
        rec.replay(S, log[("k", 0)])
        rec.replay(S, log[("k", 0)])
    from mmdata.augment.base import _REGISTRY

    cls = _REGISTRY.pop(("image", "qa31_post"))  # not registered when load_log reads it: Recipe.replay says it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log2 = load_log(second)
    _REGISTRY[("image", "qa31_post")] = cls
    with pytest.warns(UserWarning, match=r"Recipe\.replay: op image\.qa31_post .*version: 7 -> None"):
        rec.replay(S, log2[("k", 0)])


def test_review7_save_log_refuses_params_not_an_object_a_key_not_a_str_and_names_a_bad_epoch(tmp_path: Path) -> None:
    good = log_rows("k", [{"op": "image.hflip", "id": "image.hflip#0", "index": 0, "params": {"applied": True}}], 0)[0]
    for change, why in (({"params": "nope"}, r"params is not JSON"), ({"params": "null"}, r"params is not a JSON object \(a NoneType\)"),
                        ({"key": None}, r"key is a NoneType"), ({"epoch": "0"}, r"epoch is '0' \(a str\); expected an int")):
        with pytest.raises(MMDataError, match=r"save_log: row 1 \(key .*op image\.hflip\): " + why):
            save_log(tmp_path / "bad.parquet", [good, {**good, **change}])
    assert not (tmp_path / "bad.parquet").exists()


def test_review_the_source_digest_is_computed_once_per_class(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    calls = []
    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource", lambda obj: calls.append(obj) or real(obj))
    _plugin(plugin_dir)
    path, _ = _write(plugin_dir)
    load_recipe(REC).replay(S, load_log(path)[("k", 0)])
    assert len(calls) == 1
