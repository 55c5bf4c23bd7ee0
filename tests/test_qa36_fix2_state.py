"""QA36 second review of d62493a (state #1-#4): a resume state's identity is what its positions count along (the
split's keys in reading order and their count), so an in-place add-modality or a change of another split keeps a
mid-epoch state valid while a re-shard that adds, removes, replaces or reorders the split's samples is still refused;
each Lightning refusal gets its own remedy; a label_map change is warned of at an epoch's start in both directions;
DataModule.label_names refuses the label_map the blend refuses."""

from __future__ import annotations

import csv
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import mmdata
from mmdata.errors import MMDataError, ShardError


def _raw(root: Path, site: str, names: list[str], n: int) -> Path:
    """``n`` image + audio samples (keys 0001..), a ``manifest.csv`` and a ``manifest_swap.csv`` whose last sample is
    another (key 0099: as many samples, one replaced), and ``depth/<key>.depth.npy`` for add-modality."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(ord(site))
    rows = []
    (root / "depth").mkdir(exist_ok=True)
    for i in range(n):
        k = f"{i + 1:04d}"
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / f"{k}.png")
        sf.write(root / f"{k}.wav", (0.1 * rng.standard_normal(800)).astype("float32"), 8000)
        np.save(root / "depth" / f"{k}.depth.npy", rng.random((4, 4)).astype("float32"))
        rows.append({"key": k, "image": f"{k}.png", "audio": f"{k}.wav", "label": names[i % len(names)]})
    swap = [*rows[:-1], {**rows[0], "key": "0099"}]
    for fname, rs in (("manifest.csv", rows), ("manifest_swap.csv", swap)):
        with open(root / fname, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rs)
    return root


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("fix2state")
    out: dict[str, Path] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for site, names in (("A", ["cat", "dog"]), ("B", ["Cat", "dog"])):
            raw = _raw(t / "raw" / site, site, names, 16)
            mmdata.shard(raw / "manifest.csv", t / site, maxcount=4, progress=False)
            out[site], out[f"raw{site}"] = t / site, raw
        mmdata.shard(out["rawA"] / "manifest.csv", t / "C", progress=False, layout="columns")
        out["C"] = t / "C"
    return out


def _read(ds: object, n: int) -> list[str]:
    it = iter(ds)  # type: ignore[call-overload]
    return [next(it).key for _ in range(n)]


def test_add_modality_keeps_a_mid_epoch_state(made: dict[str, Path], tmp_path: Path) -> None:
    folder = shutil.copytree(made["C"], tmp_path / "C")
    ds = mmdata.open_dataset(folder, shuffle=True, seed=0)
    first = _read(ds, 6)
    state = ds.state_dict()
    L = mmdata.loader(folder, 4, seed=0, shuffle=True)
    next(iter(L))
    lstate = L.state_dict()
    fp = ds.card["fingerprint"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.add_modality(folder, "depth", made["rawA"] / "depth")
    again = mmdata.open_dataset(folder, shuffle=True, seed=0)
    assert again.card["fingerprint"] != fp  # the folder's fingerprint changed, the split's keys and order did not
    again.load_state_dict(state)  # QA36 state #1: refused, "its positions mean other samples now"
    rest = [s.key for s in again]
    assert len(first) + len(rest) == 16 and set(first) | set(rest) == {f"{i:04d}" for i in range(1, 17)}
    mmdata.loader(folder, 4, seed=0, shuffle=True).load_state_dict(lstate)


def test_a_replaced_sample_is_refused_though_counts_match(made: dict[str, Path], tmp_path: Path) -> None:
    folder = shutil.copytree(made["A"], tmp_path / "A")
    ds = mmdata.open_dataset(folder, shuffle=True, seed=0)
    _read(ds, 5)
    state = ds.state_dict()
    assert sorted(state["dataset"]) == ["fingerprint", "order", "samples"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(made["rawA"] / "manifest_swap.csv", folder, maxcount=4, progress=False, split_from=folder)
    with pytest.raises(ShardError, match=r"changed since this state was saved \(the keys of split 'train' or their "
                                         r"order\b.*its positions mean other samples now") as err:
        mmdata.open_dataset(folder, shuffle=True, seed=0).load_state_dict(state)
    assert "samples in split" not in str(err.value)  # 16 either way


def test_older_fingerprint_only_state_still_refused_with_hedged_words(made: dict[str, Path], tmp_path: Path) -> None:
    folder = shutil.copytree(made["C"], tmp_path / "C")
    ds = mmdata.open_dataset(folder, shuffle=True, seed=0)
    _read(ds, 6)
    state = ds.state_dict()
    older = {**state, "dataset": {k: v for k, v in state["dataset"].items() if k != "order"}}  # as d62493a saved it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.add_modality(folder, "depth", made["rawA"] / "depth")
    with pytest.raises(ShardError, match=r"fingerprint .* -> .*recorded only the folder's fingerprint.*may mean other "
                                         r"samples"):
        mmdata.open_dataset(folder, shuffle=True, seed=0).load_state_dict(older)
    unrecorded = {k: v for k, v in state.items() if k != "dataset"}  # before d62493a: taken as before
    mmdata.open_dataset(folder, shuffle=True, seed=0).load_state_dict(unrecorded)


def test_blend_mid_epoch_state_survives_add_modality_of_a_dataset(made: dict[str, Path], tmp_path: Path) -> None:
    d = {"A": str(shutil.copytree(made["A"], tmp_path / "A")), "C": str(shutil.copytree(made["C"], tmp_path / "C"))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = mmdata.blend(d, shuffle=True, seed=0)
        first = _read(b, 9)
        state = b.state_dict()
        mmdata.add_modality(d["C"], "depth", made["rawA"] / "depth")
        b2 = mmdata.blend(d, shuffle=True, seed=0)
        b2.load_state_dict(state)
        rest = [s.key for s in b2]
    assert len(first) + len(rest) == 32


def test_epoch_start_label_map_warned_both_ways(made: dict[str, Path]) -> None:
    d = {s: str(made[s]) for s in "AB"}
    lm = {"B": {"Cat": "cat"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = mmdata.blend(d, seed=0)
        list(plain)
        ended = plain.state_dict()
        mapped = mmdata.blend(d, seed=0, label_map=lm)
    assert ended["label_map"] == {}  # recorded though empty: "no label_map" is not "an older state"
    with pytest.warns(UserWarning, match=r"label_map of blended dataset 'B' differs .*saved \{\}, now \{'Cat': 'cat'\}"):
        mapped.load_state_dict(ended)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an older state (no record): silent, as before
        mapped.load_state_dict({k: v for k, v in ended.items() if k != "label_map"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        L = mmdata.loader(d, 4, seed=0)
        list(L)
        lended = L.state_dict()
        Lm = mmdata.loader(d, 4, seed=0, label_map=lm)
    assert lended["label_map"] == {}
    with pytest.warns(UserWarning, match=r"label_map of blended dataset 'B' differs"):
        Lm.load_state_dict(lended)


def test_label_names_refuses_what_the_blend_refuses(made: dict[str, Path]) -> None:
    from mmdata.shards.blend import blend_label_names

    d = {s: str(made[s]) for s in "AB"}
    with pytest.raises(ShardError, match=r"blend label_map\['B'\]: 'Kat' is no class of 'B' .*its classes are "
                                         r"\['Cat', 'dog'\]"):
        blend_label_names(d, {"B": {"Kat": "cat"}})
    assert blend_label_names(d, {"B": {"Cat": "cat"}}) == ["cat", "dog"]
    pytest.importorskip("lightning")
    from mmdata.lightning import DataModule

    with pytest.raises(ShardError, match=r"'Kat' is no class of 'B'"):
        _ = DataModule(d, batch_size=4, label_map={"B": {"Kat": "cat"}}).label_names


def test_lightning_label_map_refusal_names_the_label_map(made: dict[str, Path]) -> None:
    pytest.importorskip("lightning")
    from mmdata.lightning import DataModule

    d = {s: str(made[s]) for s in "AB"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dm = DataModule(d, batch_size=4, label_map={"B": {"Cat": "cat"}})
        next(iter(dm.train_dataloader()))
        saved = dm.state_dict()
        dm2 = DataModule(d, batch_size=4)
        dm2.load_state_dict(saved)
        with pytest.raises(MMDataError, match=r"label_map of blended dataset 'B' differs.*needs the label_map it was "
                                              r"written with: DataModule\(\.\.\., label_map=\{'B': \{'Cat': 'cat'\}\}\)"
                           ) as err:
            next(iter(dm2.train_dataloader()))
    assert "world size" not in str(err.value) and "num_workers" not in str(err.value)
