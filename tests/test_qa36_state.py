"""QA36 sites #1, #3, #4, #6, #7: resume states record which version of the data they count along (a state
saved before a folder was re-sharded is refused mid-epoch), a blend's label_map is part of its state, the
blend's card carries each dataset's name / licence / fingerprint, a blend's stale-folder error names the blend,
and the Lightning DataModule exposes the class names."""

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


def _raw(root: Path, site: str, names: list[str], n: int, extra: bool = False) -> Path:
    """A raw folder of ``n`` image + audio samples (keys 0001..) labelled by ``names`` in turn; ``extra``: a
    second manifest with one sample more (key 0099), as a site's next version."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(ord(site))
    rows = []
    for i in range(n):
        k = f"{i + 1:04d}"
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / f"{k}.png")
        sf.write(root / f"{k}.wav", (0.1 * rng.standard_normal(800)).astype("float32"), 8000)
        rows.append({"key": k, "image": f"{k}.png", "audio": f"{k}.wav", "label": names[i % len(names)]})
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / "0099.png")
    sf.write(root / "0099.wav", np.zeros(800, "float32"), 8000)
    for fname, rs in (("manifest.csv", rows), ("manifest_v2.csv", [*rows, {**rows[0], "key": "0099",
                                                                           "image": "0099.png", "audio": "0099.wav"}])):
        with open(root / fname, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rs)
    return root


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    t = tmp_path_factory.mktemp("sites")
    out = {}
    for site, names, lic in (("A", ["cat", "dog"], "CC-BY-4.0"), ("B", ["Cat", "dog"], "CC-BY-NC-4.0")):
        raw = _raw(t / "raw" / site, site, names, 16)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mmdata.shard(raw / "manifest.csv", t / site, maxcount=4, progress=False, license=lic, name=f"site{site}")
        out[site] = t / site
        out[f"raw{site}"] = raw
    return out


def _copy(sites: dict[str, Path], tmp_path: Path) -> dict[str, str]:
    """Fresh copies of the sites' folders (a test re-shards them in place)."""
    return {s: str(shutil.copytree(sites[s], tmp_path / s)) for s in "AB"}


