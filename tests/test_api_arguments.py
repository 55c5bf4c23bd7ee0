"""Arguments of the public API (``open_dataset``, ``loader``, ``shard``, ``collate``, the Lightning
``DataModule``) are checked when the object is built: a wrong one raises naming the argument, what
was expected and what was given; one name where a list of names is expected is one name."""

from __future__ import annotations

import glob
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import mmdata
from mmdata.errors import MMDataError, RecipeError, ShardError, SourceError
from mmdata.testing import make_sample_folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A raw folder, a dataset with train / val / test (4 shards) and one with only train."""
    root = tmp_path_factory.mktemp("api_args")
    raw = make_sample_folder(root / "raw", n=12)
    mmdata.shard(raw, root / "ds", maxcount=4, split="train=0.5,val=0.25,test=0.25", progress=False)
    mmdata.shard(raw, root / "train_only", maxcount=4, progress=False)
    return {"root": root, "raw": raw, "ds": root / "ds", "train_only": root / "train_only"}


def _keys(it: Any) -> list[str]:
    return [s.key for s in it]


# ---- 1. one name is a list of one name, not its letters --------------------------------------------
def test_one_name_for_required_and_modalities_is_one_name(data: dict[str, Path]) -> None:
    ds = data["ds"]
    as_list = mmdata.open_dataset(ds, required=["audio"], on_error="skip")
    as_name = mmdata.open_dataset(ds, required="audio", on_error="skip")
    assert _keys(as_name) == _keys(as_list) != []
    assert as_name.skipped == as_list.skipped and set(as_name.skipped) == {"missing required modality"}
    assert as_name.required == ("audio",)

    only = list(mmdata.open_dataset(ds, modalities="image"))
    assert only and all(set(s.fields) == {"image", "label"} for s in only)  # the label kept (QA38 rv1 #6)

    batches = list(mmdata.loader(ds, 4, required="audio", on_error="skip", shuffle=False))
    want = list(mmdata.loader(ds, 4, required=["audio"], on_error="skip", shuffle=False))
    assert [b.keys for b in batches] == [b.keys for b in want] != []
    assert all(set(b.present) == {"image", "label"} for b in mmdata.loader(ds, 4, modalities="image"))  # QA38 C #8


def test_a_name_list_that_is_no_list_of_names_is_refused(data: dict[str, Path]) -> None:
    with pytest.raises(ShardError, match=r"modalities: expected a name or a list of names .*got 3"):
        mmdata.open_dataset(data["ds"], modalities=3)
    with pytest.raises(MMDataError, match=r"required: expected a name or a list of names .*got \[1\]"):
        mmdata.loader(data["ds"], 4, required=[1])


# ---- 2. pin_memory without an accelerator: warn and do not pin, as torch's DataLoader -----------------
def test_pin_memory_without_an_accelerator_warns_and_does_not_pin(data: dict[str, Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import mmdata.augment.loader as loader_module

    monkeypatch.setattr(loader_module, "_can_pin", lambda: False)  # the CPU-only case, on any machine
    with pytest.warns(UserWarning, match="pin_memory=True but no accelerator"):
        dl = mmdata.loader(data["ds"], 4, pin_memory=True)
    assert dl.pin_memory is False
    assert sum(len(b) for b in dl) == 6


def test_prefetch_without_workers_warns_that_it_does_nothing(data: dict[str, Path]) -> None:
    """QA25 A-6: ``prefetch=8`` with ``num_workers=0`` was accepted and silently ignored (torch's DataLoader
    refuses ``prefetch_factor`` without workers)."""
    with pytest.warns(UserWarning, match=r"prefetch=8 has no effect with num_workers=0") as caught:
        dl = mmdata.loader(data["ds"], 4, prefetch=8)
    assert caught[0].filename == __file__  # the caller's line
    assert sum(len(b) for b in dl) == 6
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default, and prefetch with workers, say nothing
        mmdata.loader(data["ds"], 4)
        assert mmdata.loader(data["ds"], 4, num_workers=1, prefetch=8).prefetch == 8


# ---- 3. wrong values name the argument, what it takes and what was given -----------------------------
@pytest.mark.parametrize(("kw", "error", "words"), [
    ({"batch_size": "4"}, MMDataError, ["batch_size: expected an integer >= 1", "got '4'", "not quoted text"]),
    ({"batch_size": 0}, MMDataError, ["batch_size: expected an integer >= 1", "got 0"]),
    ({"seed": "x"}, MMDataError, ["seed: expected an integer", "got 'x'"]),
    ({"num_workers": -1}, MMDataError, ["num_workers: expected an integer >= 0", "got -1"]),
    ({"prefetch": 0, "num_workers": 2}, MMDataError, ["prefetch: expected an integer >= 1", "got 0"]),
    ({"balance": "over"}, RecipeError, ["balance: expected a mapping", "'mode': 'over'", "got 'over'"]),
    ({"balance": {"mode": "upper"}}, RecipeError, ["balance.mode", "'upper'"]),
])
def test_loader_refuses_bad_arguments_when_built(data: dict[str, Path], kw: dict[str, Any], error: type[Exception],
                                                 words: list[str]) -> None:
    kw = {"batch_size": 4, **kw}
    with pytest.raises(error) as err:
        mmdata.loader(data["ds"], **kw)
    for w in words:
        assert w in str(err.value)


@pytest.mark.parametrize(("kw", "words"), [
    ({"buffer_size": 0, "shuffle": True}, ["buffer_size: expected an integer >= 1", "got 0"]),
    ({"image_max_size": "16"}, ["image_max_size: expected N or (height, width)", "got '16'"]),
    ({"image_max_size": (16, 0)}, ["image_max_size: expected N or (height, width)", "got (16, 0)"]),
    ({"max_member_bytes": "1M"}, ["max_member_bytes: expected an integer >= 1", "got '1M'", "2 * 1024**3"]),
    ({"seed": "x"}, ["seed: expected an integer", "got 'x'"]),
    ({"decode_threads": 1.5}, ["decode_threads: expected an integer >= 0", "got 1.5"]),
    ({"split": None}, ["split: expected a split name", "got None"]),
])
def test_open_dataset_refuses_bad_arguments_when_built(data: dict[str, Path], kw: dict[str, Any],
                                                       words: list[str]) -> None:
    with pytest.raises(ShardError) as err:
        mmdata.open_dataset(data["ds"], **kw)
    for w in words:
        assert w in str(err.value)


def test_image_max_size_takes_one_side_as_a_square(data: dict[str, Path]) -> None:
    ds = mmdata.open_dataset(data["ds"], image_max_size=16)
    assert ds.image_max_size == (16, 16)
    assert len(list(ds)) == 6


@pytest.mark.parametrize(("kw", "words"), [
    ({"maxcount": "5"}, ["maxcount: expected an integer >= 1", "got '5'", "not quoted text"]),
    ({"maxsize": "1M"}, ["maxsize: expected an integer >= 1 (bytes) or None", "got '1M'", "CLI only"]),
    ({"max_file_size": "2G"}, ["max_file_size: expected an integer >= 0 (bytes) or None", "got '2G'"]),
    ({"workers": 0}, ["workers: expected an integer >= 1", "got 0"]),
    ({"on_error": "ignore"}, ["on_error must be one of ('skip', 'raise', 'warn')", "got 'ignore'"]),
])
def test_shard_refuses_bad_arguments_before_reading(data: dict[str, Path], kw: dict[str, Any],
                                                    words: list[str]) -> None:
    out = data["root"] / "refused"
    with pytest.raises(SourceError) as err:
        mmdata.shard(data["raw"], out, progress=False, **kw)
    for w in words:
        assert w in str(err.value)
    assert not out.exists()


def test_shard_on_error_warn_skips_like_skip_and_warns(tmp_path: Path) -> None:
    raw = make_sample_folder(tmp_path / "raw", n=4, missing=False)
    png = sorted(raw.glob("*.png"))[1]
    png.write_bytes(png.read_bytes()[:40])  # truncated: the check leaves it out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skip = mmdata.shard(raw, tmp_path / "skip", on_error="skip", progress=False)
    with pytest.warns(UserWarning, match=r"skipped 1 source file\(s\) or sample\(s\): .*" + png.name):
        warn = mmdata.shard(raw, tmp_path / "warn", on_error="warn", progress=False)
    assert warn["skipped_counts"] == skip["skipped_counts"] and warn["samples"] == skip["samples"] == 4
    assert [e["reason"] for e in warn["skipped"]] == [e["reason"] for e in skip["skipped"]]
    assert _keys(mmdata.open_dataset(tmp_path / "warn")) == _keys(mmdata.open_dataset(tmp_path / "skip"))


def test_collate_names_what_it_expects() -> None:
    with pytest.raises(TypeError, match=r"collate\(\) expects a list of mmdata.Sample; item 0 has type int: 1"):
        mmdata.collate([1, 2])
    s = mmdata.Sample("a", {"label": 1})
    with pytest.raises(TypeError, match=r"got one Sample \(collate\(\[sample\]\) batches one\)"):
        mmdata.collate(s)
    with pytest.raises(TypeError, match="item 1 has type dict"):
        mmdata.collate([s, {"label": 2}])
    assert mmdata.collate([s]).keys == ["a"]


# ---- 4. errors come when opening, and name the function called --------------------------------------
def test_open_dataset_refuses_a_local_path_that_does_not_exist(data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ShardError, match=r"nope/: does not exist \(expected a dataset folder"):
        mmdata.open_dataset("nope/")
    with pytest.raises(ShardError, match=r"missing\.tar: does not exist"):
        mmdata.open_dataset([*sorted(glob.glob(str(data["ds"] / "train-*.tar"))), str(tmp_path / "missing.tar")])
    with pytest.raises(ShardError, match=r"none of its shards exists"):
        mmdata.open_dataset(str(tmp_path / "s-{000000..000003}.tar"))
    with pytest.raises(ShardError, match=r"does not exist"):
        mmdata.loader(tmp_path / "nope", 4)


def test_shard_patterns_and_urls_still_open(data: dict[str, Path]) -> None:
    brace = str(data["ds"] / "train-{000000..000001}.tar")
    assert len(_keys(mmdata.open_dataset(brace))) == 6
    assert len(_keys(mmdata.open_dataset(str(data["ds"] / "train-*.tar")))) == 6
    assert len(_keys(mmdata.open_dataset("file://" + str(data["ds"])))) == 6
    # a URL is not looked up when opened (a request per shard); its reader reports it
    assert mmdata.open_dataset("https://example.invalid/a-{0..1}.tar").shards == [
        "https://example.invalid/a-0.tar", "https://example.invalid/a-1.tar"]


def test_an_unknown_loader_keyword_names_loader_and_the_closest_name(data: dict[str, Path]) -> None:
    with pytest.raises(TypeError, match=r"^loader\(\) got an unexpected keyword argument 'shufle'; did you mean "
                                        r"'shuffle'\?$"):
        mmdata.loader(data["ds"], 4, shufle=False)
    with pytest.raises(TypeError, match=r"loader\(\) got an unexpected keyword argument 'buffersize'.*'buffer_size'"):
        mmdata.loader(data["ds"], 4, buffersize=8)


@pytest.mark.parametrize(("key", "instead"), [("persistent_workers", "starts its workers for each pass"),
                                              ("prefetch_factor", "prefetch="), ("collate_fn", "the loader collates"),
                                              ("generator", "seed=")])
def test_dataloader_options_the_loader_sets_itself_say_what_to_use(data: dict[str, Path], key: str,
                                                                   instead: str) -> None:
    """QA: persistent_workers= got "did you mean 'num_workers'?"."""
    with pytest.raises(TypeError, match=rf"^loader\(\) does not take '{key}': .*{re.escape(instead)}"):
        mmdata.loader(data["ds"], 4, **{key: True})


def _note_worker(worker_id: int) -> None:
    """A worker_init_fn importable by spawned workers: each worker leaves a mark its id names."""
    import os
    from pathlib import Path as P

    (P(os.environ["MMDATA_TEST_MARKS"]) / f"w{worker_id}").touch()


def test_the_loader_passes_the_workers_start_method_and_init_on(data: dict[str, Path], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """multiprocessing_context / worker_init_fn / timeout reach the DataLoader: spawned workers give the batches
    forked ones give (QA: the loader refused them)."""
    monkeypatch.setenv("MMDATA_TEST_MARKS", str(tmp_path))
    rec = {"image": [{"op": "hflip", "p": 0.5}]}

    def batches(**kw: Any) -> list[tuple[list[str], torch.Tensor]]:
        ld = mmdata.loader(data["ds"], 2, recipe=rec, seed=1, num_workers=2, **kw)
        return [(b.keys, b.data["image"]) for b in ld]

    ref = batches()
    got = batches(multiprocessing_context="spawn", worker_init_fn=_note_worker, timeout=120)
    assert [k for k, _ in got] == [k for k, _ in ref] and all(torch.equal(a, b) for (_, a), (_, b) in zip(got, ref))
    assert sorted(p.name for p in tmp_path.glob("w*")) == ["w0", "w1"]
    # checked when the loader is made, not at the first batch (second QA pass: 'x' gave "'<' not supported", a
    # bogus start method and a worker_init_fn of 3 failed in the workers, a start method without workers was ignored)
    for kw, said in (({"timeout": -1}, "timeout: seconds from 0"), ({"timeout": "x"}, "timeout: seconds from 0"),
                     ({"timeout": float("inf")}, "timeout: seconds from 0"), ({"timeout": 1e12}, "timeout: seconds from 0"),
                     ({"multiprocessing_context": "bogus"}, "multiprocessing_context: one of the start methods"),
                     ({"worker_init_fn": 3}, "worker_init_fn: a function"),
                     ({"multiprocessing_context": "spawn", "num_workers": 0}, "needs workers")):
        with pytest.raises(MMDataError, match=re.escape(said)):
            mmdata.loader(data["ds"], 2, **{"num_workers": 2, **kw})


# ---- 4 / 5. the Lightning DataModule ----------------------------------------------------------------
@pytest.fixture(scope="module")
def DataModule() -> Any:  # noqa: N802 - the class under test
    pytest.importorskip("lightning")
    from mmdata.lightning import DataModule

    return DataModule


def test_datamodule_refuses_at_construction(data: dict[str, Path], DataModule: Any) -> None:  # noqa: N803
    with pytest.raises(ShardError, match="nope: does not exist"):
        DataModule("nope")
    with pytest.raises(TypeError, match=r"^DataModule\(\) got an unexpected keyword argument 'recipes'; did you mean "
                                        r"'recipe'"):
        DataModule(data["ds"], recipes={})
    with pytest.raises(TypeError, match=r"DataModule\(\) does not take 'shuffle'"):
        DataModule(data["ds"], shuffle=False)
    with pytest.raises(MMDataError, match=r"timeout: seconds from 0"):  # at construction, not inside trainer.fit
        DataModule(data["ds"], timeout=-1)
    with pytest.raises(MMDataError, match="batch_size: expected an integer >= 1, got '4'"):
        DataModule(data["ds"], batch_size="4")
    with pytest.raises(RecipeError, match="balance: expected a mapping"):
        DataModule(data["ds"], balance="over")
    with pytest.raises(RecipeError):
        DataModule(data["ds"], recipe={"imag": [{"op": "hflip"}]})


def test_datamodule_refuses_a_split_name_the_dataset_lacks(data: dict[str, Path], DataModule: Any) -> None:  # noqa: N803
    with pytest.raises(ShardError, match=r"no split 'validation' \(val_split\); it has \['test', 'train', 'val'\]"):
        DataModule(data["ds"], batch_size=4, val_split="validation")
    with pytest.raises(ShardError, match=r"no split 'tst' \(test_split\)"):
        DataModule(data["ds"], batch_size=4, test_split="tst")
    with pytest.raises(ShardError, match=r"no split 'trian' \(train_split\)"):
        DataModule(data["ds"], batch_size=4, train_split="trian")
    dm = DataModule(data["ds"], batch_size=4)
    dm.val_split = "validation"  # set after construction: the loader raises, no silent []
    with pytest.raises(ShardError, match="no split 'validation'"):
        dm.val_dataloader()


def test_datamodule_default_splits_may_be_absent(data: dict[str, Path], DataModule: Any) -> None:  # noqa: N803
    dm = DataModule(data["train_only"], batch_size=4)
    assert dm.val_dataloader() == [] and dm.test_dataloader() == []
    assert sum(len(b) for b in dm.train_dataloader()) == 12
    dm = DataModule(data["ds"], batch_size=4, val_split=None, test_split="test", modalities="label")
    assert dm.val_dataloader() == []
    assert [set(b.present) for b in dm.test_dataloader()] == [{"label"}]
    assert DataModule(data["ds"], batch_size=4, val_split="val").val_dataloader()  # given and present