def _reshard(sites: dict[str, Path], folder: str, site: str) -> None:
    """The site's next version (one sample added), sharded in place keeping the splits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mmdata.shard(sites[f"raw{site}"] / "manifest_v2.csv", folder, maxcount=4, progress=False, split_from=folder)


def test_open_dataset_state_refused_after_reshard(sites: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(sites, tmp_path)
    ds = mmdata.open_dataset(d["A"], shuffle=True, seed=0)
    it = iter(ds)
    first = [next(it).key for _ in range(5)]
    state = ds.state_dict()
    assert state["dataset"]["samples"] == 16 and isinstance(state["dataset"]["fingerprint"], str)
    _reshard(sites, d["A"], "A")
    again = mmdata.open_dataset(d["A"], shuffle=True, seed=0)
    with pytest.raises(ShardError, match=r"changed since this state was saved .*16 -> 17 samples") as err:
        again.load_state_dict(state)
    assert d["A"] in str(err.value) and "fingerprint" in str(err.value)
    # the same version resumes exactly (the check does not refuse a good state)
    same = mmdata.open_dataset(sites["A"], shuffle=True, seed=0)
    it = iter(same)
    first = [next(it).key for _ in range(5)]
    st = same.state_dict()
    fresh = mmdata.open_dataset(sites["A"], shuffle=True, seed=0)
    fresh.load_state_dict(st)
    rest = [s.key for s in fresh]
    assert sorted(first + rest) == sorted(s.key for s in mmdata.open_dataset(sites["A"]))


def test_epoch_start_and_older_states_still_resume(sites: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(sites, tmp_path)
    ds = mmdata.open_dataset(d["A"], shuffle=True, seed=0)
    keys = [s.key for s in ds]
    ended = ds.state_dict()  # the next epoch's start
    mid_ds = mmdata.open_dataset(d["A"], shuffle=True, seed=0)
    it = iter(mid_ds)
    _ = [next(it) for _ in range(3)]
    mid = mid_ds.state_dict()
    _reshard(sites, d["A"], "A")
    new = mmdata.open_dataset(d["A"], shuffle=True, seed=0)
    new.load_state_dict(ended)  # nothing to skip: any version resumes
    assert len([s.key for s in new]) == len(keys) + 1
    old = {k: v for k, v in mid.items() if k != "dataset"}  # a state of an mmdata that did not record it
    mmdata.open_dataset(d["A"], shuffle=True, seed=0).load_state_dict(old)


def test_loader_state_refused_after_reshard(sites: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(sites, tmp_path)
    L = mmdata.loader(d["B"], 4, seed=0, shuffle=True)
    it = iter(L)
    next(it)
    state = L.state_dict()
    assert state["dataset"]["samples"] == 16
    _reshard(sites, d["B"], "B")
    with pytest.raises(MMDataError, match=r"changed since this state was saved"):
        mmdata.loader(d["B"], 4, seed=0, shuffle=True).load_state_dict(state)


def test_blend_state_refused_after_a_dataset_reshards(sites: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(sites, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = mmdata.blend(d, shuffle=True, seed=0)
        it = iter(b)
        first = [next(it).key for _ in range(12)]
        state = b.state_dict()
        assert set(state["datasets"]) == {"A", "B"}
        _reshard(sites, d["B"], "B")
        b2 = mmdata.blend(d, shuffle=True, seed=0)
        with pytest.raises(ShardError, match=r"dataset 'B' of the blend\): the dataset folder changed since this "
                                             r"state was saved"):
            b2.load_state_dict(state)
        # through mmdata.loader with a mapping too
        L = mmdata.loader({"A": str(sites["A"]), "B": str(sites["B"])}, 4, seed=0, shuffle=True)
        next(iter(L))
        lstate = L.state_dict()
        d2 = _copy(sites, tmp_path / "again")
        L2 = mmdata.loader(d2, 4, seed=0, shuffle=True)
        L2.load_state_dict(lstate)  # another path, same version: resumes
        _reshard(sites, d2["B"], "B")
        with pytest.raises(MMDataError, match="dataset 'B' of the blend"):
            mmdata.loader(d2, 4, seed=0, shuffle=True).load_state_dict(lstate)
    assert len(first) == 12


def test_blend_state_refused_with_another_label_map(sites: dict[str, Path]) -> None:
    d = {s: str(sites[s]) for s in "AB"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = mmdata.blend(d, shuffle=True, seed=0, label_map={"B": {"Cat": "cat"}})
        it = iter(b)
        _ = [next(it) for _ in range(10)]
        state = b.state_dict()
        assert state["label_map"] == {"B": {"Cat": "cat"}}
        with pytest.raises(ShardError, match=r"label_map of blended dataset 'B' differs"):
            mmdata.blend(d, shuffle=True, seed=0).load_state_dict(state)
        # and the other way round: a state without label_map into a blend with one
        plain = mmdata.blend(d, shuffle=True, seed=0)
        it = iter(plain)
        _ = [next(it) for _ in range(10)]
        with pytest.raises(ShardError, match=r"'B'"):
            mmdata.blend(d, shuffle=True, seed=0, label_map={"B": {"Cat": "cat"}}).load_state_dict(plain.state_dict())
        same = mmdata.blend(d, shuffle=True, seed=0, label_map={"B": {"Cat": "cat"}})
        same.load_state_dict(state)  # the same label_map resumes


def test_blend_card_carries_licences_and_warns(sites: dict[str, Path]) -> None:
    with pytest.warns(UserWarning, match=r"licences differ: 'A' CC-BY-4.0, 'B' CC-BY-NC-4.0"):
        b = mmdata.blend({s: str(sites[s]) for s in "AB"}, label_map={"B": {"Cat": "cat"}})
    for s, lic in (("A", "CC-BY-4.0"), ("B", "CC-BY-NC-4.0")):
        entry = b.card["blend"][s]
        card = mmdata.open_dataset(sites[s]).card
        assert entry["license"] == lic and entry["name"] == f"site{s}"
        assert entry["fingerprint"] == card["fingerprint"] and entry["samples"] == 16
    assert b.card["licenses"] == ["CC-BY-4.0", "CC-BY-NC-4.0"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one licence: no warning of it
        warnings.filterwarnings("ignore", message="(?!.*licences)")
        mmdata.blend({"A": str(sites["A"]), "A2": str(sites["A"])})


def test_blend_folder_changed_error_names_the_blend(sites: dict[str, Path], tmp_path: Path) -> None:
    d = _copy(sites, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = mmdata.blend(d)
        _reshard(sites, d["B"], "B")
        with pytest.raises(ShardError, match=r"\(dataset 'B' of a blend\): the dataset folder changed since it was "
                                             r"opened .*mmdata\.blend\(\.\.\.\)") as err:
            list(b)
    assert "mmdata.open_dataset" not in str(err.value)


def test_datamodule_label_names_and_resume_after_reshard(sites: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    from mmdata.lightning import DataModule

    d = _copy(sites, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dm = DataModule(d, batch_size=4, label_map={"B": {"Cat": "cat"}})
        assert dm.label_names == ["cat", "dog"] and dm.num_classes == 2
        assert DataModule({"B": d["B"], "A": d["A"]}, batch_size=4).label_names == ["Cat", "dog", "cat"]
        one = DataModule(d["A"], batch_size=4)
        assert one.label_names == ["cat", "dog"] and one.num_classes == 2
        it = iter(dm.train_dataloader())
        next(it)
        assert dm.label_names == ["cat", "dog"]  # the loader's, once built
        saved = dm.state_dict()
        _reshard(sites, d["A"], "A")
        dm2 = DataModule(d, batch_size=4, label_map={"B": {"Cat": "cat"}})
        dm2.load_state_dict(saved)
        with pytest.raises(MMDataError, match=r"dataset 'A' of the blend.*changed since this state was saved.*"
                                              r"version of the data it was written with"):
            next(iter(dm2.train_dataloader()))


def test_a_repeated_blend_call_from_one_line_says_its_warnings_again(sites: dict[str, Path]) -> None:
    """QA36 notebook #2 (blend's side): Python's once-per-line registry hid a second blend's licence warning."""
    seen = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # the interpreter's own filter: once per line
        for _ in range(2):
            mmdata.blend({s: str(sites[s]) for s in "AB"}, label_map={"B": {"Cat": "cat"}})
            seen.append(sum("licences differ" in str(w.message) for w in caught))
    assert seen == [1, 2], seen
    assert all(w.filename == __file__ for w in caught if "licences differ" in str(w.message))


def test_train_refuses_a_blend_with_a_way_that_works(sites: dict[str, Path], tmp_path: Path) -> None:
    """QA36 sites #2: the advice was "shard the datasets into one folder", which the shard refused for keys
    repeating across the datasets; it now names the command that merges them."""
    from mmdata.errors import MMDataError
    from mmdata.train import train

    with pytest.raises(MMDataError, match=r"mmdata shard 'data/\*/\*\.tar' OUT .*prefixed with each dataset's folder"):
        train({s: str(sites[s]) for s in "AB"}, out=str(tmp_path / "run"), epochs=1)
